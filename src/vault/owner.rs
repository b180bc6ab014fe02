//! The owner's private index state: partitions, their published capsules, and the
//! completion of puts a crash interrupted.

use rand_core::OsRng;

use super::search::record_ref;
use super::{Vault, parse_cid};
use crate::abe::Policy;
use crate::chain::{Address, B256, Ledger, RecordId};
use crate::error::{Error, Pointer, Result};
use crate::identity::Member;
use crate::index::Keyword;
use crate::index::sse::{Capsule, OwnerPartition, Partition, Shard};
use crate::manifest::policy_hash;
use crate::state::{OwnerState, PartitionSlot};
use crate::storage::{Cid, PutOptions};

impl Vault {
    /// Completes a put of `owner` that a crash interrupted (if any); returns its record.
    /// Called by every owner operation; call it directly after a restart to finish the
    /// work early.
    ///
    /// # Errors
    /// Storage and chain errors (the intent stays persisted; call again).
    pub async fn recover(&self, owner: &Member) -> Result<Option<RecordId>> {
        let _guard = self.owner_lock.lock().await;
        let ledger = self.acting(owner);
        let mut state = OwnerState::load(&self.dir, owner.address())?;
        Ok(self
            .complete_pending(&*ledger, owner, &mut state, false)
            .await?
            .map(|(id, _)| id))
    }

    /// Completes the pending put of `state` (if any) and clears it. `fresh`: the intent
    /// was just written by this process, so no chain transaction of it can have happened
    /// and the chain need not be searched for one.
    pub(super) async fn complete_pending(
        &self,
        ledger: &dyn Ledger,
        owner: &Member,
        state: &mut OwnerState,
        fresh: bool,
    ) -> Result<Option<(RecordId, Option<Cid>)>> {
        let Some(pending) = state.pending.clone() else {
            return Ok(None);
        };
        let address = owner.address();
        // 1. The record on chain: created before a crash (found by its manifest CID), or
        // create it now.
        let mut found = None;
        if !fresh {
            for id in ledger.records_of(address).await?.into_iter().rev() {
                if ledger.record(id).await?.manifest_cid == pending.manifest_cid {
                    found = Some(id);
                    break;
                }
            }
        }
        let id = match found {
            Some(id) => id,
            None => {
                ledger
                    .create_record(&pending.manifest_cid, pending.capsule_policy.into())
                    .await?
                    .record
            }
        };
        // 2. The index shard, merged with the newest live shards where the logarithmic
        // rule asks for it, then its anchor; the superseded shards are unpinned once the
        // state is saved (until then a crash recovery rebuilds the merge from them).
        // Building and merging are deterministic (same key, counters, keywords, record and
        // live shards), so after a crash anywhere in here the same shard is rebuilt and
        // matched against whatever the chain anchored; the advanced partition is committed
        // only with the final state write below.
        let mut shard_cid = None;
        let mut superseded = Vec::new();
        if !pending.keywords.is_empty() {
            let mut slot = state.partition_by_hash(&pending.policy)?.ok_or_else(|| {
                Error::inconsistent("owner state", "pending put has no partition")
            })?;
            let keywords = pending
                .keywords
                .iter()
                .map(|k| Keyword::parse(k))
                .collect::<core::result::Result<Vec<_>, _>>()?;
            let seq = slot.partition.next_shard_seq();
            let reference = record_ref(id)?;
            let shard = slot
                .partition
                .batch(keywords.iter().map(|k| (k, reference)))?;
            let pid = B256::from(*slot.partition.id().as_bytes());
            let (shard, merged_away) = self
                .merge_newest(ledger, address, &mut slot.partition, shard)
                .await?;
            superseded = merged_away;
            let first_seq = slot.partition.live_shards().last().map_or(seq, |s| s.first);
            let cid = self
                .store
                .put(shard.to_bytes().into(), PutOptions::new().with_pin(true))
                .await?;
            let root = B256::from(*shard.root().as_bytes());
            let anchored = if fresh {
                None // nothing of this put reached the chain before this call
            } else {
                ledger.index_anchor(address, pid, seq).await?
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
            state.set_partition(&slot);
            shard_cid = Some(cid);
        }
        state.pending = None;
        state.save(&self.dir, address)?;
        for old in superseded {
            if let Err(e) = self.store.unpin(&old).await {
                tracing::warn!(cid = %old, error = %e, "could not unpin a superseded index shard");
            }
        }
        Ok(Some((id, shard_cid)))
    }

    /// Merges the batch's `shard` with the newest live shards of `partition` if its
    /// logarithmic rule asks for it (fetching them as anchored and checking them against
    /// their anchors) and records the merge; returns the shard to store and anchor, and the
    /// CIDs of the shards it supersedes.
    async fn merge_newest(
        &self,
        ledger: &dyn Ledger,
        address: Address,
        partition: &mut OwnerPartition,
        shard: Shard,
    ) -> Result<(Shard, Vec<Cid>)> {
        let span = partition.merge_span();
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

    /// Makes sure `owner` has a published index partition for `policy`.
    pub(super) async fn ensure_partition(
        &self,
        ledger: &dyn Ledger,
        owner: &Member,
        state: &mut OwnerState,
        policy: &Policy,
    ) -> Result<()> {
        // The common case (published) needs no decoding of the partition's counters.
        if state.is_published(policy) == Some(true) {
            return Ok(());
        }
        match state.partition(policy)? {
            Some(slot) if slot.published => Ok(()),
            // Created by an earlier call whose publication may have reached the chain.
            Some(slot) => {
                self.publish_partition(ledger, owner, state, slot, true)
                    .await
            }
            None => {
                let partition = Partition::new(owner.address().as_slice(), policy.clone(), 0)?;
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
        mut slot: PartitionSlot,
        check_chain: bool,
    ) -> Result<()> {
        let address = owner.address();
        state.set_partition(&slot);
        state.save(&self.dir, address)?;
        let partition = slot.partition.partition();
        let pid = B256::from(*slot.partition.id().as_bytes());
        let epoch = partition.epoch();
        if !check_chain || ledger.capsule(address, pid, epoch).await?.is_none() {
            let capsule = Capsule::seal(
                self.public_key()?,
                partition,
                slot.partition.key(),
                &mut OsRng,
            )?;
            let cid = self
                .store
                .put(
                    capsule.as_bytes().to_vec().into(),
                    PutOptions::new().with_pin(true),
                )
                .await?;
            let policy = policy_hash(partition.policy());
            ledger
                .publish_capsule(pid, epoch, &cid.to_string(), policy)
                .await?;
        }
        slot.published = true;
        state.set_partition(&slot);
        state.save(&self.dir, address)
    }

    /// Starts a new epoch (fresh key) of `owner`'s partition for `policy`, if the current
    /// one holds entries: entries added from now on are unlinkable to earlier tokens.
    pub(super) async fn rotate(
        &self,
        ledger: &dyn Ledger,
        owner: &Member,
        policy: &Policy,
    ) -> Result<()> {
        let mut state = OwnerState::load(&self.dir, owner.address())?;
        self.complete_pending(ledger, owner, &mut state, false)
            .await?;
        let Some(current) = state.partition(policy)? else {
            return Ok(()); // nothing indexed under this policy yet
        };
        if current.partition.next_shard_seq() == 0 {
            return Ok(()); // the current epoch holds no entries: nothing to rotate away from
        }
        let next = PartitionSlot {
            partition: current.partition.rotate(policy.clone(), &mut OsRng)?,
            published: false,
        };
        self.publish_partition(ledger, owner, &mut state, next, false)
            .await
    }
}
