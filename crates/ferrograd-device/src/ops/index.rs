//! Indexing: reading and accumulating elements along one axis at given indices (what
//! `gather`, `select`, `index_select` and `scatter_add` are made of), and one-hot
//! encoding.
//!
//! Indices are `usize` buffers read through their own [`Layout`], which may broadcast
//! (stride 0): `select` with one index for a whole tensor is a gather whose index layout
//! has every stride 0. Every kernel checks each index against the size of its axis and
//! returns [`Error::InvalidArgument`] (see [`index_out_of_bounds`]) instead of reading
//! or writing out of bounds; kernels that accumulate check all indices before writing
//! anything.

use crate::dtype::{Dtype, Unit};
use crate::error::Error;
use crate::storage::Storage;
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
    /// For every position `p` of `index_layout`'s dims, in row-major order,
    /// `out[p] = input[p with p[axis] replaced by index[p]]`, `input` read through
    /// `input_layout` and `index` through `index_layout`. The two layouts have equal
    /// dims except on `axis`; the result is contiguous over `index_layout`'s dims.
    ///
    /// Errors: `Error::InvalidArgument` naming `op` when an index is not below
    /// `input_layout.dims()[axis]`; `Error::ShapeMismatch` when the dims disagree.
    fn gather(
        &self,
        op: &'static str,
        input: &<Self as Storage<E>>::Vec,
        input_layout: &Layout,
        axis: usize,
        index: &<Self as Storage<usize>>::Vec,
        index_layout: &Layout,
    ) -> Result<<Self as Storage<E>>::Vec, Error>;
}

/// Accumulates elements along one axis at given indices: the forward pass of
/// `scatter_add` and the backward pass of every gather.
pub trait ScatterAddKernel<E: Dtype>: Storage<E> + Storage<usize> {
    /// For every position `p` of `index_layout`'s dims,
    /// `dst[p with p[axis] replaced by index[p]] += src[p]`, `dst` addressed through
    /// `dst_layout` and `src` through `src_layout` (dims equal to `index_layout`'s).
    /// Repeated indices accumulate. Every index is checked before anything is written.
    ///
    /// Errors as [`GatherKernel::gather`].
    #[allow(clippy::too_many_arguments)]
    fn scatter_add(
        &self,
        op: &'static str,
        dst: &mut <Self as Storage<E>>::Vec,
        dst_layout: &Layout,
        axis: usize,
        index: &<Self as Storage<usize>>::Vec,
        index_layout: &Layout,
        src: &<Self as Storage<E>>::Vec,
        src_layout: &Layout,
    ) -> Result<(), Error>;

    /// For every position `p` of `index_layout`'s dims,
    /// `dst[p] += src[p with p[axis] replaced by index[p]]`: a gather added into `dst`
    /// (addressed through `dst_layout`, dims equal to `index_layout`'s), the backward
    /// pass of `scatter_add` for its source. Every index is checked before anything is
    /// written.
    ///
    /// Errors as [`GatherKernel::gather`].
    #[allow(clippy::too_many_arguments)]
    fn gather_add(
        &self,
        op: &'static str,
        src: &<Self as Storage<E>>::Vec,
        src_layout: &Layout,
        axis: usize,
        index: &<Self as Storage<usize>>::Vec,
        index_layout: &Layout,
        dst: &mut <Self as Storage<E>>::Vec,
        dst_layout: &Layout,
    ) -> Result<(), Error>;
}

/// One-hot encoding of indices.
pub trait OneHotKernel<E: Dtype>: Storage<E> + Storage<usize> {
    /// A contiguous buffer over `index_layout`'s dims followed by `classes`: 1 at
    /// `[p, index[p]]`, 0 elsewhere.
    ///
    /// Errors: `Error::InvalidArgument` naming `one_hot` when an index is not below
    /// `classes`.
    fn one_hot(
        &self,
        index: &<Self as Storage<usize>>::Vec,
        index_layout: &Layout,
        classes: usize,
    ) -> Result<<Self as Storage<E>>::Vec, Error>;
}
