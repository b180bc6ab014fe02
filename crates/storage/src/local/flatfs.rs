//! Block files in Kubo's flatfs layout (`next-to-last/2` sharding). Blocks
//! are staged as temp files ([`BlockDir::stage`]) and made durable and
//! renamed into place by a [`WriteBatch`](super::write_batch::WriteBatch),
//! so a block file is either absent or complete, and durable once its put
//! has returned. Small metadata files (`SHARDING`) use
//! [`BlockDir::write_atomically`]: temp file, fsync, rename, fsync of the
//! directory.
//!
//! All 1,024 shard directories are created when a store is opened
//! ([`BlockDir::open`]), so that a put creates files only. The layout is
//! the one Kubo's flatfs produces; it just creates the shards lazily.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use sha2::{Digest, Sha256};

use crate::cid::{Cid, MULTIHASH_LEN};

use crate::multibase::{BASE32_UPPER, base32_decode, base32_upper_encode};

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
    /// Write batches committed (see [`BlockDir::note_commit`]).
    commits: AtomicU64,
    /// Whether batches may use `syncfs` where the platform has it (tests
    /// turn it off to exercise the portable per-file path on Linux).
    syncfs_allowed: bool,
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

/// Numbers temp files: one counter for the process, so that two stores
/// opened on one directory never pick the same name.
static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Whether `name` is a temp file this process may be writing: temp files are
/// named `<pid>-<n>.tmp`.
fn is_own_temp_file(name: &std::ffi::OsStr) -> bool {
    name.to_str()
        .and_then(|n| n.split_once('-'))
        .is_some_and(|(pid, _)| pid == std::process::id().to_string())
}

/// Every shard a block can land in: two base32 (upper case) characters.
/// Keys are 55 characters (34 bytes of multihash); the two before the last
/// carry 5 full bits each, so all 32 × 32 pairs occur.
fn all_shards() -> impl Iterator<Item = String> {
    BASE32_UPPER.iter().flat_map(|&first| {
        BASE32_UPPER
            .iter()
            .map(move |&second| String::from_utf8_lossy(&[first, second]).into_owned())
    })
}

/// Creates the shard directories of [`all_shards`] missing from `blocks`;
/// whether any was created. Their entries are not yet durable.
fn create_missing_shards(blocks: &Path) -> io::Result<bool> {
    let mut present = std::collections::HashSet::new();
    for entry in fs::read_dir(blocks)? {
        let entry = entry?;
        if entry.file_type()?.is_dir() {
            present.insert(entry.file_name());
        }
    }
    let mut created = false;
    for shard in all_shards() {
        if present.contains(std::ffi::OsStr::new(&shard)) {
            continue;
        }
        match fs::create_dir(blocks.join(&shard)) {
            Ok(()) => created = true,
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e),
        }
    }
    Ok(created)
}

/// Creates `path` (which must not exist) holding `data`, in one write.
fn write_new_file(path: &Path, data: &[u8]) -> io::Result<()> {
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)?
        .write_all(data)
}

/// fsyncs a directory so a rename or creation inside it is durable.
pub(crate) fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

impl BlockDir {
    /// Opens (creating if needed) `root/blocks` and `root/tmp`, removing
    /// temp files left by an interrupted process (those of another process
    /// id: one process at a time may open a store, and those of this process
    /// may belong to another store open on the directory, whose dropped
    /// writers remove their own), and creates the shard
    /// directories that are missing: all of them for a new store, none
    /// afterwards (one directory listing per open checks this), some for a
    /// store created by an older version or by Kubo. `SHARDING` is written
    /// after them, so its directory sync also makes them durable.
    pub(crate) fn open(root: &Path) -> io::Result<Self> {
        let blocks = root.join("blocks");
        let tmp = root.join("tmp");
        fs::create_dir_all(&blocks)?;
        fs::create_dir_all(&tmp)?;
        for entry in fs::read_dir(&tmp)? {
            let entry = entry?;
            if entry.file_type()?.is_file() && !is_own_temp_file(&entry.file_name()) {
                match fs::remove_file(entry.path()) {
                    Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                    _ => {}
                }
            }
        }
        let dir = Self {
            blocks,
            tmp,
            commits: AtomicU64::new(0),
            syncfs_allowed: true,
        };
        let created_shards = create_missing_shards(&dir.blocks)?;
        let sharding = dir.blocks.join("SHARDING");
        if !sharding.exists() {
            dir.write_atomically(&sharding, SHARDING.as_bytes())?;
        } else if created_shards {
            sync_dir(&dir.blocks)?;
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

    /// The `blocks/` directory.
    pub(crate) fn blocks_path(&self) -> &Path {
        &self.blocks
    }

    /// Counts one write batch commit (a block-durability step).
    pub(crate) fn note_commit(&self) {
        self.commits.fetch_add(1, Ordering::Relaxed);
    }

    /// Write batches committed since this directory was opened.
    pub(crate) fn commits(&self) -> u64 {
        self.commits.load(Ordering::Relaxed)
    }

    /// Whether write batches may use `syncfs`.
    pub(crate) fn syncfs_allowed(&self) -> bool {
        self.syncfs_allowed
    }

    /// Forces write batches onto the portable per-file sync path.
    #[cfg(test)]
    pub(crate) fn with_syncfs_allowed(mut self, allowed: bool) -> Self {
        self.syncfs_allowed = allowed;
        self
    }

    /// A fresh temp file path in `tmp/`.
    fn temp_path(&self) -> PathBuf {
        self.tmp.join(format!(
            "{}-{}.tmp",
            std::process::id(),
            TEMP_COUNTER.fetch_add(1, Ordering::Relaxed)
        ))
    }

    /// Step 1 of a write batch: writes `data` (the block `cid`, already
    /// hashed by the caller) to a new temp file with one `write_all` and no
    /// sync. Its shard directory exists since [`BlockDir::open`] (see
    /// [`BlockDir::rename_into_place`] for one removed since). An existing
    /// file is kept if it verifies ([`Staged::Present`]) and will be
    /// replaced if it does not (self-repair).
    pub(crate) fn stage(&self, cid: &Cid, data: &[u8]) -> io::Result<Staged> {
        let dest = self.path_for(cid.digest());
        match fs::read(&dest) {
            Ok(existing) if Sha256::digest(&existing).as_slice() == cid.digest() => {
                return Ok(Staged::Present { dest });
            }
            Ok(_) => tracing::warn!(%cid, "replacing corrupt block file"),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        let tmp = self.temp_path();
        match write_new_file(&tmp, data) {
            Ok(()) => Ok(Staged::Written {
                tmp,
                dest,
                len: data.len() as u64,
            }),
            Err(e) => {
                let _ = fs::remove_file(&tmp);
                Err(e)
            }
        }
    }

    /// Step 3 of a write batch: renames the temp file `tmp` to `dest`. Should
    /// the shard directory have been removed while the store was open, it
    /// is created again and the rename retried once; the batch's last step
    /// (`syncfs`, or the fsync of `blocks/`) makes that directory durable.
    pub(crate) fn rename_into_place(&self, tmp: &Path, dest: &Path) -> io::Result<()> {
        match fs::rename(tmp, dest) {
            Err(rename_error) if rename_error.kind() == io::ErrorKind::NotFound => {
                let shard = dest.parent().unwrap_or(&self.blocks);
                match fs::create_dir(shard) {
                    Ok(()) => {}
                    Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                    // No shard to be had: the rename's error says more.
                    Err(_) => return Err(rename_error),
                }
                fs::rename(tmp, dest)
            }
            result => result,
        }
    }

    /// temp + fsync + rename + fsync(dir), for small files outside the
    /// block batches.
    pub(crate) fn write_atomically(&self, path: &Path, data: &[u8]) -> io::Result<()> {
        let tmp_path = self.temp_path();
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
        for shard in self.shards()? {
            out.extend(Self::list_shard(&shard)?);
        }
        Ok(out)
    }

    /// The shard directories under `blocks/`.
    pub(crate) fn shards(&self) -> io::Result<Vec<PathBuf>> {
        let mut shards = Vec::new();
        for shard in fs::read_dir(&self.blocks)? {
            let shard = shard?;
            if shard.file_type()?.is_dir() {
                shards.push(shard.path());
            }
        }
        shards.sort();
        Ok(shards)
    }

    /// The block files of one shard directory (foreign names skipped; a
    /// shard removed meanwhile has none).
    pub(crate) fn list_shard(shard: &Path) -> io::Result<Vec<StoredBlock>> {
        let entries = match fs::read_dir(shard) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        let mut out = Vec::new();
        for entry in entries {
            let entry = entry?;
            let name = entry.file_name();
            let Some(digest) = name.to_str().and_then(digest_of_file_name) else {
                continue;
            };
            let size = match entry.metadata() {
                Ok(m) => m.len(),
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e),
            };
            out.push(StoredBlock {
                digest,
                size,
                path: entry.path(),
            });
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

/// The outcome of staging one block ([`BlockDir::stage`]), made durable by a
/// [`WriteBatch`](super::write_batch::WriteBatch).
#[derive(Debug)]
pub(crate) enum Staged {
    /// A file that hashes to the block's name is already at `dest`.
    Present {
        /// The block's final path.
        dest: PathBuf,
    },
    /// The bytes are in the unsynced temp file `tmp`, to be renamed to `dest`.
    Written {
        /// The temp file in `tmp/`.
        tmp: PathBuf,
        /// The block's final path.
        dest: PathBuf,
        /// Bytes written.
        len: u64,
    },
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cid::{CidVersion, Codec};
    use crate::local::write_batch::WriteBatch;

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

    /// Stages `data` as block `cid` and commits it on its own.
    fn write(blocks: &BlockDir, cid: &Cid, data: &[u8]) {
        let mut batch = WriteBatch::new(blocks).unwrap();
        batch.add(blocks.stage(cid, data).unwrap());
        batch.commit(blocks).unwrap();
    }

    #[test]
    fn write_dedupes_and_repairs() {
        let dir = tempfile::tempdir().unwrap();
        let blocks = BlockDir::open(dir.path()).unwrap();
        let cid = Cid::for_block(CidVersion::V1, Codec::Raw, b"payload");
        write(&blocks, &cid, b"payload");
        assert_eq!(blocks.read(cid.digest()).unwrap().unwrap(), b"payload");
        assert!(matches!(
            blocks.stage(&cid, b"payload").unwrap(),
            Staged::Present { .. }
        ));
        fs::write(blocks.path_for(cid.digest()), b"paYload").unwrap();
        write(&blocks, &cid, b"payload");
        assert_eq!(blocks.read(cid.digest()).unwrap().unwrap(), b"payload");
        let listed = blocks.list().unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].digest, *cid.digest());
        assert!(blocks.remove(cid.digest()).unwrap());
        assert!(!blocks.remove(cid.digest()).unwrap());
        assert!(blocks.read(cid.digest()).unwrap().is_none());
    }

    #[test]
    fn open_creates_every_shard_once() {
        let dir = tempfile::tempdir().unwrap();
        let shards = || {
            let mut names: Vec<String> = fs::read_dir(dir.path().join("blocks"))
                .unwrap()
                .map(|e| e.unwrap())
                .filter(|e| e.file_type().unwrap().is_dir())
                .map(|e| e.file_name().into_string().unwrap())
                .collect();
            names.sort();
            names
        };
        drop(BlockDir::open(dir.path()).unwrap());
        let created = shards();
        assert_eq!(created.len(), 1024);
        assert_eq!(created.first().map(String::as_str), Some("22"));
        assert_eq!(created.last().map(String::as_str), Some("ZZ"));
        // Every key's shard is among them.
        for i in 0..200u32 {
            let digest: [u8; 32] = Sha256::digest(i.to_le_bytes()).into();
            let key = block_key(&digest);
            assert!(created.binary_search(&shard_of(&key).to_owned()).is_ok());
        }
        // A store missing some (older version, Kubo) gets them back.
        fs::remove_dir(dir.path().join("blocks").join("AB")).unwrap();
        drop(BlockDir::open(dir.path()).unwrap());
        assert_eq!(shards(), created);
    }

    #[test]
    fn a_removed_shard_is_recreated_by_the_commit() {
        let dir = tempfile::tempdir().unwrap();
        let blocks = BlockDir::open(dir.path()).unwrap();
        let cid = Cid::for_block(CidVersion::V1, Codec::Raw, b"payload");
        let shard = blocks.path_for(cid.digest()).parent().unwrap().to_owned();
        fs::remove_dir(&shard).unwrap();
        write(&blocks, &cid, b"payload");
        assert_eq!(blocks.read(cid.digest()).unwrap().unwrap(), b"payload");
    }

    #[test]
    fn open_clears_stale_temp_files() {
        let dir = tempfile::tempdir().unwrap();
        drop(BlockDir::open(dir.path()).unwrap());
        let other = if std::process::id() == 123 { 124 } else { 123 };
        let stale = dir.path().join("tmp").join(format!("{other}-0.tmp"));
        fs::write(&stale, b"half a blo").unwrap();
        // One of this process: another store open on the directory may be
        // writing it.
        let live = dir
            .path()
            .join("tmp")
            .join(format!("{}-77.tmp", std::process::id()));
        fs::write(&live, b"being written").unwrap();
        drop(BlockDir::open(dir.path()).unwrap());
        assert!(!stale.exists());
        assert!(live.exists());
    }

    #[test]
    fn two_stores_on_one_directory_never_share_a_temp_name() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (
            BlockDir::open(dir.path()).unwrap(),
            BlockDir::open(dir.path()).unwrap(),
        );
        assert_ne!(a.temp_path(), b.temp_path());
    }
}
