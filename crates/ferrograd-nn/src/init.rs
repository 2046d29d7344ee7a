//! PyTorch's default initialisations, drawn from the device's generator.

use ferrograd_autodiff::{SampleTensor, Tensor};
use ferrograd_device::{Dtype, Error, SampleKernel};
use ferrograd_shapes::Shape;
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
