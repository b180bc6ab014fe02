//! Retried puts are idempotent: a put repeated after it was interrupted (a chain that
//! failed after the intent was saved, a cancelled future, a crash) completes the
//! interrupted one instead of storing the record twice; a put with an idempotency key
//! returns the same receipt however often it is repeated. A cancelled put leaves no temp
//! files, and garbage collection removes exactly the unpinned blocks.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stderr
)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use medseal::chain::dev_keys::anvil_dev_signer;
use medseal::chain::{
    B256, ChainLog, CreatedRecord, CreatedRecords, EmbeddedChain, Ledger, LedgerError,
    LedgerResult, LogFilter, TxOutcome, TxReceipt,
};
use medseal::storage::{ContentStore, LocalStore, PutOptions};
use medseal::{
    Address, Attachment, Authority, Error, InvalidInput, Keyword, Member, NewRecord,
    PrivateKeySigner, PutOutcome, RecordId, Vault,
};
use rand_core::OsRng;

/// What the injected faults do: each counter fails that many calls.
#[derive(Default)]
struct Faults {
    /// `createRecord(s)` fails after its transaction went through.
    create: AtomicU32,
    /// `anchorIndex` fails before its transaction.
    anchor: AtomicU32,
    /// `anchorIndex` never returns (a chain that hangs; the put is then cancelled).
    hang_anchor: AtomicU32,
}

fn take(flag: &AtomicU32) -> bool {
    flag.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok()
}

fn failed() -> LedgerError {
    LedgerError::NodeUnavailable {
        endpoint: "injected failure".into(),
        attempts: 1,
        source: "injected".into(),
    }
}

/// A ledger whose chosen operations fail (or hang) after the put's intent was saved.
struct Flaky {
    inner: Arc<dyn Ledger>,
    faults: Arc<Faults>,
}

// Only the required methods delegate; the overridden operations are the ones that fail.
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
            faults: Arc::clone(&self.faults),
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
        let created = self.inner.create_record(cid, hash).await?;
        if take(&self.faults.create) {
            return Err(failed());
        }
        Ok(created)
    }
    async fn create_records(&self, records: &[(String, B256)]) -> LedgerResult<CreatedRecords> {
        let created = self.inner.create_records(records).await?;
        if take(&self.faults.create) {
            return Err(failed());
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
        if take(&self.faults.hang_anchor) {
            std::future::pending::<()>().await;
        }
        if take(&self.faults.anchor) {
            return Err(failed());
        }
        self.inner.anchor_index(p, first, last, cid, root).await
    }
}

struct Setup {
    dir: tempfile::TempDir,
    authority: Authority,
    doctor: Member,
    reader: Member,
    faults: Arc<Faults>,
}

fn setup() -> Setup {
    let authority = Authority::setup(&mut OsRng);
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
    Setup {
        dir: tempfile::tempdir().unwrap(),
        doctor: issue("dr. ada", &["role:doctor", "dept:cardiology"], 0),
        reader: issue("dr. lee", &["role:doctor", "dept:neurology"], 1),
        authority,
        faults: Arc::new(Faults::default()),
    }
}

impl Setup {
    /// A vault on the persistent embedded backends of the directory (a new one is a new
    /// "process"), and its store.
    async fn open(&self) -> (Vault, LocalStore) {
        let dir = self.dir.path();
        let chain =
            EmbeddedChain::open(dir.join("chain.journal"), PrivateKeySigner::random()).unwrap();
        let store = LocalStore::open(dir.join("blocks")).await.unwrap();
        let ledger = Arc::new(Flaky {
            inner: Arc::new(chain),
            faults: Arc::clone(&self.faults),
        });
        let mut vault = Vault::with_backends(dir, Arc::new(store.clone()), ledger).unwrap();
        vault
            .install_authority(self.authority.public_key())
            .unwrap();
        (vault, store)
    }
}

fn kw(text: &str) -> Keyword {
    Keyword::parse(text).unwrap()
}

fn bytes(seed: u8, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31) ^ seed)
        .collect()
}

/// A record with a keyword and an attachment; `seed` varies the attachment's bytes.
fn record(name: &str, seed: u8) -> NewRecord {
    NewRecord::new(name, "role:doctor".parse().unwrap())
        .keyword(kw("icd10:I10"))
        .attach(Attachment::bytes(
            "scan.bin",
            "application/octet-stream",
            bytes(seed, 300_000),
        ))
}

async fn owned(vault: &Vault, owner: Address) -> Vec<RecordId> {
    let records = vault.records_of(owner).await.unwrap();
    records.into_iter().map(|r| r.record).collect()
}

async fn found(vault: &Vault, reader: &Member) -> Vec<RecordId> {
    vault
        .search(reader, &kw("icd10:I10"))
        .await
        .unwrap()
        .records()
}

/// A put that failed after its intent (the chain failed after `createRecord`, or before
/// the index anchor), repeated: one record, and the receipt says it was completed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repeated_failed_put_completes_the_interrupted_one() {
    let s = setup();
    let (vault, _) = s.open().await;

    // createRecord went through, then the put failed.
    s.faults.create.store(1, Ordering::SeqCst);
    assert!(vault.put(&s.doctor, record("ecg", 1)).await.is_err());
    let again = vault.put(&s.doctor, record("ecg", 1)).await.unwrap();
    assert_eq!(again.outcome, PutOutcome::CompletedInterrupted);
    assert_eq!(again.record, RecordId(1));
    assert!(again.recovered.is_empty());
    assert_eq!(again.attachments[0].size, 300_000);
    assert!(again.shard_cid.is_some());
    assert_eq!(owned(&vault, s.doctor.address()).await, [RecordId(1)]);
    assert_eq!(found(&vault, &s.reader).await, [RecordId(1)]);
    let opened = vault.get(&s.reader, again.record).await.unwrap();
    assert_eq!(
        vault.read_attachment_bytes(&opened, 0).await.unwrap(),
        bytes(1, 300_000)
    );

    // The anchor failed (the record is listed but not searchable), and the retry runs
    // in a new process.
    s.faults.anchor.store(1, Ordering::SeqCst);
    assert!(vault.put(&s.doctor, record("echo", 2)).await.is_err());
    assert_eq!(
        owned(&vault, s.doctor.address()).await,
        [RecordId(1), RecordId(2)]
    );
    assert_eq!(found(&vault, &s.reader).await, [RecordId(1)]);
    drop(vault);
    let (vault, _) = s.open().await;
    let again = vault.put(&s.doctor, record("echo", 2)).await.unwrap();
    assert_eq!(again.outcome, PutOutcome::CompletedInterrupted);
    assert_eq!(again.record, RecordId(2));
    assert_eq!(
        found(&vault, &s.reader).await,
        [RecordId(1), RecordId(2)],
        "completed: searchable too"
    );

    // Claimed once: the same record put again on purpose is a new record.
    let third = vault.put(&s.doctor, record("echo", 2)).await.unwrap();
    assert_eq!(third.outcome, PutOutcome::Created);
    assert_eq!(third.record, RecordId(3));
}

/// An interrupted put completed by a recovery (when the owner opened the vault) is
/// still claimed by its retry; a different put completes a pending one first and
/// reports it; content, not the name, identifies an unkeyed record.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_retry_claims_a_recovered_put_and_other_puts_report_it() {
    let s = setup();
    let (vault, _) = s.open().await;
    s.faults.anchor.store(1, Ordering::SeqCst);
    assert!(vault.put(&s.doctor, record("a", 1)).await.is_err());
    assert!(vault.has_interrupted_put(s.doctor.address()).await.unwrap());
    drop(vault);
    let (vault, _) = s.open().await;
    assert_eq!(
        vault.complete_interrupted(&s.doctor).await.unwrap(),
        [RecordId(1)]
    );
    assert!(!vault.has_interrupted_put(s.doctor.address()).await.unwrap());
    assert!(
        vault
            .complete_interrupted(&s.doctor)
            .await
            .unwrap()
            .is_empty()
    );

    // The same name with other bytes is another record.
    let other = vault.put(&s.doctor, record("a", 9)).await.unwrap();
    assert_eq!(other.outcome, PutOutcome::Created);
    assert_eq!(other.record, RecordId(2));
    let again = vault.put(&s.doctor, record("a", 1)).await.unwrap();
    assert_eq!(again.outcome, PutOutcome::CompletedInterrupted);
    assert_eq!(again.record, RecordId(1));

    // B is interrupted; C completes it first and says so; B's retry claims it.
    s.faults.create.store(1, Ordering::SeqCst);
    assert!(vault.put(&s.doctor, record("b", 2)).await.is_err());
    let c = vault.put(&s.doctor, record("c", 3)).await.unwrap();
    assert_eq!(c.outcome, PutOutcome::Created);
    assert_eq!(c.record, RecordId(4));
    assert_eq!(c.recovered, [RecordId(3)]);
    let b = vault.put(&s.doctor, record("b", 2)).await.unwrap();
    assert_eq!(
        (b.outcome, b.record),
        (PutOutcome::CompletedInterrupted, RecordId(3))
    );
    assert!(b.recovered.is_empty());
    assert_eq!(
        owned(&vault, s.doctor.address()).await,
        (1..=4).map(RecordId).collect::<Vec<_>>()
    );
    assert_eq!(
        found(&vault, &s.reader).await,
        (1..=4).map(RecordId).collect::<Vec<_>>()
    );
}

/// A reader that fails: a put that reads it fails.
struct Unreadable;

impl std::io::Read for Unreadable {
    fn read(&mut self, _: &mut [u8]) -> std::io::Result<usize> {
        Err(std::io::Error::other("the attachment was read"))
    }
}

/// A keyed put repeated returns the same receipt without reading its attachments, also
/// from a new process; an interrupted keyed put is completed by its retry; a key is
/// never reused for another record.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_keyed_put_returns_the_same_receipt() {
    let s = setup();
    let (vault, store) = s.open().await;
    let keyed = |key: &str| record("lab", 4).idempotency_key(key);
    let first = vault.put(&s.doctor, keyed("doc-1")).await.unwrap();
    assert_eq!(first.outcome, PutOutcome::Created);
    let pins = store.pins().await;
    let second = vault.put(&s.doctor, keyed("doc-1")).await.unwrap();
    assert_eq!(second.outcome, PutOutcome::AlreadyStored);
    assert_eq!(
        (
            &second.record,
            &second.manifest_cid,
            &second.attachments,
            &second.shard_cid
        ),
        (
            &first.record,
            &first.manifest_cid,
            &first.attachments,
            &first.shard_cid
        )
    );
    assert_eq!(store.pins().await, pins, "nothing stored");
    drop(vault);
    let (vault, _) = s.open().await;
    // Not even read: the attachment cannot be.
    let unreadable = NewRecord::new("lab", "role:doctor".parse().unwrap())
        .keyword(kw("icd10:I10"))
        .attach(Attachment::reader(
            "scan.bin",
            "application/octet-stream",
            Unreadable,
            None,
        ))
        .idempotency_key("doc-1");
    let third = vault.put(&s.doctor, unreadable).await.unwrap();
    assert_eq!(third.outcome, PutOutcome::AlreadyStored);
    assert_eq!(third.record, first.record);
    assert_eq!(owned(&vault, s.doctor.address()).await, [first.record]);

    // Another record under the same key is refused, before anything is stored.
    let other = NewRecord::new("other", "role:doctor".parse().unwrap()).idempotency_key("doc-1");
    assert!(matches!(
        vault.put(&s.doctor, other).await,
        Err(Error::InvalidInput(
            InvalidInput::IdempotencyKeyReused { .. }
        ))
    ));
    let twice = vec![keyed("doc-2"), record("x", 5).idempotency_key("doc-2")];
    assert!(matches!(
        vault.put_many(&s.doctor, twice).await,
        Err(Error::InvalidInput(
            InvalidInput::IdempotencyKeyReused { .. }
        ))
    ));

    // An interrupted keyed put: its retry completes it, then repeats find it stored.
    s.faults.anchor.store(1, Ordering::SeqCst);
    assert!(vault.put(&s.doctor, keyed("doc-3")).await.is_err());
    let completed = vault.put(&s.doctor, keyed("doc-3")).await.unwrap();
    assert_eq!(completed.outcome, PutOutcome::CompletedInterrupted);
    let repeated = vault.put(&s.doctor, keyed("doc-3")).await.unwrap();
    assert_eq!(repeated.outcome, PutOutcome::AlreadyStored);
    assert_eq!(repeated.record, completed.record);
    assert_eq!(repeated.shard_cid, completed.shard_cid);
    assert_eq!(
        owned(&vault, s.doctor.address()).await,
        [first.record, completed.record]
    );
}

/// A bulk batch interrupted after its intent, repeated: each record is claimed once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repeated_bulk_batch_stores_each_record_once() {
    let s = setup();
    let (vault, _) = s.open().await;
    let batch = || {
        (0..5)
            .map(|i| record(&format!("r{i}"), i))
            .collect::<Vec<_>>()
    };
    s.faults.create.store(1, Ordering::SeqCst);
    assert!(vault.put_many(&s.doctor, batch()).await.is_err());
    let receipts = vault.put_many(&s.doctor, batch()).await.unwrap();
    assert!(
        receipts
            .iter()
            .all(|r| r.outcome == PutOutcome::CompletedInterrupted)
    );
    let ids: Vec<RecordId> = receipts.iter().map(|r| r.record).collect();
    assert_eq!(ids, (1..=5).map(RecordId).collect::<Vec<_>>());
    assert_eq!(owned(&vault, s.doctor.address()).await, ids);
}

/// The files in the store's temp directory.
fn temp_files(store: &LocalStore) -> Vec<std::path::PathBuf> {
    std::fs::read_dir(store.root().join("tmp"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect()
}

/// A put cancelled while it encrypts (the future dropped, as Ctrl-C in the tool does)
/// leaves no temp file, no intent and no record; one cancelled after its intent leaves
/// the intent, which the retry completes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_put_leaves_no_temp_files_and_its_retry_stores_it_once() {
    let s = setup();
    let (vault, store) = s.open().await;
    // A big attachment fed slowly: the put is still encrypting when it is cancelled.
    let slow = || {
        let mut left = 40u32;
        std::io::Read::take(
            SlowReader {
                chunks: std::iter::from_fn(move || {
                    left = left.checked_sub(1)?;
                    Some(bytes(7, 1 << 20))
                }),
            },
            40 << 20,
        )
    };
    let big = || {
        NewRecord::new("mri", "role:doctor".parse().unwrap())
            .keyword(kw("icd10:I10"))
            .attach(Attachment::reader(
                "mri.dcm",
                "application/dicom",
                slow(),
                Some(40 << 20),
            ))
    };
    let put = vault.put(&s.doctor, big());
    assert!(
        tokio::time::timeout(Duration::from_millis(600), put)
            .await
            .is_err()
    );
    assert_eq!(temp_files(&store), Vec::<std::path::PathBuf>::new());
    assert!(!vault.has_interrupted_put(s.doctor.address()).await.unwrap());
    assert!(owned(&vault, s.doctor.address()).await.is_empty());
    let stored = vault.put(&s.doctor, big()).await.unwrap();
    assert_eq!(stored.outcome, PutOutcome::Created);
    assert_eq!(stored.record, RecordId(1));

    // Cancelled while the chain hangs after the intent was saved.
    s.faults.hang_anchor.store(1, Ordering::SeqCst);
    let put = vault.put(&s.doctor, record("ecg", 3));
    assert!(
        tokio::time::timeout(Duration::from_secs(5), put)
            .await
            .is_err()
    );
    assert!(vault.has_interrupted_put(s.doctor.address()).await.unwrap());
    assert_eq!(temp_files(&store), Vec::<std::path::PathBuf>::new());
    let again = vault.put(&s.doctor, record("ecg", 3)).await.unwrap();
    assert_eq!(again.outcome, PutOutcome::CompletedInterrupted);
    assert_eq!(again.record, RecordId(2));
    assert_eq!(
        owned(&vault, s.doctor.address()).await,
        [RecordId(1), RecordId(2)]
    );
}

/// Yields its chunks with a pause before each.
struct SlowReader<I> {
    chunks: I,
}

impl<I: Iterator<Item = Vec<u8>>> std::io::Read for SlowReader<I> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self.chunks.next() {
            Some(chunk) => {
                std::thread::sleep(Duration::from_millis(30));
                let n = chunk.len().min(buf.len());
                buf[..n].copy_from_slice(&chunk[..n]);
                Ok(n)
            }
            None => Ok(0),
        }
    }
}

/// Garbage collection through the vault: a dry run counts exactly the unpinned blocks
/// and deletes nothing; the collection removes exactly them; every record stays
/// readable and searchable.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gc_removes_exactly_the_unpinned_blocks() {
    let s = setup();
    let (vault, store) = s.open().await;
    let kept = vault.put(&s.doctor, record("kept", 1)).await.unwrap();
    let before = store.list_blocks().await.unwrap();
    let clean = vault.gc(true).await.unwrap();
    assert_eq!((clean.removed_blocks, clean.removed_bytes), (0, 0));
    assert_eq!(clean.kept_blocks, before.len());
    assert_eq!(clean.kept_bytes, before.iter().map(|b| b.size).sum::<u64>());

    // Garbage: unpinned puts (three blocks, one of them with two leaves and a root).
    let loose = PutOptions::new().with_pin(false);
    store.put(bytes(8, 1000).into(), loose).await.unwrap();
    store.put(bytes(9, 300_000).into(), loose).await.unwrap();
    let after = store.list_blocks().await.unwrap();
    let garbage: Vec<_> = after.iter().filter(|b| !before.contains(b)).collect();
    assert_eq!(garbage.len(), 4);
    let garbage_bytes: u64 = garbage.iter().map(|b| b.size).sum();

    let dry = vault.gc(true).await.unwrap();
    assert!(dry.dry_run);
    assert_eq!((dry.removed_blocks, dry.removed_bytes), (4, garbage_bytes));
    assert_eq!(dry.kept_blocks, before.len());
    assert_eq!(
        store.list_blocks().await.unwrap().len(),
        after.len(),
        "dry run"
    );

    let done = vault.gc(false).await.unwrap();
    assert!(!done.dry_run);
    assert_eq!(
        (done.removed_blocks, done.removed_bytes),
        (4, garbage_bytes)
    );
    let mut left = store.list_blocks().await.unwrap();
    let mut expected = before.clone();
    left.sort_by_key(|b| b.digest);
    expected.sort_by_key(|b| b.digest);
    assert_eq!(left, expected);
    assert_eq!(vault.gc(false).await.unwrap().removed_blocks, 0);
    let opened = vault.get(&s.reader, kept.record).await.unwrap();
    assert_eq!(
        vault.read_attachment_bytes(&opened, 0).await.unwrap(),
        bytes(1, 300_000)
    );
    assert_eq!(found(&vault, &s.reader).await, [kept.record]);
}

/// Garbage collection beside puts of the same vault: it waits for their blocks to be
/// pinned (the store's GC lock), so every record stays whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gc_beside_puts_keeps_every_record() {
    let s = setup();
    let (vault, _) = s.open().await;
    let vault = Arc::new(vault);
    let puts = {
        let vault = Arc::clone(&vault);
        let doctor = Member::from_bytes(&s.doctor.to_bytes()).unwrap();
        tokio::spawn(async move {
            let mut ids = Vec::new();
            for i in 0..6u8 {
                ids.push(
                    vault
                        .put(&doctor, record(&format!("r{i}"), i))
                        .await
                        .unwrap()
                        .record,
                );
            }
            ids
        })
    };
    let mut collections = 0;
    while !puts.is_finished() {
        vault.gc(false).await.unwrap();
        collections += 1;
    }
    let ids = puts.await.unwrap();
    eprintln!("{collections} collections ran beside 6 puts");
    assert!(collections > 1);
    vault.gc(false).await.unwrap();
    for (i, id) in ids.into_iter().enumerate() {
        let opened = vault.get(&s.reader, id).await.unwrap();
        assert_eq!(
            vault.read_attachment_bytes(&opened, 0).await.unwrap(),
            bytes(i as u8, 300_000)
        );
    }
    assert_eq!(found(&vault, &s.reader).await.len(), 6);
}
