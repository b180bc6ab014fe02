//! The owner's private index state: partitions, their published capsules, and the
//! completion of puts a crash interrupted.

use rand_core::OsRng;

use super::Vault;
use super::search::record_ref;
use crate::abe::Policy;
use crate::chain::{Address, Ledger, RecordId};
use crate::error::{Error, Result};
use crate::identity::Member;
use crate::index::Keyword;
use crate::index::sse::{Capsule, OwnerPartition, Partition, PartitionKey};
use crate::manifest::policy_hash;
use crate::state::{OwnerState, PartitionState, hex32};
use crate::storage::PutOptions;

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

    pub(super) async fn complete_pending(
        &self,
        ledger: &dyn Ledger,
        owner: &Member,
        state: &mut OwnerState,
        fresh: bool,
    ) -> Result<Option<(RecordId, Option<String>)>> {
        let Some(pending) = state.pending.clone() else {
            return Ok(None);
        };
        let address = owner.address();
        // 1. The record on chain: created before a crash (found by its manifest CID), or
        // create it now. A fresh intent cannot have been sent yet: nothing to look for.
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
                let hash = hex32(&pending.policy_hash, "owner state")?;
                ledger
                    .create_record(&pending.manifest_cid, hash.into())
                    .await?
                    .record
            }
        };
        // 2. The index shard, then its anchor. Building is deterministic (same key,
        // counters, keywords and record), so after a crash anywhere in here the same shard
        // is rebuilt and matched against whatever the chain anchored; the advanced counters
        // are committed only with the final state write below.
        let mut shard_cid = None;
        if !pending.keywords.is_empty() {
            let policy: Policy = pending.policy.parse()?;
            let part = state.partition_mut(&pending.policy).ok_or_else(|| {
                Error::inconsistent("owner state", "pending put has no partition")
            })?;
            let mut owner_part = resume_partition(address, &policy, part)?;
            let keywords = pending
                .keywords
                .iter()
                .map(|k| Keyword::parse(k))
                .collect::<core::result::Result<Vec<_>, _>>()?;
            let reference = record_ref(id)?;
            let shard = owner_part.batch(keywords.iter().map(|k| (k, reference)))?;
            let cid = self
                .store
                .put(shard.to_bytes().into(), PutOptions::new().with_pin(true))
                .await?
                .to_string();
            let root = *shard.root().as_bytes();
            let pid = *owner_part.id().as_bytes();
            let slot = part.next_slot;
            match ledger.index_anchor(address, pid.into(), slot).await? {
                Some(anchor) if anchor.merkle_root.0 == root => {}
                Some(_) => {
                    return Err(Error::inconsistent(
                        "owner state",
                        "the chain anchors a different shard in this slot",
                    ));
                }
                None => {
                    ledger
                        .anchor_index(pid.into(), slot, &cid, root.into())
                        .await?;
                }
            }
            part.counts = owner_part
                .counts()
                .map(|(k, c)| (k.as_str().to_owned(), c))
                .collect();
            part.next_slot = slot + 1;
            shard_cid = Some(cid);
        }
        state.pending = None;
        state.save(&self.dir, address)?;
        Ok(Some((id, shard_cid)))
    }

    /// Makes sure `owner` has a published index partition for `policy`.
    pub(super) async fn ensure_partition(
        &self,
        ledger: &dyn Ledger,
        owner: &Member,
        state: &mut OwnerState,
        policy: &Policy,
    ) -> Result<()> {
        let text = policy.to_string();
        if state.partition_mut(&text).is_none() {
            let pk = self.public_key()?;
            let partition = Partition::new(owner.address().as_slice(), policy.clone(), 0)?;
            let (created, _capsule) = OwnerPartition::create(partition, pk, &mut OsRng)?;
            state.partitions.push(PartitionState {
                policy: text.clone(),
                epoch: 0,
                key: hex::encode(created.key().as_bytes()),
                next_slot: 0,
                counts: Vec::new(),
                published: false,
            });
            state.save(&self.dir, owner.address())?;
        }
        self.publish_partition(ledger, owner, state, &text).await
    }

    /// Publishes the capsule of the current partition of `policy_text` if the chain does
    /// not have it yet.
    async fn publish_partition(
        &self,
        ledger: &dyn Ledger,
        owner: &Member,
        state: &mut OwnerState,
        policy_text: &str,
    ) -> Result<()> {
        let address = owner.address();
        let part = state
            .partition_mut(policy_text)
            .ok_or_else(|| Error::inconsistent("owner state", "missing partition"))?;
        if part.published {
            return Ok(());
        }
        let policy: Policy = policy_text.parse()?;
        let partition = Partition::new(address.as_slice(), policy.clone(), part.epoch)?;
        let pid = *partition.id().as_bytes();
        if ledger
            .capsule(address, pid.into(), part.epoch)
            .await?
            .is_none()
        {
            let key = PartitionKey::from_bytes(hex32(&part.key, "owner state")?);
            let capsule = Capsule::seal(self.public_key()?, &partition, &key, &mut OsRng)?;
            let cid = self
                .store
                .put(
                    capsule.as_bytes().to_vec().into(),
                    PutOptions::new().with_pin(true),
                )
                .await?;
            ledger
                .publish_capsule(
                    pid.into(),
                    part.epoch,
                    &cid.to_string(),
                    policy_hash(&policy),
                )
                .await?;
        }
        part.published = true;
        state.save(&self.dir, address)
    }

    pub(super) async fn rotate(
        &self,
        ledger: &dyn Ledger,
        owner: &Member,
        policy: &Policy,
    ) -> Result<()> {
        let mut state = OwnerState::load(&self.dir, owner.address())?;
        self.complete_pending(ledger, owner, &mut state, false)
            .await?;
        let text = policy.to_string();
        let Some(part) = state.partition_mut(&text) else {
            return Ok(()); // nothing indexed under this policy yet
        };
        if part.next_slot == 0 {
            return Ok(()); // the current epoch holds no entries: nothing to rotate away from
        }
        let current = resume_partition(owner.address(), policy, part)?;
        let (next, _capsule) = current.rotate(policy.clone(), self.public_key()?, &mut OsRng)?;
        *part = PartitionState {
            policy: text.clone(),
            epoch: next.partition().epoch(),
            key: hex::encode(next.key().as_bytes()),
            next_slot: 0,
            counts: Vec::new(),
            published: false,
        };
        state.save(&self.dir, owner.address())?;
        self.publish_partition(ledger, owner, &mut state, &text)
            .await
    }
}

fn resume_partition(
    owner: Address,
    policy: &Policy,
    part: &PartitionState,
) -> Result<OwnerPartition> {
    let partition = Partition::new(owner.as_slice(), policy.clone(), part.epoch)?;
    let key = PartitionKey::from_bytes(hex32(&part.key, "owner state")?);
    let counts = part
        .counts
        .iter()
        .map(|(k, c)| Ok((Keyword::parse(k)?, *c)))
        .collect::<Result<Vec<_>>>()?;
    Ok(OwnerPartition::resume(partition, key, counts))
}
