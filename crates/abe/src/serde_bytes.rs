//! Optional serde support for keys and ciphertexts: a thin layer over the canonical
//! binary encoding, never a second wire format. Binary serializers get the canonical
//! bytes; human-readable ones (JSON, TOML) get them as standard base64. Deserialization
//! goes through the same checked decoder as `Encoding::from_bytes`.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

/// Serializes canonical bytes (base64 for human-readable formats).
pub(crate) fn serialize<S: serde::Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
    if s.is_human_readable() {
        s.serialize_str(&STANDARD.encode(bytes))
    } else {
        s.serialize_bytes(bytes)
    }
}

struct BytesVisitor;

impl serde::de::Visitor<'_> for BytesVisitor {
    type Value = Vec<u8>;

    fn expecting(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("canonical medseal-abe bytes, or their base64")
    }

    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Vec<u8>, E> {
        STANDARD.decode(v).map_err(E::custom)
    }

    fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<Vec<u8>, E> {
        Ok(v.to_vec())
    }

    fn visit_byte_buf<E: serde::de::Error>(self, v: Vec<u8>) -> Result<Vec<u8>, E> {
        Ok(v)
    }
}

/// Deserializes what [`serialize`] wrote.
pub(crate) fn deserialize_bytes<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Vec<u8>, D::Error> {
    if d.is_human_readable() {
        d.deserialize_str(BytesVisitor)
    } else {
        d.deserialize_bytes(BytesVisitor)
    }
}

/// Implements `Serialize`/`Deserialize` through `Encoding` for the given types.
macro_rules! impl_serde {
    ($($ty:ident),*) => {$(
        impl serde::Serialize for $ty {
            fn serialize<S: serde::Serializer>(&self, s: S) -> ::core::result::Result<S::Ok, S::Error> {
                crate::serde_bytes::serialize(&Encoding::to_bytes(self), s)
            }
        }

        impl<'de> serde::Deserialize<'de> for $ty {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> ::core::result::Result<Self, D::Error> {
                let bytes = crate::serde_bytes::deserialize_bytes(d)?;
                <$ty as Encoding>::from_bytes(&bytes).map_err(serde::de::Error::custom)
            }
        }
    )*};
}
pub(crate) use impl_serde;
