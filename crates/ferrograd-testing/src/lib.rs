//! The device ferrograd's test suite runs on, and the suite a new device's kernels
//! must pass ([`conformance`]).
//!
//! Tests never name a device type: they write [`TestDevice`] and get one from
//! [`test_device`], so the same unit tests and PyTorch parity fixtures run on every
//! device. Which device that is, is chosen when the tests are built: the CPU by default,
//! GPU 0 with the `cuda` feature (`cargo test --workspace --features
//! ferrograd-testing/cuda`), and nothing in the tests changes. Without a usable GPU a
//! CUDA build of the suite prints why and exits successfully at its first test, without
//! running any (skipped, not passed: the line says so); with `FERROGRAD_REQUIRE_GPU` set
//! it fails instead.
//!
//! Tests of one device's own kernels (the CPU crate's unit tests, say) name that device
//! directly; so do the compile-fail snapshots, whose expected errors print a type.
//!
//! ```
//! use ferrograd_testing::{TestDevice, test_device};
//!
//! let device: TestDevice = test_device();
//! # let _ = device;
//! ```
//!
//! Switching [`TestDevice`] runs ferrograd's own tests on a device; [`conformance`]
//! checks the device's kernels one by one against the CPU's first, on layouts and edge
//! cases the model-level tests rarely reach, and names the kernel and the case that
//! differ.

#![warn(missing_docs)]

/// The device the test suite runs on: [`ferrograd_cpu::Cpu`] (GPU 0 with the `cuda`
/// feature).
#[cfg(not(feature = "cuda"))]
pub type TestDevice = ferrograd_cpu::Cpu;

/// The device the test suite runs on: GPU 0 (`ferrograd_cuda::Cuda`), with the `cuda`
/// feature.
#[cfg(feature = "cuda")]
pub type TestDevice = ferrograd_cuda::Cuda;

/// A new [`TestDevice`], its random generator seeded with 0, so a test draws the same
/// numbers on every run.
#[cfg(not(feature = "cuda"))]
pub fn test_device() -> TestDevice {
    ferrograd_cpu::Cpu::seed_from_u64(0)
}

/// A new [`TestDevice`] on GPU 0, its random generator seeded with 0.
///
/// Without a usable GPU it prints why and ends the test process successfully: every
/// test of a CUDA build needs the GPU, so none can run, and a build machine without
/// one (CI) compiles the suite without running it. With `FERROGRAD_REQUIRE_GPU` set it
/// panics instead, so a GPU machine cannot pass by accident.
#[cfg(feature = "cuda")]
pub fn test_device() -> TestDevice {
    match ferrograd_cuda::Cuda::seed_from_u64(0) {
        Ok(device) => device,
        Err(error) if std::env::var_os("FERROGRAD_REQUIRE_GPU").is_some() => {
            panic!("FERROGRAD_REQUIRE_GPU is set, but there is no usable GPU: {error}")
        }
        Err(error) => {
            use std::io::Write;
            // Written to the process's stderr directly: the test harness captures
            // `eprintln!`, and would never print it, since the process ends here.
            let _ = writeln!(
                std::io::stderr(),
                "skipped: this test binary runs on the GPU (ferrograd-testing/cuda), and there is none: {error}"
            );
            std::process::exit(0)
        }
    }
}

pub mod conformance;
