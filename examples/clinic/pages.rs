//! The page layout and the pages that are not about one kind of object.

use axum::response::{IntoResponse, Redirect, Response};
use maud::{DOCTYPE, Markup, html};

use crate::auth::{AuthoritySignedIn, SignedIn};
use crate::failure::Failure;

/// Who the menu is for.
struct Chrome<'a> {
    name: &'a str,
    csrf: &'a str,
    authority: bool,
}

/// A whole page for a member (or nobody): skip link, header with the menu, the content.
pub fn page(user: Option<&SignedIn>, title: &str, body: Markup) -> Markup {
    layout(
        user.map(|u| Chrome {
            name: u.member.name(),
            csrf: &u.csrf,
            authority: false,
        }),
        title,
        body,
    )
}

/// A whole page for the authority.
pub fn admin_page(admin: &AuthoritySignedIn, title: &str, body: Markup) -> Markup {
    layout(
        Some(Chrome {
            name: "the authority",
            csrf: &admin.csrf,
            authority: true,
        }),
        title,
        body,
    )
}

fn layout(chrome: Option<Chrome<'_>>, title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · medseal clinic" }
                link rel="stylesheet" href="/assets/clinic.css";
                script src="/assets/clinic.js" defer {}
            }
            body {
                a.skip href="#main" { "Skip to content" }
                header.top {
                    span.brand { "medseal clinic" }
                    @if let Some(chrome) = &chrome {
                        nav aria-label="Main" {
                            @if chrome.authority {
                                a href="/members" { "Members" }
                            } @else {
                                a href="/records" { "My records" }
                                a href="/records?view=shared" { "Shared with me" }
                                a href="/records?view=about" { "About me" }
                                a href="/search" { "Search" }
                                a href="/requests" { "Requests" }
                                a href="/records/new" { "New record" }
                            }
                        }
                        form.signout method="post" action="/signout" {
                            input type="hidden" name="csrf" value=(chrome.csrf);
                            span.who { "Signed in as " strong { (chrome.name) } }
                            button type="submit" { "Sign out" }
                        }
                    }
                }
                main #main tabindex="-1" { (body) }
            }
        }
    }
}

/// `GET /`: the records (which ask to sign in first when needed).
pub async fn home() -> Response {
    Redirect::to("/records").into_response()
}

/// Any other address.
pub async fn not_found() -> Response {
    Failure::not_found().into_page(None)
}
