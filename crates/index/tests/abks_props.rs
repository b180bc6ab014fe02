//! ABKS correctness: an entry is found iff the keyword matches AND the trapdoor's
//! attributes satisfy the entry's policy, for random small policies, attribute sets and
//! keywords; and the parallel scan returns exactly those records.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{UNIVERSE, attrs, tree};
use medseal_abe::{AttributeSet, Policy};
use medseal_index::abks::{Abks, AbksIndex};
use medseal_index::{Keyword, RecordRef};
use proptest::prelude::*;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

const KEYWORDS: &[&str] = &["icd10:I10", "icd10:E11.9", "term:asthma", "term:ASTHMA"];

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn found_iff_keyword_matches_and_policy_satisfied(
        seed in any::<u64>(),
        entries in prop::collection::vec((tree(), 0..KEYWORDS.len()), 1..4),
        held in prop::collection::vec(any::<bool>(), UNIVERSE),
        wanted in 0..KEYWORDS.len(),
    ) {
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        let (pk, msk) = Abks::setup(&mut rng);
        let key = Abks::keygen(&msk, &AttributeSet::parse(attrs(&held)).unwrap(), &mut rng);
        let kw = |i: usize| Keyword::parse(KEYWORDS[i]).unwrap();
        let trapdoor = Abks::trapdoor(&pk, &key, &kw(wanted), &mut rng).unwrap();
        let mut index = AbksIndex::new();
        let mut expected = Vec::new();
        for (i, (t, k)) in entries.iter().enumerate() {
            let policy: Policy = t.text().parse().unwrap();
            let entry = Abks::index(&pk, &policy, &kw(*k), &mut rng).unwrap();
            let should = t.satisfied(&held) && kw(*k) == kw(wanted);
            prop_assert_eq!(Abks::test(&entry, &trapdoor), should, "policy {}", t.text());
            let r = RecordRef::new([i as u8 + 1; 32]).unwrap();
            if should {
                expected.push(r);
            }
            index.push(r, entry);
        }
        prop_assert_eq!(index.search(&trapdoor), expected.clone());
        prop_assert_eq!(index.search_sequential(&trapdoor), expected);
    }
}
