//! Failures of the command-line tool: an exit code, a machine-readable kind, a message
//! and, where the user can act on it, a hint.

use std::path::Path;

use medseal::Error;
use medseal::chain::LedgerError;

/// Exit code of anything not listed below.
pub const EXIT_OTHER: u8 = 1;
/// Exit code of a command-line usage error (clap's own).
pub const EXIT_USAGE: u8 = 2;
/// Exit code of a refusal: the key does not satisfy the policy, or the member does not
/// own the record.
pub const EXIT_DENIED: u8 = 3;
/// Exit code of something that does not exist: record, member, authority, data dir.
pub const EXIT_NOT_FOUND: u8 = 4;
/// Exit code of data that failed verification.
pub const EXIT_TAMPERED: u8 = 5;

/// Why a command failed.
#[derive(Debug)]
pub struct Failure {
    pub code: u8,
    pub kind: &'static str,
    pub message: String,
    pub hint: Option<String>,
}

pub type CliResult<T> = Result<T, Failure>;

impl Failure {
    pub fn new(code: u8, kind: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            kind,
            message: message.into(),
            hint: None,
        }
    }

    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// A local file operation failed.
    pub fn io(path: &Path, e: &std::io::Error) -> Self {
        Self::new(EXIT_OTHER, "io", format!("{}: {e}", path.display()))
    }

    pub fn unknown_member(name: &str, dir: &Path) -> Self {
        Self::new(
            EXIT_NOT_FOUND,
            "unknown_member",
            format!(
                "no member named {name:?} in {}",
                dir.join("members").display()
            ),
        )
        .hint(
            "`medseal members` lists the members; `medseal authority keygen NAME --attr \
             role:doctor` creates one (a member can also be given as a 0x address)",
        )
    }

    pub fn no_authority(dir: &Path) -> Self {
        Self::new(
            EXIT_NOT_FOUND,
            "no_authority",
            format!("no attribute authority in {}", dir.display()),
        )
        .hint("run `medseal authority setup` first")
    }
}

fn ledger_failure(e: LedgerError) -> Failure {
    let message = format!("chain: {e}");
    match e {
        LedgerError::UnknownRecord { record } => {
            Failure::new(EXIT_NOT_FOUND, "unknown_record", message).hint(format!(
                "no record {} exists; `medseal records --as NAME` lists a member's records",
                record.0
            ))
        }
        LedgerError::NotOwner { .. } => Failure::new(EXIT_DENIED, "not_owner", message)
            .hint("only the record's owner can do this"),
        LedgerError::NotAuthorized { .. } => Failure::new(EXIT_DENIED, "access_denied", message),
        LedgerError::AlreadyRequested { .. } => {
            Failure::new(EXIT_OTHER, "already_requested", message)
                .hint("the owner sees it in `medseal requests --as OWNER`")
        }
        LedgerError::NoPendingRequest { .. } => {
            Failure::new(EXIT_OTHER, "no_pending_request", message)
                .hint("`medseal requests --as OWNER` lists the pending requests")
        }
        LedgerError::InvalidUser { .. } => Failure::new(EXIT_OTHER, "invalid_user", message)
            .hint("the owner of a record always has access; it cannot be shared with, revoked from or requested by them"),
        LedgerError::AlreadyGranted { .. } | LedgerError::NotGranted { .. } => {
            Failure::new(EXIT_OTHER, "rejected", message)
        }
        LedgerError::NodeUnavailable { .. } | LedgerError::Transport(_) => {
            Failure::new(EXIT_OTHER, "chain_unavailable", message)
                .hint("check that the Ethereum node (eth_rpc in medseal.json or MEDSEAL_ETH_RPC) is running")
        }
        LedgerError::Config(_) => Failure::new(EXIT_OTHER, "config", message)
            .hint("check medseal.json in the data directory and the MEDSEAL_* variables"),
        _ => Failure::new(EXIT_OTHER, "chain", message),
    }
}

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        let message = e.to_string();
        match e {
            Error::AccessDenied { record } => Failure::new(EXIT_DENIED, "access_denied", message)
                .hint(format!(
                    "ask the owner for access: `medseal request --as NAME {}`",
                    record.0
                )),
            Error::NotOwner { .. } => Failure::new(EXIT_DENIED, "not_owner", message)
                .hint("only the record's owner can share, revoke or answer requests"),
            Error::UnknownRecord(record) => Failure::new(EXIT_NOT_FOUND, "unknown_record", message)
                .hint(format!(
                    "no record {} exists; `medseal records --as NAME` lists a member's records",
                    record.0
                )),
            Error::NoAuthority(_) => Failure::new(EXIT_NOT_FOUND, "no_authority", message)
                .hint("run `medseal authority setup` first"),
            Error::Tampered(_) => Failure::new(EXIT_TAMPERED, "tampered", message).hint(
                "the data failed verification and was not used; restore the block store \
                 (<dir>/blocks or the IPFS node) from a trusted copy",
            ),
            Error::InvalidInput(_) => Failure::new(EXIT_OTHER, "invalid_input", message),
            Error::Policy(_) => Failure::new(EXIT_OTHER, "invalid_policy", message)
                .hint("policies look like `role:doctor and (dept:cardiology or level >= 3)`"),
            Error::Keyword(_) => Failure::new(EXIT_OTHER, "invalid_keyword", message)
                .hint("keywords look like `icd10:I10` or `term:hypertension`"),
            Error::Config(_) => Failure::new(EXIT_OTHER, "config", message)
                .hint("check medseal.json in the data directory and the MEDSEAL_* variables"),
            Error::Io { .. } => Failure::new(EXIT_OTHER, "io", message),
            Error::Corrupt { .. } => Failure::new(EXIT_OTHER, "corrupt", message),
            Error::Storage(_) => Failure::new(EXIT_OTHER, "storage", message),
            Error::Ledger(e) => ledger_failure(e),
            Error::Abe(_) => Failure::new(EXIT_OTHER, "encryption", message),
            Error::Index(_) => Failure::new(EXIT_OTHER, "index", message),
            _ => Failure::new(EXIT_OTHER, "error", message),
        }
    }
}
