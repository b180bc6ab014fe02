//! End-to-end latency of the Vault on embedded backends (LocalStore + journaled embedded
//! chain in a temp dir): put of a 1 MiB record with 10 ICD-10 keywords, get (open +
//! read the 1 MiB attachment), keyword search — and, side by side in the same process,
//! the parts each is made of, to show what dominates.
//!
//! `cargo bench --bench vault` (MEDSEAL_BENCH_DIR selects the file system; default: the
//! temp dir).
#![allow(clippy::unwrap_used, missing_docs)]

use std::hint::black_box;
use std::path::PathBuf;
use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use medseal::abe::envelope::{self, DataKey};
use medseal::abe::{Fame, Policy};
use medseal::chain::{B256, EmbeddedChain, Ledger};
use medseal::storage::{ContentStore, LocalStore, PutOptions};
use medseal::{Attachment, Authority, Config, Keyword, NewRecord, PrivateKeySigner, Vault};
use rand_core::OsRng;

const MIB: usize = 1 << 20;
const SEARCH_RECORDS: usize = 100;

fn data(len: usize) -> Vec<u8> {
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

fn keywords() -> Vec<Keyword> {
    let codes = medseal::index::dictionary::icd10cm().unwrap();
    codes
        .iter()
        .step_by(codes.len() / 10)
        .take(10)
        .map(|c| Keyword::icd10(&c.code).unwrap())
        .collect()
}

fn bench_dir() -> tempfile::TempDir {
    let root = std::env::var_os("MEDSEAL_BENCH_DIR").map_or_else(std::env::temp_dir, PathBuf::from);
    tempfile::tempdir_in(root).unwrap()
}

fn end_to_end(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = bench_dir();
    let authority = Authority::setup(&mut OsRng);
    let mut vault = rt
        .block_on(Vault::open_with(dir.path(), &Config::embedded()))
        .unwrap();
    vault.install_authority(authority.public_key()).unwrap();
    let doctor = authority
        .issue(
            "doctor",
            ["role:doctor", "dept:cardiology"],
            medseal::Validity::months_from_now(12),
            PrivateKeySigner::random(),
            &mut OsRng,
        )
        .unwrap();
    let policy: Policy = "role:doctor and dept:cardiology".parse().unwrap();
    let body = bytes::Bytes::from(data(MIB));
    let keywords = keywords();
    let record = || {
        NewRecord::new("bench record", policy.clone())
            .keywords(keywords.iter().cloned())
            .attach(Attachment::bytes(
                "scan.bin",
                "application/octet-stream",
                body.clone(),
            ))
    };
    // The first put creates and publishes the partition: not part of the steady state.
    let first = rt.block_on(vault.put(&doctor, record())).unwrap();

    let mut group = c.benchmark_group("vault");
    group.sample_size(20);
    group.bench_function("put_1MiB_10_keywords", |b| {
        b.iter(|| rt.block_on(vault.put(&doctor, record())).unwrap());
    });
    group.bench_function("get_1MiB", |b| {
        b.iter(|| {
            rt.block_on(async {
                let opened = vault.get(&doctor, first.record).await.unwrap();
                black_box(vault.read_attachment_bytes(&opened, 0).await.unwrap())
            })
        });
    });
    // Search on a vault holding exactly SEARCH_RECORDS records (one index shard each):
    // record i has 10 keywords, one of them common to all, the others its own.
    let search_dir = bench_dir();
    let mut searchable = rt
        .block_on(Vault::open_with(search_dir.path(), &Config::embedded()))
        .unwrap();
    searchable
        .install_authority(authority.public_key())
        .unwrap();
    let codes = medseal::index::dictionary::icd10cm().unwrap();
    let code = |i: usize| Keyword::icd10(&codes[i * 7].code).unwrap();
    for i in 0..SEARCH_RECORDS {
        let record = NewRecord::new("r", policy.clone())
            .keyword(code(0))
            .keywords((1..10).map(|j| code(1 + i * 9 + j)));
        rt.block_on(searchable.put(&doctor, record)).unwrap();
    }
    let rare = code(1 + 17 * 9 + 1);
    let common = code(0);
    let search = |keyword| rt.block_on(searchable.search(&doctor, keyword)).unwrap();
    // Warm: the first search opens the partition key and loads the shards.
    assert_eq!(search(&rare).hits.len(), 1);
    assert_eq!(search(&common).hits.len(), SEARCH_RECORDS);
    group.bench_function("search_1_hit_of_100_records", |b| {
        b.iter(|| black_box(search(&rare)));
    });
    group.bench_function("search_100_hits_of_100_records", |b| {
        b.iter(|| black_box(search(&common)));
    });
    group.finish();

    // The parts, on the same kinds of backends.
    let mut parts = c.benchmark_group("vault_parts");
    parts.sample_size(20);
    let parts_dir = bench_dir();
    let store = rt
        .block_on(LocalStore::open(parts_dir.path().join("blocks")))
        .unwrap();
    let chain = EmbeddedChain::open(
        parts_dir.path().join("chain.journal"),
        PrivateKeySigner::random(),
    )
    .unwrap();
    let ledger: Arc<dyn Ledger> = Arc::new(chain);
    let dek = DataKey::generate(&mut OsRng);
    parts.bench_function("seal_1MiB_aes_gcm", |b| {
        b.iter(|| black_box(envelope::seal_bytes_with_key(&dek, b"aad", &body).unwrap()));
    });
    let sealed = bytes::Bytes::from(envelope::seal_bytes_with_key(&dek, b"aad", &body).unwrap());
    parts.bench_function("store_put_1MiB_durable", |b| {
        b.iter(|| {
            rt.block_on(store.put(sealed.clone(), PutOptions::new().with_pin(true)))
                .unwrap()
        });
    });
    let cid = rt
        .block_on(store.put(sealed.clone(), PutOptions::new()))
        .unwrap();
    parts.bench_function("store_get_1MiB_verified", |b| {
        b.iter(|| black_box(rt.block_on(store.get(&cid)).unwrap()));
    });
    let pk = authority.public_key();
    parts.bench_function("capsule_seal_fame", |b| {
        b.iter(|| {
            black_box(
                envelope::seal::<Fame, _>(pk, &policy, b"aad", dek.as_bytes(), &mut OsRng).unwrap(),
            )
        });
    });
    let capsule =
        envelope::seal::<Fame, _>(pk, &policy, b"aad", dek.as_bytes(), &mut OsRng).unwrap();
    parts.bench_function("capsule_open_fame", |b| {
        b.iter(|| black_box(envelope::open::<Fame>(doctor.key(), b"aad", &capsule).unwrap()));
    });
    parts.bench_function("chain_create_record_journaled", |b| {
        b.iter(|| {
            rt.block_on(ledger.create_record("QmBench", B256::repeat_byte(7)))
                .unwrap()
        });
    });
    let mut slot = 0u64;
    parts.bench_function("chain_anchor_index_journaled", |b| {
        b.iter(|| {
            // Batches are anchored in order, each alone in its shard.
            let seq = slot;
            slot += 1;
            rt.block_on(ledger.anchor_index(
                B256::repeat_byte(9),
                seq,
                seq,
                "QmShard",
                B256::repeat_byte(5),
            ))
            .unwrap()
        });
    });
    let record = rt
        .block_on(ledger.create_record("QmBench", B256::repeat_byte(7)))
        .unwrap()
        .record;
    parts.bench_function("chain_log_access_journaled", |b| {
        b.iter(|| rt.block_on(ledger.log_access(record)).unwrap());
    });
    // What the vault does twice per put with its owner-state file (a few KiB): write a
    // temp file, fsync, rename over, fsync the directory.
    let state = parts_dir.path().join("owner.state");
    let payload = vec![b'x'; 4096];
    parts.bench_function("state_file_atomic_write", |b| {
        b.iter(|| {
            let tmp = state.with_extension("tmp");
            let mut f = std::fs::File::create(&tmp).unwrap();
            std::io::Write::write_all(&mut f, &payload).unwrap();
            f.sync_all().unwrap();
            std::fs::rename(&tmp, &state).unwrap();
            std::fs::File::open(parts_dir.path())
                .unwrap()
                .sync_all()
                .unwrap();
        });
    });
    parts.bench_function("chain_capsules_query", |b| {
        b.iter(|| black_box(rt.block_on(ledger.capsules(None)).unwrap()));
    });
    parts.finish();
}

criterion_group!(benches, end_to_end);
criterion_main!(benches);
