//! The canonical binary encoding of index objects.
//!
//! ```text
//! magic "MSIX" | version u8 | kind u8 | body
//! ```
//!
//! Integers are big-endian. Counts are checked against their limit and against the bytes
//! remaining *before* anything is allocated; decoders reject trailing bytes. Layouts of
//! each body are in [`crate::notes::formats`].

use crate::error::DecodeError;

/// The magic bytes every object starts with.
pub(crate) const MAGIC: [u8; 4] = *b"MSIX";
/// The current format version.
pub(crate) const FORMAT_VERSION: u8 = 1;

/// Object kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum Kind {
    Shard = 1,
    SearchToken = 2,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Shard => "shard",
            Kind::SearchToken => "search token",
        }
    }
}

/// Appends canonical fields to a buffer.
pub(crate) struct Writer {
    buf: Vec<u8>,
}

impl Writer {
    pub(crate) fn new(kind: Kind, capacity: usize) -> Self {
        let mut buf = Vec::with_capacity(6 + capacity);
        buf.extend_from_slice(&MAGIC);
        buf.extend_from_slice(&[FORMAT_VERSION, kind as u8]);
        Self { buf }
    }

    pub(crate) fn u32(&mut self, v: u32) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }

    pub(crate) fn raw(&mut self, v: &[u8]) {
        self.buf.extend_from_slice(v);
    }

    pub(crate) fn finish(self) -> Vec<u8> {
        self.buf
    }
}

/// Reads canonical fields, checking the header on construction.
pub(crate) struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(crate) fn new(bytes: &'a [u8], kind: Kind) -> Result<Self, DecodeError> {
        let mut r = Self { rest: bytes };
        let magic: [u8; 4] = r.array().map_err(|_| DecodeError::BadMagic)?;
        if magic != MAGIC {
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
        Ok(r)
    }

    pub(crate) fn u8(&mut self) -> Result<u8, DecodeError> {
        let [b] = self.array()?;
        Ok(b)
    }

    pub(crate) fn u32(&mut self) -> Result<u32, DecodeError> {
        Ok(u32::from_be_bytes(self.array()?))
    }

    pub(crate) fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let (head, tail) = self
            .rest
            .split_first_chunk::<N>()
            .ok_or(DecodeError::Truncated)?;
        self.rest = tail;
        Ok(*head)
    }

    /// The bytes not yet read.
    pub(crate) fn remaining(&self) -> usize {
        self.rest.len()
    }

    /// Succeeds iff everything was read.
    pub(crate) fn finish(self) -> Result<(), DecodeError> {
        match self.rest.len() {
            0 => Ok(()),
            n => Err(DecodeError::TrailingBytes(n)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_checks() {
        let w = Writer::new(Kind::Shard, 0).finish();
        assert!(Reader::new(&w, Kind::Shard).unwrap().finish().is_ok());
        assert!(matches!(
            Reader::new(&w, Kind::SearchToken),
            Err(DecodeError::WrongKind { found: 1, .. })
        ));
        assert!(matches!(
            Reader::new(b"MSI", Kind::Shard),
            Err(DecodeError::BadMagic)
        ));
        assert!(matches!(
            Reader::new(b"MSIX\x02\x01", Kind::Shard),
            Err(DecodeError::UnsupportedVersion(2))
        ));
        assert!(matches!(
            Reader::new(b"MSIX\x01", Kind::Shard),
            Err(DecodeError::Truncated)
        ));
        let mut long = w.clone();
        long.push(0);
        assert!(matches!(
            Reader::new(&long, Kind::Shard).unwrap().finish(),
            Err(DecodeError::TrailingBytes(1))
        ));
    }
}
