//! Linear secret sharing schemes (LSSS) from policy trees.
//!
//! [`Lsss::from_policy`] turns a [`Policy`] into a share-generating matrix `M` with one row
//! per leaf (numeric comparisons expanded to their bit labels), in the order the leaves
//! appear. Rows are stored sparsely as `(column, coefficient)` pairs because the schemes
//! multiply group elements by these coefficients and zeros are free to skip.
//!
//! # Construction
//!
//! Walk the tree top-down, giving each node a vector `v` (the root gets `e1 = (1)`), with a
//! column counter `c` that starts at 1:
//!
//! * **OR** (and `1 of (...)`): every child gets `v`. No new columns.
//! * **AND** of `n` children (and `n of (...)`): Lewko–Waters, chained to stay sparse. Take
//!   `n - 1` fresh columns `c_1..c_{n-1}`: child 1 gets `v + e_{c_1}`, child `t` gets
//!   `-e_{c_{t-1}} + e_{c_t}`, child `n` gets `-e_{c_{n-1}}`. The children sum to `v`.
//! * **k of n** (`1 < k < n`): `k - 1` fresh columns; child `i` (`i = 1..n`) gets
//!   `v + Σ_{j=1}^{k-1} i^j e_{c_j}`. Any `k` children recombine to `v` with the Lagrange
//!   coefficients at 0 for their points `i`.
//!
//! A leaf's vector is its row. Columns: `1 + Σ_AND (n - 1) + Σ_{k-of-n} (k - 1)`. A row has
//! at most one more nonzero than its parent's vector per AND gate above it (first child) and
//! `k - 1` more per threshold gate above it, so rows stay sparse; no DNF expansion occurs.
//!
//! **Why it is an LSSS.** Sharing `s` means computing `λ = M·(s, r_2, ..., r_d)` with random
//! `r_j`. Inductively, the node with vector `v` receives the share `σ = v·(s, r)`. At an OR
//! gate every child receives `σ`. At an AND gate the children receive `σ + ρ_1`,
//! `ρ_2 - ρ_1`, …, `-ρ_{n-1}` for fresh uniform `ρ_t`: they sum to `σ`, and any `n - 1` of
//! them are uniform and independent of `σ`. At a k-of-n gate the children receive `q(i)` for a
//! random polynomial `q` of degree `k - 1` with `q(0) = σ` (Shamir). Hence an authorised set
//! can recombine `e1` (and so `s`), and the shares of an unauthorised set are independent of
//! `s`, which for a linear scheme is equivalent to `e1` not being in the span of its rows.
//! This requires the field characteristic to exceed the arity of every threshold (trivially
//! true for the 255-bit scalar field used by the schemes).

use ff::PrimeField;

use crate::policy::{AttributeSet, BitFormula, Node, Policy, expand_comparison};

/// One row of the share-generating matrix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LsssRow<F> {
    pub(crate) label: String,
    pub(crate) coeffs: Vec<(usize, F)>,
}

impl<F: PrimeField> LsssRow<F> {
    /// The attribute (or bit) label `ρ(i)` this row belongs to.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// The nonzero coefficients as `(column, value)`, sorted by column.
    pub fn coeffs(&self) -> &[(usize, F)] {
        &self.coeffs
    }

    /// The row as a dense vector of length `columns`. Entries at columns `>= columns` are
    /// dropped (pass [`Lsss::columns`]).
    pub fn to_dense(&self, columns: usize) -> Vec<F> {
        let mut dense = vec![F::ZERO; columns];
        for &(column, value) in &self.coeffs {
            if let Some(slot) = dense.get_mut(column) {
                *slot = value;
            }
        }
        dense
    }

    /// The inner product of the row with `vector` (missing entries count as zero), e.g. the
    /// share `M_i · (s, r_2, ..., r_d)`.
    pub fn dot(&self, vector: &[F]) -> F {
        self.coeffs
            .iter()
            .filter_map(|&(column, value)| vector.get(column).map(|&x| value * x))
            .sum()
    }
}

/// A share-generating matrix with its row labels, plus the gate structure used to find
/// reconstruction coefficients.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lsss<F> {
    pub(crate) rows: Vec<LsssRow<F>>,
    pub(crate) columns: usize,
    /// Gates in preorder: children always have larger indices than their parent.
    gates: Vec<Gate>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Gate {
    kind: GateKind,
    children: Vec<usize>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum GateKind {
    Leaf { row: usize },
    Inner(Op),
}

/// An inner gate, which also fixes how its children are laid out (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    /// The Lewko–Waters chain over `n - 1` fresh columns.
    And,
    /// Every child gets the parent's vector.
    Or,
    /// `1 < k < n`: Vandermonde rows over `k - 1` fresh columns.
    Threshold { k: usize },
}

/// A subtree still to be laid out: a policy node, or part of an expanded comparison.
enum Source<'a> {
    Node(&'a Node),
    Bits(BitFormula),
}

struct Work<'a, F> {
    source: Source<'a>,
    vector: Vec<(usize, F)>,
    parent: Option<usize>,
}

/// What a work item turns into.
enum Shape<'a> {
    Leaf(String),
    Gate(Op, Vec<Source<'a>>),
}

impl<F: PrimeField> Lsss<F> {
    /// Builds the LSSS of `policy` (see the [module docs](self)).
    pub fn from_policy(policy: &Policy) -> Self {
        let mut rows: Vec<LsssRow<F>> = Vec::with_capacity(policy.leaf_count());
        let mut gates: Vec<Gate> = Vec::new();
        let mut columns = 1;
        // An explicit stack instead of recursion; children are pushed in reverse so they are
        // laid out left to right and rows come out in leaf order.
        let mut stack = vec![Work {
            source: Source::Node(policy.root()),
            vector: vec![(0, F::ONE)],
            parent: None,
        }];
        while let Some(Work {
            source,
            vector,
            parent,
        }) = stack.pop()
        {
            // Decide the shape before registering the gate, so that nothing skipped here can
            // leave a dangling child index in the parent.
            let shape = match source {
                Source::Node(Node::Attribute(attribute)) => Shape::Leaf(attribute.label()),
                Source::Node(Node::Compare { name, op, value }) => {
                    match expand_comparison(name, *op, *value) {
                        Some(bits) => {
                            stack.push(Work {
                                source: Source::Bits(bits),
                                vector,
                                parent,
                            });
                            continue;
                        }
                        // Validated policies hold no tautological/unsatisfiable comparisons.
                        None => continue,
                    }
                }
                Source::Node(Node::And(children)) => Shape::Gate(Op::And, node_sources(children)),
                Source::Node(Node::Or(children)) => Shape::Gate(Op::Or, node_sources(children)),
                Source::Node(Node::Threshold { k, children }) => {
                    let op = match *k {
                        0 | 1 => Op::Or,
                        k if k >= children.len() => Op::And,
                        k => Op::Threshold { k },
                    };
                    Shape::Gate(op, node_sources(children))
                }
                Source::Bits(BitFormula::Bit(label)) => Shape::Leaf(label),
                Source::Bits(BitFormula::All(children)) => {
                    Shape::Gate(Op::And, children.into_iter().map(Source::Bits).collect())
                }
                Source::Bits(BitFormula::Any(children)) => {
                    Shape::Gate(Op::Or, children.into_iter().map(Source::Bits).collect())
                }
            };
            let id = gates.len();
            if let Some(parent) = parent.and_then(|p| gates.get_mut(p)) {
                parent.children.push(id);
            }
            let (op, children) = match shape {
                Shape::Leaf(label) => {
                    gates.push(Gate {
                        kind: GateKind::Leaf { row: rows.len() },
                        children: Vec::new(),
                    });
                    rows.push(LsssRow {
                        label,
                        coeffs: vector,
                    });
                    continue;
                }
                Shape::Gate(op, children) => (op, children),
            };
            let n = children.len();
            gates.push(Gate {
                kind: GateKind::Inner(op),
                children: Vec::with_capacity(n),
            });
            let base = columns;
            columns += match op {
                Op::Or => 0,
                Op::And => n.saturating_sub(1),
                Op::Threshold { k } => k.saturating_sub(1),
            };
            for (index, child) in children.into_iter().enumerate().rev() {
                let child_vector = match op {
                    Op::Or => vector.clone(),
                    Op::And => chain_vector(&vector, base, index, n),
                    Op::Threshold { k } => vandermonde_vector(&vector, base, index, k),
                };
                stack.push(Work {
                    source: child,
                    vector: child_vector,
                    parent: Some(id),
                });
            }
        }
        Self {
            rows,
            columns,
            gates,
        }
    }

    /// The rows, in leaf order.
    pub fn rows(&self) -> &[LsssRow<F>] {
        &self.rows
    }

    /// Row `i`, if it exists.
    pub fn row(&self, i: usize) -> Option<&LsssRow<F>> {
        self.rows.get(i)
    }

    /// Number of columns `d` (the length of the vector `(s, r_2, ..., r_d)`).
    pub fn columns(&self) -> usize {
        self.columns
    }

    /// Reconstruction coefficients for a key holding `attrs`; see [`Lsss::reconstruct_with`].
    pub fn reconstruct(&self, attrs: &AttributeSet) -> Option<Vec<(usize, F)>> {
        self.reconstruct_with(|label| attrs.contains_label(label))
    }

    /// Row indices `i` and coefficients `w_i` with `Σ w_i·M_i = e1`, using only rows whose
    /// label satisfies `has`, sorted by row index with all `w_i` nonzero; `None` iff the
    /// labels do not satisfy the policy (or, only in a field whose characteristic does not
    /// exceed a threshold's arity, if the Lagrange points collide).
    ///
    /// Among the ways to satisfy the policy it picks one with the fewest rows (decryption
    /// costs grow with the rows used): the cheapest child of an OR, the `k` cheapest children
    /// of a threshold (ties go to the earlier child).
    pub fn reconstruct_with(&self, has: impl Fn(&str) -> bool) -> Option<Vec<(usize, F)>> {
        let costs = self.costs(&has);
        costs.first().copied().flatten()?;
        let mut weights: Vec<Option<F>> = vec![None; self.gates.len()];
        *weights.first_mut()? = Some(F::ONE);
        let mut out = Vec::new();
        // Preorder: a gate's weight is final before its children are visited.
        for (id, gate) in self.gates.iter().enumerate() {
            let Some(weight) = weights.get(id).copied().flatten() else {
                continue;
            };
            let mut set = |child: usize, w: F| {
                if let Some(slot) = weights.get_mut(child) {
                    *slot = Some(w);
                }
            };
            match gate.kind {
                GateKind::Leaf { row } => out.push((row, weight)),
                GateKind::Inner(Op::And) => gate.children.iter().for_each(|&c| set(c, weight)),
                GateKind::Inner(Op::Or) => {
                    let (_, child) = cheapest(&gate.children, &costs, 1)?.into_iter().next()?;
                    set(child, weight);
                }
                GateKind::Inner(Op::Threshold { k }) => {
                    let chosen = cheapest(&gate.children, &costs, k)?;
                    let points: Vec<F> = chosen.iter().map(|&(pos, _)| point(pos)).collect();
                    for (&(_, child), lambda) in chosen.iter().zip(lagrange_at_zero(&points)?) {
                        set(child, weight * lambda);
                    }
                }
            }
        }
        out.sort_unstable_by_key(|&(row, _)| row);
        Some(out)
    }

    /// Minimal number of rows needed to satisfy each gate (`None`: unsatisfiable), computed
    /// bottom-up over the preorder arena without recursion.
    fn costs(&self, has: &impl Fn(&str) -> bool) -> Vec<Option<usize>> {
        let mut costs: Vec<Option<usize>> = vec![None; self.gates.len()];
        for (id, gate) in self.gates.iter().enumerate().rev() {
            let child_costs = gate
                .children
                .iter()
                .map(|&c| costs.get(c).copied().flatten());
            let cost = match gate.kind {
                GateKind::Leaf { row } => self.rows.get(row).filter(|r| has(&r.label)).map(|_| 1),
                GateKind::Inner(Op::And) => child_costs.sum::<Option<usize>>(),
                GateKind::Inner(Op::Or) => child_costs.flatten().min(),
                GateKind::Inner(Op::Threshold { k }) => {
                    let mut known: Vec<usize> = child_costs.flatten().collect();
                    known.sort_unstable();
                    (known.len() >= k).then(|| known.iter().take(k).sum())
                }
            };
            if let Some(slot) = costs.get_mut(id) {
                *slot = cost;
            }
        }
        costs
    }
}

fn node_sources(children: &[Node]) -> Vec<Source<'_>> {
    children.iter().map(Source::Node).collect()
}

/// Child `index` (0-based) of an `n`-child AND chain over fresh columns `base..base+n-1`.
/// `vector`'s columns are all below `base`, so appending keeps the entries sorted.
fn chain_vector<F: PrimeField>(
    vector: &[(usize, F)],
    base: usize,
    index: usize,
    n: usize,
) -> Vec<(usize, F)> {
    let mut out = Vec::new();
    if index == 0 {
        out.extend_from_slice(vector);
    } else {
        out.push((base + index - 1, -F::ONE));
    }
    if index + 1 < n {
        out.push((base + index, F::ONE));
    }
    out
}

/// Child `index` (0-based, point `index + 1`) of a k-of-n gate over fresh columns
/// `base..base+k-1`: `v ‖ (x, x², …, x^{k-1})`.
fn vandermonde_vector<F: PrimeField>(
    vector: &[(usize, F)],
    base: usize,
    index: usize,
    k: usize,
) -> Vec<(usize, F)> {
    let x = point::<F>(index);
    let mut out = Vec::with_capacity(vector.len() + k);
    out.extend_from_slice(vector);
    let mut power = x;
    for j in 0..k.saturating_sub(1) {
        out.push((base + j, power));
        power *= x;
    }
    out
}

/// The evaluation point of the child at 0-based position `index`: `index + 1`.
fn point<F: PrimeField>(index: usize) -> F {
    F::from(u64::try_from(index).unwrap_or(u64::MAX).saturating_add(1))
}

/// The `k` satisfiable children with the smallest cost, as `(position, child id)`, in
/// position order; `None` if fewer than `k` are satisfiable.
fn cheapest(children: &[usize], costs: &[Option<usize>], k: usize) -> Option<Vec<(usize, usize)>> {
    let mut candidates: Vec<(usize, usize, usize)> = children
        .iter()
        .enumerate()
        .filter_map(|(pos, &child)| Some((costs.get(child).copied().flatten()?, pos, child)))
        .collect();
    if candidates.len() < k {
        return None;
    }
    candidates.sort_unstable();
    let mut chosen: Vec<(usize, usize)> = candidates
        .into_iter()
        .take(k)
        .map(|(_, pos, child)| (pos, child))
        .collect();
    chosen.sort_unstable();
    Some(chosen)
}

/// Lagrange coefficients at 0 for distinct `points`: `λ_i = Π_{j≠i} x_j / (x_j - x_i)`.
/// `None` if two points coincide in the field.
fn lagrange_at_zero<F: PrimeField>(points: &[F]) -> Option<Vec<F>> {
    points
        .iter()
        .enumerate()
        .map(|(i, &xi)| {
            let (num, den) = points
                .iter()
                .enumerate()
                .filter(|&(j, _)| j != i)
                .fold((F::ONE, F::ONE), |(num, den), (_, &xj)| {
                    (num * xj, den * (xj - xi))
                });
            Option::<F>::from(den.invert()).map(|inv| num * inv)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use blstrs::Scalar;
    use ff::Field;

    fn lsss(text: &str) -> Lsss<Scalar> {
        Lsss::from_policy(&Policy::parse(text).unwrap())
    }

    fn combine(l: &Lsss<Scalar>, w: &[(usize, Scalar)]) -> Vec<Scalar> {
        let mut acc = vec![Scalar::ZERO; l.columns()];
        for &(i, wi) in w {
            for (c, v) in l.row(i).unwrap().coeffs() {
                acc[*c] += wi * v;
            }
        }
        acc
    }

    fn e1(n: usize) -> Vec<Scalar> {
        let mut v = vec![Scalar::ZERO; n];
        v[0] = Scalar::ONE;
        v
    }

    #[test]
    fn and_chain_layout() {
        let l = lsss("a and b and c");
        assert_eq!(l.columns(), 3);
        let one = Scalar::ONE;
        let rows: Vec<_> = l.rows().iter().map(|r| r.coeffs().to_vec()).collect();
        assert_eq!(rows[0], vec![(0, one), (1, one)]);
        assert_eq!(rows[1], vec![(1, -one), (2, one)]);
        assert_eq!(rows[2], vec![(2, -one)]);
        let labels: Vec<_> = l.rows().iter().map(LsssRow::label).collect();
        assert_eq!(labels, ["a", "b", "c"]);
    }

    #[test]
    fn or_copies_and_threshold_uses_powers() {
        let l = lsss("a or b");
        assert_eq!(l.columns(), 1);
        assert!(l.rows().iter().all(|r| r.coeffs() == [(0, Scalar::ONE)]));
        let l = lsss("2 of (a, b, c)");
        assert_eq!(l.columns(), 2);
        assert_eq!(
            l.row(2).unwrap().coeffs(),
            [(0, Scalar::ONE), (1, Scalar::from(3))]
        );
        // k = n and k = 1 use the AND chain and the OR copy.
        assert_eq!(lsss("2 of (a, b)").rows(), lsss("a and b").rows());
        assert_eq!(lsss("1 of (a, b)").rows(), lsss("a or b").rows());
    }

    #[test]
    fn reconstruct_picks_fewest_rows() {
        let l = lsss("(a and b and c) or d or 2 of (e, f and g, h)");
        let set = AttributeSet::parse(["a", "b", "c", "e", "f", "g", "h"]).unwrap();
        let w = l.reconstruct(&set).unwrap();
        let used: Vec<_> = w.iter().map(|&(i, _)| l.row(i).unwrap().label()).collect();
        assert_eq!(used, ["e", "h"]);
        assert_eq!(combine(&l, &w), e1(l.columns()));
        let set = AttributeSet::parse(["a", "b", "e", "f"]).unwrap();
        assert_eq!(l.reconstruct(&set), None);
    }

    #[test]
    fn numeric_comparison_reconstructs() {
        let l = lsss("level >= 5 and role:doctor");
        // 5 is odd: `>= 5` needs all 32 bits.
        assert_eq!(l.rows().len(), 32 + 1);
        let ok = AttributeSet::parse(["level=9", "role:doctor"]).unwrap();
        let w = l.reconstruct(&ok).unwrap();
        assert_eq!(combine(&l, &w), e1(l.columns()));
        let low = AttributeSet::parse(["level=4", "role:doctor"]).unwrap();
        assert_eq!(l.reconstruct(&low), None);
    }

    #[test]
    fn dense_and_dot() {
        let l = lsss("2 of (a, b, c)");
        let row = l.row(1).unwrap();
        assert_eq!(row.to_dense(2), vec![Scalar::ONE, Scalar::from(2)]);
        assert_eq!(
            row.dot(&[Scalar::from(10), Scalar::from(3)]),
            Scalar::from(16)
        );
    }
}
