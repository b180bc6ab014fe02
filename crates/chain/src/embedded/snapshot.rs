//! The snapshot database: a persisted, derived copy of what replaying the journal rebuilds.
//!
//! It is a [`redb`] database (a file beside the journal, or redb's in-memory backend for
//! in-memory chains) with these tables (all keys and values are byte strings, integers
//! big-endian):
//!
//! | table       | key                                              | value                                       |
//! |-------------|--------------------------------------------------|---------------------------------------------|
//! | `meta`      | name                                             | see [`Meta`]                                |
//! | `accounts`  | address (20)                                     | balance (32) \| nonce (8) \| code hash (32) |
//! | `code`      | code hash (32)                                   | original bytecode                           |
//! | `storage`   | address (20) \| slot (32)                        | value (32), never zero (zero = absent)      |
//! | `logs`      | block (8) \| log index (8)                       | timestamp (8) \| tx hash (32) \| topic count (1) \| topics \| data |
//! | `log_index` | topic 0 (32) \| position (1) \| topic (32) \| block (8) \| log index (8) | empty          |
//! | `log_count` | topic 0 (32) \| position (1) \| topic (32)       | number of `log_index` entries (8)           |
//!
//! Position 0 of the log index is the event signature alone (topic value zero); position
//! `p` in 1..=3 is topic `p`. A query picks, per requested event, the given topic (or the
//! signature alone) with the fewest entries according to `log_count` (one point lookup each)
//! and walks only that key range, which is in chain order.
//!
//! Every block is applied in one write transaction (see [`DURABLE_EVERY`] for durability): its
//! state changes, its logs and their
//! index entries, and the meta (head, journal position, state digest). The *state digest* is
//! the sum modulo 2^256 of `keccak256(kind || key length || key || value)` over every entry of
//! every table but `meta`; each write subtracts the old entry's hash and adds the new one's,
//! so it costs O(changes). [`Snapshot::verify`] recomputes it over the whole database.

use std::cell::RefCell;
use std::collections::HashMap;
use std::path::Path;

use alloy::primitives::{Address, B256, Bytes, U256, keccak256};
use redb::{
    Database, Durability, ReadOnlyTable, ReadTransaction, ReadableTable, ReadableTableMetadata,
    Table, TableDefinition, WriteTransaction,
};
use revm::bytecode::Bytecode;
use revm::database_interface::{DBErrorMarker, DatabaseRef};
use revm::primitives::{KECCAK_EMPTY, StorageKey, StorageValue};
use revm::state::{AccountInfo, EvmState};

use super::block::GENESIS_PARENT;
use crate::backend::{ChainLog, LogFilter};
use crate::error::{LedgerError, LedgerResult};

/// Format version of the snapshot database; a snapshot of another version is rebuilt.
pub(crate) const FORMAT_VERSION: u64 = 1;

type Bin = &'static [u8];

const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
const ACCOUNTS: TableDefinition<Bin, Bin> = TableDefinition::new("accounts");
const CODE: TableDefinition<Bin, Bin> = TableDefinition::new("code");
const STORAGE: TableDefinition<Bin, Bin> = TableDefinition::new("storage");
const LOGS: TableDefinition<Bin, Bin> = TableDefinition::new("logs");
const LOG_INDEX: TableDefinition<Bin, Bin> = TableDefinition::new("log_index");
const LOG_COUNT: TableDefinition<Bin, Bin> = TableDefinition::new("log_count");

/// Digest kinds (the first byte hashed for an entry of each table).
const KIND_ACCOUNT: u8 = 1;
const KIND_CODE: u8 = 2;
const KIND_STORAGE: u8 = 3;
const KIND_LOG: u8 = 4;
const KIND_LOG_INDEX: u8 = 5;
const KIND_LOG_COUNT: u8 = 6;

/// Every digested table with its kind.
const DIGESTED: [(TableDefinition<Bin, Bin>, u8); 6] = [
    (ACCOUNTS, KIND_ACCOUNT),
    (CODE, KIND_CODE),
    (STORAGE, KIND_STORAGE),
    (LOGS, KIND_LOG),
    (LOG_INDEX, KIND_LOG_INDEX),
    (LOG_COUNT, KIND_LOG_COUNT),
];

/// A durable (`fsync`ed) snapshot commit at least every this many blocks. The commits in
/// between are redb's non-durable ones (no `fsync`; a crash loses them): the journal is the
/// commit point, and a snapshot that lost them is repaired from the journal tail on open (at
/// most this many blocks to replay). Non-durable commits also keep redb from reusing freed
/// pages until the next durable one, which bounds the file's growth.
const DURABLE_EVERY: u64 = 128;

/// What the snapshot says about the chain it was derived from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Meta {
    /// Snapshot format version ([`FORMAT_VERSION`]).
    pub(crate) version: u64,
    /// Chain id of the chain.
    pub(crate) chain_id: u64,
    /// Last applied block (number 0 = none).
    pub(crate) head: HeadMeta,
    /// Byte range of the last applied block's record in the journal (`start == end` when
    /// there is none, or for an in-memory chain).
    pub(crate) journal_start: u64,
    /// Journal offset right after the last applied block's record.
    pub(crate) journal_end: u64,
    /// The registry (created by block 1), once deployed.
    pub(crate) registry: Option<Address>,
    /// Running state digest.
    pub(crate) digest: U256,
}

/// The last applied block as the snapshot records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct HeadMeta {
    pub(crate) number: u64,
    pub(crate) timestamp: u64,
    pub(crate) hash: B256,
    /// Gas used by its transaction (part of the block hash preimage).
    pub(crate) gas_used: u64,
}

/// One block's worth of changes for [`Snapshot::apply`].
pub(crate) struct BlockUpdate<'a> {
    pub(crate) head: HeadMeta,
    pub(crate) journal_start: u64,
    pub(crate) journal_end: u64,
    pub(crate) registry: Option<Address>,
    pub(crate) state: &'a EvmState,
    pub(crate) logs: &'a [ChainLog],
}

/// Error type of the EVM's view of the snapshot.
#[derive(Debug, thiserror::Error)]
#[error("chain snapshot read failed: {0}")]
pub(crate) struct SnapshotReadError(String);

impl DBErrorMarker for SnapshotReadError {}

fn db_error(error: impl Into<redb::Error>) -> LedgerError {
    match error.into() {
        redb::Error::Io(io) => LedgerError::Io(io),
        other => LedgerError::Corrupt(format!("chain snapshot database: {other}")),
    }
}

fn corrupt(what: impl std::fmt::Display) -> LedgerError {
    LedgerError::Corrupt(format!("chain snapshot: {what}"))
}

fn entry_hash(kind: u8, key: &[u8], value: &[u8]) -> U256 {
    let mut buf = Vec::with_capacity(1 + 4 + key.len() + value.len());
    buf.push(kind);
    buf.extend_from_slice(&(key.len() as u32).to_be_bytes());
    buf.extend_from_slice(key);
    buf.extend_from_slice(value);
    U256::from_be_bytes(keccak256(&buf).0)
}

fn u64_from(bytes: &[u8]) -> Option<u64> {
    bytes.try_into().ok().map(u64::from_be_bytes)
}

/// A write transaction's view of one digested table, keeping the running digest current.
struct DigestedTable<'txn> {
    table: Table<'txn, Bin, Bin>,
    kind: u8,
}

impl DigestedTable<'_> {
    fn put(&mut self, digest: &mut U256, key: &[u8], value: &[u8]) -> LedgerResult<()> {
        let old = self
            .table
            .insert(key, value)
            .map_err(db_error)?
            .map(|old| old.value().to_vec());
        if let Some(old) = old {
            *digest = digest.wrapping_sub(entry_hash(self.kind, key, &old));
        }
        *digest = digest.wrapping_add(entry_hash(self.kind, key, value));
        Ok(())
    }

    fn delete(&mut self, digest: &mut U256, key: &[u8]) -> LedgerResult<()> {
        let old = self
            .table
            .remove(key)
            .map_err(db_error)?
            .map(|old| old.value().to_vec());
        if let Some(old) = old {
            *digest = digest.wrapping_sub(entry_hash(self.kind, key, &old));
        }
        Ok(())
    }

    fn get(&self, key: &[u8]) -> LedgerResult<Option<Vec<u8>>> {
        Ok(self
            .table
            .get(key)
            .map_err(db_error)?
            .map(|v| v.value().to_vec()))
    }

    /// Deletes every key that starts with `prefix`.
    fn delete_prefix(&mut self, digest: &mut U256, prefix: &[u8]) -> LedgerResult<()> {
        let keys: Vec<Vec<u8>> = {
            let (start, end) = prefix_bounds(prefix);
            let mut keys = Vec::new();
            for entry in self
                .table
                .range(start.as_slice()..=end.as_slice())
                .map_err(db_error)?
            {
                let (key, _) = entry.map_err(db_error)?;
                keys.push(key.value().to_vec());
            }
            keys
        };
        for key in keys {
            self.delete(digest, &key)?;
        }
        Ok(())
    }
}

/// Bounds of the keys that start with `prefix`: the prefix itself (it sorts before every
/// longer key that starts with it) and the prefix padded with `0xff` to 128 bytes (longer than
/// any key of this database).
fn prefix_bounds(prefix: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let start = prefix.to_vec();
    let mut end = prefix.to_vec();
    end.resize(128, 0xff);
    (start, end)
}

fn account_value(info: &AccountInfo) -> [u8; 72] {
    let mut out = [0u8; 72];
    out[..32].copy_from_slice(&info.balance.to_be_bytes::<32>());
    out[32..40].copy_from_slice(&info.nonce.to_be_bytes());
    let code_hash = if info.code_hash.is_zero() {
        KECCAK_EMPTY
    } else {
        info.code_hash
    };
    out[40..].copy_from_slice(code_hash.as_slice());
    out
}

fn storage_key(address: &Address, slot: &U256) -> [u8; 52] {
    let mut key = [0u8; 52];
    key[..20].copy_from_slice(address.as_slice());
    key[20..].copy_from_slice(&slot.to_be_bytes::<32>());
    key
}

fn log_key(block: u64, index: u64) -> [u8; 16] {
    let mut key = [0u8; 16];
    key[..8].copy_from_slice(&block.to_be_bytes());
    key[8..].copy_from_slice(&index.to_be_bytes());
    key
}

fn count_key(signature: &B256, position: u8, topic: &B256) -> [u8; 65] {
    let mut key = [0u8; 65];
    key[..32].copy_from_slice(signature.as_slice());
    key[32] = position;
    key[33..].copy_from_slice(topic.as_slice());
    key
}

fn index_key(signature: &B256, position: u8, topic: &B256, block: u64, index: u64) -> [u8; 81] {
    let mut key = [0u8; 81];
    key[..65].copy_from_slice(&count_key(signature, position, topic));
    key[65..].copy_from_slice(&log_key(block, index));
    key
}

fn decode_log(key: &[u8], value: &[u8]) -> LedgerResult<ChainLog> {
    key.get(..8)
        .and_then(u64_from)
        .zip(key.get(8..16).and_then(u64_from))
        .and_then(|(block, index)| ChainLog::from_stored(block, index, value))
        .ok_or_else(|| corrupt("undecodable log entry"))
}

fn encode_head(head: &HeadMeta) -> Vec<u8> {
    let mut out = Vec::with_capacity(56);
    out.extend_from_slice(&head.number.to_be_bytes());
    out.extend_from_slice(&head.timestamp.to_be_bytes());
    out.extend_from_slice(head.hash.as_slice());
    out.extend_from_slice(&head.gas_used.to_be_bytes());
    out
}

fn decode_head(bytes: &[u8]) -> Option<HeadMeta> {
    if bytes.len() != 56 {
        return None;
    }
    Some(HeadMeta {
        number: u64_from(bytes.get(..8)?)?,
        timestamp: u64_from(bytes.get(8..16)?)?,
        hash: B256::from_slice(bytes.get(16..48)?),
        gas_used: u64_from(bytes.get(48..56)?)?,
    })
}

/// The snapshot database of one chain.
pub(crate) struct Snapshot {
    db: Database,
    meta: Meta,
    /// Decoded bytecode by hash (code is immutable, and there are few contracts).
    codes: RefCell<HashMap<B256, Bytecode>>,
    /// Blocks applied since the last `fsync`ed commit.
    since_durable: u64,
    /// Whether commits are file-backed (durability matters).
    persistent: bool,
}

impl std::fmt::Debug for Snapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Snapshot")
            .field("meta", &self.meta)
            .finish_non_exhaustive()
    }
}

/// Why an existing snapshot file could not be used.
#[derive(Debug)]
pub(crate) enum OpenFailure {
    /// Another handle in this process (or another process) holds the file.
    Locked,
    /// Anything else: unreadable, corrupt, wrong version, wrong chain.
    Unusable(String),
}

impl Snapshot {
    /// A new, empty in-memory snapshot.
    pub(crate) fn in_memory(chain_id: u64) -> LedgerResult<Self> {
        let db = Database::builder()
            .create_with_backend(redb::backends::InMemoryBackend::new())
            .map_err(db_error)?;
        Self::initialize(db, chain_id, false)
    }

    /// Creates a new, empty snapshot file at `path` (replacing whatever is there).
    pub(crate) fn create_file(path: &Path, chain_id: u64) -> LedgerResult<Self> {
        match std::fs::remove_file(path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(LedgerError::Io(e)),
        }
        let db = Database::builder().create(path).map_err(db_error)?;
        Self::initialize(db, chain_id, true)
    }

    /// Opens the existing snapshot file at `path` and reads its meta. `Ok(None)` if there is
    /// no file.
    pub(crate) fn open_file(path: &Path, chain_id: u64) -> Result<Option<Self>, OpenFailure> {
        if !path.exists() {
            return Ok(None);
        }
        let db = match Database::builder().open(path) {
            Ok(db) => db,
            Err(redb::DatabaseError::DatabaseAlreadyOpen) => return Err(OpenFailure::Locked),
            Err(e) => return Err(OpenFailure::Unusable(format!("cannot open it: {e}"))),
        };
        let meta = read_meta(&db).map_err(|e| OpenFailure::Unusable(e.to_string()))?;
        if meta.version != FORMAT_VERSION {
            return Err(OpenFailure::Unusable(format!(
                "format version {} (this build reads version {FORMAT_VERSION})",
                meta.version
            )));
        }
        if meta.chain_id != chain_id {
            return Err(OpenFailure::Unusable(format!(
                "it belongs to chain {} (expected {chain_id})",
                meta.chain_id
            )));
        }
        Ok(Some(Self {
            db,
            meta,
            codes: RefCell::new(HashMap::new()),
            since_durable: 0,
            persistent: true,
        }))
    }

    fn initialize(db: Database, chain_id: u64, persistent: bool) -> LedgerResult<Self> {
        let meta = Meta {
            version: FORMAT_VERSION,
            chain_id,
            head: HeadMeta {
                hash: GENESIS_PARENT,
                ..HeadMeta::default()
            },
            journal_start: 0,
            journal_end: 0,
            registry: None,
            digest: U256::ZERO,
        };
        let txn = db.begin_write().map_err(db_error)?;
        {
            for (def, _) in DIGESTED {
                txn.open_table(def).map_err(db_error)?;
            }
            let mut table = txn.open_table(META).map_err(db_error)?;
            write_meta(&mut table, &meta)?;
        }
        txn.commit().map_err(db_error)?;
        Ok(Self {
            db,
            meta,
            codes: RefCell::new(HashMap::new()),
            since_durable: 0,
            persistent,
        })
    }

    /// The meta of the last committed block.
    pub(crate) fn meta(&self) -> &Meta {
        &self.meta
    }

    /// A consistent read view of the state at the last committed block, for the EVM.
    pub(crate) fn view(&self) -> LedgerResult<StateView<'_>> {
        let txn = self.db.begin_read().map_err(db_error)?;
        Ok(StateView {
            accounts: txn.open_table(ACCOUNTS).map_err(db_error)?,
            code: txn.open_table(CODE).map_err(db_error)?,
            storage: txn.open_table(STORAGE).map_err(db_error)?,
            _txn: txn,
            codes: &self.codes,
        })
    }

    /// Applies one block (state changes, logs, index entries, meta) in one write transaction.
    pub(crate) fn apply(&mut self, update: &BlockUpdate<'_>) -> LedgerResult<()> {
        let mut digest = self.meta.digest;
        let mut txn = self.db.begin_write().map_err(db_error)?;
        let durable = !self.persistent || self.since_durable + 1 >= DURABLE_EVERY;
        txn.set_durability(if durable && self.persistent {
            Durability::Immediate
        } else {
            Durability::None
        });
        write_state(&txn, &mut digest, update.state)?;
        write_logs(&txn, &mut digest, update.logs)?;
        let meta = Meta {
            version: FORMAT_VERSION,
            chain_id: self.meta.chain_id,
            head: update.head,
            journal_start: update.journal_start,
            journal_end: update.journal_end,
            registry: update.registry,
            digest,
        };
        {
            let mut table = txn.open_table(META).map_err(db_error)?;
            write_meta(&mut table, &meta)?;
        }
        txn.commit().map_err(db_error)?;
        self.meta = meta;
        self.since_durable = if durable { 0 } else { self.since_durable + 1 };
        Ok(())
    }

    /// Copies every table of this snapshot into a new snapshot file at `path` (replacing
    /// whatever is there) in one durable write transaction, and returns the new snapshot.
    /// Used after a rebuild by full replay, which runs on the in-memory backend (one bulk write
    /// instead of a file commit per block).
    pub(crate) fn copy_to_file(&self, path: &Path) -> LedgerResult<Self> {
        let mut target = Self::create_file(path, self.meta.chain_id)?;
        let source = self.db.begin_read().map_err(db_error)?;
        let mut txn = target.db.begin_write().map_err(db_error)?;
        txn.set_durability(Durability::Immediate);
        for (def, _) in DIGESTED {
            let from = source.open_table(def).map_err(db_error)?;
            let mut to = txn.open_table(def).map_err(db_error)?;
            for entry in from.iter().map_err(db_error)? {
                let (key, value) = entry.map_err(db_error)?;
                to.insert(key.value(), value.value()).map_err(db_error)?;
            }
        }
        {
            let mut table = txn.open_table(META).map_err(db_error)?;
            write_meta(&mut table, &self.meta)?;
        }
        txn.commit().map_err(db_error)?;
        target.meta = self.meta;
        Ok(target)
    }

    /// Makes every commit so far durable (`fsync`).
    pub(crate) fn flush(&mut self) -> LedgerResult<()> {
        if !self.persistent || self.since_durable == 0 {
            return Ok(());
        }
        let mut txn = self.db.begin_write().map_err(db_error)?;
        txn.set_durability(Durability::Immediate);
        txn.commit().map_err(db_error)?;
        self.since_durable = 0;
        Ok(())
    }

    /// The stored logs of block `number`, in log order.
    pub(crate) fn block_logs(&self, number: u64) -> LedgerResult<Vec<ChainLog>> {
        let txn = self.db.begin_read().map_err(db_error)?;
        let table = txn.open_table(LOGS).map_err(db_error)?;
        let start = log_key(number, 0);
        let end = log_key(number, u64::MAX);
        let mut out = Vec::new();
        for entry in table
            .range(start.as_slice()..=end.as_slice())
            .map_err(db_error)?
        {
            let (key, value) = entry.map_err(db_error)?;
            out.push(decode_log(key.value(), value.value())?);
        }
        Ok(out)
    }

    /// Registry logs that pass `filter`, in chain order, from the log index.
    pub(crate) fn logs(&self, filter: &LogFilter) -> LedgerResult<Vec<ChainLog>> {
        let txn = self.db.begin_read().map_err(db_error)?;
        let logs = txn.open_table(LOGS).map_err(db_error)?;
        let index = txn.open_table(LOG_INDEX).map_err(db_error)?;
        let counts = txn.open_table(LOG_COUNT).map_err(db_error)?;
        let mut events: Vec<B256> = filter.events.clone();
        events.sort_unstable();
        events.dedup();
        let mut out = Vec::new();
        for signature in &events {
            // The most selective key: the signature alone, or one of the given topics.
            let mut best: Option<([u8; 65], u64)> = None;
            let candidates = std::iter::once((0u8, B256::ZERO)).chain(
                filter
                    .topics
                    .iter()
                    .enumerate()
                    .filter_map(|(i, t)| t.map(|t| (i as u8 + 1, t))),
            );
            for (position, topic) in candidates {
                let key = count_key(signature, position, &topic);
                let count = match counts.get(key.as_slice()).map_err(db_error)? {
                    Some(v) => u64_from(v.value()).ok_or_else(|| corrupt("bad log count"))?,
                    None => 0,
                };
                if best.is_none_or(|(_, c)| count < c) {
                    best = Some((key, count));
                }
            }
            let Some((prefix, count)) = best else {
                continue;
            };
            if count == 0 {
                continue;
            }
            let mut start = [0u8; 81];
            start[..65].copy_from_slice(&prefix);
            let mut end = [0xffu8; 81];
            end[..65].copy_from_slice(&prefix);
            for entry in index
                .range(start.as_slice()..=end.as_slice())
                .map_err(db_error)?
            {
                let (key, _) = entry.map_err(db_error)?;
                let log_ref = key
                    .value()
                    .get(65..81)
                    .ok_or_else(|| corrupt("bad log index key"))?
                    .to_vec();
                let value = logs
                    .get(log_ref.as_slice())
                    .map_err(db_error)?
                    .ok_or_else(|| corrupt("log index points to a missing log"))?;
                let log = decode_log(&log_ref, value.value())?;
                if filter.matches(&log.topics) {
                    out.push(log);
                }
            }
        }
        if events.len() > 1 {
            out.sort_by_key(|log| (log.block_number, log.log_index));
        }
        Ok(out)
    }

    /// Recomputes the state digest over every entry and compares it with the running one in
    /// the meta; also checks that every log index entry and count agrees with the logs.
    pub(crate) fn verify(&self) -> LedgerResult<()> {
        let txn = self.db.begin_read().map_err(db_error)?;
        let meta = read_meta_txn(&txn)?;
        let mut digest = U256::ZERO;
        for (def, kind) in DIGESTED {
            let table = txn.open_table(def).map_err(db_error)?;
            for entry in table.iter().map_err(db_error)? {
                let (key, value) = entry.map_err(db_error)?;
                digest = digest.wrapping_add(entry_hash(kind, key.value(), value.value()));
            }
        }
        if digest != meta.digest {
            return Err(corrupt(format!(
                "state digest mismatch: the entries hash to {digest:#x}, the meta records {:#x} \
                 (a value was changed outside the chain)",
                meta.digest
            )));
        }
        // The derived index must describe the logs exactly.
        let logs = txn.open_table(LOGS).map_err(db_error)?;
        let index = txn.open_table(LOG_INDEX).map_err(db_error)?;
        let counts = txn.open_table(LOG_COUNT).map_err(db_error)?;
        let mut expected_counts: HashMap<[u8; 65], u64> = HashMap::new();
        let mut expected_entries = 0u64;
        for entry in logs.iter().map_err(db_error)? {
            let (key, value) = entry.map_err(db_error)?;
            let log = decode_log(key.value(), value.value())?;
            for (position, signature, topic) in index_positions(&log) {
                let ikey = index_key(
                    &signature,
                    position,
                    &topic,
                    log.block_number,
                    log.log_index,
                );
                if index.get(ikey.as_slice()).map_err(db_error)?.is_none() {
                    return Err(corrupt(format!(
                        "log {}:{} is missing from the log index",
                        log.block_number, log.log_index
                    )));
                }
                *expected_counts
                    .entry(count_key(&signature, position, &topic))
                    .or_default() += 1;
                expected_entries += 1;
            }
        }
        if index.len().map_err(db_error)? != expected_entries {
            return Err(corrupt(
                "the log index has entries for logs that do not exist",
            ));
        }
        if counts.len().map_err(db_error)? != expected_counts.len() as u64 {
            return Err(corrupt("the log counts do not match the logs"));
        }
        for (key, want) in expected_counts {
            let got = counts
                .get(key.as_slice())
                .map_err(db_error)?
                .and_then(|v| u64_from(v.value()));
            if got != Some(want) {
                return Err(corrupt("the log counts do not match the logs"));
            }
        }
        Ok(())
    }

    /// Test support: overwrites one storage value without updating the digest (what a tamperer
    /// with write access to the file could do).
    #[cfg(test)]
    pub(crate) fn tamper_storage_for_test(&mut self) -> LedgerResult<bool> {
        let txn = self.db.begin_write().map_err(db_error)?;
        let changed = {
            let mut table = txn.open_table(STORAGE).map_err(db_error)?;
            let first = table
                .iter()
                .map_err(db_error)?
                .next()
                .transpose()
                .map_err(db_error)?
                .map(|(k, v)| (k.value().to_vec(), v.value().to_vec()));
            match first {
                Some((key, mut value)) => {
                    if let Some(last) = value.last_mut() {
                        *last ^= 1;
                    }
                    table
                        .insert(key.as_slice(), value.as_slice())
                        .map_err(db_error)?;
                    true
                }
                None => false,
            }
        };
        txn.commit().map_err(db_error)?;
        Ok(changed)
    }
}

impl Drop for Snapshot {
    fn drop(&mut self) {
        if let Err(error) = self.flush() {
            tracing::warn!(%error, "chain snapshot: final durable commit failed (the journal tail is replayed on the next open)");
        }
    }
}

/// The index entries of one log: (position, signature, topic value).
fn index_positions(log: &ChainLog) -> Vec<(u8, B256, B256)> {
    let Some(signature) = log.topics.first().copied() else {
        return Vec::new();
    };
    let mut out = vec![(0u8, signature, B256::ZERO)];
    for (i, topic) in log.topics.iter().enumerate().skip(1).take(3) {
        out.push((i as u8, signature, *topic));
    }
    out
}

fn write_state(txn: &WriteTransaction, digest: &mut U256, state: &EvmState) -> LedgerResult<()> {
    let mut accounts = DigestedTable {
        table: txn.open_table(ACCOUNTS).map_err(db_error)?,
        kind: KIND_ACCOUNT,
    };
    let mut code = DigestedTable {
        table: txn.open_table(CODE).map_err(db_error)?,
        kind: KIND_CODE,
    };
    let mut storage = DigestedTable {
        table: txn.open_table(STORAGE).map_err(db_error)?,
        kind: KIND_STORAGE,
    };
    // Deterministic order is not needed (the digest is order independent), but keeps the
    // database's page layout reproducible.
    let mut addresses: Vec<&Address> = state.keys().collect();
    addresses.sort_unstable();
    for address in addresses {
        let Some(account) = state.get(address) else {
            continue;
        };
        if !account.is_touched() {
            continue;
        }
        // Same semantics as revm's `CacheDB::commit`.
        if account.is_selfdestructed() {
            accounts.delete(digest, address.as_slice())?;
            storage.delete_prefix(digest, address.as_slice())?;
            continue;
        }
        let created = account.is_created();
        if created {
            storage.delete_prefix(digest, address.as_slice())?;
        }
        let mut info = account.info.clone();
        if let Some(bytecode) = &info.code
            && !bytecode.is_empty()
        {
            if info.code_hash == KECCAK_EMPTY {
                info.code_hash = bytecode.hash_slow();
            }
            if code.get(info.code_hash.as_slice())?.is_none() {
                code.put(
                    digest,
                    info.code_hash.as_slice(),
                    &bytecode.original_bytes(),
                )?;
            }
        }
        accounts.put(digest, address.as_slice(), &account_value(&info))?;
        for (slot, value) in &account.storage {
            if !created && !value.is_changed() {
                continue;
            }
            let key = storage_key(address, slot);
            let present = value.present_value();
            if present.is_zero() {
                storage.delete(digest, &key)?;
            } else {
                storage.put(digest, &key, &present.to_be_bytes::<32>())?;
            }
        }
    }
    Ok(())
}

fn write_logs(txn: &WriteTransaction, digest: &mut U256, logs: &[ChainLog]) -> LedgerResult<()> {
    let mut log_table = DigestedTable {
        table: txn.open_table(LOGS).map_err(db_error)?,
        kind: KIND_LOG,
    };
    let mut index = DigestedTable {
        table: txn.open_table(LOG_INDEX).map_err(db_error)?,
        kind: KIND_LOG_INDEX,
    };
    let mut counts = DigestedTable {
        table: txn.open_table(LOG_COUNT).map_err(db_error)?,
        kind: KIND_LOG_COUNT,
    };
    for log in logs {
        log_table.put(
            digest,
            &log_key(log.block_number, log.log_index),
            &log.stored_value(),
        )?;
        for (position, signature, topic) in index_positions(log) {
            index.put(
                digest,
                &index_key(
                    &signature,
                    position,
                    &topic,
                    log.block_number,
                    log.log_index,
                ),
                &[],
            )?;
            let key = count_key(&signature, position, &topic);
            let count = match counts.get(&key)? {
                Some(v) => u64_from(&v).ok_or_else(|| corrupt("bad log count"))?,
                None => 0,
            };
            counts.put(digest, &key, &(count + 1).to_be_bytes())?;
        }
    }
    Ok(())
}

fn write_meta(table: &mut Table<'_, &str, &[u8]>, meta: &Meta) -> LedgerResult<()> {
    let mut put = |name: &str, value: &[u8]| -> LedgerResult<()> {
        table.insert(name, value).map_err(db_error)?;
        Ok(())
    };
    put("version", &meta.version.to_be_bytes())?;
    put("chain_id", &meta.chain_id.to_be_bytes())?;
    put("head", &encode_head(&meta.head))?;
    let mut journal = [0u8; 16];
    journal[..8].copy_from_slice(&meta.journal_start.to_be_bytes());
    journal[8..].copy_from_slice(&meta.journal_end.to_be_bytes());
    put("journal", &journal)?;
    put(
        "registry",
        meta.registry.as_ref().map(|a| a.as_slice()).unwrap_or(&[]),
    )?;
    put("digest", &meta.digest.to_be_bytes::<32>())?;
    Ok(())
}

fn read_meta(db: &Database) -> LedgerResult<Meta> {
    let txn = db.begin_read().map_err(db_error)?;
    read_meta_txn(&txn)
}

fn read_meta_txn(txn: &ReadTransaction) -> LedgerResult<Meta> {
    let table = txn.open_table(META).map_err(db_error)?;
    let get = |name: &str| -> LedgerResult<Vec<u8>> {
        table
            .get(name)
            .map_err(db_error)?
            .map(|v| v.value().to_vec())
            .ok_or_else(|| corrupt(format!("meta `{name}` is missing")))
    };
    let bad = |name: &str| corrupt(format!("meta `{name}` is malformed"));
    let version = u64_from(&get("version")?).ok_or_else(|| bad("version"))?;
    if version != FORMAT_VERSION {
        // Do not try to read the rest of a snapshot of another format.
        return Ok(Meta {
            version,
            chain_id: 0,
            head: HeadMeta::default(),
            journal_start: 0,
            journal_end: 0,
            registry: None,
            digest: U256::ZERO,
        });
    }
    let chain_id = u64_from(&get("chain_id")?).ok_or_else(|| bad("chain_id"))?;
    let head = decode_head(&get("head")?).ok_or_else(|| bad("head"))?;
    let journal = get("journal")?;
    let journal_start = journal
        .get(..8)
        .and_then(u64_from)
        .ok_or_else(|| bad("journal"))?;
    let journal_end = journal
        .get(8..16)
        .and_then(u64_from)
        .ok_or_else(|| bad("journal"))?;
    let registry = match get("registry")?.as_slice() {
        [] => None,
        bytes if bytes.len() == 20 => Some(Address::from_slice(bytes)),
        _ => return Err(bad("registry")),
    };
    let digest_bytes = get("digest")?;
    if digest_bytes.len() != 32 {
        return Err(bad("digest"));
    }
    Ok(Meta {
        version,
        chain_id,
        head,
        journal_start,
        journal_end,
        registry,
        digest: U256::from_be_slice(&digest_bytes),
    })
}

/// The EVM's read view of the snapshot (one redb read transaction), loading accounts, code and
/// storage lazily.
pub(crate) struct StateView<'a> {
    accounts: ReadOnlyTable<Bin, Bin>,
    code: ReadOnlyTable<Bin, Bin>,
    storage: ReadOnlyTable<Bin, Bin>,
    _txn: ReadTransaction,
    codes: &'a RefCell<HashMap<B256, Bytecode>>,
}

fn read_error(error: impl Into<redb::Error>) -> SnapshotReadError {
    SnapshotReadError(error.into().to_string())
}

impl DatabaseRef for StateView<'_> {
    type Error = SnapshotReadError;

    fn basic_ref(&self, address: Address) -> Result<Option<AccountInfo>, Self::Error> {
        let Some(value) = self.accounts.get(address.as_slice()).map_err(read_error)? else {
            return Ok(None);
        };
        let value = value.value();
        if value.len() != 72 {
            return Err(SnapshotReadError(format!("malformed account {address}")));
        }
        let balance = U256::from_be_slice(&value[..32]);
        let nonce = u64_from(&value[32..40])
            .ok_or_else(|| SnapshotReadError(format!("malformed account {address}")))?;
        let code_hash = B256::from_slice(&value[40..72]);
        let code = self.code_by_hash_ref(code_hash)?;
        Ok(Some(AccountInfo::new(balance, nonce, code_hash, code)))
    }

    fn code_by_hash_ref(&self, code_hash: B256) -> Result<Bytecode, Self::Error> {
        if code_hash == KECCAK_EMPTY || code_hash.is_zero() {
            return Ok(Bytecode::default());
        }
        if let Some(code) = self.codes.borrow().get(&code_hash) {
            return Ok(code.clone());
        }
        let raw = self
            .code
            .get(code_hash.as_slice())
            .map_err(read_error)?
            .ok_or_else(|| SnapshotReadError(format!("missing code {code_hash}")))?;
        let code = Bytecode::new_raw(Bytes::copy_from_slice(raw.value()));
        self.codes.borrow_mut().insert(code_hash, code.clone());
        Ok(code)
    }

    fn storage_ref(
        &self,
        address: Address,
        index: StorageKey,
    ) -> Result<StorageValue, Self::Error> {
        let key = storage_key(&address, &index);
        Ok(
            match self.storage.get(key.as_slice()).map_err(read_error)? {
                Some(value) => U256::from_be_slice(value.value()),
                None => U256::ZERO,
            },
        )
    }

    fn block_hash_ref(&self, number: u64) -> Result<B256, Self::Error> {
        // Same as revm's `EmptyDB`, which the chain used before it had a snapshot.
        Ok(keccak256(number.to_string().as_bytes()))
    }
}
