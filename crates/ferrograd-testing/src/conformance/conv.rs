//! 2-d convolutions and transposed convolutions.

use super::check::{Failure, Family, Report, Tolerance};
use super::compare::succeeded;
use super::inputs::{Host, Placement, Random, Values, upload};
use ferrograd_cpu::Cpu;
use ferrograd_device::ops::conv::{Conv2dKernel, Conv2dSpec, Padding};
use ferrograd_device::ops::conv_transpose::{
    ConvTranspose2dSpec, conv_transpose2d_backward_bias, conv_transpose2d_backward_input,
    conv_transpose2d_backward_weight, conv_transpose2d_forward,
};
use ferrograd_device::ops::copy::CopyKernel;
use ferrograd_device::{Dtype, Error, Layout, Storage, View, ViewMut};

/// Placements for (input, weight, bias); each operand's gradient is placed as the
/// operand.
const OPERANDS: [(Placement, Placement, Placement); 6] = [
    (Placement::CONTIGUOUS, Placement::CONTIGUOUS, Placement::CONTIGUOUS),
    (Placement::CHANNELS_LAST, Placement::PERMUTED, Placement::SLICED),
    (
        Placement::SLICED,
        Placement::CHANNELS_LAST,
        Placement::BROADCAST_LEADING,
    ),
    (Placement::PERMUTED, Placement::SLICED, Placement::CONTIGUOUS),
    (Placement::BROADCAST_LEADING, Placement::CONTIGUOUS, Placement::PERMUTED),
    (Placement::MIXED, Placement::MIXED, Placement::MIXED),
];

/// Convolutions: a 1 × 1 image, strides, symmetric, "same" and one-sided padding,
/// dilation, groups, depthwise (padded and dilated), a pointwise kernel, an empty
/// batch, and images large enough for the CPU's shifted-window GEMM.
fn conv_specs() -> Vec<Conv2dSpec> {
    let explicit = Padding::Explicit {
        top: 0,
        bottom: 1,
        left: 2,
        right: 0,
    };
    let specs = [
        ([1, 1, 1, 1], [1, 1, 1, 1], [1, 1], Padding::Valid, [1, 1], 1),
        ([2, 3, 7, 9], [5, 3, 3, 3], [2, 1], Padding::Symmetric(1, 2), [1, 1], 1),
        ([1, 4, 8, 8], [4, 1, 3, 3], [1, 1], Padding::Valid, [2, 2], 4),
        ([1, 2, 5, 6], [2, 2, 4, 2], [1, 1], Padding::Same, [2, 1], 1),
        ([2, 4, 5, 5], [6, 2, 2, 3], [2, 3], explicit, [1, 1], 2),
        ([1, 3, 6, 5], [4, 3, 1, 1], [1, 1], Padding::Valid, [1, 1], 1),
        ([0, 2, 4, 4], [3, 2, 3, 3], [1, 1], Padding::Symmetric(1, 1), [1, 1], 1),
        ([2, 8, 6, 7], [8, 1, 3, 3], [1, 1], Padding::Symmetric(1, 1), [1, 1], 8),
        (
            [2, 3, 12, 16],
            [4, 3, 3, 3],
            [1, 1],
            Padding::Symmetric(1, 1),
            [1, 1],
            1,
        ),
        ([1, 3, 33, 7], [2, 3, 3, 3], [1, 1], Padding::Valid, [1, 1], 1),
    ];
    specs
        .into_iter()
        .map(|(input, weight, stride, padding, dilation, groups)| {
            Conv2dSpec::new(input, weight, stride, padding, dilation, groups)
                .expect("the suite's convolutions are valid")
        })
        .collect()
}

/// A conv's (or transposed conv's) operands on the host.
struct Operands<E> {
    input: Host<E>,
    weight: Host<E>,
    bias: Host<E>,
}

impl<E: Dtype> Operands<E> {
    fn new(
        random: &mut Random,
        placements: (Placement, Placement, Placement),
        dims: [[usize; 4]; 2],
        channels: usize,
    ) -> Self {
        let (input, weight, bias) = placements;
        Self {
            input: random.tensor(input, &dims[0], Values::Finite),
            weight: random.tensor(weight, &dims[1], Values::Finite),
            bias: random.tensor(bias, &[channels], Values::Finite),
        }
    }

    fn describe(&self) -> String {
        format!(
            "input {}, weight {}, bias {}",
            self.input.describe(),
            self.weight.describe(),
            self.bias.describe()
        )
    }

    /// The same operands holding new random values: existing gradients to add into.
    fn gradients(&self, random: &mut Random) -> Self {
        let refill = |random: &mut Random, host: &Host<E>| Host {
            data: random.values(host.data.len(), Values::Finite),
            ..host.clone()
        };
        Self {
            input: refill(random, &self.input),
            weight: refill(random, &self.weight),
            bias: refill(random, &self.bias),
        }
    }
}

/// Which pass of a convolution runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Pass {
    Forward { bias: bool },
    BackwardInput,
    BackwardWeight,
    BackwardBias,
}

impl Pass {
    const ALL: [Pass; 5] = [
        Pass::Forward { bias: false },
        Pass::Forward { bias: true },
        Pass::BackwardInput,
        Pass::BackwardWeight,
        Pass::BackwardBias,
    ];

    fn name(self) -> &'static str {
        match self {
            Pass::Forward { .. } => "forward",
            Pass::BackwardInput => "backward_input",
            Pass::BackwardWeight => "backward_weight",
            Pass::BackwardBias => "backward_bias",
        }
    }
}

/// Runs one pass: the forward output, or the gradient buffer after the backward pass
/// added into it (an `Err` with that buffer as it was when refused).
fn conv_run<E: Dtype, D: Conv2dKernel<E>>(
    device: &D,
    spec: &Conv2dSpec,
    pass: Pass,
    operands: &Operands<E>,
    grads: &Operands<E>,
    grad_output: &[E],
) -> (Result<(), Error>, Vec<E>) {
    let grad = match pass {
        Pass::Forward { .. } => None,
        Pass::BackwardInput => Some(&grads.input),
        Pass::BackwardWeight => Some(&grads.weight),
        Pass::BackwardBias => Some(&grads.bias),
    };
    let attempt = || -> Result<(Result<(), Error>, Vec<E>), Error> {
        let x = operands.input.upload(device)?;
        let w = operands.weight.upload(device)?;
        let b = operands.bias.upload(device)?;
        let go = upload(device, grad_output)?;
        let (input, weight) = (
            View::new(&x, operands.input.layout),
            View::new(&w, operands.weight.layout),
        );
        if let Pass::Forward { bias } = pass {
            let bias = bias.then(|| View::new(&b, operands.bias.layout));
            return Ok(match device.conv2d_forward(spec, input, weight, bias) {
                Ok(out) => (Ok(()), device.try_to_host(&out)?),
                Err(error) => (Err(error), Vec::new()),
            });
        }
        let grad = grad.expect("a backward pass has a gradient");
        let mut g = grad.upload(device)?;
        let grad_view = ViewMut::new(&mut g, grad.layout);
        let result = match pass {
            Pass::BackwardInput => device.conv2d_backward_input(spec, weight, &go, grad_view),
            Pass::BackwardWeight => device.conv2d_backward_weight(spec, input, &go, grad_view),
            _ => device.conv2d_backward_bias(spec, &go, grad_view),
        };
        Ok((result, device.try_to_host(&g)?))
    };
    attempt().unwrap_or_else(|error| (Err(error), grad.map_or_else(Vec::new, |grad| grad.data.clone())))
}

/// Convolutions with strides, symmetric, "same" and one-sided padding, dilation,
/// groups, depthwise and pointwise kernels, an empty batch and a 1 × 1 image; the
/// input contiguous, channels-last, sliced, permuted, broadcast over the batch, or
/// all at once, and the weight and bias likewise. Forward with and without a bias;
/// the gradients of the input, the weight and the bias, each added into an existing
/// gradient placed as its operand (a broadcast one accumulates). Bad arguments: an
/// input past its buffer, a weight of the wrong dims, a spec changed by hand, a short
/// output gradient, a gradient past its buffer (left as it was).
///
/// # Errors
/// The first case where `device` disagrees with the CPU.
pub fn conv2d_kernel<E: Dtype, D: Conv2dKernel<E>>(device: &D, tolerance: Tolerance) -> Result<Report, Failure>
where
    Cpu: Conv2dKernel<E>,
{
    let cpu = Cpu::default();
    let mut family = Family::new("conv2d", tolerance);
    let mut random = Random::new(19);
    for spec in conv_specs() {
        for placements in OPERANDS {
            let dims = [spec.input_dims(), spec.weight_dims()];
            let operands = Operands::<E>::new(&mut random, placements, dims, spec.out_channels);
            let grads = operands.gradients(&mut random);
            let grad_output = random.values::<E>(spec.output_dims().iter().product(), Values::Finite);
            for pass in Pass::ALL {
                let case = format!("{spec:?}, {pass:?}, {}", operands.describe());
                family.check(
                    &format!("conv2d {}", pass.name()),
                    &case,
                    succeeded(conv_run(&cpu, &spec, pass, &operands, &grads, &grad_output)),
                    succeeded(conv_run(device, &spec, pass, &operands, &grads, &grad_output)),
                )?;
            }
        }
    }

    // The refusals of the CPU's bad-layout tests: each operand wrong in one way.
    let spec =
        Conv2dSpec::new([2, 3, 5, 5], [4, 3, 3, 3], [1, 1], Padding::Valid, [1, 1], 1).expect("a valid convolution");
    let placements = (Placement::CONTIGUOUS, Placement::CONTIGUOUS, Placement::CONTIGUOUS);
    let operands = Operands::<E>::new(&mut random, placements, [spec.input_dims(), spec.weight_dims()], 4);
    let grads = operands.gradients(&mut random);
    let grad_output = random.values::<E>(72, Values::Finite);
    let mut input_past = operands.gradients(&mut random);
    input_past.input.layout = operands.input.layout.with_offset(1);
    input_past.input.placement = "past the end";
    let mut weight_other_dims = operands.gradients(&mut random);
    weight_other_dims.weight = Host::contiguous(&[4, 3, 3, 2], operands.weight.data[..72].to_vec());
    let mut short_weight_grad = grads.gradients(&mut random);
    short_weight_grad.weight.data.truncate(107);
    let mut bias_grad_past = grads.gradients(&mut random);
    bias_grad_past.bias.layout = Layout::from_parts(&[4], &[2]);
    bias_grad_past.bias.placement = "past the end";
    let tampered = Conv2dSpec { out_height: 4, ..spec };
    let grad_output = &grad_output[..];
    let cases = [
        (&spec, Pass::Forward { bias: false }, &input_past, &grads, grad_output),
        (
            &spec,
            Pass::Forward { bias: true },
            &weight_other_dims,
            &grads,
            grad_output,
        ),
        (&tampered, Pass::Forward { bias: false }, &operands, &grads, grad_output),
        (&spec, Pass::BackwardInput, &operands, &grads, &grad_output[..71]),
        (&spec, Pass::BackwardWeight, &operands, &short_weight_grad, grad_output),
        (&spec, Pass::BackwardBias, &operands, &bias_grad_past, grad_output),
    ];
    for (spec, pass, operands, grads, grad_output) in cases {
        let case = format!(
            "{spec:?}, {pass:?}, {}, output gradient of {}, gradients {}",
            operands.describe(),
            grad_output.len(),
            grads.describe()
        );
        let kernel = format!("conv2d {}", pass.name());
        let (reference, _) = conv_run(&cpu, spec, pass, operands, grads, grad_output);
        let (actual, after) = conv_run(device, spec, pass, operands, grads, grad_output);
        family.refusal(&kernel, &case, reference, actual)?;
        let before = match pass {
            Pass::Forward { .. } => &[][..],
            Pass::BackwardInput => &grads.input.data[..],
            Pass::BackwardWeight => &grads.weight.data[..],
            Pass::BackwardBias => &grads.bias.data[..],
        };
        family.unchanged(&kernel, &case, before, &after)?;
    }
    Ok(family.finish())
}

/// Transposed convolutions: strides with output padding, output padding past every
/// kernel tap (allowed below the dilation), groups, depthwise, a 1 × 1 image.
fn conv_transpose_specs() -> Vec<ConvTranspose2dSpec> {
    let specs = [
        ([2, 4, 3, 4], [4, 3, 3, 2], [2, 1], [1, 0], [1, 0], [1, 1], 2),
        ([1, 1, 4, 4], [1, 1, 2, 2], [1, 1], [0, 0], [2, 0], [3, 1], 1),
        ([1, 2, 2, 2], [2, 1, 3, 3], [3, 3], [1, 1], [2, 2], [1, 1], 1),
        ([1, 3, 4, 4], [3, 2, 3, 3], [2, 2], [1, 1], [0, 0], [1, 1], 1),
        ([2, 2, 1, 1], [2, 2, 1, 1], [1, 1], [0, 0], [0, 0], [1, 1], 1),
        ([1, 4, 5, 5], [4, 1, 3, 3], [1, 1], [1, 1], [0, 0], [1, 1], 4),
    ];
    specs
        .into_iter()
        .map(|(input, weight, stride, padding, output_padding, dilation, groups)| {
            ConvTranspose2dSpec::new(input, weight, stride, padding, output_padding, dilation, groups)
                .expect("the suite's transposed convolutions are valid")
        })
        .collect()
}

/// As [`conv_run`], for the transposed convolution's functions.
fn conv_transpose_run<E: Dtype, D: Conv2dKernel<E> + CopyKernel<E>>(
    device: &D,
    spec: &ConvTranspose2dSpec,
    pass: Pass,
    operands: &Operands<E>,
    grads: &Operands<E>,
    grad_output: &[E],
) -> (Result<(), Error>, Vec<E>) {
    let grad = match pass {
        Pass::Forward { .. } => None,
        Pass::BackwardInput => Some(&grads.input),
        Pass::BackwardWeight => Some(&grads.weight),
        Pass::BackwardBias => Some(&grads.bias),
    };
    let attempt = || -> Result<(Result<(), Error>, Vec<E>), Error> {
        let x = operands.input.upload(device)?;
        let w = operands.weight.upload(device)?;
        let b = operands.bias.upload(device)?;
        let go = upload(device, grad_output)?;
        let (input, weight) = (
            View::new(&x, operands.input.layout),
            View::new(&w, operands.weight.layout),
        );
        if let Pass::Forward { bias } = pass {
            let bias = bias.then(|| View::new(&b, operands.bias.layout));
            return Ok(match conv_transpose2d_forward(device, spec, input, weight, bias) {
                Ok(out) => (Ok(()), <D as Storage<E>>::try_to_host(device, &out)?),
                Err(error) => (Err(error), Vec::new()),
            });
        }
        let grad = grad.expect("a backward pass has a gradient");
        let mut g = grad.upload(device)?;
        let grad_view = ViewMut::new(&mut g, grad.layout);
        let result = match pass {
            Pass::BackwardInput => conv_transpose2d_backward_input(device, spec, weight, &go, grad_view),
            Pass::BackwardWeight => conv_transpose2d_backward_weight(device, spec, input, &go, grad_view),
            _ => conv_transpose2d_backward_bias(device, spec, &go, grad_view),
        };
        Ok((result, device.try_to_host(&g)?))
    };
    attempt().unwrap_or_else(|error| (Err(error), grad.map_or_else(Vec::new, |grad| grad.data.clone())))
}

/// The transposed convolution's functions of `ferrograd_device::ops::conv_transpose`,
/// which a device gets from its [`Conv2dKernel`] and [`CopyKernel`]: strides, output
/// padding (past every kernel tap too), dilation, groups, depthwise and a 1 × 1 image,
/// with operands placed as in [`conv2d_kernel`]; forward with and without a bias, and
/// the three gradients added into existing ones. Bad layout: an input past its buffer.
///
/// # Errors
/// The first case where `device` disagrees with the CPU.
pub fn conv_transpose2d<E: Dtype, D: Conv2dKernel<E> + CopyKernel<E>>(
    device: &D,
    tolerance: Tolerance,
) -> Result<Report, Failure>
where
    Cpu: Conv2dKernel<E> + CopyKernel<E>,
{
    let cpu = Cpu::default();
    let mut family = Family::new("conv_transpose2d", tolerance);
    let mut random = Random::new(20);
    for spec in conv_transpose_specs() {
        for placements in OPERANDS {
            let dims = [spec.input_dims(), spec.weight_dims()];
            let operands = Operands::<E>::new(&mut random, placements, dims, spec.out_channels);
            let grads = operands.gradients(&mut random);
            let grad_output = random.values::<E>(spec.output_dims().iter().product(), Values::Finite);
            for pass in Pass::ALL {
                let case = format!("{spec:?}, {pass:?}, {}", operands.describe());
                family.check(
                    &format!("conv_transpose2d {}", pass.name()),
                    &case,
                    succeeded(conv_transpose_run(&cpu, &spec, pass, &operands, &grads, &grad_output)),
                    succeeded(conv_transpose_run(device, &spec, pass, &operands, &grads, &grad_output)),
                )?;
            }
        }
    }
    let spec = ConvTranspose2dSpec::new([1, 3, 4, 4], [3, 2, 3, 3], [2, 2], [1, 1], [0, 0], [1, 1], 1)
        .expect("a valid transposed convolution");
    let placements = (Placement::CONTIGUOUS, Placement::CONTIGUOUS, Placement::CONTIGUOUS);
    let operands = Operands::<E>::new(&mut random, placements, [spec.input_dims(), spec.weight_dims()], 2);
    let mut input_past = operands.gradients(&mut random);
    input_past.input.layout = Layout::from_parts(&[1, 3, 4, 4], &[48, 16, 4, 2]);
    input_past.input.placement = "past the end";
    let grad_output = random.values::<E>(spec.output_dims().iter().product(), Values::Finite);
    let pass = Pass::Forward { bias: false };
    let case = format!("{spec:?}, {}", input_past.describe());
    let (reference, _) = conv_transpose_run(&cpu, &spec, pass, &input_past, &operands, &grad_output);
    let (actual, _) = conv_transpose_run(device, &spec, pass, &input_past, &operands, &grad_output);
    family.refusal("conv_transpose2d forward", &case, reference, actual)?;
    Ok(family.finish())
}
