//! Errors.

pub use medseal_abe::DecodeError;

/// Everything that can go wrong in this crate.
///
/// Failures to open a partition capsule are opaque ([`Error::Decryption`]);
/// [`Error::PolicyNotSatisfied`] is separate because it depends only on public data (the
/// capsule's policy and the key's attributes). A host's answer that does not verify is
/// [`Error::Verification`] with the typed reason: the reason depends only on what the
/// host sent, never on a secret.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A keyword is empty, too long or malformed.
    #[error("invalid keyword: {0}")]
    Keyword(#[from] KeywordError),
    /// The key's attributes do not satisfy the partition's (or index entry's) policy.
    #[error("the key's attributes do not satisfy the policy")]
    PolicyNotSatisfied,
    /// A capsule did not open (opaque by design).
    #[error("decryption failed")]
    Decryption,
    /// A byte string is not a valid canonical encoding (the codec and its error are
    /// medseal-abe's, shared by the medseal crates).
    #[error("malformed encoding: {0}")]
    Decode(#[from] DecodeError),
    /// A host's search answer does not verify against the anchored shard roots.
    #[error("search answer rejected: {0}")]
    Verification(#[from] VerifyError),
    /// The all-zero record reference is reserved for padding entries.
    #[error("the all-zero record reference is reserved")]
    ReservedRecordRef,
    /// A shard repeats a label already present in its partition, or belongs to another
    /// partition than the operation expected.
    #[error("shard conflicts with its partition: {0}")]
    ShardConflict(&'static str),
    /// The database of a [`crate::sse::DiskHost`] failed (I/O, locking) or holds
    /// something it cannot have written (then drop and rebuild it: it is a cache).
    #[error("index cache: {0}")]
    Cache(String),
    /// The database file of a [`crate::sse::DiskHost`] is open elsewhere (another process,
    /// or another handle in this one).
    #[error("index cache is in use by another process")]
    CacheInUse,
    /// An owner's partition state is behind one it must follow (it would repeat labels),
    /// or belongs to another partition or key.
    #[error("owner state is stale or of another partition")]
    StaleOwnerState,
    /// The partition is not known to the host.
    #[error("unknown partition")]
    UnknownPartition,
    /// An input exceeds a documented limit.
    #[error("{what} exceeds the limit of {limit}")]
    LimitExceeded {
        /// What was too large.
        what: &'static str,
        /// The limit.
        limit: u64,
    },
    /// A hash to Z_r came out zero (probability about 2^-255; the keyword cannot be used).
    #[error("degenerate keyword hash")]
    DegenerateHash,
    /// An error from the CP-ABE layer other than the two above (e.g. an invalid policy).
    #[error("CP-ABE error: {0}")]
    Abe(medseal_abe::Error),
}

impl Error {
    /// Maps a CP-ABE error, keeping the two cases callers branch on.
    pub(crate) fn from_abe(e: medseal_abe::Error) -> Self {
        match e {
            medseal_abe::Error::PolicyNotSatisfied => Self::PolicyNotSatisfied,
            medseal_abe::Error::Decryption => Self::Decryption,
            other => Self::Abe(other),
        }
    }
}

/// Why a keyword was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeywordError {
    /// The keyword has no `type:` prefix.
    #[error("missing type prefix (write e.g. `icd10:I10` or `term:asthma`)")]
    MissingType,
    /// The type prefix is empty or has characters outside `[a-z0-9_.-]` after
    /// normalisation.
    #[error("invalid type prefix")]
    InvalidType,
    /// The type prefix is well formed but not one of [`crate::KEYWORD_TYPES`]: a keyword
    /// of another type would match nothing any owner indexed.
    #[error(
        "unknown keyword type `{kind}` (the known types are {})",
        crate::KEYWORD_TYPES.join(", ")
    )]
    UnknownType {
        /// The type as normalised (lowercase).
        kind: String,
    },
    /// The value is empty after normalisation.
    #[error("empty keyword value")]
    EmptyValue,
    /// The keyword is longer than the limit (before or after normalisation).
    #[error("keyword of {len} bytes exceeds the limit of {max}")]
    TooLong {
        /// Length found, in bytes.
        len: usize,
        /// The limit, in bytes.
        max: usize,
    },
    /// Normalisation did not reach a fixed point within
    /// [`crate::MAX_NORMALISATION_PASSES`] passes (no known input does this; it
    /// is refused rather than given a canonical text that would not re-parse to itself).
    #[error("keyword normalisation does not settle")]
    Unstable,
}

/// Why a host's search answer was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// The answer covers a different set of shards than the anchored roots.
    #[error("the answer does not cover exactly the anchored shards")]
    ShardSet,
    /// A result's membership proof does not lead to an anchored root.
    #[error("membership proof of result {0} is invalid")]
    Membership(usize),
    /// The proof that the search terminated (the next label is absent) is invalid for a
    /// shard: the host withheld results or forged the proof.
    #[error("non-membership proof for shard {0} is invalid")]
    NonMembership(usize),
}

/// Result alias.
pub type Result<T, E = Error> = core::result::Result<T, E>;
