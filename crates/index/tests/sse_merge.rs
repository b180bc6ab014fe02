//! Logarithmic merging of a partition's shards: through any sequence of batches, merges,
//! major compactions, reopenings of the owner's state and epoch rotations, search (fast and verified)
//! equals a plaintext reference; the number of live shards and the size of a proof stay
//! within their logarithmic bounds; a host presenting superseded shards is caught. The
//! persistent host (`DiskHost`) follows every step and gives the very same answers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use medseal_index::sse::{
    DiskHost, IndexHost, KeywordKey, OwnerPartition, Padding, Partition, Shard,
};
use medseal_index::{Keyword, RecordRef};
use proptest::prelude::*;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use std::collections::{BTreeMap, BTreeSet};

fn record(i: u32) -> RecordRef {
    let mut b = [0x5A; 32];
    b[..4].copy_from_slice(&i.to_be_bytes());
    RecordRef::new(b).unwrap()
}

fn keywords(n: usize) -> Vec<Keyword> {
    (0..n)
        .map(|i| Keyword::term(&format!("kw{i}")).unwrap())
        .collect()
}

/// An owner and its host, merging as an owner following `merge_span` does; `disk`
/// follows the live shards as a searcher's cache does.
struct Partitioned {
    owner: OwnerPartition,
    host: IndexHost,
    disk: DiskHost,
}

impl Partitioned {
    fn new(epoch: u64, seed: u64, padding: Padding) -> Self {
        let partition = Partition::new(b"owner", "role:doctor".parse().unwrap(), epoch).unwrap();
        let owner = OwnerPartition::create(partition, &mut ChaCha20Rng::seed_from_u64(seed))
            .with_padding(padding);
        Self::with_owner(owner)
    }

    fn with_owner(owner: OwnerPartition) -> Self {
        Self {
            owner,
            host: IndexHost::new(),
            disk: DiskHost::in_memory().unwrap(),
        }
    }

    /// Brings the disk host to the in-memory host's live shards.
    fn sync_disk(&self, new: &Shard) {
        let id = self.owner.id();
        self.disk
            .update(id, &self.host.roots(id), std::slice::from_ref(new))
            .unwrap();
    }

    /// One batch, then the merge the owner's rule asks for; returns the shards the merge
    /// superseded (empty if none).
    fn put(&mut self, pairs: Vec<(&Keyword, RecordRef)>, merge: bool) -> Vec<Shard> {
        let shard = self.owner.batch(pairs).unwrap();
        let span = self.owner.merge_span();
        let id = *self.owner.id();
        if !merge || span <= 1 {
            self.host.insert_shard(shard.clone()).unwrap();
            self.sync_disk(&shard);
            return Vec::new();
        }
        let live = self.host.shards(&id);
        let keep = live.len() + 1 - span;
        let superseded: Vec<Shard> = live[keep..].to_vec();
        let mut inputs: Vec<&Shard> = superseded.iter().collect();
        inputs.push(&shard);
        let merged = Shard::merge(&inputs).unwrap();
        self.owner.record_merge(span, &merged).unwrap();
        self.host.truncate(&id, keep);
        self.host.insert_shard(merged.clone()).unwrap();
        self.sync_disk(&merged);
        // Superseded shards are dropped (unless the merge reproduced one: merging with
        // empty shards, which all have the same root).
        let live = self.host.roots(&id);
        let gone: Vec<_> = superseded
            .iter()
            .map(Shard::root)
            .filter(|r| !live.contains(r))
            .collect();
        assert_eq!(
            self.disk.missing(&gone).unwrap(),
            gone,
            "superseded shards dropped"
        );
        superseded
    }

    /// A major compaction as `medseal::Vault::compact_index` does it: an empty batch
    /// merged with every live shard into one.
    fn compact(&mut self) {
        let id = *self.owner.id();
        let live: Vec<Shard> = self.host.shards(&id).to_vec();
        if live.len() <= 1 {
            return;
        }
        let before = self.owner.next_shard_seq();
        let empty = self
            .owner
            .batch(Vec::<(&Keyword, RecordRef)>::new())
            .unwrap();
        assert!(empty.is_empty());
        let mut inputs: Vec<&Shard> = live.iter().collect();
        inputs.push(&empty);
        let merged = Shard::merge(&inputs).unwrap();
        self.owner.record_merge(live.len() + 1, &merged).unwrap();
        self.host.truncate(&id, 0);
        self.host.insert_shard(merged.clone()).unwrap();
        self.sync_disk(&merged);
        let after = self.owner.live_shards();
        assert_eq!(after.len(), 1);
        assert_eq!((after[0].first, after[0].last), (0, before));
    }

    fn check(&self, reference: &BTreeMap<usize, BTreeSet<RecordRef>>, kws: &[Keyword]) {
        let id = self.owner.id();
        let roots = self.host.roots(id);
        for (i, kw) in kws.iter().enumerate() {
            let kk = KeywordKey::derive(id, self.owner.key(), kw);
            let expected = reference.get(&i).cloned().unwrap_or_default();
            let fast = kk.decrypt(&self.host.search(&kk.token()));
            assert_eq!(fast.len(), expected.len(), "duplicates or misses");
            assert_eq!(fast.into_iter().collect::<BTreeSet<_>>(), expected);
            let answer = self.host.prove(&kk.token());
            let verified = kk.verify(&roots, &answer).unwrap();
            assert_eq!(verified.into_iter().collect::<BTreeSet<_>>(), expected);
            assert_eq!(self.disk.prove(&kk.token(), &roots).unwrap(), answer);
        }
    }
}

/// `floor(log2(x)) + 1` for `x ≥ 1`.
fn log_bound(x: u64) -> usize {
    (u64::BITS - x.max(1).leading_zeros()) as usize
}

#[derive(Debug, Clone)]
enum Step {
    /// A batch: per record, keyword indices.
    Batch(Vec<BTreeSet<usize>>),
    /// Save and restore the owner's state.
    Reopen,
    /// Start the next epoch (a new partition with a new key and host table).
    Rotate,
    /// Merge every live shard into one (a major compaction).
    Compact,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        8 => prop::collection::vec(prop::collection::btree_set(0..6usize, 0..4), 0..6)
            .prop_map(Step::Batch),
        1 => Just(Step::Reopen),
        1 => Just(Step::Rotate),
        1 => Just(Step::Compact),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn merged_search_matches_reference(
        seed in any::<u64>(),
        steps in prop::collection::vec(step(), 1..40),
        padding in 0u8..3,
        merge in any::<bool>(),
    ) {
        let kws = keywords(6);
        let padding = match padding {
            0 => Padding::None,
            1 => Padding::Multiple(3),
            _ => Padding::PowerOfTwo,
        };
        let mut epoch = 0;
        let mut p = Partitioned::new(epoch, seed, padding);
        let mut reference: BTreeMap<usize, BTreeSet<RecordRef>> = BTreeMap::new();
        let mut next = 0u32;
        for step in steps {
            match step {
                Step::Batch(records) => {
                    let mut pairs = Vec::new();
                    for set in records {
                        next += 1;
                        for k in set {
                            pairs.push((&kws[k], record(next)));
                            reference.entry(k).or_default().insert(record(next));
                        }
                    }
                    p.put(pairs, merge);
                }
                Step::Reopen => {
                    let saved = p.owner.to_bytes();
                    p.owner = OwnerPartition::from_bytes(&saved).unwrap();
                    prop_assert_eq!(p.owner.to_bytes(), saved);
                }
                Step::Rotate => {
                    epoch += 1;
                    let owner = p.owner.rotate("role:doctor".parse().unwrap(), &mut ChaCha20Rng::seed_from_u64(seed ^ epoch)).unwrap();
                    p = Partitioned::with_owner(owner);
                    reference.clear();
                }
                Step::Compact => p.compact(),
            }
            let live = p.owner.live_shards();
            prop_assert_eq!(live.len(), p.host.shards(p.owner.id()).len());
            prop_assert_eq!(live.last().map_or(0, |s| s.last + 1), p.owner.next_shard_seq());
            if merge {
                let weight: u64 = live.iter().map(|s| s.entries + 1).sum();
                prop_assert!(live.len() <= log_bound(weight), "{} live shards for weight {weight}", live.len());
                prop_assert!(live.windows(2).all(|w| w[0].entries + 1 > 2 * (w[1].entries + 1)));
            }
            p.check(&reference, &kws);
        }
    }
}

/// At CI size: 2,000 single-record batches of 1–6 keywords. The live shards stay within
/// `log2(weight) + 1` after every batch, and a verified answer's proof has at most
/// `(results + 2 · shards) · ceil(log2(largest shard))` hashes.
#[test]
fn shards_and_proofs_stay_logarithmic() {
    let kws = keywords(40);
    let mut p = Partitioned::new(0, 9, Padding::None);
    let mut reference: BTreeMap<usize, BTreeSet<RecordRef>> = BTreeMap::new();
    let mut max_live = 0;
    let mut rewritten = 0u64;
    for n in 0..2_000u32 {
        let count = 1 + (n as usize * 7) % 6;
        let picked: Vec<usize> = (0..count).map(|j| (n as usize * 13 + j * 7) % 40).collect();
        let mut pairs = Vec::new();
        for &k in &picked {
            if reference.entry(k).or_default().insert(record(n)) {
                pairs.push((&kws[k], record(n)));
            }
        }
        let superseded = p.put(pairs, true);
        rewritten += superseded.iter().map(|s| s.len() as u64).sum::<u64>();
        let live = p.owner.live_shards();
        let weight: u64 = live.iter().map(|s| s.entries + 1).sum();
        assert!(live.len() <= log_bound(weight));
        max_live = max_live.max(live.len());
    }
    let total: u64 = p.owner.live_shards().iter().map(|s| s.entries).sum();
    // Every entry was rewritten O(log N) times: each time into a shard at least 1.5×
    // larger, so at most log_1.5(N) + 1 ≈ 1.71 log2 N + 1 times.
    let per_entry = rewritten as f64 / total as f64;
    assert!(
        per_entry <= 1.71 * (total as f64).log2() + 1.0,
        "{per_entry:.1} rewrites per entry"
    );
    assert!(max_live <= log_bound(total + 2_000));
    p.check(&reference, &kws);

    let id = p.owner.id();
    let shards = p.host.shards(id);
    let depth = shards
        .iter()
        .map(|s| (s.len().max(1) as u64).next_power_of_two().trailing_zeros() as usize)
        .max()
        .unwrap();
    for kw in &kws {
        let kk = KeywordKey::derive(id, p.owner.key(), kw);
        let answer = p.host.prove(&kk.token());
        let hashes: usize = answer.results.iter().map(|r| r.path.len()).sum::<usize>()
            + answer
                .absent
                .iter()
                .flat_map(|a| [&a.left, &a.right])
                .flatten()
                .map(|n| n.path.len())
                .sum::<usize>();
        assert_eq!(answer.absent.len(), shards.len());
        assert!(hashes <= (answer.results.len() + 2 * shards.len()) * depth);
    }
}

/// A host that keeps serving the shards a merge superseded (and the roots anchored for
/// them) is caught: the searcher checks against the live roots only.
#[test]
fn superseded_shards_are_caught() {
    let kws = keywords(3);
    let mut p = Partitioned::new(0, 3, Padding::None);
    let mut stale = IndexHost::new();
    let mut caught = 0;
    for n in 0..40u32 {
        let pairs = vec![
            (&kws[0], record(n)),
            (&kws[(n % 2 + 1) as usize], record(n)),
        ];
        let shard = p.owner.batch(pairs).unwrap();
        // The stale host stores every batch as its own shard and never merges.
        stale.insert_shard(shard.clone()).unwrap();
        let span = p.owner.merge_span();
        let id = *p.owner.id();
        if span > 1 {
            let keep = p.host.shards(&id).len() + 1 - span;
            let old: Vec<Shard> = p.host.shards(&id)[keep..].to_vec();
            let mut inputs: Vec<&Shard> = old.iter().collect();
            inputs.push(&shard);
            let merged = Shard::merge(&inputs).unwrap();
            p.owner.record_merge(span, &merged).unwrap();
            p.host.truncate(&id, keep);
            p.host.insert_shard(merged).unwrap();
        } else {
            p.host.insert_shard(shard).unwrap();
        }
        let live_roots = p.host.roots(&id);
        let kk = KeywordKey::derive(&id, p.owner.key(), &kws[0]);
        assert_eq!(
            kk.verify(&live_roots, &p.host.prove(&kk.token()))
                .unwrap()
                .len(),
            n as usize + 1
        );
        if stale.roots(&id) != live_roots {
            // Same results, but proved against superseded shards.
            let err = kk
                .verify(&live_roots, &stale.prove(&kk.token()))
                .unwrap_err();
            assert!(
                matches!(err, medseal_index::Error::Verification(_)),
                "{err}"
            );
            caught += 1;
        }
    }
    assert!(caught > 30);
    // record_merge refuses a shard that does not hold exactly the merged entries.
    let shard = p.owner.batch(vec![(&kws[0], record(999))]).unwrap();
    let span = p.owner.merge_span().max(2);
    assert!(p.owner.record_merge(span, &shard).is_err());
    assert!(p.owner.record_merge(0, &shard).is_err());
    assert!(p.owner.record_merge(1_000, &shard).is_err());
}
