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
use crate::error::{Error, Result, Tampering};
use crate::identity::id_attribute;
use crate::validity::Month;

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

/// The policy a record key is wrapped under:
/// `(base and V(created)) or id:owner or (id:u and V(s)) ...`, with the clause of each
/// grantee `u` dated by `shared` (its month from an earlier wrap) or else `now`. `None`
/// dates leave the clause bare (records and shares made before records were dated).
pub(crate) fn capsule_policy(
    base: &Policy,
    dates: &CapsuleDates,
    now: Month,
    owner: Address,
    grantees: impl IntoIterator<Item = Address>,
) -> Result<Policy> {
    let dated = |clause: Policy, month: Option<Month>| -> Result<Policy> {
        Ok(match month {
            Some(month) => Policy::and(vec![clause, month.clause()])?,
            None => clause,
        })
    };
    let mut children = vec![
        dated(base.clone(), dates.created)?,
        Policy::attribute(&id_attribute(owner))?,
    ];
    for user in grantees {
        let id = id_attribute(user);
        let month = dates.shared.get(&id).copied().unwrap_or(Some(now));
        children.push(dated(Policy::attribute(&id)?, month)?);
    }
    Ok(Policy::or(children)?)
}

/// The policy of an index partition whose epoch starts in `month`: `base and V(month)`.
pub(crate) fn partition_policy(base: &Policy, month: Month) -> Result<Policy> {
    Ok(Policy::and(vec![base.clone(), month.clause()])?)
}

/// The base policy of a partition policy (the inverse of [`partition_policy`]; a policy
/// without a validity clause, from before partitions were dated, is its own base).
pub(crate) fn partition_base(policy: &Policy) -> Policy {
    if let Node::And(parts) = policy.root()
        && let [base, clause] = parts.as_slice()
        && Month::of_clause(clause).is_some()
        && let Ok(base) = Policy::from_node(base.clone())
    {
        return base;
    }
    policy.clone()
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
            let first = capsule_policy(&base, &dates, s1, owner, [u]).unwrap();
            let read = CapsuleDates::of(&first);
            assert_eq!(read.created, Some(t), "{first}");
            assert_eq!(read.shared.get(&id_attribute(u)), Some(&Some(s1)));
            // A later wrap keeps the dates read back and dates only the new grantee.
            let second = capsule_policy(&base, &read, later, owner, [u, w]).unwrap();
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
            let rewrapped = capsule_policy(&base, &read, later, owner, [u, w]).unwrap();
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
            let dated = partition_policy(&base, t).unwrap();
            assert_eq!(dated.leaf_count(), base.leaf_count() + 2);
            assert_eq!(partition_base(&dated), base);
            assert_eq!(partition_base(&base), base);
        }
    }
}
