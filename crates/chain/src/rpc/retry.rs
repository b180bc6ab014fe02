//! Bounded retries with exponential backoff for JSON-RPC requests, and the mapping of alloy's
//! transport errors to [`LedgerError`].

use std::future::IntoFuture;
use std::time::Duration;

use alloy::transports::{RpcError, TransportError, TransportErrorKind};

use crate::error::LedgerError;
use crate::revert::decode_revert;

/// How often and how patiently requests are retried.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RetryPolicy {
    /// Total attempts (at least 1).
    pub(crate) max_attempts: u32,
    /// Pause before the second attempt; doubled for every further attempt.
    pub(crate) initial_backoff: Duration,
}

/// Why a request finally failed.
#[derive(Debug)]
pub(crate) enum RpcFailure {
    /// The node could not be reached within the retry budget.
    Unavailable(LedgerError),
    /// The node answered with an error (or something not worth retrying).
    Answered(TransportError),
}

impl RpcFailure {
    /// Converts to a ledger error, decoding revert data into typed contract errors.
    pub(crate) fn into_ledger_error(self) -> LedgerError {
        match self {
            Self::Unavailable(error) => error,
            Self::Answered(error) => answered_error(error),
        }
    }
}

/// Maps an error response of the node: reverts become typed contract errors.
pub(crate) fn answered_error(error: TransportError) -> LedgerError {
    if let Some(payload) = error.as_error_resp() {
        if let Some(data) = payload.as_revert_data() {
            return decode_revert(&data);
        }
        if payload.message.contains("revert") {
            return LedgerError::Reverted { data: Vec::new() };
        }
    }
    LedgerError::Transport(Box::new(error))
}

/// Whether `error` is a failure to talk to the node at all (connection refused or reset,
/// timeout, HTTP 5xx / 429), which is worth retrying.
pub(crate) fn is_transient(error: &TransportError) -> bool {
    match error {
        RpcError::Transport(TransportErrorKind::HttpError(http)) => {
            http.status >= 500 || http.status == 429
        }
        RpcError::Transport(_) => true,
        RpcError::ErrorResp(payload) => payload.is_retry_err(),
        _ => false,
    }
}

/// Runs `request` until it succeeds, fails with a non-transient error, or the attempts are
/// used up (then [`LedgerError::NodeUnavailable`]).
pub(crate) async fn with_retry<T, F, Fut>(
    policy: RetryPolicy,
    endpoint: &str,
    what: &str,
    mut request: F,
) -> Result<T, RpcFailure>
where
    F: FnMut() -> Fut,
    Fut: IntoFuture<Output = Result<T, TransportError>>,
{
    let attempts = policy.max_attempts.max(1);
    let mut backoff = policy.initial_backoff;
    let mut attempt = 1;
    loop {
        match request().into_future().await {
            Ok(value) => return Ok(value),
            Err(error) if is_transient(&error) => {
                if attempt >= attempts {
                    return Err(RpcFailure::Unavailable(LedgerError::NodeUnavailable {
                        endpoint: endpoint.to_owned(),
                        attempts,
                        source: Box::new(error),
                    }));
                }
                tracing::debug!(
                    endpoint,
                    what,
                    attempt,
                    error = %error,
                    "JSON-RPC request failed; retrying in {backoff:?}"
                );
                tokio::time::sleep(backoff).await;
                backoff = backoff.saturating_mul(2);
                attempt += 1;
            }
            Err(error) => return Err(RpcFailure::Answered(error)),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    fn policy() -> RetryPolicy {
        RetryPolicy {
            max_attempts: 3,
            initial_backoff: Duration::from_millis(1),
        }
    }

    #[tokio::test]
    async fn retries_transport_errors_then_gives_up() {
        let calls = AtomicU32::new(0);
        let result: Result<(), _> = with_retry(policy(), "http://127.0.0.1:1", "test", || {
            calls.fetch_add(1, Ordering::SeqCst);
            async { Err(TransportErrorKind::custom_str("connection refused")) }
        })
        .await;
        assert_eq!(calls.load(Ordering::SeqCst), 3);
        let error = result.unwrap_err().into_ledger_error();
        assert!(
            matches!(error, LedgerError::NodeUnavailable { attempts: 3, .. }),
            "{error}"
        );
        assert!(error.to_string().contains("http://127.0.0.1:1"));
    }

    #[tokio::test]
    async fn succeeds_after_a_transient_failure() {
        let calls = AtomicU32::new(0);
        let result = with_retry(policy(), "e", "test", || {
            let n = calls.fetch_add(1, Ordering::SeqCst);
            async move {
                if n == 0 {
                    Err(TransportErrorKind::custom_str("reset"))
                } else {
                    Ok(7)
                }
            }
        })
        .await;
        assert_eq!(result.unwrap(), 7);
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn does_not_retry_answered_errors() {
        let calls = AtomicU32::new(0);
        let result: Result<(), _> = with_retry(policy(), "e", "test", || {
            calls.fetch_add(1, Ordering::SeqCst);
            async { Err(RpcError::NullResp) }
        })
        .await;
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        assert!(matches!(result, Err(RpcFailure::Answered(_))));
    }
}
