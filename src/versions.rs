//! Attribute versions: revocation of members before their keys expire.
//!
//! See [`crate::notes::revocation`] for the whole scheme (what the authority, the owners
//! and the chain do, costs, and what revocation does not undo). In short:
//!
//! - Every *versionable* attribute (see below) has a version, a counter kept on chain per
//!   [`attribute_hash`]; absent means 0. Version 0 is the attribute as it always was: no
//!   existing key or ciphertext changes.
//! - Everything created is encrypted under [`versioned_policy`]: each versionable leaf
//!   spelt at its current version ([`AttributeVersions`]).
//! - A key issued while `role:nurse` is at version `v` carries `role:nurse` at *every*
//!   version `0 ..= v`, so it opens what was created before and after each bump. Revoking
//!   a member bumps each of its versionable attributes: its key (holding up to `v - 1`)
//!   opens nothing created afterwards, while the remaining holders of those attributes get
//!   renewed keys carrying `v`. Members sharing no bumped attribute keep their keys.
//!
//! # Spelling of a version
//!
//! Version `v >= 1` of an attribute appends `.v<v>` (decimal, no leading zero) to its
//! **name** and keeps its value:
//!
//! | attribute | version 0 | version 2 |
//! |---|---|---|
//! | `role:nurse` | `role:nurse` | `role.v2:nurse` |
//! | `dept:"cardio unit"` | `dept:"cardio unit"` | `dept.v2:"cardio unit"` |
//! | bare `admin` | `admin` | `admin.v2` |
//! | numeric `level=3` (policy `level >= 3`) | `level#i=b` | `level.v2#i=b` (`level.v2 >= 3`) |
//!
//! Names match `[A-Za-z_][A-Za-z0-9_.-]*`, so every spelling is an ordinary attribute of
//! the policy grammar (capsule policies print and parse back unchanged). Names ending in
//! `.v` followed by digits are **reserved** ([`crate::Authority::issue`] refuses them, and
//! [`versioned_policy`] refuses a policy naming them), so no issued attribute collides with
//! a version spelling and a key's user-level attributes are read back without ambiguity.
//!
//! # What is versioned
//!
//! Every attribute except the reserved ones: `id:<address>` (a member's identity is not
//! shared; a revoked member's `id:` clauses are removed by revoking their grants) and the
//! validity attributes `valid-year`/`valid-month` (common to everyone valid in a month:
//! bumping them would re-key everyone).
//!
//! **Numeric attributes are versioned by name**, whatever the value: `level=3` and
//! `level=5` share bit labels (`level#0=1`), so a revoked `level=3` key would otherwise
//! keep satisfying `level >= 1` in new records (a policy of comparisons alone needs no
//! other attribute). Their version unit is written `level=*`; bumping it re-keys every
//! holder of any `level` value. Their keys grow by 32 labels per version.

use std::collections::BTreeMap;

use crate::abe::policy::{Attribute, Node};
use crate::abe::{AttributeSet, Policy};
use crate::chain::B256;
use crate::error::{InvalidInput, Result};
use crate::validity;

/// What a version spelling appends to an attribute name: `.v` and the decimal version.
pub const VERSION_MARK: &str = ".v";
/// The version-unit text of a numeric attribute `name` is `name=*` (every value).
const NUMERIC_UNIT: &str = "=*";
/// The identity attribute name (never versioned).
const ID_NAME: &str = "id";

/// The current version of attributes: canonical attribute text ([`canonical_attribute`])
/// to version; an attribute absent from the map is at version 0.
///
/// Built from the chain's counters (`attributeVersions(bytes32[])` by [`attribute_hash`]),
/// or by hand in tests. Equality is on the entries with a nonzero version.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AttributeVersions {
    versions: BTreeMap<String, u32>,
}

impl AttributeVersions {
    /// Every attribute at version 0 (what existing callers and keys assume).
    pub fn new() -> Self {
        Self::default()
    }

    /// The version of `attribute` (any spelling [`canonical_attribute`] accepts).
    ///
    /// # Errors
    /// As for [`canonical_attribute`].
    pub fn get(&self, attribute: &str) -> Result<u32> {
        Ok(self.version_of(&canonical_attribute(attribute)?))
    }

    /// Sets the version of `attribute`; returns `self` for chaining. Version 0 removes the
    /// entry.
    ///
    /// # Errors
    /// As for [`canonical_attribute`].
    pub fn set(&mut self, attribute: &str, version: u32) -> Result<&mut Self> {
        let unit = canonical_attribute(attribute)?;
        if version == 0 {
            self.versions.remove(&unit);
        } else {
            self.versions.insert(unit, version);
        }
        Ok(self)
    }

    /// Builds the map from the chain's answer: `attributes[i]` is at `versions[i]` (the
    /// order [`attribute_hash`]es were asked in).
    ///
    /// # Errors
    /// As for [`canonical_attribute`]; [`InvalidInput::TooMany`] if the lengths differ.
    pub fn from_lists<S: AsRef<str>>(attributes: &[S], versions: &[u32]) -> Result<Self> {
        if attributes.len() != versions.len() {
            return Err(InvalidInput::TooMany {
                what: "attribute versions",
                count: versions.len(),
                limit: attributes.len(),
            }
            .into());
        }
        let mut map = Self::new();
        for (attribute, &version) in attributes.iter().zip(versions) {
            map.set(attribute.as_ref(), version)?;
        }
        Ok(map)
    }

    /// The attributes above version 0 and their versions, in canonical text order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, u32)> + '_ {
        self.versions.iter().map(|(unit, &v)| (unit.as_str(), v))
    }

    /// Whether every attribute is at version 0.
    pub fn is_empty(&self) -> bool {
        self.versions.is_empty()
    }

    fn version_of(&self, unit: &str) -> u32 {
        self.versions.get(unit).copied().unwrap_or(0)
    }

    /// The higher of the two versions per attribute (versions on chain only grow: a map
    /// read earlier never lowers what a key already carries).
    pub fn max(&self, other: &Self) -> Self {
        let mut merged = self.clone();
        for (unit, &v) in &other.versions {
            let entry = merged.versions.entry(unit.clone()).or_insert(0);
            *entry = (*entry).max(v);
        }
        merged
    }
}

/// The canonical text of an attribute's version unit, which [`attribute_hash`] hashes:
/// the policy-syntax form for a named attribute (`role:nurse`, `dept:"cardio unit"`,
/// `admin`: parsed and printed again, so `role:nurse`, ` role:nurse ` and `role:"nurse"`
/// are one attribute) and `name=*` for a numeric attribute, given as `name=<any value>`
/// or `name=*` (all values of a numeric attribute share one version, see the
/// [module docs](self)).
///
/// # Errors
/// [`crate::Error::Policy`] for text that is not an attribute item;
/// [`InvalidInput::ReservedAttribute`] for the unversioned reserved names (`id`,
/// `valid-year`, `valid-month`) and for version spellings (`role.v2:nurse`).
pub fn canonical_attribute(text: &str) -> Result<String> {
    let trimmed = text.trim();
    let reserved = || InvalidInput::ReservedAttribute {
        attribute: text.to_owned(),
    };
    if let Some(name) = trimmed.strip_suffix(NUMERIC_UNIT) {
        let name = name.trim_end();
        // Validates the name like a numeric item would.
        AttributeSet::parse([format!("{name}=0")])?;
        if !is_versionable(name) {
            return Err(reserved().into());
        }
        return Ok(format!("{name}{NUMERIC_UNIT}"));
    }
    let item = AttributeSet::parse([trimmed])?;
    if let Some(attribute) = item.attributes().next() {
        if !is_versionable(attribute.name()) {
            return Err(reserved().into());
        }
        return Ok(attribute.to_string());
    }
    match item.numeric().next() {
        Some((name, _)) if is_versionable(name) => Ok(format!("{name}{NUMERIC_UNIT}")),
        _ => Err(reserved().into()),
    }
}

/// keccak256 of [`canonical_attribute`]`(attribute)` as UTF-8: the key of the chain's
/// version counter of the attribute (`attributeVersions(bytes32[])`,
/// `revokeMember(.., bumpAttributes)`).
///
/// # Errors
/// As for [`canonical_attribute`].
pub fn attribute_hash(attribute: &str) -> Result<B256> {
    Ok(alloy_primitives::keccak256(
        canonical_attribute(attribute)?.as_bytes(),
    ))
}

/// The digest of a member's attributes recorded by the on-chain member registry:
/// keccak256 over the sorted, de-duplicated canonical items (`role:nurse`,
/// `dept:"cardio unit"`, `level=3`, as [`crate::Member::own_attributes`] lists them),
/// each as a big-endian u32 byte length followed by its UTF-8 bytes. The reserved `id:`
/// and validity attributes are not part of it (the registry holds address and validity
/// separately), nor are version spellings.
///
/// # Errors
/// [`crate::Error::Policy`] for an item that does not parse;
/// [`InvalidInput::ReservedAttribute`] for a reserved name.
pub fn attributes_digest<I, S>(items: I) -> Result<B256>
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    let mut canonical = Vec::new();
    for item in items {
        let item = item.as_ref();
        let set = AttributeSet::parse([item])?;
        let reserved = set.attributes().any(|a| is_reserved_name(a.name()))
            || set.numeric().any(|(name, _)| is_reserved_name(name));
        if reserved {
            return Err(InvalidInput::ReservedAttribute {
                attribute: item.to_owned(),
            }
            .into());
        }
        canonical.extend(set.items());
    }
    canonical.sort_unstable();
    canonical.dedup();
    let mut bytes = Vec::new();
    for item in &canonical {
        // Items are at most a label long (1 KiB by default): the length fits.
        bytes.extend_from_slice(&(item.len() as u32).to_be_bytes());
        bytes.extend_from_slice(item.as_bytes());
    }
    Ok(alloy_primitives::keccak256(&bytes))
}

/// The version units of a member's user-level attributes (items as
/// [`crate::Member::own_attributes`] lists them), sorted and de-duplicated: what
/// revoking the member bumps.
///
/// # Errors
/// As for [`canonical_attribute`].
pub fn version_units<I, S>(items: I) -> Result<Vec<String>>
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    let mut units = items
        .into_iter()
        .map(|item| canonical_attribute(item.as_ref()))
        .collect::<Result<Vec<_>>>()?;
    units.sort_unstable();
    units.dedup();
    Ok(units)
}

/// The version units a policy's leaves name (sorted, de-duplicated): the attributes whose
/// versions [`versioned_policy`] needs (ask the chain for their [`attribute_hash`]es).
/// Reserved names and version spellings are skipped.
pub fn versionable_attributes(policy: &Policy) -> Vec<String> {
    fn walk(node: &Node, out: &mut Vec<String>) {
        match node {
            Node::Attribute(a) if is_versionable(a.name()) => out.push(a.to_string()),
            Node::Compare { name, .. } if is_versionable(name) => {
                out.push(format!("{name}{NUMERIC_UNIT}"));
            }
            Node::And(children) | Node::Or(children) | Node::Threshold { children, .. } => {
                children.iter().for_each(|c| walk(c, out));
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(policy.root(), &mut out);
    out.sort_unstable();
    out.dedup();
    out
}

/// `policy` with every versionable attribute and comparison spelt at its current version
/// in `versions` (`role:nurse` at version 2 becomes `role.v2:nurse`, `level >= 3` with
/// `level=*` at 1 becomes `level.v1 >= 3`); `id:` and validity attributes unchanged.
/// With an empty map the result equals `policy`. Same shape, same number of LSSS rows.
///
/// # Errors
/// [`InvalidInput::ReservedAttribute`] if `policy` already names a version spelling (a
/// record's base policy is written without versions; spelling one by hand could grant a
/// revoked key); [`crate::Error::Policy`] if a renamed label exceeds the policy limits.
pub fn versioned_policy(policy: &Policy, versions: &AttributeVersions) -> Result<Policy> {
    if let Some(spelt) = version_spelling_in(policy) {
        return Err(InvalidInput::ReservedAttribute { attribute: spelt }.into());
    }
    if versions.is_empty() {
        return Ok(policy.clone());
    }
    let rename = |name: &str, unit: &str| -> Option<String> {
        let v = versions.version_of(unit);
        (v > 0).then(|| versioned_name(name, v))
    };
    let root = map_names(policy.root(), &|node: &Node| match node {
        Node::Attribute(a) if is_versionable(a.name()) => {
            let renamed = rename(a.name(), &a.to_string())?;
            Some(Attribute::new(renamed, a.value().map(str::to_owned)).map(Node::Attribute))
        }
        Node::Compare { name, op, value } if is_versionable(name) => {
            let renamed = rename(name, &format!("{name}{NUMERIC_UNIT}"))?;
            Some(Ok(Node::Compare {
                name: renamed,
                op: *op,
                value: *value,
            }))
        }
        _ => None,
    })?;
    Ok(Policy::from_node(root)?)
}

/// The inverse of [`versioned_policy`]: every version spelling back to version 0's (used
/// to recover a base policy from a published one).
pub fn unversioned_policy(policy: &Policy) -> Policy {
    if version_spelling_in(policy).is_none() {
        return policy.clone();
    }
    let root = map_names(policy.root(), &|node: &Node| match node {
        Node::Attribute(a) => {
            let (name, _) = split_version(a.name())?;
            Some(Attribute::new(name, a.value().map(str::to_owned)).map(Node::Attribute))
        }
        Node::Compare { name, op, value } => {
            let (name, _) = split_version(name)?;
            Some(Ok(Node::Compare {
                name: name.to_owned(),
                op: *op,
                value: *value,
            }))
        }
        _ => None,
    });
    // Shorter names of the same shape always validate; keep the input otherwise.
    root.ok()
        .and_then(|root| Policy::from_node(root).ok())
        .unwrap_or_else(|| policy.clone())
}

/// Rebuilds `node` with each leaf `leaf` maps to `Some` replaced (validated trees are at
/// most `Limits::MAX_DEPTH` deep: the recursion is bounded).
fn map_names(
    node: &Node,
    leaf: &dyn Fn(&Node) -> Option<core::result::Result<Node, crate::abe::PolicyError>>,
) -> core::result::Result<Node, crate::abe::PolicyError> {
    let map = |children: &[Node]| -> core::result::Result<Vec<Node>, _> {
        children.iter().map(|c| map_names(c, leaf)).collect()
    };
    Ok(match node {
        Node::And(children) => Node::And(map(children)?),
        Node::Or(children) => Node::Or(map(children)?),
        Node::Threshold { k, children } => Node::Threshold {
            k: *k,
            children: map(children)?,
        },
        other => match leaf(other) {
            Some(renamed) => renamed?,
            None => other.clone(),
        },
    })
}

/// The first version spelling (`role.v2:nurse`, `level.v1 >= 3`) in `policy`, in policy
/// syntax.
pub(crate) fn version_spelling_in(policy: &Policy) -> Option<String> {
    fn find(node: &Node) -> Option<String> {
        match node {
            Node::Attribute(a) if split_version(a.name()).is_some() => Some(a.to_string()),
            Node::Compare { name, op, value } if split_version(name).is_some() => {
                Some(format!("{name} {} {value}", op.symbol()))
            }
            Node::And(children) | Node::Or(children) | Node::Threshold { children, .. } => {
                children.iter().find_map(find)
            }
            _ => None,
        }
    }
    find(policy.root())
}

/// `name` at version `v`: `name.v<v>` (`v >= 1`).
pub(crate) fn versioned_name(name: &str, v: u32) -> String {
    format!("{name}{VERSION_MARK}{v}")
}

/// `(base name, version)` if `name` is a version spelling: it ends in `.v` and digits.
/// Any digits count (also `x.v0`, `x.v007`), so that no such name can be issued.
pub(crate) fn split_version(name: &str) -> Option<(&str, u32)> {
    let (base, digits) = name.rsplit_once(VERSION_MARK)?;
    if base.is_empty() || digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((base, digits.parse().unwrap_or(u32::MAX)))
}

/// Whether `name` is reserved in keys' user-level attributes: `id`, the validity names
/// and version spellings.
pub(crate) fn is_reserved_name(name: &str) -> bool {
    name == ID_NAME || validity::is_reserved(name) || split_version(name).is_some()
}

/// Whether attributes named `name` are versioned.
fn is_versionable(name: &str) -> bool {
    !is_reserved_name(name)
}

/// Adds to `attrs` (a key's user-level attributes) the version spellings `1 ..= v` of each
/// of them at version `v` in `versions`.
pub(crate) fn add_version_spellings(
    attrs: &mut AttributeSet,
    versions: &AttributeVersions,
) -> Result<()> {
    let named: Vec<Attribute> = attrs
        .attributes()
        .filter(|a| is_versionable(a.name()))
        .cloned()
        .collect();
    let numeric: Vec<(String, u32)> = attrs
        .numeric()
        .filter(|(name, _)| is_versionable(name))
        .map(|(name, value)| (name.to_owned(), value))
        .collect();
    for a in named {
        for v in 1..=versions.version_of(&a.to_string()) {
            let spelt = Attribute::new(versioned_name(a.name(), v), a.value().map(str::to_owned))?;
            attrs.insert_attribute(spelt)?;
        }
    }
    for (name, value) in numeric {
        for v in 1..=versions.version_of(&format!("{name}{NUMERIC_UNIT}")) {
            attrs.insert_numeric(&versioned_name(&name, v), value)?;
        }
    }
    Ok(())
}

/// The versions a key's attributes carry: per version unit, the highest version spelling
/// it holds.
pub(crate) fn versions_of(attrs: &AttributeSet) -> AttributeVersions {
    let mut versions = AttributeVersions::new();
    let mut note = |unit: String, v: u32| {
        let entry = versions.versions.entry(unit).or_insert(0);
        *entry = (*entry).max(v);
    };
    for a in attrs.attributes() {
        if let Some((base, v)) = split_version(a.name())
            && let Ok(base) = Attribute::new(base, a.value().map(str::to_owned))
        {
            note(base.to_string(), v);
        }
    }
    for (name, _) in attrs.numeric() {
        if let Some((base, v)) = split_version(name) {
            note(format!("{base}{NUMERIC_UNIT}"), v);
        }
    }
    versions
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::abe::lsss::Lsss;

    type F = blstrs::Scalar;

    fn policy(text: &str) -> Policy {
        text.parse().unwrap()
    }

    #[test]
    fn canonical_texts_and_hashes_agree_across_spellings() {
        for (a, b) in [
            ("role:nurse", " role:nurse "),
            ("role:nurse", "role:\"nurse\""),
            ("dept:\"cardio unit\"", "  dept:\"cardio unit\""),
            ("admin", "admin "),
            ("level=3", "level = 5"),
            ("level=*", "level=7"),
        ] {
            assert_eq!(
                canonical_attribute(a).unwrap(),
                canonical_attribute(b).unwrap()
            );
            assert_eq!(attribute_hash(a).unwrap(), attribute_hash(b).unwrap());
        }
        assert_eq!(canonical_attribute("level = 3").unwrap(), "level=*");
        assert_eq!(
            attribute_hash("role:nurse").unwrap(),
            alloy_primitives::keccak256(b"role:nurse")
        );
        assert_ne!(
            attribute_hash("role:nurse").unwrap(),
            attribute_hash("role:doctor").unwrap()
        );
        // A bare attribute and a numeric one of the same name are distinct units.
        assert_ne!(
            canonical_attribute("level").unwrap(),
            canonical_attribute("level=1").unwrap()
        );
        for reserved in [
            "id:00",
            "valid-year:2027",
            "valid-month=3",
            "role.v2:nurse",
            "x.v0",
            "level.v1=3",
            "level.v1=*",
            "id=*",
        ] {
            assert!(
                matches!(
                    canonical_attribute(reserved),
                    Err(crate::Error::InvalidInput(
                        InvalidInput::ReservedAttribute { .. }
                    ))
                ),
                "{reserved}"
            );
        }
        for bad in ["role nurse", "", "=*", "a and b", "level=x"] {
            assert!(
                matches!(canonical_attribute(bad), Err(crate::Error::Policy(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn spellings_split_back() {
        assert_eq!(versioned_name("role", 2), "role.v2");
        assert_eq!(split_version("role.v2"), Some(("role", 2)));
        assert_eq!(split_version("a.b.v10"), Some(("a.b", 10)));
        for plain in ["role", "role.v", "role.vx", "rolev2", "role.v2x", "v2"] {
            assert_eq!(split_version(plain), None, "{plain}");
        }
        assert!(is_reserved_name("x.v007") && is_reserved_name("id"));
        assert!(!is_reserved_name("role.vet") && !is_reserved_name("v.2"));
    }

    #[test]
    fn versioned_policies_rename_only_versionable_leaves_and_keep_rows() {
        let mut versions = AttributeVersions::new();
        versions
            .set("role:nurse", 2)
            .unwrap()
            .set("level=*", 1)
            .unwrap()
            .set("dept:\"cardio unit\"", 3)
            .unwrap();
        let id = "id:00112233445566778899aabbccddeeff00112233";
        let base = policy(&format!(
            "(role:nurse and dept:\"cardio unit\" and valid-year:2027) or \
             2 of (role:doctor, level >= 3, {id})"
        ));
        let got = versioned_policy(&base, &versions).unwrap();
        assert_eq!(
            got,
            policy(&format!(
                "(role.v2:nurse and dept.v3:\"cardio unit\" and valid-year:2027) or \
                 2 of (role:doctor, level.v1 >= 3, {id})"
            ))
        );
        let rows = |p: &Policy| Lsss::<F>::from_policy(p).rows().len();
        assert_eq!(rows(&got), rows(&base));
        assert_eq!(got.to_string().parse::<Policy>().unwrap(), got);
        assert_eq!(unversioned_policy(&got), base);
        assert_eq!(
            versioned_policy(&base, &AttributeVersions::new()).unwrap(),
            base
        );
        assert_eq!(
            versionable_attributes(&base),
            [
                "dept:\"cardio unit\"",
                "level=*",
                "role:doctor",
                "role:nurse"
            ]
        );
        // A hand-written version spelling is refused (it could grant an old version).
        assert!(matches!(
            versioned_policy(&policy("role.v1:nurse or a"), &versions),
            Err(crate::Error::InvalidInput(
                InvalidInput::ReservedAttribute { .. }
            ))
        ));
    }

    #[test]
    fn keys_carry_every_version_up_to_the_current_one() {
        let mut versions = AttributeVersions::new();
        versions
            .set("role:nurse", 3)
            .unwrap()
            .set("level=*", 1)
            .unwrap();
        let mut attrs = AttributeSet::parse(["role:nurse", "dept:icu", "level=4"]).unwrap();
        add_version_spellings(&mut attrs, &versions).unwrap();
        for label in [
            "role:nurse",
            "role.v1:nurse",
            "role.v2:nurse",
            "role.v3:nurse",
        ] {
            assert!(attrs.contains_label(label), "{label}");
        }
        assert!(!attrs.contains_label("role.v4:nurse") && !attrs.contains_label("dept.v1:icu"));
        assert_eq!(attrs.numeric_value("level.v1"), Some(4));
        // 3 + 1 named, 2 x 32 bit labels.
        assert_eq!(attrs.len(), 5 + 64);
        assert_eq!(versions_of(&attrs), versions);
        // Reads records of every version up to its own, none later.
        for v in 0..=4u32 {
            let mut at = AttributeVersions::new();
            at.set("role:nurse", v).unwrap();
            let p = versioned_policy(&policy("role:nurse and dept:icu"), &at).unwrap();
            let reads = Lsss::<F>::from_policy(&p).reconstruct(&attrs).is_some();
            assert_eq!(reads, v <= 3, "version {v}");
        }
    }

    #[test]
    fn digests_are_of_sorted_canonical_items() {
        let a = attributes_digest(["role:nurse", "level=3", "dept:\"cardio unit\""]).unwrap();
        let b =
            attributes_digest([" dept:\"cardio unit\"", "level = 3", "role:\"nurse\""]).unwrap();
        assert_eq!(a, b);
        let mut bytes = Vec::new();
        for item in ["dept:\"cardio unit\"", "level=3", "role:nurse"] {
            bytes.extend_from_slice(&(item.len() as u32).to_be_bytes());
            bytes.extend_from_slice(item.as_bytes());
        }
        assert_eq!(a, alloy_primitives::keccak256(&bytes));
        assert_ne!(a, attributes_digest(["role:nurse", "level=4"]).unwrap());
        assert!(attributes_digest(["id:00"]).is_err());
        assert!(attributes_digest(["role.v1:nurse"]).is_err());
    }

    #[test]
    fn maps_from_chain_lists() {
        let map = AttributeVersions::from_lists(&["role:nurse", "dept:icu"], &[2, 0]).unwrap();
        assert_eq!(map.get("role:nurse").unwrap(), 2);
        assert_eq!(map.get("dept:icu").unwrap(), 0);
        assert_eq!(map.iter().collect::<Vec<_>>(), [("role:nurse", 2)]);
        assert!(AttributeVersions::from_lists(&["a"], &[]).is_err());
        let mut lower = AttributeVersions::new();
        lower
            .set("role:nurse", 1)
            .unwrap()
            .set("dept:icu", 4)
            .unwrap();
        let merged = map.max(&lower);
        assert_eq!(merged.get("role:nurse").unwrap(), 2);
        assert_eq!(merged.get("dept:icu").unwrap(), 4);
    }
}
