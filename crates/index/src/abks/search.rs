//! The ABKS test (one multi-Miller loop and one final exponentiation) and the linear,
//! rayon-parallel scan of an index.

use super::entry::IndexEntry;
use super::trapdoor::Trapdoor;
use crate::record::RecordRef;
use blst::{blst_fp12, blst_p1_affine, blst_p2_affine};
use blstrs::{G1Affine, G2Affine, Scalar};
use ff::Field;
use group::Curve;
use rayon::prelude::*;

/// Whether `trapdoor` matches `entry`: the trapdoor's attributes satisfy the entry's
/// policy and the keywords are equal. Checks
///
/// ```text
/// e(tok2, K2) · e(−tok1, K1) · e(−tok3, K3)
///   · Π_{y ∈ I} e(−w_y·D_{ρ(y)}^s, C_y) · e(w_y·C'_y, D'_{ρ(y)}^s)  ==  1
/// ```
///
/// as one multi-Miller loop and one final exponentiation. Attribute satisfaction is
/// decided by the LSSS reconstruction over the trapdoor's labels (public data); without
/// it there are no coefficients `w_y` and the test fails.
pub(crate) fn test(entry: &IndexEntry, trapdoor: &Trapdoor) -> bool {
    let Some(weights) = entry
        .lsss
        .reconstruct_with(|label| trapdoor.components.contains_key(label))
    else {
        return false;
    };
    let n = 3 + 2 * weights.len();
    let mut ps: Vec<blst_p1_affine> = Vec::with_capacity(n);
    let mut qs: Vec<blst_p2_affine> = Vec::with_capacity(n);
    let mut push = |p: &G1Affine, q: &G2Affine| {
        ps.push(*p.as_ref());
        qs.push(*q.as_ref());
    };
    push(&trapdoor.tok2, &entry.k2);
    push(&-trapdoor.tok1, &entry.k1);
    push(&-trapdoor.tok3, &entry.k3);
    for (row, w) in weights {
        let (Some(lsss_row), Some((c, c_prime))) = (entry.lsss.row(row), entry.rows.get(row))
        else {
            return false;
        };
        let Some((dj, dpj)) = trapdoor.components.get(lsss_row.label()) else {
            return false;
        };
        if w == Scalar::ONE {
            push(&-*dj, c);
            push(c_prime, dpj);
        } else {
            push(&(dj * (-w)).to_affine(), c);
            push(&(c_prime * w).to_affine(), dpj);
        }
    }
    blst_fp12::miller_loop_n(&qs, &ps).final_exp() == blst_fp12::default()
}

/// A baseline ABKS index: one entry per (record, keyword), scanned linearly.
#[derive(Debug, Default, Clone)]
pub struct AbksIndex {
    entries: Vec<(RecordRef, IndexEntry)>,
}

impl AbksIndex {
    /// An empty index.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds the entry of one keyword of `record`.
    pub fn push(&mut self, record: RecordRef, entry: IndexEntry) {
        self.entries.push((record, entry));
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the index is empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Tests every entry in parallel (rayon); returns the matching records in index
    /// order. Cost: one pairing product per entry whose policy the trapdoor satisfies.
    pub fn search(&self, trapdoor: &Trapdoor) -> Vec<RecordRef> {
        self.entries
            .par_iter()
            .filter_map(|(r, e)| test(e, trapdoor).then_some(*r))
            .collect()
    }

    /// [`AbksIndex::search`] on the calling thread only (for one-core measurements).
    pub fn search_sequential(&self, trapdoor: &Trapdoor) -> Vec<RecordRef> {
        self.entries
            .iter()
            .filter_map(|(r, e)| test(e, trapdoor).then_some(*r))
            .collect()
    }
}
