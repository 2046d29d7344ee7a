//! Pooling and upsampling.

use super::check::{Failure, Family, Report, Tolerance};
use super::compare::succeeded;
use super::inputs::{Host, Placement, Random, Values, contiguous, upload};
use ferrograd_cpu::Cpu;
use ferrograd_device::ops::pool::{AdaptivePool2dSpec, Pool2dKernel, Pool2dParams, Pool2dSpec, PoolOp};
use ferrograd_device::ops::upsample::{Interpolation, Upsample2dKernel, Upsample2dSpec, UpsampleSize};
use ferrograd_device::{Dtype, Error, Layout, View, ViewMut};

/// Every placement of a rank-4 input: the element-wise ones and channels-last.
const IMAGES: [Placement; 7] = [
    Placement::CONTIGUOUS,
    Placement::PERMUTED,
    Placement::SLICED,
    Placement::BROADCAST_LEADING,
    Placement::BROADCAST_TRAILING,
    Placement::MIXED,
    Placement::CHANNELS_LAST,
];

fn params(
    kernel: [usize; 2],
    stride: [usize; 2],
    padding: [usize; 2],
    dilation: [usize; 2],
    ceil_mode: bool,
    count_include_pad: bool,
) -> Pool2dParams {
    Pool2dParams {
        kernel,
        stride,
        padding,
        dilation,
        ceil_mode,
        count_include_pad,
    }
}

/// Poolings: windows overlapping and not, padding, dilation, ceil mode (with a last
/// window kept and one dropped), averages with and without the padding counted, 1-d
/// poolings, a 2 × 2 window of stride 2 (the CPU's fast path) over an odd height, and a
/// 1 × 1 image.
fn pool_specs() -> Vec<Pool2dSpec> {
    let specs = [
        (
            PoolOp::MaxPool2d,
            [2, 3, 7, 6],
            params([3, 2], [2, 2], [1, 1], [1, 1], false, true),
        ),
        (
            PoolOp::MaxPool2d,
            [1, 2, 6, 5],
            params([3, 2], [2, 2], [0, 1], [1, 1], true, true),
        ),
        (
            PoolOp::MaxPool2d,
            [1, 2, 7, 7],
            params([2, 3], [1, 2], [1, 1], [2, 2], false, true),
        ),
        (
            PoolOp::MaxPool2d,
            [1, 1, 1, 1],
            params([1, 1], [1, 1], [0, 0], [1, 1], false, true),
        ),
        (
            PoolOp::MaxPool2d,
            [2, 2, 9, 8],
            params([2, 2], [2, 2], [0, 0], [1, 1], false, true),
        ),
        (
            PoolOp::MaxPool1d,
            [2, 3, 1, 9],
            params([1, 3], [1, 2], [0, 1], [1, 1], false, true),
        ),
        (
            PoolOp::MaxPool1d,
            [1, 2, 1, 10],
            params([1, 4], [1, 3], [0, 2], [1, 2], true, true),
        ),
        (
            PoolOp::AvgPool2d,
            [2, 3, 7, 6],
            params([3, 3], [2, 2], [1, 1], [1, 1], false, true),
        ),
        (
            PoolOp::AvgPool2d,
            [2, 3, 7, 6],
            params([3, 3], [2, 2], [1, 1], [1, 1], false, false),
        ),
        (
            PoolOp::AvgPool2d,
            [1, 2, 6, 5],
            params([3, 2], [2, 2], [1, 1], [1, 1], true, false),
        ),
        (
            PoolOp::AvgPool2d,
            [1, 2, 6, 5],
            params([3, 2], [2, 2], [1, 1], [1, 1], true, true),
        ),
        (
            PoolOp::AvgPool2d,
            [2, 2, 9, 8],
            params([2, 2], [2, 2], [0, 0], [1, 1], false, true),
        ),
        (
            PoolOp::AvgPool2d,
            [1, 1, 1, 1],
            params([1, 1], [1, 1], [0, 0], [1, 1], false, true),
        ),
        (
            PoolOp::AvgPool1d,
            [1, 2, 1, 10],
            params([1, 4], [1, 3], [0, 2], [1, 1], true, false),
        ),
        (
            PoolOp::AvgPool1d,
            [2, 1, 1, 7],
            params([1, 3], [1, 1], [0, 1], [1, 1], false, true),
        ),
    ];
    specs
        .into_iter()
        .map(|(op, input, params)| Pool2dSpec::new(op, input, params).expect("the suite's poolings are valid"))
        .collect()
}

/// Which pass of a pooling runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Pass {
    Forward,
    /// Added into an existing gradient.
    Backward,
    /// `max_pool2d_backward_new`: the first gradient, a new buffer.
    BackwardNew,
}

fn pool_run<E: Dtype, D: Pool2dKernel<E>>(
    device: &D,
    spec: &Pool2dSpec,
    pass: Pass,
    input: &Host<E>,
    grad: &Host<E>,
    grad_output: &[E],
) -> (Result<(), Error>, Vec<E>) {
    let attempt = || -> Result<(Result<(), Error>, Vec<E>), Error> {
        let x = input.upload(device)?;
        let go = upload(device, grad_output)?;
        let view = View::new(&x, input.layout);
        let new = match (pass, spec.op.is_max()) {
            (Pass::Forward, true) => Some(device.max_pool2d_forward(spec, view)),
            (Pass::Forward, false) => Some(device.avg_pool2d_forward(spec, view)),
            (Pass::BackwardNew, _) => Some(device.max_pool2d_backward_new(spec, view, &go)),
            (Pass::Backward, _) => None,
        };
        if let Some(new) = new {
            return Ok(match new {
                Ok(out) => (Ok(()), device.try_to_host(&out)?),
                Err(error) => (Err(error), Vec::new()),
            });
        }
        let mut g = grad.upload(device)?;
        let grad_view = ViewMut::new(&mut g, grad.layout);
        let result = if spec.op.is_max() {
            device.max_pool2d_backward(spec, view, &go, grad_view)
        } else {
            device.avg_pool2d_backward(spec, &go, grad_view)
        };
        Ok((result, device.try_to_host(&g)?))
    };
    let unchanged = if pass == Pass::Backward {
        grad.data.clone()
    } else {
        Vec::new()
    };
    attempt().unwrap_or_else(|error| (Err(error), unchanged))
}

fn adaptive_run<E: Dtype, D: Pool2dKernel<E>>(
    device: &D,
    spec: &AdaptivePool2dSpec,
    backward: bool,
    input: &Host<E>,
    grad: &Host<E>,
    grad_output: &[E],
) -> (Result<(), Error>, Vec<E>) {
    let attempt = || -> Result<(Result<(), Error>, Vec<E>), Error> {
        if !backward {
            let x = input.upload(device)?;
            return Ok(
                match device.adaptive_avg_pool2d_forward(spec, View::new(&x, input.layout)) {
                    Ok(out) => (Ok(()), device.try_to_host(&out)?),
                    Err(error) => (Err(error), Vec::new()),
                },
            );
        }
        let go = upload(device, grad_output)?;
        let mut g = grad.upload(device)?;
        let result = device.adaptive_avg_pool2d_backward(spec, &go, ViewMut::new(&mut g, grad.layout));
        Ok((result, device.try_to_host(&g)?))
    };
    let unchanged = if backward { grad.data.clone() } else { Vec::new() };
    attempt().unwrap_or_else(|error| (Err(error), unchanged))
}

/// Max and average poolings, 2-d and 1-d (see the specs: overlapping windows,
/// padding, dilation, ceil mode, the padding counted in an average or not), of inputs
/// in every placement, channels-last included; max pooling on values that tie and hold
/// NaN and ±∞ (the gradient goes to the first maximum, or the last NaN). Forward;
/// backward added into an existing gradient placed as the input (a broadcast one
/// accumulates); `max_pool2d_backward_new`. Adaptive average pooling to larger,
/// smaller, 1 × 1 and empty outputs, forward and backward. Bad arguments: an input past
/// its buffer, a gradient too short, an output gradient of the wrong length, a spec
/// changed by hand, an input of other dims than the spec's (a gradient must be left as
/// it was).
///
/// # Errors
/// The first case where `device` disagrees with the CPU.
pub fn pool2d_kernel<E: Dtype, D: Pool2dKernel<E>>(device: &D, tolerance: Tolerance) -> Result<Report, Failure>
where
    Cpu: Pool2dKernel<E>,
{
    let cpu = Cpu::default();
    let mut family = Family::new("pool2d", tolerance);
    let mut random = Random::new(21);
    for spec in pool_specs() {
        let values = if spec.op.is_max() {
            Values::TiesNan
        } else {
            Values::Specials
        };
        for placement in IMAGES {
            let input = random.tensor::<E>(placement, &spec.input_dims(), values);
            let grad = Host {
                data: random.values(input.data.len(), Values::Finite),
                ..input.clone()
            };
            let grad_output = random.values::<E>(spec.output_dims().iter().product(), Values::Finite);
            let mut passes = vec![Pass::Forward, Pass::Backward];
            if spec.op.is_max() {
                passes.push(Pass::BackwardNew);
            }
            for pass in passes {
                let case = format!("{spec:?}, {pass:?}, input {}", input.describe());
                family.check(
                    &format!("{} {pass:?}", spec.op.name()),
                    &case,
                    succeeded(pool_run(&cpu, &spec, pass, &input, &grad, &grad_output)),
                    succeeded(pool_run(device, &spec, pass, &input, &grad, &grad_output)),
                )?;
            }
        }
    }
    let adaptive = [
        ([2, 3, 7, 5], [3, 5]),
        ([1, 2, 4, 4], [1, 1]),
        ([1, 1, 3, 3], [5, 7]),
        ([1, 2, 5, 5], [0, 3]),
        ([1, 2, 6, 9], [4, 4]),
    ];
    for (input_dims, output) in adaptive {
        let spec = AdaptivePool2dSpec::new(input_dims, output).expect("the suite's adaptive poolings are valid");
        for placement in IMAGES {
            let input = random.tensor::<E>(placement, &input_dims, Values::Specials);
            let grad = Host {
                data: random.values(input.data.len(), Values::Finite),
                ..input.clone()
            };
            let grad_output = random.values::<E>(spec.output_dims().iter().product(), Values::Finite);
            for backward in [false, true] {
                let case = format!("{spec:?}, backward {backward}, input {}", input.describe());
                family.check(
                    "adaptive_avg_pool2d",
                    &case,
                    succeeded(adaptive_run(&cpu, &spec, backward, &input, &grad, &grad_output)),
                    succeeded(adaptive_run(device, &spec, backward, &input, &grad, &grad_output)),
                )?;
            }
        }
    }

    // The refusals of the CPU's bad-layout tests.
    let spec = Pool2dSpec::new(
        PoolOp::MaxPool2d,
        [1, 2, 4, 4],
        params([2, 2], [2, 2], [0, 0], [1, 1], false, true),
    )
    .expect("a valid pooling");
    let average = Pool2dSpec {
        op: PoolOp::AvgPool2d,
        ..spec
    };
    let tampered = Pool2dSpec { out_height: 3, ..spec };
    let input = Host::contiguous(&[1, 2, 4, 4], random.values::<E>(32, Values::Finite));
    let input_past = Host {
        layout: Layout::from_parts(&[1, 2, 4, 4], &[32, 17, 4, 1]),
        placement: "past the end",
        ..input.clone()
    };
    let short = Host {
        data: vec![E::ZERO; 31],
        ..input.clone()
    };
    let (eight, nine) = (&[E::ONE; 8][..], &[E::ONE; 9][..]);
    let cases = [
        (&spec, Pass::Forward, &input_past, &input, eight),
        (&spec, Pass::Backward, &input, &short, eight),
        (&spec, Pass::BackwardNew, &input, &input, nine),
        (&average, Pass::Backward, &input, &input, nine),
        (&tampered, Pass::Forward, &input, &input, eight),
    ];
    for (spec, pass, input, grad, grad_output) in cases {
        let case = format!(
            "{spec:?}, {pass:?}, input {}, gradient {}, output gradient of {}",
            input.describe(),
            grad.describe(),
            grad_output.len()
        );
        let kernel = format!("{} {pass:?}", spec.op.name());
        let (reference, _) = pool_run(&cpu, spec, pass, input, grad, grad_output);
        let (actual, after) = pool_run(device, spec, pass, input, grad, grad_output);
        family.refusal(&kernel, &case, reference, actual)?;
        if pass == Pass::Backward {
            family.unchanged(&kernel, &case, &grad.data, &after)?;
        }
    }
    let adaptive = AdaptivePool2dSpec::new([1, 2, 4, 4], [3, 3]).expect("a valid adaptive pooling");
    let other_dims = Host {
        layout: contiguous(&[1, 2, 4, 5]),
        data: vec![E::ONE; 40],
        placement: "other dims",
    };
    let empty_spec = AdaptivePool2dSpec {
        in_width: 0,
        ..adaptive
    };
    let empty = Host::contiguous(&[1, 2, 4, 0], Vec::new());
    for (spec, input) in [(&adaptive, &other_dims), (&empty_spec, &empty)] {
        let case = format!("{spec:?}, input {}", input.describe());
        family.refusal(
            "adaptive_avg_pool2d",
            &case,
            adaptive_run(&cpu, spec, false, input, input, &[]).0,
            adaptive_run(device, spec, false, input, input, &[]).0,
        )?;
    }
    Ok(family.finish())
}

/// Upsamplings: nearest and bilinear (corners aligned or not), up and down, to a size
/// or by scale factors (which map positions by `1 / factor`), from and to 1 × 1.
fn upsample_specs() -> Vec<Upsample2dSpec> {
    let mut specs = Vec::new();
    let sizes: [([usize; 4], UpsampleSize); 7] = [
        ([1, 2, 3, 3], UpsampleSize::Size([5, 6])),
        ([1, 3, 5, 4], UpsampleSize::Scale([1.5, 2.0])),
        ([1, 1, 5, 5], UpsampleSize::Size([2, 5])),
        ([2, 2, 4, 4], UpsampleSize::Scale([0.5, 0.75])),
        ([1, 1, 1, 1], UpsampleSize::Size([3, 3])),
        ([1, 1, 4, 4], UpsampleSize::Size([1, 1])),
        ([1, 2, 3, 3], UpsampleSize::Scale([1.7, 0.6])),
    ];
    let modes = [
        Interpolation::Nearest,
        Interpolation::Bilinear { align_corners: false },
        Interpolation::Bilinear { align_corners: true },
    ];
    for (input, size) in sizes {
        for mode in modes {
            specs.push(Upsample2dSpec::new(input, size, mode).expect("the suite's upsamplings are valid"));
        }
    }
    specs
}

fn upsample_run<E: Dtype, D: Upsample2dKernel<E>>(
    device: &D,
    spec: &Upsample2dSpec,
    backward: bool,
    input: &Host<E>,
    grad_output: &[E],
) -> (Result<(), Error>, Vec<E>) {
    let attempt = || -> Result<(Result<(), Error>, Vec<E>), Error> {
        if !backward {
            let x = input.upload(device)?;
            return Ok(match device.upsample2d_forward(spec, View::new(&x, input.layout)) {
                Ok(out) => (Ok(()), device.try_to_host(&out)?),
                Err(error) => (Err(error), Vec::new()),
            });
        }
        let go = upload(device, grad_output)?;
        let mut g = input.upload(device)?;
        let result = device.upsample2d_backward(spec, &go, ViewMut::new(&mut g, input.layout));
        Ok((result, device.try_to_host(&g)?))
    };
    let unchanged = if backward { input.data.clone() } else { Vec::new() };
    attempt().unwrap_or_else(|error| (Err(error), unchanged))
}

/// Nearest and bilinear upsampling (corners aligned and not), up and down, to a size
/// and by scale factors, from and to 1 × 1, of inputs in every placement with special
/// values; backward added into an existing gradient placed as the input (a broadcast
/// one accumulates). Bad arguments: an input past its buffer, an output gradient of the
/// wrong length (the gradient must be left as it was), a spec changed by hand.
///
/// # Errors
/// The first case where `device` disagrees with the CPU.
pub fn upsample2d_kernel<E: Dtype, D: Upsample2dKernel<E>>(device: &D, tolerance: Tolerance) -> Result<Report, Failure>
where
    Cpu: Upsample2dKernel<E>,
{
    let cpu = Cpu::default();
    let mut family = Family::new("upsample2d", tolerance);
    let mut random = Random::new(22);
    for spec in upsample_specs() {
        for placement in IMAGES {
            let input = random.tensor::<E>(placement, &spec.input_dims(), Values::Specials);
            let grad_output = random.values::<E>(spec.output_dims().iter().product(), Values::Finite);
            for backward in [false, true] {
                let case = format!("{spec:?}, backward {backward}, input {}", input.describe());
                family.check(
                    if backward {
                        "upsample2d backward"
                    } else {
                        "upsample2d forward"
                    },
                    &case,
                    succeeded(upsample_run(&cpu, &spec, backward, &input, &grad_output)),
                    succeeded(upsample_run(device, &spec, backward, &input, &grad_output)),
                )?;
            }
        }
    }
    let spec = Upsample2dSpec::new(
        [1, 2, 3, 3],
        UpsampleSize::Scale([2.0, 2.0]),
        Interpolation::Bilinear { align_corners: false },
    )
    .expect("a valid upsampling");
    let input = Host::contiguous(&[1, 2, 3, 3], random.values::<E>(18, Values::Finite));
    let past = Host {
        layout: input.layout.with_offset(2),
        placement: "past the end",
        ..input.clone()
    };
    let tampered = Upsample2dSpec { in_height: 2, ..spec };
    let smaller = Host::contiguous(&[1, 2, 2, 3], random.values::<E>(12, Values::Finite));
    let (seventy_one, seventy_two) = (vec![E::ONE; 71], vec![E::ONE; 72]);
    let cases: [(&Upsample2dSpec, bool, &Host<E>, &[E]); 3] = [
        (&spec, false, &past, &seventy_two),
        (&spec, true, &input, &seventy_one),
        (&tampered, false, &smaller, &seventy_two),
    ];
    for (spec, backward, input, grad_output) in cases {
        let case = format!(
            "{spec:?}, backward {backward}, input {}, output gradient of {}",
            input.describe(),
            grad_output.len()
        );
        let kernel = if backward {
            "upsample2d backward"
        } else {
            "upsample2d forward"
        };
        let (reference, _) = upsample_run(&cpu, spec, backward, input, grad_output);
        let (actual, after) = upsample_run(device, spec, backward, input, grad_output);
        family.refusal(kernel, &case, reference, actual)?;
        if backward {
            family.unchanged(kernel, &case, &input.data, &after)?;
        }
    }
    Ok(family.finish())
}
