//! criterion benches of the searchable index: SSE build throughput, SSE search latency at
//! 10^4 … 10^6 entries (10^7 with `MEDSEAL_BENCH_1E7=1`: building it takes a while and
//! ~3 GB of memory), ABKS index/trapdoor/test costs.
//!
//! Workload: keywords drawn from the ICD-10-CM code list by a Zipf law (s = 1); the
//! searched keyword is the one whose posting list is closest to 100 entries.
//!
//! `cargo bench --bench index` (all), or e.g. `cargo bench --bench index -- sse/search`.
#![allow(clippy::unwrap_used, missing_docs)]

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use medseal_abe::{AttributeSet, Policy};
use medseal_index::abks::Abks;
use medseal_index::dictionary::{Zipf, icd10cm};
use medseal_index::sse::{IndexHost, KeywordKey, OwnerPartition, Partition};
use medseal_index::{Keyword, RecordRef};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use std::hint::black_box;

fn keywords() -> Vec<Keyword> {
    icd10cm()
        .unwrap()
        .iter()
        .map(|c| Keyword::icd10(&c.code).unwrap())
        .collect()
}

fn record(i: u64) -> RecordRef {
    let mut b = [0u8; 32];
    b[..8].copy_from_slice(&(i + 1).to_be_bytes());
    RecordRef::new(b).unwrap()
}

fn owner(seed: u64) -> OwnerPartition {
    let partition = Partition::new(b"bench", "role:doctor".parse().unwrap(), 0).unwrap();
    OwnerPartition::create(partition, &mut ChaCha20Rng::seed_from_u64(seed))
}

fn pairs<'a>(
    kws: &'a [Keyword],
    zipf: &Zipf,
    rng: &mut ChaCha20Rng,
    range: std::ops::Range<u64>,
) -> Vec<(&'a Keyword, RecordRef)> {
    // Entry i belongs to record i / 5; a record's keywords are distinct draws.
    let mut out: Vec<(&Keyword, RecordRef)> = Vec::new();
    for i in range {
        let r = record(i / 5);
        let start = out.len().saturating_sub((i % 5) as usize);
        let k = loop {
            let k = &kws[zipf.sample(rng)];
            if !out[start..].iter().any(|(kw, _)| *kw == k) {
                break k;
            }
        };
        out.push((k, r));
    }
    out
}

fn sse_build(c: &mut Criterion) {
    let kws = keywords();
    let zipf = Zipf::new(kws.len(), 1.0);
    let mut rng = ChaCha20Rng::seed_from_u64(1);
    let n = 100_000u64;
    let batch = pairs(&kws, &zipf, &mut rng, 0..n);
    let mut group = c.benchmark_group("sse/build");
    group.sample_size(10);
    group.throughput(Throughput::Elements(n));
    group.bench_function("batch+root/1e5", |b| {
        b.iter(|| {
            // A fresh owner each time so counters start at 0 (state does not grow).
            let mut o = owner(2);
            let shard = o.batch(batch.iter().cloned()).unwrap();
            black_box(shard.root())
        })
    });
    group.finish();
}

fn sse_search(c: &mut Criterion) {
    let kws = keywords();
    let zipf = Zipf::new(kws.len(), 1.0);
    let mut sizes = vec![10_000u64, 100_000, 1_000_000];
    if std::env::var_os("MEDSEAL_BENCH_1E7").is_some() {
        sizes.push(10_000_000);
    }
    let mut group = c.benchmark_group("sse/search");
    for n in sizes {
        let mut rng = ChaCha20Rng::seed_from_u64(n);
        let mut o = owner(n);
        let mut host = IndexHost::new();
        let mut done = 0;
        while done < n {
            let len = 1_000_000.min(n - done);
            let batch = pairs(&kws, &zipf, &mut rng, done..done + len);
            host.insert_shard(o.batch(batch).unwrap()).unwrap();
            done += len;
        }
        let (kw, count) = kws
            .iter()
            .map(|k| (k, o.count(k)))
            .min_by_key(|(_, c)| c.abs_diff(100))
            .unwrap();
        let token = KeywordKey::derive(o.id(), o.key(), kw).token();
        let mut out = Vec::with_capacity(256);
        group.throughput(Throughput::Elements(count));
        group.bench_with_input(BenchmarkId::new("~100 results", n), &n, |b, _| {
            b.iter(|| {
                out.clear();
                host.search_into(black_box(&token), &mut out)
            })
        });
    }
    group.finish();
}

fn abks(c: &mut Criterion) {
    let mut rng = ChaCha20Rng::seed_from_u64(3);
    let (pk, msk) = Abks::setup(&mut rng);
    let attrs = AttributeSet::parse(["role:doctor", "dept:cardiology", "site:a"]).unwrap();
    let key = Abks::keygen(&msk, &attrs, &mut rng);
    let kw = Keyword::icd10("I10").unwrap();
    let mut group = c.benchmark_group("abks");
    group.sample_size(20);
    for text in ["role:doctor", "role:doctor and dept:cardiology and site:a"] {
        let policy: Policy = text.parse().unwrap();
        let leaves = policy.leaf_count();
        group.bench_with_input(BenchmarkId::new("index", leaves), &leaves, |b, _| {
            b.iter(|| Abks::index(&pk, black_box(&policy), &kw, &mut rng).unwrap())
        });
        let entry = Abks::index(&pk, &policy, &kw, &mut rng).unwrap();
        let trapdoor = Abks::trapdoor(&pk, &key, &kw, &mut rng).unwrap();
        group.bench_with_input(BenchmarkId::new("test", leaves), &leaves, |b, _| {
            b.iter(|| Abks::test(black_box(&entry), black_box(&trapdoor)))
        });
    }
    group.bench_function("trapdoor/3 attributes", |b| {
        b.iter(|| Abks::trapdoor(&pk, black_box(&key), &kw, &mut rng).unwrap())
    });
    group.finish();
}

criterion_group!(benches, sse_build, sse_search, abks);
criterion_main!(benches);
