//! Owner partition deltas: a full encoding followed by every delta, in order, restores
//! exactly the live state through any sequence of batches and merges; a delta of size
//! independent of the partition's history; a stale, foreign or malformed delta is refused
//! without changing anything.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use medseal_index::sse::{OwnerPartition, Padding, Partition, Shard};
use medseal_index::{Error, Keyword, RecordRef};
use proptest::prelude::*;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

fn record(i: u32) -> RecordRef {
    let mut b = [0x5A; 32];
    b[..4].copy_from_slice(&i.to_be_bytes());
    RecordRef::new(b).unwrap()
}

fn owner(seed: u64, padding: Padding) -> OwnerPartition {
    let partition = Partition::new(b"owner", "role:doctor".parse().unwrap(), 1).unwrap();
    OwnerPartition::create(partition, &mut ChaCha20Rng::seed_from_u64(seed)).with_padding(padding)
}

/// One batch of `(keyword index, record)` pairs, then the merge the rule asks for (the
/// merged shard rebuilt from the kept shards).
fn step(o: &mut OwnerPartition, shards: &mut Vec<Shard>, kws: &[Keyword], pairs: &[(usize, u32)]) {
    let shard = o
        .batch(pairs.iter().map(|&(k, r)| (&kws[k], record(r))))
        .unwrap();
    shards.push(shard);
    let span = o.merge_span();
    if span > 1 {
        let start = shards.len() - span;
        let merged = Shard::merge(&shards[start..].iter().collect::<Vec<_>>()).unwrap();
        o.record_merge(span, &merged).unwrap();
        shards.truncate(start);
        shards.push(merged);
    }
}

fn padding() -> impl Strategy<Value = Padding> {
    prop_oneof![
        Just(Padding::None),
        Just(Padding::Multiple(3)),
        Just(Padding::PowerOfTwo)
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Base + deltas (taken after every few steps) equals the live state, byte for byte,
    /// whenever a delta has just been taken; each delta is refused a second time only if
    /// it moved something forward.
    #[test]
    fn base_plus_deltas_is_the_live_state(
        padding in padding(),
        base_after in 0usize..4,
        steps in prop::collection::vec(
            (prop::collection::vec((0usize..24, 0u32..1000), 0..12), 1usize..4),
            1..24,
        ),
    ) {
        let kws: Vec<Keyword> = (0..24).map(|i| Keyword::term(&format!("k{i}")).unwrap()).collect();
        let mut live = owner(7, padding);
        let mut shards = Vec::new();
        // The full encoding, then each delta with the sequence number when it was taken.
        type Log = (Vec<u8>, Vec<(Vec<u8>, u64)>);
        let mut base: Option<Log> = None;
        let mut since = 0usize;
        for (i, (pairs, every)) in steps.iter().enumerate() {
            step(&mut live, &mut shards, &kws, pairs);
            since += 1;
            if i == base_after.min(steps.len() - 1) && base.is_none() {
                // A full encoding; the changes before it are in it.
                let _ = live.delta();
                base = Some((live.to_bytes().to_vec(), Vec::new()));
                since = 0;
            } else if since >= *every && let Some((_, deltas)) = base.as_mut() {
                deltas.push((live.delta().to_vec(), live.next_shard_seq()));
                since = 0;
            }
        }
        let (full, mut deltas) = base.unwrap();
        deltas.push((live.delta().to_vec(), live.next_shard_seq()));
        let mut restored = OwnerPartition::from_bytes(&full).unwrap();
        for (d, _) in &deltas {
            restored.apply_delta(d).unwrap();
        }
        prop_assert_eq!(restored.to_bytes(), live.to_bytes());
        prop_assert!(restored.check_successor(&live).is_ok());
        // The newest delta again changes nothing; an older one taken before a batch
        // that followed it is refused (its sequence number is behind), changing nothing.
        let (newest, _) = &deltas[deltas.len() - 1];
        restored.apply_delta(newest).unwrap();
        prop_assert_eq!(restored.to_bytes(), live.to_bytes());
        for (d, seq) in &deltas {
            let r = restored.apply_delta(d);
            if *seq < live.next_shard_seq() {
                prop_assert!(matches!(r, Err(Error::StaleOwnerState)));
            }
            prop_assert_eq!(restored.to_bytes(), live.to_bytes());
        }
    }
}

#[test]
fn deltas_hold_only_the_changed_counters() {
    let kws: Vec<Keyword> = (0..2000)
        .map(|i| Keyword::term(&format!("patient-{i}")).unwrap())
        .collect();
    let mut o = owner(1, Padding::None);
    let mut shards = Vec::new();
    let mut sizes = Vec::new();
    for i in 0..kws.len() {
        step(&mut o, &mut shards, &kws, &[(i, i as u32), (0, i as u32)]);
        sizes.push(o.delta().len());
    }
    // Two counters per delta, and at most log2 live shards: no growth with history.
    let first = sizes[..10].iter().max().copied().unwrap();
    let last = sizes[sizes.len() - 10..].iter().max().copied().unwrap();
    assert!(last <= first + 16 * 12, "delta grew from {first} to {last}");
    assert!(o.to_bytes().len() > 20 * last);
    // Nothing changed: a delta with no counters.
    let empty = o.delta();
    assert!(empty.len() < sizes[sizes.len() - 1]);
    let mut copy = OwnerPartition::from_bytes(&o.to_bytes()).unwrap();
    copy.apply_delta(&empty).unwrap();
    assert_eq!(copy.to_bytes(), o.to_bytes());
}

#[test]
fn stale_foreign_and_malformed_deltas_are_refused() {
    let kws: Vec<Keyword> = (0..4)
        .map(|i| Keyword::term(&format!("k{i}")).unwrap())
        .collect();
    let mut o = owner(3, Padding::None);
    let mut shards = Vec::new();
    step(&mut o, &mut shards, &kws, &[(0, 1), (1, 1)]);
    let first = o.delta();
    step(&mut o, &mut shards, &kws, &[(0, 2)]);
    let second = o.delta();
    let mut current = OwnerPartition::from_bytes(&o.to_bytes()).unwrap();
    let before = current.to_bytes();
    let stale = |r: Result<(), Error>| matches!(r, Err(Error::StaleOwnerState));
    // The first delta has k0's counter (and the shard sequence number) behind.
    assert!(stale(current.apply_delta(&first)));
    assert_eq!(current.to_bytes(), before);
    current.apply_delta(&second).unwrap();
    assert_eq!(current.to_bytes(), before);
    // A delta whose counter was lowered while the sequence number was not.
    let mut lowered = second.to_vec();
    let last = lowered.len() - 1;
    lowered[last] -= 1;
    assert!(stale(current.apply_delta(&lowered)));
    // Another key for the same partition, another epoch.
    let mut other = owner(4, Padding::None);
    assert_eq!(other.id(), current.id());
    assert!(stale(current.apply_delta(&other.delta())));
    let mut next = o
        .rotate(
            "role:doctor".parse().unwrap(),
            &mut ChaCha20Rng::seed_from_u64(5),
        )
        .unwrap();
    assert!(stale(current.apply_delta(&next.delta())));
    // A full encoding is not a delta, nor a delta a full encoding.
    assert!(matches!(
        current.apply_delta(&o.to_bytes()),
        Err(Error::Decode(_))
    ));
    assert!(matches!(
        OwnerPartition::from_bytes(&second),
        Err(Error::Decode(_))
    ));
    for cut in 0..second.len() {
        assert!(current.apply_delta(&second[..cut]).is_err(), "cut {cut}");
    }
    assert_eq!(current.to_bytes(), before);
}
