//! `Debug` impls that print only what is safe and useful to print.

/// `Debug` for a type holding secrets or bulk data: the type name, the listed facts, `..`.
/// `redacted_debug!(T, |t| "len" => t.0.len())` prints `T { len: 3, .. }`.
macro_rules! redacted_debug {
    ($ty:ident $(, |$this:ident| $($field:literal => $value:expr),+)?) => {
        impl core::fmt::Debug for $ty {
            fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                $(let $this = self;)?
                f.debug_struct(stringify!($ty))
                    $($(.field($field, &$value))+)?
                    .finish_non_exhaustive()
            }
        }
    };
}

/// `Debug` for a 32-byte newtype as `T(0123456789abcdef…)`: its first 8 bytes in hex.
macro_rules! short_hex_debug {
    ($ty:ident) => {
        impl core::fmt::Debug for $ty {
            fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                write!(f, concat!(stringify!($ty), "("))?;
                for b in &self.0[..8] {
                    write!(f, "{b:02x}")?;
                }
                write!(f, "…)")
            }
        }
    };
}
