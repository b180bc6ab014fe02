//! Moving records between stores through a CAR file: exported from an embedded vault,
//! imported into another store (a fresh local store, or a real IPFS node with the node's own
//! `dag/import` when `MEDSEAL_IPFS_API` is set; with `CI=true` an unset node is a failure),
//! then read and searched by a vault on that store and the same chain.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stderr
)]

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use medseal::storage::{
    ByteStream, Cid, ContentStore, KuboStore, LocalStore, StorageError, bytes_as_stream,
};
use medseal::{
    Attachment, Authority, Config, Error, Keyword, Member, NewRecord, PrivateKeySigner,
    RecordContent, RecordId, Vault,
};
use rand_core::OsRng;

struct People {
    cardiologist: Member,
    nurse: Member,
    outsider: Member,
    researcher: Member,
}

fn people(authority: &Authority) -> People {
    let issue = |name: &str, attrs: &[&str]| {
        authority
            .issue(
                name,
                attrs,
                medseal::Validity::months_from_now(12),
                PrivateKeySigner::random(),
                &mut OsRng,
            )
            .unwrap()
    };
    People {
        cardiologist: issue("dr-ada", &["role:doctor", "dept:cardiology"]),
        nurse: issue("sam", &["role:nurse", "dept:cardiology"]),
        outsider: issue("dr-lee", &["role:doctor", "dept:neurology"]),
        researcher: issue("rui", &["role:researcher"]),
    }
}

fn kw(text: &str) -> Keyword {
    Keyword::parse(text).unwrap()
}

/// Unique bytes per run (fresh keys encrypt them anyway; this makes sizes vary too).
fn scan(len: usize) -> Vec<u8> {
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as usize;
    (0..len).map(|i| ((i * 31 + seed) % 251) as u8).collect()
}

/// What the source vault stored: the records and their attachments' bytes.
struct Stored {
    records: Vec<(RecordId, Vec<Vec<u8>>)>,
}

/// Three records of the cardiologist (one with a multi-block attachment), one shared with
/// and then revoked from the outside doctor (a re-sealed manifest and a second partition
/// epoch), one of the researcher's own.
async fn store_records(vault: &Vault, authority: &Authority, p: &People) -> Stored {
    // Sharing needs registered members.
    vault.adopt_authority(authority).await.unwrap();
    for member in [&p.cardiologist, &p.nurse, &p.outsider, &p.researcher] {
        vault.register_member(authority, member).await.unwrap();
    }
    let big = scan(700_000);
    let ecg = vault
        .put(
            &p.cardiologist,
            NewRecord::new(
                "ECG report",
                "role:doctor and dept:cardiology".parse().unwrap(),
            )
            .keywords([kw("icd10:I48.0"), kw("term:atrial fibrillation")])
            .attach(Attachment::bytes(
                "ecg.bin",
                "application/octet-stream",
                big.clone(),
            ))
            .attach(Attachment::bytes("note.txt", "text/plain", &b"sinus"[..])),
        )
        .await
        .unwrap();
    let vitals = vault
        .put(
            &p.cardiologist,
            NewRecord::new(
                "ward vitals",
                "(role:doctor or role:nurse) and dept:cardiology"
                    .parse()
                    .unwrap(),
            )
            .keyword(kw("icd10:I10"))
            .attach(Attachment::bytes(
                "vitals.txt",
                "text/plain",
                &b"bp 150/95"[..],
            )),
        )
        .await
        .unwrap();
    vault
        .share(&p.cardiologist, ecg.record, p.outsider.address())
        .await
        .unwrap();
    vault
        .revoke(&p.cardiologist, ecg.record, p.outsider.address())
        .await
        .unwrap();
    let later = vault
        .put(
            &p.cardiologist,
            NewRecord::new(
                "follow-up",
                "role:doctor and dept:cardiology".parse().unwrap(),
            )
            .keyword(kw("icd10:I48.0")),
        )
        .await
        .unwrap();
    vault
        .put(
            &p.researcher,
            NewRecord::new("cohort", "role:researcher".parse().unwrap()).keyword(kw("icd10:I10")),
        )
        .await
        .unwrap();
    Stored {
        records: vec![
            (ecg.record, vec![big, b"sinus".to_vec()]),
            (vitals.record, vec![b"bp 150/95".to_vec()]),
            (later.record, vec![]),
        ],
    }
}

async fn research_records(vault: &Vault, p: &People) -> Vec<RecordId> {
    vault
        .records_of(p.researcher.address())
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.record)
        .collect()
}

async fn collect(mut stream: ByteStream) -> Vec<u8> {
    let mut out = BytesMut::new();
    while let Some(piece) = stream.next().await {
        out.extend_from_slice(&piece.unwrap());
    }
    out.to_vec()
}

/// The cardiologist's records and whole index, as a CAR.
async fn export_cardiology(vault: &Vault, p: &People) -> (RecordContent, Vec<u8>) {
    let mine: Vec<RecordId> = vault
        .records_of(p.cardiologist.address())
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.record)
        .collect();
    let content = vault.record_content(&p.cardiologist, &mine).await.unwrap();
    let car = collect(vault.export_car(&content)).await;
    (content, car)
}

/// `moved` (on another store, same chain) reads every record byte for byte and finds
/// them by keyword.
async fn check_moved(moved: &Vault, p: &People, stored: &Stored) {
    for (record, attachments) in &stored.records {
        let opened = moved.get(&p.cardiologist, *record).await.unwrap();
        assert_eq!(opened.attachments.len(), attachments.len());
        for (i, bytes) in attachments.iter().enumerate() {
            assert_eq!(
                &moved.read_attachment_bytes(&opened, i).await.unwrap(),
                bytes
            );
        }
    }
    let (ecg, vitals, later) = (
        stored.records[0].0,
        stored.records[1].0,
        stored.records[2].0,
    );
    let found = moved.search(&p.nurse, &kw("icd10:I10")).await.unwrap();
    assert!(found.rejected.is_empty(), "{:?}", found.rejected);
    assert_eq!(found.records(), [vitals]);
    let found = moved
        .search(&p.cardiologist, &kw("icd10:I48.0"))
        .await
        .unwrap();
    assert!(found.rejected.is_empty(), "{:?}", found.rejected);
    assert_eq!(found.records(), [ecg, later], "both partition epochs moved");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_move_to_another_local_store_through_a_car() {
    let dir = tempfile::tempdir().unwrap();
    let authority = Authority::setup(&mut OsRng);
    let p = people(&authority);
    let mut source = Vault::open_with(dir.path().join("a"), &Config::embedded())
        .await
        .unwrap();
    source.install_authority(authority.public_key()).unwrap();
    let stored = store_records(&source, &authority, &p).await;
    let (content, car) = export_cardiology(&source, &p).await;

    // What the file carries: three manifests, three attachments, both epochs' capsules of
    // the two cardiology partitions, and their live shards.
    assert_eq!(content.records.len(), 3);
    assert_eq!(content.owners, [p.cardiologist.address()]);
    assert_eq!(content.manifests.len(), 3);
    assert_eq!(content.attachments.len(), 3);
    assert_eq!(
        content.capsules.len(),
        3,
        "two partitions, one rotated once"
    );
    assert!(!content.shards.is_empty());
    // Exporting is deterministic.
    assert_eq!(collect(source.export_car(&content)).await, car);
    // A member who cannot open a record cannot export it.
    assert!(matches!(
        source
            .record_content(&p.researcher, &content.records)
            .await,
        Err(Error::AccessDenied { record }) if record == stored.records[0].0
    ));

    // A vault on a fresh store and the same chain has nothing to read yet.
    let store = LocalStore::open(dir.path().join("b/blocks")).await.unwrap();
    let mut moved = Vault::with_backends(
        dir.path().join("b"),
        Arc::new(store.clone()),
        source.ledger().clone(),
    )
    .unwrap();
    moved.install_authority(authority.public_key()).unwrap();
    assert!(
        moved
            .get(&p.cardiologist, stored.records[0].0)
            .await
            .is_err()
    );

    let imported = moved
        .import_car(bytes_as_stream(Bytes::from(car.clone())))
        .await
        .unwrap();
    assert_eq!(imported.roots, content.roots());
    assert!(imported.missing.is_empty());
    assert_eq!(imported.bytes, store_bytes(&store).await);
    for root in &imported.roots {
        assert!(store.is_pinned(root).await.unwrap(), "{root} pinned");
    }
    // The researcher's partition is on the chain but not in this store: a search reports
    // it as rejected and still answers from the others.
    let found = moved.search(&p.nurse, &kw("icd10:I10")).await.unwrap();
    assert_eq!(found.records(), [stored.records[1].0]);
    assert_eq!(found.rejected.len(), 1);
    assert_eq!(found.rejected[0].publisher, p.researcher.address());
    let theirs = research_records(&source, &p).await;
    let research = source.record_content(&p.researcher, &theirs).await.unwrap();
    moved
        .import_car(source.export_car(&research))
        .await
        .unwrap();
    check_moved(&moved, &p, &stored).await;
    // Importing again changes nothing.
    let again = moved
        .import_car(bytes_as_stream(Bytes::from(car)))
        .await
        .unwrap();
    assert_eq!(again.blocks, imported.blocks);
}

async fn store_bytes(store: &LocalStore) -> u64 {
    store
        .list_blocks()
        .await
        .unwrap()
        .iter()
        .map(|b| b.size)
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn damaged_cars_are_refused_with_typed_errors() {
    let dir = tempfile::tempdir().unwrap();
    let authority = Authority::setup(&mut OsRng);
    let p = people(&authority);
    let mut source = Vault::open_with(dir.path().join("a"), &Config::embedded())
        .await
        .unwrap();
    source.install_authority(authority.public_key()).unwrap();
    let put = source
        .put(
            &p.cardiologist,
            NewRecord::new("scan", "role:doctor".parse().unwrap())
                .keyword(kw("icd10:I10"))
                .attach(Attachment::bytes("scan.bin", "image/png", scan(600_000))),
        )
        .await
        .unwrap();
    let content = source
        .record_content(&p.cardiologist, &[put.record])
        .await
        .unwrap();
    let car = collect(source.export_car(&content)).await;

    let fresh = |name: &str| {
        let path = dir.path().join(name);
        let ledger = source.ledger().clone();
        async move {
            let store = LocalStore::open(path.join("blocks")).await.unwrap();
            let vault = Vault::with_backends(&path, Arc::new(store.clone()), ledger).unwrap();
            (vault, store)
        }
    };

    // Garbage, an empty file, and a file cut inside a section.
    let (vault, store) = fresh("garbage").await;
    for bad in [&b"not a car file at all"[..], b"", &car[..car.len() - 3]] {
        let error = import(&vault, bad).await.unwrap_err();
        assert!(
            matches!(error, Error::Storage(StorageError::InvalidCar(_))),
            "{error:?}"
        );
    }
    assert!(store.pins().await.is_empty(), "nothing pinned");

    // Cut between two sections: a shorter CAR that lacks blocks it names.
    let cut = section_boundaries(&car)[2];
    let error = import(&vault, &car[..cut]).await.unwrap_err();
    assert!(
        matches!(&error, Error::Storage(StorageError::InvalidCar(m)) if m.contains("cut short")),
        "{error:?}"
    );
    assert!(store.pins().await.is_empty(), "nothing pinned");

    // A flipped bit inside a block: tampering.
    let (vault, store) = fresh("flipped").await;
    let mut flipped = car.clone();
    let at = flipped.len() - 100;
    flipped[at] ^= 0x10;
    let error = import(&vault, &flipped).await.unwrap_err();
    assert!(error.is_tampering(), "{error:?}");
    assert!(store.pins().await.is_empty(), "nothing pinned");

    // The intact file still imports into the same store.
    import(&vault, &car).await.unwrap();
    let opened = vault.get(&p.cardiologist, put.record).await.unwrap();
    assert_eq!(
        vault.read_attachment_bytes(&opened, 0).await.unwrap().len(),
        600_000
    );
}

async fn import(vault: &Vault, bytes: &[u8]) -> Result<medseal::storage::CarImport, Error> {
    vault
        .import_car(bytes_as_stream(Bytes::from(bytes.to_vec())))
        .await
}

/// Offsets where a section of the CAR ends (the first is the end of the header).
fn section_boundaries(car: &[u8]) -> Vec<usize> {
    let mut ends = Vec::new();
    let mut at = 0;
    while at < car.len() {
        let (mut len, mut shift) = (0usize, 0);
        loop {
            let b = car[at];
            at += 1;
            len |= usize::from(b & 0x7f) << shift;
            shift += 7;
            if b & 0x80 == 0 {
                break;
            }
        }
        at += len;
        ends.push(at);
    }
    ends
}

fn ipfs_url() -> Option<String> {
    match std::env::var("MEDSEAL_IPFS_API")
        .ok()
        .filter(|s| !s.is_empty())
    {
        Some(url) => Some(url),
        None if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("CI=true but MEDSEAL_IPFS_API is not set")
        }
        None => {
            eprintln!("skipping: set MEDSEAL_IPFS_API to run against an IPFS node");
            None
        }
    }
}

/// `POST /api/v0/dag/import` of `car`, as `ipfs dag import` does; the roots it pinned.
async fn node_dag_import(url: &str, car: Vec<u8>) -> Vec<Cid> {
    let part = reqwest::multipart::Part::bytes(car)
        .file_name("records.car")
        .mime_str("application/vnd.ipld.car")
        .unwrap();
    let response = reqwest::Client::new()
        .post(format!("{url}/api/v0/dag/import?pin-roots=true"))
        .multipart(reqwest::multipart::Form::new().part("file", part))
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success(), "{}", response.status());
    let body = response.text().await.unwrap();
    let mut pinned = Vec::new();
    for line in body.lines().filter(|l| !l.trim().is_empty()) {
        let reply: serde_json::Value = serde_json::from_str(line).unwrap();
        let root = &reply["Root"];
        assert_eq!(root["PinErrorMsg"], "", "{line}");
        pinned.push(root["Cid"]["/"].as_str().unwrap().parse().unwrap());
    }
    pinned
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_move_to_an_ipfs_node_with_its_own_dag_import() {
    let Some(url) = ipfs_url() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let authority = Authority::setup(&mut OsRng);
    let p = people(&authority);
    // The source: embedded store and chain. Every owner's records move (a search walks
    // every partition on the chain): the cardiologist's and the researcher's, as two files.
    let mut source = Vault::open_with(dir.path().join("a"), &Config::embedded())
        .await
        .unwrap();
    source.install_authority(authority.public_key()).unwrap();
    let stored = store_records(&source, &authority, &p).await;
    let (content, car) = export_cardiology(&source, &p).await;
    let theirs = research_records(&source, &p).await;
    let research = source.record_content(&p.researcher, &theirs).await.unwrap();
    let research_car = collect(source.export_car(&research)).await;

    let node = KuboStore::new(url.clone()).unwrap();
    // (One check: a block the node lacks costs `has` its 2 s timeout on js-ipfs.)
    let manifest = content.manifests[0];
    assert!(
        !node.has(&manifest).await.unwrap(),
        "the node must not have {manifest} yet"
    );
    let pinned = node_dag_import(&url, car).await;
    assert_eq!(pinned, content.roots(), "the node pinned every root");
    assert_eq!(node_dag_import(&url, research_car).await, research.roots());

    // A vault on the node and the same chain reads and searches the records.
    let mut moved = Vault::with_backends(
        dir.path().join("b"),
        Arc::new(node.clone()),
        source.ledger().clone(),
    )
    .unwrap();
    moved.install_authority(authority.public_key()).unwrap();
    check_moved(&moved, &p, &stored).await;
    let hits = moved.search(&p.researcher, &kw("icd10:I10")).await.unwrap();
    assert_eq!(hits.records(), theirs);

    for root in content.roots().iter().chain(&research.roots()) {
        node.unpin(root).await.unwrap();
    }
}
