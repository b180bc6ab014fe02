//! A 1 GiB payload goes through seal and open as a stream, in bounded memory.
//!
//! This file holds one test so that it runs in its own process: the peak resident set
//! size (`VmHWM`) then measures this pipeline alone. The payload is generated on the fly,
//! sealed in one thread into an OS pipe, opened from the pipe in another, and hashed: at
//! no point does any buffer hold more than a segment or two.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use medseal_abe::{AttributeSet, Fame, Policy, Scheme, envelope};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use sha2::Digest;

#[path = "common/stream.rs"]
mod stream;
use stream::{Hashing, Payload};

const TOTAL: u64 = 1 << 30;

fn peak_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

#[test]
fn one_gib_streams_in_bounded_memory() {
    let mut rng = ChaCha20Rng::seed_from_u64(11);
    let (pk, msk) = Fame::setup(&mut rng);
    let key = Fame::keygen(
        &pk,
        &msk,
        &AttributeSet::parse(["role:doctor"]).unwrap(),
        &mut rng,
    )
    .unwrap();
    let policy: Policy = "role:doctor".parse().unwrap();

    let mut expected = Hashing::new();
    std::io::copy(&mut Payload::new(TOTAL), &mut expected).unwrap();
    let before = peak_rss_kib();

    let (reader, writer) = std::io::pipe().unwrap();
    let sealer = std::thread::spawn(move || {
        let mut writer = std::io::BufWriter::with_capacity(1 << 16, writer);
        envelope::seal_stream::<Fame, _>(
            &pk,
            &policy,
            b"big",
            envelope::DEFAULT_SEGMENT_SIZE,
            Payload::new(TOTAL),
            &mut writer,
            &mut rng,
        )
        .unwrap()
    });
    let mut opened = Hashing::new();
    let n =
        envelope::open_stream::<Fame>(&key, b"big", std::io::BufReader::new(reader), &mut opened)
            .unwrap();
    assert_eq!(sealer.join().unwrap(), TOTAL);
    assert_eq!(n, TOTAL);
    assert_eq!(opened.total, TOTAL);
    assert_eq!(opened.hash.finalize(), expected.hash.finalize());

    let growth_mib = peak_rss_kib().saturating_sub(before) / 1024;
    if before > 0 {
        assert!(
            growth_mib < 32,
            "peak RSS grew by {growth_mib} MiB while streaming 1 GiB"
        );
    }
}
