//! How the cost of a pinned put and of opening a `LocalStore` grows with the
//! number of existing pins.
//!
//! For each pin count N (default 100, 1,000, 10,000 and 100,000; or the
//! counts given as arguments) a fresh store gets N pins (CIDs of blocks it
//! does not hold: pins need no blocks to be listed or counted), through a
//! `pins.json` in the format of earlier versions, which `open` reads or
//! migrates. Then it times reopening the store, pinned puts of 1 KiB of
//! distinct content, the same number of such puts in one batch
//! ([`ContentStore::begin_batch`]: one block sync and one pin transaction
//! for all of them; time per put), and opening the store after a process
//! that had it open exited without closing it (as after a crash).
//!
//! `cargo run -p medseal-storage --release --example pin_scaling [N...]`
//! (set MEDSEAL_BENCH_DIR to put the stores on another file system than
//! the default temp dir).
#![allow(clippy::unwrap_used, clippy::print_stdout, missing_docs)]

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use medseal_storage::{
    BlockingRuntime, Bytes, Cid, CidVersion, Codec, ContentStore, LocalStore, PutOptions,
};

/// Timed reopenings per pin count.
const OPENS: usize = 7;
/// Timed pinned puts per pin count.
const PUTS: u32 = 101;

fn bench_root() -> PathBuf {
    std::env::var_os("MEDSEAL_BENCH_DIR").map_or_else(std::env::temp_dir, PathBuf::from)
}

fn write_pin_file(root: &Path, count: u32) {
    let pins: Vec<String> = (0..count)
        .map(|i| {
            let cid = Cid::for_block(CidVersion::V1, Codec::Raw, &i.to_le_bytes());
            format!("\"{cid}\"")
        })
        .collect();
    let text = format!(
        "{{\"format\":\"medseal-pins-v1\",\"pins\":[{}]}}",
        pins.join(",")
    );
    std::fs::create_dir_all(root).unwrap();
    std::fs::write(root.join("pins.json"), text).unwrap();
}

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// The child process of the crash measurement: opens the store at `dir`,
/// puts one pinned block and exits without closing anything.
fn crash_child(dir: &Path) -> ! {
    let runtime = BlockingRuntime::new().unwrap();
    let store = runtime.block_on(LocalStore::open(dir)).unwrap().unwrap();
    let put = store.put(Bytes::from_static(b"crash"), PutOptions::new());
    runtime.block_on(put).unwrap().unwrap();
    std::mem::forget(store);
    std::process::exit(0)
}

fn main() {
    let mut args = std::env::args().skip(1).peekable();
    if args.peek().map(String::as_str) == Some("--crash-child") {
        crash_child(Path::new(&args.nth(1).unwrap()));
    }
    let counts: Vec<u32> = {
        let given: Vec<u32> = std::env::args()
            .skip(1)
            .map(|a| a.parse().unwrap())
            .collect();
        if given.is_empty() {
            vec![100, 1_000, 10_000, 100_000]
        } else {
            given
        }
    };
    let runtime = BlockingRuntime::new().unwrap();
    let root = bench_root();
    std::fs::create_dir_all(&root).unwrap();
    println!(
        "{:>8} {:>14} {:>10} {:>14} {:>14} {:>16} {:>12} {:>14}",
        "pins",
        "first open ms",
        "open ms",
        "put median ms",
        "put p90 ms",
        "batched put ms",
        "files KiB",
        "crash open ms"
    );
    for count in counts {
        let dir = tempfile::Builder::new()
            .prefix("medseal-pin-scaling-")
            .tempdir_in(&root)
            .unwrap();
        write_pin_file(dir.path(), count);

        let start = Instant::now();
        let store = runtime
            .block_on(LocalStore::open(dir.path()))
            .unwrap()
            .unwrap();
        let first_open = start.elapsed();
        drop(store);

        let mut opens = Vec::new();
        for _ in 0..OPENS {
            let start = Instant::now();
            let store = runtime
                .block_on(LocalStore::open(dir.path()))
                .unwrap()
                .unwrap();
            opens.push(start.elapsed());
            drop(store);
        }

        let store = runtime
            .block_on(LocalStore::open(dir.path()))
            .unwrap()
            .unwrap();
        let mut puts = Vec::new();
        for i in 0..PUTS {
            let mut data = vec![0xa5u8; 1024];
            data[..4].copy_from_slice(&i.to_le_bytes());
            let start = Instant::now();
            runtime
                .block_on(store.put(Bytes::from(data), PutOptions::new()))
                .unwrap()
                .unwrap();
            puts.push(start.elapsed());
        }
        let start = Instant::now();
        runtime
            .block_on(async {
                let batch = store.begin_batch().await?;
                for i in PUTS..2 * PUTS {
                    let mut data = vec![0xa5u8; 1024];
                    data[..4].copy_from_slice(&i.to_le_bytes());
                    batch.put(Bytes::from(data), PutOptions::new()).await?;
                }
                batch.commit().await
            })
            .unwrap()
            .unwrap();
        let batched = start.elapsed() / PUTS;
        let pinned = runtime.block_on(store.pins()).unwrap().len();
        assert_eq!(pinned, count as usize + 2 * PUTS as usize);
        drop(store);
        let pin_files: u64 = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap())
            .filter(|e| e.file_name().to_string_lossy().starts_with("pins."))
            .map(|e| e.metadata().unwrap().len())
            .sum();

        let crashed = std::process::Command::new(std::env::current_exe().unwrap())
            .arg("--crash-child")
            .arg(dir.path())
            .status()
            .unwrap();
        assert!(crashed.success());
        let start = Instant::now();
        let store = runtime
            .block_on(LocalStore::open(dir.path()))
            .unwrap()
            .unwrap();
        let crash_open = start.elapsed();
        drop(store);

        puts.sort();
        let p90 = puts[puts.len() * 9 / 10];
        println!(
            "{:>8} {:>14.2} {:>10.2} {:>14.2} {:>14.2} {:>16.3} {:>12} {:>14.2}",
            count,
            ms(first_open),
            ms(median(opens)),
            ms(median(puts)),
            ms(p90),
            ms(batched),
            pin_files / 1024,
            ms(crash_open)
        );
    }
}
