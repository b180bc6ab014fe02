//! The small curve interface the schemes are written against.
//!
//! Scheme code (FAME, BSW07) is generic over [`Backend`], so it is written once. The
//! production backend is [`Blst`] (`blstrs`, i.e. the `blst` assembly library). Tests also
//! run the same scheme code over the pure-Rust `bls12_381` crate as a differential oracle:
//! given the same RNG stream both backends must produce byte-identical keys and
//! ciphertexts, which checks hashing, arithmetic and encodings against an independent
//! implementation.
//!
//! Everything here is crate-private: the public API exposes only concrete types.

mod blst;
#[cfg(test)]
pub(crate) mod zk;

pub(crate) use blst::Blst;

use ff::{Field, PrimeField};
use group::prime::{PrimeCurve, PrimeCurveAffine};
use group::{Group, GroupEncoding};
use rand_core::CryptoRngCore;

/// Compressed size of a G1 point.
pub(crate) const G1_BYTES: usize = 48;
/// Compressed size of a G2 point.
pub(crate) const G2_BYTES: usize = 96;

/// A BLS12-381 implementation.
///
/// The associated types use the `ff`/`group` 0.13 traits that both `blstrs` and
/// `bls12_381` implement; the few operations those traits lack (hashing to the curve,
/// multi-pairings, multi-scalar multiplication, target-group bytes) are methods here.
pub(crate) trait Backend: Sized + 'static {
    /// The scalar field Z_r.
    type Scalar: PrimeField;
    /// G1 in projective form.
    type G1: PrimeCurve<Scalar = Self::Scalar, Affine = Self::G1Affine>;
    /// G1 in affine form.
    type G1Affine: PrimeCurveAffine<Scalar = Self::Scalar, Curve = Self::G1>
        + GroupEncoding
        + Send
        + Sync;
    /// G2 in projective form.
    type G2: PrimeCurve<Scalar = Self::Scalar, Affine = Self::G2Affine>;
    /// G2 in affine form.
    type G2Affine: PrimeCurveAffine<Scalar = Self::Scalar, Curve = Self::G2>
        + GroupEncoding
        + Send
        + Sync;
    /// The target group.
    type Gt: Group<Scalar = Self::Scalar> + PartialEq;

    /// RFC 9380 `hash_to_curve` into G1 with suite BLS12381G1_XMD:SHA-256_SSWU_RO_.
    fn hash_to_g1(msg: &[u8], dst: &[u8]) -> Self::G1;

    /// The product of pairings `prod e(p_i, q_i)`, computed as ONE multi-Miller loop
    /// (shared squarings) followed by ONE final exponentiation.
    fn multi_pairing(terms: &[(Self::G1Affine, Self::G2Affine)]) -> Self::Gt;

    /// `sum s_i * P_i` by Pippenger's method. Variable time in the scalars: call it only
    /// with public scalars (the LSSS reconstruction coefficients are public).
    fn vartime_msm_g1(points: &[Self::G1Affine], scalars: &[Self::Scalar]) -> Self::G1;

    /// Size of an encoded target-group element.
    const GT_BYTES: usize;

    /// Compressed encoding of a target-group element (public keys carry two).
    fn gt_encode(gt: &Self::Gt, out: &mut Vec<u8>);

    /// Decodes [`Backend::gt_encode`]'s output, checking canonical form and subgroup
    /// membership; rejects the identity.
    fn gt_decode(bytes: &[u8]) -> Option<Self::Gt>;

    /// Canonical bytes of a target-group element, used as KDF input.
    fn gt_kdf_bytes(gt: &Self::Gt) -> Vec<u8>;

    /// `if choice { *dst = *src }` in constant time (the target group's
    /// `ConditionallySelectable`, which not every backend implements on its type).
    fn gt_conditional_assign(dst: &mut Self::Gt, src: &Self::Gt, choice: subtle::Choice);

    /// The generator of the target group, `e(g1, g2)`.
    fn gt_generator() -> Self::Gt {
        Self::Gt::generator()
    }
}

/// A uniformly random scalar, from 64 bytes of the caller's RNG reduced mod r.
///
/// Both backends sample identically (the reduction is generic), which is what makes the
/// differential tests possible; the 512-bit reduction has statistical bias < 2^-250.
pub(crate) fn random_scalar<F: PrimeField>(rng: &mut (impl CryptoRngCore + ?Sized)) -> F {
    let mut wide = [0u8; 64];
    rng.fill_bytes(&mut wide);
    let two_128 = F::from_u128(1u128 << 127).double();
    let mut acc = F::ZERO;
    for chunk in wide.chunks_exact(16) {
        let mut limb = [0u8; 16];
        limb.copy_from_slice(chunk);
        acc = acc * two_128 + F::from_u128(u128::from_be_bytes(limb));
    }
    zeroize::Zeroize::zeroize(&mut wide);
    acc
}

/// A uniformly random non-zero scalar.
pub(crate) fn random_nonzero_scalar<F: PrimeField>(rng: &mut (impl CryptoRngCore + ?Sized)) -> F {
    loop {
        let s: F = random_scalar(rng);
        if !bool::from(s.is_zero()) {
            return s;
        }
    }
}

/// Converts a batch of projective points to affine with one shared inversion.
pub(crate) fn batch_affine<C: PrimeCurve>(points: &[C]) -> Vec<C::Affine> {
    let mut out = vec![C::Affine::identity(); points.len()];
    C::batch_normalize(points, &mut out);
    out
}

/// Windows of [`GtPowTable`]: 4 bits each, 64 of them cover a 256-bit scalar.
const GT_WINDOWS: usize = 64;

/// Fixed-base exponentiation in the target group, in constant time.
///
/// Encryption raises the public key's fixed target-group elements (FAME's T1, T2,
/// BSW07's e(g,g)^alpha) to secret exponents. Double-and-add (`blstrs`' `Gt * Scalar`)
/// costs ~255 squarings and ~128 multiplications in Fp12, and the multiplications it does
/// depend on the secret's bits. With `base^(d 16^i)` precomputed for every 4-bit digit `d`
/// and window `i`, a power is 64 multiplications, and each window's entry is selected by
/// scanning all 16 in constant time. The table holds 64 × 16 elements (576 KiB with
/// `blstrs`); building it costs 960 multiplications, about four plain exponentiations.
pub(crate) struct GtPowTable<B: Backend> {
    windows: Vec<[B::Gt; 16]>,
}

impl<B: Backend> GtPowTable<B> {
    pub(crate) fn new(base: &B::Gt) -> Self {
        let mut windows = Vec::with_capacity(GT_WINDOWS);
        // base^(16^i) for the current window i.
        let mut unit = *base;
        for _ in 0..GT_WINDOWS {
            let mut row = [B::Gt::identity(); 16];
            for d in 1..16 {
                row[d] = row[d - 1] + unit;
            }
            unit = row[15] + unit;
            windows.push(row);
        }
        Self { windows }
    }

    /// `base^s`, in time independent of `s`.
    pub(crate) fn pow(&self, s: &B::Scalar) -> B::Gt {
        use subtle::ConstantTimeEq;
        // Both backends' scalar representation is 32 little-endian bytes (checked
        // against plain exponentiation by the tests).
        let mut repr = s.to_repr();
        let mut acc = B::Gt::identity();
        for (i, row) in self.windows.iter().enumerate() {
            let byte = repr.as_ref().get(i / 2).copied().unwrap_or(0);
            let digit = (byte >> (4 * (i % 2))) & 0x0f;
            let mut entry = row[0];
            for (d, candidate) in (0u8..).zip(row.iter()).skip(1) {
                B::gt_conditional_assign(&mut entry, candidate, d.ct_eq(&digit));
            }
            acc += entry;
        }
        zeroize::Zeroize::zeroize(repr.as_mut());
        acc
    }
}

/// Public small integers that appear as LSSS coefficients get a fast path: a
/// coefficient of 1 or -1 costs one addition instead of a 255-bit multiplication.
pub(crate) fn vartime_lincomb_g1<B: Backend>(
    points: &[B::G1Affine],
    scalars: &[B::Scalar],
) -> B::G1 {
    let one = B::Scalar::ONE;
    let minus_one = -one;
    let mut acc = B::G1::identity();
    let mut rest_points = Vec::new();
    let mut rest_scalars = Vec::new();
    for (p, s) in points.iter().zip(scalars) {
        if *s == one {
            acc += *p;
        } else if *s == minus_one {
            acc -= *p;
        } else if bool::from(s.is_zero()) {
            continue;
        } else {
            rest_points.push(*p);
            rest_scalars.push(*s);
        }
    }
    if !rest_points.is_empty() {
        acc += B::vartime_msm_g1(&rest_points, &rest_scalars);
    }
    acc
}

#[cfg(test)]
mod tests {
    use super::*;
    use group::Curve;
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    /// RFC 9380 appendix J.9.1 (BLS12381G1_XMD:SHA-256_SSWU_RO_), msg = "abc".
    const RFC9380_DST: &[u8] = b"QUUX-V01-CS02-with-BLS12381G1_XMD:SHA-256_SSWU_RO_";
    const RFC9380_ABC_X: &str = "03567bc5ef9c690c2ab2ecdf6a96ef1c139cc0b2f284dca0a9a7943388a49a3aee664ba5379a7655d3c68900be2f6903";

    fn x_hex<B: Backend>(p: &B::G1Affine) -> String {
        // The compressed encoding is x (big-endian) with flag bits in the top byte.
        let bytes = p.to_bytes();
        let mut x = bytes.as_ref().to_vec();
        x[0] &= 0x1f;
        x.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn hash_to_g1_matches_rfc9380_vector_on_both_backends() {
        let a = Blst::hash_to_g1(b"abc", RFC9380_DST).to_affine();
        let b = zk::Zk::hash_to_g1(b"abc", RFC9380_DST).to_affine();
        assert_eq!(x_hex::<Blst>(&a), RFC9380_ABC_X);
        assert_eq!(x_hex::<zk::Zk>(&b), RFC9380_ABC_X);
    }

    #[test]
    fn random_scalar_is_backend_independent() {
        let mut r1 = ChaCha20Rng::seed_from_u64(7);
        let mut r2 = ChaCha20Rng::seed_from_u64(7);
        for _ in 0..32 {
            let a: <Blst as Backend>::Scalar = random_scalar(&mut r1);
            let b: <zk::Zk as Backend>::Scalar = random_scalar(&mut r2);
            assert_eq!(a.to_repr().as_ref(), b.to_repr().as_ref());
        }
    }

    #[test]
    fn multi_pairing_is_bilinear_and_agrees_with_products() {
        let mut rng = ChaCha20Rng::seed_from_u64(8);
        let a: <Blst as Backend>::Scalar = random_scalar(&mut rng);
        let b: <Blst as Backend>::Scalar = random_scalar(&mut rng);
        let g1 = <Blst as Backend>::G1Affine::generator();
        let g2 = <Blst as Backend>::G2Affine::generator();
        let lhs = Blst::multi_pairing(&[((g1 * a).to_affine(), (g2 * b).to_affine())]);
        assert!(lhs == Blst::gt_generator() * (a * b));
        // e(aP, Q) * e(-P, aQ) == 1
        let one = Blst::multi_pairing(&[((g1 * a).to_affine(), g2), (-g1, (g2 * a).to_affine())]);
        assert!(bool::from(one.is_identity()));
    }

    fn pow_table_matches_plain_exponentiation<B: Backend>() {
        let mut rng = ChaCha20Rng::seed_from_u64(10);
        let base = B::gt_generator() * random_scalar::<B::Scalar>(&mut rng);
        let table = GtPowTable::<B>::new(&base);
        let mut scalars = vec![
            B::Scalar::ZERO,
            B::Scalar::ONE,
            -B::Scalar::ONE,
            B::Scalar::from(15u64),
            B::Scalar::from(16u64),
        ];
        scalars.extend((0..8).map(|_| random_scalar::<B::Scalar>(&mut rng)));
        for s in &scalars {
            assert!(table.pow(s) == base * s);
        }
    }

    #[test]
    fn gt_pow_table_matches_plain_exponentiation_on_both_backends() {
        pow_table_matches_plain_exponentiation::<Blst>();
        pow_table_matches_plain_exponentiation::<zk::Zk>();
    }

    #[test]
    fn lincomb_matches_naive_sum() {
        let mut rng = ChaCha20Rng::seed_from_u64(9);
        type S = <Blst as Backend>::Scalar;
        let g1 = <Blst as Backend>::G1::generator();
        let points: Vec<_> = (0..7)
            .map(|_| (g1 * random_scalar::<S>(&mut rng)).to_affine())
            .collect();
        let scalars = [
            S::ONE,
            -S::ONE,
            S::ZERO,
            S::from(5u64),
            random_scalar(&mut rng),
            -S::from(3u64),
            S::ONE,
        ];
        let naive = points
            .iter()
            .zip(&scalars)
            .fold(<Blst as Backend>::G1::identity(), |acc, (p, s)| {
                acc + *p * s
            });
        assert_eq!(vartime_lincomb_g1::<Blst>(&points, &scalars), naive);
    }
}
