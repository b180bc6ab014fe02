//! Content identifiers: CIDv0 (`Qm…`) and CIDv1 (`bafy…`, `bafk…`) over
//! sha2-256, with the dag-pb and raw codecs — everything `ipfs add` emits.

use std::fmt;
use std::str::FromStr;

use sha2::{Digest, Sha256};

use crate::multibase;
use crate::varint::{read_uvarint, write_uvarint};

/// Multihash code of sha2-256.
const SHA2_256: u64 = 0x12;
/// Digest length of sha2-256.
const SHA2_256_LEN: usize = 32;
/// Byte length of a sha2-256 multihash (code, length, digest).
pub(crate) const MULTIHASH_LEN: usize = 2 + SHA2_256_LEN;

/// Why a CID could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CidError {
    /// The text is not valid in its multibase, or the prefix is unknown.
    #[error("invalid CID text {text:?}: {reason}")]
    InvalidText {
        /// The offending text (truncated to 100 characters).
        text: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The binary form is malformed or truncated.
    #[error("invalid binary CID: {0}")]
    InvalidBinary(&'static str),
    /// Well-formed, but uses a version, codec or hash this crate does not handle.
    #[error("unsupported CID: {0}")]
    Unsupported(String),
}

/// CID version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum CidVersion {
    /// Legacy CIDv0: a bare base58btc sha2-256 multihash, always dag-pb.
    V0,
    /// CIDv1: version, codec and multihash, shown in base32.
    V1,
}

/// IPLD codec of the block a CID names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Codec {
    /// dag-pb (0x70): protobuf nodes with links, used for UnixFS.
    DagPb,
    /// raw (0x55): the bytes are the content (raw leaves).
    Raw,
}

impl Codec {
    /// The multicodec code.
    pub const fn code(self) -> u64 {
        match self {
            Self::DagPb => 0x70,
            Self::Raw => 0x55,
        }
    }

    fn from_code(code: u64) -> Result<Self, CidError> {
        match code {
            0x70 => Ok(Self::DagPb),
            0x55 => Ok(Self::Raw),
            other => Err(CidError::Unsupported(format!(
                "codec 0x{other:x} (only dag-pb and raw are supported)"
            ))),
        }
    }
}

/// A content identifier whose multihash is sha2-256.
///
/// Equality is structural (version, codec and digest), so compare parsed
/// CIDs rather than strings.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Cid {
    version: CidVersion,
    codec: Codec,
    digest: [u8; SHA2_256_LEN],
}

impl Cid {
    /// A CIDv0 for a dag-pb block with the given sha2-256 digest.
    pub const fn v0(digest: [u8; 32]) -> Self {
        Self {
            version: CidVersion::V0,
            codec: Codec::DagPb,
            digest,
        }
    }

    /// A CIDv1 with the given codec and sha2-256 digest.
    pub const fn v1(codec: Codec, digest: [u8; 32]) -> Self {
        Self {
            version: CidVersion::V1,
            codec,
            digest,
        }
    }

    /// The CID of `block` hashed with sha2-256, in the given version/codec.
    /// CIDv0 is only valid for dag-pb; a raw codec always yields CIDv1.
    pub fn for_block(version: CidVersion, codec: Codec, block: &[u8]) -> Self {
        let digest: [u8; 32] = Sha256::digest(block).into();
        match (version, codec) {
            (CidVersion::V0, Codec::DagPb) => Self::v0(digest),
            (_, codec) => Self::v1(codec, digest),
        }
    }

    /// The CID version.
    pub const fn version(&self) -> CidVersion {
        self.version
    }

    /// The codec of the named block.
    pub const fn codec(&self) -> Codec {
        self.codec
    }

    /// The sha2-256 digest of the named block.
    pub const fn digest(&self) -> &[u8; 32] {
        &self.digest
    }

    /// Whether `block` hashes to this CID's digest.
    pub fn verifies(&self, block: &[u8]) -> bool {
        let actual: [u8; 32] = Sha256::digest(block).into();
        actual == self.digest
    }

    /// The multihash bytes: `0x12 0x20 <digest>`.
    pub fn multihash_bytes(&self) -> [u8; MULTIHASH_LEN] {
        let mut out = [0u8; MULTIHASH_LEN];
        out[0] = SHA2_256 as u8;
        out[1] = SHA2_256_LEN as u8;
        out[2..].copy_from_slice(&self.digest);
        out
    }

    /// The binary CID (CIDv0: the multihash; CIDv1: version, codec, multihash).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(MULTIHASH_LEN + 4);
        self.write_bytes(&mut out);
        out
    }

    /// Appends the binary CID to `out`.
    pub(crate) fn write_bytes(&self, out: &mut Vec<u8>) {
        if self.version == CidVersion::V1 {
            write_uvarint(out, 1);
            write_uvarint(out, self.codec.code());
        }
        out.extend_from_slice(&self.multihash_bytes());
    }

    /// Length of [`Cid::to_bytes`].
    pub(crate) fn encoded_len(&self) -> usize {
        match self.version {
            CidVersion::V0 => MULTIHASH_LEN,
            // Version 1 and both supported codecs each fit one varint byte.
            CidVersion::V1 => MULTIHASH_LEN + 2,
        }
    }

    /// Parses a binary CID that must span all of `bytes`.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, CidError> {
        let (cid, used) = Self::read_prefix(bytes)?;
        if used != bytes.len() {
            return Err(CidError::InvalidBinary("trailing bytes after CID"));
        }
        Ok(cid)
    }

    /// Parses a binary CID at the front of `bytes`, returning it and its length.
    pub fn read_prefix(bytes: &[u8]) -> Result<(Self, usize), CidError> {
        // A CIDv0 is a bare sha2-256 multihash, recognised by 0x12 0x20.
        if bytes.first() == Some(&(SHA2_256 as u8)) && bytes.get(1) == Some(&(SHA2_256_LEN as u8)) {
            let digest = read_digest(bytes.get(2..))?;
            return Ok((Self::v0(digest), MULTIHASH_LEN));
        }
        let (version, a) =
            read_uvarint(bytes).ok_or(CidError::InvalidBinary("bad version varint"))?;
        if version != 1 {
            return Err(CidError::Unsupported(format!("CID version {version}")));
        }
        let rest = bytes.get(a..).unwrap_or_default();
        let (code, b) = read_uvarint(rest).ok_or(CidError::InvalidBinary("bad codec varint"))?;
        let codec = Codec::from_code(code)?;
        let rest = rest.get(b..).unwrap_or_default();
        let (hash_code, c) =
            read_uvarint(rest).ok_or(CidError::InvalidBinary("bad multihash code"))?;
        let rest = rest.get(c..).unwrap_or_default();
        let (hash_len, d) =
            read_uvarint(rest).ok_or(CidError::InvalidBinary("bad multihash length"))?;
        if hash_code != SHA2_256 || hash_len != SHA2_256_LEN as u64 {
            return Err(CidError::Unsupported(format!(
                "multihash 0x{hash_code:x} of length {hash_len} (only sha2-256 is supported)"
            )));
        }
        let digest = read_digest(rest.get(d..))?;
        Ok((Self::v1(codec, digest), a + b + c + d + SHA2_256_LEN))
    }
}

fn read_digest(bytes: Option<&[u8]>) -> Result<[u8; 32], CidError> {
    bytes
        .and_then(|b| b.get(..SHA2_256_LEN))
        .and_then(|b| <[u8; 32]>::try_from(b).ok())
        .ok_or(CidError::InvalidBinary("truncated sha2-256 digest"))
}

impl fmt::Display for Cid {
    /// CIDv0 in base58btc, CIDv1 in base32 with the `b` multibase prefix,
    /// as Kubo prints them.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.version {
            CidVersion::V0 => f.write_str(&multibase::base58btc_encode(&self.multihash_bytes())),
            CidVersion::V1 => {
                f.write_str("b")?;
                f.write_str(&multibase::base32_lower_encode(&self.to_bytes()))
            }
        }
    }
}

impl fmt::Debug for Cid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Cid({self})")
    }
}

impl FromStr for Cid {
    type Err = CidError;

    /// Accepts CIDv0 (`Qm…`) and CIDv1 in base32 (`b`/`B`) or base58btc (`z`).
    fn from_str(text: &str) -> Result<Self, CidError> {
        let invalid = |reason| CidError::InvalidText {
            text: text.chars().take(100).collect(),
            reason,
        };
        if text.len() == 46 && text.starts_with("Qm") {
            let bytes = multibase::base58btc_decode(text).ok_or_else(|| invalid("bad base58"))?;
            let cid = Self::from_bytes(&bytes).map_err(|_| invalid("not a sha2-256 multihash"))?;
            return if cid.version == CidVersion::V0 {
                Ok(cid)
            } else {
                Err(invalid("not a sha2-256 multihash"))
            };
        }
        let mut chars = text.chars();
        let bytes = match chars.next() {
            Some('b' | 'B') => {
                multibase::base32_decode(chars.as_str()).ok_or_else(|| invalid("bad base32"))?
            }
            Some('z') => multibase::base58btc_decode(chars.as_str())
                .ok_or_else(|| invalid("bad base58btc"))?,
            Some(_) => return Err(invalid("unknown multibase prefix")),
            None => return Err(invalid("empty")),
        };
        let cid = Self::from_bytes(&bytes)?;
        if cid.version != CidVersion::V1 {
            return Err(invalid("multibase-prefixed CIDv0"));
        }
        Ok(cid)
    }
}

impl serde::Serialize for Cid {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Cid {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn raw_cid_of_empty_block_matches_kubo() {
        let cid = Cid::for_block(CidVersion::V1, Codec::Raw, b"");
        assert_eq!(hex(cid.digest()), EMPTY_SHA256);
        assert_eq!(
            cid.to_string(),
            "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"
        );
    }

    #[test]
    fn parses_and_prints_v0_and_v1() {
        for text in [
            "QmbFMke1KXqnYyBBWxB74N4c5SBnJMVAiMNRcGu6x1AwQH",
            "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku",
            // The empty UnixFS file as CIDv1 dag-pb.
            "bafybeif7ztnhq65lumvvtr4ekcwd2ifwgm3awq4zfr3srh462rwyinlb4y",
        ] {
            let cid: Cid = text.parse().unwrap();
            assert_eq!(cid.to_string(), text);
            assert_eq!(Cid::from_bytes(&cid.to_bytes()).unwrap(), cid);
            assert_eq!(cid.to_bytes().len(), cid.encoded_len());
        }
        let v0: Cid = "QmbFMke1KXqnYyBBWxB74N4c5SBnJMVAiMNRcGu6x1AwQH"
            .parse()
            .unwrap();
        let v1: Cid = "bafybeif7ztnhq65lumvvtr4ekcwd2ifwgm3awq4zfr3srh462rwyinlb4y"
            .parse()
            .unwrap();
        assert_eq!(v0.digest(), v1.digest(), "same block, two versions");
        assert_ne!(v0, v1);
        assert_eq!(v1.codec(), Codec::DagPb);
        let upper: Cid = "BAFKREIHDWDCEFGH4DQKJV67UZCMW7OJEE6XEDZDETOJUZJEVTENXQUVYKU"
            .parse()
            .unwrap();
        assert_eq!(upper.codec(), Codec::Raw);
    }

    #[test]
    fn rejects_garbage_and_unsupported() {
        for bad in [
            "",
            "Qm",
            "QmbFMke1KXqnYyBBWxB74N4c5SBnJMVAiMNRcGu6x1AwQ0",
            "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyk",
            "xyz",
            "bafkrei!",
        ] {
            assert!(bad.parse::<Cid>().is_err(), "{bad:?} must not parse");
        }
        // dag-cbor codec, sha2-256: well formed but unsupported.
        let mut bytes = vec![1, 0x71, 0x12, 0x20];
        bytes.extend([7u8; 32]);
        assert!(matches!(
            Cid::from_bytes(&bytes),
            Err(CidError::Unsupported(_))
        ));
        // blake2b multihash: unsupported.
        let mut bytes = vec![1, 0x55, 0xa0, 0xe4, 0x02, 0x20];
        bytes.extend([7u8; 32]);
        assert!(matches!(
            Cid::from_bytes(&bytes),
            Err(CidError::Unsupported(_))
        ));
        assert!(Cid::from_bytes(&[0x12, 0x20, 1, 2]).is_err(), "truncated");
    }

    #[test]
    fn verifies_only_matching_bytes() {
        let cid = Cid::for_block(CidVersion::V0, Codec::DagPb, b"block");
        assert_eq!(cid.version(), CidVersion::V0);
        assert!(cid.verifies(b"block"));
        assert!(!cid.verifies(b"blocK"));
    }

    #[test]
    fn serde_uses_the_string_form() {
        let cid: Cid = "QmbFMke1KXqnYyBBWxB74N4c5SBnJMVAiMNRcGu6x1AwQH"
            .parse()
            .unwrap();
        let json = serde_json::to_string(&cid).unwrap();
        assert_eq!(json, "\"QmbFMke1KXqnYyBBWxB74N4c5SBnJMVAiMNRcGu6x1AwQH\"");
        assert_eq!(serde_json::from_str::<Cid>(&json).unwrap(), cid);
    }
}
