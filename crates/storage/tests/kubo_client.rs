//! `KuboStore` against a scripted fake node on loopback: a node that is
//! down, slow, erroring or lying must produce clear, typed errors.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use medseal_storage::{
    Cid, CidVersion, Codec, ContentStore, KuboConfig, KuboStore, PutOptions, StorageError,
    cid_of_bytes,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// What the fake node does with one request.
enum Reply {
    Answer(u16, Vec<u8>),
    Hang,
}

/// A request as the fake node saw it.
#[derive(Debug, Clone)]
struct Seen {
    target: String,
    body: Vec<u8>,
}

type Script = Arc<dyn Fn(&str, usize) -> Reply + Send + Sync>;

struct FakeNode {
    url: String,
    requests: Arc<Mutex<Vec<Seen>>>,
}

async fn read_request(stream: &mut tokio::net::TcpStream) -> Option<Seen> {
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 65536];
    let head_end = loop {
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buffer.extend_from_slice(&chunk[..n]);
        if let Some(pos) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            break pos + 4;
        }
    };
    let head = String::from_utf8_lossy(&buffer[..head_end]).to_string();
    let target = head
        .split_whitespace()
        .nth(1)
        .unwrap_or_default()
        .to_owned();
    let lower = head.to_ascii_lowercase();
    let length = lower
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .map(|v| v.trim().parse::<usize>().unwrap());
    let chunked = lower.contains("transfer-encoding: chunked");
    loop {
        let body = &buffer[head_end..];
        let complete = match length {
            Some(len) => body.len() >= len,
            None if chunked => body.ends_with(b"0\r\n\r\n"),
            None => true,
        };
        if complete {
            break;
        }
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            break;
        }
        buffer.extend_from_slice(&chunk[..n]);
    }
    Some(Seen {
        target,
        body: buffer[head_end..].to_vec(),
    })
}

async fn fake_node(script: Script) -> FakeNode {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let requests = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&requests);
    let count = Arc::new(AtomicUsize::new(0));
    tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                return;
            };
            let script = Arc::clone(&script);
            let seen = Arc::clone(&seen);
            let count = Arc::clone(&count);
            tokio::spawn(async move {
                while let Some(request) = read_request(&mut stream).await {
                    let index = count.fetch_add(1, Ordering::SeqCst);
                    let reply = script(&request.target, index);
                    seen.lock().unwrap().push(request);
                    match reply {
                        Reply::Hang => {
                            tokio::time::sleep(Duration::from_secs(30)).await;
                            return;
                        }
                        Reply::Answer(code, body) => {
                            let head = format!(
                                "HTTP/1.1 {code} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
                                body.len()
                            );
                            if stream.write_all(head.as_bytes()).await.is_err()
                                || stream.write_all(&body).await.is_err()
                            {
                                return;
                            }
                        }
                    }
                }
            });
        }
    });
    FakeNode { url, requests }
}

fn store(url: &str) -> KuboStore {
    KuboStore::with_config(
        KuboConfig::new(url)
            .with_read_timeout(Duration::from_millis(300))
            .with_retries(2, Duration::from_millis(50)),
    )
    .unwrap()
}

fn raw_cid(data: &[u8]) -> Cid {
    Cid::for_block(CidVersion::V1, Codec::Raw, data)
}

#[tokio::test]
async fn node_down_is_a_clear_backend_error_after_bounded_retries() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let started = Instant::now();
    let error = store(&url).get_block(&raw_cid(b"x")).await.unwrap_err();
    let message = format!("{error}");
    assert!(matches!(error, StorageError::Backend { .. }), "{error:?}");
    assert!(message.contains("cannot connect"), "{message}");
    assert!(
        started.elapsed() >= Duration::from_millis(150),
        "two backoffs: 50 + 100 ms"
    );
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(store(&url).version().await.is_err());
}

#[tokio::test]
async fn garbage_blocks_are_integrity_violations() {
    let node = fake_node(Arc::new(|_, _| {
        Reply::Answer(200, b"not the block you asked for".to_vec())
    }))
    .await;
    let cid = raw_cid(b"the real block");
    let kubo = store(&node.url);
    let error = kubo.get_block(&cid).await.unwrap_err();
    assert!(
        matches!(error, StorageError::IntegrityViolation { cid: c, .. } if c == cid),
        "{error:?}"
    );
    let error = kubo.get(&cid).await.unwrap_err();
    assert!(
        matches!(error, StorageError::IntegrityViolation { .. }),
        "{error:?}"
    );
    let requests = node.requests.lock().unwrap().clone();
    assert!(
        requests[0].target.starts_with("/api/v0/block/get?arg="),
        "{}",
        requests[0].target
    );
    assert!(
        requests[0].target.contains("timeout=300ms"),
        "reads pass timeout="
    );
}

#[tokio::test]
async fn node_errors_are_reported_with_their_message_and_not_retried() {
    let node = fake_node(Arc::new(|_, _| {
        Reply::Answer(
            500,
            br#"{"Message":"blockstore is on fire","Code":0,"Type":"error"}"#.to_vec(),
        )
    }))
    .await;
    let error = store(&node.url)
        .get_block(&raw_cid(b"x"))
        .await
        .unwrap_err();
    assert!(
        format!("{error}").contains("blockstore is on fire"),
        "{error}"
    );
    assert_eq!(node.requests.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn node_side_timeouts_become_timeout_errors() {
    let node = fake_node(Arc::new(|_, _| {
        Reply::Answer(
            500,
            br#"{"Message":"Failed to get block: request timed out","Code":0,"Type":"error"}"#
                .to_vec(),
        )
    }))
    .await;
    let kubo = store(&node.url);
    let error = kubo.get_block(&raw_cid(b"x")).await.unwrap_err();
    assert!(matches!(error, StorageError::Timeout { .. }), "{error:?}");
    assert!(
        !kubo.has(&raw_cid(b"x")).await.unwrap(),
        "has: not produced in time = absent"
    );
}

#[tokio::test]
async fn transient_failures_are_retried() {
    let block = b"finally".to_vec();
    let served = block.clone();
    let node = fake_node(Arc::new(move |_, index| {
        if index < 2 {
            Reply::Answer(503, b"{\"Message\":\"busy\"}".to_vec())
        } else {
            Reply::Answer(200, served.clone())
        }
    }))
    .await;
    let got = store(&node.url).get_block(&raw_cid(&block)).await.unwrap();
    assert_eq!(got, block);
    assert_eq!(node.requests.lock().unwrap().len(), 3);
}

#[tokio::test]
async fn a_hanging_node_times_out() {
    let node = fake_node(Arc::new(|_, _| Reply::Hang)).await;
    let kubo = KuboStore::with_config(
        KuboConfig::new(&node.url)
            .with_read_timeout(Duration::from_millis(200))
            .with_retries(1, Duration::from_millis(10)),
    )
    .unwrap();
    let started = Instant::now();
    let error = kubo.get_block(&raw_cid(b"x")).await.unwrap_err();
    assert!(matches!(error, StorageError::Timeout { .. }), "{error:?}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(node.requests.lock().unwrap().len(), 2, "one retry");
}

/// Issue 12: a timeout named the RPC command but not what it was waiting for.
#[tokio::test]
async fn timeouts_name_the_block() {
    let node = fake_node(Arc::new(|_, _| Reply::Hang)).await;
    let kubo = KuboStore::with_config(
        KuboConfig::new(&node.url)
            .with_read_timeout(Duration::from_millis(100))
            .with_request_timeout(Duration::from_millis(200))
            .with_retries(0, Duration::from_millis(10)),
    )
    .unwrap();
    let cid = raw_cid(b"late");
    let error = kubo.get_block(&cid).await.unwrap_err();
    assert!(
        matches!(&error, StorageError::Timeout { cid: Some(c), .. } if *c == cid),
        "{error:?}"
    );
    assert!(error.to_string().contains(&cid.to_string()), "{error}");
    // An upload names the CID computed locally.
    let data = Bytes::from_static(b"never stored");
    let expected = cid_of_bytes(&data, medseal_storage::ImportFormat::CidV0);
    let error = kubo.put(data, PutOptions::new()).await.unwrap_err();
    assert!(error.to_string().contains(&expected.to_string()), "{error}");
    // The node's own timeout answer names it too.
    let node = fake_node(Arc::new(|_, _| {
        Reply::Answer(500, br#"{"Message":"context deadline exceeded"}"#.to_vec())
    }))
    .await;
    let error = store(&node.url).get_block(&cid).await.unwrap_err();
    assert!(error.to_string().contains(&cid.to_string()), "{error}");
}

#[tokio::test]
async fn a_node_storing_different_content_is_caught() {
    let data = Bytes::from_static(b"patient record");
    let wrong = cid_of_bytes(b"something else", medseal_storage::ImportFormat::CidV0);
    let reply = format!("{{\"Name\":\"data\",\"Hash\":\"{wrong}\",\"Size\":\"22\"}}\n");
    let node = fake_node(Arc::new(move |_, _| {
        Reply::Answer(200, reply.clone().into_bytes())
    }))
    .await;
    let kubo = store(&node.url);
    let error = kubo.put(data.clone(), PutOptions::new()).await.unwrap_err();
    assert!(
        matches!(error, StorageError::IntegrityViolation { .. }),
        "{error:?}"
    );
    let error = kubo
        .put_stream(
            Box::pin(futures_util::stream::iter([Ok(data)])),
            PutOptions::new(),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(error, StorageError::IntegrityViolation { .. }),
        "{error:?}"
    );

    let requests = node.requests.lock().unwrap().clone();
    for request in &requests {
        assert!(
            request.target.starts_with("/api/v0/add?"),
            "{}",
            request.target
        );
        for arg in [
            "cid-version=0",
            "raw-leaves=false",
            "chunker=size-262144",
            "pin=true",
        ] {
            assert!(
                request.target.contains(arg),
                "{arg} missing in {}",
                request.target
            );
        }
        let body = String::from_utf8_lossy(&request.body).to_ascii_lowercase();
        assert!(
            body.contains("content-type: application/octet-stream"),
            "every part has a Content-Type"
        );
        assert!(body.contains("patient record"));
    }
}

#[tokio::test]
async fn garbage_add_replies_are_backend_errors() {
    let node = fake_node(Arc::new(|_, _| {
        Reply::Answer(200, b"<html>proxy login</html>".to_vec())
    }))
    .await;
    let error = store(&node.url)
        .put(Bytes::from_static(b"x"), PutOptions::new())
        .await
        .unwrap_err();
    assert!(matches!(error, StorageError::Backend { .. }), "{error:?}");
}

/// The `arg` values of a request target, in order.
fn args_of(target: &str) -> Vec<String> {
    let query = target.split_once('?').map_or("", |(_, q)| q);
    query
        .split('&')
        .filter_map(|pair| pair.strip_prefix("arg="))
        .map(str::to_owned)
        .collect()
}

/// A node that pins what it is asked to, except the last `arg` of every call when
/// `drop_last` (a node that did not pin everything).
async fn pinning_node(drop_last: bool) -> FakeNode {
    fake_node(Arc::new(move |target, _| {
        let mut pins = args_of(target);
        if drop_last {
            pins.pop();
        }
        let reply = serde_json::json!({ "Pins": pins }).to_string();
        Reply::Answer(200, reply.into_bytes())
    }))
    .await
}

#[tokio::test]
async fn pin_many_names_several_cids_per_call_and_checks_every_one() {
    let cids: Vec<Cid> = (0..250u32)
        .map(|i| raw_cid(format!("block {i}").as_bytes()))
        .collect();
    let node = pinning_node(false).await;
    store(&node.url).pin_many(&cids).await.unwrap();
    let requests = node.requests.lock().unwrap().clone();
    let sizes: Vec<usize> = requests.iter().map(|r| args_of(&r.target).len()).collect();
    assert_eq!(sizes, vec![100, 100, 50]);
    let sent: Vec<String> = requests.iter().flat_map(|r| args_of(&r.target)).collect();
    let expected: Vec<String> = cids.iter().map(Cid::to_string).collect();
    assert_eq!(sent, expected);
    for request in &requests {
        assert!(request.target.starts_with("/api/v0/pin/add?"));
        assert!(request.target.contains("recursive=true"));
    }

    let liar = pinning_node(true).await;
    let error = store(&liar.url).pin_many(&cids[..3]).await.unwrap_err();
    assert!(matches!(error, StorageError::Backend { .. }), "{error:?}");
}
