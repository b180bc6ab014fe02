//! Numeric comparisons as monotone formulas over bit labels ("bag of bits", Bethencourt–
//! Sahai–Waters 2007).
//!
//! A key for `level = x` holds, for every bit `i` in `0..32`, the label `level#i=b` where
//! `b` is bit `i` of `x`. A comparison with a constant `k` becomes an AND/OR formula over
//! those labels, built from the most significant bit down:
//!
//! * `x >= k` (k ≥ 1): let `j` be the lowest set bit of `k`. Bits below `j` cannot matter
//!   (`k` is zero there). For bit `i` from 31 down to `j + 1`:
//!   `GE(i) = level#i=1 AND GE(i-1)` if bit `i` of `k` is 1, else `level#i=1 OR GE(i-1)`,
//!   and `GE(j) = level#j=1`. That is `32 - j` leaves.
//! * `x < k` (k ≥ 1): symmetric with `level#i=0` leaves, OR where `k` has a 1 and AND where it
//!   has a 0: again `32 - j` leaves for the lowest set bit `j` of `k`.
//! * `x > k` is `x >= k + 1`, `x <= k` is `x < k + 1`.
//! * `x == k` is the AND of all 32 bit labels of `k`: 32 leaves.
//!
//! The simplification `(x_i = 0) OR (x_i = 1 AND F) = (x_i = 0) OR F` relies on a key holding
//! exactly one of `level#i=0` / `level#i=1` for each bit, which [`AttributeSet`] guarantees.
//!
//! [`AttributeSet`]: super::AttributeSet

use super::error::PolicyErrorKind;
use super::node::CmpOp;

/// Number of bits of a numeric attribute (values are `u32`).
pub const NUMERIC_BITS: u32 = 32;

/// The label of bit `bit` (0 = least significant) of numeric attribute `name` having value
/// `set`: `name#bit=0` or `name#bit=1`, e.g. `level#3=1`.
///
/// **Frozen format** (hashed by the schemes). `#` and `=` cannot occur in names, and
/// `name:value` labels have a `:` right after the name, so bit labels never collide with
/// attribute labels.
pub fn bit_label(name: &str, bit: u32, set: bool) -> String {
    format!("{name}#{bit}={}", u8::from(set))
}

/// Number of leaves (LSSS rows) that `name OP value` expands to, or `None` if the
/// comparison is always true or never true (such comparisons are rejected).
///
/// `>= k` and `< k` cost `32 - tz(k)` leaves (`tz` = trailing zero bits), `> k` and `<= k`
/// cost `32 - tz(k + 1)`, `== k` costs 32. So the cost is between 1 (`>= 2^31`) and 32.
pub fn comparison_leaf_count(op: CmpOp, value: u32) -> Option<usize> {
    let leaves = match normalise(op, value).ok()? {
        Normal::AtLeast(k) | Normal::Below(k) => NUMERIC_BITS - k.trailing_zeros(),
        Normal::Exactly => NUMERIC_BITS,
    };
    usize::try_from(leaves).ok()
}

/// A comparison rewritten so that the constant is in the range where it is neither
/// tautological nor unsatisfiable.
#[derive(Clone, Copy)]
enum Normal {
    /// `x >= k`, `k >= 1`.
    AtLeast(u32),
    /// `x < k`, `k >= 1`.
    Below(u32),
    /// `x == k`.
    Exactly,
}

fn normalise(op: CmpOp, value: u32) -> Result<Normal, PolicyErrorKind> {
    match op {
        CmpOp::Ge if value == 0 => Err(PolicyErrorKind::TautologicalComparison),
        CmpOp::Ge => Ok(Normal::AtLeast(value)),
        CmpOp::Gt => value
            .checked_add(1)
            .map(Normal::AtLeast)
            .ok_or(PolicyErrorKind::UnsatisfiableComparison),
        CmpOp::Lt if value == 0 => Err(PolicyErrorKind::UnsatisfiableComparison),
        CmpOp::Lt => Ok(Normal::Below(value)),
        CmpOp::Le => value
            .checked_add(1)
            .map(Normal::Below)
            .ok_or(PolicyErrorKind::TautologicalComparison),
        CmpOp::Eq => Ok(Normal::Exactly),
    }
}

/// Rejects tautological and unsatisfiable comparisons.
pub(crate) fn check(op: CmpOp, value: u32) -> Result<(), PolicyErrorKind> {
    normalise(op, value).map(|_| ())
}

/// A monotone formula over bit labels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum BitFormula {
    Bit(String),
    All(Vec<BitFormula>),
    Any(Vec<BitFormula>),
}

/// The chain description shared by `>=` and `<`: which label value the leaves test (1 for
/// `>=`, 0 for `<`), which is also the bit value of `k` where the chain combines with AND,
/// and where the chain starts.
struct Chain {
    leaf_value: bool,
    k: u32,
    low: u32,
}

impl Chain {
    fn new(normal: Normal) -> Option<Self> {
        let (k, leaf_value) = match normal {
            Normal::AtLeast(k) => (k, true),
            Normal::Below(k) => (k, false),
            Normal::Exactly => return None,
        };
        Some(Self {
            leaf_value,
            k,
            low: k.trailing_zeros(),
        })
    }

    /// Whether bit `i` (above `low`) is combined with the rest of the chain by AND.
    fn is_and(&self, i: u32) -> bool {
        ((self.k >> i) & 1 == 1) == self.leaf_value
    }
}

/// Expands a comparison that passed [`check`]; a comparison that did not yields `None`.
pub(crate) fn expand(name: &str, op: CmpOp, value: u32) -> Option<BitFormula> {
    let normal = normalise(op, value).ok()?;
    let Some(chain) = Chain::new(normal) else {
        let bits = (0..NUMERIC_BITS)
            .rev()
            .map(|i| BitFormula::Bit(bit_label(name, i, (value >> i) & 1 == 1)))
            .collect();
        return Some(BitFormula::All(bits));
    };
    // Build inside out (from the lowest relevant bit up), merging runs of the same gate so
    // the formula stays shallow and its leaves come out most significant bit first.
    let mut formula = BitFormula::Bit(bit_label(name, chain.low, chain.leaf_value));
    for i in chain.low + 1..NUMERIC_BITS {
        let leaf = BitFormula::Bit(bit_label(name, i, chain.leaf_value));
        let and = chain.is_and(i);
        let gate = if and {
            BitFormula::All
        } else {
            BitFormula::Any
        };
        formula = match (and, formula) {
            (true, BitFormula::All(mut children)) | (false, BitFormula::Any(mut children)) => {
                children.insert(0, leaf);
                gate(children)
            }
            (_, other) => gate(vec![leaf, other]),
        };
    }
    Some(formula)
}

/// Evaluates the expanded formula of `name OP value` against a label predicate, without
/// building it. Tautological/unsatisfiable comparisons evaluate to `false` (they never occur
/// in validated policies).
pub(crate) fn eval(name: &str, op: CmpOp, value: u32, has: impl Fn(&str) -> bool) -> bool {
    let Ok(normal) = normalise(op, value) else {
        return false;
    };
    let Some(chain) = Chain::new(normal) else {
        return (0..NUMERIC_BITS).all(|i| has(&bit_label(name, i, (value >> i) & 1 == 1)));
    };
    let mut acc = has(&bit_label(name, chain.low, chain.leaf_value));
    for i in chain.low + 1..NUMERIC_BITS {
        let bit = has(&bit_label(name, i, chain.leaf_value));
        acc = if chain.is_and(i) {
            bit && acc
        } else {
            bit || acc
        };
    }
    acc
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key_has(x: u32) -> impl Fn(&str) -> bool {
        move |label: &str| (0..NUMERIC_BITS).any(|i| label == bit_label("n", i, (x >> i) & 1 == 1))
    }

    fn eval_formula(f: &BitFormula, has: &dyn Fn(&str) -> bool) -> bool {
        match f {
            BitFormula::Bit(l) => has(l),
            BitFormula::All(c) => c.iter().all(|c| eval_formula(c, has)),
            BitFormula::Any(c) => c.iter().any(|c| eval_formula(c, has)),
        }
    }

    fn count(f: &BitFormula) -> usize {
        match f {
            BitFormula::Bit(_) => 1,
            BitFormula::All(c) | BitFormula::Any(c) => c.iter().map(count).sum(),
        }
    }

    #[test]
    fn formula_matches_integer_comparison_on_small_values() {
        let ops = [CmpOp::Lt, CmpOp::Le, CmpOp::Gt, CmpOp::Ge, CmpOp::Eq];
        for op in ops {
            for k in 0..20u32 {
                let Some(f) = expand("n", op, k) else {
                    assert!(check(op, k).is_err());
                    continue;
                };
                assert_eq!(Some(count(&f)), comparison_leaf_count(op, k));
                for x in 0..40u32 {
                    let has = key_has(x);
                    assert_eq!(eval_formula(&f, &has), op.holds(x, k), "{x} {op} {k}");
                    assert_eq!(eval("n", op, k, &has), op.holds(x, k), "{x} {op} {k}");
                }
            }
        }
    }

    #[test]
    fn edge_comparisons_are_rejected() {
        assert_eq!(
            check(CmpOp::Ge, 0),
            Err(PolicyErrorKind::TautologicalComparison)
        );
        assert_eq!(
            check(CmpOp::Le, u32::MAX),
            Err(PolicyErrorKind::TautologicalComparison)
        );
        assert_eq!(
            check(CmpOp::Lt, 0),
            Err(PolicyErrorKind::UnsatisfiableComparison)
        );
        assert_eq!(
            check(CmpOp::Gt, u32::MAX),
            Err(PolicyErrorKind::UnsatisfiableComparison)
        );
        assert!(check(CmpOp::Eq, 0).is_ok() && check(CmpOp::Eq, u32::MAX).is_ok());
    }

    #[test]
    fn leaf_counts() {
        assert_eq!(comparison_leaf_count(CmpOp::Ge, 1 << 31), Some(1));
        assert_eq!(comparison_leaf_count(CmpOp::Ge, 1), Some(32));
        assert_eq!(comparison_leaf_count(CmpOp::Gt, 7), Some(29));
        assert_eq!(comparison_leaf_count(CmpOp::Lt, 8), Some(29));
        assert_eq!(comparison_leaf_count(CmpOp::Eq, 0), Some(32));
        assert_eq!(comparison_leaf_count(CmpOp::Ge, 0), None);
    }

    #[test]
    fn expansion_is_msb_first_and_merges_runs() {
        // >= 2^31: a single leaf on the top bit.
        assert_eq!(
            expand("n", CmpOp::Ge, 1 << 31),
            Some(BitFormula::Bit("n#31=1".into()))
        );
        // >= 3·2^30: n#31=1 AND n#30=1 in one gate.
        assert_eq!(
            expand("n", CmpOp::Ge, 3 << 30),
            Some(BitFormula::All(vec![
                BitFormula::Bit("n#31=1".into()),
                BitFormula::Bit("n#30=1".into()),
            ]))
        );
    }
}
