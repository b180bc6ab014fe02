//! The native module `medseal._native` of the `medseal` Python package: CP-ABE (FAME,
//! BSW07) with policies and the hybrid envelope, the searchable encrypted index, and a
//! benchmark aid. The Python-facing documentation is in the docstrings and the package's
//! type stubs; errors are the classes of `medseal._errors`.
#![deny(missing_docs)]

mod abe;
mod bench;
mod errors;
mod index;

use pyo3::prelude::*;

/// The module's initialiser.
#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    abe::register(m)?;
    index::register(m)?;
    bench::register(m)?;
    Ok(())
}
