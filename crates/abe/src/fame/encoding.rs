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
use crate::share::{parse_attributes, write_attributes};

const ID: SchemeId = SchemeId::Fame;

pub(crate) fn encode_pk<B: Backend>(pk: &PublicKey<B>) -> Vec<u8> {
    let mut w = Writer::for_scheme(Kind::PublicKey, ID);
    w.points(&pk.h_a).gt::<B>(&pk.t[0]).gt::<B>(&pk.t[1]);
    w.finish()
}

pub(crate) fn decode_pk<B: Backend>(bytes: &[u8]) -> Result<PublicKey<B>> {
    let mut r = Reader::for_scheme(bytes, Kind::PublicKey, ID)?;
    let h_a = [r.point("H1")?, r.point("H2")?];
    let t = [r.gt::<B>("T1")?, r.gt::<B>("T2")?];
    r.finish()?;
    Ok(PublicKey {
        h_a,
        t,
        cache: HashCache::default(),
    })
}

pub(crate) fn encode_msk<B: Backend>(msk: &MasterKey<B>) -> Vec<u8> {
    let mut w = Writer::for_scheme(Kind::MasterKey, ID);
    for s in msk.a.iter().chain(&msk.b) {
        w.scalar(&**s);
    }
    w.points(&msk.g_d);
    w.finish()
}

pub(crate) fn decode_msk<B: Backend>(bytes: &[u8]) -> Result<MasterKey<B>> {
    let mut r = Reader::for_scheme(bytes, Kind::MasterKey, ID)?;
    let a = [r.nonzero_scalar("a1")?, r.nonzero_scalar("a2")?];
    let b = [r.nonzero_scalar("b1")?, r.nonzero_scalar("b2")?];
    let g_d = [r.point("g^d1")?, r.point("g^d2")?, r.point("g^d3")?];
    r.finish()?;
    Ok(MasterKey { a, b, g_d })
}

pub(crate) fn encode_user_key<B: Backend>(key: &UserKey<B>) -> Vec<u8> {
    let mut w = Writer::for_scheme(Kind::UserKey, ID);
    write_attributes(&mut w, &key.attrs);
    w.points(&key.sk0);
    w.points(key.sk.iter().chain([&key.sk_prime]).flatten());
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
    w.policy(&ct.policy).points(&ct.ct0).count(ct.rows.len());
    w.points(ct.rows.iter().flatten());
    w.finish()
}

pub(crate) fn decode_ciphertext<B: Backend>(bytes: &[u8]) -> Result<Ciphertext<B>> {
    let mut r = Reader::for_scheme(bytes, Kind::Ciphertext, ID)?;
    let policy = r.policy()?;
    let ct0 = [r.point("ct0")?, r.point("ct0")?, r.point("ct0")?];
    let n = r.rows(&policy, 3 * G1_BYTES)?;
    let mut rows = Vec::with_capacity(n);
    for _ in 0..n {
        rows.push([r.point("ct_i")?, r.point("ct_i")?, r.point("ct_i")?]);
    }
    r.finish()?;
    Ok(Ciphertext { policy, ct0, rows })
}
