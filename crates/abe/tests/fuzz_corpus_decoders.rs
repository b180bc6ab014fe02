//! Replays the decoder fuzz corpora (`fuzz/corpus/decode_*`) through the fuzz entry
//! points on stable Rust, so seeds and any crash reproducers stay covered by `cargo test`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;

fn replay(target: &str, run: fn(&[u8])) {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/corpus")
        .join(target);
    let entries = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("fuzz corpus {} missing: {e}", dir.display()));
    let mut count = 0;
    for entry in entries {
        let path = entry.unwrap().path();
        if path.is_file() {
            run(&std::fs::read(&path).unwrap());
            count += 1;
        }
    }
    assert!(
        count >= 5,
        "fuzz corpus {} has only {count} seeds",
        dir.display()
    );
}

#[test]
fn decode_public_key_corpus() {
    replay("decode_public_key", medseal_abe::__fuzz::decode_public_key);
}

#[test]
fn decode_master_key_corpus() {
    replay("decode_master_key", medseal_abe::__fuzz::decode_master_key);
}

#[test]
fn decode_user_key_corpus() {
    replay("decode_user_key", medseal_abe::__fuzz::decode_user_key);
}

#[test]
fn decode_ciphertext_corpus() {
    replay("decode_ciphertext", medseal_abe::__fuzz::decode_ciphertext);
}

#[test]
fn decode_envelope_corpus() {
    replay("decode_envelope", medseal_abe::__fuzz::decode_envelope);
}
