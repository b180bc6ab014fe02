//! Record pages: lists, search, one record, new record, attachments, sharing, requests.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::OnceLock;

use axum::body::Body;
use axum::extract::{Multipart, Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Form, Json};
use maud::{Markup, html};
use medseal::abe::Policy;
use medseal::abe::policy::Node;
use medseal::index::dictionary::Icd10Code;
use medseal::{
    Address, AuditEntry, AuditEvent, Keyword, Listing, NewRecord, OpenedRecord, RecordId,
    RecordInfo,
};
use serde::Deserialize;
use tokio::sync::mpsc;

use crate::app::App;
use crate::auth::{CsrfForm, SignedIn};
use crate::failure::Failure;
use crate::pages::page;
use crate::spool::Spool;

type Outcome = Result<Response, Response>;

fn fail(user: &SignedIn) -> impl Fn(Failure) -> Response + '_ {
    move |f| f.into_page(Some(user))
}

fn vault_fail(user: &SignedIn) -> impl Fn(medseal::Error) -> Response + '_ {
    move |e| Failure::from(e).into_page(Some(user))
}

fn parse_id(text: &str) -> Result<RecordId, Failure> {
    text.parse::<u64>()
        .map(RecordId)
        .map_err(|_| Failure::not_found())
}

fn when(unix: u64) -> String {
    // UTC, minutes: `2026-12-01 17:05 UTC`.
    let days = unix / 86_400;
    let (h, m) = ((unix % 86_400) / 3600, (unix % 3600) / 60);
    let (y, mo, d) = civil_from_days(days as i64);
    format!("{y:04}-{mo:02}-{d:02} {h:02}:{m:02} UTC")
}

/// Days since 1970-01-01 → (year, month, day) (H. Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

fn size_text(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["bytes", "KiB", "MiB", "GiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} bytes")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

// ---------------------------------------------------------------------------------------
// Lists

#[derive(Deserialize, Default)]
pub struct ListQuery {
    #[serde(default)]
    view: Option<String>,
    #[serde(default)]
    page: Option<usize>,
}

/// `GET /records`: my records, shared with me (`?view=shared`), about me (`?view=about`).
pub async fn list(
    State(app): State<App>,
    user: SignedIn,
    Query(query): Query<ListQuery>,
) -> Outcome {
    let (listing, heading, empty) = match query.view.as_deref() {
        None | Some("mine") => (
            Listing::Owned,
            "My records",
            "You have not stored any records yet.",
        ),
        Some("shared") => (
            Listing::SharedWith,
            "Shared with me",
            "No records have been shared with you.",
        ),
        Some("about") => (
            Listing::About,
            "Records about me",
            "There are no records about you.",
        ),
        Some(_) => return Err(Failure::not_found().into_page(Some(&user))),
    };
    let size = app.config.page_size;
    let number = query.page.unwrap_or(1).max(1);
    let page_of = app
        .vault
        .list_records(listing, user.address(), (number - 1) * size, size)
        .await
        .map_err(vault_fail(&user))?;
    let titles = app.vault.titles(&user.member, &page_of.records).await;
    let names = app.names().await;
    let pages = page_of.total.div_ceil(size).max(1);
    let view = query.view.as_deref().unwrap_or("mine");
    let body = html! {
        h1 { (heading) }
        @if page_of.total == 0 {
            p.empty { (empty) }
        } @else {
            p.count { (page_of.total) " records" @if pages > 1 { ", page " (number) " of " (pages) } }
            (record_table(&page_of.records, &titles, &names))
            @if pages > 1 {
                nav.pager aria-label="Pages" {
                    @if number > 1 {
                        a href={ "/records?view=" (view) "&page=" (number - 1) } rel="prev" { "← Newer" }
                    }
                    @if number < pages {
                        a href={ "/records?view=" (view) "&page=" (number + 1) } rel="next" { "Older →" }
                    }
                }
            }
        }
    };
    Ok(page(Some(&user), heading, body).into_response())
}

fn record_table(
    records: &[RecordInfo],
    titles: &[medseal::Result<String>],
    names: &HashMap<Address, String>,
) -> Markup {
    html! {
        table.records {
            thead { tr { th scope="col" { "Record" } th scope="col" { "Patient" } th scope="col" { "Owner" } th scope="col" { "Created" } } }
            tbody {
                @for (info, title) in records.iter().zip(titles) {
                    tr {
                        td {
                            a href={ "/records/" (info.record.0) } {
                                @match title {
                                    Ok(t) => (t),
                                    Err(_) => { span.locked { "Record " (info.record.0) " (title hidden)" } },
                                }
                            }
                        }
                        td { @match info.subject { Some(s) => (App::name_in(names, s)), None => "—" } }
                        td { (App::name_in(names, info.owner)) }
                        td { (when(info.created_at)) }
                    }
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// Search

#[derive(Deserialize, Default)]
pub struct SearchQuery {
    #[serde(default)]
    q: String,
}

/// The vendored ICD-10-CM list (loaded once).
fn icd10() -> &'static [Icd10Code] {
    static LIST: OnceLock<Vec<Icd10Code>> = OnceLock::new();
    LIST.get_or_init(|| medseal::index::dictionary::icd10cm().unwrap_or_default())
}

/// `I214` → `I21.4`.
fn dotted(code: &str) -> String {
    if code.len() > 3 {
        format!("{}.{}", &code[..3], &code[3..])
    } else {
        code.to_owned()
    }
}

/// What a search box's text means: `type:value` as written, an ICD-10-CM code
/// (with or without its dot), or else a free-text term.
fn keyword_of(text: &str) -> Result<Keyword, Failure> {
    let text = text.trim();
    let parsed = if text.contains(':') {
        Keyword::parse(text)
    } else {
        let bare: String = text.chars().filter(|c| *c != '.').collect();
        if icd10().iter().any(|c| c.code.eq_ignore_ascii_case(&bare)) {
            Keyword::icd10(text)
        } else {
            Keyword::term(text)
        }
    };
    parsed.map_err(|e| Failure::bad_request(format!("“{text}” cannot be searched for: {e}")))
}

/// Hits of a search shown in its page.
const SEARCH_SHOWN: usize = 100;

/// `GET /search?q=`.
pub async fn search(
    State(app): State<App>,
    user: SignedIn,
    Query(query): Query<SearchQuery>,
) -> Outcome {
    let text = query.q.trim();
    let results = if text.is_empty() {
        None
    } else {
        let keyword = keyword_of(text).map_err(fail(&user))?;
        let found = app
            .vault
            .search(&user.member, &keyword)
            .await
            .map_err(vault_fail(&user))?;
        // The newest hits are shown (their titles opened), the count says the rest.
        let mut ids = found.records();
        ids.sort_unstable_by(|a, b| b.cmp(a));
        ids.truncate(SEARCH_SHOWN);
        let infos = app
            .vault
            .record_infos(&ids)
            .await
            .map_err(vault_fail(&user))?;
        let titles = app.vault.titles(&user.member, &infos).await;
        Some((
            keyword,
            found.hits.len(),
            infos,
            titles,
            found.rejected.len(),
        ))
    };
    let names = app.names().await;
    let body = html! {
        h1 { "Search" }
        form.search method="get" action="/search" role="search" {
            label for="q" { "ICD-10 code or term" }
            input #q name="q" type="search" value=(text) list="suggestions" autocomplete="off"
                data-suggest="/suggest" aria-describedby="q-help";
            datalist #suggestions {}
            p.help #q-help { "For example I21.4, “myocardial infarction”, or icd10:E11.9. Only records you can open are found; the index learns nothing about what you typed." }
            button type="submit" { "Search" }
        }
        @if let Some((keyword, count, infos, titles, rejected)) = &results {
            h2 { (count) " records match " code { (keyword.as_str()) } }
            @if *rejected > 0 {
                p.problem role="alert" { (rejected) " index partitions failed verification and were skipped (tampering?). Tell the administrator." }
            }
            @if *count > infos.len() { p.count { "Showing the newest " (infos.len()) "." } }
            @if !infos.is_empty() { (record_table(infos, titles, &names)) }
        }
    };
    Ok(page(Some(&user), "Search", body).into_response())
}

#[derive(serde::Serialize)]
pub struct Suggestion {
    value: String,
    label: String,
}

/// `GET /suggest?q=`: up to 12 ICD-10-CM codes whose code starts with, or whose
/// description contains, the text (for the search box and the keyword field).
pub async fn suggest(_user: SignedIn, Query(query): Query<SearchQuery>) -> Json<Vec<Suggestion>> {
    let q = query.q.trim().to_lowercase();
    if q.len() < 2 {
        return Json(Vec::new());
    }
    let bare: String = q.chars().filter(|c| *c != '.').collect();
    let out = icd10()
        .iter()
        .filter(|c| {
            c.code.to_lowercase().starts_with(&bare) || c.description.to_lowercase().contains(&q)
        })
        .take(12)
        .map(|c| Suggestion {
            value: dotted(&c.code),
            label: format!("{} — {}", dotted(&c.code), c.description),
        })
        .collect();
    Json(out)
}

// ---------------------------------------------------------------------------------------
// One record

/// Policy in words: `role:doctor and dept:cardiology` → "role doctor and dept cardiology".
pub fn policy_words(node: &Node) -> Markup {
    html! {
        @match node {
            Node::Attribute(a) => {
                @match a.value() {
                    Some(v) => span.attr { (a.name()) " " strong { (v) } },
                    None => span.attr { strong { (a.name()) } },
                }
            }
            Node::And(children) => { "all of:" ul { @for c in children { li { (policy_words(c)) } } } }
            Node::Or(children) => { "any of:" ul { @for c in children { li { (policy_words(c)) } } } }
            Node::Threshold { k, children } => {
                "at least " (k) " of:" ul { @for c in children { li { (policy_words(c)) } } }
            }
            other => code { (Policy::from_node(other.clone()).map(|p| p.to_string()).unwrap_or_default()) },
        }
    }
}

/// Current grantees from the audit trail (grants not revoked since), in grant order.
fn grantees(trail: &[AuditEntry]) -> Vec<Address> {
    let mut current: Vec<Address> = Vec::new();
    for entry in trail {
        match &entry.event {
            AuditEvent::AccessGranted { user, .. } if !current.contains(user) => {
                current.push(*user);
            }
            AuditEvent::AccessRevoked { user, .. } => current.retain(|u| u != user),
            _ => {}
        }
    }
    current
}

fn event_words(event: &AuditEvent, names: &HashMap<Address, String>) -> (String, &'static str) {
    let n = |a: &Address| App::name_in(names, *a);
    match event {
        AuditEvent::Created { owner, .. } => (format!("Created by {}", n(owner)), "created"),
        AuditEvent::Updated { by, .. } => (format!("Re-encrypted by {}", n(by)), "updated"),
        AuditEvent::Subject { subject } => (format!("About patient {}", n(subject)), "subject"),
        AuditEvent::AccessGranted { user, by } => {
            (format!("{} gave access to {}", n(by), n(user)), "granted")
        }
        AuditEvent::AccessRevoked { user, by } => (
            format!("{} withdrew the access of {}", n(by), n(user)),
            "revoked",
        ),
        AuditEvent::AccessRequested {
            requester,
            approver,
        } => (
            format!("{} asked {} for access", n(requester), n(approver)),
            "requested",
        ),
        AuditEvent::AccessDenied { user, by } => (
            format!("{} refused access to {}", n(by), n(user)),
            "revoked",
        ),
        AuditEvent::AccessLogged { accessor } => (format!("Read by {}", n(accessor)), "read"),
        AuditEvent::EmergencyAccess { accessor, reason } => (
            format!("EMERGENCY access by {}: “{reason}”", n(accessor)),
            "emergency",
        ),
    }
}

fn timeline(trail: &[AuditEntry], names: &HashMap<Address, String>) -> Markup {
    html! {
        ol.timeline {
            @for entry in trail.iter().rev() {
                @let (words, kind) = event_words(&entry.event, names);
                li class=(kind) {
                    time { (when(entry.timestamp)) }
                    span { (words) }
                }
            }
        }
    }
}

/// Content types shown in the page (others are downloads only; never HTML or SVG, which
/// could run script in the portal's origin).
const INLINE_TYPES: [&str; 5] = [
    "application/pdf",
    "image/png",
    "image/jpeg",
    "image/gif",
    "image/webp",
];

/// `GET /records/{id}`: the record, or what can be done without access.
pub async fn show(State(app): State<App>, user: SignedIn, Path(id): Path<String>) -> Outcome {
    let record = parse_id(&id).map_err(fail(&user))?;
    let info = app
        .vault
        .record_infos(&[record])
        .await
        .map_err(vault_fail(&user))?
        .pop()
        .ok_or_else(|| Failure::not_found().into_page(Some(&user)))?;
    let names = app.names().await;
    let trail = app.vault.audit(record).await.map_err(vault_fail(&user))?;
    let opened = match app.vault.get(&user.member, record).await {
        Ok(opened) => Some(opened),
        Err(
            e @ (medseal::Error::AccessDenied { .. }
            | medseal::Error::EmergencyOnly { .. }
            | medseal::Error::KeyExpired { .. }),
        ) => {
            let failure = Failure::from(e);
            return Ok(locked(&user, &info, &names, &failure).into_response());
        }
        Err(e) => return Err(vault_fail(&user)(e)),
    };
    let Some(opened) = opened else {
        return Err(Failure::internal().into_page(Some(&user)));
    };
    // The trail now includes this read.
    let trail = app.vault.audit(record).await.unwrap_or(trail);
    Ok(record_page(false, &user, &info, &opened, &trail, &names).into_response())
}

fn record_page(
    emergency: bool,
    user: &SignedIn,
    info: &RecordInfo,
    opened: &OpenedRecord,
    trail: &[AuditEntry],
    names: &HashMap<Address, String>,
) -> Markup {
    let controller = info.controller();
    let can_share = controller == user.address();
    let granted = grantees(trail);
    let body = html! {
        h1 { (opened.name) }
        @if emergency {
            p.problem role="alert" { "Opened through emergency access: your name and reason are in the record's audit trail." }
        }
        dl.facts {
            dt { "Patient" } dd { @match info.subject { Some(s) => (App::name_in(names, s)), None => "—" } }
            dt { "Owner" } dd { (App::name_in(names, info.owner)) }
            dt { "Created" } dd { (when(info.created_at)) }
            dt { "Record number" } dd { (info.record.0) }
        }
        section aria-labelledby="att-h" {
            h2 #att-h { "Attachments" }
            @if opened.attachments.is_empty() { p.empty { "No attachments." } }
            ul.attachments {
                @for (i, a) in opened.attachments.iter().enumerate() {
                    li {
                        a.download href={ "/records/" (info.record.0) "/attachments/" (i) } download=(a.name) {
                            "Download " (a.name)
                        }
                        " " span.meta { (a.content_type) ", " (size_text(a.size)) }
                        @if INLINE_TYPES.contains(&a.content_type.as_str()) {
                            @let src = format!("/records/{}/attachments/{i}?inline=1", info.record.0);
                            @if a.content_type == "application/pdf" {
                                iframe.pdf src=(src) title={ "Preview of " (a.name) } {}
                            } @else {
                                img.preview src=(src) alt={ "Image " (a.name) };
                            }
                        }
                    }
                }
            }
        }
        section aria-labelledby="who-h" {
            h2 #who-h { "Who can read it" }
            div.policy { (policy_words(opened.policy.root())) }
            p.help { "Policy as text: " code { (opened.policy.to_string()) } }
            ul.readers {
                li { "Its owner, " (App::name_in(names, info.owner)) }
                @if let Some(s) = info.subject { li { "Its patient, " (App::name_in(names, s)) } }
                @for g in &granted { li { (App::name_in(names, *g)) ", given access" } }
            }
            @if can_share {
                form.inline method="post" action={ "/records/" (info.record.0) "/share" } {
                    input type="hidden" name="csrf" value=(user.csrf);
                    label for="share-with" { "Share with (member name or address)" }
                    input #share-with name="member" type="text" required list="member-names" autocomplete="off";
                    datalist #member-names { @for n in sorted_names(names) { option value=(n) {} } }
                    button type="submit" { "Share" }
                }
                @for g in &granted {
                    form.inline method="post" action={ "/records/" (info.record.0) "/revoke" } {
                        input type="hidden" name="csrf" value=(user.csrf);
                        input type="hidden" name="member" value=(format!("{g:#x}"));
                        button.secondary type="submit" { "Withdraw access of " (App::name_in(names, *g)) }
                    }
                }
            }
        }
        section aria-labelledby="trail-h" {
            h2 #trail-h { "Audit trail" }
            (timeline(trail, names))
        }
    };
    page(Some(user), &opened.name, body)
}

fn sorted_names(names: &HashMap<Address, String>) -> BTreeSet<&str> {
    names.values().map(String::as_str).collect()
}

fn locked(
    user: &SignedIn,
    info: &RecordInfo,
    names: &HashMap<Address, String>,
    failure: &Failure,
) -> Response {
    let body = html! {
        h1 { "Record " (info.record.0) }
        section.failure role="alert" {
            h2 { (failure.title) }
            p { (failure.message) }
        }
        dl.facts {
            dt { "Patient" } dd { @match info.subject { Some(s) => (App::name_in(names, s)), None => "—" } }
            dt { "Owner" } dd { (App::name_in(names, info.owner)) }
            dt { "Created" } dd { (when(info.created_at)) }
        }
        section aria-labelledby="ask-h" {
            h2 #ask-h { "Ask for access" }
            p { "The record's " @if info.subject.is_some() { "patient" } @else { "owner" } " decides; the request is recorded in its audit trail." }
            form.inline method="post" action={ "/records/" (info.record.0) "/request" } {
                input type="hidden" name="csrf" value=(user.csrf);
                button type="submit" { "Request access" }
            }
        }
        section aria-labelledby="glass-h" {
            h2 #glass-h { "Emergency access" }
            p { "Only for an emergency, and only if the record allows emergency readers. Your name and reason are recorded before the record opens, and its patient sees them." }
            form.inline method="post" action={ "/records/" (info.record.0) "/emergency" } {
                input type="hidden" name="csrf" value=(user.csrf);
                label for="reason" { "Reason" }
                input #reason name="reason" type="text" required maxlength=(medseal::MAX_EMERGENCY_REASON_LEN);
                button.secondary type="submit" { "Open in an emergency" }
            }
        }
    };
    let mut response = page(Some(user), "Access denied", body).into_response();
    *response.status_mut() = failure.status;
    response
}

// ---------------------------------------------------------------------------------------
// Attachments

#[derive(Deserialize, Default)]
pub struct AttachmentQuery {
    #[serde(default)]
    inline: Option<u8>,
}

/// An `std::io::Write` that hands what it is given to a response body, a chunk at a time
/// (the record is decrypted on a blocking thread; the channel bounds what waits).
struct BodyWriter(mpsc::Sender<Result<bytes::Bytes, std::io::Error>>);

impl std::io::Write for BodyWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .blocking_send(Ok(bytes::Bytes::copy_from_slice(buf)))
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::BrokenPipe, "client gone"))?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// `GET /records/{id}/attachments/{index}`: the attachment, decrypted as it streams.
/// A download is logged on chain as a read (an inline preview is part of the record's
/// page, whose opening was).
pub async fn attachment(
    State(app): State<App>,
    user: SignedIn,
    Path((id, index)): Path<(String, usize)>,
    Query(query): Query<AttachmentQuery>,
) -> Outcome {
    let record = parse_id(&id).map_err(fail(&user))?;
    let inline = query.inline == Some(1);
    let opened = match user.emergency_opened(record) {
        Some(opened) => opened,
        None => std::sync::Arc::new(
            if inline {
                app.vault.open_record(&user.member, record).await
            } else {
                app.vault.get(&user.member, record).await
            }
            .map_err(vault_fail(&user))?,
        ),
    };
    let Some(info) = opened.attachments.get(index).cloned() else {
        return Err(Failure::not_found().into_page(Some(&user)));
    };
    let inline = inline && INLINE_TYPES.contains(&info.content_type.as_str());
    let (tx, rx) = mpsc::channel(8);
    let vault_app = app.clone();
    tokio::spawn(async move {
        let writer = BodyWriter(tx.clone());
        if let Err(e) = vault_app
            .vault
            .read_attachment(&opened, index, writer)
            .await
        {
            // The client has the bytes sent so far; an error ends the body abnormally,
            // so the download is seen as failed, never as a complete file.
            tracing::error!(error = %e, record = opened.record.0, index, "attachment stream failed");
            let _ = tx
                .send(Err(std::io::Error::other("attachment failed")))
                .await;
        }
    });
    let stream = tokio_stream_from(rx);
    let mut response = Response::new(Body::from_stream(stream));
    let headers = response.headers_mut();
    let content_type = if inline {
        info.content_type.as_str()
    } else {
        "application/octet-stream"
    };
    if let Ok(v) = HeaderValue::from_str(content_type) {
        headers.insert(header::CONTENT_TYPE, v);
    }
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(info.size));
    let disposition = format!(
        "{}; filename*=UTF-8''{}",
        if inline { "inline" } else { "attachment" },
        percent_encode(&info.name)
    );
    if let Ok(v) = HeaderValue::from_str(&disposition) {
        headers.insert(header::CONTENT_DISPOSITION, v);
    }
    if inline {
        // Shown inside the record's page only.
        headers.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static("default-src 'none'; img-src 'self'; frame-ancestors 'self'"),
        );
        headers.insert(
            header::X_FRAME_OPTIONS,
            HeaderValue::from_static("SAMEORIGIN"),
        );
    }
    Ok(response)
}

fn tokio_stream_from(
    mut rx: mpsc::Receiver<Result<bytes::Bytes, std::io::Error>>,
) -> impl futures_util::Stream<Item = Result<bytes::Bytes, std::io::Error>> {
    futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

/// RFC 5987 value: unreserved bytes as they are, everything else `%XX`.
fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b'~') {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

// ---------------------------------------------------------------------------------------
// Sharing

#[derive(Deserialize)]
pub struct MemberForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    member: String,
}

/// A member named in a form: a display name (of the registry or a key file) or an
/// address.
async fn resolve_member(app: &App, text: &str) -> Result<Address, Failure> {
    let text = text.trim();
    if let Ok(address) = text.parse::<Address>() {
        return Ok(address);
    }
    let names = app.names().await;
    let matches: Vec<Address> = names
        .iter()
        .filter(|(_, n)| n.eq_ignore_ascii_case(text))
        .map(|(a, _)| *a)
        .collect();
    match matches.as_slice() {
        [one] => Ok(*one),
        [] => Err(Failure::bad_request(format!(
            "No member is called “{text}”."
        ))),
        _ => Err(Failure::bad_request(format!(
            "Several members are called “{text}”: give the address instead."
        ))),
    }
}

async fn share_or_revoke(
    app: App,
    user: SignedIn,
    id: String,
    form: MemberForm,
    share: bool,
) -> Outcome {
    user.check_csrf(&form.csrf).map_err(fail(&user))?;
    let record = parse_id(&id).map_err(fail(&user))?;
    let member = resolve_member(&app, &form.member)
        .await
        .map_err(fail(&user))?;
    let done = if share {
        app.vault.share(&user.member, record, member).await
    } else {
        app.vault.revoke(&user.member, record, member).await
    };
    done.map_err(vault_fail(&user))?;
    Ok(Redirect::to(&format!("/records/{}", record.0)).into_response())
}

/// `POST /records/{id}/share`.
pub async fn share(
    State(app): State<App>,
    user: SignedIn,
    Path(id): Path<String>,
    Form(form): Form<MemberForm>,
) -> Outcome {
    share_or_revoke(app, user, id, form, true).await
}

/// `POST /records/{id}/revoke`.
pub async fn revoke(
    State(app): State<App>,
    user: SignedIn,
    Path(id): Path<String>,
    Form(form): Form<MemberForm>,
) -> Outcome {
    share_or_revoke(app, user, id, form, false).await
}

// ---------------------------------------------------------------------------------------
// New record

/// Attributes the registry's members hold, by kind (`role` → doctor, nurse…), for the
/// policy builder.
async fn known_attributes(app: &App) -> BTreeMap<String, BTreeSet<String>> {
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    if let Ok(members) = app.vault.members().await {
        for m in members {
            for a in m.attributes {
                if let Some((kind, value)) = a.split_once(':')
                    && kind != "id"
                {
                    out.entry(kind.to_owned())
                        .or_default()
                        .insert(value.to_owned());
                }
            }
        }
    }
    out
}

/// `GET /records/new`.
pub async fn new_page(State(app): State<App>, user: SignedIn) -> Outcome {
    let attributes = known_attributes(&app).await;
    let names = app.names().await;
    let submission = crate::auth::random_token();
    let body = html! {
        h1 { "New record" }
        form #new-record.card method="post" action="/records" enctype="multipart/form-data"
            data-max-upload=(app.config.max_upload) {
            input type="hidden" name="csrf" value=(user.csrf);
            input type="hidden" name="submission" value=(submission);
            label for="title" { "Title" }
            input #title name="title" type="text" required maxlength="200";
            label for="patient" { "Patient " span.optional { "(member name; they will read it and decide who else may)" } }
            input #patient name="patient" type="text" list="member-names" autocomplete="off";
            datalist #member-names { @for n in sorted_names(&names) { option value=(n) {} } }
            fieldset.builder #builder {
                legend { "Who may read it" }
                @for (kind, values) in &attributes {
                    fieldset.kind data-kind=(kind) {
                        legend { (kind) " (any of)" }
                        @for v in values {
                            label.check {
                                input type="checkbox" value={ (kind) ":" (v) } data-builder="1";
                                " " (v)
                            }
                        }
                    }
                }
                label for="threshold" { "Or: at least how many of the ticked values " span.optional { "(k of n)" } }
                input #threshold type="number" min="1" max="64" inputmode="numeric" aria-describedby="threshold-help";
                p.help #threshold-help { "Empty: every kind must hold, any value of each. A number k: any k of the ticked values, whatever their kind." }
                label for="policy" { "Policy (as text)" }
                input #policy name="policy" type="text" required
                    placeholder="role:doctor and dept:cardiology" aria-describedby="policy-help";
                p.help #policy-help { "Ticking boxes writes this for you: all kinds must hold, any value of a kind. You may also write it: and, or, parentheses, and “2 of (a, b, c)”." }
            }
            label for="keywords" { "Keywords " span.optional { "(ICD-10 codes or terms, separated by commas)" } }
            input #keywords name="keywords" type="text" list="suggestions" autocomplete="off" data-suggest="/suggest";
            datalist #suggestions {}
            label for="emergency" { "Emergency readers " span.optional { "(policy; such reads are logged with a reason)" } }
            input #emergency name="emergency" type="text" placeholder="role:doctor and dept:emergency";
            label for="files" { "Attachments" }
            div.drop #drop {
                input #files name="file" type="file" multiple;
                p.help { "Drop files here or choose them. Reports (PDF) and images are shown in the record." }
            }
            progress #progress max="100" value="0" hidden {}
            p #progress-text.help aria-live="polite" {}
            button type="submit" { "Store record" }
        }
    };
    Ok(page(Some(&user), "New record", body).into_response())
}

/// `POST /records` (multipart): the form's fields, then its files, streamed into an
/// encrypted spool (never whole in memory, never in clear on disk), then stored.
pub async fn create(State(app): State<App>, user: SignedIn, mut form: Multipart) -> Outcome {
    let mut fields: HashMap<String, String> = HashMap::new();
    let mut spool = Spool::new(&app.config.dir, app.config.max_upload).map_err(fail(&user))?;
    let mut first = true;
    loop {
        let field = match form.next_field().await {
            Ok(Some(field)) => field,
            Ok(None) => break,
            Err(e) => {
                return Err(if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    Failure::too_large(app.config.max_upload)
                } else {
                    Failure::bad_request(format!("The form did not arrive whole: {e}"))
                }
                .into_page(Some(&user)));
            }
        };
        let name = field.name().unwrap_or_default().to_owned();
        if first {
            // The CSRF token comes first: nothing else is read before it is checked.
            first = false;
            if name != "csrf" {
                return Err(Failure::csrf().into_page(Some(&user)));
            }
        }
        if name == "file" {
            let file_name = field.file_name().unwrap_or_default().to_owned();
            if file_name.is_empty() {
                continue; // an empty file input
            }
            let content_type = field
                .content_type()
                .unwrap_or("application/octet-stream")
                .to_owned();
            spool
                .add(file_name, content_type, field)
                .await
                .map_err(fail(&user))?;
        } else {
            let text = field
                .text()
                .await
                .map_err(|e| Failure::bad_request(format!("Unreadable form field: {e}")))
                .map_err(fail(&user))?;
            if text.len() > 64 * 1024 {
                return Err(
                    Failure::bad_request("A form field is too long.").into_page(Some(&user))
                );
            }
            if name == "csrf" {
                user.check_csrf(&text).map_err(fail(&user))?;
            }
            fields.insert(name, text);
        }
    }
    if !fields.contains_key("csrf") {
        return Err(Failure::csrf().into_page(Some(&user)));
    }
    let get = |k: &str| fields.get(k).map(|s| s.trim()).unwrap_or_default();
    let title = get("title");
    if title.is_empty() {
        return Err(Failure::bad_request("The record needs a title.").into_page(Some(&user)));
    }
    let policy = Policy::parse(get("policy"))
        .map_err(|e| Failure::bad_request(format!("The policy cannot be used: {e}")))
        .map_err(fail(&user))?;
    let mut record = NewRecord::new(title, policy);
    if !get("patient").is_empty() {
        let patient = resolve_member(&app, get("patient"))
            .await
            .map_err(fail(&user))?;
        record = record.subject(patient);
    }
    if !get("emergency").is_empty() {
        let emergency = Policy::parse(get("emergency"))
            .map_err(|e| Failure::bad_request(format!("The emergency policy cannot be used: {e}")))
            .map_err(fail(&user))?;
        record = record.emergency(emergency);
    }
    for text in get("keywords")
        .split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
    {
        record = record.keyword(keyword_of(text).map_err(fail(&user))?);
    }
    if !get("submission").is_empty() {
        // A resubmitted form (a retry, a double click) stores the record once.
        record = record.idempotency_key(format!("clinic:{}", get("submission")));
    }
    for attachment in spool.attachments().map_err(fail(&user))? {
        record = record.attach(attachment);
    }
    let receipt = app
        .vault
        .put(&user.member, record)
        .await
        .map_err(vault_fail(&user))?;
    let mut response = Redirect::to(&format!("/records/{}", receipt.record.0)).into_response();
    *response.status_mut() = StatusCode::SEE_OTHER;
    Ok(response)
}

// ---------------------------------------------------------------------------------------
// Requests and emergency access

/// `POST /records/{id}/request`: asks the record's controller for access.
pub async fn request(
    State(app): State<App>,
    user: SignedIn,
    Path(id): Path<String>,
    Form(form): Form<CsrfForm>,
) -> Outcome {
    user.check_csrf(&form.csrf).map_err(fail(&user))?;
    let record = parse_id(&id).map_err(fail(&user))?;
    app.vault
        .request_access(&user.member, record)
        .await
        .map_err(vault_fail(&user))?;
    let body = html! {
        h1 { "Request sent" }
        p { "Your request for record " (record.0) " is waiting for its patient's (or owner's) answer. Once approved, the record opens from " a href="/records?view=shared" { "Shared with me" } "." }
    };
    Ok(page(Some(&user), "Request sent", body).into_response())
}

#[derive(Deserialize)]
pub struct EmergencyForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    reason: String,
}

/// `POST /records/{id}/emergency`: break-glass, logged with the reason before opening.
pub async fn emergency(
    State(app): State<App>,
    user: SignedIn,
    Path(id): Path<String>,
    Form(form): Form<EmergencyForm>,
) -> Outcome {
    user.check_csrf(&form.csrf).map_err(fail(&user))?;
    let record = parse_id(&id).map_err(fail(&user))?;
    let opened = app
        .vault
        .get_emergency(&user.member, record, form.reason.trim())
        .await
        .map_err(vault_fail(&user))?;
    let opened = std::sync::Arc::new(opened);
    user.keep_emergency(std::sync::Arc::clone(&opened));
    let info = app
        .vault
        .record_infos(&[record])
        .await
        .map_err(vault_fail(&user))?
        .pop()
        .ok_or_else(|| Failure::not_found().into_page(Some(&user)))?;
    let trail = app.vault.audit(record).await.map_err(vault_fail(&user))?;
    let names = app.names().await;
    Ok(record_page(true, &user, &info, &opened, &trail, &names).into_response())
}

/// `GET /requests`: the requests this member (a patient, or an owner of records without
/// one) has to answer.
pub async fn requests(State(app): State<App>, user: SignedIn) -> Outcome {
    let pending = app
        .vault
        .pending_requests(&user.member)
        .await
        .map_err(vault_fail(&user))?;
    let names = app.names().await;
    let body = html! {
        h1 { "Requests to answer" }
        @if pending.is_empty() {
            p.empty { "Nobody is waiting for your answer." }
        } @else {
            table.records {
                thead { tr { th scope="col" { "Record" } th scope="col" { "Asked by" } th scope="col" { "Answer" } } }
                tbody {
                    @for r in &pending {
                        tr {
                            td { a href={ "/records/" (r.record.0) } { "Record " (r.record.0) } }
                            td { (App::name_in(&names, r.requester)) }
                            td {
                                @for (decision, label) in [("approve", "Approve"), ("deny", "Deny")] {
                                    form.inline method="post" action="/requests/answer" {
                                        input type="hidden" name="csrf" value=(user.csrf);
                                        input type="hidden" name="record" value=(r.record.0);
                                        input type="hidden" name="requester" value=(format!("{:#x}", r.requester));
                                        input type="hidden" name="decision" value=(decision);
                                        button class=(if decision == "deny" { "secondary" } else { "" }) type="submit" {
                                            (label) " " (App::name_in(&names, r.requester))
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    Ok(page(Some(&user), "Requests", body).into_response())
}

#[derive(Deserialize)]
pub struct AnswerForm {
    #[serde(default)]
    csrf: String,
    record: u64,
    requester: String,
    decision: String,
}

/// `POST /requests/answer`.
pub async fn answer(
    State(app): State<App>,
    user: SignedIn,
    Form(form): Form<AnswerForm>,
) -> Outcome {
    user.check_csrf(&form.csrf).map_err(fail(&user))?;
    let requester: Address = form
        .requester
        .parse()
        .map_err(|_| Failure::bad_request("Unknown requester."))
        .map_err(fail(&user))?;
    let approve = match form.decision.as_str() {
        "approve" => true,
        "deny" => false,
        _ => return Err(Failure::bad_request("Unknown answer.").into_page(Some(&user))),
    };
    app.vault
        .answer_request(&user.member, RecordId(form.record), requester, approve)
        .await
        .map_err(vault_fail(&user))?;
    let mut response = Redirect::to("/requests").into_response();
    *response.status_mut() = StatusCode::SEE_OTHER;
    Ok(response)
}
