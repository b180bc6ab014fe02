//! Sharing, revocation, access requests, listings and the audit trail.

use std::collections::BTreeSet;
use std::sync::Arc;

use rand_core::OsRng;

use super::{Vault, parse_cid};
use crate::abe::Policy;
use crate::abe::envelope::DataKey;
use crate::chain::{
    AccessRequest, AccessState, Address, AuditEntry, AuditEvent, Ledger, RecordId, RecordInfo,
};
use crate::error::{Error, Pointer, Result};
use crate::identity::Member;
use crate::manifest::{
    CapsuleDates, Manifest, RecordParties, attachment_aad, capsule_policy, emergency_of,
    policy_hash,
};
use crate::pipe;
use crate::storage::PutOptions;

impl Vault {
    /// Shares a record with a member (by address): grants access on chain and re-wraps
    /// only the record key under `policy or id:<owner> or id:<grantees…>`; the body and
    /// attachments are not re-encrypted or re-uploaded. Idempotent.
    ///
    /// `owner` is the record's controller: its subject (the patient) if it has one, who
    /// re-wraps with their own key and moves the chain's pointer; else its owner.
    ///
    /// The new grantee's clause is dated by the vault's clock (`id:u and V(now)`, see
    /// [`crate::validity`]): a key that expired before the share does not read the record.
    /// The record's creation date and earlier grantees' dates are kept.
    ///
    /// `user` must be an active registered member of the chain's member registry whose
    /// registration covers the vault's clock month ([`Vault::check_registered`]); the
    /// record key is wrapped at the chain's current attribute versions.
    ///
    /// # Errors
    /// [`Error::NotAMember`] (unregistered, revoked or expired `user`),
    /// [`Error::UnknownRecord`], [`Error::NotController`] (a record with a subject, shared
    /// by anybody else: names the subject), [`Error::NotOwner`], storage and chain errors.
    pub async fn share(&self, owner: &Member, record: RecordId, user: Address) -> Result<()> {
        let _guard = self.owner_lock.lock().await;
        self.check_member(owner)?;
        let ledger = self.acting(owner);
        let info = self.controlled_record(owner, record).await?;
        self.check_registered(&[user]).await?;
        if ledger.access_state(record, user).await? != AccessState::Granted {
            ledger.grant_access(record, user).await?;
        }
        self.rewrap(&*ledger, owner, &info).await?;
        Ok(())
    }

    /// Revokes a member's access: on-chain revoke; a **new record key**, under which the
    /// attachments are re-encrypted (streamed store → store) and the manifest re-sealed
    /// for the owner and the remaining grantees; the chain's pointer moves to the new
    /// manifest and the old objects are unpinned; then the owner's index partition for
    /// the record's policy rotates to a new epoch (entries added from now on are
    /// unlinkable to search tokens derived before).
    ///
    /// What revocation cannot do: a member who already read the record keeps what they
    /// read; copies of the old ciphertext fetched (or cached by other IPFS nodes) before
    /// the old objects are garbage-collected stay readable with the old record key; a
    /// member whose *attributes* satisfy the base policy still can read — change the
    /// policy or have the authority stop issuing those attributes. Idempotent: if it
    /// fails midway, call it again.
    ///
    /// For a record with a subject, `owner` is the subject (the controller): the subject
    /// re-keys with their own key. The owner's index partition is **not** rotated then (it
    /// is the owner's, keyed by the owner's state, which the subject does not hold): the
    /// revoked member's earlier search tokens for the owner's partition keep matching new
    /// entries of it until the owner's partition rotates (its next revoke, or a new month
    /// or attribute version). The record itself is re-keyed either way.
    ///
    /// # Errors
    /// As for [`Vault::share`].
    pub async fn revoke(&self, owner: &Member, record: RecordId, user: Address) -> Result<()> {
        let _guard = self.owner_lock.lock().await;
        self.check_member(owner)?;
        let ledger = self.acting(owner);
        let info = self.controlled_record(owner, record).await?;
        if ledger.access_state(record, user).await? == AccessState::Granted {
            ledger.revoke_access(record, user).await?;
        }
        let base = self.rekey(&*ledger, owner, &info).await?;
        if info.owner != owner.address() {
            return Ok(());
        }
        self.rotate(&*ledger, owner, &base).await
    }

    /// The record, if `actor` controls it: its subject, or its owner if it has none.
    async fn controlled_record(&self, actor: &Member, record: RecordId) -> Result<RecordInfo> {
        let info = self.record_info(record).await?;
        match info.subject {
            Some(subject) if subject != actor.address() => Err(Error::NotController {
                record,
                controller: subject,
            }),
            Some(_) => Ok(info),
            None if info.owner != actor.address() => Err(Error::NotOwner {
                record,
                owner: info.owner,
            }),
            None => Ok(info),
        }
    }

    /// Re-encrypts the record under a new key for the grantees the chain currently lists;
    /// returns the base policy.
    async fn rekey(
        &self,
        ledger: &dyn Ledger,
        owner: &Member,
        info: &RecordInfo,
    ) -> Result<Policy> {
        let manifest = self.fetch_manifest(info).await?;
        let old = Arc::new(manifest.open_key(owner.key())?);
        let mut body = manifest.open_body(&old)?;
        let base: Policy = body.policy.parse()?;
        let current = manifest.policy()?;
        let wanted = self.wanted_capsule(info, &base, &current).await?;
        let new = Arc::new(DataKey::generate(&mut OsRng));
        let mut superseded = vec![parse_cid(&info.manifest_cid, Pointer::Record)?];
        for (index, attachment) in body.attachments.iter_mut().enumerate() {
            let cid = parse_cid(&attachment.cid, Pointer::Manifest)?;
            let fresh = pipe::reseal_in_store(
                &*self.store,
                &cid,
                &old,
                &new,
                attachment_aad(index as u32),
                attachment.name.clone(),
            )
            .await?;
            attachment.cid = fresh.to_string();
            superseded.push(cid);
        }
        let sealed = Manifest::seal(self.public_key()?, &wanted, &new, &body, &mut OsRng)?;
        let cid = self
            .store
            .put(sealed.to_bytes().into(), PutOptions::new().with_pin(true))
            .await?;
        ledger
            .update_record(info.record, &cid.to_string(), policy_hash(&wanted))
            .await?;
        self.remember_titles(owner, [(cid.to_string().as_str(), body.name.as_str())]);
        for old_cid in superseded {
            if let Err(e) = self.store.unpin(&old_cid).await {
                tracing::warn!(cid = %old_cid, error = %e, "could not unpin a superseded object");
            }
        }
        Ok(base)
    }

    /// Re-wraps the record key for the grantees the chain currently lists, at the
    /// current attribute versions; returns the base policy and whether the capsule
    /// changed.
    pub(super) async fn rewrap(
        &self,
        ledger: &dyn Ledger,
        owner: &Member,
        info: &RecordInfo,
    ) -> Result<(Policy, bool)> {
        let mut manifest = self.fetch_manifest(info).await?;
        let dek = manifest.open_key(owner.key())?;
        let body = manifest.open_body(&dek)?;
        let base: Policy = body.policy.parse()?;
        let current = manifest.policy()?;
        let wanted = self.wanted_capsule(info, &base, &current).await?;
        let changed = wanted.to_string() != current.to_string();
        if changed {
            manifest.rewrap(self.public_key()?, &wanted, &dek, &mut OsRng)?;
            let cid = self
                .store
                .put(manifest.to_bytes().into(), PutOptions::new().with_pin(true))
                .await?;
            ledger
                .update_record(info.record, &cid.to_string(), policy_hash(&wanted))
                .await?;
            self.remember_titles(owner, [(cid.to_string().as_str(), body.name.as_str())]);
            // The superseded manifest is no longer referenced (attachments are shared and
            // stay pinned); as for revocation, a failed unpin only leaves garbage.
            let old = parse_cid(&info.manifest_cid, Pointer::Record)?;
            if let Err(e) = self.store.unpin(&old).await {
                tracing::warn!(cid = %old, error = %e, "could not unpin a superseded manifest");
            }
        }
        Ok((base, changed))
    }

    /// The capsule policy the record should have now: its base policy, the creation and
    /// share dates and the emergency clause of its `current` capsule, the grantees the
    /// chain lists, its subject, at the chain's current attribute versions.
    async fn wanted_capsule(
        &self,
        info: &RecordInfo,
        base: &Policy,
        current: &Policy,
    ) -> Result<Policy> {
        let dates = CapsuleDates::of(current);
        let grantees = self.grantees(info.record).await?;
        let emergency = emergency_of(current);
        let parties = RecordParties {
            subject: info.subject,
            emergency: emergency.as_ref(),
        };
        let versions = self
            .policy_versions(std::iter::once(base).chain(emergency.as_ref()))
            .await?;
        capsule_policy(
            base,
            &dates,
            self.clock.now(),
            info.owner,
            grantees,
            &versions,
            parties,
        )
    }

    async fn grantees(&self, record: RecordId) -> Result<BTreeSet<Address>> {
        let mut users = BTreeSet::new();
        for entry in self.ledger.audit_trail(record).await? {
            match entry.event {
                AuditEvent::AccessGranted { user, .. } => {
                    users.insert(user);
                }
                AuditEvent::AccessRevoked { user, .. } => {
                    users.remove(&user);
                }
                _ => {}
            }
        }
        Ok(users)
    }

    /// `user` asks the controller of `record` (its subject, the patient, if it has one; else
    /// its owner) for access (recorded on chain).
    ///
    /// # Errors
    /// [`Error::UnknownRecord`]; chain errors (e.g. a request already pending).
    pub async fn request_access(&self, user: &Member, record: RecordId) -> Result<()> {
        self.acting(user)
            .request_access(record)
            .await
            .map_err(Error::unknown_or(record))?;
        Ok(())
    }

    /// Pending access requests `owner` answers: for the records it controls (those it owns
    /// without a subject, and those it is the subject of).
    ///
    /// # Errors
    /// Chain errors.
    pub async fn pending_requests(&self, owner: &Member) -> Result<Vec<AccessRequest>> {
        Ok(self.ledger.pending_requests(owner.address()).await?)
    }

    /// Answers a pending request (consent): `approve` shares the record with the requester
    /// ([`Vault::share`]: refused unless the requester is an active, unexpired registered
    /// member); otherwise the request is denied on chain. `owner` is the record's
    /// controller: its subject if it has one (the owner then gets
    /// [`Error::NotController`]; the contract refuses it too), else its owner.
    ///
    /// # Errors
    /// As for [`Vault::share`] ([`Error::NotAMember`]); denying fails if no request is
    /// pending.
    pub async fn answer_request(
        &self,
        owner: &Member,
        record: RecordId,
        requester: Address,
        approve: bool,
    ) -> Result<()> {
        if approve {
            return self.share(owner, record, requester).await;
        }
        self.controlled_record(owner, record).await?;
        self.acting(owner).deny_access(record, requester).await?;
        Ok(())
    }

    /// Records owned by `owner`, oldest first (public chain data).
    ///
    /// # Errors
    /// Chain errors.
    pub async fn records_of(&self, owner: Address) -> Result<Vec<RecordInfo>> {
        self.infos(self.ledger.records_of(owner).await?).await
    }

    /// Records currently shared with `user` (granted, not revoked).
    ///
    /// # Errors
    /// Chain errors.
    pub async fn shared_with(&self, user: Address) -> Result<Vec<RecordInfo>> {
        self.infos(self.ledger.shared_with(user).await?).await
    }

    async fn infos(&self, ids: Vec<RecordId>) -> Result<Vec<RecordInfo>> {
        self.record_infos(&ids).await
    }

    /// The chain's information on each of `records`, in the same order.
    ///
    /// # Errors
    /// [`Error::UnknownRecord`] for an id the registry does not know; chain errors.
    pub async fn record_infos(&self, records: &[RecordId]) -> Result<Vec<RecordInfo>> {
        let mut out = Vec::with_capacity(records.len());
        for id in records {
            out.push(self.record_info(*id).await?);
        }
        Ok(out)
    }

    /// One page of a listing, newest first: the records from position `offset` (0 is the
    /// newest) on, at most `limit` of them, and how many the listing holds. Only the
    /// page's records are read in full, so a page costs the same whatever the history
    /// (an app's record list; [`Vault::records_of`] and the like read every record).
    ///
    /// # Errors
    /// Chain errors.
    pub async fn list_records(
        &self,
        listing: Listing,
        address: Address,
        offset: usize,
        limit: usize,
    ) -> Result<RecordPage> {
        let mut ids = match listing {
            Listing::Owned => self.ledger.records_of(address).await?,
            Listing::SharedWith => self.ledger.shared_with(address).await?,
            Listing::About => self.ledger.records_about(address).await?,
        };
        // Record ids grow with creation.
        ids.sort_unstable_by(|a, b| b.cmp(a));
        ids.dedup();
        let total = ids.len();
        let page: Vec<RecordId> = ids.into_iter().skip(offset).take(limit).collect();
        Ok(RecordPage {
            total,
            records: self.record_infos(&page).await?,
        })
    }

    /// The record's audit trail: every chain event (created, updated, granted, revoked,
    /// requested, denied, accessed), oldest first.
    ///
    /// # Errors
    /// [`Error::UnknownRecord`]; chain errors.
    pub async fn audit(&self, record: RecordId) -> Result<Vec<AuditEntry>> {
        self.record_info(record).await?;
        Ok(self.ledger.audit_trail(record).await?)
    }
}

/// Which records [`Vault::list_records`] lists for an address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Listing {
    /// The records it owns (created).
    Owned,
    /// The records shared with it (granted, not revoked).
    SharedWith,
    /// The records whose subject (patient) it is.
    About,
}

/// A page of [`Vault::list_records`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RecordPage {
    /// How many records the whole listing holds.
    pub total: usize,
    /// The page's records, newest first.
    pub records: Vec<RecordInfo>,
}
