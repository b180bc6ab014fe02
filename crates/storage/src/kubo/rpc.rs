//! HTTP plumbing for the Kubo RPC API: POST requests, bounded retries with
//! exponential backoff, size-capped bodies and mapping of failures to
//! [`StorageError`].

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use reqwest::{Client, StatusCode, Url};
use serde::Deserialize;

use crate::cid::Cid;
use crate::error::{Result, StorageError};
use crate::kubo::KuboConfig;

/// Largest reply body accepted for control calls and single blocks. Kubo
/// caps blocks at 2 MiB; anything beyond 4 MiB is a broken or hostile node.
pub(crate) const MAX_REPLY: usize = 4 << 20;

/// Kubo/js-ipfs error body: `{"Message": "...", "Code": 0, "Type": "error"}`.
#[derive(Deserialize)]
struct ErrorReply {
    #[serde(rename = "Message")]
    message: String,
}

/// One RPC call's description, for errors and retries.
pub(crate) struct Call<'a> {
    /// Path below `/api/v0/`, e.g. `block/get`.
    pub(crate) command: &'a str,
    /// Query arguments, in order.
    pub(crate) args: Vec<(&'a str, String)>,
    /// Whole-request time limit.
    pub(crate) timeout: Duration,
    /// The CID the call is about, to report [`StorageError::NotFound`].
    pub(crate) subject: Option<Cid>,
}

/// A failed attempt and whether repeating it can help.
struct Failure {
    error: StorageError,
    transient: bool,
}

/// Thin client over one node's RPC endpoint.
#[derive(Debug, Clone)]
pub(crate) struct RpcClient {
    http: Client,
    base: Url,
    max_retries: u32,
    retry_backoff: Duration,
}

impl RpcClient {
    pub(crate) fn new(config: &KuboConfig) -> Result<Self> {
        let mut base = Url::parse(&config.api_url).map_err(|e| {
            StorageError::backend_with(format!("invalid IPFS API URL {:?}", config.api_url), e)
        })?;
        if base.scheme() != "http" {
            return Err(StorageError::backend(format!(
                "IPFS API URL {:?} must use http:// (the RPC API is meant for a local node; \
                 TLS is not compiled in)",
                config.api_url
            )));
        }
        if !base.path().ends_with('/') {
            let path = format!("{}/", base.path());
            base.set_path(&path);
        }
        let base = base.join("api/v0/").map_err(|e| {
            StorageError::backend_with(format!("invalid IPFS API URL {:?}", config.api_url), e)
        })?;
        let http = Client::builder()
            .connect_timeout(config.connect_timeout)
            .read_timeout(config.idle_timeout)
            .build()
            .map_err(|e| StorageError::backend_with("building the HTTP client", e))?;
        Ok(Self {
            http,
            base,
            max_retries: config.max_retries,
            retry_backoff: config.retry_backoff,
        })
    }

    /// The URL of `command` with `args`.
    pub(crate) fn url(&self, command: &str, args: &[(&str, String)]) -> Result<Url> {
        let mut url = self
            .base
            .join(command)
            .map_err(|e| StorageError::backend_with(format!("bad RPC command {command:?}"), e))?;
        if !args.is_empty() {
            let mut query = url.query_pairs_mut();
            for (key, value) in args {
                query.append_pair(key, value);
            }
        }
        Ok(url)
    }

    /// POSTs `call` with an empty body, retrying transient failures, and
    /// returns the reply body (at most [`MAX_REPLY`] bytes).
    pub(crate) async fn post(&self, call: &Call<'_>) -> Result<Bytes> {
        self.with_retries(call, || async {
            let url = self.url(call.command, &call.args).map_err(permanent)?;
            let response = self
                .http
                .post(url)
                .timeout(call.timeout)
                .send()
                .await
                .map_err(|e| self.transport_failure(call, e))?;
            self.read_reply(call, response).await
        })
        .await
    }

    /// Runs `attempt` up to `1 + max_retries` times while it fails
    /// transiently, sleeping `retry_backoff * 2^n` in between.
    pub(crate) async fn with_retries<F, Fut>(
        &self,
        call: &Call<'_>,
        mut attempt: F,
    ) -> Result<Bytes>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<Bytes, FailureBox>>,
    {
        let mut tries = 0u32;
        loop {
            match attempt().await {
                Ok(body) => return Ok(body),
                Err(failure) if failure.0.transient && tries < self.max_retries => {
                    let delay = self.retry_backoff.saturating_mul(1 << tries.min(16));
                    tracing::debug!(
                        command = call.command,
                        error = %failure.0.error,
                        ?delay,
                        "retrying IPFS RPC call"
                    );
                    tokio::time::sleep(delay).await;
                    tries += 1;
                }
                Err(failure) => return Err(failure.0.error),
            }
        }
    }

    /// Sends a prepared request (e.g. a multipart upload) once.
    pub(crate) async fn send_once(
        &self,
        call: &Call<'_>,
        request: reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, FailureBox> {
        request
            .send()
            .await
            .map_err(|e| self.transport_failure(call, e))
    }

    /// The HTTP client, for requests with custom bodies.
    pub(crate) fn http(&self) -> &Client {
        &self.http
    }

    fn transport_failure(&self, call: &Call<'_>, error: reqwest::Error) -> FailureBox {
        let failure = if error.is_timeout() {
            Failure {
                error: StorageError::Timeout {
                    operation: format!("IPFS RPC {}", call.command),
                    cid: call.subject,
                    after: call.timeout,
                },
                transient: true,
            }
        } else if error.is_connect() {
            Failure {
                error: StorageError::backend_with(
                    format!(
                        "cannot connect to the IPFS node at {} for {} (is the daemon running?)",
                        self.base, call.command
                    ),
                    error,
                ),
                transient: true,
            }
        } else {
            Failure {
                error: StorageError::backend_with(
                    format!("IPFS RPC {} failed in transit", call.command),
                    error,
                ),
                transient: true,
            }
        };
        FailureBox(Box::new(failure))
    }

    /// Checks the status and reads the body, mapping node-side errors.
    pub(crate) async fn read_reply(
        &self,
        call: &Call<'_>,
        response: reqwest::Response,
    ) -> Result<Bytes, FailureBox> {
        let status = response.status();
        let body = read_capped(response, MAX_REPLY)
            .await
            .map_err(|e| self.transport_failure(call, e))?;
        let Some(body) = body else {
            return Err(permanent(StorageError::backend(format!(
                "IPFS RPC {} replied with more than {MAX_REPLY} bytes",
                call.command
            ))));
        };
        if status.is_success() {
            return Ok(body);
        }
        Err(FailureBox(Box::new(node_error(call, status, &body))))
    }
}

/// A boxed [`Failure`] (keeps `Result`s small).
pub(crate) struct FailureBox(Box<Failure>);

/// The error inside a failure, dropping the retry verdict.
pub(crate) fn into_error(failure: FailureBox) -> StorageError {
    failure.0.error
}

/// A failure that retrying cannot fix.
pub(crate) fn permanent(error: StorageError) -> FailureBox {
    FailureBox(Box::new(Failure {
        error,
        transient: false,
    }))
}

/// Reads the whole body unless it exceeds `limit` (`Ok(None)` then).
async fn read_capped(
    response: reqwest::Response,
    limit: usize,
) -> Result<Option<Bytes>, reqwest::Error> {
    let mut body = BytesMut::new();
    let mut pieces = response.bytes_stream();
    while let Some(piece) = pieces.next().await {
        let piece = piece?;
        if body.len() + piece.len() > limit {
            return Ok(None);
        }
        body.extend_from_slice(&piece);
    }
    Ok(Some(body.freeze()))
}

/// Maps an error reply. Kubo and js-ipfs word things differently; both
/// say "not found"/"could not find" for absent blocks (when offline) and
/// "timed out"/"deadline exceeded" when their own `timeout=` expires.
fn node_error(call: &Call<'_>, status: StatusCode, body: &[u8]) -> Failure {
    let message = serde_json::from_slice::<ErrorReply>(body)
        .map(|reply| reply.message)
        .unwrap_or_else(|_| String::from_utf8_lossy(body).chars().take(300).collect());
    let lower = message.to_ascii_lowercase();
    if lower.contains("timed out") || lower.contains("deadline exceeded") {
        return Failure {
            error: StorageError::Timeout {
                operation: format!("IPFS RPC {} (node-side timeout)", call.command),
                cid: call.subject,
                after: call.timeout,
            },
            transient: false,
        };
    }
    if let Some(cid) = call.subject
        && (lower.contains("not found") || lower.contains("could not find"))
    {
        return Failure {
            error: StorageError::NotFound { cid },
            transient: false,
        };
    }
    let transient = matches!(
        status,
        StatusCode::BAD_GATEWAY
            | StatusCode::SERVICE_UNAVAILABLE
            | StatusCode::GATEWAY_TIMEOUT
            | StatusCode::TOO_MANY_REQUESTS
    );
    Failure {
        error: StorageError::backend(format!(
            "IPFS RPC {} answered {status}: {message}",
            call.command
        )),
        transient,
    }
}

/// The message of an error reply, if `error` came from one.
pub(crate) fn is_not_pinned(error: &StorageError) -> bool {
    matches!(error, StorageError::Backend { context, .. } if context.contains("not pinned"))
}
