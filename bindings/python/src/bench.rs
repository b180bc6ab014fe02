//! A benchmark aid: the FAME operations timed in a Rust loop on the caller's objects, so
//! a Python benchmark can measure the binding's overhead in the same process.

use crate::abe::{FameCiphertext, FameMasterKey, FamePublicKey, FameUserKey};
use crate::errors::{abe_error, input_error};
use medseal_abe::{Fame, Scheme};
use pyo3::prelude::*;
use rand_core::OsRng;
use std::hint::black_box;
use std::time::Instant;

/// `_time_fame(op, rounds, pk, msk, key, ct) -> list[float]`: seconds per call of `op`,
/// one per round, timed in Rust with the GIL released. `op` is `"keygen"` (for
/// `key.attributes`), `"encrypt"` (encapsulation under `ct.policy`) or `"decrypt"`
/// (decapsulation of `ct` with `key`), the workload of the Rust `abe_report`. A benchmark
/// aid, not a stable API.
#[pyfunction]
fn _time_fame(
    py: Python<'_>,
    op: String,
    rounds: usize,
    pk: PyRef<'_, FamePublicKey>,
    msk: PyRef<'_, FameMasterKey>,
    key: PyRef<'_, FameUserKey>,
    ct: PyRef<'_, FameCiphertext>,
) -> PyResult<Vec<f64>> {
    let (pk, msk, key, ct) = (&pk.inner, &msk.inner, &key.inner, &ct.inner);
    let attrs = Fame::attributes(key);
    let policy = Fame::policy(ct);
    let run = |f: &dyn Fn() -> medseal_abe::Result<()>| -> medseal_abe::Result<Vec<f64>> {
        let mut out = Vec::with_capacity(rounds);
        for _ in 0..rounds {
            let t = Instant::now();
            f()?;
            out.push(t.elapsed().as_secs_f64());
        }
        Ok(out)
    };
    let result = match op.as_str() {
        "keygen" => py.detach(|| {
            run(&|| Fame::keygen(pk, msk, attrs, &mut OsRng).map(|k| drop(black_box(k))))
        }),
        "encrypt" => py.detach(|| {
            run(&|| Fame::encapsulate(pk, policy, &mut OsRng).map(|c| drop(black_box(c))))
        }),
        "decrypt" => py.detach(|| run(&|| Fame::decapsulate(key, ct).map(|k| drop(black_box(k))))),
        other => {
            return Err(input_error(format!(
                "op must be \"keygen\", \"encrypt\" or \"decrypt\", not {other:?}"
            )));
        }
    };
    result.map_err(abe_error)
}

/// Registers the function.
pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(_time_fame, m)?)
}
