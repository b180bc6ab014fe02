//! Integrity and lifecycle of the SSE index: a cheating host is caught (dropped, added,
//! altered, reordered results; forged or missing non-membership proofs; shards left
//! out), a repeated label is refused, compaction keeps results, epochs give forward
//! privacy, padding hides exact volumes, capsules are bound to their partition.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use medseal_abe::{AttributeSet, Fame, Policy, Scheme};
use medseal_index::sse::proof::{AbsenceProof, MemberProof};
use medseal_index::sse::{
    Capsule, IndexHost, KeywordKey, Label, OwnerPartition, Padding, Partition, SearchToken, Shard,
    ShardRoot,
};
use medseal_index::{Error, Keyword, RecordRef, VerifyError};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

fn record(i: u32) -> RecordRef {
    let mut b = [0xAB; 32];
    b[..4].copy_from_slice(&i.to_be_bytes());
    RecordRef::new(b).unwrap()
}

fn owner(epoch: u64, seed: u64) -> OwnerPartition {
    let partition = Partition::new(b"owner", "role:doctor".parse().unwrap(), epoch).unwrap();
    OwnerPartition::create(partition, &mut ChaCha20Rng::seed_from_u64(seed))
}

/// A host with three shards; `asthma` has 5 results spread over them, `i10` 2; many
/// other keywords fill the shards so that neighbours exist on both sides.
fn setup() -> (IndexHost, OwnerPartition, Vec<ShardRoot>, Keyword) {
    let mut o = owner(0, 1);
    let asthma = Keyword::term("asthma").unwrap();
    let i10 = Keyword::icd10("I10").unwrap();
    let filler: Vec<Keyword> = (0..40)
        .map(|i| Keyword::term(&format!("f{i}")).unwrap())
        .collect();
    let mut host = IndexHost::new();
    let mut roots = Vec::new();
    for (b, range) in [(0u32, 0..2u32), (1, 2..4), (2, 4..5)] {
        let mut pairs: Vec<(&Keyword, RecordRef)> = range.map(|i| (&asthma, record(i))).collect();
        pairs.extend(filler.iter().map(|k| (k, record(100 + b))));
        if b == 1 {
            pairs.push((&i10, record(50)));
            pairs.push((&i10, record(51)));
        }
        roots.push(host.insert_shard(o.batch(pairs).unwrap()).unwrap());
    }
    (host, o, roots, asthma)
}

fn key_of(o: &OwnerPartition, kw: &Keyword) -> KeywordKey {
    KeywordKey::derive(o.id(), o.key(), kw)
}

#[test]
fn honest_answer_verifies() {
    let (host, o, roots, asthma) = setup();
    let kk = key_of(&o, &asthma);
    let answer = host.prove(&kk.token());
    let got = kk.verify(&roots, &answer).unwrap();
    assert_eq!(got, (0..5).map(record).collect::<Vec<_>>());
    assert_eq!(kk.decrypt(&host.search(&kk.token())), got);
    // A keyword with no entries: empty and proven absent.
    let none = key_of(&o, &Keyword::term("nothing").unwrap());
    assert!(
        none.verify(&roots, &host.prove(&none.token()))
            .unwrap()
            .is_empty()
    );
}

fn rejected(
    kk: &KeywordKey,
    roots: &[ShardRoot],
    answer: &medseal_index::sse::VerifiableAnswer,
) -> VerifyError {
    match kk.verify(roots, answer) {
        Err(Error::Verification(e)) => e,
        other => panic!("a cheating answer was accepted: {other:?}"),
    }
}

#[test]
fn dropped_result_is_caught() {
    let (host, o, roots, asthma) = setup();
    let kk = key_of(&o, &asthma);
    let honest = host.prove(&kk.token());
    // Drop the last result and reuse the honest absence proofs.
    let mut a = honest.clone();
    a.results.pop();
    assert!(matches!(
        rejected(&kk, &roots, &a),
        VerifyError::NonMembership(_)
    ));
    // Drop the first result instead: every later proof is for the wrong counter.
    let mut a = honest.clone();
    a.results.remove(0);
    assert!(matches!(
        rejected(&kk, &roots, &a),
        VerifyError::Membership(0)
    ));
    // Return nothing at all, claiming every shard is empty of the first label.
    let empty = medseal_index::sse::VerifiableAnswer {
        results: Vec::new(),
        absent: honest.absent.clone(),
        sizes: honest.sizes.clone(),
    };
    assert!(matches!(
        rejected(&kk, &roots, &empty),
        VerifyError::NonMembership(_)
    ));
}

#[test]
fn added_altered_reordered_results_are_caught() {
    let (host, o, roots, asthma) = setup();
    let kk = key_of(&o, &asthma);
    let honest = host.prove(&kk.token());
    // Add: a fabricated sixth result.
    let mut a = honest.clone();
    let mut fake = a.results[0].clone();
    fake.value[0] ^= 1;
    a.results.push(fake);
    assert!(matches!(
        rejected(&kk, &roots, &a),
        VerifyError::Membership(5)
    ));
    // Add: an entry of another keyword (a real leaf) as a sixth result.
    let i10 = key_of(&o, &Keyword::icd10("I10").unwrap());
    let foreign = host.prove(&i10.token()).results[0].clone();
    let mut a = honest.clone();
    a.results.push(foreign);
    assert!(matches!(
        rejected(&kk, &roots, &a),
        VerifyError::Membership(5)
    ));
    // Alter a value.
    let mut a = honest.clone();
    a.results[2].value[31] ^= 0x80;
    assert!(matches!(
        rejected(&kk, &roots, &a),
        VerifyError::Membership(2)
    ));
    // Alter a path.
    let mut a = honest.clone();
    a.results[1].path[0][0] ^= 1;
    assert!(matches!(
        rejected(&kk, &roots, &a),
        VerifyError::Membership(1)
    ));
    // Reorder.
    let mut a = honest.clone();
    a.results.swap(0, 1);
    assert!(matches!(
        rejected(&kk, &roots, &a),
        VerifyError::Membership(0)
    ));
    // Lie about a shard size.
    let mut a = honest.clone();
    a.sizes[0] += 1;
    assert!(matches!(
        rejected(&kk, &roots, &a),
        VerifyError::Membership(_) | VerifyError::NonMembership(_)
    ));
}

/// The honest absence proof of `label` in `shard`, built from public shard data.
fn absence(shard: &Shard, label: &Label) -> AbsenceProof {
    let pos = shard.entries().partition_point(|e| e.label() < label);
    AbsenceProof {
        left: pos.checked_sub(1).and_then(|i| shard.leaf_proof(i)),
        right: shard.leaf_proof(pos),
    }
}

#[test]
fn forged_absence_proofs_are_caught() {
    let (host, o, roots, asthma) = setup();
    let kk = key_of(&o, &asthma);
    let honest = host.prove(&kk.token());
    let shards = host.shards(o.id());
    // The host drops the last result and must prove its label absent everywhere: honest
    // proofs where it is absent, a forgery in the shard that holds it.
    let last: MemberProof = honest.results.last().unwrap().clone();
    let (s, i) = (last.shard as usize, last.index as usize);
    let label = *shards[s].entries()[i].label();
    let mut base = honest.clone();
    base.results.pop();
    for (t, shard) in shards.iter().enumerate() {
        base.absent[t] = absence(shard, &label);
    }
    let n = shards[s].len();
    let mut forgeries = Vec::new();
    // Neighbours straddling the leaf (not adjacent).
    if i > 0 && i + 1 < n {
        forgeries.push(AbsenceProof {
            left: shards[s].leaf_proof(i - 1),
            right: shards[s].leaf_proof(i + 1),
        });
    }
    // The leaf itself as a neighbour, on either side.
    forgeries.push(AbsenceProof {
        left: i.checked_sub(1).and_then(|j| shards[s].leaf_proof(j)),
        right: shards[s].leaf_proof(i),
    });
    forgeries.push(AbsenceProof {
        left: shards[s].leaf_proof(i),
        right: shards[s].leaf_proof(i + 1),
    });
    // Only one neighbour, pretending the label is past an end.
    forgeries.push(AbsenceProof {
        left: i.checked_sub(1).and_then(|j| shards[s].leaf_proof(j)),
        right: None,
    });
    forgeries.push(AbsenceProof {
        left: None,
        right: shards[s].leaf_proof(i + 1),
    });
    // Nothing: claiming an empty shard.
    forgeries.push(AbsenceProof {
        left: None,
        right: None,
    });
    for forged in forgeries {
        let mut a = base.clone();
        a.absent[s] = forged;
        assert_eq!(rejected(&kk, &roots, &a), VerifyError::NonMembership(s));
    }
}

#[test]
fn shard_set_must_match_the_anchors() {
    let (host, o, roots, asthma) = setup();
    let kk = key_of(&o, &asthma);
    let honest = host.prove(&kk.token());
    // The host leaves out the last shard (and its result).
    let mut a = honest.clone();
    a.absent.pop();
    a.sizes.pop();
    a.results.retain(|r| r.shard != 2);
    assert_eq!(rejected(&kk, &roots, &a), VerifyError::ShardSet);
    // The user only knows two of the three anchors: the honest answer does not fit.
    assert_eq!(rejected(&kk, &roots[..2], &honest), VerifyError::ShardSet);
    // Anchors in another order.
    let swapped = [roots[1], roots[0], roots[2]];
    assert!(kk.verify(&swapped, &honest).is_err());
    // Roots of another partition.
    let (host2, o2, roots2, _) = {
        let mut o2 = owner(0, 2);
        let mut h = IndexHost::new();
        let r = h
            .insert_shard(o2.batch([(&asthma, record(9))]).unwrap())
            .unwrap();
        (h, o2, vec![r], ())
    };
    let kk2 = key_of(&o2, &asthma);
    assert!(kk.verify(&roots2, &host2.prove(&kk2.token())).is_err());
}

#[test]
fn compaction_keeps_results_and_is_deterministic() {
    let (mut host, o, roots, asthma) = setup();
    let kk = key_of(&o, &asthma);
    let before = kk.verify(&roots, &host.prove(&kk.token())).unwrap();
    let shards: Vec<_> = host.shards(o.id()).to_vec();
    let root = host.compact(o.id()).unwrap();
    assert_eq!(host.shards(o.id()).len(), 1);
    assert_eq!(host.roots(o.id()), vec![root]);
    // Anyone with the inputs recomputes the same compacted root.
    let recomputed = medseal_index::sse::Shard::merge(&shards.iter().collect::<Vec<_>>()).unwrap();
    assert_eq!(recomputed.root(), root);
    let after = kk.verify(&[root], &host.prove(&kk.token())).unwrap();
    assert_eq!(before, after);
    assert_eq!(kk.decrypt(&host.search(&kk.token())), after);
    // Old anchors no longer describe the host's shards.
    assert!(kk.verify(&roots, &host.prove(&kk.token())).is_err());
}

#[test]
fn epochs_give_forward_privacy() {
    let mut rng = ChaCha20Rng::seed_from_u64(7);
    let asthma = Keyword::term("asthma").unwrap();
    let mut e0 = owner(0, 3);
    let mut host = IndexHost::new();
    host.insert_shard(e0.batch([(&asthma, record(1))]).unwrap())
        .unwrap();
    let old = key_of(&e0, &asthma);
    let mut e1 = e0.rotate("role:doctor".parse().unwrap(), &mut rng).unwrap();
    assert_eq!(e1.partition().epoch(), 1);
    assert_ne!(e1.id(), e0.id());
    assert_ne!(e1.key(), e0.key());
    host.insert_shard(e1.batch([(&asthma, record(2))]).unwrap())
        .unwrap();
    // The old token finds only the old entry, also when retargeted at the new partition.
    assert_eq!(old.decrypt(&host.search(&old.token())), vec![record(1)]);
    let mut bytes = old.token().to_bytes();
    bytes[6..38].copy_from_slice(e1.id().as_bytes());
    let retargeted = SearchToken::from_bytes(&bytes).unwrap();
    assert!(host.search(&retargeted).is_empty());
    // The new epoch's key finds the new entry.
    let new = key_of(&e1, &asthma);
    assert_eq!(new.decrypt(&host.search(&new.token())), vec![record(2)]);
    // Further batches in the old epoch would still be found by the old token (forward
    // privacy holds across epochs only, as documented).
    host.insert_shard(e0.batch([(&asthma, record(3))]).unwrap())
        .unwrap();
    assert_eq!(old.decrypt(&host.search(&old.token())).len(), 2);
}

#[test]
fn padding_hides_exact_volumes() {
    let asthma = Keyword::term("asthma").unwrap();
    let i10 = Keyword::icd10("I10").unwrap();
    for padding in [Padding::Multiple(8), Padding::PowerOfTwo] {
        let mut o = owner(0, 4).with_padding(padding);
        let mut host = IndexHost::new();
        let mut pairs: Vec<(&Keyword, RecordRef)> = (0..3).map(|i| (&asthma, record(i))).collect();
        pairs.push((&i10, record(9)));
        let root = host.insert_shard(o.batch(pairs).unwrap()).unwrap();
        let a = key_of(&o, &asthma);
        let b = key_of(&o, &i10);
        // The host sees padded volumes only...
        let va = host.search(&a.token()).len();
        let vb = host.search(&b.token()).len();
        if padding == Padding::Multiple(8) {
            assert_eq!(
                (va, vb),
                (8, 8),
                "different true volumes should look the same"
            );
        } else {
            assert_eq!((va, vb), (4, 1));
        }
        // ...the user gets the true results, and the dummies verify.
        assert_eq!(a.verify(&[root], &host.prove(&a.token())).unwrap().len(), 3);
        assert_eq!(b.decrypt(&host.search(&b.token())), vec![record(9)]);
        // A second batch continues after the dummies.
        let root2 = host
            .insert_shard(o.batch([(&asthma, record(7))]).unwrap())
            .unwrap();
        let got = a.verify(&[root, root2], &host.prove(&a.token())).unwrap();
        assert_eq!(got, vec![record(0), record(1), record(2), record(7)]);
    }
}

#[test]
fn capsules_are_gated_and_bound_to_their_partition() {
    let mut rng = ChaCha20Rng::seed_from_u64(8);
    let (pk, msk) = Fame::setup(&mut rng);
    let doctor = Fame::keygen(
        &pk,
        &msk,
        &AttributeSet::parse(["role:doctor"]).unwrap(),
        &mut rng,
    )
    .unwrap();
    let nurse = Fame::keygen(
        &pk,
        &msk,
        &AttributeSet::parse(["role:nurse"]).unwrap(),
        &mut rng,
    )
    .unwrap();
    let policy: Policy = "role:doctor".parse().unwrap();
    let pa = Partition::new(b"a", policy.clone(), 0).unwrap();
    let pb = Partition::new(b"b", policy, 0).unwrap();
    let oa = OwnerPartition::create(pa, &mut rng);
    let ob = OwnerPartition::create(pb, &mut rng);
    let ca = Capsule::seal(&pk, oa.partition(), oa.key(), &mut rng).unwrap();
    assert_eq!(&ca.open(&doctor, oa.id()).unwrap(), oa.key());
    assert!(matches!(
        ca.open(&nurse, oa.id()),
        Err(Error::PolicyNotSatisfied)
    ));
    // Presented as the capsule of another partition, it does not open.
    assert!(matches!(ca.open(&doctor, ob.id()), Err(Error::Decryption)));
    // Round trip and tamper.
    let back = medseal_index::sse::Capsule::from_bytes(ca.as_bytes()).unwrap();
    assert_eq!(back, ca);
    assert_eq!(back.policy().unwrap().to_string(), "role:doctor");
    let mut bytes = ca.as_bytes().to_vec();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    let tampered = medseal_index::sse::Capsule::from_bytes(&bytes).unwrap();
    assert!(matches!(
        tampered.open(&doctor, oa.id()),
        Err(Error::Decryption)
    ));
}

#[test]
fn host_rejects_replayed_shards_and_owner_dedupes() {
    let mut o = owner(0, 5);
    let kw = Keyword::term("x").unwrap();
    let shard = o.batch([(&kw, record(1)), (&kw, record(1))]).unwrap();
    assert_eq!(shard.len(), 1);
    let mut host = IndexHost::new();
    host.insert_shard(shard.clone()).unwrap();
    assert!(matches!(
        host.insert_shard(shard),
        Err(Error::ShardConflict(_))
    ));
    assert_eq!(host.entry_count(o.id()), 1);
    assert_eq!(o.count(&kw), 1);
    assert_eq!(o.next_shard_seq(), 1);
}

/// Shard encoding: `"MSIX" | 1 | kind | partition id (32) | count u32`, then entries of
/// `label (16) | value (32)`.
const SHARD_HEADER: usize = 42;
const SHARD_ENTRY: usize = 48;

fn shard_bytes(template: &[u8], entries: &[&[u8]]) -> Vec<u8> {
    let mut sorted = entries.to_vec();
    sorted.sort();
    let mut out = template[..SHARD_HEADER].to_vec();
    out[SHARD_HEADER - 4..].copy_from_slice(&(sorted.len() as u32).to_be_bytes());
    for e in sorted {
        out.extend_from_slice(e);
    }
    out
}

/// Issue 12: a label repeated within one shard never reaches the host's table (the same
/// label twice gives the host the XOR of two record references).
#[test]
fn a_label_repeated_within_a_shard_is_rejected() {
    let mut o = owner(0, 12);
    let kw = Keyword::term("x").unwrap();
    let shard = o.batch([(&kw, record(1)), (&kw, record(2))]).unwrap();
    let bytes = shard.to_bytes();
    let entries: Vec<&[u8]> = bytes[SHARD_HEADER..].chunks(SHARD_ENTRY).collect();
    assert_eq!(entries.len(), 2);
    // The first entry twice, and the first label with another value.
    let mut relabelled = entries[1].to_vec();
    relabelled[..16].copy_from_slice(&entries[0][..16]);
    for forged in [
        shard_bytes(&bytes, &[entries[0], entries[0]]),
        shard_bytes(&bytes, &[entries[0], &relabelled]),
    ] {
        assert!(matches!(
            Shard::from_bytes(&forged),
            Err(Error::Decode(medseal_index::DecodeError::Unsorted(_)))
        ));
    }
    // Merging a shard with itself would repeat every label.
    assert!(matches!(
        Shard::merge(&[&shard, &shard]),
        Err(Error::ShardConflict(_))
    ));
}

/// Issue 12: a shard sharing even one label with an earlier shard of its partition is
/// rejected whole and leaves the host unchanged.
#[test]
fn a_label_repeated_across_shards_is_rejected() {
    let mut o = owner(0, 13);
    let kw = Keyword::term("x").unwrap();
    let other = Keyword::term("y").unwrap();
    let first = o.batch([(&kw, record(1))]).unwrap();
    let second = o.batch([(&other, record(2)), (&other, record(3))]).unwrap();
    let (a, b) = (first.to_bytes(), second.to_bytes());
    let mut host = IndexHost::new();
    let root = host.insert_shard(first).unwrap();
    // `second` plus a copy of the first shard's entry (same label, same value) and, in
    // another forgery, its label with a different value.
    let old = &a[SHARD_HEADER..];
    let mut relabelled = b[SHARD_HEADER..SHARD_HEADER + SHARD_ENTRY].to_vec();
    relabelled[..16].copy_from_slice(&old[..16]);
    let own: Vec<&[u8]> = b[SHARD_HEADER..].chunks(SHARD_ENTRY).collect();
    let with_copy = shard_bytes(&b, &[own[0], own[1], old]);
    let with_relabel = shard_bytes(&b, &[&relabelled, own[1]]);
    for forged in [with_copy, with_relabel] {
        let forged = Shard::from_bytes(&forged).unwrap();
        assert!(matches!(
            host.insert_shard(forged),
            Err(Error::ShardConflict(_))
        ));
        assert_eq!(host.entry_count(o.id()), 1);
        assert_eq!(host.roots(o.id()), vec![root]);
    }
    let token = KeywordKey::derive(o.id(), o.key(), &other).token();
    assert!(host.search(&token).is_empty());
    host.insert_shard(second).unwrap();
    assert_eq!(host.search(&token).len(), 2);
    assert_eq!(host.entry_count(o.id()), 3);
}
