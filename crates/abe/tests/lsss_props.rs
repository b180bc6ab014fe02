//! Property tests of the LSSS: reconstruction succeeds exactly for authorised sets and
//! recombines to e1, and (checked independently by Gaussian elimination) unauthorised sets
//! cannot reach e1 at all.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use blstrs::Scalar;
use ff::Field;
use medseal_abe::lsss::Lsss;
use medseal_abe::policy::{Attribute, AttributeSet, CmpOp, Node, Policy, comparison_leaf_count};
use proptest::prelude::*;

/// A small vocabulary so that random sets often satisfy random policies; labels repeat
/// across leaves on purpose.
const NAMES: [&str; 5] = ["a", "b", "c", "role", "dept"];
const VALUES: [&str; 2] = ["x", "y"];
const NUMERIC: [&str; 2] = ["n", "m"];

fn small_u32() -> impl Strategy<Value = u32> {
    prop_oneof![
        0..16u32,
        Just(u32::MAX),
        Just(u32::MAX - 1),
        Just(1 << 31),
        any::<u32>()
    ]
}

fn leaf(numeric: bool) -> BoxedStrategy<Node> {
    let attribute = (0..NAMES.len(), prop::option::of(0..VALUES.len())).prop_map(|(n, v)| {
        let value = v.map(|v| VALUES[v].to_owned());
        Node::Attribute(Attribute::new(NAMES[n], value).unwrap())
    });
    if !numeric {
        return attribute.boxed();
    }
    let op = prop_oneof![
        Just(CmpOp::Lt),
        Just(CmpOp::Le),
        Just(CmpOp::Gt),
        Just(CmpOp::Ge),
        Just(CmpOp::Eq)
    ];
    let compare = (0..NUMERIC.len(), op, small_u32())
        .prop_filter("tautology", |(_, op, v)| {
            comparison_leaf_count(*op, *v).is_some()
        })
        .prop_map(|(n, op, value)| Node::Compare {
            name: NUMERIC[n].to_owned(),
            op,
            value,
        });
    prop_oneof![4 => attribute, 1 => compare].boxed()
}

fn tree(numeric: bool, depth: u32, size: u32) -> impl Strategy<Value = Node> {
    leaf(numeric).prop_recursive(depth, size, 5, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 2..5).prop_map(Node::And),
            prop::collection::vec(inner.clone(), 2..5).prop_map(Node::Or),
            prop::collection::vec(inner, 2..6).prop_flat_map(|children| {
                let n = children.len();
                (1..=n).prop_map(move |k| Node::Threshold {
                    k,
                    children: children.clone(),
                })
            }),
        ]
    })
}

fn policy(numeric: bool, depth: u32, size: u32) -> impl Strategy<Value = Policy> {
    tree(numeric, depth, size).prop_filter_map("limits", |n| Policy::from_node(n).ok())
}

fn attribute_set() -> impl Strategy<Value = AttributeSet> {
    let labels = prop::collection::vec((0..NAMES.len(), prop::option::of(0..VALUES.len())), 0..10);
    let numeric = prop::collection::vec(prop::option::of(small_u32()), NUMERIC.len());
    (labels, numeric).prop_map(|(labels, numeric)| {
        let mut set = AttributeSet::new();
        for (n, v) in labels {
            let value = v.map(|v| VALUES[v].to_owned());
            set.insert_attribute(Attribute::new(NAMES[n], value).unwrap())
                .unwrap();
        }
        for (name, value) in NUMERIC.iter().zip(numeric) {
            if let Some(value) = value {
                set.insert_numeric(name, value).unwrap();
            }
        }
        set
    })
}

/// Independent evaluation with integer semantics for comparisons.
fn eval(node: &Node, attrs: &AttributeSet) -> bool {
    match node {
        Node::Attribute(a) => attrs.contains_label(&a.label()),
        Node::Compare { name, op, value } => attrs
            .numeric_value(name)
            .is_some_and(|x| op.holds(x, *value)),
        Node::And(c) => c.iter().all(|c| eval(c, attrs)),
        Node::Or(c) => c.iter().any(|c| eval(c, attrs)),
        Node::Threshold { k, children } => children.iter().filter(|c| eval(c, attrs)).count() >= *k,
        _ => unreachable!("no other node kinds"),
    }
}

/// Fewest rows needed to satisfy a comparison-free tree, computed on the tree itself.
fn min_rows(node: &Node, attrs: &AttributeSet) -> Option<usize> {
    match node {
        Node::Attribute(a) => attrs.contains_label(&a.label()).then_some(1),
        Node::And(c) => c.iter().map(|c| min_rows(c, attrs)).sum(),
        Node::Or(c) => c.iter().filter_map(|c| min_rows(c, attrs)).min(),
        Node::Threshold { k, children } => {
            let mut costs: Vec<usize> =
                children.iter().filter_map(|c| min_rows(c, attrs)).collect();
            costs.sort_unstable();
            (costs.len() >= *k).then(|| costs[..*k].iter().sum())
        }
        _ => unreachable!("comparison-free trees only"),
    }
}

fn e1(columns: usize) -> Vec<Scalar> {
    let mut v = vec![Scalar::ZERO; columns];
    v[0] = Scalar::ONE;
    v
}

/// Whether `target` is in the row span of `rows` (Gaussian elimination over the field).
fn in_span(rows: Vec<Vec<Scalar>>, target: Vec<Scalar>) -> bool {
    let columns = target.len();
    // Reduced basis: (pivot column, row with 1 at the pivot and 0 at earlier pivots).
    let mut basis: Vec<(usize, Vec<Scalar>)> = Vec::new();
    let reduce = |mut v: Vec<Scalar>, basis: &[(usize, Vec<Scalar>)]| {
        for (pivot, b) in basis {
            let factor = v[*pivot];
            if !bool::from(factor.is_zero()) {
                for c in 0..columns {
                    v[c] -= factor * b[c];
                }
            }
        }
        v
    };
    for row in rows {
        let mut v = reduce(row, &basis);
        if let Some(pivot) = (0..columns).find(|&c| !bool::from(v[c].is_zero())) {
            let inv = v[pivot].invert().unwrap();
            v.iter_mut().for_each(|x| *x *= inv);
            // Keep the basis fully reduced against the new pivot as well.
            for (_, b) in &mut basis {
                let factor = b[pivot];
                if !bool::from(factor.is_zero()) {
                    for c in 0..columns {
                        b[c] -= factor * v[c];
                    }
                }
            }
            basis.push((pivot, v));
        }
    }
    reduce(target, &basis)
        .iter()
        .all(|x| bool::from(x.is_zero()))
}

fn check_structure(policy: &Policy, lsss: &Lsss<Scalar>) {
    assert_eq!(lsss.rows().len(), policy.leaf_count());
    for row in lsss.rows() {
        assert!(!row.coeffs().is_empty());
        assert!(
            row.coeffs().windows(2).all(|w| w[0].0 < w[1].0),
            "sorted columns"
        );
        assert!(
            row.coeffs()
                .iter()
                .all(|(c, v)| *c < lsss.columns() && !bool::from(v.is_zero()))
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn reconstruct_iff_satisfied(policy in policy(true, 4, 24), attrs in attribute_set()) {
        let lsss = Lsss::<Scalar>::from_policy(&policy);
        check_structure(&policy, &lsss);
        let satisfied = eval(policy.root(), &attrs);
        prop_assert_eq!(policy.is_satisfied_by(&attrs), satisfied);
        let weights = lsss.reconstruct(&attrs);
        prop_assert_eq!(weights.is_some(), satisfied, "policy {}", policy);
        if let Some(weights) = weights {
            prop_assert!(weights.windows(2).all(|w| w[0].0 < w[1].0), "distinct sorted rows");
            let mut sum = vec![Scalar::ZERO; lsss.columns()];
            for &(i, w) in &weights {
                prop_assert!(!bool::from(w.is_zero()));
                let row = lsss.row(i).unwrap();
                prop_assert!(attrs.contains_label(row.label()), "row {} not held", row.label());
                for &(c, v) in row.coeffs() {
                    sum[c] += w * v;
                }
            }
            prop_assert_eq!(sum, e1(lsss.columns()));
        }
    }

    #[test]
    fn reconstruct_uses_fewest_rows(policy in policy(false, 4, 24), attrs in attribute_set()) {
        let lsss = Lsss::<Scalar>::from_policy(&policy);
        let used = lsss.reconstruct(&attrs).map(|w| w.len());
        prop_assert_eq!(used, min_rows(policy.root(), &attrs), "policy {}", policy);
    }

    #[test]
    fn unauthorised_sets_cannot_span_e1(policy in policy(false, 3, 16), attrs in attribute_set()) {
        let lsss = Lsss::<Scalar>::from_policy(&policy);
        let allowed: Vec<Vec<Scalar>> = lsss
            .rows()
            .iter()
            .filter(|r| attrs.contains_label(r.label()))
            .map(|r| r.to_dense(lsss.columns()))
            .collect();
        let satisfied = eval(policy.root(), &attrs);
        prop_assert_eq!(in_span(allowed, e1(lsss.columns())), satisfied, "policy {}", policy);
    }

    #[test]
    fn unauthorised_numeric_sets_cannot_span_e1(policy in policy(true, 2, 6), attrs in attribute_set()) {
        let lsss = Lsss::<Scalar>::from_policy(&policy);
        let allowed: Vec<Vec<Scalar>> = lsss
            .rows()
            .iter()
            .filter(|r| attrs.contains_label(r.label()))
            .map(|r| r.to_dense(lsss.columns()))
            .collect();
        let satisfied = eval(policy.root(), &attrs);
        prop_assert_eq!(in_span(allowed, e1(lsss.columns())), satisfied, "policy {}", policy);
    }

    #[test]
    fn shares_recombine_to_the_secret(
        policy in policy(true, 4, 24),
        attrs in attribute_set(),
        seed in any::<u64>(),
    ) {
        let lsss = Lsss::<Scalar>::from_policy(&policy);
        let mut rng = <rand_chacha::ChaCha20Rng as rand_chacha::rand_core::SeedableRng>::seed_from_u64(seed);
        let v: Vec<Scalar> = (0..lsss.columns()).map(|_| Scalar::random(&mut rng)).collect();
        let shares: Vec<Scalar> = lsss.rows().iter().map(|r| r.dot(&v)).collect();
        if let Some(weights) = lsss.reconstruct(&attrs) {
            let secret: Scalar = weights.iter().map(|&(i, w)| w * shares[i]).sum();
            prop_assert_eq!(secret, v[0]);
        }
    }
}

#[test]
fn column_counts_follow_the_construction() {
    let columns = |text: &str| Lsss::<Scalar>::from_policy(&Policy::parse(text).unwrap()).columns();
    assert_eq!(columns("a or b or c or d"), 1);
    assert_eq!(columns("a and b and c and d"), 4);
    assert_eq!(columns("3 of (a, b, c, d, e)"), 3);
    assert_eq!(columns("(a and b) or 2 of (c, d, e)"), 1 + 1 + 1);
    // `== k` is an AND of 32 bit labels: 31 fresh columns.
    assert_eq!(columns("x == 5"), 32);
}

#[test]
fn wide_threshold_reconstructs_with_lagrange() {
    let names: Vec<String> = (0..40).map(|i| format!("a{i}")).collect();
    let policy = Policy::parse(&format!("17 of ({})", names.join(", "))).unwrap();
    let lsss = Lsss::<Scalar>::from_policy(&policy);
    let held: Vec<&str> = names
        .iter()
        .skip(5)
        .step_by(2)
        .map(String::as_str)
        .collect();
    let attrs = AttributeSet::parse(&held).unwrap();
    let weights = lsss.reconstruct(&attrs).unwrap();
    assert_eq!(weights.len(), 17);
    let mut sum = vec![Scalar::ZERO; lsss.columns()];
    for &(i, w) in &weights {
        for &(c, v) in lsss.row(i).unwrap().coeffs() {
            sum[c] += w * v;
        }
    }
    assert_eq!(sum, e1(lsss.columns()));
    let too_few = AttributeSet::parse(&held[..16]).unwrap();
    assert_eq!(lsss.reconstruct(&too_few), None);
}
