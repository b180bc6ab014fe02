//! Hashing for ABKS: attribute labels to G1 (RFC 9380 `hash_to_curve`) and keywords to
//! scalars (RFC 9380 `hash_to_field`, `expand_message_xmd` with SHA-256), each with its
//! own domain-separation tag.

use crate::error::{Error, Result};
use crate::keyword::Keyword;
use blstrs::{G1Affine, G1Projective, Scalar};
use group::Curve;

/// DST of attribute hashes `H(j)` in G1.
pub const DST_ABKS_ATTR: &[u8] = b"MEDSEAL-V1-ABKS-ATTR_BLS12381G1_XMD:SHA-256_SSWU_RO_";
/// DST of keyword hashes `H1(w)` in Z_r.
pub const DST_ABKS_KEYWORD: &[u8] = b"MEDSEAL-V1-ABKS-KEYWORD_BLS12381FR_XMD:SHA-256_";

/// `H(label)` in G1.
pub(crate) fn attribute(label: &str) -> G1Affine {
    G1Projective::hash_to_curve(label.as_bytes(), DST_ABKS_ATTR, &[]).to_affine()
}

/// `H1(w)` in Z_r: 48 bytes of `expand_message_xmd`, reduced mod r.
pub(crate) fn keyword(keyword: &Keyword) -> Result<Scalar> {
    let s = blst::blst_scalar::hash_to(keyword.as_bytes(), DST_ABKS_KEYWORD)
        .ok_or(Error::DegenerateHash)?;
    s.try_into().map_err(|_| Error::DegenerateHash)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ff::Field;

    #[test]
    fn separated_and_deterministic() {
        let a = keyword(&Keyword::term("a").unwrap()).unwrap();
        let b = keyword(&Keyword::term("b").unwrap()).unwrap();
        assert_ne!(a, b);
        assert_ne!(a, Scalar::ZERO);
        assert_eq!(a, keyword(&Keyword::term("a").unwrap()).unwrap());
        assert_ne!(attribute("role:doctor"), attribute("role:nurse"));
    }
}
