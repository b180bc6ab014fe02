#![no_main]
//! `decode_authority_share`: never panics; a parsed backup share line round-trips.
libfuzzer_sys::fuzz_target!(|data: &[u8]| medseal::__fuzz::decode_authority_share(data));
