//! Canonical printing: lowercase keywords, single spaces, minimal parentheses that keep the
//! tree's structure, values quoted only when needed.

use core::fmt::{self, Write};

use super::node::Node;

/// Writes `node` in canonical form. Only called on validated trees, whose depth is bounded,
/// so the recursion is bounded too.
pub(crate) fn write_node(out: &mut dyn Write, node: &Node) -> fmt::Result {
    match node {
        Node::Attribute(attribute) => write!(out, "{attribute}"),
        Node::Compare { name, op, value } => write!(out, "{name} {op} {value}"),
        // An `and` or `or` child of an `and` needs parentheses: `or` binds looser, and a
        // bare nested `and` would be read back as part of the parent's chain.
        Node::And(children) => write_chain(out, children, " and ", |child| {
            matches!(child, Node::And(_) | Node::Or(_))
        }),
        // An `and` child of an `or` binds tighter and needs none.
        Node::Or(children) => {
            write_chain(out, children, " or ", |child| matches!(child, Node::Or(_)))
        }
        // Threshold alternatives are whole policies separated by commas: no parentheses.
        Node::Threshold { k, children } => {
            write!(out, "{k} of (")?;
            write_chain(out, children, ", ", |_| false)?;
            out.write_char(')')
        }
    }
}

fn write_chain(
    out: &mut dyn Write,
    children: &[Node],
    separator: &str,
    needs_parens: fn(&Node) -> bool,
) -> fmt::Result {
    for (i, child) in children.iter().enumerate() {
        if i > 0 {
            out.write_str(separator)?;
        }
        if needs_parens(child) {
            out.write_char('(')?;
            write_node(out, child)?;
            out.write_char(')')?;
        } else {
            write_node(out, child)?;
        }
    }
    Ok(())
}
