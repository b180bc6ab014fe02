//! The [`Ledger`] trait: the registry's operations and queries, independent of where the chain
//! runs.
//!
//! A chain provides six methods: who signs, where the registry is, a handle for another signer,
//! and [`transact`](Ledger::transact) / [`call`](Ledger::call) / [`logs`](Ledger::logs) against
//! the registry. Every registry operation is a provided method on top of those (ABI encoding,
//! result and event decoding, the event-log queries), so it is written once for every chain.

use std::collections::{BTreeMap, HashSet};
use std::num::NonZeroU32;
use std::sync::Arc;

use alloy::primitives::{Address, B256, U256, keccak256};
use alloy::signers::local::PrivateKeySigner;
use alloy::sol_types::{SolCall, SolEvent};
use async_trait::async_trait;

use crate::backend::{ChainLog, LogFilter, TxOutcome};
use crate::bindings::MedsealRegistry as R;
use crate::error::{LedgerError, LedgerResult};
use crate::events::{
    RECORD_EVENTS, anchor_commitment, anchor_of, capsule_of, cid_commitment, decode_audit_entry,
    decode_event, in_chain_order, record_topic, slot_filter,
};
use crate::members::{fold_members, fold_registrars, member_info};
use crate::types::{
    AccessRequest, AccessState, AuditEntry, CreatedRecord, CreatedRecords, HeadCheck, IndexAnchor,
    MemberInfo, PublishedCapsule, RecordId, RecordInfo, RegisteredMember, Registrar, TxReceipt,
};

/// A `MedsealRegistry` deployment seen through one signing account (the *sender*).
///
/// State-changing operations sign a transaction with the sender's key, wait until it is
/// included, and return its [`TxReceipt`] (gas used included). A call the contract would reject
/// fails with the matching typed [`LedgerError`] (e.g. [`LedgerError::NotOwner`]) and changes
/// nothing. Queries read contract storage and the event log.
///
/// Implemented by [`EmbeddedChain`](crate::EmbeddedChain) and [`RpcChain`](crate::RpcChain);
/// object safe, so it is usually held as `Arc<dyn Ledger>`.
///
/// # Implementing
///
/// Only the first six methods are required; every registry operation is provided on top of
/// [`transact`](Self::transact), [`call`](Self::call) and [`logs`](Self::logs). A wrapper (a
/// fault injector, say) delegates the required methods to an inner ledger and overrides just
/// the operations it changes; provided methods reach each other through `self`, so they see the
/// override. There is deliberately no forwarding impl for `Arc<L>` or `&L`: it could forward
/// only the required methods and would silently bypass the inner ledger's overrides. Share an
/// `Arc<dyn Ledger>` instead, which dispatches every method.
#[async_trait]
pub trait Ledger: Send + Sync {
    /// The account that signs this ledger's transactions.
    fn sender(&self) -> Address;

    /// Address of the registry contract.
    fn registry_address(&self) -> Address;

    /// The same deployment (and, for an [`EmbeddedChain`](crate::EmbeddedChain), the same
    /// shared in-process chain state; for an [`RpcChain`](crate::RpcChain), the same node
    /// connection) seen through another signing account: the returned ledger's
    /// [`sender`](Self::sender) is `signer.address()` and its transactions are signed with
    /// `signer`.
    ///
    /// The object-safe form of the backends' inherent `with_signer`, for code that holds an
    /// `Arc<dyn Ledger>` and acts for several accounts. Creating the handle is cheap and does
    /// no I/O; `self` is unaffected. A wrapper returns a wrapped handle.
    fn for_signer(&self, signer: PrivateKeySigner) -> Arc<dyn Ledger>;

    /// Signs a transaction from the sender to the registry with `calldata` (ABI-encoded,
    /// selector first), submits it and waits for its inclusion; returns the receipt and the
    /// registry logs it emitted. A call the contract rejects fails with the decoded contract
    /// error and is not included.
    async fn transact(&self, calldata: Vec<u8>) -> LedgerResult<TxOutcome>;

    /// Executes a read-only call of the registry (from the sender) against the latest state and
    /// returns its output; a revert fails with the decoded contract error.
    async fn call(&self, calldata: Vec<u8>) -> LedgerResult<Vec<u8>>;

    /// The registry's logs that pass `filter`, in chain order (block, then log index).
    async fn logs(&self, filter: &LogFilter) -> LedgerResult<Vec<ChainLog>>;

    /// What `account` holds to pay for gas, in wei; `None` if this chain charges nothing
    /// for transactions (the [`EmbeddedChain`](crate::EmbeddedChain)). An
    /// [`RpcChain`](crate::RpcChain) asks the node (`eth_getBalance`, latest block).
    ///
    /// Lets a caller warn about an unfunded account before its first transaction fails
    /// with [`LedgerError::InsufficientFunds`]. Provided, answering `None`: a wrapper of a
    /// chain that charges for gas forwards it to the inner ledger.
    async fn balance(&self, account: Address) -> LedgerResult<Option<U256>> {
        let _ = account;
        Ok(None)
    }

    /// Creates a record owned by the sender. `manifest_cid` must be non-empty and
    /// `policy_hash` nonzero ([`LedgerError::EmptyField`] otherwise).
    async fn create_record(
        &self,
        manifest_cid: &str,
        policy_hash: B256,
    ) -> LedgerResult<CreatedRecord> {
        let calldata = R::createRecordCall::new((manifest_cid.to_owned(), policy_hash));
        created_one(self.transact(calldata.abi_encode()).await?)
    }

    /// Creates a record owned by the sender about `subject` (the patient), who becomes its
    /// controller: only the subject answers access requests, grants and revokes; the sender
    /// keeps reading the record and alone updates it. `subject` must be nonzero and not the
    /// sender ([`LedgerError::InvalidSubject`]); the other checks as
    /// [`create_record`](Self::create_record).
    async fn create_record_for(
        &self,
        manifest_cid: &str,
        policy_hash: B256,
        subject: Address,
    ) -> LedgerResult<CreatedRecord> {
        let calldata = R::createRecordForCall::new((manifest_cid.to_owned(), policy_hash, subject));
        created_one(self.transact(calldata.abi_encode()).await?)
    }

    /// Creates one record per `(manifest_cid, policy_hash)` in one transaction (bulk import),
    /// owned by the sender, with consecutive ids in the given order. Every CID must be
    /// non-empty and every hash nonzero, and the list non-empty ([`LedgerError::EmptyField`]).
    async fn create_records(&self, records: &[(String, B256)]) -> LedgerResult<CreatedRecords> {
        let calldata = R::createRecordsCall {
            manifestCids: records.iter().map(|(cid, _)| cid.clone()).collect(),
            policyHashes: records.iter().map(|(_, policy)| *policy).collect(),
        }
        .abi_encode();
        created_many(self.transact(calldata).await?, records.len())
    }

    /// [`create_records`](Self::create_records) with a subject per record
    /// (`(manifest_cid, policy_hash, subject)`, [`create_record_for`](Self::create_record_for)
    /// semantics). One invalid subject rejects the whole batch.
    async fn create_records_for(
        &self,
        records: &[(String, B256, Address)],
    ) -> LedgerResult<CreatedRecords> {
        let calldata = R::createRecordsForCall {
            manifestCids: records.iter().map(|(cid, _, _)| cid.clone()).collect(),
            policyHashes: records.iter().map(|(_, policy, _)| *policy).collect(),
            subjects: records.iter().map(|(_, _, subject)| *subject).collect(),
        }
        .abi_encode();
        created_many(self.transact(calldata).await?, records.len())
    }

    /// Replaces manifest pointer and policy hash of a record the sender owns or is the subject
    /// of ([`LedgerError::NotOwner`] for anybody else).
    async fn update_record(
        &self,
        record: RecordId,
        manifest_cid: &str,
        policy_hash: B256,
    ) -> LedgerResult<TxReceipt> {
        let call = R::updateRecordCall::new((record.0, manifest_cid.to_owned(), policy_hash));
        submit(self, call).await
    }

    /// Grants `user` access to a record the sender controls — it is the record's subject, or
    /// its owner if it has none ([`LedgerError::NotController`] otherwise); also answers a
    /// pending request. `user` cannot be zero, the owner or the subject
    /// ([`LedgerError::InvalidUser`]).
    async fn grant_access(&self, record: RecordId, user: Address) -> LedgerResult<TxReceipt> {
        submit(self, R::grantAccessCall::new((record.0, user))).await
    }

    /// Revokes the access of `user` to a record the sender controls.
    async fn revoke_access(&self, record: RecordId, user: Address) -> LedgerResult<TxReceipt> {
        submit(self, R::revokeAccessCall::new((record.0, user))).await
    }

    /// The sender asks the record's controller (its subject, or its owner) for access.
    async fn request_access(&self, record: RecordId) -> LedgerResult<TxReceipt> {
        submit(self, R::requestAccessCall { record: record.0 }).await
    }

    /// Denies the pending request of `user` for a record the sender controls.
    async fn deny_access(&self, record: RecordId, user: Address) -> LedgerResult<TxReceipt> {
        submit(self, R::denyAccessCall::new((record.0, user))).await
    }

    /// Records in the audit trail that the sender (owner, subject or grantee) accessed the
    /// record.
    async fn log_access(&self, record: RecordId) -> LedgerResult<TxReceipt> {
        submit(self, R::logAccessCall { record: record.0 }).await
    }

    /// Break-glass: records in the record's audit trail that the sender is about to open it
    /// under an emergency role, and why. Call it *before* opening the key: the contract cannot
    /// see ABE attributes, so anyone may log, and that every emergency read is logged relies
    /// on the client. `reason` must be 1 to 1,024 bytes ([`LedgerError::EmptyField`],
    /// [`LedgerError::ReasonTooLong`]).
    async fn log_emergency_access(
        &self,
        record: RecordId,
        reason: &str,
    ) -> LedgerResult<TxReceipt> {
        let call = R::logEmergencyAccessCall::new((record.0, reason.to_owned()));
        submit(self, call).await
    }

    /// The record's controller: its subject if it has one, else its owner.
    async fn controller(&self, record: RecordId) -> LedgerResult<Address> {
        query(self, R::controllerOfCall { record: record.0 }).await
    }

    /// Anchors the Merkle root of the encrypted-index shard holding batches
    /// `first_seq..=last_seq` of a partition, superseding the shards anchored for those
    /// batches before. Batch `last_seq` must be the next one: once per (sender, partition,
    /// last_seq), in order ([`LedgerError::AnchorOutOfOrder`], [`LedgerError::AlreadyAnchored`]).
    async fn anchor_index(
        &self,
        partition: B256,
        first_seq: u64,
        last_seq: u64,
        shard_cid: &str,
        merkle_root: B256,
    ) -> LedgerResult<TxReceipt> {
        let call = R::anchorIndexCall {
            partition,
            firstSeq: first_seq,
            lastSeq: last_seq,
            shardCid: shard_cid.to_owned(),
            merkleRoot: merkle_root,
        };
        submit(self, call).await
    }

    /// Publishes the key capsule of (`partition`, `epoch`); once per (sender, partition, epoch).
    async fn publish_capsule(
        &self,
        partition: B256,
        epoch: u64,
        capsule_cid: &str,
        policy_hash: B256,
    ) -> LedgerResult<TxReceipt> {
        let call = R::publishCapsuleCall {
            partition,
            epoch,
            capsuleCid: capsule_cid.to_owned(),
            policyHash: policy_hash,
        };
        submit(self, call).await
    }

    /// The stored record (with its current manifest pointer from the event log).
    async fn record(&self, record: RecordId) -> LedgerResult<RecordInfo> {
        let stored = query(self, R::getRecordCall { record: record.0 }).await?;
        // The full CID and the policy hash live only in the event log: take the newest
        // create/update event that matches the stored commitment (a newer, non-matching one can
        // only be an update that landed after the storage read).
        let filter = LogFilter::events(&[
            R::RecordCreated::SIGNATURE_HASH,
            R::RecordUpdated::SIGNATURE_HASH,
        ])
        .with_topic(0, record_topic(record));
        let logs = self.logs(&filter).await?;
        let mut manifest_cid = None;
        for log in logs.iter().rev() {
            let (cid, policy) = if log.topics.first() == Some(&R::RecordCreated::SIGNATURE_HASH) {
                let e = decode_event::<R::RecordCreated>(log)?;
                (e.manifestCid, e.policyHash)
            } else {
                let e = decode_event::<R::RecordUpdated>(log)?;
                (e.manifestCid, e.policyHash)
            };
            if cid_commitment(&cid, policy) == stored.commitment {
                manifest_cid = Some((cid, policy));
                break;
            }
        }
        let (manifest_cid, policy_hash) = manifest_cid.ok_or_else(|| {
            LedgerError::Corrupt(format!(
                "record {record}: no create/update event matches the stored commitment"
            ))
        })?;
        Ok(RecordInfo {
            record,
            owner: stored.owner,
            subject: Some(stored.subject).filter(|subject| !subject.is_zero()),
            created_at: stored.createdAt.to::<u64>(),
            updated_at: stored.updatedAt.to::<u64>(),
            manifest_digest: keccak256(manifest_cid.as_bytes()),
            manifest_cid,
            policy_hash,
        })
    }

    /// The first of `records` that `owner` does not own (or that does not exist), if any: one
    /// view call for a whole list (e.g. the hits of a search in one owner's partition).
    async fn first_not_owned_by(
        &self,
        owner: Address,
        records: &[RecordId],
    ) -> LedgerResult<Option<RecordId>> {
        let call = R::firstNotOwnedByCall {
            owner,
            records: records.iter().map(|r| r.0).collect(),
        };
        let position = query(self, call).await?;
        Ok(usize::try_from(position)
            .ok()
            .and_then(|i| records.get(i))
            .copied())
    }

    /// [`Ledger::first_not_owned_by`] for several owners in one view call (e.g. the hits of a
    /// search from every partition, grouped by publisher): the first group holding a record
    /// its owner does not own (or that does not exist), and that record.
    async fn first_not_owned_by_all(
        &self,
        groups: &[(Address, Vec<RecordId>)],
    ) -> LedgerResult<Option<(usize, RecordId)>> {
        if groups.is_empty() {
            return Ok(None);
        }
        let call = R::firstNotOwnedByAllCall {
            groups: groups
                .iter()
                .map(|(owner, records)| R::OwnedRecords {
                    owner: *owner,
                    records: records.iter().map(|r| r.0).collect(),
                })
                .collect(),
        };
        let found = query(self, call).await?;
        let (group, position) = (
            usize::try_from(found.group),
            usize::try_from(found.position),
        );
        Ok(match (group, position) {
            (Ok(g), Ok(i)) => groups
                .get(g)
                .and_then(|(_, records)| records.get(i))
                .map(|&record| (g, record)),
            _ => None,
        })
    }

    /// Number of records created so far (ids are `1..=record_count`).
    async fn record_count(&self) -> LedgerResult<u64> {
        query(self, R::recordCountCall {}).await
    }

    /// Whether `user` may read the record (owner and subject always may).
    async fn can_access(&self, record: RecordId, user: Address) -> LedgerResult<bool> {
        query(self, R::canAccessCall::new((record.0, user))).await
    }

    /// The stored access state of `user` for the record.
    async fn access_state(&self, record: RecordId, user: Address) -> LedgerResult<AccessState> {
        match query(self, R::accessStateCall::new((record.0, user))).await? {
            0 => Ok(AccessState::None),
            1 => Ok(AccessState::Requested),
            2 => Ok(AccessState::Granted),
            other => Err(LedgerError::Corrupt(format!(
                "accessState returned unknown value {other}"
            ))),
        }
    }

    /// Records owned by `owner`, in creation order (from `RecordCreated` events).
    async fn records_of(&self, owner: Address) -> LedgerResult<Vec<RecordId>> {
        let filter =
            LogFilter::events(&[R::RecordCreated::SIGNATURE_HASH]).with_topic(1, owner.into_word());
        let logs = self.logs(&filter).await?;
        logs.iter()
            .map(|log| Ok(RecordId(decode_event::<R::RecordCreated>(log)?.record)))
            .collect()
    }

    /// Records about `subject` (the patient), in creation order (from the indexed
    /// `RecordSubject` events).
    async fn records_about(&self, subject: Address) -> LedgerResult<Vec<RecordId>> {
        let filter = LogFilter::events(&[R::RecordSubject::SIGNATURE_HASH])
            .with_topic(1, subject.into_word());
        let logs = self.logs(&filter).await?;
        logs.iter()
            .map(|log| Ok(RecordId(decode_event::<R::RecordSubject>(log)?.record)))
            .collect()
    }

    /// Records `user` currently has been granted access to, ascending (from
    /// `AccessGranted`/`AccessRevoked` events, cross-checked with contract storage).
    async fn shared_with(&self, user: Address) -> LedgerResult<Vec<RecordId>> {
        // Replaying grants and revocations in chain order reproduces the Granted bit exactly:
        // the contract changes it only in grantAccess / revokeAccess, and both always emit.
        let filter = LogFilter::events(&[
            R::AccessGranted::SIGNATURE_HASH,
            R::AccessRevoked::SIGNATURE_HASH,
        ])
        .with_topic(1, user.into_word());
        let mut granted: BTreeMap<u64, bool> = BTreeMap::new();
        for log in self.logs(&filter).await? {
            if log.topics.first() == Some(&R::AccessGranted::SIGNATURE_HASH) {
                granted.insert(decode_event::<R::AccessGranted>(&log)?.record, true);
            } else {
                granted.insert(decode_event::<R::AccessRevoked>(&log)?.record, false);
            }
        }
        Ok(granted
            .into_iter()
            .filter(|(_, is_granted)| *is_granted)
            .map(|(record, _)| RecordId(record))
            .collect())
    }

    /// Pending (unanswered) access requests that `approver` is to answer: for the records it
    /// controls (those about it as subject, and those it owns that have no subject). From the
    /// `AccessRequested` events indexed by approver, each checked against storage.
    async fn pending_requests(&self, approver: Address) -> LedgerResult<Vec<AccessRequest>> {
        let filter = LogFilter::events(&[R::AccessRequested::SIGNATURE_HASH])
            .with_topic(2, approver.into_word());
        let mut seen = HashSet::new();
        let mut pending = Vec::new();
        for log in self.logs(&filter).await? {
            let event = decode_event::<R::AccessRequested>(&log)?;
            let request = AccessRequest {
                record: RecordId(event.record),
                requester: event.requester,
            };
            if !seen.insert(request) {
                continue;
            }
            // Grant and deny both answer a request; storage says whether it is still open.
            let state = self.access_state(request.record, request.requester).await?;
            if state == AccessState::Requested {
                pending.push(request);
            }
        }
        Ok(pending)
    }

    /// Every event of the record, oldest first: creation and subject, updates, requests,
    /// consent decisions with who decided, logged and emergency accesses.
    async fn audit_trail(&self, record: RecordId) -> LedgerResult<Vec<AuditEntry>> {
        let filter = LogFilter::events(&RECORD_EVENTS).with_topic(0, record_topic(record));
        let logs = self.logs(&filter).await?;
        logs.iter().map(decode_audit_entry).collect()
    }

    /// The authority of the member registry (initially the deployer).
    async fn authority(&self) -> LedgerResult<Address> {
        query(self, R::authorityCall {}).await
    }

    /// Hands the authority role to `next` (sender must be the authority,
    /// [`LedgerError::NotAuthority`]; `next` nonzero, [`LedgerError::InvalidAccount`]).
    async fn transfer_authority(&self, next: Address) -> LedgerResult<TxReceipt> {
        submit(self, R::transferAuthorityCall { next }).await
    }

    /// Appoints `registrar` (e.g. a hospital), named `name`, to register members; appointing
    /// it again renames it. Authority only.
    async fn appoint_registrar(&self, registrar: Address, name: &str) -> LedgerResult<TxReceipt> {
        submit(
            self,
            R::appointRegistrarCall::new((registrar, name.to_owned())),
        )
        .await
    }

    /// Dismisses `registrar` ([`LedgerError::UnknownRegistrar`] if it is not one): it can no
    /// longer register, renew or revoke; its members stay registered. Authority only.
    async fn dismiss_registrar(&self, registrar: Address) -> LedgerResult<TxReceipt> {
        submit(self, R::dismissRegistrarCall { registrar }).await
    }

    /// Whether `account` is an appointed registrar (the authority is not one, but may do all a
    /// registrar may).
    async fn is_registrar(&self, account: Address) -> LedgerResult<bool> {
        query(self, R::isRegistrarCall { account }).await
    }

    /// Every registrar ever appointed, in order of first appointment, with its latest name and
    /// whether it is still appointed (from the `RegistrarAppointed` / `RegistrarDismissed`
    /// events: one query of each event's own index).
    async fn registrars(&self) -> LedgerResult<Vec<Registrar>> {
        let filter = LogFilter::events(&[
            R::RegistrarAppointed::SIGNATURE_HASH,
            R::RegistrarDismissed::SIGNATURE_HASH,
        ]);
        fold_registrars(self.logs(&filter).await?)
    }

    /// Registers `member` (or renews / re-issues the key of an active one) under the display
    /// name `name`, with the attributes issued to it and their digest, valid through month
    /// `valid_through` (`year * 12 + month - 1`; `None`: never expires). The sender must be the
    /// authority or an appointed registrar ([`LedgerError::NotRegistrar`]); a renewal, the
    /// authority or the registrar that issued the current key
    /// ([`LedgerError::NotMemberRegistrar`]). A revoked member cannot come back
    /// ([`LedgerError::MemberRevoked`]). The `MemberRegistered` event is the on-chain log of the
    /// key issuance.
    async fn register_member(
        &self,
        member: Address,
        name: &str,
        attributes_digest: B256,
        attributes: &[String],
        valid_through: Option<NonZeroU32>,
    ) -> LedgerResult<TxReceipt> {
        let call = R::registerMemberCall {
            account: member,
            name: name.to_owned(),
            attributesDigest: attributes_digest,
            attributes: attributes.to_vec(),
            validThrough: valid_through.map_or(0, NonZeroU32::get),
        };
        submit(self, call).await
    }

    /// Revokes `member` permanently, for `reason` (1 to 1,024 bytes), and bumps the version of
    /// each of `bump_attributes` ([`attribute_hash`](crate::attribute_hash) of each attribute
    /// text) so that records encrypted from now on need a key issued after the bump. The
    /// sender must be the authority or the registrar that issued the member's current key.
    async fn revoke_member(
        &self,
        member: Address,
        reason: &str,
        bump_attributes: &[B256],
    ) -> LedgerResult<TxReceipt> {
        let call = R::revokeMemberCall {
            account: member,
            reason: reason.to_owned(),
            bumpAttributes: bump_attributes.to_vec(),
        };
        submit(self, call).await
    }

    /// What the registry stores about `account` (status [`Unregistered`] if never registered).
    ///
    /// [`Unregistered`]: crate::MemberStatus::Unregistered
    async fn member(&self, account: Address) -> LedgerResult<MemberInfo> {
        let stored = query(self, R::memberCall { account }).await?;
        let stored = R::Member {
            registrar: stored.registrar,
            validThrough: stored.validThrough,
            status: stored.status,
            attributesDigest: stored.attributesDigest,
        };
        member_info(account, &stored)
    }

    /// [`member`](Self::member) of each of `accounts`, in order, in one view call (e.g. every
    /// recipient of a share before sending).
    async fn members_status(&self, accounts: &[Address]) -> LedgerResult<Vec<MemberInfo>> {
        if accounts.is_empty() {
            return Ok(Vec::new());
        }
        let stored = query(
            self,
            R::membersCall {
                accounts: accounts.to_vec(),
            },
        )
        .await?;
        if stored.len() != accounts.len() {
            return Err(LedgerError::Corrupt(format!(
                "members answered {} registrations for {} accounts",
                stored.len(),
                accounts.len()
            )));
        }
        accounts
            .iter()
            .zip(&stored)
            .map(|(account, stored)| member_info(*account, stored))
            .collect()
    }

    /// Every member ever registered, in order of first registration: its latest registration
    /// or renewal (name, attributes, digest, validity, registrar) and its revocation (who, why),
    /// if any. From the `MemberRegistered` / `MemberRevoked` events: one query of each event's
    /// own index, not a scan of the whole log.
    async fn registered_members(&self) -> LedgerResult<Vec<RegisteredMember>> {
        let filter = LogFilter::events(&[
            R::MemberRegistered::SIGNATURE_HASH,
            R::MemberRevoked::SIGNATURE_HASH,
        ]);
        fold_members(self.logs(&filter).await?)
    }

    /// The current version of each attribute ([`attribute_hash`](crate::attribute_hash) of its
    /// text), in order; 0 for one never bumped. One view call.
    async fn attribute_versions(&self, attributes: &[B256]) -> LedgerResult<Vec<u32>> {
        if attributes.is_empty() {
            return Ok(Vec::new());
        }
        let versions = query(
            self,
            R::attributeVersionsCall {
                attributes: attributes.to_vec(),
            },
        )
        .await?;
        if versions.len() != attributes.len() {
            return Err(LedgerError::Corrupt(format!(
                "attributeVersions answered {} versions for {} attributes",
                versions.len(),
                attributes.len()
            )));
        }
        Ok(versions)
    }

    /// The shard `anchorer` anchored as ending at batch `last_seq` of `partition`, if any
    /// (checked against the commitment in storage).
    async fn index_anchor(
        &self,
        anchorer: Address,
        partition: B256,
        last_seq: u64,
    ) -> LedgerResult<Option<IndexAnchor>> {
        let call = R::anchorCommitmentCall::new((anchorer, partition, last_seq));
        let commitment = query(self, call).await?;
        if commitment.is_zero() {
            return Ok(None);
        }
        let (event, block) =
            stored_event::<_, R::IndexAnchored>(self, anchorer, partition, last_seq, |e| {
                anchor_commitment(e.merkleRoot, e.firstSeq) == commitment
            })
            .await?;
        Ok(Some(anchor_of(event, block)))
    }

    /// How many batches of `partition` `anchorer` anchored: they are `0..count` (anchors come
    /// in order). One view call, O(log count) storage reads.
    async fn index_head(&self, anchorer: Address, partition: B256) -> LedgerResult<u64> {
        query(self, R::indexHeadCall::new((anchorer, partition))).await
    }

    /// [`Ledger::index_head`] for a reader who already saw `known` batches, the last of them
    /// anchored by a shard starting at batch `known_first` with root `known_root`: when that
    /// anchor is still there and batch `known` is not anchored (anchors come in order),
    /// the head is `known`, found with two single-slot view calls (run concurrently)
    /// instead of the O(log count) search; otherwise (new batches, or a reorganised chain)
    /// [`Ledger::index_head`].
    async fn index_head_after(
        &self,
        anchorer: Address,
        partition: B256,
        known: u64,
        known_first: u64,
        known_root: B256,
    ) -> LedgerResult<u64> {
        if let Some(last) = known.checked_sub(1) {
            let (next, last_commitment) = tokio::join!(
                query(
                    self,
                    R::anchorCommitmentCall::new((anchorer, partition, known))
                ),
                query(
                    self,
                    R::anchorCommitmentCall::new((anchorer, partition, last))
                ),
            );
            if next?.is_zero() && last_commitment? == anchor_commitment(known_root, known_first) {
                return Ok(known);
            }
        }
        self.index_head(anchorer, partition).await
    }

    /// For each check, whether the partition's index head is still what the reader saw
    /// (see [`HeadCheck`]): the anchor of its last known batch is unchanged and the next
    /// batch is not anchored. One view call for all of them (two storage reads each), so a
    /// search over many partitions checks them all at once; a `false` needs
    /// [`Ledger::index_head`].
    async fn index_heads_unchanged(&self, checks: &[HeadCheck]) -> LedgerResult<Vec<bool>> {
        if checks.is_empty() {
            return Ok(Vec::new());
        }
        let slot = |c: &HeadCheck, last_seq| R::AnchorSlot {
            anchorer: c.anchorer,
            partition: c.partition,
            lastSeq: last_seq,
        };
        let mut slots = Vec::with_capacity(2 * checks.len());
        for c in checks {
            slots.push(slot(c, c.known));
            if let Some(last) = c.known.checked_sub(1) {
                slots.push(slot(c, last));
            }
        }
        let expected = slots.len();
        let commitments = query(self, R::anchorCommitmentsCall { slots }).await?;
        if commitments.len() != expected {
            return Err(LedgerError::Corrupt(format!(
                "anchorCommitments answered {} slots for {expected}",
                commitments.len()
            )));
        }
        let mut read = commitments.into_iter();
        let mut unchanged = Vec::with_capacity(checks.len());
        for c in checks {
            let next_free = read.next().is_some_and(|next| next.is_zero());
            let last_same =
                c.known == 0 || read.next() == Some(anchor_commitment(c.known_root, c.known_first));
            unchanged.push(next_free && last_same);
        }
        Ok(unchanged)
    }

    /// The live shards of `partition` as anchored by `anchorer`, oldest first: from the newest
    /// anchor back, each next one ending where the previous one starts. They cover batches
    /// `0..index_head` exactly; superseded anchors are skipped. O(live shards) lookups, each
    /// checked against storage.
    async fn live_index_anchors(
        &self,
        anchorer: Address,
        partition: B256,
    ) -> LedgerResult<Vec<IndexAnchor>> {
        let mut live = Vec::new();
        let mut end = self.index_head(anchorer, partition).await?;
        while let Some(last_seq) = end.checked_sub(1) {
            let anchor = self
                .index_anchor(anchorer, partition, last_seq)
                .await?
                .ok_or_else(|| {
                    LedgerError::Corrupt(format!(
                        "partition {partition} of {anchorer}: batch {last_seq} is below the index head but not anchored"
                    ))
                })?;
            end = anchor.first_seq;
            live.push(anchor);
        }
        live.reverse();
        Ok(live)
    }

    /// The key capsule published by `publisher` for (`partition`, `epoch`), if any.
    async fn capsule(
        &self,
        publisher: Address,
        partition: B256,
        epoch: u64,
    ) -> LedgerResult<Option<PublishedCapsule>> {
        let call = R::capsuleCommitmentCall::new((publisher, partition, epoch));
        let commitment = query(self, call).await?;
        if commitment.is_zero() {
            return Ok(None);
        }
        let (event, block) =
            stored_event::<_, R::CapsulePublished>(self, publisher, partition, epoch, |e| {
                cid_commitment(&e.capsuleCid, e.policyHash) == commitment
            })
            .await?;
        Ok(Some(capsule_of(event, block)))
    }

    /// Every published key capsule, or with `Some(publisher)` only that account's, oldest
    /// first (block order, then log order within a block).
    ///
    /// Answered from the `CapsulePublished` events (filtered on the indexed publisher), not
    /// cross-checked entry by entry with the stored commitments ([`capsule`](Self::capsule)
    /// does that for one entry); the contract stores exactly what it emits. A log that does
    /// not decode, or a second capsule for the same (publisher, partition, epoch) — the
    /// contract allows one — fails with [`LedgerError::Corrupt`].
    async fn capsules(&self, publisher: Option<Address>) -> LedgerResult<Vec<PublishedCapsule>> {
        let mut filter = LogFilter::events(&[R::CapsulePublished::SIGNATURE_HASH]);
        if let Some(publisher) = publisher {
            filter = filter.with_topic(0, publisher.into_word());
        }
        let mut seen = HashSet::new();
        let mut capsules = Vec::new();
        for log in in_chain_order(self.logs(&filter).await?) {
            let event = decode_event::<R::CapsulePublished>(&log)?;
            if let Some(wanted) = publisher.filter(|p| *p != event.publisher) {
                return Err(LedgerError::Corrupt(format!(
                    "CapsulePublished log of {} returned for publisher filter {wanted}",
                    event.publisher
                )));
            }
            if !seen.insert((event.publisher, event.partition, event.epoch)) {
                return Err(LedgerError::Corrupt(format!(
                    "two CapsulePublished events of {} for partition {} epoch {}",
                    event.publisher, event.partition, event.epoch
                )));
            }
            capsules.push(capsule_of(event, log.block_number));
        }
        Ok(capsules)
    }

    /// Every index shard `anchorer` ever anchored in `partition`, superseded ones included
    /// (for audit; [`live_index_anchors`](Self::live_index_anchors) lists the live ones),
    /// sorted by `last_seq`. O(batches): one log query over the partition's whole history.
    ///
    /// Answered from the `IndexAnchored` events (filtered on the indexed anchorer and
    /// partition), not cross-checked entry by entry with the stored roots
    /// ([`index_anchor`](Self::index_anchor) does that for one entry); the contract stores
    /// exactly what it emits. A log that does not decode, or two anchors for one shard — the
    /// contract allows one — fails with [`LedgerError::Corrupt`].
    async fn index_anchors(
        &self,
        anchorer: Address,
        partition: B256,
    ) -> LedgerResult<Vec<IndexAnchor>> {
        let filter = LogFilter::events(&[R::IndexAnchored::SIGNATURE_HASH])
            .with_topic(0, anchorer.into_word())
            .with_topic(1, partition);
        let mut by_seq: BTreeMap<u64, IndexAnchor> = BTreeMap::new();
        for log in in_chain_order(self.logs(&filter).await?) {
            let event = decode_event::<R::IndexAnchored>(&log)?;
            if event.anchorer != anchorer || event.partition != partition {
                return Err(LedgerError::Corrupt(format!(
                    "IndexAnchored log of {} / {} returned for filter {anchorer} / {partition}",
                    event.anchorer, event.partition,
                )));
            }
            let last_seq = event.lastSeq;
            if by_seq
                .insert(last_seq, anchor_of(event, log.block_number))
                .is_some()
            {
                return Err(LedgerError::Corrupt(format!(
                    "two IndexAnchored events of {anchorer} for partition {partition} batch {last_seq}"
                )));
            }
        }
        Ok(by_seq.into_values().collect())
    }
}

/// Calls a view function of the registry and decodes its result.
async fn query<L: Ledger + ?Sized, C: SolCall>(ledger: &L, call: C) -> LedgerResult<C::Return> {
    let output = ledger.call(call.abi_encode()).await?;
    C::abi_decode_returns(&output).map_err(|e| {
        LedgerError::Corrupt(format!("cannot decode the result of {}: {e}", C::SIGNATURE))
    })
}

/// The record created by a `createRecord(For)` transaction.
fn created_one(outcome: TxOutcome) -> LedgerResult<CreatedRecord> {
    let created = outcome
        .logs
        .iter()
        .find(|log| log.topics.first() == Some(&R::RecordCreated::SIGNATURE_HASH))
        .ok_or_else(|| {
            LedgerError::Corrupt("createRecord succeeded without a RecordCreated event".into())
        })?;
    Ok(CreatedRecord {
        record: RecordId(decode_event::<R::RecordCreated>(created)?.record),
        receipt: outcome.receipt,
    })
}

/// The `expected` records created by a `createRecords(For)` transaction.
fn created_many(outcome: TxOutcome, expected: usize) -> LedgerResult<CreatedRecords> {
    let ids = outcome
        .logs
        .iter()
        .filter(|log| log.topics.first() == Some(&R::RecordCreated::SIGNATURE_HASH))
        .map(|log| Ok(RecordId(decode_event::<R::RecordCreated>(log)?.record)))
        .collect::<LedgerResult<Vec<_>>>()?;
    if ids.len() != expected {
        return Err(LedgerError::Corrupt(format!(
            "createRecords of {expected} records emitted {} RecordCreated events",
            ids.len()
        )));
    }
    Ok(CreatedRecords {
        records: ids,
        receipt: outcome.receipt,
    })
}

/// Sends a transaction calling the registry; returns its receipt.
async fn submit<L: Ledger + ?Sized, C: SolCall>(ledger: &L, call: C) -> LedgerResult<TxReceipt> {
    Ok(ledger.transact(call.abi_encode()).await?.receipt)
}

/// The event `E` of `who` for (`partition`, `n`) (see [`slot_filter`]) that matches what
/// contract storage holds (`matches`), with its block number; `Corrupt` if storage has a value
/// no event explains.
async fn stored_event<L: Ledger + ?Sized, E: SolEvent>(
    ledger: &L,
    who: Address,
    partition: B256,
    n: u64,
    matches: impl Fn(&E) -> bool + Send,
) -> LedgerResult<(E, u64)> {
    let filter = slot_filter(E::SIGNATURE_HASH, who, partition, n);
    for log in ledger.logs(&filter).await? {
        let event = decode_event::<E>(&log)?;
        if matches(&event) {
            return Ok((event, log.block_number));
        }
    }
    Err(LedgerError::Corrupt(format!(
        "stored value of {who} for slot {n} has no matching {} event",
        E::SIGNATURE
    )))
}
