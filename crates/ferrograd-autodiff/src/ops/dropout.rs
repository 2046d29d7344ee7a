//! Dropout: zeroes elements at random and scales the rest by `1 / (1 - p)`.

use crate::OrPanic;
use crate::tape::Tape;
use crate::tensor::Tensor;
use ferrograd_device::ops::dropout::{DropoutKernel, check_probability};
use ferrograd_device::ops::elementwise::{BinaryKernel, Mul};
use ferrograd_device::{Dtype, Error};
use ferrograd_shapes::Shape;

impl<S: Shape, E: Dtype, D: DropoutKernel<E> + BinaryKernel<Mul, E>, T: Tape<E, D>> Tensor<S, E, D, T> {
    /// Zeroes each element with probability `p`, drawn from the device's seeded
    /// generator, and scales the others by `1 / (1 - p)`, so the expected value is
    /// unchanged (PyTorch's `dropout` in training mode). The gradient is masked and
    /// scaled the same way.
    ///
    /// ```
    /// use ferrograd_autodiff::prelude::*;
    /// let dev = ferrograd_cpu::Cpu::seed_from_u64(0);
    /// let x: Tensor<Rank1<1000>, f64, _> = dev.ones();
    /// let y = x.dropout(0.25).as_vec();
    /// assert!(y.iter().all(|&v| v == 0.0 || (v - 1.0 / 0.75).abs() < 1e-12));
    /// ```
    ///
    /// # Panics
    /// When `p` is outside `[0, 1]`; see [`Tensor::try_dropout`].
    #[track_caller]
    pub fn dropout(self, p: f64) -> Tensor<S, E, D, T> {
        self.try_dropout(p).or_panic()
    }

    /// [`Tensor::dropout`], returning `Error::InvalidArgument` when `p` is outside `[0, 1]`.
    pub fn try_dropout(self, p: f64) -> Result<Tensor<S, E, D, T>, Error> {
        check_probability(p)?;
        // p = 1 drops everything; the scale would be infinite, and 0 · inf is NaN.
        let scale = if p < 1.0 { E::from_f64(1.0 / (1.0 - p)) } else { E::ZERO };
        let mask = self.device.try_dropout_mask(self.num_elements(), p, scale)?;
        let mask = Tensor::from_buffer(mask, self.shape, self.device.clone());
        self.try_binary("dropout", Mul, mask)
    }
}
