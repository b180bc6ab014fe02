//! [`Keyword`]: typed, normalised search keywords shared by both schemes.
//!
//! Normalisation rules: see [`Keyword`].

use crate::error::KeywordError;
use unicode_normalization::UnicodeNormalization;

/// Maximum length of a normalised keyword in bytes.
pub const MAX_KEYWORD_LEN: usize = 256;
/// Maximum length of the raw input in bytes (checked before normalising, which can grow
/// the text).
pub const MAX_KEYWORD_INPUT_LEN: usize = 1024;
/// Most normalisation passes [`Keyword::parse`] applies before it gives up on reaching a
/// fixed point (the last pass only confirms that nothing changes).
pub const MAX_NORMALISATION_PASSES: usize = 4;

/// The keyword types [`Keyword::parse`] accepts: `icd10` (ICD-10 diagnosis codes) and
/// `term` (free-text terms).
///
/// A keyword of any other type (a typo such as `icd:I48.0` or `icd-10:I48.0`) would
/// silently match nothing, so it is refused with [`KeywordError::UnknownType`].
pub const KEYWORD_TYPES: [&str; 2] = ["icd10", "term"];

/// A normalised search keyword `type:value`.
///
/// A keyword is `type:value`, e.g. `icd10:I10` or `term:asthma`. One normalisation pass
/// does, in order:
///
/// 1. Unicode NFKC (compatibility composition: `ﬁ` → `fi`, full-width → ASCII, …);
/// 2. lowercase (Unicode `to_lowercase`), then NFKC again (lowercasing can leave a
///    string that is no longer NFKC);
/// 3. split at the first `:`; type and value are each trimmed of Unicode whitespace;
/// 4. the type must be non-empty and in `[a-z0-9_.-]`, the value non-empty;
/// 5. for type `icd10` the dots are removed from the value (`I10.1` and `I101` are the
///    same code; the CDC code list writes codes without dots), and the value is trimmed
///    again.
///
/// The type must then be one of [`KEYWORD_TYPES`] ([`Keyword::parse_any_type`] skips
/// this check, for keyword text stored by earlier versions).
///
/// [`Keyword::parse`] repeats the pass until the text no longer changes (at most
/// [`MAX_NORMALISATION_PASSES`] passes, else [`KeywordError::Unstable`]): the canonical
/// text is a fixed point of the pass. Removing a dot can join characters that NFKC then
/// composes (`icd10:a.` + U+0308 gives `a` + U+0308 after one pass and `icd10:ä` after
/// two), so a single pass is not always enough. Hence for every keyword `k`,
/// `Keyword::parse(k.as_str()) == Ok(k)`: text that was displayed or stored re-parses to
/// the same keyword, the same labels and the same search results. For ordinary inputs
/// one pass already reaches the fixed point (the second pass only confirms it).
///
/// The canonical text is `type:value`; its UTF-8 bytes are what the schemes hash. It is
/// a frozen format: changing it would make every existing index unsearchable.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Keyword(String);

impl Keyword {
    /// Parses and normalises `type:value` (rules: see [`Keyword`]); the type must be one
    /// of [`KEYWORD_TYPES`].
    ///
    /// # Errors
    /// [`KeywordError`] if the input is too long, lacks a type, has an invalid or unknown
    /// type ([`KeywordError::UnknownType`]) or an empty value, or does not reach a fixed
    /// point of normalisation.
    pub fn parse(text: &str) -> Result<Self, KeywordError> {
        let keyword = Self::parse_any_type(text)?;
        if !KEYWORD_TYPES.contains(&keyword.kind()) {
            return Err(KeywordError::UnknownType {
                kind: keyword.kind().to_owned(),
            });
        }
        Ok(keyword)
    }

    /// [`Keyword::parse`] without the check that the type is one of [`KEYWORD_TYPES`]:
    /// for keyword text that earlier versions stored (they accepted any well-formed
    /// type), never for what a user typed. Idempotent like `parse`.
    ///
    /// # Errors
    /// As for [`Keyword::parse`], except [`KeywordError::UnknownType`].
    pub fn parse_any_type(text: &str) -> Result<Self, KeywordError> {
        if text.len() > MAX_KEYWORD_INPUT_LEN {
            return Err(KeywordError::TooLong {
                len: text.len(),
                max: MAX_KEYWORD_INPUT_LEN,
            });
        }
        let mut canonical = normalise_once(text)?;
        for _ in 1..MAX_NORMALISATION_PASSES {
            let again = normalise_once(&canonical)?;
            if again == canonical {
                if canonical.len() > MAX_KEYWORD_LEN {
                    return Err(KeywordError::TooLong {
                        len: canonical.len(),
                        max: MAX_KEYWORD_LEN,
                    });
                }
                return Ok(Self(canonical));
            }
            canonical = again;
        }
        Err(KeywordError::Unstable)
    }

    /// `type:value` from its two parts (each normalised as by [`Keyword::parse`]).
    ///
    /// # Errors
    /// As for [`Keyword::parse`]; a `kind` containing `:` is an invalid type.
    pub fn typed(kind: &str, value: &str) -> Result<Self, KeywordError> {
        if kind.contains(':') {
            return Err(KeywordError::InvalidType);
        }
        Self::parse(&format!("{kind}:{value}"))
    }

    /// An ICD-10 diagnosis code keyword, `icd10:<code>`.
    ///
    /// # Errors
    /// As for [`Keyword::parse`].
    pub fn icd10(code: &str) -> Result<Self, KeywordError> {
        Self::typed("icd10", code)
    }

    /// A free-text term keyword, `term:<text>`.
    ///
    /// # Errors
    /// As for [`Keyword::parse`].
    pub fn term(text: &str) -> Result<Self, KeywordError> {
        Self::typed("term", text)
    }

    /// The canonical text `type:value`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The type prefix.
    pub fn kind(&self) -> &str {
        self.0.split_once(':').map_or("", |(k, _)| k)
    }

    /// The value after the prefix.
    pub fn value(&self) -> &str {
        self.0.split_once(':').map_or("", |(_, v)| v)
    }

    /// The bytes the schemes hash.
    pub(crate) fn as_bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

/// One normalisation pass (steps 1 to 5 of [`Keyword`]): `type:value` text.
fn normalise_once(text: &str) -> Result<String, KeywordError> {
    let folded: String = text
        .nfkc()
        .collect::<String>()
        .to_lowercase()
        .nfkc()
        .collect();
    let (kind, value) = folded.split_once(':').ok_or(KeywordError::MissingType)?;
    let kind = kind.trim();
    let value = value.trim();
    if kind.is_empty()
        || !kind
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"_.-".contains(&b))
    {
        return Err(KeywordError::InvalidType);
    }
    let value: String = if kind == "icd10" {
        value.chars().filter(|&c| c != '.').collect()
    } else {
        value.to_owned()
    };
    let value = value.trim();
    if value.is_empty() {
        return Err(KeywordError::EmptyValue);
    }
    Ok(format!("{kind}:{value}"))
}

impl core::str::FromStr for Keyword {
    type Err = KeywordError;
    fn from_str(s: &str) -> Result<Self, KeywordError> {
        Self::parse(s)
    }
}

impl core::fmt::Display for Keyword {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(&self.0)
    }
}

// Keywords are search secrets: `Debug` shows only the type.
redacted_debug!(Keyword, |x| "kind" => x.kind());

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises() {
        let k = Keyword::parse("  ICD10 : I10.1 ").unwrap();
        assert_eq!(k.as_str(), "icd10:i101");
        assert_eq!(k, Keyword::icd10("i101").unwrap());
        // Full-width letters and the fi ligature fold to ASCII under NFKC.
        let k = Keyword::parse("ＴＥＲＭ:ﬁbrosis").unwrap();
        assert_eq!(k.as_str(), "term:fibrosis");
        assert_eq!(k.kind(), "term");
        assert_eq!(k.value(), "fibrosis");
        // Dots are kept outside icd10.
        assert_eq!(Keyword::term("a.b").unwrap().as_str(), "term:a.b");
        // Only the first colon separates.
        assert_eq!(Keyword::parse("term:a:b").unwrap().value(), "a:b");
    }

    #[test]
    fn rejects() {
        assert_eq!(Keyword::parse("asthma"), Err(KeywordError::MissingType));
        assert_eq!(Keyword::parse(":asthma"), Err(KeywordError::InvalidType));
        assert_eq!(Keyword::parse("te rm:x"), Err(KeywordError::InvalidType));
        assert_eq!(Keyword::parse("term:   "), Err(KeywordError::EmptyValue));
        assert_eq!(Keyword::parse("icd10:..."), Err(KeywordError::EmptyValue));
        assert_eq!(Keyword::typed("a:b", "c"), Err(KeywordError::InvalidType));
        let long = format!("term:{}", "x".repeat(MAX_KEYWORD_LEN));
        assert!(matches!(
            Keyword::parse(&long),
            Err(KeywordError::TooLong { .. })
        ));
        let huge = "x".repeat(MAX_KEYWORD_INPUT_LEN + 1);
        assert!(matches!(
            Keyword::parse(&huge),
            Err(KeywordError::TooLong { .. })
        ));
    }

    /// Issue 12: removing the dot joins `a` and U+0308, which NFKC composes to `ä`; a
    /// single pass returned `icd10:a` + U+0308, which re-parsed to a different keyword.
    #[test]
    fn dot_removal_reaches_a_fixed_point() {
        let k = Keyword::parse("icd10:a.\u{0308}").unwrap();
        assert_eq!(k.as_str(), "icd10:\u{e4}");
        assert_eq!(Keyword::parse(k.as_str()).unwrap(), k);
        assert_eq!(Keyword::icd10("\u{e4}").unwrap(), k);
        assert_eq!(Keyword::icd10("A.\u{0308}").unwrap(), k);
        // Outside icd10 the dot stays and blocks the composition.
        let t = Keyword::term("a.\u{0308}").unwrap();
        assert_eq!(t.as_str(), "term:a.\u{0308}");
        assert_eq!(Keyword::parse(t.as_str()).unwrap(), t);
    }

    /// Issue 12: `icd:I48.0` and `icd-10:I48.0` were accepted and matched nothing.
    #[test]
    fn unknown_types_are_refused_with_the_known_ones() {
        for text in [
            "icd:I48.0",
            "icd-10:I48.0",
            "ICD_10:I48.0",
            "loinc:1234-5",
            "Term2:x",
        ] {
            let error = Keyword::parse(text).unwrap_err();
            assert!(
                matches!(&error, KeywordError::UnknownType { kind } if text.to_lowercase().starts_with(kind.as_str())),
                "{text}: {error:?}"
            );
            let message = error.to_string();
            assert!(
                message.contains("icd10") && message.contains("term"),
                "{message}"
            );
            assert!(Keyword::typed(text.split(':').next().unwrap(), "x").is_err());
        }
        // Case and width fold before the check.
        assert_eq!(
            Keyword::parse("ICD10:I48.0").unwrap().as_str(),
            "icd10:i480"
        );
        assert_eq!(Keyword::parse("ｔｅｒｍ:x").unwrap().as_str(), "term:x");
        // Stored text of another type still parses where it has to, idempotently.
        let stored = Keyword::parse_any_type("LOINC:1234-5").unwrap();
        assert_eq!(stored.as_str(), "loinc:1234-5");
        assert_eq!(Keyword::parse_any_type(stored.as_str()).unwrap(), stored);
        assert_eq!(
            Keyword::parse_any_type("icd10:I48.0").unwrap(),
            Keyword::icd10("I48.0").unwrap()
        );
        assert_eq!(
            Keyword::parse_any_type("nocolon"),
            Err(KeywordError::MissingType)
        );
    }

    #[test]
    fn debug_hides_value() {
        let k = Keyword::term("hiv").unwrap();
        assert!(!format!("{k:?}").contains("hiv"));
    }
}
