//! Opened partition keys, kept across processes: a reader opens each partition capsule
//! (one CP-ABE decryption) once, not once per process.
//!
//! One file per member, `<dir>/search-keys/<address>`, append-only:
//! `"MSKC" | 1` then records `partition id (32) | nonce (12) | AES-256-GCM ciphertext (49)`
//! of `flag (1) | partition key (32)` (flag 0: the member's attributes do not satisfy the
//! partition's policy, key zero), with the partition id as associated data. The AES key
//! is `SHA-256("medseal/v1/search-key-cache" ‖ member encoding)`: only the holder of the
//! member's key file can read the cache, a record cannot be moved to another partition,
//! and a new key for the same member (other attributes) starts a fresh cache (older
//! records no longer decrypt and are skipped). A torn last record (a crash while
//! appending) is ignored.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::path::{Path, PathBuf};

use aes_gcm::aead::{Aead, Payload};
use aes_gcm::{Aes256Gcm, KeyInit, Nonce};
use rand_core::{OsRng, RngCore};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::chain::B256;
use crate::error::{Error, Result};
use crate::identity::Member;
use crate::index::sse::PartitionKey;

/// Directory (in the data directory) of the members' caches of opened partition keys.
pub const SEARCH_KEYS_DIR: &str = "search-keys";

const MAGIC: &[u8; 5] = b"MSKC\x01";
const RECORD: usize = 32 + 12 + 33 + 16;

/// A member's opened partition keys (`None`: the policy is not satisfied).
pub(super) struct KeyCache {
    path: PathBuf,
    /// SHA-256 of the member encoding the cache was loaded for (a renewed key of the same
    /// member needs its own cache: see [`KeyCache::belongs_to`]).
    member: [u8; 32],
    cipher: Aes256Gcm,
    keys: HashMap<B256, Option<PartitionKey>>,
}

impl KeyCache {
    /// Loads the member's cache (empty if there is none).
    pub(super) fn load(dir: &Path, member: &Member) -> Result<Self> {
        let secret = Zeroizing::new(member.to_bytes());
        let fingerprint = fingerprint(&secret);
        let mut h = Sha256::new();
        h.update(b"medseal/v1/search-key-cache");
        h.update(secret.as_slice());
        let key = Zeroizing::new(<[u8; 32]>::from(h.finalize()));
        let cipher = Aes256Gcm::new_from_slice(key.as_slice())
            .map_err(|_| Error::inconsistent("search key cache", "bad key length"))?;
        let path = dir
            .join(SEARCH_KEYS_DIR)
            .join(format!("{:x}", member.address()));
        let mut cache = Self {
            path,
            member: fingerprint,
            cipher,
            keys: HashMap::new(),
        };
        let bytes = match std::fs::read(&cache.path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(cache),
            Err(e) => return Err(Error::io(&cache.path)(e)),
        };
        let Some(records) = bytes.strip_prefix(MAGIC.as_slice()) else {
            // Not a cache this build wrote: start again.
            std::fs::remove_file(&cache.path).map_err(Error::io(&cache.path))?;
            return Ok(cache);
        };
        for record in records.chunks_exact(RECORD) {
            let (partition, rest) = record.split_at(32);
            let (nonce, ct) = rest.split_at(12);
            let nonce: [u8; 12] = nonce.try_into().unwrap_or_default();
            let Ok(plain) = cache.cipher.decrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: ct,
                    aad: partition,
                },
            ) else {
                continue;
            };
            let plain = Zeroizing::new(plain);
            let (flag, key) = plain.split_at(1);
            let key = <[u8; 32]>::try_from(key).ok().map(PartitionKey::from_bytes);
            let partition = B256::from_slice(partition);
            cache
                .keys
                .insert(partition, key.filter(|_| flag.first() == Some(&1)));
        }
        Ok(cache)
    }

    /// Whether the cache was loaded for this member key (not another key of the same
    /// address, e.g. the one it renewed, whose answers about unsatisfied policies would
    /// be wrong for this one).
    pub(super) fn belongs_to(&self, member: &Member) -> bool {
        self.member == fingerprint(&Zeroizing::new(member.to_bytes()))
    }

    pub(super) fn get(&self, partition: &B256) -> Option<Option<PartitionKey>> {
        self.keys.get(partition).cloned()
    }

    /// Records an opened capsule (appends one record; not synced: it is a cache).
    pub(super) fn insert(&mut self, partition: B256, key: Option<&PartitionKey>) -> Result<()> {
        let mut plain = Zeroizing::new([0u8; 33]);
        if let Some(key) = key {
            plain[0] = 1;
            plain[1..].copy_from_slice(key.as_bytes());
        }
        let mut nonce = [0u8; 12];
        OsRng.fill_bytes(&mut nonce);
        let ct = self
            .cipher
            .encrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: plain.as_slice(),
                    aad: partition.as_slice(),
                },
            )
            .map_err(|_| Error::inconsistent("search key cache", "encryption failed"))?;
        let mut record = Vec::with_capacity(RECORD);
        record.extend_from_slice(partition.as_slice());
        record.extend_from_slice(&nonce);
        record.extend_from_slice(&ct);
        self.append(&record)?;
        self.keys.insert(partition, key.cloned());
        Ok(())
    }

    fn append(&self, record: &[u8]) -> Result<()> {
        let io = Error::io(&self.path);
        if let Some(parent) = self.path.parent() {
            std::fs::create_dir_all(parent).map_err(Error::io(parent))?;
        }
        let mut file = open_private(&self.path).map_err(Error::io(&self.path))?;
        let len = file.metadata().map_err(Error::io(&self.path))?.len();
        let mut out = Vec::with_capacity(MAGIC.len() + RECORD);
        let header = MAGIC.len() as u64;
        let torn = len.checked_sub(header).map(|body| body % RECORD as u64);
        match torn {
            None => {
                file.set_len(0).map_err(Error::io(&self.path))?;
                out.extend_from_slice(MAGIC);
            }
            // A torn record from a crash: cut it off so the next records stay aligned.
            Some(extra) if extra != 0 => {
                file.set_len(len - extra).map_err(Error::io(&self.path))?;
            }
            Some(_) => {}
        }
        out.extend_from_slice(record);
        file.write_all(&out).map_err(io)
    }
}

fn fingerprint(member_bytes: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(b"medseal/v1/search-key-cache/member");
    h.update(member_bytes);
    h.finalize().into()
}

/// Opens for appending, readable by the owner only.
fn open_private(path: &Path) -> std::io::Result<File> {
    let mut options = OpenOptions::new();
    options.create(true).append(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    options.open(path)
}
