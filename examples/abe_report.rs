//! Side-by-side CP-ABE comparison in one process: medseal FAME vs `rabe` 0.4.2 AC17 (the
//! same FAME scheme, on BN254 via rabe-bn), plus the physical floor of FAME decryption
//! (one 6-term multi-pairing on blst). Rounds are interleaved (ours, rabe, floor, ours,
//! ...) so machine noise hits all three alike; medians are reported.
//!
//! ```text
//! cargo run --release --example abe_report -- [--quick] [--json]
//! ```
//!
//! Policies are ANDs of n attributes; rabe's AC17 panics on n-ary AND, so its policy is
//! the equivalent binary nesting `a0 and (a1 and (...))`. rabe's encrypt/decrypt include
//! AES-GCM over a 1-byte payload (negligible); ours are the KEM operations. `keygen` and
//! `encrypt` use a warm attribute-hash cache (the public key carries it); the `_cold`
//! rows clear it first, i.e. they include hashing every attribute to the curve.
#![allow(
    clippy::unwrap_used,
    clippy::print_stdout,
    clippy::print_stderr,
    missing_docs
)]

use group::{Curve, Group};
use medseal_abe::{AttributeSet, Fame, Policy, Scheme};
use rabe::schemes::ac17;
use rabe::utils::policy::pest::PolicyLanguage;
use rand_core::OsRng;
use std::hint::black_box;
use support::{median, time_ms};

#[path = "support/mod.rs"]
mod support;

/// One row of the table, and one object of the `--json` array.
#[derive(serde::Serialize)]
struct Row {
    op: &'static str,
    n: usize,
    medseal_ms: f64,
    rabe_ms: f64,
    /// rabe / medseal.
    ratio: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    floor_ms: Option<f64>,
}

/// Runs the closures interleaved for `rounds` rounds and returns their medians.
fn interleaved(rounds: usize, fs: &mut [&mut dyn FnMut()]) -> Vec<f64> {
    for f in fs.iter_mut() {
        f(); // warm-up
    }
    let mut samples = vec![Vec::with_capacity(rounds); fs.len()];
    for _ in 0..rounds {
        for (f, s) in fs.iter_mut().zip(samples.iter_mut()) {
            s.push(time_ms(&mut **f));
        }
    }
    samples.into_iter().map(median).collect()
}

/// One 6-term multi-pairing (multi-Miller loop + final exponentiation) on blst.
fn floor_pairing() -> impl FnMut() {
    let mut rng = OsRng;
    let g1: Vec<blst::blst_p1_affine> = (0..6)
        .map(|_| *blstrs::G1Projective::random(&mut rng).to_affine().as_ref())
        .collect();
    let g2: Vec<blst::blst_p2_affine> = (0..6)
        .map(|_| *blstrs::G2Projective::random(&mut rng).to_affine().as_ref())
        .collect();
    move || {
        black_box(blst::blst_fp12::miller_loop_n(black_box(&g2), black_box(&g1)).final_exp());
    }
}

/// `"a0" and ("a1" and (... "an"))`.
fn rabe_policy(attrs: &[String]) -> String {
    let quoted = attrs.iter().rev().map(|a| format!("\"{a}\""));
    quoted
        .reduce(|inner, a| format!("{a} and ({inner})"))
        .unwrap()
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let quick = args.iter().any(|a| a == "--quick");
    let json = args.iter().any(|a| a == "--json");
    if let Some(bad) = args.iter().find(|a| *a != "--quick" && *a != "--json") {
        eprintln!("unknown argument {bad}\nusage: abe_report [--quick] [--json]");
        std::process::exit(2);
    }
    let rounds = if quick { 7 } else { 31 };
    let mut rows = Vec::new();
    let (pk, msk) = Fame::setup(&mut OsRng);
    let (rabe_pk, rabe_msk) = ac17::setup();
    let mut floor = floor_pairing();
    // The ciphertext size at n = 50 (the last n), without the policy text.
    let mut ct_bytes = 0;

    for n in [10usize, 50] {
        let names: Vec<String> = (0..n).map(|i| format!("attr:a{i}")).collect();
        let name_refs: Vec<&str> = names.iter().map(String::as_str).collect();
        let attrs = AttributeSet::parse(&names).unwrap();
        let policy: Policy = names.join(" and ").parse().unwrap();
        let rabe_pol = rabe_policy(&names);
        let mut rabe_keygen = || {
            black_box(ac17::cp_keygen(&rabe_msk, &name_refs).unwrap());
        };
        let mut rabe_encrypt = || {
            black_box(
                ac17::cp_encrypt(&rabe_pk, &rabe_pol, b"x", PolicyLanguage::HumanPolicy).unwrap(),
            );
        };
        // Medians of medseal, rabe and (for decrypt) the floor, in that order.
        let mut measure = |op, rounds, fs: &mut [&mut dyn FnMut()]| {
            let m = interleaved(rounds, fs);
            let (medseal_ms, rabe_ms, floor_ms) = (m[0], m[1], m.get(2).copied());
            rows.push(Row {
                op,
                n,
                medseal_ms,
                rabe_ms,
                ratio: rabe_ms / medseal_ms,
                floor_ms,
            });
        };

        eprintln!("n = {n}: keygen ...");
        measure(
            "keygen",
            rounds,
            &mut [
                &mut || {
                    black_box(Fame::keygen(&pk, &msk, &attrs, &mut OsRng).unwrap());
                },
                &mut rabe_keygen,
            ],
        );
        measure(
            "keygen_cold",
            rounds.min(11),
            &mut [
                &mut || {
                    let cold = pk.clone();
                    black_box(Fame::keygen(&cold, &msk, &attrs, &mut OsRng).unwrap());
                },
                &mut rabe_keygen,
            ],
        );

        eprintln!("n = {n}: encrypt ...");
        measure(
            "encrypt",
            rounds,
            &mut [
                &mut || {
                    black_box(Fame::encapsulate(&pk, &policy, &mut OsRng).unwrap());
                },
                &mut rabe_encrypt,
            ],
        );
        measure(
            "encrypt_cold",
            rounds.min(11),
            &mut [
                &mut || {
                    let cold = pk.clone();
                    black_box(Fame::encapsulate(&cold, &policy, &mut OsRng).unwrap());
                },
                &mut rabe_encrypt,
            ],
        );

        eprintln!("n = {n}: decrypt ...");
        let key = Fame::keygen(&pk, &msk, &attrs, &mut OsRng).unwrap();
        let (_, ct) = Fame::encapsulate(&pk, &policy, &mut OsRng).unwrap();
        ct_bytes = medseal_abe::Encoding::to_bytes(&ct).len() - policy.to_string().len();
        let rabe_key = ac17::cp_keygen(&rabe_msk, &name_refs).unwrap();
        let rabe_ct =
            ac17::cp_encrypt(&rabe_pk, &rabe_pol, b"x", PolicyLanguage::HumanPolicy).unwrap();
        measure(
            "decrypt",
            rounds,
            &mut [
                &mut || {
                    black_box(Fame::decapsulate(&key, &ct).unwrap());
                },
                &mut || {
                    black_box(ac17::cp_decrypt(&rabe_key, &rabe_ct).unwrap());
                },
                &mut floor,
            ],
        );
    }

    println!(
        "medseal FAME vs rabe 0.4.2 AC17, medians of {rounds} interleaved rounds (cold rows: {}); AND policies of n attributes",
        rounds.min(11)
    );
    println!(
        "{:<13} {:>4} {:>12} {:>12} {:>10} {:>12} {:>12}",
        "op", "n", "medseal ms", "rabe ms", "rabe/ours", "floor ms", "ours/floor"
    );
    for r in &rows {
        let (floor, over) = match r.floor_ms {
            Some(f) => (format!("{f:.3}"), format!("{:.2}x", r.medseal_ms / f)),
            None => ("-".into(), "-".into()),
        };
        println!(
            "{:<13} {:>4} {:>12.3} {:>12.3} {:>9.1}x {:>12} {:>12}",
            r.op, r.n, r.medseal_ms, r.rabe_ms, r.ratio, floor, over
        );
    }
    println!(
        "ciphertext at n = 50: {ct_bytes} bytes + policy text ({:.1} bytes per attribute)",
        ct_bytes as f64 / 50.0
    );
    if json {
        // Through `Value`, whose object keys are sorted.
        println!("{}", serde_json::to_value(&rows).unwrap());
    }
}
