//! The SSE index against a plaintext reference (`BTreeMap<keyword, BTreeSet<RecordRef>>`):
//! for random records, keywords, policies, batches, padding, compaction and attribute
//! sets, every user's search returns exactly the reference set of every partition it can
//! open (fast path and verified path), and `PolicyNotSatisfied` for the others.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{Tree, UNIVERSE, attrs, tree};
use medseal_abe::{AttributeSet, Fame, Policy, Scheme};
use medseal_index::sse::{Capsule, IndexHost, KeywordKey, OwnerPartition, Padding, Partition};
use medseal_index::{Error, Keyword, RecordRef};
use proptest::prelude::*;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use std::collections::{BTreeMap, BTreeSet};

const KEYWORDS: &[&str] = &[
    "icd10:I10",
    "icd10:E11.9",
    "term:asthma",
    "term:Asthma ", // normalises to the same keyword as the previous one
    "term:fibrosis",
    "term:ﬁbrosis", // NFKC: the same again
    "icd10:J45",
];

#[derive(Debug, Clone)]
struct PartitionCase {
    policy: Tree,
    /// Per record: keyword indices. Records are split into batches at `cuts`.
    records: Vec<BTreeSet<usize>>,
    batches: usize,
    padding: u8,
    compact: bool,
}

fn partition_case() -> impl Strategy<Value = PartitionCase> {
    (
        tree(),
        prop::collection::vec(prop::collection::btree_set(0..KEYWORDS.len(), 0..4), 0..10),
        1usize..4,
        0u8..3,
        any::<bool>(),
    )
        .prop_map(
            |(policy, records, batches, padding, compact)| PartitionCase {
                policy,
                records,
                batches,
                padding,
                compact,
            },
        )
}

fn check(seed: u64, cases: &[PartitionCase], users: &[Vec<bool>]) {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let (pk, msk) = Fame::setup(&mut rng);
    let keywords: Vec<Keyword> = KEYWORDS
        .iter()
        .map(|k| Keyword::parse(k).unwrap())
        .collect();
    let distinct: BTreeSet<Keyword> = keywords.iter().cloned().collect();
    let mut host = IndexHost::new();
    let mut published = Vec::new();
    let mut next_ref = 1u32;
    for (p, case) in cases.iter().enumerate() {
        let policy: Policy = case.policy.text().parse().unwrap();
        let partition = Partition::new(format!("owner-{p}").as_bytes(), policy, 0).unwrap();
        let owner = OwnerPartition::create(partition, &mut rng);
        let capsule = Capsule::seal(&pk, owner.partition(), owner.key(), &mut rng).unwrap();
        let padding = match case.padding {
            0 => Padding::None,
            1 => Padding::Multiple(3),
            _ => Padding::PowerOfTwo,
        };
        let mut owner = owner.with_padding(padding);
        let mut reference: BTreeMap<Keyword, BTreeSet<RecordRef>> = BTreeMap::new();
        let per_batch = case.records.len().div_ceil(case.batches).max(1);
        for chunk in case.records.chunks(per_batch) {
            let mut pairs = Vec::new();
            for kws in chunk {
                let mut bytes = [0u8; 32];
                bytes[..4].copy_from_slice(&next_ref.to_be_bytes());
                next_ref += 1;
                let record = RecordRef::new(bytes).unwrap();
                for &k in kws {
                    pairs.push((&keywords[k], record));
                    reference
                        .entry(keywords[k].clone())
                        .or_default()
                        .insert(record);
                }
            }
            host.insert_shard(owner.batch(pairs).unwrap()).unwrap();
            // The owner persists its state between batches: the restored state is the
            // same state (same bytes) and continues the counters.
            let saved = owner.to_bytes();
            owner = OwnerPartition::from_bytes(&saved).unwrap();
            assert_eq!(owner.to_bytes(), saved);
        }
        if case.compact && !host.shards(owner.id()).is_empty() {
            host.compact(owner.id()).unwrap();
            assert!(host.shards(owner.id()).len() == 1);
        }
        published.push((*owner.id(), capsule, case.policy.clone(), reference));
    }
    for held in users {
        let user_key = Fame::keygen(
            &pk,
            &msk,
            &AttributeSet::parse(attrs(held)).unwrap(),
            &mut rng,
        )
        .unwrap();
        for (id, capsule, policy, reference) in &published {
            match capsule.open(&user_key, id) {
                Ok(k) => {
                    assert!(
                        policy.satisfied(held),
                        "opened without satisfying {}",
                        policy.text()
                    );
                    let roots = host.roots(id);
                    for kw in &distinct {
                        let kk = KeywordKey::derive(id, &k, kw);
                        let expected = reference.get(kw).cloned().unwrap_or_default();
                        let fast: Vec<RecordRef> = kk.decrypt(&host.search(&kk.token()));
                        assert_eq!(fast.len(), expected.len(), "duplicates or misses");
                        assert_eq!(fast.into_iter().collect::<BTreeSet<_>>(), expected);
                        let verified = kk.verify(&roots, &host.prove(&kk.token())).unwrap();
                        assert_eq!(verified.into_iter().collect::<BTreeSet<_>>(), expected);
                    }
                }
                Err(Error::PolicyNotSatisfied) => {
                    assert!(
                        !policy.satisfied(held),
                        "refused a satisfying key for {}",
                        policy.text()
                    )
                }
                Err(e) => panic!("unexpected error {e}"),
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    #[test]
    fn search_matches_reference(
        seed in any::<u64>(),
        cases in prop::collection::vec(partition_case(), 1..4),
        users in prop::collection::vec(prop::collection::vec(any::<bool>(), UNIVERSE), 1..4),
    ) {
        check(seed, &cases, &users);
    }
}

/// A valid owner state with counters and padding, as the mutation base below.
fn owner_state() -> Vec<u8> {
    let partition = Partition::new(b"owner", "role:doctor or role:nurse".parse().unwrap(), 1);
    let mut owner = OwnerPartition::create(partition.unwrap(), &mut ChaCha20Rng::seed_from_u64(1))
        .with_padding(Padding::Multiple(4));
    let keywords: Vec<Keyword> = KEYWORDS
        .iter()
        .map(|k| Keyword::parse(k).unwrap())
        .collect();
    owner
        .batch(
            keywords
                .iter()
                .map(|k| (k, RecordRef::new([9; 32]).unwrap())),
        )
        .unwrap();
    owner.to_bytes().to_vec()
}

proptest! {
    #[test]
    fn owner_state_decoding_is_total_and_canonical(
        bytes in prop::collection::vec(any::<u8>(), 0..200),
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
    ) {
        // Arbitrary bytes, and a valid state with a few bytes changed: decoding never
        // panics, and whatever decodes re-encodes to the same bytes.
        let mut mutated = owner_state();
        for (at, v) in &edits {
            let i = at.index(mutated.len());
            mutated[i] = *v;
        }
        for input in [bytes, mutated] {
            if let Ok(owner) = OwnerPartition::from_bytes(&input) {
                prop_assert_eq!(owner.to_bytes().to_vec(), input);
            }
        }
    }
}
