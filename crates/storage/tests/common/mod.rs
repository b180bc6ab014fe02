//! Helpers shared by the integration tests.
#![allow(
    dead_code,
    unreachable_pub,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stderr
)]

use std::io::Read;
use std::path::PathBuf;
use std::time::Duration;

use bytes::Bytes;
use medseal_storage::{ByteStream, KuboConfig, KuboStore, StorageError};
use serde::Deserialize;
use sha3::Shake256;
use sha3::digest::{ExtendableOutput, Update, XofReader};

/// One entry of `tests/data/kubo-cidv0-vectors.json`.
#[derive(Debug, Clone, Deserialize)]
pub struct Vector {
    pub seed: String,
    pub len: u64,
    pub cid: String,
}

#[derive(Deserialize)]
struct VectorFile {
    vectors: Vec<Vector>,
}

/// The Kubo reference vectors (the copy vendored in this crate).
pub fn kubo_vectors() -> Vec<Vector> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/kubo-cidv0-vectors.json");
    let text = std::fs::read(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    let file: VectorFile = serde_json::from_slice(&text).unwrap();
    assert!(!file.vectors.is_empty());
    file.vectors
}

/// `SHAKE256(seed)` as an endless reader.
pub fn shake_reader(seed: &str) -> impl XofReader + use<> {
    let mut hasher = Shake256::default();
    hasher.update(seed.as_bytes());
    hasher.finalize_xof()
}

/// A `Read` over the first `len` bytes of `SHAKE256(seed)`.
pub struct ShakeFile<R> {
    xof: R,
    remaining: u64,
}

impl<R: XofReader> Read for ShakeFile<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = (buf.len() as u64).min(self.remaining) as usize;
        self.xof.read(&mut buf[..n]);
        self.remaining -= n as u64;
        Ok(n)
    }
}

/// The vector file `seed`/`len` as a reader.
pub fn shake_file(seed: &str, len: u64) -> ShakeFile<impl XofReader + use<>> {
    ShakeFile {
        xof: shake_reader(seed),
        remaining: len,
    }
}

/// The vector file `seed`/`len` in memory.
pub fn shake_bytes(seed: &str, len: usize) -> Vec<u8> {
    let mut out = vec![0u8; len];
    shake_reader(seed).read(&mut out);
    out
}

/// Deterministic pseudo-random bytes (cheap, for sizes where SHAKE is overkill).
pub fn pseudo_random(seed: u64, len: usize) -> Vec<u8> {
    let mut state = seed ^ 0x9e37_79b9_7f4a_7c15;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        out.extend_from_slice(&state.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// `data` as a stream of `piece`-sized parts.
pub fn stream_of(data: &[u8], piece: usize) -> ByteStream {
    let parts: Vec<Result<Bytes, StorageError>> = data
        .chunks(piece.max(1))
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    Box::pin(futures_util::stream::iter(parts))
}

/// Whether this run is CI (`CI=true`), where a missing node is a failure.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// Settings used against the test node: short read timeouts so missing
/// content is reported quickly.
pub fn kubo_test_config(url: &str) -> KuboConfig {
    KuboConfig::new(url)
        .with_read_timeout(Duration::from_secs(2))
        .with_has_timeout(Duration::from_millis(500))
        .with_pin_timeout(Duration::from_secs(10))
        .with_request_timeout(Duration::from_secs(120))
}

/// The real node named by `MEDSEAL_IPFS_API`, or `None` (with a notice) if
/// the variable is unset outside CI. Under `CI=true` a missing variable or
/// an unreachable node fails the test; a set-but-unreachable node always does.
pub async fn kubo_store_from_env() -> Option<KuboStore> {
    let url = match std::env::var("MEDSEAL_IPFS_API") {
        Ok(url) if !url.is_empty() => url,
        _ => {
            assert!(
                !in_ci(),
                "CI=true but MEDSEAL_IPFS_API is not set: start a node with scripts/ipfs-node.sh start"
            );
            eprintln!(
                "NOTICE: skipping KuboStore test: MEDSEAL_IPFS_API is not set \
                 (run scripts/ipfs-node.sh install && scripts/ipfs-node.sh start)"
            );
            return None;
        }
    };
    let store = KuboStore::with_config(kubo_test_config(&url)).unwrap();
    match store.version().await {
        Ok(_) => Some(store),
        Err(e) => panic!("MEDSEAL_IPFS_API={url} is set but the node does not answer: {e}"),
    }
}
