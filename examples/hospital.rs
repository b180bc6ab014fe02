//! The hospital scenario on embedded defaults (no services), told as a story.
//!
//! An attribute authority issues keys to a cardiology doctor, a cardiology nurse, a
//! researcher and a doctor from another hospital; the cardiologist stores records (a PDF
//! report and an image) under policies; each reader gets exactly what the policies allow;
//! the researcher finds records by ICD-10 code; the outside doctor asks for access and
//! gets it; the audit trail shows it all; a tampered block is caught; access is revoked.
//! Then a patient: Dr. Ada stores a report for Pat, who reads it and alone answers Dr. Lee's
//! request (Dr. Ada's approval is refused). Nurse Sam leaves: the authority revokes Sam's
//! key on chain, only Dr. Ada (who shares an attribute with Sam) renews hers, and what is
//! stored afterwards, and once re-wrapped what was stored before, is refused to Sam's key.
//! An ER doctor opens Pat's report under break-glass with a stated reason, and Pat's audit
//! trail shows it.
//!
//! Exits non-zero if any step does not behave as stated.
//!
//! ```sh
//! cargo run --release --example hospital            # in a fresh temporary directory
//! cargo run --release --example hospital -- DIR     # keep the data in DIR (must be new)
//! ```
#![allow(clippy::print_stdout, clippy::print_stderr, missing_docs)]

use std::time::Instant;

use medseal::storage::{Cid, LocalStore};
use medseal::{
    Attachment, AuditEvent, Authority, Config, Error, Keyword, Member, NewRecord, PutReceipt,
    RecordId, Vault,
};
use rand_core::OsRng;

type Failure = Box<dyn std::error::Error>;

struct Story {
    failures: usize,
}

impl Story {
    fn check(&mut self, ok: bool, what: &str) {
        if ok {
            println!("    ok: {what}");
        } else {
            println!("    UNEXPECTED: {what}");
            self.failures += 1;
        }
    }
}

fn step(text: &str) {
    println!("\n{text}");
}

/// A small but well-formed PDF document.
fn report_pdf(patient: &str, finding: &str) -> Vec<u8> {
    let text = format!("BT /F1 12 Tf 72 720 Td (Patient {patient}: {finding}) Tj ET");
    let objects = [
        "<< /Type /Catalog /Pages 2 0 R >>".to_string(),
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>".to_string(),
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R \
         /Resources << /Font << /F1 5 0 R >> >> >>"
            .to_string(),
        format!("<< /Length {} >>\nstream\n{text}\nendstream", text.len()),
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>".to_string(),
    ];
    let mut pdf = b"%PDF-1.7\n".to_vec();
    let mut offsets = Vec::new();
    for (i, body) in objects.iter().enumerate() {
        offsets.push(pdf.len());
        pdf.extend_from_slice(format!("{} 0 obj\n{body}\nendobj\n", i + 1).as_bytes());
    }
    let xref = pdf.len();
    pdf.extend_from_slice(
        format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1).as_bytes(),
    );
    for offset in offsets {
        pdf.extend_from_slice(format!("{offset:010} 00000 n \n").as_bytes());
    }
    pdf.extend_from_slice(
        format!(
            "trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n",
            objects.len() + 1
        )
        .as_bytes(),
    );
    pdf
}

/// A PNG-signed image payload of `len` bytes (an ECG strip stand-in).
fn ecg_image(len: usize) -> Vec<u8> {
    let mut image = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut x = 0x2545_f491_u32;
    image.extend((8..len).map(|_| {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        x as u8
    }));
    image
}

fn ids(records: &[RecordId]) -> String {
    records
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

fn kw(text: &str) -> Result<Keyword, Failure> {
    Ok(Keyword::parse(text)?)
}

fn denied<T>(result: &Result<T, Error>) -> bool {
    matches!(result, Err(Error::AccessDenied { .. }))
}

/// Stores a record with its keywords and attachments `(name, content type, bytes)`, and
/// says so.
async fn store(
    vault: &Vault,
    owner: &Member,
    title: &str,
    policy: &str,
    keywords: &[&str],
    attachments: &[(&str, &str, &[u8])],
) -> Result<PutReceipt, Failure> {
    let mut record = NewRecord::new(title, policy.parse()?);
    for keyword in keywords {
        record = record.keyword(kw(keyword)?);
    }
    for (name, content_type, data) in attachments {
        record = record.attach(Attachment::bytes(*name, *content_type, data.to_vec()));
    }
    let receipt = vault.put(owner, record).await?;
    println!(
        "    record {} under `{policy}`: manifest {}, {} attachment(s)",
        receipt.record,
        receipt.manifest_cid,
        receipt.attachments.len()
    );
    Ok(receipt)
}

async fn read_all(vault: &Vault, who: &Member, record: RecordId) -> Result<Vec<Vec<u8>>, Error> {
    let opened = vault.get(who, record).await?;
    let mut out = Vec::new();
    for index in 0..opened.attachments.len() {
        out.push(vault.read_attachment_bytes(&opened, index).await?);
    }
    Ok(out)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Failure> {
    let started = Instant::now();
    let temp;
    let dir = match std::env::args_os().nth(1) {
        Some(dir) => std::path::PathBuf::from(dir),
        None => {
            temp = tempfile::tempdir()?;
            temp.path().to_path_buf()
        }
    };
    if dir.join("chain.journal").exists() {
        return Err(format!(
            "{} already holds a vault; give a new directory",
            dir.display()
        )
        .into());
    }
    let mut story = Story { failures: 0 };
    let mut vault = Vault::open_with(&dir, &Config::embedded()).await?;
    println!(
        "medseal hospital scenario — data directory {}",
        dir.display()
    );
    println!("(embedded content store and embedded EVM chain: no services)");

    step("1. The attribute authority sets up and issues keys.");
    let authority = Authority::setup(&mut OsRng);
    vault.install_authority(authority.public_key())?;
    let issue = |name: &str, attrs: &[&str]| -> Result<Member, Failure> {
        let member = authority.issue(
            name,
            attrs,
            medseal::Validity::months_from_now(12),
            medseal::PrivateKeySigner::random(),
            &mut OsRng,
        )?;
        println!("    {name}: {} ({})", attrs.join(", "), member.address());
        Ok(member)
    };
    let ada = issue(
        "Dr. Ada (cardiologist)",
        &["role:doctor", "dept:cardiology"],
    )?;
    let sam = issue("Sam (cardiology nurse)", &["role:nurse", "dept:cardiology"])?;
    let rui = issue("Rui (researcher)", &["role:researcher"])?;
    let lee = issue(
        "Dr. Lee (neurologist, other hospital)",
        &["role:doctor", "dept:neurology"],
    )?;
    let pat = issue("Pat (patient)", &["role:patient"])?;
    let eve = issue(
        "Dr. Eve (emergency room)",
        &[
            "role:doctor",
            "dept:emergency",
            medseal::EMERGENCY_ATTRIBUTE,
        ],
    )?;
    // The registry's authority role goes to the authority's own chain account, which
    // registers every key it issues: records are shared with registered members only.
    vault.adopt_authority(&authority).await?;
    for member in [&ada, &sam, &rui, &lee, &pat, &eve] {
        vault.register_member(&authority, member).await?;
    }
    println!(
        "    registered on chain: {} members",
        vault.members().await?.len()
    );

    step("2. Dr. Ada stores three records (attachments are encrypted as they stream in).");
    let ecg_pdf = report_pdf("0042", "paroxysmal atrial fibrillation");
    let ecg_png = ecg_image(900_000);
    let ecg = store(
        &vault,
        &ada,
        "ECG report, patient 0042",
        "role:doctor and dept:cardiology",
        &["icd10:I48.0", "term:atrial fibrillation"],
        &[
            ("report.pdf", "application/pdf", &ecg_pdf),
            ("ecg-strip.png", "image/png", &ecg_png),
        ],
    )
    .await?;
    let vitals_pdf = report_pdf("0042", "BP 150/95, HR 112 irregular");
    let vitals = store(
        &vault,
        &ada,
        "Ward vitals, patient 0042",
        "(role:doctor or role:nurse) and dept:cardiology",
        &["icd10:I10"],
        &[("vitals.pdf", "application/pdf", &vitals_pdf)],
    )
    .await?;
    let cohort_pdf = report_pdf("cohort", "AF with hypertension, n=118 (de-identified)");
    let cohort = store(
        &vault,
        &ada,
        "AF cohort extract (de-identified)",
        "role:researcher or (role:doctor and dept:cardiology)",
        &["icd10:I48.0", "icd10:I10"],
        &[("cohort.pdf", "application/pdf", &cohort_pdf)],
    )
    .await?;
    let own = read_all(&vault, &ada, ecg.record).await?;
    story.check(
        own == [ecg_pdf.clone(), ecg_png.clone()],
        "Dr. Ada reads her ECG report and image back, byte for byte",
    );

    step("3. Sam, the nurse, reads what the policies allow and is refused the rest.");
    let sam_vitals = read_all(&vault, &sam, vitals.record).await;
    story.check(
        sam_vitals
            .as_ref()
            .is_ok_and(|v| v == std::slice::from_ref(&vitals_pdf)),
        "Sam reads the ward vitals",
    );
    story.check(
        denied(&vault.get(&sam, ecg.record).await),
        "Sam is refused the ECG report",
    );
    story.check(
        denied(&vault.get(&sam, cohort.record).await),
        "Sam is refused the cohort extract",
    );

    step("4. Rui, the researcher, searches by ICD-10 code I48.0 (atrial fibrillation).");
    let found = vault.search(&rui, &kw("icd10:I48.0")?).await?;
    println!(
        "    results (verified against the on-chain anchors): {}",
        ids(&found.records())
    );
    story.check(
        found.records() == [cohort.record] && found.rejected.is_empty(),
        "Rui finds only the record open to research",
    );
    story.check(
        read_all(&vault, &rui, cohort.record)
            .await
            .is_ok_and(|v| v == [cohort_pdf.clone()]),
        "Rui reads the cohort extract",
    );
    story.check(
        denied(&vault.get(&rui, ecg.record).await),
        "Rui is refused the ECG report",
    );
    let ada_found = vault.search(&ada, &kw("icd10:I48.0")?).await?;
    story.check(
        ada_found.records() == [ecg.record, cohort.record],
        "Dr. Ada's search for I48.0 finds both of her AF records",
    );

    step("5. Dr. Lee, from another hospital, asks for the ECG report; Dr. Ada approves.");
    story.check(
        denied(&vault.get(&lee, ecg.record).await),
        "before approval Dr. Lee is refused",
    );
    vault.request_access(&lee, ecg.record).await?;
    let pending = vault.pending_requests(&ada).await?;
    story.check(
        pending.len() == 1 && pending[0].requester == lee.address(),
        "Dr. Ada sees Dr. Lee's pending request",
    );
    vault
        .answer_request(&ada, ecg.record, lee.address(), true)
        .await?;
    println!(
        "    only the key capsule was re-wrapped (`… or id:<Dr. Lee>`); no attachment re-uploaded"
    );
    let lee_reads = read_all(&vault, &lee, ecg.record).await;
    story.check(
        lee_reads.is_ok_and(|v| v == [ecg_pdf.clone(), ecg_png.clone()]),
        "Dr. Lee now reads the ECG report and image",
    );
    story.check(
        denied(&vault.get(&lee, vitals.record).await),
        "Dr. Lee still cannot read the ward vitals",
    );

    step("6. My records and shared with me.");
    let mine = vault.records_of(ada.address()).await?;
    let names: Vec<_> = mine.iter().map(|r| r.record).collect();
    println!("    Dr. Ada's records: {}", ids(&names));
    story.check(
        names == [ecg.record, vitals.record, cohort.record],
        "Dr. Ada owns three records",
    );
    let shared: Vec<_> = vault
        .shared_with(lee.address())
        .await?
        .iter()
        .map(|r| r.record)
        .collect();
    println!("    shared with Dr. Lee: {}", ids(&shared));
    story.check(
        shared == [ecg.record],
        "the ECG report is shared with Dr. Lee",
    );

    step("7. The audit trail of the ECG report (from the chain).");
    let who = |a: medseal::Address| -> &str {
        [&ada, &sam, &rui, &lee, &pat, &eve]
            .into_iter()
            .find(|m| m.address() == a)
            .map_or("someone", |m| m.name())
    };
    let trail = vault.audit(ecg.record).await?;
    for entry in &trail {
        let line = match &entry.event {
            AuditEvent::Created { owner, .. } => format!("created by {}", who(*owner)),
            AuditEvent::Updated { .. } => "key capsule re-wrapped (manifest updated)".into(),
            AuditEvent::AccessRequested { requester, .. } => {
                format!("access requested by {}", who(*requester))
            }
            AuditEvent::Subject { subject } => format!("about {}", who(*subject)),
            AuditEvent::AccessGranted { user, .. } => format!("access granted to {}", who(*user)),
            AuditEvent::AccessRevoked { user, .. } => format!("access revoked from {}", who(*user)),
            AuditEvent::AccessDenied { user, .. } => format!("access denied to {}", who(*user)),
            AuditEvent::AccessLogged { accessor } => format!("read by {}", who(*accessor)),
            AuditEvent::EmergencyAccess { accessor, reason } => {
                format!("EMERGENCY access by {}: {reason}", who(*accessor))
            }
        };
        println!("    block {:>3}: {line}", entry.block_number);
    }
    let logged_lee = trail.iter().any(
        |e| matches!(e.event, AuditEvent::AccessLogged { accessor } if accessor == lee.address()),
    );
    story.check(logged_lee, "the trail records Dr. Lee's read");

    step("8. Someone flips one byte of a stored block of the ECG image.");
    let image_cid: Cid = ecg.attachments[1].cid.parse()?;
    let block = LocalStore::open(dir.join("blocks"))
        .await?
        .block_path(&image_cid);
    let mut bytes = std::fs::read(&block)?;
    let original = bytes.clone();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    std::fs::write(&block, &bytes)?;
    let opened = vault.get(&ada, ecg.record).await?;
    let tampered = vault.read_attachment_bytes(&opened, 1).await;
    if let Err(e) = &tampered {
        println!("    read refused: {e}");
    }
    story.check(
        tampered.as_ref().is_err_and(Error::is_tampering),
        "the tampered block is detected and nothing of it is returned",
    );
    story.check(
        vault
            .read_attachment_bytes(&opened, 0)
            .await
            .is_ok_and(|pdf| pdf == ecg_pdf),
        "the rest of the record still reads",
    );
    std::fs::write(&block, original)?;
    story.check(
        vault
            .read_attachment_bytes(&opened, 1)
            .await
            .is_ok_and(|png| png == ecg_png),
        "with the block restored from a good copy, the image reads again",
    );

    step("9. Dr. Ada revokes Dr. Lee's access.");
    vault.revoke(&ada, ecg.record, lee.address()).await?;
    println!(
        "    new record key; attachments re-encrypted; old objects unpinned; index epoch rotated"
    );
    story.check(
        denied(&vault.get(&lee, ecg.record).await),
        "Dr. Lee is refused again",
    );
    story.check(
        read_all(&vault, &ada, ecg.record)
            .await
            .is_ok_and(|v| v == [ecg_pdf, ecg_png]),
        "Dr. Ada still reads her record",
    );
    story.check(
        vault.shared_with(lee.address()).await?.is_empty(),
        "nothing is shared with Dr. Lee any more",
    );

    step("10. Dr. Ada stores an echocardiogram report for patient Pat; Pat reads it.");
    let echo_pdf = report_pdf("Pat", "mild mitral regurgitation");
    let echo = vault
        .put(
            &ada,
            NewRecord::new("Echo report", "dept:cardiology".parse()?)
                .subject(pat.address())
                .emergency(medseal::EMERGENCY_ATTRIBUTE.parse()?)
                .attach(Attachment::bytes(
                    "echo.pdf",
                    "application/pdf",
                    echo_pdf.clone(),
                )),
        )
        .await?;
    println!(
        "    record {} about Pat (break-glass allowed to `{}`)",
        echo.record,
        medseal::EMERGENCY_ATTRIBUTE
    );
    story.check(
        read_all(&vault, &pat, echo.record)
            .await
            .is_ok_and(|v| v == [echo_pdf.clone()]),
        "Pat reads the report about her",
    );
    let about: Vec<_> = vault
        .records_about(pat.address())
        .await?
        .iter()
        .map(|r| r.record)
        .collect();
    story.check(about == [echo.record], "\"records about Pat\" lists it");

    step("11. Dr. Lee asks; the request goes to Pat; Dr. Ada cannot approve; Pat approves.");
    vault.request_access(&lee, echo.record).await?;
    let to_pat = vault.pending_requests(&pat).await?;
    story.check(
        to_pat.len() == 1 && to_pat[0].requester == lee.address(),
        "Pat sees Dr. Lee's request",
    );
    story.check(
        vault.pending_requests(&ada).await?.is_empty(),
        "Dr. Ada has no request to answer",
    );
    let by_ada = vault
        .answer_request(&ada, echo.record, lee.address(), true)
        .await;
    if let Err(e) = &by_ada {
        println!("    Dr. Ada's approval refused: {e}");
    }
    story.check(
        matches!(by_ada, Err(Error::NotController { controller, .. }) if controller == pat.address()),
        "Dr. Ada's approval is refused (Pat decides)",
    );
    story.check(
        denied(&vault.get(&lee, echo.record).await),
        "Dr. Lee is still refused",
    );
    vault
        .answer_request(&pat, echo.record, lee.address(), true)
        .await?;
    story.check(
        read_all(&vault, &lee, echo.record)
            .await
            .is_ok_and(|v| v == [echo_pdf.clone()]),
        "after Pat's approval Dr. Lee reads it",
    );
    story.check(
        vault.get(&ada, echo.record).await.is_ok(),
        "Dr. Ada keeps reading her report",
    );

    step("12. Nurse Sam leaves: the authority revokes Sam's key on chain.");
    story.check(
        vault.get(&sam, vitals.record).await.is_ok(),
        "before: Sam reads the ward vitals",
    );
    let revocation = vault
        .revoke_member(&authority, sam.address(), "left the hospital")
        .await?;
    let bumped: Vec<String> = revocation
        .bumped
        .iter()
        .map(|(unit, version)| format!("{unit} -> v{version}"))
        .collect();
    println!("    attribute versions bumped: {}", bumped.join(", "));
    let affected: Vec<_> = revocation.affected.iter().map(|m| m.member).collect();
    println!(
        "    keys to renew: {}",
        affected
            .iter()
            .map(|a| who(*a))
            .collect::<Vec<_>>()
            .join(", ")
    );
    story.check(
        affected == [ada.address()],
        "only Dr. Ada (who shares dept:cardiology) needs a renewed key; the others keep theirs",
    );
    let ada = vault
        .renew_member(&authority, &ada, medseal::Validity::months_from_now(12))
        .await?;
    let later_pdf = report_pdf("0042", "BP 128/80, HR 74 regular");
    let later = store(
        &vault,
        &ada,
        "Ward vitals after discharge planning, patient 0042",
        "(role:doctor or role:nurse) and dept:cardiology",
        &["icd10:I10"],
        &[("vitals.pdf", "application/pdf", &later_pdf)],
    )
    .await?;
    story.check(
        denied(&vault.get(&sam, later.record).await),
        "Sam's old key is refused the record stored after the revocation",
    );
    story.check(
        read_all(&vault, &ada, later.record)
            .await
            .is_ok_and(|v| v == [later_pdf.clone()]),
        "Dr. Ada's renewed key reads it",
    );
    let share_with_sam = vault.share(&ada, vitals.record, sam.address()).await;
    if let Err(e) = &share_with_sam {
        println!("    sharing with Sam refused: {e}");
    }
    story.check(
        matches!(share_with_sam, Err(Error::NotAMember { .. })),
        "sharing with Sam is refused: the registry says revoked",
    );
    story.check(
        vault.get(&sam, vitals.record).await.is_ok(),
        "Sam's old key still opens the vitals stored before, until they are re-wrapped",
    );
    let rewrap = vault.rewrap_records(&ada).await?;
    println!(
        "    Dr. Ada re-wrapped the key capsules of records {} (attachments untouched)",
        ids(&rewrap.rewrapped)
    );
    story.check(
        denied(&vault.get(&sam, vitals.record).await),
        "after the re-wrap Sam is refused the old vitals too (what Sam read before stays read)",
    );
    story.check(
        read_all(&vault, &lee, echo.record)
            .await
            .is_ok_and(|v| v == [echo_pdf.clone()]),
        "Dr. Lee, untouched by the revocation, still reads the echo report Pat shared",
    );

    step("13. An ER doctor opens the report under break-glass; Pat's trail shows it.");
    let plain_read = vault.get(&eve, echo.record).await;
    story.check(
        matches!(plain_read, Err(Error::EmergencyOnly { .. })),
        "a plain read by Dr. Eve is refused: break-glass needs a reason",
    );
    let reason = "unconscious on arrival, suspected endocarditis";
    story.check(
        vault.get_emergency(&eve, echo.record, "").await.is_err(),
        "break-glass without a reason is refused",
    );
    let opened = vault.get_emergency(&eve, echo.record, reason).await?;
    story.check(
        vault
            .read_attachment_bytes(&opened, 0)
            .await
            .is_ok_and(|pdf| pdf == echo_pdf),
        "with a reason (logged on chain first) Dr. Eve reads it",
    );
    let trail = vault.audit(echo.record).await?;
    for entry in &trail {
        let line = match &entry.event {
            AuditEvent::Created { owner, .. } => format!("created by {}", who(*owner)),
            AuditEvent::Subject { subject } => format!("about {}", who(*subject)),
            AuditEvent::Updated { by, .. } => format!("key re-wrapped by {}", who(*by)),
            AuditEvent::AccessRequested {
                requester,
                approver,
            } => format!(
                "access requested by {} (to {})",
                who(*requester),
                who(*approver)
            ),
            AuditEvent::AccessGranted { user, by } => {
                format!("access granted to {} by {}", who(*user), who(*by))
            }
            AuditEvent::AccessLogged { accessor } => format!("read by {}", who(*accessor)),
            AuditEvent::EmergencyAccess { accessor, reason } => {
                format!("!! EMERGENCY ACCESS by {}: {reason}", who(*accessor))
            }
            other => format!("{other:?}"),
        };
        println!("    block {:>3}: {line}", entry.block_number);
    }
    story.check(
        trail.iter().any(|e| {
            matches!(&e.event, AuditEvent::AccessGranted { user, by }
                if *user == lee.address() && *by == pat.address())
        }),
        "the trail shows that Pat granted Dr. Lee's access",
    );
    story.check(
        trail.iter().any(|e| {
            matches!(&e.event, AuditEvent::EmergencyAccess { accessor, reason: r }
                if *accessor == eve.address() && r == reason)
        }),
        "the trail shows Dr. Eve's emergency access and its reason",
    );

    println!("\nfinished in {:.1} s", started.elapsed().as_secs_f64());
    if story.failures > 0 {
        eprintln!("{} step(s) did not behave as stated", story.failures);
        std::process::exit(1);
    }
    println!("all steps behaved as stated");
    Ok(())
}
