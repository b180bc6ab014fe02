//! [`AttributeSet`]: the attributes a user key holds.

use std::collections::{BTreeMap, BTreeSet};

use super::Limits;
use super::compare::{NUMERIC_BITS, bit_label};
use super::error::{PolicyError, PolicyErrorKind};
use super::lexer::Scanner;
use super::node::{Attribute, check_name, parse_attribute};
use super::validate::{BIT_LABEL_SUFFIX_MAX, check_attribute, check_bit_label_len};

/// The attributes of a user key, as the labels the key will hold.
///
/// Items are written like policy attributes — `role:doctor`, `dept:"cardio unit"`, bare
/// `admin` — plus numeric attributes `level=5` (or `level = 5`), which expand to the 32 bit
/// labels `level#i=b` (see [`bit_label`](super::bit_label)). Names and values are
/// case-sensitive and not normalised.
///
/// The set remembers the [`Limits`] it was created with and enforces `max_attributes` (on
/// the number of labels: a numeric attribute counts 32) and `max_label_len` on every
/// insertion. Equality ignores the limits.
#[derive(Debug, Clone, Default)]
pub struct AttributeSet {
    attributes: BTreeSet<Attribute>,
    numeric: BTreeMap<String, u32>,
    /// Every label: attribute labels and expanded bit labels (they cannot collide).
    labels: BTreeSet<String>,
    limits: Limits,
}

impl PartialEq for AttributeSet {
    fn eq(&self, other: &Self) -> bool {
        self.attributes == other.attributes && self.numeric == other.numeric
    }
}

impl Eq for AttributeSet {}

impl AttributeSet {
    /// An empty set with the default [`Limits`].
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty set enforcing `limits`.
    pub fn with_limits(limits: &Limits) -> Self {
        Self {
            limits: *limits,
            ..Self::default()
        }
    }

    /// Parses items (`role:doctor`, `admin`, `level=5`) with the default [`Limits`].
    ///
    /// # Errors
    /// The first invalid item's error; its offset is relative to that item.
    pub fn parse<I, S>(items: I) -> Result<Self, PolicyError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        Self::parse_with_limits(items, &Limits::default())
    }

    /// Parses items with explicit limits.
    ///
    /// # Errors
    /// The first invalid item's error; its offset is relative to that item.
    pub fn parse_with_limits<I, S>(items: I, limits: &Limits) -> Result<Self, PolicyError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut set = Self::with_limits(limits);
        for item in items {
            set.insert(item.as_ref())?;
        }
        Ok(set)
    }

    /// Parses and inserts one item. Returns whether the set changed.
    ///
    /// # Errors
    /// Syntax errors (offsets relative to `item`), exceeded limits, or a numeric attribute
    /// already present with another value.
    pub fn insert(&mut self, item: &str) -> Result<bool, PolicyError> {
        self.limits.check_text_len(item)?;
        let mut scanner = Scanner::new(item);
        scanner.skip_ws();
        let start = scanner.pos();
        let attribute = parse_attribute(&mut scanner)?;
        let at_start = |e: PolicyError| PolicyError::new(e.kind, start);
        scanner.skip_ws();
        if attribute.value().is_none() && scanner.eat(b'=') {
            scanner.skip_ws();
            let value: u32 = scanner.number()?;
            scanner.skip_ws();
            if !scanner.at_end() {
                return Err(scanner.unexpected("end of item"));
            }
            return self
                .insert_numeric(attribute.name(), value)
                .map_err(at_start);
        }
        if !scanner.at_end() {
            return Err(scanner.unexpected("end of item ('name', 'name:value' or 'name=INT')"));
        }
        self.insert_attribute(attribute).map_err(at_start)
    }

    /// Inserts an attribute. Returns whether the set changed.
    ///
    /// # Errors
    /// Label too long, or too many labels.
    pub fn insert_attribute(&mut self, attribute: Attribute) -> Result<bool, PolicyError> {
        check_attribute(&attribute, &self.limits)?;
        if self.attributes.contains(&attribute) {
            return Ok(false);
        }
        self.reserve(1)?;
        self.labels.insert(attribute.label());
        self.attributes.insert(attribute);
        Ok(true)
    }

    /// Inserts numeric attribute `name = value` (32 bit labels). Returns whether the set
    /// changed.
    ///
    /// # Errors
    /// Invalid name, label too long, too many labels, or `name` already present with a
    /// different value ([`PolicyErrorKind::ConflictingNumeric`]: a key must hold exactly one
    /// of `name#i=0` / `name#i=1` per bit for comparisons to be sound).
    pub fn insert_numeric(&mut self, name: &str, value: u32) -> Result<bool, PolicyError> {
        check_name(name)?;
        check_bit_label_len(name, &self.limits)?;
        match self.numeric.get(name) {
            Some(&existing) if existing == value => return Ok(false),
            Some(_) => return Err(PolicyError::new(PolicyErrorKind::ConflictingNumeric, 0)),
            None => {}
        }
        self.reserve(NUMERIC_BITS as usize)?;
        for bit in 0..NUMERIC_BITS {
            self.labels
                .insert(bit_label(name, bit, (value >> bit) & 1 == 1));
        }
        self.numeric.insert(name.to_owned(), value);
        Ok(true)
    }

    fn reserve(&self, additional: usize) -> Result<(), PolicyError> {
        if self.labels.len().saturating_add(additional) > self.limits.max_attributes {
            return Err(PolicyError::new(
                PolicyErrorKind::TooManyAttributes {
                    max: self.limits.max_attributes,
                },
                0,
            ));
        }
        Ok(())
    }

    /// Every label the key holds, sorted: attribute labels and the 32 bit labels of each
    /// numeric attribute.
    pub fn labels(&self) -> impl Iterator<Item = &str> + '_ {
        self.labels.iter().map(String::as_str)
    }

    /// Whether the key holds `label`.
    pub fn contains_label(&self, label: &str) -> bool {
        self.labels.contains(label)
    }

    /// Number of labels (a numeric attribute counts 32).
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether the set holds no attribute.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// The non-numeric attributes, sorted.
    pub fn attributes(&self) -> impl Iterator<Item = &Attribute> + '_ {
        self.attributes.iter()
    }

    /// The numeric attributes and their values, sorted by name.
    pub fn numeric(&self) -> impl Iterator<Item = (&str, u32)> + '_ {
        self.numeric
            .iter()
            .map(|(name, &value)| (name.as_str(), value))
    }

    /// The value of numeric attribute `name`, if present.
    pub fn numeric_value(&self, name: &str) -> Option<u32> {
        self.numeric.get(name).copied()
    }

    /// The items in the syntax [`AttributeSet::parse`] accepts (attributes first, then
    /// `name=value` numerics); parsing them gives back an equal set.
    pub fn items(&self) -> impl Iterator<Item = String> + '_ {
        self.attributes.iter().map(ToString::to_string).chain(
            self.numeric()
                .map(|(name, value)| format!("{name}={value}")),
        )
    }
}

// Keeps the suffix constant honest: the longest bit label suffix is `#31=1`.
const _: () = assert!("#31=1".len() == BIT_LABEL_SUFFIX_MAX);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_all_item_forms() {
        let set = AttributeSet::parse([
            "role:doctor",
            "admin",
            "level=5",
            " age = 40 ",
            r#"d:"a b""#,
        ])
        .unwrap();
        assert!(set.contains_label("role:doctor"));
        assert!(set.contains_label("admin"));
        assert!(set.contains_label("d:a b"));
        assert!(set.contains_label("level#0=1") && set.contains_label("level#1=0"));
        assert!(set.contains_label("level#2=1") && set.contains_label("level#31=0"));
        assert_eq!(set.numeric_value("age"), Some(40));
        assert_eq!(set.len(), 3 + 64);
        let again = AttributeSet::parse(set.items()).unwrap();
        assert_eq!(again, set);
    }

    #[test]
    fn rejects_bad_items_with_offsets() {
        let cases: &[(&str, PolicyErrorKind, usize)] = &[
            ("and", PolicyErrorKind::ReservedWord, 0),
            ("  Or:x", PolicyErrorKind::ReservedWord, 2),
            (
                "level=",
                PolicyErrorKind::UnexpectedEnd {
                    expected: "a decimal number",
                },
                6,
            ),
            ("level=4294967296", PolicyErrorKind::InvalidNumber, 6),
            (
                "role:",
                PolicyErrorKind::UnexpectedEnd {
                    expected: "an attribute value",
                },
                5,
            ),
            (
                "a b",
                PolicyErrorKind::UnexpectedChar {
                    found: 'b',
                    expected: "end of item ('name', 'name:value' or 'name=INT')",
                },
                2,
            ),
            (
                "",
                PolicyErrorKind::UnexpectedEnd {
                    expected: "an attribute name",
                },
                0,
            ),
        ];
        for (item, kind, offset) in cases {
            let err = AttributeSet::parse([*item]).unwrap_err();
            assert_eq!((&err.kind, err.offset), (kind, *offset), "{item:?}");
        }
    }

    #[test]
    fn numeric_conflicts_and_limits() {
        let mut set = AttributeSet::new();
        assert!(set.insert("level=5").unwrap());
        assert!(!set.insert("level = 5").unwrap());
        assert_eq!(
            set.insert("level=6").unwrap_err().kind,
            PolicyErrorKind::ConflictingNumeric
        );
        let limits = Limits {
            max_attributes: 33,
            max_label_len: 8,
            ..Limits::default()
        };
        let mut small = AttributeSet::with_limits(&limits);
        assert!(small.insert("lvl=1").unwrap());
        assert!(small.insert("a").unwrap());
        assert_eq!(
            small.insert("b").unwrap_err().kind,
            PolicyErrorKind::TooManyAttributes { max: 33 }
        );
        let mut small = AttributeSet::with_limits(&limits);
        assert_eq!(
            small.insert("abcd=1").unwrap_err().kind,
            PolicyErrorKind::LabelTooLong { max: 8 }
        );
        assert_eq!(
            small.insert("role:doctor").unwrap_err().kind,
            PolicyErrorKind::LabelTooLong { max: 8 }
        );
    }
}
