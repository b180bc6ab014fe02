//! The scheme-facing view of a policy's LSSS: sparse rows and reconstruction.

use crate::lsss::Lsss;
use crate::policy::{AttributeSet, Policy};
use ff::PrimeField;

/// One LSSS row: the label of the attribute it belongs to and its non-zero entries.
pub(crate) struct ShareRow<F> {
    pub(crate) label: String,
    pub(crate) entries: Vec<(usize, F)>,
}

/// A policy's share-generating matrix.
pub(crate) struct ShareMatrix<F> {
    pub(crate) rows: Vec<ShareRow<F>>,
    pub(crate) columns: usize,
}

pub(crate) fn share_matrix<F: PrimeField>(policy: &Policy) -> ShareMatrix<F> {
    let lsss = Lsss::<F>::from_policy(policy);
    let rows = lsss
        .rows()
        .iter()
        .map(|row| ShareRow {
            label: row.label().to_owned(),
            entries: row.coeffs().to_vec(),
        })
        .collect();
    ShareMatrix {
        rows,
        columns: lsss.columns(),
    }
}

/// Row indices and coefficients `w_i` with `sum w_i M_i = e1`, or `None` if `attrs` does
/// not satisfy the policy.
pub(crate) fn reconstruct<F: PrimeField>(
    policy: &Policy,
    attrs: &AttributeSet,
) -> Option<Vec<(usize, F)>> {
    Lsss::<F>::from_policy(policy).reconstruct(attrs)
}

/// `lambda_i = M_i . v` for every row.
pub(crate) fn shares<F: PrimeField>(m: &ShareMatrix<F>, v: &[F]) -> Vec<F> {
    m.rows
        .iter()
        .map(|row| {
            row.entries.iter().fold(F::ZERO, |acc, (c, x)| {
                acc + *x * v.get(*c).copied().unwrap_or(F::ZERO)
            })
        })
        .collect()
}

/// Most attributes a decoded key may carry.
pub(crate) const MAX_KEY_ATTRIBUTES: usize = 1024;
/// Longest attribute string in a decoded key.
pub(crate) const MAX_ATTRIBUTE_TEXT: usize = 1024;

/// The canonical strings of a key's attributes, in the set's order.
pub(crate) fn attribute_strings(attrs: &AttributeSet) -> Vec<String> {
    attrs.items().collect()
}

/// Reads a length-prefixed attribute list and parses it; the list must be in canonical
/// form (re-encoding it gives the same strings).
pub(crate) fn parse_attributes(
    r: &mut crate::codec::Reader<'_>,
) -> Result<AttributeSet, crate::error::DecodeError> {
    use crate::error::DecodeError;
    let n = r.count("key attributes", MAX_KEY_ATTRIBUTES, 4)?;
    let mut items = Vec::with_capacity(n);
    for _ in 0..n {
        items.push(r.str("attribute", MAX_ATTRIBUTE_TEXT)?);
    }
    let attrs = AttributeSet::parse(items.iter().copied()).map_err(DecodeError::InvalidPolicy)?;
    if attribute_strings(&attrs) != items {
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
    use crate::codec::{Kind, Reader, Writer};
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
    use crate::codec::{Kind, Reader, Writer};
    let mut w = Writer::unkeyed(Kind::UserKey);
    let items = attribute_strings(attrs);
    w.count(items.len());
    for item in &items {
        w.bytes(item.as_bytes());
    }
    let bytes = w.finish();
    let decoded = Reader::unkeyed(&bytes, Kind::UserKey).and_then(|mut r| parse_attributes(&mut r));
    decoded.map(drop).map_err(creation_error)
}

/// A decoder's refusal, as the error of the operation that would have produced the object.
fn creation_error(e: crate::error::DecodeError) -> crate::Error {
    use crate::error::DecodeError;
    match e {
        DecodeError::InvalidPolicy(e) => crate::Error::Policy(e),
        DecodeError::TooLarge { what, limit, .. } => crate::Error::LimitExceeded { what, limit },
        other => crate::Error::Decode(other),
    }
}
