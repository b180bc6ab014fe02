//! The local caches of a searcher: the index cache (`index-cache.redb`) and the opened
//! partition keys (`search-keys/<address>`) let a new vault answer without fetching the
//! shards or opening the capsules again; a damaged cache never changes an answer (it is
//! rebuilt from the store).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::sync::Arc;

use medseal::chain::dev_keys::anvil_dev_signer;
use medseal::chain::{EmbeddedChain, Ledger};
use medseal::storage::{Cid, LocalStore};
use medseal::{
    Authority, INDEX_CACHE_FILE, Keyword, Member, NewRecord, PrivateKeySigner, RecordId,
    SEARCH_KEYS_DIR, Vault,
};
use rand_core::OsRng;

struct Setup {
    store: Arc<LocalStore>,
    ledger: Arc<dyn Ledger>,
    authority: Authority,
    doctor: Member,
    common: Keyword,
    ids: Vec<RecordId>,
}

fn vault(dir: &Path, s: &Setup) -> Vault {
    let store = Arc::clone(&s.store) as Arc<dyn medseal::storage::ContentStore>;
    let mut vault = Vault::with_backends(dir, store, Arc::clone(&s.ledger)).unwrap();
    vault.install_authority(s.authority.public_key()).unwrap();
    vault
}

/// 40 records (merges included), one search to fill the cache.
async fn setup(dir: &Path) -> Setup {
    let authority = Authority::setup(&mut OsRng);
    let doctor = authority
        .issue(
            "dr. ada",
            ["role:doctor", "dept:cardiology"],
            medseal::Validity::months_from_now(12),
            anvil_dev_signer(0).unwrap(),
            &mut OsRng,
        )
        .unwrap();
    let store = Arc::new(LocalStore::open(dir.join("blocks")).await.unwrap());
    let chain = EmbeddedChain::in_memory(PrivateKeySigner::random()).unwrap();
    let mut s = Setup {
        store,
        ledger: Arc::new(chain),
        authority,
        doctor,
        common: Keyword::parse("icd10:I10").unwrap(),
        ids: Vec::new(),
    };
    let v = vault(dir, &s);
    for n in 0..40u32 {
        let record = NewRecord::new(format!("r{n}"), "role:doctor".parse().unwrap())
            .keyword(s.common.clone())
            .keyword(Keyword::parse(&format!("term:case-{n}")).unwrap());
        s.ids.push(v.put(&s.doctor, record).await.unwrap().record);
    }
    assert_eq!(
        v.search(&s.doctor, &s.common).await.unwrap().records(),
        s.ids
    );
    s
}

/// The CIDs of every index shard ever anchored by the doctor, and of the capsules.
async fn index_cids(s: &Setup) -> Vec<Cid> {
    let owner = s.doctor.address();
    let mut cids = Vec::new();
    for capsule in s.ledger.capsules(Some(owner)).await.unwrap() {
        cids.push(capsule.capsule_cid.parse().unwrap());
        for anchor in s
            .ledger
            .index_anchors(owner, capsule.partition)
            .await
            .unwrap()
        {
            cids.push(anchor.shard_cid.parse().unwrap());
        }
    }
    cids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_vault_answers_from_the_caches_without_fetching_shards_or_capsules() {
    let dir = tempfile::tempdir().unwrap();
    let s = setup(dir.path()).await;
    // Without the shards and the capsule in the store, only the caches can answer.
    for cid in index_cids(&s).await {
        s.store.remove_block(&cid).await.unwrap();
    }
    let cold = vault(dir.path(), &s);
    assert_eq!(
        cold.search(&s.doctor, &s.common).await.unwrap().records(),
        s.ids
    );
    let one = cold
        .search(&s.doctor, &Keyword::parse("term:case-7").unwrap())
        .await
        .unwrap();
    assert_eq!(one.records(), vec![s.ids[7]]);
    assert!(one.rejected.is_empty());
    // The key cache holds no key in the clear: without it, the capsule is needed again.
    let keys = dir
        .path()
        .join(SEARCH_KEYS_DIR)
        .join(format!("{:x}", s.doctor.address()));
    let bytes = std::fs::read(&keys).unwrap();
    assert!(bytes.starts_with(b"MSKC"));
    std::fs::write(&keys, b"MSKC\x01garbage").unwrap();
    drop(cold);
    let cold = vault(dir.path(), &s);
    let found = cold.search(&s.doctor, &s.common).await.unwrap();
    assert!(found.records().is_empty());
    assert_eq!(
        found.rejected.len(),
        1,
        "the capsule is gone from the store"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_cache_is_rebuilt_and_never_changes_an_answer() {
    let dir = tempfile::tempdir().unwrap();
    let s = setup(dir.path()).await;
    let path = dir.path().join(INDEX_CACHE_FILE);
    let pristine = std::fs::read(&path).unwrap();
    type Damage = Box<dyn Fn(&mut Vec<u8>)>;
    let damages: [(&str, Damage); 3] = [
        (
            "garbage",
            Box::new(|b: &mut Vec<u8>| b.iter_mut().for_each(|x| *x = 0x5A)),
        ),
        (
            "truncated",
            Box::new(|b: &mut Vec<u8>| b.truncate(b.len() / 3)),
        ),
        (
            "bytes flipped",
            Box::new(|b: &mut Vec<u8>| {
                let len = b.len();
                for i in (len / 4..len).step_by(len / 64 + 1) {
                    b[i] ^= 0x10;
                }
            }),
        ),
    ];
    for (what, damage) in &damages {
        let mut bytes = pristine.clone();
        damage(&mut bytes);
        std::fs::write(&path, &bytes).unwrap();
        let cold = vault(dir.path(), &s);
        let found = cold.search(&s.doctor, &s.common).await.unwrap();
        assert_eq!(found.records(), s.ids, "{what}");
        assert!(found.rejected.is_empty(), "{what}: {:?}", found.rejected);
        drop(cold);
        // The next vault finds a working cache again.
        let next = vault(dir.path(), &s);
        assert_eq!(
            next.search(&s.doctor, &s.common).await.unwrap().records(),
            s.ids,
            "{what}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bulk_import_leaves_the_index_cache_filled_for_the_next_search() {
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
    let s = Setup {
        store: Arc::new(LocalStore::open(dir.path().join("blocks")).await.unwrap()),
        ledger: Arc::new(EmbeddedChain::in_memory(PrivateKeySigner::random()).unwrap()),
        authority,
        doctor,
        common: Keyword::parse("icd10:I10").unwrap(),
        ids: Vec::new(),
    };
    let records = (0..250u32)
        .map(|n| {
            NewRecord::new(format!("r{n}"), "role:doctor".parse().unwrap())
                .keyword(s.common.clone())
                .keyword(Keyword::parse(&format!("term:case-{n}")).unwrap())
        })
        .collect();
    let importer = vault(dir.path(), &s);
    let receipts = importer.put_many(&s.doctor, records).await.unwrap();
    importer
        .refresh_index_cache(s.doctor.address())
        .await
        .unwrap();
    drop(importer);
    let ids: Vec<RecordId> = receipts.iter().map(|r| r.record).collect();
    // No search ran; without any shard in the store, only the cache the refresh filled
    // can answer.
    let owner = s.doctor.address();
    for capsule in s.ledger.capsules(Some(owner)).await.unwrap() {
        for anchor in s
            .ledger
            .index_anchors(owner, capsule.partition)
            .await
            .unwrap()
        {
            let cid: Cid = anchor.shard_cid.parse().unwrap();
            s.store.remove_block(&cid).await.unwrap();
        }
    }
    let cold = vault(dir.path(), &s);
    let found = cold.search(&s.doctor, &s.common).await.unwrap();
    assert!(found.rejected.is_empty(), "{:?}", found.rejected);
    assert_eq!(found.records(), ids);
    let one = cold
        .search(&s.doctor, &Keyword::parse("term:case-201").unwrap())
        .await
        .unwrap();
    assert_eq!(one.records(), vec![ids[201]]);
}
