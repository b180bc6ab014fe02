#![no_main]
//! `decode_manifest`: never panics; a decodable record manifest re-encodes to the same bytes.
libfuzzer_sys::fuzz_target!(|data: &[u8]| medseal::__fuzz::decode_manifest(data));
