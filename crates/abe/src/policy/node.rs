//! The policy tree: [`Node`], [`Attribute`] and [`CmpOp`].

use core::fmt;
use core::str::FromStr;

use super::error::{PolicyError, PolicyErrorKind};
use super::lexer::{self, Scanner};

/// One attribute: a bare `name` (e.g. `admin`) or a `name:value` pair (e.g. `role:doctor`).
///
/// Always valid: the name matches `[A-Za-z_][A-Za-z0-9_.-]*` and is not a reserved word, the
/// value (if any) is non-empty. Names and values are case-sensitive and never normalised:
/// `Role:Doctor` and `role:doctor` are different attributes.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Attribute {
    name: String,
    value: Option<String>,
}

impl Attribute {
    /// Creates an attribute from a raw name and an optional raw (unescaped) value.
    ///
    /// # Errors
    /// [`PolicyErrorKind::InvalidName`] / [`PolicyErrorKind::ReservedWord`] for a bad name,
    /// [`PolicyErrorKind::EmptyValue`] for `Some("")`.
    pub fn new(name: impl Into<String>, value: Option<String>) -> Result<Self, PolicyError> {
        let name = name.into();
        check_name(&name)?;
        if value.as_deref() == Some("") {
            return Err(PolicyError::new(PolicyErrorKind::EmptyValue, 0));
        }
        Ok(Self { name, value })
    }

    /// Parses the policy-syntax form of one attribute: `name`, `name:value` or
    /// `name:"quoted value"` (surrounding whitespace allowed).
    ///
    /// # Errors
    /// As for policy parsing, with offsets into `text`.
    pub fn parse(text: &str) -> Result<Self, PolicyError> {
        let mut scanner = Scanner::new(text);
        scanner.skip_ws();
        let attribute = parse_attribute(&mut scanner)?;
        scanner.skip_ws();
        if !scanner.at_end() {
            return Err(scanner.unexpected("end of attribute"));
        }
        Ok(attribute)
    }

    /// The inverse of [`Attribute::label`]: splits at the first `:` (names cannot contain
    /// one) and takes everything after it verbatim as the value.
    ///
    /// # Errors
    /// As for [`Attribute::new`].
    pub fn from_label(label: &str) -> Result<Self, PolicyError> {
        match label.split_once(':') {
            Some((name, value)) => Self::new(name, Some(value.to_owned())),
            None => Self::new(label, None),
        }
    }

    /// The attribute name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The raw (unescaped) value, if any.
    pub fn value(&self) -> Option<&str> {
        self.value.as_deref()
    }

    /// The canonical label: `name` or `name:value` with the raw value bytes.
    ///
    /// **Frozen format**: the schemes hash these bytes to group elements, so changing it
    /// would make every existing key and ciphertext undecryptable. Labels of `name:value`
    /// attributes always contain `:` right after the name; bare names contain neither `:`,
    /// `#` nor `=`; bit labels of numeric attributes are `name#i=b` (see
    /// [`super::bit_label`]), so the three kinds never collide.
    pub fn label(&self) -> String {
        match &self.value {
            Some(value) => format!("{}:{}", self.name, value),
            None => self.name.clone(),
        }
    }

    /// Length in bytes of [`Attribute::label`], without allocating.
    pub(crate) fn label_len(&self) -> usize {
        self.name.len() + self.value.as_ref().map_or(0, |v| v.len() + 1)
    }
}

/// Displays the policy-syntax form (value quoted when needed); see [`Attribute::label`] for
/// the raw label.
impl fmt::Display for Attribute {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)?;
        if let Some(value) = &self.value {
            f.write_str(":")?;
            lexer::write_value(f, value)?;
        }
        Ok(())
    }
}

impl FromStr for Attribute {
    type Err = PolicyError;

    fn from_str(text: &str) -> Result<Self, PolicyError> {
        Self::parse(text)
    }
}

pub(crate) fn check_name(name: &str) -> Result<(), PolicyError> {
    if lexer::is_valid_name(name) {
        Ok(())
    } else if lexer::is_reserved(name) {
        Err(PolicyError::new(PolicyErrorKind::ReservedWord, 0))
    } else {
        Err(PolicyError::new(PolicyErrorKind::InvalidName, 0))
    }
}

/// Parses `name` or `name:value` at the scanner position (no surrounding whitespace).
pub(crate) fn parse_attribute(scanner: &mut Scanner<'_>) -> Result<Attribute, PolicyError> {
    let start = scanner.pos();
    let Some(name) = scanner.word() else {
        return Err(scanner.unexpected("an attribute name"));
    };
    if lexer::is_reserved(name) {
        return Err(PolicyError::new(PolicyErrorKind::ReservedWord, start));
    }
    let value = if scanner.eat(b':') {
        Some(scanner.value()?)
    } else {
        None
    };
    Ok(Attribute {
        name: name.to_owned(),
        value,
    })
}

/// A numeric comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub enum CmpOp {
    /// `<`
    #[cfg_attr(feature = "serde", serde(rename = "<"))]
    Lt,
    /// `<=`
    #[cfg_attr(feature = "serde", serde(rename = "<="))]
    Le,
    /// `>`
    #[cfg_attr(feature = "serde", serde(rename = ">"))]
    Gt,
    /// `>=`
    #[cfg_attr(feature = "serde", serde(rename = ">="))]
    Ge,
    /// `==`
    #[cfg_attr(feature = "serde", serde(rename = "=="))]
    Eq,
}

impl CmpOp {
    /// The operator as written in policy text.
    pub fn symbol(self) -> &'static str {
        match self {
            Self::Lt => "<",
            Self::Le => "<=",
            Self::Gt => ">",
            Self::Ge => ">=",
            Self::Eq => "==",
        }
    }

    /// Evaluates `x OP value` on integers (the reference semantics of the bit encoding).
    pub fn holds(self, x: u32, value: u32) -> bool {
        match self {
            Self::Lt => x < value,
            Self::Le => x <= value,
            Self::Gt => x > value,
            Self::Ge => x >= value,
            Self::Eq => x == value,
        }
    }
}

impl fmt::Display for CmpOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.symbol())
    }
}

/// A node of a policy tree.
///
/// Trees built by the parser keep the structure as written: `a and b and c` is one n-ary
/// [`Node::And`], while `(a and b) and c` is an `And` nested in an `And`. Wrap a tree in a
/// [`Policy`](super::Policy) (via [`Policy::from_node`](super::Policy::from_node)) to
/// validate it; only validated trees can be printed, evaluated or turned into an LSSS.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Node {
    /// A single attribute: one LSSS row.
    Attribute(Attribute),
    /// `name OP value` over a numeric attribute; expands to bit-label rows (see
    /// [`super::comparison_leaf_count`]).
    Compare {
        /// Numeric attribute name.
        name: String,
        /// The operator.
        op: CmpOp,
        /// The constant compared against.
        value: u32,
    },
    /// All children (at least two).
    And(Vec<Node>),
    /// Any child (at least two).
    Or(Vec<Node>),
    /// At least `k` of the children (`1 <= k <= n`, `n >= 2`).
    Threshold {
        /// How many children must be satisfied.
        k: usize,
        /// The alternatives.
        children: Vec<Node>,
    },
}
