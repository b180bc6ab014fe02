//! Crash consistency of `LocalStore`: this test binary re-executes itself
//! as a writer process that puts, pins, unpins and garbage-collects in a
//! loop, reporting each acknowledged operation on stdout; the parent kills
//! it (SIGKILL) at random moments, reopens the store and checks that every
//! acknowledged put is intact and pinned and that no block file is corrupt.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stderr
)]

mod common;

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use medseal_storage::{Cid, ContentStore, ImportFormat, LocalStore, PutOptions, cid_of_bytes};

use common::pseudo_random;

const WRITER_DIR_ENV: &str = "MEDSEAL_CRASH_WRITER_DIR";
const WRITER_SEED_ENV: &str = "MEDSEAL_CRASH_WRITER_SEED";

/// Size and format of the `index`-th put of writer `seed` (deterministic, so
/// the parent can regenerate the bytes).
fn put_plan(seed: u64, index: u64) -> (u64, usize, ImportFormat) {
    let data_seed = seed * 1_000_000 + index;
    let size = match index % 4 {
        0 => (data_seed % 5000) as usize,
        1 => 262_144 + (data_seed % 7) as usize,
        2 => 1_100_000 + (data_seed % 3000) as usize,
        _ => 600_000,
    };
    let format = if index.is_multiple_of(2) {
        ImportFormat::CidV0
    } else {
        ImportFormat::CidV1RawLeaves
    };
    (data_seed, size, format)
}

/// Puts per batch of the writer (every fourth step is a batch).
const BATCH_LEN: u64 = 4;

/// The CID the `index`-th put of writer `seed` gets.
fn planned_cid(seed: u64, index: u64) -> Cid {
    let (data_seed, size, format) = put_plan(seed, index);
    cid_of_bytes(&pseudo_random(data_seed, size), format)
}

/// The writer process. Only does something when started by the parent test.
#[test]
#[ignore = "helper: runs only as the child process of killed_writers_never_lose_acknowledged_puts"]
fn crash_writer_child() {
    let Ok(dir) = std::env::var(WRITER_DIR_ENV) else {
        return;
    };
    let seed: u64 = std::env::var(WRITER_SEED_ENV).unwrap().parse().unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async move {
        let store = LocalStore::open(&dir).await.unwrap();
        let mut out = std::io::stdout().lock();
        let mut acked = Vec::new();
        let mut index = 0;
        for step in 0u64.. {
            if step % 4 == 3 {
                // BATCH_LEN puts in one batch, acknowledged after its commit.
                let batch = store.begin_batch().await.unwrap();
                let mut cids = Vec::new();
                for i in index..index + BATCH_LEN {
                    let (data_seed, size, format) = put_plan(seed, i);
                    let data = Bytes::from(pseudo_random(data_seed, size));
                    let options = PutOptions::new().with_format(format);
                    cids.push(batch.put(data, options).await.unwrap());
                }
                // Announced before the commit: a kill during it must leave
                // all of the batch's pins or none.
                writeln!(out, "BATCH {seed} {index}").unwrap();
                out.flush().unwrap();
                batch.commit().await.unwrap();
                for (i, cid) in (index..).zip(&cids) {
                    writeln!(out, "ACK {seed} {i} {cid}").unwrap();
                }
                out.flush().unwrap();
                acked.extend(cids);
                index += BATCH_LEN;
            } else {
                let (data_seed, size, format) = put_plan(seed, index);
                let data = Bytes::from(pseudo_random(data_seed, size));
                let options = PutOptions::new().with_format(format);
                let cid = store.put(data, options).await.unwrap();
                writeln!(out, "ACK {seed} {index} {cid}").unwrap();
                out.flush().unwrap();
                acked.push(cid);
                index += 1;
            }
            if step % 5 == 4 {
                // Drop one earlier pin and collect garbage while more is written.
                let victim = acked.remove(acked.len() / 2);
                // Announced before the call: a kill during the unpin leaves
                // its outcome open, so the parent stops requiring the pin.
                writeln!(out, "UNPINNING {victim}").unwrap();
                out.flush().unwrap();
                store.unpin(&victim).await.unwrap();
                store.gc().await.unwrap();
            }
        }
    });
}

/// Minimal xorshift for kill timings; the seed is printed for reproduction.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

#[test]
fn killed_writers_never_lose_acknowledged_puts() {
    let dir = tempfile::tempdir().unwrap();
    let rng_seed = std::env::var("MEDSEAL_CRASH_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
                | 1
        });
    eprintln!("crash test seed: MEDSEAL_CRASH_TEST_SEED={rng_seed}");
    let mut rng = Rng(rng_seed);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();

    // cid -> (writer seed, put index)
    let mut acked: HashMap<Cid, (u64, u64)> = HashMap::new();
    let mut unpinned: HashSet<Cid> = HashSet::new();
    // (writer seed, first put index) of every batch whose commit started.
    let mut batches: Vec<(u64, u64)> = Vec::new();
    let mut killed_while_running = 0;
    let rounds = 10u64;
    for round in 0..rounds {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "--ignored",
                "--exact",
                "crash_writer_child",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(WRITER_DIR_ENV, dir.path())
            .env(WRITER_SEED_ENV, (round + 1).to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (lines_tx, lines_rx) = mpsc::channel::<String>();
        let reader = std::thread::spawn(move || {
            let mut reader = BufReader::new(stdout);
            loop {
                let mut line = String::new();
                match reader.read_line(&mut line) {
                    // A line cut short by the kill was never acknowledged.
                    Ok(0) | Err(_) => break,
                    Ok(_) if line.ends_with('\n') => lines_tx.send(line).unwrap(),
                    Ok(_) => break,
                }
            }
        });
        // Let the writer get going, then kill it at a random moment.
        let delay = Duration::from_millis(20 + rng.next() % 700);
        std::thread::sleep(delay);
        if child.try_wait().unwrap().is_none() {
            killed_while_running += 1;
        }
        child.kill().unwrap();
        child.wait().unwrap();
        reader.join().unwrap();
        for line in lines_rx.try_iter() {
            let words: Vec<&str> = line.split_whitespace().collect();
            match words.as_slice() {
                ["ACK", seed, index, cid] => {
                    // A later pinned put of the same content pins it again.
                    unpinned.remove(&cid.parse::<Cid>().unwrap());
                    acked.insert(
                        cid.parse().unwrap(),
                        (seed.parse().unwrap(), index.parse().unwrap()),
                    );
                }
                ["BATCH", seed, index] => {
                    batches.push((seed.parse().unwrap(), index.parse().unwrap()));
                }
                ["UNPINNING", cid] => {
                    unpinned.insert(cid.parse().unwrap());
                }
                _ => {} // libtest's own output
            }
        }

        // Reopen as a fresh process would and check everything acknowledged.
        runtime.block_on(async {
            let store = LocalStore::open(dir.path()).await.unwrap();
            assert_eq!(
                std::fs::read_dir(dir.path().join("tmp")).unwrap().count(),
                0,
                "temp files of the killed writer are cleared on open"
            );
            let report = store.verify_all(false).await.unwrap();
            assert!(
                report.corrupt.is_empty(),
                "round {round}: corrupt blocks {:?}",
                report.corrupt
            );
            let pins: HashSet<Cid> = store.pins().await.into_iter().collect();
            for (cid, &(seed, index)) in &acked {
                if unpinned.contains(cid) {
                    continue;
                }
                assert!(
                    pins.contains(cid),
                    "round {round}: acknowledged pin {cid} lost"
                );
                let (data_seed, size, format) = put_plan(seed, index);
                let data = store
                    .get(cid)
                    .await
                    .unwrap_or_else(|e| panic!("round {round}: {cid}: {e}"));
                assert_eq!(
                    data,
                    pseudo_random(data_seed, size),
                    "round {round}: {cid} ({format:?})"
                );
            }
            // A batch's pins are committed together: after a kill during
            // its commit, all of them or none (none of a batch whose commit
            // was not acknowledged is ever unpinned).
            for &(seed, first) in &batches {
                let planned: Vec<Cid> = (first..first + BATCH_LEN)
                    .map(|i| planned_cid(seed, i))
                    .collect();
                if planned.iter().any(|cid| acked.contains_key(cid)) {
                    continue;
                }
                let pinned = planned.iter().filter(|cid| pins.contains(cid)).count();
                assert!(
                    pinned == 0 || pinned == planned.len(),
                    "round {round}: {pinned} of the {} pins of an interrupted batch",
                    planned.len()
                );
                if pinned > 0 {
                    for cid in &planned {
                        assert!(store.get(cid).await.is_ok(), "round {round}: {cid}");
                    }
                }
            }
            for cid in &pins {
                assert!(
                    acked.contains_key(cid) || !unpinned.contains(cid),
                    "unexpected pin {cid}"
                );
            }
        });
    }
    eprintln!(
        "crash test: {} acknowledged puts ({} batches) over {rounds} kills ({killed_while_running} \
         while writing)",
        acked.len(),
        batches.len()
    );
    assert!(
        acked.len() >= rounds as usize,
        "the writer must make progress between kills"
    );
    assert!(
        killed_while_running >= rounds / 2,
        "most kills must hit a running writer"
    );
}
