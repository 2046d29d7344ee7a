//! The one way every loss becomes a differentiable op: the loss is computed on the
//! host in f64 (inputs read through their layouts, so views work), and its local
//! derivatives are kept for backward, which scales them by the upstream gradient and
//! adds them into the inputs' gradients.
//!
//! Why fused rather than composed from autodiff ops: each loss is one pass forward and
//! one backward (a composed cross-entropy with smoothing, weights and `ignore_index`
//! is a dozen ops and as many buffers), the stable formulas (`log1p(exp(−|x|))`,
//! `xlogy`) need no new ops, PyTorch's conventions (the weighted mean of
//! `ignore_index`, a gradient of 0 at a tie) are written once where they are read, and
//! errors name the loss, not an inner op. Accumulating in f64 keeps f32 sums at least as
//! accurate as PyTorch's. The cost is a host copy of each input: free on the CPU, a
//! transfer on a device whose memory is not the host's (a device kernel would replace
//! this there).

use ferrograd_autodiff::{BackwardContext, OpInput, Tape, Tensor};
use ferrograd_device::{Dtype, Error, Layout, Storage};
use ferrograd_shapes::Shape;

/// The panicking twins' way out: `loss()` is `try_loss()` plus a panic with the error's
/// text, reported at the caller's line.
pub(crate) trait OrPanic<T> {
    fn or_panic(self) -> T;
}

impl<T> OrPanic<T> for Result<T, Error> {
    #[track_caller]
    fn or_panic(self) -> T {
        match self {
            Ok(value) => value,
            Err(error) => panic!("{error}"),
        }
    }
}

/// Sizes the way PyTorch prints a shape: `(2, 3)`, `(4,)`, `()`.
pub(crate) fn format_dims(dims: &[usize]) -> String {
    match dims {
        [d] => format!("({d},)"),
        _ => format!(
            "({})",
            dims.iter().map(|d| d.to_string()).collect::<Vec<_>>().join(", ")
        ),
    }
}

/// `Error::ShapeMismatch` unless `a` and `b` have the same dims.
pub(crate) fn same_dims(op: &'static str, a: (&str, &[usize]), b: (&str, &[usize])) -> Result<(), Error> {
    if a.1 == b.1 {
        return Ok(());
    }
    Err(Error::ShapeMismatch {
        op,
        message: format!(
            "{} {} and {} {} must have the same shape",
            a.0,
            format_dims(a.1),
            b.0,
            format_dims(b.1)
        ),
    })
}

/// `Error::InvalidArgument` for `op`.
pub(crate) fn invalid(op: &'static str, message: String) -> Error {
    Error::InvalidArgument { op, message }
}

/// A tensor's elements on the host in f64, in row-major logical order.
pub(crate) fn host_values<S: Shape, E: Dtype, D: Storage<E>, T>(x: &Tensor<S, E, D, T>) -> Result<Vec<f64>, Error> {
    Ok(x.try_as_vec()?.into_iter().map(E::to_f64).collect())
}

/// Which output element each input element's derivative belongs to.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Spread {
    /// Element `i` of the input made element `i` of the output (unreduced element-wise).
    Elementwise,
    /// The input is `(outer, classes, inner)` in row-major order and the output
    /// `(outer, inner)`: the class axis was reduced (unreduced cross-entropy).
    Rows { classes: usize, inner: usize },
    /// The output is a scalar: every element contributed, times this factor (1 for a
    /// sum, `1 / count` for a mean).
    Scalar(f64),
}

impl Spread {
    fn output_index(self, i: usize) -> usize {
        match self {
            Spread::Elementwise => i,
            Spread::Rows { classes, inner } => (i / (classes * inner)) * inner + i % inner,
            Spread::Scalar(_) => 0,
        }
    }

    fn scale(self) -> f64 {
        match self {
            Spread::Scalar(scale) => scale,
            _ => 1.0,
        }
    }
}

/// One input a loss differentiates: how the tape knows it, how its elements lie in its
/// buffer, and the derivative of its output element with respect to each of its
/// elements (logical order).
pub(crate) struct Local {
    pub input: OpInput,
    pub layout: Layout,
    pub derivative: Vec<f64>,
}

/// The loss's result: `values` (row-major in `shape`, or one value for a scalar) as a
/// tensor carrying `tape`, with the backward step recorded when `tape` traces.
pub(crate) fn record<Out: Shape, E: Dtype, D: Storage<E>, T: Tape<E, D>>(
    values: Vec<f64>,
    shape: Out,
    device: &D,
    tape: T,
    locals: Vec<Local>,
    spread: Spread,
) -> Result<Tensor<Out, E, D, T>, Error> {
    let data = device.try_from_host(values.into_iter().map(E::from_f64).collect())?;
    let result = Tensor::try_from_storage(data, shape, device.clone())?.put_tape(tape);
    if !T::TRACING {
        return Ok(result);
    }
    let inputs: Vec<OpInput> = locals.iter().map(|local| local.input).collect();
    Ok(result.record_op(&inputs, move |ctx: &mut BackwardContext<'_, E, D>| {
        let device = ctx.device().clone();
        let upstream: Vec<f64> = device
            .try_to_host(ctx.grad_output())?
            .into_iter()
            .map(E::to_f64)
            .collect();
        let scale = spread.scale();
        for (position, local) in locals.iter().enumerate() {
            let Some(grad) = ctx.grad_mut(position)? else {
                continue; // nobody reads this input's gradient
            };
            let mut host = device.try_to_host(grad)?;
            for (i, offset) in local.layout.offsets().enumerate() {
                let contribution = local.derivative[i] * scale * upstream[spread.output_index(i)];
                // `offset` comes from the input's own layout, which autodiff sized the
                // gradient buffer for, so it is in bounds.
                host[offset] += E::from_f64(contribution);
            }
            *grad = device.try_from_host(host)?;
        }
        Ok(())
    }))
}
