//! The backend-neutral storage interface.

use std::pin::Pin;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use futures_util::{Stream, StreamExt};

use crate::block::Block;
use crate::cid::Cid;
use crate::dag_builder::{CHUNK_SIZE, DagBuilder, FinishedDag, ImportFormat};
use crate::error::{Result, StorageError};

/// A stream of byte pieces, used both for content going in and coming out.
/// An `Err` item ends the stream.
pub type ByteStream = Pin<Box<dyn Stream<Item = Result<Bytes>> + Send + 'static>>;

/// How [`ContentStore::put`] stores content.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct PutOptions {
    /// DAG flavour, and so which CID comes back.
    pub format: ImportFormat,
    /// Pin the root so garbage collection keeps the content.
    pub pin: bool,
}

impl Default for PutOptions {
    /// `ipfs add` defaults: CIDv0 and pinned.
    fn default() -> Self {
        Self {
            format: ImportFormat::CidV0,
            pin: true,
        }
    }
}

impl PutOptions {
    /// The defaults (CIDv0, pinned).
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the DAG flavour.
    #[must_use]
    pub fn with_format(mut self, format: ImportFormat) -> Self {
        self.format = format;
        self
    }

    /// Sets whether the root is pinned.
    #[must_use]
    pub fn with_pin(mut self, pin: bool) -> Self {
        self.pin = pin;
        self
    }
}

/// What a garbage collection ([`ContentStore::collect_garbage`]) found,
/// and removed unless it was a dry run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct GcReport {
    /// Whether this was a dry run: `removed_*` then counts what a real
    /// collection would remove, and nothing was deleted.
    pub dry_run: bool,
    /// Blocks kept because a pin reaches them.
    pub kept_blocks: usize,
    /// Bytes of the kept block files.
    pub kept_bytes: u64,
    /// Blocks deleted (or, in a dry run, that would be).
    pub removed_blocks: usize,
    /// Bytes of the deleted block files (or, in a dry run, that would be).
    pub removed_bytes: u64,
}

/// A content-addressed store of UnixFS files.
///
/// Object safe: pick a backend at run time and hold it as
/// `Arc<dyn ContentStore>`. Every read is verified against the CID it was
/// asked for, whatever the backend; a mismatch is
/// [`StorageError::IntegrityViolation`](crate::StorageError::IntegrityViolation),
/// never silently returned data.
///
/// Every store also takes already verified blocks ([`BlockSink`]), which is
/// how a CAR file is imported into it ([`import_car`](crate::import_car)).
#[async_trait]
pub trait ContentStore: BlockSink + Send + Sync + std::fmt::Debug {
    /// Stores `data` as a UnixFS file and returns its CID, which is the
    /// one `ipfs add` would print for the same bytes and format.
    async fn put(&self, data: Bytes, options: PutOptions) -> Result<Cid> {
        self.put_stream(bytes_as_stream(data), options).await
    }

    /// Stores everything `data` yields as one UnixFS file.
    async fn put_stream(&self, data: ByteStream, options: PutOptions) -> Result<Cid>;

    /// The whole file named by `cid`, verified.
    async fn get(&self, cid: &Cid) -> Result<Bytes> {
        let mut stream = self.get_stream(cid);
        let mut out = BytesMut::new();
        while let Some(piece) = stream.next().await {
            out.extend_from_slice(&piece?);
        }
        Ok(out.freeze())
    }

    /// The file named by `cid` as a stream; each block is verified before
    /// any of its bytes are yielded. Memory use is O(chunk).
    fn get_stream(&self, cid: &Cid) -> ByteStream;

    /// One block's bytes, verified against `cid`.
    async fn get_block(&self, cid: &Cid) -> Result<Bytes>;

    /// Whether the store holds block `cid` itself (not whether a network
    /// could find it).
    async fn has(&self, cid: &Cid) -> Result<bool>;

    /// Keeps the DAG under `cid` from garbage collection. The whole DAG must
    /// be available, else [`StorageError::NotFound`](crate::StorageError::NotFound).
    async fn pin(&self, cid: &Cid) -> Result<()>;

    /// Removes a pin made by [`ContentStore::pin`] or a pinned put.
    /// Unpinning content that is not pinned succeeds (idempotent).
    async fn unpin(&self, cid: &Cid) -> Result<()>;

    /// Pins every CID of `cids`, as [`ContentStore::pin`] does one. Stores
    /// that can (such as [`LocalStore`](crate::LocalStore)) commit all the
    /// pins in one durable step, so that after a crash either all or none
    /// of them are pinned; the default pins them one by one.
    async fn pin_many(&self, cids: &[Cid]) -> Result<()> {
        for cid in cids {
            self.pin(cid).await?;
        }
        Ok(())
    }

    /// Removes every block that no pin reaches (a recursive pin keeps its
    /// whole DAG); with `dry_run`, only counts what would be removed. A put
    /// that was interrupted before its pins were committed leaves such
    /// blocks. Never removes a block a committed pin needs, and waits for
    /// puts and pins of the store under way (they see no half-collected
    /// store).
    ///
    /// The default is [`StorageError::Unsupported`]: stores that manage
    /// their own garbage (an IPFS node) or that cannot tell pinned from
    /// unpinned content do not collect on request.
    async fn collect_garbage(&self, dry_run: bool) -> Result<GcReport> {
        let _ = dry_run;
        Err(StorageError::Unsupported {
            operation: "garbage collection",
            reason: "this store does not collect garbage on request".into(),
        })
    }

    /// Starts a [`PutBatch`]: puts whose blocks and pins become durable
    /// together when the batch is committed, instead of one put at a time.
    ///
    /// The default batch stores each put unpinned right away and pins the
    /// roots with [`ContentStore::pin_many`] at commit;
    /// [`LocalStore`](crate::LocalStore) keeps the blocks in temp files
    /// until the commit makes all of them durable in one step and then
    /// commits all pins in one transaction.
    async fn begin_batch(&self) -> Result<Box<dyn PutBatch + '_>> {
        Ok(Box::new(DeferredPins::new(self)))
    }
}

/// Puts gathered so that their blocks and pins become durable together
/// (see [`ContentStore::begin_batch`]). A batch is itself a
/// [`ContentStore`], so code that writes to a store can write to a batch:
///
/// - `put`/`put_stream` return the CID at once, but the content is durable
///   (and, for a pinned put, pinned) only once [`PutBatch::commit`] has
///   returned `Ok`. Until then it may not be readable, through the batch or
///   the store.
/// - `pin` is deferred to the commit too: it must name content that is
///   complete once the batch's own puts are stored.
/// - reads, `has`, `unpin` and [`BlockSink`] writes go straight to the
///   store.
///
/// Crash safety: a pin is committed only after every block of the batch is
/// durable, so a crash at any point leaves at worst unpinned blocks (which
/// garbage collection removes), never a pin without its blocks. Dropping a
/// batch without committing it pins nothing.
#[async_trait]
pub trait PutBatch: ContentStore {
    /// Makes every put of the batch durable, then commits its pins (in one
    /// step where the store can). On error nothing of the batch should be
    /// relied on: repeat the puts (they are idempotent) in a new batch.
    async fn commit(self: Box<Self>) -> Result<()>;
}

/// The default [`PutBatch`]: unpinned puts at once, [`ContentStore::pin_many`]
/// at commit.
#[derive(Debug)]
pub(crate) struct DeferredPins<'a, S: ContentStore + ?Sized> {
    store: &'a S,
    pins: std::sync::Mutex<Vec<Cid>>,
}

impl<'a, S: ContentStore + ?Sized> DeferredPins<'a, S> {
    pub(crate) fn new(store: &'a S) -> Self {
        Self {
            store,
            pins: std::sync::Mutex::new(Vec::new()),
        }
    }

    fn pins(&self) -> std::sync::MutexGuard<'_, Vec<Cid>> {
        self.pins.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[async_trait]
impl<S: ContentStore + ?Sized> ContentStore for DeferredPins<'_, S> {
    async fn put(&self, data: Bytes, options: PutOptions) -> Result<Cid> {
        let cid = self.store.put(data, options.with_pin(false)).await?;
        if options.pin {
            self.pins().push(cid);
        }
        Ok(cid)
    }
    async fn put_stream(&self, data: ByteStream, options: PutOptions) -> Result<Cid> {
        let cid = self.store.put_stream(data, options.with_pin(false)).await?;
        if options.pin {
            self.pins().push(cid);
        }
        Ok(cid)
    }
    async fn get(&self, cid: &Cid) -> Result<Bytes> {
        self.store.get(cid).await
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
        self.pins().push(*cid);
        Ok(())
    }
    async fn pin_many(&self, cids: &[Cid]) -> Result<()> {
        self.pins().extend_from_slice(cids);
        Ok(())
    }
    async fn unpin(&self, cid: &Cid) -> Result<()> {
        self.pins().retain(|p| p != cid);
        self.store.unpin(cid).await
    }
    /// A nested batch: its pins join this batch's at its commit.
    async fn begin_batch(&self) -> Result<Box<dyn PutBatch + '_>> {
        Ok(Box::new(DeferredPins::new(self as &dyn ContentStore)))
    }
}

#[async_trait]
impl<S: ContentStore + ?Sized> BlockSink for DeferredPins<'_, S> {
    async fn put_block(&self, block: Block) -> Result<()> {
        self.store.put_block(block).await
    }
    async fn put_blocks(&self, blocks: Vec<Block>) -> Result<()> {
        self.store.put_blocks(blocks).await
    }
}

#[async_trait]
impl<S: ContentStore + ?Sized> PutBatch for DeferredPins<'_, S> {
    async fn commit(self: Box<Self>) -> Result<()> {
        let mut pins = std::mem::take(&mut *self.pins());
        dedup_in_order(&mut pins);
        self.store.pin_many(&pins).await
    }
}

/// Removes repeated CIDs, keeping the first of each.
pub(crate) fn dedup_in_order(cids: &mut Vec<Cid>) {
    let mut seen = std::collections::HashSet::new();
    cids.retain(|c| seen.insert(*c));
}

/// A store that accepts individual, already verified blocks (CAR import,
/// caches). Every [`ContentStore`] is one. Blocks are stored unpinned.
#[async_trait]
pub trait BlockSink: Send + Sync {
    /// Stores one block durably.
    async fn put_block(&self, block: Block) -> Result<()>;

    /// Stores several blocks durably: when it returns `Ok`, all of them
    /// are stored. Stores that can make a group of writes durable at once
    /// (such as [`LocalStore`](crate::LocalStore)) override this; the
    /// default stores them one by one.
    async fn put_blocks(&self, blocks: Vec<Block>) -> Result<()> {
        for block in blocks {
            self.put_block(block).await?;
        }
        Ok(())
    }
}

#[async_trait]
impl<T: ContentStore + ?Sized> ContentStore for Arc<T> {
    async fn put(&self, data: Bytes, options: PutOptions) -> Result<Cid> {
        (**self).put(data, options).await
    }
    async fn put_stream(&self, data: ByteStream, options: PutOptions) -> Result<Cid> {
        (**self).put_stream(data, options).await
    }
    async fn get(&self, cid: &Cid) -> Result<Bytes> {
        (**self).get(cid).await
    }
    fn get_stream(&self, cid: &Cid) -> ByteStream {
        (**self).get_stream(cid)
    }
    async fn get_block(&self, cid: &Cid) -> Result<Bytes> {
        (**self).get_block(cid).await
    }
    async fn has(&self, cid: &Cid) -> Result<bool> {
        (**self).has(cid).await
    }
    async fn pin(&self, cid: &Cid) -> Result<()> {
        (**self).pin(cid).await
    }
    async fn unpin(&self, cid: &Cid) -> Result<()> {
        (**self).unpin(cid).await
    }
    async fn pin_many(&self, cids: &[Cid]) -> Result<()> {
        (**self).pin_many(cids).await
    }
    async fn collect_garbage(&self, dry_run: bool) -> Result<GcReport> {
        (**self).collect_garbage(dry_run).await
    }
    async fn begin_batch(&self) -> Result<Box<dyn PutBatch + '_>> {
        (**self).begin_batch().await
    }
}

#[async_trait]
impl<T: BlockSink + ?Sized> BlockSink for Arc<T> {
    async fn put_block(&self, block: Block) -> Result<()> {
        (**self).put_block(block).await
    }
    async fn put_blocks(&self, blocks: Vec<Block>) -> Result<()> {
        (**self).put_blocks(blocks).await
    }
}

/// `data` as a [`ByteStream`] of chunk-sized pieces (zero-copy slices), so
/// stores build and write the DAG incrementally.
pub fn bytes_as_stream(data: Bytes) -> ByteStream {
    let pieces: Vec<Bytes> = (0..data.len().div_ceil(CHUNK_SIZE))
        .map(|i| data.slice(i * CHUNK_SIZE..((i + 1) * CHUNK_SIZE).min(data.len())))
        .collect();
    Box::pin(futures_util::stream::iter(pieces.into_iter().map(Ok)))
}

/// Copies every piece of `stream` into `writer`, returning the byte count.
/// The stream's pieces are written as they arrive (O(chunk) memory).
pub async fn write_stream_to<W: std::io::Write + Send>(
    mut stream: ByteStream,
    writer: &mut W,
) -> Result<u64> {
    let mut total = 0u64;
    while let Some(piece) = stream.next().await {
        let piece = piece?;
        writer
            .write_all(&piece)
            .map_err(|e| crate::error::StorageError::io("writing streamed content", e))?;
        total += piece.len() as u64;
    }
    Ok(total)
}

/// Builds the DAG of everything `data` yields, handing each completed block
/// to `store_block` as soon as it exists (children before parents, root
/// last). Returns the finished DAG (its `blocks` already handed over).
pub(crate) async fn import_stream<F, Fut>(
    mut data: ByteStream,
    format: ImportFormat,
    mut store_block: F,
) -> Result<FinishedDag>
where
    F: FnMut(Block) -> Fut + Send,
    Fut: std::future::Future<Output = Result<()>> + Send,
{
    let mut builder = DagBuilder::new(format);
    while let Some(piece) = data.next().await {
        builder.write(&piece?);
        for block in builder.take_blocks() {
            store_block(block).await?;
        }
    }
    let mut dag = builder.finish();
    for block in std::mem::take(&mut dag.blocks) {
        store_block(block).await?;
    }
    Ok(dag)
}
