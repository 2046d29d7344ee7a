//! Element-wise ops of one tensor. Their math is declared once in
//! `ferrograd_device::ops::elementwise`; each method here is that op plus the tape.

use crate::OrPanic;
use crate::tape::Tape;
use crate::tensor::Tensor;
use ferrograd_device::ops::elementwise::*;
use ferrograd_device::{Dtype, Error, Storage};
use ferrograd_shapes::Shape;

macro_rules! unary_methods {
    ($(
        $(#[$doc:meta])*
        $name:ident / $try_name:ident ($($arg:ident : $argty:ty),*) -> $op:ty = $make:expr;
    )*) => {
        impl<S: Shape, E: Dtype, D: Storage<E>, T: Tape<E, D>> Tensor<S, E, D, T> {$(
            $(#[$doc])*
            #[track_caller]
            pub fn $name(self $(, $arg: $argty)*) -> Self
            where
                D: UnaryKernel<$op, E>,
            {
                self.$try_name($($arg),*).or_panic()
            }

            #[doc = concat!("[`Tensor::", stringify!($name), "`], returning an error instead of panicking.")]
            pub fn $try_name(self $(, $arg: $argty)*) -> Result<Self, Error>
            where
                D: UnaryKernel<$op, E>,
            {
                self.try_unary($make)
            }
        )*}
    };
}

unary_methods! {
    /// `-x`, element-wise.
    negate / try_negate() -> Negate = Negate {};
    /// `|x|`; the gradient at 0 and at NaN is 0, as in PyTorch.
    ///
    /// ```
    /// use ferrograd_autodiff::prelude::*;
    /// let x = ferrograd_cpu::Cpu::default().tensor([-2.0f64, 0.0, 3.0]);
    /// assert_eq!(x.abs().array(), [2.0, 0.0, 3.0]);
    /// ```
    abs / try_abs() -> Abs = Abs {};
    /// `e^x`.
    ///
    /// ```
    /// use ferrograd_autodiff::prelude::*;
    /// let x = ferrograd_cpu::Cpu::default().tensor([0.0f64, 1.0]);
    /// assert_eq!(x.exp().array(), [1.0, std::f64::consts::E]);
    /// ```
    exp / try_exp() -> Exp = Exp {};
    /// The natural logarithm; NaN for negative inputs, -inf at 0, as in PyTorch.
    ln / try_ln() -> Ln = Ln {};
    /// The square root; NaN for negative inputs.
    sqrt / try_sqrt() -> Sqrt = Sqrt {};
    /// `x²`.
    square / try_square() -> Square = Square {};
    /// `x^exponent` (PyTorch's `pow` with a float exponent).
    ///
    /// ```
    /// use ferrograd_autodiff::prelude::*;
    /// let x = ferrograd_cpu::Cpu::default().tensor([4.0f64, 9.0]);
    /// assert_eq!(x.powf(0.5).array(), [2.0, 3.0]);
    /// ```
    powf / try_powf(exponent: E) -> Powf<E> = Powf { exponent };
    /// `x^exponent` for an integer exponent.
    powi / try_powi(exponent: i32) -> Powi = Powi { exponent };
    /// `1 / x`.
    recip / try_recip() -> Recip = Recip {};
    /// Sine.
    sin / try_sin() -> Sin = Sin {};
    /// Cosine.
    cos / try_cos() -> Cos = Cos {};
    /// Hyperbolic tangent.
    tanh / try_tanh() -> Tanh = Tanh {};
    /// `1 / (1 + e^-x)`, without overflow at large |x|.
    sigmoid / try_sigmoid() -> Sigmoid = Sigmoid {};
    /// `max(x, 0)`, keeping NaN; the gradient is 0 at 0 and 1 at NaN, as in PyTorch.
    ///
    /// ```
    /// use ferrograd_autodiff::prelude::*;
    /// let x = ferrograd_cpu::Cpu::default().tensor([-1.0f32, 0.0, 2.0]);
    /// assert_eq!(x.relu().array(), [0.0, 0.0, 2.0]);
    /// ```
    relu / try_relu() -> Relu = Relu {};
    /// `x` where positive, `negative_slope · x` elsewhere (PyTorch's default slope is 0.01).
    leaky_relu / try_leaky_relu(negative_slope: E) -> LeakyRelu<E> = LeakyRelu { negative_slope };
    /// GELU, exact: `x · Φ(x)` (PyTorch's `gelu(x, approximate='none')`).
    gelu / try_gelu() -> Gelu = Gelu {};
    /// GELU, tanh approximation (PyTorch's `gelu(x, approximate='tanh')`).
    gelu_tanh / try_gelu_tanh() -> GeluTanh = GeluTanh {};
    /// SiLU (swish): `x · sigmoid(x)`.
    silu / try_silu() -> Silu = Silu {};
    /// `ln(1 + e^x)`, with PyTorch's defaults beta = 1 and threshold = 20 (above which
    /// it returns `x`).
    softplus / try_softplus() -> Softplus<E> = Softplus { beta: E::ONE, threshold: E::from_f64(20.0) };
    /// `ln(1 + e^(beta·x)) / beta`, and `x` where `beta·x > threshold`.
    softplus_with / try_softplus_with(beta: E, threshold: E) -> Softplus<E> = Softplus { beta, threshold };
    /// `x` limited to `[min, max]`; the gradient is 1 strictly inside and 0 at the
    /// bounds, as in PyTorch.
    ///
    /// ```
    /// use ferrograd_autodiff::prelude::*;
    /// let x = ferrograd_cpu::Cpu::default().tensor([-2.0f32, 0.5, 2.0]);
    /// assert_eq!(x.clamp(-1.0, 1.0).array(), [-1.0, 0.5, 1.0]);
    /// ```
    clamp / try_clamp(min: E, max: E) -> Clamp<E> = Clamp { min, max };
    /// NaN replaced by `value`; no gradient flows to the replaced elements.
    nans_to / try_nans_to(value: E) -> NansTo<E> = NansTo { value };
    /// `x + scalar`; also written `x + scalar`.
    add_scalar / try_add_scalar(scalar: E) -> ScalarAdd<E> = ScalarAdd { scalar };
    /// `x - scalar`; also written `x - scalar`.
    sub_scalar / try_sub_scalar(scalar: E) -> ScalarSub<E> = ScalarSub { scalar };
    /// `x · scalar`; also written `x * scalar`.
    mul_scalar / try_mul_scalar(scalar: E) -> ScalarMul<E> = ScalarMul { scalar };
    /// `x / scalar`; also written `x / scalar`.
    div_scalar / try_div_scalar(scalar: E) -> ScalarDiv<E> = ScalarDiv { scalar };
}

impl<S: Shape, E: Dtype, D: UnaryKernel<Negate, E>, T: Tape<E, D>> std::ops::Neg for Tensor<S, E, D, T> {
    type Output = Self;
    #[track_caller]
    fn neg(self) -> Self {
        self.negate()
    }
}

macro_rules! scalar_operator {
    ($trait:ident, $method:ident, $op:ident, $call:ident) => {
        impl<S: Shape, E: Dtype, D: UnaryKernel<$op<E>, E>, T: Tape<E, D>> std::ops::$trait<E> for Tensor<S, E, D, T> {
            type Output = Self;
            /// Panics as the `try_` method fails (out of memory).
            #[track_caller]
            fn $method(self, scalar: E) -> Self {
                self.$call(scalar)
            }
        }
    };
}
scalar_operator!(Add, add, ScalarAdd, add_scalar);
scalar_operator!(Sub, sub, ScalarSub, sub_scalar);
scalar_operator!(Mul, mul, ScalarMul, mul_scalar);
scalar_operator!(Div, div, ScalarDiv, div_scalar);
