//! Searchable-index report: SSE (the default) build and search costs at growing sizes,
//! the ABKS baseline's per-record costs, and their ratio, in one process.
//!
//! ```text
//! cargo run --release --example index_report -- [--quick] [--json]
//! ```
//!
//! Workload: index entries `(keyword, record)` with keywords drawn from the ICD-10-CM
//! code list (95,622 codes) by a Zipf law (s = 1), five keywords per record, in batches
//! (shards) of at most 10^6 entries. Sizes 10^4 … 10^7 entries (`--quick`: up to 10^6).
//! Everything runs on one thread except where a row says "rayon".
//!
//! * `build`: the owner turning pairs into shards (PRF, sort, Merkle root).
//! * `search`: the host answering a token (PRF + table probe per result, one miss);
//!   per-result cost over a Zipf query mix (total time / total results, median of
//!   rounds), and the query whose result count is closest to 100.
//! * proofs: the bytes a host sends with a 1-hit and a ~100-hit answer (membership proofs
//!   of the results, absence proofs in every shard: `VerifiableAnswer::proof_bytes`), and
//!   `prove` + `verify` of a 1-hit answer.
//! * ABKS: one record = one index entry (a single keyword per record: the baseline's
//!   cheapest case). The scan of 10^5 records is timed on a sample of entries and scaled
//!   linearly (the scan is exactly linear: one pairing product per entry).
//!
//! With `--json` the last line is a JSON object (see `crates/index/BENCHMARKS.md`).
#![allow(clippy::unwrap_used, clippy::print_stdout, missing_docs)]

use medseal_abe::{AttributeSet, Policy};
use medseal_index::Keyword;
use medseal_index::abks::{Abks, AbksIndex};
use medseal_index::dictionary::Workload;
use medseal_index::sse::{EncryptedRef, IndexHost, KeywordKey, OwnerPartition, Partition};
use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};
use std::hint::black_box;
use std::time::Instant;
use support::{median, median_ms, time_ms};

#[path = "support/mod.rs"]
mod support;

const KEYWORDS_PER_RECORD: u64 = Workload::KEYWORDS_PER_RECORD;
const BATCH: u64 = 1_000_000;

struct SizeRow {
    entries: u64,
    shards: usize,
    build_entries_per_s: f64,
    host_insert_entries_per_s: f64,
    us_per_result: f64,
    query_results: usize,
    us_per_query: f64,
    us_per_query_end_to_end: f64,
    us_per_query_verified: f64,
    us_empty_query: f64,
    /// Proof bytes a host sends with a 1-hit answer (median over keywords with one entry).
    proof_bytes_1: f64,
    /// The same for the near-100 keywords (`query_results` on average).
    proof_bytes_100: f64,
    /// `prove` + `verify` of a 1-hit answer.
    us_verified_1: f64,
}

fn run_size(w: &Workload, n: u64, rounds: usize) -> (SizeRow, IndexHost, OwnerPartition) {
    let mut rng = ChaCha20Rng::seed_from_u64(n);
    let partition = Partition::new(b"report", "role:doctor".parse().unwrap(), 0).unwrap();
    // Every round's owner gets the same key: the next 32 bytes of `rng` (skipped here, so
    // the query mix below is drawn from the same stream as before).
    let key_rng = rng.clone();
    rng.fill_bytes(&mut [0u8; 32]);
    // The build is repeated on small sizes (same workload, fresh owner) and timed per
    // batch; the median batch rate is reported.
    let build_rounds = match n {
        ..=100_000 => 7,
        100_001..=1_000_000 => 3,
        _ => 1,
    };
    let mut rates = Vec::new();
    let mut built = None;
    for _ in 0..build_rounds {
        let mut wrng = ChaCha20Rng::seed_from_u64(n ^ 0x5eed);
        let mut owner = OwnerPartition::create(partition.clone(), &mut key_rng.clone());
        let mut shards = Vec::new();
        let mut done = 0u64;
        while done < n {
            let len = BATCH.min(n - done);
            let pairs = w.pairs(&mut wrng, done..done + len);
            let t = Instant::now();
            let shard = owner.batch(pairs).unwrap();
            black_box(shard.root());
            rates.push(len as f64 / t.elapsed().as_secs_f64());
            shards.push(shard);
            done += len;
        }
        built = Some((owner, shards));
    }
    let (owner, built_shards) = built.unwrap();
    let shards = built_shards.len();
    let mut host = IndexHost::new();
    let t = Instant::now();
    for shard in built_shards {
        host.insert_shard(shard).unwrap();
    }
    let insert_s = t.elapsed().as_secs_f64();
    let entries = host.entry_count(owner.id()) as u64;

    // Zipf query mix: 200 distinct keywords drawn by popularity.
    let mut seen = std::collections::HashSet::new();
    let mix: Vec<usize> = (0..100_000)
        .map(|_| w.zipf.sample(&mut rng))
        .filter(|k| seen.insert(*k))
        .take(200)
        .collect();
    let tokens: Vec<_> = mix
        .iter()
        .map(|&k| KeywordKey::derive(owner.id(), owner.key(), &w.keywords[k]).token())
        .collect();
    let mut out: Vec<EncryptedRef> = Vec::new();
    let per_result: Vec<f64> = (0..rounds)
        .map(|_| {
            let (mut total, mut results) = (0.0, 0usize);
            for t in &tokens {
                out.clear();
                let start = Instant::now();
                results += host.search_into(t, &mut out);
                total += start.elapsed().as_secs_f64();
            }
            total * 1e6 / results.max(1) as f64
        })
        .collect();

    // "100-result queries": up to 64 keywords whose posting lists are closest to 100.
    // Each timed query is preceded by three queries of the Zipf mix, so its entries are
    // not left in cache by a previous repetition (a busy server's state); the median over
    // all (keyword, round) samples is reported, normalised to exactly 100 results.
    let mut near: Vec<(&Keyword, u64)> = w.keywords.iter().map(|k| (k, owner.count(k))).collect();
    near.sort_by_key(|(_, c)| c.abs_diff(100));
    near.truncate(64);
    let count = near.iter().map(|(_, c)| *c).sum::<u64>() / near.len() as u64;
    let keys: Vec<KeywordKey> = near
        .iter()
        .map(|(k, _)| KeywordKey::derive(owner.id(), owner.key(), k))
        .collect();
    // 1-hit queries: up to 64 keywords with exactly one entry (the Zipf tail has many).
    let singles: Vec<KeywordKey> = w
        .keywords
        .iter()
        .filter(|k| owner.count(k) == 1)
        .take(64)
        .map(|k| KeywordKey::derive(owner.id(), owner.key(), k))
        .collect();
    let roots = host.roots(owner.id());
    let proof_bytes = |keys: &[KeywordKey]| {
        median(
            keys.iter()
                .map(|kk| host.prove(&kk.token()).proof_bytes() as f64)
                .collect(),
        )
    };
    let (proof_bytes_1, proof_bytes_100) = (proof_bytes(&singles), proof_bytes(&keys));
    let absent =
        KeywordKey::derive(owner.id(), owner.key(), &Keyword::term("absent").unwrap()).token();
    let (mut query, mut end_to_end, mut verified, mut empty, mut verified_1) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut flush = 0usize;
    let mut pollute = |out: &mut Vec<EncryptedRef>| {
        for _ in 0..3 {
            out.clear();
            flush = (flush + 1) % tokens.len();
            black_box(host.search_into(&tokens[flush], out));
        }
    };
    for _ in 0..rounds {
        for ((kw, c), kk) in near.iter().zip(&keys) {
            let scale = 100.0 / *c as f64;
            let token = kk.token();
            // Times in ms, pushed as µs.
            pollute(&mut out);
            out.clear();
            query.push(time_ms(|| host.search_into(&token, &mut out)) * 1e3 * scale);
            pollute(&mut out);
            let e2e = time_ms(|| {
                let kk2 = KeywordKey::derive(owner.id(), owner.key(), kw);
                kk2.decrypt(&host.search(&kk2.token()))
            });
            end_to_end.push(e2e * 1e3 * scale);
            pollute(&mut out);
            let proved = time_ms(|| kk.verify(&roots, &host.prove(&token)).unwrap());
            verified.push(proved * 1e3 * scale);
            pollute(&mut out);
            out.clear();
            empty.push(time_ms(|| host.search_into(&absent, &mut out)) * 1e3);
        }
        for kk in &singles {
            pollute(&mut out);
            let token = kk.token();
            verified_1.push(time_ms(|| kk.verify(&roots, &host.prove(&token)).unwrap()) * 1e3);
        }
    }
    let row = SizeRow {
        entries,
        shards,
        build_entries_per_s: median(rates),
        host_insert_entries_per_s: entries as f64 / insert_s,
        us_per_result: median(per_result),
        query_results: count as usize, // mean of the near-100 keywords; times are scaled to 100
        us_per_query: median(query),
        us_per_query_end_to_end: median(end_to_end),
        us_per_query_verified: median(verified),
        us_empty_query: median(empty),
        proof_bytes_1,
        proof_bytes_100,
        us_verified_1: median(verified_1),
    };
    (row, host, owner)
}

struct AbksRow {
    setup_ms: f64,
    keygen_ms: f64,
    index_ms: f64,
    trapdoor_ms: f64,
    test_ms: f64,
    scan_sample: usize,
    scan_ms_per_record_rayon: f64,
    scan_ms_per_record_sequential: f64,
}

fn run_abks(w: &Workload, samples: usize) -> AbksRow {
    let mut rng = ChaCha20Rng::seed_from_u64(42);
    let setup_ms = median_ms(samples, || Abks::setup(&mut ChaCha20Rng::seed_from_u64(1)));
    let (pk, msk) = Abks::setup(&mut rng);
    let attrs = AttributeSet::parse([
        "role:doctor",
        "dept:cardiology",
        "site:a",
        "site:b",
        "level:3",
    ])
    .unwrap();
    let keygen_ms = median_ms(samples, || Abks::keygen(&msk, &attrs, &mut rng));
    let key = Abks::keygen(&msk, &attrs, &mut rng);
    let policy: Policy = "role:doctor".parse().unwrap();
    let kw = &w.keywords[0];
    let index_ms = median_ms(samples, || Abks::index(&pk, &policy, kw, &mut rng).unwrap());
    let trapdoor_ms = median_ms(samples, || Abks::trapdoor(&pk, &key, kw, &mut rng).unwrap());
    let entry = Abks::index(&pk, &policy, kw, &mut rng).unwrap();
    let trapdoor = Abks::trapdoor(&pk, &key, kw, &mut rng).unwrap();
    assert!(Abks::test(&entry, &trapdoor));
    let test_ms = median_ms(samples * 3, || Abks::test(black_box(&entry), &trapdoor));
    // A parallel scan over a sample of records (one Zipf keyword each).
    let scan_sample = samples * 8;
    let mut index = AbksIndex::new();
    for i in 0..scan_sample as u64 {
        let k = &w.keywords[w.zipf.sample(&mut rng)];
        index.push(
            Workload::record(i),
            Abks::index(&pk, &policy, k, &mut rng).unwrap(),
        );
    }
    let scan = median_ms(3, || index.search(&trapdoor));
    let scan_sequential = median_ms(3, || index.search_sequential(&trapdoor));
    AbksRow {
        setup_ms,
        keygen_ms,
        index_ms,
        trapdoor_ms,
        test_ms,
        scan_sample,
        scan_ms_per_record_rayon: scan / scan_sample as f64,
        scan_ms_per_record_sequential: scan_sequential / scan_sample as f64,
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let quick = args.iter().any(|a| a == "--quick");
    let json = args.iter().any(|a| a == "--json");
    let sizes: &[u64] = if quick {
        &[10_000, 100_000, 1_000_000]
    } else {
        &[10_000, 100_000, 1_000_000, 10_000_000]
    };
    let started = Instant::now();
    // Popularity ranks in a random order of the codes.
    let w = Workload::icd10(&mut ChaCha20Rng::seed_from_u64(7)).unwrap();
    println!(
        "medseal-index report ({} mode): {} ICD-10-CM keywords, Zipf s=1, {} keywords/record, one thread unless noted",
        if quick { "quick" } else { "full" },
        w.keywords.len(),
        KEYWORDS_PER_RECORD
    );
    println!();
    println!(
        "{:>10} {:>6} {:>14} {:>14} {:>11} {:>9} {:>11} {:>12} {:>12} {:>11} {:>12} {:>9} {:>11}",
        "entries",
        "shards",
        "build/s",
        "host ins/s",
        "µs/result",
        "results",
        "µs/query",
        "µs/q e2e",
        "µs/q proved",
        "µs/miss",
        "µs 1 proved",
        "proof B 1",
        "proof B 100"
    );
    let mut rows = Vec::new();
    let mut at_1e5 = None;
    for &n in sizes {
        let rounds = if n >= 10_000_000 { 5 } else { 9 };
        let (row, host, owner) = run_size(&w, n, rounds);
        println!(
            "{:>10} {:>6} {:>14.0} {:>14.0} {:>11.3} {:>9} {:>11.2} {:>12.2} {:>12.1} {:>11.3} {:>12.1} {:>9.0} {:>11.0}",
            row.entries,
            row.shards,
            row.build_entries_per_s,
            row.host_insert_entries_per_s,
            row.us_per_result,
            row.query_results,
            row.us_per_query,
            row.us_per_query_end_to_end,
            row.us_per_query_verified,
            row.us_empty_query,
            row.us_verified_1,
            row.proof_bytes_1,
            row.proof_bytes_100
        );
        if n == 100_000 {
            at_1e5 = Some(row.us_per_query);
        }
        drop((host, owner));
        rows.push(row);
    }
    let abks = run_abks(&w, if quick { 9 } else { 21 });
    println!();
    println!("ABKS baseline (VABKS on BLS12-381; policy `role:doctor`, user with 5 attributes):");
    println!(
        "  setup {:.3} ms, keygen {:.3} ms, index entry {:.3} ms, trapdoor {:.3} ms, test {:.3} ms (one core)",
        abks.setup_ms, abks.keygen_ms, abks.index_ms, abks.trapdoor_ms, abks.test_ms
    );
    println!(
        "  scan of {} entries: {:.3} ms/record on one thread, {:.3} ms/record with rayon on {} threads",
        abks.scan_sample,
        abks.scan_ms_per_record_sequential,
        abks.scan_ms_per_record_rayon,
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    let sse_1e5 = at_1e5.unwrap();
    let abks_scan_1e5_ms = abks.test_ms * 100_000.0;
    let speedup = abks_scan_1e5_ms * 1e3 / sse_1e5;
    println!(
        "  scan of 10^5 records (one core): {:.1} s, SCALED LINEARLY from the per-entry test time (not run in full)",
        abks_scan_1e5_ms / 1e3
    );
    println!(
        "  SSE 100-result query at 10^5 entries: {:.2} µs  →  speedup {:.3e}×",
        sse_1e5, speedup
    );
    let last = rows.last().unwrap();
    println!();
    println!("targets at {} entries (one core):", last.entries);
    let verdict = |ok: bool| if ok { "met" } else { "MISSED" };
    println!(
        "  ≤ 1 µs per result: {:.3} µs → {}",
        last.us_per_result,
        verdict(last.us_per_result <= 1.0)
    );
    println!(
        "  ≤ 100 µs per 100-result query: {:.2} µs ({} results) → {}",
        last.us_per_query,
        last.query_results,
        verdict(last.us_per_query <= 100.0)
    );
    let build = rows
        .iter()
        .map(|r| r.build_entries_per_s)
        .fold(f64::INFINITY, f64::min);
    println!(
        "  build ≥ 10^6 entries/s (slowest size): {build:.0} → {}",
        verdict(build >= 1e6)
    );
    println!(
        "  ≥ 10^4× faster than the ABKS scan at 10^5: {speedup:.3e} → {}",
        verdict(speedup >= 1e4)
    );
    println!("total {:.1} s", started.elapsed().as_secs_f64());
    if json {
        let obj = serde_json::json!({
            "sse_build_entries_per_s": build,
            "sse_us_per_result": last.us_per_result,
            "sse_us_per_query": last.us_per_query,
            "sse_query_results": last.query_results,
            "abks_ms_per_record": abks.test_ms,
            "abks_scan_scaled_from_sample": true,
            "speedup_at_1e5": speedup,
            "entries": last.entries,
            "sizes": rows.iter().map(|r| serde_json::json!({
                "entries": r.entries,
                "shards": r.shards,
                "us_per_query_100": r.us_per_query,
                "us_per_query_100_verified": r.us_per_query_verified,
                "us_per_query_1_verified": r.us_verified_1,
                "results_near_100": r.query_results,
                "proof_bytes_1": r.proof_bytes_1,
                "proof_bytes_100": r.proof_bytes_100,
            })).collect::<Vec<_>>(),
        });
        println!("{obj}");
    }
}
