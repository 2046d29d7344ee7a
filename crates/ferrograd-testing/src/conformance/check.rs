//! Comparing a device's results with the reference's: tolerances, mismatches, failures
//! and the counts a family of cases reports.

use ferrograd_device::{Dtype, Error, Unit};
use std::any::Any;
use std::fmt;

/// How far a device's floating-point result may stray from the reference's.
///
/// An element passes when `|actual − expected| ≤ absolute + relative · |expected|`.
/// Whatever the tolerance, NaN matches only NaN and an infinity only the same infinity;
/// `bool` and index results must be equal. [`Tolerance::exact`] is for a device
/// compared with itself.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Tolerance {
    /// The error allowed in proportion to the expected value.
    pub relative: f64,
    /// The error allowed whatever the expected value: what keeps a result that should
    /// be 0 (a sum that cancels) from needing an exact 0.
    pub absolute: f64,
}

impl Tolerance {
    /// Equal values (`-0.0` equals `0.0`; NaN matches NaN).
    pub const fn exact() -> Self {
        Self {
            relative: 0.0,
            absolute: 0.0,
        }
    }

    /// `relative` and `absolute` errors, as the fields say.
    pub const fn new(relative: f64, absolute: f64) -> Self {
        Self { relative, absolute }
    }

    /// A starting point for a device whose arithmetic rounds differently from the CPU
    /// (other summation orders, fused multiply-adds, its own `exp` and `erf`): relative
    /// `1e-4` and absolute `1e-5` for `f32`, `1e-10` and `1e-12` for `f64`. The cases
    /// are small (at most a few hundred terms per sum), so errors stay near a few
    /// units in the last place; a device needing more than this has a bug or an
    /// approximation worth naming.
    pub fn close<E: Dtype>() -> Self {
        if size_of::<E>() <= 4 {
            Self::new(1e-4, 1e-5)
        } else {
            Self::new(1e-10, 1e-12)
        }
    }

    /// Whether `actual` is close enough to `expected`.
    pub fn accepts(self, expected: f64, actual: f64) -> bool {
        if expected.is_nan() || actual.is_nan() {
            return expected.is_nan() && actual.is_nan();
        }
        if expected == actual {
            return true;
        }
        if expected.is_infinite() || actual.is_infinite() {
            return false;
        }
        (actual - expected).abs() <= self.absolute + self.relative * expected.abs()
    }
}

/// The value of a float element as an `f64`, or `None` for the other element types
/// (`bool`, `usize`), which are compared exactly.
fn as_float<T: Unit>(value: T) -> Option<f64> {
    let value = &value as &dyn Any;
    match value.downcast_ref::<f32>() {
        Some(&value) => Some(value as f64),
        None => value.downcast_ref::<f64>().copied(),
    }
}

/// Whether the device's `actual` element passes for the reference's `expected`.
fn agrees<T: Unit>(expected: T, actual: T, tolerance: Tolerance) -> bool {
    match (as_float(expected), as_float(actual)) {
        (Some(expected), Some(actual)) => tolerance.accepts(expected, actual),
        _ => expected == actual,
    }
}

/// Whether two elements are the same value, a zero's sign included (any NaN is the
/// same as any other): what a buffer that was only stored and read back must give.
fn identical<T: Unit>(expected: T, actual: T) -> bool {
    match (as_float(expected), as_float(actual)) {
        (Some(expected), Some(actual)) => {
            expected.to_bits() == actual.to_bits() || (expected.is_nan() && actual.is_nan())
        }
        _ => expected == actual,
    }
}

/// The first difference between a reference buffer and a device's.
#[derive(Clone, Debug, PartialEq)]
pub enum Mismatch {
    /// The buffers have different lengths.
    Length {
        /// Which of the kernel's outputs (0 for the first or only one).
        output: usize,
        /// The reference's length.
        expected: usize,
        /// The device's length.
        actual: usize,
    },
    /// An element differs by more than the tolerance.
    Element {
        /// Which of the kernel's outputs (0 for the first or only one).
        output: usize,
        /// The element's position in the buffer (buffer order, not a layout's).
        index: usize,
        /// The reference's value, as `{:?}` prints it.
        expected: String,
        /// The device's value.
        actual: String,
    },
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Mismatch::Length {
                output,
                expected,
                actual,
            } => write!(
                f,
                "output {output} has {actual} elements, the reference's has {expected}"
            ),
            Mismatch::Element {
                output,
                index,
                expected,
                actual,
            } => write!(f, "output {output}, element {index}: expected {expected}, got {actual}"),
        }
    }
}

/// Compares a device's buffer (`actual`) with the reference's (`expected`), element by
/// element, in buffer order: the first element the tolerance refuses, or a length that
/// differs, is the mismatch. Floats (`f32`, `f64`) are compared within `tolerance`;
/// every other element type (`bool`, indices) must be equal.
///
/// ```
/// use ferrograd_testing::conformance::{Mismatch, Tolerance, compare};
///
/// assert!(compare(&[1.0f32, f32::NAN], &[1.0, f32::NAN], Tolerance::exact()).is_ok());
/// assert!(compare(&[1.0f64], &[1.0 + 1e-12], Tolerance::new(1e-10, 0.0)).is_ok());
/// let mismatch = compare(&[1.0f64, 2.0], &[1.0, 2.5], Tolerance::new(0.1, 0.0)).unwrap_err();
/// assert_eq!(mismatch.to_string(), "output 0, element 1: expected 2.0, got 2.5");
/// assert!(matches!(compare(&[true], &[], Tolerance::exact()), Err(Mismatch::Length { .. })));
/// ```
///
/// # Errors
/// The first [`Mismatch`].
pub fn compare<T: Unit>(expected: &[T], actual: &[T], tolerance: Tolerance) -> Result<(), Mismatch> {
    compare_output(0, expected, actual, |e, a| agrees(e, a, tolerance))
}

/// As [`compare`], every element [`identical`].
fn compare_identical<T: Unit>(expected: &[T], actual: &[T]) -> Result<(), Mismatch> {
    compare_output(0, expected, actual, identical)
}

fn compare_output<T: Unit>(
    output: usize,
    expected: &[T],
    actual: &[T],
    agree: impl Fn(T, T) -> bool,
) -> Result<(), Mismatch> {
    if expected.len() != actual.len() {
        return Err(Mismatch::Length {
            output,
            expected: expected.len(),
            actual: actual.len(),
        });
    }
    match expected.iter().zip(actual).position(|(&e, &a)| !agree(e, a)) {
        None => Ok(()),
        Some(index) => Err(Mismatch::Element {
            output,
            index,
            expected: format!("{:?}", expected[index]),
            actual: format!("{:?}", actual[index]),
        }),
    }
}

/// What a kernel gives back, copied to the host: one buffer or several, compared in
/// order (a mismatch names the output's position).
pub(crate) trait Outputs {
    /// Compares with the device's outputs, numbering this one's first output `first`;
    /// the number of the output after the last one.
    fn compare_from(&self, actual: &Self, tolerance: Tolerance, first: usize) -> Result<usize, Mismatch>;
}

impl<T: Unit> Outputs for Vec<T> {
    fn compare_from(&self, actual: &Self, tolerance: Tolerance, first: usize) -> Result<usize, Mismatch> {
        compare_output(first, self, actual, |e, a| agrees(e, a, tolerance))?;
        Ok(first + 1)
    }
}

impl<A: Outputs, B: Outputs> Outputs for (A, B) {
    fn compare_from(&self, actual: &Self, tolerance: Tolerance, first: usize) -> Result<usize, Mismatch> {
        let next = self.0.compare_from(&actual.0, tolerance, first)?;
        self.1.compare_from(&actual.1, tolerance, next)
    }
}

impl<A: Outputs, B: Outputs, C: Outputs, D: Outputs> Outputs for (A, B, C, D) {
    fn compare_from(&self, actual: &Self, tolerance: Tolerance, first: usize) -> Result<usize, Mismatch> {
        let next = self.0.compare_from(&actual.0, tolerance, first)?;
        let next = self.1.compare_from(&actual.1, tolerance, next)?;
        let next = self.2.compare_from(&actual.2, tolerance, next)?;
        self.3.compare_from(&actual.3, tolerance, next)
    }
}

/// Why a case failed.
#[derive(Clone, Debug, PartialEq)]
pub enum Problem {
    /// The device's result differs from the reference's.
    Mismatch(Mismatch),
    /// The device returned an error where the reference gave a result.
    DeviceError(String),
    /// The device accepted arguments the contract says it must refuse (a layout past
    /// its buffer, an index out of bounds), which the reference refused with this error.
    NotRefused(String),
    /// The device refused, but not as the contract says: its error names another
    /// kernel, or is not an invalid argument or a shape mismatch.
    RefusedDifferently {
        /// The reference's error.
        expected: String,
        /// The device's error.
        actual: String,
    },
    /// The device refused the arguments but wrote into an output first.
    WroteBeforeRefusing(Mismatch),
    /// The reference failed where the suite expects a result, or accepted what the suite
    /// expects refused: a bug in the suite or in the CPU kernels, not in the device.
    Reference(String),
    /// Random samples that cannot come from the distribution asked for.
    Distribution(String),
    /// The suite does not cover every op the device crate declares: it is out of date.
    Incomplete(String),
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::Mismatch(mismatch) => write!(f, "{mismatch}"),
            Problem::DeviceError(error) => write!(f, "the device failed where the reference did not: {error}"),
            Problem::NotRefused(error) => {
                write!(f, "the device accepted what it must refuse (the reference: {error})")
            }
            Problem::RefusedDifferently { expected, actual } => {
                write!(f, "the device refused with {actual:?}, the reference with {expected:?}")
            }
            Problem::WroteBeforeRefusing(mismatch) => {
                write!(f, "the device refused but wrote first: {mismatch}")
            }
            Problem::Reference(message) => write!(
                f,
                "the reference (Cpu) misbehaved, a bug in the suite or the CPU: {message}"
            ),
            Problem::Distribution(message) => write!(f, "{message}"),
            Problem::Incomplete(message) => write!(f, "the conformance suite is out of date: {message}"),
        }
    }
}

/// A case on which the device under test disagrees with the reference.
#[derive(Clone, Debug, PartialEq)]
pub struct Failure {
    /// The kernel (or kernel method) that ran: `"Exp forward"`, `"matmul"`.
    pub kernel: String,
    /// The case: the op and its options, every operand's dims, strides, offset and
    /// buffer length.
    pub case: String,
    /// What went wrong.
    pub problem: Problem,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}\n  case: {}", self.kernel, self.problem, self.case)
    }
}

impl std::error::Error for Failure {}

/// What one family of cases checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Report {
    /// The family: `"unary"`, `"matmul"`, …
    pub family: &'static str,
    /// Cases whose results were compared with the reference's.
    pub cases: usize,
    /// Cases the device had to refuse (bad layouts, indices out of bounds), and did.
    pub refusals: usize,
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {} cases, {} refusals", self.family, self.cases, self.refusals)
    }
}

/// The reports of every family [`run_all`](super::run_all) ran.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    /// One report per family, in the order they ran.
    pub reports: Vec<Report>,
}

impl Summary {
    /// Cases compared, over every family.
    pub fn cases(&self) -> usize {
        self.reports.iter().map(|report| report.cases).sum()
    }

    /// Refusals checked, over every family.
    pub fn refusals(&self) -> usize {
        self.reports.iter().map(|report| report.refusals).sum()
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} cases and {} refusals in {} families",
            self.cases(),
            self.refusals(),
            self.reports.len()
        )?;
        for report in &self.reports {
            write!(f, "\n  {report}")?;
        }
        Ok(())
    }
}

/// The kernel an error names, when it is one a refusal may give: an invalid argument
/// or a shape mismatch.
fn refusal_op(error: &Error) -> Option<&'static str> {
    match error {
        Error::InvalidArgument { op, .. } | Error::ShapeMismatch { op, .. } => Some(op),
        _ => None,
    }
}

/// The running counts of one family, and the checks every case goes through.
pub(crate) struct Family {
    name: &'static str,
    tolerance: Tolerance,
    cases: usize,
    refusals: usize,
}

impl Family {
    pub(crate) fn new(name: &'static str, tolerance: Tolerance) -> Self {
        Self {
            name,
            tolerance,
            cases: 0,
            refusals: 0,
        }
    }

    pub(crate) fn fail(&self, kernel: &str, case: &str, problem: Problem) -> Failure {
        Failure {
            kernel: kernel.to_string(),
            case: case.to_string(),
            problem,
        }
    }

    /// The reference's result, which the suite needs to build later cases (a forward
    /// output for a backward pass): an error there is the suite's or the CPU's bug.
    pub(crate) fn reference<T>(&self, kernel: &str, case: &str, result: Result<T, Error>) -> Result<T, Failure> {
        result.map_err(|error| self.fail(kernel, case, Problem::Reference(error.to_string())))
    }

    /// Compares the device's outputs with the reference's; both must succeed.
    pub(crate) fn check<O: Outputs>(
        &mut self,
        kernel: &str,
        case: &str,
        reference: Result<O, Error>,
        device: Result<O, Error>,
    ) -> Result<(), Failure> {
        let expected = self.reference(kernel, case, reference)?;
        let actual = device.map_err(|error| self.fail(kernel, case, Problem::DeviceError(error.to_string())))?;
        expected
            .compare_from(&actual, self.tolerance, 0)
            .map_err(|mismatch| self.fail(kernel, case, Problem::Mismatch(mismatch)))?;
        self.cases += 1;
        Ok(())
    }

    /// As [`Family::check`], but every float must be the same value, whatever the
    /// family's tolerance: for kernels that round once or not at all (copies,
    /// conversions, storage), where a device may not differ.
    pub(crate) fn check_exact<O: Outputs>(
        &mut self,
        kernel: &str,
        case: &str,
        reference: Result<O, Error>,
        device: Result<O, Error>,
    ) -> Result<(), Failure> {
        let tolerance = std::mem::replace(&mut self.tolerance, Tolerance::exact());
        let result = self.check(kernel, case, reference, device);
        self.tolerance = tolerance;
        result
    }

    /// As [`Family::check`] for one buffer, every element [`identical`] (a zero's sign
    /// included): for a buffer only stored and read back.
    pub(crate) fn check_identical<T: Unit>(
        &mut self,
        kernel: &str,
        case: &str,
        reference: Result<Vec<T>, Error>,
        device: Result<Vec<T>, Error>,
    ) -> Result<(), Failure> {
        let expected = self.reference(kernel, case, reference)?;
        let actual = device.map_err(|error| self.fail(kernel, case, Problem::DeviceError(error.to_string())))?;
        compare_identical(&expected, &actual)
            .map_err(|mismatch| self.fail(kernel, case, Problem::Mismatch(mismatch)))?;
        self.cases += 1;
        Ok(())
    }

    /// Checks that both refused, the device with an invalid argument or a shape
    /// mismatch naming the kernel the reference names.
    pub(crate) fn refusal<T>(
        &mut self,
        kernel: &str,
        case: &str,
        reference: Result<T, Error>,
        device: Result<T, Error>,
    ) -> Result<(), Failure> {
        let expected = match reference {
            Ok(_) => {
                let message = "it accepted a case the suite expects refused".to_string();
                return Err(self.fail(kernel, case, Problem::Reference(message)));
            }
            Err(error) => error,
        };
        let actual = match device {
            Ok(_) => return Err(self.fail(kernel, case, Problem::NotRefused(expected.to_string()))),
            Err(error) => error,
        };
        let agrees = refusal_op(&actual).is_some() && refusal_op(&actual) == refusal_op(&expected);
        if !agrees {
            return Err(self.fail(
                kernel,
                case,
                Problem::RefusedDifferently {
                    expected: expected.to_string(),
                    actual: actual.to_string(),
                },
            ));
        }
        self.refusals += 1;
        Ok(())
    }

    /// Checks that a refused call left a buffer as it was.
    pub(crate) fn unchanged<T: Unit>(
        &self,
        kernel: &str,
        case: &str,
        before: &[T],
        after: &[T],
    ) -> Result<(), Failure> {
        compare_identical(before, after)
            .map_err(|mismatch| self.fail(kernel, case, Problem::WroteBeforeRefusing(mismatch)))
    }

    /// Counts a case checked some other way than by comparison (a distribution's
    /// sanity).
    pub(crate) fn count(&mut self) {
        self.cases += 1;
    }

    pub(crate) fn finish(self) -> Report {
        Report {
            family: self.name,
            cases: self.cases,
            refusals: self.refusals,
        }
    }
}
