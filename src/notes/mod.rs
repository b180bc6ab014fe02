//! Design notes (documentation only).

#[doc = include_str!("../../docs/threat-model.md")]
pub mod threat_model {}

#[doc = include_str!("../../docs/authority-custody.md")]
pub mod custody {}

#[doc = include_str!("../../docs/expiry.md")]
pub mod expiry {}

#[doc = include_str!("../../docs/revocation.md")]
pub mod revocation {}
