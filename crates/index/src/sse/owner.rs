//! The data owner's side: partition creation, batches of entries, padding, rotation.

use super::partition::{Capsule, Partition, PartitionId, PartitionKey};
use super::prf::{Label, LabelPrf, PadPrf, keyword_keys, xor32};
use super::shard::{Entry, MAX_SHARD_ENTRIES, Shard};
use crate::error::{Error, Result};
use crate::keyword::Keyword;
use crate::record::RecordRef;
use medseal_abe::{Fame, Policy, Scheme};
use rand_core::CryptoRngCore;
use std::collections::HashMap;
use std::hash::BuildHasherDefault;

/// Owner-side grouping hashes the owner's own keywords: no adversary chooses them, so
/// a fast non-keyed hash (FxHash's multiply-rotate) is fine here.
#[derive(Default, Clone, Copy)]
struct FastHasher(u64);

impl core::hash::Hasher for FastHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(chunk);
            self.add(u64::from_le_bytes(w));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut w = [0u8; 8];
            w[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(w) ^ ((rest.len() as u64) << 59));
        }
    }
    fn write_u8(&mut self, b: u8) {
        self.add(u64::from(b));
    }
    fn write_usize(&mut self, n: usize) {
        self.add(n as u64);
    }
    fn write_u64(&mut self, n: u64) {
        self.add(n);
    }
}

impl FastHasher {
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

type FastState = BuildHasherDefault<FastHasher>;

/// Volume padding: after each batch, every keyword the batch touched has its posting
/// list (real and dummy entries) padded up to a bucket boundary with dummy entries.
/// Dummies are ordinary entries (they verify like any other) whose value decrypts to the
/// reserved all-zero reference, so users drop them. The host then sees only bucket
/// sizes, at the cost of the dummy entries' storage and search time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Padding {
    /// No padding: the host learns exact result volumes.
    #[default]
    None,
    /// Pad to a multiple of the bucket size (0 and 1 mean no padding).
    Multiple(u32),
    /// Pad to the next power of two: at most 2× overhead, log-many distinct volumes.
    PowerOfTwo,
}

impl Padding {
    fn target(self, count: u64) -> u64 {
        match self {
            Padding::None | Padding::Multiple(0 | 1) => count,
            Padding::Multiple(b) => count.div_ceil(u64::from(b)).saturating_mul(u64::from(b)),
            Padding::PowerOfTwo => count.checked_next_power_of_two().unwrap_or(count),
        }
    }
}

/// A data owner's state for one partition: the partition key and, per keyword, the
/// counter `c` of the next entry. Keep it private (it holds `K` and the keywords):
/// [`OwnerPartition::counts`] and [`OwnerPartition::resume`] let the caller persist it.
pub struct OwnerPartition {
    partition: Partition,
    id: PartitionId,
    key: PartitionKey,
    counters: HashMap<Keyword, u64, FastState>,
    padding: Padding,
}

impl OwnerPartition {
    /// Creates a partition with a fresh key and wraps the key in a capsule under the
    /// partition's policy (publish the capsule; anchor its CID).
    ///
    /// # Errors
    /// [`Error::Abe`] if the policy cannot be encrypted.
    pub fn create<R: CryptoRngCore + ?Sized>(
        partition: Partition,
        pk: &<Fame as Scheme>::PublicKey,
        rng: &mut R,
    ) -> Result<(Self, Capsule)> {
        let key = PartitionKey::generate(rng);
        let capsule = Capsule::seal(pk, &partition, &key, rng)?;
        Ok((Self::resume(partition, key, []), capsule))
    }

    /// Restores an owner's state from persisted parts.
    pub fn resume(
        partition: Partition,
        key: PartitionKey,
        counts: impl IntoIterator<Item = (Keyword, u64)>,
    ) -> Self {
        Self {
            id: partition.id(),
            partition,
            key,
            counters: counts.into_iter().collect(),
            padding: Padding::None,
        }
    }

    /// Sets the volume padding of future batches.
    pub fn with_padding(mut self, padding: Padding) -> Self {
        self.padding = padding;
        self
    }

    /// The partition.
    pub fn partition(&self) -> &Partition {
        &self.partition
    }

    /// The partition id.
    pub fn id(&self) -> &PartitionId {
        &self.id
    }

    /// The partition key (the owner can search its own partition with it).
    pub fn key(&self) -> &PartitionKey {
        &self.key
    }

    /// The counters: how many entries (real and dummy) each keyword has.
    pub fn counts(&self) -> impl Iterator<Item = (&Keyword, u64)> + '_ {
        self.counters.iter().map(|(k, &c)| (k, c))
    }

    /// Turns a batch of `(keyword, record)` pairs into one immutable shard. Entry `c` of
    /// keyword `w` gets `label = PRF(K_lab, c)[..16]`, `value = record ⊕ PRF(K_val, c)`,
    /// continuing each keyword's counter; then padding is applied and the entries are
    /// sorted by label (so a shard's layout does not reveal the batch order). A pair
    /// repeated within the batch is stored once; within a batch a keyword's records get
    /// counters in record order. The counters advance only if the shard is built.
    ///
    /// # Errors
    /// [`Error::LimitExceeded`] if the shard would exceed [`MAX_SHARD_ENTRIES`] or a
    /// counter would overflow.
    pub fn batch<'a>(
        &mut self,
        pairs: impl IntoIterator<Item = (&'a Keyword, RecordRef)>,
    ) -> Result<Shard> {
        let too_many = || Error::LimitExceeded {
            what: "shard entries",
            limit: MAX_SHARD_ENTRIES.into(),
        };
        // Group by keyword without a allocation per keyword: tag each pair with its
        // keyword's index, sort, and walk the runs. Repeated pairs are stored once.
        // Callers usually pass the same `&Keyword` for the same keyword, so a map from the
        // reference's address answers most lookups without hashing the text; equal
        // keywords behind different references meet in the by-value map.
        let pairs = pairs.into_iter();
        let mut by_address: HashMap<usize, u32, FastState> = HashMap::default();
        let mut by_value: HashMap<&'a Keyword, u32, FastState> = HashMap::default();
        let mut keywords: Vec<&'a Keyword> = Vec::new();
        let mut tagged: Vec<(u32, RecordRef)> =
            Vec::with_capacity(pairs.size_hint().0.min(MAX_SHARD_ENTRIES as usize));
        for (kw, record) in pairs {
            if tagged.len() >= MAX_SHARD_ENTRIES as usize {
                return Err(too_many());
            }
            let address = core::ptr::from_ref(kw) as usize;
            let id = match by_address.get(&address) {
                Some(&id) => id,
                None => {
                    let next = keywords.len() as u32;
                    let id = *by_value.entry(kw).or_insert_with(|| {
                        keywords.push(kw);
                        next
                    });
                    by_address.insert(address, id);
                    id
                }
            };
            tagged.push((id, record));
        }
        // Counting sort by keyword (ids are dense), then sort each keyword's (short) run
        // to drop repeated pairs.
        let mut starts = vec![0usize; keywords.len() + 1];
        for (id, _) in &tagged {
            if let Some(s) = starts.get_mut(*id as usize + 1) {
                *s += 1;
            }
        }
        for i in 1..starts.len() {
            starts[i] += starts[i - 1];
        }
        let mut grouped = vec![[0u8; 32]; tagged.len()];
        let mut fill = starts.clone();
        for (id, record) in &tagged {
            if let Some(slot) = fill.get_mut(*id as usize)
                && let Some(dst) = grouped.get_mut(*slot)
            {
                *dst = *record.as_bytes();
                *slot += 1;
            }
        }
        let mut entries = Vec::with_capacity(tagged.len());
        drop(tagged);
        let mut updated: Vec<(&'a Keyword, u64)> = Vec::with_capacity(keywords.len());
        for (id, kw) in keywords.iter().enumerate() {
            let (Some(&lo), Some(&hi)) = (starts.get(id), starts.get(id + 1)) else {
                continue;
            };
            let Some(run) = grouped.get_mut(lo..hi) else {
                continue;
            };
            run.sort_unstable();
            let unique = run.len() - run.windows(2).filter(|w| w[0] == w[1]).count();
            let start = self.counters.get(*kw).copied().unwrap_or(0);
            let real_end = start
                .checked_add(unique as u64)
                .ok_or(Error::LimitExceeded {
                    what: "keyword counter",
                    limit: u64::MAX,
                })?;
            let end = self.padding.target(real_end);
            if entries.len() as u64 + (end - start) > u64::from(MAX_SHARD_ENTRIES) {
                return Err(too_many());
            }
            let (k_lab, k_val) = keyword_keys(self.key.as_bytes(), kw);
            let (labels, pads) = (LabelPrf::new(&k_lab), PadPrf::new(&k_val));
            let mut previous = None;
            let mut padded = run
                .iter()
                .filter(|r| previous.replace(**r) != Some(**r))
                .copied()
                .chain(core::iter::repeat(RecordRef::PADDING))
                .take((end - start) as usize)
                .peekable();
            let mut chunk = [Label([0; 16]); 32];
            let mut c = start;
            while padded.peek().is_some() {
                let n = ((end - c) as usize).min(chunk.len());
                let chunk = &mut chunk[..n];
                labels.labels(c, chunk);
                for (label, plain) in chunk.iter().zip(padded.by_ref()) {
                    entries.push(Entry {
                        label: *label,
                        value: xor32(&plain, &pads.pad(c)),
                    });
                    c += 1;
                }
            }
            updated.push((kw, end));
        }
        let shard = Shard::from_entries(self.id, entries)?;
        for (kw, end) in updated {
            match self.counters.get_mut(kw) {
                Some(count) => *count = end,
                None => {
                    self.counters.insert(kw.clone(), end);
                }
            }
        }
        Ok(shard)
    }

    /// Starts the next epoch under `policy` (the same or a new one) with a fresh key and
    /// fresh counters, returning the new state and its capsule. Entries of the new epoch
    /// cannot be found with tokens of this one (forward privacy across epochs); this
    /// partition stays searchable for holders of its key.
    ///
    /// # Errors
    /// As for [`OwnerPartition::create`], or [`Error::LimitExceeded`] on epoch overflow.
    pub fn rotate<R: CryptoRngCore + ?Sized>(
        &self,
        policy: Policy,
        pk: &<Fame as Scheme>::PublicKey,
        rng: &mut R,
    ) -> Result<(Self, Capsule)> {
        let (next, capsule) = Self::create(self.partition.next_epoch(policy)?, pk, rng)?;
        Ok((next.with_padding(self.padding), capsule))
    }
}

impl core::fmt::Debug for OwnerPartition {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("OwnerPartition")
            .field("id", &self.id)
            .field("keywords", &self.counters.len())
            .field("padding", &self.padding)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn padding_targets() {
        assert_eq!(Padding::None.target(5), 5);
        assert_eq!(Padding::Multiple(1).target(5), 5);
        assert_eq!(Padding::Multiple(4).target(5), 8);
        assert_eq!(Padding::Multiple(4).target(8), 8);
        assert_eq!(Padding::PowerOfTwo.target(5), 8);
        assert_eq!(Padding::PowerOfTwo.target(1), 1);
        assert_eq!(Padding::PowerOfTwo.target(0), 1);
    }
}
