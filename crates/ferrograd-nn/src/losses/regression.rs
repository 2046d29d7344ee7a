//! Losses between a prediction and a target of one shape, element by element: mean
//! squared error, mean absolute error, Huber and smooth L1; and the shared path of
//! every element-wise loss (binary cross-entropy and KL divergence use it too).

use super::Reduction;
use super::fused::{Local, OrPanic, Spread, host_values, invalid, record, same_dims};
use ferrograd_autodiff::{MergeTapes, MergedTape, Tape, Tensor};
use ferrograd_device::{Dtype, Error, Storage};
use ferrograd_shapes::{Rank0, Shape};

/// What an element-wise loss gives for one element: its value and its derivatives with
/// respect to the input and to the target.
pub(crate) struct Pointwise {
    pub value: f64,
    pub d_input: f64,
    pub d_target: f64,
}

/// How an element-wise loss's values are reduced.
#[derive(Clone, Copy)]
pub(crate) enum Output {
    /// One value per element.
    Unreduced,
    /// The sum of the values times this factor.
    Scaled(f64),
}

/// Runs an element-wise loss: checks the shapes, evaluates `element(i, x, y)` for every
/// element `i` (logical order), and records the result.
pub(crate) fn pointwise<Out: Shape, S: Shape, E: Dtype, D: Storage<E>, T, R>(
    op: &'static str,
    input: Tensor<S, E, D, T>,
    target: Tensor<S, E, D, R>,
    output: Output,
    out_shape: impl FnOnce(S) -> Out,
    element: impl Fn(usize, f64, f64) -> Pointwise,
) -> Result<Tensor<Out, E, D, MergedTape<T, R>>, Error>
where
    T: Tape<E, D> + MergeTapes<R>,
    R: Tape<E, D>,
    MergedTape<T, R>: Tape<E, D>,
{
    same_dims(op, ("input", input.dims().as_ref()), ("target", target.dims().as_ref()))?;
    let tracing = <MergedTape<T, R> as Tape<E, D>>::TRACING;
    let x = host_values(&input)?;
    let y = host_values(&target)?;
    let mut values = Vec::with_capacity(x.len());
    let (mut d_input, mut d_target) = (Vec::new(), Vec::new());
    if tracing {
        d_input.reserve(x.len());
        d_target.reserve(x.len());
    }
    for (i, (&x, &y)) in x.iter().zip(&y).enumerate() {
        let p = element(i, x, y);
        values.push(p.value);
        if tracing {
            d_input.push(p.d_input);
            d_target.push(p.d_target);
        }
    }
    let (values, spread) = match output {
        Output::Unreduced => (values, Spread::Elementwise),
        Output::Scaled(scale) => (vec![values.iter().sum::<f64>() * scale], Spread::Scalar(scale)),
    };
    let locals = if tracing {
        vec![
            Local {
                input: input.op_input(),
                layout: *input.layout(),
                derivative: d_input,
            },
            Local {
                input: target.op_input(),
                layout: *target.layout(),
                derivative: d_target,
            },
        ]
    } else {
        Vec::new()
    };
    let shape = *input.shape();
    let device = input.device().clone();
    let (_, input_tape) = input.split_tape();
    let (_, target_tape) = target.split_tape();
    record(
        values,
        out_shape(shape),
        &device,
        input_tape.merge_tapes(target_tape),
        locals,
        spread,
    )
}

/// The factor a sum is scaled by for `reduction` over `count` elements.
pub(crate) fn reduction_scale(reduction: Reduction, count: usize) -> f64 {
    match reduction {
        // An empty mean is 0/0 = NaN, as in PyTorch.
        Reduction::Mean => 1.0 / count as f64,
        Reduction::Sum => 1.0,
    }
}

/// The sign of `d`, 0 at 0: PyTorch's derivative of `|d|` (and of the linear parts of
/// Huber and smooth L1).
fn sign(d: f64) -> f64 {
    if d > 0.0 {
        1.0
    } else if d < 0.0 {
        -1.0
    } else {
        0.0
    }
}

fn squared_error(d: f64) -> Pointwise {
    Pointwise {
        value: d * d,
        d_input: 2.0 * d,
        d_target: -2.0 * d,
    }
}

fn absolute_error(d: f64) -> Pointwise {
    Pointwise {
        value: d.abs(),
        d_input: sign(d),
        d_target: -sign(d),
    }
}

fn huber(d: f64, delta: f64) -> Pointwise {
    let (value, slope) = if d.abs() < delta {
        (0.5 * d * d, d)
    } else {
        (delta * (d.abs() - 0.5 * delta), delta * sign(d))
    };
    Pointwise {
        value,
        d_input: slope,
        d_target: -slope,
    }
}

fn smooth_l1(d: f64, beta: f64) -> Pointwise {
    // beta = 0 is the L1 loss (PyTorch switches to it), and the quadratic branch below
    // is never taken then, so there is no division by zero.
    let (value, slope) = if d.abs() < beta {
        (0.5 * d * d / beta, d / beta)
    } else {
        (d.abs() - 0.5 * beta, sign(d))
    };
    Pointwise {
        value,
        d_input: slope,
        d_target: -slope,
    }
}

fn check_delta<E: Dtype>(delta: E) -> Result<f64, Error> {
    let delta = delta.to_f64();
    // Written so that NaN is refused too.
    if delta.is_nan() || delta <= 0.0 {
        return Err(invalid("huber_loss", format!("delta must be positive, got {delta}")));
    }
    Ok(delta)
}

fn check_beta<E: Dtype>(beta: E) -> Result<f64, Error> {
    let beta = beta.to_f64();
    if beta.is_nan() || beta < 0.0 {
        return Err(invalid(
            "smooth_l1_loss",
            format!("beta must not be negative, got {beta}"),
        ));
    }
    Ok(beta)
}

/// Declares a reduced / unreduced pair of element-wise losses with their `try_` twins:
/// the four functions share the documentation's first paragraph and differ only in the
/// reduction, so they are written once.
macro_rules! elementwise_loss {
    (
        $(#[$doc:meta])*
        $name:ident, $try_name:ident, $unreduced:ident, $try_unreduced:ident, $op:literal,
        ($($param:ident: $param_ty:ident),*), $check:expr, |$d:ident| $element:expr
    ) => {
        $(#[$doc])*
        ///
        /// # Panics
        #[doc = concat!("As [`", stringify!($try_name), "`] fails: the shapes' run-time dims differ, or a parameter is out of range.")]
        #[track_caller]
        pub fn $name<S: Shape, E: Dtype, D: Storage<E>, T, R>(
            input: Tensor<S, E, D, T>,
            target: Tensor<S, E, D, R>,
            $($param: $param_ty,)*
            reduction: Reduction,
        ) -> Tensor<Rank0, E, D, MergedTape<T, R>>
        where
            T: Tape<E, D> + MergeTapes<R>,
            R: Tape<E, D>,
            MergedTape<T, R>: Tape<E, D>,
        {
            $try_name(input, target, $($param,)* reduction).or_panic()
        }

        #[doc = concat!("[`", stringify!($name), "`], returning `Error::ShapeMismatch` (naming both shapes) when the run-time dims of `input` and `target` differ, and `Error::InvalidArgument` for a parameter out of range.")]
        pub fn $try_name<S: Shape, E: Dtype, D: Storage<E>, T, R>(
            input: Tensor<S, E, D, T>,
            target: Tensor<S, E, D, R>,
            $($param: $param_ty,)*
            reduction: Reduction,
        ) -> Result<Tensor<Rank0, E, D, MergedTape<T, R>>, Error>
        where
            T: Tape<E, D> + MergeTapes<R>,
            R: Tape<E, D>,
            MergedTape<T, R>: Tape<E, D>,
        {
            #[allow(clippy::redundant_closure_call)]
            let ($($param,)*) = ($check)($($param,)*)?;
            let scale = reduction_scale(reduction, input.num_elements());
            pointwise($op, input, target, Output::Scaled(scale), |_| (), |_, x, y| {
                let $d = x - y;
                $element
            })
        }

        #[doc = concat!("[`", stringify!($name), "`] without a reduction (PyTorch's `reduction='none'`): one loss per element, in the input's shape.")]
        ///
        /// # Panics
        #[doc = concat!("As [`", stringify!($try_unreduced), "`] fails.")]
        #[track_caller]
        pub fn $unreduced<S: Shape, E: Dtype, D: Storage<E>, T, R>(
            input: Tensor<S, E, D, T>,
            target: Tensor<S, E, D, R>,
            $($param: $param_ty,)*
        ) -> Tensor<S, E, D, MergedTape<T, R>>
        where
            T: Tape<E, D> + MergeTapes<R>,
            R: Tape<E, D>,
            MergedTape<T, R>: Tape<E, D>,
        {
            $try_unreduced(input, target, $($param,)*).or_panic()
        }

        #[doc = concat!("[`", stringify!($unreduced), "`], returning an error instead of panicking, as [`", stringify!($try_name), "`] does.")]
        pub fn $try_unreduced<S: Shape, E: Dtype, D: Storage<E>, T, R>(
            input: Tensor<S, E, D, T>,
            target: Tensor<S, E, D, R>,
            $($param: $param_ty,)*
        ) -> Result<Tensor<S, E, D, MergedTape<T, R>>, Error>
        where
            T: Tape<E, D> + MergeTapes<R>,
            R: Tape<E, D>,
            MergedTape<T, R>: Tape<E, D>,
        {
            #[allow(clippy::redundant_closure_call)]
            let ($($param,)*) = ($check)($($param,)*)?;
            pointwise($op, input, target, Output::Unreduced, |shape| shape, |_, x, y| {
                let $d = x - y;
                $element
            })
        }
    };
}

elementwise_loss! {
    /// The mean squared error `(input − target)²`, reduced (PyTorch's
    /// `F.mse_loss(input, target, reduction=...)`). Both operands may be traced; the
    /// gradient reaches each of them.
    ///
    /// ```
    /// use ferrograd_autodiff::prelude::*;
    /// use ferrograd_nn::losses::{Reduction, mse_loss};
    /// let dev = ferrograd_cpu::Cpu::default();
    /// let x = dev.tensor([1.0f64, 2.0, 4.0]);
    /// let y = dev.tensor([1.0f64, 0.0, 1.0]);
    /// assert_eq!(mse_loss(x.clone(), y.clone(), Reduction::Mean).array(), (0.0 + 4.0 + 9.0) / 3.0);
    /// assert_eq!(mse_loss(x, y, Reduction::Sum).array(), 13.0);
    /// ```
    mse_loss, try_mse_loss, mse_loss_unreduced, try_mse_loss_unreduced, "mse_loss",
    (), || Ok::<_, Error>(()), |d| squared_error(d)
}

elementwise_loss! {
    /// The mean absolute error `|input − target|`, reduced (PyTorch's `F.l1_loss`). Its
    /// gradient at `input == target` is 0, as in PyTorch.
    ///
    /// ```
    /// use ferrograd_autodiff::prelude::*;
    /// use ferrograd_nn::losses::{Reduction, l1_loss};
    /// let dev = ferrograd_cpu::Cpu::default();
    /// let x = dev.tensor([1.0f32, 2.0, 4.0]);
    /// let y = dev.tensor([1.0f32, 0.0, 1.0]);
    /// assert_eq!(l1_loss(x, y, Reduction::Mean).array(), 5.0 / 3.0);
    /// ```
    l1_loss, try_l1_loss, l1_loss_unreduced, try_l1_loss_unreduced, "l1_loss",
    (), || Ok::<_, Error>(()), |d| absolute_error(d)
}

elementwise_loss! {
    /// The Huber loss with threshold `delta` (> 0), reduced (PyTorch's
    /// `F.huber_loss(input, target, delta=...)`, whose default `delta` is 1): with
    /// `d = input − target`, `d²/2` where `|d| < delta` and `delta·(|d| − delta/2)`
    /// elsewhere.
    ///
    /// ```
    /// use ferrograd_autodiff::prelude::*;
    /// use ferrograd_nn::losses::{Reduction, huber_loss};
    /// let dev = ferrograd_cpu::Cpu::default();
    /// let x = dev.tensor([0.5f64, 3.0]);
    /// let y = dev.tensor([0.0f64, 0.0]);
    /// // 0.5²/2 = 0.125, and 2·(3 − 1) = 4.
    /// assert_eq!(huber_loss(x, y, 2.0, Reduction::Sum).array(), 4.125);
    /// ```
    huber_loss, try_huber_loss, huber_loss_unreduced, try_huber_loss_unreduced, "huber_loss",
    (delta: E), |delta| check_delta(delta).map(|d| (d,)), |d| huber(d, delta)
}

elementwise_loss! {
    /// The smooth L1 loss with threshold `beta` (≥ 0), reduced (PyTorch's
    /// `F.smooth_l1_loss(input, target, beta=...)`, default `beta` 1): with
    /// `d = input − target`, `d²/(2·beta)` where `|d| < beta` and `|d| − beta/2`
    /// elsewhere; `beta = 0` is the L1 loss. It equals [`huber_loss`] divided by `beta`.
    ///
    /// ```
    /// use ferrograd_autodiff::prelude::*;
    /// use ferrograd_nn::losses::{Reduction, smooth_l1_loss};
    /// let dev = ferrograd_cpu::Cpu::default();
    /// let x = dev.tensor([0.5f64, 3.0]);
    /// let y = dev.tensor([0.0f64, 0.0]);
    /// // 0.5²/(2·2) = 0.0625, and 3 − 1 = 2.
    /// assert_eq!(smooth_l1_loss(x, y, 2.0, Reduction::Sum).array(), 2.0625);
    /// ```
    smooth_l1_loss, try_smooth_l1_loss, smooth_l1_loss_unreduced, try_smooth_l1_loss_unreduced, "smooth_l1_loss",
    (beta: E), |beta| check_beta(beta).map(|b| (b,)), |d| smooth_l1(d, beta)
}
