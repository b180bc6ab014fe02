//! `import`: bulk migration of an existing archive (a directory, or a manifest of records)
//! through [`medseal::Vault::put_many`], resumable without duplicates.
//!
//! Idempotency: every record of the input has a key (a digest of its name, policy,
//! keywords and attachment paths). An append-only journal per member,
//! `<DIR>/imports/<address>.jsonl`, holds the keys of the batches stored so far: before a
//! batch, a `begin` line (its keys and the chain's record count); after it, an `end` line.
//! A re-run loads the journal into a hash set (one lookup per record) and skips what it
//! holds. A `begin` without `end` is a batch a crash interrupted: the library completes it
//! if its intent was persisted ([`Vault::recover`]); the member's records created on chain
//! after the `begin` then tell whether it is stored (its records come first: every owner
//! operation completes the interrupted batch before anything else).

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use clap::{ArgGroup, Args};
use indicatif::{ProgressBar, ProgressStyle};
use medseal::abe::Policy;
use medseal::{
    Address, Attachment, BULK_BATCH, Config, Keyword, MAX_ATTACHMENTS, MAX_KEYWORDS,
    MAX_RECORD_NAME_LEN, Member, NewRecord, RecordId, Vault,
};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::Ctx;
use crate::fail::{ACTOR, CliResult, EXIT_USAGE, Failure};
use crate::gas::GasMeter;
use crate::local::{self, load_member};
use crate::report::MemberRef;
use crate::show::{self, printable};
use crate::vocab::Vocabulary;

/// The import subcommand's help after the options.
pub const HELP: &str = "\
Input: either DIR (each regular file at its top level, by file name, becomes one record
named after the file, with the file as its attachment; hidden files and subdirectories
are skipped) or --manifest FILE, one record per line as a JSON object:

  {\"name\": \"ECG 2019-03-02\", \"policy\": \"role:doctor and dept:cardiology\",
   \"keywords\": [\"icd10:I48.0\"], \"attachments\": [\"ecg/0302.pdf\",
   {\"path\": \"ecg/0302.raw\", \"content_type\": \"application/octet-stream\"}]}

\"name\" is required; \"policy\" defaults to --policy; --keyword values are added to every
record; attachment paths are relative to the manifest's folder (content type guessed
from the extension unless given). Blank lines and lines starting with # are ignored.
The whole input is checked before anything is stored; errors name the line or file.

Re-running an interrupted import (Ctrl-C, kill, node down) with the same input stores
only what is missing: a record whose name, policy, keywords and attachment paths were
imported before by the same member is skipped (the journal is imports/<address>.jsonl
in the data directory). Re-run an interrupted import before storing other records as the
same member, and run one import at a time per data directory.

--car FILE instead loads a CAR v1 file (`medseal export --car`, `ipfs dag export`) into
the configured store (DIR/blocks, or the IPFS node): every block is checked against its
CID as it streams in, and the file's roots are pinned once all of it is stored. A file
that is cut short, damaged or not a CAR v1 is refused and nothing is pinned; importing
a file twice is harmless. With --dry-run the file is only read and checked.";

#[derive(Args, Debug)]
#[command(group(ArgGroup::new("input").required(true).args(["source", "manifest", "car"])))]
pub struct ImportArgs {
    /// The acting member (a name in DIR/members); not with --car
    #[arg(
        id = "as",
        long = "as",
        value_name = "NAME",
        required_unless_present = "car",
        conflicts_with = "car"
    )]
    pub name: Option<String>,
    /// Directory whose files each become one record
    #[arg(value_name = "DIR")]
    pub source: Option<PathBuf>,
    /// Manifest: one JSON object per line (see below)
    #[arg(long, value_name = "FILE")]
    pub manifest: Option<PathBuf>,
    /// A CAR v1 file (from `medseal export --car` or `ipfs dag export`): its blocks go into
    /// the configured store, each verified against its CID, and its roots are pinned
    #[arg(long, value_name = "FILE", conflicts_with_all = ["policy", "keywords"])]
    pub car: Option<PathBuf>,
    /// Access policy of every record (a manifest line's "policy" wins)
    #[arg(long, value_name = "POLICY")]
    pub policy: Option<String>,
    /// Search keyword added to every record, e.g. icd10:I10 (repeatable)
    #[arg(long = "keyword", value_name = "KEYWORD")]
    pub keywords: Vec<String>,
    /// Check the input and count what would be imported; store nothing
    #[arg(long)]
    pub dry_run: bool,
}

/// A record of the input, checked.
struct Planned {
    name: String,
    policy: Policy,
    keywords: Vec<Keyword>,
    /// Name, content type and path of each attachment.
    attachments: Vec<(String, String, PathBuf)>,
    bytes: u64,
    /// Identity of the record for re-runs.
    key: String,
}

impl Planned {
    fn new_record(&self) -> NewRecord {
        let mut record = NewRecord::new(self.name.clone(), self.policy.clone())
            .keywords(self.keywords.iter().cloned());
        for (name, content_type, path) in &self.attachments {
            record = record.attach(Attachment::file(
                name.clone(),
                content_type.clone(),
                path.clone(),
            ));
        }
        record
    }
}

/// Builds a record and its key; `place` names the file or line in errors.
struct Builder<'a> {
    place: String,
    defaults: &'a Defaults,
}

/// What the options give every record.
struct Defaults {
    policy: Option<(String, Policy)>,
    keywords: Vec<Keyword>,
}

/// `failure` with `place` in front of its message.
fn at(place: &str, mut failure: Failure) -> Failure {
    failure.message = format!("{place}: {}", failure.message);
    failure
}

fn check_name(what: &str, name: &str) -> CliResult<()> {
    if name.trim().is_empty() {
        return Err(Failure::invalid_input(format!("empty {what}")));
    }
    if name.len() > MAX_RECORD_NAME_LEN {
        return Err(Failure::invalid_input(format!(
            "{what} longer than {MAX_RECORD_NAME_LEN} bytes"
        )));
    }
    if name.chars().any(char::is_control) {
        return Err(Failure::invalid_input(format!(
            "{what} {:?} contains control characters",
            printable(name)
        )));
    }
    Ok(())
}

fn parse_policy(text: &str) -> CliResult<Policy> {
    Ok(text.parse::<Policy>().map_err(medseal::Error::from)?)
}

fn parse_keyword(text: &str) -> CliResult<Keyword> {
    Ok(Keyword::parse(text).map_err(medseal::Error::from)?)
}

impl Builder<'_> {
    fn fail(&self, failure: Failure) -> Failure {
        at(&self.place, failure)
    }

    fn record(
        &self,
        name: String,
        policy: Option<(String, Policy)>,
        extra_keywords: &[String],
        attachments: Vec<(PathBuf, Option<String>)>,
    ) -> CliResult<Planned> {
        check_name("record name", &name).map_err(|f| self.fail(f))?;
        let (_, policy) = match policy.or_else(|| self.defaults.policy.clone()) {
            Some(p) => p,
            None => {
                return Err(self.fail(
                    Failure::new(EXIT_USAGE, "invalid_policy", "no policy")
                        .hint("give the record a \"policy\", or pass --policy"),
                ));
            }
        };
        let mut keywords = self.defaults.keywords.clone();
        for k in extra_keywords {
            keywords.push(parse_keyword(k).map_err(|f| self.fail(f))?);
        }
        let mut texts: Vec<&str> = keywords.iter().map(Keyword::as_str).collect();
        texts.sort_unstable();
        texts.dedup();
        if texts.len() > MAX_KEYWORDS || attachments.len() > MAX_ATTACHMENTS {
            return Err(self.fail(Failure::invalid_input(format!(
                "at most {MAX_KEYWORDS} keywords and {MAX_ATTACHMENTS} attachments per record"
            ))));
        }
        let mut planned = Vec::with_capacity(attachments.len());
        let mut bytes = 0;
        let mut hasher = Sha256::new();
        for (path, content_type) in attachments {
            let size = match std::fs::metadata(&path) {
                Ok(m) if m.is_file() => m.len(),
                Ok(_) => {
                    let message = format!("{}: not a regular file", path.display());
                    return Err(self.fail(Failure::invalid_input(message)));
                }
                Err(e) => return Err(self.fail(Failure::io(&path, &e))),
            };
            bytes += size;
            let canonical =
                std::fs::canonicalize(&path).map_err(|e| self.fail(Failure::io(&path, &e)))?;
            let file_name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| path.display().to_string());
            check_name("attachment name", &file_name).map_err(|f| self.fail(f))?;
            let content_type =
                content_type.unwrap_or_else(|| show::guess_content_type(&path).to_owned());
            check_name("content type", &content_type).map_err(|f| self.fail(f))?;
            hasher.update(
                serde_json::json!([canonical.to_string_lossy(), content_type])
                    .to_string()
                    .as_bytes(),
            );
            planned.push((file_name, content_type, path));
        }
        hasher.update(serde_json::json!([name, policy.to_string(), texts]).to_string());
        let key = hex::encode(&hasher.finalize()[..16]);
        Ok(Planned {
            name,
            policy,
            keywords,
            attachments: planned,
            bytes,
            key,
        })
    }
}

/// The records of a directory: its top-level regular files, by name. Also returns how
/// many entries were skipped (subdirectories and other non-files).
fn plan_directory(dir: &Path, defaults: &Defaults) -> CliResult<(Vec<Planned>, usize)> {
    if defaults.policy.is_none() {
        return Err(Failure::new(
            EXIT_USAGE,
            "usage",
            "importing a directory needs --policy",
        ));
    }
    let entries = std::fs::read_dir(dir).map_err(|e| Failure::io(dir, &e))?;
    let mut files = Vec::new();
    let mut skipped = 0;
    for entry in entries {
        let entry = entry.map_err(|e| Failure::io(dir, &e))?;
        let name = entry.file_name();
        if name.to_string_lossy().starts_with('.') {
            continue;
        }
        let path = entry.path();
        match std::fs::metadata(&path) {
            Ok(m) if m.is_file() => files.push((name, path)),
            Ok(_) => skipped += 1,
            Err(e) => return Err(Failure::io(&path, &e)),
        }
    }
    files.sort();
    let mut planned = Vec::with_capacity(files.len());
    for (name, path) in files {
        let builder = Builder {
            place: path.display().to_string(),
            defaults,
        };
        let name = name.to_string_lossy().into_owned();
        planned.push(builder.record(name, None, &[], vec![(path, None)])?);
    }
    Ok((planned, skipped))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Line {
    name: String,
    #[serde(default)]
    policy: Option<String>,
    #[serde(default)]
    keywords: Vec<String>,
    #[serde(default)]
    attachments: Vec<LineAttachment>,
}

/// `"path"` or `{"path": …, "content_type": …}`.
#[derive(Deserialize)]
#[serde(try_from = "serde_json::Value")]
struct LineAttachment {
    path: PathBuf,
    content_type: Option<String>,
}

impl TryFrom<serde_json::Value> for LineAttachment {
    type Error = String;

    fn try_from(value: serde_json::Value) -> Result<Self, String> {
        use serde_json::Value;
        let text = |v: &Value, what: &str| match v {
            Value::String(s) if !s.is_empty() => Ok(s.clone()),
            _ => Err(format!(
                "attachment {what} must be a non-empty string, not {v}"
            )),
        };
        match &value {
            Value::String(_) => Ok(Self {
                path: text(&value, "path")?.into(),
                content_type: None,
            }),
            Value::Object(fields) => {
                if let Some(other) = fields
                    .keys()
                    .find(|k| !["path", "content_type"].contains(&k.as_str()))
                {
                    return Err(format!(
                        "unknown attachment field `{other}`, expected `path` or `content_type`"
                    ));
                }
                let path = fields
                    .get("path")
                    .ok_or("an attachment object needs a `path`")?;
                let content_type = match fields.get("content_type") {
                    Some(v) => Some(text(v, "content_type")?),
                    None => None,
                };
                Ok(Self {
                    path: text(path, "path")?.into(),
                    content_type,
                })
            }
            other => Err(format!(
                "an attachment is a path or {{\"path\": …, \"content_type\": …}}, not {other}"
            )),
        }
    }
}

/// The records of a manifest, one JSON object per line.
fn plan_manifest(manifest: &Path, defaults: &Defaults) -> CliResult<Vec<Planned>> {
    let file = File::open(manifest).map_err(|e| Failure::io(manifest, &e))?;
    let base = manifest
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut planned = Vec::new();
    let mut policies: HashMap<String, Policy> = HashMap::new();
    let mut lines_of: HashMap<String, usize> = HashMap::new();
    for (index, line) in BufReader::new(file).lines().enumerate() {
        let number = index + 1;
        let place = format!("{} line {number}", manifest.display());
        let line = line.map_err(|e| at(&place, Failure::io(manifest, &e)))?;
        let text = line.trim();
        if text.is_empty() || text.starts_with('#') {
            continue;
        }
        let line: Line = serde_json::from_str(text).map_err(|e| {
            at(&place, Failure::invalid_input(e.to_string())).hint(
                "each line is a JSON object: {\"name\": …, \"policy\": …, \"keywords\": […], \
                 \"attachments\": [\"path\", …]} (see `medseal import --help`)",
            )
        })?;
        let builder = Builder {
            place: place.clone(),
            defaults,
        };
        let policy = match line.policy {
            Some(text) => {
                let policy = match policies.get(&text) {
                    Some(p) => p.clone(),
                    None => {
                        let p = parse_policy(&text).map_err(|f| at(&place, f))?;
                        policies.insert(text.clone(), p.clone());
                        p
                    }
                };
                Some((text, policy))
            }
            None => None,
        };
        let attachments = line
            .attachments
            .into_iter()
            .map(|a| (base.join(a.path), a.content_type))
            .collect();
        let record = builder.record(line.name, policy, &line.keywords, attachments)?;
        if let Some(first) = lines_of.insert(record.key.clone(), number) {
            return Err(Failure::invalid_input(format!(
                "{place}: the same record as line {first} (name, policy, keywords and \
                 attachments)"
            )));
        }
        planned.push(record);
    }
    Ok(planned)
}

/// The member's import journal: keys of the records stored, and the batch under way.
struct Journal {
    path: PathBuf,
    done: HashSet<String>,
    /// A batch begun and not ended: its keys and the chain's record count before it.
    open: Option<(Vec<String>, u64)>,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Entry {
    /// A batch is about to be stored.
    Begin {
        keys: Vec<String>,
        chain_records_before: u64,
    },
    /// The batch begun last is stored.
    End,
    /// The batch begun last was not stored (it will be imported again).
    Abandoned,
}

impl Journal {
    fn path(dir: &Path, member: Address) -> PathBuf {
        dir.join("imports").join(format!("{member}.jsonl"))
    }

    fn load(path: PathBuf) -> CliResult<Self> {
        let mut journal = Self {
            path,
            done: HashSet::new(),
            open: None,
        };
        let io = |e: std::io::Error| Failure::io(&journal.path, &e);
        let mut bytes = match std::fs::read(&journal.path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(journal),
            Err(e) => return Err(io(e)),
        };
        // A line without its newline was torn by a crash while it was appended: it never
        // took effect (its append did not return). Cut it off, so that the next append
        // starts a line of its own.
        if bytes.last().is_some_and(|&b| b != b'\n') {
            let whole = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
            bytes.truncate(whole);
            let file = std::fs::OpenOptions::new()
                .write(true)
                .open(&journal.path)
                .map_err(io)?;
            file.set_len(whole as u64).map_err(io)?;
            file.sync_data().map_err(io)?;
        }
        let text = String::from_utf8_lossy(&bytes);
        for (index, line) in text.lines().enumerate() {
            let entry = match serde_json::from_str::<Entry>(line) {
                Ok(entry) => entry,
                Err(e) => {
                    let message = format!("{} line {}: {e}", journal.path.display(), index + 1);
                    return Err(Failure::other("corrupt", message));
                }
            };
            match entry {
                Entry::Begin {
                    keys,
                    chain_records_before,
                } => journal.open = Some((keys, chain_records_before)),
                Entry::End => {
                    if let Some((keys, _)) = journal.open.take() {
                        journal.done.extend(keys);
                    }
                }
                Entry::Abandoned => journal.open = None,
            }
        }
        Ok(journal)
    }

    /// Appends `entry` durably.
    fn append(&mut self, entry: &Entry) -> CliResult<()> {
        let path = &self.path;
        let io = |e: std::io::Error| Failure::io(path, &e);
        let folder = path.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(folder).map_err(io)?;
        let created = !path.exists();
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(io)?;
        let mut line = serde_json::to_string(entry)
            .map_err(|e| Failure::other("io", format!("{}: {e}", path.display())))?;
        line.push('\n');
        file.write_all(line.as_bytes()).map_err(io)?;
        file.sync_data().map_err(io)?;
        if created {
            File::open(folder).and_then(|d| d.sync_all()).map_err(io)?;
        }
        match entry {
            Entry::Begin {
                keys,
                chain_records_before,
            } => self.open = Some((keys.clone(), *chain_records_before)),
            Entry::End => {
                if let Some((keys, _)) = self.open.take() {
                    self.done.extend(keys);
                }
            }
            Entry::Abandoned => self.open = None,
        }
        Ok(())
    }

    /// Settles a batch a crash interrupted: completes it if its intent was persisted, then
    /// tells from the chain whether it is stored. Returns how many of its records are.
    async fn settle(&mut self, vault: &Vault, member: &Member) -> CliResult<usize> {
        let Some((keys, before)) = self.open.clone() else {
            return Ok(0);
        };
        vault.recover(member).await?;
        let ledger = vault.ledger();
        let count = ledger.record_count().await.map_err(medseal::Error::from)?;
        let mut found = 0;
        for id in before + 1..=count {
            if found == keys.len() {
                break;
            }
            let info = ledger
                .record(RecordId(id))
                .await
                .map_err(medseal::Error::from)?;
            if info.owner == member.address() {
                found += 1;
            }
        }
        if found == keys.len() {
            self.append(&Entry::End)?;
            Ok(found)
        } else if found == 0 {
            self.append(&Entry::Abandoned)?;
            Ok(0)
        } else {
            Err(Failure::other(
                "import_journal",
                format!(
                    "cannot tell whether the interrupted batch of {} records was stored: {found} \
                     records of this member were created since it began",
                    keys.len()
                ),
            )
            .hint(format!(
                "check `medseal records --as {ACTOR}`; {} holds the import journal",
                self.path.display()
            )))
        }
    }
}

#[derive(Serialize)]
struct ImportedRecord {
    record: u64,
    name: String,
}

#[derive(Serialize)]
pub struct Imported {
    member: MemberRef,
    source: String,
    /// Records in the input.
    total: usize,
    /// Stored by this run.
    imported: usize,
    /// Stored by an earlier run (skipped).
    already_imported: usize,
    /// Top-level directory entries that are not files.
    skipped_entries: usize,
    bytes: u64,
    seconds: f64,
    records_per_second: f64,
    gas_used: u64,
    dry_run: bool,
    /// The compaction of the member's search index at the end (none if the input is
    /// empty, or it failed: see the warning).
    index: Option<crate::upkeep::IndexCompaction>,
    records: Vec<ImportedRecord>,
}

impl Imported {
    fn summary(&self) -> String {
        let (n, earlier) = (self.imported, self.already_imported);
        let verb = if self.dry_run {
            "would import"
        } else {
            "imported"
        };
        let mut line = format!("{verb} {n} record(s) ({earlier} already imported)");
        if !self.dry_run {
            line.push_str(&format!(
                " in {:.1} s, {:.1} records/s, gas {}",
                self.seconds, self.records_per_second, self.gas_used
            ));
        }
        line
    }
}

/// `a-b, c` for sorted ids.
fn ranges(ids: impl Iterator<Item = u64>) -> String {
    let mut out: Vec<String> = Vec::new();
    let mut run: Option<(u64, u64)> = None;
    let flush = |out: &mut Vec<String>, (a, b): (u64, u64)| {
        out.push(if a == b {
            a.to_string()
        } else {
            format!("{a}-{b}")
        });
    };
    for id in ids {
        run = match run {
            Some((a, b)) if id == b + 1 => Some((a, id)),
            Some(r) => {
                flush(&mut out, r);
                Some((id, id))
            }
            None => Some((id, id)),
        };
    }
    if let Some(r) = run {
        flush(&mut out, r);
    }
    out.join(", ")
}

impl fmt::Display for Imported {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{} for {} from {}",
            self.summary(),
            self.member.short(),
            printable(&self.source)
        )?;
        writeln!(
            f,
            "  input: {} record(s), {}",
            self.total,
            show::size(self.bytes)
        )?;
        if self.skipped_entries > 0 {
            writeln!(
                f,
                "  skipped {} directory entries that are not files (use --manifest for nested archives)",
                self.skipped_entries
            )?;
        }
        if let Some(index) = &self.index {
            writeln!(f, "  {}", index.line())?;
        }
        if !self.records.is_empty() {
            let ids = self.records.iter().map(|r| r.record);
            writeln!(f, "  records: {}", ranges(ids))?;
        }
        Ok(())
    }
}

/// Opens the vault with its ledger behind a gas meter.
async fn open_metered(ctx: &Ctx, gas: &Arc<AtomicU64>) -> CliResult<Vault> {
    local::existing_dir(&ctx.dir)?;
    let config = Config::load(&ctx.dir)?;
    let (store, ledger) = config.open_backends(&ctx.dir).await?;
    let ledger = Arc::new(GasMeter {
        inner: ledger,
        gas: Arc::clone(gas),
        reads: Arc::default(),
    });
    Ok(Vault::with_backends(&ctx.dir, store, ledger)?)
}

fn progress_bar(enabled: bool, len: u64) -> ProgressBar {
    if !enabled {
        return ProgressBar::hidden();
    }
    let style = ProgressStyle::with_template(
        "importing [{elapsed_precise}] [{bar:30}] {pos}/{len} records  {per_sec}  ETA {eta}",
    )
    .map(|s| s.progress_chars("=> "))
    .unwrap_or_else(|_| ProgressStyle::default_bar());
    let bar = ProgressBar::new(len).with_style(style);
    bar.enable_steady_tick(Duration::from_millis(250));
    bar
}

pub async fn import(ctx: &Ctx, args: ImportArgs) -> CliResult<Imported> {
    // Everything is checked before anything is stored.
    let policy = match &args.policy {
        Some(text) => Some((text.clone(), parse_policy(text)?)),
        None => None,
    };
    let keywords = args
        .keywords
        .iter()
        .map(|k| parse_keyword(k))
        .collect::<CliResult<_>>()?;
    let defaults = Defaults { policy, keywords };
    let (planned, skipped_entries, source) = match (&args.source, &args.manifest) {
        (_, Some(manifest)) => (
            plan_manifest(manifest, &defaults)?,
            0,
            manifest.display().to_string(),
        ),
        (Some(dir), None) => {
            let (planned, skipped) = plan_directory(dir, &defaults)?;
            (planned, skipped, dir.display().to_string())
        }
        (None, None) => {
            return Err(Failure::new(
                EXIT_USAGE,
                "usage",
                "give a directory, --manifest FILE or --car FILE",
            ));
        }
    };
    if planned.is_empty() {
        return Err(Failure::invalid_input(format!(
            "{source}: nothing to import"
        )));
    }
    local::existing_dir(&ctx.dir)?;
    let name = args
        .name
        .as_deref()
        .ok_or_else(|| Failure::new(EXIT_USAGE, "usage", "give the acting member with --as"))?;
    let member = load_member(&ctx.dir, name)?;
    let vocabulary = Vocabulary::load(&ctx.dir);
    let mut policies: Vec<&Policy> = planned.iter().map(|p| &p.policy).collect();
    policies.sort_by_cached_key(|p| p.to_string());
    policies.dedup_by_key(|p| p.to_string());
    for policy in policies {
        vocabulary.warn(policy);
    }
    let mut journal = Journal::load(Journal::path(&ctx.dir, member.address()))?;
    let mut report = Imported {
        member: MemberRef::from(&member),
        source,
        total: planned.len(),
        imported: 0,
        already_imported: 0,
        skipped_entries,
        bytes: planned.iter().map(|p| p.bytes).sum(),
        seconds: 0.0,
        records_per_second: 0.0,
        gas_used: 0,
        dry_run: args.dry_run,
        index: None,
        records: Vec::new(),
    };
    if args.dry_run {
        // A batch a crash interrupted counts as not imported (the real run settles it).
        let earlier = planned
            .iter()
            .filter(|p| journal.done.contains(&p.key))
            .count();
        report.already_imported = earlier;
        report.imported = planned.len() - earlier;
        eprintln!("{}", report.summary());
        return Ok(report);
    }

    let gas = Arc::new(AtomicU64::new(0));
    let mut vault = open_metered(ctx, &gas).await?;
    journal.settle(&vault, &member).await?;
    let todo: Vec<&Planned> = planned
        .iter()
        .filter(|p| !journal.done.contains(&p.key))
        .collect();
    report.already_imported = planned.len() - todo.len();
    let bar = progress_bar(ctx.progress, todo.len() as u64);
    let started = Instant::now();
    // One listener for the whole run, so that Ctrl-C between batches is seen too.
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    for batch in todo.chunks(BULK_BATCH) {
        let before = vault
            .ledger()
            .record_count()
            .await
            .map_err(medseal::Error::from)?;
        journal.append(&Entry::Begin {
            keys: batch.iter().map(|p| p.key.clone()).collect(),
            chain_records_before: before,
        })?;
        let records = batch.iter().map(|p| p.new_record()).collect();
        let stored = tokio::select! {
            stored = vault.put_many(&member, records) => Some(stored),
            _ = &mut ctrl_c => None,
        };
        let receipts = match stored {
            Some(Ok(receipts)) => receipts,
            Some(Err(e)) => {
                bar.finish_and_clear();
                return Err(e.into());
            }
            None => {
                bar.finish_and_clear();
                let what = format!("the batch under way ({} records)", batch.len());
                let mut failure = crate::upkeep::interrupted(ctx, &vault, &member, &what).await;
                failure.message = format!(
                    "{} record(s) imported by this run; {}",
                    report.imported, failure.message
                );
                return Err(failure.hint(
                    "run the same import again: it completes or re-imports the batch under way \
                     and skips what is stored",
                ));
            }
        };
        journal.append(&Entry::End)?;
        for (p, receipt) in batch.iter().zip(receipts) {
            report.records.push(ImportedRecord {
                record: receipt.record.0,
                name: p.name.clone(),
            });
        }
        report.imported += batch.len();
        bar.inc(batch.len() as u64);
    }
    bar.finish_and_clear();
    if report.total > 0 {
        // Once per import (per `put_many` call it would rewrite the index each time): one
        // live shard per partition, so searches prove absence once per partition. Also
        // when this run stored nothing new: a run killed after its last batch (or during
        // its compaction) is finished by the next one, and a compacted index is left as
        // it is.
        if ctx.progress {
            eprintln!("compacting the search index ...");
        }
        match crate::upkeep::compact_index(&mut vault, &member, ctx.progress).await {
            Ok(index) => report.index = Some(index),
            Err(e) => eprintln!(
                "warning: the search index was not compacted ({e}); `medseal compact --as {}` \
                 does it later",
                member.name()
            ),
        }
        // So that the first search after the import does not fetch every new shard.
        if ctx.progress {
            eprintln!("updating the search cache ...");
        }
        if let Err(e) = vault.refresh_index_cache(member.address()).await {
            eprintln!("warning: the search cache was not updated ({e}); the next search will");
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    report.seconds = elapsed;
    report.records_per_second = if elapsed > 0.0 {
        report.imported as f64 / elapsed
    } else {
        0.0
    };
    report.gas_used = gas.load(Ordering::Relaxed);
    eprintln!("{}", report.summary());
    Ok(report)
}
