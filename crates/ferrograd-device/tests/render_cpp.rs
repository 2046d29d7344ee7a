//! The C++ rendering of the element-wise declarations computes what the Rust functions
//! compute: every declared op, for f32 and f64, is rendered, compiled with the host C++
//! compiler (`$CXX`, else `c++`), run on sampled inputs, and compared number by number
//! with `UnaryFn`/`BinaryFn`.
//!
//! Needs a C++17 compiler; without one the tests fail and say to install g++ (`.ci/run`
//! installs it), since a silently skipped check is a check that never runs.
//!
//! Tolerance: NaN must meet NaN (any payload), infinities and signed zeros must be equal,
//! and other values may differ by at most [`ULP_TOLERANCE`] (4) units in the last place.
//! Both sides run the same IEEE operations in the same order and call the same C
//! library for `exp`, `log1p`, `ln`, `sin`, `cos`, `tanh` and `pow`, so those agree bit
//! for bit; the ulps are room for a math library that rounds a last bit differently:
//! Rust's `erf` is the `libm` crate's (musl's), C++'s the platform's. (On Debian 12,
//! glibc 2.36, every result agrees bit for bit.) Where an expression calls `erf`, an
//! ulp of `erf` near ±1 can be most of the result (`Gelu` at negative x computes
//! `1 + erf(…)` with `erf` near -1), so those functions may also differ by 4 ulps of 1
//! times `max(1, |x|)` in absolute terms: the size of an ulp of `erf` after `Gelu`'s
//! factors. A rendering error (a literal computed in the wrong type, a helper with
//! other edge cases, a wrong constant) shows up as a NaN, an infinity, a sign or
//! far more than that.

use ferrograd_device::ops::elementwise::render::{ElementType, PRELUDE, function_name, render_all};
use ferrograd_device::ops::elementwise::*;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::{Debug, Write as _};
use std::path::{Path, PathBuf};
use std::process::Command;

/// How many units in the last place a C++ result may differ from Rust's.
const ULP_TOLERANCE: u64 = 4;

/// The headers the host needs before the prelude (under NVRTC the math functions are
/// built-ins), and the helpers the generated `main` uses.
const HOST_HEADERS: &str = "#include <math.h>\n#include <stdint.h>\n#include <stdio.h>\n#include <string.h>\n";

/// f32 or f64, as the test needs them: bit patterns, neighbours and the C++ glue.
trait Element: Copy + Debug + PartialEq + 'static {
    const TYPE: ElementType;
    /// Hex digits of a bit pattern.
    const HEX_DIGITS: usize;
    /// The unsigned C++ type holding a bit pattern.
    const BITS_TYPE: &'static str;
    const MAX: Self;
    const MIN_POSITIVE: Self;
    const SMALLEST_SUBNORMAL: Self;
    const EPSILON: Self;
    fn from_f64(value: f64) -> Self;
    fn to_f64(self) -> f64;
    fn bits(self) -> u64;
    fn from_bits(bits: u64) -> Self;
    fn is_nan(self) -> bool;
    fn is_infinite(self) -> bool;
    fn is_zero(self) -> bool;
    fn next_up(self) -> Self;
    fn next_down(self) -> Self;
    /// The bit pattern as a signed position on the number line, so that the distance
    /// between two positions is their distance in ulps (+0 and -0 both at 0).
    fn ordered(self) -> i64;
}

macro_rules! element {
    ($t:ty, $bits:ty, $type:expr, $digits:expr, $cpp_bits:expr) => {
        impl Element for $t {
            const TYPE: ElementType = $type;
            const HEX_DIGITS: usize = $digits;
            const BITS_TYPE: &'static str = $cpp_bits;
            const MAX: Self = <$t>::MAX;
            const MIN_POSITIVE: Self = <$t>::MIN_POSITIVE;
            const SMALLEST_SUBNORMAL: Self = <$t>::from_bits(1);
            const EPSILON: Self = <$t>::EPSILON;
            fn from_f64(value: f64) -> Self {
                value as $t
            }
            fn to_f64(self) -> f64 {
                self as f64
            }
            fn bits(self) -> u64 {
                self.to_bits() as u64
            }
            fn from_bits(bits: u64) -> Self {
                <$t>::from_bits(bits as $bits)
            }
            fn is_nan(self) -> bool {
                <$t>::is_nan(self)
            }
            fn is_infinite(self) -> bool {
                <$t>::is_infinite(self)
            }
            fn is_zero(self) -> bool {
                self == 0.0
            }
            fn next_up(self) -> Self {
                <$t>::next_up(self)
            }
            fn next_down(self) -> Self {
                <$t>::next_down(self)
            }
            fn ordered(self) -> i64 {
                let magnitude = (self.to_bits() & !(1 << (<$bits>::BITS - 1))) as i64;
                if self.is_sign_negative() {
                    -magnitude
                } else {
                    magnitude
                }
            }
        }
    };
}
element!(f32, u32, ElementType::F32, 8, "uint32_t");
element!(f64, u64, ElementType::F64, 16, "uint64_t");

/// Inputs of unary ops: zeros, ones, small and large magnitudes, the ends of the
/// range, infinities, NaN, and each side of the kinks of the declarations (0, the clamp
/// bounds and softplus thresholds used below, where exp overflows).
fn unary_samples<E: Element>() -> Vec<E> {
    let plain = [
        0.0,
        -0.0,
        1.0,
        -1.0,
        0.5,
        -0.5,
        2.0,
        -2.0,
        3.0,
        -3.0,
        0.1,
        -0.7,
        0.25,
        3.5,
        -7.25,
        5.0,
        6.0,
        10.0,
        -10.0,
        20.0,
        -20.0,
        30.0,
        100.0,
        -100.0,
        1e-3,
        -1e-3,
        1e-7,
        1e-20,
        -1e-20,
        88.0,
        89.0,
        -87.0,
        -104.0,
        700.0,
        710.0,
        -745.0,
        1e10,
        -1e10,
        1e30,
        -1e30,
        1e300,
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::NAN,
    ];
    let mut samples: Vec<E> = plain.iter().map(|&v| E::from_f64(v)).collect();
    for kink in [0.0, 1.0, -1.0, 2.0, 0.5, 5.0, 10.0, 20.0, 6.0] {
        let kink = E::from_f64(kink);
        samples.extend([kink.next_up(), kink.next_down()]);
    }
    for extreme in [E::MAX, E::MIN_POSITIVE, E::SMALLEST_SUBNORMAL, E::EPSILON] {
        samples.extend([extreme, E::from_bits(extreme.bits() | sign_bit::<E>())]);
    }
    deduplicate(samples)
}

/// Inputs of binary ops, each paired with each: fewer, since the pairs are squared;
/// the equal pairs on the diagonal are the ties of maximum and minimum.
fn binary_samples<E: Element>() -> Vec<E> {
    let plain = [
        0.0,
        -0.0,
        1.0,
        -1.0,
        2.0,
        -2.0,
        0.5,
        3.0,
        -3.5,
        7.0,
        1e-30,
        -1e30,
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::NAN,
    ];
    let mut samples: Vec<E> = plain.iter().map(|&v| E::from_f64(v)).collect();
    samples.extend([
        E::MAX,
        E::from_bits(E::MAX.bits() | sign_bit::<E>()),
        E::MIN_POSITIVE,
        E::SMALLEST_SUBNORMAL,
    ]);
    deduplicate(samples)
}

fn sign_bit<E: Element>() -> u64 {
    1 << (E::HEX_DIGITS * 4 - 1)
}

fn deduplicate<E: Element>(samples: Vec<E>) -> Vec<E> {
    let mut seen = BTreeSet::new();
    samples
        .into_iter()
        .filter(|sample| seen.insert(sample.bits()))
        .collect()
}

/// A parameter value passed to both the Rust op and the C++ functions.
#[derive(Clone, Copy, Debug)]
enum Arg<E> {
    Element(E),
    Integer(i32),
}

/// One number the C++ program prints, and what Rust computed for it.
struct Expected<E> {
    /// The op with its parameters, the function and its inputs, for a failure message.
    what: String,
    op: &'static str,
    rust: E,
    /// The absolute difference allowed besides the ulps (0 unless the expression
    /// calls `erf`).
    allowance: f64,
}

/// The calls of one element type: the C++ statements of `main`, the tables of inputs
/// they read, and Rust's results in the order C++ prints them.
struct Plan<E: Element> {
    /// Every input and parameter value, read by C++ from a `volatile` table so that
    /// the compiler cannot fold a call with constant arguments (GCC evaluates `expf(2.0f)`
    /// with its own correctly rounded arithmetic, not the library's).
    values: Vec<E>,
    integers: Vec<i32>,
    unary_samples: Vec<E>,
    binary_samples: Vec<E>,
    main: String,
    expected: Vec<Expected<E>>,
    covered: BTreeSet<&'static str>,
}

impl<E: Element> Plan<E> {
    fn new() -> Self {
        let (unary_samples, binary_samples) = (unary_samples::<E>(), binary_samples::<E>());
        let values = unary_samples.iter().chain(&binary_samples).copied().collect();
        Plan {
            values,
            integers: Vec::new(),
            unary_samples,
            binary_samples,
            main: String::new(),
            expected: Vec::new(),
            covered: BTreeSet::new(),
        }
    }

    fn suffix(&self) -> &'static str {
        E::TYPE.rust_name()
    }

    /// C++ declarations of the parameters `p0, p1, …`, read from the tables.
    fn parameters(&mut self, spec: &OpSpec, args: &[Arg<E>]) -> String {
        let kinds: Vec<ParamType> = args
            .iter()
            .map(|arg| match arg {
                Arg::Element(_) => ParamType::Element,
                Arg::Integer(_) => ParamType::Integer,
            })
            .collect();
        let declared: Vec<ParamType> = spec.params.iter().map(|param| param.ty).collect();
        assert_eq!(kinds, declared, "the test passes {} the wrong parameters", spec.name);
        let suffix = self.suffix();
        let mut out = String::new();
        for (i, arg) in args.iter().enumerate() {
            match *arg {
                Arg::Element(value) => {
                    self.values.push(value);
                    let index = self.values.len() - 1;
                    writeln!(out, "        const {} p{i} = at_{suffix}({index});", E::TYPE.cpp_name()).unwrap();
                }
                Arg::Integer(value) => {
                    self.integers.push(value);
                    let index = self.integers.len() - 1;
                    writeln!(out, "        const int p{i} = integer_{suffix}({index});").unwrap();
                }
            }
        }
        out
    }

    fn call(&self, spec: &OpSpec, function: &FunctionSpec, variables: &[String]) -> String {
        let arguments: Vec<String> = variables
            .iter()
            .cloned()
            .chain((0..spec.params.len()).map(|i| format!("p{i}")))
            .collect();
        format!(
            "emit_{}(ferrograd::{}({}));",
            self.suffix(),
            function_name(spec, function, E::TYPE),
            arguments.join(", ")
        )
    }

    fn unary<Op: UnaryFn<E>>(&mut self, op: Op, args: &[Arg<E>]) {
        let spec = Op::SPEC;
        self.covered.insert(spec.name);
        let parameters = self.parameters(&spec, args);
        let suffix = self.suffix();
        let mut calls = String::new();
        for function in spec.functions {
            // The sample stands for whichever variable the function reads (x, or y).
            let variables = vec!["s".to_string(); function.bound.len()];
            writeln!(calls, "            {}", self.call(&spec, function, &variables)).unwrap();
        }
        writeln!(
            self.main,
            "    {{  // {op:?}\n{parameters}        for (int i = 0; i < {count}; ++i) {{\n            \
             const {cpp} s = at_{suffix}(i);\n{calls}        }}\n    }}",
            count = self.unary_samples.len(),
            cpp = E::TYPE.cpp_name(),
        )
        .unwrap();
        for &s in &self.unary_samples {
            for function in spec.functions {
                let rust = match function.name {
                    "value" => op.value(s),
                    "derivative" => op.derivative(s),
                    other => panic!("{}: no Rust function for {other}", spec.name),
                };
                let what = format!("{op:?} {} {}({s:?})", suffix, function.name);
                let allowance = if function.source.contains("erf") && s.to_f64().is_finite() {
                    ULP_TOLERANCE as f64 * E::EPSILON.to_f64() * s.to_f64().abs().max(1.0)
                } else {
                    0.0
                };
                self.expected.push(Expected {
                    what,
                    op: spec.name,
                    rust,
                    allowance,
                });
            }
        }
    }

    fn binary<Op: BinaryFn<E>>(&mut self, op: Op) {
        let spec = Op::SPEC;
        self.covered.insert(spec.name);
        let suffix = self.suffix();
        let lhs_name = spec.function("value").expect("a value function").bound[0];
        let mut calls = String::new();
        for function in spec.functions {
            let variables: Vec<String> = function
                .bound
                .iter()
                .map(|name| if *name == lhs_name { "a" } else { "b" }.to_string())
                .collect();
            writeln!(calls, "            {}", self.call(&spec, function, &variables)).unwrap();
        }
        let (start, count) = (self.unary_samples.len(), self.binary_samples.len());
        writeln!(
            self.main,
            "    {{  // {op:?}\n        for (int i = 0; i < {count}; ++i) for (int j = 0; j < {count}; ++j) {{\n            \
             const {cpp} a = at_{suffix}({start} + i), b = at_{suffix}({start} + j);\n{calls}        }}\n    }}",
            cpp = E::TYPE.cpp_name(),
        )
        .unwrap();
        for &a in &self.binary_samples {
            for &b in &self.binary_samples {
                for function in spec.functions {
                    let rust = match function.name {
                        "value" => op.value(a, b),
                        "dx" => op.dx(a, b),
                        "dy" => op.dy(a, b),
                        other => panic!("{}: no Rust function for {other}", spec.name),
                    };
                    assert!(
                        !function.source.contains("erf"),
                        "{}: give binary ops an erf allowance",
                        spec.name
                    );
                    let what = format!("{op:?} {} {}({a:?}, {b:?})", suffix, function.name);
                    self.expected.push(Expected {
                        what,
                        op: spec.name,
                        rust,
                        allowance: 0.0,
                    });
                }
            }
        }
    }

    /// Fails naming every declared op the test does not call: a new declaration needs
    /// its parameter values here before it is checked.
    fn assert_covers_every_declared_op(&self) {
        let declared: BTreeSet<&str> = unary_op_specs()
            .iter()
            .chain(binary_op_specs())
            .map(|spec| spec.name)
            .collect();
        let missing: Vec<&&str> = declared.difference(&self.covered).collect();
        assert!(
            missing.is_empty(),
            "render_cpp.rs does not test {missing:?}: add them to `every_op!` with parameter values"
        );
    }

    /// The tables and glue of this element type, for before `main`.
    fn definitions(&self) -> String {
        let suffix = self.suffix();
        let digits = E::HEX_DIGITS;
        let values: Vec<String> = self
            .values
            .iter()
            .map(|v| format!("0x{:0digits$x}u", v.bits()))
            .collect();
        // A trailing 0 keeps the array non-empty when no op takes an integer.
        let integers: Vec<String> = self
            .integers
            .iter()
            .map(|&n| format!("0x{:08x}u", n as u32))
            .chain(["0".to_string()])
            .collect();
        let (cpp, bits) = (E::TYPE.cpp_name(), E::BITS_TYPE);
        format!(
            "static volatile const {bits} values_{suffix}[] = {{{values}}};\n\
             static volatile const uint32_t integers_{suffix}[] = {{{integers}}};\n\
             static {cpp} at_{suffix}(int i) {{ const {bits} bits = values_{suffix}[i]; {cpp} v; memcpy(&v, &bits, sizeof v); return v; }}\n\
             static int integer_{suffix}(int i) {{ const uint32_t bits = integers_{suffix}[i]; int v; memcpy(&v, &bits, sizeof v); return v; }}\n\
             static void emit_{suffix}({cpp} v) {{ {bits} bits; memcpy(&bits, &v, sizeof bits); printf(\"%0{digits}llx\\n\", (unsigned long long)bits); }}\n",
            values = values.join(", "),
            integers = integers.join(", "),
        )
    }
}

/// Every declared op with parameter values that reach its edge cases: exponents 0,
/// negative, fractional and large; slopes and scalars 0, negative, infinite and NaN;
/// inverted and infinite clamp bounds; softplus thresholds that the samples straddle.
macro_rules! every_op {
    ($plan:expr, $E:ty) => {{
        let plan: &mut Plan<$E> = $plan;
        let element = |v: f64| v as $E;
        plan.unary(Negate {}, &[]);
        plan.unary(Abs {}, &[]);
        plan.unary(Exp {}, &[]);
        plan.unary(Ln {}, &[]);
        plan.unary(Sqrt {}, &[]);
        plan.unary(Square {}, &[]);
        for exponent in [0.0, 1.0, 2.0, 3.0, 0.5, -0.5, -1.0, -2.0, 1.5, 2.5, -3.0, 1.0 / 3.0] {
            let exponent = element(exponent);
            plan.unary(Powf { exponent }, &[Arg::Element(exponent)]);
        }
        for exponent in [0, 1, 2, 3, 4, 7, -1, -2, -3, 31, -31, i32::MAX, i32::MIN + 1, i32::MIN] {
            plan.unary(Powi { exponent }, &[Arg::Integer(exponent)]);
        }
        plan.unary(Recip {}, &[]);
        plan.unary(Sin {}, &[]);
        plan.unary(Cos {}, &[]);
        plan.unary(Tanh {}, &[]);
        plan.unary(Sigmoid {}, &[]);
        plan.unary(Relu {}, &[]);
        for slope in [0.01, 0.2, 0.0, -0.5, 1.5] {
            let negative_slope = element(slope);
            plan.unary(LeakyRelu { negative_slope }, &[Arg::Element(negative_slope)]);
        }
        plan.unary(Gelu {}, &[]);
        plan.unary(GeluTanh {}, &[]);
        plan.unary(Silu {}, &[]);
        for (beta, threshold) in [(1.0, 20.0), (2.0, 10.0), (0.5, 5.0), (-1.0, 20.0)] {
            let (beta, threshold) = (element(beta), element(threshold));
            plan.unary(
                Softplus { beta, threshold },
                &[Arg::Element(beta), Arg::Element(threshold)],
            );
        }
        let bounds = [
            (-1.0, 2.0),
            (0.0, 6.0),
            (f64::NEG_INFINITY, 0.5),
            (0.5, f64::INFINITY),
            (1.0, -1.0),
            (0.0, 0.0),
        ];
        for (min, max) in bounds.into_iter().chain([(f64::NAN, 1.0)]) {
            let (min, max) = (element(min), element(max));
            plan.unary(Clamp { min, max }, &[Arg::Element(min), Arg::Element(max)]);
        }
        for value in [0.0, -1.0, f64::INFINITY, 1e30] {
            let value = element(value);
            plan.unary(NansTo { value }, &[Arg::Element(value)]);
        }
        for scalar in [0.0, -0.0, 1.0, -2.5, 1e-3, f64::INFINITY, f64::NAN] {
            let scalar = element(scalar);
            plan.unary(ScalarAdd { scalar }, &[Arg::Element(scalar)]);
            plan.unary(ScalarSub { scalar }, &[Arg::Element(scalar)]);
            plan.unary(ScalarMul { scalar }, &[Arg::Element(scalar)]);
            plan.unary(ScalarDiv { scalar }, &[Arg::Element(scalar)]);
        }
        plan.binary(Add);
        plan.binary(Sub);
        plan.binary(Mul);
        plan.binary(Div);
        plan.binary(Maximum);
        plan.binary(Minimum);
        plan.assert_covers_every_declared_op();
    }};
}

/// The host compiler: `$CXX` (which may carry options, as `ccache g++`), else `c++`.
fn compiler() -> (String, Vec<String>) {
    let cxx = std::env::var("CXX")
        .ok()
        .filter(|cxx| !cxx.trim().is_empty())
        .unwrap_or_else(|| "c++".to_string());
    let mut words = cxx.split_whitespace().map(str::to_string);
    let program = words.next().expect("a non-empty compiler");
    (program, words.collect())
}

/// Writes `source` to `name.cpp` under the test's temporary directory and compiles it
/// with `flags` into `name` (an executable, or an object with `-c`). `Err` holds the
/// compiler's messages; a missing compiler fails the test.
fn compile(name: &str, source: &str, flags: &[&str]) -> Result<PathBuf, String> {
    let directory = Path::new(env!("CARGO_TARGET_TMPDIR")).join("render_cpp");
    std::fs::create_dir_all(&directory).expect("create the temporary directory");
    let source_path = directory.join(format!("{name}.cpp"));
    let output_path = directory.join(name);
    std::fs::write(&source_path, source).expect("write the C++ source");
    let (program, options) = compiler();
    let output = Command::new(&program)
        .args(&options)
        .args(flags)
        .arg(&source_path)
        .arg("-o")
        .arg(&output_path)
        .output()
        .unwrap_or_else(|error| {
            panic!(
                "cannot run the C++ compiler `{program}` ({error}): install g++ (`apt-get install g++`, which CI's \
                 .ci/run does) or set $CXX to a C++17 compiler; this test checks the C++ rendering of the \
                 element-wise ops and does not skip"
            )
        });
    if output.status.success() {
        Ok(output_path)
    } else {
        Err(format!(
            "`{program} {} {} {}` failed:\n{}",
            options.join(" "),
            flags.join(" "),
            source_path.display(),
            String::from_utf8_lossy(&output.stderr)
        ))
    }
}

/// Whether a C++ result agrees with Rust's, and by how many ulps, under the tolerance
/// in the module docs.
fn agreement<E: Element>(rust: E, cpp: E, allowance: f64) -> Result<u64, String> {
    if rust.is_nan() || cpp.is_nan() {
        return if rust.is_nan() && cpp.is_nan() {
            Ok(0)
        } else {
            Err("only one is NaN".to_string())
        };
    }
    if rust.is_infinite() || cpp.is_infinite() || (rust.is_zero() && cpp.is_zero()) {
        return if rust.bits() == cpp.bits() {
            Ok(0)
        } else {
            Err("infinities and signed zeros must be equal".into())
        };
    }
    let ulps = rust.ordered().abs_diff(cpp.ordered());
    if ulps <= ULP_TOLERANCE || (rust.to_f64() - cpp.to_f64()).abs() <= allowance {
        Ok(ulps)
    } else {
        Err(format!(
            "{ulps} ulps apart (tolerance {ULP_TOLERANCE}, or {allowance:e} where erf is called)"
        ))
    }
}

/// Checks one element type's printed results against Rust's; returns the failures,
/// and prints the largest difference per op that was not bit for bit.
fn compare<E: Element>(plan: &Plan<E>, lines: &mut std::str::Lines<'_>) -> Vec<String> {
    let mut failures = Vec::new();
    let mut largest: BTreeMap<&str, (u64, usize)> = BTreeMap::new();
    for expected in &plan.expected {
        let line = lines
            .next()
            .unwrap_or_else(|| panic!("the C++ program stopped before {}", expected.what));
        let bits = u64::from_str_radix(line.trim(), 16).unwrap_or_else(|_| panic!("not a bit pattern: {line:?}"));
        let cpp = E::from_bits(bits);
        match agreement(expected.rust, cpp, expected.allowance) {
            Ok(0) => {}
            Ok(ulps) => {
                let entry = largest.entry(expected.op).or_default();
                *entry = (entry.0.max(ulps), entry.1 + 1);
            }
            Err(why) => failures.push(format!(
                "{}: Rust {:?} ({:#x}), C++ {:?} ({:#x}): {why}",
                expected.what,
                expected.rust,
                expected.rust.bits(),
                cpp,
                cpp.bits()
            )),
        }
    }
    println!("{}: {} results compared", E::TYPE.rust_name(), plan.expected.len());
    for (op, (ulps, count)) in largest {
        println!(
            "{}: {op}: {count} results within tolerance but not equal, at most {ulps} ulps",
            E::TYPE.rust_name()
        );
    }
    failures
}

#[test]
fn cpp_rendering_computes_what_rust_computes() {
    let mut single = Plan::<f32>::new();
    every_op!(&mut single, f32);
    let mut double = Plan::<f64>::new();
    every_op!(&mut double, f64);

    let mut source = format!("{HOST_HEADERS}{PRELUDE}");
    for element in [ElementType::F32, ElementType::F64] {
        source.push_str(&render_all(element).unwrap_or_else(|error| panic!("{error}")));
    }
    source.push_str(&single.definitions());
    source.push_str(&double.definitions());
    write!(
        source,
        "int main() {{\n{}{}    return 0;\n}}\n",
        single.main, double.main
    )
    .unwrap();

    // -ffp-contract=off: Rust never fuses a * b + c, so neither may C++ (GCC fuses in
    // its GNU modes on targets with FMA).
    let executable = compile("compare", &source, &["-O1", "-std=c++17", "-ffp-contract=off"])
        .unwrap_or_else(|error| panic!("{error}"));
    let output = Command::new(&executable)
        .output()
        .expect("run the compiled C++ program");
    assert!(output.status.success(), "the C++ program failed: {:?}", output.status);
    let stdout = String::from_utf8(output.stdout).expect("hexadecimal output");
    let mut lines = stdout.lines();
    let mut failures = compare(&single, &mut lines);
    failures.extend(compare(&double, &mut lines));
    assert_eq!(
        lines.next(),
        None,
        "the C++ program printed more results than Rust computed"
    );
    assert!(
        failures.is_empty(),
        "{} C++ results differ from Rust's (op, element type, function(inputs)):\n{}",
        failures.len(),
        failures.iter().take(60).cloned().collect::<Vec<_>>().join("\n")
    );
}

/// `-Wdouble-promotion` and `-Wconversion` fail on float arithmetic done in double,
/// which is what an unsuffixed literal in a float function causes.
const STRICT: &[&str] = &[
    "-std=c++17",
    "-O1",
    "-c",
    "-Wall",
    "-Wextra",
    "-Wconversion",
    "-Wdouble-promotion",
    "-Wshadow",
    "-Werror",
];

#[test]
fn rendered_source_compiles_without_warnings_or_double_arithmetic_in_float() {
    // CUDA defines the hook as two words too (__device__ __forceinline__).
    let mut source = format!("{HOST_HEADERS}#define FERROGRAD_FN static inline\n{PRELUDE}");
    for element in [ElementType::F32, ElementType::F64] {
        source.push_str(&render_all(element).unwrap_or_else(|error| panic!("{error}")));
    }
    compile("strict", &source, STRICT).unwrap_or_else(|error| panic!("{error}"));

    // The flags must catch an unsuffixed literal, or the compile above proves nothing.
    let untyped = format!(
        "{HOST_HEADERS}{PRELUDE}namespace ferrograd {{\nFERROGRAD_FN float untyped(float x) {{ return 0.5 * x; }}\n}}\n"
    );
    let error = compile("strict_control", &untyped, STRICT).expect_err("an unsuffixed literal must fail the flags");
    assert!(
        error.contains("double-promotion") || error.contains("conversion"),
        "{error}"
    );
}
