//! The device ferrograd's test suite runs on, and the suite a new device's kernels
//! must pass ([`conformance`]).
//!
//! Tests never name a device type: they write [`TestDevice`] and get one from
//! [`test_device`], so the same unit tests and PyTorch parity fixtures run on every
//! device. Which device that is, is chosen when the tests are built: the CPU, the only
//! one the suite compiles for today. Switching the alias to `ferrograd_cuda::Cuda` is
//! the next step of the GPU work: the kernels are there (`Cuda` has every capability
//! group), but some tests still read CPU buffers directly and their generic helpers
//! bound `E: Dtype` where they need `TestDevice: Storage<E>`.
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

/// The device the test suite runs on: [`ferrograd_cpu::Cpu`].
pub type TestDevice = ferrograd_cpu::Cpu;

/// A new [`TestDevice`], its random generator seeded with 0, so a test draws the same
/// numbers on every run.
pub fn test_device() -> TestDevice {
    ferrograd_cpu::Cpu::seed_from_u64(0)
}

pub mod conformance;
