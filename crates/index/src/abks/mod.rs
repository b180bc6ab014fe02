//! The baseline: CP-ABKS in the VABKS form (Zheng, Xu, Ateniese, *VABKS: Verifiable
//! attribute-based keyword search over outsourced encrypted data*, INFOCOM 2014), the
//! scheme family of Sun et al. 2020, ported to a type-III pairing (BLS12-381).
//!
//! Kept for researchers to compare against. It is public-key, so **anyone who obtains a
//! trapdoor can recover its keyword by testing guesses** ([`guessing`]); search is a
//! pairing product per index entry, linear in the index. Use [`crate::sse`].
//!
//! ```
//! use medseal_abe::{AttributeSet, Policy};
//! use medseal_index::abks::{Abks, AbksIndex};
//! use medseal_index::{Keyword, RecordRef};
//! use rand_core::OsRng;
//!
//! let (pk, msk) = Abks::setup(&mut OsRng);
//! let key = Abks::keygen(&msk, &AttributeSet::parse(["role:doctor"])?, &mut OsRng);
//! let policy: Policy = "role:doctor or role:nurse".parse()?;
//! let kw = Keyword::icd10("I10")?;
//! let mut index = AbksIndex::new();
//! index.push(RecordRef::new([1; 32])?, Abks::index(&pk, &policy, &kw, &mut OsRng)?);
//! let trapdoor = Abks::trapdoor(&pk, &key, &kw, &mut OsRng)?;
//! assert_eq!(index.search(&trapdoor), vec![RecordRef::new([1; 32])?]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Algebra
//!
//! Type-III pairing `e: G1 × G2 → G_T` with generators `g1`, `g2`; `H: {0,1}* → G1`
//! (RFC 9380 hash-to-curve, [`DST_ABKS_ATTR`]); `H1: {0,1}* → Z_r` (RFC 9380 hash-to-field,
//! [`DST_ABKS_KEYWORD`]); LSSS `(M, ρ)` from `medseal_abe::lsss`.
//!
//! | algorithm | output | group |
//! |---|---|---|
//! | Setup | `msk = (a, b, c)`; `pk = (g1^a, g1^b, g1^c, g2^a, g2^b, g2^c)` | G1, G2 |
//! | KeyGen(S) | `D = g1^{(ac − r)/b}`; ∀ j ∈ S: `D_j = g1^r·H(j)^{r_j}`, `D'_j = g2^{r_j}` | G1; G1, G2 |
//! | Index(P, w) | `K1 = g2^{c r1}`, `K2 = g2^{a(r1+r2)}·g2^{b H1(w) r1}`, `K3 = g2^{b r2}` | G2 |
//! |  | `λ = M·(r2, v2, …)`; ∀ rows y: `C_y = g2^{λ_y}`, `C'_y = H(ρ(y))^{λ_y}` | G2, G1 |
//! | Trapdoor(sk, w) | `tok1 = (g1^a·g1^{b H1(w)})^s`, `tok2 = g1^{cs}`, `tok3 = D^s` | G1 |
//! |  | ∀ j ∈ S: `(D_j^s, D'_j^s)` | G1, G2 |
//!
//! Hashes `H(j)` are in G1, so everything multiplied by them (`D_j`, `C'_y`) is in G1
//! and their pairing partners (`C_y`, `D'_j`) are in G2; index entries put their
//! keyword components in G2 and trapdoors theirs in G1. Every pairing below has one
//! side in each group.
//!
//! **Test.** With reconstruction coefficients `w_y` (`Σ w_y M_y = e1`, rows `y ∈ I`
//! whose labels the trapdoor holds):
//!
//! ```text
//! E   = Π_{y∈I} ( e(D_{ρ(y)}^s, C_y) / e(C'_y, D'_{ρ(y)}^s) )^{w_y}
//!     = Π e(g1,g2)^{r s λ_y w_y}                     = e(g1,g2)^{r s r2}
//! e(tok2, K2) = e(g1,g2)^{cs(a r1 + a r2 + b H1(w) r1)}
//! e(tok1, K1) · e(tok3, K3) · E
//!             = e(g1,g2)^{c s r1 (a + b H1(w'))} · e(g1,g2)^{(ac − r) s r2} · e(g1,g2)^{r s r2}
//! ```
//!
//! so `e(tok2, K2) = e(tok1, K1)·e(tok3, K3)·E` iff `H1(w) = H1(w')`. The implementation
//! evaluates `e(tok2,K2)·e(−tok1,K1)·e(−tok3,K3)·Π e(−w_y D^s, C_y)·e(w_y C'_y, D'^s) = 1`
//! as one multi-Miller loop over `3 + 2|I|` pairs and one final exponentiation.
//! Collusion resistance comes from `r` being per key (as in BSW07-style schemes).
//!
//! Not implemented from VABKS: the verification layer (signatures/Bloom filters over
//! results) and encodings of the objects; this module exists for measurements and the
//! guessing demonstration.

mod entry;
pub mod guessing;
mod hash;
mod keys;
mod search;
mod trapdoor;

pub use entry::IndexEntry;
pub use hash::{DST_ABKS_ATTR, DST_ABKS_KEYWORD};
pub use keys::{AbksMasterKey, AbksPublicKey, AbksUserKey};
pub use search::AbksIndex;
pub use trapdoor::Trapdoor;

/// The ABKS algorithms (see the [module docs](self)).
#[derive(Debug, Clone, Copy)]
pub struct Abks;

// `setup` and `keygen` are in `keys`, `index` in `entry`, `trapdoor` in `trapdoor`.
impl Abks {
    /// Whether the trapdoor matches the entry (keyword equal and policy satisfied): one
    /// multi-Miller loop and one final exponentiation.
    pub fn test(entry: &IndexEntry, trapdoor: &Trapdoor) -> bool {
        search::test(entry, trapdoor)
    }
}

#[cfg(test)]
mod tests;
