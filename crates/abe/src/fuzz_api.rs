//! Entry points for the fuzz targets in `fuzz/` (three-line shims call these) and for the
//! test that replays their seed corpora on stable Rust. Not a public API.
//!
//! Each function must never panic on any input, except through the assertions here,
//! which state properties that must hold for every input that decodes.

use crate::envelope;
use crate::scheme::{Encoding, Scheme};
use crate::{Bsw07, Fame};

fn canonical<T: Encoding>(data: &[u8]) {
    if let Ok(value) = T::from_bytes(data) {
        assert!(
            value.to_bytes() == data,
            "a decodable input is not canonical"
        );
    }
}

/// Defines entry points that decode one object type of both schemes.
macro_rules! decoders {
    ($($(#[$doc:meta])* $name:ident: $ty:ident;)*) => {$(
        $(#[$doc])*
        pub fn $name(data: &[u8]) {
            canonical::<<Fame as Scheme>::$ty>(data);
            canonical::<<Bsw07 as Scheme>::$ty>(data);
        }
    )*};
}

decoders! {
    /// Decodes public keys of both schemes.
    decode_public_key: PublicKey;
    /// Decodes master keys of both schemes.
    decode_master_key: MasterKey;
    /// Decodes user keys of both schemes.
    decode_user_key: UserKey;
    /// Decodes ciphertexts of both schemes.
    decode_ciphertext: Ciphertext;
}

/// Decodes envelope headers of both schemes.
pub fn decode_envelope(data: &[u8]) {
    for header in [
        envelope::inspect::<Fame>(data).map(|h| h.as_bytes().to_vec()),
        envelope::inspect::<Bsw07>(data).map(|h| h.as_bytes().to_vec()),
    ]
    .into_iter()
    .flatten()
    {
        assert!(
            data.starts_with(&header),
            "header bytes are not a prefix of the input"
        );
    }
}
