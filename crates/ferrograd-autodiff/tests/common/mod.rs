//! Test utilities shared by the integration tests of `ferrograd-autodiff`.
//!
//! - [`assert_close`]: element-wise comparison with a relative and an absolute
//!   tolerance, reporting the worst element.
//! - [`weighted_sum`]: turns any tensor into a scalar loss by multiplying it with fixed,
//!   seeded pseudo-random weights of the same shape and summing. With a plain sum,
//!   a backward pass that sends the gradient of element `i` to element `j` would go
//!   unnoticed; with distinct weights it cannot.
//! - [`check_gradient`] / [`check_gradient2`]: the analytic gradient of a scalar
//!   function of one or two tensors against a finite-difference gradient in `f64`.
//!
//! The function under test takes traced tensors and returns a traced scalar, so any
//! differentiable computation can be checked: element-wise ops, reductions, and later
//! views (the function may permute/broadcast its traced input itself).
//!
//! Each integration test file includes this module with `mod common;` and uses only
//! part of it.
#![allow(dead_code)]

use ferrograd_autodiff::prelude::*;
use ferrograd_device::Storage;
use ferrograd_device::ops::elementwise::{BinaryKernel, Mul};
use ferrograd_device::ops::reduce::SumKernel;
use ferrograd_shapes::{Axes, ReduceShapeTo};
use ferrograd_testing::{TestDevice, test_device};

/// A traced `f64` tensor on the test device.
pub type Traced<S> = Tensor<S, f64, TestDevice, OwnedTape<f64, TestDevice>>;
/// A traced `f64` scalar: what the functions given to the gradient checkers return.
pub type Loss = Tensor<Rank0, f64, TestDevice, OwnedTape<f64, TestDevice>>;

// ---------------------------------------------------------------------------------
// Comparing values
// ---------------------------------------------------------------------------------

/// Whether `actual` is within `abs + rel·|expected|` of `expected`. NaN matches only
/// NaN; an infinity matches only the same infinity.
pub fn is_close(actual: f64, expected: f64, rel: f64, abs: f64) -> bool {
    if actual.is_nan() || expected.is_nan() {
        return actual.is_nan() && expected.is_nan();
    }
    if actual.is_infinite() || expected.is_infinite() {
        return actual == expected;
    }
    (actual - expected).abs() <= abs + rel * expected.abs()
}

/// How far outside its tolerance a pair is (`> 1` fails); infinite for a NaN or
/// infinity mismatch.
fn excess(actual: f64, expected: f64, rel: f64, abs: f64) -> f64 {
    if is_close(actual, expected, rel, abs) {
        let tol = abs + rel * expected.abs();
        let diff = (actual - expected).abs();
        if tol > 0.0 && diff.is_finite() { diff / tol } else { 0.0 }
    } else if actual.is_finite() && expected.is_finite() {
        let tol = abs + rel * expected.abs();
        let ratio = (actual - expected).abs() / tol;
        if ratio.is_nan() {
            f64::INFINITY
        } else {
            ratio.max(1.0 + f64::EPSILON)
        }
    } else {
        f64::INFINITY
    }
}

/// Asserts `actual ≈ expected` element-wise: `|a - e| <= abs + rel·|e|`, NaN only
/// matching NaN and an infinity only itself. On failure, panics naming `what`, the
/// index of the worst element, both values there, the tolerance, and how many
/// elements failed.
#[track_caller]
pub fn assert_close(actual: &[f64], expected: &[f64], rel: f64, abs: f64, what: &str) {
    assert_eq!(
        actual.len(),
        expected.len(),
        "{what}: {} values, expected {}",
        actual.len(),
        expected.len()
    );
    let mut failures = 0;
    let mut worst: Option<(usize, f64)> = None;
    for (i, (&a, &e)) in actual.iter().zip(expected).enumerate() {
        if !is_close(a, e, rel, abs) {
            failures += 1;
            let x = excess(a, e, rel, abs);
            if worst.is_none_or(|(_, w)| x > w) {
                worst = Some((i, x));
            }
        }
    }
    if let Some((i, _)) = worst {
        let (a, e) = (actual[i], expected[i]);
        let listing = if actual.len() <= 32 {
            format!("\n  actual:   {actual:?}\n  expected: {expected:?}")
        } else {
            String::new()
        };
        panic!(
            "{what}: {failures} of {} elements differ; worst at index {i}: actual {a:e}, expected {e:e}, \
             |diff| {:e} > tolerance {:e} (rel {rel:e}, abs {abs:e}){listing}",
            actual.len(),
            (a - e).abs(),
            abs + rel * e.abs(),
        );
    }
}

/// `f32` values widened to `f64` (exactly), to compare with [`assert_close`].
pub fn widen(values: &[f32]) -> Vec<f64> {
    values.iter().map(|&v| v as f64).collect()
}

// ---------------------------------------------------------------------------------
// Seeded weights and the weighted-sum loss
// ---------------------------------------------------------------------------------

/// The seed [`weighted_sum`] uses.
pub const DEFAULT_WEIGHT_SEED: u64 = 0x5EED_F00D;

/// `n` fixed pseudo-random weights for `seed` (SplitMix64): magnitudes in
/// `[0.5, 1.5)` with random signs, so none is near zero and all differ.
pub fn weights(n: usize, seed: u64) -> Vec<f64> {
    let mut state = seed;
    let mut next = move || {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    };
    (0..n)
        .map(|_| {
            let bits = next();
            let unit = (bits >> 11) as f64 / (1u64 << 53) as f64; // [0, 1)
            let sign = if bits & 1 == 0 { 1.0 } else { -1.0 };
            sign * (0.5 + unit)
        })
        .collect()
}

/// A tensor of `shape` holding [`weights`]`(numel, seed)` in row-major order.
pub fn weights_like<S: Shape, E: Dtype>(shape: &S, seed: u64) -> Tensor<S, E, TestDevice>
where
    TestDevice: Storage<E>,
{
    let values = weights(shape.num_elements(), seed)
        .into_iter()
        .map(E::from_f64)
        .collect();
    test_device().tensor_from_vec(values, *shape)
}

/// `Σ_i w_i · y_i` with the weights of [`weights_like`]`(y.shape(), seed)`: a scalar loss
/// whose gradient with respect to `y` is the weight tensor.
pub fn weighted_sum_seeded<S, E, T, Ax>(y: Tensor<S, E, TestDevice, T>, seed: u64) -> Tensor<Rank0, E, TestDevice, T>
where
    S: ReduceShapeTo<Rank0, Ax>,
    E: Dtype,
    T: Tape<E, TestDevice>,
    Ax: Axes,
    TestDevice: BinaryKernel<Mul, E> + SumKernel<E>,
{
    let w = weights_like(y.shape(), seed);
    y.mul(w).sum::<Rank0, Ax>()
}

/// [`weighted_sum_seeded`] with [`DEFAULT_WEIGHT_SEED`].
pub fn weighted_sum<S, E, T, Ax>(y: Tensor<S, E, TestDevice, T>) -> Tensor<Rank0, E, TestDevice, T>
where
    S: ReduceShapeTo<Rank0, Ax>,
    E: Dtype,
    T: Tape<E, TestDevice>,
    Ax: Axes,
    TestDevice: BinaryKernel<Mul, E> + SumKernel<E>,
{
    weighted_sum_seeded(y, DEFAULT_WEIGHT_SEED)
}

// ---------------------------------------------------------------------------------
// Finite differences
// ---------------------------------------------------------------------------------

/// Tolerances and step of the gradient checks.
#[derive(Clone, Copy, Debug)]
pub struct GradCheck {
    /// Relative tolerance between the analytic and the numerical gradient.
    pub rel: f64,
    /// Absolute tolerance, for gradients near zero.
    pub abs: f64,
    /// The finite-difference step for element `i` is `step · max(1, |x_i|)`.
    pub step: f64,
    /// Whether a numerical gradient that is zero everywhere is acceptable. Off by
    /// default: a check of a function that does not depend on its input would pass
    /// whatever backward computes.
    pub allow_zero: bool,
}

impl Default for GradCheck {
    fn default() -> Self {
        // The five-point stencil's truncation error is O(h⁴) ≈ 1e-16 · f⁽⁵⁾ and its
        // rounding error ≈ 1e-12 · |loss|, far inside the relative tolerance.
        Self {
            rel: 1e-6,
            abs: 1e-8,
            step: 1e-4,
            allow_zero: false,
        }
    }
}

/// A tensor of `shape` with `values`, on a fresh default CPU device.
pub fn tensor_of<S: Shape>(values: Vec<f64>, shape: S) -> Tensor<S, f64, TestDevice> {
    test_device().tensor_from_vec(values, shape)
}

/// The numerical gradient of `eval` at `x`, by the five-point central stencil
/// `(-f(x+2h) + 8 f(x+h) - 8 f(x-h) + f(x-2h)) / 12h` along each element.
pub fn numerical_gradient<S: Shape>(
    x: &Tensor<S, f64, TestDevice>,
    step: f64,
    eval: impl Fn(Tensor<S, f64, TestDevice>) -> f64,
) -> Vec<f64> {
    let base = x.as_vec();
    let at = |i: usize, value: f64| {
        let mut v = base.clone();
        v[i] = value;
        eval(x.device().tensor_from_vec(v, *x.shape()))
    };
    (0..base.len())
        .map(|i| {
            let xi = base[i];
            // The step actually taken, so that x ± h is exactly what f sees.
            let h = (xi + step * xi.abs().max(1.0)) - xi;
            let (p1, m1, p2, m2) = (at(i, xi + h), at(i, xi - h), at(i, xi + 2.0 * h), at(i, xi - 2.0 * h));
            (-p2 + 8.0 * p1 - 8.0 * m1 + m2) / (12.0 * h)
        })
        .collect()
}

/// The value of `f` at `x`, traced into a throw-away tape.
pub fn eval1<S: Shape>(x: Tensor<S, f64, TestDevice>, f: &impl Fn(Traced<S>) -> Loss) -> f64 {
    f(x.traced(Gradients::default())).array()
}

/// The analytic gradient of `f` at `x`: trace with `x.alloc_grads()`, backward, read.
pub fn analytic_gradient<S: Shape>(x: &Tensor<S, f64, TestDevice>, f: impl Fn(Traced<S>) -> Loss) -> Vec<f64> {
    let loss = f(x.clone().traced(x.alloc_grads()));
    loss.backward().get(x).as_vec()
}

#[track_caller]
fn compare_gradients(analytic: &[f64], numerical: &[f64], opts: GradCheck, what: &str) {
    assert!(
        opts.allow_zero || numerical.iter().any(|g| g.abs() > 1e-6),
        "{what}: the numerical gradient is zero everywhere ({numerical:?}), so the check proves nothing"
    );
    assert_close(analytic, numerical, opts.rel, opts.abs, what);
}

/// Checks the gradient of the scalar function `f` at `x` against finite differences,
/// with the default [`GradCheck`]; returns the analytic gradient.
#[track_caller]
pub fn check_gradient<S: Shape>(x: &Tensor<S, f64, TestDevice>, f: impl Fn(Traced<S>) -> Loss) -> Vec<f64> {
    check_gradient_with(GradCheck::default(), x, f)
}

/// [`check_gradient`] with explicit tolerances.
#[track_caller]
pub fn check_gradient_with<S: Shape>(
    opts: GradCheck,
    x: &Tensor<S, f64, TestDevice>,
    f: impl Fn(Traced<S>) -> Loss,
) -> Vec<f64> {
    let analytic = analytic_gradient(x, &f);
    let numerical = numerical_gradient(x, opts.step, |xp| eval1(xp, &f));
    compare_gradients(
        &analytic,
        &numerical,
        opts,
        "d loss / d x (analytic vs finite differences)",
    );
    analytic
}

/// Checks the gradients of `f(x, y)` with respect to both inputs against finite
/// differences, with the default [`GradCheck`]; returns the analytic gradients.
///
/// The analytic gradients are computed twice, and both must match: with `x` and `y`
/// traced on separate tapes (which merge where the graph joins them), and with both on
/// one tape.
#[track_caller]
pub fn check_gradient2<S1: Shape, S2: Shape>(
    x: &Tensor<S1, f64, TestDevice>,
    y: &Tensor<S2, f64, TestDevice>,
    f: impl Fn(Traced<S1>, Traced<S2>) -> Loss,
) -> (Vec<f64>, Vec<f64>) {
    check_gradient2_with(GradCheck::default(), x, y, f)
}

/// [`check_gradient2`] with explicit tolerances.
#[track_caller]
pub fn check_gradient2_with<S1: Shape, S2: Shape>(
    opts: GradCheck,
    x: &Tensor<S1, f64, TestDevice>,
    y: &Tensor<S2, f64, TestDevice>,
    f: impl Fn(Traced<S1>, Traced<S2>) -> Loss,
) -> (Vec<f64>, Vec<f64>) {
    // Separate tapes, merged by the ops that combine x and y.
    let grads = f(x.clone().traced(x.alloc_grads()), y.clone().traced(y.alloc_grads())).backward();
    let (gx_separate, gy_separate) = (grads.get(x).as_vec(), grads.get(y).as_vec());

    // One tape holding both.
    let mut grads = x.alloc_grads();
    grads.try_alloc_for(y).expect("allocating a gradient");
    let (xt, tape) = x.clone().traced(grads).split_tape();
    let grads = f(xt.put_tape(tape.clone()), y.clone().put_tape(tape)).backward();
    let (gx_shared, gy_shared) = (grads.get(x).as_vec(), grads.get(y).as_vec());

    let untraced = || Gradients::default();
    let nx = numerical_gradient(x, opts.step, |xp| {
        f(xp.traced(untraced()), y.clone().traced(untraced())).array()
    });
    let ny = numerical_gradient(y, opts.step, |yp| {
        f(x.clone().traced(untraced()), yp.traced(untraced())).array()
    });
    compare_gradients(
        &gx_separate,
        &nx,
        opts,
        "d loss / d x (separate tapes vs finite differences)",
    );
    compare_gradients(
        &gy_separate,
        &ny,
        opts,
        "d loss / d y (separate tapes vs finite differences)",
    );
    compare_gradients(&gx_shared, &nx, opts, "d loss / d x (one tape vs finite differences)");
    compare_gradients(&gy_shared, &ny, opts, "d loss / d y (one tape vs finite differences)");
    (gx_separate, gy_separate)
}

// ---------------------------------------------------------------------------------
// Reference functions
// ---------------------------------------------------------------------------------

/// The error function, computed without `libm` for use as an independent reference.
///
/// For |x| ≤ 2 the series `erf(x) = 2/√π · e^(-x²) · Σ_n 2ⁿ x^(2n+1) / (1·3·…·(2n+1))`
/// (positive terms, no cancellation); beyond, `±(1 - erfc(|x|))` with
/// [`erfc_reference`]. Accurate to a few ulp.
pub fn erf_reference(x: f64) -> f64 {
    if x.is_nan() {
        return x;
    }
    if x.abs() > 2.0 {
        return x.signum() * (1.0 - erfc_reference(x.abs()));
    }
    let mut term = x; // n = 0: x / 1
    let mut sum = x;
    let mut n = 0.0;
    while term.abs() > 1e-18 * sum.abs() {
        n += 1.0;
        term *= 2.0 * x * x / (2.0 * n + 1.0);
        sum += term;
    }
    2.0 / std::f64::consts::PI.sqrt() * (-x * x).exp() * sum
}

/// The complementary error function `1 - erf(x)`, without cancellation for large x:
/// `2 - erfc(-x)` below 0, `1 - erf(x)` up to 2 (where erfc ≥ 4.6e-3), and beyond the
/// continued fraction `erfc(x) = e^(-x²)/√π · 1/(x + (1/2)/(x + 1/(x + (3/2)/(x + …))))`.
pub fn erfc_reference(x: f64) -> f64 {
    if x.is_nan() {
        return x;
    }
    if x < 0.0 {
        return 2.0 - erfc_reference(-x);
    }
    if x <= 2.0 {
        return 1.0 - erf_reference(x);
    }
    let mut tail = x;
    for k in (1..=400).rev() {
        tail = x + (k as f64 / 2.0) / tail;
    }
    (-x * x).exp() / std::f64::consts::PI.sqrt() / tail
}
