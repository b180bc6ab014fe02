//! CAR v1 export/import round trips and rejection of bad archives.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use medseal_storage::{
    ByteStream, CHUNK_SIZE, ContentStore, ImportFormat, LocalStore, MemoryStore, PutOptions,
    StorageError, export_car, export_car_roots, import_car,
};

use common::{pseudo_random, stream_of};

async fn collect(mut stream: ByteStream) -> Vec<u8> {
    let mut out = BytesMut::new();
    while let Some(piece) = stream.next().await {
        out.extend_from_slice(&piece.unwrap());
    }
    out.to_vec()
}

#[tokio::test]
async fn local_dag_round_trips_through_a_car() {
    let dir = tempfile::tempdir().unwrap();
    let local = LocalStore::open(dir.path()).await.unwrap();
    // Repeated chunks: the CAR must carry the shared leaf once.
    let chunk = pseudo_random(1, CHUNK_SIZE);
    let mut data: Vec<u8> = chunk.iter().copied().cycle().take(3 * CHUNK_SIZE).collect();
    data.extend(pseudo_random(2, 777));
    for format in [ImportFormat::CidV0, ImportFormat::CidV1RawLeaves] {
        let root = local
            .put(
                Bytes::from(data.clone()),
                PutOptions::new().with_format(format),
            )
            .await
            .unwrap();
        let car = collect(export_car(local.clone(), root)).await;
        let again = collect(export_car(local.clone(), root)).await;
        assert_eq!(car, again, "export is deterministic");

        let target = MemoryStore::new();
        let imported = import_car(&target, stream_of(&car, 4097)).await.unwrap();
        assert_eq!(imported.roots, vec![root]);
        assert_eq!(imported.blocks, 3, "root, shared leaf, tail leaf");
        assert_eq!(target.block_count(), 3);
        assert_eq!(target.get(&root).await.unwrap(), data);
    }
}

/// An import bigger than one import batch (16 MiB) into a `LocalStore`:
/// several batched commits, every block stored and no temp file left.
#[tokio::test]
async fn large_car_imports_into_a_local_store_in_batches() {
    let source = MemoryStore::new();
    let data = pseudo_random(4, 20 * 1024 * 1024 + 12_345);
    let root = source
        .put(
            Bytes::from(data.clone()),
            PutOptions::new().with_format(ImportFormat::CidV1RawLeaves),
        )
        .await
        .unwrap();
    let car = collect(export_car(source.clone(), root)).await;

    let dir = tempfile::tempdir().unwrap();
    let local = LocalStore::open(dir.path()).await.unwrap();
    let imported = import_car(&local, stream_of(&car, 1 << 16)).await.unwrap();
    assert_eq!(imported.roots, vec![root]);
    assert_eq!(imported.blocks, source.block_count() as u64);
    assert_eq!(
        local.list_blocks().await.unwrap().len() as u64,
        imported.blocks
    );
    assert_eq!(
        std::fs::read_dir(dir.path().join("tmp")).unwrap().count(),
        0
    );
    local.pin(&root).await.unwrap();
    assert_eq!(local.get(&root).await.unwrap(), data);
}

#[tokio::test]
async fn tampered_or_truncated_cars_are_rejected() {
    let source = MemoryStore::new();
    let data = pseudo_random(3, 2 * CHUNK_SIZE);
    let root = source
        .put(Bytes::from(data), PutOptions::new())
        .await
        .unwrap();
    let car = collect(export_car(source.clone(), root)).await;

    let mut flipped = car.clone();
    let last = flipped.len() - 10;
    flipped[last] ^= 0x40;
    let error = import_car(&MemoryStore::new(), stream_of(&flipped, 1 << 16))
        .await
        .unwrap_err();
    assert!(
        matches!(error, StorageError::IntegrityViolation { .. }),
        "{error:?}"
    );

    let truncated = &car[..car.len() - 1];
    let error = import_car(&MemoryStore::new(), stream_of(truncated, 1 << 16))
        .await
        .unwrap_err();
    assert!(matches!(error, StorageError::InvalidCar(_)), "{error:?}");

    let error = import_car(&MemoryStore::new(), stream_of(b"", 1))
        .await
        .unwrap_err();
    assert!(matches!(error, StorageError::InvalidCar(_)), "{error:?}");
}

#[tokio::test]
async fn exporting_an_incomplete_dag_fails() {
    let source = MemoryStore::new();
    let data = pseudo_random(4, 2 * CHUNK_SIZE);
    let root = source
        .put(Bytes::from(data.clone()), PutOptions::new())
        .await
        .unwrap();
    let leaf = {
        let mut builder = medseal_storage::DagBuilder::new(ImportFormat::CidV0);
        builder.write(&data);
        *builder.finish().blocks[1].cid()
    };
    assert!(source.remove_block(&leaf));
    let mut stream = export_car(source, root);
    let mut failed = false;
    while let Some(piece) = stream.next().await {
        if let Err(error) = piece {
            assert!(matches!(error, StorageError::NotFound { cid } if cid == leaf));
            failed = true;
        }
    }
    assert!(failed);
}

/// Several DAGs in one archive: every root named in the header, a block two
/// DAGs share carried once, nothing missing; an archive cut at a section
/// boundary imports as a shorter one whose `missing` names what it lacks.
#[tokio::test]
async fn several_roots_share_blocks_and_cut_archives_name_what_they_lack() {
    let source = MemoryStore::new();
    let shared = pseudo_random(7, CHUNK_SIZE);
    let mut first = shared.clone();
    first.extend(pseudo_random(8, 1000));
    let mut second = shared.clone();
    second.extend(pseudo_random(9, 2000));
    let small = pseudo_random(10, 99);
    let options = PutOptions::new().with_format(ImportFormat::CidV1RawLeaves);
    let mut roots = Vec::new();
    for data in [&first, &second, &small] {
        roots.push(
            source
                .put(Bytes::from(data.clone()), options)
                .await
                .unwrap(),
        );
    }
    // A repeated root is named and carried once.
    let mut asked = roots.clone();
    asked.push(roots[0]);
    let car = collect(export_car_roots(source.clone(), asked)).await;

    let target = MemoryStore::new();
    let imported = import_car(&target, stream_of(&car, 1000)).await.unwrap();
    assert_eq!(imported.roots, roots);
    // Two roots, the shared leaf once, two tails, the small file (one raw block).
    assert_eq!(imported.blocks, 6);
    assert_eq!(target.block_count(), 6);
    assert!(imported.missing.is_empty(), "{:?}", imported.missing);
    assert_eq!(
        imported.bytes,
        (CHUNK_SIZE + 1000 + 2000 + 99) as u64 + block_bytes_of_roots(&source, &roots[..2]).await
    );
    for (root, data) in roots.iter().zip([&first, &second, &small]) {
        assert_eq!(&target.get(root).await.unwrap()[..], &data[..]);
    }

    // Cut after the first section (the first root): its leaves and the
    // other roots are missing, in the order the archive names them.
    let (len, used) = varint(&car);
    let header_end = used + len;
    let (len, used) = varint(&car[header_end..]);
    let cut = &car[..header_end + used + len];
    let target = MemoryStore::new();
    let imported = import_car(&target, stream_of(cut, 1000)).await.unwrap();
    assert_eq!(imported.blocks, 1);
    assert_eq!(imported.missing.len(), 4, "{:?}", imported.missing);
    assert_eq!(imported.missing[..2], roots[1..]);
}

/// A LEB128 varint at the start of `bytes`: its value and length.
fn varint(bytes: &[u8]) -> (usize, usize) {
    let mut value = 0;
    for (i, b) in bytes.iter().enumerate() {
        value |= usize::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return (value, i + 1);
        }
    }
    panic!("truncated varint");
}

/// Bytes of the root blocks themselves (the leaves are counted separately).
async fn block_bytes_of_roots(store: &MemoryStore, roots: &[medseal_storage::Cid]) -> u64 {
    let mut total = 0;
    for root in roots {
        total += store.get_block(root).await.unwrap().len() as u64;
    }
    total
}

/// Every store takes a CAR's blocks, also through `dyn ContentStore` (how the
/// vault holds its store) and inside a put batch.
#[tokio::test]
async fn every_store_imports_through_dyn_content_store() {
    let source = MemoryStore::new();
    let data = pseudo_random(11, 2 * CHUNK_SIZE + 5);
    let root = source
        .put(Bytes::from(data.clone()), PutOptions::new())
        .await
        .unwrap();
    let car = collect(export_car(source, root)).await;

    let dir = tempfile::tempdir().unwrap();
    let local = LocalStore::open(dir.path().join("local")).await.unwrap();
    let cache = LocalStore::open(dir.path().join("cache")).await.unwrap();
    let remote = MemoryStore::new();
    let cached =
        medseal_storage::CachedStore::new(std::sync::Arc::new(remote.clone()), cache, 1 << 20)
            .await
            .unwrap();
    let stores: Vec<(&str, std::sync::Arc<dyn ContentStore>)> = vec![
        ("local", std::sync::Arc::new(local.clone())),
        ("memory", std::sync::Arc::new(MemoryStore::new())),
        ("cached", std::sync::Arc::new(cached)),
    ];
    for (name, store) in stores {
        let imported = import_car(&*store, stream_of(&car, 7000)).await.unwrap();
        assert_eq!(imported.blocks, 4, "{name}");
        store.pin(&root).await.unwrap();
        assert_eq!(store.get(&root).await.unwrap(), data, "{name}");
    }
    assert_eq!(remote.block_count(), 4, "the cache passes blocks on");

    let fresh = LocalStore::open(dir.path().join("batch")).await.unwrap();
    let batch = fresh.begin_batch().await.unwrap();
    import_car(&*batch, stream_of(&car, 7000)).await.unwrap();
    batch.pin(&root).await.unwrap();
    batch.commit().await.unwrap();
    assert_eq!(fresh.get(&root).await.unwrap(), data);
    assert!(fresh.is_pinned(&root).await.unwrap());
}
