//! The Kullback–Leibler divergence.

use super::fused::OrPanic;
use super::regression::{Output, Pointwise, pointwise};
use ferrograd_autodiff::{MergeTapes, MergedTape, Tape, Tensor};
use ferrograd_device::{Dtype, Error, Storage};
use ferrograd_shapes::{Rank0, Shape};

/// How [`kl_div`] reduces: PyTorch's `reduction` of `F.kl_div`, whose `'batchmean'`
/// only it has. `Default` is `Mean`, PyTorch's default, which averages over every
/// element; `BatchMean` is the divergence itself, averaged over the batch.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum KlDivReduction {
    /// The sum over all elements divided by their number.
    #[default]
    Mean,
    /// The sum over all elements.
    Sum,
    /// The sum over all elements divided by the size of the first axis (by 1 for a
    /// scalar): the mean divergence per sample.
    BatchMean,
}

/// One element of `target·(ln target − input)` and its derivatives; with `log_target`
/// the target is given as its logarithm.
fn element(x: f64, t: f64, log_target: bool) -> Pointwise {
    if log_target {
        let p = t.exp();
        Pointwise {
            value: p * (t - x),
            d_input: -p,
            d_target: p * (t - x + 1.0),
        }
    } else {
        // PyTorch's xlogy(t, t) − t·x: 0 where the target is 0, whatever ln 0 is.
        let t_ln_t = if t == 0.0 { 0.0 } else { t * t.ln() };
        Pointwise {
            value: t_ln_t - t * x,
            d_input: -t,
            d_target: t.ln() + 1.0 - x,
        }
    }
}

/// The Kullback–Leibler divergence of `target` from `input` (PyTorch's
/// `F.kl_div(input, target, reduction=..., log_target=...)`): `input` holds
/// log-probabilities (as from `log_softmax`), `target` probabilities, or
/// log-probabilities with `log_target`; per element `target·(ln target − input)`
/// (0 where the target is 0), reduced. Both operands may be traced. Where a
/// probability target is exactly 0, its own gradient is `−∞` here (the limit of
/// `ln t + 1 − x`) and NaN in PyTorch; pass such targets untraced.
///
/// ```
/// use ferrograd_autodiff::prelude::*;
/// use ferrograd_nn::losses::{KlDivReduction, kl_div};
/// let dev = ferrograd_cpu::Cpu::default();
/// let input: Tensor<Rank2<1, 2>, f64, _> = dev.tensor([[0.5f64.ln(), 0.5f64.ln()]]);
/// let target = dev.tensor([[0.25, 0.75]]);
/// let kl = kl_div(input, target, KlDivReduction::BatchMean, false).array();
/// assert!((kl - (0.25 * 0.5f64.ln() + 0.75 * 1.5f64.ln())).abs() < 1e-15);
/// ```
///
/// # Panics
/// As [`try_kl_div`] fails.
#[track_caller]
pub fn kl_div<S: Shape, E: Dtype, D: Storage<E>, T, R>(
    input: Tensor<S, E, D, T>,
    target: Tensor<S, E, D, R>,
    reduction: KlDivReduction,
    log_target: bool,
) -> Tensor<Rank0, E, D, MergedTape<T, R>>
where
    T: Tape<E, D> + MergeTapes<R>,
    R: Tape<E, D>,
    MergedTape<T, R>: Tape<E, D>,
{
    try_kl_div(input, target, reduction, log_target).or_panic()
}

/// [`kl_div`], returning `Error::ShapeMismatch` (naming both shapes) when the run-time
/// dims of `input` and `target` differ.
pub fn try_kl_div<S: Shape, E: Dtype, D: Storage<E>, T, R>(
    input: Tensor<S, E, D, T>,
    target: Tensor<S, E, D, R>,
    reduction: KlDivReduction,
    log_target: bool,
) -> Result<Tensor<Rank0, E, D, MergedTape<T, R>>, Error>
where
    T: Tape<E, D> + MergeTapes<R>,
    R: Tape<E, D>,
    MergedTape<T, R>: Tape<E, D>,
{
    let dims = input.dims();
    let scale = match reduction {
        KlDivReduction::Mean => 1.0 / input.num_elements() as f64,
        KlDivReduction::Sum => 1.0,
        KlDivReduction::BatchMean => 1.0 / dims.as_ref().first().copied().unwrap_or(1) as f64,
    };
    pointwise(
        "kl_div",
        input,
        target,
        Output::Scaled(scale),
        |_| (),
        move |_, x, t| element(x, t, log_target),
    )
}

/// [`kl_div`] without a reduction: one term per element, in the input's shape.
///
/// # Panics
/// As [`try_kl_div_unreduced`] fails.
#[track_caller]
pub fn kl_div_unreduced<S: Shape, E: Dtype, D: Storage<E>, T, R>(
    input: Tensor<S, E, D, T>,
    target: Tensor<S, E, D, R>,
    log_target: bool,
) -> Tensor<S, E, D, MergedTape<T, R>>
where
    T: Tape<E, D> + MergeTapes<R>,
    R: Tape<E, D>,
    MergedTape<T, R>: Tape<E, D>,
{
    try_kl_div_unreduced(input, target, log_target).or_panic()
}

/// [`kl_div_unreduced`], returning the errors of [`try_kl_div`].
pub fn try_kl_div_unreduced<S: Shape, E: Dtype, D: Storage<E>, T, R>(
    input: Tensor<S, E, D, T>,
    target: Tensor<S, E, D, R>,
    log_target: bool,
) -> Result<Tensor<S, E, D, MergedTape<T, R>>, Error>
where
    T: Tape<E, D> + MergeTapes<R>,
    R: Tape<E, D>,
    MergedTape<T, R>: Tape<E, D>,
{
    pointwise(
        "kl_div",
        input,
        target,
        Output::Unreduced,
        |shape| shape,
        move |_, x, t| element(x, t, log_target),
    )
}
