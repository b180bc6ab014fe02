//! Parser, printer, limits and constructor tests.

use super::*;

const ATOM: &str = "an attribute, '(' or a threshold 'k of (...)'";
const AFTER_TOP: &str = "'and', 'or' or end of policy";
const AFTER_GROUP: &str = "'and', 'or' or ')'";

#[test]
fn valid_inputs_print_canonically() {
    let cases: &[(&str, &str)] = &[
        ("a", "a"),
        ("role:doctor", "role:doctor"),
        ("  A  AND  b ", "A and b"),
        ("a AND b Or c", "a and b or c"),
        ("a or b and c", "a or b and c"),
        ("(a or b) and c", "(a or b) and c"),
        ("((a))", "a"),
        ("(a and b) and c", "(a and b) and c"),
        ("a and (b and c)", "a and (b and c)"),
        ("(a or b) or c", "(a or b) or c"),
        ("(a and b) or c", "a and b or c"),
        ("a and b and c", "a and b and c"),
        ("2 OF (a, b, c)", "2 of (a, b, c)"),
        ("2 of(a,b or c,(d and e))", "2 of (a, b or c, d and e)"),
        ("1 of (a, 2 of (b, c, d))", "1 of (a, 2 of (b, c, d))"),
        ("2 of (a, b) and c", "2 of (a, b) and c"),
        ("level>=3", "level >= 3"),
        ("level  <  10", "level < 10"),
        ("x == 0", "x == 0"),
        ("x <= 4294967294", "x <= 4294967294"),
        ("x > 007", "x > 7"),
        ("007 of (a, b, c, d, e, f, g)", "7 of (a, b, c, d, e, f, g)"),
        ("id:0xAb12", "id:0xAb12"),
        ("email:alice@example.org", "email:alice@example.org"),
        (
            "icd:I25.10 or path:a/b+c-d_e",
            "icd:I25.10 or path:a/b+c-d_e",
        ),
        ("dept:\"cardio unit\"", "dept:\"cardio unit\""),
        ("d:\"simple\"", "d:simple"),
        (r#"q:"a\"b\\c""#, r#"q:"a\"b\\c""#),
        ("n:\"ünï (x)\"", "n:\"ünï (x)\""),
        ("status:or", "status:or"),
        ("a\n\tand\r\nb", "a and b"),
        ("_x.y-z", "_x.y-z"),
        ("Role:Doctor", "Role:Doctor"),
        ("a and 2 of (b, c) or d", "a and 2 of (b, c) or d"),
        ("android or order", "android or order"),
    ];
    for (input, canonical) in cases {
        let policy = Policy::parse(input).unwrap_or_else(|e| panic!("{input:?}: {e}"));
        assert_eq!(policy.to_string(), *canonical, "{input:?}");
        let reparsed = Policy::parse(canonical).unwrap();
        assert_eq!(reparsed, policy, "{input:?}");
        assert_eq!(reparsed.to_string(), *canonical);
    }
}

#[test]
fn invalid_inputs_report_kind_and_offset() {
    use PolicyErrorKind as K;
    let unexpected = |found, expected| K::UnexpectedChar { found, expected };
    let end = |expected| K::UnexpectedEnd { expected };
    let cases: Vec<(&str, PolicyErrorKind, usize)> = vec![
        ("", K::EmptyPolicy, 0),
        ("  \n", K::EmptyPolicy, 0),
        ("()", K::EmptyPolicy, 0),
        ("a and ( )", K::EmptyPolicy, 6),
        ("2 of ()", K::EmptyPolicy, 5),
        ("a and", end(ATOM), 5),
        ("a b", unexpected('b', AFTER_TOP), 2),
        ("(a or b", end(AFTER_GROUP), 7),
        ("(a or b c", unexpected('c', AFTER_GROUP), 8),
        ("a)", unexpected(')', AFTER_TOP), 1),
        ("and", K::ReservedWord, 0),
        ("a and OR", K::ReservedWord, 6),
        ("Of:x", K::ReservedWord, 0),
        ("a:", end("an attribute value"), 2),
        ("a: b", unexpected(' ', "an attribute value"), 2),
        ("a :b", unexpected(':', AFTER_TOP), 2),
        ("a:\"abc", K::UnterminatedString, 2),
        ("a:\"ab\\", K::UnterminatedString, 2),
        (r#"a:"a\nb""#, K::InvalidEscape, 4),
        ("a:\"\"", K::EmptyValue, 2),
        ("a:b:c", unexpected(':', AFTER_TOP), 3),
        ("0 of (a, b)", K::InvalidThreshold { k: 0, n: 2 }, 0),
        ("x and 3 of (a, b)", K::InvalidThreshold { k: 3, n: 2 }, 6),
        ("1 of (a)", K::InvalidThreshold { k: 1, n: 1 }, 0),
        ("2 of a, b", unexpected('a', "'('"), 5),
        ("2 (a, b)", unexpected('(', "'of'"), 2),
        ("2 ofx (a, b)", unexpected('o', "'of'"), 2),
        ("2of(a,b)", K::InvalidNumber, 0),
        ("2 of (a, b,)", unexpected(')', ATOM), 11),
        ("2 of (a, b", end("'and', 'or', ',' or ')'"), 10),
        ("2 of (a; b)", unexpected(';', "'and', 'or', ',' or ')'"), 7),
        ("99999999999999999999999 of (a, b)", K::InvalidNumber, 0),
        ("x >= 4294967296", K::InvalidNumber, 5),
        ("x >= 3abc", K::InvalidNumber, 5),
        ("x >= 3.5", K::InvalidNumber, 5),
        ("x >= -1", unexpected('-', "a decimal number"), 5),
        ("x >=", end("a decimal number"), 4),
        (
            "x = 3",
            unexpected('=', "'==' (a single '=' is not an operator)"),
            2,
        ),
        (
            "x =< 3",
            unexpected('=', "'==' (a single '=' is not an operator)"),
            2,
        ),
        ("x >= 0", K::TautologicalComparison, 0),
        ("x <= 4294967295", K::TautologicalComparison, 0),
        ("x < 0", K::UnsatisfiableComparison, 0),
        ("a and x > 4294967295", K::UnsatisfiableComparison, 6),
        ("é", unexpected('é', ATOM), 0),
        ("a and é", unexpected('é', ATOM), 6),
        ("a & b", unexpected('&', AFTER_TOP), 2),
        ("1a", K::InvalidNumber, 0),
        ("-a", unexpected('-', ATOM), 0),
        ("a or or b", K::ReservedWord, 5),
        ("\"a\"", unexpected('"', ATOM), 0),
    ];
    for (input, kind, offset) in cases {
        let err = Policy::parse(input).expect_err(input);
        assert_eq!((&err.kind, err.offset), (&kind, offset), "{input:?}: {err}");
    }
}

#[test]
fn error_display_names_the_offset() {
    let err = Policy::parse("(role:doctor or b").unwrap_err();
    assert_eq!(
        err.to_string(),
        "unexpected end of input, expected 'and', 'or' or ')' at byte 17"
    );
}

#[test]
fn text_length_is_checked_first() {
    let long = "a or ".repeat(20_000);
    let err = Policy::parse(&long).unwrap_err();
    assert_eq!(
        (err.kind, err.offset),
        (
            PolicyErrorKind::TooLong {
                len: 100_000,
                max: 65_536
            },
            65_536
        )
    );
    let limits = Limits {
        max_text_len: 5,
        ..Limits::default()
    };
    assert!(Policy::parse_with_limits("a or b", &limits).is_err());
    assert!(Policy::parse_with_limits("a or ", &limits).is_err_and(|e| e.offset == 5));
}

#[test]
fn leaf_limit_counts_numeric_expansion() {
    let leaves: Vec<String> = (0..1025).map(|i| format!("a{i}")).collect();
    let text = leaves.join(" or ");
    let err = Policy::parse(&text).unwrap_err();
    let last = text.rfind("a1024").unwrap();
    assert_eq!(
        (err.kind, err.offset),
        (PolicyErrorKind::TooManyLeaves { max: 1024 }, last)
    );
    assert_eq!(
        Policy::parse(&leaves[..1024].join(" or "))
            .unwrap()
            .leaf_count(),
        1024
    );

    let limits = Limits {
        max_leaves: 40,
        ..Limits::default()
    };
    let ok = Policy::parse_with_limits("x == 1 and y >= 2147483648 or z", &limits).unwrap();
    assert_eq!(ok.leaf_count(), 34);
    let err = Policy::parse_with_limits("x == 1 and y == 2", &limits).unwrap_err();
    assert_eq!(
        (err.kind, err.offset),
        (PolicyErrorKind::TooManyLeaves { max: 40 }, 11)
    );
}

#[test]
fn deep_nesting_is_rejected_without_overflowing_the_stack() {
    let deep = format!("{}a{}", "(".repeat(100_000), ")".repeat(100_000));
    let long_text = Limits {
        max_text_len: usize::MAX,
        ..Limits::default()
    };
    let err = Policy::parse_with_limits(&deep, &long_text).unwrap_err();
    assert_eq!(
        (err.kind, err.offset),
        (PolicyErrorKind::TooDeep { max: 32 }, 32)
    );
    // Within the default text limit too.
    let shallower = format!("{}a{}", "(".repeat(30_000), ")".repeat(30_000));
    let err = Policy::parse(&shallower).unwrap_err();
    assert_eq!(err.kind, PolicyErrorKind::TooDeep { max: 32 });
    // A huge configured limit is capped, so the parser still cannot exhaust the stack.
    let limits = Limits {
        max_depth: usize::MAX,
        ..long_text
    };
    let err = Policy::parse_with_limits(&deep, &limits).unwrap_err();
    assert_eq!(
        (err.kind, err.offset),
        (
            PolicyErrorKind::TooDeep {
                max: Limits::MAX_DEPTH
            },
            128
        )
    );
    let deep = format!("{}a{}", "2 of (b, ".repeat(50_000), ")".repeat(50_000));
    assert!(matches!(
        Policy::parse_with_limits(&deep, &limits).unwrap_err().kind,
        PolicyErrorKind::TooDeep { .. }
    ));
    // Nesting at the cap parses.
    let at_cap = format!("{}a and b{}", "(c or ".repeat(127), ")".repeat(127));
    let policy = Policy::parse_with_limits(&at_cap, &limits).unwrap();
    assert_eq!(
        Policy::parse_with_limits(&policy.to_string(), &limits).unwrap(),
        policy
    );
}

#[test]
fn depth_limit_is_tree_depth() {
    let limits = |max_depth| Limits {
        max_depth,
        ..Limits::default()
    };
    assert!(Policy::parse_with_limits("a", &limits(0)).is_ok());
    assert!(Policy::parse_with_limits("(a)", &limits(0)).is_err());
    assert!(Policy::parse_with_limits("a and b", &limits(1)).is_ok());
    let err = Policy::parse_with_limits("a and b or c", &limits(1)).unwrap_err();
    assert_eq!(
        (err.kind, err.offset),
        (PolicyErrorKind::TooDeep { max: 1 }, 0)
    );
    // The same limit applies to trees built in code.
    let tree = Policy::parse("a and b or c").unwrap().into_root();
    assert!(Policy::from_node_with_limits(tree.clone(), &limits(1)).is_err());
    assert!(Policy::from_node_with_limits(tree, &limits(2)).is_ok());
    let mut node = Node::Attribute(Attribute::parse("a").unwrap());
    for _ in 0..300 {
        node = Node::Or(vec![node, Node::Attribute(Attribute::parse("b").unwrap())]);
    }
    assert_eq!(
        Policy::from_node(node).unwrap_err().kind,
        PolicyErrorKind::TooDeep { max: 32 }
    );
}

#[test]
fn label_length_limit() {
    let limits = Limits {
        max_label_len: 8,
        ..Limits::default()
    };
    assert!(Policy::parse_with_limits("abc:defg", &limits).is_ok());
    let err = Policy::parse_with_limits("x or abc:defghi", &limits).unwrap_err();
    assert_eq!(
        (err.kind, err.offset),
        (PolicyErrorKind::LabelTooLong { max: 8 }, 5)
    );
    assert!(Policy::parse_with_limits("abc >= 1", &limits).is_ok());
    let err = Policy::parse_with_limits("abcd >= 1", &limits).unwrap_err();
    assert_eq!(err.kind, PolicyErrorKind::LabelTooLong { max: 8 });
}

#[test]
fn constructors_validate_like_the_parser() {
    let a = Policy::attribute("role:doctor").unwrap();
    let b = Policy::attribute("dept:\"cardio unit\"").unwrap();
    let level = Policy::compare("level", CmpOp::Ge, 3).unwrap();
    let either = Policy::or(vec![b.clone(), level.clone()]).unwrap();
    let all = Policy::and(vec![a.clone(), either]).unwrap();
    assert_eq!(
        all.to_string(),
        "role:doctor and (dept:\"cardio unit\" or level >= 3)"
    );
    // 3 is odd, so `>= 3` tests all 32 bits.
    assert_eq!(all.leaf_count(), 1 + 1 + 32);
    let t = Policy::threshold(2, vec![a.clone(), b.clone(), level]).unwrap();
    assert_eq!(Policy::parse(&t.to_string()).unwrap(), t);

    assert_eq!(Policy::and(vec![a.clone()]).unwrap(), a);
    assert_eq!(
        Policy::or(vec![]).unwrap_err().kind,
        PolicyErrorKind::EmptyPolicy
    );
    assert_eq!(
        Policy::threshold(2, vec![a.clone()]).unwrap_err().kind,
        PolicyErrorKind::InvalidThreshold { k: 2, n: 1 }
    );
    assert_eq!(
        Policy::threshold(0, vec![a.clone(), b]).unwrap_err().kind,
        PolicyErrorKind::InvalidThreshold { k: 0, n: 2 }
    );
    assert_eq!(
        Policy::from_node(Node::And(vec![a.into_root()]))
            .unwrap_err()
            .kind,
        PolicyErrorKind::TooFewChildren
    );
    assert_eq!(
        Policy::compare("x", CmpOp::Ge, 0).unwrap_err().kind,
        PolicyErrorKind::TautologicalComparison
    );
    assert_eq!(
        Policy::compare("a b", CmpOp::Ge, 1).unwrap_err().kind,
        PolicyErrorKind::InvalidName
    );
    assert_eq!(
        Policy::attribute("role:doctor and x").unwrap_err().kind,
        PolicyErrorKind::UnexpectedChar {
            found: 'a',
            expected: "end of attribute"
        }
    );
    let leaves = (0..1025)
        .map(|i| Policy::attribute(&format!("a{i}")))
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    assert_eq!(
        Policy::or(leaves).unwrap_err().kind,
        PolicyErrorKind::TooManyLeaves { max: 1024 }
    );
}

#[test]
fn attributes_and_labels() {
    let attribute = Attribute::parse(r#"dept:"a \"b\" c""#).unwrap();
    assert_eq!(attribute.label(), r#"dept:a "b" c"#);
    assert_eq!(attribute.to_string(), r#"dept:"a \"b\" c""#);
    assert_eq!(
        Attribute::from_label(&attribute.label()).unwrap(),
        attribute
    );
    assert_eq!(Attribute::from_label("a:b:c").unwrap().value(), Some("b:c"));
    assert_eq!(Attribute::parse("admin").unwrap().label(), "admin");
    assert_eq!(
        Attribute::new("a b", None).unwrap_err().kind,
        PolicyErrorKind::InvalidName
    );
    assert_eq!(
        Attribute::new("OR", None).unwrap_err().kind,
        PolicyErrorKind::ReservedWord
    );
    assert_eq!(
        Attribute::new("a", Some(String::new())).unwrap_err().kind,
        PolicyErrorKind::EmptyValue
    );
    assert_eq!(
        Attribute::new("1a", None).unwrap_err().kind,
        PolicyErrorKind::InvalidName
    );
    assert_eq!(bit_label("level", 7, true), "level#7=1");
}

#[test]
fn satisfaction() {
    let policy =
        Policy::parse("role:doctor and (dept:cardiology or level >= 3) or 2 of (a, b, c)").unwrap();
    let yes = |items: &[&str]| policy.is_satisfied_by(&AttributeSet::parse(items).unwrap());
    assert!(yes(&["role:doctor", "dept:cardiology"]));
    assert!(yes(&["role:doctor", "level=3"]));
    assert!(!yes(&["role:doctor", "level=2"]));
    assert!(!yes(&["Role:doctor", "dept:cardiology"]));
    assert!(yes(&["a", "c"]));
    assert!(!yes(&["a", "dept:cardiology"]));
    assert!(!yes(&[]));
}

#[test]
fn threshold_alternatives_must_be_distinct() {
    use PolicyErrorKind as K;
    let dup = |index| K::DuplicateAlternative { index };
    let cases: &[(&str, usize, usize)] = &[
        ("2 of (a, a, b)", 1, 9),
        ("x and 2 of (a, b,  a)", 2, 19),
        ("2 of (x:1, (x:1), b)", 1, 11),
        ("2 of (x:1, x:\"1\", b)", 1, 11),
        ("2 of (a and b, b and a, c)", 1, 15),
        ("2 of ((a and b) and c, a and (c and b), d)", 1, 23),
        ("2 of (a or b, b or a or a, c)", 1, 14),
        ("2 of (a and a, a, b)", 1, 15),
        ("2 of (n > 2, n >= 3, c)", 1, 13),
        ("2 of (n <= 2, n < 3, c)", 1, 14),
        ("2 of (1 of (a, b), b or a, c)", 1, 19),
        ("2 of (2 of (a, b), b and a, c)", 1, 19),
        ("2 of (2 of (a, b, c), 2 of (c, b, a), d)", 1, 22),
        ("a or 2 of (b, (c or 2 of (d, d, e)))", 1, 29),
    ];
    for (input, index, offset) in cases {
        let err = Policy::parse(input).expect_err(input);
        assert_eq!(
            (&err.kind, err.offset),
            (&dup(*index), *offset),
            "{input:?}: {err}"
        );
    }
    // Distinct alternatives, and repeats where they are harmless.
    for ok in [
        "2 of (a, b, c)",
        "2 of (a, a and b, c)",
        "2 of (a:1, a:2, a)",
        "2 of (n > 2, n >= 2, c)",
        "2 of (2 of (a, b, c), 1 of (a, b, c), d)",
        "a and a",
        "a or a",
        "(a and b) or (b and a)",
        "2 of (a, b) and 2 of (a, b)",
    ] {
        Policy::parse(ok).unwrap_or_else(|e| panic!("{ok:?}: {e}"));
    }
    let a = Policy::attribute("a").unwrap();
    let b = Policy::attribute("b").unwrap();
    assert_eq!(
        Policy::threshold(2, vec![a.clone(), b.clone(), a.clone()])
            .unwrap_err()
            .kind,
        dup(2)
    );
    let ab = Policy::and(vec![a.clone(), b.clone()]).unwrap();
    let ba = Policy::and(vec![b.clone(), a.clone()]).unwrap();
    let err = Policy::threshold(1, vec![ab, ba]).unwrap_err();
    assert_eq!((err.kind, err.offset), (dup(1), 0));
    assert!(Policy::threshold(2, vec![a, b, Policy::attribute("c").unwrap()]).is_ok());
}
