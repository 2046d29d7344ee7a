//! Optimizer updates and gradient clipping.

use super::check::{Failure, Family, Report, Tolerance};
use super::inputs::{Random, Values, upload};
use ferrograd_cpu::Cpu;
use ferrograd_device::ops::optimizer::{
    AdagradUpdate, AdamUpdate, GradientClipKernel, NormType, OptimizerKernel, RmspropUpdate, SgdUpdate,
    SparseAdamUpdate, SparseRows,
};
use ferrograd_device::{Dtype, Error};

/// Parameter lengths: empty, one, and odd lengths around vector widths.
const LENGTHS: [usize; 5] = [0, 1, 7, 33, 257];

/// An update's buffers on the host: the parameter, the gradient, and up to three
/// state buffers (empty when the update has fewer).
#[derive(Clone, Debug)]
struct State<E> {
    param: Vec<E>,
    grad: Vec<E>,
    states: [Vec<E>; 3],
    /// Whether the last state is left out of the call (amsgrad without its buffer).
    omit_last: bool,
}

/// The buffers after an update: the parameter and the three states.
type After<E> = (Vec<E>, Vec<E>, Vec<E>, Vec<E>);

impl<E: Dtype> State<E> {
    /// Random buffers of `len` elements; state `i` holds `kinds[i]` (an empty buffer
    /// for `None`).
    fn new(random: &mut Random, len: usize, kinds: [Option<Values>; 3]) -> Self {
        Self {
            param: random.values(len, Values::Finite),
            grad: random.values(len, Values::Finite),
            states: kinds.map(|kind| kind.map_or_else(Vec::new, |kind| random.values(len, kind))),
            omit_last: false,
        }
    }

    fn describe(&self) -> String {
        let lengths = self.states.iter().map(Vec::len).collect::<Vec<_>>();
        format!(
            "parameter of {}, gradient of {}, states of {lengths:?}{}",
            self.param.len(),
            self.grad.len(),
            if self.omit_last {
                ", the last one not passed"
            } else {
                ""
            }
        )
    }
}

/// One update of an optimizer.
#[derive(Clone, Copy, Debug)]
enum Update<E> {
    /// SGD; the momentum buffer is state 0 when there is one, `first` when the step
    /// creates it.
    Sgd {
        update: SgdUpdate<E>,
        buffer: bool,
        first: bool,
    },
    /// Adam or AdamW: states exp_avg, exp_avg_sq, max_exp_avg_sq (with amsgrad).
    Adam(AdamUpdate<E>),
    /// RMSprop: states square_avg, grad_avg (centered), momentum buffer.
    Rmsprop {
        update: RmspropUpdate<E>,
        centered: bool,
        momentum: bool,
    },
    /// Adagrad: state sum.
    Adagrad(AdagradUpdate<E>),
}

/// Runs `update` on the buffers; what they hold afterwards, or the error (with the
/// parameter as it was).
fn update_run<E: Dtype, D: OptimizerKernel<E>>(
    device: &D,
    update: &Update<E>,
    state: &State<E>,
) -> (Result<(), Error>, After<E>) {
    let attempt = || -> Result<(Result<(), Error>, After<E>), Error> {
        let mut param = upload(device, &state.param)?;
        let grad = upload(device, &state.grad)?;
        let [mut s0, mut s1, mut s2] = [
            upload(device, &state.states[0])?,
            upload(device, &state.states[1])?,
            upload(device, &state.states[2])?,
        ];
        let result = match *update {
            Update::Sgd { update, buffer, first } => {
                device.sgd_update(&update, &mut param, &grad, buffer.then_some((&mut s0, first)))
            }
            Update::Adam(update) => {
                let max = (update.amsgrad && !state.omit_last).then_some(&mut s2);
                device.adam_update(&update, &mut param, &grad, &mut s0, &mut s1, max)
            }
            Update::Rmsprop {
                update,
                centered,
                momentum,
            } => device.rmsprop_update(
                &update,
                &mut param,
                &grad,
                &mut s0,
                centered.then_some(&mut s1),
                momentum.then_some(&mut s2),
            ),
            Update::Adagrad(update) => device.adagrad_update(&update, &mut param, &grad, &mut s0),
        };
        let after = (
            device.try_to_host(&param)?,
            device.try_to_host(&s0)?,
            device.try_to_host(&s1)?,
            device.try_to_host(&s2)?,
        );
        Ok((result, after))
    };
    let unchanged = || {
        let [s0, s1, s2] = state.states.clone();
        (state.param.clone(), s0, s1, s2)
    };
    attempt().unwrap_or_else(|error| (Err(error), unchanged()))
}

fn sgd<E: Dtype>(
    momentum: f64,
    one_minus_dampening: f64,
    weight_decay: f64,
    nesterov: bool,
    maximize: bool,
) -> SgdUpdate<E> {
    SgdUpdate {
        lr: E::from_f64(0.1),
        momentum: E::from_f64(momentum),
        one_minus_dampening: E::from_f64(one_minus_dampening),
        weight_decay: E::from_f64(weight_decay),
        nesterov,
        maximize,
    }
}

/// Adam's scalars at step 3, as the optimizer computes them on the host.
fn adam<E: Dtype>(beta1: f64, weight_decay: f64, adamw: bool, amsgrad: bool, maximize: bool) -> AdamUpdate<E> {
    let (lr, beta2, step) = (1e-2, 0.999f64, 3);
    AdamUpdate {
        step_size: E::from_f64(lr / (1.0 - beta1.powi(step))),
        bias_correction2_sqrt: E::from_f64((1.0 - beta2.powi(step)).sqrt()),
        one_minus_beta1: E::from_f64(1.0 - beta1),
        beta2: E::from_f64(beta2),
        one_minus_beta2: E::from_f64(1.0 - beta2),
        eps: E::from_f64(1e-8),
        weight_decay: E::from_f64(if adamw { 0.0 } else { weight_decay }),
        decay_factor: E::from_f64(if adamw { 1.0 - lr * weight_decay } else { 1.0 }),
        amsgrad,
        maximize,
    }
}

fn rmsprop<E: Dtype>(weight_decay: f64, momentum: f64, maximize: bool) -> RmspropUpdate<E> {
    RmspropUpdate {
        lr: E::from_f64(1e-2),
        alpha: E::from_f64(0.99),
        one_minus_alpha: E::from_f64(0.01),
        eps: E::from_f64(1e-8),
        weight_decay: E::from_f64(weight_decay),
        momentum: E::from_f64(momentum),
        maximize,
    }
}

fn adagrad<E: Dtype>(weight_decay: f64, maximize: bool) -> AdagradUpdate<E> {
    AdagradUpdate {
        lr: E::from_f64(1e-2 / (1.0 + 2.0 * 1e-3)),
        eps: E::from_f64(1e-10),
        weight_decay: E::from_f64(weight_decay),
        maximize,
    }
}

/// Every update the suite runs, with the kind of values each state holds.
fn updates<E: Dtype>() -> Vec<(Update<E>, [Option<Values>; 3])> {
    let none = [None, None, None];
    // A first momentum step must not read the buffer: it holds NaN (see below).
    let buffer = [Some(Values::Finite), None, None];
    let moments = [Some(Values::Finite), Some(Values::Positive), None];
    let amsgrad = [Some(Values::Finite), Some(Values::Positive), Some(Values::Positive)];
    let rms = [Some(Values::Positive), Some(Values::Small), Some(Values::Finite)];
    let sum = [Some(Values::Positive), None, None];
    let sgd_with = |update, buffer_kind: bool, first| Update::Sgd {
        update,
        buffer: buffer_kind,
        first,
    };
    let rmsprop_with = |update, centered, momentum| Update::Rmsprop {
        update,
        centered,
        momentum,
    };
    vec![
        (sgd_with(sgd(0.0, 1.0, 0.0, false, false), false, false), none),
        (sgd_with(sgd(0.0, 1.0, 0.01, false, true), false, false), none),
        (sgd_with(sgd(0.9, 1.0, 0.0, false, false), true, true), buffer),
        (sgd_with(sgd(0.9, 0.75, 0.01, true, false), true, false), buffer),
        (sgd_with(sgd(0.9, 0.75, 0.1, true, true), true, true), buffer),
        (sgd_with(sgd(0.9, 0.75, 0.0, false, true), true, false), buffer),
        (Update::Adam(adam(0.9, 0.0, false, false, false)), moments),
        (Update::Adam(adam(0.9, 0.01, false, true, true)), amsgrad),
        (Update::Adam(adam(0.9, 0.01, true, false, false)), moments),
        (Update::Adam(adam(0.4, 0.0, true, true, false)), amsgrad),
        (rmsprop_with(rmsprop(0.0, 0.0, false), false, false), rms),
        (rmsprop_with(rmsprop(0.0, 0.0, false), true, false), rms),
        (rmsprop_with(rmsprop(0.01, 0.9, false), false, true), rms),
        (rmsprop_with(rmsprop(0.01, 0.9, true), true, true), rms),
        (Update::Adagrad(adagrad(0.0, false)), sum),
        (Update::Adagrad(adagrad(0.01, true)), sum),
    ]
}

/// `param` and its states after a sparse update, or the error.
fn sparse_run<E: Dtype, D: OptimizerKernel<E>>(
    device: &D,
    kind: usize,
    state: &State<E>,
    indices: &[usize],
    row_len: usize,
) -> (Result<(), Error>, After<E>) {
    let attempt = || -> Result<(Result<(), Error>, After<E>), Error> {
        let mut param = upload(device, &state.param)?;
        let values = upload(device, &state.grad)?;
        let [mut s0, mut s1, s2] = [
            upload(device, &state.states[0])?,
            upload(device, &state.states[1])?,
            upload(device, &state.states[2])?,
        ];
        let rows = SparseRows {
            indices,
            values: &values,
            row_len,
        };
        let result = match kind {
            0 => device.sparse_sgd_update(E::from_f64(0.1), false, &mut param, &rows),
            1 => device.sparse_sgd_update(E::from_f64(0.1), true, &mut param, &rows),
            2 => device.sparse_adagrad_update(&adagrad(0.0, false), &mut param, &mut s0, &rows),
            _ => {
                let update = SparseAdamUpdate {
                    step_size: E::from_f64(1e-2 * (1.0f64 - 0.999f64.powi(2)).sqrt() / (1.0 - 0.81)),
                    one_minus_beta1: E::from_f64(0.1),
                    one_minus_beta2: E::from_f64(0.001),
                    eps: E::from_f64(1e-8),
                    maximize: kind > 3,
                };
                device.sparse_adam_update(&update, &mut param, &mut s0, &mut s1, &rows)
            }
        };
        let after = (
            device.try_to_host(&param)?,
            device.try_to_host(&s0)?,
            device.try_to_host(&s1)?,
            device.try_to_host(&s2)?,
        );
        Ok((result, after))
    };
    let unchanged = || {
        let [s0, s1, s2] = state.states.clone();
        (state.param.clone(), s0, s1, s2)
    };
    attempt().unwrap_or_else(|error| (Err(error), unchanged()))
}

const SPARSE_KINDS: [&str; 5] = [
    "sparse sgd",
    "sparse sgd, maximize",
    "sparse adagrad",
    "sparse adam",
    "sparse adam, maximize",
];

/// Every update kind: SGD (plain, with weight decay and maximising, with momentum —
/// its first step, whose buffer holds NaN and must not be read, and later ones —
/// dampening and Nesterov), Adam and AdamW (with amsgrad, maximising, a β₁ below 0.5
/// where the moment's interpolation takes its other form), RMSprop (plain, centered,
/// with momentum, all at once), Adagrad (with weight decay and maximising), over
/// parameters of 0, 1, 7, 33 and 257 elements; and the sparse updates (SGD, Adagrad,
/// SparseAdam) on rows of a table, no rows included. Every buffer is compared
/// afterwards. Bad arguments: a gradient or state of another length, amsgrad without
/// its buffer, a sparse row past the table, values that do not fill the rows (every
/// buffer must be left as it was).
///
/// # Errors
/// The first case where `device` disagrees with the CPU.
pub fn optimizer_kernel<E: Dtype, D: OptimizerKernel<E>>(device: &D, tolerance: Tolerance) -> Result<Report, Failure>
where
    Cpu: OptimizerKernel<E>,
{
    let cpu = Cpu::default();
    let mut family = Family::new("optimizer", tolerance);
    let mut random = Random::new(23);
    for (update, kinds) in updates::<E>() {
        for len in LENGTHS {
            let mut state = State::new(&mut random, len, kinds);
            if let Update::Sgd { first: true, .. } = update {
                state.states[0].fill(E::from_f64(f64::NAN));
            }
            let case = format!("{update:?}, {}", state.describe());
            let (reference, expected) = update_run(&cpu, &update, &state);
            let (actual, after) = update_run(device, &update, &state);
            family.check(
                "optimizer update",
                &case,
                reference.map(|()| expected),
                actual.map(|()| after),
            )?;
        }
    }
    // Rows sorted and distinct, as a coalesced gradient holds them (the contract).
    let sparse_cases: [(usize, usize, &[usize]); 4] =
        [(6, 3, &[0, 2, 4]), (6, 3, &[]), (7, 1, &[6]), (5, 4, &[0, 1, 2, 3, 4])];
    for (kind, name) in SPARSE_KINDS.iter().enumerate() {
        for (rows, row_len, indices) in sparse_cases {
            let len = rows * row_len;
            let mut state = State::new(&mut random, len, [Some(Values::Positive), Some(Values::Positive), None]);
            if kind >= 3 {
                state.states[0] = random.values(len, Values::Finite);
            }
            state.grad = random.values(indices.len() * row_len, Values::Finite);
            let case = format!("{name}, rows {indices:?} of {row_len} elements, {}", state.describe());
            let (reference, expected) = sparse_run(&cpu, kind, &state, indices, row_len);
            let (actual, after) = sparse_run(device, kind, &state, indices, row_len);
            family.check(name, &case, reference.map(|()| expected), actual.map(|()| after))?;
        }
    }

    // Refusals: each buffer wrong in one way, every buffer left as it was.
    let mut refusals = Vec::new();
    for (update, kinds) in updates::<E>() {
        let state = State::new(&mut random, 7, kinds);
        let mut short_grad = state.clone();
        short_grad.grad.pop();
        refusals.push((update, short_grad));
        if let Some(position) = state.states.iter().position(|s| !s.is_empty()) {
            let mut short_state = state.clone();
            short_state.states[position].pop();
            refusals.push((update, short_state));
        }
        if let Update::Adam(AdamUpdate { amsgrad: true, .. }) = update {
            let mut missing = state.clone();
            missing.omit_last = true;
            refusals.push((update, missing));
        }
    }
    for (update, state) in refusals {
        let case = format!("{update:?}, {}", state.describe());
        let (reference, _) = update_run(&cpu, &update, &state);
        let (actual, after) = update_run(device, &update, &state);
        family.refusal("optimizer update", &case, reference, actual)?;
        let [s0, s1, s2] = state.states.clone();
        family.unchanged("optimizer update", &case, &state.param, &after.0)?;
        family.unchanged(
            "optimizer update",
            &case,
            &[s0, s1, s2].concat(),
            &[after.1, after.2, after.3].concat(),
        )?;
    }
    for (kind, name) in SPARSE_KINDS.iter().enumerate() {
        let mut state = State::new(&mut random, 18, [Some(Values::Positive), Some(Values::Positive), None]);
        state.grad = random.values(6, Values::Finite);
        // A row past the parameter, values that do not fill the rows, a repeated row,
        // rows out of order.
        for (indices, values) in [
            (&[0usize, 6][..], 6),
            (&[0, 1][..], 5),
            (&[1, 1][..], 6),
            (&[2, 0][..], 6),
        ] {
            state.grad.truncate(values);
            let case = format!("{name}, rows {indices:?} of 3 elements, {}", state.describe());
            let (reference, _) = sparse_run(&cpu, kind, &state, indices, 3);
            let (actual, after) = sparse_run(device, kind, &state, indices, 3);
            family.refusal(name, &case, reference, actual)?;
            family.unchanged(name, &case, &state.param, &after.0)?;
        }
    }
    Ok(family.finish())
}

const NORMS: [NormType; 3] = [NormType::One, NormType::Two, NormType::Infinity];

/// What a clipping step gives: the norm (one value), or the buffer after scaling or
/// clamping.
#[derive(Clone, Copy, Debug)]
enum Clip<E> {
    Norm(NormType),
    Scale(E),
    Clamp(E, E),
}

fn clip_run<E: Dtype, D: GradientClipKernel<E>>(
    device: &D,
    clip: Clip<E>,
    values: &[E],
) -> (Result<(), Error>, Vec<E>) {
    let attempt = || -> Result<(Result<(), Error>, Vec<E>), Error> {
        let mut buffer = upload(device, values)?;
        let result = match clip {
            Clip::Norm(norm_type) => {
                return Ok(match device.norm(&buffer, norm_type) {
                    Ok(norm) => (Ok(()), vec![norm]),
                    Err(error) => (Err(error), values.to_vec()),
                });
            }
            Clip::Scale(factor) => device.scale(&mut buffer, factor),
            Clip::Clamp(min, max) => device.clamp(&mut buffer, min, max),
        };
        Ok((result, device.try_to_host(&buffer)?))
    };
    attempt().unwrap_or_else(|error| (Err(error), values.to_vec()))
}

/// The one-, two- and infinity-norms of buffers of 0 to 257 elements, ordinary ones and
/// ones holding NaN and ±∞ (NaN propagates, also through the maximum); scaling by 0.5,
/// 0 and −2; clamping into `[-1, 1]` and `[0, 0]` (NaN stays NaN). Bad arguments:
/// clamping bounds in the wrong order or NaN (the buffer must be left as it was).
///
/// # Errors
/// The first case where `device` disagrees with the CPU.
pub fn gradient_clip_kernel<E: Dtype, D: GradientClipKernel<E>>(
    device: &D,
    tolerance: Tolerance,
) -> Result<Report, Failure>
where
    Cpu: GradientClipKernel<E>,
{
    let cpu = Cpu::default();
    let mut family = Family::new("gradient_clip", tolerance);
    let mut random = Random::new(24);
    let mut clips: Vec<Clip<E>> = NORMS.into_iter().map(Clip::Norm).collect();
    clips.extend([0.5, 0.0, -2.0].map(|factor| Clip::Scale(E::from_f64(factor))));
    clips.extend([(-1.0, 1.0), (0.0, 0.0)].map(|(min, max)| Clip::Clamp(E::from_f64(min), E::from_f64(max))));
    for len in LENGTHS {
        for values in [Values::Finite, Values::Specials] {
            let buffer = random.values::<E>(len, values);
            for clip in &clips {
                let case = format!("{clip:?} of {len} values ({values:?}): {buffer:?}");
                let (reference, expected) = clip_run(&cpu, *clip, &buffer);
                let (actual, after) = clip_run(device, *clip, &buffer);
                family.check(
                    "gradient clipping",
                    &case,
                    reference.map(|()| expected),
                    actual.map(|()| after),
                )?;
            }
        }
    }
    let buffer = random.values::<E>(7, Values::Finite);
    for (min, max) in [(1.0, -1.0), (f64::NAN, 1.0)] {
        let clip = Clip::Clamp(E::from_f64(min), E::from_f64(max));
        let case = format!("{clip:?} of {buffer:?}");
        let (reference, _) = clip_run(&cpu, clip, &buffer);
        let (actual, after) = clip_run(device, clip, &buffer);
        family.refusal("clamp", &case, reference, actual)?;
        family.unchanged("clamp", &case, &buffer, &after)?;
    }
    Ok(family.finish())
}
