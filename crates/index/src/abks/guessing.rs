//! Offline keyword guessing against ABKS: recover a trapdoor's keyword from a dictionary
//! using only the public key.
//!
//! ABKS is public-key: index entries are made from the public key, so the keyword hash
//! `H1(w)` sits in the exponent of public values, and a trapdoor ties its keyword to
//! `g1^{cs}` in a way anyone can test. With `tok1 = g1^{s(a + b·H1(w))}` and
//! `tok2 = g1^{cs}`:
//!
//! ```text
//! T = e(tok1, g2^c) · e(tok2, g2^a)^{-1} = e(g1, g2)^{c s b H1(w)}
//! B = e(tok2, g2^b)                      = e(g1, g2)^{c s b}
//! guess w' is right  ⇔  B^{H1(w')} = T
//! ```
//!
//! Two pairings per trapdoor, then one exponentiation in G_T per guess, made cheap by a
//! fixed-base comb over `B` (32 windows of 8 bits: 32 multiplications in F_p^12 per
//! guess). Neither the attacker's attributes nor any index entry are needed: the server
//! that receives trapdoors, or anyone who obtains one, can run it. (A weaker variant
//! that also works: build an index entry for each guess under a policy one satisfies
//! and run the scheme's own test.) Low-entropy keywords such as the ~95,000 ICD-10-CM
//! codes fall in seconds: see `examples/abks_guessing.rs`.
//!
//! The SSE default is not exposed to this: its tokens are PRF outputs under a partition
//! key that only holders of a satisfying attribute key can unwrap, so there is nothing
//! public to test a guess against.

use super::hash;
use super::keys::AbksPublicKey;
use super::trapdoor::Trapdoor;
use crate::keyword::Keyword;
use blst::blst_fp12;
use rayon::prelude::*;

const WINDOWS: usize = 32;
const WINDOW_SIZE: usize = 256;

/// The attacker's precomputation for one trapdoor (about 4.7 MB of tables).
pub struct KeywordGuesser {
    target: blst_fp12,
    /// `table[i * 256 + j] = B^{j · 256^i}`.
    table: Vec<blst_fp12>,
}

impl KeywordGuesser {
    /// Precomputes `T`, `B` and the comb tables from public data only.
    pub fn new(pk: &AbksPublicKey, trapdoor: &Trapdoor) -> Self {
        let target = blst_fp12::miller_loop_n(
            &[*pk.g2_c.as_ref(), *pk.g2_a.as_ref()],
            &[*trapdoor.tok1.as_ref(), *(-trapdoor.tok2).as_ref()],
        )
        .final_exp();
        let base =
            blst_fp12::miller_loop_n(&[*pk.g2_b.as_ref()], &[*trapdoor.tok2.as_ref()]).final_exp();
        let mut table = Vec::with_capacity(WINDOWS * WINDOW_SIZE);
        let mut window_base = base;
        for _ in 0..WINDOWS {
            let mut acc = blst_fp12::default();
            for _ in 0..WINDOW_SIZE {
                table.push(acc);
                acc *= window_base;
            }
            // acc = window_base^256: the next window's base.
            window_base = acc;
        }
        Self { target, table }
    }

    /// Whether `keyword` is the trapdoor's keyword. Variable time (public data only).
    pub fn vartime_test(&self, keyword: &Keyword) -> bool {
        let Ok(h) = hash::keyword(keyword) else {
            return false;
        };
        let mut acc = blst_fp12::default();
        for (i, byte) in h.to_bytes_le().iter().enumerate() {
            if *byte != 0
                && let Some(t) = self.table.get(i * WINDOW_SIZE + usize::from(*byte))
            {
                acc *= *t;
            }
        }
        acc == self.target
    }

    /// Tests every candidate in parallel (rayon) and returns one that matches.
    pub fn vartime_recover<'a>(&self, candidates: &'a [Keyword]) -> Option<&'a Keyword> {
        candidates.par_iter().find_any(|k| self.vartime_test(k))
    }
}

redacted_debug!(KeywordGuesser);
