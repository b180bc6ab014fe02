//! The data directory: opening its vault, and the tool's own files in it (the authority's
//! secret key, the members' keys).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use medseal::storage::LocalStore;
use medseal::{Address, AtomicFile, Authority, Config, Member, Vault};

use zeroize::Zeroizing;

use crate::Ctx;
use crate::custody::Secret;
use crate::fail::{CliResult, EXIT_NOT_FOUND, Failure};
use crate::report::MemberRef;

/// The authority's secret key (public parameters and master key), sealed under a
/// passphrase.
pub const AUTHORITY_KEY_FILE: &str = "authority.key";
/// The folder of member keys, `<name>.key`.
pub const MEMBERS_DIR: &str = "members";
const KEY_EXT: &str = "key";
/// Longest member name the tool accepts (it is a file name).
const MAX_MEMBER_NAME: usize = 64;

/// The data directory of an operation other than `init`: it must exist.
pub fn existing_dir(dir: &Path) -> CliResult<()> {
    match std::fs::metadata(dir) {
        Ok(m) if m.is_dir() => Ok(()),
        Ok(_) => {
            let message = format!("{} is not a directory", dir.display());
            Err(Failure::other("io", message))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(Failure::new(
            EXIT_NOT_FOUND,
            "no_data_dir",
            format!("data directory {} does not exist", dir.display()),
        )
        .hint("run `medseal init` (or pass --dir / set MEDSEAL_DIR to an existing one)")),
        Err(e) => Err(Failure::io(dir, &e)),
    }
}

/// Opens the vault of an existing data directory.
pub async fn open(ctx: &Ctx) -> CliResult<Vault> {
    existing_dir(&ctx.dir)?;
    Ok(Vault::open(&ctx.dir).await?)
}

/// Opens the vault and the acting member's key, and completes the member's interrupted
/// put, if any (said on stderr; a failure to is a warning: the command goes on).
pub async fn open_as(ctx: &Ctx, name: &str) -> CliResult<(Vault, Member)> {
    let (vault, member) = open_member(ctx, name).await?;
    crate::upkeep::complete_interrupted(&vault, &member).await;
    Ok((vault, member))
}

/// Opens the vault and the acting member's key, nothing else (for the commands that
/// complete an interrupted put themselves: `put`, `import`, `recover`).
pub async fn open_member(ctx: &Ctx, name: &str) -> CliResult<(Vault, Member)> {
    let vault = open(ctx).await?;
    let member = load_member(&ctx.dir, name)?;
    Ok((vault, member))
}

/// The embedded block store of the data directory, if the vault uses it; opened after
/// the vault, it shares the vault's pin database and counters in this process.
pub async fn local_store(ctx: &Ctx) -> Option<LocalStore> {
    let config = Config::load(&ctx.dir).ok()?;
    if config.ipfs_api.is_some() {
        return None;
    }
    LocalStore::open(ctx.dir.join("blocks")).await.ok()
}

/// Checks that `name` can be a member name (and so a file name).
pub fn check_member_name(name: &str) -> CliResult<()> {
    let ok = !name.is_empty()
        && name.len() <= MAX_MEMBER_NAME
        && !name.starts_with(['.', '-'])
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
    if ok {
        return Ok(());
    }
    Err(Failure::invalid_input(format!(
        "member name {name:?}: use 1 to {MAX_MEMBER_NAME} letters, digits, `.`, `_` or `-`, \
         not starting with `.` or `-`"
    )))
}

pub fn member_path(dir: &Path, name: &str) -> PathBuf {
    dir.join(MEMBERS_DIR).join(format!("{name}.{KEY_EXT}"))
}

/// Loads the key of member `name` from `<dir>/members/<name>.key` (a sealed one asks
/// for its passphrase, or reads `MEDSEAL_MEMBER_PASSPHRASE`).
pub fn load_member(dir: &Path, name: &str) -> CliResult<Member> {
    load_member_file(dir, name).map(|(member, _)| member)
}

/// Loads the key of member `name`, and the passphrase it is sealed under (`None`: a plain
/// key file), for a command that rewrites the key: [`member_file`] reseals it.
pub fn load_member_file(dir: &Path, name: &str) -> CliResult<(Member, Option<Secret>)> {
    check_member_name(name).map_err(|_| Failure::unknown_member(name, dir))?;
    let path = member_path(dir, name);
    let bytes = read_key(&path, || Failure::unknown_member(name, dir))?;
    // A sealed authority key is passed on too: opening it names the mix-up.
    if medseal::is_sealed_member(&bytes) || medseal::is_sealed(&bytes) {
        let (member, passphrase) = crate::custody::open_sealed_member(name, &path, &bytes)?;
        if let Ok(mut opened) = OPENED.lock() {
            opened.insert(member.address(), member.name().to_owned());
        }
        return Ok((member, Some(passphrase)));
    }
    let member = Member::from_bytes(&bytes).map_err(|e| corrupt(&path, e))?;
    Ok((member, None))
}

/// The content of a member key file: sealed under `passphrase` if one is given (the
/// passphrase of the key it replaces, or of `keygen --protect`), else plain.
pub fn member_file(member: &Member, passphrase: Option<&Secret>) -> CliResult<Zeroizing<Vec<u8>>> {
    Ok(Zeroizing::new(match passphrase {
        Some(passphrase) => crate::custody::seal_member(member, passphrase)?,
        None => member.to_bytes(),
    }))
}

/// Loads the authority's secret key: a sealed file asks for its passphrase (or reads
/// `MEDSEAL_AUTHORITY_PASSPHRASE`); a plain one of an earlier release loads with a warning.
pub fn load_authority(dir: &Path) -> CliResult<Authority> {
    let path = dir.join(AUTHORITY_KEY_FILE);
    let bytes = read_key(&path, || {
        Failure::no_authority(dir).hint(format!(
            "run `medseal authority setup` first (or copy the authority's key to {})",
            path.display()
        ))
    })?;
    if medseal::is_sealed(&bytes) {
        return crate::custody::open_sealed(&path, &bytes);
    }
    let authority = Authority::from_bytes(&bytes).map_err(|e| corrupt(&path, e))?;
    eprintln!(
        "warning: {} is not sealed under a passphrase (written by an earlier release): \
         anyone who copies it holds the master key; seal it with `medseal authority protect`",
        path.display()
    );
    Ok(authority)
}

/// Reads a key file; `missing` is the failure if there is none.
pub fn read_key(path: &Path, missing: impl FnOnce() -> Failure) -> CliResult<Vec<u8>> {
    match std::fs::read(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(missing()),
        read => read.map_err(|e| Failure::io(path, &e)),
    }
}

fn corrupt(path: &Path, e: impl std::fmt::Display) -> Failure {
    Failure::other("corrupt", format!("{}: {e}", path.display()))
}

/// A key file of `<dir>/members`, as read without asking for a passphrase.
pub enum KeyFile {
    /// A plain key, loaded.
    Plain(Box<Member>),
    /// A key sealed under its member's passphrase, not opened (its name is the file's).
    Sealed(String),
}

impl KeyFile {
    /// The member, if the key is plain.
    pub fn plain(self) -> Option<Member> {
        match self {
            KeyFile::Plain(member) => Some(*member),
            KeyFile::Sealed(_) => None,
        }
    }
}

/// The key files in `<dir>/members`, sorted by file name. Plain keys are loaded, sealed
/// ones are not opened (no passphrase is asked for). Files that do not load are returned
/// as errors (the caller decides whether to warn).
pub fn members(dir: &Path) -> CliResult<Vec<(PathBuf, Result<KeyFile, String>)>> {
    let folder = dir.join(MEMBERS_DIR);
    let entries = match std::fs::read_dir(&folder) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Failure::io(&folder, &e)),
    };
    let mut paths = Vec::new();
    for entry in entries {
        let path = entry.map_err(|e| Failure::io(&folder, &e))?.path();
        let is_key = path.extension().is_some_and(|x| x == KEY_EXT)
            && !path
                .file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with('.'));
        if is_key {
            paths.push(path);
        }
    }
    paths.sort();
    Ok(paths
        .into_iter()
        .map(|path| {
            let key = std::fs::read(&path)
                .map_err(|e| e.to_string())
                .and_then(|bytes| {
                    if medseal::is_sealed_member(&bytes) {
                        let name = path
                            .file_stem()
                            .map(|s| s.to_string_lossy().into_owned())
                            .unwrap_or_default();
                        return Ok(KeyFile::Sealed(name));
                    }
                    Member::from_bytes(&bytes)
                        .map(|m| KeyFile::Plain(Box::new(m)))
                        .map_err(|e| e.to_string())
                });
            (path, key)
        })
        .collect())
}

/// The members whose sealed keys this process opened, by address: [`Directory`] names
/// them (it opens no sealed key itself).
static OPENED: Mutex<BTreeMap<Address, String>> = Mutex::new(BTreeMap::new());

/// Names of the members in the directory, by address (for display). Sealed keys are not
/// opened for this: their members are named only once the command opened their key
/// (the acting member), else shown by address.
pub struct Directory(BTreeMap<Address, String>);

impl Directory {
    pub fn load(dir: &Path) -> Self {
        let mut names: BTreeMap<Address, String> = members(dir)
            .unwrap_or_default()
            .into_iter()
            .filter_map(|(_, key)| key.ok()?.plain())
            .map(|m| (m.address(), m.name().to_owned()))
            .collect();
        if let Ok(opened) = OPENED.lock() {
            names.extend(opened.iter().map(|(a, n)| (*a, n.clone())));
        }
        Self(names)
    }

    /// The member at `address`, named if their key is here.
    pub fn member(&self, address: Address) -> MemberRef {
        MemberRef {
            address,
            name: self.0.get(&address).cloned(),
        }
    }
}

/// A member given on the command line: a name from `<dir>/members` or a `0x` address.
pub fn resolve_member(dir: &Path, text: &str) -> CliResult<MemberRef> {
    if text.starts_with("0x") || text.starts_with("0X") {
        let address: Address = text
            .parse()
            .map_err(|e| Failure::invalid_input(format!("{text:?} is not an address: {e}")))?;
        return Ok(Directory::load(dir).member(address));
    }
    Ok(MemberRef::from(&load_member(dir, text)?))
}

/// Writes a secret file (mode 0600) durably; never replaces an existing one unless
/// `force`.
pub fn write_secret(dest: &Path, bytes: &[u8], force: bool) -> CliResult<()> {
    let mut file = AtomicFile::create(dest, true)?;
    file.write_all(bytes).map_err(|e| Failure::io(dest, &e))?;
    file.commit(force).map_err(Failure::from_commit)
}

/// A file name for attachment `index` called `name` (from the record's manifest): path
/// separators and control characters replaced, never `.`/`..`/empty, not hidden.
pub fn safe_file_name(name: &str, index: usize) -> String {
    let unsafe_char =
        |c: char| c == '/' || c == '\\' || c.is_control() || c == ':' && cfg!(windows);
    let clean: String = name
        .chars()
        .map(|c| if unsafe_char(c) { '_' } else { c })
        .collect();
    let mut clean = clean.trim().trim_start_matches('.').to_owned();
    if clean.is_empty() {
        clean = format!("attachment-{index}");
    }
    let cut = (0..=200).rev().find(|&i| clean.is_char_boundary(i));
    clean.truncate(cut.unwrap_or(0));
    clean
}
