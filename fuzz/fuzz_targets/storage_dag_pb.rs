#![no_main]
//! `storage_dag_pb`: never panics; dag-pb/UnixFS nodes decode, and read as a file root, cleanly.
libfuzzer_sys::fuzz_target!(|data: &[u8]| medseal_storage::__fuzz::decode_dag_pb(data));
