//! Validation of trees built in code or deserialised: the same rules and limits as the parser.

use super::Limits;
use super::compare;
use super::error::{PolicyError, PolicyErrorKind};
use super::node::{Attribute, Node, check_name};

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
        .try_for_each(|child| walk(child, gates_above + 1, limits, leaves))
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

fn add_leaves(leaves: &mut usize, cost: usize, limits: &Limits) -> Result<(), PolicyError> {
    *leaves = leaves.saturating_add(cost);
    if *leaves > limits.max_leaves {
        return Err(err(PolicyErrorKind::TooManyLeaves {
            max: limits.max_leaves,
        }));
    }
    Ok(())
}
