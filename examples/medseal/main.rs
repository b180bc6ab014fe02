//! `medseal`: the command-line tool over [`medseal::Vault`].
//!
//! ```text
//! cargo run --release --example medseal -- [--dir DIR] [--json] <command>
//! ```
//!
//! DIR defaults to `$MEDSEAL_DIR`, else `./medseal-data`. Backends come from
//! `<DIR>/medseal.json` and the `MEDSEAL_*` variables (embedded store and chain by
//! default). Exit codes: 0 ok, 1 other error, 2 usage, 3 access denied, 4 not found,
//! 5 tampering detected. With `--json`, stdout carries exactly one JSON document (the
//! result, or `{"error": {"kind", "message"}}`).
#![allow(
    clippy::print_stdout,
    clippy::print_stderr,
    missing_docs,
    unreachable_pub
)]

mod access;
mod authority;
mod commands;
mod fail;
mod local;
mod records;
mod report;
mod show;

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use medseal::RecordId;

use crate::fail::{EXIT_OTHER, EXIT_USAGE, Failure};

#[derive(Parser, Debug)]
#[command(
    name = "medseal",
    version,
    about = "Encrypted, searchable, chain-audited medical records",
    after_help = "Exit codes: 0 ok, 1 error, 2 usage, 3 access denied, 4 not found, 5 tampering detected."
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
    Init {
        /// Kubo RPC API base URL (default: embedded block store in DIR/blocks)
        #[arg(long, value_name = "URL")]
        ipfs_api: Option<String>,
        /// Ethereum JSON-RPC URL (default: embedded chain in DIR/chain.journal)
        #[arg(long, value_name = "URL")]
        eth_rpc: Option<String>,
        /// Address of a deployed MedsealRegistry on --eth-rpc
        #[arg(long, value_name = "ADDR")]
        registry: Option<String>,
    },
    /// Attribute authority: set up, issue member keys
    #[command(subcommand)]
    Authority(AuthorityCommand),
    /// List the members whose keys are in DIR/members
    Members,
    /// Store a record
    Put(PutArgs),
    /// Find records by keyword (`icd10:I10`, `term:...`)
    Search {
        #[command(flatten)]
        actor: Actor,
        /// The keyword, `type:value`
        keyword: String,
    },
    /// Open a record; with --out, save its attachments
    Get {
        #[command(flatten)]
        actor: Actor,
        #[arg(value_parser = parse_record)]
        record: RecordId,
        /// Write the attachments into this directory
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
        /// Replace existing files in --out
        #[arg(long, requires = "out")]
        force: bool,
    },
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
    /// Ask a record's owner for access
    Request {
        #[command(flatten)]
        actor: Actor,
        #[arg(value_parser = parse_record)]
        record: RecordId,
    },
    /// Pending access requests for my records
    Requests {
        #[command(flatten)]
        actor: Actor,
    },
    /// Approve or deny a pending access request (owner only)
    Answer {
        #[command(flatten)]
        actor: Actor,
        #[arg(value_parser = parse_record)]
        record: RecordId,
        /// Member name or 0x address of the requester
        #[arg(long, value_name = "MEMBER")]
        requester: String,
        /// Share the record with the requester
        #[arg(long, conflicts_with = "deny", required_unless_present = "deny")]
        approve: bool,
        /// Deny the request
        #[arg(long)]
        deny: bool,
    },
    /// My records and the records shared with me
    Records {
        #[command(flatten)]
        actor: Actor,
    },
    /// A record's audit trail
    Audit {
        #[arg(value_parser = parse_record)]
        record: RecordId,
    },
}

#[derive(Subcommand, Debug)]
pub enum AuthorityCommand {
    /// Create the attribute authority (DIR/authority.key) and install its public key
    Setup {
        /// Replace an existing DIR/authority.key
        #[arg(long)]
        force: bool,
    },
    /// Issue a member key (DIR/members/NAME.key)
    Keygen {
        /// Member name (letters, digits, `.`, `_`, `-`)
        name: String,
        /// Attribute, e.g. role:doctor, dept:cardiology, level=3 (repeatable)
        #[arg(long = "attr", value_name = "ATTR")]
        attrs: Vec<String>,
        /// Hex secret key of the member's chain account (default: a new random one;
        /// on a real chain the account must be funded)
        #[arg(long, value_name = "HEX")]
        eth_key: Option<String>,
    },
}

#[derive(Args, Debug)]
pub struct Actor {
    /// The acting member (a name in DIR/members)
    #[arg(id = "as", long = "as", value_name = "NAME")]
    pub name: String,
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
            use clap::error::ErrorKind;
            if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
                let _ = e.print();
                return ExitCode::SUCCESS;
            }
            let _ = e.print();
            if std::env::args_os().any(|a| a == "--json") {
                let rendered = e.render().to_string();
                let message = rendered
                    .lines()
                    .next()
                    .unwrap_or("invalid command line")
                    .trim_start_matches("error: ")
                    .to_owned();
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
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            report(
                &Failure::new(
                    EXIT_OTHER,
                    "runtime",
                    format!("cannot start the runtime: {e}"),
                ),
                ctx.json,
            );
            return ExitCode::from(EXIT_OTHER);
        }
    };
    let result = runtime.block_on(commands::run(&ctx, cli.command));
    let output = result.and_then(|report| {
        if !ctx.json {
            return Ok(report.text());
        }
        let doc = report.json().map_err(|e| {
            Failure::new(
                EXIT_OTHER,
                "output",
                format!("cannot encode the result: {e}"),
            )
        })?;
        Ok(format!("{doc}\n"))
    });
    match output {
        Ok(output) => {
            emit(&output);
            ExitCode::SUCCESS
        }
        Err(failure) => {
            report(&failure, ctx.json);
            ExitCode::from(failure.code)
        }
    }
}
