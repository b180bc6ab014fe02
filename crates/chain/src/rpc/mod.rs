//! [`RpcChain`]: the registry on any Ethereum JSON-RPC node over plain HTTP (no TLS compiled
//! in), signing locally.
//!
//! * Transactions are EIP-1559, signed with a local [`PrivateKeySigner`] and sent with
//!   `eth_sendRawTransaction`; the node never holds a key.
//! * Before sending, `eth_estimateGas` simulates the call: a revert is decoded into the typed
//!   contract error and nothing is sent. The gas limit is the estimate plus 20 %.
//! * Before signing, the sender's balance (`eth_getBalance`) is checked against the most the
//!   transaction may cost (gas limit × max fee per gas): an account that cannot pay fails with
//!   [`LedgerError::InsufficientFunds`](crate::LedgerError::InsufficientFunds), naming the
//!   address and both amounts, and nothing is sent.
//! * Every send waits for the receipt (polling); a transaction that reverts on chain anyway
//!   (state changed in between) is reported with the decoded error.
//! * Transport failures (connection refused/reset, timeouts, HTTP 5xx/429) are retried with
//!   exponential backoff, a bounded number of times; then the call fails with
//!   [`LedgerError::NodeUnavailable`](crate::LedgerError::NodeUnavailable) naming the endpoint.
//! * Sends of one account are serialised (nonce from `eth_getTransactionCount(pending)` under a
//!   per-account lock), so concurrent tasks sharing a handle do not collide.
//! * Event queries (`recordsOf`/`sharedWith`/audit trail…) are answered from an incremental,
//!   reorg-safe cache of the registry's logs from the deployment block (or
//!   [`RpcOptions::logs_from_block`]) on, shared by all handles of one [`RpcChain`]: each query
//!   fetches only the blocks after the last synced one, with `eth_getLogs` in chunks of at most
//!   [`RpcOptions::logs_chunk_blocks`] blocks (see [Log cache](RpcChain#log-cache)); with
//!   [`RpcChain::with_log_cache_file`] the cache is also kept in a file for the next process.

mod log_cache;
mod log_store;
mod retry;

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use alloy::primitives::{Address, B256, Bytes, TxKind, U256};
use alloy::providers::{Provider, RootProvider};
use alloy::rpc::client::RpcClient;
use alloy::rpc::types::{
    BlockNumberOrTag, Filter, Log, TransactionInput, TransactionReceipt, TransactionRequest,
};
use alloy::signers::local::PrivateKeySigner;
use alloy::transports::http::reqwest;
use async_trait::async_trait;

pub use self::log_cache::LogCacheStats;

use self::log_cache::LogCache;
use self::log_store::LogStore;
use self::retry::{RetryPolicy, RpcFailure, with_retry};
use crate::backend::{ChainLog, LogFilter, TxOutcome};
use crate::bindings::MedsealRegistry;
use crate::error::LedgerError;
use crate::error::LedgerResult;
use crate::ledger::Ledger;
use crate::signing::{UnsignedCall, sign_call};
use crate::types::TxReceipt;

/// Tuning of an [`RpcChain`].
#[derive(Debug, Clone)]
pub struct RpcOptions {
    /// Attempts per JSON-RPC request before giving up with `NodeUnavailable` (at least 1).
    pub max_attempts: u32,
    /// Pause before the first retry; doubled for every further one.
    pub initial_backoff: Duration,
    /// Timeout of a single HTTP request.
    pub request_timeout: Duration,
    /// How long to wait for a sent transaction's receipt.
    pub receipt_timeout: Duration,
    /// Pause between receipt polls.
    pub poll_interval: Duration,
    /// First block scanned by event queries (defaults to the deployment block after
    /// [`RpcChain::deploy`], to 0 after [`RpcChain::connect`]).
    pub logs_from_block: Option<u64>,
    /// Most blocks asked for in one `eth_getLogs` request when the log cache syncs (at least
    /// 1; many providers cap the range).
    pub logs_chunk_blocks: u64,
}

impl Default for RpcOptions {
    fn default() -> Self {
        Self {
            max_attempts: 5,
            initial_backoff: Duration::from_millis(100),
            request_timeout: Duration::from_secs(10),
            receipt_timeout: Duration::from_secs(60),
            poll_interval: Duration::from_millis(50),
            logs_from_block: None,
            logs_chunk_blocks: 5_000,
        }
    }
}

/// State shared by all handles of one connection.
struct Shared {
    provider: RootProvider,
    endpoint: String,
    chain_id: u64,
    options: RpcOptions,
    /// One send lock per account (nonce allocation + wait for inclusion).
    send_locks: Mutex<HashMap<Address, Arc<tokio::sync::Mutex<()>>>>,
    /// Block hash -> timestamp, for logs that do not carry `blockTimestamp`.
    timestamps: Mutex<HashMap<B256, u64>>,
}

/// A `MedsealRegistry` on an Ethereum JSON-RPC node, seen through one local signer.
///
/// Cheap to clone; [`with_signer`](Self::with_signer) handles share the HTTP connection and the
/// log cache.
///
/// # Log cache
///
/// [`Ledger::logs`] (and so every event query) is answered from an in-memory cache of every
/// log of the registry address, decoded once, indexed by event signature and kept in chain
/// order. A query first syncs it: one `eth_blockNumber`, a hash check of the last synced block
/// (`eth_getBlockByNumber`), then, for the blocks after it only, one `eth_getBlockByNumber`
/// and one `eth_getLogs` per chunk of at most [`RpcOptions::logs_chunk_blocks`] blocks. So a
/// repeated query costs a few requests whatever the history's length, and its answer scans
/// only the cached logs of the requested events. Block timestamps are fetched at most once
/// per block (when a log does not carry `blockTimestamp`).
///
/// **Reorgs.** Each synced chunk's last block is kept as a checkpoint with its hash, read
/// before the chunk's logs (so a reorg racing a sync is caught by the next one). If the synced
/// block's hash has changed (or the block is gone) when a query syncs, the newest checkpoint
/// that the node still has with the same hash bounds the fork (probed exponentially back,
/// O(log n) requests; at most 64 checkpoints are kept, the oldest always, the others spread
/// out): cached logs after it are dropped and those blocks are fetched again; if no
/// checkpoint survived, the whole cache is rebuilt. A block hash commits to all its ancestors,
/// so after every query the cache holds exactly the logs a full `eth_getLogs` over the same
/// range would have returned when the node answered the hash checks, for a reorg of any
/// depth. Logs flagged `removed` are ignored. [`log_cache_stats`](Self::log_cache_stats)
/// reports the cache's size, requests and detected reorgs.
#[derive(Clone)]
pub struct RpcChain {
    shared: Arc<Shared>,
    signer: PrivateKeySigner,
    registry: Address,
    /// The registry's logs, synced incrementally (see [`log_cache`]).
    logs: Arc<tokio::sync::Mutex<LogCache>>,
}

impl std::fmt::Debug for RpcChain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RpcChain")
            .field("endpoint", &self.shared.endpoint)
            .field("chain_id", &self.shared.chain_id)
            .field("sender", &self.signer.address())
            .field("registry", &self.registry)
            .finish_non_exhaustive()
    }
}

impl RpcChain {
    /// Deploys a new registry with `signer` on the node at `url` (e.g.
    /// `http://127.0.0.1:8545`) and returns a handle to it.
    pub async fn deploy(url: &str, signer: PrivateKeySigner) -> LedgerResult<Self> {
        Self::deploy_with(url, signer, RpcOptions::default()).await
    }

    /// [`deploy`](Self::deploy) with explicit options.
    pub async fn deploy_with(
        url: &str,
        signer: PrivateKeySigner,
        options: RpcOptions,
    ) -> LedgerResult<Self> {
        let shared = Arc::new(Shared::connect(url, options).await?);
        let deployed = shared
            .send(&signer, TxKind::Create, MedsealRegistry::BYTECODE.to_vec())
            .await?;
        let registry = deployed.contract_address.ok_or_else(|| {
            LedgerError::Corrupt("deployment receipt names no contract address".into())
        })?;
        let block = deployed.block_number.unwrap_or(0);
        let logs_from_block = shared.options.logs_from_block.unwrap_or(block);
        tracing::info!(endpoint = %shared.endpoint, %registry, block, "MedsealRegistry deployed");
        Ok(Self {
            shared,
            signer,
            registry,
            logs: Arc::new(tokio::sync::Mutex::new(LogCache::new(logs_from_block))),
        })
    }

    /// Connects to an existing registry at `registry`; fails with
    /// [`LedgerError::Config`] if no contract code is there.
    pub async fn connect(
        url: &str,
        signer: PrivateKeySigner,
        registry: Address,
    ) -> LedgerResult<Self> {
        Self::connect_with(url, signer, registry, RpcOptions::default()).await
    }

    /// [`connect`](Self::connect) with explicit options.
    pub async fn connect_with(
        url: &str,
        signer: PrivateKeySigner,
        registry: Address,
        options: RpcOptions,
    ) -> LedgerResult<Self> {
        let shared = Arc::new(Shared::connect(url, options).await?);
        let code = shared
            .retry("eth_getCode", || shared.provider.get_code_at(registry))
            .await?;
        if code.is_empty() {
            return Err(LedgerError::Config(format!(
                "no contract at {registry} on {}",
                shared.endpoint
            )));
        }
        let logs_from_block = shared.options.logs_from_block.unwrap_or(0);
        Ok(Self {
            shared,
            signer,
            registry,
            logs: Arc::new(tokio::sync::Mutex::new(LogCache::new(logs_from_block))),
        })
    }

    /// A handle to the same registry and connection that signs with `signer`.
    pub fn with_signer(&self, signer: PrivateKeySigner) -> Self {
        Self {
            shared: Arc::clone(&self.shared),
            signer,
            registry: self.registry,
            logs: Arc::clone(&self.logs),
        }
    }

    /// The node URL.
    pub fn endpoint(&self) -> &str {
        &self.shared.endpoint
    }

    /// The node's chain id.
    pub fn chain_id(&self) -> u64 {
        self.shared.chain_id
    }

    /// Keeps the log cache in the redb database file at `path` (created if missing) as well,
    /// so that the next process using the same file resumes the sync where this one stopped
    /// instead of rescanning the history. Call it right after [`deploy`](Self::deploy) /
    /// [`connect`](Self::connect), before making [`with_signer`](Self::with_signer) handles
    /// (those made before keep an unsaved cache).
    ///
    /// One file can serve several chains and registries (entries are keyed by chain id and
    /// registry address; an entry synced from another first block is replaced). Loaded logs
    /// are not trusted blindly: the first query checks the stored synced block's hash against
    /// the node like any sync (see [Log cache](Self#log-cache)). Every sync that changed
    /// something is saved in one durable transaction. The file is derived data: an unreadable
    /// one is replaced with a warning; one held by another process is not used (warning;
    /// the cache stays in memory), nor is a file that fails to save later.
    pub async fn with_log_cache_file(self, path: impl AsRef<Path>) -> LedgerResult<Self> {
        let store = LogStore::open(path.as_ref(), self.shared.chain_id, self.registry)?;
        if let Some(store) = store {
            self.logs.lock().await.attach(store)?;
        }
        Ok(self)
    }

    /// What the log cache (shared by this handle's [`with_signer`](Self::with_signer) family)
    /// holds and how many requests it made; waits for a running sync.
    pub async fn log_cache_stats(&self) -> LogCacheStats {
        self.logs.lock().await.stats()
    }

    /// Brings the log cache up to the node's latest block: one `eth_blockNumber`, a hash
    /// check of the synced block (after a reorg, a few more to find the fork bound), then one
    /// `eth_getBlockByNumber` and one `eth_getLogs` per chunk of new blocks.
    async fn sync_logs(&self, cache: &mut LogCache) -> LedgerResult<()> {
        let synced = self.sync_logs_unsaved(cache).await;
        // Also after a failure: the chunks committed before it are consistent.
        cache.save();
        synced
    }

    async fn sync_logs_unsaved(&self, cache: &mut LogCache) -> LedgerResult<()> {
        let shared = &self.shared;
        let head = shared
            .retry("eth_blockNumber", || shared.provider.get_block_number())
            .await?;
        if let Some((number, hash)) = cache.synced()
            && shared.block_hash(number).await? != Some(hash)
        {
            let mut fork_bound = None;
            for (number, hash) in cache.probe_checkpoints() {
                if number <= head && shared.block_hash(number).await? == Some(hash) {
                    fork_bound = Some(number);
                    break;
                }
            }
            tracing::info!(
                endpoint = %shared.endpoint,
                registry = %self.registry,
                block = number,
                resync_after = ?fork_bound,
                "chain reorganisation: dropping the cached registry logs after the fork bound"
            );
            cache.rewind(fork_bound);
        }
        let chunk = shared.options.logs_chunk_blocks.max(1);
        let mut from = cache.next_block();
        if from <= head {
            cache.begin_fetch();
        }
        while from <= head {
            let to = from.saturating_add(chunk - 1).min(head);
            // The hash is read before the logs: a reorg in between is seen by the next sync.
            let hash = shared.block_hash(to).await?.ok_or_else(|| {
                LedgerError::Corrupt(format!("node reports block {head} but not block {to}"))
            })?;
            let query = Filter::new()
                .address(self.registry)
                .from_block(from)
                .to_block(to);
            cache.count_request(from, to);
            let raw = shared
                .retry("eth_getLogs", || shared.provider.get_logs(&query))
                .await?;
            let mut logs = Vec::with_capacity(raw.len());
            for log in &raw {
                if log.removed || log.address() != self.registry {
                    continue;
                }
                logs.push(shared.chain_log(log).await?);
            }
            cache.commit(logs, to, hash);
            from = to.saturating_add(1);
        }
        Ok(())
    }
}

impl Shared {
    async fn connect(url: &str, options: RpcOptions) -> LedgerResult<Self> {
        let parsed: reqwest::Url = url
            .parse()
            .map_err(|e| LedgerError::Config(format!("invalid node URL {url:?}: {e}")))?;
        // alloy's HTTP transport is built without TLS (loopback/LAN nodes only), so https
        // would fail at the first request; say so up front.
        if parsed.scheme() != "http" {
            return Err(LedgerError::Config(format!(
                "node URL {url:?} must be plain http:// (TLS is not compiled in)"
            )));
        }
        let http = reqwest::Client::builder()
            .timeout(options.request_timeout)
            .build()
            .map_err(|e| LedgerError::Config(format!("cannot build HTTP client: {e}")))?;
        let provider = RootProvider::new(RpcClient::new_http_with_client(http, parsed));
        let mut shared = Self {
            provider,
            endpoint: url.to_owned(),
            chain_id: 0,
            options,
            send_locks: Mutex::new(HashMap::new()),
            timestamps: Mutex::new(HashMap::new()),
        };
        shared.chain_id = shared
            .retry("eth_chainId", || shared.provider.get_chain_id())
            .await?;
        Ok(shared)
    }

    /// Runs `request` with this connection's retry policy; a final failure becomes the
    /// matching [`LedgerError`] (reverts decoded).
    async fn retry<T, F, Fut>(&self, what: &str, request: F) -> LedgerResult<T>
    where
        F: FnMut() -> Fut,
        Fut: std::future::IntoFuture<Output = Result<T, alloy::transports::TransportError>>,
    {
        let policy = RetryPolicy {
            max_attempts: self.options.max_attempts,
            initial_backoff: self.options.initial_backoff,
        };
        with_retry(policy, &self.endpoint, what, request)
            .await
            .map_err(RpcFailure::into_ledger_error)
    }

    fn send_lock(&self, account: Address) -> LedgerResult<Arc<tokio::sync::Mutex<()>>> {
        let mut locks = self
            .send_locks
            .lock()
            .map_err(|_| LedgerError::Corrupt("send lock table poisoned".into()))?;
        Ok(Arc::clone(locks.entry(account).or_default()))
    }

    /// Simulates, signs, sends and waits for a transaction; returns its successful receipt.
    async fn send(
        &self,
        signer: &PrivateKeySigner,
        to: TxKind,
        input: Vec<u8>,
    ) -> LedgerResult<TransactionReceipt> {
        let from = signer.address();
        let lock = self.send_lock(from)?;
        let _guard = lock.lock().await;

        let request = TransactionRequest {
            from: Some(from),
            to: Some(to),
            input: TransactionInput::new(Bytes::from(input.clone())),
            ..Default::default()
        };
        // A revert surfaces here, decoded, before anything is signed or sent.
        let estimate = self
            .retry("eth_estimateGas", || {
                self.provider.estimate_gas(request.clone())
            })
            .await?;
        let nonce = self
            .retry("eth_getTransactionCount", || {
                self.provider.get_transaction_count(from).pending()
            })
            .await?;
        let fees = self
            .retry("eth_feeHistory", || self.provider.estimate_eip1559_fees())
            .await?;
        let gas_limit = estimate.saturating_add(estimate / 5);
        // The node refuses a transaction whose sender cannot cover gas limit × max fee
        // (with a bare "insufficient funds"): check first and say who needs how much.
        let needed = U256::from(gas_limit).saturating_mul(U256::from(fees.max_fee_per_gas));
        if !needed.is_zero() {
            let balance = self.balance(from).await?;
            if balance < needed {
                return Err(LedgerError::InsufficientFunds {
                    address: from,
                    balance,
                    needed,
                });
            }
        }
        let signed = sign_call(
            signer,
            UnsignedCall {
                chain_id: self.chain_id,
                nonce,
                gas_limit,
                max_fee_per_gas: fees.max_fee_per_gas,
                max_priority_fee_per_gas: fees.max_priority_fee_per_gas,
                to,
                input: input.clone(),
            },
        )?;

        let mut attempt = 0u32;
        self.retry("eth_sendRawTransaction", || {
            attempt += 1;
            let raw = signed.raw.clone();
            let first_attempt = attempt == 1;
            async move {
                match self.provider.send_raw_transaction(&raw).await {
                    Ok(_) => Ok(()),
                    // A retried send whose first attempt reached the node.
                    Err(e) if !first_attempt && is_already_known(&e) => Ok(()),
                    Err(e) => Err(e),
                }
            }
        })
        .await?;

        let receipt = self.wait_for_receipt(signed.hash).await?;
        if !receipt.status() {
            // The state changed between estimation and inclusion: find out why it reverted.
            let block = receipt.block_number.unwrap_or(0).saturating_sub(1);
            let replay = self
                .provider
                .call(request)
                .block(BlockNumberOrTag::Number(block).into())
                .await;
            return Err(match replay {
                Err(e) => retry::answered_error(e),
                Ok(_) => LedgerError::Reverted { data: Vec::new() },
            });
        }
        Ok(receipt)
    }

    async fn wait_for_receipt(&self, hash: B256) -> LedgerResult<TransactionReceipt> {
        let started = tokio::time::Instant::now();
        loop {
            let receipt = self
                .retry("eth_getTransactionReceipt", || {
                    self.provider.get_transaction_receipt(hash)
                })
                .await?;
            if let Some(receipt) = receipt {
                return Ok(receipt);
            }
            if started.elapsed() >= self.options.receipt_timeout {
                return Err(LedgerError::ReceiptTimeout {
                    tx_hash: hash,
                    waited_secs: started.elapsed().as_secs(),
                });
            }
            tokio::time::sleep(self.options.poll_interval).await;
        }
    }

    /// The balance of `account` at the latest block, in wei.
    async fn balance(&self, account: Address) -> LedgerResult<U256> {
        self.retry("eth_getBalance", || self.provider.get_balance(account))
            .await
    }

    /// The hash of block `number` on the node's current chain (`None` if it has no such block).
    async fn block_hash(&self, number: u64) -> LedgerResult<Option<B256>> {
        let block = self
            .retry("eth_getBlockByNumber", || {
                self.provider
                    .get_block_by_number(BlockNumberOrTag::Number(number))
            })
            .await?;
        // Not recorded in `timestamps`: that map only grows by blocks that hold registry logs.
        Ok(block.map(|block| block.header.hash))
    }

    /// The timestamp of the block with hash `hash` (cached per block).
    async fn block_timestamp(&self, hash: B256) -> LedgerResult<u64> {
        if let Ok(cache) = self.timestamps.lock()
            && let Some(ts) = cache.get(&hash)
        {
            return Ok(*ts);
        }
        let block = self
            .retry("eth_getBlockByHash", || {
                self.provider.get_block_by_hash(hash)
            })
            .await?
            .ok_or_else(|| LedgerError::Corrupt(format!("node does not know block {hash}")))?;
        let ts = block.header.timestamp;
        if let Ok(mut cache) = self.timestamps.lock() {
            cache.insert(hash, ts);
        }
        Ok(ts)
    }

    async fn chain_log(&self, log: &Log) -> LedgerResult<ChainLog> {
        let block_number = log
            .block_number
            .ok_or_else(|| LedgerError::Corrupt("node returned a pending log".into()))?;
        let timestamp = match (log.block_timestamp, log.block_hash) {
            (Some(ts), _) => ts,
            (None, Some(hash)) => self.block_timestamp(hash).await?,
            (None, None) => {
                return Err(LedgerError::Corrupt(
                    "node returned a log without its block hash".into(),
                ));
            }
        };
        Ok(ChainLog {
            topics: log.topics().to_vec(),
            data: log.data().data.to_vec(),
            block_number,
            timestamp,
            tx_hash: log.transaction_hash.unwrap_or_default(),
            log_index: log.log_index.unwrap_or(0),
        })
    }
}

fn is_already_known(error: &alloy::transports::TransportError) -> bool {
    error.as_error_resp().is_some_and(|payload| {
        let message = payload.message.to_ascii_lowercase();
        message.contains("already known") || message.contains("known transaction")
    })
}

#[async_trait]
impl Ledger for RpcChain {
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
        let receipt = self
            .shared
            .send(&self.signer, TxKind::Call(self.registry), calldata)
            .await?;
        let mut logs = Vec::new();
        for log in receipt.logs() {
            if log.address() == self.registry {
                logs.push(self.shared.chain_log(log).await?);
            }
        }
        Ok(TxOutcome {
            receipt: TxReceipt {
                tx_hash: receipt.transaction_hash,
                block_number: receipt.block_number.unwrap_or(0),
                gas_used: receipt.gas_used,
            },
            logs,
        })
    }

    async fn call(&self, calldata: Vec<u8>) -> LedgerResult<Vec<u8>> {
        let request = TransactionRequest {
            from: Some(self.signer.address()),
            to: Some(TxKind::Call(self.registry)),
            input: TransactionInput::new(Bytes::from(calldata)),
            ..Default::default()
        };
        let output = self
            .shared
            .retry("eth_call", || self.shared.provider.call(request.clone()))
            .await?;
        Ok(output.to_vec())
    }

    async fn logs(&self, filter: &LogFilter) -> LedgerResult<Vec<ChainLog>> {
        let mut cache = self.logs.lock().await;
        self.sync_logs(&mut cache).await?;
        Ok(cache.query(filter))
    }

    async fn balance(&self, account: Address) -> LedgerResult<Option<U256>> {
        self.shared.balance(account).await.map(Some)
    }
}
