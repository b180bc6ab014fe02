//! The PRFs and everything derived from them (the hot loop of search).
//!
//! ```text
//! K_lab ‖ K_val ‖ tag = BLAKE3-XOF(key = K, "medseal-index/v1/keyword\0" ‖ w)[..80]
//! label_c       = AES-256(K_lab, u64_le(c) ‖ u64_le(0))
//! pad_c         = AES-256(K_val, u64_le(c) ‖ u64_le(0)) ‖ AES-256(K_val, u64_le(c) ‖ u64_le(1))
//! ```
//!
//! The per-keyword keys come from keyed BLAKE3 (a PRF on variable-length input; once per
//! keyword). The per-entry streams use AES-256 as a PRF on counters (a PRP, so labels of
//! one keyword never collide; the PRP/PRF distinguishing advantage is below q²/2^129):
//! with AES-NI a block costs a few cycles and the blocks of a chunk are encrypted in one
//! pipelined call, so a search is dominated by its table probes, not by the PRF. The two
//! keys are independent outputs of one XOF call, so the label and value streams need no
//! further domain separation. The 16-byte `tag` (the next XOF bytes, so again
//! independent, and the first 64 bytes are unchanged) names the keyword in the owner's
//! persisted counters: the owner's state stores no keyword text, and decoding it never
//! normalises text again. The `aes` crate is constant-time (AES-NI, or bitsliced
//! software when the CPU lacks it); key schedules are zeroized on drop.

use crate::keyword::Keyword;
use aes::Aes256;
use aes::cipher::{BlockEncrypt, KeyInit};
use zeroize::Zeroizing;

const KEYWORD_DOMAIN: &[u8] = b"medseal-index/v1/keyword\0";

/// A 16-byte entry label: the host's map key.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Label(pub(crate) [u8; 16]);

impl Label {
    /// The bytes.
    pub fn as_bytes(&self) -> &[u8; 16] {
        &self.0
    }

    /// The first 8 bytes, which are uniformly random for honest labels: the host's table
    /// hash.
    pub(crate) fn prefix_u64(&self) -> u64 {
        let mut head = [0u8; 8];
        head.copy_from_slice(&self.0[..8]);
        u64::from_le_bytes(head)
    }
}

impl core::hash::Hash for Label {
    fn hash<H: core::hash::Hasher>(&self, state: &mut H) {
        state.write_u64(self.prefix_u64());
    }
}

impl core::fmt::Debug for Label {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "Label(")?;
        for b in &self.0 {
            write!(f, "{b:02x}")?;
        }
        write!(f, ")")
    }
}

/// The owner's name of a keyword in a partition's counters: 16 pseudorandom bytes, so
/// two keywords of one partition share a tag with probability below n²/2^129.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct KeywordTag(pub(crate) [u8; 16]);

impl core::hash::Hash for KeywordTag {
    fn hash<H: core::hash::Hasher>(&self, state: &mut H) {
        // Tags are PRF outputs: their prefix is already a uniform hash (as for labels).
        let mut head = [0u8; 8];
        head.copy_from_slice(&self.0[..8]);
        state.write_u64(u64::from_le_bytes(head));
    }
}

/// The first `N` bytes of keyword `w`'s XOF output under partition key `k`.
fn keyword_output<const N: usize>(k: &[u8; 32], keyword: &Keyword) -> Zeroizing<[u8; N]> {
    let mut out = Zeroizing::new([0u8; N]);
    let mut h = blake3::Hasher::new_keyed(k);
    h.update(KEYWORD_DOMAIN);
    h.update(keyword.as_bytes());
    h.finalize_xof().fill(out.as_mut());
    out
}

fn split_keys(out: &[u8]) -> (Zeroizing<[u8; 32]>, Zeroizing<[u8; 32]>) {
    let mut lab = Zeroizing::new([0u8; 32]);
    let mut val = Zeroizing::new([0u8; 32]);
    lab.copy_from_slice(&out[..32]);
    val.copy_from_slice(&out[32..64]);
    (lab, val)
}

/// `(K_lab, K_val)` of keyword `w` under partition key `k`.
pub(crate) fn keyword_keys(
    k: &[u8; 32],
    keyword: &Keyword,
) -> (Zeroizing<[u8; 32]>, Zeroizing<[u8; 32]>) {
    split_keys(&*keyword_output::<64>(k, keyword))
}

/// `(K_lab, K_val, tag)` of keyword `w` under partition key `k`, from one XOF call.
pub(crate) fn keyword_keys_and_tag(
    k: &[u8; 32],
    keyword: &Keyword,
) -> (Zeroizing<[u8; 32]>, Zeroizing<[u8; 32]>, KeywordTag) {
    let out = keyword_output::<80>(k, keyword);
    let (lab, val) = split_keys(&*out);
    let mut tag = [0u8; 16];
    tag.copy_from_slice(&out[64..]);
    (lab, val, KeywordTag(tag))
}

fn block(c: u64, j: u64) -> aes::Block {
    let mut b = [0u8; 16];
    b[..8].copy_from_slice(&c.to_le_bytes());
    b[8..].copy_from_slice(&j.to_le_bytes());
    b.into()
}

/// The label stream of one keyword.
pub(crate) struct LabelPrf(Aes256);

impl LabelPrf {
    pub(crate) fn new(k_lab: &[u8; 32]) -> Self {
        Self(Aes256::new(k_lab.into()))
    }

    /// `label_c`.
    pub(crate) fn label(&self, c: u64) -> Label {
        let mut b = block(c, 0);
        self.0.encrypt_block(&mut b);
        Label(b.into())
    }

    /// `label_{start + i}` into `out[i]`, in one pipelined call.
    pub(crate) fn labels(&self, start: u64, out: &mut [Label]) {
        let mut blocks = [aes::Block::default(); CHUNK];
        let mut c = start;
        for part in out.chunks_mut(CHUNK) {
            let blocks = &mut blocks[..part.len()];
            for b in blocks.iter_mut() {
                *b = block(c, 0);
                c = c.wrapping_add(1);
            }
            self.0.encrypt_blocks(blocks);
            for (l, b) in part.iter_mut().zip(blocks.iter()) {
                *l = Label((*b).into());
            }
        }
    }
}

/// Blocks encrypted per pipelined call.
const CHUNK: usize = 32;

/// The pad stream of one keyword.
pub(crate) struct PadPrf(Aes256);

impl PadPrf {
    pub(crate) fn new(k_val: &[u8; 32]) -> Self {
        Self(Aes256::new(k_val.into()))
    }

    /// `pad_c`, the one-time pad of the c-th value.
    pub(crate) fn pad(&self, c: u64) -> [u8; 32] {
        let mut blocks = [block(c, 0), block(c, 1)];
        self.0.encrypt_blocks(&mut blocks);
        let mut out = [0u8; 32];
        out[..16].copy_from_slice(&blocks[0]);
        out[16..].copy_from_slice(&blocks[1]);
        out
    }
}

/// `a XOR b`.
#[inline]
pub(crate) fn xor32(a: &[u8; 32], b: &[u8; 32]) -> [u8; 32] {
    let mut out = [0u8; 32];
    for ((o, x), y) in out.iter_mut().zip(a).zip(b) {
        *o = x ^ y;
    }
    out
}

/// A `std::hash::Hasher` that passes a label's random prefix through unchanged.
///
/// Honest labels are PRF outputs, so their prefix is already a uniform hash. A malicious
/// owner could choose colliding labels, but each partition has its own table, so that
/// only slows down the owner's own partition.
#[derive(Default, Clone, Copy)]
pub(crate) struct PrefixHasher(u64);

impl core::hash::Hasher for PrefixHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        // Only reached if something other than a `Label` is hashed; stay correct.
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }
    fn write_u64(&mut self, v: u64) {
        self.0 = v;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_streams_are_separated() {
        let kw = Keyword::term("asthma").unwrap();
        let (lab, val) = keyword_keys(&[1; 32], &kw);
        assert_ne!(*lab, *val);
        let (lab2, _) = keyword_keys(&[2; 32], &kw);
        assert_ne!(*lab, *lab2);
        let (lab3, _) = keyword_keys(&[1; 32], &Keyword::term("asthmb").unwrap());
        assert_ne!(*lab, *lab3);
        // The tag extends the same output: the keys are unchanged and the tag is not a
        // part of them.
        let (lab4, val4, tag) = keyword_keys_and_tag(&[1; 32], &kw);
        assert_eq!((*lab4, *val4), (*lab, *val));
        assert!(!lab.windows(16).chain(val.windows(16)).any(|w| w == tag.0));
        assert!(tag != keyword_keys_and_tag(&[2; 32], &kw).2);
        let (l, p) = (LabelPrf::new(&lab), PadPrf::new(&val));
        assert_ne!(l.label(0), l.label(1));
        assert_eq!(l.label(5), LabelPrf::new(&lab).label(5));
        let mut many = [Label([0; 16]); 70];
        l.labels(3, &mut many);
        for (i, x) in many.iter().enumerate() {
            assert_eq!(*x, l.label(3 + i as u64));
        }
        assert_ne!(p.pad(0), p.pad(1));
        assert_ne!(p.pad(0)[..16], p.pad(0)[16..]);
        // Label and value streams differ even on the same counter.
        assert_ne!(l.label(0).0[..], p.pad(0)[..16]);
        assert_eq!(xor32(&xor32(&[3; 32], &[9; 32]), &[9; 32]), [3; 32]);
    }
}
