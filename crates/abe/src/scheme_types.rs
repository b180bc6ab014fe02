//! The public wrapper types of a scheme, generated once for FAME and BSW07.

/// Implements [`crate::Encoding`] for wrappers of the scheme's core types through the
/// `encoding` module's function pairs.
macro_rules! wrapper_encoding {
    ($($ty:ident: $encode:ident, $decode:ident;)*) => {$(
        impl Encoding for $ty {
            fn to_bytes(&self) -> Vec<u8> {
                encoding::$encode(&self.0)
            }
            fn from_bytes(bytes: &[u8]) -> Result<Self> {
                encoding::$decode(bytes).map(Self)
            }
        }
    )*};
}

/// Declares `PublicKey`, `MasterKey`, `UserKey`, `Ciphertext` wrapping the scheme's
/// generic core types at the production backend, and implements [`crate::Scheme`].
macro_rules! scheme_types {
    ($scheme:ident, $name:literal) => {
        use crate::curve::{Backend as _, Blst};
        use crate::error::Result;
        use crate::policy::{AttributeSet, Policy};
        use crate::scheme::{Encoding, KemKey, Scheme, SchemeId, Sealed};
        use rand_core::CryptoRngCore;

        #[doc = concat!($name, " public parameters. Carries a cache of attribute hashes (not part of the encoding).")]
        #[derive(Clone)]
        pub struct PublicKey(pub(crate) core::PublicKey<Blst>);

        #[doc = concat!($name, " master secret key of the attribute authority. `Debug` is redacted; secret scalars are wiped on drop.")]
        pub struct MasterKey(pub(crate) core::MasterKey<Blst>);

        #[doc = concat!("A ", $name, " user key, bound to the attribute set it was issued for.")]
        pub struct UserKey(pub(crate) core::UserKey<Blst>);

        #[doc = concat!("A ", $name, " ciphertext (the KEM part), carrying its policy.")]
        #[derive(Clone)]
        pub struct Ciphertext(pub(crate) core::Ciphertext<Blst>);

        // Equal iff the canonical encodings are.
        impl PartialEq for PublicKey {
            fn eq(&self, other: &Self) -> bool {
                self.to_bytes() == other.to_bytes()
            }
        }

        impl PartialEq for Ciphertext {
            fn eq(&self, other: &Self) -> bool {
                self.to_bytes() == other.to_bytes()
            }
        }

        impl ::core::fmt::Debug for PublicKey {
            fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                f.debug_struct(concat!($name, "::PublicKey")).finish_non_exhaustive()
            }
        }

        impl ::core::fmt::Debug for MasterKey {
            fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                f.debug_struct(concat!($name, "::MasterKey")).finish_non_exhaustive()
            }
        }

        impl ::core::fmt::Debug for UserKey {
            fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                f.debug_struct(concat!($name, "::UserKey"))
                    .field("attributes", &self.0.attrs)
                    .finish_non_exhaustive()
            }
        }

        impl ::core::fmt::Debug for Ciphertext {
            fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                f.debug_struct(concat!($name, "::Ciphertext"))
                    .field("policy", &self.0.policy.to_string())
                    .field("rows", &self.0.rows.len())
                    .finish_non_exhaustive()
            }
        }

        wrapper_encoding! {
            PublicKey: encode_pk, decode_pk;
            MasterKey: encode_msk, decode_msk;
            UserKey: encode_user_key, decode_user_key;
            Ciphertext: encode_ciphertext, decode_ciphertext;
        }

        #[cfg(feature = "serde")]
        crate::serde_bytes::impl_serde!(PublicKey, MasterKey, UserKey, Ciphertext);

        impl Sealed for $scheme {}

        impl Scheme for $scheme {
            const ID: SchemeId = SchemeId::$scheme;
            type PublicKey = PublicKey;
            type MasterKey = MasterKey;
            type UserKey = UserKey;
            type Ciphertext = Ciphertext;

            fn setup<R: CryptoRngCore + ?Sized>(rng: &mut R) -> (PublicKey, MasterKey) {
                let (pk, msk) = core::setup::<Blst>(rng);
                (PublicKey(pk), MasterKey(msk))
            }

            fn check_master_key(pk: &PublicKey, msk: &MasterKey) -> Result<()> {
                core::check_master_key(&pk.0, &msk.0)
            }

            fn keygen<R: CryptoRngCore + ?Sized>(
                pk: &PublicKey,
                msk: &MasterKey,
                attrs: &AttributeSet,
                rng: &mut R,
            ) -> Result<UserKey> {
                crate::share::check_decodable_attributes(attrs)?;
                core::keygen(&pk.0, &msk.0, attrs, rng).map(UserKey)
            }

            fn encapsulate<R: CryptoRngCore + ?Sized>(
                pk: &PublicKey,
                policy: &Policy,
                rng: &mut R,
            ) -> Result<(KemKey, Ciphertext)> {
                crate::share::check_decodable_policy(policy)?;
                let (gt, ct) = core::encapsulate(&pk.0, policy, rng)?;
                Ok((KemKey::derive(Self::ID, &Blst::gt_kdf_bytes(&gt)), Ciphertext(ct)))
            }

            fn decapsulate(key: &UserKey, ct: &Ciphertext) -> Result<KemKey> {
                let gt = core::decapsulate(&key.0, &ct.0)?;
                Ok(KemKey::derive(Self::ID, &Blst::gt_kdf_bytes(&gt)))
            }

            fn policy(ct: &Ciphertext) -> &Policy {
                &ct.0.policy
            }

            fn attributes(key: &UserKey) -> &AttributeSet {
                &key.0.attrs
            }
        }
    };
}
