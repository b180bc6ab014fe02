//! The record manifest: what is stored (content-addressed) for one record.
//!
//! ```text
//! manifest  = "MSMF" | 1 | u32 len | capsule | u32 len | sealed body
//! capsule   = medseal-abe envelope (FAME) of the 32-byte record key (DEK) under the
//!             record's access policy; aad = "medseal-record-capsule-v1" | SHA-256(sealed body)
//! body      = data stream sealed with the DEK; aad = "medseal-record-body-v1";
//!             plaintext = JSON { name, policy, attachments: [{ name, content_type, size, cid }] }
//! attachment i = data stream sealed with the DEK; aad = "medseal-attachment-v1" | u32 i
//! ```
//!
//! The capsule's policy is public (CP-ABE ciphertexts carry it): the record's base
//! policy AND-ed with the validity clause of its creation month, `or` the owner's `id:`
//! attribute, `or` each grantee's `id:` attribute AND-ed with the clause of the month it
//! was shared (see [`crate::validity`]; records and shares made before records were
//! dated have bare clauses). Everything else about the
//! record — name, attachment names, types, sizes, CIDs — is in the sealed body. Sharing
//! replaces only the capsule: the body and the attachments keep their bytes and CIDs.
//! The capsule binds the body's digest, so a capsule cannot be moved onto another body.

use std::collections::BTreeMap;

use rand_core::CryptoRngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::abe::codec::{Reader, Writer};
use crate::abe::envelope::{self, DataKey};
use crate::abe::policy::Node;
use crate::abe::{Fame, Policy, fame};
use crate::chain::{Address, B256};
use crate::error::{Error, InvalidInput, Result, Tampering};
use crate::identity::id_attribute;
use crate::validity::Month;
use crate::versions::{AttributeVersions, unversioned_policy, versioned_policy};

/// Largest manifest accepted on read.
pub const MAX_MANIFEST_BYTES: usize = 4 << 20;
/// Most attachments per record.
pub const MAX_ATTACHMENTS: usize = 1024;

const CAPSULE_AAD: &[u8] = b"medseal-record-capsule-v1";
const BODY_AAD: &[u8] = b"medseal-record-body-v1";
const ATTACHMENT_AAD: &[u8] = b"medseal-attachment-v1";

/// One attachment as listed in a record's sealed manifest.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttachmentInfo {
    /// File name.
    pub name: String,
    /// MIME type, e.g. `application/pdf`.
    pub content_type: String,
    /// Plaintext size in bytes.
    pub size: u64,
    /// CID of the encrypted attachment (a UnixFS file).
    pub cid: String,
}

/// The sealed part of a manifest.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Body {
    pub(crate) name: String,
    /// The record's base policy (without the owner's and grantees' `id:` attributes).
    pub(crate) policy: String,
    pub(crate) attachments: Vec<AttachmentInfo>,
}

/// A parsed (still sealed) manifest.
pub(crate) struct Manifest {
    pub(crate) capsule: Vec<u8>,
    pub(crate) sealed_body: Vec<u8>,
}

/// The associated data of attachment `index`.
pub(crate) fn attachment_aad(index: u32) -> Vec<u8> {
    let mut aad = ATTACHMENT_AAD.to_vec();
    aad.extend_from_slice(&index.to_be_bytes());
    aad
}

fn capsule_aad(sealed_body: &[u8]) -> Vec<u8> {
    let mut aad = CAPSULE_AAD.to_vec();
    aad.extend_from_slice(&Sha256::digest(sealed_body));
    aad
}

impl Manifest {
    /// Seals `body` under `dek` and wraps `dek` under `policy`.
    pub(crate) fn seal<R: CryptoRngCore + ?Sized>(
        pk: &fame::PublicKey,
        policy: &Policy,
        dek: &DataKey,
        body: &Body,
        rng: &mut R,
    ) -> Result<Self> {
        let json = zeroize::Zeroizing::new(
            serde_json::to_vec(body).map_err(|e| Error::corrupt("manifest body", e))?,
        );
        let sealed_body = envelope::seal_bytes_with_key(dek, BODY_AAD, &json)?;
        let mut manifest = Self {
            capsule: Vec::new(),
            sealed_body,
        };
        manifest.rewrap(pk, policy, dek, rng)?;
        Ok(manifest)
    }

    /// Replaces the capsule with one wrapping `dek` under `policy` (the body is unchanged).
    pub(crate) fn rewrap<R: CryptoRngCore + ?Sized>(
        &mut self,
        pk: &fame::PublicKey,
        policy: &Policy,
        dek: &DataKey,
        rng: &mut R,
    ) -> Result<()> {
        self.capsule = envelope::seal::<Fame, _>(
            pk,
            policy,
            &capsule_aad(&self.sealed_body),
            dek.as_bytes(),
            rng,
        )?;
        Ok(())
    }

    /// The policy of the capsule (public).
    pub(crate) fn policy(&self) -> Result<Policy> {
        Ok(envelope::inspect::<Fame>(&self.capsule)?.policy().clone())
    }

    /// Opens the capsule with a user key. `PolicyNotSatisfied` passes through as
    /// [`crate::abe::Error::PolicyNotSatisfied`].
    pub(crate) fn open_key(&self, key: &fame::UserKey) -> Result<DataKey, crate::abe::Error> {
        let mut plain =
            envelope::open::<Fame>(key, &capsule_aad(&self.sealed_body), &self.capsule)?;
        let dek = DataKey::from_slice(&plain);
        zeroize::Zeroize::zeroize(&mut plain);
        dek.ok_or(crate::abe::Error::Decryption)
    }

    /// Decrypts and parses the body.
    pub(crate) fn open_body(&self, dek: &DataKey) -> Result<Body> {
        let json = zeroize::Zeroizing::new(
            envelope::open_bytes_with_key(dek, BODY_AAD, &self.sealed_body)
                .map_err(|_| Tampering::ManifestBody)?,
        );
        let body: Body =
            serde_json::from_slice(&json).map_err(|e| Error::corrupt("manifest body", e))?;
        if body.attachments.len() > MAX_ATTACHMENTS {
            return Err(Error::inconsistent("manifest body", "too many attachments"));
        }
        Ok(body)
    }

    pub(crate) fn to_bytes(&self) -> Vec<u8> {
        let mut w = Writer::new(*b"MSMF", 1);
        w.bytes(&self.capsule).bytes(&self.sealed_body);
        w.finish()
    }

    pub(crate) fn from_bytes(bytes: &[u8]) -> Result<Self> {
        if bytes.len() > MAX_MANIFEST_BYTES {
            return Err(Error::inconsistent("manifest", "too large"));
        }
        let corrupt = |e| Error::corrupt("manifest", e);
        let mut r = Reader::new(bytes, *b"MSMF", 1).map_err(corrupt)?;
        let capsule = r
            .bytes("capsule", MAX_MANIFEST_BYTES)
            .map_err(corrupt)?
            .to_vec();
        let sealed_body = r
            .bytes("sealed body", MAX_MANIFEST_BYTES)
            .map_err(corrupt)?
            .to_vec();
        r.finish().map_err(corrupt)?;
        envelope::inspect::<Fame>(&capsule)?;
        Ok(Self {
            capsule,
            sealed_body,
        })
    }
}

/// SHA-256 of the canonical policy text: what the chain records for a record or partition.
pub(crate) fn policy_hash(policy: &Policy) -> B256 {
    B256::from(<[u8; 32]>::from(Sha256::digest(
        policy.to_string().as_bytes(),
    )))
}

/// The dates of a record capsule's clauses (see [`crate::validity`]): the month the
/// record was created (`None`: created before records were dated) and, per grantee's
/// `id:` attribute, the month it was shared (`None`: shared before shares were dated).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct CapsuleDates {
    pub(crate) created: Option<Month>,
    pub(crate) shared: BTreeMap<String, Option<Month>>,
}

impl CapsuleDates {
    /// Reads the dates of a capsule policy [`capsule_policy`] built: the first clause of
    /// the top-level `or` is the base clause (`base and V(t)`, or the bare base of an
    /// undated record); the owner's and grantees' clauses follow (`id:u and V(s)`, or a
    /// bare `id:u`). A policy of any other shape has no dates.
    pub(crate) fn of(capsule: &Policy) -> Self {
        let mut dates = Self::default();
        let Node::Or(children) = capsule.root() else {
            return dates;
        };
        let mut children = children.iter();
        if let Some(Node::And(parts)) = children.next()
            && let [_, clause] = parts.as_slice()
        {
            dates.created = Month::of_clause(clause);
        }
        for child in children {
            match child {
                Node::Attribute(a) if a.name() == "id" => {
                    dates.shared.insert(a.label(), None);
                }
                Node::And(parts) => {
                    if let [Node::Attribute(a), clause] = parts.as_slice()
                        && a.name() == "id"
                        && let Some(month) = Month::of_clause(clause)
                    {
                        dates.shared.insert(a.label(), Some(month));
                    }
                }
                _ => {}
            }
        }
        dates
    }
}

/// Who a record capsule admits besides its base readers, its owner and its grantees
/// (see [`capsule_policy`]).
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct RecordParties<'a> {
    /// The record's subject (the patient), who always reads it: `or id:<subject>`,
    /// undated (a subject's expired or revoked key still reads their own records).
    pub(crate) subject: Option<Address>,
    /// Who may read it in an emergency (break-glass): `or (<emergency> and V(created))`.
    /// The reason is logged on chain before the key is opened (client-side).
    pub(crate) emergency: Option<&'a Policy>,
}

/// The policy a record key is wrapped under:
///
/// ```text
/// (base' and V(created)) or id:owner [or id:subject] [or (emergency' and V(created))]
///   or (id:u and V(s)) ...
/// ```
///
/// `base'` and `emergency'` are spelt at the current attribute `versions`
/// ([`versioned_policy`]: a key revoked since reads none of it; empty versions leave them
/// as given). The clause of each grantee `u` is dated by `shared` (its month from an
/// earlier wrap) or else `now`. `None` dates leave the clause bare (records and shares
/// made before records were dated); the emergency clause is always dated (`now` for such
/// a record). A subject equal to the owner adds nothing.
///
/// # Errors
/// [`InvalidInput::ReservedAttribute`] for a base or emergency policy naming a version
/// spelling, or an emergency policy that is a bare `id:` attribute (it would read as a
/// grantee); [`Error::Policy`] past the policy limits.
pub(crate) fn capsule_policy(
    base: &Policy,
    dates: &CapsuleDates,
    now: Month,
    owner: Address,
    grantees: impl IntoIterator<Item = Address>,
    versions: &AttributeVersions,
    parties: RecordParties<'_>,
) -> Result<Policy> {
    let dated = |clause: Policy, month: Option<Month>| -> Result<Policy> {
        Ok(match month {
            Some(month) => Policy::and(vec![clause, month.clause()])?,
            None => clause,
        })
    };
    let mut children = vec![
        dated(versioned_policy(base, versions)?, dates.created)?,
        Policy::attribute(&id_attribute(owner))?,
    ];
    if let Some(subject) = parties.subject.filter(|s| *s != owner) {
        children.push(Policy::attribute(&id_attribute(subject))?);
    }
    if let Some(emergency) = parties.emergency {
        if matches!(emergency.root(), Node::Attribute(a) if a.name() == "id") {
            return Err(InvalidInput::ReservedAttribute {
                attribute: emergency.to_string(),
            }
            .into());
        }
        let versioned = versioned_policy(emergency, versions)?;
        children.push(dated(versioned, Some(dates.created.unwrap_or(now)))?);
    }
    for user in grantees {
        let id = id_attribute(user);
        let month = dates.shared.get(&id).copied().unwrap_or(Some(now));
        children.push(dated(Policy::attribute(&id)?, month)?);
    }
    Ok(Policy::or(children)?)
}

/// The emergency policy of a capsule policy [`capsule_policy`] built (without versions,
/// ready to be wrapped again at the current ones), if it has one: the clause after the
/// base of the form `E and V(m)` with `E` not an `id:` attribute.
pub(crate) fn emergency_of(capsule: &Policy) -> Option<Policy> {
    let Node::Or(children) = capsule.root() else {
        return None;
    };
    children.iter().skip(1).find_map(|child| match child {
        Node::And(parts) => match parts.as_slice() {
            [Node::Attribute(a), _] if a.name() == "id" => None,
            [emergency, clause] if Month::of_clause(clause).is_some() => {
                Policy::from_node(emergency.clone())
                    .ok()
                    .map(|p| unversioned_policy(&p))
            }
            _ => None,
        },
        _ => None,
    })
}

/// The capsule policy without its emergency clause (what a plain read must satisfy), or
/// `None` if it has no emergency clause (see [`emergency_of`]).
pub(crate) fn without_emergency(capsule: &Policy) -> Option<Policy> {
    let Node::Or(children) = capsule.root() else {
        return None;
    };
    let is_emergency = |child: &Node| match child {
        Node::And(parts) => match parts.as_slice() {
            [Node::Attribute(a), _] if a.name() == "id" => false,
            [_, clause] => Month::of_clause(clause).is_some(),
            _ => false,
        },
        _ => false,
    };
    let position = children
        .iter()
        .skip(1)
        .position(is_emergency)
        .map(|i| i + 1)?;
    let rest: Vec<Policy> = children
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != position)
        .map(|(_, child)| Policy::from_node(child.clone()))
        .collect::<core::result::Result<_, _>>()
        .ok()?;
    match rest.len() {
        1 => rest.into_iter().next(),
        _ => Policy::or(rest).ok(),
    }
}

/// The policy of `owner`'s index partition whose epoch starts in `month`:
/// `(base' and V(month)) or id:<owner>`, `base'` spelt at the current attribute
/// `versions` (a version bump gives the next put a new epoch, as a new month does).
///
/// The owner's clause is the one every record capsule has ([`capsule_policy`]): the
/// owner finds what it stored as it reads it, whatever versions and validity its key
/// carries (it holds the partition key anyway); every other reader needs the base policy
/// at the epoch's versions.
///
/// # Errors
/// As for [`versioned_policy`].
pub(crate) fn partition_policy(
    base: &Policy,
    month: Month,
    versions: &AttributeVersions,
    owner: Address,
) -> Result<Policy> {
    let dated = Policy::and(vec![versioned_policy(base, versions)?, month.clause()])?;
    Ok(Policy::or(vec![
        dated,
        Policy::attribute(&id_attribute(owner))?,
    ])?)
}

/// The base policy of a partition policy (the inverse of [`partition_policy`], versions
/// included). Earlier shapes are read too: `base' and V(month)` (before the owner's
/// clause), and a policy without a validity clause (before partitions were dated), which
/// is its own base.
pub(crate) fn partition_base(policy: &Policy) -> Policy {
    let dated = match policy.root() {
        Node::Or(children) => match children.as_slice() {
            [dated, Node::Attribute(id)] if id.name() == "id" => dated,
            _ => policy.root(),
        },
        other => other,
    };
    if let Node::And(parts) = dated
        && let [base, clause] = parts.as_slice()
        && Month::of_clause(clause).is_some()
        && let Ok(base) = Policy::from_node(base.clone())
    {
        return unversioned_policy(&base);
    }
    unversioned_policy(policy)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::abe::{AttributeSet, Scheme};
    use rand_core::OsRng;

    #[test]
    fn seal_open_rewrap_and_damage() {
        let (pk, msk) = Fame::setup(&mut OsRng);
        let key = Fame::keygen(
            &pk,
            &msk,
            &AttributeSet::parse(["a:1"]).unwrap(),
            &mut OsRng,
        )
        .unwrap();
        let other = Fame::keygen(
            &pk,
            &msk,
            &AttributeSet::parse(["b:1"]).unwrap(),
            &mut OsRng,
        )
        .unwrap();
        let dek = DataKey::generate(&mut OsRng);
        let body = Body {
            name: "n".into(),
            policy: "a:1".into(),
            attachments: vec![AttachmentInfo {
                name: "f".into(),
                content_type: "text/plain".into(),
                size: 3,
                cid: "Qm".into(),
            }],
        };
        let mut m = Manifest::seal(&pk, &"a:1".parse().unwrap(), &dek, &body, &mut OsRng).unwrap();
        let bytes = m.to_bytes();
        let parsed = Manifest::from_bytes(&bytes).unwrap();
        let opened = parsed.open_key(&key).unwrap();
        assert_eq!(opened.as_bytes(), dek.as_bytes());
        assert_eq!(parsed.open_body(&opened).unwrap(), body);
        assert!(matches!(
            parsed.open_key(&other),
            Err(crate::abe::Error::PolicyNotSatisfied)
        ));
        // Re-wrapping keeps the body bytes and changes who can open.
        let sealed_body = m.sealed_body.clone();
        m.rewrap(&pk, &"a:1 or b:1".parse().unwrap(), &dek, &mut OsRng)
            .unwrap();
        assert_eq!(m.sealed_body, sealed_body);
        assert!(m.open_key(&other).is_ok());
        // A capsule moved onto another body does not open.
        let mut moved = Manifest::from_bytes(&bytes).unwrap();
        moved.sealed_body[20] ^= 1;
        assert!(moved.open_key(&key).is_err());
        for cut in 0..bytes.len() {
            assert!(Manifest::from_bytes(&bytes[..cut]).is_err(), "prefix {cut}");
        }
        for i in (0..bytes.len()).step_by(7) {
            let mut damaged = bytes.clone();
            damaged[i] ^= 0x80;
            if let Ok(m) = Manifest::from_bytes(&damaged)
                && let Ok(k) = m.open_key(&key)
            {
                assert!(m.open_body(&k).is_err());
            }
        }
    }

    #[test]
    fn capsule_dates_round_trip_and_partition_bases() {
        let (owner, u, w) = (
            Address::repeat_byte(1),
            Address::repeat_byte(2),
            Address::repeat_byte(3),
        );
        let (t, s1) = (Month::new(2027, 1).unwrap(), Month::new(2027, 2).unwrap());
        let later = Month::new(2029, 9).unwrap();
        let (none, plain) = (AttributeVersions::new(), RecordParties::default());
        // Bases of every shape, including an `or` and a bare `id:` (a policy may name one).
        for base in [
            "role:doctor",
            "a or b",
            "a and b",
            "2 of (a, b, c)",
            "id:0202020202020202020202020202020202020202",
        ] {
            let base: Policy = base.parse().unwrap();
            let mut dates = CapsuleDates {
                created: Some(t),
                ..CapsuleDates::default()
            };
            let first = capsule_policy(&base, &dates, s1, owner, [u], &none, plain).unwrap();
            let read = CapsuleDates::of(&first);
            assert_eq!(read.created, Some(t), "{first}");
            assert_eq!(read.shared.get(&id_attribute(u)), Some(&Some(s1)));
            // A later wrap keeps the dates read back and dates only the new grantee.
            let second = capsule_policy(&base, &read, later, owner, [u, w], &none, plain).unwrap();
            let again = CapsuleDates::of(&second);
            assert_eq!(again.created, Some(t));
            assert_eq!(again.shared.get(&id_attribute(u)), Some(&Some(s1)));
            assert_eq!(again.shared.get(&id_attribute(w)), Some(&Some(later)));
            // Undated (legacy) records stay undated; their grantees too.
            dates.created = None;
            let legacy = Policy::or(vec![
                base.clone(),
                Policy::attribute(&id_attribute(owner)).unwrap(),
                Policy::attribute(&id_attribute(u)).unwrap(),
            ])
            .unwrap();
            let read = CapsuleDates::of(&legacy);
            assert_eq!(read.created, None);
            let rewrapped =
                capsule_policy(&base, &read, later, owner, [u, w], &none, plain).unwrap();
            let expected = Policy::or(vec![
                base.clone(),
                Policy::attribute(&id_attribute(owner)).unwrap(),
                Policy::attribute(&id_attribute(u)).unwrap(),
                Policy::and(vec![
                    Policy::attribute(&id_attribute(w)).unwrap(),
                    later.clause(),
                ])
                .unwrap(),
            ])
            .unwrap();
            assert_eq!(rewrapped, expected);
            // Partitions: the base comes back from the dated policy; undated is its own.
            let dated = partition_policy(&base, t, &none, owner).unwrap();
            assert_eq!(dated.leaf_count(), base.leaf_count() + 3);
            assert_eq!(partition_base(&dated), base);
            assert_eq!(partition_base(&base), base);
            // The shape before the owner's clause still gives its base.
            let before = Policy::and(vec![base.clone(), t.clause()]).unwrap();
            assert_eq!(partition_base(&before), base);
        }
    }

    /// Subject and emergency clauses: their LSSS rows, read-back, versions.
    #[test]
    fn subject_and_emergency_clauses() {
        use crate::abe::lsss::Lsss;
        let rows = |p: &Policy| Lsss::<blstrs::Scalar>::from_policy(p).rows().len();
        let (owner, patient, u) = (
            Address::repeat_byte(1),
            Address::repeat_byte(9),
            Address::repeat_byte(2),
        );
        let (t, now) = (Month::new(2027, 1).unwrap(), Month::new(2027, 5).unwrap());
        let dates = CapsuleDates {
            created: Some(t),
            ..CapsuleDates::default()
        };
        let none = AttributeVersions::new();
        let base: Policy = "role:doctor and dept:cardiology".parse().unwrap();
        let wrap = |parties: RecordParties<'_>, versions: &AttributeVersions| {
            capsule_policy(&base, &dates, now, owner, [u], versions, parties).unwrap()
        };
        let plain = wrap(RecordParties::default(), &none);
        let with_subject = wrap(
            RecordParties {
                subject: Some(patient),
                emergency: None,
            },
            &none,
        );
        assert_eq!(rows(&with_subject), rows(&plain) + 1);
        assert!(
            with_subject
                .to_string()
                .contains(&format!(" or {} or ", id_attribute(patient)))
        );
        // The subject is undated: it reads with nothing but its `id:` attribute.
        let attrs = crate::abe::AttributeSet::parse([id_attribute(patient)]).unwrap();
        assert!(with_subject.is_satisfied_by(&attrs) && !plain.is_satisfied_by(&attrs));
        // An owner who is the subject adds nothing.
        let own = capsule_policy(
            &base,
            &dates,
            now,
            owner,
            [u],
            &none,
            RecordParties {
                subject: Some(owner),
                emergency: None,
            },
        )
        .unwrap();
        assert_eq!(own, plain);
        for emergency in ["access:emergency", "role:er and 2 of (a, b, c)"] {
            let e: Policy = emergency.parse().unwrap();
            let parties = RecordParties {
                subject: Some(patient),
                emergency: Some(&e),
            };
            let both = wrap(parties, &none);
            assert_eq!(rows(&both), rows(&with_subject) + rows(&e) + 2);
            // Read back (for re-wrapping), dates and grantees unaffected.
            assert_eq!(emergency_of(&both), Some(e.clone()));
            let read = CapsuleDates::of(&both);
            assert_eq!(read.created, Some(t));
            assert_eq!(read.shared.get(&id_attribute(u)), Some(&Some(now)));
            assert_eq!(
                capsule_policy(&base, &read, now, owner, [u], &none, parties).unwrap(),
                both
            );
            // Dated by creation: an emergency key valid through `t` reads, an earlier not.
            let key = |through: Month| {
                let mut a =
                    crate::abe::AttributeSet::parse(["access:emergency", "a", "b"]).unwrap();
                a.insert("role:er").unwrap();
                for v in crate::validity::Validity::until(through).attributes() {
                    a.insert(&v).unwrap();
                }
                a
            };
            assert!(both.is_satisfied_by(&key(t)));
            assert!(!both.is_satisfied_by(&key(Month::new(2026, 12).unwrap())));
            // Versions apply to the emergency clause and the base, and come off on read-back.
            let mut bumped = AttributeVersions::new();
            bumped
                .set("access:emergency", 1)
                .unwrap()
                .set("role:er", 2)
                .unwrap()
                .set("role:doctor", 1)
                .unwrap();
            let versioned = wrap(parties, &bumped);
            assert_eq!(rows(&versioned), rows(&both));
            assert_eq!(emergency_of(&versioned), Some(e.clone()));
            assert!(!versioned.is_satisfied_by(&key(t)));
            assert!(versioned.to_string().contains("role.v1:doctor"));
        }
        assert_eq!(emergency_of(&plain), None);
        assert_eq!(emergency_of(&with_subject), None);
        // An emergency clause that would read as a grantee is refused.
        let id: Policy = id_attribute(patient).parse().unwrap();
        assert!(matches!(
            capsule_policy(
                &base,
                &dates,
                now,
                owner,
                [u],
                &none,
                RecordParties {
                    subject: None,
                    emergency: Some(&id),
                },
            ),
            Err(Error::InvalidInput(InvalidInput::ReservedAttribute { .. }))
        ));
    }

    #[test]
    fn partitions_carry_versions_and_their_base_drops_them() {
        let base: Policy = "role:nurse and level >= 2".parse().unwrap();
        let t = Month::new(2027, 1).unwrap();
        let owner = Address::repeat_byte(7);
        let mut versions = AttributeVersions::new();
        versions
            .set("role:nurse", 4)
            .unwrap()
            .set("level=*", 1)
            .unwrap();
        let dated = partition_policy(&base, t, &versions, owner).unwrap();
        assert_eq!(
            dated,
            Policy::or(vec![
                Policy::and(vec![
                    "role.v4:nurse and level.v1 >= 2".parse().unwrap(),
                    t.clause()
                ])
                .unwrap(),
                Policy::attribute(&id_attribute(owner)).unwrap(),
            ])
            .unwrap()
        );
        assert_eq!(partition_base(&dated), base);
        assert_ne!(
            dated,
            partition_policy(&base, t, &AttributeVersions::new(), owner).unwrap()
        );
        // Who opens it: the owner whatever its versions; others only at the versions.
        let reads = |items: &[&str]| {
            dated.is_satisfied_by(&crate::abe::AttributeSet::parse(items.iter().copied()).unwrap())
        };
        let month = crate::validity::Validity::until(t).attributes();
        let month: Vec<&str> = month.iter().map(String::as_str).collect();
        let at = |extra: &[&'static str]| [month.as_slice(), extra].concat();
        assert!(reads(&at(&["role.v4:nurse", "level.v1=3"])));
        assert!(!reads(&at(&["role.v3:nurse", "level.v1=3"])));
        assert!(!reads(&at(&["role:nurse", "level=3"])));
        let own = id_attribute(owner);
        assert!(reads(&[own.as_str()]));
    }
}
