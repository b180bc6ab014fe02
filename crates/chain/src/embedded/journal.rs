//! Append-only, checksummed journal file.
//!
//! Layout: an 8-byte magic header `MSLJRNL1`, then records of
//!
//! ```text
//! u32 little-endian payload length | payload | keccak256(length bytes || payload) (32 bytes)
//! ```
//!
//! Every append is followed by `fsync` (`sync_data`), so a record whose append returned `Ok` is
//! durable. A crash during an append can leave a *torn tail*: an incomplete final record, or a
//! final record whose checksum does not match (garbage or zero fill after power loss). On open
//! the torn tail is cut off (with a `tracing::warn!`) and every complete record before it is
//! kept. An invalid record that is followed by an intact one (or by more than one record's worth
//! of bytes) cannot come from an interrupted append and is reported as corruption instead of
//! being dropped.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use alloy::primitives::keccak256;

use crate::error::LedgerError;
use crate::error::LedgerResult;

/// File magic (also the format version).
pub(crate) const MAGIC: &[u8; 8] = b"MSLJRNL1";
/// Bytes of the length prefix.
const LEN_BYTES: usize = 4;
/// Bytes of the checksum suffix.
const SUM_BYTES: usize = 32;
/// Largest accepted payload (a block with one transaction is well under 1 KiB for typical
/// calls; larger transactions are refused rather than journaled).
pub(crate) const MAX_PAYLOAD: usize = 1 << 20;

/// What [`Journal::open`] found.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Recovery {
    /// Bytes of torn tail that were cut off (0 if the file was clean).
    pub(crate) dropped_bytes: u64,
}

/// One intact record found by [`Journal::open_from`]: its payload and its byte range in the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct JournalRecord {
    /// The payload.
    pub(crate) payload: Vec<u8>,
    /// Offset of the record's first byte (its length prefix).
    pub(crate) start: u64,
    /// Offset right after the record's checksum.
    pub(crate) end: u64,
}

/// An open journal, positioned for appending.
#[derive(Debug)]
pub(crate) struct Journal {
    file: File,
    path: PathBuf,
    /// Length of the valid content (where the next record goes).
    len: u64,
    /// Set if an append failed and the file could not be restored to `len`.
    broken: bool,
}

fn checksum(len_bytes: &[u8], payload: &[u8]) -> [u8; 32] {
    let mut buf = Vec::with_capacity(len_bytes.len() + payload.len());
    buf.extend_from_slice(len_bytes);
    buf.extend_from_slice(payload);
    keccak256(&buf).0
}

/// Encodes one record (length, payload, checksum).
pub(crate) fn encode_record(payload: &[u8]) -> Vec<u8> {
    let len_bytes = (payload.len() as u32).to_le_bytes();
    let mut out = Vec::with_capacity(LEN_BYTES + payload.len() + SUM_BYTES);
    out.extend_from_slice(&len_bytes);
    out.extend_from_slice(payload);
    out.extend_from_slice(&checksum(&len_bytes, payload));
    out
}

/// Outcome of parsing the record at one offset.
enum Parsed {
    /// A valid record: payload and total encoded size.
    Record(Vec<u8>, usize),
    /// The record is incomplete or its checksum fails.
    Invalid,
}

fn parse_record(bytes: &[u8]) -> Parsed {
    let Some(len_bytes) = bytes.get(..LEN_BYTES) else {
        return Parsed::Invalid;
    };
    let mut len_arr = [0u8; LEN_BYTES];
    len_arr.copy_from_slice(len_bytes);
    let len = u32::from_le_bytes(len_arr) as usize;
    if len == 0 || len > MAX_PAYLOAD {
        return Parsed::Invalid;
    }
    let total = LEN_BYTES + len + SUM_BYTES;
    let (Some(payload), Some(sum)) = (
        bytes.get(LEN_BYTES..LEN_BYTES + len),
        bytes.get(LEN_BYTES + len..total),
    ) else {
        return Parsed::Invalid;
    };
    if checksum(len_bytes, payload) != sum {
        return Parsed::Invalid;
    }
    Parsed::Record(payload.to_vec(), total)
}

/// Whether the invalid record at the start of `rest` can be the remains of an interrupted
/// append. An interrupted append is the last thing in the file and at most one record long
/// (followed at most by zero fill); corruption in the middle of the journal is followed by
/// intact records. So: torn iff `rest` is all zeros, or it is at most one record long and no
/// intact record starts anywhere inside it.
fn is_torn_tail(rest: &[u8]) -> bool {
    if rest.iter().all(|b| *b == 0) {
        return true;
    }
    if rest.len() > LEN_BYTES + MAX_PAYLOAD + SUM_BYTES {
        return false;
    }
    !(1..rest.len()).any(|at| {
        rest.get(at..)
            .is_some_and(|tail| matches!(parse_record(tail), Parsed::Record(..)))
    })
}

/// The records found in the bytes of a journal after its header.
#[derive(Debug)]
pub(crate) struct Scanned {
    /// Every intact record, in order.
    pub(crate) records: Vec<JournalRecord>,
    /// File offset of a torn tail (cut off by [`Journal::open_from`]), if any.
    pub(crate) torn_at: Option<usize>,
    /// File offset where the intact records end (where the next record goes).
    pub(crate) end: usize,
}

/// An invalid record that cannot be a torn tail (intact data follows it).
#[derive(Debug)]
pub(crate) struct CorruptRecord {
    /// How many intact records precede it.
    pub(crate) records_before: usize,
    /// Its file offset.
    pub(crate) offset: usize,
}

/// Parses journal records from `bytes`, which start at file offset `base`: every intact
/// record, then either the end of `bytes` or a torn tail (an interrupted append), else
/// [`CorruptRecord`]. Pure: [`Journal::open_from`] acts on the outcome.
pub(crate) fn scan_records(bytes: &[u8], base: usize) -> Result<Scanned, CorruptRecord> {
    let mut records = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        let rest = bytes.get(at..).unwrap_or_default();
        let offset = base + at;
        match parse_record(rest) {
            Parsed::Record(payload, size) => {
                records.push(JournalRecord {
                    payload,
                    start: offset as u64,
                    end: (offset + size) as u64,
                });
                at += size;
            }
            Parsed::Invalid if is_torn_tail(rest) => {
                return Ok(Scanned {
                    records,
                    torn_at: Some(offset),
                    end: offset,
                });
            }
            Parsed::Invalid => {
                return Err(CorruptRecord {
                    records_before: records.len(),
                    offset,
                });
            }
        }
    }
    Ok(Scanned {
        records,
        torn_at: None,
        end: base + at,
    })
}

impl Journal {
    /// Opens (or creates) the journal at `path`, returns it with every intact record's payload
    /// in order. A torn tail is truncated away and reported in [`Recovery`].
    #[cfg(test)]
    pub(crate) fn open(path: &Path) -> LedgerResult<(Self, Vec<Vec<u8>>, Recovery)> {
        let (journal, records, recovery) = Self::open_from(path, 0)?;
        Ok((
            journal,
            records.into_iter().map(|r| r.payload).collect(),
            recovery,
        ))
    }

    /// Opens (or creates) the journal at `path` and reads the intact records that start at or
    /// after byte offset `from` (0: all of them), which must be a record boundary the caller
    /// has checked (see [`read_record_at`]). Only the bytes from `from` on are read. A torn
    /// tail is truncated away and reported in [`Recovery`].
    pub(crate) fn open_from(
        path: &Path,
        from: u64,
    ) -> LedgerResult<(Self, Vec<JournalRecord>, Recovery)> {
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)?;
        let file_len = file.metadata()?.len();
        let from = from.max(MAGIC.len() as u64);
        if from > MAGIC.len() as u64 && file_len >= from {
            let mut header = [0u8; MAGIC.len()];
            file.read_exact(&mut header)?;
            if &header != MAGIC {
                return Err(LedgerError::Corrupt(format!(
                    "{}: not a medseal chain journal (bad header)",
                    path.display()
                )));
            }
            file.seek(SeekFrom::Start(from))?;
            let mut rest = Vec::new();
            file.read_to_end(&mut rest)?;
            return Self::scan(file, path, rest, from as usize);
        }
        if from > MAGIC.len() as u64 {
            return Err(LedgerError::Corrupt(format!(
                "{}: journal is shorter ({file_len} bytes) than the offset {from} to read from",
                path.display()
            )));
        }
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)?;

        let mut recovery = Recovery::default();
        if bytes.len() < MAGIC.len() {
            // Fresh file, or a crash while writing the header.
            if !MAGIC.starts_with(&bytes) && bytes.iter().any(|b| *b != 0) {
                return Err(LedgerError::Corrupt(format!(
                    "{}: not a medseal chain journal (bad header)",
                    path.display()
                )));
            }
            if !bytes.is_empty() {
                tracing::warn!(
                    path = %path.display(),
                    bytes = bytes.len(),
                    "chain journal: dropping torn header of {} bytes (crash while creating the journal)",
                    bytes.len()
                );
                recovery.dropped_bytes = bytes.len() as u64;
            }
            file.set_len(0)?;
            file.seek(SeekFrom::Start(0))?;
            file.write_all(MAGIC)?;
            file.sync_all()?;
            sync_parent_dir(path);
            let journal = Self {
                file,
                path: path.to_path_buf(),
                len: MAGIC.len() as u64,
                broken: false,
            };
            return Ok((journal, Vec::new(), recovery));
        }
        if bytes.get(..MAGIC.len()) != Some(MAGIC.as_slice()) {
            return Err(LedgerError::Corrupt(format!(
                "{}: not a medseal chain journal (bad header)",
                path.display()
            )));
        }
        let rest = bytes.split_off(MAGIC.len());
        Self::scan(file, path, rest, MAGIC.len())
    }

    /// Parses the records in `bytes`, which start at file offset `base`; cuts a torn tail off.
    fn scan(
        mut file: File,
        path: &Path,
        bytes: Vec<u8>,
        base: usize,
    ) -> LedgerResult<(Self, Vec<JournalRecord>, Recovery)> {
        let mut recovery = Recovery::default();
        let scanned = match scan_records(&bytes, base) {
            Ok(scanned) => scanned,
            Err(corrupt) => {
                return Err(LedgerError::Corrupt(format!(
                    "{}: record {} at offset {} fails its checksum but is followed by more \
                     data (not a torn tail)",
                    path.display(),
                    corrupt.records_before,
                    corrupt.offset
                )));
            }
        };
        let records = scanned.records;
        if let Some(offset) = scanned.torn_at {
            let dropped = base + bytes.len() - offset;
            tracing::warn!(
                path = %path.display(),
                offset,
                dropped_bytes = dropped,
                kept_records = records.len(),
                "chain journal: dropping torn tail of {dropped} bytes at offset {offset} \
                 (incomplete or unchecksummed final record from an interrupted append); \
                 {} intact records kept{}",
                records.len(),
                if base > MAGIC.len() {
                    " after the position read from"
                } else {
                    ""
                }
            );
            recovery.dropped_bytes = dropped as u64;
            file.set_len(offset as u64)?;
            file.sync_all()?;
        }
        let len = scanned.end as u64;
        file.seek(SeekFrom::Start(len))?;
        let journal = Self {
            file,
            path: path.to_path_buf(),
            len,
            broken: false,
        };
        Ok((journal, records, recovery))
    }

    /// Appends one record and makes it durable (`fsync`) before returning; returns the
    /// record's byte range in the file.
    ///
    /// On failure the file is cut back to its previous length, so a failed append never leaves
    /// garbage in front of later records.
    pub(crate) fn append(&mut self, payload: &[u8]) -> LedgerResult<(u64, u64)> {
        if self.broken {
            return Err(LedgerError::Corrupt(format!(
                "{}: an earlier append failed and could not be rolled back; reopen the chain",
                self.path.display()
            )));
        }
        if payload.is_empty() || payload.len() > MAX_PAYLOAD {
            return Err(LedgerError::InvalidTransaction(format!(
                "journal record of {} bytes is out of range",
                payload.len()
            )));
        }
        let record = encode_record(payload);
        let result = self
            .file
            .seek(SeekFrom::Start(self.len))
            .and_then(|_| self.file.write_all(&record))
            .and_then(|()| self.file.sync_data());
        match result {
            Ok(()) => {
                let start = self.len;
                self.len += record.len() as u64;
                Ok((start, self.len))
            }
            Err(error) => {
                let rolled_back = self
                    .file
                    .set_len(self.len)
                    .and_then(|()| self.file.sync_data());
                if rolled_back.is_err() {
                    self.broken = true;
                }
                Err(LedgerError::Io(error))
            }
        }
    }
}

/// Reads the record that occupies exactly the bytes `start..end` of the journal at `path`
/// without modifying the file: `Ok(Some(payload))` if the file has the journal header and an
/// intact record of exactly that size there, `Ok(None)` otherwise (missing file included).
pub(crate) fn read_record_at(path: &Path, start: u64, end: u64) -> LedgerResult<Option<Vec<u8>>> {
    if start < MAGIC.len() as u64
        || end <= start
        || end - start > (LEN_BYTES + MAX_PAYLOAD + SUM_BYTES) as u64
    {
        return Ok(None);
    }
    let mut file = match File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(LedgerError::Io(e)),
    };
    if file.metadata()?.len() < end {
        return Ok(None);
    }
    let mut header = [0u8; MAGIC.len()];
    file.read_exact(&mut header)?;
    if &header != MAGIC {
        return Ok(None);
    }
    let mut bytes = vec![0u8; (end - start) as usize];
    file.seek(SeekFrom::Start(start))?;
    file.read_exact(&mut bytes)?;
    Ok(match parse_record(&bytes) {
        Parsed::Record(payload, size) if size == bytes.len() => Some(payload),
        _ => None,
    })
}

/// Best effort: make the creation of `path` itself durable.
fn sync_parent_dir(path: &Path) {
    if let Some(parent) = path.parent()
        && let Ok(dir) = File::open(if parent.as_os_str().is_empty() {
            Path::new(".")
        } else {
            parent
        })
    {
        let _ = dir.sync_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payloads(n: usize) -> Vec<Vec<u8>> {
        (0..n).map(|i| vec![i as u8 + 1; 10 + i * 7]).collect()
    }

    fn write_journal(path: &Path, records: &[Vec<u8>]) {
        let (mut journal, existing, _) = Journal::open(path).unwrap();
        assert!(existing.is_empty());
        for r in records {
            journal.append(r).unwrap();
        }
    }

    #[test]
    fn round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j");
        write_journal(&path, &payloads(5));
        let (mut journal, records, recovery) = Journal::open(&path).unwrap();
        assert_eq!(records, payloads(5));
        assert_eq!(recovery.dropped_bytes, 0);
        journal.append(b"more").unwrap();
        let (_, records, _) = Journal::open(&path).unwrap();
        assert_eq!(records.len(), 6);
        assert_eq!(records[5], b"more");
    }

    #[test]
    fn every_truncation_point_of_the_last_record_is_a_torn_tail() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j");
        let all = payloads(3);
        write_journal(&path, &all);
        let full = std::fs::read(&path).unwrap();
        let last = encode_record(&all[2]).len();
        let cut_start = full.len() - last;
        for cut in cut_start + 1..full.len() {
            std::fs::write(&path, &full[..cut]).unwrap();
            let (_, records, recovery) = Journal::open(&path).unwrap();
            assert_eq!(records, all[..2].to_vec(), "cut at {cut}");
            assert_eq!(recovery.dropped_bytes, (cut - cut_start) as u64);
            // The tail was cut off on disk, too.
            assert_eq!(std::fs::metadata(&path).unwrap().len(), cut_start as u64);
        }
    }

    #[test]
    fn garbage_or_zero_fill_after_the_last_record_is_a_torn_tail() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j");
        let all = payloads(2);
        write_journal(&path, &all);
        let clean = std::fs::read(&path).unwrap();
        let mut partial_then_zeros = encode_record(b"unacknowledged")[..9].to_vec();
        partial_then_zeros.extend_from_slice(&[0; 64]);
        // Garbage whose first bytes read as a short length, with more garbage after it.
        let mut short_length_garbage = vec![4, 0, 0, 0];
        short_length_garbage.extend((0..90).map(|i| (i * 37 + 11) as u8));
        for tail in [
            vec![0u8; 100],
            vec![0xff; 3],
            vec![5, 0, 0, 0, 1, 2],
            vec![0, 0, 0, 0, 7, 7, 7],
            partial_then_zeros,
            short_length_garbage,
        ] {
            let mut bytes = clean.clone();
            bytes.extend_from_slice(&tail);
            std::fs::write(&path, &bytes).unwrap();
            let (_, records, recovery) = Journal::open(&path).unwrap();
            assert_eq!(records, all);
            assert_eq!(recovery.dropped_bytes, tail.len() as u64);
        }
    }

    #[test]
    fn corruption_in_the_middle_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j");
        write_journal(&path, &payloads(3));
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[MAGIC.len() + LEN_BYTES + 2] ^= 0x40; // inside the first payload
        std::fs::write(&path, &bytes).unwrap();
        assert!(matches!(Journal::open(&path), Err(LedgerError::Corrupt(_))));
    }

    #[test]
    fn foreign_file_is_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j");
        std::fs::write(&path, b"hello world, not a journal").unwrap();
        assert!(matches!(Journal::open(&path), Err(LedgerError::Corrupt(_))));
    }

    #[test]
    fn torn_header_is_rewritten() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j");
        std::fs::write(&path, &MAGIC[..3]).unwrap();
        let (mut journal, records, recovery) = Journal::open(&path).unwrap();
        assert!(records.is_empty());
        assert_eq!(recovery.dropped_bytes, 3);
        journal.append(b"x").unwrap();
        let (_, records, _) = Journal::open(&path).unwrap();
        assert_eq!(records, vec![b"x".to_vec()]);
    }
}
