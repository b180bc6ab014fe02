//! Recursive-descent parser for policy text.
//!
//! Recursion happens only at `(`, and every `(` is counted against the depth limit before
//! recursing, so the stack depth is bounded by the limit whatever the input.

use super::Limits;
use super::compare;
use super::error::{PolicyError, PolicyErrorKind};
use super::lexer::{self, Scanner};
use super::node::{CmpOp, Node, parse_attribute};
use super::validate::{check_attribute, check_bit_label_len, check_threshold, duplicate_child};

/// Parses `text`, returning the tree and its leaf count.
pub(crate) fn parse(text: &str, limits: &Limits) -> Result<(Node, usize), PolicyError> {
    if text.len() > limits.max_text_len {
        return Err(PolicyError::new(
            PolicyErrorKind::TooLong {
                len: text.len(),
                max: limits.max_text_len,
            },
            limits.max_text_len,
        ));
    }
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
    fn policy(&mut self) -> Result<Parsed, PolicyError> {
        self.or()
    }

    fn or(&mut self) -> Result<Parsed, PolicyError> {
        self.scanner.skip_ws();
        let start = self.scanner.pos();
        let first = self.and()?;
        let mut rest = Vec::new();
        loop {
            self.scanner.skip_ws();
            if !self.scanner.at_keyword("or") {
                break;
            }
            self.scanner.word();
            rest.push(self.and()?);
        }
        self.gate(first, rest, Node::Or, start)
    }

    fn and(&mut self) -> Result<Parsed, PolicyError> {
        self.scanner.skip_ws();
        let start = self.scanner.pos();
        let first = self.atom()?;
        let mut rest = Vec::new();
        loop {
            self.scanner.skip_ws();
            if !self.scanner.at_keyword("and") {
                break;
            }
            self.scanner.word();
            rest.push(self.atom()?);
        }
        self.gate(first, rest, Node::And, start)
    }

    /// `first` alone if `rest` is empty, otherwise one n-ary gate over all of them.
    fn gate(
        &self,
        first: Parsed,
        rest: Vec<Parsed>,
        make: fn(Vec<Node>) -> Node,
        start: usize,
    ) -> Result<Parsed, PolicyError> {
        if rest.is_empty() {
            return Ok(first);
        }
        let (children, depth) = self.collect(first, rest, start)?;
        Ok((make(children), depth))
    }

    /// Children of a gate and the gate's depth, rejecting it if too deep.
    fn collect(
        &self,
        first: Parsed,
        rest: Vec<Parsed>,
        start: usize,
    ) -> Result<(Vec<Node>, usize), PolicyError> {
        let mut depth = first.1;
        let mut children = Vec::with_capacity(rest.len() + 1);
        children.push(first.0);
        for (child, child_depth) in rest {
            depth = depth.max(child_depth);
            children.push(child);
        }
        let depth = depth + 1;
        if depth > self.limits.depth() {
            return Err(self.too_deep(start));
        }
        Ok((children, depth))
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
        let k = usize::try_from(self.scanner.number(u64::MAX)?)
            .map_err(|_| PolicyError::new(PolicyErrorKind::InvalidNumber, start))?;
        self.scanner.skip_ws();
        if !self.scanner.at_keyword("of") {
            return Err(self.scanner.unexpected("'of'"));
        }
        self.scanner.word();
        self.scanner.skip_ws();
        self.open()?;
        // Where each alternative starts, to point at a repeated one.
        let mut starts = vec![self.scanner.pos()];
        let first = self.policy()?;
        let mut rest = Vec::new();
        loop {
            self.scanner.skip_ws();
            if self.scanner.eat(b',') {
                self.scanner.skip_ws();
                starts.push(self.scanner.pos());
                rest.push(self.policy()?);
            } else if self.scanner.eat(b')') {
                break;
            } else {
                return Err(self.scanner.unexpected("'and', 'or', ',' or ')'"));
            }
        }
        self.nesting -= 1;
        check_threshold(k, rest.len() + 1).map_err(|kind| PolicyError::new(kind, start))?;
        let (children, depth) = self.collect(first, rest, start)?;
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
                let value = u32::try_from(self.scanner.number(u64::from(u32::MAX))?)
                    .map_err(|_| PolicyError::new(PolicyErrorKind::InvalidNumber, start))?;
                let name = attribute.name();
                check_bit_label_len(name, self.limits).map_err(at_start)?;
                compare::check(op, value).map_err(|kind| PolicyError::new(kind, start))?;
                let cost = compare::comparison_leaf_count(op, value).ok_or(PolicyError::new(
                    PolicyErrorKind::UnsatisfiableComparison,
                    start,
                ))?;
                self.add_leaves(cost, start)?;
                let node = Node::Compare {
                    name: name.to_owned(),
                    op,
                    value,
                };
                return Ok((node, 0));
            }
        }
        check_attribute(&attribute, self.limits).map_err(at_start)?;
        self.add_leaves(1, start)?;
        Ok((Node::Attribute(attribute), 0))
    }

    fn comparison_op(&mut self) -> Result<Option<CmpOp>, PolicyError> {
        let op = match self.scanner.peek() {
            Some(b'<') => {
                self.scanner.bump();
                if self.scanner.eat(b'=') {
                    CmpOp::Le
                } else {
                    CmpOp::Lt
                }
            }
            Some(b'>') => {
                self.scanner.bump();
                if self.scanner.eat(b'=') {
                    CmpOp::Ge
                } else {
                    CmpOp::Gt
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

    fn add_leaves(&mut self, cost: usize, offset: usize) -> Result<(), PolicyError> {
        self.leaves = self.leaves.saturating_add(cost);
        if self.leaves > self.limits.max_leaves {
            return Err(PolicyError::new(
                PolicyErrorKind::TooManyLeaves {
                    max: self.limits.max_leaves,
                },
                offset,
            ));
        }
        Ok(())
    }
}
