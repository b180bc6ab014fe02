//! Opening a record without logging (`Vault::open_record`, then `Vault::log_read`) and
//! listing titles (`Vault::titles`): issue 12 points 8 and 10. A caller that refuses a read
//! after looking (the CLI's `get --out` into existing files) leaves no entry in the audit
//! trail, and an owner's or grantee's listing shows titles without one.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use medseal::chain::{EmbeddedChain, Ledger};
use medseal::storage::{ContentStore, MemoryStore};
use medseal::{
    Attachment, AuditEvent, Authority, Config, Error, Member, NewRecord, PrivateKeySigner,
    RecordId, RecordInfo, TITLES_DIR, Vault,
};
use rand_core::OsRng;

fn reads(trail: &[medseal::AuditEntry]) -> usize {
    trail
        .iter()
        .filter(|e| matches!(e.event, AuditEvent::AccessLogged { .. }))
        .count()
}

async fn reads_of(vault: &Vault, record: RecordId) -> usize {
    reads(&vault.audit(record).await.unwrap())
}

fn issue(authority: &Authority, name: &str, attrs: &[&str]) -> Member {
    authority
        .issue(
            name,
            attrs,
            medseal::Validity::months_from_now(12),
            PrivateKeySigner::random(),
            &mut OsRng,
        )
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opening_logs_nothing_until_the_read_is_logged() {
    let dir = tempfile::tempdir().unwrap();
    let mut vault = Vault::open_with(dir.path(), &Config::embedded())
        .await
        .unwrap();
    let authority = Authority::setup(&mut OsRng);
    vault.install_authority(authority.public_key()).unwrap();
    let owner = issue(&authority, "dr. ada", &["role:doctor"]);
    let grantee = issue(&authority, "sam", &["role:nurse"]);
    let colleague = issue(&authority, "dr. lee", &["role:doctor"]);
    let outsider = issue(&authority, "rui", &["role:researcher"]);
    vault.adopt_authority(&authority).await.unwrap();
    vault.register_member(&authority, &grantee).await.unwrap();

    let put =
        vault
            .put(
                &owner,
                NewRecord::new("ECG report", "role:doctor".parse().unwrap()).attach(
                    Attachment::bytes("ecg.txt", "text/plain", &b"sinus rhythm"[..]),
                ),
            )
            .await
            .unwrap();
    let record = put.record;
    vault
        .share(&owner, record, grantee.address())
        .await
        .unwrap();
    assert_eq!(reads_of(&vault, record).await, 0);

    // Opened, attachments readable, nothing logged.
    let opened = vault.open_record(&owner, record).await.unwrap();
    assert_eq!(opened.name, "ECG report");
    assert_eq!(
        vault.read_attachment_bytes(&opened, 0).await.unwrap(),
        b"sinus rhythm"
    );
    assert_eq!(reads_of(&vault, record).await, 0);
    // Logged when the caller says so: owner and grantee can log, an attribute holder
    // without a grant cannot (the chain refuses), and is told so.
    assert!(vault.log_read(&owner, &opened).await.unwrap());
    assert_eq!(reads_of(&vault, record).await, 1);
    let as_grantee = vault.open_record(&grantee, record).await.unwrap();
    assert!(vault.log_read(&grantee, &as_grantee).await.unwrap());
    let as_colleague = vault.open_record(&colleague, record).await.unwrap();
    assert!(!vault.log_read(&colleague, &as_colleague).await.unwrap());
    assert_eq!(reads_of(&vault, record).await, 2);
    // `get` is both steps.
    vault.get(&owner, record).await.unwrap();
    assert_eq!(reads_of(&vault, record).await, 3);

    // Titles for the owner's and the grantee's listings, without a log entry.
    let owned = vault.records_of(owner.address()).await.unwrap();
    assert_eq!(titles(&vault, &owner, &owned).await, ["ECG report"]);
    let shared = vault.shared_with(grantee.address()).await.unwrap();
    assert_eq!(titles(&vault, &grantee, &shared).await, ["ECG report"]);
    assert_eq!(reads_of(&vault, record).await, 3);
    // Whoever may not read the record gets no title either.
    let denied = vault.titles(&outsider, &owned).await;
    assert!(
        matches!(&denied[..], [Err(Error::AccessDenied { record: r })] if *r == record),
        "{denied:?}"
    );
    assert!(matches!(
        vault.open_record(&outsider, record).await,
        Err(Error::AccessDenied { .. })
    ));
}

async fn titles(vault: &Vault, reader: &Member, infos: &[RecordInfo]) -> Vec<String> {
    let titles = vault.titles(reader, infos).await;
    titles.into_iter().map(Result::unwrap).collect()
}

/// The titles a listing shows come from the member's title cache once known (written at
/// put for the owner, at the first opening for a grantee): the next listing opens no
/// manifest, so it answers even from a store that lost them. The cache holds no title in
/// clear and one member's cache does not serve another.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listings_reuse_known_titles() {
    let dir = tempfile::tempdir().unwrap();
    let authority = Authority::setup(&mut OsRng);
    let owner = issue(&authority, "dr. ada", &["role:doctor"]);
    let grantee = issue(&authority, "sam", &["role:nurse"]);
    let ledger: Arc<dyn Ledger> =
        Arc::new(EmbeddedChain::in_memory(PrivateKeySigner::random()).unwrap());
    let vault_over = |store: Arc<dyn ContentStore>| {
        let mut vault = Vault::with_backends(dir.path(), store, Arc::clone(&ledger)).unwrap();
        vault.install_authority(authority.public_key()).unwrap();
        vault
    };
    let vault = vault_over(Arc::new(MemoryStore::new()));
    vault.adopt_authority(&authority).await.unwrap();
    vault.register_member(&authority, &grantee).await.unwrap();
    let mut ids = Vec::new();
    for name in ["ECG report", "Chest X-ray"] {
        let record = NewRecord::new(name, "role:doctor".parse().unwrap());
        ids.push(vault.put(&owner, record).await.unwrap().record);
    }
    vault
        .share(&owner, ids[1], grantee.address())
        .await
        .unwrap();
    let owned = vault.records_of(owner.address()).await.unwrap();
    let shared = vault.shared_with(grantee.address()).await.unwrap();
    assert_eq!(titles(&vault, &grantee, &shared).await, ["Chest X-ray"]);

    // The same chain and data directory over an empty store: only the caches can answer.
    let bare = vault_over(Arc::new(MemoryStore::new()));
    assert_eq!(
        titles(&bare, &owner, &owned).await,
        ["ECG report", "Chest X-ray"]
    );
    assert_eq!(titles(&bare, &grantee, &shared).await, ["Chest X-ray"]);
    // Another member's cache does not answer for the owner's records.
    let other = issue(&authority, "dr. lee", &["role:doctor"]);
    assert!(bare.titles(&other, &owned).await.iter().all(Result::is_err));

    let cache = std::fs::read(
        dir.path()
            .join(TITLES_DIR)
            .join(format!("{:x}", owner.address())),
    )
    .unwrap();
    assert!(!cache.windows(10).any(|w| w == b"ECG report"));
    assert!(!String::from_utf8_lossy(&cache).contains(&hex::encode("ECG report")));

    // A listing keeps what it read and then reads only what was appended since: a record
    // another process (the first vault) stores afterwards shows in the bare vault's next
    // listing, from the appended line alone (its manifest is not in the bare store).
    let later = vault
        .put(
            &owner,
            NewRecord::new("Echo", "role:doctor".parse().unwrap()),
        )
        .await
        .unwrap()
        .record;
    let owned = vault.records_of(owner.address()).await.unwrap();
    assert_eq!(owned.last().unwrap().record, later);
    assert_eq!(
        titles(&bare, &owner, &owned).await,
        ["ECG report", "Chest X-ray", "Echo"]
    );
    // A cache file replaced by a shorter one (deleted, rewritten) is read again from the
    // start: only what it holds now is known.
    let path = dir
        .path()
        .join(TITLES_DIR)
        .join(format!("{:x}", owner.address()));
    let text = std::fs::read(&path).unwrap();
    let first_line = text.iter().position(|&b| b == b'\n').unwrap() + 1;
    std::fs::write(&path, &text[..first_line]).unwrap();
    let listed = bare.titles(&owner, &owned).await;
    assert_eq!(listed.iter().filter(|t| t.is_ok()).count(), 1);
}
