//! The optional file behind the log cache
//! ([`with_log_cache_file`](super::RpcChain::with_log_cache_file)): a redb database, so that a
//! process started per command resumes the sync instead of rescanning the chain's history.
//!
//! Tables (keys and integers big-endian byte strings); a *scope* is chain id (8) | registry
//! address (20), so one file can serve several chains and registries:
//!
//! | table            | key                                   | value                                                     |
//! |------------------|---------------------------------------|-----------------------------------------------------------|
//! | `log_cache_meta` | scope (28)                            | version (8) \| first block (8) \| checkpoints (8 + 32 each) |
//! | `log_cache_logs` | scope (28) \| block (8) \| log index (8) | timestamp (8) \| tx hash (32) \| topic count (1) \| topics \| data |
//!
//! The file is derived data: one that cannot be read is replaced (with a warning); one held by
//! another process is not used (the cache stays in memory, with a warning).

use std::path::Path;

use alloy::primitives::{Address, B256};
use redb::{Database, ReadableTable, TableDefinition};

use crate::backend::ChainLog;
use crate::error::{LedgerError, LedgerResult};

/// Version of the stored format; a scope stored in another version is discarded.
const VERSION: u64 = 1;

type Bin = &'static [u8];

const META: TableDefinition<Bin, Bin> = TableDefinition::new("log_cache_meta");
const LOGS: TableDefinition<Bin, Bin> = TableDefinition::new("log_cache_logs");

const SCOPE_LEN: usize = 28;

/// What a scope of the file holds.
#[derive(Debug, Default)]
pub(super) struct Stored {
    /// Checkpoints (block number, hash), oldest first; the last is the synced block.
    pub(super) checkpoints: Vec<(u64, B256)>,
    /// Every cached log, in (block, log index) order.
    pub(super) logs: Vec<ChainLog>,
}

/// Changes of the cache since it was last saved.
#[derive(Debug, Default)]
pub(super) struct Changes {
    /// Drop stored logs after this block (`Some(None)`: all of them).
    pub(super) rewound: Option<Option<u64>>,
    /// Logs added since (all after the rewind point).
    pub(super) logs: Vec<ChainLog>,
}

/// An open cache file, for one scope.
pub(super) struct LogStore {
    db: Database,
    scope: [u8; SCOPE_LEN],
}

impl std::fmt::Debug for LogStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogStore").finish_non_exhaustive()
    }
}

fn db_error(error: impl Into<redb::Error>) -> LedgerError {
    match error.into() {
        redb::Error::Io(io) => LedgerError::Io(io),
        other => LedgerError::Corrupt(format!("log cache file: {other}")),
    }
}

fn corrupt(what: &str) -> LedgerError {
    LedgerError::Corrupt(format!("log cache file: {what}"))
}

fn u64_at(bytes: &[u8], at: usize) -> Option<u64> {
    bytes
        .get(at..at.checked_add(8)?)
        .and_then(|b| b.try_into().ok())
        .map(u64::from_be_bytes)
}

fn log_key(scope: &[u8; SCOPE_LEN], block: u64, index: u64) -> [u8; SCOPE_LEN + 16] {
    let mut key = [0u8; SCOPE_LEN + 16];
    key[..SCOPE_LEN].copy_from_slice(scope);
    key[SCOPE_LEN..SCOPE_LEN + 8].copy_from_slice(&block.to_be_bytes());
    key[SCOPE_LEN + 8..].copy_from_slice(&index.to_be_bytes());
    key
}

fn decode_log(key: &[u8], value: &[u8]) -> LedgerResult<ChainLog> {
    u64_at(key, SCOPE_LEN)
        .zip(u64_at(key, SCOPE_LEN + 8))
        .and_then(|(block, index)| ChainLog::from_stored(block, index, value))
        .ok_or_else(|| corrupt("undecodable log entry"))
}

fn encode_meta(from_block: u64, checkpoints: &[(u64, B256)]) -> Vec<u8> {
    let mut out = Vec::with_capacity(16 + 40 * checkpoints.len());
    out.extend_from_slice(&VERSION.to_be_bytes());
    out.extend_from_slice(&from_block.to_be_bytes());
    for (number, hash) in checkpoints {
        out.extend_from_slice(&number.to_be_bytes());
        out.extend_from_slice(hash.as_slice());
    }
    out
}

impl LogStore {
    /// Opens (or creates) the file at `path` for the logs of `registry` on chain `chain_id`.
    /// `Ok(None)` if another process holds the file.
    pub(super) fn open(
        path: &Path,
        chain_id: u64,
        registry: Address,
    ) -> LedgerResult<Option<Self>> {
        let db = match Database::builder().create(path) {
            Ok(db) => db,
            Err(redb::DatabaseError::DatabaseAlreadyOpen) => {
                tracing::warn!(
                    path = %path.display(),
                    "log cache file is in use by another process; caching in memory only"
                );
                return Ok(None);
            }
            // Anything else with a file there (redb reports a foreign file as an I/O error
            // of kind InvalidData): replace it; a real I/O problem then fails the
            // replacement.
            Err(error) if path.exists() => {
                tracing::warn!(
                    path = %path.display(),
                    %error,
                    "log cache file is unreadable; replacing it"
                );
                std::fs::remove_file(path)?;
                Database::builder().create(path).map_err(db_error)?
            }
            Err(error) => return Err(db_error(error)),
        };
        let mut scope = [0u8; SCOPE_LEN];
        scope[..8].copy_from_slice(&chain_id.to_be_bytes());
        scope[8..].copy_from_slice(registry.as_slice());
        let txn = db.begin_write().map_err(db_error)?;
        {
            txn.open_table(META).map_err(db_error)?;
            txn.open_table(LOGS).map_err(db_error)?;
        }
        txn.commit().map_err(db_error)?;
        Ok(Some(Self { db, scope }))
    }

    /// What the file holds for this scope, if it was synced from `from_block` in this format
    /// (else nothing: the scope is cleared on the next save).
    pub(super) fn load(&self, from_block: u64) -> LedgerResult<Option<Stored>> {
        let txn = self.db.begin_read().map_err(db_error)?;
        let meta = txn.open_table(META).map_err(db_error)?;
        let Some(value) = meta.get(self.scope.as_slice()).map_err(db_error)? else {
            return Ok(None);
        };
        let value = value.value();
        if u64_at(value, 0) != Some(VERSION) || u64_at(value, 8) != Some(from_block) {
            return Ok(None);
        }
        let entries = value.get(16..).ok_or_else(|| corrupt("short meta"))?;
        if entries.len() % 40 != 0 {
            return Err(corrupt("malformed checkpoints"));
        }
        let checkpoints = entries
            .chunks_exact(40)
            .map(|entry| {
                let number = u64_at(entry, 0).ok_or_else(|| corrupt("malformed checkpoint"))?;
                Ok((
                    number,
                    B256::from_slice(entry.get(8..40).unwrap_or(&[0; 32])),
                ))
            })
            .collect::<LedgerResult<Vec<_>>>()?;
        let table = txn.open_table(LOGS).map_err(db_error)?;
        let (start, end) = (
            log_key(&self.scope, 0, 0),
            log_key(&self.scope, u64::MAX, u64::MAX),
        );
        let mut logs = Vec::new();
        for entry in table
            .range(start.as_slice()..=end.as_slice())
            .map_err(db_error)?
        {
            let (key, value) = entry.map_err(db_error)?;
            logs.push(decode_log(key.value(), value.value())?);
        }
        Ok(Some(Stored { checkpoints, logs }))
    }

    /// Saves `changes` and the current checkpoints in one durable transaction.
    pub(super) fn save(
        &self,
        from_block: u64,
        checkpoints: &[(u64, B256)],
        changes: &Changes,
    ) -> LedgerResult<()> {
        let txn = self.db.begin_write().map_err(db_error)?;
        {
            let mut logs = txn.open_table(LOGS).map_err(db_error)?;
            if let Some(keep_through) = changes.rewound {
                let start = match keep_through {
                    Some(block) => log_key(&self.scope, block.saturating_add(1), 0),
                    None => log_key(&self.scope, 0, 0),
                };
                let end = log_key(&self.scope, u64::MAX, u64::MAX);
                let doomed: Vec<Vec<u8>> = logs
                    .range(start.as_slice()..=end.as_slice())
                    .map_err(db_error)?
                    .map(|entry| entry.map(|(key, _)| key.value().to_vec()))
                    .collect::<Result<_, _>>()
                    .map_err(db_error)?;
                for key in doomed {
                    logs.remove(key.as_slice()).map_err(db_error)?;
                }
            }
            for log in &changes.logs {
                let key = log_key(&self.scope, log.block_number, log.log_index);
                logs.insert(key.as_slice(), log.stored_value().as_slice())
                    .map_err(db_error)?;
            }
            let mut meta = txn.open_table(META).map_err(db_error)?;
            meta.insert(
                self.scope.as_slice(),
                encode_meta(from_block, checkpoints).as_slice(),
            )
            .map_err(db_error)?;
        }
        txn.commit().map_err(db_error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logs_and_checkpoints_round_trip_and_rewinds_delete() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("logs.redb");
        let registry = Address::repeat_byte(7);
        let log = |block: u64, index: u64| ChainLog {
            topics: vec![B256::repeat_byte(1), B256::repeat_byte(2)],
            data: vec![block as u8; 3],
            block_number: block,
            timestamp: 1_000 + block,
            tx_hash: B256::repeat_byte(block as u8),
            log_index: index,
        };
        let store = LogStore::open(&path, 5, registry).unwrap().unwrap();
        assert!(store.load(3).unwrap().is_none());
        let changes = Changes {
            rewound: None,
            logs: vec![log(4, 0), log(4, 1), log(9, 0)],
        };
        let checkpoints = [(5, B256::repeat_byte(5)), (10, B256::repeat_byte(10))];
        store.save(3, &checkpoints, &changes).unwrap();
        // Another scope in the same file is independent.
        drop(store);
        let other = LogStore::open(&path, 6, registry).unwrap().unwrap();
        assert!(other.load(3).unwrap().is_none());
        drop(other);

        let store = LogStore::open(&path, 5, registry).unwrap().unwrap();
        assert!(store.load(2).unwrap().is_none(), "another first block");
        let stored = store.load(3).unwrap().unwrap();
        assert_eq!(stored.checkpoints, checkpoints);
        assert_eq!(stored.logs, changes.logs);

        let changes = Changes {
            rewound: Some(Some(5)),
            logs: vec![log(7, 0)],
        };
        store.save(3, &checkpoints[..1], &changes).unwrap();
        let stored = store.load(3).unwrap().unwrap();
        assert_eq!(stored.logs, vec![log(4, 0), log(4, 1), log(7, 0)]);
        assert_eq!(stored.checkpoints, checkpoints[..1]);
    }

    #[test]
    fn an_unreadable_file_is_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("logs.redb");
        std::fs::write(&path, b"not a database at all, just some bytes").unwrap();
        let store = LogStore::open(&path, 1, Address::ZERO).unwrap().unwrap();
        assert!(store.load(0).unwrap().is_none());

        // No directory for the file: an I/O error, not a replacement.
        let nowhere = dir.path().join("missing").join("logs.redb");
        let error = LogStore::open(&nowhere, 1, Address::ZERO).unwrap_err();
        assert!(matches!(error, LedgerError::Io(_)), "{error:?}");
        assert!(!nowhere.exists());
    }
}
