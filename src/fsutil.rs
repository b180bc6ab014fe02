//! Small file helpers: atomic, durable creation or replacement of a file ([`AtomicFile`]).

use std::fs::File;
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// A file written under a temporary name beside its destination and moved into place
/// only by [`AtomicFile::commit`]: readers, and a crash, see the old file (or none) or the
/// complete new one, never a partial write.
///
/// Write through [`std::io::Write`] (wrap it in a [`std::io::BufWriter`] for small
/// writes); the data goes straight to disk, so a file of any size can be streamed. Dropped
/// without a commit, the temporary file is removed.
///
/// ```no_run
/// use std::io::Write;
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let mut file = medseal::AtomicFile::create("out/ecg.pdf", true)?;
/// file.write_all(b"%PDF-1.4")?;
/// // Refuses to replace an existing out/ecg.pdf.
/// file.commit(false)?;
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct AtomicFile {
    file: File,
    temp: PathBuf,
    dest: PathBuf,
    committed: bool,
}

impl AtomicFile {
    /// Creates a temporary file in the directory of `dest` (created if missing). A
    /// `secret` file has mode 0600 on Unix from the start; others get the process default.
    ///
    /// # Errors
    /// [`Error::Io`] if the directory or the file cannot be created.
    pub fn create(dest: impl Into<PathBuf>, secret: bool) -> Result<Self> {
        let dest = dest.into();
        let dir = parent_dir(&dest);
        std::fs::create_dir_all(dir).map_err(Error::io(dir))?;
        let base = dest
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let mut options = std::fs::OpenOptions::new();
        // Never write through a file (or symlink) that is already there.
        options.write(true).create_new(true);
        #[cfg(unix)]
        if secret {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        #[cfg(not(unix))]
        let _ = secret;
        // The pid and clock make a clash unlikely; `create_new` makes one harmless.
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let pid = std::process::id();
        let mut attempt = 0u32;
        loop {
            let temp = dir.join(format!(".{base}.{pid}-{nanos:x}-{attempt}.tmp"));
            match options.open(&temp) {
                Ok(file) => {
                    return Ok(Self {
                        file,
                        temp,
                        dest,
                        committed: false,
                    });
                }
                Err(e) if e.kind() == ErrorKind::AlreadyExists && attempt < 100 => attempt += 1,
                Err(e) => return Err(Error::io(temp)(e)),
            }
        }
    }

    /// The destination.
    pub fn path(&self) -> &Path {
        &self.dest
    }

    /// The temporary file being written (e.g. for its metadata).
    pub fn as_file(&self) -> &File {
        &self.file
    }

    /// Makes the content durable and puts it at the destination: fsyncs the file, moves it
    /// into place and fsyncs the directory. With `overwrite` an existing destination is
    /// replaced; without, it is left alone and the commit fails (checked atomically, by a
    /// hard link, where the file system has them).
    ///
    /// # Errors
    /// [`Error::Io`] for the destination with [`ErrorKind::AlreadyExists`] if it exists
    /// and `overwrite` is false; [`Error::Io`] if syncing or moving fails. On error the
    /// temporary file is removed.
    pub fn commit(mut self, overwrite: bool) -> Result<()> {
        self.file.sync_all().map_err(Error::io(&self.temp))?;
        if overwrite {
            std::fs::rename(&self.temp, &self.dest).map_err(Error::io(&self.dest))?;
        } else {
            self.link_new()?;
        }
        self.committed = true;
        sync_dir(parent_dir(&self.dest))
    }

    /// Moves the temporary file to a destination that must not exist yet.
    fn link_new(&self) -> Result<()> {
        let exists = || Error::io(&self.dest)(ErrorKind::AlreadyExists.into());
        match std::fs::hard_link(&self.temp, &self.dest) {
            Ok(()) => {
                // Linked: the content is in place; the temporary name is just clutter.
                let _ = std::fs::remove_file(&self.temp);
                Ok(())
            }
            Err(e) if e.kind() == ErrorKind::AlreadyExists => Err(exists()),
            Err(_) => {
                // No hard links here: check, then rename (a race can still replace a file).
                if self.dest.symlink_metadata().is_ok() {
                    return Err(exists());
                }
                std::fs::rename(&self.temp, &self.dest).map_err(Error::io(&self.dest))
            }
        }
    }
}

impl Write for AtomicFile {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.file.write(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.file.flush()
    }
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        if !self.committed {
            let _ = std::fs::remove_file(&self.temp);
        }
    }
}

/// The directory a file is in (`.` for a bare file name).
fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    }
}

/// Replaces `path` with `bytes` atomically and durably (an [`AtomicFile`] committed with
/// overwrite): a crash leaves either the old or the new content, never a mix. `secret`
/// files are created with mode 0600 on Unix.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8], secret: bool) -> Result<()> {
    let mut file = AtomicFile::create(path, secret)?;
    file.write_all(bytes).map_err(Error::io(&file.temp))?;
    file.commit(true)
}

/// Fsyncs a directory so a rename or creation in it is durable (no-op off Unix).
pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    #[cfg(unix)]
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(Error::io(dir))?;
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

/// Reads a file, `None` if it does not exist.
pub(crate) fn read_optional(path: &Path) -> Result<Option<Vec<u8>>> {
    match std::fs::read(path) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io(path)(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The names in `dir`, sorted.
    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn commit_creates_then_replaces() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("sub").join("note.txt");
        let mut file = AtomicFile::create(&dest, false).unwrap();
        file.write_all(b"first").unwrap();
        assert!(!dest.exists(), "nothing appears before the commit");
        file.commit(false).unwrap();
        assert_eq!(std::fs::read(&dest).unwrap(), b"first");

        let mut file = AtomicFile::create(&dest, false).unwrap();
        file.write_all(b"second").unwrap();
        file.commit(true).unwrap();
        assert_eq!(std::fs::read(&dest).unwrap(), b"second");
        assert_eq!(names(&dir.path().join("sub")), ["note.txt"]);
    }

    #[test]
    fn no_clobber_refuses_an_existing_file() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("note.txt");
        std::fs::write(&dest, b"keep me").unwrap();
        let mut file = AtomicFile::create(&dest, false).unwrap();
        file.write_all(b"new").unwrap();
        match file.commit(false) {
            Err(Error::Io { path, source }) => {
                assert_eq!(path, dest);
                assert_eq!(source.kind(), ErrorKind::AlreadyExists);
            }
            other => panic!("expected AlreadyExists, got {other:?}"),
        }
        assert_eq!(std::fs::read(&dest).unwrap(), b"keep me");
        assert_eq!(
            names(dir.path()),
            ["note.txt"],
            "the temporary file is gone"
        );
    }

    #[test]
    fn drop_without_commit_removes_the_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("big.bin");
        let mut file = AtomicFile::create(&dest, true).unwrap();
        file.write_all(&[7; 4096]).unwrap();
        assert_eq!(
            names(dir.path()).len(),
            1,
            "the temporary file exists while writing"
        );
        drop(file);
        assert!(names(dir.path()).is_empty());
    }

    #[test]
    fn concurrent_files_for_one_destination_do_not_clash() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("state");
        let a = AtomicFile::create(&dest, false).unwrap();
        let b = AtomicFile::create(&dest, false).unwrap();
        assert_ne!(a.temp, b.temp);
    }

    #[cfg(unix)]
    #[test]
    fn secret_files_have_mode_0600_from_the_start() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("member.key");
        let mut file = AtomicFile::create(&dest, true).unwrap();
        let mode = file.as_file().metadata().unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        file.write_all(b"secret").unwrap();
        file.commit(false).unwrap();
        let mode = std::fs::metadata(&dest).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);

        write_atomic(&dest, b"replaced", true).unwrap();
        let mode = std::fs::metadata(&dest).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(std::fs::read(&dest).unwrap(), b"replaced");
    }
}
