//! Property tests of the policy language: printing/parsing round trips, JSON round trips,
//! robustness on arbitrary input, and the bit encoding of numeric comparisons.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use medseal_abe::policy::{
    Attribute, AttributeSet, CmpOp, Node, Policy, PolicyErrorKind, comparison_leaf_count,
};
use proptest::prelude::*;

fn name() -> impl Strategy<Value = String> {
    "[A-Za-z_][A-Za-z0-9_.-]{0,6}".prop_filter("reserved", |n| {
        !["and", "or", "of"]
            .iter()
            .any(|k| n.eq_ignore_ascii_case(k))
    })
}

/// Values that print bare, and values that need quoting (any chars, incl. quotes,
/// backslashes, controls and non-ASCII).
fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        "[A-Za-z0-9_.@/+-]{1,8}",
        prop::collection::vec(
            prop_oneof![
                Just('"'),
                Just('\\'),
                Just(' '),
                Just('('),
                Just(','),
                Just(':'),
                Just('\n'),
                Just('é'),
                any::<char>()
            ],
            1..8
        )
        .prop_map(|chars| chars.into_iter().collect()),
    ]
}

fn edge_u32() -> impl Strategy<Value = u32> {
    prop_oneof![
        any::<u32>(),
        Just(0),
        Just(1),
        Just(u32::MAX),
        Just(u32::MAX - 1),
        (0..32u32, -1i64..=1).prop_map(|(i, d)| { u32::try_from((1i64 << i) + d).unwrap_or(0) }),
    ]
}

fn op() -> impl Strategy<Value = CmpOp> {
    prop_oneof![
        Just(CmpOp::Lt),
        Just(CmpOp::Le),
        Just(CmpOp::Gt),
        Just(CmpOp::Ge),
        Just(CmpOp::Eq)
    ]
}

fn leaf() -> impl Strategy<Value = Node> {
    prop_oneof![
        3 => (name(), prop::option::of(value()))
            .prop_map(|(n, v)| Node::Attribute(Attribute::new(n, v).unwrap())),
        1 => (name(), op(), edge_u32())
            .prop_filter("tautology", |(_, op, v)| comparison_leaf_count(*op, *v).is_some())
            .prop_map(|(name, op, value)| Node::Compare { name, op, value }),
    ]
}

fn tree() -> impl Strategy<Value = Node> {
    leaf().prop_recursive(4, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 2..5).prop_map(Node::And),
            prop::collection::vec(inner.clone(), 2..5).prop_map(Node::Or),
            prop::collection::vec(inner, 2..5).prop_flat_map(|children| {
                let n = children.len();
                (1..=n).prop_map(move |k| Node::Threshold {
                    k,
                    children: children.clone(),
                })
            }),
        ]
    })
}

fn policy() -> impl Strategy<Value = Policy> {
    tree().prop_filter_map("exceeds limits", |node| Policy::from_node(node).ok())
}

/// Tiny deterministic generator for the noisy printer.
struct Noise(u64);

impl Noise {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn coin(&mut self) -> bool {
        self.next().is_multiple_of(3)
    }
    fn space(&mut self) -> &'static str {
        [" ", "  ", "\t", "\n ", "\r\n"][(self.next() % 5) as usize]
    }
    fn keyword(&mut self, kw: &str) -> String {
        kw.chars()
            .map(|c| {
                if self.coin() {
                    c.to_ascii_uppercase()
                } else {
                    c
                }
            })
            .collect()
    }
}

/// Prints a tree with random whitespace, keyword case and redundant parentheses (every
/// child is parenthesised when that is needed, and sometimes when it is not). Parsing the
/// result must give back the same tree.
fn noisy(node: &Node, noise: &mut Noise) -> String {
    let wrap = |s: String, needed: bool, noise: &mut Noise| {
        if needed || noise.coin() {
            format!("({}{}{})", noise.space(), s, noise.space())
        } else {
            s
        }
    };
    match node {
        Node::Attribute(a) => a.to_string(),
        Node::Compare { name, op, value } => {
            let pad = if noise.coin() { noise.space() } else { "" };
            format!("{name}{pad}{op}{pad}{value}")
        }
        Node::And(children) | Node::Or(children) => {
            let (kw, is_and) = match node {
                Node::And(_) => ("and", true),
                _ => ("or", false),
            };
            let parts: Vec<String> = children
                .iter()
                .map(|c| {
                    let needed = matches!(c, Node::Or(_)) || (is_and && matches!(c, Node::And(_)));
                    let s = noisy(c, noise);
                    wrap(s, needed, noise)
                })
                .collect();
            let mut out = String::new();
            for (i, part) in parts.iter().enumerate() {
                if i > 0 {
                    let (a, b) = (noise.space(), noise.space());
                    out.push_str(&format!("{a}{}{b}", noise.keyword(kw)));
                }
                out.push_str(part);
            }
            out
        }
        Node::Threshold { k, children } => {
            let parts: Vec<String> = children
                .iter()
                .map(|c| {
                    let s = noisy(c, noise);
                    wrap(s, false, noise)
                })
                .collect();
            let sep = format!(",{}", noise.space());
            format!("{k} {} ({})", noise.keyword("of"), parts.join(&sep))
        }
        _ => unreachable!("no other node kinds"),
    }
}

/// Independent evaluation: comparisons on integers, not on bit labels.
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

/// Collects the attribute labels and numeric names of a tree.
fn vocabulary(node: &Node, labels: &mut Vec<String>, numeric: &mut Vec<String>) {
    match node {
        Node::Attribute(a) => labels.push(a.to_string()),
        Node::Compare { name, .. } => numeric.push(name.clone()),
        Node::And(c) | Node::Or(c) | Node::Threshold { children: c, .. } => {
            c.iter().for_each(|c| vocabulary(c, labels, numeric));
        }
        _ => unreachable!("no other node kinds"),
    }
}

proptest! {
    #[test]
    fn print_parse_round_trip(policy in policy()) {
        let printed = policy.to_string();
        let parsed = Policy::parse(&printed);
        prop_assert_eq!(parsed.as_ref(), Ok(&policy), "printed: {}", printed);
        prop_assert_eq!(&parsed.unwrap().to_string(), &printed);
        prop_assert_eq!(printed.parse::<Policy>().unwrap().leaf_count(), policy.leaf_count());
    }

    #[test]
    fn noisy_text_parses_to_the_same_tree(policy in policy(), seed in 1..u64::MAX) {
        let text = noisy(policy.root(), &mut Noise(seed));
        let parsed = Policy::parse(&text);
        prop_assert_eq!(parsed.as_ref(), Ok(&policy), "noisy text: {:?}", text);
    }

    #[cfg(feature = "serde")]
    #[test]
    fn json_round_trip(policy in policy()) {
        let json = serde_json::to_string(&policy).unwrap();
        let back: Policy = serde_json::from_str(&json).unwrap();
        prop_assert_eq!(&back, &policy);
        // text -> JSON -> tree -> text
        let text = policy.to_string();
        let via_json: Policy =
            serde_json::from_str(&serde_json::to_string(&Policy::parse(&text).unwrap()).unwrap())
                .unwrap();
        prop_assert_eq!(via_json.to_string(), text);
    }

    #[test]
    fn satisfaction_matches_integer_semantics(
        policy in policy(),
        picks in prop::collection::vec(any::<bool>(), 0..64),
        values in prop::collection::vec(edge_u32(), 0..16),
    ) {
        let (mut labels, mut numeric) = (Vec::new(), Vec::new());
        vocabulary(policy.root(), &mut labels, &mut numeric);
        numeric.sort();
        numeric.dedup();
        let mut attrs = AttributeSet::new();
        for (label, pick) in labels.iter().zip(picks.iter().chain(std::iter::repeat(&true))) {
            if *pick {
                attrs.insert(label).unwrap();
            }
        }
        for (name, value) in numeric.iter().zip(values) {
            attrs.insert_numeric(name, value).unwrap();
        }
        prop_assert_eq!(policy.is_satisfied_by(&attrs), eval(policy.root(), &attrs));
    }

    #[test]
    fn comparison_bits_match_integers(op in op(), k in edge_u32(), x in edge_u32()) {
        match Policy::compare("level", op, k) {
            Ok(policy) => {
                prop_assert_eq!(Some(policy.leaf_count()), comparison_leaf_count(op, k));
                let attrs = AttributeSet::parse([format!("level={x}")]).unwrap();
                prop_assert_eq!(policy.is_satisfied_by(&attrs), op.holds(x, k), "{} {} {}", x, op, k);
                // Also through the parser.
                let text = format!("level {op} {k}");
                prop_assert_eq!(Policy::parse(&text).unwrap(), policy);
            }
            Err(err) => {
                // Rejected exactly when every or no value satisfies it.
                let all = [0, 1, k.wrapping_sub(1), k, k.wrapping_add(1), u32::MAX]
                    .iter()
                    .all(|&x| op.holds(x, k));
                let none = ![0, 1, k.wrapping_sub(1), k, k.wrapping_add(1), u32::MAX]
                    .iter()
                    .any(|&x| op.holds(x, k));
                prop_assert!(all || none);
                prop_assert!(matches!(
                    err.kind,
                    PolicyErrorKind::TautologicalComparison | PolicyErrorKind::UnsatisfiableComparison
                ));
            }
        }
    }

    #[test]
    fn arbitrary_strings_never_panic(text in any::<String>()) {
        let _ = Policy::parse(&text);
        let _ = AttributeSet::parse(text.split(','));
        medseal_abe::policy::fuzz::policy_parse(text.as_bytes());
    }

    #[test]
    fn policy_like_strings_never_panic(
        tokens in prop::collection::vec(
            prop_oneof![
                Just("a"), Just("role:doctor"), Just("and"), Just("OR"), Just("of"),
                Just("("), Just(")"), Just(","), Just(" "), Just("2"), Just("0"),
                Just(">="), Just("<"), Just("=="), Just("="), Just(":"), Just("\""),
                Just("\\"), Just("x"), Just("4294967296"), Just("é"), Just("\t"),
            ],
            0..40,
        )
    ) {
        let text: String = tokens.concat();
        if let Ok(policy) = Policy::parse(&text) {
            prop_assert_eq!(Policy::parse(&policy.to_string()).unwrap(), policy);
        }
        medseal_abe::policy::fuzz::policy_parse(text.as_bytes());
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        medseal_abe::policy::fuzz::policy_parse(&bytes);
    }

    #[test]
    fn errors_point_inside_the_input(text in "[ a-z():,<>=\"\\\\0-9]{0,40}") {
        if let Err(err) = Policy::parse(&text) {
            prop_assert!(err.offset <= text.len());
            prop_assert!(text.is_char_boundary(err.offset));
        }
    }
}
