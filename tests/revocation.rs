//! Revocation by attribute versions (issue 13, item 4, key side), tested on real FAME keys
//! issued by an [`Authority`] and at the algebra level: besides the library's own "is the
//! policy satisfied" refusal, every attack re-encodes the attacker's key components under
//! the labels the new ciphertext asks for (a forged key the decoder accepts: it cannot
//! tell whose component a label's is) and runs the real decapsulation, which must miss
//! the KEM key. The collusion attack is the one of `medseal-abe`'s algebra tests: the
//! union of both keys' components, with the key-wide parts of either.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;

use medseal::abe::{AttributeSet, Encoding as _, Fame, KemKey, Policy, Scheme, fame};
use medseal::versions::{AttributeVersions, versioned_policy};
use medseal::{Authority, Member, Month, PrivateKeySigner, Validity, id_attribute};
use rand_core::OsRng;

/// Header of a FAME user key (`MSAB`, format, kind, scheme, curve).
const HEADER: usize = 8;
const G1: usize = 48;
const G2: usize = 96;

fn month(text: &str) -> Month {
    text.parse().unwrap()
}

fn through(text: &str) -> Validity {
    Validity::until(month(text))
}

fn issue(
    authority: &Authority,
    name: &str,
    attrs: &[&str],
    validity: Validity,
    versions: &AttributeVersions,
) -> Member {
    authority
        .issue_with_versions(
            name,
            attrs,
            validity,
            versions,
            PrivateKeySigner::random(),
            &mut OsRng,
        )
        .unwrap()
}

/// The policy of a record capsule made in `created` by `owner` (as the vault builds it):
/// `(base' and V(created)) or id:owner`, `base'` at the current versions.
fn record_policy(
    base: &str,
    versions: &AttributeVersions,
    created: Month,
    owner: &Member,
) -> Policy {
    let base = versioned_policy(&base.parse().unwrap(), versions).unwrap();
    Policy::or(vec![
        Policy::and(vec![base, created.clause()]).unwrap(),
        Policy::attribute(&id_attribute(owner.address())).unwrap(),
    ])
    .unwrap()
}

fn encrypt(authority: &Authority, policy: &Policy) -> (KemKey, fame::Ciphertext) {
    Fame::encapsulate(authority.public_key(), policy, &mut OsRng).unwrap()
}

fn opens(key: &fame::UserKey, (kem, ct): &(KemKey, fame::Ciphertext)) -> bool {
    matches!(Fame::decapsulate(key, ct), Ok(got) if got == *kem)
}

/// Whether decapsulation with `key` yields the KEM key, or is refused by the policy check
/// (public data) — `None` — or runs and misses it (`Some(false)`).
fn algebra(key: &fame::UserKey, (kem, ct): &(KemKey, fame::Ciphertext)) -> Option<bool> {
    match Fame::decapsulate(key, ct) {
        Ok(got) => Some(got == *kem),
        Err(medseal::abe::Error::PolicyNotSatisfied) => None,
        Err(_) => Some(false),
    }
}

/// A FAME user key taken apart: its label-wise components and key-wide parts.
struct Parts {
    header: Vec<u8>,
    sk0: Vec<u8>,
    sk_prime: Vec<u8>,
    components: BTreeMap<String, Vec<u8>>,
}

fn parts(key: &fame::UserKey) -> Parts {
    let bytes = key.to_bytes();
    let labels: Vec<&str> = Fame::attributes(key).labels().collect();
    let sk0_at = bytes.len() - G1 * 3 * (labels.len() + 1) - 3 * G2;
    let comps_at = sk0_at + 3 * G2;
    let components = labels
        .iter()
        .enumerate()
        .map(|(i, label)| {
            let at = comps_at + i * 3 * G1;
            ((*label).to_owned(), bytes[at..at + 3 * G1].to_vec())
        })
        .collect();
    Parts {
        header: bytes[..HEADER].to_vec(),
        sk0: bytes[sk0_at..comps_at].to_vec(),
        sk_prime: bytes[bytes.len() - 3 * G1..].to_vec(),
        components,
    }
}

/// Encodes a key claiming `items`, with the component of each label from `component`
/// and the key-wide parts (sk0, sk') of `base` — what an attacker can assemble from keys
/// it holds. The decoder accepts it (labels and component count agree).
fn forge(items: &[String], component: impl Fn(&str) -> Vec<u8>, base: &Parts) -> fame::UserKey {
    let attrs = AttributeSet::parse(items).unwrap();
    let mut out = base.header.clone();
    let canonical: Vec<String> = attrs.items().collect();
    out.extend_from_slice(&(canonical.len() as u32).to_be_bytes());
    for item in &canonical {
        out.extend_from_slice(&(item.len() as u32).to_be_bytes());
        out.extend_from_slice(item.as_bytes());
    }
    out.extend_from_slice(&base.sk0);
    for label in attrs.labels() {
        out.extend_from_slice(&component(label));
    }
    out.extend_from_slice(&base.sk_prime);
    fame::UserKey::from_bytes(&out).expect("the decoder accepts the forged key")
}

fn items(key: &fame::UserKey) -> Vec<String> {
    Fame::attributes(key).items().collect()
}

/// Relabels `key`: its component of label `from` is presented as `to`'s (for every
/// `(from, to)` pair), everything else as issued.
fn relabelled(key: &fame::UserKey, renames: &[(&str, &str)]) -> fame::UserKey {
    let p = parts(key);
    let mut claimed = items(key);
    for (from, to) in renames {
        if let Some(i) = claimed.iter().position(|x| x == from) {
            claimed[i] = (*to).to_owned();
        }
    }
    forge(
        &claimed,
        |label| {
            let source = renames
                .iter()
                .find(|(_, to)| *to == label)
                .map_or(label, |(from, _)| *from);
            p.components[source].clone()
        },
        &p,
    )
}

/// The hospital of the tests: an owner, nurse Nina (to be revoked), nurse Olga (shares
/// `role:nurse` with Nina), Dan in the ICU (shares `dept:icu`), Cara (no attribute in
/// common with Nina).
struct Ward {
    authority: Authority,
    owner: Member,
    nina: Member,
    olga: Member,
    dan: Member,
    cara: Member,
}

fn ward() -> Ward {
    let authority = Authority::setup(&mut OsRng);
    let none = AttributeVersions::new();
    let v = through("2040-12");
    Ward {
        owner: issue(
            &authority,
            "dr. owen",
            &["role:doctor", "dept:er"],
            v,
            &none,
        ),
        nina: issue(
            &authority,
            "nina",
            &["role:nurse", "dept:icu", "level=3"],
            v,
            &none,
        ),
        olga: issue(&authority, "olga", &["role:nurse", "dept:ward-3"], v, &none),
        dan: issue(&authority, "dan", &["role:doctor", "dept:icu"], v, &none),
        cara: issue(
            &authority,
            "cara",
            &["role:doctor", "dept:cardiology"],
            v,
            &none,
        ),
        authority,
    }
}

/// The versions after revoking `member` (each of its attributes bumped once).
fn bumped(authority: &Authority, member: &Member, from: &AttributeVersions) -> AttributeVersions {
    let mut next = from.clone();
    for unit in authority.revocation(member) {
        let v = from.get(&unit).unwrap();
        next.set(&unit, v + 1).unwrap();
    }
    next
}

#[test]
fn a_revoked_key_opens_nothing_created_after_the_revocation() {
    let w = ward();
    let none = AttributeVersions::new();
    let (before, after) = (month("2027-01"), month("2027-02"));
    let old = encrypt(
        &w.authority,
        &record_policy("role:nurse and dept:icu", &none, before, &w.owner),
    );
    assert!(opens(w.nina.key(), &old));

    let versions = bumped(&w.authority, &w.nina, &none);
    assert_eq!(
        versions.iter().collect::<Vec<_>>(),
        [("dept:icu", 1), ("level=*", 1), ("role:nurse", 1)]
    );
    let new = encrypt(
        &w.authority,
        &record_policy("role:nurse and dept:icu", &versions, after, &w.owner),
    );
    // The library refuses (public data) ...
    assert_eq!(algebra(w.nina.key(), &new), None);
    // ... and the algebra too: Nina's components presented as the new versions' labels.
    let forged = relabelled(
        w.nina.key(),
        &[("role:nurse", "role.v1:nurse"), ("dept:icu", "dept.v1:icu")],
    );
    assert_eq!(algebra(&forged, &new), Some(false));
    // The forgery technique is sound: relabelling nothing still opens what the key opens.
    assert_eq!(algebra(&relabelled(w.nina.key(), &[]), &old), Some(true));
    // Still reads what was created before.
    assert!(opens(w.nina.key(), &old));

    // A numeric attribute too: Nina's bits of `level=3` against `level.v1 >= 2`.
    let by_level = encrypt(
        &w.authority,
        &record_policy("level >= 2", &versions, after, &w.owner),
    );
    assert_eq!(algebra(w.nina.key(), &by_level), None);
    let bits: Vec<(String, String)> = Fame::attributes(w.nina.key())
        .labels()
        .filter(|l| l.starts_with("level#"))
        .map(|l| (l.to_owned(), l.replacen("level#", "level.v1#", 1)))
        .collect();
    let mut claimed = items(w.nina.key());
    claimed.push("level.v1=3".to_owned());
    let p = parts(w.nina.key());
    let forged = forge(
        &claimed,
        |label| {
            let source = bits
                .iter()
                .find(|(_, to)| to == label)
                .map_or(label, |(from, _)| from.as_str());
            p.components[source].clone()
        },
        &p,
    );
    assert_eq!(algebra(&forged, &by_level), Some(false));
}

#[test]
fn renewed_keys_of_remaining_holders_read_before_and_after() {
    let w = ward();
    let none = AttributeVersions::new();
    let versions = bumped(&w.authority, &w.nina, &none);
    let roster = [&w.owner, &w.nina, &w.olga, &w.dan, &w.cara]
        .map(|m| (m.name().to_owned(), m.own_attributes()));
    let affected = Authority::affected(roster, &w.authority.revocation(&w.nina)).unwrap();
    assert_eq!(affected, ["nina", "olga", "dan"]);

    let (before, after) = (month("2027-01"), month("2027-02"));
    for (member, base) in [
        (&w.olga, "role:nurse"),
        (&w.dan, "dept:icu and role:doctor"),
    ] {
        let old = encrypt(&w.authority, &record_policy(base, &none, before, &w.owner));
        let new = encrypt(
            &w.authority,
            &record_policy(base, &versions, after, &w.owner),
        );
        // The old key: the records before, not those after (it needs renewal).
        assert!(opens(member.key(), &old) && !opens(member.key(), &new));
        let renewed = w
            .authority
            .renew_with_versions(member, through("2040-12"), &versions, &mut OsRng)
            .unwrap();
        assert!(opens(renewed.key(), &old), "{}", member.name());
        assert!(opens(renewed.key(), &new), "{}", member.name());
        assert_eq!(renewed.own_attributes(), member.own_attributes());
        // And after a second bump, with a key renewed again, all three.
        let again = {
            let mut next = versions.clone();
            next.set("role:nurse", 2)
                .unwrap()
                .set("dept:icu", 2)
                .unwrap();
            next
        };
        let newer = encrypt(&w.authority, &record_policy(base, &again, after, &w.owner));
        assert!(!opens(renewed.key(), &newer));
        let twice = w
            .authority
            .renew_with_versions(&renewed, through("2040-12"), &again, &mut OsRng)
            .unwrap();
        for ct in [&old, &new, &newer] {
            assert!(opens(twice.key(), ct));
        }
    }
}

#[test]
fn members_whose_attributes_are_untouched_keep_their_keys() {
    let w = ward();
    let versions = bumped(&w.authority, &w.nina, &AttributeVersions::new());
    let after = month("2027-02");
    for base in [
        "role:doctor and dept:cardiology",
        "role:nurse or dept:cardiology",
        "2 of (role:doctor, dept:cardiology, dept:icu)",
    ] {
        let new = encrypt(
            &w.authority,
            &record_policy(base, &versions, after, &w.owner),
        );
        assert!(opens(w.cara.key(), &new), "{base}");
    }
    // The owner's clause is an `id:` attribute: never versioned.
    let new = encrypt(
        &w.authority,
        &record_policy("role:nurse", &versions, after, &w.owner),
    );
    assert!(opens(w.owner.key(), &new));
    assert!(!opens(w.nina.key(), &new));
}

#[test]
fn an_expired_key_is_refused_for_new_records_at_the_algebra_level() {
    let w = ward();
    let none = AttributeVersions::new();
    let sam = issue(
        &w.authority,
        "sam",
        &["role:nurse"],
        through("2027-03"),
        &none,
    );
    let old = encrypt(
        &w.authority,
        &record_policy("role:nurse", &none, month("2027-03"), &w.owner),
    );
    let new = encrypt(
        &w.authority,
        &record_policy("role:nurse", &none, month("2027-04"), &w.owner),
    );
    assert!(opens(sam.key(), &old));
    assert_eq!(algebra(sam.key(), &new), None);
    // Its March component presented as April's, or its 2026 one as 2027's.
    for (from, to) in [
        ("valid-month:2027-03", "valid-month:2027-04"),
        ("valid-year:2026", "valid-year:2027"),
    ] {
        let forged = relabelled(sam.key(), &[(from, to)]);
        assert_eq!(algebra(&forged, &new), Some(false), "{from} -> {to}");
    }
}

/// A revoked key that is still valid (old versions, current months) and an expired key of
/// the current versions (renewed after the bump, expired since): each alone is refused a
/// record created after both events; their union of components satisfies its policy, yet
/// combining them misses the KEM key whichever key's key-wide parts are used.
#[test]
fn revoked_and_expired_keys_cannot_collude() {
    let w = ward();
    let versions = bumped(&w.authority, &w.nina, &AttributeVersions::new());
    // Nina: revoked in 2027-02, valid through 2040. Olga: renewed at the new versions but
    // only through 2027-03.
    let expired = w
        .authority
        .renew_with_versions(&w.olga, through("2027-03"), &versions, &mut OsRng)
        .unwrap();
    let created = month("2027-06");
    let policy = record_policy("role:nurse", &versions, created, &w.owner);
    let new = encrypt(&w.authority, &policy);
    assert_eq!(algebra(w.nina.key(), &new), None);
    assert_eq!(algebra(expired.key(), &new), None);

    let (revoked, late) = (parts(w.nina.key()), parts(expired.key()));
    let mut union: Vec<String> = items(w.nina.key());
    union.extend(items(expired.key()));
    union.retain(|item| !item.starts_with("id:"));
    union.sort();
    union.dedup();
    let claimed = AttributeSet::parse(&union).unwrap();
    assert!(
        policy.is_satisfied_by(&claimed),
        "the union satisfies the policy"
    );
    let component = |label: &str| {
        revoked
            .components
            .get(label)
            .or_else(|| late.components.get(label))
            .expect("one of the keys holds the label")
            .clone()
    };
    for base in [&revoked, &late] {
        let merged = forge(&union, component, base);
        assert_eq!(
            algebra(&merged, &new),
            Some(false),
            "colluding keys opened it"
        );
    }
    // Sanity of the construction: an honest key of the union's attributes, taken apart
    // and merged with itself the same way, opens it.
    let honest = w
        .authority
        .renew_with_versions(&w.olga, through("2040-12"), &versions, &mut OsRng)
        .unwrap();
    let p = parts(honest.key());
    let merged = forge(&items(honest.key()), |l| p.components[l].clone(), &p);
    assert_eq!(algebra(&merged, &new), Some(true));
}

/// The key growth `docs/revocation.md` states: per version of a named attribute one
/// component (3 compressed G1 points) plus its item (u32 length + text); per version of a
/// numeric attribute 32 components plus its item.
#[test]
fn keys_grow_by_one_component_per_version() {
    let authority = Authority::setup(&mut OsRng);
    let signer = PrivateKeySigner::random();
    let size = |versions: &AttributeVersions| {
        authority
            .issue_with_versions(
                "nina",
                ["role:nurse", "level=3"],
                through("2027-12"),
                versions,
                signer.clone(),
                &mut OsRng,
            )
            .unwrap()
            .key()
            .to_bytes()
            .len()
    };
    let base = size(&AttributeVersions::new());
    let mut versions = AttributeVersions::new();
    versions.set("role:nurse", 3).unwrap();
    let items: usize = (1..=3).map(|v| 4 + format!("role.v{v}:nurse").len()).sum();
    assert_eq!(size(&versions) - base, 3 * 3 * G1 + items);
    versions.set("level=*", 1).unwrap();
    assert_eq!(
        size(&versions) - base,
        3 * 3 * G1 + items + 32 * 3 * G1 + 4 + "level.v1=3".len()
    );
}

/// A record policy naming a version spelling is refused (it could grant a revoked key an
/// old version by hand): by the record's validation, and again when its capsule policy is
/// built.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn version_spellings_are_refused_in_record_policies() {
    use medseal::{Config, Error, InvalidInput, NewRecord, Vault};
    let dir = tempfile::tempdir().unwrap();
    let mut vault = Vault::open_with(dir.path(), &Config::embedded())
        .await
        .unwrap();
    let authority = Authority::setup(&mut OsRng);
    vault.install_authority(authority.public_key()).unwrap();
    let owner = issue(
        &authority,
        "dr. owen",
        &["role:doctor"],
        through("2060-12"),
        &AttributeVersions::new(),
    );
    for policy in [
        "role.v1:nurse",
        "role:doctor or dept.v2:icu",
        "level.v1 >= 3",
    ] {
        let record = NewRecord::new("r", policy.parse().unwrap());
        let result = vault.put(&owner, record).await;
        assert!(
            matches!(
                result,
                Err(Error::InvalidInput(InvalidInput::ReservedAttribute { .. }))
            ),
            "{policy}: {result:?}"
        );
    }
    assert!(vault.records_of(owner.address()).await.unwrap().is_empty());
}
