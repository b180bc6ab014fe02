//! Entry points for the fuzz targets in `fuzz/` (three-line shims call these) and for the
//! test that replays their seed corpora on stable Rust. Not a public API.
//!
//! Each function must never panic on any input, except through the assertions here,
//! which state properties that must hold for every input that decodes.

use crate::sse::{IndexHost, OwnerPartition, Padding, SearchToken, Shard};
use crate::{Keyword, RecordRef};

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

/// Decodes an owner's partition state; a decodable state re-encodes to the same bytes,
/// and a batch on it either fails cleanly or advances the shard sequence by one and
/// leaves a state that decodes again and is a successor of the decoded one (and not the
/// reverse).
pub fn decode_owner_partition(data: &[u8]) {
    if let Ok(owner) = OwnerPartition::from_bytes(data) {
        assert!(
            *owner.to_bytes() == data,
            "a decodable owner partition is not canonical"
        );
        // Without padding: a decoded bucket or counter could ask for a shard of up to
        // 2^26 entries, a size the fuzzer should not spend its memory on.
        let mut owner = owner.with_padding(Padding::None);
        let seq = owner.next_shard_seq();
        let (Ok(kw), Ok(record)) = (Keyword::term("fuzz"), RecordRef::new([1; 32])) else {
            return;
        };
        if owner.batch([(&kw, record)]).is_ok() {
            assert!(owner.next_shard_seq() == seq + 1, "sequence not advanced");
            let span = owner.merge_span();
            assert!(
                (1..=owner.live_shards().len()).contains(&span),
                "merge span outside the live shards"
            );
            assert!(
                OwnerPartition::from_bytes(&owner.to_bytes()).is_ok(),
                "an advanced state does not decode"
            );
            // The advanced state follows the decoded one, never the other way round.
            if let Ok(before) = OwnerPartition::from_bytes(data) {
                assert!(
                    owner.check_successor(&before).is_ok(),
                    "a batch went backwards"
                );
                assert!(
                    before.check_successor(&owner).is_err(),
                    "an older state passes as a successor"
                );
            }
        }
    }
}

/// Parses a keyword; whatever parses re-parses from its canonical text to the same
/// keyword (issue 12), and its canonical text is within the length limit. The same for
/// `parse_any_type`, which accepts everything `parse` does, with the same result.
pub fn parse_keyword(data: &[u8]) {
    let Ok(text) = core::str::from_utf8(data) else {
        return;
    };
    let any = Keyword::parse_any_type(text);
    if let Ok(k) = &any {
        assert!(
            k.as_str().len() <= crate::MAX_KEYWORD_LEN,
            "a canonical keyword is too long"
        );
        assert!(
            Keyword::parse_any_type(k.as_str()).is_ok_and(|again| &again == k),
            "a canonical keyword does not re-parse to itself"
        );
    }
    if let Ok(k) = Keyword::parse(text) {
        assert!(
            crate::KEYWORD_TYPES.contains(&k.kind()),
            "a keyword of an unknown type parsed"
        );
        assert!(any.as_ref() == Ok(&k), "parse and parse_any_type disagree");
        assert!(
            Keyword::parse(k.as_str()).is_ok_and(|again| again == k),
            "a canonical keyword does not re-parse to itself"
        );
    }
}
