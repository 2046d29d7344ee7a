//! Adam and AdamW (with AMSGrad).

use crate::optimizer::{Core, UpdateRule, ensure_filled, invalid, non_negative, optimizer_api};
use ferrograd_device::ops::optimizer::{AdamUpdate, OptimizerKernel};
use ferrograd_device::{Dtype, Error, Storage};

/// The hyperparameters of [`Adam`]; `Default` is PyTorch's `torch.optim.Adam`'s.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdamConfig {
    /// The learning rate; 1e-3 by default.
    pub lr: f64,
    /// (β₁, β₂): the decay rates of the first and second moments, each in [0, 1);
    /// (0.9, 0.999) by default.
    pub betas: (f64, f64),
    /// Added to the denominator for stability; 1e-8 by default.
    pub eps: f64,
    /// The L2 penalty added to the gradient (coupled, unlike [`AdamW`]); 0 by default.
    pub weight_decay: f64,
    /// Keep the maximum of the second moment (AMSGrad); off by default.
    pub amsgrad: bool,
    /// Ascend the objective instead of descending it; off by default.
    pub maximize: bool,
}

impl Default for AdamConfig {
    fn default() -> Self {
        Self {
            lr: 1e-3,
            betas: (0.9, 0.999),
            eps: 1e-8,
            weight_decay: 0.0,
            amsgrad: false,
            maximize: false,
        }
    }
}

/// The hyperparameters of [`AdamW`]; `Default` is PyTorch's `torch.optim.AdamW`'s
/// (as [`AdamConfig`]'s, but with a weight decay of 1e-2).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdamWConfig {
    /// The learning rate; 1e-3 by default.
    pub lr: f64,
    /// (β₁, β₂), each in [0, 1); (0.9, 0.999) by default.
    pub betas: (f64, f64),
    /// Added to the denominator for stability; 1e-8 by default.
    pub eps: f64,
    /// The decoupled weight decay: each step first multiplies the parameter by
    /// `1 − lr · weight_decay`; 1e-2 by default.
    pub weight_decay: f64,
    /// Keep the maximum of the second moment (AMSGrad); off by default.
    pub amsgrad: bool,
    /// Ascend the objective instead of descending it; off by default.
    pub maximize: bool,
}

impl Default for AdamWConfig {
    fn default() -> Self {
        Self {
            lr: 1e-3,
            betas: (0.9, 0.999),
            eps: 1e-8,
            weight_decay: 1e-2,
            amsgrad: false,
            maximize: false,
        }
    }
}

/// Adam, PyTorch's `torch.optim.Adam` (its single-tensor form), at step `t`:
///
/// ```text
/// g = grad + weight_decay · p
/// m = β₁ · m + (1 − β₁) · g
/// v = β₂ · v + (1 − β₂) · g²
/// v̂ = max(v̂, v) with amsgrad, else v
/// p = p − lr / (1 − β₁ᵗ) · m / (√v̂ / √(1 − β₂ᵗ) + eps)
/// ```
///
/// Its state per parameter: `step`, `exp_avg` (m), `exp_avg_sq` (v) and, with
/// amsgrad, `max_exp_avg_sq` (v̂).
///
/// ```
/// use ferrograd_autodiff::prelude::*;
/// use ferrograd_autodiff::{ParameterVisitor, ParameterVisitorMut};
/// use ferrograd_cpu::Cpu;
/// use ferrograd_optim::{Adam, AdamConfig, Optimizer};
///
/// /// A linear model y = w · x + b.
/// struct Linear {
///     weight: Tensor<Rank1<3>, f32, Cpu>,
///     bias: Tensor<Rank0, f32, Cpu>,
/// }
///
/// impl VisitParameters<f32, Cpu> for Linear {
///     fn visit_parameters<V: ParameterVisitor<f32, Cpu>>(&self, visitor: &mut V) -> Result<(), Error> {
///         visitor.visit("weight", &self.weight)?;
///         visitor.visit("bias", &self.bias)
///     }
///     fn visit_parameters_mut<V: ParameterVisitorMut<f32, Cpu>>(&mut self, visitor: &mut V) -> Result<(), Error> {
///         visitor.visit_mut("weight", &mut self.weight)?;
///         visitor.visit_mut("bias", &mut self.bias)
///     }
/// }
///
/// let dev = Cpu::default();
/// let mut model = Linear { weight: dev.zeros(), bias: dev.zeros() };
/// let mut adam = Adam::new(AdamConfig { lr: 0.1, ..Default::default() })?;
/// let x: Tensor<Rank1<3>, f32, Cpu> = dev.tensor([1.0, 2.0, 3.0]);
/// let target = 2.0f32;
///
/// let mut losses = Vec::new();
/// for _ in 0..50 {
///     let grads = model.try_alloc_grads()?;
///     let y = (x.clone().traced(grads) * model.weight.clone()).sum::<Rank0, _>() + model.bias.clone();
///     let loss = (y - target).square();
///     losses.push(loss.array());
///     adam.step(&mut model, &loss.backward())?;
/// }
/// assert!(losses[49] < 1e-2 * losses[0]);
/// # Ok::<(), Error>(())
/// ```
pub struct Adam<E: Dtype, D: Storage<E>> {
    core: Core<AdamConfig, E, D>,
}

optimizer_api!(Adam, AdamConfig);

/// AdamW, PyTorch's `torch.optim.AdamW`: Adam with decoupled weight decay. Each step
/// first multiplies the parameter by `1 − lr · weight_decay`, then takes Adam's step
/// with no L2 penalty. Its state is Adam's.
///
/// ```
/// use ferrograd_autodiff::prelude::*;
/// use ferrograd_cpu::Cpu;
/// use ferrograd_optim::{AdamW, AdamWConfig, Optimizer};
///
/// let dev = Cpu::default();
/// let mut w: Tensor<Rank1<2>, f64, Cpu> = dev.tensor([1.0, -1.0]);
/// let mut adamw = AdamW::new(AdamWConfig { lr: 0.1, weight_decay: 0.5, ..Default::default() })?;
/// let grads = w.leaky_trace().sum::<Rank0, _>().backward(); // a gradient of ones
/// adamw.step(&mut w, &grads)?;
/// // Decay by 1 - 0.1·0.5, then Adam's first step moves by lr·g/(|g| + eps′) ≈ 0.1.
/// let w = w.array();
/// assert!((w[0] - (0.95 - 0.1)).abs() < 1e-6 && (w[1] - (-0.95 - 0.1)).abs() < 1e-6);
/// # Ok::<(), Error>(())
/// ```
pub struct AdamW<E: Dtype, D: Storage<E>> {
    core: Core<AdamWConfig, E, D>,
}

optimizer_api!(AdamW, AdamWConfig);

const ADAM_BUFFERS: &[&str] = &["exp_avg", "exp_avg_sq", "max_exp_avg_sq"];

/// Checks Adam's ranges as PyTorch does.
fn validate(name: &'static str, lr: f64, betas: (f64, f64), eps: f64, weight_decay: f64) -> Result<(), Error> {
    non_negative(name, "lr", lr)?;
    non_negative(name, "eps", eps)?;
    for (index, beta) in [betas.0, betas.1].into_iter().enumerate() {
        if !(0.0..1.0).contains(&beta) {
            return Err(invalid(name, format!("betas.{index} must be in [0, 1), got {beta}")));
        }
    }
    non_negative(name, "weight_decay", weight_decay)
}

/// One Adam or AdamW step: the scalars are computed in `f64` as PyTorch computes them
/// in Python floats, then rounded to `E`.
#[allow(clippy::too_many_arguments)]
fn adam_step<E: Dtype, D: OptimizerKernel<E>>(
    device: &D,
    config: &AdamConfig,
    decoupled: bool,
    step: u64,
    param: &mut D::Vec,
    grad: &D::Vec,
    buffers: &mut [Option<D::Vec>],
) -> Result<(), Error> {
    let (beta1, beta2) = config.betas;
    let step = step as f64;
    let bias_correction1 = 1.0 - beta1.powf(step);
    let bias_correction2 = 1.0 - beta2.powf(step);
    // PyTorch applies either form only when the decay is non-zero.
    let (weight_decay, decay_factor) = if config.weight_decay == 0.0 {
        (0.0, 1.0)
    } else if decoupled {
        (0.0, 1.0 - config.lr * config.weight_decay)
    } else {
        (config.weight_decay, 1.0)
    };
    let update = AdamUpdate {
        step_size: E::from_f64(config.lr / bias_correction1),
        bias_correction2_sqrt: E::from_f64(bias_correction2.powf(0.5)),
        one_minus_beta1: E::from_f64(1.0 - beta1),
        beta2: E::from_f64(beta2),
        one_minus_beta2: E::from_f64(1.0 - beta2),
        eps: E::from_f64(config.eps),
        weight_decay: E::from_f64(weight_decay),
        decay_factor: E::from_f64(decay_factor),
        amsgrad: config.amsgrad,
        maximize: config.maximize,
    };
    let len = D::len(param);
    let [exp_avg, exp_avg_sq, max_exp_avg_sq] = buffers else {
        return Err(invalid(
            "adam",
            format!("expected 3 state buffers, found {}", buffers.len()),
        ));
    };
    ensure_filled(device, exp_avg, len, E::ZERO)?;
    ensure_filled(device, exp_avg_sq, len, E::ZERO)?;
    if config.amsgrad {
        ensure_filled(device, max_exp_avg_sq, len, E::ZERO)?;
    }
    let (Some(exp_avg), Some(exp_avg_sq)) = (exp_avg, exp_avg_sq) else {
        return Ok(());
    };
    let max_exp_avg_sq = if config.amsgrad { max_exp_avg_sq.as_mut() } else { None };
    device.adam_update(&update, param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq)
}

impl UpdateRule for AdamConfig {
    const NAME: &'static str = "Adam";
    const BUFFERS: &'static [&'static str] = ADAM_BUFFERS;
    const COUNTS_STEPS: bool = true;

    fn lr(&self) -> f64 {
        self.lr
    }

    fn set_lr(&mut self, lr: f64) {
        self.lr = lr;
    }

    fn validate(&self) -> Result<(), Error> {
        validate(Self::NAME, self.lr, self.betas, self.eps, self.weight_decay)
    }

    fn sparse_support(&self) -> Result<(), String> {
        Err("Adam does not support sparse gradients, please consider SparseAdam instead".into())
    }

    fn update<E: Dtype, D: OptimizerKernel<E>>(
        &self,
        device: &D,
        step: u64,
        param: &mut D::Vec,
        grad: &D::Vec,
        buffers: &mut [Option<D::Vec>],
    ) -> Result<(), Error> {
        adam_step(device, self, false, step, param, grad, buffers)
    }
}

impl UpdateRule for AdamWConfig {
    const NAME: &'static str = "AdamW";
    const BUFFERS: &'static [&'static str] = ADAM_BUFFERS;
    const COUNTS_STEPS: bool = true;

    fn lr(&self) -> f64 {
        self.lr
    }

    fn set_lr(&mut self, lr: f64) {
        self.lr = lr;
    }

    fn validate(&self) -> Result<(), Error> {
        validate(Self::NAME, self.lr, self.betas, self.eps, self.weight_decay)
    }

    fn sparse_support(&self) -> Result<(), String> {
        Err("AdamW does not support sparse gradients, please consider SparseAdam instead".into())
    }

    fn update<E: Dtype, D: OptimizerKernel<E>>(
        &self,
        device: &D,
        step: u64,
        param: &mut D::Vec,
        grad: &D::Vec,
        buffers: &mut [Option<D::Vec>],
    ) -> Result<(), Error> {
        let config = AdamConfig {
            lr: self.lr,
            betas: self.betas,
            eps: self.eps,
            weight_decay: self.weight_decay,
            amsgrad: self.amsgrad,
            maximize: self.maximize,
        };
        adam_step(device, &config, true, step, param, grad, buffers)
    }
}
