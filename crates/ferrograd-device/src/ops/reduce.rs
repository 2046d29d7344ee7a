//! Reductions over a set of axes.

use crate::dtype::Dtype;
use crate::error::Error;
use crate::storage::Storage;
use ferrograd_shapes::Layout;

/// Sums over axes on a device.
pub trait SumKernel<E: Dtype>: Storage<E> {
    /// The sum of `input` (read through `layout`) over `axes` (sorted, distinct); the
    /// result is contiguous over the remaining axes.
    fn forward(&self, input: &Self::Vec, layout: &Layout, axes: &[usize]) -> Result<Self::Vec, Error>;

    /// `grad_input[i] += grad_output[i without axes]`, `grad_input` addressed through
    /// `layout`.
    fn backward(
        &self,
        layout: &Layout,
        axes: &[usize],
        grad_input: &mut Self::Vec,
        grad_output: &Self::Vec,
    ) -> Result<(), Error>;
}
