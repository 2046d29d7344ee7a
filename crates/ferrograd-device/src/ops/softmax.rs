//! Softmax and log-softmax along axes, each one fused kernel per direction.
//!
//! A *row* is the set of elements that share every index outside the normalised axes
//! (with one axis: a line along it, strided in memory unless it is the last axis of a
//! contiguous tensor). Forward takes each row's maximum, the sum of exponentials shifted
//! by it, and normalises, without intermediate tensors; it is stable for any finite
//! logits. Backward needs only the output:
//!
//! - softmax: `dx = y · (dy − Σ_row dy · y)`;
//! - log-softmax: `dx = dy − exp(y) · Σ_row dy`.

use crate::dtype::Dtype;
use crate::error::Error;
use crate::storage::Storage;
use crate::view::{InputView, ViewMut};

/// Which normalisation a [`SoftmaxKernel`] computes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SoftmaxKind {
    /// `exp(x − m) / Σ exp(x − m)`, `m` the row's maximum.
    Softmax,
    /// `x − m − ln Σ exp(x − m)`.
    LogSoftmax,
}

impl SoftmaxKind {
    /// The op's name, for errors.
    pub fn name(self) -> &'static str {
        match self {
            SoftmaxKind::Softmax => "softmax",
            SoftmaxKind::LogSoftmax => "log_softmax",
        }
    }
}

/// Runs softmax and log-softmax on a device.
///
/// Every method checks its arguments before touching memory: a layout that reaches past
/// its buffer, axes out of range, unsorted or repeated, or a contiguous buffer shorter
/// than the input's element count is an [`Error::InvalidArgument`] naming the op
/// ([`SoftmaxKind::name`]) and the sizes.
pub trait SoftmaxKernel<E: Dtype>: Storage<E> {
    /// Normalises every row along `axes` (sorted, distinct) of `input`, read through its
    /// layout; the result has the input's dims and is contiguous. A `Unique` input
    /// whose layout is contiguous may be overwritten and returned.
    fn forward(&self, kind: SoftmaxKind, input: InputView<'_, Self::Vec>, axes: &[usize]) -> Result<Self::Vec, Error>;

    /// Adds the input's gradient into `grad_input`, addressed through the input's
    /// layout (positions that share an element, a broadcast input, all add into it),
    /// from the contiguous `output` and `grad_output`.
    fn backward(
        &self,
        kind: SoftmaxKind,
        grad_input: ViewMut<'_, Self::Vec>,
        axes: &[usize],
        output: &Self::Vec,
        grad_output: &Self::Vec,
    ) -> Result<(), Error>;
}
