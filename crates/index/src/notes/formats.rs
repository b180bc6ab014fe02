//! # Binary formats (version 1, frozen)
//!
//! Common header: `magic "MSIX" (4) | version u8 = 1 | kind u8`. Integers big-endian.
//! Decoders check the header, counts against limits and against the bytes remaining
//! before allocating, and reject trailing bytes. Every decodable input re-encodes to the
//! same bytes (fuzzed: `fuzz/fuzz_targets/index_shard.rs`, `index_token.rs`).
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
//! ## Capsule
//!
//! A medseal-abe envelope (FAME) of the 32-byte partition key with the partition id as
//! associated data; its format is medseal-abe's.
//!
//! ## Derived values
//!
//! * partition id: `BLAKE3-derive_key("medseal-index v1 partition id", u32 len ‖ owner ‖
//!   u32 len ‖ canonical policy ‖ u64 epoch)`;
//! * `K_lab ‖ K_val = BLAKE3-XOF(key=K, "medseal-index/v1/keyword\0" ‖ keyword)[..64]`;
//! * `label_c = AES-256(K_lab, u64_le(c) ‖ u64_le(0))`,
//!   `pad_c = AES-256(K_val, u64_le(c) ‖ u64_le(0)) ‖ AES-256(K_val, u64_le(c) ‖ u64_le(1))`;
//! * Merkle leaf `BLAKE3(key="medseal-index/v1/merkle-leaf", label ‖ value)`, node
//!   `BLAKE3(key="medseal-index/v1/merkle-node", left ‖ right)` (keys NUL-padded to 32
//!   bytes; an odd last node is carried up).
