//! A wrapper that implements only the required methods of `Ledger` (by delegation) and
//! overrides single operations: the overrides are what every caller of the wrapper sees —
//! through `Arc<dyn Ledger>`, through `for_signer` handles and from other provided methods —
//! and everything else runs over the wrapper's `transact` / `call` / `logs`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use async_trait::async_trait;
use medseal_chain::dev_keys::anvil_dev_signer;
use medseal_chain::{
    AccessState, Address, B256, ChainLog, EmbeddedChain, Ledger, LedgerError, LedgerResult,
    LogFilter, PrivateKeySigner, RecordId, TxOutcome, TxReceipt,
};

#[derive(Default)]
struct Counters {
    calls: AtomicU32,
    access_states: AtomicU32,
}

/// Refuses every grant, counts read-only calls and `access_state` lookups.
struct NoGrants {
    inner: Arc<dyn Ledger>,
    counters: Arc<Counters>,
}

#[async_trait]
impl Ledger for NoGrants {
    fn sender(&self) -> Address {
        self.inner.sender()
    }
    fn registry_address(&self) -> Address {
        self.inner.registry_address()
    }
    fn for_signer(&self, signer: PrivateKeySigner) -> Arc<dyn Ledger> {
        Arc::new(NoGrants {
            inner: self.inner.for_signer(signer),
            counters: Arc::clone(&self.counters),
        })
    }
    async fn transact(&self, calldata: Vec<u8>) -> LedgerResult<TxOutcome> {
        self.inner.transact(calldata).await
    }
    async fn call(&self, calldata: Vec<u8>) -> LedgerResult<Vec<u8>> {
        self.counters.calls.fetch_add(1, Ordering::SeqCst);
        self.inner.call(calldata).await
    }
    async fn logs(&self, filter: &LogFilter) -> LedgerResult<Vec<ChainLog>> {
        self.inner.logs(filter).await
    }
    async fn grant_access(&self, _: RecordId, _: Address) -> LedgerResult<TxReceipt> {
        Err(LedgerError::Config("grants are disabled".into()))
    }
    async fn access_state(&self, record: RecordId, user: Address) -> LedgerResult<AccessState> {
        self.counters.access_states.fetch_add(1, Ordering::SeqCst);
        self.inner.access_state(record, user).await
    }
}

#[tokio::test]
async fn overrides_are_seen_everywhere_and_the_rest_is_provided() {
    let chain = EmbeddedChain::in_memory(anvil_dev_signer(0).unwrap()).unwrap();
    let counters = Arc::new(Counters::default());
    let owner: Arc<dyn Ledger> = Arc::new(NoGrants {
        inner: Arc::new(chain.clone()),
        counters: Arc::clone(&counters),
    });
    let user = owner.for_signer(anvil_dev_signer(1).unwrap());

    let record = owner
        .create_record("bafy-manifest", B256::repeat_byte(7))
        .await
        .unwrap()
        .record;
    let error = owner.grant_access(record, user.sender()).await.unwrap_err();
    assert!(matches!(error, LedgerError::Config(_)), "{error:?}");
    // Provided queries run over the wrapper's `call`.
    let before = counters.calls.load(Ordering::SeqCst);
    assert_eq!(owner.record_count().await.unwrap(), 1);
    assert!(counters.calls.load(Ordering::SeqCst) > before);

    // `for_signer` keeps the wrapper; a provided method reaches the override through `self`.
    user.request_access(record).await.unwrap();
    let pending = user.pending_requests(owner.sender()).await.unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!(counters.access_states.load(Ordering::SeqCst), 1);

    // The unwrapped chain grants as usual and saw no grant before.
    assert!(!chain.can_access(record, user.sender()).await.unwrap());
    chain.grant_access(record, user.sender()).await.unwrap();
    assert!(user.can_access(record, user.sender()).await.unwrap());
}
