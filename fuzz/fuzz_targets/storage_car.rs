#![no_main]
//! `storage_car`: never panics; an imported CAR holds only verified blocks and re-exports.
libfuzzer_sys::fuzz_target!(|data: &[u8]| medseal_storage::__fuzz::decode_car(data));
