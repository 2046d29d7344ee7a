//! CPU kernels for ferrograd.
//!
//! [`Cpu`] implements the kernel traits of `ferrograd-device` (re-exported here as
//! [`device`]) on host memory. It can be used on its own, without tensors or autodiff:
//! a program that depends on this crate alone runs kernels on host buffers, each read
//! through a [`Layout`](device::Layout) as a [`View`](device::View), and gets an
//! [`Error`](device::Error) for a layout that does not fit its buffer. This is the
//! crate's `standalone` example (`cargo run -p ferrograd-cpu --example standalone`):
//!
//! ```
#![doc = include_str!("../examples/standalone.rs")]
//! ```
//!
//! With the `fast-math` feature the element-wise `Exp`, `Ln`, `Tanh` and `Sigmoid` ops
//! on `f32` use the vectorised approximations of [`fast_math`], whose maximum errors
//! are stated there; `f64` and every other op are unchanged.

pub mod fast_math;
pub mod gemm;
mod host;
mod ops;
mod threads;

/// The device layer this crate implements (kernel traits, views, errors), re-exported
/// so a program that uses the CPU kernels alone depends on this crate only.
pub use ferrograd_device as device;
pub use host::{Cpu, CpuBuffer};
pub use threads::{NUM_THREADS_ENV, num_threads, set_num_threads, try_set_num_threads};

/// The number of threads large kernels use: see [`num_threads`].
pub(crate) fn threads() -> usize {
    threads::num_threads()
}
