//! `Upsample2D`: images resized by nearest or bilinear interpolation, PyTorch's
//! `nn.Upsample`.

use crate::layers::activations::{parameter_free, parameter_free_but_training};
use crate::module::{Module, same_in_training};
use ferrograd_autodiff::{Interpolation, Tape, Tensor, UpsampleSize};
use ferrograd_device::ops::upsample::Upsample2dKernel;
use ferrograd_device::{Dtype, Error};
use ferrograd_shapes::Resize2dShape;

/// Resizes images `(N, C, H, W)` (or `(C, H, W)`) to a size or by scale factors, by
/// nearest or bilinear interpolation: PyTorch's `nn.Upsample(size, scale_factor,
/// mode, align_corners)`, with its formulas. `Default` doubles the size, nearest
/// (PyTorch asks for a size or a factor; `scale_factor=2` is the common one).
///
/// ```
/// use ferrograd_cpu::Cpu;
/// use ferrograd_nn::prelude::*;
///
/// let dev = Cpu::default();
/// let x = dev.tensor([[[1.0f32, 2.0], [3.0, 4.0]]]);
/// let nearest = Upsample2D::nearest(2.0).forward(x.clone());
/// assert_eq!(nearest.as_vec()[..4], [1.0, 1.0, 2.0, 2.0]);
/// // Bilinear with aligned corners: the corners stay, the middle blends.
/// let blended = Upsample2D::bilinear([3, 3], true).forward(x).as_vec();
/// assert_eq!(blended, [1.0, 1.5, 2.0, 2.0, 2.5, 3.0, 3.0, 3.5, 4.0]);
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Upsample2D {
    /// The output's size, or the scale factors.
    pub size: UpsampleSize,
    /// Nearest or bilinear.
    pub mode: Interpolation,
}

impl Upsample2D {
    /// Nearest-neighbour resizing to `size`: `[h, w]`, `(h, w)`, a factor `2.0` or
    /// factors `[2.0, 1.5]`.
    pub fn nearest(size: impl Into<UpsampleSize>) -> Self {
        Self {
            size: size.into(),
            mode: Interpolation::Nearest,
        }
    }

    /// Bilinear resizing to `size`, the corners aligned or not (PyTorch's
    /// `align_corners`, default false).
    pub fn bilinear(size: impl Into<UpsampleSize>, align_corners: bool) -> Self {
        Self {
            size: size.into(),
            mode: Interpolation::Bilinear { align_corners },
        }
    }
}

impl Default for Upsample2D {
    fn default() -> Self {
        Self::nearest(2.0)
    }
}

impl<S: Resize2dShape, E: Dtype, D: Upsample2dKernel<E>, T: Tape<E, D>> Module<Tensor<S, E, D, T>> for Upsample2D {
    type Output = Tensor<S::Resized, E, D, T>;
    fn try_forward(&self, x: Tensor<S, E, D, T>) -> Result<Self::Output, Error> {
        x.try_upsample2d(self.size, self.mode)
    }
}

parameter_free!(Upsample2D);
