//! User-side keyword keys, the search tokens sent to the host, and decryption of results.

use super::partition::{PartitionId, PartitionKey};
use super::prf::{PadPrf, keyword_keys, xor32};
use crate::error::Result;
use crate::format::Kind;
use crate::keyword::Keyword;
use crate::record::RecordRef;
use zeroize::{Zeroize, ZeroizeOnDrop};

/// Encoded size of a [`SearchToken`].
pub const TOKEN_BYTES: usize = 6 + 32 + 32;

/// The keys of one keyword in one partition, held by a user who opened the partition's
/// capsule: the label key (sent to the host inside a [`SearchToken`]) and the value key
/// (kept, to decrypt results). Zeroized on drop, `Debug` redacted.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct KeywordKey {
    #[zeroize(skip)]
    partition: PartitionId,
    label_key: [u8; 32],
    value_key: [u8; 32],
}

impl KeywordKey {
    /// `K_w = PRF(K, w)`, split into label and value keys.
    pub fn derive(partition: &PartitionId, key: &PartitionKey, keyword: &Keyword) -> Self {
        let (lab, val) = keyword_keys(key.as_bytes(), keyword);
        Self {
            partition: *partition,
            label_key: *lab,
            value_key: *val,
        }
    }

    /// The partition.
    pub fn partition(&self) -> &PartitionId {
        &self.partition
    }

    /// The token for the host: the partition id and the label key only.
    pub fn token(&self) -> SearchToken {
        SearchToken {
            partition: self.partition,
            label_key: self.label_key,
        }
    }

    pub(crate) fn label_key(&self) -> &[u8; 32] {
        &self.label_key
    }

    /// Decrypts the host's answer (values in counter order `c = 0, 1, …`), dropping
    /// padding entries.
    pub fn decrypt(&self, values: &[EncryptedRef]) -> Vec<RecordRef> {
        let pads = PadPrf::new(&self.value_key);
        values
            .iter()
            .zip(0u64..)
            .filter_map(|(v, c)| RecordRef::from_nonzero(xor32(&v.0, &pads.pad(c))))
            .collect()
    }
}

redacted_debug!(KeywordKey, |x| "partition" => x.partition);

/// What a user sends the host to search one keyword in one partition: the partition id
/// and the keyword's label key. It lets the host find that keyword's entries (and only
/// those: labels of other keywords and the values stay pseudorandom to it).
///
/// Canonical encoding: `"MSIX" | 1 | kind=2 | partition id (32) | label key (32)`.
/// Zeroized on drop, `Debug` redacted.
#[derive(Clone, PartialEq, Eq, Zeroize, ZeroizeOnDrop)]
pub struct SearchToken {
    #[zeroize(skip)]
    partition: PartitionId,
    label_key: [u8; 32],
}

impl SearchToken {
    /// The partition to search.
    pub fn partition(&self) -> &PartitionId {
        &self.partition
    }

    pub(crate) fn label_key(&self) -> &[u8; 32] {
        &self.label_key
    }

    /// The canonical encoding.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut w = Kind::SearchToken.writer();
        w.reserve(64)
            .raw(self.partition.as_bytes())
            .raw(&self.label_key);
        w.finish()
    }

    /// Decodes the canonical encoding (exact length, no trailing bytes).
    ///
    /// # Errors
    /// [`crate::Error::Decode`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let mut r = Kind::SearchToken.reader(bytes)?;
        let (partition, label_key) = (PartitionId(r.array()?), r.array()?);
        r.finish()?;
        Ok(Self {
            partition,
            label_key,
        })
    }
}

redacted_debug!(SearchToken, |x| "partition" => x.partition);

/// A record reference under its one-time pad, as stored and returned by the host.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct EncryptedRef(pub(crate) [u8; 32]);

impl EncryptedRef {
    /// Wraps bytes (e.g. received from a remote host).
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_round_trips_and_debug_is_redacted() {
        let key = PartitionKey::from_bytes([4; 32]);
        let kk = KeywordKey::derive(&PartitionId([1; 32]), &key, &Keyword::icd10("I10").unwrap());
        let t = kk.token();
        let bytes = t.to_bytes();
        assert_eq!(bytes.len(), TOKEN_BYTES);
        assert_eq!(SearchToken::from_bytes(&bytes).unwrap(), t);
        assert!(SearchToken::from_bytes(&bytes[..TOKEN_BYTES - 1]).is_err());
        let mut long = bytes.clone();
        long.push(1);
        assert!(SearchToken::from_bytes(&long).is_err());
        let shown = format!("{t:?}{kk:?}{key:?}");
        assert!(!shown.contains("04, 04") && !shown.contains("[4"));
    }
}
