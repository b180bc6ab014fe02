//! A ledger wrapper that adds up the gas of the transactions sent through it (and through
//! its signer handles) and counts its chain reads: shared by the command line's `import`
//! and the scale report.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use medseal::chain::{ChainLog, Ledger, LedgerResult, LogFilter, TxOutcome, U256};
use medseal::{Address, PrivateKeySigner};

/// Counts the gas of every transaction sent through it, and its reads.
pub(crate) struct GasMeter {
    pub(crate) inner: Arc<dyn Ledger>,
    pub(crate) gas: Arc<AtomicU64>,
    /// Chain reads: one per view call (`eth_call`), log query (`eth_getLogs`) or balance
    /// query. Every registry operation of the ledger trait is built on these (neither
    /// backend overrides them), so this is what a node would serve.
    pub(crate) reads: Arc<AtomicU64>,
}

#[async_trait]
impl Ledger for GasMeter {
    fn sender(&self) -> Address {
        self.inner.sender()
    }
    fn registry_address(&self) -> Address {
        self.inner.registry_address()
    }
    fn for_signer(&self, signer: PrivateKeySigner) -> Arc<dyn Ledger> {
        Arc::new(GasMeter {
            inner: self.inner.for_signer(signer),
            gas: Arc::clone(&self.gas),
            reads: Arc::clone(&self.reads),
        })
    }
    async fn transact(&self, calldata: Vec<u8>) -> LedgerResult<TxOutcome> {
        let outcome = self.inner.transact(calldata).await?;
        self.gas
            .fetch_add(outcome.receipt.gas_used, Ordering::Relaxed);
        Ok(outcome)
    }
    async fn call(&self, calldata: Vec<u8>) -> LedgerResult<Vec<u8>> {
        self.reads.fetch_add(1, Ordering::Relaxed);
        self.inner.call(calldata).await
    }
    async fn logs(&self, filter: &LogFilter) -> LedgerResult<Vec<ChainLog>> {
        self.reads.fetch_add(1, Ordering::Relaxed);
        self.inner.logs(filter).await
    }
    async fn balance(&self, account: Address) -> LedgerResult<Option<U256>> {
        self.reads.fetch_add(1, Ordering::Relaxed);
        self.inner.balance(account).await
    }
}
