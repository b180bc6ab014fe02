//! Conformance tests of patients as a party (record subjects and consent), the member registry
//! and break-glass logging.

use std::num::NonZeroU32;

use alloy::sol_types::SolCall;
use medseal_chain::bindings::MedsealRegistry as R;
use medseal_chain::dev_keys::anvil_dev_signer;
use medseal_chain::{
    AccessRequest, Address, AuditEvent, B256, LedgerError, MemberStatus, RecordId, attribute_hash,
};

use super::{Harness, cid, digest};

fn month(year: u32, month: u32) -> Option<NonZeroU32> {
    NonZeroU32::new(year * 12 + month - 1)
}

fn texts(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

pub async fn subject_reads_and_alone_answers_requests(h: Harness) {
    let (owner, patient, other) = (h.owner.sender(), h.alice.sender(), h.bob.sender());
    let created = h
        .owner
        .create_record_for(&cid("about"), digest(1), patient)
        .await
        .unwrap();
    let record = created.record;
    let info = h.bob.record(record).await.unwrap();
    assert_eq!((info.owner, info.subject), (owner, Some(patient)));
    assert_eq!(info.controller(), patient);
    assert_eq!(h.bob.controller(record).await.unwrap(), patient);
    // The subject always reads; so does the clinician who created it.
    assert!(h.bob.can_access(record, patient).await.unwrap());
    assert!(h.bob.can_access(record, owner).await.unwrap());
    assert!(!h.bob.can_access(record, other).await.unwrap());
    assert!(!h.bob.can_access(record, Address::ZERO).await.unwrap());
    assert_eq!(h.bob.records_about(patient).await.unwrap(), vec![record]);
    assert!(h.bob.records_about(owner).await.unwrap().is_empty());
    assert_eq!(h.bob.records_of(owner).await.unwrap(), vec![record]);
    // The owner is still the clinician for ownership checks of search hits.
    assert_eq!(
        h.bob.first_not_owned_by(owner, &[record]).await.unwrap(),
        None
    );

    // Requests go to the subject.
    let mut receipts = vec![created.receipt];
    receipts.push(h.bob.request_access(record).await.unwrap());
    let request = AccessRequest {
        record,
        requester: other,
    };
    assert_eq!(
        h.bob.pending_requests(patient).await.unwrap(),
        vec![request]
    );
    assert!(h.bob.pending_requests(owner).await.unwrap().is_empty());
    // Owner and subject read anyway: they cannot ask.
    assert_err!(h.owner.request_access(record).await, LedgerError::InvalidUser { user } if user == owner);
    assert_err!(h.alice.request_access(record).await, LedgerError::InvalidUser { user } if user == patient);

    // Only the subject answers: a non-subject's approval is rejected by the contract, the
    // owner's included.
    assert_err!(
        h.owner.grant_access(record, other).await,
        LedgerError::NotController { record: r, caller, controller }
            if r == record && caller == owner && controller == patient
    );
    assert_err!(
        h.bob.grant_access(record, other).await,
        LedgerError::NotController { caller, controller, .. } if caller == other && controller == patient
    );
    assert_err!(
        h.owner.deny_access(record, other).await,
        LedgerError::NotController { .. }
    );
    assert!(!h.bob.can_access(record, other).await.unwrap());
    assert_eq!(
        h.bob.pending_requests(patient).await.unwrap(),
        vec![request]
    );

    receipts.push(h.alice.grant_access(record, other).await.unwrap());
    assert!(h.bob.can_access(record, other).await.unwrap());
    assert!(h.bob.pending_requests(patient).await.unwrap().is_empty());
    assert_eq!(h.bob.shared_with(other).await.unwrap(), vec![record]);
    // Owner and subject need no grant.
    assert_err!(h.alice.grant_access(record, owner).await, LedgerError::InvalidUser { user } if user == owner);
    assert_err!(h.alice.grant_access(record, patient).await, LedgerError::InvalidUser { user } if user == patient);
    receipts.push(h.bob.log_access(record).await.unwrap());
    receipts.push(h.alice.log_access(record).await.unwrap());

    // Only the subject revokes; owner and subject update (a subject's share or revoke moves
    // the manifest pointer), nobody else.
    assert_err!(
        h.owner.revoke_access(record, other).await,
        LedgerError::NotController { .. }
    );
    receipts.push(h.alice.revoke_access(record, other).await.unwrap());
    assert!(!h.bob.can_access(record, other).await.unwrap());
    assert_err!(
        h.bob.update_record(record, &cid("evil"), digest(9)).await,
        LedgerError::NotOwner { record: r, caller } if r == record && caller == other
    );
    receipts.push(
        h.alice
            .update_record(record, &cid("by-subject"), digest(3))
            .await
            .unwrap(),
    );
    assert_eq!(
        h.bob.record(record).await.unwrap().manifest_cid,
        cid("by-subject")
    );
    receipts.push(
        h.owner
            .update_record(record, &cid("v2"), digest(2))
            .await
            .unwrap(),
    );
    // Asked again, the subject denies.
    receipts.push(h.bob.request_access(record).await.unwrap());
    receipts.push(h.alice.deny_access(record, other).await.unwrap());
    assert!(h.bob.pending_requests(patient).await.unwrap().is_empty());

    // The audit trail shows the subject and who decided each time.
    let trail = h.owner.audit_trail(record).await.unwrap();
    let events: Vec<AuditEvent> = trail.iter().map(|e| e.event.clone()).collect();
    assert_eq!(
        events,
        vec![
            AuditEvent::Created {
                owner,
                manifest_cid: cid("about"),
                policy_hash: digest(1)
            },
            AuditEvent::Subject { subject: patient },
            AuditEvent::AccessRequested {
                requester: other,
                approver: patient
            },
            AuditEvent::AccessGranted {
                user: other,
                by: patient
            },
            AuditEvent::AccessLogged { accessor: other },
            AuditEvent::AccessLogged { accessor: patient },
            AuditEvent::AccessRevoked {
                user: other,
                by: patient
            },
            AuditEvent::Updated {
                by: patient,
                manifest_cid: cid("by-subject"),
                policy_hash: digest(3)
            },
            AuditEvent::Updated {
                by: owner,
                manifest_cid: cid("v2"),
                policy_hash: digest(2)
            },
            AuditEvent::AccessRequested {
                requester: other,
                approver: patient
            },
            AuditEvent::AccessDenied {
                user: other,
                by: patient
            },
        ]
    );
    // Created and Subject share the creating transaction.
    let tx_of_entry: Vec<B256> = trail.iter().map(|e| e.tx_hash).collect();
    assert_eq!(tx_of_entry[0], tx_of_entry[1]);
    let mut expected = vec![receipts[0].tx_hash];
    expected.extend(receipts.iter().map(|r| r.tx_hash));
    assert_eq!(tx_of_entry, expected);
    let info = h.bob.record(record).await.unwrap();
    assert_eq!(
        (info.manifest_cid, info.subject),
        (cid("v2"), Some(patient))
    );
}

pub async fn records_for_subjects_are_validated(h: Harness) {
    let (owner, patient, other) = (h.owner.sender(), h.alice.sender(), h.bob.sender());
    assert_err!(
        h.owner
            .create_record_for(&cid("m"), digest(1), Address::ZERO)
            .await,
        LedgerError::InvalidSubject { subject } if subject == Address::ZERO
    );
    assert_err!(
        h.owner.create_record_for(&cid("m"), digest(1), owner).await,
        LedgerError::InvalidSubject { subject } if subject == owner
    );
    assert_err!(
        h.owner.create_record_for("", digest(1), patient).await,
        LedgerError::EmptyField { field } if field == "manifestCid"
    );
    assert_eq!(h.bob.record_count().await.unwrap(), 0);

    let plain = h
        .owner
        .create_record(&cid("plain"), digest(1))
        .await
        .unwrap()
        .record;
    let batch: Vec<(String, B256, Address)> = (0..4u8)
        .map(|i| {
            let subject = if i % 2 == 0 { patient } else { other };
            (cid(&format!("bulk-{i}")), digest(10 + i), subject)
        })
        .collect();
    let created = h.owner.create_records_for(&batch).await.unwrap();
    assert_eq!(
        created.records,
        (2..6).map(RecordId).collect::<Vec<_>>(),
        "consecutive ids in request order"
    );
    for (id, (manifest, policy, subject)) in created.records.iter().zip(&batch) {
        let info = h.bob.record(*id).await.unwrap();
        assert_eq!(
            (
                &info.manifest_cid,
                info.policy_hash,
                info.owner,
                info.subject
            ),
            (manifest, *policy, owner, Some(*subject))
        );
    }
    assert_eq!(
        h.bob.records_about(patient).await.unwrap(),
        vec![RecordId(2), RecordId(4)]
    );
    assert_eq!(
        h.bob.records_about(other).await.unwrap(),
        vec![RecordId(3), RecordId(5)]
    );
    assert_eq!(h.bob.record(plain).await.unwrap().subject, None);
    assert_eq!(h.bob.controller(plain).await.unwrap(), owner);

    // One bad subject rejects the whole batch.
    let mut bad = batch.clone();
    bad[2].2 = owner;
    assert_err!(
        h.owner.create_records_for(&bad).await,
        LedgerError::InvalidSubject { subject } if subject == owner
    );
    assert_err!(
        h.owner.create_records_for(&[]).await,
        LedgerError::EmptyField { field } if field == "manifestCids"
    );
    // The contract checks the array lengths (the typed API cannot get them wrong).
    let calldata = R::createRecordsForCall {
        manifestCids: vec![cid("a"), cid("b")],
        policyHashes: vec![digest(1), digest(2)],
        subjects: vec![patient],
    }
    .abi_encode();
    assert_err!(
        h.owner.transact(calldata).await,
        LedgerError::SubjectCountMismatch {
            manifests: 2,
            subjects: 1
        }
    );
    assert_eq!(h.bob.record_count().await.unwrap(), 5);
}

pub async fn registry_roles_are_enforced(h: Harness) {
    let (authority, alice, bob) = (h.owner.sender(), h.alice.sender(), h.bob.sender());
    let dave = h.owner.for_signer(anvil_dev_signer(3).unwrap());
    let attributes = texts(&["role:doctor", "org:st-marys"]);
    let (m1, m2, m3) = (
        Address::repeat_byte(0x51),
        Address::repeat_byte(0x52),
        Address::repeat_byte(0x53),
    );
    assert_eq!(h.bob.authority().await.unwrap(), authority);

    // Only the authority appoints and dismisses.
    assert_err!(
        h.alice.appoint_registrar(bob, "Rogue clinic").await,
        LedgerError::NotAuthority { caller, authority: a } if caller == alice && a == authority
    );
    assert_err!(
        h.owner.appoint_registrar(Address::ZERO, "Nobody").await,
        LedgerError::InvalidAccount { account } if account == Address::ZERO
    );
    assert_err!(
        h.owner.appoint_registrar(alice, "").await,
        LedgerError::EmptyField { field } if field == "name"
    );
    h.owner
        .appoint_registrar(alice, "St. Mary's")
        .await
        .unwrap();
    h.owner
        .appoint_registrar(dave.sender(), "General")
        .await
        .unwrap();
    assert!(h.bob.is_registrar(alice).await.unwrap());
    assert!(!h.bob.is_registrar(bob).await.unwrap());
    assert!(!h.bob.is_registrar(authority).await.unwrap());
    assert_err!(
        h.alice.dismiss_registrar(dave.sender()).await,
        LedgerError::NotAuthority { .. }
    );

    // Only the authority and registrars register.
    assert_err!(
        h.bob
            .register_member(m1, "Dr. Bob", digest(1), &attributes, None)
            .await,
        LedgerError::NotRegistrar { caller } if caller == bob
    );
    assert_err!(
        h.alice
            .register_member(Address::ZERO, "Nobody", digest(1), &attributes, None)
            .await,
        LedgerError::InvalidAccount { .. }
    );
    assert_err!(
        h.alice
            .register_member(m1, "", digest(1), &attributes, None)
            .await,
        LedgerError::EmptyField { field } if field == "name"
    );
    assert_err!(
        h.alice
            .register_member(m1, "Dr. A", B256::ZERO, &attributes, None)
            .await,
        LedgerError::EmptyField { field } if field == "attributesDigest"
    );
    assert_err!(
        h.alice
            .register_member(m1, "Dr. A", digest(1), &[], None)
            .await,
        LedgerError::EmptyField { field } if field == "attributes"
    );
    assert_err!(
        h.alice
            .register_member(m1, "Dr. A", digest(1), &texts(&["role:doctor", ""]), None)
            .await,
        LedgerError::EmptyField { field } if field == "attributes"
    );
    let through = month(2027, 12);
    h.alice
        .register_member(m1, "Dr. A", digest(1), &attributes, through)
        .await
        .unwrap();
    dave.register_member(m2, "Dr. B", digest(2), &attributes, None)
        .await
        .unwrap();
    h.owner
        .register_member(m3, "Dr. C", digest(3), &attributes, None)
        .await
        .unwrap();
    let info = h.bob.member(m1).await.unwrap();
    assert_eq!(
        (
            info.member,
            info.status,
            info.registrar,
            info.attributes_digest,
            info.valid_through
        ),
        (m1, MemberStatus::Active, alice, digest(1), through)
    );

    // A registrar renews and revokes only its own members.
    assert_err!(
        dave.register_member(m1, "Dr. A", digest(1), &attributes, None)
            .await,
        LedgerError::NotMemberRegistrar { member, caller, registrar }
            if member == m1 && caller == dave.sender() && registrar == alice
    );
    assert_err!(
        dave.revoke_member(m1, "not mine", &[]).await,
        LedgerError::NotMemberRegistrar { .. }
    );
    assert_err!(
        h.alice.revoke_member(m3, "not mine", &[]).await,
        LedgerError::NotMemberRegistrar { registrar, .. } if registrar == authority
    );
    assert_err!(
        h.bob.revoke_member(m1, "not a registrar", &[]).await,
        LedgerError::NotRegistrar { .. }
    );
    assert_err!(
        h.alice
            .revoke_member(Address::repeat_byte(0x59), "who?", &[])
            .await,
        LedgerError::UnknownMember { .. }
    );
    assert_err!(
        h.alice.revoke_member(m1, "", &[]).await,
        LedgerError::EmptyField { field } if field == "reason"
    );
    assert_err!(
        h.alice.revoke_member(m1, &"x".repeat(1025), &[]).await,
        LedgerError::ReasonTooLong {
            length: 1025,
            max: 1024
        }
    );
    assert_err!(
        h.alice.revoke_member(m1, "left", &[B256::ZERO]).await,
        LedgerError::EmptyField { field } if field == "bumpAttributes"
    );
    let renewed = month(2028, 12);
    h.alice
        .register_member(m1, "Dr. A", digest(4), &attributes, renewed)
        .await
        .unwrap();
    assert_eq!(h.bob.member(m1).await.unwrap().valid_through, renewed);
    // The authority may renew anyone; it then issued the current key.
    h.owner
        .register_member(m2, "Dr. B", digest(2), &attributes, through)
        .await
        .unwrap();
    assert_eq!(h.bob.member(m2).await.unwrap().registrar, authority);
    assert_err!(
        dave.revoke_member(m2, "now the authority's", &[]).await,
        LedgerError::NotMemberRegistrar { .. }
    );

    // Revocation is permanent.
    let doctor = attribute_hash("role:doctor");
    h.alice
        .revoke_member(m1, "left the hospital", &[doctor])
        .await
        .unwrap();
    assert_eq!(
        h.bob.member(m1).await.unwrap().status,
        MemberStatus::Revoked
    );
    for ledger in [&h.alice, &h.owner] {
        assert_err!(
            ledger
                .register_member(m1, "Dr. A", digest(1), &attributes, None)
                .await,
            LedgerError::MemberRevoked { member } if member == m1
        );
    }
    assert_err!(
        h.owner.revoke_member(m1, "again", &[doctor]).await,
        LedgerError::MemberRevoked { .. }
    );
    assert_eq!(
        h.bob.attribute_versions(&[doctor]).await.unwrap(),
        vec![1],
        "a rejected revocation bumps nothing"
    );

    // A dismissed registrar can no longer register or revoke; its members stay.
    h.owner.dismiss_registrar(alice).await.unwrap();
    assert!(!h.bob.is_registrar(alice).await.unwrap());
    assert_err!(
        h.owner.dismiss_registrar(alice).await,
        LedgerError::UnknownRegistrar { registrar } if registrar == alice
    );
    let m4 = Address::repeat_byte(0x54);
    assert_err!(
        h.alice
            .register_member(m4, "Dr. D", digest(5), &attributes, None)
            .await,
        LedgerError::NotRegistrar { caller } if caller == alice
    );

    // Handing on the authority.
    assert_err!(
        h.alice.transfer_authority(alice).await,
        LedgerError::NotAuthority { .. }
    );
    assert_err!(
        h.owner.transfer_authority(Address::ZERO).await,
        LedgerError::InvalidAccount { .. }
    );
    h.owner.transfer_authority(bob).await.unwrap();
    assert_eq!(h.alice.authority().await.unwrap(), bob);
    assert_err!(
        h.owner.appoint_registrar(alice, "St. Mary's").await,
        LedgerError::NotAuthority { caller, authority: a } if caller == authority && a == bob
    );
    assert_err!(
        h.owner
            .register_member(m4, "Dr. D", digest(5), &attributes, None)
            .await,
        LedgerError::NotRegistrar { .. }
    );
    h.bob
        .register_member(m4, "Dr. D", digest(5), &attributes, None)
        .await
        .unwrap();
}

pub async fn registry_views_and_member_listing(h: Harness) {
    let (authority, alice) = (h.owner.sender(), h.alice.sender());
    let (m1, m2, nobody) = (
        Address::repeat_byte(0x61),
        Address::repeat_byte(0x62),
        Address::repeat_byte(0x69),
    );
    assert!(h.bob.registered_members().await.unwrap().is_empty());
    assert!(h.bob.registrars().await.unwrap().is_empty());
    assert!(h.bob.members_status(&[]).await.unwrap().is_empty());
    assert!(h.bob.attribute_versions(&[]).await.unwrap().is_empty());

    h.owner.appoint_registrar(alice, "St Mary").await.unwrap();
    h.owner
        .appoint_registrar(alice, "St. Mary's Hospital")
        .await
        .unwrap();
    let doctor_attrs = texts(&["role:doctor", "org:st-marys", "dept:cardiology"]);
    let nurse_attrs = texts(&["role:nurse", "org:st-marys"]);
    let first = h
        .alice
        .register_member(m1, "Dr. Ada", digest(1), &doctor_attrs, month(2027, 6))
        .await
        .unwrap();
    let second = h
        .owner
        .register_member(m2, "Nurse Rui", digest(2), &nurse_attrs, None)
        .await
        .unwrap();
    let renewal = h
        .alice
        .register_member(m1, "Dr. Ada L.", digest(3), &doctor_attrs, month(2028, 6))
        .await
        .unwrap();
    let (doctor, nurse, org) = (
        attribute_hash("role:doctor"),
        attribute_hash("role:nurse"),
        attribute_hash("org:st-marys"),
    );
    let revocation = h
        .owner
        .revoke_member(m2, "left the hospital", &[nurse, org])
        .await
        .unwrap();
    h.alice
        .revoke_member(m1, "licence suspended", &[doctor, org])
        .await
        .unwrap();

    let statuses = h.bob.members_status(&[m2, nobody, m1]).await.unwrap();
    let summary: Vec<(Address, MemberStatus, Address)> = statuses
        .iter()
        .map(|m| (m.member, m.status, m.registrar))
        .collect();
    assert_eq!(
        summary,
        vec![
            (m2, MemberStatus::Revoked, authority),
            (nobody, MemberStatus::Unregistered, Address::ZERO),
            (m1, MemberStatus::Revoked, alice),
        ]
    );
    assert_eq!(statuses[2].valid_through, month(2028, 6));
    assert_eq!(statuses[2].attributes_digest, digest(3));
    assert_eq!(statuses[1].valid_through, None);
    assert_eq!(h.bob.member(nobody).await.unwrap(), statuses[1]);
    assert_eq!(
        h.bob
            .attribute_versions(&[doctor, nurse, org, attribute_hash("dept:cardiology")])
            .await
            .unwrap(),
        vec![1, 1, 2, 0]
    );

    let listed = h.bob.registered_members().await.unwrap();
    assert_eq!(listed.len(), 2, "{listed:?}");
    let (ada, rui) = (&listed[0], &listed[1]);
    assert_eq!(
        (
            ada.member,
            ada.name.as_str(),
            ada.registrar,
            ada.attributes_digest
        ),
        (m1, "Dr. Ada L.", alice, digest(3)),
        "the latest registration, in order of the first"
    );
    assert_eq!(ada.attributes, doctor_attrs);
    assert_eq!(ada.valid_through, month(2028, 6));
    assert_eq!(ada.block_number, renewal.block_number);
    assert!(ada.block_number > first.block_number);
    let ada_revoked = ada.revoked.as_ref().unwrap();
    assert_eq!(
        (ada_revoked.by, ada_revoked.reason.as_str()),
        (alice, "licence suspended")
    );
    assert_eq!(
        (
            rui.member,
            rui.name.as_str(),
            rui.registrar,
            rui.valid_through
        ),
        (m2, "Nurse Rui", authority, None)
    );
    assert_eq!(rui.attributes, nurse_attrs);
    assert_eq!(rui.block_number, second.block_number);
    let rui_revoked = rui.revoked.as_ref().unwrap();
    assert_eq!(
        (
            rui_revoked.by,
            rui_revoked.reason.as_str(),
            rui_revoked.block_number
        ),
        (authority, "left the hospital", revocation.block_number)
    );

    let registrars = h.bob.registrars().await.unwrap();
    assert_eq!(registrars.len(), 1);
    assert_eq!(
        (
            registrars[0].registrar,
            registrars[0].name.as_str(),
            registrars[0].appointed
        ),
        (alice, "St. Mary's Hospital", true)
    );
    h.owner.dismiss_registrar(alice).await.unwrap();
    assert!(!h.bob.registrars().await.unwrap()[0].appointed);
}

pub async fn emergency_access_is_logged_with_its_reason(h: Harness) {
    let (patient, stranger) = (h.alice.sender(), h.bob.sender());
    let record = h
        .owner
        .create_record_for(&cid("er"), digest(1), patient)
        .await
        .unwrap()
        .record;
    assert_err!(
        h.bob.log_emergency_access(RecordId(99), "unconscious").await,
        LedgerError::UnknownRecord { record } if record == RecordId(99)
    );
    assert_err!(
        h.bob.log_emergency_access(record, "").await,
        LedgerError::EmptyField { field } if field == "reason"
    );
    assert_err!(
        h.bob.log_emergency_access(record, &"r".repeat(1025)).await,
        LedgerError::ReasonTooLong {
            length: 1025,
            max: 1024
        }
    );
    let reason = "patient unconscious in the ED, no relatives reachable";
    // Anyone may log (the contract cannot see ABE attributes); it grants nothing.
    let receipt = h.bob.log_emergency_access(record, reason).await.unwrap();
    assert!(!h.bob.can_access(record, stranger).await.unwrap());
    let longest = "l".repeat(1024);
    h.bob.log_emergency_access(record, &longest).await.unwrap();

    let trail = h.alice.audit_trail(record).await.unwrap();
    let emergencies: Vec<_> = trail
        .iter()
        .filter(|e| matches!(e.event, AuditEvent::EmergencyAccess { .. }))
        .collect();
    assert_eq!(emergencies.len(), 2);
    assert_eq!(
        emergencies[0].event,
        AuditEvent::EmergencyAccess {
            accessor: stranger,
            reason: reason.to_owned()
        }
    );
    assert_eq!(emergencies[0].tx_hash, receipt.tx_hash);
    assert!(
        matches!(&emergencies[1].event, AuditEvent::EmergencyAccess { reason, .. } if *reason == longest)
    );
    // Another record's trail does not show it.
    let other = h
        .owner
        .create_record(&cid("other"), digest(2))
        .await
        .unwrap()
        .record;
    assert!(
        !h.alice
            .audit_trail(other)
            .await
            .unwrap()
            .iter()
            .any(|e| matches!(e.event, AuditEvent::EmergencyAccess { .. }))
    );
}
