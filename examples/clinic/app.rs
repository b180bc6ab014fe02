//! The portal's state, its routes and the headers every response carries.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{get, post};
use medseal::{Address, Vault};

use crate::auth::Sessions;
use crate::{admin, assets, auth, pages, records};

/// Settings of a running portal.
#[derive(Debug, Clone)]
pub struct Config {
    /// The data directory (member keys in `members/`).
    pub dir: PathBuf,
    /// Whether the portal listens on loopback only (cookies without `Secure`; plain
    /// member keys may sign in).
    pub loopback: bool,
    /// Largest accepted upload body, in bytes.
    pub max_upload: u64,
    /// Largest accepted body of any other form, in bytes.
    pub max_form: usize,
    /// A session ends after this long without a request.
    pub idle_timeout: Duration,
    /// And after this long in any case.
    pub max_session: Duration,
    /// Time allowed for a whole request other than an upload or a download.
    pub request_timeout: Duration,
    /// Records per page of a list.
    pub page_size: usize,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            dir: PathBuf::from("medseal-data"),
            loopback: true,
            max_upload: 2 * 1024 * 1024 * 1024,
            max_form: 64 * 1024,
            idle_timeout: Duration::from_secs(30 * 60),
            max_session: Duration::from_secs(12 * 60 * 60),
            request_timeout: Duration::from_secs(60),
            page_size: 50,
        }
    }
}

/// Shared state of the portal (cheap to clone).
#[derive(Clone)]
pub struct App(Arc<Inner>);

pub struct Inner {
    pub vault: Vault,
    pub config: Config,
    pub sessions: Sessions,
    names: Mutex<Option<(Instant, NameBook)>>,
}

impl std::ops::Deref for App {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

/// Display names by address.
pub type NameBook = Arc<HashMap<Address, String>>;

/// How long the address → name book is reused before the registry is read again.
const NAMES_TTL: Duration = Duration::from_secs(30);

impl App {
    pub fn new(vault: Vault, config: Config) -> Self {
        Self(Arc::new(Inner {
            vault,
            config,
            sessions: Sessions::default(),
            names: Mutex::new(None),
        }))
    }

    /// Display names of the registry's members (and of the keys in the directory), by
    /// address; read from the chain at most every [`NAMES_TTL`].
    pub async fn names(&self) -> NameBook {
        if let Some((at, book)) = &*self.names.lock().unwrap_or_else(PoisonError::into_inner)
            && at.elapsed() < NAMES_TTL
        {
            return Arc::clone(book);
        }
        let mut book = HashMap::new();
        for (name, address) in auth::local_keys(&self.config.dir) {
            book.insert(address, name);
        }
        match self.vault.members().await {
            Ok(members) => {
                for m in members {
                    book.insert(m.member, m.name);
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot read the member registry"),
        }
        let book = Arc::new(book);
        *self.names.lock().unwrap_or_else(PoisonError::into_inner) =
            Some((Instant::now(), Arc::clone(&book)));
        book
    }

    /// Drops the name book (the registry changed).
    pub fn forget_names(&self) {
        *self.names.lock().unwrap_or_else(PoisonError::into_inner) = None;
    }

    /// A member's display name, or a short form of the address.
    pub fn name_in(book: &HashMap<Address, String>, address: Address) -> String {
        book.get(&address)
            .cloned()
            .unwrap_or_else(|| short_address(address))
    }
}

/// `0x1234…abcd`.
pub fn short_address(address: Address) -> String {
    let full = format!("{address:#x}");
    format!("{}…{}", &full[..6], &full[full.len() - 4..])
}

/// The portal's routes.
pub fn router(app: App) -> Router {
    let max_upload = usize::try_from(app.config.max_upload).unwrap_or(usize::MAX);
    let timeout = app.config.request_timeout;
    let limited = Router::new()
        .route("/", get(pages::home))
        .route("/signin", get(auth::signin_page).post(auth::signin))
        .route("/signout", post(auth::signout))
        .route("/records", get(records::list))
        .route("/records/new", get(records::new_page))
        .route("/search", get(records::search))
        .route("/suggest", get(records::suggest))
        .route("/records/{id}", get(records::show))
        .route("/records/{id}/share", post(records::share))
        .route("/records/{id}/revoke", post(records::revoke))
        .route("/records/{id}/request", post(records::request))
        .route("/records/{id}/emergency", post(records::emergency))
        .route("/requests", get(records::requests))
        .route("/requests/answer", post(records::answer))
        .route("/members", get(admin::members))
        .route("/members/register", post(admin::register))
        .route("/members/renew", post(admin::renew))
        .route("/members/revoke", post(admin::revoke))
        .route("/assets/{file}", get(assets::serve))
        .layer(DefaultBodyLimit::max(app.config.max_form))
        .layer(middleware::from_fn(move |req, next| {
            with_timeout(timeout, req, next)
        }));
    // Uploads and downloads are streamed and may take long: no overall timeout (the
    // upload's reads are each bounded, see `spool`), their own body limit.
    let streamed = Router::new()
        .route(
            "/records",
            post(records::create).layer(DefaultBodyLimit::max(max_upload)),
        )
        .route(
            "/records/{id}/attachments/{index}",
            get(records::attachment),
        );
    Router::new()
        .merge(limited)
        .merge(streamed)
        .fallback(pages::not_found)
        .layer(middleware::from_fn(auth::same_origin))
        .layer(middleware::from_fn_with_state(
            app.clone(),
            security_headers,
        ))
        .with_state(app)
}

async fn with_timeout(limit: Duration, request: Request, next: Next) -> Response {
    match tokio::time::timeout(limit, next.run(request)).await {
        Ok(response) => response,
        Err(_) => crate::failure::Failure::timeout().into_page(None),
    }
}

/// The policy every page is served under: scripts, styles and images only from the
/// portal itself, no inline script, no framing by other sites (with the headers beside
/// it: no referrer to other sites, no caching of pages that show medical data).
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
                       img-src 'self'; frame-src 'self'; connect-src 'self'; \
                       form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

async fn security_headers(State(app): State<App>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    // The server's own time to the response head (for a streamed body, to its first byte):
    // browsers' developer tools show it, the clinic report reads it.
    if let Ok(value) = HeaderValue::from_str(&format!(
        "app;dur={:.2}",
        started.elapsed().as_secs_f64() * 1e3
    )) {
        headers.insert(header::HeaderName::from_static("server-timing"), value);
    }
    let mut set = |name: header::HeaderName, value: &'static str| {
        if !headers.contains_key(&name) {
            headers.insert(name, HeaderValue::from_static(value));
        }
    };
    set(header::CONTENT_SECURITY_POLICY, CSP);
    set(header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(header::X_FRAME_OPTIONS, "DENY");
    // Not `no-referrer`: with it a browser sends `Origin: null` on form posts, which the
    // same-origin check needs; record addresses never leave the portal's origin anyway.
    set(header::REFERRER_POLICY, "same-origin");
    set(header::CACHE_CONTROL, "no-store");
    set(
        header::HeaderName::from_static("cross-origin-opener-policy"),
        "same-origin",
    );
    set(
        header::HeaderName::from_static("cross-origin-resource-policy"),
        "same-origin",
    );
    set(
        header::HeaderName::from_static("permissions-policy"),
        "camera=(), microphone=(), geolocation=()",
    );
    if !app.config.loopback {
        set(
            header::STRICT_TRANSPORT_SECURITY,
            "max-age=31536000; includeSubDomains",
        );
    }
    response
}

/// Ends idle and expired sessions every minute (they are also refused when used).
pub async fn sweep_sessions(app: App) {
    let mut tick = tokio::time::interval(Duration::from_secs(60));
    loop {
        tick.tick().await;
        app.sessions
            .sweep(app.config.idle_timeout, app.config.max_session);
    }
}
