//! The main job on embedded defaults: an attribute authority issues keys, a doctor seals
//! records under policies, and each reader gets exactly what the policy allows.
//! Exits non-zero if any step does not behave as stated.
#![allow(clippy::print_stdout, clippy::print_stderr, missing_docs)]

use medseal::abe::{AttributeSet, Error, Fame, Policy, Scheme, envelope};
use rand_core::OsRng;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (pk, msk) = Fame::setup(&mut OsRng);
    println!("authority: set up FAME on BLS12-381");

    let people = [
        (
            "dr. ada (cardiology doctor)",
            vec!["role:doctor", "dept:cardiology"],
        ),
        (
            "sam (cardiology nurse)",
            vec!["role:nurse", "dept:cardiology"],
        ),
        ("rui (researcher)", vec!["role:researcher", "level=2"]),
    ];
    let mut keys = Vec::new();
    for (who, attrs) in &people {
        keys.push(Fame::keygen(
            &pk,
            &msk,
            &AttributeSet::parse(attrs)?,
            &mut OsRng,
        )?);
        println!("authority: issued a key to {who} for {attrs:?}");
    }

    let records = [
        (
            "ECG report",
            "role:doctor and dept:cardiology",
            [true, false, false],
        ),
        (
            "ward vitals",
            "(role:doctor or role:nurse) and dept:cardiology",
            [true, true, false],
        ),
        (
            "anonymised cohort",
            "role:researcher or (role:doctor and dept:cardiology)",
            [true, false, true],
        ),
    ];
    let mut failures = 0;
    for (name, text, expected) in &records {
        let policy: Policy = text.parse()?;
        let body = format!("{name}: contents");
        let sealed =
            envelope::seal::<Fame, _>(&pk, &policy, name.as_bytes(), body.as_bytes(), &mut OsRng)?;
        println!(
            "\ndoctor: sealed '{name}' under `{policy}` ({} bytes)",
            sealed.len()
        );
        for ((who, _), (key, allowed)) in people.iter().zip(keys.iter().zip(expected)) {
            let outcome = envelope::open::<Fame>(key, name.as_bytes(), &sealed);
            let ok = match (&outcome, allowed) {
                (Ok(plain), true) => plain == body.as_bytes(),
                (Err(Error::PolicyNotSatisfied), false) => true,
                _ => false,
            };
            let verdict = if outcome.is_ok() {
                "reads it"
            } else {
                "is refused"
            };
            println!(
                "  {who} {verdict}{}",
                if ok { "" } else { "  <-- UNEXPECTED" }
            );
            failures += usize::from(!ok);
        }
    }
    if failures > 0 {
        eprintln!("\n{failures} step(s) did not behave as stated");
        std::process::exit(1);
    }
    println!("\nall steps behaved as stated");
    Ok(())
}
