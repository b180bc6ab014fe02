//! Entry points for fuzz targets (hidden; re-exported as `medseal_abe::__fuzz`).

use super::{AttributeSet, Policy};

/// Parses `data` as policy text; when it parses, checks that the canonical form reparses
/// to the same tree and prints identically. Also feeds the text, split at commas, to
/// [`AttributeSet::parse`]. Must never panic except on a round-trip violation.
pub fn policy_parse(data: &[u8]) {
    let Ok(text) = core::str::from_utf8(data) else {
        return;
    };
    if let Ok(policy) = Policy::parse(text) {
        let printed = policy.to_string();
        let reparsed = Policy::parse(&printed);
        assert_eq!(
            reparsed.as_ref(),
            Ok(&policy),
            "canonical form {printed:?} of {text:?}"
        );
        let reprinted = reparsed.map(|p| p.to_string()).unwrap_or_default();
        assert_eq!(reprinted, printed, "printing is not idempotent");
        let set = AttributeSet::new();
        let _ = policy.is_satisfied_by(&set);
    }
    let _ = AttributeSet::parse(text.split(','));
}
