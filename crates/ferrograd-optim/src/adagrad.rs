//! Adagrad.

use crate::optimizer::{Core, UpdateRule, ensure_filled, non_negative, optimizer_api};
use ferrograd_autodiff::SparseGrad;
use ferrograd_device::ops::optimizer::{AdagradUpdate, OptimizerKernel, SparseRows};
use ferrograd_device::{Dtype, Error, Storage};

/// The hyperparameters of [`Adagrad`]; `Default` is PyTorch's `torch.optim.Adagrad`'s.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdagradConfig {
    /// The learning rate; 1e-2 by default.
    pub lr: f64,
    /// The learning rate's decay: step `t` uses `lr / (1 + (t − 1) · lr_decay)`; 0 by default.
    pub lr_decay: f64,
    /// The L2 penalty added to the gradient; 0 by default.
    pub weight_decay: f64,
    /// The starting value of the sum of squared gradients; 0 by default.
    pub initial_accumulator_value: f64,
    /// Added to the denominator for stability; 1e-10 by default.
    pub eps: f64,
    /// Ascend the objective instead of descending it; off by default.
    pub maximize: bool,
}

impl Default for AdagradConfig {
    fn default() -> Self {
        Self {
            lr: 1e-2,
            lr_decay: 0.0,
            weight_decay: 0.0,
            initial_accumulator_value: 0.0,
            eps: 1e-10,
            maximize: false,
        }
    }
}

/// Adagrad, PyTorch's `torch.optim.Adagrad`, at step `t`:
///
/// ```text
/// g = grad + weight_decay · p
/// s = s + g²                                   (s starts at initial_accumulator_value)
/// p = p − lr / (1 + (t − 1) · lr_decay) · g / (√s + eps)
/// ```
///
/// Its state per parameter: `step` and `sum` (s).
///
/// A row-sparse gradient (an `Embedding` built with `sparse(true)`) updates only the
/// touched rows of `p` and `s`, which is exactly the dense update (a zero gradient
/// moves neither); the step count still advances for the whole parameter. A weight
/// decay with a sparse gradient is an [`Error::InvalidArgument`] naming the
/// parameter, as PyTorch raises.
///
/// ```
/// use ferrograd_autodiff::prelude::*;
/// use ferrograd_cpu::Cpu;
/// use ferrograd_optim::{Adagrad, AdagradConfig, Optimizer};
///
/// let dev = Cpu::default();
/// let mut w: Tensor<Rank1<2>, f64, Cpu> = dev.tensor([1.0, -1.0]);
/// let mut adagrad = Adagrad::new(AdagradConfig { lr: 0.5, ..Default::default() })?;
/// let grads = w.leaky_trace().sum::<Rank0, _>().backward(); // a gradient of ones
/// adagrad.step(&mut w, &grads)?;
/// // s = 1, so p moves by lr · 1 / (1 + eps).
/// assert!((w.array()[1] - (-1.0 - 0.5 / (1.0 + 1e-10))).abs() < 1e-15);
/// # Ok::<(), Error>(())
/// ```
pub struct Adagrad<E: Dtype, D: Storage<E>> {
    core: Core<AdagradConfig, E, D>,
}

optimizer_api!(Adagrad, AdagradConfig);

impl UpdateRule for AdagradConfig {
    const NAME: &'static str = "Adagrad";
    const BUFFERS: &'static [&'static str] = &["sum"];
    const COUNTS_STEPS: bool = true;

    fn lr(&self) -> f64 {
        self.lr
    }

    fn set_lr(&mut self, lr: f64) {
        self.lr = lr;
    }

    fn validate(&self) -> Result<(), Error> {
        non_negative(Self::NAME, "lr", self.lr)?;
        non_negative(Self::NAME, "lr_decay", self.lr_decay)?;
        non_negative(Self::NAME, "weight_decay", self.weight_decay)?;
        non_negative(Self::NAME, "initial_accumulator_value", self.initial_accumulator_value)?;
        non_negative(Self::NAME, "eps", self.eps)
    }

    fn update<E: Dtype, D: OptimizerKernel<E>>(
        &self,
        device: &D,
        step: u64,
        param: &mut D::Vec,
        grad: &D::Vec,
        buffers: &mut [Option<D::Vec>],
    ) -> Result<(), Error> {
        let decayed_lr = self.lr / (1.0 + (step as f64 - 1.0) * self.lr_decay);
        let update = AdagradUpdate {
            lr: E::from_f64(decayed_lr),
            eps: E::from_f64(self.eps),
            weight_decay: E::from_f64(self.weight_decay),
            maximize: self.maximize,
        };
        let len = D::len(param);
        let Some(sum) = buffers.first_mut() else {
            return Ok(());
        };
        ensure_filled(device, sum, len, E::from_f64(self.initial_accumulator_value))?;
        match sum {
            Some(sum) => device.adagrad_update(&update, param, grad, sum),
            None => Ok(()),
        }
    }

    fn sparse_support(&self) -> Result<(), String> {
        match self.weight_decay {
            0.0 => Ok(()),
            decay => Err(format!(
                "weight_decay option is not compatible with sparse gradients (got {decay}), as in PyTorch"
            )),
        }
    }

    fn update_sparse<E: Dtype, D: OptimizerKernel<E>>(
        &self,
        device: &D,
        step: u64,
        param: &mut D::Vec,
        grad: &SparseGrad<E, D>,
        buffers: &mut [Option<D::Vec>],
    ) -> Result<(), Error> {
        let decayed_lr = self.lr / (1.0 + (step as f64 - 1.0) * self.lr_decay);
        let update = AdagradUpdate {
            lr: E::from_f64(decayed_lr),
            eps: E::from_f64(self.eps),
            weight_decay: E::ZERO,
            maximize: self.maximize,
        };
        let len = D::len(param);
        let Some(sum) = buffers.first_mut() else {
            return Ok(());
        };
        ensure_filled(device, sum, len, E::from_f64(self.initial_accumulator_value))?;
        let rows = SparseRows {
            indices: grad.indices(),
            values: grad.values(),
            row_len: grad.row_len(),
        };
        match sum {
            Some(sum) => device.sparse_adagrad_update(&update, param, sum, &rows),
            None => Ok(()),
        }
    }
}
