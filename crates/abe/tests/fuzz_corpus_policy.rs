//! Runs the policy-parser fuzz corpus (`fuzz/corpus/policy_parse`) through the fuzz entry
//! point on stable Rust, so the seeds (and any crash reproducers added there) stay covered.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;

#[test]
fn policy_parse_corpus() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/policy_parse");
    let entries = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("fuzz corpus {} missing: {e}", dir.display()));
    let mut count = 0;
    for entry in entries {
        let path = entry.unwrap().path();
        if path.is_file() {
            let data = std::fs::read(&path).unwrap();
            medseal_abe::policy::fuzz::policy_parse(&data);
            count += 1;
        }
    }
    assert!(count > 0, "fuzz corpus {} is empty", dir.display());
}

#[test]
fn corpus_seeds_parse_as_labelled() {
    // Seeds named `err_*` must be rejected and all others accepted, so the corpus keeps
    // exercising both paths.
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/policy_parse");
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        // libFuzzer adds hash-named inputs when run with this directory; only check seeds.
        if name.len() == 40 && name.bytes().all(|b| b.is_ascii_hexdigit()) {
            continue;
        }
        let data = std::fs::read(&path).unwrap();
        let parsed = std::str::from_utf8(&data)
            .ok()
            .map(medseal_abe::policy::Policy::parse);
        let ok = matches!(parsed, Some(Ok(_)));
        assert_eq!(ok, !name.starts_with("err_"), "seed {name}: {parsed:?}");
    }
}
