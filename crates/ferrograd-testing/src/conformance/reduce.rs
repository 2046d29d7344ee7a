//! Reductions (sum, maximum and minimum, their positions, variance, logsumexp) and
//! softmax.

use super::check::{Failure, Family, Report, Tolerance};
use super::compare::succeeded;
use super::elementwise::past_the_end;
use super::inputs::{Host, Placement, REDUCTION_DIMS, Random, Values, axis_sets, upload};
use ferrograd_cpu::Cpu;
use ferrograd_device::ops::reduce::{
    ArgExtremumKernel, Extremum, ExtremumKernel, ExtremumWithIndicesKernel, LogSumExpKernel, Spread, SumKernel,
    VarianceKernel,
};
use ferrograd_device::ops::softmax::{SoftmaxKernel, SoftmaxKind};
use ferrograd_device::view::InputView;
use ferrograd_device::{Dtype, Error, Input, Layout, Storage, View, ViewMut};

/// The number of elements left after reducing `layout` over `axes`.
fn kept_elements(layout: &Layout, axes: &[usize]) -> usize {
    layout
        .dims()
        .iter()
        .enumerate()
        .filter(|(axis, _)| !axes.contains(axis))
        .map(|(_, &dim)| dim)
        .product()
}

/// A `(4, 3)` tensor whose rows are all −∞, hold +∞, hold NaN, and tie.
fn special_rows<E: Dtype>() -> Host<E> {
    let (inf, nan) = (f64::INFINITY, f64::NAN);
    let values = [-inf, -inf, -inf, inf, 1.0, 2.0, nan, 0.0, 1.0, 1.0, 1.0, 1.0];
    Host::contiguous(&[4, 3], values.iter().map(|&v| E::from_f64(v)).collect())
}

/// Every input of a reduction: each dims of [`REDUCTION_DIMS`] in every placement, then
/// [`special_rows`] — with every set of axes to reduce over.
fn reduction_cases<E: Dtype>(random: &mut Random, values: Values) -> Vec<(Host<E>, Vec<usize>)> {
    let mut cases = Vec::new();
    for dims in REDUCTION_DIMS {
        for placement in Placement::ALL {
            let input = random.tensor::<E>(placement, dims, values);
            for axes in axis_sets(dims.len()) {
                cases.push((input.clone(), axes));
            }
        }
    }
    for axes in axis_sets(2) {
        cases.push((special_rows(), axes));
    }
    cases
}

/// A buffer run through `layout` by a failing call, and whether the call failed.
type Attempt<E> = (Result<(), Error>, Vec<E>);

/// Runs `step` on `grad` (uploaded), returning what it did and the buffer after it.
fn with_buffer<E: Dtype, D: Storage<E>>(
    device: &D,
    grad: &[E],
    step: impl FnOnce(&mut D::Vec) -> Result<(), Error>,
) -> Attempt<E> {
    let attempt = || -> Result<Attempt<E>, Error> {
        let mut buffer = upload(device, grad)?;
        let result = step(&mut buffer);
        Ok((result, device.try_to_host(&buffer)?))
    };
    attempt().unwrap_or_else(|error| (Err(error), grad.to_vec()))
}

fn sum_forward<E: Dtype, D: SumKernel<E>>(device: &D, input: &Host<E>, axes: &[usize]) -> Result<Vec<E>, Error> {
    let x = input.upload(device)?;
    let out = device.forward(View::new(&x, input.layout), axes)?;
    device.try_to_host(&out)
}

fn sum_backward<E: Dtype, D: SumKernel<E>>(
    device: &D,
    grad: &Host<E>,
    axes: &[usize],
    grad_output: &[E],
) -> Attempt<E> {
    with_buffer(device, &grad.data, |buffer| {
        let go = upload(device, grad_output)?;
        device.backward(ViewMut::new(buffer, grad.layout), axes, &go)
    })
}

/// Sums over every set of axes (none, some, all) of inputs in every placement, over
/// dims with an empty axis, size-1 axes and ranks up to 6, holding special values;
/// backward added into an existing gradient through every placement (a broadcast one
/// accumulates). Bad layouts and axes: an input past its buffer, an axis out of range,
/// unsorted or repeated, a gradient past its buffer, a short output gradient.
///
/// # Errors
/// The first case where `device` disagrees with the CPU.
pub fn sum_kernel<E: Dtype, D: SumKernel<E>>(device: &D, tolerance: Tolerance) -> Result<Report, Failure>
where
    Cpu: SumKernel<E>,
{
    let cpu = Cpu::default();
    let mut family = Family::new("sum", tolerance);
    let mut random = Random::new(5);
    for (input, axes) in reduction_cases::<E>(&mut random, Values::Specials) {
        let case = format!("axes {axes:?} of {}", input.describe());
        family.check(
            "sum forward",
            &case,
            sum_forward(&cpu, &input, &axes),
            sum_forward(device, &input, &axes),
        )?;
        let grad_output = random.values::<E>(kept_elements(&input.layout, &axes), Values::Finite);
        let grad = Host {
            data: random.values::<E>(input.data.len(), Values::Finite),
            ..input.clone()
        };
        let case = format!("axes {axes:?}, gradient {}", grad.describe());
        family.check(
            "sum backward",
            &case,
            succeeded(sum_backward(&cpu, &grad, &axes, &grad_output)),
            succeeded(sum_backward(device, &grad, &axes, &grad_output)),
        )?;
    }
    let input = Host::contiguous(&[2, 3], (0..6).map(|i| E::from_f64(i as f64)).collect());
    let past = Host {
        layout: past_the_end(),
        placement: "past the end",
        ..input.clone()
    };
    for (input, axes) in [(&past, &[1][..]), (&input, &[2]), (&input, &[1, 0]), (&input, &[1, 1])] {
        let case = format!("axes {axes:?} of {}", input.describe());
        family.refusal(
            "sum forward",
            &case,
            sum_forward(&cpu, input, axes),
            sum_forward(device, input, axes),
        )?;
    }
    let two = [E::ONE; 2];
    for (grad, grad_output) in [(&past, &two[..]), (&input, &two[..1])] {
        let case = format!(
            "axes [1], gradient {}, output gradient of {}",
            grad.describe(),
            grad_output.len()
        );
        let (reference, _) = sum_backward(&cpu, grad, &[1], grad_output);
        let (actual, after) = sum_backward(device, grad, &[1], grad_output);
        family.refusal("sum backward", &case, reference, actual)?;
        family.unchanged("sum backward", &case, &grad.data, &after)?;
    }
    Ok(family.finish())
}

fn extremum_forward<E: Dtype, D: ExtremumKernel<E>>(
    device: &D,
    kind: Extremum,
    input: &Host<E>,
    axes: &[usize],
) -> Result<Vec<E>, Error> {
    let x = input.upload(device)?;
    let out = device.forward(kind, View::new(&x, input.layout), axes)?;
    device.try_to_host(&out)
}

fn extremum_backward<E: Dtype, D: ExtremumKernel<E>>(
    device: &D,
    input: &Host<E>,
    axes: &[usize],
    output: &[E],
    grad: &[E],
    grad_output: &[E],
) -> Attempt<E> {
    with_buffer(device, grad, |buffer| {
        let (x, y, go) = (
            input.upload(device)?,
            upload(device, output)?,
            upload(device, grad_output)?,
        );
        device.backward(View::new(&x, input.layout), axes, &y, buffer, &go)
    })
}

/// Maxima and minima over every set of axes, of inputs in every placement whose values
/// tie and hold NaN and ±∞, plus rows all −∞ and a reduction over an empty axis (which
/// gives ∓∞); backward (the gradient split among ties, NaN where the extremum is NaN)
/// into an existing gradient. Bad layouts: an input past its buffer, an axis out of
/// range, a short output or gradient.
///
/// # Errors
/// The first case where `device` disagrees with the CPU.
pub fn extremum_kernel<E: Dtype, D: ExtremumKernel<E>>(device: &D, tolerance: Tolerance) -> Result<Report, Failure>
where
    Cpu: ExtremumKernel<E>,
{
    let cpu = Cpu::default();
    let mut family = Family::new("extremum", tolerance);
    let mut random = Random::new(6);
    for (input, axes) in reduction_cases::<E>(&mut random, Values::TiesNan) {
        for kind in [Extremum::Max, Extremum::Min] {
            let case = format!("{} over axes {axes:?} of {}", kind.name(), input.describe());
            let forward = format!("{} forward", kind.name());
            let reference = extremum_forward(&cpu, kind, &input, &axes);
            family.check(
                &forward,
                &case,
                reference,
                extremum_forward(device, kind, &input, &axes),
            )?;
            let output = family.reference(&forward, &case, extremum_forward(&cpu, kind, &input, &axes))?;
            let grad_output = random.values::<E>(output.len(), Values::Finite);
            let grad = random.values::<E>(input.data.len(), Values::Finite);
            family.check(
                "max / min backward",
                &case,
                succeeded(extremum_backward(&cpu, &input, &axes, &output, &grad, &grad_output)),
                succeeded(extremum_backward(device, &input, &axes, &output, &grad, &grad_output)),
            )?;
        }
    }
    let input = Host::contiguous(&[2, 3], (0..6).map(|i| E::from_f64(i as f64)).collect());
    let past = Host {
        layout: past_the_end(),
        placement: "past the end",
        ..input.clone()
    };
    for (input, axes) in [(&past, &[0][..]), (&input, &[2])] {
        let case = format!("max over axes {axes:?} of {}", input.describe());
        family.refusal(
            "max forward",
            &case,
            extremum_forward(&cpu, Extremum::Max, input, axes),
            extremum_forward(device, Extremum::Max, input, axes),
        )?;
    }
    let (two, six) = (vec![E::ONE; 2], vec![E::ZERO; 6]);
    for (output, grad) in [(&two[..1], &six[..]), (&two[..], &six[..5])] {
        let case = format!(
            "max over axes [1] of {}, output of {}, gradient of {}",
            input.describe(),
            output.len(),
            grad.len()
        );
        let (reference, _) = extremum_backward(&cpu, &input, &[1], output, grad, &two);
        let (actual, after) = extremum_backward(device, &input, &[1], output, grad, &two);
        family.refusal("max / min backward", &case, reference, actual)?;
        family.unchanged("max / min backward", &case, grad, &after)?;
    }
    Ok(family.finish())
}

fn arg_extremum_forward<E: Dtype, D: ArgExtremumKernel<E>>(
    device: &D,
    kind: Extremum,
    input: &Host<E>,
    axes: &[usize],
) -> Result<Vec<usize>, Error> {
    let x = input.upload(device)?;
    let out = device.forward(kind, View::new(&x, input.layout), axes)?;
    device.try_to_host(&out)
}

/// The positions of maxima and minima over every set of axes, on the inputs of
/// [`extremum_kernel`]: the first among ties, the first NaN, 0 for an empty group.
/// Indices must be equal. Bad layouts: an input past its buffer, unsorted axes.
///
/// # Errors
/// The first case where `device` disagrees with the CPU.
pub fn arg_extremum_kernel<E: Dtype, D: ArgExtremumKernel<E>>(
    device: &D,
    tolerance: Tolerance,
) -> Result<Report, Failure>
where
    Cpu: ArgExtremumKernel<E>,
{
    let cpu = Cpu::default();
    let mut family = Family::new("arg_extremum", tolerance);
    let mut random = Random::new(7);
    for (input, axes) in reduction_cases::<E>(&mut random, Values::TiesNan) {
        for kind in [Extremum::Max, Extremum::Min] {
            let case = format!("arg{} over axes {axes:?} of {}", kind.name(), input.describe());
            family.check(
                "argmax / argmin",
                &case,
                arg_extremum_forward(&cpu, kind, &input, &axes),
                arg_extremum_forward(device, kind, &input, &axes),
            )?;
        }
    }
    let input = Host::contiguous(&[2, 3], (0..6).map(|i| E::from_f64(i as f64)).collect());
    let past = Host {
        layout: past_the_end(),
        placement: "past the end",
        ..input.clone()
    };
    for (input, axes) in [(&past, &[0, 1][..]), (&input, &[1, 0])] {
        let case = format!("argmin over axes {axes:?} of {}", input.describe());
        family.refusal(
            "argmin",
            &case,
            arg_extremum_forward(&cpu, Extremum::Min, input, axes),
            arg_extremum_forward(device, Extremum::Min, input, axes),
        )?;
    }
    Ok(family.finish())
}

fn with_indices_forward<E: Dtype, D: ExtremumWithIndicesKernel<E>>(
    device: &D,
    kind: Extremum,
    input: &Host<E>,
    axis: usize,
) -> Result<(Vec<E>, Vec<usize>), Error> {
    let x = input.upload(device)?;
    let (values, indices) = device.forward(kind, View::new(&x, input.layout), axis)?;
    Ok((device.try_to_host(&values)?, device.try_to_host(&indices)?))
}

fn with_indices_backward<E: Dtype, D: ExtremumWithIndicesKernel<E>>(
    device: &D,
    grad: &Host<E>,
    axis: usize,
    indices: &[usize],
    grad_output: &[E],
) -> Attempt<E> {
    with_buffer(device, &grad.data, |buffer| {
        let (i, go) = (upload(device, indices)?, upload(device, grad_output)?);
        device.backward(ViewMut::new(buffer, grad.layout), axis, &i, &go)
    })
}

/// The maximum and minimum along each axis with its index, on inputs in every
/// placement whose values tie and hold NaN and ±∞ (the first among ties, the first NaN;
/// an empty axis gives ∓∞ and 0); backward (each output's gradient to its one index)
/// into an existing gradient through every placement (a broadcast one accumulates).
/// Bad arguments: an input past its buffer, an index out of bounds, a gradient past
/// its buffer.
///
/// # Errors
/// The first case where `device` disagrees with the CPU.
pub fn extremum_with_indices_kernel<E: Dtype, D: ExtremumWithIndicesKernel<E>>(
    device: &D,
    tolerance: Tolerance,
) -> Result<Report, Failure>
where
    Cpu: ExtremumWithIndicesKernel<E>,
{
    let cpu = Cpu::default();
    let mut family = Family::new("extremum_with_indices", tolerance);
    let mut random = Random::new(8);
    let mut inputs = Vec::new();
    for dims in REDUCTION_DIMS.iter().filter(|dims| !dims.is_empty()) {
        for placement in Placement::ALL {
            inputs.push(random.tensor::<E>(placement, dims, Values::TiesNan));
        }
    }
    inputs.push(special_rows());
    for input in &inputs {
        for axis in 0..input.layout.rank() {
            for kind in [Extremum::Max, Extremum::Min] {
                let case = format!("{} along axis {axis} of {}", kind.name(), input.describe());
                let kernel = format!("{}_with_indices forward", kind.name());
                family.check(
                    &kernel,
                    &case,
                    with_indices_forward(&cpu, kind, input, axis),
                    with_indices_forward(device, kind, input, axis),
                )?;
                let (_, indices) = family.reference(&kernel, &case, with_indices_forward(&cpu, kind, input, axis))?;
                let grad_output = random.values::<E>(indices.len(), Values::Finite);
                let grad = Host {
                    data: random.values::<E>(input.data.len(), Values::Finite),
                    ..input.clone()
                };
                let case = format!("{case}, gradient {}", grad.describe());
                let kernel = "max_with_indices / min_with_indices backward";
                let reference = with_indices_backward(&cpu, &grad, axis, &indices, &grad_output);
                let (actual, after) = with_indices_backward(device, &grad, axis, &indices, &grad_output);
                if input.layout.dims()[axis] == 0 && !indices.is_empty() {
                    // An empty axis gives index 0, which no element of that axis has:
                    // its gradient is refused, and nothing written.
                    family.refusal(kernel, &case, reference.0, actual)?;
                    family.unchanged(kernel, &case, &grad.data, &after)?;
                } else {
                    family.check(kernel, &case, succeeded(reference), succeeded((actual, after)))?;
                }
            }
        }
    }
    let input = Host::contiguous(&[2, 3], (0..6).map(|i| E::from_f64(i as f64)).collect());
    let past = Host {
        layout: past_the_end(),
        placement: "past the end",
        ..input.clone()
    };
    let case = format!("max along axis 1 of {}", past.describe());
    family.refusal(
        "max_with_indices forward",
        &case,
        with_indices_forward(&cpu, Extremum::Max, &past, 1),
        with_indices_forward(device, Extremum::Max, &past, 1),
    )?;
    let two = vec![E::ONE; 2];
    for (grad, indices) in [(&input, &[0, 3][..]), (&past, &[0, 1])] {
        let case = format!("along axis 1, gradient {}, indices {indices:?}", grad.describe());
        let kernel = "max_with_indices / min_with_indices backward";
        let (reference, _) = with_indices_backward(&cpu, grad, 1, indices, &two);
        let (actual, after) = with_indices_backward(device, grad, 1, indices, &two);
        family.refusal(kernel, &case, reference, actual)?;
        family.unchanged(kernel, &case, &grad.data, &after)?;
    }
    Ok(family.finish())
}

fn variance_forward<E: Dtype, D: VarianceKernel<E>>(
    device: &D,
    spread: Spread,
    correction: E,
    input: &Host<E>,
    axes: &[usize],
) -> Result<Vec<E>, Error> {
    let x = input.upload(device)?;
    let out = device.forward(spread, correction, View::new(&x, input.layout), axes)?;
    device.try_to_host(&out)
}

#[allow(clippy::too_many_arguments)]
fn variance_backward<E: Dtype, D: VarianceKernel<E>>(
    device: &D,
    correction: E,
    input: &Host<E>,
    axes: &[usize],
    std: Option<&[E]>,
    grad: &[E],
    grad_output: &[E],
) -> Attempt<E> {
    with_buffer(device, grad, |buffer| {
        let x = input.upload(device)?;
        let std = std.map(|std| upload(device, std)).transpose()?;
        let go = upload(device, grad_output)?;
        device.backward(correction, View::new(&x, input.layout), axes, std.as_ref(), buffer, &go)
    })
}

/// Variance and standard deviation over every set of axes, with corrections 0 and 1
/// (groups of one element divide by 0 with 1), of inputs in every placement whose
/// values tie (groups whose deviation is 0, where the standard deviation's gradient is
/// 0); backward into an existing gradient. Bad arguments: an input past its buffer, a
/// short standard deviation.
///
/// # Errors
/// The first case where `device` disagrees with the CPU.
pub fn variance_kernel<E: Dtype, D: VarianceKernel<E>>(device: &D, tolerance: Tolerance) -> Result<Report, Failure>
where
    Cpu: VarianceKernel<E>,
{
    let cpu = Cpu::default();
    let mut family = Family::new("variance", tolerance);
    let mut random = Random::new(9);
    for (input, axes) in reduction_cases::<E>(&mut random, Values::Ties) {
        for spread in [Spread::Variance, Spread::StdDev] {
            for correction in [E::ZERO, E::ONE] {
                let case = format!(
                    "{spread:?}, correction {correction:?}, axes {axes:?} of {}",
                    input.describe()
                );
                let forward = format!("{spread:?} forward");
                family.check(
                    &forward,
                    &case,
                    variance_forward(&cpu, spread, correction, &input, &axes),
                    variance_forward(device, spread, correction, &input, &axes),
                )?;
                let output = family.reference(
                    &forward,
                    &case,
                    variance_forward(&cpu, spread, correction, &input, &axes),
                )?;
                let std = (spread == Spread::StdDev).then_some(&output[..]);
                let grad_output = random.values::<E>(output.len(), Values::Finite);
                let grad = random.values::<E>(input.data.len(), Values::Finite);
                family.check(
                    "var / std backward",
                    &case,
                    succeeded(variance_backward(
                        &cpu,
                        correction,
                        &input,
                        &axes,
                        std,
                        &grad,
                        &grad_output,
                    )),
                    succeeded(variance_backward(
                        device,
                        correction,
                        &input,
                        &axes,
                        std,
                        &grad,
                        &grad_output,
                    )),
                )?;
            }
        }
    }
    let input = Host::contiguous(&[2, 3], (0..6).map(|i| E::from_f64(i as f64)).collect());
    let past = Host {
        layout: past_the_end(),
        placement: "past the end",
        ..input.clone()
    };
    let case = format!("std over axes [1] of {}", past.describe());
    family.refusal(
        "std forward",
        &case,
        variance_forward(&cpu, Spread::StdDev, E::ONE, &past, &[1]),
        variance_forward(device, Spread::StdDev, E::ONE, &past, &[1]),
    )?;
    let (two, six) = (vec![E::ONE; 2], vec![E::ZERO; 6]);
    let case = format!("std over axes [1] of {}, standard deviation of 1", input.describe());
    let (reference, _) = variance_backward(&cpu, E::ONE, &input, &[1], Some(&two[..1]), &six, &two);
    let (actual, after) = variance_backward(device, E::ONE, &input, &[1], Some(&two[..1]), &six, &two);
    family.refusal("var / std backward", &case, reference, actual)?;
    family.unchanged("var / std backward", &case, &six, &after)?;
    Ok(family.finish())
}

fn log_sum_exp_forward<E: Dtype, D: LogSumExpKernel<E>>(
    device: &D,
    input: &Host<E>,
    axes: &[usize],
) -> Result<Vec<E>, Error> {
    let x = input.upload(device)?;
    let out = device.forward(View::new(&x, input.layout), axes)?;
    device.try_to_host(&out)
}

fn log_sum_exp_backward<E: Dtype, D: LogSumExpKernel<E>>(
    device: &D,
    input: &Host<E>,
    axes: &[usize],
    output: &[E],
    grad: &[E],
    grad_output: &[E],
) -> Attempt<E> {
    with_buffer(device, grad, |buffer| {
        let (x, y, go) = (
            input.upload(device)?,
            upload(device, output)?,
            upload(device, grad_output)?,
        );
        device.backward(View::new(&x, input.layout), axes, &y, buffer, &go)
    })
}

/// `logsumexp` over every set of axes, of inputs in every placement holding special
/// values, rows all −∞, with +∞ and with NaN; backward into an existing gradient. Bad
/// arguments: unsorted axes, a short output gradient.
///
/// # Errors
/// The first case where `device` disagrees with the CPU.
pub fn log_sum_exp_kernel<E: Dtype, D: LogSumExpKernel<E>>(device: &D, tolerance: Tolerance) -> Result<Report, Failure>
where
    Cpu: LogSumExpKernel<E>,
{
    let cpu = Cpu::default();
    let mut family = Family::new("logsumexp", tolerance);
    let mut random = Random::new(10);
    for (input, axes) in reduction_cases::<E>(&mut random, Values::Specials) {
        let case = format!("axes {axes:?} of {}", input.describe());
        family.check(
            "logsumexp forward",
            &case,
            log_sum_exp_forward(&cpu, &input, &axes),
            log_sum_exp_forward(device, &input, &axes),
        )?;
        let output = family.reference("logsumexp forward", &case, log_sum_exp_forward(&cpu, &input, &axes))?;
        let grad_output = random.values::<E>(output.len(), Values::Finite);
        let grad = random.values::<E>(input.data.len(), Values::Finite);
        family.check(
            "logsumexp backward",
            &case,
            succeeded(log_sum_exp_backward(&cpu, &input, &axes, &output, &grad, &grad_output)),
            succeeded(log_sum_exp_backward(
                device,
                &input,
                &axes,
                &output,
                &grad,
                &grad_output,
            )),
        )?;
    }
    let input = Host::contiguous(&[2, 3], (0..6).map(|i| E::from_f64(i as f64)).collect());
    let case = format!("axes [1, 0] of {}", input.describe());
    family.refusal(
        "logsumexp forward",
        &case,
        log_sum_exp_forward(&cpu, &input, &[1, 0]),
        log_sum_exp_forward(device, &input, &[1, 0]),
    )?;
    let (two, six) = (vec![E::ONE; 2], vec![E::ZERO; 6]);
    let case = format!("axes [1] of {}, output gradient of 1", input.describe());
    let (reference, _) = log_sum_exp_backward(&cpu, &input, &[1], &two, &six, &two[..1]);
    let (actual, after) = log_sum_exp_backward(device, &input, &[1], &two, &six, &two[..1]);
    family.refusal("logsumexp backward", &case, reference, actual)?;
    family.unchanged("logsumexp backward", &case, &six, &after)?;
    Ok(family.finish())
}

fn softmax_forward<E: Dtype, D: SoftmaxKernel<E>>(
    device: &D,
    kind: SoftmaxKind,
    input: &Host<E>,
    axes: &[usize],
    unique: bool,
) -> Result<Vec<E>, Error> {
    let x = input.upload(device)?;
    let out = if unique {
        device.forward(kind, InputView::new(Input::Unique(x), input.layout), axes)?
    } else {
        device.forward(kind, InputView::new(Input::Shared(&x), input.layout), axes)?
    };
    device.try_to_host(&out)
}

fn softmax_backward<E: Dtype, D: SoftmaxKernel<E>>(
    device: &D,
    kind: SoftmaxKind,
    grad: &Host<E>,
    axes: &[usize],
    output: &[E],
    grad_output: &[E],
) -> Attempt<E> {
    with_buffer(device, &grad.data, |buffer| {
        let (y, go) = (upload(device, output)?, upload(device, grad_output)?);
        device.backward(kind, ViewMut::new(buffer, grad.layout), axes, &y, &go)
    })
}

/// Softmax and log-softmax along every set of axes, of inputs in every placement
/// holding special values, and rows all −∞, with +∞ and with NaN; forward with a shared
/// and a unique input, backward into an existing gradient through the input's
/// placement (a broadcast one accumulates). Bad arguments: an input past its buffer,
/// an axis out of range, a gradient past its buffer, a short output.
///
/// # Errors
/// The first case where `device` disagrees with the CPU.
pub fn softmax_kernel<E: Dtype, D: SoftmaxKernel<E>>(device: &D, tolerance: Tolerance) -> Result<Report, Failure>
where
    Cpu: SoftmaxKernel<E>,
{
    let cpu = Cpu::default();
    let mut family = Family::new("softmax", tolerance);
    let mut random = Random::new(11);
    for (input, axes) in reduction_cases::<E>(&mut random, Values::Specials) {
        for kind in [SoftmaxKind::Softmax, SoftmaxKind::LogSoftmax] {
            let case = format!("{} along axes {axes:?} of {}", kind.name(), input.describe());
            let forward = format!("{} forward", kind.name());
            for unique in [false, true] {
                let case = format!("{case}, input {}", if unique { "unique" } else { "shared" });
                family.check(
                    &forward,
                    &case,
                    softmax_forward(&cpu, kind, &input, &axes, unique),
                    softmax_forward(device, kind, &input, &axes, unique),
                )?;
            }
            let output = family.reference(&forward, &case, softmax_forward(&cpu, kind, &input, &axes, false))?;
            let grad_output = random.values::<E>(output.len(), Values::Finite);
            let grad = Host {
                data: random.values::<E>(input.data.len(), Values::Finite),
                ..input.clone()
            };
            let case = format!("{case}, gradient {}", grad.describe());
            let backward = format!("{} backward", kind.name());
            family.check(
                &backward,
                &case,
                succeeded(softmax_backward(&cpu, kind, &grad, &axes, &output, &grad_output)),
                succeeded(softmax_backward(device, kind, &grad, &axes, &output, &grad_output)),
            )?;
        }
    }
    let input = Host::contiguous(&[2, 3], (0..6).map(|i| E::from_f64(i as f64)).collect());
    let past = Host {
        layout: past_the_end(),
        placement: "past the end",
        ..input.clone()
    };
    for (input, axes) in [(&past, &[1][..]), (&input, &[3])] {
        for unique in [false, true] {
            let case = format!("softmax along axes {axes:?} of {}, unique {unique}", input.describe());
            family.refusal(
                "softmax forward",
                &case,
                softmax_forward(&cpu, SoftmaxKind::Softmax, input, axes, unique),
                softmax_forward(device, SoftmaxKind::Softmax, input, axes, unique),
            )?;
        }
    }
    let six = vec![E::ONE; 6];
    for (grad, output) in [(&past, &six[..]), (&input, &six[..4])] {
        let case = format!(
            "log_softmax along axes [1], gradient {}, output of {}",
            grad.describe(),
            output.len()
        );
        let kind = SoftmaxKind::LogSoftmax;
        let (reference, _) = softmax_backward(&cpu, kind, grad, &[1], output, &six);
        let (actual, after) = softmax_backward(device, kind, grad, &[1], output, &six);
        family.refusal("log_softmax backward", &case, reference, actual)?;
        family.unchanged("log_softmax backward", &case, &grad.data, &after)?;
    }
    Ok(family.finish())
}
