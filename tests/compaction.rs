//! Major index compaction (`Vault::compact_index`): one live shard per partition after it,
//! the logarithmic bound after later puts, identical verified search results, crashes
//! before and after the anchor, idempotence, and partitions of other members refused.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use async_trait::async_trait;
use medseal::chain::dev_keys::anvil_dev_signer;
use medseal::chain::{
    B256, ChainLog, EmbeddedChain, Ledger, LedgerError, LedgerResult, LogFilter, TxOutcome,
    TxReceipt,
};
use medseal::index::sse::Shard;
use medseal::storage::LocalStore;
use medseal::{
    Address, Authority, CompactScope, Error, InvalidInput, Keyword, Member, NewRecord,
    PrivateKeySigner, RecordId, Vault,
};
use rand_core::OsRng;

fn member(authority: &Authority, name: &str, attrs: &[&str], key: usize) -> Member {
    authority
        .issue(
            name,
            attrs,
            medseal::Validity::months_from_now(12),
            anvil_dev_signer(key).unwrap(),
            &mut OsRng,
        )
        .unwrap()
}

fn kw(text: &str) -> Keyword {
    Keyword::parse(text).unwrap()
}

const POLICIES: [&str; 2] = ["role:doctor", "role:doctor or role:nurse"];

/// Record `i`: one of two policies, a common keyword, a keyword per record and one shared
/// by every tenth record.
fn record(i: u32) -> NewRecord {
    NewRecord::new(
        format!("import-{i}"),
        POLICIES[usize::from(i.is_multiple_of(3))].parse().unwrap(),
    )
    .keyword(kw("icd10:I10"))
    .keyword(kw(&format!("term:case-{i}")))
    .keyword(kw(&format!("term:group-{}", i / 10)))
}

fn records(from: u32, n: u32) -> Vec<NewRecord> {
    (from..from + n).map(record).collect()
}

/// A ledger that fails the anchoring transaction once per unit of `before` (before it is
/// sent: the merged shard is stored, not anchored) or `after` (after it went through: the
/// state is not saved), as if the process died there.
struct Flaky {
    inner: Arc<dyn Ledger>,
    before: Arc<AtomicU32>,
    after: Arc<AtomicU32>,
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
            before: Arc::clone(&self.before),
            after: Arc::clone(&self.after),
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
    async fn anchor_index(
        &self,
        p: B256,
        first: u64,
        last: u64,
        cid: &str,
        root: B256,
    ) -> LedgerResult<TxReceipt> {
        if take(&self.before) {
            return Err(crashed());
        }
        let anchored = self.inner.anchor_index(p, first, last, cid, root).await?;
        if take(&self.after) {
            return Err(crashed());
        }
        Ok(anchored)
    }
}

struct Setup {
    dir: tempfile::TempDir,
    authority: Authority,
    doctor: Member,
    nurse: Member,
    before: Arc<AtomicU32>,
    after: Arc<AtomicU32>,
}

impl Setup {
    fn new() -> Self {
        let authority = Authority::setup(&mut OsRng);
        Self {
            dir: tempfile::tempdir().unwrap(),
            doctor: member(&authority, "dr. ada", &["role:doctor"], 0),
            nurse: member(&authority, "sam", &["role:nurse"], 1),
            authority,
            before: Arc::new(AtomicU32::new(0)),
            after: Arc::new(AtomicU32::new(0)),
        }
    }

    /// A vault on the directory, as a new process would open it.
    async fn open(&self) -> Vault {
        let dir = self.dir.path();
        let chain =
            EmbeddedChain::open(dir.join("chain.journal"), PrivateKeySigner::random()).unwrap();
        let store = Arc::new(LocalStore::open(dir.join("blocks")).await.unwrap());
        let ledger = Arc::new(Flaky {
            inner: Arc::new(chain),
            before: Arc::clone(&self.before),
            after: Arc::clone(&self.after),
        });
        let mut vault = Vault::with_backends(dir, store, ledger).unwrap();
        vault
            .install_authority(self.authority.public_key())
            .unwrap();
        vault
    }
}

/// Per partition of `owner` (by id): its batches (the chain's head) and its live shards as
/// the chain's anchors say (walked back from the head), with their entries.
async fn live_shards(vault: &Vault, owner: Address) -> BTreeMap<B256, (u64, Vec<u64>)> {
    let ledger = vault.ledger();
    let mut out = BTreeMap::new();
    for capsule in ledger.capsules(Some(owner)).await.unwrap() {
        let pid = capsule.partition;
        let head = ledger.index_head(owner, pid).await.unwrap();
        let mut end = head;
        let mut entries = Vec::new();
        while end > 0 {
            let anchor = ledger
                .index_anchor(owner, pid, end - 1)
                .await
                .unwrap()
                .expect("every live shard is anchored");
            let cid = anchor.shard_cid.parse().unwrap();
            let shard = Shard::from_bytes(&vault.store().get(&cid).await.unwrap()).unwrap();
            entries.push(shard.len() as u64);
            end = anchor.first_seq;
        }
        entries.reverse();
        out.insert(pid, (head, entries));
    }
    out
}

/// Every partition within the logarithmic bound: live shards <= log2(entries + batches) + 1.
fn assert_log_bound(live: &BTreeMap<B256, (u64, Vec<u64>)>) {
    for (pid, (batches, shards)) in live {
        let n = shards.iter().sum::<u64>() + batches;
        let bound = n.ilog2() as usize + 1;
        assert!(
            shards.len() <= bound,
            "partition {pid}: {} live shards for {n} entries and batches (bound {bound})",
            shards.len()
        );
    }
}

/// The verified answers for a fixed set of keywords: (records, rejected partitions).
async fn answers(vault: &Vault, user: &Member, max_record: u32) -> Vec<(Vec<RecordId>, usize)> {
    let mut keywords = vec![kw("icd10:I10"), kw("term:absent"), kw("term:group-3")];
    keywords.extend(
        [0, 1, 7, 42, max_record - 1]
            .into_iter()
            .map(|i| kw(&format!("term:case-{i}"))),
    );
    let mut out = Vec::new();
    for k in &keywords {
        let found = vault.search(user, k).await.unwrap();
        out.push((found.records(), found.rejected.len()));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compaction_leaves_one_shard_and_keeps_search_and_the_log_bound() {
    let s = Setup::new();
    let vault = s.open().await;
    vault.put_many(&s.doctor, records(0, 600)).await.unwrap();
    for i in 600..603 {
        vault.put(&s.doctor, record(i)).await.unwrap();
    }
    let before = live_shards(&vault, s.doctor.address()).await;
    assert_eq!(before.len(), 2);
    let shards_before: usize = before.values().map(|(_, l)| l.len()).sum();
    assert!(shards_before > 2, "the test needs several live shards");
    assert_log_bound(&before);
    let answers_before = answers(&vault, &s.doctor, 603).await;
    assert_eq!(answers_before[0].0.len(), 603);
    assert!(answers_before.iter().all(|(_, rejected)| *rejected == 0));

    let report = vault
        .compact_index(&s.doctor, CompactScope::AllPartitions)
        .await
        .unwrap();
    assert_eq!(
        (report.partitions, report.compacted, report.too_large),
        (2, 2, 0)
    );
    assert_eq!(
        (report.shards_before, report.shards_after),
        (shards_before, 2)
    );
    let entries: u64 = before.values().flat_map(|(_, l)| l).sum();
    assert_eq!(report.entries, entries, "every live entry, nothing added");
    assert!(report.bytes > entries * 48);
    let after = live_shards(&vault, s.doctor.address()).await;
    for (pid, (batches, shards)) in &after {
        assert_eq!(shards.len(), 1, "one live shard per partition");
        assert_eq!(*batches, before[pid].0 + 1, "one (empty) batch more");
    }
    // The same verified answers, in this process and in a new one.
    assert_eq!(answers(&vault, &s.doctor, 603).await, answers_before);
    drop(vault);
    let vault = s.open().await;
    assert_eq!(answers(&vault, &s.doctor, 603).await, answers_before);

    // Idempotent: nothing to do, nothing anchored.
    let again = vault
        .compact_index(&s.doctor, CompactScope::AllPartitions)
        .await
        .unwrap();
    assert_eq!(
        (again.compacted, again.shards_before, again.shards_after),
        (0, 2, 2)
    );
    assert_eq!((again.entries, again.bytes), (0, 0));
    assert_eq!(live_shards(&vault, s.doctor.address()).await, after);

    // Later puts keep the logarithmic bound and find everything.
    for i in 603..640 {
        vault.put(&s.doctor, record(i)).await.unwrap();
        assert_log_bound(&live_shards(&vault, s.doctor.address()).await);
    }
    vault.put_many(&s.doctor, records(640, 250)).await.unwrap();
    let live = live_shards(&vault, s.doctor.address()).await;
    assert_log_bound(&live);
    let found = vault.search(&s.doctor, &kw("icd10:I10")).await.unwrap();
    assert_eq!(found.records(), (1..=890).map(RecordId).collect::<Vec<_>>());
    assert!(found.rejected.is_empty());
    // And a compaction of one partition leaves the other alone.
    let (&one, _) = live.iter().find(|(_, (_, l))| l.len() > 1).unwrap();
    let report = vault
        .compact_index(&s.doctor, CompactScope::Partition(one))
        .await
        .unwrap();
    assert_eq!((report.partitions, report.compacted), (1, 1));
    let now = live_shards(&vault, s.doctor.address()).await;
    assert_eq!(now[&one].1.len(), 1);
    for (pid, shards) in &live {
        if *pid != one {
            assert_eq!(&now[pid], shards);
        }
    }
}

/// Adds a bulk batch and a few single puts from record `from` on (so that every partition
/// has several live shards after a compaction); the next record number.
async fn grow(vault: &Vault, owner: &Member, from: u32) -> u32 {
    vault.put_many(owner, records(from, 100)).await.unwrap();
    for i in from + 100..from + 103 {
        vault.put(owner, record(i)).await.unwrap();
    }
    from + 103
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_before_or_after_the_anchor_loses_nothing_and_a_retry_completes() {
    let s = Setup::new();
    let vault = s.open().await;
    vault.put_many(&s.doctor, records(0, 300)).await.unwrap();
    for i in 300..303 {
        vault.put(&s.doctor, record(i)).await.unwrap();
    }
    let before = live_shards(&vault, s.doctor.address()).await;
    assert!(before.values().all(|(_, l)| l.len() > 1));
    let answers_before = answers(&vault, &s.nurse, 303).await;
    assert!(!answers_before[0].0.is_empty());

    // Crash after the merged shard was stored, before its anchor.
    s.before.store(1, Ordering::SeqCst);
    assert!(
        vault
            .compact_index(&s.doctor, CompactScope::AllPartitions)
            .await
            .is_err()
    );
    drop(vault);
    let vault = s.open().await;
    assert_eq!(live_shards(&vault, s.doctor.address()).await, before);
    assert_eq!(answers(&vault, &s.nurse, 303).await, answers_before);
    let report = vault
        .compact_index(&s.doctor, CompactScope::AllPartitions)
        .await
        .unwrap();
    assert_eq!((report.compacted, report.shards_after), (2, 2));
    assert_eq!(answers(&vault, &s.nurse, 303).await, answers_before);

    // Crash after the anchor, before the state was saved; the retry finds the anchor.
    let next = grow(&vault, &s.doctor, 303).await;
    let before = live_shards(&vault, s.doctor.address()).await;
    assert!(before.values().all(|(_, l)| l.len() > 1));
    s.after.store(1, Ordering::SeqCst);
    assert!(
        vault
            .compact_index(&s.doctor, CompactScope::AllPartitions)
            .await
            .is_err()
    );
    drop(vault);
    let vault = s.open().await;
    let crashed = live_shards(&vault, s.doctor.address()).await;
    assert_eq!(
        crashed.values().filter(|(_, l)| l.len() == 1).count(),
        1,
        "the first partition's compaction is anchored"
    );
    let report = vault
        .compact_index(&s.doctor, CompactScope::AllPartitions)
        .await
        .unwrap();
    assert_eq!((report.compacted, report.shards_after), (2, 2));
    let after = live_shards(&vault, s.doctor.address()).await;
    for (pid, (batches, shards)) in &after {
        assert_eq!(shards.len(), 1);
        assert_eq!(*batches, before[pid].0 + 1, "no second compaction batch");
    }
    let answers_after = answers(&vault, &s.nurse, next).await;
    assert_eq!(
        answers_after[0].0,
        vault
            .search(&s.doctor, &kw("icd10:I10"))
            .await
            .unwrap()
            .records()
            .into_iter()
            .filter(|id| (id.0 - 1) % 3 == 0)
            .collect::<Vec<_>>(),
        "the nurse finds exactly the records of the shared policy"
    );

    // The same crash, then a put instead of a retry: the put records the compaction first.
    let next = grow(&vault, &s.doctor, next).await;
    s.after.store(1, Ordering::SeqCst);
    assert!(
        vault
            .compact_index(&s.doctor, CompactScope::AllPartitions)
            .await
            .is_err()
    );
    drop(vault);
    let vault = s.open().await;
    vault.put_many(&s.doctor, records(next, 10)).await.unwrap();
    let found = vault.search(&s.doctor, &kw("icd10:I10")).await.unwrap();
    assert_eq!(
        found.records(),
        (1..=u64::from(next) + 10).map(RecordId).collect::<Vec<_>>()
    );
    assert!(found.rejected.is_empty());
    assert_log_bound(&live_shards(&vault, s.doctor.address()).await);
    let report = vault
        .compact_index(&s.doctor, CompactScope::AllPartitions)
        .await
        .unwrap();
    assert_eq!(report.shards_after, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_publisher_compacts_a_partition() {
    let s = Setup::new();
    let vault = s.open().await;
    vault.put_many(&s.doctor, records(0, 150)).await.unwrap();
    vault.put(&s.doctor, record(150)).await.unwrap();
    let before = live_shards(&vault, s.doctor.address()).await;
    let theirs = *before.keys().next().unwrap();
    match vault
        .compact_index(&s.nurse, CompactScope::Partition(theirs))
        .await
    {
        Err(Error::NotPartitionOwner {
            partition,
            publisher,
        }) => assert_eq!((partition, publisher), (theirs, s.doctor.address())),
        other => panic!("expected NotPartitionOwner, got {other:?}"),
    }
    let unknown = B256::repeat_byte(7);
    assert!(matches!(
        vault
            .compact_index(&s.doctor, CompactScope::Partition(unknown))
            .await,
        Err(Error::InvalidInput(InvalidInput::UnknownPartition { partition })) if partition == unknown
    ));
    // The nurse has no partitions: nothing to compact, and the doctor's are untouched.
    let report = vault
        .compact_index(&s.nurse, CompactScope::AllPartitions)
        .await
        .unwrap();
    assert_eq!((report.partitions, report.compacted), (0, 0));
    assert_eq!(live_shards(&vault, s.doctor.address()).await, before);
}
