//! FAME encodings (bodies; the common header is in `codec`).
//!
//! ```text
//! public key: H1 G2 | H2 G2 | T1 Gt | T2 Gt
//! master key: a1 | a2 | b1 | b2 (scalars) | g^d1 | g^d2 | g^d3 (G1)
//! user key:   n u32 | n x attribute (u32 len + UTF-8) | sk0 3xG2
//!             | m x (sk_y,1 sk_y,2 sk_y,3) G1, one per label in sorted label order
//!             | sk'_1 sk'_2 sk'_3 G1
//! ciphertext: policy (u32 len + canonical UTF-8) | ct0 3xG2 | rows u32
//!             | rows x (ct_i,1 ct_i,2 ct_i,3) G1
//! ```

use super::core::{Ciphertext, MasterKey, PublicKey, UserKey, sorted_labels};
use crate::SchemeId;
use crate::codec::{Kind, Reader, Writer};
use crate::curve::{Backend, G1_BYTES};
use crate::error::{DecodeError, Result};
use crate::hash::HashCache;
use crate::secret::SecretScalar;
use crate::share::{parse_attributes, write_attributes};

const ID: SchemeId = SchemeId::Fame;

pub(crate) fn encode_pk<B: Backend>(pk: &PublicKey<B>) -> Vec<u8> {
    let mut w = Writer::for_scheme(Kind::PublicKey, ID);
    w.point(&pk.h_a[0]);
    w.point(&pk.h_a[1]);
    let mut gt = Vec::with_capacity(2 * B::GT_BYTES);
    B::gt_encode(&pk.t[0], &mut gt);
    B::gt_encode(&pk.t[1], &mut gt);
    w.raw(&gt);
    w.finish()
}

pub(crate) fn decode_pk<B: Backend>(bytes: &[u8]) -> Result<PublicKey<B>> {
    let mut r = Reader::for_scheme(bytes, Kind::PublicKey, ID)?;
    let h_a = [r.point("H1")?, r.point("H2")?];
    let t1 = B::gt_decode(r.take(B::GT_BYTES)?).ok_or(DecodeError::InvalidPoint("T1"))?;
    let t2 = B::gt_decode(r.take(B::GT_BYTES)?).ok_or(DecodeError::InvalidPoint("T2"))?;
    r.finish()?;
    Ok(PublicKey {
        h_a,
        t: [t1, t2],
        cache: HashCache::default(),
    })
}

pub(crate) fn encode_msk<B: Backend>(msk: &MasterKey<B>) -> Vec<u8> {
    let mut w = Writer::for_scheme(Kind::MasterKey, ID);
    for s in msk.a.iter().chain(&msk.b) {
        w.scalar(&**s);
    }
    for p in &msk.g_d {
        w.point(p);
    }
    w.finish()
}

pub(crate) fn decode_msk<B: Backend>(bytes: &[u8]) -> Result<MasterKey<B>> {
    let mut r = Reader::for_scheme(bytes, Kind::MasterKey, ID)?;
    let mut nonzero = |what| -> Result<SecretScalar<B::Scalar>, DecodeError> {
        let s: B::Scalar = r.scalar(what)?;
        if bool::from(ff::Field::is_zero(&s)) {
            return Err(DecodeError::InvalidScalar(what));
        }
        Ok(SecretScalar(s))
    };
    let a = [nonzero("a1")?, nonzero("a2")?];
    let b = [nonzero("b1")?, nonzero("b2")?];
    let g_d = [r.point("g^d1")?, r.point("g^d2")?, r.point("g^d3")?];
    r.finish()?;
    Ok(MasterKey { a, b, g_d })
}

pub(crate) fn encode_user_key<B: Backend>(key: &UserKey<B>) -> Vec<u8> {
    let mut w = Writer::for_scheme(Kind::UserKey, ID);
    write_attributes(&mut w, &key.attrs);
    for p in &key.sk0 {
        w.point(p);
    }
    for triple in key.sk.iter().chain(core::iter::once(&key.sk_prime)) {
        for p in triple {
            w.point(p);
        }
    }
    w.finish()
}

pub(crate) fn decode_user_key<B: Backend>(bytes: &[u8]) -> Result<UserKey<B>> {
    let mut r = Reader::for_scheme(bytes, Kind::UserKey, ID)?;
    let attrs = parse_attributes(&mut r)?;
    let labels = sorted_labels(&attrs);
    let sk0 = [r.point("sk0")?, r.point("sk0")?, r.point("sk0")?];
    if r.remaining() != (labels.len() + 1) * 3 * G1_BYTES {
        return Err(DecodeError::Inconsistent("key components do not match its attributes").into());
    }
    let mut sk = Vec::with_capacity(labels.len());
    for _ in 0..labels.len() {
        sk.push([r.point("sk_y")?, r.point("sk_y")?, r.point("sk_y")?]);
    }
    let sk_prime = [r.point("sk'")?, r.point("sk'")?, r.point("sk'")?];
    r.finish()?;
    Ok(UserKey {
        attrs,
        labels,
        sk0,
        sk,
        sk_prime,
    })
}

pub(crate) fn encode_ciphertext<B: Backend>(ct: &Ciphertext<B>) -> Vec<u8> {
    let mut w = Writer::for_scheme(Kind::Ciphertext, ID);
    w.policy(&ct.policy);
    for p in &ct.ct0 {
        w.point(p);
    }
    w.count(ct.rows.len());
    for row in &ct.rows {
        for p in row {
            w.point(p);
        }
    }
    w.finish()
}

pub(crate) fn decode_ciphertext<B: Backend>(bytes: &[u8]) -> Result<Ciphertext<B>> {
    let mut r = Reader::for_scheme(bytes, Kind::Ciphertext, ID)?;
    let policy = r.policy()?;
    let ct0 = [r.point("ct0")?, r.point("ct0")?, r.point("ct0")?];
    let n = r.count("ciphertext rows", policy.leaf_count(), 3 * G1_BYTES)?;
    if n != policy.leaf_count() {
        return Err(DecodeError::Inconsistent("row count does not match the policy").into());
    }
    let mut rows = Vec::with_capacity(n);
    for _ in 0..n {
        rows.push([r.point("ct_i")?, r.point("ct_i")?, r.point("ct_i")?]);
    }
    r.finish()?;
    Ok(Ciphertext { policy, ct0, rows })
}
