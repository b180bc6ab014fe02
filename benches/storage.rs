//! medseal-storage benchmarks: CID computation throughput, LocalStore
//! put/get of 1 MiB and 256 MiB, and the baseline of writing the same
//! 256 MiB to one file with one fsync, measured side by side.
//!
//! `cargo bench --bench storage` (set MEDSEAL_BENCH_DIR to put the stores on
//! another file system than the default temp dir).
#![allow(clippy::unwrap_used, missing_docs)]

use std::cell::RefCell;
use std::hint::black_box;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use criterion::{BatchSize, Criterion, SamplingMode, Throughput, criterion_group, criterion_main};
use medseal::storage::{
    BlockingRuntime, Bytes, Cid, ContentStore, ImportFormat, LocalStore, PutOptions, cid_of_bytes,
    write_stream_to,
};
use tempfile::TempDir;

const MIB: usize = 1 << 20;

fn data(len: usize) -> Vec<u8> {
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        out.extend_from_slice(&state.to_le_bytes());
    }
    out.truncate(len);
    out
}

fn bench_root() -> PathBuf {
    std::env::var_os("MEDSEAL_BENCH_DIR").map_or_else(std::env::temp_dir, PathBuf::from)
}

/// A fresh directory, deleted on drop (outside the timed section, since the benches
/// return it from the routine).
fn scratch_dir() -> TempDir {
    let root = bench_root();
    std::fs::create_dir_all(&root).unwrap();
    tempfile::Builder::new()
        .prefix("medseal-storage-bench-")
        .tempdir_in(root)
        .unwrap()
}

fn open_store(runtime: &BlockingRuntime, dir: &Path) -> LocalStore {
    runtime.block_on(LocalStore::open(dir)).unwrap().unwrap()
}

/// A store in a fresh directory, holding `input`.
fn store_holding(runtime: &BlockingRuntime, input: &Bytes) -> (TempDir, LocalStore, Cid) {
    let dir = scratch_dir();
    let store = open_store(runtime, dir.path());
    let put = store.put(input.clone(), PutOptions::new());
    let cid = runtime.block_on(put).unwrap().unwrap();
    (dir, store, cid)
}

fn cid_throughput(c: &mut Criterion) {
    let input = data(64 * MIB);
    let mut group = c.benchmark_group("cid");
    group.throughput(Throughput::Bytes(input.len() as u64));
    group.sample_size(20);
    for (name, format) in [
        ("v0_64MiB", ImportFormat::CidV0),
        ("v1_raw_64MiB", ImportFormat::CidV1RawLeaves),
    ] {
        group.bench_function(name, |b| b.iter(|| cid_of_bytes(black_box(&input), format)));
    }
    group.finish();
}

fn local_store_1mib(c: &mut Criterion) {
    let runtime = BlockingRuntime::new().unwrap();
    let input = Bytes::from(data(MIB));
    let mut group = c.benchmark_group("local_store_1MiB");
    group.throughput(Throughput::Bytes(MIB as u64));
    // One store, emptied (unpin + gc, untimed) before each timed put: a
    // fresh store per run would create and delete its 1,024 shard
    // directories thousands of times, and on ext4 without a journal the
    // inodes freed by one run slow the creations of the next (see
    // `local_store_256mib`).
    let put_dir = scratch_dir();
    let put_store = open_store(&runtime, put_dir.path());
    group.bench_function("put", |b| {
        b.iter_batched(
            || {
                runtime
                    .block_on(async {
                        for cid in put_store.pins().await {
                            put_store.unpin(&cid).await.unwrap();
                        }
                        put_store.gc().await.unwrap();
                    })
                    .unwrap();
            },
            |()| {
                runtime
                    .block_on(put_store.put(input.clone(), PutOptions::new()))
                    .unwrap()
                    .unwrap()
            },
            BatchSize::PerIteration,
        );
    });
    let (_dir, store, cid) = store_holding(&runtime, &input);
    group.bench_function("get", |b| {
        b.iter(|| runtime.block_on(store.get(&cid)).unwrap().unwrap());
    });
    group.finish();
}

/// Frees the data of every file under `dir` while keeping the files: each
/// is truncated to zero and fsynced. This returns the previous run's disk
/// blocks and page cache before the next run is timed, as deleting it
/// would, without freeing inodes (see [`local_store_256mib`]).
fn release_data(dir: &Path) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_dir() {
            release_data(&entry.path());
        } else {
            let file = std::fs::OpenOptions::new()
                .write(true)
                .open(entry.path())
                .unwrap();
            file.set_len(0).unwrap();
            file.sync_all().unwrap();
        }
    }
}

/// Times `iters` runs of `timed`, each in a fresh directory prepared by
/// `setup`. Untimed before each run: the previous run's data is released
/// ([`release_data`]) and the setup's directory entries are made durable.
/// The directories themselves are deleted only once the benchmark function
/// is done, when the caller clears `kept`.
fn time_in_fresh_dirs<S>(
    iters: u64,
    kept: &RefCell<Vec<TempDir>>,
    mut setup: impl FnMut(&TempDir) -> S,
    mut timed: impl FnMut(&TempDir, S),
) -> Duration {
    let mut total = Duration::ZERO;
    for _ in 0..iters {
        if let Some(previous) = kept.borrow().last() {
            release_data(previous.path());
        }
        let dir = scratch_dir();
        let state = setup(&dir);
        std::fs::File::open(dir.path()).unwrap().sync_all().unwrap();
        let start = Instant::now();
        timed(&dir, state);
        total += start.elapsed();
        kept.borrow_mut().push(dir);
    }
    total
}

/// The 256 MiB put against the baseline, each timed run into a fresh
/// directory, with `iter_custom` so that a timed region holds exactly one
/// put (or one baseline write + fsync) and nothing else.
///
/// No file or directory is deleted while a function is measured, only
/// after its last run: on ext4 without a journal (this VM's temp dir), each
/// file or directory creation scans past every inode freed in the last
/// minute (`recently_deleted` in the kernel), so a put right after the
/// previous run's store (about 2,000 inodes) was deleted paid for the
/// bench's own cleanup, by a factor that depended on whether a clock second
/// ticked after the deletion. The previous run's data is still freed before
/// each timed run ([`release_data`]), for the baseline the same way. Flat
/// sampling with short times keeps the number of runs, and so the inodes
/// freed at the end, small.
fn local_store_256mib(c: &mut Criterion) {
    let runtime = BlockingRuntime::new().unwrap();
    let len = 256 * MIB;
    let input = Bytes::from(data(len));
    let mut group = c.benchmark_group("local_store_256MiB");
    group.throughput(Throughput::Bytes(len as u64));
    group.sample_size(10);
    group.sampling_mode(SamplingMode::Flat);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(3));
    let kept = RefCell::new(Vec::new());
    group.bench_function("baseline_one_file_fsync", |b| {
        b.iter_custom(|iters| {
            time_in_fresh_dirs(
                iters,
                &kept,
                |_| (),
                |dir, ()| {
                    let mut file = std::fs::File::create(dir.path().join("baseline")).unwrap();
                    file.write_all(&input).unwrap();
                    file.sync_all().unwrap();
                    std::fs::File::open(dir.path()).unwrap().sync_all().unwrap();
                },
            )
        });
    });
    kept.borrow_mut().clear();
    group.bench_function("put", |b| {
        b.iter_custom(|iters| {
            time_in_fresh_dirs(
                iters,
                &kept,
                |dir| open_store(&runtime, dir.path()),
                |_, store| {
                    runtime
                        .block_on(store.put(input.clone(), PutOptions::new()))
                        .unwrap()
                        .unwrap();
                },
            )
        });
    });
    kept.borrow_mut().clear();
    let (_dir, store, cid) = store_holding(&runtime, &input);
    group.bench_function("get_stream", |b| {
        b.iter(|| {
            let total = runtime
                .block_on(write_stream_to(
                    store.get_stream(&cid),
                    &mut std::io::sink(),
                ))
                .unwrap()
                .unwrap();
            assert_eq!(total, len as u64);
        });
    });
    group.finish();
}

criterion_group!(
    benches,
    cid_throughput,
    local_store_1mib,
    local_store_256mib
);
criterion_main!(benches);
