//! The layers, one file each, with their architecture types and built modules.

pub mod activations;
pub mod dropout;
pub mod linear;
pub mod residual;

pub use activations::{GELU, GELUTanh, LeakyReLU, LogSoftmax, ReLU, SiLU, Sigmoid, Softmax, Tanh};
pub use dropout::Dropout;
pub use linear::{Linear, LinearConfig, LinearNoBias};
pub use residual::{ParallelAdd, Residual};
