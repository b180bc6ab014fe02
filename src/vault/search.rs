//! Search: opening partition capsules, loading anchored shards, verified answers.

use std::collections::{BTreeSet, HashMap};

use super::{Vault, parse_cid};
use crate::chain::{Address, B256, IndexAnchor, PublishedCapsule, RecordId};
use crate::error::{Error, Pointer, Result, Tampering};
use crate::identity::Member;
use crate::index::sse::{
    Capsule, IndexHost, KeywordKey, Partition, PartitionId, PartitionKey, Shard, ShardRoot,
};
use crate::index::{Keyword, RecordRef};
use crate::manifest::policy_hash;

/// A verified search result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub struct SearchHit {
    /// The matching record.
    pub record: RecordId,
    /// Its owner (the partition's publisher).
    pub owner: Address,
}

/// The outcome of [`Vault::search`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SearchResults {
    /// Verified hits, ordered by record id.
    pub hits: Vec<SearchHit>,
    /// Partitions the user could open but that failed verification (skipped).
    pub rejected: Vec<RejectedPartition>,
    /// Bytes of the membership and absence proofs checked (what a remote index host
    /// would send with the answers; see `VerifiableAnswer::proof_bytes`).
    pub proof_bytes: usize,
}

impl SearchResults {
    /// The matching record ids, ascending.
    pub fn records(&self) -> Vec<RecordId> {
        self.hits.iter().map(|h| h.record).collect()
    }
}

/// A published index partition that failed verification during a search.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RejectedPartition {
    /// Who published it.
    pub publisher: Address,
    /// The partition id.
    pub partition: B256,
    /// Its epoch.
    pub epoch: u64,
    /// Why it was rejected.
    pub reason: String,
}

#[derive(Default)]
pub(super) struct SearchCache {
    host: IndexHost,
    /// The live shards inserted into `host`, per partition, oldest first.
    loaded: HashMap<PartitionId, Vec<LoadedShard>>,
    /// Opened partition keys per (reader, partition); `None`: the policy is not satisfied.
    keys: HashMap<(Address, B256), Option<PartitionKey>>,
}

/// A live shard in the search cache: the batches it holds and its verified root.
#[derive(Clone, Copy)]
struct LoadedShard {
    last_seq: u64,
    root: ShardRoot,
}

pub(super) fn record_ref(record: RecordId) -> Result<RecordRef> {
    let mut bytes = [0u8; 32];
    bytes[..8].copy_from_slice(&record.0.to_be_bytes());
    Ok(RecordRef::new(bytes)?)
}

fn record_of_ref(r: &RecordRef) -> Result<RecordId> {
    let bytes = r.as_bytes();
    let (id, rest) = bytes.split_at(8);
    if rest.iter().any(|&b| b != 0) {
        return Err(Tampering::NotARecordRef.into());
    }
    let mut be = [0u8; 8];
    be.copy_from_slice(id);
    Ok(RecordId(u64::from_be_bytes(be)))
}

impl Vault {
    /// Finds the records whose owners indexed `keyword` in a partition `user` can open.
    ///
    /// For every published partition capsule: checks it against the chain (CID,
    /// partition id, policy hash), opens it if the user's attributes satisfy its policy
    /// (one CP-ABE decryption per partition, cached), loads the partition's anchored
    /// shards (each verified against its CID and on-chain Merkle root), derives the
    /// search token, and verifies the answer's membership and absence proofs against the
    /// anchored roots; each hit must be a record its partition's publisher owns. The
    /// index host (here in-process) learns neither keyword nor results.
    ///
    /// Anyone can publish a partition on chain, so a partition that fails verification
    /// does not fail the search: it is skipped and reported in
    /// [`SearchResults::rejected`] (a tampered shard, a forged anchor, a capsule that
    /// does not match, a hit naming someone else's record).
    ///
    /// # Errors
    /// Storage and chain failures (unreachable node, timeouts).
    pub async fn search(&self, user: &Member, keyword: &Keyword) -> Result<SearchResults> {
        let mut results = SearchResults::default();
        let mut hits = BTreeSet::new();
        for entry in self.ledger.capsules(None).await? {
            match self.search_partition(user, &entry, keyword).await {
                Ok((found, proof_bytes)) => {
                    hits.extend(found);
                    results.proof_bytes += proof_bytes;
                }
                // A backend that fails fails the search; anything wrong with the
                // partition itself (anyone can publish one) only skips it.
                Err(e) if e.is_unavailable() => return Err(e),
                Err(e) => results.rejected.push(RejectedPartition {
                    publisher: entry.publisher,
                    partition: entry.partition,
                    epoch: entry.epoch,
                    reason: e.to_string(),
                }),
            }
        }
        results.hits = hits.into_iter().collect();
        Ok(results)
    }

    async fn search_partition(
        &self,
        user: &Member,
        entry: &PublishedCapsule,
        keyword: &Keyword,
    ) -> Result<(Vec<SearchHit>, usize)> {
        let Some(key) = self.partition_key(user, entry).await? else {
            return Ok((Vec::new(), 0));
        };
        let roots = self.load_partition(entry).await?;
        if roots.is_empty() {
            return Ok((Vec::new(), 0));
        }
        let pid = PartitionId::from_bytes(entry.partition.0);
        let kw = KeywordKey::derive(&pid, &key, keyword);
        let answer = self.search_cache()?.host.prove(&kw.token());
        let records = kw
            .verify(&roots, &answer)?
            .iter()
            .map(record_of_ref)
            .collect::<Result<Vec<_>>>()?;
        // Every hit must be the publisher's own record: one view call for the whole answer.
        if let Some(record) = self
            .ledger
            .first_not_owned_by(entry.publisher, &records)
            .await?
        {
            let owner = self.record_info(record).await?.owner;
            return Err(Tampering::ForeignRecord {
                publisher: entry.publisher,
                record,
                owner,
            }
            .into());
        }
        let owner = entry.publisher;
        let hits = records
            .into_iter()
            .map(|record| SearchHit { record, owner })
            .collect();
        Ok((hits, answer.proof_bytes()))
    }

    fn search_cache(&self) -> Result<std::sync::MutexGuard<'_, SearchCache>> {
        self.search
            .lock()
            .map_err(|_| Error::inconsistent("search cache", "poisoned by a panic"))
    }

    async fn partition_key(
        &self,
        user: &Member,
        entry: &PublishedCapsule,
    ) -> Result<Option<PartitionKey>> {
        let cache_key = (user.address(), entry.partition);
        if let Some(cached) = self.search_cache()?.keys.get(&cache_key) {
            return Ok(cached.clone());
        }
        let cid = parse_cid(&entry.capsule_cid, Pointer::PublishedCapsule)?;
        let capsule = Capsule::from_bytes(&self.store.get(&cid).await?)
            .map_err(|source| Tampering::CapsuleEncoding { cid, source })?;
        let policy = capsule.policy()?;
        let pid = Partition::new(entry.publisher.as_slice(), policy.clone(), entry.epoch)?.id();
        if policy_hash(&policy) != entry.policy_hash || *pid.as_bytes() != entry.partition.0 {
            return Err(Tampering::CapsuleMismatch { cid }.into());
        }
        let key = if policy.is_satisfied_by(user.attributes()) {
            Some(capsule.open(user.key(), &pid)?)
        } else {
            None
        };
        self.search_cache()?.keys.insert(cache_key, key.clone());
        Ok(key)
    }

    /// Brings the partition's live shards in the host up to date with the chain and returns
    /// their roots, oldest first. One view call (the index head) when nothing changed;
    /// otherwise the anchors from the head back to the newest shard still cached (the live
    /// shards before it are unchanged: anchors are immutable and unique per last batch), and
    /// only those shards are fetched and verified.
    async fn load_partition(&self, entry: &PublishedCapsule) -> Result<Vec<ShardRoot>> {
        let pid = PartitionId::from_bytes(entry.partition.0);
        let head = self
            .ledger
            .index_head(entry.publisher, entry.partition)
            .await?;
        let cached = self
            .search_cache()?
            .loaded
            .get(&pid)
            .cloned()
            .unwrap_or_default();
        let mut fresh: Vec<IndexAnchor> = Vec::new();
        let mut end = head;
        let keep = loop {
            if let Some(i) = cached.iter().position(|s| s.last_seq + 1 == end) {
                break i + 1;
            }
            let Some(last_seq) = end.checked_sub(1) else {
                break 0;
            };
            let anchor = self
                .ledger
                .index_anchor(entry.publisher, entry.partition, last_seq)
                .await?
                .ok_or(Tampering::AnchorGap {
                    partition: entry.partition,
                    last_seq,
                })?;
            end = anchor.first_seq;
            fresh.push(anchor);
        };
        if fresh.is_empty() && keep == cached.len() {
            return Ok(cached.iter().map(|s| s.root).collect());
        }
        let mut shards = Vec::with_capacity(fresh.len());
        for anchor in fresh.iter().rev() {
            shards.push(self.fetch_shard(&pid, anchor).await?);
        }
        let mut cache = self.search_cache()?;
        let cache = &mut *cache;
        let mut live: Vec<LoadedShard> = cached.get(..keep).unwrap_or_default().to_vec();
        cache.host.truncate(&pid, keep);
        for (shard, anchor) in shards.into_iter().zip(fresh.iter().rev()) {
            let root = match cache.host.insert_shard(shard) {
                Ok(root) => root,
                Err(e) => {
                    // Leave nothing half-loaded: the next search starts over.
                    cache.host.remove_partition(&pid);
                    cache.loaded.remove(&pid);
                    return Err(e.into());
                }
            };
            live.push(LoadedShard {
                last_seq: anchor.last_seq,
                root,
            });
        }
        let roots = live.iter().map(|s| s.root).collect();
        cache.loaded.insert(pid, live);
        Ok(roots)
    }

    /// Fetches the shard an anchor points to and checks it against the anchor (partition
    /// and Merkle root).
    pub(super) async fn fetch_shard(
        &self,
        pid: &PartitionId,
        anchor: &IndexAnchor,
    ) -> Result<Shard> {
        let cid = parse_cid(&anchor.shard_cid, Pointer::IndexAnchor)?;
        let shard = Shard::from_bytes(&self.store.get(&cid).await?)
            .map_err(|source| Tampering::ShardEncoding { cid, source })?;
        if shard.partition() != pid || shard.root().as_bytes() != &anchor.merkle_root.0 {
            return Err(Tampering::ShardMismatch { cid }.into());
        }
        Ok(shard)
    }
}
