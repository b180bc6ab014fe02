//! The data owner's side: partition creation, batches of entries, padding, rotation, and
//! the canonical encoding of the owner's state.

use super::partition::{MAX_OWNER_LEN, Partition, PartitionId, PartitionKey};
use super::prf::{KeywordTag, Label, LabelPrf, PadPrf, PrefixHasher, keyword_keys_and_tag, xor32};
use super::shard::{Entry, MAX_SHARD_ENTRIES, Shard};
use crate::error::{DecodeError, Error, Result};
use crate::format::Kind;
use crate::keyword::Keyword;
use crate::record::RecordRef;
use medseal_abe::Policy;
use rand_core::CryptoRngCore;
use std::collections::{HashMap, HashSet};
use std::hash::BuildHasherDefault;
use zeroize::{Zeroize, Zeroizing};

/// Most keywords one partition may hold counters for (its encoded state then takes
/// 24 bytes per keyword: at most 384 MiB).
pub const MAX_PARTITION_KEYWORDS: u32 = 1 << 24;

/// Encoded size of one keyword counter: tag (16) and counter (8).
const COUNTER_BYTES: usize = 24;

/// Most live shards one partition's state may list. An owner that follows
/// [`OwnerPartition::merge_span`] keeps at most `log2(entries + batches) + 1` (under 70);
/// the limit only bounds an owner that never merges.
pub const MAX_LIVE_SHARDS: u32 = 1 << 20;

/// Encoded size of one live shard: last batch (8) and entries (8).
const LIVE_BYTES: usize = 16;

/// One live shard of a partition: batches `first..=last` (shard sequence numbers) merged
/// into one shard of `entries` entries. A partition's live shards cover its batches
/// `0..next_shard_seq` in order, without gaps or overlaps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct LiveShard {
    /// Sequence number of its first batch.
    pub first: u64,
    /// Sequence number of its last batch (the slot its anchor is keyed by).
    pub last: u64,
    /// Number of entries (padding included).
    pub entries: u64,
}

impl LiveShard {
    /// The merge weight: entries, plus one so that empty batches count too.
    fn weight(&self) -> u64 {
        self.entries.saturating_add(1)
    }
}

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

/// A data owner's state for one partition: the partition, its key `K`, the padding of
/// its batches, per keyword the counter `c` of the next entry, the sequence number of
/// the next shard and the live shards. Keep it private (it holds `K`).
///
/// **Logarithmic merging.** Every batch becomes a shard with the next sequence number;
/// [`OwnerPartition::merge_span`] then says how many of the newest live shards to merge
/// into one (the caller merges them with [`Shard::merge`], stores and anchors the result
/// in place of the merged ones, and reports it with [`OwnerPartition::record_merge`]).
/// The rule keeps every live shard more than twice as heavy as the next newer one
/// (weight: entries + 1), so a partition has at most `log2(entries + batches) + 1` live
/// shards, and an entry is rewritten O(log N) times over the partition's life (each
/// time its shard at least 1.5× larger): a searcher proves an answer against O(log N)
/// shards instead of one per batch. A *major compaction* (an empty batch, merged with
/// every live shard: `record_merge(live_shards().len(), ..)`) leaves one live shard, which
/// trivially keeps the rule, so later batches keep the bound.
///
/// Persist it with [`OwnerPartition::to_bytes`] and restore it with
/// [`OwnerPartition::from_bytes`]; between two full encodings, persist only what changed
/// with [`OwnerPartition::delta`] (its size depends on the keywords changed since the
/// previous delta, not on the partition's history) and replay it on the restored state
/// with [`OwnerPartition::apply_delta`]. The counters are keyed by a 16-byte tag derived from
/// `K` and the keyword (see `notes::formats`), not by keyword text: the state holds no
/// plaintext keyword, and decoding it never normalises text again, so a restored state
/// means exactly what was saved (re-normalising text that changed meaning could restart
/// a keyword's counter and repeat a label, which would leak the XOR of two record
/// references).
///
/// **Never restore a state older than one that produced a shard.** Counters only grow;
/// a batch on an older state (a backup, a replica that missed a batch) re-uses the
/// counters of entries already published, so it emits labels the host already holds,
/// and each repeat gives the host the XOR of two record references. The state cannot
/// know its own history: the caller keeps the latest state (or at least its
/// [`OwnerPartition::next_shard_seq`], e.g. as the number of anchored shards) and checks
/// any state it restores with [`OwnerPartition::check_successor`] against the latest
/// one it knows. As a last line of defence [`super::IndexHost::insert_shard`] refuses a
/// shard repeating a label, but a host is not trusted to do so.
pub struct OwnerPartition {
    partition: Partition,
    id: PartitionId,
    key: PartitionKey,
    counters: HashMap<KeywordTag, u64, BuildHasherDefault<PrefixHasher>>,
    padding: Padding,
    next_shard: u64,
    live: Vec<LiveShard>,
    /// Tags whose counters changed since the last [`OwnerPartition::delta`] (not part of
    /// the encoding).
    changed: HashSet<KeywordTag, BuildHasherDefault<PrefixHasher>>,
}

impl OwnerPartition {
    /// The state of a new partition: a fresh key, no entries, no padding.
    ///
    /// The key still has to reach users: wrap it with [`super::Capsule::seal`] (`pk`,
    /// [`OwnerPartition::partition`], [`OwnerPartition::key`]) when publishing the
    /// partition, and anchor the capsule's CID.
    pub fn create<R: CryptoRngCore + ?Sized>(partition: Partition, rng: &mut R) -> Self {
        Self {
            id: partition.id(),
            partition,
            key: PartitionKey::generate(rng),
            counters: HashMap::default(),
            padding: Padding::None,
            next_shard: 0,
            live: Vec::new(),
            changed: HashSet::default(),
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

    /// The volume padding of future batches.
    pub fn padding(&self) -> Padding {
        self.padding
    }

    /// How many entries (real and dummy) `keyword` has in this partition: the counter of
    /// its next entry.
    pub fn count(&self, keyword: &Keyword) -> u64 {
        let (_, _, tag) = keyword_keys_and_tag(self.key.as_bytes(), keyword);
        self.counters.get(&tag).copied().unwrap_or(0)
    }

    /// The sequence number of the next shard [`OwnerPartition::batch`] returns: 0 for the
    /// first, then 1, 2, … (every successful batch advances it, an empty one too). A
    /// caller that anchors shards in numbered slots uses it as the slot.
    pub fn next_shard_seq(&self) -> u64 {
        self.next_shard
    }

    /// The live shards, oldest first: they cover batches `0..next_shard_seq`.
    pub fn live_shards(&self) -> &[LiveShard] {
        &self.live
    }

    /// How many of the newest live shards to merge into one now (the newest included):
    /// the longest run such that, merged, every live shard stays more than twice as
    /// heavy as the next newer one. 1 means nothing to merge (0 for no shards).
    pub fn merge_span(&self) -> usize {
        let Some(newest) = self.live.last() else {
            return 0;
        };
        let mut weight = newest.weight();
        let mut span = 1;
        for older in self.live.iter().rev().skip(1) {
            if older.weight() > weight.saturating_mul(2) {
                break;
            }
            weight = weight.saturating_add(older.weight());
            span += 1;
        }
        span
    }

    /// Records that the newest `span` live shards were merged into `merged` (e.g. the
    /// [`Shard::merge`] of them), which now replaces them.
    ///
    /// # Errors
    /// [`Error::ShardConflict`] if `span` is 0 or more than the live shards, or `merged`
    /// belongs to another partition or does not hold exactly their entries (nothing
    /// changes then).
    pub fn record_merge(&mut self, span: usize, merged: &Shard) -> Result<()> {
        let start = self
            .live
            .len()
            .checked_sub(span)
            .filter(|_| span > 0)
            .ok_or(Error::ShardConflict("merge span outside the live shards"))?;
        let replaced = self.live.get(start..).unwrap_or_default();
        let entries: u64 = replaced.iter().map(|s| s.entries).sum();
        if merged.partition() != &self.id || merged.len() as u64 != entries {
            return Err(Error::ShardConflict(
                "merged shard does not hold exactly the entries it replaces",
            ));
        }
        let (first, last) = match (replaced.first(), replaced.last()) {
            (Some(f), Some(l)) => (f.first, l.last),
            _ => return Err(Error::ShardConflict("merge span outside the live shards")),
        };
        self.live.truncate(start);
        self.live.push(LiveShard {
            first,
            last,
            entries,
        });
        Ok(())
    }

    /// Turns a batch of `(keyword, record)` pairs into one immutable shard. Entry `c` of
    /// keyword `w` gets `label = PRF(K_lab, c)[..16]`, `value = record ⊕ PRF(K_val, c)`,
    /// continuing each keyword's counter; then padding is applied and the entries are
    /// sorted by label (so a shard's layout does not reveal the batch order). A pair
    /// repeated within the batch is stored once; within a batch a keyword's records get
    /// counters in record order. The shard gets sequence number
    /// [`OwnerPartition::next_shard_seq`] and becomes the newest live shard. The counters,
    /// the sequence number and the live shards change only if the shard is built.
    ///
    /// Deterministic: the same state and the same pairs give the same shard, byte for
    /// byte (a caller that crashed before persisting the advanced state can rebuild it).
    ///
    /// # Errors
    /// [`Error::LimitExceeded`] if the shard would exceed [`MAX_SHARD_ENTRIES`], the
    /// partition [`MAX_PARTITION_KEYWORDS`], or a counter would overflow.
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
        let mut updated: Vec<(KeywordTag, u64)> = Vec::with_capacity(keywords.len());
        let mut new_keywords = 0usize;
        for (id, kw) in keywords.iter().enumerate() {
            let (Some(&lo), Some(&hi)) = (starts.get(id), starts.get(id + 1)) else {
                continue;
            };
            let Some(run) = grouped.get_mut(lo..hi) else {
                continue;
            };
            run.sort_unstable();
            let unique = run.len() - run.windows(2).filter(|w| w[0] == w[1]).count();
            let (k_lab, k_val, tag) = keyword_keys_and_tag(self.key.as_bytes(), kw);
            let start = self.counters.get(&tag).copied().unwrap_or_else(|| {
                new_keywords += 1;
                0
            });
            let real_end = start
                .checked_add(unique as u64)
                .ok_or(Error::LimitExceeded {
                    what: "keyword counter",
                    limit: u64::MAX,
                })?;
            let end = self.padding.target(real_end);
            if (entries.len() as u64).saturating_add(end - start) > u64::from(MAX_SHARD_ENTRIES) {
                return Err(too_many());
            }
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
            updated.push((tag, end));
        }
        if self.counters.len().saturating_add(new_keywords) > MAX_PARTITION_KEYWORDS as usize {
            return Err(Error::LimitExceeded {
                what: "keywords in a partition",
                limit: MAX_PARTITION_KEYWORDS.into(),
            });
        }
        let next_shard = self.next_shard.checked_add(1).ok_or(Error::LimitExceeded {
            what: "shard sequence number",
            limit: u64::MAX,
        })?;
        let shard = Shard::from_entries(self.id, entries)?;
        self.changed.extend(updated.iter().map(|(tag, _)| *tag));
        self.counters.extend(updated);
        self.live.push(LiveShard {
            first: self.next_shard,
            last: self.next_shard,
            entries: shard.len() as u64,
        });
        self.next_shard = next_shard;
        Ok(shard)
    }

    /// Checks that this state may be used after `older` without repeating a label: the
    /// same partition and key, a shard sequence number not behind `older`'s, and for
    /// every keyword of `older` a counter not behind `older`'s. A state derived from
    /// `older` by batches passes; `older` itself passes (nothing new was emitted); a
    /// state that missed a batch of `older`'s history fails.
    ///
    /// Use it when restoring: `restored.check_successor(&latest_known)?`.
    ///
    /// # Errors
    /// [`Error::StaleOwnerState`] if this state is behind `older` or belongs to another
    /// partition or key.
    pub fn check_successor(&self, older: &OwnerPartition) -> Result<()> {
        let same_partition = self.id == older.id && self.key == older.key;
        let behind = self.next_shard < older.next_shard
            || older
                .counters
                .iter()
                .any(|(tag, &count)| self.counters.get(tag).is_none_or(|&c| c < count));
        if !same_partition || behind {
            return Err(Error::StaleOwnerState);
        }
        Ok(())
    }

    /// Starts the next epoch under `policy` (the same or a new one) with a fresh key,
    /// fresh counters and the same padding; seal its capsule as for
    /// [`OwnerPartition::create`]. Entries of the new epoch cannot be found with tokens of
    /// this one (forward privacy across epochs); this partition stays searchable for
    /// holders of its key.
    ///
    /// # Errors
    /// [`Error::LimitExceeded`] on epoch overflow.
    pub fn rotate<R: CryptoRngCore + ?Sized>(&self, policy: Policy, rng: &mut R) -> Result<Self> {
        let next = Self::create(self.partition.next_epoch(policy)?, rng);
        Ok(next.with_padding(self.padding))
    }

    /// The canonical encoding (layout in `notes::formats`). It contains the partition
    /// key: store it as a secret.
    pub fn to_bytes(&self) -> Zeroizing<Vec<u8>> {
        let mut counters: Vec<(&KeywordTag, &u64)> = self.counters.iter().collect();
        counters.sort_unstable_by_key(|(tag, _)| **tag);
        self.encode(Kind::OwnerPartition, &counters)
    }

    /// What changed since the previous call (or since the state was created or
    /// restored): the layout of [`OwnerPartition::to_bytes`] under its own object kind,
    /// with the current partition, key, padding, next shard sequence number and live
    /// shards, and only the counters that changed (layout in `notes::formats`). Its size
    /// depends on the keywords changed, not on the partition's history. Clears the record
    /// of changes: persist every delta, in order, on top of a full encoding, and replay
    /// them with [`OwnerPartition::apply_delta`]. It contains the partition key: store it
    /// as a secret.
    pub fn delta(&mut self) -> Zeroizing<Vec<u8>> {
        let mut counters: Vec<(&KeywordTag, &u64)> = self
            .changed
            .iter()
            .filter_map(|tag| self.counters.get_key_value(tag))
            .collect();
        counters.sort_unstable_by_key(|(tag, _)| **tag);
        let bytes = self.encode(Kind::OwnerPartitionDelta, &counters);
        self.changed.clear();
        bytes
    }

    /// Applies a [`OwnerPartition::delta`] of this partition: takes its padding, next
    /// shard sequence number and live shards, and sets its counters. Changes nothing on
    /// error.
    ///
    /// # Errors
    /// [`Error::Decode`] if it is not a well-formed delta; [`Error::StaleOwnerState`] if
    /// it belongs to another partition or key, or its next shard sequence number or any
    /// of its counters is behind this state's (applying it would move a counter back and
    /// repeat labels); [`Error::LimitExceeded`] past [`MAX_PARTITION_KEYWORDS`].
    pub fn apply_delta(&mut self, bytes: &[u8]) -> Result<()> {
        let delta = Self::decode(Kind::OwnerPartitionDelta, bytes)?;
        let behind = delta.next_shard < self.next_shard
            || delta
                .counters
                .iter()
                .any(|(tag, &count)| self.counters.get(tag).is_some_and(|&c| count < c));
        if delta.id != self.id || delta.key != self.key || behind {
            return Err(Error::StaleOwnerState);
        }
        let new = delta
            .counters
            .keys()
            .filter(|tag| !self.counters.contains_key(*tag))
            .count();
        if self.counters.len().saturating_add(new) > MAX_PARTITION_KEYWORDS as usize {
            return Err(Error::LimitExceeded {
                what: "keywords in a partition",
                limit: MAX_PARTITION_KEYWORDS.into(),
            });
        }
        self.padding = delta.padding;
        self.next_shard = delta.next_shard;
        self.live.clone_from(&delta.live);
        self.counters
            .extend(delta.counters.iter().map(|(t, c)| (*t, *c)));
        Ok(())
    }

    fn encode(&self, kind: Kind, counters: &[(&KeywordTag, &u64)]) -> Zeroizing<Vec<u8>> {
        let owner = self.partition.owner();
        let policy = self.partition.policy().to_string();
        let (mode, bucket) = match self.padding {
            Padding::None => (0, 0),
            Padding::Multiple(b) => (1, b),
            Padding::PowerOfTwo => (2, 0),
        };
        let mut w = kind.writer();
        // Exact size, reserved before the key is written: no reallocation leaves a copy
        // of it behind.
        let fixed = 4 + owner.len() + 4 + policy.len() + 8 + 32 + 5 + 8 + 4 + 4;
        w.reserve(fixed + self.live.len() * LIVE_BYTES + counters.len() * COUNTER_BYTES)
            .bytes(owner)
            .str(&policy)
            .u64(self.partition.epoch())
            .raw(self.key.as_bytes())
            .u8(mode)
            .u32(bucket)
            .u64(self.next_shard)
            .count(self.live.len());
        for shard in &self.live {
            w.u64(shard.last).u64(shard.entries);
        }
        w.count(counters.len());
        for (tag, count) in counters {
            w.raw(&tag.0).u64(**count);
        }
        Zeroizing::new(w.finish())
    }

    /// Decodes [`OwnerPartition::to_bytes`]: limits checked before allocating, the policy
    /// in canonical form, tags strictly increasing, counters non-zero, no trailing bytes.
    /// No keyword text is parsed.
    ///
    /// # Errors
    /// [`Error::Decode`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        Ok(Self::decode(Kind::OwnerPartition, bytes)?)
    }

    fn decode(kind: Kind, bytes: &[u8]) -> core::result::Result<Self, DecodeError> {
        let mut r = kind.reader(bytes)?;
        let owner = r.bytes("owner identifier", MAX_OWNER_LEN)?;
        let policy = r.policy()?;
        let epoch = r.u64()?;
        // Cannot fail: the owner's length was checked above.
        let partition =
            Partition::new(owner, policy, epoch).map_err(|_| DecodeError::TooLarge {
                what: "owner identifier",
                found: owner.len() as u64,
                limit: MAX_OWNER_LEN as u64,
            })?;
        let mut k = r.array()?;
        let key = PartitionKey::from_bytes(k);
        k.zeroize();
        let padding = match (r.u8()?, r.u32()?) {
            (0, 0) => Padding::None,
            (1, bucket) => Padding::Multiple(bucket),
            (2, 0) => Padding::PowerOfTwo,
            _ => return Err(DecodeError::Inconsistent("unknown padding mode")),
        };
        let next_shard = r.u64()?;
        let live = decode_live(&mut r, next_shard)?;
        let n = r.count(
            "partition keywords",
            MAX_PARTITION_KEYWORDS as usize,
            COUNTER_BYTES,
        )?;
        let mut counters = HashMap::with_capacity_and_hasher(n, Default::default());
        let mut previous = None;
        for _ in 0..n {
            let tag = KeywordTag(r.array()?);
            let count = r.u64()?;
            if previous.replace(tag).is_some_and(|p| p >= tag) {
                return Err(DecodeError::Unsorted("keyword tags"));
            }
            // A keyword without entries has no counter: zero would be a second encoding
            // of the same state.
            if count == 0 {
                return Err(DecodeError::Inconsistent("zero keyword counter"));
            }
            counters.insert(tag, count);
        }
        r.finish()?;
        Ok(Self {
            id: partition.id(),
            partition,
            key,
            counters,
            padding,
            next_shard,
            live,
            changed: HashSet::default(),
        })
    }
}

/// Decodes the live shards: each `last` after the previous one, the last one at
/// `next_shard - 1` (none if no batch yet), entries within the shard limit.
fn decode_live(
    r: &mut medseal_abe::codec::Reader<'_>,
    next_shard: u64,
) -> core::result::Result<Vec<LiveShard>, DecodeError> {
    let n = r.count("live shards", MAX_LIVE_SHARDS as usize, LIVE_BYTES)?;
    let mut live = Vec::with_capacity(n);
    let mut first = 0u64;
    for _ in 0..n {
        let (last, entries) = (r.u64()?, r.u64()?);
        if last < first || last >= next_shard {
            return Err(DecodeError::Unsorted("live shards"));
        }
        if entries > u64::from(MAX_SHARD_ENTRIES) {
            return Err(DecodeError::TooLarge {
                what: "live shard entries",
                found: entries,
                limit: MAX_SHARD_ENTRIES.into(),
            });
        }
        live.push(LiveShard {
            first,
            last,
            entries,
        });
        first = last + 1;
    }
    if first != next_shard {
        return Err(DecodeError::Inconsistent(
            "live shards do not cover every batch",
        ));
    }
    Ok(live)
}

redacted_debug!(OwnerPartition, |x|
    "id" => x.id,
    "keywords" => x.counters.len(),
    "padding" => x.padding,
    "next_shard_seq" => x.next_shard,
    "live_shards" => x.live.len()
);

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

    fn owner(padding: Padding) -> OwnerPartition {
        let partition = Partition::new(b"o", "role:doctor".parse().unwrap(), 2).unwrap();
        OwnerPartition::create(partition, &mut rand_core::OsRng).with_padding(padding)
    }

    fn record(i: u8) -> RecordRef {
        RecordRef::new([i; 32]).unwrap()
    }

    #[test]
    fn state_round_trips_and_rebuilds_the_same_shards() {
        let kws: Vec<Keyword> = (0..20)
            .map(|i| Keyword::term(&format!("k{i}")).unwrap())
            .collect();
        for padding in [Padding::None, Padding::Multiple(3), Padding::PowerOfTwo] {
            let mut o = owner(padding);
            let bytes = o.to_bytes();
            assert_eq!(
                OwnerPartition::from_bytes(&bytes).unwrap().to_bytes(),
                bytes
            );
            o.batch(kws.iter().map(|k| (k, record(1)))).unwrap();
            let saved = o.to_bytes();
            let mut restored = OwnerPartition::from_bytes(&saved).unwrap();
            assert_eq!(restored.to_bytes(), saved);
            assert_eq!(
                (restored.id(), restored.key(), restored.padding()),
                (o.id(), o.key(), padding)
            );
            assert_eq!(restored.partition(), o.partition());
            // Same state, same input: same shard, same next state (crash recovery).
            let pairs = [
                (&kws[0], record(2)),
                (&kws[7], record(2)),
                (&kws[0], record(3)),
            ];
            let a = o.batch(pairs).unwrap();
            let b = restored.batch(pairs).unwrap();
            assert_eq!(a.to_bytes(), b.to_bytes());
            assert_eq!(o.to_bytes(), restored.to_bytes());
            assert_eq!(o.next_shard_seq(), 2);
            let expected = match padding {
                Padding::None => 3,
                Padding::Multiple(_) => 6,
                _ => 4,
            };
            assert_eq!(o.count(&kws[0]), expected);
            assert_eq!(o.count(&Keyword::term("never").unwrap()), 0);
        }
    }

    #[test]
    fn the_state_holds_no_keyword_text() {
        let kw = Keyword::term("distinctive-diagnosis").unwrap();
        let mut o = owner(Padding::None);
        o.batch([(&kw, record(1))]).unwrap();
        let bytes = o.to_bytes();
        assert!(!bytes.windows(12).any(|w| w == b"distinctive-"));
        assert_eq!(
            bytes.len(),
            6 + 4 + 1 + 4 + 11 + 8 + 32 + 5 + 8 + 4 + LIVE_BYTES + 4 + COUNTER_BYTES
        );
    }

    #[test]
    fn failed_batches_change_nothing() {
        let kw = Keyword::term("x").unwrap();
        let mut o = owner(Padding::Multiple(MAX_SHARD_ENTRIES + 1));
        let before = o.to_bytes();
        assert!(matches!(
            o.batch([(&kw, record(1))]),
            Err(Error::LimitExceeded { .. })
        ));
        assert_eq!(o.to_bytes(), before);
        assert_eq!(o.next_shard_seq(), 0);
        // An empty batch is a shard too.
        assert!(o.batch([]).unwrap().is_empty());
        assert_eq!(o.next_shard_seq(), 1);
    }

    #[test]
    fn an_older_state_is_not_a_successor() {
        let kws = [Keyword::term("a").unwrap(), Keyword::term("b").unwrap()];
        let mut o = owner(Padding::None);
        let empty = OwnerPartition::from_bytes(&o.to_bytes()).unwrap();
        o.batch([(&kws[0], record(1))]).unwrap();
        let first = OwnerPartition::from_bytes(&o.to_bytes()).unwrap();
        o.batch([
            (&kws[1], record(2)),
            (&kws[1], record(4)),
            (&kws[0], record(3)),
        ])
        .unwrap();
        let stale = |r: Result<()>| matches!(r, Err(Error::StaleOwnerState));
        // Forward (or standing still) is fine.
        for older in [&empty, &first, &o] {
            o.check_successor(older).unwrap();
        }
        first.check_successor(&empty).unwrap();
        // Going back is not: the older state would repeat labels of later batches.
        assert!(stale(first.check_successor(&o)));
        assert!(stale(empty.check_successor(&first)));
        // A state whose counter for one keyword is behind, the sequence number not.
        let mut bytes = o.to_bytes().to_vec();
        let last = bytes.len() - 1;
        bytes[last] -= 1;
        let lowered = OwnerPartition::from_bytes(&bytes).unwrap();
        assert_eq!(lowered.next_shard_seq(), o.next_shard_seq());
        assert!(stale(lowered.check_successor(&o)));
        // A state that lost a keyword altogether.
        let mut forgot = o.to_bytes().to_vec();
        let n_at = forgot.len() - 2 * COUNTER_BYTES - 4;
        forgot[n_at..n_at + 4].copy_from_slice(&1u32.to_be_bytes());
        for keep in [0, 1] {
            let mut b = forgot[..n_at + 4].to_vec();
            let at = n_at + 4 + keep * COUNTER_BYTES;
            b.extend_from_slice(&forgot[at..at + COUNTER_BYTES]);
            let one = OwnerPartition::from_bytes(&b).unwrap();
            assert!(stale(one.check_successor(&o)));
        }
        // Another partition (the next epoch), or the same partition under another key.
        let next = o
            .rotate("role:doctor".parse().unwrap(), &mut rand_core::OsRng)
            .unwrap();
        assert!(stale(next.check_successor(&empty)));
        let other = owner(Padding::None);
        assert_eq!(other.id(), empty.id());
        assert!(stale(other.check_successor(&empty)));
        let mut rekeyed = empty.to_bytes().to_vec();
        let key_at = rekeyed.len() - 4 - 4 - 8 - 5 - 32;
        rekeyed[key_at] ^= 1;
        let rekeyed = OwnerPartition::from_bytes(&rekeyed).unwrap();
        assert_eq!(rekeyed.id(), empty.id());
        assert!(stale(rekeyed.check_successor(&empty)));
    }

    #[test]
    fn malformed_states_are_rejected() {
        let mut o = owner(Padding::Multiple(4));
        let kws = [Keyword::term("a").unwrap(), Keyword::term("b").unwrap()];
        o.batch(kws.iter().map(|k| (k, record(1)))).unwrap();
        let bytes = o.to_bytes();
        let decode = |b: &[u8]| OwnerPartition::from_bytes(b).map(|_| ());
        let counters = bytes.len() - 2 * COUNTER_BYTES;
        let live_at = counters - 4 - LIVE_BYTES - 4;
        let padding_at = live_at - 8 - 5;
        for cut in 0..bytes.len() {
            assert!(decode(&bytes[..cut]).is_err(), "cut {cut}");
        }
        let mut long = bytes.to_vec();
        long.push(0);
        assert!(matches!(
            decode(&long),
            Err(Error::Decode(DecodeError::TrailingBytes(1)))
        ));
        let patched = |at: usize, v: &[u8]| {
            let mut b = bytes.to_vec();
            b[at..at + v.len()].copy_from_slice(v);
            decode(&b)
        };
        // Tags out of order (swap the two counters).
        let mut swapped = bytes.to_vec();
        swapped[counters..].rotate_left(COUNTER_BYTES);
        assert!(matches!(
            decode(&swapped),
            Err(Error::Decode(DecodeError::Unsorted("keyword tags")))
        ));
        assert!(matches!(
            patched(bytes.len() - 8, &[0; 8]),
            Err(Error::Decode(DecodeError::Inconsistent(_)))
        ));
        assert!(matches!(
            patched(padding_at, &[3]),
            Err(Error::Decode(DecodeError::Inconsistent(_)))
        ));
        assert!(matches!(
            patched(padding_at, &[0]),
            Err(Error::Decode(DecodeError::Inconsistent(_)))
        ));
        assert!(matches!(
            patched(counters - 4, &u32::MAX.to_be_bytes()),
            Err(Error::Decode(DecodeError::TooLarge { .. }))
        ));
        assert!(matches!(
            patched(5, &[1]),
            Err(Error::Decode(DecodeError::WrongKind { found: 1, .. }))
        ));
        // The superseded layout without live shards is refused by its kind.
        assert!(matches!(
            patched(5, &[3]),
            Err(Error::Decode(DecodeError::WrongKind { found: 3, .. }))
        ));
        // Live shards: none although a batch was made; one ending after the last batch;
        // entries over the shard limit.
        let mut none = bytes[..live_at].to_vec();
        none.extend_from_slice(&0u32.to_be_bytes());
        none.extend_from_slice(&bytes[live_at + 4 + LIVE_BYTES..]);
        assert!(matches!(
            decode(&none),
            Err(Error::Decode(DecodeError::Inconsistent(_)))
        ));
        assert!(matches!(
            patched(live_at + 4, &1u64.to_be_bytes()),
            Err(Error::Decode(DecodeError::Unsorted("live shards")))
        ));
        assert!(matches!(
            patched(live_at + 12, &u64::MAX.to_be_bytes()),
            Err(Error::Decode(DecodeError::TooLarge { .. }))
        ));
        assert!(decode(&bytes).is_ok());
    }
}
