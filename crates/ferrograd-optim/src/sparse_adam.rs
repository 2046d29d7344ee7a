//! SparseAdam: Adam's moments kept lazily, for row-sparse gradients.

use crate::optimizer::{Core, UpdateRule, ensure_filled, invalid, non_negative, optimizer_api};
use ferrograd_autodiff::SparseGrad;
use ferrograd_device::ops::optimizer::{OptimizerKernel, SparseAdamUpdate, SparseRows};
use ferrograd_device::{Dtype, Error, Storage};

/// The hyperparameters of [`SparseAdam`]; `Default` is PyTorch's
/// `torch.optim.SparseAdam`'s.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SparseAdamConfig {
    /// The learning rate; 1e-3 by default.
    pub lr: f64,
    /// (β₁, β₂), each in [0, 1); (0.9, 0.999) by default.
    pub betas: (f64, f64),
    /// Added to `√v` for stability; 1e-8 by default.
    pub eps: f64,
    /// Ascend the objective instead of descending it; off by default.
    pub maximize: bool,
}

impl Default for SparseAdamConfig {
    fn default() -> Self {
        Self {
            lr: 1e-3,
            betas: (0.9, 0.999),
            eps: 1e-8,
            maximize: false,
        }
    }
}

/// PyTorch's `torch.optim.SparseAdam`, for row-sparse gradients (an `Embedding` built
/// with `sparse(true)`). At the parameter's step `t`, on the rows the gradient touched
/// and nowhere else:
///
/// ```text
/// m = m + (1 − β₁) · (g − m)            v = v + (1 − β₂) · (g² − v)
/// p = p − lr · √(1 − β₂ᵗ) / (1 − β₁ᵗ) · m / (√v + eps)
/// ```
///
/// Untouched rows keep their parameters *and* their moments: that is the point (the
/// "lazy" Adam of large embedding tables) and why it is not [`Adam`](crate::Adam)
/// given a sparse gradient, whose moments would decay on every row each step. `t`
/// counts the steps that found a gradient for the parameter, touched rows or not (the
/// global step, as in PyTorch), so bias correction does not depend on when a row was
/// last seen. Note the `eps` is added to `√v`, not to `√v̂` as in Adam.
///
/// It is a separate optimizer, as in PyTorch, rather than a mode of `Adam`: its update
/// differs even where every row is touched. A dense gradient is an
/// [`Error::InvalidArgument`] naming the parameter ("SparseAdam does not support dense
/// gradients, please consider Adam instead"). Its state per parameter: `step`,
/// `exp_avg` (m) and `exp_avg_sq` (v), dense, like PyTorch's.
///
/// ```
/// use ferrograd_cpu::Cpu;
/// use ferrograd_nn::prelude::*;
/// use ferrograd_nn::EmbeddingConfig;
/// use ferrograd_optim::{Optimizer, SparseAdam, SparseAdamConfig};
///
/// let dev = Cpu::seed_from_u64(0);
/// let mut table = dev.build_module_with::<_, f32>(EmbeddingConfig::<Const<1000>, Const<8>>::default().sparse(true));
/// let before = table.weight.as_vec();
/// let mut adam = SparseAdam::new(SparseAdamConfig { lr: 0.1, ..Default::default() })?;
/// let ids: Tensor<Rank1<3>, usize, Cpu> = dev.tensor([5, 9, 5]);
/// let grads = table.forward(ids.traced_indices(table.try_alloc_grads()?)).sum::<Rank0, _>().backward();
/// adam.step(&mut table, &grads)?;
/// let after = table.weight.as_vec();
/// // Rows 5 and 9 moved by about lr (Adam's first step), every other row is untouched.
/// let moved: Vec<usize> = (0..1000).filter(|&r| after[r * 8] != before[r * 8]).collect();
/// assert_eq!(moved, [5, 9]);
/// assert!((after[5 * 8] - (before[5 * 8] - 0.1)).abs() < 1e-5);
/// # Ok::<(), Error>(())
/// ```
pub struct SparseAdam<E: Dtype, D: Storage<E>> {
    core: Core<SparseAdamConfig, E, D>,
}

optimizer_api!(SparseAdam, SparseAdamConfig);

impl UpdateRule for SparseAdamConfig {
    const NAME: &'static str = "SparseAdam";
    const BUFFERS: &'static [&'static str] = &["exp_avg", "exp_avg_sq"];
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
        for (index, beta) in [self.betas.0, self.betas.1].into_iter().enumerate() {
            if !(0.0..1.0).contains(&beta) {
                return Err(invalid(
                    Self::NAME,
                    format!("betas.{index} must be in [0, 1), got {beta}"),
                ));
            }
        }
        Ok(())
    }

    fn dense_support(&self) -> Result<(), String> {
        Err("SparseAdam does not support dense gradients, please consider Adam instead".into())
    }

    fn sparse_support(&self) -> Result<(), String> {
        Ok(())
    }

    fn update<E: Dtype, D: OptimizerKernel<E>>(
        &self,
        _device: &D,
        _step: u64,
        _param: &mut D::Vec,
        _grad: &D::Vec,
        _buffers: &mut [Option<D::Vec>],
    ) -> Result<(), Error> {
        // The check pass refuses dense gradients before any update runs.
        Err(invalid(Self::NAME, self.dense_support().err().unwrap_or_default()))
    }

    fn update_sparse<E: Dtype, D: OptimizerKernel<E>>(
        &self,
        device: &D,
        step: u64,
        param: &mut D::Vec,
        grad: &SparseGrad<E, D>,
        buffers: &mut [Option<D::Vec>],
    ) -> Result<(), Error> {
        let len = D::len(param);
        let [exp_avg, exp_avg_sq] = buffers else {
            return Err(invalid(
                Self::NAME,
                format!("expected 2 state buffers, found {}", buffers.len()),
            ));
        };
        // PyTorch creates the moments on the first step, even one that touches no row.
        ensure_filled(device, exp_avg, len, E::ZERO)?;
        ensure_filled(device, exp_avg_sq, len, E::ZERO)?;
        let (Some(exp_avg), Some(exp_avg_sq)) = (exp_avg, exp_avg_sq) else {
            return Ok(());
        };
        if grad.is_empty() {
            return Ok(());
        }
        // The scalars in f64, as PyTorch computes them in Python floats.
        let (beta1, beta2) = self.betas;
        let step = step as f64;
        let bias_correction1 = 1.0 - beta1.powf(step);
        let bias_correction2 = 1.0 - beta2.powf(step);
        let update = SparseAdamUpdate {
            step_size: E::from_f64(self.lr * bias_correction2.sqrt() / bias_correction1),
            one_minus_beta1: E::from_f64(1.0 - beta1),
            one_minus_beta2: E::from_f64(1.0 - beta2),
            eps: E::from_f64(self.eps),
            maximize: self.maximize,
        };
        let rows = SparseRows {
            indices: grad.indices(),
            values: grad.values(),
            row_len: grad.row_len(),
        };
        device.sparse_adam_update(&update, param, exp_avg, exp_avg_sq, &rows)
    }
}
