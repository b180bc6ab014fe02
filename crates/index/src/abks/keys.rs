//! ABKS setup and key generation.

use super::{Abks, hash};
use blstrs::{G1Affine, G1Projective, G2Affine, G2Projective, Scalar};
use core::sync::atomic::{Ordering, compiler_fence};
use ff::Field;
use group::{Curve, Group};
use medseal_abe::AttributeSet;
use rand_core::CryptoRngCore;
use std::collections::BTreeMap;

/// Public parameters: `g1^a, g1^b, g1^c` (for trapdoors) and `g2^a, g2^b, g2^c` (for index
/// entries), with the standard generators `g1`, `g2`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AbksPublicKey {
    pub(crate) g1_a: G1Affine,
    pub(crate) g1_b: G1Affine,
    pub(crate) g1_c: G1Affine,
    pub(crate) g2_a: G2Affine,
    pub(crate) g2_b: G2Affine,
    pub(crate) g2_c: G2Affine,
}

/// The authority's secret `(a, b, c)`. Overwritten on drop (best effort), `Debug`
/// redacted.
pub struct AbksMasterKey {
    a: Scalar,
    b: Scalar,
    c: Scalar,
}

impl Drop for AbksMasterKey {
    fn drop(&mut self) {
        self.a = Scalar::ZERO;
        self.b = Scalar::ZERO;
        self.c = Scalar::ZERO;
        compiler_fence(Ordering::SeqCst);
    }
}

redacted_debug!(AbksMasterKey);

/// A user's attribute key: `D = g1^{(ac - r)/b}` and, per attribute label `j`,
/// `D_j = g1^r · H(j)^{r_j}` (G1) and `D'_j = g2^{r_j}` (G2). `Debug` redacted.
#[derive(Clone)]
pub struct AbksUserKey {
    pub(crate) attrs: AttributeSet,
    pub(crate) d: G1Affine,
    pub(crate) components: BTreeMap<String, (G1Affine, G2Affine)>,
}

impl AbksUserKey {
    /// The attributes the key was issued for.
    pub fn attributes(&self) -> &AttributeSet {
        &self.attrs
    }
}

redacted_debug!(AbksUserKey, |x| "labels" => x.components.len());

pub(crate) fn random_scalar<R: CryptoRngCore + ?Sized>(rng: &mut R) -> Scalar {
    Scalar::random(rng.as_rngcore())
}

fn random_nonzero<R: CryptoRngCore + ?Sized>(rng: &mut R) -> Scalar {
    loop {
        let s = random_scalar(rng);
        if !bool::from(s.is_zero()) {
            return s;
        }
    }
}

impl Abks {
    /// Generates public parameters and the master secret (`Setup`: random `a, b, c`,
    /// b ≠ 0).
    pub fn setup<R: CryptoRngCore + ?Sized>(rng: &mut R) -> (AbksPublicKey, AbksMasterKey) {
        let (a, b, c) = (random_scalar(rng), random_nonzero(rng), random_scalar(rng));
        let g1 = G1Projective::generator();
        let g2 = G2Projective::generator();
        let pk = AbksPublicKey {
            g1_a: (g1 * a).to_affine(),
            g1_b: (g1 * b).to_affine(),
            g1_c: (g1 * c).to_affine(),
            g2_a: (g2 * a).to_affine(),
            g2_b: (g2 * b).to_affine(),
            g2_c: (g2 * c).to_affine(),
        };
        (pk, AbksMasterKey { a, b, c })
    }

    /// Issues an attribute key (`KeyGen`).
    pub fn keygen<R: CryptoRngCore + ?Sized>(
        msk: &AbksMasterKey,
        attrs: &AttributeSet,
        rng: &mut R,
    ) -> AbksUserKey {
        let r = random_scalar(rng);
        let b_inv = Option::<Scalar>::from(msk.b.invert()).unwrap_or(Scalar::ZERO);
        let g1 = G1Projective::generator();
        let g2 = G2Projective::generator();
        let d = (g1 * ((msk.a * msk.c - r) * b_inv)).to_affine();
        let g1_r = g1 * r;
        let components = attrs
            .labels()
            .map(|label| {
                let rj = random_scalar(rng);
                let dj = (g1_r + hash::attribute(label) * rj).to_affine();
                let dpj = (g2 * rj).to_affine();
                (label.to_owned(), (dj, dpj))
            })
            .collect();
        AbksUserKey {
            attrs: attrs.clone(),
            d,
            components,
        }
    }
}
