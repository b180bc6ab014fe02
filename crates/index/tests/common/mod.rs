//! Helpers shared by the integration tests.
#![allow(dead_code, unreachable_pub)]

use medseal_index::Keyword;
use medseal_index::dictionary::{Icd10Code, parse_tsv};
use std::io::Read;

/// The vendored ICD-10-CM list.
pub fn icd10cm() -> Vec<Icd10Code> {
    let gz = include_bytes!("../../data/icd10cm.tsv.gz");
    let mut text = String::new();
    flate2::read::GzDecoder::new(&gz[..])
        .read_to_string(&mut text)
        .unwrap();
    parse_tsv(&text)
}

/// The dictionary as keywords.
pub fn icd10_keywords() -> Vec<Keyword> {
    icd10cm()
        .iter()
        .map(|c| Keyword::icd10(&c.code).unwrap())
        .collect()
}

/// Random-ish small policies over attributes `a0..a3`, as policy text, with an
/// evaluator.
#[derive(Debug, Clone)]
pub enum Tree {
    Leaf(usize),
    And(Vec<Tree>),
    Or(Vec<Tree>),
    Threshold(usize, Vec<Tree>),
}

pub const UNIVERSE: usize = 4;

impl Tree {
    pub fn text(&self) -> String {
        match self {
            Tree::Leaf(i) => format!("attr:a{i}"),
            Tree::And(c) => format!(
                "({})",
                c.iter().map(Tree::text).collect::<Vec<_>>().join(" and ")
            ),
            Tree::Or(c) => format!(
                "({})",
                c.iter().map(Tree::text).collect::<Vec<_>>().join(" or ")
            ),
            Tree::Threshold(k, c) => format!(
                "{k} of ({})",
                c.iter().map(Tree::text).collect::<Vec<_>>().join(", ")
            ),
        }
    }

    pub fn satisfied(&self, held: &[bool]) -> bool {
        match self {
            Tree::Leaf(i) => held[*i],
            Tree::And(c) => c.iter().all(|t| t.satisfied(held)),
            Tree::Or(c) => c.iter().any(|t| t.satisfied(held)),
            Tree::Threshold(k, c) => c.iter().filter(|t| t.satisfied(held)).count() >= *k,
        }
    }
}

/// Random trees the library accepts (it refuses thresholds with duplicate alternatives).
pub fn tree() -> impl proptest::strategy::Strategy<Value = Tree> {
    use proptest::prelude::*;
    let leaf = (0..UNIVERSE).prop_map(Tree::Leaf);
    leaf.prop_recursive(2, 8, 3, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 2..=3).prop_map(Tree::And),
            prop::collection::vec(inner.clone(), 2..=3).prop_map(Tree::Or),
            prop::collection::vec(inner, 3..=3).prop_map(|c| Tree::Threshold(2, c)),
        ]
    })
    .prop_filter("duplicate threshold alternatives", |t| {
        medseal_abe::Policy::parse(&t.text()).is_ok()
    })
}

pub fn attrs(held: &[bool]) -> Vec<String> {
    held.iter()
        .enumerate()
        .filter(|(_, h)| **h)
        .map(|(i, _)| format!("attr:a{i}"))
        .collect()
}
