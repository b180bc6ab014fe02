//! Shared helpers for the integration tests: a random policy generator with an
//! independent satisfaction evaluator (it does not use the library's `is_satisfied_by`).
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use proptest::prelude::*;
use std::collections::BTreeSet;

/// The attribute universe of the generated policies.
pub(crate) const UNIVERSE: &[&str] = &[
    "role:doctor",
    "role:nurse",
    "role:researcher",
    "dept:cardiology",
    "dept:oncology",
    "site:north",
];

/// A policy tree mirrored independently of the library.
#[derive(Debug, Clone)]
pub(crate) enum Tree {
    Leaf(usize),
    And(Vec<Tree>),
    Or(Vec<Tree>),
    Threshold(usize, Vec<Tree>),
}

impl Tree {
    pub(crate) fn text(&self) -> String {
        match self {
            Tree::Leaf(i) => UNIVERSE[*i].to_string(),
            Tree::And(c) => format!(
                "({})",
                c.iter().map(Tree::text).collect::<Vec<_>>().join(" and ")
            ),
            Tree::Or(c) => format!(
                "({})",
                c.iter().map(Tree::text).collect::<Vec<_>>().join(" or ")
            ),
            Tree::Threshold(k, c) => {
                format!(
                    "{k} of ({})",
                    c.iter().map(Tree::text).collect::<Vec<_>>().join(", ")
                )
            }
        }
    }

    pub(crate) fn satisfied(&self, held: &BTreeSet<usize>) -> bool {
        match self {
            Tree::Leaf(i) => held.contains(i),
            Tree::And(c) => c.iter().all(|t| t.satisfied(held)),
            Tree::Or(c) => c.iter().any(|t| t.satisfied(held)),
            Tree::Threshold(k, c) => c.iter().filter(|t| t.satisfied(held)).count() >= *k,
        }
    }
}

/// Random trees the library accepts (it refuses thresholds with duplicate alternatives).
pub(crate) fn tree() -> impl Strategy<Value = Tree> {
    let leaf = (0..UNIVERSE.len()).prop_map(Tree::Leaf);
    leaf.prop_recursive(3, 12, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 2..4).prop_map(Tree::And),
            prop::collection::vec(inner.clone(), 2..4).prop_map(Tree::Or),
            prop::collection::vec(inner, 2..5)
                .prop_flat_map(|c| {
                    let n = c.len();
                    (1..=n, Just(c))
                })
                .prop_map(|(k, c)| Tree::Threshold(k, c)),
        ]
    })
    .prop_filter("duplicate threshold alternatives", |t| {
        medseal_abe::Policy::parse(&t.text()).is_ok()
    })
}

pub(crate) fn held() -> impl Strategy<Value = BTreeSet<usize>> {
    prop::collection::btree_set(0..UNIVERSE.len(), 0..=UNIVERSE.len())
}

pub(crate) fn names(held: &BTreeSet<usize>) -> Vec<&'static str> {
    held.iter().map(|i| UNIVERSE[*i]).collect()
}
