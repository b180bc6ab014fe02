//! ABKS index entries (`ABKS(pk, policy, w)` in VABKS).

use super::keys::{AbksPublicKey, random_scalar};
use super::{Abks, hash};
use crate::error::Result;
use crate::keyword::Keyword;
use blstrs::{G1Affine, G2Affine, G2Projective, Scalar};
use group::{Curve, Group};
use medseal_abe::Policy;
use medseal_abe::lsss::Lsss;
use rand_core::CryptoRngCore;

/// One encrypted keyword under a policy:
/// `K1 = g2^{c r1}`, `K2 = g2^{a(r1 + r2)} · g2^{b H1(w) r1}`, `K3 = g2^{b r2}` (G2) and,
/// per LSSS row `y` with share `λ_y` of `r2`, `C_y = g2^{λ_y}` (G2),
/// `C'_y = H(ρ(y))^{λ_y}` (G1).
#[derive(Clone)]
pub struct IndexEntry {
    pub(crate) policy: Policy,
    pub(crate) lsss: Lsss<Scalar>,
    pub(crate) k1: G2Affine,
    pub(crate) k2: G2Affine,
    pub(crate) k3: G2Affine,
    pub(crate) rows: Vec<(G2Affine, G1Affine)>,
}

impl IndexEntry {
    /// The policy the keyword is encrypted under (public).
    pub fn policy(&self) -> &Policy {
        &self.policy
    }
}

redacted_debug!(IndexEntry, |x| "policy" => x.policy.to_string());

impl Abks {
    /// Encrypts `keyword` under `policy` into an index entry.
    ///
    /// # Errors
    /// [`crate::Error::DegenerateHash`] (probability about 2^-255).
    pub fn index<R: CryptoRngCore + ?Sized>(
        pk: &AbksPublicKey,
        policy: &Policy,
        keyword: &Keyword,
        rng: &mut R,
    ) -> Result<IndexEntry> {
        let h = hash::keyword(keyword)?;
        let (r1, r2) = (random_scalar(rng), random_scalar(rng));
        let lsss = Lsss::<Scalar>::from_policy(policy);
        let mut v = Vec::with_capacity(lsss.columns());
        v.push(r2);
        for _ in 1..lsss.columns() {
            v.push(random_scalar(rng));
        }
        let g2 = G2Projective::generator();
        let k1 = (pk.g2_c * r1).to_affine();
        let k2 = (pk.g2_a * (r1 + r2) + pk.g2_b * (h * r1)).to_affine();
        let k3 = (pk.g2_b * r2).to_affine();
        let rows = lsss
            .rows()
            .iter()
            .map(|row| {
                let lambda = row.dot(&v);
                (
                    (g2 * lambda).to_affine(),
                    (hash::attribute(row.label()) * lambda).to_affine(),
                )
            })
            .collect();
        Ok(IndexEntry {
            policy: policy.clone(),
            lsss,
            k1,
            k2,
            k3,
            rows,
        })
    }
}
