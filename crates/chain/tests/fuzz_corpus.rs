//! Replays the chain journal fuzz corpus (`fuzz/corpus/chain_journal`) through the fuzz
//! entry point on stable Rust, so the seeds and any crash reproducers stay covered by
//! `cargo test`. Seeds named `valid*` must open as a chain (a full replay of a copy) and
//! the others must not, so the corpus keeps both paths covered.
//!
//! The seeds were written by `write_seeds` below (run it by hand with `--ignored` to
//! regenerate them; the valid ones come from a real embedded chain).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    missing_docs,
    unreachable_pub
)]

use std::path::PathBuf;

use alloy::primitives::keccak256;
use medseal_chain::dev_keys::anvil_dev_signer;
use medseal_chain::{B256, EmbeddedChain, Ledger};

const MAGIC_LEN: usize = 8;

#[path = "../../../fuzz/corpus_replay.rs"]
mod corpus_replay;

fn corpus() -> PathBuf {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    corpus_replay::corpus(&root, "chain_journal")
}

/// Whether a journal file with these bytes opens (a full replay, on a copy).
fn opens(data: &[u8]) -> bool {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("chain.journal");
    std::fs::write(&path, data).unwrap();
    EmbeddedChain::open_with_replay(&path, anvil_dev_signer(0).unwrap()).is_ok()
}

#[test]
fn chain_journal_corpus() {
    corpus_replay::replay(&corpus(), medseal_chain::__fuzz::decode_journal, opens);
}

/// (offset, total length) of every record in a journal file.
fn record_spans(bytes: &[u8]) -> Vec<(usize, usize)> {
    let mut spans = Vec::new();
    let mut at = MAGIC_LEN;
    while at + 4 <= bytes.len() {
        let len = u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
        let total = 4 + len + 32;
        if at + total > bytes.len() {
            break;
        }
        spans.push((at, total));
        at += total;
    }
    spans
}

/// Recomputes the checksum of the record at `span` (after a deliberate edit).
fn reseal(bytes: &mut [u8], (at, total): (usize, usize)) {
    let sum = keccak256(&bytes[at..at + total - 32]);
    bytes[at + total - 32..at + total].copy_from_slice(sum.as_slice());
}

/// A journal record of `payload`.
fn record(payload: &[u8]) -> Vec<u8> {
    let mut out = (payload.len() as u32).to_le_bytes().to_vec();
    out.extend_from_slice(payload);
    let sum = keccak256(&out);
    out.extend_from_slice(sum.as_slice());
    out
}

#[tokio::test]
#[ignore = "writes the seed corpus; run by hand to regenerate it"]
async fn write_seeds() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("chain.journal");
    {
        let chain = EmbeddedChain::open(&path, anvil_dev_signer(0).unwrap()).unwrap();
        for i in 0..2u8 {
            chain
                .create_record(&format!("bafy-{i}"), B256::repeat_byte(i + 1))
                .await
                .unwrap();
        }
    }
    let journal = std::fs::read(&path).unwrap();
    let spans = record_spans(&journal);
    assert_eq!(spans.len(), 3, "deployment and two records");
    let (first, last) = (spans[0], spans[2]);

    let mut torn = journal.clone();
    torn.truncate(torn.len() - 10);
    let mut zero_tail = journal.clone();
    zero_tail.extend_from_slice(&[0; 64]);
    let mut bad_magic = journal.clone();
    bad_magic[0] ^= 1;
    // A flipped byte in the deployment's payload, intact records after it.
    let mut corrupt = journal.clone();
    corrupt[first.0 + 20] ^= 1;
    // The last block's hash edited and the record resealed: the framing is intact, the
    // block does not verify on replay.
    let mut bad_hash = journal.clone();
    bad_hash[last.0 + 4 + 1 + 8 + 8 + 32] ^= 1;
    reseal(&mut bad_hash, last);
    let mut bad_version = journal.clone();
    bad_version[last.0 + 4] = 2;
    reseal(&mut bad_version, last);
    let mut short_payload = journal[..last.0].to_vec();
    short_payload.extend_from_slice(&record(&[1, 2, 3, 4, 5]));
    let mut huge_length = journal[..MAGIC_LEN].to_vec();
    huge_length.extend_from_slice(&[0xff; 4]);
    huge_length.extend_from_slice(&journal[MAGIC_LEN..]);

    let seeds: [(&str, &[u8]); 11] = [
        ("valid_chain", &journal),
        ("valid_torn_tail", &torn),
        ("valid_zero_tail", &zero_tail),
        ("valid_header_only", &journal[..MAGIC_LEN]),
        ("valid_empty", &[]),
        ("bad_magic", &bad_magic),
        ("corrupt_record_before_intact_ones", &corrupt),
        ("resealed_bad_block_hash", &bad_hash),
        ("resealed_bad_version", &bad_version),
        ("short_block_payload", &short_payload),
        ("huge_length_before_records", &huge_length),
    ];
    corpus_replay::write_seeds(&corpus(), &seeds);
}
