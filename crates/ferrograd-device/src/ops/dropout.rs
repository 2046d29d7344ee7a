//! Dropout masks: each element zero with probability `p`, `scale` (usually `1 / (1 -
//! p)`) otherwise, drawn where the device's buffers live.
//!
//! A mask is needed at every training step, so a device draws it itself rather than
//! through [`SampleKernel`](crate::SampleKernel), whose `rand` distributions are host
//! code: the CPU with its seeded generator ([`DropoutMask`]), a GPU with a
//! counter-based generator on the device. Masks are reproducible for a given device
//! seed and sequence of calls, but two kinds of device draw different masks (as
//! PyTorch's CPU and CUDA dropout do).

use crate::dtype::Dtype;
use crate::error::Error;
use crate::storage::Storage;
use rand::RngExt;

/// Draws dropout masks on the device.
pub trait DropoutKernel<E: Dtype>: Storage<E> {
    /// `len` mask values from the device's seeded generator, each zero with
    /// probability `p` and `scale` otherwise.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] when `p` is not in `[0, 1]` (see [`check_probability`]);
    /// [`Error::OutOfMemory`]; a device's own errors.
    fn try_dropout_mask(&self, len: usize, p: f64, scale: E) -> Result<Self::Vec, Error>;
}

/// `Err` naming `p` unless it is a probability, `[0, 1]` (NaN is not).
pub fn check_probability(p: f64) -> Result<(), Error> {
    if (0.0..=1.0).contains(&p) {
        Ok(())
    } else {
        Err(Error::InvalidArgument {
            op: "dropout",
            message: format!("probability must be in [0, 1], got {p}"),
        })
    }
}

/// The mask as a `rand` distribution, for devices that sample on the host: zero when
/// a uniform `f64` in `[0, 1)` is below `p`, else `scale`. One `f64` per element, so a
/// seeded generator gives the same mask for every element type.
///
/// ```
/// use ferrograd_device::ops::dropout::DropoutMask;
/// use rand::{RngExt, SeedableRng, rngs::StdRng};
///
/// let mask = DropoutMask { p: 0.25, scale: 4.0f32 / 3.0 };
/// let values: Vec<f32> = StdRng::seed_from_u64(0).sample_iter(&mask).take(1000).collect();
/// let kept = values.iter().filter(|&&v| v != 0.0).count();
/// assert!((650..850).contains(&kept), "{kept} of 1000 kept");
/// assert!(values.iter().all(|&v| v == 0.0 || v == 4.0 / 3.0));
/// ```
#[derive(Clone, Copy, Debug)]
pub struct DropoutMask<E> {
    /// The probability of a zero.
    pub p: f64,
    /// The value kept elements get.
    pub scale: E,
}

impl<E: Dtype> rand::distr::Distribution<E> for DropoutMask<E> {
    fn sample<R: rand::Rng + ?Sized>(&self, rng: &mut R) -> E {
        if rng.random::<f64>() < self.p {
            E::ZERO
        } else {
            self.scale
        }
    }
}
