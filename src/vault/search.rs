//! Search: opening partition capsules, loading anchored shards, verified answers.

use std::collections::{BTreeSet, HashMap};

use super::{Vault, parse_cid};
use crate::chain::{Address, B256, PublishedCapsule, RecordId};
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
    /// Roots of the shards inserted into `host`, per partition, in anchor order.
    loaded: HashMap<PartitionId, Vec<ShardRoot>>,
    /// Opened partition keys per (reader, partition); `None`: the policy is not satisfied.
    keys: HashMap<(Address, B256), Option<PartitionKey>>,
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
                Ok(found) => hits.extend(found),
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
    ) -> Result<Vec<SearchHit>> {
        let Some(key) = self.partition_key(user, entry).await? else {
            return Ok(Vec::new());
        };
        let roots = self.load_partition(entry).await?;
        if roots.is_empty() {
            return Ok(Vec::new());
        }
        let pid = PartitionId::from_bytes(entry.partition.0);
        let kw = KeywordKey::derive(&pid, &key, keyword);
        let answer = self.search_cache()?.host.prove(&kw.token());
        let mut hits = Vec::new();
        for r in kw.verify(&roots, &answer)? {
            let record = record_of_ref(&r)?;
            let owner = self.record_info(record).await?.owner;
            if owner != entry.publisher {
                return Err(Tampering::ForeignRecord {
                    publisher: entry.publisher,
                    record,
                    owner,
                }
                .into());
            }
            hits.push(SearchHit { record, owner });
        }
        Ok(hits)
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

    /// Loads the anchored shards of a partition into the host; returns their roots in
    /// anchor order.
    async fn load_partition(&self, entry: &PublishedCapsule) -> Result<Vec<ShardRoot>> {
        let pid = PartitionId::from_bytes(entry.partition.0);
        let anchors = self
            .ledger
            .index_anchors(entry.publisher, entry.partition)
            .await?;
        for (slot, anchor) in anchors.iter().enumerate() {
            if anchor.shard_seq != slot as u64 {
                return Err(Tampering::AnchorGap {
                    partition: entry.partition,
                    shard_seq: slot as u64,
                }
                .into());
            }
        }
        let loaded = self.search_cache()?.loaded.get(&pid).map_or(0, Vec::len);
        for anchor in anchors.iter().skip(loaded) {
            let cid = parse_cid(&anchor.shard_cid, Pointer::IndexAnchor)?;
            let shard = Shard::from_bytes(&self.store.get(&cid).await?)
                .map_err(|source| Tampering::ShardEncoding { cid, source })?;
            let root = shard.root();
            if shard.partition() != &pid || root.as_bytes() != &anchor.merkle_root.0 {
                return Err(Tampering::ShardMismatch { cid }.into());
            }
            let mut cache = self.search_cache()?;
            let have = cache.loaded.get(&pid).map_or(0, Vec::len);
            if have as u64 == anchor.shard_seq {
                cache.host.insert_shard(shard)?;
                cache.loaded.entry(pid).or_default().push(root);
            }
        }
        Ok(self
            .search_cache()?
            .loaded
            .get(&pid)
            .cloned()
            .unwrap_or_default())
    }
}
