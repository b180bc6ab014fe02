//! Small file helpers: atomic, durable replacement of a file and a length-prefixed binary
//! codec for the facade's own files.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::abe::DecodeError;
use crate::error::{Error, Result};

/// Replaces `path` with `bytes` atomically and durably: write a temporary file in the same
/// directory, fsync it, rename it over `path`, fsync the directory. A crash leaves either
/// the old or the new content, never a mix. `secret` files are created with mode 0600 on
/// Unix.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8], secret: bool) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(Error::io(dir))?;
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp: PathBuf = dir.join(format!(".{file_name}.tmp-{}", std::process::id()));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    if secret {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    #[cfg(not(unix))]
    let _ = secret;
    let mut file = options.open(&tmp).map_err(Error::io(&tmp))?;
    file.write_all(bytes).map_err(Error::io(&tmp))?;
    file.sync_all().map_err(Error::io(&tmp))?;
    drop(file);
    std::fs::rename(&tmp, path).map_err(Error::io(path))?;
    sync_dir(dir)
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

/// Writer of the facade's binary files: `magic | version | fields`, with u32-length-
/// prefixed byte strings.
pub(crate) struct BinWriter(Vec<u8>);

impl BinWriter {
    pub(crate) fn new(magic: &[u8; 4], version: u8) -> Self {
        let mut buf = magic.to_vec();
        buf.push(version);
        Self(buf)
    }

    pub(crate) fn bytes(&mut self, bytes: &[u8]) -> &mut Self {
        self.u32(bytes.len() as u32);
        self.0.extend_from_slice(bytes);
        self
    }

    pub(crate) fn u32(&mut self, v: u32) -> &mut Self {
        self.0.extend_from_slice(&v.to_be_bytes());
        self
    }

    pub(crate) fn finish(&mut self) -> Vec<u8> {
        core::mem::take(&mut self.0)
    }
}

/// Reader matching [`BinWriter`]; every length is checked against the remaining input and
/// `max` before anything is allocated.
pub(crate) struct BinReader<'a> {
    rest: &'a [u8],
    what: &'static str,
}

impl<'a> BinReader<'a> {
    pub(crate) fn new(
        bytes: &'a [u8],
        magic: &[u8; 4],
        version: u8,
        what: &'static str,
    ) -> Result<Self> {
        match bytes {
            [m0, m1, m2, m3, v, rest @ ..] if [*m0, *m1, *m2, *m3] == *magic => {
                if *v != version {
                    return Err(Error::corrupt(what, DecodeError::UnsupportedVersion(*v)));
                }
                Ok(Self { rest, what })
            }
            _ => Err(Error::corrupt(what, DecodeError::BadMagic)),
        }
    }

    pub(crate) fn u32(&mut self) -> Result<u32> {
        let (head, rest) = self
            .rest
            .split_first_chunk::<4>()
            .ok_or_else(|| Error::corrupt(self.what, DecodeError::Truncated))?;
        self.rest = rest;
        Ok(u32::from_be_bytes(*head))
    }

    pub(crate) fn bytes(&mut self, max: usize) -> Result<&'a [u8]> {
        let len = self.u32()? as usize;
        if len > max {
            return Err(Error::corrupt(
                self.what,
                DecodeError::TooLarge {
                    what: "field",
                    found: len as u64,
                    limit: max as u64,
                },
            ));
        }
        if len > self.rest.len() {
            return Err(Error::corrupt(self.what, DecodeError::Truncated));
        }
        let (head, rest) = self.rest.split_at(len);
        self.rest = rest;
        Ok(head)
    }

    pub(crate) fn finish(self) -> Result<()> {
        if self.rest.is_empty() {
            Ok(())
        } else {
            Err(Error::corrupt(
                self.what,
                DecodeError::TrailingBytes(self.rest.len()),
            ))
        }
    }
}
