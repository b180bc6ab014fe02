//! The owner's private index state: partitions, their published capsules, and the
//! completion of puts a crash interrupted.

use std::collections::HashMap;

use rand_core::OsRng;

use super::search::record_ref;
use super::{Vault, parse_cid};
use crate::abe::Policy;
use crate::chain::{Address, B256, Ledger, RecordId};
use crate::error::{Error, Pointer, Result};
use crate::identity::Member;
use crate::index::Keyword;
use crate::index::sse::{Capsule, OwnerPartition, Partition, Shard};
use crate::manifest::{partition_base, partition_policy, policy_hash};
use crate::state::{CompletedPut, OwnerState, PartitionSlot};
use crate::storage::{Cid, PutOptions};
use crate::validity::Month;
use crate::versions::AttributeVersions;

/// Which live shards [`Vault::anchor_batch`] merges a new batch with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Merge {
    /// The newest ones the logarithmic rule asks for ([`OwnerPartition::merge_span`]).
    Newest,
    /// All of them (a compaction: [`Vault::compact_index`]).
    All,
}

/// A batch's shard as [`Vault::anchor_batch`] stored and anchored it.
pub(super) struct AnchoredShard {
    /// The stored shard (the batch merged with the shards it supersedes).
    pub(super) cid: Cid,
    /// The shards it supersedes, to unpin once the partition's state is saved.
    pub(super) superseded: Vec<Cid>,
    /// Its entries.
    pub(super) entries: u64,
    /// Its encoded size.
    pub(super) bytes: u64,
}

impl Vault {
    /// The private index state of `owner` (call with the owner lock held): the one the
    /// last successful owner operation of this vault kept in memory, if the state's files
    /// are unchanged since (same lengths, modification times and inodes), else loaded from
    /// the files. A put thus neither decodes nor rewrites the whole state: a warm vault
    /// does work proportional to the put, and a new process loads the state once (time
    /// proportional to the state) on its first owner operation.
    pub(super) fn owner_state(&self, owner: Address) -> Result<OwnerState> {
        let kept = match self.owner_states.lock() {
            Ok(mut states) => states.remove(&owner),
            Err(_) => None,
        };
        match kept {
            Some(state) if state.is_current(&self.dir, owner) => Ok(state),
            _ => OwnerState::load(&self.dir, owner),
        }
    }

    /// Keeps `state`, saved by an operation that succeeded, for the next owner operation.
    /// A state an operation failed with is dropped instead (it may hold changes its files
    /// do not): the next operation loads the files.
    pub(super) fn keep_owner_state(&self, owner: Address, state: OwnerState) {
        if let Ok(mut states) = self.owner_states.lock() {
            states.insert(owner, state);
        }
    }

    /// Completes a put of `owner` that a crash interrupted (if any); returns its record (the
    /// last record, for an interrupted [`Vault::put_many`] batch). See
    /// [`Vault::complete_interrupted`].
    ///
    /// # Errors
    /// Storage and chain errors (the intent stays persisted; call again).
    pub async fn recover(&self, owner: &Member) -> Result<Option<RecordId>> {
        Ok(self.complete_interrupted(owner).await?.last().copied())
    }

    /// Completes a put of `owner` that was interrupted after its intent was saved (a
    /// crash, a cancelled future, a chain that failed), if any, and returns its records
    /// (empty if there was none). The records are kept for a retry of that put to claim
    /// ([`Vault::put`] returns them with [`PutOutcome::CompletedInterrupted`] instead of
    /// storing them again).
    ///
    /// Puts complete an interrupted put first anyway; call this when an owner starts
    /// working with a vault (the `medseal` tool does on every command run as a member),
    /// so that the record is on chain and searchable before anything else happens.
    ///
    /// # Errors
    /// Storage and chain errors (the intent stays persisted; call again).
    ///
    /// [`PutOutcome::CompletedInterrupted`]: crate::PutOutcome::CompletedInterrupted
    pub async fn complete_interrupted(&self, owner: &Member) -> Result<Vec<RecordId>> {
        let _guard = self.owner_lock.lock().await;
        let ledger = self.acting(owner);
        let mut state = self.owner_state(owner.address())?;
        let done = self
            .complete_pending(&*ledger, owner, &mut state, false)
            .await?;
        self.keep_owner_state(owner.address(), state);
        Ok(done.into_iter().map(|(id, _)| id).collect())
    }

    /// Whether `owner` has a put whose intent was saved and which is not complete yet
    /// (the next owner operation, or [`Vault::complete_interrupted`], completes it). Loads
    /// the owner's state, sends no transaction.
    ///
    /// # Errors
    /// [`Error::Io`] or [`Error::Corrupt`] if the owner's state cannot be read.
    pub async fn has_interrupted_put(&self, owner: Address) -> Result<bool> {
        let _guard = self.owner_lock.lock().await;
        let state = self.owner_state(owner)?;
        let pending = !state.pending.is_empty();
        self.keep_owner_state(owner, state);
        Ok(pending)
    }

    /// Completes the pending put of `state` (one record or a bulk batch, if any) and clears
    /// it; returns each pending record's id and index shard, in order. `fresh`: the intent
    /// was just written by this process, so no chain transaction of it can have happened
    /// and the chain need not be searched for one. Keyed records are kept under their
    /// keys; the records of a recovery (not `fresh`) are kept as recovered, for a retry
    /// of their put to claim.
    pub(super) async fn complete_pending(
        &self,
        ledger: &dyn Ledger,
        owner: &Member,
        state: &mut OwnerState,
        fresh: bool,
    ) -> Result<Vec<(RecordId, Option<Cid>)>> {
        if state.pending.is_empty() {
            return Ok(Vec::new());
        }
        let pending = state.pending.clone();
        let address = owner.address();
        // 1. The records on chain: created before a crash (found by their manifest CIDs
        // among the records created since the intent was written), or create them now,
        // all in one transaction.
        let mut ids: Vec<Option<RecordId>> = vec![None; pending.len()];
        if !fresh {
            let wanted: HashMap<&str, usize> = pending
                .iter()
                .enumerate()
                .map(|(i, p)| (p.manifest_cid.as_str(), i))
                .collect();
            let count = ledger.record_count().await?;
            for id in (state.pending_after + 1..=count).map(RecordId) {
                let info = ledger.record(id).await?;
                if info.owner != address {
                    continue;
                }
                if let Some(&i) = wanted.get(info.manifest_cid.as_str()) {
                    ids[i] = Some(id);
                }
            }
        }
        let missing: Vec<usize> = (0..pending.len()).filter(|&i| ids[i].is_none()).collect();
        // Records without and with a subject go in (at most) one transaction each.
        let (plain, about): (Vec<usize>, Vec<usize>) =
            missing.iter().partition(|&&i| pending[i].subject.is_none());
        match plain.as_slice() {
            [] => {}
            [i] => {
                let p = &pending[*i];
                let created = ledger
                    .create_record(&p.manifest_cid, p.capsule_policy.into())
                    .await?;
                ids[*i] = Some(created.record);
            }
            _ => {
                let batch: Vec<(String, B256)> = plain
                    .iter()
                    .map(|&i| {
                        (
                            pending[i].manifest_cid.clone(),
                            pending[i].capsule_policy.into(),
                        )
                    })
                    .collect();
                let created = ledger.create_records(&batch).await?;
                for (&i, id) in plain.iter().zip(created.records) {
                    ids[i] = Some(id);
                }
            }
        }
        let subject_of = |i: usize| pending[i].subject.unwrap_or(Address::ZERO);
        match about.as_slice() {
            [] => {}
            [i] => {
                let p = &pending[*i];
                let created = ledger
                    .create_record_for(&p.manifest_cid, p.capsule_policy.into(), subject_of(*i))
                    .await?;
                ids[*i] = Some(created.record);
            }
            _ => {
                let batch: Vec<(String, B256, Address)> = about
                    .iter()
                    .map(|&i| {
                        (
                            pending[i].manifest_cid.clone(),
                            pending[i].capsule_policy.into(),
                            subject_of(i),
                        )
                    })
                    .collect();
                let created = ledger.create_records_for(&batch).await?;
                for (&i, id) in about.iter().zip(created.records) {
                    ids[i] = Some(id);
                }
            }
        }
        let ids: Vec<RecordId> = ids
            .into_iter()
            .map(|id| {
                id.ok_or_else(|| Error::inconsistent("owner state", "a pending record has no id"))
            })
            .collect::<Result<_>>()?;
        // 2. Per partition (base policy), one index batch of all its pending records'
        // keywords, merged with the newest live shards where the logarithmic rule asks for
        // it, then its anchor; the superseded shards are unpinned once the state is saved
        // (until then a crash recovery rebuilds the merge from them). Building and merging
        // are deterministic (same key, counters, keywords, records and live shards), so
        // after a crash anywhere in here the same shard is rebuilt and matched against
        // whatever the chain anchored; the advanced partitions are committed only with the
        // final state write below.
        let mut shard_cids: Vec<Option<Cid>> = vec![None; pending.len()];
        let mut superseded = Vec::new();
        let mut policies: Vec<[u8; 32]> = Vec::new();
        for p in pending.iter().filter(|p| !p.keywords.is_empty()) {
            if !policies.contains(&p.policy) {
                policies.push(p.policy);
            }
        }
        for policy in policies {
            let members: Vec<usize> = (0..pending.len())
                .filter(|&i| pending[i].policy == policy && !pending[i].keywords.is_empty())
                .collect();
            // Taken out of the state (no copy of its counters); if anything below fails,
            // the caller drops the state and the next operation reloads it from its files.
            let mut slot = state.take_partition(&policy).ok_or_else(|| {
                Error::inconsistent("owner state", "pending put has no partition")
            })?;
            let mut pairs = Vec::new();
            for &i in &members {
                let reference = record_ref(ids[i])?;
                for k in &pending[i].keywords {
                    // Stored text: earlier versions accepted keywords of any type.
                    pairs.push((Keyword::parse_any_type(k)?, reference));
                }
            }
            let shard = slot.partition.batch(pairs.iter().map(|(k, r)| (k, *r)))?;
            // `fresh`: nothing of this put reached the chain before this call.
            let anchored = self
                .anchor_batch(
                    ledger,
                    address,
                    &mut slot.partition,
                    shard,
                    Merge::Newest,
                    !fresh,
                )
                .await?;
            superseded.extend(anchored.superseded);
            let cid = anchored.cid;
            state.set_partition(slot);
            for &i in &members {
                shard_cids[i] = Some(cid);
            }
        }
        let mut recovered = Vec::new();
        for ((p, id), shard) in pending.iter().zip(&ids).zip(&shard_cids) {
            let Some(identity) = &p.identity else {
                continue; // an intent of an earlier version: nothing to match it by
            };
            let completed = CompletedPut {
                identity: identity.clone(),
                record: id.0,
                manifest_cid: p.manifest_cid.clone(),
                attachments: p.attachments.clone(),
                shard_cid: shard.map(|c| c.to_string()),
            };
            state.add_keyed(completed.clone());
            if !fresh {
                recovered.push(completed);
            }
        }
        state.add_recovered(recovered);
        state.pending.clear();
        state.pending_after = 0;
        state.save(&self.dir, address)?;
        for old in superseded {
            if let Err(e) = self.store.unpin(&old).await {
                tracing::warn!(cid = %old, error = %e, "could not unpin a superseded index shard");
            }
        }
        Ok(ids.into_iter().zip(shard_cids).collect())
    }

    /// Anchors batch `shard`, just built by `partition` (its newest live shard, sequence
    /// number `next_shard_seq() - 1`): merges it with older live shards as `merge` says,
    /// stores the result (pinned) and anchors it as superseding the shards it replaces,
    /// unless (`check_chain`) the chain already anchors exactly this shard for the batch
    /// (an earlier attempt got that far; a different shard there is an inconsistency).
    /// Building and merging are deterministic, so a retry after a crash anywhere in here
    /// stores and anchors the same bytes. The caller persists `partition` afterwards, then
    /// unpins the superseded shards ([`AnchoredShard::superseded`]): until then a
    /// recovery rebuilds the merge from them.
    pub(super) async fn anchor_batch(
        &self,
        ledger: &dyn Ledger,
        address: Address,
        partition: &mut OwnerPartition,
        shard: Shard,
        merge: Merge,
        check_chain: bool,
    ) -> Result<AnchoredShard> {
        let seq = partition
            .next_shard_seq()
            .checked_sub(1)
            .ok_or_else(|| Error::inconsistent("owner state", "a batch without a sequence"))?;
        let pid = B256::from(*partition.id().as_bytes());
        let (shard, superseded) = self
            .merge_newest(ledger, address, partition, shard, merge)
            .await?;
        let first_seq = partition.live_shards().last().map_or(seq, |s| s.first);
        let bytes = shard.to_bytes();
        let size = bytes.len() as u64;
        let cid = self
            .store
            .put(bytes.into(), PutOptions::new().with_pin(true))
            .await?;
        let root = B256::from(*shard.root().as_bytes());
        let anchored = if check_chain {
            ledger.index_anchor(address, pid, seq).await?
        } else {
            None
        };
        match anchored {
            Some(anchor) if anchor.merkle_root == root && anchor.first_seq == first_seq => {}
            Some(_) => {
                return Err(Error::inconsistent(
                    "owner state",
                    "the chain anchors a different shard for this batch",
                ));
            }
            None => {
                ledger
                    .anchor_index(pid, first_seq, seq, &cid.to_string(), root)
                    .await?;
            }
        }
        Ok(AnchoredShard {
            cid,
            superseded,
            entries: shard.len() as u64,
            bytes: size,
        })
    }

    /// Merges the batch's `shard` with older live shards of `partition` as `merge` says
    /// (fetching them as anchored and checking them against their anchors) and records
    /// the merge; returns the shard to store and anchor, and the CIDs of the shards it
    /// supersedes.
    async fn merge_newest(
        &self,
        ledger: &dyn Ledger,
        address: Address,
        partition: &mut OwnerPartition,
        shard: Shard,
        merge: Merge,
    ) -> Result<(Shard, Vec<Cid>)> {
        let span = match merge {
            Merge::Newest => partition.merge_span(),
            Merge::All => partition.live_shards().len(),
        };
        if span <= 1 {
            return Ok((shard, Vec::new()));
        }
        let pid = B256::from(*partition.id().as_bytes());
        let live = partition.live_shards();
        let older = live
            .get(live.len() - span..live.len() - 1)
            .unwrap_or_default();
        let mut inputs = Vec::with_capacity(span);
        let mut cids = Vec::with_capacity(span - 1);
        for live in older {
            let anchor = ledger
                .index_anchor(address, pid, live.last)
                .await?
                .ok_or_else(|| {
                    Error::inconsistent("owner state", "a live index shard is not anchored")
                })?;
            inputs.push(self.fetch_shard(partition.id(), &anchor).await?);
            cids.push(parse_cid(&anchor.shard_cid, Pointer::IndexAnchor)?);
        }
        inputs.push(shard);
        let merged = Shard::merge(&inputs.iter().collect::<Vec<_>>())?;
        partition.record_merge(span, &merged)?;
        Ok((merged, cids))
    }

    /// Checks that the index state of `owner` for each of `policies` is where the chain's
    /// anchors are: a state restored from an older copy (a backup, a replica that missed
    /// a put) would give the next batch labels already published, which tells the host
    /// the XOR of two record references. Refused before anything is stored. One
    /// `index_head` view call per policy. A chain one batch ahead because a compaction was
    /// anchored but not recorded (a crash) is caught up first
    /// ([`Vault::adopt_compaction`]).
    pub(super) async fn check_index_heads<'a>(
        &self,
        ledger: &dyn Ledger,
        owner: Address,
        state: &mut OwnerState,
        policies: impl Iterator<Item = &'a Policy>,
    ) -> Result<()> {
        let mut seen: Vec<[u8; 32]> = Vec::new();
        for policy in policies {
            let hash = policy_hash(policy).0;
            if seen.contains(&hash) {
                continue;
            }
            seen.push(hash);
            let Some(partition) = state.current_by_hash(&hash) else {
                continue;
            };
            let pid = B256::from(*partition.id().as_bytes());
            let next = partition.next_shard_seq();
            let head = ledger.index_head(owner, pid).await?;
            // One batch ahead: possibly a compaction anchored but not recorded.
            if head == next.saturating_add(1)
                && self.adopt_compaction(ledger, owner, state, &hash).await?
            {
                continue;
            }
            if head != next {
                return Err(Error::inconsistent(
                    "owner state",
                    "its index counters are not where the chain's anchors are (restored \
                     from an older copy?), so a put would repeat published index labels: \
                     restore the latest owner state",
                ));
            }
        }
        Ok(())
    }

    /// Makes sure `owner` has a published index partition for `policy` whose epoch is
    /// dated `now` at the current attribute `versions` (its policy is
    /// `(policy' and V(now)) or id:<owner>`, see [`crate::validity`], [`crate::versions`]
    /// and `partition_policy`; a partition of an earlier shape rotates too): the
    /// current one if it is, else the next epoch under that policy (a put in a later
    /// month than the current epoch's, or after a version bump, starts a new epoch, so
    /// that keys that expired or were revoked before it cannot open its partition key).
    pub(super) async fn ensure_partition(
        &self,
        ledger: &dyn Ledger,
        owner: &Member,
        state: &mut OwnerState,
        policy: &Policy,
        now: Month,
        versions: &AttributeVersions,
    ) -> Result<()> {
        let dated = partition_policy(policy, now, versions, owner.address())?;
        let hash = policy_hash(policy).0;
        let current_month = state
            .current_by_hash(&hash)
            .map(|current| current.partition().policy() == &dated);
        match (current_month, state.is_published(policy)) {
            (Some(true), Some(true)) => Ok(()),
            // Created by an earlier call whose publication may have reached the chain.
            (Some(true), _) => {
                let slot = state.take_partition(&hash).ok_or_else(|| {
                    Error::inconsistent("owner state", "the current partition vanished")
                })?;
                self.publish_partition(ledger, owner, state, slot, true)
                    .await
            }
            // Dated another month (or undated, from before partitions were dated).
            (Some(false), _) => {
                let current = state.current_by_hash(&hash).ok_or_else(|| {
                    Error::inconsistent("owner state", "the current partition vanished")
                })?;
                let slot = PartitionSlot {
                    partition: current.rotate(dated, &mut OsRng)?,
                    published: false,
                };
                self.publish_partition(ledger, owner, state, slot, false)
                    .await
            }
            (None, _) => {
                let partition = Partition::new(owner.address().as_slice(), dated, 0)?;
                let slot = PartitionSlot {
                    partition: OwnerPartition::create(partition, &mut OsRng),
                    published: false,
                };
                self.publish_partition(ledger, owner, state, slot, false)
                    .await
            }
        }
    }

    /// Persists `slot` (so its key survives a crash), publishes its capsule unless the
    /// chain already has it (`check_chain`: an earlier attempt may have published it),
    /// then persists it as published.
    async fn publish_partition(
        &self,
        ledger: &dyn Ledger,
        owner: &Member,
        state: &mut OwnerState,
        slot: PartitionSlot,
        check_chain: bool,
    ) -> Result<()> {
        let address = owner.address();
        // The chain records the partition's own (dated) policy; the state keys it by base.
        let policy = policy_hash(slot.partition.partition().policy());
        let base = policy_hash(&partition_base(slot.partition.partition().policy()));
        state.set_partition(slot);
        state.save(&self.dir, address)?;
        let current = state
            .current_by_hash(&base.0)
            .ok_or_else(|| Error::inconsistent("owner state", "the partition just stored"))?;
        let partition = current.partition();
        let pid = B256::from(*current.id().as_bytes());
        let epoch = partition.epoch();
        if !check_chain || ledger.capsule(address, pid, epoch).await?.is_none() {
            let capsule = Capsule::seal(self.public_key()?, partition, current.key(), &mut OsRng)?;
            let cid = self
                .store
                .put(
                    capsule.as_bytes().to_vec().into(),
                    PutOptions::new().with_pin(true),
                )
                .await?;
            ledger
                .publish_capsule(pid, epoch, &cid.to_string(), policy)
                .await?;
        }
        state.mark_published(&base.0);
        state.save(&self.dir, address)
    }

    /// Starts a new epoch (fresh key) of `owner`'s partition for `policy`, if the current
    /// one holds entries: entries added from now on are unlinkable to earlier tokens. The
    /// new epoch is dated by the vault's clock.
    pub(super) async fn rotate(
        &self,
        ledger: &dyn Ledger,
        owner: &Member,
        policy: &Policy,
    ) -> Result<()> {
        let mut state = self.owner_state(owner.address())?;
        self.complete_pending(ledger, owner, &mut state, false)
            .await?;
        let versions = self.policy_versions([policy]).await?;
        let next = match state.current(policy) {
            // The current epoch holds entries: start the next one.
            Some(current) if current.next_shard_seq() > 0 => Some(PartitionSlot {
                partition: current.rotate(
                    partition_policy(policy, self.clock.now(), &versions, owner.address())?,
                    &mut OsRng,
                )?,
                published: false,
            }),
            // Nothing indexed under this policy yet, or nothing to rotate away from.
            _ => None,
        };
        if let Some(next) = next {
            self.publish_partition(ledger, owner, &mut state, next, false)
                .await?;
        }
        self.keep_owner_state(owner.address(), state);
        Ok(())
    }
}
