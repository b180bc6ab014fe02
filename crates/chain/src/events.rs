//! The registry's events: the log filters that find them and their decoding into the
//! [`Ledger`](crate::Ledger)'s types.

use alloy::primitives::{Address, B256, U256, keccak256};
use alloy::sol_types::{SolEvent, SolValue};

use crate::backend::{ChainLog, LogFilter};
use crate::bindings::MedsealRegistry as R;
use crate::error::LedgerError;
use crate::error::LedgerResult;
use crate::types::{AuditEntry, AuditEvent, IndexAnchor, PublishedCapsule, RecordId};

/// Signature hashes of every event whose first indexed parameter is a record id.
pub(crate) const RECORD_EVENTS: [B256; 9] = [
    R::RecordCreated::SIGNATURE_HASH,
    R::RecordSubject::SIGNATURE_HASH,
    R::RecordUpdated::SIGNATURE_HASH,
    R::AccessGranted::SIGNATURE_HASH,
    R::AccessRevoked::SIGNATURE_HASH,
    R::AccessRequested::SIGNATURE_HASH,
    R::AccessDenied::SIGNATURE_HASH,
    R::AccessLogged::SIGNATURE_HASH,
    R::EmergencyAccess::SIGNATURE_HASH,
];

/// The topic encoding of a record id (an indexed `uint64`).
pub(crate) fn record_topic(record: RecordId) -> B256 {
    B256::from(U256::from(record.0))
}

/// Decodes `log` as event `E`; `Corrupt` if it is not one.
pub(crate) fn decode_event<E: SolEvent>(log: &ChainLog) -> LedgerResult<E> {
    E::decode_raw_log(log.topics.iter().copied(), &log.data)
        .map_err(|e| LedgerError::Corrupt(format!("cannot decode event {}: {e}", E::SIGNATURE)))
}

/// Decodes one of the [`RECORD_EVENTS`] into an audit entry.
pub(crate) fn decode_audit_entry(log: &ChainLog) -> LedgerResult<AuditEntry> {
    let signature = log
        .topics
        .first()
        .copied()
        .ok_or_else(|| LedgerError::Corrupt("registry log without topics".into()))?;
    // Decodes the log as event `$event` into `AuditEvent::$variant`, each field taken from the
    // event's field of the given name.
    macro_rules! decode {
        ($event:ident => $variant:ident { $($field:ident: $from:ident),+ }) => {{
            let e = decode_event::<R::$event>(log)?;
            (e.record, AuditEvent::$variant { $($field: e.$from),+ })
        }};
    }
    let (record, event) = match signature {
        R::RecordCreated::SIGNATURE_HASH => decode!(RecordCreated => Created {
            owner: owner, manifest_cid: manifestCid, policy_hash: policyHash
        }),
        R::RecordUpdated::SIGNATURE_HASH => decode!(RecordUpdated => Updated {
            by: by, manifest_cid: manifestCid, policy_hash: policyHash
        }),
        R::RecordSubject::SIGNATURE_HASH => decode!(RecordSubject => Subject { subject: subject }),
        R::AccessGranted::SIGNATURE_HASH => {
            decode!(AccessGranted => AccessGranted { user: user, by: by })
        }
        R::AccessRevoked::SIGNATURE_HASH => {
            decode!(AccessRevoked => AccessRevoked { user: user, by: by })
        }
        R::AccessRequested::SIGNATURE_HASH => decode!(AccessRequested => AccessRequested {
            requester: requester, approver: approver
        }),
        R::AccessDenied::SIGNATURE_HASH => {
            decode!(AccessDenied => AccessDenied { user: user, by: by })
        }
        R::AccessLogged::SIGNATURE_HASH => {
            decode!(AccessLogged => AccessLogged { accessor: accessor })
        }
        R::EmergencyAccess::SIGNATURE_HASH => decode!(EmergencyAccess => EmergencyAccess {
            accessor: accessor, reason: reason
        }),
        other => {
            return Err(LedgerError::Corrupt(format!(
                "unexpected event {other} in a record's audit trail"
            )));
        }
    };
    Ok(AuditEntry {
        record: RecordId(record),
        event,
        block_number: log.block_number,
        timestamp: log.timestamp,
        tx_hash: log.tx_hash,
    })
}

/// Events `event` of `who` for one (partition, `n`), `n` being the last batch's sequence number
/// of an anchor or the epoch of a capsule (the third indexed parameter of both events).
pub(crate) fn slot_filter(event: B256, who: Address, partition: B256, n: u64) -> LogFilter {
    LogFilter::events(&[event])
        .with_topic(0, who.into_word())
        .with_topic(1, partition)
        .with_topic(2, B256::from(U256::from(n)))
}

pub(crate) fn anchor_of(event: R::IndexAnchored, block_number: u64) -> IndexAnchor {
    IndexAnchor {
        anchorer: event.anchorer,
        partition: event.partition,
        first_seq: event.firstSeq,
        last_seq: event.lastSeq,
        shard_cid: event.shardCid,
        merkle_root: event.merkleRoot,
        block_number,
    }
}

pub(crate) fn capsule_of(event: R::CapsulePublished, block_number: u64) -> PublishedCapsule {
    PublishedCapsule {
        publisher: event.publisher,
        partition: event.partition,
        epoch: event.epoch,
        capsule_cid: event.capsuleCid,
        policy_hash: event.policyHash,
        block_number,
    }
}

/// The commitment `publishCapsule`, `createRecord(s)` and `updateRecord` store:
/// keccak256(abi.encode(keccak256(cid), policyHash)).
pub(crate) fn cid_commitment(cid: &str, policy_hash: B256) -> B256 {
    keccak256((keccak256(cid.as_bytes()), policy_hash).abi_encode())
}

/// The commitment `anchorIndex` stores: keccak256(abi.encode(merkleRoot, firstSeq)).
pub(crate) fn anchor_commitment(merkle_root: B256, first_seq: u64) -> B256 {
    keccak256((merkle_root, U256::from(first_seq)).abi_encode())
}

/// Logs sorted into chain order (block, then log index). Chains already return them so;
/// sorting again (stable, so a no-op) keeps the listings' order guarantee local.
pub(crate) fn in_chain_order(mut logs: Vec<ChainLog>) -> Vec<ChainLog> {
    logs.sort_by_key(|log| (log.block_number, log.log_index));
    logs
}
