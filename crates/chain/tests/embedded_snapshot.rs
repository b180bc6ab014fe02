//! The embedded chain's snapshot database: opening from it gives the same chain as replaying
//! the journal, indexed log queries return exactly what a linear scan returns, and a missing,
//! stale, foreign or garbage snapshot is detected and rebuilt.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stderr,
    missing_docs,
    unreachable_pub
)]

mod common;

use common::{Rng, capture_logs};

use std::path::Path;
use std::sync::Arc;

use alloy::sol_types::SolCall;
use medseal_chain::bindings::MedsealRegistry as R;
use medseal_chain::dev_keys::anvil_dev_signer;
use medseal_chain::{B256, ChainLog, EmbeddedChain, Ledger, LogFilter, RecordId};

const SIGNERS: usize = 4;

/// Runs `ops` random registry transactions from several signers; returns every registry log
/// they emitted, in chain order (the reference for log queries). Calls the contract rejects
/// add no block and no log.
async fn workload(chain: &EmbeddedChain, ops: usize, seed: u64) -> Vec<ChainLog> {
    let mut rng = Rng(seed | 1);
    let ledgers: Vec<Arc<dyn Ledger>> = (0..SIGNERS)
        .map(|i| chain.for_signer(anvil_dev_signer(i).unwrap()))
        .collect();
    let users: Vec<_> = ledgers.iter().map(|l| l.sender()).collect();
    let partitions = [B256::repeat_byte(0xa1), B256::repeat_byte(0xa2)];
    let mut reference = Vec::new();
    let mut owners: Vec<usize> = Vec::new(); // owners[id - 1]
    let mut epoch = 0u64;
    for op in 0..ops {
        let who = rng.below(SIGNERS as u64) as usize;
        let record = (!owners.is_empty()).then(|| 1 + rng.below(owners.len() as u64));
        let calldata = match (rng.below(8), record) {
            (0..=2, _) | (_, None) => R::createRecordCall {
                manifestCid: format!("bafy-{op}"),
                policyHash: B256::repeat_byte(1 + rng.below(3) as u8),
            }
            .abi_encode(),
            (3, Some(id)) => R::grantAccessCall {
                record: id,
                user: *rng.pick(&users),
            }
            .abi_encode(),
            (4, Some(id)) => R::requestAccessCall { record: id }.abi_encode(),
            (5, Some(id)) => R::logAccessCall { record: id }.abi_encode(),
            (6, Some(id)) => R::updateRecordCall {
                record: id,
                manifestCid: format!("bafy-updated-{op}"),
                policyHash: B256::repeat_byte(9),
            }
            .abi_encode(),
            (_, Some(id)) => match rng.below(3) {
                0 => {
                    epoch += 1;
                    R::publishCapsuleCall {
                        partition: *rng.pick(&partitions),
                        epoch,
                        capsuleCid: format!("bafy-capsule-{op}"),
                        policyHash: B256::repeat_byte(5),
                    }
                    .abi_encode()
                }
                1 => R::revokeAccessCall {
                    record: id,
                    user: *rng.pick(&users),
                }
                .abi_encode(),
                _ => R::denyAccessCall {
                    record: id,
                    user: *rng.pick(&users),
                }
                .abi_encode(),
            },
        };
        let is_create = calldata[..4] == R::createRecordCall::SELECTOR;
        if let Ok(outcome) = ledgers[who].transact(calldata).await {
            if is_create {
                owners.push(who);
            }
            reference.extend(outcome.logs);
        }
    }
    reference
}

/// The linear scan the chain did before it had indexes.
fn linear(reference: &[ChainLog], filter: &LogFilter) -> Vec<ChainLog> {
    reference
        .iter()
        .filter(|log| filter.matches(&log.topics))
        .cloned()
        .collect()
}

fn random_filter(rng: &mut Rng, reference: &[ChainLog]) -> LogFilter {
    let mut events: Vec<B256> = reference.iter().map(|l| l.topics[0]).collect();
    events.sort();
    events.dedup();
    let mut chosen = Vec::new();
    for _ in 0..rng.below(4) {
        if rng.below(8) == 0 {
            chosen.push(B256::repeat_byte(0xee)); // an event nobody emits
        } else {
            chosen.push(*rng.pick(&events));
        }
    }
    let mut filter = LogFilter::events(&chosen);
    for position in 0..3 {
        match rng.below(4) {
            0 | 1 => {}
            2 => {
                // A value that occurs at this position in some log (of any event).
                let seen: Vec<B256> = reference
                    .iter()
                    .filter_map(|l| l.topics.get(position + 1).copied())
                    .collect();
                if !seen.is_empty() {
                    filter = filter.with_topic(position, *rng.pick(&seen));
                }
            }
            _ => {
                // A value from any topic of any log (often at the wrong position), or nothing.
                let log = rng.pick(reference);
                let topic = *rng.pick(&log.topics);
                filter = filter.with_topic(position, topic);
            }
        }
    }
    filter
}

/// Every registry query answers the same on `a` and `b`, and log queries match the reference.
async fn assert_same_chain(a: &EmbeddedChain, b: &EmbeddedChain, reference: &[ChainLog]) {
    assert_eq!(a.head().unwrap(), b.head().unwrap());
    assert_eq!(a.registry_address(), b.registry_address());
    let count = a.record_count().await.unwrap();
    assert_eq!(count, b.record_count().await.unwrap());
    let users: Vec<_> = (0..SIGNERS)
        .map(|i| anvil_dev_signer(i).unwrap().address())
        .collect();
    for id in 1..=count {
        let id = RecordId(id);
        assert_eq!(a.record(id).await.unwrap(), b.record(id).await.unwrap());
        assert_eq!(
            a.audit_trail(id).await.unwrap(),
            b.audit_trail(id).await.unwrap()
        );
        for user in &users {
            assert_eq!(
                a.access_state(id, *user).await.unwrap(),
                b.access_state(id, *user).await.unwrap()
            );
        }
    }
    for user in &users {
        assert_eq!(
            a.records_of(*user).await.unwrap(),
            b.records_of(*user).await.unwrap()
        );
        assert_eq!(
            a.shared_with(*user).await.unwrap(),
            b.shared_with(*user).await.unwrap()
        );
        assert_eq!(
            a.pending_requests(*user).await.unwrap(),
            b.pending_requests(*user).await.unwrap()
        );
    }
    assert_eq!(
        a.capsules(None).await.unwrap(),
        b.capsules(None).await.unwrap()
    );
    let mut rng = Rng(0x5eed_1234_abcd);
    for round in 0..300 {
        let filter = random_filter(&mut rng, reference);
        let want = linear(reference, &filter);
        assert_eq!(
            a.logs(&filter).await.unwrap(),
            want,
            "round {round}: {filter:?}"
        );
        assert_eq!(
            b.logs(&filter).await.unwrap(),
            want,
            "round {round}: {filter:?}"
        );
    }
}

fn open(path: &Path) -> EmbeddedChain {
    EmbeddedChain::open(path, anvil_dev_signer(0).unwrap()).unwrap()
}

/// A chain of `ops` random transactions at `dir/chain.journal`, closed again.
async fn build(dir: &Path, ops: usize, seed: u64) -> (std::path::PathBuf, Vec<ChainLog>) {
    let path = dir.join("chain.journal");
    let chain = open(&path);
    let reference = workload(&chain, ops, seed).await;
    drop(chain);
    (path, reference)
}

#[tokio::test]
async fn indexed_logs_match_a_linear_scan_in_memory() {
    let chain = EmbeddedChain::in_memory(anvil_dev_signer(0).unwrap()).unwrap();
    let reference = workload(&chain, 150, 42).await;
    assert!(reference.len() > 60, "{} logs", reference.len());
    let mut rng = Rng(77);
    for round in 0..1000 {
        let filter = random_filter(&mut rng, &reference);
        assert_eq!(
            chain.logs(&filter).await.unwrap(),
            linear(&reference, &filter),
            "round {round}: {filter:?}"
        );
    }
    // Everything, in chain order.
    let mut events: Vec<B256> = reference.iter().map(|l| l.topics[0]).collect();
    events.sort();
    events.dedup();
    assert_eq!(
        chain.logs(&LogFilter::events(&events)).await.unwrap(),
        reference
    );
    assert!(chain.logs(&LogFilter::default()).await.unwrap().is_empty());
    chain.verify_snapshot().unwrap();
}

#[tokio::test]
async fn open_from_the_snapshot_equals_a_full_replay() {
    let dir = tempfile::tempdir().unwrap();
    let (path, reference) = build(dir.path(), 120, 7).await;

    let (fast, log) = capture_logs(|| open(&path));
    assert!(!log.contains("WARN"), "{log}");
    assert!(!log.contains("replaying"), "{log}");
    fast.verify_snapshot().unwrap();

    // The same journal without a snapshot, replayed from scratch.
    let other = tempfile::tempdir().unwrap();
    let copy = other.path().join("chain.journal");
    std::fs::copy(&path, &copy).unwrap();
    let replayed = EmbeddedChain::open_with_replay(&copy, anvil_dev_signer(0).unwrap()).unwrap();
    assert_same_chain(&fast, &replayed, &reference).await;

    // Both keep growing identically (same nonces, same state).
    let next_a = fast.create_record("bafy-next", B256::repeat_byte(3)).await;
    let next_b = replayed
        .create_record("bafy-next", B256::repeat_byte(3))
        .await;
    assert_eq!(next_a.unwrap().record, next_b.unwrap().record);
}

#[tokio::test]
async fn a_snapshot_behind_the_journal_replays_only_the_tail() {
    let dir = tempfile::tempdir().unwrap();
    let (path, mut reference) = build(dir.path(), 40, 11).await;
    let snapshot = EmbeddedChain::snapshot_path(&path);
    // The state of the snapshot before the next blocks: what a crash between the journal
    // append and the snapshot commit leaves behind.
    let stale = std::fs::read(&snapshot).unwrap();

    let chain = open(&path);
    reference.extend(workload(&chain, 25, 12).await);
    let head = chain.head().unwrap();
    drop(chain);
    std::fs::write(&snapshot, &stale).unwrap();

    let (reopened, log) = capture_logs(|| open(&path));
    assert!(log.contains("replaying the journal tail"), "{log}");
    assert!(!log.contains("WARN"), "{log}");
    assert_eq!(reopened.head().unwrap(), head, "nothing lost");
    reopened.verify_snapshot().unwrap();
    let replayed = EmbeddedChain::open_with_replay(
        {
            let copy = dir.path().join("copy.journal");
            std::fs::copy(&path, &copy).unwrap();
            copy
        },
        anvil_dev_signer(0).unwrap(),
    )
    .unwrap();
    assert_same_chain(&reopened, &replayed, &reference).await;

    // The repaired snapshot is current: the next open replays nothing.
    drop(reopened);
    let (_again, log) = capture_logs(|| open(&path));
    assert!(!log.contains("replaying"), "{log}");
}

#[tokio::test]
async fn a_missing_snapshot_is_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    let (path, reference) = build(dir.path(), 30, 13).await;
    let snapshot = EmbeddedChain::snapshot_path(&path);
    let before = open(&path).head().unwrap();
    std::fs::remove_file(&snapshot).unwrap();

    let (rebuilt, log) = capture_logs(|| open(&path));
    assert!(log.contains("WARN"), "{log}");
    assert!(log.contains("snapshot is missing"), "{log}");
    assert_eq!(rebuilt.head().unwrap(), before);
    assert!(snapshot.exists());
    rebuilt.verify_snapshot().unwrap();
    let mut events: Vec<B256> = reference.iter().map(|l| l.topics[0]).collect();
    events.sort();
    events.dedup();
    assert_eq!(
        rebuilt.logs(&LogFilter::events(&events)).await.unwrap(),
        reference
    );
}

#[tokio::test]
async fn garbage_or_foreign_snapshots_are_detected_and_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    let (path, reference) = build(dir.path(), 30, 17).await;
    let snapshot = EmbeddedChain::snapshot_path(&path);
    let head = open(&path).head().unwrap();
    let good = std::fs::read(&snapshot).unwrap();

    // A snapshot of another chain with a longer history (its head is not in this journal).
    let other_dir = tempfile::tempdir().unwrap();
    let (other_path, _) = build(other_dir.path(), 45, 99).await;
    let foreign = std::fs::read(EmbeddedChain::snapshot_path(&other_path)).unwrap();
    // A snapshot of another chain with a shorter history (its head's byte range is inside
    // this journal, but another block is there).
    let short_dir = tempfile::tempdir().unwrap();
    let (short_path, _) = build(short_dir.path(), 10, 98).await;
    let short = std::fs::read(EmbeddedChain::snapshot_path(&short_path)).unwrap();

    let mut flipped = good.clone();
    let middle = flipped.len() / 2;
    for byte in &mut flipped[middle..] {
        *byte = !*byte;
    }
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "garbage",
            b"definitely not a redb database".repeat(100),
            "unusable",
        ),
        ("empty file", Vec::new(), "unusable"),
        ("truncated", good[..good.len() / 3].to_vec(), "unusable"),
        ("foreign, longer", foreign, "does not match the journal"),
        ("foreign, shorter", short, "does not match the journal"),
    ];
    for (name, bytes, expect) in cases {
        std::fs::write(&snapshot, &bytes).unwrap();
        let (reopened, log) = capture_logs(|| open(&path));
        assert!(log.contains("WARN"), "{name}: {log}");
        assert!(log.contains(expect), "{name}: {log}");
        assert_eq!(reopened.head().unwrap(), head, "{name}");
        reopened.verify_snapshot().unwrap();
        let mut events: Vec<B256> = reference.iter().map(|l| l.topics[0]).collect();
        events.sort();
        events.dedup();
        assert_eq!(
            reopened.logs(&LogFilter::events(&events)).await.unwrap(),
            reference,
            "{name}"
        );
    }

    // Bytes flipped in the second half of the file: redb refuses it (rebuilt), or the damage
    // is in pages that open does not read (free space, or state values), where either the
    // explicit verification finds it or nothing that the chain serves was affected.
    std::fs::write(&snapshot, &flipped).unwrap();
    let (reopened, _log) = capture_logs(|| open(&path));
    if reopened.verify_snapshot().is_ok() {
        assert_eq!(reopened.head().unwrap(), head);
        let mut events: Vec<B256> = reference.iter().map(|l| l.topics[0]).collect();
        events.sort();
        events.dedup();
        assert_eq!(
            reopened.logs(&LogFilter::events(&events)).await.unwrap(),
            reference
        );
    }
}

#[tokio::test]
async fn a_snapshot_ahead_of_the_journal_is_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    let (path, _) = build(dir.path(), 20, 19).await;
    let old_journal = std::fs::read(&path).unwrap();
    let head = open(&path).head().unwrap();
    {
        let chain = open(&path);
        workload(&chain, 10, 20).await;
    }
    // The journal is restored from an older copy; the snapshot is newer.
    std::fs::write(&path, &old_journal).unwrap();
    let (reopened, log) = capture_logs(|| open(&path));
    assert!(log.contains("does not match the journal"), "{log}");
    assert_eq!(reopened.head().unwrap(), head);
    reopened.verify_snapshot().unwrap();
}
