//! Replays the fuzz corpora of the facade's decoders (`fuzz/corpus/decode_manifest`,
//! `decode_member_key`, `decode_authority_key`, `decode_sealed_authority_key`,
//! `decode_authority_share`) through the fuzz entry points on stable
//! Rust, so the seeds and any crash reproducers stay covered by `cargo test`. Seeds named
//! `valid*` must decode and the others must not, so the corpus keeps both paths covered.
//!
//! The seeds were written by `write_seeds` and `write_custody_seeds` below (run them by
//! hand with `--ignored` to regenerate them; the valid ones come from a real vault).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;

use medseal::abe::Encoding as _;
use medseal::abe::codec::Writer;
use medseal::{Attachment, Authority, Config, Member, NewRecord, PrivateKeySigner, Vault};
use rand_core::OsRng;

#[path = "../fuzz/corpus_replay.rs"]
mod corpus_replay;

fn corpus(target: &str) -> PathBuf {
    corpus_replay::corpus(&PathBuf::from(env!("CARGO_MANIFEST_DIR")), target)
}

fn replay(target: &str, run: fn(&[u8]), decodes: impl Fn(&[u8]) -> bool) {
    corpus_replay::replay(&corpus(target), run, decodes);
}

fn write(target: &str, seeds: &[(&str, Vec<u8>)]) {
    corpus_replay::write_seeds(&corpus(target), seeds);
}

#[test]
fn decode_manifest_corpus() {
    replay("decode_manifest", medseal::__fuzz::decode_manifest, |d| {
        medseal::__fuzz::manifest_decodes(d)
    });
}

#[test]
fn decode_member_key_corpus() {
    replay(
        "decode_member_key",
        medseal::__fuzz::decode_member_key,
        |d| Member::from_bytes(d).is_ok(),
    );
}

#[test]
fn decode_authority_key_corpus() {
    replay(
        "decode_authority_key",
        medseal::__fuzz::decode_authority_key,
        |d| Authority::from_bytes(d).is_ok(),
    );
}

#[test]
fn decode_sealed_authority_key_corpus() {
    replay(
        "decode_sealed_authority_key",
        medseal::__fuzz::decode_sealed_authority_key,
        medseal::__fuzz::sealed_authority_key_decodes,
    );
}

#[test]
fn decode_authority_share_corpus() {
    replay(
        "decode_authority_share",
        medseal::__fuzz::decode_authority_share,
        medseal::__fuzz::authority_share_decodes,
    );
}

/// The common damages of a length-prefixed encoding.
fn damaged(valid: &[u8]) -> Vec<(&'static str, Vec<u8>)> {
    let mut flipped_magic = valid.to_vec();
    flipped_magic[0] ^= 0x20;
    let mut trailing = valid.to_vec();
    trailing.push(0);
    // The first length prefix (after magic and version) claims 2^32 - 1 bytes.
    let mut huge = valid.to_vec();
    huge[5..9].copy_from_slice(&[0xff; 4]);
    vec![
        ("empty", Vec::new()),
        ("magic_only", valid[..4].to_vec()),
        ("truncated", valid[..valid.len() - 1].to_vec()),
        ("bad_magic", flipped_magic),
        ("trailing", trailing),
        ("huge_length", huge),
    ]
}

#[test]
#[ignore = "writes the custody seed corpora; run by hand to regenerate them"]
fn write_custody_seeds() {
    let authority = Authority::setup(&mut OsRng);
    // Small KDF parameters, so that the fuzzer reaches the key derivation cheaply.
    let params = medseal::KdfParams::new(64, 1, 1).unwrap();
    let sealed = authority.seal(b"fuzz", &params, &mut OsRng).unwrap();
    let mut seeds = vec![("valid", sealed.clone())];
    seeds.extend(damaged(&sealed));
    let mut damaged_body = sealed.clone();
    damaged_body[40] ^= 1;
    seeds.push(("bad_checksum", damaged_body));
    seeds.push(("plain_key", authority.to_bytes()));
    write("decode_sealed_authority_key", &seeds);

    let shares = authority.split(2, 3, &mut OsRng).unwrap();
    let line = shares[0].to_string();
    let mut seeds = vec![
        ("valid", line.clone().into_bytes()),
        ("valid_newline", format!("{}\n", shares[2]).into_bytes()),
        ("empty", Vec::new()),
        ("truncated", line.as_bytes()[..line.len() - 1].to_vec()),
        ("v2", line.replacen(" v1 ", " v2 ", 1).into_bytes()),
        (
            "relabelled",
            line.replacen("share=1/3", "share=2/3", 1).into_bytes(),
        ),
        ("trailing", format!("{line} x").into_bytes()),
    ];
    let mut flipped = line.clone().into_bytes();
    let at = line.find(" k=2 ").unwrap() + 9;
    flipped[at] = if flipped[at] == b'0' { b'1' } else { b'0' };
    seeds.push(("flipped", flipped));
    write("decode_authority_share", &seeds);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "writes the seed corpora; run by hand to regenerate them"]
async fn write_seeds() {
    let authority = Authority::setup(&mut OsRng);
    let member = authority
        .issue(
            "dr-ada",
            ["role:doctor", "dept:cardiology"],
            medseal::Validity::months_from_now(12),
            PrivateKeySigner::random(),
            &mut OsRng,
        )
        .unwrap();
    let sam_signer = PrivateKeySigner::random();
    let other = authority
        .issue(
            "sam",
            ["role:nurse"],
            medseal::Validity::months_from_now(12),
            sam_signer.clone(),
            &mut OsRng,
        )
        .unwrap();

    let mut seeds = vec![("valid", authority.to_bytes())];
    seeds.extend(damaged(&authority.to_bytes()));
    write("decode_authority_key", &seeds);

    let valid = member.to_bytes();
    let mut seeds = vec![("valid", valid.clone()), ("valid_nurse", other.to_bytes())];
    seeds.extend(damaged(&valid));
    // Another member's signing key with this member's ABE key: the key's id attribute
    // does not match the signer.
    let spliced = {
        let mut w = Writer::new(*b"MSMK", 1);
        w.str(member.name())
            .bytes(&sam_signer.to_bytes().0)
            .bytes(&member.key().to_bytes());
        w.finish()
    };
    seeds.push(("spliced_signer", spliced));
    let short_secret = {
        let mut w = Writer::new(*b"MSMK", 1);
        w.str("x").bytes(&[1; 31]).bytes(&member.key().to_bytes());
        w.finish()
    };
    seeds.push(("short_signing_key", short_secret));
    write("decode_member_key", &seeds);

    let dir = tempfile::tempdir().unwrap();
    let mut vault = Vault::open_with(dir.path(), &Config::embedded())
        .await
        .unwrap();
    vault.install_authority(authority.public_key()).unwrap();
    let put = vault
        .put(
            &member,
            NewRecord::new("ECG", "role:doctor and dept:cardiology".parse().unwrap())
                .attach(Attachment::bytes("a.txt", "text/plain", &b"sinus"[..])),
        )
        .await
        .unwrap();
    let manifest = vault.store().get(&put.manifest_cid).await.unwrap().to_vec();
    let mut seeds = vec![("valid", manifest.clone())];
    seeds.extend(damaged(&manifest));
    // A capsule that is not an envelope.
    let mut w = Writer::new(*b"MSMF", 1);
    w.bytes(b"not a capsule").bytes(b"body");
    seeds.push(("bad_capsule", w.finish()));
    write("decode_manifest", &seeds);
}
