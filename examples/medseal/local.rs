//! The tool's own files in the data directory: the authority's secret key, the members'
//! keys, and safe creation of output files.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use medseal::{Address, Authority, Member};

use crate::fail::{CliResult, EXIT_NOT_FOUND, EXIT_OTHER, Failure};

/// The authority's secret key (public parameters and master key).
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
        Ok(_) => Err(Failure::new(
            EXIT_OTHER,
            "io",
            format!("{} is not a directory", dir.display()),
        )),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(Failure::new(
            EXIT_NOT_FOUND,
            "no_data_dir",
            format!("data directory {} does not exist", dir.display()),
        )
        .hint("run `medseal init` (or pass --dir / set MEDSEAL_DIR to an existing one)")),
        Err(e) => Err(Failure::io(dir, &e)),
    }
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
        Ok(())
    } else {
        Err(Failure::new(
            EXIT_OTHER,
            "invalid_input",
            format!(
                "member name {name:?}: use 1 to {MAX_MEMBER_NAME} letters, digits, `.`, `_` \
                 or `-`, not starting with `.` or `-`"
            ),
        ))
    }
}

pub fn member_path(dir: &Path, name: &str) -> PathBuf {
    dir.join(MEMBERS_DIR).join(format!("{name}.{KEY_EXT}"))
}

/// Loads the key of member `name` from `<dir>/members/<name>.key`.
pub fn load_member(dir: &Path, name: &str) -> CliResult<Member> {
    if check_member_name(name).is_err() {
        return Err(Failure::unknown_member(name, dir));
    }
    let path = member_path(dir, name);
    let bytes = match std::fs::read(&path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(Failure::unknown_member(name, dir));
        }
        Err(e) => return Err(Failure::io(&path, &e)),
    };
    Member::from_bytes(&bytes)
        .map_err(|e| Failure::new(EXIT_OTHER, "corrupt", format!("{}: {e}", path.display())))
}

/// Loads the authority's secret key.
pub fn load_authority(dir: &Path) -> CliResult<Authority> {
    let path = dir.join(AUTHORITY_KEY_FILE);
    let bytes = match std::fs::read(&path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(Failure::no_authority(dir).hint(format!(
                "run `medseal authority setup` first (or copy the authority's key to {})",
                path.display()
            )));
        }
        Err(e) => return Err(Failure::io(&path, &e)),
    };
    Authority::from_bytes(&bytes)
        .map_err(|e| Failure::new(EXIT_OTHER, "corrupt", format!("{}: {e}", path.display())))
}

/// The members whose keys are in `<dir>/members`, sorted by file name. Files that do not
/// load are returned as errors (the caller decides whether to warn).
pub fn members(dir: &Path) -> CliResult<Vec<(PathBuf, Result<Member, String>)>> {
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
            let member = std::fs::read(&path)
                .map_err(|e| e.to_string())
                .and_then(|bytes| Member::from_bytes(&bytes).map_err(|e| e.to_string()));
            (path, member)
        })
        .collect())
}

/// Names of the members in the directory, by address (for display).
pub struct Directory(BTreeMap<Address, String>);

impl Directory {
    pub fn load(dir: &Path) -> Self {
        let names = members(dir)
            .unwrap_or_default()
            .into_iter()
            .filter_map(|(_, m)| m.ok())
            .map(|m| (m.address(), m.name().to_owned()))
            .collect();
        Self(names)
    }

    pub fn name(&self, address: Address) -> Option<&str> {
        self.0.get(&address).map(String::as_str)
    }

    /// `name (0x…)` or just the address.
    pub fn label(&self, address: Address) -> String {
        match self.name(address) {
            Some(name) => format!("{name} ({address})"),
            None => address.to_string(),
        }
    }

    /// The JSON object `{"address": …, "name": … | null}`.
    pub fn json(&self, address: Address) -> serde_json::Value {
        serde_json::json!({ "address": address.to_string(), "name": self.name(address) })
    }
}

/// A member given on the command line: a name from `<dir>/members` or a `0x` address.
pub fn resolve_member(dir: &Path, text: &str) -> CliResult<(Address, Option<String>)> {
    if text.starts_with("0x") || text.starts_with("0X") {
        let address: Address = text.parse().map_err(|e| {
            Failure::new(
                EXIT_OTHER,
                "invalid_input",
                format!("{text:?} is not an address: {e}"),
            )
        })?;
        let name = Directory::load(dir).name(address).map(str::to_owned);
        return Ok((address, name));
    }
    let member = load_member(dir, text)?;
    Ok((member.address(), Some(member.name().to_owned())))
}

fn open_options(secret: bool) -> OpenOptions {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(if secret { 0o600 } else { 0o644 });
    }
    #[cfg(not(unix))]
    let _ = secret;
    options
}

/// A fresh, exclusively created temporary file next to `dest`.
pub fn create_temp(dest: &Path, secret: bool) -> CliResult<(PathBuf, File)> {
    let folder = dest.parent().unwrap_or(Path::new("."));
    let base = dest
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    for attempt in 0..100u32 {
        let tmp = folder.join(format!(
            ".{base}.part-{}-{nanos:x}-{attempt}",
            std::process::id()
        ));
        match open_options(secret).open(&tmp) {
            Ok(file) => return Ok((tmp, file)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(Failure::io(&tmp, &e)),
        }
    }
    Err(Failure::new(
        EXIT_OTHER,
        "io",
        format!("cannot create a temporary file in {}", folder.display()),
    ))
}

pub fn exists_failure(dest: &Path) -> Failure {
    Failure::new(
        EXIT_OTHER,
        "exists",
        format!("{} already exists", dest.display()),
    )
    .hint("pass --force to replace it")
}

/// Moves the finished temporary file `tmp` to `dest`; without `force`, never replaces an
/// existing file (checked atomically where the file system has hard links).
pub fn commit(tmp: &Path, dest: &Path, force: bool) -> CliResult<()> {
    if force {
        return std::fs::rename(tmp, dest).map_err(|e| Failure::io(dest, &e));
    }
    match std::fs::hard_link(tmp, dest) {
        Ok(()) => {
            let _ = std::fs::remove_file(tmp);
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Err(exists_failure(dest)),
        Err(_) => {
            // No hard links here: check, then rename (not atomic, but best effort).
            if dest.symlink_metadata().is_ok() {
                return Err(exists_failure(dest));
            }
            std::fs::rename(tmp, dest).map_err(|e| Failure::io(dest, &e))
        }
    }
}

/// Fsyncs a directory so renames in it are durable (no-op off Unix).
pub fn sync_dir(dir: &Path) {
    #[cfg(unix)]
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
    #[cfg(not(unix))]
    let _ = dir;
}

/// Writes a secret file (mode 0600) durably; refuses to replace an existing one unless
/// `force`.
pub fn write_secret(dest: &Path, bytes: &[u8], force: bool) -> CliResult<()> {
    let folder = dest.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(folder).map_err(|e| Failure::io(folder, &e))?;
    if !force && dest.symlink_metadata().is_ok() {
        return Err(exists_failure(dest));
    }
    let (tmp, mut file) = create_temp(dest, true)?;
    let written = file
        .write_all(bytes)
        .and_then(|()| file.sync_all())
        .map_err(|e| Failure::io(&tmp, &e));
    drop(file);
    let result = written.and_then(|()| commit(&tmp, dest, force));
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    } else {
        sync_dir(folder);
    }
    result
}

/// Temporary files removed on drop unless taken out.
#[derive(Default)]
pub struct TempFiles(pub Vec<PathBuf>);

impl Drop for TempFiles {
    fn drop(&mut self) {
        for path in &self.0 {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// A file name for attachment `index` called `name` (from the record's manifest): path
/// separators and control characters replaced, never `.`/`..`/empty, not hidden.
pub fn safe_file_name(name: &str, index: usize) -> String {
    let mut clean: String = name
        .chars()
        .map(|c| {
            if c == '/' || c == '\\' || c.is_control() || c == ':' && cfg!(windows) {
                '_'
            } else {
                c
            }
        })
        .collect();
    clean = clean.trim().trim_start_matches('.').to_owned();
    if clean.is_empty() {
        clean = format!("attachment-{index}");
    }
    if clean.len() > 200 {
        let mut cut = 200;
        while !clean.is_char_boundary(cut) {
            cut -= 1;
        }
        clean.truncate(cut);
    }
    clean
}
