//! What every optimizer shares: the [`Optimizer`] and [`LearningRates`] traits,
//! parameter groups, per-parameter state keyed by name, and the step that visits a
//! model's parameters.

use ferrograd_autodiff::{Gradients, ParameterVisitor, ParameterVisitorMut, SparseGrad, Tensor, VisitParameters};
use ferrograd_device::ops::optimizer::OptimizerKernel;
use ferrograd_device::{Dtype, Error, Storage};
use ferrograd_shapes::Shape;
use std::collections::BTreeMap;
use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;

/// Updates a model's parameters from their gradients.
///
/// The parameters are changed in place and keep their ids, so gradients allocated for
/// them (`model.try_alloc_grads()`) stay valid from one step to the next. State (Adam's
/// moments, a momentum buffer) is kept per parameter *name*, created on the first step
/// that updates it.
///
/// ```
/// use ferrograd_autodiff::prelude::*;
/// use ferrograd_autodiff::{ParameterVisitor, ParameterVisitorMut};
/// use ferrograd_cpu::Cpu;
/// use ferrograd_optim::{Optimizer, Sgd, SgdConfig};
///
/// /// y = w · x, one weight vector.
/// struct Line {
///     weight: Tensor<Rank1<2>, f64, Cpu>,
/// }
///
/// impl VisitParameters<f64, Cpu> for Line {
///     fn visit_parameters<V: ParameterVisitor<f64, Cpu>>(&self, visitor: &mut V) -> Result<(), Error> {
///         visitor.visit("weight", &self.weight)
///     }
///     fn visit_parameters_mut<V: ParameterVisitorMut<f64, Cpu>>(&mut self, visitor: &mut V) -> Result<(), Error> {
///         visitor.visit_mut("weight", &mut self.weight)
///     }
/// }
///
/// let dev = Cpu::default();
/// let mut model = Line { weight: dev.tensor([1.0, -1.0]) };
/// let mut optimizer = Sgd::new(SgdConfig { lr: 0.1, ..Default::default() })?;
///
/// let x: Tensor<Rank1<2>, f64, Cpu> = dev.tensor([2.0, 3.0]);
/// let grads = model.try_alloc_grads()?;
/// // loss = (w · x)², so dloss/dw = 2 (w · x) x = 2 · (-1) · (2, 3).
/// let loss = (x.traced(grads) * model.weight.clone()).sum::<Rank0, _>().square();
/// let grads = loss.backward();
/// optimizer.step(&mut model, &grads)?;
/// assert_eq!(model.weight.array(), [1.0 + 0.1 * 4.0, -1.0 + 0.1 * 6.0]);
/// # Ok::<(), Error>(())
/// ```
pub trait Optimizer<E: Dtype, D: Storage<E>>: LearningRates {
    /// Updates every parameter of `model` from its gradient in `grads`.
    ///
    /// # Errors
    /// - [`Error::MissingGradient`] naming the first parameter without a gradient,
    ///   unless [`Optimizer::set_skip_missing_gradients`] is on (then it is left alone,
    ///   as PyTorch leaves a parameter whose `.grad` is `None`);
    /// - [`Error::InvalidArgument`] for a parameter that is a non-contiguous view, or
    ///   whose gradient is row-sparse when this optimizer (or its configuration) cannot
    ///   take one, as PyTorch raises: `Sgd` and `Adagrad` take sparse gradients without
    ///   weight decay, `SparseAdam` takes only sparse ones, the others only dense ones;
    /// - [`Error::ShapeMismatch`] when loaded state does not fit its parameter.
    ///
    /// All of these are found before anything is written: on error the model and the
    /// state are unchanged.
    fn step<M: VisitParameters<E, D>>(&mut self, model: &mut M, grads: &Gradients<E, D>) -> Result<(), Error>;

    /// Whether [`Optimizer::step`] skips parameters without a gradient (frozen ones)
    /// instead of returning [`Error::MissingGradient`]. Off by default: a gradient
    /// that silently never arrives is a common bug. Note that gradients allocated with
    /// `try_alloc_grads` exist (as zeros) even for parameters the loss does not use.
    fn set_skip_missing_gradients(&mut self, skip: bool);

    /// Calls `visitor` with every piece of state, named like PyTorch's
    /// `optimizer.state_dict()["state"]` entries but keyed by parameter name:
    /// `state.<parameter>.step` and `state.<parameter>.<buffer>` (`exp_avg`,
    /// `momentum_buffer`, …), parameters in name order. What a checkpoint saves.
    fn visit_state<V: StateVisitor<E, D>>(&self, visitor: &mut V) -> Result<(), Error>;

    /// Restores one buffer saved by [`Optimizer::visit_state`] (`state.<parameter>.<buffer>`),
    /// row-major in `dims`. It is checked against its parameter at the next step.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for a name this optimizer does not keep;
    /// [`Error::ShapeMismatch`] when `buffer` does not hold `dims`' element count.
    fn load_state_buffer(&mut self, name: &str, dims: &[usize], buffer: D::Vec) -> Result<(), Error>;

    /// Restores a step count saved by [`Optimizer::visit_state`] (`state.<parameter>.step`).
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] when this optimizer keeps no step count or the name is
    /// not of that form.
    fn load_state_step(&mut self, name: &str, step: u64) -> Result<(), Error>;
}

/// Receives an optimizer's state ([`Optimizer::visit_state`]).
pub trait StateVisitor<E: Dtype, D: Storage<E>> {
    /// A state buffer, row-major in `dims` (its parameter's dims).
    fn visit_buffer(&mut self, name: &str, dims: &[usize], buffer: &D::Vec) -> Result<(), Error>;
    /// A step count (PyTorch keeps it as a 0-d float tensor).
    fn visit_step(&mut self, name: &str, step: u64) -> Result<(), Error>;
}

/// The learning rate of each parameter group: what LR schedules drive. Every
/// optimizer implements it; it is object safe, so a schedule takes
/// `&mut dyn LearningRates`.
pub trait LearningRates {
    /// The number of parameter groups (the default group is group 0).
    fn num_groups(&self) -> usize;
    /// The learning rate of `group`.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] when there is no such group.
    fn lr(&self, group: usize) -> Result<f64, Error>;
    /// Sets the learning rate of `group`.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] when there is no such group or `lr` is negative or NaN.
    fn set_lr(&mut self, group: usize, lr: f64) -> Result<(), Error>;
    /// The rate the first schedule attached to this optimizer found in `group`
    /// (PyTorch's `group["initial_lr"]`), `None` before any.
    fn initial_lr(&self, group: usize) -> Result<Option<f64>, Error>;
    /// Records `group`'s initial rate (what a schedule does when it is created).
    fn set_initial_lr(&mut self, group: usize, lr: f64) -> Result<(), Error>;
}

/// Which parameters a parameter group holds, by name.
#[derive(Clone)]
pub enum GroupSelector {
    /// Names that start with this string: `"0."` for the first sub-module of a
    /// sequential model (`"0"` would also take `"01.weight"`).
    Prefix(String),
    /// Names for which the function returns true (`|name| name.ends_with("bias")`).
    Predicate(Arc<dyn Fn(&str) -> bool + Send + Sync>),
}

impl GroupSelector {
    /// Selects the names that start with `prefix`.
    pub fn prefix(prefix: impl Into<String>) -> Self {
        GroupSelector::Prefix(prefix.into())
    }

    /// Selects the names for which `predicate` is true.
    pub fn predicate(predicate: impl Fn(&str) -> bool + Send + Sync + 'static) -> Self {
        GroupSelector::Predicate(Arc::new(predicate))
    }

    /// Whether the parameter called `name` belongs to the group.
    pub fn matches(&self, name: &str) -> bool {
        match self {
            GroupSelector::Prefix(prefix) => name.starts_with(prefix.as_str()),
            GroupSelector::Predicate(predicate) => predicate(name),
        }
    }
}

impl fmt::Debug for GroupSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GroupSelector::Prefix(prefix) => f.debug_tuple("Prefix").field(prefix).finish(),
            GroupSelector::Predicate(_) => f.write_str("Predicate(..)"),
        }
    }
}

/// The part of an optimizer its config decides: how to validate the config and how
/// to update one parameter.
pub(crate) trait UpdateRule: Clone + fmt::Debug {
    /// For errors: `"Adam"`.
    const NAME: &'static str;
    /// The names of the state buffers it may keep, as PyTorch names them.
    const BUFFERS: &'static [&'static str];
    /// Whether it counts steps per parameter (PyTorch's `state["step"]`).
    const COUNTS_STEPS: bool;

    fn lr(&self) -> f64;
    fn set_lr(&mut self, lr: f64);
    /// `Err(InvalidArgument)` naming the first hyperparameter out of range.
    fn validate(&self) -> Result<(), Error>;

    /// One update of `param` (of `len` elements) at `step` (1 on the first, counted
    /// with this one). `buffers` follows [`UpdateRule::BUFFERS`]; the rule allocates
    /// the ones it needs and finds missing.
    fn update<E: Dtype, D: OptimizerKernel<E>>(
        &self,
        device: &D,
        step: u64,
        param: &mut D::Vec,
        grad: &D::Vec,
        buffers: &mut [Option<D::Vec>],
    ) -> Result<(), Error>;

    /// Whether a dense gradient is accepted: `Err` with the reason (PyTorch's words)
    /// when not. Checked before any update.
    fn dense_support(&self) -> Result<(), String> {
        Ok(())
    }

    /// Whether a row-sparse gradient is accepted with this configuration: `Err` with
    /// the reason (PyTorch's words) when not. Checked before any update; only rules
    /// that accept one override [`UpdateRule::update_sparse`].
    fn sparse_support(&self) -> Result<(), String> {
        Err(format!("{} does not support sparse gradients", Self::NAME))
    }

    /// [`UpdateRule::update`] for a row-sparse gradient, which
    /// [`UpdateRule::sparse_support`] accepted.
    fn update_sparse<E: Dtype, D: OptimizerKernel<E>>(
        &self,
        device: &D,
        step: u64,
        param: &mut D::Vec,
        grad: &SparseGrad<E, D>,
        buffers: &mut [Option<D::Vec>],
    ) -> Result<(), Error> {
        let _ = (device, step, param, grad, buffers);
        Err(invalid(
            Self::NAME,
            self.sparse_support()
                .err()
                .unwrap_or_else(|| format!("{} has no sparse update", Self::NAME)),
        ))
    }
}

/// An error for a hyperparameter outside its range.
pub(crate) fn invalid(op: &'static str, message: String) -> Error {
    Error::InvalidArgument { op, message }
}

/// `Err` unless `value` is finite and at least 0.
pub(crate) fn non_negative(op: &'static str, name: &str, value: f64) -> Result<(), Error> {
    if value >= 0.0 && value.is_finite() {
        Ok(())
    } else {
        Err(invalid(op, format!("{name} must be a finite number >= 0, got {value}")))
    }
}

/// A parameter group: which names, which hyperparameters.
#[derive(Clone, Debug)]
struct Group<C> {
    /// `None` for the default group, which takes every parameter no other group does.
    selector: Option<GroupSelector>,
    config: C,
    initial_lr: Option<f64>,
}

/// One parameter's state.
#[derive(Clone, Debug)]
struct ParameterState<V> {
    step: u64,
    /// The parameter's dims, to export the buffers with and to check loaded ones.
    dims: Vec<usize>,
    /// Like [`UpdateRule::BUFFERS`].
    buffers: Vec<Option<V>>,
}

/// What every optimizer is made of: its groups and its state.
pub(crate) struct Core<C, E: Dtype, D: Storage<E>> {
    groups: Vec<Group<C>>,
    state: BTreeMap<String, ParameterState<D::Vec>>,
    skip_missing: bool,
    _dtype: PhantomData<E>,
}

impl<C: UpdateRule, E: Dtype, D: Storage<E>> Core<C, E, D> {
    pub(crate) fn new(config: C) -> Result<Self, Error> {
        config.validate()?;
        Ok(Self {
            groups: vec![Group {
                selector: None,
                config,
                initial_lr: None,
            }],
            state: BTreeMap::new(),
            skip_missing: false,
            _dtype: PhantomData,
        })
    }

    pub(crate) fn add_group(&mut self, selector: GroupSelector, config: C) -> Result<usize, Error> {
        config.validate()?;
        self.groups.push(Group {
            selector: Some(selector),
            config,
            initial_lr: None,
        });
        Ok(self.groups.len() - 1)
    }

    fn group(&self, group: usize) -> Result<&Group<C>, Error> {
        let count = self.groups.len();
        self.groups.get(group).ok_or_else(|| {
            invalid(
                C::NAME,
                format!("no parameter group {group}: there are {count} (0 is the default group)"),
            )
        })
    }

    fn group_mut(&mut self, group: usize) -> Result<&mut Group<C>, Error> {
        self.group(group)?;
        Ok(&mut self.groups[group])
    }

    pub(crate) fn config(&self, group: usize) -> Result<&C, Error> {
        Ok(&self.group(group)?.config)
    }

    pub(crate) fn set_config(&mut self, group: usize, config: C) -> Result<(), Error> {
        config.validate()?;
        self.group_mut(group)?.config = config;
        Ok(())
    }

    /// The config of the group `name` belongs to: the first added group that selects
    /// it, else the default group.
    fn config_for(&self, name: &str) -> &C {
        self.groups[1..]
            .iter()
            .find(|g| g.selector.as_ref().is_some_and(|s| s.matches(name)))
            .map_or(&self.groups[0].config, |g| &g.config)
    }

    pub(crate) fn set_skip_missing(&mut self, skip: bool) {
        self.skip_missing = skip;
    }

    pub(crate) fn step<M: VisitParameters<E, D>>(&mut self, model: &mut M, grads: &Gradients<E, D>) -> Result<(), Error>
    where
        D: OptimizerKernel<E>,
    {
        model.visit_parameters(&mut Check { core: self, grads })?;
        model.visit_parameters_mut(&mut Update { core: self, grads })
    }

    pub(crate) fn visit_state<V: StateVisitor<E, D>>(&self, visitor: &mut V) -> Result<(), Error> {
        let mut name = String::new();
        for (parameter, state) in &self.state {
            if C::COUNTS_STEPS {
                name.clear();
                name.push_str("state.");
                name.push_str(parameter);
                name.push_str(".step");
                visitor.visit_step(&name, state.step)?;
            }
            for (key, buffer) in C::BUFFERS.iter().zip(&state.buffers) {
                if let Some(buffer) = buffer {
                    name.clear();
                    name.push_str("state.");
                    name.push_str(parameter);
                    name.push('.');
                    name.push_str(key);
                    visitor.visit_buffer(&name, &state.dims, buffer)?;
                }
            }
        }
        Ok(())
    }

    /// Splits `state.<parameter>.<key>`; the parameter's name may hold dots.
    fn split_state_name(name: &str) -> Result<(&str, &str), Error> {
        name.strip_prefix("state.")
            .and_then(|rest| rest.rsplit_once('.'))
            .filter(|(parameter, key)| !parameter.is_empty() && !key.is_empty())
            .ok_or_else(|| {
                invalid(
                    C::NAME,
                    format!("state entry `{name}`: expected a name of the form `state.<parameter>.<buffer>`"),
                )
            })
    }

    fn entry(&mut self, parameter: &str, dims: &[usize]) -> &mut ParameterState<D::Vec> {
        self.state
            .entry(parameter.to_string())
            .or_insert_with(|| ParameterState {
                step: 0,
                dims: dims.to_vec(),
                buffers: vec![None; C::BUFFERS.len()],
            })
    }

    pub(crate) fn load_state_buffer(&mut self, name: &str, dims: &[usize], buffer: D::Vec) -> Result<(), Error> {
        let (parameter, key) = Self::split_state_name(name)?;
        let Some(index) = C::BUFFERS.iter().position(|b| *b == key) else {
            return Err(invalid(
                C::NAME,
                format!(
                    "state entry `{name}`: {} keeps no buffer `{key}` (it keeps {})",
                    C::NAME,
                    C::BUFFERS.join(", ")
                ),
            ));
        };
        let expected: usize = dims.iter().product();
        if D::len(&buffer) != expected {
            return Err(Error::ShapeMismatch {
                op: "load_state",
                message: format!(
                    "state entry `{name}`: a buffer of {} elements cannot hold dims {dims:?}",
                    D::len(&buffer)
                ),
            });
        }
        let state = self.entry(parameter, dims);
        if state.buffers.iter().all(Option::is_none) {
            // The first buffer of this parameter (a step count alone has no dims).
            state.dims.clear();
            state.dims.extend_from_slice(dims);
        } else if state.dims != dims {
            return Err(Error::ShapeMismatch {
                op: "load_state",
                message: format!(
                    "state entry `{name}` has dims {dims:?}, another entry of `{parameter}` has {:?}",
                    state.dims
                ),
            });
        }
        state.buffers[index] = Some(buffer);
        Ok(())
    }

    pub(crate) fn load_state_step(&mut self, name: &str, step: u64) -> Result<(), Error> {
        let (parameter, key) = Self::split_state_name(name)?;
        if key != "step" || !C::COUNTS_STEPS {
            return Err(invalid(
                C::NAME,
                format!("state entry `{name}`: {} keeps no step count there", C::NAME),
            ));
        }
        // The dims come with the buffers; a step alone is checked at the next update.
        let state = self.entry(parameter, &[]);
        state.step = step;
        Ok(())
    }
}

impl<C: UpdateRule, E: Dtype, D: Storage<E>> LearningRates for Core<C, E, D> {
    fn num_groups(&self) -> usize {
        self.groups.len()
    }

    fn lr(&self, group: usize) -> Result<f64, Error> {
        Ok(self.group(group)?.config.lr())
    }

    fn set_lr(&mut self, group: usize, lr: f64) -> Result<(), Error> {
        non_negative(C::NAME, "lr", lr)?;
        self.group_mut(group)?.config.set_lr(lr);
        Ok(())
    }

    fn initial_lr(&self, group: usize) -> Result<Option<f64>, Error> {
        Ok(self.group(group)?.initial_lr)
    }

    fn set_initial_lr(&mut self, group: usize, lr: f64) -> Result<(), Error> {
        non_negative(C::NAME, "initial lr", lr)?;
        self.group_mut(group)?.initial_lr = Some(lr);
        Ok(())
    }
}

/// Whether a parameter can be updated in place element by element: its buffer must be
/// exactly its elements, in order.
pub(crate) fn check_parameter<S: Shape, E: Dtype, D: Storage<E>>(
    op: &'static str,
    name: &str,
    parameter: &Tensor<S, E, D>,
) -> Result<(), Error> {
    if !parameter.layout().is_contiguous() || D::len(parameter.storage()) != parameter.num_elements() {
        return Err(invalid(
            op,
            format!(
                "parameter `{name}` is a view (strides {:?}, offset {}) of a buffer of {} elements; \
                 an optimizer updates contiguous parameters only: store it contiguous",
                parameter.strides(),
                parameter.layout().offset(),
                D::len(parameter.storage())
            ),
        ));
    }
    Ok(())
}

/// The read-only pass before an update: finds every error the update could meet.
struct Check<'a, C, E: Dtype, D: Storage<E>> {
    core: &'a Core<C, E, D>,
    grads: &'a Gradients<E, D>,
}

impl<C: UpdateRule, E: Dtype, D: Storage<E>> Check<'_, C, E, D> {
    /// The checks of a row-sparse gradient: accepted by the rule, of the parameter's
    /// table.
    fn sparse<S: Shape>(&self, name: &str, parameter: &Tensor<S, E, D>, grad: &SparseGrad<E, D>) -> Result<(), Error> {
        check_parameter(C::NAME, name, parameter)?;
        self.core
            .config_for(name)
            .sparse_support()
            .map_err(|why| invalid(C::NAME, format!("parameter `{name}` has a sparse gradient: {why}")))?;
        let dims = parameter.layout().dims();
        if dims.first() != Some(&grad.num_rows()) || grad.num_rows() * grad.row_len() != parameter.num_elements() {
            return Err(Error::ShapeMismatch {
                op: C::NAME,
                message: format!(
                    "the sparse gradient of `{name}` is of a {} × {} table, the parameter has dims {dims:?}",
                    grad.num_rows(),
                    grad.row_len()
                ),
            });
        }
        Ok(())
    }
}

impl<C: UpdateRule, E: Dtype, D: Storage<E>> ParameterVisitor<E, D> for Check<'_, C, E, D> {
    fn visit<S: Shape>(&mut self, name: &str, parameter: &Tensor<S, E, D>) -> Result<(), Error> {
        if let Some(grad) = self.grads.sparse_grad(parameter) {
            self.sparse(name, parameter, grad)?;
            return self.state_fits(name, parameter);
        }
        let Ok(grad) = self.grads.try_grad(parameter) else {
            if self.core.skip_missing {
                return Ok(());
            }
            return Err(Error::MissingGradient {
                tensor: format!("parameter `{name}`"),
            });
        };
        check_parameter(C::NAME, name, parameter)?;
        self.core
            .config_for(name)
            .dense_support()
            .map_err(|why| invalid(C::NAME, format!("parameter `{name}` has a dense gradient: {why}")))?;
        if D::len(grad) != parameter.num_elements() {
            return Err(Error::ShapeMismatch {
                op: C::NAME,
                message: format!(
                    "the gradient of `{name}` has {} elements, the parameter {}",
                    D::len(grad),
                    parameter.num_elements()
                ),
            });
        }
        self.state_fits(name, parameter)
    }
}

impl<C: UpdateRule, E: Dtype, D: Storage<E>> Check<'_, C, E, D> {
    /// Loaded state must have its parameter's dims.
    fn state_fits<S: Shape>(&self, name: &str, parameter: &Tensor<S, E, D>) -> Result<(), Error> {
        if let Some(state) = self.core.state.get(name) {
            let dims = parameter.layout().dims();
            let has_buffers = state.buffers.iter().any(Option::is_some);
            if has_buffers && state.dims != dims {
                return Err(Error::ShapeMismatch {
                    op: C::NAME,
                    message: format!(
                        "the state of `{name}` has dims {:?}, the parameter {dims:?}",
                        state.dims
                    ),
                });
            }
        }
        Ok(())
    }
}

/// The update pass.
struct Update<'a, C, E: Dtype, D: Storage<E>> {
    core: &'a mut Core<C, E, D>,
    grads: &'a Gradients<E, D>,
}

impl<C: UpdateRule, E: Dtype, D: OptimizerKernel<E>> ParameterVisitorMut<E, D> for Update<'_, C, E, D> {
    fn visit_mut<S: Shape>(&mut self, name: &str, parameter: &mut Tensor<S, E, D>) -> Result<(), Error> {
        let sparse = self.grads.sparse_grad(parameter);
        // The check pass found every missing gradient; one here is skipped.
        let dense = self.grads.try_grad(parameter).ok();
        if sparse.is_none() && dense.is_none() {
            return Ok(());
        }
        let config = self.core.config_for(name).clone();
        let device = parameter.device().clone();
        if !self.core.state.contains_key(name) {
            self.core.entry(name, parameter.layout().dims());
        }
        let Some(state) = self.core.state.get_mut(name) else {
            return Ok(());
        };
        if !state.buffers.iter().any(Option::is_some) {
            // A step count loaded alone came without dims.
            state.dims.clear();
            state.dims.extend_from_slice(parameter.layout().dims());
        }
        state.step += 1;
        match (sparse, dense) {
            (Some(grad), _) => {
                config.update_sparse(&device, state.step, parameter.storage_mut(), grad, &mut state.buffers)
            }
            (None, Some(grad)) => config.update(&device, state.step, parameter.storage_mut(), grad, &mut state.buffers),
            (None, None) => Ok(()),
        }
    }
}

/// A buffer of `len` copies of `value`, unless `slot` holds one already.
pub(crate) fn ensure_filled<E: Dtype, D: Storage<E>>(
    device: &D,
    slot: &mut Option<D::Vec>,
    len: usize,
    value: E,
) -> Result<(), Error> {
    if slot.is_none() {
        *slot = Some(device.try_alloc_filled(len, value)?);
    }
    Ok(())
}

/// Implements the public face of an optimizer (constructor, groups, [`Optimizer`],
/// [`LearningRates`]) over its [`Core`].
macro_rules! optimizer_api {
    ($optimizer:ident, $config:ident) => {
        impl<E: ferrograd_device::Dtype, D: ferrograd_device::Storage<E>> $optimizer<E, D> {
            /// An optimizer whose default group (group 0) has `config`; every parameter
            /// belongs to it unless a group added later selects it.
            ///
            /// # Errors
            /// [`Error::InvalidArgument`](ferrograd_device::Error::InvalidArgument)
            /// naming the first hyperparameter out of PyTorch's accepted range.
            pub fn new(config: $config) -> Result<Self, ferrograd_device::Error> {
                Ok(Self {
                    core: $crate::optimizer::Core::new(config)?,
                })
            }

            /// Adds a parameter group: the parameters `selector` picks get `config`
            /// (the first matching group, in the order added, wins). Returns its index,
            /// for [`LearningRates::set_lr`](crate::LearningRates::set_lr).
            ///
            /// # Errors
            /// As [`Self::new`], for `config`.
            pub fn add_group(
                &mut self,
                selector: $crate::GroupSelector,
                config: $config,
            ) -> Result<usize, ferrograd_device::Error> {
                self.core.add_group(selector, config)
            }

            /// The hyperparameters of `group`.
            ///
            /// # Errors
            /// `InvalidArgument` when there is no such group.
            pub fn config(&self, group: usize) -> Result<&$config, ferrograd_device::Error> {
                self.core.config(group)
            }

            /// Replaces the hyperparameters of `group` (the state is kept).
            ///
            /// # Errors
            /// `InvalidArgument` when there is no such group or `config` is out of range.
            pub fn set_config(&mut self, group: usize, config: $config) -> Result<(), ferrograd_device::Error> {
                self.core.set_config(group, config)
            }
        }

        impl<E: ferrograd_device::Dtype, D: ferrograd_device::Storage<E>> std::fmt::Debug for $optimizer<E, D> {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_struct(stringify!($optimizer))
                    .field("default_config", &self.core.config(0).ok())
                    .field("groups", &$crate::LearningRates::num_groups(&self.core))
                    .finish()
            }
        }

        impl<E: ferrograd_device::Dtype, D: ferrograd_device::Storage<E>> $crate::LearningRates for $optimizer<E, D> {
            fn num_groups(&self) -> usize {
                self.core.num_groups()
            }
            fn lr(&self, group: usize) -> Result<f64, ferrograd_device::Error> {
                self.core.lr(group)
            }
            fn set_lr(&mut self, group: usize, lr: f64) -> Result<(), ferrograd_device::Error> {
                self.core.set_lr(group, lr)
            }
            fn initial_lr(&self, group: usize) -> Result<Option<f64>, ferrograd_device::Error> {
                self.core.initial_lr(group)
            }
            fn set_initial_lr(&mut self, group: usize, lr: f64) -> Result<(), ferrograd_device::Error> {
                self.core.set_initial_lr(group, lr)
            }
        }

        impl<E, D> $crate::Optimizer<E, D> for $optimizer<E, D>
        where
            E: ferrograd_device::Dtype,
            D: ferrograd_device::ops::optimizer::OptimizerKernel<E>,
        {
            fn step<M: ferrograd_autodiff::VisitParameters<E, D>>(
                &mut self,
                model: &mut M,
                grads: &ferrograd_autodiff::Gradients<E, D>,
            ) -> Result<(), ferrograd_device::Error> {
                self.core.step(model, grads)
            }
            fn set_skip_missing_gradients(&mut self, skip: bool) {
                self.core.set_skip_missing(skip)
            }
            fn visit_state<V: $crate::StateVisitor<E, D>>(
                &self,
                visitor: &mut V,
            ) -> Result<(), ferrograd_device::Error> {
                self.core.visit_state(visitor)
            }
            fn load_state_buffer(
                &mut self,
                name: &str,
                dims: &[usize],
                buffer: D::Vec,
            ) -> Result<(), ferrograd_device::Error> {
                self.core.load_state_buffer(name, dims, buffer)
            }
            fn load_state_step(&mut self, name: &str, step: u64) -> Result<(), ferrograd_device::Error> {
                self.core.load_state_step(name, step)
            }
        }
    };
}
pub(crate) use optimizer_api;
