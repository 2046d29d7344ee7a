//! Element-wise ops, `sum`/`mean`, `dropout`, comparisons and `choose`: values against
//! references written here from std functions and the ops' definitions, gradients
//! against finite differences, and derivatives at kinks against PyTorch's conventions.

mod common;

use common::*;
use ferrograd_autodiff::prelude::*;
use ferrograd_testing::{TestDevice, seeded_test_device, test_device};

type V64 = Tensor<(usize,), f64, TestDevice>;
type V32 = Tensor<(usize,), f32, TestDevice>;

const NAN: f64 = f64::NAN;

/// Inputs for forward tests: negatives, zero, tiny and large magnitudes, NaN.
const INPUTS: &[f64] = &[
    -30.0, -5.0, -2.5, -1.0, -0.5, -1e-3, 0.0, 1e-3, 0.5, 1.0, 2.5, 5.0, 30.0, NAN,
];

/// Points for gradient checks, away from every kink (0, ±1) and from each other.
const POINTS: [[f64; 3]; 2] = [[-2.1, -1.3, -0.45], [0.3, 0.85, 1.7]];
/// Positive points for ops defined on x > 0.
const POSITIVE: [[f64; 3]; 2] = [[0.2, 0.55, 0.9], [1.3, 2.2, 3.7]];
/// A second operand for binary ops: no element equals the matching one of `POINTS`.
const OTHER: [[f64; 3]; 2] = [[0.7, -1.9, -0.2], [1.1, 0.35, -0.6]];

fn points() -> Tensor<Rank2<2, 3>, f64, TestDevice> {
    test_device().tensor(POINTS)
}
fn positive() -> Tensor<Rank2<2, 3>, f64, TestDevice> {
    test_device().tensor(POSITIVE)
}
fn other() -> Tensor<Rank2<2, 3>, f64, TestDevice> {
    test_device().tensor(OTHER)
}

// ---------------------------------------------------------------------------------
// References, written from the definitions
// ---------------------------------------------------------------------------------

fn sigmoid_ref(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}
fn gelu_ref(x: f64) -> f64 {
    // x · Φ(x), Φ the standard normal CDF = (1 + erf(x/√2)) / 2 = erfc(-x/√2) / 2,
    // the last form without cancellation for negative x.
    x * 0.5 * erfc_reference(-x / 2.0f64.sqrt())
}
fn gelu_tanh_ref(x: f64) -> f64 {
    let k = (2.0 / std::f64::consts::PI).sqrt();
    0.5 * x * (1.0 + (k * (x + 0.044715 * x.powi(3))).tanh())
}
fn silu_ref(x: f64) -> f64 {
    x / (1.0 + (-x).exp())
}
/// PyTorch's softplus: `x` where `beta·x > threshold`, else `ln(1 + e^(beta·x)) / beta`,
/// computed as `max(z, 0) + ln(1 + e^-|z|)` with `z = beta·x`.
fn softplus_ref(x: f64, beta: f64, threshold: f64) -> f64 {
    let z = beta * x;
    if z > threshold {
        x
    } else {
        (z.max(0.0) + (-z.abs()).exp().ln_1p()) / beta
    }
}
fn powi_ref(x: f64, n: i32) -> f64 {
    let mut p = 1.0;
    for _ in 0..n.unsigned_abs() {
        p *= x;
    }
    if n < 0 { 1.0 / p } else { p }
}

// ---------------------------------------------------------------------------------
// Forward: f64 and f32 against the references
// ---------------------------------------------------------------------------------

#[derive(Clone, Copy)]
struct Tol {
    rel64: f64,
    abs64: f64,
    rel32: f64,
    abs32: f64,
}

/// Near-exact in f64 (the references use other formulas, so a few ulp), a few ulp in f32.
const TOL: Tol = Tol {
    rel64: 1e-13,
    abs64: 0.0,
    rel32: 1e-6,
    abs32: 0.0,
};

fn check_unary_forward(
    what: &str,
    inputs: &[f64],
    tol: Tol,
    op64: impl Fn(V64) -> V64,
    op32: impl Fn(V32) -> V32,
    reference: impl Fn(f64) -> f64,
) {
    let dev = test_device();
    let y = op64(dev.tensor(inputs.to_vec()));
    assert_eq!(y.dims(), [inputs.len()], "{what}: shape");
    let expected: Vec<f64> = inputs.iter().map(|&x| reference(x)).collect();
    assert_close(&y.as_vec(), &expected, tol.rel64, tol.abs64, &format!("{what} (f64)"));

    let inputs32: Vec<f32> = inputs.iter().map(|&x| x as f32).collect();
    let y = op32(dev.tensor(inputs32.clone()));
    // The reference at the f32 input, rounded to f32 (so overflow to inf matches too).
    let expected: Vec<f64> = inputs32.iter().map(|&x| reference(x as f64) as f32 as f64).collect();
    assert_close(
        &widen(&y.as_vec()),
        &expected,
        tol.rel32,
        tol.abs32,
        &format!("{what} (f32)"),
    );
}

/// Runs `$body` (an expression in the tensor `$t`) in f64 and f32 against `$reference`.
macro_rules! unary_forward {
    ($what:expr, $inputs:expr, $tol:expr, |$t:ident| $body:expr, $reference:expr) => {
        check_unary_forward($what, $inputs, $tol, |$t: V64| $body, |$t: V32| $body, $reference)
    };
    ($what:expr, $inputs:expr, |$t:ident| $body:expr, $reference:expr) => {
        unary_forward!($what, $inputs, TOL, |$t| $body, $reference)
    };
}

fn with(extra: &[f64]) -> Vec<f64> {
    INPUTS.iter().chain(extra).copied().collect()
}

#[test]
fn negate_forward() {
    unary_forward!("negate", INPUTS, |x| x.negate(), |x| -x);
    unary_forward!("-x", INPUTS, |x| -x, |x| -x);
}

#[test]
fn abs_forward() {
    unary_forward!("abs", &with(&[-0.0, f64::NEG_INFINITY]), |x| x.abs(), f64::abs);
}

#[test]
fn exp_forward() {
    // ±800: e^800 overflows to inf, e^-800 underflows to 0 (and in f32 already at ±100).
    unary_forward!("exp", &with(&[-800.0, 800.0, -100.0, 100.0]), |x| x.exp(), f64::exp);
}

#[test]
fn ln_forward() {
    // ln(0) = -inf, ln(negative) = NaN, as in PyTorch.
    unary_forward!("ln", &with(&[1e-300, 1e300, f64::INFINITY]), |x| x.ln(), f64::ln);
}

#[test]
fn sqrt_forward() {
    unary_forward!("sqrt", &with(&[-0.0, 1e300]), |x| x.sqrt(), f64::sqrt);
}

#[test]
fn square_forward() {
    unary_forward!("square", &with(&[1e200, -1e200]), |x| x.square(), |x| x * x);
}

#[test]
fn powf_forward() {
    let inputs = with(&[4.0, 0.25, -8.0]);
    for p in [2.5, -1.5, 0.5, 1.0, 3.0, -2.0, 0.0] {
        unary_forward!(&format!("powf({p})"), &inputs, |x| x.powf(p as _), |x| x.powf(p));
    }
    // Hand-checked special cases (IEEE pow, which PyTorch follows): x^0 = 1 even for
    // 0 and NaN; a negative base to a non-integer power is NaN; 0^-1.5 = inf.
    let x: V64 = test_device().tensor(vec![0.0, NAN, -8.0, 0.0, 4.0]);
    assert_eq!(x.clone().powf(0.0).as_vec(), [1.0; 5]);
    let y = x.powf(-1.5).as_vec();
    assert_eq!(y[0], f64::INFINITY);
    assert!(y[1].is_nan() && y[2].is_nan());
    assert_eq!(y[4], 0.125);
}

#[test]
fn powi_forward() {
    for n in [0, 1, 2, 3, -1, -2, 5] {
        // powi uses a multiplication chain in a different order: a few ulp.
        let tol = Tol { rel64: 1e-14, ..TOL };
        unary_forward!(&format!("powi({n})"), INPUTS, tol, |x| x.powi(n), |x| {
            powi_ref(x, n)
        });
    }
}

#[test]
fn recip_forward() {
    unary_forward!("recip", &with(&[-0.0, f64::INFINITY]), |x| x.recip(), |x| 1.0 / x);
}

#[test]
fn trigonometric_forward() {
    unary_forward!("sin", INPUTS, |x| x.sin(), f64::sin);
    unary_forward!("cos", INPUTS, |x| x.cos(), f64::cos);
    unary_forward!("tanh", &with(&[-800.0, 800.0]), |x| x.tanh(), f64::tanh);
}

#[test]
fn sigmoid_forward() {
    // ±800 and ±100: 1/(1 + e^-x) must not overflow into NaN at either end.
    unary_forward!(
        "sigmoid",
        &with(&[-800.0, 800.0, -100.0, 100.0]),
        |x| x.sigmoid(),
        sigmoid_ref
    );
}

#[test]
fn relu_forward() {
    // NaN stays NaN (PyTorch), everything else is max(x, 0).
    let reference = |x: f64| if x.is_nan() { x } else { x.max(0.0) };
    unary_forward!("relu", INPUTS, |x| x.relu(), reference);
}

#[test]
fn leaky_relu_forward() {
    for slope in [0.01, 0.2, 1.5] {
        let reference = |x: f64| if x > 0.0 { x } else { slope * x };
        unary_forward!(
            &format!("leaky_relu({slope})"),
            INPUTS,
            |x| x.leaky_relu(slope as _),
            reference
        );
    }
}

#[test]
fn gelu_forward() {
    // PyTorch's formula 0.5·x·(1 + erf(x/√2)) cancels for negative x: an error of one
    // ulp of 1 in erf (2.2e-16 in f64, 1.2e-7 in f32) becomes an absolute error of up
    // to 0.5·|x|·ulp in the result; the tolerances allow that (|x| ≤ 30) and no more.
    let tol = Tol {
        rel64: 1e-13,
        abs64: 1e-14,
        rel32: 1e-6,
        abs32: 3e-6,
    };
    unary_forward!(
        "gelu",
        &with(&[-3.0, 3.0, -7.0, -10.0, -2.0, 2.0, 1.5]),
        tol,
        |x| x.gelu(),
        gelu_ref
    );
    // The reference itself, against tabulated values of Φ: Φ(-3) = 1.3498980316301e-3,
    // Φ(-7) = 1.279812543885835e-12, Φ(0.5) = 0.691462461274013.
    let phi = |x: f64| gelu_ref(x) / x;
    assert_close(
        &[phi(-3.0), phi(-7.0), phi(0.5)],
        &[1.3498980316301e-3, 1.279812543885835e-12, 0.691462461274013],
        1e-12,
        0.0,
        "Φ",
    );
    // Hand values: gelu(1) = Φ(1) = 0.841344746068543; gelu(-1) = -(1 - Φ(1)).
    let y = test_device().tensor([1.0f64, -1.0]).gelu().array();
    assert_close(&y, &[0.841344746068543, -0.158655253931457], 1e-14, 0.0, "gelu(±1)");
}

#[test]
fn gelu_tanh_forward() {
    let tol = Tol {
        rel64: 1e-11,
        abs64: 1e-300,
        rel32: 1e-5,
        abs32: 3e-7,
    };
    unary_forward!(
        "gelu_tanh",
        &with(&[-3.0, 3.0, -7.0]),
        tol,
        |x| x.gelu_tanh(),
        gelu_tanh_ref
    );
    // The approximation is within 1e-3 of the exact form.
    let x: V64 = test_device().tensor(INPUTS[..13].to_vec());
    let exact: Vec<f64> = INPUTS[..13].iter().map(|&v| gelu_ref(v)).collect();
    assert_close(&x.gelu_tanh().as_vec(), &exact, 0.0, 1e-3, "gelu_tanh vs exact gelu");
}

#[test]
fn silu_forward() {
    let tol = Tol {
        rel64: 1e-13,
        abs64: 1e-300,
        rel32: 1e-6,
        abs32: 1e-38,
    };
    unary_forward!("silu", &with(&[-800.0, 800.0, -100.0]), tol, |x| x.silu(), silu_ref);
}

#[test]
fn softplus_forward() {
    // Defaults beta = 1, threshold = 20: x = 20 is still ln(1 + e^20), 20.5 is x.
    let tol = Tol {
        rel64: 1e-13,
        abs64: 1e-300,
        rel32: 1e-6,
        abs32: 1e-38,
    };
    let inputs = with(&[20.0, 20.5, -800.0, 800.0, -100.0]);
    unary_forward!("softplus", &inputs, tol, |x| x.softplus(), |x| softplus_ref(
        x, 1.0, 20.0
    ));
    for (beta, threshold) in [(2.0, 10.0), (0.5, 20.0), (1.0, 3.0)] {
        let inputs = with(&[threshold / beta, threshold / beta + 0.25, 4.0]);
        unary_forward!(
            &format!("softplus_with({beta}, {threshold})"),
            &inputs,
            tol,
            |x| x.softplus_with(beta as _, threshold as _),
            |x| softplus_ref(x, beta, threshold)
        );
    }
    // Hand value: softplus(0) = ln 2.
    assert_eq!(
        test_device().tensor([0.0f64]).softplus().array(),
        [std::f64::consts::LN_2]
    );
}

#[test]
fn clamp_forward() {
    for (min, max) in [(-1.0, 2.0), (0.0, 0.0), (-30.0, -5.0)] {
        let reference = |x: f64| {
            if x < min {
                min
            } else if x > max {
                max
            } else {
                x
            }
        };
        unary_forward!(
            &format!("clamp({min}, {max})"),
            INPUTS,
            |x| x.clamp(min as _, max as _),
            reference
        );
    }
}

#[test]
fn nans_to_forward() {
    let inputs = with(&[NAN, f64::INFINITY, -f64::NAN]);
    for v in [0.0, -7.5, 1e30] {
        let reference = |x: f64| if x.is_nan() { v } else { x };
        unary_forward!(&format!("nans_to({v})"), &inputs, |x| x.nans_to(v as _), reference);
    }
}

#[test]
fn scalar_arithmetic_forward() {
    for s in [2.0, -0.75, 0.0, 1e10] {
        let s32 = s as f32;
        unary_forward!(&format!("add_scalar({s})"), INPUTS, |x| x.add_scalar(s as _), |x| x + s);
        check_unary_forward(&format!("x + {s}"), INPUTS, TOL, |x| x + s, |x| x + s32, |x| x + s);
        unary_forward!(&format!("sub_scalar({s})"), INPUTS, |x| x.sub_scalar(s as _), |x| x - s);
        check_unary_forward(&format!("x - {s}"), INPUTS, TOL, |x| x - s, |x| x - s32, |x| x - s);
        unary_forward!(&format!("mul_scalar({s})"), INPUTS, |x| x.mul_scalar(s as _), |x| x * s);
        check_unary_forward(&format!("x * {s}"), INPUTS, TOL, |x| x * s, |x| x * s32, |x| x * s);
        // x / s, also for s = 0: ±inf, and NaN for 0 / 0.
        unary_forward!(&format!("div_scalar({s})"), INPUTS, |x| x.div_scalar(s as _), |x| x / s);
        check_unary_forward(&format!("x / {s}"), INPUTS, TOL, |x| x / s, |x| x / s32, |x| x / s);
    }
}

#[test]
fn const_shaped_forward_keeps_row_major_order() {
    let x = test_device().tensor([[1.0f64, -2.0, 3.0], [-4.0, 5.0, -6.0]]);
    assert_eq!(x.clone().abs().array(), [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]);
    assert_eq!(x.relu().array(), [[1.0, 0.0, 3.0], [0.0, 5.0, 0.0]]);
}

#[test]
fn traced_forward_values_equal_untraced() {
    // Tracing changes the bookkeeping (the input buffer is kept), not the values.
    let x: V64 = test_device().tensor(INPUTS.to_vec());
    let plain = x.clone().exp().sin().as_vec();
    let traced = x.leaky_trace().exp().sin().as_vec();
    assert_close(&traced, &plain, 0.0, 0.0, "traced exp().sin()");
}

// Binary ops ------------------------------------------------------------------------

const LHS: &[f64] = &[1.0, -2.5, 0.0, 3.0, -4.0, 7.0, NAN, 2.0, 30.0, -0.0, 5.0, 1e300];
const RHS: &[f64] = &[2.0, -2.5, 0.0, -1.0, 0.5, 7.0, 1.0, NAN, -30.0, 0.0, 0.0, 1e300];

fn check_binary_forward(
    what: &str,
    op64: impl Fn(V64, V64) -> V64,
    op32: impl Fn(V32, V32) -> V32,
    reference: impl Fn(f64, f64) -> f64,
) {
    let dev = test_device();
    let y = op64(dev.tensor(LHS.to_vec()), dev.tensor(RHS.to_vec()));
    let expected: Vec<f64> = LHS.iter().zip(RHS).map(|(&a, &b)| reference(a, b)).collect();
    assert_close(&y.as_vec(), &expected, 1e-15, 0.0, &format!("{what} (f64)"));
    let (l32, r32): (Vec<f32>, Vec<f32>) = (
        LHS.iter().map(|&v| v as f32).collect(),
        RHS.iter().map(|&v| v as f32).collect(),
    );
    let y = op32(dev.tensor(l32.clone()), dev.tensor(r32.clone()));
    let expected: Vec<f64> = l32
        .iter()
        .zip(&r32)
        .map(|(&a, &b)| reference(a as f64, b as f64) as f32 as f64)
        .collect();
    assert_close(&widen(&y.as_vec()), &expected, 1e-7, 0.0, &format!("{what} (f32)"));
}

macro_rules! binary_forward {
    ($what:expr, |$a:ident, $b:ident| $body:expr, $reference:expr) => {
        check_binary_forward($what, |$a: V64, $b: V64| $body, |$a: V32, $b: V32| $body, $reference)
    };
}

/// torch.maximum: NaN if either operand is NaN.
fn maximum_ref(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        NAN
    } else if a > b {
        a
    } else {
        b
    }
}
fn minimum_ref(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        NAN
    } else if a < b {
        a
    } else {
        b
    }
}

#[test]
fn binary_forward() {
    binary_forward!("add", |a, b| a.add(b), |a, b| a + b);
    binary_forward!("a + b", |a, b| a + b, |a, b| a + b);
    binary_forward!("sub", |a, b| a.sub(b), |a, b| a - b);
    binary_forward!("a - b", |a, b| a - b, |a, b| a - b);
    binary_forward!("mul", |a, b| a.mul(b), |a, b| a * b);
    binary_forward!("a * b", |a, b| a * b, |a, b| a * b);
    binary_forward!("div", |a, b| a.div(b), |a, b| a / b);
    binary_forward!("a / b", |a, b| a / b, |a, b| a / b);
    binary_forward!("maximum", |a, b| a.maximum(b), maximum_ref);
    binary_forward!("minimum", |a, b| a.minimum(b), minimum_ref);
}

#[test]
fn binary_ops_of_a_tensor_with_itself() {
    // x ∘ x with one buffer on both sides (and the in-place path for the lhs).
    let x: V64 = test_device().tensor(vec![1.5, -2.0, 3.0]);
    assert_eq!(x.clone().mul(x.clone()).as_vec(), [2.25, 4.0, 9.0]);
    assert_eq!(x.clone().sub(x.clone()).as_vec(), [0.0; 3]);
    assert_eq!(x.clone().div(x.clone()).as_vec(), [1.0; 3]);
    // x is untouched by the ops above.
    assert_eq!(x.as_vec(), [1.5, -2.0, 3.0]);
}

// Reductions ------------------------------------------------------------------------

#[test]
fn sum_and_mean_forward() {
    let v: [[[f64; 4]; 3]; 2] = std::array::from_fn(|i| {
        std::array::from_fn(|j| std::array::from_fn(|k| (i * 12 + j * 4 + k) as f64 * 0.5 - 3.0))
    });
    let x = test_device().tensor(v);
    let at = |i: usize, j: usize, k: usize| v[i][j][k];
    let total: f64 = (0..2)
        .flat_map(|i| (0..3).flat_map(move |j| (0..4).map(move |k| at(i, j, k))))
        .sum();
    assert_eq!(x.clone().sum::<Rank0, _>().array(), total);
    assert_close(
        &[x.clone().mean::<Rank0, _>().array()],
        &[total / 24.0],
        1e-15,
        0.0,
        "mean",
    );

    let s0: [[f64; 4]; 3] = std::array::from_fn(|j| std::array::from_fn(|k| at(0, j, k) + at(1, j, k)));
    assert_eq!(x.clone().sum::<_, Axis<0>>().array(), s0);
    let s1: [[f64; 4]; 2] = std::array::from_fn(|i| std::array::from_fn(|k| (0..3).map(|j| at(i, j, k)).sum()));
    assert_eq!(x.clone().sum::<_, Axis<1>>().array(), s1);
    let s2: [[f64; 3]; 2] = std::array::from_fn(|i| std::array::from_fn(|j| (0..4).map(|k| at(i, j, k)).sum()));
    assert_eq!(x.clone().sum::<_, Axis<2>>().array(), s2);
    let s02: [f64; 3] = std::array::from_fn(|j| (0..2).flat_map(|i| (0..4).map(move |k| at(i, j, k))).sum());
    assert_eq!(x.clone().sum::<_, Axes2<0, 2>>().array(), s02);
    let m1: Tensor<Rank2<2, 4>, f64, TestDevice> = x.clone().mean::<_, Axis<1>>();
    let expected: Vec<f64> = s1.as_flattened().iter().map(|s| s / 3.0).collect();
    assert_close(&m1.as_vec(), &expected, 1e-15, 0.0, "mean over axis 1");

    // f32, and a long vector (the kernel sums in lanes).
    let long: Vec<f32> = (0..1001).map(|i| ((i * 37 % 101) as f32) * 0.25 - 12.0).collect();
    let exact: f64 = long.iter().map(|&v| v as f64).sum();
    let s = test_device().tensor(long).sum::<Rank0, _>().array();
    assert_close(&[s as f64], &[exact], 1e-6, 0.0, "sum of 1001 f32");
}

#[test]
fn sum_propagates_nan_and_inf() {
    let x: V64 = test_device().tensor(vec![1.0, NAN, 2.0]);
    assert!(x.sum::<Rank0, _>().array().is_nan());
    let y: V64 = test_device().tensor(vec![1.0, f64::INFINITY, 2.0]);
    assert_eq!(y.sum::<Rank0, _>().array(), f64::INFINITY);
}

// ---------------------------------------------------------------------------------
// Gradients: finite differences at points away from kinks
// ---------------------------------------------------------------------------------

#[test]
fn gradients_of_unary_ops() {
    let x = points();
    check_gradient(&x, |t| weighted_sum(t.negate()));
    check_gradient(&x, |t| weighted_sum(-t));
    check_gradient(&x, |t| weighted_sum(t.abs()));
    check_gradient(&x, |t| weighted_sum(t.exp()));
    check_gradient(&x, |t| weighted_sum(t.square()));
    check_gradient(&x, |t| weighted_sum(t.recip()));
    check_gradient(&x, |t| weighted_sum(t.sin()));
    check_gradient(&x, |t| weighted_sum(t.cos()));
    check_gradient(&x, |t| weighted_sum(t.tanh()));
    check_gradient(&x, |t| weighted_sum(t.sigmoid()));
    check_gradient(&x, |t| weighted_sum(t.relu()));
    check_gradient(&x, |t| weighted_sum(t.leaky_relu(0.1)));
    check_gradient(&x, |t| weighted_sum(t.leaky_relu(1.7)));
    check_gradient(&x, |t| weighted_sum(t.gelu()));
    check_gradient(&x, |t| weighted_sum(t.gelu_tanh()));
    check_gradient(&x, |t| weighted_sum(t.silu()));
    check_gradient(&x, |t| weighted_sum(t.softplus()));
    // beta·x > 3 at x = 1.7 only: both branches.
    check_gradient(&x, |t| weighted_sum(t.softplus_with(2.0, 3.0)));
    check_gradient(&x, |t| weighted_sum(t.softplus_with(0.5, 20.0)));
    // Three elements below, two inside, one above.
    check_gradient(&x, |t| weighted_sum(t.clamp(-1.0, 1.0)));
    check_gradient(&x, |t| weighted_sum(t.nans_to(0.5)));
    check_gradient(&x, |t| weighted_sum(t.powi(3)));
    check_gradient(&x, |t| weighted_sum(t.powi(-2)));
    check_gradient(&x, |t| weighted_sum(t.powi(1)));
    check_gradient(&x, |t| weighted_sum(t.powf(3.0)));
    check_gradient(&x, |t| weighted_sum(t.powf(2.0)));
}

#[test]
fn powi_at_i32_min_has_a_gradient_instead_of_an_overflow() {
    // n · x^(n−1) with n = i32::MIN, where n − 1 does not fit an i32: by hand, x = −1
    // gives n · (−1)^(odd) = −n = 2^31; x = 2 gives n · 2^(−2^31−1), which rounds to
    // (minus) zero; x = 0.5 gives n · 2^(2^31+1) = −∞.
    let x: V64 = test_device().tensor(vec![-1.0, 2.0, 0.5]);
    let grads = x
        .clone()
        .traced(x.alloc_grads())
        .powi(i32::MIN)
        .sum::<Rank0, _>()
        .backward();
    let g = grads.get(&x).as_vec();
    assert_eq!(g[0], 2f64.powi(31));
    assert_eq!(g[1], 0.0);
    assert_eq!(g[2], f64::NEG_INFINITY);
}

#[test]
fn gradients_of_ops_defined_for_positive_inputs() {
    let x = positive();
    check_gradient(&x, |t| weighted_sum(t.ln()));
    check_gradient(&x, |t| weighted_sum(t.sqrt()));
    check_gradient(&x, |t| weighted_sum(t.powf(2.5)));
    check_gradient(&x, |t| weighted_sum(t.powf(-1.5)));
    check_gradient(&x, |t| weighted_sum(t.powf(0.5)));
    check_gradient(&x, |t| weighted_sum(t.powf(1.0)));
}

#[test]
fn gradients_of_scalar_arithmetic() {
    let x = points();
    for s in [2.0, -0.75] {
        check_gradient(&x, |t| weighted_sum(t.add_scalar(s).square()));
        check_gradient(&x, |t| weighted_sum((t + s).square()));
        check_gradient(&x, |t| weighted_sum(t.sub_scalar(s).square()));
        check_gradient(&x, |t| weighted_sum((t - s).square()));
        check_gradient(&x, |t| weighted_sum(t.mul_scalar(s)));
        check_gradient(&x, |t| weighted_sum(t * s));
        check_gradient(&x, |t| weighted_sum(t.div_scalar(s)));
        check_gradient(&x, |t| weighted_sum(t / s));
    }
}

#[test]
fn gradients_of_chained_unary_ops() {
    // The chain rule through ops that save their input and ops that save their output.
    check_gradient(&points(), |t| weighted_sum(t.tanh().exp().sin().sigmoid().square()));
    check_gradient(&positive(), |t| weighted_sum(t.sqrt().ln().recip().abs()));
}

#[test]
fn gradient_with_run_time_dims() {
    let x = tensor_of(vec![-1.2, 0.4, 2.3, -0.1, 0.9], (5usize,));
    check_gradient(&x, |t| weighted_sum(t.exp().gelu()));
    let x = tensor_of(POINTS.as_flattened().to_vec(), (2usize, 3usize));
    check_gradient(&x, |t| weighted_sum(t.silu().sum::<_, Axis<1>>()));
}

#[test]
fn gradients_of_binary_ops() {
    let (x, y) = (points(), other());
    check_gradient2(&x, &y, |a, b| weighted_sum(a.add(b).square()));
    check_gradient2(&x, &y, |a, b| weighted_sum((a + b).square()));
    check_gradient2(&x, &y, |a, b| weighted_sum(a.sub(b).square()));
    check_gradient2(&x, &y, |a, b| weighted_sum((a - b).square()));
    check_gradient2(&x, &y, |a, b| weighted_sum(a.mul(b)));
    check_gradient2(&x, &y, |a, b| weighted_sum(a * b));
    check_gradient2(&x, &y, |a, b| weighted_sum(a.div(b)));
    check_gradient2(&x, &y, |a, b| weighted_sum(a / b));
    check_gradient2(&x, &y, |a, b| weighted_sum(a.maximum(b)));
    check_gradient2(&x, &y, |a, b| weighted_sum(a.minimum(b)));
    // The operands swapped: dy is not dx with the arguments exchanged for sub/div.
    check_gradient2(&y, &x, |a, b| weighted_sum(a / b));
    check_gradient2(&y, &x, |a, b| weighted_sum(a - b));
}

#[test]
fn gradients_of_sum_and_mean() {
    let x = test_device().tensor([[[0.3f64, -1.2, 2.0, 0.7], [1.1, -0.4, 0.9, -2.2], [0.5, 1.6, -0.8, 0.05]]; 2]);
    let x = x.sin(); // make the two halves differ
    check_gradient(&x, |t| t.square().sum::<Rank0, _>());
    check_gradient(&x, |t| t.square().mean::<Rank0, _>());
    check_gradient(&x, |t| weighted_sum(t.sum::<_, Axis<0>>()));
    check_gradient(&x, |t| weighted_sum(t.sum::<_, Axis<1>>()));
    check_gradient(&x, |t| weighted_sum(t.sum::<_, Axis<2>>()));
    check_gradient(&x, |t| weighted_sum(t.sum::<_, Axes2<0, 2>>()));
    check_gradient(&x, |t| weighted_sum(t.mean::<_, Axis<1>>()));
    check_gradient(&x, |t| weighted_sum(t.mean::<_, Axes2<1, 2>>()));
    // Hand derivation: d mean(x) / dx_i = 1 / 24.
    let g = analytic_gradient(&x, |t| t.mean::<Rank0, _>());
    assert_close(&g, &[1.0 / 24.0; 24], 1e-15, 0.0, "d mean / dx");
}

// ---------------------------------------------------------------------------------
// Derivatives at kinks, by hand (PyTorch's conventions)
// ---------------------------------------------------------------------------------

/// The gradient of `Σ f(x)` at each element of `inputs` (a plain sum: each element's
/// gradient is f'(x_i)).
fn derivative(inputs: &[f64], f: impl Fn(Traced<(usize,)>) -> Traced<(usize,)>) -> Vec<f64> {
    let x: V64 = test_device().tensor(inputs.to_vec());
    let loss = f(x.clone().traced(x.alloc_grads())).sum::<Rank0, _>();
    loss.backward().get(&x).as_vec()
}

#[test]
fn abs_derivative_at_zero_is_zero() {
    // abs'(x) = sign(x), and 0 at 0 (also at -0) and at NaN: torch 2.15 gives
    // x.abs().backward() -> [-1, 0, 0, 1, 0] for [-2, 0, -0, 3, nan].
    assert_eq!(
        derivative(&[-2.0, 0.0, -0.0, 3.0, f64::NAN], |t| t.abs()),
        [-1.0, 0.0, 0.0, 1.0, 0.0]
    );
}

#[test]
fn relu_derivative_at_zero_is_zero() {
    // relu'(x) = 1 for x > 0, 0 for x ≤ 0; at NaN 1, because torch's threshold_backward
    // zeroes only where the output is <= 0, which NaN is not.
    assert_eq!(
        derivative(&[-1.0, 0.0, -0.0, 1e-300, 2.0, f64::NAN], |t| t.relu()),
        [0.0, 0.0, 0.0, 1.0, 1.0, 1.0]
    );
}

#[test]
fn leaky_relu_derivative_at_zero_is_the_slope() {
    // leaky_relu'(x) = 1 for x > 0, slope for x ≤ 0 (including 0).
    assert_eq!(derivative(&[-1.0, 0.0, 2.0], |t| t.leaky_relu(0.25)), [0.25, 0.25, 1.0]);
}

#[test]
fn clamp_derivative_is_one_strictly_inside_the_interval() {
    // clamp(x, -1, 2)' = 1 for -1 < x < 2, 0 at both bounds, outside, and at NaN: what
    // torch 2.15 gives (x.clamp(0., 1.) on [-1, 0, 0.5, 1, 2] backprops [0, 0, 1, 0, 0]).
    let g = derivative(&[-1.5, -1.0, 0.0, 2.0, 2.5, f64::NAN], |t| t.clamp(-1.0, 2.0));
    assert_eq!(g, [0.0, 0.0, 1.0, 0.0, 0.0, 0.0]);
    // A degenerate interval [0, 0]: no interior, so 0 everywhere.
    assert_eq!(derivative(&[-0.1, 0.0, 0.1], |t| t.clamp(0.0, 0.0)), [0.0, 0.0, 0.0]);
}

#[test]
fn maximum_and_minimum_split_ties_equally() {
    // d max(x, y)/dx = 1 where x > y, 0.5 where x == y, 0 where x < y; dy the mirror.
    let dev = test_device();
    let x: V64 = dev.tensor(vec![1.0, 2.0, 3.0, 0.0]);
    let y: V64 = dev.tensor(vec![2.0, 2.0, 1.0, -0.0]);
    let loss = x.leaky_trace().maximum(y.leaky_trace()).sum::<Rank0, _>();
    let g = loss.backward();
    assert_eq!(g.get(&x).as_vec(), [0.0, 0.5, 1.0, 0.5]);
    assert_eq!(g.get(&y).as_vec(), [1.0, 0.5, 0.0, 0.5]);

    let loss = x.leaky_trace().minimum(y.leaky_trace()).sum::<Rank0, _>();
    let g = loss.backward();
    assert_eq!(g.get(&x).as_vec(), [1.0, 0.5, 0.0, 0.5]);
    assert_eq!(g.get(&y).as_vec(), [0.0, 0.5, 1.0, 0.5]);
}

#[test]
fn maximum_and_minimum_send_the_whole_gradient_to_both_at_nan() {
    // torch 2.15: maximum(a, b).sum().backward() with a = [1, nan], b = [nan, 1] gives
    // a.grad = b.grad = [1, 1]; neither a < b nor a == b holds, so nothing is masked.
    let dev = test_device();
    let x: V64 = dev.tensor(vec![1.0, f64::NAN]);
    let y: V64 = dev.tensor(vec![f64::NAN, 1.0]);
    for use_maximum in [true, false] {
        let (a, b) = (x.leaky_trace(), y.leaky_trace());
        let out = if use_maximum { a.maximum(b) } else { a.minimum(b) };
        let g = out.sum::<Rank0, _>().backward();
        assert_eq!(g.get(&x).as_vec(), [1.0, 1.0]);
        assert_eq!(g.get(&y).as_vec(), [1.0, 1.0]);
    }
}

#[test]
fn maximum_of_a_tensor_with_itself_passes_the_full_gradient() {
    // max(x, x) = x: the two halves of the tie add up to 1.
    let x: V64 = test_device().tensor(vec![-1.0, 4.0]);
    let t = x.leaky_trace();
    let g = t.clone().maximum(t).sum::<Rank0, _>().backward();
    assert_eq!(g.get(&x).as_vec(), [1.0, 1.0]);
}

#[test]
fn pow_with_exponent_zero_has_zero_derivative() {
    // d x^0 / dx = 0 everywhere, also at x = 0 where 0 · 0^-1 would be NaN.
    assert_eq!(derivative(&[-2.0, 0.0, 3.0], |t| t.powf(0.0)), [0.0, 0.0, 0.0]);
    assert_eq!(derivative(&[-2.0, 0.0, 3.0], |t| t.powi(0)), [0.0, 0.0, 0.0]);
    // Other exponents at 0 (p · 0^(p-1)): 2·0 = 0; 1·0^0 = 1; 0.5·0^-0.5 = inf.
    assert_eq!(derivative(&[0.0], |t| t.powf(2.0)), [0.0]);
    assert_eq!(derivative(&[0.0], |t| t.powf(1.0)), [1.0]);
    assert_eq!(derivative(&[0.0], |t| t.powi(1)), [1.0]);
    assert_eq!(derivative(&[0.0], |t| t.powf(0.5)), [f64::INFINITY]);
    // powi(-2)' = -2 x^-3: at 2, -0.25; powi(3)' at -2 = 3·4 = 12.
    assert_eq!(derivative(&[2.0], |t| t.powi(-2)), [-0.25]);
    assert_eq!(derivative(&[-2.0], |t| t.powi(3)), [12.0]);
}

#[test]
fn sqrt_derivative_at_zero_is_infinite() {
    // sqrt'(x) = 1 / (2 sqrt(x)): +inf at 0, 0.25 at 4.
    assert_eq!(derivative(&[0.0, 4.0], |t| t.sqrt()), [f64::INFINITY, 0.25]);
}

#[test]
fn ln_derivative_is_the_reciprocal() {
    // ln'(x) = 1/x, also where ln itself is NaN or -inf (as PyTorch computes it).
    assert_eq!(
        derivative(&[2.0, 0.5, -4.0, 0.0], |t| t.ln()),
        [0.5, 2.0, -0.25, f64::INFINITY]
    );
}

#[test]
fn nans_to_derivative_is_zero_at_nan() {
    // nans_to'(x) = 0 where x is NaN, 1 elsewhere (also at ±inf).
    let g = derivative(&[1.0, NAN, -3.0, f64::INFINITY], |t| t.nans_to(0.0));
    assert_eq!(g, [1.0, 0.0, 1.0, 1.0]);
}

#[test]
fn softplus_derivative_at_and_beyond_the_threshold() {
    // softplus'(x) = sigmoid(beta·x) while beta·x ≤ threshold, 1 above it.
    let g = derivative(&[20.0, 20.5, 0.0, -30.0], |t| t.softplus());
    assert_close(
        &g,
        &[sigmoid_ref(20.0), 1.0, 0.5, sigmoid_ref(-30.0)],
        1e-15,
        0.0,
        "softplus'",
    );
    let g = derivative(&[5.0, 5.5], |t| t.softplus_with(2.0, 10.0));
    assert_close(&g, &[sigmoid_ref(10.0), 1.0], 1e-15, 0.0, "softplus_with(2, 10)'");
}

#[test]
fn saturating_derivatives_do_not_become_nan() {
    // sigmoid'(x) = s(1 - s) → 0, tanh' = 1 - tanh² → 0, exp'(-800) = 0, silu'(800) = 1.
    let g = derivative(&[-800.0, 800.0], |t| t.sigmoid());
    assert_eq!(g, [0.0, 0.0]);
    let g = derivative(&[-800.0, 800.0], |t| t.tanh());
    assert_eq!(g, [0.0, 0.0]);
    let g = derivative(&[-800.0, 800.0, -30.0], |t| t.silu());
    // silu'(x) = s(x)(1 + x(1 - s(x))); at -30: s ≈ 9.36e-14, so ≈ s·(1 - 30) .
    let s = sigmoid_ref(-30.0);
    assert_close(
        &g,
        &[0.0, 1.0, s * (1.0 - 30.0 * (1.0 - s))],
        1e-12,
        0.0,
        "silu' at extremes",
    );
    // gelu'(x) = Φ(x) + x φ(x): at -30, -30 φ(-30) ≈ -1.4e-194 (Φ(-30) ≈ 5e-198 is
    // lost next to it); at 30, 1.
    let g = derivative(&[-30.0, 30.0], |t| t.gelu());
    let phi = (-450.0f64).exp() / (2.0 * std::f64::consts::PI).sqrt();
    assert_close(&g, &[-30.0 * phi, 1.0], 1e-6, 0.0, "gelu' at ±30");
}

#[test]
fn hand_derived_derivatives() {
    // A few closed forms, independent of the finite-difference check.
    // gelu'(0) = Φ(0) + 0·φ(0) = 0.5; gelu_tanh'(0) = 0.5; silu'(0) = 0.5; sigmoid'(0) = 0.25.
    assert_eq!(derivative(&[0.0], |t| t.gelu()), [0.5]);
    assert_eq!(derivative(&[0.0], |t| t.gelu_tanh()), [0.5]);
    assert_eq!(derivative(&[0.0], |t| t.silu()), [0.5]);
    assert_eq!(derivative(&[0.0], |t| t.sigmoid()), [0.25]);
    // gelu'(1) = Φ(1) + φ(1) = 0.841344746068543 + 0.241970724519143.
    let g = derivative(&[1.0], |t| t.gelu());
    assert_close(&g, &[0.841344746068543 + 0.241970724519143], 1e-14, 0.0, "gelu'(1)");
    // recip'(2) = -1/4; square'(-3) = -6; div_scalar(4)' = 0.25; mul_scalar(-3)' = -3.
    assert_eq!(derivative(&[2.0], |t| t.recip()), [-0.25]);
    assert_eq!(derivative(&[-3.0], |t| t.square()), [-6.0]);
    assert_eq!(derivative(&[1.0], |t| t.div_scalar(4.0)), [0.25]);
    assert_eq!(derivative(&[1.0], |t| t.mul_scalar(-3.0)), [-3.0]);
    assert_eq!(derivative(&[1.0], |t| t - 3.0), [1.0]);
    assert_eq!(derivative(&[1.0], |t| -t), [-1.0]);
}

// ---------------------------------------------------------------------------------
// Dropout
// ---------------------------------------------------------------------------------

fn normal_input(n: usize, seed: u64) -> V64 {
    // Nonzero values, so that a zero in the output can only come from the mask.
    let v: Vec<f64> = weights(n, seed).into_iter().map(|w| w * 3.0).collect();
    test_device().tensor(v)
}

#[test]
fn dropout_is_deterministic_given_the_seed() {
    let ones = |seed: u64| -> Tensor<Rank1<1000>, f64, TestDevice> { seeded_test_device(seed).ones() };
    let a = ones(42).dropout(0.5).as_vec();
    let b = ones(42).dropout(0.5).as_vec();
    let c = ones(43).dropout(0.5).as_vec();
    assert_eq!(a, b, "same seed, same mask");
    assert_ne!(a, c, "another seed, another mask");
    // Two calls on one device draw different masks.
    let dev = seeded_test_device(42);
    let y: Tensor<Rank1<1000>, f64, TestDevice> = dev.ones();
    assert_ne!(y.clone().dropout(0.5).as_vec(), y.dropout(0.5).as_vec());
}

#[test]
fn dropout_zeroes_about_p_and_scales_the_rest() {
    let p = 0.3;
    let n = 10_000;
    let x = normal_input(n, 11);
    let xv = x.as_vec();
    let dev = seeded_test_device(5);
    let y = dev.zeros_like(&(n,)).add(x).dropout(p).as_vec();
    let zeros = y.iter().filter(|&&v| v == 0.0).count();
    // Binomial(10 000, 0.3): mean 3000, σ ≈ 45.8; allow 5σ.
    assert!((2771..=3229).contains(&zeros), "{zeros} zeros of {n} for p = {p}");
    for (i, (&yi, &xi)) in y.iter().zip(&xv).enumerate() {
        if yi != 0.0 {
            assert!(
                is_close(yi, xi / (1.0 - p), 1e-15, 0.0),
                "element {i}: {yi} vs {xi} / 0.7"
            );
        }
    }
}

#[test]
fn dropout_gradient_is_the_scaled_mask() {
    let p = 0.3;
    let dev = seeded_test_device(9);
    let x: Tensor<Rank2<20, 30>, f64, TestDevice> = dev.sample_normal();
    let grads = x.alloc_grads();
    let y = x.clone().traced(grads).dropout(p);
    let kept: Vec<bool> = y.as_vec().iter().map(|&v| v != 0.0).collect();
    assert!(kept.iter().any(|&k| k) && kept.iter().any(|&k| !k));
    let g = weighted_sum(y).backward().get(&x).as_vec();
    // d Σ w_i m_i x_i / dx_i = w_i m_i, with m_i = 1/(1-p) if kept, else 0.
    let w = weights(600, DEFAULT_WEIGHT_SEED);
    let expected: Vec<f64> = kept
        .iter()
        .zip(&w)
        .map(|(&k, &w)| if k { w / (1.0 - p) } else { 0.0 })
        .collect();
    assert_close(&g, &expected, 1e-15, 0.0, "dropout gradient");
}

#[test]
fn dropout_with_p_zero_is_the_identity() {
    let x = normal_input(500, 3);
    let y = x.clone().dropout(0.0);
    assert_eq!(y.as_vec(), x.as_vec());
    let g = weighted_sum(x.clone().traced(x.alloc_grads()).dropout(0.0))
        .backward()
        .get(&x)
        .as_vec();
    assert_eq!(g, weights(500, DEFAULT_WEIGHT_SEED));
}

#[test]
fn dropout_with_p_one_zeroes_everything() {
    let x = normal_input(500, 4);
    assert_eq!(x.clone().dropout(1.0).as_vec(), vec![0.0; 500]);
    let g = weighted_sum(x.clone().traced(x.alloc_grads()).dropout(1.0))
        .backward()
        .get(&x)
        .as_vec();
    assert_eq!(g, vec![0.0; 500]);
    // No NaN from 0 · inf (the scale 1/(1-p) is infinite at p = 1), also in f32 and
    // for the largest finite values.
    let f32x: Tensor<Rank1<4>, f32, TestDevice> = test_device().tensor([1.0, -2.0, 3e38, 0.0]);
    assert_eq!(f32x.dropout(1.0).array(), [0.0; 4]);
}

#[test]
fn dropout_f32() {
    let p = 0.25;
    let x: Tensor<Rank1<4000>, f32, TestDevice> = seeded_test_device(1).sample_normal();
    let xv = x.as_vec();
    let y = x.dropout(p).as_vec();
    let zeros = y.iter().filter(|&&v| v == 0.0).count();
    // Binomial(4000, 0.25): mean 1000, σ ≈ 27.4; allow 5σ.
    assert!((863..=1137).contains(&zeros), "{zeros} zeros");
    for (&yi, &xi) in y.iter().zip(&xv) {
        if yi != 0.0 {
            assert!(
                is_close(yi as f64, (xi / 0.75) as f64, 3e-7, 0.0),
                "{yi} vs {xi} / 0.75"
            );
        }
    }
}

#[test]
fn dropout_rejects_probabilities_outside_zero_one() {
    for p in [1.5, -0.1, NAN, f64::INFINITY] {
        let x: V64 = test_device().tensor(vec![1.0, 2.0]);
        match x.try_dropout(p) {
            Err(Error::InvalidArgument { op, message }) => {
                assert_eq!(op, "dropout");
                assert!(
                    message.contains(&format!("{p}")),
                    "message {message:?} should name p = {p}"
                );
            }
            other => panic!("p = {p}: expected InvalidArgument, got {other:?}"),
        }
    }
}

#[test]
#[should_panic(expected = "dropout: probability must be in [0, 1], got 1.5")]
fn dropout_panics_with_the_error_text() {
    let x: V64 = test_device().tensor(vec![1.0]);
    let _ = x.dropout(1.5);
}

// ---------------------------------------------------------------------------------
// Comparisons and choose
// ---------------------------------------------------------------------------------

const CMP_L: &[f64] = &[1.0, 2.0, 3.0, NAN, 1.0, NAN, -0.0, f64::INFINITY, -5.0];
const CMP_R: &[f64] = &[1.0, 3.0, 2.0, 1.0, NAN, NAN, 0.0, f64::INFINITY, f64::NEG_INFINITY];

fn bools<T>(t: Tensor<(usize,), bool, TestDevice, T>) -> Vec<bool> {
    t.as_vec()
}

#[test]
fn comparisons_of_tensors() {
    let dev = test_device();
    let (l, r): (V64, V64) = (dev.tensor(CMP_L.to_vec()), dev.tensor(CMP_R.to_vec()));
    let reference =
        |f: fn(&f64, &f64) -> bool| -> Vec<bool> { CMP_L.iter().zip(CMP_R).map(|(a, b)| f(a, b)).collect() };
    assert_eq!(bools(l.eq(&r)), reference(|a, b| a == b));
    assert_eq!(bools(l.ne(&r)), reference(|a, b| a != b));
    assert_eq!(bools(l.lt(&r)), reference(|a, b| a < b));
    assert_eq!(bools(l.le(&r)), reference(|a, b| a <= b));
    assert_eq!(bools(l.gt(&r)), reference(|a, b| a > b));
    assert_eq!(bools(l.ge(&r)), reference(|a, b| a >= b));
    // Spelled out: NaN is unequal to everything, itself included; -0 == 0.
    assert_eq!(
        bools(l.eq(&r)),
        [true, false, false, false, false, false, true, true, false]
    );
    assert_eq!(
        bools(l.ne(&r)),
        [false, true, true, true, true, true, false, false, true]
    );
    assert_eq!(
        bools(l.le(&r)),
        [true, true, false, false, false, false, true, true, false]
    );

    // f32, and on traced tensors (comparisons read values, whatever the tape).
    let narrow = |v: &[f64]| -> V32 { dev.tensor(v.iter().map(|&v| v as f32).collect::<Vec<f32>>()) };
    let (l32, r32) = (narrow(CMP_L), narrow(CMP_R));
    assert_eq!(bools(l32.gt(&r32)), reference(|a, b| a > b));
    assert_eq!(bools(l.leaky_trace().lt(&r.leaky_trace())), reference(|a, b| a < b));
}

#[test]
fn comparisons_with_a_scalar() {
    let x: V64 = test_device().tensor(CMP_L.to_vec());
    for s in [2.0, NAN, 0.0, f64::INFINITY] {
        let reference = |f: fn(&f64, &f64) -> bool| -> Vec<bool> { CMP_L.iter().map(|a| f(a, &s)).collect() };
        assert_eq!(bools(x.eq_scalar(s)), reference(|a, b| a == b), "eq {s}");
        assert_eq!(bools(x.ne_scalar(s)), reference(|a, b| a != b), "ne {s}");
        assert_eq!(bools(x.lt_scalar(s)), reference(|a, b| a < b), "lt {s}");
        assert_eq!(bools(x.le_scalar(s)), reference(|a, b| a <= b), "le {s}");
        assert_eq!(bools(x.gt_scalar(s)), reference(|a, b| a > b), "gt {s}");
        assert_eq!(bools(x.ge_scalar(s)), reference(|a, b| a >= b), "ge {s}");
    }
    // Against NaN every comparison is false but `ne`.
    assert_eq!(bools(x.lt_scalar(NAN)), [false; 9]);
    assert_eq!(bools(x.ne_scalar(NAN)), [true; 9]);
    // Spelled out for 2.0.
    assert_eq!(
        bools(x.gt_scalar(2.0)),
        [false, false, true, false, false, false, false, true, false]
    );
    let x32: Tensor<Rank2<1, 3>, f32, TestDevice> = test_device().tensor([[1.0, 2.0, 3.0]]);
    assert_eq!(x32.ge_scalar(2.0).array(), [[false, true, true]]);
}

#[test]
fn choose_forward() {
    let dev = test_device();
    let a = dev.tensor([[1.0f64, 2.0, 3.0], [4.0, 5.0, 6.0]]);
    let b = dev.tensor([[-1.0f64, -2.0, -3.0], [-4.0, -5.0, -6.0]]);
    let mask = dev.tensor([[true, false, true], [false, false, true]]);
    assert_eq!(
        mask.choose(a.clone(), b.clone()).array(),
        [[1.0, -2.0, 3.0], [-4.0, -5.0, 6.0]]
    );
    // torch.where(x > 0, x, 0) as relu.
    let x: V64 = dev.tensor(vec![-1.0, 0.0, 2.0, NAN]);
    let y = x.gt_scalar(0.0).choose(x.clone(), dev.zeros_like(x.shape()));
    assert_eq!(y.as_vec(), [0.0, 0.0, 2.0, 0.0]);
    // NaN in the branch not picked does not leak.
    let x: V64 = dev.tensor(vec![NAN, 1.0]);
    let m: Tensor<(usize,), bool, TestDevice> = dev.tensor(vec![false, true]);
    assert_eq!(m.choose(x.clone(), dev.full_like(x.shape(), 7.0)).as_vec(), [7.0, 1.0]);
    // f32.
    let m32 = dev.tensor([true, false]);
    assert_eq!(
        m32.choose(dev.tensor([1.0f32, 2.0]), dev.tensor([3.0f32, 4.0])).array(),
        [1.0, 4.0]
    );
}

#[test]
fn choose_gradient_reaches_both_branches() {
    let dev = test_device();
    let (a, b) = (points(), other());
    let mask = dev.tensor([[true, false, true], [false, true, false]]);
    // Finite differences, both operands, on separate and on shared tapes.
    let (ga, gb) = check_gradient2(&a, &b, |x, y| weighted_sum(mask.choose(x.exp(), y.sin())));
    // By hand: d/da_i = w_i e^(a_i) where picked, 0 elsewhere; d/db_i = w_i cos(b_i)
    // where not picked.
    let w = weights(6, DEFAULT_WEIGHT_SEED);
    let m = mask.as_vec();
    let (av, bv) = (a.as_vec(), b.as_vec());
    let ea: Vec<f64> = (0..6).map(|i| if m[i] { w[i] * av[i].exp() } else { 0.0 }).collect();
    let eb: Vec<f64> = (0..6).map(|i| if m[i] { 0.0 } else { w[i] * bv[i].cos() }).collect();
    assert_close(&ga, &ea, 1e-14, 0.0, "choose: d/d on_true");
    assert_close(&gb, &eb, 1e-14, 0.0, "choose: d/d on_false");

    // One traced branch, one untraced.
    let g = a.leaky_trace();
    let loss = weighted_sum(mask.choose(g, b.clone()));
    let ga = loss.backward().get(&a).as_vec();
    let ea: Vec<f64> = (0..6).map(|i| if m[i] { w[i] } else { 0.0 }).collect();
    assert_eq!(ga, ea);

    // The same tensor in both branches: every element gets the whole gradient.
    check_gradient(&a, |x| weighted_sum(mask.choose(x.clone().square(), x)));
}

// ---------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------

fn vectors() -> (V64, V64) {
    let dev = test_device();
    (
        dev.tensor_from_vec(vec![1.0, 2.0, 3.0], (3,)),
        dev.tensor_from_vec(vec![1.0, 2.0, 3.0, 4.0], (4,)),
    )
}

#[track_caller]
fn assert_shape_mismatch<T: std::fmt::Debug>(result: Result<T, Error>, name: &str) {
    match result {
        Err(e @ Error::ShapeMismatch { .. }) => {
            let Error::ShapeMismatch { op, .. } = &e else {
                unreachable!()
            };
            assert_eq!(*op, name);
            assert_eq!(e.to_string(), format!("{name}: lhs (3,) and rhs (4,) disagree"));
        }
        other => panic!("{name}: expected ShapeMismatch, got {other:?}"),
    }
}

#[test]
fn binary_ops_with_different_run_time_dims_err() {
    let (a, b) = vectors();
    match a.clone().try_add(b.clone()) {
        Err(Error::ShapeMismatch { op, message }) => {
            assert_eq!(op, "add");
            assert_eq!(message, "lhs (3,) and rhs (4,) disagree");
        }
        other => panic!("expected ShapeMismatch, got {other:?}"),
    }
    assert_shape_mismatch(a.clone().try_add(b.clone()), "add");
    assert_shape_mismatch(a.clone().try_sub(b.clone()), "sub");
    assert_shape_mismatch(a.clone().try_mul(b.clone()), "mul");
    assert_shape_mismatch(a.clone().try_div(b.clone()), "div");
    assert_shape_mismatch(a.clone().try_maximum(b.clone()), "maximum");
    assert_shape_mismatch(a.clone().try_minimum(b.clone()), "minimum");
    // Traced operands too, on either side.
    assert_shape_mismatch(a.leaky_trace().try_add(b.clone()), "add");
    assert_shape_mismatch(a.clone().try_mul(b.leaky_trace()), "mul");
}

#[test]
fn comparisons_and_choose_with_different_run_time_dims_err() {
    let (a, b) = vectors();
    assert_shape_mismatch(a.try_lt(&b), "lt");
    assert_shape_mismatch(a.try_eq(&b), "eq");
    assert_shape_mismatch(a.try_ge(&b), "ge");
    let mask = a.gt_scalar(1.0);
    assert_shape_mismatch(mask.try_choose(b.clone(), b.clone()), "choose");
    let mask = b.gt_scalar(1.0);
    match mask.try_choose(b.clone(), a.clone()) {
        Err(Error::ShapeMismatch { op: "choose", message }) => {
            assert_eq!(message, "lhs (4,) and rhs (3,) disagree")
        }
        other => panic!("expected ShapeMismatch, got {other:?}"),
    }
}

#[test]
#[should_panic(expected = "add: lhs (3,) and rhs (4,) disagree")]
fn add_panics_with_the_error_text() {
    let (a, b) = vectors();
    let _ = a + b;
}

#[test]
fn tensor_from_vec_with_the_wrong_length_errs() {
    let dev = test_device();
    match dev.try_tensor_from_vec(vec![1.0f64; 5], (2usize, 3usize)) {
        Err(Error::ShapeMismatch { op, message }) => {
            assert_eq!(op, "tensor_from_vec");
            assert!(message.contains('5') && message.contains('6'), "{message}");
        }
        other => panic!("expected ShapeMismatch, got {other:?}"),
    }
    assert!(dev.try_tensor_from_vec(vec![1.0f32; 7], (Const::<2>, 3usize)).is_err());
    assert!(dev.try_tensor_from_vec(Vec::<f64>::new(), (1usize,)).is_err());
    // The right length is accepted, including zero elements.
    assert_eq!(
        dev.try_tensor_from_vec(vec![1.0f64; 6], (2usize, 3usize))
            .unwrap()
            .dims(),
        [2, 3]
    );
    assert_eq!(
        dev.try_tensor_from_vec(Vec::<f64>::new(), (0usize,)).unwrap().dims(),
        [0]
    );
}

/// A bias broadcast over the leading axes (the row-repeating fast path of the CPU
/// kernels), on either side of every binary op, forward against the element-wise
/// definition and both gradients against finite differences; in f32 too, whose values
/// must match the generic path's bit for bit.
#[test]
fn binary_ops_with_a_row_broadcast_operand() {
    let dev = test_device();
    let x: Tensor<Rank3<2, 3, 4>, f64, TestDevice> = dev.tensor([
        [[0.5, -1.2, 2.0, 0.3], [1.1, -0.4, 0.9, -2.2], [0.7, 1.6, -0.8, 0.05]],
        [[-0.3, 0.8, 1.4, -1.9], [2.3, 0.2, -0.6, 1.0], [-1.1, 0.45, 0.6, -0.7]],
    ]);
    let b: Tensor<Rank1<4>, f64, TestDevice> = dev.tensor([0.9, -0.35, 1.3, 0.6]);
    macro_rules! both_sides {
        ($op:ident, $f:expr) => {{
            let f: fn(f64, f64) -> f64 = $f;
            let bias = || b.clone().broadcast::<Rank3<2, 3, 4>, _>();
            let forward = x.clone().$op(bias()).as_vec();
            let expected: Vec<f64> = x
                .as_vec()
                .iter()
                .enumerate()
                .map(|(i, &v)| f(v, b.as_vec()[i % 4]))
                .collect();
            assert_close(&forward, &expected, 1e-15, 0.0, concat!(stringify!($op), ": x op b"));
            // An lhs nobody else holds is overwritten in place.
            let in_place = (x.clone() * 1.0).$op(bias()).as_vec();
            assert_close(
                &in_place,
                &expected,
                1e-15,
                0.0,
                concat!(stringify!($op), ": x op b in place"),
            );
            let backward = bias().$op(x.clone()).as_vec();
            let expected: Vec<f64> = x
                .as_vec()
                .iter()
                .enumerate()
                .map(|(i, &v)| f(b.as_vec()[i % 4], v))
                .collect();
            assert_close(&backward, &expected, 1e-15, 0.0, concat!(stringify!($op), ": b op x"));
            check_gradient2(&x, &b, |x, b| weighted_sum(x.$op(b.broadcast::<Rank3<2, 3, 4>, _>())));
            check_gradient2(&x, &b, |x, b| weighted_sum(b.broadcast::<Rank3<2, 3, 4>, _>().$op(x)));
            // f32 through the fast path against the same op on a materialised copy.
            let (x32, b32) = (x.to_dtype::<f32>(), b.to_dtype::<f32>());
            let fast = x32.clone().$op(b32.clone().broadcast::<Rank3<2, 3, 4>, _>()).as_vec();
            let copy = x32.$op(b32.broadcast::<Rank3<2, 3, 4>, _>().contiguous()).as_vec();
            assert_eq!(fast, copy, concat!(stringify!($op), ": f32 fast path"));
        }};
    }
    both_sides!(add, |a, b| a + b);
    both_sides!(sub, |a, b| a - b);
    both_sides!(mul, |a, b| a * b);
    both_sides!(div, |a, b| a / b);
    both_sides!(maximum, |a, b| if a.is_nan() || a > b { a } else { b });
}
