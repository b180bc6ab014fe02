//! The access-policy language.
//!
//! # Grammar
//!
//! ```text
//! policy    := or
//! or        := and ("or" and)*
//! and       := atom ("and" atom)*
//! atom      := attribute | "(" policy ")" | INT "of" "(" policy ("," policy)+ ")"
//! attribute := name | name ":" value | name CMP INT
//! CMP       := "<" | "<=" | ">" | ">=" | "=="
//! name      := [A-Za-z_][A-Za-z0-9_.-]*            (not a keyword)
//! value     := [A-Za-z0-9_.@/+-]+ | '"' (any UTF-8, with \" and \\ escapes)+ '"'
//! ```
//!
//! * `and` binds tighter than `or`. Keywords (`and`, `or`, `of`) are case-insensitive and
//!   reserved: they cannot be attribute names (they can be values: `status:or` is fine).
//! * **Names and values are case-sensitive** and are never normalised: `Role:Doctor` and
//!   `role:doctor` are different attributes. Issue keys with exactly the spelling policies
//!   use.
//! * `name:value` is one token: no whitespace around `:`. Elsewhere ASCII spaces, tabs, line
//!   feeds and carriage returns separate tokens. A number must be followed by a separator
//!   (`2of(...)` and `level >= 3x` are errors).
//! * `k of (p1, ..., pn)` needs `1 <= k <= n` and `n >= 2`.
//! * The alternatives of `k of (...)` must be distinct: `2 of (a, a, b)` would be satisfied
//!   by `a` alone, so it is refused ([`PolicyErrorKind::DuplicateAlternative`]), also when
//!   the copies differ only in order, parentheses or spelling (`2 of (x:1, (x:"1"), b)`,
//!   `2 of (a and b, b and a, c)`, `2 of (n > 2, n >= 3, c)`). Repeats under `and` and `or`
//!   are allowed: they cannot change who satisfies the policy.
//! * `name CMP INT` compares a numeric (`u32`) attribute; it compiles to an AND/OR formula
//!   over 32 bit labels (see [`comparison_leaf_count`] for the cost in LSSS rows). Comparisons
//!   that are always true (`>= 0`, `<= 4294967295`) or never true (`< 0`, `> 4294967295`) are
//!   rejected.
//!
//! # Labels
//!
//! Each leaf becomes one or more *labels*, byte strings that the schemes hash (a **frozen
//! format**): `name` for a bare attribute, `name:value` for a pair (raw value, unescaped) and
//! `name#i=b` for bit `i` of numeric attribute `name` having value `b` (see [`bit_label`]).
//!
//! # Canonical form
//!
//! [`Policy`]'s `Display` prints lowercase keywords, single spaces, the minimal parentheses
//! that keep the tree's structure (`(a and b) and c` stays nested) and quotes only values
//! that need them. `Policy::parse(&p.to_string()) == Ok(p)` for every policy.
//!
//! # Limits
//!
//! Parsing and validation enforce [`Limits`] before doing work proportional to the input, and
//! the parser never recurses deeper than the depth limit (capped at [`Limits::MAX_DEPTH`]).

mod attrs;
mod compare;
mod error;
#[doc(hidden)]
pub mod fuzz;
mod lexer;
mod node;
mod parse;
mod print;
#[cfg(feature = "serde")]
mod serde_impl;
#[cfg(test)]
mod tests;
mod validate;

use core::fmt;
use core::str::FromStr;

pub use attrs::AttributeSet;
pub(crate) use compare::{BitFormula, expand as expand_comparison};
pub use compare::{NUMERIC_BITS, bit_label, comparison_leaf_count};
pub use error::{PolicyError, PolicyErrorKind};
pub use node::{Attribute, CmpOp, Node};

/// Resource limits for parsing policies and building attribute sets.
///
/// The defaults suit interactive use; raise them deliberately, since decryption and
/// ciphertext size grow with the number of leaves.
///
/// The decoders of keys and ciphertexts always apply the defaults, so raised limits serve
/// to parse and inspect larger inputs only: [`Scheme::encapsulate`](crate::Scheme) (hence
/// sealing) and [`Scheme::keygen`](crate::Scheme) refuse a policy or attribute set beyond
/// the defaults, rather than produce an object that would not decode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Limits {
    /// Maximum policy text length in bytes (checked before anything else). Default 64 KiB.
    pub max_text_len: usize,
    /// Maximum number of leaves (= LSSS rows), counting each comparison as the number of bit
    /// labels it expands to. Default 1024.
    pub max_leaves: usize,
    /// Maximum tree depth (a leaf has depth 0, a gate one more than its deepest child) and
    /// maximum nesting of parentheses in text. Default 32; values above
    /// [`Limits::MAX_DEPTH`] act as `MAX_DEPTH`.
    pub max_depth: usize,
    /// Maximum length of one label in bytes (`name:value`, or `name#31=1` for numeric
    /// attributes). Default 1024.
    pub max_label_len: usize,
    /// Maximum number of labels in an [`AttributeSet`] (a numeric attribute counts 32).
    /// Default 1024.
    pub max_attributes: usize,
}

impl Limits {
    /// Hard cap on [`Limits::max_depth`], so that recursion over trees stays far from the
    /// stack limit whatever the configuration.
    pub const MAX_DEPTH: usize = 128;

    /// The depth limit in force.
    pub(crate) fn depth(&self) -> usize {
        self.max_depth.min(Self::MAX_DEPTH)
    }

    /// Refuses a text longer than [`Limits::max_text_len`] (offset: the limit).
    pub(crate) fn check_text_len(&self, text: &str) -> Result<(), PolicyError> {
        if text.len() > self.max_text_len {
            let kind = PolicyErrorKind::TooLong {
                len: text.len(),
                max: self.max_text_len,
            };
            return Err(PolicyError::new(kind, self.max_text_len));
        }
        Ok(())
    }
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_text_len: 64 * 1024,
            max_leaves: 1024,
            max_depth: 32,
            max_label_len: 1024,
            max_attributes: 1024,
        }
    }
}

/// A validated policy tree.
///
/// Construct it by parsing ([`Policy::parse`], `str::parse`), from code
/// ([`Policy::attribute`], [`Policy::compare`], [`Policy::and`], [`Policy::or`],
/// [`Policy::threshold`], [`Policy::from_node`]) or by deserialising its JSON form. All paths
/// apply the same validation and limits.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Policy {
    root: Node,
    leaves: usize,
}

impl Policy {
    /// Parses policy text with the default [`Limits`].
    ///
    /// # Errors
    /// A [`PolicyError`] with the byte offset of the problem.
    pub fn parse(text: &str) -> Result<Self, PolicyError> {
        Self::parse_with_limits(text, &Limits::default())
    }

    /// Parses policy text with explicit limits.
    ///
    /// # Errors
    /// A [`PolicyError`] with the byte offset of the problem.
    pub fn parse_with_limits(text: &str, limits: &Limits) -> Result<Self, PolicyError> {
        let (root, leaves) = parse::parse(text, limits)?;
        Ok(Self { root, leaves })
    }

    /// Validates a tree built in code with the default [`Limits`].
    ///
    /// # Errors
    /// Invalid names/values, `and`/`or` with fewer than two children, bad thresholds,
    /// thresholds with duplicate alternatives, tautological comparisons and exceeded limits
    /// (offset 0).
    pub fn from_node(root: Node) -> Result<Self, PolicyError> {
        Self::from_node_with_limits(root, &Limits::default())
    }

    /// Validates a tree built in code with explicit limits.
    ///
    /// # Errors
    /// As for [`Policy::from_node`].
    pub fn from_node_with_limits(root: Node, limits: &Limits) -> Result<Self, PolicyError> {
        let leaves = validate::validate(&root, limits)?;
        Ok(Self { root, leaves })
    }

    /// A single-attribute policy from its policy-syntax form (`role:doctor`,
    /// `dept:"cardio unit"`, `admin`). For a raw value use [`Attribute::new`] and
    /// [`Node::Attribute`].
    ///
    /// # Errors
    /// As for parsing.
    pub fn attribute(text: &str) -> Result<Self, PolicyError> {
        Limits::default().check_text_len(text)?;
        Self::from_node(Node::Attribute(Attribute::parse(text)?))
    }

    /// A numeric comparison `name OP value`.
    ///
    /// # Errors
    /// Invalid name, tautological or unsatisfiable comparison.
    pub fn compare(name: &str, op: CmpOp, value: u32) -> Result<Self, PolicyError> {
        Self::from_node(Node::Compare {
            name: name.to_owned(),
            op,
            value,
        })
    }

    /// All of `children`. One child is returned as is; the children are kept as subtrees
    /// (an `and` child stays a nested `and`).
    ///
    /// # Errors
    /// [`PolicyErrorKind::EmptyPolicy`] for no children, or exceeded default limits.
    pub fn and(children: Vec<Policy>) -> Result<Self, PolicyError> {
        Self::gate(children, Node::And)
    }

    /// Any of `children`. One child is returned as is.
    ///
    /// # Errors
    /// [`PolicyErrorKind::EmptyPolicy`] for no children, or exceeded default limits.
    pub fn or(children: Vec<Policy>) -> Result<Self, PolicyError> {
        Self::gate(children, Node::Or)
    }

    /// At least `k` of `children`.
    ///
    /// # Errors
    /// [`PolicyErrorKind::InvalidThreshold`] unless `1 <= k <= n` and `n >= 2`,
    /// [`PolicyErrorKind::DuplicateAlternative`] if two children are equivalent, or exceeded
    /// default limits.
    pub fn threshold(k: usize, children: Vec<Policy>) -> Result<Self, PolicyError> {
        let children = children.into_iter().map(Policy::into_root).collect();
        Self::from_node(Node::Threshold { k, children })
    }

    fn gate(children: Vec<Policy>, make: fn(Vec<Node>) -> Node) -> Result<Self, PolicyError> {
        let mut roots: Vec<Node> = children.into_iter().map(Policy::into_root).collect();
        if roots.len() > 1 {
            return Self::from_node(make(roots));
        }
        match roots.pop() {
            Some(only) => Self::from_node(only),
            None => Err(PolicyError::new(PolicyErrorKind::EmptyPolicy, 0)),
        }
    }

    /// The root of the tree.
    pub fn root(&self) -> &Node {
        &self.root
    }

    /// Consumes the policy, returning its tree.
    pub fn into_root(self) -> Node {
        self.root
    }

    /// Number of leaves after numeric expansion: the number of LSSS rows, hence of
    /// ciphertext components per row.
    pub fn leaf_count(&self) -> usize {
        self.leaves
    }

    /// Whether a key holding `attrs` satisfies the policy (comparisons are evaluated on the
    /// bit labels, exactly as the LSSS sees them).
    pub fn is_satisfied_by(&self, attrs: &AttributeSet) -> bool {
        // Validated trees are at most `Limits::MAX_DEPTH` deep, so this recursion is bounded.
        fn eval(node: &Node, attrs: &AttributeSet) -> bool {
            match node {
                Node::Attribute(a) => attrs.contains_label(&a.label()),
                Node::Compare { name, op, value } => {
                    compare::eval(name, *op, *value, |l| attrs.contains_label(l))
                }
                Node::And(children) => children.iter().all(|c| eval(c, attrs)),
                Node::Or(children) => children.iter().any(|c| eval(c, attrs)),
                Node::Threshold { k, children } => {
                    children.iter().filter(|c| eval(c, attrs)).count() >= *k
                }
            }
        }
        eval(&self.root, attrs)
    }
}

impl FromStr for Policy {
    type Err = PolicyError;

    fn from_str(text: &str) -> Result<Self, PolicyError> {
        Self::parse(text)
    }
}

/// The canonical form (see the [module docs](self#canonical-form)).
impl fmt::Display for Policy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        print::write_node(f, &self.root)
    }
}
