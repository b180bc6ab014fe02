//! Errors of the policy language and of attribute sets.

use thiserror::Error;

/// A policy or attribute could not be parsed or validated.
///
/// `offset` is a byte offset into the text that was parsed (for [`AttributeSet`] items: into
/// that one item). Errors raised while validating trees built in code (no text involved) use
/// offset 0.
///
/// [`AttributeSet`]: super::AttributeSet
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{kind} at byte {offset}")]
pub struct PolicyError {
    /// What went wrong.
    pub kind: PolicyErrorKind,
    /// Byte offset of the offending input.
    pub offset: usize,
}

impl PolicyError {
    pub(crate) fn new(kind: PolicyErrorKind, offset: usize) -> Self {
        Self { kind, offset }
    }
}

/// The kind of a [`PolicyError`].
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum PolicyErrorKind {
    /// A character that cannot appear here.
    #[error("unexpected {found:?}, expected {expected}")]
    UnexpectedChar {
        /// The character found at the offset.
        found: char,
        /// What the parser would have accepted.
        expected: &'static str,
    },
    /// The input ended where more was required.
    #[error("unexpected end of input, expected {expected}")]
    UnexpectedEnd {
        /// What the parser would have accepted.
        expected: &'static str,
    },
    /// A double-quoted value has no closing quote (offset: the opening quote).
    #[error("unterminated quoted value")]
    UnterminatedString,
    /// A backslash inside a quoted value is followed by something other than `"` or `\`.
    #[error("invalid escape sequence (only \\\" and \\\\ are allowed)")]
    InvalidEscape,
    /// `k of (...)` with `k == 0`, `k > n` or fewer than two alternatives.
    #[error("invalid threshold {k} of {n} (need 1 <= k <= n and n >= 2)")]
    InvalidThreshold {
        /// The threshold.
        k: usize,
        /// The number of alternatives.
        n: usize,
    },
    /// The policy text is longer than [`Limits::max_text_len`](super::Limits::max_text_len).
    #[error("policy text is {len} bytes, the limit is {max}")]
    TooLong {
        /// Length of the text in bytes.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// More leaves (LSSS rows, after numeric expansion) than
    /// [`Limits::max_leaves`](super::Limits::max_leaves).
    #[error("policy has more than {max} leaves (counting numeric comparisons expanded)")]
    TooManyLeaves {
        /// The limit.
        max: usize,
    },
    /// Nesting deeper than [`Limits::max_depth`](super::Limits::max_depth).
    #[error("policy is nested deeper than {max}")]
    TooDeep {
        /// The limit in force.
        max: usize,
    },
    /// Not a decimal integer in range (u32 for comparisons and numeric attributes), or a
    /// number glued to a following name character (`3abc`, `2of`).
    #[error("invalid number (expected a decimal integer in range, followed by a separator)")]
    InvalidNumber,
    /// `and`, `or` and `of` (any case) cannot be attribute names.
    #[error("'and', 'or' and 'of' are reserved and cannot be used as attribute names")]
    ReservedWord,
    /// The policy (or a parenthesised group) is empty.
    #[error("empty policy")]
    EmptyPolicy,
    /// An attribute value is empty (`name:""`).
    #[error("empty attribute value")]
    EmptyValue,
    /// An attribute name is not of the form `[A-Za-z_][A-Za-z0-9_.-]*`.
    #[error("invalid attribute name (expected [A-Za-z_][A-Za-z0-9_.-]*)")]
    InvalidName,
    /// A comparison that every value satisfies (`>= 0`, `<= 4294967295`).
    #[error("comparison is always true")]
    TautologicalComparison,
    /// A comparison that no value satisfies (`< 0`, `> 4294967295`).
    #[error("comparison can never be true")]
    UnsatisfiableComparison,
    /// An attribute label (or bit label) longer than
    /// [`Limits::max_label_len`](super::Limits::max_label_len).
    #[error("attribute label longer than {max} bytes")]
    LabelTooLong {
        /// The limit.
        max: usize,
    },
    /// More attribute labels in a key than
    /// [`Limits::max_attributes`](super::Limits::max_attributes).
    #[error("more than {max} attribute labels (numeric attributes count 32 each)")]
    TooManyAttributes {
        /// The limit.
        max: usize,
    },
    /// A numeric attribute given twice with different values.
    #[error("numeric attribute already present with a different value")]
    ConflictingNumeric,
    /// A threshold gate with two equivalent alternatives (`2 of (a, a, b)` would be
    /// satisfied by `a` alone). Alternatives are compared up to reordering, parentheses,
    /// repeats inside `and`/`or` and the spelling of values and comparisons. Offset: the
    /// repeated alternative in text, 0 for trees built in code.
    #[error("threshold alternative {index} repeats an earlier one")]
    DuplicateAlternative {
        /// Zero-based position of the repeated alternative among the gate's children.
        index: usize,
    },
    /// An `and`/`or` node with fewer than two children in a tree built in code.
    #[error("'and' and 'or' need at least two children")]
    TooFewChildren,
}
