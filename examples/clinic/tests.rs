//! Handler tests over HTTP requests, without a browser: status codes, headers, limits,
//! sessions and CSRF, and the flows of a hospital through the portal's forms.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use http_body_util::BodyExt;
use medseal::chain::{EmbeddedChain, Ledger};
use medseal::storage::MemoryStore;
use medseal::{Authority, Member, PrivateKeySigner, Vault};
use rand_core::OsRng;
use tower::ServiceExt;

use crate::app::{self, App, Config};

/// The passphrase of the test hospital's sealed authority key.
pub const AUTHORITY_PASSPHRASE: &str = "authority passphrase";

pub struct Hospital {
    pub dir: tempfile::TempDir,
    pub app: App,
    pub router: Router,
    pub authority: Authority,
}

fn issue(authority: &Authority, name: &str, attrs: &[&str]) -> Member {
    authority
        .issue(
            name,
            attrs,
            medseal::Validity::months_from_now(12),
            PrivateKeySigner::random(),
            &mut OsRng,
        )
        .unwrap()
}

/// A data directory with an authority and the members of the hospital story, their keys
/// in `members/` as the `medseal` command writes them, all registered on chain.
pub async fn hospital(config: impl FnOnce(&mut Config)) -> Hospital {
    let dir = tempfile::tempdir().unwrap();
    let authority = Authority::setup(&mut OsRng);
    let chain = EmbeddedChain::in_memory(PrivateKeySigner::random()).unwrap();
    let ledger: Arc<dyn Ledger> = Arc::new(chain);
    let mut vault = Vault::with_backends(dir.path(), Arc::new(MemoryStore::new()), ledger).unwrap();
    vault.install_authority(authority.public_key()).unwrap();
    vault.adopt_authority(&authority).await.unwrap();
    let members = std::fs::create_dir_all(dir.path().join("members"));
    members.unwrap();
    for (file, name, attrs) in [
        ("ada", "Dr. Ada", &["role:doctor", "dept:cardiology"][..]),
        ("sam", "Nurse Sam", &["role:nurse", "dept:cardiology"][..]),
        ("lee", "Dr. Lee", &["role:doctor", "dept:neurology"][..]),
        ("pat", "Pat", &["role:patient"][..]),
        (
            "eve",
            "Dr. Eve",
            &["role:doctor", medseal::EMERGENCY_ATTRIBUTE][..],
        ),
    ] {
        let member = issue(&authority, name, attrs);
        vault.register_member(&authority, &member).await.unwrap();
        std::fs::write(
            dir.path().join("members").join(format!("{file}.key")),
            member.to_bytes(),
        )
        .unwrap();
    }
    let params = medseal::KdfParams::new(64, 1, 1).unwrap();
    std::fs::write(
        dir.path().join("authority.key"),
        authority
            .seal(AUTHORITY_PASSPHRASE.as_bytes(), &params, &mut OsRng)
            .unwrap(),
    )
    .unwrap();
    let mut settings = Config {
        dir: dir.path().to_owned(),
        ..Config::default()
    };
    config(&mut settings);
    let app = App::new(vault, settings);
    let router = app::router(app.clone());
    Hospital {
        dir,
        app,
        router,
        authority,
    }
}

/// A browser's view: its cookies, and the last page's CSRF token.
pub struct Browser {
    router: Router,
    cookies: Vec<(String, String)>,
}

pub struct Page {
    pub status: StatusCode,
    pub headers: axum::http::HeaderMap,
    pub body: Vec<u8>,
}

impl Page {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn location(&self) -> Option<String> {
        self.headers
            .get(header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    }

    pub fn header(&self, name: header::HeaderName) -> String {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    }

    /// The value of the first hidden `csrf` field of the page.
    pub fn csrf(&self) -> String {
        hidden(&self.text(), "csrf").expect("a CSRF field on the page")
    }
}

/// The value of the first `<input ... name="NAME" value="...">` of `html`.
pub fn hidden(html: &str, name: &str) -> Option<String> {
    let at = html.find(&format!("name=\"{name}\" value=\""))?;
    let rest = &html[at + name.len() + 15..];
    Some(rest[..rest.find('"')?].to_owned())
}

impl Browser {
    pub fn new(router: &Router) -> Self {
        Self {
            router: router.clone(),
            cookies: Vec::new(),
        }
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    pub async fn send(&mut self, request: Request<Body>) -> Page {
        let mut request = request;
        if !self.cookies.is_empty() {
            request
                .headers_mut()
                .insert(header::COOKIE, self.cookie_header().parse().unwrap());
        }
        let response = self.router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        for set in headers.get_all(header::SET_COOKIE) {
            let text = set.to_str().unwrap();
            let (pair, _) = text.split_once(';').unwrap_or((text, ""));
            let (k, v) = pair.split_once('=').unwrap();
            self.cookies.retain(|(name, _)| name != k);
            if !v.is_empty() {
                self.cookies.push((k.to_owned(), v.to_owned()));
            }
        }
        let body = response
            .into_body()
            .collect()
            .await
            .unwrap()
            .to_bytes()
            .to_vec();
        Page {
            status,
            headers,
            body,
        }
    }

    pub async fn get(&mut self, uri: &str) -> Page {
        self.send(Request::get(uri).body(Body::empty()).unwrap())
            .await
    }

    pub async fn post_form(&mut self, uri: &str, fields: &[(&str, &str)]) -> Page {
        let body = fields
            .iter()
            .map(|(k, v)| format!("{}={}", urlencode(k), urlencode(v)))
            .collect::<Vec<_>>()
            .join("&");
        self.send(
            Request::post(uri)
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(Body::from(body))
                .unwrap(),
        )
        .await
    }

    /// Signs in as the key `name` (through the sign-in page and its token).
    pub async fn sign_in(&mut self, name: &str) -> Page {
        self.sign_in_with(name, "").await
    }

    pub async fn sign_in_with(&mut self, name: &str, passphrase: &str) -> Page {
        let form = self.get("/signin").await;
        let csrf = form.csrf();
        self.post_form(
            "/signin",
            &[("csrf", &csrf), ("name", name), ("passphrase", passphrase)],
        )
        .await
    }
}

pub fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// One part of a multipart body: name, file name and content type if a file, bytes.
pub type Part<'a> = (&'a str, Option<(&'a str, &'a str)>, &'a [u8]);

/// A multipart body of `parts` in order: its content type and bytes.
pub fn multipart(parts: &[Part<'_>]) -> (String, Vec<u8>) {
    let boundary = "clinic-test-boundary-7f3a";
    let mut body = Vec::new();
    for (name, file, bytes) in parts {
        body.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
        match file {
            Some((filename, content_type)) => body.extend_from_slice(
                format!(
                    "Content-Disposition: form-data; name=\"{name}\"; filename=\"{filename}\"\r\nContent-Type: {content_type}\r\n\r\n"
                )
                .as_bytes(),
            ),
            None => body.extend_from_slice(
                format!("Content-Disposition: form-data; name=\"{name}\"\r\n\r\n").as_bytes(),
            ),
        }
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

const PNG: &[u8] = b"\x89PNG\r\n\x1a\n-not-really-an-image-but-bytes-to-compare";

/// Stores a cardiology record about Pat as the signed-in browser; returns its page path.
async fn store_record(browser: &mut Browser, title: &str) -> String {
    let form = browser.get("/records/new").await;
    assert_eq!(form.status, StatusCode::OK);
    let csrf = form.csrf();
    let submission = hidden(&form.text(), "submission").unwrap();
    let report = vec![b'%'; 300 * 1024];
    let (content_type, body) = multipart(&[
        ("csrf", None, csrf.as_bytes()),
        ("submission", None, submission.as_bytes()),
        ("title", None, title.as_bytes()),
        ("patient", None, b"Pat"),
        ("policy", None, b"role:doctor and dept:cardiology"),
        ("keywords", None, b"I21.4, chest pain"),
        ("emergency", None, medseal::EMERGENCY_ATTRIBUTE.as_bytes()),
        ("file", Some(("report.pdf", "application/pdf")), &report),
        ("file", Some(("ecg.png", "image/png")), PNG),
    ]);
    let page = browser
        .send(
            Request::post("/records")
                .header(header::CONTENT_TYPE, content_type)
                .body(Body::from(body))
                .unwrap(),
        )
        .await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.text());
    page.location().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_carry_the_security_headers_and_the_cookies_are_strict() {
    let h = hospital(|_| {}).await;
    let mut browser = Browser::new(&h.router);
    let page = browser.get("/signin").await;
    assert_eq!(page.status, StatusCode::OK);
    assert_eq!(page.header(header::CONTENT_SECURITY_POLICY), app::CSP);
    assert!(!app::CSP.contains("unsafe-inline") && app::CSP.contains("frame-ancestors 'none'"));
    assert_eq!(page.header(header::X_CONTENT_TYPE_OPTIONS), "nosniff");
    assert_eq!(page.header(header::X_FRAME_OPTIONS), "DENY");
    assert_eq!(page.header(header::CACHE_CONTROL), "no-store");
    assert_eq!(page.header(header::REFERRER_POLICY), "same-origin");
    let signin_cookie = page.header(header::SET_COOKIE);
    assert!(signin_cookie.contains("HttpOnly") && signin_cookie.contains("SameSite=Strict"));
    assert!(!signin_cookie.contains("Secure"), "plain HTTP on loopback");

    let signed = browser.sign_in("ada").await;
    assert_eq!(signed.status, StatusCode::SEE_OTHER);
    assert_eq!(signed.location().as_deref(), Some("/records"));
    let session = signed
        .headers
        .get_all(header::SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|c| c.starts_with("medseal_session="))
        .unwrap();
    assert!(session.contains("HttpOnly") && session.contains("SameSite=Strict"));
    // The key never reaches the browser: the cookie is a random token.
    assert_eq!(
        session.split(';').next().unwrap().len(),
        "medseal_session=".len() + 64
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn off_loopback_cookies_are_secure_and_plain_keys_cannot_sign_in() {
    let h = hospital(|c| c.loopback = false).await;
    let mut browser = Browser::new(&h.router);
    let page = browser.get("/signin").await;
    assert!(page.header(header::SET_COOKIE).contains("Secure"));
    assert!(
        page.header(header::STRICT_TRANSPORT_SECURITY)
            .contains("max-age")
    );
    let refused = browser.sign_in("ada").await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert!(refused.text().contains("not protected by a passphrase"));
    assert_eq!(h.app.sessions.len(), 0);
    // A protected key signs in with its passphrase only.
    let path = h.dir.path().join("members").join("ada.key");
    let member = Member::from_bytes(&std::fs::read(&path).unwrap()).unwrap();
    let params = medseal::KdfParams::new(64, 1, 1).unwrap();
    std::fs::write(
        &path,
        member.seal(b"correct horse", &params, &mut OsRng).unwrap(),
    )
    .unwrap();
    for wrong in ["", "incorrect horse"] {
        let page = browser.sign_in_with("ada", wrong).await;
        assert_eq!(page.status, StatusCode::UNAUTHORIZED, "{wrong:?}");
        assert!(
            !page.text().contains("horse"),
            "the passphrase is never echoed"
        );
    }
    let signed = browser.sign_in_with("ada", "correct horse").await;
    assert_eq!(signed.status, StatusCode::SEE_OTHER);
    assert_eq!(h.app.sessions.len(), 1);
    assert!(signed.header(header::SET_COOKIE).contains("Secure"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_needs_its_token_and_a_known_key() {
    let h = hospital(|_| {}).await;
    let mut browser = Browser::new(&h.router);
    // No token (a forged cross-site sign-in).
    let forged = browser
        .post_form("/signin", &[("csrf", "x"), ("name", "ada")])
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    // Unknown names and names that are not file names.
    for name in ["nobody", "../authority", ".hidden", ""] {
        let page = browser.sign_in(name).await;
        assert_eq!(page.status, StatusCode::UNAUTHORIZED, "{name}");
        assert!(page.text().contains("No key with that name"), "{name}");
    }
    assert_eq!(h.app.sessions.len(), 0);
    // Signed out: pages redirect to the sign-in page, forms are refused.
    let list = browser.get("/records").await;
    assert_eq!(list.status, StatusCode::SEE_OTHER);
    assert_eq!(list.location().as_deref(), Some("/signin"));
    let post = browser
        .post_form("/records/1/share", &[("csrf", "x"), ("member", "Pat")])
        .await;
    assert_eq!(post.status, StatusCode::UNAUTHORIZED);
    assert!(post.text().contains("Sign in again"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_is_stored_read_downloaded_and_shared_through_the_forms() {
    let h = hospital(|_| {}).await;
    let mut ada = Browser::new(&h.router);
    ada.sign_in("ada").await;
    let path = store_record(&mut ada, "Cardiology report").await;
    let page = ada.get(&path).await;
    assert_eq!(page.status, StatusCode::OK);
    let text = page.text();
    assert!(text.contains("Cardiology report") && text.contains("report.pdf"));
    assert!(text.contains("Its patient, Pat"));
    assert!(text.contains("Created by Dr. Ada"), "audit timeline");
    assert!(text.contains("role:doctor and dept:cardiology"));

    // Download: the same bytes, as an attachment, whatever the type.
    let download = ada.get(&format!("{path}/attachments/1")).await;
    assert_eq!(download.status, StatusCode::OK);
    assert_eq!(download.body, PNG);
    assert_eq!(
        download.header(header::CONTENT_TYPE),
        "application/octet-stream"
    );
    assert!(
        download
            .header(header::CONTENT_DISPOSITION)
            .starts_with("attachment;")
    );
    let big = ada.get(&format!("{path}/attachments/0")).await;
    assert_eq!(big.body, vec![b'%'; 300 * 1024]);
    // Inline preview: its type, framed by the portal only.
    let inline = ada.get(&format!("{path}/attachments/1?inline=1")).await;
    assert_eq!(inline.header(header::CONTENT_TYPE), "image/png");
    assert!(
        inline
            .header(header::CONTENT_SECURITY_POLICY)
            .contains("frame-ancestors 'self'")
    );
    assert_eq!(inline.header(header::X_FRAME_OPTIONS), "SAMEORIGIN");
    let missing = ada.get(&format!("{path}/attachments/9")).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);

    // The nurse's key does not satisfy the policy.
    let mut sam = Browser::new(&h.router);
    sam.sign_in("sam").await;
    let refused = sam.get(&path).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert!(refused.text().contains("Access denied"));
    assert!(
        !refused.text().contains("report.pdf"),
        "nothing of the record leaks"
    );
    let refused = sam.get(&format!("{path}/attachments/0")).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);

    // Only the patient (the controller) shares; Dr. Ada may not.
    let csrf = ada.get(&path).await.csrf();
    let not_controller = ada
        .post_form(
            &format!("{path}/share"),
            &[("csrf", &csrf), ("member", "Dr. Lee")],
        )
        .await;
    assert_eq!(not_controller.status, StatusCode::FORBIDDEN);
    let mut pat = Browser::new(&h.router);
    pat.sign_in("pat").await;
    let about = pat.get("/records?view=about").await;
    assert!(about.text().contains("Cardiology report"));
    let pat_page = pat.get(&path).await;
    assert_eq!(pat_page.status, StatusCode::OK);
    // Without the token: refused, nothing changes.
    let forged = pat
        .post_form(
            &format!("{path}/share"),
            &[("csrf", "forged"), ("member", "Dr. Lee")],
        )
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    let mut lee = Browser::new(&h.router);
    lee.sign_in("lee").await;
    assert_eq!(lee.get(&path).await.status, StatusCode::FORBIDDEN);
    let shared = pat
        .post_form(
            &format!("{path}/share"),
            &[("csrf", &pat_page.csrf()), ("member", "Dr. Lee")],
        )
        .await;
    assert_eq!(shared.status, StatusCode::SEE_OTHER, "{}", shared.text());
    let lee_page = lee.get(&path).await;
    assert_eq!(lee_page.status, StatusCode::OK);
    assert!(
        lee.get("/records?view=shared")
            .await
            .text()
            .contains("Cardiology report")
    );
    assert!(lee_page.text().contains("Pat gave access to Dr. Lee"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_check_the_token_first_and_keep_to_the_limit() {
    let h = hospital(|c| c.max_upload = 64 * 1024).await;
    let mut ada = Browser::new(&h.router);
    ada.sign_in("ada").await;
    let form = ada.get("/records/new").await;
    let csrf = form.csrf();
    type Owned = (&'static str, Option<(&'static str, &'static str)>, Vec<u8>);
    let post = |parts: Vec<Owned>| {
        let parts: Vec<Part<'_>> = parts
            .iter()
            .map(|(n, f, b)| (*n, *f, b.as_slice()))
            .collect();
        let (content_type, body) = multipart(&parts);
        Request::post("/records")
            .header(header::CONTENT_TYPE, content_type)
            .body(Body::from(body))
            .unwrap()
    };
    // The token must come first.
    let late = ada
        .send(post(vec![
            ("title", None, b"x".to_vec()),
            ("csrf", None, csrf.clone().into_bytes()),
            ("policy", None, b"role:doctor".to_vec()),
        ]))
        .await;
    assert_eq!(late.status, StatusCode::FORBIDDEN);
    let wrong = ada
        .send(post(vec![
            ("csrf", None, b"wrong".to_vec()),
            ("title", None, b"x".to_vec()),
            ("policy", None, b"role:doctor".to_vec()),
        ]))
        .await;
    assert_eq!(wrong.status, StatusCode::FORBIDDEN);
    // Larger than the limit: refused, nothing stored, no spool left behind.
    let large = ada
        .send(post(vec![
            ("csrf", None, csrf.clone().into_bytes()),
            ("title", None, b"x".to_vec()),
            ("policy", None, b"role:doctor".to_vec()),
            (
                "file",
                Some(("big.bin", "application/octet-stream")),
                vec![7; 200 * 1024],
            ),
        ]))
        .await;
    assert_eq!(large.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(large.text().contains("exceed this portal"));
    // A bad policy is a page that says so.
    let bad = ada
        .send(post(vec![
            ("csrf", None, csrf.clone().into_bytes()),
            ("title", None, b"x".to_vec()),
            ("policy", None, b"role:doctor and (".to_vec()),
        ]))
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(bad.text().contains("The policy cannot be used"));
    assert!(!bad.text().contains("panicked"));
    let me = ada.get("/records").await;
    assert!(me.text().contains("not stored any records"));
    let spools = std::fs::read_dir(h.dir.path().join(crate::spool::UPLOADS_DIR))
        .map(|d| d.count())
        .unwrap_or(0);
    assert_eq!(spools, 0, "upload folders are removed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resubmitted_form_stores_the_record_once() {
    let h = hospital(|_| {}).await;
    let mut ada = Browser::new(&h.router);
    ada.sign_in("ada").await;
    let form = ada.get("/records/new").await;
    let (csrf, submission) = (form.csrf(), hidden(&form.text(), "submission").unwrap());
    let (content_type, body) = multipart(&[
        ("csrf", None, csrf.as_bytes()),
        ("submission", None, submission.as_bytes()),
        ("title", None, b"Once"),
        ("policy", None, b"role:doctor"),
    ]);
    let mut locations = Vec::new();
    for _ in 0..2 {
        let page = ada
            .send(
                Request::post("/records")
                    .header(header::CONTENT_TYPE, content_type.clone())
                    .body(Body::from(body.clone()))
                    .unwrap(),
            )
            .await;
        assert_eq!(page.status, StatusCode::SEE_OTHER);
        locations.push(page.location().unwrap());
    }
    assert_eq!(locations[0], locations[1]);
    assert!(ada.get("/records").await.text().contains("1 records"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cross_site_posts_are_refused_before_anything_else() {
    let h = hospital(|_| {}).await;
    let mut ada = Browser::new(&h.router);
    ada.sign_in("ada").await;
    let csrf = ada.get("/records/new").await.csrf();
    for (name, value) in [
        ("origin", "http://evil.example"),
        ("sec-fetch-site", "cross-site"),
    ] {
        let page = ada
            .send(
                Request::post("/signout")
                    .header(header::HOST, "127.0.0.1:8080")
                    .header(name, value)
                    .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                    .body(Body::from(format!("csrf={csrf}")))
                    .unwrap(),
            )
            .await;
        assert_eq!(page.status, StatusCode::FORBIDDEN, "{name}");
    }
    assert_eq!(h.app.sessions.len(), 1, "still signed in");
    // The same request from the portal's own page signs out.
    let out = ada
        .send(
            Request::post("/signout")
                .header(header::HOST, "127.0.0.1:8080")
                .header(header::ORIGIN, "http://127.0.0.1:8080")
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(Body::from(format!("csrf={csrf}")))
                .unwrap(),
        )
        .await;
    assert_eq!(out.status, StatusCode::SEE_OTHER);
    assert_eq!(h.app.sessions.len(), 0);
    assert_eq!(ada.get("/records").await.status, StatusCode::SEE_OTHER);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_finds_what_the_reader_may_open_and_suggests_codes() {
    let h = hospital(|_| {}).await;
    let mut ada = Browser::new(&h.router);
    ada.sign_in("ada").await;
    store_record(&mut ada, "Infarction follow-up").await;
    for q in ["I21.4", "i214", "icd10:I21.4", "chest pain"] {
        let page = ada.get(&format!("/search?q={}", urlencode(q))).await;
        assert_eq!(page.status, StatusCode::OK, "{q}");
        assert!(page.text().contains("Infarction follow-up"), "{q}");
    }
    let none = ada.get("/search?q=E11.9").await;
    assert!(none.text().contains("0 records match"));
    let mut sam = Browser::new(&h.router);
    sam.sign_in("sam").await;
    let hidden_from_nurse = sam.get("/search?q=I21.4").await;
    assert!(!hidden_from_nurse.text().contains("Infarction follow-up"));
    let bad = ada.get("/search?q=nosuchtype%3Ax").await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);

    let suggestions = ada.get("/suggest?q=myocardial%20infarction").await;
    let list: Vec<serde_json::Value> = serde_json::from_slice(&suggestions.body).unwrap();
    assert!(!list.is_empty() && list.len() <= 12);
    assert!(list.iter().all(|s| {
        s["label"]
            .as_str()
            .unwrap()
            .to_lowercase()
            .contains("myocardial infarction")
    }));
    let by_code = ada.get("/suggest?q=I21.4").await;
    let list: Vec<serde_json::Value> = serde_json::from_slice(&by_code.body).unwrap();
    assert_eq!(list[0]["value"], "I21.4");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_end_when_idle_and_errors_are_pages() {
    let h = hospital(|c| c.idle_timeout = Duration::from_millis(300)).await;
    let mut ada = Browser::new(&h.router);
    ada.sign_in("ada").await;
    assert_eq!(ada.get("/records").await.status, StatusCode::OK);
    let unknown = ada.get("/records/999999").await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    assert!(unknown.text().contains("What to do"));
    let nonsense = ada.get("/records/not-a-number").await;
    assert_eq!(nonsense.status, StatusCode::NOT_FOUND);
    let nowhere = ada.get("/no/such/page").await;
    assert_eq!(nowhere.status, StatusCode::NOT_FOUND);
    tokio::time::sleep(Duration::from_millis(400)).await;
    let expired = ada.get("/records").await;
    assert_eq!(expired.status, StatusCode::SEE_OTHER);
    assert_eq!(h.app.sessions.len(), 0);
    let _ = &h.authority;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outside_doctor_asks_the_patient_decides_and_break_glass_is_logged() {
    let h = hospital(|_| {}).await;
    let mut ada = Browser::new(&h.router);
    ada.sign_in("ada").await;
    let path = store_record(&mut ada, "Angiography").await;

    // Dr. Lee (neurology) is refused, and asks.
    let mut lee = Browser::new(&h.router);
    lee.sign_in("lee").await;
    let locked = lee.get(&path).await;
    assert_eq!(locked.status, StatusCode::FORBIDDEN);
    assert!(locked.text().contains("Request access"));
    let asked = lee
        .post_form(&format!("{path}/request"), &[("csrf", &locked.csrf())])
        .await;
    assert_eq!(asked.status, StatusCode::OK, "{}", asked.text());
    assert!(asked.text().contains("Request sent"));

    // Pat sees the request and approves it (without the token: refused).
    let mut pat = Browser::new(&h.router);
    pat.sign_in("pat").await;
    let pending = pat.get("/requests").await;
    assert!(
        pending.text().contains("Approve Dr. Lee"),
        "{}",
        pending.text()
    );
    let record = path.rsplit('/').next().unwrap();
    let requester = hidden(&pending.text(), "requester").unwrap();
    let fields = |csrf: &str| {
        vec![
            ("csrf".to_owned(), csrf.to_owned()),
            ("record".to_owned(), record.to_owned()),
            ("requester".to_owned(), requester.clone()),
            ("decision".to_owned(), "approve".to_owned()),
        ]
    };
    let forged = fields("forged");
    let forged: Vec<(&str, &str)> = forged
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(
        pat.post_form("/requests/answer", &forged).await.status,
        StatusCode::FORBIDDEN
    );
    let real = fields(&pending.csrf());
    let real: Vec<(&str, &str)> = real.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let answered = pat.post_form("/requests/answer", &real).await;
    assert_eq!(
        answered.status,
        StatusCode::SEE_OTHER,
        "{}",
        answered.text()
    );
    assert!(
        pat.get("/requests")
            .await
            .text()
            .contains("Nobody is waiting")
    );
    let opened = lee.get(&path).await;
    assert_eq!(opened.status, StatusCode::OK);
    let trail = opened.text();
    assert!(trail.contains("Dr. Lee asked Pat for access"));
    assert!(trail.contains("Pat gave access to Dr. Lee"));

    // Dr. Eve opens it only through emergency access, with a reason, logged first.
    let mut eve = Browser::new(&h.router);
    eve.sign_in("eve").await;
    let locked = eve.get(&path).await;
    assert_eq!(locked.status, StatusCode::FORBIDDEN);
    assert!(locked.text().contains("Emergency access only"));
    let csrf = locked.csrf();
    let blank = eve
        .post_form(
            &format!("{path}/emergency"),
            &[("csrf", &csrf), ("reason", " ")],
        )
        .await;
    assert_eq!(blank.status, StatusCode::BAD_REQUEST);
    let glass = eve
        .post_form(
            &format!("{path}/emergency"),
            &[("csrf", &csrf), ("reason", "unconscious in the ER")],
        )
        .await;
    assert_eq!(glass.status, StatusCode::OK, "{}", glass.text());
    assert!(glass.text().contains("Opened through emergency access"));
    assert!(
        glass
            .text()
            .contains("EMERGENCY access by Dr. Eve: “unconscious in the ER”")
    );
    let image = eve.get(&format!("{path}/attachments/1")).await;
    assert_eq!(
        image.body, PNG,
        "attachments open for the rest of the session"
    );
    // The nurse has no emergency attribute: nothing is logged, nothing opens.
    let mut sam = Browser::new(&h.router);
    sam.sign_in("sam").await;
    let csrf = sam.get(&path).await.csrf();
    let refused = sam
        .post_form(
            &format!("{path}/emergency"),
            &[("csrf", &csrf), ("reason", "curious")],
        )
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert!(!pat.get(&path).await.text().contains("curious"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_authority_registers_revokes_and_renews_from_its_pages() {
    let h = hospital(|_| {}).await;
    let mut admin = Browser::new(&h.router);
    let wrong = admin.sign_in_with("authority", "guess").await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    let signed = admin.sign_in_with("authority", AUTHORITY_PASSPHRASE).await;
    assert_eq!(signed.location().as_deref(), Some("/members"));
    // Records are a member's business: the authority is sent to its page.
    assert_eq!(
        admin.get("/records").await.location().as_deref(),
        Some("/members")
    );
    let mut sam = Browser::new(&h.router);
    sam.sign_in("sam").await;
    assert_eq!(sam.get("/members").await.status, StatusCode::FORBIDDEN);

    // A key issued but not registered yet: registered from the page.
    let kim = issue(&h.authority, "Dr. Kim", &["role:doctor", "dept:cardiology"]);
    std::fs::write(h.dir.path().join("members/kim.key"), kim.to_bytes()).unwrap();
    let page = admin.get("/members").await;
    let text = page.text();
    assert!(text.contains("Nurse Sam") && text.contains("Active"));
    assert!(text.contains("Register kim"));
    let csrf = page.csrf();
    let registered = admin
        .post_form("/members/register", &[("csrf", &csrf), ("name", "kim")])
        .await;
    assert_eq!(
        registered.status,
        StatusCode::SEE_OTHER,
        "{}",
        registered.text()
    );
    assert!(admin.get("/members").await.text().contains("Dr. Kim"));

    // Nurse Sam leaves: without the token nothing happens; with it, Sam is revoked and
    // the holders of Sam's attributes are named for renewal.
    let sam_address = format!("{:#x}", issue_address(&h, "sam"));
    let forged = admin
        .post_form(
            "/members/revoke",
            &[("csrf", "x"), ("member", &sam_address), ("reason", "left")],
        )
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    let revoked = admin
        .post_form(
            "/members/revoke",
            &[
                ("csrf", &csrf),
                ("member", &sam_address),
                ("reason", "left the hospital"),
            ],
        )
        .await;
    assert_eq!(revoked.status, StatusCode::OK, "{}", revoked.text());
    let text = revoked.text();
    assert!(text.contains("Revoked Nurse Sam"));
    assert!(
        text.contains("Renew ada") && text.contains("Renew kim"),
        "{text}"
    );
    assert!(
        admin
            .get("/members")
            .await
            .text()
            .contains("left the hospital")
    );

    // Dr. Ada's key, renewed from the page, reads what she stores afterwards; Sam's
    // key, revoked, does not.
    let before = std::fs::read(h.dir.path().join("members/ada.key")).unwrap();
    let renewed = admin
        .post_form("/members/renew", &[("csrf", &csrf), ("name", "ada")])
        .await;
    assert_eq!(renewed.status, StatusCode::SEE_OTHER, "{}", renewed.text());
    assert_ne!(
        std::fs::read(h.dir.path().join("members/ada.key")).unwrap(),
        before
    );
    let mut ada = Browser::new(&h.router);
    ada.sign_in("ada").await;
    let path = store_record(&mut ada, "After Sam left").await;
    assert_eq!(ada.get(&path).await.status, StatusCode::OK);
    assert!(
        ada.get("/search?q=I21.4")
            .await
            .text()
            .contains("After Sam left")
    );
    let mut sam = Browser::new(&h.router);
    sam.sign_in("sam").await;
    assert_eq!(sam.get(&path).await.status, StatusCode::FORBIDDEN);
}

/// The address of the key file `name` of the hospital.
fn issue_address(h: &Hospital, name: &str) -> medseal::Address {
    let bytes = std::fs::read(h.dir.path().join(format!("members/{name}.key"))).unwrap();
    Member::from_bytes(&bytes).unwrap().address()
}
