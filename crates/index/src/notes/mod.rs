//! Design notes (documentation only).

pub mod formats;
pub mod leakage;
