//! Measures how the persistent embedded chain scales with history: the time of
//! `EmbeddedChain::open` and of two typical registry reads, for journals of several sizes.
//!
//! ```text
//! cargo run -p medseal-chain --release --example open_report -- DIR N [N ...]
//! ```
//!
//! For each `N`, `DIR/chain-N.journal` is built first if it does not exist: `N` `createRecord`
//! transactions: 10 of them, evenly spread, by the queried owner and the rest by nine other
//! accounts (so the owner query matches 10 records at every size, and a record read matches
//! one). Then, on that journal:
//!
//! * `open`: median wall time of `EmbeddedChain::open` with the snapshot in place;
//! * `rebuild`: wall time of `EmbeddedChain::open` after deleting `DIR/chain-N.journal.snapshot`
//!   (a full replay of the journal, which also rewrites the snapshot);
//! * `records_of`: median time of `records_of(owner)` (a filtered log query);
//! * `record`: median time of `record(id)` (a contract call plus a filtered log query).
//!
//! `open_report --build-only DIR N [N ...]` only builds the journals. Building costs one
//! `fsync` per transaction; to build large journals quickly, build them on a RAM disk and copy
//! the files (journal and snapshot) to the disk to measure on.
//!
//! `open_report --crash DIR N` opens the chain of size `N`, adds one record and aborts the
//! process without closing anything (a crash); `open_report --open-once DIR N` then times one
//! open (the recovery after that crash).
//!
//! Only APIs that exist before and after the snapshot was introduced are used, so the same
//! source measures both versions (older versions ignore the snapshot file).
#![allow(
    clippy::print_stdout,
    clippy::print_stderr,
    clippy::unwrap_used,
    clippy::expect_used
)]

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use alloy::primitives::keccak256;
use medseal_chain::dev_keys::anvil_dev_signer;
use medseal_chain::{B256, EmbeddedChain, Ledger, PrivateKeySigner, RecordId};

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn fmt(d: Duration) -> String {
    let us = d.as_secs_f64() * 1e6;
    if us >= 1e6 {
        format!("{:.2} s", us / 1e6)
    } else if us >= 1e3 {
        format!("{:.2} ms", us / 1e3)
    } else {
        format!("{us:.0} µs")
    }
}

fn snapshot_of(journal: &Path) -> PathBuf {
    let mut path = journal.as_os_str().to_owned();
    path.push(".snapshot");
    PathBuf::from(path)
}

async fn build(journal: &Path, n: u64) {
    let started = Instant::now();
    let chain = EmbeddedChain::open(journal, anvil_dev_signer(0).unwrap()).unwrap();
    let owner = chain.with_signer(anvil_dev_signer(1).unwrap());
    let others: Vec<EmbeddedChain> = (0..9)
        .map(|i| {
            let key = keccak256(format!("open-report-account-{i}"));
            chain.with_signer(PrivateKeySigner::from_bytes(&key).unwrap())
        })
        .collect();
    for i in 0..n {
        let by = if i % (n / 10).max(1) == 0 && i / (n / 10).max(1) < 10 {
            &owner
        } else {
            &others[(i % 9) as usize]
        };
        by.create_record(&format!("bafy-open-report-{i}"), B256::repeat_byte(1))
            .await
            .unwrap();
        if (i + 1) % 10_000 == 0 {
            eprintln!("  {} of {n} records, {:?}", i + 1, started.elapsed());
        }
    }
    eprintln!(
        "built {} ({n} records) in {:?}",
        journal.display(),
        started.elapsed()
    );
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let mut args = std::env::args().skip(1).peekable();
    let mode = args.next_if(|a| a.starts_with("--"));
    let build_only = mode.as_deref() == Some("--build-only");
    let dir = PathBuf::from(
        args.next()
            .expect("usage: open_report [--build-only] DIR N [N ...]"),
    );
    let sizes: Vec<u64> = args
        .map(|a| a.parse().expect("N must be a number"))
        .collect();
    std::fs::create_dir_all(&dir).unwrap();
    let owner = anvil_dev_signer(1).unwrap().address();
    println!(
        "| records | open (median) | rebuild / full replay | records_of(owner) | record(id) |"
    );
    println!("|---:|---:|---:|---:|---:|");
    for n in sizes {
        let journal = dir.join(format!("chain-{n}.journal"));
        if !journal.exists() {
            build(&journal, n).await;
        }
        if build_only {
            continue;
        }
        if mode.as_deref() == Some("--crash") {
            let chain = EmbeddedChain::open(&journal, anvil_dev_signer(0).unwrap()).unwrap();
            chain
                .create_record("bafy-open-report-crash", B256::repeat_byte(2))
                .await
                .unwrap();
            eprintln!("aborting with the chain open");
            std::process::abort();
        }
        if mode.as_deref() == Some("--open-once") {
            let started = Instant::now();
            let chain = EmbeddedChain::open(&journal, anvil_dev_signer(0).unwrap()).unwrap();
            let elapsed = started.elapsed();
            println!(
                "| {n} | open once: {} | head {} |",
                fmt(elapsed),
                chain.head().unwrap().number
            );
            continue;
        }
        // Warm the snapshot (and, for older versions, nothing).
        drop(EmbeddedChain::open(&journal, anvil_dev_signer(0).unwrap()).unwrap());

        // Rebuild: the old behaviour (full replay).
        let rebuild_runs = if n >= 50_000 { 1 } else { 3 };
        let mut rebuild = Vec::new();
        for _ in 0..rebuild_runs {
            let _ = std::fs::remove_file(snapshot_of(&journal));
            let started = Instant::now();
            let chain = EmbeddedChain::open(&journal, anvil_dev_signer(0).unwrap()).unwrap();
            rebuild.push(started.elapsed());
            drop(chain);
        }

        let open_runs = if n >= 50_000 { 5 } else { 11 };
        let mut open = Vec::new();
        for _ in 0..open_runs {
            let started = Instant::now();
            let chain = EmbeddedChain::open(&journal, anvil_dev_signer(0).unwrap()).unwrap();
            open.push(started.elapsed());
            drop(chain);
        }

        let chain = EmbeddedChain::open(&journal, anvil_dev_signer(0).unwrap()).unwrap();
        let count = chain.record_count().await.unwrap();
        assert_eq!(count, n);
        let mut records_of = Vec::new();
        let mut record = Vec::new();
        for i in 0..31u64 {
            let started = Instant::now();
            let mine = chain.records_of(owner).await.unwrap();
            records_of.push(started.elapsed());
            assert_eq!(mine.len() as u64, n.min(10));
            let id = RecordId(1 + (i * 7919) % n);
            let started = Instant::now();
            let info = chain.record(id).await.unwrap();
            record.push(started.elapsed());
            assert_eq!(info.record, id);
        }
        println!(
            "| {n} | {} | {} | {} | {} |",
            fmt(median(open)),
            fmt(median(rebuild)),
            fmt(median(records_of)),
            fmt(median(record)),
        );
    }
}
