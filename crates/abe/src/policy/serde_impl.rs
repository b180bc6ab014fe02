//! serde support.
//!
//! # JSON form of a policy
//!
//! Each node is an object with exactly one key:
//!
//! | node | JSON |
//! | --- | --- |
//! | attribute | `{"attr": "role:doctor"}` (the raw [label](super::Attribute::label)) |
//! | comparison | `{"cmp": {"name": "level", "op": ">=", "value": 3}}` |
//! | and | `{"and": [node, node, ...]}` |
//! | or | `{"or": [node, node, ...]}` |
//! | threshold | `{"threshold": {"k": 2, "of": [node, node, ...]}}` |
//!
//! Deserialising validates through [`Policy::from_node`] (default [`Limits`](super::Limits)).
//! Nesting is bounded first by the format (serde_json refuses more than 128 levels) and then
//! by the depth limit.
//!
//! An [`AttributeSet`] serialises as its list of [items](AttributeSet::items), e.g.
//! `["role:doctor", "level=5"]`, and deserialises through [`AttributeSet::parse`].

use serde::de::Error as _;
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::node::{Attribute, CmpOp, Node};
use super::{AttributeSet, Policy};

/// Borrowing serialiser for a validated (depth-bounded) tree.
struct SerNode<'a>(&'a Node);

struct SerChildren<'a>(&'a [Node]);

#[derive(Serialize)]
struct SerCompare<'a> {
    name: &'a str,
    op: CmpOp,
    value: u32,
}

#[derive(Serialize)]
struct SerThreshold<'a> {
    k: usize,
    of: SerChildren<'a>,
}

impl Serialize for SerChildren<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.0.iter().map(SerNode))
    }
}

impl Serialize for SerNode<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(1))?;
        match self.0 {
            Node::Attribute(attribute) => map.serialize_entry("attr", &attribute.label())?,
            Node::Compare { name, op, value } => map.serialize_entry(
                "cmp",
                &SerCompare {
                    name,
                    op: *op,
                    value: *value,
                },
            )?,
            Node::And(children) => map.serialize_entry("and", &SerChildren(children))?,
            Node::Or(children) => map.serialize_entry("or", &SerChildren(children))?,
            Node::Threshold { k, children } => map.serialize_entry(
                "threshold",
                &SerThreshold {
                    k: *k,
                    of: SerChildren(children),
                },
            )?,
        }
        map.end()
    }
}

impl Serialize for Policy {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        SerNode(self.root()).serialize(serializer)
    }
}

/// The wire shape, deserialised as is and then converted and validated.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
enum NodeRepr {
    #[serde(rename = "attr")]
    Attr(String),
    #[serde(rename = "cmp")]
    Cmp { name: String, op: CmpOp, value: u32 },
    #[serde(rename = "and")]
    And(Vec<NodeRepr>),
    #[serde(rename = "or")]
    Or(Vec<NodeRepr>),
    #[serde(rename = "threshold")]
    Threshold { k: usize, of: Vec<NodeRepr> },
}

impl NodeRepr {
    /// Converts to a [`Node`]. The depth guard keeps this recursion bounded even for formats
    /// without their own nesting limit; [`Policy::from_node`] then applies the real limits.
    fn into_node(self, depth: usize) -> Result<Node, String> {
        if depth > super::Limits::MAX_DEPTH {
            return Err(format!(
                "policy nested deeper than {}",
                super::Limits::MAX_DEPTH
            ));
        }
        let convert = |children: Vec<NodeRepr>| -> Result<Vec<Node>, String> {
            children
                .into_iter()
                .map(|child| child.into_node(depth + 1))
                .collect()
        };
        Ok(match self {
            Self::Attr(label) => {
                Node::Attribute(Attribute::from_label(&label).map_err(|e| e.to_string())?)
            }
            Self::Cmp { name, op, value } => Node::Compare { name, op, value },
            Self::And(children) => Node::And(convert(children)?),
            Self::Or(children) => Node::Or(convert(children)?),
            Self::Threshold { k, of } => Node::Threshold {
                k,
                children: convert(of)?,
            },
        })
    }
}

impl<'de> Deserialize<'de> for Policy {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let node = NodeRepr::deserialize(deserializer)?
            .into_node(0)
            .map_err(D::Error::custom)?;
        Policy::from_node(node).map_err(D::Error::custom)
    }
}

impl Serialize for AttributeSet {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.items())
    }
}

impl<'de> Deserialize<'de> for AttributeSet {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let items = Vec::<String>::deserialize(deserializer)?;
        AttributeSet::parse(items).map_err(D::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_shape_is_as_documented() {
        let policy: Policy = "role:doctor and 2 of (a, b, c) and level >= 3 or x"
            .parse()
            .unwrap();
        let json = serde_json::to_string(&policy).unwrap();
        assert_eq!(
            json,
            r#"{"or":[{"and":[{"attr":"role:doctor"},{"threshold":{"k":2,"of":[{"attr":"a"},{"attr":"b"},{"attr":"c"}]}},{"cmp":{"name":"level","op":">=","value":3}}]},{"attr":"x"}]}"#
        );
        let back: Policy = serde_json::from_str(&json).unwrap();
        assert_eq!(back, policy);
    }

    #[test]
    fn json_is_validated() {
        for bad in [
            r#"{"and":[{"attr":"a"}]}"#,
            r#"{"threshold":{"k":3,"of":[{"attr":"a"},{"attr":"b"}]}}"#,
            r#"{"attr":"and"}"#,
            r#"{"attr":"a:"}"#,
            r#"{"attr":"a b"}"#,
            r#"{"cmp":{"name":"x","op":">=","value":0}}"#,
            r#"{"cmp":{"name":"x","op":"=","value":1}}"#,
            r#"{"attr":"a","or":[]}"#,
            r#"{"threshold":{"k":2,"of":[{"attr":"a"},{"attr":"b"},{"attr":"a"}]}}"#,
            r#"{"threshold":{"k":1,"of":[{"and":[{"attr":"a"},{"attr":"b"}]},{"and":[{"attr":"b"},{"attr":"a"}]}]}}"#,
            r#"{"nand":[]}"#,
        ] {
            assert!(serde_json::from_str::<Policy>(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn attribute_set_round_trips() {
        let set = AttributeSet::parse(["role:doctor", r#"d:"x y""#, "level=7"]).unwrap();
        let json = serde_json::to_string(&set).unwrap();
        assert_eq!(json, r#"["d:\"x y\"","role:doctor","level=7"]"#);
        assert_eq!(serde_json::from_str::<AttributeSet>(&json).unwrap(), set);
    }
}
