//! Errors.

use crate::policy::PolicyError;

/// Everything that can go wrong in this crate.
///
/// Decryption failures are deliberately opaque: [`Error::Decryption`] says nothing about
/// *why* (wrong key, tampered ciphertext, truncated stream), so a decryption oracle learns
/// one bit at most. [`Error::PolicyNotSatisfied`] is separate because it depends only on
/// public data: the ciphertext's policy and the key's attribute list.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A policy or attribute list did not parse or exceeds its limits.
    #[error("invalid policy: {0}")]
    Policy(#[from] PolicyError),
    /// The key's attributes do not satisfy the ciphertext's policy.
    #[error("the key's attributes do not satisfy the ciphertext's policy")]
    PolicyNotSatisfied,
    /// Decryption failed (opaque by design).
    #[error("decryption failed")]
    Decryption,
    /// A byte string is not a valid encoding.
    #[error("malformed encoding: {0}")]
    Decode(#[from] DecodeError),
    /// An input exceeds a documented size limit.
    #[error("{what} exceeds the limit of {limit}")]
    LimitExceeded {
        /// What was too large.
        what: &'static str,
        /// The limit.
        limit: u64,
    },
    /// Key generation was given a master key from another setup than the public key's
    /// (the key it would issue could decrypt nothing).
    #[error("the master key does not belong to the public key")]
    MasterKeyMismatch,
    /// Reading or writing a stream failed.
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
}

/// Why a byte string is not a valid canonical encoding ([`crate::codec`]; shared by the
/// medseal crates).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The input does not start with the magic bytes of the expected format.
    #[error("bad magic bytes (not an object of the expected format)")]
    BadMagic,
    /// The format version is not one this library reads.
    #[error("unsupported format version {0}")]
    UnsupportedVersion(u8),
    /// The object is of another kind (e.g. a ciphertext where a key was expected).
    #[error("expected a {expected}, found object kind {found}")]
    WrongKind {
        /// The kind the caller asked for.
        expected: &'static str,
        /// The kind byte found.
        found: u8,
    },
    /// The object belongs to another scheme.
    #[error("expected scheme {expected}, found scheme id {found}")]
    WrongScheme {
        /// The scheme the caller asked for.
        expected: &'static str,
        /// The scheme byte found.
        found: u8,
    },
    /// The curve id is not BLS12-381.
    #[error("unsupported curve id {0}")]
    UnsupportedCurve(u8),
    /// The input ends early.
    #[error("truncated input")]
    Truncated,
    /// Bytes follow the end of the object.
    #[error("{0} trailing bytes after the object")]
    TrailingBytes(usize),
    /// A group element is not a canonical, on-curve, prime-order, non-identity point.
    #[error("invalid group element in {0}")]
    InvalidPoint(&'static str),
    /// A scalar is not canonical (>= the group order).
    #[error("invalid scalar in {0}")]
    InvalidScalar(&'static str),
    /// A count or length is above its limit.
    #[error("{what} count {found} exceeds the limit {limit}")]
    TooLarge {
        /// What was counted.
        what: &'static str,
        /// The count found.
        found: u64,
        /// The limit.
        limit: u64,
    },
    /// A text field is not valid UTF-8.
    #[error("invalid UTF-8 in {0}")]
    InvalidUtf8(&'static str),
    /// An embedded policy or attribute list is invalid.
    #[error("invalid embedded policy or attributes: {0}")]
    InvalidPolicy(PolicyError),
    /// Keys that must be strictly increasing (sorted, no repeats) are not.
    #[error("{0} are not strictly increasing")]
    Unsorted(&'static str),
    /// The parts of the object are inconsistent with each other.
    #[error("inconsistent object: {0}")]
    Inconsistent(&'static str),
}

/// Result alias.
pub type Result<T, E = Error> = core::result::Result<T, E>;
