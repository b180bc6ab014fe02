//! The member registry wired into the vault (issue 13, items 2 and 4): the registry's
//! authority adopted by the attribute authority, registration and listing, refusal of
//! unregistered, expired and revoked addresses, records encrypted at the chain's current
//! attribute versions, revocation with renewal of the affected members, and the owner's
//! re-wrap. Embedded backends.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use medseal::chain::{EmbeddedChain, MemberStatus};
use medseal::storage::MemoryStore;
use medseal::{
    Adoption, Authority, Clock, Config, Error, InvalidInput, Keyword, Member, Month, NewRecord,
    PrivateKeySigner, RecordId, Standing, Validity, Vault,
};
use rand_core::OsRng;

fn month(text: &str) -> Month {
    text.parse().unwrap()
}

fn issue(authority: &Authority, name: &str, attrs: &[&str], through: &str) -> Member {
    authority
        .issue(
            name,
            attrs,
            Validity::until(month(through)),
            PrivateKeySigner::random(),
            &mut OsRng,
        )
        .unwrap()
}

async fn vault_in(dir: &std::path::Path, authority: &Authority) -> Vault {
    let mut vault = Vault::open_with(dir, &Config::embedded()).await.unwrap();
    vault.install_authority(authority.public_key()).unwrap();
    vault.set_clock(Clock::fixed(month("2027-01")));
    vault
}

fn not_a_member(result: medseal::Result<()>, who: &Member, expected: Standing) {
    match result {
        Err(Error::NotAMember { member, standing }) => {
            assert_eq!(member, who.address());
            assert_eq!(standing, expected);
        }
        other => panic!("expected NotAMember({expected:?}), got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_are_registered_listed_and_others_refused() {
    let dir = tempfile::tempdir().unwrap();
    let authority = Authority::setup(&mut OsRng);
    let mut vault = vault_in(dir.path(), &authority).await;
    let ada = issue(&authority, "dr. ada", &["role:doctor"], "2060-12");
    let sam = issue(&authority, "sam", &["role:nurse", "dept:icu"], "2027-03");
    let rui = issue(&authority, "rui", &["role:researcher"], "2060-12");
    let kim = issue(&authority, "kim", &["role:nurse"], "2060-12");

    // Before adoption the authority's account cannot register.
    assert!(vault.register_member(&authority, &ada).await.is_err());
    assert!(matches!(
        vault.adopt_authority(&authority).await.unwrap(),
        Adoption::Transferred(_)
    ));
    assert_eq!(
        vault.adopt_authority(&authority).await.unwrap(),
        Adoption::AlreadyAdopted
    );
    assert_eq!(
        vault.ledger().authority().await.unwrap(),
        authority.chain_signer().address()
    );
    // Another authority cannot take the registry over.
    let other = Authority::setup(&mut OsRng);
    assert!(matches!(
        vault.adopt_authority(&other).await,
        Err(Error::InvalidInput(InvalidInput::RegistryAuthority { .. }))
    ));

    for member in [&ada, &sam, &kim] {
        vault.register_member(&authority, member).await.unwrap();
    }
    let members = vault.members().await.unwrap();
    let names: Vec<&str> = members.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(names, ["dr. ada", "sam", "kim"]);
    let sam_entry = &members[1];
    assert_eq!(sam_entry.member, sam.address());
    assert_eq!(sam_entry.attributes, sam.own_attributes());
    assert_eq!(sam_entry.attributes_digest, sam.attributes_digest());
    assert_eq!(sam_entry.valid_through, Some(month("2027-03").number()));
    assert_eq!(sam_entry.registrar, authority.chain_signer().address());

    let record = vault
        .put(&ada, NewRecord::new("note", "role:doctor".parse().unwrap()))
        .await
        .unwrap()
        .record;
    // Unregistered: refused, nothing granted.
    not_a_member(
        vault.share(&ada, record, rui.address()).await,
        &rui,
        Standing::Unregistered,
    );
    assert!(vault.shared_with(rui.address()).await.unwrap().is_empty());
    // A request from an unregistered address cannot be approved (it can be denied).
    vault.request_access(&rui, record).await.unwrap();
    not_a_member(
        vault
            .answer_request(&ada, record, rui.address(), true)
            .await,
        &rui,
        Standing::Unregistered,
    );
    vault
        .answer_request(&ada, record, rui.address(), false)
        .await
        .unwrap();
    // Registered and valid: shared.
    vault.share(&ada, record, sam.address()).await.unwrap();
    // Expired by the vault's clock.
    vault.set_clock(Clock::fixed(month("2027-04")));
    let expired = vault.share(&ada, record, sam.address()).await;
    assert!(
        expired
            .as_ref()
            .is_err_and(|e| e.to_string().contains("expired (valid through 2027-03)")),
        "{expired:?}"
    );
    not_a_member(
        expired,
        &sam,
        Standing::Expired {
            through: month("2027-03"),
        },
    );
    // Revoked.
    vault
        .revoke_member(&authority, kim.address(), "left the hospital")
        .await
        .unwrap();
    not_a_member(
        vault.share(&ada, record, kim.address()).await,
        &kim,
        Standing::Revoked,
    );
    let kim_entry = vault
        .members()
        .await
        .unwrap()
        .into_iter()
        .find(|m| m.member == kim.address())
        .unwrap();
    assert_eq!(kim_entry.revoked.unwrap().reason, "left the hospital");
    assert_eq!(
        vault.ledger().member(kim.address()).await.unwrap().status,
        MemberStatus::Revoked
    );
    // Revoking an unregistered address is a typed error.
    assert!(matches!(
        vault.revoke_member(&authority, rui.address(), "x").await,
        Err(Error::NotAMember {
            standing: Standing::Unregistered,
            ..
        })
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_appointed_registrar_registers_members() {
    let dir = tempfile::tempdir().unwrap();
    let authority = Authority::setup(&mut OsRng);
    // Over explicit backends: the vault's sender is the chain's deployer.
    let chain = EmbeddedChain::in_memory(PrivateKeySigner::random()).unwrap();
    let mut vault =
        Vault::with_backends(dir.path(), Arc::new(MemoryStore::new()), Arc::new(chain)).unwrap();
    vault.install_authority(authority.public_key()).unwrap();
    vault.adopt_authority(&authority).await.unwrap();
    let admin = issue(&authority, "st. mary admin", &["role:admin"], "2060-12");
    let sam = issue(&authority, "sam", &["role:nurse"], "2060-12");
    assert!(vault.register_member_as(&admin, &sam).await.is_err());
    vault
        .appoint_registrar(&authority, admin.address(), "St. Mary")
        .await
        .unwrap();
    vault.register_member_as(&admin, &sam).await.unwrap();
    let members = vault.members().await.unwrap();
    assert_eq!(members.len(), 1);
    assert_eq!(members[0].registrar, admin.address());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_key_reads_nothing_new_and_after_rewrap_nothing_old() {
    let dir = tempfile::tempdir().unwrap();
    let authority = Authority::setup(&mut OsRng);
    let vault = vault_in(dir.path(), &authority).await;
    vault.adopt_authority(&authority).await.unwrap();
    let ada = issue(&authority, "dr. ada", &["role:doctor"], "2060-12");
    let sam = issue(&authority, "sam", &["role:nurse", "dept:icu"], "2060-12");
    let kim = issue(&authority, "kim", &["role:nurse"], "2060-12");
    let lee = issue(&authority, "dr. lee", &["role:doctor"], "2060-12");
    for member in [&ada, &sam, &kim, &lee] {
        vault.register_member(&authority, member).await.unwrap();
    }
    let policy = "role:nurse or role:doctor";
    let keyword = Keyword::parse("icd10:I10").unwrap();
    let put =
        |name: &'static str| NewRecord::new(name, policy.parse().unwrap()).keyword(keyword.clone());
    let old = vault.put(&ada, put("old")).await.unwrap().record;
    assert!(vault.get(&sam, old).await.is_ok());

    let report = vault
        .revoke_member(&authority, sam.address(), "left the hospital")
        .await
        .unwrap();
    assert_eq!(report.bumped.get("role:nurse").unwrap(), 1);
    assert_eq!(report.bumped.get("dept:icu").unwrap(), 1);
    assert_eq!(report.bumped.get("role:doctor").unwrap(), 0);
    let affected: Vec<_> = report.affected.iter().map(|m| m.member).collect();
    assert_eq!(affected, [kim.address()], "only the other nurse is renewed");

    // A record put after the revocation is encrypted at the new version...
    let new = vault.put(&ada, put("new")).await.unwrap().record;
    let opened = vault.get(&ada, new).await.unwrap();
    let capsule = opened.capsule_policy.to_string();
    assert!(capsule.contains("role.v1:nurse"), "{capsule}");
    assert!(!capsule.contains("role:nurse"), "{capsule}");
    // ...so the revoked key cannot open it, nor can the nurse's old key...
    for reader in [&sam, &kim] {
        assert!(
            matches!(
                vault.get(reader, new).await,
                Err(Error::AccessDenied { record }) if record == new
            ),
            "{}",
            reader.name()
        );
    }
    // ...while the renewed nurse does, and a doctor's untouched key still does.
    let kim2 = vault
        .renew_member(&authority, &kim, Validity::until(month("2060-12")))
        .await
        .unwrap();
    assert_eq!(kim2.versions().get("role:nurse").unwrap(), 1);
    assert!(vault.get(&kim2, new).await.is_ok());
    assert!(vault.get(&kim2, old).await.is_ok());
    assert!(vault.get(&lee, new).await.is_ok());
    // Search: the renewed key finds old and new records across the bump (two partition
    // epochs); the revoked key finds only the old one.
    let found = vault.search(&kim2, &keyword).await.unwrap();
    assert!(found.rejected.is_empty(), "{:?}", found.rejected);
    assert_eq!(found.records(), [old, new]);
    assert_eq!(vault.search(&sam, &keyword).await.unwrap().records(), [old]);

    // The revoked key still opens the old record until the owner re-wraps it.
    assert!(vault.get(&sam, old).await.is_ok());
    let rewrap = vault.rewrap_records(&ada).await.unwrap();
    assert_eq!(rewrap.rewrapped, [old]);
    assert_eq!(rewrap.up_to_date, 1);
    assert!(matches!(
        vault.get(&sam, old).await,
        Err(Error::AccessDenied { .. })
    ));
    for reader in [&kim2, &lee, &ada] {
        assert!(vault.get(reader, old).await.is_ok(), "{}", reader.name());
    }
    // Running it again finds nothing to do (resumable).
    let again = vault.rewrap_records(&ada).await.unwrap();
    assert_eq!(again.rewrapped, Vec::<RecordId>::new());
    assert_eq!(again.up_to_date, 2);
    assert_eq!(
        vault.search(&kim2, &keyword).await.unwrap().records(),
        [old, new]
    );
}

/// The registry's authority role survives a reopen of the vault (it lives on chain, in
/// the embedded chain's journal): adopting again is a no-op, the authority registers and
/// revokes, and the registry lists what was registered before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_adopted_authority_survives_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let authority = Authority::setup(&mut OsRng);
    let ada = issue(&authority, "dr. ada", &["role:doctor"], "2060-12");
    let sam = issue(&authority, "sam", &["role:nurse"], "2060-12");
    {
        let vault = vault_in(dir.path(), &authority).await;
        assert!(matches!(
            vault.adopt_authority(&authority).await.unwrap(),
            Adoption::Transferred(_)
        ));
        vault.register_member(&authority, &ada).await.unwrap();
    }
    let vault = vault_in(dir.path(), &authority).await;
    assert_eq!(
        vault.adopt_authority(&authority).await.unwrap(),
        Adoption::AlreadyAdopted
    );
    assert_eq!(
        vault.ledger().authority().await.unwrap(),
        authority.chain_signer().address()
    );
    vault.register_member(&authority, &sam).await.unwrap();
    let names: Vec<String> = vault
        .members()
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.name)
        .collect();
    assert_eq!(names, ["dr. ada", "sam"]);
    vault
        .revoke_member(&authority, sam.address(), "moved away")
        .await
        .unwrap();
    // Another authority still cannot take it over after the reopen.
    let other = Authority::setup(&mut OsRng);
    assert!(matches!(
        vault.adopt_authority(&other).await,
        Err(Error::InvalidInput(InvalidInput::RegistryAuthority { .. }))
    ));
    assert_eq!(
        vault.ledger().member(sam.address()).await.unwrap().status,
        MemberStatus::Revoked
    );
}

/// Records created after the revocation of an emergency (break-glass) key encrypt their
/// emergency clause at the new versions too: the revoked key cannot break the glass on
/// them, while a renewed emergency key can; before the revocation it could.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_emergency_key_cannot_break_the_glass_on_new_records() {
    let dir = tempfile::tempdir().unwrap();
    let authority = Authority::setup(&mut OsRng);
    let vault = vault_in(dir.path(), &authority).await;
    vault.adopt_authority(&authority).await.unwrap();
    let emergency = medseal::EMERGENCY_ATTRIBUTE;
    let ada = issue(
        &authority,
        "dr. ada",
        &["role:doctor", "dept:cardiology"],
        "2060-12",
    );
    let eve = issue(&authority, "dr. eve", &["dept:er", emergency], "2060-12");
    let tom = issue(&authority, "dr. tom", &["dept:er", emergency], "2060-12");
    for member in [&ada, &eve, &tom] {
        vault.register_member(&authority, member).await.unwrap();
    }
    let record = || {
        NewRecord::new("echo", "role:doctor and dept:cardiology".parse().unwrap())
            .emergency(emergency.parse().unwrap())
    };
    let before = vault.put(&ada, record()).await.unwrap().record;
    vault
        .get_emergency(&eve, before, "unconscious on arrival")
        .await
        .unwrap();
    let report = vault
        .revoke_member(&authority, eve.address(), "left the hospital")
        .await
        .unwrap();
    assert_eq!(report.bumped.get(emergency).unwrap(), 1);
    let affected: Vec<_> = report.affected.iter().map(|m| m.member).collect();
    assert_eq!(
        affected,
        [tom.address()],
        "dr. ada holds no attribute of dr. eve's"
    );
    let tom = vault
        .renew_member(&authority, &tom, Validity::until(month("2060-12")))
        .await
        .unwrap();
    let after = vault.put(&ada, record()).await.unwrap().record;
    assert!(matches!(
        vault.get_emergency(&eve, after, "again").await,
        Err(Error::AccessDenied { .. })
    ));
    vault
        .get_emergency(&tom, after, "chest pain, unresponsive")
        .await
        .unwrap();
}

/// Records stored after a revocation under a policy naming a bumped attribute are found by
/// search, as they are read: by their owner holding a key issued after the revocation, by
/// a reader whose renewed key satisfies the policy, by an owner whose key is not renewed
/// yet (its own records only); never by the revoked key. A record stored before and
/// re-wrapped stays found by the current keys.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_stored_after_a_revocation_are_found_at_the_new_versions() {
    let dir = tempfile::tempdir().unwrap();
    let authority = Authority::setup(&mut OsRng);
    let vault = vault_in(dir.path(), &authority).await;
    vault.adopt_authority(&authority).await.unwrap();
    let cardio = ["role:doctor", "dept:cardiology"];
    let ada = issue(&authority, "dr. ada", &cardio, "2060-12");
    let max = issue(&authority, "dr. max", &cardio, "2060-12");
    let sam = issue(
        &authority,
        "sam",
        &["role:nurse", "dept:cardiology"],
        "2060-12",
    );
    for member in [&ada, &max, &sam] {
        vault.register_member(&authority, member).await.unwrap();
    }
    let keyword = Keyword::parse("term:x").unwrap();
    let put = |name: &'static str| {
        NewRecord::new(name, "role:doctor and dept:cardiology".parse().unwrap())
            .keyword(keyword.clone())
    };
    let search = async |member: &Member| {
        let found = vault.search(member, &keyword).await.unwrap();
        assert!(found.rejected.is_empty(), "{:?}", found.rejected);
        found.records()
    };
    let old = vault.put(&ada, put("old")).await.unwrap().record;
    assert_eq!(search(&max).await, [old]);

    let report = vault
        .revoke_member(&authority, max.address(), "left the hospital")
        .await
        .unwrap();
    assert_eq!(report.bumped.get("role:doctor").unwrap(), 1);
    assert_eq!(report.bumped.get("dept:cardiology").unwrap(), 1);

    // A member keyed after the revocation (at the chain's versions) stores a record under
    // the bumped attributes and finds it, and the record stored before.
    let sol = vault
        .issue_member(
            &authority,
            "dr. sol",
            &cardio,
            Validity::until(month("2060-12")),
            PrivateKeySigner::random(),
        )
        .await
        .unwrap();
    vault.register_member(&authority, &sol).await.unwrap();
    assert_eq!(sol.versions().get("dept:cardiology").unwrap(), 1);
    assert_eq!(sol.versions().get("role:doctor").unwrap(), 1);
    let new = vault.put(&sol, put("new")).await.unwrap().record;
    assert!(vault.get(&sol, new).await.is_ok());
    assert_eq!(search(&sol).await, [old, new]);
    // An owner whose key is not renewed yet finds its own new record (it reads it too),
    // but not another owner's.
    let mid = vault.put(&ada, put("mid")).await.unwrap().record;
    assert!(vault.get(&ada, mid).await.is_ok());
    assert_eq!(search(&ada).await, [old, mid]);
    // The renewed key finds all, as does the new member's.
    let ada2 = vault
        .renew_member(&authority, &ada, Validity::until(month("2060-12")))
        .await
        .unwrap();
    assert_eq!(search(&ada2).await, [old, new, mid]);
    assert_eq!(search(&sol).await, [old, new, mid]);
    // The revoked key opens no partition epoch created after the revocation.
    assert_eq!(search(&max).await, [old]);
    for record in [new, mid] {
        assert!(matches!(
            vault.get(&max, record).await,
            Err(Error::AccessDenied { .. })
        ));
    }
    let published = vault.ledger().capsules(None).await.unwrap();
    assert_eq!(published.len(), 3, "ada: epochs 0 and 1; sol: epoch 0");

    // Re-wrapped, the record stored before is still found by the current keys, and no
    // longer read by the revoked key.
    assert_eq!(vault.rewrap_records(&ada2).await.unwrap().rewrapped, [old]);
    assert!(matches!(
        vault.get(&max, old).await,
        Err(Error::AccessDenied { .. })
    ));
    for reader in [&ada2, &sol] {
        assert_eq!(search(reader).await, [old, new, mid], "{}", reader.name());
        assert!(vault.get(reader, old).await.is_ok(), "{}", reader.name());
    }
}

/// A key issued at version 0 after a revocation bumped one of its attributes (what
/// `Authority::issue` gives) would neither open nor find anything stored under it since:
/// registering it is refused with a typed error; renewed (or issued by
/// `Vault::issue_member`) at the chain's versions, it registers. A key none of whose
/// attributes were bumped registers as before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_below_the_current_versions_is_not_registered() {
    let dir = tempfile::tempdir().unwrap();
    let authority = Authority::setup(&mut OsRng);
    let vault = vault_in(dir.path(), &authority).await;
    vault.adopt_authority(&authority).await.unwrap();
    let sam = issue(
        &authority,
        "sam",
        &["role:nurse", "dept:cardiology"],
        "2060-12",
    );
    vault.register_member(&authority, &sam).await.unwrap();
    vault
        .revoke_member(&authority, sam.address(), "x")
        .await
        .unwrap();
    let stale = issue(
        &authority,
        "dr. sol",
        &["role:doctor", "dept:cardiology"],
        "2060-12",
    );
    match vault.register_member(&authority, &stale).await {
        Err(Error::InvalidInput(InvalidInput::StaleAttributeVersion {
            member,
            attribute,
            key_version: 0,
            current_version: 1,
        })) => {
            assert_eq!(member, stale.address());
            assert_eq!(attribute, "dept:cardiology");
        }
        other => panic!("expected StaleAttributeVersion, got {other:?}"),
    }
    assert!(vault.members().await.unwrap().len() == 1);
    // A registrar is refused alike.
    let admin = issue(&authority, "admin", &["role:admin"], "2060-12");
    vault.register_member(&authority, &admin).await.unwrap();
    vault
        .appoint_registrar(&authority, admin.address(), "St. Mary")
        .await
        .unwrap();
    assert!(matches!(
        vault.register_member_as(&admin, &stale).await,
        Err(Error::InvalidInput(
            InvalidInput::StaleAttributeVersion { .. }
        ))
    ));
    // Renewed at the chain's versions, the same member registers.
    let renewed = vault
        .renew_member(&authority, &stale, Validity::until(month("2060-12")))
        .await
        .unwrap();
    assert_eq!(renewed.versions().get("dept:cardiology").unwrap(), 1);
    let names: Vec<String> = vault
        .members()
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.name)
        .collect();
    assert_eq!(names, ["sam", "admin", "dr. sol"]);
    // Bad input to issue_member is the issuer's typed error.
    assert!(matches!(
        vault
            .issue_member(
                &authority,
                "x",
                &["id:00"],
                Validity::until(month("2060-12")),
                PrivateKeySigner::random(),
            )
            .await,
        Err(Error::InvalidInput(InvalidInput::ReservedAttribute { .. }))
    ));
    assert_eq!(vault.members().await.unwrap().len(), 3);
}
