//! ABKS trapdoors (`TokenGen(sk, w)` in VABKS).

use super::keys::{AbksPublicKey, AbksUserKey, random_scalar};
use super::{Abks, hash};
use crate::error::Result;
use crate::keyword::Keyword;
use blstrs::{G1Affine, G2Affine};
use group::Curve;
use rand_core::CryptoRngCore;
use std::collections::BTreeMap;

/// A search trapdoor for one keyword, randomised by a fresh `s`:
/// `tok1 = (g1^a · g1^{b H1(w)})^s`, `tok2 = g1^{cs}`, `tok3 = D^s` (G1) and, per
/// attribute label `j` of the user, `(D_j^s, D'_j^s)` (G1, G2).
///
/// It is sent to the server, which learns the user's attribute labels from it. Anyone
/// who sees it can recover its keyword by testing guesses against the public key: see
/// [`super::guessing`].
#[derive(Clone)]
pub struct Trapdoor {
    pub(crate) tok1: G1Affine,
    pub(crate) tok2: G1Affine,
    pub(crate) tok3: G1Affine,
    pub(crate) components: BTreeMap<String, (G1Affine, G2Affine)>,
}

impl Trapdoor {
    /// The attribute labels the trapdoor carries (public: the server sees them).
    pub fn labels(&self) -> impl Iterator<Item = &str> + '_ {
        self.components.keys().map(String::as_str)
    }
}

redacted_debug!(Trapdoor, |x| "labels" => x.components.len());

impl Abks {
    /// Derives a trapdoor for `keyword` from a user key.
    ///
    /// # Errors
    /// [`crate::Error::DegenerateHash`] (probability about 2^-255).
    pub fn trapdoor<R: CryptoRngCore + ?Sized>(
        pk: &AbksPublicKey,
        key: &AbksUserKey,
        keyword: &Keyword,
        rng: &mut R,
    ) -> Result<Trapdoor> {
        let h = hash::keyword(keyword)?;
        let s = random_scalar(rng);
        let tok1 = ((pk.g1_a + pk.g1_b * h) * s).to_affine();
        let tok2 = (pk.g1_c * s).to_affine();
        let tok3 = (key.d * s).to_affine();
        let components = key
            .components
            .iter()
            .map(|(label, (dj, dpj))| {
                (label.clone(), ((dj * s).to_affine(), (dpj * s).to_affine()))
            })
            .collect();
        Ok(Trapdoor {
            tok1,
            tok2,
            tok3,
            components,
        })
    }
}
