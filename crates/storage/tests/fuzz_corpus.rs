//! Replays the storage fuzz corpora (`fuzz/corpus/storage_*`) through the fuzz entry
//! points on stable Rust, so the seeds and any crash reproducers stay covered by
//! `cargo test`. Seeds named `valid*` must decode and the others must not, so the corpus
//! keeps both paths covered.
//!
//! The seeds were written by `write_seeds` below (run it by hand with `--ignored` to
//! regenerate them; the valid ones are made by this crate).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;

use bytes::{Bytes, BytesMut};
use futures_util::{FutureExt, StreamExt};
use medseal_storage::__fuzz;
use medseal_storage::{
    Block, BlockSink, ByteStream, Cid, CidVersion, Codec, ContentStore, ImportFormat, MemoryStore,
    PutOptions, export_car_roots, import_car,
};

#[path = "../../../fuzz/corpus_replay.rs"]
mod corpus_replay;

fn corpus(target: &str) -> PathBuf {
    corpus_replay::corpus(
        &PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.."),
        target,
    )
}

fn replay(target: &str, run: fn(&[u8]), decodes: impl Fn(&[u8]) -> bool) {
    corpus_replay::replay(&corpus(target), run, decodes);
}

fn write(target: &str, seeds: &[(&str, Vec<u8>)]) {
    corpus_replay::write_seeds(&corpus(target), seeds);
}

fn one_piece(data: &[u8]) -> ByteStream {
    let piece = Bytes::copy_from_slice(data);
    Box::pin(futures_util::stream::iter([Ok(piece)]))
}

fn car_imports(data: &[u8]) -> bool {
    import_car(&MemoryStore::new(), one_piece(data))
        .now_or_never()
        .expect("in memory")
        .is_ok()
}

#[test]
fn storage_cid_text_corpus() {
    replay("storage_cid_text", __fuzz::parse_cid_text, |d| {
        std::str::from_utf8(d).is_ok_and(|s| s.parse::<Cid>().is_ok())
    });
}

#[test]
fn storage_cid_bytes_corpus() {
    replay("storage_cid_bytes", __fuzz::decode_cid_bytes, |d| {
        Cid::from_bytes(d).is_ok()
    });
}

#[test]
fn storage_dag_pb_corpus() {
    replay(
        "storage_dag_pb",
        __fuzz::decode_dag_pb,
        __fuzz::dag_pb_decodes,
    );
}

#[test]
fn storage_car_corpus() {
    replay("storage_car", __fuzz::decode_car, car_imports);
}

fn varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

fn bytes_field(out: &mut Vec<u8>, field: u64, value: &[u8]) {
    varint(out, field << 3 | 2);
    varint(out, value.len() as u64);
    out.extend_from_slice(value);
}

fn varint_field(out: &mut Vec<u8>, field: u64, value: u64) {
    varint(out, field << 3);
    varint(out, value);
}

/// A UnixFS file root (dag-pb) over raw leaves, as `ipfs add --raw-leaves` builds for
/// files of several chunks, here with tiny chunks.
fn file_root(leaves: &[&[u8]]) -> Vec<u8> {
    let mut node = Vec::new();
    for leaf in leaves {
        let cid = Cid::for_block(CidVersion::V1, Codec::Raw, leaf);
        let mut link = Vec::new();
        bytes_field(&mut link, 1, &cid.to_bytes());
        bytes_field(&mut link, 2, b"");
        varint_field(&mut link, 3, leaf.len() as u64);
        bytes_field(&mut node, 2, &link);
    }
    let mut unixfs = Vec::new();
    varint_field(&mut unixfs, 1, 2);
    varint_field(&mut unixfs, 3, leaves.iter().map(|l| l.len() as u64).sum());
    for leaf in leaves {
        varint_field(&mut unixfs, 4, leaf.len() as u64);
    }
    bytes_field(&mut node, 1, &unixfs);
    node
}

async fn car_of(store: &MemoryStore, roots: Vec<Cid>) -> Vec<u8> {
    let mut out = BytesMut::new();
    let mut stream = export_car_roots(store.clone(), roots);
    while let Some(piece) = stream.next().await {
        out.extend_from_slice(&piece.unwrap());
    }
    out.to_vec()
}

#[tokio::test]
#[ignore = "writes the seed corpora; run by hand to regenerate them"]
async fn write_seeds() {
    let v0 = Cid::for_block(CidVersion::V0, Codec::DagPb, b"block");
    let v1_pb = Cid::for_block(CidVersion::V1, Codec::DagPb, b"block");
    let v1_raw = Cid::for_block(CidVersion::V1, Codec::Raw, b"block");
    write(
        "storage_cid_text",
        &[
            ("valid_v0", v0.to_string().into_bytes()),
            ("valid_v1_dag_pb", v1_pb.to_string().into_bytes()),
            ("valid_v1_raw", v1_raw.to_string().into_bytes()),
            (
                "valid_v1_upper",
                format!("B{}", v1_raw.to_string()[1..].to_uppercase()).into_bytes(),
            ),
            ("empty", Vec::new()),
            ("short_v0", b"Qm".to_vec()),
            (
                "valid_v1_base58btc",
                b"zb2rhe5P4gXftAwvA4eXQ5HJwsER2owDyS9sKaQRRVQPn93bA".to_vec(),
            ),
            (
                "unsupported_base16",
                format!("f{}", hex_of(&v1_raw.to_bytes())).into_bytes(),
            ),
            ("bad_char", format!("{}!", v1_raw).into_bytes()),
            ("trailing_space", format!("{v0} ").into_bytes()),
            ("not_utf8", vec![0xff, 0xfe, b'Q', b'm']),
        ],
    );

    let mut trailing = v1_raw.to_bytes();
    trailing.push(0);
    let mut non_minimal = vec![0x81, 0x00];
    non_minimal.extend_from_slice(&v1_raw.to_bytes()[1..]);
    let mut dag_cbor = v1_raw.to_bytes();
    dag_cbor[1] = 0x71;
    let mut sha3 = v1_raw.to_bytes();
    sha3[2] = 0x16;
    let mut version2 = v1_raw.to_bytes();
    version2[0] = 2;
    write(
        "storage_cid_bytes",
        &[
            ("valid_v0", v0.to_bytes()),
            ("valid_v1_dag_pb", v1_pb.to_bytes()),
            ("valid_v1_raw", v1_raw.to_bytes()),
            ("empty", Vec::new()),
            ("trailing", trailing),
            ("non_minimal_varint", non_minimal),
            ("dag_cbor_codec", dag_cbor),
            ("sha3_multihash", sha3),
            ("version_2", version2),
            ("truncated_digest", v0.to_bytes()[..20].to_vec()),
        ],
    );

    // Real blocks: a small CIDv0 file (one dag-pb leaf), and a file root over raw leaves.
    let store = MemoryStore::new();
    let small = store
        .put(Bytes::from_static(b"hello, medseal\n"), PutOptions::new())
        .await
        .unwrap();
    let leaf = store.get_block(&small).await.unwrap().to_vec();
    let leaves: [&[u8]; 2] = [b"abc", b"defg"];
    let root_block = file_root(&leaves);
    let root = Cid::for_block(CidVersion::V1, Codec::DagPb, &root_block);
    for block in leaves.iter().copied().chain([&root_block[..]]) {
        let codec = if block == &root_block[..] {
            Codec::DagPb
        } else {
            Codec::Raw
        };
        let cid = Cid::for_block(CidVersion::V1, codec, block);
        store
            .put_block(Block::new(cid, Bytes::copy_from_slice(block)).unwrap())
            .await
            .unwrap();
    }
    assert_eq!(&store.get(&root).await.unwrap()[..], b"abcdefg");
    write(
        "storage_dag_pb",
        &[
            ("valid_leaf", leaf.clone()),
            ("valid_file_root", root_block.clone()),
            ("valid_empty", Vec::new()),
            ("truncated", root_block[..root_block.len() - 3].to_vec()),
            ("unknown_field", vec![0x18, 0x01]),
            ("link_without_hash", vec![0x12, 0x02, 0x12, 0x00]),
            ("link_bad_cid", {
                let mut link = Vec::new();
                bytes_field(&mut link, 1, &[0x01, 0x71, 0x12, 0x20]);
                let mut node = Vec::new();
                bytes_field(&mut node, 2, &link);
                node
            }),
        ],
    );

    let raw = store
        .put(
            Bytes::from_static(b"raw leaf file"),
            PutOptions::new().with_format(ImportFormat::CidV1RawLeaves),
        )
        .await
        .unwrap();
    let single = car_of(&store, vec![small]).await;
    let multi = car_of(&store, vec![root, small, raw]).await;
    let dag = car_of(&store, vec![root]).await;
    // Cut after the root's section: the leaves are missing.
    let header_end = section_end(&dag, 0);
    let cut_at = section_end(&dag, header_end);
    let mut flipped = dag.clone();
    let last = flipped.len() - 1;
    flipped[last] ^= 1;
    // The header ends with `"version": 1`.
    let single_header = section_end(&single, 0);
    let mut version2 = single.clone();
    version2[single_header - 1] = 0x02;
    let mut huge_section = single[..single_header].to_vec();
    huge_section.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 0x0f]);
    let mut zero_section = single[..single_header].to_vec();
    zero_section.push(0);
    write(
        "storage_car",
        &[
            ("valid_single", single.clone()),
            ("valid_raw", car_of(&store, vec![raw]).await),
            ("valid_dag", dag.clone()),
            ("valid_several_roots", multi),
            ("valid_cut_between_sections", dag[..cut_at].to_vec()),
            ("empty", Vec::new()),
            ("garbage", b"not a CAR file".to_vec()),
            ("truncated_section", dag[..dag.len() - 2].to_vec()),
            ("flipped_block", flipped),
            ("version_2", version2),
            ("huge_section", huge_section),
            ("zero_section", zero_section),
            ("header_not_a_map", vec![0x01, 0x01]),
        ],
    );
}

fn hex_of(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Where the length-prefixed section of a CAR that starts at `at` ends.
fn section_end(car: &[u8], at: usize) -> usize {
    let (mut len, mut used) = (0usize, 0);
    while car[at + used] & 0x80 != 0 {
        len |= usize::from(car[at + used] & 0x7f) << (7 * used);
        used += 1;
    }
    len |= usize::from(car[at + used]) << (7 * used);
    at + used + 1 + len
}
