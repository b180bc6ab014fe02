//! Blocks of the embedded chain: one signed transaction each, hash-chained, and their binary
//! encoding as journal records.
//!
//! Journal payload (all integers big-endian):
//!
//! ```text
//! version (1 byte, = 1) | number (8) | timestamp (8) | parent hash (32) | block hash (32)
//! | raw transaction (EIP-2718, rest of the payload)
//! ```
//!
//! The block hash commits to the header fields, the transaction hash and the execution
//! outcome (gas used and every log), so replaying the journal with a different EVM result is
//! detected.

use alloy::primitives::{B256, keccak256};

use crate::error::LedgerError;
use crate::error::LedgerResult;

const VERSION: u8 = 1;
const HEADER_LEN: usize = 1 + 8 + 8 + 32 + 32;

/// A block as stored in the journal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BlockRecord {
    /// Block number (the deployment is block 1).
    pub(crate) number: u64,
    /// Unix seconds; never less than the parent's.
    pub(crate) timestamp: u64,
    /// Hash of the parent block ([`GENESIS_PARENT`] for block 1).
    pub(crate) parent_hash: B256,
    /// This block's hash (see [`block_hash`]).
    pub(crate) hash: B256,
    /// The block's single transaction, EIP-2718 encoded.
    pub(crate) raw_tx: Vec<u8>,
}

/// Parent hash of the first block.
pub(crate) const GENESIS_PARENT: B256 = B256::ZERO;

/// One log as it enters the block hash.
pub(crate) struct HashedLog<'a> {
    /// Emitting contract.
    pub(crate) address: &'a [u8; 20],
    /// Topics.
    pub(crate) topics: &'a [B256],
    /// Data.
    pub(crate) data: &'a [u8],
}

/// The hash of a block with the given header, transaction and execution outcome.
pub(crate) fn block_hash<'a>(
    number: u64,
    timestamp: u64,
    parent_hash: &B256,
    tx_hash: &B256,
    gas_used: u64,
    logs: impl IntoIterator<Item = HashedLog<'a>>,
) -> B256 {
    let mut logs_preimage = Vec::new();
    for log in logs {
        logs_preimage.extend_from_slice(log.address);
        logs_preimage.extend_from_slice(&(log.topics.len() as u64).to_be_bytes());
        for topic in log.topics {
            logs_preimage.extend_from_slice(topic.as_slice());
        }
        logs_preimage.extend_from_slice(&(log.data.len() as u64).to_be_bytes());
        logs_preimage.extend_from_slice(log.data);
    }
    let mut preimage = Vec::with_capacity(8 + 8 + 32 + 32 + 8 + 32 + 16);
    preimage.extend_from_slice(b"medseal-block-v1");
    preimage.extend_from_slice(&number.to_be_bytes());
    preimage.extend_from_slice(&timestamp.to_be_bytes());
    preimage.extend_from_slice(parent_hash.as_slice());
    preimage.extend_from_slice(tx_hash.as_slice());
    preimage.extend_from_slice(&gas_used.to_be_bytes());
    preimage.extend_from_slice(keccak256(&logs_preimage).as_slice());
    keccak256(&preimage)
}

impl BlockRecord {
    /// Encodes the block as a journal payload.
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(HEADER_LEN + self.raw_tx.len());
        out.push(VERSION);
        out.extend_from_slice(&self.number.to_be_bytes());
        out.extend_from_slice(&self.timestamp.to_be_bytes());
        out.extend_from_slice(self.parent_hash.as_slice());
        out.extend_from_slice(self.hash.as_slice());
        out.extend_from_slice(&self.raw_tx);
        out
    }

    /// Decodes a journal payload.
    pub(crate) fn decode(payload: &[u8]) -> LedgerResult<Self> {
        let corrupt = |what: &str| LedgerError::Corrupt(format!("journal block record: {what}"));
        if payload.len() <= HEADER_LEN {
            return Err(corrupt("too short"));
        }
        let (header, raw_tx) = payload.split_at(HEADER_LEN);
        if header.first() != Some(&VERSION) {
            return Err(corrupt("unknown version"));
        }
        let u64_at = |at: usize| -> LedgerResult<u64> {
            let bytes: [u8; 8] = header
                .get(at..at + 8)
                .and_then(|b| b.try_into().ok())
                .ok_or_else(|| corrupt("truncated header"))?;
            Ok(u64::from_be_bytes(bytes))
        };
        let b256_at = |at: usize| -> LedgerResult<B256> {
            header
                .get(at..at + 32)
                .map(B256::from_slice)
                .ok_or_else(|| corrupt("truncated header"))
        };
        Ok(Self {
            number: u64_at(1)?,
            timestamp: u64_at(9)?,
            parent_hash: b256_at(17)?,
            hash: b256_at(49)?,
            raw_tx: raw_tx.to_vec(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encode_decode_round_trip() {
        let block = BlockRecord {
            number: 42,
            timestamp: 1_700_000_000,
            parent_hash: B256::repeat_byte(1),
            hash: B256::repeat_byte(2),
            raw_tx: vec![2, 0xf8, 0x01],
        };
        assert_eq!(BlockRecord::decode(&block.encode()).unwrap(), block);
        assert!(BlockRecord::decode(&block.encode()[..HEADER_LEN]).is_err());
    }

    #[test]
    fn block_hash_commits_to_every_input() {
        let topics = [B256::repeat_byte(9)];
        let log = || HashedLog {
            address: &[3u8; 20],
            topics: &topics,
            data: b"data",
        };
        let base = block_hash(1, 2, &B256::ZERO, &B256::repeat_byte(4), 5, [log()]);
        assert_ne!(
            base,
            block_hash(2, 2, &B256::ZERO, &B256::repeat_byte(4), 5, [log()])
        );
        assert_ne!(
            base,
            block_hash(1, 3, &B256::ZERO, &B256::repeat_byte(4), 5, [log()])
        );
        assert_ne!(
            base,
            block_hash(1, 2, &B256::ZERO, &B256::repeat_byte(4), 6, [log()])
        );
        assert_ne!(
            base,
            block_hash(1, 2, &B256::ZERO, &B256::repeat_byte(4), 5, [])
        );
        assert_eq!(
            base,
            block_hash(1, 2, &B256::ZERO, &B256::repeat_byte(4), 5, [log()])
        );
    }
}
