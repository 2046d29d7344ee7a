//! `Dropout`: zeroes elements at random in training, nothing at inference.

use crate::layers::activations::parameter_free_but_training;
use crate::module::{Module, ModuleMut};
use ferrograd_autodiff::{Tape, Tensor};
use ferrograd_device::ops::dropout::DropoutKernel;
use ferrograd_device::ops::elementwise::{BinaryKernel, Mul};
use ferrograd_device::{Dtype, Error, Storage};
use ferrograd_shapes::Shape;

/// In training ([`ModuleMut`]), each element is zeroed with probability `p` and the
/// others scaled by `1/(1 − p)`; at inference ([`Module`]) the input passes unchanged.
/// PyTorch's `nn.Dropout`, default `p = 0.5`. Draws from the device's generator.
///
/// ```
/// use ferrograd_cpu::Cpu;
/// use ferrograd_nn::prelude::*;
///
/// let dev = Cpu::seed_from_u64(0);
/// let mut dropout = Dropout { p: 0.25 };
/// let x: Tensor<Rank1<1000>, f32, Cpu> = dev.ones();
/// assert_eq!(dropout.forward(x.clone()).as_vec(), x.as_vec());
/// let kept = dropout.forward_mut(x).as_vec();
/// assert!(kept.iter().all(|&v| v == 0.0 || v == 1.0 / 0.75));
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Dropout {
    /// The probability that an element is zeroed, in `[0, 1]`.
    pub p: f64,
}

impl Default for Dropout {
    fn default() -> Self {
        Self { p: 0.5 }
    }
}

impl<S: Shape, E: Dtype, D: Storage<E>, T: Tape<E, D>> Module<Tensor<S, E, D, T>> for Dropout {
    type Output = Tensor<S, E, D, T>;
    fn try_forward(&self, x: Tensor<S, E, D, T>) -> Result<Self::Output, Error> {
        Ok(x)
    }
}

impl<S: Shape, E: Dtype, D, T: Tape<E, D>> ModuleMut<Tensor<S, E, D, T>> for Dropout
where
    D: DropoutKernel<E> + BinaryKernel<Mul, E>,
{
    type Output = Tensor<S, E, D, T>;
    fn try_forward_mut(&mut self, x: Tensor<S, E, D, T>) -> Result<Self::Output, Error> {
        x.try_dropout(self.p)
    }
}

parameter_free_but_training!(Dropout);
