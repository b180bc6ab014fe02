//! # medseal-index
//!
//! Searchable encrypted index for medseal: authorised users find records by keyword
//! (diagnosis code, term) through search tokens; the host that stores and searches the
//! index learns neither keywords nor record references. One API for the three roles:
//! data owners build entries, hosts store and answer, users derive tokens and verify.
//!
//! ## Two schemes
//!
//! * [`sse`] (**default**): an ABE-gated, policy-partitioned encrypted multimap.
//!   Each (owner, policy, epoch) partition has a random key `K`, wrapped in a CP-ABE
//!   capsule under the policy; users whose attributes satisfy it derive per-keyword
//!   tokens. Search at the host is one AES block and one table probe per result (no
//!   public-key work); answers are verifiable against Merkle roots anchored on chain
//!   (membership for every result, non-membership for the terminating label). Epoch
//!   rotation gives forward privacy across epochs; volume padding is optional. The
//!   caller chooses the policy: the `medseal` vault uses the record's policy at the
//!   current attribute versions and the epoch's month, or the owner's `id:`, so that a
//!   revocation (a version bump) or a new month starts an epoch the revoked or expired
//!   key cannot open.
//! * [`abks`] (baseline): CP-ABKS in the VABKS form (Zheng–Xu–Ateniese 2014, the scheme
//!   family of Sun et al. 2020) on BLS12-381. One pairing product per index entry per
//!   search, linear in the index.
//!
//! ## Why `sse` is the default
//!
//! ABKS is public-key: index entries are computed from public parameters, so whoever
//! holds a trapdoor — the server that receives it, or anyone who obtains one — can test
//! guessed keywords offline against the public key. Medical keywords are low-entropy
//! (about 95,000 ICD-10-CM codes), so a trapdoor's keyword falls to a dictionary scan in
//! seconds ([`abks::guessing`], `examples/abks_guessing.rs`). In `sse` tokens are PRF
//! outputs under a key that only satisfying attribute keys unwrap: without `K` nothing
//! can be tested. It is also orders of magnitude faster (see `BENCHMARKS.md`). The price
//! is leakage the ABKS scan does not have in the same form (search and access pattern,
//! result volumes): see [`notes::leakage`].
//!
//! ## Conventions
//!
//! * Pure: no I/O, no async, no global state; the caller supplies the RNG.
//! * Keys ([`sse::PartitionKey`], [`sse::KeywordKey`], [`sse::SearchToken`]) zeroize on
//!   drop and have redacted `Debug`; partition keys compare in constant time.
//! * Canonical binary encodings (magic `MSIX`, version, kind; limits checked before
//!   allocation; no trailing bytes) for shards, tokens and the owner's partition state:
//!   [`notes::formats`]. They use medseal-abe's codec ([`medseal_abe::codec`]), and
//!   [`DecodeError`] is its error type.
//! * Keywords are normalised the same way for both schemes: [`Keyword`].
#![forbid(unsafe_code)]
#![deny(missing_docs)]

#[macro_use]
mod debug;
mod error;
mod format;
mod keyword;
mod record;

pub mod abks;
pub mod dictionary;
pub mod notes;
pub mod sse;

#[doc(hidden)]
pub mod __fuzz;

pub use error::{DecodeError, Error, KeywordError, Result, VerifyError};
pub use keyword::{
    KEYWORD_TYPES, Keyword, MAX_KEYWORD_INPUT_LEN, MAX_KEYWORD_LEN, MAX_NORMALISATION_PASSES,
};
pub use record::RecordRef;
