//! The production backend: `blstrs` over the `blst` assembly library.

use super::Backend;
use blstrs::{Compress, Fp12, G1Affine, G1Projective, G2Affine, G2Projective, Gt, Scalar};
use group::Group;

/// BLS12-381 via `blstrs`/`blst`.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Blst;

impl Backend for Blst {
    type Scalar = Scalar;
    type G1 = G1Projective;
    type G1Affine = G1Affine;
    type G2 = G2Projective;
    type G2Affine = G2Affine;
    type Gt = Gt;

    fn hash_to_g1(msg: &[u8], dst: &[u8]) -> G1Projective {
        G1Projective::hash_to_curve(msg, dst, &[])
    }

    fn multi_pairing(terms: &[(G1Affine, G2Affine)]) -> Gt {
        if terms.is_empty() {
            return <Gt as group::Group>::identity();
        }
        // blst's miller_loop_n shares the squarings of all terms in one loop (blstrs'
        // own `multi_miller_loop` runs one loop per term). Built with blst's
        // `no-threads` feature it runs on the calling thread.
        let ps: Vec<blst::blst_p1_affine> = terms.iter().map(|(p, _)| *p.as_ref()).collect();
        let qs: Vec<blst::blst_p2_affine> = terms.iter().map(|(_, q)| *q.as_ref()).collect();
        let f = blst::blst_fp12::miller_loop_n(&qs, &ps).final_exp();
        Gt::from(Fp12::from(f))
    }

    fn gt_conditional_assign(dst: &mut Gt, src: &Gt, choice: subtle::Choice) {
        use subtle::ConditionallySelectable;
        let mut f = Fp12::from(*dst);
        f.conditional_assign(&Fp12::from(*src), choice);
        *dst = Gt::from(f);
    }

    const GT_BYTES: usize = 288;

    fn gt_encode(gt: &Gt, out: &mut Vec<u8>) {
        // Torus compression panics on the identity (its Fp6 part c1 is zero); no honest
        // public key contains it, so it is written as zeros, which never decode.
        let start = out.len();
        if bool::from(gt.is_identity()) || gt.write_compressed(&mut *out).is_err() {
            out.truncate(start);
            out.extend_from_slice(&[0u8; 288]);
        }
    }

    fn gt_decode(bytes: &[u8]) -> Option<Gt> {
        if bytes.len() != 288 || bytes.iter().all(|b| *b == 0) {
            return None;
        }
        let gt = Gt::read_compressed(bytes).ok()?;
        // Decompression checks subgroup membership; the encoding must also be the one
        // we would write (no second encoding of the same element).
        let mut again = Vec::with_capacity(288);
        Self::gt_encode(&gt, &mut again);
        (!bool::from(gt.is_identity()) && again == bytes).then_some(gt)
    }

    /// Canonical bytes of a target-group element (576 bytes, big-endian Fp12
    /// coefficients). Used only as KDF input, never decoded.
    fn gt_kdf_bytes(gt: &Gt) -> Vec<u8> {
        let f: blst::blst_fp12 = Fp12::from(*gt).into();
        f.to_bendian().to_vec()
    }

    fn vartime_msm_g1(points: &[G1Affine], scalars: &[Scalar]) -> G1Projective {
        let projective: Vec<G1Projective> = points.iter().map(G1Projective::from).collect();
        G1Projective::multi_exp(&projective, scalars)
    }
}
