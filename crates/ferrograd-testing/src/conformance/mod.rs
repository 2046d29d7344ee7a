//! A kernel-conformance suite: runs a device's kernels and the CPU's ([`Cpu`], the
//! reference) on the same inputs, and compares what they give.
//!
//! Every kernel trait of `ferrograd-device` has a function here (a few traits tested
//! together have one between them), generic over the device under test and bounded on
//! the traits it tests only, so a device can be checked one family at a time while its
//! kernels are being written; [`run_all`] runs them all.
//!
//! # Checking a device
//!
//! A device crate calls the suite from its tests. For a GPU, the test skips, saying
//! why, on a machine without one:
//!
//! ```ignore
//! // ferrograd-cuda/tests/conformance.rs (ferrograd-testing is a dev-dependency)
//! use ferrograd_cuda::Cuda;
//! use ferrograd_testing::conformance::{Tolerance, run_all};
//!
//! #[test]
//! fn cuda_kernels_agree_with_the_cpu() {
//!     let cuda = match Cuda::new(0) {
//!         Ok(cuda) => cuda,
//!         Err(error) => {
//!             eprintln!("skipped: no CUDA device ({error})");
//!             return;
//!         }
//!     };
//!     for summary in [
//!         run_all::<f32, _>(&cuda, Tolerance::close::<f32>()),
//!         run_all::<f64, _>(&cuda, Tolerance::close::<f64>()),
//!     ] {
//!         match summary {
//!             Ok(summary) => println!("{summary}"),
//!             // The failure names the kernel, the case and the first element that differs.
//!             Err(failure) => panic!("{failure}"),
//!         }
//!     }
//! }
//! ```
//!
//! One family at a time, the CPU against itself here:
//!
//! ```
//! use ferrograd_cpu::Cpu;
//! use ferrograd_testing::conformance::{Tolerance, matmul_kernel};
//!
//! let report = matmul_kernel::<f32, _>(&Cpu::default(), Tolerance::exact())?;
//! assert!(report.cases > 400 && report.refusals == 5);
//! # Ok::<(), ferrograd_testing::conformance::Failure>(())
//! ```
//!
//! # The cases
//!
//! Each function's documentation lists what it covers. Across them:
//!
//! - **Layouts.** Inputs are read through every placement a view can give: contiguous;
//!   permuted (the transpose of a row-major buffer); sliced (a block of a larger buffer,
//!   from a positive offset, skipping elements on both sides); broadcast on the first
//!   axis, on the last axis, or on every odd axis (stride 0); and all of these at once.
//!   Images are also channels-last, matrices also transposed or shared by a batch.
//!   Outputs a kernel writes through a layout are placed likewise: only in layouts that
//!   address each element once where the contract refuses repeats (`copy_strided`,
//!   `gemm_batched`), in broadcast ones too where repeats accumulate (gradients).
//! - **Sizes.** A scalar (rank 0), an empty axis, size-1 axes, lengths 1, 7, 33 and 257
//!   (around vector widths), ranks up to 6; small enough that the whole suite runs in
//!   about a second in a debug build.
//! - **Values.** Seeded random values (the same every run), with NaN, ±∞, ±0 and the
//!   ops' thresholds mixed in where the op defines what they give, and ties where the
//!   op must pick among them (maximum, argmax, pooling, `maximum`'s gradient).
//! - **Passes.** Forward and backward; gradients added into an existing buffer, and
//!   the first contribution (a [`GradientSlot`](ferrograd_device::view::GradientSlot)
//!   holding `None`); inputs shared and handed over (`Input::Unique`, which a kernel may
//!   overwrite).
//!
//! # The comparison
//!
//! Both results are copied to the host ([`Storage::try_to_host`]) and compared whole:
//! every element of an output or gradient buffer, those outside the layout included,
//! so a write outside the view is caught. NaN must match NaN and an infinity the same
//! infinity; other floats must be within the caller's [`Tolerance`]
//! ([`Tolerance::exact`] for the CPU against itself, [`Tolerance::close`] as a start for
//! a GPU); masks and indices must be equal. Kernels that move values without
//! arithmetic — storage, conversions, `copy_strided`, `gather`, `one_hot` — must give
//! the same values whatever the tolerance. [`compare`] is the comparison, exposed.
//!
//! A [`Failure`] names the kernel, the case (the op and its options; every operand's
//! dims, strides, offset and buffer length) and the [`Problem`]: for a wrong result,
//! the first mismatching element with both values.
//!
//! # Refusals
//!
//! Each family also feeds the device arguments the contract says it must refuse
//! (`docs/kernels.md`): a layout past its buffer, dims that disagree, an output that
//! repeats elements where that is refused, an index out of bounds, a spec changed by
//! hand, a buffer too short. The device must return an
//! [`Error::InvalidArgument`](ferrograd_device::Error::InvalidArgument) or
//! [`Error::ShapeMismatch`](ferrograd_device::Error::ShapeMismatch) naming the same op
//! as the CPU's error, and leave every buffer it was given to write as it was.
//!
//! # Random sampling
//!
//! [`SampleKernel`](ferrograd_device::SampleKernel) takes no seed: each device seeds
//! its own generator, and a GPU's is not the CPU's. So [`sample_kernel`] does not ask
//! for the CPU's draws; it checks what any correct generator gives (see there), and so
//! does [`dropout_kernel`] for dropout masks.
//!
//! # A new op or kernel
//!
//! The element-wise ops the suite runs are listed once, in `elementwise.rs`
//! ([`UNARY_OPS`], [`BINARY_OPS`]); [`unary_kernels`] and [`binary_kernels`] fail with
//! [`Problem::Incomplete`] when the device crate declares an op the list lacks. A new
//! kernel trait needs a function here and a line in [`run_all`].
//!
//! [`Storage::try_to_host`]: ferrograd_device::Storage::try_to_host

mod check;
mod compare;
mod conv;
mod elementwise;
mod index;
mod inputs;
mod matmul;
mod memory;
mod optimizer;
mod pool;
mod reduce;

pub use check::{Failure, Mismatch, Problem, Report, Summary, Tolerance, compare};
pub use compare::{choose_kernel, compare_kernel};
pub use conv::{conv_transpose2d, conv2d_kernel};
pub use elementwise::{BINARY_OPS, EveryBinaryKernel, EveryUnaryKernel, UNARY_OPS, binary_kernels, unary_kernels};
pub use index::{gather_kernel, one_hot_kernel, scatter_add_kernel};
pub use matmul::matmul_kernel;
pub use memory::{EveryConvertKernel, convert_kernel, copy_kernel, dropout_kernel, sample_kernel, storage};
pub use optimizer::{gradient_clip_kernel, optimizer_kernel};
pub use pool::{pool2d_kernel, upsample2d_kernel};
pub use reduce::{
    arg_extremum_kernel, extremum_kernel, extremum_with_indices_kernel, log_sum_exp_kernel, softmax_kernel, sum_kernel,
    variance_kernel,
};

use ferrograd_cpu::Cpu;
use ferrograd_device::Dtype;
use ferrograd_device::capabilities::ConvolutionKernels;

/// Every family of the suite, for the element type `E`: what a new device runs in one
/// call. `D` needs every kernel a convolutional network needs
/// ([`ConvolutionKernels`]) and the dtype conversions ([`EveryConvertKernel`]).
///
/// Storage runs first, since every other family moves its inputs through it; then the
/// element-wise families, reductions, indexing, products, convolutions, pooling, the
/// optimizers and sampling.
///
/// # Errors
/// The first [`Failure`], of the first family that has one.
pub fn run_all<E: Dtype, D>(device: &D, tolerance: Tolerance) -> Result<Summary, Failure>
where
    D: ConvolutionKernels<E> + EveryConvertKernel,
    Cpu: ConvolutionKernels<E>,
{
    let reports = vec![
        storage::<E, D>(device, tolerance)?,
        unary_kernels::<E, D>(device, tolerance)?,
        binary_kernels::<E, D>(device, tolerance)?,
        compare_kernel::<E, D>(device, tolerance)?,
        choose_kernel::<E, D>(device, tolerance)?,
        convert_kernel::<D>(device, tolerance)?,
        copy_kernel::<E, D>(device, tolerance)?,
        sum_kernel::<E, D>(device, tolerance)?,
        extremum_kernel::<E, D>(device, tolerance)?,
        arg_extremum_kernel::<E, D>(device, tolerance)?,
        extremum_with_indices_kernel::<E, D>(device, tolerance)?,
        variance_kernel::<E, D>(device, tolerance)?,
        log_sum_exp_kernel::<E, D>(device, tolerance)?,
        softmax_kernel::<E, D>(device, tolerance)?,
        gather_kernel::<E, D>(device, tolerance)?,
        scatter_add_kernel::<E, D>(device, tolerance)?,
        one_hot_kernel::<E, D>(device, tolerance)?,
        matmul_kernel::<E, D>(device, tolerance)?,
        conv2d_kernel::<E, D>(device, tolerance)?,
        conv_transpose2d::<E, D>(device, tolerance)?,
        pool2d_kernel::<E, D>(device, tolerance)?,
        upsample2d_kernel::<E, D>(device, tolerance)?,
        optimizer_kernel::<E, D>(device, tolerance)?,
        gradient_clip_kernel::<E, D>(device, tolerance)?,
        sample_kernel::<E, D>(device, tolerance)?,
        dropout_kernel::<E, D>(device, tolerance)?,
    ];
    Ok(Summary { reports })
}
