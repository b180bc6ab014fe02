//! Record titles for listings ([`Vault::titles`]), kept per member across processes so
//! that a listing does not open (one CP-ABE decryption each) every manifest again.
//!
//! One file per member, `<dir>/titles/<address>`, append-only, one line per entry:
//! hex of `manifest digest (32) | nonce (12) | AES-256-GCM ciphertext of the title`, with
//! the digest (SHA-256 of the manifest CID as the chain points to it) as associated data.
//! The AES key is `SHA-256("medseal/v1/title-cache" ‖ member encoding)`: only the holder
//! of the member's key file can read the titles, and a title cannot be moved to another
//! manifest. A manifest CID names its content, so an entry never goes stale: a share or a
//! revocation points the record to a new manifest, whose title is written when the owner
//! makes it or opened once by a grantee. Lines that do not decode or authenticate (a line
//! torn by a crash, another key's entries) are skipped; the file can be deleted at any time.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{Read as _, Seek as _, SeekFrom, Write as _};
use std::path::{Path, PathBuf};

use aes_gcm::aead::{Aead, Payload};
use aes_gcm::{Aes256Gcm, KeyInit, Nonce};
use futures_util::StreamExt;
use rand_core::{OsRng, RngCore};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use super::Vault;
use crate::chain::RecordInfo;
use crate::error::{Error, Result};
use crate::identity::Member;

/// Directory (in the data directory) of the members' title caches.
pub const TITLES_DIR: &str = "titles";

/// Manifests opened at a time for the titles a listing does not have yet.
const OPEN_CONCURRENCY: usize = 8;

/// A member's known titles, by manifest digest.
pub(super) struct TitleCache {
    path: PathBuf,
    cipher: Aes256Gcm,
    /// Identifies the key (a digest of it), for the vault's map of loaded caches.
    id: [u8; 32],
    titles: HashMap<[u8; 32], String>,
    /// Bytes of the file read so far (up to the end of its last complete line).
    read: u64,
}

fn manifest_digest(manifest_cid: &str) -> [u8; 32] {
    Sha256::digest(manifest_cid.as_bytes()).into()
}

impl TitleCache {
    /// Loads the member's titles (none if there is no file).
    /// Reads what was appended to the file since the last call (all of it the first
    /// time; again from the start if the file was replaced by a shorter one).
    fn refresh(&mut self) -> Result<()> {
        let mut file = match File::open(&self.path) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                self.titles.clear();
                self.read = 0;
                return Ok(());
            }
            Err(e) => return Err(Error::io(&self.path)(e)),
        };
        let len = file.metadata().map_err(Error::io(&self.path))?.len();
        if len < self.read {
            self.titles.clear();
            self.read = 0;
        }
        if len == self.read {
            return Ok(());
        }
        file.seek(SeekFrom::Start(self.read))
            .map_err(Error::io(&self.path))?;
        let mut text = Vec::new();
        file.read_to_end(&mut text).map_err(Error::io(&self.path))?;
        // Only complete lines: a line being appended is read next time.
        let complete = text.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        for line in text[..complete].split(|&b| b == b'\n') {
            if let Some((digest, title)) = self.open_line(line) {
                self.titles.insert(digest, title);
            }
        }
        self.read += complete as u64;
        Ok(())
    }

    fn new(dir: &Path, member: &Member) -> Result<Self> {
        let secret = Zeroizing::new(member.to_bytes());
        let mut h = Sha256::new();
        h.update(b"medseal/v1/title-cache");
        h.update(secret.as_slice());
        let key = Zeroizing::new(<[u8; 32]>::from(h.finalize()));
        let cipher = Aes256Gcm::new_from_slice(key.as_slice())
            .map_err(|_| Error::inconsistent("title cache", "bad key length"))?;
        let id = Sha256::new()
            .chain_update(b"medseal/v1/title-cache-id")
            .chain_update(key.as_slice())
            .finalize()
            .into();
        let path = dir.join(TITLES_DIR).join(format!("{:x}", member.address()));
        Ok(Self {
            path,
            cipher,
            id,
            titles: HashMap::new(),
            read: 0,
        })
    }

    fn open_line(&self, line: &[u8]) -> Option<([u8; 32], String)> {
        let bytes = hex::decode(line).ok()?;
        let (digest, rest) = bytes.split_at_checked(32)?;
        let (nonce, ct) = rest.split_at_checked(12)?;
        let nonce: [u8; 12] = nonce.try_into().ok()?;
        let plain = self
            .cipher
            .decrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: ct,
                    aad: digest,
                },
            )
            .ok()?;
        Some((digest.try_into().ok()?, String::from_utf8(plain).ok()?))
    }

    fn get(&self, manifest_cid: &str) -> Option<&str> {
        self.titles
            .get(&manifest_digest(manifest_cid))
            .map(String::as_str)
    }

    /// Appends entries (one write; not synced: it is a cache).
    fn insert<'a>(&mut self, entries: impl IntoIterator<Item = (&'a str, &'a str)>) -> Result<()> {
        let mut out = Vec::new();
        for (manifest_cid, title) in entries {
            let digest = manifest_digest(manifest_cid);
            if self.titles.get(&digest).map(String::as_str) == Some(title) {
                continue;
            }
            let mut nonce = [0u8; 12];
            OsRng.fill_bytes(&mut nonce);
            let ct = self
                .cipher
                .encrypt(
                    &Nonce::from(nonce),
                    Payload {
                        msg: title.as_bytes(),
                        aad: &digest,
                    },
                )
                .map_err(|_| Error::inconsistent("title cache", "encryption failed"))?;
            let mut line = Vec::with_capacity(44 + ct.len());
            line.extend_from_slice(&digest);
            line.extend_from_slice(&nonce);
            line.extend_from_slice(&ct);
            out.extend_from_slice(hex::encode(line).as_bytes());
            out.push(b'\n');
            self.titles.insert(digest, title.to_owned());
        }
        if out.is_empty() {
            return Ok(());
        }
        if let Some(parent) = self.path.parent() {
            std::fs::create_dir_all(parent).map_err(Error::io(parent))?;
        }
        let io = Error::io(&self.path);
        let mut file = open_private(&self.path).map_err(Error::io(&self.path))?;
        // A line torn by a crash: start a new one, so that this entry stays readable.
        if ends_torn(&mut file).map_err(Error::io(&self.path))? {
            out.insert(0, b'\n');
        }
        file.write_all(&out).map_err(io)
    }
}

/// Whether the file's last byte is not a newline (a torn last line).
fn ends_torn(file: &mut File) -> std::io::Result<bool> {
    if file.metadata()?.len() == 0 {
        return Ok(false);
    }
    file.seek(SeekFrom::End(-1))?;
    let mut last = [0u8; 1];
    file.read_exact(&mut last)?;
    Ok(last != *b"\n")
}

/// Opens for reading and appending, readable by the owner only.
fn open_private(path: &Path) -> std::io::Result<File> {
    let mut options = OpenOptions::new();
    options.create(true).read(true).append(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    options.open(path)
}

impl Vault {
    /// The titles of listed records (e.g. [`Vault::records_of`], [`Vault::shared_with`]),
    /// as `reader` (their owner, or a grantee) may read them, in order; one result per
    /// record, so that one that cannot be opened does not fail the listing.
    ///
    /// Titles come from the reader's title cache (`<dir>/titles/<address>`, encrypted
    /// under a key derived from the member's key; written at put, share and revocation
    /// for the owner, and whenever a title is opened); the others are opened (manifest
    /// fetched and verified, record key unwrapped) and added to it. Nothing is logged on
    /// chain: a listing shows names, not contents — like the chain's own listings it
    /// writes no audit entry, which would cost one transaction per record and listing.
    /// Opening a record ([`Vault::get`]) is what the trail records.
    ///
    /// # Errors
    /// Per record: [`Error::AccessDenied`] if the reader cannot open it,
    /// [`Error::Tampered`], storage errors. A cache that cannot be read or written is
    /// ignored (with a warning in the log).
    pub async fn titles(&self, reader: &Member, infos: &[RecordInfo]) -> Vec<Result<String>> {
        let mut cache = match self.title_cache(reader) {
            Ok(cache) => Some(cache),
            Err(e) => {
                tracing::warn!(error = %e, "title cache unreadable; opening every manifest");
                None
            }
        };
        let known = |info: &RecordInfo| {
            cache
                .as_ref()
                .and_then(|c| c.get(&info.manifest_cid))
                .map(str::to_owned)
        };
        let cached: Vec<Option<String>> = infos.iter().map(known).collect();
        // (Collected first: a stream over filtering closures that borrow the tuples
        // makes the returned future not provably `Send`, which web handlers need.)
        let misses: Vec<RecordInfo> = infos
            .iter()
            .zip(&cached)
            .filter(|(_, title)| title.is_none())
            .map(|(info, _)| info.clone())
            .collect();
        let opened: Vec<Result<String>> = futures_util::stream::iter(misses)
            .map(|info| async move { Ok(self.open_info(reader, &info).await?.name) })
            .buffered(OPEN_CONCURRENCY)
            .collect()
            .await;
        if let Some(cache) = cache.as_mut() {
            let misses = infos.iter().zip(&cached).filter(|(_, t)| t.is_none());
            let fresh = misses.zip(&opened).filter_map(|((info, _), title)| {
                Some((info.manifest_cid.as_str(), title.as_deref().ok()?))
            });
            if let Err(e) = cache.insert(fresh) {
                tracing::warn!(error = %e, "could not add to the title cache");
            }
        }
        if let Some(cache) = cache {
            self.keep_title_cache(cache);
        }
        let mut opened = opened.into_iter();
        cached
            .into_iter()
            .map(|title| match title {
                Some(title) => Ok(title),
                None => opened
                    .next()
                    .unwrap_or_else(|| Err(Error::inconsistent("titles", "a title went missing"))),
            })
            .collect()
    }

    /// The reader's title cache, brought up to date with its file: kept in memory between
    /// listings, so that each reads only the lines appended since (by this process or
    /// another), not the whole history.
    fn title_cache(&self, reader: &Member) -> Result<TitleCache> {
        let fresh = TitleCache::new(&self.dir, reader)?;
        let kept = self
            .title_caches
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(&fresh.id);
        let mut cache = kept.unwrap_or(fresh);
        cache.refresh()?;
        Ok(cache)
    }

    fn keep_title_cache(&self, cache: TitleCache) {
        self.title_caches
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(cache.id, cache);
    }

    /// Adds titles the owner just wrote (put, share, revocation) to its title cache; a
    /// failure only costs a manifest opening at the next listing.
    pub(super) fn remember_titles<'a>(
        &self,
        owner: &Member,
        entries: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) {
        // Appended without reading the file (O(1) per put); a repeated entry is harmless.
        let added = TitleCache::new(&self.dir, owner).and_then(|mut c| c.insert(entries));
        if let Err(e) = added {
            tracing::warn!(error = %e, "could not add to the title cache");
        }
    }
}
