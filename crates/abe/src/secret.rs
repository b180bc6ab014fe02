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
#[derive(Clone)]
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

/// Declares a 32-byte secret newtype: `struct $name([u8; 32])` with `as_bytes`, wiped on
/// drop (`Zeroize` + `ZeroizeOnDrop`), compared in constant time (`ConstantTimeEq`,
/// `PartialEq`, `Eq`) and with a redacted `Debug`. Constructors stay with each type.
/// Shared with `medseal-index` (its `PartitionKey`); not a public API.
#[doc(hidden)]
#[macro_export]
macro_rules! secret_bytes32 {
    ($(#[$meta:meta])* $vis:vis struct $name:ident; $as_bytes_doc:literal) => {
        $(#[$meta])*
        $vis struct $name([u8; 32]);

        impl $name {
            #[doc = $as_bytes_doc]
            $vis fn as_bytes(&self) -> &[u8; 32] {
                &self.0
            }
        }

        impl $crate::__private::zeroize::Zeroize for $name {
            fn zeroize(&mut self) {
                $crate::__private::zeroize::Zeroize::zeroize(&mut self.0);
            }
        }

        impl ::core::ops::Drop for $name {
            fn drop(&mut self) {
                $crate::__private::zeroize::Zeroize::zeroize(&mut self.0);
            }
        }

        impl $crate::__private::zeroize::ZeroizeOnDrop for $name {}

        impl $crate::__private::subtle::ConstantTimeEq for $name {
            fn ct_eq(&self, other: &Self) -> $crate::__private::subtle::Choice {
                $crate::__private::subtle::ConstantTimeEq::ct_eq(&self.0[..], &other.0[..])
            }
        }

        impl ::core::cmp::PartialEq for $name {
            fn eq(&self, other: &Self) -> bool {
                $crate::__private::subtle::ConstantTimeEq::ct_eq(self, other).into()
            }
        }

        impl ::core::cmp::Eq for $name {}

        impl ::core::fmt::Debug for $name {
            fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                f.debug_struct(stringify!($name)).finish_non_exhaustive()
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use crate::envelope::DataKey;
    use zeroize::Zeroize;

    crate::secret_bytes32! {
        /// A test key.
        #[derive(Clone)]
        struct TestKey;
        "Its bytes."
    }

    #[test]
    fn secret_newtype_behaviour() {
        let mut a = TestKey([7; 32]);
        let b = a.clone();
        assert_eq!(a, b);
        assert_ne!(a, TestKey([8; 32]));
        assert_eq!(format!("{a:?}"), "TestKey { .. }");
        a.zeroize();
        assert_eq!(a.as_bytes(), &[0; 32]);
    }

    #[test]
    fn data_key_from_slice_takes_exactly_32_bytes() {
        let key = DataKey::from_slice(&[5; 32]).unwrap();
        assert_eq!(key, DataKey::from_bytes([5; 32]));
        assert!(DataKey::from_slice(&[5; 31]).is_none());
        assert!(DataKey::from_slice(&[5; 33]).is_none());
        assert!(!format!("{key:?}").contains('5'));
    }
}
