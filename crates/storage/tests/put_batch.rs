//! Batches of puts and `pin_many` on `LocalStore`: one block-durability
//! step and one durable pin transaction per batch, all-or-nothing pins,
//! and nothing left behind by a batch that is dropped uncommitted.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::HashSet;
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use medseal_storage::{
    CHUNK_SIZE, Cid, CidVersion, Codec, ContentStore, ImportFormat, LocalStore, PutOptions,
    StorageError,
};

use common::pseudo_random;

fn sorted(mut cids: Vec<Cid>) -> Vec<Cid> {
    cids.sort();
    cids
}

fn temp_files(root: &std::path::Path) -> usize {
    std::fs::read_dir(root.join("tmp")).unwrap().count()
}

/// The shape of a bulk-import batch: 100 records, each an attachment and a
/// manifest, put four at a time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_of_200_puts_costs_one_block_commit_and_one_pin_commit() {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalStore::open(dir.path()).await.unwrap();
    let before = store.stats();
    let items: Vec<Vec<u8>> = (0..200u64)
        .map(|i| pseudo_random(i, 1000 + (i as usize % 7) * 300))
        .collect();
    let batch = store.begin_batch().await.unwrap();
    let cids: Vec<Cid> = futures_util::stream::iter(&items)
        .map(|data| batch.put(Bytes::from(data.clone()), PutOptions::new()))
        .buffered(4)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<Result<_, _>>()
        .unwrap();
    // Nothing is durable or pinned yet: the blocks wait in temp files.
    assert_eq!(store.stats(), before, "no sync before the commit");
    assert!(store.pins().await.is_empty());
    assert!(!store.has(&cids[0]).await.unwrap());
    assert_eq!(temp_files(dir.path()), 200);
    batch.commit().await.unwrap();

    let after = store.stats();
    assert_eq!(after.block_commits - before.block_commits, 1);
    assert_eq!(after.pin_commits - before.pin_commits, 1);
    assert_eq!(temp_files(dir.path()), 0);
    assert_eq!(sorted(store.pins().await), sorted(cids.clone()));
    for (cid, data) in cids.iter().zip(&items) {
        assert_eq!(store.get(cid).await.unwrap(), data.as_slice());
    }

    // The same content again: nothing new to sync or pin... but the
    // entries found present are synced once, and no pin is committed.
    let again = store.begin_batch().await.unwrap();
    for data in &items[..10] {
        again
            .put(Bytes::from(data.clone()), PutOptions::new())
            .await
            .unwrap();
    }
    again.commit().await.unwrap();
    assert_eq!(store.stats().pin_commits, after.pin_commits);

    // Durable: a new process sees every pin and block.
    drop(store);
    let store = LocalStore::open(dir.path()).await.unwrap();
    assert_eq!(sorted(store.pins().await), sorted(cids.clone()));
    assert!(store.verify_all(false).await.unwrap().corrupt.is_empty());
    assert_eq!(store.gc().await.unwrap().removed_blocks, 0);
}

#[tokio::test]
async fn a_dropped_batch_leaves_no_blocks_pins_or_temp_files() {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalStore::open(dir.path()).await.unwrap();
    let batch = store.begin_batch().await.unwrap();
    let cid = batch
        .put(
            Bytes::from(pseudo_random(1, 3 * CHUNK_SIZE)),
            PutOptions::new(),
        )
        .await
        .unwrap();
    drop(batch);
    // The temp files are deleted in the blocking pool.
    for _ in 0..100 {
        if temp_files(dir.path()) == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(temp_files(dir.path()), 0);
    assert!(!store.has(&cid).await.unwrap());
    assert!(store.pins().await.is_empty());
    assert!(store.list_blocks().await.unwrap().is_empty());
    assert_eq!(store.stats().pin_commits, 0);
}

#[tokio::test]
async fn unpinned_puts_and_explicit_pins_in_a_batch() {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalStore::open(dir.path()).await.unwrap();
    let earlier = store
        .put(
            Bytes::from(pseudo_random(2, 2 * CHUNK_SIZE + 5)),
            PutOptions::new().with_pin(false),
        )
        .await
        .unwrap();
    let batch = store.begin_batch().await.unwrap();
    let options = PutOptions::new().with_format(ImportFormat::CidV1RawLeaves);
    let kept = batch
        .put(Bytes::from(pseudo_random(3, 5000)), options.with_pin(false))
        .await
        .unwrap();
    let pinned = batch
        .put(Bytes::from(pseudo_random(4, CHUNK_SIZE + 1)), options)
        .await
        .unwrap();
    batch.pin(&earlier).await.unwrap();
    batch.commit().await.unwrap();
    assert_eq!(sorted(store.pins().await), sorted(vec![earlier, pinned]));
    assert_eq!(store.stats().pin_commits, 1);
    assert!(store.has(&kept).await.unwrap(), "stored, though not pinned");
    assert_eq!(
        store.get(&pinned).await.unwrap(),
        pseudo_random(4, CHUNK_SIZE + 1)
    );

    // An explicit pin of incomplete content fails the commit and pins
    // nothing, not even the batch's own puts.
    let missing = Cid::for_block(CidVersion::V1, Codec::Raw, b"never stored");
    let batch = store.begin_batch().await.unwrap();
    let other = batch
        .put(Bytes::from(pseudo_random(5, 100)), PutOptions::new())
        .await
        .unwrap();
    batch.pin(&missing).await.unwrap();
    let error = batch.commit().await.unwrap_err();
    assert!(matches!(error, StorageError::NotFound { cid } if cid == missing));
    assert!(!store.is_pinned(&other).await.unwrap());
    assert_eq!(store.stats().pin_commits, 1);
}

#[tokio::test]
async fn pin_many_is_one_transaction_and_all_or_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalStore::open(dir.path()).await.unwrap();
    let mut cids = Vec::new();
    for i in 0..20u64 {
        let data = Bytes::from(pseudo_random(10 + i, 100 + i as usize * 40_000));
        cids.push(
            store
                .put(data, PutOptions::new().with_pin(false))
                .await
                .unwrap(),
        );
    }
    assert_eq!(store.stats().pin_commits, 0);

    // One CID whose DAG is incomplete: nothing is pinned.
    let missing = Cid::for_block(CidVersion::V1, Codec::Raw, b"absent");
    let mut with_missing = cids.clone();
    with_missing.insert(10, missing);
    let error = store.pin_many(&with_missing).await.unwrap_err();
    assert!(matches!(error, StorageError::NotFound { cid } if cid == missing));
    assert!(store.pins().await.is_empty());
    assert_eq!(store.stats().pin_commits, 0);

    let blocks_before = store.stats().block_commits;
    store.pin_many(&cids).await.unwrap();
    let stats = store.stats();
    assert_eq!(stats.pin_commits, 1, "one transaction for 20 pins");
    assert_eq!(stats.block_commits - blocks_before, 1, "one entry sync");
    assert_eq!(sorted(store.pins().await), sorted(cids.clone()));
    // Already pinned: nothing is committed.
    store.pin_many(&cids).await.unwrap();
    assert_eq!(store.stats().pin_commits, 1);
    store.pin_many(&[]).await.unwrap();

    drop(store);
    let store = LocalStore::open(dir.path()).await.unwrap();
    let pins: HashSet<Cid> = store.pins().await.into_iter().collect();
    assert_eq!(pins, cids.iter().copied().collect());
}

/// Garbage collection waits for an open batch: its blocks, staged or
/// renamed but not yet pinned, are never collected.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gc_waits_for_an_open_batch() {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalStore::open(dir.path()).await.unwrap();
    // Unpinned garbage that a batch then reuses (found present).
    let data = Bytes::from(pseudo_random(30, 3000));
    let garbage = store
        .put(data.clone(), PutOptions::new().with_pin(false))
        .await
        .unwrap();
    let batch = store.begin_batch().await.unwrap();
    assert_eq!(batch.put(data, PutOptions::new()).await.unwrap(), garbage);
    let fresh = batch
        .put(Bytes::from(pseudo_random(31, 3000)), PutOptions::new())
        .await
        .unwrap();
    let gc = tokio::spawn({
        let store = store.clone();
        async move { store.gc().await }
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!gc.is_finished(), "gc must wait for the batch");
    batch.commit().await.unwrap();
    let report = gc.await.unwrap().unwrap();
    assert_eq!(report.removed_blocks, 0);
    assert_eq!(report.kept_blocks, 2);
    assert!(store.has(&garbage).await.unwrap());
    assert!(store.has(&fresh).await.unwrap());
}
