//! Indexing: reading and accumulating elements along one axis at given indices (what
//! `gather`, `select`, `index_select` and `scatter_add` are made of), and one-hot
//! encoding.
//!
//! Indices are `usize` buffers read through their own [`Layout`], which
//! may broadcast (stride 0): `select` with one index for a whole tensor is a gather
//! whose index layout has every stride 0. Every kernel first checks its views (a layout
//! that reaches past its buffer is an [`Error::InvalidArgument`], dims that disagree an
//! [`Error::ShapeMismatch`], both naming the op and the sizes), then each index against
//! the size of its axis ([`index_out_of_bounds`]), never reading or writing out of
//! bounds; kernels that accumulate check all indices before writing anything.

use crate::dtype::{Dtype, Unit};
use crate::error::Error;
use crate::storage::Storage;
use crate::view::{View, ViewMut};
use ferrograd_shapes::Layout;

/// The error of an index past the end of its axis, in PyTorch's words:
/// `gather: index 7 is out of bounds for axis 1 of size 5`.
///
/// ```
/// use ferrograd_device::ops::index::index_out_of_bounds;
/// let e = index_out_of_bounds("gather", 7, 1, 5);
/// assert_eq!(e.to_string(), "gather: index 7 is out of bounds for axis 1 of size 5");
/// ```
pub fn index_out_of_bounds(op: &'static str, index: usize, axis: usize, size: usize) -> Error {
    Error::InvalidArgument {
        op,
        message: format!("index {index} is out of bounds for axis {axis} of size {size}"),
    }
}

/// Checks that the indexed layout and the index layout have one rank, that `axis` is one
/// of its axes, and that their dims agree on every other axis: what every gather and
/// scatter kernel checks at entry, so all devices refuse the same arguments with the same
/// text.
pub fn check_index_layouts(op: &'static str, data: &Layout, axis: usize, index: &Layout) -> Result<(), Error> {
    let (d, i) = (data.dims(), index.dims());
    let agree =
        d.len() == i.len() && axis < d.len() && d.iter().zip(i).enumerate().all(|(a, (x, y))| a == axis || x == y);
    if agree {
        Ok(())
    } else {
        Err(Error::ShapeMismatch {
            op,
            message: format!("data {d:?} and indices {i:?} must have one rank and agree on every axis but {axis}"),
        })
    }
}

/// Checks that the values scattered (or gathered into) have the indices' dims.
pub fn check_index_values(op: &'static str, index: &Layout, values: &Layout) -> Result<(), Error> {
    if index.dims() == values.dims() {
        Ok(())
    } else {
        Err(Error::ShapeMismatch {
            op,
            message: format!(
                "indices {:?} and values {:?} must have one shape",
                index.dims(),
                values.dims()
            ),
        })
    }
}

/// Element types an index converts to (`arange`): `usize` itself, `f32` and `f64`.
pub trait FromIndex: Unit {
    /// The index as a value of this type (rounded to nearest for floats past 2^24 / 2^53).
    fn from_index(index: usize) -> Self;
}

impl FromIndex for usize {
    #[inline(always)]
    fn from_index(index: usize) -> Self {
        index
    }
}
impl FromIndex for f32 {
    #[inline(always)]
    fn from_index(index: usize) -> Self {
        index as f32
    }
}
impl FromIndex for f64 {
    #[inline(always)]
    fn from_index(index: usize) -> Self {
        index as f64
    }
}

/// Reads elements along one axis at given indices: the forward pass of `gather`,
/// `select` and `index_select`.
pub trait GatherKernel<E: Unit>: Storage<E> + Storage<usize> {
    /// For every position `p` of `index`'s dims, in row-major order,
    /// `out[p] = input[p with p[axis] replaced by index[p]]`, each read through its
    /// layout. The two layouts have equal dims except on `axis`; the result is
    /// contiguous over `index`'s dims.
    ///
    /// Errors: `Error::InvalidArgument` naming `op` when a layout reaches past its
    /// buffer or an index is not below the input's size on `axis`;
    /// `Error::ShapeMismatch` when the dims disagree.
    fn gather(
        &self,
        op: &'static str,
        input: View<'_, <Self as Storage<E>>::Vec>,
        axis: usize,
        index: View<'_, <Self as Storage<usize>>::Vec>,
    ) -> Result<<Self as Storage<E>>::Vec, Error>;
}

/// Accumulates elements along one axis at given indices: the forward pass of
/// `scatter_add` and the backward pass of every gather.
pub trait ScatterAddKernel<E: Dtype>: Storage<E> + Storage<usize> {
    /// For every position `p` of `index`'s dims,
    /// `dst[p with p[axis] replaced by index[p]] += src[p]`, each addressed through its
    /// layout (`src`'s dims equal to `index`'s). Repeated indices accumulate, and so do
    /// positions of `dst`'s layout that share an element (the gradient of a broadcast
    /// input). Every index is checked before anything is written.
    ///
    /// Errors as [`GatherKernel::gather`].
    fn scatter_add(
        &self,
        op: &'static str,
        dst: ViewMut<'_, <Self as Storage<E>>::Vec>,
        axis: usize,
        index: View<'_, <Self as Storage<usize>>::Vec>,
        src: View<'_, <Self as Storage<E>>::Vec>,
    ) -> Result<(), Error>;

    /// For every position `p` of `index`'s dims,
    /// `dst[p] += src[p with p[axis] replaced by index[p]]`: a gather added into `dst`
    /// (dims equal to `index`'s; positions that share an element all add into it), the
    /// backward pass of `scatter_add` for its source. Every index is checked before
    /// anything is written.
    ///
    /// Errors as [`GatherKernel::gather`].
    fn gather_add(
        &self,
        op: &'static str,
        src: View<'_, <Self as Storage<E>>::Vec>,
        axis: usize,
        index: View<'_, <Self as Storage<usize>>::Vec>,
        dst: ViewMut<'_, <Self as Storage<E>>::Vec>,
    ) -> Result<(), Error>;
}

/// One-hot encoding of indices.
pub trait OneHotKernel<E: Dtype>: Storage<E> + Storage<usize> {
    /// A contiguous buffer over `index`'s dims followed by `classes`: 1 at
    /// `[p, index[p]]`, 0 elsewhere.
    ///
    /// Errors: `Error::InvalidArgument` naming `one_hot` when `index`'s layout reaches
    /// past its buffer or an index is not below `classes`.
    fn one_hot(
        &self,
        index: View<'_, <Self as Storage<usize>>::Vec>,
        classes: usize,
    ) -> Result<<Self as Storage<E>>::Vec, Error>;
}
