//! Crash test of the journaled embedded chain.
//!
//! The parent test re-executes this test binary as a child writer (selected with the
//! `MEDSEAL_CHAIN_CRASH_CHILD` environment variable) that appends transactions as fast as it
//! can and prints `ACK ...` after each call returned. The parent SIGKILLs the child at random
//! moments, reopens the chain and checks that every acknowledged transaction is there. Between
//! rounds it also injects torn tails (a partial record, as a power loss during an append would
//! leave) and checks they are dropped and nothing acknowledged is lost.
//!
//! Reproduce a run with `MEDSEAL_CRASH_SEED=<seed printed by the test>`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stdout,
    clippy::print_stderr,
    missing_docs,
    unreachable_pub
)]

mod common;

use common::Rng;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use medseal_chain::dev_keys::anvil_dev_signer;
use medseal_chain::{B256, EmbeddedChain, Ledger, RecordId};

const CHILD_ENV: &str = "MEDSEAL_CHAIN_CRASH_CHILD";
const ROUNDS: usize = 8;
const MIN_ACKS: usize = 40;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn cid_for(n: u64) -> String {
    format!("bafy-crash-{n}")
}

/// The child writer. A no-op (passing) test unless `MEDSEAL_CHAIN_CRASH_CHILD` names a journal.
#[test]
fn crash_child_writer() {
    let Ok(path) = std::env::var(CHILD_ENV) else {
        return;
    };
    runtime().block_on(async {
        let chain = EmbeddedChain::open(&path, anvil_dev_signer(0).unwrap()).unwrap();
        let alice = anvil_dev_signer(1).unwrap().address();
        let mut stdout = std::io::stdout();
        let mut next = chain.record_count().await.unwrap() + 1;
        loop {
            let created = chain
                .create_record(&cid_for(next), B256::repeat_byte(7))
                .await
                .unwrap();
            assert_eq!(created.record, RecordId(next));
            writeln!(stdout, "ACK create {next}").unwrap();
            stdout.flush().unwrap();
            if next % 3 == 0 {
                chain.grant_access(created.record, alice).await.unwrap();
                writeln!(stdout, "ACK grant {next}").unwrap();
                stdout.flush().unwrap();
            }
            next += 1;
        }
    });
}

/// Runs one child writer and kills it after `delay`; returns the ACK lines it printed.
fn run_child_until_killed(journal: &std::path::Path, delay: Duration) -> Vec<String> {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "crash_child_writer",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, journal)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if line.starts_with("ACK ") && tx.send(line).is_err() {
                break;
            }
        }
    });
    std::thread::sleep(delay);
    let _ = child.kill(); // SIGKILL
    child.wait().unwrap();
    reader.join().unwrap();
    rx.try_iter().collect()
}

#[test]
fn killed_writers_lose_no_acknowledged_transaction() {
    if std::env::var(CHILD_ENV).is_ok() {
        return; // we are a child; only crash_child_writer runs there anyway
    }
    let seed = std::env::var("MEDSEAL_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
                | 1
        });
    eprintln!("crash test seed: {seed} (MEDSEAL_CRASH_SEED={seed} reproduces the kill schedule)");
    let mut rng = Rng(seed);
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("chain.journal");
    let alice = anvil_dev_signer(1).unwrap().address();

    let mut created: BTreeSet<u64> = BTreeSet::new();
    let mut granted: BTreeSet<u64> = BTreeSet::new();
    let mut torn_injected = 0;
    let started = Instant::now();
    let mut round = 0;
    while round < ROUNDS || (created.len() < MIN_ACKS && round < 4 * ROUNDS) {
        round += 1;
        // Kill somewhere between "still opening/replaying" and "mid-stream".
        let delay = Duration::from_millis(50 + rng.below(450));
        let acks = run_child_until_killed(&journal, delay);
        for ack in &acks {
            let mut parts = ack.split_whitespace().skip(1);
            let (kind, n) = (
                parts.next().unwrap(),
                parts.next().unwrap().parse::<u64>().unwrap(),
            );
            match kind {
                "create" => created.insert(n),
                "grant" => granted.insert(n),
                other => panic!("unexpected ack {other}"),
            };
        }

        // Sometimes also simulate a torn append on top of whatever the kill left behind.
        let mut injected = 0;
        if rng.below(2) == 0 && std::fs::metadata(&journal).map(|m| m.len()).unwrap_or(0) > 8 {
            let bytes = std::fs::read(&journal).unwrap();
            let len = 1 + rng.below(120) as usize;
            let start = bytes.len().saturating_sub(len).max(8);
            let mut tail = bytes[start..].to_vec(); // record-looking garbage
            tail.truncate(len);
            if rng.below(3) == 0 {
                tail = vec![0; len]; // zero fill
            }
            std::fs::OpenOptions::new()
                .append(true)
                .open(&journal)
                .unwrap()
                .write_all(&tail)
                .unwrap();
            injected = tail.len() as u64;
            torn_injected += 1;
        }

        // Reopen and verify every acknowledged transaction.
        runtime().block_on(async {
            let chain = EmbeddedChain::open(&journal, anvil_dev_signer(0).unwrap())
                .unwrap_or_else(|e| panic!("round {round}: reopen failed: {e}"));
            if injected > 0 {
                assert!(
                    chain.dropped_tail_bytes() >= injected,
                    "round {round}: injected {injected} torn bytes, dropped {}",
                    chain.dropped_tail_bytes()
                );
            }
            let count = chain.record_count().await.unwrap();
            if let Some(max) = created.last() {
                assert!(
                    count >= *max,
                    "round {round}: {count} records, acked up to {max}"
                );
            }
            let on_chain: BTreeMap<u64, String> = {
                let mut map = BTreeMap::new();
                for id in chain.records_of(chain.sender()).await.unwrap() {
                    map.insert(id.0, chain.record(id).await.unwrap().manifest_cid);
                }
                map
            };
            for n in &created {
                assert_eq!(
                    on_chain.get(n),
                    Some(&cid_for(*n)),
                    "round {round}: acked record {n} lost"
                );
            }
            for n in &granted {
                assert!(
                    chain.can_access(RecordId(*n), alice).await.unwrap(),
                    "round {round}: acked grant on record {n} lost"
                );
            }
        });
        eprintln!(
            "round {round}: killed after {delay:?}, {} acks this round, {} creates / {} grants acked so far, torn tail injected: {injected} bytes",
            acks.len(),
            created.len(),
            granted.len()
        );
    }
    assert!(
        created.len() >= MIN_ACKS,
        "only {} acknowledged creates in {round} rounds: the child writer made too little progress",
        created.len()
    );
    eprintln!(
        "{round} rounds, {} creates and {} grants acknowledged and recovered, {torn_injected} torn tails injected, {:?}",
        created.len(),
        granted.len(),
        started.elapsed()
    );
}
