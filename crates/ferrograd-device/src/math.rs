//! The functions element-wise ops are declared with.
//!
//! A declaration in [`crate::ops::elementwise`] is an expression over these functions,
//! `+ - * /`, comparisons, `&&`/`||`/`!` and literals. That subset reads the same in
//! Rust and in C++, so the text of one declaration gives both the CPU kernel (compiled
//! here, per dtype) and the source of a GPU kernel: [`crate::ops::elementwise::render`]
//! holds these functions in C++ (its `PRELUDE`, with the same results, edge cases
//! included) and checks that a declaration uses nothing else. A function added here
//! must be added there too; a test compares the two lists.

use crate::dtype::Float;

/// `if condition { a } else { b }`, as an expression valid in C too.
#[inline(always)]
pub fn select<F: Copy>(condition: bool, a: F, b: F) -> F {
    if condition { a } else { b }
}
/// |x|
#[inline(always)]
pub fn abs<F: Float>(x: F) -> F {
    x.abs()
}
/// -1, 0 or 1 by the sign of x; 0 at ±0 and at NaN, as the gradient of PyTorch's `abs`.
#[inline(always)]
pub fn sign<F: Float>(x: F) -> F {
    if x > F::ZERO {
        F::ONE
    } else if x < F::ZERO {
        -F::ONE
    } else {
        F::ZERO
    }
}
/// e^x
#[inline(always)]
pub fn exp<F: Float>(x: F) -> F {
    x.exp()
}
/// ln(1 + x)
#[inline(always)]
pub fn ln_1p<F: Float>(x: F) -> F {
    x.ln_1p()
}
/// Natural logarithm; NaN below 0, -inf at 0.
#[inline(always)]
pub fn ln<F: Float>(x: F) -> F {
    x.ln()
}
/// Square root; NaN below 0.
#[inline(always)]
pub fn sqrt<F: Float>(x: F) -> F {
    x.sqrt()
}
/// Sine.
#[inline(always)]
pub fn sin<F: Float>(x: F) -> F {
    x.sin()
}
/// Cosine.
#[inline(always)]
pub fn cos<F: Float>(x: F) -> F {
    x.cos()
}
/// Hyperbolic tangent.
#[inline(always)]
pub fn tanh<F: Float>(x: F) -> F {
    x.tanh()
}
/// The error function.
#[inline(always)]
pub fn erf<F: Float>(x: F) -> F {
    x.erf()
}
/// x^p.
#[inline(always)]
pub fn powf<F: Float>(x: F, p: F) -> F {
    x.powf(p)
}
/// x^n.
#[inline(always)]
pub fn powi<F: Float>(x: F, n: i32) -> F {
    x.powi(n)
}
/// x · n, for an integer n.
#[inline(always)]
pub fn times_int<F: Float>(x: F, n: i32) -> F {
    x * F::from_i32(n)
}
/// n · x^(n−1), the derivative of x^n, for every n: where n − 1 does not fit an `i32`
/// (n = `i32::MIN`) as n · x^n / x, rather than overflowing.
#[inline(always)]
pub fn powi_derivative<F: Float>(x: F, n: i32) -> F {
    let below = match n.checked_sub(1) {
        Some(m) => x.powi(m),
        None => x.powi(n) / x,
    };
    below * F::from_i32(n)
}
/// Whether x is NaN.
#[inline(always)]
pub fn is_nan<F: Float>(x: F) -> bool {
    x.is_nan()
}
/// 1 / (1 + e^-x), without overflow for large |x|.
#[inline(always)]
pub fn sigmoid<F: Float>(x: F) -> F {
    if x >= F::ZERO {
        F::ONE / (F::ONE + (-x).exp())
    } else {
        let e = x.exp();
        e / (F::ONE + e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sigmoid_is_stable_at_the_extremes() {
        assert_eq!(sigmoid(-1e4f32), 0.0);
        assert_eq!(sigmoid(1e4f32), 1.0);
        assert!((sigmoid(0.3f64) - 1.0 / (1.0 + (-0.3f64).exp())).abs() < 1e-15);
    }

    #[test]
    fn sign_at_zero_is_zero() {
        assert_eq!(sign(0.0f64), 0.0);
        assert_eq!(sign(-2.0f64), -1.0);
        assert_eq!(sign(f64::NAN), 0.0);
    }
}
