//! A block: bytes together with the CID they hash to.

use bytes::Bytes;

use crate::cid::Cid;
use crate::error::{Result, StorageError};

/// A verified block: `cid` is the sha2-256 CID of `data`.
#[derive(Clone, PartialEq, Eq)]
pub struct Block {
    cid: Cid,
    data: Bytes,
}

impl Block {
    /// Pairs `data` with `cid` after checking that `data` hashes to `cid`.
    pub fn new(cid: Cid, data: Bytes) -> Result<Self> {
        if !cid.verifies(&data) {
            return Err(StorageError::integrity(
                cid,
                format!("{} bytes do not hash to the CID", data.len()),
            ));
        }
        Ok(Self { cid, data })
    }

    /// Pairs bytes with a CID this crate just computed from them.
    pub(crate) fn computed(cid: Cid, data: Bytes) -> Self {
        Self { cid, data }
    }

    /// The block's CID.
    pub fn cid(&self) -> &Cid {
        &self.cid
    }

    /// The block's bytes.
    pub fn data(&self) -> &Bytes {
        &self.data
    }

    /// Splits into CID and bytes.
    pub fn into_parts(self) -> (Cid, Bytes) {
        (self.cid, self.data)
    }
}

impl std::fmt::Debug for Block {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Block")
            .field("cid", &self.cid)
            .field("len", &self.data.len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cid::{CidVersion, Codec};

    #[test]
    fn new_rejects_mismatched_bytes() {
        let cid = Cid::for_block(CidVersion::V1, Codec::Raw, b"abc");
        assert!(Block::new(cid, Bytes::from_static(b"abc")).is_ok());
        let err = Block::new(cid, Bytes::from_static(b"abd")).unwrap_err();
        assert!(matches!(err, StorageError::IntegrityViolation { cid: c, .. } if c == cid));
    }
}
