//! A ledger wrapper that adds up the gas of the transactions sent through it (and through
//! its signer handles): shared by the command line's `import` and the scale report.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use medseal::chain::{ChainLog, Ledger, LedgerResult, LogFilter, TxOutcome, U256};
use medseal::{Address, PrivateKeySigner};

/// Counts the gas of every transaction sent through it.
pub(crate) struct GasMeter {
    pub(crate) inner: Arc<dyn Ledger>,
    pub(crate) gas: Arc<AtomicU64>,
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
        })
    }
    async fn transact(&self, calldata: Vec<u8>) -> LedgerResult<TxOutcome> {
        let outcome = self.inner.transact(calldata).await?;
        self.gas
            .fetch_add(outcome.receipt.gas_used, Ordering::Relaxed);
        Ok(outcome)
    }
    async fn call(&self, calldata: Vec<u8>) -> LedgerResult<Vec<u8>> {
        self.inner.call(calldata).await
    }
    async fn logs(&self, filter: &LogFilter) -> LedgerResult<Vec<ChainLog>> {
        self.inner.logs(filter).await
    }
    async fn balance(&self, account: Address) -> LedgerResult<Option<U256>> {
        self.inner.balance(account).await
    }
}
