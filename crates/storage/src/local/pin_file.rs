//! The persisted pin set: a small JSON file replaced atomically on every
//! change, so a crash leaves either the old or the new set, never a mix.

use std::collections::BTreeSet;
use std::io;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::cid::Cid;
use crate::local::flatfs::BlockDir;

/// Identifies the file format, so a future version can migrate it.
const FORMAT: &str = "medseal-pins-v1";

#[derive(Serialize, Deserialize)]
struct PinFile {
    format: String,
    pins: BTreeSet<Cid>,
}

/// Reads the pin set at `path`; a missing file is an empty set. A corrupt
/// file is an error: silently treating it as empty would let garbage
/// collection delete pinned data.
pub(crate) fn load(path: &Path) -> io::Result<BTreeSet<Cid>> {
    let text = match std::fs::read(path) {
        Ok(text) => text,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(BTreeSet::new()),
        Err(e) => return Err(e),
    };
    let file: PinFile = serde_json::from_slice(&text).map_err(|e| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("pin file {} is corrupt: {e}", path.display()),
        )
    })?;
    if file.format != FORMAT {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "pin file {} has unknown format {:?}",
                path.display(),
                file.format
            ),
        ));
    }
    Ok(file.pins)
}

/// Replaces the pin set at `path` atomically and durably.
pub(crate) fn save(dir: &BlockDir, path: &Path, pins: &BTreeSet<Cid>) -> io::Result<()> {
    let file = PinFile {
        format: FORMAT.to_owned(),
        pins: pins.clone(),
    };
    let text = serde_json::to_vec_pretty(&file).map_err(io::Error::other)?;
    dir.write_atomically(path, &text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_rejects_corruption() {
        let dir = tempfile::tempdir().unwrap();
        let blocks = BlockDir::open(dir.path()).unwrap();
        let path = dir.path().join("pins.json");
        assert!(load(&path).unwrap().is_empty());
        let pins: BTreeSet<Cid> = [
            "QmbFMke1KXqnYyBBWxB74N4c5SBnJMVAiMNRcGu6x1AwQH",
            "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku",
        ]
        .iter()
        .map(|s| s.parse().unwrap())
        .collect();
        save(&blocks, &path, &pins).unwrap();
        assert_eq!(load(&path).unwrap(), pins);
        std::fs::write(&path, b"{\"format\":\"medseal-pins-v1\",\"pins\":[\"Qm").unwrap();
        assert_eq!(load(&path).unwrap_err().kind(), io::ErrorKind::InvalidData);
    }
}
