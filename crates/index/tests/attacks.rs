//! Offline keyword guessing with the ICD-10-CM dictionary: it recovers an ABKS
//! trapdoor's keyword from public data, and has nothing to work with against SSE.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use medseal_abe::{AttributeSet, Fame, Policy, Scheme};
use medseal_index::abks::guessing::KeywordGuesser;
use medseal_index::abks::{Abks, AbksIndex};
use medseal_index::sse::{Capsule, IndexHost, KeywordKey, OwnerPartition, Partition, PartitionKey};
use medseal_index::{Error, Keyword, RecordRef};
use rand_chacha::ChaCha20Rng;
use rand_core::{OsRng, RngCore, SeedableRng};

const SLICE: usize = 2000;

/// A random 2,000-code slice of the dictionary and a random position in it.
fn victim(rng: &mut impl RngCore) -> (Vec<Keyword>, usize) {
    let all = common::icd10_keywords();
    assert!(all.len() > 90_000, "dictionary incomplete: {}", all.len());
    let start = (rng.next_u64() % (all.len() - SLICE) as u64) as usize;
    let pos = (rng.next_u64() % SLICE as u64) as usize;
    (all[start..start + SLICE].to_vec(), pos)
}

#[test]
fn abks_trapdoor_keyword_is_recovered_from_public_data() {
    let seed = OsRng.next_u64();
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let (slice, pos) = victim(&mut rng);
    let (pk, msk) = Abks::setup(&mut rng);
    let doctor = Abks::keygen(
        &msk,
        &AttributeSet::parse(["role:doctor", "dept:cardiology"]).unwrap(),
        &mut rng,
    );
    let secret = &slice[pos];
    let trapdoor = Abks::trapdoor(&pk, &doctor, secret, &mut rng).unwrap();
    // The attacker: public key + the trapdoor, no attributes, no index.
    let guesser = KeywordGuesser::new(&pk, &trapdoor);
    let found = guesser.vartime_recover(&slice);
    assert_eq!(found, Some(secret), "seed {seed}: keyword not recovered");
    // Exactly one candidate passes: no false positives.
    assert_eq!(
        slice.iter().filter(|k| guesser.vartime_test(k)).count(),
        1,
        "seed {seed}"
    );
}

#[test]
fn abks_guessing_through_self_made_index_entries() {
    // The weaker variant: the trapdoor shows its attribute labels; encrypt each guess
    // under a policy made of one of them and run the scheme's own test.
    let mut rng = ChaCha20Rng::seed_from_u64(OsRng.next_u64());
    let (slice, pos) = victim(&mut rng);
    let (pk, msk) = Abks::setup(&mut rng);
    let nurse = Abks::keygen(
        &msk,
        &AttributeSet::parse(["role:nurse"]).unwrap(),
        &mut rng,
    );
    let candidates = &slice[pos.saturating_sub(10)..(pos + 10).min(SLICE)];
    let trapdoor = Abks::trapdoor(&pk, &nurse, &slice[pos], &mut rng).unwrap();
    let label = trapdoor.labels().next().unwrap().to_owned();
    let policy = Policy::attribute(&label).unwrap();
    let mut index = AbksIndex::new();
    for (i, guess) in candidates.iter().enumerate() {
        let mut r = [0u8; 32];
        r[..8].copy_from_slice(&(i as u64 + 1).to_be_bytes());
        index.push(
            RecordRef::new(r).unwrap(),
            Abks::index(&pk, &policy, guess, &mut rng).unwrap(),
        );
    }
    let hits = index.search(&trapdoor);
    assert_eq!(hits.len(), 1);
    let i = u64::from_be_bytes(hits[0].as_bytes()[..8].try_into().unwrap()) as usize - 1;
    assert_eq!(&candidates[i], &slice[pos]);
}

#[test]
fn sse_token_gives_the_same_attacker_nothing() {
    let mut rng = ChaCha20Rng::seed_from_u64(OsRng.next_u64());
    let dictionary = common::icd10_keywords();
    let pos = (rng.next_u64() % dictionary.len() as u64) as usize;
    let secret = &dictionary[pos];
    let (pk, msk) = Fame::setup(&mut rng);
    let partition = Partition::new(b"dr-alice", "role:doctor".parse().unwrap(), 0).unwrap();
    let mut owner = OwnerPartition::create(partition, &mut rng);
    let capsule = Capsule::seal(&pk, owner.partition(), owner.key(), &mut rng).unwrap();
    let mut pairs = vec![(secret, RecordRef::new([1; 32]).unwrap())];
    // Other entries in the partition, so that the host holds a realistic shard (not the
    // secret again: a random secret among them made the search below find 2, ~0.1% of
    // runs).
    for (i, kw) in dictionary
        .iter()
        .step_by(997)
        .filter(|kw| *kw != secret)
        .enumerate()
    {
        pairs.push((kw, RecordRef::new([i as u8 + 2; 32]).unwrap()));
    }
    let mut host = IndexHost::new();
    host.insert_shard(owner.batch(pairs).unwrap()).unwrap();
    let id = *owner.id();

    // The victim's token, as the attacker sees it (host or eavesdropper).
    let doctor = Fame::keygen(
        &pk,
        &msk,
        &AttributeSet::parse(["role:doctor"]).unwrap(),
        &mut rng,
    )
    .unwrap();
    let k = capsule.open(&doctor, &id).unwrap();
    let observed = KeywordKey::derive(&id, &k, secret).token();
    assert_eq!(host.search(&observed).len(), 1);

    // The attacker's own key does not satisfy the policy: no K.
    let mallory = Fame::keygen(
        &pk,
        &msk,
        &AttributeSet::parse(["role:researcher"]).unwrap(),
        &mut rng,
    )
    .unwrap();
    assert!(matches!(
        capsule.open(&mallory, &id),
        Err(Error::PolicyNotSatisfied)
    ));

    // Best effort without K: every dictionary word under every key derivable from public
    // data; a guess "hits" if it reproduces the observed token or finds any entry.
    let guessed_keys: Vec<PartitionKey> = [
        [0u8; 32],
        *id.as_bytes(),
        *blake3::hash(capsule.as_bytes()).as_bytes(),
        *blake3::hash(&pk.to_bytes()).as_bytes(),
    ]
    .into_iter()
    .map(PartitionKey::from_bytes)
    .collect();
    let attack = |keys: &[PartitionKey]| -> Vec<&Keyword> {
        dictionary
            .iter()
            .filter(|w| {
                keys.iter().any(|key| {
                    let t = KeywordKey::derive(&id, key, w).token();
                    t == observed || !host.search(&t).is_empty()
                })
            })
            .collect()
    };
    assert!(
        attack(&guessed_keys).is_empty(),
        "a guess matched without the partition key"
    );
    // Control: the same procedure with the real K pins the keyword down, so the only
    // thing the attacker lacks is K.
    let with_key: Vec<&Keyword> = attack(std::slice::from_ref(&k))
        .into_iter()
        .filter(|w| KeywordKey::derive(&id, &k, w).token() == observed)
        .collect();
    assert_eq!(with_key, vec![secret]);
}

use medseal_abe::Encoding as _;
