//! Loss functions, named and defined as in `torch.nn.functional`: [`mse_loss`],
//! [`l1_loss`], [`huber_loss`], [`smooth_l1_loss`], [`cross_entropy`] (class indices)
//! and [`cross_entropy_with_probabilities`], [`nll_loss`],
//! [`binary_cross_entropy_with_logits`] and [`kl_div`].
//!
//! # Reductions
//!
//! PyTorch's `reduction` decides the result's shape, so here it decides the function:
//!
//! - `loss(…, Reduction::Mean | Reduction::Sum, …)` gives a scalar
//!   (`Tensor<Rank0, …>`), ready for `backward()`. [`Reduction::default()`] is `Mean`,
//!   PyTorch's default. ([`kl_div`] takes a [`KlDivReduction`], which adds
//!   `BatchMean`.)
//! - `loss_unreduced(…)` is PyTorch's `reduction='none'`: one loss per element for the
//!   element-wise losses (the input's shape), one per sample for [`cross_entropy`] and
//!   [`nll_loss`] (the targets' shape).
//!
//! Losses with options beyond the reduction take an options struct whose `Default` is
//! PyTorch's defaults ([`CrossEntropyOptions`], [`NllLossOptions`],
//! [`ProbabilityCrossEntropyOptions`], [`BinaryCrossEntropyOptions`]); the scalar
//! parameters of Huber and smooth L1 (`delta`, `beta`) are plain arguments.
//!
//! ```
//! use ferrograd_autodiff::prelude::*;
//! use ferrograd_nn::losses::{CrossEntropyOptions, Reduction, cross_entropy, cross_entropy_unreduced, mse_loss};
//!
//! let dev = ferrograd_cpu::Cpu::default();
//! let logits: Tensor<Rank2<3, 4>, f32, _> = dev.sample_normal();
//! let labels = dev.tensor([3usize, 0, 1]);
//!
//! // A scalar: its gradient flows back to the logits.
//! let loss = cross_entropy(logits.leaky_trace(), &labels, Reduction::Mean, CrossEntropyOptions::default());
//! let grads = loss.backward();
//! assert_eq!(grads.get(&logits).dims(), [3, 4]);
//!
//! // One loss per sample, with label smoothing; the third sample is ignored.
//! let options = CrossEntropyOptions { label_smoothing: 0.1, ignore_index: Some(1), ..Default::default() };
//! let per_sample: Tensor<Rank1<3>, f32, _> = cross_entropy_unreduced(logits.clone(), &labels, options);
//! assert_eq!(per_sample.array()[2], 0.0);
//!
//! // Element-wise losses take two tensors of one shape.
//! let target: Tensor<Rank2<3, 4>, f32, _> = dev.zeros();
//! let squared = mse_loss(logits, target, Reduction::Sum);
//! assert!(squared.array() > 0.0);
//! ```
//!
//! Shapes are checked by the compiler where they are `Const`: labels of the wrong
//! length, or a target of another shape, do not compile.
//!
//! ```compile_fail
//! use ferrograd_autodiff::prelude::*;
//! use ferrograd_nn::losses::{CrossEntropyOptions, Reduction, cross_entropy};
//! let dev = ferrograd_cpu::Cpu::default();
//! let logits: Tensor<Rank2<3, 4>, f32, _> = dev.zeros();
//! let labels = dev.tensor([3usize, 0]); // 2 labels for 3 samples
//! let _ = cross_entropy(logits, &labels, Reduction::Mean, CrossEntropyOptions::default());
//! ```
//!
//! Where dims are run-time `usize`s, a mismatch is an `Error::ShapeMismatch` naming
//! both shapes, from each function's `try_` twin (the plain function panics with its
//! text), and a class index past the classes is an `Error::InvalidArgument` naming it.
//!
//! # Conventions kept from PyTorch
//!
//! - Every loss differentiates its input and, where the target is a float tensor, its
//!   target (PyTorch's gradients, including at ties: `l1`'s and Huber's gradient is 0
//!   where input equals target). Class weights and `pos_weight` get no gradient.
//! - The mean of class-index losses with weights or ignored targets divides by the sum
//!   of the weights of the counted targets; a mean over nothing is NaN.
//! - `ignore_index` is an `Option<usize>` (`None` by default): PyTorch's `-100` cannot
//!   be a `usize` label.
//!
//! # How they are computed
//!
//! Each loss is one fused op: computed in f64 on the host from the inputs (read through
//! their layouts, so views work), with its local derivatives kept for backward, in
//! stable forms (`log_softmax` by the row maximum; `max(−x, 0) + ln(1 + e^(−|x|))` for
//! binary cross-entropy), so logits of ±1e4 give finite losses and the right gradients.
//! On the CPU the host is the device; elsewhere each loss copies its inputs across.

mod binary;
mod classification;
mod divergence;
mod fused;
mod regression;

pub use binary::{
    BinaryCrossEntropyOptions, binary_cross_entropy_with_logits, binary_cross_entropy_with_logits_unreduced,
    try_binary_cross_entropy_with_logits, try_binary_cross_entropy_with_logits_unreduced,
};
pub use classification::{
    CrossEntropyOptions, NllLossOptions, ProbabilityCrossEntropyOptions, cross_entropy, cross_entropy_unreduced,
    cross_entropy_with_probabilities, cross_entropy_with_probabilities_unreduced, nll_loss, nll_loss_unreduced,
    try_cross_entropy, try_cross_entropy_unreduced, try_cross_entropy_with_probabilities,
    try_cross_entropy_with_probabilities_unreduced, try_nll_loss, try_nll_loss_unreduced,
};
pub use divergence::{KlDivReduction, kl_div, kl_div_unreduced, try_kl_div, try_kl_div_unreduced};
pub use regression::{
    huber_loss, huber_loss_unreduced, l1_loss, l1_loss_unreduced, mse_loss, mse_loss_unreduced, smooth_l1_loss,
    smooth_l1_loss_unreduced, try_huber_loss, try_huber_loss_unreduced, try_l1_loss, try_l1_loss_unreduced,
    try_mse_loss, try_mse_loss_unreduced, try_smooth_l1_loss, try_smooth_l1_loss_unreduced,
};

use ferrograd_shapes::{Const, Dim, Shape};

/// How a loss reduces its per-element (or per-sample) losses to the scalar it returns:
/// PyTorch's `reduction='mean'` or `'sum'`. For `'none'`, call the loss's
/// `_unreduced` function.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Reduction {
    /// The mean (PyTorch's default): for class-index losses, weighted by the class
    /// weights of the counted targets.
    #[default]
    Mean,
    /// The sum.
    Sum,
}

/// The shapes a class-axis loss ([`cross_entropy`], [`nll_loss`]) takes, with the shape
/// of their targets and the type of the class dim: `(classes,)` (one unbatched sample,
/// target `()`), `(batch, classes)` (target `(batch,)`), `(batch, classes, d)` (target
/// `(batch, d)`) and `(batch, classes, h, w)` (target `(batch, h, w)`). The class axis
/// is axis 1 of a batch, as in PyTorch.
pub trait ClassShape: Shape {
    /// The index of the class axis.
    const CLASS_AXIS: usize;
    /// The shape without the class axis: that of class-index targets and of the
    /// unreduced loss.
    type Targets: Shape;
    /// The class dim, which class weights have.
    type Classes: Dim;
}

impl<C: Dim> ClassShape for (C,) {
    const CLASS_AXIS: usize = 0;
    type Targets = ();
    type Classes = C;
}

impl<N: Dim, C: Dim> ClassShape for (N, C) {
    const CLASS_AXIS: usize = 1;
    type Targets = (N,);
    type Classes = C;
}

impl<N: Dim, C: Dim, L: Dim> ClassShape for (N, C, L) {
    const CLASS_AXIS: usize = 1;
    type Targets = (N, L);
    type Classes = C;
}

impl<N: Dim, C: Dim, H: Dim, W: Dim> ClassShape for (N, C, H, W) {
    const CLASS_AXIS: usize = 1;
    type Targets = (N, H, W);
    type Classes = C;
}

/// A shape's last dim, along which [`BinaryCrossEntropyOptions::pos_weight`]
/// broadcasts. A scalar's is a dim of 1 (a one-element `pos_weight` broadcasts to it,
/// as in PyTorch).
pub trait LastAxis: Shape {
    /// The type of the last dim.
    type Last: Dim;
    /// The last dim of `shape`.
    fn last(shape: &Self) -> Self::Last;
}

impl LastAxis for () {
    type Last = Const<1>;
    fn last(_: &Self) -> Const<1> {
        Const
    }
}

macro_rules! last_axis {
    ($($D:ident),* ; $Last:ident, $index:tt) => {
        impl<$($D: Dim,)* $Last: Dim> LastAxis for ($($D,)* $Last,) {
            type Last = $Last;
            fn last(shape: &Self) -> $Last {
                shape.$index
            }
        }
    };
}
last_axis!(; A, 0);
last_axis!(A; B, 1);
last_axis!(A, B; C, 2);
last_axis!(A, B, C; F, 3);
last_axis!(A, B, C, F; G, 4);
last_axis!(A, B, C, F, G; H, 5);
