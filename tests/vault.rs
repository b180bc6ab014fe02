//! The Vault's flows end to end: on embedded backends always, and against a real IPFS
//! node and Ethereum node when `MEDSEAL_IPFS_API` and `MEDSEAL_ETH_RPC` are set (with
//! `CI=true`, unset nodes are a failure).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stderr
)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use async_trait::async_trait;
use medseal::chain::dev_keys::anvil_dev_signer;
use medseal::chain::{
    B256, ChainLog, CreatedRecord, CreatedRecords, EmbeddedChain, Ledger, LedgerError,
    LedgerResult, LogFilter, TxOutcome, TxReceipt,
};
use medseal::storage::{Cid, LocalStore};
use medseal::{
    Address, Attachment, AuditEvent, Authority, Config, Error, InvalidInput, Keyword, Member,
    NewRecord, PrivateKeySigner, RecordId, Tampering, Vault,
};
use rand_core::OsRng;
use sha2::Digest as _;

struct People {
    cardiologist: Member,
    nurse: Member,
    researcher: Member,
    outsider: Member,
}

fn people(authority: &Authority) -> People {
    let issue = |name: &str, attrs: &[&str], key: usize| {
        authority
            .issue(
                name,
                attrs,
                medseal::Validity::months_from_now(12),
                anvil_dev_signer(key).unwrap(),
                &mut OsRng,
            )
            .unwrap()
    };
    People {
        cardiologist: issue("dr. ada", &["role:doctor", "dept:cardiology"], 0),
        nurse: issue("sam", &["role:nurse", "dept:cardiology"], 1),
        researcher: issue("rui", &["role:researcher"], 2),
        outsider: issue("dr. lee", &["role:doctor", "dept:neurology"], 3),
    }
}

/// Hands the registry to `authority` and registers every person: sharing with and
/// approving requests from unregistered addresses is refused.
async fn register(vault: &Vault, authority: &Authority, p: &People) {
    vault.adopt_authority(authority).await.unwrap();
    for member in [&p.cardiologist, &p.nurse, &p.researcher, &p.outsider] {
        vault.register_member(authority, member).await.unwrap();
    }
}

fn pdf(len: usize) -> Vec<u8> {
    let mut v = b"%PDF-1.7\n".to_vec();
    v.extend((0..len).map(|i| (i * 31 % 251) as u8));
    v
}

fn kw(text: &str) -> Keyword {
    Keyword::parse(text).unwrap()
}

/// Every flow of the issue, on whatever backends `vault` has. `tamper` corrupts a stored
/// block (only possible on the local store).
async fn flows(vault: &Vault, p: &People, tamper: Option<&dyn Fn(&Cid)>) {
    let ecg_pdf = pdf(300_000);
    let image = vec![0x89u8; 700_000];
    let ecg = vault
        .put(
            &p.cardiologist,
            NewRecord::new(
                "ECG report",
                "role:doctor and dept:cardiology".parse().unwrap(),
            )
            .keywords([kw("icd10:I48.0"), kw("term:atrial fibrillation")])
            .attach(Attachment::bytes(
                "ecg.pdf",
                "application/pdf",
                ecg_pdf.clone(),
            ))
            .attach(Attachment::bytes("scan.png", "image/png", image.clone())),
        )
        .await
        .unwrap();
    let vitals = vault
        .put(
            &p.cardiologist,
            NewRecord::new(
                "ward vitals",
                "(role:doctor or role:nurse) and dept:cardiology"
                    .parse()
                    .unwrap(),
            )
            .keyword(kw("icd10:I10"))
            .attach(Attachment::bytes(
                "vitals.txt",
                "text/plain",
                &b"bp 150/95"[..],
            )),
        )
        .await
        .unwrap();
    let cohort = vault
        .put(
            &p.cardiologist,
            NewRecord::new(
                "cohort extract",
                "role:researcher or (role:doctor and dept:cardiology)"
                    .parse()
                    .unwrap(),
            )
            .keywords([kw("icd10:I10"), kw("icd10:I48.0")])
            .attach(Attachment::bytes(
                "cohort.json",
                "application/json",
                &b"{}"[..],
            )),
        )
        .await
        .unwrap();

    // The owner reads everything back, byte for byte.
    let opened = vault.get(&p.cardiologist, ecg.record).await.unwrap();
    assert_eq!(opened.name, "ECG report");
    assert_eq!(opened.attachments.len(), 2);
    assert_eq!(opened.attachments[0].content_type, "application/pdf");
    assert_eq!(
        vault.read_attachment_bytes(&opened, 0).await.unwrap(),
        ecg_pdf
    );
    assert_eq!(
        vault.read_attachment_bytes(&opened, 1).await.unwrap(),
        image
    );
    assert!(matches!(
        vault.read_attachment_bytes(&opened, 2).await,
        Err(Error::InvalidInput(InvalidInput::NoSuchAttachment {
            index: 2,
            count: 2,
            ..
        }))
    ));

    // The nurse reads what the policy allows and is refused the rest.
    let v = vault.get(&p.nurse, vitals.record).await.unwrap();
    assert_eq!(
        vault.read_attachment_bytes(&v, 0).await.unwrap(),
        b"bp 150/95"
    );
    for refused in [ecg.record, cohort.record] {
        assert!(
            matches!(
                vault.get(&p.nurse, refused).await,
                Err(Error::AccessDenied { .. })
            ),
            "nurse must be refused {refused}"
        );
    }

    // The researcher finds by ICD-10 code only what is open to research.
    let found = vault.search(&p.researcher, &kw("icd10:I10")).await.unwrap();
    assert_eq!(found.records(), [cohort.record]);
    assert_eq!(found.hits[0].owner, p.cardiologist.address());
    assert!(found.rejected.is_empty());
    assert!(vault.get(&p.researcher, cohort.record).await.is_ok());
    assert!(matches!(
        vault.get(&p.researcher, ecg.record).await,
        Err(Error::AccessDenied { .. })
    ));
    // The doctor finds every matching record; nothing matches an unused code.
    let found = vault
        .search(&p.cardiologist, &kw("icd10:I48.0"))
        .await
        .unwrap();
    assert_eq!(found.records(), [ecg.record, cohort.record]);
    assert!(
        vault
            .search(&p.cardiologist, &kw("icd10:Z00"))
            .await
            .unwrap()
            .hits
            .is_empty()
    );
    assert!(
        vault
            .search(&p.outsider, &kw("icd10:I10"))
            .await
            .unwrap()
            .hits
            .is_empty()
    );

    // The outside doctor requests access, the owner approves, the doctor reads.
    assert!(matches!(
        vault.get(&p.outsider, ecg.record).await,
        Err(Error::AccessDenied { .. })
    ));
    vault.request_access(&p.outsider, ecg.record).await.unwrap();
    let pending = vault.pending_requests(&p.cardiologist).await.unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].requester, p.outsider.address());
    // Only the owner can answer.
    assert!(matches!(
        vault
            .answer_request(&p.nurse, ecg.record, p.outsider.address(), true)
            .await,
        Err(Error::NotOwner { .. })
    ));
    vault
        .answer_request(&p.cardiologist, ecg.record, p.outsider.address(), true)
        .await
        .unwrap();
    let shared = vault.get(&p.outsider, ecg.record).await.unwrap();
    assert_eq!(
        vault.read_attachment_bytes(&shared, 0).await.unwrap(),
        ecg_pdf
    );
    // Sharing re-wrapped only the key: the attachments are the same objects.
    assert_eq!(shared.attachments, opened.attachments);
    assert_ne!(shared.manifest_cid, opened.manifest_cid);
    // Sharing again is a no-op.
    vault
        .share(&p.cardiologist, ecg.record, p.outsider.address())
        .await
        .unwrap();

    // My records / shared with me.
    let mine: Vec<_> = vault
        .records_of(p.cardiologist.address())
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.record)
        .collect();
    assert_eq!(mine, [ecg.record, vitals.record, cohort.record]);
    let with_me: Vec<_> = vault
        .shared_with(p.outsider.address())
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.record)
        .collect();
    assert_eq!(with_me, [ecg.record]);

    // Audit trail: created, requested, updated (re-wrap), granted, accessed.
    let trail = vault.audit(ecg.record).await.unwrap();
    let has = |f: &dyn Fn(&AuditEvent) -> bool| trail.iter().any(|e| f(&e.event));
    assert!(matches!(trail[0].event, AuditEvent::Created { .. }));
    assert!(has(
        &|e| matches!(e, AuditEvent::AccessRequested { requester, .. } if *requester == p.outsider.address())
    ));
    assert!(has(
        &|e| matches!(e, AuditEvent::AccessGranted { user, .. } if *user == p.outsider.address())
    ));
    assert!(has(&|e| matches!(e, AuditEvent::Updated { .. })));
    assert!(has(
        &|e| matches!(e, AuditEvent::AccessLogged { accessor } if *accessor == p.outsider.address())
    ));

    // Revoke: the outside doctor can no longer open the current manifest, and the
    // attachments were re-encrypted under a new record key (new objects).
    vault
        .revoke(&p.cardiologist, ecg.record, p.outsider.address())
        .await
        .unwrap();
    assert!(matches!(
        vault.get(&p.outsider, ecg.record).await,
        Err(Error::AccessDenied { .. })
    ));
    assert!(
        vault
            .shared_with(p.outsider.address())
            .await
            .unwrap()
            .is_empty()
    );
    let rekeyed = vault.get(&p.cardiologist, ecg.record).await.unwrap();
    assert_eq!(
        vault.read_attachment_bytes(&rekeyed, 0).await.unwrap(),
        ecg_pdf
    );
    for (old, new) in opened.attachments.iter().zip(&rekeyed.attachments) {
        assert_ne!(old.cid, new.cid);
        assert_eq!((&old.name, old.size), (&new.name, new.size));
    }
    // Same plaintext and associated data, different ciphertext: a different record key.
    // The partition rotated: new records land in the next epoch and are still found,
    // old ones too.
    let later = vault
        .put(
            &p.cardiologist,
            NewRecord::new(
                "follow-up",
                "role:doctor and dept:cardiology".parse().unwrap(),
            )
            .keyword(kw("icd10:I48.0")),
        )
        .await
        .unwrap();
    let found = vault
        .search(&p.cardiologist, &kw("icd10:I48.0"))
        .await
        .unwrap();
    assert_eq!(found.records(), [ecg.record, cohort.record, later.record]);

    // Unknown records, foreign owners and malformed input give typed errors.
    assert!(matches!(
        vault.get(&p.nurse, RecordId(9_999)).await,
        Err(Error::UnknownRecord(RecordId(9_999)))
    ));
    assert!(matches!(
        vault
            .share(&p.nurse, vitals.record, p.researcher.address())
            .await,
        Err(Error::NotOwner { owner, .. }) if owner == p.cardiologist.address()
    ));
    assert!(matches!(
        vault
            .put(&p.nurse, NewRecord::new("", "role:nurse".parse().unwrap()))
            .await,
        Err(Error::InvalidInput(InvalidInput::Name {
            what: "record name",
            ..
        }))
    ));
    assert!(matches!(
        vault
            .put(
                &p.nurse,
                NewRecord::new("x", "role:nurse".parse().unwrap()).attach(Attachment::file(
                    "gone",
                    "text/plain",
                    "/nonexistent/medseal"
                ))
            )
            .await,
        Err(Error::Io { .. })
    ));

    // A tampered block is detected; other records stay readable.
    if let Some(tamper) = tamper {
        let cid: Cid = opened.attachments[1].cid.parse().unwrap();
        tamper(&cid);
        let err = vault.read_attachment_bytes(&opened, 1).await.unwrap_err();
        assert!(
            matches!(err, Error::Tampered(Tampering::Block(_))),
            "expected a block that fails verification, got {err:?}"
        );
        let v = vault.get(&p.nurse, vitals.record).await.unwrap();
        assert_eq!(
            vault.read_attachment_bytes(&v, 0).await.unwrap(),
            b"bp 150/95"
        );
    }
}

async fn embedded_vault(dir: &std::path::Path) -> (Vault, People) {
    let authority = Authority::setup(&mut OsRng);
    let mut vault = Vault::open_with(dir, &Config::embedded()).await.unwrap();
    vault.install_authority(authority.public_key()).unwrap();
    let p = people(&authority);
    register(&vault, &authority, &p).await;
    (vault, p)
}

/// Overwrites the middle byte of every block file of `cid`'s DAG root in the local store.
fn corrupt_block(blocks: &std::path::Path, cid: &Cid) {
    let store_path = {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        rt.block_on(async { LocalStore::open(blocks).await.unwrap().block_path(cid) })
    };
    let mut bytes = std::fs::read(&store_path).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x40;
    std::fs::write(&store_path, bytes).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_flow_on_embedded_backends() {
    let dir = tempfile::tempdir().unwrap();
    let (vault, p) = embedded_vault(dir.path()).await;
    let blocks = dir.path().join("blocks");
    let tamper = move |cid: &Cid| {
        let blocks = blocks.clone();
        let cid = *cid;
        std::thread::spawn(move || corrupt_block(&blocks, &cid))
            .join()
            .unwrap();
    };
    flows(&vault, &p, Some(&tamper)).await;
}

/// `Vault::open` without the environment (CI exports node URLs for the node tests).
async fn reopen(dir: &std::path::Path) -> Vault {
    Vault::open_with(dir, &Config::from_file(dir).unwrap())
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn state_survives_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let authority = Authority::setup(&mut OsRng);
    let p = people(&authority);
    let record = {
        let mut vault = reopen(dir.path()).await;
        vault.install_authority(authority.public_key()).unwrap();
        // A different authority key cannot replace the installed one.
        let other = Authority::setup(&mut OsRng);
        assert!(matches!(
            vault.install_authority(other.public_key()),
            Err(Error::InvalidInput(InvalidInput::OtherAuthority { .. }))
        ));
        vault
            .put(
                &p.cardiologist,
                NewRecord::new("r", "role:doctor".parse().unwrap())
                    .keyword(kw("icd10:I10"))
                    .attach(Attachment::bytes("a", "text/plain", &b"hello"[..])),
            )
            .await
            .unwrap()
            .record
    };
    let vault = reopen(dir.path()).await;
    let opened = vault.get(&p.outsider, record).await.unwrap();
    assert_eq!(
        vault.read_attachment_bytes(&opened, 0).await.unwrap(),
        b"hello"
    );
    let hits = vault.search(&p.outsider, &kw("icd10:I10")).await.unwrap();
    assert_eq!(hits.records(), [record]);
    // The owner's counters survived: a second record under the same keyword is found too.
    let second = vault
        .put(
            &p.cardiologist,
            NewRecord::new("r2", "role:doctor".parse().unwrap()).keyword(kw("icd10:I10")),
        )
        .await
        .unwrap();
    let hits = vault.search(&p.outsider, &kw("icd10:I10")).await.unwrap();
    assert_eq!(hits.records(), [record, second.record]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_attachment_streams_through() {
    let dir = tempfile::tempdir().unwrap();
    let (vault, p) = embedded_vault(dir.path()).await;
    const LEN: u64 = 24 << 20;
    let source = std::io::Read::take(std::io::repeat(0x5a), LEN);
    let receipt = vault
        .put(
            &p.cardiologist,
            NewRecord::new("mri", "role:doctor".parse().unwrap()).attach(Attachment::reader(
                "mri.dcm",
                "application/dicom",
                source,
                Some(LEN),
            )),
        )
        .await
        .unwrap();
    assert_eq!(receipt.attachments[0].size, LEN);
    let opened = vault.get(&p.outsider, receipt.record).await.unwrap();
    struct Check(u64);
    impl std::io::Write for Check {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            assert!(buf.iter().all(|&b| b == 0x5a));
            self.0 += buf.len() as u64;
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let out = vault.read_attachment(&opened, 0, Check(0)).await.unwrap();
    assert_eq!(out.0, LEN);
}

/// A ledger that fails chosen operations once, as if the process died right before them.
struct Flaky {
    inner: Arc<dyn Ledger>,
    fail_create: Arc<AtomicU32>,
    fail_anchor: Arc<AtomicU32>,
    /// Fails after the anchoring transaction went through.
    fail_after_anchor: Arc<AtomicU32>,
}

fn crashed() -> LedgerError {
    LedgerError::NodeUnavailable {
        endpoint: "injected crash".into(),
        attempts: 1,
        source: "injected".into(),
    }
}

fn take(flag: &AtomicU32) -> bool {
    flag.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok()
}

// Only the required methods delegate; the overridden operations are the ones that fail,
// every other operation is the provided one running over `inner`'s transact/call/logs.
#[async_trait]
impl Ledger for Flaky {
    fn sender(&self) -> Address {
        self.inner.sender()
    }
    fn registry_address(&self) -> Address {
        self.inner.registry_address()
    }
    fn for_signer(&self, signer: PrivateKeySigner) -> Arc<dyn Ledger> {
        Arc::new(Flaky {
            inner: self.inner.for_signer(signer),
            fail_create: Arc::clone(&self.fail_create),
            fail_anchor: Arc::clone(&self.fail_anchor),
            fail_after_anchor: Arc::clone(&self.fail_after_anchor),
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
    async fn create_record(&self, cid: &str, hash: B256) -> LedgerResult<CreatedRecord> {
        // Fail *after* the transaction: the worst case for recovery.
        let created = self.inner.create_record(cid, hash).await?;
        if take(&self.fail_create) {
            return Err(crashed());
        }
        Ok(created)
    }
    async fn create_records(&self, records: &[(String, B256)]) -> LedgerResult<CreatedRecords> {
        let created = self.inner.create_records(records).await?;
        if take(&self.fail_create) {
            return Err(crashed());
        }
        Ok(created)
    }
    async fn anchor_index(
        &self,
        p: B256,
        first: u64,
        last: u64,
        cid: &str,
        root: B256,
    ) -> LedgerResult<TxReceipt> {
        if take(&self.fail_anchor) {
            return Err(crashed());
        }
        let anchored = self.inner.anchor_index(p, first, last, cid, root).await?;
        if take(&self.fail_after_anchor) {
            return Err(crashed());
        }
        Ok(anchored)
    }
}

/// A vault over persistent embedded backends in `dir` whose ledger fails once per unit
/// of `fail_create` (after the transaction), `fail_anchor` (before) and
/// `fail_after_anchor` (after).
async fn flaky_vault(
    dir: &std::path::Path,
    authority: &Authority,
    [fail_create, fail_anchor, fail_after_anchor]: [&Arc<AtomicU32>; 3],
) -> Vault {
    let chain = EmbeddedChain::open(dir.join("chain.journal"), PrivateKeySigner::random()).unwrap();
    let store = Arc::new(LocalStore::open(dir.join("blocks")).await.unwrap());
    let ledger = Arc::new(Flaky {
        inner: Arc::new(chain),
        fail_create: Arc::clone(fail_create),
        fail_anchor: Arc::clone(fail_anchor),
        fail_after_anchor: Arc::clone(fail_after_anchor),
    });
    let mut vault = Vault::with_backends(dir, store, ledger).unwrap();
    vault.install_authority(authority.public_key()).unwrap();
    vault
}

/// The ids of the records `owner` owns, ascending.
async fn record_ids(vault: &Vault, owner: Address) -> Vec<RecordId> {
    let records = vault.records_of(owner).await.unwrap();
    records.into_iter().map(|r| r.record).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interrupted_puts_complete_without_loss_or_duplicates() {
    let dir = tempfile::tempdir().unwrap();
    let authority = Authority::setup(&mut OsRng);
    let p = people(&authority);
    let fail_create = Arc::new(AtomicU32::new(0));
    let fail_anchor = Arc::new(AtomicU32::new(0));
    let fail_after_anchor = Arc::new(AtomicU32::new(0));
    let flags = [&fail_create, &fail_anchor, &fail_after_anchor];
    let open = || flaky_vault(dir.path(), &authority, flags);
    let record =
        |name: &str| NewRecord::new(name, "role:doctor".parse().unwrap()).keyword(kw("icd10:I10"));

    // Crash right after createRecord, before the process learnt the id.
    fail_create.store(1, Ordering::SeqCst);
    let vault = open().await;
    assert!(vault.put(&p.cardiologist, record("a")).await.is_err());
    drop(vault);
    // Crash before anchoring the shard, in a new "process".
    let vault = open().await;
    let recovered = vault.recover(&p.cardiologist).await.unwrap();
    assert_eq!(
        recovered,
        Some(RecordId(1)),
        "the created record is found, not re-created"
    );
    fail_anchor.store(1, Ordering::SeqCst);
    assert!(vault.put(&p.cardiologist, record("b")).await.is_err());
    drop(vault);
    // The next put completes the interrupted one first.
    let vault = open().await;
    let c = vault.put(&p.cardiologist, record("c")).await.unwrap();
    assert_eq!(c.record, RecordId(3));
    // Crash after anchoring, before the index state was committed: the rebuilt shard
    // matches the anchored one and the counters advance.
    fail_after_anchor.store(1, Ordering::SeqCst);
    assert!(vault.put(&p.cardiologist, record("d")).await.is_err());
    drop(vault);
    let vault = open().await;
    assert_eq!(
        vault.recover(&p.cardiologist).await.unwrap(),
        Some(RecordId(4))
    );
    let e = vault.put(&p.cardiologist, record("e")).await.unwrap();
    assert_eq!(e.record, RecordId(5));
    let ids = record_ids(&vault, p.cardiologist.address()).await;
    assert_eq!(
        ids,
        (1..=5).map(RecordId).collect::<Vec<_>>(),
        "no duplicates"
    );
    let hits = vault.search(&p.outsider, &kw("icd10:I10")).await.unwrap();
    assert_eq!(hits.records(), ids, "every record is searchable");
    assert_eq!(vault.recover(&p.cardiologist).await.unwrap(), None);
}

fn node_urls() -> Option<(String, String)> {
    let ipfs = std::env::var("MEDSEAL_IPFS_API")
        .ok()
        .filter(|s| !s.is_empty());
    let eth = std::env::var("MEDSEAL_ETH_RPC")
        .ok()
        .filter(|s| !s.is_empty());
    match (ipfs, eth) {
        (Some(i), Some(e)) => Some((i, e)),
        _ if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("CI=true but MEDSEAL_IPFS_API / MEDSEAL_ETH_RPC are not both set")
        }
        _ => {
            eprintln!("skipping: set MEDSEAL_IPFS_API and MEDSEAL_ETH_RPC to run against nodes");
            None
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_flow_on_ipfs_and_ethereum_nodes() {
    let Some((ipfs, eth)) = node_urls() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::embedded();
    config.ipfs_api = Some(ipfs);
    config.eth_rpc = Some(eth);
    config.eth_key = Some(hex::encode(anvil_dev_signer(0).unwrap().to_bytes()));
    let authority = Authority::setup(&mut OsRng);
    let mut vault = Vault::open_with(dir.path(), &config).await.unwrap();
    vault.install_authority(authority.public_key()).unwrap();
    // The deployed registry was written to the config file: reopening connects to it.
    let saved = Config::from_file(dir.path()).unwrap();
    assert_eq!(
        saved.registry.as_deref(),
        Some(vault.ledger().registry_address().to_string().as_str())
    );
    fund_on_anvil(
        config.eth_rpc.as_deref().unwrap_or_default(),
        authority.chain_signer().address(),
    );
    let p = people(&authority);
    register(&vault, &authority, &p).await;
    flows(&vault, &p, None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forged_partition_is_rejected_without_failing_the_search() {
    use medseal::index::sse::{Capsule, OwnerPartition, Partition};
    let dir = tempfile::tempdir().unwrap();
    let (vault, p) = embedded_vault(dir.path()).await;
    let real = vault
        .put(
            &p.cardiologist,
            NewRecord::new("r", "role:researcher".parse().unwrap()).keyword(kw("icd10:I10")),
        )
        .await
        .unwrap();
    // Mallory (any chain account) publishes a partition whose capsule does not match, and
    // a well-formed partition that claims the cardiologist's record.
    let mallory = PrivateKeySigner::random();
    let as_mallory = vault.ledger().for_signer(mallory.clone());
    let garbage = vault
        .store()
        .put(b"not a capsule".to_vec().into(), Default::default())
        .await
        .unwrap();
    as_mallory
        .publish_capsule(
            B256::repeat_byte(7),
            0,
            &garbage.to_string(),
            B256::repeat_byte(1),
        )
        .await
        .unwrap();
    let policy: medseal::abe::Policy = "role:researcher".parse().unwrap();
    let partition = Partition::new(mallory.address().as_slice(), policy.clone(), 0).unwrap();
    let pid = B256::from(*partition.id().as_bytes());
    let mut owner = OwnerPartition::create(partition, &mut OsRng);
    let capsule = Capsule::seal(
        vault.public_key().unwrap(),
        owner.partition(),
        owner.key(),
        &mut OsRng,
    )
    .unwrap();
    let capsule_cid = vault
        .store()
        .put(capsule.as_bytes().to_vec().into(), Default::default())
        .await
        .unwrap();
    let hash: [u8; 32] = sha2::Sha256::digest(policy.to_string().as_bytes()).into();
    as_mallory
        .publish_capsule(pid, 0, &capsule_cid.to_string(), hash.into())
        .await
        .unwrap();
    let mut stolen = [0u8; 32];
    stolen[..8].copy_from_slice(&real.record.0.to_be_bytes());
    let i10 = kw("icd10:I10");
    let shard = owner
        .batch([(&i10, medseal::index::RecordRef::new(stolen).unwrap())])
        .unwrap();
    let shard_cid = vault
        .store()
        .put(shard.to_bytes().into(), Default::default())
        .await
        .unwrap();
    as_mallory
        .anchor_index(
            pid,
            0,
            0,
            &shard_cid.to_string(),
            B256::from(*shard.root().as_bytes()),
        )
        .await
        .unwrap();

    // A partition published after Mallory's: the owner check of all partitions' hits is
    // one call, and a foreign hit rejects only its own partition.
    let later = vault
        .put(
            &p.nurse,
            NewRecord::new("n", "role:researcher".parse().unwrap()).keyword(kw("icd10:I10")),
        )
        .await
        .unwrap();

    // Cold (heads looked up) and warm (one call checks every loaded head): the same answer.
    for _ in 0..2 {
        let found = vault.search(&p.researcher, &i10).await.unwrap();
        let hits: Vec<_> = found.hits.iter().map(|h| (h.record, h.owner)).collect();
        assert_eq!(
            hits,
            [
                (real.record, p.cardiologist.address()),
                (later.record, p.nurse.address())
            ]
        );
        let reasons: Vec<_> = found.rejected.iter().map(|r| r.publisher).collect();
        assert_eq!(reasons, [mallory.address(), mallory.address()], "{found:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sharing_unpins_the_superseded_manifest_but_not_the_attachments() {
    let dir = tempfile::tempdir().unwrap();
    let authority = Authority::setup(&mut OsRng);
    let p = people(&authority);
    let store = Arc::new(LocalStore::open(dir.path().join("blocks")).await.unwrap());
    let chain = EmbeddedChain::in_memory(PrivateKeySigner::random()).unwrap();
    let mut vault = Vault::with_backends(dir.path(), store.clone(), Arc::new(chain)).unwrap();
    vault.install_authority(authority.public_key()).unwrap();
    register(&vault, &authority, &p).await;
    let put = vault
        .put(
            &p.cardiologist,
            NewRecord::new("ecg", "role:doctor".parse().unwrap()).attach(Attachment::bytes(
                "ecg.pdf",
                "application/pdf",
                pdf(1000),
            )),
        )
        .await
        .unwrap();
    let attachment: Cid = put.attachments[0].cid.parse().unwrap();
    assert!(store.pins().await.contains(&put.manifest_cid));
    vault
        .share(&p.cardiologist, put.record, p.outsider.address())
        .await
        .unwrap();
    let shared = vault.get(&p.outsider, put.record).await.unwrap();
    let pins = store.pins().await;
    assert!(
        !pins.contains(&put.manifest_cid),
        "old manifest still pinned"
    );
    assert!(pins.contains(&shared.manifest_cid));
    assert!(pins.contains(&attachment));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_from_another_authority_is_refused_up_front() {
    let dir = tempfile::tempdir().unwrap();
    let (vault, p) = embedded_vault(dir.path()).await;
    let other = Authority::setup(&mut OsRng);
    let stranger = other
        .issue(
            "stranger",
            ["role:doctor"],
            medseal::Validity::months_from_now(12),
            PrivateKeySigner::random(),
            &mut OsRng,
        )
        .unwrap();
    let record = || NewRecord::new("note", "role:doctor".parse().unwrap()).keyword(kw("icd10:I10"));
    let refused = vault.put(&stranger, record()).await;
    assert!(
        matches!(
            refused,
            Err(Error::InvalidInput(InvalidInput::ForeignKey { member })) if member == stranger.address()
        ),
        "{refused:?}"
    );
    // Nothing reached the chain.
    assert!(
        vault
            .records_of(stranger.address())
            .await
            .unwrap()
            .is_empty()
    );
    // A member of the vault's own authority is accepted (and checked once).
    let put = vault.put(&p.cardiologist, record()).await.unwrap();
    vault.put(&p.cardiologist, record()).await.unwrap();
    assert!(matches!(
        vault.share(&stranger, put.record, p.nurse.address()).await,
        Err(Error::InvalidInput(InvalidInput::ForeignKey { .. }))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn index_shards_merge_logarithmically_and_search_stays_complete() {
    let dir = tempfile::tempdir().unwrap();
    let authority = Authority::setup(&mut OsRng);
    let p = people(&authority);
    let store = Arc::new(LocalStore::open(dir.path().join("blocks")).await.unwrap());
    let chain = EmbeddedChain::in_memory(PrivateKeySigner::random()).unwrap();
    let ledger: Arc<dyn Ledger> = Arc::new(chain);
    let mut vault = Vault::with_backends(dir.path(), store.clone(), Arc::clone(&ledger)).unwrap();
    vault.install_authority(authority.public_key()).unwrap();
    let common = kw("icd10:I10");
    let mut ids = Vec::new();
    for n in 0..48u32 {
        let record = NewRecord::new(format!("r{n}"), "role:doctor".parse().unwrap())
            .keyword(common.clone())
            .keyword(kw(&format!("term:case-{n}")));
        ids.push(vault.put(&p.cardiologist, record).await.unwrap().record);
        if n % 7 == 3 {
            // A warm searcher (this vault) and a cold one (a new vault on the same
            // backends) both see every record so far.
            let warm = vault.search(&p.outsider, &common).await.unwrap();
            assert_eq!(warm.records(), ids);
            let mut cold =
                Vault::with_backends(dir.path(), store.clone(), Arc::clone(&ledger)).unwrap();
            cold.install_authority(authority.public_key()).unwrap();
            assert_eq!(
                cold.search(&p.outsider, &common).await.unwrap().records(),
                ids
            );
        }
    }
    let capsules = ledger
        .capsules(Some(p.cardiologist.address()))
        .await
        .unwrap();
    assert_eq!(capsules.len(), 1);
    let live = ledger
        .live_index_anchors(p.cardiologist.address(), capsules[0].partition)
        .await
        .unwrap();
    // 48 batches of 2 entries: weight 48 · 3 = 144, so at most floor(log2 144) + 1 = 8.
    assert!(live.len() <= 8, "{} live shards", live.len());
    assert_eq!(live.last().unwrap().last_seq, 47);
    // Only the live shards stay pinned; the superseded ones were released.
    let all = ledger
        .index_anchors(p.cardiologist.address(), capsules[0].partition)
        .await
        .unwrap();
    let pins = store.pins().await;
    for anchor in &all {
        let cid: Cid = anchor.shard_cid.parse().unwrap();
        assert_eq!(
            pins.contains(&cid),
            live.contains(anchor),
            "batch {}",
            anchor.last_seq
        );
    }
    let one = vault
        .search(&p.outsider, &kw("term:case-17"))
        .await
        .unwrap();
    assert_eq!(one.records(), vec![ids[17]]);
    // Past 32 batches a warm vault checks its known head in O(1) reads: unchanged, it
    // answers the same; after another put, it sees the new batch.
    assert_eq!(
        vault.search(&p.outsider, &common).await.unwrap().records(),
        ids
    );
    let record = NewRecord::new("r48", "role:doctor".parse().unwrap()).keyword(common.clone());
    ids.push(vault.put(&p.cardiologist, record).await.unwrap().record);
    assert_eq!(
        vault.search(&p.outsider, &common).await.unwrap().records(),
        ids
    );
    assert_eq!(
        vault.search(&p.outsider, &common).await.unwrap().records(),
        ids
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bulk_import_batches_chain_calls_and_survives_crashes() {
    let dir = tempfile::tempdir().unwrap();
    let authority = Authority::setup(&mut OsRng);
    let p = people(&authority);
    let fail_create = Arc::new(AtomicU32::new(0));
    let fail_anchor = Arc::new(AtomicU32::new(0));
    let never = Arc::new(AtomicU32::new(0));
    let open = || flaky_vault(dir.path(), &authority, [&fail_create, &fail_anchor, &never]);
    let batch = |from: u32, n: u32| -> Vec<NewRecord> {
        (from..from + n)
            .map(|i| {
                let policy = if i % 3 == 0 {
                    "role:doctor or role:nurse"
                } else {
                    "role:doctor"
                };
                NewRecord::new(format!("import-{i}"), policy.parse().unwrap())
                    .keyword(kw("icd10:I10"))
                    .keyword(kw(&format!("term:case-{i}")))
            })
            .collect()
    };
    let vault = open().await;
    // 230 records: batches of 100, 100 and 30, each one createRecords and per policy one
    // shard and anchor.
    let receipts = vault
        .put_many(&p.cardiologist, batch(0, 230))
        .await
        .unwrap();
    let ids: Vec<RecordId> = receipts.iter().map(|r| r.record).collect();
    assert_eq!(ids, (1..=230).map(RecordId).collect::<Vec<_>>());
    // One shard per policy per batch: records 1 and 2 share one, record 0 (the other
    // policy) has its own.
    assert_eq!(receipts[1].shard_cid, receipts[2].shard_cid);
    assert_ne!(receipts[0].shard_cid, receipts[1].shard_cid);
    let opened = vault.get(&p.cardiologist, ids[5]).await.unwrap();
    assert_eq!(opened.name, "import-5");
    let found = vault
        .search(&p.cardiologist, &kw("icd10:I10"))
        .await
        .unwrap();
    assert!(found.rejected.is_empty(), "{:?}", found.rejected);
    assert_eq!(found.records(), ids);
    assert_eq!(
        vault
            .search(&p.nurse, &kw("term:case-42"))
            .await
            .unwrap()
            .records(),
        vec![ids[42]]
    );
    let head = |vault: &Vault| {
        let ledger = Arc::clone(vault.ledger());
        let owner = p.cardiologist.address();
        async move {
            let mut batches = 0;
            for capsule in ledger.capsules(Some(owner)).await.unwrap() {
                batches += ledger.index_head(owner, capsule.partition).await.unwrap();
            }
            batches
        }
    };
    // Two policies, three batches: six index batches, not 230.
    assert_eq!(head(&vault).await, 6);

    // A crash right after the chain created a batch's records: the next process finds
    // them (no duplicates) and completes the index.
    fail_create.store(1, Ordering::SeqCst);
    assert!(
        vault
            .put_many(&p.cardiologist, batch(230, 40))
            .await
            .is_err()
    );
    drop(vault);
    let vault = open().await;
    assert_eq!(
        vault.recover(&p.cardiologist).await.unwrap(),
        Some(RecordId(270))
    );
    // A crash before a batch's anchor: the next put completes it first.
    fail_anchor.store(1, Ordering::SeqCst);
    assert!(
        vault
            .put_many(&p.cardiologist, batch(270, 20))
            .await
            .is_err()
    );
    drop(vault);
    let vault = open().await;
    let last = vault
        .put(&p.cardiologist, batch(290, 1).pop().unwrap())
        .await
        .unwrap();
    assert_eq!(last.record, RecordId(291));
    let all = record_ids(&vault, p.cardiologist.address()).await;
    assert_eq!(
        all,
        (1..=291).map(RecordId).collect::<Vec<_>>(),
        "no duplicates"
    );
    let found = vault.search(&p.outsider, &kw("icd10:I10")).await.unwrap();
    assert_eq!(found.records(), all, "every record is searchable");
    // Invalid input anywhere stores nothing.
    let mut bad = batch(400, 3);
    bad.push(NewRecord::new(" ", "role:doctor".parse().unwrap()));
    assert!(matches!(
        vault.put_many(&p.cardiologist, bad).await,
        Err(Error::InvalidInput(_))
    ));
    assert_eq!(vault.ledger().record_count().await.unwrap(), 291);
}

/// The records of the kill test, in import order: two policies (two index partitions),
/// one common keyword and one keyword per record.
fn kill_test_records() -> Vec<NewRecord> {
    (0..KILL_TEST_RECORDS)
        .map(|i| {
            let policy = if i % 4 == 0 {
                "role:doctor or role:nurse"
            } else {
                "role:doctor"
            };
            NewRecord::new(format!("import-{i}"), policy.parse().unwrap())
                .keyword(kw("icd10:I10"))
                .keyword(kw(&format!("term:case-{i}")))
                .attach(Attachment::bytes(
                    format!("letter-{i}.txt"),
                    "text/plain",
                    format!("discharge letter {i}").into_bytes(),
                ))
        })
        .collect()
}

/// Records imported by the kill test (7 batches: merges happen along the way).
const KILL_TEST_RECORDS: usize = 700;
/// The child mode of `bulk_import_survives_sigkill`: the data directory to import into.
const KILL_TEST_DIR: &str = "MEDSEAL_KILL_TEST_DIR";

/// Child process of `bulk_import_survives_sigkill` (does nothing without its variable):
/// reopens the vault, completes an interrupted batch, and imports the records after the
/// ones the owner already has, with `put_many`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bulk_import_kill_child() {
    let Some(dir) = std::env::var_os(KILL_TEST_DIR) else {
        return;
    };
    let dir = std::path::PathBuf::from(dir);
    let owner = Member::from_bytes(&std::fs::read(dir.join("owner.key")).unwrap()).unwrap();
    let vault = Vault::open_with(&dir, &Config::embedded()).await.unwrap();
    vault.recover(&owner).await.unwrap();
    // Batches complete in order: the owner's records are a prefix of the input.
    let done = vault.records_of(owner.address()).await.unwrap().len();
    eprintln!("child: {done} of {KILL_TEST_RECORDS} records stored, importing the rest");
    let rest: Vec<NewRecord> = kill_test_records().into_iter().skip(done).collect();
    if !rest.is_empty() {
        vault.put_many(&owner, rest).await.unwrap();
    }
    eprintln!("child: done");
}

/// A bulk import SIGKILLed at random moments (during sealing, chain transactions, index
/// merges, state writes) and resumed: nothing acknowledged is lost, nothing duplicated,
/// and search returns exactly the imported records.
#[test]
fn bulk_import_survives_sigkill() {
    use rand_core::RngCore;
    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant};

    let dir = tempfile::tempdir().unwrap();
    let authority = Authority::setup(&mut OsRng);
    let p = people(&authority);
    std::fs::write(dir.path().join("owner.key"), p.cardiologist.to_bytes()).unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let mut vault = Vault::open_with(dir.path(), &Config::embedded())
            .await
            .unwrap();
        vault.install_authority(authority.public_key()).unwrap();
    });
    let child = || {
        let mut command = Command::new(std::env::current_exe().unwrap());
        command
            .args(["--exact", "bulk_import_kill_child", "--nocapture"])
            .env(KILL_TEST_DIR, dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        command
    };
    let count = |runtime: &tokio::runtime::Runtime| {
        runtime.block_on(async {
            let vault = Vault::open_with(dir.path(), &Config::embedded())
                .await
                .unwrap();
            vault
                .records_of(p.cardiologist.address())
                .await
                .unwrap()
                .len()
        })
    };
    let started = Instant::now();
    let mut kills = 0;
    for round in 0..10 {
        let mut running = child().spawn().unwrap();
        // Past process start and vault opening (~0.1 s) up to a few batches in.
        let delay = Duration::from_millis(100 + OsRng.next_u64() % 1_400);
        std::thread::sleep(delay);
        if running.try_wait().unwrap().is_some() {
            let out = running.wait_with_output().unwrap();
            assert!(
                out.status.success(),
                "child failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            eprintln!("round {round}: the import finished within {delay:?}");
            break;
        }
        running.kill().unwrap(); // SIGKILL
        running.wait().unwrap();
        kills += 1;
        eprintln!(
            "round {round}: killed after {delay:?}; {} records stored so far",
            count(&runtime)
        );
    }
    // Run to completion.
    let out = child().output().unwrap();
    assert!(
        out.status.success(),
        "final child failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!(
        "{kills} kills, import complete after {:?}",
        started.elapsed()
    );
    assert!(kills > 0, "the import was never interrupted");

    runtime.block_on(async {
        let vault = Vault::open_with(dir.path(), &Config::embedded())
            .await
            .unwrap();
        assert_eq!(vault.recover(&p.cardiologist).await.unwrap(), None);
        let ids = record_ids(&vault, p.cardiologist.address()).await;
        assert_eq!(ids.len(), KILL_TEST_RECORDS, "every record exactly once");
        assert_eq!(
            vault.ledger().record_count().await.unwrap(),
            KILL_TEST_RECORDS as u64,
            "no stray records on chain"
        );
        // Each record holds the input record of its position (no record twice, none lost).
        for (i, &id) in ids.iter().enumerate().step_by(7) {
            let opened = vault.get(&p.cardiologist, id).await.unwrap();
            assert_eq!(opened.name, format!("import-{i}"));
            assert_eq!(
                vault.read_attachment_bytes(&opened, 0).await.unwrap(),
                format!("discharge letter {i}").into_bytes()
            );
        }
        let found = vault
            .search(&p.cardiologist, &kw("icd10:I10"))
            .await
            .unwrap();
        assert!(found.rejected.is_empty(), "{:?}", found.rejected);
        assert_eq!(found.records(), ids, "search finds each record once");
        let nurse_ids: Vec<RecordId> = ids.iter().copied().step_by(4).collect();
        let found = vault.search(&p.nurse, &kw("icd10:I10")).await.unwrap();
        assert_eq!(found.records(), nurse_ids);
        for i in [0, 99, 100, 101, 350, KILL_TEST_RECORDS - 1] {
            let found = vault
                .search(&p.outsider, &kw(&format!("term:case-{i}")))
                .await
                .unwrap();
            assert_eq!(found.records(), [ids[i]], "term:case-{i}");
        }
    });
}

/// Gives `address` 1000 ether on an anvil node (`anvil_setBalance`, no transaction): the
/// anvil dev accounts stay with the other node tests, which run at the same time (two
/// tests sending from one account race for its nonces).
fn fund_on_anvil(rpc: &str, address: Address) {
    use std::io::{Read, Write};
    let rest = rpc.trim_start_matches("http://");
    let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
    let body = format!(
        r#"{{"jsonrpc":"2.0","id":1,"method":"anvil_setBalance","params":["{address}","0x3635c9adc5dea00000"]}}"#
    );
    let mut stream = std::net::TcpStream::connect(host).unwrap();
    write!(
        stream,
        "POST /{path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    assert!(response.contains("\"result\""), "{response}");
}

/// `put_many` on a real IPFS node and Ethereum node (anvil): several batches (at least one
/// index merge), then search and get.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bulk_import_on_ipfs_and_ethereum_nodes() {
    let Some((ipfs, eth)) = node_urls() else {
        return;
    };
    let (deployer, owner) = (PrivateKeySigner::random(), PrivateKeySigner::random());
    fund_on_anvil(&eth, deployer.address());
    fund_on_anvil(&eth, owner.address());
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::embedded();
    config.ipfs_api = Some(ipfs);
    config.eth_rpc = Some(eth);
    config.eth_key = Some(hex::encode(deployer.to_bytes()));
    let authority = Authority::setup(&mut OsRng);
    let mut vault = Vault::open_with(dir.path(), &config).await.unwrap();
    vault.install_authority(authority.public_key()).unwrap();
    let issue = |name: &str, attrs: &[&str], signer: PrivateKeySigner| {
        authority
            .issue(
                name,
                attrs,
                medseal::Validity::months_from_now(12),
                signer,
                &mut OsRng,
            )
            .unwrap()
    };
    // Only the owner sends transactions (the readers are neither owner nor grantee).
    let p = People {
        cardiologist: issue("dr. ada", &["role:doctor", "dept:cardiology"], owner),
        nurse: issue("sam", &["role:nurse"], PrivateKeySigner::random()),
        researcher: issue("rui", &["role:researcher"], PrivateKeySigner::random()),
        outsider: issue("dr. lee", &["role:doctor"], PrivateKeySigner::random()),
    };
    const N: usize = 250;
    let records: Vec<NewRecord> = (0..N)
        .map(|i| {
            NewRecord::new(format!("import-{i}"), "role:doctor".parse().unwrap())
                .keyword(kw("icd10:I10"))
                .keyword(kw(&format!("term:case-{i}")))
                .attach(Attachment::bytes(
                    "letter.txt",
                    "text/plain",
                    format!("letter {i}").into_bytes(),
                ))
        })
        .collect();
    let started = std::time::Instant::now();
    let receipts = vault.put_many(&p.cardiologist, records).await.unwrap();
    eprintln!("{N} records in {:?}", started.elapsed());
    let ids: Vec<RecordId> = receipts.iter().map(|r| r.record).collect();
    assert_eq!(ids.len(), N);
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "ids in input order");
    // Three batches, one partition: the third batch's shard merges with the second's.
    let ledger = Arc::clone(vault.ledger());
    let owner = p.cardiologist.address();
    let capsules = ledger.capsules(Some(owner)).await.unwrap();
    assert_eq!(capsules.len(), 1);
    let partition = capsules[0].partition;
    assert_eq!(ledger.index_head(owner, partition).await.unwrap(), 3);
    let live = ledger.live_index_anchors(owner, partition).await.unwrap();
    let all = ledger.index_anchors(owner, partition).await.unwrap();
    assert!(live.len() < all.len(), "no merge: {live:?}");
    assert_eq!(record_ids(&vault, owner).await, ids);

    let found = vault.search(&p.outsider, &kw("icd10:I10")).await.unwrap();
    assert!(found.rejected.is_empty(), "{:?}", found.rejected);
    assert_eq!(found.records(), ids);
    for i in [0, 100, 249] {
        let found = vault
            .search(&p.outsider, &kw(&format!("term:case-{i}")))
            .await
            .unwrap();
        assert_eq!(found.records(), [ids[i]]);
        let opened = vault.get(&p.outsider, ids[i]).await.unwrap();
        assert_eq!(opened.name, format!("import-{i}"));
        assert_eq!(
            vault.read_attachment_bytes(&opened, 0).await.unwrap(),
            format!("letter {i}").into_bytes()
        );
    }
    // A cold vault on the same nodes (new process state) finds the same records.
    let mut cold_config = config.clone();
    cold_config.registry = Some(vault.ledger().registry_address().to_string());
    let mut cold = Vault::open_with(dir.path(), &cold_config).await.unwrap();
    cold.install_authority(authority.public_key()).unwrap();
    assert_eq!(
        cold.ledger().registry_address(),
        vault.ledger().registry_address()
    );
    assert_eq!(
        cold.search(&p.nurse, &kw("term:case-7"))
            .await
            .unwrap()
            .records(),
        Vec::<RecordId>::new(),
        "the nurse's attributes do not satisfy role:doctor"
    );
    assert_eq!(
        cold.search(&p.outsider, &kw("icd10:I10"))
            .await
            .unwrap()
            .records(),
        ids
    );
}

/// Bulk import on the local store: a batch's attachments and manifests are made durable
/// and pinned together (one pin transaction for the batch, not two per record), and a
/// batch that fails while sealing pins and keeps nothing, so importing again completes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bulk_batch_pins_in_one_transaction_and_a_failed_one_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let authority = Authority::setup(&mut OsRng);
    let p = people(&authority);
    let chain =
        EmbeddedChain::open(dir.path().join("chain.journal"), PrivateKeySigner::random()).unwrap();
    let store = LocalStore::open(dir.path().join("blocks")).await.unwrap();
    let mut vault =
        Vault::with_backends(dir.path(), Arc::new(store.clone()), Arc::new(chain)).unwrap();
    vault.install_authority(authority.public_key()).unwrap();
    let records = |from: u32, n: u32| -> Vec<NewRecord> {
        (from..from + n)
            .map(|i| {
                NewRecord::new(format!("import-{i}"), "role:doctor".parse().unwrap())
                    .keyword(kw(&format!("term:case-{i}")))
                    .attach(Attachment::bytes("note.txt", "text/plain", pdf(1024)))
            })
            .collect()
    };
    // A first record creates the partition, so the batch below only adds records.
    vault
        .put(&p.cardiologist, records(0, 1).pop().unwrap())
        .await
        .unwrap();

    let before = store.stats();
    let pins_before = store.pins().await.len();
    let receipts = vault
        .put_many(&p.cardiologist, records(1, 100))
        .await
        .unwrap();
    let after = store.stats();
    // 200 pinned puts (an attachment and a manifest per record) plus the index shard.
    assert!(store.pins().await.len() >= pins_before + 200);
    let pin_commits = after.pin_commits - before.pin_commits;
    let block_commits = after.block_commits - before.block_commits;
    eprintln!("one bulk batch: {pin_commits} pin transactions, {block_commits} block syncs");
    assert!(
        pin_commits <= 4,
        "{pin_commits} pin transactions for one batch"
    );
    assert!(
        block_commits <= 4,
        "{block_commits} block syncs for one batch"
    );
    let opened = vault
        .get(&p.cardiologist, receipts[99].record)
        .await
        .unwrap();
    assert_eq!(
        vault.read_attachment_bytes(&opened, 0).await.unwrap(),
        pdf(1024)
    );

    // A batch whose 50th attachment cannot be read: nothing of it is pinned or kept,
    // and no intent is left, so importing the records again stores each once.
    let pins_before = store.pins().await;
    let blocks_before = store.list_blocks().await.unwrap().len();
    let mut failing = records(101, 100);
    failing[50] =
        NewRecord::new("import-151", "role:doctor".parse().unwrap()).attach(Attachment::file(
            "scan.pdf",
            "application/pdf",
            dir.path().join("no-such-file"),
        ));
    assert!(vault.put_many(&p.cardiologist, failing).await.is_err());
    assert_eq!(store.pins().await, pins_before);
    assert_eq!(store.list_blocks().await.unwrap().len(), blocks_before);
    let receipts = vault
        .put_many(&p.cardiologist, records(101, 100))
        .await
        .unwrap();
    assert_eq!(receipts[0].record, RecordId(102));
    assert_eq!(receipts[99].record, RecordId(201));
    let all = record_ids(&vault, p.cardiologist.address()).await;
    assert_eq!(all, (1..=201).map(RecordId).collect::<Vec<_>>());
    // Garbage collection (which takes superseded index shards) keeps every record.
    store.gc().await.unwrap();
    for receipt in [&receipts[0], &receipts[50], &receipts[99]] {
        let opened = vault.get(&p.cardiologist, receipt.record).await.unwrap();
        assert_eq!(
            vault.read_attachment_bytes(&opened, 0).await.unwrap(),
            pdf(1024)
        );
    }
}

/// Two vaults on one data directory and the same backends (as two processes would be):
/// each keeps its owner state in memory between puts, and notices when the other changed
/// the state's files, so no counter is reused and every record stays findable. The state
/// is a base file and an append-only log beside it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kept_owner_state_follows_changes_made_by_another_vault() {
    let dir = tempfile::tempdir().unwrap();
    let authority = Authority::setup(&mut OsRng);
    let p = people(&authority);
    let chain = Arc::new(
        EmbeddedChain::open(dir.path().join("chain.journal"), PrivateKeySigner::random()).unwrap(),
    );
    let store = Arc::new(LocalStore::open(dir.path().join("blocks")).await.unwrap());
    let open = || {
        let mut vault = Vault::with_backends(dir.path(), store.clone(), chain.clone()).unwrap();
        vault.install_authority(authority.public_key()).unwrap();
        vault
    };
    let (first, second) = (open(), open());
    let record = |name: &str| {
        NewRecord::new(name, "role:doctor".parse().unwrap())
            .keyword(kw("icd10:I10"))
            .keyword(kw(&format!("term:case-{name}")))
    };
    let mut ids = Vec::new();
    for (i, vault) in [&first, &first, &second, &first, &second, &second, &first]
        .into_iter()
        .enumerate()
    {
        let put = vault
            .put(&p.cardiologist, record(&i.to_string()))
            .await
            .unwrap();
        ids.push(put.record);
    }
    for vault in [&first, &second] {
        let hits = vault.search(&p.outsider, &kw("icd10:I10")).await.unwrap();
        assert!(hits.rejected.is_empty(), "{:?}", hits.rejected);
        assert_eq!(hits.records(), ids);
    }
    let owners = dir.path().join("owners");
    let address = hex::encode(p.cardiologist.address().as_slice());
    assert!(owners.join(format!("{address}.state")).exists());
    assert!(owners.join(format!("{address}.log")).exists());
}

/// Issue 13's people on a real IPFS node and Ethereum node (anvil): a record for a
/// patient, the patient's consent (the owner's approval refused by the contract),
/// break-glass with its reason in the trail, and a member revoked on chain (a record
/// stored afterwards and, once re-wrapped, an earlier one refused to the revoked key).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn people_on_ipfs_and_ethereum_nodes() {
    let Some((ipfs, eth)) = node_urls() else {
        return;
    };
    let deployer = PrivateKeySigner::random();
    fund_on_anvil(&eth, deployer.address());
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::embedded();
    config.ipfs_api = Some(ipfs);
    config.eth_rpc = Some(eth.clone());
    config.eth_key = Some(hex::encode(deployer.to_bytes()));
    let authority = Authority::setup(&mut OsRng);
    fund_on_anvil(&eth, authority.chain_signer().address());
    let mut vault = Vault::open_with(dir.path(), &config).await.unwrap();
    vault.install_authority(authority.public_key()).unwrap();
    vault.adopt_authority(&authority).await.unwrap();
    let issue = |name: &str, attrs: &[&str]| {
        let signer = PrivateKeySigner::random();
        fund_on_anvil(&eth, signer.address());
        authority
            .issue(
                name,
                attrs,
                medseal::Validity::months_from_now(12),
                signer,
                &mut OsRng,
            )
            .unwrap()
    };
    let ada = issue("dr. ada", &["role:doctor", "dept:cardiology"]);
    let sam = issue("sam", &["role:nurse", "dept:cardiology"]);
    let lee = issue("dr. lee", &["role:doctor", "dept:neurology"]);
    let pat = issue("pat", &["role:patient"]);
    let eve = issue("dr. eve", &["dept:er", medseal::EMERGENCY_ATTRIBUTE]);
    for member in [&ada, &sam, &lee, &pat, &eve] {
        vault.register_member(&authority, member).await.unwrap();
    }

    let echo = vault
        .put(
            &ada,
            NewRecord::new("echo", "dept:cardiology".parse().unwrap())
                .subject(pat.address())
                .emergency(medseal::EMERGENCY_ATTRIBUTE.parse().unwrap())
                .attach(Attachment::bytes("echo.pdf", "application/pdf", pdf(3000))),
        )
        .await
        .unwrap()
        .record;
    assert_eq!(vault.get(&pat, echo).await.unwrap().name, "echo");
    vault.request_access(&lee, echo).await.unwrap();
    assert_eq!(vault.pending_requests(&pat).await.unwrap().len(), 1);
    assert!(matches!(
        vault.answer_request(&ada, echo, lee.address(), true).await,
        Err(Error::NotController { .. })
    ));
    vault
        .answer_request(&pat, echo, lee.address(), true)
        .await
        .unwrap();
    vault.get(&lee, echo).await.unwrap();
    vault
        .get_emergency(&eve, echo, "unconscious on arrival")
        .await
        .unwrap();
    let trail = vault.audit(echo).await.unwrap();
    assert!(trail.iter().any(|e| matches!(&e.event,
        AuditEvent::AccessGranted { user, by } if *user == lee.address() && *by == pat.address())));
    assert!(trail.iter().any(|e| matches!(&e.event,
        AuditEvent::EmergencyAccess { accessor, reason }
            if *accessor == eve.address() && reason == "unconscious on arrival")));

    let vitals = vault
        .put(
            &ada,
            NewRecord::new("vitals", "role:nurse and dept:cardiology".parse().unwrap()),
        )
        .await
        .unwrap()
        .record;
    vault.get(&sam, vitals).await.unwrap();
    let report = vault
        .revoke_member(&authority, sam.address(), "left the hospital")
        .await
        .unwrap();
    let affected: Vec<Address> = report.affected.iter().map(|m| m.member).collect();
    assert_eq!(affected, [ada.address()]);
    let ada = vault
        .renew_member(&authority, &ada, medseal::Validity::months_from_now(12))
        .await
        .unwrap();
    let later = vault
        .put(
            &ada,
            NewRecord::new("later", "role:nurse and dept:cardiology".parse().unwrap()),
        )
        .await
        .unwrap()
        .record;
    assert!(matches!(
        vault.get(&sam, later).await,
        Err(Error::AccessDenied { .. })
    ));
    vault.get(&sam, vitals).await.unwrap();
    let rewrapped = vault.rewrap_records(&ada).await.unwrap();
    assert!(rewrapped.rewrapped.contains(&vitals));
    assert!(matches!(
        vault.get(&sam, vitals).await,
        Err(Error::AccessDenied { .. })
    ));
    vault.get(&ada, vitals).await.unwrap();
    vault.get(&lee, echo).await.unwrap();
}
