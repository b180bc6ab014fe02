//! Replays the fuzz corpora (`fuzz/corpus/index_*`) through the fuzz entry points on
//! stable Rust, so seeds and any crash reproducers stay covered by `cargo test`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use medseal_index::Keyword;
use medseal_index::sse::{OwnerPartition, SearchToken, Shard};
use std::path::PathBuf;

fn replay(target: &str, run: fn(&[u8]), decodes: fn(&[u8]) -> bool) {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/corpus")
        .join(target);
    let entries = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("fuzz corpus {} missing: {e}", dir.display()));
    let (mut count, mut valid) = (0, 0);
    for entry in entries {
        let path = entry.unwrap().path();
        if path.is_file() {
            let data = std::fs::read(&path).unwrap();
            run(&data);
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            // Seeds named `valid*` must keep decoding; the others must not.
            assert_eq!(decodes(&data), name.starts_with("valid"), "seed {name}");
            valid += usize::from(name.starts_with("valid"));
            count += 1;
        }
    }
    assert!(
        count >= 5,
        "fuzz corpus {} has only {count} seeds",
        dir.display()
    );
    assert!(
        valid >= 1,
        "fuzz corpus {} has no valid seed",
        dir.display()
    );
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
