//! The default scheme: an ABE-gated, policy-partitioned encrypted multimap (SSE).
//!
//! # Roles and flow
//!
//! ```
//! use medseal_abe::{AttributeSet, Fame, Policy, Scheme};
//! use medseal_index::sse::{Capsule, IndexHost, KeywordKey, OwnerPartition, Partition};
//! use medseal_index::{Keyword, RecordRef};
//! use rand_core::OsRng;
//!
//! let (pk, msk) = Fame::setup(&mut OsRng);
//! // Owner: a partition (owner, policy, epoch) with a fresh key K in a CP-ABE capsule.
//! let policy: Policy = "role:doctor and dept:cardiology".parse()?;
//! let partition = Partition::new(b"dr-alice", policy, 0)?;
//! let mut owner = OwnerPartition::create(partition, &mut OsRng);
//! let capsule = Capsule::seal(&pk, owner.partition(), owner.key(), &mut OsRng)?;
//! let hypertension = Keyword::icd10("I10")?;
//! let record = RecordRef::new([7; 32])?;
//! let shard = owner.batch([(&hypertension, record)])?;
//! // The owner's state persists as opaque bytes (it holds K: keep them secret).
//! let owner = OwnerPartition::from_bytes(&owner.to_bytes())?;
//! assert_eq!((owner.count(&hypertension), owner.next_shard_seq()), (1, 1));
//!
//! // Host: stores shards; the root is what the owner anchors on chain.
//! let mut host = IndexHost::new();
//! let root = host.insert_shard(shard)?;
//!
//! // User: opens the capsule (one ABE decryption per partition), derives a token.
//! let attrs = AttributeSet::parse(["role:doctor", "dept:cardiology"])?;
//! let user_key = Fame::keygen(&pk, &msk, &attrs, &mut OsRng)?;
//! let id = owner.id();
//! let k = capsule.open(&user_key, id)?;
//! let kw = KeywordKey::derive(id, &k, &hypertension);
//! // Fast path: no proofs.
//! assert_eq!(kw.decrypt(&host.search(&kw.token())), vec![record]);
//! // Verified path: checked against the anchored roots.
//! let answer = host.prove(&kw.token());
//! assert_eq!(kw.verify(&[root], &answer)?, vec![record]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Construction
//!
//! * A partition is `(owner, policy, epoch)`; its [`PartitionId`] is a hash of the three.
//!   Its key `K` (32 random bytes) is wrapped in a [`Capsule`]: a CP-ABE (FAME) envelope
//!   under the policy with the partition id as associated data. Only users whose
//!   attributes satisfy the policy learn `K`, so only they can derive tokens: there is no
//!   public key to test guessed keywords against.
//! * Keywords are normalised ([`crate::Keyword`]). `K_lab ‖ K_val = PRF(K, w)`; the
//!   c-th entry of `w` is `label = PRF(K_lab, c)[..16]`, `value = ref ⊕ PRF(K_val, c)`
//!   (`PRF(K, w)`: keyed BLAKE3; the per-entry PRF: AES-256 on the counter, a few cycles
//!   per label with AES-NI; exact layouts in [`crate::notes::formats`]).
//! * Each batch becomes an immutable [`Shard`] (sorted by label, canonical encoding,
//!   Merkle root). The [`IndexHost`] merges the shards of a partition into one hash table
//!   and answers a [`SearchToken`] (partition id and `K_lab`) by probing `c = 0, 1, …`
//!   until the first miss. The owner merges shards logarithmically
//!   ([`OwnerPartition::merge_span`]: every live shard more than twice as heavy as the next
//!   newer one), so a partition of `N` entries has at most `log2 N + 1` live shards, and
//!   each entry is rewritten O(log N) times. (An authenticated map with one root per
//!   partition, e.g. a sparse Merkle tree, would give one proof per label, but every
//!   batch would rewrite O(log N) tree nodes as separate stored objects, and a reader
//!   could only load the tree node by node or replay every batch; merged shards stay a
//!   handful of sorted, immutable objects that load and verify in one pass each.)
//!   [`IndexHost::compact`] merges all shards of a partition into one.
//! * [`DiskHost`] gives the same proved answers from an embedded database file instead of
//!   memory: a process that starts answers at once (nothing to load or re-hash) and
//!   memory does not grow with the index; what it stores and costs is in its docs.
//! * [`IndexHost::prove`] returns membership proofs for the results (the host's table
//!   records each label's shard) and sorted-neighbour non-membership proofs of the
//!   terminating label in every live shard: O(hits · log N + log² N) hashes to verify;
//!   [`KeywordKey::verify`] checks them against the anchored roots (see [`proof`]).
//! * Epochs: [`OwnerPartition::rotate`] starts a new partition with a fresh key.
//!   Optional volume padding: [`Padding`].
//! * The owner's state ([`OwnerPartition`]: key, padding, per-keyword counters keyed by
//!   PRF tags, next shard sequence number, live shards) has its own canonical encoding.
//!
//! What the host and the chain learn is in [`crate::notes::leakage`].

mod disk;
mod host;
mod merkle;
mod owner;
mod partition;
mod prf;
pub mod proof;
mod shard;
mod token;

pub use disk::DiskHost;
pub use host::IndexHost;
pub use merkle::ShardRoot;
pub use owner::{LiveShard, MAX_LIVE_SHARDS, MAX_PARTITION_KEYWORDS, OwnerPartition, Padding};
pub use partition::{Capsule, MAX_OWNER_LEN, Partition, PartitionId, PartitionKey};
pub use prf::Label;
pub use proof::VerifiableAnswer;
pub use shard::{ENTRY_BYTES, Entry, MAX_SHARD_ENTRIES, Shard};
pub use token::{EncryptedRef, KeywordKey, SearchToken, TOKEN_BYTES};
