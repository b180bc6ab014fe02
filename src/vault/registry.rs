//! The member registry on chain: adopting its authority role, registering and revoking
//! members, the refusal of unregistered addresses, the current attribute versions, and
//! the owners' re-wrap after a revocation (see [`crate::notes::revocation`]).

use rand_core::OsRng;

use super::Vault;
use crate::abe::Policy;
use crate::chain::{
    Address, MemberInfo, MemberStatus, PrivateKeySigner, RecordId, RegisteredMember, TxReceipt,
};
use crate::error::{Error, InvalidInput, Result, Standing};
use crate::identity::{Authority, Member};
use crate::validity::{Month, Validity};
use crate::versions::{self, AttributeVersions, attribute_hash, versionable_attributes};

/// What [`Vault::adopt_authority`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Adoption {
    /// The registry's authority already was the attribute authority's chain account.
    AlreadyAdopted,
    /// The vault's chain account, the registry's authority until now, handed the role to
    /// the attribute authority's chain account in this transaction.
    Transferred(TxReceipt),
}

/// What [`Vault::revoke_member`] did, and who needs a renewed key.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RevocationReport {
    /// The revoked member.
    pub member: Address,
    /// The `revokeMember` transaction.
    pub receipt: TxReceipt,
    /// The bumped version units (from the registry's attribute list of the member) at
    /// their new versions.
    pub bumped: AttributeVersions,
    /// The active registered members holding any bumped attribute (the revoked one
    /// excluded): each needs a key renewed at the new versions
    /// ([`Vault::renew_member`]) to read what is created from now on.
    pub affected: Vec<RegisteredMember>,
}

/// What [`Vault::rewrap_records`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RewrapReport {
    /// Records whose capsule was re-wrapped at the current versions.
    pub rewrapped: Vec<RecordId>,
    /// Records whose capsule already was at the current versions (left unchanged).
    pub up_to_date: usize,
}

impl Vault {
    /// Makes the attribute authority's chain account ([`Authority::chain_signer`]) the
    /// registry's authority, the account that registers and revokes members: nothing if
    /// it already is; else, if this vault's own chain account (the embedded chain's
    /// fixed deployer, [`crate::embedded_deployer`], or on a node the configured
    /// `eth_key` that deployed the registry) is the registry's authority, it transfers
    /// the role. On a node, the authority's account then pays the gas of registrations
    /// and revocations: fund it.
    ///
    /// # Errors
    /// [`InvalidInput::RegistryAuthority`] if the registry's authority is another
    /// account; chain errors.
    pub async fn adopt_authority(&self, authority: &Authority) -> Result<Adoption> {
        let wanted = authority.chain_signer().address();
        let current = self.ledger.authority().await?;
        if current == wanted {
            return Ok(Adoption::AlreadyAdopted);
        }
        let sender = self.ledger.sender();
        if current != sender {
            return Err(InvalidInput::RegistryAuthority {
                registry_authority: current,
                authority_account: wanted,
                sender,
            }
            .into());
        }
        Ok(Adoption::Transferred(
            self.ledger.transfer_authority(wanted).await?,
        ))
    }

    /// Registers `member` on chain, signed by the authority's chain account (which must
    /// be the registry's authority, [`Vault::adopt_authority`]): its address, display
    /// name, user-level attributes ([`Member::own_attributes`]) and their digest
    /// ([`Member::attributes_digest`]), and its validity. Registering an active member
    /// again records its renewed key. This is the on-chain log of key issuance.
    ///
    /// # Errors
    /// [`InvalidInput::ForeignKey`] if another authority issued the key; chain errors
    /// (e.g. `LedgerError::MemberRevoked`: a revoked member cannot come back).
    pub async fn register_member(
        &self,
        authority: &Authority,
        member: &Member,
    ) -> Result<TxReceipt> {
        let ledger = self.ledger.for_signer(authority.chain_signer());
        self.register_with(&*ledger, member).await
    }

    /// [`Vault::register_member`] signed by a registrar the authority appointed
    /// ([`Vault::appoint_registrar`] with the registrar's address): e.g. a hospital's
    /// administrator, holding a member key of its own.
    ///
    /// # Errors
    /// As for [`Vault::register_member`]; `LedgerError::NotRegistrar` if `registrar` is
    /// not appointed.
    pub async fn register_member_as(
        &self,
        registrar: &Member,
        member: &Member,
    ) -> Result<TxReceipt> {
        let ledger = self.acting(registrar);
        self.register_with(&*ledger, member).await
    }

    async fn register_with(
        &self,
        ledger: &dyn crate::chain::Ledger,
        member: &Member,
    ) -> Result<TxReceipt> {
        self.check_member(member)?;
        self.check_current_versions(member).await?;
        let valid_through = member.validity().map(|v| v.last_month().number());
        Ok(ledger
            .register_member(
                member.address(),
                member.name(),
                member.attributes_digest(),
                &member.own_attributes(),
                valid_through,
            )
            .await?)
    }

    /// Issues a key to a new member at the chain's current versions of `attributes`
    /// ([`Authority::issue_with_versions`] with [`Vault::attribute_versions`], one view
    /// call): after a revocation bumped one of them, a key at version 0
    /// ([`Authority::issue`]) would neither open nor find what is created under it from
    /// then on, and [`Vault::register_member`] refuses it. Keep the key (e.g.
    /// [`Member::to_bytes`]), then register it with [`Vault::register_member`] (a
    /// registered address whose key is lost reads nothing).
    ///
    /// # Errors
    /// As for [`Authority::issue`]; chain errors.
    pub async fn issue_member<S: AsRef<str>>(
        &self,
        authority: &Authority,
        name: &str,
        attributes: &[S],
        validity: Validity,
        signer: PrivateKeySigner,
    ) -> Result<Member> {
        let versions = self.attribute_versions(attributes).await?;
        authority.issue_with_versions(
            name,
            attributes.iter().map(AsRef::as_ref),
            validity,
            &versions,
            signer,
            &mut OsRng,
        )
    }

    /// Refuses `member`'s key if it carries one of its attributes below the chain's
    /// current version (one view call): registering it would log a key that opens and
    /// finds nothing created under that attribute since its last bump.
    async fn check_current_versions(&self, member: &Member) -> Result<()> {
        let current = self.attribute_versions(&member.own_attributes()).await?;
        let held = member.versions();
        for (unit, current_version) in current.iter() {
            let key_version = held.get(unit)?;
            if key_version < current_version {
                return Err(InvalidInput::StaleAttributeVersion {
                    member: member.address(),
                    attribute: unit.to_owned(),
                    key_version,
                    current_version,
                }
                .into());
            }
        }
        Ok(())
    }

    /// Appoints `registrar`, named `name` (e.g. a hospital), to register and revoke
    /// members; signed by the authority's chain account.
    ///
    /// # Errors
    /// Chain errors (`LedgerError::NotAuthority` before [`Vault::adopt_authority`]).
    pub async fn appoint_registrar(
        &self,
        authority: &Authority,
        registrar: Address,
        name: &str,
    ) -> Result<TxReceipt> {
        let ledger = self.ledger.for_signer(authority.chain_signer());
        Ok(ledger.appoint_registrar(registrar, name).await?)
    }

    /// Every member the registry ever registered, in order of first registration, with
    /// its latest registration and its revocation, if any (read from the chain).
    ///
    /// # Errors
    /// Chain errors.
    pub async fn members(&self) -> Result<Vec<RegisteredMember>> {
        Ok(self.ledger.registered_members().await?)
    }

    /// Checks that each of `accounts` is an active registered member whose registration
    /// covers the vault's clock month; one view call. Sharing and approving requests
    /// check this (always: a deployment registers its members).
    ///
    /// # Errors
    /// [`Error::NotAMember`] naming the first refused address and why
    /// ([`Standing`]); chain errors.
    pub async fn check_registered(&self, accounts: &[Address]) -> Result<Vec<MemberInfo>> {
        let infos = self.ledger.members_status(accounts).await?;
        let now = self.clock.now();
        for info in &infos {
            let standing = match info.status {
                MemberStatus::Unregistered => Some(Standing::Unregistered),
                MemberStatus::Revoked => Some(Standing::Revoked),
                MemberStatus::Active => info
                    .valid_through
                    .map(Month::from_number)
                    .filter(|through| *through < now)
                    .map(|through| Standing::Expired { through }),
            };
            if let Some(standing) = standing {
                return Err(Error::NotAMember {
                    member: info.member,
                    standing,
                });
            }
        }
        Ok(infos)
    }

    /// The chain's current versions of `attributes` (any attribute items or version
    /// units, e.g. [`Member::own_attributes`]); one view call. Never cached: a stale
    /// version would let a revoked key read what is created next.
    ///
    /// # Errors
    /// As for [`versions::canonical_attribute`]; chain errors.
    pub async fn attribute_versions<S: AsRef<str>>(
        &self,
        attributes: &[S],
    ) -> Result<AttributeVersions> {
        let units = versions::version_units(attributes)?;
        self.versions_of_units(units).await
    }

    /// The current versions of the versionable attributes `policies` name, in one view
    /// call (none if they name none).
    pub(super) async fn policy_versions<'a>(
        &self,
        policies: impl IntoIterator<Item = &'a Policy>,
    ) -> Result<AttributeVersions> {
        let mut units: Vec<String> = policies
            .into_iter()
            .flat_map(versionable_attributes)
            .collect();
        units.sort_unstable();
        units.dedup();
        self.versions_of_units(units).await
    }

    async fn versions_of_units(&self, units: Vec<String>) -> Result<AttributeVersions> {
        if units.is_empty() {
            return Ok(AttributeVersions::new());
        }
        let hashes = units
            .iter()
            .map(|unit| attribute_hash(unit))
            .collect::<Result<Vec<_>>>()?;
        let versions = self.ledger.attribute_versions(&hashes).await?;
        AttributeVersions::from_lists(&units, &versions)
    }

    /// Revokes `member` on chain for `reason`, signed by the authority's chain account,
    /// bumping in the same transaction the version of each of its attributes (from the
    /// registry's attribute list of the member, [`versions::version_units`]): what is
    /// created from now on is unreadable with its key even before it expires. Reports
    /// the active members holding a bumped attribute ([`Authority::affected`] over the
    /// registry's lists), who need renewed keys ([`Vault::renew_member`]); the others
    /// keep theirs. Existing records stay readable with the revoked key until their
    /// owners re-wrap them ([`Vault::rewrap_records`]).
    ///
    /// # Errors
    /// [`Error::NotAMember`] with [`Standing::Unregistered`] if the registry does not
    /// know `member`; chain errors (`LedgerError::MemberRevoked` if it is revoked
    /// already, a reason of 0 or more than 1,024 bytes).
    pub async fn revoke_member(
        &self,
        authority: &Authority,
        member: Address,
        reason: &str,
    ) -> Result<RevocationReport> {
        let registered = self.members().await?;
        let entry = registered
            .iter()
            .find(|m| m.member == member)
            .ok_or(Error::NotAMember {
                member,
                standing: Standing::Unregistered,
            })?;
        let units = versions::version_units(&entry.attributes)?;
        let hashes = units
            .iter()
            .map(|unit| attribute_hash(unit))
            .collect::<Result<Vec<_>>>()?;
        let ledger = self.ledger.for_signer(authority.chain_signer());
        let receipt = ledger.revoke_member(member, reason, &hashes).await?;
        let bumped = self.versions_of_units(units.clone()).await?;
        let active = registered
            .iter()
            .filter(|m| m.member != member && m.revoked.is_none());
        let affected =
            Authority::affected(active.map(|m| (m.clone(), m.attributes.clone())), &units)?;
        Ok(RevocationReport {
            member,
            receipt,
            bumped,
            affected,
        })
    }

    /// Renews `member`'s key at the chain's current versions of its attributes
    /// ([`Authority::renew_with_versions`], valid through `validity`) and registers the
    /// renewed key ([`Vault::register_member`]). Returns the renewed member.
    ///
    /// # Errors
    /// As for [`Authority::renew_with_versions`] and [`Vault::register_member`].
    pub async fn renew_member(
        &self,
        authority: &Authority,
        member: &Member,
        validity: Validity,
    ) -> Result<Member> {
        let versions = self.attribute_versions(&member.own_attributes()).await?;
        let renewed = authority.renew_with_versions(member, validity, &versions, &mut OsRng)?;
        self.register_member(authority, &renewed).await?;
        Ok(renewed)
    }

    /// Re-wraps the capsule of every record `owner` owns whose capsule is not at the
    /// chain's current attribute versions (after a revocation): one encapsulation of the
    /// record key per record, the body and attachments unchanged (see
    /// [`crate::notes::revocation`] for what this does not undo: anything already read,
    /// and the superseded capsules). Records already at the current versions are
    /// skipped, told from their public capsule policy (without opening the record key),
    /// so running it again after an interruption continues where it stopped at little
    /// cost. The versions are read once per attribute per run; a revocation during the
    /// run is picked up by the next run. A re-wrapped capsule also takes the record's
    /// current grants from the chain.
    /// Progress is reported to the vault's progress callback ([`Vault::set_progress`])
    /// as `("rewrap", records done, Some(total))`.
    ///
    /// # Errors
    /// Storage and chain errors (records re-wrapped before the error stay re-wrapped).
    pub async fn rewrap_records(&self, owner: &Member) -> Result<RewrapReport> {
        let _guard = self.owner_lock.lock().await;
        self.check_member(owner)?;
        let ledger = self.acting(owner);
        let ids = self.ledger.records_of(owner.address()).await?;
        let total = ids.len() as u64;
        let mut report = RewrapReport::default();
        let mut known = KnownVersions::default();
        for (done, id) in ids.into_iter().enumerate() {
            let info = self.record_info(id).await?;
            // Most records of a second run (after an interruption) are current: told from
            // the public capsule policy, without opening the record key.
            let current = self.fetch_manifest(&info).await?.policy()?;
            if self.at_known_versions(&current, &mut known).await? {
                report.up_to_date += 1;
            } else if self.rewrap(&*ledger, owner, &info).await?.1 {
                report.rewrapped.push(id);
            } else {
                report.up_to_date += 1;
            }
            if let Some(progress) = &self.progress {
                progress("rewrap", done as u64 + 1, Some(total));
            }
        }
        Ok(report)
    }
}

/// The chain's versions of the version units asked so far in one
/// [`Vault::rewrap_records`] run (read once per unit: a bump during the run is picked up
/// by the next run).
#[derive(Default)]
struct KnownVersions {
    asked: std::collections::BTreeSet<String>,
    versions: AttributeVersions,
}

impl Vault {
    /// Whether the capsule policy `current` spells every attribute it names at the
    /// chain's version (as `known` read it).
    async fn at_known_versions(&self, current: &Policy, known: &mut KnownVersions) -> Result<bool> {
        let base = versions::unversioned_policy(current);
        let units = versions::versionable_attributes(&base);
        let missing: Vec<String> = units
            .into_iter()
            .filter(|unit| !known.asked.contains(unit))
            .collect();
        if !missing.is_empty() {
            let fresh = self.versions_of_units(missing.clone()).await?;
            for unit in missing {
                known.versions.set(&unit, fresh.get(&unit)?)?;
                known.asked.insert(unit);
            }
        }
        Ok(versions::versioned_policy(&base, &known.versions)
            .is_ok_and(|wanted| wanted.to_string() == current.to_string()))
    }
}
