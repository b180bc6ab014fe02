//! `LocalStore` specifics: on-disk layout, persistence, pins, garbage
//! collection, corruption handling.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use bytes::Bytes;
use medseal_storage::{
    CHUNK_SIZE, Cid, CidVersion, Codec, ContentStore, ImportFormat, LocalStore, PutOptions,
    StorageError,
};

use common::pseudo_random;

fn unpinned() -> PutOptions {
    PutOptions::new().with_pin(false)
}

#[tokio::test]
async fn blocks_live_in_a_kubo_flatfs_layout() {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalStore::open(dir.path()).await.unwrap();
    let cid = store.put(Bytes::new(), PutOptions::new()).await.unwrap();
    assert_eq!(
        cid.to_string(),
        "QmbFMke1KXqnYyBBWxB74N4c5SBnJMVAiMNRcGu6x1AwQH"
    );
    let path = store.block_path(&cid);
    let name = path.file_name().unwrap().to_str().unwrap().to_owned();
    let shard = path
        .parent()
        .unwrap()
        .file_name()
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    // The file name and shard a js-ipfs 0.66 node's flatfs repo uses for
    // this block (read from a real repo), sharded next-to-last/2.
    assert_eq!(
        name,
        "CIQL7TG2PB52XIZLLHDYIUFMHUQLMMZWBNBZSLDXFCPZ5VDNQQ2WDZQ.data"
    );
    assert_eq!(shard, "DZ");
    assert_eq!(
        std::fs::read(&path).unwrap(),
        [0x0a, 0x04, 0x08, 0x02, 0x18, 0x00]
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("blocks/SHARDING")).unwrap(),
        "/repo/flatfs/shard/v1/next-to-last/2\n"
    );
}

#[tokio::test]
async fn contents_and_pins_survive_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let data = Bytes::from(pseudo_random(1, 3 * CHUNK_SIZE + 1));
    let (pinned, loose) = {
        let store = LocalStore::open(dir.path()).await.unwrap();
        let pinned = store.put(data.clone(), PutOptions::new()).await.unwrap();
        let loose = store
            .put(Bytes::from_static(b"loose"), unpinned())
            .await
            .unwrap();
        (pinned, loose)
    };
    let store = LocalStore::open(dir.path()).await.unwrap();
    assert_eq!(store.pins().await, vec![pinned]);
    assert_eq!(store.get(&pinned).await.unwrap(), data);
    assert_eq!(
        store.get(&loose).await.unwrap(),
        Bytes::from_static(b"loose")
    );
}

#[tokio::test]
async fn gc_removes_only_what_no_pin_reaches() {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalStore::open(dir.path()).await.unwrap();
    let shared_chunk = pseudo_random(2, CHUNK_SIZE);
    // Two raw-leaves files sharing their first chunk.
    let mut kept_data = shared_chunk.clone();
    kept_data.extend(pseudo_random(3, CHUNK_SIZE));
    let mut dropped_data = shared_chunk.clone();
    dropped_data.extend(pseudo_random(4, CHUNK_SIZE));
    let raw = |pin| {
        PutOptions::new()
            .with_format(ImportFormat::CidV1RawLeaves)
            .with_pin(pin)
    };
    let kept = store
        .put(Bytes::from(kept_data.clone()), raw(true))
        .await
        .unwrap();
    let dropped = store
        .put(Bytes::from(dropped_data), raw(false))
        .await
        .unwrap();
    let unpinned_later = store
        .put(Bytes::from(pseudo_random(5, 1000)), raw(true))
        .await
        .unwrap();
    store.unpin(&unpinned_later).await.unwrap();

    let report = store.gc().await.unwrap();
    // kept: root + 2 leaves; removed: dropped root + its own leaf + the 1000-byte file.
    assert_eq!(report.kept_blocks, 3);
    assert_eq!(report.removed_blocks, 3);
    assert_eq!(store.get(&kept).await.unwrap(), kept_data);
    assert!(!store.has(&dropped).await.unwrap());
    assert!(!store.has(&unpinned_later).await.unwrap());
    let shared = Cid::for_block(CidVersion::V1, Codec::Raw, &shared_chunk);
    assert!(
        store.has(&shared).await.unwrap(),
        "shared leaf is still reachable"
    );
    assert_eq!(store.gc().await.unwrap().removed_blocks, 0, "idempotent");
}

#[tokio::test]
async fn gc_refuses_to_run_when_a_pinned_dag_is_damaged() {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalStore::open(dir.path()).await.unwrap();
    let data = pseudo_random(6, 3 * CHUNK_SIZE);
    let root = store
        .put(Bytes::from(data.clone()), PutOptions::new())
        .await
        .unwrap();
    let loose = store
        .put(Bytes::from_static(b"garbage"), unpinned())
        .await
        .unwrap();
    // Delete one leaf of the pinned DAG.
    let leaf_block = {
        let mut builder = medseal_storage::DagBuilder::new(ImportFormat::CidV0);
        builder.write(&data);
        let dag = builder.finish();
        *dag.blocks[0].cid()
    };
    std::fs::remove_file(store.block_path(&leaf_block)).unwrap();
    let error = store.gc().await.unwrap_err();
    assert!(
        matches!(error, StorageError::NotFound { cid } if cid == leaf_block),
        "{error:?}"
    );
    assert!(
        store.has(&loose).await.unwrap(),
        "nothing deleted by a failed GC"
    );
    assert!(store.has(&root).await.unwrap());
}

#[tokio::test]
async fn corruption_is_detected_reported_and_repaired() {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalStore::open(dir.path()).await.unwrap();
    let data = Bytes::from(pseudo_random(7, 1000));
    let cid = store.put(data.clone(), PutOptions::new()).await.unwrap();
    let path = store.block_path(&cid);
    let mut bytes = std::fs::read(&path).unwrap();
    bytes.truncate(bytes.len() - 1); // a torn write
    std::fs::write(&path, &bytes).unwrap();

    let error = store.get(&cid).await.unwrap_err();
    assert!(
        matches!(error, StorageError::IntegrityViolation { .. }),
        "{error:?}"
    );
    let report = store.verify_all(false).await.unwrap();
    assert_eq!(report.corrupt, vec![path.clone()]);
    // Putting the same content again replaces the bad file.
    assert_eq!(
        store.put(data.clone(), PutOptions::new()).await.unwrap(),
        cid
    );
    assert_eq!(store.get(&cid).await.unwrap(), data);
    assert!(store.verify_all(false).await.unwrap().corrupt.is_empty());

    std::fs::write(&path, b"junk").unwrap();
    assert_eq!(store.verify_all(true).await.unwrap().corrupt.len(), 1);
    assert!(!store.has(&cid).await.unwrap(), "removed on request");
}

#[tokio::test]
async fn pin_requires_the_whole_dag() {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalStore::open(dir.path()).await.unwrap();
    let data = pseudo_random(8, 2 * CHUNK_SIZE + 1);
    let root = store
        .put(Bytes::from(data.clone()), unpinned())
        .await
        .unwrap();
    let last_leaf = {
        let mut builder = medseal_storage::DagBuilder::new(ImportFormat::CidV0);
        builder.write(&data);
        *builder.finish().blocks[2].cid()
    };
    assert!(store.remove_block(&last_leaf).await.unwrap());
    let error = store.pin(&root).await.unwrap_err();
    assert!(matches!(error, StorageError::NotFound { cid } if cid == last_leaf));
    assert!(store.pins().await.is_empty());
}

#[tokio::test]
async fn a_corrupt_pin_file_stops_open_instead_of_losing_pins() {
    let dir = tempfile::tempdir().unwrap();
    drop(LocalStore::open(dir.path()).await.unwrap());
    std::fs::write(dir.path().join("pins.json"), b"{\"format\":").unwrap();
    let error = LocalStore::open(dir.path()).await.unwrap_err();
    assert!(matches!(error, StorageError::Io { .. }), "{error:?}");
}

/// A put whose input fails midway stores nothing: its blocks were only
/// staged in temp files, which are deleted, and nothing was renamed.
#[tokio::test]
async fn a_failed_put_leaves_no_blocks_and_no_temp_files() {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalStore::open(dir.path()).await.unwrap();
    let data = pseudo_random(21, 10 * CHUNK_SIZE);
    let mut pieces: Vec<Result<Bytes, StorageError>> = data
        .chunks(CHUNK_SIZE)
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    pieces.push(Err(StorageError::backend("input broke off")));
    let stream = Box::pin(futures_util::stream::iter(pieces));
    let error = store
        .put_stream(stream, PutOptions::new())
        .await
        .unwrap_err();
    assert!(matches!(error, StorageError::Backend { .. }), "{error:?}");
    assert!(store.list_blocks().await.unwrap().is_empty());
    assert_eq!(
        std::fs::read_dir(dir.path().join("tmp")).unwrap().count(),
        0
    );
    assert!(store.pins().await.is_empty());

    // The same content then goes in normally, and a repeat put (every
    // block already present) returns the same CID.
    let cid = store
        .put(Bytes::from(data.clone()), unpinned())
        .await
        .unwrap();
    assert_eq!(store.list_blocks().await.unwrap().len(), 11);
    assert_eq!(
        store
            .put(Bytes::from(data.clone()), unpinned())
            .await
            .unwrap(),
        cid
    );
    assert_eq!(
        std::fs::read_dir(dir.path().join("tmp")).unwrap().count(),
        0
    );
    assert_eq!(store.get(&cid).await.unwrap(), data);
}

/// A `pins.json` as earlier versions wrote it.
fn write_v1_pin_file(root: &std::path::Path, pins: &[Cid]) {
    let names: Vec<String> = pins.iter().map(|c| format!("\"{c}\"")).collect();
    let text = format!(
        "{{\n  \"format\": \"medseal-pins-v1\",\n  \"pins\": [\n    {}\n  ]\n}}",
        names.join(",\n    ")
    );
    std::fs::write(root.join("pins.json"), text).unwrap();
}

fn sorted(mut cids: Vec<Cid>) -> Vec<Cid> {
    cids.sort();
    cids
}

#[tokio::test]
async fn pins_and_unpins_survive_reopening_and_unpinned_data_is_collected() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = {
        let store = LocalStore::open(dir.path()).await.unwrap();
        let a = store
            .put(Bytes::from(pseudo_random(30, 3000)), PutOptions::new())
            .await
            .unwrap();
        let b = store
            .put(Bytes::from(pseudo_random(31, 3000)), PutOptions::new())
            .await
            .unwrap();
        (a, b)
    };
    assert!(dir.path().join("pins.redb").is_file());
    assert!(!dir.path().join("pins.json").exists());
    {
        let store = LocalStore::open(dir.path()).await.unwrap();
        assert_eq!(store.pins().await, sorted(vec![a, b]));
        assert!(store.is_pinned(&a).await.unwrap());
        store.unpin(&a).await.unwrap();
        store.unpin(&a).await.unwrap();
        assert!(!store.is_pinned(&a).await.unwrap());
    }
    let store = LocalStore::open(dir.path()).await.unwrap();
    assert_eq!(store.try_pins().await.unwrap(), vec![b]);
    let report = store.gc().await.unwrap();
    assert_eq!(report.removed_blocks, 1);
    assert!(!store.has(&a).await.unwrap());
    assert!(store.has(&b).await.unwrap());
}

/// Stores opened on one directory in one process share the pin database
/// (redb locks its file), and it closes with the last of them.
#[tokio::test]
async fn stores_on_one_directory_share_their_pins() {
    let dir = tempfile::tempdir().unwrap();
    let first = LocalStore::open(dir.path()).await.unwrap();
    let second = LocalStore::open(dir.path().join(".")).await.unwrap();
    let cid = first
        .put(Bytes::from_static(b"shared"), PutOptions::new())
        .await
        .unwrap();
    assert_eq!(second.pins().await, vec![cid]);
    drop(first);
    second.unpin(&cid).await.unwrap();
    drop(second);
    for _ in 0..3 {
        let store = LocalStore::open(dir.path()).await.unwrap();
        assert!(store.pins().await.is_empty());
    }
}

/// A store of an earlier version: blocks plus `pins.json`, no database.
#[tokio::test]
async fn a_v1_pin_file_is_migrated_on_open() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b, loose) = {
        let store = LocalStore::open(dir.path()).await.unwrap();
        let put = |seed| {
            let store = store.clone();
            async move {
                store
                    .put(Bytes::from(pseudo_random(seed, 5000)), unpinned())
                    .await
                    .unwrap()
            }
        };
        (put(40).await, put(41).await, put(42).await)
    };
    std::fs::remove_file(dir.path().join("pins.redb")).unwrap();
    write_v1_pin_file(dir.path(), &[a, b]);

    let store = LocalStore::open(dir.path()).await.unwrap();
    assert_eq!(store.pins().await, sorted(vec![a, b]));
    assert!(!dir.path().join("pins.json").exists());
    assert!(dir.path().join("pins.json.migrated").is_file());
    assert_eq!(store.gc().await.unwrap().removed_blocks, 1);
    assert!(!store.has(&loose).await.unwrap());
    store.unpin(&a).await.unwrap();
    drop(store);

    // Only once: the renamed file does not bring `a` back.
    let store = LocalStore::open(dir.path()).await.unwrap();
    assert_eq!(store.pins().await, vec![b]);
}

/// A crash after the migration's commit but before its rename persisted:
/// the next open finds both files and migrates again, losing nothing and
/// duplicating nothing.
#[tokio::test]
async fn an_interrupted_migration_is_redone() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = {
        let store = LocalStore::open(dir.path()).await.unwrap();
        let a = store
            .put(Bytes::from_static(b"a"), unpinned())
            .await
            .unwrap();
        let b = store
            .put(Bytes::from_static(b"b"), PutOptions::new())
            .await
            .unwrap();
        (a, b)
    };
    write_v1_pin_file(dir.path(), &[a, b]);
    let store = LocalStore::open(dir.path()).await.unwrap();
    assert_eq!(store.pins().await, sorted(vec![a, b]));
    drop(store);
    std::fs::rename(
        dir.path().join("pins.json.migrated"),
        dir.path().join("pins.json"),
    )
    .unwrap();
    let store = LocalStore::open(dir.path()).await.unwrap();
    assert_eq!(store.pins().await, sorted(vec![a, b]));
    assert!(!dir.path().join("pins.json").exists());
}

/// A corrupt legacy pin file is an error on every open, before and after
/// a database exists, and stays where it is: never migrated as empty.
#[tokio::test]
async fn a_corrupt_v1_pin_file_is_never_migrated() {
    let dir = tempfile::tempdir().unwrap();
    let pinned = {
        let store = LocalStore::open(dir.path()).await.unwrap();
        store
            .put(Bytes::from_static(b"pinned"), PutOptions::new())
            .await
            .unwrap()
    };
    std::fs::write(
        dir.path().join("pins.json"),
        b"{\"format\":\"medseal-pins-v1\",\"pins\":[\"Qm",
    )
    .unwrap();
    for _ in 0..2 {
        let error = LocalStore::open(dir.path()).await.unwrap_err();
        assert!(matches!(error, StorageError::Io { .. }), "{error:?}");
        assert!(error.to_string().contains("pins.json"), "{error}");
    }
    assert!(dir.path().join("pins.json").is_file());
    assert!(!dir.path().join("pins.json.migrated").exists());

    // Without a database at all, too.
    std::fs::remove_file(dir.path().join("pins.redb")).unwrap();
    assert!(LocalStore::open(dir.path()).await.is_err());

    // Repaired by hand, it migrates.
    write_v1_pin_file(dir.path(), &[pinned]);
    let store = LocalStore::open(dir.path()).await.unwrap();
    assert_eq!(store.pins().await, vec![pinned]);
}

/// A damaged database file stops the open with an error naming it.
#[tokio::test]
async fn a_corrupt_pin_database_stops_open() {
    let dir = tempfile::tempdir().unwrap();
    drop(LocalStore::open(dir.path()).await.unwrap());
    std::fs::write(dir.path().join("pins.redb"), vec![0x5a; 8192]).unwrap();
    let error = LocalStore::open(dir.path()).await.unwrap_err();
    assert!(error.to_string().contains("pins.redb"), "{error}");
}

/// A stream that yields `chunks` pieces of `CHUNK_SIZE` bytes, then never ends (a
/// put still reading when it is cancelled).
fn endless(chunks: usize) -> medseal_storage::ByteStream {
    let pieces = (0..chunks).map(|i| Ok(Bytes::from(pseudo_random(100 + i as u64, CHUNK_SIZE))));
    Box::pin(futures_util::StreamExt::chain(
        futures_util::stream::iter(pieces),
        futures_util::stream::pending(),
    ))
}

fn temp_files(root: &std::path::Path) -> usize {
    std::fs::read_dir(root.join("tmp")).unwrap().count()
}

/// A put (alone or in a batch) whose future is dropped while it reads leaves no temp
/// file once the drop has returned: neither its staged blocks nor those whose writes
/// had ended but were not collected yet.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_put_leaves_no_temp_files() {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalStore::open(dir.path()).await.unwrap();
    let put = store.put_stream(endless(40), PutOptions::new());
    assert!(
        tokio::time::timeout(std::time::Duration::from_millis(500), put)
            .await
            .is_err()
    );
    assert_eq!(temp_files(dir.path()), 0);

    let batch = store.begin_batch().await.unwrap();
    batch
        .put(
            Bytes::from(pseudo_random(7, 3 * CHUNK_SIZE)),
            PutOptions::new(),
        )
        .await
        .unwrap();
    let put = batch.put_stream(endless(20), PutOptions::new());
    assert!(
        tokio::time::timeout(std::time::Duration::from_millis(500), put)
            .await
            .is_err()
    );
    assert!(temp_files(dir.path()) > 0, "the first put is staged");
    drop(batch);
    assert_eq!(temp_files(dir.path()), 0);
    assert!(store.pins().await.is_empty());
    assert!(store.list_blocks().await.unwrap().is_empty());
    assert_eq!(
        store.stats().abandoned_blocks,
        0,
        "nothing was made durable"
    );
}

/// A dry run counts what a collection removes and deletes nothing; the counts cover
/// blocks and bytes, kept and removed.
#[tokio::test]
async fn a_gc_dry_run_counts_without_deleting() {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalStore::open(dir.path()).await.unwrap();
    let pinned = store
        .put(
            Bytes::from(pseudo_random(1, 2 * CHUNK_SIZE)),
            PutOptions::new(),
        )
        .await
        .unwrap();
    let kept_bytes: u64 = store
        .list_blocks()
        .await
        .unwrap()
        .iter()
        .map(|b| b.size)
        .sum();
    let loose = store
        .put(Bytes::from_static(b"loose"), unpinned())
        .await
        .unwrap();
    let dry = store.collect_garbage(true).await.unwrap();
    assert!(dry.dry_run);
    assert_eq!((dry.kept_blocks, dry.kept_bytes), (3, kept_bytes));
    assert_eq!(dry.removed_blocks, 1);
    assert_eq!(
        dry.removed_bytes,
        std::fs::metadata(store.block_path(&loose)).unwrap().len()
    );
    assert!(store.has(&loose).await.unwrap());
    let done = store.collect_garbage(false).await.unwrap();
    assert!(!done.dry_run);
    assert_eq!(
        (done.removed_blocks, done.removed_bytes),
        (dry.removed_blocks, dry.removed_bytes)
    );
    assert!(!store.has(&loose).await.unwrap());
    assert!(store.has(&pinned).await.unwrap());
}

/// An IPFS node's garbage is its operator's: the client refuses, without a request.
#[tokio::test]
async fn gc_is_not_offered_on_an_ipfs_node() {
    let kubo = medseal_storage::KuboStore::new("http://127.0.0.1:9").unwrap();
    assert!(matches!(
        kubo.collect_garbage(true).await,
        Err(StorageError::Unsupported { .. })
    ));
}
