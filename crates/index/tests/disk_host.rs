//! The persistent index host: answers survive reopening the file and equal the in-memory
//! host's; it refuses what an honest partition never holds; a damaged file never yields
//! an answer that verifies but is wrong.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use medseal_index::sse::{
    DiskHost, IndexHost, KeywordKey, OwnerPartition, Partition, Shard, ShardRoot,
};
use medseal_index::{Error, Keyword, RecordRef};
use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};

fn record(i: u32) -> RecordRef {
    let mut b = [0xA5; 32];
    b[..4].copy_from_slice(&i.to_be_bytes());
    RecordRef::new(b).unwrap()
}

/// 600 records of 1–5 keywords out of 30, in batches of 1–20 records, merged as the
/// owner's rule asks: shards from a few entries to over a thousand.
/// Live roots after each step, and the shard the step stored.
type Steps = Vec<(Vec<ShardRoot>, Shard)>;

fn build() -> (OwnerPartition, IndexHost, Vec<Keyword>, Steps) {
    build_sized(600)
}

/// [`build`] with `records` records.
fn build_sized(records: u32) -> (OwnerPartition, IndexHost, Vec<Keyword>, Steps) {
    let kws: Vec<Keyword> = (0..30)
        .map(|i| Keyword::term(&format!("kw{i}")).unwrap())
        .collect();
    let partition = Partition::new(b"owner", "role:doctor".parse().unwrap(), 0).unwrap();
    let mut owner = OwnerPartition::create(partition, &mut ChaCha20Rng::seed_from_u64(1));
    let mut host = IndexHost::new();
    let mut steps = Vec::new();
    let mut rng = ChaCha20Rng::seed_from_u64(2);
    let mut n = 0u32;
    while n < records {
        let mut pairs = Vec::new();
        for _ in 0..1 + rng.next_u32() % 20 {
            let k = 1 + rng.next_u32() % 5;
            for j in 0..k {
                pairs.push((&kws[((n * 7 + j * 11) % 30) as usize], record(n)));
            }
            n += 1;
        }
        let shard = owner.batch(pairs).unwrap();
        let id = *owner.id();
        let span = owner.merge_span();
        let new = if span > 1 {
            let keep = host.shards(&id).len() + 1 - span;
            let old: Vec<Shard> = host.shards(&id)[keep..].to_vec();
            let mut inputs: Vec<&Shard> = old.iter().collect();
            inputs.push(&shard);
            let merged = Shard::merge(&inputs).unwrap();
            owner.record_merge(span, &merged).unwrap();
            host.truncate(&id, keep);
            merged
        } else {
            shard
        };
        host.insert_shard(new.clone()).unwrap();
        steps.push((host.roots(&id), new));
    }
    (owner, host, kws, steps)
}

fn assert_same_answers(owner: &OwnerPartition, host: &IndexHost, disk: &DiskHost, kws: &[Keyword]) {
    let id = owner.id();
    let roots = host.roots(id);
    for kw in kws {
        let kk = KeywordKey::derive(id, owner.key(), kw);
        let answer = disk.prove(&kk.token(), &roots).unwrap();
        assert_eq!(answer, host.prove(&kk.token()));
        kk.verify(&roots, &answer).unwrap();
    }
}

/// A host at `path` that followed every step.
fn filled(path: &std::path::Path, owner: &OwnerPartition, steps: &Steps) -> DiskHost {
    let disk = DiskHost::open(path).unwrap();
    for (live, new) in steps {
        disk.update(owner.id(), live, std::slice::from_ref(new))
            .unwrap();
    }
    disk
}

#[test]
fn answers_survive_reopening_and_equal_the_memory_host() {
    let (owner, host, kws, steps) = build();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("index-cache.redb");
    {
        let _open = filled(&path, &owner, &steps);
        // A second handle on the same file is refused while the first is open.
        assert!(matches!(DiskHost::open(&path), Err(Error::CacheInUse)));
    }
    let disk = DiskHost::open(&path).unwrap();
    let roots = host.roots(owner.id());
    assert!(disk.missing(&roots).unwrap().is_empty());
    assert!(host.shards(owner.id()).iter().any(|s| s.len() > 1_000));
    assert_same_answers(&owner, &host, &disk, &kws);
    // Every superseded shard is gone.
    let all: Vec<ShardRoot> = steps.iter().map(|(_, s)| s.root()).collect();
    let gone = disk.missing(&all).unwrap();
    assert_eq!(gone.len(), all.len() - roots.len());

    // Updating to the same live set is a no-op; dropping the partition drops it all.
    disk.update(owner.id(), &roots, &[]).unwrap();
    assert_same_answers(&owner, &host, &disk, &kws);
    assert!(disk.remove_partition(owner.id()).unwrap());
    assert_eq!(disk.missing(&roots).unwrap(), roots);
    let kk = KeywordKey::derive(owner.id(), owner.key(), &kws[0]);
    assert!(matches!(
        disk.prove(&kk.token(), &roots),
        Err(Error::Cache(_))
    ));
}

#[test]
fn the_file_stays_near_its_compact_size_through_many_updates() {
    // 8,000 records (~24,000 entries) in ~800 batches, one update per batch as a process
    // that interleaves puts and searches makes them: every merge drops shards.
    let (owner, host, kws, steps) = build_sized(8_000);
    let dir = tempfile::tempdir().unwrap();
    let len = |name: &str| std::fs::metadata(dir.path().join(name)).unwrap().len();
    let run = |name: &str, floor: u64| -> u64 {
        let disk = DiskHost::open(dir.path().join(name))
            .unwrap()
            .with_compaction_floor(floor);
        let mut largest = 0;
        for (live, new) in &steps {
            disk.update(owner.id(), live, std::slice::from_ref(new))
                .unwrap();
            largest = largest.max(len(name));
        }
        let (live, dropped) = disk.entry_counts().unwrap();
        let held: u64 = host.shards(owner.id()).iter().map(|s| s.len() as u64).sum();
        assert_eq!(live, held, "held entries counted");
        assert!(dropped <= live.max(floor), "compacted when due");
        largest
    };
    let compacting = run("compacting.redb", 0);
    let never = run("never.redb", u64::MAX);
    // One fill of the final live shards: the compact size.
    let once = DiskHost::open(dir.path().join("once.redb")).unwrap();
    let roots = host.roots(owner.id());
    once.update(owner.id(), &roots, host.shards(owner.id()))
        .unwrap();
    drop(once);
    let compact = len("once.redb");
    // Measured: 61.6 MB against 17.4 MB (a merge rewriting every entry needs room for
    // both copies in its transaction, on top of what was dropped since the last
    // compaction), and 256 MB without compaction.
    assert!(
        compacting <= 4 * compact,
        "compacting host reached {compacting} B, one fill is {compact} B"
    );
    assert!(
        never > 3 * compacting,
        "without compaction {never} B, with it {compacting} B"
    );
    // Compaction lost nothing, and the counters survive reopening.
    let disk = DiskHost::open(dir.path().join("compacting.redb")).unwrap();
    assert_same_answers(&owner, &host, &disk, &kws);
    assert_eq!(
        disk.entry_counts().unwrap().0,
        host.shards(owner.id())
            .iter()
            .map(|s| s.len() as u64)
            .sum::<u64>()
    );
}

#[test]
fn refuses_what_an_honest_partition_never_holds() {
    let (owner, host, kws, steps) = build();
    let id = owner.id();
    let disk = DiskHost::in_memory().unwrap();
    let (_, first) = steps.iter().find(|(_, s)| s.len() >= 2).unwrap();
    let live = [first.root()];
    disk.update(id, &live, std::slice::from_ref(first)).unwrap();
    // A live shard that is neither held nor given.
    let (later, other) = steps.last().unwrap();
    assert!(matches!(disk.update(id, later, &[]), Err(Error::Cache(_))));
    // A given shard that is not live.
    assert!(matches!(
        disk.update(id, &live, std::slice::from_ref(other)),
        Err(Error::ShardConflict(_))
    ));
    // The same shard twice.
    let twice = [first.root(), first.root()];
    assert!(matches!(
        disk.update(id, &twice, &[]),
        Err(Error::ShardConflict(_))
    ));
    // Two live shards sharing labels: the first without its last entry.
    let overlap = Shard::from_bytes(&truncated(first, first.len() - 1)).unwrap();
    assert_ne!(overlap.root(), first.root());
    let both = [first.root(), overlap.root()];
    assert!(matches!(
        disk.update(id, &both, std::slice::from_ref(&overlap)),
        Err(Error::ShardConflict(_))
    ));
    // A shard of another partition.
    let elsewhere = Partition::new(b"other", "role:doctor".parse().unwrap(), 0).unwrap();
    let mut stranger = OwnerPartition::create(elsewhere, &mut ChaCha20Rng::seed_from_u64(5));
    let kw = Keyword::term("x").unwrap();
    let foreign = stranger.batch([(&kw, record(1))]).unwrap();
    assert!(matches!(
        disk.update(id, &[foreign.root()], std::slice::from_ref(&foreign)),
        Err(Error::ShardConflict(_))
    ));
    // Nothing changed: the first state still answers, and only it is held.
    assert!(disk.missing(&live).unwrap().is_empty());
    assert_eq!(disk.missing(&[overlap.root()]).unwrap(), [overlap.root()]);
    let mut single = IndexHost::new();
    single.insert_shard(first.clone()).unwrap();
    for kw in &kws {
        let kk = KeywordKey::derive(id, owner.key(), kw);
        assert_eq!(
            disk.prove(&kk.token(), &live).unwrap(),
            single.prove(&kk.token())
        );
    }
    drop(host);
}

/// The canonical encoding of `shard` cut to its first `keep` entries.
fn truncated(shard: &Shard, keep: usize) -> Vec<u8> {
    let bytes = shard.to_bytes();
    let header = 6 + 32;
    let mut out = bytes[..header].to_vec();
    out.extend_from_slice(&(keep as u32).to_be_bytes());
    out.extend_from_slice(&bytes[header + 4..header + 4 + keep * 48]);
    out
}

/// Bytes of the file overwritten at random: opening fails, or proving fails, or the
/// answer fails verification, or it is the right answer. Never a wrong verified answer.
#[test]
fn a_damaged_file_never_gives_a_wrong_verified_answer() {
    let (owner, host, kws, steps) = build();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("index-cache.redb");
    drop(filled(&path, &owner, &steps));
    let pristine = std::fs::read(&path).unwrap();
    let roots = host.roots(owner.id());
    let mut rng = ChaCha20Rng::seed_from_u64(7);
    let (mut refused, mut rejected, mut intact) = (0, 0, 0);
    for _ in 0..40 {
        let mut bytes = pristine.clone();
        for _ in 0..8 {
            let at = (rng.next_u64() % bytes.len() as u64) as usize;
            bytes[at] ^= 1 << (rng.next_u32() % 8);
        }
        std::fs::write(&path, &bytes).unwrap();
        let Ok(disk) = DiskHost::open(&path) else {
            refused += 1;
            continue;
        };
        for kw in &kws {
            let kk = KeywordKey::derive(owner.id(), owner.key(), kw);
            match disk.prove(&kk.token(), &roots) {
                Err(_) => refused += 1,
                Ok(answer) => match kk.verify(&roots, &answer) {
                    Err(_) => rejected += 1,
                    Ok(found) => {
                        assert_eq!(found, kk.verify(&roots, &host.prove(&kk.token())).unwrap());
                        intact += 1;
                    }
                },
            }
        }
    }
    assert!(refused + rejected + intact > 0);
}
