//! [`RecordRef`]: what the index maps keywords to.

use crate::error::{Error, Result};

/// A 32-byte reference to a record, e.g. the SHA-256 digest of its manifest CID.
///
/// The index stores it encrypted; only users who can derive a keyword's keys learn it.
/// The all-zero value is reserved: padding entries decrypt to it and are filtered out.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RecordRef(pub(crate) [u8; 32]);

impl RecordRef {
    /// Size in bytes.
    pub const LEN: usize = 32;

    /// Wraps 32 bytes.
    ///
    /// # Errors
    /// [`Error::ReservedRecordRef`] for the all-zero value (the padding marker).
    pub fn new(bytes: [u8; 32]) -> Result<Self> {
        if bytes == [0u8; 32] {
            return Err(Error::ReservedRecordRef);
        }
        Ok(Self(bytes))
    }

    /// The bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The padding marker (crate-internal: never a valid reference).
    pub(crate) const PADDING: [u8; 32] = [0u8; 32];

    /// Wraps bytes already known to be non-zero.
    pub(crate) fn from_nonzero(bytes: [u8; 32]) -> Option<Self> {
        (bytes != Self::PADDING).then_some(Self(bytes))
    }
}

short_hex_debug!(RecordRef);

impl TryFrom<[u8; 32]> for RecordRef {
    type Error = Error;
    fn try_from(bytes: [u8; 32]) -> Result<Self> {
        Self::new(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_is_reserved() {
        assert!(matches!(
            RecordRef::new([0; 32]),
            Err(Error::ReservedRecordRef)
        ));
        let r = RecordRef::new([7; 32]).unwrap();
        assert_eq!(r.as_bytes(), &[7; 32]);
        assert_eq!(RecordRef::from_nonzero([0; 32]), None);
    }
}
