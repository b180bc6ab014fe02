//! Clinic portal report: server time of the pages at hospital scale, and the memory of a
//! large upload and download.
//!
//! `cargo run --release --example clinic_report -- [--quick] [--json]`
//!
//! Builds a data directory with 10^4 records (`--quick`: 10^3) owned by one cardiologist
//! about one patient (bulk import, as `medseal import` does; 1 KiB attachment, ICD-10-CM
//! codes, a `term:cohort` keyword on 1,000 of them), serves the portal on 127.0.0.1 in
//! this process and requests, as a signed-in browser would: the record list (first and
//! last page), a search with 1 hit and one with ~1,000 hits, a record page. Each figure is
//! the median of the server's own time (`Server-Timing` header: request in to response
//! head) and of the client's total, over repeated requests. Then it uploads a 1 GiB
//! attachment (generated as it is sent) through the new-record form and downloads it
//! back (hashed as it arrives), sampling the process's resident memory every 20 ms:
//! the peak above the resident memory before each transfer is what the transfer held.
#![allow(
    clippy::unwrap_used,
    clippy::print_stderr,
    clippy::print_stdout,
    missing_docs,
    unreachable_pub,
    dead_code
)]

#[path = "clinic/admin.rs"]
mod admin;
#[path = "clinic/app.rs"]
mod app;
#[path = "clinic/assets.rs"]
mod assets;
#[path = "clinic/auth.rs"]
mod auth;
#[path = "clinic/failure.rs"]
mod failure;
#[path = "clinic/pages.rs"]
mod pages;
#[path = "clinic/records.rs"]
mod records;
#[path = "clinic/spool.rs"]
mod spool;
#[path = "support/mod.rs"]
mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use medseal::{Attachment, Authority, Keyword, NewRecord, PrivateKeySigner, Vault};
use rand_chacha::ChaCha20Rng;
use rand_core::{OsRng, RngCore, SeedableRng};
use sha2::{Digest, Sha256};
use support::median;

const POLICY: &str = "role:doctor and dept:cardiology";
const COHORT: usize = 1_000;
const BIG: u64 = 1 << 30;

#[derive(serde::Serialize)]
struct Page {
    page: &'static str,
    server_ms: f64,
    client_ms: f64,
    rounds: usize,
    bytes: usize,
}

#[derive(serde::Serialize)]
struct Transfer {
    what: &'static str,
    bytes: u64,
    seconds: f64,
    mib_per_s: f64,
    rss_before_mib: f64,
    rss_peak_mib: f64,
    held_mib: f64,
}

fn rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(0.0, |kib| kib / 1024.0)
}

/// The resident memory sampled every 20 ms from `start` to `finish`.
struct RssWatch {
    before: f64,
    started: Instant,
    stop: Arc<AtomicBool>,
    peak: Arc<AtomicU64>,
    sampler: std::thread::JoinHandle<()>,
}

impl RssWatch {
    fn start() -> Self {
        let (stop, peak) = (
            Arc::new(AtomicBool::new(false)),
            Arc::new(AtomicU64::new(0)),
        );
        let sampler = {
            let (stop, peak) = (Arc::clone(&stop), Arc::clone(&peak));
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    peak.fetch_max((rss_mib() * 1000.0) as u64, Ordering::Relaxed);
                    std::thread::sleep(Duration::from_millis(20));
                }
            })
        };
        Self {
            before: rss_mib(),
            started: Instant::now(),
            stop,
            peak,
            sampler,
        }
    }

    /// The transfer's figures: `bytes` moved since `start`.
    fn finish(self, what: &'static str, bytes: u64) -> Transfer {
        let seconds = self.started.elapsed().as_secs_f64();
        self.stop.store(true, Ordering::Relaxed);
        self.sampler.join().unwrap();
        let peak = self.peak.load(Ordering::Relaxed) as f64 / 1000.0;
        Transfer {
            what,
            bytes,
            seconds,
            mib_per_s: bytes as f64 / f64::from(1u32 << 20) / seconds,
            rss_before_mib: self.before,
            rss_peak_mib: peak,
            held_mib: peak - self.before,
        }
    }
}

/// A browser's cookies and the last page.
struct Client {
    http: reqwest::Client,
    base: String,
    cookies: Vec<(String, String)>,
}

fn hidden(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let at = html.find(&marker).unwrap() + marker.len();
    html[at..at + html[at..].find('"').unwrap()].to_owned()
}

impl Client {
    fn cookie(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    fn keep_cookies(&mut self, response: &reqwest::Response) {
        for set in response.headers().get_all("set-cookie") {
            let text = set.to_str().unwrap();
            let pair = text.split(';').next().unwrap();
            let (k, v) = pair.split_once('=').unwrap();
            self.cookies.retain(|(name, _)| name != k);
            if !v.is_empty() {
                self.cookies.push((k.to_owned(), v.to_owned()));
            }
        }
    }

    /// GET `path`: (server ms, client ms, body).
    async fn get(&mut self, path: &str) -> (f64, f64, String) {
        let started = Instant::now();
        let response = self
            .http
            .get(format!("{}{path}", self.base))
            .header("cookie", self.cookie())
            .send()
            .await
            .unwrap();
        self.keep_cookies(&response);
        let server = server_ms(&response);
        let status = response.status();
        let body = response.text().await.unwrap();
        assert!(status.is_success(), "GET {path}: {status}\n{body}");
        (server, started.elapsed().as_secs_f64() * 1e3, body)
    }

    async fn sign_in(&mut self, name: &str) {
        self.cookies.clear();
        let (_, _, form) = self.get("/signin").await;
        let response = self
            .http
            .post(format!("{}/signin", self.base))
            .header("cookie", self.cookie())
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!("csrf={}&name={name}", hidden(&form, "csrf")))
            .send()
            .await
            .unwrap();
        self.keep_cookies(&response);
        assert!(self.cookies.iter().any(|(k, _)| k == "medseal_session"));
    }
}

fn server_ms(response: &reqwest::Response) -> f64 {
    response
        .headers()
        .get("server-timing")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split("dur=").nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(f64::NAN)
}

async fn page(client: &mut Client, name: &'static str, path: &str, rounds: usize) -> Page {
    client.get(path).await; // warm
    let (mut server, mut total, mut bytes) = (Vec::new(), Vec::new(), 0);
    for _ in 0..rounds {
        let (s, c, body) = client.get(path).await;
        server.push(s);
        total.push(c);
        bytes = body.len();
    }
    Page {
        page: name,
        server_ms: median(server),
        client_ms: median(total),
        rounds,
        bytes,
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let quick = args.iter().any(|a| a == "--quick");
    let json = args.iter().any(|a| a == "--json");
    let records = if quick { 1_000 } else { 10_000 };
    let big = if quick { BIG / 8 } else { BIG };

    let dir = tempfile::tempdir().unwrap();
    let authority = Authority::setup(&mut OsRng);
    let mut vault = Vault::open(dir.path()).await.unwrap();
    vault.install_authority(authority.public_key()).unwrap();
    vault.adopt_authority(&authority).await.unwrap();
    std::fs::create_dir_all(dir.path().join("members")).unwrap();
    let validity = medseal::Validity::months_from_now(12);
    let issue = |name: &str, attrs: &[&str]| {
        authority
            .issue(
                name,
                attrs,
                validity,
                PrivateKeySigner::random(),
                &mut OsRng,
            )
            .unwrap()
    };
    let ada = issue("Dr. Ada", &["role:doctor", "dept:cardiology"]);
    let pat = issue("Pat", &["role:patient"]);
    for (file, member) in [("ada", &ada), ("pat", &pat)] {
        vault.register_member(&authority, member).await.unwrap();
        std::fs::write(
            dir.path().join("members").join(format!("{file}.key")),
            member.to_bytes(),
        )
        .unwrap();
    }

    // The archive, by bulk import.
    let codes: Vec<Keyword> = medseal::index::dictionary::icd10cm()
        .unwrap()
        .iter()
        .filter(|c| c.billable)
        .take(3_000)
        .map(|c| Keyword::icd10(&c.code).unwrap())
        .collect();
    let started = Instant::now();
    let mut done = 0;
    while done < records {
        let n = (records - done).min(1_000);
        let batch = (done..done + n)
            .map(|i| {
                let mut rng = ChaCha20Rng::seed_from_u64(i as u64);
                let mut record = NewRecord::new(format!("case {i}"), POLICY.parse().unwrap())
                    .subject(pat.address())
                    .keyword(Keyword::term(&format!("case-{i}")).unwrap())
                    .attach(Attachment::bytes(
                        "note.txt",
                        "text/plain",
                        vec![i as u8; 1024],
                    ));
                for _ in 0..5 + rng.next_u32() % 6 {
                    record = record.keyword(codes[rng.next_u32() as usize % codes.len()].clone());
                }
                if i < COHORT {
                    record = record.keyword(Keyword::term("cohort").unwrap());
                }
                record
            })
            .collect();
        vault.put_many(&ada, batch).await.unwrap();
        done += n;
        eprint!("\r  {done} / {records} records imported   ");
    }
    vault
        .compact_index(&ada, medseal::CompactScope::AllPartitions)
        .await
        .unwrap();
    vault.refresh_index_cache(ada.address()).await.unwrap();
    eprintln!("({:.0} s)", started.elapsed().as_secs_f64());

    // The portal, on loopback in this process.
    let config = app::Config {
        dir: dir.path().to_owned(),
        max_upload: 2 * BIG,
        ..app::Config::default()
    };
    let state = app::App::new(vault, config);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(axum::serve(listener, app::router(state)).into_future());
    let mut client = Client {
        http: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap(),
        base: base.clone(),
        cookies: Vec::new(),
    };
    client.sign_in("ada").await;
    let last_page = records.div_ceil(50);
    let mut pages = vec![
        page(&mut client, "record list, first page", "/records", 21).await,
        page(
            &mut client,
            "record list, last page",
            &format!("/records?page={last_page}"),
            21,
        )
        .await,
        page(&mut client, "search, 1 hit", "/search?q=term%3Acase-7", 21).await,
        page(
            &mut client,
            "search, ~1,000 hits",
            "/search?q=term%3Acohort",
            11,
        )
        .await,
        page(
            &mut client,
            "record page (a logged read)",
            "/records/42",
            11,
        )
        .await,
    ];
    client.sign_in("pat").await;
    pages.push(
        page(
            &mut client,
            "records about me, first page",
            "/records?view=about",
            21,
        )
        .await,
    );
    client.sign_in("ada").await;

    // 1 GiB up and down.
    let (_, _, form) = client.get("/records/new").await;
    let (csrf, submission) = (hidden(&form, "csrf"), hidden(&form, "submission"));
    let chunk = vec![0x5au8; 1 << 20];
    let mut expected = Sha256::new();
    for _ in 0..big / (1 << 20) {
        expected.update(&chunk);
    }
    let expected = expected.finalize();
    let body = futures_util::stream::iter(0..big / (1 << 20))
        .map(move |_| Ok::<_, std::io::Error>(bytes::Bytes::from(vec![0x5au8; 1 << 20])));
    let file = reqwest::multipart::Part::stream_with_length(reqwest::Body::wrap_stream(body), big)
        .file_name("scan.bin")
        .mime_str("application/octet-stream")
        .unwrap();
    let form = reqwest::multipart::Form::new()
        .text("csrf", csrf)
        .text("submission", submission)
        .text("title", "Large scan")
        .text("policy", POLICY)
        .part("file", file);
    let mut transfers = Vec::new();
    let watch = RssWatch::start();
    let response = client
        .http
        .post(format!("{base}/records"))
        .header("cookie", client.cookie())
        .multipart(form)
        .send()
        .await
        .unwrap();
    transfers.push(watch.finish("upload (new record form)", big));
    assert_eq!(response.status(), 303, "{}", response.text().await.unwrap());
    let location = response.headers()["location"].to_str().unwrap().to_owned();

    let watch = RssWatch::start();
    let response = client
        .http
        .get(format!("{base}{location}/attachments/0"))
        .header("cookie", client.cookie())
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success());
    let mut stream = response.bytes_stream();
    let (mut received, mut hash) = (0u64, Sha256::new());
    while let Some(piece) = stream.next().await {
        let piece = piece.unwrap();
        received += piece.len() as u64;
        hash.update(&piece);
    }
    transfers.push(watch.finish("download (attachment)", big));
    assert_eq!(received, big);
    assert_eq!(hash.finalize(), expected, "the download is the upload");

    if json {
        println!(
            "{}",
            serde_json::json!({ "records": records, "pages": pages, "transfers": transfers })
        );
        return;
    }
    println!("clinic portal over {records} records (embedded backends; medians)");
    println!(
        "{:<32} {:>10} {:>10} {:>7} {:>9}",
        "page", "server ms", "client ms", "rounds", "bytes"
    );
    for p in &pages {
        println!(
            "{:<32} {:>10.2} {:>10.2} {:>7} {:>9}",
            p.page, p.server_ms, p.client_ms, p.rounds, p.bytes
        );
    }
    println!(
        "{:<26} {:>9} {:>8} {:>8} {:>11} {:>9} {:>9}",
        "transfer", "MiB", "s", "MiB/s", "RSS before", "RSS peak", "held MiB"
    );
    for t in &transfers {
        println!(
            "{:<26} {:>9} {:>8.1} {:>8.1} {:>11.1} {:>9.1} {:>9.1}",
            t.what,
            t.bytes >> 20,
            t.seconds,
            t.mib_per_s,
            t.rss_before_mib,
            t.rss_peak_mib,
            t.held_mib
        );
    }
}
