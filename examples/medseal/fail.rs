//! Failures of the command-line tool: an exit code, a machine-readable kind, a message
//! and, where the user can act on it, a hint.

use std::path::Path;

use medseal::chain::LedgerError;
use medseal::storage::StorageError;
use medseal::{Error, InvalidInput, Standing};

/// Exit code of anything not listed below.
pub const EXIT_OTHER: u8 = 1;
/// Exit code of a command-line usage error: clap's own, and a malformed policy or keyword.
pub const EXIT_USAGE: u8 = 2;
/// Exit code of a refusal: the key does not satisfy the policy, the member does not own
/// the record, or the authority key's passphrase is wrong.
pub const EXIT_DENIED: u8 = 3;
/// Exit code of something that does not exist: record, member, authority, data dir.
pub const EXIT_NOT_FOUND: u8 = 4;
/// Exit code of data that failed verification.
pub const EXIT_TAMPERED: u8 = 5;
/// Exit code of a command stopped by Ctrl-C (SIGINT), as shells report it.
pub const EXIT_INTERRUPTED: u8 = 130;

/// Stands for the acting member (`--as`) in hints; [`Failure::acting_as`] puts in the
/// name (or `<member>` for a command without one).
pub const ACTOR: &str = "{as}";

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

    /// A failure with exit code [`EXIT_OTHER`].
    pub fn other(kind: &'static str, message: impl Into<String>) -> Self {
        Self::new(EXIT_OTHER, kind, message)
    }

    pub fn invalid_input(message: impl Into<String>) -> Self {
        Self::other("invalid_input", message)
    }

    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// Names the acting member in the hint (see [`ACTOR`]).
    pub fn acting_as(mut self, name: Option<&str>) -> Self {
        let name = name.unwrap_or("<member>");
        self.hint = self.hint.map(|hint| hint.replace(ACTOR, name));
        self
    }

    /// A local file operation failed.
    pub fn io(path: &Path, e: &std::io::Error) -> Self {
        Self::other("io", format!("{}: {e}", path.display()))
    }

    /// A file that is not replaced without `--force`.
    pub fn exists(path: &Path) -> Self {
        Self::other("exists", format!("{} already exists", path.display()))
            .hint("pass --force to replace it")
    }

    /// A failed [`medseal::AtomicFile::commit`]: a destination that appeared meanwhile is
    /// reported as existing, not as an I/O error.
    pub fn from_commit(e: Error) -> Self {
        match e {
            Error::Io { path, source } if source.kind() == std::io::ErrorKind::AlreadyExists => {
                Self::exists(&path)
            }
            other => other.into(),
        }
    }

    /// Data that failed verification.
    pub fn tampered(message: impl Into<String>) -> Self {
        Self::new(EXIT_TAMPERED, "tampered", message).hint(
            "the data failed verification and was not used; restore the block store \
             (<dir>/blocks or the IPFS node) from a trusted copy",
        )
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
        .hint(format!(
            "`medseal members` lists the members; `medseal authority keygen {name} --attr \
             role:doctor` creates one (a member can also be given as a 0x address)"
        ))
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

fn unknown_record(record: u64, message: String) -> Failure {
    Failure::new(EXIT_NOT_FOUND, "unknown_record", message).hint(format!(
        "no record {record} exists; `medseal records --as {ACTOR}` lists a member's records"
    ))
}

fn ledger_failure(e: LedgerError) -> Failure {
    let message = format!("chain: {e}");
    match e {
        LedgerError::UnknownRecord { record } => unknown_record(record.0, message),
        LedgerError::NotOwner { .. } => Failure::new(EXIT_DENIED, "not_owner", message)
            .hint("only the record's owner can do this"),
        LedgerError::NotAuthorized { .. } => Failure::new(EXIT_DENIED, "access_denied", message),
        LedgerError::NotController { controller, .. } => {
            Failure::new(EXIT_DENIED, "not_controller", message).hint(format!(
                "only the record's controller {controller} (its patient, or its owner if it has \
                 none) shares, revokes and answers requests"
            ))
        }
        LedgerError::NotAuthority { .. } | LedgerError::NotRegistrar { .. } => {
            Failure::new(EXIT_DENIED, "not_authority", message).hint(
                "the registry's authority is the attribute authority's chain account \
                 (`medseal authority setup` hands it over in a new data directory)",
            )
        }
        LedgerError::MemberRevoked { .. } => Failure::new(EXIT_DENIED, "member_revoked", message)
            .hint("a revoked member stays revoked: issue a new key under a new name"),
        LedgerError::UnknownMember { .. } => Failure::new(EXIT_NOT_FOUND, "unknown_member", message)
            .hint("`medseal members` lists the registered members"),
        LedgerError::ReasonTooLong { .. } => Failure::new(EXIT_USAGE, "invalid_reason", message),
        // `request` names the owner in the hint (it knows the record).
        LedgerError::AlreadyRequested { .. } => Failure::other("already_requested", message)
            .hint("the record's owner sees it in `medseal requests`"),
        // Only the owner answers requests: the acting member is the owner.
        LedgerError::NoPendingRequest { .. } => Failure::other("no_pending_request", message)
            .hint(format!("`medseal requests --as {ACTOR}` lists the pending requests")),
        LedgerError::InsufficientFunds { address, .. } => {
            Failure::other("insufficient_funds", message).hint(format!(
                "send ETH to {address} on the Ethereum node (eth_rpc in medseal.json or \
                 MEDSEAL_ETH_RPC); `medseal members` lists the members' addresses"
            ))
        }
        LedgerError::InvalidUser { .. } => Failure::other("invalid_user", message)
            .hint("the owner of a record always has access; it cannot be shared with, revoked from or requested by them"),
        LedgerError::AlreadyGranted { .. } | LedgerError::NotGranted { .. } => {
            Failure::other("rejected", message)
        }
        LedgerError::NodeUnavailable { .. } | LedgerError::Transport(_) => {
            Failure::other("chain_unavailable", message)
                .hint("check that the Ethereum node (eth_rpc in medseal.json or MEDSEAL_ETH_RPC) is running")
        }
        LedgerError::Config(_) => Failure::other("config", message)
            .hint("check medseal.json in the data directory and the MEDSEAL_* variables"),
        _ => Failure::other("chain", message),
    }
}

impl From<LedgerError> for Failure {
    fn from(e: LedgerError) -> Self {
        ledger_failure(e)
    }
}

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        let message = e.to_string();
        // By predicate, not variant: what counts as tampering is the library's call.
        if e.is_tampering() {
            return Failure::tampered(message);
        }
        match e {
            Error::AccessDenied { record } => Failure::new(EXIT_DENIED, "access_denied", message)
                .hint(format!(
                    "ask the owner for access: `medseal request --as {ACTOR} {}`",
                    record.0
                )),
            Error::KeyExpired { .. } => {
                Failure::new(EXIT_DENIED, "key_expired", message).hint(format!(
                    "the authority renews the key (same name, address and attributes): \
                     `medseal authority renew {ACTOR} --valid-until YYYY-MM`"
                ))
            }
            Error::NotPartitionOwner { .. } => Failure::new(EXIT_DENIED, "not_owner", message)
                .hint("only the member who published an index partition compacts it"),
            Error::NotOwner { .. } => Failure::new(EXIT_DENIED, "not_owner", message)
                .hint("only the record's owner can share, revoke or answer requests"),
            Error::NotController { controller, .. } => {
                Failure::new(EXIT_DENIED, "not_controller", message).hint(format!(
                    "the record's patient {controller} answers requests and shares it (consent)"
                ))
            }
            Error::NotAMember { standing, .. } => {
                let hint = match standing {
                    Standing::Unregistered => {
                        "the authority registers members: `medseal authority register NAME` \
                         (`medseal members` lists the registry)"
                    }
                    Standing::Expired { .. } => {
                        "the authority renews the member's key and registration: \
                         `medseal authority renew NAME`"
                    }
                    _ => "a revoked member stays revoked; `medseal members` shows why",
                };
                Failure::new(EXIT_DENIED, "not_a_member", message).hint(hint)
            }
            Error::EmergencyOnly { record } => Failure::new(EXIT_DENIED, "emergency_only", message)
                .hint(format!(
                    "break-glass: `medseal get --as {ACTOR} {} --emergency \"REASON\"` (the reason \
                     is logged on chain and shown in the patient's audit trail)",
                    record.0
                )),
            Error::UnknownRecord(record) => unknown_record(record.0, message),
            Error::NoAuthority(_) => Failure::new(EXIT_NOT_FOUND, "no_authority", message)
                .hint("run `medseal authority setup` first"),
            Error::InvalidInput(InvalidInput::IdempotencyKeyReused { .. }) => {
                Failure::other("idempotency_key_reused", message).hint(
                    "an idempotency key names one record for good: use a new key for a new record",
                )
            }
            Error::InvalidInput(InvalidInput::RegistryAuthority {
                registry_authority,
                authority_account,
                ..
            }) => Failure::new(EXIT_DENIED, "registry_authority", message).hint(format!(
                "run the command once with MEDSEAL_ETH_KEY set to the secret key of \
                 {registry_authority} (the account that deployed the registry): it hands the \
                 registry's authority role to the attribute authority's account \
                 {authority_account}"
            )),
            Error::WrongPassphrase => Failure::new(EXIT_DENIED, "wrong_passphrase", message),
            Error::InvalidInput(InvalidInput::StaleAttributeVersion { .. }) => {
                Failure::other("stale_attribute_version", message).hint(
                    "renew the key at the current versions: `medseal authority renew NAME` \
                     (it registers the renewed key)",
                )
            }
            Error::InvalidInput(InvalidInput::Share(_)) => Failure::other("invalid_share", message),
            Error::InvalidInput(_) => Failure::other("invalid_input", message),
            // Policies and keywords come from the command line: a syntax error is usage.
            Error::Policy(_) => Failure::new(EXIT_USAGE, "invalid_policy", message)
                .hint("policies look like `role:doctor and (dept:cardiology or level >= 3)`"),
            Error::Keyword(_) => Failure::new(EXIT_USAGE, "invalid_keyword", message)
                .hint("keywords look like `icd10:I10` or `term:hypertension`"),
            Error::Config(_) => Failure::other("config", message)
                .hint("check medseal.json in the data directory and the MEDSEAL_* variables"),
            Error::Io { .. } => Failure::other("io", message),
            Error::Corrupt { .. } => Failure::other("corrupt", message),
            Error::Storage(StorageError::Timeout { .. }) => Failure::other("storage", message)
                .hint(
                    "the IPFS node did not answer in time: check that it is running and holds \
                     or can find the block (ipfs_api in medseal.json or MEDSEAL_IPFS_API)",
                ),
            Error::Storage(StorageError::InvalidCar(_)) => Failure::other("invalid_car", message)
                .hint(
                    "the file is not a whole CAR v1 archive (cut short, damaged, or another \
                     format); nothing was pinned: write it again with `medseal export --car`",
                ),
            Error::Storage(StorageError::Unsupported { .. }) => {
                Failure::other("unsupported", message)
            }
            Error::Storage(_) => Failure::other("storage", message),
            Error::Ledger(e) => ledger_failure(e),
            Error::Abe(_) => Failure::other("encryption", message),
            Error::Index(_) => Failure::other("index", message),
            _ => Failure::other("error", message),
        }
    }
}
