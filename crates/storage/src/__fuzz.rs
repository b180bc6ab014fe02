//! Entry points for the fuzz targets in `fuzz/` (three-line shims call these) and for the
//! test that replays their seed corpora on stable Rust. Not a public API.
//!
//! Each function must never panic on any input, except through the assertions here,
//! which state properties that must hold for every input that decodes. The async readers
//! run on an in-memory store, whose futures never wait: each is polled once.

use bytes::Bytes;
use futures_util::{FutureExt, StreamExt};

use crate::block::Block;
use crate::car::{export_car_roots, import_car};
use crate::cid::{Cid, CidVersion, Codec};
use crate::dag_reader::child_links;
use crate::memory::MemoryStore;
use crate::store::{BlockSink, ByteStream, ContentStore};
use crate::{dag_pb, unixfs};

/// Most file bytes read back from a fuzzed DAG (a valid DAG may be huge by repeating a
/// block; the reader is exercised well before that).
const READ_LIMIT: usize = 1 << 20;

/// Runs a future that cannot wait (every store call is in memory).
#[allow(
    clippy::panic,
    reason = "a harness failure, reported like a failed assertion"
)]
fn now<T>(future: impl std::future::Future<Output = T>) -> T {
    match future.now_or_never() {
        Some(value) => value,
        None => panic!("an in-memory store operation waited"),
    }
}

/// Reads the file under `root` from `store`, at most [`READ_LIMIT`] bytes; whether it
/// read to the end without error.
fn read_file(store: &MemoryStore, root: &Cid) -> bool {
    let mut stream = store.get_stream(root);
    let mut total = 0;
    loop {
        match now(stream.next()) {
            None => return true,
            Some(Err(_)) => return false,
            Some(Ok(piece)) => {
                total += piece.len();
                if total > READ_LIMIT {
                    return false;
                }
            }
        }
    }
}

/// `data` as one piece of a stream.
fn one_piece(data: &[u8]) -> ByteStream {
    let piece = Bytes::copy_from_slice(data);
    Box::pin(futures_util::stream::iter([Ok(piece)]))
}

/// Parses a CID from text; whatever parses prints as text that parses back to the same
/// CID, and its binary form decodes to it.
pub fn parse_cid_text(data: &[u8]) {
    let Ok(text) = core::str::from_utf8(data) else {
        return;
    };
    if let Ok(cid) = text.parse::<Cid>() {
        assert!(
            cid.to_string()
                .parse::<Cid>()
                .is_ok_and(|again| again == cid),
            "a CID's text does not parse back to it"
        );
        assert!(
            Cid::from_bytes(&cid.to_bytes()).is_ok_and(|again| again == cid),
            "a CID's binary form does not decode to it"
        );
    }
}

/// Decodes a binary CID, whole and as the prefix of longer input; whatever decodes
/// re-encodes to the bytes it was read from, and its text parses back to it.
pub fn decode_cid_bytes(data: &[u8]) {
    if let Ok(cid) = Cid::from_bytes(data) {
        assert!(cid.to_bytes() == data, "a decodable CID is not canonical");
    }
    if let Ok((cid, used)) = Cid::read_prefix(data) {
        assert!(
            data.get(..used).is_some_and(|read| read == cid.to_bytes()),
            "a CID prefix is not canonical"
        );
        assert!(
            cid.to_string()
                .parse::<Cid>()
                .is_ok_and(|again| again == cid),
            "a CID's text does not parse back to it"
        );
    }
}

/// Whether `data` decodes as a dag-pb node (the seed corpus test's label check).
pub fn dag_pb_decodes(data: &[u8]) -> bool {
    dag_pb::decode_node(data).is_ok()
}

/// Decodes a dag-pb node and the UnixFS message in it, then reads the block as the root
/// of a UnixFS file (CIDv0 and CIDv1) from a store that holds only it: the reader either
/// returns the file (a leaf) or fails cleanly (a missing child, inconsistent sizes).
pub fn decode_dag_pb(data: &[u8]) {
    if let Ok(node) = dag_pb::decode_node(data) {
        if let Some(message) = node.data
            && let Ok(unixfs) = unixfs::decode_data(message)
        {
            assert!(
                unixfs.data.len() <= message.len(),
                "UnixFS data longer than its message"
            );
        }
        let cid = Cid::for_block(CidVersion::V0, Codec::DagPb, data);
        assert!(
            child_links(&cid, data).is_ok_and(|links| links.len() == node.links.len()),
            "a decodable node's links are not its links"
        );
    }
    let store = MemoryStore::new();
    for (version, codec) in [
        (CidVersion::V0, Codec::DagPb),
        (CidVersion::V1, Codec::DagPb),
        (CidVersion::V1, Codec::Raw),
    ] {
        let cid = Cid::for_block(version, codec, data);
        let block = Block::computed(cid, Bytes::copy_from_slice(data));
        assert!(now(store.put_block(block)).is_ok(), "memory store refused");
        let read = read_file(&store, &cid);
        if codec == Codec::Raw && data.len() <= READ_LIMIT {
            assert!(read, "a raw block does not read as a file");
        }
    }
}

/// Imports a CAR file into an in-memory store. If it imports: the store holds only
/// blocks that hash to their CIDs, what `missing` names is absent, and every root whose
/// file reads exports again as a CAR that imports to the same root and file.
pub fn decode_car(data: &[u8]) {
    let store = MemoryStore::new();
    let Ok(imported) = now(import_car(&store, one_piece(data))) else {
        return;
    };
    assert!(
        store.block_count() as u64 <= imported.blocks,
        "more blocks stored than read"
    );
    for cid in &imported.missing {
        assert!(
            !now(store.has(cid)).unwrap_or(true),
            "a block named missing is stored"
        );
    }
    for root in imported.roots.iter().take(4) {
        if !read_file(&store, root) {
            continue;
        }
        let mut car = Vec::new();
        let mut export = export_car_roots(store.clone(), vec![*root]);
        while let Some(piece) = now(export.next()) {
            assert!(piece.is_ok(), "a readable file does not export");
            if let Ok(piece) = piece {
                car.extend_from_slice(&piece);
            }
        }
        let again = MemoryStore::new();
        let reimported = now(import_car(&again, one_piece(&car)));
        assert!(
            reimported.is_ok_and(|r| r.roots == [*root] && r.missing.is_empty()),
            "an exported file does not import complete"
        );
        assert!(
            now(again.get(root)).ok() == now(store.get(root)).ok(),
            "an exported file reads back differently"
        );
    }
}
