//! The DAG builder against CIDs computed by real Kubo, and the CIDv1
//! raw-leaves rules.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::HashMap;

use bytes::Bytes;
use medseal_storage::{
    CHUNK_SIZE, Cid, CidVersion, Codec, ContentStore, DagBuilder, ImportFormat, MAX_LINKS,
    MemoryStore, PutOptions, cid_of_bytes, cid_of_reader,
};

use common::{kubo_vectors, shake_bytes, shake_file};

#[test]
fn every_kubo_cidv0_vector_is_reproduced_by_streaming() {
    let vectors = kubo_vectors();
    assert!(
        vectors
            .iter()
            .any(|v| v.len > (CHUNK_SIZE * MAX_LINKS) as u64),
        "needs a multi-level case"
    );
    for vector in &vectors {
        let expected: Cid = vector.cid.parse().unwrap();
        let computed =
            cid_of_reader(shake_file(&vector.seed, vector.len), ImportFormat::CidV0).unwrap();
        assert_eq!(
            computed, expected,
            "seed {} len {}",
            vector.seed, vector.len
        );
        assert_eq!(computed.to_string(), vector.cid);
    }
}

#[test]
fn in_memory_cid_matches_the_vectors_too() {
    for vector in kubo_vectors().iter().filter(|v| v.len <= 1_000_000) {
        let data = shake_bytes(&vector.seed, vector.len as usize);
        assert_eq!(
            cid_of_bytes(&data, ImportFormat::CidV0).to_string(),
            vector.cid
        );
    }
}

#[tokio::test]
async fn stored_dags_have_the_vector_cids() {
    let store = MemoryStore::new();
    for vector in kubo_vectors().iter().filter(|v| v.len <= 1_000_000) {
        let data = Bytes::from(shake_bytes(&vector.seed, vector.len as usize));
        let cid = store.put(data.clone(), PutOptions::new()).await.unwrap();
        assert_eq!(cid.to_string(), vector.cid);
        assert_eq!(store.get(&cid).await.unwrap(), data);
    }
}

/// Shape of a DAG: for every internal node, (links, blocksizes); leaves as
/// their file sizes. Read with a tiny independent dag-pb walker.
#[derive(Debug, PartialEq, Eq)]
enum Shape {
    Leaf(u64),
    Node(Vec<u64>, Vec<Shape>),
}

fn read_varint(bytes: &[u8], pos: &mut usize) -> u64 {
    let mut value = 0u64;
    let mut shift = 0;
    loop {
        let b = bytes[*pos];
        *pos += 1;
        value |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return value;
        }
        shift += 7;
    }
}

/// (field, wire type 0 value or wire type 2 slice) of a protobuf message.
fn fields(bytes: &[u8]) -> Vec<(u64, Result<u64, &[u8]>)> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < bytes.len() {
        let tag = read_varint(bytes, &mut pos);
        match tag & 7 {
            0 => out.push((tag >> 3, Ok(read_varint(bytes, &mut pos)))),
            2 => {
                let len = read_varint(bytes, &mut pos) as usize;
                out.push((tag >> 3, Err(&bytes[pos..pos + len])));
                pos += len;
            }
            other => panic!("wire type {other}"),
        }
    }
    out
}

fn shape(blocks: &HashMap<Cid, Bytes>, cid: &Cid, leaves: &mut Vec<(Cid, u64, u64)>) -> Shape {
    let block = &blocks[cid];
    assert!(cid.verifies(block));
    if cid.codec() == Codec::Raw {
        leaves.push((*cid, block.len() as u64, block.len() as u64));
        return Shape::Leaf(block.len() as u64);
    }
    let mut links = Vec::new();
    let mut unixfs = None;
    for (field, value) in fields(block) {
        match (field, value) {
            (2, Err(link)) => {
                let mut hash = None;
                let mut tsize = None;
                for (f, v) in fields(link) {
                    match (f, v) {
                        (1, Err(h)) => hash = Some(Cid::from_bytes(h).unwrap()),
                        (2, Err(name)) => {
                            assert!(name.is_empty(), "Kubo file links have empty names")
                        }
                        (3, Ok(t)) => tsize = Some(t),
                        other => panic!("unexpected link field {other:?}"),
                    }
                }
                links.push((hash.unwrap(), tsize.expect("Kubo always writes Tsize")));
            }
            (1, Err(data)) => unixfs = Some(data),
            other => panic!("unexpected node field {other:?}"),
        }
    }
    let unixfs = fields(unixfs.expect("UnixFS data"));
    let blocksizes: Vec<u64> = unixfs
        .iter()
        .filter(|(f, _)| *f == 4)
        .map(|(_, v)| *v.as_ref().unwrap())
        .collect();
    let data_len = unixfs
        .iter()
        .find(|(f, _)| *f == 2)
        .map_or(0, |(_, v)| v.as_ref().unwrap_err().len() as u64);
    if links.is_empty() {
        leaves.push((*cid, data_len, block.len() as u64));
        return Shape::Leaf(data_len);
    }
    assert!(links.len() <= MAX_LINKS);
    assert_eq!(data_len, 0, "internal nodes hold no data");
    let children = links
        .iter()
        .map(|(child, _)| shape(blocks, child, leaves))
        .collect();
    Shape::Node(blocksizes, children)
}

fn build(data: &[u8], format: ImportFormat) -> (Cid, HashMap<Cid, Bytes>) {
    let mut builder = DagBuilder::new(format);
    builder.write(data);
    let dag = builder.finish();
    let blocks = dag.blocks.into_iter().map(|b| b.into_parts()).collect();
    (dag.root, blocks)
}

/// CIDv1 raw-leaves DAGs follow Kubo's rules: the same balanced tree as the
/// (Kubo-verified) CIDv0 DAG, leaves are raw blocks whose CID is the sha256
/// of exactly one 262144-byte chunk, internal nodes are CIDv1 dag-pb, and a
/// one-chunk file is just its raw leaf.
#[test]
fn cidv1_raw_leaves_follow_kubo_rules() {
    for vector in kubo_vectors() {
        let data = shake_bytes(&vector.seed, vector.len as usize);
        let (v0_root, v0_blocks) = build(&data, ImportFormat::CidV0);
        assert_eq!(v0_root.to_string(), vector.cid, "v0 DAG is Kubo's");
        let (v1_root, v1_blocks) = build(&data, ImportFormat::CidV1RawLeaves);
        assert_eq!(v1_root, cid_of_bytes(&data, ImportFormat::CidV1RawLeaves));
        assert_eq!(v1_root.version(), CidVersion::V1);
        assert!(
            v1_root
                .to_string()
                .starts_with(if data.len() <= CHUNK_SIZE {
                    "bafkrei"
                } else {
                    "bafybei"
                })
        );

        let (mut v0_leaves, mut v1_leaves) = (Vec::new(), Vec::new());
        let v0_shape = shape(&v0_blocks, &v0_root, &mut v0_leaves);
        let v1_shape = shape(&v1_blocks, &v1_root, &mut v1_leaves);
        assert_eq!(
            v0_shape, v1_shape,
            "same balanced layout, len {}",
            vector.len
        );

        let chunks: Vec<&[u8]> = if data.is_empty() {
            vec![&[][..]]
        } else {
            data.chunks(CHUNK_SIZE).collect()
        };
        assert_eq!(v1_leaves.len(), chunks.len());
        for ((cid, file_len, block_len), chunk) in v1_leaves.iter().zip(&chunks) {
            assert_eq!(*cid, Cid::for_block(CidVersion::V1, Codec::Raw, chunk));
            assert_eq!(
                (*file_len, *block_len),
                (chunk.len() as u64, chunk.len() as u64)
            );
        }
        for cid in v1_blocks.keys().filter(|c| c.codec() == Codec::DagPb) {
            assert_eq!(cid.version(), CidVersion::V1);
        }
    }
}

#[test]
fn cidv1_known_values() {
    assert_eq!(
        cid_of_bytes(b"", ImportFormat::CidV1RawLeaves).to_string(),
        "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"
    );
    // A one-chunk file's CID is the raw sha2-256 of its bytes.
    let data = shake_bytes("medseal-1000", 1000);
    let cid = cid_of_bytes(&data, ImportFormat::CidV1RawLeaves);
    let digest: [u8; 32] = <sha2::Sha256 as sha2::Digest>::digest(&data).into();
    assert_eq!(cid, Cid::v1(Codec::Raw, digest));
}
