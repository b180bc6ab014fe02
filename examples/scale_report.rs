//! Hospital-scale report: builds an archive decade by decade on the embedded backends
//! (bulk import, then timed single operations at each size) and prints per size: put,
//! `Vault::open`, the first search after the import and puts (the import ends with
//! `Vault::compact_index` and `Vault::refresh_index_cache`, as the CLI's does; the
//! compaction is timed apart from the import rate), a cold search (a new vault on the
//! same directory, opening included),
//! warm verified searches for a 1-hit and a common keyword, get, bulk import rate, gas
//! per record, proof bytes, chain reads per search (view calls and log queries of one
//! warm 1-hit, one warm common and one cold search), live index shards (before the import's compaction → after the
//! single puts), disk bytes per record, peak RSS and the
//! warm 1-hit search side by side with a 10^2-record reference archive (2,001 alternating
//! pairs in this process, ratio of the medians: growth with the machine's drift cancelled
//! out); then the growth ratios from the smallest to the largest size. Then many partitions: 100
//! owners each import 100 records under 3 policies (300 partitions, 10^4 records) and a
//! reader who can open them all searches: first search (opening every capsule), cold
//! (a new vault, caches reused) and warm.
//!
//! `cargo run --release --example scale_report -- [--quick] [--json]` — sizes 10^2, 10^3,
//! 10^4, 10^5 (`--quick`: up to 10^4). Records: one owner (a cardiologist), one policy,
//! a 1 KiB attachment, 5–10 ICD-10-CM codes out of 3,000, a unique `term:case-<i>`
//! keyword (the 1-hit query) and, for the first 1,000 records, `term:cohort` (the common
//! query). `MEDSEAL_SCALE_DIR` sets where the archive is built (default: a temp dir).
#![allow(
    clippy::unwrap_used,
    clippy::print_stderr,
    clippy::print_stdout,
    missing_docs
)]

#[path = "support/gas.rs"]
mod gas;
#[path = "support/mod.rs"]
mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use gas::GasMeter;
use medseal::{
    Attachment, Authority, Config, Keyword, Member, NewRecord, PrivateKeySigner, RecordId, Vault,
};
use rand_chacha::ChaCha20Rng;
use rand_core::{OsRng, RngCore, SeedableRng};
use support::median;

const POLICY: &str = "role:doctor and dept:cardiology";
const COHORT: usize = 1_000;

struct Archive {
    dir: std::path::PathBuf,
    authority: Authority,
    doctor: Member,
    codes: Vec<Keyword>,
    gas: Arc<AtomicU64>,
    /// Chain reads of the metered vaults (view calls and log queries).
    reads: Arc<AtomicU64>,
    records: usize,
}

impl Archive {
    fn record(&self, i: usize) -> NewRecord {
        let mut rng = ChaCha20Rng::seed_from_u64(i as u64);
        let n = 5 + (rng.next_u32() % 6) as usize;
        let mut record = NewRecord::new(format!("case {i}"), POLICY.parse().unwrap())
            .keyword(Keyword::term(&format!("case-{i}")).unwrap())
            .attach(Attachment::bytes(
                "note.txt",
                "text/plain",
                vec![i as u8; 1024],
            ));
        for _ in 0..n {
            let code = &self.codes[(rng.next_u32() as usize) % self.codes.len()];
            record = record.keyword(code.clone());
        }
        if i < COHORT {
            record = record.keyword(Keyword::term("cohort").unwrap());
        }
        record
    }

    /// The vault with gas metering (the one that writes).
    async fn open_metered(&self) -> Vault {
        open_metered(&self.dir, &self.authority, &self.gas, &self.reads).await
    }
}

/// A vault on the embedded backends in `dir` whose ledger adds up gas and counts reads.
async fn open_metered(
    dir: &std::path::Path,
    authority: &Authority,
    gas: &Arc<AtomicU64>,
    reads: &Arc<AtomicU64>,
) -> Vault {
    let (store, ledger) = Config::embedded().open_backends(dir).await.unwrap();
    let meter = Arc::new(GasMeter {
        inner: ledger,
        gas: Arc::clone(gas),
        reads: Arc::clone(reads),
    });
    let mut vault = Vault::with_backends(dir, store, meter).unwrap();
    vault.install_authority(authority.public_key()).unwrap();
    vault
}

/// The chain reads `f` makes through the meter counting into `reads`, and its output.
async fn reads_of<T>(reads: &AtomicU64, f: impl std::future::Future<Output = T>) -> (u64, T) {
    let before = reads.load(Ordering::Relaxed);
    let out = f.await;
    (reads.load(Ordering::Relaxed) - before, out)
}

#[derive(serde::Serialize, Default, Clone)]
struct Row {
    records: usize,
    put_ms: f64,
    open_ms: f64,
    first_search_ms: f64,
    cold_search_ms: f64,
    warm_search_1_hit_ms: f64,
    warm_search_common_ms: f64,
    common_hits: usize,
    get_ms: f64,
    bulk_records_per_s: f64,
    /// `Vault::compact_index` at the end of the import.
    compact_ms: f64,
    /// Live index shards before that compaction.
    shards_before_compaction: usize,
    gas_per_record: f64,
    proof_bytes_1_hit: usize,
    proof_bytes_common: usize,
    /// Chain reads (view calls and log queries) of one warm 1-hit search, one warm common
    /// search and one cold search (a new vault).
    chain_reads_1_hit: u64,
    chain_reads_common: u64,
    chain_reads_cold: u64,
    live_shards: usize,
    disk_bytes_per_record: f64,
    peak_rss_mib: f64,
    /// Warm 1-hit search here over the same on a 10^2-record archive, timed alternately in
    /// this process (`SIDE_BY_SIDE` pairs, ratio of the medians): the growth ratio with
    /// the machine's drift cancelled out.
    side_by_side_1_hit: f64,
}

/// Pairs of alternating 1-hit searches (reference archive, this archive) per size.
const SIDE_BY_SIDE: usize = 2_001;

/// A warm 10^2-record archive that every size is compared with, side by side.
struct Reference {
    vault: Vault,
    records: usize,
}

fn disk_bytes(dir: &std::path::Path) -> u64 {
    let mut total = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            match entry.metadata() {
                Ok(m) if m.is_dir() => stack.push(entry.path()),
                Ok(m) => total += m.len(),
                Err(_) => {}
            }
        }
    }
    total
}

fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(0.0, |kib| kib / 1024.0)
}

async fn timed<T>(f: impl std::future::Future<Output = T>) -> (f64, T) {
    let t = Instant::now();
    let out = f.await;
    (t.elapsed().as_secs_f64() * 1e3, out)
}

async fn measure(archive: &mut Archive, size: usize, reference: &Reference) -> Row {
    let mut row = Row {
        records: size,
        ..Row::default()
    };
    // Bulk import up to `size`.
    let vault = archive.open_metered().await;
    let (gas_before, start, from) = (
        archive.gas.load(Ordering::Relaxed),
        Instant::now(),
        archive.records,
    );
    while archive.records < size {
        let n = (size - archive.records).min(1_000);
        let batch = (archive.records..archive.records + n)
            .map(|i| archive.record(i))
            .collect();
        vault.put_many(&archive.doctor, batch).await.unwrap();
        archive.records += n;
        eprint!(
            "\r  {} / {size} records ({:.0} records/s)   ",
            archive.records,
            (archive.records - from) as f64 / start.elapsed().as_secs_f64()
        );
    }
    eprintln!();
    let added = (archive.records - from).max(1);
    row.bulk_records_per_s = added as f64 / start.elapsed().as_secs_f64();
    // As the CLI import does at its end: one live shard per partition (timed apart from
    // the import rate), then the search cache filled, so the first search fetches no shard.
    let (ms, compaction) =
        timed(vault.compact_index(&archive.doctor, medseal::CompactScope::AllPartitions)).await;
    row.compact_ms = ms;
    row.shards_before_compaction = compaction.unwrap().shards_before;
    vault
        .refresh_index_cache(archive.doctor.address())
        .await
        .unwrap();
    row.gas_per_record = (archive.gas.load(Ordering::Relaxed) - gas_before) as f64 / added as f64;

    // Single puts on top of the archive.
    let mut puts = Vec::new();
    for _ in 0..11 {
        let record = archive.record(archive.records);
        let (ms, put) = timed(vault.put(&archive.doctor, record)).await;
        put.unwrap();
        archive.records += 1;
        puts.push(ms);
    }
    row.put_ms = median(puts);
    // Warm searches (the first search opens the partition key and loads the shards of
    // the single puts).
    let cohort = Keyword::term("cohort").unwrap();
    let (ms, first) = timed(vault.search(&archive.doctor, &cohort)).await;
    row.first_search_ms = ms;
    let first = first.unwrap();
    row.common_hits = first.hits.len();
    row.proof_bytes_common = first.proof_bytes;
    let mut rng = ChaCha20Rng::seed_from_u64(size as u64);
    let mut one = Vec::new();
    for _ in 0..21 {
        let i = (rng.next_u32() as usize) % archive.records;
        let kw = Keyword::term(&format!("case-{i}")).unwrap();
        let (ms, found) = timed(vault.search(&archive.doctor, &kw)).await;
        let found = found.unwrap();
        assert_eq!(found.hits.len(), 1, "case-{i}");
        row.proof_bytes_1_hit = found.proof_bytes;
        one.push(ms);
    }
    row.warm_search_1_hit_ms = median(one);
    let kw = Keyword::term("case-0").unwrap();
    row.chain_reads_1_hit = reads_of(&archive.reads, vault.search(&archive.doctor, &kw))
        .await
        .0;
    row.chain_reads_common = reads_of(&archive.reads, vault.search(&archive.doctor, &cohort))
        .await
        .0;
    let (mut here, mut there) = (Vec::new(), Vec::new());
    for _ in 0..SIDE_BY_SIDE {
        let i = (rng.next_u32() as usize) % reference.records;
        let kw = Keyword::term(&format!("case-{i}")).unwrap();
        let (ms, found) = timed(reference.vault.search(&archive.doctor, &kw)).await;
        assert_eq!(found.unwrap().hits.len(), 1, "reference case-{i}");
        there.push(ms);
        let i = (rng.next_u32() as usize) % archive.records;
        let kw = Keyword::term(&format!("case-{i}")).unwrap();
        let (ms, found) = timed(vault.search(&archive.doctor, &kw)).await;
        assert_eq!(found.unwrap().hits.len(), 1, "case-{i}");
        here.push(ms);
    }
    row.side_by_side_1_hit = median(here) / median(there);
    let mut common = Vec::new();
    for _ in 0..7 {
        let (ms, found) = timed(vault.search(&archive.doctor, &cohort)).await;
        assert_eq!(found.unwrap().hits.len(), row.common_hits);
        common.push(ms);
    }
    row.warm_search_common_ms = median(common);
    let mut gets = Vec::new();
    for _ in 0..11 {
        let id = RecordId(1 + u64::from(rng.next_u32()) % archive.records as u64);
        gets.push(timed(vault.get(&archive.doctor, id)).await.0);
    }
    row.get_ms = median(gets);
    let ledger = Arc::clone(vault.ledger());
    let owner = archive.doctor.address();
    for capsule in ledger.capsules(Some(owner)).await.unwrap() {
        row.live_shards += ledger
            .live_index_anchors(owner, capsule.partition)
            .await
            .unwrap()
            .len();
    }
    // Close the chain and the store completely: a second handle on a journal that is
    // still open in this process would not get its snapshot.
    drop(ledger);
    drop(vault);

    // Open, and a cold search in a new vault, on the same directory.
    let mut opens = Vec::new();
    let mut colds = Vec::new();
    for _ in 0..5 {
        let (ms, vault) = timed(Vault::open_with(&archive.dir, &Config::embedded())).await;
        opens.push(ms);
        drop(vault.unwrap());
        let (ms, hits) = timed(async {
            let vault = Vault::open_with(&archive.dir, &Config::embedded())
                .await
                .unwrap();
            vault
                .search(&archive.doctor, &cohort)
                .await
                .unwrap()
                .hits
                .len()
        })
        .await;
        assert_eq!(hits, row.common_hits);
        colds.push(ms);
    }
    row.open_ms = median(opens);
    row.cold_search_ms = median(colds);
    let vault = archive.open_metered().await;
    let (reads, found) = reads_of(&archive.reads, vault.search(&archive.doctor, &cohort)).await;
    assert_eq!(found.unwrap().hits.len(), row.common_hits);
    row.chain_reads_cold = reads;
    drop(vault);
    row.disk_bytes_per_record = disk_bytes(&archive.dir) as f64 / archive.records as f64;
    row.peak_rss_mib = peak_rss_mib();
    row
}

const OWNERS: usize = 100;
const PER_OWNER: usize = 100;
const POLICIES: [&str; 3] = [
    "role:doctor and dept:cardiology",
    "role:doctor",
    "role:doctor or role:nurse",
];

/// Many partitions: `OWNERS` doctors each import `PER_OWNER` records under three
/// policies (3 · `OWNERS` partitions); a cardiologist, who can open all of them, searches.
#[derive(serde::Serialize, Default)]
struct Partitions {
    partitions: usize,
    records: usize,
    bulk_records_per_s: f64,
    first_search_ms: f64,
    cold_search_ms: f64,
    warm_search_common_ms: f64,
    common_hits: usize,
    warm_search_1_hit_ms: f64,
    /// Chain reads of one warm 1-hit search and of one cold search.
    chain_reads_1_hit: u64,
    chain_reads_cold: u64,
}

async fn measure_partitions(
    dir: &std::path::Path,
    authority: &Authority,
    codes: &[Keyword],
) -> Partitions {
    let (gas, reads) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let open = || open_metered(dir, authority, &gas, &reads);
    let issue = |name: String| {
        authority
            .issue(
                &name,
                ["role:doctor", "dept:cardiology"],
                medseal::Validity::months_from_now(12),
                PrivateKeySigner::random(),
                &mut OsRng,
            )
            .unwrap()
    };
    let vault = open().await;
    let start = Instant::now();
    for o in 0..OWNERS {
        let owner = issue(format!("dr. {o}"));
        let records = (0..PER_OWNER)
            .map(|j| {
                let i = o * PER_OWNER + j;
                let mut rng = ChaCha20Rng::seed_from_u64(i as u64);
                let mut record =
                    NewRecord::new(format!("case {i}"), POLICIES[j % 3].parse().unwrap())
                        .keyword(Keyword::term(&format!("case-{i}")).unwrap())
                        .attach(Attachment::bytes(
                            "note.txt",
                            "text/plain",
                            vec![i as u8; 1024],
                        ));
                for _ in 0..5 {
                    record = record.keyword(codes[(rng.next_u32() as usize) % codes.len()].clone());
                }
                if j % 10 == 0 {
                    record = record.keyword(Keyword::term("cohort").unwrap());
                }
                record
            })
            .collect();
        vault.put_many(&owner, records).await.unwrap();
        eprint!("\r  {} / {OWNERS} owners   ", o + 1);
    }
    eprintln!();
    let records = OWNERS * PER_OWNER;
    let mut out = Partitions {
        partitions: OWNERS * POLICIES.len(),
        records,
        bulk_records_per_s: records as f64 / start.elapsed().as_secs_f64(),
        ..Partitions::default()
    };
    let reader = issue("dr. reader".into());
    let cohort = Keyword::term("cohort").unwrap();
    let (ms, first) = timed(vault.search(&reader, &cohort)).await;
    out.first_search_ms = ms;
    out.common_hits = first.unwrap().hits.len();
    let mut common = Vec::new();
    for _ in 0..7 {
        let (ms, found) = timed(vault.search(&reader, &cohort)).await;
        assert_eq!(found.unwrap().hits.len(), out.common_hits);
        common.push(ms);
    }
    out.warm_search_common_ms = median(common);
    let mut one = Vec::new();
    for i in 0..21 {
        let kw = Keyword::term(&format!("case-{}", i * 457 % records)).unwrap();
        let (ms, found) = timed(vault.search(&reader, &kw)).await;
        assert_eq!(found.unwrap().hits.len(), 1);
        one.push(ms);
    }
    out.warm_search_1_hit_ms = median(one);
    let kw = Keyword::term("case-0").unwrap();
    out.chain_reads_1_hit = reads_of(&reads, vault.search(&reader, &kw)).await.0;
    drop(vault);
    let mut colds = Vec::new();
    for _ in 0..5 {
        let (ms, hits) = timed(async {
            open()
                .await
                .search(&reader, &cohort)
                .await
                .unwrap()
                .hits
                .len()
        })
        .await;
        assert_eq!(hits, out.common_hits);
        colds.push(ms);
    }
    out.cold_search_ms = median(colds);
    let vault = open().await;
    out.chain_reads_cold = reads_of(&reads, vault.search(&reader, &cohort)).await.0;
    out
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    for a in &args {
        if a != "--quick" && a != "--json" {
            eprintln!("usage: scale_report [--quick] [--json]");
            std::process::exit(2);
        }
    }
    let quick = args.iter().any(|a| a == "--quick");
    let json = args.iter().any(|a| a == "--json");
    let sizes: &[usize] = if quick {
        &[100, 1_000, 10_000]
    } else {
        &[100, 1_000, 10_000, 100_000]
    };
    let base = std::env::var_os("MEDSEAL_SCALE_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    std::fs::create_dir_all(&base).unwrap();
    let tmp = tempfile::tempdir_in(base).unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let authority = Authority::setup(&mut OsRng);
    let doctor = authority
        .issue(
            "dr. scale",
            ["role:doctor", "dept:cardiology"],
            medseal::Validity::months_from_now(12),
            PrivateKeySigner::random(),
            &mut OsRng,
        )
        .unwrap();
    let codes: Vec<Keyword> = medseal::index::dictionary::icd10cm()
        .unwrap()
        .iter()
        .filter(|c| c.billable)
        .step_by(7)
        .take(3_000)
        .map(|c| Keyword::icd10(&c.code).unwrap())
        .collect();
    let mut archive = Archive {
        dir: tmp.path().join("archive"),
        authority,
        doctor,
        codes,
        gas: Arc::new(AtomicU64::new(0)),
        reads: Arc::new(AtomicU64::new(0)),
        records: 0,
    };
    eprintln!("building the 100-record reference archive");
    let reference = rt.block_on(async {
        let mut small = Archive {
            dir: tmp.path().join("reference"),
            authority: Authority::from_bytes(&archive.authority.to_bytes()).unwrap(),
            doctor: Member::from_bytes(&archive.doctor.to_bytes()).unwrap(),
            codes: archive.codes.clone(),
            gas: Arc::new(AtomicU64::new(0)),
            reads: Arc::new(AtomicU64::new(0)),
            records: 0,
        };
        let vault = small.open_metered().await;
        let batch = (0..100).map(|i| small.record(i)).collect();
        vault.put_many(&small.doctor, batch).await.unwrap();
        small.records = 100;
        vault
            .compact_index(&small.doctor, medseal::CompactScope::AllPartitions)
            .await
            .unwrap();
        vault
            .refresh_index_cache(small.doctor.address())
            .await
            .unwrap();
        Reference {
            vault,
            records: small.records,
        }
    });
    let mut rows = Vec::new();
    for &size in sizes {
        eprintln!("building {size} records");
        rows.push(rt.block_on(measure(&mut archive, size, &reference)));
    }
    drop(reference);
    eprintln!("building {OWNERS} owners × {} policies", POLICIES.len());
    let partitions = rt.block_on(measure_partitions(
        &tmp.path().join("partitions"),
        &archive.authority,
        &archive.codes,
    ));
    let (first, last) = (rows[0].clone(), rows[rows.len() - 1].clone());
    let ratio = |f: fn(&Row) -> f64| f(&last) / f(&first);
    let ratios = serde_json::json!({
        "put": ratio(|r| r.put_ms),
        "open": ratio(|r| r.open_ms),
        "cold_search": ratio(|r| r.cold_search_ms),
        "warm_search_1_hit": ratio(|r| r.warm_search_1_hit_ms),
        "get": ratio(|r| r.get_ms),
        "warm_search_1_hit_side_by_side": last.side_by_side_1_hit,
    });
    if json {
        let out = serde_json::json!({ "rows": rows, "growth": ratios,
            "growth_between": [first.records, last.records], "partitions": partitions });
        println!("{out}");
        return;
    }
    println!(
        "{:>8} {:>8} {:>8} {:>9} {:>9} {:>8} {:>13} {:>7} {:>9} {:>9} {:>8} {:>7} {:>9} {:>14} {:>8} {:>8} {:>7} {:>7}",
        "records",
        "put ms",
        "open ms",
        "first ms",
        "cold ms",
        "1-hit ms",
        "common ms",
        "get ms",
        "import/s",
        "compact s",
        "gas/rec",
        "proof B",
        "proof B c",
        "reads 1/c/cold",
        "shards",
        "disk B/r",
        "RSS MiB",
        "1-hit ×"
    );
    for r in &rows {
        println!(
            "{:>8} {:>8.2} {:>8.2} {:>9.1} {:>9.1} {:>8.3} {:>8.2} ({:>4}) {:>7.2} {:>9.0} {:>9.2} {:>8.0} {:>7} {:>9} {:>14} {:>8} {:>8.0} {:>7.0} {:>7.2}",
            r.records,
            r.put_ms,
            r.open_ms,
            r.first_search_ms,
            r.cold_search_ms,
            r.warm_search_1_hit_ms,
            r.warm_search_common_ms,
            r.common_hits,
            r.get_ms,
            r.bulk_records_per_s,
            r.compact_ms / 1e3,
            r.gas_per_record,
            r.proof_bytes_1_hit,
            r.proof_bytes_common,
            format!(
                "{}/{}/{}",
                r.chain_reads_1_hit, r.chain_reads_common, r.chain_reads_cold
            ),
            format!("{}→{}", r.shards_before_compaction, r.live_shards),
            r.disk_bytes_per_record,
            r.peak_rss_mib,
            r.side_by_side_1_hit
        );
    }
    println!(
        "growth {}→{}: put {:.2}×, open {:.2}×, cold search {:.2}×, warm 1-hit search {:.2}× ({:.2}× side by side), get {:.2}×",
        first.records,
        last.records,
        ratio(|r| r.put_ms),
        ratio(|r| r.open_ms),
        ratio(|r| r.cold_search_ms),
        ratio(|r| r.warm_search_1_hit_ms),
        last.side_by_side_1_hit,
        ratio(|r| r.get_ms)
    );
    let p = &partitions;
    println!(
        "{} partitions ({OWNERS} owners × {} policies), {} records (import {:.0}/s): first search {:.0} ms (opens every capsule, fills the caches), cold {:.1} ms, warm common {:.2} ms ({} hits), warm 1-hit {:.2} ms; chain reads: {} per warm 1-hit search, {} cold",
        p.partitions,
        POLICIES.len(),
        p.records,
        p.bulk_records_per_s,
        p.first_search_ms,
        p.cold_search_ms,
        p.warm_search_common_ms,
        p.common_hits,
        p.warm_search_1_hit_ms,
        p.chain_reads_1_hit,
        p.chain_reads_cold
    );
}
