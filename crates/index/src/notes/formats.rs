//! # Binary formats (version 1, frozen)
//!
//! Common header: `magic "MSIX" (4) | version u8 = 1 | kind u8`. Integers big-endian.
//! Decoders check the header, counts against limits and against the bytes remaining
//! before allocating, and reject trailing bytes. Every decodable input re-encodes to the
//! same bytes (fuzzed: `fuzz/fuzz_targets/index_shard.rs`, `index_token.rs`,
//! `index_owner_partition.rs`). The codec is medseal-abe's ([`medseal_abe::codec`]).
//!
//! ## Shard (kind 1)
//!
//! ```text
//! header | partition id (32) | count u32 (≤ 2^26) | entries: count × (label 16 | value 32)
//! ```
//!
//! Labels strictly increasing (sorted, no repeats). The root (not stored; recomputed) is
//! described in the `sse::merkle` source docs:
//! `BLAKE3(key="medseal-index/v1/shard-root", partition ‖ u64_be(count) ‖ top)`.
//!
//! ## Search token (kind 2)
//!
//! ```text
//! header | partition id (32) | label key (32)          (70 bytes)
//! ```
//!
//! ## Owner partition (kind 4)
//!
//! The data owner's private state of one partition ([`crate::sse::OwnerPartition`]):
//!
//! ```text
//! header | owner u32 len (≤ 256) ‖ bytes | policy u32 len (≤ 64 KiB) ‖ canonical text
//!        | epoch u64 | partition key (32)
//!        | padding mode u8 (0 none, 1 multiple, 2 power of two) | bucket u32 (0 unless 1)
//!        | next shard sequence number u64
//!        | live u32 (≤ 2^20) | live × (last batch u64 | entries u64)
//!        | count u32 (≤ 2^24) | count × (keyword tag 16 | counter u64)
//! ```
//!
//! The live shards are listed oldest first; the first covers batches from 0, each next
//! one from the previous one's last batch + 1, and the last one ends at the next shard
//! sequence number − 1 (no live shard before the first batch). Kind 3 was this layout
//! without the live shards; it is refused.
//!
//! The policy text must be canonical (re-printed and compared). Tags strictly
//! increasing, counters non-zero (a keyword without entries has no counter). No keyword
//! text is stored: a counter is named by the keyword's tag (below), so decoding parses
//! no keyword and cannot change which keyword a counter belongs to. The encoding holds
//! the partition key: it is a secret.
//!
//! ## Owner partition delta (kind 5)
//!
//! What changed in an owner partition since the previous delta
//! ([`crate::sse::OwnerPartition::delta`], applied with
//! [`crate::sse::OwnerPartition::apply_delta`]): the owner partition layout above under
//! kind 5, with the current header fields (partition, key, padding, next shard sequence
//! number, live shards) and only the counters that changed, under the same rules (tags
//! strictly increasing, counters non-zero). Applying it takes the header fields and
//! upserts the counters; it is refused if it names another partition or key, or if its
//! next shard sequence number or any of its counters is behind the state it is applied
//! to (a counter going back would repeat labels). It holds the partition key: a secret.
//!
//! ## Capsule
//!
//! A medseal-abe envelope (FAME) of the 32-byte partition key with the partition id as
//! associated data; its format is medseal-abe's.
//!
//! ## Derived values
//!
//! * partition id: `BLAKE3-derive_key("medseal-index v1 partition id", u32 len ‖ owner ‖
//!   u32 len ‖ canonical policy ‖ u64 epoch)`;
//! * `K_lab ‖ K_val ‖ tag = BLAKE3-XOF(key=K, "medseal-index/v1/keyword\0" ‖ keyword)[..80]`
//!   (canonical keyword text; the 16-byte `tag` names the keyword's counter in the
//!   owner's state, and is never sent to anyone);
//! * `label_c = AES-256(K_lab, u64_le(c) ‖ u64_le(0))`,
//!   `pad_c = AES-256(K_val, u64_le(c) ‖ u64_le(0)) ‖ AES-256(K_val, u64_le(c) ‖ u64_le(1))`;
//! * Merkle leaf `BLAKE3(key="medseal-index/v1/merkle-leaf", label ‖ value)`, node
//!   `BLAKE3(key="medseal-index/v1/merkle-node", left ‖ right)` (keys NUL-padded to 32
//!   bytes; an odd last node is carried up).
