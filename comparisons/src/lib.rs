//! Shared code of the comparison reports (`covercrypt_report`, `findex_report`): command
//! line, interleaved timing with medians, and the index workload of the medseal index
//! report (ICD-10-CM keywords drawn by a Zipf law, five per record).
//!
//! This crate links Cosmian's BUSL-1.1 crates for measurement only; it is its own cargo
//! workspace so that the library never depends on them.

use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use std::hint::black_box;
use std::time::Instant;

/// How much work a report does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// The recorded numbers.
    Full,
    /// Fewer rounds and sizes.
    Quick,
    /// Tiny sizes, two or three rounds: proves the binary works (CI).
    Smoke,
}

impl Mode {
    /// The mode's name, as printed in a report's title.
    pub fn name(self) -> &'static str {
        match self {
            Mode::Full => "full",
            Mode::Quick => "quick",
            Mode::Smoke => "smoke",
        }
    }
}

/// The parsed command line of a report.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Args {
    /// `--quick`, `--smoke` or neither (the smallest wins if both are given).
    pub mode: Mode,
    /// `--json`: the last line of the output is a JSON object.
    pub json: bool,
}

impl Args {
    /// Parses `--quick`, `--smoke` and `--json`.
    ///
    /// # Errors
    /// The first argument that is none of them.
    pub fn parse<I: IntoIterator<Item = String>>(args: I) -> Result<Args, String> {
        let (mut quick, mut smoke, mut json) = (false, false, false);
        for a in args {
            match a.as_str() {
                "--quick" => quick = true,
                "--smoke" => smoke = true,
                "--json" => json = true,
                _ => return Err(a),
            }
        }
        let mode = if smoke {
            Mode::Smoke
        } else if quick {
            Mode::Quick
        } else {
            Mode::Full
        };
        Ok(Args { mode, json })
    }

    /// Parses the process's arguments; on an unknown one prints the usage of `bin` and
    /// exits with status 2.
    #[allow(clippy::print_stderr)]
    pub fn from_env(bin: &str) -> Args {
        Args::parse(std::env::args().skip(1)).unwrap_or_else(|bad| {
            eprintln!("unknown argument {bad}\nusage: {bin} [--quick | --smoke] [--json]");
            std::process::exit(2)
        })
    }
}

/// The median of `v` (the mean of the two middle values for an even count; NaN if empty).
pub fn median(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let m = v.len() / 2;
    if v.len().is_multiple_of(2) {
        (v[m - 1] + v[m]) / 2.0
    } else {
        v[m]
    }
}

/// The wall-clock time of one call of `f`, in milliseconds; its result goes through
/// `black_box` and is dropped inside the timed region.
pub fn time_ms<T>(f: impl FnOnce() -> T) -> f64 {
    let t = Instant::now();
    black_box(f());
    t.elapsed().as_secs_f64() * 1e3
}

/// Runs the closures interleaved (`f0, f1, …, f0, f1, …`) for `rounds` rounds after one
/// warm-up call each, so machine noise hits all of them alike, and returns the median
/// time of each in milliseconds (the `interleaved` of the ABE report).
pub fn interleaved(rounds: usize, fs: &mut [&mut dyn FnMut()]) -> Vec<f64> {
    for f in fs.iter_mut() {
        f();
    }
    let mut samples = vec![Vec::with_capacity(rounds); fs.len()];
    for _ in 0..rounds {
        for (f, s) in fs.iter_mut().zip(samples.iter_mut()) {
            s.push(time_ms(&mut **f));
        }
    }
    samples.into_iter().map(median).collect()
}

/// `other / ours`, the ratio column of the tables (above 1: medseal is faster or smaller).
pub fn ratio(ours: f64, other: f64) -> f64 {
    other / ours
}

/// The load average of the last minute, if the system publishes it (`/proc/loadavg`).
pub fn load_average() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// The index report's workload, from `medseal_index::dictionary` (one definition for
/// both reports, so they index the same entries).
pub use medseal_index::dictionary::Workload;

/// Index entries per record, as in the index report.
pub const KEYWORDS_PER_RECORD: u64 = Workload::KEYWORDS_PER_RECORD;

/// The index report's workload: the ICD-10-CM list in the popularity order of a ChaCha20
/// stream of seed 7 (the report's).
///
/// # Errors
/// If the embedded code list does not decode.
pub fn icd10_workload() -> medseal_index::Result<Workload> {
    Workload::icd10(&mut ChaCha20Rng::seed_from_u64(7))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(vec![4.0, 1.0, 2.0, 3.0]), 2.5);
        assert!(median(Vec::new()).is_nan());
    }

    #[test]
    fn arguments() {
        let parse = |a: &[&str]| Args::parse(a.iter().map(|s| s.to_string()));
        assert_eq!(
            parse(&[]),
            Ok(Args {
                mode: Mode::Full,
                json: false
            })
        );
        assert_eq!(
            parse(&["--json", "--quick"]),
            Ok(Args {
                mode: Mode::Quick,
                json: true
            })
        );
        assert_eq!(
            parse(&["--quick", "--smoke"]).map(|a| a.mode),
            Ok(Mode::Smoke)
        );
        assert_eq!(parse(&["--fast"]), Err("--fast".to_string()));
    }

    #[test]
    fn interleaved_returns_one_median_per_closure() {
        let (mut a, mut b) = (0, 0);
        let m = interleaved(3, &mut [&mut || a += 1, &mut || b += 1]);
        assert_eq!(m.len(), 2);
        // One warm-up call each, then one per round.
        assert_eq!((a, b), (4, 4));
    }
}
