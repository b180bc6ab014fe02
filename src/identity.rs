//! Roles: the attribute authority and the members it issues keys to.

use rand_core::CryptoRngCore;

use crate::abe::codec::{Reader, Writer};
use crate::abe::{AttributeSet, Encoding, Fame, Scheme, fame};
use crate::chain::{Address, B256, PrivateKeySigner};
use crate::error::{Error, InvalidInput, Result};
use crate::validity::Validity;
use crate::versions::{self, AttributeVersions};

/// Longest member name, in bytes.
pub const MAX_NAME_LEN: usize = 128;
const MAX_KEY_BYTES: usize = 1 << 20;

/// The attribute authority: FAME public parameters and the master secret. It issues
/// member keys; it is the only party that can.
///
/// `Debug` is redacted. Keep the encoding ([`Authority::to_bytes`]) offline and secret: it
/// contains the master key.
pub struct Authority {
    pk: fame::PublicKey,
    msk: fame::MasterKey,
}

impl Authority {
    /// Generates fresh public parameters and master secret.
    pub fn setup<R: CryptoRngCore + ?Sized>(rng: &mut R) -> Self {
        let (pk, msk) = Fame::setup(rng);
        Self { pk, msk }
    }

    /// The public parameters (publish them; every vault user needs them).
    pub fn public_key(&self) -> &fame::PublicKey {
        &self.pk
    }

    /// Issues a key to a member who signs chain transactions with `signer`, valid for
    /// records created through the last month of `validity` (see [`crate::validity`]).
    ///
    /// The key carries `attributes`, the member's identity attribute
    /// [`id_attribute`]`(signer.address())` (which is what sharing a record with a named
    /// member adds to the record's policy) and the reserved validity attributes
    /// ([`Validity::attributes`]).
    ///
    /// Every attribute is issued at version 0: use [`Authority::issue_with_versions`] once
    /// any attribute has been bumped by a revocation (see [`crate::versions`]), or the key
    /// opens nothing created under the bumped attributes since.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for an empty or overlong name, and
    /// [`InvalidInput::ReservedAttribute`] for an attribute whose name is `id`,
    /// `valid-year` or `valid-month` in any form an attribute item takes (`id`, `id:x`,
    /// `id:"x y"`, `id=3`, with any surrounding whitespace; names are case-sensitive, so
    /// `ID:x` is another attribute), or a version spelling (a name ending in `.v` and
    /// digits, e.g. `role.v2:nurse`); [`Error::Policy`] for a malformed attribute;
    /// [`Error::Abe`] if key generation fails.
    pub fn issue<R, I, S>(
        &self,
        name: &str,
        attributes: I,
        validity: Validity,
        signer: PrivateKeySigner,
        rng: &mut R,
    ) -> Result<Member>
    where
        R: CryptoRngCore + ?Sized,
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let versions = AttributeVersions::new();
        self.issue_with_versions(name, attributes, validity, &versions, signer, rng)
    }

    /// [`Authority::issue`] at the current attribute versions: the key carries each of its
    /// versionable attributes at every version from 0 to its version in `versions`, so it
    /// opens what was created before and after each bump (see [`crate::versions`]; one key
    /// component per version per attribute, 32 for a numeric attribute).
    ///
    /// # Errors
    /// As for [`Authority::issue`]; [`Error::Policy`] if the versions take the key past
    /// the attribute limit.
    pub fn issue_with_versions<R, I, S>(
        &self,
        name: &str,
        attributes: I,
        validity: Validity,
        versions: &AttributeVersions,
        signer: PrivateKeySigner,
        rng: &mut R,
    ) -> Result<Member>
    where
        R: CryptoRngCore + ?Sized,
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        check_name(name)?;
        let mut attrs = AttributeSet::new();
        for attribute in attributes {
            let attribute = attribute.as_ref();
            // Check the parsed name, not the text: every spelling of the item counts.
            let item = AttributeSet::parse([attribute])?;
            let reserved = versions::is_reserved_name;
            if item.attributes().any(|a| reserved(a.name()))
                || item.numeric().any(|(name, _)| reserved(name))
            {
                return Err(InvalidInput::ReservedAttribute {
                    attribute: attribute.to_owned(),
                }
                .into());
            }
            attrs.insert(attribute)?;
        }
        versions::add_version_spellings(&mut attrs, versions)?;
        attrs.insert(&id_attribute(signer.address()))?;
        for attribute in validity.attributes() {
            attrs.insert(&attribute)?;
        }
        let key = Fame::keygen(&self.pk, &self.msk, &attrs, rng)?;
        Ok(Member {
            name: name.to_owned(),
            key,
            signer,
        })
    }

    /// Renews a member's key: a fresh key with the same name, signer (hence address),
    /// attributes and attribute versions ([`Member::versions`]), valid through the last
    /// month of `validity` (which may be earlier or later than the old one's). The renewed
    /// key reads what the old one read and what is created through its new last month;
    /// the old key keeps working within its own validity (keys cannot be recalled:
    /// revocation, [`Authority::renew_with_versions`], is another mechanism).
    ///
    /// # Errors
    /// As for [`Authority::issue`]; [`InvalidInput::ForeignKey`] if this authority did
    /// not issue `member`'s key.
    pub fn renew<R: CryptoRngCore + ?Sized>(
        &self,
        member: &Member,
        validity: Validity,
        rng: &mut R,
    ) -> Result<Member> {
        self.renew_with_versions(member, validity, &AttributeVersions::new(), rng)
    }

    /// [`Authority::renew`] at the current attribute versions (after a revocation bumped
    /// attributes the member holds, see [`Authority::affected`]): each attribute at the
    /// higher of its version in `versions` and the one the old key carries (versions on
    /// chain only grow, so a stale map never shrinks a key).
    ///
    /// # Errors
    /// As for [`Authority::renew`].
    pub fn renew_with_versions<R: CryptoRngCore + ?Sized>(
        &self,
        member: &Member,
        validity: Validity,
        versions: &AttributeVersions,
        rng: &mut R,
    ) -> Result<Member> {
        // Keys carry no authority fingerprint: check by a round trip, as vaults do.
        let policy = crate::abe::Policy::attribute(&id_attribute(member.address()))?;
        let (sent, ct) = Fame::encapsulate(&self.pk, &policy, rng)?;
        match Fame::decapsulate(member.key(), &ct) {
            Ok(got) if got == sent => {}
            _ => {
                return Err(InvalidInput::ForeignKey {
                    member: member.address(),
                }
                .into());
            }
        }
        let own = member.own_attributes();
        let versions = member.versions().max(versions);
        self.issue_with_versions(
            member.name(),
            own,
            validity,
            &versions,
            member.signer.clone(),
            rng,
        )
    }

    /// The attributes to bump when revoking `member` (`revokeMember(.., bumpAttributes)`
    /// takes their [`attribute_hash`](crate::versions::attribute_hash)es): the version
    /// units of its user-level attributes ([`crate::versions::version_units`]; `id:` and
    /// validity attributes are never versioned). The authority need not hold the key:
    /// `version_units` takes the attribute list the registry recorded.
    pub fn revocation(&self, member: &Member) -> Vec<String> {
        // A member's own attributes are issued items: they always have a unit.
        versions::version_units(member.own_attributes()).unwrap_or_default()
    }

    /// The members that need a renewed key ([`Authority::renew_with_versions`]) after
    /// `bumped` (version units, e.g. from [`Authority::revocation`]) were bumped: those
    /// holding any of them. `members` are (key, user-level attribute items) pairs, e.g.
    /// `(member.address(), member.own_attributes())` or the registry's lists; the others
    /// keep their keys. The revoked member is among the result if listed: skip it.
    ///
    /// # Errors
    /// As for [`crate::versions::canonical_attribute`], for an item that does not parse.
    pub fn affected<K, A, S>(
        members: impl IntoIterator<Item = (K, A)>,
        bumped: &[String],
    ) -> Result<Vec<K>>
    where
        A: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let bumped = versions::version_units(bumped)?;
        let mut found = Vec::new();
        for (member, items) in members {
            let mut hit = false;
            for item in items {
                let unit = versions::canonical_attribute(item.as_ref())?;
                hit |= bumped.binary_search(&unit).is_ok();
            }
            if hit {
                found.push(member);
            }
        }
        Ok(found)
    }

    /// The authority's chain account (it registers and revokes members on the registry
    /// contract), derived from the master secret: HKDF-SHA256 (RFC 5869) with the master
    /// key's canonical encoding as input key material, no salt, and info
    /// `"medseal-v1 authority chain signer" | counter (u8)`, taking the first counter
    /// whose 32-byte output is a valid secp256k1 secret (in `[1, n)`; the first one is,
    /// but for a probability below 2^-127). Deterministic: the sealed key file and the
    /// backup shares restore the same account; no second secret to keep.
    pub fn chain_signer(&self) -> PrivateKeySigner {
        use hkdf::Hkdf;
        use sha2::Sha256;
        let ikm = zeroize::Zeroizing::new(self.msk.to_bytes());
        let kdf = Hkdf::<Sha256>::new(None, &ikm);
        for counter in 0u8..=u8::MAX {
            let mut okm = zeroize::Zeroizing::new([0u8; 32]);
            let info = [CHAIN_SIGNER_INFO, &[counter]].concat();
            // 32 bytes is far below HKDF-SHA256's 8160-byte limit: never fails.
            if kdf.expand(&info, okm.as_mut()).is_ok()
                && let Ok(signer) = PrivateKeySigner::from_slice(okm.as_ref())
            {
                return signer;
            }
        }
        // 256 consecutive outputs outside [1, n) (probability < 2^-32000).
        unreachable!("HKDF produced no valid secp256k1 secret")
    }

    /// The secret encoding: `"MSAU" | 1 | pk | msk` (length-prefixed canonical encodings).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut w = Writer::new(*b"MSAU", 1);
        w.bytes(&self.pk.to_bytes()).bytes(&self.msk.to_bytes());
        w.finish()
    }

    /// Parses [`Authority::to_bytes`]; checks that the master key belongs to the public
    /// key (the check key issuance makes, [`Scheme::check_master_key`]), so that a file
    /// pairing keys of two setups is refused here rather than issuing keys that open
    /// nothing.
    ///
    /// # Errors
    /// [`Error::Corrupt`] or [`Error::Abe`] for malformed input; [`Error::Corrupt`] for a
    /// master key of another setup than the public key.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let corrupt = |e| Error::corrupt("authority key", e);
        let mut r = Reader::new(bytes, *b"MSAU", 1).map_err(corrupt)?;
        let pk =
            fame::PublicKey::from_bytes(r.bytes("public key", MAX_KEY_BYTES).map_err(corrupt)?)?;
        let msk =
            fame::MasterKey::from_bytes(r.bytes("master key", MAX_KEY_BYTES).map_err(corrupt)?)?;
        r.finish().map_err(corrupt)?;
        Fame::check_master_key(&pk, &msk).map_err(|_| {
            Error::inconsistent(
                "authority key",
                "the master key does not belong to the public key",
            )
        })?;
        Ok(Self { pk, msk })
    }
}

impl core::fmt::Debug for Authority {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Authority").finish_non_exhaustive()
    }
}

/// The attribute name reserved for members' identity attributes.
const ID_NAME: &str = "id";

/// The HKDF info prefix of [`Authority::chain_signer`] (frozen: changing it changes the
/// authority's chain account).
const CHAIN_SIGNER_INFO: &[u8] = b"medseal-v1 authority chain signer";

/// A member's identity attribute: `id:<address as 40 lowercase hex digits>`.
pub fn id_attribute(address: Address) -> String {
    format!("{ID_NAME}:{}", hex::encode(address.as_slice()))
}

fn check_name(name: &str) -> Result<()> {
    if name.trim().is_empty() || name.len() > MAX_NAME_LEN || name.chars().any(char::is_control) {
        return Err(InvalidInput::Name {
            what: "member name",
            name: name.to_owned(),
            max: MAX_NAME_LEN,
        }
        .into());
    }
    Ok(())
}

/// A member (doctor, nurse, researcher, ...): a display name, a CP-ABE key bound to the
/// member's attributes, and the key that signs the member's chain transactions.
///
/// `Debug` shows the name, address and attributes, never key material. The encoding
/// ([`Member::to_bytes`]) is secret.
pub struct Member {
    name: String,
    key: fame::UserKey,
    signer: PrivateKeySigner,
}

impl Member {
    /// The display name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The chain address (also the member's `id:` attribute).
    pub fn address(&self) -> Address {
        self.signer.address()
    }

    /// The attributes the key was issued for (including the `id:` attribute).
    pub fn attributes(&self) -> &AttributeSet {
        Fame::attributes(&self.key)
    }

    /// The attributes the authority chose for the member: [`Member::attributes`] without
    /// the reserved `id:`, `valid-year:` and `valid-month:` ones and without version
    /// spellings (`role.v2:nurse`, see [`Member::versions`]), in the item syntax
    /// [`Authority::issue`] takes.
    pub fn own_attributes(&self) -> Vec<String> {
        let attrs = self.attributes();
        let reserved = versions::is_reserved_name;
        let named = attrs
            .attributes()
            .filter(|a| !reserved(a.name()))
            .map(ToString::to_string);
        let numeric = attrs
            .numeric()
            .filter(|(name, _)| !reserved(name))
            .map(|(name, value)| format!("{name}={value}"));
        named.chain(numeric).collect()
    }

    /// The attribute versions the key carries (read from its attributes): per
    /// versionable attribute, the highest version it holds (it holds every version below
    /// too); empty for a key issued before any revocation.
    pub fn versions(&self) -> AttributeVersions {
        versions::versions_of(self.attributes())
    }

    /// The digest of [`Member::own_attributes`] the on-chain member registry records
    /// ([`crate::versions::attributes_digest`]: keccak256 over the sorted canonical items,
    /// each u32-BE-length-prefixed).
    pub fn attributes_digest(&self) -> B256 {
        // Own attributes are canonical items of an issued key: always digestible.
        versions::attributes_digest(self.own_attributes()).unwrap_or_default()
    }

    /// How long the key opens new records (read from its attributes); `None` for a key
    /// issued before keys carried a validity, which opens nothing created since.
    pub fn validity(&self) -> Option<Validity> {
        Validity::of_attributes(self.attributes())
    }

    /// The CP-ABE user key.
    pub fn key(&self) -> &fame::UserKey {
        &self.key
    }

    pub(crate) fn signer(&self) -> &PrivateKeySigner {
        &self.signer
    }

    /// The secret encoding: `"MSMK" | 1 | name | signer secret | user key`.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut w = Writer::new(*b"MSMK", 1);
        w.str(&self.name)
            .bytes(&self.signer.to_bytes().0)
            .bytes(&self.key.to_bytes());
        w.finish()
    }

    /// Parses [`Member::to_bytes`]; checks that the key's identity attribute matches the
    /// signer.
    ///
    /// # Errors
    /// [`Error::Corrupt`] or [`Error::Abe`] for malformed input.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let corrupt = |e| Error::corrupt("member key", e);
        let mut r = Reader::new(bytes, *b"MSMK", 1).map_err(corrupt)?;
        let name = r.str("name", MAX_NAME_LEN).map_err(corrupt)?.to_owned();
        let secret = r.bytes("signing key", 32).map_err(corrupt)?;
        // Exactly 32 bytes: a shorter secret would be zero-padded into another key.
        if secret.len() != 32 {
            return Err(Error::inconsistent(
                "member key",
                "signing key is not 32 bytes",
            ));
        }
        let signer = PrivateKeySigner::from_slice(secret)
            .map_err(|_| Error::inconsistent("member key", "invalid signing key"))?;
        let key = fame::UserKey::from_bytes(r.bytes("user key", MAX_KEY_BYTES).map_err(corrupt)?)?;
        r.finish().map_err(corrupt)?;
        check_name(&name).map_err(|_| Error::inconsistent("member key", "invalid name"))?;
        if !Fame::attributes(&key).contains_label(&id_attribute(signer.address())) {
            return Err(Error::inconsistent(
                "member key",
                "the ABE key was not issued for this signing key",
            ));
        }
        Ok(Self { name, key, signer })
    }
}

impl core::fmt::Debug for Member {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Member")
            .field("name", &self.name)
            .field("address", &self.address())
            .field(
                "attributes",
                &self.attributes().labels().collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_core::OsRng;

    #[test]
    fn encodings_round_trip_and_reject_damage() {
        let authority = Authority::setup(&mut OsRng);
        let member = authority
            .issue(
                "sam",
                ["role:nurse"],
                Validity::months_from_now(12),
                PrivateKeySigner::random(),
                &mut OsRng,
            )
            .unwrap();
        assert!(
            member
                .attributes()
                .contains_label(&id_attribute(member.address()))
        );
        let bytes = member.to_bytes();
        let back = Member::from_bytes(&bytes).unwrap();
        assert_eq!(
            (back.name(), back.address()),
            (member.name(), member.address())
        );
        assert_eq!(back.key().to_bytes(), member.key().to_bytes());
        let auth = Authority::from_bytes(&authority.to_bytes()).unwrap();
        assert_eq!(auth.public_key(), authority.public_key());
        for cut in 0..bytes.len() {
            assert!(Member::from_bytes(&bytes[..cut]).is_err(), "prefix {cut}");
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(Member::from_bytes(&longer).is_err());
        // A key issued for another signer is not accepted with this one.
        let other = authority
            .issue(
                "sam",
                ["role:nurse"],
                Validity::months_from_now(12),
                PrivateKeySigner::random(),
                &mut OsRng,
            )
            .unwrap();
        let mut spliced = Writer::new(*b"MSMK", 1);
        spliced
            .bytes(b"sam")
            .bytes(&member.signer().to_bytes().0)
            .bytes(&other.key().to_bytes());
        assert!(Member::from_bytes(&spliced.finish()).is_err());
        // A signing secret of 31 bytes is refused, not zero-padded into another key.
        let mut short = Writer::new(*b"MSMK", 1);
        short
            .str(member.name())
            .bytes(&member.signer().to_bytes().0[..31])
            .bytes(&member.key().to_bytes());
        assert!(matches!(
            Member::from_bytes(&short.finish()),
            Err(Error::Corrupt { .. })
        ));
        // The encoding is the one of earlier releases: magic, version, length-prefixed fields.
        assert_eq!(
            &bytes[..9],
            &[
                b'M',
                b'S',
                b'M',
                b'K',
                1,
                0,
                0,
                0,
                member.name().len() as u8
            ]
        );
        // Flipping any byte never panics.
        for i in 0..bytes.len() {
            let mut damaged = bytes.clone();
            damaged[i] ^= 0x5a;
            let _ = Member::from_bytes(&damaged);
        }
    }

    /// Found in review: a public key and a master key of two setups were accepted
    /// together, and every key issued from the file then opened nothing.
    #[test]
    fn an_authority_of_mismatched_keys_is_refused() {
        let (a, b) = (Authority::setup(&mut OsRng), Authority::setup(&mut OsRng));
        let spliced = |pk: &Authority, msk: &Authority| {
            let mut w = Writer::new(*b"MSAU", 1);
            w.bytes(&pk.pk.to_bytes()).bytes(&msk.msk.to_bytes());
            Authority::from_bytes(&w.finish())
        };
        assert!(spliced(&a, &a).is_ok());
        for bad in [spliced(&a, &b), spliced(&b, &a)] {
            assert!(
                matches!(
                    &bad,
                    Err(Error::Corrupt {
                        what: "authority key",
                        reason: crate::error::Corruption::Inconsistent(_)
                    })
                ),
                "{bad:?}"
            );
        }
        assert!(
            bad_message(spliced(&a, &b)).contains("master key does not belong to the public key")
        );
    }

    fn bad_message(result: Result<Authority>) -> String {
        result.map(|_| ()).unwrap_err().to_string()
    }

    #[test]
    fn reserved_and_bad_names_are_refused() {
        let authority = Authority::setup(&mut OsRng);
        let issue = |name: &str, attrs: &[&str]| {
            authority.issue(
                name,
                attrs,
                Validity::months_from_now(12),
                PrivateKeySigner::random(),
                &mut OsRng,
            )
        };
        for reserved in [
            "id:abc",
            "  id:abc ",
            "\tid:abc",
            "id",
            " id ",
            "id:\"a b\"",
            "id:\"0x\\\"q\"",
            "id=3",
            " id = 3 ",
            "valid-year:2099",
            " valid-month:2099-12",
            "valid-month",
            "valid-year=2030",
            "role.v2:nurse",
            " x.v0",
            "level.v1=3",
            "a.b.v12:\"x y\"",
        ] {
            assert!(
                matches!(
                    issue("x", &["role:x", reserved]),
                    Err(Error::InvalidInput(InvalidInput::ReservedAttribute { .. }))
                ),
                "{reserved:?}"
            );
        }
        // Not attribute items at all (a policy comparison, spaces around ':').
        for malformed in ["id >= 3", " id : x", "id :x"] {
            assert!(
                matches!(issue("x", &[malformed]), Err(Error::Policy(_))),
                "{malformed:?}"
            );
        }
        // Other names that merely contain or resemble `id` are fine.
        assert!(
            issue(
                "x",
                &[
                    "idx:1",
                    "ID:x",
                    "role:id",
                    "uid",
                    "id_card=2",
                    "valid:1",
                    "role:valid-year",
                    "role.vet:x",
                    "rolev2:x",
                    "role:nurse.v2"
                ]
            )
            .is_ok()
        );
        assert!(matches!(
            issue("", &["role:x"]),
            Err(Error::InvalidInput(InvalidInput::Name { .. }))
        ));
        assert!(matches!(
            issue("a\nb", &["role:x"]),
            Err(Error::InvalidInput(InvalidInput::Name { .. }))
        ));
        assert!(matches!(issue("x", &["role x"]), Err(Error::Policy(_))));
    }

    #[test]
    fn renewal_keeps_name_signer_and_attributes_with_a_new_validity() {
        let authority = Authority::setup(&mut OsRng);
        let old = authority
            .issue(
                "ada",
                ["role:doctor", "level=3"],
                Validity::through(2027, 3).unwrap(),
                PrivateKeySigner::random(),
                &mut OsRng,
            )
            .unwrap();
        assert_eq!(old.validity(), Some(Validity::through(2027, 3).unwrap()));
        assert_eq!(old.own_attributes(), ["role:doctor", "level=3"]);
        let new = authority
            .renew(&old, Validity::through(2029, 1).unwrap(), &mut OsRng)
            .unwrap();
        assert_eq!((new.name(), new.address()), (old.name(), old.address()));
        assert_eq!(new.own_attributes(), old.own_attributes());
        assert_eq!(new.validity(), Some(Validity::through(2029, 1).unwrap()));
        assert_ne!(new.key().to_bytes(), old.key().to_bytes());
        assert!(new.attributes().contains_label("valid-year:2028"));
        assert!(!old.attributes().contains_label("valid-year:2027"));
        // Another authority's member is not renewed.
        let other = Authority::setup(&mut OsRng);
        assert!(matches!(
            other.renew(&old, Validity::months_from_now(1), &mut OsRng),
            Err(Error::InvalidInput(InvalidInput::ForeignKey { .. }))
        ));
    }

    #[test]
    fn the_chain_signer_is_derived_from_the_master_secret() {
        let a = Authority::setup(&mut OsRng);
        let signer = a.chain_signer();
        // Stable across the secret encoding (hence the sealed file and the shares).
        let back = Authority::from_bytes(&a.to_bytes()).unwrap();
        assert_eq!(back.chain_signer().address(), signer.address());
        assert_eq!(a.chain_signer().to_bytes(), signer.to_bytes());
        // Another authority has another account.
        let b = Authority::setup(&mut OsRng);
        assert_ne!(b.chain_signer().address(), signer.address());
        // A valid secp256k1 secret: it signs, and the signature recovers its address.
        let secret = signer.to_bytes();
        assert_ne!(secret.0, [0u8; 32]);
        assert_eq!(
            PrivateKeySigner::from_slice(secret.as_slice())
                .unwrap()
                .address(),
            signer.address()
        );
        // The documented derivation, recomputed.
        let kdf = hkdf::Hkdf::<sha2::Sha256>::new(None, &a.msk.to_bytes());
        let mut okm = [0u8; 32];
        kdf.expand(b"medseal-v1 authority chain signer\0", &mut okm)
            .unwrap();
        assert_eq!(okm, secret.0);
    }

    #[test]
    fn versioned_keys_list_user_level_attributes_and_their_versions() {
        let authority = Authority::setup(&mut OsRng);
        let mut versions = AttributeVersions::new();
        versions
            .set("role:nurse", 2)
            .unwrap()
            .set("dept:icu", 1)
            .unwrap()
            .set("level=*", 1)
            .unwrap()
            .set("role:doctor", 5)
            .unwrap();
        let sam = authority
            .issue_with_versions(
                "sam",
                ["role:nurse", "dept:icu", "level=2", "site:north"],
                Validity::through(2027, 3).unwrap(),
                &versions,
                PrivateKeySigner::random(),
                &mut OsRng,
            )
            .unwrap();
        for label in [
            "role.v1:nurse",
            "role.v2:nurse",
            "dept.v1:icu",
            "level.v1#1=1",
        ] {
            assert!(sam.attributes().contains_label(label), "{label}");
        }
        assert_eq!(
            sam.own_attributes(),
            ["dept:icu", "role:nurse", "site:north", "level=2"]
        );
        let mut held = AttributeVersions::new();
        held.set("role:nurse", 2)
            .unwrap()
            .set("dept:icu", 1)
            .unwrap()
            .set("level=*", 1)
            .unwrap();
        assert_eq!(sam.versions(), held);
        assert_eq!(
            authority.revocation(&sam),
            ["dept:icu", "level=*", "role:nurse", "site:north"]
        );
        assert_eq!(
            sam.attributes_digest(),
            versions::attributes_digest(["role:nurse", "dept:icu", "level=2", "site:north"])
                .unwrap()
        );
        // Survives the encoding; renewal keeps the versions, or raises them.
        let back = Member::from_bytes(&sam.to_bytes()).unwrap();
        assert_eq!(back.versions(), held);
        let renewed = authority
            .renew(&sam, Validity::through(2028, 1).unwrap(), &mut OsRng)
            .unwrap();
        assert_eq!(renewed.versions(), held);
        assert_eq!(renewed.own_attributes(), sam.own_attributes());
        let mut later = AttributeVersions::new();
        later.set("role:nurse", 3).unwrap();
        let bumped = authority
            .renew_with_versions(
                &sam,
                Validity::through(2028, 1).unwrap(),
                &later,
                &mut OsRng,
            )
            .unwrap();
        assert_eq!(bumped.versions().get("role:nurse").unwrap(), 3);
        assert_eq!(bumped.versions().get("dept:icu").unwrap(), 1);
        // Who needs a renewed key after a bump.
        let members: Vec<(&str, Vec<&str>)> = vec![
            ("a", vec!["role:nurse", "dept:er"]),
            ("b", vec!["role:doctor", "dept:icu"]),
            ("c", vec!["role:doctor", "dept:er", "level=1"]),
            ("d", vec!["role:\"nurse\""]),
        ];
        let bumped = ["role:nurse".to_owned(), "dept:icu".to_owned()];
        assert_eq!(
            Authority::affected(members.clone(), &bumped).unwrap(),
            ["a", "b", "d"]
        );
        assert_eq!(
            Authority::affected(members, &["level=*".to_owned()]).unwrap(),
            ["c"]
        );
    }
}
