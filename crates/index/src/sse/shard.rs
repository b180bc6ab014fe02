//! Immutable shards: one batch of entries of one partition, sorted by label.

use super::merkle::{MerkleTree, PARALLEL_MIN, ShardRoot, leaf_hash, shard_root};
use super::partition::PartitionId;
use super::prf::Label;
use super::proof::Neighbour;
use crate::error::{DecodeError, Error, Result};
use crate::format::Kind;
use rayon::prelude::*;
use std::sync::OnceLock;

/// Maximum number of entries in one shard (2^26: 3 GiB encoded).
pub const MAX_SHARD_ENTRIES: u32 = 1 << 26;

/// Encoded size of one entry: label (16) and encrypted value (32).
pub const ENTRY_BYTES: usize = 48;

const HEADER_BYTES: usize = 6 + 32 + 4;

/// One index entry: a pseudorandom label and the record reference under a one-time pad.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Entry {
    pub(crate) label: Label,
    pub(crate) value: [u8; 32],
}

impl Entry {
    /// The label (the host's lookup key).
    pub fn label(&self) -> &Label {
        &self.label
    }

    /// The encrypted value.
    pub fn value(&self) -> &[u8; 32] {
        &self.value
    }
}

/// An immutable batch of entries of one partition, sorted by label, with its Merkle root.
///
/// Canonical encoding (see [`crate::notes::formats`]):
/// `"MSIX" | 1 | kind=1 | partition id (32) | count u32 | (label 16 | value 32) * count`,
/// labels strictly increasing.
#[derive(Clone)]
pub struct Shard {
    partition: PartitionId,
    entries: Vec<Entry>,
    tree: OnceLock<MerkleTree>,
}

impl Shard {
    /// Sorts `entries` and checks that no label repeats.
    pub(crate) fn from_entries(partition: PartitionId, mut entries: Vec<Entry>) -> Result<Self> {
        if entries.len() > MAX_SHARD_ENTRIES as usize {
            return Err(Error::LimitExceeded {
                what: "shard entries",
                limit: MAX_SHARD_ENTRIES.into(),
            });
        }
        // Big-endian u128 order is the byte order of the labels, and compares in one step.
        let key = |e: &Entry| u128::from_be_bytes(e.label.0);
        if entries.len() >= PARALLEL_MIN {
            entries.par_sort_unstable_by_key(key);
        } else {
            entries.sort_unstable_by_key(key);
        }
        if entries.windows(2).any(|w| w[0].label == w[1].label) {
            return Err(Error::ShardConflict("repeated label"));
        }
        Ok(Self {
            partition,
            entries,
            tree: OnceLock::new(),
        })
    }

    /// Merges shards of one partition into one (compaction). The result depends only on
    /// the set of entries, so anyone holding the inputs can recompute it bit for bit
    /// and check the compacted root before anchoring it.
    ///
    /// # Errors
    /// [`Error::ShardConflict`] if the shards belong to different partitions or share a
    /// label; [`Error::LimitExceeded`] above [`MAX_SHARD_ENTRIES`]; [`Error::UnknownPartition`]
    /// for an empty list.
    pub fn merge(shards: &[&Shard]) -> Result<Self> {
        let first = shards.first().ok_or(Error::UnknownPartition)?;
        if shards.iter().any(|s| s.partition != first.partition) {
            return Err(Error::ShardConflict("shards of different partitions"));
        }
        let total: usize = shards.iter().map(|s| s.entries.len()).sum();
        if total > MAX_SHARD_ENTRIES as usize {
            return Err(Error::LimitExceeded {
                what: "shard entries",
                limit: MAX_SHARD_ENTRIES.into(),
            });
        }
        let mut entries = Vec::with_capacity(total);
        for s in shards {
            entries.extend_from_slice(&s.entries);
        }
        Self::from_entries(first.partition, entries)
    }

    /// The partition the entries belong to.
    pub fn partition(&self) -> &PartitionId {
        &self.partition
    }

    /// Number of entries (padding included).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the shard has no entries.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The entries, sorted by label.
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    pub(crate) fn tree(&self) -> &MerkleTree {
        self.tree.get_or_init(|| {
            let leaf = |e: &Entry| leaf_hash(&e.label, &e.value);
            MerkleTree::build(if self.entries.len() >= PARALLEL_MIN {
                self.entries.par_iter().map(leaf).collect()
            } else {
                self.entries.iter().map(leaf).collect()
            })
        })
    }

    /// The Merkle root to anchor (computed once, then cached).
    pub fn root(&self) -> ShardRoot {
        shard_root(&self.partition, self.len() as u64, &self.tree().top())
    }

    /// The membership proof of leaf `index` (for hosts and auditors).
    pub fn leaf_proof(&self, index: usize) -> Option<Neighbour> {
        self.entries.get(index).map(|e| Neighbour {
            index: index as u64,
            label: e.label,
            value: e.value,
            path: self.tree().path(index),
        })
    }

    /// Position of `label`, or where it would be inserted.
    pub(crate) fn find(&self, label: &Label) -> core::result::Result<usize, usize> {
        self.entries.binary_search_by(|e| e.label.cmp(label))
    }

    /// The canonical encoding.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut w = Kind::Shard.writer();
        w.reserve(self.encoded_len())
            .raw(self.partition.as_bytes())
            .count(self.entries.len());
        for e in &self.entries {
            w.raw(e.label.as_bytes()).raw(&e.value);
        }
        w.finish()
    }

    /// Decodes the canonical encoding: header, count limit and exact length checked before
    /// allocating, labels strictly increasing, no trailing bytes.
    ///
    /// # Errors
    /// [`Error::Decode`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        Ok(Self::decode(bytes)?)
    }

    fn decode(bytes: &[u8]) -> core::result::Result<Self, DecodeError> {
        let mut r = Kind::Shard.reader(bytes)?;
        let partition = PartitionId(r.array()?);
        let count = r.count("shard entries", MAX_SHARD_ENTRIES as usize, ENTRY_BYTES)?;
        let mut entries: Vec<Entry> = Vec::with_capacity(count);
        for _ in 0..count {
            let label = Label(r.array()?);
            let value = r.array()?;
            if entries.last().is_some_and(|prev| prev.label >= label) {
                return Err(DecodeError::Unsorted("shard labels"));
            }
            entries.push(Entry { label, value });
        }
        r.finish()?;
        Ok(Self {
            partition,
            entries,
            tree: OnceLock::new(),
        })
    }

    /// Size of the encoding in bytes.
    pub fn encoded_len(&self) -> usize {
        HEADER_BYTES + self.entries.len() * ENTRY_BYTES
    }
}

impl PartialEq for Shard {
    fn eq(&self, other: &Self) -> bool {
        self.partition == other.partition && self.entries == other.entries
    }
}

impl Eq for Shard {}

redacted_debug!(Shard, |x| "partition" => x.partition, "entries" => x.entries.len());

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(l: u8, v: u8) -> Entry {
        Entry {
            label: Label([l; 16]),
            value: [v; 32],
        }
    }

    #[test]
    fn encoding_round_trips_and_is_checked() {
        let p = PartitionId([9; 32]);
        let s = Shard::from_entries(p, vec![entry(3, 1), entry(1, 2), entry(2, 3)]).unwrap();
        assert_eq!(s.entries()[0].label, Label([1; 16]));
        let bytes = s.to_bytes();
        assert_eq!(bytes.len(), s.encoded_len());
        let back = Shard::from_bytes(&bytes).unwrap();
        assert_eq!(back, s);
        assert_eq!(back.root(), s.root());
        // Truncated, trailing, unsorted, oversized count.
        assert!(Shard::from_bytes(&bytes[..bytes.len() - 1]).is_err());
        let mut long = bytes.clone();
        long.push(0);
        assert!(Shard::from_bytes(&long).is_err());
        let mut swapped = bytes.clone();
        swapped[42..42 + 16].copy_from_slice(&[2; 16]);
        assert!(matches!(
            Shard::from_bytes(&swapped),
            Err(Error::Decode(DecodeError::Unsorted("shard labels")))
        ));
        let mut huge = bytes.clone();
        huge[38..42].copy_from_slice(&u32::MAX.to_be_bytes());
        assert!(matches!(
            Shard::from_bytes(&huge),
            Err(Error::Decode(DecodeError::TooLarge { .. }))
        ));
        assert!(Shard::from_entries(p, vec![entry(1, 1), entry(1, 2)]).is_err());
    }

    #[test]
    fn merge_is_order_independent() {
        let p = PartitionId([1; 32]);
        let a = Shard::from_entries(p, vec![entry(5, 1), entry(1, 1)]).unwrap();
        let b = Shard::from_entries(p, vec![entry(3, 1)]).unwrap();
        let ab = Shard::merge(&[&a, &b]).unwrap();
        let ba = Shard::merge(&[&b, &a]).unwrap();
        assert_eq!(ab, ba);
        assert_eq!(ab.root(), ba.root());
        assert_eq!(ab.len(), 3);
        assert!(Shard::merge(&[&a, &a]).is_err());
        let other = Shard::from_entries(PartitionId([2; 32]), vec![]).unwrap();
        assert!(Shard::merge(&[&a, &other]).is_err());
    }
}
