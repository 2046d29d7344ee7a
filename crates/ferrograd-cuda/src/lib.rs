//! ferrograd's NVIDIA GPU device, [`Cuda`], through [cudarc](https://docs.rs/cudarc).
//!
//! Like `ferrograd-cpu`, it implements `ferrograd-device`'s traits on raw buffers and
//! knows nothing of gradient tapes. The facade crate `ferrograd` re-exports it as
//! `ferrograd::cuda` (and `ferrograd::Cuda`) with its `cuda` feature.
//!
//! # What works today
//!
//! - [`Cuda`]: a GPU chosen by ordinal, shared by every handle on it; errors, never
//!   panics, when there is no driver or no such GPU.
//! - Memory: [`CudaBuffer`] and [`Storage`](ferrograd_device::Storage) for `f32`,
//!   `f64`, `usize` and `bool` (how each is stored is in [`CudaElement`]): zeros,
//!   filled buffers, buffers to overwrite, copies to and from the host; freed buffers
//!   are cached for reuse ([`Cuda::empty_cache`]).
//! - Random numbers: [`SampleKernel`](ferrograd_device::SampleKernel) (drawn on the host
//!   with the same generator as `Cpu`, then copied), [`Cuda::philox_uniform`] and
//!   dropout masks ([`DropoutKernel`](ferrograd_device::ops::dropout::DropoutKernel)),
//!   drawn on the GPU; see [`random`].
//! - Kernels written in CUDA C, compiled by NVRTC when first used ([`compile`]).
//! - Every op kernel of `ferrograd-device`, so `Cuda` has every capability group
//!   ([`ConvolutionKernels`](ferrograd_device::capabilities::ConvolutionKernels)):
//!   - element-wise ops: [`UnaryKernel`](ferrograd_device::ops::elementwise::UnaryKernel)
//!     and [`BinaryKernel`](ferrograd_device::ops::elementwise::BinaryKernel) for every
//!     declared op, from kernels generated out of the op's declaration ([`ops::elementwise`]);
//!     comparisons and `choose`, conversions between element types, and strided copies
//!     (`CompareKernel`, `ChooseKernel`, `ConvertKernel`, `CopyKernel`);
//!   - reductions over any axes of any layout, and their gradients ([`ops::reduce`]); softmax
//!     and log-softmax ([`ops::softmax`]); gather, scatter-add and one-hot ([`ops::index`]);
//!   - batched matrix products through cuBLAS
//!     ([`MatmulKernel`](ferrograd_device::ops::matmul::MatmulKernel)), 2-d convolutions
//!     by im2col and cuBLAS ([`Conv2dKernel`](ferrograd_device::ops::conv::Conv2dKernel)),
//!     pooling ([`Pool2dKernel`](ferrograd_device::ops::pool::Pool2dKernel)), upsampling
//!     ([`Upsample2dKernel`](ferrograd_device::ops::upsample::Upsample2dKernel)), and the
//!     optimizers' fused updates and gradient clipping
//!     ([`OptimizerKernel`](ferrograd_device::ops::optimizer::OptimizerKernel),
//!     [`GradientClipKernel`](ferrograd_device::ops::optimizer::GradientClipKernel)).
//!
//! None of it has run on a GPU yet: it is proven to compile (rustc, and NVRTC for every
//! kernel), the convolution, pooling, upsampling and optimizer kernels are also run on
//! the host by an emulation in the tests, and the GPU tests skip where there is no GPU.
//!
//! # What must be installed
//!
//! Nothing to build: cudarc loads the CUDA libraries when they are first used. To run,
//! - the NVIDIA driver, supporting CUDA 13.0 or newer (driver 580 or newer);
//!   [`Cuda::new`] returns an error without it;
//! - NVRTC 13 (`libnvrtc.so.13`), for the kernels: from the CUDA toolkit, or
//!   `pip install nvidia-cuda-nvrtc`, which puts it in
//!   `site-packages/nvidia/cu13/lib`. It is found through `LD_LIBRARY_PATH` and the
//!   system's library paths (as `libnvrtc.so`, `libnvrtc.so.13`, …), so add that
//!   directory to `LD_LIBRARY_PATH`. Without it, the operations that run a kernel (a
//!   fill with a non-zero value, [`Cuda::philox_uniform`], every op) return an error;
//!   allocation, zeros and copies do not need it;
//! - cuBLAS 13 (`libcublas.so.13`, from the toolkit or `pip install nvidia-cublas`),
//!   found the same way, for matrix products and convolutions (their first use
//!   returns an error without it).
//!
//! # Example
//!
//! ```no_run
//! // no_run: needs an NVIDIA GPU and driver (the doc tests run where there are none).
//! use ferrograd_cuda::Cuda;
//! use ferrograd_device::{SampleKernel, Storage};
//!
//! let gpu = Cuda::seed_from_u64(0)?; // the first GPU
//! println!("{} ({:?}), {} GPU(s)", gpu.name(), gpu.compute_capability(), Cuda::device_count()?);
//!
//! let ones = gpu.try_alloc_filled(4, 1.0f32)?;
//! assert_eq!(gpu.try_to_host(&ones)?, [1.0; 4]);
//!
//! // The same numbers as `Cpu::seed_from_u64(0)` draws.
//! let normal = gpu.try_sample(3, rand_distr::StandardNormal)?;
//! let _: Vec<f64> = gpu.try_to_host(&normal)?;
//! # Ok::<(), ferrograd_device::Error>(())
//! ```
//!
//! # Unsafe code
//!
//! Only where cudarc requires it: kernel launches (the argument types must match the
//! kernel's), uninitialised allocations, the checks that the driver and NVRTC libraries
//! can be loaded, and the few calls cudarc does not wrap (the driver's CUDA version,
//! NVRTC's version and its CUBIN output). Each block says why it is sound.

#![warn(missing_docs)]

mod allocator;
mod buffer;
pub mod compile;
mod device;
mod element;
#[cfg(test)]
mod emulation;
mod kernel;
mod layout;
pub mod ops;
pub mod random;
mod strided;

pub use buffer::CudaBuffer;
pub use compile::{KernelSource, nvrtc_version};
pub use device::Cuda;
pub use element::CudaElement;
pub use ops::elementwise::generated_kernel_sources;

/// Every CUDA C source of the crate, so that a test can compile them all without a GPU
/// (`tests/nvrtc_compile.rs` does, in CI). A new kernel source is added here.
pub fn kernel_sources() -> &'static [KernelSource] {
    &[
        buffer::FILL,
        random::PHILOX,
        ops::reduce::REDUCE,
        ops::index::INDEX,
        ops::index::INDEX_ADD,
        ops::softmax::SOFTMAX,
        ops::compare::COMPARE,
        ops::compare::CHOOSE,
        ops::convert::CONVERT,
        ops::copy::COPY,
        ops::matmul::GEMM,
        ops::conv::CONV,
        ops::pool::POOL,
        ops::upsample::UPSAMPLE,
        ops::optimizer::OPTIMIZER,
    ]
}
