//! Entry points for the fuzz targets in `fuzz/` (three-line shims call these) and for the
//! test that replays their seed corpora on stable Rust. Not a public API.
//!
//! Each function must never panic on any input, except through the assertions here,
//! which state properties that must hold for every input that decodes.

use crate::identity::{Authority, Member};
use crate::manifest::Manifest;

/// Decodes a sealed record manifest (what the chain's manifest CID names); a decodable
/// manifest re-encodes to the same bytes, its capsule's policy is readable, and opening
/// its body with a wrong record key fails cleanly.
pub fn decode_manifest(data: &[u8]) {
    if let Ok(manifest) = Manifest::from_bytes(data) {
        assert!(
            manifest.to_bytes() == data,
            "a decodable manifest is not canonical"
        );
        assert!(
            manifest.policy().is_ok(),
            "a decodable capsule has no policy"
        );
        let wrong = crate::abe::envelope::DataKey::from_slice(&[7; 32]);
        if let Some(wrong) = wrong {
            assert!(
                manifest.open_body(&wrong).is_err(),
                "a manifest body opened under a fixed key"
            );
        }
    }
}

/// Whether `data` decodes as a manifest (the seed corpus test's label check).
pub fn manifest_decodes(data: &[u8]) -> bool {
    Manifest::from_bytes(data).is_ok()
}

/// Decodes a member key file (`DIR/members/NAME.key`); a decodable key re-encodes to the
/// same bytes and carries its signer's `id:` attribute.
pub fn decode_member_key(data: &[u8]) {
    if let Ok(member) = Member::from_bytes(data) {
        assert!(
            member.to_bytes() == data,
            "a decodable member key is not canonical"
        );
        let id = crate::identity::id_attribute(member.address());
        assert!(
            member.attributes().contains_label(&id),
            "a decoded member key lacks its id attribute"
        );
    }
}

/// Decodes an authority key file (`DIR/authority.key`); a decodable key re-encodes to the
/// same bytes.
pub fn decode_authority_key(data: &[u8]) {
    if let Ok(authority) = Authority::from_bytes(data) {
        assert!(
            authority.to_bytes() == data,
            "a decodable authority key is not canonical"
        );
    }
}
