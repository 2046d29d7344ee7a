//! CPU kernels for ferrograd.
//!
//! [`Cpu`] implements the kernel traits of `ferrograd-device` on host memory. It can be
//! used without autodiff, on raw buffers read through [`Layout`](ferrograd_device::Layout)s
//! (a view); a layout that reaches past its buffer is an error, never a panic:
//!
//! ```
//! use ferrograd_cpu::Cpu;
//! use ferrograd_device::view::InputView;
//! use ferrograd_device::{Input, Layout, Storage, ops::elementwise::{Exp, UnaryKernel}};
//!
//! let cpu = Cpu::default();
//! let x = cpu.try_from_host(vec![0.0f64, 1.0]).unwrap();
//! let y = cpu.forward(&Exp {}, InputView::new(Input::Shared(&x), Layout::from_parts(&[2], &[1]))).unwrap();
//! assert_eq!(cpu.try_to_host(&y).unwrap(), vec![1.0, 1.0f64.exp()]);
//! let past_the_end = InputView::new(Input::Shared(&x), Layout::from_parts(&[3], &[1]));
//! assert!(cpu.forward(&Exp {}, past_the_end).is_err());
//! ```
//!
//! With the `fast-math` feature the element-wise `Exp`, `Ln`, `Tanh` and `Sigmoid` ops
//! on `f32` use the vectorised approximations of [`fast_math`], whose maximum errors
//! are stated there; `f64` and every other op are unchanged.

mod device;
pub mod fast_math;
pub mod gemm;
mod ops;
mod threads;

pub use device::{Cpu, CpuBuffer};
pub use threads::{NUM_THREADS_ENV, num_threads, set_num_threads, try_set_num_threads};

/// The number of threads large kernels use: see [`num_threads`].
pub(crate) fn threads() -> usize {
    threads::num_threads()
}
