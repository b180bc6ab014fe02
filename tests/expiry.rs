//! Keys that expire (issue 13, item 3): a key valid through a month reads what was
//! created (or shared with it) up to that month, not later; renewal is a fresh key from
//! the authority; search follows the same rule through dated partition epochs. The vault's
//! clock is fixed per step (`Vault::set_clock`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use medseal::abe::codec::{Reader, Writer};
use medseal::abe::lsss::Lsss;
use medseal::abe::{AttributeSet, Encoding as _, Fame, Policy, Scheme, fame};
use medseal::index::sse::Capsule;
use medseal::storage::Cid;
use medseal::{
    Authority, Clock, Config, Error, InvalidInput, Keyword, Member, Month, NewRecord,
    PrivateKeySigner, RecordId, Standing, Validity, Vault, id_attribute,
};
use rand_core::OsRng;

fn month(text: &str) -> Month {
    text.parse().unwrap()
}

fn through(text: &str) -> Validity {
    Validity::until(month(text))
}

struct Setup {
    _dir: tempfile::TempDir,
    vault: Vault,
    authority: Authority,
    /// Owner of every record, valid for decades.
    ada: Member,
    /// A nurse whose key is valid through 2027-03.
    sam: Member,
}

async fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let mut vault = Vault::open_with(dir.path(), &Config::embedded())
        .await
        .unwrap();
    let authority = Authority::setup(&mut OsRng);
    vault.install_authority(authority.public_key()).unwrap();
    let issue = |name: &str, attrs: &[&str], validity| {
        authority
            .issue(
                name,
                attrs,
                validity,
                PrivateKeySigner::random(),
                &mut OsRng,
            )
            .unwrap()
    };
    let ada = issue("dr. ada", &["role:doctor"], through("2060-12"));
    let sam = issue("sam", &["role:nurse"], through("2027-03"));
    vault.adopt_authority(&authority).await.unwrap();
    for member in [&ada, &sam] {
        vault.register_member(&authority, member).await.unwrap();
    }
    Setup {
        _dir: dir,
        vault,
        authority,
        ada,
        sam,
    }
}

impl Setup {
    async fn put_in(&mut self, when: &str, name: &str, policy: &str) -> RecordId {
        self.vault.set_clock(Clock::fixed(month(when)));
        let record = NewRecord::new(name, policy.parse().unwrap());
        self.vault.put(&self.ada, record).await.unwrap().record
    }

    async fn put_indexed(&mut self, when: &str, name: &str) -> RecordId {
        self.vault.set_clock(Clock::fixed(month(when)));
        let record = NewRecord::new(name, "role:nurse".parse().unwrap())
            .keyword(Keyword::parse("icd10:I10").unwrap());
        self.vault.put(&self.ada, record).await.unwrap().record
    }

    async fn share_in(&mut self, when: &str, record: RecordId, with: &Member) {
        self.vault.set_clock(Clock::fixed(month(when)));
        self.vault
            .share(&self.ada, record, with.address())
            .await
            .unwrap();
    }
}

fn assert_expired(result: Result<medseal::OpenedRecord, Error>, needed: &str, key: Option<&str>) {
    match result {
        Err(e @ Error::KeyExpired { .. }) => {
            let Error::KeyExpired {
                needed: got,
                valid_through,
                ..
            } = &e
            else {
                unreachable!()
            };
            assert_eq!(*got, month(needed));
            assert_eq!(*valid_through, key.map(through));
            assert!(
                e.to_string().contains(
                    "the key has expired or predates expiry: ask the authority to renew it"
                ),
                "{e}"
            );
        }
        other => panic!("expected KeyExpired, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_reads_records_up_to_its_last_month_and_renewal_reads_the_rest() {
    let mut s = setup().await;
    let early = s.put_in("2026-01", "early", "role:nurse").await;
    let march = s.put_in("2027-03", "march", "role:nurse").await;
    let april = s.put_in("2027-04", "april", "role:nurse").await;
    let later = s.put_in("2031-02", "later", "role:nurse").await;

    for record in [early, march] {
        assert!(s.vault.get(&s.sam, record).await.is_ok());
    }
    assert_expired(s.vault.get(&s.sam, april).await, "2027-04", Some("2027-03"));
    assert_expired(s.vault.get(&s.sam, later).await, "2031-02", Some("2027-03"));
    // Whoever lacks the attributes is denied as before, not told to renew.
    let rui = s
        .authority
        .issue(
            "rui",
            ["role:researcher"],
            through("2060-12"),
            PrivateKeySigner::random(),
            &mut OsRng,
        )
        .unwrap();
    assert!(matches!(
        s.vault.get(&rui, april).await,
        Err(Error::AccessDenied { .. })
    ));
    // The owner's clause is not dated: an owner reads its records whatever its validity.
    let old_owner = s
        .authority
        .renew(&s.ada, through("2026-06"), &mut OsRng)
        .unwrap();
    assert!(s.vault.get(&old_owner, later).await.is_ok());

    // Renewal: the same member with a new validity reads old and new records.
    let renewed = s
        .authority
        .renew(&s.sam, through("2028-12"), &mut OsRng)
        .unwrap();
    assert_eq!(renewed.address(), s.sam.address());
    for record in [early, march, april] {
        assert!(s.vault.get(&renewed, record).await.is_ok());
    }
    assert_expired(
        s.vault.get(&renewed, later).await,
        "2031-02",
        Some("2028-12"),
    );
    // The old key keeps its own validity.
    assert!(s.vault.get(&s.sam, march).await.is_ok());
    assert!(s.vault.get(&s.sam, april).await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_share_made_after_a_key_expired_is_unreadable_with_it() {
    let mut s = setup().await;
    let lee = s
        .authority
        .issue(
            "dr. lee",
            ["role:surgeon"],
            through("2060-12"),
            PrivateKeySigner::random(),
            &mut OsRng,
        )
        .unwrap();
    s.vault.register_member(&s.authority, &lee).await.unwrap();
    // Records only doctors read by attributes; the nurse only through a share.
    let shared_in_time = s.put_in("2027-01", "in time", "role:doctor").await;
    let shared_late = s.put_in("2027-01", "late", "role:doctor").await;
    let sam_member = Member::from_bytes(&s.sam.to_bytes()).unwrap();
    s.share_in("2027-02", shared_in_time, &sam_member).await;
    // The registry refuses a share with a member expired by the vault's clock...
    s.vault.set_clock(Clock::fixed(month("2027-05")));
    let refused = s
        .vault
        .share(&s.ada, shared_late, s.sam.address())
        .await
        .unwrap_err();
    assert!(
        matches!(
            refused,
            Error::NotAMember {
                member,
                standing: Standing::Expired { through },
            } if member == s.sam.address() && through == month("2027-03")
        ),
        "{refused:?}"
    );
    assert!(
        refused.to_string().contains("valid through 2027-03"),
        "{refused}"
    );
    // ...and when the registry lags behind (here: a registration claiming a later
    // validity than the key has), the key's own validity still keeps it out.
    s.vault
        .ledger()
        .for_signer(s.authority.chain_signer())
        .register_member(
            s.sam.address(),
            "sam",
            s.sam.attributes_digest(),
            &s.sam.own_attributes(),
            Some(month("2060-12").number()),
        )
        .await
        .unwrap();
    s.share_in("2027-05", shared_late, &sam_member).await;
    assert!(s.vault.get(&s.sam, shared_in_time).await.is_ok());
    assert_expired(
        s.vault.get(&s.sam, shared_late).await,
        "2027-05",
        Some("2027-03"),
    );

    // Re-wrapping for another grantee keeps the creation month and the nurse's share
    // month; so does revoking that grantee (a new record key, re-sealed).
    s.share_in("2027-09", shared_in_time, &lee).await;
    let opened = s.vault.get(&lee, shared_in_time).await.unwrap();
    let capsule = opened.capsule_policy.to_string();
    for clause in [
        "valid-month:2027-01",
        "valid-month:2027-02",
        "valid-month:2027-09",
    ] {
        assert!(capsule.contains(clause), "{clause} in {capsule}");
    }
    assert!(s.vault.get(&s.sam, shared_in_time).await.is_ok());
    s.vault.set_clock(Clock::fixed(month("2027-10")));
    s.vault
        .revoke(&s.ada, shared_in_time, lee.address())
        .await
        .unwrap();
    let after = s.vault.get(&s.sam, shared_in_time).await.unwrap();
    let capsule = after.capsule_policy.to_string();
    assert!(capsule.contains("valid-month:2027-01") && capsule.contains("valid-month:2027-02"));
    assert!(!capsule.contains(&id_attribute(lee.address())), "{capsule}");
    assert!(s.vault.get(&lee, shared_in_time).await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_an_expired_key_cannot_open_epochs_started_after_it_expired() {
    let mut s = setup().await;
    let march = s.put_indexed("2027-03", "march").await;
    let march_too = s.put_indexed("2027-03", "march too").await;
    let april = s.put_indexed("2027-04", "april").await;
    let april_too = s.put_indexed("2027-04", "april too").await;
    // One epoch per month the owner put in (not one per put).
    let published = s
        .vault
        .ledger()
        .capsules(Some(s.ada.address()))
        .await
        .unwrap();
    let epochs: Vec<u64> = published.iter().map(|c| c.epoch).collect();
    assert_eq!(epochs, [0, 1]);
    // Each partition capsule is the base policy and its epoch's month, or the owner:
    // 3 rows more.
    for (entry, when) in published.iter().zip(["2027-03", "2027-04"]) {
        let cid: Cid = entry.capsule_cid.parse().unwrap();
        let capsule = Capsule::from_bytes(&s.vault.store().get(&cid).await.unwrap()).unwrap();
        let policy = capsule.policy().unwrap();
        let base: Policy = "role:nurse".parse().unwrap();
        assert_eq!(rows(&policy), rows(&base) + 3);
        let owner = Policy::attribute(&medseal::id_attribute(s.ada.address())).unwrap();
        assert_eq!(
            policy,
            Policy::or(vec![
                Policy::and(vec![base, month(when).clause()]).unwrap(),
                owner
            ])
            .unwrap()
        );
    }

    let keyword = Keyword::parse("icd10:I10").unwrap();
    let found = s.vault.search(&s.sam, &keyword).await.unwrap();
    assert_eq!(found.records(), [march, march_too]);
    assert!(found.rejected.is_empty());
    // The renewed key (same member, same vault and key cache file) finds all of them.
    let renewed = s
        .authority
        .renew(&s.sam, through("2027-12"), &mut OsRng)
        .unwrap();
    let found = s.vault.search(&renewed, &keyword).await.unwrap();
    assert_eq!(found.records(), [march, march_too, april, april_too]);
    // And the expired key, searching again, still finds the older entries.
    let found = s.vault.search(&s.sam, &keyword).await.unwrap();
    assert_eq!(found.records(), [march, march_too]);
    // The owner (who does not hold the base attributes) reads what it indexed by id.
    assert!(s.vault.get(&s.ada, april).await.is_ok());
}

fn rows(policy: &Policy) -> usize {
    Lsss::<blstrs::Scalar>::from_policy(policy).rows().len()
}

/// The 2-row bound, counted on the LSSS of real capsule policies.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expiry_adds_two_lsss_rows_per_dated_clause() {
    let mut s = setup().await;
    let base = "role:doctor and (dept:cardiology or level >= 3)";
    let record = s.put_in("2027-03", "r", base).await;
    let base: Policy = base.parse().unwrap();
    let opened = s.vault.get(&s.ada, record).await.unwrap();
    // base + V (2) + id:owner (1).
    assert_eq!(rows(&opened.capsule_policy), rows(&base) + 2 + 1);
    let sam = Member::from_bytes(&s.sam.to_bytes()).unwrap();
    s.share_in("2027-03", record, &sam).await;
    let opened = s.vault.get(&s.ada, record).await.unwrap();
    // ... + id:sam (1) and its share month (2).
    assert_eq!(rows(&opened.capsule_policy), rows(&base) + 2 + 1 + 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reserved_validity_names_are_refused_in_policies_and_keys() {
    let mut s = setup().await;
    s.vault.set_clock(Clock::fixed(month("2027-03")));
    for policy in [
        "role:nurse and valid-month:2030-01",
        "valid-year:2030 or role:nurse",
        "2 of (a, b, valid-year >= 2030)",
    ] {
        let record = NewRecord::new("r", policy.parse().unwrap());
        let result = s.vault.put(&s.ada, record).await;
        assert!(
            matches!(
                result,
                Err(Error::InvalidInput(InvalidInput::ReservedAttribute { .. }))
            ),
            "{policy}: {result:?}"
        );
    }
    for attr in ["valid-year:2099", "valid-month:2099-12", "valid-month=3"] {
        let result = s.authority.issue(
            "x",
            ["role:nurse", attr],
            through("2027-03"),
            PrivateKeySigner::random(),
            &mut OsRng,
        );
        assert!(
            matches!(
                result,
                Err(Error::InvalidInput(InvalidInput::ReservedAttribute { .. }))
            ),
            "{attr}"
        );
    }
}

/// A key issued before keys carried a validity (no `valid-*` attributes; built here as
/// the authority built keys then) reads nothing created since, and is told why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_from_before_expiry_is_told_to_renew() {
    let mut s = setup().await;
    let record = s.put_in("2027-03", "r", "role:nurse").await;
    let signer = PrivateKeySigner::random();
    let legacy = legacy_member(&s.authority, "old sam", &["role:nurse"], &signer);
    assert_eq!(legacy.validity(), None);
    assert_expired(s.vault.get(&legacy, record).await, "2027-03", None);
    let renewed = s
        .authority
        .renew(&legacy, through("2027-03"), &mut OsRng)
        .unwrap();
    assert_eq!(renewed.own_attributes(), ["role:nurse"]);
    assert!(s.vault.get(&renewed, record).await.is_ok());
}

fn legacy_member(
    authority: &Authority,
    name: &str,
    attrs: &[&str],
    signer: &PrivateKeySigner,
) -> Member {
    let bytes = authority.to_bytes();
    let mut r = Reader::new(&bytes, *b"MSAU", 1).unwrap();
    let pk = fame::PublicKey::from_bytes(r.bytes("pk", 1 << 20).unwrap()).unwrap();
    let msk = fame::MasterKey::from_bytes(r.bytes("msk", 1 << 20).unwrap()).unwrap();
    let mut set = AttributeSet::parse(attrs).unwrap();
    set.insert(&id_attribute(signer.address())).unwrap();
    let key = Fame::keygen(&pk, &msk, &set, &mut OsRng).unwrap();
    let mut w = Writer::new(*b"MSMK", 1);
    w.str(name)
        .bytes(&signer.to_bytes().0)
        .bytes(&key.to_bytes());
    Member::from_bytes(&w.finish()).unwrap()
}
