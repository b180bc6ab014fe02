#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]

pub use medseal_abe as abe;
pub use medseal_chain as chain;
pub use medseal_index as index;
pub use medseal_storage as storage;
