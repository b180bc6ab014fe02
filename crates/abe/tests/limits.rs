//! Creation and decoding agree on limits: policies and attribute sets built with raised
//! [`Limits`] are refused when a ciphertext or key would be created, never later by the
//! decoders; objects at the default limits round-trip.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use medseal_abe::policy::{Limits, PolicyErrorKind};
use medseal_abe::{
    AttributeSet, Bsw07, Encoding, Error, Fame, Policy, PolicyError, Scheme, envelope,
};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

fn raised() -> Limits {
    Limits {
        max_text_len: 4 << 20,
        max_leaves: 4096,
        max_depth: 64,
        max_label_len: 4096,
        max_attributes: 4096,
    }
}

fn any_of(n: usize, label_len: usize) -> String {
    (0..n)
        .map(|i| format!("a{i:0>width$}", width = label_len - 1))
        .collect::<Vec<_>>()
        .join(" or ")
}

/// `a0 and (a1 or (a2 and (... a{depth})))`: a tree of depth `depth`.
fn nested(depth: usize) -> String {
    let mut text = format!("a{depth}");
    for i in (0..depth).rev() {
        let op = if i % 2 == 0 { "and" } else { "or" };
        text = format!("a{i} {op} ({text})");
    }
    text
}

fn policy_kind(result: Result<impl Sized, Error>) -> PolicyErrorKind {
    match result {
        Err(Error::Policy(PolicyError { kind, .. })) => kind,
        Err(e) => panic!("unexpected error {e}"),
        Ok(_) => panic!("accepted"),
    }
}

fn policies_beyond_decode_limits_are_refused_at_encryption<S: Scheme>() {
    let mut rng = ChaCha20Rng::seed_from_u64(21);
    let (pk, msk) = S::setup(&mut rng);
    let limits = raised();

    // At the limits: encrypts, decodes, decrypts.
    let key = S::keygen(
        &pk,
        &msk,
        &AttributeSet::parse(["a0", "a1", "a0000000"]).unwrap(),
        &mut rng,
    )
    .unwrap();
    for text in [any_of(1024, 8), nested(32)] {
        let policy = Policy::parse(&text).unwrap();
        let (kem, ct) = S::encapsulate(&pk, &policy, &mut rng).unwrap();
        let back = S::Ciphertext::from_bytes(&ct.to_bytes()).unwrap();
        assert_eq!(S::policy(&back), &policy);
        assert_eq!(S::decapsulate(&key, &back).unwrap(), kem);
    }

    // Beyond: parse with raised limits, refused by encapsulate and by seal.
    let cases = [
        (
            any_of(1025, 8),
            PolicyErrorKind::TooManyLeaves { max: 1024 },
        ),
        (nested(33), PolicyErrorKind::TooDeep { max: 32 }),
        (
            format!("a:{} or b", "v".repeat(1100)),
            PolicyErrorKind::LabelTooLong { max: 1024 },
        ),
    ];
    for (text, kind) in cases {
        let policy = Policy::parse_with_limits(&text, &limits).unwrap();
        assert_eq!(policy_kind(S::encapsulate(&pk, &policy, &mut rng)), kind);
        let sealed = envelope::seal::<S, _>(&pk, &policy, b"", b"x", &mut rng);
        assert_eq!(policy_kind(sealed), kind);
        assert!(Policy::parse(&policy.to_string()).is_err());
    }
    // A canonical text longer than the decoders read (100 leaves of 1000 bytes).
    let policy = Policy::parse_with_limits(&any_of(100, 1000), &limits).unwrap();
    assert!(matches!(
        S::encapsulate(&pk, &policy, &mut rng),
        Err(Error::LimitExceeded {
            what: "policy",
            limit: 65536
        })
    ));
}

fn keys_beyond_decode_limits_are_refused_at_keygen<S: Scheme>() {
    let mut rng = ChaCha20Rng::seed_from_u64(22);
    let (pk, msk) = S::setup(&mut rng);
    let limits = raised();

    // At the limit: 1024 labels (32 numeric attributes), issued and decoded.
    let numerics: Vec<String> = (0..32).map(|i| format!("n{i}={i}")).collect();
    let at = AttributeSet::parse(&numerics).unwrap();
    assert_eq!(at.len(), 1024);
    let key = S::keygen(&pk, &msk, &at, &mut rng).unwrap();
    let back = S::UserKey::from_bytes(&key.to_bytes()).unwrap();
    assert_eq!(S::attributes(&back), &at);

    // One label more.
    let mut items = numerics.clone();
    items.push("extra".into());
    let over = AttributeSet::parse_with_limits(&items, &limits).unwrap();
    assert_eq!(
        policy_kind(S::keygen(&pk, &msk, &over, &mut rng)),
        PolicyErrorKind::TooManyAttributes { max: 1024 }
    );
    // More items than a key holds.
    let many: Vec<String> = (0..1025).map(|i| format!("a{i}")).collect();
    let over = AttributeSet::parse_with_limits(&many, &limits).unwrap();
    assert!(matches!(
        S::keygen(&pk, &msk, &over, &mut rng),
        Err(Error::LimitExceeded {
            what: "key attributes",
            limit: 1024
        })
    ));
    // A label longer than the decoders read.
    let long = format!("a:{}", "v".repeat(1100));
    let over = AttributeSet::parse_with_limits([long.as_str()], &limits).unwrap();
    assert!(matches!(
        S::keygen(&pk, &msk, &over, &mut rng),
        Err(Error::LimitExceeded {
            what: "attribute",
            limit: 1024
        })
    ));
}

#[test]
fn fame_policies_beyond_decode_limits_are_refused_at_encryption() {
    policies_beyond_decode_limits_are_refused_at_encryption::<Fame>();
}

#[test]
fn bsw07_policies_beyond_decode_limits_are_refused_at_encryption() {
    policies_beyond_decode_limits_are_refused_at_encryption::<Bsw07>();
}

#[test]
fn fame_keys_beyond_decode_limits_are_refused_at_keygen() {
    keys_beyond_decode_limits_are_refused_at_keygen::<Fame>();
}

#[test]
fn bsw07_keys_beyond_decode_limits_are_refused_at_keygen() {
    keys_beyond_decode_limits_are_refused_at_keygen::<Bsw07>();
}
