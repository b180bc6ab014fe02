//! What the commands return: one report type per command, serialised for `--json` and
//! displayed for people, so both forms come from the same values.

use std::fmt;

use medseal::{Address, AttachmentInfo, Member};
use serde::{Serialize, Serializer};

use crate::show::{self, printable};

/// A command's result, as one JSON document or as text.
pub trait Report {
    /// The `--json` document.
    fn json(&self) -> serde_json::Result<serde_json::Value>;
    /// The text form, whole lines.
    fn text(&self) -> String;
}

impl<T: Serialize + fmt::Display> Report for T {
    fn json(&self) -> serde_json::Result<serde_json::Value> {
        // Through `Value`, whose object keys are sorted: a stable order for scripts.
        serde_json::to_value(self)
    }

    fn text(&self) -> String {
        self.to_string()
    }
}

/// Serialises a field through its `Display` (addresses, for one).
pub fn as_display<T: fmt::Display, S: Serializer>(value: &T, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(value)
}

/// A member as the output names them: `{"address", "name"}`, shown as `name (0x…)`.
#[derive(Serialize)]
pub struct MemberRef {
    #[serde(serialize_with = "as_display")]
    pub address: Address,
    /// Known when the member's key is in the data directory.
    pub name: Option<String>,
}

impl MemberRef {
    /// The name if known, else the address.
    pub fn short(&self) -> String {
        self.name
            .clone()
            .unwrap_or_else(|| self.address.to_string())
    }
}

impl From<&Member> for MemberRef {
    fn from(member: &Member) -> Self {
        Self {
            address: member.address(),
            name: Some(member.name().to_owned()),
        }
    }
}

impl fmt::Display for MemberRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.name {
            Some(name) => write!(f, "{name} ({})", self.address),
            None => write!(f, "{}", self.address),
        }
    }
}

/// One attachment of a record.
#[derive(Serialize)]
pub struct AttachmentView {
    pub index: usize,
    pub name: String,
    pub content_type: String,
    pub size: u64,
    pub cid: String,
}

impl AttachmentView {
    pub fn list(attachments: &[AttachmentInfo]) -> Vec<Self> {
        attachments
            .iter()
            .enumerate()
            .map(|(index, a)| Self {
                index,
                name: a.name.clone(),
                content_type: a.content_type.clone(),
                size: a.size,
                cid: a.cid.clone(),
            })
            .collect()
    }

    /// The attachment lines of a record (names come from the owner's manifest, so they
    /// are escaped).
    pub fn write_lines<'a>(
        f: &mut fmt::Formatter<'_>,
        list: impl ExactSizeIterator<Item = &'a Self>,
    ) -> fmt::Result {
        if list.len() == 0 {
            writeln!(f, "  attachments: none")?;
        }
        for a in list {
            writeln!(
                f,
                "  [{}] {}  {}  {}  {}",
                a.index,
                printable(&a.name),
                printable(&a.content_type),
                show::size(a.size),
                printable(&a.cid)
            )?;
        }
        Ok(())
    }
}
