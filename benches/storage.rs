//! medseal-storage benchmarks: CID computation throughput, LocalStore
//! put/get of 1 MiB and 256 MiB, and the baseline of writing the same
//! 256 MiB to one file with one fsync, measured side by side.
//!
//! `cargo bench --bench storage` (set MEDSEAL_BENCH_DIR to put the stores on
//! another file system than the default temp dir).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::hint::black_box;
use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use medseal::storage::{
    BlockingRuntime, Bytes, ContentStore, ImportFormat, LocalStore, PutOptions, cid_of_bytes,
    write_stream_to,
};

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

/// A fresh directory, deleted on drop (outside the timed section, since
/// the benches return it from the routine).
struct ScratchDir(PathBuf);

impl ScratchDir {
    fn path(&self) -> &std::path::Path {
        &self.0
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn scratch_dir() -> ScratchDir {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let path = bench_root().join(format!(
        "medseal-storage-bench-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&path).unwrap();
    ScratchDir(path)
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
    group.bench_function("put", |b| {
        b.iter_batched(
            || {
                let dir = scratch_dir();
                let store = runtime
                    .block_on(LocalStore::open(dir.path()))
                    .unwrap()
                    .unwrap();
                (dir, store)
            },
            |(dir, store)| {
                runtime
                    .block_on(store.put(input.clone(), PutOptions::new()))
                    .unwrap()
                    .unwrap();
                dir
            },
            BatchSize::PerIteration,
        );
    });
    let dir = scratch_dir();
    let store = runtime
        .block_on(LocalStore::open(dir.path()))
        .unwrap()
        .unwrap();
    let cid = runtime
        .block_on(store.put(input.clone(), PutOptions::new()))
        .unwrap()
        .unwrap();
    group.bench_function("get", |b| {
        b.iter(|| runtime.block_on(store.get(&cid)).unwrap().unwrap());
    });
    group.finish();
}

fn local_store_256mib(c: &mut Criterion) {
    let runtime = BlockingRuntime::new().unwrap();
    let len = 256 * MIB;
    let input = Bytes::from(data(len));
    let mut group = c.benchmark_group("local_store_256MiB");
    group.throughput(Throughput::Bytes(len as u64));
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(20));
    group.bench_function("baseline_one_file_fsync", |b| {
        b.iter_batched(
            scratch_dir,
            |dir| {
                let mut file = std::fs::File::create(dir.path().join("baseline")).unwrap();
                file.write_all(&input).unwrap();
                file.sync_all().unwrap();
                std::fs::File::open(dir.path()).unwrap().sync_all().unwrap();
                dir
            },
            BatchSize::PerIteration,
        );
    });
    group.bench_function("put", |b| {
        b.iter_batched(
            || {
                let dir = scratch_dir();
                let store = runtime
                    .block_on(LocalStore::open(dir.path()))
                    .unwrap()
                    .unwrap();
                (dir, store)
            },
            |(dir, store)| {
                runtime
                    .block_on(store.put(input.clone(), PutOptions::new()))
                    .unwrap()
                    .unwrap();
                dir
            },
            BatchSize::PerIteration,
        );
    });
    let dir = scratch_dir();
    let store = runtime
        .block_on(LocalStore::open(dir.path()))
        .unwrap()
        .unwrap();
    let cid = runtime
        .block_on(store.put(input.clone(), PutOptions::new()))
        .unwrap()
        .unwrap();
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
