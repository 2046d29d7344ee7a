//! Optimizer updates and gradient clipping: each update is one fused pass over a
//! parameter's buffer, its gradient's and its state's, with no temporary buffers.
//!
//! The hyperparameters reach a kernel already combined and rounded to the element
//! type the way PyTorch's single-tensor implementations do it on the host (a step
//! size `lr / (1 − β₁ᵗ)` is computed in `f64`, then rounded once), so every device
//! computes the same thing from the same scalars. Every buffer of one update has the
//! parameter's length: a kernel checks that first and returns
//! [`Error::ShapeMismatch`] otherwise.

use crate::dtype::Dtype;
use crate::error::Error;
use crate::storage::Storage;

/// One step of SGD (PyTorch's `torch.optim.SGD`), per element:
///
/// ```text
/// g = ±grad + weight_decay · p                    (− when maximising)
/// with momentum:  b = g on the first step, else b = momentum · b + (1 − dampening) · g
///                 g = g + momentum · b (nesterov), else g = b
/// p = p − lr · g
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SgdUpdate<E> {
    /// The learning rate.
    pub lr: E,
    /// The momentum factor; 0 for none (then there is no momentum buffer).
    pub momentum: E,
    /// `1 − dampening`: how much of the gradient enters the momentum buffer.
    pub one_minus_dampening: E,
    /// The L2 penalty added to the gradient.
    pub weight_decay: E,
    /// Nesterov momentum.
    pub nesterov: bool,
    /// Ascend instead of descend (negates the gradient).
    pub maximize: bool,
}

/// One step of Adam or AdamW (PyTorch's `torch.optim.Adam` / `AdamW`), per element:
///
/// ```text
/// p = p · decay_factor                            (AdamW: 1 − lr · weight_decay)
/// g = ±grad + weight_decay · p                    (Adam's L2 penalty; 0 for AdamW)
/// m = m + (1 − β₁) · (g − m)                      (PyTorch's lerp)
/// v = β₂ · v + (1 − β₂) · g²
/// v̂ = max(v̂, v) with amsgrad, else v
/// p = p − step_size · m / (√v̂ / bias_correction2_sqrt + eps)
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdamUpdate<E> {
    /// `lr / (1 − β₁ᵗ)` at step `t`.
    pub step_size: E,
    /// `√(1 − β₂ᵗ)` at step `t`.
    pub bias_correction2_sqrt: E,
    /// `1 − β₁`, the weight of the gradient in the first moment.
    pub one_minus_beta1: E,
    /// β₂, the decay of the second moment.
    pub beta2: E,
    /// `1 − β₂`.
    pub one_minus_beta2: E,
    /// Added to the denominator for stability.
    pub eps: E,
    /// Adam's L2 penalty added to the gradient (0 for AdamW, whose decay is
    /// `decay_factor`).
    pub weight_decay: E,
    /// What the parameter is multiplied by before the update: AdamW's decoupled
    /// decay `1 − lr · weight_decay`, 1 for Adam.
    pub decay_factor: E,
    /// Keep the maximum of the second moment (AMSGrad).
    pub amsgrad: bool,
    /// Ascend instead of descend.
    pub maximize: bool,
}

/// One step of RMSprop (PyTorch's `torch.optim.RMSprop`), per element:
///
/// ```text
/// g = ±grad + weight_decay · p
/// s = α · s + (1 − α) · g²
/// centered:   a = a + (1 − α) · (g − a),  d = √(s − a²) + eps;  else d = √s + eps
/// momentum:   b = momentum · b + g / d,  p = p − lr · b;        else p = p − lr · g / d
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RmspropUpdate<E> {
    /// The learning rate.
    pub lr: E,
    /// α, the decay of the running average of squared gradients.
    pub alpha: E,
    /// `1 − α`.
    pub one_minus_alpha: E,
    /// Added to the denominator for stability.
    pub eps: E,
    /// The L2 penalty added to the gradient.
    pub weight_decay: E,
    /// The momentum factor (used only when a momentum buffer is given).
    pub momentum: E,
    /// Ascend instead of descend.
    pub maximize: bool,
}

/// One step of Adagrad (PyTorch's `torch.optim.Adagrad`), per element:
///
/// ```text
/// g = ±grad + weight_decay · p
/// s = s + g²
/// p = p − lr · g / (√s + eps)          (lr already decayed: lr / (1 + (t − 1) · lr_decay))
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdagradUpdate<E> {
    /// The learning rate of this step, decay included.
    pub lr: E,
    /// Added to the denominator for stability.
    pub eps: E,
    /// The L2 penalty added to the gradient.
    pub weight_decay: E,
    /// Ascend instead of descend.
    pub maximize: bool,
}

/// Runs optimizer updates in place on a device.
pub trait OptimizerKernel<E: Dtype>: Storage<E> {
    /// An SGD step on `param`. `momentum_buffer` is `None` without momentum; with it,
    /// `Some((buffer, first))`, where `first` says the buffer is new and the step
    /// writes it (PyTorch's first momentum buffer is the gradient itself, undamped).
    fn sgd_update(
        &self,
        update: &SgdUpdate<E>,
        param: &mut Self::Vec,
        grad: &Self::Vec,
        momentum_buffer: Option<(&mut Self::Vec, bool)>,
    ) -> Result<(), Error>;

    /// An Adam or AdamW step on `param`; `max_exp_avg_sq` is required with `amsgrad`.
    fn adam_update(
        &self,
        update: &AdamUpdate<E>,
        param: &mut Self::Vec,
        grad: &Self::Vec,
        exp_avg: &mut Self::Vec,
        exp_avg_sq: &mut Self::Vec,
        max_exp_avg_sq: Option<&mut Self::Vec>,
    ) -> Result<(), Error>;

    /// An RMSprop step on `param`; `grad_avg` is given when centered,
    /// `momentum_buffer` when the momentum is positive.
    fn rmsprop_update(
        &self,
        update: &RmspropUpdate<E>,
        param: &mut Self::Vec,
        grad: &Self::Vec,
        square_avg: &mut Self::Vec,
        grad_avg: Option<&mut Self::Vec>,
        momentum_buffer: Option<&mut Self::Vec>,
    ) -> Result<(), Error>;

    /// An Adagrad step on `param`.
    fn adagrad_update(
        &self,
        update: &AdagradUpdate<E>,
        param: &mut Self::Vec,
        grad: &Self::Vec,
        sum: &mut Self::Vec,
    ) -> Result<(), Error>;
}

/// Which vector norm [`GradientClipKernel::norm`] computes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NormType {
    /// Σ |x|.
    One,
    /// √(Σ x²), the Euclidean norm.
    Two,
    /// max |x|.
    Infinity,
}

/// What gradient clipping needs from a device: a norm, a scale, a clamp.
pub trait GradientClipKernel<E: Dtype>: Storage<E> {
    /// The norm of every element of `buffer` (0 for an empty one).
    fn norm(&self, buffer: &Self::Vec, norm_type: NormType) -> Result<E, Error>;
    /// Multiplies every element by `factor`.
    fn scale(&self, buffer: &mut Self::Vec, factor: E) -> Result<(), Error>;
    /// Clamps every element into `[min, max]`.
    fn clamp(&self, buffer: &mut Self::Vec, min: E, max: E) -> Result<(), Error>;
}

/// Checks that every buffer of an update has the parameter's length: what a kernel
/// calls first, so a wrong state (from a checkpoint of another model, say) is an
/// error naming the buffer instead of a panic or a partial update.
pub fn check_lengths(op: &'static str, param_len: usize, others: &[(&str, usize)]) -> Result<(), Error> {
    for &(name, len) in others {
        if len != param_len {
            return Err(Error::ShapeMismatch {
                op,
                message: format!("the parameter has {param_len} elements but its {name} has {len}"),
            });
        }
    }
    Ok(())
}
