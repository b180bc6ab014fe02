//! The one error type of every storage operation.

use std::time::Duration;

use crate::cid::{Cid, CidError};

/// A boxed error from a lower layer (HTTP client, file system, ...).
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Result alias used throughout the crate.
pub type Result<T, E = StorageError> = std::result::Result<T, E>;

/// Everything that can go wrong when storing or retrieving content.
///
/// Variants are added over time, so matches need a wildcard arm.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StorageError {
    /// The store does not hold the block (or a block of the DAG) named by `cid`.
    #[error("block {cid} not found")]
    NotFound {
        /// The missing block.
        cid: Cid,
    },

    /// Bytes that claim to be `cid` do not hash to it, or a verified DAG is
    /// inconsistent with itself (sizes that do not add up). Never retried:
    /// the bytes are wrong, not late.
    #[error("integrity violation for {cid}: {detail}")]
    IntegrityViolation {
        /// The block whose bytes failed verification.
        cid: Cid,
        /// What did not match.
        detail: String,
    },

    /// A block hashes correctly but is not a DAG this crate can read
    /// (bad protobuf, UnixFS directory, unsupported CID inside, too deep).
    #[error("block {cid} is not a readable UnixFS file DAG: {reason}")]
    InvalidDag {
        /// The offending block.
        cid: Cid,
        /// Why it cannot be read.
        reason: String,
    },

    /// A CID string or binary CID could not be parsed or is not supported.
    #[error(transparent)]
    InvalidCid(#[from] CidError),

    /// An operation did not finish in time.
    #[error("{operation} timed out after {after:?}{}", about(.cid))]
    Timeout {
        /// What was being done.
        operation: String,
        /// The block or content it was about, when there is one.
        cid: Option<Cid>,
        /// The limit that was exceeded.
        after: Duration,
    },

    /// The backend (remote node, HTTP layer) failed or answered something
    /// that is not a valid reply.
    #[error("backend error: {context}")]
    Backend {
        /// What was being done and what went wrong, for humans.
        context: String,
        /// The underlying error, if any.
        #[source]
        source: Option<BoxError>,
    },

    /// A local file-system operation failed.
    #[error("I/O error while {context}")]
    Io {
        /// What was being done.
        context: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },

    /// The caller-supplied input stream failed.
    #[error("input stream failed")]
    Input(#[source] BoxError),

    /// The store does not offer this operation.
    #[error("{operation} is not supported by this store: {reason}")]
    Unsupported {
        /// What was asked for.
        operation: &'static str,
        /// Why not, and what to do instead.
        reason: String,
    },

    /// A CAR file is malformed or not CAR version 1.
    #[error("invalid CAR data: {0}")]
    InvalidCar(String),
}

/// ` (block <cid>)`, or nothing.
fn about(cid: &Option<Cid>) -> String {
    cid.map(|cid| format!(" (block {cid})")).unwrap_or_default()
}

impl StorageError {
    /// Names `cid` in a [`StorageError::Timeout`] that names none yet (other errors are
    /// returned unchanged).
    pub fn about(self, cid: Cid) -> Self {
        match self {
            Self::Timeout {
                operation,
                cid: None,
                after,
            } => Self::Timeout {
                operation,
                cid: Some(cid),
                after,
            },
            other => other,
        }
    }

    /// Builds a [`StorageError::Backend`] without an underlying error.
    pub fn backend(context: impl Into<String>) -> Self {
        Self::Backend {
            context: context.into(),
            source: None,
        }
    }

    /// Builds a [`StorageError::Backend`] wrapping `source`.
    pub fn backend_with(context: impl Into<String>, source: impl Into<BoxError>) -> Self {
        Self::Backend {
            context: context.into(),
            source: Some(source.into()),
        }
    }

    /// Builds a [`StorageError::Io`].
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Self::Io {
            context: context.into(),
            source,
        }
    }

    /// Builds a [`StorageError::IntegrityViolation`].
    pub fn integrity(cid: Cid, detail: impl Into<String>) -> Self {
        Self::IntegrityViolation {
            cid,
            detail: detail.into(),
        }
    }

    /// Builds a [`StorageError::InvalidDag`].
    pub fn invalid_dag(cid: Cid, reason: impl Into<String>) -> Self {
        Self::InvalidDag {
            cid,
            reason: reason.into(),
        }
    }
}
