//! BSW07: ciphertext-policy ABE of Bethencourt, Sahai and Waters (S&P 2007).
//!
//! The baseline researchers compare against: the access-tree scheme the Sun et al. (2020)
//! family builds on. Ported to type-III pairings (see `core` for the G1/G2 assignment);
//! decryption costs 1 + 2k pairings for k attributes used, computed as one multi-Miller
//! loop. Secure in the generic group model (as in the paper), selectively.
//!
//! A ciphertext costs 144 bytes per LSSS row (`C_y` in G2, `C'_y` in G1).

pub(crate) mod core;
pub(crate) mod encoding;

/// The BSW07 scheme (see the module docs). Use it through the [`Scheme`] trait.
#[derive(Debug, Clone, Copy, Default)]
pub struct Bsw07;

scheme_types!(Bsw07, "BSW07");
