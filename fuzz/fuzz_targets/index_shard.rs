#![no_main]
//! `index_shard`: never panics; whatever decodes re-encodes to the same bytes.
libfuzzer_sys::fuzz_target!(|data: &[u8]| medseal_index::__fuzz::decode_shard(data));
