//! Decoding of the registry's per-record events into [`AuditEntry`]s.

use alloy::primitives::{B256, U256};
use alloy::sol_types::SolEvent;

use crate::backend::ChainLog;
use crate::bindings::MedsealRegistry as R;
use crate::error::LedgerError;
use crate::ledger::LedgerResult;
use crate::types::{AuditEntry, AuditEvent, RecordId};

/// Signature hashes of every event whose first indexed parameter is a record id.
pub(crate) const RECORD_EVENTS: [B256; 7] = [
    R::RecordCreated::SIGNATURE_HASH,
    R::RecordUpdated::SIGNATURE_HASH,
    R::AccessGranted::SIGNATURE_HASH,
    R::AccessRevoked::SIGNATURE_HASH,
    R::AccessRequested::SIGNATURE_HASH,
    R::AccessDenied::SIGNATURE_HASH,
    R::AccessLogged::SIGNATURE_HASH,
];

/// The topic encoding of a record id (an indexed `uint64`).
pub(crate) fn record_topic(record: RecordId) -> B256 {
    B256::from(U256::from(record.0))
}

fn decode<E: SolEvent>(log: &ChainLog) -> LedgerResult<E> {
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
    let (record, event) = match signature {
        R::RecordCreated::SIGNATURE_HASH => {
            let e = decode::<R::RecordCreated>(log)?;
            let event = AuditEvent::Created {
                owner: e.owner,
                manifest_cid: e.manifestCid,
                policy_hash: e.policyHash.0,
            };
            (e.record, event)
        }
        R::RecordUpdated::SIGNATURE_HASH => {
            let e = decode::<R::RecordUpdated>(log)?;
            let event = AuditEvent::Updated {
                owner: e.owner,
                manifest_cid: e.manifestCid,
                policy_hash: e.policyHash.0,
            };
            (e.record, event)
        }
        R::AccessGranted::SIGNATURE_HASH => {
            let e = decode::<R::AccessGranted>(log)?;
            (e.record, AuditEvent::AccessGranted { user: e.user })
        }
        R::AccessRevoked::SIGNATURE_HASH => {
            let e = decode::<R::AccessRevoked>(log)?;
            (e.record, AuditEvent::AccessRevoked { user: e.user })
        }
        R::AccessRequested::SIGNATURE_HASH => {
            let e = decode::<R::AccessRequested>(log)?;
            let event = AuditEvent::AccessRequested {
                requester: e.requester,
                owner: e.owner,
            };
            (e.record, event)
        }
        R::AccessDenied::SIGNATURE_HASH => {
            let e = decode::<R::AccessDenied>(log)?;
            (e.record, AuditEvent::AccessDenied { user: e.user })
        }
        R::AccessLogged::SIGNATURE_HASH => {
            let e = decode::<R::AccessLogged>(log)?;
            (
                e.record,
                AuditEvent::AccessLogged {
                    accessor: e.accessor,
                },
            )
        }
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
