//! `LocalStore`: the embedded default backend, a directory blockstore.
//!
//! Layout under the store's root:
//! - `blocks/XX/<KEY>.data`: one file per block, Kubo flatfs `next-to-last/2`;
//! - `tmp/`: temp files, renamed into `blocks/` once fsynced;
//! - `pins.json`: the pin set, replaced atomically.
//!
//! A put returns only after every block and (if pinning) the pin set are
//! durable, so an acknowledged put survives a crash. One process at a time
//! may open a given directory.

mod flatfs;
mod pin_file;

use std::collections::{BTreeSet, HashSet, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use futures_util::StreamExt;
use sha2::{Digest, Sha256};
use tokio::sync::{Mutex, RwLock};
use tokio::task::JoinHandle;

use crate::block::Block;
use crate::cid::Cid;
use crate::dag_builder::DagBuilder;
use crate::dag_reader::{BlockSource, DagReader, fetch_verified, walk_dag};
use crate::error::{Result, StorageError};
use crate::store::{BlockSink, ByteStream, ContentStore, PutOptions};
use flatfs::BlockDir;

/// Block writes of one put allowed in flight at once, so hashing the next
/// chunk overlaps with writing and fsyncing the previous ones.
const WRITES_IN_FLIGHT: usize = 4;

/// What [`LocalStore::gc`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct GcReport {
    /// Blocks kept because a pin reaches them.
    pub kept_blocks: usize,
    /// Blocks deleted.
    pub removed_blocks: usize,
    /// Bytes of the deleted block files.
    pub removed_bytes: u64,
}

/// What [`LocalStore::verify_all`] found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct VerifyReport {
    /// Block files read and hashed.
    pub checked: usize,
    /// Files whose bytes do not hash to their name (removed if asked).
    pub corrupt: Vec<PathBuf>,
}

/// One stored block as listed by [`LocalStore::list_blocks`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredBlockInfo {
    /// The block's sha2-256 digest (the CID's codec is not stored).
    pub digest: [u8; 32],
    /// Its size in bytes.
    pub size: u64,
}

#[derive(Debug)]
struct LocalInner {
    root: PathBuf,
    blocks: Arc<BlockDir>,
    pins_path: PathBuf,
    pins: Mutex<BTreeSet<Cid>>,
    /// Puts and pins hold it shared, GC exclusively: GC never sees the
    /// blocks of a DAG that is half written or being pinned.
    gc_lock: RwLock<()>,
}

/// A [`ContentStore`] in a local directory. Cloning shares the same store.
#[derive(Debug, Clone)]
pub struct LocalStore {
    inner: Arc<LocalInner>,
}

fn join_error(e: tokio::task::JoinError) -> StorageError {
    StorageError::backend_with("blocking file-system task failed", e)
}

impl LocalStore {
    /// Opens the store at `root`, creating it if needed. Temp files of an
    /// interrupted process are removed.
    pub async fn open(root: impl AsRef<Path>) -> Result<Self> {
        let root = root.as_ref().to_path_buf();
        let opened = root.clone();
        let (blocks, pins) = tokio::task::spawn_blocking(move || {
            let blocks = BlockDir::open(&opened)?;
            let pins = pin_file::load(&opened.join("pins.json"))?;
            Ok::<_, std::io::Error>((blocks, pins))
        })
        .await
        .map_err(join_error)?
        .map_err(|e| StorageError::io(format!("opening store at {}", root.display()), e))?;
        Ok(Self {
            inner: Arc::new(LocalInner {
                pins_path: root.join("pins.json"),
                root,
                blocks: Arc::new(blocks),
                pins: Mutex::new(pins),
                gc_lock: RwLock::new(()),
            }),
        })
    }

    /// The directory the store lives in.
    pub fn root(&self) -> &Path {
        &self.inner.root
    }

    /// The file that holds (or would hold) block `cid`.
    pub fn block_path(&self, cid: &Cid) -> PathBuf {
        self.inner.blocks.path_for(cid.digest())
    }

    /// Pinned roots, sorted.
    pub async fn pins(&self) -> Vec<Cid> {
        self.inner.pins.lock().await.iter().copied().collect()
    }

    async fn blocking<T, F>(&self, context: impl Into<String>, work: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&BlockDir) -> std::io::Result<T> + Send + 'static,
    {
        let blocks = Arc::clone(&self.inner.blocks);
        tokio::task::spawn_blocking(move || work(&blocks))
            .await
            .map_err(join_error)?
            .map_err(|e| StorageError::io(context, e))
    }

    fn spawn_write(&self, block: Block) -> JoinHandle<Result<()>> {
        let blocks = Arc::clone(&self.inner.blocks);
        tokio::task::spawn_blocking(move || {
            blocks
                .write(block.cid(), block.data())
                .map_err(|e| StorageError::io(format!("writing block {}", block.cid()), e))
        })
    }

    /// Deletes block `cid` if present, returning whether it was. Does not
    /// check pins: used by caches that manage their own contents.
    pub async fn remove_block(&self, cid: &Cid) -> Result<bool> {
        let digest = *cid.digest();
        self.blocking(format!("removing block {cid}"), move |b| b.remove(&digest))
            .await
    }

    /// Every block file in the store.
    pub async fn list_blocks(&self) -> Result<Vec<StoredBlockInfo>> {
        let listed = self.blocking("listing blocks", |b| b.list()).await?;
        Ok(listed
            .into_iter()
            .map(|b| StoredBlockInfo {
                digest: b.digest,
                size: b.size,
            })
            .collect())
    }

    /// Deletes every block that no pin reaches. Fails, deleting nothing, if
    /// a pinned DAG cannot be walked completely (missing or corrupt block),
    /// since its unreadable parts would otherwise look unreachable.
    pub async fn gc(&self) -> Result<GcReport> {
        let _exclusive = self.inner.gc_lock.write().await;
        let pins = self.inner.pins.lock().await.clone();
        let mut reachable: HashSet<[u8; 32]> = HashSet::new();
        for pin in &pins {
            walk_dag(self, pin, |cid, _| reachable.insert(*cid.digest())).await?;
        }
        let stored = self.blocking("listing blocks", |b| b.list()).await?;
        let mut report = GcReport::default();
        let mut doomed = Vec::new();
        for block in stored {
            if reachable.contains(&block.digest) {
                report.kept_blocks += 1;
            } else {
                report.removed_blocks += 1;
                report.removed_bytes += block.size;
                doomed.push(block.digest);
            }
        }
        self.blocking("deleting unreachable blocks", move |b| {
            for digest in &doomed {
                b.remove(digest)?;
            }
            Ok(())
        })
        .await?;
        tracing::debug!(?report, "garbage collection done");
        Ok(report)
    }

    /// Reads and hashes every block file; with `remove_corrupt`, deletes the
    /// ones that fail so a later put can store them again.
    pub async fn verify_all(&self, remove_corrupt: bool) -> Result<VerifyReport> {
        self.blocking("verifying blocks", move |b| {
            let mut report = VerifyReport::default();
            for block in b.list()? {
                let bytes = std::fs::read(&block.path)?;
                report.checked += 1;
                if Sha256::digest(&bytes).as_slice() != block.digest {
                    if remove_corrupt {
                        std::fs::remove_file(&block.path)?;
                    }
                    report.corrupt.push(block.path);
                }
            }
            Ok(report)
        })
        .await
    }

    async fn save_pins(&self, pins: &BTreeSet<Cid>) -> Result<()> {
        let pins = pins.clone();
        let path = self.inner.pins_path.clone();
        self.blocking("saving the pin set", move |b| {
            pin_file::save(b, &path, &pins)
        })
        .await
    }

    async fn add_pin(&self, cid: Cid) -> Result<()> {
        let mut pins = self.inner.pins.lock().await;
        if pins.contains(&cid) {
            return Ok(());
        }
        let mut updated = pins.clone();
        updated.insert(cid);
        // Persist first: the in-memory set never claims more than the disk.
        self.save_pins(&updated).await?;
        *pins = updated;
        Ok(())
    }
}

#[async_trait]
impl BlockSource for LocalStore {
    async fn fetch(&self, cid: &Cid) -> Result<Bytes> {
        let digest = *cid.digest();
        self.blocking(format!("reading block {cid}"), move |b| b.read(&digest))
            .await?
            .map(Bytes::from)
            .ok_or(StorageError::NotFound { cid: *cid })
    }
}

#[async_trait]
impl BlockSink for LocalStore {
    async fn put_block(&self, block: Block) -> Result<()> {
        let _shared = self.inner.gc_lock.read().await;
        self.spawn_write(block).await.map_err(join_error)?
    }
}

#[async_trait]
impl ContentStore for LocalStore {
    async fn put_stream(&self, mut data: ByteStream, options: PutOptions) -> Result<Cid> {
        let _shared = self.inner.gc_lock.read().await;
        let mut builder = DagBuilder::new(options.format);
        let mut in_flight: VecDeque<JoinHandle<Result<()>>> = VecDeque::new();
        let mut first_error = None;
        let queue = |blocks: Vec<Block>, in_flight: &mut VecDeque<_>| {
            for block in blocks {
                in_flight.push_back(self.spawn_write(block));
            }
        };
        while let Some(piece) = data.next().await {
            match piece {
                Ok(piece) => builder.write(&piece),
                Err(e) => {
                    first_error = Some(e);
                    break;
                }
            }
            queue(builder.take_blocks(), &mut in_flight);
            while in_flight.len() > WRITES_IN_FLIGHT {
                if let Some(write) = in_flight.pop_front()
                    && let Err(e) = write.await.map_err(join_error).and_then(|r| r)
                {
                    first_error = Some(e);
                    break;
                }
            }
            if first_error.is_some() {
                break;
            }
        }
        let root = if first_error.is_none() {
            let dag = builder.finish();
            queue(dag.blocks, &mut in_flight);
            Some(dag.root)
        } else {
            None
        };
        // Every started write is awaited, even after a failure, so nothing
        // keeps writing after this put has returned.
        for write in in_flight {
            if let Err(e) = write.await.map_err(join_error).and_then(|r| r) {
                first_error.get_or_insert(e);
            }
        }
        match (root, first_error) {
            (_, Some(e)) => Err(e),
            (Some(root), None) => {
                if options.pin {
                    self.add_pin(root).await?;
                }
                Ok(root)
            }
            (None, None) => Err(StorageError::backend("put ended without a root")),
        }
    }

    fn get_stream(&self, cid: &Cid) -> ByteStream {
        DagReader::new(self.clone(), *cid).into_stream()
    }

    async fn get_block(&self, cid: &Cid) -> Result<Bytes> {
        fetch_verified(self, cid).await
    }

    async fn has(&self, cid: &Cid) -> Result<bool> {
        let digest = *cid.digest();
        self.blocking(format!("checking block {cid}"), move |b| {
            b.contains(&digest)
        })
        .await
    }

    async fn pin(&self, cid: &Cid) -> Result<()> {
        let _shared = self.inner.gc_lock.read().await;
        walk_dag(self, cid, |_, _| true).await?;
        self.add_pin(*cid).await
    }

    async fn unpin(&self, cid: &Cid) -> Result<()> {
        let mut pins = self.inner.pins.lock().await;
        if !pins.contains(cid) {
            return Ok(());
        }
        let mut updated = pins.clone();
        updated.remove(cid);
        self.save_pins(&updated).await?;
        *pins = updated;
        Ok(())
    }
}
