//! Conversion between element types, and copies into contiguous buffers.

use crate::dtype::Unit;
use crate::error::Error;
use crate::storage::Storage;
use crate::view::View;

/// A value conversion between element types, as `as` does it (`bool` becomes 0 or 1).
pub trait CastTo<T>: Unit {
    /// Converts the value.
    fn cast(self) -> T;
}

macro_rules! casts {
    ($($from:ty => $to:ty),*) => {$(
        impl CastTo<$to> for $from {
            #[inline(always)]
            fn cast(self) -> $to {
                self as $to
            }
        }
    )*};
}
casts!(f32 => f32, f32 => f64, f64 => f32, f64 => f64);

impl CastTo<bool> for bool {
    #[inline(always)]
    fn cast(self) -> bool {
        self
    }
}
impl CastTo<f32> for bool {
    #[inline(always)]
    fn cast(self) -> f32 {
        if self { 1.0 } else { 0.0 }
    }
}
impl CastTo<f64> for bool {
    #[inline(always)]
    fn cast(self) -> f64 {
        if self { 1.0 } else { 0.0 }
    }
}

/// Copies a buffer read through a layout into a new contiguous buffer, converting
/// each element from `From` to `To` (`From = To` gives a plain contiguous copy).
pub trait ConvertKernel<From: CastTo<To>, To: Unit>: Storage<From> + Storage<To> {
    /// The converted, contiguous copy, row-major over the input's dims.
    ///
    /// Errors: [`Error::InvalidArgument`] naming `convert` when the layout reaches past
    /// the buffer, checked before anything is read.
    fn convert(&self, input: View<'_, <Self as Storage<From>>::Vec>) -> Result<<Self as Storage<To>>::Vec, Error>;
}
