//! # medseal-abe
//!
//! Ciphertext-policy attribute-based encryption (CP-ABE) on BLS12-381: data is encrypted
//! under a policy such as `role:doctor and dept:cardiology`, keys carry attributes, and a
//! key decrypts exactly the ciphertexts whose policy its attributes satisfy. Users cannot
//! pool attributes: two keys that each fall short cannot decrypt together.
//!
//! ```
//! use medseal_abe::{envelope, AttributeSet, Fame, Policy, Scheme};
//! use rand_core::OsRng;
//!
//! let (pk, msk) = Fame::setup(&mut OsRng);
//! let doctor = AttributeSet::parse(["role:doctor", "dept:cardiology"])?;
//! let key = Fame::keygen(&pk, &msk, &doctor, &mut OsRng)?;
//!
//! let policy: Policy = "role:doctor and (dept:cardiology or dept:oncology)".parse()?;
//! let sealed = envelope::seal::<Fame, _>(&pk, &policy, b"record-42", b"ECG: normal", &mut OsRng)?;
//! assert_eq!(envelope::open::<Fame>(&key, b"record-42", &sealed)?, b"ECG: normal");
//! # Ok::<(), medseal_abe::Error>(())
//! ```
//!
//! ## What is here
//!
//! * [`policy`]: the policy language (and/or, k-of-n thresholds, `name:value`
//!   attributes, numeric comparisons) with canonical printing and a JSON form;
//!   [`lsss`]: linear secret-sharing matrices built from policies.
//! * Two schemes behind the [`Scheme`] trait: [`Fame`] (default; Agrawal–Chase 2017;
//!   decryption is one 6-term multi-pairing) and [`Bsw07`] (the Bethencourt–Sahai–Waters
//!   baseline, ported to type-III pairings).
//! * [`envelope`]: the hybrid KEM/DEM: HKDF bound to the full header, AES-256-GCM in the
//!   STREAM construction, O(segment) memory for any payload size.
//! * Canonical binary encodings for every object ([`Encoding`]): magic, version, kind,
//!   scheme id, curve id, compressed points with subgroup checks, limits checked before
//!   allocation, no trailing bytes. Formats are frozen per version by golden files.
//!   [`codec`] is that codec, public: the other medseal crates encode their objects
//!   with it.
//!
//! ## Security notes
//!
//! * The caller passes the RNG; there is no global state.
//! * Attribute hashing is RFC 9380 `hash_to_curve` with per-purpose domain-separation
//!   tags (never `g^H(x)`).
//! * Secret scalars are overwritten on drop (best effort: copies the compiler makes are
//!   out of reach), `Debug` of secrets is redacted, [`KemKey`] compares in constant time.
//!   Scalar multiplications by secrets use `blst`'s constant-time routines; variable-time
//!   code (`vartime_*`) only ever handles public values (LSSS coefficients).
//! * Decryption errors are opaque ([`Error::Decryption`]); [`Error::PolicyNotSatisfied`]
//!   is separate because it depends only on public data.
//! * Curve backend: `blstrs`/`blst` (assembly, fastest measured). The pure-Rust
//!   `bls12_381` crate runs the same scheme code in tests as a differential oracle.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

#[macro_use]
mod scheme_types;

mod curve;
mod error;
mod hash;
mod scheme;
mod secret;
#[cfg(feature = "serde")]
mod serde_bytes;
mod share;

#[cfg(test)]
mod algebra_tests;

pub mod bsw07;
pub mod codec;
pub mod envelope;
pub mod fame;
pub mod lsss;
pub mod notes;
pub mod policy;

#[doc(hidden)]
pub mod __fuzz {
    //! Fuzzing entry points (not a public API).
    pub use crate::fuzz_api::*;
    pub use crate::policy::fuzz::policy_parse;
}
mod fuzz_api;

#[doc(hidden)]
pub mod __private {
    //! Re-exports for [`secret_bytes32!`](crate::secret_bytes32) (not a public API).
    pub use subtle;
    pub use zeroize;
}

pub use bsw07::Bsw07;
pub use error::{DecodeError, Error, Result};
pub use fame::Fame;
pub use policy::{AttributeSet, Policy, PolicyError};
pub use scheme::{Encoding, KemKey, Scheme, SchemeId};
