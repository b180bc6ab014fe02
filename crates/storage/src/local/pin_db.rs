//! The persisted pin set: a table of an embedded redb database,
//! `pins.redb`, keyed by the pinned CID's binary form.
//!
//! Pinning or unpinning (or pinning many CIDs at once, as a batch of puts
//! or `pin_many` does) is one write transaction, committed durably
//! (`Durability::Immediate`): it writes a few B-tree pages and syncs them,
//! whatever the number of pins, and a crash leaves either the old or the
//! new set, never a mix. Commits use redb's default single-sync protocol
//! (data and checksums, then one `fsync`); its two-sync mode only guards
//! against crafted page contents racing a crash, and a pin transaction
//! writes one key that is a hash. Opening reads only the database header,
//! not the pins (after a crash redb first repairs the file, which reads
//! all of it: 16–34 ms for 10^5 pins in the `pin_scaling` example).
//!
//! # Migration from `pins.json`
//!
//! Stores written by earlier versions keep their pins in `pins.json`
//! (format `medseal-pins-v1`, see [`pin_file`]). Whenever that file exists,
//! [`PinDb::open`] inserts all of its pins in one durable transaction, then
//! renames it to `pins.json.migrated` and syncs the directory. A crash
//! before the rename persists leaves `pins.json` in place and the next open
//! inserts the same pins again (inserting is idempotent), so no pin is lost
//! however the migration is interrupted. A corrupt `pins.json` stops the
//! open: treating it as empty would let garbage collection delete pinned
//! data.
//!
//! # One database per directory and process
//!
//! redb locks the file of an open database, so a second `Database` on the
//! same file fails, even within one process. Every [`LocalStore`] opened on
//! the same directory in a process therefore shares one [`PinDb`], through
//! a process-wide registry; the database is closed when the last of them
//! is dropped. So does the lock that keeps garbage collection apart from
//! puts and pins ([`PinDb::gc_lock`]).
//!
//! [`LocalStore`]: crate::LocalStore

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::Duration;

use redb::{
    Database, DatabaseError, Durability, ReadableTable, ReadableTableMetadata, TableDefinition,
    TableError,
};

use tokio::sync::RwLock;

use crate::cid::Cid;
use crate::error::{Result, StorageError};
use crate::local::pin_file;

/// The database file, in the store's root directory.
pub(crate) const PIN_DB_FILE: &str = "pins.redb";

/// The pin set of earlier versions, migrated on open.
pub(crate) const LEGACY_PIN_FILE: &str = "pins.json";

/// What [`LEGACY_PIN_FILE`] is renamed to once its pins are in the database.
pub(crate) const MIGRATED_PIN_FILE: &str = "pins.json.migrated";

/// Pinned roots: binary CID → nothing.
const PINS: TableDefinition<&[u8], ()> = TableDefinition::new("pins");

/// redb's page cache for the pin database. A pin is a B-tree entry of
/// about 40 bytes, so this holds the whole tree of about 10^5 pins; larger
/// sets read their inner pages from the OS page cache.
const CACHE_BYTES: usize = 16 << 20;

/// Open pin databases of this process, by canonical store root. An entry
/// whose `Weak` is dead belongs to a [`PinDb`] being dropped right now: its
/// `Drop` closes the database and then removes the entry.
static OPEN: Mutex<BTreeMap<PathBuf, Weak<PinDb>>> = Mutex::new(BTreeMap::new());

fn registry() -> MutexGuard<'static, BTreeMap<PathBuf, Weak<PinDb>>> {
    // The map stays consistent even if a holder panicked.
    OPEN.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Builds a [`StorageError`] for a failed database operation on `path`:
/// [`StorageError::Io`] for file-system errors, [`StorageError::Backend`]
/// for the rest (corruption, a database open in another process, ...).
fn db_error(path: &Path, doing: &str, error: impl Into<redb::Error>) -> StorageError {
    let context = format!("{doing} (pin database {})", path.display());
    match error.into() {
        redb::Error::Io(source) => StorageError::io(context, source),
        other => StorageError::backend_with(context, other),
    }
}

/// The pin set of one store directory. Every method blocks (file I/O, and
/// waiting for other writers): call them in the blocking pool.
#[derive(Debug)]
pub(crate) struct PinDb {
    /// `None` only while dropping.
    db: Option<Database>,
    /// The database file, for error messages.
    path: PathBuf,
    /// This database's key in [`OPEN`].
    key: PathBuf,
    /// Puts and pins of this directory hold it shared, GC exclusively: GC
    /// never sees the blocks of a DAG that is half written or being
    /// pinned. Here, not in each `LocalStore`, so that it covers every
    /// store opened on the directory in this process. In an `Arc` so that
    /// a batch of puts can hold it from its first put to its commit.
    pub(crate) gc_lock: Arc<RwLock<()>>,
    /// Durable transactions committed by [`PinDb::insert_all`] and
    /// [`PinDb::remove`] since the database was opened.
    commits: AtomicU64,
    /// Blocks, and their bytes, that puts of this directory made durable
    /// and then abandoned unpinned (see `LocalStats::abandoned_bytes`).
    abandoned_blocks: AtomicU64,
    abandoned_bytes: AtomicU64,
}

impl PinDb {
    /// Opens (creating if needed) the pin database of the store at `root`,
    /// or joins the one this process already has open there, and migrates
    /// a legacy `pins.json` if there is one. `root` must exist.
    pub(crate) fn open(root: &Path) -> Result<Arc<Self>> {
        let path = root.join(PIN_DB_FILE);
        let key = std::fs::canonicalize(root)
            .map_err(|e| StorageError::io(format!("resolving {}", root.display()), e))?;
        let db = loop {
            let mut open = registry();
            match open.get(&key).map(Weak::upgrade) {
                Some(Some(db)) => break db,
                // Being closed by its last user: wait until it is.
                Some(None) => {
                    drop(open);
                    std::thread::sleep(Duration::from_millis(1));
                }
                None => {
                    // Created under the registry lock, so that two opens of
                    // the same directory cannot race to lock the file.
                    let db = Arc::new(Self {
                        db: Some(Self::create(&path)?),
                        path: path.clone(),
                        key: key.clone(),
                        gc_lock: Arc::new(RwLock::new(())),
                        commits: AtomicU64::new(0),
                        abandoned_blocks: AtomicU64::new(0),
                        abandoned_bytes: AtomicU64::new(0),
                    });
                    open.insert(key.clone(), Arc::downgrade(&db));
                    break db;
                }
            }
        };
        db.migrate_legacy_file(root)?;
        Ok(db)
    }

    /// Opens or creates the database file and makes sure the table exists
    /// (a new file is made durable in its directory).
    fn create(path: &Path) -> Result<Database> {
        let db = Database::builder()
            .set_cache_size(CACHE_BYTES)
            .create(path)
            .map_err(|e| match e {
                DatabaseError::DatabaseAlreadyOpen => StorageError::backend(format!(
                    "pin database {} is already open in another process (one process at a \
                     time may open a store)",
                    path.display()
                )),
                e => db_error(path, "opening", e),
            })?;
        let exists = {
            let txn = db.begin_read().map_err(|e| db_error(path, "reading", e))?;
            match txn.open_table(PINS) {
                Ok(_) => true,
                Err(TableError::TableDoesNotExist(_)) => false,
                Err(e) => return Err(db_error(path, "opening the pin table", e)),
            }
        };
        if !exists {
            let mut txn = db
                .begin_write()
                .map_err(|e| db_error(path, "creating the pin table", e))?;
            txn.set_durability(Durability::Immediate);
            txn.open_table(PINS)
                .map_err(|e| db_error(path, "creating the pin table", e))?;
            txn.commit()
                .map_err(|e| db_error(path, "creating the pin table", e))?;
            // A new file: its directory entry must be durable before any
            // pin (or a migration that retires `pins.json`) relies on it.
            if let Some(dir) = path.parent() {
                std::fs::File::open(dir)
                    .and_then(|dir| dir.sync_all())
                    .map_err(|e| {
                        StorageError::io(format!("syncing directory {}", dir.display()), e)
                    })?;
            }
        }
        Ok(db)
    }

    fn db(&self) -> Result<&Database> {
        self.db
            .as_ref()
            .ok_or_else(|| StorageError::backend("pin database already closed"))
    }

    /// Inserts every pin of `root/pins.json`, if that file exists, then
    /// renames it out of the way (see the module docs).
    fn migrate_legacy_file(&self, root: &Path) -> Result<()> {
        let legacy = root.join(LEGACY_PIN_FILE);
        let Some(pins) = pin_file::load(&legacy)
            .map_err(|e| StorageError::io(format!("reading pin file {}", legacy.display()), e))?
        else {
            return Ok(());
        };
        self.insert_all(pins.iter())?;
        let migrated = root.join(MIGRATED_PIN_FILE);
        let renamed = std::fs::rename(&legacy, &migrated)
            .and_then(|()| std::fs::File::open(root)?.sync_all());
        renamed.map_err(|e| {
            StorageError::io(
                format!(
                    "renaming migrated pin file {} to {}",
                    legacy.display(),
                    migrated.display()
                ),
                e,
            )
        })?;
        tracing::info!(pins = pins.len(), file = %legacy.display(), "pin file migrated");
        Ok(())
    }

    /// Adds `cids` in one durable transaction. Committed only if one of
    /// them is new: pinning what is pinned already writes nothing.
    pub(crate) fn insert_all<'a>(&self, cids: impl IntoIterator<Item = &'a Cid>) -> Result<()> {
        let path = &self.path;
        let fail = |e: redb::Error| db_error(path, "adding pins", e);
        let mut txn = self.db()?.begin_write().map_err(|e| fail(e.into()))?;
        txn.set_durability(Durability::Immediate);
        let mut added = false;
        {
            let mut table = txn.open_table(PINS).map_err(|e| fail(e.into()))?;
            for cid in cids {
                let old = table
                    .insert(cid.to_bytes().as_slice(), ())
                    .map_err(|e| fail(e.into()))?;
                added |= old.is_none();
            }
        }
        if added {
            txn.commit().map_err(|e| fail(e.into()))?;
            self.commits.fetch_add(1, Ordering::Relaxed);
            Ok(())
        } else {
            txn.abort().map_err(|e| fail(e.into()))
        }
    }

    /// Removes `cid` in one durable transaction; whether it was pinned.
    pub(crate) fn remove(&self, cid: &Cid) -> Result<bool> {
        let path = &self.path;
        let fail = |e: redb::Error| db_error(path, "removing a pin", e);
        let mut txn = self.db()?.begin_write().map_err(|e| fail(e.into()))?;
        txn.set_durability(Durability::Immediate);
        let removed = {
            let mut table = txn.open_table(PINS).map_err(|e| fail(e.into()))?;
            let old = table
                .remove(cid.to_bytes().as_slice())
                .map_err(|e| fail(e.into()))?;
            old.is_some()
        };
        if removed {
            txn.commit().map_err(|e| fail(e.into()))?;
            self.commits.fetch_add(1, Ordering::Relaxed);
        } else {
            txn.abort().map_err(|e| fail(e.into()))?;
        }
        Ok(removed)
    }

    /// Durable pin transactions committed (adding or removing pins) since
    /// this database was opened in this process.
    pub(crate) fn commits(&self) -> u64 {
        self.commits.load(Ordering::Relaxed)
    }

    /// Counts `blocks` blocks of `bytes` bytes that a put made durable and
    /// then abandoned without pinning them.
    pub(crate) fn note_abandoned(&self, blocks: u64, bytes: u64) {
        if blocks > 0 {
            self.abandoned_blocks.fetch_add(blocks, Ordering::Relaxed);
            self.abandoned_bytes.fetch_add(bytes, Ordering::Relaxed);
        }
    }

    /// Blocks and bytes counted by [`PinDb::note_abandoned`] since the
    /// database was opened.
    pub(crate) fn abandoned(&self) -> (u64, u64) {
        (
            self.abandoned_blocks.load(Ordering::Relaxed),
            self.abandoned_bytes.load(Ordering::Relaxed),
        )
    }

    /// At most `limit` pins after `after` (from the first if `None`), in
    /// key order, from one read transaction: garbage collection pages
    /// through the pins instead of loading them all.
    pub(crate) fn page(&self, after: Option<&Cid>, limit: usize) -> Result<Vec<Cid>> {
        use std::ops::Bound;
        let path = &self.path;
        let fail = |e: redb::Error| db_error(path, "reading the pins", e);
        let txn = self.db()?.begin_read().map_err(|e| fail(e.into()))?;
        let table = txn.open_table(PINS).map_err(|e| fail(e.into()))?;
        let start = after.map(Cid::to_bytes);
        let lower = match &start {
            Some(key) => Bound::Excluded(key.as_slice()),
            None => Bound::Unbounded,
        };
        let range = table
            .range::<&[u8]>((lower, Bound::Unbounded))
            .map_err(|e| fail(e.into()))?;
        let mut out = Vec::with_capacity(limit.min(1024));
        for entry in range.take(limit) {
            let (key, _) = entry.map_err(|e| fail(e.into()))?;
            out.push(decode_pin(path, key.value())?);
        }
        Ok(out)
    }

    /// Whether `cid` is pinned.
    pub(crate) fn contains(&self, cid: &Cid) -> Result<bool> {
        let path = &self.path;
        let fail = |e: redb::Error| db_error(path, "reading the pins", e);
        let txn = self.db()?.begin_read().map_err(|e| fail(e.into()))?;
        let table = txn.open_table(PINS).map_err(|e| fail(e.into()))?;
        let found = table
            .get(cid.to_bytes().as_slice())
            .map_err(|e| fail(e.into()))?;
        Ok(found.is_some())
    }

    /// Every pin, sorted, read in one consistent snapshot.
    pub(crate) fn list(&self) -> Result<Vec<Cid>> {
        let path = &self.path;
        let fail = |e: redb::Error| db_error(path, "reading the pins", e);
        let txn = self.db()?.begin_read().map_err(|e| fail(e.into()))?;
        let table = txn.open_table(PINS).map_err(|e| fail(e.into()))?;
        let len = table.len().map_err(|e| fail(e.into()))?;
        let mut pins = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
        for entry in table.iter().map_err(|e| fail(e.into()))? {
            let (key, _) = entry.map_err(|e| fail(e.into()))?;
            pins.push(decode_pin(path, key.value())?);
        }
        pins.sort_unstable();
        Ok(pins)
    }
}

/// A pin's key back as a CID.
fn decode_pin(path: &Path, key: &[u8]) -> Result<Cid> {
    Cid::from_bytes(key).map_err(|e| {
        StorageError::io(
            format!("reading the pins (pin database {})", path.display()),
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("stored pin is not a valid CID: {e}"),
            ),
        )
    })
}

impl Drop for PinDb {
    /// Closes the database (redb saves its allocator state, one sync), then
    /// lets the next open of this directory create a new one.
    fn drop(&mut self) {
        let mut open = registry();
        drop(self.db.take());
        if open.get(&self.key).is_some_and(|db| db.strong_count() == 0) {
            open.remove(&self.key);
        }
    }
}
