//! Per-axis ranges for slicing: `x.slice((0..2, .., 1..))`.

use crate::dim::Dim;
use crate::shape::Shape;
use std::ops::{Range, RangeFrom, RangeFull, RangeInclusive, RangeTo, RangeToInclusive};

/// A range along one axis of size `D`. A full range (`..`) keeps the dim's type; any
/// other range gives a run-time (`usize`) dim.
pub trait AxisRange<D: Dim> {
    /// The dim of the sliced axis.
    type Dim: Dim;
    /// The `(start, end)` the range covers on an axis of `size` elements, not yet
    /// checked against `size`.
    fn bounds(&self, size: usize) -> (usize, usize);
}

impl<D: Dim> AxisRange<D> for RangeFull {
    type Dim = D;
    fn bounds(&self, size: usize) -> (usize, usize) {
        (0, size)
    }
}
impl<D: Dim> AxisRange<D> for Range<usize> {
    type Dim = usize;
    fn bounds(&self, _: usize) -> (usize, usize) {
        (self.start, self.end)
    }
}
impl<D: Dim> AxisRange<D> for RangeFrom<usize> {
    type Dim = usize;
    fn bounds(&self, size: usize) -> (usize, usize) {
        (self.start, size)
    }
}
impl<D: Dim> AxisRange<D> for RangeTo<usize> {
    type Dim = usize;
    fn bounds(&self, _: usize) -> (usize, usize) {
        (0, self.end)
    }
}
impl<D: Dim> AxisRange<D> for RangeInclusive<usize> {
    type Dim = usize;
    fn bounds(&self, _: usize) -> (usize, usize) {
        (*self.start(), self.end().saturating_add(1))
    }
}
impl<D: Dim> AxisRange<D> for RangeToInclusive<usize> {
    type Dim = usize;
    fn bounds(&self, _: usize) -> (usize, usize) {
        (0, self.end.saturating_add(1))
    }
}

/// A tuple of one [`AxisRange`] per axis of `S`.
pub trait SliceRanges<S: Shape> {
    /// The shape of the slice.
    type Sliced: Shape;
    /// The `(start, end)` of every axis, for the sizes `dims`.
    fn all_bounds(&self, dims: &[usize]) -> Vec<(usize, usize)>;
}

macro_rules! slice_ranges {
    ($($D:ident $R:ident $i:tt),*) => {
        impl<$($D: Dim, $R: AxisRange<$D>),*> SliceRanges<($($D,)*)> for ($($R,)*) {
            type Sliced = ($($R::Dim,)*);
            fn all_bounds(&self, dims: &[usize]) -> Vec<(usize, usize)> {
                vec![$(self.$i.bounds(dims[$i])),*]
            }
        }
    };
}
slice_ranges!(D0 R0 0);
slice_ranges!(D0 R0 0, D1 R1 1);
slice_ranges!(D0 R0 0, D1 R1 1, D2 R2 2);
slice_ranges!(D0 R0 0, D1 R1 1, D2 R2 2, D3 R3 3);
slice_ranges!(D0 R0 0, D1 R1 1, D2 R2 2, D3 R3 3, D4 R4 4);
slice_ranges!(D0 R0 0, D1 R1 1, D2 R2 2, D3 R3 3, D4 R4 4, D5 R5 5);

/// `Self` with a new leading axis of dim `New` (the shape of a stack).
pub trait PrependAxis<New: Dim>: Shape {
    /// The shape with the new axis first.
    type Prepended: Shape;
}

macro_rules! prepend {
    ($($D:ident),*) => {
        impl<New: Dim, $($D: Dim),*> PrependAxis<New> for ($($D,)*) {
            type Prepended = (New, $($D,)*);
        }
    };
}
prepend!();
prepend!(D0);
prepend!(D0, D1);
prepend!(D0, D1, D2);
prepend!(D0, D1, D2, D3);
prepend!(D0, D1, D2, D3, D4);
