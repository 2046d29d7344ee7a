//! ferrograd: a deep-learning library for Rust with PyTorch's ease and tensor shapes
//! checked by the compiler.
//!
//! ```
//! use ferrograd::prelude::*;
//!
//! let dev = Cpu::seed_from_u64(0);
//! let w: Tensor<Rank1<3>, f32, Cpu> = dev.sample_normal();
//! let x: Tensor<Rank1<3>, f32, Cpu> = dev.tensor([1.0, 2.0, 3.0]);
//! let loss = (w.leaky_trace() * x.clone()).tanh().sum::<Rank0, _>();
//! let grads = loss.backward();
//! println!("{:?}", grads.get(&w).array());
//! ```
//!
//! The crates behind it, re-exported here:
//! [`shapes`] (dims, shapes, axes), [`device`] (dtypes, kernel traits, [`Error`]),
//! [`cpu`] (the CPU device), [`autodiff`] (tensors, tapes, gradients), [`nn`] (layers,
//! losses, checkpoints), [`optim`] (optimizers), [`data`] (datasets, shuffling,
//! batching, a prefetching loader, MNIST).
//!
//! Features: `cuda` adds the NVIDIA GPU device, `ferrograd::Cuda`, and its crate as
//! `ferrograd::cuda` (`ferrograd-cuda`; for now it holds tensors' memory and draws
//! random numbers, but runs no ops: see the README's "Using an NVIDIA GPU");
//! `mkl`, `mkl-threaded` and `openblas` pick the matrix-product backend;
//! `safetensors` adds that checkpoint format; `fast-math` makes the CPU's `f32`
//! element-wise `exp`, `ln`, `tanh` and `sigmoid` use the vectorised approximations of
//! [`cpu::fast_math`] (their errors are stated there; `f64` stays exact).

pub mod optimizer_state;

pub use ferrograd_autodiff as autodiff;
pub use ferrograd_cpu as cpu;
#[cfg(feature = "cuda")]
pub use ferrograd_cuda as cuda;
pub use ferrograd_data as data;
pub use ferrograd_device as device;
pub use ferrograd_nn as nn;
pub use ferrograd_optim as optim;
pub use ferrograd_shapes as shapes;

pub use ferrograd_autodiff::{Gradients, NoneTape, OwnedTape, Tensor};
pub use ferrograd_cpu::{Cpu, num_threads, set_num_threads, try_set_num_threads};
#[cfg(feature = "cuda")]
pub use ferrograd_cuda::Cuda;
pub use ferrograd_device::Error;

/// Everything a typical program needs: `use ferrograd::prelude::*;` brings tensors,
/// shapes, the layers and module traits, the `losses` module, checkpoints, the
/// optimizers, the data loader with the MNIST digits, and the capability groups that
/// bound code generic over the device ([`device::capabilities`]).
pub mod prelude {
    pub use ferrograd_autodiff::prelude::*;
    pub use ferrograd_cpu::Cpu;
    pub use ferrograd_data::{
        Collate, DataLoader, Dataset, Digit, DigitBatch, Digits, DigitsToTensors, LoaderConfig, Split,
    };
    pub use ferrograd_device::capabilities::{ArithmeticKernels, ConvolutionKernels, TrainingKernels};
    pub use ferrograd_nn::losses::{self, Reduction};
    pub use ferrograd_nn::prelude::*;
    pub use ferrograd_optim::{
        Adagrad, AdagradConfig, Adam, AdamConfig, AdamW, AdamWConfig, LearningRates, Optimizer, Rmsprop, RmspropConfig,
        Sgd, SgdConfig, SparseAdam, SparseAdamConfig,
    };
}

// Compiles and runs the README's code blocks under `cargo test --doc`, so the front
// page cannot drift from the API.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
pub struct ReadmeDoctests;
