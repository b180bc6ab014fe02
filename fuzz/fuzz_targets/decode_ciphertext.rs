#![no_main]
//! `decode_ciphertext`: never panics; whatever decodes re-encodes to the same bytes.
libfuzzer_sys::fuzz_target!(|data: &[u8]| medseal_abe::__fuzz::decode_ciphertext(data));
