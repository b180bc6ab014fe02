#![no_main]
//! `storage_cid_text`: never panics; a parsed CID prints as text that parses back to it.
libfuzzer_sys::fuzz_target!(|data: &[u8]| medseal_storage::__fuzz::parse_cid_text(data));
