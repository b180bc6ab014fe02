//! Recursive-descent parser for policy text.
//!
//! Recursion happens only at `(`, and every `(` is counted against the depth limit before
//! recursing, so the stack depth is bounded by the limit whatever the input.

use super::Limits;
use super::compare;
use super::error::{PolicyError, PolicyErrorKind};
use super::lexer::{self, Scanner};
use super::node::{CmpOp, Node, parse_attribute};
use super::validate::{
    add_leaves, check_attribute, check_bit_label_len, check_threshold, duplicate_child,
};

/// Parses `text`, returning the tree and its leaf count.
pub(crate) fn parse(text: &str, limits: &Limits) -> Result<(Node, usize), PolicyError> {
    limits.check_text_len(text)?;
    let mut parser = Parser {
        scanner: Scanner::new(text),
        limits,
        leaves: 0,
        nesting: 0,
    };
    parser.scanner.skip_ws();
    if parser.scanner.at_end() {
        return Err(PolicyError::new(PolicyErrorKind::EmptyPolicy, 0));
    }
    let (root, _depth) = parser.policy()?;
    parser.scanner.skip_ws();
    if !parser.scanner.at_end() {
        return Err(parser.scanner.unexpected("'and', 'or' or end of policy"));
    }
    Ok((root, parser.leaves))
}

/// A parsed subtree and its depth (leaf = 0).
type Parsed = (Node, usize);

struct Parser<'a> {
    scanner: Scanner<'a>,
    limits: &'a Limits,
    leaves: usize,
    nesting: usize,
}

impl Parser<'_> {
    /// `or := and ("or" and)*`.
    fn policy(&mut self) -> Result<Parsed, PolicyError> {
        self.chain("or", Self::and, Node::Or)
    }

    /// `and := atom ("and" atom)*`.
    fn and(&mut self) -> Result<Parsed, PolicyError> {
        self.chain("and", Self::atom, Node::And)
    }

    /// `operand (keyword operand)*`: the operand alone if there is one, otherwise one
    /// n-ary gate over all of them.
    fn chain(
        &mut self,
        keyword: &str,
        operand: fn(&mut Self) -> Result<Parsed, PolicyError>,
        make: fn(Vec<Node>) -> Node,
    ) -> Result<Parsed, PolicyError> {
        self.scanner.skip_ws();
        let start = self.scanner.pos();
        let mut items = vec![operand(self)?];
        loop {
            self.scanner.skip_ws();
            if !self.scanner.at_keyword(keyword) {
                break;
            }
            self.scanner.word();
            items.push(operand(self)?);
        }
        if items.len() == 1
            && let Some(only) = items.pop()
        {
            return Ok(only);
        }
        let (children, depth) = self.collect(items, start)?;
        Ok((make(children), depth))
    }

    /// Children of a gate and the gate's depth, rejecting it if too deep.
    fn collect(&self, items: Vec<Parsed>, start: usize) -> Result<(Vec<Node>, usize), PolicyError> {
        let depth = 1 + items.iter().map(|&(_, depth)| depth).max().unwrap_or(0);
        if depth > self.limits.depth() {
            return Err(self.too_deep(start));
        }
        Ok((items.into_iter().map(|(child, _)| child).collect(), depth))
    }

    fn too_deep(&self, offset: usize) -> PolicyError {
        PolicyError::new(
            PolicyErrorKind::TooDeep {
                max: self.limits.depth(),
            },
            offset,
        )
    }

    fn atom(&mut self) -> Result<Parsed, PolicyError> {
        self.scanner.skip_ws();
        match self.scanner.peek() {
            Some(b'(') => self.group(),
            Some(b) if b.is_ascii_digit() => self.threshold(),
            Some(b) if lexer::is_name_start(b) => self.leaf(),
            _ => Err(self
                .scanner
                .unexpected("an attribute, '(' or a threshold 'k of (...)'")),
        }
    }

    /// Consumes `(`, counting it against the nesting limit before any recursion.
    fn open(&mut self) -> Result<usize, PolicyError> {
        let open = self.scanner.pos();
        if !self.scanner.eat(b'(') {
            return Err(self.scanner.unexpected("'('"));
        }
        self.nesting += 1;
        if self.nesting > self.limits.depth() {
            return Err(self.too_deep(open));
        }
        self.scanner.skip_ws();
        if self.scanner.peek() == Some(b')') {
            return Err(PolicyError::new(PolicyErrorKind::EmptyPolicy, open));
        }
        Ok(open)
    }

    fn group(&mut self) -> Result<Parsed, PolicyError> {
        self.open()?;
        let inner = self.policy()?;
        self.scanner.skip_ws();
        if !self.scanner.eat(b')') {
            return Err(self.scanner.unexpected("'and', 'or' or ')'"));
        }
        self.nesting -= 1;
        Ok(inner)
    }

    fn threshold(&mut self) -> Result<Parsed, PolicyError> {
        let start = self.scanner.pos();
        let k: usize = self.scanner.number()?;
        self.scanner.skip_ws();
        if !self.scanner.at_keyword("of") {
            return Err(self.scanner.unexpected("'of'"));
        }
        self.scanner.word();
        self.scanner.skip_ws();
        self.open()?;
        // Where each alternative starts, to point at a repeated one.
        let mut starts = vec![self.scanner.pos()];
        let mut items = vec![self.policy()?];
        loop {
            self.scanner.skip_ws();
            if self.scanner.eat(b',') {
                self.scanner.skip_ws();
                starts.push(self.scanner.pos());
                items.push(self.policy()?);
            } else if self.scanner.eat(b')') {
                break;
            } else {
                return Err(self.scanner.unexpected("'and', 'or', ',' or ')'"));
            }
        }
        self.nesting -= 1;
        check_threshold(k, items.len()).map_err(|kind| PolicyError::new(kind, start))?;
        let (children, depth) = self.collect(items, start)?;
        if let Some(index) = duplicate_child(&children) {
            let offset = starts.get(index).copied().unwrap_or(start);
            return Err(PolicyError::new(
                PolicyErrorKind::DuplicateAlternative { index },
                offset,
            ));
        }
        Ok((Node::Threshold { k, children }, depth))
    }

    /// `name`, `name:value` or `name CMP INT`.
    fn leaf(&mut self) -> Result<Parsed, PolicyError> {
        let start = self.scanner.pos();
        let attribute = parse_attribute(&mut self.scanner)?;
        let at_start = |e: PolicyError| PolicyError::new(e.kind, start);
        if attribute.value().is_none() {
            self.scanner.skip_ws();
            if let Some(op) = self.comparison_op()? {
                self.scanner.skip_ws();
                let value: u32 = self.scanner.number()?;
                let name = attribute.name();
                check_bit_label_len(name, self.limits).map_err(at_start)?;
                compare::check(op, value).map_err(|kind| PolicyError::new(kind, start))?;
                let cost = compare::comparison_leaf_count(op, value).ok_or(PolicyError::new(
                    PolicyErrorKind::UnsatisfiableComparison,
                    start,
                ))?;
                add_leaves(&mut self.leaves, cost, self.limits).map_err(at_start)?;
                let node = Node::Compare {
                    name: name.to_owned(),
                    op,
                    value,
                };
                return Ok((node, 0));
            }
        }
        check_attribute(&attribute, self.limits).map_err(at_start)?;
        add_leaves(&mut self.leaves, 1, self.limits).map_err(at_start)?;
        Ok((Node::Attribute(attribute), 0))
    }

    fn comparison_op(&mut self) -> Result<Option<CmpOp>, PolicyError> {
        let op = match self.scanner.peek() {
            Some(first @ (b'<' | b'>')) => {
                self.scanner.bump();
                match (first, self.scanner.eat(b'=')) {
                    (b'<', false) => CmpOp::Lt,
                    (b'<', true) => CmpOp::Le,
                    (_, false) => CmpOp::Gt,
                    (_, true) => CmpOp::Ge,
                }
            }
            Some(b'=') => {
                let at = self.scanner.pos();
                self.scanner.bump();
                if !self.scanner.eat(b'=') {
                    return Err(PolicyError::new(
                        PolicyErrorKind::UnexpectedChar {
                            found: '=',
                            expected: "'==' (a single '=' is not an operator)",
                        },
                        at,
                    ));
                }
                CmpOp::Eq
            }
            _ => return Ok(None),
        };
        Ok(Some(op))
    }
}
