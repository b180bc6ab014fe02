#![no_main]
//! `storage_cid_bytes`: never panics; a decodable binary CID re-encodes to the same bytes.
libfuzzer_sys::fuzz_target!(|data: &[u8]| medseal_storage::__fuzz::decode_cid_bytes(data));
