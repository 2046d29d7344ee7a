//! Binary cross-entropy of logits.

use super::fused::{OrPanic, host_values, same_dims};
use super::regression::{Output, Pointwise, pointwise, reduction_scale};
use super::{LastAxis, Reduction};
use ferrograd_autodiff::{MergeTapes, MergedTape, Tape, Tensor};
use ferrograd_device::{Dtype, Error, Storage};
use ferrograd_shapes::{Dim, Rank0};

/// Options of [`binary_cross_entropy_with_logits`]; `Default` is PyTorch's (neither).
#[derive(Clone, Debug)]
pub struct BinaryCrossEntropyOptions<S: LastAxis, E: Dtype, D: Storage<E>> {
    /// A weight per element, multiplying its loss (PyTorch's `weight`, here of the
    /// input's shape; broadcast a smaller one to it first). No gradient flows to it.
    pub weight: Option<Tensor<S, E, D>>,
    /// A weight of the positive term per class, along the last axis (PyTorch's
    /// `pos_weight`): `> 1` raises recall, `< 1` precision. No gradient flows to it.
    pub pos_weight: Option<Tensor<(S::Last,), E, D>>,
}

impl<S: LastAxis, E: Dtype, D: Storage<E>> Default for BinaryCrossEntropyOptions<S, E, D> {
    fn default() -> Self {
        Self {
            weight: None,
            pos_weight: None,
        }
    }
}

/// The loss of one element and its derivatives, in PyTorch's stable form:
/// `(1 − y)·x + (1 + (p − 1)·y)·softplus(−x)` with
/// `softplus(−x) = max(−x, 0) + ln(1 + e^(−|x|))`, which never overflows.
fn element(x: f64, y: f64, weight: f64, pos_weight: f64) -> Pointwise {
    let softplus_of_negative = (-x).max(0.0) + (-x.abs()).exp().ln_1p();
    let log_weight = 1.0 + (pos_weight - 1.0) * y;
    // σ(x) without overflow: e^x / (1 + e^x) for negative x.
    let sigmoid = if x >= 0.0 {
        1.0 / (1.0 + (-x).exp())
    } else {
        let e = x.exp();
        e / (1.0 + e)
    };
    Pointwise {
        value: weight * ((1.0 - y) * x + log_weight * softplus_of_negative),
        d_input: weight * (log_weight * sigmoid - pos_weight * y),
        d_target: weight * (-x + (pos_weight - 1.0) * softplus_of_negative),
    }
}

/// The options on the host: per-element weights and per-class positive weights.
struct HostOptions {
    weight: Option<Vec<f64>>,
    pos_weight: Option<Vec<f64>>,
}

/// Reads the options to the host, checking their run-time dims.
fn read_options<S: LastAxis, E: Dtype, D: Storage<E>>(
    shape: &S,
    options: &BinaryCrossEntropyOptions<S, E, D>,
) -> Result<HostOptions, Error> {
    const OP: &str = "binary_cross_entropy_with_logits";
    let dims = shape.concrete();
    let weight = match &options.weight {
        None => None,
        Some(weight) => {
            same_dims(OP, ("weight", weight.dims().as_ref()), ("input", dims.as_ref()))?;
            Some(host_values(weight)?)
        }
    };
    let pos_weight = match &options.pos_weight {
        None => None,
        Some(pos_weight) => {
            let last = S::last(shape).size();
            same_dims(
                OP,
                ("pos_weight", pos_weight.dims().as_ref()),
                ("the input's last axis", &[last]),
            )?;
            Some(host_values(pos_weight)?)
        }
    };
    Ok(HostOptions { weight, pos_weight })
}

macro_rules! bce_body {
    ($input:ident, $target:ident, $options:ident, $output:expr, $out_shape:expr) => {{
        let HostOptions { weight, pos_weight } = read_options($input.shape(), &$options)?;
        let last = <S as LastAxis>::last($input.shape()).size().max(1);
        pointwise(
            "binary_cross_entropy_with_logits",
            $input,
            $target,
            $output,
            $out_shape,
            move |i, x, y| {
                let w = weight.as_ref().map_or(1.0, |w| w[i]);
                let p = pos_weight.as_ref().map_or(1.0, |p| p[i % last]);
                element(x, y, w, p)
            },
        )
    }};
}

/// Binary cross-entropy of logits against targets in `[0, 1]` (PyTorch's
/// `F.binary_cross_entropy_with_logits`): `−w·[p·y·ln σ(x) + (1 − y)·ln(1 − σ(x))]`
/// per element, reduced, computed without ever forming `σ(x)`'s logarithm, so logits
/// of ±1e4 give exact, finite losses and gradients. Both the logits and the targets
/// may be traced.
///
/// ```
/// use ferrograd_autodiff::prelude::*;
/// use ferrograd_nn::losses::{BinaryCrossEntropyOptions, Reduction, binary_cross_entropy_with_logits};
/// let dev = ferrograd_cpu::Cpu::default();
/// let logits: Tensor<Rank2<1, 2>, f64, _> = dev.tensor([[1e4, 0.0]]);
/// let target = dev.tensor([[1.0, 1.0]]);
/// let options = BinaryCrossEntropyOptions { pos_weight: Some(dev.tensor([1.0, 3.0])), ..Default::default() };
/// let loss = binary_cross_entropy_with_logits(logits, target, Reduction::Sum, options);
/// assert!((loss.array() - 3.0 * 2.0f64.ln()).abs() < 1e-15); // 0 + 3·(−ln σ(0))
/// ```
///
/// # Panics
/// As [`try_binary_cross_entropy_with_logits`] fails.
#[track_caller]
pub fn binary_cross_entropy_with_logits<S: LastAxis, E: Dtype, D: Storage<E>, T, R>(
    logits: Tensor<S, E, D, T>,
    target: Tensor<S, E, D, R>,
    reduction: Reduction,
    options: BinaryCrossEntropyOptions<S, E, D>,
) -> Tensor<Rank0, E, D, MergedTape<T, R>>
where
    T: Tape<E, D> + MergeTapes<R>,
    R: Tape<E, D>,
    MergedTape<T, R>: Tape<E, D>,
{
    try_binary_cross_entropy_with_logits(logits, target, reduction, options).or_panic()
}

/// [`binary_cross_entropy_with_logits`], returning `Error::ShapeMismatch` (naming
/// both shapes) when run-time dims of the target, `weight` or `pos_weight` disagree
/// with the logits'.
pub fn try_binary_cross_entropy_with_logits<S: LastAxis, E: Dtype, D: Storage<E>, T, R>(
    logits: Tensor<S, E, D, T>,
    target: Tensor<S, E, D, R>,
    reduction: Reduction,
    options: BinaryCrossEntropyOptions<S, E, D>,
) -> Result<Tensor<Rank0, E, D, MergedTape<T, R>>, Error>
where
    T: Tape<E, D> + MergeTapes<R>,
    R: Tape<E, D>,
    MergedTape<T, R>: Tape<E, D>,
{
    let scale = reduction_scale(reduction, logits.num_elements());
    bce_body!(logits, target, options, Output::Scaled(scale), |_| ())
}

/// [`binary_cross_entropy_with_logits`] without a reduction: one loss per element, in
/// the logits' shape.
///
/// # Panics
/// As [`try_binary_cross_entropy_with_logits_unreduced`] fails.
#[track_caller]
pub fn binary_cross_entropy_with_logits_unreduced<S: LastAxis, E: Dtype, D: Storage<E>, T, R>(
    logits: Tensor<S, E, D, T>,
    target: Tensor<S, E, D, R>,
    options: BinaryCrossEntropyOptions<S, E, D>,
) -> Tensor<S, E, D, MergedTape<T, R>>
where
    T: Tape<E, D> + MergeTapes<R>,
    R: Tape<E, D>,
    MergedTape<T, R>: Tape<E, D>,
{
    try_binary_cross_entropy_with_logits_unreduced(logits, target, options).or_panic()
}

/// [`binary_cross_entropy_with_logits_unreduced`], returning the errors of
/// [`try_binary_cross_entropy_with_logits`].
pub fn try_binary_cross_entropy_with_logits_unreduced<S: LastAxis, E: Dtype, D: Storage<E>, T, R>(
    logits: Tensor<S, E, D, T>,
    target: Tensor<S, E, D, R>,
    options: BinaryCrossEntropyOptions<S, E, D>,
) -> Result<Tensor<S, E, D, MergedTape<T, R>>, Error>
where
    T: Tape<E, D> + MergeTapes<R>,
    R: Tape<E, D>,
    MergedTape<T, R>: Tape<E, D>,
{
    bce_body!(logits, target, options, Output::Unreduced, |shape| shape)
}
