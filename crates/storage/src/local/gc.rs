//! Garbage collection of a [`LocalStore`]: mark what the pins reach, then
//! sweep the block files shard by shard.
//!
//! # Memory
//!
//! Like Kubo's collector, the mark phase keeps the set of reachable blocks
//! in memory, but only as the first 8 bytes of each digest (about 16 bytes
//! per reachable block with the hash table's overhead: some 16 MB for 10^6
//! blocks), plus the full digests of the DAGs' inner nodes, which are about
//! 1/174 of the blocks, so that a DAG reached twice is walked once. The
//! pins are read a page at a time, and the sweep lists one shard directory
//! at a time. Nothing is proportional to the unreachable blocks or to the
//! stored bytes.
//!
//! A block whose 8-byte prefix equals that of a reachable block is kept:
//! a prefix only ever errs towards keeping garbage (with 10^6 reachable
//! and 10^6 unreachable blocks, a chance of about 5 in 10^8 that one
//! unreachable block survives a collection), never towards deleting a
//! reachable block.
//!
//! # Safety
//!
//! The collector holds the directory's GC lock exclusively from its first
//! pin read to its last deletion. Puts, batches and pins hold it shared
//! until their pins are committed, so the pins it reads name only complete
//! DAGs, and no block it deletes can become needed meanwhile. Every block
//! of every pinned DAG is read and verified before anything is deleted: a
//! missing or corrupt block stops the collection with nothing deleted,
//! since the parts of the DAG below it would look unreachable. A crash in
//! the sweep leaves only fewer unreachable blocks; pins are never touched.

use std::collections::HashSet;
use std::sync::Arc;

use crate::cid::Cid;
use crate::dag_reader::{child_links, fetch_verified};
use crate::error::{Result, StorageError};
use crate::local::LocalStore;
use crate::local::flatfs::BlockDir;
use crate::store::GcReport;

/// Pins read per page.
const PIN_PAGE: usize = 1024;

/// Deepest DAG walked (as the readers allow).
const MAX_DEPTH: usize = 64;

/// The key of the reachable set: the first 8 bytes of a digest.
fn prefix(digest: &[u8; 32]) -> u64 {
    let mut head = [0u8; 8];
    head.copy_from_slice(&digest[..8]);
    u64::from_le_bytes(head)
}

/// The blocks the pins reach.
#[derive(Default)]
struct Marks {
    /// Digest prefixes of every reachable block.
    reachable: HashSet<u64>,
    /// Full digests of the reachable blocks that have links.
    inner_nodes: HashSet<[u8; 32]>,
}

impl LocalStore {
    /// [`ContentStore::collect_garbage`](crate::ContentStore::collect_garbage) of a
    /// local store.
    pub(super) async fn collect(&self, dry_run: bool) -> Result<GcReport> {
        let _exclusive = self.inner.pins.gc_lock.write().await;
        let marks = self.mark().await?;
        let blocks = Arc::clone(&self.inner.blocks);
        let report = tokio::task::spawn_blocking(move || sweep(&blocks, &marks, dry_run))
            .await
            .map_err(super::join_error)?
            .map_err(|e| StorageError::io("collecting garbage", e))?;
        tracing::debug!(?report, "garbage collection done");
        Ok(report)
    }

    /// Walks every pinned DAG, a page of pins at a time.
    async fn mark(&self) -> Result<Marks> {
        let mut marks = Marks::default();
        let mut after: Option<Cid> = None;
        loop {
            let page = self
                .with_pins(move |pins| pins.page(after.as_ref(), PIN_PAGE))
                .await?;
            let Some(last) = page.last().copied() else {
                break;
            };
            for pin in &page {
                self.mark_dag(pin, &mut marks).await?;
            }
            after = Some(last);
        }
        Ok(marks)
    }

    /// Marks every block of the DAG under `root`, reading and verifying
    /// each; an inner node marked before is not walked again.
    async fn mark_dag(&self, root: &Cid, marks: &mut Marks) -> Result<()> {
        let mut stack = vec![vec![*root].into_iter()];
        while let Some(top) = stack.last_mut() {
            let Some(cid) = top.next() else {
                stack.pop();
                continue;
            };
            if marks.inner_nodes.contains(cid.digest()) {
                continue;
            }
            let block = fetch_verified(self, &cid).await?;
            marks.reachable.insert(prefix(cid.digest()));
            let links = child_links(&cid, &block)?;
            if links.is_empty() {
                continue;
            }
            if stack.len() > MAX_DEPTH {
                return Err(StorageError::invalid_dag(cid, "DAG deeper than 64 levels"));
            }
            marks.inner_nodes.insert(*cid.digest());
            stack.push(links.into_iter());
        }
        Ok(())
    }
}

/// Lists one shard at a time; deletes (unless `dry_run`) the unmarked.
fn sweep(blocks: &BlockDir, marks: &Marks, dry_run: bool) -> std::io::Result<GcReport> {
    let mut report = GcReport {
        dry_run,
        ..GcReport::default()
    };
    for shard in blocks.shards()? {
        for block in BlockDir::list_shard(&shard)? {
            if marks.reachable.contains(&prefix(&block.digest)) {
                report.kept_blocks += 1;
                report.kept_bytes += block.size;
                continue;
            }
            if !dry_run && !blocks.remove(&block.digest)? {
                continue; // gone meanwhile (removed by hand)
            }
            report.removed_blocks += 1;
            report.removed_bytes += block.size;
        }
    }
    Ok(report)
}
