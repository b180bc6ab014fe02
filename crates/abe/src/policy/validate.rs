//! Validation of trees built in code or deserialised: the same rules and limits as the parser.

use super::Limits;
use super::compare;
use super::error::{PolicyError, PolicyErrorKind};
use super::node::{Attribute, CmpOp, Node, check_name};
use std::collections::BTreeSet;

/// Longest suffix a bit label adds to a name: `#31=1`.
pub(crate) const BIT_LABEL_SUFFIX_MAX: usize = 5;

/// Validates `root` and returns its leaf count (after numeric expansion).
pub(crate) fn validate(root: &Node, limits: &Limits) -> Result<usize, PolicyError> {
    let mut leaves = 0;
    walk(root, 0, limits, &mut leaves)?;
    Ok(leaves)
}

fn err(kind: PolicyErrorKind) -> PolicyError {
    PolicyError::new(kind, 0)
}

/// `gates_above` counts the gates on the path from the root; a gate there makes the tree at
/// least `gates_above + 1` deep, so refusing it bounds the recursion by the depth limit.
fn walk(
    node: &Node,
    gates_above: usize,
    limits: &Limits,
    leaves: &mut usize,
) -> Result<(), PolicyError> {
    let children = match node {
        Node::Attribute(attribute) => {
            check_attribute(attribute, limits)?;
            return add_leaves(leaves, 1, limits);
        }
        Node::Compare { name, op, value } => {
            check_name(name)?;
            check_bit_label_len(name, limits)?;
            compare::check(*op, *value).map_err(err)?;
            let cost = compare::comparison_leaf_count(*op, *value)
                .ok_or(err(PolicyErrorKind::UnsatisfiableComparison))?;
            return add_leaves(leaves, cost, limits);
        }
        Node::And(children) | Node::Or(children) => {
            if children.len() < 2 {
                return Err(err(PolicyErrorKind::TooFewChildren));
            }
            children
        }
        Node::Threshold { k, children } => {
            check_threshold(*k, children.len()).map_err(err)?;
            children
        }
    };
    if gates_above >= limits.depth() {
        return Err(err(PolicyErrorKind::TooDeep {
            max: limits.depth(),
        }));
    }
    children
        .iter()
        .try_for_each(|child| walk(child, gates_above + 1, limits, leaves))?;
    // After the children: they are validated, so the recursion of `canonical` is bounded.
    if let Node::Threshold { children, .. } = node
        && let Some(index) = duplicate_child(children)
    {
        return Err(err(PolicyErrorKind::DuplicateAlternative { index }));
    }
    Ok(())
}

/// The index of the first child equivalent to an earlier one. A threshold gate with two
/// equivalent alternatives is refused: `2 of (a, a, b)` would be satisfied by `a` alone,
/// since the LSSS gives each copy its own share.
///
/// Children are compared in a canonical form (see [`Canonical`]). Duplicates under `and` and
/// `or` are harmless (`a and a` needs `a`, `a or a` is `a`), so they stay allowed.
pub(crate) fn duplicate_child(children: &[Node]) -> Option<usize> {
    let mut seen = BTreeSet::new();
    children
        .iter()
        .position(|child| !seen.insert(Canonical::of(child)))
}

/// A subtree up to rewritings that cannot change which keys satisfy it: `and`/`or` children
/// are flattened into a nested gate of the same kind (`(a and b) and c` = `a and b and c`),
/// sorted and deduplicated, a one-child gate is its child, `1 of` is `or` and `n of n` is
/// `and`, threshold children are sorted, and comparisons use `<`, `>=` or `==` only
/// (`x <= 3` = `x < 4`, `x > 2` = `x >= 3`).
///
/// It detects the duplicates a policy author writes by accident (repeats, reorderings,
/// extra parentheses, `x:1` vs `x:"1"`); it is not a full equivalence test of formulas
/// (`a or (a and b)` and `a` are equivalent but differ here).
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Canonical<'a> {
    Attribute(&'a Attribute),
    Compare(&'a str, CmpOp, u32),
    And(Vec<Canonical<'a>>),
    Or(Vec<Canonical<'a>>),
    Threshold(usize, Vec<Canonical<'a>>),
}

impl<'a> Canonical<'a> {
    /// Recursion depth is the tree's, so call it on depth-validated trees only.
    fn of(node: &'a Node) -> Self {
        match node {
            Node::Attribute(attribute) => Self::Attribute(attribute),
            Node::Compare { name, op, value } => {
                let (op, value) = match (*op, value.checked_add(1)) {
                    (CmpOp::Le, Some(next)) => (CmpOp::Lt, next),
                    (CmpOp::Gt, Some(next)) => (CmpOp::Ge, next),
                    (op, _) => (op, *value),
                };
                Self::Compare(name, op, value)
            }
            Node::And(children) => Self::gate(children, true),
            Node::Or(children) => Self::gate(children, false),
            Node::Threshold { k, children } if *k == 1 => Self::gate(children, false),
            Node::Threshold { k, children } if *k == children.len() => Self::gate(children, true),
            Node::Threshold { k, children } => {
                let mut items: Vec<_> = children.iter().map(Self::of).collect();
                items.sort_unstable();
                Self::Threshold(*k, items)
            }
        }
    }

    fn gate(children: &'a [Node], and: bool) -> Self {
        let mut items = Vec::with_capacity(children.len());
        for child in children {
            match (Self::of(child), and) {
                (Self::And(inner), true) | (Self::Or(inner), false) => items.extend(inner),
                (other, _) => items.push(other),
            }
        }
        items.sort_unstable();
        items.dedup();
        if items.len() == 1
            && let Some(only) = items.pop()
        {
            return only;
        }
        if and {
            Self::And(items)
        } else {
            Self::Or(items)
        }
    }
}

pub(crate) fn check_threshold(k: usize, n: usize) -> Result<(), PolicyErrorKind> {
    if n >= 2 && (1..=n).contains(&k) {
        Ok(())
    } else {
        Err(PolicyErrorKind::InvalidThreshold { k, n })
    }
}

pub(crate) fn check_attribute(attribute: &Attribute, limits: &Limits) -> Result<(), PolicyError> {
    if attribute.label_len() > limits.max_label_len {
        return Err(err(PolicyErrorKind::LabelTooLong {
            max: limits.max_label_len,
        }));
    }
    Ok(())
}

pub(crate) fn check_bit_label_len(name: &str, limits: &Limits) -> Result<(), PolicyError> {
    if name.len().saturating_add(BIT_LABEL_SUFFIX_MAX) > limits.max_label_len {
        return Err(err(PolicyErrorKind::LabelTooLong {
            max: limits.max_label_len,
        }));
    }
    Ok(())
}

/// Adds `cost` leaves to the count, refusing more than [`Limits::max_leaves`] (offset 0).
pub(crate) fn add_leaves(
    leaves: &mut usize,
    cost: usize,
    limits: &Limits,
) -> Result<(), PolicyError> {
    *leaves = leaves.saturating_add(cost);
    if *leaves > limits.max_leaves {
        return Err(err(PolicyErrorKind::TooManyLeaves {
            max: limits.max_leaves,
        }));
    }
    Ok(())
}
