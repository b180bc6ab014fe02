//! The registry logic shared by every ledger: ABI encoding of calls, decoding of results and
//! events, and the event-log queries (`records_of`, `shared_with`, audit trail, capsule and
//! index-anchor listings, ...).
//!
//! Each function takes the chain as a `&dyn ContractBackend`;
//! [`impl_ledger_via_backend!`](crate::ledger_impl::impl_ledger_via_backend) turns a backend
//! into a [`Ledger`](crate::Ledger).

use std::collections::{BTreeMap, HashSet};

use alloy::primitives::{Address, B256, U256, keccak256};
use alloy::sol_types::{SolCall, SolEvent, SolValue};

use crate::backend::{ChainLog, ContractBackend, LogFilter};
use crate::bindings::MedsealRegistry as R;
use crate::error::LedgerError;
use crate::events::{decode_audit_entry, record_topic};
use crate::ledger::LedgerResult;
use crate::types::{
    AccessRequest, AccessState, AuditEntry, Capsule, CreatedRecord, IndexAnchor, RecordId,
    RecordInfo, TxReceipt,
};

fn decode_returns<C: SolCall>(output: &[u8]) -> LedgerResult<C::Return> {
    C::abi_decode_returns(output).map_err(|e| {
        LedgerError::Corrupt(format!("cannot decode the result of {}: {e}", C::SIGNATURE))
    })
}

async fn call<C: SolCall>(backend: &dyn ContractBackend, call: C) -> LedgerResult<C::Return> {
    let output = backend.call(call.abi_encode()).await?;
    decode_returns::<C>(&output)
}

async fn transact<C: SolCall>(backend: &dyn ContractBackend, call: C) -> LedgerResult<TxReceipt> {
    Ok(backend.transact(call.abi_encode()).await?.receipt)
}

fn decode_event<E: SolEvent>(log: &ChainLog) -> LedgerResult<E> {
    E::decode_raw_log(log.topics.iter().copied(), &log.data)
        .map_err(|e| LedgerError::Corrupt(format!("cannot decode event {}: {e}", E::SIGNATURE)))
}

pub(crate) async fn create_record(
    backend: &dyn ContractBackend,
    manifest_cid: &str,
    policy_hash: [u8; 32],
) -> LedgerResult<CreatedRecord> {
    let calldata = R::createRecordCall {
        manifestCid: manifest_cid.to_owned(),
        policyHash: policy_hash.into(),
    }
    .abi_encode();
    let outcome = backend.transact(calldata).await?;
    let created = outcome
        .logs
        .iter()
        .find(|log| log.topics.first() == Some(&R::RecordCreated::SIGNATURE_HASH))
        .ok_or_else(|| {
            LedgerError::Corrupt("createRecord succeeded without a RecordCreated event".into())
        })?;
    let event = decode_event::<R::RecordCreated>(created)?;
    Ok(CreatedRecord {
        record: RecordId(event.record),
        receipt: outcome.receipt,
    })
}

pub(crate) async fn update_record(
    backend: &dyn ContractBackend,
    record: RecordId,
    manifest_cid: &str,
    policy_hash: [u8; 32],
) -> LedgerResult<TxReceipt> {
    let call_data = R::updateRecordCall {
        record: record.0,
        manifestCid: manifest_cid.to_owned(),
        policyHash: policy_hash.into(),
    };
    transact(backend, call_data).await
}

pub(crate) async fn grant_access(
    backend: &dyn ContractBackend,
    record: RecordId,
    user: Address,
) -> LedgerResult<TxReceipt> {
    transact(
        backend,
        R::grantAccessCall {
            record: record.0,
            user,
        },
    )
    .await
}

pub(crate) async fn revoke_access(
    backend: &dyn ContractBackend,
    record: RecordId,
    user: Address,
) -> LedgerResult<TxReceipt> {
    transact(
        backend,
        R::revokeAccessCall {
            record: record.0,
            user,
        },
    )
    .await
}

pub(crate) async fn request_access(
    backend: &dyn ContractBackend,
    record: RecordId,
) -> LedgerResult<TxReceipt> {
    transact(backend, R::requestAccessCall { record: record.0 }).await
}

pub(crate) async fn deny_access(
    backend: &dyn ContractBackend,
    record: RecordId,
    user: Address,
) -> LedgerResult<TxReceipt> {
    transact(
        backend,
        R::denyAccessCall {
            record: record.0,
            user,
        },
    )
    .await
}

pub(crate) async fn log_access(
    backend: &dyn ContractBackend,
    record: RecordId,
) -> LedgerResult<TxReceipt> {
    transact(backend, R::logAccessCall { record: record.0 }).await
}

pub(crate) async fn anchor_index(
    backend: &dyn ContractBackend,
    partition: [u8; 32],
    shard_seq: u64,
    shard_cid: &str,
    merkle_root: [u8; 32],
) -> LedgerResult<TxReceipt> {
    let call_data = R::anchorIndexCall {
        partition: partition.into(),
        shardSeq: shard_seq,
        shardCid: shard_cid.to_owned(),
        merkleRoot: merkle_root.into(),
    };
    transact(backend, call_data).await
}

pub(crate) async fn publish_capsule(
    backend: &dyn ContractBackend,
    partition: [u8; 32],
    epoch: u64,
    capsule_cid: &str,
    policy_hash: [u8; 32],
) -> LedgerResult<TxReceipt> {
    let call_data = R::publishCapsuleCall {
        partition: partition.into(),
        epoch,
        capsuleCid: capsule_cid.to_owned(),
        policyHash: policy_hash.into(),
    };
    transact(backend, call_data).await
}

pub(crate) async fn record(
    backend: &dyn ContractBackend,
    record: RecordId,
) -> LedgerResult<RecordInfo> {
    let stored = call(backend, R::getRecordCall { record: record.0 }).await?;
    let manifest_digest: [u8; 32] = stored.manifestDigest.0;
    let policy_hash: [u8; 32] = stored.policyHash.0;
    // The full CID lives only in the event log: take the newest create/update event that
    // matches storage (a newer, non-matching one can only be an update that landed after the
    // storage read).
    let filter = LogFilter::events(&[
        R::RecordCreated::SIGNATURE_HASH,
        R::RecordUpdated::SIGNATURE_HASH,
    ])
    .with_topic(0, record_topic(record));
    let logs = backend.logs(&filter).await?;
    let mut manifest_cid = None;
    for log in logs.iter().rev() {
        let (cid, policy) = if log.topics.first() == Some(&R::RecordCreated::SIGNATURE_HASH) {
            let e = decode_event::<R::RecordCreated>(log)?;
            (e.manifestCid, e.policyHash.0)
        } else {
            let e = decode_event::<R::RecordUpdated>(log)?;
            (e.manifestCid, e.policyHash.0)
        };
        if keccak256(cid.as_bytes()).0 == manifest_digest && policy == policy_hash {
            manifest_cid = Some(cid);
            break;
        }
    }
    let manifest_cid = manifest_cid.ok_or_else(|| {
        LedgerError::Corrupt(format!(
            "record {record}: no create/update event matches the stored manifest digest"
        ))
    })?;
    Ok(RecordInfo {
        record,
        owner: stored.owner,
        created_at: stored.createdAt.to::<u64>(),
        updated_at: stored.updatedAt.to::<u64>(),
        manifest_cid,
        manifest_digest,
        policy_hash,
    })
}

pub(crate) async fn record_count(backend: &dyn ContractBackend) -> LedgerResult<u64> {
    call(backend, R::recordCountCall {}).await
}

pub(crate) async fn can_access(
    backend: &dyn ContractBackend,
    record: RecordId,
    user: Address,
) -> LedgerResult<bool> {
    call(
        backend,
        R::canAccessCall {
            record: record.0,
            user,
        },
    )
    .await
}

pub(crate) async fn access_state(
    backend: &dyn ContractBackend,
    record: RecordId,
    user: Address,
) -> LedgerResult<AccessState> {
    let raw = call(
        backend,
        R::accessStateCall {
            record: record.0,
            user,
        },
    )
    .await?;
    match raw {
        0 => Ok(AccessState::None),
        1 => Ok(AccessState::Requested),
        2 => Ok(AccessState::Granted),
        other => Err(LedgerError::Corrupt(format!(
            "accessState returned unknown value {other}"
        ))),
    }
}

pub(crate) async fn records_of(
    backend: &dyn ContractBackend,
    owner: Address,
) -> LedgerResult<Vec<RecordId>> {
    let filter =
        LogFilter::events(&[R::RecordCreated::SIGNATURE_HASH]).with_topic(1, owner.into_word());
    let logs = backend.logs(&filter).await?;
    logs.iter()
        .map(|log| Ok(RecordId(decode_event::<R::RecordCreated>(log)?.record)))
        .collect()
}

pub(crate) async fn shared_with(
    backend: &dyn ContractBackend,
    user: Address,
) -> LedgerResult<Vec<RecordId>> {
    // Replaying grants and revocations in chain order reproduces the Granted bit exactly:
    // the contract changes it only in grantAccess / revokeAccess, and both always emit.
    let filter = LogFilter::events(&[
        R::AccessGranted::SIGNATURE_HASH,
        R::AccessRevoked::SIGNATURE_HASH,
    ])
    .with_topic(1, user.into_word());
    let mut granted: BTreeMap<u64, bool> = BTreeMap::new();
    for log in backend.logs(&filter).await? {
        if log.topics.first() == Some(&R::AccessGranted::SIGNATURE_HASH) {
            granted.insert(decode_event::<R::AccessGranted>(&log)?.record, true);
        } else {
            granted.insert(decode_event::<R::AccessRevoked>(&log)?.record, false);
        }
    }
    Ok(granted
        .into_iter()
        .filter(|(_, is_granted)| *is_granted)
        .map(|(record, _)| RecordId(record))
        .collect())
}

pub(crate) async fn pending_requests(
    backend: &dyn ContractBackend,
    owner: Address,
) -> LedgerResult<Vec<AccessRequest>> {
    let filter =
        LogFilter::events(&[R::AccessRequested::SIGNATURE_HASH]).with_topic(2, owner.into_word());
    let mut seen = HashSet::new();
    let mut pending = Vec::new();
    for log in backend.logs(&filter).await? {
        let event = decode_event::<R::AccessRequested>(&log)?;
        let request = AccessRequest {
            record: RecordId(event.record),
            requester: event.requester,
        };
        if !seen.insert(request) {
            continue;
        }
        // Grant and deny both answer a request; storage says whether it is still open.
        if access_state(backend, request.record, request.requester).await? == AccessState::Requested
        {
            pending.push(request);
        }
    }
    Ok(pending)
}

pub(crate) async fn audit_trail(
    backend: &dyn ContractBackend,
    record: RecordId,
) -> LedgerResult<Vec<AuditEntry>> {
    let filter =
        LogFilter::events(&crate::events::RECORD_EVENTS).with_topic(0, record_topic(record));
    backend
        .logs(&filter)
        .await?
        .iter()
        .map(decode_audit_entry)
        .collect()
}

/// Events of `who` for one (partition, n), `n` being the shard sequence number of an anchor or
/// the epoch of a capsule (the third indexed parameter of both events).
fn slot_filter(event: B256, who: Address, partition: [u8; 32], n: u64) -> LogFilter {
    LogFilter::events(&[event])
        .with_topic(0, who.into_word())
        .with_topic(1, B256::from(partition))
        .with_topic(2, B256::from(U256::from(n)))
}

fn anchor_of(event: R::IndexAnchored, block_number: u64) -> IndexAnchor {
    IndexAnchor {
        anchorer: event.anchorer,
        partition: event.partition.0,
        shard_seq: event.shardSeq,
        shard_cid: event.shardCid,
        merkle_root: event.merkleRoot.0,
        block_number,
    }
}

fn capsule_of(event: R::CapsulePublished, block_number: u64) -> Capsule {
    Capsule {
        publisher: event.publisher,
        partition: event.partition.0,
        epoch: event.epoch,
        capsule_cid: event.capsuleCid,
        policy_hash: event.policyHash.0,
        block_number,
    }
}

/// The event `E` of `who` for (`partition`, `n`) (see [`slot_filter`]) that matches what
/// contract storage holds (`matches`), with its block number; `Corrupt` if storage has a value
/// no event explains.
async fn stored_event<E: SolEvent>(
    backend: &dyn ContractBackend,
    who: Address,
    partition: [u8; 32],
    n: u64,
    matches: impl Fn(&E) -> bool,
) -> LedgerResult<(E, u64)> {
    let filter = slot_filter(E::SIGNATURE_HASH, who, partition, n);
    for log in backend.logs(&filter).await? {
        let event = decode_event::<E>(&log)?;
        if matches(&event) {
            return Ok((event, log.block_number));
        }
    }
    Err(LedgerError::Corrupt(format!(
        "stored value of {who} for slot {n} has no matching {} event",
        E::SIGNATURE
    )))
}

pub(crate) async fn index_anchor(
    backend: &dyn ContractBackend,
    anchorer: Address,
    partition: [u8; 32],
    shard_seq: u64,
) -> LedgerResult<Option<IndexAnchor>> {
    let root = call(
        backend,
        R::anchoredRootCall {
            anchorer,
            partition: partition.into(),
            shardSeq: shard_seq,
        },
    )
    .await?;
    if root.is_zero() {
        return Ok(None);
    }
    let (event, block) =
        stored_event::<R::IndexAnchored>(backend, anchorer, partition, shard_seq, |e| {
            e.merkleRoot == root
        })
        .await?;
    Ok(Some(anchor_of(event, block)))
}

/// The commitment `publishCapsule` stores: keccak256(abi.encode(keccak256(cid), policyHash)).
pub(crate) fn capsule_commitment(capsule_cid: &str, policy_hash: [u8; 32]) -> B256 {
    keccak256((keccak256(capsule_cid.as_bytes()), B256::from(policy_hash)).abi_encode())
}

pub(crate) async fn capsule(
    backend: &dyn ContractBackend,
    publisher: Address,
    partition: [u8; 32],
    epoch: u64,
) -> LedgerResult<Option<Capsule>> {
    let commitment = call(
        backend,
        R::capsuleCommitmentCall {
            publisher,
            partition: partition.into(),
            epoch,
        },
    )
    .await?;
    if commitment.is_zero() {
        return Ok(None);
    }
    let (event, block) =
        stored_event::<R::CapsulePublished>(backend, publisher, partition, epoch, |e| {
            capsule_commitment(&e.capsuleCid, e.policyHash.0) == commitment
        })
        .await?;
    Ok(Some(capsule_of(event, block)))
}

/// Logs sorted into chain order (block, then log index). Backends already return them so;
/// sorting again (stable, so a no-op) keeps the listings' order guarantee local.
fn in_chain_order(mut logs: Vec<ChainLog>) -> Vec<ChainLog> {
    logs.sort_by_key(|log| (log.block_number, log.log_index));
    logs
}

pub(crate) async fn capsules(
    backend: &dyn ContractBackend,
    publisher: Option<Address>,
) -> LedgerResult<Vec<Capsule>> {
    let mut filter = LogFilter::events(&[R::CapsulePublished::SIGNATURE_HASH]);
    if let Some(publisher) = publisher {
        filter = filter.with_topic(0, publisher.into_word());
    }
    let mut seen = HashSet::new();
    let mut capsules = Vec::new();
    for log in in_chain_order(backend.logs(&filter).await?) {
        let event = decode_event::<R::CapsulePublished>(&log)?;
        if let Some(wanted) = publisher.filter(|p| *p != event.publisher) {
            return Err(LedgerError::Corrupt(format!(
                "CapsulePublished log of {} returned for publisher filter {wanted}",
                event.publisher
            )));
        }
        if !seen.insert((event.publisher, event.partition, event.epoch)) {
            return Err(LedgerError::Corrupt(format!(
                "two CapsulePublished events of {} for partition {} epoch {}",
                event.publisher, event.partition, event.epoch
            )));
        }
        capsules.push(capsule_of(event, log.block_number));
    }
    Ok(capsules)
}

pub(crate) async fn index_anchors(
    backend: &dyn ContractBackend,
    anchorer: Address,
    partition: [u8; 32],
) -> LedgerResult<Vec<IndexAnchor>> {
    let filter = LogFilter::events(&[R::IndexAnchored::SIGNATURE_HASH])
        .with_topic(0, anchorer.into_word())
        .with_topic(1, B256::from(partition));
    let mut by_seq: BTreeMap<u64, IndexAnchor> = BTreeMap::new();
    for log in in_chain_order(backend.logs(&filter).await?) {
        let event = decode_event::<R::IndexAnchored>(&log)?;
        if event.anchorer != anchorer || event.partition.0 != partition {
            return Err(LedgerError::Corrupt(format!(
                "IndexAnchored log of {} / {} returned for filter {anchorer} / {}",
                event.anchorer,
                event.partition,
                B256::from(partition)
            )));
        }
        let shard_seq = event.shardSeq;
        if by_seq
            .insert(shard_seq, anchor_of(event, log.block_number))
            .is_some()
        {
            return Err(LedgerError::Corrupt(format!(
                "two IndexAnchored events of {anchorer} for partition {} shard {shard_seq}",
                B256::from(partition),
            )));
        }
    }
    Ok(by_seq.into_values().collect())
}
