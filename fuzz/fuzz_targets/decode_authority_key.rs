#![no_main]
//! `decode_authority_key`: never panics; a decodable authority key file re-encodes to the same bytes.
libfuzzer_sys::fuzz_target!(|data: &[u8]| medseal::__fuzz::decode_authority_key(data));
