//! Replays the fuzz corpora of the facade's decoders (`fuzz/corpus/decode_manifest`,
//! `decode_member_key`, `decode_authority_key`) through the fuzz entry points on stable
//! Rust, so the seeds and any crash reproducers stay covered by `cargo test`. Seeds named
//! `valid*` must decode and the others must not, so the corpus keeps both paths covered.
//!
//! The seeds were written by `write_seeds` below (run it by hand with `--ignored` to
//! regenerate them; the valid ones come from a real vault).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;

use medseal::abe::Encoding as _;
use medseal::abe::codec::Writer;
use medseal::{Attachment, Authority, Config, Member, NewRecord, PrivateKeySigner, Vault};
use rand_core::OsRng;

fn corpus(target: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target)
}

/// libFuzzer names the inputs it adds by their SHA-1: only named seeds carry a label.
fn is_seed(name: &str) -> bool {
    !(name.len() == 40 && name.bytes().all(|b| b.is_ascii_hexdigit()))
}

fn replay(target: &str, run: fn(&[u8]), decodes: fn(&[u8]) -> bool) {
    let dir = corpus(target);
    let entries = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("fuzz corpus {} missing: {e}", dir.display()));
    let (mut count, mut valid) = (0, 0);
    for entry in entries {
        let path = entry.unwrap().path();
        if !path.is_file() {
            continue;
        }
        let data = std::fs::read(&path).unwrap();
        run(&data);
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if is_seed(&name) {
            assert_eq!(decodes(&data), name.starts_with("valid"), "seed {name}");
            valid += usize::from(name.starts_with("valid"));
        }
        count += 1;
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

fn write(target: &str, seeds: &[(&str, Vec<u8>)]) {
    let dir = corpus(target);
    std::fs::create_dir_all(&dir).unwrap();
    for (name, bytes) in seeds {
        std::fs::write(dir.join(name), bytes).unwrap();
    }
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
