//! Search: opening partition capsules, loading anchored shards, verified answers.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError, Weak};

use super::keycache::KeyCache;
use super::{Vault, parse_cid};
use crate::chain::{Address, B256, HeadCheck, IndexAnchor, PublishedCapsule, RecordId};
use crate::error::{Error, Pointer, Result, Tampering};
use crate::identity::Member;
use crate::index::sse::{
    Capsule, DiskHost, KeywordKey, Partition, PartitionId, PartitionKey, Shard, ShardRoot,
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

/// File (in the data directory) of the local index cache: the live shards of every
/// partition searched, verified against their anchors when stored (see
/// [`crate::index::sse::DiskHost`]). Deleting it is safe: it is rebuilt from the store.
pub const INDEX_CACHE_FILE: &str = "index-cache.redb";

#[derive(Default)]
pub(super) struct SearchCache {
    /// The index host, opened on first use.
    host: Option<Arc<DiskHost>>,
    /// The live shards held by `host`, per partition, oldest first, as of the last
    /// search in this vault.
    loaded: HashMap<PartitionId, Vec<LoadedShard>>,
    /// Opened partition keys per reader (`None`: the policy is not satisfied), loaded
    /// from and appended to the reader's file in the data directory.
    keys: HashMap<Address, KeyCache>,
}

/// A live shard of a partition: the batches it holds and its anchored root.
#[derive(Clone, Copy)]
struct LoadedShard {
    last_seq: u64,
    root: ShardRoot,
}

/// From this many anchored batches on, a partition's unchanged head is checked with
/// [`crate::chain::Ledger::index_head_after`] rather than searched for.
const QUICK_HEAD_MIN: u64 = 32;

/// Marks the index cache file as failing: the next open replaces it.
const STALE_MARKER: &str = "index-cache.redb.stale";

/// Index caches open in this process, by file: vaults on one directory share one (its
/// file admits one handle at a time).
static OPEN_CACHES: Mutex<Vec<(PathBuf, Weak<DiskHost>)>> = Mutex::new(Vec::new());

/// The index cache at `path`, shared within the process. A file in use by another process
/// gives this vault a cache in memory; a file this build cannot read is replaced (it only
/// holds copies of anchored shards).
fn open_index_cache(path: &Path) -> Result<Arc<DiskHost>> {
    let key = std::fs::canonicalize(path.parent().unwrap_or(path))
        .map_or_else(|_| path.to_path_buf(), |dir| dir.join(INDEX_CACHE_FILE));
    let mut open = OPEN_CACHES.lock().unwrap_or_else(PoisonError::into_inner);
    open.retain(|(_, host)| host.strong_count() > 0);
    if let Some(host) = open
        .iter()
        .find(|(p, _)| *p == key)
        .and_then(|(_, h)| h.upgrade())
    {
        return Ok(host);
    }
    let stale = path.with_file_name(STALE_MARKER);
    if stale.exists() {
        match std::fs::remove_file(path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(Error::io(path)(e)),
            _ => std::fs::remove_file(&stale).map_err(Error::io(&stale))?,
        }
    }
    let host = match DiskHost::open(path) {
        Ok(host) => host,
        Err(crate::index::Error::CacheInUse) => return Ok(Arc::new(DiskHost::in_memory()?)),
        Err(_) => {
            std::fs::remove_file(path).map_err(Error::io(path))?;
            DiskHost::open(path)?
        }
    };
    let host = Arc::new(host);
    open.push((key, Arc::downgrade(&host)));
    Ok(host)
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
        let mut open = Vec::new();
        for entry in self.ledger.capsules(None).await? {
            match self.partition_key(user, &entry).await {
                Ok(Some(key)) => open.push((entry, key)),
                Ok(None) => {}
                Err(e) => reject(&mut results, &entry, e)?,
            }
        }
        // One view call checks that every partition loaded before is unchanged.
        let unchanged = self.unchanged_heads(&open).await?;
        let mut answered: Vec<(&PublishedCapsule, Vec<RecordId>)> = Vec::new();
        for ((entry, key), unchanged) in open.iter().zip(unchanged) {
            let pid = PartitionId::from_bytes(entry.partition.0);
            let kw = KeywordKey::derive(&pid, key, keyword);
            match self.partition_answer(entry, &kw, unchanged).await {
                Ok((records, proof_bytes)) => {
                    results.proof_bytes += proof_bytes;
                    if !records.is_empty() {
                        answered.push((entry, records));
                    }
                }
                Err(e) => reject(&mut results, entry, e)?,
            }
        }
        // Every hit must be its partition publisher's own record: one view call for all
        // partitions; a partition with a foreign hit is rejected, the others checked on.
        let mut hits = BTreeSet::new();
        let mut from = 0;
        while from < answered.len() {
            let groups: Vec<(Address, Vec<RecordId>)> = answered[from..]
                .iter()
                .map(|(entry, records)| (entry.publisher, records.clone()))
                .collect();
            let Some((g, record)) = self.ledger.first_not_owned_by_all(&groups).await? else {
                break;
            };
            let (entry, _) = answered.remove(from + g);
            let error = match self.record_info(record).await {
                Ok(info) => Tampering::ForeignRecord {
                    publisher: entry.publisher,
                    record,
                    owner: info.owner,
                }
                .into(),
                Err(e) => e,
            };
            reject(&mut results, entry, error)?;
            from += g;
        }
        for (entry, records) in answered {
            let owner = entry.publisher;
            hits.extend(
                records
                    .into_iter()
                    .map(|record| SearchHit { record, owner }),
            );
        }
        results.hits = hits.into_iter().collect();
        Ok(results)
    }

    /// For each opened partition, whether the index cache's copy is known current: one
    /// view call for all the partitions this vault loaded before (`false` for the others).
    async fn unchanged_heads(
        &self,
        open: &[(PublishedCapsule, PartitionKey)],
    ) -> Result<Vec<bool>> {
        let mut at = Vec::new();
        let mut checks = Vec::new();
        {
            let cache = self.search_cache()?;
            for (i, (entry, _)) in open.iter().enumerate() {
                let pid = PartitionId::from_bytes(entry.partition.0);
                let Some(cached) = cache.loaded.get(&pid) else {
                    continue;
                };
                let Some(last) = cached.last() else {
                    continue;
                };
                at.push(i);
                checks.push(HeadCheck {
                    anchorer: entry.publisher,
                    partition: entry.partition,
                    known: last.last_seq + 1,
                    known_first: cached.iter().rev().nth(1).map_or(0, |s| s.last_seq + 1),
                    known_root: B256::from(last.root.as_bytes()),
                });
            }
        }
        let mut unchanged = vec![false; open.len()];
        match self
            .ledger
            .index_heads_unchanged(&checks)
            .await
            .map_err(Error::from)
        {
            Ok(answers) => {
                for (i, same) in at.into_iter().zip(answers) {
                    unchanged[i] = same;
                }
            }
            Err(e) if e.is_unavailable() => return Err(e),
            // Each partition's head is then looked up on its own.
            Err(_) => {}
        }
        Ok(unchanged)
    }

    /// The partition's records for the keyword (verified) and the proof size. `unchanged`:
    /// the index cache's copy of the partition is known current (no head lookup).
    async fn partition_answer(
        &self,
        entry: &PublishedCapsule,
        kw: &KeywordKey,
        unchanged: bool,
    ) -> Result<(Vec<RecordId>, usize)> {
        let pid = PartitionId::from_bytes(entry.partition.0);
        // A failure may come from the local cache rather than the partition: another
        // vault of this process moved the partition on (walk the anchors again), the
        // cache holds a damaged copy (load the partition again from the store), or its
        // file fails (continue in memory; the file is rebuilt on the next open). Only
        // then is the partition reported.
        let mut attempt = 0;
        loop {
            match self
                .verified_answer(entry, kw, unchanged && attempt == 0)
                .await
            {
                Ok(found) => return Ok(found),
                Err(e) if attempt == 3 || (e.is_unavailable() && !from_cache(&e)) => {
                    return Err(e);
                }
                Err(_) => {
                    attempt += 1;
                    self.search_cache()?.loaded.remove(&pid);
                    if attempt == 2 {
                        let host = self.index_cache()?;
                        if blocking(move || host.remove_partition(&pid)).await.is_err() {
                            self.abandon_index_cache()?;
                        }
                    } else if attempt == 3 {
                        self.abandon_index_cache()?;
                    }
                }
            }
        }
    }

    /// The partition's records for the keyword, proved by the index cache and verified
    /// against the anchored roots, with the proof size.
    async fn verified_answer(
        &self,
        entry: &PublishedCapsule,
        kw: &KeywordKey,
        unchanged: bool,
    ) -> Result<(Vec<RecordId>, usize)> {
        let roots = self.load_partition(entry, unchanged).await?;
        if roots.is_empty() {
            return Ok((Vec::new(), 0));
        }
        let answer = self.index_cache()?.prove(&kw.token(), &roots)?;
        let records = kw
            .verify(&roots, &answer)?
            .iter()
            .map(record_of_ref)
            .collect::<Result<Vec<_>>>()?;
        Ok((records, answer.proof_bytes()))
    }

    /// Continues with a cache in memory and marks the file to be rebuilt on the next open.
    fn abandon_index_cache(&self) -> Result<()> {
        let stale = self.dir.join(STALE_MARKER);
        std::fs::write(&stale, b"").map_err(Error::io(&stale))?;
        let mut cache = self.search_cache()?;
        cache.host = Some(Arc::new(DiskHost::in_memory()?));
        cache.loaded.clear();
        Ok(())
    }

    fn index_cache(&self) -> Result<Arc<DiskHost>> {
        if let Some(host) = &self.search_cache()?.host {
            return Ok(Arc::clone(host));
        }
        let host = open_index_cache(&self.dir.join(INDEX_CACHE_FILE))?;
        self.search_cache()?.host = Some(Arc::clone(&host));
        Ok(host)
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
        let reader = user.address();
        {
            let mut cache = self.search_cache()?;
            let keys = match cache.keys.entry(reader) {
                // (A renewed key of the same member gets its own cache.)
                std::collections::hash_map::Entry::Occupied(e) if e.get().belongs_to(user) => {
                    e.into_mut()
                }
                std::collections::hash_map::Entry::Occupied(mut e) => {
                    e.insert(KeyCache::load(&self.dir, user)?);
                    e.into_mut()
                }
                std::collections::hash_map::Entry::Vacant(e) => {
                    e.insert(KeyCache::load(&self.dir, user)?)
                }
            };
            if let Some(known) = keys.get(&entry.partition) {
                return Ok(known);
            }
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
        if let Some(cache) = self.search_cache()?.keys.get_mut(&reader) {
            cache.insert(entry.partition, key.as_ref())?;
        }
        Ok(key)
    }

    /// Brings this directory's index cache up to date with the partitions `publisher`
    /// published: fetches (checked against their anchors) and stores the live shards it
    /// does not hold, in time proportional to them. A search does this itself for the
    /// partitions it reads; call it once at the end of a bulk import ([`Vault::put_many`]
    /// calls), so that the first search after it, in this process or a new one, does not
    /// pay for it. (Once, not after every call: each update of the cache file rewrites the
    /// pages of the shards it replaces.)
    ///
    /// # Errors
    /// Storage and chain failures; [`Error::Tampered`] if a shard does not match its
    /// anchor.
    pub async fn refresh_index_cache(&self, publisher: Address) -> Result<()> {
        for entry in self.ledger.capsules(Some(publisher)).await? {
            self.load_partition(&entry, false).await?;
        }
        Ok(())
    }

    /// Brings the partition's live shards in the index cache up to date with the chain and
    /// returns their roots, oldest first. No chain call when the search checked that the
    /// head is unchanged (`unchanged`), one view call for the head otherwise; then the
    /// anchors from the head back to the newest shard still current (the live shards
    /// before it are unchanged: anchors are immutable and unique per last batch; a new
    /// vault walks back to the first), and only the shards the cache does not hold are
    /// fetched and verified.
    async fn load_partition(
        &self,
        entry: &PublishedCapsule,
        unchanged: bool,
    ) -> Result<Vec<ShardRoot>> {
        let pid = PartitionId::from_bytes(entry.partition.0);
        let cached = self
            .search_cache()?
            .loaded
            .get(&pid)
            .cloned()
            .unwrap_or_default();
        // The head seen last time, still anchored and not followed by a new batch: two
        // single-slot reads instead of the O(log batches) search, which is cheaper only
        // for a few batches (one call of a few reads against two calls).
        let head = match cached.last() {
            Some(last) if unchanged => last.last_seq + 1,
            Some(last) if last.last_seq + 1 >= QUICK_HEAD_MIN => {
                let first = cached.iter().rev().nth(1).map_or(0, |s| s.last_seq + 1);
                let root = B256::from(last.root.as_bytes());
                let known = last.last_seq + 1;
                self.ledger
                    .index_head_after(entry.publisher, entry.partition, known, first, root)
                    .await?
            }
            _ => {
                self.ledger
                    .index_head(entry.publisher, entry.partition)
                    .await?
            }
        };
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
        let mut live: Vec<LoadedShard> = cached.get(..keep).unwrap_or_default().to_vec();
        if fresh.is_empty() && keep == cached.len() {
            return Ok(live.iter().map(|s| s.root).collect());
        }
        fresh.reverse();
        live.extend(fresh.iter().map(|anchor| LoadedShard {
            last_seq: anchor.last_seq,
            root: ShardRoot::from_bytes(anchor.merkle_root.0),
        }));
        let roots: Vec<ShardRoot> = live.iter().map(|s| s.root).collect();
        let host = self.index_cache()?;
        let missing = host.missing(&roots)?;
        let mut shards = Vec::with_capacity(missing.len());
        for anchor in &fresh {
            if missing.contains(&ShardRoot::from_bytes(anchor.merkle_root.0)) {
                shards.push(self.fetch_shard(&pid, anchor).await?);
            }
        }
        // Storing is proportional to the new shards: off the async worker threads.
        let update = roots.clone();
        blocking(move || host.update(&pid, &update, &shards)).await?;
        self.search_cache()?.loaded.insert(pid, live);
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

/// Reports a partition that failed verification in `results`; a backend failure fails the
/// search (anyone can publish a partition: only what is wrong with it skips it).
fn reject(results: &mut SearchResults, entry: &PublishedCapsule, e: Error) -> Result<()> {
    if e.is_unavailable() {
        return Err(e);
    }
    results.rejected.push(RejectedPartition {
        publisher: entry.publisher,
        partition: entry.partition,
        epoch: entry.epoch,
        reason: e.to_string(),
    });
    Ok(())
}

fn from_cache(e: &Error) -> bool {
    matches!(e, Error::Index(e) if crate::error::is_cache_failure(e))
}

/// Runs index-cache work on a blocking thread.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> crate::index::Result<T> + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|_| Error::TaskFailed("index cache"))?
        .map_err(Error::from)
}
