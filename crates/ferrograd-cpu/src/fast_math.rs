//! Fast, vectorisable approximations of `exp`, `ln`, `tanh` and the logistic sigmoid
//! for `f32`.
//!
//! Each function is straight-line code (range reduction, a polynomial, bit
//! manipulation and selects; no calls, no branches the compiler keeps), so a loop over a
//! slice compiles to vector instructions. The `*_in_place` forms run that loop compiled
//! for the widest vector unit the CPU has (AVX-512 or AVX2, with fused multiply-adds,
//! detected at run time; SSE2 otherwise); their results may differ from the scalar
//! forms' in the last bit, and the error bounds below hold for both.
//!
//! The functions are always compiled. With the `fast-math` feature the CPU's element-wise
//! `Exp`, `Ln`, `Tanh` and `Sigmoid` ops on `f32` use them instead of the standard
//! library's, which the compiler cannot vectorise (one library call per element). `f64`
//! stays exact: the standard library's functions, feature or not. Softmax, log-softmax
//! and logsumexp already take their exponentials with the polynomial of
//! [`exp`] (restricted to `x ≤ 0`), with or without the feature.
//!
//! The stated maximum relative errors were measured against the standard library's
//! `f64` functions on **every** `f32` in the stated range, by
//! `cargo run --release -p ferrograd-benches --bin fast_math_error` (`-- 1 scalar` for
//! the scalar forms), on an AMD EPYC with AVX-512; `ulp` is the error in units of the
//! last place of the exact result rounded to `f32`, so a correctly rounded function
//! would show 0.5. "Vectorised" is the FMA copy the `*_in_place` forms run there,
//! "scalar" the multiply-then-add forms (as on a CPU without FMA):
//!
//! | function    | range                     | vectorised (FMA)    | scalar              |
//! |-------------|---------------------------|---------------------|---------------------|
//! | [`exp`]     | `[−87.33, 88.72]`         | 8.46e-8 (1.01 ulp)  | 8.16e-8 (0.99 ulp)  |
//! | [`ln`]      | every positive finite     | 8.16e-8 (0.83 ulp)  | 8.12e-8 (0.83 ulp)  |
//! | [`tanh`]    | every finite              | 1.43e-7 (1.33 ulp)  | 1.43e-7 (1.33 ulp)  |
//! | [`sigmoid`] | `[−87.33, f32::MAX]`      | 2.01e-7 (2.83 ulp)  | 2.03e-7 (2.83 ulp)  |
//!
//! The unit tests check every 4099th bit pattern of the same ranges, both forms,
//! against these bounds. Subnormal inputs are handled exactly like normal ones (no
//! flush to zero); subnormal *results* (exp and sigmoid below −87.34) are rounded once
//! from the approximation, so their relative error grows as they lose bits, but their
//! absolute error stays within one subnormal step.

use crate::ops::reduce::{MulAdd, Separate, exp_reduced};

/// `2^k` for `-126 ≤ k ≤ 127`, from its exponent bits.
#[inline(always)]
fn pow2(k: i32) -> f32 {
    f32::from_bits((k.wrapping_add(127) as u32) << 23)
}

#[inline(always)]
fn exp_with<M: MulAdd>(x: f32) -> f32 {
    // Below −104, e^x is under half the smallest subnormal and rounds to 0; above 89 it
    // overflows to +inf. Clamping keeps 2^k representable as two factors.
    let (e, k) = exp_reduced::<M>(x.clamp(-104.0, 89.0)); // NaN passes through
    // k ∈ [−150, 129]: 2^k as two normal factors, so that results near overflow and
    // subnormal results come out right (the last product rounds once).
    let k1 = k >> 1;
    e * pow2(k1) * pow2(k.wrapping_sub(k1))
}

#[inline(always)]
#[allow(clippy::excessive_precision)]
fn ln_with<M: MulAdd>(x: f32) -> f32 {
    const SQRT_HALF: f32 = std::f32::consts::FRAC_1_SQRT_2;
    // Subnormals are scaled into the normal range first (2^23), their exponent corrected.
    let subnormal = x < f32::MIN_POSITIVE;
    let scaled = if subnormal { x * 8_388_608.0 } else { x };
    let bits = scaled.to_bits() as i32;
    let exponent = ((bits >> 23) & 0xff) - 126 - if subnormal { 23 } else { 0 };
    // x = m · 2^exponent with m ∈ [½, 1); then m ∈ [√½, √2) by moving one factor 2.
    let m = f32::from_bits(((bits & 0x007f_ffff) | 0x3f00_0000) as u32);
    let low = m < SQRT_HALF;
    let exponent = exponent - low as i32;
    let f = if low { m + m - 1.0 } else { m - 1.0 };
    let z = f * f;
    // Cephes' polynomial for (ln(1 + f) − f + f²/2) / f³ on f ∈ [√½ − 1, √2 − 1].
    let mut p = 7.037_683_629_2e-2_f32;
    p = M::mul_add(p, f, -1.151_461_031_0e-1);
    p = M::mul_add(p, f, 1.167_699_874_0e-1);
    p = M::mul_add(p, f, -1.242_014_084_6e-1);
    p = M::mul_add(p, f, 1.424_932_278_7e-1);
    p = M::mul_add(p, f, -1.666_805_766_5e-1);
    p = M::mul_add(p, f, 2.000_071_476_5e-1);
    p = M::mul_add(p, f, -2.499_999_399_3e-1);
    p = M::mul_add(p, f, 3.333_333_117_4e-1);
    let e = exponent as f32;
    let mut y = p * f * z;
    y = M::mul_add(e, -2.121_944_4e-4, y);
    y = M::mul_add(z, -0.5, y);
    let value = M::mul_add(e, 0.693_359_375, f + y);
    // ln(+inf) = +inf, ln(±0) = −inf, NaN below 0 and for NaN.
    let value = if x == f32::INFINITY { x } else { value };
    let value = if x == 0.0 { f32::NEG_INFINITY } else { value };
    if x >= 0.0 { value } else { f32::NAN }
}

#[inline(always)]
#[allow(clippy::excessive_precision)]
fn tanh_with<M: MulAdd>(x: f32) -> f32 {
    let a = x.abs();
    // Near 0: Cephes' odd polynomial, x + x³·p(x²).
    let z = x * x;
    let mut p = -5.704_988_727_45e-3_f32;
    p = M::mul_add(p, z, 2.063_908_879_54e-2);
    p = M::mul_add(p, z, -5.373_971_555_31e-2);
    p = M::mul_add(p, z, 1.333_144_220_36e-1);
    p = M::mul_add(p, z, -3.333_328_194_22e-1);
    let small = M::mul_add(p * z, x, x);
    // Elsewhere 1 − 2 / (e^{2|x|} + 1) with the sign of x: saturates to exactly ±1
    // once e^{2|x|} is large (and is +inf), and stays NaN for NaN.
    let e = exp_with::<M>(a + a);
    let large = 1.0 - 2.0 / (e + 1.0);
    // The sign of x on both (the polynomial's `p·z·x + x` turns −0 into +0).
    (if a < 0.625 { small } else { large }).copysign(x)
}

#[inline(always)]
fn sigmoid_with<M: MulAdd>(x: f32) -> f32 {
    // e^{−|x|} ≤ 1 never overflows; for x < 0, σ(x) = e^x / (1 + e^x) keeps the
    // relative precision of tiny results that 1 / (1 + e^{−x}) would lose.
    let e = exp_with::<M>(-x.abs());
    let r = 1.0 / (1.0 + e);
    if x >= 0.0 { r } else { e * r }
}

/// `e^x`, approximately.
///
/// Range reduction `x = k·ln 2 + r`, `|r| ≤ ln 2 / 2`, a degree-6 minimax polynomial for
/// `e^r`, and `2^k` assembled from exponent bits.
///
/// Maximum relative error over every `f32` in `[−87.33, 88.72]` (normal results):
/// 8.46e-8, 1.01 ulp (see the [module docs](self) for how it was measured and for
/// both forms). Results below
/// `f32::MIN_POSITIVE` (x < −87.34) are subnormal, rounded once from the approximation:
/// their absolute error is at most one subnormal step; below −103.98 the result is 0.
/// x ≥ 88.73 gives `+inf`, `−inf` gives 0, NaN gives NaN.
#[inline]
pub fn exp(x: f32) -> f32 {
    exp_with::<Separate>(x)
}

/// Natural logarithm, approximately.
///
/// `x = m · 2^e` with `m ∈ [√½, √2)` split from the bits (subnormals scaled by 2^23
/// first, so they are handled exactly like normals), `ln m` by a degree-9 polynomial in
/// `m − 1`, plus `e · ln 2` in two parts.
///
/// Maximum relative error over every positive finite `f32` (subnormals included):
/// 8.16e-8, 0.83 ulp. `ln(1) = 0` exactly; `ln(±0) = −inf`, `ln(+inf) = +inf`,
/// NaN below 0 and for NaN.
#[inline]
pub fn ln(x: f32) -> f32 {
    ln_with::<Separate>(x)
}

/// Hyperbolic tangent, approximately.
///
/// An odd polynomial for `|x| < 0.625`, else `1 − 2 / (e^{2|x|} + 1)` through [`exp`]
/// with the sign of `x`.
///
/// Maximum relative error over every finite `f32`: 1.43e-7, 1.33 ulp. `−0` gives
/// `−0`; it saturates to exactly `±1` for `|x| ≥ 9.1` and at `±inf`; NaN gives NaN.
#[inline]
pub fn tanh(x: f32) -> f32 {
    tanh_with::<Separate>(x)
}

/// The logistic sigmoid `1 / (1 + e^{−x})`, approximately.
///
/// Through [`exp`] of `−|x|` (never overflows), as `1 / (1 + e)` for `x ≥ 0` and
/// `e / (1 + e)` below 0.
///
/// Maximum relative error over every `f32` in `[−87.33, f32::MAX]` (normal results):
/// 2.03e-7, 2.83 ulp (scalar; 2.01e-7 vectorised). Below −87.34 the result is
/// subnormal, with an absolute error of at most one subnormal step; `−inf` gives 0,
/// `+inf` gives 1, NaN gives NaN.
#[inline]
pub fn sigmoid(x: f32) -> f32 {
    sigmoid_with::<Separate>(x)
}

/// Defines `pub fn $name(values: &mut [f32])` applying `$f` to every element, compiled
/// for the baseline target, for AVX2 + FMA and for AVX-512, and running the widest copy
/// the CPU supports (as `multiversion!` in `ops/reduce.rs`, for a fixed `f32`).
macro_rules! vectorised {
    ($(#[$meta:meta])* $name:ident = $f:ident) => {
        $(#[$meta])*
        pub fn $name(values: &mut [f32]) {
            #[inline(always)]
            fn body<M: MulAdd>(values: &mut [f32]) {
                for v in values.iter_mut() {
                    *v = $f::<M>(*v);
                }
            }

            #[cfg(target_arch = "x86_64")]
            #[target_feature(enable = "avx2,fma")]
            fn avx2(values: &mut [f32]) {
                body::<crate::ops::reduce::Fused>(values)
            }

            #[cfg(target_arch = "x86_64")]
            #[target_feature(enable = "avx512f,fma")]
            fn avx512(values: &mut [f32]) {
                body::<crate::ops::reduce::Fused>(values)
            }

            #[cfg(target_arch = "x86_64")]
            {
                use std::arch::is_x86_feature_detected as has;
                if has!("avx512f") && has!("fma") {
                    // SAFETY: `avx512` needs only AVX-512F and FMA, both checked above.
                    return unsafe { avx512(values) };
                }
                if has!("avx2") && has!("fma") {
                    // SAFETY: `avx2` needs only AVX2 and FMA, both checked above.
                    return unsafe { avx2(values) };
                }
            }
            body::<Separate>(values)
        }
    };
}

vectorised! {
    /// [`exp`] of every element, in place, vectorised for the CPU at hand.
    exp_in_place = exp_with
}
vectorised! {
    /// [`ln`] of every element, in place, vectorised for the CPU at hand.
    ln_in_place = ln_with
}
vectorised! {
    /// [`tanh`] of every element, in place, vectorised for the CPU at hand.
    tanh_in_place = tanh_with
}
vectorised! {
    /// [`sigmoid`] of every element, in place, vectorised for the CPU at hand.
    sigmoid_in_place = sigmoid_with
}

/// The in-place approximation that replaces the element-wise op `Op` on dtype `E`, when
/// there is one: `Exp`, `Ln`, `Tanh` and `Sigmoid` on `f32`. The type tests are
/// constants after monomorphisation, so other ops and `f64` pay nothing.
#[cfg(feature = "fast-math")]
pub(crate) fn unary_in_place<Op: 'static, E: 'static>() -> Option<fn(&mut Vec<E>)> {
    use ferrograd_device::ops::elementwise::{Exp, Ln, Sigmoid, Tanh};
    use std::any::{Any, TypeId};

    // A Vec, not a slice: only a sized type can be downcast through `Any`.
    #[allow(clippy::ptr_arg)]
    fn apply<E: 'static>(values: &mut Vec<E>, f: fn(&mut [f32])) {
        // Only reached for E = f32 (checked below), so the downcast succeeds.
        if let Some(values) = (values as &mut dyn Any).downcast_mut::<Vec<f32>>() {
            f(values);
        }
    }
    if TypeId::of::<E>() != TypeId::of::<f32>() {
        return None;
    }
    let op = TypeId::of::<Op>();
    if op == TypeId::of::<Exp>() {
        Some(|v| apply(v, exp_in_place))
    } else if op == TypeId::of::<Ln>() {
        Some(|v| apply(v, ln_in_place))
    } else if op == TypeId::of::<Tanh>() {
        Some(|v| apply(v, tanh_in_place))
    } else if op == TypeId::of::<Sigmoid>() {
        Some(|v| apply(v, sigmoid_in_place))
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every 4099th `f32` bit pattern (about a million inputs over all of them, a prime
    /// stride so that every exponent and many mantissa patterns are hit).
    const STRIDE: usize = 4099;

    /// The largest relative error of `fast` against `exact` (computed in f64) over the
    /// sampled inputs in `[low, high]`, both signs.
    fn worst(fast: impl Fn(f32) -> f32, exact: impl Fn(f64) -> f64, low: f32, high: f32) -> (f64, f32) {
        let mut worst = (0.0, 0.0);
        for bits in (0..=u32::MAX).step_by(STRIDE) {
            let x = f32::from_bits(bits);
            if !(x >= low && x <= high) {
                continue;
            }
            let (got, want) = (fast(x) as f64, exact(x as f64));
            // Equal covers the infinities (ln 0 = −inf) that a difference turns into NaN.
            let error = if got == want {
                0.0
            } else if want == 0.0 {
                if got == 0.0 { 0.0 } else { f64::INFINITY }
            } else {
                ((got - want) / want).abs()
            };
            if error > worst.0 || error.is_nan() {
                worst = (error, x);
            }
        }
        worst
    }

    /// The bounds stated in the docs, for the scalar (multiply-then-add) and the fused
    /// variants alike.
    fn check_bounds<M: MulAdd>() {
        let bounds = [
            ("exp", worst(exp_with::<M>, f64::exp, -87.33, 88.72), 8.5e-8),
            ("ln", worst(ln_with::<M>, f64::ln, 0.0, f32::MAX), 8.2e-8),
            ("tanh", worst(tanh_with::<M>, f64::tanh, f32::MIN, f32::MAX), 1.43e-7),
            (
                "sigmoid",
                worst(sigmoid_with::<M>, |x| 1.0 / (1.0 + (-x).exp()), -87.33, f32::MAX),
                2.04e-7,
            ),
        ];
        for (name, (error, x), bound) in bounds {
            assert!(
                error <= bound,
                "{name}: relative error {error:e} at {x:e} exceeds {bound:e}"
            );
        }
    }

    #[test]
    fn sampled_errors_are_within_the_stated_bounds() {
        check_bounds::<Separate>();
        // Outside an FMA build `mul_add` is a library call: slow, but as exact.
        check_bounds::<crate::ops::reduce::Fused>();
    }

    #[test]
    fn edge_cases() {
        assert!(exp(f32::NAN).is_nan() && ln(f32::NAN).is_nan());
        assert!(tanh(f32::NAN).is_nan() && sigmoid(f32::NAN).is_nan());
        assert_eq!(exp(0.0), 1.0);
        assert_eq!(exp(f32::NEG_INFINITY), 0.0);
        assert_eq!(exp(-104.0), 0.0);
        assert_eq!(exp(88.73), f32::INFINITY);
        assert_eq!(exp(f32::INFINITY), f32::INFINITY);
        assert_eq!(exp(f32::MAX), f32::INFINITY);
        // Just below overflow, and a subnormal result.
        assert!(exp(88.72).is_finite() && exp(88.72) > 3.3e38);
        let sub = exp(-100.0);
        assert!(sub > 0.0 && sub < f32::MIN_POSITIVE);
        assert!((sub as f64 - (-100.0f64).exp()).abs() <= f32::from_bits(1) as f64);

        assert_eq!(ln(1.0), 0.0);
        assert_eq!(ln(0.0), f32::NEG_INFINITY);
        assert_eq!(ln(-0.0), f32::NEG_INFINITY);
        assert_eq!(ln(f32::INFINITY), f32::INFINITY);
        assert!(ln(-1.0).is_nan() && ln(f32::NEG_INFINITY).is_nan());
        let tiny = f32::from_bits(1); // the smallest subnormal, 2^−149
        assert!(((ln(tiny) as f64 - (tiny as f64).ln()) / (tiny as f64).ln()).abs() < 1.2e-7);

        assert_eq!(tanh(-0.0).to_bits(), (-0.0f32).to_bits());
        assert_eq!(tanh(0.0).to_bits(), 0);
        assert_eq!(tanh(9.1), 1.0);
        assert_eq!(tanh(10.0), 1.0);
        assert_eq!(tanh(-10.0), -1.0);
        assert_eq!(tanh(f32::INFINITY), 1.0);
        assert_eq!(tanh(f32::NEG_INFINITY), -1.0);

        assert_eq!(sigmoid(0.0), 0.5);
        assert_eq!(sigmoid(-0.0), 0.5);
        assert_eq!(sigmoid(f32::INFINITY), 1.0);
        assert_eq!(sigmoid(f32::NEG_INFINITY), 0.0);
        assert_eq!(sigmoid(100.0), 1.0);
        assert!(sigmoid(-100.0) > 0.0);
    }

    #[test]
    fn slice_forms_agree_with_the_scalar_forms_within_an_ulp() {
        let xs: Vec<f32> = (0..1000).map(|i| (i as f32 - 500.0) * 0.173).collect();
        type Pair = (fn(&mut [f32]), fn(f32) -> f32);
        let pairs: [Pair; 4] = [
            (exp_in_place, exp),
            (ln_in_place, ln),
            (tanh_in_place, tanh),
            (sigmoid_in_place, sigmoid),
        ];
        for (slice, scalar) in pairs {
            let mut ys = xs.clone();
            slice(&mut ys);
            for (&x, &y) in xs.iter().zip(&ys) {
                let s = scalar(x);
                let same = (y.is_nan() && s.is_nan()) || y == s || (y - s).abs() <= 2.0 * f32::EPSILON * s.abs();
                assert!(same, "at {x}: {y} vs {s}");
            }
        }
    }
}

#[cfg(all(test, feature = "fast-math"))]
mod kernel_tests {
    use super::*;
    use crate::Cpu;
    use ferrograd_device::ops::elementwise::{Exp, Ln, Sigmoid, Tanh, UnaryFn, UnaryKernel};
    use ferrograd_device::view::{GradientSlot, InputView, OptionalView};
    use ferrograd_device::{Input, Layout, Storage};

    /// The op's forward through the CPU kernel.
    fn forward<Op: UnaryFn<f32>>(cpu: &Cpu, op: &Op, xs: &[f32]) -> Vec<f32> {
        let x = cpu.try_from_host(xs.to_vec()).unwrap();
        let layout = Layout::from_parts(&[xs.len()], &[1]);
        let y = UnaryKernel::forward(cpu, op, InputView::new(Input::Shared(&x), layout)).unwrap();
        cpu.try_to_host(&y).unwrap()
    }

    /// The kernels use the approximations, and their backward agrees with central finite
    /// differences of the approximated forward (so the gradient is that of the function
    /// actually computed).
    fn check<Op: UnaryFn<f32>>(op: Op, approximation: fn(&mut [f32]), xs: &[f32]) {
        let cpu = Cpu::default();
        let ys = forward(&cpu, &op, xs);
        let mut expected = xs.to_vec();
        approximation(&mut expected);
        assert_eq!(ys, expected, "{op:?}: the kernel's forward is the approximation");

        let layout = Layout::from_parts(&[xs.len()], &[1]);
        let input = cpu.try_from_host(xs.to_vec()).unwrap();
        let output = cpu.try_from_host(ys.clone()).unwrap();
        let ones = cpu.try_from_host(vec![1.0f32; xs.len()]).unwrap();
        let mut grad = None;
        UnaryKernel::backward(
            &cpu,
            &op,
            OptionalView::new(Some(&input), layout),
            Some(&output),
            GradientSlot::new(&mut grad, xs.len()),
            Input::Shared(&ones),
        )
        .unwrap();
        let grad = cpu.try_to_host(&grad.unwrap()).unwrap();

        let h: Vec<f32> = xs.iter().map(|x| 1e-2 * x.abs().max(0.1)).collect();
        let plus = forward(&cpu, &op, &xs.iter().zip(&h).map(|(x, h)| x + h).collect::<Vec<_>>());
        let minus = forward(&cpu, &op, &xs.iter().zip(&h).map(|(x, h)| x - h).collect::<Vec<_>>());
        for i in 0..xs.len() {
            let step = (xs[i] + h[i]) as f64 - (xs[i] - h[i]) as f64;
            let numeric = (plus[i] as f64 - minus[i] as f64) / step;
            let analytic = grad[i] as f64;
            let error = (numeric - analytic).abs() / analytic.abs().max(1e-3);
            assert!(
                error < 2e-3,
                "{op:?} at {}: backward {analytic} vs finite differences {numeric}",
                xs[i]
            );
        }
    }

    #[test]
    fn gradients_match_finite_differences_of_the_approximations() {
        let xs: Vec<f32> = (0..200).map(|i| (i as f32 - 100.0) * 0.0731).collect();
        check(Exp {}, exp_in_place, &xs);
        check(Tanh {}, tanh_in_place, &xs);
        check(Sigmoid {}, sigmoid_in_place, &xs);
        let positive: Vec<f32> = (1..200).map(|i| i as f32 * 0.0917).collect();
        check(Ln {}, ln_in_place, &positive);
    }

    #[test]
    fn f64_and_other_ops_stay_exact() {
        let cpu = Cpu::default();
        let x = cpu.try_from_host(vec![0.3f64, -1.7]).unwrap();
        let layout = Layout::from_parts(&[2], &[1]);
        let y = UnaryKernel::forward(&cpu, &Exp {}, InputView::new(Input::Shared(&x), layout)).unwrap();
        assert_eq!(cpu.try_to_host(&y).unwrap(), vec![0.3f64.exp(), (-1.7f64).exp()]);
        assert!(unary_in_place::<ferrograd_device::ops::elementwise::Sin, f32>().is_none());
        assert!(unary_in_place::<Exp, f64>().is_none());
    }
}
