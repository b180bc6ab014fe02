#![no_main]
//! `decode_member_key`: never panics; a decodable member key file re-encodes to the same bytes.
libfuzzer_sys::fuzz_target!(|data: &[u8]| medseal::__fuzz::decode_member_key(data));
