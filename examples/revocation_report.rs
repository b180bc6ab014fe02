//! What a revocation costs (issue 13, item 4): the authority's side in a hospital of
//! 1,000 members, and an owner re-wrapping the capsules of existing records.
//!
//! ```text
//! cargo run --release --example revocation_report -- [--quick] [--json]
//! ```
//!
//! The hospital: 300 nurses, 200 doctors, 500 other staff; 50 members in the ICU (20 of
//! the nurses and 30 of the doctors); every member holds `role:<r>` and `dept:<d>` and a
//! key valid for 12 months. An ICU nurse is revoked, which bumps `role:nurse` and
//! `dept:icu`. Reported: the time to find the members sharing a bumped attribute (from
//! their attribute lists, as the registry holds them) and to issue their renewed keys
//! (`Authority::renew_with_versions`, which also checks that the old key is this
//! authority's: one encapsulation and one decapsulation per member). Then one owner
//! re-wraps N record capsules: one FAME encapsulation of the record's key under its new
//! capsule policy each (`(role.v1:nurse and dept.v1:icu and V(now)) or id:owner`,
//! sealed with the capsule's AEAD), measured at N = 10^3 and 10^4 (`--quick`: 10^2 and
//! 10^3). Single-threaded; times in a shared VM drift, ratios less.
#![allow(
    clippy::unwrap_used,
    clippy::print_stdout,
    clippy::print_stderr,
    missing_docs
)]

use std::time::Instant;

use medseal::abe::envelope;
use medseal::abe::{Fame, Policy};
use medseal::versions::{AttributeVersions, versioned_policy};
use medseal::{Authority, Member, Month, PrivateKeySigner, Validity, id_attribute};
use rand_core::OsRng;

#[derive(serde::Serialize)]
struct Report {
    members: usize,
    bumped: Vec<String>,
    affected: usize,
    issue_all_s: f64,
    affected_ms: f64,
    renew_s: f64,
    renew_per_key_ms: f64,
    rewrap: Vec<Rewrap>,
}

#[derive(serde::Serialize)]
struct Rewrap {
    capsules: usize,
    total_s: f64,
    per_capsule_ms: f64,
    capsule_bytes: usize,
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let quick = args.iter().any(|a| a == "--quick");
    let json = args.iter().any(|a| a == "--json");
    let authority = Authority::setup(&mut OsRng);
    let validity = Validity::months_from_now(12);
    let none = AttributeVersions::new();

    // The hospital's roster (the authority holds the members it issued, as in the CLI).
    let roster: Vec<(String, [String; 2])> = (0..1000)
        .map(|i| {
            let role = match i {
                0..300 => "nurse",
                300..500 => "doctor",
                _ => ["admin", "pharmacist", "researcher", "porter"][i % 4],
            };
            let dept = match i {
                0..20 | 300..330 => "icu".to_owned(),
                _ => format!("ward-{}", i % 12),
            };
            (
                format!("member-{i}"),
                [format!("role:{role}"), format!("dept:{dept}")],
            )
        })
        .collect();
    let started = Instant::now();
    let members: Vec<Member> = roster
        .iter()
        .map(|(name, attrs)| {
            authority
                .issue_with_versions(
                    name,
                    attrs,
                    validity,
                    &none,
                    PrivateKeySigner::random(),
                    &mut OsRng,
                )
                .unwrap()
        })
        .collect();
    let issue_all_s = started.elapsed().as_secs_f64();

    // Revoke member 0, an ICU nurse.
    let revoked = &members[0];
    let bumped = authority.revocation(revoked);
    let mut versions = none.clone();
    for unit in &bumped {
        versions.set(unit, versions.get(unit).unwrap() + 1).unwrap();
    }
    let started = Instant::now();
    let affected: Vec<usize> = Authority::affected(
        members
            .iter()
            .enumerate()
            .map(|(i, m)| (i, m.own_attributes())),
        &bumped,
    )
    .unwrap()
    .into_iter()
    .filter(|&i| i != 0)
    .collect();
    let affected_ms = started.elapsed().as_secs_f64() * 1e3;
    let started = Instant::now();
    let renewed: Vec<Member> = affected
        .iter()
        .map(|&i| {
            authority
                .renew_with_versions(&members[i], validity, &versions, &mut OsRng)
                .unwrap()
        })
        .collect();
    let renew_s = started.elapsed().as_secs_f64();
    assert_eq!(renewed.len(), affected.len());

    // An owner re-wraps N capsules under the new versions.
    let owner = &members[300];
    let base: Policy = "role:nurse and dept:icu".parse().unwrap();
    let policy = Policy::or(vec![
        Policy::and(vec![
            versioned_policy(&base, &versions).unwrap(),
            Month::current_utc().clause(),
        ])
        .unwrap(),
        Policy::attribute(&id_attribute(owner.address())).unwrap(),
    ])
    .unwrap();
    let sizes: &[usize] = if quick { &[100, 1000] } else { &[1000, 10_000] };
    let dek = [7u8; 32];
    let mut rewrap = Vec::new();
    for &n in sizes {
        let started = Instant::now();
        let mut bytes = 0;
        for i in 0..n {
            let aad = (i as u64).to_be_bytes();
            let capsule =
                envelope::seal::<Fame, _>(authority.public_key(), &policy, &aad, &dek, &mut OsRng)
                    .unwrap();
            bytes = capsule.len();
        }
        let total_s = started.elapsed().as_secs_f64();
        rewrap.push(Rewrap {
            capsules: n,
            total_s,
            per_capsule_ms: total_s * 1e3 / n as f64,
            capsule_bytes: bytes,
        });
    }

    let report = Report {
        members: members.len(),
        bumped,
        affected: affected.len(),
        issue_all_s,
        affected_ms,
        renew_s,
        renew_per_key_ms: renew_s * 1e3 / affected.len().max(1) as f64,
        rewrap,
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&report).unwrap());
        return;
    }
    println!("revocation in a hospital of {} members", report.members);
    println!("  bumped attributes:        {}", report.bumped.join(", "));
    println!(
        "  issuing all {} keys:     {:.2} s (reference)",
        report.members, report.issue_all_s
    );
    println!(
        "  affected members:         {} (found in {:.2} ms)",
        report.affected, report.affected_ms
    );
    println!(
        "  renewed keys:             {:.2} s ({:.2} ms per key)",
        report.renew_s, report.renew_per_key_ms
    );
    println!("owner re-wrapping record capsules (policy: {policy})");
    println!("  capsules   total (s)   per capsule (ms)   capsule bytes");
    for r in &report.rewrap {
        println!(
            "  {:>8}   {:>9.2}   {:>16.3}   {:>13}",
            r.capsules, r.total_s, r.per_capsule_ms, r.capsule_bytes
        );
    }
}
