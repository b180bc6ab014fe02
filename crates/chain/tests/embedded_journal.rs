//! Persistence of the embedded chain: reopen restores the same chain, a torn tail is dropped
//! with a warning, and tampering is detected (by a full replay for blocks before the head, by
//! the O(1) head check of a plain open for the head block).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stderr,
    missing_docs,
    unreachable_pub
)]

mod common;

use common::capture_logs;

use std::io::Write;
use std::path::Path;

use alloy::primitives::keccak256;
use medseal_chain::dev_keys::anvil_dev_signer;
use medseal_chain::{B256, EmbeddedChain, Ledger, LedgerError, RecordId};

const MAGIC_LEN: usize = 8;

/// (offset, total length) of every record in a journal file.
fn record_spans(bytes: &[u8]) -> Vec<(usize, usize)> {
    let mut spans = Vec::new();
    let mut at = MAGIC_LEN;
    while at + 4 <= bytes.len() {
        let len = u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
        let total = 4 + len + 32;
        if at + total > bytes.len() {
            break;
        }
        spans.push((at, total));
        at += total;
    }
    spans
}

/// Recomputes the checksum of the record at `span` (after a deliberate edit).
fn reseal(bytes: &mut [u8], (at, total): (usize, usize)) {
    let sum = keccak256(&bytes[at..at + total - 32]);
    bytes[at + total - 32..at + total].copy_from_slice(sum.as_slice());
}

async fn populate(path: &Path) -> (EmbeddedChain, Vec<RecordId>) {
    let chain = EmbeddedChain::open(path, anvil_dev_signer(0).unwrap()).unwrap();
    let alice = anvil_dev_signer(1).unwrap().address();
    let mut ids = Vec::new();
    for i in 0..3 {
        let created = chain
            .create_record(&format!("bafy-{i}"), B256::repeat_byte(i + 1))
            .await
            .unwrap();
        ids.push(created.record);
    }
    chain.grant_access(ids[1], alice).await.unwrap();
    (chain, ids)
}

#[tokio::test]
async fn reopening_replays_the_same_chain() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("chain.journal");
    let (chain, ids) = populate(&path).await;
    let head = chain.head().unwrap();
    let registry = chain.registry_address();
    let trail = chain.audit_trail(ids[1]).await.unwrap();
    assert_eq!(head.number, 1 + 3 + 1, "deploy + 3 creates + 1 grant");
    drop(chain);

    // Reopen with another signer: same registry, same blocks, same state.
    let alice_signer = anvil_dev_signer(1).unwrap();
    let alice = alice_signer.address();
    let reopened = EmbeddedChain::open(&path, alice_signer).unwrap();
    assert_eq!(reopened.dropped_tail_bytes(), 0);
    assert_eq!(reopened.registry_address(), registry);
    assert_eq!(reopened.head().unwrap(), head);
    assert_eq!(reopened.record_count().await.unwrap(), 3);
    assert_eq!(
        reopened.record(ids[2]).await.unwrap().manifest_cid,
        "bafy-2"
    );
    assert_eq!(reopened.shared_with(alice).await.unwrap(), vec![ids[1]]);
    assert_eq!(reopened.audit_trail(ids[1]).await.unwrap(), trail);

    // The reopened chain keeps growing on top of the replayed one.
    reopened.log_access(ids[1]).await.unwrap();
    let next = reopened
        .create_record("bafy-alice", B256::repeat_byte(9))
        .await
        .unwrap();
    assert_eq!(next.record, RecordId(4));
    let head2 = reopened.head().unwrap();
    drop(reopened);
    let again = EmbeddedChain::open(&path, anvil_dev_signer(0).unwrap()).unwrap();
    assert_eq!(again.head().unwrap(), head2);
    assert_eq!(again.records_of(alice).await.unwrap(), vec![RecordId(4)]);
}

#[tokio::test]
async fn torn_tail_is_dropped_with_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("chain.journal");
    let (chain, ids) = populate(&path).await;
    let head = chain.head().unwrap();
    drop(chain);

    // An interrupted append of a further block: a prefix of a record-shaped byte string.
    let clean = std::fs::read(&path).unwrap();
    let (at, total) = *record_spans(&clean).last().unwrap();
    let torn = clean[at..at + total / 2].to_vec();
    std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap()
        .write_all(&torn)
        .unwrap();

    let (reopened, log) = capture_logs(|| EmbeddedChain::open(&path, anvil_dev_signer(0).unwrap()));
    let reopened = reopened.unwrap();
    assert!(log.contains("WARN"), "{log}");
    assert!(log.contains("torn tail"), "{log}");
    assert_eq!(reopened.dropped_tail_bytes(), torn.len() as u64);
    assert_eq!(
        reopened.head().unwrap(),
        head,
        "every complete block survives"
    );
    assert_eq!(
        std::fs::read(&path).unwrap(),
        clean,
        "the tail was cut off on disk"
    );
    assert_eq!(reopened.record_count().await.unwrap(), ids.len() as u64);
}

#[tokio::test]
async fn a_block_cut_mid_record_is_dropped_and_the_chain_continues() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("chain.journal");
    let (chain, ids) = populate(&path).await;
    drop(chain);

    // Cut the last record (the grant) in the middle, as a power loss during its append would.
    let bytes = std::fs::read(&path).unwrap();
    let (at, total) = *record_spans(&bytes).last().unwrap();
    std::fs::write(&path, &bytes[..at + total - 10]).unwrap();

    let (reopened, log) = capture_logs(|| EmbeddedChain::open(&path, anvil_dev_signer(0).unwrap()));
    let reopened = reopened.unwrap();
    assert!(log.contains("torn tail"), "{log}");
    assert_eq!(reopened.dropped_tail_bytes(), (total - 10) as u64);
    let alice = anvil_dev_signer(1).unwrap().address();
    assert!(
        !reopened.can_access(ids[1], alice).await.unwrap(),
        "the torn grant is gone"
    );
    assert_eq!(reopened.record_count().await.unwrap(), 3);

    // Redo it; the journal is clean again afterwards.
    reopened.grant_access(ids[1], alice).await.unwrap();
    drop(reopened);
    let (again, log) = capture_logs(|| EmbeddedChain::open(&path, anvil_dev_signer(0).unwrap()));
    let again = again.unwrap();
    assert!(!log.contains("torn tail"), "{log}");
    assert_eq!(again.dropped_tail_bytes(), 0);
    assert!(again.can_access(ids[1], alice).await.unwrap());
}

/// Opening the tampered journal with a full replay fails with `Corrupt`, both through
/// `open_with_replay` and through a plain `open` that has no snapshot to start from.
fn assert_replay_detects_corruption(path: &Path) {
    let error = EmbeddedChain::open_with_replay(path, anvil_dev_signer(0).unwrap()).unwrap_err();
    assert!(matches!(error, LedgerError::Corrupt(_)), "{error:?}");
    let snapshot = EmbeddedChain::snapshot_path(path);
    if snapshot.exists() {
        std::fs::remove_file(&snapshot).unwrap();
    }
    let error = EmbeddedChain::open(path, anvil_dev_signer(0).unwrap()).unwrap_err();
    assert!(matches!(error, LedgerError::Corrupt(_)), "{error:?}");
}

#[tokio::test]
async fn a_tampered_transaction_does_not_replay() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("chain.journal");
    let (chain, _) = populate(&path).await;
    drop(chain);
    let original = std::fs::read(&path).unwrap();
    let spans = record_spans(&original);

    // Change one calldata byte of block 3's transaction and fix the record checksum, so only
    // the signature (the sender is recovered from it) and the hash chain can catch it.
    let mut bytes = original.clone();
    let (at, total) = spans[2];
    bytes[at + total - 32 - 80] ^= 0x01;
    reseal(&mut bytes, spans[2]);
    std::fs::write(&path, &bytes).unwrap();
    assert_replay_detects_corruption(&path);

    // Same for a forged block hash.
    let mut bytes = original.clone();
    let (at, _) = spans[1];
    bytes[at + 4 + 1 + 8 + 8 + 32] ^= 0x01; // first byte of the stored block hash
    reseal(&mut bytes, spans[1]);
    std::fs::write(&path, &bytes).unwrap();
    assert_replay_detects_corruption(&path);

    // And a checksum failure in the middle of the file is corruption, not a torn tail.
    let mut bytes = original;
    let (at, _) = spans[1];
    bytes[at + 10] ^= 0x01;
    std::fs::write(&path, &bytes).unwrap();
    assert_replay_detects_corruption(&path);
}

#[tokio::test]
async fn a_tampered_head_block_is_caught_by_a_plain_open() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("chain.journal");
    let (chain, _) = populate(&path).await;
    drop(chain);
    let original = std::fs::read(&path).unwrap();
    let spans = record_spans(&original);
    let head = *spans.last().unwrap();

    // The head block's transaction: the snapshot's head check recomputes its hash, finds the
    // mismatch, rebuilds by replay, and the replay refuses the block.
    let mut bytes = original.clone();
    bytes[head.0 + head.1 - 32 - 40] ^= 0x01;
    reseal(&mut bytes, head);
    std::fs::write(&path, &bytes).unwrap();
    let (result, log) = capture_logs(|| EmbeddedChain::open(&path, anvil_dev_signer(0).unwrap()));
    let error = result.unwrap_err();
    assert!(matches!(error, LedgerError::Corrupt(_)), "{error:?}");
    assert!(log.contains("does not match the journal"), "{log}");

    // The head block's stored hash.
    let mut bytes = original;
    bytes[head.0 + 4 + 1 + 8 + 8 + 32] ^= 0x01;
    reseal(&mut bytes, head);
    std::fs::write(&path, &bytes).unwrap();
    let error = EmbeddedChain::open(&path, anvil_dev_signer(0).unwrap()).unwrap_err();
    assert!(matches!(error, LedgerError::Corrupt(_)), "{error:?}");
}

#[tokio::test]
async fn reverted_calls_add_no_block() {
    let chain = EmbeddedChain::in_memory(anvil_dev_signer(0).unwrap()).unwrap();
    let before = chain.head().unwrap();
    assert!(
        chain
            .grant_access(RecordId(1), chain.sender())
            .await
            .is_err()
    );
    assert!(chain.create_record("", B256::repeat_byte(1)).await.is_err());
    assert_eq!(chain.head().unwrap(), before);
    let created = chain
        .create_record("bafy", B256::repeat_byte(1))
        .await
        .unwrap();
    assert_eq!(created.receipt.block_number, before.number + 1);
    let head = chain.head().unwrap();
    assert_ne!(head.hash, before.hash);
    assert!(head.timestamp >= before.timestamp);
}
