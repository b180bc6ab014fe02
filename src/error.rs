//! The facade's error type, with typed sub-enums for what was tampered with, which input
//! was invalid, which configuration value is wrong and which local file is corrupt.

use std::path::PathBuf;

use crate::chain::{Address, B256, LedgerError, RecordId};
use crate::index::VerifyError;
use crate::storage::{Cid, StorageError};

/// Result alias of the facade.
pub type Result<T, E = Error> = core::result::Result<T, E>;

/// Everything a [`Vault`](crate::Vault) operation can fail with.
///
/// The variants a caller usually acts on come first: [`Error::AccessDenied`] (the key's
/// attributes do not satisfy the record's policy), [`Error::UnknownRecord`],
/// [`Error::NotOwner`], [`Error::Tampered`] (a block, manifest or index answer failed
/// verification — the data was not returned) and [`Error::InvalidInput`]. The rest wrap
/// the layer that failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The reader's attributes do not satisfy the record's (or partition's) policy.
    #[error(
        "access denied to record {}: the key's attributes do not satisfy its policy",
        record.0
    )]
    AccessDenied {
        /// The record.
        record: RecordId,
    },
    /// The reader's attributes would satisfy the record's policy but its key is not valid
    /// for the month the record was created (or shared) in: the key has expired, or was
    /// issued before keys carried a validity. A renewed key from the authority reads it.
    #[error(
        "access denied to record {}: it was created (or shared) in {needed}, and the key {}: \
         the key has expired or predates expiry: ask the authority to renew it",
        record.0,
        valid_through.map_or_else(
            || "carries no validity".to_owned(),
            |v| format!("is valid through {}", v.last_month())
        )
    )]
    KeyExpired {
        /// The record.
        record: RecordId,
        /// The month the record (or its share to the reader) is dated.
        needed: crate::validity::Month,
        /// The key's validity (`None`: issued before keys carried one).
        valid_through: Option<crate::validity::Validity>,
    },
    /// The address is not an active, unexpired member of the chain's member registry:
    /// records are shared with, and access requests approved for, registered members only.
    #[error("{member} is not an active registered member: {standing}")]
    NotAMember {
        /// The address refused.
        member: Address,
        /// Why.
        standing: Standing,
    },
    /// No record with this id exists on the chain.
    #[error("unknown record {}", .0.0)]
    UnknownRecord(RecordId),
    /// The acting member does not own the record.
    #[error("record {} is owned by {owner}, not by the acting member", record.0)]
    NotOwner {
        /// The record.
        record: RecordId,
        /// Its owner.
        owner: Address,
    },
    /// The record has a subject (the patient), who alone shares it, revokes access to it and
    /// answers requests for it (consent); the acting member is not the subject.
    #[error(
        "record {} is controlled by its subject {controller}: only they share it, revoke \
         access and answer requests",
        record.0
    )]
    NotController {
        /// The record.
        record: RecordId,
        /// Its controller (the subject).
        controller: Address,
    },
    /// The index partition was published by another member: only its publisher can
    /// compact it ([`Vault::compact_index`](crate::Vault::compact_index)), since only its
    /// publisher's anchors count for it.
    #[error(
        "index partition {partition} was published by {publisher}, not by the acting member: \
         only its publisher can compact it"
    )]
    NotPartitionOwner {
        /// The partition id.
        partition: B256,
        /// A member that published it.
        publisher: Address,
    },
    /// The reader's key opens the record only through its emergency (break-glass) clause: a
    /// plain read is refused; read it with [`Vault::get_emergency`](crate::Vault::get_emergency)
    /// and a stated reason, which is logged on chain first. (Refused by the client: see
    /// [`Vault::get_emergency`](crate::Vault::get_emergency) for what would enforce it.)
    #[error(
        "record {} is readable by this key only under break-glass: state a reason for \
         emergency access (it is logged on chain before the record is opened)",
        record.0
    )]
    EmergencyOnly {
        /// The record.
        record: RecordId,
    },
    /// Data failed verification against the chain or its content address; nothing of it
    /// was returned or used.
    #[error("tampering detected: {0}")]
    Tampered(#[source] Tampering),
    /// The passphrase does not open the sealed authority key
    /// ([`Authority::open_sealed`](crate::Authority::open_sealed)) or member key
    /// ([`Member::open_sealed`](crate::Member::open_sealed)).
    #[error(
        "wrong passphrase for the sealed key: try again (a forgotten passphrase cannot be \
         recovered: an authority key is rebuilt from its backup shares, a member needs a new \
         key from the authority)"
    )]
    WrongPassphrase,
    /// The data directory has no attribute-authority public key yet.
    #[error("no attribute authority: run the authority setup first (no public key in {0})")]
    NoAuthority(PathBuf),
    /// Bad input from the caller (empty name, too many attachments, ...).
    #[error("invalid input: {0}")]
    InvalidInput(#[source] InvalidInput),
    /// A configuration file or variable is invalid.
    #[error("configuration: {0}")]
    Config(#[source] ConfigError),
    /// A local file could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A local state file or stored object of the facade is not in the expected format,
    /// or local state disagrees with itself or the chain.
    #[error("corrupt {what}: {reason}")]
    Corrupt {
        /// What was being decoded or checked.
        what: &'static str,
        /// Why it was rejected.
        #[source]
        reason: Corruption,
    },
    /// Memory for a memory-hard computation could not be allocated.
    #[error("not enough memory for {0}")]
    OutOfMemory(&'static str),
    /// A background encryption or decryption task panicked or was cancelled.
    #[error("the {0} task did not finish")]
    TaskFailed(&'static str),
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

/// What failed verification (the payload of [`Error::Tampered`]).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Tampering {
    /// A block or DAG read from the store does not match its content address.
    #[error("{0}")]
    Block(#[source] StorageError),
    /// A content pointer is not a valid CID.
    #[error("{pointer} points to an invalid CID {text:?}")]
    InvalidCid {
        /// Where the pointer was found.
        pointer: Pointer,
        /// The pointer as found.
        text: String,
    },
    /// The manifest is wrapped under a policy the chain does not record for the record.
    #[error(
        "manifest of record {} is wrapped under a policy the chain does not record",
        record.0
    )]
    ManifestPolicy {
        /// The record.
        record: RecordId,
    },
    /// The manifest body does not authenticate under the record key.
    #[error("manifest body does not authenticate")]
    ManifestBody,
    /// An attachment does not authenticate under the record key.
    #[error("attachment {cid} does not authenticate under the record key")]
    Attachment {
        /// The attachment's CID.
        cid: Cid,
    },
    /// An attachment decrypted to another size than its manifest states.
    #[error("attachment {index} decrypted to {found} bytes, the manifest says {expected}")]
    AttachmentSize {
        /// Index of the attachment in the record.
        index: usize,
        /// Bytes decrypted.
        found: u64,
        /// Bytes the manifest states.
        expected: u64,
    },
    /// A published partition capsule does not decode.
    #[error("capsule {cid}: {source}")]
    CapsuleEncoding {
        /// The capsule's CID.
        cid: Cid,
        /// Why it does not decode.
        #[source]
        source: crate::index::Error,
    },
    /// A published capsule does not match the partition published on chain (policy hash
    /// or partition id).
    #[error("capsule {cid} does not match the partition published on chain")]
    CapsuleMismatch {
        /// The capsule's CID.
        cid: Cid,
    },
    /// An anchored index shard does not decode.
    #[error("shard {cid}: {source}")]
    ShardEncoding {
        /// The shard's CID.
        cid: Cid,
        /// Why it does not decode.
        #[source]
        source: crate::index::Error,
    },
    /// An anchored shard belongs to another partition or has another Merkle root than its
    /// anchor.
    #[error("shard {cid} does not match its on-chain anchor")]
    ShardMismatch {
        /// The shard's CID.
        cid: Cid,
    },
    /// A batch below a partition's index head has no anchor.
    #[error("index anchors of partition {partition} skip batch {last_seq}")]
    AnchorGap {
        /// The partition id.
        partition: B256,
        /// The missing batch's sequence number.
        last_seq: u64,
    },
    /// The index host's answer does not verify against the anchored roots.
    #[error("index answer: {0}")]
    IndexAnswer(#[source] VerifyError),
    /// A verified index entry does not hold a record reference.
    #[error("index entry is not a record reference")]
    NotARecordRef,
    /// A partition lists a record its publisher does not own.
    #[error("partition of {publisher} lists record {record}, owned by {owner}")]
    ForeignRecord {
        /// The partition's publisher.
        publisher: Address,
        /// The listed record.
        record: RecordId,
        /// Its actual owner.
        owner: Address,
    },
}

/// Where a content pointer was found (in [`Tampering::InvalidCid`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Pointer {
    /// The chain's record entry (manifest pointer).
    Record,
    /// The record's manifest (attachment pointer).
    Manifest,
    /// A capsule published on chain.
    PublishedCapsule,
    /// An index anchor on chain.
    IndexAnchor,
}

impl core::fmt::Display for Pointer {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            Pointer::Record => "the chain",
            Pointer::Manifest => "the manifest",
            Pointer::PublishedCapsule => "a published capsule",
            Pointer::IndexAnchor => "an index anchor",
        })
    }
}

/// Which input was invalid (the payload of [`Error::InvalidInput`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InvalidInput {
    /// A name is empty, too long or has control characters.
    #[error("{what} must be 1..={max} bytes without control characters: {name:?}")]
    Name {
        /// Which name (`record name`, `attachment name`, `content type`, `member name`).
        what: &'static str,
        /// The rejected name.
        name: String,
        /// The longest name accepted, in bytes.
        max: usize,
    },
    /// Too many items of one kind.
    #[error("{count} {what} (at most {limit})")]
    TooMany {
        /// What was counted (`attachments`, `keywords`).
        what: &'static str,
        /// How many were given.
        count: usize,
        /// The limit.
        limit: usize,
    },
    /// No attachment with this index.
    #[error("record {} has {count} attachments, no index {index}", record.0)]
    NoSuchAttachment {
        /// The record.
        record: RecordId,
        /// The requested index.
        index: usize,
        /// How many attachments it has.
        count: usize,
    },
    /// An attribute (of a key, or in a record's policy) uses a name reserved by medseal:
    /// `id` in keys (the member's address), `valid-year` and `valid-month` in keys and
    /// policies (key validity, see [`crate::validity`]), and names ending in `.v` and
    /// digits (attribute versions, see [`crate::versions`]); or it is not versioned where
    /// a versionable attribute is expected.
    #[error(
        "attribute `{attribute}`: the names `id` (member address), `valid-year` and \
         `valid-month` (key validity) and names ending in `.v<digits>` (attribute \
         versions) are reserved"
    )]
    ReservedAttribute {
        /// The rejected attribute.
        attribute: String,
    },
    /// Not a month `YYYY-MM` of the validity encoding (January
    /// [`crate::validity::VALIDITY_START_YEAR`] to December
    /// [`crate::validity::MAX_VALIDITY_YEAR`]).
    #[error(
        "{text:?} is not a month YYYY-MM from {}-01 to {}-12",
        crate::validity::VALIDITY_START_YEAR,
        crate::validity::MAX_VALIDITY_YEAR
    )]
    Month {
        /// The rejected text.
        text: String,
    },
    /// The member's key was issued by another attribute authority than the vault's.
    #[error(
        "the key of {member} was not issued by this vault's attribute authority (records it \
         stored would be unreadable, even by itself)"
    )]
    ForeignKey {
        /// The member.
        member: Address,
    },
    /// An idempotency key ([`crate::NewRecord::idempotency_key`]) that names another
    /// record: one stored with a different name, policy, keywords or attachments, or a
    /// second record of the same call.
    #[error(
        "idempotency key {key:?} already names another record (a different name, policy, \
         keywords or attachments, or another record of the same call): give each record \
         its own key"
    )]
    IdempotencyKeyReused {
        /// The key.
        key: String,
    },
    /// Argon2id parameters outside the accepted range
    /// ([`KdfParams::new`](crate::custody::KdfParams::new); also those a sealed file
    /// states, refused before any memory is allocated for them).
    #[error(
        "Argon2id parameters m = {memory_kib} KiB, t = {iterations}, p = {parallelism} are \
         outside the accepted range (1 <= t <= 32, 1 <= p <= 16, 8p <= m <= 1048576 KiB)"
    )]
    KdfParams {
        /// Memory cost in KiB.
        memory_kib: u32,
        /// Passes.
        iterations: u32,
        /// Lanes.
        parallelism: u32,
    },
    /// A record's subject is its owner, or the zero address (the owner reads and updates its
    /// records anyway; a subject is another party, the patient).
    #[error("the subject {subject} of a record must be another member than its owner")]
    InvalidSubject {
        /// The subject given.
        subject: Address,
    },
    /// A break-glass reason is empty (or only whitespace) or longer than `max` bytes.
    #[error("an emergency access reason must be 1..={max} bytes (not blank), got {len}")]
    Reason {
        /// Its length in bytes.
        len: usize,
        /// The longest accepted.
        max: usize,
    },
    /// No current index partition of the acting member has this id (a past epoch's
    /// partition is not compacted: see [`Vault::compact_index`](crate::Vault::compact_index)).
    #[error(
        "the acting member has no current index partition {partition} (see `PublishedCapsule` \
         for the ids; past epochs are not compacted)"
    )]
    UnknownPartition {
        /// The partition id given.
        partition: B256,
    },
    /// An empty passphrase (or one longer than Argon2 accepts).
    #[error("the passphrase is empty (or too long)")]
    Passphrase,
    /// Backup shares of the authority key were refused.
    #[error("{0}")]
    Share(#[source] crate::custody::ShareError),
    /// The registry's authority is neither the attribute authority's chain account nor
    /// the vault's own account, so [`Vault::adopt_authority`](crate::Vault::adopt_authority)
    /// cannot hand the role over.
    #[error(
        "the registry's authority is {registry_authority}, neither the attribute authority's \
         chain account {authority_account} nor this vault's account {sender}: only \
         {registry_authority} can transfer the role (or use a registry this authority or \
         this vault's key deployed)"
    )]
    RegistryAuthority {
        /// The registry's current authority.
        registry_authority: Address,
        /// The attribute authority's chain account.
        authority_account: Address,
        /// The vault's chain account.
        sender: Address,
    },
    /// A member key to register carries an attribute below the chain's current version
    /// of it (issued with [`Authority::issue`](crate::Authority::issue) after a
    /// revocation bumped the attribute, or not renewed since): it could not open, nor
    /// search, anything created under the attribute from then on. Issue keys with
    /// [`Vault::issue_member`](crate::Vault::issue_member), renew them with
    /// [`Vault::renew_member`](crate::Vault::renew_member).
    #[error(
        "the key of {member} holds {attribute} at version {key_version} but the chain is at \
         version {current_version} (a revocation bumped it): renew the key at the current \
         versions before registering it"
    )]
    StaleAttributeVersion {
        /// The member.
        member: Address,
        /// The attribute (its version unit, e.g. `role:nurse` or `level=*`).
        attribute: String,
        /// The highest version of it the key carries.
        key_version: u32,
        /// The chain's current version of it.
        current_version: u32,
    },
    /// The data directory already holds another authority's public key.
    #[error("{} already holds a different authority public key", path.display())]
    OtherAuthority {
        /// The public-key file.
        path: PathBuf,
    },
}

/// Why an address is not an active registered member (the payload of
/// [`Error::NotAMember`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Standing {
    /// The registry has never registered it.
    #[error("it is not registered (the authority or a registrar registers members)")]
    Unregistered,
    /// The authority (or its registrar) revoked it.
    #[error("it was revoked")]
    Revoked,
    /// Its registration is valid through a month before the vault's clock.
    #[error("its registration expired (valid through {through})")]
    Expired {
        /// The last month of validity.
        through: crate::validity::Month,
    },
}

/// Which configuration value is wrong (the payload of [`Error::Config`]).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The configuration file is not valid JSON of the expected shape.
    #[error("{}: {source}", path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// The parse error.
        #[source]
        source: serde_json::Error,
    },
    /// `eth_key` is not a hex secp256k1 secret key (the value is not echoed).
    #[error("eth_key is not a hex secp256k1 secret key")]
    EthKey,
    /// `registry` is not an address.
    #[error("registry {0:?} is not an address")]
    Registry(String),
    /// An Ethereum node is configured without a registry or a key to deploy one.
    #[error(
        "eth_rpc is set but neither registry nor eth_key: set MEDSEAL_REGISTRY to a deployed \
         registry, or MEDSEAL_ETH_KEY to a funded key to deploy one"
    )]
    NoRegistry,
}

/// Why a local file or object was rejected (the payload of [`Error::Corrupt`]).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Corruption {
    /// Its binary encoding is malformed.
    #[error("{0}")]
    Decode(#[from] crate::abe::DecodeError),
    /// Its JSON is malformed.
    #[error("{0}")]
    Json(#[from] serde_json::Error),
    /// It decodes but is inconsistent (with itself or with the chain).
    #[error("{0}")]
    Inconsistent(&'static str),
}

impl Error {
    /// Whether this error means data failed verification (a tampered block, manifest,
    /// shard or index answer).
    pub fn is_tampering(&self) -> bool {
        matches!(self, Error::Tampered(_))
    }

    /// Whether a backend could not be used (store or chain unreachable, failing, or
    /// refusing), or the local index cache failed (its file: I/O, disk full): retrying
    /// later may succeed. A missing object is not unavailability.
    pub fn is_unavailable(&self) -> bool {
        match self {
            Error::Storage(e) => !matches!(e, StorageError::NotFound { .. }),
            Error::Ledger(_) => true,
            Error::Index(e) => is_cache_failure(e),
            _ => false,
        }
    }

    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| Error::Io { path, source }
    }

    pub(crate) fn corrupt(what: &'static str, reason: impl Into<Corruption>) -> Self {
        Error::Corrupt {
            what,
            reason: reason.into(),
        }
    }

    pub(crate) fn inconsistent(what: &'static str, detail: &'static str) -> Self {
        Error::Corrupt {
            what,
            reason: Corruption::Inconsistent(detail),
        }
    }

    pub(crate) fn unknown_or(record: RecordId) -> impl FnOnce(LedgerError) -> Self {
        move |e| match e {
            LedgerError::UnknownRecord { .. } => Error::UnknownRecord(record),
            other => Error::Ledger(other),
        }
    }
}

impl From<Tampering> for Error {
    fn from(t: Tampering) -> Self {
        Error::Tampered(t)
    }
}

impl From<InvalidInput> for Error {
    fn from(e: InvalidInput) -> Self {
        Error::InvalidInput(e)
    }
}

impl From<ConfigError> for Error {
    fn from(e: ConfigError) -> Self {
        Error::Config(e)
    }
}

impl From<StorageError> for Error {
    fn from(e: StorageError) -> Self {
        match e {
            StorageError::IntegrityViolation { .. } | StorageError::InvalidDag { .. } => {
                Error::Tampered(Tampering::Block(e))
            }
            other => Error::Storage(other),
        }
    }
}

/// A failure of the local index cache (its file, not the partition it holds).
pub(crate) fn is_cache_failure(e: &crate::index::Error) -> bool {
    matches!(
        e,
        crate::index::Error::Cache(_) | crate::index::Error::CacheInUse
    )
}

impl From<crate::index::Error> for Error {
    fn from(e: crate::index::Error) -> Self {
        use crate::index::Error as I;
        match e {
            I::Verification(v) => Error::Tampered(Tampering::IndexAnswer(v)),
            other => Error::Index(other),
        }
    }
}
