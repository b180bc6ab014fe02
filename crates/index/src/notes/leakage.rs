//! # Leakage profile of [`crate::sse`] (and of the ABKS baseline)
//!
//! What each party learns, stated as leakage functions in the usual SSE sense. "Learns"
//! assumes BLAKE3 in keyed mode is a PRF and FAME/AES-GCM are secure.
//!
//! ## Parties
//!
//! * **Owner**: knows its partition keys, keywords and records.
//! * **User**: an attribute key; learns the partition key `K` of every partition whose
//!   policy it satisfies, hence can search *any* keyword there (authorisation is per
//!   partition, not per keyword).
//! * **Host**: stores shards, receives tokens, answers. Honest-but-curious for privacy;
//!   may be malicious for integrity (caught by the verifier, see [`crate::sse::proof`]).
//! * **Chain observers**: everyone.
//!
//! ## What the host learns
//!
//! * **At setup / per shard (`L_build`)**: the partition id of each shard, its number of
//!   entries (padding included), its size in bytes and when it arrived. Labels and values
//!   are pseudorandom: nothing about keywords, per-keyword counts or records. Entries
//!   are sorted by label, so the order within a batch reveals nothing either. A merged
//!   shard ([`crate::sse::OwnerPartition::merge_span`]) is the sorted union of shards the
//!   host already holds plus one new batch: it reveals nothing the separate shards did
//!   not (which batches were merged follows from their sizes, by a public rule).
//! * **Per search (`L_search`)**:
//!   * *search pattern*: tokens are deterministic per (partition, keyword), so repeated
//!     queries for the same keyword in the same partition are linkable, across users;
//!   * *access pattern*: which stored entries (labels) answer the query, hence which
//!     shard each came from and so in which batch (time) each matching entry was added;
//!   * *result volume*: the number of entries returned (exact without padding; with
//!     [`crate::sse::Padding`] only the bucket: a multiple of the bucket size or a power
//!     of two, dummies included);
//!   * the partition searched (the token carries its id) and the query's timing/origin.
//! * After a token for keyword `w` is revealed, the host can recognise **future**
//!   entries of `w` in the same partition and epoch (their labels continue the same
//!   counter sequence): forward privacy holds only **across epochs**. Rotate the epoch
//!   ([`crate::sse::OwnerPartition::rotate`]) to cut it, e.g. after a revocation.
//! * Nothing about keywords that were never searched, beyond `L_build`.
//! * The record references it returns are encrypted; if the same host also serves the
//!   records (their manifests by CID), fetching them links results to records.
//!
//! ## What the chain reveals (public)
//!
//! Per partition: its id (a hash of owner, policy and epoch; the policy and owner can be
//! confirmed by anyone who guesses them), the capsule CID and the policy hash (the capsule
//! itself, if published, carries the policy in the clear, as every CP-ABE ciphertext
//! does), the epoch. Per shard: its CID and Merkle root, and the anchoring transaction's
//! sender and time — hence the owner's batch sizes over time (via the shard sizes if
//! the shards are retrievable) and compaction events. Nothing about keywords.
//!
//! ## What users learn
//!
//! Everything in the partitions they can open: all keywords' postings (by searching),
//! not only the ones they asked for. Revoked users keep the keys of old epochs and can
//! keep searching entries written before the rotation if they still get the shards.
//!
//! ## Not leaked
//!
//! Keywords, record references (without the partition key), which keyword a token is for
//! (no public test: this is what ABKS fails), and results of searches the host did not
//! see. Tokens, partition keys and keyword keys never leave the user, except the token
//! (label key) sent to the host.
//!
//! ## The ABKS baseline, for comparison
//!
//! The server tests every entry per query, so it learns the access pattern (which
//! entries matched) and result volume too, plus the searching user's attribute labels
//! (they are in the trapdoor) and every entry's policy. Trapdoors are randomised, so
//! the search pattern is not directly visible, **but** anyone holding a trapdoor can
//! recover its keyword from a dictionary ([`crate::abks::guessing`]), which subsumes the
//! search pattern and reveals the keyword itself. Anyone can also make index entries
//! for any keyword (public key).
