//! Design notes (documentation only).

#[doc = include_str!("../../docs/threat-model.md")]
pub mod threat_model {}
