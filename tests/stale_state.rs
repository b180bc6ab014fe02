//! An owner state restored from an older copy (a backup, a replica that missed a put) is
//! behind the chain's index anchors: a put from it would give its batch labels already
//! published, which tells the index host the XOR of two record references. The vault
//! refuses such a put before anything is stored.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::sync::Arc;

use medseal::chain::{EmbeddedChain, Ledger};
use medseal::storage::LocalStore;
use medseal::{Authority, Error, Keyword, NewRecord, PrivateKeySigner, Vault};
use rand_core::OsRng;

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_put_from_an_owner_state_behind_the_chain_is_refused_before_storing() {
    let dir = tempfile::tempdir().unwrap();
    let authority = Authority::setup(&mut OsRng);
    let doctor = authority
        .issue(
            "dr. ada",
            ["role:doctor"],
            medseal::Validity::months_from_now(12),
            PrivateKeySigner::random(),
            &mut OsRng,
        )
        .unwrap();
    let store = Arc::new(LocalStore::open(dir.path().join("blocks")).await.unwrap());
    let ledger: Arc<dyn Ledger> =
        Arc::new(EmbeddedChain::in_memory(PrivateKeySigner::random()).unwrap());
    let mut vault = Vault::with_backends(dir.path(), store.clone(), Arc::clone(&ledger)).unwrap();
    vault.install_authority(authority.public_key()).unwrap();
    let record = |n: u32| {
        NewRecord::new(format!("r{n}"), "role:doctor".parse().unwrap())
            .keyword(Keyword::parse("icd10:I10").unwrap())
            .keyword(Keyword::parse(&format!("term:case-{n}")).unwrap())
    };
    vault.put(&doctor, record(0)).await.unwrap();
    let owners = dir.path().join("owners");
    let backup = dir.path().join("owners-backup");
    copy_dir(&owners, &backup);
    vault.put(&doctor, record(1)).await.unwrap();
    drop(vault);

    // The older copy comes back.
    std::fs::remove_dir_all(&owners).unwrap();
    copy_dir(&backup, &owners);
    let mut vault = Vault::with_backends(dir.path(), store.clone(), Arc::clone(&ledger)).unwrap();
    vault.install_authority(authority.public_key()).unwrap();
    let (pins, records) = (store.pins().await, ledger.record_count().await.unwrap());
    let refused = vault.put(&doctor, record(2)).await.unwrap_err();
    assert!(
        matches!(refused, Error::Corrupt { .. }) && refused.to_string().contains("older copy"),
        "{refused}"
    );
    // Nothing stored, nothing created: no shard with repeated labels reached the store.
    assert_eq!(store.pins().await, pins);
    assert_eq!(ledger.record_count().await.unwrap(), records);
    // A record without keywords touches no index and is stored.
    let plain = NewRecord::new("plain", "role:doctor".parse().unwrap());
    vault.put(&doctor, plain).await.unwrap();
}

/// An older copy with several live shards, behind a batch that merged them all (so the
/// chain's next anchor covers every live batch, like a compaction's): still refused before
/// anything is stored, since that shard holds more than the live entries.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_older_copy_behind_a_full_merge_is_not_taken_for_a_compaction() {
    let dir = tempfile::tempdir().unwrap();
    let authority = Authority::setup(&mut OsRng);
    let doctor = authority
        .issue(
            "dr. ada",
            ["role:doctor"],
            medseal::Validity::months_from_now(12),
            PrivateKeySigner::random(),
            &mut OsRng,
        )
        .unwrap();
    let store = Arc::new(LocalStore::open(dir.path().join("blocks")).await.unwrap());
    let ledger: Arc<dyn Ledger> =
        Arc::new(EmbeddedChain::in_memory(PrivateKeySigner::random()).unwrap());
    let open = || {
        let mut vault =
            Vault::with_backends(dir.path(), store.clone(), Arc::clone(&ledger)).unwrap();
        vault.install_authority(authority.public_key()).unwrap();
        vault
    };
    let record = |n: u32, keywords: u32| {
        NewRecord::new(format!("r{n}"), "role:doctor".parse().unwrap())
            .keywords((0..keywords).map(|k| Keyword::parse(&format!("term:k{n}-{k}")).unwrap()))
    };
    let vault = open();
    // Two live shards: 30 entries, then 2 (30 + 1 > 2 · (2 + 1): not merged).
    let big: Vec<NewRecord> = (0..10).map(|n| record(n, 3)).collect();
    vault.put_many(&doctor, big).await.unwrap();
    vault.put(&doctor, record(10, 2)).await.unwrap();
    let owners = dir.path().join("owners");
    let backup = dir.path().join("owners-backup");
    copy_dir(&owners, &backup);
    // A batch of 15 entries merges both (2 + 1 <= 2 · 16, 31 <= 2 · 19): one shard of
    // batches 0..=2, anchored at the slot a compaction of the backup would take.
    vault.put(&doctor, record(11, 15)).await.unwrap();
    let (capsule,) = match ledger.capsules(Some(doctor.address())).await.unwrap()[..] {
        [ref c] => (c.clone(),),
        _ => panic!("one partition"),
    };
    let head = ledger
        .index_head(doctor.address(), capsule.partition)
        .await
        .unwrap();
    let newest = ledger
        .index_anchor(doctor.address(), capsule.partition, head - 1)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((newest.first_seq, newest.last_seq), (0, 2));
    drop(vault);

    std::fs::remove_dir_all(&owners).unwrap();
    copy_dir(&backup, &owners);
    let vault = open();
    let (pins, records) = (store.pins().await, ledger.record_count().await.unwrap());
    let refused = vault.put(&doctor, record(12, 1)).await.unwrap_err();
    assert!(
        matches!(refused, Error::Corrupt { .. }) && refused.to_string().contains("older copy"),
        "{refused}"
    );
    assert_eq!(store.pins().await, pins, "nothing stored");
    assert_eq!(ledger.record_count().await.unwrap(), records);
}
