//! `export --car` and `import --car`: records moved between stores as CAR v1 files, the
//! format of `ipfs dag import` / `ipfs dag export` (see [`medseal::Vault::record_content`]
//! for what a file carries).

use std::fmt;
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use async_trait::async_trait;
use clap::{ArgGroup, Args};
use futures_util::StreamExt;
use indicatif::{ProgressBar, ProgressStyle};
use medseal::storage::{self, Block, BlockSink, ByteStream, Bytes, StorageError};
use medseal::{AtomicFile, RecordContent, RecordId, Vault};
use serde::Serialize;

use crate::fail::{CliResult, EXIT_NOT_FOUND, Failure};
use crate::local::{self, Directory, open_as};
use crate::report::MemberRef;
use crate::show::{self, printable};
use crate::{Actor, Ctx, parse_record};

/// The export subcommand's help after the options.
pub const EXPORT_HELP: &str = "\
The file holds what a vault on the same chain needs to read and search the records: each
record's sealed manifest and encrypted attachments, and the whole searchable index of each
record's owner (every partition capsule and live index shard). A search walks every
partition on the chain, so move every owner's records to move a whole vault (one file per
owner with --all-mine or --owner, imported one after the other).

Load the file into an IPFS node with its own importer (`ipfs dag import FILE`, which pins
every root) or into another data directory's store with `medseal import --car FILE`; a
vault configured on that store and the same chain then reads and searches the records.
Exporting decrypts no attachment and is not logged on chain; the acting member must be able
to open every record (owner, grantee, or attributes satisfying its policy).";

#[derive(Args, Debug)]
#[command(group(ArgGroup::new("what").required(true).args(["record", "owner", "all_mine"])))]
pub struct ExportArgs {
    #[command(flatten)]
    pub actor: Actor,
    /// The CAR v1 file to write
    #[arg(long, value_name = "FILE", required = true)]
    pub car: PathBuf,
    /// A record to export (repeatable)
    #[arg(long, value_name = "ID", value_parser = parse_record)]
    pub record: Vec<RecordId>,
    /// Every record of this owner (member name or 0x address)
    #[arg(long, value_name = "MEMBER")]
    pub owner: Option<String>,
    /// Every record of the acting member
    #[arg(long)]
    pub all_mine: bool,
    /// Replace FILE if it exists
    #[arg(long)]
    pub force: bool,
}

/// Counts of one kind of root in an exported file.
#[derive(Serialize)]
struct Carried {
    manifests: usize,
    attachments: usize,
    capsules: usize,
    shards: usize,
}

#[derive(Serialize)]
pub struct Exported {
    file: String,
    records: Vec<u64>,
    owners: Vec<MemberRef>,
    carried: Carried,
    roots: Vec<String>,
    bytes: u64,
}

impl fmt::Display for Exported {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let owners: Vec<String> = self.owners.iter().map(MemberRef::short).collect();
        writeln!(
            f,
            "exported {} record(s) of {} to {} ({})",
            self.records.len(),
            owners.join(", "),
            printable(&self.file),
            show::size(self.bytes)
        )?;
        let c = &self.carried;
        writeln!(
            f,
            "  {} roots: {} manifest(s), {} attachment(s), {} index capsule(s), {} index shard(s)",
            self.roots.len(),
            c.manifests,
            c.attachments,
            c.capsules,
            c.shards
        )?;
        writeln!(
            f,
            "  load it with `ipfs dag import FILE`, or `medseal import --car FILE` in another data directory"
        )
    }
}

fn byte_bar(enabled: bool, verb: &str, total: Option<u64>) -> ProgressBar {
    if !enabled {
        return ProgressBar::hidden();
    }
    let (bar, template) = match total {
        Some(total) => (
            ProgressBar::new(total),
            "{prefix} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} {eta}",
        ),
        None => (
            ProgressBar::new_spinner(),
            "{prefix} {spinner} {bytes} {bytes_per_sec}",
        ),
    };
    let style = ProgressStyle::with_template(template)
        .map(|s| s.progress_chars("=> "))
        .unwrap_or_else(|_| ProgressStyle::default_bar());
    let bar = bar.with_style(style).with_prefix(verb.to_owned());
    bar.enable_steady_tick(Duration::from_millis(250));
    bar
}

pub async fn export(ctx: &Ctx, args: ExportArgs) -> CliResult<Exported> {
    let (vault, member) = open_as(ctx, &args.actor.name).await?;
    let records: Vec<RecordId> = if !args.record.is_empty() {
        args.record.clone()
    } else {
        let owner = match &args.owner {
            Some(text) => local::resolve_member(&ctx.dir, text)?.address,
            None => member.address(),
        };
        let owned: Vec<RecordId> = vault
            .records_of(owner)
            .await?
            .into_iter()
            .map(|r| r.record)
            .collect();
        if owned.is_empty() {
            let who = Directory::load(&ctx.dir).member(owner).short();
            return Err(Failure::new(
                EXIT_NOT_FOUND,
                "no_records",
                format!("{who} owns no records: nothing to export"),
            ));
        }
        owned
    };
    // Before any work; the commit checks again.
    if !args.force && args.car.symlink_metadata().is_ok() {
        return Err(Failure::exists(&args.car));
    }
    let content = vault.record_content(&member, &records).await?;
    let bytes = write_car(ctx, &vault, &content, &args.car, args.force).await?;
    let names = Directory::load(&ctx.dir);
    Ok(Exported {
        file: args.car.display().to_string(),
        records: content.records.iter().map(|r| r.0).collect(),
        owners: content.owners.iter().map(|a| names.member(*a)).collect(),
        carried: Carried {
            manifests: content.manifests.len(),
            attachments: content.attachments.len(),
            capsules: content.capsules.len(),
            shards: content.shards.len(),
        },
        roots: content.roots().iter().map(ToString::to_string).collect(),
        bytes,
    })
}

/// Streams the CAR into a temporary file next to `dest`, then moves it into place: on any
/// error no file is left behind. Returns its size.
async fn write_car(
    ctx: &Ctx,
    vault: &Vault,
    content: &RecordContent,
    dest: &Path,
    force: bool,
) -> CliResult<u64> {
    let file = AtomicFile::create(dest, false)?;
    let mut writer = BufWriter::with_capacity(1 << 20, file);
    let bar = byte_bar(ctx.progress, "exporting", None);
    let mut stream = vault.export_car(content);
    let mut written = 0u64;
    while let Some(piece) = stream.next().await {
        let piece = match piece {
            Ok(piece) => piece,
            Err(e) => {
                bar.finish_and_clear();
                return Err(medseal::Error::from(e).into());
            }
        };
        writer
            .write_all(&piece)
            .map_err(|e| Failure::io(dest, &e))?;
        written += piece.len() as u64;
        bar.set_position(written);
    }
    bar.finish_and_clear();
    let file = writer
        .into_inner()
        .map_err(|e| Failure::io(dest, e.error()))?;
    file.commit(force).map_err(Failure::from_commit)?;
    Ok(written)
}

#[derive(Serialize)]
pub struct CarImported {
    file: String,
    blocks: u64,
    bytes: u64,
    roots: Vec<String>,
    dry_run: bool,
}

impl fmt::Display for CarImported {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (verb, pinned) = if self.dry_run {
            ("verified", "would pin")
        } else {
            ("imported", "pinned")
        };
        writeln!(
            f,
            "{verb} {} block(s) ({}) from {}; {pinned} {} root(s)",
            self.blocks,
            show::size(self.bytes),
            printable(&self.file),
            self.roots.len()
        )
    }
}

/// Drops what it is given: a dry run verifies and counts only.
struct Discard;

#[async_trait]
impl BlockSink for Discard {
    async fn put_block(&self, _block: Block) -> storage::Result<()> {
        Ok(())
    }
}

/// `path` as a stream of pieces read on a blocking thread (bounded memory), counted on
/// `bar`.
fn file_stream(path: &Path, bar: ProgressBar) -> CliResult<ByteStream> {
    let mut file = std::fs::File::open(path).map_err(|e| Failure::io(path, &e))?;
    let (tx, rx) = tokio::sync::mpsc::channel::<storage::Result<Bytes>>(4);
    let name = path.display().to_string();
    tokio::task::spawn_blocking(move || {
        loop {
            let mut piece = vec![0u8; 1 << 20];
            let item = match file.read(&mut piece) {
                Ok(0) => break,
                Ok(n) => {
                    piece.truncate(n);
                    bar.inc(n as u64);
                    Ok(Bytes::from(piece))
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => Err(StorageError::io(format!("reading {name}"), e)),
            };
            let failed = item.is_err();
            if tx.blocking_send(item).is_err() || failed {
                break;
            }
        }
    });
    Ok(Box::pin(futures_util::stream::unfold(
        rx,
        |mut rx| async move { rx.recv().await.map(|item| (item, rx)) },
    )))
}

/// A failure of a CAR import, with hints about the file rather than the store.
fn import_failure(e: medseal::Error) -> Failure {
    if e.is_tampering() {
        return Failure::tampered(e.to_string()).hint(
            "a block of the file does not hash to its CID: the file was damaged or altered; \
             nothing was pinned (export it again from the source)",
        );
    }
    e.into()
}

pub async fn import(ctx: &Ctx, path: &Path, dry_run: bool) -> CliResult<CarImported> {
    let vault = local::open(ctx).await?;
    let total = std::fs::metadata(path)
        .map_err(|e| Failure::io(path, &e))?
        .len();
    let bar = byte_bar(ctx.progress, "importing", Some(total));
    let stream = file_stream(path, bar.clone())?;
    let result = if dry_run {
        verify_only(&vault, stream).await
    } else {
        vault.import_car(stream).await
    };
    bar.finish_and_clear();
    let imported = result.map_err(import_failure)?;
    Ok(CarImported {
        file: path.display().to_string(),
        blocks: imported.blocks,
        bytes: imported.bytes,
        roots: imported.roots.iter().map(ToString::to_string).collect(),
        dry_run,
    })
}

/// Reads and verifies the whole file, storing nothing; fails as the import would if it
/// lacks blocks the store does not hold.
async fn verify_only(vault: &Vault, car: ByteStream) -> medseal::Result<storage::CarImport> {
    let imported = storage::import_car(&Discard, car).await?;
    for cid in &imported.missing {
        if !vault.store().has(cid).await? {
            return Err(medseal::Error::Storage(StorageError::InvalidCar(format!(
                "the file lacks block {cid}, which its blocks or header name and the store \
                 does not hold: it was cut short or holds partial DAGs"
            ))));
        }
    }
    Ok(imported)
}
