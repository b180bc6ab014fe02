//! The owner's private index state, persisted atomically in the data directory.
//!
//! Per owner (chain address) one file `owners/<address>.state` (mode 0600: it holds
//! partition keys), in the canonical binary codec:
//!
//! ```text
//! state     = "MSOS" | 2 | u32 n | n × partition | u64 records before | u32 m | m × pending
//! partition = base-policy hash [32] | u8 published | bytes OwnerPartition
//! pending   = str manifest CID | capsule-policy hash [32] | base-policy hash [32]
//!           | u32 k | k × str keyword
//! ```
//!
//! Per base policy the owner has indexed under: the current index partition as the index
//! crate encodes it (`OwnerPartition::to_bytes`: epoch, key, keyword counters, next
//! shard, live shards; no keyword text) and whether its capsule is known to be published.
//! The vault decodes only the partitions a put needs. At most one pending put (one record,
//! or a bulk batch of records: [`crate::Vault::put_many`]): its intent, with the chain's
//! record count before it, is written before its first chain transaction and cleared, with
//! the advanced partitions, after the last, so a crash at any point is completed by the next
//! owner operation (see [`crate::Vault::recover`]), which looks for the batch's records only
//! among those created since. Version 1 (no live shards, one pending record) is refused.

use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

use crate::abe::codec::{Reader, Writer};
use crate::abe::{DecodeError, Policy};
use crate::chain::Address;
use crate::error::{Error, Result};
use crate::fsutil::{read_optional, write_atomic};
use crate::index::sse::OwnerPartition;
use crate::manifest::policy_hash;

const MAGIC: [u8; 4] = *b"MSOS";
const VERSION: u8 = 2;
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

const WHAT: &str = "owner state";

/// All private index state of one owner.
#[derive(Default)]
pub(crate) struct OwnerState {
    partitions: Vec<PartitionEntry>,
    /// A put (one record or a bulk batch) whose chain transactions may not all have
    /// happened; empty if none.
    pub(crate) pending: Vec<PendingPut>,
    /// The chain's record count before the pending put's first transaction: its records,
    /// if created, have larger ids.
    pub(crate) pending_after: u64,
}

/// One policy's current partition, as the index crate encodes it.
struct PartitionEntry {
    policy: [u8; 32],
    published: bool,
    encoded: Zeroizing<Vec<u8>>,
}

/// The current partition of one policy, decoded for use.
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
}

fn state_path(dir: &Path, owner: Address) -> PathBuf {
    dir.join("owners")
        .join(format!("{}.state", hex::encode(owner.as_slice())))
}

/// Where version one kept the state (JSON with keyword text); refused, never guessed at.
fn legacy_path(dir: &Path, owner: Address) -> PathBuf {
    dir.join("owners")
        .join(format!("{}.json", hex::encode(owner.as_slice())))
}

impl OwnerState {
    pub(crate) fn load(dir: &Path, owner: Address) -> Result<Self> {
        match read_optional(&state_path(dir, owner))? {
            Some(bytes) => Self::decode(&bytes).map_err(|e| Error::corrupt(WHAT, e)),
            None if legacy_path(dir, owner).exists() => Err(Error::inconsistent(
                WHAT,
                "owners/<address>.json is in the format of medseal 0.1 pre-releases, which \
                 this version does not read",
            )),
            None => Ok(Self::default()),
        }
    }

    pub(crate) fn save(&self, dir: &Path, owner: Address) -> Result<()> {
        write_atomic(&state_path(dir, owner), &self.encode(), true)
    }

    /// The current partition of `policy`, if the owner has one.
    pub(crate) fn partition(&self, policy: &Policy) -> Result<Option<PartitionSlot>> {
        self.partition_by_hash(&policy_hash(policy).0)
    }

    /// Whether the current partition of `policy` is known to be published (`None`: the
    /// owner has none), without decoding it.
    pub(crate) fn is_published(&self, policy: &Policy) -> Option<bool> {
        let hash = policy_hash(policy).0;
        self.partitions
            .iter()
            .find(|p| p.policy == hash)
            .map(|p| p.published)
    }

    pub(crate) fn partition_by_hash(&self, policy: &[u8; 32]) -> Result<Option<PartitionSlot>> {
        let Some(entry) = self.partitions.iter().find(|p| p.policy == *policy) else {
            return Ok(None);
        };
        let partition = OwnerPartition::from_bytes(&entry.encoded)?;
        Ok(Some(PartitionSlot {
            partition,
            published: entry.published,
        }))
    }

    /// Stores `slot` as the current partition of its policy (replacing the previous one).
    pub(crate) fn set_partition(&mut self, slot: &PartitionSlot) {
        let policy = policy_hash(slot.partition.partition().policy()).0;
        let entry = PartitionEntry {
            policy,
            published: slot.published,
            encoded: slot.partition.to_bytes(),
        };
        match self.partitions.iter_mut().find(|p| p.policy == policy) {
            Some(existing) => *existing = entry,
            None => self.partitions.push(entry),
        }
    }

    fn encode(&self) -> Zeroizing<Vec<u8>> {
        let mut w = Writer::new(MAGIC, VERSION);
        let size: usize = self.partitions.iter().map(|p| 41 + p.encoded.len()).sum();
        w.reserve(size + 1024).count(self.partitions.len());
        for p in &self.partitions {
            w.raw(&p.policy).u8(u8::from(p.published)).bytes(&p.encoded);
        }
        w.u64(self.pending_after).count(self.pending.len());
        for pending in &self.pending {
            w.str(&pending.manifest_cid)
                .raw(&pending.capsule_policy)
                .raw(&pending.policy)
                .count(pending.keywords.len());
            for k in &pending.keywords {
                w.str(k);
            }
        }
        Zeroizing::new(w.finish())
    }

    fn decode(bytes: &[u8]) -> core::result::Result<Self, DecodeError> {
        let mut r = Reader::new(bytes, MAGIC, VERSION)?;
        let n = r.count("partitions", MAX_PARTITIONS, 37)?;
        let mut partitions = Vec::with_capacity(n);
        for _ in 0..n {
            let policy = r.array()?;
            let published = flag(&mut r)?;
            let encoded = Zeroizing::new(r.bytes("partition", MAX_PARTITION_BYTES)?.to_vec());
            if partitions
                .iter()
                .any(|p: &PartitionEntry| p.policy == policy)
            {
                return Err(DecodeError::Inconsistent("two partitions for one policy"));
            }
            partitions.push(PartitionEntry {
                policy,
                published,
                encoded,
            });
        }
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
            pending.push(PendingPut {
                manifest_cid,
                capsule_policy,
                policy,
                keywords,
            });
        }
        if pending.is_empty() && pending_after != 0 {
            return Err(DecodeError::Inconsistent(
                "record count without a pending put",
            ));
        }
        r.finish()?;
        Ok(Self {
            partitions,
            pending,
            pending_after,
        })
    }
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

    fn sample() -> OwnerState {
        let owner = Address::repeat_byte(7);
        let policy: Policy = "role:doctor and dept:cardiology".parse().unwrap();
        let mut partition = OwnerPartition::create(
            Partition::new(owner.as_slice(), policy, 3).unwrap(),
            &mut OsRng,
        );
        let kw = Keyword::icd10("I10").unwrap();
        let record = crate::index::RecordRef::new([1; 32]).unwrap();
        partition.batch([(&kw, record)]).unwrap();
        let mut state = OwnerState::default();
        state.set_partition(&PartitionSlot {
            partition,
            published: true,
        });
        state.pending = vec![
            PendingPut {
                manifest_cid: "bafy-manifest".into(),
                capsule_policy: [2; 32],
                policy: [3; 32],
                keywords: vec!["icd10:i10".into(), "term:asthma".into()],
            },
            PendingPut {
                manifest_cid: "bafy-manifest-2".into(),
                capsule_policy: [4; 32],
                policy: [3; 32],
                keywords: vec![],
            },
        ];
        state.pending_after = 41;
        state
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
        let state = sample();
        state.save(dir.path(), owner).unwrap();
        let loaded = OwnerState::load(dir.path(), owner).unwrap();
        assert_eq!(*loaded.encode(), *state.encode());
        let policy: Policy = "role:doctor and dept:cardiology".parse().unwrap();
        let slot = loaded.partition(&policy).unwrap().unwrap();
        assert!(slot.published);
        assert_eq!(loaded.is_published(&policy), Some(true));
        assert_eq!(loaded.is_published(&"role:nurse".parse().unwrap()), None);
        assert_eq!(slot.partition.next_shard_seq(), 1);
        assert_eq!(slot.partition.count(&Keyword::icd10("I10").unwrap()), 1);
        assert!(
            loaded
                .partition(&"role:nurse".parse().unwrap())
                .unwrap()
                .is_none()
        );

        let bytes = state.encode();
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
        // magic, version, count, policy hash: the published flag follows.
        bad_flag[4 + 1 + 4 + 32] = 2;
        assert!(OwnerState::decode(&bad_flag).is_err());
        // Version 1 (one pending record, partitions without live shards) is refused.
        let mut v1 = bytes.to_vec();
        v1[4] = 1;
        assert!(matches!(
            OwnerState::decode(&v1),
            Err(DecodeError::UnsupportedVersion(1))
        ));
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
        sample().save(dir.path(), owner).unwrap();
        let mode = std::fs::metadata(state_path(dir.path(), owner))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}
