//! `LocalStore`: the embedded default backend, a directory blockstore.
//!
//! Layout under the store's root:
//! - `blocks/XX/<KEY>.data`: one file per block, Kubo flatfs `next-to-last/2`;
//! - `tmp/`: temp files, renamed into `blocks/` once their bytes are durable;
//! - `pins.redb`: the pin set, a table of an embedded redb database; pinning
//!   or unpinning is one durable transaction whose cost does not grow with
//!   the number of pins, and opening the store does not read the pins (see
//!   [`pin_db`]). A `pins.json` of earlier versions is migrated into it on
//!   open and renamed to `pins.json.migrated`.
//!
//! A put returns only after every block and (if pinning) the pin are
//! durable, so an acknowledged put survives a crash; the pin is committed
//! only once every block it names is durable. The blocks of a put
//! are made durable together by one [`WriteBatch`]
//! (two `syncfs` calls on Linux) rather than one fsync pair per block; see
//! [`write_batch`] for the ordering that keeps this crash safe. One
//! process at a time may open a given directory.

mod flatfs;
mod pin_db;
mod pin_file;
mod write_batch;

use std::collections::{HashSet, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use flatfs::Staged;
use futures_util::StreamExt;
use sha2::{Digest, Sha256};
use tokio::task::JoinHandle;
use write_batch::{WRITE_BACK_EVERY, WriteBatch, start_write_back, write_back_available};

use crate::block::Block;
use crate::cid::Cid;
use crate::dag_builder::DagBuilder;
use crate::dag_reader::{BlockSource, DagReader, fetch_verified, walk_dag};
use crate::error::{Result, StorageError};
use crate::store::{BlockSink, ByteStream, ContentStore, PutOptions};
use flatfs::BlockDir;
use pin_db::PinDb;

/// Block writes of one put allowed in flight at once, so hashing the next
/// chunk overlaps with writing the previous ones to their temp files.
const WRITES_IN_FLIGHT: usize = 4;

/// A put larger than this is committed in several batches: it bounds the
/// unsynced data and the bookkeeping of huge puts. Committing part of a put
/// early only makes some blocks durable sooner; the CID is still returned
/// (and pinned) only after the last batch.
const MAX_BATCH_BYTES: u64 = if cfg!(test) { 8 << 20 } else { 1 << 30 };
/// Likewise for the number of blocks (written or already present).
const MAX_BATCH_BLOCKS: usize = 16_384;

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
    /// The pin set and the GC lock ([`PinDb::gc_lock`]); shared by every
    /// `LocalStore` of this directory in the process.
    pins: Arc<PinDb>,
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
    /// interrupted process are removed, and a `pins.json` of an earlier
    /// version is migrated into the pin database. Does not read the pins.
    ///
    /// Stores opened on the same directory in one process share their pin
    /// database; another process with the store open makes this fail.
    pub async fn open(root: impl AsRef<Path>) -> Result<Self> {
        let root = root.as_ref().to_path_buf();
        let opened = root.clone();
        let (blocks, pins) = tokio::task::spawn_blocking(move || {
            let blocks = BlockDir::open(&opened).map_err(|e| {
                StorageError::io(format!("opening store at {}", opened.display()), e)
            })?;
            let pins = PinDb::open(&opened)?;
            Ok::<_, StorageError>((blocks, pins))
        })
        .await
        .map_err(join_error)??;
        Ok(Self {
            inner: Arc::new(LocalInner {
                root,
                blocks: Arc::new(blocks),
                pins,
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

    /// Pinned roots, sorted. A failure to read the pin database is logged
    /// and yields an empty list; use [`LocalStore::try_pins`] where that
    /// matters.
    pub async fn pins(&self) -> Vec<Cid> {
        self.try_pins().await.unwrap_or_else(|error| {
            tracing::error!(%error, "cannot list the pins");
            Vec::new()
        })
    }

    /// Pinned roots, sorted (reads every pin).
    pub async fn try_pins(&self) -> Result<Vec<Cid>> {
        self.with_pins(PinDb::list).await
    }

    /// Whether `cid` is pinned (a lookup, not a listing).
    pub async fn is_pinned(&self, cid: &Cid) -> Result<bool> {
        let cid = *cid;
        self.with_pins(move |pins| pins.contains(&cid)).await
    }

    /// Runs `work` on the pin database in the blocking pool.
    async fn with_pins<T, F>(&self, work: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&PinDb) -> Result<T> + Send + 'static,
    {
        let pins = Arc::clone(&self.inner.pins);
        tokio::task::spawn_blocking(move || work(&pins))
            .await
            .map_err(join_error)?
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

    /// A [`BatchWriter`] whose first batch is opened (before any block of
    /// it is written).
    async fn batch_writer(&self) -> Result<BatchWriter> {
        let blocks = Arc::clone(&self.inner.blocks);
        let batch = new_batch(&blocks).await?;
        Ok(BatchWriter {
            write_back: write_back_available(&blocks),
            blocks,
            in_flight: VecDeque::new(),
            batch: Some(batch),
            unsynced: 0,
            write_back_task: None,
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
        let _exclusive = self.inner.pins.gc_lock.write().await;
        // Puts and pins hold the lock shared until their pin is committed,
        // so this snapshot has every pin whose DAG is complete.
        let pins = self.try_pins().await?;
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

    /// Pins `cid` durably (one transaction; nothing is written if it is
    /// pinned already). Call only once every block of its DAG is durable.
    async fn add_pin(&self, cid: Cid) -> Result<()> {
        self.with_pins(move |pins| pins.insert_all([&cid])).await
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

/// Writes blocks to temp files, a few at a time in the blocking pool, and
/// gathers them into a [`WriteBatch`] that [`BatchWriter::finish`] makes
/// durable. Every path out of a put goes through `finish` or `abandon`,
/// which wait for all started work, so nothing keeps writing after the put
/// has returned.
struct BatchWriter {
    blocks: Arc<BlockDir>,
    in_flight: VecDeque<JoinHandle<Result<Staged>>>,
    /// `None` only once finished or abandoned.
    batch: Option<WriteBatch>,
    /// Whether to start write-back early ([`start_write_back`]).
    write_back: bool,
    /// Bytes staged since write-back was last started.
    unsynced: u64,
    /// The running early write-back, if any (at most one at a time).
    write_back_task: Option<JoinHandle<()>>,
}

impl BatchWriter {
    /// Starts staging `block`, waits for the oldest writes while more than
    /// [`WRITES_IN_FLIGHT`] are pending, and commits the batch so far if it
    /// is very large.
    async fn push(&mut self, block: Block) -> Result<()> {
        let blocks = Arc::clone(&self.blocks);
        self.in_flight
            .push_back(tokio::task::spawn_blocking(move || {
                blocks
                    .stage(block.cid(), block.data())
                    .map_err(|e| StorageError::io(format!("writing block {}", block.cid()), e))
            }));
        while self.in_flight.len() > WRITES_IN_FLIGHT {
            self.collect_oldest().await?;
        }
        let full = self
            .batch
            .as_ref()
            .is_some_and(|b| b.bytes() >= MAX_BATCH_BYTES || b.len() >= MAX_BATCH_BLOCKS);
        if full {
            // The next batch is opened before the full one is synced, so
            // that every write-back error is reported to one of them.
            let next = new_batch(&self.blocks).await?;
            if let Some(full) = self.batch.replace(next) {
                commit_batch(&self.blocks, full).await?;
            }
        }
        Ok(())
    }

    async fn collect_oldest(&mut self) -> Result<()> {
        if let Some(write) = self.in_flight.pop_front() {
            let staged = write.await.map_err(join_error)??;
            if let Staged::Written { len, .. } = &staged {
                self.unsynced += len;
            }
            if let Some(batch) = &mut self.batch {
                batch.add(staged);
            }
            self.maybe_start_write_back();
        }
        Ok(())
    }

    /// Lets the kernel write the temp files so far in the background once
    /// [`WRITE_BACK_EVERY`] bytes have piled up, so the commit's data sync
    /// has little left to wait for. Only a hint: durability comes from the
    /// commit alone.
    fn maybe_start_write_back(&mut self) {
        let idle = self
            .write_back_task
            .as_ref()
            .is_none_or(JoinHandle::is_finished);
        if !self.write_back || self.unsynced < WRITE_BACK_EVERY || !idle {
            return;
        }
        self.unsynced = 0;
        let blocks = Arc::clone(&self.blocks);
        self.write_back_task = Some(tokio::task::spawn_blocking(move || {
            if let Err(error) = start_write_back(&blocks) {
                tracing::debug!(%error, "early write-back failed; the commit will retry");
            }
        }));
    }

    /// Waits for every started write and the early write-back; the first
    /// error, if any.
    async fn drain(&mut self) -> Option<StorageError> {
        let mut first_error = None;
        while !self.in_flight.is_empty() {
            if let Err(e) = self.collect_oldest().await {
                first_error.get_or_insert(e);
            }
        }
        if let Some(task) = self.write_back_task.take() {
            let _ = task.await;
        }
        first_error
    }

    /// Waits for every write, then makes all blocks durable. Once this
    /// returns `Ok`, every pushed block is durable at its final path.
    async fn finish(mut self) -> Result<()> {
        let failed = self.drain().await;
        let Some(batch) = self.batch.take() else {
            return Err(StorageError::backend("write batch already finished"));
        };
        match failed {
            Some(e) => {
                discard_batch(batch).await;
                Err(e)
            }
            None => commit_batch(&self.blocks, batch).await,
        }
    }

    /// Waits for every write, then deletes the temp files (failed put).
    async fn abandon(mut self) {
        let _ = self.drain().await;
        if let Some(batch) = self.batch.take() {
            discard_batch(batch).await;
        }
    }
}

impl Drop for BatchWriter {
    /// A cancelled put: delete its temp files off the async threads. Writes
    /// still in flight leave theirs for the next open to clear.
    fn drop(&mut self) {
        if let Some(batch) = self.batch.take()
            && batch.len() > 0
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            drop(runtime.spawn_blocking(move || drop(batch)));
        }
    }
}

/// Opens a [`WriteBatch`] in the blocking pool.
async fn new_batch(blocks: &Arc<BlockDir>) -> Result<WriteBatch> {
    let blocks = Arc::clone(blocks);
    tokio::task::spawn_blocking(move || WriteBatch::new(&blocks))
        .await
        .map_err(join_error)?
        .map_err(|e| StorageError::io("starting a write batch", e))
}

/// Runs [`WriteBatch::commit`] in the blocking pool.
async fn commit_batch(blocks: &Arc<BlockDir>, batch: WriteBatch) -> Result<()> {
    if batch.len() == 0 {
        return Ok(());
    }
    let blocks = Arc::clone(blocks);
    tokio::task::spawn_blocking(move || batch.commit(&blocks))
        .await
        .map_err(join_error)?
        .map_err(|e| StorageError::io("making written blocks durable", e))
}

/// Drops (deleting the temp files of) `batch` in the blocking pool.
async fn discard_batch(batch: WriteBatch) {
    if batch.len() > 0 {
        let _ = tokio::task::spawn_blocking(move || drop(batch)).await;
    }
}

#[async_trait]
impl BlockSink for LocalStore {
    async fn put_block(&self, block: Block) -> Result<()> {
        self.put_blocks(vec![block]).await
    }

    /// All of `blocks` are made durable together (one write batch).
    async fn put_blocks(&self, blocks: Vec<Block>) -> Result<()> {
        let _shared = self.inner.pins.gc_lock.read().await;
        let mut writer = self.batch_writer().await?;
        for block in blocks {
            if let Err(e) = writer.push(block).await {
                writer.abandon().await;
                return Err(e);
            }
        }
        writer.finish().await
    }
}

#[async_trait]
impl ContentStore for LocalStore {
    async fn put_stream(&self, mut data: ByteStream, options: PutOptions) -> Result<Cid> {
        let _shared = self.inner.pins.gc_lock.read().await;
        let mut writer = self.batch_writer().await?;
        let mut builder = DagBuilder::new(options.format);
        let built = async {
            while let Some(piece) = data.next().await {
                builder.write(&piece?);
                for block in builder.take_blocks() {
                    writer.push(block).await?;
                }
            }
            let dag = builder.finish();
            for block in dag.blocks {
                writer.push(block).await?;
            }
            Ok::<_, StorageError>(dag.root)
        }
        .await;
        let root = match built {
            Ok(root) => root,
            Err(e) => {
                writer.abandon().await;
                return Err(e);
            }
        };
        writer.finish().await?;
        // The pin is committed only now that every block it names is
        // durable.
        if options.pin {
            self.add_pin(root).await?;
        }
        Ok(root)
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
        let _shared = self.inner.pins.gc_lock.read().await;
        let mut digests = Vec::new();
        walk_dag(self, cid, |block, _| {
            digests.push(*block.digest());
            true
        })
        .await?;
        // A block may have been renamed into place by a put whose final
        // sync has not run yet (or by a killed process): make the entries
        // durable before a durable pin names them.
        self.blocking(format!("syncing the blocks of {cid}"), move |b| {
            let mut batch = WriteBatch::new(b)?;
            for digest in &digests {
                batch.add_present(b.path_for(digest));
            }
            batch.commit(b)
        })
        .await?;
        self.add_pin(*cid).await
    }

    async fn unpin(&self, cid: &Cid) -> Result<()> {
        let cid = *cid;
        self.with_pins(move |pins| pins.remove(&cid).map(drop))
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dag_builder::ImportFormat;

    fn pseudo_random(len: usize) -> Vec<u8> {
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut out = Vec::with_capacity(len + 8);
        while out.len() < len {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            out.extend_from_slice(&state.to_le_bytes());
        }
        out.truncate(len);
        out
    }

    /// A put bigger than a batch (8 MiB in tests) and than the early
    /// write-back step (4 MiB in tests): several commits, then the pin.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_put_spanning_several_batches_is_complete_and_pinned() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::open(dir.path()).await.unwrap();
        let data = pseudo_random(20 * 1024 * 1024 + 3);
        let options = PutOptions::new().with_format(ImportFormat::CidV1RawLeaves);
        let cid = store.put(Bytes::from(data.clone()), options).await.unwrap();
        assert_eq!(store.pins().await, vec![cid]);
        // 81 leaves and their root.
        assert_eq!(store.list_blocks().await.unwrap().len(), 82);
        assert_eq!(
            std::fs::read_dir(dir.path().join("tmp")).unwrap().count(),
            0
        );
        assert_eq!(store.get(&cid).await.unwrap(), data);
        assert!(store.verify_all(false).await.unwrap().corrupt.is_empty());
    }
}
