//! The authority's pages: the member registry, registering the keys of the data
//! directory, revoking members who leave and renewing the keys a revocation affects.
//! (Setting up the authority and issuing keys stay with the command line.)

use std::io::Write;

use axum::Form;
use axum::extract::State;
use axum::response::{IntoResponse, Redirect, Response};
use maud::html;
use medseal::{Address, AtomicFile, KdfParams, Member, Validity};
use rand_core::OsRng;
use serde::Deserialize;

use crate::app::{App, short_address};
use crate::auth::{self, AuthoritySignedIn, KeyForm, MEMBERS_DIR};
use crate::failure::Failure;
use crate::pages::admin_page;

type Outcome = Result<Response, Response>;

fn fail(admin: &AuthoritySignedIn) -> impl Fn(Failure) -> Response + '_ {
    move |f| {
        let status = f.status;
        let mut page = admin_page(admin, f.title, failure_body(&f)).into_response();
        *page.status_mut() = status;
        page
    }
}

fn failure_body(f: &Failure) -> maud::Markup {
    html! {
        section.failure role="alert" {
            h1 { (f.title) }
            p { (f.message) }
            p.advice { strong { "What to do: " } (f.advice) }
        }
    }
}

/// A key file of the data directory: its name, whether it is protected, and its
/// address where it can be read without a passphrase.
struct LocalKey {
    name: String,
    protected: bool,
    address: Option<Address>,
}

fn local_keys(app: &App) -> Vec<LocalKey> {
    let Ok(entries) = std::fs::read_dir(app.config.dir.join(MEMBERS_DIR)) else {
        return Vec::new();
    };
    let mut out: Vec<LocalKey> = entries
        .flatten()
        .filter_map(|entry| {
            let path = entry.path();
            if path.extension().and_then(|e| e.to_str()) != Some("key") {
                return None;
            }
            let name = path.file_stem()?.to_str()?.to_owned();
            let bytes = std::fs::read(&path).ok()?;
            let protected = medseal::is_sealed_member(&bytes);
            let address = (!protected)
                .then(|| Member::from_bytes(&bytes).ok().map(|m| m.address()))
                .flatten();
            Some(LocalKey {
                name,
                protected,
                address,
            })
        })
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

/// `GET /members`.
pub async fn members(State(app): State<App>, admin: AuthoritySignedIn) -> Outcome {
    let registry = app
        .vault
        .members()
        .await
        .map_err(|e| fail(&admin)(Failure::from(e)))?;
    let now = app.vault.clock().now();
    let keys = local_keys(&app);
    let registered = |a: Address| registry.iter().any(|m| m.member == a);
    let body = html! {
        h1 { "Members" }
        p.help { "The member registry on chain. Issuing keys and setting up the authority stay with the command line (`medseal authority keygen`)." }
        table.records {
            thead { tr {
                th scope="col" { "Name" } th scope="col" { "Account" } th scope="col" { "Attributes" }
                th scope="col" { "Valid through" } th scope="col" { "Status" } th scope="col" { "Action" }
            } }
            tbody {
                @for m in &registry {
                    @let through = m.valid_through.map(medseal::Month::from_number);
                    tr {
                        td { (m.name) }
                        td { code { (short_address(m.member)) } }
                        td { (m.attributes.join(", ")) }
                        td { @match through { Some(t) => (t.to_string()), None => "—" } }
                        td {
                            @if let Some(r) = &m.revoked {
                                strong.problem { "Revoked" } ": " (r.reason)
                            } @else if through.is_some_and(|t| t < now) {
                                "Expired"
                            } @else {
                                "Active"
                            }
                        }
                        td {
                            @if m.revoked.is_none() {
                                form.inline method="post" action="/members/revoke" {
                                    input type="hidden" name="csrf" value=(admin.csrf);
                                    input type="hidden" name="member" value=(format!("{:#x}", m.member));
                                    label for={ "reason-" (m.member) } { "Reason" }
                                    input id={ "reason-" (m.member) } name="reason" type="text" required maxlength="256";
                                    button.secondary type="submit" { "Revoke " (m.name) }
                                }
                            }
                        }
                    }
                }
            }
        }
        h2 { "Keys in this data directory" }
        @if keys.is_empty() { p.empty { "No member keys here." } }
        table.records {
            thead { tr { th scope="col" { "Key" } th scope="col" { "Registered" } th scope="col" { "Action" } } }
            tbody {
                @for k in &keys {
                    tr {
                        td { (k.name) @if k.protected { " " span.meta { "(protected)" } } }
                        td { @match k.address { Some(a) => { @if registered(a) { "yes" } @else { "no" } }, None => "—" } }
                        td {
                            @for (action, label) in [("register", "Register"), ("renew", "Renew")] {
                                @if action == "renew" || k.address.is_none_or(|a| !registered(a)) {
                                    form.inline method="post" action={ "/members/" (action) } {
                                        input type="hidden" name="csrf" value=(admin.csrf);
                                        input type="hidden" name="name" value=(k.name);
                                        @if k.protected {
                                            label for={ (action) "-" (k.name) } { "Its passphrase" }
                                            input id={ (action) "-" (k.name) } name="passphrase" type="password" required autocomplete="off";
                                        }
                                        button.secondary type="submit" { (label) " " (k.name) }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    Ok(admin_page(&admin, "Members", body).into_response())
}

async fn open_key(app: &App, form: &KeyForm) -> Result<(Member, bool), Failure> {
    let (app2, name, passphrase) = (app.clone(), form.name.clone(), form.passphrase.clone());
    let member = tokio::task::spawn_blocking(move || auth::load_key(&app2, &name, &passphrase))
        .await
        .map_err(|_| Failure::internal())??;
    let path = app
        .config
        .dir
        .join(MEMBERS_DIR)
        .join(format!("{}.key", form.name));
    let protected = std::fs::read(path).is_ok_and(|b| medseal::is_sealed_member(&b));
    Ok((member, protected))
}

/// `POST /members/register`: registers a key of the data directory on chain.
pub async fn register(
    State(app): State<App>,
    admin: AuthoritySignedIn,
    Form(form): Form<KeyForm>,
) -> Outcome {
    admin.check_csrf(&form.csrf).map_err(fail(&admin))?;
    let (member, _) = open_key(&app, &form).await.map_err(fail(&admin))?;
    app.vault
        .register_member(&admin.authority, &member)
        .await
        .map_err(|e| fail(&admin)(Failure::from(e)))?;
    app.forget_names();
    Ok(Redirect::to("/members").into_response())
}

/// `POST /members/renew`: renews a key of the data directory at the current attribute
/// versions, keeping its validity, registers it, and writes it back (sealed again under
/// the same passphrase if it was).
pub async fn renew(
    State(app): State<App>,
    admin: AuthoritySignedIn,
    Form(form): Form<KeyForm>,
) -> Outcome {
    admin.check_csrf(&form.csrf).map_err(fail(&admin))?;
    let (member, protected) = open_key(&app, &form).await.map_err(fail(&admin))?;
    let validity = member
        .validity()
        .unwrap_or_else(|| Validity::months_from_now(12));
    let renewed = app
        .vault
        .renew_member(&admin.authority, &member, validity)
        .await
        .map_err(|e| fail(&admin)(Failure::from(e)))?;
    let passphrase = form.passphrase.clone();
    let path = app
        .config
        .dir
        .join(MEMBERS_DIR)
        .join(format!("{}.key", form.name));
    let written = tokio::task::spawn_blocking(move || -> medseal::Result<()> {
        let bytes = if protected {
            renewed.seal(passphrase.as_bytes(), &KdfParams::DEFAULT, &mut OsRng)?
        } else {
            renewed.to_bytes()
        };
        let file = AtomicFile::create(&path, true)?;
        file.as_file()
            .write_all(&bytes)
            .map_err(|source| medseal::Error::Io {
                path: path.clone(),
                source,
            })?;
        file.commit(true)
    })
    .await
    .map_err(|_| fail(&admin)(Failure::internal()))?;
    written.map_err(|e| fail(&admin)(Failure::from(e)))?;
    app.forget_names();
    Ok(Redirect::to("/members").into_response())
}

#[derive(Deserialize)]
pub struct RevokeForm {
    #[serde(default)]
    csrf: String,
    member: String,
    #[serde(default)]
    reason: String,
}

/// `POST /members/revoke`: revokes a member on chain (their attributes' versions are
/// bumped), then says whose keys need renewing.
pub async fn revoke(
    State(app): State<App>,
    admin: AuthoritySignedIn,
    Form(form): Form<RevokeForm>,
) -> Outcome {
    admin.check_csrf(&form.csrf).map_err(fail(&admin))?;
    let member: Address = form
        .member
        .parse()
        .map_err(|_| fail(&admin)(Failure::bad_request("Unknown member.")))?;
    let report = app
        .vault
        .revoke_member(&admin.authority, member, form.reason.trim())
        .await
        .map_err(|e| fail(&admin)(Failure::from(e)))?;
    app.forget_names();
    let names = app.names().await;
    let keys = local_keys(&app);
    let bumped: Vec<String> = report
        .bumped
        .iter()
        .map(|(a, v)| format!("{a} → version {v}"))
        .collect();
    let body = html! {
        h1 { "Revoked " (App::name_in(&names, member)) }
        p { "New records under these attributes are closed to the revoked key: " (bumped.join(", ")) "." }
        p { "Records stored before stay readable by the revoked key until their owners re-wrap them (`medseal rewrap`)." }
        h2 { "Keys to renew (" (report.affected.len()) ")" }
        @if report.affected.is_empty() { p.empty { "No other member holds a revoked attribute." } }
        ul {
            @for m in &report.affected {
                @let here = keys.iter().find(|k| k.address == Some(m.member) || (k.protected && k.name == m.name));
                li {
                    (m.name) " — "
                    @match here {
                        Some(k) => {
                            form.inline method="post" action="/members/renew" {
                                input type="hidden" name="csrf" value=(admin.csrf);
                                input type="hidden" name="name" value=(k.name);
                                @if k.protected {
                                    label for={ "renew-" (k.name) } { "Its passphrase" }
                                    input id={ "renew-" (k.name) } name="passphrase" type="password" required autocomplete="off";
                                }
                                button type="submit" { "Renew " (k.name) }
                            }
                        }
                        None => { "their key is not in this data directory: renew it where it is kept (`medseal authority renew`)." }
                    }
                }
            }
        }
        p { a href="/members" { "Back to the members" } }
    };
    Ok(admin_page(&admin, "Member revoked", body).into_response())
}
