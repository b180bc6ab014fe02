//! The facade's error type.

use std::path::PathBuf;

use crate::chain::{LedgerError, RecordId};
use crate::storage::StorageError;

/// Result alias of the facade.
pub type Result<T, E = Error> = core::result::Result<T, E>;

/// Everything a [`Vault`](crate::Vault) operation can fail with.
///
/// The variants a caller usually acts on come first: [`Error::AccessDenied`] (the key's
/// attributes do not satisfy the record's policy), [`Error::UnknownRecord`],
/// [`Error::NotOwner`], and [`Error::Tampered`] (a block, manifest or index answer failed
/// verification — the data was not returned). The rest wrap the layer that failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The reader's attributes do not satisfy the record's (or partition's) policy.
    #[error("access denied to record {record}: the key's attributes do not satisfy its policy")]
    AccessDenied {
        /// The record.
        record: u64,
    },
    /// No record with this id exists on the chain.
    #[error("unknown record {0}")]
    UnknownRecord(u64),
    /// The acting member does not own the record.
    #[error("record {record} is owned by {owner}, not by the acting member")]
    NotOwner {
        /// The record.
        record: u64,
        /// Its owner's address.
        owner: String,
    },
    /// Data failed verification against the chain or its content address; nothing of it
    /// was returned or used.
    #[error("tampering detected: {0}")]
    Tampered(String),
    /// The data directory has no attribute-authority public key yet.
    #[error("no attribute authority: run the authority setup first (no public key in {0})")]
    NoAuthority(PathBuf),
    /// Bad input from the caller (empty name, too many attachments, ...).
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// A configuration file or variable is invalid.
    #[error("configuration: {0}")]
    Config(String),
    /// A local file could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A local state file or stored object is not in the expected format.
    #[error("corrupt {what}: {detail}")]
    Corrupt {
        /// What was being decoded.
        what: &'static str,
        /// Why it was rejected.
        detail: String,
    },
    /// The content store failed.
    #[error("storage: {0}")]
    Storage(#[source] StorageError),
    /// The ledger failed or rejected the transaction.
    #[error("chain: {0}")]
    Ledger(#[from] LedgerError),
    /// CP-ABE failed (bad policy, key material, ...).
    #[error("encryption: {0}")]
    Abe(#[from] crate::abe::Error),
    /// The searchable index failed.
    #[error("index: {0}")]
    Index(#[source] crate::index::Error),
    /// A policy did not parse.
    #[error("policy: {0}")]
    Policy(#[from] crate::abe::PolicyError),
    /// A keyword did not parse.
    #[error("keyword: {0}")]
    Keyword(#[from] crate::index::KeywordError),
}

impl Error {
    /// Whether this error means data failed verification (a tampered block, manifest,
    /// shard or index answer).
    pub fn is_tampering(&self) -> bool {
        matches!(self, Error::Tampered(_))
    }

    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| Error::Io { path, source }
    }

    pub(crate) fn corrupt(what: &'static str, detail: impl core::fmt::Display) -> Self {
        Error::Corrupt {
            what,
            detail: detail.to_string(),
        }
    }

    pub(crate) fn unknown_or(record: RecordId) -> impl FnOnce(LedgerError) -> Self {
        move |e| match e {
            LedgerError::UnknownRecord { .. } => Error::UnknownRecord(record.0),
            other => Error::Ledger(other),
        }
    }
}

impl From<StorageError> for Error {
    fn from(e: StorageError) -> Self {
        match e {
            StorageError::IntegrityViolation { .. } | StorageError::InvalidDag { .. } => {
                Error::Tampered(e.to_string())
            }
            other => Error::Storage(other),
        }
    }
}

impl From<crate::index::Error> for Error {
    fn from(e: crate::index::Error) -> Self {
        use crate::index::Error as I;
        match e {
            I::Verification(_) => Error::Tampered(format!("index answer: {e}")),
            other => Error::Index(other),
        }
    }
}
