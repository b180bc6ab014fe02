//! The ledger conformance suite: the same behavioural tests for every [`Ledger`]
//! implementation. A test file provides an async `setup() -> Option<Harness>` (None = skip) and
//! invokes [`conformance_suite!`].

use std::sync::Arc;

use medseal_chain::dev_keys::anvil_dev_signer;
use medseal_chain::gas_report;
use medseal_chain::{
    AccessRequest, AccessState, Address, AuditEvent, B256, HeadCheck, IndexAnchor, Ledger,
    LedgerError, PublishedCapsule, RecordId, TxReceipt,
};

/// Three accounts on one freshly deployed registry.
pub struct Harness {
    /// Deployer; owns most records.
    pub owner: Arc<dyn Ledger>,
    /// A second user.
    pub alice: Arc<dyn Ledger>,
    /// A third user.
    pub bob: Arc<dyn Ledger>,
    /// Held for the duration of the test (e.g. to serialise tests sharing one node).
    pub _guard: Option<Box<dyn Send>>,
}

fn digest(byte: u8) -> B256 {
    B256::repeat_byte(byte)
}

fn cid(label: &str) -> String {
    gas_report::sample_cid(label, 0)
}

macro_rules! assert_err {
    ($result:expr, $pattern:pat $(if $guard:expr)?) => {
        match $result {
            Err($pattern) $(if $guard)? => {}
            other => panic!("expected {}, got {:?}", stringify!($pattern), other),
        }
    };
}

pub async fn create_and_read_record(h: Harness) {
    let manifest = cid("manifest");
    let created = h.owner.create_record(&manifest, digest(1)).await.unwrap();
    assert_eq!(created.record, RecordId(1));
    assert!(created.receipt.gas_used > 21_000);
    assert!(created.receipt.block_number > 0);

    let info = h.alice.record(created.record).await.unwrap();
    assert_eq!(info.record, created.record);
    assert_eq!(info.owner, h.owner.sender());
    assert_eq!(info.manifest_cid, manifest);
    assert_eq!(
        info.manifest_digest,
        alloy::primitives::keccak256(manifest.as_bytes())
    );
    assert_eq!(info.policy_hash, digest(1));
    assert!(info.created_at > 0);
    assert_eq!(info.created_at, info.updated_at);

    let second = h
        .alice
        .create_record(&cid("other"), digest(2))
        .await
        .unwrap();
    assert_eq!(second.record, RecordId(2));
    assert!(second.receipt.block_number > created.receipt.block_number);
    assert_eq!(h.bob.record_count().await.unwrap(), 2);
    assert_eq!(
        h.bob.record(second.record).await.unwrap().owner,
        h.alice.sender()
    );
}

pub async fn create_records_in_bulk(h: Harness) {
    h.alice
        .create_record(&cid("before"), digest(9))
        .await
        .unwrap();
    let batch: Vec<(String, B256)> = (0..5u8)
        .map(|i| (cid(&format!("bulk-{i}")), digest(10 + i % 2)))
        .collect();
    let created = h.owner.create_records(&batch).await.unwrap();
    assert_eq!(
        created.records,
        (2..7).map(RecordId).collect::<Vec<_>>(),
        "consecutive ids in request order"
    );
    for (id, (manifest, policy)) in created.records.iter().zip(&batch) {
        let info = h.bob.record(*id).await.unwrap();
        assert_eq!(
            (&info.manifest_cid, info.policy_hash, info.owner),
            (manifest, *policy, h.owner.sender())
        );
    }
    assert_eq!(
        h.bob.records_of(h.owner.sender()).await.unwrap(),
        created.records
    );
    // Ownership of a whole list in one call: the first record not owned, if any.
    let owner = h.owner.sender();
    assert_eq!(
        h.bob
            .first_not_owned_by(owner, &created.records)
            .await
            .unwrap(),
        None
    );
    assert_eq!(h.bob.first_not_owned_by(owner, &[]).await.unwrap(), None);
    let mixed = [RecordId(3), RecordId(1), RecordId(4)];
    assert_eq!(
        h.bob.first_not_owned_by(owner, &mixed).await.unwrap(),
        Some(RecordId(1))
    );
    assert_eq!(
        h.bob
            .first_not_owned_by(owner, &[RecordId(2), RecordId(99)])
            .await
            .unwrap(),
        Some(RecordId(99))
    );
    // Several owners in one call: the first group with a record its owner does not own.
    let first_owner = h.bob.record(RecordId(1)).await.unwrap().owner;
    assert_ne!(first_owner, owner);
    assert_eq!(h.bob.first_not_owned_by_all(&[]).await.unwrap(), None);
    let groups = vec![
        (owner, vec![RecordId(2), RecordId(3)]),
        (first_owner, vec![RecordId(1)]),
        (owner, vec![RecordId(6)]),
    ];
    assert_eq!(h.bob.first_not_owned_by_all(&groups).await.unwrap(), None);
    let mut swapped = groups.clone();
    swapped[2].1 = vec![RecordId(5), RecordId(1)];
    assert_eq!(
        h.bob.first_not_owned_by_all(&swapped).await.unwrap(),
        Some((2, RecordId(1)))
    );
    swapped[1].1 = vec![RecordId(1), RecordId(99)];
    assert_eq!(
        h.bob.first_not_owned_by_all(&swapped).await.unwrap(),
        Some((1, RecordId(99)))
    );
    // Nothing of a rejected batch is created.
    let mut bad = batch.clone();
    bad[3].0.clear();
    assert_err!(
        h.owner.create_records(&bad).await,
        LedgerError::EmptyField { field } if field == "manifestCid"
    );
    assert_err!(
        h.owner.create_records(&[]).await,
        LedgerError::EmptyField { field } if field == "manifestCids"
    );
    assert_eq!(h.bob.record_count().await.unwrap(), 6);
}

pub async fn create_rejects_empty_fields(h: Harness) {
    assert_err!(
        h.owner.create_record("", digest(1)).await,
        LedgerError::EmptyField { field } if field == "manifestCid"
    );
    assert_err!(
        h.owner.create_record(&cid("m"), B256::ZERO).await,
        LedgerError::EmptyField { field } if field == "policyHash"
    );
    assert_eq!(h.owner.record_count().await.unwrap(), 0);
    assert!(
        h.owner
            .records_of(h.owner.sender())
            .await
            .unwrap()
            .is_empty()
    );
}

pub async fn unknown_records_are_typed_errors(h: Harness) {
    let missing = RecordId(42);
    let alice = h.alice.sender();
    assert_err!(h.owner.record(missing).await, LedgerError::UnknownRecord { record } if record == missing);
    assert_err!(
        h.owner.grant_access(missing, alice).await,
        LedgerError::UnknownRecord { .. }
    );
    assert_err!(
        h.owner.revoke_access(missing, alice).await,
        LedgerError::UnknownRecord { .. }
    );
    assert_err!(
        h.owner.deny_access(missing, alice).await,
        LedgerError::UnknownRecord { .. }
    );
    assert_err!(
        h.alice.request_access(missing).await,
        LedgerError::UnknownRecord { .. }
    );
    assert_err!(
        h.alice.log_access(missing).await,
        LedgerError::UnknownRecord { .. }
    );
    assert_err!(
        h.alice.can_access(missing, alice).await,
        LedgerError::UnknownRecord { .. }
    );
    assert_err!(
        h.alice.access_state(missing, alice).await,
        LedgerError::UnknownRecord { .. }
    );
    assert_err!(
        h.owner.update_record(missing, &cid("m"), digest(1)).await,
        LedgerError::UnknownRecord { .. }
    );
}

pub async fn only_the_owner_manages_a_record(h: Harness) {
    let record = h
        .owner
        .create_record(&cid("m"), digest(1))
        .await
        .unwrap()
        .record;
    let (alice, bob) = (h.alice.sender(), h.bob.sender());
    // Without a subject, the owner is the record's controller.
    let owner = h.owner.sender();
    assert_eq!(h.bob.controller(record).await.unwrap(), owner);
    assert_eq!(h.bob.record(record).await.unwrap().subject, None);
    assert_err!(
        h.alice.grant_access(record, bob).await,
        LedgerError::NotController { record: r, caller, controller }
            if r == record && caller == alice && controller == owner
    );
    assert_err!(
        h.alice.grant_access(record, alice).await,
        LedgerError::NotController { .. }
    );
    assert_err!(
        h.alice.revoke_access(record, bob).await,
        LedgerError::NotController { .. }
    );
    assert_err!(
        h.alice.deny_access(record, bob).await,
        LedgerError::NotController { .. }
    );
    assert_err!(
        h.alice.update_record(record, &cid("evil"), digest(9)).await,
        LedgerError::NotOwner { .. }
    );
    // Nothing changed.
    assert!(!h.owner.can_access(record, bob).await.unwrap());
    assert!(!h.owner.can_access(record, alice).await.unwrap());
    assert_eq!(h.owner.record(record).await.unwrap().manifest_cid, cid("m"));
    assert_eq!(h.owner.audit_trail(record).await.unwrap().len(), 1);
}

pub async fn grant_and_revoke(h: Harness) {
    let record = h
        .owner
        .create_record(&cid("m"), digest(1))
        .await
        .unwrap()
        .record;
    let (owner, alice, bob) = (h.owner.sender(), h.alice.sender(), h.bob.sender());
    assert!(h.owner.can_access(record, owner).await.unwrap());
    assert!(!h.owner.can_access(record, alice).await.unwrap());

    let receipt = h.owner.grant_access(record, alice).await.unwrap();
    assert!(receipt.gas_used > 21_000);
    assert!(h.bob.can_access(record, alice).await.unwrap());
    assert!(!h.bob.can_access(record, bob).await.unwrap());
    assert_eq!(
        h.bob.access_state(record, alice).await.unwrap(),
        AccessState::Granted
    );
    assert_eq!(h.bob.shared_with(alice).await.unwrap(), vec![record]);
    assert_err!(
        h.owner.grant_access(record, alice).await,
        LedgerError::AlreadyGranted { record: r, user } if r == record && user == alice
    );
    assert_err!(h.owner.grant_access(record, owner).await, LedgerError::InvalidUser { user } if user == owner);
    assert_err!(
        h.owner.grant_access(record, Address::ZERO).await,
        LedgerError::InvalidUser { .. }
    );

    h.owner.revoke_access(record, alice).await.unwrap();
    assert!(!h.bob.can_access(record, alice).await.unwrap());
    assert_eq!(
        h.bob.access_state(record, alice).await.unwrap(),
        AccessState::None
    );
    assert!(h.bob.shared_with(alice).await.unwrap().is_empty());
    assert_err!(
        h.owner.revoke_access(record, alice).await,
        LedgerError::NotGranted { record: r, user } if r == record && user == alice
    );
    assert_err!(
        h.owner.revoke_access(record, bob).await,
        LedgerError::NotGranted { .. }
    );

    // Re-granting after a revocation works.
    h.owner.grant_access(record, alice).await.unwrap();
    assert!(h.alice.can_access(record, alice).await.unwrap());
}

pub async fn request_deny_and_grant(h: Harness) {
    let record = h
        .owner
        .create_record(&cid("m"), digest(1))
        .await
        .unwrap()
        .record;
    let (owner, alice) = (h.owner.sender(), h.alice.sender());
    let pending = AccessRequest {
        record,
        requester: alice,
    };

    h.alice.request_access(record).await.unwrap();
    assert_eq!(
        h.owner.access_state(record, alice).await.unwrap(),
        AccessState::Requested
    );
    assert!(!h.owner.can_access(record, alice).await.unwrap());
    assert_eq!(
        h.owner.pending_requests(owner).await.unwrap(),
        vec![pending]
    );
    assert!(h.owner.pending_requests(alice).await.unwrap().is_empty());
    assert_err!(
        h.alice.request_access(record).await,
        LedgerError::AlreadyRequested { record: r, user } if r == record && user == alice
    );
    assert_err!(h.owner.request_access(record).await, LedgerError::InvalidUser { user } if user == owner);

    h.owner.deny_access(record, alice).await.unwrap();
    assert_eq!(
        h.owner.access_state(record, alice).await.unwrap(),
        AccessState::None
    );
    assert!(h.owner.pending_requests(owner).await.unwrap().is_empty());
    assert_err!(
        h.owner.deny_access(record, alice).await,
        LedgerError::NoPendingRequest { record: r, user } if r == record && user == alice
    );

    // Ask again; this time the owner grants.
    h.alice.request_access(record).await.unwrap();
    assert_eq!(
        h.owner.pending_requests(owner).await.unwrap(),
        vec![pending]
    );
    h.owner.grant_access(record, alice).await.unwrap();
    assert_eq!(
        h.owner.access_state(record, alice).await.unwrap(),
        AccessState::Granted
    );
    assert!(h.owner.pending_requests(owner).await.unwrap().is_empty());
    assert_err!(
        h.alice.request_access(record).await,
        LedgerError::AlreadyGranted { .. }
    );
    assert_err!(
        h.owner.deny_access(record, alice).await,
        LedgerError::NoPendingRequest { .. }
    );
}

pub async fn logging_access_requires_access(h: Harness) {
    let record = h
        .owner
        .create_record(&cid("m"), digest(1))
        .await
        .unwrap()
        .record;
    let (alice, bob) = (h.alice.sender(), h.bob.sender());
    assert_err!(
        h.bob.log_access(record).await,
        LedgerError::NotAuthorized { record: r, caller } if r == record && caller == bob
    );
    h.owner.log_access(record).await.unwrap();
    h.owner.grant_access(record, alice).await.unwrap();
    h.alice.log_access(record).await.unwrap();
    h.owner.revoke_access(record, alice).await.unwrap();
    assert_err!(
        h.alice.log_access(record).await,
        LedgerError::NotAuthorized { .. }
    );
}

pub async fn audit_trail_has_every_change_in_order(h: Harness) {
    let (owner, alice, bob) = (h.owner.sender(), h.alice.sender(), h.bob.sender());
    let created = h.owner.create_record(&cid("v1"), digest(1)).await.unwrap();
    let record = created.record;
    // Another record's events must not leak into this trail.
    let other = h
        .owner
        .create_record(&cid("other"), digest(3))
        .await
        .unwrap()
        .record;
    h.owner.grant_access(other, bob).await.unwrap();

    let mut receipts = vec![created.receipt];
    receipts.push(h.alice.request_access(record).await.unwrap());
    receipts.push(h.owner.grant_access(record, alice).await.unwrap());
    receipts.push(h.alice.log_access(record).await.unwrap());
    receipts.push(
        h.owner
            .update_record(record, &cid("v2"), digest(2))
            .await
            .unwrap(),
    );
    receipts.push(h.bob.request_access(record).await.unwrap());
    receipts.push(h.owner.deny_access(record, bob).await.unwrap());
    receipts.push(h.owner.revoke_access(record, alice).await.unwrap());
    // Failed calls leave no trace.
    let _ = h.bob.log_access(record).await.unwrap_err();

    let trail = h.bob.audit_trail(record).await.unwrap();
    let events: Vec<AuditEvent> = trail.iter().map(|e| e.event.clone()).collect();
    assert_eq!(
        events,
        vec![
            AuditEvent::Created {
                owner,
                manifest_cid: cid("v1"),
                policy_hash: digest(1)
            },
            AuditEvent::AccessRequested {
                requester: alice,
                approver: owner
            },
            AuditEvent::AccessGranted {
                user: alice,
                by: owner
            },
            AuditEvent::AccessLogged { accessor: alice },
            AuditEvent::Updated {
                by: owner,
                manifest_cid: cid("v2"),
                policy_hash: digest(2)
            },
            AuditEvent::AccessRequested {
                requester: bob,
                approver: owner
            },
            AuditEvent::AccessDenied {
                user: bob,
                by: owner
            },
            AuditEvent::AccessRevoked {
                user: alice,
                by: owner
            },
        ]
    );
    for (entry, receipt) in trail.iter().zip(&receipts) {
        assert_eq!(entry.record, record);
        assert_eq!(entry.tx_hash, receipt.tx_hash);
        assert_eq!(entry.block_number, receipt.block_number);
        assert!(entry.timestamp > 0);
    }
    assert!(
        trail
            .windows(2)
            .all(|w| w[0].block_number < w[1].block_number && w[0].timestamp <= w[1].timestamp)
    );
    let info = h.owner.record(record).await.unwrap();
    assert_eq!(info.manifest_cid, cid("v2"));
    assert_eq!(info.policy_hash, digest(2));
    assert!(info.updated_at >= info.created_at);
}

pub async fn update_record_validates_fields(h: Harness) {
    let record = h
        .owner
        .create_record(&cid("v1"), digest(1))
        .await
        .unwrap()
        .record;
    assert_err!(
        h.owner.update_record(record, "", digest(1)).await,
        LedgerError::EmptyField { field } if field == "manifestCid"
    );
    assert_err!(
        h.owner.update_record(record, &cid("v2"), B256::ZERO).await,
        LedgerError::EmptyField { field } if field == "policyHash"
    );
    h.owner
        .update_record(record, &cid("v2"), digest(5))
        .await
        .unwrap();
    h.owner
        .update_record(record, &cid("v3"), digest(6))
        .await
        .unwrap();
    let info = h.alice.record(record).await.unwrap();
    assert_eq!(
        (info.manifest_cid, info.policy_hash),
        (cid("v3"), digest(6))
    );
}

pub async fn records_of_and_shared_with_follow_the_events(h: Harness) {
    let (owner, alice, bob) = (h.owner.sender(), h.alice.sender(), h.bob.sender());
    let mut mine = Vec::new();
    for i in 0..3 {
        mine.push(
            h.owner
                .create_record(&cid(&format!("o{i}")), digest(1))
                .await
                .unwrap()
                .record,
        );
    }
    let alices = h
        .alice
        .create_record(&cid("a"), digest(1))
        .await
        .unwrap()
        .record;
    assert_eq!(h.bob.records_of(owner).await.unwrap(), mine);
    assert_eq!(h.bob.records_of(alice).await.unwrap(), vec![alices]);
    assert!(h.bob.records_of(bob).await.unwrap().is_empty());

    h.owner.grant_access(mine[2], bob).await.unwrap();
    h.owner.grant_access(mine[0], bob).await.unwrap();
    h.alice.grant_access(alices, bob).await.unwrap();
    h.owner.grant_access(mine[1], alice).await.unwrap();
    h.owner.revoke_access(mine[0], bob).await.unwrap();
    h.owner.grant_access(mine[0], bob).await.unwrap();
    h.owner.revoke_access(mine[2], bob).await.unwrap();

    let shared = h.owner.shared_with(bob).await.unwrap();
    assert_eq!(shared, vec![mine[0], alices]);
    assert_eq!(h.owner.shared_with(alice).await.unwrap(), vec![mine[1]]);
    assert!(h.owner.shared_with(owner).await.unwrap().is_empty());
    // The event-derived answer agrees with contract storage for every record.
    let count = h.owner.record_count().await.unwrap();
    for id in 1..=count {
        let record = RecordId(id);
        let granted = h.owner.access_state(record, bob).await.unwrap() == AccessState::Granted;
        assert_eq!(granted, shared.contains(&record), "record {record}");
    }
}

pub async fn index_anchors_are_write_once_and_in_order(h: Harness) {
    let (owner, alice) = (h.owner.sender(), h.alice.sender());
    let partition = digest(0xaa);
    let shard = cid("shard");
    assert_eq!(
        h.owner.index_anchor(owner, partition, 0).await.unwrap(),
        None
    );
    assert_eq!(h.bob.index_head(owner, partition).await.unwrap(), 0);
    // Batch 1 cannot come before batch 0.
    assert_err!(
        h.owner.anchor_index(partition, 1, 1, &shard, digest(7)).await,
        LedgerError::AnchorOutOfOrder { anchorer, first_seq: 1, last_seq: 1, .. } if anchorer == owner
    );
    h.owner
        .anchor_index(partition, 0, 0, &shard, digest(7))
        .await
        .unwrap();
    let anchor = h
        .bob
        .index_anchor(owner, partition, 0)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(anchor.anchorer, owner);
    assert_eq!(anchor.partition, partition);
    assert_eq!((anchor.first_seq, anchor.last_seq), (0, 0));
    assert_eq!(anchor.shard_cid, shard);
    assert_eq!(anchor.merkle_root, digest(7));
    assert!(anchor.block_number > 0);
    assert_eq!(h.bob.index_head(owner, partition).await.unwrap(), 1);

    assert_err!(
        h.owner.anchor_index(partition, 0, 0, &shard, digest(8)).await,
        LedgerError::AlreadyAnchored { anchorer, partition: p, last_seq: 0 } if anchorer == owner && p == partition
    );
    assert_err!(
        h.owner.anchor_index(partition, 1, 1, "", digest(8)).await,
        LedgerError::EmptyField { field } if field == "shardCid"
    );
    assert_err!(
        h.owner.anchor_index(partition, 1, 1, &shard, B256::ZERO).await,
        LedgerError::EmptyField { field } if field == "merkleRoot"
    );
    assert_err!(
        h.owner
            .anchor_index(partition, 2, 1, &shard, digest(8))
            .await,
        LedgerError::AnchorOutOfOrder {
            first_seq: 2,
            last_seq: 1,
            ..
        }
    );
    // Batch 1 merged with batch 0 supersedes the first anchor, which stays readable.
    h.owner
        .anchor_index(partition, 0, 1, &cid("s01"), digest(8))
        .await
        .unwrap();
    let merged = h
        .bob
        .index_anchor(owner, partition, 1)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((merged.first_seq, merged.last_seq), (0, 1));
    assert_eq!(
        h.bob.live_index_anchors(owner, partition).await.unwrap(),
        vec![merged.clone()]
    );
    assert_eq!(
        h.bob.index_anchors(owner, partition).await.unwrap(),
        vec![anchor, merged]
    );
    // Other partitions and anchorers are independent.
    h.owner
        .anchor_index(digest(0xbb), 0, 0, &cid("s3"), digest(9))
        .await
        .unwrap();
    h.alice
        .anchor_index(partition, 0, 0, &cid("s4"), digest(10))
        .await
        .unwrap();
    assert_eq!(
        h.bob
            .index_anchor(alice, partition, 0)
            .await
            .unwrap()
            .unwrap()
            .merkle_root,
        digest(10)
    );
    assert_eq!(h.bob.index_anchor(alice, partition, 1).await.unwrap(), None);
    assert_eq!(h.bob.index_head(alice, partition).await.unwrap(), 1);
    assert_eq!(h.bob.index_head(owner, partition).await.unwrap(), 2);
    assert_eq!(h.bob.index_head(owner, digest(0xbb)).await.unwrap(), 1);
}

pub async fn capsules_are_write_once(h: Harness) {
    let owner = h.owner.sender();
    let partition = digest(0xcc);
    assert_eq!(h.owner.capsule(owner, partition, 3).await.unwrap(), None);
    h.owner
        .publish_capsule(partition, 3, &cid("cap"), digest(4))
        .await
        .unwrap();
    let capsule = h.alice.capsule(owner, partition, 3).await.unwrap().unwrap();
    assert_eq!(capsule.publisher, owner);
    assert_eq!(capsule.capsule_cid, cid("cap"));
    assert_eq!(capsule.policy_hash, digest(4));
    assert_eq!(capsule.epoch, 3);
    assert_err!(
        h.owner.publish_capsule(partition, 3, &cid("cap2"), digest(4)).await,
        LedgerError::AlreadyPublished { publisher, epoch: 3, .. } if publisher == owner
    );
    assert_err!(
        h.owner.publish_capsule(partition, 4, "", digest(4)).await,
        LedgerError::EmptyField { field } if field == "capsuleCid"
    );
    assert_err!(
        h.owner.publish_capsule(partition, 4, &cid("c"), B256::ZERO).await,
        LedgerError::EmptyField { field } if field == "policyHash"
    );
    h.alice
        .publish_capsule(partition, 3, &cid("alice-cap"), digest(5))
        .await
        .unwrap();
    assert_eq!(
        h.owner
            .capsule(h.alice.sender(), partition, 3)
            .await
            .unwrap()
            .unwrap()
            .capsule_cid,
        cid("alice-cap")
    );
}

pub async fn for_signer_acts_as_another_account_on_the_same_state(h: Harness) {
    let owner = h.owner.sender();
    let carol_key = anvil_dev_signer(3).unwrap();
    let carol_address = carol_key.address();
    assert!(![owner, h.alice.sender(), h.bob.sender()].contains(&carol_address));
    let carol = h.owner.for_signer(carol_key);
    assert_eq!(carol.sender(), carol_address);
    assert_eq!(carol.registry_address(), h.owner.registry_address());
    // The original handle is unaffected.
    assert_eq!(h.owner.sender(), owner);

    // Carol sees state written through the other handles ...
    let record = h
        .owner
        .create_record(&cid("m"), digest(1))
        .await
        .unwrap()
        .record;
    assert_eq!(carol.record_count().await.unwrap(), 1);
    assert_eq!(carol.record(record).await.unwrap().owner, owner);

    // ... and her transactions are signed as, and recorded for, her address.
    let receipt = carol.request_access(record).await.unwrap();
    assert_eq!(
        h.owner.access_state(record, carol_address).await.unwrap(),
        AccessState::Requested
    );
    assert_eq!(
        h.owner.pending_requests(owner).await.unwrap(),
        vec![AccessRequest {
            record,
            requester: carol_address
        }]
    );
    let trail = h.alice.audit_trail(record).await.unwrap();
    let last = trail.last().unwrap();
    assert_eq!(
        last.event,
        AuditEvent::AccessRequested {
            requester: carol_address,
            approver: owner
        }
    );
    assert_eq!(last.tx_hash, receipt.tx_hash);
    assert_err!(
        carol.grant_access(record, carol_address).await,
        LedgerError::NotController { record: r, caller, .. } if r == record && caller == carol_address
    );

    // Her own record is hers; the owner can answer her request.
    let hers = carol
        .create_record(&cid("carol"), digest(2))
        .await
        .unwrap()
        .record;
    assert_eq!(h.bob.records_of(carol_address).await.unwrap(), vec![hers]);
    assert_eq!(h.bob.record(hers).await.unwrap().owner, carol_address);
    h.owner.grant_access(record, carol_address).await.unwrap();
    assert!(carol.can_access(record, carol_address).await.unwrap());
    carol.log_access(record).await.unwrap();

    // Handles derive from handles, and can go back to an account already in use.
    let back = carol.for_signer(anvil_dev_signer(2).unwrap());
    assert_eq!(back.sender(), anvil_dev_signer(2).unwrap().address());
    assert_eq!(back.record_count().await.unwrap(), 2);
}

fn expected_capsule(
    publisher: Address,
    partition: B256,
    epoch: u64,
    label: &str,
    policy: u8,
    receipt: TxReceipt,
) -> PublishedCapsule {
    PublishedCapsule {
        publisher,
        partition,
        epoch,
        capsule_cid: cid(label),
        policy_hash: digest(policy),
        block_number: receipt.block_number,
    }
}

pub async fn capsules_lists_every_publication_in_chain_order(h: Harness) {
    let (owner, alice, bob) = (h.owner.sender(), h.alice.sender(), h.bob.sender());
    assert!(h.bob.capsules(None).await.unwrap().is_empty());
    assert!(h.bob.capsules(Some(owner)).await.unwrap().is_empty());

    let (p1, p2) = (digest(0x11), digest(0x22));
    // (publisher ledger, partition, epoch, cid label, policy byte), published in this order;
    // epochs deliberately not ascending.
    let plan = [
        (&h.owner, p1, 0, "o-p1-0", 1),
        (&h.alice, p1, 0, "a-p1-0", 2),
        (&h.owner, p2, 5, "o-p2-5", 3),
        (&h.alice, p2, 1, "a-p2-1", 4),
        (&h.owner, p1, 1, "o-p1-1", 5),
    ];
    let mut expected = Vec::new();
    for (ledger, partition, epoch, label, policy) in plan {
        let receipt = ledger
            .publish_capsule(partition, epoch, &cid(label), digest(policy))
            .await
            .unwrap();
        expected.push(expected_capsule(
            ledger.sender(),
            partition,
            epoch,
            label,
            policy,
            receipt,
        ));
    }
    // A rejected publication leaves no trace.
    assert_err!(
        h.alice
            .publish_capsule(p2, 1, &cid("again"), digest(6))
            .await,
        LedgerError::AlreadyPublished { .. }
    );

    let all = h.bob.capsules(None).await.unwrap();
    assert_eq!(all, expected);
    assert!(
        all.windows(2)
            .all(|w| w[0].block_number < w[1].block_number)
    );
    let of = |who: Address| -> Vec<PublishedCapsule> {
        expected
            .iter()
            .filter(|c| c.publisher == who)
            .cloned()
            .collect()
    };
    assert_eq!(h.bob.capsules(Some(owner)).await.unwrap(), of(owner));
    assert_eq!(h.owner.capsules(Some(alice)).await.unwrap(), of(alice));
    assert_eq!(of(owner).len(), 3);
    assert_eq!(of(alice).len(), 2);
    assert!(h.owner.capsules(Some(bob)).await.unwrap().is_empty());
    // Every listed capsule agrees with the storage-checked single lookup.
    for capsule in &all {
        assert_eq!(
            h.bob
                .capsule(capsule.publisher, capsule.partition, capsule.epoch)
                .await
                .unwrap()
                .as_ref(),
            Some(capsule)
        );
    }
}

pub async fn live_index_anchors_walk_back_from_the_head(h: Harness) {
    let (owner, alice) = (h.owner.sender(), h.alice.sender());
    let (partition, other) = (digest(0x33), digest(0x44));
    assert!(
        h.bob
            .live_index_anchors(owner, partition)
            .await
            .unwrap()
            .is_empty()
    );
    let mut anchors = Vec::new();
    // Merges as an owner makes them, interleaved with other partitions and anchorers.
    for (ledger, part, first, last) in [
        (&h.owner, partition, 0, 0),
        (&h.alice, partition, 0, 0),
        (&h.owner, partition, 1, 1),
        (&h.owner, other, 0, 0),
        (&h.owner, partition, 0, 2),
        (&h.owner, partition, 3, 3),
        (&h.alice, partition, 0, 1),
        (&h.owner, partition, 3, 4),
        (&h.owner, partition, 5, 5),
    ] {
        let label = format!("shard-{first}-{last}");
        let root = digest(0x40 + last as u8);
        let receipt = ledger
            .anchor_index(part, first, last, &cid(&label), root)
            .await
            .unwrap();
        anchors.push(IndexAnchor {
            anchorer: ledger.sender(),
            partition: part,
            first_seq: first,
            last_seq: last,
            shard_cid: cid(&label),
            merkle_root: root,
            block_number: receipt.block_number,
        });
    }
    let find = |who: Address, part: B256, last: u64| {
        anchors
            .iter()
            .find(|a| a.anchorer == who && a.partition == part && a.last_seq == last)
            .cloned()
            .unwrap()
    };
    assert_eq!(h.bob.index_head(owner, partition).await.unwrap(), 6);
    // From a known head: the quick answer when it still holds, the search otherwise.
    let head_after = |known: u64, first: u64, root: B256| {
        let bob = &h.bob;
        async move {
            bob.index_head_after(owner, partition, known, first, root)
                .await
                .unwrap()
        }
    };
    assert_eq!(head_after(6, 5, digest(0x45)).await, 6);
    // Batches anchored since the reader looked.
    assert_eq!(head_after(5, 3, digest(0x44)).await, 6);
    assert_eq!(head_after(3, 0, digest(0x42)).await, 6);
    // A known anchor that is not the one on chain (another first batch or root, as after
    // a reorganisation), or a head from nowhere: the full search.
    assert_eq!(head_after(6, 4, digest(0x45)).await, 6);
    assert_eq!(head_after(6, 5, digest(0x99)).await, 6);
    assert_eq!(head_after(9, 8, digest(0x48)).await, 6);
    assert_eq!(head_after(0, 0, digest(0x40)).await, 6);
    // The same checks for many partitions in one call.
    let check = |partition: B256, known: u64, known_first: u64, known_root: B256| HeadCheck {
        anchorer: owner,
        partition,
        known,
        known_first,
        known_root,
    };
    assert!(h.bob.index_heads_unchanged(&[]).await.unwrap().is_empty());
    assert_eq!(
        h.bob
            .index_heads_unchanged(&[
                check(partition, 6, 5, digest(0x45)),
                check(partition, 5, 3, digest(0x44)),
                check(other, 1, 0, digest(0x40)),
                check(partition, 6, 4, digest(0x45)),
                check(partition, 6, 5, digest(0x99)),
                check(digest(0x55), 0, 0, digest(0x40)),
                check(partition, 0, 0, digest(0x40)),
                check(other, 2, 1, digest(0x40)),
            ])
            .await
            .unwrap(),
        [true, false, true, false, false, true, false, false]
    );
    assert_eq!(
        h.bob
            .index_head_after(owner, digest(0x55), 2, 0, digest(0x41))
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        h.bob.live_index_anchors(owner, partition).await.unwrap(),
        vec![
            find(owner, partition, 2),
            find(owner, partition, 4),
            find(owner, partition, 5)
        ]
    );
    assert_eq!(
        h.bob.live_index_anchors(alice, partition).await.unwrap(),
        vec![find(alice, partition, 1)]
    );
    assert_eq!(
        h.bob.live_index_anchors(owner, other).await.unwrap(),
        vec![find(owner, other, 0)]
    );
    // The full history, superseded anchors included, by last batch.
    let all = h.bob.index_anchors(owner, partition).await.unwrap();
    assert_eq!(
        all.iter().map(|a| a.last_seq).collect::<Vec<_>>(),
        vec![0, 1, 2, 3, 4, 5]
    );
    for anchor in &all {
        assert_eq!(anchor, &find(owner, partition, anchor.last_seq));
    }
    assert!(
        h.owner
            .index_anchors(h.bob.sender(), partition)
            .await
            .unwrap()
            .is_empty()
    );
}

pub async fn gas_targets_hold_independently_of_record_count(h: Harness) {
    let report = gas_report::measure(h.owner.as_ref(), h.alice.as_ref(), 40)
        .await
        .unwrap();
    assert!(report.violations().is_empty(), "{}", report.to_table());
    // Same calldata size and shape: exactly the same gas with 40 records as with none.
    assert_eq!(report.get("createRecord"), report.get("createRecord@40"));
    assert_eq!(report.get("anchorIndex"), report.get("anchorIndex@40"));
    let grant = report.get("grantAccess").unwrap();
    let grant_later = report.get("grantAccess@40").unwrap();
    // Record id 42 vs 1 in calldata: same number of nonzero bytes.
    assert_eq!(grant, grant_later);
    // The subject costs the records that have one: one more slot when created, one more slot
    // read when the subject decides; every operation without a target is measured too.
    let create = report.get("createRecord").unwrap();
    assert!(report.get("createRecordFor").unwrap() > create + 20_000);
    assert!(report.get("grantAccess/subject").unwrap() > grant);
    for op in [
        "requestAccess/subject",
        "denyAccess/subject",
        "revokeAccess/subject",
        "createRecordsFor/record",
        "logEmergencyAccess",
        "appointRegistrar",
        "registerMember",
        "registerMember/renewal",
        "revokeMember",
        "dismissRegistrar",
        "transferAuthority",
    ] {
        assert!(report.get(op).is_some_and(|gas| gas > 21_000), "{op}");
    }
    assert!(report.get("registerMember/renewal") < report.get("registerMember"));
}

mod people;
pub use people::*;

/// Generates one `#[tokio::test]` per conformance test, each calling `$setup().await` for a
/// fresh [`Harness`] (or skipping when it returns `None`).
#[macro_export]
macro_rules! conformance_suite {
    ($setup:path) => {
        $crate::conformance_suite!(@tests $setup;
            create_and_read_record,
            create_records_in_bulk,
            create_rejects_empty_fields,
            unknown_records_are_typed_errors,
            only_the_owner_manages_a_record,
            grant_and_revoke,
            request_deny_and_grant,
            logging_access_requires_access,
            audit_trail_has_every_change_in_order,
            update_record_validates_fields,
            records_of_and_shared_with_follow_the_events,
            index_anchors_are_write_once_and_in_order,
            capsules_are_write_once,
            for_signer_acts_as_another_account_on_the_same_state,
            capsules_lists_every_publication_in_chain_order,
            live_index_anchors_walk_back_from_the_head,
            gas_targets_hold_independently_of_record_count,
            subject_reads_and_alone_answers_requests,
            records_for_subjects_are_validated,
            registry_roles_are_enforced,
            registry_views_and_member_listing,
            emergency_access_is_logged_with_its_reason,
        );
    };
    (@tests $setup:path; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                if let Some(harness) = $setup().await {
                    conformance::$name(harness).await;
                }
            }
        )*
    };
}
