//! The device ferrograd's test suite runs on, and the suite a new device's kernels
//! must pass ([`conformance`]).
//!
//! Tests never name a device type: they write [`TestDevice`] and get one from
//! [`test_device`] (or [`seeded_test_device`] for another seed), so the same unit
//! tests and PyTorch parity fixtures run on every device. Which device that is, is
//! chosen when the tests are built:
//!
//! - by default the CPU, [`ferrograd_cpu::Cpu`];
//! - with this crate's `cuda` feature, the first NVIDIA GPU, `ferrograd_cuda::Cuda`.
//!   Every crate's tests take it on at once through feature unification:
//!
//!   ```text
//!   cargo test --workspace --features ferrograd-testing/cuda
//!   ```
//!
//!   (`Cuda` loads NVRTC and cuBLAS at run time: `LD_LIBRARY_PATH` must reach them, as
//!   the README's GPU section says.)
//!
//! So the tests compile for both devices, they are written against device-neutral
//! APIs: values are read back with `as_vec()` / `array()`, never through a device's
//! buffer, and generic helpers bound the device on the capability groups of
//! `ferrograd_device::prelude` (`ArithmeticKernels<E>`, `TrainingKernels<E>`,
//! `ConvolutionKernels<E>`) rather than on `E` alone.
//!
//! # Without a GPU
//!
//! With the `cuda` feature on a machine without a usable GPU (no driver, no GPU, a
//! driver older than CUDA 13), the first [`test_device`] or [`seeded_test_device`]
//! call of a test binary writes why to standard error (past the test harness's output
//! capture) and ends that binary with success: `skipped the rest of this test binary:
//! TestDevice is Cuda, but no GPU is usable: …`. The binary ends, not only the test,
//! because a test that is not the caller, a helper that builds a tensor, say, cannot
//! return early for it, and panicking would count as a failure; with no GPU, every
//! test that needs the device would skip the same way. The CPU build runs the whole
//! suite, so nothing goes untested there. Where a GPU must be present (a GPU CI
//! runner), set the environment variable `FERROGRAD_REQUIRE_GPU`: the call then
//! panics with the driver's error instead. Under `cargo nextest`, which runs each test
//! in a process of its own, every device test is skipped this way on its own.
//!
//! Tests of one device's own kernels (the CPU crate's unit tests, say) name that device
//! directly; so do the compile-fail snapshots, whose expected errors print a type, and
//! the few tests that inspect the CPU's buffers on purpose (each says why).
//!
//! ```
//! use ferrograd_testing::{TestDevice, seeded_test_device, test_device};
//!
//! let device: TestDevice = test_device();
//! let other: TestDevice = seeded_test_device(7);
//! # let _ = (device, other);
//! ```
//!
//! Switching [`TestDevice`] runs ferrograd's own tests on a device; [`conformance`]
//! checks the device's kernels one by one against the CPU's first, on layouts and edge
//! cases the model-level tests rarely reach, and names the kernel and the case that
//! differ.

#![warn(missing_docs)]

/// The device the test suite runs on: [`ferrograd_cpu::Cpu`], or
/// `ferrograd_cuda::Cuda` with the `cuda` feature.
#[cfg(not(feature = "cuda"))]
pub type TestDevice = ferrograd_cpu::Cpu;

/// The device the test suite runs on: `ferrograd_cuda::Cuda` (the `cuda` feature is
/// on), or [`ferrograd_cpu::Cpu`] without it.
#[cfg(feature = "cuda")]
pub type TestDevice = ferrograd_cuda::Cuda;

/// A new [`TestDevice`], its random generator seeded with 0, so a test draws the same
/// numbers on every run.
///
/// With the `cuda` feature and no usable GPU, this ends the test binary, saying so
/// (see [the crate docs](crate#without-a-gpu)).
pub fn test_device() -> TestDevice {
    seeded_test_device(0)
}

/// A new [`TestDevice`], its random generator seeded with `seed`: what
/// `Cpu::seed_from_u64(seed)` gives on the CPU, and the same numbers on the GPU.
///
/// With the `cuda` feature and no usable GPU, this ends the test binary, saying so
/// (see [the crate docs](crate#without-a-gpu)).
pub fn seeded_test_device(seed: u64) -> TestDevice {
    #[cfg(not(feature = "cuda"))]
    {
        ferrograd_cpu::Cpu::seed_from_u64(seed)
    }
    #[cfg(feature = "cuda")]
    {
        match ferrograd_cuda::Cuda::seed_from_u64(seed) {
            Ok(gpu) => gpu,
            Err(error) => skip_without_gpu(&error),
        }
    }
}

/// Ends the test binary with success, saying why, or panics where a GPU is required.
#[cfg(feature = "cuda")]
fn skip_without_gpu(error: &ferrograd_device::Error) -> ! {
    use std::io::Write;

    if std::env::var_os("FERROGRAD_REQUIRE_GPU").is_some() {
        panic!("FERROGRAD_REQUIRE_GPU is set, but there is no usable GPU: {error}");
    }
    // Straight to the stream: `eprintln!` inside a test goes to the harness's capture,
    // which the exit below would discard.
    let mut stderr = std::io::stderr().lock();
    let _ = writeln!(
        stderr,
        "skipped the rest of this test binary: TestDevice is Cuda (ferrograd-testing's \
         `cuda` feature), but no GPU is usable: {error}. Set FERROGRAD_REQUIRE_GPU=1 to \
         fail instead."
    );
    let _ = stderr.flush();
    std::process::exit(0)
}

pub mod conformance;
