use cudarc::driver::{DeviceRepr, ValidAsZeroBits};
use ferrograd_device::Unit;
use std::fmt::Debug;

/// An element type a [`Cuda`](crate::Cuda) buffer holds, and how it is stored in GPU
/// memory:
///
/// | element | stored as | C type in kernels |
/// |---|---|---|
/// | `f32` | `f32` | `float` |
/// | `f64` | `f64` | `double` |
/// | `usize` | `u64` (indices are 64-bit on the GPU whatever the host's `usize`) | `unsigned long long` |
/// | `bool` | `u8`, 0 or 1 (C++'s `bool` has no fixed size across compilers) | `unsigned char` |
///
/// Copies to and from the host convert between the two; a stored `u8` other than 0
/// reads back as `true`.
///
/// Implemented for these four types only (the trait is sealed): each stored type is
/// valid for every bit pattern, which is what lets the allocator hand out memory whose
/// contents are unspecified ([`Storage::try_alloc_for_overwrite`](ferrograd_device::Storage::try_alloc_for_overwrite)).
pub trait CudaElement: Unit + sealed::Sealed {
    /// The type stored in GPU memory.
    type Stored: DeviceRepr + ValidAsZeroBits + Copy + Debug + PartialEq + Send + Sync + 'static;
    /// The name of [`Self::Stored`] in CUDA C: each kernel source is compiled once per
    /// element type with `typedef <C_TYPE> T;` before it.
    const C_TYPE: &'static str;
}

pub(crate) mod sealed {
    use super::CudaElement;

    /// Conversions between an element and its stored form; private to the crate so that
    /// no other type can claim to be valid for every bit pattern.
    pub trait Sealed: Sized {
        fn to_stored(self) -> <Self as CudaElement>::Stored
        where
            Self: CudaElement;
        fn from_stored(stored: <Self as CudaElement>::Stored) -> Self
        where
            Self: CudaElement;
        /// Whether the stored form is all zero bytes, so a fill can be a memset (`-0.0`
        /// is not: its sign bit is set).
        fn stored_bits_are_zero(self) -> bool;
    }
}

macro_rules! element {
    ($element:ty, $stored:ty, $c_type:literal, |$x:ident| $to:expr, |$s:ident| $from:expr, |$z:ident| $zero:expr) => {
        impl sealed::Sealed for $element {
            #[inline]
            fn to_stored(self) -> $stored {
                let $x = self;
                $to
            }
            #[inline]
            fn from_stored(stored: $stored) -> Self {
                let $s = stored;
                $from
            }
            #[inline]
            fn stored_bits_are_zero(self) -> bool {
                let $z = self;
                $zero
            }
        }
        impl CudaElement for $element {
            type Stored = $stored;
            const C_TYPE: &'static str = $c_type;
        }
    };
}

element!(f32, f32, "float", |x| x, |s| s, |z| z.to_bits() == 0);
element!(f64, f64, "double", |x| x, |s| s, |z| z.to_bits() == 0);
// `usize` is at most 64 bits on every target CUDA supports, so both ways are exact there.
element!(usize, u64, "unsigned long long", |x| x as u64, |s| s as usize, |z| z
    == 0);
element!(bool, u8, "unsigned char", |x| u8::from(x), |s| s != 0, |z| !z);

#[cfg(test)]
mod tests {
    use super::sealed::Sealed;

    #[test]
    fn conversions_round_trip_and_zero_means_zero_bytes() {
        assert_eq!(usize::from_stored(usize::MAX.to_stored()), usize::MAX);
        assert_eq!(true.to_stored(), 1u8);
        assert!(bool::from_stored(7u8), "any non-zero byte reads as true");
        assert!(!bool::from_stored(0u8));
        assert!(0.0f32.stored_bits_are_zero() && 0.0f64.stored_bits_are_zero());
        assert!(!(-0.0f32).stored_bits_are_zero() && !(-0.0f64).stored_bits_are_zero());
        assert!(false.stored_bits_are_zero() && !true.stored_bits_are_zero());
        assert!(0usize.stored_bits_are_zero() && !1usize.stored_bits_are_zero());
    }
}
