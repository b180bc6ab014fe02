//! Timing helpers shared by the report examples, which include this file with
//! `#[path = "support/mod.rs"] mod support;` (it is not an example of its own).
// Not every example that includes this file uses every helper.
#![allow(dead_code)]

use std::hint::black_box;
use std::time::Instant;

/// The median of `v` (the mean of the two middle values for an even count).
pub(crate) fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    let m = v.len() / 2;
    if v.len().is_multiple_of(2) {
        (v[m - 1] + v[m]) / 2.0
    } else {
        v[m]
    }
}

/// The wall-clock time of one call of `f`, in milliseconds. Its result is passed through
/// `black_box` (so the call is not optimised away) and dropped inside the timed region.
pub(crate) fn time_ms<T>(f: impl FnOnce() -> T) -> f64 {
    let t = Instant::now();
    black_box(f());
    t.elapsed().as_secs_f64() * 1e3
}

/// The median time of `rounds` calls of `f`, in milliseconds.
pub(crate) fn median_ms<T>(rounds: usize, mut f: impl FnMut() -> T) -> f64 {
    median((0..rounds).map(|_| time_ms(&mut f)).collect())
}
