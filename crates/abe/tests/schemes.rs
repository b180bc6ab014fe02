//! Public-API properties of both schemes: decryption succeeds iff the policy is
//! satisfied; tampering is always rejected; encodings round-trip and reject malformed
//! input.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{held, names, tree};
use medseal_abe::{AttributeSet, Bsw07, Encoding, Error, Fame, Policy, Scheme, envelope};
use proptest::prelude::*;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

fn decrypts_iff_satisfied<S: Scheme>(
    seed: u64,
    t: &common::Tree,
    h: &std::collections::BTreeSet<usize>,
) {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let (pk, msk) = S::setup(&mut rng);
    let policy: Policy = t.text().parse().unwrap();
    let key = S::keygen(&pk, &msk, &AttributeSet::parse(names(h)).unwrap(), &mut rng).unwrap();
    let (kem, ct) = S::encapsulate(&pk, &policy, &mut rng).unwrap();
    match S::decapsulate(&key, &ct) {
        Ok(k) => {
            assert!(t.satisfied(h), "decrypted without satisfying {}", t.text());
            assert_eq!(k, kem, "wrong key for {}", t.text());
        }
        Err(Error::PolicyNotSatisfied) => {
            assert!(!t.satisfied(h), "refused a satisfying key for {}", t.text())
        }
        Err(e) => panic!("unexpected error {e} for {}", t.text()),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn fame_decrypts_iff_satisfied(seed in any::<u64>(), t in tree(), h in held()) {
        decrypts_iff_satisfied::<Fame>(seed, &t, &h);
    }

    #[test]
    fn bsw07_decrypts_iff_satisfied(seed in any::<u64>(), t in tree(), h in held()) {
        decrypts_iff_satisfied::<Bsw07>(seed, &t, &h);
    }
}

fn fixture<S: Scheme>(policy: &str) -> (S::PublicKey, S::MasterKey, S::UserKey, S::Ciphertext) {
    let mut rng = ChaCha20Rng::seed_from_u64(5);
    let (pk, msk) = S::setup(&mut rng);
    let attrs = AttributeSet::parse(["role:doctor", "dept:cardiology", "level=4"]).unwrap();
    let key = S::keygen(&pk, &msk, &attrs, &mut rng).unwrap();
    let (_, ct) = S::encapsulate(&pk, &policy.parse().unwrap(), &mut rng).unwrap();
    (pk, msk, key, ct)
}

fn roundtrip<T: Encoding>(value: &T) {
    let bytes = value.to_bytes();
    let back = T::from_bytes(&bytes).expect("decodes");
    assert_eq!(back.to_bytes(), bytes, "re-encoding differs");
    // Every strict prefix is rejected, and so is any trailing byte.
    for cut in 0..bytes.len() {
        assert!(
            T::from_bytes(&bytes[..cut]).is_err(),
            "prefix of {cut} bytes accepted"
        );
    }
    let mut longer = bytes.clone();
    longer.push(0);
    assert!(T::from_bytes(&longer).is_err(), "trailing byte accepted");
}

fn encodings_roundtrip<S: Scheme>() {
    let (pk, msk, key, ct) = fixture::<S>("role:doctor and (dept:cardiology or level >= 3)");
    roundtrip(&pk);
    roundtrip(&msk);
    roundtrip(&key);
    roundtrip(&ct);
    // Objects are typed: a key is not a ciphertext, a FAME object is not a BSW07 one.
    assert!(S::Ciphertext::from_bytes(&key.to_bytes()).is_err());
    assert!(S::UserKey::from_bytes(&pk.to_bytes()).is_err());
}

#[test]
fn fame_encodings_roundtrip() {
    encodings_roundtrip::<Fame>();
}

#[test]
fn bsw07_encodings_roundtrip() {
    encodings_roundtrip::<Bsw07>();
}

#[test]
fn schemes_do_not_accept_each_others_objects() {
    let (_, _, key, ct) = fixture::<Fame>("role:doctor");
    assert!(<Bsw07 as Scheme>::Ciphertext::from_bytes(&ct.to_bytes()).is_err());
    assert!(<Bsw07 as Scheme>::UserKey::from_bytes(&key.to_bytes()).is_err());
}

/// Flipping any bit of any byte of a ciphertext is either rejected by the decoder or
/// yields a different KEM key: never the original.
fn tampered_ciphertext_never_decrypts<S: Scheme>() {
    let mut rng = ChaCha20Rng::seed_from_u64(6);
    let (pk, msk) = S::setup(&mut rng);
    let attrs = AttributeSet::parse(["role:doctor", "dept:cardiology"]).unwrap();
    let key = S::keygen(&pk, &msk, &attrs, &mut rng).unwrap();
    let (kem, ct) = S::encapsulate(
        &pk,
        &"role:doctor and dept:cardiology".parse().unwrap(),
        &mut rng,
    )
    .unwrap();
    let bytes = ct.to_bytes();
    for i in 0..bytes.len() {
        let mut bad = bytes.clone();
        bad[i] ^= 1 << (i % 8);
        if let Ok(ct2) = S::Ciphertext::from_bytes(&bad)
            && let Ok(k2) = S::decapsulate(&key, &ct2)
        {
            assert_ne!(k2, kem, "byte {i} flipped and the same key came out");
        }
    }
}

#[test]
fn fame_tampered_ciphertext_never_decrypts() {
    tampered_ciphertext_never_decrypts::<Fame>();
}

#[test]
fn bsw07_tampered_ciphertext_never_decrypts() {
    tampered_ciphertext_never_decrypts::<Bsw07>();
}

/// Flipping any byte of an envelope (header, ABE ciphertext, any segment or tag) makes
/// opening fail; truncating or extending it too.
#[test]
fn tampered_envelope_is_rejected() {
    let mut rng = ChaCha20Rng::seed_from_u64(7);
    let (pk, msk) = Fame::setup(&mut rng);
    let key = Fame::keygen(
        &pk,
        &msk,
        &AttributeSet::parse(["role:doctor"]).unwrap(),
        &mut rng,
    )
    .unwrap();
    let policy: Policy = "role:doctor".parse().unwrap();
    let payload: Vec<u8> = (0..100u32).map(|i| i as u8).collect();
    let mut sealed = Vec::new();
    envelope::seal_stream::<Fame, _>(
        &pk,
        &policy,
        b"aad",
        32,
        &payload[..],
        &mut sealed,
        &mut rng,
    )
    .unwrap();
    assert_eq!(
        envelope::open::<Fame>(&key, b"aad", &sealed).unwrap(),
        payload
    );
    assert!(envelope::open::<Fame>(&key, b"other aad", &sealed).is_err());
    for i in 0..sealed.len() {
        let mut bad = sealed.clone();
        bad[i] ^= 0x80 >> (i % 8);
        assert!(
            envelope::open::<Fame>(&key, b"aad", &bad).is_err(),
            "flip at byte {i} accepted"
        );
    }
    for cut in 0..sealed.len() {
        assert!(
            envelope::open::<Fame>(&key, b"aad", &sealed[..cut]).is_err(),
            "cut at {cut} accepted"
        );
    }
    // Dropping a whole middle segment or the last one.
    let header = envelope::inspect::<Fame>(&sealed).unwrap().as_bytes().len();
    let seg = 32 + 16;
    let mut dropped = sealed[..header + seg].to_vec();
    dropped.extend_from_slice(&sealed[header + 2 * seg..]);
    assert!(envelope::open::<Fame>(&key, b"aad", &dropped).is_err());
    assert!(
        envelope::open::<Fame>(&key, b"aad", &sealed[..sealed.len() - (100 % 32 + 16)]).is_err()
    );
}

#[test]
fn envelope_sizes_and_boundaries() {
    let mut rng = ChaCha20Rng::seed_from_u64(8);
    let (pk, msk) = Bsw07::setup(&mut rng);
    let key = Bsw07::keygen(&pk, &msk, &AttributeSet::parse(["a"]).unwrap(), &mut rng).unwrap();
    let policy: Policy = "a".parse().unwrap();
    for len in [0usize, 1, 15, 16, 17, 31, 32, 33, 64, 65, 1000] {
        let payload: Vec<u8> = (0..len).map(|i| (i * 7) as u8).collect();
        let mut sealed = Vec::new();
        envelope::seal_stream::<Bsw07, _>(
            &pk,
            &policy,
            b"",
            16,
            &payload[..],
            &mut sealed,
            &mut rng,
        )
        .unwrap();
        assert_eq!(
            envelope::open::<Bsw07>(&key, b"", &sealed).unwrap(),
            payload,
            "len {len}"
        );
    }
}

#[test]
fn unsatisfied_policy_is_reported_separately() {
    let mut rng = ChaCha20Rng::seed_from_u64(9);
    let (pk, msk) = Fame::setup(&mut rng);
    let nurse = Fame::keygen(
        &pk,
        &msk,
        &AttributeSet::parse(["role:nurse"]).unwrap(),
        &mut rng,
    )
    .unwrap();
    let sealed =
        envelope::seal::<Fame, _>(&pk, &"role:doctor".parse().unwrap(), b"", b"x", &mut rng)
            .unwrap();
    assert!(matches!(
        envelope::open::<Fame>(&nurse, b"", &sealed),
        Err(Error::PolicyNotSatisfied)
    ));
}

#[test]
fn secrets_are_redacted_in_debug() {
    let (_, msk, key, _) = fixture::<Fame>("role:doctor");
    let text = format!("{msk:?} {key:?}");
    assert!(!text.contains("0x"), "{text}");
    let mut rng = ChaCha20Rng::seed_from_u64(10);
    let (pk, _) = Fame::setup(&mut rng);
    let (kem, _) = Fame::encapsulate(&pk, &"a".parse().unwrap(), &mut rng).unwrap();
    assert_eq!(format!("{kem:?}"), "KemKey { .. }");
}

/// A point that is on the curve but outside the prime-order subgroup is rejected.
#[test]
fn wrong_subgroup_points_are_rejected() {
    // Find an x whose compressed encoding is on E(Fp) but not in G1 (most are: the
    // cofactor is ~2^126).
    let mut bad_point = None;
    for x in 1u8..=255 {
        let mut enc = [0u8; 48];
        enc[0] = 0x80; // compressed flag
        enc[47] = x;
        let unchecked: Option<blstrs::G1Affine> =
            blstrs::G1Affine::from_compressed_unchecked(&enc).into();
        let checked: Option<blstrs::G1Affine> = blstrs::G1Affine::from_compressed(&enc).into();
        if unchecked.is_some() && checked.is_none() {
            bad_point = Some(enc);
            break;
        }
    }
    let bad_point = bad_point.expect("an on-curve point outside the subgroup");
    let (_, _, _, ct) = fixture::<Fame>("role:doctor");
    let bytes = ct.to_bytes();
    // The first row point sits right after the policy, ct0 and the row count.
    let policy_len = u32::from_be_bytes(bytes[8..12].try_into().unwrap()) as usize;
    let row0 = 8 + 4 + policy_len + 3 * 96 + 4;
    let mut bad = bytes.clone();
    bad[row0..row0 + 48].copy_from_slice(&bad_point);
    assert!(matches!(
        <Fame as Scheme>::Ciphertext::from_bytes(&bad),
        Err(Error::Decode(medseal_abe::DecodeError::InvalidPoint(_)))
    ));
}

/// Counts larger than the input are rejected before allocation.
#[test]
fn oversized_counts_are_rejected_before_allocation() {
    let (_, _, key, _) = fixture::<Fame>("role:doctor");
    let mut bytes = key.to_bytes();
    bytes[8..12].copy_from_slice(&u32::MAX.to_be_bytes());
    assert!(matches!(
        <Fame as Scheme>::UserKey::from_bytes(&bytes),
        Err(Error::Decode(medseal_abe::DecodeError::TooLarge { .. }))
    ));
    bytes[8..12].copy_from_slice(&1000u32.to_be_bytes());
    assert!(<Fame as Scheme>::UserKey::from_bytes(&bytes).is_err());
}

/// serde is a layer over the canonical bytes: JSON carries base64 of exactly those bytes,
/// and deserializing runs the checked decoder.
#[test]
fn serde_is_a_thin_layer_over_the_canonical_encoding() {
    let (pk, _, key, ct) = fixture::<Fame>("role:doctor and dept:cardiology");
    let json = serde_json::to_string(&ct).unwrap();
    let back: <Fame as Scheme>::Ciphertext = serde_json::from_str(&json).unwrap();
    assert_eq!(back.to_bytes(), ct.to_bytes());
    let key_json = serde_json::to_string(&key).unwrap();
    let key_back: <Fame as Scheme>::UserKey = serde_json::from_str(&key_json).unwrap();
    assert_eq!(key_back.to_bytes(), key.to_bytes());
    let pk_json = serde_json::to_value(&pk).unwrap();
    assert!(pk_json.is_string());
    // A corrupted payload is rejected by the decoder, not accepted by serde.
    let mut bad = json.clone();
    bad.replace_range(20..24, "AAAA");
    assert!(serde_json::from_str::<<Fame as Scheme>::Ciphertext>(&bad).is_err());
}

fn keygen_refuses_foreign_master_key<S: Scheme>() {
    let mut rng = ChaCha20Rng::seed_from_u64(12);
    let (pk1, msk1) = S::setup(&mut rng);
    let (pk2, msk2) = S::setup(&mut rng);
    let attrs = AttributeSet::parse(["role:doctor"]).unwrap();
    for (pk, msk) in [(&pk1, &msk2), (&pk2, &msk1)] {
        assert!(matches!(
            S::keygen(pk, msk, &attrs, &mut rng),
            Err(Error::MasterKeyMismatch)
        ));
        // The same check on its own, for keys loaded from storage.
        assert!(matches!(
            S::check_master_key(pk, msk),
            Err(Error::MasterKeyMismatch)
        ));
    }
    for (pk, msk) in [(&pk1, &msk1), (&pk2, &msk2)] {
        S::check_master_key(pk, msk).unwrap();
        let key = S::keygen(pk, msk, &attrs, &mut rng).unwrap();
        let (kem, ct) = S::encapsulate(pk, &"role:doctor".parse().unwrap(), &mut rng).unwrap();
        assert_eq!(S::decapsulate(&key, &ct).unwrap(), kem);
    }
}

#[test]
fn fame_keygen_refuses_foreign_master_key() {
    keygen_refuses_foreign_master_key::<Fame>();
}

#[test]
fn bsw07_keygen_refuses_foreign_master_key() {
    keygen_refuses_foreign_master_key::<Bsw07>();
}
