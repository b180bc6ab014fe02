//! Signing in and out, sessions, and the checks on every state-changing request.
//!
//! A session is a random 256-bit token in an `HttpOnly`, `SameSite=Strict` cookie (also
//! `Secure` off loopback) naming an entry of an in-memory table: the member's key stays
//! in this process and never reaches the browser. Every state-changing request must carry
//! the session's CSRF token in its body (a hidden form field), compared in constant time;
//! the sign-in form has its own token bound to a cookie (double submit). Requests whose
//! `Origin` or `Sec-Fetch-Site` say they come from another site are refused first.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Form, http};
use maud::html;
use medseal::{Address, Authority, Member};
use rand_core::{OsRng, RngCore};
use serde::Deserialize;
use subtle::ConstantTimeEq;

use crate::app::App;
use crate::failure::Failure;
use crate::pages;

/// Name of the session cookie.
pub const SESSION_COOKIE: &str = "medseal_session";
/// Name of the sign-in form's CSRF cookie.
const SIGNIN_COOKIE: &str = "medseal_signin";
/// Folder of member keys in the data directory (as the `medseal` command writes them).
pub const MEMBERS_DIR: &str = "members";
/// Longest member name (it is a file name).
const MAX_MEMBER_NAME: usize = 64;

/// Who a session belongs to.
#[derive(Clone)]
pub enum Who {
    /// A member, with their key.
    Member(Arc<Member>),
    /// The attribute authority, with its secret key (its pages only: the members).
    Authority(Arc<Authority>),
}

/// A signed-in member or the authority.
pub struct Session {
    pub who: Who,
    pub csrf: String,
    /// Records opened this session through emergency access (logged once, with the
    /// reason), so that their attachments can be read.
    pub emergency: HashMap<medseal::RecordId, Arc<medseal::OpenedRecord>>,
    created: Instant,
    last_seen: Instant,
}

/// The table of sessions, by token.
#[derive(Default)]
pub struct Sessions(Mutex<HashMap<String, Arc<Mutex<Session>>>>);

impl Sessions {
    fn insert(&self, session: Session) -> String {
        let token = random_token();
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(token.clone(), Arc::new(Mutex::new(session)));
        token
    }

    fn remove(&self, token: &str) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(token);
    }

    /// The live session of `token`, touched; expired ones are removed.
    fn touch(&self, token: &str, idle: Duration, max: Duration) -> Option<Arc<Mutex<Session>>> {
        let entry = self
            .0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(token)
            .cloned()?;
        let mut session = entry.lock().unwrap_or_else(PoisonError::into_inner);
        if session.last_seen.elapsed() > idle || session.created.elapsed() > max {
            drop(session);
            self.remove(token);
            return None;
        }
        session.last_seen = Instant::now();
        drop(session);
        Some(entry)
    }

    /// Drops idle and expired sessions.
    pub fn sweep(&self, idle: Duration, max: Duration) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .retain(|_, s| {
                let s = s.lock().unwrap_or_else(PoisonError::into_inner);
                s.last_seen.elapsed() <= idle && s.created.elapsed() <= max
            });
    }

    /// Number of live sessions (tests).
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).len()
    }
}

pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    OsRng.fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// Any live session behind a request (signing out needs no more).
pub struct AnySession {
    pub who: Who,
    pub csrf: String,
    token: String,
    session: Arc<Mutex<Session>>,
}

impl AnySession {
    /// Checks a submitted CSRF token against the session's.
    pub fn check_csrf(&self, submitted: &str) -> Result<(), Failure> {
        check_token(submitted, &self.csrf)
    }
}

fn check_token(submitted: &str, expected: &str) -> Result<(), Failure> {
    if bool::from(submitted.as_bytes().ct_eq(expected.as_bytes())) {
        Ok(())
    } else {
        Err(Failure::csrf())
    }
}

impl FromRequestParts<App> for AnySession {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, app: &App) -> Result<Self, Response> {
        let token = cookie(&parts.headers, SESSION_COOKIE);
        let found = token.and_then(|t| {
            app.sessions
                .touch(&t, app.config.idle_timeout, app.config.max_session)
                .map(|s| (t, s))
        });
        match found {
            Some((token, session)) => {
                let (who, csrf) = {
                    let s = session.lock().unwrap_or_else(PoisonError::into_inner);
                    (s.who.clone(), s.csrf.clone())
                };
                Ok(Self {
                    who,
                    csrf,
                    token,
                    session,
                })
            }
            None if parts.method == Method::GET => Err(Redirect::to("/signin").into_response()),
            None => Err(Failure::signed_out().into_page(None)),
        }
    }
}

/// The member behind a request (an extractor: handlers that take it require a member's
/// session; without one a page asks to sign in, the authority is sent to its pages).
#[derive(Clone)]
pub struct SignedIn {
    pub member: Arc<Member>,
    pub csrf: String,
    session: Arc<Mutex<Session>>,
}

impl SignedIn {
    /// Checks a submitted CSRF token against the session's.
    pub fn check_csrf(&self, submitted: &str) -> Result<(), Failure> {
        check_token(submitted, &self.csrf)
    }

    pub fn address(&self) -> Address {
        self.member.address()
    }

    /// The record this session opened through emergency access, if it did.
    pub fn emergency_opened(
        &self,
        record: medseal::RecordId,
    ) -> Option<Arc<medseal::OpenedRecord>> {
        let session = self.session.lock().unwrap_or_else(PoisonError::into_inner);
        session.emergency.get(&record).cloned()
    }

    /// Keeps a record opened through emergency access for the rest of the session.
    pub fn keep_emergency(&self, opened: Arc<medseal::OpenedRecord>) {
        let mut session = self.session.lock().unwrap_or_else(PoisonError::into_inner);
        session.emergency.insert(opened.record, opened);
    }
}

impl FromRequestParts<App> for SignedIn {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, app: &App) -> Result<Self, Response> {
        let any = AnySession::from_request_parts(parts, app).await?;
        match any.who {
            Who::Member(member) => Ok(Self {
                member,
                csrf: any.csrf,
                session: any.session,
            }),
            Who::Authority(_) if parts.method == Method::GET => {
                Err(Redirect::to("/members").into_response())
            }
            Who::Authority(_) => Err(Failure::authority_only_members().into_page(None)),
        }
    }
}

/// The authority behind a request (its pages only).
#[derive(Clone)]
pub struct AuthoritySignedIn {
    pub authority: Arc<Authority>,
    pub csrf: String,
}

impl AuthoritySignedIn {
    pub fn check_csrf(&self, submitted: &str) -> Result<(), Failure> {
        check_token(submitted, &self.csrf)
    }
}

impl FromRequestParts<App> for AuthoritySignedIn {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, app: &App) -> Result<Self, Response> {
        let any = AnySession::from_request_parts(parts, app).await?;
        match any.who {
            Who::Authority(authority) => Ok(Self {
                authority,
                csrf: any.csrf,
            }),
            Who::Member(_) => Err(Failure::not_authority().into_page(None)),
        }
    }
}

/// The value of cookie `name` in the request's `Cookie` headers.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_owned())
}

fn set_cookie(app: &App, name: &str, value: &str, max_age: Option<u64>) -> HeaderValue {
    let mut text = format!("{name}={value}; Path=/; HttpOnly; SameSite=Strict");
    if let Some(age) = max_age {
        text.push_str(&format!("; Max-Age={age}"));
    }
    if !app.config.loopback {
        text.push_str("; Secure");
    }
    HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// Refuses a state-changing request that a browser says comes from another site (the
/// CSRF tokens are the main defence; this catches it before any body is read).
pub async fn same_origin(request: Request, next: Next) -> Response {
    let safe = matches!(*request.method(), Method::GET | Method::HEAD);
    if !safe && !is_same_origin(request.headers()) {
        return Failure::csrf().into_page(None);
    }
    next.run(request).await
}

/// A browser's own word where it gives one (`Sec-Fetch-Site`, sent by every current
/// browser and not settable by a page), else `Origin` against `Host`; neither (older or
/// non-browser clients) leaves the decision to the CSRF token.
fn is_same_origin(headers: &HeaderMap) -> bool {
    if let Some(site) = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()) {
        return matches!(site, "same-origin" | "none");
    }
    match (
        headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()),
        headers.get(header::HOST).and_then(|v| v.to_str().ok()),
    ) {
        (Some(origin), Some(host)) => origin
            .split_once("://")
            .map(|(_, rest)| rest)
            .is_some_and(|rest| rest == host),
        (None, _) => true,
        (Some(_), None) => false,
    }
}

/// Member keys of the data directory: `(name, address)` of every key file that loads
/// or whose address can be read (sealed keys are listed by name only when they cannot).
pub fn local_keys(dir: &Path) -> Vec<(String, Address)> {
    let Ok(entries) = std::fs::read_dir(dir.join(MEMBERS_DIR)) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        if path.extension().and_then(|e| e.to_str()) != Some("key") {
            continue;
        }
        let Some(name) = path.file_stem().and_then(|s| s.to_str()) else {
            continue;
        };
        if let Ok(bytes) = std::fs::read(&path)
            && let Ok(member) = Member::from_bytes(&bytes)
        {
            out.push((name.to_owned(), member.address()));
        }
    }
    out.sort();
    out
}

fn valid_member_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_MEMBER_NAME
        && !name.starts_with(['.', '-'])
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// The name that signs in with the authority's key (`authority.key`) instead of a
/// member's.
pub const AUTHORITY_NAME: &str = "authority";

/// How one kind of key file is read: its sealed form (tried with the passphrase) and its
/// plain form (loopback only).
struct KeyKind<T> {
    what: &'static str,
    is_sealed: fn(&[u8]) -> bool,
    open_sealed: fn(&[u8], &[u8]) -> medseal::Result<T>,
    from_bytes: fn(&[u8]) -> medseal::Result<T>,
}

/// Reads and opens the key file at `path`; every way it can fail is a sign-in failure
/// that reveals nothing to the browser (the details go to the log).
fn open_key_file<T>(
    app: &App,
    path: &Path,
    passphrase: &str,
    kind: &KeyKind<T>,
) -> Result<T, Failure> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(Failure::unknown_key());
        }
        Err(e) => {
            tracing::error!(error = %e, key = kind.what, "cannot read a key file");
            return Err(Failure::internal());
        }
    };
    if (kind.is_sealed)(&bytes) {
        return (kind.open_sealed)(&bytes, passphrase.as_bytes()).map_err(|e| match e {
            medseal::Error::WrongPassphrase | medseal::Error::InvalidInput(_) => {
                Failure::unknown_key()
            }
            e => {
                tracing::error!(error = %e, key = kind.what, "a sealed key does not open");
                Failure::unreadable_key()
            }
        });
    }
    if !app.config.loopback {
        // Over the network a key needs a passphrase.
        return Err(Failure::unprotected_key());
    }
    (kind.from_bytes)(&bytes).map_err(|e| {
        tracing::error!(error = %e, key = kind.what, "a key does not load");
        Failure::unreadable_key()
    })
}

/// Loads the authority's key (`authority.key`).
fn load_authority(app: &App, passphrase: &str) -> Result<Authority, Failure> {
    let kind = KeyKind {
        what: "authority",
        is_sealed: medseal::is_sealed,
        open_sealed: Authority::open_sealed,
        from_bytes: Authority::from_bytes,
    };
    open_key_file(
        app,
        &app.config.dir.join("authority.key"),
        passphrase,
        &kind,
    )
}

/// Loads the key `members/<name>.key` (sealed ones with `passphrase`).
pub fn load_key(app: &App, name: &str, passphrase: &str) -> Result<Member, Failure> {
    if !valid_member_name(name) {
        return Err(Failure::unknown_key());
    }
    let path = app.config.dir.join(MEMBERS_DIR).join(format!("{name}.key"));
    let kind = KeyKind {
        what: "member",
        is_sealed: medseal::is_sealed_member,
        open_sealed: Member::open_sealed,
        from_bytes: Member::from_bytes,
    };
    open_key_file(app, &path, passphrase, &kind)
}

/// `GET /signin`.
pub async fn signin_page(State(app): State<App>, headers: HeaderMap) -> Response {
    let signed_in = cookie(&headers, SESSION_COOKIE).is_some_and(|t| {
        app.sessions
            .touch(&t, app.config.idle_timeout, app.config.max_session)
            .is_some()
    });
    if signed_in {
        return Redirect::to("/records").into_response();
    }
    signin_form(&app, None, "")
}

fn signin_form(app: &App, problem: Option<&str>, name: &str) -> Response {
    let token = random_token();
    let body = html! {
        h1 { "Sign in" }
        @if let Some(problem) = problem {
            p.problem role="alert" { (problem) }
        }
        form.card method="post" action="/signin" {
            input type="hidden" name="csrf" value=(token);
            label for="name" { "Member name" }
            input #name name="name" type="text" required autocomplete="username"
                autofocus value=(name) maxlength=(MAX_MEMBER_NAME)
                aria-describedby="name-help";
            p.help #name-help { "The name your key was issued under (its file in the data directory)." }
            label for="passphrase" { "Passphrase " span.optional { "(if your key is protected)" } }
            input #passphrase name="passphrase" type="password" autocomplete="current-password";
            button type="submit" { "Sign in" }
        }
    };
    let mut response = pages::page(None, "Sign in", body).into_response();
    response.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(app, SIGNIN_COOKIE, &token, Some(600)),
    );
    response
}

/// A form naming a key: sign-in, and the authority's register and renew.
#[derive(Deserialize)]
pub struct KeyForm {
    #[serde(default)]
    pub csrf: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub passphrase: String,
}

/// `POST /signin`.
pub async fn signin(
    State(app): State<App>,
    headers: HeaderMap,
    Form(form): Form<KeyForm>,
) -> Response {
    let expected = cookie(&headers, SIGNIN_COOKIE).unwrap_or_default();
    if expected.is_empty() || !bool::from(form.csrf.as_bytes().ct_eq(expected.as_bytes())) {
        return Failure::csrf().into_page(None);
    }
    let name = form.name.trim();
    let member = {
        let app = app.clone();
        let (name, passphrase) = (name.to_owned(), form.passphrase);
        // Opening a protected key runs a slow key derivation: off the async threads.
        tokio::task::spawn_blocking(move || {
            if name == AUTHORITY_NAME {
                load_authority(&app, &passphrase).map(|a| Who::Authority(Arc::new(a)))
            } else {
                load_key(&app, &name, &passphrase).map(|m| Who::Member(Arc::new(m)))
            }
        })
        .await
    };
    let member = match member {
        Ok(Ok(member)) => member,
        Ok(Err(failure)) => {
            // The same slow answer whatever went wrong (no hint for guessing names).
            tokio::time::sleep(Duration::from_millis(300)).await;
            return with_status(
                signin_form(&app, Some(&failure.message), name),
                failure.status,
            );
        }
        Err(_) => return Failure::internal().into_page(None),
    };
    let (home, who) = match member {
        Who::Member(m) => {
            tracing::info!(member = %m.address(), "signed in");
            ("/records", Who::Member(m))
        }
        Who::Authority(a) => {
            tracing::info!("the authority signed in");
            ("/members", Who::Authority(a))
        }
    };
    let now = Instant::now();
    let token = app.sessions.insert(Session {
        who,
        csrf: random_token(),
        emergency: HashMap::new(),
        created: now,
        last_seen: now,
    });
    let mut response = Redirect::to(home).into_response();
    let headers = response.headers_mut();
    headers.append(
        header::SET_COOKIE,
        set_cookie(&app, SESSION_COOKIE, &token, None),
    );
    headers.append(
        header::SET_COOKIE,
        set_cookie(&app, SIGNIN_COOKIE, "", Some(0)),
    );
    response
}

fn with_status(mut response: Response, status: http::StatusCode) -> Response {
    *response.status_mut() = status;
    response
}

#[derive(Deserialize)]
pub struct CsrfForm {
    #[serde(default)]
    pub csrf: String,
}

/// `POST /signout`.
pub async fn signout(
    State(app): State<App>,
    user: AnySession,
    Form(form): Form<CsrfForm>,
) -> Response {
    if let Err(failure) = user.check_csrf(&form.csrf) {
        return failure.into_page(None);
    }
    app.sessions.remove(&user.token);
    let mut response = Redirect::to("/signin").into_response();
    response.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(&app, SESSION_COOKIE, "", Some(0)),
    );
    response
}
