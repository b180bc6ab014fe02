//! The attribute vocabulary: the attributes of the keys the authority issued (those in
//! DIR/members), and the warning for a policy that names others.
//!
//! A policy naming an attribute no issued key carries (a bare `doctor` for
//! `role:doctor`, a typo) is valid CP-ABE: it is accepted, and that part of it can never
//! be satisfied. The tool cannot know every key an authority issued elsewhere, so this is
//! a warning on stderr, never a failure.

use std::collections::BTreeSet;
use std::path::Path;

use medseal::abe::Policy;
use medseal::abe::policy::Node;

use crate::local;
use crate::show::printable;

/// Most suggestions per unknown attribute, and most issued attributes listed when none
/// is close.
const MAX_SUGGESTIONS: usize = 3;
const MAX_LISTED: usize = 12;

/// The attributes of the issued keys.
pub struct Vocabulary {
    /// Attribute labels (`role:doctor`, `admin`), members' `id:` attributes included.
    attributes: BTreeSet<String>,
    /// Names of numeric attributes (`level` of `level=3`).
    numeric: BTreeSet<String>,
}

impl Vocabulary {
    /// The attributes of every plain key in `<dir>/members` (keys that do not load are
    /// skipped: `medseal members` reports them; sealed keys are not opened for a warning).
    pub fn load(dir: &Path) -> Self {
        let mut attributes = BTreeSet::new();
        let mut numeric = BTreeSet::new();
        for (_, member) in local::members(dir).unwrap_or_default() {
            // Sealed keys are not opened for a warning (no passphrase is asked for).
            let Some(member) = member.ok().and_then(|key| key.plain()) else {
                continue;
            };
            let set = member.attributes();
            // Validity attributes are the vault's, never a policy's: not suggested.
            let validity = |name: &str| {
                name == medseal::validity::VALID_YEAR || name == medseal::validity::VALID_MONTH
            };
            attributes.extend(
                set.attributes()
                    .filter(|a| !validity(a.name()))
                    .map(|a| a.label()),
            );
            numeric.extend(set.numeric().map(|(name, _)| name.to_owned()));
        }
        Self {
            attributes,
            numeric,
        }
    }

    /// One line per attribute of `policy` that no issued key carries, with the issued
    /// attributes closest to it (or, if none is close, the issued ones).
    pub fn warnings(&self, policy: &Policy) -> Vec<String> {
        let mut unknown = BTreeSet::new();
        self.collect_unknown(policy.root(), &mut unknown);
        unknown
            .into_iter()
            .map(|leaf| {
                let shown = printable(&leaf.shown);
                let mut line = format!(
                    "warning: no issued key carries the policy's attribute `{shown}`: only a \
                     key issued with it later can satisfy that part of the policy"
                );
                let close = self.close_to(&leaf);
                if close.is_empty() {
                    let listed = self.listed();
                    if !listed.is_empty() {
                        line.push_str(&format!("; issued attributes: {listed}"));
                    }
                } else {
                    line.push_str(&format!("; did you mean {}?", close.join(" or ")));
                }
                line
            })
            .collect()
    }

    /// Prints [`Vocabulary::warnings`] on stderr.
    pub fn warn(&self, policy: &Policy) {
        for line in self.warnings(policy) {
            eprintln!("{line}");
        }
    }

    fn collect_unknown(&self, node: &Node, out: &mut BTreeSet<Leaf>) {
        match node {
            Node::Attribute(a) if !self.attributes.contains(&a.label()) => {
                out.insert(Leaf {
                    shown: a.to_string(),
                    key: a.label(),
                    numeric: false,
                    value: a.value().map(str::to_owned),
                    name: a.name().to_owned(),
                });
            }
            Node::Compare { name, .. } if !self.numeric.contains(name) => {
                out.insert(Leaf {
                    shown: name.clone(),
                    key: name.clone(),
                    numeric: true,
                    value: None,
                    name: name.clone(),
                });
            }
            Node::And(children) | Node::Or(children) | Node::Threshold { children, .. } => {
                for child in children {
                    self.collect_unknown(child, out);
                }
            }
            // Issued attributes; and Node is non-exhaustive: a new kind of leaf is not checked.
            _ => {}
        }
    }

    /// Issued attributes close to `leaf`, closest first: the bare word as a value or a
    /// name (`doctor` → `role:doctor`), the same value under another name, a label that
    /// extends it or that it extends (`dept:cardio` → `dept:cardiology`), or a label a
    /// few edits away (`role:docter` → `role:doctor`).
    fn close_to(&self, leaf: &Leaf) -> Vec<String> {
        let candidates: Box<dyn Iterator<Item = &String>> = if leaf.numeric {
            Box::new(self.numeric.iter())
        } else {
            Box::new(self.attributes.iter().filter(|a| !a.starts_with("id:")))
        };
        let key = leaf.key.to_lowercase();
        let word = leaf.value.as_deref().unwrap_or(&leaf.name).to_lowercase();
        let mut scored: Vec<(usize, &String)> = candidates
            .filter_map(|known| {
                let lower = known.to_lowercase();
                let (name, value) = lower.split_once(':').unwrap_or((&lower, ""));
                let score = if value == word || name == word {
                    0
                } else if key.len().min(lower.len()) >= 3
                    && (lower.starts_with(&key) || key.starts_with(&lower))
                {
                    1
                } else {
                    let distance = strsim::levenshtein(&key, &lower);
                    if distance > (key.len() / 4).max(2) {
                        return None;
                    }
                    distance + 1
                };
                Some((score, known))
            })
            .collect();
        scored.sort();
        scored
            .into_iter()
            .take(MAX_SUGGESTIONS)
            .map(|(_, known)| format!("`{}`", printable(known)))
            .collect()
    }

    /// The issued attributes, without members' `id:` attributes, for a warning.
    fn listed(&self) -> String {
        let named = self.attributes.iter().filter(|a| !a.starts_with("id:"));
        let numeric = self.numeric.iter().map(|n| format!("{n} (numeric)"));
        let all: Vec<String> = named.cloned().chain(numeric).collect();
        let mut text = all
            .iter()
            .take(MAX_LISTED)
            .map(|a| printable(a))
            .collect::<Vec<_>>()
            .join(", ");
        if all.len() > MAX_LISTED {
            text.push_str(&format!(", … ({} in all)", all.len()));
        }
        text
    }
}

/// A policy attribute no issued key carries.
#[derive(PartialEq, Eq, PartialOrd, Ord)]
struct Leaf {
    /// As the policy syntax writes it.
    shown: String,
    /// The label (or the numeric attribute's name) compared with the vocabulary.
    key: String,
    numeric: bool,
    name: String,
    value: Option<String>,
}
