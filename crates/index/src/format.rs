//! The header of index objects, `magic "MSIX" | version u8 | kind u8`, written and checked
//! with medseal-abe's canonical codec ([`medseal_abe::codec`]). Body layouts are in
//! [`crate::notes::formats`].

use medseal_abe::DecodeError;
use medseal_abe::codec::{Reader, Writer};

const MAGIC: [u8; 4] = *b"MSIX";
const FORMAT_VERSION: u8 = 1;

/// Object kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum Kind {
    Shard = 1,
    SearchToken = 2,
    // 3 was the owner partition without its live shards (before logarithmic merging);
    // such states are refused as the wrong kind.
    OwnerPartition = 4,
    OwnerPartitionDelta = 5,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Shard => "shard",
            Kind::SearchToken => "search token",
            Kind::OwnerPartition => "owner partition",
            Kind::OwnerPartitionDelta => "owner partition delta",
        }
    }

    /// A writer positioned after the header of an object of this kind.
    pub(crate) fn writer(self) -> Writer {
        let mut w = Writer::new(MAGIC, FORMAT_VERSION);
        w.u8(self as u8);
        w
    }

    /// Checks the header of an object of this kind; the reader is positioned at the body.
    pub(crate) fn reader(self, bytes: &[u8]) -> Result<Reader<'_>, DecodeError> {
        let mut r = Reader::new(bytes, MAGIC, FORMAT_VERSION)?;
        r.kind(self as u8, self.name())?;
        Ok(r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_checks() {
        let w = Kind::Shard.writer().finish();
        assert_eq!(w, b"MSIX\x01\x01");
        assert!(Kind::Shard.reader(&w).unwrap().finish().is_ok());
        assert!(matches!(
            Kind::SearchToken.reader(&w),
            Err(DecodeError::WrongKind { found: 1, .. })
        ));
        assert!(matches!(
            Kind::Shard.reader(b"MSA"),
            Err(DecodeError::BadMagic)
        ));
        // A prefix of the header is a truncated object.
        assert!(matches!(
            Kind::Shard.reader(b"MSI"),
            Err(DecodeError::Truncated)
        ));
        assert!(matches!(
            Kind::Shard.reader(b"MSIX\x02\x01"),
            Err(DecodeError::UnsupportedVersion(2))
        ));
        assert!(matches!(
            Kind::Shard.reader(b"MSIX\x01"),
            Err(DecodeError::Truncated)
        ));
        let mut long = w.clone();
        long.push(0);
        assert!(matches!(
            Kind::Shard.reader(&long).unwrap().finish(),
            Err(DecodeError::TrailingBytes(1))
        ));
    }
}
