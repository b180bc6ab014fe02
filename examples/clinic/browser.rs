//! Browser tests: the hospital story through the portal in a real Chromium, driven over
//! WebDriver (chromedriver).
//!
//! They need `chromium` and `chromedriver` (Debian's packages; `CHROMIUM` and
//! `CHROMEDRIVER` name other binaries). Without them the tests say so and pass, except
//! with `CI=true`, where a missing browser is a failure. Screenshots of the main pages are
//! written to `target/clinic-screenshots/` (or `CLINIC_SCREENSHOTS`).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;

use crate::tests::{Hospital, hospital};

/// An ECG-like trace as a PNG (uncompressed deflate blocks: a real image any decoder
/// reads, written here so the test needs no image crate).
fn ecg_png() -> Vec<u8> {
    let (width, height) = (320u32, 120u32);
    let beat = |x: u32| -> u32 {
        let t = x % 80;
        let y = match t {
            30 => 20,
            31 => 100,
            32 => 50,
            50..=60 => 55,
            _ => 60,
        };
        y.min(height - 1)
    };
    let mut raw = Vec::with_capacity(((width * 3 + 1) * height) as usize);
    for y in 0..height {
        raw.push(0); // filter: none
        for x in 0..width {
            let on = y == beat(x)
                || (x > 0 && (beat(x - 1).min(beat(x))..=beat(x - 1).max(beat(x))).contains(&y));
            let grid = x % 20 == 0 || y % 20 == 0;
            let rgb = if on {
                [0xb0, 0x10, 0x20]
            } else if grid {
                [0xf4, 0xc6, 0xc6]
            } else {
                [0xff, 0xf8, 0xf8]
            };
            raw.extend_from_slice(&rgb);
        }
    }
    let mut zlib = vec![0x78, 0x01];
    let mut chunks = raw.chunks(65_535).peekable();
    while let Some(block) = chunks.next() {
        zlib.push(u8::from(chunks.peek().is_none()));
        let len = block.len() as u16;
        zlib.extend_from_slice(&len.to_le_bytes());
        zlib.extend_from_slice(&(!len).to_le_bytes());
        zlib.extend_from_slice(block);
    }
    let (mut a, mut b) = (1u32, 0u32);
    for byte in &raw {
        a = (a + u32::from(*byte)) % 65_521;
        b = (b + a) % 65_521;
    }
    zlib.extend_from_slice(&((b << 16) | a).to_be_bytes());
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&width.to_be_bytes());
    ihdr.extend_from_slice(&height.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    for (kind, data) in [(b"IHDR", ihdr), (b"IDAT", zlib), (b"IEND", Vec::new())] {
        out.extend_from_slice(&(data.len() as u32).to_be_bytes());
        let start = out.len();
        out.extend_from_slice(kind);
        out.extend_from_slice(&data);
        let crc = crc32(&out[start..]);
        out.extend_from_slice(&crc.to_be_bytes());
    }
    out
}

/// CRC-32 (ISO-HDLC, as PNG uses), bit by bit.
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = 0xffff_ffffu32;
    for byte in bytes {
        crc ^= u32::from(*byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xedb8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// A one-page PDF that says what it is.
fn pdf() -> Vec<u8> {
    let stream = "BT /F1 18 Tf 72 720 Td (Cardiology report: NSTEMI, troponin 2.1 ng/mL) Tj ET";
    let objects = [
        "<< /Type /Catalog /Pages 2 0 R >>".to_owned(),
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>".to_owned(),
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >>".to_owned(),
        format!("<< /Length {} >>\nstream\n{stream}\nendstream", stream.len()),
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>".to_owned(),
    ];
    let mut out = b"%PDF-1.4\n".to_vec();
    let mut offsets = Vec::new();
    for (i, body) in objects.iter().enumerate() {
        offsets.push(out.len());
        out.extend_from_slice(format!("{} 0 obj\n{body}\nendobj\n", i + 1).as_bytes());
    }
    let xref = out.len();
    out.extend_from_slice(
        format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1).as_bytes(),
    );
    for offset in offsets {
        out.extend_from_slice(format!("{offset:010} 00000 n \n").as_bytes());
    }
    out.extend_from_slice(
        format!(
            "trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n",
            objects.len() + 1
        )
        .as_bytes(),
    );
    out
}

/// chromedriver on a free loopback port, stopped on drop.
struct Driver {
    child: Child,
    url: String,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn binary(variable: &str, default: &str) -> Option<PathBuf> {
    let path = std::env::var_os(variable).map_or_else(|| PathBuf::from(default), PathBuf::from);
    path.is_file().then_some(path)
}

/// The browser and its driver, or `None` (with a note) where they are not installed;
/// with `CI=true` their absence fails the test.
fn browser_binaries() -> Option<(PathBuf, PathBuf)> {
    let found = binary("CHROMIUM", "/usr/bin/chromium")
        .zip(binary("CHROMEDRIVER", "/usr/bin/chromedriver"));
    if found.is_none() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI=true: chromium and chromedriver must be installed for the browser tests"
        );
        eprintln!("skipping the browser tests: chromium or chromedriver is not installed");
    }
    found
}

async fn start_driver(chromedriver: &Path) -> Driver {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap()
        .port();
    let child = Command::new(chromedriver)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromedriver starts");
    let url = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(20);
    while tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err()
    {
        assert!(Instant::now() < deadline, "chromedriver did not listen");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Driver { child, url }
}

async fn open_browser(
    driver: &Driver,
    chromium: &Path,
    profile: &Path,
    downloads: &Path,
) -> Client {
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": chromium,
            "args": [
                "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-quic", "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--window-size=1280,1400",
                format!("--user-data-dir={}", profile.display()),
            ],
            "prefs": {
                "download.default_directory": downloads,
                "download.prompt_for_download": false,
            },
        }),
    );
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    ClientBuilder::new(connector)
        .capabilities(caps)
        .connect(&driver.url)
        .await
        .expect("a browser session")
}

/// Polls `find` until the element is there (pages load and scripts run asynchronously).
async fn wait_for(client: &Client, css: &str) -> fantoccini::elements::Element {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(found) = client.find(Locator::Css(css)).await {
            return found;
        }
        if Instant::now() > deadline {
            let source = client.source().await.unwrap_or_default();
            panic!("no {css} on {:?}:\n{source}", client.current_url().await);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn page_text(client: &Client) -> String {
    client
        .find(Locator::Css("main"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

fn screenshots_dir() -> PathBuf {
    std::env::var_os("CLINIC_SCREENSHOTS").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("target/clinic-screenshots"),
        PathBuf::from,
    )
}

async fn screenshot(client: &Client, name: &str) {
    client
        .execute(
            "window.scrollTo(0, 0); document.activeElement?.blur();",
            vec![],
        )
        .await
        .unwrap();
    let dir = screenshots_dir();
    std::fs::create_dir_all(&dir).unwrap();
    let png = client.screenshot().await.unwrap();
    std::fs::write(dir.join(format!("{name}.png")), png).unwrap();
}

async fn sign_in(client: &Client, base: &str, name: &str) {
    client.goto(&format!("{base}/signin")).await.unwrap();
    if client.find(Locator::Css("form.signout")).await.is_ok() {
        sign_out(client).await;
        client.goto(&format!("{base}/signin")).await.unwrap();
    }
    wait_for(client, "#name")
        .await
        .send_keys(name)
        .await
        .unwrap();
    client
        .find(Locator::Css("form.card button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_for(client, "form.signout").await;
}

async fn sign_out(client: &Client) {
    client
        .find(Locator::Css("form.signout button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_for(client, "#name").await;
}

async fn serve(h: &Hospital) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let router = h.router.clone();
    tokio::spawn(async move { axum::serve(listener, router).await });
    base
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_hospital_story_in_a_real_browser() {
    let Some((chromium, chromedriver)) = browser_binaries() else {
        return;
    };
    let h = hospital(|_| {}).await;
    let base = serve(&h).await;
    let driver = start_driver(&chromedriver).await;
    let work = tempfile::tempdir().unwrap();
    let (profile, downloads, files) = (
        work.path().join("profile"),
        work.path().join("downloads"),
        work.path().join("files"),
    );
    for d in [&profile, &downloads, &files] {
        std::fs::create_dir_all(d).unwrap();
    }
    let report = pdf();
    std::fs::write(files.join("report.pdf"), &report).unwrap();
    std::fs::write(files.join("ecg.png"), ecg_png()).unwrap();
    let client = open_browser(&driver, &chromium, &profile, &downloads).await;
    let outcome = story(&client, &base, &files, &downloads, &report).await;
    let _ = client.close().await;
    outcome.unwrap();
}

async fn story(
    client: &Client,
    base: &str,
    files: &Path,
    downloads: &Path,
    report: &[u8],
) -> Result<(), String> {
    // Dr. Ada signs in.
    client.goto(&format!("{base}/records")).await.unwrap();
    wait_for(client, "#name").await;
    screenshot(client, "signin").await;
    sign_in(client, base, "ada").await;
    assert!(
        page_text(client)
            .await
            .contains("You have not stored any records yet")
    );

    // She stores a record about Pat with a PDF and an image, using the policy builder.
    client.goto(&format!("{base}/records/new")).await.unwrap();
    wait_for(client, "#title")
        .await
        .send_keys("Cardiology report")
        .await
        .unwrap();
    client
        .find(Locator::Css("#patient"))
        .await
        .unwrap()
        .send_keys("Pat")
        .await
        .unwrap();
    for value in ["role:doctor", "dept:cardiology"] {
        client
            .find(Locator::Css(&format!(
                "input[data-builder][value='{value}']"
            )))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
    }
    let policy = client.find(Locator::Css("#policy")).await.unwrap();
    assert_eq!(
        policy.prop("value").await.unwrap().as_deref(),
        Some("dept:cardiology and role:doctor"),
        "the builder writes the policy text"
    );
    // k of n: any one of the ticked values, then back to every kind.
    let threshold = client.find(Locator::Css("#threshold")).await.unwrap();
    threshold.send_keys("1").await.unwrap();
    assert_eq!(
        policy.prop("value").await.unwrap().as_deref(),
        Some("1 of (dept:cardiology, role:doctor)")
    );
    threshold.clear().await.unwrap();
    client
        .find(Locator::Css("input[data-builder][value='role:doctor']"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    client
        .find(Locator::Css("input[data-builder][value='role:doctor']"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    assert_eq!(
        policy.prop("value").await.unwrap().as_deref(),
        Some("dept:cardiology and role:doctor")
    );
    client
        .find(Locator::Css("#keywords"))
        .await
        .unwrap()
        .send_keys("I21.4")
        .await
        .unwrap();
    client
        .find(Locator::Css("#emergency"))
        .await
        .unwrap()
        .send_keys(medseal::EMERGENCY_ATTRIBUTE)
        .await
        .unwrap();
    let paths = format!(
        "{}\n{}",
        files.join("report.pdf").display(),
        files.join("ecg.png").display()
    );
    client
        .find(Locator::Css("#files"))
        .await
        .unwrap()
        .send_keys(&paths)
        .await
        .unwrap();
    screenshot(client, "new-record").await;
    client
        .find(Locator::Css("#new-record button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_for(client, "ol.timeline").await;
    let record_url = client.current_url().await.unwrap().to_string();
    let text = page_text(client).await;
    assert!(
        text.contains("Cardiology report") && text.contains("report.pdf"),
        "{text}"
    );
    assert!(text.contains("Created by Dr. Ada"));
    // The image preview decoded (the stream reached the browser whole).
    let width = client
        .execute(
            "return document.querySelector('img.preview').naturalWidth;",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(width, json!(320));
    screenshot(client, "record").await;

    // Download the PDF and compare bytes.
    client
        .find(Locator::Css("a.download[download='report.pdf']"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let downloaded = downloads.join("report.pdf");
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::fs::read(&downloaded).map(|b| b.len()).unwrap_or(0) != report.len() {
        if Instant::now() > deadline {
            return Err("the download did not arrive".into());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(std::fs::read(&downloaded).unwrap(), report);

    // Search by ICD-10 code, with suggestions from the code list.
    client.goto(&format!("{base}/search")).await.unwrap();
    let q = wait_for(client, "#q").await;
    q.send_keys("I21.4").await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while client
        .find_all(Locator::Css("#suggestions option"))
        .await
        .unwrap()
        .is_empty()
    {
        if Instant::now() > deadline {
            return Err("no suggestions".into());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    client
        .find(Locator::Css("form.search button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_for(client, "table.records").await;
    assert!(page_text(client).await.contains("Cardiology report"));
    screenshot(client, "search").await;

    // A cross-site-request-forgery attempt: a POST without the form's token is refused.
    let status = client
        .execute_async(
            "const done = arguments[arguments.length - 1];
             fetch(arguments[0] + '/share', { method: 'POST',
                body: new URLSearchParams({ member: 'Dr. Lee' }) })
               .then(r => done(r.status));",
            vec![json!(record_url)],
        )
        .await
        .unwrap();
    assert_eq!(status, json!(403));

    // Nurse Sam is refused by the policy.
    sign_in(client, base, "sam").await;
    client.goto(&record_url).await.unwrap();
    wait_for(client, "section.failure").await;
    let text = page_text(client).await;
    assert!(text.contains("Access denied") && !text.contains("report.pdf"));

    // Dr. Lee (another department) asks; Pat approves; Dr. Lee reads.
    sign_in(client, base, "lee").await;
    client.goto(&record_url).await.unwrap();
    wait_for(client, "form[action$='/request'] button")
        .await
        .click()
        .await
        .unwrap();
    wait_for(client, "main h1").await;
    assert!(page_text(client).await.contains("Request sent"));
    sign_in(client, base, "pat").await;
    client.goto(&format!("{base}/requests")).await.unwrap();
    wait_for(client, "table.records").await;
    screenshot(client, "requests").await;
    client
        .find(Locator::Css(
            "form[action='/requests/answer'] input[value='approve'] ~ button",
        ))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_for(client, "p.empty").await;
    sign_in(client, base, "lee").await;
    client.goto(&record_url).await.unwrap();
    wait_for(client, "ol.timeline").await;
    let text = page_text(client).await;
    assert!(text.contains("Cardiology report"), "{text}");
    assert!(text.contains("Dr. Lee asked Pat for access"));
    assert!(text.contains("Pat gave access to Dr. Lee"));
    screenshot(client, "audit").await;
    Ok(())
}
