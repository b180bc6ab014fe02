//! The owner's private index state, persisted atomically in the data directory.
//!
//! Per owner (chain address) one file `owners/<address>.json` (mode 0600: it holds
//! partition keys and keywords) with, per policy, the current index partition (epoch, key,
//! keyword counters, next shard slot, whether its capsule is published) and at most one
//! pending put. A put writes its intent here before its first chain transaction and
//! commits the advanced counters (clearing the intent) after the last one, so a crash at
//! any point is completed by the next owner operation (see [`crate::Vault::recover`]).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::chain::Address;
use crate::error::{Error, Result};
use crate::fsutil::{read_optional, write_atomic};

const VERSION: u32 = 1;

/// All private index state of one owner.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct OwnerState {
    pub(crate) version: u32,
    /// The current partition of every policy the owner has indexed under.
    pub(crate) partitions: Vec<PartitionState>,
    /// A put whose chain transactions may not all have happened.
    pub(crate) pending: Option<PendingPut>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PartitionState {
    /// Canonical policy text.
    pub(crate) policy: String,
    pub(crate) epoch: u64,
    /// Partition key, hex.
    pub(crate) key: String,
    /// Next anchor slot (shard sequence number) of this partition.
    pub(crate) next_slot: u64,
    /// The index's state of the partition (`OwnerPartition::to_bytes`: key, keyword
    /// counters by tag, next shard sequence number), hex.
    pub(crate) index: String,
    /// Whether the capsule is known to be published on chain.
    pub(crate) published: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PendingPut {
    pub(crate) manifest_cid: String,
    /// Hash of the capsule policy (what `createRecord` stores), hex.
    pub(crate) policy_hash: String,
    /// Canonical base policy text (selects the partition).
    pub(crate) policy: String,
    /// Canonical keyword texts.
    pub(crate) keywords: Vec<String>,
}

pub(crate) fn state_path(dir: &Path, owner: Address) -> PathBuf {
    dir.join("owners")
        .join(format!("{}.json", hex::encode(owner.as_slice())))
}

impl OwnerState {
    pub(crate) fn load(dir: &Path, owner: Address) -> Result<Self> {
        let path = state_path(dir, owner);
        let Some(bytes) = read_optional(&path)? else {
            return Ok(Self {
                version: VERSION,
                ..Self::default()
            });
        };
        let state: Self = serde_json::from_slice(&bytes)
            .map_err(|e| Error::corrupt("owner state", format!("{}: {e}", path.display())))?;
        if state.version != VERSION {
            return Err(Error::corrupt(
                "owner state",
                format!("{}: unsupported version {}", path.display(), state.version),
            ));
        }
        Ok(state)
    }

    pub(crate) fn save(&self, dir: &Path, owner: Address) -> Result<()> {
        let bytes =
            serde_json::to_vec_pretty(self).map_err(|e| Error::corrupt("owner state", e))?;
        write_atomic(&state_path(dir, owner), &bytes, true)
    }

    pub(crate) fn partition_mut(&mut self, policy: &str) -> Option<&mut PartitionState> {
        self.partitions.iter_mut().find(|p| p.policy == policy)
    }
}

pub(crate) fn hex32(text: &str, what: &'static str) -> Result<[u8; 32]> {
    let mut out = [0u8; 32];
    hex::decode_to_slice(text, &mut out).map_err(|e| Error::corrupt(what, e))?;
    Ok(out)
}
