//! The scheme trait shared by FAME and BSW07, and the KEM key they produce.

use crate::error::Result;
use crate::policy::{AttributeSet, Policy};
use rand_core::CryptoRngCore;

/// Scheme identifiers, as written in every encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
#[repr(u8)]
pub enum SchemeId {
    /// [`crate::Fame`].
    Fame = 1,
    /// [`crate::Bsw07`].
    Bsw07 = 2,
}

impl SchemeId {
    /// The scheme's name.
    pub fn name(self) -> &'static str {
        match self {
            SchemeId::Fame => "FAME",
            SchemeId::Bsw07 => "BSW07",
        }
    }
}

/// Canonical binary encoding (see the crate docs for the layout).
pub trait Encoding: Sized {
    /// Encodes into the canonical bytes.
    fn to_bytes(&self) -> Vec<u8>;
    /// Decodes canonical bytes: checks magic, version, kind, scheme, curve, subgroups,
    /// limits; rejects trailing bytes.
    fn from_bytes(bytes: &[u8]) -> Result<Self>;
}

mod sealed {
    pub trait Sealed {}
}
pub(crate) use sealed::Sealed;

/// A CP-ABE key-encapsulation mechanism.
///
/// `encapsulate` produces a fresh [`KemKey`] and a ciphertext under a policy;
/// `decapsulate` recovers the key with a user key whose attributes satisfy the policy.
/// Use [`crate::envelope`] to encrypt data: it binds the ciphertext into the key
/// derivation and authenticates everything.
///
/// Sealed: the two implementations are [`crate::Fame`] (default) and [`crate::Bsw07`].
pub trait Scheme: Sealed + Sized + 'static {
    /// The id written into encodings.
    const ID: SchemeId;
    /// The public parameters.
    type PublicKey: Encoding + Clone + Send + Sync + core::fmt::Debug;
    /// The authority's master secret.
    type MasterKey: Encoding + Send + Sync + core::fmt::Debug;
    /// A user's decryption key, bound to an attribute set.
    type UserKey: Encoding + Send + Sync + core::fmt::Debug;
    /// A ciphertext (KEM part), carrying its policy.
    type Ciphertext: Encoding + Clone + Send + Sync + core::fmt::Debug;

    /// Generates public parameters and the master secret.
    fn setup<R: CryptoRngCore + ?Sized>(rng: &mut R) -> (Self::PublicKey, Self::MasterKey);

    /// Checks that `msk` comes from the same setup as `pk` (the check [`Scheme::keygen`]
    /// makes first): for an authority's keys loaded from storage, where a public key and
    /// a master key of different setups could have been put together.
    ///
    /// # Errors
    /// [`crate::Error::MasterKeyMismatch`] if they do not belong together.
    fn check_master_key(pk: &Self::PublicKey, msk: &Self::MasterKey) -> Result<()>;

    /// Issues a key for `attrs`.
    ///
    /// # Errors
    /// [`crate::Error::MasterKeyMismatch`] if `msk` comes from another setup than `pk`
    /// (checked against a public value derived from `msk`, so a key that could decrypt
    /// nothing is never issued).
    /// [`crate::Error::Policy`] or [`crate::Error::LimitExceeded`] if `attrs` (built with
    /// raised [`crate::policy::Limits`]) exceeds what the user-key decoder accepts: no key is issued
    /// that [`Encoding::from_bytes`] would refuse.
    fn keygen<R: CryptoRngCore + ?Sized>(
        pk: &Self::PublicKey,
        msk: &Self::MasterKey,
        attrs: &AttributeSet,
        rng: &mut R,
    ) -> Result<Self::UserKey>;

    /// Encapsulates a fresh key under `policy`.
    ///
    /// # Errors
    /// [`crate::Error::Policy`] or [`crate::Error::LimitExceeded`] if `policy` (built with
    /// raised [`crate::policy::Limits`]) exceeds what the ciphertext decoder accepts (the default
    /// limits): no ciphertext is produced that [`Encoding::from_bytes`] would refuse.
    fn encapsulate<R: CryptoRngCore + ?Sized>(
        pk: &Self::PublicKey,
        policy: &Policy,
        rng: &mut R,
    ) -> Result<(KemKey, Self::Ciphertext)>;

    /// Recovers the key. Fails with [`crate::Error::PolicyNotSatisfied`] if the key's
    /// attributes do not satisfy the policy (public information).
    fn decapsulate(key: &Self::UserKey, ct: &Self::Ciphertext) -> Result<KemKey>;

    /// The policy a ciphertext was encrypted under.
    fn policy(ct: &Self::Ciphertext) -> &Policy;

    /// The attributes a user key was issued for.
    fn attributes(key: &Self::UserKey) -> &AttributeSet;
}

crate::secret_bytes32! {
    /// A 32-byte key produced by encapsulation: SHA-256 over a domain tag, the scheme id
    /// and the canonical bytes of the target-group element.
    ///
    /// Zeroized on drop, `Debug` redacted, compared in constant time.
    #[derive(Clone)]
    pub struct KemKey;
    "The key bytes. Handle with care: this is the secret that protects the payload."
}

impl KemKey {
    pub(crate) fn derive(scheme: SchemeId, gt_bytes: &[u8]) -> Self {
        use sha2::Digest;
        let mut h = sha2::Sha256::new();
        h.update(b"MEDSEAL-V1-KEM-KEY\0");
        h.update([scheme as u8]);
        h.update(gt_bytes);
        Self(h.finalize().into())
    }
}
