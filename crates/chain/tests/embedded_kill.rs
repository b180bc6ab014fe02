//! Kill test of the journaled embedded chain aimed at its snapshot database.
//!
//! The parent test re-executes this test binary as a child writer (selected with the
//! `MEDSEAL_CHAIN_KILL_CHILD` environment variable) that opens the chain and then sends
//! transactions in a loop (single creates, grants, and every tenth a bulk create of
//! [`BATCH`] records, a larger snapshot transaction), printing `ACK ...` after each call
//! returned. Every block is applied to the snapshot in its own write transaction (an `fsync`ed
//! one every 128 blocks), so a kill while writing lands in or around a snapshot write. In every
//! third round the parent deletes the snapshot first, so that the child's open rebuilds it
//! (full replay, then one bulk copy into a new file), and kills the child either at a random
//! point of that rebuild (scaled by the previous rebuild's duration, measured from the child's
//! `START` and `OPENED` lines) or within 3 ms of the new snapshot file appearing (while the
//! rebuilt state is being copied into it).
//!
//! After each kill the parent reopens the chain and checks that every acknowledged transaction
//! is there, that the snapshot verifies against its digest, and that the chain still takes a
//! transaction; at the end, that a full replay of the journal agrees with the snapshot.
//!
//! Reproduce a run with `MEDSEAL_KILL_SEED=<seed printed by the test>`.
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
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use medseal_chain::dev_keys::anvil_dev_signer;
use medseal_chain::{B256, EmbeddedChain, Ledger, RecordId};

const CHILD_ENV: &str = "MEDSEAL_CHAIN_KILL_CHILD";
const ROUNDS: usize = 12;
/// Records per bulk create.
const BATCH: u64 = 25;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn cid_for(n: u64) -> String {
    format!("bafy-kill-{n}")
}

fn say(line: &str) {
    let mut stdout = std::io::stdout();
    writeln!(stdout, "{line}").unwrap();
    stdout.flush().unwrap();
}

/// The child writer. A no-op (passing) test unless `MEDSEAL_CHAIN_KILL_CHILD` names a journal.
#[test]
fn kill_child_writer() {
    let Ok(path) = std::env::var(CHILD_ENV) else {
        return;
    };
    say("START");
    runtime().block_on(async {
        let chain = EmbeddedChain::open(&path, anvil_dev_signer(0).unwrap()).unwrap();
        say("OPENED");
        let alice = anvil_dev_signer(1).unwrap().address();
        let mut next = chain.record_count().await.unwrap() + 1;
        for step in 0u64.. {
            if step % 10 == 9 {
                let batch: Vec<(String, B256)> = (next..next + BATCH)
                    .map(|n| (cid_for(n), B256::repeat_byte(5)))
                    .collect();
                let created = chain.create_records(&batch).await.unwrap();
                assert_eq!(created.records.first(), Some(&RecordId(next)));
                say(&format!("ACK batch {next} {}", next + BATCH - 1));
                next += BATCH;
                continue;
            }
            let created = chain
                .create_record(&cid_for(next), B256::repeat_byte(7))
                .await
                .unwrap();
            assert_eq!(created.record, RecordId(next));
            say(&format!("ACK create {next}"));
            if next % 3 == 0 {
                chain.grant_access(created.record, alice).await.unwrap();
                say(&format!("ACK grant {next}"));
            }
            next += 1;
        }
    });
}

/// When to kill a child, relative to the lines it prints.
#[derive(Debug, Clone, Copy)]
enum KillAt {
    /// This long after `START` (during the open).
    Opening(Duration),
    /// This long after the snapshot file (deleted before the child started) reappears: while
    /// the rebuilt snapshot is copied into the new file.
    SnapshotCopy(Duration),
    /// This long after `OPENED` (while writing).
    Writing(Duration),
}

/// What one child did before it was killed.
struct ChildRun {
    acks: Vec<String>,
    /// `START` → `OPENED`, if it got that far.
    open_time: Option<Duration>,
}

/// A child process that is killed when dropped (also when the parent test panics).
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs one child writer on `journal` and SIGKILLs it at `kill`.
fn run_child(journal: &Path, kill: KillAt) -> ChildRun {
    let snapshot = EmbeddedChain::snapshot_path(journal);
    let spawned = Instant::now();
    let child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "kill_child_writer",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, journal)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut child = KillOnDrop(child);
    let stdout = child.0.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send((Instant::now(), line)).is_err() {
                break;
            }
        }
    });
    let wait_for = |what: &str, rx: &mpsc::Receiver<(Instant, String)>, acks: &mut Vec<String>| {
        loop {
            assert!(
                spawned.elapsed() < Duration::from_secs(30),
                "child did not print {what} within 30 s"
            );
            let (at, line) = rx
                .recv_timeout(Duration::from_secs(30))
                .unwrap_or_else(|e| panic!("child never printed {what}: {e}"));
            // The first line follows the harness's `test kill_child_writer ... `.
            if line.ends_with(what) {
                return at;
            }
            if line.starts_with("ACK ") {
                acks.push(line);
            }
        }
    };
    let mut acks = Vec::new();
    let started = wait_for("START", &rx, &mut acks);
    let mut opened = None;
    match kill {
        KillAt::Opening(delay) => {
            std::thread::sleep(delay.saturating_sub(started.elapsed()));
        }
        KillAt::SnapshotCopy(delay) => {
            while !snapshot.exists() && started.elapsed() < Duration::from_secs(20) {
                std::thread::sleep(Duration::from_micros(100));
            }
            std::thread::sleep(delay);
        }
        KillAt::Writing(delay) => {
            opened = Some(wait_for("OPENED", &rx, &mut acks));
            std::thread::sleep(delay);
        }
    }
    let _ = child.0.kill(); // SIGKILL
    child.0.wait().unwrap();
    reader.join().unwrap();
    for (at, line) in rx.try_iter() {
        if line.ends_with("OPENED") {
            opened = Some(at);
        } else if line.starts_with("ACK ") {
            acks.push(line);
        }
    }
    ChildRun {
        acks,
        open_time: opened.map(|at| at - started),
    }
}

#[test]
fn kills_during_snapshot_writes_lose_nothing() {
    if std::env::var(CHILD_ENV).is_ok() {
        return; // we are a child; only kill_child_writer runs there anyway
    }
    let seed = std::env::var("MEDSEAL_KILL_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
                | 1
        });
    eprintln!("kill test seed: {seed} (MEDSEAL_KILL_SEED={seed} reproduces the kill schedule)");
    let mut rng = Rng(seed);
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("chain.journal");
    let snapshot = EmbeddedChain::snapshot_path(&journal);
    let alice = anvil_dev_signer(1).unwrap().address();

    let mut created: BTreeSet<u64> = BTreeSet::new();
    let mut granted: BTreeSet<u64> = BTreeSet::new();
    let mut rebuild_time: Option<Duration> = None;
    let mut killed_in_rebuild = 0;
    let mut killed_in_copy = 0;
    let started = Instant::now();
    for round in 1..=ROUNDS {
        let rebuild = round % 3 == 0;
        let kill = match (rebuild, rebuild_time) {
            (true, Some(_)) if round % 6 == 0 => {
                std::fs::remove_file(&snapshot).unwrap();
                KillAt::SnapshotCopy(Duration::from_micros(rng.below(3_000)))
            }
            (true, Some(took)) => {
                std::fs::remove_file(&snapshot).unwrap();
                // Anywhere from the start of the replay to the end of the copy (the journal
                // only grows, so this rebuild takes at least as long as the last one).
                KillAt::Opening(took.mul_f64(0.1 + rng.below(850) as f64 / 1_000.0))
            }
            (true, None) => {
                std::fs::remove_file(&snapshot).unwrap();
                KillAt::Writing(Duration::from_millis(rng.below(200)))
            }
            (false, _) => KillAt::Writing(Duration::from_millis(20 + rng.below(400))),
        };
        let run = run_child(&journal, kill);
        let snapshot_left = snapshot.exists();
        if rebuild {
            match run.open_time {
                Some(took) => rebuild_time = Some(took),
                None => {
                    killed_in_rebuild += 1;
                    if snapshot_left {
                        killed_in_copy += 1;
                    }
                }
            }
        }
        for ack in &run.acks {
            let fields: Vec<&str> = ack.split_whitespace().skip(1).collect();
            let numbers: Vec<u64> = fields[1..].iter().map(|n| n.parse().unwrap()).collect();
            match fields[0] {
                "create" => {
                    created.insert(numbers[0]);
                }
                "batch" => created.extend(numbers[0]..=numbers[1]),
                "grant" => {
                    granted.insert(numbers[0]);
                }
                other => panic!("unexpected ack {other}"),
            }
        }

        // Reopen: everything acknowledged is there, the snapshot verifies, the chain works.
        runtime().block_on(async {
            let chain = EmbeddedChain::open(&journal, anvil_dev_signer(0).unwrap())
                .unwrap_or_else(|e| panic!("round {round}: reopen failed: {e}"));
            chain
                .verify_snapshot()
                .unwrap_or_else(|e| panic!("round {round}: snapshot does not verify: {e}"));
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
            assert_eq!(on_chain.len() as u64, count, "round {round}");
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
            let next = count + 1;
            let mine = chain
                .create_record(&cid_for(next), B256::repeat_byte(7))
                .await
                .unwrap_or_else(|e| panic!("round {round}: the reopened chain refuses a tx: {e}"));
            assert_eq!(mine.record, RecordId(next));
            assert_eq!(
                chain.record(mine.record).await.unwrap().manifest_cid,
                cid_for(next)
            );
            created.insert(next);
        });
        eprintln!(
            "round {round}: {kill:?}{}, open took {:?}, snapshot file left: {snapshot_left}, {} acks; \
             {} records / {} grants acked so far",
            if rebuild { " (snapshot rebuild)" } else { "" },
            run.open_time,
            run.acks.len(),
            created.len(),
            granted.len()
        );
    }
    assert!(
        killed_in_rebuild >= 1,
        "no kill landed during a snapshot rebuild: the schedule missed what this test is for"
    );
    assert!(
        killed_in_copy >= 1,
        "no kill landed while the rebuilt snapshot file was written"
    );
    assert!(
        created.len() >= 100,
        "only {} records acknowledged",
        created.len()
    );

    // The snapshot that survived all the kills equals a full replay of the journal.
    let (head, count) = runtime().block_on(async {
        let chain = EmbeddedChain::open(&journal, anvil_dev_signer(0).unwrap()).unwrap();
        (chain.head().unwrap(), chain.record_count().await.unwrap())
    });
    runtime().block_on(async {
        let replayed =
            EmbeddedChain::open_with_replay(&journal, anvil_dev_signer(0).unwrap()).unwrap();
        assert_eq!(replayed.head().unwrap(), head);
        assert_eq!(replayed.record_count().await.unwrap(), count);
        replayed.verify_snapshot().unwrap();
    });
    eprintln!(
        "{ROUNDS} rounds ({killed_in_rebuild} kills during a snapshot rebuild, {killed_in_copy} of \
         them while writing the new snapshot file), {} records and \
         {} grants acknowledged and recovered, {} blocks, {:?}",
        created.len(),
        granted.len(),
        head.number,
        started.elapsed()
    );
}
