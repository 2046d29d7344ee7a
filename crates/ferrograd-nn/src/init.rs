//! PyTorch's default initialisations, drawn from the device's generator.

use ferrograd_autodiff::{SampleTensor, Tensor};
use ferrograd_device::{Dtype, Error, SampleKernel};
use ferrograd_shapes::{Dim, Shape};
use rand::Rng;
use rand::distr::Distribution;

/// Uniform values in `[low, high)`, for any dtype (drawn in f64, then rounded).
#[derive(Clone, Copy, Debug)]
pub(crate) struct UniformRange {
    low: f64,
    high: f64,
}

impl<E: Dtype> Distribution<E> for UniformRange {
    fn sample<R: Rng + ?Sized>(&self, rng: &mut R) -> E {
        let unit: f64 = rand::distr::StandardUniform.sample(rng);
        E::from_f64(self.low + (self.high - self.low) * unit)
    }
}

/// `U(-bound, bound)` in `shape`: PyTorch's default for a Linear or Conv weight
/// (`kaiming_uniform_` with `a = √5`, which comes to `bound = 1/√fan_in`) and bias
/// (`bound = 1/√fan_in`), where `fan_in` is the number of inputs of one output.
pub(crate) fn uniform_by_fan_in<S: Shape, E: Dtype, D: SampleKernel<E>>(
    device: &D,
    shape: &S,
    fan_in: usize,
) -> Result<Tensor<S, E, D>, Error> {
    // PyTorch gives an empty layer a zero bound rather than dividing by zero.
    let bound = if fan_in == 0 { 0.0 } else { 1.0 / (fan_in as f64).sqrt() };
    device.try_sample_like(
        shape,
        UniformRange {
            low: -bound,
            high: bound,
        },
    )
}

/// A layer's `weight` of `weight_shape` and, when `with_bias`, its `bias` of `(outputs,)`,
/// both PyTorch's default for Linear and convolution layers: `U(-1/√fan_in, 1/√fan_in)`
/// with `fan_in` the product of the weight's dims after the first (a Linear's inputs,
/// a convolution's channels per group times its kernel taps, a transposed
/// convolution's output channels per group times its taps, as PyTorch computes it).
#[allow(clippy::type_complexity)] // a weight and an optional bias
pub(crate) fn weight_and_bias<S: Shape, O: Dim, E: Dtype, D: SampleKernel<E>>(
    device: &D,
    weight_shape: &S,
    outputs: O,
    with_bias: bool,
) -> Result<(Tensor<S, E, D>, Option<Tensor<(O,), E, D>>), Error> {
    let dims = weight_shape.concrete();
    let fan_in = dims.as_ref()[1..].iter().product();
    let weight = uniform_by_fan_in(device, weight_shape, fan_in)?;
    let bias = match with_bias {
        true => Some(uniform_by_fan_in(device, &(outputs,), fan_in)?),
        false => None,
    };
    Ok((weight, bias))
}
