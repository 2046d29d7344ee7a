//! Op declarations and their kernel traits, one module per op family.
//!
//! A device implements the kernel trait of each op it supports. Callers bound on the
//! single trait an op needs (`D: UnaryKernel<Exp, E>`), never on a catch-all device
//! trait, so an error names the one missing kernel.

pub mod compare;
pub mod conv;
pub mod conv_transpose;
pub mod convert;
pub mod copy;
pub mod dropout;
pub mod elementwise;
pub mod index;
pub mod matmul;
pub mod optimizer;
pub mod pool;
pub mod reduce;
pub mod softmax;
pub mod upsample;
