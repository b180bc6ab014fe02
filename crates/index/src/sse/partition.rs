//! Partitions, their keys and the CP-ABE capsules that wrap the keys.

use crate::error::{Error, Result};
use medseal_abe::{Fame, Policy, Scheme, envelope};
use rand_core::CryptoRngCore;
use zeroize::Zeroize;

/// Maximum length of an owner identifier in bytes.
pub const MAX_OWNER_LEN: usize = 256;

const PARTITION_ID_CONTEXT: &str = "medseal-index v1 partition id";

/// An index partition: one owner's entries under one policy in one epoch.
///
/// Every partition has its own random [`PartitionKey`]; rotating the epoch (e.g. after a
/// revocation) starts a new partition with a fresh key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Partition {
    owner: Vec<u8>,
    policy: Policy,
    epoch: u64,
}

impl Partition {
    /// A partition of `owner` (any stable identifier, e.g. an account address) under
    /// `policy` in `epoch`.
    ///
    /// # Errors
    /// [`Error::LimitExceeded`] if `owner` is longer than [`MAX_OWNER_LEN`].
    pub fn new(owner: &[u8], policy: Policy, epoch: u64) -> Result<Self> {
        if owner.len() > MAX_OWNER_LEN {
            return Err(Error::LimitExceeded {
                what: "owner identifier",
                limit: MAX_OWNER_LEN as u64,
            });
        }
        Ok(Self {
            owner: owner.to_vec(),
            policy,
            epoch,
        })
    }

    /// The owner identifier.
    pub fn owner(&self) -> &[u8] {
        &self.owner
    }

    /// The policy that gates the partition key.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// The epoch.
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// The same owner in the next epoch, under `policy` (the same policy, or a new one).
    ///
    /// # Errors
    /// [`Error::LimitExceeded`] if the epoch counter would overflow.
    pub fn next_epoch(&self, policy: Policy) -> Result<Self> {
        let epoch = self.epoch.checked_add(1).ok_or(Error::LimitExceeded {
            what: "epoch",
            limit: u64::MAX,
        })?;
        Self::new(&self.owner, policy, epoch)
    }

    /// The partition's identifier:
    /// `BLAKE3-derive_key("medseal-index v1 partition id", u32 len ‖ owner ‖ u32 len ‖
    /// canonical policy text ‖ u64 epoch)` (big-endian integers).
    pub fn id(&self) -> PartitionId {
        let policy = self.policy.to_string();
        let mut h = blake3::Hasher::new_derive_key(PARTITION_ID_CONTEXT);
        h.update(&len_u32(self.owner.len()).to_be_bytes());
        h.update(&self.owner);
        h.update(&len_u32(policy.len()).to_be_bytes());
        h.update(policy.as_bytes());
        h.update(&self.epoch.to_be_bytes());
        PartitionId(*h.finalize().as_bytes())
    }
}

fn len_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// A partition's 32-byte identifier (public: shards, tokens and chain anchors carry it).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PartitionId(pub(crate) [u8; 32]);

impl PartitionId {
    /// Wraps bytes (e.g. read back from the chain).
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

short_hex_debug!(PartitionId);

medseal_abe::secret_bytes32! {
    /// A partition's secret key `K` (32 random bytes). Zeroized on drop, `Debug`
    /// redacted, compared in constant time.
    #[derive(Clone)]
    pub struct PartitionKey;
    "The key bytes. Handle with care: anyone holding them can search the partition."
}

impl PartitionKey {
    /// A fresh random key.
    pub fn generate<R: CryptoRngCore + ?Sized>(rng: &mut R) -> Self {
        let mut key = Self([0u8; 32]);
        rng.fill_bytes(&mut key.0);
        key
    }

    /// Wraps key bytes (e.g. restored from the owner's protected storage).
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }
}

/// A partition key wrapped under the partition's policy: a medseal-abe envelope (FAME)
/// whose additional authenticated data is the [`PartitionId`], so a capsule cannot be
/// moved to another partition. It is public (stored next to the shards, its CID anchored
/// on chain); only keys whose attributes satisfy the policy open it.
#[derive(Clone, PartialEq, Eq)]
pub struct Capsule(Vec<u8>);

impl Capsule {
    /// Wraps `key` under the partition's policy.
    ///
    /// # Errors
    /// [`Error::Abe`] if the policy cannot be encrypted under `pk`.
    pub fn seal<R: CryptoRngCore + ?Sized>(
        pk: &<Fame as Scheme>::PublicKey,
        partition: &Partition,
        key: &PartitionKey,
        rng: &mut R,
    ) -> Result<Self> {
        let id = partition.id();
        envelope::seal::<Fame, _>(pk, partition.policy(), id.as_bytes(), key.as_bytes(), rng)
            .map(Self)
            .map_err(Error::from_abe)
    }

    /// Opens the capsule of partition `id` with a user key.
    ///
    /// # Errors
    /// [`Error::PolicyNotSatisfied`] if the key's attributes do not satisfy the policy;
    /// [`Error::Decryption`] (opaque) for anything else that prevents opening, including
    /// a capsule of another partition.
    pub fn open(
        &self,
        user_key: &<Fame as Scheme>::UserKey,
        id: &PartitionId,
    ) -> Result<PartitionKey> {
        let mut plain =
            envelope::open::<Fame>(user_key, id.as_bytes(), &self.0).map_err(Error::from_abe)?;
        let key = <[u8; 32]>::try_from(plain.as_slice())
            .map(PartitionKey)
            .map_err(|_| Error::Decryption);
        plain.zeroize();
        key
    }

    /// The policy the capsule is sealed under (public).
    ///
    /// # Errors
    /// [`Error::Abe`] if the header is malformed (cannot happen for a decoded capsule).
    pub fn policy(&self) -> Result<Policy> {
        envelope::inspect::<Fame>(&self.0)
            .map(|h| h.policy().clone())
            .map_err(Error::from_abe)
    }

    /// The canonical bytes (a medseal-abe envelope).
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// Parses a capsule, checking its envelope header.
    ///
    /// # Errors
    /// [`Error::Abe`] with the envelope's decode error.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        envelope::inspect::<Fame>(bytes).map_err(Error::from_abe)?;
        Ok(Self(bytes.to_vec()))
    }
}

redacted_debug!(Capsule, |x| "len" => x.0.len());
