//! The canonical binary codec shared by the medseal crates.
//!
//! Every medseal object starts with a 4-byte magic naming its format and a version byte;
//! a format may add fixed header bytes (medseal-abe: kind, scheme and curve; medseal-index:
//! kind). Then come its fields:
//!
//! * integers are big-endian ([`Writer::u8`], [`Writer::u32`], [`Writer::u64`]);
//! * variable-length fields carry a u32 length prefix ([`Writer::bytes`],
//!   [`Writer::str`]), fixed-size fields none ([`Writer::raw`]);
//! * a decoder checks every length and count against its limit *and* against the bytes
//!   remaining before anything is allocated ([`Reader::count`]), and rejects trailing
//!   bytes ([`Reader::finish`]).
//!
//! Errors are typed ([`DecodeError`]) and never panic, whatever the input.
//!
//! # Example: a format of its own
//!
//! A file format `magic "MSMF" | version 1 | u32-length-prefixed fields`:
//!
//! ```
//! use medseal_abe::codec::{Reader, Writer};
//! use medseal_abe::DecodeError;
//!
//! const MAGIC: [u8; 4] = *b"MSMF";
//! const MAX_FIELD: usize = 1 << 20;
//!
//! let mut w = Writer::new(MAGIC, 1);
//! w.bytes(b"capsule").bytes(b"sealed body");
//! let encoded = w.finish();
//! assert_eq!(&encoded[..9], b"MSMF\x01\x00\x00\x00\x07");
//!
//! let mut r = Reader::new(&encoded, MAGIC, 1)?;
//! let capsule = r.bytes("capsule", MAX_FIELD)?;
//! let body = r.bytes("sealed body", MAX_FIELD)?;
//! r.finish()?;
//! assert_eq!((capsule, body), (&b"capsule"[..], &b"sealed body"[..]));
//!
//! assert_eq!(Reader::new(b"MSMF\x02", MAGIC, 1).err(), Some(DecodeError::UnsupportedVersion(2)));
//! let mut long = encoded.clone();
//! long.push(0);
//! let mut r = Reader::new(&long, MAGIC, 1)?;
//! r.bytes("capsule", MAX_FIELD)?;
//! r.bytes("sealed body", MAX_FIELD)?;
//! assert_eq!(r.finish(), Err(DecodeError::TrailingBytes(1)));
//! # Ok::<(), DecodeError>(())
//! ```
//!
//! The objects of this crate use the header `"MSAB" | version | kind | scheme | curve`
//! (see [`crate::notes::formats`]).

use crate::curve::Backend;
use crate::error::DecodeError;
use crate::policy::Policy;
use crate::secret::SecretScalar;
use ff::PrimeField;
use group::GroupEncoding;
use group::prime::PrimeCurveAffine;

/// The magic bytes of medseal-abe objects.
const MAGIC: [u8; 4] = *b"MSAB";
/// The current format version of medseal-abe objects.
const FORMAT_VERSION: u8 = 1;
/// Curve id of BLS12-381.
const CURVE_BLS12_381: u8 = 1;
/// Scheme byte of objects that belong to no ABE scheme (never a [`crate::SchemeId`]).
const NO_SCHEME: u8 = 0;
/// Curve byte of objects that involve no curve.
const NO_CURVE: u8 = 0;

/// Longest embedded policy text accepted by [`Reader::policy`] (the policy parser's own
/// default limits apply on top).
pub const MAX_POLICY_TEXT: usize = 64 * 1024;

/// Object kinds of medseal-abe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum Kind {
    PublicKey = 1,
    MasterKey = 2,
    UserKey = 3,
    Ciphertext = 4,
    Envelope = 5,
    /// A symmetric stream under a data-encryption key (no scheme, no curve).
    DataStream = 6,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::PublicKey => "public key",
            Kind::MasterKey => "master key",
            Kind::UserKey => "user key",
            Kind::Ciphertext => "ciphertext",
            Kind::Envelope => "envelope",
            Kind::DataStream => "data stream",
        }
    }
}

/// Appends canonical fields to a buffer that starts with `magic | version`.
///
/// Lengths and counts are written as u32; a value above `u32::MAX` is written as
/// `u32::MAX`, which no reader accepts: keep fields within the limits their reader
/// checks.
#[derive(Debug, Clone)]
pub struct Writer {
    buf: Vec<u8>,
}

impl Writer {
    /// A writer whose output starts with `magic | version`.
    pub fn new(magic: [u8; 4], version: u8) -> Self {
        let mut buf = Vec::with_capacity(64);
        buf.extend_from_slice(&magic);
        buf.push(version);
        Self { buf }
    }

    /// Reserves room for `additional` more bytes (large objects: one allocation).
    pub fn reserve(&mut self, additional: usize) -> &mut Self {
        self.buf.reserve(additional);
        self
    }

    /// One byte (e.g. a kind or other fixed header byte).
    pub fn u8(&mut self, v: u8) -> &mut Self {
        self.buf.push(v);
        self
    }

    /// A big-endian u32.
    pub fn u32(&mut self, v: u32) -> &mut Self {
        self.buf.extend_from_slice(&v.to_be_bytes());
        self
    }

    /// A big-endian u64.
    pub fn u64(&mut self, v: u64) -> &mut Self {
        self.buf.extend_from_slice(&v.to_be_bytes());
        self
    }

    /// A count or length as u32 (read back with [`Reader::count`]).
    pub fn count(&mut self, n: usize) -> &mut Self {
        self.u32(u32::try_from(n).unwrap_or(u32::MAX))
    }

    /// A u32-length-prefixed byte string (read back with [`Reader::bytes`]).
    pub fn bytes(&mut self, v: &[u8]) -> &mut Self {
        self.count(v.len());
        self.raw(v)
    }

    /// A u32-length-prefixed UTF-8 string (read back with [`Reader::str`]).
    pub fn str(&mut self, v: &str) -> &mut Self {
        self.bytes(v.as_bytes())
    }

    /// A policy in canonical text form, length-prefixed (read back with
    /// [`Reader::policy`]).
    pub fn policy(&mut self, policy: &Policy) -> &mut Self {
        self.str(&policy.to_string())
    }

    /// Bytes without a length prefix (fixed-size fields, read back with
    /// [`Reader::array`] or [`Reader::take`]).
    pub fn raw(&mut self, v: &[u8]) -> &mut Self {
        self.buf.extend_from_slice(v);
        self
    }

    /// The encoding.
    pub fn finish(self) -> Vec<u8> {
        self.buf
    }

    /// The header of a medseal-abe object of `scheme`.
    pub(crate) fn for_scheme(kind: Kind, scheme: crate::SchemeId) -> Self {
        Self::with_ids(kind, scheme as u8, CURVE_BLS12_381)
    }

    /// The header of a medseal-abe object that belongs to no scheme and no curve.
    pub(crate) fn unkeyed(kind: Kind) -> Self {
        Self::with_ids(kind, NO_SCHEME, NO_CURVE)
    }

    fn with_ids(kind: Kind, scheme: u8, curve: u8) -> Self {
        let mut w = Self::new(MAGIC, FORMAT_VERSION);
        w.reserve(192).u8(kind as u8).u8(scheme).u8(curve);
        w
    }

    /// A compressed curve point.
    pub(crate) fn point<A: GroupEncoding>(&mut self, p: &A) -> &mut Self {
        self.raw(p.to_bytes().as_ref())
    }

    /// Compressed curve points, back to back.
    pub(crate) fn points<'p, A: GroupEncoding + 'p>(
        &mut self,
        points: impl IntoIterator<Item = &'p A>,
    ) -> &mut Self {
        points.into_iter().fold(self, |w, p| w.point(p))
    }

    /// A target-group element ([`Backend::gt_encode`]).
    pub(crate) fn gt<B: Backend>(&mut self, gt: &B::Gt) -> &mut Self {
        B::gt_encode(gt, &mut self.buf);
        self
    }

    /// A scalar in its canonical representation.
    pub(crate) fn scalar<F: PrimeField>(&mut self, s: &F) {
        self.buf.extend_from_slice(s.to_repr().as_ref());
    }
}

/// Reads canonical fields from a byte slice, after checking `magic | version`.
///
/// Each method consumes its field or fails with a [`DecodeError`]; nothing is allocated
/// on behalf of the input before its size is checked.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    /// Checks that `bytes` starts with `magic` and `version` and returns a reader
    /// positioned after them.
    ///
    /// # Errors
    /// [`DecodeError::BadMagic`] if the input does not start with `magic` (or a prefix
    /// of it, for a shorter input), [`DecodeError::Truncated`] if it ends within the
    /// header, [`DecodeError::UnsupportedVersion`] for another version.
    pub fn new(bytes: &'a [u8], magic: [u8; 4], version: u8) -> Result<Self, DecodeError> {
        if !magic.starts_with(&bytes[..bytes.len().min(magic.len())]) {
            return Err(DecodeError::BadMagic);
        }
        let mut r = Self { rest: bytes };
        r.take(magic.len())?;
        let found = r.u8()?;
        if found != version {
            return Err(DecodeError::UnsupportedVersion(found));
        }
        Ok(r)
    }

    /// Reads a kind byte and checks it is `expected`.
    ///
    /// # Errors
    /// [`DecodeError::WrongKind`] (naming `name`) or [`DecodeError::Truncated`].
    pub fn kind(&mut self, expected: u8, name: &'static str) -> Result<(), DecodeError> {
        let found = self.u8()?;
        if found != expected {
            return Err(DecodeError::WrongKind {
                expected: name,
                found,
            });
        }
        Ok(())
    }

    /// The bytes not yet read.
    pub fn remaining(&self) -> usize {
        self.rest.len()
    }

    /// The next `n` bytes.
    ///
    /// # Errors
    /// [`DecodeError::Truncated`].
    pub fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if n > self.rest.len() {
            return Err(DecodeError::Truncated);
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        Ok(head)
    }

    /// The next `N` bytes as an array.
    ///
    /// # Errors
    /// [`DecodeError::Truncated`].
    pub fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let (head, tail) = self
            .rest
            .split_first_chunk::<N>()
            .ok_or(DecodeError::Truncated)?;
        self.rest = tail;
        Ok(*head)
    }

    /// One byte.
    ///
    /// # Errors
    /// [`DecodeError::Truncated`].
    pub fn u8(&mut self) -> Result<u8, DecodeError> {
        let [b] = self.array()?;
        Ok(b)
    }

    /// A big-endian u32.
    ///
    /// # Errors
    /// [`DecodeError::Truncated`].
    pub fn u32(&mut self) -> Result<u32, DecodeError> {
        self.array().map(u32::from_be_bytes)
    }

    /// A big-endian u64.
    ///
    /// # Errors
    /// [`DecodeError::Truncated`].
    pub fn u64(&mut self) -> Result<u64, DecodeError> {
        self.array().map(u64::from_be_bytes)
    }

    /// A u32 count of items of at least `min_item_bytes` bytes each, checked against
    /// `limit` and against the remaining input, so the caller may allocate for it.
    ///
    /// # Errors
    /// [`DecodeError::TooLarge`] (naming `what`) above the limit,
    /// [`DecodeError::Truncated`] if the items cannot fit in the remaining input.
    pub fn count(
        &mut self,
        what: &'static str,
        limit: usize,
        min_item_bytes: usize,
    ) -> Result<usize, DecodeError> {
        let n = self.u32()? as usize;
        if n > limit {
            return Err(DecodeError::TooLarge {
                what,
                found: n as u64,
                limit: limit as u64,
            });
        }
        if n.saturating_mul(min_item_bytes) > self.rest.len() {
            return Err(DecodeError::Truncated);
        }
        Ok(n)
    }

    /// A u32-length-prefixed byte string of at most `limit` bytes.
    ///
    /// # Errors
    /// As for [`Reader::count`].
    pub fn bytes(&mut self, what: &'static str, limit: usize) -> Result<&'a [u8], DecodeError> {
        let n = self.count(what, limit, 1)?;
        self.take(n)
    }

    /// A u32-length-prefixed UTF-8 string of at most `limit` bytes.
    ///
    /// # Errors
    /// As for [`Reader::bytes`], or [`DecodeError::InvalidUtf8`].
    pub fn str(&mut self, what: &'static str, limit: usize) -> Result<&'a str, DecodeError> {
        core::str::from_utf8(self.bytes(what, limit)?).map_err(|_| DecodeError::InvalidUtf8(what))
    }

    /// A policy written by [`Writer::policy`]: at most [`MAX_POLICY_TEXT`] bytes, and the
    /// text must be the policy's canonical form (a decoder that accepted other spellings
    /// would not re-encode to the same bytes).
    ///
    /// # Errors
    /// As for [`Reader::str`], [`DecodeError::InvalidPolicy`], or
    /// [`DecodeError::Inconsistent`] for a non-canonical text.
    pub fn policy(&mut self) -> Result<Policy, DecodeError> {
        let text = self.str("policy", MAX_POLICY_TEXT)?;
        let policy = Policy::parse(text).map_err(DecodeError::InvalidPolicy)?;
        if policy.to_string() != text {
            return Err(DecodeError::Inconsistent("policy text is not canonical"));
        }
        Ok(policy)
    }

    /// Ends decoding: no bytes may remain.
    ///
    /// # Errors
    /// [`DecodeError::TrailingBytes`].
    pub fn finish(self) -> Result<(), DecodeError> {
        match self.rest.len() {
            0 => Ok(()),
            n => Err(DecodeError::TrailingBytes(n)),
        }
    }

    /// Checks the header of a medseal-abe object of `scheme`.
    pub(crate) fn for_scheme(
        bytes: &'a [u8],
        kind: Kind,
        scheme: crate::SchemeId,
    ) -> Result<Self, DecodeError> {
        Self::with_ids(bytes, kind, scheme as u8, scheme.name(), CURVE_BLS12_381)
    }

    /// Checks the header of a medseal-abe object that belongs to no scheme and no curve
    /// (scheme and curve bytes `NO_SCHEME` and `NO_CURVE`).
    pub(crate) fn unkeyed(bytes: &'a [u8], kind: Kind) -> Result<Self, DecodeError> {
        Self::with_ids(bytes, kind, NO_SCHEME, "none", NO_CURVE)
    }

    /// Checks magic, version, kind, scheme and curve, in that order (so an object of
    /// another kind is always reported as [`DecodeError::WrongKind`]).
    fn with_ids(
        bytes: &'a [u8],
        kind: Kind,
        scheme: u8,
        scheme_name: &'static str,
        curve: u8,
    ) -> Result<Self, DecodeError> {
        let mut r = Self::new(bytes, MAGIC, FORMAT_VERSION)?;
        r.kind(kind as u8, kind.name())?;
        let found = r.u8()?;
        if found != scheme {
            return Err(DecodeError::WrongScheme {
                expected: scheme_name,
                found,
            });
        }
        let found = r.u8()?;
        if found != curve {
            return Err(DecodeError::UnsupportedCurve(found));
        }
        Ok(r)
    }

    /// A compressed curve point, with on-curve and subgroup checks; the identity is
    /// rejected (no honest key or ciphertext contains it except with probability ~2^-255,
    /// and accepting it would let a forger zero out terms).
    pub(crate) fn point<A: PrimeCurveAffine + GroupEncoding>(
        &mut self,
        what: &'static str,
    ) -> Result<A, DecodeError> {
        let mut repr = A::Repr::default();
        let len = repr.as_ref().len();
        repr.as_mut().copy_from_slice(self.take(len)?);
        Option::<A>::from(A::from_bytes(&repr))
            .filter(|p| !bool::from(p.is_identity()))
            .ok_or(DecodeError::InvalidPoint(what))
    }

    /// A scalar in canonical representation.
    pub(crate) fn scalar<F: PrimeField>(&mut self, what: &'static str) -> Result<F, DecodeError> {
        let mut repr = F::Repr::default();
        let len = repr.as_ref().len();
        repr.as_mut().copy_from_slice(self.take(len)?);
        Option::from(F::from_repr(repr)).ok_or(DecodeError::InvalidScalar(what))
    }

    /// A secret scalar of a master key, which must be non-zero.
    pub(crate) fn nonzero_scalar<F: PrimeField>(
        &mut self,
        what: &'static str,
    ) -> Result<SecretScalar<F>, DecodeError> {
        let s: F = self.scalar(what)?;
        if bool::from(s.is_zero()) {
            return Err(DecodeError::InvalidScalar(what));
        }
        Ok(SecretScalar(s))
    }

    /// A target-group element ([`Backend::gt_decode`]).
    pub(crate) fn gt<B: Backend>(&mut self, what: &'static str) -> Result<B::Gt, DecodeError> {
        B::gt_decode(self.take(B::GT_BYTES)?).ok_or(DecodeError::InvalidPoint(what))
    }

    /// The row count of a ciphertext under `policy`, which must be its leaf count, for
    /// rows of `row_bytes` bytes.
    pub(crate) fn rows(&mut self, policy: &Policy, row_bytes: usize) -> Result<usize, DecodeError> {
        let n = self.count("ciphertext rows", policy.leaf_count(), row_bytes)?;
        if n != policy.leaf_count() {
            return Err(DecodeError::Inconsistent(
                "row count does not match the policy",
            ));
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_checks() {
        let magic = *b"MSXX";
        let mut w = Writer::new(magic, 3);
        w.u8(7).u64(9).str("é");
        let bytes = w.finish();
        let mut r = Reader::new(&bytes, magic, 3).unwrap();
        r.kind(7, "thing").unwrap();
        assert_eq!(r.u64(), Ok(9));
        assert_eq!(r.str("s", 2), Ok("é"));
        r.finish().unwrap();
        let mut r = Reader::new(&bytes, magic, 3).unwrap();
        assert_eq!(
            r.kind(8, "other"),
            Err(DecodeError::WrongKind {
                expected: "other",
                found: 7
            })
        );
        assert_eq!(
            Reader::new(b"", magic, 3).err(),
            Some(DecodeError::Truncated)
        );
        assert_eq!(
            Reader::new(b"MS", magic, 3).err(),
            Some(DecodeError::Truncated)
        );
        assert_eq!(
            Reader::new(b"MSXX", magic, 3).err(),
            Some(DecodeError::Truncated)
        );
        assert_eq!(
            Reader::new(b"MY", magic, 3).err(),
            Some(DecodeError::BadMagic)
        );
        assert_eq!(
            Reader::new(b"XSXX\x03", magic, 3).err(),
            Some(DecodeError::BadMagic)
        );
        assert_eq!(
            Reader::new(b"MSXX\x04", magic, 3).err(),
            Some(DecodeError::UnsupportedVersion(4))
        );
    }

    #[test]
    fn lengths_are_checked_before_use() {
        let mut w = Writer::new(*b"MSXX", 1);
        w.bytes(b"abc").u32(5).count(usize::MAX);
        let bytes = w.finish();
        let mut r = Reader::new(&bytes, *b"MSXX", 1).unwrap();
        assert!(matches!(
            r.clone().bytes("f", 2),
            Err(DecodeError::TooLarge {
                found: 3,
                limit: 2,
                ..
            })
        ));
        assert_eq!(r.bytes("f", 3), Ok(&b"abc"[..]));
        // 5 items of 2 bytes cannot fit in the 4 bytes left.
        assert_eq!(r.clone().count("items", 10, 2), Err(DecodeError::Truncated));
        assert_eq!(r.count("items", 10, 0), Ok(5));
        assert!(matches!(
            r.count("items", 10, 0),
            Err(DecodeError::TooLarge { .. })
        ));
        assert_eq!(r.u8(), Err(DecodeError::Truncated));
        let mut bad = Writer::new(*b"MSXX", 1);
        bad.bytes(&[0xff]);
        let bad = bad.finish();
        let mut r = Reader::new(&bad, *b"MSXX", 1).unwrap();
        assert_eq!(r.str("s", 9), Err(DecodeError::InvalidUtf8("s")));
    }

    #[test]
    fn policies_must_be_canonical() {
        let policy: Policy = "role:doctor and dept:x".parse().unwrap();
        let mut w = Writer::new(*b"MSXX", 1);
        w.policy(&policy).str("role:doctor AND dept:x");
        let bytes = w.finish();
        let mut r = Reader::new(&bytes, *b"MSXX", 1).unwrap();
        assert_eq!(r.policy().unwrap().to_string(), policy.to_string());
        assert!(matches!(r.policy(), Err(DecodeError::Inconsistent(_))));
    }
}
