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
//! [`write_batch`] for the ordering that keeps this crash safe. A
//! [`PutBatch`] ([`ContentStore::begin_batch`]) goes further: all blocks of
//! all its puts are made durable by one write batch, and then all its pins
//! are committed in one transaction, so a crash leaves at worst unpinned
//! blocks. [`ContentStore::pin_many`] likewise commits several pins in one
//! transaction. One process at a time may open a given directory.
//!
//! A put or batch that is cancelled (its future dropped, e.g. on Ctrl-C)
//! deletes its temp files before the drop returns; blocks it had already
//! made durable (a put larger than a write batch, or a batch dropped while
//! committing) stay unpinned, counted in [`LocalStats::abandoned_bytes`],
//! until garbage collection ([`ContentStore::collect_garbage`], which can
//! first be a dry run) removes them. See [`gc`] for how the collection
//! bounds its memory and why it never deletes a pinned block.

mod flatfs;
mod gc;
mod pin_db;
mod pin_file;
mod write_batch;

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use flatfs::Staged;
use futures_util::StreamExt;
use sha2::{Digest, Sha256};
use tokio::sync::OwnedRwLockReadGuard;
use tokio::task::JoinHandle;
use write_batch::{WRITE_BACK_EVERY, WriteBatch, start_write_back, write_back_available};

use crate::block::Block;
use crate::cid::Cid;
use crate::dag_builder::{DagBuilder, ImportFormat};
use crate::dag_reader::{BlockSource, DagReader, fetch_verified, walk_dag};
use crate::error::{Result, StorageError};
use crate::store::{
    BlockSink, ByteStream, ContentStore, DeferredPins, GcReport, PutBatch, PutOptions,
    dedup_in_order,
};
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
            pins: Arc::clone(&self.inner.pins),
            in_flight: VecDeque::new(),
            batch: Some(batch),
            unsynced: 0,
            write_back_task: None,
            durable: Durable::default(),
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

    /// Deletes every block that no pin reaches: [`ContentStore::collect_garbage`]
    /// without a dry run.
    pub async fn gc(&self) -> Result<GcReport> {
        self.collect(false).await
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

    /// Walks the DAG of every CID of `cids` (failing if one is incomplete)
    /// and makes the directory entries of all their blocks durable in one
    /// write batch: a block may have been renamed into place by a put whose
    /// final sync has not run yet (or by a killed process), and a durable
    /// pin must not name it before its entry is durable.
    async fn sync_dags(&self, cids: &[Cid]) -> Result<()> {
        let mut digests = Vec::new();
        for cid in cids {
            walk_dag(self, cid, |block, _| {
                digests.push(*block.digest());
                true
            })
            .await?;
        }
        let context = match cids {
            [cid] => format!("syncing the blocks of {cid}"),
            _ => format!("syncing the blocks of {} DAGs", cids.len()),
        };
        self.blocking(context, move |b| {
            let mut batch = WriteBatch::new(b)?;
            for digest in &digests {
                batch.add_present(b.path_for(digest));
            }
            batch.commit(b)
        })
        .await
    }

    /// Durability steps taken so far (see [`LocalStats`]).
    pub fn stats(&self) -> LocalStats {
        let (abandoned_blocks, abandoned_bytes) = self.inner.pins.abandoned();
        LocalStats {
            pin_commits: self.inner.pins.commits(),
            block_commits: self.inner.blocks.commits(),
            abandoned_blocks,
            abandoned_bytes,
        }
    }
}

/// Durability steps of a [`LocalStore`], from [`LocalStore::stats`]: what a
/// workload costs in syncs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct LocalStats {
    /// Durable pin transactions committed (pins added or removed), by every
    /// store of this directory in this process since the pin database was
    /// opened. Pinning only what is pinned already commits nothing.
    pub pin_commits: u64,
    /// Write batches committed (each makes a group of blocks durable: two
    /// `syncfs` calls on Linux, or fsyncs of each file and directory) by
    /// this store and its clones.
    pub block_commits: u64,
    /// Blocks that puts made durable and then abandoned before pinning them
    /// (a put or batch that was cancelled or failed after part of its
    /// blocks had been committed, e.g. the first GiB of a larger
    /// attachment), by every store of this directory in this process since
    /// the pin database was opened. They stay until garbage collection
    /// removes them. Temp files of abandoned puts are deleted, not counted.
    pub abandoned_blocks: u64,
    /// Bytes of [`LocalStats::abandoned_blocks`].
    pub abandoned_bytes: u64,
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

/// Blocks and bytes made durable and not yet pinned.
#[derive(Debug, Default, Clone, Copy)]
struct Durable {
    blocks: u64,
    bytes: u64,
}

impl Durable {
    fn add(&mut self, other: Durable) {
        self.blocks += other.blocks;
        self.bytes += other.bytes;
    }
}

/// Where a block write in flight leaves its outcome: the staging task puts
/// it here unless the writer was dropped meanwhile (a cancelled put), in
/// which case the task deletes its own temp file. Taking the outcome and
/// abandoning the slot are done under its lock, so that every temp file
/// has exactly one owner who deletes it.
#[derive(Debug, Default)]
enum Slot {
    #[default]
    Pending,
    Done(Staged),
    Abandoned,
}

/// A block write in flight.
struct InFlight {
    task: JoinHandle<Result<()>>,
    slot: Arc<std::sync::Mutex<Slot>>,
}

fn lock_slot(slot: &std::sync::Mutex<Slot>) -> std::sync::MutexGuard<'_, Slot> {
    // Every update is one assignment: still consistent after a panic.
    slot.lock().unwrap_or_else(|p| p.into_inner())
}

/// Runs the file-system work of a `Drop` (deleting the temp files of a
/// cancelled put) before the drop returns, so that nothing is left behind
/// even if the runtime shuts down right after (a queued blocking task would
/// never run): through `block_in_place` on a multi-thread runtime (the
/// worker's other tasks move to another thread), inline elsewhere. Only
/// cancelled or failed puts get here.
fn blocking_in_drop(work: impl FnOnce()) {
    let multi_thread = tokio::runtime::Handle::try_current()
        .is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread);
    if multi_thread {
        tokio::task::block_in_place(work);
    } else {
        work();
    }
}

/// Writes blocks to temp files, a few at a time in the blocking pool, and
/// gathers them into a [`WriteBatch`] that [`BatchWriter::finish`] makes
/// durable. Every path out of a put goes through `finish`, `into_staged`
/// or `abandon`, which wait for all started work, so nothing keeps writing
/// after the put has returned; a writer dropped instead (a cancelled put)
/// deletes its temp files before the drop returns, and writes still in
/// flight delete theirs when they end.
struct BatchWriter {
    blocks: Arc<BlockDir>,
    /// Where abandoned durable blocks are counted.
    pins: Arc<PinDb>,
    in_flight: VecDeque<InFlight>,
    /// `None` only once finished or abandoned.
    batch: Option<WriteBatch>,
    /// Whether to start write-back early ([`start_write_back`]).
    write_back: bool,
    /// Bytes staged since write-back was last started.
    unsynced: u64,
    /// The running early write-back, if any (at most one at a time).
    write_back_task: Option<JoinHandle<()>>,
    /// Blocks of batches committed early (a very large put), not yet handed
    /// to a caller that pins them: abandoned if the writer is.
    durable: Durable,
}

impl BatchWriter {
    /// Builds the DAG of everything `data` yields in `format`, pushing each
    /// block as soon as it exists; returns the root. On error the caller
    /// abandons the writer.
    async fn write_dag(&mut self, data: &mut ByteStream, format: ImportFormat) -> Result<Cid> {
        let mut builder = DagBuilder::new(format);
        while let Some(piece) = data.next().await {
            builder.write(&piece?);
            for block in builder.take_blocks() {
                self.push(block).await?;
            }
        }
        let dag = builder.finish();
        for block in dag.blocks {
            self.push(block).await?;
        }
        Ok(dag.root)
    }

    /// Starts staging `block`, waits for the oldest writes while more than
    /// [`WRITES_IN_FLIGHT`] are pending, and commits the batch so far if it
    /// is very large.
    async fn push(&mut self, block: Block) -> Result<()> {
        let blocks = Arc::clone(&self.blocks);
        let slot = Arc::new(std::sync::Mutex::new(Slot::Pending));
        let outcome = Arc::clone(&slot);
        let task = tokio::task::spawn_blocking(move || {
            let staged = blocks
                .stage(block.cid(), block.data())
                .map_err(|e| StorageError::io(format!("writing block {}", block.cid()), e))?;
            let mut slot = lock_slot(&outcome);
            if matches!(*slot, Slot::Abandoned) {
                if let Staged::Written { tmp, .. } = &staged {
                    let _ = std::fs::remove_file(tmp);
                }
            } else {
                *slot = Slot::Done(staged);
            }
            Ok(())
        });
        self.in_flight.push_back(InFlight { task, slot });
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
                let written = Durable {
                    blocks: full.written_len() as u64,
                    bytes: full.bytes(),
                };
                // Counted before the commit: a commit cancelled half-way
                // runs to its end in the blocking pool.
                self.durable.add(written);
                commit_batch(&self.blocks, full).await?;
            }
        }
        Ok(())
    }

    async fn collect_oldest(&mut self) -> Result<()> {
        // Awaited in place, not popped first: should this future be
        // dropped while waiting, the write is still in `in_flight` for
        // `Drop` to abandon.
        let Some(write) = self.in_flight.front_mut() else {
            return Ok(());
        };
        let result = (&mut write.task).await;
        let Some(write) = self.in_flight.pop_front() else {
            return Ok(());
        };
        result.map_err(join_error)??;
        let staged = match std::mem::take(&mut *lock_slot(&write.slot)) {
            Slot::Done(staged) => staged,
            _ => {
                return Err(StorageError::backend(
                    "a block write ended without its outcome",
                ));
            }
        };
        if let Staged::Written { len, .. } = &staged {
            self.unsynced += len;
        }
        if let Some(batch) = &mut self.batch {
            batch.add(staged);
        }
        self.maybe_start_write_back();
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
    async fn finish(self) -> Result<()> {
        let blocks = Arc::clone(&self.blocks);
        let (batch, _) = self.into_staged().await?;
        commit_batch(&blocks, batch).await
    }

    /// Waits for every write and returns the batch of staged blocks, not
    /// committed (a [`LocalBatch`] commits it with the others of its puts),
    /// and the blocks this writer already made durable: the caller now
    /// answers for both.
    async fn into_staged(mut self) -> Result<(WriteBatch, Durable)> {
        let failed = self.drain().await;
        let Some(batch) = self.batch.take() else {
            return Err(StorageError::backend("write batch already finished"));
        };
        match failed {
            Some(e) => {
                discard_batch(batch).await;
                Err(e)
            }
            None => Ok((batch, std::mem::take(&mut self.durable))),
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
    /// An abandoned or cancelled put: deletes its temp files (those of
    /// writes still in flight are deleted by the writes themselves) and
    /// counts the blocks it made durable without pinning them.
    fn drop(&mut self) {
        let mut orphans = Vec::new();
        for write in self.in_flight.drain(..) {
            let outcome = std::mem::replace(&mut *lock_slot(&write.slot), Slot::Abandoned);
            if let Slot::Done(Staged::Written { tmp, .. }) = outcome {
                orphans.push(tmp);
            }
        }
        let batch = self.batch.take().filter(|b| b.len() > 0);
        if !orphans.is_empty() || batch.is_some() {
            blocking_in_drop(move || {
                for tmp in orphans {
                    let _ = std::fs::remove_file(tmp);
                }
                drop(batch);
            });
        }
        let durable = std::mem::take(&mut self.durable);
        self.pins.note_abandoned(durable.blocks, durable.bytes);
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
        self.write_blocks(blocks).await
    }
}

impl LocalStore {
    /// Writes `blocks` durably in one write batch; the caller holds the GC
    /// lock (shared).
    async fn write_blocks(&self, blocks: Vec<Block>) -> Result<()> {
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
        let root = match writer.write_dag(&mut data, options.format).await {
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
        self.pin_many(std::slice::from_ref(cid)).await
    }

    /// Every DAG is walked (all must be complete, else nothing is pinned)
    /// and its blocks' entries synced in one write batch, then all pins are
    /// committed in one durable transaction: after a crash either all or
    /// none of them are pinned.
    async fn pin_many(&self, cids: &[Cid]) -> Result<()> {
        if cids.is_empty() {
            return Ok(());
        }
        let _shared = self.inner.pins.gc_lock.read().await;
        self.sync_dags(cids).await?;
        let cids = cids.to_vec();
        self.with_pins(move |pins| pins.insert_all(cids.iter()))
            .await
    }

    /// The batch's blocks stay in temp files until its commit makes all of
    /// them durable in one step; then its pins are committed in one
    /// transaction. Garbage collection of this directory waits until the
    /// batch is committed or dropped (and puts and pins started while a
    /// collection waits, wait too): keep batches short-lived.
    async fn begin_batch(&self) -> Result<Box<dyn PutBatch + '_>> {
        Ok(Box::new(LocalBatch::begin(self).await?))
    }

    async fn unpin(&self, cid: &Cid) -> Result<()> {
        let cid = *cid;
        self.with_pins(move |pins| pins.remove(&cid).map(drop))
            .await
    }

    /// Marks what the pins reach, then sweeps the block files shard by
    /// shard. Fails, deleting nothing, if a pinned DAG cannot be walked
    /// completely (missing or corrupt block). Holds the directory's GC lock
    /// exclusively: puts, batches and pins of this directory in this process
    /// wait while it runs, and it waits for those under way. Memory: about 16
    /// bytes per reachable block, one shard listing, one page of pins (see
    /// the `gc` module of the source).
    async fn collect_garbage(&self, dry_run: bool) -> Result<GcReport> {
        self.collect(dry_run).await
    }
}

/// The [`PutBatch`] of a [`LocalStore`]. Its puts stage their blocks in
/// temp files (no sync) and add them to one [`WriteBatch`], opened when the
/// batch begins; the commit makes all of them durable at once (two `syncfs`
/// calls on Linux), and only then commits every pin in one transaction. A
/// crash before the blocks are durable leaves temp files, which the next
/// open deletes; a crash between the two steps leaves unpinned blocks. The
/// batch holds the GC lock shared from its start to its end, so garbage
/// collection never deletes a block of it (staged, or found present) before
/// it is pinned.
struct LocalBatch<'a> {
    store: &'a LocalStore,
    _shared: OwnedRwLockReadGuard<()>,
    state: std::sync::Mutex<LocalBatchState>,
}

#[derive(Default)]
struct LocalBatchState {
    /// Every block staged by the batch's puts; `None` once committed.
    blocks: Option<WriteBatch>,
    /// Roots of pinned puts (their blocks are in `blocks`).
    roots: Vec<Cid>,
    /// CIDs given to [`ContentStore::pin`]: walked and synced at commit.
    pins: Vec<Cid>,
    /// Blocks made durable (by a very large put, or by the commit) and not
    /// yet pinned: abandoned if the batch is dropped before its pins are
    /// committed.
    durable: Durable,
}

impl std::fmt::Debug for LocalBatch<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalBatch")
            .field("root", &self.store.root())
            .finish_non_exhaustive()
    }
}

impl<'a> LocalBatch<'a> {
    async fn begin(store: &'a LocalStore) -> Result<Self> {
        let shared = Arc::clone(&store.inner.pins.gc_lock).read_owned().await;
        // Opened before any block of the batch is written (see
        // `WriteBatch::absorb`).
        let blocks = new_batch(&store.inner.blocks).await?;
        Ok(Self {
            store,
            _shared: shared,
            state: std::sync::Mutex::new(LocalBatchState {
                blocks: Some(blocks),
                ..LocalBatchState::default()
            }),
        })
    }

    fn state(&self) -> std::sync::MutexGuard<'_, LocalBatchState> {
        // Every update is a single push or move: still consistent after a
        // panic elsewhere.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Drop for LocalBatch<'_> {
    /// A batch dropped uncommitted (or while committing): deletes its temp
    /// files before the drop returns (as [`BatchWriter`] does) and counts
    /// the blocks it made durable without pinning them.
    fn drop(&mut self) {
        let (batch, durable) = {
            let mut state = self.state();
            (
                state.blocks.take().filter(|b| b.len() > 0),
                std::mem::take(&mut state.durable),
            )
        };
        if let Some(batch) = batch {
            blocking_in_drop(move || drop(batch));
        }
        self.store
            .inner
            .pins
            .note_abandoned(durable.blocks, durable.bytes);
    }
}

/// Blocks are made durable at once (not at the commit), under the GC lock
/// the batch already holds.
#[async_trait]
impl BlockSink for LocalBatch<'_> {
    async fn put_block(&self, block: Block) -> Result<()> {
        self.store.write_blocks(vec![block]).await
    }

    async fn put_blocks(&self, blocks: Vec<Block>) -> Result<()> {
        self.store.write_blocks(blocks).await
    }
}

#[async_trait]
impl ContentStore for LocalBatch<'_> {
    async fn put_stream(&self, mut data: ByteStream, options: PutOptions) -> Result<Cid> {
        let mut writer = self.store.batch_writer().await?;
        let root = match writer.write_dag(&mut data, options.format).await {
            Ok(root) => root,
            Err(e) => {
                writer.abandon().await;
                return Err(e);
            }
        };
        let (staged, durable) = writer.into_staged().await?;
        let mut state = self.state();
        state.durable.add(durable);
        let Some(blocks) = state.blocks.as_mut() else {
            return Err(StorageError::backend("put batch already committed"));
        };
        blocks.absorb(staged);
        if options.pin {
            state.roots.push(root);
        }
        Ok(root)
    }

    fn get_stream(&self, cid: &Cid) -> ByteStream {
        self.store.get_stream(cid)
    }

    async fn get_block(&self, cid: &Cid) -> Result<Bytes> {
        self.store.get_block(cid).await
    }

    async fn has(&self, cid: &Cid) -> Result<bool> {
        self.store.has(cid).await
    }

    async fn pin(&self, cid: &Cid) -> Result<()> {
        self.state().pins.push(*cid);
        Ok(())
    }

    async fn pin_many(&self, cids: &[Cid]) -> Result<()> {
        self.state().pins.extend_from_slice(cids);
        Ok(())
    }

    async fn unpin(&self, cid: &Cid) -> Result<()> {
        {
            let mut state = self.state();
            state.roots.retain(|c| c != cid);
            state.pins.retain(|c| c != cid);
        }
        self.store.unpin(cid).await
    }

    /// A nested batch: its puts join this batch, its pins this batch's at
    /// its commit.
    async fn begin_batch(&self) -> Result<Box<dyn PutBatch + '_>> {
        Ok(Box::new(DeferredPins::new(self as &dyn ContentStore)))
    }
}

#[async_trait]
impl PutBatch for LocalBatch<'_> {
    async fn commit(self: Box<Self>) -> Result<()> {
        let (blocks, mut pins, walk) = {
            let mut state = self.state();
            let blocks = state.blocks.take();
            let roots = std::mem::take(&mut state.roots);
            let walk = std::mem::take(&mut state.pins);
            (blocks, roots, walk)
        };
        // 1. Every block of the batch durable at its final path (counted
        // first: a commit cancelled half-way runs to its end in the
        // blocking pool).
        if let Some(blocks) = blocks {
            self.state().durable.add(Durable {
                blocks: blocks.written_len() as u64,
                bytes: blocks.bytes(),
            });
            commit_batch(&self.store.inner.blocks, blocks).await?;
        }
        // 2. Explicit pins: their DAGs complete and their entries durable.
        if !walk.is_empty() {
            self.store.sync_dags(&walk).await?;
            pins.extend(walk);
        }
        // 3. One durable transaction for all pins.
        dedup_in_order(&mut pins);
        if !pins.is_empty() {
            self.store
                .with_pins(move |db| db.insert_all(pins.iter()))
                .await?;
        }
        self.state().durable = Durable::default();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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

    /// A put cancelled after it committed its first batch (more than 8 MiB in tests)
    /// deletes its temp files and counts the committed blocks as abandoned; a dry run
    /// of garbage collection finds exactly them, and the collection removes them.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_cancelled_large_put_reports_what_it_left_for_gc() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::open(dir.path()).await.unwrap();
        let data = pseudo_random(12 * 1024 * 1024);
        let pieces: Vec<Result<Bytes>> = data
            .chunks(crate::CHUNK_SIZE)
            .map(|c| Ok(Bytes::copy_from_slice(c)))
            .collect();
        let stream: ByteStream = Box::pin(futures_util::StreamExt::chain(
            futures_util::stream::iter(pieces),
            futures_util::stream::pending(),
        ));
        let put = store.put_stream(stream, PutOptions::new());
        assert!(
            tokio::time::timeout(std::time::Duration::from_secs(2), put)
                .await
                .is_err()
        );
        assert_eq!(
            std::fs::read_dir(dir.path().join("tmp")).unwrap().count(),
            0
        );
        let stats = store.stats();
        assert!(stats.abandoned_blocks >= 32, "{stats:?}");
        assert!(stats.abandoned_bytes >= MAX_BATCH_BYTES, "{stats:?}");
        let stored = store.list_blocks().await.unwrap();
        assert_eq!(stored.len() as u64, stats.abandoned_blocks);
        let dry = store.collect_garbage(true).await.unwrap();
        assert_eq!(dry.removed_blocks as u64, stats.abandoned_blocks);
        assert_eq!(dry.removed_bytes, stats.abandoned_bytes);
        assert_eq!(store.list_blocks().await.unwrap().len(), stored.len());
        let done = store.gc().await.unwrap();
        assert_eq!(done.removed_bytes, stats.abandoned_bytes);
        assert!(store.list_blocks().await.unwrap().is_empty());
    }
}
