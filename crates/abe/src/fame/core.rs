//! FAME (Agrawal & Chase, CCS 2017), type-III, generic over the curve backend.
//!
//! Notation follows the paper: g generates G1 (hashes land in G1), h generates G2.
//!
//! * pk  = (H1 = h^a1, H2 = h^a2, T1 = e(g,h)^(d1 a1 + d3), T2 = e(g,h)^(d2 a2 + d3))
//! * msk = (a1, a2, b1, b2, g^d1, g^d2, g^d3)
//! * key = (sk0 = (h^(b1 r1), h^(b2 r2), h^(r1+r2)), {sk_y,1..3}, sk'_1..3)
//! * ct  = (ct0 = (H1^s1, H2^s2, h^(s1+s2)), {ct_i,1..3}), KEM key T1^s1 T2^s2
//!
//! Decapsulation is the 6-term product of pairings of the paper, computed as one
//! multi-Miller loop and one final exponentiation, after six row products that are
//! linear combinations with the (public) LSSS coefficients.

use crate::curve::{
    Backend, batch_affine, random_nonzero_scalar, random_scalar, vartime_lincomb_g1,
};
use crate::error::{Error, Result};
use crate::hash::{HashCache, fame_index};
use crate::lsss::Lsss;
use crate::policy::{AttributeSet, Policy};
use crate::secret::SecretScalar;
use ff::Field;
use group::{Curve, Group};
use rand_core::CryptoRngCore;

/// Cloning starts with an empty hash cache.
#[derive(Clone)]
pub(crate) struct PublicKey<B: Backend> {
    pub(crate) h_a: [B::G2Affine; 2],
    pub(crate) t: [B::Gt; 2],
    pub(crate) cache: HashCache<B>,
}

pub(crate) struct MasterKey<B: Backend> {
    pub(crate) a: [SecretScalar<B::Scalar>; 2],
    pub(crate) b: [SecretScalar<B::Scalar>; 2],
    pub(crate) g_d: [B::G1Affine; 3],
}

pub(crate) struct UserKey<B: Backend> {
    pub(crate) attrs: AttributeSet,
    /// Sorted, distinct labels; `sk[i]` belongs to `labels[i]`.
    pub(crate) labels: Vec<String>,
    pub(crate) sk0: [B::G2Affine; 3],
    pub(crate) sk: Vec<[B::G1Affine; 3]>,
    pub(crate) sk_prime: [B::G1Affine; 3],
}

#[derive(Clone)]
pub(crate) struct Ciphertext<B: Backend> {
    pub(crate) policy: Policy,
    pub(crate) ct0: [B::G2Affine; 3],
    pub(crate) rows: Vec<[B::G1Affine; 3]>,
}

/// The sorted, distinct labels an attribute set covers.
pub(crate) fn sorted_labels(attrs: &AttributeSet) -> Vec<String> {
    let mut labels: Vec<String> = attrs.labels().map(str::to_owned).collect();
    labels.sort_unstable();
    labels.dedup();
    labels
}

impl<B: Backend> Drop for UserKey<B> {
    /// Best-effort wipe of the key's secret components (see `secret`).
    fn drop(&mut self) {
        let zero = [<B::G1Affine as group::prime::PrimeCurveAffine>::identity(); 3];
        self.sk.fill(zero);
        self.sk_prime = zero;
        crate::secret::fence();
    }
}

impl<B: Backend> Drop for MasterKey<B> {
    fn drop(&mut self) {
        self.g_d = [<B::G1Affine as group::prime::PrimeCurveAffine>::identity(); 3];
        crate::secret::fence();
    }
}

pub(crate) fn setup<B: Backend>(
    rng: &mut (impl CryptoRngCore + ?Sized),
) -> (PublicKey<B>, MasterKey<B>) {
    // `from_fn` calls the closure in index order: a1, a2, b1, b2, d1, d2, d3 from the RNG.
    let a: [SecretScalar<B::Scalar>; 2] =
        core::array::from_fn(|_| SecretScalar(random_nonzero_scalar(rng)));
    let b: [SecretScalar<B::Scalar>; 2] =
        core::array::from_fn(|_| SecretScalar(random_nonzero_scalar(rng)));
    let d: [SecretScalar<B::Scalar>; 3] =
        core::array::from_fn(|_| SecretScalar(random_scalar(rng)));
    let g = B::G1::generator();
    let h = B::G2::generator();
    let gt = B::gt_generator();
    let pk = PublicKey {
        h_a: [(h * *a[0]).to_affine(), (h * *a[1]).to_affine()],
        t: [gt * (*d[0] * *a[0] + *d[2]), gt * (*d[1] * *a[1] + *d[2])],
        cache: HashCache::default(),
    };
    let msk = MasterKey {
        a,
        b,
        g_d: d.each_ref().map(|d| (g * **d).to_affine()),
    };
    (pk, msk)
}

/// Whether `msk` comes from the same setup as `pk` ([`Error::MasterKeyMismatch`] if not).
///
/// The master key belongs to `pk` iff (among others) H_t = h^(a_t): two G2
/// multiplications, no pairing. It identifies the setup (the a_t are random per setup);
/// b1, b2 appear in no public value, so no check can cover them.
pub(crate) fn check_master_key<B: Backend>(pk: &PublicKey<B>, msk: &MasterKey<B>) -> Result<()> {
    let h = B::G2::generator();
    for (a, h_a) in msk.a.iter().zip(&pk.h_a) {
        if (h * **a).to_affine() != *h_a {
            return Err(Error::MasterKeyMismatch);
        }
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
    let g = B::G1::generator();
    let h = B::G2::generator();
    let r1 = SecretScalar(random_scalar::<B::Scalar>(rng));
    let r2 = SecretScalar(random_scalar::<B::Scalar>(rng));
    let (b1r1, b2r2, r12) = (
        SecretScalar(*msk.b[0] * *r1),
        SecretScalar(*msk.b[1] * *r2),
        SecretScalar(*r1 + *r2),
    );
    let sk0 = [
        (h * *b1r1).to_affine(),
        (h * *b2r2).to_affine(),
        (h * *r12).to_affine(),
    ];

    // e[t] = (b1 r1 / a_t, b2 r2 / a_t, (r1 + r2) / a_t) and 1 / a_t.
    let mut inv_a = Vec::with_capacity(2);
    for a in &msk.a {
        let inv: Option<B::Scalar> = a.invert().into();
        inv_a.push(SecretScalar(inv.ok_or(Error::Decryption)?));
    }
    let e: Vec<[SecretScalar<B::Scalar>; 3]> = inv_a
        .iter()
        .map(|ia| {
            [
                SecretScalar(*b1r1 * **ia),
                SecretScalar(*b2r2 * **ia),
                SecretScalar(*r12 * **ia),
            ]
        })
        .collect();

    // H(.,1,t)^e1 H(.,2,t)^e2 H(.,3,t)^e3 g^(sigma / a_t)
    let component = |hashes: &[B::G1Affine; 6], t: usize, sigma: &B::Scalar| -> B::G1 {
        let mut acc = g * (*sigma * *inv_a[t]);
        for l in 0..3 {
            acc += hashes[fame_index(l + 1, t + 1)] * *e[t][l];
        }
        acc
    };

    let labels = sorted_labels(attrs);
    let mut projective = Vec::with_capacity(3 * labels.len() + 3);
    for label in &labels {
        let hashes = pk.cache.fame_attribute(label);
        let sigma = SecretScalar(random_scalar::<B::Scalar>(rng));
        projective.push(component(&hashes, 0, &sigma));
        projective.push(component(&hashes, 1, &sigma));
        projective.push(g * -*sigma);
    }
    let column0 = pk.cache.fame_column(0);
    let sigma_prime = SecretScalar(random_scalar::<B::Scalar>(rng));
    projective.push(component(&column0, 0, &sigma_prime) + msk.g_d[0]);
    projective.push(component(&column0, 1, &sigma_prime) + msk.g_d[1]);
    projective.push(-(g * *sigma_prime) + msk.g_d[2]);

    let affine = batch_affine(&projective);
    let mut triples = affine.chunks_exact(3).map(|c| [c[0], c[1], c[2]]);
    let sk: Vec<_> = triples.by_ref().take(labels.len()).collect();
    let sk_prime = triples.next().ok_or(Error::Decryption)?;
    Ok(UserKey {
        attrs: attrs.clone(),
        labels,
        sk0,
        sk,
        sk_prime,
    })
}

pub(crate) fn encapsulate<B: Backend>(
    pk: &PublicKey<B>,
    policy: &Policy,
    rng: &mut (impl CryptoRngCore + ?Sized),
) -> Result<(B::Gt, Ciphertext<B>)> {
    let m = Lsss::<B::Scalar>::from_policy(policy);
    let s1 = SecretScalar(random_scalar::<B::Scalar>(rng));
    let s2 = SecretScalar(random_scalar::<B::Scalar>(rng));
    let h = B::G2::generator();
    let ct0 = [
        (pk.h_a[0] * *s1).to_affine(),
        (pk.h_a[1] * *s2).to_affine(),
        (h * (*s1 + *s2)).to_affine(),
    ];
    let columns: Vec<_> = (0..m.columns)
        .map(|j| pk.cache.fame_column(u32::try_from(j).unwrap_or(u32::MAX)))
        .collect();

    let mut projective = Vec::with_capacity(3 * m.rows.len());
    let mut bases = Vec::new();
    let mut coeffs = Vec::new();
    for row in &m.rows {
        let attr = pk.cache.fame_attribute(&row.label);
        for l in 1..=3 {
            // ct_{i,l} = A^s1 B^s2 with A = H(y,l,1) prod_j H(0j,l,1)^M_ij (public, cheap:
            // the entries are small) and B likewise for t = 2.
            let mut ab = [B::G1::identity(); 2];
            for (t, base) in ab.iter_mut().enumerate() {
                bases.clear();
                coeffs.clear();
                bases.push(attr[fame_index(l, t + 1)]);
                coeffs.push(B::Scalar::ONE);
                for (j, x) in &row.coeffs {
                    if let Some(col) = columns.get(*j) {
                        bases.push(col[fame_index(l, t + 1)]);
                        coeffs.push(*x);
                    }
                }
                *base = vartime_lincomb_g1::<B>(&bases, &coeffs);
            }
            projective.push(ab[0] * *s1 + ab[1] * *s2);
        }
    }
    let affine = batch_affine(&projective);
    let rows = affine.chunks_exact(3).map(|c| [c[0], c[1], c[2]]).collect();
    // T1^s1 T2^s2 from the key's fixed-base tables (constant time in s1, s2).
    let tables = pk.cache.gt_tables(&pk.t);
    let key = tables[0].pow(&s1) + tables[1].pow(&s2);
    Ok((
        key,
        Ciphertext {
            policy: policy.clone(),
            ct0,
            rows,
        },
    ))
}

pub(crate) fn decapsulate<B: Backend>(key: &UserKey<B>, ct: &Ciphertext<B>) -> Result<B::Gt> {
    let m = Lsss::<B::Scalar>::from_policy(&ct.policy);
    let coefficients = m.reconstruct(&key.attrs).ok_or(Error::PolicyNotSatisfied)?;
    let mut gammas = Vec::with_capacity(coefficients.len());
    let mut ct_rows: [Vec<B::G1Affine>; 3] = Default::default();
    let mut key_rows: [Vec<B::G1Affine>; 3] = Default::default();
    for (i, gamma) in coefficients {
        let label = &m.rows.get(i).ok_or(Error::Decryption)?.label;
        let k = key
            .labels
            .binary_search(label)
            .map_err(|_| Error::Decryption)?;
        let (ct_row, key_row) = (
            ct.rows.get(i).ok_or(Error::Decryption)?,
            key.sk.get(k).ok_or(Error::Decryption)?,
        );
        gammas.push(gamma);
        for l in 0..3 {
            ct_rows[l].push(ct_row[l]);
            key_rows[l].push(key_row[l]);
        }
    }
    let mut g1 = Vec::with_capacity(6);
    for (rows, sk_prime) in key_rows.iter().zip(&key.sk_prime) {
        g1.push(vartime_lincomb_g1::<B>(rows, &gammas) + *sk_prime);
    }
    for rows in &ct_rows {
        g1.push(-vartime_lincomb_g1::<B>(rows, &gammas));
    }
    let g1 = batch_affine(&g1);
    let terms = [
        (g1[0], ct.ct0[0]),
        (g1[1], ct.ct0[1]),
        (g1[2], ct.ct0[2]),
        (g1[3], key.sk0[0]),
        (g1[4], key.sk0[1]),
        (g1[5], key.sk0[2]),
    ];
    Ok(B::multi_pairing(&terms))
}
