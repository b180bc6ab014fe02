//! Test-only oracle backend: the pure-Rust `bls12_381` crate (zkcrypto).

use super::Backend;
use bls12_381::hash_to_curve::{ExpandMsgXmd, HashToCurve};
use bls12_381::{Bls12, G1Affine, G1Projective, G2Affine, G2Prepared, G2Projective, Gt, Scalar};
use pairing::MultiMillerLoop;

/// BLS12-381 via the zkcrypto `bls12_381` crate.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Zk;

impl Backend for Zk {
    type Scalar = Scalar;
    type G1 = G1Projective;
    type G1Affine = G1Affine;
    type G2 = G2Projective;
    type G2Affine = G2Affine;
    type Gt = Gt;

    fn hash_to_g1(msg: &[u8], dst: &[u8]) -> G1Projective {
        <G1Projective as HashToCurve<ExpandMsgXmd<sha2_09::Sha256>>>::hash_to_curve(msg, dst)
    }

    fn multi_pairing(terms: &[(G1Affine, G2Affine)]) -> Gt {
        let prepared: Vec<(G1Affine, G2Prepared)> = terms
            .iter()
            .map(|(p, q)| (*p, G2Prepared::from(*q)))
            .collect();
        let refs: Vec<(&G1Affine, &G2Prepared)> = prepared.iter().map(|(p, q)| (p, q)).collect();
        Bls12::multi_miller_loop(&refs).final_exponentiation()
    }

    fn gt_conditional_assign(dst: &mut Gt, src: &Gt, choice: subtle::Choice) {
        subtle::ConditionallySelectable::conditional_assign(dst, src, choice);
    }

    // The zkcrypto crate has no public encoding of Gt. This oracle backend is only used
    // to compare G1/G2 encodings and to check Gt equalities within itself, so a
    // deterministic stand-in (its Debug text, padded) is enough; it never decodes.
    const GT_BYTES: usize = 288;

    fn gt_encode(gt: &Gt, out: &mut Vec<u8>) {
        let mut text = format!("{gt:?}").into_bytes();
        text.resize(288, 0);
        out.extend_from_slice(&text[..288]);
    }

    fn gt_decode(_bytes: &[u8]) -> Option<Gt> {
        None
    }

    fn gt_kdf_bytes(gt: &Gt) -> Vec<u8> {
        format!("{gt:?}").into_bytes()
    }

    fn vartime_msm_g1(points: &[G1Affine], scalars: &[Scalar]) -> G1Projective {
        points
            .iter()
            .zip(scalars)
            .fold(G1Projective::identity(), |acc, (p, s)| acc + p * s)
    }
}
