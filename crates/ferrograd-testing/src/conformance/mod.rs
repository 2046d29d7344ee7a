//! A kernel-conformance suite: runs a device's kernels and the CPU's on the same
//! inputs and compares the results.
//!
//! WIP
mod check;
mod compare;
mod elementwise;
mod index;
mod inputs;
mod memory;
mod reduce;

pub use check::{Failure, Mismatch, Problem, Report, Summary, Tolerance, compare};
pub use compare::{choose_kernel, compare_kernel};
pub use elementwise::{BINARY_OPS, EveryBinaryKernel, EveryUnaryKernel, UNARY_OPS, binary_kernels, unary_kernels};
pub use index::{gather_kernel, one_hot_kernel, scatter_add_kernel};
pub use memory::{EveryConvertKernel, convert_kernel, copy_kernel, sample_kernel, storage};
pub use reduce::{
    arg_extremum_kernel, extremum_kernel, extremum_with_indices_kernel, log_sum_exp_kernel, softmax_kernel, sum_kernel,
    variance_kernel,
};
