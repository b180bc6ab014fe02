#![no_main]
//! `index_owner_partition`: never panics; whatever decodes re-encodes to the same bytes.
libfuzzer_sys::fuzz_target!(|data: &[u8]| medseal_index::__fuzz::decode_owner_partition(data));
