//! Pinning costs the same with 10 pins as with 10,000: a pin is a small
//! database transaction, not a rewrite of the whole pin set. Measured as
//! the bytes the process writes (`wchar` of `/proc/self/io`), so this file
//! holds this one test only: nothing else may write meanwhile.
#![cfg(target_os = "linux")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stderr)]

use std::path::Path;

use bytes::Bytes;
use medseal_storage::{Cid, CidVersion, Codec, ContentStore, LocalStore, PutOptions};

/// Bytes written by this process so far (write, pwrite, ...).
fn written_bytes() -> u64 {
    let io = std::fs::read_to_string("/proc/self/io").unwrap();
    io.lines()
        .find_map(|line| line.strip_prefix("wchar: "))
        .unwrap()
        .parse()
        .unwrap()
}

/// `count` CIDs of blocks that are not stored (pins need no blocks to be
/// listed or to be counted here).
fn fake_pins(count: u32) -> Vec<Cid> {
    (0..count)
        .map(|i| Cid::for_block(CidVersion::V1, Codec::Raw, &i.to_le_bytes()))
        .collect()
}

/// A store that already has `pins` pinned, set up through the migration
/// of a legacy pin file (one transaction).
async fn store_with_pins(root: &Path, pins: &[Cid]) -> LocalStore {
    let names: Vec<String> = pins.iter().map(|c| format!("\"{c}\"")).collect();
    let text = format!(
        "{{\"format\":\"medseal-pins-v1\",\"pins\":[{}]}}",
        names.join(",")
    );
    std::fs::create_dir_all(root).unwrap();
    std::fs::write(root.join("pins.json"), text).unwrap();
    let store = LocalStore::open(root).await.unwrap();
    assert_eq!(store.try_pins().await.unwrap().len(), pins.len());
    store
}

/// Average bytes written per pinned 1 KiB put, over `puts` puts.
async fn bytes_per_pinned_put(store: &LocalStore, seed: u8, puts: u32) -> u64 {
    let before = written_bytes();
    for i in 0..puts {
        let mut data = vec![seed; 1024];
        data[..4].copy_from_slice(&i.to_le_bytes());
        store
            .put(Bytes::from(data), PutOptions::new())
            .await
            .unwrap();
    }
    (written_bytes() - before) / u64::from(puts)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pinned_put_writes_as_much_with_10_000_pins_as_with_10() {
    let dir = tempfile::tempdir().unwrap();
    let few = store_with_pins(&dir.path().join("few"), &fake_pins(10)).await;
    let many = store_with_pins(&dir.path().join("many"), &fake_pins(10_000)).await;
    let puts = 50;
    // Warm both up (first commits may grow the file).
    bytes_per_pinned_put(&few, 1, 5).await;
    bytes_per_pinned_put(&many, 1, 5).await;
    let with_few = bytes_per_pinned_put(&few, 2, puts).await;
    let with_many = bytes_per_pinned_put(&many, 2, puts).await;
    eprintln!(
        "bytes written per pinned 1 KiB put: {with_few} with 10 pins, {with_many} with 10,000"
    );
    // The whole pin set of 10,000 CIDs as JSON would be about 600 KB.
    assert!(with_many < 64 * 1024, "{with_many} bytes per put");
    assert!(
        with_many < 2 * with_few + 16 * 1024,
        "{with_many} bytes per put with 10,000 pins vs {with_few} with 10"
    );
    assert_eq!(many.try_pins().await.unwrap().len(), 10_000 + 5 + 50);
}
