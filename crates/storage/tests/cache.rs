//! The read-through cache: hits stay local, the byte budget holds, LRU
//! order decides evictions, and cached blocks are verified.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use bytes::Bytes;
use medseal_storage::{
    Block, BlockSink, ByteStream, CHUNK_SIZE, CachedStore, Cid, ContentStore, LocalStore,
    MemoryStore, PutOptions, Result,
};

use common::pseudo_random;

/// A remote that counts block fetches.
#[derive(Debug, Default)]
struct CountingRemote {
    inner: MemoryStore,
    block_reads: AtomicU64,
}

#[async_trait]
impl BlockSink for CountingRemote {
    async fn put_block(&self, block: Block) -> Result<()> {
        self.inner.put_block(block).await
    }
}

#[async_trait]
impl ContentStore for CountingRemote {
    async fn put_stream(&self, data: ByteStream, options: PutOptions) -> Result<Cid> {
        self.inner.put_stream(data, options).await
    }
    fn get_stream(&self, cid: &Cid) -> ByteStream {
        self.inner.get_stream(cid)
    }
    async fn get_block(&self, cid: &Cid) -> Result<Bytes> {
        self.block_reads.fetch_add(1, Ordering::SeqCst);
        self.inner.get_block(cid).await
    }
    async fn has(&self, cid: &Cid) -> Result<bool> {
        self.inner.has(cid).await
    }
    async fn pin(&self, cid: &Cid) -> Result<()> {
        self.inner.pin(cid).await
    }
    async fn unpin(&self, cid: &Cid) -> Result<()> {
        self.inner.unpin(cid).await
    }
}

async fn setup(
    capacity: u64,
) -> (
    Arc<CountingRemote>,
    CachedStore,
    LocalStore,
    tempfile::TempDir,
) {
    let dir = tempfile::tempdir().unwrap();
    let remote = Arc::new(CountingRemote::default());
    let local = LocalStore::open(dir.path()).await.unwrap();
    let cache = CachedStore::new(remote.clone(), local.clone(), capacity)
        .await
        .unwrap();
    (remote, cache, local, dir)
}

#[tokio::test]
async fn second_read_is_served_locally() {
    let (remote, cache, _local, _dir) = setup(16 << 20).await;
    let data = Bytes::from(pseudo_random(1, 3 * CHUNK_SIZE + 10));
    let cid = cache.put(data.clone(), PutOptions::new()).await.unwrap();
    assert_eq!(cache.get(&cid).await.unwrap(), data);
    let after_first = remote.block_reads.load(Ordering::SeqCst);
    assert_eq!(after_first, 5, "root + 4 leaves fetched once");
    assert_eq!(cache.get(&cid).await.unwrap(), data);
    assert_eq!(
        remote.block_reads.load(Ordering::SeqCst),
        after_first,
        "no remote reads"
    );
    let stats = cache.stats();
    assert_eq!((stats.hits, stats.misses, stats.cached_blocks), (5, 5, 5));
}

#[tokio::test]
async fn budget_is_respected_with_lru_eviction() {
    // Room for about two full chunks.
    let budget = 2 * CHUNK_SIZE as u64 + 1000;
    let (remote, cache, local, _dir) = setup(budget).await;
    let options = PutOptions::new().with_format(medseal_storage::ImportFormat::CidV1RawLeaves);
    let a = Bytes::from(pseudo_random(2, CHUNK_SIZE));
    let b = Bytes::from(pseudo_random(3, CHUNK_SIZE));
    let c = Bytes::from(pseudo_random(4, CHUNK_SIZE));
    let (ca, cb, cc) = (
        cache.put(a.clone(), options).await.unwrap(),
        cache.put(b.clone(), options).await.unwrap(),
        cache.put(c.clone(), options).await.unwrap(),
    );
    cache.get(&ca).await.unwrap();
    cache.get(&cb).await.unwrap();
    cache.get(&ca).await.unwrap(); // a is now more recent than b
    cache.get(&cc).await.unwrap(); // evicts b
    assert!(cache.is_cached(&ca));
    assert!(!cache.is_cached(&cb));
    assert!(cache.is_cached(&cc));
    assert!(
        !local.has(&cb).await.unwrap(),
        "evicted block file is deleted"
    );
    let on_disk: u64 = local
        .list_blocks()
        .await
        .unwrap()
        .iter()
        .map(|b| b.size)
        .sum();
    assert!(on_disk <= budget, "{on_disk} bytes cached, budget {budget}");
    assert_eq!(cache.stats().cached_bytes, on_disk);
    let before = remote.block_reads.load(Ordering::SeqCst);
    assert_eq!(cache.get(&cb).await.unwrap(), b);
    assert_eq!(
        remote.block_reads.load(Ordering::SeqCst),
        before + 1,
        "b refetched"
    );
}

#[tokio::test]
async fn corrupt_cached_block_is_refetched_not_served() {
    let (remote, cache, local, _dir) = setup(16 << 20).await;
    let data = Bytes::from(pseudo_random(5, 1000));
    let cid = cache.put(data.clone(), PutOptions::new()).await.unwrap();
    cache.get(&cid).await.unwrap();
    std::fs::write(local.block_path(&cid), b"bit rot").unwrap();
    let before = remote.block_reads.load(Ordering::SeqCst);
    assert_eq!(cache.get(&cid).await.unwrap(), data);
    assert_eq!(remote.block_reads.load(Ordering::SeqCst), before + 1);
    assert_eq!(
        local.get_block(&cid).await.unwrap().len(),
        std::fs::read(local.block_path(&cid)).unwrap().len()
    );
}

#[tokio::test]
async fn reopened_cache_adopts_its_blocks_within_budget() {
    let dir = tempfile::tempdir().unwrap();
    let remote = Arc::new(CountingRemote::default());
    let data = Bytes::from(pseudo_random(6, 2 * CHUNK_SIZE));
    let cid = {
        let local = LocalStore::open(dir.path()).await.unwrap();
        let cache = CachedStore::new(remote.clone(), local, 16 << 20)
            .await
            .unwrap();
        let cid = cache.put(data.clone(), PutOptions::new()).await.unwrap();
        cache.get(&cid).await.unwrap();
        cid
    };
    let reads = remote.block_reads.load(Ordering::SeqCst);
    let local = LocalStore::open(dir.path()).await.unwrap();
    let cache = CachedStore::new(remote.clone(), local.clone(), 16 << 20)
        .await
        .unwrap();
    assert_eq!(cache.get(&cid).await.unwrap(), data);
    assert_eq!(
        remote.block_reads.load(Ordering::SeqCst),
        reads,
        "served from adopted blocks"
    );
    // A smaller budget on reopen trims the cache.
    let small = CachedStore::new(remote.clone(), local.clone(), 1000)
        .await
        .unwrap();
    assert!(small.stats().cached_bytes <= 1000);
    let on_disk: u64 = local
        .list_blocks()
        .await
        .unwrap()
        .iter()
        .map(|b| b.size)
        .sum();
    assert!(on_disk <= 1000);
}
