//! CPU kernels for ferrograd.
//!
//! [`Cpu`] implements the kernel traits of `ferrograd-device` on host memory. It can be
//! used without autodiff, on raw buffers and [`Layout`](ferrograd_device::Layout)s:
//!
//! ```
//! use ferrograd_cpu::Cpu;
//! use ferrograd_device::{Input, Layout, Storage, ops::elementwise::{Exp, UnaryKernel}};
//!
//! let cpu = Cpu::default();
//! let x = cpu.try_from_host(vec![0.0f64, 1.0]).unwrap();
//! let y = cpu.forward(&Exp {}, Input::Shared(&x), &Layout::from_parts(&[2], &[1])).unwrap();
//! assert_eq!(cpu.try_to_host(&y).unwrap(), vec![1.0, 1.0f64.exp()]);
//! ```

mod device;
pub mod gemm;
mod ops;

pub use device::{Cpu, CpuBuffer};

/// The most threads a kernel splits its work across.
const MAX_THREADS: usize = 8;

/// The number of threads large kernels use: the cores available (read once), at most
/// [`MAX_THREADS`].
pub(crate) fn threads() -> usize {
    static THREADS: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *THREADS.get_or_init(|| {
        std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .min(MAX_THREADS)
    })
}
