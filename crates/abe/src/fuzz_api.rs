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

/// Decodes public keys of both schemes.
pub fn decode_public_key(data: &[u8]) {
    canonical::<<Fame as Scheme>::PublicKey>(data);
    canonical::<<Bsw07 as Scheme>::PublicKey>(data);
}

/// Decodes master keys of both schemes.
pub fn decode_master_key(data: &[u8]) {
    canonical::<<Fame as Scheme>::MasterKey>(data);
    canonical::<<Bsw07 as Scheme>::MasterKey>(data);
}

/// Decodes user keys of both schemes.
pub fn decode_user_key(data: &[u8]) {
    canonical::<<Fame as Scheme>::UserKey>(data);
    canonical::<<Bsw07 as Scheme>::UserKey>(data);
}

/// Decodes ciphertexts of both schemes.
pub fn decode_ciphertext(data: &[u8]) {
    canonical::<<Fame as Scheme>::Ciphertext>(data);
    canonical::<<Bsw07 as Scheme>::Ciphertext>(data);
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
