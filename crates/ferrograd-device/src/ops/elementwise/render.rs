//! The element-wise declarations as C++ source, for devices that compile kernels at run
//! time (CUDA through NVRTC).
//!
//! Three pieces, all device-neutral:
//!
//! - **The spec**: every declared op is available as an [`OpSpec`] ([`UnaryOp::SPEC`],
//!   [`unary_op_specs`](super::unary_op_specs), [`binary_op_specs`](super::binary_op_specs)):
//!   its name, its parameters and their types, and for each function (`value`,
//!   `derivative`, or `value`, `dx`, `dy`) the variables it reads and its expression.
//! - **The prelude**, [`PRELUDE`]: the helpers of [`crate::math`] (`select`, `sign`,
//!   `sigmoid`, `powi`, …) written once as C++ templates over the element type, with the
//!   same results as the Rust ones, in `namespace ferrograd`.
//! - **The renderer**, [`render_op`]: one op's functions for one element type as C++
//!   functions. It checks every expression first: each identifier must be a variable the
//!   function is given, a parameter of the op, or a prelude helper, and only operators
//!   that mean the same in Rust and C++ may appear. Anything else (a method call
//!   `x.abs()`, a path `f32::MAX`, a cast, a literal suffix) is a [`RenderError`] naming
//!   the op and the token, so a declaration that would compile only in Rust is caught
//!   when the renderer runs (the crate's tests render every declared op), not by NVRTC
//!   on a user's GPU.
//!
//! # Literal typing
//!
//! A float literal in a declaration takes the element type in Rust. In C++ an unsuffixed
//! `0.5` is a `double`, which would make an `f32` kernel compute in double (slower on a
//! GPU, and rounded differently from the CPU). The renderer therefore writes float
//! literals as `0.5f` for `float`, and leaves them as they are for `double`; a decimal
//! literal with the `f` suffix is rounded straight to `float`, as Rust rounds an `f32`
//! literal. Integer literals (`exponent == 0` for [`Powi`](super::Powi)) stay `int`.
//!
//! # Using it on a device
//!
//! A device compiles, in this order: a definition of `FERROGRAD_FN` (how the helpers and
//! rendered functions are qualified; it defaults to `inline`), [`PRELUDE`], the rendered
//! ops, and its own kernels, which call the rendered functions. The functions are named
//! by [`function_name`] (`Powf_derivative_f32`), live in `namespace ferrograd`, and
//! take the function's bound variables and then the op's parameters, each in
//! [`OpSpec`] order. For CUDA:
//!
//! ```text
//! #define FERROGRAD_FN __device__ __forceinline__
//! <PRELUDE>
//! <render_op(&Powf::<f32>::SPEC, ElementType::F32)>
//! extern "C" __global__ void powf_forward_f32(const float* in, float* out, unsigned n, float exponent) {
//!     unsigned i = blockIdx.x * blockDim.x + threadIdx.x;
//!     if (i < n) out[i] = ferrograd::Powf_value_f32(in[i], exponent);
//! }
//! ```
//!
//! The prelude includes no header: it calls only the C math functions by their C names
//! (`expf`, `log1pf`, `erff`, … for `float`; `exp`, `log1p`, `erf`, … for `double`),
//! which NVRTC provides as built-ins. On the host, include `<math.h>` (or `<cmath>`,
//! which declares the same global names with the common C++ libraries) before it. The
//! helpers are in `namespace ferrograd` so that `select`, `abs` or `exp` in a rendered
//! expression mean the prelude's, not POSIX's `select` or the C library's `abs(int)`.
//!
//! The arithmetic is the same IEEE operations in the same order as on the CPU, so
//! results differ only where the math functions do. On the host they are the same C
//! library Rust calls, except `erf` (Rust's is the `libm` crate's), and
//! `tests/render_cpp.rs` finds every result equal bit for bit on Debian 12. CUDA's math
//! functions have their own error bounds (a couple of ulps for `expf`, say), so a GPU
//! differs from the CPU by those. Compile without fast-math options and without
//! contracting `a * b + c` into a fused multiply-add (`-ffp-contract=off` on the host;
//! NVRTC contracts unless given `--fmad=false`), or expect a rounding more.

use super::{BinaryOp, FunctionSpec, OpSpec, ParamType, UnaryOp};
use std::fmt;

/// The helpers of [`crate::math`] in C++, to be compiled before the rendered ops.
///
/// Every helper is a template over the element type `T` (`float` or `double`), in
/// `namespace ferrograd`, declared with the macro `FERROGRAD_FN` (`inline` unless
/// defined before; CUDA defines it as `__device__ __forceinline__`). See the
/// [module docs](self) for what must precede it on the host and on a GPU.
pub const PRELUDE: &str = r#"// ferrograd's element-wise prelude: the helpers of ferrograd_device::math in C++,
// for the functions rendered by ferrograd_device::ops::elementwise::render.
//
// It includes no header: the C math functions it calls (expf, exp, ...) are built-ins
// under NVRTC; on the host, include <math.h> or <cmath> first. Define FERROGRAD_FN
// before it to qualify every function (CUDA: __device__ __forceinline__).
#ifndef FERROGRAD_FN
#define FERROGRAD_FN inline
#endif

namespace ferrograd {

// The C library's functions by their C names, one overload per element type: the C++
// overloads such as ::exp(float) are not declared by <math.h> everywhere, and calling
// ::exp on a float would compute in double.
namespace libm {
FERROGRAD_FN float fabs(float x) { return ::fabsf(x); }
FERROGRAD_FN double fabs(double x) { return ::fabs(x); }
FERROGRAD_FN float exp(float x) { return ::expf(x); }
FERROGRAD_FN double exp(double x) { return ::exp(x); }
FERROGRAD_FN float log1p(float x) { return ::log1pf(x); }
FERROGRAD_FN double log1p(double x) { return ::log1p(x); }
FERROGRAD_FN float log(float x) { return ::logf(x); }
FERROGRAD_FN double log(double x) { return ::log(x); }
FERROGRAD_FN float sqrt(float x) { return ::sqrtf(x); }
FERROGRAD_FN double sqrt(double x) { return ::sqrt(x); }
FERROGRAD_FN float sin(float x) { return ::sinf(x); }
FERROGRAD_FN double sin(double x) { return ::sin(x); }
FERROGRAD_FN float cos(float x) { return ::cosf(x); }
FERROGRAD_FN double cos(double x) { return ::cos(x); }
FERROGRAD_FN float tanh(float x) { return ::tanhf(x); }
FERROGRAD_FN double tanh(double x) { return ::tanh(x); }
FERROGRAD_FN float erf(float x) { return ::erff(x); }
FERROGRAD_FN double erf(double x) { return ::erf(x); }
FERROGRAD_FN float pow(float x, float p) { return ::powf(x, p); }
FERROGRAD_FN double pow(double x, double p) { return ::pow(x, p); }
}  // namespace libm

// Both branches are evaluated, as they are for the Rust function.
template <class T> FERROGRAD_FN T select(bool condition, T a, T b) { return condition ? a : b; }

// Clears the sign bit: abs(-0) is +0.
template <class T> FERROGRAD_FN T abs(T x) { return libm::fabs(x); }

// 0 at +-0 and at NaN, since both comparisons are false there.
template <class T> FERROGRAD_FN T sign(T x) { return x > T(0) ? T(1) : (x < T(0) ? T(-1) : T(0)); }

template <class T> FERROGRAD_FN T exp(T x) { return libm::exp(x); }
template <class T> FERROGRAD_FN T ln_1p(T x) { return libm::log1p(x); }
template <class T> FERROGRAD_FN T ln(T x) { return libm::log(x); }
template <class T> FERROGRAD_FN T sqrt(T x) { return libm::sqrt(x); }
template <class T> FERROGRAD_FN T sin(T x) { return libm::sin(x); }
template <class T> FERROGRAD_FN T cos(T x) { return libm::cos(x); }
template <class T> FERROGRAD_FN T tanh(T x) { return libm::tanh(x); }
template <class T> FERROGRAD_FN T erf(T x) { return libm::erf(x); }
template <class T> FERROGRAD_FN T powf(T x, T p) { return libm::pow(x, p); }

// Rust's powi (compiler-builtins' __powisf2/__powidf2): square-and-multiply over the
// bits of |n|, then one division for a negative n. Written the same way so that the
// roundings are the same ones; n % 2 and n / 2 round toward zero, so a negative n
// (INT_MIN included) walks the bits of |n| without negating it.
template <class T> FERROGRAD_FN T powi(T x, int n) {
    const bool reciprocal = n < 0;
    T result = T(1);
    for (;;) {
        if (n % 2 != 0) result *= x;
        n /= 2;
        if (n == 0) break;
        x *= x;
    }
    return reciprocal ? T(1) / result : result;
}

// n is converted to T first (rounding to nearest), as Rust's `n as f32`.
template <class T> FERROGRAD_FN T times_int(T x, int n) { return x * T(n); }

// n · x^(n-1); at INT_MIN, where n - 1 overflows, n · x^n / x (as math.rs).
template <class T> FERROGRAD_FN T powi_derivative(T x, int n) {
    const T below = n == -2147483647 - 1 ? powi(x, n) / x : powi(x, n - 1);
    return below * T(n);
}

template <class T> FERROGRAD_FN bool is_nan(T x) { return x != x; }

// The branch keeps exp's argument non-positive, so neither form overflows.
template <class T> FERROGRAD_FN T sigmoid(T x) {
    if (x >= T(0)) return T(1) / (T(1) + libm::exp(-x));
    const T e = libm::exp(x);
    return e / (T(1) + e);
}

}  // namespace ferrograd
"#;

/// The functions of [`crate::math`], which the prelude defines and an expression may
/// call.
const HELPERS: &[&str] = &[
    "select",
    "abs",
    "sign",
    "exp",
    "ln_1p",
    "ln",
    "sqrt",
    "sin",
    "cos",
    "tanh",
    "erf",
    "powf",
    "powi",
    "times_int",
    "powi_derivative",
    "is_nan",
    "sigmoid",
];

/// Words a C++ (or CUDA) compiler reserves, and the prelude's own names: an op,
/// parameter or variable named so could not be a C++ identifier.
#[rustfmt::skip]
const RESERVED: &[&str] = &[
    "alignas", "alignof", "and", "and_eq", "asm", "auto", "bitand", "bitor", "bool", "break", "case", "catch",
    "char", "char8_t", "char16_t", "char32_t", "class", "compl", "concept", "const", "consteval", "constexpr",
    "constinit", "const_cast", "continue", "co_await", "co_return", "co_yield", "decltype", "default", "delete",
    "do", "double", "dynamic_cast", "else", "enum", "explicit", "export", "extern", "false", "float", "for",
    "friend", "goto", "if", "inline", "int", "long", "mutable", "namespace", "new", "noexcept", "not", "not_eq",
    "nullptr", "operator", "or", "or_eq", "private", "protected", "public", "register", "reinterpret_cast",
    "requires", "return", "short", "signed", "sizeof", "static", "static_assert", "static_cast", "struct", "switch",
    "template", "this", "thread_local", "throw", "true", "try", "typedef", "typeid", "typename", "union",
    "unsigned", "using", "virtual", "void", "volatile", "wchar_t", "while", "xor", "xor_eq", "ferrograd", "libm",
    "FERROGRAD_FN",
];

/// The element type a function is rendered for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ElementType {
    /// `f32`, C++'s `float`.
    F32,
    /// `f64`, C++'s `double`.
    F64,
}

impl ElementType {
    /// The C++ type: `"float"` or `"double"`.
    pub const fn cpp_name(self) -> &'static str {
        match self {
            ElementType::F32 => "float",
            ElementType::F64 => "double",
        }
    }

    /// The Rust type, which suffixes rendered functions' names: `"f32"` or `"f64"`.
    pub const fn rust_name(self) -> &'static str {
        match self {
            ElementType::F32 => "f32",
            ElementType::F64 => "f64",
        }
    }
}

/// Why an op cannot be rendered: a token of its declaration (or a name) that C++ would
/// not read as Rust does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RenderError {
    /// The op's name.
    pub op: &'static str,
    /// The function whose expression holds the token, or `None` for a name of the op
    /// itself (its own or a parameter's).
    pub function: Option<&'static str>,
    /// The offending token or name, as written.
    pub token: String,
    /// What is wrong with it.
    pub reason: String,
}

impl fmt::Display for RenderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.function {
            Some(function) => write!(
                f,
                "cannot render {}.{function} as C++: `{}`: {}",
                self.op, self.token, self.reason
            ),
            None => write!(f, "cannot render {} as C++: `{}`: {}", self.op, self.token, self.reason),
        }
    }
}

impl std::error::Error for RenderError {}

/// The name of the C++ function [`render_op`] writes for `function` of `op` and
/// `element`: `{op}_{function}_{f32|f64}`, as `Powf_derivative_f32`, in
/// `namespace ferrograd`.
pub fn function_name(op: &OpSpec, function: &FunctionSpec, element: ElementType) -> String {
    format!("{}_{}_{}", op.name, function.name, element.rust_name())
}

/// The C++ of every function of one op for one element type, to be compiled after
/// [`PRELUDE`], or an error naming the first token that C++ would not read as Rust
/// does.
///
/// Each function is `FERROGRAD_FN T {op}_{function}_{f32|f64}(bound variables...,
/// parameters...)` (see [`function_name`]), in `namespace ferrograd`, where `T` is
/// `float` or `double` and an integer parameter is an `int`. Every function takes all
/// the op's parameters, so a device passes the same arguments to each; those a
/// function does not read are marked unused.
///
/// ```
/// use ferrograd_device::ops::elementwise::render::{ElementType, PRELUDE, render_op};
/// use ferrograd_device::ops::elementwise::{Powf, UnaryOp};
///
/// let source = render_op(&<Powf<f32> as UnaryOp>::SPEC, ElementType::F32)?;
/// // Float literals take the element type, so the f32 kernel computes in float.
/// assert!(source.contains(
///     "FERROGRAD_FN float Powf_derivative_f32(float x, float exponent) {\n    \
///      return select(exponent == 0.0f, 0.0f, exponent * powf(x, exponent - 1.0f));"
/// ));
/// let double = render_op(&<Powf<f64> as UnaryOp>::SPEC, ElementType::F64)?;
/// assert!(double.contains("select(exponent == 0.0, 0.0, exponent * powf(x, exponent - 1.0))"));
/// // A device compiles the prelude, then the rendered ops, then its kernels.
/// let translation_unit = format!("{PRELUDE}{source}");
/// # let _ = translation_unit;
/// # Ok::<(), ferrograd_device::ops::elementwise::render::RenderError>(())
/// ```
pub fn render_op(spec: &OpSpec, element: ElementType) -> Result<String, RenderError> {
    check_name(spec, None, spec.name)?;
    for (i, param) in spec.params.iter().enumerate() {
        check_name(spec, None, param.name)?;
        if spec.params[..i].iter().any(|earlier| earlier.name == param.name) {
            return Err(error(spec, None, param.name, "two parameters have this name"));
        }
    }
    let mut out = String::from("namespace ferrograd {\n");
    for function in spec.functions {
        out.push_str(&render_function(spec, function, element)?);
    }
    out.push_str("}  // namespace ferrograd\n");
    Ok(out)
}

/// [`render_op`] for a declared unary op: `render_unary::<Exp>(ElementType::F32)`.
pub fn render_unary<Op: UnaryOp>(element: ElementType) -> Result<String, RenderError> {
    render_op(&Op::SPEC, element)
}

/// [`render_op`] for a declared binary op: `render_binary::<Mul>(ElementType::F64)`.
pub fn render_binary<Op: BinaryOp>(element: ElementType) -> Result<String, RenderError> {
    render_op(&Op::SPEC, element)
}

/// [`render_op`] for every declared unary and binary op, one after the other: what a
/// device compiles (after [`PRELUDE`]) to have every element-wise op of one element
/// type.
pub fn render_all(element: ElementType) -> Result<String, RenderError> {
    let mut out = String::new();
    for spec in super::unary_op_specs().iter().chain(super::binary_op_specs()) {
        out.push_str(&render_op(spec, element)?);
    }
    Ok(out)
}

fn render_function(spec: &OpSpec, function: &FunctionSpec, element: ElementType) -> Result<String, RenderError> {
    let in_function = Some(function.name);
    check_name(spec, in_function, function.name)?;
    for (i, variable) in function.bound.iter().enumerate() {
        check_name(spec, in_function, variable)?;
        if function.bound[..i].contains(variable) || spec.params.iter().any(|param| param.name == *variable) {
            return Err(error(
                spec,
                in_function,
                variable,
                "names both a variable and another variable or parameter",
            ));
        }
    }
    let tokens = tokenize(function.source).map_err(|(token, reason)| error(spec, in_function, token, reason))?;
    check(spec, function, &tokens)?;

    let cpp = element.cpp_name();
    let arguments: Vec<(&str, &str)> = function
        .bound
        .iter()
        .map(|variable| (cpp, *variable))
        .chain(spec.params.iter().map(|param| {
            let ty = match param.ty {
                ParamType::Element => cpp,
                ParamType::Integer => "int",
            };
            (ty, param.name)
        }))
        .collect();
    let signature: Vec<String> = arguments.iter().map(|(ty, name)| format!("{ty} {name}")).collect();
    let mut out = format!(
        "// {}.{} for {cpp}: {}\nFERROGRAD_FN {cpp} {}({}) {{\n",
        spec.name,
        function.name,
        function.source.split_whitespace().collect::<Vec<_>>().join(" "),
        function_name(spec, function, element),
        signature.join(", "),
    );
    // Every function takes every parameter; the unread ones would warn under -Wextra.
    for (_, name) in &arguments {
        if !tokens
            .iter()
            .any(|token| token.kind == Kind::Identifier && token.text == *name)
        {
            out.push_str(&format!("    (void){name};\n"));
        }
    }
    out.push_str(&format!("    return {};\n}}\n", write_expression(&tokens, element)));
    Ok(out)
}

/// What a token of an expression is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Identifier,
    /// A literal with a fraction or an exponent: of the element type.
    FloatLiteral,
    /// A literal of digits only: an `i32`, since Rust would not accept it as a float.
    IntegerLiteral,
    /// An operator, a parenthesis or a comma.
    Punctuation,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Token<'a> {
    kind: Kind,
    text: &'a str,
}

/// Operators that read the same in Rust and C++ on floats, `i32` and `bool`, longest
/// first so that `<=` is not read as `<` then `=`. Rust's `%` (C++ rejects it on
/// floats), bitwise operators (their precedence differs) and `=` are left out.
const OPERATORS: &[&str] = &[
    "==", "!=", "<=", ">=", "&&", "||", "+", "-", "*", "/", "<", ">", "!", "(", ")", ",",
];

/// Splits `stringify!`'s text (or any spacing of it) into tokens, or returns the first
/// text that is not a token of the subset, with the reason.
fn tokenize(source: &str) -> Result<Vec<Token<'_>>, (&str, &'static str)> {
    let bytes = source.as_bytes();
    let is_identifier_start = |b: u8| b.is_ascii_alphabetic() || b == b'_';
    let is_identifier_continue = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let is_digit = |b: u8| b.is_ascii_digit() || b == b'_';
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        let start = i;
        if b.is_ascii_whitespace() {
            i += 1;
        } else if is_identifier_start(b) {
            while i < bytes.len() && is_identifier_continue(bytes[i]) {
                i += 1;
            }
            tokens.push(Token {
                kind: Kind::Identifier,
                text: &source[start..i],
            });
        } else if b.is_ascii_digit() {
            let mut kind = Kind::IntegerLiteral;
            while i < bytes.len() && is_digit(bytes[i]) {
                i += 1;
            }
            // A `.` followed by a digit, an operator or nothing is a fraction (`1.5`,
            // `1.`); followed by a letter it is a method call (`1.max(…)`) and by `.` a
            // range, both left for the error below.
            if i < bytes.len()
                && bytes[i] == b'.'
                && bytes
                    .get(i + 1)
                    .is_none_or(|&next| next != b'.' && !is_identifier_start(next))
            {
                kind = Kind::FloatLiteral;
                i += 1;
                while i < bytes.len() && is_digit(bytes[i]) {
                    i += 1;
                }
            }
            if i < bytes.len() && (bytes[i] == b'e' || bytes[i] == b'E') {
                let mut j = i + 1;
                if j < bytes.len() && (bytes[j] == b'+' || bytes[j] == b'-') {
                    j += 1;
                }
                if j < bytes.len() && bytes[j].is_ascii_digit() {
                    kind = Kind::FloatLiteral;
                    i = j;
                    while i < bytes.len() && is_digit(bytes[i]) {
                        i += 1;
                    }
                }
            }
            if i < bytes.len() && is_identifier_continue(bytes[i]) {
                while i < bytes.len() && is_identifier_continue(bytes[i]) {
                    i += 1;
                }
                return Err((
                    &source[start..i],
                    "a literal with a suffix or in another base is Rust-only; write `2.0` for the element type \
                     or `2` for an i32",
                ));
            }
            tokens.push(Token {
                kind,
                text: &source[start..i],
            });
        } else if let Some(operator) = OPERATORS.iter().find(|operator| source[i..].starts_with(**operator)) {
            i += operator.len();
            tokens.push(Token {
                kind: Kind::Punctuation,
                text: &source[start..i],
            });
        } else {
            let length = source[i..].chars().next().map_or(1, char::len_utf8);
            let text = &source[i..i + length];
            let reason = match b {
                b'.' => "method calls, fields and ranges are Rust-only; call a prelude helper instead",
                b':' => "paths (`f32::MAX`) are Rust-only; write the constant as a literal",
                _ => "not part of the subset of Rust that reads the same in C++",
            };
            return Err((text, reason));
        }
    }
    Ok(tokens)
}

/// Checks that every identifier is a bound variable, a parameter or a called helper,
/// and that parentheses balance.
fn check(spec: &OpSpec, function: &FunctionSpec, tokens: &[Token<'_>]) -> Result<(), RenderError> {
    let in_function = Some(function.name);
    if tokens.is_empty() {
        return Err(error(spec, in_function, "", "the expression is empty"));
    }
    let mut depth = 0usize;
    for (i, token) in tokens.iter().enumerate() {
        let called = tokens.get(i + 1).is_some_and(|next| next.text == "(");
        match (token.kind, token.text) {
            (Kind::Punctuation, "(") => depth += 1,
            (Kind::Punctuation, ")") => {
                depth = depth
                    .checked_sub(1)
                    .ok_or_else(|| error(spec, in_function, ")", "closes a parenthesis that was not opened"))?;
            }
            (Kind::Identifier, "true" | "false") => {}
            (Kind::Identifier, name) => {
                let variable = function.bound.contains(&name) || spec.params.iter().any(|param| param.name == name);
                let reason = match (variable, HELPERS.contains(&name), called) {
                    (true, _, false) | (false, true, true) => continue,
                    (true, _, true) => "is a variable, not a function".to_string(),
                    (false, true, false) => "is a prelude helper, and must be called".to_string(),
                    (false, false, _) => {
                        let list = |names: Vec<&str>| {
                            if names.is_empty() {
                                "none".to_string()
                            } else {
                                names.join(", ")
                            }
                        };
                        format!(
                            "is not a variable of `{}` ({}), a parameter of `{}` ({}), or a prelude helper ({})",
                            function.name,
                            list(function.bound.to_vec()),
                            spec.name,
                            list(spec.params.iter().map(|param| param.name).collect()),
                            HELPERS.join(", "),
                        )
                    }
                };
                return Err(error(spec, in_function, name, reason));
            }
            _ => {}
        }
    }
    if depth != 0 {
        return Err(error(spec, in_function, "(", "is never closed"));
    }
    Ok(())
}

/// Rejects a name C++ could not use as an identifier of a rendered function.
fn check_name(spec: &OpSpec, function: Option<&'static str>, name: &str) -> Result<(), RenderError> {
    let mut bytes = name.bytes();
    let is_identifier = bytes.next().is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_');
    let reason = if !is_identifier {
        "is not an identifier"
    } else if RESERVED.contains(&name) {
        "is a C++ keyword or a name the prelude uses"
    } else if HELPERS.contains(&name) {
        "is the name of a prelude helper"
    } else if name.starts_with("__") || name.starts_with('_') && name[1..].starts_with(|c: char| c.is_ascii_uppercase())
    {
        "is reserved to the C++ implementation"
    } else {
        return Ok(());
    };
    Err(error(spec, function, name, reason))
}

fn error(spec: &OpSpec, function: Option<&'static str>, token: &str, reason: impl Into<String>) -> RenderError {
    RenderError {
        op: spec.name,
        function,
        token: token.to_string(),
        reason: reason.into(),
    }
}

/// The checked tokens as C++, spaced as `rustfmt` would space the expression.
fn write_expression(tokens: &[Token<'_>], element: ElementType) -> String {
    let mut out = String::new();
    let mut previous: Option<Token<'_>> = None;
    // Whether the previous token was a prefix `-` or `!`, which binds without a space.
    let mut after_prefix = false;
    for &token in tokens {
        let is_prefix = token.kind == Kind::Punctuation
            && matches!(token.text, "-" | "!")
            && previous.is_none_or(|p| p.kind == Kind::Punctuation && p.text != ")");
        let space = match previous {
            None => false,
            // `- -x` must not become `--x`, which C++ reads as a decrement.
            Some(p) if after_prefix && p.text == "-" && token.text == "-" => true,
            Some(p) => {
                !(after_prefix
                    || p.text == "("
                    || matches!(token.text, ")" | ",")
                    || token.text == "(" && p.kind == Kind::Identifier)
            }
        };
        if space {
            out.push(' ');
        }
        match token.kind {
            Kind::FloatLiteral => {
                out.extend(token.text.chars().filter(|&c| c != '_'));
                if element == ElementType::F32 {
                    out.push('f');
                }
            }
            Kind::IntegerLiteral => {
                // Rust's `010` is ten; C++ would read it as octal eight.
                let digits: String = token.text.chars().filter(|&c| c != '_').collect();
                let significant = digits.trim_start_matches('0');
                out.push_str(if significant.is_empty() { "0" } else { significant });
            }
            Kind::Identifier | Kind::Punctuation => out.push_str(token.text),
        }
        after_prefix = is_prefix;
        previous = Some(token);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::{Add, Exp, Gelu, Powi, ScalarMul, Sqrt, binary_op_specs, unary_op_specs};
    use super::*;
    use crate::ops::elementwise::Param;

    fn spec(name: &'static str, bound: &'static [&'static str], source: &'static str) -> OpSpec {
        // Leaked so a test can build specs from its own strings: the fields are 'static.
        let functions = Box::leak(Box::new([FunctionSpec {
            name: "value",
            bound,
            source,
        }]));
        OpSpec {
            name,
            params: &[Param {
                name: "scale",
                ty: ParamType::Element,
            }],
            functions,
        }
    }

    fn body(rendered: &str) -> &str {
        let start = rendered.find("return ").expect("a return statement") + "return ".len();
        &rendered[start..start + rendered[start..].find(";\n").expect("the end of the statement")]
    }

    #[test]
    fn float_literals_take_the_element_type_and_integer_literals_stay_int() {
        let f32_source = render_unary::<Gelu>(ElementType::F32).unwrap();
        assert!(
            f32_source.contains("return 0.5f * x * (1.0f + erf(x * 0.7071067811865476f));"),
            "{f32_source}"
        );
        let f64_source = render_unary::<Gelu>(ElementType::F64).unwrap();
        assert!(
            f64_source.contains("return 0.5 * x * (1.0 + erf(x * 0.7071067811865476));"),
            "{f64_source}"
        );

        let powi = render_unary::<Powi>(ElementType::F32).unwrap();
        assert!(
            powi.contains("return select(exponent == 0, 0.0f, powi_derivative(x, exponent));"),
            "{powi}"
        );
        assert!(
            powi.contains("FERROGRAD_FN float Powi_value_f32(float x, int exponent)"),
            "{powi}"
        );

        let literals = spec(
            "Literals",
            &["x"],
            "1e-3 * x + 2.5E+2 * x + 1_000.0 * x + 1. * x + select(007 == 7, x, -x)",
        );
        assert_eq!(
            body(&render_op(&literals, ElementType::F32).unwrap()),
            "1e-3f * x + 2.5E+2f * x + 1000.0f * x + 1.f * x + select(7 == 7, x, -x)"
        );
        assert_eq!(
            body(&render_op(&literals, ElementType::F64).unwrap()),
            "1e-3 * x + 2.5E+2 * x + 1000.0 * x + 1. * x + select(7 == 7, x, -x)"
        );
    }

    #[test]
    fn derivative_variables_follow_the_declaration() {
        // From the output, from nothing, and a binary op whose derivatives are constant.
        let sqrt = render_unary::<Sqrt>(ElementType::F64).unwrap();
        assert!(
            sqrt.contains("FERROGRAD_FN double Sqrt_derivative_f64(double y) {\n    return 0.5 / y;"),
            "{sqrt}"
        );
        let scale = render_unary::<ScalarMul<f32>>(ElementType::F32).unwrap();
        assert!(scale.contains("FERROGRAD_FN float ScalarMul_derivative_f32(float scalar) {\n    return scalar;"));
        assert!(scale.contains("FERROGRAD_FN float ScalarMul_value_f32(float x, float scalar)"));
        let add = render_binary::<Add>(ElementType::F32).unwrap();
        assert!(
            add.contains("FERROGRAD_FN float Add_dx_f32() {\n    return 1.0f;"),
            "{add}"
        );
        assert!(
            add.contains("FERROGRAD_FN float Add_value_f32(float x, float y) {\n    return x + y;"),
            "{add}"
        );
        // A parameter a function does not read is still taken, and marked unused.
        let exp = render_unary::<Exp>(ElementType::F32).unwrap();
        assert!(exp.contains("Exp_derivative_f32(float y) {\n    return y;"), "{exp}");
        let spec = spec("Unread", &["x"], "x");
        assert!(
            render_op(&spec, ElementType::F32)
                .unwrap()
                .contains("    (void)scale;\n    return x;")
        );
    }

    #[test]
    fn operators_are_spaced_and_prefixes_bind() {
        let spec = spec("Spacing", &["x"], "-(x*x)+select(!(x<=0.0)&&x!=-1.0,-x,scale)/-x- - -x");
        assert_eq!(
            body(&render_op(&spec, ElementType::F64).unwrap()),
            "-(x * x) + select(!(x <= 0.0) && x != -1.0, -x, scale) / -x - - -x"
        );
    }

    #[test]
    fn every_declared_op_renders_for_both_element_types() {
        assert!(unary_op_specs().len() > 20 && binary_op_specs().len() >= 6);
        for element in [ElementType::F32, ElementType::F64] {
            let all = render_all(element).unwrap();
            for spec in unary_op_specs().iter().chain(binary_op_specs()) {
                for function in spec.functions {
                    let name = function_name(spec, function, element);
                    assert!(all.contains(&format!(" {name}(")), "{name} missing");
                }
            }
        }
    }

    #[test]
    fn unknown_identifiers_and_rust_only_syntax_are_errors_naming_op_and_token() {
        let rejected = [
            ("x.abs()", ".", "method calls"),
            ("f32::MAX * x", ":", "paths"),
            (
                "max(x, scale)",
                "max",
                "not a variable of `value` (x), a parameter of `Bad` (scale)",
            ),
            ("x as f64", "as", "not a variable"),
            ("2.0f32 * x", "2.0f32", "suffix"),
            ("0x10 * x", "0x10", "suffix"),
            ("x % scale", "%", "not part of the subset"),
            ("x & scale", "&", "not part of the subset"),
            ("exp * x", "exp", "must be called"),
            ("x(scale)", "x", "not a function"),
            ("(x + scale", "(", "never closed"),
            ("x + scale)", ")", "not opened"),
            ("", "", "empty"),
        ];
        for (source, token, reason) in rejected {
            let error = render_op(&spec("Bad", &["x"], source), ElementType::F32).unwrap_err();
            assert_eq!(
                (error.op, error.function, error.token.as_str()),
                ("Bad", Some("value"), token),
                "{source}"
            );
            assert!(error.reason.contains(reason), "{source}: {error}");
            assert!(
                error
                    .to_string()
                    .starts_with(&format!("cannot render Bad.value as C++: `{token}`"))
            );
        }
        // A constant derivative is given no variable, so reading one is caught.
        let constant = spec("Constant", &[], "x * scale");
        let error = render_op(&constant, ElementType::F64).unwrap_err();
        assert_eq!(error.token, "x");
        assert!(error.reason.contains("not a variable of `value` (none)"), "{error}");
    }

    #[test]
    fn names_c_plus_plus_cannot_use_are_errors() {
        let keyword = OpSpec {
            name: "Keyword",
            params: &[Param {
                name: "float",
                ty: ParamType::Element,
            }],
            ..spec("", &[], "")
        };
        assert_eq!(render_op(&keyword, ElementType::F32).unwrap_err().token, "float");
        let helper = OpSpec {
            name: "Helper",
            params: &[Param {
                name: "exp",
                ty: ParamType::Integer,
            }],
            ..keyword
        };
        assert_eq!(render_op(&helper, ElementType::F32).unwrap_err().token, "exp");
        let clash = spec("Clash", &["scale"], "scale");
        assert_eq!(render_op(&clash, ElementType::F32).unwrap_err().token, "scale");
        let reserved = spec("_Reserved", &["x"], "x");
        assert_eq!(render_op(&reserved, ElementType::F32).unwrap_err().function, None);
    }

    #[test]
    fn the_helpers_are_the_functions_of_math_and_the_prelude_defines_each() {
        let math = include_str!("../../math.rs");
        let declared: Vec<&str> = math
            .lines()
            .filter_map(|line| line.trim_start().strip_prefix("pub fn "))
            .map(|rest| &rest[..rest.find(['<', '(']).unwrap()])
            .collect();
        let mut helpers = HELPERS.to_vec();
        let mut declared_sorted = declared.clone();
        helpers.sort_unstable();
        declared_sorted.sort_unstable();
        assert_eq!(helpers, declared_sorted, "math.rs and the renderer's helpers differ");
        for helper in HELPERS {
            let definition = [" T ", " bool "]
                .iter()
                .any(|ty| PRELUDE.contains(&format!("{ty}{helper}(")));
            assert!(definition, "the prelude does not define {helper}");
        }
    }
}
