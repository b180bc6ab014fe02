//! `KuboStore` against a real node (`MEDSEAL_IPFS_API`, see
//! scripts/ipfs-node.sh): the Kubo vectors through the node's own importer,
//! big trustless reads, and CAR exchange with `dag import`/`dag export`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::io::Read;

use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use medseal_storage::{
    CHUNK_SIZE, Cid, ContentStore, ImportFormat, LocalStore, MemoryStore, PutOptions,
    cid_of_reader, export_car, import_car,
};
use sha2::{Digest, Sha256};

use common::{kubo_store_from_env, kubo_vectors, pseudo_random, shake_file, stream_of};

/// The vector file as a stream of 1 MiB pieces, generated on the fly.
fn vector_stream(seed: &str, len: u64) -> medseal_storage::ByteStream {
    let mut file = shake_file(seed, len);
    let pieces = std::iter::from_fn(move || {
        let mut piece = vec![0u8; 1 << 20];
        let n = file.read(&mut piece).unwrap();
        (n > 0).then(|| {
            piece.truncate(n);
            Ok(Bytes::from(piece))
        })
    });
    Box::pin(futures_util::stream::iter(pieces))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_imports_every_vector_to_the_same_cids() {
    let Some(kubo) = kubo_store_from_env().await else {
        return;
    };
    for vector in kubo_vectors() {
        for format in [ImportFormat::CidV0, ImportFormat::CidV1RawLeaves] {
            // put_stream itself fails if the node's CID differs from ours.
            let cid = kubo
                .put_stream(
                    vector_stream(&vector.seed, vector.len),
                    PutOptions::new().with_format(format),
                )
                .await
                .unwrap_or_else(|e| panic!("{} {format:?}: {e}", vector.seed));
            let local = cid_of_reader(shake_file(&vector.seed, vector.len), format).unwrap();
            assert_eq!(cid, local);
            if format == ImportFormat::CidV0 {
                assert_eq!(cid, vector.cid.parse::<Cid>().unwrap(), "{}", vector.seed);
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_dag_is_read_back_block_by_block() {
    let Some(kubo) = kubo_store_from_env().await else {
        return;
    };
    let vector = kubo_vectors().into_iter().max_by_key(|v| v.len).unwrap();
    let cid = kubo
        .put_stream(vector_stream(&vector.seed, vector.len), PutOptions::new())
        .await
        .unwrap();
    let mut expected = Sha256::new();
    let mut file = shake_file(&vector.seed, vector.len);
    let mut buffer = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buffer).unwrap();
        if n == 0 {
            break;
        }
        expected.update(&buffer[..n]);
    }
    let mut actual = Sha256::new();
    let mut total = 0u64;
    let mut stream = kubo.get_stream(&cid);
    while let Some(piece) = stream.next().await {
        let piece = piece.unwrap();
        assert!(piece.len() <= CHUNK_SIZE);
        total += piece.len() as u64;
        actual.update(&piece);
    }
    assert_eq!(total, vector.len);
    assert_eq!(actual.finalize(), expected.finalize());
}

async fn rpc(url: &str, command: &str, query: &str, car: Option<Vec<u8>>) -> Bytes {
    let client = reqwest::Client::new();
    let mut request = client.post(format!("{url}/api/v0/{command}?{query}"));
    if let Some(car) = car {
        let part = reqwest::multipart::Part::bytes(car)
            .file_name("dag.car")
            .mime_str("application/vnd.ipld.car")
            .unwrap();
        request = request.multipart(reqwest::multipart::Form::new().part("file", part));
    }
    let response = request.send().await.unwrap();
    assert!(
        response.status().is_success(),
        "{command}: {}",
        response.status()
    );
    response.bytes().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cars_move_between_local_store_and_the_node() {
    let Some(kubo) = kubo_store_from_env().await else {
        return;
    };
    let url = std::env::var("MEDSEAL_IPFS_API").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let local = LocalStore::open(dir.path()).await.unwrap();
    // Unique content, so the node cannot already have it.
    let nonce = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    let data = pseudo_random(nonce, 3 * CHUNK_SIZE + 99);
    for format in [ImportFormat::CidV0, ImportFormat::CidV1RawLeaves] {
        let root = local
            .put(
                Bytes::from(data.clone()),
                PutOptions::new().with_format(format),
            )
            .await
            .unwrap();
        assert!(!kubo.has(&root).await.unwrap(), "node must not have it yet");
        let mut car = BytesMut::new();
        let mut export = export_car(local.clone(), root);
        while let Some(piece) = export.next().await {
            car.extend_from_slice(&piece.unwrap());
        }
        rpc(&url, "dag/import", "pin-roots=true", Some(car.to_vec())).await;
        assert!(kubo.has(&root).await.unwrap());
        assert_eq!(
            kubo.get(&root).await.unwrap(),
            data,
            "node serves what the CAR carried"
        );

        // And back: the node's own export imports into a fresh store.
        let exported = rpc(&url, "dag/export", &format!("arg={root}"), None).await;
        let memory = MemoryStore::new();
        let imported = import_car(&memory, stream_of(&exported, 65_536))
            .await
            .unwrap();
        assert_eq!(imported.roots, vec![root]);
        assert_eq!(memory.get(&root).await.unwrap(), data);
        kubo.unpin(&root).await.unwrap();
    }
}

/// `import_car` into the `KuboStore` itself (what `medseal import --car` does on a node):
/// the blocks reach the node through its own `dag/import`, unpinned until the roots are
/// pinned, and read back verified.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_car_imports_into_the_node_through_the_store() {
    let Some(kubo) = kubo_store_from_env().await else {
        return;
    };
    let nonce = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    let source = MemoryStore::new();
    let big = pseudo_random(nonce, 2 * CHUNK_SIZE + 17);
    let small = pseudo_random(nonce + 1, 300);
    let mut roots = Vec::new();
    for data in [&big, &small] {
        roots.push(
            source
                .put(Bytes::from(data.clone()), PutOptions::new())
                .await
                .unwrap(),
        );
    }
    let mut car = BytesMut::new();
    let mut export = medseal_storage::export_car_roots(source.clone(), roots.clone());
    while let Some(piece) = export.next().await {
        car.extend_from_slice(&piece.unwrap());
    }
    for root in &roots {
        assert!(!kubo.has(root).await.unwrap(), "node must not have it yet");
    }
    let imported = import_car(&kubo, stream_of(&car, 100_000)).await.unwrap();
    assert_eq!(imported.roots, roots);
    assert_eq!(imported.blocks, source.block_count() as u64);
    assert!(imported.missing.is_empty());
    kubo.pin_many(&roots).await.unwrap();
    assert_eq!(kubo.get(&roots[0]).await.unwrap(), big);
    assert_eq!(kubo.get(&roots[1]).await.unwrap(), small);
    for root in &roots {
        kubo.unpin(root).await.unwrap();
    }
}
