//! The incremental cache of the registry's logs behind [`RpcChain`](super::RpcChain)'s
//! [`Ledger::logs`](crate::Ledger::logs).
//!
//! The cache holds every log of the registry address (all events) from the first scanned block
//! up to the *synced block*, decoded as [`ChainLog`], in one vector per event signature, each
//! in chain order. A query first syncs: one `eth_blockNumber`, a hash check of the synced block
//! (`eth_getBlockByNumber`), then `eth_getLogs` only for the blocks after it, in chunks of at
//! most [`RpcOptions::logs_chunk_blocks`](super::RpcOptions::logs_chunk_blocks) blocks; then it
//! answers from the vectors of the requested events alone.
//!
//! See [`RpcChain`](super::RpcChain#log-cache) for the reorg guarantee.

use std::collections::{BTreeMap, HashMap};

use alloy::primitives::B256;

use super::log_store::{Changes, LogStore, Stored};
use crate::backend::{ChainLog, LogFilter};
use crate::error::LedgerResult;

/// At most this many checkpoints are kept.
pub(super) const MAX_CHECKPOINTS: usize = 64;

/// What the log cache of an [`RpcChain`](super::RpcChain) holds and has done, for monitoring
/// and tests ([`RpcChain::log_cache_stats`](super::RpcChain::log_cache_stats)).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct LogCacheStats {
    /// The last block whose logs are cached (`None` before the first sync).
    pub synced_block: Option<u64>,
    /// Number of cached logs.
    pub cached_logs: u64,
    /// `eth_getLogs` requests issued so far (retries of one request count once).
    pub get_logs_requests: u64,
    /// Inclusive block ranges fetched with `eth_getLogs` by the most recent sync that fetched
    /// anything, in request order.
    pub last_fetched_ranges: Vec<(u64, u64)>,
    /// Reorgs detected (the synced block's hash had changed).
    pub reorgs: u64,
    /// Cached logs dropped because of reorgs.
    pub dropped_logs: u64,
}

/// The cache proper: guarded by an async mutex in [`RpcChain`](super::RpcChain).
#[derive(Debug)]
pub(super) struct LogCache {
    /// First block scanned.
    pub(super) from_block: u64,
    /// Block number → hash of the ends of committed chunks; the newest is the synced block.
    checkpoints: BTreeMap<u64, B256>,
    /// Cached logs per event signature (topic 0), each in (block, log index) order.
    by_event: HashMap<B256, Vec<ChainLog>>,
    stats: LogCacheStats,
    /// The file the cache is saved to, if any.
    store: Option<LogStore>,
    /// Changes not saved to `store` yet; `dirty` also covers checkpoint-only changes.
    unsaved: Changes,
    dirty: bool,
}

impl LogCache {
    /// An empty cache that starts scanning at `from_block`.
    pub(super) fn new(from_block: u64) -> Self {
        Self {
            from_block,
            checkpoints: BTreeMap::new(),
            by_event: HashMap::new(),
            stats: LogCacheStats::default(),
            store: None,
            unsaved: Changes::default(),
            dirty: false,
        }
    }

    /// Saves the cache to `store` from now on: an empty cache first takes what the file holds
    /// for it (checked against the node by the next sync like any synced state); otherwise, or
    /// if the file holds nothing usable, the file's copy is replaced on the next save.
    pub(super) fn attach(&mut self, store: LogStore) -> LedgerResult<()> {
        let stored = store.load(self.from_block)?;
        match stored {
            Some(stored) if self.checkpoints.is_empty() => self.restore(stored),
            _ => {
                self.unsaved = Changes {
                    rewound: Some(None),
                    logs: self.all_logs(),
                };
                self.dirty = true;
            }
        }
        self.store = Some(store);
        Ok(())
    }

    fn restore(&mut self, stored: Stored) {
        self.checkpoints = stored.checkpoints.into_iter().collect();
        self.stats.cached_logs = stored.logs.len() as u64;
        for log in stored.logs {
            if let Some(signature) = log.topics.first().copied() {
                self.by_event.entry(signature).or_default().push(log);
            }
        }
        self.stats.synced_block = self.synced().map(|(number, _)| number);
    }

    fn all_logs(&self) -> Vec<ChainLog> {
        let mut logs: Vec<ChainLog> = self.by_event.values().flatten().cloned().collect();
        logs.sort_by_key(|log| (log.block_number, log.log_index));
        logs
    }

    /// Writes the unsaved changes to the file, if there is one. A failure is logged and
    /// detaches the file (it stays consistent, only behind; the cache goes on in memory).
    pub(super) fn save(&mut self) {
        if !self.dirty {
            return;
        }
        let Some(store) = &self.store else {
            return;
        };
        let checkpoints: Vec<(u64, B256)> = self
            .checkpoints
            .iter()
            .map(|(number, hash)| (*number, *hash))
            .collect();
        if let Err(error) = store.save(self.from_block, &checkpoints, &self.unsaved) {
            tracing::warn!(%error, "cannot save the log cache file; caching in memory only");
            self.store = None;
        }
        self.unsaved = Changes::default();
        self.dirty = false;
    }

    /// The synced block and its hash.
    pub(super) fn synced(&self) -> Option<(u64, B256)> {
        self.checkpoints
            .last_key_value()
            .map(|(number, hash)| (*number, *hash))
    }

    /// The first block not yet synced.
    pub(super) fn next_block(&self) -> u64 {
        self.synced()
            .map_or(self.from_block, |(number, _)| number.saturating_add(1))
    }

    /// Checkpoints to probe for the fork bound after a reorg, newest first, exponentially
    /// spaced (the 1st, 2nd, 4th, 8th… newest, and always the oldest): O(log n) requests.
    pub(super) fn probe_checkpoints(&self) -> Vec<(u64, B256)> {
        let all: Vec<(u64, B256)> = self
            .checkpoints
            .iter()
            .rev()
            .map(|(number, hash)| (*number, *hash))
            .collect();
        let mut probes = Vec::new();
        let mut index = 0usize;
        let mut step = 1usize;
        while index < all.len() {
            probes.extend(all.get(index).copied());
            index = index.saturating_add(step);
            step = step.saturating_mul(2);
        }
        if let Some(oldest) = all.last()
            && probes.last() != Some(oldest)
        {
            probes.push(*oldest);
        }
        probes
    }

    /// Drops every cached log and checkpoint after block `keep_through` (`None`: everything),
    /// after a reorg.
    pub(super) fn rewind(&mut self, keep_through: Option<u64>) {
        self.stats.reorgs = self.stats.reorgs.saturating_add(1);
        let mut dropped = 0u64;
        match keep_through {
            Some(block) => {
                self.checkpoints.retain(|number, _| *number <= block);
                for logs in self.by_event.values_mut() {
                    let keep = logs.partition_point(|log| log.block_number <= block);
                    dropped = dropped.saturating_add((logs.len() - keep) as u64);
                    logs.truncate(keep);
                }
            }
            None => {
                self.checkpoints.clear();
                for logs in self.by_event.values_mut() {
                    dropped = dropped.saturating_add(logs.len() as u64);
                    logs.clear();
                }
            }
        }
        self.by_event.retain(|_, logs| !logs.is_empty());
        self.unsaved.rewound = match (self.unsaved.rewound, keep_through) {
            (Some(None), _) | (_, None) => Some(None),
            (Some(Some(earlier)), Some(block)) => Some(Some(earlier.min(block))),
            (None, Some(block)) => Some(Some(block)),
        };
        if let Some(block) = keep_through {
            self.unsaved.logs.retain(|log| log.block_number <= block);
        } else {
            self.unsaved.logs.clear();
        }
        self.dirty = true;
        self.stats.cached_logs = self.stats.cached_logs.saturating_sub(dropped);
        self.stats.dropped_logs = self.stats.dropped_logs.saturating_add(dropped);
    }

    /// Notes the start of a sync that fetches something.
    pub(super) fn begin_fetch(&mut self) {
        self.stats.last_fetched_ranges.clear();
    }

    /// Notes one `eth_getLogs` request for `from..=to`.
    pub(super) fn count_request(&mut self, from: u64, to: u64) {
        self.stats.get_logs_requests = self.stats.get_logs_requests.saturating_add(1);
        self.stats.last_fetched_ranges.push((from, to));
    }

    /// Commits a chunk: `logs` (of blocks after the synced block, through `through`, in any
    /// order) become cached, and `through` with `hash` the synced block.
    pub(super) fn commit(&mut self, mut logs: Vec<ChainLog>, through: u64, hash: B256) {
        logs.sort_by_key(|log| (log.block_number, log.log_index));
        self.stats.cached_logs = self.stats.cached_logs.saturating_add(logs.len() as u64);
        for log in logs {
            let Some(signature) = log.topics.first().copied() else {
                continue; // anonymous: no registry event is, and no filter could match it
            };
            if self.store.is_some() {
                self.unsaved.logs.push(log.clone());
            }
            self.by_event.entry(signature).or_default().push(log);
        }
        self.dirty = true;
        self.checkpoints.insert(through, hash);
        self.thin_checkpoints();
        self.stats.synced_block = Some(through);
    }

    /// Keeps at most [`MAX_CHECKPOINTS`], never dropping the oldest nor the newest: removes
    /// the one whose gap to its older neighbour is smallest relative to its distance from the
    /// newest, so the kept ones end up roughly geometrically spaced back from the synced block.
    fn thin_checkpoints(&mut self) {
        while self.checkpoints.len() > MAX_CHECKPOINTS {
            let numbers: Vec<u64> = self.checkpoints.keys().copied().collect();
            let (Some(newest), Some(inner)) = (
                numbers.last().copied(),
                numbers.get(..numbers.len().saturating_sub(1)),
            ) else {
                return;
            };
            // (gap, age + 1, number) of every candidate.
            let victim = inner
                .windows(2)
                .filter_map(|pair| match pair {
                    [older, newer] => Some((
                        u128::from(newer - older),
                        u128::from(newest - newer) + 1,
                        *newer,
                    )),
                    _ => None,
                })
                .min_by(|a, b| (a.0 * b.1).cmp(&(b.0 * a.1)))
                .map(|(_, _, number)| number);
            match victim {
                Some(number) => {
                    self.checkpoints.remove(&number);
                }
                None => return,
            }
        }
    }

    /// The cached logs passing `filter`, in (block, log index) order.
    pub(super) fn query(&self, filter: &LogFilter) -> Vec<ChainLog> {
        let mut events = filter.events.clone();
        events.sort_unstable();
        events.dedup();
        let mut out: Vec<ChainLog> = events
            .iter()
            .filter_map(|event| self.by_event.get(event))
            .flat_map(|logs| logs.iter().filter(|log| filter.matches(&log.topics)))
            .cloned()
            .collect();
        out.sort_by_key(|log| (log.block_number, log.log_index));
        out
    }

    /// A copy of the statistics.
    pub(super) fn stats(&self) -> LogCacheStats {
        self.stats.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log(block: u64, index: u64, event: u8) -> ChainLog {
        ChainLog {
            topics: vec![B256::repeat_byte(event), B256::repeat_byte(0xaa)],
            data: Vec::new(),
            block_number: block,
            timestamp: block,
            tx_hash: B256::ZERO,
            log_index: index,
        }
    }

    #[test]
    fn queries_answer_per_event_in_chain_order() {
        let mut cache = LogCache::new(0);
        cache.commit(
            vec![log(3, 0, 1), log(2, 1, 2), log(2, 0, 1)],
            3,
            B256::ZERO,
        );
        cache.commit(vec![log(5, 0, 2)], 5, B256::ZERO);
        let both = cache.query(&LogFilter::events(&[
            B256::repeat_byte(2),
            B256::repeat_byte(1),
            B256::repeat_byte(1),
        ]));
        let positions: Vec<_> = both.iter().map(|l| (l.block_number, l.log_index)).collect();
        assert_eq!(positions, vec![(2, 0), (2, 1), (3, 0), (5, 0)]);
        let one = cache.query(&LogFilter::events(&[B256::repeat_byte(2)]));
        assert_eq!(one.len(), 2);
        let topic = LogFilter::events(&[B256::repeat_byte(1)]).with_topic(0, B256::ZERO);
        assert!(cache.query(&topic).is_empty());
        assert_eq!(cache.stats().cached_logs, 4);
        assert_eq!(cache.next_block(), 6);
    }

    #[test]
    fn rewind_drops_later_logs_and_checkpoints() {
        let mut cache = LogCache::new(1);
        assert_eq!(cache.next_block(), 1);
        cache.commit(vec![log(2, 0, 1)], 4, B256::repeat_byte(4));
        cache.commit(vec![log(6, 0, 1), log(7, 0, 1)], 8, B256::repeat_byte(8));
        cache.rewind(Some(4));
        assert_eq!(cache.synced(), Some((4, B256::repeat_byte(4))));
        assert_eq!(
            cache
                .query(&LogFilter::events(&[B256::repeat_byte(1)]))
                .len(),
            1
        );
        let stats = cache.stats();
        assert_eq!(
            (stats.cached_logs, stats.dropped_logs, stats.reorgs),
            (1, 2, 1)
        );
        cache.rewind(None);
        assert_eq!(cache.synced(), None);
        assert_eq!(cache.next_block(), 1);
        assert_eq!(cache.stats().cached_logs, 0);
    }

    #[test]
    fn checkpoints_stay_bounded_and_probes_are_logarithmic() {
        let mut cache = LogCache::new(0);
        for block in 1..=1_000u64 {
            cache.commit(Vec::new(), block, B256::ZERO);
        }
        assert_eq!(cache.checkpoints.len(), MAX_CHECKPOINTS);
        assert_eq!(
            cache.checkpoints.first_key_value().map(|(n, _)| *n),
            Some(1)
        );
        assert_eq!(cache.synced().map(|(n, _)| n), Some(1_000));
        // Dense near the synced block, sparser further back.
        assert!((993..=1_000).all(|n| cache.checkpoints.contains_key(&n)));
        assert!(cache.checkpoints.keys().any(|n| (800..=936).contains(n)));
        let probes = cache.probe_checkpoints();
        assert!(probes.len() <= 8, "{probes:?}");
        assert_eq!(probes.first().map(|(n, _)| *n), Some(1_000));
        assert_eq!(probes.last().map(|(n, _)| *n), Some(1));
        assert!(probes.windows(2).all(|pair| pair[0].0 > pair[1].0));
    }
}
