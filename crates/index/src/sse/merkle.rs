//! The Merkle tree of a shard and its proofs.
//!
//! ```text
//! leaf_i = BLAKE3(key = "medseal-index/v1/merkle-leaf", label_i ‖ value_i)
//! node   = BLAKE3(key = "medseal-index/v1/merkle-node", left ‖ right)
//! root   = BLAKE3(key = "medseal-index/v1/shard-root",  partition id ‖ u64_be(n) ‖ top)
//! ```
//!
//! Leaves are in label order. A level of odd length carries its last node up unchanged.
//! `top` of an empty shard is 32 zero bytes. The root binds the partition and the leaf
//! count `n`, so a proof's position `i < n` and the neighbour relation `i, i + 1` are
//! authenticated: that is what makes the sorted-neighbour non-membership proof sound.
//! Leaves (48 bytes) and nodes (64 bytes) are one BLAKE3 compression each; the three
//! fixed keys separate the domains.

use super::partition::PartitionId;
use super::prf::Label;
use rayon::prelude::*;

const LEAF_KEY: &[u8; 32] = b"medseal-index/v1/merkle-leaf\0\0\0\0";
const NODE_KEY: &[u8; 32] = b"medseal-index/v1/merkle-node\0\0\0\0";
const ROOT_KEY: &[u8; 32] = b"medseal-index/v1/shard-root\0\0\0\0\0";

/// The anchored commitment of one shard (see the module docs of `sse::merkle`).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct ShardRoot(pub(crate) [u8; 32]);

impl ShardRoot {
    /// Wraps bytes (e.g. read back from the chain).
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

short_hex_debug!(ShardRoot);

pub(crate) fn leaf_hash(label: &Label, value: &[u8; 32]) -> [u8; 32] {
    let mut buf = [0u8; 48];
    buf[..16].copy_from_slice(label.as_bytes());
    buf[16..].copy_from_slice(value);
    *blake3::keyed_hash(LEAF_KEY, &buf).as_bytes()
}

fn node_hash(left: &[u8; 32], right: &[u8; 32]) -> [u8; 32] {
    let mut buf = [0u8; 64];
    buf[..32].copy_from_slice(left);
    buf[32..].copy_from_slice(right);
    *blake3::keyed_hash(NODE_KEY, &buf).as_bytes()
}

pub(crate) fn shard_root(partition: &PartitionId, n: u64, top: &[u8; 32]) -> ShardRoot {
    let mut h = blake3::Hasher::new_keyed(ROOT_KEY);
    h.update(partition.as_bytes());
    h.update(&n.to_be_bytes());
    h.update(top);
    ShardRoot(*h.finalize().as_bytes())
}

/// Levels (and batches of leaves) at least this long are hashed with rayon.
pub(crate) const PARALLEL_MIN: usize = 1 << 14;

/// All levels of the tree, leaves first.
#[derive(Debug, Clone)]
pub(crate) struct MerkleTree {
    levels: Vec<Vec<[u8; 32]>>,
}

impl MerkleTree {
    pub(crate) fn build(leaves: Vec<[u8; 32]>) -> Self {
        let mut levels = vec![leaves];
        while let Some(last) = levels.last().filter(|l| l.len() > 1) {
            let pair = |pair: &[[u8; 32]]| match pair {
                [l, r] => node_hash(l, r),
                [single] => *single,
                _ => [0u8; 32],
            };
            // Large levels are hashed on all cores; the result does not depend on it.
            let next: Vec<[u8; 32]> = if last.len() >= PARALLEL_MIN {
                last.par_chunks(2).map(pair).collect()
            } else {
                last.chunks(2).map(pair).collect()
            };
            levels.push(next);
        }
        Self { levels }
    }

    /// The tree whose levels (leaves first) are `levels`, as [`MerkleTree::levels`] gave
    /// them.
    pub(crate) fn from_levels(levels: Vec<Vec<[u8; 32]>>) -> Self {
        Self { levels }
    }

    /// The levels, leaves first (the last holds the top).
    pub(crate) fn levels(&self) -> &[Vec<[u8; 32]>] {
        &self.levels
    }

    pub(crate) fn top(&self) -> [u8; 32] {
        self.levels
            .last()
            .and_then(|l| l.first())
            .copied()
            .unwrap_or([0u8; 32])
    }

    /// The sibling path of leaf `index` (empty if out of range).
    pub(crate) fn path(&self, index: usize) -> Vec<[u8; 32]> {
        let mut path = Vec::new();
        let mut i = index;
        for level in self.levels.iter().take(self.levels.len().saturating_sub(1)) {
            if let Some(sibling) = level.get(i ^ 1) {
                path.push(*sibling);
            }
            i >>= 1;
        }
        path
    }
}

/// The top reached from `leaf` at `index` of `n` leaves along `path`; `None` if the
/// index is out of range or the path has the wrong length.
pub(crate) fn top_from_path(
    leaf: [u8; 32],
    index: u64,
    n: u64,
    path: &[[u8; 32]],
) -> Option<[u8; 32]> {
    if index >= n {
        return None;
    }
    let step = climb(leaf, index, n, path, u32::MAX)?;
    (step.used == path.len()).then_some(step.node)
}

/// The top reached from two adjacent leaves, `left` at `index` and `right` at `index + 1`
/// of `n` leaves, along their paths; `None` unless both paths lead to it. Their paths
/// meet `index.trailing_ones() + 1` levels up: below that each is hashed, above it only
/// the left one, and the right one must hold the same siblings (the right leaf's path is
/// then exactly the one [`top_from_path`] would check, for ~half the hashing).
pub(crate) fn top_from_adjacent_paths(
    (left, left_path): ([u8; 32], &[[u8; 32]]),
    (right, right_path): ([u8; 32], &[[u8; 32]]),
    index: u64,
    n: u64,
) -> Option<[u8; 32]> {
    let right_index = index.checked_add(1).filter(|&r| r < n)?;
    let meet = index.trailing_ones() + 1;
    let l = climb(left, index, n, left_path, meet)?;
    let r = climb(right, right_index, n, right_path, meet)?;
    let (above_l, above_r) = (left_path.get(l.used..)?, right_path.get(r.used..)?);
    if l.node != r.node || l.index != r.index || above_l != above_r {
        return None;
    }
    let top = climb(l.node, l.index, l.len, above_l, u32::MAX)?;
    (top.used == above_l.len()).then_some(top.node)
}

/// Where a climb along a path stopped.
struct Climb {
    /// The node reached, its index and the length of its level.
    node: [u8; 32],
    index: u64,
    len: u64,
    /// Siblings of the path used.
    used: usize,
}

/// Climbs at most `levels` levels from `node` at `index` of a level of `len` nodes,
/// taking siblings from `path` (a node without a sibling, the last of an odd level, is
/// carried up); stops at the top. `None` if the path runs out.
fn climb(node: [u8; 32], index: u64, len: u64, path: &[[u8; 32]], levels: u32) -> Option<Climb> {
    let (mut h, mut i, mut m, mut used) = (node, index, len, 0);
    let mut level = 0;
    while m > 1 && level < levels {
        if (i ^ 1) < m {
            let s = path.get(used)?;
            used += 1;
            h = if i & 1 == 0 {
                node_hash(&h, s)
            } else {
                node_hash(s, &h)
            };
        }
        i >>= 1;
        m = m.div_ceil(2);
        level += 1;
    }
    Some(Climb {
        node: h,
        index: i,
        len: m,
        used,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leaves(n: usize) -> Vec<[u8; 32]> {
        (0..n).map(|i| [i as u8 + 1; 32]).collect()
    }

    #[test]
    fn every_path_verifies_and_nothing_else_does() {
        for n in 1..=17usize {
            let t = MerkleTree::build(leaves(n));
            let top = t.top();
            for i in 0..n {
                let p = t.path(i);
                let leaf = [i as u8 + 1; 32];
                assert_eq!(top_from_path(leaf, i as u64, n as u64, &p), Some(top));
                // Wrong position, wrong count, wrong leaf, truncated or extended paths.
                if n > 1 {
                    let j = (i + 1) % n;
                    assert_ne!(top_from_path(leaf, j as u64, n as u64, &p), Some(top));
                    assert_ne!(top_from_path([0; 32], i as u64, n as u64, &p), Some(top));
                }
                // A wrong count may reach the same top; the root binds the count.
                assert_eq!(top_from_path(leaf, n as u64, n as u64, &p), None);
                let mut longer = p.clone();
                longer.push([0; 32]);
                assert_eq!(top_from_path(leaf, i as u64, n as u64, &longer), None);
            }
        }
        assert_eq!(MerkleTree::build(Vec::new()).top(), [0; 32]);
    }

    #[test]
    fn adjacent_paths_verify_together_exactly_when_each_verifies() {
        for n in 2..=40usize {
            let t = MerkleTree::build(leaves(n));
            let top = t.top();
            let leaf = |i: usize| [i as u8 + 1; 32];
            for i in 0..n - 1 {
                let (pl, pr) = (t.path(i), t.path(i + 1));
                let (l, r) = ((leaf(i), &pl[..]), (leaf(i + 1), &pr[..]));
                let (i64_, n64) = (i as u64, n as u64);
                assert_eq!(
                    top_from_adjacent_paths(l, r, i64_, n64),
                    Some(top),
                    "n {n} i {i}"
                );
                // Swapped, shifted, a wrong leaf, a changed sibling on either side (below
                // or above where the paths meet), a path too long or too short.
                assert_ne!(top_from_adjacent_paths(r, l, i64_, n64), Some(top));
                if i + 2 < n {
                    assert_ne!(top_from_adjacent_paths(l, r, i64_ + 1, n64), Some(top));
                }
                assert_ne!(
                    top_from_adjacent_paths(l, ([0; 32], &pr[..]), i64_, n64),
                    Some(top)
                );
                for side in 0..2 {
                    for k in 0..pl.len().max(pr.len()) {
                        let (mut ml, mut mr) = (pl.clone(), pr.clone());
                        let path = if side == 0 { &mut ml } else { &mut mr };
                        let Some(sibling) = path.get_mut(k) else {
                            continue;
                        };
                        sibling[0] ^= 1;
                        let got = top_from_adjacent_paths(
                            (leaf(i), &ml[..]),
                            (leaf(i + 1), &mr[..]),
                            i64_,
                            n64,
                        );
                        assert_ne!(got, Some(top), "n {n} i {i} side {side} sibling {k}");
                    }
                }
                let mut longer = pr.clone();
                longer.push([0; 32]);
                assert_eq!(
                    top_from_adjacent_paths(l, (leaf(i + 1), &longer[..]), i64_, n64),
                    None
                );
                assert_eq!(
                    top_from_adjacent_paths(l, (leaf(i + 1), &pr[..pr.len() - 1]), i64_, n64),
                    None
                );
            }
            // The last leaf has no right neighbour.
            let last = t.path(n - 1);
            assert_eq!(
                top_from_adjacent_paths(
                    (leaf(n - 1), &last[..]),
                    (leaf(n - 1), &last[..]),
                    n as u64 - 1,
                    n as u64
                ),
                None
            );
        }
    }

    #[test]
    fn shard_roots_bind_count_and_partition() {
        let p = PartitionId([0; 32]);
        assert_ne!(shard_root(&p, 5, &[1; 32]), shard_root(&p, 6, &[1; 32]));
        assert_ne!(
            shard_root(&p, 5, &[1; 32]),
            shard_root(&PartitionId([1; 32]), 5, &[1; 32])
        );
    }
}
