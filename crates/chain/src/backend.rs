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
