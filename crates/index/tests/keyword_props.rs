//! Keyword normalisation is idempotent: whatever parses re-parses from its canonical text
//! to the same keyword (issue 12: a keyword that did not would be unsearchable, and
//! state kept as keyword text could repeat an index label).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use medseal_index::Keyword;
use proptest::prelude::*;

/// Characters that interact with the normalisation: dots and dot-like compatibility
/// characters, combining marks, full-width and ligature forms, whitespace, case pairs,
/// Hangul jamo (which compose), context-dependent lowercasing (Σ, İ) and colons.
fn tricky_char() -> impl Strategy<Value = char> {
    prop_oneof![
        3 => prop::sample::select(vec![
            '.', '.', ':', '\u{ff0e}', '\u{ff1a}', '\u{2024}', '\u{fe52}', '\u{3002}',
            '\u{0308}', '\u{0301}', '\u{0323}', '\u{0327}', '\u{0338}', '\u{0345}',
            '\u{3099}', '\u{309a}', ' ', '\t', '\u{3000}', '\u{a0}', '\u{2003}', '\u{85}',
            'a', 'A', 'e', 'E', 'i', 'I', 'o', 'u', 'n', 'c', 'C', 'k', 'K', '\u{212a}',
            'ß', 'ẞ', 'Σ', 'σ', 'ς', 'İ', 'ı', 'ﬁ', 'Ａ', 'ｅ', '１', '0', '9', '_', '-',
            'ä', 'Ä', '\u{1100}', '\u{1161}', '\u{11a8}', '\u{ac00}', 'か', 'ｶ', '\u{ff9e}',
            '\u{00a8}', '\u{1fbf}', '\u{037a}', 'ǅ', 'Ⅻ', '㎏', '\u{2126}', '\u{fb2a}',
        ]),
        1 => any::<char>(),
    ]
}

fn tricky_text() -> impl Strategy<Value = String> {
    prop::collection::vec(tricky_char(), 0..24).prop_map(|c| c.into_iter().collect())
}

/// `type:value` with a type that often parses (`icd10`, `term`, cased and full-width).
fn keyword_text() -> impl Strategy<Value = String> {
    let kind = prop_oneof![
        prop::sample::select(vec![
            "icd10",
            "ICD10",
            "ｉｃｄ１０",
            " icd10 ",
            "term",
            "TERM",
            "loinc",
            "a.b"
        ])
        .prop_map(str::to_owned),
        tricky_text(),
    ];
    (kind, tricky_text()).prop_map(|(k, v)| format!("{k}:{v}"))
}

fn check(text: &str) -> Result<(), TestCaseError> {
    if let Ok(k) = Keyword::parse(text) {
        let again = Keyword::parse(k.as_str());
        prop_assert!(
            again.is_ok(),
            "{text:?} -> {:?} fails: {again:?}",
            k.as_str()
        );
        prop_assert_eq!(again.unwrap(), k.clone(), "input {:?}", text);
        prop_assert_eq!(k.to_string().parse::<Keyword>().unwrap(), k.clone());
        prop_assert_eq!(Keyword::typed(k.kind(), k.value()).unwrap(), k);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 4096, ..ProptestConfig::default() })]

    #[test]
    fn parse_is_idempotent(text in keyword_text()) {
        check(&text)?;
    }

    #[test]
    fn parse_is_idempotent_on_arbitrary_strings(text in any::<String>()) {
        check(&text)?;
    }
}

#[test]
fn reported_case() {
    let k = Keyword::parse("icd10:a.\u{0308}").unwrap();
    assert_eq!(Keyword::parse(k.as_str()).unwrap(), k);
    assert_eq!(k, Keyword::parse("icd10:\u{e4}").unwrap());
}
