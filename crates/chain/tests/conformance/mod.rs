//! The ledger conformance suite: the same behavioural tests for every [`Ledger`]
//! implementation. A test file provides an async `setup() -> Option<Harness>` (None = skip) and
//! invokes [`conformance_suite!`].

use std::sync::Arc;

use medseal_chain::gas_report;
use medseal_chain::{
    AccessRequest, AccessState, Address, AuditEvent, Ledger, LedgerError, RecordId,
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

fn digest(byte: u8) -> [u8; 32] {
    [byte; 32]
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
        alloy::primitives::keccak256(manifest.as_bytes()).0
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

pub async fn create_rejects_empty_fields(h: Harness) {
    assert_err!(
        h.owner.create_record("", digest(1)).await,
        LedgerError::EmptyField { field } if field == "manifestCid"
    );
    assert_err!(
        h.owner.create_record(&cid("m"), [0; 32]).await,
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
    assert_err!(
        h.alice.grant_access(record, bob).await,
        LedgerError::NotOwner { record: r, caller } if r == record && caller == alice
    );
    assert_err!(
        h.alice.grant_access(record, alice).await,
        LedgerError::NotOwner { .. }
    );
    assert_err!(
        h.alice.revoke_access(record, bob).await,
        LedgerError::NotOwner { .. }
    );
    assert_err!(
        h.alice.deny_access(record, bob).await,
        LedgerError::NotOwner { .. }
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
                owner
            },
            AuditEvent::AccessGranted { user: alice },
            AuditEvent::AccessLogged { accessor: alice },
            AuditEvent::Updated {
                owner,
                manifest_cid: cid("v2"),
                policy_hash: digest(2)
            },
            AuditEvent::AccessRequested {
                requester: bob,
                owner
            },
            AuditEvent::AccessDenied { user: bob },
            AuditEvent::AccessRevoked { user: alice },
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
        h.owner.update_record(record, &cid("v2"), [0; 32]).await,
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

pub async fn index_anchors_are_write_once(h: Harness) {
    let (owner, alice) = (h.owner.sender(), h.alice.sender());
    let partition = digest(0xaa);
    let shard = cid("shard");
    assert_eq!(
        h.owner.index_anchor(owner, partition, 1).await.unwrap(),
        None
    );
    h.owner
        .anchor_index(partition, 1, &shard, digest(7))
        .await
        .unwrap();
    let anchor = h
        .bob
        .index_anchor(owner, partition, 1)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(anchor.anchorer, owner);
    assert_eq!(anchor.partition, partition);
    assert_eq!(anchor.epoch, 1);
    assert_eq!(anchor.shard_cid, shard);
    assert_eq!(anchor.merkle_root, digest(7));
    assert!(anchor.block_number > 0);

    assert_err!(
        h.owner.anchor_index(partition, 1, &shard, digest(8)).await,
        LedgerError::AlreadyAnchored { anchorer, partition: p, epoch: 1 } if anchorer == owner && p == partition
    );
    assert_err!(
        h.owner.anchor_index(partition, 2, "", digest(8)).await,
        LedgerError::EmptyField { field } if field == "shardCid"
    );
    assert_err!(
        h.owner.anchor_index(partition, 2, &shard, [0; 32]).await,
        LedgerError::EmptyField { field } if field == "merkleRoot"
    );
    // Other epochs, partitions and anchorers are independent.
    h.owner
        .anchor_index(partition, 2, &cid("s2"), digest(8))
        .await
        .unwrap();
    h.owner
        .anchor_index(digest(0xbb), 1, &cid("s3"), digest(9))
        .await
        .unwrap();
    h.alice
        .anchor_index(partition, 1, &cid("s4"), digest(10))
        .await
        .unwrap();
    assert_eq!(
        h.bob
            .index_anchor(owner, partition, 1)
            .await
            .unwrap()
            .unwrap()
            .merkle_root,
        digest(7)
    );
    assert_eq!(
        h.bob
            .index_anchor(owner, partition, 2)
            .await
            .unwrap()
            .unwrap()
            .shard_cid,
        cid("s2")
    );
    assert_eq!(
        h.bob
            .index_anchor(alice, partition, 1)
            .await
            .unwrap()
            .unwrap()
            .merkle_root,
        digest(10)
    );
    assert_eq!(h.bob.index_anchor(alice, partition, 2).await.unwrap(), None);
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
        h.owner.publish_capsule(partition, 4, &cid("c"), [0; 32]).await,
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
}

/// Generates one `#[tokio::test]` per conformance test, each calling `$setup().await` for a
/// fresh [`Harness`] (or skipping when it returns `None`).
#[macro_export]
macro_rules! conformance_suite {
    ($setup:path) => {
        $crate::conformance_suite!(@tests $setup;
            create_and_read_record,
            create_rejects_empty_fields,
            unknown_records_are_typed_errors,
            only_the_owner_manages_a_record,
            grant_and_revoke,
            request_deny_and_grant,
            logging_access_requires_access,
            audit_trail_has_every_change_in_order,
            update_record_validates_fields,
            records_of_and_shared_with_follow_the_events,
            index_anchors_are_write_once,
            capsules_are_write_once,
            gas_targets_hold_independently_of_record_count,
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
