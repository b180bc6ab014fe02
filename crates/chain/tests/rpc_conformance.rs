//! The ledger conformance suite against a real Ethereum JSON-RPC node, plus RpcChain-specific
//! behaviour (node down, connecting to an existing registry).
//!
//! The node URL comes from `MEDSEAL_ETH_RPC` (start one with `scripts/anvil-node.sh start`).
//! Without it the node tests are skipped with a notice — except when `CI=true`, where a missing
//! or unreachable node fails them. Only loopback URLs are accepted.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stderr,
    missing_docs,
    unreachable_pub
)]

mod conformance;

use std::io::Write as _;
use std::sync::{Arc, LazyLock};
use std::time::{Duration, Instant};

use alloy::transports::http::reqwest::Url;
use conformance::Harness;
use medseal_chain::dev_keys::anvil_dev_signer;
use medseal_chain::{Address, B256, Ledger, LedgerError, RpcChain, RpcOptions};

/// Tests share the node's dev accounts (and so their nonces): run them one at a time.
static NODE_LOCK: LazyLock<Arc<tokio::sync::Mutex<()>>> =
    LazyLock::new(|| Arc::new(tokio::sync::Mutex::new(())));

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// The node URL, or `None` (skip) outside CI when it is not configured.
fn node_url() -> Option<String> {
    match std::env::var("MEDSEAL_ETH_RPC") {
        Ok(url) if !url.trim().is_empty() => {
            let parsed: Url = url.parse().expect("MEDSEAL_ETH_RPC is not a URL");
            let host = parsed.host_str().unwrap_or_default();
            let loopback = host == "localhost"
                || host == "[::1]"
                || host
                    .parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback());
            assert!(
                loopback,
                "MEDSEAL_ETH_RPC must be a loopback address, got {url}"
            );
            Some(url)
        }
        _ if in_ci() => panic!(
            "CI=true but MEDSEAL_ETH_RPC is not set: start a node with `scripts/anvil-node.sh start`"
        ),
        _ => {
            // Written to the stderr handle directly (not eprintln!), so that the test harness
            // does not capture it: the skip is visible in a normal `cargo test` run. Once.
            static NOTICE: std::sync::Once = std::sync::Once::new();
            NOTICE.call_once(|| {
                let _ = writeln!(
                    std::io::stderr(),
                    "notice: MEDSEAL_ETH_RPC is not set; skipping the RpcChain tests against a \
                     node (start one with `scripts/anvil-node.sh start`)"
                );
            });
            None
        }
    }
}

async fn setup() -> Option<Harness> {
    let url = node_url()?;
    let guard = Arc::clone(&NODE_LOCK).lock_owned().await;
    let owner = RpcChain::deploy(&url, anvil_dev_signer(0).unwrap())
        .await
        .unwrap_or_else(|e| panic!("cannot deploy the registry on {url}: {e}"));
    Some(Harness {
        alice: Arc::new(owner.with_signer(anvil_dev_signer(1).unwrap())),
        bob: Arc::new(owner.with_signer(anvil_dev_signer(2).unwrap())),
        owner: Arc::new(owner),
        _guard: Some(Box::new(guard)),
    })
}

mod rpc_chain {
    use super::*;
    crate::conformance_suite!(setup);
}

/// A closed loopback port: the client must retry a bounded number of times, then fail with a
/// clear "node unavailable" error naming the endpoint. Needs no node.
#[tokio::test]
async fn unreachable_node_fails_clearly_after_bounded_retries() {
    // Port 9 (discard) on loopback: nothing listens there in the test environment.
    let url = "http://127.0.0.1:9";
    let options = RpcOptions {
        max_attempts: 3,
        initial_backoff: Duration::from_millis(20),
        request_timeout: Duration::from_secs(2),
        ..RpcOptions::default()
    };
    let started = Instant::now();
    let error = RpcChain::deploy_with(url, anvil_dev_signer(0).unwrap(), options)
        .await
        .unwrap_err();
    assert!(
        matches!(&error, LedgerError::NodeUnavailable { endpoint, attempts: 3, .. } if endpoint == url),
        "{error:?}"
    );
    let message = error.to_string();
    assert!(
        message.contains(url) && message.contains("unreachable"),
        "{message}"
    );
    // Backoff 20 ms + 40 ms; bounded.
    assert!(started.elapsed() >= Duration::from_millis(60));
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[tokio::test]
async fn invalid_urls_are_configuration_errors() {
    let error = RpcChain::deploy("not a url", anvil_dev_signer(0).unwrap())
        .await
        .unwrap_err();
    assert!(matches!(error, LedgerError::Config(_)), "{error:?}");
    for url in ["ftp://127.0.0.1:1", "https://127.0.0.1:1"] {
        let error = RpcChain::deploy(url, anvil_dev_signer(0).unwrap())
            .await
            .unwrap_err();
        assert!(matches!(error, LedgerError::Config(_)), "{url}: {error:?}");
    }
}

#[tokio::test]
async fn connect_reuses_an_existing_registry() {
    let Some(url) = node_url() else { return };
    let _guard = NODE_LOCK.lock().await;
    let deployed = RpcChain::deploy(&url, anvil_dev_signer(0).unwrap())
        .await
        .unwrap();
    let created = deployed
        .create_record("bafy-existing", B256::repeat_byte(3))
        .await
        .unwrap();

    let connected = RpcChain::connect(
        &url,
        anvil_dev_signer(1).unwrap(),
        deployed.registry_address(),
    )
    .await
    .unwrap();
    assert_eq!(connected.registry_address(), deployed.registry_address());
    assert_eq!(
        connected.record(created.record).await.unwrap().manifest_cid,
        "bafy-existing"
    );
    assert_eq!(
        connected.records_of(deployed.sender()).await.unwrap(),
        vec![created.record]
    );

    let nowhere = Address::repeat_byte(0x42);
    let error = RpcChain::connect(&url, anvil_dev_signer(1).unwrap(), nowhere)
        .await
        .unwrap_err();
    assert!(matches!(error, LedgerError::Config(_)), "{error:?}");
}

#[tokio::test]
async fn concurrent_sends_from_one_account_do_not_collide() {
    let Some(url) = node_url() else { return };
    let _guard = NODE_LOCK.lock().await;
    let chain = RpcChain::deploy(&url, anvil_dev_signer(0).unwrap())
        .await
        .unwrap();
    let ledger: Arc<dyn Ledger> = Arc::new(chain);
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let ledger = Arc::clone(&ledger);
            tokio::spawn(async move {
                ledger
                    .create_record(&format!("bafy-{i}"), B256::repeat_byte(9))
                    .await
            })
        })
        .collect();
    let mut ids = Vec::new();
    for task in tasks {
        ids.push(task.await.unwrap().unwrap().record.0);
    }
    ids.sort_unstable();
    assert_eq!(ids, (1..=8).collect::<Vec<_>>());
}
