//! FAME: fast attribute-based message encryption (Agrawal & Chase, CCS 2017).
//!
//! The default scheme: fully (adaptively) secure under the decisional linear assumption
//! in the random-oracle model, unbounded attributes (any string), LSSS policies with
//! attribute reuse, and decryption costs one 6-term multi-pairing whatever the policy
//! size (plus linear combinations in G1, which are additions for AND/OR policies).
//!
//! Group assignment (type III): attribute and column hashes, key attribute components and
//! ciphertext rows are in G1 (48 bytes each); `sk0`, `ct0` and the public `H1`, `H2` are
//! in G2. A ciphertext costs 144 bytes per LSSS row plus a 296-byte constant and its
//! policy text.

pub(crate) mod core;
pub(crate) mod encoding;

/// The FAME scheme (see the module docs). Use it through the [`Scheme`] trait.
#[derive(Debug, Clone, Copy, Default)]
pub struct Fame;

scheme_types!(Fame, "FAME");
