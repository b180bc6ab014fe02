//! `medseal`: the command-line tool over [`medseal::Vault`].
//!
//! ```text
//! cargo build --release --example medseal      # once, in the checkout
//! target/release/examples/medseal [--dir DIR] [--json] <command>
//! ```
//!
//! DIR defaults to `$MEDSEAL_DIR`, else `./medseal-data` (in the current directory: keep
//! it outside the repository). Backends come from
//! `<DIR>/medseal.json` and the `MEDSEAL_*` variables (embedded store and chain by
//! default). Exit codes: 0 ok, 1 other error, 2 usage (malformed policies and keywords
//! included), 3 access denied (or a wrong passphrase), 4 not found, 5 tampering
//! detected, 130 interrupted (Ctrl-C during `put` or `import`). With `--json`, stdout carries exactly one JSON document (the
//! result, or `{"error": {"kind", "message"}}`).
//!
//! The authority's key (`DIR/authority.key`) is sealed under a passphrase: the commands
//! that use it ask for it on the terminal, or read `MEDSEAL_AUTHORITY_PASSPHRASE` (for
//! scripts and tests: other processes of the same user can read a process's environment).
//! A wrong passphrase exits with code 3. A member key can be sealed the same way
//! (`medseal protect NAME`, `medseal authority keygen NAME --protect`): commands that
//! load it ask for its passphrase, or read `MEDSEAL_MEMBER_PASSPHRASE`.
//!
//! Every command run as a member (`--as`) first completes that member's put if one was
//! interrupted after its intent was saved, and says so on stderr.
#![allow(
    clippy::print_stdout,
    clippy::print_stderr,
    missing_docs,
    unreachable_pub
)]

mod access;
mod authority;
mod car;
mod custody;
mod fail;
#[path = "../support/gas.rs"]
mod gas;
mod import;
mod local;
mod records;
mod registry;
mod report;
mod show;
mod upkeep;
mod vocab;

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use medseal::RecordId;

use crate::access::Action;
use crate::fail::{CliResult, EXIT_USAGE, Failure};
use crate::report::Report;

#[derive(Parser, Debug)]
#[command(
    name = "medseal",
    version,
    about = "Encrypted, searchable, chain-audited medical records",
    after_help = "Exit codes: 0 ok, 1 error, 2 usage, 3 access denied (a wrong passphrase included), 4 not found, 5 tampering detected, 130 interrupted (Ctrl-C)."
)]
pub struct Cli {
    /// Data directory [default: $MEDSEAL_DIR, else ./medseal-data]
    #[arg(long, global = true, value_name = "DIR")]
    dir: Option<PathBuf>,
    /// Print exactly one JSON document on stdout
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Create the data directory (and medseal.json when backends are given)
    Init(authority::InitArgs),
    /// Attribute authority: set up, issue member keys
    #[command(subcommand)]
    Authority(AuthorityCommand),
    /// The members the registry on chain lists (status, validity, who registered them),
    /// and the keys in DIR/members it does not
    Members,
    /// Seal a member's plain key (DIR/members/NAME.key) under a new passphrase, in place;
    /// commands run as the member then ask for it (or read MEDSEAL_MEMBER_PASSPHRASE)
    Protect {
        /// Member name (a key in DIR/members)
        name: String,
    },
    /// Store a record
    Put(records::PutArgs),
    /// Import an archive (a directory or a manifest) in bulk, or a CAR file into the store
    #[command(after_help = import::HELP)]
    Import(import::ImportArgs),
    /// Write records (with their owners' search index) to a CAR file for another store
    #[command(after_help = car::EXPORT_HELP)]
    Export(car::ExportArgs),
    /// Find records by keyword (`icd10:I10`, `term:...`)
    Search {
        #[command(flatten)]
        actor: Actor,
        /// The keyword, `type:value`
        keyword: String,
    },
    /// Open a record; with --out, save its attachments
    Get(records::GetArgs),
    /// Share a record with a member (owner only)
    Share {
        #[command(flatten)]
        actor: Actor,
        #[arg(value_parser = parse_record)]
        record: RecordId,
        /// Member name or 0x address
        #[arg(long, value_name = "MEMBER")]
        with: String,
    },
    /// Revoke a member's access (owner only)
    Revoke {
        #[command(flatten)]
        actor: Actor,
        #[arg(value_parser = parse_record)]
        record: RecordId,
        /// Member name or 0x address
        #[arg(long, value_name = "MEMBER")]
        from: String,
    },
    /// Ask for access to a record (its patient answers, or its owner if it has none)
    Request {
        #[command(flatten)]
        actor: Actor,
        #[arg(value_parser = parse_record)]
        record: RecordId,
    },
    /// Re-wrap the key capsules of my records at the current attribute versions (after
    /// `authority revoke`), so revoked keys cannot open them either
    Rewrap(Actor),
    /// Pending access requests I answer (my records, and the records about me)
    Requests(Actor),
    /// Approve or deny a pending access request (the record's patient, or its owner)
    Answer(access::AnswerArgs),
    /// My records and the records shared with me (--about: and those about me, as patient)
    Records(records::RecordsArgs),
    /// A record's audit trail
    Audit {
        #[arg(value_parser = parse_record)]
        record: RecordId,
    },
    /// Complete the member's put if one was interrupted (every command run as the
    /// member does this first)
    Recover(Actor),
    /// Merge each of the member's search-index partitions into one shard (`import` does
    /// this at its end): faster searches after many puts
    Compact(Actor),
    /// Remove blocks no record needs (left by interrupted puts, merged index shards,
    /// re-shared manifests) from the embedded store
    Gc(upkeep::GcArgs),
}

#[derive(Subcommand, Debug)]
pub enum AuthorityCommand {
    /// Create the attribute authority (DIR/authority.key, sealed under a new passphrase)
    /// and install its public key
    Setup {
        /// Replace an existing DIR/authority.key
        #[arg(long)]
        force: bool,
    },
    /// Issue a member key (DIR/members/NAME.key)
    Keygen(authority::KeygenArgs),
    /// Seal a plain DIR/authority.key (earlier releases) under a new passphrase, in place
    Protect,
    /// Change the passphrase of DIR/authority.key
    Passwd,
    /// Write K-of-N backup shares of the authority key, one file per holder
    Backup(custody::BackupArgs),
    /// Rebuild DIR/authority.key from K backup share files (sealed under a new passphrase)
    Restore(custody::RestoreArgs),
    /// Renew a member key: a fresh key with the same name, address and attributes and a
    /// new validity (replaces DIR/members/NAME.key atomically; a sealed key stays sealed
    /// under its passphrase)
    Renew(authority::RenewArgs),
    /// Register a member key of DIR/members on chain (keygen and renew do it themselves)
    Register(registry::RegisterArgs),
    /// Revoke a member on chain with a reason; renew the keys of DIR/members that share
    /// one of its attributes (a re-run finishes an interrupted one)
    Revoke(registry::RevokeArgs),
}

#[derive(Args, Debug)]
pub struct Actor {
    /// The acting member (a name in DIR/members)
    #[arg(id = "as", long = "as", value_name = "NAME")]
    pub name: String,
}

fn parse_record(text: &str) -> Result<RecordId, String> {
    text.trim()
        .trim_start_matches('#')
        .parse::<u64>()
        .ok()
        .filter(|&id| id > 0)
        .map(RecordId)
        .ok_or_else(|| format!("{text:?} is not a record id (a positive number, e.g. 1 or #1)"))
}

/// Where the command runs.
pub struct Ctx {
    pub dir: PathBuf,
    pub json: bool,
    /// Whether to draw progress bars.
    pub progress: bool,
}

fn data_dir(flag: Option<PathBuf>) -> PathBuf {
    flag.or_else(|| {
        std::env::var_os("MEDSEAL_DIR")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    })
    .unwrap_or_else(|| PathBuf::from("medseal-data"))
}

fn emit(text: &str) {
    let mut stdout = std::io::stdout().lock();
    // A closed pipe (`| head`) is not an error worth a panic.
    let _ = stdout.write_all(text.as_bytes());
    let _ = stdout.flush();
}

fn report(failure: &Failure, json: bool) {
    let mut stderr = std::io::stderr().lock();
    let _ = writeln!(stderr, "error: {}", show::printable(&failure.message));
    if let Some(hint) = &failure.hint {
        let _ = writeln!(stderr, "hint: {hint}");
    }
    if json {
        let doc = serde_json::json!({
            "error": { "kind": failure.kind, "message": failure.message, "hint": failure.hint }
        });
        emit(&format!("{doc}\n"));
    }
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            // Help and version are printed on stdout, and are not failures.
            if !e.use_stderr() {
                return ExitCode::SUCCESS;
            }
            if std::env::args_os().any(|a| a == "--json") {
                let rendered = e.render().to_string();
                let message = rendered
                    .lines()
                    .next()
                    .unwrap_or("invalid command line")
                    .trim_start_matches("error: ");
                let doc = serde_json::json!({ "error": { "kind": "usage", "message": message } });
                emit(&format!("{doc}\n"));
            }
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let ctx = Ctx {
        dir: data_dir(cli.dir),
        json: cli.json,
        progress: !cli.json && std::io::stderr().is_terminal(),
    };
    let actor = cli.command.actor().map(str::to_owned);
    match execute(&ctx, cli.command) {
        Ok(output) => {
            emit(&output);
            ExitCode::SUCCESS
        }
        Err(failure) => {
            let failure = failure.acting_as(actor.as_deref());
            report(&failure, ctx.json);
            ExitCode::from(failure.code)
        }
    }
}

impl Command {
    /// The member the command acts as (`--as`), if it takes one.
    fn actor(&self) -> Option<&str> {
        let actor = match self {
            Command::Put(args) => &args.actor,
            Command::Import(args) => return args.name.as_deref(),
            Command::Get(args) => &args.actor,
            Command::Export(args) => &args.actor,
            Command::Answer(args) => &args.actor,
            Command::Search { actor, .. }
            | Command::Share { actor, .. }
            | Command::Revoke { actor, .. }
            | Command::Request { actor, .. }
            | Command::Requests(actor)
            | Command::Rewrap(actor)
            | Command::Recover(actor)
            | Command::Compact(actor) => actor,
            Command::Records(args) => &args.actor,
            Command::Init(_)
            | Command::Authority(_)
            | Command::Members
            | Command::Protect { .. }
            | Command::Audit { .. }
            | Command::Gc(_) => {
                return None;
            }
        };
        Some(&actor.name)
    }
}

/// Runs the command; its report as JSON or text.
fn execute(ctx: &Ctx, command: Command) -> CliResult<String> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::other("runtime", format!("cannot start the runtime: {e}")))?;
    let report = runtime.block_on(run(ctx, command))?;
    if !ctx.json {
        return Ok(report.text());
    }
    let doc = report
        .json()
        .map_err(|e| Failure::other("output", format!("cannot encode the result: {e}")))?;
    Ok(format!("{doc}\n"))
}

/// Runs a command; its report.
async fn run(ctx: &Ctx, command: Command) -> CliResult<Box<dyn Report>> {
    Ok(match command {
        Command::Init(args) => Box::new(authority::init(ctx, args).await?),
        Command::Authority(AuthorityCommand::Setup { force }) => {
            Box::new(authority::setup(ctx, force).await?)
        }
        Command::Authority(AuthorityCommand::Keygen(args)) => {
            Box::new(authority::keygen(ctx, &args).await?)
        }
        Command::Authority(AuthorityCommand::Protect) => Box::new(custody::protect(ctx)?),
        Command::Authority(AuthorityCommand::Passwd) => Box::new(custody::passwd(ctx)?),
        Command::Authority(AuthorityCommand::Backup(args)) => {
            Box::new(custody::backup(ctx, &args)?)
        }
        Command::Authority(AuthorityCommand::Restore(args)) => {
            Box::new(custody::restore(ctx, &args).await?)
        }
        Command::Authority(AuthorityCommand::Renew(args)) => {
            Box::new(authority::renew(ctx, &args).await?)
        }
        Command::Authority(AuthorityCommand::Register(args)) => {
            Box::new(registry::register(ctx, &args).await?)
        }
        Command::Authority(AuthorityCommand::Revoke(args)) => {
            Box::new(registry::revoke(ctx, &args).await?)
        }
        Command::Members => Box::new(registry::members(ctx).await?),
        Command::Protect { name } => Box::new(custody::protect_member(ctx, &name)?),
        Command::Rewrap(actor) => Box::new(registry::rewrap(ctx, &actor).await?),
        Command::Put(args) => Box::new(records::put(ctx, args).await?),
        Command::Import(mut args) => match args.car.take() {
            Some(file) => Box::new(car::import(ctx, &file, args.dry_run).await?),
            None => Box::new(import::import(ctx, args).await?),
        },
        Command::Export(args) => Box::new(car::export(ctx, args).await?),
        Command::Search { actor, keyword } => {
            Box::new(records::search(ctx, &actor.name, &keyword).await?)
        }
        Command::Get(args) => Box::new(records::get(ctx, args).await?),
        Command::Records(args) => Box::new(records::records(ctx, &args).await?),
        Command::Share {
            actor,
            record,
            with,
        } => Box::new(access::share(ctx, &actor.name, record, &with, Action::Shared).await?),
        Command::Revoke {
            actor,
            record,
            from,
        } => Box::new(access::share(ctx, &actor.name, record, &from, Action::Revoked).await?),
        Command::Request { actor, record } => {
            Box::new(access::request(ctx, &actor.name, record).await?)
        }
        Command::Requests(actor) => Box::new(access::requests(ctx, &actor.name).await?),
        Command::Answer(args) => Box::new(access::answer(ctx, args).await?),
        Command::Audit { record } => Box::new(access::audit(ctx, record).await?),
        Command::Recover(actor) => Box::new(upkeep::recover(ctx, &actor).await?),
        Command::Compact(actor) => Box::new(upkeep::compact(ctx, &actor).await?),
        Command::Gc(args) => Box::new(upkeep::gc(ctx, &args).await?),
    })
}
