//! Entry points for the fuzz targets in `fuzz/` (three-line shims call these) and for the
//! test that replays their seed corpora on stable Rust. Not a public API.
//!
//! Each function must never panic on any input, except through the assertions here,
//! which state properties that must hold for every input that decodes.

use crate::custody::{AuthorityShare, is_sealed, sealed_params};
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

/// Decodes a sealed authority key file (`DIR/authority.key`) up to the key derivation
/// (structure, checksum, KDF parameter caps); one with small parameters is also opened
/// with a fixed passphrase, which must fail cleanly or yield a key.
pub fn decode_sealed_authority_key(data: &[u8]) {
    if let Ok(params) = sealed_params(data) {
        assert!(
            is_sealed(data),
            "sealed parameters read from a file of another format"
        );
        if params.memory_kib() <= 256 && params.iterations() <= 2 {
            let _ = Authority::open_sealed(data, b"fuzz");
        }
    }
}

/// Whether `data` passes [`sealed_params`] (the seed corpus test's label check).
pub fn sealed_authority_key_decodes(data: &[u8]) -> bool {
    sealed_params(data).is_ok()
}

/// Parses an authority backup share line; a parsed share prints as a canonical line that
/// parses back to the same share.
pub fn decode_authority_share(data: &[u8]) {
    if let Some(share) = parse_share(data) {
        let line = share.to_line();
        assert!(
            line.parse::<AuthorityShare>().ok().as_ref() == Some(&share),
            "a parsed share does not round-trip through its line"
        );
    }
}

/// Whether `data` parses as a share line (the seed corpus test's label check).
pub fn authority_share_decodes(data: &[u8]) -> bool {
    parse_share(data).is_some()
}

fn parse_share(data: &[u8]) -> Option<AuthorityShare> {
    core::str::from_utf8(data).ok()?.parse().ok()
}
