//! The [`Ledger`] trait: the registry's operations and queries, independent of where the chain
//! runs.

use std::sync::Arc;

use alloy::primitives::Address;
use alloy::signers::local::PrivateKeySigner;
use async_trait::async_trait;

use crate::error::LedgerError;
use crate::types::{
    AccessRequest, AccessState, AuditEntry, Capsule, CreatedRecord, IndexAnchor, RecordId,
    RecordInfo, TxReceipt,
};

/// Result alias of ledger operations.
pub type LedgerResult<T> = Result<T, LedgerError>;

/// A `MedsealRegistry` deployment seen through one signing account (the *sender*).
///
/// State-changing operations sign a transaction with the sender's key, wait until it is
/// included, and return its [`TxReceipt`] (gas used included). A call the contract would reject
/// fails with the matching typed [`LedgerError`] (e.g. [`LedgerError::NotOwner`]) and changes
/// nothing. Queries read contract storage and the event log.
///
/// Implemented by [`EmbeddedChain`](crate::EmbeddedChain) and [`RpcChain`](crate::RpcChain);
/// object safe, so it is usually held as `Arc<dyn Ledger>`.
#[async_trait]
pub trait Ledger: Send + Sync {
    /// The account that signs this ledger's transactions.
    fn sender(&self) -> Address;

    /// Address of the registry contract.
    fn registry_address(&self) -> Address;

    /// The same deployment (and, for an [`EmbeddedChain`](crate::EmbeddedChain), the same
    /// shared in-process chain state; for an [`RpcChain`](crate::RpcChain), the same node
    /// connection) seen through another signing account: the returned ledger's
    /// [`sender`](Self::sender) is `signer.address()` and its transactions are signed with
    /// `signer`.
    ///
    /// The object-safe form of the backends' inherent `with_signer`, for code that holds an
    /// `Arc<dyn Ledger>` and acts for several accounts. Creating the handle is cheap and does
    /// no I/O; `self` is unaffected.
    fn for_signer(&self, signer: PrivateKeySigner) -> Arc<dyn Ledger>;

    /// Creates a record owned by the sender. `manifest_cid` must be non-empty and
    /// `policy_hash` nonzero ([`LedgerError::EmptyField`] otherwise).
    async fn create_record(
        &self,
        manifest_cid: &str,
        policy_hash: [u8; 32],
    ) -> LedgerResult<CreatedRecord>;

    /// Replaces manifest pointer and policy hash of a record the sender owns.
    async fn update_record(
        &self,
        record: RecordId,
        manifest_cid: &str,
        policy_hash: [u8; 32],
    ) -> LedgerResult<TxReceipt>;

    /// Grants `user` access to a record the sender owns (also answers a pending request).
    async fn grant_access(&self, record: RecordId, user: Address) -> LedgerResult<TxReceipt>;

    /// Revokes the access of `user` to a record the sender owns.
    async fn revoke_access(&self, record: RecordId, user: Address) -> LedgerResult<TxReceipt>;

    /// The sender asks the record's owner for access.
    async fn request_access(&self, record: RecordId) -> LedgerResult<TxReceipt>;

    /// Denies the pending request of `user` for a record the sender owns.
    async fn deny_access(&self, record: RecordId, user: Address) -> LedgerResult<TxReceipt>;

    /// Records in the audit trail that the sender (owner or grantee) accessed the record.
    async fn log_access(&self, record: RecordId) -> LedgerResult<TxReceipt>;

    /// Anchors the Merkle root of shard number `shard_seq` (0, 1, 2, ...) of an
    /// encrypted-index partition; once per (sender, partition, shard_seq).
    async fn anchor_index(
        &self,
        partition: [u8; 32],
        shard_seq: u64,
        shard_cid: &str,
        merkle_root: [u8; 32],
    ) -> LedgerResult<TxReceipt>;

    /// Publishes the key capsule of (`partition`, `epoch`); once per (sender, partition, epoch).
    async fn publish_capsule(
        &self,
        partition: [u8; 32],
        epoch: u64,
        capsule_cid: &str,
        policy_hash: [u8; 32],
    ) -> LedgerResult<TxReceipt>;

    /// The stored record (with its current manifest pointer from the event log).
    async fn record(&self, record: RecordId) -> LedgerResult<RecordInfo>;

    /// Number of records created so far (ids are `1..=record_count`).
    async fn record_count(&self) -> LedgerResult<u64>;

    /// Whether `user` may read the record (owners always may).
    async fn can_access(&self, record: RecordId, user: Address) -> LedgerResult<bool>;

    /// The stored access state of `user` for the record.
    async fn access_state(&self, record: RecordId, user: Address) -> LedgerResult<AccessState>;

    /// Records owned by `owner`, in creation order (from `RecordCreated` events).
    async fn records_of(&self, owner: Address) -> LedgerResult<Vec<RecordId>>;

    /// Records `user` currently has been granted access to, ascending (from
    /// `AccessGranted`/`AccessRevoked` events, cross-checked with contract storage).
    async fn shared_with(&self, user: Address) -> LedgerResult<Vec<RecordId>>;

    /// Pending (unanswered) access requests for records owned by `owner`.
    async fn pending_requests(&self, owner: Address) -> LedgerResult<Vec<AccessRequest>>;

    /// Every event of the record, oldest first.
    async fn audit_trail(&self, record: RecordId) -> LedgerResult<Vec<AuditEntry>>;

    /// Shard `shard_seq` of `partition` as anchored by `anchorer`, if any.
    async fn index_anchor(
        &self,
        anchorer: Address,
        partition: [u8; 32],
        shard_seq: u64,
    ) -> LedgerResult<Option<IndexAnchor>>;

    /// The key capsule published by `publisher` for (`partition`, `epoch`), if any.
    async fn capsule(
        &self,
        publisher: Address,
        partition: [u8; 32],
        epoch: u64,
    ) -> LedgerResult<Option<Capsule>>;

    /// Every published key capsule, or with `Some(publisher)` only that account's, oldest
    /// first (block order, then log order within a block).
    ///
    /// Answered from the `CapsulePublished` events (filtered on the indexed publisher), not
    /// cross-checked entry by entry with the stored commitments ([`capsule`](Self::capsule)
    /// does that for one entry); the contract stores exactly what it emits. A log that does
    /// not decode, or a second capsule for the same (publisher, partition, epoch) — the
    /// contract allows one — fails with [`LedgerError::Corrupt`].
    async fn capsules(&self, publisher: Option<Address>) -> LedgerResult<Vec<Capsule>>;

    /// Every index shard `anchorer` anchored in `partition`, sorted by `shard_seq` ascending
    /// (whatever order they were anchored in).
    ///
    /// Answered from the `IndexAnchored` events (filtered on the indexed anchorer and
    /// partition), not cross-checked entry by entry with the stored roots
    /// ([`index_anchor`](Self::index_anchor) does that for one entry); the contract stores
    /// exactly what it emits. A log that does not decode, or two anchors for one shard — the
    /// contract allows one — fails with [`LedgerError::Corrupt`].
    async fn index_anchors(
        &self,
        anchorer: Address,
        partition: [u8; 32],
    ) -> LedgerResult<Vec<IndexAnchor>>;
}
