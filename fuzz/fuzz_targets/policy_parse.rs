#![no_main]
//! Policy parser: never panics; accepted policies round-trip through their canonical form.
libfuzzer_sys::fuzz_target!(|data: &[u8]| medseal_abe::__fuzz::policy_parse(data));
