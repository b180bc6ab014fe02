//! Offline keyword guessing against the ABKS baseline, with the full ICD-10-CM
//! dictionary (95,622 codes), and the same attacker against the SSE default.
//!
//! ```text
//! cargo run --release --example abks_guessing
//! ```
//!
//! A doctor searches for one diagnosis code; the server (or anyone who sees the trapdoor)
//! recovers the code from the public key alone: two pairings, then one comb
//! exponentiation in G_T per guess, rayon-parallel over the dictionary. The same attacker
//! facing an SSE search token has nothing to test: tokens are PRF outputs under a
//! partition key that only satisfying attribute keys unwrap.
#![allow(clippy::unwrap_used, clippy::print_stdout, missing_docs)]

use medseal_abe::{AttributeSet, Fame, Scheme};
use medseal_index::abks::Abks;
use medseal_index::abks::guessing::KeywordGuesser;
use medseal_index::dictionary::icd10cm;
use medseal_index::sse::{Capsule, IndexHost, KeywordKey, OwnerPartition, Partition, PartitionKey};
use medseal_index::{Keyword, RecordRef};
use rand_core::{OsRng, RngCore};
use std::time::Instant;

fn main() {
    let codes = icd10cm().unwrap();
    let dictionary: Vec<Keyword> = codes
        .iter()
        .map(|c| Keyword::icd10(&c.code).unwrap())
        .collect();
    let secret_index = (OsRng.next_u64() % dictionary.len() as u64) as usize;
    let secret = &dictionary[secret_index];
    println!(
        "dictionary: {} ICD-10-CM codes; the doctor searches a random one (not shown to the attacker)",
        dictionary.len()
    );

    // ---- ABKS -------------------------------------------------------------------------
    let (pk, msk) = Abks::setup(&mut OsRng);
    let doctor = Abks::keygen(
        &msk,
        &AttributeSet::parse(["role:doctor", "dept:cardiology"]).unwrap(),
        &mut OsRng,
    );
    let trapdoor = Abks::trapdoor(&pk, &doctor, secret, &mut OsRng).unwrap();

    // The attacker holds the public key and the trapdoor, nothing else.
    let t = Instant::now();
    let guesser = KeywordGuesser::new(&pk, &trapdoor);
    let setup = t.elapsed();
    let t = Instant::now();
    let found = guesser.vartime_recover(&dictionary);
    let scan = t.elapsed();
    match found {
        Some(k) => println!(
            "ABKS: recovered `{k}` ({}) in {:.2} s ({:.0} ms precomputation, {:.2} s scan of the dictionary, {} threads)",
            codes[secret_index].description,
            (setup + scan).as_secs_f64(),
            setup.as_secs_f64() * 1e3,
            scan.as_secs_f64(),
            std::thread::available_parallelism().map_or(1, |n| n.get()),
        ),
        None => println!("ABKS: not recovered (unexpected)"),
    }
    assert_eq!(found, Some(secret), "the attack must recover the keyword");

    // ---- SSE --------------------------------------------------------------------------
    let (fpk, fmsk) = Fame::setup(&mut OsRng);
    let partition = Partition::new(b"dr-alice", "role:doctor".parse().unwrap(), 0).unwrap();
    let mut owner = OwnerPartition::create(partition, &mut OsRng);
    let capsule = Capsule::seal(&fpk, owner.partition(), owner.key(), &mut OsRng).unwrap();
    let id = *owner.id();
    let mut host = IndexHost::new();
    host.insert_shard(
        owner
            .batch([(secret, RecordRef::new([1; 32]).unwrap())])
            .unwrap(),
    )
    .unwrap();
    let user = Fame::keygen(
        &fpk,
        &fmsk,
        &AttributeSet::parse(["role:doctor"]).unwrap(),
        &mut OsRng,
    )
    .unwrap();
    let k = capsule.open(&user, &id).unwrap();
    let observed = KeywordKey::derive(&id, &k, secret).token();

    // The attacker: every dictionary code under every key derivable from public data.
    let t = Instant::now();
    let candidates = [
        [0u8; 32],
        *id.as_bytes(),
        capsule.as_bytes()[capsule.as_bytes().len() - 32..]
            .try_into()
            .unwrap(),
    ];
    let hits = dictionary
        .iter()
        .filter(|w| {
            candidates.iter().any(|key| {
                let token = KeywordKey::derive(&id, &PartitionKey::from_bytes(*key), w).token();
                token == observed || !host.search(&token).is_empty()
            })
        })
        .count();
    println!(
        "SSE:  {} of {} guesses matched ({} candidate keys, {:.2} s): without the partition key there is nothing to test",
        hits,
        dictionary.len() * candidates.len(),
        candidates.len(),
        t.elapsed().as_secs_f64()
    );
    assert_eq!(hits, 0);
}
