//! `KuboStore`: a trustless client of a Kubo (or js-ipfs) node's RPC API.
//!
//! Writes go through `/api/v0/add` with explicit import settings, and the
//! CID the node answers is compared with the one computed locally from the
//! same bytes. Reads never use the node's file reassembly: blocks are
//! fetched one by one with `block/get` and each is hashed against its CID
//! while this crate walks the DAG itself.

mod rpc;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures_util::StreamExt;
use reqwest::multipart::{Form, Part};
use serde::Deserialize;

use crate::block::Block;
use crate::car::car_pieces;
use crate::cid::Cid;
use crate::dag_builder::{CHUNK_SIZE, DagBuilder, ImportFormat, cid_of_bytes};
use crate::dag_reader::{BlockSource, DagReader, fetch_verified};
use crate::error::{Result, StorageError};
use crate::store::{BlockSink, ByteStream, ContentStore, GcReport, PutOptions};
use rpc::{Call, RpcClient, is_not_pinned, permanent};

/// Connection and retry settings of a [`KuboStore`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct KuboConfig {
    /// Base URL of the RPC API, e.g. `http://127.0.0.1:5001`.
    pub api_url: String,
    /// Limit for establishing a TCP connection.
    pub connect_timeout: Duration,
    /// Longest silence tolerated while a request or reply is flowing.
    pub idle_timeout: Duration,
    /// Passed as `timeout=` on reads: how long the node may search for a
    /// block. The HTTP request gets this plus a few seconds.
    pub read_timeout: Duration,
    /// Whole-request limit for control calls (`version`, `pin/*`).
    pub request_timeout: Duration,
    /// How long [`ContentStore::has`] lets the node look in its own store.
    pub has_timeout: Duration,
    /// Passed as `timeout=` on `pin/add` and `pin/rm`: pinning walks the
    /// whole DAG and may fetch missing blocks.
    pub pin_timeout: Duration,
    /// Retries after a transient failure (connection refused, HTTP 502-504,
    /// client-side timeout). Uploads of streams are never retried.
    pub max_retries: u32,
    /// First backoff delay; doubled after every retry.
    pub retry_backoff: Duration,
    /// Ask the node not to search the network on reads (`offline=true`,
    /// honoured by Kubo, ignored by js-ipfs): a missing block is then
    /// `NotFound` at once instead of a timeout.
    pub offline_reads: bool,
}

impl KuboConfig {
    /// Defaults for a node at `api_url`.
    pub fn new(api_url: impl Into<String>) -> Self {
        Self {
            api_url: api_url.into(),
            connect_timeout: Duration::from_secs(5),
            idle_timeout: Duration::from_secs(60),
            read_timeout: Duration::from_secs(30),
            request_timeout: Duration::from_secs(300),
            has_timeout: Duration::from_secs(2),
            pin_timeout: Duration::from_secs(300),
            max_retries: 3,
            retry_backoff: Duration::from_millis(100),
            offline_reads: false,
        }
    }

    /// Sets [`KuboConfig::read_timeout`].
    #[must_use]
    pub fn with_read_timeout(mut self, timeout: Duration) -> Self {
        self.read_timeout = timeout;
        self
    }

    /// Sets [`KuboConfig::request_timeout`].
    #[must_use]
    pub fn with_request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// Sets [`KuboConfig::has_timeout`].
    #[must_use]
    pub fn with_has_timeout(mut self, timeout: Duration) -> Self {
        self.has_timeout = timeout;
        self
    }

    /// Sets [`KuboConfig::pin_timeout`].
    #[must_use]
    pub fn with_pin_timeout(mut self, timeout: Duration) -> Self {
        self.pin_timeout = timeout;
        self
    }

    /// Sets the retry count and first backoff delay.
    #[must_use]
    pub fn with_retries(mut self, max_retries: u32, backoff: Duration) -> Self {
        self.max_retries = max_retries;
        self.retry_backoff = backoff;
        self
    }

    /// Sets [`KuboConfig::offline_reads`].
    #[must_use]
    pub fn with_offline_reads(mut self, offline: bool) -> Self {
        self.offline_reads = offline;
        self
    }

    /// Sets [`KuboConfig::connect_timeout`] and [`KuboConfig::idle_timeout`].
    #[must_use]
    pub fn with_connection_timeouts(mut self, connect: Duration, idle: Duration) -> Self {
        self.connect_timeout = connect;
        self.idle_timeout = idle;
        self
    }
}

/// The HTTP request limit for a node-side `timeout=` of `node_timeout`:
/// up to 5 s more, so the node's own (more informative) timeout answer
/// normally arrives first.
fn http_limit(node_timeout: Duration) -> Duration {
    node_timeout + node_timeout.min(Duration::from_secs(5))
}

/// A [`ContentStore`] backed by a Kubo-compatible node.
#[derive(Debug, Clone)]
pub struct KuboStore {
    rpc: RpcClient,
    config: Arc<KuboConfig>,
}

/// Most CIDs named by one `pin/add` call of [`ContentStore::pin_many`]
/// (keeps the request line short).
const PINS_PER_CALL: usize = 100;

#[derive(Deserialize)]
struct AddReply {
    #[serde(rename = "Hash")]
    hash: Option<String>,
}

#[derive(Deserialize)]
struct PinsReply {
    #[serde(rename = "Pins")]
    pins: Vec<String>,
}

#[derive(Deserialize)]
struct VersionReply {
    #[serde(rename = "Version")]
    version: String,
}

/// Query arguments that pin down every import setting, so the node's own
/// defaults or config (`Import.*` in newer Kubo) cannot change the DAG.
fn add_args(options: &PutOptions) -> Vec<(&'static str, String)> {
    let (version, raw_leaves) = match options.format {
        ImportFormat::CidV0 => ("0", "false"),
        ImportFormat::CidV1RawLeaves => ("1", "true"),
    };
    vec![
        ("cid-version", version.to_owned()),
        ("raw-leaves", raw_leaves.to_owned()),
        ("chunker", format!("size-{CHUNK_SIZE}")),
        ("hash", "sha2-256".to_owned()),
        ("trickle", "false".to_owned()),
        ("inline", "false".to_owned()),
        ("wrap-with-directory", "false".to_owned()),
        ("progress", "false".to_owned()),
        ("pin", options.pin.to_string()),
    ]
}

/// The root CID from an `add` reply: newline-delimited JSON objects, the
/// file's entry (with `Hash`) last. Parsed, never compared as text.
fn parse_add_reply(body: &[u8]) -> Result<Cid> {
    let mut root = None;
    for line in body
        .split(|&b| b == b'\n')
        .filter(|l| !l.iter().all(u8::is_ascii_whitespace))
    {
        let reply: AddReply = serde_json::from_slice(line).map_err(|e| {
            StorageError::backend_with("IPFS add replied with something that is not JSON", e)
        })?;
        if let Some(hash) = reply.hash {
            root = Some(hash.parse::<Cid>().map_err(|e| {
                StorageError::backend_with(format!("IPFS add replied with a bad CID {hash:?}"), e)
            })?);
        }
    }
    root.ok_or_else(|| StorageError::backend("IPFS add reply contains no CID"))
}

impl KuboStore {
    /// A client of the node at `api_url` with default settings. Nothing is
    /// contacted until the first call.
    pub fn new(api_url: impl Into<String>) -> Result<Self> {
        Self::with_config(KuboConfig::new(api_url))
    }

    /// A client with explicit settings.
    pub fn with_config(config: KuboConfig) -> Result<Self> {
        Ok(Self {
            rpc: RpcClient::new(&config)?,
            config: Arc::new(config),
        })
    }

    /// The node's version string (`/api/v0/version`), also a liveness check.
    pub async fn version(&self) -> Result<String> {
        let body = self
            .rpc
            .post(&Call {
                command: "version",
                args: Vec::new(),
                timeout: self.config.request_timeout,
                subject: None,
            })
            .await?;
        let reply: VersionReply = serde_json::from_slice(&body).map_err(|e| {
            StorageError::backend_with("IPFS version replied with unexpected JSON", e)
        })?;
        Ok(reply.version)
    }

    fn read_call(&self, command: &'static str, cid: &Cid, timeout: Duration) -> Call<'static> {
        let mut args = vec![
            ("arg", cid.to_string()),
            ("timeout", format!("{}ms", timeout.as_millis())),
        ];
        if self.config.offline_reads || command == "block/stat" {
            args.push(("offline", "true".to_owned()));
        }
        Call {
            command,
            args,
            timeout: http_limit(timeout),
            subject: Some(*cid),
        }
    }

    fn pin_call(&self, command: &'static str, cid: &Cid) -> Call<'static> {
        Call {
            command,
            args: vec![
                ("arg", cid.to_string()),
                ("recursive", "true".to_owned()),
                (
                    "timeout",
                    format!("{}ms", self.config.pin_timeout.as_millis()),
                ),
            ],
            timeout: http_limit(self.config.pin_timeout),
            subject: Some(*cid),
        }
    }

    /// Checks the node's answer to a pin command names `cid`.
    fn expect_pinned(command: &str, body: &[u8], cid: &Cid) -> Result<()> {
        let reply: PinsReply = serde_json::from_slice(body).map_err(|e| {
            StorageError::backend_with(format!("IPFS {command} replied with unexpected JSON"), e)
        })?;
        let named = reply
            .pins
            .iter()
            .filter_map(|p| p.parse::<Cid>().ok())
            .any(|p| p.digest() == cid.digest());
        if named {
            Ok(())
        } else {
            Err(StorageError::backend(format!(
                "IPFS {command} replied without {cid}: {:?}",
                reply.pins
            )))
        }
    }

    fn compare_root(expected: Cid, returned: Cid) -> Result<Cid> {
        if expected == returned {
            Ok(returned)
        } else {
            Err(StorageError::integrity(
                expected,
                format!(
                    "the node stored the content as {returned}, which differs from the CID computed locally"
                ),
            ))
        }
    }

    fn add_part(body: reqwest::Body) -> Result<Part> {
        Part::stream(body)
            .file_name("data")
            .mime_str("application/octet-stream")
            .map_err(|e| StorageError::backend_with("building the multipart upload", e))
    }
}

/// Blocks are sent as a CAR to the node's own importer (`dag/import`, roots
/// not pinned): one request per group of blocks, retried on transient
/// failures since the blocks are at hand. The node's reply carries no
/// per-block answer; pinning the imported roots afterwards
/// ([`ContentStore::pin_many`]) is what proves the node holds their DAGs.
#[async_trait]
impl BlockSink for KuboStore {
    async fn put_block(&self, block: Block) -> Result<()> {
        self.put_blocks(vec![block]).await
    }

    async fn put_blocks(&self, blocks: Vec<Block>) -> Result<()> {
        let Some(first) = blocks.first() else {
            return Ok(());
        };
        // Kubo refuses a CAR header without roots; any CID in it will do
        // (nothing is pinned).
        let pieces = car_pieces(&[*first.cid()], &blocks);
        let call = Call {
            command: "dag/import",
            args: vec![("pin-roots", "false".to_owned())],
            timeout: self.config.request_timeout,
            subject: None,
        };
        self.rpc
            .with_retries(&call, || async {
                let url = self.rpc.url(call.command, &call.args).map_err(permanent)?;
                let body = futures_util::stream::iter(
                    pieces.clone().into_iter().map(Ok::<_, std::io::Error>),
                );
                let part = Part::stream(reqwest::Body::wrap_stream(body))
                    .file_name("blocks.car")
                    .mime_str("application/vnd.ipld.car")
                    .map_err(|e| {
                        permanent(StorageError::backend_with(
                            "building the multipart upload",
                            e,
                        ))
                    })?;
                let request = self
                    .rpc
                    .http()
                    .post(url)
                    .timeout(call.timeout)
                    .multipart(Form::new().part("file", part));
                let response = self.rpc.send_once(&call, request).await?;
                self.rpc.read_reply(&call, response).await
            })
            .await
            .map(drop)
    }
}

#[async_trait]
impl BlockSource for KuboStore {
    async fn fetch(&self, cid: &Cid) -> Result<Bytes> {
        self.rpc
            .post(&self.read_call("block/get", cid, self.config.read_timeout))
            .await
    }
}

#[async_trait]
impl ContentStore for KuboStore {
    /// Uploads `data`; retried on transient failures since the bytes are
    /// at hand. Fails with `IntegrityViolation` if the node's CID differs
    /// from the locally computed one.
    async fn put(&self, data: Bytes, options: PutOptions) -> Result<Cid> {
        let expected = cid_of_bytes(&data, options.format);
        let call = Call {
            command: "add",
            args: add_args(&options),
            timeout: self.config.request_timeout,
            subject: None,
        };
        let body = self
            .rpc
            .with_retries(&call, || async {
                let url = self.rpc.url(call.command, &call.args).map_err(permanent)?;
                let part = Self::add_part(reqwest::Body::from(data.clone())).map_err(permanent)?;
                let request = self
                    .rpc
                    .http()
                    .post(url)
                    .timeout(call.timeout)
                    .multipart(Form::new().part("file", part));
                let response = self.rpc.send_once(&call, request).await?;
                self.rpc.read_reply(&call, response).await
            })
            .await
            .map_err(|e| e.about(expected))?;
        Self::compare_root(expected, parse_add_reply(&body)?)
    }

    /// Streams `data` to the node while hashing it locally; not retried
    /// (the stream cannot be replayed).
    async fn put_stream(&self, data: ByteStream, options: PutOptions) -> Result<Cid> {
        let builder = Arc::new(Mutex::new(Some(DagBuilder::cid_only(options.format))));
        let feeding = Arc::clone(&builder);
        let tee = data.map(move |piece| {
            if let Ok(bytes) = &piece {
                let mut guard = feeding.lock().unwrap_or_else(|p| p.into_inner());
                if let Some(builder) = guard.as_mut() {
                    builder.write(bytes);
                }
            }
            piece
        });
        let call = Call {
            command: "add",
            args: add_args(&options),
            // Uploads can be large: only the idle timeout applies.
            timeout: self.config.idle_timeout,
            subject: None,
        };
        let url = self.rpc.url(call.command, &call.args)?;
        let part = Self::add_part(reqwest::Body::wrap_stream(tee))?;
        let request = self
            .rpc
            .http()
            .post(url)
            .multipart(Form::new().part("file", part));
        let response = self
            .rpc
            .send_once(&call, request)
            .await
            .map_err(rpc::into_error)?;
        let body = self
            .rpc
            .read_reply(&call, response)
            .await
            .map_err(rpc::into_error)?;
        let returned = parse_add_reply(&body)?;
        let finished = builder
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
            .map(|b| b.finish().root)
            .ok_or_else(|| StorageError::backend("upload hash state missing"))?;
        Self::compare_root(finished, returned)
    }

    fn get_stream(&self, cid: &Cid) -> ByteStream {
        DagReader::new(self.clone(), *cid).into_stream()
    }

    async fn get_block(&self, cid: &Cid) -> Result<Bytes> {
        fetch_verified(self, cid).await
    }

    /// Asks the node whether it holds the block locally (`block/stat`,
    /// offline, short timeout). A block the node cannot produce within
    /// [`KuboConfig::has_timeout`] counts as absent.
    async fn has(&self, cid: &Cid) -> Result<bool> {
        match self
            .rpc
            .post(&self.read_call("block/stat", cid, self.config.has_timeout))
            .await
        {
            Ok(_) => Ok(true),
            Err(StorageError::NotFound { .. }) => Ok(false),
            Err(StorageError::Timeout { operation, .. }) if operation.contains("node-side") => {
                Ok(false)
            }
            Err(e) => Err(e),
        }
    }

    async fn pin(&self, cid: &Cid) -> Result<()> {
        let body = self.rpc.post(&self.pin_call("pin/add", cid)).await?;
        Self::expect_pinned("pin/add", &body, cid)
    }

    /// One `pin/add` call per 100 CIDs (Kubo takes several `arg`s); every
    /// CID must be named in the reply.
    async fn pin_many(&self, cids: &[Cid]) -> Result<()> {
        if let [cid] = cids {
            return self.pin(cid).await;
        }
        for chunk in cids.chunks(PINS_PER_CALL) {
            let mut call = self.pin_call("pin/add", &chunk[0]);
            call.subject = None;
            call.args
                .extend(chunk[1..].iter().map(|cid| ("arg", cid.to_string())));
            let body = self.rpc.post(&call).await?;
            for cid in chunk {
                Self::expect_pinned("pin/add", &body, cid)?;
            }
        }
        Ok(())
    }

    /// Not supported: the node's `repo/gc` removes every unpinned block of
    /// the node (other applications' and its cache too), cannot report
    /// what it would remove, and is the node operator's to schedule (Kubo
    /// collects by itself under `ipfs daemon --enable-gc`). Unpinned blocks
    /// of interrupted puts are left to it.
    async fn collect_garbage(&self, _dry_run: bool) -> Result<GcReport> {
        Err(StorageError::Unsupported {
            operation: "garbage collection",
            reason: "the IPFS node collects its own garbage: its operator runs `ipfs repo gc` \
                     (which removes every unpinned block of the node, not only medseal's) or \
                     starts it with `ipfs daemon --enable-gc`"
                .into(),
        })
    }

    async fn unpin(&self, cid: &Cid) -> Result<()> {
        match self.rpc.post(&self.pin_call("pin/rm", cid)).await {
            Ok(body) => Self::expect_pinned("pin/rm", &body, cid),
            // Kubo: "not pinned or pinned indirectly"; js-ipfs: "… is not pinned".
            Err(e) if is_not_pinned(&e) => Ok(()),
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn add_reply_parsing() {
        let body = b"{\"Name\":\"data\",\"Bytes\":5}\n{\"Name\":\"data\",\"Hash\":\"zb2rhmy65F3REf8SZp7De11gxtECBGgUKaLdiDj7MCGCHxbDW\",\"Size\":0}\n";
        let cid = parse_add_reply(body).unwrap();
        // js-ipfs prints CIDv1 in base58btc; it is the same CID as Kubo's base32.
        assert_eq!(
            cid,
            "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"
                .parse()
                .unwrap()
        );
        assert!(parse_add_reply(b"").is_err());
        assert!(parse_add_reply(b"<html>").is_err());
        assert!(parse_add_reply(b"{\"Hash\":\"Qmnope\"}").is_err());
    }

    #[test]
    fn rejects_non_http_urls() {
        assert!(KuboStore::new("https://127.0.0.1:5001").is_err());
        assert!(KuboStore::new("not a url").is_err());
        assert!(KuboStore::new("http://127.0.0.1:5001").is_ok());
    }

    #[test]
    fn add_pins_every_import_setting() {
        let args = add_args(&PutOptions::new().with_format(ImportFormat::CidV1RawLeaves));
        let get = |k: &str| {
            args.iter()
                .find(|(key, _)| *key == k)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(get("cid-version"), Some("1"));
        assert_eq!(get("raw-leaves"), Some("true"));
        assert_eq!(get("chunker"), Some("size-262144"));
        assert_eq!(get("pin"), Some("true"));
    }
}
