//! Block files in Kubo's flatfs layout (`next-to-last/2` sharding), written
//! atomically: temp file, fsync, rename, fsync of the directory. A block
//! file is therefore either absent or complete once its put has returned.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use sha2::{Digest, Sha256};

use crate::cid::{Cid, MULTIHASH_LEN};
use crate::multibase::{base32_decode, base32_upper_encode};

/// Written to `blocks/SHARDING` as Kubo's flatfs does.
const SHARDING: &str = "/repo/flatfs/shard/v1/next-to-last/2\n";
/// Extension of block files.
const BLOCK_EXT: &str = ".data";

/// The directory tree holding block files, plus a temp directory on the
/// same file system (so renames are atomic).
#[derive(Debug)]
pub(crate) struct BlockDir {
    blocks: PathBuf,
    tmp: PathBuf,
    counter: AtomicU64,
}

/// File name stem of a block: the base32 (upper case, unpadded) multihash,
/// like Kubo's `/CIQ…` datastore keys.
fn block_key(digest: &[u8; 32]) -> String {
    let mut multihash = [0u8; MULTIHASH_LEN];
    multihash[0] = 0x12;
    multihash[1] = 0x20;
    multihash[2..].copy_from_slice(digest);
    base32_upper_encode(&multihash)
}

/// The digest encoded in a block file name, if it is one of ours.
fn digest_of_file_name(name: &str) -> Option<[u8; 32]> {
    let key = name.strip_suffix(BLOCK_EXT)?;
    let multihash = base32_decode(key)?;
    match multihash.as_slice() {
        [0x12, 0x20, digest @ ..] => <[u8; 32]>::try_from(digest).ok(),
        _ => None,
    }
}

/// `next-to-last/2`: the two characters before the last one.
fn shard_of(key: &str) -> &str {
    let len = key.len();
    key.get(len.saturating_sub(3)..len.saturating_sub(1))
        .unwrap_or("__")
}

/// fsyncs a directory so a rename or creation inside it is durable.
pub(crate) fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

impl BlockDir {
    /// Opens (creating if needed) `root/blocks` and `root/tmp`, removing
    /// temp files left by an interrupted process.
    pub(crate) fn open(root: &Path) -> io::Result<Self> {
        let blocks = root.join("blocks");
        let tmp = root.join("tmp");
        fs::create_dir_all(&blocks)?;
        fs::create_dir_all(&tmp)?;
        for entry in fs::read_dir(&tmp)? {
            let entry = entry?;
            if entry.file_type()?.is_file() {
                fs::remove_file(entry.path())?;
            }
        }
        let dir = Self {
            blocks,
            tmp,
            counter: AtomicU64::new(0),
        };
        let sharding = dir.blocks.join("SHARDING");
        if !sharding.exists() {
            dir.write_atomically(&sharding, SHARDING.as_bytes())?;
        }
        sync_dir(root)?;
        Ok(dir)
    }

    /// Path of the file holding the block with `digest`.
    pub(crate) fn path_for(&self, digest: &[u8; 32]) -> PathBuf {
        let key = block_key(digest);
        self.blocks
            .join(shard_of(&key))
            .join(format!("{key}{BLOCK_EXT}"))
    }

    /// The stored bytes, unverified; `None` if absent.
    pub(crate) fn read(&self, digest: &[u8; 32]) -> io::Result<Option<Vec<u8>>> {
        match fs::read(self.path_for(digest)) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Whether a file for `digest` exists.
    pub(crate) fn contains(&self, digest: &[u8; 32]) -> io::Result<bool> {
        self.path_for(digest).try_exists()
    }

    /// Stores `data` under `cid` durably. An existing file is kept if it
    /// verifies and replaced if it does not (self-repair).
    pub(crate) fn write(&self, cid: &Cid, data: &[u8]) -> io::Result<()> {
        let path = self.path_for(cid.digest());
        match fs::read(&path) {
            Ok(existing) if Sha256::digest(&existing).as_slice() == cid.digest() => return Ok(()),
            Ok(_) => tracing::warn!(%cid, "replacing corrupt block file"),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        let shard = path.parent().unwrap_or(&self.blocks);
        if !shard.exists() {
            match fs::create_dir(shard) {
                Ok(()) => sync_dir(&self.blocks)?,
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(e),
            }
        }
        self.write_atomically(&path, data)
    }

    /// temp + fsync + rename + fsync(dir).
    pub(crate) fn write_atomically(&self, path: &Path, data: &[u8]) -> io::Result<()> {
        let tmp_path = self.tmp.join(format!(
            "{}-{}.tmp",
            std::process::id(),
            self.counter.fetch_add(1, Ordering::Relaxed)
        ));
        let result = (|| {
            let mut file = OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&tmp_path)?;
            file.write_all(data)?;
            file.sync_all()?;
            drop(file);
            fs::rename(&tmp_path, path)?;
            sync_dir(path.parent().unwrap_or(&self.blocks))
        })();
        if result.is_err() {
            let _ = fs::remove_file(&tmp_path);
        }
        result
    }

    /// Deletes the block file for `digest`; `false` if there was none.
    pub(crate) fn remove(&self, digest: &[u8; 32]) -> io::Result<bool> {
        match fs::remove_file(self.path_for(digest)) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Every stored block: digest, file size and path. Files that are not
    /// block files (foreign names) are skipped.
    pub(crate) fn list(&self) -> io::Result<Vec<StoredBlock>> {
        let mut out = Vec::new();
        for shard in fs::read_dir(&self.blocks)? {
            let shard = shard?;
            if !shard.file_type()?.is_dir() {
                continue;
            }
            for entry in fs::read_dir(shard.path())? {
                let entry = entry?;
                let name = entry.file_name();
                let Some(digest) = name.to_str().and_then(digest_of_file_name) else {
                    continue;
                };
                out.push(StoredBlock {
                    digest,
                    size: entry.metadata()?.len(),
                    path: entry.path(),
                });
            }
        }
        Ok(out)
    }
}

/// One block file found by [`BlockDir::list`].
#[derive(Debug, Clone)]
pub(crate) struct StoredBlock {
    /// sha2-256 digest from the file name.
    pub(crate) digest: [u8; 32],
    /// File size in bytes.
    pub(crate) size: u64,
    /// Where it is.
    pub(crate) path: PathBuf,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cid::{CidVersion, Codec};

    #[test]
    fn layout_matches_kubo_flatfs() {
        // Kubo stores the empty UnixFS file (QmbFMke1…) at
        // blocks/XX/CIQ….data, sharded by the next-to-last two characters.
        let cid: Cid = "QmbFMke1KXqnYyBBWxB74N4c5SBnJMVAiMNRcGu6x1AwQH"
            .parse()
            .unwrap();
        let key = block_key(cid.digest());
        assert!(key.starts_with("CIQ"), "{key}");
        assert_eq!(key.len(), 55);
        let dir = tempfile::tempdir().unwrap();
        let blocks = BlockDir::open(dir.path()).unwrap();
        let path = blocks.path_for(cid.digest());
        let shard = path
            .parent()
            .unwrap()
            .file_name()
            .unwrap()
            .to_str()
            .unwrap();
        assert_eq!(shard, &key[52..54]);
        assert_eq!(
            digest_of_file_name(&format!("{key}.data")),
            Some(*cid.digest())
        );
        assert_eq!(digest_of_file_name("SHARDING"), None);
    }

    #[test]
    fn write_dedupes_and_repairs() {
        let dir = tempfile::tempdir().unwrap();
        let blocks = BlockDir::open(dir.path()).unwrap();
        let cid = Cid::for_block(CidVersion::V1, Codec::Raw, b"payload");
        blocks.write(&cid, b"payload").unwrap();
        assert_eq!(blocks.read(cid.digest()).unwrap().unwrap(), b"payload");
        fs::write(blocks.path_for(cid.digest()), b"paYload").unwrap();
        blocks.write(&cid, b"payload").unwrap();
        assert_eq!(blocks.read(cid.digest()).unwrap().unwrap(), b"payload");
        let listed = blocks.list().unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].digest, *cid.digest());
        assert!(blocks.remove(cid.digest()).unwrap());
        assert!(!blocks.remove(cid.digest()).unwrap());
        assert!(blocks.read(cid.digest()).unwrap().is_none());
    }

    #[test]
    fn open_clears_stale_temp_files() {
        let dir = tempfile::tempdir().unwrap();
        drop(BlockDir::open(dir.path()).unwrap());
        fs::write(dir.path().join("tmp").join("123-0.tmp"), b"half a blo").unwrap();
        drop(BlockDir::open(dir.path()).unwrap());
        assert_eq!(fs::read_dir(dir.path().join("tmp")).unwrap().count(), 0);
    }
}
