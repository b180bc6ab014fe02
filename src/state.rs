//! The owner's private index state, persisted durably in the data directory as a base
//! file and an append-only log of changes.
//!
//! Per owner (chain address) two files (mode 0600: they hold partition keys), in the
//! canonical binary codec (integers big-endian):
//!
//! ```text
//! owners/<address>.state:
//! state     = "MSOS" | 5 | u64 generation | u32 n | n × partition | pending section
//!           | u32 r | r × completed (recovered) | u32 q | q × completed (keyed)
//! partition = base-policy hash [32] | u8 published | bytes OwnerPartition
//! pending section = u64 records before | u32 m | m × pending
//! pending   = str manifest CID | capsule-policy hash [32] | base-policy hash [32]
//!           | u32 k | k × str keyword | identity | attachments | subject
//! subject   = u8 0 | u8 1 address [20]
//! identity  = 0 (none) | 1 | content digest [32] | 2 | str key | description digest [32]
//! attachments = u32 a | a × (str name | str content type | u64 size | str CID)
//! completed = identity (1 or 2) | u64 record id | str manifest CID | attachments
//!           | u8 0 | u8 1 str shard CID
//!
//! owners/<address>.log:
//! log       = "MSOL" | 1 | u64 generation | record*
//! record    = u32 len | payload (len bytes) | checksum [8]
//! payload   = "MSOR" | 3 | pending section | u32 c | c × change
//!           | u8 0 | u8 1 u32 r r × completed (the recovered puts, replaced)
//!           | u32 q | q × completed (keyed puts added)
//! change    = base-policy hash [32] | u8 published | u8 form | bytes encoding
//! ```
//!
//! The checksum is the first 8 bytes of SHA-256 of the payload. A change's `form` is 0
//! for an `OwnerPartition::delta` (the counters changed since the previous record) and 1
//! for a full `OwnerPartition::to_bytes` (a new partition, or the next epoch of one).
//!
//! Per base policy the owner has indexed under (the partition's own policy is the base
//! policy AND-ed with the validity clause of its epoch's month, see
//! [`crate::validity`]; the state is keyed by the base): the current index partition as the index
//! crate encodes it (epoch, key, keyword counters, next shard, live shards; no keyword
//! text) and whether its capsule is known to be published. At most one pending put (one
//! record, or a bulk batch of records: [`crate::Vault::put_many`]): its intent, with the
//! chain's record count before it, is written before its first chain transaction and
//! cleared, with the advanced partitions, after the last, so a crash at any point is
//! completed by the next owner operation (see [`crate::Vault::recover`]), which looks for
//! the batch's records only among those created since.
//!
//! **Retries.** Each pending record carries its identity: the caller's idempotency key
//! (with a digest of the record's description, to refuse a key reused for another
//! record), or else the digest of its content. The records of the last put a recovery
//! completed are kept as *recovered* until a retry of that put claims them (see
//! `Vault::put`); the next recovery replaces them. Every completed keyed record is kept
//! under its key for good (O(keyed records) on disk; a save appends only the keys it
//! added). Records written by version 3 (without identities) are completed as before
//! and never matched.
//!
//! **Saving** appends one record to the log and fsyncs it: the pending section (always),
//! per partition changed since the previous save its delta or full encoding, the
//! recovered puts if they changed, and the keyed puts completed since. Its size depends
//! on the put (its keywords and attachments, the partition's live shards), not on the
//! owner's history. When the log outgrows the base (and [`COMPACT_MIN`]), the state is
//! **compacted**: the whole state is written as a base of the next generation (atomically:
//! a temporary file, fsync, rename, directory fsync), then the log is replaced by an empty
//! one of that generation. Each compaction follows at least as many log bytes as it
//! writes, so the bytes written per put stay bounded (amortised).
//!
//! **Loading** reads the base and replays the records of the log whose generation is the
//! base's; a log of another generation is ignored (a crash between the two steps of a
//! compaction leaves the previous generation's log, all of which is in the new base). A
//! record is complete only with its length, its payload and a matching checksum; a record
//! cut short or damaged at the end of the log (a crash while appending) ends the replay
//! and is cut away by the next save. A damaged record followed by more data is refused
//! (`Error::Corrupt`) rather than skipped: replaying only the records before it could move
//! a counter back, which would repeat index labels. Replaying a delta checks that no
//! counter goes back (`OwnerPartition::apply_delta`), and a full encoding of a partition
//! already known is checked with `OwnerPartition::check_successor`.
//!
//! Loading decodes the whole state (O(state), once per process: the vault keeps the
//! decoded state between operations and reloads it only when the files changed behind
//! it; see `Vault::owner_state`). Versions 2 (no generation, read as generation 0) and 3
//! of the base and version 1 of the log records (no identities, recovered or keyed puts)
//! are still read, and so are version 4 of the base and version 2 of the log records (no
//! subjects of pending records: read as none); version 1 of the base (no live shards, one
//! pending record) is refused.

use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::abe::codec::{Reader, Writer};
use crate::abe::{DecodeError, Policy};
use std::collections::HashMap;

use crate::chain::Address;
use crate::error::{Error, Result};
use crate::fsutil::{read_optional, write_atomic};
use crate::index::sse::{OwnerPartition, PartitionId};
use crate::manifest::{AttachmentInfo, MAX_ATTACHMENTS, partition_base, policy_hash};

const MAGIC: [u8; 4] = *b"MSOS";
const VERSION: u8 = 5;
/// The base version without pending records' subjects, still read.
const VERSION_4: u8 = 4;
/// The base version without identities, recovered or keyed puts, still read.
const VERSION_3: u8 = 3;
/// The base version without a generation either, still read (as generation 0).
const VERSION_2: u8 = 2;
const LOG_MAGIC: [u8; 4] = *b"MSOL";
const LOG_VERSION: u8 = 1;
/// Length of the log header: magic, version, generation.
const LOG_HEADER: u64 = 4 + 1 + 8;
const RECORD_MAGIC: [u8; 4] = *b"MSOR";
const RECORD_VERSION: u8 = 3;
/// The log record version without pending records' subjects, still read.
const RECORD_VERSION_2: u8 = 2;
/// The log record version without identities, recovered or keyed puts, still read.
const RECORD_VERSION_1: u8 = 1;
/// Length of a record's checksum.
const CHECKSUM: usize = 8;
/// Largest log record accepted.
const MAX_RECORD: usize = 1 << 30;
/// The log is compacted into the base once it is larger than the base and than this.
pub(crate) const COMPACT_MIN: u64 = 64 * 1024;
/// Most records of one pending put (a bulk batch).
pub(crate) const MAX_PENDING: usize = 1 << 12;
/// Most partitions (distinct policies) per owner.
const MAX_PARTITIONS: usize = 1 << 16;
/// Largest encoded partition accepted (the index crate checks its own limits inside).
const MAX_PARTITION_BYTES: usize = 1 << 30;
/// Longest CID text accepted.
const MAX_CID_TEXT: usize = 256;
/// Longest keyword text accepted (the index's own limit is lower).
const MAX_KEYWORD_TEXT: usize = 4096;
/// Longest attachment name or content type accepted.
const MAX_NAME_TEXT: usize = crate::MAX_RECORD_NAME_LEN;
/// Most recovered records kept for their retries (the oldest are dropped first).
pub(crate) const MAX_RECOVERED: usize = 2 * crate::BULK_BATCH;
/// Most keyed puts kept.
const MAX_KEYED: usize = u32::MAX as usize;

const WHAT: &str = "owner state";

/// All private index state of one owner, decoded, with what it knows of its files.
#[derive(Default)]
pub(crate) struct OwnerState {
    partitions: Vec<PartitionEntry>,
    /// A put (one record or a bulk batch) whose chain transactions may not all have
    /// happened; empty if none.
    pub(crate) pending: Vec<PendingPut>,
    /// The chain's record count before the pending put's first transaction: its records,
    /// if created, have larger ids.
    pub(crate) pending_after: u64,
    /// The records of the last put a recovery completed, not yet claimed by its retry.
    recovered: Vec<CompletedPut>,
    /// Whether `recovered` changed since the last save.
    recovered_changed: bool,
    /// Every completed keyed put, by key.
    keyed: HashMap<String, CompletedPut>,
    /// Keys added to `keyed` since the last save.
    keyed_added: Vec<String>,
    files: Files,
}

/// What a state knows of its files since it last loaded or saved them.
#[derive(Default)]
struct Files {
    /// The generation of the base (and of the log records that apply to it).
    generation: u64,
    /// Length of the base; `None` if there is none yet.
    base_len: Option<u64>,
    /// Length of the log's valid part (header and complete records) in this generation;
    /// 0 if there is no log of this generation.
    log_len: u64,
    /// The files as last loaded or saved.
    fingerprint: Fingerprint,
}

/// Identifies the content of the two files cheaply (metadata only).
#[derive(Default, Clone, Copy, PartialEq, Eq, Debug)]
struct Fingerprint {
    base: Option<FileId>,
    log: Option<FileId>,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
struct FileId {
    len: u64,
    modified: Option<std::time::SystemTime>,
    inode: u64,
}

/// One policy's current partition.
struct PartitionEntry {
    policy: [u8; 32],
    id: PartitionId,
    published: bool,
    /// `None` while taken out with [`OwnerState::take_partition`].
    partition: Option<OwnerPartition>,
    dirty: Dirty,
}

/// How a partition differs from what the files hold.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Dirty {
    Clean,
    /// Counters, shards or the published flag changed: the next record holds a delta.
    Changed,
    /// A partition the files do not hold (new, or the next epoch): the next record holds
    /// its full encoding.
    New,
}

/// The current partition of one policy, taken out of the state for use.
pub(crate) struct PartitionSlot {
    pub(crate) partition: OwnerPartition,
    /// Whether its capsule is known to be published on chain.
    pub(crate) published: bool,
}

#[derive(Debug, Clone)]
pub(crate) struct PendingPut {
    pub(crate) manifest_cid: String,
    /// Hash of the capsule policy (what `createRecord` stores).
    pub(crate) capsule_policy: [u8; 32],
    /// Hash of the base policy (selects the partition).
    pub(crate) policy: [u8; 32],
    /// Canonical keyword texts.
    pub(crate) keywords: Vec<String>,
    /// How a retry of the put recognises the record (`None` in intents of version 3).
    pub(crate) identity: Option<PutIdentity>,
    /// The attachments as stored (for the receipt of a completion).
    pub(crate) attachments: Vec<AttachmentInfo>,
    /// The record's subject (the patient), if any (`None` in intents before version 5).
    pub(crate) subject: Option<Address>,
}

/// How a retried put recognises a record it stored before.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PutIdentity {
    /// The digest of the record's content: its description and each attachment's size
    /// and SHA-256.
    Content([u8; 32]),
    /// The caller's idempotency key, and the digest of the record's description (name,
    /// policy, keywords, attachment names and content types): a key reused for another
    /// record is refused.
    Key {
        /// The key.
        key: String,
        /// The description digest.
        description: [u8; 32],
    },
}

/// A record a put stored: what its receipt names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CompletedPut {
    pub(crate) identity: PutIdentity,
    pub(crate) record: u64,
    pub(crate) manifest_cid: String,
    pub(crate) attachments: Vec<AttachmentInfo>,
    pub(crate) shard_cid: Option<String>,
}

/// The hash of a partition's base policy: what the state keys it by.
fn base_hash(partition: &OwnerPartition) -> [u8; 32] {
    policy_hash(&partition_base(partition.partition().policy())).0
}

fn state_path(dir: &Path, owner: Address) -> PathBuf {
    dir.join("owners")
        .join(format!("{}.state", hex::encode(owner.as_slice())))
}

fn log_path(dir: &Path, owner: Address) -> PathBuf {
    dir.join("owners")
        .join(format!("{}.log", hex::encode(owner.as_slice())))
}

/// Where version one kept the state (JSON with keyword text); refused, never guessed at.
fn legacy_path(dir: &Path, owner: Address) -> PathBuf {
    dir.join("owners")
        .join(format!("{}.json", hex::encode(owner.as_slice())))
}

fn file_id(path: &Path) -> Result<Option<FileId>> {
    match std::fs::metadata(path) {
        Ok(m) => {
            #[cfg(unix)]
            let inode = std::os::unix::fs::MetadataExt::ino(&m);
            #[cfg(not(unix))]
            let inode = 0;
            Ok(Some(FileId {
                len: m.len(),
                modified: m.modified().ok(),
                inode,
            }))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io(path)(e)),
    }
}

fn fingerprint(dir: &Path, owner: Address) -> Result<Fingerprint> {
    Ok(Fingerprint {
        base: file_id(&state_path(dir, owner))?,
        log: file_id(&log_path(dir, owner))?,
    })
}

fn checksum(payload: &[u8]) -> [u8; CHECKSUM] {
    let digest = Sha256::digest(payload);
    let mut sum = [0u8; CHECKSUM];
    sum.copy_from_slice(&digest[..CHECKSUM]);
    sum
}

fn log_header(generation: u64) -> Vec<u8> {
    let mut w = Writer::new(LOG_MAGIC, LOG_VERSION);
    w.u64(generation);
    w.finish()
}

impl OwnerState {
    /// Loads the state from its files: the base, then the log records of its generation.
    pub(crate) fn load(dir: &Path, owner: Address) -> Result<Self> {
        // Taken before reading: a change after it makes the fingerprint stale, never the
        // reverse.
        let fingerprint = fingerprint(dir, owner)?;
        let mut state = match read_optional(&state_path(dir, owner))? {
            Some(bytes) => {
                let mut state = Self::decode(&bytes).map_err(|e| Error::corrupt(WHAT, e))?;
                state.files.base_len = Some(bytes.len() as u64);
                state
            }
            None if legacy_path(dir, owner).exists() => {
                return Err(Error::inconsistent(
                    WHAT,
                    "owners/<address>.json is in the format of medseal 0.1 pre-releases, \
                     which this version does not read",
                ));
            }
            None => Self::default(),
        };
        if let Some(log) = read_optional(&log_path(dir, owner))? {
            state.replay(&log)?;
        }
        state.files.fingerprint = fingerprint;
        Ok(state)
    }

    /// Whether this state (as last loaded or saved) is still what its files hold, with no
    /// partition taken out and nothing unsaved.
    pub(crate) fn is_current(&self, dir: &Path, owner: Address) -> bool {
        self.partitions
            .iter()
            .all(|p| p.partition.is_some() && p.dirty == Dirty::Clean)
            && !self.recovered_changed
            && self.keyed_added.is_empty()
            && fingerprint(dir, owner).is_ok_and(|f| f == self.files.fingerprint)
    }

    /// Makes the state durable: appends a record of what changed since the last save to
    /// the log (fsynced), compacting the log into a new base when it has outgrown it.
    ///
    /// # Errors
    /// I/O errors; [`Error::Corrupt`] if a partition is taken out. The state may then
    /// differ from its files: load it again.
    pub(crate) fn save(&mut self, dir: &Path, owner: Address) -> Result<()> {
        if self.partitions.iter().any(|p| p.partition.is_none()) {
            return Err(Error::inconsistent(
                WHAT,
                "a partition is in use while saving",
            ));
        }
        if self.files.base_len.is_none() {
            return self.compact(dir, owner);
        }
        let payload = self.record();
        self.append(dir, owner, &payload)?;
        let base = self.files.base_len.unwrap_or(0);
        if self.files.log_len > base.max(COMPACT_MIN) {
            return self.compact(dir, owner);
        }
        self.files.fingerprint = fingerprint(dir, owner)?;
        Ok(())
    }

    /// Writes the whole state as the base of the next generation, then an empty log of
    /// that generation.
    fn compact(&mut self, dir: &Path, owner: Address) -> Result<()> {
        let generation = self
            .files
            .generation
            .checked_add(1)
            .ok_or_else(|| Error::inconsistent(WHAT, "generation overflow"))?;
        let base = self.encode(generation)?;
        write_atomic(&state_path(dir, owner), &base, true)?;
        // From here the base holds everything: an older log is ignored.
        self.files.generation = generation;
        self.files.base_len = Some(base.len() as u64);
        self.files.log_len = 0;
        for entry in &mut self.partitions {
            if entry.dirty != Dirty::Clean {
                if let Some(p) = entry.partition.as_mut() {
                    drop(p.delta());
                }
                entry.dirty = Dirty::Clean;
            }
        }
        self.recovered_changed = false;
        self.keyed_added.clear();
        write_atomic(&log_path(dir, owner), &log_header(generation), true)?;
        self.files.log_len = LOG_HEADER;
        self.files.fingerprint = fingerprint(dir, owner)?;
        Ok(())
    }

    /// Appends one framed record to the log of the current generation (created, or
    /// replaced if it is of another generation; a torn tail is cut off first).
    fn append(&mut self, dir: &Path, owner: Address, payload: &[u8]) -> Result<()> {
        let path = log_path(dir, owner);
        if self.files.log_len == 0 {
            write_atomic(&path, &log_header(self.files.generation), true)?;
            self.files.log_len = LOG_HEADER;
        }
        let len = u32::try_from(payload.len())
            .ok()
            .filter(|&n| n as usize <= MAX_RECORD)
            .ok_or_else(|| Error::inconsistent(WHAT, "owner log record too large"))?;
        let mut framed = Zeroizing::new(Vec::with_capacity(4 + payload.len() + CHECKSUM));
        framed.extend_from_slice(&len.to_be_bytes());
        framed.extend_from_slice(payload);
        framed.extend_from_slice(&checksum(payload));
        let io = Error::io(&path);
        let written = (|| {
            let mut file = std::fs::OpenOptions::new().write(true).open(&path)?;
            file.set_len(self.files.log_len)?;
            file.seek(SeekFrom::Start(self.files.log_len))?;
            file.write_all(&framed)?;
            file.sync_data()
        })();
        written.map_err(io)?;
        self.files.log_len += framed.len() as u64;
        Ok(())
    }

    /// The payload of a log record: the pending section, and each changed partition's
    /// delta or full encoding (marking them clean).
    fn record(&mut self) -> Zeroizing<Vec<u8>> {
        let mut changes = Vec::new();
        for entry in &mut self.partitions {
            let Some(partition) = entry.partition.as_mut() else {
                continue;
            };
            let (form, encoding) = match entry.dirty {
                Dirty::Clean => continue,
                Dirty::Changed => (0u8, partition.delta()),
                Dirty::New => {
                    drop(partition.delta());
                    (1u8, partition.to_bytes())
                }
            };
            entry.dirty = Dirty::Clean;
            changes.push((entry.policy, entry.published, form, encoding));
        }
        let size: usize = changes.iter().map(|c| 42 + c.3.len()).sum();
        let mut w = Writer::new(RECORD_MAGIC, RECORD_VERSION);
        w.reserve(size + 1024);
        self.write_pending(&mut w);
        w.count(changes.len());
        for (policy, published, form, encoding) in &changes {
            w.raw(policy)
                .u8(u8::from(*published))
                .u8(*form)
                .bytes(encoding);
        }
        if self.recovered_changed {
            w.u8(1);
            write_completed_list(&mut w, &self.recovered.iter().collect::<Vec<_>>());
        } else {
            w.u8(0);
        }
        self.recovered_changed = false;
        let added = std::mem::take(&mut self.keyed_added);
        let added: Vec<&CompletedPut> = added.iter().filter_map(|k| self.keyed.get(k)).collect();
        write_completed_list(&mut w, &added);
        Zeroizing::new(w.finish())
    }

    /// Replays the log records of the base's generation.
    fn replay(&mut self, log: &[u8]) -> Result<()> {
        let mut r =
            Reader::new(log, LOG_MAGIC, LOG_VERSION).map_err(|e| Error::corrupt(WHAT, e))?;
        let generation = r.u64().map_err(|e| Error::corrupt(WHAT, e))?;
        if self.files.base_len.is_none() {
            // A log without its base: not replayed, and the next base gets a later
            // generation than this log's, so it never applies to it.
            self.files.generation = generation;
            return Ok(());
        }
        if generation != self.files.generation {
            // Of another generation (left by a crash during a compaction): all of it is in
            // the base. The next save replaces it.
            return Ok(());
        }
        let mut at = LOG_HEADER as usize;
        while at < log.len() {
            let rest = log.get(at..).unwrap_or_default();
            let len = rest
                .get(..4)
                .and_then(|b| <[u8; 4]>::try_from(b).ok())
                .map(|b| u32::from_be_bytes(b) as usize);
            let end = len.and_then(|n| 4usize.checked_add(n)?.checked_add(CHECKSUM));
            let frame = len.zip(end).and_then(|(n, end)| {
                let payload = rest.get(4..4 + n)?;
                let sum = rest.get(4 + n..end)?;
                (n > 0 && n <= MAX_RECORD && sum == checksum(payload)).then_some((payload, end))
            });
            let Some((payload, end)) = frame else {
                // A record cut short (it runs to or past the end of the log), or followed
                // only by zeros (left by a crash while appending): the tail of an
                // interrupted save.
                let zeros =
                    |from: usize| rest.get(from..).is_none_or(|r| r.iter().all(|&b| b == 0));
                let tail = end.is_none_or(zeros) || zeros(0);
                if tail {
                    break;
                }
                return Err(Error::inconsistent(
                    WHAT,
                    "a damaged record in the middle of the owner log",
                ));
            };
            self.apply(payload)?;
            at += end;
        }
        self.files.log_len = at as u64;
        Ok(())
    }

    /// Applies one record's payload.
    fn apply(&mut self, payload: &[u8]) -> Result<()> {
        let corrupt = |e| Error::corrupt(WHAT, e);
        let version = match payload.get(4) {
            Some(&RECORD_VERSION_1) => RECORD_VERSION_1,
            Some(&RECORD_VERSION_2) => RECORD_VERSION_2,
            _ => RECORD_VERSION,
        };
        let mut r = Reader::new(payload, RECORD_MAGIC, version).map_err(corrupt)?;
        let (pending_after, pending) = read_pending(
            &mut r,
            version != RECORD_VERSION_1,
            version == RECORD_VERSION,
        )
        .map_err(corrupt)?;
        let n = r.count("changes", MAX_PARTITIONS, 38).map_err(corrupt)?;
        for _ in 0..n {
            let policy = r.array().map_err(corrupt)?;
            let published = flag(&mut r).map_err(corrupt)?;
            let form = r.u8().map_err(corrupt)?;
            let encoding = r.bytes("partition", MAX_PARTITION_BYTES).map_err(corrupt)?;
            let existing = self.partitions.iter_mut().find(|p| p.policy == policy);
            let back = || Error::inconsistent(WHAT, "the owner log would move a counter back");
            match (form, existing) {
                (0, Some(entry)) => {
                    let partition = entry
                        .partition
                        .as_mut()
                        .ok_or_else(|| Error::inconsistent(WHAT, "partition in use"))?;
                    partition.apply_delta(encoding).map_err(|e| match e {
                        crate::index::Error::StaleOwnerState => back(),
                        other => other.into(),
                    })?;
                    entry.published = published;
                }
                (0, None) => {
                    return Err(Error::inconsistent(
                        WHAT,
                        "an owner log delta for an unknown partition",
                    ));
                }
                (1, existing) => {
                    let partition = OwnerPartition::from_bytes(encoding)?;
                    if base_hash(&partition) != policy {
                        return Err(Error::inconsistent(WHAT, "partition under another policy"));
                    }
                    let entry = PartitionEntry {
                        policy,
                        id: *partition.id(),
                        published,
                        partition: None,
                        dirty: Dirty::Clean,
                    };
                    let slot = match existing {
                        Some(old) => {
                            if let Some(previous) = old.partition.as_ref()
                                && previous.id() == partition.id()
                            {
                                partition.check_successor(previous).map_err(|_| back())?;
                            }
                            *old = entry;
                            old
                        }
                        None => {
                            if self.partitions.len() >= MAX_PARTITIONS {
                                return Err(Error::inconsistent(WHAT, "too many partitions"));
                            }
                            self.partitions.push(entry);
                            self.partitions
                                .last_mut()
                                .ok_or_else(|| Error::inconsistent(WHAT, "no partition"))?
                        }
                    };
                    slot.partition = Some(partition);
                }
                _ => {
                    return Err(Error::inconsistent(WHAT, "unknown partition form"));
                }
            }
        }
        if version != RECORD_VERSION_1 {
            if flag(&mut r).map_err(corrupt)? {
                self.recovered = read_completed_list(&mut r, MAX_RECOVERED).map_err(corrupt)?;
            }
            for completed in read_completed_list(&mut r, MAX_KEYED).map_err(corrupt)? {
                if let PutIdentity::Key { key, .. } = &completed.identity {
                    self.keyed.insert(key.clone(), completed);
                }
            }
        }
        r.finish().map_err(corrupt)?;
        self.pending = pending;
        self.pending_after = pending_after;
        Ok(())
    }

    /// Whether the current partition of `policy` is known to be published (`None`: the
    /// owner has none).
    pub(crate) fn is_published(&self, policy: &Policy) -> Option<bool> {
        let hash = policy_hash(policy).0;
        self.partitions
            .iter()
            .find(|p| p.policy == hash)
            .map(|p| p.published)
    }

    /// The current partition of `policy`, if the owner has one (and it is not taken out).
    pub(crate) fn current(&self, policy: &Policy) -> Option<&OwnerPartition> {
        self.current_by_hash(&policy_hash(policy).0)
    }

    /// The current partition of the policy with hash `policy`.
    pub(crate) fn current_by_hash(&self, policy: &[u8; 32]) -> Option<&OwnerPartition> {
        self.partitions
            .iter()
            .find(|p| p.policy == *policy)
            .and_then(|p| p.partition.as_ref())
    }

    /// The base-policy hashes of the current partitions (those not taken out), in the
    /// order the owner first indexed under them.
    pub(crate) fn partition_policies(&self) -> Vec<[u8; 32]> {
        self.partitions
            .iter()
            .filter(|p| p.partition.is_some())
            .map(|p| p.policy)
            .collect()
    }

    /// Takes the current partition of the policy with hash `policy` out of the state for
    /// a change (no copy of its counters); put it back with
    /// [`OwnerState::set_partition`] before saving.
    pub(crate) fn take_partition(&mut self, policy: &[u8; 32]) -> Option<PartitionSlot> {
        let entry = self.partitions.iter_mut().find(|p| p.policy == *policy)?;
        let partition = entry.partition.take()?;
        Some(PartitionSlot {
            partition,
            published: entry.published,
        })
    }

    /// Stores `slot` as the current partition of its policy (replacing the previous one).
    pub(crate) fn set_partition(&mut self, slot: PartitionSlot) {
        let policy = base_hash(&slot.partition);
        let id = *slot.partition.id();
        match self.partitions.iter_mut().find(|p| p.policy == policy) {
            Some(entry) => {
                entry.dirty = if entry.id == id && entry.dirty != Dirty::New {
                    Dirty::Changed
                } else {
                    Dirty::New
                };
                entry.id = id;
                entry.published = slot.published;
                entry.partition = Some(slot.partition);
            }
            None => self.partitions.push(PartitionEntry {
                policy,
                id,
                published: slot.published,
                partition: Some(slot.partition),
                dirty: Dirty::New,
            }),
        }
    }

    /// Marks the current partition of the policy with hash `policy` as published.
    pub(crate) fn mark_published(&mut self, policy: &[u8; 32]) {
        if let Some(entry) = self.partitions.iter_mut().find(|p| p.policy == *policy)
            && !entry.published
        {
            entry.published = true;
            if entry.dirty == Dirty::Clean {
                entry.dirty = Dirty::Changed;
            }
        }
    }

    fn write_pending(&self, w: &mut Writer) {
        w.u64(self.pending_after).count(self.pending.len());
        for pending in &self.pending {
            w.str(&pending.manifest_cid)
                .raw(&pending.capsule_policy)
                .raw(&pending.policy)
                .count(pending.keywords.len());
            for k in &pending.keywords {
                w.str(k);
            }
            write_identity(w, pending.identity.as_ref());
            write_attachments(w, &pending.attachments);
            match pending.subject {
                None => w.u8(0),
                Some(subject) => w.u8(1).raw(&subject.0.0),
            };
        }
    }

    /// The records of the last put a recovery completed, not yet claimed by a retry.
    pub(crate) fn recovered(&self) -> &[CompletedPut] {
        &self.recovered
    }

    /// Adds the records a recovery just completed, keeping the newest
    /// [`MAX_RECOVERED`].
    pub(crate) fn add_recovered(&mut self, completed: Vec<CompletedPut>) {
        if completed.is_empty() {
            return;
        }
        self.recovered.extend(completed);
        let excess = self.recovered.len().saturating_sub(MAX_RECOVERED);
        self.recovered.drain(..excess);
        self.recovered_changed = true;
    }

    /// Removes the recovered records at `indices` (claimed by a retry).
    pub(crate) fn claim_recovered(&mut self, indices: &[usize]) {
        let mut index = 0;
        self.recovered.retain(|_| {
            let keep = !indices.contains(&index);
            index += 1;
            keep
        });
        self.recovered_changed = true;
    }

    /// The completed keyed put with `key`, if any.
    pub(crate) fn keyed(&self, key: &str) -> Option<&CompletedPut> {
        self.keyed.get(key)
    }

    /// Keeps a completed keyed put (others are ignored).
    pub(crate) fn add_keyed(&mut self, completed: CompletedPut) {
        if let PutIdentity::Key { key, .. } = &completed.identity {
            self.keyed_added.push(key.clone());
            self.keyed.insert(key.clone(), completed);
        }
    }

    /// The base of `generation`.
    fn encode(&self, generation: u64) -> Result<Zeroizing<Vec<u8>>> {
        let encoded = self
            .partitions
            .iter()
            .map(|p| {
                p.partition
                    .as_ref()
                    .map(|partition| (p, partition.to_bytes()))
                    .ok_or_else(|| Error::inconsistent(WHAT, "a partition is in use while saving"))
            })
            .collect::<Result<Vec<_>>>()?;
        let mut w = Writer::new(MAGIC, VERSION);
        let size: usize = encoded.iter().map(|(_, e)| 41 + e.len()).sum();
        w.reserve(size + 1024)
            .u64(generation)
            .count(self.partitions.len());
        for (p, bytes) in &encoded {
            w.raw(&p.policy).u8(u8::from(p.published)).bytes(bytes);
        }
        self.write_pending(&mut w);
        write_completed_list(&mut w, &self.recovered.iter().collect::<Vec<_>>());
        // Sorted by key: the same state always encodes to the same bytes.
        let mut keyed: Vec<&CompletedPut> = self.keyed.values().collect();
        keyed.sort_unstable_by(|a, b| key_of(a).cmp(key_of(b)));
        write_completed_list(&mut w, &keyed);
        Ok(Zeroizing::new(w.finish()))
    }

    fn decode(bytes: &[u8]) -> core::result::Result<Self, DecodeError> {
        let version = match bytes.get(4) {
            Some(&VERSION_2) => VERSION_2,
            Some(&VERSION_3) => VERSION_3,
            Some(&VERSION_4) => VERSION_4,
            _ => VERSION,
        };
        let mut r = Reader::new(bytes, MAGIC, version)?;
        let generation = if version == VERSION_2 { 0 } else { r.u64()? };
        let n = r.count("partitions", MAX_PARTITIONS, 37)?;
        let mut partitions: Vec<PartitionEntry> = Vec::with_capacity(n);
        for _ in 0..n {
            let policy = r.array()?;
            let published = flag(&mut r)?;
            let encoded = r.bytes("partition", MAX_PARTITION_BYTES)?;
            if partitions.iter().any(|p| p.policy == policy) {
                return Err(DecodeError::Inconsistent("two partitions for one policy"));
            }
            let partition = OwnerPartition::from_bytes(encoded).map_err(|e| match e {
                crate::index::Error::Decode(d) => d,
                _ => DecodeError::Inconsistent("undecodable partition"),
            })?;
            partitions.push(PartitionEntry {
                policy,
                id: *partition.id(),
                published,
                partition: Some(partition),
                dirty: Dirty::Clean,
            });
        }
        let current = version == VERSION || version == VERSION_4;
        let (pending_after, pending) = read_pending(&mut r, current, version == VERSION)?;
        let (recovered, keyed) = if current {
            let recovered = read_completed_list(&mut r, MAX_RECOVERED)?;
            let mut keyed = HashMap::new();
            for completed in read_completed_list(&mut r, MAX_KEYED)? {
                if let PutIdentity::Key { key, .. } = &completed.identity
                    && keyed.insert(key.clone(), completed).is_some()
                {
                    return Err(DecodeError::Inconsistent("two keyed puts with one key"));
                }
            }
            (recovered, keyed)
        } else {
            (Vec::new(), HashMap::new())
        };
        r.finish()?;
        Ok(Self {
            partitions,
            pending,
            pending_after,
            recovered,
            recovered_changed: false,
            keyed,
            keyed_added: Vec::new(),
            files: Files {
                generation,
                ..Files::default()
            },
        })
    }
}

/// The pending section; `identities`: with each record's identity and attachments
/// (from base version 4 and log record version 2 on).
fn read_pending(
    r: &mut Reader<'_>,
    identities: bool,
    subjects: bool,
) -> core::result::Result<(u64, Vec<PendingPut>), DecodeError> {
    let pending_after = r.u64()?;
    let m = r.count("pending records", MAX_PENDING, 72)?;
    let mut pending = Vec::with_capacity(m);
    for _ in 0..m {
        let manifest_cid = r.str("manifest CID", MAX_CID_TEXT)?.to_owned();
        let capsule_policy = r.array()?;
        let policy = r.array()?;
        let k = r.count("keywords", crate::MAX_KEYWORDS, 4)?;
        let mut keywords = Vec::with_capacity(k);
        for _ in 0..k {
            keywords.push(r.str("keyword", MAX_KEYWORD_TEXT)?.to_owned());
        }
        let (identity, attachments) = if identities {
            (read_identity(r)?, read_attachments(r)?)
        } else {
            (None, Vec::new())
        };
        let subject = if subjects && flag(r)? {
            Some(Address::from(r.array::<20>()?))
        } else {
            None
        };
        pending.push(PendingPut {
            manifest_cid,
            capsule_policy,
            policy,
            keywords,
            identity,
            attachments,
            subject,
        });
    }
    if pending.is_empty() && pending_after != 0 {
        return Err(DecodeError::Inconsistent(
            "record count without a pending put",
        ));
    }
    Ok((pending_after, pending))
}

/// The idempotency key of a keyed put ("" for others).
fn key_of(completed: &CompletedPut) -> &str {
    match &completed.identity {
        PutIdentity::Key { key, .. } => key,
        PutIdentity::Content(_) => "",
    }
}

fn write_identity(w: &mut Writer, identity: Option<&PutIdentity>) {
    match identity {
        None => {
            w.u8(0);
        }
        Some(PutIdentity::Content(digest)) => {
            w.u8(1).raw(digest);
        }
        Some(PutIdentity::Key { key, description }) => {
            w.u8(2).str(key).raw(description);
        }
    }
}

fn read_identity(r: &mut Reader<'_>) -> core::result::Result<Option<PutIdentity>, DecodeError> {
    Ok(match r.u8()? {
        0 => None,
        1 => Some(PutIdentity::Content(r.array()?)),
        2 => {
            let key = r.str("idempotency key", crate::MAX_IDEMPOTENCY_KEY_LEN)?;
            if key.is_empty() {
                return Err(DecodeError::Inconsistent("empty idempotency key"));
            }
            Some(PutIdentity::Key {
                key: key.to_owned(),
                description: r.array()?,
            })
        }
        _ => return Err(DecodeError::Inconsistent("unknown put identity")),
    })
}

fn write_attachments(w: &mut Writer, attachments: &[AttachmentInfo]) {
    w.count(attachments.len());
    for a in attachments {
        w.str(&a.name).str(&a.content_type).u64(a.size).str(&a.cid);
    }
}

fn read_attachments(r: &mut Reader<'_>) -> core::result::Result<Vec<AttachmentInfo>, DecodeError> {
    let n = r.count("attachments", MAX_ATTACHMENTS, 20)?;
    let mut attachments = Vec::with_capacity(n);
    for _ in 0..n {
        attachments.push(AttachmentInfo {
            name: r.str("attachment name", MAX_NAME_TEXT)?.to_owned(),
            content_type: r.str("content type", MAX_NAME_TEXT)?.to_owned(),
            size: r.u64()?,
            cid: r.str("attachment CID", MAX_CID_TEXT)?.to_owned(),
        });
    }
    Ok(attachments)
}

fn write_completed_list(w: &mut Writer, list: &[&CompletedPut]) {
    w.count(list.len());
    for c in list {
        write_identity(w, Some(&c.identity));
        w.u64(c.record).str(&c.manifest_cid);
        write_attachments(w, &c.attachments);
        match &c.shard_cid {
            Some(shard) => w.u8(1).str(shard),
            None => w.u8(0),
        };
    }
}

fn read_completed_list(
    r: &mut Reader<'_>,
    limit: usize,
) -> core::result::Result<Vec<CompletedPut>, DecodeError> {
    let n = r.count("completed puts", limit, 47)?;
    let mut list = Vec::with_capacity(n.min(1 << 16));
    for _ in 0..n {
        let identity = read_identity(r)?.ok_or(DecodeError::Inconsistent(
            "a completed put without identity",
        ))?;
        let record = r.u64()?;
        let manifest_cid = r.str("manifest CID", MAX_CID_TEXT)?.to_owned();
        let attachments = read_attachments(r)?;
        let shard_cid = if flag(r)? {
            Some(r.str("shard CID", MAX_CID_TEXT)?.to_owned())
        } else {
            None
        };
        list.push(CompletedPut {
            identity,
            record,
            manifest_cid,
            attachments,
            shard_cid,
        });
    }
    Ok(list)
}

fn flag(r: &mut Reader<'_>) -> core::result::Result<bool, DecodeError> {
    match r.u8()? {
        0 => Ok(false),
        1 => Ok(true),
        _ => Err(DecodeError::Inconsistent("flag is neither 0 nor 1")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::Keyword;
    use crate::index::sse::Partition;
    use rand_core::OsRng;

    const POLICY: &str = "role:doctor and dept:cardiology";

    fn sample() -> OwnerState {
        let owner = Address::repeat_byte(7);
        let policy: Policy = POLICY.parse().unwrap();
        let mut partition = OwnerPartition::create(
            Partition::new(owner.as_slice(), policy, 3).unwrap(),
            &mut OsRng,
        );
        let kw = Keyword::icd10("I10").unwrap();
        let record = crate::index::RecordRef::new([1; 32]).unwrap();
        partition.batch([(&kw, record)]).unwrap();
        let mut state = OwnerState::default();
        state.set_partition(PartitionSlot {
            partition,
            published: true,
        });
        state.pending = vec![
            PendingPut {
                manifest_cid: "bafy-manifest".into(),
                capsule_policy: [2; 32],
                policy: [3; 32],
                keywords: vec!["icd10:i10".into(), "term:asthma".into()],
                identity: Some(PutIdentity::Key {
                    key: "doc-17".into(),
                    description: [5; 32],
                }),
                attachments: vec![attachment("ecg.pdf")],
                subject: Some(Address::repeat_byte(0x5a)),
            },
            PendingPut {
                manifest_cid: "bafy-manifest-2".into(),
                capsule_policy: [4; 32],
                policy: [3; 32],
                keywords: vec![],
                identity: Some(PutIdentity::Content([6; 32])),
                attachments: vec![],
                subject: None,
            },
        ];
        state.pending_after = 41;
        state.add_recovered(vec![completed(PutIdentity::Content([7; 32]), 40)]);
        state.add_keyed(completed(
            PutIdentity::Key {
                key: "doc-9".into(),
                description: [8; 32],
            },
            39,
        ));
        state
    }

    fn attachment(name: &str) -> AttachmentInfo {
        AttachmentInfo {
            name: name.into(),
            content_type: "application/pdf".into(),
            size: 1234,
            cid: "bafy-attachment".into(),
        }
    }

    fn completed(identity: PutIdentity, record: u64) -> CompletedPut {
        CompletedPut {
            identity,
            record,
            manifest_cid: format!("bafy-manifest-{record}"),
            attachments: vec![attachment("scan.dcm")],
            shard_cid: record.is_multiple_of(2).then(|| "bafy-shard".into()),
        }
    }

    /// `state` in the base format of version 2 or 3 (no identities, no recovered or
    /// keyed puts).
    fn encode_old(state: &OwnerState, version: u8) -> Vec<u8> {
        let mut w = Writer::new(MAGIC, version);
        if version == VERSION_3 {
            w.u64(state.files.generation);
        }
        w.count(state.partitions.len());
        for p in &state.partitions {
            w.raw(&p.policy)
                .u8(u8::from(p.published))
                .bytes(&p.partition.as_ref().unwrap().to_bytes());
        }
        write_pending_v1(&mut w, state);
        w.finish()
    }

    /// The state as a base of version 4 (pending records without subjects).
    fn encode_v4(state: &OwnerState, generation: u64) -> Vec<u8> {
        let mut w = Writer::new(MAGIC, VERSION_4);
        w.u64(generation).count(state.partitions.len());
        for p in &state.partitions {
            w.raw(&p.policy)
                .u8(u8::from(p.published))
                .bytes(&p.partition.as_ref().unwrap().to_bytes());
        }
        w.u64(state.pending_after).count(state.pending.len());
        for p in &state.pending {
            w.str(&p.manifest_cid)
                .raw(&p.capsule_policy)
                .raw(&p.policy)
                .count(p.keywords.len());
            for k in &p.keywords {
                w.str(k);
            }
            write_identity(&mut w, p.identity.as_ref());
            write_attachments(&mut w, &p.attachments);
        }
        write_completed_list(&mut w, &state.recovered.iter().collect::<Vec<_>>());
        let mut keyed: Vec<&CompletedPut> = state.keyed.values().collect();
        keyed.sort_unstable_by(|a, b| key_of(a).cmp(key_of(b)));
        write_completed_list(&mut w, &keyed);
        w.finish()
    }

    #[test]
    fn version_4_is_read_without_subjects() {
        let state = sample();
        let old = OwnerState::decode(&encode_v4(&state, 5)).unwrap();
        assert_eq!(old.files.generation, 5);
        assert!(old.pending.iter().all(|p| p.subject.is_none()));
        assert!(old.pending.iter().all(|p| p.identity.is_some()));
        assert_eq!(old.recovered(), state.recovered());
        let mut upgraded = OwnerState::decode(&state.encode(5).unwrap()).unwrap();
        assert!(upgraded.pending[0].subject.is_some());
        for p in &mut upgraded.pending {
            p.subject = None;
        }
        assert_eq!(old.encode(5).unwrap(), upgraded.encode(5).unwrap());
        // Re-encoded, it is a version 5 base.
        assert_eq!(old.encode(5).unwrap()[4], VERSION);
    }

    fn write_pending_v1(w: &mut Writer, state: &OwnerState) {
        w.u64(state.pending_after).count(state.pending.len());
        for p in &state.pending {
            w.str(&p.manifest_cid)
                .raw(&p.capsule_policy)
                .raw(&p.policy)
                .count(p.keywords.len());
            for k in &p.keywords {
                w.str(k);
            }
        }
    }

    fn hash() -> [u8; 32] {
        policy_hash(&POLICY.parse().unwrap()).0
    }

    /// The state as a base of generation 0 (for comparisons).
    fn bytes(state: &OwnerState) -> Vec<u8> {
        state.encode(0).unwrap().to_vec()
    }

    /// One put as the vault makes it: the intent saved, the partition advanced by a batch
    /// with `keyword`, the intent cleared and the state saved again.
    fn put(state: &mut OwnerState, dir: &Path, owner: Address, keyword: &str, i: u32) {
        put_merging(state, dir, owner, keyword, i, &mut Vec::new());
    }

    /// [`put`], merging the newest live shards (kept in `shards`) as the vault does.
    fn put_merging(
        state: &mut OwnerState,
        dir: &Path,
        owner: Address,
        keyword: &str,
        i: u32,
        shards: &mut Vec<crate::index::sse::Shard>,
    ) {
        state.pending = vec![PendingPut {
            manifest_cid: format!("bafy-{i}"),
            capsule_policy: [2; 32],
            policy: hash(),
            keywords: vec![keyword.into()],
            identity: Some(PutIdentity::Content([1; 32])),
            attachments: Vec::new(),
            subject: None,
        }];
        state.pending_after = u64::from(i) + 1;
        state.save(dir, owner).unwrap();
        let mut slot = state.take_partition(&hash()).unwrap();
        let mut r = [9; 32];
        r[..4].copy_from_slice(&i.to_be_bytes());
        let record = crate::index::RecordRef::new(r).unwrap();
        let shard = slot
            .partition
            .batch([(&Keyword::term(keyword).unwrap(), record)])
            .unwrap();
        shards.push(shard);
        let span = slot.partition.merge_span();
        // (A partition whose older shards are not in `shards` is not merged.)
        if span > 1 && shards.len() >= span {
            let start = shards.len() - span;
            let merged =
                crate::index::sse::Shard::merge(&shards[start..].iter().collect::<Vec<_>>())
                    .unwrap();
            slot.partition.record_merge(span, &merged).unwrap();
            shards.truncate(start);
            shards.push(merged);
        }
        state.set_partition(slot);
        state.pending.clear();
        state.pending_after = 0;
        state.save(dir, owner).unwrap();
    }

    #[test]
    fn round_trips_and_rejects_damage() {
        let dir = tempfile::tempdir().unwrap();
        let owner = Address::repeat_byte(7);
        assert!(
            OwnerState::load(dir.path(), owner)
                .unwrap()
                .pending
                .is_empty()
        );
        let mut state = sample();
        state.save(dir.path(), owner).unwrap();
        let loaded = OwnerState::load(dir.path(), owner).unwrap();
        assert_eq!(bytes(&loaded), bytes(&state));
        assert!(loaded.is_current(dir.path(), owner));
        let policy: Policy = POLICY.parse().unwrap();
        assert_eq!(loaded.is_published(&policy), Some(true));
        assert_eq!(loaded.is_published(&"role:nurse".parse().unwrap()), None);
        let partition = loaded.current(&policy).unwrap();
        assert_eq!(partition.next_shard_seq(), 1);
        assert_eq!(partition.count(&Keyword::icd10("I10").unwrap()), 1);
        assert!(loaded.current(&"role:nurse".parse().unwrap()).is_none());

        let bytes = state.encode(5).unwrap();
        for len in 0..bytes.len() {
            assert!(OwnerState::decode(&bytes[..len]).is_err(), "prefix {len}");
        }
        let mut long = bytes.to_vec();
        long.push(0);
        assert!(matches!(
            OwnerState::decode(&long),
            Err(DecodeError::TrailingBytes(1))
        ));
        let mut bad_flag = bytes.to_vec();
        // magic, version, generation, count, policy hash: the published flag follows.
        bad_flag[4 + 1 + 8 + 4 + 32] = 2;
        assert!(OwnerState::decode(&bad_flag).is_err());
        // Versions 3 and 2 (no generation: read as generation 0) are read, without
        // identities, recovered or keyed puts.
        for version in [VERSION_3, VERSION_2] {
            let old = OwnerState::decode(&encode_old(&state, version)).unwrap();
            let generation = if version == VERSION_2 { 0 } else { 1 };
            assert_eq!(old.files.generation, generation);
            assert!(old.recovered().is_empty() && old.keyed("doc-9").is_none());
            assert_eq!(old.pending.len(), 2);
            assert!(old.pending.iter().all(|p| p.identity.is_none()));
            assert_eq!(old.pending[0].keywords, state.pending[0].keywords);
            let mut upgraded = OwnerState::decode(&state.encode(5).unwrap()).unwrap();
            for p in &mut upgraded.pending {
                p.identity = None;
                p.attachments.clear();
                p.subject = None;
            }
            upgraded.recovered.clear();
            upgraded.keyed.clear();
            assert_eq!(old.encode(5).unwrap(), upgraded.encode(5).unwrap());
        }
        assert_eq!(
            loaded.pending.iter().map(|p| p.subject).collect::<Vec<_>>(),
            vec![Some(Address::repeat_byte(0x5a)), None],
            "pending subjects round-trip"
        );
        assert_eq!(loaded.recovered(), sample().recovered());
        assert_eq!(
            loaded.keyed("doc-9").map(|c| c.record),
            Some(39),
            "keyed puts round-trip"
        );
        // Version 1 (one pending record, partitions without live shards) is refused.
        let mut v1 = bytes.to_vec();
        v1[4] = 1;
        assert!(matches!(
            OwnerState::decode(&v1),
            Err(DecodeError::UnsupportedVersion(1))
        ));
    }

    /// Recovered and keyed puts are appended to the log when they change (and only
    /// then), replayed on load, and a log record of version 1 still applies.
    #[test]
    fn retry_records_survive_the_log() {
        let dir = tempfile::tempdir().unwrap();
        let owner = Address::repeat_byte(7);
        let mut state = sample();
        state.save(dir.path(), owner).unwrap();
        let quiet = state.files.log_len;
        state.save(dir.path(), owner).unwrap();
        let unchanged = state.files.log_len - quiet;
        let key = |k: &str| PutIdentity::Key {
            key: k.into(),
            description: [9; 32],
        };
        state.add_keyed(completed(key("doc-10"), 50));
        state.add_recovered(vec![
            completed(key("doc-10"), 50),
            completed(PutIdentity::Content([3; 32]), 51),
        ]);
        let before = state.files.log_len;
        state.save(dir.path(), owner).unwrap();
        assert!(
            state.files.log_len - before > unchanged,
            "the changes are logged"
        );
        let loaded = OwnerState::load(dir.path(), owner).unwrap();
        assert_eq!(loaded.recovered().len(), 3);
        assert_eq!(loaded.keyed("doc-10").map(|c| c.record), Some(50));
        assert_eq!(loaded.keyed("doc-9").map(|c| c.record), Some(39));
        assert_eq!(bytes(&loaded), bytes(&state));
        // A claim is logged too.
        state.claim_recovered(&[0, 2]);
        state.save(dir.path(), owner).unwrap();
        let loaded = OwnerState::load(dir.path(), owner).unwrap();
        assert_eq!(loaded.recovered(), [completed(key("doc-10"), 50)]);
        // At most MAX_RECOVERED are kept, the newest.
        state.add_recovered(
            (0..MAX_RECOVERED as u64 + 5)
                .map(|i| completed(PutIdentity::Content([4; 32]), 100 + i))
                .collect(),
        );
        assert_eq!(state.recovered().len(), MAX_RECOVERED);
        assert_eq!(state.recovered()[0].record, 105);
        // A record of log version 1 (an older medseal) applies: its pending section
        // replaces the intent, and identities, recovered and keyed puts are untouched.
        state.save(dir.path(), owner).unwrap();
        let mut old = Writer::new(RECORD_MAGIC, RECORD_VERSION_1);
        let intent = OwnerState {
            pending: vec![PendingPut {
                identity: None,
                attachments: Vec::new(),
                ..sample().pending[1].clone()
            }],
            pending_after: 77,
            ..OwnerState::default()
        };
        write_pending_v1(&mut old, &intent);
        old.count(0);
        let payload = old.finish();
        state.append(dir.path(), owner, &payload).unwrap();
        let loaded = OwnerState::load(dir.path(), owner).unwrap();
        assert_eq!(loaded.pending_after, 77);
        assert_eq!(loaded.pending.len(), 1);
        assert!(loaded.pending[0].identity.is_none());
        assert_eq!(loaded.recovered().len(), MAX_RECOVERED);
        assert_eq!(loaded.keyed("doc-10").map(|c| c.record), Some(50));
    }

    /// A log record of version 2 (identities and attachments, no subjects) applies: its
    /// pending puts come back without subjects, and its keyed puts are added.
    #[test]
    fn a_version_2_log_record_applies_without_subjects() {
        let dir = tempfile::tempdir().unwrap();
        let owner = Address::repeat_byte(7);
        let mut state = sample();
        state.save(dir.path(), owner).unwrap();
        let intent = sample().pending;
        assert!(intent[0].subject.is_some(), "the sample has a subject");
        let mut old = Writer::new(RECORD_MAGIC, RECORD_VERSION_2);
        old.u64(88).count(intent.len());
        for p in &intent {
            old.str(&p.manifest_cid)
                .raw(&p.capsule_policy)
                .raw(&p.policy)
                .count(p.keywords.len());
            for k in &p.keywords {
                old.str(k);
            }
            write_identity(&mut old, p.identity.as_ref());
            write_attachments(&mut old, &p.attachments);
        }
        old.count(0).u8(0);
        let keyed = completed(
            PutIdentity::Key {
                key: "doc-v2".into(),
                description: [5; 32],
            },
            60,
        );
        write_completed_list(&mut old, &[&keyed]);
        let payload = old.finish();
        state.append(dir.path(), owner, &payload).unwrap();
        let mut loaded = OwnerState::load(dir.path(), owner).unwrap();
        assert_eq!(loaded.pending_after, 88);
        assert_eq!(loaded.pending.len(), intent.len());
        for (got, sent) in loaded.pending.iter().zip(&intent) {
            assert_eq!(got.subject, None);
            assert_eq!(got.identity, sent.identity);
            assert_eq!(got.attachments, sent.attachments);
            assert_eq!(got.keywords, sent.keywords);
        }
        assert_eq!(loaded.keyed("doc-v2").map(|c| c.record), Some(60));
        assert_eq!(loaded.keyed("doc-9").map(|c| c.record), Some(39));
        // The same record with a byte of subject appended (a version 3 layout under a
        // version 2 header) is refused, not misread.
        let mut long = payload.clone();
        long.push(0);
        assert!(loaded.apply(&long).is_err());
    }

    #[test]
    fn refuses_the_legacy_json_state() {
        let dir = tempfile::tempdir().unwrap();
        let owner = Address::repeat_byte(9);
        let legacy = legacy_path(dir.path(), owner);
        std::fs::create_dir_all(legacy.parent().unwrap()).unwrap();
        std::fs::write(&legacy, b"{}").unwrap();
        assert!(matches!(
            OwnerState::load(dir.path(), owner),
            Err(Error::Corrupt { .. })
        ));
    }

    #[test]
    #[cfg(unix)]
    fn is_written_as_a_secret() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let owner = Address::repeat_byte(7);
        let mut state = sample();
        state.save(dir.path(), owner).unwrap();
        put(&mut state, dir.path(), owner, "x", 1);
        for path in [state_path(dir.path(), owner), log_path(dir.path(), owner)] {
            let mode = std::fs::metadata(path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    /// Saves append to the log; every prefix of the log loads as the state after the last
    /// complete record in it, never behind it; the next save cuts a torn tail away.
    #[test]
    fn a_torn_log_tail_loads_the_last_complete_state() {
        let dir = tempfile::tempdir().unwrap();
        let owner = Address::repeat_byte(7);
        let mut state = sample();
        state.pending.clear();
        state.pending_after = 0;
        state.save(dir.path(), owner).unwrap();
        let mut snapshots = vec![(state.files.log_len, bytes(&state))];
        for i in 0..6 {
            put(&mut state, dir.path(), owner, &format!("case-{i}"), i);
            snapshots.push((state.files.log_len, bytes(&state)));
        }
        assert_eq!(state.files.generation, 1, "no compaction yet");
        let log = std::fs::read(log_path(dir.path(), owner)).unwrap();
        assert_eq!(log.len() as u64, state.files.log_len);
        let expected = |len: usize| {
            snapshots
                .iter()
                .rev()
                .find(|(at, _)| *at as usize <= len)
                .map(|(_, b)| b.clone())
                .unwrap()
        };
        // The intent records in between are states too: compare the partition only
        // where a snapshot was taken, and never behind the previous snapshot.
        // Where each record of the log ends.
        let mut ends = Vec::new();
        let mut at = LOG_HEADER as usize;
        while at < log.len() {
            let len = u32::from_be_bytes(log[at..at + 4].try_into().unwrap()) as usize;
            at += 4 + len + CHECKSUM;
            ends.push(at);
        }
        for cut in LOG_HEADER as usize..=log.len() {
            std::fs::write(log_path(dir.path(), owner), &log[..cut]).unwrap();
            let loaded = OwnerState::load(dir.path(), owner).unwrap();
            if snapshots.iter().any(|(at, _)| *at as usize == cut) {
                assert_eq!(bytes(&loaded), expected(cut), "cut {cut}");
            }
            let floor = OwnerPartition::from_bytes(
                &OwnerState::decode(&expected(cut)).unwrap().partitions[0]
                    .partition
                    .as_ref()
                    .unwrap()
                    .to_bytes(),
            )
            .unwrap();
            loaded
                .current_by_hash(&hash())
                .unwrap()
                .check_successor(&floor)
                .unwrap();
            // Zeros after a complete record are a torn tail too.
            let mut zeros = log[..cut].to_vec();
            zeros.extend_from_slice(&[0; 40]);
            std::fs::write(log_path(dir.path(), owner), &zeros).unwrap();
            let padded = OwnerState::load(dir.path(), owner).unwrap();
            // Unless the bytes cut off were zeros themselves (e.g. a checksum ending in
            // 0x00): then the zeros restore the record, which loads complete.
            let record_end = ends.iter().copied().find(|&e| e >= cut).unwrap_or(cut);
            let restored = record_end - cut <= 40 && log[cut..record_end].iter().all(|&b| b == 0);
            if !restored {
                assert_eq!(bytes(&padded), bytes(&loaded), "cut {cut}");
            }
        }
        // Cut in the middle of the last record: the next save cuts it away and appends.
        std::fs::write(log_path(dir.path(), owner), &log[..log.len() - 5]).unwrap();
        let mut loaded = OwnerState::load(dir.path(), owner).unwrap();
        put(&mut loaded, dir.path(), owner, "after", 99);
        let reloaded = OwnerState::load(dir.path(), owner).unwrap();
        assert_eq!(bytes(&reloaded), bytes(&loaded));
        assert_eq!(
            reloaded
                .current_by_hash(&hash())
                .unwrap()
                .count(&Keyword::term("after").unwrap()),
            1
        );
    }

    #[test]
    fn a_damaged_record_is_refused_unless_it_is_the_tail() {
        let dir = tempfile::tempdir().unwrap();
        let owner = Address::repeat_byte(7);
        let mut state = sample();
        state.save(dir.path(), owner).unwrap();
        put(&mut state, dir.path(), owner, "a", 1);
        let middle = state.files.log_len as usize - 3;
        put(&mut state, dir.path(), owner, "b", 2);
        let log = std::fs::read(log_path(dir.path(), owner)).unwrap();
        // A flipped byte in an earlier record: refused, not skipped.
        let mut damaged = log.clone();
        damaged[middle] ^= 1;
        std::fs::write(log_path(dir.path(), owner), &damaged).unwrap();
        assert!(matches!(
            OwnerState::load(dir.path(), owner),
            Err(Error::Corrupt { .. })
        ));
        // In the last record: a torn tail, the state before it.
        let mut damaged = log.clone();
        let last = damaged.len() - 3;
        damaged[last] ^= 1;
        std::fs::write(log_path(dir.path(), owner), &damaged).unwrap();
        let loaded = OwnerState::load(dir.path(), owner).unwrap();
        assert_eq!(loaded.pending.len(), 1, "the intent of the second put");
        // A record that decodes but moves a counter back is refused.
        std::fs::write(log_path(dir.path(), owner), &log).unwrap();
        let mut fresh = OwnerState::load(dir.path(), owner).unwrap();
        let payload = {
            let mut old = sample();
            old.pending.clear();
            old.pending_after = 0;
            let mut slot = old.take_partition(&hash()).unwrap();
            slot.partition =
                OwnerPartition::from_bytes(&fresh.current_by_hash(&hash()).unwrap().to_bytes())
                    .unwrap();
            old.set_partition(slot);
            old.partitions[0].dirty = Dirty::Changed;
            old.record()
        };
        // The current state is not behind itself: the record applies.
        fresh.apply(&payload).unwrap();
        let mut behind = OwnerState::load(dir.path(), owner).unwrap();
        let mut slot = behind.take_partition(&hash()).unwrap();
        slot.partition
            .batch([(
                &Keyword::term("c").unwrap(),
                crate::index::RecordRef::new([5; 32]).unwrap(),
            )])
            .unwrap();
        behind.set_partition(slot);
        assert!(matches!(behind.apply(&payload), Err(Error::Corrupt { .. })));
    }

    /// A crash between writing the new base and replacing the log leaves the old
    /// generation's log: ignored, and replaced by the next save.
    #[test]
    fn an_old_generation_log_is_ignored_after_compaction() {
        let dir = tempfile::tempdir().unwrap();
        let owner = Address::repeat_byte(7);
        let mut state = sample();
        state.save(dir.path(), owner).unwrap();
        for i in 0..3 {
            put(&mut state, dir.path(), owner, &format!("k{i}"), i);
        }
        let old_log = std::fs::read(log_path(dir.path(), owner)).unwrap();
        state.compact(dir.path(), owner).unwrap();
        assert_eq!(state.files.generation, 2);
        std::fs::write(log_path(dir.path(), owner), &old_log).unwrap();
        let mut loaded = OwnerState::load(dir.path(), owner).unwrap();
        assert_eq!(bytes(&loaded), bytes(&state));
        assert_eq!(loaded.files.log_len, 0);
        put(&mut loaded, dir.path(), owner, "k9", 9);
        put(&mut state, dir.path(), owner, "k9", 9);
        let reloaded = OwnerState::load(dir.path(), owner).unwrap();
        assert_eq!(bytes(&reloaded), bytes(&state));
        let header = std::fs::read(log_path(dir.path(), owner)).unwrap();
        assert_eq!(&header[..LOG_HEADER as usize], log_header(2).as_slice());
    }

    /// Many puts, each with a keyword of its own: the bytes written per save stay
    /// bounded while the state grows, and compactions are amortised over the log.
    #[test]
    fn bytes_written_per_put_stay_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let owner = Address::repeat_byte(7);
        let mut state = OwnerState::default();
        let partition = Partition::new(owner.as_slice(), POLICY.parse().unwrap(), 0).unwrap();
        state.set_partition(PartitionSlot {
            partition: OwnerPartition::create(partition, &mut OsRng),
            published: true,
        });
        state.save(dir.path(), owner).unwrap();
        let puts = 2000u32;
        let (mut log_bytes, mut base_bytes, mut records) = (0u64, 0u64, Vec::new());
        let mut shards = Vec::new();
        for i in 0..puts {
            let (generation, log_before) = (state.files.generation, state.files.log_len);
            put_merging(
                &mut state,
                dir.path(),
                owner,
                &format!("patient-{i}"),
                i,
                &mut shards,
            );
            if state.files.generation == generation {
                let grown = state.files.log_len - log_before;
                records.push(grown / 2);
                log_bytes += grown;
            } else {
                base_bytes += state.files.base_len.unwrap();
            }
        }
        let first = records[..20].iter().max().copied().unwrap();
        let last = records[records.len() - 20..].iter().max().copied().unwrap();
        // The live shards grow logarithmically (16 bytes each): nothing else.
        assert!(
            last <= first + 16 * 12,
            "records grew from {first} to {last}"
        );
        let base = state.files.base_len.unwrap();
        assert!(
            base > 40 * last,
            "the state ({base}) outgrew the records ({last})"
        );
        // Each compaction follows at least max(base, COMPACT_MIN) bytes of log.
        let compactions = state.files.generation - 1;
        assert!(compactions >= 1 && compactions <= log_bytes / COMPACT_MIN + 1);
        assert!(
            base_bytes <= log_bytes + base,
            "{base_bytes} vs {log_bytes}"
        );
        // And the state loads back to the same.
        let loaded = OwnerState::load(dir.path(), owner).unwrap();
        assert_eq!(bytes(&loaded), bytes(&state));
        assert!(state.is_current(dir.path(), owner));
    }
}
