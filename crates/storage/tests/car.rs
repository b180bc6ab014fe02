//! CAR v1 export/import round trips and rejection of bad archives.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use medseal_storage::{
    ByteStream, CHUNK_SIZE, ContentStore, ImportFormat, LocalStore, MemoryStore, PutOptions,
    StorageError, export_car, import_car,
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
