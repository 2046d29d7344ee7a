//! The conformance suite run with the CPU against itself, and shown to fail: on
//! buffers that differ, and on a device that wraps the CPU and gets one kernel wrong
//! in the ways a new device tends to (a rounding, ignored strides, a gradient
//! overwritten instead of added to, an output read when beta is 0, a refusal missed or
//! made after writing).

use ferrograd_cpu::gemm::GemmElement;
use ferrograd_cpu::{Cpu, CpuBuffer};
use ferrograd_device::ops::copy::CopyKernel;
use ferrograd_device::ops::elementwise::{UnaryFn, UnaryKernel, UnaryOp, binary_op_specs, unary_op_specs};
use ferrograd_device::ops::matmul::{MatmulKernel, MatrixLayout, check_gemm};
use ferrograd_device::ops::reduce::SumKernel;
use ferrograd_device::view::{GradientSlot, InputView, OptionalView, check_unique_offsets};
use ferrograd_device::{Dtype, Error, Float, Input, Layout, Storage, Unit, View, ViewMut};
use ferrograd_testing::conformance::*;

#[test]
fn the_cpu_conforms_to_itself_in_f32() {
    let summary = run_all::<f32, _>(&Cpu::default(), Tolerance::exact()).unwrap_or_else(|failure| panic!("{failure}"));
    assert_eq!(summary.reports.len(), 26);
    assert!(summary.reports.iter().all(|report| report.cases > 0), "{summary}");
}

#[test]
fn the_cpu_conforms_to_itself_in_f64() {
    let summary = run_all::<f64, _>(&Cpu::default(), Tolerance::exact()).unwrap_or_else(|failure| panic!("{failure}"));
    assert!(summary.cases() > 30_000 && summary.refusals() > 150, "{summary}");
}

#[test]
fn every_declared_op_is_run() {
    fn sorted(mut names: Vec<&str>) -> Vec<&str> {
        names.sort_unstable();
        names
    }
    let declared = |specs: &[ferrograd_device::ops::elementwise::OpSpec]| specs.iter().map(|s| s.name).collect();
    assert_eq!(sorted(UNARY_OPS.to_vec()), sorted(declared(unary_op_specs())));
    assert_eq!(sorted(BINARY_OPS.to_vec()), sorted(declared(binary_op_specs())));
}

#[test]
fn the_comparison_names_the_first_difference() {
    let exact = Tolerance::exact();
    assert_eq!(compare(&[1.0f32, f32::NAN, -0.0], &[1.0, f32::NAN, 0.0], exact), Ok(()));
    assert_eq!(
        compare(&[1.0f64, 2.0, 3.0], &[1.0, 2.0000001, 4.0], exact),
        Err(Mismatch::Element {
            output: 0,
            index: 1,
            expected: "2.0".into(),
            actual: "2.0000001".into()
        })
    );
    // NaN only matches NaN, an infinity only itself, whatever the tolerance.
    let loose = Tolerance::new(1.0, 1.0);
    assert!(compare(&[f64::NAN], &[0.0], loose).is_err());
    assert!(compare(&[0.0f64], &[f64::NAN], loose).is_err());
    assert!(compare(&[f64::INFINITY], &[f64::NEG_INFINITY], loose).is_err());
    assert!(compare(&[f64::INFINITY], &[f64::MAX], loose).is_err());
    // Within `absolute + relative · |expected|`, and not beyond.
    let tolerance = Tolerance::new(1e-3, 1e-6);
    assert!(compare(&[1000.0f64, 0.0], &[1000.999, 1e-6], tolerance).is_ok());
    assert!(compare(&[1000.0f64], &[1001.01], tolerance).is_err());
    assert!(compare(&[0.0f64], &[2e-6], tolerance).is_err());
    // Masks and indices are exact, and lengths must agree.
    assert!(compare(&[true, false], &[true, true], loose).is_err());
    assert!(compare(&[3usize], &[4], loose).is_err());
    assert_eq!(
        compare(&[1usize, 2], &[1], exact),
        Err(Mismatch::Length {
            output: 0,
            expected: 2,
            actual: 1
        })
    );
    assert!(Tolerance::close::<f32>().accepts(1.0, 1.0 + 1e-5));
    assert!(!Tolerance::close::<f64>().accepts(1.0, 1.0 + 1e-5));
}

/// A bug [`Faulty`] has.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fault {
    /// `tanh` too large by a relative 1.2e-7 (one `f32` unit in the last place).
    TanhRounding,
    /// Unary backward overwrites an existing gradient instead of adding to it.
    GradientOverwritten,
    /// `sum` reads every input as if it were contiguous.
    StridesIgnored,
    /// `copy_strided` writes through a destination that repeats elements.
    RepeatsAccepted,
    /// `gemm_batched` reads `out` when beta is 0.
    BetaIgnored,
    /// `gemm_batched` clears `out` before refusing it.
    WritesBeforeRefusing,
}

/// The CPU with one bug: every kernel the tests below need delegates to [`Cpu`], except
/// the one the fault is in.
#[derive(Clone, Debug)]
struct Faulty {
    cpu: Cpu,
    fault: Fault,
}

impl Faulty {
    fn new(fault: Fault) -> Self {
        Self {
            cpu: Cpu::default(),
            fault,
        }
    }
}

impl<E: Unit> Storage<E> for Faulty {
    type Vec = CpuBuffer<E>;

    fn try_alloc_zeros(&self, len: usize) -> Result<Self::Vec, Error> {
        self.cpu.try_alloc_zeros(len)
    }
    fn try_alloc_filled(&self, len: usize, value: E) -> Result<Self::Vec, Error> {
        self.cpu.try_alloc_filled(len, value)
    }
    fn try_fill(&self, buffer: &mut Self::Vec, value: E) -> Result<(), Error> {
        self.cpu.try_fill(buffer, value)
    }
    fn try_from_host(&self, data: Vec<E>) -> Result<Self::Vec, Error> {
        self.cpu.try_from_host(data)
    }
    fn try_to_host(&self, buffer: &Self::Vec) -> Result<Vec<E>, Error> {
        self.cpu.try_to_host(buffer)
    }
}

impl<Op: UnaryOp + UnaryFn<E>, E: Dtype> UnaryKernel<Op, E> for Faulty {
    fn forward(&self, op: &Op, input: InputView<'_, Self::Vec>) -> Result<Self::Vec, Error> {
        let mut output = UnaryKernel::forward(&self.cpu, op, input)?;
        if self.fault == Fault::TanhRounding && Op::NAME == "Tanh" {
            for y in output.iter_mut() {
                // The next float up, for finite values away from zero.
                let value = Float::to_f64(*y);
                if value.is_finite() && value != 0.0 {
                    *y = E::from_f64(value * (1.0 + f32::EPSILON as f64));
                }
            }
        }
        Ok(output)
    }

    fn backward(
        &self,
        op: &Op,
        input: OptionalView<'_, Self::Vec>,
        output: Option<&Self::Vec>,
        grad_input: GradientSlot<'_, Self::Vec>,
        grad_output: Input<'_, Self::Vec>,
    ) -> Result<(), Error> {
        if self.fault == Fault::GradientOverwritten {
            *grad_input.buffer = None;
        }
        UnaryKernel::backward(&self.cpu, op, input, output, grad_input, grad_output)
    }
}

impl<E: Dtype> SumKernel<E> for Faulty {
    fn forward(&self, input: View<'_, Self::Vec>, axes: &[usize]) -> Result<Self::Vec, Error> {
        let mut input = input;
        if self.fault == Fault::StridesIgnored {
            let dims = input.layout.dims();
            let mut strides = vec![1; dims.len()];
            for axis in (0..dims.len().saturating_sub(1)).rev() {
                strides[axis] = strides[axis + 1] * dims[axis + 1];
            }
            input.layout = Layout::from_parts(dims, &strides);
        }
        SumKernel::forward(&self.cpu, input, axes)
    }

    fn backward(
        &self,
        grad_input: ViewMut<'_, Self::Vec>,
        axes: &[usize],
        grad_output: &Self::Vec,
    ) -> Result<(), Error> {
        SumKernel::backward(&self.cpu, grad_input, axes, grad_output)
    }
}

impl<E: Dtype> CopyKernel<E> for Faulty {
    fn copy_strided(&self, src: View<'_, Self::Vec>, dst: ViewMut<'_, Self::Vec>) -> Result<(), Error> {
        let repeats = check_unique_offsets("copy_strided", "dst", &dst.layout).is_err();
        if self.fault == Fault::RepeatsAccepted && repeats {
            for (s, d) in src.layout.offsets().zip(dst.layout.offsets()) {
                dst.buffer[d] = src.buffer[s];
            }
            return Ok(());
        }
        self.cpu.copy_strided(src, dst)
    }

    fn add_strided(&self, src: View<'_, Self::Vec>, dst: ViewMut<'_, Self::Vec>) -> Result<(), Error> {
        self.cpu.add_strided(src, dst)
    }
}

impl<E: Dtype + GemmElement> MatmulKernel<E> for Faulty {
    fn gemm_batched(
        &self,
        dims: (usize, usize, usize),
        lhs: View<'_, Self::Vec, MatrixLayout>,
        rhs: View<'_, Self::Vec, MatrixLayout>,
        beta: E,
        out: ViewMut<'_, Self::Vec, MatrixLayout>,
    ) -> Result<(), Error> {
        let beta = if self.fault == Fault::BetaIgnored {
            <E as Float>::ONE
        } else {
            beta
        };
        if self.fault == Fault::WritesBeforeRefusing
            && let Err(error) = check_gemm(dims, &lhs, &rhs, &out)
        {
            out.buffer.fill(<E as Float>::ZERO);
            return Err(error);
        }
        self.cpu.gemm_batched(dims, lhs, rhs, beta, out)
    }
}

#[test]
fn a_rounding_fails_an_exact_comparison_and_passes_a_tolerance() {
    let faulty = Faulty::new(Fault::TanhRounding);
    let failure = unary_kernels::<f64, _>(&faulty, Tolerance::exact()).unwrap_err();
    assert_eq!(failure.kernel, "Tanh forward");
    assert!(failure.case.starts_with("Tanh of "), "{failure}");
    let Problem::Mismatch(Mismatch::Element { expected, actual, .. }) = &failure.problem else {
        panic!("{failure}");
    };
    assert_ne!(expected, actual);
    // The message a test prints names all of it.
    let message = failure.to_string();
    assert!(message.contains("Tanh forward") && message.contains("dims") && message.contains(expected.as_str()));
    // A relative tolerance of 1e-6 accepts a relative error of 1.2e-7.
    let tanh_tolerance = Tolerance::new(1e-6, 0.0);
    assert!(unary_kernels::<f64, _>(&faulty, tanh_tolerance).is_ok());
}

#[test]
fn a_gradient_overwritten_instead_of_added_to_is_caught() {
    let failure = unary_kernels::<f32, _>(&Faulty::new(Fault::GradientOverwritten), Tolerance::exact()).unwrap_err();
    assert!(failure.kernel.ends_with("backward"), "{failure}");
    assert!(failure.case.contains("existing gradient"), "{failure}");
    assert!(matches!(failure.problem, Problem::Mismatch(_)), "{failure}");
}

#[test]
fn strides_ignored_are_caught() {
    let failure = sum_kernel::<f32, _>(&Faulty::new(Fault::StridesIgnored), Tolerance::close::<f32>()).unwrap_err();
    assert_eq!(failure.kernel, "sum forward");
    // The first case the fault changes: a scalar read at an offset.
    assert!(failure.case.contains("offset 2"), "{failure}");
    assert!(matches!(failure.problem, Problem::Mismatch(_)), "{failure}");
}

#[test]
fn a_refusal_missed_is_caught() {
    let failure = copy_kernel::<f64, _>(&Faulty::new(Fault::RepeatsAccepted), Tolerance::exact()).unwrap_err();
    assert_eq!(failure.kernel, "copy_strided");
    assert!(failure.case.contains("strides (0, 1)"), "{failure}");
    let Problem::NotRefused(reference) = &failure.problem else {
        panic!("{failure}");
    };
    assert!(reference.contains("more than once"), "{reference}");
}

#[test]
fn an_output_read_when_beta_is_zero_is_caught() {
    let failure = matmul_kernel::<f32, _>(&Faulty::new(Fault::BetaIgnored), Tolerance::close::<f32>()).unwrap_err();
    assert!(failure.case.contains("beta 0.0"), "{failure}");
    let Problem::Mismatch(Mismatch::Element { actual, .. }) = &failure.problem else {
        panic!("{failure}");
    };
    assert_eq!(actual, "NaN");
}

#[test]
fn a_refusal_after_writing_is_caught() {
    let failure = matmul_kernel::<f64, _>(&Faulty::new(Fault::WritesBeforeRefusing), Tolerance::exact()).unwrap_err();
    assert_eq!(failure.kernel, "matmul");
    assert!(matches!(failure.problem, Problem::WroteBeforeRefusing(_)), "{failure}");
}
