//! Roles: the attribute authority and the members it issues keys to.

use rand_core::CryptoRngCore;

use crate::abe::codec::{Reader, Writer};
use crate::abe::{AttributeSet, Encoding, Fame, Scheme, fame};
use crate::chain::{Address, PrivateKeySigner};
use crate::error::{Error, InvalidInput, Result};
use crate::validity::{self, Validity};

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
    /// # Errors
    /// [`Error::InvalidInput`] for an empty or overlong name, and
    /// [`InvalidInput::ReservedAttribute`] for an attribute whose name is `id`,
    /// `valid-year` or `valid-month` in any form an attribute item takes (`id`, `id:x`,
    /// `id:"x y"`, `id=3`, with any surrounding whitespace; names are case-sensitive, so
    /// `ID:x` is another attribute); [`Error::Policy`] for a malformed attribute;
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
        check_name(name)?;
        let mut attrs = AttributeSet::new();
        for attribute in attributes {
            let attribute = attribute.as_ref();
            // Check the parsed name, not the text: every spelling of the item counts.
            let item = AttributeSet::parse([attribute])?;
            let reserved = |name: &str| name == ID_NAME || validity::is_reserved(name);
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

    /// Renews a member's key: a fresh key with the same name, signer (hence address) and
    /// attributes, valid through the last month of `validity` (which may be earlier or
    /// later than the old one's). The renewed key reads what the old one read and what is
    /// created through its new last month; the old key keeps working within its own
    /// validity (keys cannot be recalled: revocation is another mechanism).
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
        self.issue(member.name(), own, validity, member.signer.clone(), rng)
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
    /// the reserved `id:`, `valid-year:` and `valid-month:` ones, in the item syntax
    /// [`Authority::issue`] takes.
    pub fn own_attributes(&self) -> Vec<String> {
        let attrs = self.attributes();
        let reserved = |name: &str| name == ID_NAME || validity::is_reserved(name);
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
                    "role:valid-year"
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
}
