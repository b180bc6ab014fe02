#![no_main]
//! `chain_journal`: never panics; intact journal records re-encode to the file's bytes.
libfuzzer_sys::fuzz_target!(|data: &[u8]| medseal_chain::__fuzz::decode_journal(data));
