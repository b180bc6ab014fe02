//! medseal's SSE index next to Cosmian Findex 8.0.2 (in-memory backend) on the index
//! report's workload, in one process: insert throughput, search latency for queries of
//! about 1, 100 and 1,000 results, and medseal's verified search (proof bytes and verify
//! time), which Findex does not offer.
//!
//! ```text
//! cargo run --release --manifest-path comparisons/Cargo.toml --bin findex_report -- [--quick | --smoke] [--json]
//! ```
//!
//! Workload: entries `(keyword, record)`, keywords drawn from ICD-10-CM by a Zipf law
//! (s = 1), five distinct keywords per record (the index report's generator). Sizes 10^4,
//! 10^5, 10^6 entries (`--quick`: 10^4, 10^5; `--smoke`: 10^3). One thread throughout.
//!
//! * insert, medseal: `OwnerPartition::batch` (grouping, PRF, sort, Merkle root) and
//!   `IndexHost::insert_shard`. Findex: grouping the pairs into keyword → record set,
//!   then `Findex::insert` per keyword, sequentially, into `InMemory`. Both timed from
//!   the same list of pairs to a searchable index.
//! * search, medseal: derive the keyword key, token, `IndexHost::search`, decrypt.
//!   Findex: `Findex::search` (address permutation, two reads of the in-memory store,
//!   decryption and decoding). Medians over interleaved rounds.
//! * verified, medseal: derive, `IndexHost::prove`, `KeywordKey::verify` against the
//!   shard roots (read once, as a client reads them from the chain); `verify` alone is
//!   the client's share.

use cosmian_crypto_core::{CsRng, Secret};
use cosmian_findex::{Findex, IndexADT, MemoryEncryptionLayer, generic_decode, generic_encode};
use cosmian_sse_memories::{ADDRESS_LENGTH, Address, InMemory};
use medseal_comparisons::{Args, Mode, Workload, interleaved, load_average, median};
use medseal_index::sse::{IndexHost, KeywordKey, OwnerPartition, Partition, ShardRoot};
use medseal_index::{Keyword, RecordRef};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use std::collections::{HashMap, HashSet};
use std::error::Error;
use std::hint::black_box;
use std::pin::pin;
use std::task::{Context, Poll, Waker};
use std::time::Instant;

type Result<T> = std::result::Result<T, Box<dyn Error>>;

/// Findex memory word: 129 bytes, the word of Findex's own benchmarks. Values (32-byte
/// record references) are packed with Findex's `generic_encode` (2 bytes of metadata
/// each), so a word holds 3.8 values.
const WORD_LENGTH: usize = 129;
type Value = [u8; 32];
type Memory =
    MemoryEncryptionLayer<WORD_LENGTH, InMemory<Address<ADDRESS_LENGTH>, [u8; WORD_LENGTH]>>;
type FindexIndex = Findex<WORD_LENGTH, Value, String, Memory>;

/// Target result counts of the queries.
const TARGETS: [u64; 3] = [1, 100, 1000];

/// Runs a future of the in-memory backend to completion. `InMemory` never waits (its
/// lock is a std mutex), so the first poll completes; the loop only guards against a
/// future backend that yields.
fn ready<F: Future>(f: F) -> F::Output {
    let mut f = pin!(f);
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(out) = f.as_mut().poll(&mut cx) {
            return out;
        }
        std::thread::yield_now();
    }
}

fn check(ok: bool, what: impl FnOnce() -> String) -> Result<()> {
    if ok {
        Ok(())
    } else {
        Err(format!("correctness check failed: {}", what()).into())
    }
}

/// One query of a size row.
struct Query {
    target: u64,
    /// The chosen keyword's result count; `None` if no keyword comes within 90% of the
    /// target (e.g. no 1,000-result keyword among 10^4 entries).
    results: Option<u64>,
    /// The largest result count of any keyword at this size.
    most: u64,
    medseal_us: f64,
    findex_us: f64,
    verified_us: f64,
    verify_us: f64,
    proof_bytes: usize,
}

struct SizeRow {
    entries: u64,
    medseal_insert_per_s: f64,
    findex_insert_per_s: f64,
    queries: Vec<Query>,
}

fn medseal_insert(
    pairs: &[(&Keyword, RecordRef)],
    partition: &Partition,
    seed: u64,
) -> Result<(OwnerPartition, IndexHost)> {
    let mut owner =
        OwnerPartition::create(partition.clone(), &mut ChaCha20Rng::seed_from_u64(seed));
    let mut host = IndexHost::new();
    let shard = owner.batch(pairs.iter().copied())?;
    black_box(shard.root());
    host.insert_shard(shard)?;
    Ok((owner, host))
}

fn findex_insert(pairs: &[(&Keyword, RecordRef)], seed: u64) -> Result<FindexIndex> {
    let key = Secret::random(&mut CsRng::seed_from_u64(seed));
    let findex = Findex::new(
        MemoryEncryptionLayer::new(&key, InMemory::default()),
        generic_encode::<WORD_LENGTH, Value>,
        generic_decode::<WORD_LENGTH, std::array::TryFromSliceError, Value>,
    );
    let mut by_keyword: HashMap<&str, HashSet<Value>> = HashMap::new();
    for (k, r) in pairs {
        by_keyword
            .entry(k.as_str())
            .or_default()
            .insert(*r.as_bytes());
    }
    for (k, values) in by_keyword {
        ready(findex.insert(k, values))?;
    }
    Ok(findex)
}

/// Both libraries' indexes of one size, for the correctness checks.
struct Indexes<'a> {
    owner: &'a OwnerPartition,
    host: &'a IndexHost,
    roots: &'a [ShardRoot],
    findex: &'a FindexIndex,
}

impl Indexes<'_> {
    /// Checks that medseal's search, medseal's verified search and Findex's search of `k`
    /// all return exactly `expected`.
    fn check(&self, k: &Keyword, expected: HashSet<RecordRef>) -> Result<()> {
        let kk = KeywordKey::derive(self.owner.id(), self.owner.key(), k);
        let got: HashSet<RecordRef> = kk
            .decrypt(&self.host.search(&kk.token()))
            .into_iter()
            .collect();
        check(got == expected, || {
            format!("medseal search of {}", k.as_str())
        })?;
        let verified: HashSet<RecordRef> = kk
            .verify(self.roots, &self.host.prove(&kk.token()))?
            .into_iter()
            .collect();
        check(verified == expected, || {
            format!("medseal verified search of {}", k.as_str())
        })?;
        let found = ready(self.findex.search(&k.as_str()))?;
        let expected: HashSet<Value> = expected.iter().map(|r| *r.as_bytes()).collect();
        check(found == expected, || {
            format!("Findex search of {}", k.as_str())
        })
    }
}

fn run_size(w: &Workload, n: u64, mode: Mode) -> Result<SizeRow> {
    let mut wrng = ChaCha20Rng::seed_from_u64(n ^ 0x5eed);
    let pairs = w.pairs(&mut wrng, 0..n);
    // Ground truth, and each keyword's result count.
    let mut truth: HashMap<&Keyword, HashSet<RecordRef>> = HashMap::new();
    for (k, r) in &pairs {
        truth.entry(*k).or_default().insert(*r);
    }
    let partition = Partition::new(b"comparison", "role:doctor".parse()?, 0)?;

    // Insert: rounds interleaved (medseal, Findex), fresh indexes each round.
    let insert_rounds = match (mode, n) {
        (Mode::Smoke, _) => 2,
        (_, ..=10_000) => 9,
        (_, ..=100_000) => 5,
        _ => 3,
    };
    let (mut ours, mut theirs) = (Vec::new(), Vec::new());
    let mut built = None;
    for round in 0..insert_rounds {
        let t = Instant::now();
        let (owner, host) = medseal_insert(&pairs, &partition, n)?;
        ours.push(n as f64 / t.elapsed().as_secs_f64());
        let t = Instant::now();
        let findex = findex_insert(&pairs, n + round)?;
        theirs.push(n as f64 / t.elapsed().as_secs_f64());
        built = Some((owner, host, findex));
    }
    let (owner, host, findex) = built.ok_or("no insert round")?;
    check(host.entry_count(owner.id()) as u64 == n, || {
        "medseal entry count".into()
    })?;

    // Correctness: every keyword in smoke mode, the queried ones otherwise (below).
    let roots = host.roots(owner.id());
    let indexes = Indexes {
        owner: &owner,
        host: &host,
        roots: &roots,
        findex: &findex,
    };
    let check_keyword = |k: &Keyword| indexes.check(k, truth.get(k).cloned().unwrap_or_default());
    if mode == Mode::Smoke {
        for k in truth.keys() {
            check_keyword(k)?;
        }
    }
    check_keyword(&Keyword::term("absent")?)?;

    let rounds = match mode {
        Mode::Full => 31,
        Mode::Quick => 15,
        Mode::Smoke => 3,
    };
    // Keywords in popularity order, so ties go to the more popular one.
    let counts: Vec<(&Keyword, u64)> = w
        .keywords
        .iter()
        .filter_map(|k| truth.get(k).map(|s| (k, s.len() as u64)))
        .collect();
    let most = counts.iter().map(|(_, c)| *c).max().unwrap_or(0);
    let mut queries = Vec::new();
    for target in TARGETS {
        let Some(&(kw, count)) = counts.iter().min_by_key(|(_, c)| c.abs_diff(target)) else {
            continue;
        };
        if (count as f64) < 0.9 * target as f64 {
            queries.push(Query {
                target,
                results: None,
                most,
                medseal_us: f64::NAN,
                findex_us: f64::NAN,
                verified_us: f64::NAN,
                verify_us: f64::NAN,
                proof_bytes: 0,
            });
            continue;
        }
        check_keyword(kw)?;
        let text = kw.as_str();
        let token = KeywordKey::derive(owner.id(), owner.key(), kw).token();
        let answer = host.prove(&token);
        let proof_bytes = answer.proof_bytes();
        let kk = KeywordKey::derive(owner.id(), owner.key(), kw);
        let m = interleaved(
            rounds,
            &mut [
                &mut || {
                    let kk = KeywordKey::derive(owner.id(), owner.key(), kw);
                    black_box(kk.decrypt(&host.search(&kk.token())));
                },
                &mut || {
                    black_box(ready(findex.search(&text)).ok());
                },
                &mut || {
                    let kk = KeywordKey::derive(owner.id(), owner.key(), kw);
                    black_box(kk.verify(&roots, &host.prove(&kk.token())).ok());
                },
                &mut || {
                    black_box(kk.verify(&roots, &answer).ok());
                },
            ],
        );
        queries.push(Query {
            target,
            results: Some(count),
            most,
            medseal_us: m[0] * 1e3,
            findex_us: m[1] * 1e3,
            verified_us: m[2] * 1e3,
            verify_us: m[3] * 1e3,
            proof_bytes,
        });
    }
    Ok(SizeRow {
        entries: n,
        medseal_insert_per_s: median(ours),
        findex_insert_per_s: median(theirs),
        queries,
    })
}

fn main() -> Result<()> {
    let args = Args::from_env("findex_report");
    let sizes: &[u64] = match args.mode {
        Mode::Full => &[10_000, 100_000, 1_000_000],
        Mode::Quick => &[10_000, 100_000],
        Mode::Smoke => &[1_000],
    };
    let started = Instant::now();
    let load_before = load_average();
    let w = medseal_comparisons::icd10_workload()?;
    let mut rows = Vec::new();
    for &n in sizes {
        eprintln!("{n} entries ...");
        rows.push(run_size(&w, n, args.mode)?);
    }
    let load_after = load_average();

    println!(
        "medseal SSE vs Cosmian Findex 8.0.2 (InMemory backend, {WORD_LENGTH}-byte words) ({} mode): {} ICD-10-CM keywords, Zipf s=1, 5 keywords/record, one thread",
        args.mode.name(),
        w.keywords.len()
    );
    println!();
    println!(
        "{:>9} {:>16} {:>16} {:>14}",
        "entries", "medseal ins/s", "Findex ins/s", "medseal/Findex"
    );
    for r in &rows {
        println!(
            "{:>9} {:>16.0} {:>16.0} {:>13.1}x",
            r.entries,
            r.medseal_insert_per_s,
            r.findex_insert_per_s,
            r.medseal_insert_per_s / r.findex_insert_per_s
        );
    }
    println!();
    println!(
        "{:>9} {:>6} {:>7} {:>11} {:>11} {:>13} {:>13} {:>10} {:>12}",
        "entries",
        "target",
        "results",
        "medseal µs",
        "Findex µs",
        "Findex/medsl",
        "verified µs",
        "verify µs",
        "proof bytes"
    );
    for r in &rows {
        for q in &r.queries {
            match q.results {
                Some(c) => println!(
                    "{:>9} {:>6} {:>7} {:>11.2} {:>11.2} {:>12.1}x {:>13.2} {:>10.2} {:>12}",
                    r.entries,
                    q.target,
                    c,
                    q.medseal_us,
                    q.findex_us,
                    q.findex_us / q.medseal_us,
                    q.verified_us,
                    q.verify_us,
                    q.proof_bytes
                ),
                None => println!(
                    "{:>9} {:>6} {:>7}  (no keyword has {}+ results: the most is {})",
                    r.entries,
                    q.target,
                    "n/a",
                    (q.target * 9).div_ceil(10),
                    q.most
                ),
            }
        }
    }
    println!();
    println!("medseal proof bytes per query (Findex publishes no proofs):");
    println!("{:>9} {:>14} {:>16}", "entries", "1 result", "~100 results");
    for r in &rows {
        let proof = |t: u64| {
            r.queries
                .iter()
                .find(|q| q.target == t && q.results.is_some())
                .map_or_else(
                    || "n/a".to_string(),
                    |q| format!("{} ({})", q.proof_bytes, q.results.unwrap_or(0)),
                )
        };
        println!("{:>9} {:>14} {:>16}", r.entries, proof(1), proof(100));
    }
    println!(
        "load average {} before, {} after; total {:.1} s",
        fmt_load(load_before),
        fmt_load(load_after),
        started.elapsed().as_secs_f64()
    );

    if args.json {
        let num = |x: f64| {
            if x.is_finite() {
                serde_json::json!(x)
            } else {
                serde_json::Value::Null
            }
        };
        let obj = serde_json::json!({
            "findex_version": "8.0.2",
            "findex_word_bytes": WORD_LENGTH,
            "mode": args.mode.name(),
            "load_average": [load_before, load_after],
            "rows": rows.iter().map(|r| serde_json::json!({
                "entries": r.entries,
                "medseal_insert_entries_per_s": r.medseal_insert_per_s,
                "findex_insert_entries_per_s": r.findex_insert_per_s,
                "queries": r.queries.iter().map(|q| serde_json::json!({
                    "target": q.target,
                    "results": q.results,
                    "most_results_at_size": q.most,
                    "medseal_us": num(q.medseal_us),
                    "findex_us": num(q.findex_us),
                    "medseal_verified_us": num(q.verified_us),
                    "medseal_verify_us": num(q.verify_us),
                    "proof_bytes": q.results.map(|_| q.proof_bytes),
                })).collect::<Vec<_>>(),
            })).collect::<Vec<_>>(),
        });
        println!("{obj}");
    }
    Ok(())
}

fn fmt_load(l: Option<f64>) -> String {
    l.map_or_else(|| "n/a".into(), |l| format!("{l:.2}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The checks pass on the true posting lists and fail on any other set (here: another
    /// keyword's, and the true one minus a record).
    #[test]
    fn checks_catch_wrong_results() {
        let w = medseal_comparisons::icd10_workload().unwrap();
        let pairs = w.pairs(&mut ChaCha20Rng::seed_from_u64(3), 0..2_000);
        let partition = Partition::new(b"test", "role:doctor".parse().unwrap(), 0).unwrap();
        let (owner, host) = medseal_insert(&pairs, &partition, 1).unwrap();
        let findex = findex_insert(&pairs, 1).unwrap();
        let roots = host.roots(owner.id());
        let indexes = Indexes {
            owner: &owner,
            host: &host,
            roots: &roots,
            findex: &findex,
        };
        let truth = |k: &Keyword| -> HashSet<RecordRef> {
            pairs
                .iter()
                .filter(|(kw, _)| *kw == k)
                .map(|(_, r)| *r)
                .collect()
        };
        let (a, b) = (&w.keywords[0], &w.keywords[1]);
        assert!(truth(a).len() > 10 && truth(b).len() > 10);
        indexes.check(a, truth(a)).unwrap();
        indexes.check(b, truth(b)).unwrap();
        assert!(indexes.check(a, truth(b)).is_err());
        let mut fewer = truth(a);
        let one = *fewer.iter().next().unwrap();
        fewer.remove(&one);
        assert!(indexes.check(a, fewer).is_err());
        indexes
            .check(&Keyword::term("absent").unwrap(), HashSet::new())
            .unwrap();
    }
}
