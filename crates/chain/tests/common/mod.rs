//! Helpers shared by the chain crate's integration tests.
#![allow(
    dead_code,
    unreachable_pub,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic
)]

use std::io::Write;
use std::sync::{Arc, Mutex};

/// Runs `f` with a tracing subscriber that records everything logged (INFO and above), and
/// returns the log.
pub fn capture_logs<T>(f: impl FnOnce() -> T) -> (T, String) {
    #[derive(Clone)]
    struct Sink(Arc<Mutex<Vec<u8>>>);
    impl Write for Sink {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let sink = Sink(Arc::new(Mutex::new(Vec::new())));
    let writer = sink.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_max_level(tracing::Level::INFO)
        .finish();
    let out = tracing::subscriber::with_default(subscriber, f);
    let log = String::from_utf8(sink.0.lock().unwrap().clone()).unwrap();
    (out, log)
}

/// A deterministic xorshift64* generator for workloads.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}

/// The JSON-RPC node of the RpcChain tests: `MEDSEAL_ETH_RPC` (loopback only; start one with
/// `scripts/anvil-node.sh start`). `None` (skip, with a notice on stderr) when it is not set,
/// except with `CI=true`, where that panics.
pub fn node_url() -> Option<String> {
    match std::env::var("MEDSEAL_ETH_RPC") {
        Ok(url) if !url.trim().is_empty() => {
            let parsed: alloy::transports::http::reqwest::Url =
                url.parse().expect("MEDSEAL_ETH_RPC is not a URL");
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
        _ if std::env::var("CI").is_ok_and(|v| v == "true") => panic!(
            "CI=true but MEDSEAL_ETH_RPC is not set: start a node with `scripts/anvil-node.sh start`"
        ),
        _ => {
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
