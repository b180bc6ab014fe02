//! Plain data types of the [`Ledger`](crate::Ledger) API (no transport types).
//!
//! Hashes, partition ids and Merkle roots are [`B256`]. Content identifiers (`*_cid`) are
//! opaque content pointers to the chain: it stores and returns the strings it was given (only
//! their keccak256 digests, resp. commitments, are in contract storage) and never parses them.

use std::fmt;
use std::num::NonZeroU32;

use alloy::primitives::{Address, B256};

/// Identifier of a record in the registry (assigned by the contract, starting at 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RecordId(pub u64);

impl fmt::Display for RecordId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// What a state-changing call cost and where it landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TxReceipt {
    /// Hash of the signed transaction.
    pub tx_hash: B256,
    /// Number of the block that includes it.
    pub block_number: u64,
    /// Gas used by the transaction (after refunds; the value in the Ethereum receipt).
    pub gas_used: u64,
}

/// Result of [`Ledger::create_record`](crate::Ledger::create_record).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CreatedRecord {
    /// The new record's id.
    pub record: RecordId,
    /// The transaction receipt.
    pub receipt: TxReceipt,
}

/// Result of [`Ledger::create_records`](crate::Ledger::create_records).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreatedRecords {
    /// The new records' ids, in the order of the request (consecutive).
    pub records: Vec<RecordId>,
    /// The transaction receipt.
    pub receipt: TxReceipt,
}

/// A record as stored by the contract, plus its full manifest pointer from the event log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordInfo {
    /// The record id.
    pub record: RecordId,
    /// The owner (creator) of the record.
    pub owner: Address,
    /// Block timestamp (Unix seconds) of creation.
    pub created_at: u64,
    /// Block timestamp (Unix seconds) of the last update (equals `created_at` if never updated).
    pub updated_at: u64,
    /// Content identifier of the current manifest (from the latest create/update event,
    /// checked against the commitment in storage).
    pub manifest_cid: String,
    /// keccak256 of `manifest_cid`.
    pub manifest_digest: B256,
    /// Hash of the access policy the record is encrypted under (from the same event, checked
    /// against the same commitment).
    pub policy_hash: B256,
    /// The patient the record is about, if it has one (set at creation, never changes). The
    /// subject always reads the record and is its *controller*: only the subject answers
    /// access requests, grants and revokes. Without a subject the owner is the controller.
    pub subject: Option<Address>,
}

impl RecordInfo {
    /// Who grants, denies and revokes access: the subject if there is one, else the owner.
    pub fn controller(&self) -> Address {
        self.subject.unwrap_or(self.owner)
    }
}

/// Access state of one user for one record, as stored by the contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AccessState {
    /// No grant and no pending request (owner and subject are always `None`: they need no
    /// grant).
    None,
    /// The user asked for access; the record's controller has not answered yet.
    Requested,
    /// The user may read the record.
    Granted,
}

/// A pending access request, addressed to the record's controller (its subject, or its owner).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AccessRequest {
    /// The requested record.
    pub record: RecordId,
    /// Who asked.
    pub requester: Address,
}

/// One entry of a record's audit trail (one contract event).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    /// The record concerned.
    pub record: RecordId,
    /// What happened.
    pub event: AuditEvent,
    /// Block that includes the event.
    pub block_number: u64,
    /// Timestamp (Unix seconds) of that block.
    pub timestamp: u64,
    /// Transaction that emitted the event.
    pub tx_hash: B256,
}

/// The kinds of auditable events of a record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuditEvent {
    /// The record was created.
    Created {
        /// Its owner.
        owner: Address,
        /// Manifest pointer.
        manifest_cid: String,
        /// Policy hash.
        policy_hash: B256,
    },
    /// The owner or the subject replaced manifest pointer and/or policy (a share or revoke
    /// re-wraps the record key into a new manifest).
    Updated {
        /// Who updated it: the owner, or the subject.
        by: Address,
        /// New manifest pointer.
        manifest_cid: String,
        /// New policy hash.
        policy_hash: B256,
    },
    /// The record is about this patient (right after `Created`, for a record with a subject).
    Subject {
        /// The patient.
        subject: Address,
    },
    /// The controller granted access (a consent decision).
    AccessGranted {
        /// The grantee.
        user: Address,
        /// Who decided: the subject, or the owner of a record without one.
        by: Address,
    },
    /// The controller revoked access.
    AccessRevoked {
        /// The former grantee.
        user: Address,
        /// Who decided.
        by: Address,
    },
    /// A user asked the record's controller for access.
    AccessRequested {
        /// Who asked.
        requester: Address,
        /// Who was asked to decide: the subject, or the owner of a record without one.
        approver: Address,
    },
    /// The controller denied a pending request (a consent decision).
    AccessDenied {
        /// The denied user.
        user: Address,
        /// Who decided.
        by: Address,
    },
    /// Owner, subject or grantee recorded that it accessed the record.
    AccessLogged {
        /// Who accessed it.
        accessor: Address,
    },
    /// Break-glass: someone opened the record under an emergency role, for a stated reason
    /// (logged before the key was opened; show it prominently).
    EmergencyAccess {
        /// Who opened it.
        accessor: Address,
        /// The reason they gave.
        reason: String,
    },
}

/// An anchored encrypted-index shard: batches `first_seq..=last_seq` of a partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexAnchor {
    /// Account that anchored it.
    pub anchorer: Address,
    /// Index partition (its id binds the partition's epoch).
    pub partition: B256,
    /// Sequence number of the shard's first batch.
    pub first_seq: u64,
    /// Sequence number of its last batch (0, 1, 2, ...: every batch is anchored once as the
    /// last of a shard, in order).
    pub last_seq: u64,
    /// Content identifier of the shard (from the event).
    pub shard_cid: String,
    /// Merkle root (from the event; [`Ledger::index_anchor`](crate::Ledger::index_anchor) also
    /// checks it and `first_seq` against the commitment in storage).
    pub merkle_root: B256,
    /// Block that anchored it.
    pub block_number: u64,
}

/// What a reader last saw of a partition's index: `known` batches, the last of them in a
/// shard starting at batch `known_first` with root `known_root`. Checked, for many partitions
/// at once, by [`Ledger::index_heads_unchanged`](crate::Ledger::index_heads_unchanged).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeadCheck {
    /// Account that anchored the partition's shards.
    pub anchorer: Address,
    /// Index partition.
    pub partition: B256,
    /// Number of batches seen (`0..known` are anchored).
    pub known: u64,
    /// First batch of the shard holding batch `known - 1`.
    pub known_first: u64,
    /// Merkle root of that shard.
    pub known_root: B256,
}

/// A published key capsule (the chain's record of it: where it is, not the capsule itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishedCapsule {
    /// Account that published it.
    pub publisher: Address,
    /// Index partition.
    pub partition: B256,
    /// Epoch.
    pub epoch: u64,
    /// Content identifier of the capsule (from the event;
    /// [`Ledger::capsule`](crate::Ledger::capsule) also checks it against the stored commitment).
    pub capsule_cid: String,
    /// Policy hash the capsule is encrypted under.
    pub policy_hash: B256,
    /// Block that published it.
    pub block_number: u64,
}

/// Registration state of an address in the member registry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MemberStatus {
    /// Never registered.
    Unregistered,
    /// Registered and not revoked (validity is a separate question: compare
    /// [`MemberInfo::valid_through`] with the current month).
    Active,
    /// Revoked by the authority or its registrar; permanent.
    Revoked,
}

/// What the contract stores about one address of the member registry
/// ([`Ledger::member`](crate::Ledger::member), [`Ledger::members_status`](crate::Ledger::members_status)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemberInfo {
    /// The address asked about.
    pub member: Address,
    /// Registration state.
    pub status: MemberStatus,
    /// Who issued the member's current key: the authority or a registrar (zero if
    /// unregistered).
    pub registrar: Address,
    /// Digest of the attributes issued, as the issuing client computed it (zero if
    /// unregistered).
    pub attributes_digest: B256,
    /// Last month of validity (`year * 12 + month - 1`); `None`: never expires. The contract
    /// does not interpret it; compare it with the current month.
    pub valid_through: Option<NonZeroU32>,
}

/// A member as the registry's events describe it ([`Ledger::registered_members`](crate::Ledger::registered_members)):
/// its latest registration (or renewal) and its revocation, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegisteredMember {
    /// The member's address.
    pub member: Address,
    /// Display name.
    pub name: String,
    /// Who issued the current key (the authority or a registrar).
    pub registrar: Address,
    /// The attributes issued.
    pub attributes: Vec<String>,
    /// Their digest (as the issuing client computed it).
    pub attributes_digest: B256,
    /// Last month of validity (`year * 12 + month - 1`); `None`: never expires.
    pub valid_through: Option<NonZeroU32>,
    /// Block of the latest registration or renewal.
    pub block_number: u64,
    /// The revocation, if the member was revoked.
    pub revoked: Option<MemberRevocation>,
}

/// How and why a member was revoked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberRevocation {
    /// Who revoked (the authority or the member's registrar).
    pub by: Address,
    /// The stated reason.
    pub reason: String,
    /// Block of the revocation.
    pub block_number: u64,
}

/// A registrar appointment, from the registry's events ([`Ledger::registrars`](crate::Ledger::registrars)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registrar {
    /// The registrar's address.
    pub registrar: Address,
    /// The name it was (last) appointed under (e.g. a hospital).
    pub name: String,
    /// Whether it is still appointed (false once dismissed).
    pub appointed: bool,
}
