//! Attribute lists in user keys, and the checks that keep issued keys and ciphertexts
//! decodable.

use crate::codec::{Kind, Reader, Writer};
use crate::error::DecodeError;
use crate::policy::{AttributeSet, Policy};

/// Most attributes a decoded key may carry.
pub(crate) const MAX_KEY_ATTRIBUTES: usize = 1024;
/// Longest attribute string in a decoded key.
pub(crate) const MAX_ATTRIBUTE_TEXT: usize = 1024;

/// Writes a key's attribute list (count, then each canonical item length-prefixed, in
/// the set's order), as [`parse_attributes`] reads it.
pub(crate) fn write_attributes(w: &mut Writer, attrs: &AttributeSet) {
    let items: Vec<String> = attrs.items().collect();
    w.count(items.len());
    for item in &items {
        w.str(item);
    }
}

/// Reads a length-prefixed attribute list and parses it; the list must be in canonical
/// form (re-encoding it gives the same strings).
pub(crate) fn parse_attributes(r: &mut Reader<'_>) -> Result<AttributeSet, DecodeError> {
    let n = r.count("key attributes", MAX_KEY_ATTRIBUTES, 4)?;
    let mut items = Vec::with_capacity(n);
    for _ in 0..n {
        items.push(r.str("attribute", MAX_ATTRIBUTE_TEXT)?);
    }
    let attrs = AttributeSet::parse(items.iter().copied()).map_err(DecodeError::InvalidPolicy)?;
    if attrs.items().ne(items.iter().copied()) {
        return Err(DecodeError::Inconsistent("attribute list is not canonical"));
    }
    Ok(attrs)
}

/// Refuses a policy that [`crate::codec::Reader::policy`] (every ciphertext decoder) would
/// refuse, by running that decoder on the policy's encoding: a policy built with raised
/// [`crate::policy::Limits`] must fail at encryption, not when its owner decrypts.
///
/// # Errors
/// [`crate::Error::Policy`] for a policy beyond the default limits,
/// [`crate::Error::LimitExceeded`] for a text longer than [`crate::codec::MAX_POLICY_TEXT`].
pub(crate) fn check_decodable_policy(policy: &Policy) -> crate::Result<()> {
    let mut w = Writer::unkeyed(Kind::Ciphertext);
    w.policy(policy);
    let bytes = w.finish();
    let decoded = Reader::unkeyed(&bytes, Kind::Ciphertext).and_then(|mut r| r.policy());
    decoded.map(drop).map_err(creation_error)
}

/// Refuses an attribute set that [`parse_attributes`] (every user-key decoder) would refuse,
/// by running it on the set's encoding: a set built with raised [`crate::policy::Limits`] must fail
/// at key generation, not when the key is loaded.
///
/// # Errors
/// [`crate::Error::Policy`] for a set beyond the default limits,
/// [`crate::Error::LimitExceeded`] for more than `MAX_KEY_ATTRIBUTES` items or an item
/// longer than `MAX_ATTRIBUTE_TEXT` bytes.
pub(crate) fn check_decodable_attributes(attrs: &AttributeSet) -> crate::Result<()> {
    let mut w = Writer::unkeyed(Kind::UserKey);
    write_attributes(&mut w, attrs);
    let bytes = w.finish();
    let decoded = Reader::unkeyed(&bytes, Kind::UserKey).and_then(|mut r| parse_attributes(&mut r));
    decoded.map(drop).map_err(creation_error)
}

/// A decoder's refusal, as the error of the operation that would have produced the object.
pub(crate) fn creation_error(e: DecodeError) -> crate::Error {
    match e {
        DecodeError::InvalidPolicy(e) => crate::Error::Policy(e),
        DecodeError::TooLarge { what, limit, .. } => crate::Error::LimitExceeded { what, limit },
        other => crate::Error::Decode(other),
    }
}
