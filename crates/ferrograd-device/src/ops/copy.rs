//! Strided copies: what `contiguous`, `concat` and `stack` are made of, and how their
//! gradients flow back.

use crate::dtype::Dtype;
use crate::error::Error;
use crate::storage::Storage;
use crate::view::{View, ViewMut};

/// Copies and accumulates between buffers through layouts of equal dims.
///
/// Both kernels check at entry that the dims agree and that each view stays inside its
/// buffer; an error names the kernel (`copy_strided`, `add_strided`) and the sizes.
pub trait CopyKernel<E: Dtype>: Storage<E> {
    /// `dst[dst.layout[i]] = src[src.layout[i]]` for every element `i`.
    ///
    /// `src` may repeat elements (a broadcast); `dst` must not: with two positions on
    /// one element, which value would remain depends on the order of the writes, which
    /// a device running them concurrently does not fix.
    ///
    /// # Errors
    /// `Error::ShapeMismatch` when the dims differ; `Error::InvalidArgument` when a
    /// view reaches past its buffer or `dst` repeats an element.
    fn copy_strided(&self, src: View<'_, Self::Vec>, dst: ViewMut<'_, Self::Vec>) -> Result<(), Error>;

    /// `dst[dst.layout[i]] += src[src.layout[i]]` for every element `i`.
    ///
    /// `dst` may repeat elements, and then they accumulate: each position adds its
    /// value once. This is how the gradient of a broadcast view reaches its buffer (the
    /// backward passes of `contiguous`, `concat` and `scatter_add` of a broadcast
    /// tensor, a product's gradient into a repeated layout), so a device must honour it,
    /// with atomic additions or by summing over the repeated axes first.
    ///
    /// # Errors
    /// `Error::ShapeMismatch` when the dims differ; `Error::InvalidArgument` when a
    /// view reaches past its buffer.
    fn add_strided(&self, src: View<'_, Self::Vec>, dst: ViewMut<'_, Self::Vec>) -> Result<(), Error>;
}

/// What [`CopyKernel::copy_strided`] (`accumulate` false) and
/// [`CopyKernel::add_strided`] (`accumulate` true) check at entry. O(rank).
///
/// # Errors
/// As the kernels.
pub fn check_copy<V: crate::view::BufferLength>(
    kernel: &'static str,
    src: &View<'_, V>,
    dst: &ViewMut<'_, V>,
    accumulate: bool,
) -> Result<(), Error> {
    crate::view::check_same_dims(kernel, ("src", &src.layout), ("dst", &dst.layout))?;
    src.check(kernel, "src")?;
    if accumulate {
        dst.check_accumulating(kernel, "dst")
    } else {
        dst.check(kernel, "dst")
    }
}
