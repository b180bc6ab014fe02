//! One conformance suite, run unchanged against every backend:
//! `MemoryStore`, `LocalStore`, `CachedStore` (over a `MemoryStore`) and
//! `KuboStore` against a real node (`MEDSEAL_IPFS_API`; skipped with a
//! notice when unset, a failure when unset under `CI=true`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;

use bytes::Bytes;
use futures_util::StreamExt;
use medseal_storage::{
    CHUNK_SIZE, CachedStore, Cid, CidVersion, Codec, ContentStore, ImportFormat, LocalStore,
    MemoryStore, PutOptions, StorageError, cid_of_bytes,
};
use tempfile::TempDir;

use common::{kubo_store_from_env, kubo_vectors, pseudo_random, shake_bytes, stream_of};

/// Corrupts the stored bytes of one block.
type Corrupter = Box<dyn Fn(&Cid) + Send + Sync>;

/// A backend under test plus what the suite needs to know about it.
struct Harness {
    store: Arc<dyn ContentStore>,
    /// A real node may answer "not found" only after its search times out.
    missing_may_time_out: bool,
    /// How to damage a stored block, if the backend allows it.
    corrupt: Option<Corrupter>,
    _dir: Option<TempDir>,
}

async fn memory() -> Option<Harness> {
    let store = MemoryStore::new();
    let handle = store.clone();
    Some(Harness {
        store: Arc::new(store),
        missing_may_time_out: false,
        corrupt: Some(Box::new(move |cid| {
            let mut bytes = handle.raw_block(cid).unwrap().to_vec();
            let middle = bytes.len() / 2;
            bytes[middle] ^= 0x01;
            handle.insert_unverified(cid, Bytes::from(bytes));
        })),
        _dir: None,
    })
}

async fn local() -> Option<Harness> {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalStore::open(dir.path()).await.unwrap();
    let handle = store.clone();
    Some(Harness {
        store: Arc::new(store),
        missing_may_time_out: false,
        corrupt: Some(Box::new(move |cid| {
            let path = handle.block_path(cid);
            let mut bytes = std::fs::read(&path).unwrap();
            let middle = bytes.len() / 2;
            bytes[middle] ^= 0x01;
            std::fs::write(&path, bytes).unwrap();
        })),
        _dir: Some(dir),
    })
}

async fn cached() -> Option<Harness> {
    let dir = tempfile::tempdir().unwrap();
    let remote = MemoryStore::new();
    let cache = LocalStore::open(dir.path()).await.unwrap();
    let store = CachedStore::new(Arc::new(remote.clone()), cache.clone(), 64 << 20)
        .await
        .unwrap();
    Some(Harness {
        store: Arc::new(store),
        missing_may_time_out: false,
        // Damage both the remote's copy and any cached copy.
        corrupt: Some(Box::new(move |cid| {
            let mut bytes = remote.raw_block(cid).unwrap().to_vec();
            let middle = bytes.len() / 2;
            bytes[middle] ^= 0x01;
            remote.insert_unverified(cid, Bytes::from(bytes));
            let path = cache.block_path(cid);
            if let Ok(mut cached) = std::fs::read(&path) {
                let middle = cached.len() / 2;
                cached[middle] ^= 0x01;
                std::fs::write(&path, cached).unwrap();
            }
        })),
        _dir: Some(dir),
    })
}

async fn kubo() -> Option<Harness> {
    let store = kubo_store_from_env().await?;
    Some(Harness {
        store: Arc::new(store),
        missing_may_time_out: true,
        corrupt: None,
        _dir: None,
    })
}

const FORMATS: [ImportFormat; 2] = [ImportFormat::CidV0, ImportFormat::CidV1RawLeaves];

/// A CID no store holds (digest of fresh random-looking bytes).
fn absent_cid(tag: &str) -> Cid {
    Cid::for_block(
        CidVersion::V1,
        Codec::Raw,
        format!("absent {tag} {:?}", std::time::SystemTime::now()).as_bytes(),
    )
}

fn assert_missing(h: &Harness, error: &StorageError, cid: &Cid) {
    match error {
        StorageError::NotFound { cid: missing } => assert_eq!(missing, cid),
        StorageError::Timeout { .. } if h.missing_may_time_out => {}
        other => panic!("expected NotFound for {cid}, got {other:?}"),
    }
}

mod checks {
    use super::*;

    pub(super) async fn round_trips_every_size_and_format(h: &Harness) {
        let sizes = [
            0,
            1,
            1000,
            CHUNK_SIZE - 1,
            CHUNK_SIZE,
            CHUNK_SIZE + 1,
            3 * CHUNK_SIZE + 5,
        ];
        for (i, &size) in sizes.iter().enumerate() {
            let data = Bytes::from(pseudo_random(i as u64 + 1, size));
            for format in FORMATS {
                let options = PutOptions::new().with_format(format);
                let cid = h.store.put(data.clone(), options).await.unwrap();
                assert_eq!(cid, cid_of_bytes(&data, format), "size {size} {format:?}");
                assert_eq!(
                    h.store.get(&cid).await.unwrap(),
                    data,
                    "size {size} {format:?}"
                );
                assert!(h.store.has(&cid).await.unwrap());
            }
        }
    }

    pub(super) async fn matches_kubo_reference_cids(h: &Harness) {
        for vector in kubo_vectors().iter().filter(|v| v.len <= 1_000_000) {
            let data = Bytes::from(shake_bytes(&vector.seed, vector.len as usize));
            let cid = h.store.put(data, PutOptions::new()).await.unwrap();
            assert_eq!(cid, vector.cid.parse::<Cid>().unwrap(), "{}", vector.seed);
        }
    }

    pub(super) async fn streams_in_and_out(h: &Harness) {
        let data = pseudo_random(42, 5 * CHUNK_SIZE + 12_345);
        for format in FORMATS {
            let options = PutOptions::new().with_format(format);
            let cid = h
                .store
                .put_stream(stream_of(&data, 100_003), options)
                .await
                .unwrap();
            assert_eq!(cid, cid_of_bytes(&data, format));
            let mut stream = h.store.get_stream(&cid);
            let mut out = Vec::new();
            while let Some(piece) = stream.next().await {
                let piece = piece.unwrap();
                assert!(piece.len() <= CHUNK_SIZE, "pieces are at most one chunk");
                out.extend_from_slice(&piece);
            }
            assert_eq!(out, data);
        }
    }

    pub(super) async fn input_stream_errors_fail_the_put(h: &Harness) {
        let parts: Vec<Result<Bytes, StorageError>> = vec![
            Ok(Bytes::from(pseudo_random(7, 1000))),
            Err(StorageError::Input("disk went away".into())),
        ];
        let result = h
            .store
            .put_stream(
                Box::pin(futures_util::stream::iter(parts)),
                PutOptions::new(),
            )
            .await;
        assert!(result.is_err(), "a failing input must not produce a CID");
    }

    pub(super) async fn missing_content_is_reported(h: &Harness) {
        let cid = absent_cid("get");
        assert!(!h.store.has(&cid).await.unwrap());
        let error = h.store.get(&cid).await.unwrap_err();
        assert_missing(h, &error, &cid);
        let error = h.store.get_block(&cid).await.unwrap_err();
        assert_missing(h, &error, &cid);
        let first = h.store.get_stream(&cid).next().await.unwrap().unwrap_err();
        assert_missing(h, &first, &cid);
    }

    pub(super) async fn pins_and_unpins(h: &Harness) {
        let data = Bytes::from(pseudo_random(9, 2 * CHUNK_SIZE + 3));
        let cid = h
            .store
            .put(data.clone(), PutOptions::new().with_pin(false))
            .await
            .unwrap();
        h.store.pin(&cid).await.unwrap();
        h.store.pin(&cid).await.unwrap();
        h.store.unpin(&cid).await.unwrap();
        h.store.unpin(&cid).await.unwrap();
        assert_eq!(h.store.get(&cid).await.unwrap(), data);
        let missing = absent_cid("pin");
        let error = h.store.pin(&missing).await.unwrap_err();
        assert_missing(h, &error, &missing);
    }

    /// Puts into a batch return the same CIDs as plain puts, and after the
    /// commit the content is stored; `pin_many` pins several DAGs and
    /// fails if one is incomplete.
    pub(super) async fn batches_store_and_pin_at_commit(h: &Harness) {
        let items: Vec<(Bytes, PutOptions)> = (0..12u64)
            .map(|i| {
                let data = Bytes::from(pseudo_random(40 + i, (i as usize * 97_531) % 600_000));
                let options = PutOptions::new()
                    .with_format(FORMATS[i as usize % 2])
                    .with_pin(i % 3 != 0);
                (data, options)
            })
            .collect();
        let batch = h.store.begin_batch().await.unwrap();
        let mut cids = Vec::new();
        for (i, (data, options)) in items.iter().enumerate() {
            let cid = if i % 2 == 0 {
                batch.put(data.clone(), *options).await.unwrap()
            } else {
                batch
                    .put_stream(stream_of(data, 10_000), *options)
                    .await
                    .unwrap()
            };
            assert_eq!(cid, cid_of_bytes(data, options.format));
            cids.push(cid);
        }
        batch.commit().await.unwrap();
        for (cid, (data, _)) in cids.iter().zip(&items) {
            assert_eq!(&h.store.get(cid).await.unwrap(), data);
        }
        h.store.pin_many(&cids).await.unwrap();
        h.store.pin_many(&cids[..3]).await.unwrap();
        let missing = absent_cid("pin_many");
        let failed = h.store.pin_many(&[cids[0], missing]).await;
        assert!(failed.is_err());
        for cid in &cids {
            h.store.unpin(cid).await.unwrap();
        }
    }

    pub(super) async fn blocks_are_verified(h: &Harness) {
        let data = Bytes::from(pseudo_random(11, 3 * CHUNK_SIZE));
        for format in FORMATS {
            let cid = h
                .store
                .put(data.clone(), PutOptions::new().with_format(format))
                .await
                .unwrap();
            let root = h.store.get_block(&cid).await.unwrap();
            assert!(cid.verifies(&root));
        }
        let Some(corrupt) = &h.corrupt else {
            return;
        };
        // Damage one leaf of a raw-leaves DAG and the root of another.
        let leaf_data = pseudo_random(12, 2 * CHUNK_SIZE);
        let root = h
            .store
            .put(
                Bytes::from(leaf_data.clone()),
                PutOptions::new().with_format(ImportFormat::CidV1RawLeaves),
            )
            .await
            .unwrap();
        let leaf = Cid::for_block(CidVersion::V1, Codec::Raw, &leaf_data[CHUNK_SIZE..]);
        corrupt(&leaf);
        let error = h.store.get(&root).await.unwrap_err();
        assert!(
            matches!(error, StorageError::IntegrityViolation { cid, .. } if cid == leaf),
            "{error:?}"
        );
        let error = h.store.get_block(&leaf).await.unwrap_err();
        assert!(
            matches!(error, StorageError::IntegrityViolation { .. }),
            "{error:?}"
        );

        let other = Bytes::from(pseudo_random(13, 1000));
        let cid = h.store.put(other, PutOptions::new()).await.unwrap();
        corrupt(&cid);
        let error = h.store.get(&cid).await.unwrap_err();
        assert!(
            matches!(error, StorageError::IntegrityViolation { .. }),
            "{error:?}"
        );
    }

    pub(super) async fn concurrent_puts_and_gets(h: &Harness) {
        let tasks: Vec<_> = (0..8u64)
            .map(|i| {
                let store = Arc::clone(&h.store);
                tokio::spawn(async move {
                    let data = Bytes::from(pseudo_random(100 + i, (i as usize + 1) * 150_000));
                    let cid = store.put(data.clone(), PutOptions::new()).await.unwrap();
                    assert_eq!(store.get(&cid).await.unwrap(), data);
                    cid
                })
            })
            .collect();
        let mut cids = Vec::new();
        for task in tasks {
            cids.push(task.await.unwrap());
        }
        cids.sort();
        cids.dedup();
        assert_eq!(cids.len(), 8);
    }

    pub(super) async fn duplicate_chunks_are_stored_once_and_read_back(h: &Harness) {
        // Four identical chunks: the leaves share one CID.
        let chunk = pseudo_random(21, CHUNK_SIZE);
        let data: Vec<u8> = chunk.iter().copied().cycle().take(4 * CHUNK_SIZE).collect();
        let cid = h
            .store
            .put(Bytes::from(data.clone()), PutOptions::new())
            .await
            .unwrap();
        assert_eq!(h.store.get(&cid).await.unwrap(), data);
    }
}

macro_rules! conformance_suite {
    ($backend:ident) => {
        mod $backend {
            use super::*;

            macro_rules! case {
                ($name:ident) => {
                    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                    async fn $name() {
                        let Some(harness) = super::$backend().await else {
                            return;
                        };
                        checks::$name(&harness).await;
                    }
                };
            }

            case!(round_trips_every_size_and_format);
            case!(matches_kubo_reference_cids);
            case!(streams_in_and_out);
            case!(input_stream_errors_fail_the_put);
            case!(missing_content_is_reported);
            case!(pins_and_unpins);
            case!(batches_store_and_pin_at_commit);
            case!(blocks_are_verified);
            case!(concurrent_puts_and_gets);
            case!(duplicate_chunks_are_stored_once_and_read_back);
        }
    };
}

conformance_suite!(memory);
conformance_suite!(local);
conformance_suite!(cached);
conformance_suite!(kubo);
