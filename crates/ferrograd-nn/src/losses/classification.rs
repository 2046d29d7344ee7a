//! Losses over a class axis: cross-entropy of logits against class indices or against
//! class probabilities, and the negative log-likelihood of log-probabilities.

use super::fused::{Local, OrPanic, Spread, format_dims, host_values, invalid, record, same_dims};
use super::{ClassShape, Reduction};
use ferrograd_autodiff::{MergeTapes, MergedTape, Tape, Tensor};
use ferrograd_device::{Dtype, Error, Storage};
use ferrograd_shapes::{Dim, Rank0, Shape};

/// Options of [`cross_entropy`] for class-index targets; `Default` is PyTorch's.
#[derive(Clone, Debug)]
pub struct CrossEntropyOptions<C: Dim, E: Dtype, D: Storage<E>> {
    /// A weight per class (PyTorch's `weight`): each sample's loss is multiplied by
    /// the weight of its target class, and the mean divides by the sum of the weights
    /// of the non-ignored targets. `None`: every class weighs 1.
    pub weight: Option<Tensor<(C,), E, D>>,
    /// Targets equal to this index add nothing to the loss, the gradient or the mean's
    /// count. PyTorch's default `-100` cannot be a `usize` target, so its default here
    /// is `None`: no target is ignored. The index may lie outside `0..classes`.
    pub ignore_index: Option<usize>,
    /// In `[0, 1]`: the target becomes `(1 − label_smoothing)·one_hot + label_smoothing/classes`
    /// (PyTorch's `label_smoothing`, default 0).
    pub label_smoothing: E,
}

impl<C: Dim, E: Dtype, D: Storage<E>> Default for CrossEntropyOptions<C, E, D> {
    fn default() -> Self {
        Self {
            weight: None,
            ignore_index: None,
            label_smoothing: E::ZERO,
        }
    }
}

/// Options of [`cross_entropy_with_probabilities`]; `Default` is PyTorch's.
#[derive(Clone, Debug)]
pub struct ProbabilityCrossEntropyOptions<C: Dim, E: Dtype, D: Storage<E>> {
    /// A weight per class, multiplying each class's term (PyTorch's `weight`); the
    /// mean still divides by the number of samples.
    pub weight: Option<Tensor<(C,), E, D>>,
    /// In `[0, 1]`: the target becomes `(1 − label_smoothing)·target + label_smoothing/classes`.
    pub label_smoothing: E,
}

impl<C: Dim, E: Dtype, D: Storage<E>> Default for ProbabilityCrossEntropyOptions<C, E, D> {
    fn default() -> Self {
        Self {
            weight: None,
            label_smoothing: E::ZERO,
        }
    }
}

/// Options of [`nll_loss`]; `Default` is PyTorch's.
#[derive(Clone, Debug)]
pub struct NllLossOptions<C: Dim, E: Dtype, D: Storage<E>> {
    /// A weight per class, as for [`CrossEntropyOptions::weight`].
    pub weight: Option<Tensor<(C,), E, D>>,
    /// Targets equal to this index are ignored, as for [`CrossEntropyOptions::ignore_index`].
    pub ignore_index: Option<usize>,
}

impl<C: Dim, E: Dtype, D: Storage<E>> Default for NllLossOptions<C, E, D> {
    fn default() -> Self {
        Self {
            weight: None,
            ignore_index: None,
        }
    }
}

/// The sizes of a class-axis tensor seen as `(outer, classes, inner)`.
#[derive(Clone, Copy)]
struct Layout3 {
    outer: usize,
    classes: usize,
    inner: usize,
}

impl Layout3 {
    fn of<S: ClassShape>(shape: &S) -> Self {
        let dims = shape.concrete();
        let dims = dims.as_ref();
        let classes = dims[S::CLASS_AXIS];
        Layout3 {
            outer: dims[..S::CLASS_AXIS].iter().product(),
            classes,
            inner: dims[S::CLASS_AXIS + 1..].iter().product(),
        }
    }

    /// The flat index of class `c` of sample `(n, k)`.
    fn at(&self, n: usize, c: usize, k: usize) -> usize {
        (n * self.classes + c) * self.inner + k
    }
}

/// The dims of `S` without its class axis.
fn without_class_axis<S: ClassShape>(shape: &S) -> Vec<usize> {
    let dims = shape.concrete();
    let mut kept = dims.as_ref().to_vec();
    kept.remove(S::CLASS_AXIS);
    kept
}

/// `S::Targets` built from `S`'s dims without the class axis.
fn targets_shape<S: ClassShape>(shape: &S) -> Result<S::Targets, Error> {
    let kept = without_class_axis(shape);
    let mut concrete = <S::Targets as Shape>::Concrete::default();
    concrete.as_mut().copy_from_slice(&kept);
    // `ClassShape` ties every Const dim of the targets to the input's, so this holds.
    <S::Targets as Shape>::from_concrete(&concrete)
        .ok_or_else(|| invalid("cross_entropy", format!("no target shape for {}", format_dims(&kept))))
}

/// The class weights on the host (1 each without weights), checked against `classes`.
fn class_weights<C: Dim, E: Dtype, D: Storage<E>>(
    op: &'static str,
    weight: &Option<Tensor<(C,), E, D>>,
    classes: usize,
) -> Result<Vec<f64>, Error> {
    match weight {
        None => Ok(vec![1.0; classes]),
        Some(weight) => {
            same_dims(op, ("weight", weight.dims().as_ref()), ("classes", &[classes]))?;
            host_values(weight)
        }
    }
}

fn check_smoothing<E: Dtype>(op: &'static str, label_smoothing: E) -> Result<f64, Error> {
    let smoothing = label_smoothing.to_f64();
    if !(0.0..=1.0).contains(&smoothing) {
        return Err(invalid(
            op,
            format!("label_smoothing must be in [0, 1], got {smoothing}"),
        ));
    }
    Ok(smoothing)
}

/// Reads class-index targets, checks their shape against the input's and every
/// non-ignored index against the number of classes; `None` marks an ignored target.
fn class_targets<S: ClassShape, E: Dtype, D: Storage<E> + Storage<usize>, T>(
    op: &'static str,
    input: &Tensor<S, E, D, T>,
    targets: &Tensor<S::Targets, usize, D>,
    ignore_index: Option<usize>,
) -> Result<Vec<Option<usize>>, Error> {
    let expected = without_class_axis(input.shape());
    if targets.dims().as_ref() != expected.as_slice() {
        return Err(Error::ShapeMismatch {
            op,
            message: format!(
                "input {} needs targets of shape {} (the input's without its class axis {}), got {}",
                format_dims(input.dims().as_ref()),
                format_dims(&expected),
                S::CLASS_AXIS,
                format_dims(targets.dims().as_ref())
            ),
        });
    }
    let classes = input.dims().as_ref()[S::CLASS_AXIS];
    targets
        .try_as_vec()?
        .into_iter()
        .map(|target| {
            if Some(target) == ignore_index {
                Ok(None)
            } else if target >= classes {
                Err(invalid(
                    op,
                    format!("target {target} is out of bounds for {classes} classes"),
                ))
            } else {
                Ok(Some(target))
            }
        })
        .collect()
}

/// `ln softmax` along the class axis, computed as `x − max − ln Σ exp(x − max)` so that
/// it is finite for any finite logits.
fn log_softmax(x: &[f64], shape: Layout3) -> Vec<f64> {
    let mut out = vec![0.0; x.len()];
    for n in 0..shape.outer {
        for k in 0..shape.inner {
            let index = |c| shape.at(n, c, k);
            let max = (0..shape.classes)
                .map(|c| x[index(c)])
                .fold(f64::NEG_INFINITY, f64::max);
            // All -inf (or no classes): shift by 0 so the result is -inf, not NaN.
            let shift = if max.is_finite() { max } else { 0.0 };
            let total: f64 = (0..shape.classes).map(|c| (x[index(c)] - shift).exp()).sum();
            let log_total = total.ln();
            for c in 0..shape.classes {
                out[index(c)] = x[index(c)] - shift - log_total;
            }
        }
    }
    out
}

/// Per sample, the loss `−Σ_c a_c·ln p_c` given the coefficients `a` (laid out like
/// the input) and the log-probabilities; and, when `gradient`, its derivative with
/// respect to the logits, `p_c·Σ_k a_k − a_c` (or, for log-probability inputs,
/// `−a_c`).
struct ClassLoss {
    per_sample: Vec<f64>,
    derivative: Vec<f64>,
}

#[derive(Clone, Copy, PartialEq)]
enum InputKind {
    Logits,
    LogProbabilities,
}

fn class_loss(log_p: &[f64], coefficients: &[f64], shape: Layout3, kind: InputKind, gradient: bool) -> ClassLoss {
    let mut per_sample = vec![0.0; shape.outer * shape.inner];
    let mut derivative = if gradient { vec![0.0; log_p.len()] } else { Vec::new() };
    for n in 0..shape.outer {
        for k in 0..shape.inner {
            let mut loss = 0.0;
            let mut total = 0.0;
            for c in 0..shape.classes {
                let i = shape.at(n, c, k);
                let a = coefficients[i];
                // A zero coefficient adds nothing, even where ln p is -inf (0·-inf
                // would be NaN).
                if a != 0.0 {
                    loss -= a * log_p[i];
                }
                total += a;
            }
            per_sample[n * shape.inner + k] = loss;
            if gradient {
                for c in 0..shape.classes {
                    let i = shape.at(n, c, k);
                    derivative[i] = match kind {
                        InputKind::Logits => log_p[i].exp() * total - coefficients[i],
                        InputKind::LogProbabilities => -coefficients[i],
                    };
                }
            }
        }
    }
    ClassLoss { per_sample, derivative }
}

/// What a reduced or unreduced class loss turns its per-sample losses into.
enum ClassOutput {
    Unreduced,
    Reduced(Reduction),
}

/// Cross-entropy or NLL against class indices: the shared body.
#[allow(clippy::too_many_arguments)]
fn index_loss<S: ClassShape, Out: Shape, E: Dtype, D: Storage<E> + Storage<usize>, T: Tape<E, D>>(
    op: &'static str,
    kind: InputKind,
    input: Tensor<S, E, D, T>,
    targets: &Tensor<S::Targets, usize, D>,
    weight: &Option<Tensor<(S::Classes,), E, D>>,
    ignore_index: Option<usize>,
    label_smoothing: E,
    output: ClassOutput,
    out_shape: Out,
) -> Result<Tensor<Out, E, D, T>, Error> {
    let smoothing = check_smoothing(op, label_smoothing)?;
    let shape = Layout3::of(input.shape());
    let weights = class_weights(op, weight, shape.classes)?;
    let targets = class_targets(op, &input, targets, ignore_index)?;
    let x = host_values(&input)?;
    let log_p = match kind {
        InputKind::Logits => log_softmax(&x, shape),
        InputKind::LogProbabilities => x,
    };
    // The coefficients a_c of −Σ_c a_c·ln p_c: (1 − ε)·w_y at the target class plus
    // ε/C·w_c everywhere (PyTorch's smoothing term is weighted by every class's weight).
    let mut coefficients = vec![0.0; log_p.len()];
    let mut weight_total = 0.0;
    for n in 0..shape.outer {
        for k in 0..shape.inner {
            let Some(target) = targets[n * shape.inner + k] else {
                continue;
            };
            weight_total += weights[target];
            if smoothing > 0.0 {
                for (c, &w) in weights.iter().enumerate() {
                    coefficients[shape.at(n, c, k)] = smoothing / shape.classes as f64 * w;
                }
            }
            coefficients[shape.at(n, target, k)] += (1.0 - smoothing) * weights[target];
        }
    }
    let tracing = T::TRACING;
    let loss = class_loss(&log_p, &coefficients, shape, kind, tracing);
    let (values, spread) = match output {
        ClassOutput::Unreduced => (
            loss.per_sample,
            Spread::Rows {
                classes: shape.classes,
                inner: shape.inner,
            },
        ),
        ClassOutput::Reduced(reduction) => {
            // PyTorch's mean divides by the weights of the targets it counted (the
            // number of non-ignored targets without weights). When that is 0 the loss
            // is 0/0 = NaN and, as in PyTorch when every target is ignored, the
            // gradient 0.
            let (scale, gradient_scale) = match reduction {
                Reduction::Mean if weight_total == 0.0 => (f64::NAN, 0.0),
                Reduction::Mean => (1.0 / weight_total, 1.0 / weight_total),
                Reduction::Sum => (1.0, 1.0),
            };
            let total = loss.per_sample.iter().sum::<f64>();
            (vec![total * scale], Spread::Scalar(gradient_scale))
        }
    };
    let locals = if tracing {
        vec![Local {
            input: input.op_input(),
            layout: *input.layout(),
            derivative: loss.derivative,
        }]
    } else {
        Vec::new()
    };
    let device = input.device().clone();
    let (_, tape) = input.split_tape();
    record(values, out_shape, &device, tape, locals, spread)
}

/// Cross-entropy against class probabilities: the shared body.
fn probability_loss<S: ClassShape, Out: Shape, E: Dtype, D: Storage<E>, T, R>(
    input: Tensor<S, E, D, T>,
    target: Tensor<S, E, D, R>,
    options: &ProbabilityCrossEntropyOptions<S::Classes, E, D>,
    output: ClassOutput,
    out_shape: Out,
) -> Result<Tensor<Out, E, D, MergedTape<T, R>>, Error>
where
    T: Tape<E, D> + MergeTapes<R>,
    R: Tape<E, D>,
    MergedTape<T, R>: Tape<E, D>,
{
    const OP: &str = "cross_entropy_with_probabilities";
    same_dims(OP, ("input", input.dims().as_ref()), ("target", target.dims().as_ref()))?;
    let smoothing = check_smoothing(OP, options.label_smoothing)?;
    let shape = Layout3::of(input.shape());
    let weights = class_weights(OP, &options.weight, shape.classes)?;
    let log_p = log_softmax(&host_values(&input)?, shape);
    let probabilities = host_values(&target)?;
    let class_of = |i: usize| (i / shape.inner) % shape.classes;
    let coefficients: Vec<f64> = probabilities
        .iter()
        .enumerate()
        .map(|(i, &t)| (t * (1.0 - smoothing) + smoothing / shape.classes as f64) * weights[class_of(i)])
        .collect();
    let tracing = <MergedTape<T, R> as Tape<E, D>>::TRACING;
    let loss = class_loss(&log_p, &coefficients, shape, InputKind::Logits, tracing);
    let (values, spread) = match output {
        ClassOutput::Unreduced => (
            loss.per_sample,
            Spread::Rows {
                classes: shape.classes,
                inner: shape.inner,
            },
        ),
        ClassOutput::Reduced(reduction) => {
            // PyTorch's mean divides by the number of samples, weights or not.
            let scale = match reduction {
                Reduction::Mean => 1.0 / (shape.outer * shape.inner) as f64,
                Reduction::Sum => 1.0,
            };
            (vec![loss.per_sample.iter().sum::<f64>() * scale], Spread::Scalar(scale))
        }
    };
    let locals = if tracing {
        // ∂/∂t_c of −Σ_c (t_c·(1 − ε) + ε/C)·w_c·ln p_c.
        let target_derivative = log_p
            .iter()
            .enumerate()
            .map(|(i, &lp)| -(1.0 - smoothing) * weights[class_of(i)] * lp)
            .collect();
        vec![
            Local {
                input: input.op_input(),
                layout: *input.layout(),
                derivative: loss.derivative,
            },
            Local {
                input: target.op_input(),
                layout: *target.layout(),
                derivative: target_derivative,
            },
        ]
    } else {
        Vec::new()
    };
    let device = input.device().clone();
    let (_, input_tape) = input.split_tape();
    let (_, target_tape) = target.split_tape();
    record(
        values,
        out_shape,
        &device,
        input_tape.merge_tapes(target_tape),
        locals,
        spread,
    )
}

/// Cross-entropy of logits against class indices (PyTorch's `F.cross_entropy(logits,
/// targets)` with integer targets): `log_softmax` over the class axis, then the
/// negative log-probability of each target class, reduced.
///
/// The class axis is axis 1 of `(batch, classes)`, `(batch, classes, d)` and
/// `(batch, classes, h, w)` logits, and axis 0 of unbatched `(classes,)` logits; the
/// targets have the logits' shape without it (see [`ClassShape`]), and a mismatch of
/// const dims does not compile. With the options (see [`CrossEntropyOptions`]): class
/// weights, an ignored index, and label smoothing, all as in PyTorch, including its
/// mean over the weights of the counted targets.
///
/// It is one fused op, stable at any finite logits (±1e4 give exact, finite losses
/// and gradients), whose backward keeps one buffer the size of the logits.
///
/// ```
/// use ferrograd_autodiff::prelude::*;
/// use ferrograd_nn::losses::{CrossEntropyOptions, Reduction, cross_entropy};
/// let dev = ferrograd_cpu::Cpu::default();
/// let logits: Tensor<Rank2<2, 3>, f64, _> = dev.tensor([[2.0, 0.0, 0.0], [1e4, -1e4, 0.0]]);
/// let labels = dev.tensor([0usize, 1]);
///
/// let loss = cross_entropy(logits.leaky_trace(), &labels, Reduction::Mean, CrossEntropyOptions::default());
/// let first = -(2.0f64.exp() / (2.0f64.exp() + 2.0)).ln(); // −ln softmax(2, 0, 0)₀
/// let second = 2e4; // −ln softmax(1e4, −1e4, 0)₁, finite
/// assert!((loss.array() - (first + second) / 2.0).abs() < 1e-9);
///
/// // The gradient is (softmax − one_hot) / batch.
/// let grad = loss.backward().get(&logits).array();
/// assert_eq!(grad[1], [0.5, -0.5, 0.0]);
///
/// // A label past the classes is an error that names it.
/// let bad = dev.tensor([0usize, 3]);
/// let err = ferrograd_nn::losses::try_cross_entropy(logits, &bad, Reduction::Mean, CrossEntropyOptions::default());
/// assert_eq!(err.unwrap_err().to_string(), "cross_entropy: target 3 is out of bounds for 3 classes");
/// ```
///
/// # Panics
/// As [`try_cross_entropy`] fails.
#[track_caller]
pub fn cross_entropy<S: ClassShape, E: Dtype, D: Storage<E> + Storage<usize>, T: Tape<E, D>>(
    logits: Tensor<S, E, D, T>,
    targets: &Tensor<S::Targets, usize, D>,
    reduction: Reduction,
    options: CrossEntropyOptions<S::Classes, E, D>,
) -> Tensor<Rank0, E, D, T> {
    try_cross_entropy(logits, targets, reduction, options).or_panic()
}

/// [`cross_entropy`], returning `Error::ShapeMismatch` when run-time dims of the
/// targets or the weights disagree with the logits' (naming both shapes), and
/// `Error::InvalidArgument` for a target index not below the number of classes (and
/// not ignored) or a label smoothing outside `[0, 1]`.
pub fn try_cross_entropy<S: ClassShape, E: Dtype, D: Storage<E> + Storage<usize>, T: Tape<E, D>>(
    logits: Tensor<S, E, D, T>,
    targets: &Tensor<S::Targets, usize, D>,
    reduction: Reduction,
    options: CrossEntropyOptions<S::Classes, E, D>,
) -> Result<Tensor<Rank0, E, D, T>, Error> {
    index_loss(
        "cross_entropy",
        InputKind::Logits,
        logits,
        targets,
        &options.weight,
        options.ignore_index,
        options.label_smoothing,
        ClassOutput::Reduced(reduction),
        (),
    )
}

/// [`cross_entropy`] without a reduction (PyTorch's `reduction='none'`): one loss per
/// sample, in the targets' shape; ignored targets give 0.
///
/// # Panics
/// As [`try_cross_entropy_unreduced`] fails.
#[track_caller]
pub fn cross_entropy_unreduced<S: ClassShape, E: Dtype, D: Storage<E> + Storage<usize>, T: Tape<E, D>>(
    logits: Tensor<S, E, D, T>,
    targets: &Tensor<S::Targets, usize, D>,
    options: CrossEntropyOptions<S::Classes, E, D>,
) -> Tensor<S::Targets, E, D, T> {
    try_cross_entropy_unreduced(logits, targets, options).or_panic()
}

/// [`cross_entropy_unreduced`], returning the errors of [`try_cross_entropy`].
pub fn try_cross_entropy_unreduced<S: ClassShape, E: Dtype, D: Storage<E> + Storage<usize>, T: Tape<E, D>>(
    logits: Tensor<S, E, D, T>,
    targets: &Tensor<S::Targets, usize, D>,
    options: CrossEntropyOptions<S::Classes, E, D>,
) -> Result<Tensor<S::Targets, E, D, T>, Error> {
    let out_shape = *targets.shape();
    index_loss(
        "cross_entropy",
        InputKind::Logits,
        logits,
        targets,
        &options.weight,
        options.ignore_index,
        options.label_smoothing,
        ClassOutput::Unreduced,
        out_shape,
    )
}

/// Cross-entropy of logits against class probabilities (PyTorch's
/// `F.cross_entropy(logits, target)` with a float target of the logits' shape):
/// `−Σ_c w_c·t_c·log_softmax(logits)_c` per sample, reduced; the mean divides by the
/// number of samples. Both operands may be traced (soft targets from another model).
/// Shapes as for [`cross_entropy`], the target having the logits' shape.
///
/// ```
/// use ferrograd_autodiff::prelude::*;
/// use ferrograd_nn::losses::{ProbabilityCrossEntropyOptions, Reduction, cross_entropy_with_probabilities};
/// let dev = ferrograd_cpu::Cpu::default();
/// let logits: Tensor<Rank2<1, 2>, f64, _> = dev.tensor([[0.0, 0.0]]);
/// let target = dev.tensor([[0.25, 0.75]]);
/// let loss = cross_entropy_with_probabilities(logits, target, Reduction::Mean, ProbabilityCrossEntropyOptions::default());
/// assert!((loss.array() - 2.0f64.ln()).abs() < 1e-15);
/// ```
///
/// # Panics
/// As [`try_cross_entropy_with_probabilities`] fails.
#[track_caller]
pub fn cross_entropy_with_probabilities<S: ClassShape, E: Dtype, D: Storage<E>, T, R>(
    logits: Tensor<S, E, D, T>,
    target: Tensor<S, E, D, R>,
    reduction: Reduction,
    options: ProbabilityCrossEntropyOptions<S::Classes, E, D>,
) -> Tensor<Rank0, E, D, MergedTape<T, R>>
where
    T: Tape<E, D> + MergeTapes<R>,
    R: Tape<E, D>,
    MergedTape<T, R>: Tape<E, D>,
{
    try_cross_entropy_with_probabilities(logits, target, reduction, options).or_panic()
}

/// [`cross_entropy_with_probabilities`], returning `Error::ShapeMismatch` when run-time
/// dims of the target or the weights disagree with the logits', and
/// `Error::InvalidArgument` for a label smoothing outside `[0, 1]`.
pub fn try_cross_entropy_with_probabilities<S: ClassShape, E: Dtype, D: Storage<E>, T, R>(
    logits: Tensor<S, E, D, T>,
    target: Tensor<S, E, D, R>,
    reduction: Reduction,
    options: ProbabilityCrossEntropyOptions<S::Classes, E, D>,
) -> Result<Tensor<Rank0, E, D, MergedTape<T, R>>, Error>
where
    T: Tape<E, D> + MergeTapes<R>,
    R: Tape<E, D>,
    MergedTape<T, R>: Tape<E, D>,
{
    probability_loss(logits, target, &options, ClassOutput::Reduced(reduction), ())
}

/// [`cross_entropy_with_probabilities`] without a reduction: one loss per sample, in
/// the logits' shape without the class axis.
///
/// # Panics
/// As [`try_cross_entropy_with_probabilities_unreduced`] fails.
#[track_caller]
pub fn cross_entropy_with_probabilities_unreduced<S: ClassShape, E: Dtype, D: Storage<E>, T, R>(
    logits: Tensor<S, E, D, T>,
    target: Tensor<S, E, D, R>,
    options: ProbabilityCrossEntropyOptions<S::Classes, E, D>,
) -> Tensor<S::Targets, E, D, MergedTape<T, R>>
where
    T: Tape<E, D> + MergeTapes<R>,
    R: Tape<E, D>,
    MergedTape<T, R>: Tape<E, D>,
{
    try_cross_entropy_with_probabilities_unreduced(logits, target, options).or_panic()
}

/// [`cross_entropy_with_probabilities_unreduced`], returning the errors of
/// [`try_cross_entropy_with_probabilities`].
#[allow(clippy::type_complexity)] // the result type is the loss's shape and merged tape
pub fn try_cross_entropy_with_probabilities_unreduced<S: ClassShape, E: Dtype, D: Storage<E>, T, R>(
    logits: Tensor<S, E, D, T>,
    target: Tensor<S, E, D, R>,
    options: ProbabilityCrossEntropyOptions<S::Classes, E, D>,
) -> Result<Tensor<S::Targets, E, D, MergedTape<T, R>>, Error>
where
    T: Tape<E, D> + MergeTapes<R>,
    R: Tape<E, D>,
    MergedTape<T, R>: Tape<E, D>,
{
    let out_shape = targets_shape(logits.shape())?;
    probability_loss(logits, target, &options, ClassOutput::Unreduced, out_shape)
}

/// The negative log-likelihood of log-probabilities against class indices (PyTorch's
/// `F.nll_loss`): `−w_y·input_y` per sample, reduced; the mean divides by the weights
/// of the non-ignored targets. Shapes as for [`cross_entropy`]; `cross_entropy(x)` is
/// `nll_loss(x.log_softmax())`, in one op.
///
/// ```
/// use ferrograd_autodiff::prelude::*;
/// use ferrograd_nn::losses::{NllLossOptions, Reduction, nll_loss};
/// let dev = ferrograd_cpu::Cpu::default();
/// let log_p: Tensor<Rank2<2, 2>, f32, _> = dev.tensor([[-0.5, -1.0], [-2.0, -0.25]]);
/// let options = NllLossOptions { ignore_index: Some(1), ..Default::default() };
/// // The second sample's target is ignored: the mean is over the first alone.
/// assert_eq!(nll_loss(log_p, &dev.tensor([0usize, 1]), Reduction::Mean, options).array(), 0.5);
/// ```
///
/// # Panics
/// As [`try_nll_loss`] fails.
#[track_caller]
pub fn nll_loss<S: ClassShape, E: Dtype, D: Storage<E> + Storage<usize>, T: Tape<E, D>>(
    log_probabilities: Tensor<S, E, D, T>,
    targets: &Tensor<S::Targets, usize, D>,
    reduction: Reduction,
    options: NllLossOptions<S::Classes, E, D>,
) -> Tensor<Rank0, E, D, T> {
    try_nll_loss(log_probabilities, targets, reduction, options).or_panic()
}

/// [`nll_loss`], returning the errors of [`try_cross_entropy`].
pub fn try_nll_loss<S: ClassShape, E: Dtype, D: Storage<E> + Storage<usize>, T: Tape<E, D>>(
    log_probabilities: Tensor<S, E, D, T>,
    targets: &Tensor<S::Targets, usize, D>,
    reduction: Reduction,
    options: NllLossOptions<S::Classes, E, D>,
) -> Result<Tensor<Rank0, E, D, T>, Error> {
    index_loss(
        "nll_loss",
        InputKind::LogProbabilities,
        log_probabilities,
        targets,
        &options.weight,
        options.ignore_index,
        E::ZERO,
        ClassOutput::Reduced(reduction),
        (),
    )
}

/// [`nll_loss`] without a reduction: one loss per sample, in the targets' shape.
///
/// # Panics
/// As [`try_nll_loss_unreduced`] fails.
#[track_caller]
pub fn nll_loss_unreduced<S: ClassShape, E: Dtype, D: Storage<E> + Storage<usize>, T: Tape<E, D>>(
    log_probabilities: Tensor<S, E, D, T>,
    targets: &Tensor<S::Targets, usize, D>,
    options: NllLossOptions<S::Classes, E, D>,
) -> Tensor<S::Targets, E, D, T> {
    try_nll_loss_unreduced(log_probabilities, targets, options).or_panic()
}

/// [`nll_loss_unreduced`], returning the errors of [`try_cross_entropy`].
pub fn try_nll_loss_unreduced<S: ClassShape, E: Dtype, D: Storage<E> + Storage<usize>, T: Tape<E, D>>(
    log_probabilities: Tensor<S, E, D, T>,
    targets: &Tensor<S::Targets, usize, D>,
    options: NllLossOptions<S::Classes, E, D>,
) -> Result<Tensor<S::Targets, E, D, T>, Error> {
    let out_shape = *targets.shape();
    index_loss(
        "nll_loss",
        InputKind::LogProbabilities,
        log_probabilities,
        targets,
        &options.weight,
        options.ignore_index,
        E::ZERO,
        ClassOutput::Unreduced,
        out_shape,
    )
}
