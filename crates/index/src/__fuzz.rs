//! Entry points for the fuzz targets in `fuzz/` (three-line shims call these) and for the
//! test that replays their seed corpora on stable Rust. Not a public API.
//!
//! Each function must never panic on any input, except through the assertions here,
//! which state properties that must hold for every input that decodes.

use crate::sse::{IndexHost, SearchToken, Shard};

/// Decodes a shard; a decodable shard re-encodes to the same bytes, has a root, and can
/// be inserted into a host and searched.
pub fn decode_shard(data: &[u8]) {
    if let Ok(shard) = Shard::from_bytes(data) {
        assert!(
            shard.to_bytes() == data,
            "a decodable shard is not canonical"
        );
        let root = shard.root();
        let mut host = IndexHost::new();
        let inserted = host.insert_shard(shard);
        assert!(inserted.is_ok_and(|r| r == root), "root changed on insert");
    }
}

/// Decodes a search token; a decodable token re-encodes to the same bytes and searching
/// an empty host with it yields nothing.
pub fn decode_token(data: &[u8]) {
    if let Ok(token) = SearchToken::from_bytes(data) {
        assert!(
            token.to_bytes() == data,
            "a decodable token is not canonical"
        );
        assert!(IndexHost::new().search(&token).is_empty());
    }
}
