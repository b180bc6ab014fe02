//! Major index compaction: all live shards of a partition merged into one.

use std::time::{Duration, Instant};

use super::Vault;
use super::owner::{AnchoredShard, Merge};
use crate::chain::{Address, B256, Ledger};
use crate::error::{Error, InvalidInput, Result};
use crate::identity::Member;
use crate::index::sse::{ENTRY_BYTES, MAX_SHARD_ENTRIES};
use crate::state::OwnerState;

/// Which of the acting owner's index partitions [`Vault::compact_index`] compacts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum CompactScope {
    /// The current partition (epoch) of every policy the owner has indexed under.
    #[default]
    AllPartitions,
    /// One current partition of the owner, by id (as published on chain:
    /// [`PublishedCapsule::partition`](crate::chain::PublishedCapsule)).
    Partition(B256),
}

/// What [`Vault::compact_index`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CompactionReport {
    /// Partitions in scope.
    pub partitions: usize,
    /// Partitions compacted: those that had more than one live shard.
    pub compacted: usize,
    /// Partitions left as they were because all their entries would not fit in one
    /// shard ([`MAX_SHARD_ENTRIES`]).
    pub too_large: usize,
    /// Live shards of the partitions in scope before the call.
    pub shards_before: usize,
    /// Live shards of the partitions in scope after it.
    pub shards_after: usize,
    /// Entries (padding included) of the shards written.
    pub entries: u64,
    /// Encoded bytes of the shards written.
    pub bytes: u64,
    /// Time taken.
    pub elapsed: Duration,
}

/// What compacting one partition did.
pub(super) enum Compacted {
    /// Nothing to do: this many live shards (0 or 1).
    Nothing(usize),
    /// Its entries do not fit in one shard: this many live shards stay.
    TooLarge(usize),
    /// This many live shards were merged into the anchored one.
    Done(usize, AnchoredShard),
}

/// Label of the progress reports of [`Vault::compact_index`].
pub const COMPACTION_PROGRESS: &str = "index compaction";

impl Vault {
    /// Merges all live index shards of each of `owner`'s partitions in `scope` into one
    /// shard per partition (a *major compaction*), e.g. at the end of a bulk import.
    ///
    /// Puts keep at most `log2(entries + batches) + 1` live shards per partition (they
    /// merge equal-weight shards as they go), and a search proves absence once per live
    /// shard; after an import of many batches a partition typically holds a handful.
    /// Compacting leaves one, and since one shard trivially keeps the merge rule (each
    /// live shard more than twice as heavy as the next newer one), later puts still keep
    /// the logarithmic bound.
    ///
    /// Per partition with more than one live shard: an empty batch takes the next
    /// sequence number (the contract anchors each batch slot once), it is merged with
    /// every live shard (fetched and checked against their anchors), the merged shard is
    /// stored (pinned) and anchored as holding batches `0..=` that batch, superseding
    /// the anchors it replaces (which stay in the event log for audit), then the
    /// partition's state is saved and the superseded shards unpinned ([`Vault::gc`]
    /// removes them). This is the merge path of puts, with every live shard in the merge.
    ///
    /// **Idempotent and crash-safe.** A partition with one live shard (or none) is left
    /// alone, so a second call does nothing. A crash (or failure) before the anchor leaves
    /// the chain and the saved state as they were: nothing is lost, searches use the old
    /// shards, and the next call compacts again (the merge is deterministic: same bytes,
    /// same CID). A crash after the anchor but before the state is saved is completed by
    /// the next call, or by the owner's next put to the partition, which finds the anchor
    /// and records it.
    ///
    /// Reports progress (encoded bytes written, out of an estimate) to the vault's
    /// progress callback ([`Vault::set_progress`]) under the label [`COMPACTION_PROGRESS`].
    /// Only current partitions are compacted: those of past epochs (the owner no longer
    /// keeps their state) stay as they are.
    ///
    /// # Errors
    /// [`Error::NotPartitionOwner`] for a partition another member published,
    /// [`InvalidInput::UnknownPartition`] for one that is not a current partition of
    /// `owner`; storage and chain errors ([`Error::Tampered`] if a live shard does not
    /// match its anchor). Partitions compacted before the error stay compacted; call
    /// again to go on.
    pub async fn compact_index(
        &self,
        owner: &Member,
        scope: CompactScope,
    ) -> Result<CompactionReport> {
        let started = Instant::now();
        let _guard = self.owner_lock.lock().await;
        let ledger = self.acting(owner);
        let address = owner.address();
        let mut state = self.owner_state(address)?;
        // An interrupted put first: its batch takes the next sequence number.
        self.complete_pending(&*ledger, owner, &mut state, false)
            .await?;
        let policies = match scope {
            CompactScope::AllPartitions => state.partition_policies(),
            CompactScope::Partition(pid) => {
                vec![self.own_partition(address, &state, pid).await?]
            }
        };
        let estimate: u64 = policies
            .iter()
            .filter_map(|p| state.current_by_hash(p))
            .filter(|p| p.live_shards().len() > 1)
            .map(|p| {
                let entries: u64 = p.live_shards().iter().map(|s| s.entries).sum();
                entries.saturating_mul(ENTRY_BYTES as u64)
            })
            .sum();
        let mut report = CompactionReport {
            partitions: policies.len(),
            ..CompactionReport::default()
        };
        for policy in &policies {
            match self
                .compact_partition(&*ledger, address, &mut state, policy)
                .await?
            {
                Compacted::Nothing(shards) => {
                    report.shards_before += shards;
                    report.shards_after += shards;
                }
                Compacted::TooLarge(shards) => {
                    report.too_large += 1;
                    report.shards_before += shards;
                    report.shards_after += shards;
                }
                Compacted::Done(shards, anchored) => {
                    report.compacted += 1;
                    report.shards_before += shards;
                    report.shards_after += 1;
                    report.entries += anchored.entries;
                    report.bytes += anchored.bytes;
                    if let Some(progress) = &self.progress {
                        progress(
                            COMPACTION_PROGRESS,
                            report.bytes,
                            Some(estimate.max(report.bytes)),
                        );
                    }
                }
            }
        }
        self.keep_owner_state(address, state);
        report.elapsed = started.elapsed();
        Ok(report)
    }

    /// The base-policy hash of `owner`'s current partition `pid`; a clear error if it is
    /// someone else's, or not a current partition of `owner`.
    async fn own_partition(
        &self,
        owner: Address,
        state: &OwnerState,
        pid: B256,
    ) -> Result<[u8; 32]> {
        if let Some(policy) = state.partition_policies().into_iter().find(|p| {
            state
                .current_by_hash(p)
                .is_some_and(|c| c.id().as_bytes() == &pid.0)
        }) {
            return Ok(policy);
        }
        let published = self.ledger.capsules(None).await?;
        let publishers: Vec<Address> = published
            .iter()
            .filter(|c| c.partition == pid)
            .map(|c| c.publisher)
            .collect();
        match publishers.first() {
            Some(&publisher) if !publishers.contains(&owner) => Err(Error::NotPartitionOwner {
                partition: pid,
                publisher,
            }),
            _ => Err(InvalidInput::UnknownPartition { partition: pid }.into()),
        }
    }

    /// Compacts `owner`'s current partition of base policy `policy` if it has more than
    /// one live shard (see [`Vault::compact_index`]) and saves the state.
    pub(super) async fn compact_partition(
        &self,
        ledger: &dyn Ledger,
        owner: Address,
        state: &mut OwnerState,
        policy: &[u8; 32],
    ) -> Result<Compacted> {
        let Some(current) = state.current_by_hash(policy) else {
            return Ok(Compacted::Nothing(0));
        };
        let live = current.live_shards();
        let shards = live.len();
        if shards <= 1 {
            return Ok(Compacted::Nothing(shards));
        }
        let entries = live.iter().fold(0u64, |n, s| n.saturating_add(s.entries));
        if entries > u64::from(MAX_SHARD_ENTRIES) {
            return Ok(Compacted::TooLarge(shards));
        }
        // Taken out of the state; if anything below fails, the caller drops the state and
        // the next operation reloads it from its files (as they were before this call).
        let mut slot = state
            .take_partition(policy)
            .ok_or_else(|| Error::inconsistent("owner state", "the partition vanished"))?;
        // The empty batch adds no entry and advances no keyword counter: it only takes the
        // sequence number the merged shard is anchored under.
        let empty = slot.partition.batch(std::iter::empty())?;
        let anchored = self
            .anchor_batch(ledger, owner, &mut slot.partition, empty, Merge::All, true)
            .await?;
        state.set_partition(slot);
        state.save(&self.dir, owner)?;
        for old in &anchored.superseded {
            if let Err(e) = self.store.unpin(old).await {
                tracing::warn!(cid = %old, error = %e, "could not unpin a superseded index shard");
            }
        }
        Ok(Compacted::Done(shards, anchored))
    }

    /// Whether the chain's anchor for the next batch of `owner`'s partition (base policy
    /// `policy`) is a compaction of it that was anchored but not recorded (a crash between
    /// the anchor and the state's save): if so it is recorded now, by compacting again
    /// (the same shard is rebuilt and found anchored). Any other anchor there (one not
    /// covering every live batch, or a shard with other entries than the live ones, as
    /// a state restored from an older copy sees) is left to the caller's check, with
    /// nothing stored.
    pub(super) async fn adopt_compaction(
        &self,
        ledger: &dyn Ledger,
        owner: Address,
        state: &mut OwnerState,
        policy: &[u8; 32],
    ) -> Result<bool> {
        let Some(current) = state.current_by_hash(policy) else {
            return Ok(false);
        };
        let live = current.live_shards();
        let Some(oldest) = live.first().filter(|_| live.len() > 1) else {
            return Ok(false);
        };
        let pid = B256::from(*current.id().as_bytes());
        let anchor = match ledger
            .index_anchor(owner, pid, current.next_shard_seq())
            .await?
        {
            Some(anchor) if anchor.first_seq == oldest.first => anchor,
            _ => return Ok(false),
        };
        // Only a shard of exactly the live entries can be a compaction (a batch with
        // entries merged with all of them is what a state restored from an older copy
        // sees): checked before anything is stored.
        let live_entries = live.iter().fold(0u64, |n, s| n.saturating_add(s.entries));
        let anchored = self.fetch_shard(current.id(), &anchor).await?;
        if anchored.len() as u64 != live_entries {
            return Ok(false);
        }
        Ok(matches!(
            self.compact_partition(ledger, owner, state, policy).await?,
            Compacted::Done(..)
        ))
    }
}
