//! RMSprop, plain or centered, with momentum.

use crate::optimizer::{Core, UpdateRule, ensure_filled, non_negative, optimizer_api};
use ferrograd_device::ops::optimizer::{OptimizerKernel, RmspropUpdate};
use ferrograd_device::{Dtype, Error, Storage};

/// The hyperparameters of [`Rmsprop`]; `Default` is PyTorch's `torch.optim.RMSprop`'s.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RmspropConfig {
    /// The learning rate; 1e-2 by default.
    pub lr: f64,
    /// α, the decay of the running average of squared gradients; 0.99 by default.
    pub alpha: f64,
    /// Added to the denominator for stability; 1e-8 by default.
    pub eps: f64,
    /// The L2 penalty added to the gradient; 0 by default.
    pub weight_decay: f64,
    /// The momentum factor; 0 (the default) keeps no momentum buffer.
    pub momentum: f64,
    /// Normalise by an estimate of the gradient's variance instead of its second
    /// moment; off by default.
    pub centered: bool,
    /// Ascend the objective instead of descending it; off by default.
    pub maximize: bool,
}

impl Default for RmspropConfig {
    fn default() -> Self {
        Self {
            lr: 1e-2,
            alpha: 0.99,
            eps: 1e-8,
            weight_decay: 0.0,
            momentum: 0.0,
            centered: false,
            maximize: false,
        }
    }
}

/// RMSprop, PyTorch's `torch.optim.RMSprop`:
///
/// ```text
/// g = grad + weight_decay · p
/// s = α · s + (1 − α) · g²
/// d = √(s − a²) + eps, a = α · a + (1 − α) · g       centered
/// d = √s + eps                                        otherwise
/// b = momentum · b + g / d,  p = p − lr · b           with momentum
/// p = p − lr · g / d                                  without
/// ```
///
/// Its state per parameter: `step`, `square_avg` (s), with momentum
/// `momentum_buffer` (b), when centered `grad_avg` (a).
///
/// ```
/// use ferrograd_autodiff::prelude::*;
/// use ferrograd_cpu::Cpu;
/// use ferrograd_optim::{Optimizer, Rmsprop, RmspropConfig};
///
/// let dev = Cpu::default();
/// let mut w: Tensor<Rank1<2>, f64, Cpu> = dev.tensor([1.0, -1.0]);
/// let mut rmsprop = Rmsprop::new(RmspropConfig::default())?;
/// let grads = w.leaky_trace().sum::<Rank0, _>().backward(); // a gradient of ones
/// rmsprop.step(&mut w, &grads)?;
/// // First step: s = 0.01, so p moves by lr · 1 / (0.1 + eps).
/// let moved = 0.01 / (0.01f64.sqrt() + 1e-8);
/// assert!((w.array()[0] - (1.0 - moved)).abs() < 1e-12);
/// # Ok::<(), Error>(())
/// ```
pub struct Rmsprop<E: Dtype, D: Storage<E>> {
    core: Core<RmspropConfig, E, D>,
}

optimizer_api!(Rmsprop, RmspropConfig);

impl UpdateRule for RmspropConfig {
    const NAME: &'static str = "RMSprop";
    const BUFFERS: &'static [&'static str] = &["square_avg", "momentum_buffer", "grad_avg"];
    const COUNTS_STEPS: bool = true;

    fn lr(&self) -> f64 {
        self.lr
    }

    fn set_lr(&mut self, lr: f64) {
        self.lr = lr;
    }

    fn validate(&self) -> Result<(), Error> {
        non_negative(Self::NAME, "lr", self.lr)?;
        non_negative(Self::NAME, "eps", self.eps)?;
        non_negative(Self::NAME, "momentum", self.momentum)?;
        non_negative(Self::NAME, "weight_decay", self.weight_decay)?;
        non_negative(Self::NAME, "alpha", self.alpha)
    }

    fn update<E: Dtype, D: OptimizerKernel<E>>(
        &self,
        device: &D,
        _step: u64,
        param: &mut D::Vec,
        grad: &D::Vec,
        buffers: &mut [Option<D::Vec>],
    ) -> Result<(), Error> {
        let update = RmspropUpdate {
            lr: E::from_f64(self.lr),
            alpha: E::from_f64(self.alpha),
            one_minus_alpha: E::from_f64(1.0 - self.alpha),
            eps: E::from_f64(self.eps),
            weight_decay: E::from_f64(self.weight_decay),
            momentum: E::from_f64(self.momentum),
            maximize: self.maximize,
        };
        let len = D::len(param);
        let [square_avg, momentum_buffer, grad_avg] = buffers else {
            return Err(crate::optimizer::invalid(
                Self::NAME,
                format!("expected 3 state buffers, found {}", buffers.len()),
            ));
        };
        ensure_filled(device, square_avg, len, E::ZERO)?;
        if self.momentum > 0.0 {
            ensure_filled(device, momentum_buffer, len, E::ZERO)?;
        }
        if self.centered {
            ensure_filled(device, grad_avg, len, E::ZERO)?;
        }
        let Some(square_avg) = square_avg else {
            return Ok(());
        };
        let momentum_buffer = if self.momentum > 0.0 {
            momentum_buffer.as_mut()
        } else {
            None
        };
        let grad_avg = if self.centered { grad_avg.as_mut() } else { None };
        device.rmsprop_update(&update, param, grad, square_avg, grad_avg, momentum_buffer)
    }
}
