//! BSW07 (Bethencourt, Sahai, Waters, S&P 2007), ported to type-III pairings, generic
//! over the curve backend, with LSSS shares in place of the access tree's polynomials
//! (the tree's Shamir sharing is exactly the Vandermonde LSSS of the same tree).
//!
//! Group assignment (every pairing has one side in each group; hashes in G1):
//!
//! * pk  = (h = g1^beta in G1, e(g1, g2)^alpha)
//! * msk = (beta, g2^alpha in G2)
//! * key = (D = g2^((alpha + r) / beta) in G2, and per attribute j:
//!   D_j = g1^r H(j)^(r_j) in G1, D'_j = g2^(r_j) in G2)
//! * ct  = (C = h^s in G1, and per row y: C_y = g2^(lambda_y) in G2,
//!   C'_y = H(rho(y))^(lambda_y) in G1), KEM key e(g1, g2)^(alpha s)
//!
//! Decapsulation: e(C, D) * prod_y e(D_j^(-w_y), C_y) e(C'_y^(w_y), D'_j) = e(g1,g2)^(alpha s),
//! one multi-Miller loop of 1 + 2|I| terms.

use super::super::fame::core::sorted_labels;
use crate::curve::{
    Backend, batch_affine, random_nonzero_scalar, random_scalar, vartime_lincomb_g1,
};
use crate::error::{Error, Result};
use crate::hash::HashCache;
use crate::lsss::Lsss;
use crate::policy::{AttributeSet, Policy};
use crate::secret::SecretScalar;
use ff::Field;
use group::{Curve, Group};
use rand_core::CryptoRngCore;

/// Cloning starts with an empty hash cache.
#[derive(Clone)]
pub(crate) struct PublicKey<B: Backend> {
    pub(crate) h: B::G1Affine,
    pub(crate) egg_alpha: B::Gt,
    pub(crate) cache: HashCache<B>,
}

pub(crate) struct MasterKey<B: Backend> {
    pub(crate) beta: SecretScalar<B::Scalar>,
    pub(crate) g2_alpha: B::G2Affine,
}

pub(crate) struct UserKey<B: Backend> {
    pub(crate) attrs: AttributeSet,
    pub(crate) labels: Vec<String>,
    pub(crate) d: B::G2Affine,
    /// `(D_j, D'_j)` per label, in `labels` order.
    pub(crate) dj: Vec<(B::G1Affine, B::G2Affine)>,
}

#[derive(Clone)]
pub(crate) struct Ciphertext<B: Backend> {
    pub(crate) policy: Policy,
    pub(crate) c: B::G1Affine,
    /// `(C_y, C'_y)` per LSSS row.
    pub(crate) rows: Vec<(B::G2Affine, B::G1Affine)>,
}

impl<B: Backend> Drop for UserKey<B> {
    /// Best-effort wipe of the key's secret components (see `secret`).
    fn drop(&mut self) {
        let zero1 = <B::G1Affine as group::prime::PrimeCurveAffine>::identity();
        let zero2 = <B::G2Affine as group::prime::PrimeCurveAffine>::identity();
        self.d = zero2;
        self.dj.fill((zero1, zero2));
        crate::secret::fence();
    }
}

impl<B: Backend> Drop for MasterKey<B> {
    fn drop(&mut self) {
        self.g2_alpha = <B::G2Affine as group::prime::PrimeCurveAffine>::identity();
        crate::secret::fence();
    }
}

pub(crate) fn setup<B: Backend>(
    rng: &mut (impl CryptoRngCore + ?Sized),
) -> (PublicKey<B>, MasterKey<B>) {
    let beta = SecretScalar(random_nonzero_scalar::<B::Scalar>(rng));
    let alpha = SecretScalar(random_scalar::<B::Scalar>(rng));
    let pk = PublicKey {
        h: (B::G1::generator() * *beta).to_affine(),
        egg_alpha: B::gt_generator() * *alpha,
        cache: HashCache::default(),
    };
    let msk = MasterKey {
        beta,
        g2_alpha: (B::G2::generator() * *alpha).to_affine(),
    };
    (pk, msk)
}

/// Whether `msk` comes from the same setup as `pk` ([`Error::MasterKeyMismatch`] if not).
///
/// The master key belongs to `pk` iff h = g1^beta (one G1 multiplication; checking
/// e(g1, g2^alpha) against pk's e(g,g)^alpha would cost a pairing and beta alone already
/// identifies the setup).
pub(crate) fn check_master_key<B: Backend>(pk: &PublicKey<B>, msk: &MasterKey<B>) -> Result<()> {
    if (B::G1::generator() * *msk.beta).to_affine() != pk.h {
        return Err(Error::MasterKeyMismatch);
    }
    Ok(())
}

pub(crate) fn keygen<B: Backend>(
    pk: &PublicKey<B>,
    msk: &MasterKey<B>,
    attrs: &AttributeSet,
    rng: &mut (impl CryptoRngCore + ?Sized),
) -> Result<UserKey<B>> {
    check_master_key(pk, msk)?;
    let r = SecretScalar(random_scalar::<B::Scalar>(rng));
    let inv_beta: Option<B::Scalar> = msk.beta.invert().into();
    let inv_beta = SecretScalar(inv_beta.ok_or(Error::Decryption)?);
    let d = ((B::G2::generator() * *r + msk.g2_alpha) * *inv_beta).to_affine();
    let g1_r = B::G1::generator() * *r;
    let labels = sorted_labels(attrs);
    let mut g1 = Vec::with_capacity(labels.len());
    let mut g2 = Vec::with_capacity(labels.len());
    for label in &labels {
        let rj = SecretScalar(random_scalar::<B::Scalar>(rng));
        g1.push(g1_r + pk.cache.bsw07_attribute(label) * *rj);
        g2.push(B::G2::generator() * *rj);
    }
    let dj = batch_affine(&g1)
        .into_iter()
        .zip(batch_affine(&g2))
        .collect();
    Ok(UserKey {
        attrs: attrs.clone(),
        labels,
        d,
        dj,
    })
}

pub(crate) fn encapsulate<B: Backend>(
    pk: &PublicKey<B>,
    policy: &Policy,
    rng: &mut (impl CryptoRngCore + ?Sized),
) -> Result<(B::Gt, Ciphertext<B>)> {
    let m = Lsss::<B::Scalar>::from_policy(policy);
    let v: Vec<SecretScalar<B::Scalar>> = (0..m.columns.max(1))
        .map(|_| SecretScalar(random_scalar(rng)))
        .collect();
    let plain: Vec<B::Scalar> = v.iter().map(|x| **x).collect();
    let lambdas: Vec<SecretScalar<B::Scalar>> = m
        .rows
        .iter()
        .map(|row| SecretScalar(row.dot(&plain)))
        .collect();
    let s = v.first().map(|x| **x).unwrap_or(B::Scalar::ZERO);
    let mut g2 = Vec::with_capacity(m.rows.len());
    let mut g1 = Vec::with_capacity(m.rows.len() + 1);
    g1.push(pk.h * s);
    for (row, lambda) in m.rows.iter().zip(&lambdas) {
        g2.push(B::G2::generator() * **lambda);
        g1.push(pk.cache.bsw07_attribute(&row.label) * **lambda);
    }
    let g1 = batch_affine(&g1);
    let rows = batch_affine(&g2)
        .into_iter()
        .zip(g1.iter().skip(1).copied())
        .collect();
    let c = g1.first().copied().ok_or(Error::Decryption)?;
    // From the key's fixed-base table (constant time in s).
    let key = pk.cache.gt_tables(&[pk.egg_alpha])[0].pow(&s);
    Ok((
        key,
        Ciphertext {
            policy: policy.clone(),
            c,
            rows,
        },
    ))
}

pub(crate) fn decapsulate<B: Backend>(key: &UserKey<B>, ct: &Ciphertext<B>) -> Result<B::Gt> {
    let m = Lsss::<B::Scalar>::from_policy(&ct.policy);
    let coefficients = m.reconstruct(&key.attrs).ok_or(Error::PolicyNotSatisfied)?;
    let mut g1 = Vec::with_capacity(2 * coefficients.len() + 1);
    let mut g2 = Vec::with_capacity(2 * coefficients.len() + 1);
    g1.push(group::prime::PrimeCurveAffine::to_curve(&ct.c));
    g2.push(key.d);
    for (i, w) in coefficients {
        let label = &m.rows.get(i).ok_or(Error::Decryption)?.label;
        let k = key
            .labels
            .binary_search(label)
            .map_err(|_| Error::Decryption)?;
        let (dj, dj_prime) = key.dj.get(k).ok_or(Error::Decryption)?;
        let (cy, cy_prime) = ct.rows.get(i).ok_or(Error::Decryption)?;
        g1.push(vartime_lincomb_g1::<B>(&[*dj], &[-w]));
        g2.push(*cy);
        g1.push(vartime_lincomb_g1::<B>(&[*cy_prime], &[w]));
        g2.push(*dj_prime);
    }
    let g1 = batch_affine(&g1);
    let terms: Vec<_> = g1.into_iter().zip(g2).collect();
    Ok(B::multi_pairing(&terms))
}
