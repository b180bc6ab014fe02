//! Attack tests that bypass the scheme's own satisfaction check: collusion and
//! trapdoors assembled from several users' components must not match.

use super::search::test;
use super::trapdoor::Trapdoor;
use super::{Abks, AbksIndex};
use crate::{Keyword, RecordRef};
use medseal_abe::AttributeSet;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

#[test]
fn colluding_users_cannot_pool_attributes() {
    let mut rng = ChaCha20Rng::seed_from_u64(1);
    let (pk, msk) = Abks::setup(&mut rng);
    let kw = Keyword::icd10("I10").unwrap();
    let entry = Abks::index(&pk, &"attr:a and attr:b".parse().unwrap(), &kw, &mut rng).unwrap();
    let alice = Abks::keygen(&msk, &AttributeSet::parse(["attr:a"]).unwrap(), &mut rng);
    let bob = Abks::keygen(&msk, &AttributeSet::parse(["attr:b"]).unwrap(), &mut rng);
    let both = Abks::keygen(
        &msk,
        &AttributeSet::parse(["attr:a", "attr:b"]).unwrap(),
        &mut rng,
    );
    let ta = Abks::trapdoor(&pk, &alice, &kw, &mut rng).unwrap();
    let tb = Abks::trapdoor(&pk, &bob, &kw, &mut rng).unwrap();
    assert!(!test(&entry, &ta) && !test(&entry, &tb));
    assert!(test(
        &entry,
        &Abks::trapdoor(&pk, &both, &kw, &mut rng).unwrap()
    ));
    // Pool: Alice's trapdoor plus Bob's component for attr:b (Bob's r and s differ).
    let mut pooled: Trapdoor = ta.clone();
    pooled
        .components
        .extend(tb.components.iter().map(|(k, v)| (k.clone(), *v)));
    assert!(!test(&entry, &pooled), "collusion succeeded");
    // Pool with Bob's tok1..tok3 instead.
    let mut pooled = tb.clone();
    pooled
        .components
        .extend(ta.components.iter().map(|(k, v)| (k.clone(), *v)));
    assert!(!test(&entry, &pooled), "collusion succeeded");
    // A component relabelled to an attribute the user lacks does not help either.
    let mut relabelled = ta.clone();
    let a = relabelled.components.get("attr:a").copied().unwrap();
    relabelled.components.insert("attr:b".into(), a);
    assert!(!test(&entry, &relabelled));
}

#[test]
fn scan_skips_unsatisfied_entries_without_error() {
    let mut rng = ChaCha20Rng::seed_from_u64(2);
    let (pk, msk) = Abks::setup(&mut rng);
    let kw = Keyword::term("asthma").unwrap();
    let key = Abks::keygen(&msk, &AttributeSet::parse(["attr:a"]).unwrap(), &mut rng);
    let mut index = AbksIndex::new();
    for (i, p) in ["attr:a", "attr:b", "attr:a or attr:b"].iter().enumerate() {
        let entry = Abks::index(&pk, &p.parse().unwrap(), &kw, &mut rng).unwrap();
        index.push(RecordRef::new([i as u8 + 1; 32]).unwrap(), entry);
    }
    let t = Abks::trapdoor(&pk, &key, &kw, &mut rng).unwrap();
    let expected = vec![
        RecordRef::new([1; 32]).unwrap(),
        RecordRef::new([3; 32]).unwrap(),
    ];
    assert_eq!(index.search(&t), expected);
    assert_eq!(index.len(), 3);
}
