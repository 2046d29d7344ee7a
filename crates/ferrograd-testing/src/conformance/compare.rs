//! Comparisons and `choose`.

use super::check::{Failure, Family, Report, Tolerance};
use super::elementwise::{PAIRS, add_ties, past_the_end};
use super::inputs::{ELEMENTWISE_DIMS, Host, Placement, Random, Values, upload};
use ferrograd_cpu::Cpu;
use ferrograd_device::ops::compare::{ChooseKernel, CompareKernel, Comparison};
use ferrograd_device::ops::elementwise::Operand;
use ferrograd_device::{Dtype, Error, Layout, View, ViewMut};

const COMPARISONS: [Comparison; 6] = [
    Comparison::Eq,
    Comparison::Ne,
    Comparison::Lt,
    Comparison::Le,
    Comparison::Gt,
    Comparison::Ge,
];

fn compare_run<E: Dtype, D: CompareKernel<E>>(
    device: &D,
    op: Comparison,
    lhs: &Host<E>,
    rhs: &Host<E>,
) -> Result<Vec<bool>, Error> {
    let (x, y) = (lhs.upload(device)?, rhs.upload(device)?);
    let out = device.compare(op, View::new(&x, lhs.layout), View::new(&y, rhs.layout))?;
    device.try_to_host(&out)
}

fn compare_scalar_run<E: Dtype, D: CompareKernel<E>>(
    device: &D,
    op: Comparison,
    lhs: &Host<E>,
    scalar: E,
) -> Result<Vec<bool>, Error> {
    let x = lhs.upload(device)?;
    let out = device.compare_scalar(op, View::new(&x, lhs.layout), scalar)?;
    device.try_to_host(&out)
}

/// Every comparison, of two tensors on the pairs of placements the binary ops use and
/// of a tensor with a scalar (an ordinary value, one the tensor holds, NaN and +∞),
/// over the element-wise dims, with NaN, ±∞, ±0 and ties between the operands. Results
/// must be equal. Bad layouts: an operand past its buffer, dims that disagree.
///
/// # Errors
/// The first case where `device` disagrees with the CPU.
pub fn compare_kernel<E: Dtype, D: CompareKernel<E>>(device: &D, tolerance: Tolerance) -> Result<Report, Failure>
where
    Cpu: CompareKernel<E>,
{
    let cpu = Cpu::default();
    let mut family = Family::new("compare", tolerance);
    let mut random = Random::new(3);
    for dims in ELEMENTWISE_DIMS {
        for (lhs_placement, rhs_placement) in PAIRS {
            let lhs = random.tensor::<E>(lhs_placement, dims, Values::Specials);
            let mut rhs = random.tensor::<E>(rhs_placement, dims, Values::Specials);
            add_ties(&mut random, &lhs, &mut rhs);
            for op in COMPARISONS {
                let case = format!("{}, lhs {}, rhs {}", op.name(), lhs.describe(), rhs.describe());
                family.check(
                    op.name(),
                    &case,
                    compare_run(&cpu, op, &lhs, &rhs),
                    compare_run(device, op, &lhs, &rhs),
                )?;
            }
            let held = lhs.layout.offsets().next().map_or(E::ZERO, |i| lhs.data[i]);
            for scalar in [
                E::from_f64(0.25),
                held,
                E::from_f64(f64::NAN),
                E::from_f64(f64::INFINITY),
            ] {
                for op in COMPARISONS {
                    let case = format!("{} with {scalar:?}, lhs {}", op.name(), lhs.describe());
                    family.check(
                        op.name(),
                        &case,
                        compare_scalar_run(&cpu, op, &lhs, scalar),
                        compare_scalar_run(device, op, &lhs, scalar),
                    )?;
                }
            }
        }
    }
    let six: Vec<E> = (0..6).map(|i| E::from_f64(i as f64)).collect();
    let fits = Host::contiguous(&[2, 3], six.clone());
    let past = Host {
        layout: past_the_end(),
        placement: "past the end",
        ..fits.clone()
    };
    let other_dims = Host {
        layout: Layout::from_parts(&[3, 2], &[1, 3]),
        placement: "other dims",
        ..fits.clone()
    };
    for (lhs, rhs) in [(&past, &fits), (&fits, &past), (&fits, &other_dims)] {
        let case = format!("lt, lhs {}, rhs {}", lhs.describe(), rhs.describe());
        family.refusal(
            "lt",
            &case,
            compare_run(&cpu, Comparison::Lt, lhs, rhs),
            compare_run(device, Comparison::Lt, lhs, rhs),
        )?;
    }
    let case = format!("ge with 1, lhs {}", past.describe());
    let one = E::ONE;
    family.refusal(
        "ge",
        &case,
        compare_scalar_run(&cpu, Comparison::Ge, &past, one),
        compare_scalar_run(device, Comparison::Ge, &past, one),
    )?;
    Ok(family.finish())
}

fn choose_forward<E: Dtype, D: ChooseKernel<E>>(
    device: &D,
    condition: &Host<bool>,
    on_true: &Host<E>,
    on_false: &Host<E>,
) -> Result<Vec<E>, Error> {
    let c = condition.upload(device)?;
    let (t, f) = (on_true.upload(device)?, on_false.upload(device)?);
    let out = device.forward(
        View::new(&c, condition.layout),
        View::new(&t, on_true.layout),
        View::new(&f, on_false.layout),
    )?;
    device.try_to_host(&out)
}

/// The gradient buffer after the step, and whether the step succeeded (`Err` with the
/// buffer as it was when it refused).
fn choose_backward<E: Dtype, D: ChooseKernel<E>>(
    device: &D,
    operand: Operand,
    condition: &Host<bool>,
    grad: &Host<E>,
    grad_output: &[E],
) -> (Result<(), Error>, Vec<E>) {
    let attempt = || -> Result<(Result<(), Error>, Vec<E>), Error> {
        let c = condition.upload(device)?;
        let mut g = grad.upload(device)?;
        let go = upload(device, grad_output)?;
        let result = device.backward(
            operand,
            View::new(&c, condition.layout),
            ViewMut::new(&mut g, grad.layout),
            &go,
        );
        Ok((result, device.try_to_host(&g)?))
    };
    attempt().unwrap_or_else(|error| (Err(error), grad.data.clone()))
}

/// The result of a step that must succeed: its output buffer.
pub(crate) fn succeeded<T>((result, after): (Result<(), Error>, Vec<T>)) -> Result<Vec<T>, Error> {
    result.map(|()| after)
}

/// `choose` forward, with the condition, `on_true` and `on_false` in several
/// placements (broadcast ones included) over the element-wise dims, the operands
/// holding special values; backward for each operand, added into an existing gradient
/// through every placement (a broadcast one accumulates). Bad layouts: each operand
/// past its buffer, dims that disagree, a gradient past its buffer, a short output
/// gradient (the gradient must be left as it was).
///
/// # Errors
/// The first case where `device` disagrees with the CPU.
pub fn choose_kernel<E: Dtype, D: ChooseKernel<E>>(device: &D, tolerance: Tolerance) -> Result<Report, Failure>
where
    Cpu: ChooseKernel<E>,
{
    let cpu = Cpu::default();
    let mut family = Family::new("choose", tolerance);
    let mut random = Random::new(4);
    let triples = [
        (Placement::CONTIGUOUS, Placement::CONTIGUOUS, Placement::CONTIGUOUS),
        (Placement::PERMUTED, Placement::SLICED, Placement::BROADCAST_LEADING),
        (Placement::BROADCAST_TRAILING, Placement::MIXED, Placement::CONTIGUOUS),
        (Placement::SLICED, Placement::BROADCAST_TRAILING, Placement::PERMUTED),
        (Placement::MIXED, Placement::CONTIGUOUS, Placement::MIXED),
    ];
    for dims in ELEMENTWISE_DIMS {
        for (condition_placement, true_placement, false_placement) in triples {
            let condition = random.mask(condition_placement, dims);
            let on_true = random.tensor::<E>(true_placement, dims, Values::Specials);
            let on_false = random.tensor::<E>(false_placement, dims, Values::Specials);
            let case = format!(
                "condition {}, on_true {}, on_false {}",
                condition.describe(),
                on_true.describe(),
                on_false.describe()
            );
            family.check(
                "choose forward",
                &case,
                choose_forward(&cpu, &condition, &on_true, &on_false),
                choose_forward(device, &condition, &on_true, &on_false),
            )?;
            let grad_output = random.values::<E>(condition.layout.num_elements(), Values::Finite);
            for operand in [Operand::Lhs, Operand::Rhs] {
                for grad_placement in Placement::ALL {
                    let grad = random.tensor::<E>(grad_placement, dims, Values::Finite);
                    let case = format!(
                        "condition {}, gradient of {operand:?} {}",
                        condition.describe(),
                        grad.describe()
                    );
                    family.check(
                        "choose backward",
                        &case,
                        succeeded(choose_backward(&cpu, operand, &condition, &grad, &grad_output)),
                        succeeded(choose_backward(device, operand, &condition, &grad, &grad_output)),
                    )?;
                }
            }
        }
    }

    let mask = Host::contiguous(&[2, 3], vec![true, false, true, false, true, false]);
    let mask_past = Host {
        layout: past_the_end(),
        placement: "past the end",
        ..mask.clone()
    };
    let values = Host::contiguous(&[2, 3], (0..6).map(|i| E::from_f64(i as f64)).collect());
    let past = Host {
        layout: past_the_end(),
        placement: "past the end",
        ..values.clone()
    };
    let other_dims = Host {
        layout: Layout::from_parts(&[3, 2], &[1, 3]),
        placement: "other dims",
        ..values.clone()
    };
    for (condition, on_true, on_false) in [
        (&mask_past, &values, &values),
        (&mask, &past, &values),
        (&mask, &values, &past),
        (&mask, &other_dims, &values),
    ] {
        let case = format!(
            "condition {}, on_true {}, on_false {}",
            condition.describe(),
            on_true.describe(),
            on_false.describe()
        );
        family.refusal(
            "choose forward",
            &case,
            choose_forward(&cpu, condition, on_true, on_false),
            choose_forward(device, condition, on_true, on_false),
        )?;
    }
    let six = [E::ONE; 6];
    for (grad, grad_output) in [(&past, &six[..]), (&values, &six[..2]), (&other_dims, &six[..])] {
        let case = format!(
            "condition {}, gradient {}, output gradient of {}",
            mask.describe(),
            grad.describe(),
            grad_output.len()
        );
        let (reference, _) = choose_backward(&cpu, Operand::Lhs, &mask, grad, grad_output);
        let (actual, after) = choose_backward(device, Operand::Lhs, &mask, grad, grad_output);
        family.refusal("choose backward", &case, reference, actual)?;
        family.unchanged("choose backward", &case, &grad.data, &after)?;
    }
    Ok(family.finish())
}
