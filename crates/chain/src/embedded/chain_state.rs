//! The state machine of the embedded chain: a revm instance (PRAGUE rules) over the state in
//! the snapshot database, the log index there, and (optionally) the journal that persists
//! blocks.

use alloy::primitives::{Address, B256, Bytes, TxKind, U256};
use alloy::signers::local::PrivateKeySigner;
use revm::context::result::{EVMError, ExecutionResult, Output, ResultAndState};
use revm::context::{BlockEnv, TxEnv};
use revm::database_interface::WrapDatabaseRef;
use revm::primitives::hardfork::SpecId;
use revm::state::EvmState;
use revm::{Context, DatabaseRef, ExecuteEvm, MainBuilder, MainContext};

use super::block::{BlockRecord, HashedLog, block_hash};
use super::journal::Journal;
use super::snapshot::{BlockUpdate, HeadMeta, Snapshot};
use crate::backend::{ChainLog, LogFilter, TxOutcome};
use crate::error::LedgerError;
use crate::error::LedgerResult;
use crate::revert::decode_revert;
use crate::signing::{UnsignedCall, decode_and_recover, sign_call};
use crate::types::TxReceipt;

/// Gas limit of every embedded block.
pub(crate) const BLOCK_GAS_LIMIT: u64 = 30_000_000;
/// Gas limit of every embedded transaction (the EIP-7825 cap, so also valid after Osaka).
/// Gas is free on the embedded chain (base fee and gas price are zero), so a generous limit
/// costs nothing; gas *used* does not depend on it.
pub(crate) const TX_GAS_LIMIT: u64 = 1 << 24;

/// Head of the chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Head {
    pub(crate) number: u64,
    pub(crate) timestamp: u64,
    pub(crate) hash: B256,
}

/// A transaction that executed successfully but is not yet committed.
struct Executed {
    block: BlockRecord,
    gas_used: u64,
    tx_hash: B256,
    logs: Vec<ChainLog>,
    created: Option<Address>,
    state: EvmState,
}

/// State of one embedded chain (shared by all [`EmbeddedChain`](super::EmbeddedChain) handles).
///
/// The state lives in the [`Snapshot`]: revm's `Evm` is not `Send`, so a short-lived EVM is
/// built over a read view of it for every execution (cheap: an instruction table and a frame
/// stack); the state changes it returns are written back with the block.
pub(crate) struct ChainCore {
    snapshot: Snapshot,
    chain_id: u64,
    head: Head,
    registry: Option<Address>,
    journal: Option<Journal>,
    /// Set when a block reached the journal but not the snapshot: the chain refuses further
    /// work until it is reopened (which replays that block from the journal).
    broken: Option<String>,
}

fn now_unix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl ChainCore {
    /// A chain over `snapshot` (whose meta gives the head and registry) with PRAGUE rules.
    pub(crate) fn new(snapshot: Snapshot, journal: Option<Journal>) -> Self {
        let meta = *snapshot.meta();
        Self {
            chain_id: meta.chain_id,
            head: Head {
                number: meta.head.number,
                timestamp: meta.head.timestamp,
                hash: meta.head.hash,
            },
            registry: meta.registry,
            snapshot,
            journal,
            broken: None,
        }
    }

    /// The snapshot database.
    pub(crate) fn snapshot(&self) -> &Snapshot {
        &self.snapshot
    }

    /// Replaces the snapshot by a copy of it in a new snapshot file at `path`.
    pub(crate) fn persist_snapshot(&mut self, path: &std::path::Path) -> LedgerResult<()> {
        self.snapshot = self.snapshot.copy_to_file(path)?;
        Ok(())
    }

    /// The snapshot database, for repairs.
    #[cfg(test)]
    pub(crate) fn snapshot_mut(&mut self) -> &mut Snapshot {
        &mut self.snapshot
    }

    fn check_usable(&self) -> LedgerResult<()> {
        match &self.broken {
            None => Ok(()),
            Some(why) => Err(LedgerError::Corrupt(format!(
                "{why}; reopen the chain (the journal has the block and reopening repairs the \
                 snapshot)"
            ))),
        }
    }

    pub(crate) fn head(&self) -> Head {
        self.head
    }

    pub(crate) fn chain_id(&self) -> u64 {
        self.chain_id
    }

    /// The registry address (the contract created by block 1), once deployed.
    pub(crate) fn registry(&self) -> Option<Address> {
        self.registry
    }

    /// Re-executes a journaled block (at `start..end` of the journal) and checks that it
    /// reproduces the recorded hash chain, then applies it to the snapshot.
    pub(crate) fn replay(&mut self, payload: &[u8], start: u64, end: u64) -> LedgerResult<()> {
        let block = BlockRecord::decode(payload)?;
        let expected_number = self.head.number + 1;
        if block.number != expected_number {
            return Err(LedgerError::Corrupt(format!(
                "journal block {} found where block {expected_number} was expected",
                block.number
            )));
        }
        if block.parent_hash != self.head.hash {
            return Err(LedgerError::Corrupt(format!(
                "journal block {} does not extend the hash chain",
                block.number
            )));
        }
        if block.timestamp < self.head.timestamp {
            return Err(LedgerError::Corrupt(format!(
                "journal block {} goes back in time",
                block.number
            )));
        }
        let executed = self
            .execute(&block.raw_tx, block.number, block.timestamp)
            .map_err(|e| {
                LedgerError::Corrupt(format!(
                    "journal block {} does not replay: {e}",
                    block.number
                ))
            })?;
        if executed.block.hash != block.hash {
            return Err(LedgerError::Corrupt(format!(
                "journal block {} replays to a different result (hash mismatch)",
                block.number
            )));
        }
        self.commit(executed, start, end)
    }

    /// Signs a transaction from `signer`, executes it in a new block, journals the block
    /// (durably) and commits it. A reverting transaction fails with the decoded error and
    /// leaves no trace.
    pub(crate) fn submit(
        &mut self,
        signer: &PrivateKeySigner,
        to: TxKind,
        input: Vec<u8>,
    ) -> LedgerResult<(TxOutcome, Option<Address>)> {
        self.check_usable()?;
        let nonce = self.nonce(signer.address())?;
        let signed = sign_call(
            signer,
            UnsignedCall {
                chain_id: self.chain_id,
                nonce,
                gas_limit: TX_GAS_LIMIT,
                max_fee_per_gas: 0,
                max_priority_fee_per_gas: 0,
                to,
                input,
            },
        )?;
        let number = self.head.number + 1;
        let timestamp = now_unix().max(self.head.timestamp);
        let executed = self.execute(&signed.raw, number, timestamp)?;
        let (start, end) = match self.journal.as_mut() {
            Some(journal) => journal.append(&executed.block.encode())?,
            None => (0, 0),
        };
        let outcome = TxOutcome {
            receipt: TxReceipt {
                tx_hash: executed.tx_hash,
                block_number: number,
                gas_used: executed.gas_used,
            },
            logs: executed.logs.clone(),
        };
        let created = executed.created;
        if let Err(error) = self.commit(executed, start, end) {
            self.broken = Some(format!(
                "block {number} was journaled but the snapshot update failed ({error})"
            ));
            return Err(error);
        }
        Ok((outcome, created))
    }

    /// Executes a read-only call against the head state; nothing is committed.
    pub(crate) fn call(
        &mut self,
        from: Address,
        to: Address,
        input: Vec<u8>,
    ) -> LedgerResult<Vec<u8>> {
        self.check_usable()?;
        let tx = TxEnv::builder()
            .caller(from)
            .gas_limit(TX_GAS_LIMIT)
            .max_fee_per_gas(0)
            .gas_priority_fee(Some(0))
            .tx_type(Some(2))
            .kind(TxKind::Call(to))
            .data(Bytes::from(input))
            .chain_id(Some(self.chain_id))
            .build()
            .map_err(|e| LedgerError::InvalidTransaction(format!("{e:?}")))?;
        let block = block_env(self.head.number, self.head.timestamp, self.head.hash);
        let result = self.run(block, tx, true)?.result;
        match result {
            ExecutionResult::Success { output, .. } => Ok(output.into_data().to_vec()),
            ExecutionResult::Revert { output, .. } => Err(decode_revert(&output)),
            ExecutionResult::Halt { reason, .. } => Err(LedgerError::Halted {
                reason: format!("{reason:?}"),
            }),
        }
    }

    /// Registry logs that pass `filter`, in chain order (answered from the log index).
    pub(crate) fn logs(&self, filter: &LogFilter) -> LedgerResult<Vec<ChainLog>> {
        self.check_usable()?;
        self.snapshot.logs(filter)
    }

    fn nonce(&mut self, address: Address) -> LedgerResult<u64> {
        let info = self
            .snapshot
            .view()?
            .basic_ref(address)
            .map_err(|e| LedgerError::Corrupt(format!("state lookup failed: {e}")))?;
        Ok(info.map(|i| i.nonce).unwrap_or(0))
    }

    /// Executes `raw_tx` as block `number` on top of the head, without committing.
    fn execute(&mut self, raw_tx: &[u8], number: u64, timestamp: u64) -> LedgerResult<Executed> {
        let verified = decode_and_recover(raw_tx)?;
        let tx = &verified.tx;
        if tx.chain_id != self.chain_id {
            return Err(LedgerError::InvalidTransaction(format!(
                "transaction for chain {} sent to chain {}",
                tx.chain_id, self.chain_id
            )));
        }
        let tx_env = TxEnv::builder()
            .tx_type(Some(2))
            .caller(verified.sender)
            .gas_limit(tx.gas_limit)
            .max_fee_per_gas(tx.max_fee_per_gas)
            .gas_priority_fee(Some(tx.max_priority_fee_per_gas))
            .kind(tx.to)
            .data(tx.input.clone())
            .nonce(tx.nonce)
            .chain_id(Some(tx.chain_id))
            .build()
            .map_err(|e| LedgerError::InvalidTransaction(format!("{e:?}")))?;
        let outcome = self.run(block_env(number, timestamp, self.head.hash), tx_env, false)?;
        let (gas_used, logs, created) = match outcome.result {
            ExecutionResult::Success {
                gas, logs, output, ..
            } => {
                let created = match output {
                    Output::Create(_, address) => address,
                    Output::Call(_) => None,
                };
                (gas.used(), logs, created)
            }
            ExecutionResult::Revert { output, .. } => return Err(decode_revert(&output)),
            ExecutionResult::Halt { reason, .. } => {
                return Err(LedgerError::Halted {
                    reason: format!("{reason:?}"),
                });
            }
        };
        let hash = block_hash(
            number,
            timestamp,
            &self.head.hash,
            &verified.hash,
            gas_used,
            logs.iter().map(|log| HashedLog {
                address: &log.address.0.0,
                topics: log.data.topics(),
                data: log.data.data.as_ref(),
            }),
        );
        let chain_logs = logs
            .iter()
            .enumerate()
            .filter(|(_, log)| self.registry.is_none_or(|r| r == log.address))
            .map(|(index, log)| ChainLog {
                topics: log.data.topics().to_vec(),
                data: log.data.data.to_vec(),
                block_number: number,
                timestamp,
                tx_hash: verified.hash,
                log_index: index as u64,
            })
            .collect();
        Ok(Executed {
            block: BlockRecord {
                number,
                timestamp,
                parent_hash: self.head.hash,
                hash,
                raw_tx: raw_tx.to_vec(),
            },
            gas_used,
            tx_hash: verified.hash,
            logs: chain_logs,
            created,
            state: outcome.state,
        })
    }

    /// Executes `tx` in `block` over the current state with a fresh PRAGUE EVM; returns the
    /// result and the state changes without committing them. `read_only` skips the nonce check
    /// (an `eth_call`).
    fn run(&mut self, block: BlockEnv, tx: TxEnv, read_only: bool) -> LedgerResult<ResultAndState> {
        let chain_id = self.chain_id;
        let view = self.snapshot.view()?;
        let mut evm = Context::mainnet()
            .with_db(WrapDatabaseRef(&view))
            .modify_cfg_chained(|cfg| {
                cfg.set_spec_and_mainnet_gas_params(SpecId::PRAGUE);
                cfg.chain_id = chain_id;
                cfg.disable_nonce_check = read_only;
            })
            .with_block(block)
            .build_mainnet();
        evm.transact(tx).map_err(evm_error)
    }

    /// Writes an executed block (journaled at `start..end`, or `0..0` in memory) to the
    /// snapshot and advances the head.
    fn commit(&mut self, executed: Executed, start: u64, end: u64) -> LedgerResult<()> {
        let registry = if executed.block.number == 1 {
            executed.created
        } else {
            self.registry
        };
        let head = HeadMeta {
            number: executed.block.number,
            timestamp: executed.block.timestamp,
            hash: executed.block.hash,
            gas_used: executed.gas_used,
        };
        self.snapshot.apply(&BlockUpdate {
            head,
            journal_start: start,
            journal_end: end,
            registry,
            state: &executed.state,
            logs: &executed.logs,
        })?;
        self.registry = registry;
        self.head = Head {
            number: head.number,
            timestamp: head.timestamp,
            hash: head.hash,
        };
        Ok(())
    }
}

fn block_env(number: u64, timestamp: u64, parent_hash: B256) -> BlockEnv {
    BlockEnv {
        number: U256::from(number),
        timestamp: U256::from(timestamp),
        gas_limit: BLOCK_GAS_LIMIT,
        basefee: 0,
        prevrandao: Some(parent_hash),
        ..BlockEnv::default()
    }
}

fn evm_error<E: std::fmt::Debug>(error: EVMError<E>) -> LedgerError {
    match error {
        EVMError::Transaction(invalid) => LedgerError::InvalidTransaction(invalid.to_string()),
        other => LedgerError::Corrupt(format!("EVM failure: {other:?}")),
    }
}
