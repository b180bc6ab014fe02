//! The canonical binary encoding shared by every object.
//!
//! Layout of every object (see the `notes::formats` docs for each body):
//!
//! ```text
//! magic "MSAB" | version u8 | kind u8 | scheme u8 | curve u8 | body
//! ```
//!
//! Objects that involve no ABE scheme and no curve (the symmetric data stream, kind 6)
//! write `NO_SCHEME` and `NO_CURVE` (both 0) in those two bytes, so the prefix keeps
//! one layout for every kind.
//!
//! Integers are big-endian; variable-length fields carry a u32 length prefix; group
//! elements are compressed (G1 48 bytes, G2 96 bytes) and decoded with subgroup checks;
//! scalars are 32-byte canonical little-endian. Counts are checked against limits and
//! against the bytes remaining *before* anything is allocated, and a decoder rejects
//! trailing bytes.

use crate::curve::{decode_point, put_point};
use crate::error::DecodeError;
use ff::PrimeField;
use group::GroupEncoding;
use group::prime::PrimeCurveAffine;

/// The magic bytes every object starts with.
pub(crate) const MAGIC: [u8; 4] = *b"MSAB";
/// The current format version.
pub(crate) const FORMAT_VERSION: u8 = 1;
/// Curve id of BLS12-381.
pub(crate) const CURVE_BLS12_381: u8 = 1;
/// Scheme byte of objects that belong to no ABE scheme (never a [`crate::SchemeId`]).
pub(crate) const NO_SCHEME: u8 = 0;
/// Curve byte of objects that involve no curve.
pub(crate) const NO_CURVE: u8 = 0;

/// Object kinds.
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

/// Appends canonical fields to a buffer.
#[derive(Default)]
pub(crate) struct Writer {
    buf: Vec<u8>,
}

impl Writer {
    pub(crate) fn new(kind: Kind, scheme: crate::SchemeId) -> Self {
        Self::with_ids(kind, scheme as u8, CURVE_BLS12_381)
    }

    /// The prefix of an object that belongs to no scheme and no curve.
    pub(crate) fn unkeyed(kind: Kind) -> Self {
        Self::with_ids(kind, NO_SCHEME, NO_CURVE)
    }

    fn with_ids(kind: Kind, scheme: u8, curve: u8) -> Self {
        let mut buf = Vec::with_capacity(256);
        buf.extend_from_slice(&MAGIC);
        buf.extend_from_slice(&[FORMAT_VERSION, kind as u8, scheme, curve]);
        Self { buf }
    }

    pub(crate) fn u32(&mut self, v: u32) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }

    /// A length that is bounded by a limit far below u32::MAX by construction.
    pub(crate) fn len(&mut self, n: usize) {
        self.u32(u32::try_from(n).unwrap_or(u32::MAX));
    }

    pub(crate) fn bytes(&mut self, v: &[u8]) {
        self.len(v.len());
        self.buf.extend_from_slice(v);
    }

    pub(crate) fn raw(&mut self, v: &[u8]) {
        self.buf.extend_from_slice(v);
    }

    pub(crate) fn point<A: GroupEncoding>(&mut self, p: &A) {
        put_point(&mut self.buf, p);
    }

    pub(crate) fn scalar<F: PrimeField>(&mut self, s: &F) {
        self.buf.extend_from_slice(s.to_repr().as_ref());
    }

    pub(crate) fn finish(self) -> Vec<u8> {
        self.buf
    }
}

/// Reads canonical fields from a byte slice.
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    /// Checks the common header and returns a reader positioned at the body.
    pub(crate) fn new(
        bytes: &'a [u8],
        kind: Kind,
        scheme: crate::SchemeId,
    ) -> Result<Self, DecodeError> {
        Self::with_ids(bytes, kind, scheme as u8, scheme.name(), CURVE_BLS12_381)
    }

    /// Checks the prefix of an object that belongs to no scheme and no curve (scheme and
    /// curve bytes `NO_SCHEME` and `NO_CURVE`).
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
        let mut r = Self { buf: bytes };
        if r.take(4)? != MAGIC {
            return Err(DecodeError::BadMagic);
        }
        let version = r.u8()?;
        if version != FORMAT_VERSION {
            return Err(DecodeError::UnsupportedVersion(version));
        }
        let found = r.u8()?;
        if found != kind as u8 {
            return Err(DecodeError::WrongKind {
                expected: kind.name(),
                found,
            });
        }
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

    pub(crate) fn remaining(&self) -> usize {
        self.buf.len()
    }

    pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if n > self.buf.len() {
            return Err(DecodeError::Truncated);
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }

    pub(crate) fn u8(&mut self) -> Result<u8, DecodeError> {
        Ok(self.take(1)?.first().copied().unwrap_or_default())
    }

    pub(crate) fn u32(&mut self) -> Result<u32, DecodeError> {
        let mut b = [0u8; 4];
        b.copy_from_slice(self.take(4)?);
        Ok(u32::from_be_bytes(b))
    }

    /// A count of items of at least `min_item_bytes` each, checked against `limit` and
    /// against the remaining input before the caller allocates anything.
    pub(crate) fn count(
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
        if n.saturating_mul(min_item_bytes) > self.buf.len() {
            return Err(DecodeError::Truncated);
        }
        Ok(n)
    }

    /// A length-prefixed byte string of at most `limit` bytes.
    pub(crate) fn bytes(
        &mut self,
        what: &'static str,
        limit: usize,
    ) -> Result<&'a [u8], DecodeError> {
        let n = self.count(what, limit, 1)?;
        self.take(n)
    }

    pub(crate) fn str(&mut self, what: &'static str, limit: usize) -> Result<&'a str, DecodeError> {
        core::str::from_utf8(self.bytes(what, limit)?).map_err(|_| DecodeError::InvalidUtf8(what))
    }

    pub(crate) fn point<A: PrimeCurveAffine + GroupEncoding>(
        &mut self,
        what: &'static str,
    ) -> Result<A, DecodeError> {
        let len = A::Repr::default().as_ref().len();
        decode_point(self.take(len)?).ok_or(DecodeError::InvalidPoint(what))
    }

    pub(crate) fn scalar<F: PrimeField>(&mut self, what: &'static str) -> Result<F, DecodeError> {
        let mut repr = F::Repr::default();
        let len = repr.as_ref().len();
        repr.as_mut().copy_from_slice(self.take(len)?);
        Option::from(F::from_repr(repr)).ok_or(DecodeError::InvalidScalar(what))
    }

    /// Ends decoding: no bytes may remain.
    pub(crate) fn finish(self) -> Result<(), DecodeError> {
        match self.buf.len() {
            0 => Ok(()),
            n => Err(DecodeError::TrailingBytes(n)),
        }
    }
}
