#![no_main]
//! `decode_sealed_authority_key`: never panics; parameters above the caps are refused before the key derivation.
libfuzzer_sys::fuzz_target!(|data: &[u8]| medseal::__fuzz::decode_sealed_authority_key(data));
