//! The narrow interface a chain implementation provides so that one implementation of the
//! registry logic ([`crate::registry_ops`]) serves every [`Ledger`](crate::Ledger).

use alloy::primitives::{Address, B256};
use async_trait::async_trait;

use crate::ledger::LedgerResult;
use crate::types::TxReceipt;

/// A log emitted by the registry contract, with its position in the chain.
#[derive(Debug, Clone)]
pub(crate) struct ChainLog {
    /// Topics (topic 0 is the event signature hash).
    pub(crate) topics: Vec<B256>,
    /// ABI-encoded non-indexed fields.
    pub(crate) data: Vec<u8>,
    /// Including block.
    pub(crate) block_number: u64,
    /// Timestamp of that block.
    pub(crate) timestamp: u64,
    /// Emitting transaction.
    pub(crate) tx_hash: [u8; 32],
    /// Index of the log within its block.
    pub(crate) log_index: u64,
}

/// Which registry logs to fetch: topic 0 must be one of `events`, and each given topic must
/// match exactly (like `eth_getLogs`).
#[derive(Debug, Clone, Default)]
pub(crate) struct LogFilter {
    /// Accepted event signature hashes (topic 0).
    pub(crate) events: Vec<B256>,
    /// Required topic 1, 2, 3 (first, second, third indexed parameter).
    pub(crate) topics: [Option<B256>; 3],
}

impl LogFilter {
    /// A filter for the given events.
    pub(crate) fn events(events: &[B256]) -> Self {
        Self {
            events: events.to_vec(),
            topics: [None; 3],
        }
    }

    /// Requires indexed parameter `position` (0-based, i.e. topic `position + 1`) to equal `value`.
    pub(crate) fn with_topic(mut self, position: usize, value: B256) -> Self {
        if let Some(slot) = self.topics.get_mut(position) {
            *slot = Some(value);
        }
        self
    }

    /// Whether `topics` passes the filter.
    pub(crate) fn matches(&self, topics: &[B256]) -> bool {
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
#[derive(Debug, Clone)]
pub(crate) struct TxOutcome {
    /// Hash, block and gas.
    pub(crate) receipt: TxReceipt,
    /// The registry logs it emitted.
    pub(crate) logs: Vec<ChainLog>,
}

/// What a chain must offer to host the registry.
#[async_trait]
pub(crate) trait ContractBackend: Send + Sync {
    /// The signing account.
    fn sender(&self) -> Address;

    /// The registry contract's address.
    fn registry(&self) -> Address;

    /// Signs and submits a call to the registry, waits for inclusion and returns the outcome.
    /// A call that reverts fails with the decoded contract error and is not included.
    async fn transact(&self, calldata: Vec<u8>) -> LedgerResult<TxOutcome>;

    /// Executes a read-only call against the latest state (from the sender) and returns the
    /// output; a revert fails with the decoded contract error.
    async fn call(&self, calldata: Vec<u8>) -> LedgerResult<Vec<u8>>;

    /// Registry logs that pass `filter`, in chain order.
    async fn logs(&self, filter: &LogFilter) -> LedgerResult<Vec<ChainLog>>;
}
