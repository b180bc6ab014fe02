//! The index host: stores shards, answers searches, proves answers, compacts.

use super::merkle::ShardRoot;
use super::partition::PartitionId;
use super::prf::{Label, LabelPrf, PrefixHasher};
use super::proof::{AbsenceProof, MemberProof, VerifiableAnswer};
use super::shard::Shard;
use super::token::{EncryptedRef, SearchToken};
use crate::error::{Error, Result};
use std::collections::HashMap;
use std::hash::BuildHasherDefault;

/// Largest number of labels computed ahead of the probes.
const MAX_CHUNK: usize = 32;

/// Where an entry lives: its value (kept here so that a search needs one probe) and its
/// shard and leaf index (for its membership proof).
#[derive(Clone, Copy)]
struct Slot {
    value: [u8; 32],
    shard: u32,
    index: u32,
}

type LabelMap = HashMap<Label, Slot, BuildHasherDefault<PrefixHasher>>;

#[derive(Default)]
struct HostPartition {
    shards: Vec<Shard>,
    /// Every entry of every shard, for O(1) probes and proofs.
    map: LabelMap,
}

/// An index host: keeps the shards of any number of partitions and a merged in-memory
/// table per partition, and answers [`SearchToken`]s.
///
/// Search is symmetric-key only: the host evaluates `label_c = PRF(K_lab, c)` for
/// `c = 0, 1, …` and probes its table until the first miss, so a query costs
/// O(results + 1) PRF calls and probes. It never sees a keyword, a partition key or a
/// record reference in the clear. The table also records which shard holds each label,
/// so a proved answer costs one probe and one Merkle path per result plus one absence
/// proof per shard: O(results · log n + shards · log n) hashes for shards of up to `n`
/// entries, whatever the number of shards (an owner that merges shards logarithmically,
/// see [`super::OwnerPartition::merge_span`], keeps them at most `log2 N + 1`).
#[derive(Default)]
pub struct IndexHost {
    partitions: HashMap<PartitionId, HostPartition>,
}

impl IndexHost {
    /// An empty host.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a shard to its partition (creating the partition if new) and returns its
    /// root. Honest labels never repeat: two entries under one label would give the host
    /// the XOR of their record references (same label, same pad). So a shard that repeats
    /// a label of its partition (e.g. the same shard twice, or a shard sharing a single
    /// entry with an earlier one) or repeats a label within itself is rejected whole, and
    /// the host is left unchanged.
    ///
    /// # Errors
    /// [`Error::ShardConflict`] on a repeated label.
    pub fn insert_shard(&mut self, shard: Shard) -> Result<ShardRoot> {
        // Every constructor of `Shard` (decoding included) already refuses a repeated
        // label; checked again here because the host's table would silently keep only
        // one of two entries under a label.
        if shard.entries().windows(2).any(|w| w[0].label >= w[1].label) {
            return Err(Error::ShardConflict("label repeated within the shard"));
        }
        let root = shard.root();
        let part = self.partitions.entry(*shard.partition()).or_default();
        if shard
            .entries()
            .iter()
            .any(|e| part.map.contains_key(&e.label))
        {
            return Err(Error::ShardConflict(
                "label already present in the partition",
            ));
        }
        let shard_index = u32::try_from(part.shards.len())
            .map_err(|_| Error::ShardConflict("too many shards in the partition"))?;
        part.map.reserve(shard.len());
        part.map
            .extend(shard.entries().iter().zip(0u32..).map(|(e, index)| {
                let slot = Slot {
                    value: e.value,
                    shard: shard_index,
                    index,
                };
                (e.label, slot)
            }));
        part.shards.push(shard);
        Ok(root)
    }

    /// Searches: the encrypted values of entries `c = 0, 1, …` of the token's keyword, in
    /// order, up to the first missing label. Unknown partitions yield nothing.
    pub fn search(&self, token: &SearchToken) -> Vec<EncryptedRef> {
        let mut out = Vec::new();
        self.search_into(token, &mut out);
        out
    }

    /// [`IndexHost::search`] appending to `out` (reuses its allocation); returns the
    /// number of values appended.
    pub fn search_into(&self, token: &SearchToken, out: &mut Vec<EncryptedRef>) -> usize {
        let Some(part) = self.partitions.get(token.partition()) else {
            return 0;
        };
        let prf = LabelPrf::new(token.label_key());
        let start = out.len();
        // Labels are computed a chunk at a time and then probed back to back: the probes
        // are independent, so the CPU overlaps their cache misses (with one PRF call
        // between probes it cannot). Chunks grow 2, 4, …, 32 so that small answers waste
        // few PRF calls past the end. The loop is bounded by the table size: a partition
        // cannot hold more results than entries.
        let limit = part.map.len() as u64;
        let mut labels = [Label([0; 16]); MAX_CHUNK];
        let (mut c, mut chunk) = (0u64, 2usize);
        while c <= limit {
            prf.labels(c, &mut labels[..chunk]);
            for l in labels.iter().take(chunk) {
                match part.map.get(l) {
                    Some(slot) => out.push(EncryptedRef(slot.value)),
                    None => return out.len() - start,
                }
            }
            c += chunk as u64;
            chunk = (chunk * 2).min(MAX_CHUNK);
        }
        out.len() - start
    }

    /// Searches and proves the answer: a membership proof per result and, for every
    /// shard of the partition, a proof that the terminating label is absent. Check it
    /// with [`super::KeywordKey::verify`] against the anchored roots. An unknown
    /// partition has no shards: the answer is empty and verifies against no roots.
    pub fn prove(&self, token: &SearchToken) -> VerifiableAnswer {
        let Some(part) = self.partitions.get(token.partition()) else {
            return VerifiableAnswer::default();
        };
        let prf = LabelPrf::new(token.label_key());
        let mut results = Vec::new();
        let mut c = 0u64;
        let terminal = loop {
            let l = prf.label(c);
            let Some(slot) = part.map.get(&l) else {
                break l;
            };
            let tree = part.shards.get(slot.shard as usize).map(Shard::tree);
            results.push(MemberProof {
                shard: slot.shard,
                index: slot.index.into(),
                value: slot.value,
                path: tree
                    .map(|t| t.path(slot.index as usize))
                    .unwrap_or_default(),
            });
            c += 1;
        };
        let absent = part
            .shards
            .iter()
            .map(|shard| absence(shard, &terminal))
            .collect();
        VerifiableAnswer {
            results,
            absent,
            sizes: part.shards.iter().map(|s| s.len() as u64).collect(),
        }
    }

    /// Compacts a partition: merges all its shards into one (same search results) and
    /// returns the new root to anchor in place of the old ones.
    ///
    /// # Errors
    /// [`Error::UnknownPartition`]; [`Error::LimitExceeded`] if the merged shard would
    /// be too large (nothing changes then).
    pub fn compact(&mut self, partition: &PartitionId) -> Result<ShardRoot> {
        let part = self
            .partitions
            .get_mut(partition)
            .ok_or(Error::UnknownPartition)?;
        let merged = Shard::merge(&part.shards.iter().collect::<Vec<_>>())?;
        self.truncate(partition, 0);
        self.insert_shard(merged)
    }

    /// Drops the shards of a partition after the first `keep` (and their entries), e.g.
    /// before inserting the shard that an owner anchored in their place. The partition
    /// stays known even if no shard remains.
    pub fn truncate(&mut self, partition: &PartitionId, keep: usize) {
        let Some(part) = self.partitions.get_mut(partition) else {
            return;
        };
        if keep >= part.shards.len() {
            return;
        }
        let dropped = part.shards.split_off(keep);
        let dropped_entries: usize = dropped.iter().map(Shard::len).sum();
        if dropped_entries.saturating_mul(2) > part.map.len() {
            // Most of the table goes: rebuild it from the kept shards.
            part.map.retain(|_, slot| (slot.shard as usize) < keep);
        } else {
            for e in dropped.iter().flat_map(Shard::entries) {
                part.map.remove(&e.label);
            }
        }
    }

    /// The roots of a partition's shards, in the order answers refer to them.
    pub fn roots(&self, partition: &PartitionId) -> Vec<ShardRoot> {
        self.shards(partition).iter().map(Shard::root).collect()
    }

    /// A partition's shards (empty if unknown).
    pub fn shards(&self, partition: &PartitionId) -> &[Shard] {
        self.partitions
            .get(partition)
            .map_or(&[], |p| p.shards.as_slice())
    }

    /// Number of entries of a partition.
    pub fn entry_count(&self, partition: &PartitionId) -> usize {
        self.partitions.get(partition).map_or(0, |p| p.map.len())
    }

    /// Drops a partition (e.g. after an owner deleted it). Returns whether it existed.
    pub fn remove_partition(&mut self, partition: &PartitionId) -> bool {
        self.partitions.remove(partition).is_some()
    }

    /// The partitions held.
    pub fn partitions(&self) -> impl Iterator<Item = &PartitionId> + '_ {
        self.partitions.keys()
    }
}

redacted_debug!(IndexHost, |x| "partitions" => x.partitions.len());

/// The sorted-neighbour proof that `label` is not in `shard` (the caller knows it is not).
fn absence(shard: &Shard, label: &Label) -> AbsenceProof {
    let pos = match shard.find(label) {
        Ok(i) | Err(i) => i,
    };
    AbsenceProof {
        left: pos.checked_sub(1).and_then(|i| shard.leaf_proof(i)),
        right: shard.leaf_proof(pos),
    }
}
