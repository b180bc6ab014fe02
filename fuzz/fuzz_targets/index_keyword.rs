#![no_main]
//! `index_keyword`: never panics; whatever parses re-parses from its canonical text to itself.
libfuzzer_sys::fuzz_target!(|data: &[u8]| medseal_index::__fuzz::parse_keyword(data));
