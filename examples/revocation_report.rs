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
//! 10^3).
//!
//! Then the same on a vault (embedded store and chain in a temporary directory, so the
//! chain's transactions and the store's writes are in the numbers): the 1,000 members are
//! registered on chain; an ICU doctor stores N records (`put_many`, 10^4; `--quick`:
//! 10^3), two thirds under ICU policies that name a bumped attribute and one third under
//! ward policies that do not; the ICU nurse is revoked (`Vault::revoke_member`: the
//! transaction that bumps the versions, the registry read and the affected members); the
//! affected members' keys are renewed and registered (`Vault::renew_member`); the doctor
//! re-wraps (`Vault::rewrap_records`), and a second re-wrap finds nothing to do. Checked
//! as it goes: the revoked key opens a record before the re-wrap and not after, and a
//! renewed ICU nurse opens it after.
//!
//! Single-threaded; times in a shared VM drift, ratios less.
#![allow(
    clippy::unwrap_used,
    clippy::print_stdout,
    clippy::print_stderr,
    missing_docs
)]

use std::time::Instant;

use medseal::{Config, Error, NewRecord, Vault};

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
    vault: VaultRun,
}

/// The same revocation on an embedded vault.
#[derive(serde::Serialize)]
struct VaultRun {
    members_registered: usize,
    register_all_s: f64,
    records: usize,
    records_touched: usize,
    put_s: f64,
    revoke_member_ms: f64,
    affected: usize,
    renew_and_register_s: f64,
    renew_and_register_per_key_ms: f64,
    rewrap_s: f64,
    rewrap_records_per_s: f64,
    rewrapped: usize,
    up_to_date: usize,
    second_rewrap_s: f64,
}

#[derive(serde::Serialize)]
struct Rewrap {
    capsules: usize,
    total_s: f64,
    per_capsule_ms: f64,
    capsule_bytes: usize,
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
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

    let vault_run = on_vault(&authority, &roster, quick).await;

    let report = Report {
        members: members.len(),
        bumped,
        affected: affected.len(),
        issue_all_s,
        affected_ms,
        renew_s,
        renew_per_key_ms: renew_s * 1e3 / affected.len().max(1) as f64,
        rewrap,
        vault: vault_run,
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
    let v = &report.vault;
    println!(
        "on a vault (embedded store and chain), {} records of an ICU doctor, {} under ICU policies",
        v.records, v.records_touched
    );
    println!(
        "  registering {} members:  {:.2} s (reference)",
        v.members_registered, v.register_all_s
    );
    println!("  storing the records:      {:.2} s (reference)", v.put_s);
    println!(
        "  revoke_member:            {:.1} ms (transaction, registry read, {} affected)",
        v.revoke_member_ms, v.affected
    );
    println!(
        "  renew + register:         {:.2} s ({:.2} ms per key)",
        v.renew_and_register_s, v.renew_and_register_per_key_ms
    );
    println!(
        "  rewrap_records:           {:.2} s, {} re-wrapped, {} already current ({:.1} records/s)",
        v.rewrap_s, v.rewrapped, v.up_to_date, v.rewrap_records_per_s
    );
    println!(
        "  second rewrap_records:    {:.2} s (nothing to do)",
        v.second_rewrap_s
    );
}

/// The revocation on an embedded vault: see the module documentation.
async fn on_vault(
    authority: &Authority,
    roster: &[(String, [String; 2])],
    quick: bool,
) -> VaultRun {
    let dir = tempfile::tempdir().unwrap();
    let mut vault = Vault::open_with(dir.path(), &Config::embedded())
        .await
        .unwrap();
    vault.install_authority(authority.public_key()).unwrap();
    vault.adopt_authority(authority).await.unwrap();
    let validity = Validity::months_from_now(12);
    let started = Instant::now();
    let mut members = Vec::with_capacity(roster.len());
    for (name, attrs) in roster {
        let member = authority
            .issue(
                name,
                attrs,
                validity,
                PrivateKeySigner::random(),
                &mut OsRng,
            )
            .unwrap();
        vault.register_member(authority, &member).await.unwrap();
        members.push(member);
    }
    let register_all_s = started.elapsed().as_secs_f64();

    // Member 300 is an ICU doctor; member 0 an ICU nurse; member 1 another ICU nurse.
    let doctor = &members[300];
    let n = if quick { 1_000 } else { 10_000 };
    let policies: [Policy; 3] = [
        "(role:doctor or role:nurse) and dept:icu".parse().unwrap(),
        "role:nurse and dept:icu".parse().unwrap(),
        "role:doctor and dept:ward-3".parse().unwrap(),
    ];
    let started = Instant::now();
    let records: Vec<NewRecord> = (0..n)
        .map(|i| {
            NewRecord::new(format!("ICU note {i}"), policies[i % 3].clone())
                .idempotency_key(format!("icu-note-{i}"))
        })
        .collect();
    let receipts = vault.put_many(doctor, records).await.unwrap();
    let put_s = started.elapsed().as_secs_f64();
    let probe = receipts[1].record; // under `role:nurse and dept:icu`
    let nurse = &members[0];
    assert!(vault.get(nurse, probe).await.is_ok());

    let started = Instant::now();
    let revocation = vault
        .revoke_member(authority, nurse.address(), "left the hospital")
        .await
        .unwrap();
    let revoke_member_ms = started.elapsed().as_secs_f64() * 1e3;

    let started = Instant::now();
    let mut renewed = Vec::new();
    for entry in &revocation.affected {
        let member = members
            .iter()
            .find(|m| m.address() == entry.member)
            .unwrap();
        renewed.push(
            vault
                .renew_member(authority, member, validity)
                .await
                .unwrap(),
        );
    }
    let renew_and_register_s = started.elapsed().as_secs_f64();

    let mut vault = vault;
    let started = Instant::now();
    let total = n as u64;
    vault.set_progress(std::sync::Arc::new(move |label: &str, done: u64, _| {
        if label == "rewrap" && done.is_multiple_of(1000) {
            eprintln!("  re-wrapped {done}/{total}");
        }
    }));
    let rewrap = vault.rewrap_records(doctor).await.unwrap();
    let rewrap_s = started.elapsed().as_secs_f64();
    assert!(matches!(
        vault.get(nurse, probe).await,
        Err(Error::AccessDenied { .. })
    ));
    let other_nurse = renewed
        .iter()
        .find(|m| m.address() == members[1].address())
        .unwrap();
    assert!(vault.get(other_nurse, probe).await.is_ok());
    let started = Instant::now();
    let again = vault.rewrap_records(doctor).await.unwrap();
    let second_rewrap_s = started.elapsed().as_secs_f64();
    assert!(again.rewrapped.is_empty());

    VaultRun {
        members_registered: members.len(),
        register_all_s,
        records: n,
        records_touched: n - n / 3,
        put_s,
        revoke_member_ms,
        affected: revocation.affected.len(),
        renew_and_register_s,
        renew_and_register_per_key_ms: renew_and_register_s * 1e3
            / revocation.affected.len().max(1) as f64,
        rewrap_s,
        rewrap_records_per_s: n as f64 / rewrap_s,
        rewrapped: rewrap.rewrapped.len(),
        up_to_date: rewrap.up_to_date,
        second_rewrap_s,
    }
}
