//! Replaying a fuzz corpus on stable Rust, shared by the crates' `fuzz_corpus` tests
//! (each includes this file with `#[path]`; the corpora live in `fuzz/corpus/<target>`).
//!
//! Every input runs through the fuzz entry point, so crash reproducers stay covered by
//! `cargo test`. Seeds named `valid*` must decode and the other named seeds must not, so
//! the corpus keeps both paths covered; inputs libFuzzer added (named by their SHA-1)
//! carry no label.

use std::path::{Path, PathBuf};

/// The corpus directory of `target`, given the workspace root.
pub(crate) fn corpus(root: &Path, target: &str) -> PathBuf {
    root.join("fuzz/corpus").join(target)
}

/// libFuzzer names the inputs it adds by their SHA-1: only named seeds carry a label.
fn is_seed(name: &str) -> bool {
    !(name.len() == 40 && name.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// Runs every input of `dir` through `run` and checks each named seed against `decodes`.
#[allow(dead_code)]
pub(crate) fn replay(dir: &Path, run: impl Fn(&[u8]), decodes: impl Fn(&[u8]) -> bool) {
    replay_checked(dir, run, Some(&decodes));
}

/// Whether a seed decodes.
type Decodes<'a> = &'a dyn Fn(&[u8]) -> bool;

fn replay_checked(dir: &Path, run: impl Fn(&[u8]), decodes: Option<Decodes<'_>>) {
    let entries = std::fs::read_dir(dir)
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
        if let Some(decodes) = decodes.filter(|_| is_seed(&name)) {
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
        decodes.is_none() || valid >= 1,
        "fuzz corpus {} has no valid seed",
        dir.display()
    );
}

/// Runs every input of `dir` through `run` (corpora whose seeds carry no label).
#[allow(dead_code)]
pub(crate) fn replay_unlabelled(dir: &Path, run: impl Fn(&[u8])) {
    replay_checked(dir, run, None);
}

/// Writes named seeds into `dir` (the tests' `write_seeds`, run by hand).
#[allow(dead_code)]
pub(crate) fn write_seeds(dir: &Path, seeds: &[(&str, impl AsRef<[u8]>)]) {
    std::fs::create_dir_all(dir).unwrap();
    for (name, bytes) in seeds {
        std::fs::write(dir.join(name), bytes.as_ref()).unwrap();
    }
}
