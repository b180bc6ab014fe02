//! Batched durability for block files: the blocks of one put (or one CAR
//! import batch, or every put of a [`PutBatch`](crate::PutBatch)) are made
//! durable together instead of one by one.
//!
//! # Steps
//!
//! 1. **Stage** ([`BlockDir::stage`]): each new block is written to its own
//!    temp file in `tmp/` with a single `write_all`, without any sync. A
//!    block whose file already exists and hashes to its name is only noted
//!    as present.
//! 2. **Sync the data**: on Linux one `syncfs(2)` of the store's file
//!    system, which writes back every dirty page and commits the journal;
//!    elsewhere (and for single blocks, see [`SYNCFS_MIN_ENTRIES`]) an
//!    fsync of every temp file, a few at a time in parallel. While a large
//!    batch is still being staged, [`start_write_back`] lets the kernel
//!    write its first temp files in the background, so that little is left
//!    for this step.
//! 3. **Rename** every temp file to its final `blocks/XX/KEY.data` path.
//! 4. **Sync the names**: a second `syncfs`, or an fsync of every touched
//!    shard directory plus `blocks/` (each once).
//! 5. Only then does [`WriteBatch::commit`] return, so only then does the
//!    caller acknowledge (return the CID, commit the pin).
//!
//! # Why a crash at any point is safe
//!
//! A final path only ever receives a file by a rename issued after step 2
//! returned, so whatever a crash leaves at a final path is either nothing
//! (rename not issued or not persisted) or a complete file whose bytes
//! were already on stable storage. A temp file that a crash tears is never
//! renamed (the process that would rename it is gone), and
//! [`BlockDir::open`] deletes every leftover temp file. Nothing acknowledged
//! is lost because step 4 has persisted every rename before `commit`
//! returns, and a pin, which is its own durable database transaction, is
//! committed only after that, so a durable pin never names a block that is not durable.
//!
//! A block found already present may have been renamed into place by a
//! concurrent batch (or by a killed process) whose step 4 has not run yet;
//! its directory entry is therefore synced in step 4 as well. Its bytes
//! need no sync: no file reaches a final path before its bytes are durable.
//!
//! `syncfs` reports a write-back error of any file of the file system that
//! happened after the descriptor it is called on was opened (Linux ≥ 5.8).
//! A batch therefore opens that descriptor when it is created, before any
//! of its data is written, so an I/O error on one of its temp files cannot
//! go unreported, even if another program's `syncfs` saw it first.

use std::collections::BTreeSet;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};

use crate::local::flatfs::{BlockDir, Staged, sync_dir};

/// Batches with fewer entries (written plus present blocks) than this are
/// synced file by file even on Linux: `syncfs` flushes every dirty page of
/// the file system, including other programs' data, which is a bad trade
/// for a single block (a cache fill) but a good one for anything bigger.
const SYNCFS_MIN_ENTRIES: usize = 2;

/// Threads that fsync files or directories at once in per-file mode.
const PARALLEL_SYNCS: usize = 4;

/// While a batch is being staged, [`start_write_back`] pays off after about
/// this many new bytes (where [`write_back_available`]).
pub(crate) const WRITE_BACK_EVERY: u64 = if cfg!(test) { 4 << 20 } else { 32 << 20 };

/// How a batch makes itself durable.
#[derive(Debug, Clone, Copy)]
enum SyncMode<'a> {
    /// `syncfs` on this descriptor, once for the data and once for the
    /// renames.
    FileSystem(&'a File),
    /// fsync of every temp file, then of every touched directory.
    PerFile,
}

/// Staged blocks waiting to be made durable together; see the module docs
/// for the ordering. Dropping a batch without committing it deletes its
/// temp files.
#[derive(Debug)]
pub(crate) struct WriteBatch {
    /// The descriptor `syncfs` is called on, opened with the batch (`None`
    /// where `syncfs` is not used).
    fs: Option<File>,
    /// (temp file, final path) of every block written.
    written: Vec<(PathBuf, PathBuf)>,
    /// Final paths of blocks that were already present.
    present: Vec<PathBuf>,
    /// Bytes in the temp files.
    bytes: u64,
}

impl WriteBatch {
    /// An empty batch for blocks of `dir`. Create it before staging its
    /// blocks (see the module docs on write-back errors).
    pub(crate) fn new(dir: &BlockDir) -> io::Result<Self> {
        let fs = if write_back_available(dir) {
            Some(File::open(dir.blocks_path())?)
        } else {
            None
        };
        Ok(Self {
            fs,
            written: Vec::new(),
            present: Vec::new(),
            bytes: 0,
        })
    }

    /// Adds a staged block.
    pub(crate) fn add(&mut self, staged: Staged) {
        match staged {
            Staged::Present { dest } => self.present.push(dest),
            Staged::Written { tmp, dest, len } => {
                self.bytes += len;
                self.written.push((tmp, dest));
            }
        }
    }

    /// Notes a block known to be at `dest`, so that its directory entry is
    /// made durable by the commit (used before pinning existing blocks).
    pub(crate) fn add_present(&mut self, dest: PathBuf) {
        self.present.push(dest);
    }

    /// Moves the blocks of `other` (staged after this batch was created)
    /// into this batch, so that one commit makes them durable. `other`'s
    /// `syncfs` descriptor is dropped: this batch's, opened before any of
    /// `other`'s data was written, reports its write-back errors too.
    pub(crate) fn absorb(&mut self, mut other: WriteBatch) {
        self.bytes += other.bytes;
        self.written.append(&mut other.written);
        self.present.append(&mut other.present);
    }

    /// Bytes written to temp files so far.
    pub(crate) fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Blocks written to temp files so far (not those found present).
    pub(crate) fn written_len(&self) -> usize {
        self.written.len()
    }

    /// Blocks added so far (written or present).
    pub(crate) fn len(&self) -> usize {
        self.written.len() + self.present.len()
    }

    /// Steps 2–4: makes every block of the batch durable at its final path.
    /// On failure, the temp files not yet renamed are deleted; blocks
    /// already renamed stay (they are complete), but none is acknowledged.
    pub(crate) fn commit(mut self, dir: &BlockDir) -> io::Result<()> {
        if self.len() == 0 {
            return Ok(());
        }
        dir.note_commit();
        let fs = self.fs.take();
        let mode = match &fs {
            Some(fs) if self.len() >= SYNCFS_MIN_ENTRIES => SyncMode::FileSystem(fs),
            _ => SyncMode::PerFile,
        };

        // Step 2: every temp file's bytes reach stable storage. On failure
        // `self` is dropped, which deletes all temp files.
        if !self.written.is_empty() {
            match mode {
                SyncMode::FileSystem(fs) => syncfs(fs)?,
                SyncMode::PerFile => {
                    sync_all_parallel(&self.written, |(tmp, _)| sync_file(tmp))?;
                }
            }
        }

        // Step 3: renames, in staging order.
        let mut written = std::mem::take(&mut self.written).into_iter();
        let mut touched: BTreeSet<PathBuf> = BTreeSet::new();
        while let Some((tmp, dest)) = written.next() {
            if let Err(e) = dir.rename_into_place(&tmp, &dest) {
                for (tmp, _) in std::iter::once((tmp, dest)).chain(written) {
                    let _ = fs::remove_file(tmp);
                }
                return Err(e);
            }
            if matches!(mode, SyncMode::PerFile)
                && let Some(parent) = dest.parent()
            {
                touched.insert(parent.to_path_buf());
            }
        }

        // Step 4: the renames (and present blocks' entries) become durable.
        match mode {
            SyncMode::FileSystem(fs) => syncfs(fs),
            SyncMode::PerFile => {
                touched.extend(
                    self.present
                        .iter()
                        .filter_map(|p| p.parent())
                        .map(Path::to_path_buf),
                );
                // `blocks/` too: a shard directory recreated by this batch
                // (or by a concurrent one this batch wrote into) must persist.
                touched.insert(dir.blocks_path().to_path_buf());
                let touched: Vec<PathBuf> = touched.into_iter().collect();
                sync_all_parallel(&touched, |d| sync_dir(d))
            }
        }
    }
}

impl Drop for WriteBatch {
    /// Deletes the temp files of a batch that was not committed (failed or
    /// abandoned put). Best effort: whatever remains is removed on open.
    fn drop(&mut self) {
        for (tmp, _) in self.written.drain(..) {
            let _ = fs::remove_file(tmp);
        }
    }
}

/// Whether this platform has `syncfs`.
const SYNCFS_SUPPORTED: bool = cfg!(target_os = "linux");

/// Whether batches of `dir` use `syncfs`, and so whether
/// [`start_write_back`] helps them.
pub(crate) fn write_back_available(dir: &BlockDir) -> bool {
    SYNCFS_SUPPORTED && dir.syncfs_allowed()
}

/// A hint while a large batch is being staged: writes back what is dirty
/// on the store's file system now, so that the batch's own data sync finds
/// little left to do. Durability never depends on it (the commit syncs
/// everything again and reports any failure), so it uses a descriptor of
/// its own and its error is only worth a log line.
pub(crate) fn start_write_back(dir: &BlockDir) -> io::Result<()> {
    syncfs(&File::open(dir.blocks_path())?)
}

/// Writes back all dirty data of the file system that `fs` is on and waits
/// for it. Reports write-back errors of any file there since `fs` was
/// opened (Linux ≥ 5.8).
#[cfg(target_os = "linux")]
fn syncfs(fs: &File) -> io::Result<()> {
    rustix::fs::syncfs(fs).map_err(io::Error::from)
}

/// Not available: [`SYNCFS_SUPPORTED`] keeps this from being called.
#[cfg(not(target_os = "linux"))]
fn syncfs(_fs: &File) -> io::Result<()> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "syncfs is only available on Linux",
    ))
}

/// fsyncs a (temp) file by path: the sync applies to the file, not to the
/// descriptor, so a fresh descriptor flushes what an earlier one wrote.
fn sync_file(path: &Path) -> io::Result<()> {
    OpenOptions::new().write(true).open(path)?.sync_all()
}

/// Runs `sync` on every item, spread over up to [`PARALLEL_SYNCS`] threads,
/// so the device sees several flushes at once. Returns the first error
/// after every thread has finished.
fn sync_all_parallel<T: Sync>(
    items: &[T],
    sync: impl Fn(&T) -> io::Result<()> + Sync,
) -> io::Result<()> {
    if items.len() <= 1 {
        return items.iter().try_for_each(&sync);
    }
    let per_thread = items.len().div_ceil(PARALLEL_SYNCS);
    std::thread::scope(|scope| {
        let sync = &sync;
        let mut threads = Vec::new();
        let mut result = Ok(());
        for chunk in items.chunks(per_thread) {
            let spawned = std::thread::Builder::new()
                .name("medseal-fsync".into())
                .spawn_scoped(scope, move || chunk.iter().try_for_each(sync));
            match spawned {
                Ok(thread) => threads.push(thread),
                // No thread to spare: do this chunk here.
                Err(_) => {
                    if let Err(e) = chunk.iter().try_for_each(sync) {
                        result = Err(e);
                    }
                }
            }
        }
        for thread in threads {
            let outcome = thread
                .join()
                .unwrap_or_else(|_| Err(io::Error::other("fsync thread panicked")));
            if let Err(e) = outcome
                && result.is_ok()
            {
                result = Err(e);
            }
        }
        result
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cid::{Cid, CidVersion, Codec};

    fn block(i: u32) -> (Cid, Vec<u8>) {
        let data = format!("block number {i}").into_bytes();
        (Cid::for_block(CidVersion::V1, Codec::Raw, &data), data)
    }

    fn temp_files(root: &Path) -> usize {
        fs::read_dir(root.join("tmp")).unwrap().count()
    }

    /// Both sync modes: staged blocks are invisible until the commit, then
    /// all in place, with no temp file left behind.
    #[test]
    fn commit_puts_every_block_in_place() {
        for allow_syncfs in [true, false] {
            let root = tempfile::tempdir().unwrap();
            let dir = BlockDir::open(root.path())
                .unwrap()
                .with_syncfs_allowed(allow_syncfs);
            let blocks: Vec<_> = (0..40).map(block).collect();
            let mut batch = WriteBatch::new(&dir).unwrap();
            assert_eq!(batch.fs.is_some(), allow_syncfs && SYNCFS_SUPPORTED);
            for (cid, data) in &blocks {
                batch.add(dir.stage(cid, data).unwrap());
            }
            if write_back_available(&dir) {
                start_write_back(&dir).unwrap();
            }
            assert_eq!(batch.len(), 40);
            assert_eq!(temp_files(root.path()), 40);
            assert!(
                !dir.contains(blocks[0].0.digest()).unwrap(),
                "not before commit"
            );
            batch.commit(&dir).unwrap();
            assert_eq!(temp_files(root.path()), 0);
            for (cid, data) in &blocks {
                assert_eq!(dir.read(cid.digest()).unwrap().as_deref(), Some(&data[..]));
            }

            // Again: everything is present, nothing is written.
            let mut batch = WriteBatch::new(&dir).unwrap();
            for (cid, data) in &blocks {
                let staged = dir.stage(cid, data).unwrap();
                assert!(matches!(staged, Staged::Present { .. }));
                batch.add(staged);
            }
            assert_eq!(batch.bytes(), 0);
            batch.commit(&dir).unwrap();
        }
    }

    #[test]
    fn dropped_batch_leaves_nothing() {
        let root = tempfile::tempdir().unwrap();
        let dir = BlockDir::open(root.path()).unwrap();
        let (cid, data) = block(1);
        let mut batch = WriteBatch::new(&dir).unwrap();
        batch.add(dir.stage(&cid, &data).unwrap());
        assert_eq!(batch.bytes(), data.len() as u64);
        drop(batch);
        assert_eq!(temp_files(root.path()), 0);
        assert!(!dir.contains(cid.digest()).unwrap());
    }

    #[test]
    fn failed_rename_cleans_up_the_rest() {
        let root = tempfile::tempdir().unwrap();
        let dir = BlockDir::open(root.path()).unwrap();
        let mut batch = WriteBatch::new(&dir).unwrap();
        for i in 0..3 {
            let (cid, data) = block(i);
            batch.add(dir.stage(&cid, &data).unwrap());
        }
        // Make the second rename fail: its temp file vanished.
        fs::remove_file(&batch.written[1].0).unwrap();
        assert!(batch.commit(&dir).is_err());
        assert_eq!(temp_files(root.path()), 0);
        let (first, _) = block(0);
        assert!(
            dir.contains(first.digest()).unwrap(),
            "renamed before the failure"
        );
    }

    #[test]
    fn parallel_sync_reports_the_first_error() {
        let items: Vec<u32> = (0..17).collect();
        let ok = sync_all_parallel(&items, |_| Ok(()));
        assert!(ok.is_ok());
        let failed = sync_all_parallel(&items, |i| {
            if *i == 11 {
                Err(io::Error::other("eleven"))
            } else {
                Ok(())
            }
        });
        assert_eq!(failed.unwrap_err().to_string(), "eleven");
    }
}
