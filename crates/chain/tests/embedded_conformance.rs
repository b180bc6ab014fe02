//! The ledger conformance suite on the embedded revm chain (in memory and journaled).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stderr,
    missing_docs,
    unreachable_pub
)]

mod conformance;

use std::sync::Arc;

use conformance::Harness;
use medseal_chain::EmbeddedChain;
use medseal_chain::dev_keys::anvil_dev_signer;

fn harness(chain: EmbeddedChain, guard: Option<Box<dyn Send>>) -> Harness {
    Harness {
        alice: Arc::new(chain.with_signer(anvil_dev_signer(1).unwrap())),
        bob: Arc::new(chain.with_signer(anvil_dev_signer(2).unwrap())),
        owner: Arc::new(chain),
        _guard: guard,
    }
}

/// An in-memory chain per test.
async fn in_memory() -> Option<Harness> {
    let chain = EmbeddedChain::in_memory(anvil_dev_signer(0).unwrap()).unwrap();
    Some(harness(chain, None))
}

/// A journaled chain per test (the temp dir lives as long as the harness).
async fn journaled() -> Option<Harness> {
    let dir = tempfile::tempdir().unwrap();
    let chain = EmbeddedChain::open(
        dir.path().join("chain.journal"),
        anvil_dev_signer(0).unwrap(),
    )
    .unwrap();
    Some(harness(chain, Some(Box::new(dir))))
}

mod in_memory_chain {
    use super::*;
    crate::conformance_suite!(in_memory);
}

mod journaled_chain {
    use super::*;
    crate::conformance_suite!(journaled);
}
