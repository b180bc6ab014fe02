//! Custody of the authority key (passphrases, `authority protect`, `passwd`, `backup`,
//! `restore`) and of member keys (`protect`, the passphrase of a sealed member key).

use std::fmt;
use std::path::{Path, PathBuf};

use clap::Args;
use medseal::abe::Encoding;
use medseal::{
    AUTHORITY_PUBLIC_KEY_FILE, Authority, AuthorityShare, Error, KdfParams, Member,
    custody::MAX_SHARE_LINE, is_sealed, is_sealed_member,
};
use rand_core::OsRng;
use serde::Serialize;
use zeroize::Zeroizing;

use crate::Ctx;
use crate::fail::{CliResult, EXIT_DENIED, Failure};
use crate::local::{self, AUTHORITY_KEY_FILE};

/// The passphrase of the sealed authority key, for scripts and tests (visible to the same
/// user's other processes: not for a production authority).
pub const PASSPHRASE_ENV: &str = "MEDSEAL_AUTHORITY_PASSPHRASE";
/// The new passphrase of `authority passwd`, for scripts and tests.
pub const NEW_PASSPHRASE_ENV: &str = "MEDSEAL_AUTHORITY_NEW_PASSPHRASE";
/// The passphrase of sealed member keys (and of `protect` / `keygen --protect`), for
/// scripts and tests (visible to the same user's other processes).
pub const MEMBER_PASSPHRASE_ENV: &str = "MEDSEAL_MEMBER_PASSPHRASE";
/// Shortest new passphrase accepted, in characters.
const MIN_PASSPHRASE_CHARS: usize = 8;
/// Interactive attempts at the passphrase before giving up.
const ATTEMPTS: u32 = 3;
/// The default folder of `authority backup`, in the data directory.
const SHARES_DIR: &str = "authority-shares";

pub type Secret = Zeroizing<String>;

/// Whose key a passphrase seals: the words of the prompts and hints differ.
pub struct KeyKind {
    /// The variable that holds the passphrase for scripts and tests.
    env: &'static str,
    /// "the authority key", "the key of member NAME".
    whose: String,
    /// What to do when the passphrase is forgotten or the file damaged.
    recover: &'static str,
}

impl KeyKind {
    fn authority(env: &'static str) -> Self {
        Self {
            env,
            whose: "the authority key".to_owned(),
            recover: "rebuild the key with `medseal authority restore SHARE_FILE...`",
        }
    }

    pub fn member(name: &str) -> Self {
        Self {
            env: MEMBER_PASSPHRASE_ENV,
            whose: format!("the key of member {name}"),
            recover: "ask the authority for a new key (`medseal authority keygen`)",
        }
    }
}

fn from_env(var: &str) -> Option<Secret> {
    std::env::var(var)
        .ok()
        .filter(|v| !v.is_empty())
        .map(Zeroizing::new)
}

fn prompt(text: &str, env: &str) -> CliResult<Secret> {
    let hint =
        || format!("run the command in a terminal, or (for scripts and tests only) set {env}");
    let passphrase = rpassword::prompt_password(text)
        .map(Zeroizing::new)
        .map_err(|e| {
            Failure::other(
                "no_passphrase",
                format!("cannot read a passphrase from the terminal: {e}"),
            )
            .hint(hint())
        })?;
    if passphrase.is_empty() {
        return Err(Failure::other("no_passphrase", "no passphrase given").hint(hint()));
    }
    Ok(passphrase)
}

/// A new passphrase for `kind`: from its variable, else typed twice (no echo); at least
/// [`MIN_PASSPHRASE_CHARS`] characters.
pub fn new_passphrase(kind: &KeyKind) -> CliResult<Secret> {
    let env = kind.env;
    let short = |p: &Secret| p.chars().count() < MIN_PASSPHRASE_CHARS;
    let too_short = || {
        Failure::invalid_input(format!(
            "a new passphrase needs at least {MIN_PASSPHRASE_CHARS} characters"
        ))
        .hint("use a long passphrase, e.g. five or more random words")
    };
    if let Some(passphrase) = from_env(env) {
        return if short(&passphrase) {
            Err(too_short().hint(format!("{env} is too short")))
        } else {
            Ok(passphrase)
        };
    }
    let first = prompt(&format!("new passphrase for {}: ", kind.whose), env)?;
    if short(&first) {
        return Err(too_short());
    }
    let second = prompt("the same passphrase again: ", env)?;
    if first != second {
        return Err(Failure::invalid_input(
            "the two passphrases differ; nothing was written",
        ));
    }
    Ok(first)
}

fn wrong_passphrase(kind: &KeyKind, path: &Path, e: &Error, from_env: bool) -> Failure {
    let recover = kind.recover;
    let hint = if from_env {
        format!(
            "{} does not hold the passphrase of this file; a forgotten passphrase cannot be \
             recovered: {recover}",
            kind.env
        )
    } else {
        format!("a forgotten passphrase cannot be recovered: {recover}")
    };
    Failure::new(
        EXIT_DENIED,
        "wrong_passphrase",
        format!("{}: {e}", path.display()),
    )
    .hint(hint)
}

fn opening_failure(kind: &KeyKind, path: &Path, e: Error) -> Failure {
    match e {
        Error::Corrupt { .. } | Error::InvalidInput(_) => {
            Failure::other("corrupt", format!("{}: {e}", path.display()))
                .hint(format!("restore the file from a copy, or {}", kind.recover))
        }
        other => other.into(),
    }
}

/// Opens the sealed key file at `path` with `open`: the passphrase from the kind's
/// variable, else asked (up to [`ATTEMPTS`] times). Returns the passphrase too (to reseal
/// a rewritten key under it).
fn open_with<T>(
    kind: &KeyKind,
    path: &Path,
    open: impl Fn(&[u8]) -> Result<T, Error>,
) -> CliResult<(T, Secret)> {
    if let Some(passphrase) = from_env(kind.env) {
        return match open(passphrase.as_bytes()) {
            Ok(key) => Ok((key, passphrase)),
            Err(e @ Error::WrongPassphrase) => Err(wrong_passphrase(kind, path, &e, true)),
            Err(other) => Err(opening_failure(kind, path, other)),
        };
    }
    let text = format!("passphrase of {}: ", path.display());
    let mut attempt = 1;
    loop {
        let passphrase = prompt(&text, kind.env)?;
        match open(passphrase.as_bytes()) {
            Ok(key) => return Ok((key, passphrase)),
            Err(Error::WrongPassphrase) if attempt < ATTEMPTS => {
                eprintln!("wrong passphrase, try again");
                attempt += 1;
            }
            Err(e @ Error::WrongPassphrase) => {
                return Err(wrong_passphrase(kind, path, &e, false));
            }
            Err(other) => return Err(opening_failure(kind, path, other)),
        }
    }
}

/// Opens a sealed authority key file: the passphrase from [`PASSPHRASE_ENV`], else asked
/// (up to [`ATTEMPTS`] times).
pub fn open_sealed(path: &Path, bytes: &[u8]) -> CliResult<Authority> {
    let kind = KeyKind::authority(PASSPHRASE_ENV);
    open_with(&kind, path, |p| Authority::open_sealed(bytes, p)).map(|(authority, _)| authority)
}

/// Opens the sealed key file of member `name`: the passphrase from
/// [`MEMBER_PASSPHRASE_ENV`], else asked (up to [`ATTEMPTS`] times). Returns the
/// passphrase too, to reseal a renewed key under it.
pub fn open_sealed_member(name: &str, path: &Path, bytes: &[u8]) -> CliResult<(Member, Secret)> {
    open_with(&KeyKind::member(name), path, |p| {
        Member::open_sealed(bytes, p)
    })
}

/// Seals `member` under `passphrase` with the default KDF parameters.
pub fn seal_member(member: &Member, passphrase: &Secret) -> CliResult<Vec<u8>> {
    Ok(member.seal(passphrase.as_bytes(), &KdfParams::DEFAULT, &mut OsRng)?)
}

/// Seals `authority` under `passphrase` with the default KDF parameters.
fn seal(authority: &Authority, passphrase: &Secret) -> CliResult<Vec<u8>> {
    Ok(authority.seal(passphrase.as_bytes(), &KdfParams::DEFAULT, &mut OsRng)?)
}

/// Reads and seals a new authority key file (for `authority setup`).
pub fn sealed_new(authority: &Authority) -> CliResult<Vec<u8>> {
    let passphrase = new_passphrase(&KeyKind::authority(PASSPHRASE_ENV))?;
    seal(authority, &passphrase)
}

/// The result of `protect NAME`.
#[derive(Serialize)]
pub struct MemberProtected {
    name: String,
    key_file: String,
}

impl fmt::Display for MemberProtected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{}: the key of {} is sealed under the new passphrase (mode 0600)",
            self.key_file, self.name
        )?;
        writeln!(
            f,
            "commands run as {} now ask for it (or read {MEMBER_PASSPHRASE_ENV}); destroy \
             older copies of the file: they open without one",
            self.name
        )
    }
}

/// `protect NAME`: seals the plain key of member NAME in place.
pub fn protect_member(ctx: &Ctx, name: &str) -> CliResult<MemberProtected> {
    local::existing_dir(&ctx.dir)?;
    local::check_member_name(name).map_err(|_| Failure::unknown_member(name, &ctx.dir))?;
    let path = local::member_path(&ctx.dir, name);
    let bytes = local::read_key(&path, || Failure::unknown_member(name, &ctx.dir))?;
    if is_sealed_member(&bytes) {
        return Err(Failure::other(
            "already_sealed",
            format!(
                "{} is already sealed under a passphrase: nothing was written",
                path.display()
            ),
        ));
    }
    let member = Member::from_bytes(&bytes)
        .map_err(|e| Failure::other("corrupt", format!("{}: {e}", path.display())))?;
    let passphrase = new_passphrase(&KeyKind::member(name))?;
    let sealed = seal_member(&member, &passphrase)?;
    // Atomic replacement: a crash leaves the plain file or the sealed one, never neither.
    local::write_secret(&path, &sealed, true)?;
    Ok(MemberProtected {
        name: name.to_owned(),
        key_file: path.display().to_string(),
    })
}

/// A new passphrase for the key of member `name` (`keygen --protect`).
pub fn new_member_passphrase(name: &str) -> CliResult<Secret> {
    new_passphrase(&KeyKind::member(name))
}

fn key_path(ctx: &Ctx) -> PathBuf {
    ctx.dir.join(AUTHORITY_KEY_FILE)
}

fn read_authority_file(ctx: &Ctx) -> CliResult<(PathBuf, Vec<u8>)> {
    local::existing_dir(&ctx.dir)?;
    let path = key_path(ctx);
    let bytes = local::read_key(&path, || Failure::no_authority(&ctx.dir))?;
    Ok((path, bytes))
}

/// The result of `authority protect` and `authority passwd`.
#[derive(Serialize)]
pub struct Resealed {
    authority_key: String,
    /// `protected` (a plain file sealed) or `passphrase_changed`.
    action: &'static str,
}

impl fmt::Display for Resealed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self.action {
            "protected" => "sealed under the new passphrase",
            _ => "passphrase changed",
        };
        writeln!(f, "{}: {what} (mode 0600)", self.authority_key)?;
        writeln!(
            f,
            "destroy older copies of the file: they still open with their passphrase (or none)"
        )
    }
}

/// `authority protect`: seals a plain (legacy) authority key file in place.
pub fn protect(ctx: &Ctx) -> CliResult<Resealed> {
    let (path, bytes) = read_authority_file(ctx)?;
    if is_sealed(&bytes) {
        return Err(Failure::other(
            "already_sealed",
            format!("{} is already sealed under a passphrase", path.display()),
        )
        .hint("`medseal authority passwd` changes the passphrase"));
    }
    let authority = Authority::from_bytes(&bytes)
        .map_err(|e| Failure::other("corrupt", format!("{}: {e}", path.display())))?;
    let sealed = sealed_new(&authority)?;
    // Atomic replacement: a crash leaves the plain file or the sealed one, never neither.
    local::write_secret(&path, &sealed, true)?;
    Ok(Resealed {
        authority_key: path.display().to_string(),
        action: "protected",
    })
}

/// `authority passwd`: reseals the authority key under a new passphrase.
pub fn passwd(ctx: &Ctx) -> CliResult<Resealed> {
    let (path, bytes) = read_authority_file(ctx)?;
    if !is_sealed(&bytes) {
        return Err(Failure::other(
            "not_sealed",
            format!("{} is not sealed under a passphrase", path.display()),
        )
        .hint("`medseal authority protect` seals it"));
    }
    let authority = open_sealed(&path, &bytes)?;
    let passphrase = new_passphrase(&KeyKind::authority(NEW_PASSPHRASE_ENV))?;
    let sealed = seal(&authority, &passphrase)?;
    local::write_secret(&path, &sealed, true)?;
    Ok(Resealed {
        authority_key: path.display().to_string(),
        action: "passphrase_changed",
    })
}

/// `K/N` of `authority backup --shares`.
pub fn parse_shares(text: &str) -> Result<(u8, u8), String> {
    let bad = || format!("{text:?} is not K/N with 2 <= K <= N <= 255 (e.g. 3/5)");
    let (k, n) = text.split_once('/').ok_or_else(bad)?;
    let (k, n): (u8, u8) = (
        k.trim().parse().map_err(|_| bad())?,
        n.trim().parse().map_err(|_| bad())?,
    );
    if k < 2 || k > n {
        return Err(bad());
    }
    Ok((k, n))
}

#[derive(Args, Debug)]
pub struct BackupArgs {
    /// K/N: write N shares, any K of which rebuild the key (2 <= K <= N <= 255)
    #[arg(long, value_name = "K/N", value_parser = parse_shares)]
    shares: (u8, u8),
    /// Folder for the share files [default: DIR/authority-shares]
    #[arg(long, value_name = "FOLDER")]
    out: Option<PathBuf>,
}

/// The result of `authority backup`.
#[derive(Serialize)]
pub struct Backup {
    authority: String,
    set: String,
    threshold: u8,
    count: u8,
    files: Vec<String>,
}

impl fmt::Display for Backup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (k, n) = (self.threshold, self.count);
        writeln!(
            f,
            "wrote {n} backup shares of authority {} (set {}); any {k} rebuild the key:",
            self.authority, self.set
        )?;
        for file in &self.files {
            writeln!(f, "  {file}")?;
        }
        writeln!(
            f,
            "now: give each share to a different holder, who stores it offline (paper or a \
             dedicated USB stick, in their own safe); record who holds which share; then \
             delete these files. Any {k} holders together hold the master key.\n\
             restore with `medseal authority restore SHARE_FILE...` ({k} files)"
        )
    }
}

#[cfg(unix)]
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

#[cfg(not(unix))]
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)
}

/// `authority backup --shares K/N`: writes N share files (mode 0600).
pub fn backup(ctx: &Ctx, args: &BackupArgs) -> CliResult<Backup> {
    let (threshold, count) = args.shares;
    local::existing_dir(&ctx.dir)?;
    let authority = local::load_authority(&ctx.dir)?;
    let out = args.out.clone().unwrap_or_else(|| ctx.dir.join(SHARES_DIR));
    create_private_dir(&out).map_err(|e| Failure::io(&out, &e))?;
    let shares = authority.split(threshold, count, &mut OsRng)?;
    let mut files = Vec::with_capacity(shares.len());
    for share in &shares {
        let path = out.join(format!(
            "authority-share-{}-{}-of-{}.txt",
            share.set_id(),
            share.index(),
            share.count()
        ));
        let mut line = share.to_line();
        line.push('\n');
        local::write_secret(&path, line.as_bytes(), false)?;
        files.push(path.display().to_string());
    }
    let first = shares
        .first()
        .ok_or_else(|| Failure::other("error", "no shares were made"))?;
    Ok(Backup {
        authority: first.authority_id(),
        set: first.set_id(),
        threshold,
        count,
        files,
    })
}

#[derive(Args, Debug)]
pub struct RestoreArgs {
    /// Share files written by `authority backup` (K of one set)
    #[arg(value_name = "SHARE_FILE", required = true)]
    files: Vec<PathBuf>,
    /// Replace an existing DIR/authority.key
    #[arg(long)]
    force: bool,
}

/// The result of `authority restore`.
#[derive(Serialize)]
pub struct Restored {
    authority_key: String,
    authority: String,
    shares_used: usize,
    public_key_installed: bool,
}

impl fmt::Display for Restored {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "restored authority {} from {} shares\n  secret key: {} (sealed under the new \
             passphrase, mode 0600)",
            self.authority, self.shares_used, self.authority_key
        )?;
        if self.public_key_installed {
            writeln!(f, "  public key: installed (the data directory had none)")?;
        }
        writeln!(
            f,
            "consider a new backup (`medseal authority backup`): these shares were shown to \
             this machine"
        )
    }
}

fn invalid_share(file: &Path, e: impl fmt::Display) -> Failure {
    Failure::other("invalid_share", format!("{}: {e}", file.display()))
}

fn read_share(file: &Path) -> CliResult<AuthorityShare> {
    let meta = std::fs::metadata(file).map_err(|e| Failure::io(file, &e))?;
    if meta.len() > MAX_SHARE_LINE as u64 + 2 {
        return Err(invalid_share(file, "too large to be a share file"));
    }
    let text = Zeroizing::new(std::fs::read(file).map_err(|e| Failure::io(file, &e))?);
    let text = std::str::from_utf8(&text).map_err(|_| invalid_share(file, "not text"))?;
    text.parse::<AuthorityShare>()
        .map_err(|e| invalid_share(file, e))
}

/// `authority restore SHARE_FILE...`: rebuilds and seals DIR/authority.key.
pub async fn restore(ctx: &Ctx, args: &RestoreArgs) -> CliResult<Restored> {
    local::existing_dir(&ctx.dir)?;
    let path = key_path(ctx);
    if !args.force && path.symlink_metadata().is_ok() {
        return Err(Failure::exists(&path).hint(
            "restore does not replace an authority key; pass --force to replace it (keep a \
             copy first)",
        ));
    }
    let shares = args
        .files
        .iter()
        .map(|file| read_share(file))
        .collect::<CliResult<Vec<_>>>()?;
    let authority = Authority::combine(&shares).map_err(|e| {
        Failure::from(e)
            .hint("bring K share files of one backup set (`share=i/n k=K` in each file)")
    })?;
    let id = shares
        .first()
        .map(AuthorityShare::authority_id)
        .unwrap_or_default();
    let public_path = ctx.dir.join(AUTHORITY_PUBLIC_KEY_FILE);
    let installed = match std::fs::read(&public_path) {
        Ok(bytes) => Some(bytes),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(Failure::io(&public_path, &e)),
    };
    if let Some(installed) = &installed
        && *installed != authority.public_key().to_bytes()
    {
        return Err(Failure::other(
            "authority_mismatch",
            format!(
                "the shares rebuild authority {id}, but {} holds another authority's \
                     public key",
                public_path.display()
            ),
        )
        .hint("restore into the data directory of that authority (or a new one)"));
    }
    let sealed = sealed_new(&authority)?;
    local::write_secret(&path, &sealed, args.force)?;
    let public_key_installed = installed.is_none();
    if public_key_installed {
        let mut vault = local::open(ctx).await?;
        vault.install_authority(authority.public_key())?;
    }
    Ok(Restored {
        authority_key: path.display().to_string(),
        authority: id,
        shares_used: shares.len(),
        public_key_installed,
    })
}
