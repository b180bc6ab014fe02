//! An in-memory store, for tests and ephemeral use.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use bytes::Bytes;

use crate::block::Block;
use crate::cid::Cid;
use crate::dag_reader::{BlockSource, DagReader, walk_dag};
use crate::error::{Result, StorageError};
use crate::store::{BlockSink, ByteStream, ContentStore, GcReport, PutOptions, import_stream};

/// Blocks keyed by sha2-256 digest (so CIDv0 and CIDv1 of one block share
/// an entry, as in Kubo's blockstore), plus a pin set.
#[derive(Debug, Default)]
struct MemoryInner {
    blocks: HashMap<[u8; 32], Bytes>,
    pins: HashSet<Cid>,
}

/// A [`ContentStore`] kept in memory. Cloning shares the same contents.
#[derive(Debug, Clone, Default)]
pub struct MemoryStore {
    inner: Arc<Mutex<MemoryInner>>,
    /// Held shared by puts and pins, exclusively by garbage collection.
    gc_lock: Arc<tokio::sync::RwLock<()>>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, MemoryInner> {
        // A panic elsewhere while holding the lock cannot leave a half-made
        // map entry behind, so the data is still usable.
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Number of distinct blocks held.
    pub fn block_count(&self) -> usize {
        self.lock().blocks.len()
    }

    /// Pinned roots, in no particular order.
    pub fn pins(&self) -> Vec<Cid> {
        self.lock().pins.iter().copied().collect()
    }

    /// Replaces the bytes stored under `cid` without verification. Only for
    /// tests that need a corrupted backend.
    #[doc(hidden)]
    pub fn insert_unverified(&self, cid: &Cid, data: Bytes) {
        self.lock().blocks.insert(*cid.digest(), data);
    }

    /// The stored bytes of `cid`, unverified. Only for tests that inspect
    /// or damage the backend.
    #[doc(hidden)]
    pub fn raw_block(&self, cid: &Cid) -> Option<Bytes> {
        self.lock().blocks.get(cid.digest()).cloned()
    }

    /// Drops the block `cid`, returning whether it was there. Only for tests
    /// that need a DAG with a missing block.
    #[doc(hidden)]
    pub fn remove_block(&self, cid: &Cid) -> bool {
        self.lock().blocks.remove(cid.digest()).is_some()
    }
}

#[async_trait]
impl BlockSource for MemoryStore {
    async fn fetch(&self, cid: &Cid) -> Result<Bytes> {
        self.lock()
            .blocks
            .get(cid.digest())
            .cloned()
            .ok_or(StorageError::NotFound { cid: *cid })
    }
}

#[async_trait]
impl BlockSink for MemoryStore {
    async fn put_block(&self, block: Block) -> Result<()> {
        let (cid, data) = block.into_parts();
        self.lock().blocks.insert(*cid.digest(), data);
        Ok(())
    }
}

#[async_trait]
impl ContentStore for MemoryStore {
    async fn put_stream(&self, data: ByteStream, options: PutOptions) -> Result<Cid> {
        let _shared = self.gc_lock.read().await;
        let dag = import_stream(data, options.format, |block| self.put_block(block)).await?;
        if options.pin {
            self.lock().pins.insert(dag.root);
        }
        Ok(dag.root)
    }

    fn get_stream(&self, cid: &Cid) -> ByteStream {
        DagReader::new(self.clone(), *cid).into_stream()
    }

    async fn get_block(&self, cid: &Cid) -> Result<Bytes> {
        crate::dag_reader::fetch_verified(self, cid).await
    }

    async fn has(&self, cid: &Cid) -> Result<bool> {
        Ok(self.lock().blocks.contains_key(cid.digest()))
    }

    async fn pin(&self, cid: &Cid) -> Result<()> {
        let _shared = self.gc_lock.read().await;
        walk_dag(self, cid, |_, _| true).await?;
        self.lock().pins.insert(*cid);
        Ok(())
    }

    /// All or nothing: every DAG is checked before any pin is added.
    async fn pin_many(&self, cids: &[Cid]) -> Result<()> {
        let _shared = self.gc_lock.read().await;
        for cid in cids {
            walk_dag(self, cid, |_, _| true).await?;
        }
        self.lock().pins.extend(cids.iter().copied());
        Ok(())
    }

    async fn unpin(&self, cid: &Cid) -> Result<()> {
        self.lock().pins.remove(cid);
        Ok(())
    }

    /// Marks what the pins reach, then drops the rest (everything is in
    /// memory anyway). Fails, removing nothing, if a pinned DAG is
    /// incomplete.
    async fn collect_garbage(&self, dry_run: bool) -> Result<GcReport> {
        let _exclusive = self.gc_lock.write().await;
        let pins = self.pins();
        let mut reachable = HashSet::new();
        for pin in &pins {
            walk_dag(self, pin, |cid, _| reachable.insert(*cid.digest())).await?;
        }
        let mut inner = self.lock();
        let mut report = GcReport {
            dry_run,
            ..GcReport::default()
        };
        for (digest, data) in &inner.blocks {
            if reachable.contains(digest) {
                report.kept_blocks += 1;
                report.kept_bytes += data.len() as u64;
            } else {
                report.removed_blocks += 1;
                report.removed_bytes += data.len() as u64;
            }
        }
        if !dry_run {
            inner.blocks.retain(|digest, _| reachable.contains(digest));
        }
        Ok(report)
    }
}
