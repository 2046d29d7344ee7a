//! Optimizers, learning-rate schedules and gradient clipping for ferrograd, with
//! PyTorch's defaults and update formulas.
//!
//! - [`Sgd`], [`Adam`], [`AdamW`], [`Rmsprop`], [`Adagrad`], [`SparseAdam`]: each with
//!   a config whose `Default` is PyTorch's, behind the [`Optimizer`] trait. A step updates a model's
//!   parameters in place, one fused pass per parameter (the device's
//!   [`OptimizerKernel`](ferrograd_device::ops::optimizer::OptimizerKernel)).
//! - Parameter groups chosen by name ([`GroupSelector`]), each with its own
//!   hyperparameters; [`LearningRates`] gives each group's rate to schedules.
//! - Schedules ([`schedule`]): step, multi-step, exponential, cosine annealing, linear
//!   warm-up, one-cycle, and chaining them, giving PyTorch's rates step by step.
//! - [`clip_grad_norm`] and [`clip_grad_value`].
//! - Row-sparse gradients (an `Embedding` built with `sparse(true)`): `Sgd`, `Adagrad`
//!   and `SparseAdam` update only the touched rows (`Sgd` with momentum runs PyTorch's
//!   equivalent dense update), clipping scales the rows held, and an optimizer that
//!   cannot take one returns an error naming the parameter, as PyTorch raises.
//!
//! A training step, with a model that lists its parameters ([`VisitParameters`]):
//! see [`Optimizer`].
//!
//! [`VisitParameters`]: ferrograd_autodiff::VisitParameters

#![warn(missing_docs)]

mod adagrad;
mod adam;
mod clip;
mod optimizer;
mod rmsprop;
pub mod schedule;
mod sgd;
mod sparse_adam;

pub use adagrad::{Adagrad, AdagradConfig};
pub use adam::{Adam, AdamConfig, AdamW, AdamWConfig};
pub use clip::{clip_grad_norm, clip_grad_value};
pub use ferrograd_device::ops::optimizer::NormType;
pub use optimizer::{GroupSelector, LearningRates, Optimizer, StateVisitor};
pub use rmsprop::{Rmsprop, RmspropConfig};
pub use schedule::{
    Anneal, ChainedScheduler, CosineAnnealingLr, ExponentialLr, LinearLr, LrScheduler, MultiStepLr, OneCycleConfig,
    OneCycleLr, SequentialLr, StepLr,
};
pub use sgd::{Sgd, SgdConfig};
pub use sparse_adam::{SparseAdam, SparseAdamConfig};
