//! Learning-rate schedules: PyTorch's `torch.optim.lr_scheduler` classes, giving the
//! same rates step by step.
//!
//! A schedule is created on an optimizer (anything with [`LearningRates`]) and, like
//! PyTorch's, sets the rates of step 0 right away; each [`LrScheduler::step`], called
//! after the optimizer's step, sets the next ones. The rates follow PyTorch's
//! *recursive* forms (each step scales the group's current rate), so that several
//! schedules on one optimizer compose as in PyTorch ([`ChainedScheduler`]), and
//! [`SequentialLr`] switches between schedules at milestones.
//!
//! Like PyTorch, the first schedule created on an optimizer records each group's rate
//! as its initial rate ([`LearningRates::set_initial_lr`]); later schedules on the same
//! optimizer start from that recorded rate.
//!
//! ```
//! use ferrograd_cpu::Cpu;
//! use ferrograd_optim::schedule::{CosineAnnealingLr, LinearLr, LrScheduler, SequentialLr};
//! use ferrograd_optim::{LearningRates, Sgd, SgdConfig};
//!
//! let mut sgd = Sgd::<f32, Cpu>::new(SgdConfig { lr: 0.1, ..Default::default() })?;
//! // Five steps of linear warm-up from 0.01, then cosine annealing over 10.
//! let warm_up = LinearLr::new(&mut sgd, 0.1, 1.0, 5)?;
//! let cosine = CosineAnnealingLr::new(&mut sgd, 10, 0.0)?;
//! let mut schedule = SequentialLr::new(&mut sgd, vec![Box::new(warm_up), Box::new(cosine)], vec![5])?;
//! assert!((sgd.lr(0)? - 0.01).abs() < 1e-12);
//! for _ in 0..5 {
//!     // … the optimizer's step …
//!     schedule.step(&mut sgd)?;
//! }
//! assert!((sgd.lr(0)? - 0.1).abs() < 1e-12);
//! # Ok::<(), ferrograd_device::Error>(())
//! ```

use crate::optimizer::{LearningRates, invalid, non_negative};
use ferrograd_device::Error;
use std::f64::consts::PI;

/// A learning-rate schedule (PyTorch's `LRScheduler`).
pub trait LrScheduler {
    /// Advances one step and sets every group's learning rate. Call it after the
    /// optimizer's step.
    fn step(&mut self, optimizer: &mut dyn LearningRates) -> Result<(), Error>;

    /// The rates the last step (or the creation) set, one per group: PyTorch's
    /// `get_last_lr()`.
    fn last_lr(&self) -> &[f64];

    /// The number of steps taken since the rates of step 0 were set (PyTorch's
    /// `last_epoch`).
    fn last_epoch(&self) -> i64;

    /// Sets the rates of step 0 again from the groups' current rates (PyTorch's
    /// `_initial_step`): what [`SequentialLr`] does to its first schedule.
    fn restart(&mut self, optimizer: &mut dyn LearningRates) -> Result<(), Error>;

    /// Moves the step count one back without changing any rate (PyTorch's
    /// `SequentialLR.recursive_undo`, which takes back the step each schedule took
    /// when it was created).
    fn rewind(&mut self);

    /// Jumps to step `epoch` and sets the rates of the closed form there (PyTorch's
    /// `_update_lr(epoch)`): what [`SequentialLr`] does at a milestone.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for schedules without a closed form (the chaining ones).
    fn jump_to(&mut self, epoch: i64, optimizer: &mut dyn LearningRates) -> Result<(), Error>;
}

/// What every simple schedule tracks.
#[derive(Clone, Debug)]
struct Progress {
    /// Each group's initial rate.
    base_lrs: Vec<f64>,
    last_epoch: i64,
    last_lr: Vec<f64>,
}

impl Progress {
    /// PyTorch's `LRScheduler.__init__` up to the initial step: records each group's
    /// initial rate unless a schedule did before.
    fn attach(optimizer: &mut dyn LearningRates) -> Result<Self, Error> {
        let mut base_lrs = Vec::with_capacity(optimizer.num_groups());
        for group in 0..optimizer.num_groups() {
            let initial = match optimizer.initial_lr(group)? {
                Some(lr) => lr,
                None => {
                    let lr = optimizer.lr(group)?;
                    optimizer.set_initial_lr(group, lr)?;
                    lr
                }
            };
            base_lrs.push(initial);
        }
        Ok(Self {
            base_lrs,
            last_epoch: -1,
            last_lr: Vec::new(),
        })
    }
}

/// The two ways a simple schedule computes a group's rate.
trait Formula {
    /// PyTorch's `get_lr()`: from the group's current rate `lr`; `initial` during the
    /// step that creation takes.
    fn recursive(&self, progress: &Progress, group: usize, lr: f64, initial: bool) -> Result<f64, Error>;
    /// PyTorch's `_get_closed_form_lr()`: from the group's initial rate.
    fn closed_form(&self, progress: &Progress, group: usize) -> Result<f64, Error>;
}

/// PyTorch's `_update_lr`: a recursive step (`epoch` `None`) or a jump.
fn update<F: Formula>(
    formula: &F,
    progress: &mut Progress,
    optimizer: &mut dyn LearningRates,
    epoch: Option<i64>,
    initial: bool,
) -> Result<(), Error> {
    let groups = optimizer.num_groups();
    if groups != progress.base_lrs.len() {
        return Err(invalid(
            "lr_scheduler",
            format!(
                "the schedule was created for {} parameter groups, the optimizer has {groups}",
                progress.base_lrs.len()
            ),
        ));
    }
    progress.last_epoch = epoch.unwrap_or(progress.last_epoch + 1);
    let mut values = Vec::with_capacity(groups);
    for group in 0..groups {
        values.push(match epoch {
            None => formula.recursive(progress, group, optimizer.lr(group)?, initial)?,
            Some(_) => formula.closed_form(progress, group)?,
        });
    }
    for (group, &lr) in values.iter().enumerate() {
        optimizer.set_lr(group, lr)?;
    }
    progress.last_lr = values;
    Ok(())
}

/// Implements [`LrScheduler`] for a simple schedule (a `progress` field and a
/// [`Formula`]), and its creation's initial step.
macro_rules! simple_scheduler {
    ($schedule:ident) => {
        impl $schedule {
            fn initial_step(mut self, optimizer: &mut dyn LearningRates) -> Result<Self, Error> {
                self.restart(optimizer)?;
                Ok(self)
            }
        }

        impl LrScheduler for $schedule {
            fn step(&mut self, optimizer: &mut dyn LearningRates) -> Result<(), Error> {
                // The formula reads the progress that `update` advances: work on a
                // copy (a few numbers), then keep it.
                let mut progress = self.progress.clone();
                update(&*self, &mut progress, optimizer, None, false)?;
                self.progress = progress;
                Ok(())
            }

            fn last_lr(&self) -> &[f64] {
                &self.progress.last_lr
            }

            fn last_epoch(&self) -> i64 {
                self.progress.last_epoch
            }

            fn restart(&mut self, optimizer: &mut dyn LearningRates) -> Result<(), Error> {
                let mut progress = self.progress.clone();
                progress.last_epoch = -1;
                update(&*self, &mut progress, optimizer, None, true)?;
                self.progress = progress;
                Ok(())
            }

            fn rewind(&mut self) {
                self.progress.last_epoch -= 1;
            }

            fn jump_to(&mut self, epoch: i64, optimizer: &mut dyn LearningRates) -> Result<(), Error> {
                let mut progress = self.progress.clone();
                update(&*self, &mut progress, optimizer, Some(epoch), false)?;
                self.progress = progress;
                Ok(())
            }
        }
    };
}

/// `Err` unless `value` is at least 1.
fn positive_count(op: &'static str, name: &str, value: usize) -> Result<(), Error> {
    if value == 0 {
        return Err(invalid(op, format!("{name} must be at least 1, got 0")));
    }
    Ok(())
}

/// `gamma` raised to a count, as Python's `float ** int` computes it.
fn power(gamma: f64, count: i64) -> f64 {
    gamma.powf(count as f64)
}

/// Multiplies the rates by `gamma` every `step_size` steps (PyTorch's `StepLR`).
#[derive(Clone, Debug)]
pub struct StepLr {
    progress: Progress,
    step_size: usize,
    gamma: f64,
}

impl StepLr {
    /// PyTorch's `StepLR(optimizer, step_size, gamma)` (its default gamma is 0.1).
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] when `step_size` is 0 or `gamma` negative.
    pub fn new(optimizer: &mut dyn LearningRates, step_size: usize, gamma: f64) -> Result<Self, Error> {
        positive_count("StepLR", "step_size", step_size)?;
        non_negative("StepLR", "gamma", gamma)?;
        Self {
            progress: Progress::attach(optimizer)?,
            step_size,
            gamma,
        }
        .initial_step(optimizer)
    }
}

impl Formula for StepLr {
    fn recursive(&self, progress: &Progress, _: usize, lr: f64, _: bool) -> Result<f64, Error> {
        let epoch = progress.last_epoch;
        Ok(if epoch == 0 || epoch % self.step_size as i64 != 0 {
            lr
        } else {
            lr * self.gamma
        })
    }

    fn closed_form(&self, progress: &Progress, group: usize) -> Result<f64, Error> {
        let steps = progress.last_epoch.div_euclid(self.step_size as i64);
        Ok(progress.base_lrs[group] * power(self.gamma, steps))
    }
}

simple_scheduler!(StepLr);

/// Multiplies the rates by `gamma` at each milestone (PyTorch's `MultiStepLR`); a
/// milestone listed twice multiplies by `gamma²`.
#[derive(Clone, Debug)]
pub struct MultiStepLr {
    progress: Progress,
    /// Sorted, repeats kept.
    milestones: Vec<usize>,
    gamma: f64,
}

impl MultiStepLr {
    /// PyTorch's `MultiStepLR(optimizer, milestones, gamma)` (its default gamma is 0.1).
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] when `gamma` is negative.
    pub fn new(optimizer: &mut dyn LearningRates, milestones: &[usize], gamma: f64) -> Result<Self, Error> {
        non_negative("MultiStepLR", "gamma", gamma)?;
        let mut milestones = milestones.to_vec();
        milestones.sort_unstable();
        Self {
            progress: Progress::attach(optimizer)?,
            milestones,
            gamma,
        }
        .initial_step(optimizer)
    }

    /// How many milestones are at most `epoch` (Python's `bisect_right`).
    fn passed(&self, epoch: i64) -> i64 {
        self.milestones.iter().filter(|&&m| m as i64 <= epoch).count() as i64
    }
}

impl Formula for MultiStepLr {
    fn recursive(&self, progress: &Progress, _: usize, lr: f64, _: bool) -> Result<f64, Error> {
        let epoch = progress.last_epoch;
        let count = self.milestones.iter().filter(|&&m| m as i64 == epoch).count() as i64;
        Ok(if count == 0 { lr } else { lr * power(self.gamma, count) })
    }

    fn closed_form(&self, progress: &Progress, group: usize) -> Result<f64, Error> {
        Ok(progress.base_lrs[group] * power(self.gamma, self.passed(progress.last_epoch)))
    }
}

simple_scheduler!(MultiStepLr);

/// Multiplies the rates by `gamma` every step (PyTorch's `ExponentialLR`).
#[derive(Clone, Debug)]
pub struct ExponentialLr {
    progress: Progress,
    gamma: f64,
}

impl ExponentialLr {
    /// PyTorch's `ExponentialLR(optimizer, gamma)`.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] when `gamma` is negative.
    pub fn new(optimizer: &mut dyn LearningRates, gamma: f64) -> Result<Self, Error> {
        non_negative("ExponentialLR", "gamma", gamma)?;
        Self {
            progress: Progress::attach(optimizer)?,
            gamma,
        }
        .initial_step(optimizer)
    }
}

impl Formula for ExponentialLr {
    fn recursive(&self, _: &Progress, _: usize, lr: f64, initial: bool) -> Result<f64, Error> {
        Ok(if initial { lr } else { lr * self.gamma })
    }

    fn closed_form(&self, progress: &Progress, group: usize) -> Result<f64, Error> {
        Ok(progress.base_lrs[group] * power(self.gamma, progress.last_epoch))
    }
}

simple_scheduler!(ExponentialLr);

/// Anneals the rates from their initial values to `eta_min` along a half cosine over
/// `t_max` steps, then back up over the next `t_max`, and so on (PyTorch's
/// `CosineAnnealingLR`, without restarts).
#[derive(Clone, Debug)]
pub struct CosineAnnealingLr {
    progress: Progress,
    t_max: usize,
    eta_min: f64,
}

impl CosineAnnealingLr {
    /// PyTorch's `CosineAnnealingLR(optimizer, T_max, eta_min)` (its default `eta_min`
    /// is 0).
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] when `t_max` is 0 or `eta_min` negative.
    pub fn new(optimizer: &mut dyn LearningRates, t_max: usize, eta_min: f64) -> Result<Self, Error> {
        positive_count("CosineAnnealingLR", "T_max", t_max)?;
        non_negative("CosineAnnealingLR", "eta_min", eta_min)?;
        Self {
            progress: Progress::attach(optimizer)?,
            t_max,
            eta_min,
        }
        .initial_step(optimizer)
    }
}

impl Formula for CosineAnnealingLr {
    fn recursive(&self, progress: &Progress, group: usize, lr: f64, initial: bool) -> Result<f64, Error> {
        if initial {
            return Ok(lr);
        }
        let (epoch, t_max, eta_min) = (progress.last_epoch as f64, self.t_max as f64, self.eta_min);
        let t = self.t_max as i64;
        if (progress.last_epoch - 1 - t).rem_euclid(2 * t) == 0 {
            // The bottom of the cosine: the recursive ratio below would divide by 0.
            return Ok(lr + (progress.base_lrs[group] - eta_min) * (1.0 - (PI / t_max).cos()) / 2.0);
        }
        Ok((1.0 + (PI * epoch / t_max).cos()) / (1.0 + (PI * (epoch - 1.0) / t_max).cos()) * (lr - eta_min) + eta_min)
    }

    fn closed_form(&self, progress: &Progress, group: usize) -> Result<f64, Error> {
        let (epoch, t_max, eta_min) = (progress.last_epoch as f64, self.t_max as f64, self.eta_min);
        Ok(eta_min + (progress.base_lrs[group] - eta_min) * (1.0 + (PI * epoch / t_max).cos()) / 2.0)
    }
}

simple_scheduler!(CosineAnnealingLr);

/// Scales the rates by a factor going linearly from `start_factor` to `end_factor`
/// over `total_iters` steps, then leaves them (PyTorch's `LinearLR`): a linear
/// warm-up with the defaults' shape.
#[derive(Clone, Debug)]
pub struct LinearLr {
    progress: Progress,
    start_factor: f64,
    end_factor: f64,
    total_iters: usize,
}

impl LinearLr {
    /// PyTorch's `LinearLR(optimizer, start_factor, end_factor, total_iters)`
    /// (defaults 1/3, 1 and 5).
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] when `start_factor` is not in (0, 1], `end_factor`
    /// not in [0, 1], or `total_iters` is 0.
    pub fn new(
        optimizer: &mut dyn LearningRates,
        start_factor: f64,
        end_factor: f64,
        total_iters: usize,
    ) -> Result<Self, Error> {
        if !(start_factor > 0.0 && start_factor <= 1.0) {
            return Err(invalid(
                "LinearLR",
                format!("start_factor must be in (0, 1], got {start_factor}"),
            ));
        }
        if !(0.0..=1.0).contains(&end_factor) {
            return Err(invalid(
                "LinearLR",
                format!("end_factor must be in [0, 1], got {end_factor}"),
            ));
        }
        positive_count("LinearLR", "total_iters", total_iters)?;
        Self {
            progress: Progress::attach(optimizer)?,
            start_factor,
            end_factor,
            total_iters,
        }
        .initial_step(optimizer)
    }
}

impl Formula for LinearLr {
    fn recursive(&self, progress: &Progress, _: usize, lr: f64, initial: bool) -> Result<f64, Error> {
        let epoch = progress.last_epoch;
        if epoch == 0 {
            return Ok(lr * self.start_factor);
        }
        if initial || epoch > self.total_iters as i64 {
            return Ok(lr);
        }
        let (start, end) = (self.start_factor, self.end_factor);
        Ok(lr * (1.0 + (end - start) / (self.total_iters as f64 * start + (epoch - 1) as f64 * (end - start))))
    }

    fn closed_form(&self, progress: &Progress, group: usize) -> Result<f64, Error> {
        let (start, end) = (self.start_factor, self.end_factor);
        let done = progress.last_epoch.min(self.total_iters as i64) as f64;
        Ok(progress.base_lrs[group] * (start + (end - start) * done / self.total_iters as f64))
    }
}

simple_scheduler!(LinearLr);

/// How [`OneCycleLr`] moves between two rates.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Anneal {
    /// Along a half cosine (PyTorch's `"cos"`, the default).
    #[default]
    Cos,
    /// In a straight line (`"linear"`).
    Linear,
}

impl Anneal {
    fn between(self, start: f64, end: f64, fraction: f64) -> f64 {
        match self {
            Anneal::Cos => end + (start - end) / 2.0 * ((PI * fraction).cos() + 1.0),
            Anneal::Linear => (end - start) * fraction + start,
        }
    }
}

/// The options of [`OneCycleLr`]; `Default` is PyTorch's.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct OneCycleConfig {
    /// The fraction of the steps spent increasing the rate; 0.3 by default.
    pub pct_start: f64,
    /// How the rate moves; cosine by default.
    pub anneal: Anneal,
    /// The initial rate is `max_lr / div_factor`; 25 by default.
    pub div_factor: f64,
    /// The final rate is the initial one divided by this; 1e4 by default.
    pub final_div_factor: f64,
    /// Three phases (up, back down to the initial rate, then down to the final one)
    /// instead of two; off by default.
    pub three_phase: bool,
}

impl Default for OneCycleConfig {
    fn default() -> Self {
        Self {
            pct_start: 0.3,
            anneal: Anneal::Cos,
            div_factor: 25.0,
            final_div_factor: 1e4,
            three_phase: false,
        }
    }
}

/// The one-cycle policy (PyTorch's `OneCycleLR`): the rate rises from
/// `max_lr / div_factor` to `max_lr`, then falls far below the start, over
/// `total_steps` steps. It sets the groups' initial rates itself.
///
/// As in PyTorch, the schedule may be stepped `total_steps` times, the last step one
/// past the end of the last phase (the anneal carries on past its end); with a linear
/// anneal that rate can fall below zero, which is an error here.
///
/// PyTorch also cycles the momentum (or Adam's β₁) inversely by default
/// (`cycle_momentum=True`); this schedule drives the learning rates only, which are
/// the same either way.
#[derive(Clone, Debug)]
pub struct OneCycleLr {
    progress: Progress,
    max_lrs: Vec<f64>,
    total_steps: usize,
    /// (the step a phase ends at, its start rate, its end rate), rates as
    /// [`Phase`] names them.
    phases: Vec<(f64, Phase, Phase)>,
    anneal: Anneal,
    final_div_factor: f64,
}

/// A rate a one-cycle phase starts or ends at.
#[derive(Clone, Copy, Debug)]
enum Phase {
    Initial,
    Max,
    Min,
}

impl OneCycleLr {
    /// PyTorch's `OneCycleLR(optimizer, max_lr, total_steps, …)` with one `max_lr` for
    /// every group.
    ///
    /// # Errors
    /// As [`OneCycleLr::with_max_lrs`].
    pub fn new(
        optimizer: &mut dyn LearningRates,
        max_lr: f64,
        total_steps: usize,
        config: OneCycleConfig,
    ) -> Result<Self, Error> {
        let max_lrs = vec![max_lr; optimizer.num_groups()];
        Self::with_max_lrs(optimizer, &max_lrs, total_steps, config)
    }

    /// `OneCycleLR` with a `max_lr` per group.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] when `max_lrs` has not one rate per group, a rate
    /// or factor is negative, `total_steps` is 0, `pct_start` is not in [0, 1], or a
    /// phase would last no step.
    pub fn with_max_lrs(
        optimizer: &mut dyn LearningRates,
        max_lrs: &[f64],
        total_steps: usize,
        config: OneCycleConfig,
    ) -> Result<Self, Error> {
        const OP: &str = "OneCycleLR";
        positive_count(OP, "total_steps", total_steps)?;
        if !(0.0..=1.0).contains(&config.pct_start) {
            return Err(invalid(
                OP,
                format!("pct_start must be in [0, 1], got {}", config.pct_start),
            ));
        }
        non_negative(OP, "div_factor", config.div_factor)?;
        non_negative(OP, "final_div_factor", config.final_div_factor)?;
        if max_lrs.len() != optimizer.num_groups() {
            return Err(invalid(
                OP,
                format!(
                    "expected one max_lr per parameter group ({}), got {}",
                    optimizer.num_groups(),
                    max_lrs.len()
                ),
            ));
        }
        let total = total_steps as f64;
        let pct = config.pct_start;
        let phases = if config.three_phase {
            vec![
                (pct * total - 1.0, Phase::Initial, Phase::Max),
                (2.0 * pct * total - 2.0, Phase::Max, Phase::Initial),
                (total - 1.0, Phase::Initial, Phase::Min),
            ]
        } else {
            vec![
                (pct * total - 1.0, Phase::Initial, Phase::Max),
                (total - 1.0, Phase::Max, Phase::Min),
            ]
        };
        let mut start = 0.0;
        for &(end, _, _) in &phases {
            if end == start {
                return Err(invalid(
                    OP,
                    format!(
                        "a phase would end at step {end}, where it starts: raise total_steps ({total_steps}) or change pct_start ({pct})"
                    ),
                ));
            }
            start = end;
        }
        for (group, &max_lr) in max_lrs.iter().enumerate() {
            non_negative(OP, "max_lr", max_lr)?;
            optimizer.set_initial_lr(group, max_lr / config.div_factor)?;
        }
        Self {
            progress: Progress::attach(optimizer)?,
            max_lrs: max_lrs.to_vec(),
            total_steps,
            phases,
            anneal: config.anneal,
            final_div_factor: config.final_div_factor,
        }
        .initial_step(optimizer)
    }

    fn rate(&self, progress: &Progress, group: usize) -> Result<f64, Error> {
        let step = progress.last_epoch;
        if step > self.total_steps as i64 {
            return Err(invalid(
                "OneCycleLR",
                format!(
                    "stepped {step} times, past its total_steps {}: the schedule has ended",
                    self.total_steps
                ),
            ));
        }
        let initial = progress.base_lrs[group];
        let value = |phase: Phase| match phase {
            Phase::Initial => initial,
            Phase::Max => self.max_lrs[group],
            Phase::Min => initial / self.final_div_factor,
        };
        let mut start_step = 0.0;
        let last = self.phases.len() - 1;
        for (i, &(end_step, from, to)) in self.phases.iter().enumerate() {
            if step as f64 <= end_step || i == last {
                let fraction = (step as f64 - start_step) / (end_step - start_step);
                return Ok(self.anneal.between(value(from), value(to), fraction));
            }
            start_step = end_step;
        }
        Ok(initial)
    }
}

impl Formula for OneCycleLr {
    fn recursive(&self, progress: &Progress, group: usize, _: f64, _: bool) -> Result<f64, Error> {
        self.rate(progress, group)
    }

    /// PyTorch's `OneCycleLR` has no closed form besides its `get_lr`, which is one.
    fn closed_form(&self, progress: &Progress, group: usize) -> Result<f64, Error> {
        self.rate(progress, group)
    }
}

simple_scheduler!(OneCycleLr);

/// Runs one schedule after another, switching at milestones (PyTorch's `SequentialLR`).
///
/// At each milestone the next schedule starts from the groups' initial rates (its
/// closed form at step 0), whatever the previous one left.
pub struct SequentialLr {
    schedulers: Vec<Box<dyn LrScheduler>>,
    milestones: Vec<usize>,
    last_epoch: i64,
    last_lr: Vec<f64>,
}

impl std::fmt::Debug for SequentialLr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SequentialLr")
            .field("schedulers", &self.schedulers.len())
            .field("milestones", &self.milestones)
            .field("last_epoch", &self.last_epoch)
            .finish()
    }
}

impl SequentialLr {
    /// PyTorch's `SequentialLR(optimizer, schedulers, milestones)`: `schedulers[i]`
    /// runs from `milestones[i − 1]` on. The schedules must have been created on
    /// `optimizer`.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] when there is no schedule, the milestones are not one
    /// fewer than the schedules or not increasing, or a group has no initial rate.
    pub fn new(
        optimizer: &mut dyn LearningRates,
        mut schedulers: Vec<Box<dyn LrScheduler>>,
        milestones: Vec<usize>,
    ) -> Result<Self, Error> {
        const OP: &str = "SequentialLR";
        if schedulers.is_empty() {
            return Err(invalid(OP, "expects at least one schedule, got none".into()));
        }
        if milestones.len() + 1 != schedulers.len() {
            return Err(invalid(
                OP,
                format!(
                    "expects one milestone fewer than schedules, got {} schedules and {} milestones",
                    schedulers.len(),
                    milestones.len()
                ),
            ));
        }
        if milestones.windows(2).any(|w| w[0] > w[1]) {
            return Err(invalid(
                OP,
                format!("the milestones must not decrease, got {milestones:?}"),
            ));
        }
        for group in 0..optimizer.num_groups() {
            let Some(initial) = optimizer.initial_lr(group)? else {
                return Err(invalid(
                    OP,
                    format!(
                        "parameter group {group} has no initial rate: create the schedules on this optimizer first"
                    ),
                ));
            };
            optimizer.set_lr(group, initial)?;
        }
        for scheduler in &mut schedulers {
            scheduler.rewind();
        }
        let index = bisect_right(&milestones, 0);
        schedulers[index].restart(optimizer)?;
        let last_lr = schedulers[index].last_lr().to_vec();
        Ok(Self {
            schedulers,
            milestones,
            last_epoch: 0,
            last_lr,
        })
    }
}

/// How many of the sorted `milestones` are at most `epoch`.
fn bisect_right(milestones: &[usize], epoch: i64) -> usize {
    milestones.iter().take_while(|&&m| m as i64 <= epoch).count()
}

impl LrScheduler for SequentialLr {
    fn step(&mut self, optimizer: &mut dyn LearningRates) -> Result<(), Error> {
        self.last_epoch += 1;
        let index = bisect_right(&self.milestones, self.last_epoch);
        let scheduler = &mut self.schedulers[index];
        if index > 0 && self.milestones[index - 1] as i64 == self.last_epoch {
            scheduler.jump_to(0, optimizer)?;
        } else {
            scheduler.step(optimizer)?;
        }
        self.last_lr = scheduler.last_lr().to_vec();
        Ok(())
    }

    fn last_lr(&self) -> &[f64] {
        &self.last_lr
    }

    fn last_epoch(&self) -> i64 {
        self.last_epoch
    }

    /// PyTorch's `_initial_step` on a `SequentialLR` is one more step.
    fn restart(&mut self, optimizer: &mut dyn LearningRates) -> Result<(), Error> {
        self.step(optimizer)
    }

    fn rewind(&mut self) {
        for scheduler in &mut self.schedulers {
            scheduler.rewind();
        }
    }

    fn jump_to(&mut self, _: i64, _: &mut dyn LearningRates) -> Result<(), Error> {
        Err(invalid("SequentialLR", "has no closed form to jump with".into()))
    }
}

/// Steps several schedules together, each scaling the rates the previous left
/// (PyTorch's `ChainedScheduler`): an exponential decay with a step decay on top, say.
pub struct ChainedScheduler {
    schedulers: Vec<Box<dyn LrScheduler>>,
    last_epoch: i64,
    last_lr: Vec<f64>,
}

impl std::fmt::Debug for ChainedScheduler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChainedScheduler")
            .field("schedulers", &self.schedulers.len())
            .field("last_epoch", &self.last_epoch)
            .finish()
    }
}

impl ChainedScheduler {
    /// PyTorch's `ChainedScheduler(schedulers)`; the schedules must have been created on
    /// `optimizer`.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] when there is no schedule.
    pub fn new(optimizer: &mut dyn LearningRates, schedulers: Vec<Box<dyn LrScheduler>>) -> Result<Self, Error> {
        if schedulers.is_empty() {
            return Err(invalid(
                "ChainedScheduler",
                "expects at least one schedule, got none".into(),
            ));
        }
        let last_lr = current_lrs(optimizer)?;
        Ok(Self {
            schedulers,
            last_epoch: 0,
            last_lr,
        })
    }
}

fn current_lrs(optimizer: &dyn LearningRates) -> Result<Vec<f64>, Error> {
    (0..optimizer.num_groups()).map(|group| optimizer.lr(group)).collect()
}

impl LrScheduler for ChainedScheduler {
    fn step(&mut self, optimizer: &mut dyn LearningRates) -> Result<(), Error> {
        for scheduler in &mut self.schedulers {
            scheduler.step(optimizer)?;
        }
        self.last_epoch += 1;
        self.last_lr = current_lrs(optimizer)?;
        Ok(())
    }

    fn last_lr(&self) -> &[f64] {
        &self.last_lr
    }

    fn last_epoch(&self) -> i64 {
        self.last_epoch
    }

    /// As PyTorch's `_initial_step` on a `ChainedScheduler`: one more step.
    fn restart(&mut self, optimizer: &mut dyn LearningRates) -> Result<(), Error> {
        self.step(optimizer)
    }

    fn rewind(&mut self) {
        for scheduler in &mut self.schedulers {
            scheduler.rewind();
        }
    }

    fn jump_to(&mut self, _: i64, _: &mut dyn LearningRates) -> Result<(), Error> {
        Err(invalid("ChainedScheduler", "has no closed form to jump with".into()))
    }
}
