//! The pin set of earlier versions: a JSON file (format `medseal-pins-v1`)
//! that was replaced atomically on every change. Only read now, to migrate
//! it into the pin database ([`pin_db`](super::pin_db)).

use std::collections::BTreeSet;
use std::io;
use std::path::Path;

use serde::Deserialize;

use crate::cid::Cid;

/// The only format ever written.
const FORMAT: &str = "medseal-pins-v1";

#[derive(Deserialize)]
struct PinFile {
    format: String,
    pins: BTreeSet<Cid>,
}

/// Reads the pin set at `path`; `None` if there is no such file. A corrupt
/// file is an error: silently treating it as empty would let garbage
/// collection delete pinned data.
pub(crate) fn load(path: &Path) -> io::Result<Option<BTreeSet<Cid>>> {
    let text = match std::fs::read(path) {
        Ok(text) => text,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
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
    Ok(Some(file.pins))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_v1_and_rejects_corruption() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pins.json");
        assert!(load(&path).unwrap().is_none());
        let names = [
            "QmbFMke1KXqnYyBBWxB74N4c5SBnJMVAiMNRcGu6x1AwQH",
            "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku",
        ];
        // As earlier versions wrote it (pretty-printed).
        let text = format!(
            "{{\n  \"format\": \"medseal-pins-v1\",\n  \"pins\": [\n    \"{}\",\n    \"{}\"\n  ]\n}}",
            names[0], names[1]
        );
        std::fs::write(&path, text).unwrap();
        let pins: BTreeSet<Cid> = names.iter().map(|s| s.parse().unwrap()).collect();
        assert_eq!(load(&path).unwrap(), Some(pins));
        std::fs::write(&path, b"{\"format\":\"medseal-pins-v2\",\"pins\":[]}").unwrap();
        assert_eq!(load(&path).unwrap_err().kind(), io::ErrorKind::InvalidData);
        std::fs::write(&path, b"{\"format\":\"medseal-pins-v1\",\"pins\":[\"Qm").unwrap();
        assert_eq!(load(&path).unwrap_err().kind(), io::ErrorKind::InvalidData);
    }
}
