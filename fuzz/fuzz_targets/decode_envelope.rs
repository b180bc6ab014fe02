#![no_main]
//! `decode_envelope`: never panics; whatever decodes re-encodes to the same bytes.
libfuzzer_sys::fuzz_target!(|data: &[u8]| medseal_abe::__fuzz::decode_envelope(data));
