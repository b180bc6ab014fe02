//! Best-effort wiping of secret scalars and bytes.
//!
//! The curve crates' scalar types are `Copy` and do not implement `Zeroize`, so secret
//! scalars live in [`SecretScalar`], which overwrites itself on drop followed by a compiler
//! fence. Copies the optimiser made into registers or spilled stack slots are out of reach
//! of any library; the README says so.

use core::sync::atomic::{Ordering, compiler_fence};
use ff::Field;

/// Keeps the compiler from eliding the overwrites that precede it.
pub(crate) fn fence() {
    compiler_fence(Ordering::SeqCst);
}

/// A secret scalar, overwritten with zero when dropped.
pub(crate) struct SecretScalar<F: Field>(pub(crate) F);

impl<F: Field> Drop for SecretScalar<F> {
    fn drop(&mut self) {
        self.0 = F::ZERO;
        compiler_fence(Ordering::SeqCst);
    }
}

impl<F: Field> core::ops::Deref for SecretScalar<F> {
    type Target = F;
    fn deref(&self) -> &F {
        &self.0
    }
}

impl<F: Field> Clone for SecretScalar<F> {
    fn clone(&self) -> Self {
        Self(self.0)
    }
}
