//! Hashing attribute labels and LSSS columns to G1 (RFC 9380), with a cache.
//!
//! Every purpose has its own domain-separation tag, and the message layout is fixed-width
//! before the variable part, so no two purposes or indices can produce the same input.
//! Hashes are computed with RFC 9380 `hash_to_curve`, never as `g^H(x)`: the discrete
//! log of a hashed point must stay unknown, or a key holder could forge the components
//! of attributes they were never issued.

use crate::curve::{Backend, GtPowTable};
use group::Curve;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

/// DST of FAME attribute hashes `H(y, l, t)`.
pub(crate) const DST_FAME_ATTR: &[u8] = b"MEDSEAL-V1-FAME-ATTR_BLS12381G1_XMD:SHA-256_SSWU_RO_";
/// DST of FAME LSSS-column hashes `H(0j, l, t)`.
pub(crate) const DST_FAME_COLUMN: &[u8] = b"MEDSEAL-V1-FAME-COLUMN_BLS12381G1_XMD:SHA-256_SSWU_RO_";
/// DST of BSW07 attribute hashes `H(y)`.
pub(crate) const DST_BSW07_ATTR: &[u8] = b"MEDSEAL-V1-BSW07-ATTR_BLS12381G1_XMD:SHA-256_SSWU_RO_";

/// The six FAME hashes of one attribute or column: index `3 * (t - 1) + (l - 1)`, for
/// l in 1..=3 and t in 1..=2.
pub(crate) type FameHashes<B> = [<B as Backend>::G1Affine; 6];

/// Index of `H(., l, t)` in [`FameHashes`].
pub(crate) const fn fame_index(l: usize, t: usize) -> usize {
    3 * (t - 1) + (l - 1)
}

fn fame_hashes<B: Backend>(dst: &[u8], id: &[u8]) -> FameHashes<B> {
    let mut msg = Vec::with_capacity(2 + id.len());
    let mut out = [<B::G1Affine as group::prime::PrimeCurveAffine>::identity(); 6];
    for t in 1..=2u8 {
        for l in 1..=3u8 {
            msg.clear();
            msg.extend_from_slice(&[l, t]);
            msg.extend_from_slice(id);
            out[fame_index(usize::from(l), usize::from(t))] = B::hash_to_g1(&msg, dst).to_affine();
        }
    }
    out
}

/// Entries kept before the cache is cleared; each entry is at most six affine points.
const CACHE_CAPACITY: usize = 8192;

#[derive(Clone, PartialEq, Eq, Hash)]
enum CacheKey {
    FameAttr(Box<str>),
    FameColumn(u32),
    Bsw07Attr(Box<str>),
}

/// A bounded memo of attribute and column hashes.
///
/// Hashing to the curve dominates key generation and encryption, and the same
/// attributes recur in every record of a hospital, so the public key carries one of
/// these. It holds only public values. When full it is simply cleared: a hit rate
/// problem at worst, never a correctness one. It also keeps the fixed-base tables of the
/// key's target-group elements ([`HashCache::gt_tables`]), built on first use.
pub(crate) struct HashCache<B: Backend> {
    fame: Mutex<HashMap<CacheKey, Arc<FameHashes<B>>>>,
    bsw07: Mutex<HashMap<CacheKey, B::G1Affine>>,
    gt: OnceLock<Arc<[GtPowTable<B>]>>,
}

impl<B: Backend> Default for HashCache<B> {
    fn default() -> Self {
        Self {
            fame: Mutex::new(HashMap::new()),
            bsw07: Mutex::new(HashMap::new()),
            gt: OnceLock::new(),
        }
    }
}

/// The value memoised under `key` in `map`, computing and inserting it on a miss.
fn cached<V: Clone>(
    map: &Mutex<HashMap<CacheKey, V>>,
    key: CacheKey,
    compute: impl FnOnce() -> V,
) -> V {
    if let Some(hit) = map.lock().unwrap_or_else(PoisonError::into_inner).get(&key) {
        return hit.clone();
    }
    // Computed outside the lock: hashing is slow and other threads may proceed.
    let value = compute();
    let mut map = map.lock().unwrap_or_else(PoisonError::into_inner);
    if map.len() >= CACHE_CAPACITY {
        map.clear();
    }
    map.insert(key, value.clone());
    value
}

impl<B: Backend> HashCache<B> {
    /// `H(label, l, t)` for all l, t.
    pub(crate) fn fame_attribute(&self, label: &str) -> Arc<FameHashes<B>> {
        cached(&self.fame, CacheKey::FameAttr(label.into()), || {
            Arc::new(fame_hashes::<B>(DST_FAME_ATTR, label.as_bytes()))
        })
    }

    /// `H(0j, l, t)` for all l, t; `column` is 0-based (column 0 is FAME's "01").
    pub(crate) fn fame_column(&self, column: u32) -> Arc<FameHashes<B>> {
        cached(&self.fame, CacheKey::FameColumn(column), || {
            Arc::new(fame_hashes::<B>(DST_FAME_COLUMN, &column.to_be_bytes()))
        })
    }

    /// BSW07's `H(label)`.
    pub(crate) fn bsw07_attribute(&self, label: &str) -> B::G1Affine {
        cached(&self.bsw07, CacheKey::Bsw07Attr(label.into()), || {
            B::hash_to_g1(label.as_bytes(), DST_BSW07_ATTR).to_affine()
        })
    }

    /// The fixed-base tables of `bases`, the target-group elements of the public key this
    /// cache belongs to (always the same ones: a cache is attached to one key). Built on
    /// the first call (~4 exponentiations each), shared afterwards.
    pub(crate) fn gt_tables(&self, bases: &[B::Gt]) -> Arc<[GtPowTable<B>]> {
        Arc::clone(
            self.gt
                .get_or_init(|| bases.iter().map(GtPowTable::new).collect()),
        )
    }

    /// Number of cached entries (for tests and diagnostics).
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.fame
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
            + self
                .bsw07
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .len()
    }
}

/// A clone starts empty: the memo is not part of the value it is attached to.
impl<B: Backend> Clone for HashCache<B> {
    fn clone(&self) -> Self {
        Self::default()
    }
}

impl<B: Backend> core::fmt::Debug for HashCache<B> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("HashCache").finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::curve::{Blst, zk::Zk};
    use group::GroupEncoding;

    #[test]
    fn purposes_and_indices_are_separated() {
        let cache = HashCache::<Blst>::default();
        let a = cache.fame_attribute("role:doctor");
        let c = cache.fame_column(0);
        let b = cache.bsw07_attribute("role:doctor");
        let mut all: Vec<Vec<u8>> = a
            .iter()
            .chain(c.iter())
            .map(|p| p.to_bytes().as_ref().to_vec())
            .collect();
        all.push(b.to_bytes().as_ref().to_vec());
        let n = all.len();
        all.sort();
        all.dedup();
        assert_eq!(all.len(), n, "two hash purposes collided");
    }

    #[test]
    fn cache_returns_what_it_computed_and_backends_agree() {
        let cache = HashCache::<Blst>::default();
        let first = cache.fame_attribute("dept:cardiology");
        let second = cache.fame_attribute("dept:cardiology");
        assert!(Arc::ptr_eq(&first, &second));
        assert_eq!(cache.len(), 1);
        let oracle = HashCache::<Zk>::default().fame_attribute("dept:cardiology");
        for (x, y) in first.iter().zip(oracle.iter()) {
            assert_eq!(x.to_bytes().as_ref(), y.to_bytes().as_ref());
        }
    }
}
