//! Element-wise ops: each declared once, as its value and its derivative.
//!
//! A declaration reads
//!
//! ```text
//! Exp {} => value(x) = exp(x); derivative_from_output(y) = y;
//! ```
//!
//! and gives the op struct, its per-dtype functions (from which every device's kernel
//! is generic), and the declaration as data ([`UnaryOp::SPEC`], [`unary_op_specs`],
//! [`binary_op_specs`]) for devices that generate kernel source: [`render`] checks it
//! and writes it as C++, which `tests/render_cpp.rs` compiles and compares with the
//! Rust functions. `derivative(x)` is written in terms of the input;
//! `derivative_from_output(y)` in terms of the output, which lets the forward pass
//! overwrite the input because backward never needs it; `constant_derivative()` needs
//! neither, so backward keeps no buffer alive at all. A binary op whose partial
//! derivatives read neither operand is marked `constant` for the same reason.
//!
//! Derivatives at kinks and NaN follow PyTorch 2.15 (checked by the parity fixtures):
//! `abs'(0) = abs'(NaN) = 0`, `relu'(0) = 0` but `relu'(NaN) = 1`,
//! `leaky_relu'(0) = negative_slope`, `clamp'` is 1 strictly inside `(min, max)` and 0
//! at the bounds, `pow'` is 0 for exponent 0, and `maximum`/`minimum` split the gradient
//! equally between tied operands and give it whole to both when either is NaN.

use crate::dtype::Dtype;
use crate::error::Error;
use crate::storage::{Input, Storage};
use crate::view::{GradientSlot, InputView, OptionalView, View};

pub mod render;

/// An element-wise op of one input, declared by its value and derivative.
pub trait UnaryOp: 'static + Copy + std::fmt::Debug + Send + Sync {
    /// The op's name, for errors and generated kernels.
    const NAME: &'static str;
    /// Whether [`UnaryFn::derivative`] takes the output `y` (true) or the input `x`.
    const DERIVATIVE_FROM_OUTPUT: bool;
    /// Which buffer backward reads: the input, the output, or none (a constant
    /// derivative), so a device keeps only that one alive.
    const SAVES: Saved;
    /// The declaration's value expression, in the Rust/C subset of [`crate::math`].
    const VALUE_SOURCE: &'static str;
    /// The declaration's derivative expression.
    const DERIVATIVE_SOURCE: &'static str;
    /// The whole declaration as data: name, parameters, and the functions `value` and
    /// `derivative` with their variables, for devices that generate kernel source.
    const SPEC: OpSpec;
}

/// The value and derivative of a [`UnaryOp`] for the dtype `E`.
pub trait UnaryFn<E>: UnaryOp {
    /// f(x).
    fn value(&self, x: E) -> E;
    /// f'(x), given x, or the output f(x) when [`UnaryOp::DERIVATIVE_FROM_OUTPUT`].
    fn derivative(&self, x_or_y: E) -> E;
    /// The values of the op's parameters (its fields), in [`OpSpec::params`] order and
    /// of the types it names: what a device that generates kernels from
    /// [`UnaryOp::SPEC`] passes them as arguments. Empty for an op without parameters.
    fn params(&self) -> Vec<ParamValue<E>>;
}

/// The value of one parameter of an op, as [`UnaryFn::params`] gives it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ParamValue<E> {
    /// A [`ParamType::Element`] parameter.
    Element(E),
    /// A [`ParamType::Integer`] parameter.
    Integer(i32),
}

impl<E> ParamValue<E> {
    /// The parameter's type.
    pub fn ty(&self) -> ParamType {
        match self {
            ParamValue::Element(_) => ParamType::Element,
            ParamValue::Integer(_) => ParamType::Integer,
        }
    }
}

impl<E> From<i32> for ParamValue<E> {
    fn from(value: i32) -> Self {
        ParamValue::Integer(value)
    }
}
impl From<f32> for ParamValue<f32> {
    fn from(value: f32) -> Self {
        ParamValue::Element(value)
    }
}
impl From<f64> for ParamValue<f64> {
    fn from(value: f64) -> Self {
        ParamValue::Element(value)
    }
}

/// The buffer a [`UnaryOp`]'s backward step reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Saved {
    /// The input `x`.
    Input,
    /// The output `y = f(x)`.
    Output,
    /// Nothing: the derivative is a constant (of the op's parameters).
    Nothing,
}

/// An element-wise op of two inputs of one shape.
pub trait BinaryOp: 'static + Copy + std::fmt::Debug + Send + Sync {
    /// The op's name.
    const NAME: &'static str;
    /// Whether the partial derivatives read the operands; when not (`x + y`, `x - y`),
    /// backward keeps neither operand alive.
    const DERIVATIVES_READ_OPERANDS: bool;
    /// The declaration's value expression in `x` (lhs) and `y` (rhs).
    const VALUE_SOURCE: &'static str;
    /// ∂f/∂x.
    const DX_SOURCE: &'static str;
    /// ∂f/∂y.
    const DY_SOURCE: &'static str;
    /// The whole declaration as data: name and the functions `value`, `dx` and `dy`
    /// with their variables, for devices that generate kernel source.
    const SPEC: OpSpec;
}

/// The value and partial derivatives of a [`BinaryOp`] for the dtype `E`.
pub trait BinaryFn<E>: BinaryOp {
    /// f(x, y).
    fn value(&self, x: E, y: E) -> E;
    /// ∂f/∂x at (x, y).
    fn dx(&self, x: E, y: E) -> E;
    /// ∂f/∂y at (x, y).
    fn dy(&self, x: E, y: E) -> E;
}

/// A declared op as data, from which a device generates its kernels' source.
///
/// Built by the declaring macros from the declaration's tokens, so it cannot drift
/// from the Rust functions: [`UnaryOp::SPEC`], [`BinaryOp::SPEC`], and every declared
/// op in [`unary_op_specs`] and [`binary_op_specs`]. [`render`] checks the expressions
/// and turns them into C++.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OpSpec {
    /// The op's name, as its struct is named (`"Powf"`).
    pub name: &'static str,
    /// The op's parameters (the struct's fields), in declaration order; empty for
    /// binary ops.
    pub params: &'static [Param],
    /// `value` then `derivative` for a unary op; `value`, `dx` then `dy` for a binary
    /// op.
    pub functions: &'static [FunctionSpec],
}

impl OpSpec {
    /// The function of this name (`"value"`, `"derivative"`, `"dx"`, `"dy"`).
    pub fn function(&self, name: &str) -> Option<&'static FunctionSpec> {
        self.functions.iter().find(|function| function.name == name)
    }
}

/// One function of an [`OpSpec`]: an expression of its bound variables and the op's
/// parameters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FunctionSpec {
    /// `"value"`, `"derivative"`, `"dx"` or `"dy"`.
    pub name: &'static str,
    /// The variables the expression may read, in argument order: `["x"]` for a unary
    /// `value` and `derivative(x)`, `["y"]` (the output) for
    /// `derivative_from_output(y)`, none for `constant_derivative`; `["x", "y"]` for a
    /// binary op's functions, and none for the `dx`/`dy` of a binary op marked
    /// `constant`. Only these are passed to a kernel, so an expression that reads
    /// anything else is rejected by [`render`].
    pub bound: &'static [&'static str],
    /// The expression as the declaration wrote it (`stringify!`'s text), in the subset
    /// of Rust described in [`crate::math`].
    pub source: &'static str,
}

/// A parameter of an op: one field of its struct.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Param {
    /// The field's name (`"exponent"`).
    pub name: &'static str,
    /// Its type.
    pub ty: ParamType,
}

/// The type of an op's parameter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParamType {
    /// The element type the op runs on (the declaration's `E`): `f32` or `f64`, `float`
    /// or `double` in C++.
    Element,
    /// A 32-bit signed integer (`i32`; `int` in C++), whatever the element type.
    Integer,
}

/// Runs a [`UnaryOp`] on a device.
///
/// Every method checks its arguments before touching memory: a layout that reaches
/// past its buffer, or a contiguous buffer shorter than the elements it must hold, is
/// an [`Error::InvalidArgument`] naming [`UnaryOp::NAME`] and the sizes.
pub trait UnaryKernel<Op: UnaryOp, E: Dtype>: Storage<E> {
    /// `f(x)` for every element of `input` read through its layout; the result is
    /// contiguous (row-major over the layout's dims). A `Unique` input whose layout is
    /// contiguous may be overwritten and returned.
    fn forward(&self, op: &Op, input: InputView<'_, Self::Vec>) -> Result<Self::Vec, Error>;

    /// The gradient of the input: `grad_output · f'(…)` for every element, added into
    /// `grad_input` through `input.layout`.
    ///
    /// What the derivative reads is what [`UnaryOp::SAVES`] names: `input.buffer` (read
    /// through `input.layout`) for [`Saved::Input`], `output` (contiguous) for
    /// [`Saved::Output`], neither for [`Saved::Nothing`]; the other may be `None`.
    /// `grad_output` is contiguous over the layout's dims. When `grad_input` holds
    /// `None` this is the first contribution: the kernel stores a new buffer of
    /// `grad_input.len` elements there (zero where the layout does not reach), reusing
    /// a `Unique` `grad_output` when it can; otherwise it adds. Positions of the layout
    /// that share an element (a broadcast input) all add into it.
    fn backward(
        &self,
        op: &Op,
        input: OptionalView<'_, Self::Vec>,
        output: Option<&Self::Vec>,
        grad_input: GradientSlot<'_, Self::Vec>,
        grad_output: Input<'_, Self::Vec>,
    ) -> Result<(), Error>;
}

/// Which operand of a binary op a gradient is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Operand {
    /// The left-hand side, `x`.
    Lhs,
    /// The right-hand side, `y`.
    Rhs,
}

/// Runs a [`BinaryOp`] on a device.
///
/// Every method checks its arguments before touching memory: a layout that reaches past
/// its buffer, or a contiguous buffer shorter than the elements it must hold, is an
/// [`Error::InvalidArgument`], and operands of different dims an
/// [`Error::ShapeMismatch`], naming [`BinaryOp::NAME`] and the sizes.
pub trait BinaryKernel<Op: BinaryOp, E: Dtype>: Storage<E> {
    /// `f(x, y)` element-wise, both read through their layouts (same dims); the result
    /// is contiguous. A `Unique` `lhs` whose layout is contiguous may be overwritten
    /// and returned.
    fn forward(&self, op: &Op, lhs: InputView<'_, Self::Vec>, rhs: View<'_, Self::Vec>) -> Result<Self::Vec, Error>;

    /// The gradient of one operand, `grad_output · ∂f/∂operand`, added into `grad`
    /// through that operand's layout (positions that share an element, a broadcast
    /// operand, all add into it). `grad_output` is contiguous over the operands' dims.
    ///
    /// Both layouts are always given; the buffers are `None` when
    /// [`BinaryOp::DERIVATIVES_READ_OPERANDS`] is false. When `grad` holds `None` this
    /// is the first contribution: the kernel stores a new buffer of `grad.len` elements
    /// there, reusing a `Unique` `grad_output` when it can; otherwise it adds.
    fn backward(
        &self,
        op: &Op,
        operand: Operand,
        lhs: OptionalView<'_, Self::Vec>,
        rhs: OptionalView<'_, Self::Vec>,
        grad: GradientSlot<'_, Self::Vec>,
        grad_output: Input<'_, Self::Vec>,
    ) -> Result<(), Error>;
}

#[doc(hidden)]
#[macro_export]
macro_rules! __ferrograd_pick_type {
    ($ignored:ident, $t:ty) => {
        $t
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __ferrograd_from_output {
    (derivative) => {
        false
    };
    (derivative_from_output) => {
        true
    };
    (constant_derivative) => {
        false
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __ferrograd_saves {
    (derivative) => {
        $crate::ops::elementwise::Saved::Input
    };
    (derivative_from_output) => {
        $crate::ops::elementwise::Saved::Output
    };
    (constant_derivative) => {
        $crate::ops::elementwise::Saved::Nothing
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __ferrograd_derivative_bound {
    (derivative, $d:ident) => {
        &[stringify!($d)]
    };
    (derivative_from_output, $d:ident) => {
        &[stringify!($d)]
    };
    (constant_derivative, $d:ident) => {
        &[]
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __ferrograd_param_type {
    (E) => {
        $crate::ops::elementwise::ParamType::Element
    };
    (i32) => {
        $crate::ops::elementwise::ParamType::Integer
    };
    ($other:tt) => {
        compile_error!(concat!(
            "an element-wise op's parameter has type `E` (the element type) or `i32`, not `",
            stringify!($other),
            "`"
        ))
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __ferrograd_derivative_operands {
    (; $x:ident, $y:ident) => {
        &[stringify!($x), stringify!($y)]
    };
    (constant; $x:ident, $y:ident) => {
        &[]
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __ferrograd_reads_operands {
    () => {
        true
    };
    (constant) => {
        false
    };
}

/// Declares element-wise ops of one input, and [`unary_op_specs`] listing them all (so
/// it is invoked once). See the [module docs](self).
///
/// Constants are written as literals (`0.7071067811865476`, not `FRAC_1_SQRT_2`)
/// because the declaration's text must also be valid C++. A parameter's type is `E`
/// (the element type, so the generic parameter must be named `E`) or `i32`: the types
/// a generated kernel can take.
macro_rules! unary_ops {
    ($(
        $(#[$meta:meta])*
        $name:ident $(<$E:ident>)? { $($field:ident : $fty:tt),* $(,)? }
        => value($x:ident) = $value:expr; $kind:ident($d:ident) = $derivative:expr;
    )*) => {
        $(
            $(#[$meta])*
            #[derive(Clone, Copy, Debug, PartialEq)]
            pub struct $name $(<$E>)? { $(#[allow(missing_docs)] pub $field: $fty),* }

            impl $(<$E: 'static + Copy + std::fmt::Debug + Send + Sync>)? UnaryOp for $name $(<$E>)? {
                const NAME: &'static str = stringify!($name);
                const DERIVATIVE_FROM_OUTPUT: bool = $crate::__ferrograd_from_output!($kind);
                const SAVES: Saved = $crate::__ferrograd_saves!($kind);
                const VALUE_SOURCE: &'static str = stringify!($value);
                const DERIVATIVE_SOURCE: &'static str = stringify!($derivative);
                const SPEC: OpSpec = OpSpec {
                    name: stringify!($name),
                    params: &[$(Param { name: stringify!($field), ty: $crate::__ferrograd_param_type!($fty) }),*],
                    functions: &[
                        FunctionSpec { name: "value", bound: &[stringify!($x)], source: stringify!($value) },
                        FunctionSpec {
                            name: "derivative",
                            bound: $crate::__ferrograd_derivative_bound!($kind, $d),
                            source: stringify!($derivative),
                        },
                    ],
                };
            }

            unary_ops!(@impl f32, $name $(<$E>)? { $($field),* } $x $value; $d $derivative);
            unary_ops!(@impl f64, $name $(<$E>)? { $($field),* } $x $value; $d $derivative);
        )*

        /// The [`OpSpec`] of every declared unary op, in declaration order.
        pub fn unary_op_specs() -> &'static [OpSpec] {
            // The spec does not depend on the element type; f32 picks one instance.
            const SPECS: &[OpSpec] = &[$(<$name $(<$crate::__ferrograd_pick_type!($E, f32)>)? as UnaryOp>::SPEC),*];
            SPECS
        }
    };
    (@impl $t:ty, $name:ident $(<$E:ident>)? { $($field:ident),* } $x:ident $value:expr; $d:ident $derivative:expr) => {
        impl UnaryFn<$t> for $name $(<$crate::__ferrograd_pick_type!($E, $t)>)? {
            #[inline(always)]
            #[allow(unused_variables, unused_imports, clippy::excessive_precision, clippy::approx_constant)]
            fn value(&self, $x: $t) -> $t {
                use $crate::math::*;
                let $name { $($field),* } = *self;
                $value
            }
            #[inline(always)]
            #[allow(unused_variables, unused_imports, clippy::excessive_precision, clippy::approx_constant)]
            fn derivative(&self, $d: $t) -> $t {
                use $crate::math::*;
                let $name { $($field),* } = *self;
                $derivative
            }
            fn params(&self) -> Vec<ParamValue<$t>> {
                let $name { $($field),* } = *self;
                vec![$(ParamValue::from($field)),*]
            }
        }
    };
}

/// Declares element-wise ops of two inputs, and [`binary_op_specs`] listing them all (so
/// it is invoked once).
macro_rules! binary_ops {
    ($(
        $(#[$meta:meta])*
        $name:ident $($constant:ident)? => value($x:ident, $y:ident) = $value:expr; dx = $dx:expr; dy = $dy:expr;
    )*) => {
        $(
            $(#[$meta])*
            #[derive(Clone, Copy, Debug, Default, PartialEq)]
            pub struct $name;

            impl BinaryOp for $name {
                const NAME: &'static str = stringify!($name);
                const DERIVATIVES_READ_OPERANDS: bool = $crate::__ferrograd_reads_operands!($($constant)?);
                const VALUE_SOURCE: &'static str = stringify!($value);
                const DX_SOURCE: &'static str = stringify!($dx);
                const DY_SOURCE: &'static str = stringify!($dy);
                const SPEC: OpSpec = OpSpec {
                    name: stringify!($name),
                    params: &[],
                    functions: &[
                        FunctionSpec { name: "value", bound: &[stringify!($x), stringify!($y)], source: stringify!($value) },
                        FunctionSpec {
                            name: "dx",
                            bound: $crate::__ferrograd_derivative_operands!($($constant)?; $x, $y),
                            source: stringify!($dx),
                        },
                        FunctionSpec {
                            name: "dy",
                            bound: $crate::__ferrograd_derivative_operands!($($constant)?; $x, $y),
                            source: stringify!($dy),
                        },
                    ],
                };
            }

            binary_ops!(@impl f32, $name $x $y $value; $dx; $dy);
            binary_ops!(@impl f64, $name $x $y $value; $dx; $dy);
        )*

        /// The [`OpSpec`] of every declared binary op, in declaration order.
        pub fn binary_op_specs() -> &'static [OpSpec] {
            const SPECS: &[OpSpec] = &[$(<$name as BinaryOp>::SPEC),*];
            SPECS
        }
    };
    (@impl $t:ty, $name:ident $x:ident $y:ident $value:expr; $dx:expr; $dy:expr) => {
        impl BinaryFn<$t> for $name {
            #[inline(always)]
            #[allow(unused_variables, unused_imports)]
            fn value(&self, $x: $t, $y: $t) -> $t {
                use $crate::math::*;
                $value
            }
            #[inline(always)]
            #[allow(unused_variables, unused_imports)]
            fn dx(&self, $x: $t, $y: $t) -> $t {
                use $crate::math::*;
                $dx
            }
            #[inline(always)]
            #[allow(unused_variables, unused_imports)]
            fn dy(&self, $x: $t, $y: $t) -> $t {
                use $crate::math::*;
                $dy
            }
        }
    };
}

unary_ops! {
    /// `-x`.
    Negate {} => value(x) = -x; constant_derivative(x) = -1.0;
    /// `|x|`; the derivative at 0 is 0.
    Abs {} => value(x) = abs(x); derivative(x) = sign(x);
    /// `e^x`.
    Exp {} => value(x) = exp(x); derivative_from_output(y) = y;
    /// Natural logarithm: NaN below 0, as in PyTorch.
    Ln {} => value(x) = ln(x); derivative(x) = 1.0 / x;
    /// Square root: NaN below 0; the derivative at 0 is +inf.
    Sqrt {} => value(x) = sqrt(x); derivative_from_output(y) = 0.5 / y;
    /// `x²`.
    Square {} => value(x) = x * x; derivative(x) = 2.0 * x;
    /// `x^exponent` for a float exponent; the derivative is 0 when the exponent is 0.
    Powf<E> { exponent: E } => value(x) = powf(x, exponent);
        derivative(x) = select(exponent == 0.0, 0.0, exponent * powf(x, exponent - 1.0));
    /// `x^exponent` for an integer exponent.
    Powi { exponent: i32 } => value(x) = powi(x, exponent);
        derivative(x) = select(exponent == 0, 0.0, powi_derivative(x, exponent));
    /// `1 / x`.
    Recip {} => value(x) = 1.0 / x; derivative_from_output(y) = -(y * y);
    /// Sine.
    Sin {} => value(x) = sin(x); derivative(x) = cos(x);
    /// Cosine.
    Cos {} => value(x) = cos(x); derivative(x) = -sin(x);
    /// Hyperbolic tangent.
    Tanh {} => value(x) = tanh(x); derivative_from_output(y) = 1.0 - y * y;
    /// `1 / (1 + e^-x)`.
    Sigmoid {} => value(x) = sigmoid(x); derivative_from_output(y) = y * (1.0 - y);
    /// `max(x, 0)`, keeping NaN; the derivative is 0 at 0 and 1 at NaN.
    Relu {} => value(x) = select(x < 0.0, 0.0, x); derivative_from_output(y) = select(y <= 0.0, 0.0, 1.0);
    /// `x` for x > 0, else `negative_slope · x`.
    LeakyRelu<E> { negative_slope: E } => value(x) = select(x > 0.0, x, x * negative_slope);
        derivative(x) = select(x > 0.0, 1.0, negative_slope);
    /// GELU, exact form: `x · Φ(x) = 0.5 · x · (1 + erf(x / √2))`.
    Gelu {} => value(x) = 0.5 * x * (1.0 + erf(x * 0.7071067811865476));
        derivative(x) = 0.5 * (1.0 + erf(x * 0.7071067811865476))
            + x * 0.3989422804014327 * exp(-0.5 * x * x);
    /// GELU, tanh approximation: `0.5 · x · (1 + tanh(√(2/π) · (x + 0.044715 · x³)))`.
    GeluTanh {} => value(x) = 0.5 * x * (1.0 + tanh(0.7978845608028654 * (x + 0.044715 * x * x * x)));
        derivative(x) = 0.5 * (1.0 + tanh(0.7978845608028654 * (x + 0.044715 * x * x * x)))
            + 0.5 * x * (1.0 - tanh(0.7978845608028654 * (x + 0.044715 * x * x * x))
                * tanh(0.7978845608028654 * (x + 0.044715 * x * x * x)))
                * 0.7978845608028654 * (1.0 + 3.0 * 0.044715 * x * x);
    /// SiLU (swish): `x · sigmoid(x)`.
    Silu {} => value(x) = x * sigmoid(x); derivative(x) = sigmoid(x) * (1.0 + x * (1.0 - sigmoid(x)));
    /// `ln(1 + e^(beta·x)) / beta`, and `x` where `beta·x > threshold` (PyTorch's
    /// defaults: beta 1, threshold 20).
    Softplus<E> { beta: E, threshold: E } =>
        value(x) = select(x * beta > threshold, x, ln_1p(exp(x * beta)) / beta);
        derivative(x) = select(x * beta > threshold, 1.0, sigmoid(x * beta));
    /// `x` limited to `[min, max]`; the derivative is 1 strictly inside, 0 at the bounds.
    /// As PyTorch's `min(max(x, min), max)`, bounds with `min > max` give `max` everywhere.
    Clamp<E> { min: E, max: E } => value(x) = select(x < min, select(min > max, max, min), select(x > max, max, x));
        derivative(x) = select(x > min && x < max, 1.0, 0.0);
    /// NaN replaced by `value`; the derivative is 0 there.
    NansTo<E> { value: E } => value(x) = select(is_nan(x), value, x);
        derivative(x) = select(is_nan(x), 0.0, 1.0);
    /// `x + scalar`.
    ScalarAdd<E> { scalar: E } => value(x) = x + scalar; constant_derivative(x) = 1.0;
    /// `x - scalar`.
    ScalarSub<E> { scalar: E } => value(x) = x - scalar; constant_derivative(x) = 1.0;
    /// `x · scalar`.
    ScalarMul<E> { scalar: E } => value(x) = x * scalar; constant_derivative(x) = scalar;
    /// `x / scalar`.
    ScalarDiv<E> { scalar: E } => value(x) = x / scalar; constant_derivative(x) = 1.0 / scalar;
}

binary_ops! {
    /// `x + y`.
    Add constant => value(x, y) = x + y; dx = 1.0; dy = 1.0;
    /// `x - y`.
    Sub constant => value(x, y) = x - y; dx = 1.0; dy = -1.0;
    /// `x · y`.
    Mul => value(x, y) = x * y; dx = y; dy = x;
    /// `x / y`.
    Div => value(x, y) = x / y; dx = 1.0 / y; dy = -x / (y * y);
    /// The larger of `x` and `y`, NaN if either is; ties split the gradient equally, and
    /// a NaN sends it whole to both.
    Maximum => value(x, y) = select(is_nan(x) || x > y, x, y);
        dx = select(x < y, 0.0, select(x == y, 0.5, 1.0));
        dy = select(y < x, 0.0, select(x == y, 0.5, 1.0));
    /// The smaller of `x` and `y`, NaN if either is; ties split the gradient equally, and
    /// a NaN sends it whole to both.
    Minimum => value(x, y) = select(is_nan(x) || x < y, x, y);
        dx = select(x > y, 0.0, select(x == y, 0.5, 1.0));
        dy = select(y > x, 0.0, select(x == y, 0.5, 1.0));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn declarations_give_values_derivatives_and_source() {
        assert_eq!(UnaryFn::<f64>::value(&Square {}, 3.0), 9.0);
        assert_eq!(UnaryFn::<f64>::derivative(&Square {}, 3.0), 6.0);
        assert_eq!(UnaryFn::<f32>::value(&Powf { exponent: 2.0f32 }, 3.0), 9.0);
        assert_eq!(UnaryFn::<f32>::derivative(&Powi { exponent: 3 }, 2.0), 12.0);
        assert_eq!(<Exp as UnaryOp>::VALUE_SOURCE, "exp(x)");
        const { assert!(<Exp as UnaryOp>::DERIVATIVE_FROM_OUTPUT) };
        const { assert!(!<Ln as UnaryOp>::DERIVATIVE_FROM_OUTPUT) };
        assert_eq!(<Ln as UnaryOp>::SAVES, Saved::Input);
        assert_eq!(<Exp as UnaryOp>::SAVES, Saved::Output);
        assert_eq!(<ScalarMul<f32> as UnaryOp>::SAVES, Saved::Nothing);
        const { assert!(!<Add as BinaryOp>::DERIVATIVES_READ_OPERANDS) };
        const { assert!(<Mul as BinaryOp>::DERIVATIVES_READ_OPERANDS) };
        assert_eq!(BinaryFn::<f64>::dy(&Div, 1.0, 2.0), -0.25);
        assert_eq!(BinaryFn::<f64>::dx(&Maximum, 1.0, 1.0), 0.5);
    }

    #[test]
    fn parameter_values_follow_the_spec() {
        for (values, spec) in [
            (UnaryFn::<f32>::params(&Exp {}), <Exp as UnaryOp>::SPEC),
            (
                UnaryFn::<f32>::params(&Clamp { min: -1.0f32, max: 2.0 }),
                <Clamp<f32> as UnaryOp>::SPEC,
            ),
            (UnaryFn::<f32>::params(&Powi { exponent: -3 }), <Powi as UnaryOp>::SPEC),
        ] {
            let types: Vec<ParamType> = values.iter().map(ParamValue::ty).collect();
            let declared: Vec<ParamType> = spec.params.iter().map(|param| param.ty).collect();
            assert_eq!(types, declared, "{}", spec.name);
        }
        assert_eq!(
            UnaryFn::<f64>::params(&Softplus {
                beta: 2.0f64,
                threshold: 20.0
            }),
            [ParamValue::Element(2.0), ParamValue::Element(20.0)]
        );
        assert_eq!(
            UnaryFn::<f64>::params(&Powi { exponent: -3 }),
            [ParamValue::Integer(-3)]
        );
    }
}
