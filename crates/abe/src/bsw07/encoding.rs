//! BSW07 encodings (bodies; the common header is in `codec`).
//!
//! ```text
//! public key: h G1 | e(g1,g2)^alpha Gt
//! master key: beta scalar | g2^alpha G2
//! user key:   n u32 | n x attribute (u32 len + UTF-8) | D G2
//!             | m x (D_j G1, D'_j G2), one per label in sorted label order
//! ciphertext: policy (u32 len + canonical UTF-8) | C G1 | rows u32
//!             | rows x (C_y G2, C'_y G1)
//! ```

use super::core::{Ciphertext, MasterKey, PublicKey, UserKey};
use crate::SchemeId;
use crate::codec::{Kind, Reader, Writer};
use crate::curve::{Backend, G1_BYTES, G2_BYTES};
use crate::error::{DecodeError, Result};
use crate::fame::core::sorted_labels;
use crate::hash::HashCache;
use crate::share::{parse_attributes, write_attributes};

const ID: SchemeId = SchemeId::Bsw07;

pub(crate) fn encode_pk<B: Backend>(pk: &PublicKey<B>) -> Vec<u8> {
    let mut w = Writer::for_scheme(Kind::PublicKey, ID);
    w.point(&pk.h).gt::<B>(&pk.egg_alpha);
    w.finish()
}

pub(crate) fn decode_pk<B: Backend>(bytes: &[u8]) -> Result<PublicKey<B>> {
    let mut r = Reader::for_scheme(bytes, Kind::PublicKey, ID)?;
    let h = r.point("h")?;
    let egg_alpha = r.gt::<B>("e(g,g)^alpha")?;
    r.finish()?;
    Ok(PublicKey {
        h,
        egg_alpha,
        cache: HashCache::default(),
    })
}

pub(crate) fn encode_msk<B: Backend>(msk: &MasterKey<B>) -> Vec<u8> {
    let mut w = Writer::for_scheme(Kind::MasterKey, ID);
    w.scalar(&*msk.beta);
    w.point(&msk.g2_alpha);
    w.finish()
}

pub(crate) fn decode_msk<B: Backend>(bytes: &[u8]) -> Result<MasterKey<B>> {
    let mut r = Reader::for_scheme(bytes, Kind::MasterKey, ID)?;
    let beta = r.nonzero_scalar("beta")?;
    let g2_alpha = r.point("g2^alpha")?;
    r.finish()?;
    Ok(MasterKey { beta, g2_alpha })
}

pub(crate) fn encode_user_key<B: Backend>(key: &UserKey<B>) -> Vec<u8> {
    let mut w = Writer::for_scheme(Kind::UserKey, ID);
    write_attributes(&mut w, &key.attrs);
    w.point(&key.d);
    for (dj, dj_prime) in &key.dj {
        w.point(dj).point(dj_prime);
    }
    w.finish()
}

pub(crate) fn decode_user_key<B: Backend>(bytes: &[u8]) -> Result<UserKey<B>> {
    let mut r = Reader::for_scheme(bytes, Kind::UserKey, ID)?;
    let attrs = parse_attributes(&mut r)?;
    let labels = sorted_labels(&attrs);
    let d = r.point("D")?;
    if r.remaining() != labels.len() * (G1_BYTES + G2_BYTES) {
        return Err(DecodeError::Inconsistent("key components do not match its attributes").into());
    }
    let mut dj = Vec::with_capacity(labels.len());
    for _ in 0..labels.len() {
        dj.push((r.point("D_j")?, r.point("D'_j")?));
    }
    r.finish()?;
    Ok(UserKey {
        attrs,
        labels,
        d,
        dj,
    })
}

pub(crate) fn encode_ciphertext<B: Backend>(ct: &Ciphertext<B>) -> Vec<u8> {
    let mut w = Writer::for_scheme(Kind::Ciphertext, ID);
    w.policy(&ct.policy).point(&ct.c).count(ct.rows.len());
    for (cy, cy_prime) in &ct.rows {
        w.point(cy).point(cy_prime);
    }
    w.finish()
}

pub(crate) fn decode_ciphertext<B: Backend>(bytes: &[u8]) -> Result<Ciphertext<B>> {
    let mut r = Reader::for_scheme(bytes, Kind::Ciphertext, ID)?;
    let policy = r.policy()?;
    let c = r.point("C")?;
    let n = r.rows(&policy, G1_BYTES + G2_BYTES)?;
    let mut rows = Vec::with_capacity(n);
    for _ in 0..n {
        rows.push((r.point("C_y")?, r.point("C'_y")?));
    }
    r.finish()?;
    Ok(Ciphertext { policy, c, rows })
}
