//! Records: `put`, `get`, `search`, `records`.

use std::collections::BTreeSet;
use std::fmt;
use std::io::BufWriter;
use std::path::{Path, PathBuf};

use clap::Args;
use medseal::abe::Policy;
use medseal::{
    AtomicFile, Attachment, Keyword, Member, NewRecord, OpenedRecord, PutOutcome, RecordId,
    RecordInfo, Vault,
};
use serde::Serialize;

use crate::fail::{CliResult, Failure};
use crate::local::{self, Directory, open_as};
use crate::report::{AttachmentView, MemberRef};
use crate::show::{self, Bars, printable};
use crate::vocab::Vocabulary;
use crate::{Actor, Ctx, parse_record};

#[derive(Serialize)]
pub struct Stored {
    record: u64,
    owner: MemberRef,
    /// The patient the record is about (`--for`).
    subject: Option<MemberRef>,
    /// Who may read it under break-glass (`--emergency`).
    emergency: Option<String>,
    name: String,
    manifest_cid: String,
    shard_cid: Option<String>,
    keywords: Vec<String>,
    attachments: Vec<AttachmentView>,
    /// `created`, `completed_interrupted` (an interrupted put of this record was
    /// completed: nothing new stored) or `already_stored` (the idempotency key's record).
    outcome: &'static str,
    /// Whether this put completed an interrupted put of the same record.
    completed_interrupted: bool,
    idempotency_key: Option<String>,
    /// Records of another interrupted put completed before this one.
    recovered: Vec<u64>,
    /// As the owner wrote it.
    #[serde(skip)]
    policy: String,
}

impl fmt::Display for Stored {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (record, name, owner) = (self.record, printable(&self.name), self.owner.short());
        if !self.recovered.is_empty() {
            let ids: Vec<RecordId> = self.recovered.iter().copied().map(RecordId).collect();
            writeln!(
                f,
                "first completed an earlier interrupted put: {}",
                crate::upkeep::records_phrase(&ids)
            )?;
        }
        match self.outcome {
            "completed_interrupted" => writeln!(
                f,
                "completed the interrupted put of record {record} \"{name}\" owned by {owner} \
                 (not stored twice)"
            )?,
            "already_stored" => writeln!(
                f,
                "record {record} \"{name}\" owned by {owner} was already stored under key {:?}",
                self.idempotency_key.as_deref().unwrap_or_default()
            )?,
            _ => writeln!(f, "stored record {record} \"{name}\" owned by {owner}")?,
        }
        writeln!(
            f,
            "  policy:      {}\n  manifest:    {}",
            self.policy, self.manifest_cid
        )?;
        if let Some(subject) = &self.subject {
            writeln!(
                f,
                "  patient:     {subject} (reads it and answers requests)"
            )?;
        }
        if let Some(emergency) = &self.emergency {
            writeln!(f, "  emergency:   {emergency} (break-glass, reason logged)")?;
        }
        if let Some(shard) = &self.shard_cid {
            let n = self.keywords.len();
            let plural = if n == 1 { "" } else { "s" };
            writeln!(f, "  index shard: {shard} ({n} keyword{plural})")?;
        }
        AttachmentView::write_lines(f, self.attachments.iter())
    }
}

#[derive(Args, Debug)]
pub struct PutArgs {
    #[command(flatten)]
    pub actor: Actor,
    /// Record title
    #[arg(long, value_name = "TITLE")]
    pub name: String,
    /// Access policy, e.g. "role:doctor and dept:cardiology"
    #[arg(long, value_name = "POLICY")]
    pub policy: String,
    /// Search keyword, e.g. icd10:I10 (repeatable)
    #[arg(long = "keyword", value_name = "KEYWORD")]
    pub keywords: Vec<String>,
    /// Attachment file, optionally with its content type (repeatable)
    #[arg(long = "attach", value_name = "PATH[=CONTENT_TYPE]")]
    pub attachments: Vec<String>,
    /// Names this put for retries, e.g. the source system's document id: repeating a put
    /// with the same key returns the stored record instead of storing it again (without
    /// a key, a repeated put is matched only if it was interrupted)
    #[arg(long, alias = "key", value_name = "KEY")]
    pub idempotency_key: Option<String>,
    /// The patient the record is about (member name or 0x address): they always read it,
    /// answer access requests for it and share or revoke it (consent)
    #[arg(long = "for", value_name = "PATIENT")]
    pub subject: Option<String>,
    /// Let holders of POLICY read it in an emergency (break-glass, with a logged reason);
    /// without POLICY, the conventional attribute access:emergency
    #[arg(long, value_name = "POLICY", num_args = 0..=1, default_missing_value = medseal::EMERGENCY_ATTRIBUTE)]
    pub emergency: Option<String>,
}

/// `PATH[=CONTENT_TYPE]`: an existing file wins over splitting at `=`.
fn parse_attachment(spec: &str) -> CliResult<(PathBuf, String)> {
    let typed =
        |(path, ct): &(&str, &str)| !path.is_empty() && ct.contains('/') && !ct.contains(' ');
    let (path, content_type) = match spec.rsplit_once('=').filter(typed) {
        Some((path, ct)) if !Path::new(spec).is_file() => (PathBuf::from(path), Some(ct)),
        _ => (PathBuf::from(spec), None),
    };
    match std::fs::metadata(&path) {
        Ok(m) if m.is_file() => {}
        Ok(_) => {
            let message = format!("--attach {}: not a regular file", path.display());
            return Err(Failure::invalid_input(message));
        }
        Err(e) => return Err(Failure::io(&path, &e)),
    }
    let content_type = content_type.unwrap_or_else(|| show::guess_content_type(&path));
    Ok((path, content_type.to_owned()))
}

pub async fn put(ctx: &Ctx, args: PutArgs) -> CliResult<Stored> {
    let policy: Policy = args.policy.parse().map_err(medseal::Error::from)?;
    let mut keywords = Vec::new();
    for k in &args.keywords {
        keywords.push(Keyword::parse(k).map_err(medseal::Error::from)?);
    }
    let mut record = NewRecord::new(args.name.clone(), policy.clone()).keywords(keywords.clone());
    for spec in &args.attachments {
        let (path, content_type) = parse_attachment(spec)?;
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| spec.clone());
        record = record.attach(Attachment::file(name, content_type, path));
    }
    if let Some(key) = &args.idempotency_key {
        record = record.idempotency_key(key.clone());
    }
    let subject = match &args.subject {
        Some(patient) => Some(local::resolve_member(&ctx.dir, patient)?),
        None => None,
    };
    if let Some(patient) = &subject {
        record = record.subject(patient.address);
    }
    if let Some(emergency) = &args.emergency {
        record = record.emergency(emergency.parse().map_err(medseal::Error::from)?);
    }
    // The put itself completes an interrupted put first, and reports it.
    let (mut vault, owner) = local::open_member(ctx, &args.actor.name).await?;
    Vocabulary::load(&ctx.dir).warn(&policy);
    let bars = Bars::install(&mut vault, "encrypting", ctx.progress);
    let receipt = tokio::select! {
        receipt = vault.put(&owner, record) => Some(receipt),
        _ = tokio::signal::ctrl_c() => None,
    };
    bars.finish();
    let Some(receipt) = receipt else {
        // The put's future is dropped: its temp files are gone.
        return Err(crate::upkeep::interrupted(ctx, &vault, &owner, "the record").await);
    };
    let receipt = receipt?;
    let outcome = match receipt.outcome {
        PutOutcome::CompletedInterrupted => "completed_interrupted",
        PutOutcome::AlreadyStored => "already_stored",
        _ => "created",
    };
    Ok(Stored {
        record: receipt.record.0,
        owner: MemberRef::from(&owner),
        subject,
        emergency: args.emergency,
        name: args.name,
        manifest_cid: receipt.manifest_cid.to_string(),
        shard_cid: receipt.shard_cid.map(|c| c.to_string()),
        keywords: keywords.iter().map(|k| k.as_str().to_owned()).collect(),
        attachments: AttachmentView::list(&receipt.attachments),
        outcome,
        completed_interrupted: receipt.outcome == PutOutcome::CompletedInterrupted,
        idempotency_key: args.idempotency_key,
        recovered: receipt.recovered.iter().map(|id| id.0).collect(),
        policy: args.policy,
    })
}

#[derive(Serialize)]
pub struct Found {
    /// As given.
    keyword: String,
    /// As searched (normalised: lowercase, ICD-10 codes without dots).
    normalised: String,
    hits: Vec<Hit>,
    rejected_partitions: Vec<RejectedPartition>,
    #[serde(skip)]
    searcher: String,
}

#[derive(Serialize)]
struct Hit {
    record: u64,
    owner: MemberRef,
}

/// An index partition skipped because it failed verification.
#[derive(Serialize)]
struct RejectedPartition {
    publisher: MemberRef,
    partition: String,
    epoch: u64,
    reason: String,
}

impl fmt::Display for Found {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The keyword as the user wrote it: the normalised form (`icd10:i480`) is not
        // how anyone writes a code.
        let (keyword, n) = (printable(&self.keyword), self.hits.len());
        if n == 0 {
            writeln!(
                f,
                "no records found for {keyword} that {} can search",
                self.searcher
            )?;
        } else {
            writeln!(f, "{n} record(s) for {keyword}:")?;
        }
        for hit in &self.hits {
            writeln!(f, "  record {}  owner {}", hit.record, hit.owner)?;
        }
        Ok(())
    }
}

pub async fn search(ctx: &Ctx, name: &str, text: &str) -> CliResult<Found> {
    let keyword = Keyword::parse(text).map_err(medseal::Error::from)?;
    let (vault, member) = open_as(ctx, name).await?;
    let results = vault.search(&member, &keyword).await?;
    let directory = Directory::load(&ctx.dir);
    let found = Found {
        keyword: text.trim().to_owned(),
        normalised: keyword.as_str().to_owned(),
        hits: results
            .hits
            .iter()
            .map(|h| Hit {
                record: h.record.0,
                owner: directory.member(h.owner),
            })
            .collect(),
        rejected_partitions: results
            .rejected
            .into_iter()
            .map(|r| RejectedPartition {
                publisher: directory.member(r.publisher),
                partition: hex::encode(r.partition),
                epoch: r.epoch,
                reason: r.reason,
            })
            .collect(),
        searcher: member.name().to_owned(),
    };
    // An expired key still finds what was indexed up to its last month: say why newer
    // entries may be missing.
    let now = vault.clock().now();
    match member.validity() {
        Some(v) if v.covers(now) => {}
        validity => eprintln!(
            "warning: the key of {} {}: entries indexed since are not searchable with it; \
             the authority renews it with `medseal authority renew {}`",
            member.name(),
            validity.map_or_else(
                || "predates key expiry".to_owned(),
                |v| format!("expired after {}", v.last_month())
            ),
            member.name()
        ),
    }
    // Anyone can publish a partition: one that fails verification is skipped, not fatal.
    for r in &found.rejected_partitions {
        let (publisher, epoch, reason) = (&r.publisher, r.epoch, printable(&r.reason));
        eprintln!(
            "warning: skipped an index partition of {publisher} (epoch {epoch}) that failed \
             verification: {reason}"
        );
    }
    Ok(found)
}

#[derive(Serialize)]
pub struct Opened {
    /// The break-glass reason logged (`--emergency`).
    emergency_reason: Option<String>,
    record: u64,
    owner: MemberRef,
    name: String,
    policy: String,
    capsule_policy: String,
    manifest_cid: String,
    attachments: Vec<SavedAttachment>,
}

#[derive(Serialize)]
struct SavedAttachment {
    #[serde(flatten)]
    attachment: AttachmentView,
    /// Where `--out` put it.
    saved_to: Option<String>,
}

impl fmt::Display for Opened {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(reason) = &self.emergency_reason {
            writeln!(
                f,
                "!! EMERGENCY ACCESS (break-glass) logged on chain: {}",
                printable(reason)
            )?;
        }
        writeln!(f, "record {} \"{}\"", self.record, printable(&self.name))?;
        writeln!(f, "  owner:    {}", self.owner)?;
        writeln!(f, "  policy:   {}", self.policy)?;
        writeln!(f, "  wrapped:  {}", self.capsule_policy)?;
        writeln!(f, "  manifest: {}", self.manifest_cid)?;
        AttachmentView::write_lines(f, self.attachments.iter().map(|a| &a.attachment))?;
        for path in self.attachments.iter().filter_map(|a| a.saved_to.as_ref()) {
            writeln!(f, "  saved {path}")?;
        }
        Ok(())
    }
}

#[derive(Args, Debug)]
pub struct GetArgs {
    #[command(flatten)]
    pub actor: Actor,
    #[arg(value_parser = parse_record)]
    record: RecordId,
    /// Write the attachments into this directory
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Replace existing files in --out
    #[arg(long, requires = "out")]
    force: bool,
    /// Break-glass: open the record under its emergency clause, stating why (logged on
    /// chain before the record is opened, shown in the patient's audit trail)
    #[arg(long, value_name = "REASON")]
    emergency: Option<String>,
}

pub async fn get(ctx: &Ctx, args: GetArgs) -> CliResult<Opened> {
    let (mut vault, reader) = open_as(ctx, &args.actor.name).await?;
    let bars = Bars::install(&mut vault, "decrypting", ctx.progress);
    let (opened, targets) = match &args.emergency {
        // Break-glass logs before it opens (a refusal to overwrite comes after the log).
        Some(reason) => {
            let opened = vault.get_emergency(&reader, args.record, reason).await?;
            let targets = match &args.out {
                Some(out) => Some(save_targets(&opened, out, args.force)?),
                None => None,
            };
            (opened, targets)
        }
        None => {
            // Opened without logging: a refusal to overwrite must not leave a read in the
            // trail.
            let opened = vault.open_record(&reader, args.record).await?;
            let targets = match &args.out {
                Some(out) => Some(save_targets(&opened, out, args.force)?),
                None => None,
            };
            vault.log_read(&reader, &opened).await?;
            (opened, targets)
        }
    };
    let saved = match &targets {
        Some(targets) => {
            let result = save_attachments(&vault, &opened, targets, args.force).await;
            bars.finish();
            result?;
            targets.clone()
        }
        None => Vec::new(),
    };
    let mut saved = saved.into_iter();
    let attachments = AttachmentView::list(&opened.attachments).into_iter();
    let attachments = attachments
        .map(|attachment| SavedAttachment {
            attachment,
            saved_to: saved.next().map(|path| path.display().to_string()),
        })
        .collect();
    Ok(Opened {
        emergency_reason: args.emergency,
        record: opened.record.0,
        owner: Directory::load(&ctx.dir).member(opened.owner),
        name: opened.name,
        policy: opened.policy.to_string(),
        capsule_policy: opened.capsule_policy.to_string(),
        manifest_cid: opened.manifest_cid.to_string(),
        attachments,
    })
}

/// Where `--out` puts each attachment; refuses (before anything is read or logged) if
/// one exists, unless `force`.
fn save_targets(opened: &OpenedRecord, out: &Path, force: bool) -> CliResult<Vec<PathBuf>> {
    let mut used = BTreeSet::new();
    let mut targets = Vec::new();
    for (index, a) in opened.attachments.iter().enumerate() {
        let mut file_name = local::safe_file_name(&a.name, index);
        if !used.insert(file_name.clone()) {
            file_name = format!("{index}-{file_name}");
            used.insert(file_name.clone());
        }
        let dest = out.join(file_name);
        // Before any work, so that none is saved if one exists; the commit checks again.
        if !force && dest.symlink_metadata().is_ok() {
            return Err(Failure::exists(&dest));
        }
        targets.push(dest);
    }
    Ok(targets)
}

/// Decrypts every attachment, streamed, into a temporary file beside its target, then
/// moves them all into place: on any error (tampering included) no output file is left
/// behind.
async fn save_attachments(
    vault: &Vault,
    opened: &OpenedRecord,
    targets: &[PathBuf],
    force: bool,
) -> CliResult<()> {
    // Uncommitted files remove their temporary file when dropped (on any early return).
    let mut files = Vec::with_capacity(targets.len());
    for (index, (dest, info)) in targets.iter().zip(&opened.attachments).enumerate() {
        let file = AtomicFile::create(dest, true)?;
        let writer = BufWriter::with_capacity(1 << 20, file);
        let writer = vault.read_attachment(opened, index, writer).await?;
        let file = writer
            .into_inner()
            .map_err(|e| Failure::io(dest, e.error()))?;
        let metadata = file.as_file().metadata();
        let written = metadata.map_err(|e| Failure::io(dest, &e))?.len();
        if written != info.size {
            return Err(Failure::tampered(format!(
                "tampering detected: attachment {index} decrypted to {written} bytes, \
                 the manifest says {}",
                info.size
            )));
        }
        files.push(file);
    }
    for file in files {
        file.commit(force).map_err(Failure::from_commit)?;
    }
    Ok(())
}

/// A record in a listing.
#[derive(Serialize)]
struct Listed {
    record: u64,
    /// The record's name, opened with the member's key (`None` if it could not be).
    title: Option<String>,
    owner: MemberRef,
    created_at: u64,
    updated_at: u64,
    manifest_cid: String,
}

impl Listed {
    fn new(info: RecordInfo, title: Option<String>, directory: &Directory) -> Self {
        Self {
            record: info.record.0,
            title,
            owner: directory.member(info.owner),
            created_at: info.created_at,
            updated_at: info.updated_at,
            manifest_cid: info.manifest_cid,
        }
    }

    fn write_line(&self, f: &mut fmt::Formatter<'_>, with_owner: bool) -> fmt::Result {
        let (record, created) = (self.record, show::utc(self.created_at));
        write!(f, "  record {record}")?;
        if let Some(title) = &self.title {
            write!(f, "  \"{}\"", printable(title))?;
        }
        write!(f, "  created {created}")?;
        if self.updated_at != self.created_at {
            write!(f, "  updated {}", show::utc(self.updated_at))?;
        }
        if with_owner {
            write!(f, "  owner {}", self.owner)?;
        }
        writeln!(f)
    }
}

#[derive(Serialize)]
pub struct Records {
    member: MemberRef,
    owned: Vec<Listed>,
    shared_with_me: Vec<Listed>,
    /// Records about the member (as patient), with `--about`.
    #[serde(skip_serializing_if = "Option::is_none")]
    about_me: Option<Vec<Listed>>,
}

impl fmt::Display for Records {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (name, owned, shared) = (self.member.short(), &self.owned, &self.shared_with_me);
        writeln!(f, "{name} owns {} record(s)", owned.len())?;
        owned
            .iter()
            .try_for_each(|listed| listed.write_line(f, false))?;
        writeln!(f, "shared with {name}: {} record(s)", shared.len())?;
        shared
            .iter()
            .try_for_each(|listed| listed.write_line(f, true))?;
        if let Some(about) = &self.about_me {
            writeln!(f, "about {name} (patient): {} record(s)", about.len())?;
            about
                .iter()
                .try_for_each(|listed| listed.write_line(f, true))?;
        }
        Ok(())
    }
}

/// The records with their titles, as `member` may read them ([`Vault::titles`]: nothing
/// is logged). A title that cannot be opened is left out with a warning; the listing
/// itself does not fail for it.
async fn with_titles(
    vault: &Vault,
    member: &Member,
    infos: Vec<RecordInfo>,
    directory: &Directory,
) -> Vec<Listed> {
    let titles = vault.titles(member, &infos).await;
    infos
        .into_iter()
        .zip(titles)
        .map(|(info, title)| {
            let title = title
                .inspect_err(|e| {
                    let record = info.record.0;
                    let e = printable(&e.to_string());
                    eprintln!("warning: no title for record {record}: {e}");
                })
                .ok();
            Listed::new(info, title, directory)
        })
        .collect()
}

#[derive(Args, Debug)]
pub struct RecordsArgs {
    #[command(flatten)]
    pub actor: Actor,
    /// Also list the records about me (as patient)
    #[arg(long)]
    about: bool,
}

pub async fn records(ctx: &Ctx, args: &RecordsArgs) -> CliResult<Records> {
    let (vault, member) = open_as(ctx, &args.actor.name).await?;
    let own = vault.records_of(member.address()).await?;
    let shared = vault.shared_with(member.address()).await?;
    let directory = Directory::load(&ctx.dir);
    let about_me = match args.about {
        true => {
            let about = vault.records_about(member.address()).await?;
            Some(with_titles(&vault, &member, about, &directory).await)
        }
        false => None,
    };
    Ok(Records {
        member: MemberRef::from(&member),
        owned: with_titles(&vault, &member, own, &directory).await,
        shared_with_me: with_titles(&vault, &member, shared, &directory).await,
        about_me,
    })
}
