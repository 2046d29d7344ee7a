//! Stochastic gradient descent, with momentum, dampening, Nesterov and weight decay.

use crate::optimizer::{Core, UpdateRule, invalid, non_negative, optimizer_api};
use ferrograd_autodiff::SparseGrad;
use ferrograd_device::ops::optimizer::{OptimizerKernel, SgdUpdate, SparseRows};
use ferrograd_device::{Dtype, Error, Storage};

/// The hyperparameters of [`Sgd`]; `Default` is PyTorch's `torch.optim.SGD`'s.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SgdConfig {
    /// The learning rate. 1e-3 by default, as in PyTorch 2.x (older versions required it).
    pub lr: f64,
    /// The momentum factor; 0 (the default) keeps no momentum buffer.
    pub momentum: f64,
    /// How much of each new gradient the momentum buffer leaves out; 0 by default.
    pub dampening: f64,
    /// The L2 penalty added to the gradient; 0 by default.
    pub weight_decay: f64,
    /// Nesterov momentum (needs a momentum and no dampening); off by default.
    pub nesterov: bool,
    /// Ascend the objective instead of descending it; off by default.
    pub maximize: bool,
}

impl Default for SgdConfig {
    fn default() -> Self {
        Self {
            lr: 1e-3,
            momentum: 0.0,
            dampening: 0.0,
            weight_decay: 0.0,
            nesterov: false,
            maximize: false,
        }
    }
}

/// Stochastic gradient descent, PyTorch's `torch.optim.SGD`:
///
/// ```text
/// g = grad + weight_decay · p
/// b = g on the first step, then b = momentum · b + (1 − dampening) · g
/// p = p − lr · (g + momentum · b)      with nesterov
/// p = p − lr · b                       without (p − lr · g without momentum)
/// ```
///
/// Its state per parameter is `momentum_buffer` (with a momentum only).
///
/// A row-sparse gradient (an `Embedding` built with `sparse(true)`) is taken as
/// PyTorch takes it. Without momentum, only the touched rows move, in place. With
/// momentum, PyTorch's sparse momentum buffer keeps every row it ever touched moving,
/// which is the dense update with a buffer that is zero on untouched rows: that is
/// what runs here (a dense pass and a dense gradient made for it each step), so
/// the values match PyTorch's. A weight decay with a sparse gradient is an
/// [`Error::InvalidArgument`] naming the parameter, as PyTorch raises.
///
/// ```
/// use ferrograd_autodiff::prelude::*;
/// use ferrograd_autodiff::{ParameterVisitor, ParameterVisitorMut, Prefixed};
/// use ferrograd_cpu::Cpu;
/// use ferrograd_optim::{GroupSelector, LearningRates, Optimizer, Sgd, SgdConfig};
///
/// struct Scale {
///     weight: Tensor<Rank1<2>, f32, Cpu>,
/// }
///
/// /// Two of them in sequence: `0.weight`, `1.weight`.
/// struct Model(Scale, Scale);
///
/// impl VisitParameters<f32, Cpu> for Model {
///     fn visit_parameters<V: ParameterVisitor<f32, Cpu>>(&self, visitor: &mut V) -> Result<(), Error> {
///         visitor.visit("0.weight", &self.0.weight)?;
///         visitor.visit("1.weight", &self.1.weight)
///     }
///     fn visit_parameters_mut<V: ParameterVisitorMut<f32, Cpu>>(&mut self, visitor: &mut V) -> Result<(), Error> {
///         visitor.visit_mut("0.weight", &mut self.0.weight)?;
///         visitor.visit_mut("1.weight", &mut self.1.weight)
///     }
/// }
///
/// let dev = Cpu::default();
/// let mut model = Model(Scale { weight: dev.tensor([1.0, 2.0]) }, Scale { weight: dev.tensor([1.0, 1.0]) });
/// let config = SgdConfig { lr: 0.1, momentum: 0.9, ..Default::default() };
/// let mut sgd = Sgd::new(config)?;
/// // The second layer learns ten times slower.
/// let slow = sgd.add_group(GroupSelector::prefix("1."), SgdConfig { lr: 0.01, ..config })?;
/// assert_eq!(sgd.lr(slow)?, 0.01);
///
/// let x: Tensor<Rank1<2>, f32, Cpu> = dev.tensor([1.0, -1.0]);
/// for _ in 0..3 {
///     let grads = model.try_alloc_grads()?;
///     let hidden = x.clone().traced(grads) * model.0.weight.clone();
///     let loss = (hidden * model.1.weight.clone()).sum::<Rank0, _>();
///     sgd.step(&mut model, &loss.backward())?;
/// }
/// // d loss / d 0.weight = x ⊙ 1.weight changes as 1.weight moves, slowly.
/// assert!(model.0.weight.array()[0] < 1.0);
/// # Ok::<(), Error>(())
/// ```
pub struct Sgd<E: Dtype, D: Storage<E>> {
    core: Core<SgdConfig, E, D>,
}

optimizer_api!(Sgd, SgdConfig);

impl UpdateRule for SgdConfig {
    const NAME: &'static str = "SGD";
    const BUFFERS: &'static [&'static str] = &["momentum_buffer"];
    const COUNTS_STEPS: bool = false;

    fn lr(&self) -> f64 {
        self.lr
    }

    fn set_lr(&mut self, lr: f64) {
        self.lr = lr;
    }

    fn validate(&self) -> Result<(), Error> {
        non_negative(Self::NAME, "lr", self.lr)?;
        non_negative(Self::NAME, "momentum", self.momentum)?;
        non_negative(Self::NAME, "weight_decay", self.weight_decay)?;
        if !self.dampening.is_finite() {
            return Err(invalid(
                Self::NAME,
                format!("dampening must be finite, got {}", self.dampening),
            ));
        }
        if self.nesterov && (self.momentum <= 0.0 || self.dampening != 0.0) {
            return Err(invalid(
                Self::NAME,
                format!(
                    "Nesterov momentum needs a momentum > 0 and zero dampening, got momentum {} and dampening {}",
                    self.momentum, self.dampening
                ),
            ));
        }
        Ok(())
    }

    fn update<E: Dtype, D: OptimizerKernel<E>>(
        &self,
        device: &D,
        _step: u64,
        param: &mut D::Vec,
        grad: &D::Vec,
        buffers: &mut [Option<D::Vec>],
    ) -> Result<(), Error> {
        let update = SgdUpdate {
            lr: E::from_f64(self.lr),
            momentum: E::from_f64(self.momentum),
            one_minus_dampening: E::from_f64(1.0 - self.dampening),
            weight_decay: E::from_f64(self.weight_decay),
            nesterov: self.nesterov,
            maximize: self.maximize,
        };
        if self.momentum == 0.0 {
            return device.sgd_update(&update, param, grad, None);
        }
        let slot = &mut buffers[0];
        // PyTorch's first momentum buffer is the gradient itself: the kernel writes it.
        let first = slot.is_none();
        if first {
            *slot = Some(device.try_alloc_for_overwrite(D::len(param))?);
        }
        match slot {
            Some(buffer) => device.sgd_update(&update, param, grad, Some((buffer, first))),
            None => Ok(()),
        }
    }

    fn sparse_support(&self) -> Result<(), String> {
        if self.weight_decay != 0.0 {
            // PyTorch: "add(sparse, dense) is not supported" from `grad.add(param, alpha=weight_decay)`.
            return Err(format!(
                "SGD's weight_decay ({}) cannot be added to a sparse gradient, as in PyTorch; set it to 0",
                self.weight_decay
            ));
        }
        Ok(())
    }

    fn update_sparse<E: Dtype, D: OptimizerKernel<E>>(
        &self,
        device: &D,
        step: u64,
        param: &mut D::Vec,
        grad: &SparseGrad<E, D>,
        buffers: &mut [Option<D::Vec>],
    ) -> Result<(), Error> {
        if self.momentum == 0.0 {
            let rows = SparseRows {
                indices: grad.indices(),
                values: grad.values(),
                row_len: grad.row_len(),
            };
            return device.sparse_sgd_update(E::from_f64(self.lr), self.maximize, param, &rows);
        }
        // See the type's docs: PyTorch's sparse momentum is the dense update.
        let dense = grad.try_to_dense(device)?;
        self.update(device, step, param, &dense, buffers)
    }
}
