//! An account that cannot pay for gas on a real JSON-RPC node (`MEDSEAL_ETH_RPC`, see
//! `tests/rpc_conformance.rs`; skipped with a notice when unset, failing when `CI=true`):
//!
//! * `Ledger::balance` reports what an account holds (`Some`), `None` on the embedded chain;
//! * a transaction from an unfunded (or underfunded) account fails before anything is sent
//!   with `LedgerError::InsufficientFunds`, naming the address, its balance and the amount
//!   needed, in ETH and wei — not with the node's bare "insufficient funds" transport error;
//! * once funded, the same handle's transaction goes through.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stderr,
    missing_docs,
    unreachable_pub
)]

mod common;

use std::sync::LazyLock;

use alloy::primitives::U256;
use alloy::providers::{Provider, RootProvider};
use common::node_url;
use medseal_chain::dev_keys::anvil_dev_signer;
use medseal_chain::{
    Address, B256, EmbeddedChain, Ledger, LedgerError, PrivateKeySigner, RpcChain,
};

/// Tests share the node's dev accounts: one at a time.
static NODE_LOCK: LazyLock<tokio::sync::Mutex<()>> = LazyLock::new(|| tokio::sync::Mutex::new(()));

fn provider(url: &str) -> RootProvider {
    RootProvider::new_http(url.parse().unwrap())
}

/// Sets `account`'s balance (anvil's `anvil_setBalance`).
async fn set_balance(url: &str, account: Address, wei: U256) {
    let _: () = provider(url)
        .raw_request("anvil_setBalance".into(), (account, wei))
        .await
        .unwrap();
}

async fn sent_transactions(url: &str, account: Address) -> u64 {
    provider(url)
        .get_transaction_count(account)
        .pending()
        .await
        .unwrap()
}

fn expect_insufficient(error: LedgerError, account: Address) -> (U256, U256) {
    let text = error.to_string();
    let LedgerError::InsufficientFunds {
        address,
        balance,
        needed,
    } = error
    else {
        panic!("expected InsufficientFunds, got {error:?}");
    };
    assert_eq!(address, account);
    assert!(balance < needed, "{balance} >= {needed}");
    // Who needs how much, in both units; no hint that the node is down.
    assert!(text.contains(&account.to_string()), "{text}");
    assert!(text.contains(&format!("({balance} wei)")), "{text}");
    assert!(text.contains(&format!("({needed} wei)")), "{text}");
    assert!(text.contains(" ETH"), "{text}");
    assert!(!text.contains("node"), "{text}");
    (balance, needed)
}

#[tokio::test]
async fn an_unfunded_account_is_refused_before_sending() {
    let Some(url) = node_url() else { return };
    let _lock = NODE_LOCK.lock().await;
    let chain = RpcChain::deploy(&url, anvil_dev_signer(3).unwrap())
        .await
        .unwrap();
    let funded = chain.sender();
    assert!(chain.balance(funded).await.unwrap().unwrap() > U256::ZERO);

    let unfunded = PrivateKeySigner::random();
    let account = unfunded.address();
    let as_unfunded = chain.with_signer(unfunded);
    assert_eq!(
        as_unfunded.balance(account).await.unwrap(),
        Some(U256::ZERO)
    );

    let error = as_unfunded
        .create_record("bafy-manifest", B256::repeat_byte(1))
        .await
        .unwrap_err();
    let (balance, needed) = expect_insufficient(error, account);
    assert_eq!(balance, U256::ZERO);
    assert_eq!(
        sent_transactions(&url, account).await,
        0,
        "nothing was sent"
    );

    // One wei short of the amount named: still refused, with the balance it holds.
    set_balance(&url, account, needed - U256::from(1)).await;
    let error = as_unfunded
        .create_record("bafy-manifest", B256::repeat_byte(1))
        .await
        .unwrap_err();
    let (balance, _) = expect_insufficient(error, account);
    assert_eq!(balance, needed - U256::from(1));
    assert_eq!(sent_transactions(&url, account).await, 0);

    // Funded (with room for a fee change between estimates), the same handle stores.
    set_balance(&url, account, needed * U256::from(10)).await;
    let created = as_unfunded
        .create_record("bafy-manifest", B256::repeat_byte(1))
        .await
        .unwrap();
    assert_eq!(
        as_unfunded.records_of(account).await.unwrap(),
        vec![created.record]
    );
}

#[tokio::test]
async fn deploying_from_an_unfunded_account_names_it() {
    let Some(url) = node_url() else { return };
    let _lock = NODE_LOCK.lock().await;
    let deployer = PrivateKeySigner::random();
    let account = deployer.address();
    let error = RpcChain::deploy(&url, deployer).await.unwrap_err();
    let (balance, _) = expect_insufficient(error, account);
    assert_eq!(balance, U256::ZERO);
    assert_eq!(sent_transactions(&url, account).await, 0);
}

#[tokio::test]
async fn the_embedded_chain_charges_nothing() {
    let chain = EmbeddedChain::in_memory(PrivateKeySigner::random()).unwrap();
    let someone = PrivateKeySigner::random().address();
    assert_eq!(chain.balance(someone).await.unwrap(), None);
    // And an account holding nothing can transact.
    chain
        .create_record("bafy-manifest", B256::repeat_byte(1))
        .await
        .unwrap();
}
