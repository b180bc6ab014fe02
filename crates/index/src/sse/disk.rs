//! The persistent index host: the live shards of any number of partitions in an embedded
//! database file, answering proved searches without loading anything into memory.
//!
//! [`super::IndexHost`] keeps every entry in a hash table: a process that starts must
//! fetch, decode and hash every live shard before its first answer (O(N) per cold
//! start), and holds O(N) memory. [`DiskHost`] stores what a proof needs, once per
//! shard, in a [redb](https://docs.rs/redb) database (pure Rust, one file, crash-safe
//! copy-on-write B-trees, already used by the storage and chain crates), so that opening
//! reads a header and a proved answer reads O(hits · log N + log² N) small records:
//!
//! | table | key | value |
//! |---|---|---|
//! | `labels` | partition id ‖ label | shard id, leaf index, value (the O(1) probe) |
//! | `leaves` | shard id ‖ label | leaf index, value (sorted: neighbours are range scans) |
//! | `blocks` | shard id ‖ block | the subtree of the block's 16 leaves, its path from level 4 up |
//! | `shards`, `roots` | shard id / root | root, partition, entry count / shard id |
//! | `partitions` | partition id | its live shard ids, oldest first |
//!
//! Levels 0–3 of a path come from the stored subtree of the aligned block of 16 leaves
//! around the leaf (31 hashes; storing them rather than the 16 leaves alone saves
//! rebuilding it, 15 hashes, on every read); the siblings above are the same for the
//! whole block and stored with it (`log2(n) - 4` hashes per 16 leaves). A proved result
//! costs two reads (its label, its block), whatever the shard size, and an absence proof
//! usually finds both neighbours in one block.
//!
//! **Trust.** The database is a cache, not an authority: [`DiskHost::update`] only
//! accepts shards whose roots the caller names as live (read from the chain anchors), and
//! every answer is still checked by [`super::KeywordKey::verify`] against the anchored
//! roots, so a damaged or tampered file yields a rejected answer, never a wrong one. A
//! caller that sees one drops the partition ([`DiskHost::remove_partition`]) and loads it
//! again from the store. The same table layout as the in-memory host means the same
//! leakage (see [`crate::notes::leakage`]): the file holds exactly the shards a host holds.

use std::collections::HashSet;
use std::path::Path;
use std::sync::{RwLock, RwLockReadGuard};

use redb::{Database, Durability, ReadableTable, TableDefinition};

use super::merkle::{MerkleTree, ShardRoot, leaf_hash};
use super::partition::PartitionId;
use super::prf::{Label, LabelPrf};
use super::proof::{AbsenceProof, MemberProof, Neighbour, VerifiableAnswer};
use super::shard::Shard;
use super::token::SearchToken;
use crate::error::{Error, Result};

const LABELS: TableDefinition<&[u8; 48], &[u8; 44]> = TableDefinition::new("labels");
const LEAVES: TableDefinition<&[u8; 24], &[u8; 36]> = TableDefinition::new("leaves");
const BLOCKS: TableDefinition<&[u8; 16], &[u8]> = TableDefinition::new("blocks");
const SHARDS: TableDefinition<u64, &[u8; 72]> = TableDefinition::new("shards");
const ROOTS: TableDefinition<&[u8; 32], u64> = TableDefinition::new("roots");
const PARTITIONS: TableDefinition<&[u8; 32], &[u8]> = TableDefinition::new("partitions");
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
/// `meta` keys: the entries of the held shards, and the entries dropped since the last
/// compaction.
const LIVE_ENTRIES: &str = "live_entries";
const DROPPED_ENTRIES: &str = "dropped_entries";

/// Layout version, in `meta`; a file of another version is refused (rebuild it).
const FORMAT: u64 = 2;
/// Leaves per block; tree levels below `STORED_LEVEL` are recomputed from one block, the
/// siblings above (the same for every leaf of the block) are stored per block.
const BLOCK: u64 = 16;
const STORED_LEVEL: u32 = 4;
/// redb's page cache: the inner pages of the tables of ~10^6 entries.
const CACHE_BYTES: usize = 64 << 20;
/// Entries dropped since the last compaction below which the file is never compacted
/// (a file of this many entries is a few tens of MB).
const COMPACTION_FLOOR: u64 = 50_000;

fn db_err(e: impl Into<redb::Error>) -> Error {
    Error::Cache(e.into().to_string())
}

fn corrupt(what: &str) -> Error {
    Error::Cache(format!(
        "{what} (drop the partition or the file: it is rebuilt from the store)"
    ))
}

/// Runs a database operation, turning a panic into an error: redb asserts on some damaged
/// files (e.g. a truncated one) instead of returning an error, and a damaged cache must
/// never take its process down.
fn guarded<T>(operation: impl FnOnce() -> Result<T>) -> Result<T> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(operation))
        .unwrap_or_else(|_| Err(corrupt("the database file is damaged")))
}

fn label_key(partition: &PartitionId, label: &Label) -> [u8; 48] {
    let mut k = [0u8; 48];
    k[..32].copy_from_slice(partition.as_bytes());
    k[32..].copy_from_slice(&label.0);
    k
}

fn slot(shard: u64, index: u32, value: &[u8; 32]) -> [u8; 44] {
    let mut v = [0u8; 44];
    v[..8].copy_from_slice(&shard.to_be_bytes());
    v[8..12].copy_from_slice(&index.to_be_bytes());
    v[12..].copy_from_slice(value);
    v
}

/// (shard id, leaf index, value) of a `labels` row.
fn read_slot(v: &[u8; 44]) -> (u64, u32, [u8; 32]) {
    let mut value = [0u8; 32];
    value.copy_from_slice(&v[12..]);
    (
        u64::from_be_bytes(v[..8].try_into().unwrap_or_default()),
        u32::from_be_bytes(v[8..12].try_into().unwrap_or_default()),
        value,
    )
}

fn leaf_key(shard: u64, label: &Label) -> [u8; 24] {
    let mut k = [0u8; 24];
    k[..8].copy_from_slice(&shard.to_be_bytes());
    k[8..].copy_from_slice(&label.0);
    k
}

fn leaf_value(index: u32, value: &[u8; 32]) -> [u8; 36] {
    let mut v = [0u8; 36];
    v[..4].copy_from_slice(&index.to_be_bytes());
    v[4..].copy_from_slice(value);
    v
}

/// (label, leaf index, value) of a `leaves` row.
fn read_leaf(k: &[u8; 24], v: &[u8; 36]) -> (Label, u64, [u8; 32]) {
    let mut label = [0u8; 16];
    label.copy_from_slice(&k[8..]);
    let mut value = [0u8; 32];
    value.copy_from_slice(&v[4..]);
    let index = u32::from_be_bytes([v[0], v[1], v[2], v[3]]);
    (Label(label), index.into(), value)
}

fn block_key(shard: u64, block: u64) -> [u8; 16] {
    let mut k = [0u8; 16];
    k[..8].copy_from_slice(&shard.to_be_bytes());
    k[8..].copy_from_slice(&block.to_be_bytes());
    k
}

fn shard_row(root: &ShardRoot, partition: &PartitionId, n: u64) -> [u8; 72] {
    let mut v = [0u8; 72];
    v[..32].copy_from_slice(&root.0);
    v[32..64].copy_from_slice(partition.as_bytes());
    v[64..].copy_from_slice(&n.to_be_bytes());
    v
}

/// The entry count of a `shards` row.
fn shard_len(row: &[u8; 72]) -> u64 {
    let mut n = [0u8; 8];
    n.copy_from_slice(&row[64..]);
    u64::from_be_bytes(n)
}

fn shard_ids(bytes: &[u8]) -> Vec<u64> {
    bytes
        .chunks_exact(8)
        .map(|c| u64::from_be_bytes(c.try_into().unwrap_or_default()))
        .collect()
}

/// Length of level `k` of a tree of `n` leaves (a level of odd length carries its last
/// node up).
fn level_len(n: u64, k: u32) -> u64 {
    n.div_ceil(1u64 << k)
}

/// A persistent index host (see the module docs): the same answers as
/// [`super::IndexHost::prove`] from a database file, with nothing loaded on open.
///
/// **Space.** redb reuses freed pages but never shrinks its file, and every update that
/// follows a merge drops the merged shards' rows: a host updated batch by batch would keep
/// the high-water mark of many rewrites (measured: 9× the size of one fill). The host
/// counts the entries it holds and the entries it dropped since the last compaction, and
/// compacts the file after an update once the dropped ones outnumber the held ones (and
/// pass a floor, 50,000 entries). Each dropped entry then pays O(1) compaction work,
/// amortised, and the file stays within about 4× its compact size (measured: 62 MB
/// against 17 MB for one fill, 256 MB without compaction, over 800 updates of a
/// 24,000-entry partition): a merge that rewrites every entry needs room for both copies
/// in its transaction, on top of what was dropped since the last compaction.
pub struct DiskHost {
    // A lock only so that compaction (which needs `&mut Database` and no open read
    // transaction) can run behind `&self`; every other operation takes it shared.
    db: RwLock<Database>,
    compaction_floor: u64,
}

impl core::fmt::Debug for DiskHost {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("DiskHost").finish_non_exhaustive()
    }
}

impl DiskHost {
    /// Opens (creating if needed) the database at `path`. One process at a time: a second
    /// open of the same file, even in the same process, fails.
    ///
    /// # Errors
    /// [`Error::CacheInUse`] if the file is open elsewhere; [`Error::Cache`] if it cannot
    /// be opened or was written by another layout version.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        guarded(|| Self::open_unguarded(path))
    }

    fn open_unguarded(path: &Path) -> Result<Self> {
        let db = match Database::builder().set_cache_size(CACHE_BYTES).create(path) {
            Ok(db) => db,
            Err(redb::DatabaseError::DatabaseAlreadyOpen) => return Err(Error::CacheInUse),
            Err(e) => return Err(db_err(e)),
        };
        Self::init(db)
    }

    /// A host whose database lives in memory (nothing persists).
    ///
    /// # Errors
    /// [`Error::Cache`] if the database cannot be created.
    pub fn in_memory() -> Result<Self> {
        let db = Database::builder()
            .set_cache_size(CACHE_BYTES)
            .create_with_backend(redb::backends::InMemoryBackend::new())
            .map_err(db_err)?;
        Self::init(db)
    }

    fn init(db: Database) -> Result<Self> {
        let tx = db.begin_write().map_err(db_err)?;
        {
            tx.open_table(LABELS).map_err(db_err)?;
            tx.open_table(LEAVES).map_err(db_err)?;
            tx.open_table(BLOCKS).map_err(db_err)?;
            tx.open_table(SHARDS).map_err(db_err)?;
            tx.open_table(ROOTS).map_err(db_err)?;
            tx.open_table(PARTITIONS).map_err(db_err)?;
            let mut meta = tx.open_table(META).map_err(db_err)?;
            let version = meta.get("format").map_err(db_err)?.map(|v| v.value());
            match version {
                Some(FORMAT) => {}
                Some(other) => {
                    return Err(Error::Cache(format!(
                        "layout version {other}, this build reads {FORMAT}"
                    )));
                }
                None => {
                    meta.insert("format", FORMAT).map_err(db_err)?;
                }
            }
        }
        tx.commit().map_err(db_err)?;
        let host = Self {
            db: RwLock::new(db),
            compaction_floor: COMPACTION_FLOOR,
        };
        host.count_entries()?;
        Ok(host)
    }

    /// Sets the number of dropped entries below which the file is never compacted
    /// (default 50,000; 0 compacts whenever dropped entries outnumber held ones).
    #[must_use]
    pub fn with_compaction_floor(mut self, entries: u64) -> Self {
        self.compaction_floor = entries;
        self
    }

    fn db(&self) -> RwLockReadGuard<'_, Database> {
        // A panic while holding the lock leaves the database as its last commit.
        self.db
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Files written before the entry counters existed: count the held entries once.
    fn count_entries(&self) -> Result<()> {
        let db = self.db();
        let tx = db.begin_write().map_err(db_err)?;
        {
            let mut meta = tx.open_table(META).map_err(db_err)?;
            if meta.get(LIVE_ENTRIES).map_err(db_err)?.is_some() {
                return Ok(());
            }
            let shards = tx.open_table(SHARDS).map_err(db_err)?;
            let mut live = 0u64;
            for row in shards.iter().map_err(db_err)? {
                let (_, v) = row.map_err(db_err)?;
                live += shard_len(v.value());
            }
            meta.insert(LIVE_ENTRIES, live).map_err(db_err)?;
            meta.insert(DROPPED_ENTRIES, 0).map_err(db_err)?;
        }
        tx.commit().map_err(db_err)
    }

    /// (entries held, entries dropped since the last compaction).
    ///
    /// # Errors
    /// [`Error::Cache`] on a database failure.
    pub fn entry_counts(&self) -> Result<(u64, u64)> {
        guarded(|| {
            let db = self.db();
            let tx = db.begin_read().map_err(db_err)?;
            let meta = tx.open_table(META).map_err(db_err)?;
            let get = |key| -> Result<u64> {
                Ok(meta.get(key).map_err(db_err)?.map_or(0, |v| v.value()))
            };
            Ok((get(LIVE_ENTRIES)?, get(DROPPED_ENTRIES)?))
        })
    }

    /// Compacts the file (returns the space of dropped entries to the file system) and
    /// resets the dropped-entry count. Blocks every other use of the host while it runs
    /// (about 1 s per 100 MB of file).
    ///
    /// # Errors
    /// [`Error::Cache`] on a database failure.
    pub fn compact(&self) -> Result<()> {
        guarded(|| {
            let mut db = self
                .db
                .write()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            db.compact().map_err(db_err)?;
            let tx = db.begin_write().map_err(db_err)?;
            tx.open_table(META)
                .map_err(db_err)?
                .insert(DROPPED_ENTRIES, 0)
                .map_err(db_err)?;
            tx.commit().map_err(db_err)
        })
    }

    /// Compacts once the dropped entries outnumber the held ones and pass the floor.
    fn compact_if_sparse(&self) -> Result<()> {
        let (live, dropped) = self.entry_counts()?;
        if dropped > live.max(self.compaction_floor) {
            self.compact()?;
        }
        Ok(())
    }

    /// The roots among `roots` whose shards are not held.
    ///
    /// # Errors
    /// [`Error::Cache`] on a database failure.
    pub fn missing(&self, roots: &[ShardRoot]) -> Result<Vec<ShardRoot>> {
        guarded(|| self.missing_unguarded(roots))
    }

    fn missing_unguarded(&self, roots: &[ShardRoot]) -> Result<Vec<ShardRoot>> {
        let db = self.db();
        let tx = db.begin_read().map_err(db_err)?;
        let table = tx.open_table(ROOTS).map_err(db_err)?;
        let mut missing = Vec::new();
        for root in roots {
            if table.get(&root.0).map_err(db_err)?.is_none() {
                missing.push(*root);
            }
        }
        Ok(missing)
    }

    /// Makes `live` (oldest first, as anchored) the partition's shards, in one durable
    /// transaction: stores the shards of `new` (each must be one of `live`; the others
    /// must already be held) and drops the partition's shards that are no longer live
    /// (e.g. those a merged shard superseded). Nothing changes on error.
    ///
    /// # Errors
    /// [`Error::ShardConflict`] if a shard of `new` is of another partition or not live, a
    /// root is listed twice, or two live shards share a label (honest owners never repeat
    /// a label: see [`super::IndexHost::insert_shard`]); [`Error::Cache`] if a live shard
    /// is neither held nor in `new`, or on a database failure.
    pub fn update(&self, partition: &PartitionId, live: &[ShardRoot], new: &[Shard]) -> Result<()> {
        guarded(|| self.update_unguarded(partition, live, new))?;
        self.compact_if_sparse()
    }

    fn update_unguarded(
        &self,
        partition: &PartitionId,
        live: &[ShardRoot],
        new: &[Shard],
    ) -> Result<()> {
        if new.is_empty() && self.is_current(partition, live)? {
            // Nothing to write: no write transaction, no sync.
            return Ok(());
        }
        if new.iter().any(|s| s.partition() != partition) {
            return Err(Error::ShardConflict("shard of another partition"));
        }
        let new: Vec<(ShardRoot, &Shard)> = new.iter().map(|s| (s.root(), s)).collect();
        if new.iter().any(|(root, _)| !live.contains(root)) {
            return Err(Error::ShardConflict("shard not among the live ones"));
        }
        // The same root twice is the same entries twice: repeated labels, unless the
        // shard is empty (every empty shard of a partition has the same root).
        let mut seen = HashSet::new();
        for root in live.iter().filter(|root| !seen.insert(*root)) {
            if self.entry_count(root)? != Some(0)
                && !new.iter().any(|(r, s)| r == root && s.is_empty())
            {
                return Err(Error::ShardConflict("the same shard listed twice"));
            }
        }
        let db = self.db();
        let mut tx = db.begin_write().map_err(db_err)?;
        tx.set_durability(Durability::Immediate);
        {
            let mut t = Tables::open(&tx)?;
            let mut partitions = tx.open_table(PARTITIONS).map_err(db_err)?;
            let mut meta = tx.open_table(META).map_err(db_err)?;
            let mut next = meta
                .get("next_shard")
                .map_err(db_err)?
                .map_or(0, |v| v.value());
            // Ids for every live shard first, so that label conflicts with any of them
            // are seen whatever the insertion order.
            let mut live_ids = Vec::with_capacity(live.len());
            let mut inserts = Vec::new();
            for root in live {
                let held = t.roots.get(&root.0).map_err(db_err)?.map(|v| v.value());
                let id = match held {
                    Some(id) => id,
                    None => {
                        if let Some(&(id, _, _)) = inserts.iter().find(|(_, r, _)| r == root) {
                            id
                        } else {
                            let Some((_, shard)) = new.iter().find(|(r, _)| r == root) else {
                                return Err(corrupt("a live shard is neither held nor given"));
                            };
                            let id = next;
                            next += 1;
                            inserts.push((id, *root, *shard));
                            id
                        }
                    }
                };
                live_ids.push(id);
            }
            let live_set: HashSet<u64> = live_ids.iter().copied().collect();
            let (mut added, mut dropped) = (0, 0);
            for (id, root, shard) in inserts {
                t.insert(id, &root, shard, &live_set)?;
                added += shard.len() as u64;
            }
            let old = partitions
                .get(partition.as_bytes())
                .map_err(db_err)?
                .map(|v| shard_ids(v.value()))
                .unwrap_or_default();
            for id in old.into_iter().filter(|id| !live_set.contains(id)) {
                dropped += t.drop_shard(partition, id)?;
            }
            count(&mut meta, added, dropped)?;
            let ids: Vec<u8> = live_ids.iter().flat_map(|id| id.to_be_bytes()).collect();
            partitions
                .insert(partition.as_bytes(), ids.as_slice())
                .map_err(db_err)?;
            meta.insert("next_shard", next).map_err(db_err)?;
        }
        tx.commit().map_err(db_err)
    }

    /// Whether the partition's live shards are exactly `live`, all held.
    fn is_current(&self, partition: &PartitionId, live: &[ShardRoot]) -> Result<bool> {
        let db = self.db();
        let tx = db.begin_read().map_err(db_err)?;
        let roots = tx.open_table(ROOTS).map_err(db_err)?;
        let mut ids = Vec::with_capacity(live.len());
        for root in live {
            match roots.get(&root.0).map_err(db_err)? {
                Some(id) => ids.push(id.value()),
                None => return Ok(false),
            }
        }
        let partitions = tx.open_table(PARTITIONS).map_err(db_err)?;
        let held = partitions
            .get(partition.as_bytes())
            .map_err(db_err)?
            .map(|v| shard_ids(v.value()));
        Ok(held.is_some_and(|held| held == ids))
    }

    /// The number of entries of a held shard (`None` if not held).
    fn entry_count(&self, root: &ShardRoot) -> Result<Option<u64>> {
        let db = self.db();
        let tx = db.begin_read().map_err(db_err)?;
        let Some(id) = tx
            .open_table(ROOTS)
            .map_err(db_err)?
            .get(&root.0)
            .map_err(db_err)?
            .map(|v| v.value())
        else {
            return Ok(None);
        };
        let shards = tx.open_table(SHARDS).map_err(db_err)?;
        let row = shards.get(id).map_err(db_err)?;
        Ok(row.map(|v| shard_len(v.value())))
    }

    /// Drops a partition and all its shards. Returns whether it was held.
    ///
    /// # Errors
    /// [`Error::Cache`] on a database failure.
    pub fn remove_partition(&self, partition: &PartitionId) -> Result<bool> {
        let held = guarded(|| self.remove_partition_unguarded(partition))?;
        self.compact_if_sparse()?;
        Ok(held)
    }

    fn remove_partition_unguarded(&self, partition: &PartitionId) -> Result<bool> {
        let db = self.db();
        let tx = db.begin_write().map_err(db_err)?;
        let held = {
            let mut t = Tables::open(&tx)?;
            let mut partitions = tx.open_table(PARTITIONS).map_err(db_err)?;
            let ids = partitions
                .remove(partition.as_bytes())
                .map_err(db_err)?
                .map(|v| shard_ids(v.value()));
            let mut dropped = 0;
            for &id in ids.iter().flatten() {
                dropped += t.drop_shard(partition, id)?;
            }
            count(&mut tx.open_table(META).map_err(db_err)?, 0, dropped)?;
            ids.is_some()
        };
        tx.commit().map_err(db_err)?;
        Ok(held)
    }

    /// Searches and proves the answer against the partition's live shards `live` (oldest
    /// first, as anchored; all must be held): the same answer as
    /// [`super::IndexHost::prove`] over those shards.
    ///
    /// # Errors
    /// [`Error::Cache`] if a live shard is not held or the database is inconsistent (drop
    /// the partition and update it again), or on a database failure.
    pub fn prove(&self, token: &SearchToken, live: &[ShardRoot]) -> Result<VerifiableAnswer> {
        guarded(|| self.prove_unguarded(token, live))
    }

    fn prove_unguarded(&self, token: &SearchToken, live: &[ShardRoot]) -> Result<VerifiableAnswer> {
        let db = self.db();
        let tx = db.begin_read().map_err(db_err)?;
        let roots = tx.open_table(ROOTS).map_err(db_err)?;
        let shards = tx.open_table(SHARDS).map_err(db_err)?;
        let labels = tx.open_table(LABELS).map_err(db_err)?;
        let reader = Reader {
            leaves: tx.open_table(LEAVES).map_err(db_err)?,
            blocks: tx.open_table(BLOCKS).map_err(db_err)?,
        };
        // (shard id, entry count) of each live shard, in anchored order.
        let mut held = Vec::with_capacity(live.len());
        for root in live {
            let id = roots
                .get(&root.0)
                .map_err(db_err)?
                .ok_or_else(|| corrupt("a live shard is not held"))?
                .value();
            let row = shards
                .get(id)
                .map_err(db_err)?
                .ok_or_else(|| corrupt("a held shard has no metadata"))?;
            let row = row.value();
            if row[..32] != root.0 || row[32..64] != *token.partition().as_bytes() {
                return Err(corrupt("shard metadata does not match"));
            }
            held.push((id, shard_len(row)));
        }
        let total: u64 = held.iter().map(|h| h.1).sum();
        let prf = LabelPrf::new(token.label_key());
        let mut results = Vec::new();
        let mut c = 0u64;
        let terminal = loop {
            let label = prf.label(c);
            let found = labels
                .get(&label_key(token.partition(), &label))
                .map_err(db_err)?
                .map(|v| read_slot(v.value()));
            let Some((id, index, value)) = found else {
                break label;
            };
            let Some(pos) = held.iter().position(|h| h.0 == id) else {
                return Err(corrupt("a label points to a shard that is not live"));
            };
            let n = held.get(pos).map_or(0, |h| h.1);
            let path = reader.member(id, index.into(), &label, &value, n)?;
            results.push(MemberProof {
                shard: u32::try_from(pos).unwrap_or(u32::MAX),
                index: index.into(),
                value,
                path,
            });
            c += 1;
            if c > total {
                return Err(corrupt("more results than entries"));
            }
        };
        let absent = held
            .iter()
            .map(|&(id, n)| reader.absence(id, n, &terminal))
            .collect::<Result<_>>()?;
        Ok(VerifiableAnswer {
            results,
            absent,
            sizes: held.iter().map(|h| h.1).collect(),
        })
    }
}

/// Adds `added` held entries and moves `dropped` from held to dropped in the counters.
fn count(meta: &mut redb::Table<'_, &'static str, u64>, added: u64, dropped: u64) -> Result<()> {
    let get = |meta: &redb::Table<'_, &'static str, u64>, key| -> Result<u64> {
        Ok(meta.get(key).map_err(db_err)?.map_or(0, |v| v.value()))
    };
    let live = get(meta, LIVE_ENTRIES)?;
    let gone = get(meta, DROPPED_ENTRIES)?;
    meta.insert(LIVE_ENTRIES, (live + added).saturating_sub(dropped))
        .map_err(db_err)?;
    meta.insert(DROPPED_ENTRIES, gone + dropped)
        .map_err(db_err)?;
    Ok(())
}

/// The tables a write transaction changes for one shard.
struct Tables<'t> {
    labels: redb::Table<'t, &'static [u8; 48], &'static [u8; 44]>,
    leaves: redb::Table<'t, &'static [u8; 24], &'static [u8; 36]>,
    blocks: redb::Table<'t, &'static [u8; 16], &'static [u8]>,
    shards: redb::Table<'t, u64, &'static [u8; 72]>,
    roots: redb::Table<'t, &'static [u8; 32], u64>,
}

impl<'t> Tables<'t> {
    fn open(tx: &'t redb::WriteTransaction) -> Result<Self> {
        Ok(Self {
            labels: tx.open_table(LABELS).map_err(db_err)?,
            leaves: tx.open_table(LEAVES).map_err(db_err)?,
            blocks: tx.open_table(BLOCKS).map_err(db_err)?,
            shards: tx.open_table(SHARDS).map_err(db_err)?,
            roots: tx.open_table(ROOTS).map_err(db_err)?,
        })
    }

    /// Stores shard `id`: its leaves, its blocks, and every label pointing
    /// at it (replacing labels of superseded shards; a label of another live shard is a
    /// conflict).
    fn insert(
        &mut self,
        id: u64,
        root: &ShardRoot,
        shard: &Shard,
        live: &HashSet<u64>,
    ) -> Result<()> {
        for (e, index) in shard.entries().iter().zip(0u32..) {
            self.leaves
                .insert(&leaf_key(id, &e.label), &leaf_value(index, &e.value))
                .map_err(db_err)?;
            let old = self
                .labels
                .insert(
                    &label_key(shard.partition(), &e.label),
                    &slot(id, index, &e.value),
                )
                .map_err(db_err)?
                .map(|v| read_slot(v.value()).0);
            if old.is_some_and(|old| old != id && live.contains(&old)) {
                return Err(Error::ShardConflict(
                    "label already present in the partition",
                ));
            }
        }
        let levels = shard.tree().levels();
        let n = shard.len() as u64;
        let mut path = Vec::new();
        for block in 0..n.div_ceil(BLOCK) {
            path.clear();
            let start = usize::try_from(block * BLOCK).unwrap_or(usize::MAX);
            let leaves = levels.first().map_or(&[][..], |l| &l[..]);
            let block_leaves = leaves.iter().skip(start).take(BLOCK as usize).copied();
            for level in MerkleTree::build(block_leaves.collect()).levels() {
                for hash in level {
                    path.extend_from_slice(hash);
                }
            }
            let mut k = STORED_LEVEL;
            while level_len(n, k) > 1 {
                let sibling = ((block * BLOCK) >> k) ^ 1;
                let node = levels
                    .get(k as usize)
                    .and_then(|level| level.get(usize::try_from(sibling).ok()?));
                path.extend_from_slice(node.map_or(&[][..], |node| &node[..]));
                k += 1;
            }
            self.blocks
                .insert(&block_key(id, block), path.as_slice())
                .map_err(db_err)?;
        }
        self.shards
            .insert(id, &shard_row(root, shard.partition(), n))
            .map_err(db_err)?;
        self.roots.insert(&root.0, id).map_err(db_err)?;
        Ok(())
    }

    /// Removes shard `id` and the labels that still point at it; returns its entry count.
    fn drop_shard(&mut self, partition: &PartitionId, id: u64) -> Result<u64> {
        let (lo, hi) = (
            leaf_key(id, &Label([0; 16])),
            leaf_key(id, &Label([0xff; 16])),
        );
        let mut labels = Vec::new();
        for row in self.leaves.range::<&[u8; 24]>(&lo..=&hi).map_err(db_err)? {
            let (k, _) = row.map_err(db_err)?;
            let mut label = [0u8; 16];
            label.copy_from_slice(&k.value()[8..]);
            labels.push(Label(label));
        }
        for label in &labels {
            let key = label_key(partition, label);
            let here = self
                .labels
                .get(&key)
                .map_err(db_err)?
                .is_some_and(|v| read_slot(v.value()).0 == id);
            if here {
                self.labels.remove(&key).map_err(db_err)?;
            }
        }
        self.leaves
            .retain_in::<&[u8; 24], _>(&lo..=&hi, |_, _| false)
            .map_err(db_err)?;
        let (plo, phi) = (block_key(id, 0), block_key(id, u64::MAX));
        self.blocks
            .retain_in::<&[u8; 16], _>(&plo..=&phi, |_, _| false)
            .map_err(db_err)?;
        let row = self.shards.remove(id).map_err(db_err)?.map(|v| *v.value());
        let Some(row) = row else {
            return Ok(0);
        };
        let mut root = [0u8; 32];
        root.copy_from_slice(&row[..32]);
        self.roots.remove(&root).map_err(db_err)?;
        Ok(shard_len(&row))
    }
}

/// Reads leaves and blocks within one read transaction.
struct Reader {
    leaves: redb::ReadOnlyTable<&'static [u8; 24], &'static [u8; 36]>,
    blocks: redb::ReadOnlyTable<&'static [u8; 16], &'static [u8]>,
}

impl Reader {
    /// The membership path of leaf `index` (`label`, `value`) of shard `id` of `n`
    /// leaves: levels 0–3 from the block's leaf hashes, the rest as stored.
    fn member(
        &self,
        id: u64,
        index: u64,
        label: &Label,
        value: &[u8; 32],
        n: u64,
    ) -> Result<Vec<[u8; 32]>> {
        self.block(id, index / BLOCK, n)?.path(index, label, value)
    }

    /// Block `block` of shard `id` of `n` leaves: its subtree and the path above it.
    fn block(&self, id: u64, block: u64, n: u64) -> Result<BlockTree> {
        let start = block * BLOCK;
        let len = BLOCK.min(n.saturating_sub(start));
        let row = self
            .blocks
            .get(&block_key(id, block))
            .map_err(db_err)?
            .ok_or_else(|| corrupt("a block is missing"))?;
        let row = row.value();
        if row.len() % 32 != 0 {
            return Err(corrupt("a block is malformed"));
        }
        let mut hashes = row.chunks_exact(32).map(hash_of);
        let mut levels = Vec::with_capacity(5);
        let mut width = len;
        loop {
            let level: Vec<[u8; 32]> = hashes.by_ref().take(width as usize).collect();
            if level.len() as u64 != width {
                return Err(corrupt("a block is malformed"));
            }
            levels.push(level);
            if width <= 1 {
                break;
            }
            width = width.div_ceil(2);
        }
        Ok(BlockTree {
            start,
            tree: MerkleTree::from_levels(levels),
            above: hashes.collect(),
        })
    }

    /// The sorted-neighbour proof that `label` is not in shard `id` of `n` leaves. The
    /// two neighbours are usually in one block, which is then read and hashed once.
    fn absence(&self, id: u64, n: u64, label: &Label) -> Result<AbsenceProof> {
        let (lo, hi) = (
            leaf_key(id, &Label([0; 16])),
            leaf_key(id, &Label([0xff; 16])),
        );
        let key = leaf_key(id, label);
        let leaf = |row: Option<core::result::Result<_, redb::StorageError>>| -> Result<Option<(Label, u64, [u8; 32])>> {
            let Some(row) = row else {
                return Ok(None);
            };
            let (k, v): (redb::AccessGuard<'_, &[u8; 24]>, redb::AccessGuard<'_, &[u8; 36]>) =
                row.map_err(db_err)?;
            Ok(Some(read_leaf(k.value(), v.value())))
        };
        let right = leaf(
            self.leaves
                .range::<&[u8; 24]>(&key..=&hi)
                .map_err(db_err)?
                .next(),
        )?;
        let left = leaf(
            self.leaves
                .range::<&[u8; 24]>(&lo..&key)
                .map_err(db_err)?
                .next_back(),
        )?;
        let mut held: Option<BlockTree> = None;
        let mut neighbour = |found: Option<(Label, u64, [u8; 32])>| -> Result<Option<Neighbour>> {
            let Some((label, index, value)) = found else {
                return Ok(None);
            };
            let block = match held.take() {
                Some(b) if b.start == index - index % BLOCK => b,
                _ => self.block(id, index / BLOCK, n)?,
            };
            let path = block.path(index, &label, &value)?;
            held = Some(block);
            Ok(Some(Neighbour {
                index,
                label,
                value,
                path,
            }))
        };
        Ok(AbsenceProof {
            left: neighbour(left)?,
            right: neighbour(right)?,
        })
    }
}

/// One block of a stored shard: its leaves' tree (levels 0–3) and the stored path above.
struct BlockTree {
    start: u64,
    tree: MerkleTree,
    above: Vec<[u8; 32]>,
}

impl BlockTree {
    /// The membership path of leaf `index` (`label`, `value`) of this block.
    fn path(&self, index: u64, label: &Label, value: &[u8; 32]) -> Result<Vec<[u8; 32]>> {
        let at = usize::try_from(index - self.start).unwrap_or(usize::MAX);
        if self.tree.levels().first().and_then(|l| l.get(at)) != Some(&leaf_hash(label, value)) {
            return Err(corrupt("a leaf does not match its block"));
        }
        let mut path = self.tree.path(at);
        path.extend_from_slice(&self.above);
        Ok(path)
    }
}

fn hash_of(chunk: &[u8]) -> [u8; 32] {
    let mut h = [0u8; 32];
    h.copy_from_slice(chunk);
    h
}
