//! What the required methods of [`Ledger`](crate::Ledger) exchange with a chain: the outcome of
//! a transaction ([`TxOutcome`]) and the registry's logs ([`LogFilter`] in, [`ChainLog`] out).

use alloy::primitives::B256;

use crate::types::TxReceipt;

/// A log emitted by the registry contract, with its position in the chain.
///
/// Built by chain implementations ([`Ledger::transact`](crate::Ledger::transact),
/// [`Ledger::logs`](crate::Ledger::logs)) and decoded by the provided methods of
/// [`Ledger`](crate::Ledger).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainLog {
    /// Topics (topic 0 is the event signature hash).
    pub topics: Vec<B256>,
    /// ABI-encoded non-indexed fields.
    pub data: Vec<u8>,
    /// Including block.
    pub block_number: u64,
    /// Timestamp (Unix seconds) of that block.
    pub timestamp: u64,
    /// Emitting transaction.
    pub tx_hash: B256,
    /// Index of the log within its block.
    pub log_index: u64,
}

impl ChainLog {
    /// The stored form of a log in the local databases (the embedded chain's snapshot, the
    /// RPC log cache), keyed elsewhere by block and log index:
    /// `timestamp u64 | tx hash (32) | u8 topic count | topics (32 each) | data`.
    pub(crate) fn stored_value(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(41 + 32 * self.topics.len() + self.data.len());
        out.extend_from_slice(&self.timestamp.to_be_bytes());
        out.extend_from_slice(self.tx_hash.as_slice());
        // An event has at most four topics.
        out.push(u8::try_from(self.topics.len()).unwrap_or(u8::MAX));
        for topic in &self.topics {
            out.extend_from_slice(topic.as_slice());
        }
        out.extend_from_slice(&self.data);
        out
    }

    /// Decodes [`ChainLog::stored_value`]; `None` if malformed.
    pub(crate) fn from_stored(block_number: u64, log_index: u64, value: &[u8]) -> Option<Self> {
        let timestamp = u64::from_be_bytes(value.get(..8)?.try_into().ok()?);
        let tx_hash = B256::from_slice(value.get(8..40)?);
        let topics_end = 41 + 32 * usize::from(*value.get(40)?);
        let topics = value
            .get(41..topics_end)?
            .chunks_exact(32)
            .map(B256::from_slice)
            .collect();
        Some(Self {
            topics,
            data: value.get(topics_end..)?.to_vec(),
            block_number,
            timestamp,
            tx_hash,
            log_index,
        })
    }
}

/// Which registry logs to fetch: topic 0 must be one of `events`, and each given topic must
/// match exactly (like `eth_getLogs` on the registry's address).
///
/// Built with [`events`](Self::events) and [`with_topic`](Self::with_topic); chain
/// implementations read the fields or call [`matches`](Self::matches). Non-exhaustive so that
/// criteria (a block range, say) can be added.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct LogFilter {
    /// Accepted event signature hashes (topic 0).
    pub events: Vec<B256>,
    /// Required topic 1, 2, 3 (first, second, third indexed parameter).
    pub topics: [Option<B256>; 3],
}

impl LogFilter {
    /// A filter for the given events.
    pub fn events(events: &[B256]) -> Self {
        Self {
            events: events.to_vec(),
            topics: [None; 3],
        }
    }

    /// Requires indexed parameter `position` (0-based, i.e. topic `position + 1`) to equal
    /// `value`; positions past the third are ignored (an event has at most three).
    pub fn with_topic(mut self, position: usize, value: B256) -> Self {
        if let Some(slot) = self.topics.get_mut(position) {
            *slot = Some(value);
        }
        self
    }

    /// Whether a log with these `topics` passes the filter.
    pub fn matches(&self, topics: &[B256]) -> bool {
        let Some(first) = topics.first() else {
            return false;
        };
        if !self.events.contains(first) {
            return false;
        }
        self.topics.iter().enumerate().all(|(i, want)| match want {
            None => true,
            Some(want) => topics.get(i + 1) == Some(want),
        })
    }
}

/// A mined, successful transaction to the registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxOutcome {
    /// Hash, block and gas.
    pub receipt: TxReceipt,
    /// The registry logs it emitted, in log order.
    pub logs: Vec<ChainLog>,
}
