//! Replays the decoder fuzz corpora (`fuzz/corpus/decode_*`) through the fuzz entry
//! points on stable Rust, so seeds and any crash reproducers stay covered by `cargo test`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;

#[path = "../../../fuzz/corpus_replay.rs"]
mod corpus_replay;

fn replay(target: &str, run: fn(&[u8])) {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    corpus_replay::replay_unlabelled(&corpus_replay::corpus(&root, target), run);
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
