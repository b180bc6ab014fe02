//! Keys that expire: month-granularity validity attributes.
//!
//! # Encoding
//!
//! A key valid through month `(Y, M)` carries, besides its own attributes, the reserved
//! attributes
//!
//! ```text
//! valid-year:y      for every year y from VALIDITY_START_YEAR up to Y-1
//! valid-month:Y-MM  for MM = 01 ..= M
//! ```
//!
//! so it grows by one attribute per year of system age plus at most 12. Everything a
//! vault creates in month `(y, m)` is encrypted with the clause
//!
//! ```text
//! V(y, m) = (valid-year:y or valid-month:y-mm)
//! ```
//!
//! AND-ed in: exactly **2 LSSS rows** per dated clause, whatever the validity. A key
//! satisfies `V(y, m)` iff `(y, m) <= (Y, M)`: for `y < Y` it holds `valid-year:y`; for
//! `y == Y` it holds `valid-month:y-mm` iff `m <= M`; for `y > Y` it holds neither. (A
//! numeric comparison `month <= n` over the 32-bit encoding would cost up to 32 rows.)
//! Months are compared in UTC.
//!
//! Where the clause goes:
//!
//! - a record capsule: `(base and V(t)) or id:owner or (id:u and V(s)) ...` with `t` the
//!   month the record was created and `s` the month it was shared with `u`. The owner's
//!   clause carries no `V` (the owner made the record); a share made after a grantee's
//!   key expired is unreadable with that key. Re-wrapping (share, revoke) keeps `t` and
//!   every existing grantee's `s`; only new grantees get the current month.
//! - an index partition (search): the partition of an epoch started in month `m` has the
//!   policy `(base and V(m)) or id:owner`; an owner's put in a later month starts a new
//!   epoch first, so an expired key cannot open the partition keys of entries added after
//!   it expired and still finds the entries of earlier epochs. The owner's clause is the
//!   capsules' one: the owner finds what it stored as it reads it.
//!
//! Keys issued before expiry existed carry no `valid-*` attribute: they cannot read
//! anything created since (their holder asks the authority for a renewed key, which keeps
//! name, address and attributes). Records and partitions created before carry no clause
//! and stay readable as before.
//!
//! Time: a [`Vault`](crate::Vault) dates what it creates with its [`Clock`] (the system
//! clock's UTC month unless [`Vault::set_clock`](crate::Vault::set_clock) says otherwise).
//! Months before [`VALIDITY_START_YEAR`] count as its January.
//!
//! What expiry does not do: a key that read a record before it expired keeps what it
//! read, and an expired key still opens everything created up to its last month. Removing
//! a member (a key that should open nothing more, now) is revocation, not expiry.

use core::fmt;
use core::str::FromStr;
use std::num::NonZeroU32;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::abe::policy::{Attribute, Node};
use crate::abe::{AttributeSet, Policy};
use crate::error::{InvalidInput, Result};

/// The first year of the validity encoding: keys carry one `valid-year:y` attribute per
/// year from this one. Frozen: changing it changes which keys open which records.
pub const VALIDITY_START_YEAR: u16 = 2024;
/// The last year a key can be valid through (keeps keys below 130 attributes of
/// validity).
pub const MAX_VALIDITY_YEAR: u16 = VALIDITY_START_YEAR + 99;
/// The reserved attribute name of whole years of validity.
pub const VALID_YEAR: &str = "valid-year";
/// The reserved attribute name of months of validity.
pub const VALID_MONTH: &str = "valid-month";

/// A calendar month (UTC), from January [`VALIDITY_START_YEAR`] to December
/// [`MAX_VALIDITY_YEAR`]. Ordered; printed and parsed as `YYYY-MM`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Month {
    year: u16,
    month: u8,
}

impl Month {
    /// The first month of the encoding.
    pub const FIRST: Month = Month {
        year: VALIDITY_START_YEAR,
        month: 1,
    };
    /// The last month of the encoding.
    pub const LAST: Month = Month {
        year: MAX_VALIDITY_YEAR,
        month: 12,
    };

    /// Month `month` (1 to 12) of `year`.
    ///
    /// # Errors
    /// [`InvalidInput::Month`] outside [`Month::FIRST`]..=[`Month::LAST`].
    pub fn new(year: u16, month: u8) -> Result<Self> {
        if !(1..=12).contains(&month) || !(VALIDITY_START_YEAR..=MAX_VALIDITY_YEAR).contains(&year)
        {
            return Err(InvalidInput::Month {
                text: format!("{year:04}-{month:02}"),
            }
            .into());
        }
        Ok(Self { year, month })
    }

    /// The current UTC month of the system clock, clamped to
    /// [`Month::FIRST`]..=[`Month::LAST`].
    pub fn current_utc() -> Self {
        let secs = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let (year, month) = civil_from_days(secs / 86_400);
        Self::clamped(year, month)
    }

    fn clamped(year: u64, month: u8) -> Self {
        if year < u64::from(VALIDITY_START_YEAR) {
            Self::FIRST
        } else if year > u64::from(MAX_VALIDITY_YEAR) {
            Self::LAST
        } else {
            Self {
                year: year as u16,
                month,
            }
        }
    }

    /// The year.
    pub fn year(self) -> u16 {
        self.year
    }

    /// The month of the year, 1 to 12.
    pub fn month(self) -> u8 {
        self.month
    }

    /// `months` later, at most [`Month::LAST`].
    pub fn plus_months(self, months: u32) -> Self {
        let index = u64::from(self.year) * 12 + u64::from(self.month - 1) + u64::from(months);
        Self::clamped(index / 12, (index % 12) as u8 + 1)
    }

    /// The month number the member registry stores (`validThrough`):
    /// `year * 12 + month - 1` (never 0: the encoding starts in [`VALIDITY_START_YEAR`]).
    pub fn number(self) -> NonZeroU32 {
        let n = u32::from(self.year) * 12 + u32::from(self.month) - 1;
        // year >= VALIDITY_START_YEAR > 0: n >= 12.
        NonZeroU32::new(n).unwrap_or(NonZeroU32::MIN)
    }

    /// The month of a registry month number ([`Month::number`]), clamped to
    /// [`Month::FIRST`]..=[`Month::LAST`].
    pub fn from_number(number: NonZeroU32) -> Self {
        let n = u64::from(number.get());
        Self::clamped(n / 12, (n % 12) as u8 + 1)
    }

    /// The clause `(valid-year:y or valid-month:y-mm)` AND-ed into what is created in this
    /// month (2 LSSS rows): satisfied by the keys valid through this month or later.
    pub fn clause(self) -> Policy {
        let year = attribute(VALID_YEAR, self.year.to_string());
        let month = attribute(VALID_MONTH, self.to_string());
        // Two valid attributes under an `or`: always a valid policy.
        Policy::from_node(Node::Or(vec![year, month])).unwrap_or_else(|_| unreachable!())
    }

    /// The month of a clause [`Month::clause`] made, if `node` is one.
    pub(crate) fn of_clause(node: &Node) -> Option<Self> {
        let Node::Or(children) = node else {
            return None;
        };
        let [Node::Attribute(year), Node::Attribute(month)] = children.as_slice() else {
            return None;
        };
        if year.name() != VALID_YEAR || month.name() != VALID_MONTH {
            return None;
        }
        let found: Month = month.value()?.parse().ok()?;
        (year.value()? == found.year.to_string()).then_some(found)
    }
}

fn attribute(name: &str, value: String) -> Node {
    // The names are valid and the values non-empty digits and `-`.
    Node::Attribute(Attribute::new(name, Some(value)).unwrap_or_else(|_| unreachable!()))
}

/// Days since 1970-01-01 to (year, month) (H. Hinnant's `civil_from_days`).
fn civil_from_days(days: u64) -> (u64, u8) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month as u8)
}

impl fmt::Display for Month {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}", self.year, self.month)
    }
}

impl FromStr for Month {
    type Err = crate::Error;

    /// Parses `YYYY-MM` exactly (four digits, `-`, two digits).
    fn from_str(text: &str) -> Result<Self> {
        let bad = || {
            crate::Error::from(InvalidInput::Month {
                text: text.to_owned(),
            })
        };
        let (year, month) = text.split_once('-').ok_or_else(bad)?;
        let digits = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_digit());
        if !digits(year, 4) || !digits(month, 2) {
            return Err(bad());
        }
        let year = year.parse().map_err(|_| bad())?;
        let month = month.parse().map_err(|_| bad())?;
        Self::new(year, month).map_err(|_| bad())
    }
}

/// How long a member key opens new records: through the last month it names (UTC).
///
/// Issued as reserved attributes of the key (see the [module docs](self)); read back from
/// a key's attributes with [`Validity::of_attributes`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Validity {
    through: Month,
}

impl Validity {
    /// Valid through month `month` (1 to 12) of `year`.
    ///
    /// # Errors
    /// [`InvalidInput::Month`] outside [`Month::FIRST`]..=[`Month::LAST`].
    pub fn through(year: u16, month: u8) -> Result<Self> {
        Month::new(year, month).map(Self::until)
    }

    /// Valid through `month`.
    pub fn until(month: Month) -> Self {
        Self { through: month }
    }

    /// Valid through the month `months` after the current UTC month (0: this month only).
    pub fn months_from_now(months: u32) -> Self {
        Self::until(Month::current_utc().plus_months(months))
    }

    /// The last month the key opens records of.
    pub fn last_month(&self) -> Month {
        self.through
    }

    /// Whether what is created in `month` is readable with the key (as far as validity
    /// goes).
    pub fn covers(&self, month: Month) -> bool {
        month <= self.through
    }

    /// The reserved attributes a key valid through [`Validity::last_month`] carries:
    /// `valid-year:y` for y from [`VALIDITY_START_YEAR`] to the year before, then
    /// `valid-month:YYYY-MM` for every month of its last year up to the last month.
    pub fn attributes(&self) -> Vec<String> {
        let Month { year, month } = self.through;
        let years = (VALIDITY_START_YEAR..year).map(|y| format!("{VALID_YEAR}:{y}"));
        let months = (1..=month).map(move |m| format!("{VALID_MONTH}:{year:04}-{m:02}"));
        years.chain(months).collect()
    }

    /// The validity of a key with these attributes: its latest `valid-month` attribute.
    /// `None` for a key issued before expiry existed (it has none).
    pub fn of_attributes(attributes: &AttributeSet) -> Option<Self> {
        attributes
            .attributes()
            .filter(|a| a.name() == VALID_MONTH)
            .filter_map(|a| a.value()?.parse::<Month>().ok())
            .max()
            .map(Self::until)
    }
}

impl fmt::Display for Validity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "through {}", self.through)
    }
}

/// Whether `name` is an attribute name medseal reserves for key validity.
pub(crate) fn is_reserved(name: &str) -> bool {
    name == VALID_YEAR || name == VALID_MONTH
}

/// The first attribute or comparison of `policy` whose name is reserved for validity, in
/// its policy-syntax form.
pub(crate) fn reserved_in(policy: &Policy) -> Option<String> {
    // Validated trees are at most `Limits::MAX_DEPTH` deep: the recursion is bounded.
    fn find(node: &Node) -> Option<String> {
        match node {
            Node::Attribute(a) if is_reserved(a.name()) => Some(a.to_string()),
            Node::Compare { name, op, value } if is_reserved(name) => {
                Some(format!("{name} {} {value}", op.symbol()))
            }
            Node::And(children) | Node::Or(children) | Node::Threshold { children, .. } => {
                children.iter().find_map(find)
            }
            _ => None,
        }
    }
    find(policy.root())
}

/// Where a [`Vault`](crate::Vault) takes "now" from when it dates what it creates.
///
/// The default is the system clock's UTC month. [`Clock::fixed`] is for tests, replays and
/// imports of an archive that should be dated as of a given month: set it with
/// [`Vault::set_clock`](crate::Vault::set_clock), which needs the vault by `&mut`, so a
/// clock cannot change under operations in flight and nothing in the configuration files
/// or the environment can set it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Clock {
    fixed: Option<Month>,
}

impl Clock {
    /// The system clock (UTC month).
    pub fn system() -> Self {
        Self { fixed: None }
    }

    /// Always `month`.
    pub fn fixed(month: Month) -> Self {
        Self { fixed: Some(month) }
    }

    /// The current month by this clock.
    pub fn now(&self) -> Month {
        self.fixed.unwrap_or_else(Month::current_utc)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::abe::lsss::Lsss;
    use proptest::prelude::*;

    /// The scalar field of BLS12-381 (FAME's), for the LSSS.
    type F = blstrs::Scalar;

    fn key_attrs(v: Validity) -> AttributeSet {
        let mut attrs = AttributeSet::parse(["role:doctor"]).unwrap();
        for a in v.attributes() {
            attrs.insert(&a).unwrap();
        }
        attrs
    }

    fn months(from: Month, count: u32) -> impl Iterator<Item = Month> {
        (0..count).map(move |i| from.plus_months(i))
    }

    fn reads(v: Validity, created: Month) -> (bool, bool) {
        let policy = Policy::and(vec!["role:doctor".parse().unwrap(), created.clause()]).unwrap();
        let attrs = key_attrs(v);
        let by_eval = policy.is_satisfied_by(&attrs);
        // The LSSS's own reconstruction, not the policy evaluator.
        let by_lsss = Lsss::<F>::from_policy(&policy)
            .reconstruct(&attrs)
            .is_some();
        (by_eval, by_lsss)
    }

    /// Every (key, record) month pair over six years: a key reads exactly what was
    /// created up to its last month.
    #[test]
    fn a_key_reads_exactly_the_months_up_to_its_last() {
        let range: Vec<Month> = months(Month::FIRST, 72).collect();
        for &through in &range {
            let v = Validity::until(through);
            for &created in &range {
                let want = created <= through;
                assert_eq!(
                    reads(v, created),
                    (want, want),
                    "key {through}, record {created}"
                );
            }
        }
    }

    proptest! {
        #[test]
        fn reads_iff_not_later(k in 0u32..1200, r in 0u32..1200) {
            let (through, created) = (Month::FIRST.plus_months(k), Month::FIRST.plus_months(r));
            let want = created <= through;
            prop_assert_eq!(reads(Validity::until(through), created), (want, want));
        }
    }

    #[test]
    fn a_clause_is_two_rows_and_keys_grow_by_years() {
        for m in months(Month::FIRST, 1200) {
            let clause = m.clause();
            assert_eq!(clause.leaf_count(), 2);
            assert_eq!(Lsss::<F>::from_policy(&clause).rows().len(), 2);
            assert_eq!(Month::of_clause(clause.root()), Some(m));
            assert_eq!(clause.to_string().parse::<Policy>().unwrap(), clause);
        }
        let base: Policy = "role:doctor and dept:cardiology".parse().unwrap();
        let dated = Policy::and(vec![base.clone(), Month::new(2031, 7).unwrap().clause()]);
        assert_eq!(dated.unwrap().leaf_count(), base.leaf_count() + 2);
        let v = Validity::through(2027, 3).unwrap();
        assert_eq!(
            v.attributes(),
            [
                "valid-year:2024",
                "valid-year:2025",
                "valid-year:2026",
                "valid-month:2027-01",
                "valid-month:2027-02",
                "valid-month:2027-03"
            ]
        );
        assert_eq!(Validity::of_attributes(&key_attrs(v)), Some(v));
        assert_eq!(
            Validity::of_attributes(&AttributeSet::parse(["role:x"]).unwrap()),
            None
        );
        // At most one attribute per year of system age plus 12.
        let last = Validity::until(Month::LAST).attributes().len();
        assert_eq!(
            last,
            usize::from(MAX_VALIDITY_YEAR - VALIDITY_START_YEAR) + 12
        );
    }

    #[test]
    fn months_parse_print_and_count() {
        let m: Month = "2027-03".parse().unwrap();
        assert_eq!((m.year(), m.month()), (2027, 3));
        assert_eq!(m.to_string(), "2027-03");
        assert_eq!(m.plus_months(10).to_string(), "2028-01");
        assert_eq!(m.plus_months(0), m);
        assert_eq!(Month::LAST.plus_months(1), Month::LAST);
        for bad in [
            "2027-3",
            "2027-13",
            "2027-00",
            "27-03",
            "2023-12",
            "2124-01",
            "2027/03",
            "",
            "2027-03 ",
            "+027-03",
            "２027-03",
        ] {
            assert!(
                matches!(
                    bad.parse::<Month>(),
                    Err(crate::Error::InvalidInput(InvalidInput::Month { .. }))
                ),
                "{bad:?}"
            );
        }
        assert!(Validity::through(2027, 0).is_err());
        assert_eq!(civil_from_days(0), (1970, 1));
        assert_eq!(civil_from_days(19_782), (2024, 2)); // 2024-02-29
        assert_eq!(civil_from_days(19_783), (2024, 3));
        assert_eq!(civil_from_days(20_818), (2026, 12)); // 2026-12-31
        assert_eq!(civil_from_days(20_819), (2027, 1));
        assert!(Month::current_utc() >= Month::FIRST);
        assert_eq!(Clock::fixed(m).now(), m);
    }

    #[test]
    fn reserved_names_are_found_anywhere_in_a_policy() {
        for (text, found) in [
            ("role:x", None),
            ("role:x and valid-year:2030", Some("valid-year:2030")),
            (
                "2 of (a, b, (c or valid-month:2030-01))",
                Some("valid-month:2030-01"),
            ),
            ("valid-year >= 2030", Some("valid-year >= 2030")),
            ("valid-month", Some("valid-month")),
            ("valid:2030 or role:valid-year", None),
        ] {
            let policy: Policy = text.parse().unwrap();
            assert_eq!(reserved_in(&policy).as_deref(), found, "{text}");
        }
    }

    /// The numbers of the size table in `docs/expiry.md` (which cites this test).
    #[test]
    fn sizes() {
        use crate::abe::{Encoding as _, Fame, Scheme, envelope};
        use rand_core::OsRng;
        let (pk, msk) = Fame::setup(&mut OsRng);
        let id = "id:00112233445566778899aabbccddeeff00112233";
        let capsule = |policy: &Policy| {
            envelope::seal::<Fame, _>(&pk, policy, b"aad", &[7u8; 32], &mut OsRng)
                .unwrap()
                .len()
        };
        let base: Policy = format!("role:doctor or {id}").parse().unwrap();
        let dated: Policy =
            format!("(role:doctor and (valid-year:2027 or valid-month:2027-03)) or {id}")
                .parse()
                .unwrap();
        let (undated, with_clause) = (capsule(&base), capsule(&dated));
        let key = |validity: Option<Validity>| {
            let mut attrs = AttributeSet::parse(["role:doctor", id]).unwrap();
            for a in validity.map(|v| v.attributes()).unwrap_or_default() {
                attrs.insert(&a).unwrap();
            }
            Fame::keygen(&pk, &msk, &attrs, &mut OsRng)
                .unwrap()
                .to_bytes()
                .len()
        };
        let keys = [
            key(None),
            key(Some(Validity::through(2027, 12).unwrap())),
            key(Some(Validity::through(2036, 12).unwrap())),
        ];
        // Two rows of three compressed G1 points, and the clause's text in the header.
        let text = dated.to_string().len() - base.to_string().len();
        assert_eq!(with_clause - undated, 2 * 3 * 48 + text);
        assert_eq!((undated, with_clause, keys), (714, 1047, [794, 3287, 4754]));
        // Each validity attribute: three G1 points and its length-prefixed label.
        let per = |label: &str| 3 * 48 + 4 + label.len();
        assert_eq!(per("valid-year:2024"), 163);
        assert_eq!(per("valid-month:2027-01"), 167);
        assert_eq!(keys[1] - keys[0], 3 * 163 + 12 * 167);
        assert_eq!(keys[2] - keys[0], 12 * 163 + 12 * 167);
    }
}
