//! What went wrong, as a page a clinician can act on: a status, a title, what happened and
//! what to do. Never a stack trace, never a secret (the library's errors hold none; the
//! details of internal failures go to the log only).

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use maud::html;
use medseal::Error;
use medseal::chain::LedgerError;

use crate::auth::SignedIn;
use crate::pages;

/// A failed request, shown as a page.
#[derive(Debug)]
pub struct Failure {
    pub status: StatusCode,
    pub title: &'static str,
    pub message: String,
    pub advice: &'static str,
}

impl Failure {
    fn new(
        status: StatusCode,
        title: &'static str,
        message: impl Into<String>,
        advice: &'static str,
    ) -> Self {
        Self {
            status,
            title,
            message: message.into(),
            advice,
        }
    }

    pub fn csrf() -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "Request refused",
            "This form was not sent from this portal's own page, or its page is too old.",
            "Go back, reload the page and send the form again.",
        )
    }

    pub fn signed_out() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "Signed out",
            "Your session has ended (signed out, idle for too long, or the portal restarted).",
            "Sign in again, then repeat what you were doing.",
        )
    }

    pub fn unknown_key() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "Cannot sign in",
            "No key with that name is held here, or the passphrase is wrong.",
            "Check the name, or ask the administrator to issue your key.",
        )
    }

    pub fn unreadable_key() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "Cannot sign in",
            "Your key file could not be read.",
            "Ask the administrator to check or re-issue your key.",
        )
    }

    pub fn unprotected_key() -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "Cannot sign in",
            "This portal is reachable over the network, and your key is not protected by a passphrase.",
            "Ask the administrator to protect your key (`medseal protect NAME`).",
        )
    }

    pub fn not_authority() -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "For the authority only",
            "This page manages the member registry.",
            "Sign in as “authority” with the authority's passphrase.",
        )
    }

    pub fn authority_only_members() -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "Not with the authority's key",
            "The authority's session manages members; records are read and written with a member's key.",
            "Sign out and sign in as a member.",
        )
    }

    pub fn not_found() -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "Not found",
            "There is no such page or record.",
            "Check the address, or go back to your records.",
        )
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "Cannot do that",
            message,
            "Correct the form and send it again.",
        )
    }

    pub fn too_large(limit: u64) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "Upload too large",
            format!(
                "The attachments exceed this portal's limit of {} MiB.",
                limit / (1024 * 1024)
            ),
            "Send fewer or smaller files, or ask the administrator to raise the limit.",
        )
    }

    pub fn timeout() -> Self {
        Self::new(
            StatusCode::REQUEST_TIMEOUT,
            "Took too long",
            "The request did not finish in time.",
            "Try again; if it keeps happening, tell the administrator.",
        )
    }

    pub fn internal() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Something went wrong",
            "The portal could not finish the request.",
            "Try again; if it keeps happening, tell the administrator (the details are in the portal's log).",
        )
    }

    /// The page of this failure (with the menu if someone is signed in).
    pub fn into_page(self, user: Option<&SignedIn>) -> Response {
        let status = self.status;
        let body = html! {
            section.failure role="alert" {
                h1 { (self.title) }
                p { (self.message) }
                p.advice { strong { "What to do: " } (self.advice) }
            }
        };
        let mut response = pages::page(user, self.title, body).into_response();
        *response.status_mut() = status;
        response
    }
}

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        self.into_page(None)
    }
}

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        use StatusCode as S;
        let message = e.to_string();
        if e.is_tampering() {
            tracing::error!(error = %e, "tampering detected");
            return Self::new(
                S::BAD_GATEWAY,
                "Tampering detected",
                "Stored data did not match what the registry recorded for it, so it was not shown.",
                "Do not rely on this record. Tell the administrator: the storage may have been altered.",
            );
        }
        if e.is_unavailable() {
            tracing::warn!(error = %e, "a backend is unavailable");
            return Self::new(
                S::SERVICE_UNAVAILABLE,
                "Service unavailable",
                "The record store or the registry did not answer.",
                "Try again in a moment; if it persists, tell the administrator.",
            );
        }
        match &e {
            Error::AccessDenied { .. } => Self::new(
                S::FORBIDDEN,
                "Access denied",
                "Your key does not satisfy this record's policy.",
                "Request access: the record's owner or patient decides. In an emergency, use emergency access.",
            ),
            Error::KeyExpired { .. } => Self::new(
                S::FORBIDDEN,
                "Key expired",
                message,
                "Ask the administrator to renew your key.",
            ),
            Error::EmergencyOnly { .. } => Self::new(
                S::FORBIDDEN,
                "Emergency access only",
                "Your key opens this record only through emergency access, which is logged with a reason.",
                "Use emergency access and give the reason, or request access.",
            ),
            Error::NotAMember { .. } => Self::new(
                S::FORBIDDEN,
                "Not a registered member",
                message,
                "Choose a registered member, or ask the administrator to register them.",
            ),
            Error::NotOwner { .. }
            | Error::NotController { .. }
            | Error::NotPartitionOwner { .. } => Self::new(
                S::FORBIDDEN,
                "Not allowed",
                message,
                "Only the record's patient (or, without one, its owner) can do this.",
            ),
            Error::UnknownRecord(_) => Self::not_found(),
            Error::InvalidInput(_) | Error::Policy(_) | Error::Keyword(_) => Self::new(
                S::BAD_REQUEST,
                "Cannot do that",
                message,
                "Correct the form and send it again.",
            ),
            Error::Ledger(l) => match l {
                LedgerError::UnknownRecord { .. } => Self::not_found(),
                LedgerError::NotOwner { .. }
                | LedgerError::NotAuthorized { .. }
                | LedgerError::NotController { .. }
                | LedgerError::MemberRevoked { .. } => Self::new(
                    S::FORBIDDEN,
                    "Not allowed",
                    message,
                    "Only the record's patient (or, without one, its owner) can do this.",
                ),
                LedgerError::AlreadyRequested { .. }
                | LedgerError::NoPendingRequest { .. }
                | LedgerError::AlreadyGranted { .. }
                | LedgerError::NotGranted { .. }
                | LedgerError::InvalidUser { .. }
                | LedgerError::UnknownMember { .. }
                | LedgerError::ReasonTooLong { .. } => Self::new(
                    S::CONFLICT,
                    "Nothing to do",
                    message,
                    "Reload the record to see its current state.",
                ),
                _ => {
                    tracing::error!(error = %e, "registry failure");
                    Self::internal()
                }
            },
            _ => {
                tracing::error!(error = %e, "request failed");
                Self::internal()
            }
        }
    }
}
