//! Tests on the scheme algebra itself, below the public API: the differential oracle
//! (same scheme code on two independent curve libraries) and collusion attacks that run
//! the attacker's decryption equations directly, never asking the library whether a
//! policy is satisfied.

use crate::curve::{Backend, Blst, batch_affine, vartime_lincomb_g1, zk::Zk};
use crate::lsss::Lsss;
use crate::policy::{AttributeSet, Policy};
use crate::{bsw07, fame};
use ff::Field;
use group::Group;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

fn attrs(items: &[&str]) -> AttributeSet {
    AttributeSet::parse(items.iter().copied()).expect("valid attributes")
}

fn policy(text: &str) -> Policy {
    text.parse().expect("valid policy")
}

const POLICIES: &[&str] = &[
    "role:doctor",
    "role:doctor and dept:cardiology",
    "role:nurse or (role:doctor and dept:cardiology)",
    "2 of (role:doctor, dept:cardiology, site:north)",
    "role:doctor and level >= 3",
];

/// FAME over blstrs and over zkcrypto's bls12_381, from the same RNG stream, must agree
/// byte for byte on keys and ciphertexts, and each must decrypt to its own KEM key.
#[test]
fn fame_backends_agree_byte_for_byte() {
    for (i, text) in POLICIES.iter().enumerate() {
        let seed = 100 + i as u64;
        let user = attrs(&["role:doctor", "dept:cardiology", "site:north", "level=4"]);
        let (a_key, a_ct, a_ok) = fame_run::<Blst>(seed, &user, &policy(text));
        let (b_key, b_ct, b_ok) = fame_run::<Zk>(seed, &user, &policy(text));
        assert_eq!(a_key, b_key, "user keys differ for {text}");
        assert_eq!(a_ct, b_ct, "ciphertexts differ for {text}");
        assert!(a_ok && b_ok, "decapsulation failed for {text}");
    }
}

fn fame_run<B: Backend>(seed: u64, user: &AttributeSet, p: &Policy) -> (Vec<u8>, Vec<u8>, bool) {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let (pk, msk) = fame::core::setup::<B>(&mut rng);
    let key = fame::core::keygen(&pk, &msk, user, &mut rng).expect("keygen");
    let (gt, ct) = fame::core::encapsulate(&pk, p, &mut rng).expect("encapsulate");
    let ok = fame::core::decapsulate(&key, &ct).expect("decapsulate") == gt;
    (
        fame::encoding::encode_user_key(&key),
        fame::encoding::encode_ciphertext(&ct),
        ok,
    )
}

#[test]
fn bsw07_backends_agree_byte_for_byte() {
    for (i, text) in POLICIES.iter().enumerate() {
        let seed = 200 + i as u64;
        let user = attrs(&["role:doctor", "dept:cardiology", "site:north", "level=4"]);
        let run = |zk: bool| {
            let mut rng = ChaCha20Rng::seed_from_u64(seed);
            if zk {
                let (pk, msk) = bsw07::core::setup::<Zk>(&mut rng);
                let key = bsw07::core::keygen(&pk, &msk, &user, &mut rng).expect("keygen");
                let (gt, ct) = bsw07::core::encapsulate(&pk, &policy(text), &mut rng).expect("enc");
                let ok = bsw07::core::decapsulate(&key, &ct).expect("dec") == gt;
                (
                    bsw07::encoding::encode_user_key(&key),
                    bsw07::encoding::encode_ciphertext(&ct),
                    ok,
                )
            } else {
                let (pk, msk) = bsw07::core::setup::<Blst>(&mut rng);
                let key = bsw07::core::keygen(&pk, &msk, &user, &mut rng).expect("keygen");
                let (gt, ct) = bsw07::core::encapsulate(&pk, &policy(text), &mut rng).expect("enc");
                let ok = bsw07::core::decapsulate(&key, &ct).expect("dec") == gt;
                (
                    bsw07::encoding::encode_user_key(&key),
                    bsw07::encoding::encode_ciphertext(&ct),
                    ok,
                )
            }
        };
        let (a, b) = (run(false), run(true));
        assert_eq!(a.0, b.0, "user keys differ for {text}");
        assert_eq!(a.1, b.1, "ciphertexts differ for {text}");
        assert!(a.2 && b.2, "decapsulation failed for {text}");
    }
}

/// Coefficients w with sum w_i M_i = e1 over the rows whose labels the attacker claims
/// (the union of both keys), found by the LSSS itself: this is what a colluding pair
/// would compute.
fn union_coefficients(p: &Policy, union: &AttributeSet) -> Vec<(usize, <Blst as Backend>::Scalar)> {
    Lsss::from_policy(p)
        .reconstruct(union)
        .expect("the union satisfies the policy")
}

/// Two FAME keys whose union satisfies the policy (neither alone does) are merged
/// component-wise and run through the decryption equations. Every way of choosing the
/// key-wide parts (sk0, sk') from either key must miss the KEM key.
#[test]
fn fame_collusion_fails_at_the_algebra_level() {
    let mut rng = ChaCha20Rng::seed_from_u64(31337);
    let (pk, msk) = fame::core::setup::<Blst>(&mut rng);
    let p = policy("role:doctor and dept:cardiology");
    let alice = fame::core::keygen(
        &pk,
        &msk,
        &attrs(&["role:doctor", "dept:oncology"]),
        &mut rng,
    )
    .unwrap();
    let bob = fame::core::keygen(
        &pk,
        &msk,
        &attrs(&["role:nurse", "dept:cardiology"]),
        &mut rng,
    )
    .unwrap();
    let (gt, ct) = fame::core::encapsulate(&pk, &p, &mut rng).unwrap();
    let m = Lsss::<<Blst as Backend>::Scalar>::from_policy(&p);
    let coefficients = union_coefficients(&p, &attrs(&["role:doctor", "dept:cardiology"]));

    // Sanity: an honest key with both attributes does decrypt, through the same equations.
    let honest = fame::core::keygen(
        &pk,
        &msk,
        &attrs(&["role:doctor", "dept:cardiology"]),
        &mut rng,
    )
    .unwrap();
    assert!(fame_equations(&ct, &m, &coefficients, [&honest, &honest], &honest) == gt);

    for base in [&alice, &bob] {
        let merged = fame_equations(&ct, &m, &coefficients, [&alice, &bob], base);
        assert!(merged != gt, "colluding keys recovered the KEM key");
    }
}

/// The FAME decryption equations with attribute components taken from whichever key
/// holds the row's label, and sk0/sk' from `base`.
fn fame_equations(
    ct: &fame::core::Ciphertext<Blst>,
    m: &Lsss<<Blst as Backend>::Scalar>,
    coefficients: &[(usize, <Blst as Backend>::Scalar)],
    keys: [&fame::core::UserKey<Blst>; 2],
    base: &fame::core::UserKey<Blst>,
) -> <Blst as Backend>::Gt {
    let mut g1 = Vec::new();
    for l in 0..3 {
        let mut key_part = <Blst as Backend>::G1::from(base.sk_prime[l]);
        let mut ct_part = <Blst as Backend>::G1::identity();
        for (i, w) in coefficients {
            let label = &m.rows[*i].label;
            let comp = keys
                .iter()
                .find_map(|k| k.labels.binary_search(label).ok().map(|j| k.sk[j][l]))
                .expect("one of the keys holds the label");
            key_part += vartime_lincomb_g1::<Blst>(&[comp], &[*w]);
            ct_part += vartime_lincomb_g1::<Blst>(&[ct.rows[*i][l]], &[*w]);
        }
        g1.push((key_part, -ct_part));
    }
    let kp: Vec<_> = g1.iter().map(|x| x.0).collect();
    let cp: Vec<_> = g1.iter().map(|x| x.1).collect();
    let (kp, cp) = (batch_affine(&kp), batch_affine(&cp));
    let terms: Vec<_> = (0..3)
        .map(|l| (kp[l], ct.ct0[l]))
        .chain((0..3).map(|l| (cp[l], base.sk0[l])))
        .collect();
    Blst::multi_pairing(&terms)
}

/// The same attack on BSW07: D from either key, D_j/D'_j from whichever key holds j.
#[test]
fn bsw07_collusion_fails_at_the_algebra_level() {
    let mut rng = ChaCha20Rng::seed_from_u64(4242);
    let (pk, msk) = bsw07::core::setup::<Blst>(&mut rng);
    let p = policy("role:doctor and dept:cardiology");
    let alice = bsw07::core::keygen(&pk, &msk, &attrs(&["role:doctor"]), &mut rng).unwrap();
    let bob = bsw07::core::keygen(&pk, &msk, &attrs(&["dept:cardiology"]), &mut rng).unwrap();
    let honest = bsw07::core::keygen(
        &pk,
        &msk,
        &attrs(&["role:doctor", "dept:cardiology"]),
        &mut rng,
    )
    .unwrap();
    let (gt, ct) = bsw07::core::encapsulate(&pk, &p, &mut rng).unwrap();
    let m = Lsss::<<Blst as Backend>::Scalar>::from_policy(&p);
    let coefficients = union_coefficients(&p, &attrs(&["role:doctor", "dept:cardiology"]));

    let equations = |keys: [&bsw07::core::UserKey<Blst>; 2], base: &bsw07::core::UserKey<Blst>| {
        let mut terms = vec![(ct.c, base.d)];
        for (i, w) in &coefficients {
            let label = &m.rows[*i].label;
            let (dj, djp) = keys
                .iter()
                .find_map(|k| k.labels.binary_search(label).ok().map(|j| k.dj[j]))
                .expect("one of the keys holds the label");
            let (cy, cyp) = ct.rows[*i];
            let a = batch_affine(&[
                vartime_lincomb_g1::<Blst>(&[dj], &[-*w]),
                vartime_lincomb_g1::<Blst>(&[cyp], &[*w]),
            ]);
            terms.push((a[0], cy));
            terms.push((a[1], djp));
        }
        Blst::multi_pairing(&terms)
    };
    assert!(
        equations([&honest, &honest], &honest) == gt,
        "the equations are wrong"
    );
    for base in [&alice, &bob] {
        assert!(
            equations([&alice, &bob], base) != gt,
            "colluding keys recovered the KEM key"
        );
    }
}

/// A tampered ciphertext row (replaced by a random point) never yields the KEM key.
#[test]
fn fame_tampered_row_changes_the_key() {
    let mut rng = ChaCha20Rng::seed_from_u64(77);
    let (pk, msk) = fame::core::setup::<Blst>(&mut rng);
    let p = policy("role:doctor and dept:cardiology");
    let key = fame::core::keygen(
        &pk,
        &msk,
        &attrs(&["role:doctor", "dept:cardiology"]),
        &mut rng,
    )
    .unwrap();
    let (gt, mut ct) = fame::core::encapsulate(&pk, &p, &mut rng).unwrap();
    let s = <Blst as Backend>::Scalar::random(&mut rng);
    ct.rows[0][1] = group::Curve::to_affine(&(<Blst as Backend>::G1::generator() * s));
    assert!(fame::core::decapsulate(&key, &ct).unwrap() != gt);
}
