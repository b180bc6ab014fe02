//! RpcChain's incremental log cache against a real JSON-RPC node (`MEDSEAL_ETH_RPC`, see
//! `tests/rpc_conformance.rs`; skipped with a notice when unset, failing when `CI=true`):
//!
//! * a repeated query fetches only the blocks mined since the previous one;
//! * every kind of filter the registry uses answers exactly like a full-range `eth_getLogs`
//!   (and like a fresh handle with an empty cache);
//! * a reorg (anvil's `evm_snapshot` / `evm_revert`, then different transactions) drops the
//!   reverted logs from the cache.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stderr,
    missing_docs,
    unreachable_pub
)]

mod common;

use std::collections::BTreeSet;
use std::sync::LazyLock;
use std::time::{Duration, Instant};

use alloy::primitives::U256;
use alloy::providers::{Provider, RootProvider};
use alloy::rpc::types::{BlockNumberOrTag, Filter};
use alloy::sol_types::SolEvent;
use common::{Rng, node_url};
use medseal_chain::bindings::MedsealRegistry as R;
use medseal_chain::dev_keys::anvil_dev_signer;
use medseal_chain::{
    B256, ChainLog, Ledger, LogFilter, PrivateKeySigner, RecordId, RpcChain, RpcOptions,
};

/// Tests share the node's dev accounts (and anvil's snapshots): one at a time.
static NODE_LOCK: LazyLock<tokio::sync::Mutex<()>> = LazyLock::new(|| tokio::sync::Mutex::new(()));

const ALL_EVENTS: [B256; 10] = [
    R::RecordCreated::SIGNATURE_HASH,
    R::RecordUpdated::SIGNATURE_HASH,
    R::AccessGranted::SIGNATURE_HASH,
    R::AccessRevoked::SIGNATURE_HASH,
    R::AccessRequested::SIGNATURE_HASH,
    R::AccessDenied::SIGNATURE_HASH,
    R::AccessLogged::SIGNATURE_HASH,
    R::IndexAnchored::SIGNATURE_HASH,
    R::CapsulePublished::SIGNATURE_HASH,
    R::RecordCreated::SIGNATURE_HASH, // duplicates must not duplicate results
];

fn signer(index: usize) -> PrivateKeySigner {
    anvil_dev_signer(index).unwrap()
}

fn provider(url: &str) -> RootProvider {
    RootProvider::new_http(url.parse().unwrap())
}

async fn head(url: &str) -> u64 {
    provider(url).get_block_number().await.unwrap()
}

/// A handle with an empty cache on the same registry, fetching `chunk` blocks per request.
async fn fresh(chain: &RpcChain, url: &str, chunk: u64) -> RpcChain {
    let options = RpcOptions {
        logs_chunk_blocks: chunk,
        ..RpcOptions::default()
    };
    RpcChain::connect_with(url, signer(3), chain.registry_address(), options)
        .await
        .unwrap()
}

/// (topics, data, block, tx, log index): a log without its timestamp.
type Key = (Vec<B256>, Vec<u8>, u64, B256, u64);

fn key(log: &ChainLog) -> Key {
    (
        log.topics.clone(),
        log.data.clone(),
        log.block_number,
        log.tx_hash,
        log.log_index,
    )
}

/// The registry's logs passing `filter`, from one full-range `eth_getLogs` (what RpcChain did
/// before it had a cache).
async fn full_range(url: &str, chain: &RpcChain, filter: &LogFilter) -> Vec<Key> {
    let raw = provider(url)
        .get_logs(
            &Filter::new()
                .address(chain.registry_address())
                .from_block(0)
                .to_block(BlockNumberOrTag::Latest),
        )
        .await
        .unwrap();
    let mut logs: Vec<Key> = raw
        .iter()
        .filter(|log| !log.removed && filter.matches(log.topics()))
        .map(|log| {
            (
                log.topics().to_vec(),
                log.data().data.to_vec(),
                log.block_number.unwrap(),
                log.transaction_hash.unwrap(),
                log.log_index.unwrap(),
            )
        })
        .collect();
    logs.sort_by_key(|k| (k.2, k.4));
    logs
}

/// Every filter shape the registry's queries use: each event alone, all together, and each
/// event with each topic value seen (alone and all of a log's topics at once).
fn filters(logs: &[ChainLog]) -> Vec<LogFilter> {
    let mut filters = vec![LogFilter::events(&ALL_EVENTS)];
    for event in &ALL_EVENTS[..9] {
        filters.push(LogFilter::events(&[*event]));
    }
    let mut seen = BTreeSet::new();
    for log in logs {
        let (event, indexed) = (log.topics[0], &log.topics[1..]);
        for (position, topic) in indexed.iter().enumerate() {
            if seen.insert((event, position, *topic)) {
                filters.push(LogFilter::events(&[event]).with_topic(position, *topic));
                // The record-events filter of the audit trail: many events, one topic.
                filters.push(LogFilter::events(&ALL_EVENTS).with_topic(position, *topic));
            }
        }
        let mut all = LogFilter::events(&[event]);
        for (position, topic) in indexed.iter().enumerate() {
            all = all.with_topic(position, *topic);
        }
        filters.push(all);
    }
    filters.push(LogFilter::events(&[B256::repeat_byte(0x5a)])); // no such event
    filters
}

/// Checks every filter on `warm` against `fresh` (empty cache) and a full-range query.
async fn assert_same_answers(url: &str, warm: &RpcChain, fresh: &RpcChain) {
    let everything = warm.logs(&LogFilter::events(&ALL_EVENTS)).await.unwrap();
    assert!(!everything.is_empty());
    let all_filters = filters(&everything);
    for filter in &all_filters {
        let from_cache = warm.logs(filter).await.unwrap();
        let reference = full_range(url, warm, filter).await;
        assert_eq!(
            from_cache.iter().map(key).collect::<Vec<_>>(),
            reference,
            "{filter:?}"
        );
        assert_eq!(fresh.logs(filter).await.unwrap(), from_cache, "{filter:?}");
    }
    eprintln!(
        "{} filters agree over {} logs",
        all_filters.len(),
        everything.len()
    );
}

#[tokio::test]
async fn repeated_queries_fetch_only_new_blocks() {
    let Some(url) = node_url() else { return };
    let _guard = NODE_LOCK.lock().await;
    let owner = RpcChain::deploy(&url, signer(0)).await.unwrap();
    let alice = owner.with_signer(signer(1));
    for i in 0..6 {
        owner
            .create_record(&format!("bafy-inc-{i}"), B256::repeat_byte(1))
            .await
            .unwrap();
    }
    assert_eq!(owner.records_of(owner.sender()).await.unwrap().len(), 6);
    let first = owner.log_cache_stats().await;
    let synced = head(&url).await;
    assert_eq!(first.synced_block, Some(synced));
    assert_eq!(first.get_logs_requests, 1, "{first:?}");
    let deploy_block = first.last_fetched_ranges[0].0;
    assert_eq!(first.last_fetched_ranges, vec![(deploy_block, synced)]);
    assert_eq!(first.cached_logs, 6);

    // Nothing new: no eth_getLogs at all, also through another signer's handle.
    assert_eq!(alice.shared_with(alice.sender()).await.unwrap(), vec![]);
    assert_eq!(alice.log_cache_stats().await.get_logs_requests, 1);

    // Three transactions later: one request, for exactly the new blocks.
    for id in 1..=3 {
        owner
            .grant_access(RecordId(id), alice.sender())
            .await
            .unwrap();
    }
    let now = head(&url).await;
    assert_eq!(now, synced + 3);
    assert_eq!(
        alice.shared_with(alice.sender()).await.unwrap(),
        vec![RecordId(1), RecordId(2), RecordId(3)]
    );
    let second = owner.log_cache_stats().await;
    assert_eq!(second.get_logs_requests, 2, "{second:?}");
    assert_eq!(second.last_fetched_ranges, vec![(synced + 1, now)]);
    assert_eq!(second.synced_block, Some(now));
    assert_eq!(second.cached_logs, 9);
    assert_eq!(second.reorgs, 0);

    // An empty cache with small chunks pages through the whole range in order.
    let paged = fresh(&owner, &url, 4).await;
    // connect starts at block 0 unless told otherwise.
    assert_eq!(paged.records_of(owner.sender()).await.unwrap().len(), 6);
    let stats = paged.log_cache_stats().await;
    let ranges = &stats.last_fetched_ranges;
    assert_eq!(ranges.first().map(|r| r.0), Some(0));
    assert_eq!(ranges.last().map(|r| r.1), Some(now));
    assert!(ranges.iter().all(|(from, to)| from <= to && to - from < 4));
    assert!(ranges.windows(2).all(|pair| pair[1].0 == pair[0].1 + 1));
    assert_eq!(stats.get_logs_requests, ranges.len() as u64);
    assert_eq!(ranges.len() as u64, (now + 1).div_ceil(4));
    assert_eq!(
        paged.logs(&LogFilter::events(&ALL_EVENTS)).await.unwrap(),
        owner.logs(&LogFilter::events(&ALL_EVENTS)).await.unwrap()
    );
}

#[tokio::test]
async fn cached_answers_equal_full_range_queries_for_every_filter() {
    let Some(url) = node_url() else { return };
    let _guard = NODE_LOCK.lock().await;
    let owner = RpcChain::deploy(&url, signer(0)).await.unwrap();
    let alice = owner.with_signer(signer(1));
    let bob = owner.with_signer(signer(2));
    let users = [owner.clone(), alice.clone(), bob.clone()];
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut records: Vec<(usize, RecordId)> = Vec::new();
    let mut anchors = [0u64; 3];
    for step in 0..60u64 {
        let who = rng.below(3) as usize;
        let me = &users[who];
        match rng.below(8) {
            0 | 1 => {
                let created = me
                    .create_record(
                        &format!("bafy-eq-{step}"),
                        B256::repeat_byte(step as u8 | 1),
                    )
                    .await
                    .unwrap();
                records.push((who, created.record));
            }
            op if !records.is_empty() && op <= 5 => {
                let (owner_index, record) = *rng.pick(&records);
                let record_owner = &users[owner_index];
                let other = &users[(owner_index + 1 + rng.below(2) as usize) % 3];
                let _ = match op {
                    2 => record_owner.grant_access(record, other.sender()).await,
                    3 => record_owner.revoke_access(record, other.sender()).await,
                    4 => other.request_access(record).await,
                    _ => {
                        record_owner
                            .update_record(
                                record,
                                &format!("bafy-upd-{step}"),
                                B256::repeat_byte(2),
                            )
                            .await
                    }
                };
                if op == 4 && rng.below(2) == 0 {
                    let _ = record_owner.deny_access(record, other.sender()).await;
                }
                let _ = other.log_access(record).await; // reverts unless granted
            }
            6 => {
                let n = anchors[who];
                me.anchor_index(
                    B256::repeat_byte(0xa0),
                    n,
                    n,
                    &format!("bafy-shard-{step}"),
                    B256::repeat_byte(step as u8 | 1),
                )
                .await
                .unwrap();
                anchors[who] += 1;
            }
            _ => {
                me.publish_capsule(
                    B256::repeat_byte(who as u8 + 1),
                    step,
                    &format!("bafy-capsule-{step}"),
                    B256::repeat_byte(3),
                )
                .await
                .unwrap();
            }
        }
        // Query now and then, so the cache grows in many small increments.
        if rng.below(4) == 0 {
            me.records_of(me.sender()).await.unwrap();
        }
    }
    let reference = fresh(&owner, &url, 7).await;
    assert_same_answers(&url, &owner, &reference).await;

    // The registry's own queries agree too.
    for user in &users {
        let (me, ref_view) = (user.sender(), &reference);
        assert_eq!(
            user.records_of(me).await.unwrap(),
            ref_view.records_of(me).await.unwrap()
        );
        assert_eq!(
            user.shared_with(me).await.unwrap(),
            ref_view.shared_with(me).await.unwrap()
        );
        assert_eq!(
            user.pending_requests(me).await.unwrap(),
            ref_view.pending_requests(me).await.unwrap()
        );
        assert_eq!(
            user.capsules(Some(me)).await.unwrap(),
            ref_view.capsules(Some(me)).await.unwrap()
        );
        assert_eq!(
            user.index_anchors(me, B256::repeat_byte(0xa0))
                .await
                .unwrap(),
            ref_view
                .index_anchors(me, B256::repeat_byte(0xa0))
                .await
                .unwrap()
        );
    }
    for (_, record) in &records {
        assert_eq!(
            owner.audit_trail(*record).await.unwrap(),
            reference.audit_trail(*record).await.unwrap()
        );
        assert_eq!(
            owner.record(*record).await.unwrap(),
            reference.record(*record).await.unwrap()
        );
    }
    assert_eq!(owner.log_cache_stats().await.reorgs, 0);
}

async fn evm_snapshot(url: &str) -> U256 {
    provider(url)
        .raw_request("evm_snapshot".into(), Vec::<U256>::new())
        .await
        .unwrap()
}

async fn evm_revert(url: &str, id: U256) {
    let reverted: bool = provider(url)
        .raw_request("evm_revert".into(), vec![id])
        .await
        .unwrap();
    assert!(reverted, "evm_revert({id}) failed");
}

async fn cids(chain: &RpcChain) -> Vec<String> {
    let mut out = Vec::new();
    for id in chain.records_of(chain.sender()).await.unwrap() {
        out.push(chain.record(id).await.unwrap().manifest_cid);
    }
    out
}

#[tokio::test]
async fn reorgs_drop_reverted_logs() {
    let Some(url) = node_url() else { return };
    let _guard = NODE_LOCK.lock().await;
    let owner = RpcChain::deploy(&url, signer(0)).await.unwrap();
    let alice = owner.with_signer(signer(1));
    owner
        .create_record("bafy-kept", B256::repeat_byte(1))
        .await
        .unwrap();
    assert_eq!(cids(&owner).await, ["bafy-kept"]);

    // Reorg to a shorter chain: two blocks reverted, one different block mined.
    let snapshot = evm_snapshot(&url).await;
    let fork = head(&url).await;
    owner
        .create_record("bafy-reverted-1", B256::repeat_byte(2))
        .await
        .unwrap();
    owner
        .grant_access(RecordId(2), alice.sender())
        .await
        .unwrap();
    assert_eq!(cids(&owner).await, ["bafy-kept", "bafy-reverted-1"]);
    assert_eq!(
        alice.shared_with(alice.sender()).await.unwrap(),
        [RecordId(2)]
    );
    evm_revert(&url, snapshot).await;
    assert_eq!(head(&url).await, fork);
    owner
        .create_record("bafy-replaced-1", B256::repeat_byte(3))
        .await
        .unwrap();
    assert_eq!(cids(&owner).await, ["bafy-kept", "bafy-replaced-1"]);
    assert!(alice.shared_with(alice.sender()).await.unwrap().is_empty());
    let stats = owner.log_cache_stats().await;
    assert_eq!(stats.reorgs, 1, "{stats:?}");
    assert!(stats.dropped_logs >= 2, "{stats:?}");

    // Reorg to a longer chain: one block reverted, three different ones mined (the synced
    // height exists again, with another hash).
    let snapshot = evm_snapshot(&url).await;
    alice.request_access(RecordId(2)).await.unwrap();
    assert_eq!(
        owner.pending_requests(owner.sender()).await.unwrap().len(),
        1
    );
    evm_revert(&url, snapshot).await;
    for cid in ["bafy-replaced-2", "bafy-replaced-3"] {
        owner
            .create_record(cid, B256::repeat_byte(4))
            .await
            .unwrap();
    }
    owner
        .grant_access(RecordId(3), alice.sender())
        .await
        .unwrap();
    assert!(
        owner
            .pending_requests(owner.sender())
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        cids(&owner).await,
        [
            "bafy-kept",
            "bafy-replaced-1",
            "bafy-replaced-2",
            "bafy-replaced-3"
        ]
    );
    assert_eq!(
        alice.shared_with(alice.sender()).await.unwrap(),
        [RecordId(3)]
    );
    let stats = owner.log_cache_stats().await;
    assert_eq!(stats.reorgs, 2, "{stats:?}");

    // A fresh cache agrees on everything, and so does a full-range query.
    let reference = fresh(&owner, &url, 5_000).await;
    assert_same_answers(&url, &owner, &reference).await;
}

/// Request counts and latency of a repeated query over a few hundred transactions, cached vs
/// a full-range `eth_getLogs` (the behaviour before the cache). Size with
/// `MEDSEAL_LOG_CACHE_TXS` (default 200).
#[tokio::test]
async fn repeated_query_cost_is_independent_of_history() {
    let Some(url) = node_url() else { return };
    let _guard = NODE_LOCK.lock().await;
    let txs: u64 = std::env::var("MEDSEAL_LOG_CACHE_TXS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let owner = RpcChain::deploy(&url, signer(0)).await.unwrap();
    let alice = signer(1).address();
    for i in 0..txs {
        if i % 2 == 0 {
            owner
                .create_record(&format!("bafy-cost-{i}"), B256::repeat_byte(1))
                .await
                .unwrap();
        } else {
            owner
                .grant_access(RecordId(i / 2 + 1), alice)
                .await
                .unwrap();
        }
    }
    let filter = LogFilter::events(&[R::RecordCreated::SIGNATURE_HASH])
        .with_topic(1, owner.sender().into_word());

    let started = Instant::now();
    let full = full_range(&url, &owner, &filter).await;
    let full_time = started.elapsed();

    let started = Instant::now();
    let first = owner.logs(&filter).await.unwrap();
    let first_time = started.elapsed();
    let before = owner.log_cache_stats().await.get_logs_requests;
    const REPEATS: u32 = 20;
    let started = Instant::now();
    for _ in 0..REPEATS {
        assert_eq!(owner.logs(&filter).await.unwrap(), first);
    }
    let repeat_time = started.elapsed() / REPEATS;
    let after = owner.log_cache_stats().await.get_logs_requests;
    assert_eq!(first.iter().map(key).collect::<Vec<_>>(), full);
    assert_eq!(first.len() as u64, txs.div_ceil(2));
    assert_eq!(after, before, "repeated queries must not call eth_getLogs");
    eprintln!(
        "{txs} transactions, {} matching logs: full-range eth_getLogs {full_time:?} per query \
         (1 eth_getLogs each); cache: first query {first_time:?} ({before} eth_getLogs), \
         repeated query {repeat_time:?} (0 eth_getLogs)",
        first.len()
    );
    assert!(repeat_time < Duration::from_secs(1));
}

/// A handle with an empty cache on `chain`'s registry that keeps its cache in `path`.
async fn from_file(chain: &RpcChain, url: &str, path: &std::path::Path) -> RpcChain {
    fresh(chain, url, 5_000)
        .await
        .with_log_cache_file(path)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_cache_file_resumes_the_sync_in_the_next_process() {
    let Some(url) = node_url() else { return };
    let _guard = NODE_LOCK.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("logs.redb");
    let owner = RpcChain::deploy(&url, signer(0)).await.unwrap();
    for i in 0..4 {
        owner
            .create_record(&format!("bafy-file-{i}"), B256::repeat_byte(1))
            .await
            .unwrap();
    }
    let all = LogFilter::events(&ALL_EVENTS);
    let first = from_file(&owner, &url, &path).await;
    let expected = first.logs(&all).await.unwrap();
    assert_eq!(expected.len(), 4);
    let synced = head(&url).await;
    drop(first);

    // The next "process": everything is loaded, nothing is fetched again.
    let second = from_file(&owner, &url, &path).await;
    let stats = second.log_cache_stats().await;
    assert_eq!((stats.cached_logs, stats.synced_block), (4, Some(synced)));
    assert_eq!(second.logs(&all).await.unwrap(), expected);
    assert_eq!(second.log_cache_stats().await.get_logs_requests, 0);
    owner
        .create_record("bafy-file-4", B256::repeat_byte(1))
        .await
        .unwrap();
    assert_eq!(second.logs(&all).await.unwrap().len(), 5);
    let stats = second.log_cache_stats().await;
    assert_eq!(stats.get_logs_requests, 1);
    assert_eq!(stats.last_fetched_ranges, vec![(synced + 1, synced + 1)]);
    drop(second);

    // A reorg between two processes: the stored synced block is reverted.
    let snapshot = evm_snapshot(&url).await;
    owner
        .create_record("bafy-file-gone", B256::repeat_byte(2))
        .await
        .unwrap();
    let third = from_file(&owner, &url, &path).await;
    assert_eq!(third.logs(&all).await.unwrap().len(), 6);
    drop(third);
    evm_revert(&url, snapshot).await;
    owner
        .create_record("bafy-file-instead", B256::repeat_byte(3))
        .await
        .unwrap();
    let fourth = from_file(&owner, &url, &path).await;
    assert_eq!(
        fourth.logs(&all).await.unwrap(),
        fresh(&owner, &url, 5_000).await.logs(&all).await.unwrap()
    );
    assert_eq!(
        fourth.record(RecordId(6)).await.unwrap().manifest_cid,
        "bafy-file-instead"
    );
    let stats = fourth.log_cache_stats().await;
    assert_eq!((stats.reorgs, stats.dropped_logs), (1, 1), "{stats:?}");
    drop(fourth);

    // And the file now holds the repaired state.
    let fifth = from_file(&owner, &url, &path).await;
    assert_eq!(fifth.log_cache_stats().await.cached_logs, 6);
    assert_eq!(fifth.logs(&all).await.unwrap().len(), 6);
    assert_eq!(fifth.log_cache_stats().await.get_logs_requests, 0);
}
