//! Patients as record subjects, consent and break-glass (issue 13, items 1 and 6), on the
//! embedded backends: the subject reads and controls; a non-subject's approval is rejected
//! by the contract (through the vault and directly); break-glass needs a reason that is
//! logged on chain before anything is opened.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use async_trait::async_trait;
use medseal::chain::{
    B256, ChainLog, CreatedRecord, EmbeddedChain, Ledger, LedgerError, LedgerResult, LogFilter,
    TxOutcome, TxReceipt,
};
use medseal::storage::MemoryStore;
use medseal::{
    Address, Attachment, AuditEvent, Authority, EMERGENCY_ATTRIBUTE, Error, InvalidInput, Member,
    NewRecord, PrivateKeySigner, RecordId, Vault,
};
use rand_core::OsRng;

/// A ledger whose break-glass log fails while `fail_log` is set, and whose
/// `createRecordFor` fails before its transaction while `fail_create_for` is set.
struct LogFails {
    inner: Arc<dyn Ledger>,
    fail_log: Arc<AtomicBool>,
    fail_create_for: Arc<AtomicBool>,
}

fn injected() -> LedgerError {
    LedgerError::NodeUnavailable {
        endpoint: "injected failure".into(),
        attempts: 1,
        source: "injected".into(),
    }
}

#[async_trait]
impl Ledger for LogFails {
    fn sender(&self) -> Address {
        self.inner.sender()
    }
    fn registry_address(&self) -> Address {
        self.inner.registry_address()
    }
    fn for_signer(&self, signer: PrivateKeySigner) -> Arc<dyn Ledger> {
        Arc::new(LogFails {
            inner: self.inner.for_signer(signer),
            fail_log: Arc::clone(&self.fail_log),
            fail_create_for: Arc::clone(&self.fail_create_for),
        })
    }
    async fn transact(&self, calldata: Vec<u8>) -> LedgerResult<TxOutcome> {
        self.inner.transact(calldata).await
    }
    async fn call(&self, calldata: Vec<u8>) -> LedgerResult<Vec<u8>> {
        self.inner.call(calldata).await
    }
    async fn logs(&self, filter: &LogFilter) -> LedgerResult<Vec<ChainLog>> {
        self.inner.logs(filter).await
    }
    async fn log_emergency_access(
        &self,
        record: RecordId,
        reason: &str,
    ) -> LedgerResult<TxReceipt> {
        if self.fail_log.load(Ordering::SeqCst) {
            return Err(injected());
        }
        self.inner.log_emergency_access(record, reason).await
    }
    async fn create_record_for(
        &self,
        cid: &str,
        hash: B256,
        subject: Address,
    ) -> LedgerResult<CreatedRecord> {
        if self.fail_create_for.load(Ordering::SeqCst) {
            return Err(injected());
        }
        self.inner.create_record_for(cid, hash, subject).await
    }
}

struct Hospital {
    dir: tempfile::TempDir,
    vault: Vault,
    store: Arc<MemoryStore>,
    authority: Authority,
    ledger: Arc<dyn Ledger>,
    fail_log: Arc<AtomicBool>,
    fail_create_for: Arc<AtomicBool>,
    ada: Member,
    /// Ada's chain key, to call the contract directly as her.
    ada_signer: PrivateKeySigner,
    lee: Member,
    pat: Member,
    er: Member,
}

fn issue_with(
    authority: &Authority,
    name: &str,
    attrs: &[&str],
    signer: PrivateKeySigner,
) -> Member {
    authority
        .issue(
            name,
            attrs,
            medseal::Validity::months_from_now(12),
            signer,
            &mut OsRng,
        )
        .unwrap()
}

fn issue(authority: &Authority, name: &str, attrs: &[&str]) -> Member {
    issue_with(authority, name, attrs, PrivateKeySigner::random())
}

/// The hospital, its members registered on chain (sharing and consent need it).
async fn hospital() -> Hospital {
    let dir = tempfile::tempdir().unwrap();
    let authority = Authority::setup(&mut OsRng);
    let fail_log = Arc::new(AtomicBool::new(false));
    let fail_create_for = Arc::new(AtomicBool::new(false));
    let chain = EmbeddedChain::in_memory(PrivateKeySigner::random()).unwrap();
    let ledger: Arc<dyn Ledger> = Arc::new(LogFails {
        inner: Arc::new(chain),
        fail_log: Arc::clone(&fail_log),
        fail_create_for: Arc::clone(&fail_create_for),
    });
    let store = Arc::new(MemoryStore::new());
    let mut vault = Vault::with_backends(dir.path(), store.clone(), Arc::clone(&ledger)).unwrap();
    vault.install_authority(authority.public_key()).unwrap();
    let ada_signer = PrivateKeySigner::random();
    let ada = issue_with(
        &authority,
        "dr. ada",
        &["role:doctor", "dept:cardiology"],
        ada_signer.clone(),
    );
    let lee = issue(&authority, "dr. lee", &["role:doctor", "dept:neurology"]);
    let pat = issue(&authority, "pat", &["role:patient"]);
    let er = issue(&authority, "dr. eve", &["role:doctor", EMERGENCY_ATTRIBUTE]);
    vault.adopt_authority(&authority).await.unwrap();
    for member in [&ada, &lee, &pat, &er] {
        vault.register_member(&authority, member).await.unwrap();
    }
    Hospital {
        ada,
        ada_signer,
        lee,
        pat,
        er,
        dir,
        vault,
        store,
        authority,
        ledger,
        fail_log,
        fail_create_for,
    }
}

fn report(name: &str) -> NewRecord {
    NewRecord::new(name, "dept:cardiology".parse().unwrap()).attach(Attachment::bytes(
        "report.txt",
        "text/plain",
        &b"sinus rhythm"[..],
    ))
}

async fn trail(vault: &Vault, record: RecordId) -> Vec<AuditEvent> {
    let entries = vault.audit(record).await.unwrap();
    entries.into_iter().map(|e| e.event).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_subject_reads_and_alone_consents() {
    let h = hospital().await;
    let (v, ada, lee, pat) = (&h.vault, &h.ada, &h.lee, &h.pat);
    let record = v
        .put(ada, report("ECG for Pat").subject(pat.address()))
        .await
        .unwrap()
        .record;
    let info = h.ledger.record(record).await.unwrap();
    assert_eq!(
        (info.owner, info.subject),
        (ada.address(), Some(pat.address()))
    );
    let about: Vec<RecordId> = v
        .records_about(pat.address())
        .await
        .unwrap()
        .iter()
        .map(|i| i.record)
        .collect();
    assert_eq!(about, vec![record]);
    assert!(v.records_about(ada.address()).await.unwrap().is_empty());

    // The subject reads (their attributes do not satisfy the policy: the `id:` clause does).
    let opened = v.get(pat, record).await.unwrap();
    assert_eq!(
        v.read_attachment_bytes(&opened, 0).await.unwrap(),
        b"sinus rhythm"
    );
    assert!(matches!(
        v.get(lee, record).await,
        Err(Error::AccessDenied { .. })
    ));

    // Lee asks: the request goes to Pat, not to Ada.
    v.request_access(lee, record).await.unwrap();
    assert!(v.pending_requests(ada).await.unwrap().is_empty());
    let pending = v.pending_requests(pat).await.unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].requester, lee.address());

    // Ada's approval is refused, by the vault (names the controller) and by the contract.
    let refused = v.answer_request(ada, record, lee.address(), true).await;
    assert!(
        matches!(refused, Err(Error::NotController { record: r, controller }) if r == record && controller == pat.address()),
        "{refused:?}"
    );
    assert!(matches!(
        v.share(ada, record, lee.address()).await,
        Err(Error::NotController { .. })
    ));
    let direct = h
        .ledger
        .for_signer(h.ada_signer.clone())
        .grant_access(record, lee.address())
        .await;
    assert!(
        matches!(direct, Err(LedgerError::NotController { caller, controller, .. }) if caller == ada.address() && controller == pat.address()),
        "{direct:?}"
    );
    assert!(matches!(
        v.get(lee, record).await,
        Err(Error::AccessDenied { .. })
    ));

    // Pat approves: Lee reads; the owner keeps reading.
    v.answer_request(pat, record, lee.address(), true)
        .await
        .unwrap();
    let as_lee = v.get(lee, record).await.unwrap();
    assert_eq!(
        v.read_attachment_bytes(&as_lee, 0).await.unwrap(),
        b"sinus rhythm"
    );
    v.get(ada, record).await.unwrap();
    let events = trail(v, record).await;
    assert!(events.contains(&AuditEvent::AccessGranted {
        user: lee.address(),
        by: pat.address()
    }));
    // The subject's re-wrap moved the pointer.
    assert!(events.contains(&AuditEvent::Updated {
        by: pat.address(),
        manifest_cid: h.ledger.record(record).await.unwrap().manifest_cid,
        policy_hash: h.ledger.record(record).await.unwrap().policy_hash,
    }));

    // Pat revokes: Lee is refused on a new get; Pat and Ada still read.
    assert!(matches!(
        v.revoke(ada, record, lee.address()).await,
        Err(Error::NotController { .. })
    ));
    v.revoke(pat, record, lee.address()).await.unwrap();
    assert!(matches!(
        v.get(lee, record).await,
        Err(Error::AccessDenied { .. })
    ));
    v.get(pat, record).await.unwrap();
    v.get(ada, record).await.unwrap();
    assert!(trail(v, record).await.contains(&AuditEvent::AccessRevoked {
        user: lee.address(),
        by: pat.address()
    }));

    // Asked again, Pat denies; Ada cannot deny either.
    v.request_access(lee, record).await.unwrap();
    assert!(matches!(
        v.answer_request(ada, record, lee.address(), false).await,
        Err(Error::NotController { .. })
    ));
    v.answer_request(pat, record, lee.address(), false)
        .await
        .unwrap();
    assert!(trail(v, record).await.contains(&AuditEvent::AccessDenied {
        user: lee.address(),
        by: pat.address()
    }));
    assert!(v.pending_requests(pat).await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_subject_the_owner_consents_and_a_subject_must_be_another() {
    let h = hospital().await;
    let (v, ada, lee, pat) = (&h.vault, &h.ada, &h.lee, &h.pat);
    let record = v.put(ada, report("plain")).await.unwrap().record;
    v.request_access(lee, record).await.unwrap();
    assert_eq!(v.pending_requests(ada).await.unwrap().len(), 1);
    assert!(matches!(
        v.answer_request(pat, record, lee.address(), true).await,
        Err(Error::NotOwner { .. })
    ));
    v.answer_request(ada, record, lee.address(), true)
        .await
        .unwrap();
    v.get(lee, record).await.unwrap();
    assert!(matches!(
        v.get(pat, record).await,
        Err(Error::AccessDenied { .. })
    ));

    // A subject is another party.
    for subject in [ada.address(), Address::ZERO] {
        let refused = v.put(ada, report("self").subject(subject)).await;
        assert!(
            matches!(refused, Err(Error::InvalidInput(InvalidInput::InvalidSubject { subject: s })) if s == subject),
            "{refused:?}"
        );
    }
    // In bulk: subjects and plain records mixed, each created as asked.
    let receipts = v
        .put_many(
            ada,
            vec![
                report("bulk 1").subject(pat.address()),
                report("bulk 2"),
                report("bulk 3").subject(pat.address()),
            ],
        )
        .await
        .unwrap();
    let about: Vec<RecordId> = v
        .records_about(pat.address())
        .await
        .unwrap()
        .iter()
        .map(|i| i.record)
        .collect();
    let mut expected = vec![receipts[0].record, receipts[2].record];
    expected.sort();
    assert_eq!(about, expected);
    v.get(pat, receipts[2].record).await.unwrap();
    assert!(matches!(
        v.get(pat, receipts[1].record).await,
        Err(Error::AccessDenied { .. })
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn break_glass_needs_a_reason_logged_before_opening() {
    let h = hospital().await;
    let (v, ada, pat, er, lee) = (&h.vault, &h.ada, &h.pat, &h.er, &h.lee);
    let emergency = EMERGENCY_ATTRIBUTE.parse().unwrap();
    let record = v
        .put(
            ada,
            report("allergies")
                .subject(pat.address())
                .emergency(emergency),
        )
        .await
        .unwrap()
        .record;
    let plain = v
        .put(ada, report("no emergency").subject(pat.address()))
        .await
        .unwrap()
        .record;

    // A plain read by an emergency-only reader is refused, telling to use break-glass.
    assert!(matches!(
        v.get(er, record).await,
        Err(Error::EmergencyOnly { record: r }) if r == record
    ));
    assert!(matches!(
        v.open_record(er, record).await,
        Err(Error::EmergencyOnly { .. })
    ));
    // Others are not affected by the clause.
    v.get(pat, record).await.unwrap();
    assert!(matches!(
        v.get(lee, record).await,
        Err(Error::AccessDenied { .. })
    ));

    // A reason is required (not blank, at most 1 KiB).
    for reason in [String::new(), "   ".to_owned(), "x".repeat(1025)] {
        let refused = v.get_emergency(er, record, &reason).await;
        assert!(
            matches!(
                refused,
                Err(Error::InvalidInput(InvalidInput::Reason { .. }))
            ),
            "{refused:?}"
        );
    }
    // The log comes first: if it fails, nothing is opened (and nothing logged).
    h.fail_log.store(true, Ordering::SeqCst);
    assert!(matches!(
        v.get_emergency(er, record, "unconscious patient, ER bay 2")
            .await,
        Err(Error::Ledger(LedgerError::NodeUnavailable { .. }))
    ));
    h.fail_log.store(false, Ordering::SeqCst);
    let emergency_entries = |events: &[AuditEvent]| {
        events
            .iter()
            .filter(|e| matches!(e, AuditEvent::EmergencyAccess { .. }))
            .count()
    };
    assert_eq!(emergency_entries(&trail(v, record).await), 0);

    let opened = v
        .get_emergency(er, record, "unconscious patient, ER bay 2")
        .await
        .unwrap();
    assert_eq!(
        v.read_attachment_bytes(&opened, 0).await.unwrap(),
        b"sinus rhythm"
    );
    let events = trail(v, record).await;
    assert!(events.contains(&AuditEvent::EmergencyAccess {
        accessor: er.address(),
        reason: "unconscious patient, ER bay 2".into()
    }));
    assert_eq!(emergency_entries(&events), 1);

    // An emergency holder cannot open records without the emergency clause (nothing logged),
    // nor records whose clause they do not satisfy.
    assert!(matches!(
        v.get_emergency(er, plain, "unconscious patient").await,
        Err(Error::AccessDenied { .. })
    ));
    assert!(matches!(
        v.get(er, plain).await,
        Err(Error::AccessDenied { .. })
    ));
    assert_eq!(emergency_entries(&trail(v, plain).await), 0);
    assert!(matches!(
        v.get_emergency(lee, record, "curious").await,
        Err(Error::AccessDenied { .. })
    ));
    assert_eq!(emergency_entries(&trail(v, record).await), 1);

    // The emergency clause survives the subject's share and revoke (re-wrap and re-key).
    v.share(pat, record, lee.address()).await.unwrap();
    v.revoke(pat, record, lee.address()).await.unwrap();
    assert!(matches!(
        v.get(er, record).await,
        Err(Error::EmergencyOnly { .. })
    ));
    v.get_emergency(er, record, "second admission")
        .await
        .unwrap();
    v.get(ada, record).await.unwrap();
    v.get(pat, record).await.unwrap();
}

/// A put for a patient interrupted before `createRecordFor` is completed, with its subject,
/// by the next process (the subject is kept in the persisted intent).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupted_put_for_a_patient_keeps_its_subject() {
    let h = hospital().await;
    h.fail_create_for.store(true, Ordering::SeqCst);
    let failed = h
        .vault
        .put(&h.ada, report("interrupted").subject(h.pat.address()))
        .await;
    assert!(matches!(
        failed,
        Err(Error::Ledger(LedgerError::NodeUnavailable { .. }))
    ));
    assert_eq!(h.ledger.record_count().await.unwrap(), 0);
    h.fail_create_for.store(false, Ordering::SeqCst);

    // A new process over the same directory, store and chain.
    let mut again =
        Vault::with_backends(h.dir.path(), h.store.clone(), Arc::clone(&h.ledger)).unwrap();
    again.install_authority(h.authority.public_key()).unwrap();
    let record = again.recover(&h.ada).await.unwrap().unwrap();
    let info = h.ledger.record(record).await.unwrap();
    assert_eq!(info.subject, Some(h.pat.address()));
    let about: Vec<RecordId> = again
        .records_about(h.pat.address())
        .await
        .unwrap()
        .iter()
        .map(|i| i.record)
        .collect();
    assert_eq!(about, vec![record]);
    again.get(&h.pat, record).await.unwrap();
}
