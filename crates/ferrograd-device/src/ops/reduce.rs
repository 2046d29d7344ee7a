//! Reductions over a set of axes: sum, max/min, argmax/argmin, max/min along one axis
//! with their indices, variance and standard deviation, logsumexp.
//!
//! Every kernel takes the input as a [`View`]: a buffer with its
//! [`Layout`] (any strides: broadcast, permuted and sliced views
//! included). It also takes `axes`, the reduced axes, sorted and distinct. The result is contiguous, row-major over the kept axes.
//! Backward kernels accumulate (`+=`) into a gradient buffer addressed through the
//! input's layout, so a view's gradient lands in the buffer it views; positions that
//! share an element (a broadcast input) all add into it.
//!
//! Every kernel checks its arguments before touching memory, and returns
//! [`Error::InvalidArgument`] naming the reduction and the sizes for a layout that
//! reaches past its buffer, axes out of range, unsorted or repeated, or a contiguous
//! buffer (an output, an output's gradient, indices) shorter than the output.
//!
//! A reduction group is the set of input elements that reduce into one output element;
//! its elements are ordered row-major over the reduced axes (what `argmax` indexes).

use crate::dtype::Dtype;
use crate::error::Error;
use crate::storage::Storage;
use crate::view::{BufferLength, View, ViewMut, check_axes, check_len};
use ferrograd_shapes::Layout;

/// The checks at the entry of a reduction's forward kernel on every device: the axes (in
/// range, sorted, distinct), then the input's reach.
pub fn check_reduction<V: BufferLength>(op: &'static str, input: View<'_, V>, axes: &[usize]) -> Result<(), Error> {
    check_axes(op, axes, input.layout.rank())?;
    input.check(op, "input")
}

/// `Error::InvalidArgument` naming `op` unless `axis` is an axis of `layout`.
pub fn check_axis(op: &'static str, layout: &Layout, axis: usize) -> Result<(), Error> {
    if axis < layout.rank() {
        Ok(())
    } else {
        Err(Error::InvalidArgument {
            op,
            message: format!("axis {axis} of a rank-{} tensor", layout.rank()),
        })
    }
}

/// The checks at the entry of [`ExtremumWithIndicesKernel::backward`] on every device:
/// `axis` is one of the gradient's, which is reached through its layout (repeats
/// accumulate), and the indices and the output gradient hold one value per output
/// element. Returns that count.
pub fn check_with_indices_backward<V: BufferLength, I: BufferLength>(
    op: &'static str,
    grad_input: &ViewMut<'_, V>,
    axis: usize,
    indices: &I,
    grad_output: &V,
) -> Result<usize, Error> {
    let layout = grad_input.layout;
    check_axis(op, &layout, axis)?;
    grad_input.check_accumulating(op, "grad_input")?;
    let outputs: usize = (layout.dims().iter().enumerate())
        .filter(|&(a, _)| a != axis)
        .map(|(_, &d)| d)
        .product();
    check_len(op, "indices", indices.buffer_length(), outputs)?;
    check_len(op, "grad_output", grad_output.buffer_length(), outputs)?;
    Ok(outputs)
}

/// Sums over axes on a device.
pub trait SumKernel<E: Dtype>: Storage<E> {
    /// The sum of `input` over `axes` (sorted, distinct); the result is contiguous over
    /// the remaining axes.
    fn forward(&self, input: View<'_, Self::Vec>, axes: &[usize]) -> Result<Self::Vec, Error>;

    /// `grad_input[i] += grad_output[i without axes]`, `grad_input` addressed through
    /// the input's layout.
    fn backward(
        &self,
        grad_input: ViewMut<'_, Self::Vec>,
        axes: &[usize],
        grad_output: &Self::Vec,
    ) -> Result<(), Error>;
}

/// Which extreme value a reduction keeps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Extremum {
    /// The largest element (PyTorch's `amax`, `argmax`).
    Max,
    /// The smallest element (PyTorch's `amin`, `argmin`).
    Min,
}

impl Extremum {
    /// The op's name, for errors.
    pub fn name(self) -> &'static str {
        match self {
            Extremum::Max => "max",
            Extremum::Min => "min",
        }
    }

    /// Whether `candidate` replaces `best` when scanning a group in order: strictly
    /// better, or NaN where `best` is not. NaN therefore wins and propagates, and among
    /// equal values the first one stays, as in PyTorch.
    #[inline(always)]
    pub fn replaces<E: Dtype>(self, candidate: E, best: E) -> bool {
        let better = match self {
            Extremum::Max => candidate > best,
            Extremum::Min => candidate < best,
        };
        better || (candidate.is_nan() && !best.is_nan())
    }
}

/// Maxima and minima over axes (PyTorch's `amax` / `amin`); for the maximum along one
/// axis with its index (`torch.max(x, dim)`) see [`ExtremumWithIndicesKernel`].
pub trait ExtremumKernel<E: Dtype>: Storage<E> {
    /// The largest (or smallest) element of each group; NaN when the group holds one.
    /// An empty group gives `-inf` (`+inf` for `Min`); callers reject empty reductions.
    fn forward(&self, kind: Extremum, input: View<'_, Self::Vec>, axes: &[usize]) -> Result<Self::Vec, Error>;

    /// Splits each output gradient equally among the elements of its group equal to the
    /// output: `grad_input[i] += (grad_output[o] / count[o]) · [input[i] == output[o]]`,
    /// `count[o]` the number of such elements. This is PyTorch's formula, also where it
    /// gives NaN: a group whose extremum is NaN has `count = 0`, so each of its
    /// elements gets `(g / 0) · 0`. `grad_input` is addressed through `input.layout`.
    fn backward(
        &self,
        input: View<'_, Self::Vec>,
        axes: &[usize],
        output: &Self::Vec,
        grad_input: &mut Self::Vec,
        grad_output: &Self::Vec,
    ) -> Result<(), Error>;
}

/// The position of the maximum or minimum of each group (PyTorch's `argmax` /
/// `argmin`): the first one among ties, and the first NaN when there is one.
pub trait ArgExtremumKernel<E: Dtype>: Storage<E> + Storage<usize> {
    /// The index, within its group (row-major over the reduced axes), of each group's
    /// extremum. An empty group gives 0; callers reject empty reductions.
    fn forward(
        &self,
        kind: Extremum,
        input: View<'_, <Self as Storage<E>>::Vec>,
        axes: &[usize],
    ) -> Result<<Self as Storage<usize>>::Vec, Error>;
}

/// The maximum or minimum along one axis together with its position (PyTorch's
/// `torch.max(x, dim)` / `torch.min(x, dim)`), and the gradient that goes to that
/// position only.
///
/// Unlike [`ExtremumKernel`], whose gradient is split among ties, the backward pass
/// sends each output's gradient to the one element whose index the forward pass
/// returned: the first among ties, the first NaN when there is one.
pub trait ExtremumWithIndicesKernel<E: Dtype>: Storage<E> + Storage<usize> {
    /// The extremum of each group along `axis`, and its index along `axis`: the first
    /// among ties, the first NaN when there is one (the value is then NaN). Both are
    /// contiguous over the remaining axes. An empty axis gives `∓inf` and 0; callers
    /// reject empty reductions.
    #[allow(clippy::type_complexity)]
    fn forward(
        &self,
        kind: Extremum,
        input: View<'_, <Self as Storage<E>>::Vec>,
        axis: usize,
    ) -> Result<(<Self as Storage<E>>::Vec, <Self as Storage<usize>>::Vec), Error>;

    /// `grad_input[p with p[axis] = indices[p]] += grad_output[p]` for every position
    /// `p` of the output (the input's dims without `axis`, row-major), `grad_input`
    /// addressed through the input's layout. Elements that several outputs reach (a
    /// broadcast input) accumulate.
    ///
    /// Errors: `Error::InvalidArgument` (see
    /// [`index_out_of_bounds`](crate::ops::index::index_out_of_bounds)) when an index is
    /// not below the size of `axis`, checked before anything is written.
    fn backward(
        &self,
        grad_input: ViewMut<'_, <Self as Storage<E>>::Vec>,
        axis: usize,
        indices: &<Self as Storage<usize>>::Vec,
        grad_output: &<Self as Storage<E>>::Vec,
    ) -> Result<(), Error>;
}

/// Which spread statistic a [`VarianceKernel`] computes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Spread {
    /// `Σ (x − mean)² / max(N − correction, 0)`.
    Variance,
    /// The square root of the variance.
    StdDev,
}

/// Variance and standard deviation over axes, with a correction to the divisor
/// (`N − correction`; 1 is Bessel's correction and PyTorch's default).
pub trait VarianceKernel<E: Dtype>: Storage<E> {
    /// The variance (or standard deviation) of each group, computed in two passes (the
    /// mean, then the squared deviations from it).
    fn forward(
        &self,
        spread: Spread,
        correction: E,
        input: View<'_, Self::Vec>,
        axes: &[usize],
    ) -> Result<Self::Vec, Error>;

    /// `grad_input[i] += grad_output[o] · 2 (x_i − mean_o) / (N − correction)`, and for
    /// the standard deviation (`std` is `Some(output)`) divided by `2 · std_o`, with 0
    /// where `std_o` is 0, as in PyTorch. The mean is recomputed from `input`.
    /// `grad_input` is addressed through `input.layout`.
    fn backward(
        &self,
        correction: E,
        input: View<'_, Self::Vec>,
        axes: &[usize],
        std: Option<&Self::Vec>,
        grad_input: &mut Self::Vec,
        grad_output: &Self::Vec,
    ) -> Result<(), Error>;
}

/// `ln Σ exp(x)` over axes, shifted by each group's maximum so that no exponential
/// overflows.
pub trait LogSumExpKernel<E: Dtype>: Storage<E> {
    /// `m + ln Σ exp(x − m)` per group, `m` the group's maximum (0 when that is
    /// infinite, so that all `-inf` gives `-inf` and any `+inf` gives `+inf`).
    fn forward(&self, input: View<'_, Self::Vec>, axes: &[usize]) -> Result<Self::Vec, Error>;

    /// `grad_input[i] += grad_output[o] · exp(x_i − output[o])` (the softmax of the
    /// group), `grad_input` addressed through `input.layout`.
    fn backward(
        &self,
        input: View<'_, Self::Vec>,
        axes: &[usize],
        output: &Self::Vec,
        grad_input: &mut Self::Vec,
        grad_output: &Self::Vec,
    ) -> Result<(), Error>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extremum_keeps_the_first_of_ties_and_propagates_nan() {
        assert!(Extremum::Max.replaces(2.0f32, 1.0));
        assert!(!Extremum::Max.replaces(1.0f32, 1.0));
        assert!(Extremum::Min.replaces(0.0f64, 1.0));
        assert!(Extremum::Max.replaces(f64::NAN, 1.0));
        assert!(Extremum::Min.replaces(f64::NAN, 1.0));
        assert!(!Extremum::Max.replaces(f64::INFINITY, f64::NAN));
        assert!(!Extremum::Max.replaces(f64::NAN, f64::NAN));
        assert_eq!(Extremum::Min.name(), "min");
    }
}
