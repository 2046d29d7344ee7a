//! Dropout masks on the CPU: the device's seeded generator, one `f64` per element
//! ([`DropoutMask`]).

use crate::host::Cpu;
use ferrograd_device::ops::dropout::{DropoutKernel, DropoutMask, check_probability};
use ferrograd_device::{Dtype, Error, SampleKernel, Storage};

impl<E: Dtype> DropoutKernel<E> for Cpu {
    fn try_dropout_mask(&self, len: usize, p: f64, scale: E) -> Result<<Self as Storage<E>>::Vec, Error> {
        check_probability(p)?;
        self.try_sample(len, DropoutMask { p, scale })
    }
}
