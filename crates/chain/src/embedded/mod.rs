//! [`EmbeddedChain`]: an in-process EVM chain (revm, PRAGUE rules) that runs the committed
//! `MedsealRegistry` bytecode, optionally persisted as an append-only journal.
//!
//! * Every state change is a real secp256k1-signed EIP-1559 transaction; the EVM sender is the
//!   address *recovered from the signature* (also on replay), never a claimed one.
//! * One block per transaction; each block's hash commits to its parent's hash, the
//!   transaction and its execution outcome (gas and logs).
//! * Gas is free (base fee and gas price zero); gas *used* is metered exactly as on Ethereum
//!   (same revm rules as a PRAGUE node), which is what the gas report measures.
//! * Persistence: each block is appended to the journal and `fsync`ed before the call returns,
//!   so every acknowledged transaction survives a crash. On open the journal is replayed
//!   through the EVM and every block hash is re-checked; a torn tail from an interrupted append
//!   is dropped with a `tracing::warn!`.
//! * A reverting call returns the typed contract error and adds no block (like a node whose
//!   gas estimation fails before anything is sent).
//! * Block timestamps are wall-clock seconds, never decreasing (several blocks may share one).
//! * One process at a time may open a journal; nothing locks the file.
//!
//! Operations run synchronously inside the `async` methods (microseconds of EVM work plus one
//! `fsync` per transaction when persistent); handles share one chain behind a mutex.

mod block;
mod chain_state;
mod journal;

use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

use alloy::primitives::{Address, B256, TxKind};
use alloy::signers::local::PrivateKeySigner;
use async_trait::async_trait;

use self::chain_state::ChainCore;
use self::journal::Journal;
use crate::backend::{ChainLog, LogFilter, TxOutcome};
use crate::bindings::MedsealRegistry;
use crate::error::LedgerError;
use crate::error::LedgerResult;
use crate::ledger::Ledger;

/// Chain id of embedded chains (signed into every transaction, EIP-155).
pub const EMBEDDED_CHAIN_ID: u64 = 1_337_424;

/// Summary of a block of the embedded chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockInfo {
    /// Block number (block 1 deploys the registry; 0 means "no block yet").
    pub number: u64,
    /// Unix seconds.
    pub timestamp: u64,
    /// Block hash (chained over all previous blocks).
    pub hash: B256,
}

/// An in-process chain hosting one `MedsealRegistry`, seen through one signer.
///
/// Cheap to clone; clones and [`with_signer`](Self::with_signer) handles share the same chain.
#[derive(Clone)]
pub struct EmbeddedChain {
    core: Arc<Mutex<ChainCore>>,
    signer: PrivateKeySigner,
    registry: Address,
    dropped_tail_bytes: u64,
}

impl std::fmt::Debug for EmbeddedChain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddedChain")
            .field("sender", &self.signer.address())
            .field("registry", &self.registry)
            .finish_non_exhaustive()
    }
}

impl EmbeddedChain {
    /// A fresh, non-persistent chain; `deployer` deploys the registry in block 1 and is the
    /// signer of the returned handle.
    pub fn in_memory(deployer: PrivateKeySigner) -> LedgerResult<Self> {
        let mut core = ChainCore::new(EMBEDDED_CHAIN_ID, None);
        let registry = deploy(&mut core, &deployer)?;
        Ok(Self::from_core(core, deployer, registry, 0))
    }

    /// Opens the chain persisted in the journal file at `path`, replaying every block (a torn
    /// tail left by a crash is dropped with a warning). If the journal is new or empty, `signer`
    /// deploys the registry in block 1. Returns a handle signing with `signer`.
    pub fn open(path: impl AsRef<Path>, signer: PrivateKeySigner) -> LedgerResult<Self> {
        let path = path.as_ref();
        let (journal, records, recovery) = Journal::open(path)?;
        let mut core = ChainCore::new(EMBEDDED_CHAIN_ID, Some(journal));
        for payload in &records {
            core.replay(payload)?;
        }
        let registry = match core.registry() {
            Some(registry) => registry,
            None if records.is_empty() => deploy(&mut core, &signer)?,
            None => {
                return Err(LedgerError::Corrupt(format!(
                    "{}: block 1 did not deploy a contract",
                    path.display()
                )));
            }
        };
        tracing::debug!(
            path = %path.display(),
            blocks = core.head().number,
            "embedded chain opened"
        );
        Ok(Self::from_core(
            core,
            signer,
            registry,
            recovery.dropped_bytes,
        ))
    }

    fn from_core(
        core: ChainCore,
        signer: PrivateKeySigner,
        registry: Address,
        dropped_tail_bytes: u64,
    ) -> Self {
        Self {
            core: Arc::new(Mutex::new(core)),
            signer,
            registry,
            dropped_tail_bytes,
        }
    }

    /// A handle to the same chain that signs with `signer`.
    pub fn with_signer(&self, signer: PrivateKeySigner) -> Self {
        Self {
            core: Arc::clone(&self.core),
            signer,
            registry: self.registry,
            dropped_tail_bytes: self.dropped_tail_bytes,
        }
    }

    /// The latest block.
    pub fn head(&self) -> LedgerResult<BlockInfo> {
        let head = self.lock()?.head();
        Ok(BlockInfo {
            number: head.number,
            timestamp: head.timestamp,
            hash: head.hash,
        })
    }

    /// The chain id signed into transactions ([`EMBEDDED_CHAIN_ID`]).
    pub fn chain_id(&self) -> LedgerResult<u64> {
        Ok(self.lock()?.chain_id())
    }

    /// Bytes of torn journal tail that [`open`](Self::open) dropped (0 for a clean journal or an
    /// in-memory chain).
    pub fn dropped_tail_bytes(&self) -> u64 {
        self.dropped_tail_bytes
    }

    fn lock(&self) -> LedgerResult<MutexGuard<'_, ChainCore>> {
        self.core.lock().map_err(|_| {
            LedgerError::Corrupt("embedded chain state lock poisoned by a panic".into())
        })
    }
}

fn deploy(core: &mut ChainCore, deployer: &PrivateKeySigner) -> LedgerResult<Address> {
    let (_, created) = core.submit(deployer, TxKind::Create, MedsealRegistry::BYTECODE.to_vec())?;
    created.ok_or_else(|| LedgerError::Corrupt("registry deployment created no contract".into()))
}

#[async_trait]
impl Ledger for EmbeddedChain {
    fn sender(&self) -> Address {
        self.signer.address()
    }

    fn registry_address(&self) -> Address {
        self.registry
    }

    fn for_signer(&self, signer: PrivateKeySigner) -> Arc<dyn Ledger> {
        Arc::new(self.with_signer(signer))
    }

    async fn transact(&self, calldata: Vec<u8>) -> LedgerResult<TxOutcome> {
        let (outcome, _) =
            self.lock()?
                .submit(&self.signer, TxKind::Call(self.registry), calldata)?;
        Ok(outcome)
    }

    async fn call(&self, calldata: Vec<u8>) -> LedgerResult<Vec<u8>> {
        self.lock()?
            .call(self.signer.address(), self.registry, calldata)
    }

    async fn logs(&self, filter: &LogFilter) -> LedgerResult<Vec<ChainLog>> {
        Ok(self.lock()?.logs(filter))
    }
}
