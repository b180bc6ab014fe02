//! Replays the fuzz corpora (`fuzz/corpus/index_*`) through the fuzz entry points on
//! stable Rust, so seeds and any crash reproducers stay covered by `cargo test`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use medseal_index::Keyword;
use medseal_index::sse::{OwnerPartition, SearchToken, Shard};
use std::path::PathBuf;

#[path = "../../../fuzz/corpus_replay.rs"]
mod corpus_replay;

fn replay(target: &str, run: fn(&[u8]), decodes: fn(&[u8]) -> bool) {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    corpus_replay::replay(&corpus_replay::corpus(&root, target), run, decodes);
}

#[test]
fn index_shard_corpus() {
    replay("index_shard", medseal_index::__fuzz::decode_shard, |d| {
        Shard::from_bytes(d).is_ok()
    });
}

#[test]
fn index_token_corpus() {
    replay("index_token", medseal_index::__fuzz::decode_token, |d| {
        SearchToken::from_bytes(d).is_ok()
    });
}

#[test]
fn index_owner_partition_corpus() {
    replay(
        "index_owner_partition",
        medseal_index::__fuzz::decode_owner_partition,
        |d| OwnerPartition::from_bytes(d).is_ok(),
    );
}

#[test]
fn index_keyword_corpus() {
    replay("index_keyword", medseal_index::__fuzz::parse_keyword, |d| {
        std::str::from_utf8(d).is_ok_and(|s| Keyword::parse(s).is_ok())
    });
}
