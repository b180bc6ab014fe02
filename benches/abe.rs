//! criterion benches of the CP-ABE hot path: setup, keygen, encrypt (encapsulate) and
//! decrypt (decapsulate) for AND policies of n attributes, both schemes; and envelope
//! throughput (seal and open) for 1 MiB and 64 MiB payloads.
//!
//! `cargo bench --bench abe` (all), or e.g. `cargo bench --bench abe -- fame/decrypt`.
#![allow(clippy::unwrap_used, missing_docs)]

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use medseal_abe::{AttributeSet, Bsw07, Fame, Policy, Scheme, envelope};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use std::hint::black_box;

const SIZES: &[usize] = &[1, 5, 10, 20, 50, 100];

fn attributes(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("attr:a{i}")).collect()
}

fn and_policy(n: usize) -> Policy {
    attributes(n).join(" and ").parse().unwrap()
}

fn scheme<S: Scheme>(c: &mut Criterion, name: &str) {
    let mut rng = ChaCha20Rng::seed_from_u64(1);
    let mut group = c.benchmark_group(name);
    group.sample_size(20);
    group.bench_function("setup", |b| b.iter(|| S::setup(&mut rng)));
    let (pk, msk) = S::setup(&mut rng);
    for &n in SIZES {
        let attrs = AttributeSet::parse(attributes(n)).unwrap();
        let policy = and_policy(n);
        group.bench_with_input(BenchmarkId::new("keygen", n), &n, |b, _| {
            b.iter(|| S::keygen(&pk, &msk, black_box(&attrs), &mut rng).unwrap())
        });
        group.bench_with_input(BenchmarkId::new("encrypt", n), &n, |b, _| {
            b.iter(|| S::encapsulate(&pk, black_box(&policy), &mut rng).unwrap())
        });
        let key = S::keygen(&pk, &msk, &attrs, &mut rng).unwrap();
        let (_, ct) = S::encapsulate(&pk, &policy, &mut rng).unwrap();
        group.bench_with_input(BenchmarkId::new("decrypt", n), &n, |b, _| {
            b.iter(|| S::decapsulate(black_box(&key), black_box(&ct)).unwrap())
        });
    }
    group.finish();
}

fn schemes(c: &mut Criterion) {
    scheme::<Fame>(c, "fame");
    scheme::<Bsw07>(c, "bsw07");
}

fn envelope_throughput(c: &mut Criterion) {
    let mut rng = ChaCha20Rng::seed_from_u64(2);
    let (pk, msk) = Fame::setup(&mut rng);
    let key = Fame::keygen(
        &pk,
        &msk,
        &AttributeSet::parse(["role:doctor"]).unwrap(),
        &mut rng,
    )
    .unwrap();
    let policy: Policy = "role:doctor".parse().unwrap();
    let seal = |payload: &[u8], sealed: &mut Vec<u8>, rng: &mut ChaCha20Rng| {
        let segment = envelope::DEFAULT_SEGMENT_SIZE;
        envelope::seal_stream::<Fame, _>(&pk, &policy, b"", segment, payload, sealed, rng).unwrap()
    };
    let mut group = c.benchmark_group("envelope");
    group.sample_size(10);
    for mib in [1usize, 64] {
        let payload = vec![0x5au8; mib << 20];
        let mut sealed = Vec::with_capacity(payload.len() + (payload.len() >> 10) + 4096);
        group.throughput(Throughput::Bytes(payload.len() as u64));
        group.bench_with_input(
            BenchmarkId::new("seal", format!("{mib}MiB")),
            &mib,
            |b, _| {
                b.iter(|| {
                    sealed.clear();
                    seal(&payload, &mut sealed, &mut rng)
                })
            },
        );
        // The floor: the same AEAD over the same 64 KiB segments, with no KEM, no
        // key derivation and no streaming plumbing.
        let aead = <aes_gcm::Aes256Gcm as aes_gcm::KeyInit>::new(&[7u8; 32].into());
        let mut segment = vec![0u8; envelope::DEFAULT_SEGMENT_SIZE as usize];
        group.bench_with_input(
            BenchmarkId::new("raw_aes_gcm", format!("{mib}MiB")),
            &mib,
            |b, _| {
                b.iter(|| {
                    sealed.clear();
                    for (i, chunk) in payload.chunks(segment.len()).enumerate() {
                        let buf = &mut segment[..chunk.len()];
                        buf.copy_from_slice(chunk);
                        let mut nonce = [0u8; 12];
                        nonce[..8].copy_from_slice(&(i as u64).to_be_bytes());
                        let tag = aes_gcm::aead::AeadInPlace::encrypt_in_place_detached(
                            &aead,
                            &nonce.into(),
                            b"",
                            buf,
                        )
                        .unwrap();
                        sealed.extend_from_slice(buf);
                        sealed.extend_from_slice(&tag);
                    }
                })
            },
        );
        // Open needs a real envelope whatever benches the filter selected above.
        sealed.clear();
        seal(&payload, &mut sealed, &mut rng);
        let mut opened = Vec::with_capacity(payload.len());
        group.bench_with_input(
            BenchmarkId::new("open", format!("{mib}MiB")),
            &mib,
            |b, _| {
                b.iter(|| {
                    opened.clear();
                    envelope::open_stream::<Fame>(&key, b"", &sealed[..], &mut opened).unwrap()
                })
            },
        );
    }
    group.finish();
}

criterion_group!(benches, schemes, envelope_throughput);
criterion_main!(benches);
