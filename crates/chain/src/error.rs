//! The one error type of every [`Ledger`](crate::Ledger) operation.

use alloy::primitives::utils::format_ether;
use alloy::primitives::{Address, B256, U256};

use crate::types::RecordId;

/// Every field name the contract reports in `EmptyField`.
pub(crate) const EMPTY_FIELD_NAMES: [&str; 11] = [
    "manifestCid",
    "manifestCids",
    "policyHash",
    "shardCid",
    "merkleRoot",
    "capsuleCid",
    "name",
    "attributesDigest",
    "attributes",
    "reason",
    "bumpAttributes",
];

/// Result alias of ledger operations.
pub type LedgerResult<T> = Result<T, LedgerError>;

/// Boxed error of a lower layer (HTTP client, file system, ...).
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// `wei` in ETH, without trailing zeros (`0`, `1.5`, `0.000126779088684765`).
fn ether(wei: U256) -> String {
    let text = format_ether(wei);
    match text.split_once('.') {
        Some((whole, fraction)) => match fraction.trim_end_matches('0') {
            "" => whole.to_owned(),
            fraction => format!("{whole}.{fraction}"),
        },
        None => text,
    }
}

/// Errors of [`Ledger`](crate::Ledger) operations.
///
/// The first group mirrors the contract's custom errors one to one (the contract reverted with
/// it, or — on the embedded chain — would have); the rest are failures of the chain itself.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LedgerError {
    /// The sender does not own the record (contract error `NotOwner`).
    #[error("{caller} is not the owner of record {record}")]
    NotOwner {
        /// The record.
        record: RecordId,
        /// The sender of the rejected transaction.
        caller: Address,
    },
    /// No such record (contract error `UnknownRecord`).
    #[error("unknown record {record}")]
    UnknownRecord {
        /// The record id that does not exist.
        record: RecordId,
    },
    /// A required field was empty or zero (contract error `EmptyField`).
    #[error("required field `{field}` is empty")]
    EmptyField {
        /// Name of the field as the contract spells it: `manifestCid`, `manifestCids`,
        /// `policyHash`, `shardCid`, `merkleRoot`, `capsuleCid`, `name`, `attributesDigest`,
        /// `attributes` (none, or an empty text), `reason` or `bumpAttributes` (a zero hash).
        field: &'static str,
    },
    /// The user cannot be the object of this access operation: the zero address, or the
    /// record's owner or subject, who always read it (contract error `InvalidUser`).
    #[error(
        "{user} cannot be granted or request access here (zero address, or the record's owner or \
         subject, who always read it)"
    )]
    InvalidUser {
        /// The rejected user.
        user: Address,
    },
    /// The user already has access (contract error `AlreadyGranted`).
    #[error("{user} already has access to record {record}")]
    AlreadyGranted {
        /// The record.
        record: RecordId,
        /// The user.
        user: Address,
    },
    /// The user has no access that could be revoked (contract error `NotGranted`).
    #[error("{user} has no access to record {record}")]
    NotGranted {
        /// The record.
        record: RecordId,
        /// The user.
        user: Address,
    },
    /// The user already has a pending request (contract error `AlreadyRequested`).
    #[error("{user} already requested access to record {record}")]
    AlreadyRequested {
        /// The record.
        record: RecordId,
        /// The user.
        user: Address,
    },
    /// The user has no pending request to deny (contract error `NoPendingRequest`).
    #[error("{user} has no pending access request for record {record}")]
    NoPendingRequest {
        /// The record.
        record: RecordId,
        /// The user.
        user: Address,
    },
    /// The sender may not read the record, so it cannot log an access (contract error
    /// `NotAuthorized`).
    #[error("{caller} is not authorized to access record {record}")]
    NotAuthorized {
        /// The record.
        record: RecordId,
        /// The sender.
        caller: Address,
    },
    /// The shard ending at batch `last_seq` of this (anchorer, partition) was anchored before
    /// (contract error `AlreadyAnchored`).
    #[error("{anchorer} already anchored partition {partition} batch {last_seq}")]
    AlreadyAnchored {
        /// The anchoring account.
        anchorer: Address,
        /// The index partition.
        partition: B256,
        /// The batch sequence number within the partition.
        last_seq: u64,
    },
    /// An anchor skipped a batch (`last_seq - 1` is not anchored) or has `first_seq > last_seq`
    /// (contract error `AnchorOutOfOrder`).
    #[error(
        "{anchorer} anchored batches {first_seq}..={last_seq} of partition {partition} out of order"
    )]
    AnchorOutOfOrder {
        /// The anchoring account.
        anchorer: Address,
        /// The index partition.
        partition: B256,
        /// First batch of the shard.
        first_seq: u64,
        /// Last batch of the shard.
        last_seq: u64,
    },
    /// A bulk call got lists of different lengths (contract error `LengthMismatch`).
    #[error("bulk call with {manifests} manifest CIDs but {policies} policy hashes")]
    LengthMismatch {
        /// Number of manifest CIDs.
        manifests: u64,
        /// Number of policy hashes.
        policies: u64,
    },
    /// This (publisher, partition, epoch) capsule was published before (contract error
    /// `AlreadyPublished`).
    #[error("{publisher} already published a capsule for partition {partition} epoch {epoch}")]
    AlreadyPublished {
        /// The publishing account.
        publisher: Address,
        /// The index partition.
        partition: B256,
        /// The epoch.
        epoch: u64,
    },
    /// Only the record's controller — its subject (the patient) if it has one, else its
    /// owner — grants, denies and revokes access (contract error `NotController`).
    #[error(
        "only {controller} (the patient of record {record}, or its owner if it has no patient) \
         can grant, deny or revoke access to it; {caller} tried"
    )]
    NotController {
        /// The record.
        record: RecordId,
        /// The sender of the rejected transaction.
        caller: Address,
        /// The record's controller.
        controller: Address,
    },
    /// A record's subject must be a nonzero address other than its creator (contract error
    /// `InvalidSubject`).
    #[error("{subject} cannot be a record's subject (zero address, or the record's creator)")]
    InvalidSubject {
        /// The rejected subject.
        subject: Address,
    },
    /// A bulk call got a different number of subjects than records (contract error
    /// `SubjectCountMismatch`).
    #[error("bulk call with {manifests} manifest CIDs but {subjects} subjects")]
    SubjectCountMismatch {
        /// Number of manifest CIDs.
        manifests: u64,
        /// Number of subjects.
        subjects: u64,
    },
    /// Only the authority may do this (contract error `NotAuthority`).
    #[error("only the authority {authority} can do this; {caller} tried")]
    NotAuthority {
        /// The sender of the rejected transaction.
        caller: Address,
        /// The current authority.
        authority: Address,
    },
    /// The sender is neither the authority nor an appointed registrar (contract error
    /// `NotRegistrar`).
    #[error("{caller} is neither the authority nor an appointed registrar")]
    NotRegistrar {
        /// The sender of the rejected transaction.
        caller: Address,
    },
    /// The address is not an appointed registrar, so it cannot be dismissed (contract error
    /// `UnknownRegistrar`).
    #[error("{registrar} is not an appointed registrar")]
    UnknownRegistrar {
        /// The address.
        registrar: Address,
    },
    /// Only the authority or the registrar that issued a member's current key may renew or
    /// revoke it (contract error `NotMemberRegistrar`).
    #[error(
        "{caller} cannot renew or revoke member {member}: its key was issued by {registrar} \
         (only that registrar or the authority can)"
    )]
    NotMemberRegistrar {
        /// The member.
        member: Address,
        /// The sender of the rejected transaction.
        caller: Address,
        /// The member's registrar.
        registrar: Address,
    },
    /// The address was never registered as a member (contract error `UnknownMember`).
    #[error("{member} is not a registered member")]
    UnknownMember {
        /// The address.
        member: Address,
    },
    /// The member was revoked; revocation is permanent, so it can be neither renewed nor
    /// revoked again (contract error `MemberIsRevoked`).
    #[error("member {member} was revoked (permanently)")]
    MemberRevoked {
        /// The member.
        member: Address,
    },
    /// The zero address cannot take this role (authority, registrar or member; contract
    /// error `InvalidAccount`).
    #[error("{account} cannot be the authority, a registrar or a member")]
    InvalidAccount {
        /// The rejected address.
        account: Address,
    },
    /// A stated reason (revocation, emergency access) is too long (contract error
    /// `ReasonTooLong`).
    #[error("a reason of {length} bytes is longer than the {max} bytes allowed")]
    ReasonTooLong {
        /// Its length in bytes.
        length: u64,
        /// The most allowed.
        max: u64,
    },
    /// The contract reverted with data that is not one of its declared errors (e.g. an
    /// arithmetic panic, or a contract at the address that is not a `MedsealRegistry`).
    #[error("contract reverted: 0x{}", alloy::hex::encode(.data))]
    Reverted {
        /// The raw revert data.
        data: Vec<u8>,
    },
    /// The transaction ran out of gas or halted abnormally.
    #[error("transaction halted: {reason}")]
    Halted {
        /// Why the EVM halted.
        reason: String,
    },
    /// The sender cannot pay for the transaction: its balance is below the most the
    /// transaction may cost (gas limit × max fee per gas). Checked before signing, so
    /// nothing was sent; fund `address` and retry.
    #[error(
        "account {address} cannot pay for this transaction: it holds {} ETH ({balance} wei) \
         and the transaction may cost up to {} ETH ({needed} wei); send at least {} ETH to it",
        ether(*.balance),
        ether(*.needed),
        ether(.needed.saturating_sub(*.balance))
    )]
    InsufficientFunds {
        /// The account that signs and pays.
        address: Address,
        /// Its balance, in wei.
        balance: U256,
        /// The most the transaction may cost, in wei.
        needed: U256,
    },
    /// The JSON-RPC node could not be reached, even after retrying.
    #[error(
        "Ethereum JSON-RPC node at {endpoint} is unreachable after {attempts} attempts: {source}"
    )]
    NodeUnavailable {
        /// The node URL.
        endpoint: String,
        /// How many attempts were made.
        attempts: u32,
        /// The last transport error.
        #[source]
        source: BoxError,
    },
    /// A transport-level failure that is not simply "node down" (the node answered with an
    /// error, a malformed response, ...).
    #[error("transport error: {0}")]
    Transport(#[source] BoxError),
    /// A transaction was sent but no receipt appeared in time.
    #[error("no receipt for transaction {tx_hash} after {waited_secs} s")]
    ReceiptTimeout {
        /// Hash of the transaction.
        tx_hash: B256,
        /// How long we waited.
        waited_secs: u64,
    },
    /// The configuration is invalid (bad URL, no contract at the registry address, ...).
    #[error("invalid configuration: {0}")]
    Config(String),
    /// Stored or returned chain data is inconsistent (journal checksum or hash-chain
    /// mismatch, replay divergence, an event that does not match contract storage, ...).
    #[error("chain data is corrupt: {0}")]
    Corrupt(String),
    /// An I/O error of the embedded chain's journal.
    #[error("journal I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// The EVM rejected the transaction itself (bad nonce, invalid signature, ...).
    #[error("transaction rejected: {0}")]
    InvalidTransaction(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insufficient_funds_names_the_account_and_both_amounts() {
        let error = LedgerError::InsufficientFunds {
            address: Address::repeat_byte(0xab),
            balance: U256::from(5u64) * U256::from(10u64).pow(U256::from(17u64)),
            needed: U256::from(126_779_088_684_765u64),
        };
        assert_eq!(ether(U256::ZERO), "0");
        assert_eq!(ether(U256::from(10u64).pow(U256::from(18u64))), "1");
        let text = error.to_string();
        assert!(
            text.contains(&Address::repeat_byte(0xab).to_string()),
            "{text}"
        );
        assert!(
            text.contains("holds 0.5 ETH (500000000000000000 wei)"),
            "{text}"
        );
        assert!(
            text.contains("up to 0.000126779088684765 ETH (126779088684765 wei)"),
            "{text}"
        );
        // Never a negative shortfall.
        assert!(text.ends_with("send at least 0 ETH to it"), "{text}");
    }
}
