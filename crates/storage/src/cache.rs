//! A read-through block cache: a [`LocalStore`] in front of any other
//! [`ContentStore`], holding recently read blocks up to a byte budget with
//! least-recently-used eviction.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use bytes::Bytes;

use crate::block::Block;
use crate::cid::{Cid, Codec};
use crate::dag_reader::{BlockSource, DagReader, fetch_verified};
use crate::error::{Result, StorageError};
use crate::local::LocalStore;
use crate::store::{BlockSink, ByteStream, ContentStore, GcReport, PutBatch, PutOptions};

/// Recency bookkeeping: digest → (size, last use), and last use → digest.
#[derive(Debug, Default)]
struct Lru {
    entries: HashMap<[u8; 32], (u64, u64)>,
    by_age: BTreeMap<u64, [u8; 32]>,
    clock: u64,
    total: u64,
}

impl Lru {
    fn tick(&mut self) -> u64 {
        self.clock += 1;
        self.clock
    }

    /// Marks `digest` as just used; `false` if it is not cached.
    fn touch(&mut self, digest: &[u8; 32]) -> bool {
        let now = self.tick();
        let Some((_, used)) = self.entries.get_mut(digest) else {
            return false;
        };
        self.by_age.remove(used);
        *used = now;
        self.by_age.insert(now, *digest);
        true
    }

    fn remove(&mut self, digest: &[u8; 32]) {
        if let Some((size, used)) = self.entries.remove(digest) {
            self.by_age.remove(&used);
            self.total -= size;
        }
    }

    /// Records `digest` and returns the digests evicted to stay within
    /// `capacity` (never the one just inserted).
    fn insert(&mut self, digest: [u8; 32], size: u64, capacity: u64) -> Vec<[u8; 32]> {
        self.remove(&digest);
        let now = self.tick();
        self.entries.insert(digest, (size, now));
        self.by_age.insert(now, digest);
        self.total += size;
        let mut evicted = Vec::new();
        while self.total > capacity {
            let Some((_, oldest)) = self.by_age.pop_first() else {
                break;
            };
            if oldest == digest {
                self.by_age.insert(now, digest);
                break;
            }
            if let Some((size, _)) = self.entries.remove(&oldest) {
                self.total -= size;
            }
            evicted.push(oldest);
        }
        evicted
    }
}

/// Counters of a [`CachedStore`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CacheStats {
    /// Block reads served locally.
    pub hits: u64,
    /// Block reads that went to the remote store.
    pub misses: u64,
    /// Blocks currently cached.
    pub cached_blocks: u64,
    /// Bytes currently cached.
    pub cached_bytes: u64,
}

#[derive(Debug)]
struct CacheInner {
    remote: Arc<dyn ContentStore>,
    local: LocalStore,
    capacity: u64,
    lru: Mutex<Lru>,
    hits: AtomicU64,
    misses: AtomicU64,
}

/// A [`ContentStore`] that reads through a bounded local cache.
///
/// Writes and pins go straight to the remote store. Reads are served from
/// the cache when possible; cached blocks are verified like every other
/// read, and a corrupt cached block is dropped and fetched again.
#[derive(Debug, Clone)]
pub struct CachedStore {
    inner: Arc<CacheInner>,
}

/// Any digest names the same file in a [`LocalStore`]; the codec is irrelevant.
fn cid_for_digest(digest: [u8; 32]) -> Cid {
    Cid::v1(Codec::Raw, digest)
}

impl CachedStore {
    /// Puts a cache of at most `capacity_bytes` in `cache` in front of
    /// `remote`. Blocks already in `cache` (from an earlier run) are
    /// adopted, and the oldest-listed ones dropped if over budget.
    pub async fn new(
        remote: Arc<dyn ContentStore>,
        cache: LocalStore,
        capacity_bytes: u64,
    ) -> Result<Self> {
        let mut lru = Lru::default();
        let mut evicted = Vec::new();
        for block in cache.list_blocks().await? {
            // As `remember` never caches a block larger than the budget, one adopted
            // is dropped (the LRU would keep it, being the newest, whatever its size).
            if block.size > capacity_bytes {
                evicted.push(block.digest);
                continue;
            }
            evicted.extend(lru.insert(block.digest, block.size, capacity_bytes));
        }
        for digest in evicted {
            cache.remove_block(&cid_for_digest(digest)).await?;
        }
        Ok(Self {
            inner: Arc::new(CacheInner {
                remote,
                local: cache,
                capacity: capacity_bytes,
                lru: Mutex::new(lru),
                hits: AtomicU64::new(0),
                misses: AtomicU64::new(0),
            }),
        })
    }

    fn lru(&self) -> MutexGuard<'_, Lru> {
        self.inner.lru.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Current counters.
    pub fn stats(&self) -> CacheStats {
        let lru = self.lru();
        CacheStats {
            hits: self.inner.hits.load(Ordering::Relaxed),
            misses: self.inner.misses.load(Ordering::Relaxed),
            cached_blocks: lru.entries.len() as u64,
            cached_bytes: lru.total,
        }
    }

    /// Whether block `cid` is currently cached.
    pub fn is_cached(&self, cid: &Cid) -> bool {
        self.lru().entries.contains_key(cid.digest())
    }

    async fn cached_block(&self, cid: &Cid) -> Option<Bytes> {
        if !self.lru().touch(cid.digest()) {
            return None;
        }
        match self.inner.local.get_block(cid).await {
            Ok(bytes) => Some(bytes),
            Err(error) => {
                // Corrupt or vanished cache file: forget it, refetch.
                tracing::warn!(%cid, %error, "dropping unreadable cached block");
                self.lru().remove(cid.digest());
                let _ = self.inner.local.remove_block(cid).await;
                None
            }
        }
    }

    async fn remember(&self, cid: &Cid, bytes: &Bytes) {
        let size = bytes.len() as u64;
        if size > self.inner.capacity {
            return;
        }
        let block = Block::computed(*cid, bytes.clone());
        if let Err(error) = self.inner.local.put_block(block).await {
            // A failing cache must not fail the read it was serving.
            tracing::warn!(%cid, %error, "could not cache block");
            return;
        }
        let evicted = self.lru().insert(*cid.digest(), size, self.inner.capacity);
        for digest in evicted {
            if let Err(error) = self.inner.local.remove_block(&cid_for_digest(digest)).await {
                tracing::warn!(%error, "could not evict cached block");
            }
        }
    }
}

#[async_trait]
impl BlockSource for CachedStore {
    async fn fetch(&self, cid: &Cid) -> Result<Bytes> {
        if let Some(bytes) = self.cached_block(cid).await {
            self.inner.hits.fetch_add(1, Ordering::Relaxed);
            return Ok(bytes);
        }
        self.inner.misses.fetch_add(1, Ordering::Relaxed);
        let bytes = self.inner.remote.get_block(cid).await?;
        // The remote is any implementation: check before caching.
        if !cid.verifies(&bytes) {
            return Err(StorageError::integrity(
                *cid,
                "remote store returned bytes that do not hash to the CID",
            ));
        }
        self.remember(cid, &bytes).await;
        Ok(bytes)
    }
}

/// Blocks go to the remote store (as puts do), not into the cache.
#[async_trait]
impl BlockSink for CachedStore {
    async fn put_block(&self, block: Block) -> Result<()> {
        self.inner.remote.put_block(block).await
    }

    async fn put_blocks(&self, blocks: Vec<Block>) -> Result<()> {
        self.inner.remote.put_blocks(blocks).await
    }
}

#[async_trait]
impl ContentStore for CachedStore {
    async fn put(&self, data: Bytes, options: PutOptions) -> Result<Cid> {
        self.inner.remote.put(data, options).await
    }

    async fn put_stream(&self, data: ByteStream, options: PutOptions) -> Result<Cid> {
        self.inner.remote.put_stream(data, options).await
    }

    fn get_stream(&self, cid: &Cid) -> ByteStream {
        DagReader::new(self.clone(), *cid).into_stream()
    }

    async fn get_block(&self, cid: &Cid) -> Result<Bytes> {
        fetch_verified(self, cid).await
    }

    async fn has(&self, cid: &Cid) -> Result<bool> {
        if self.is_cached(cid) {
            return Ok(true);
        }
        self.inner.remote.has(cid).await
    }

    async fn pin(&self, cid: &Cid) -> Result<()> {
        self.inner.remote.pin(cid).await
    }

    async fn unpin(&self, cid: &Cid) -> Result<()> {
        self.inner.remote.unpin(cid).await
    }

    async fn pin_many(&self, cids: &[Cid]) -> Result<()> {
        self.inner.remote.pin_many(cids).await
    }

    /// The remote store's collection (the cache manages its own size).
    async fn collect_garbage(&self, dry_run: bool) -> Result<GcReport> {
        self.inner.remote.collect_garbage(dry_run).await
    }

    /// The remote store's batch: writes go straight to the remote store.
    async fn begin_batch(&self) -> Result<Box<dyn PutBatch + '_>> {
        self.inner.remote.begin_batch().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lru_evicts_least_recently_used_first() {
        let mut lru = Lru::default();
        let (a, b, c) = ([1u8; 32], [2u8; 32], [3u8; 32]);
        assert!(lru.insert(a, 40, 100).is_empty());
        assert!(lru.insert(b, 40, 100).is_empty());
        assert!(lru.touch(&a));
        assert_eq!(lru.insert(c, 40, 100), vec![b], "b is the least recent");
        assert_eq!(lru.total, 80);
        assert!(!lru.touch(&b));
        // An entry bigger than the budget evicts everything else but itself.
        assert_eq!(lru.insert([4u8; 32], 100, 100).len(), 2);
        assert_eq!(lru.total, 100);
    }
}
