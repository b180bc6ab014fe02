//! Verifiable answers: membership proofs for results, sorted-neighbour non-membership
//! proofs for the terminating label, and the user-side verifier.
//!
//! **Why this proves completeness.** An honest owner writes the entries of a keyword
//! with counters `0, 1, 2, …` without gaps, across all shards of the partition. The
//! user recomputes `label_c` for every `c` and checks that result `c` is the leaf
//! `(label_c, value_c)` of an anchored shard. For the first `c = m` that the host says
//! is missing, it must show in *every* anchored shard two adjacent leaves `i, i + 1`
//! with `label_i < label_m < label_{i+1}` (or the first/last leaf for a label outside
//! the shard's range). Leaves are sorted and the root binds the leaf count, so such a
//! pair exists only if `label_m` is absent. Hence the answer holds exactly the entries
//! `0..m` of the keyword: the host can neither drop, add, alter nor reorder results.

use super::merkle::{ShardRoot, leaf_hash, shard_root, top_from_adjacent_paths, top_from_path};
use super::prf::{Label, LabelPrf};
use super::token::{EncryptedRef, KeywordKey};
use crate::error::{Result, VerifyError};
use crate::record::RecordRef;

/// A result with its membership proof.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberProof {
    /// Index of the shard (in the partition's anchored order).
    pub shard: u32,
    /// Leaf index in the shard.
    pub index: u64,
    /// The encrypted value.
    pub value: [u8; 32],
    /// Sibling hashes from the leaf up.
    pub path: Vec<[u8; 32]>,
}

/// A leaf next to an absent label, with its membership proof.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Neighbour {
    /// Leaf index.
    pub index: u64,
    /// The leaf's label.
    pub label: Label,
    /// The leaf's value.
    pub value: [u8; 32],
    /// Sibling hashes from the leaf up.
    pub path: Vec<[u8; 32]>,
}

/// Proof that a label is absent from one shard: its sorted neighbours (none for an
/// empty shard, one at either end).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AbsenceProof {
    /// The greatest smaller label, if any.
    pub left: Option<Neighbour>,
    /// The least greater label, if any.
    pub right: Option<Neighbour>,
}

/// A host's answer with proofs (see the module docs).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VerifiableAnswer {
    /// Results `c = 0..m` with membership proofs.
    pub results: Vec<MemberProof>,
    /// For each shard, the absence of `label_m`.
    pub absent: Vec<AbsenceProof>,
    /// Entry count of each shard (bound by its root).
    pub sizes: Vec<u64>,
}

impl VerifiableAnswer {
    /// The encrypted values, for [`KeywordKey::decrypt`] (unverified).
    pub fn values(&self) -> Vec<EncryptedRef> {
        self.results.iter().map(|r| EncryptedRef(r.value)).collect()
    }

    /// Size of the proofs in bytes, as a host would send them: per result its shard (4),
    /// leaf index (8), value (32) and path (32 per sibling); per absence neighbour its
    /// index (8), label (16), value (32) and path; 8 per shard size.
    pub fn proof_bytes(&self) -> usize {
        let neighbour = |n: &Neighbour| 8 + 16 + 32 + 32 * n.path.len();
        let results: usize = self.results.iter().map(|r| 44 + 32 * r.path.len()).sum();
        let absent: usize = self
            .absent
            .iter()
            .flat_map(|a| [&a.left, &a.right])
            .flatten()
            .map(neighbour)
            .sum();
        results + absent + 8 * self.sizes.len()
    }
}

fn neighbour_in(
    n: &Neighbour,
    size: u64,
    root: &ShardRoot,
    partition: &super::PartitionId,
) -> bool {
    top_from_path(leaf_hash(&n.label, &n.value), n.index, size, &n.path)
        .is_some_and(|top| shard_root(partition, size, &top) == *root)
}

impl KeywordKey {
    /// Checks a host's answer against the partition's anchored shard roots (all of them,
    /// in order) and decrypts it, dropping padding entries.
    ///
    /// # Errors
    /// [`crate::Error::Verification`] if the answer is not exactly the keyword's entries.
    pub fn verify(&self, roots: &[ShardRoot], answer: &VerifiableAnswer) -> Result<Vec<RecordRef>> {
        let partition = self.partition();
        if answer.sizes.len() != roots.len() || answer.absent.len() != roots.len() {
            return Err(VerifyError::ShardSet.into());
        }
        let prf = LabelPrf::new(self.label_key());
        let mut c = 0u64;
        for (i, r) in answer.results.iter().enumerate() {
            let ok = (r.shard as usize) < roots.len()
                && roots
                    .get(r.shard as usize)
                    .zip(answer.sizes.get(r.shard as usize))
                    .is_some_and(|(root, &size)| {
                        let leaf = leaf_hash(&prf.label(c), &r.value);
                        top_from_path(leaf, r.index, size, &r.path)
                            .is_some_and(|top| shard_root(partition, size, &top) == *root)
                    });
            if !ok {
                return Err(VerifyError::Membership(i).into());
            }
            c += 1;
        }
        let terminal = prf.label(c);
        for (s, ((proof, root), &size)) in answer
            .absent
            .iter()
            .zip(roots)
            .zip(&answer.sizes)
            .enumerate()
        {
            let ok = match (&proof.left, &proof.right) {
                (None, None) => size == 0 && shard_root(partition, 0, &[0u8; 32]) == *root,
                (None, Some(r)) => {
                    r.index == 0 && terminal < r.label && neighbour_in(r, size, root, partition)
                }
                (Some(l), None) => {
                    l.index.checked_add(1) == Some(size)
                        && l.label < terminal
                        && neighbour_in(l, size, root, partition)
                }
                (Some(l), Some(r)) => {
                    l.index.checked_add(1) == Some(r.index)
                        && l.label < terminal
                        && terminal < r.label
                        && top_from_adjacent_paths(
                            (leaf_hash(&l.label, &l.value), &l.path),
                            (leaf_hash(&r.label, &r.value), &r.path),
                            l.index,
                            size,
                        )
                        .is_some_and(|top| shard_root(partition, size, &top) == *root)
                }
            };
            if !ok {
                return Err(VerifyError::NonMembership(s).into());
            }
        }
        Ok(self.decrypt(&answer.values()))
    }
}
