//! 2-d upsampling (PyTorch's `torch.nn.functional.interpolate` in modes `"nearest"` and
//! `"bilinear"`), differentiable in its input.

use crate::OrPanic;
use crate::ops::conv_transpose::with_batch_axis;
use crate::tape::Tape;
use crate::tensor::Tensor;
use ferrograd_device::ops::upsample::{Upsample2dKernel, Upsample2dSpec};
use ferrograd_device::{Dtype, Error, View, ViewMut};
use ferrograd_shapes::{Resize2dShape, Shape};
use std::sync::Arc;

pub use ferrograd_device::ops::upsample::{Interpolation, UpsampleSize};

impl<S: Shape, E: Dtype, D: Upsample2dKernel<E>, T: Tape<E, D>> Tensor<S, E, D, T> {
    /// This image or batch of images resized to `size`: PyTorch's
    /// `interpolate(input, size or scale_factor, mode, align_corners)` with mode
    /// `"nearest"` or `"bilinear"`, with the same source positions (see
    /// `ferrograd_device::ops::upsample`).
    ///
    /// The input is `(N, C, H, W)` or `(C, H, W)`; the result has the new height and
    /// width as run-time sizes. `size` is an output size (`[h, w]` or `(h, w)`) or scale
    /// factors (`2.0` or `[2.0, 1.5]`: the output has `floor(in · factor)` pixels, and
    /// positions map with `1 / factor`, as PyTorch's without `recompute_scale_factor`).
    ///
    /// ```
    /// use ferrograd_autodiff::prelude::*;
    /// use ferrograd_autodiff::Interpolation;
    /// let dev = ferrograd_cpu::Cpu::default();
    /// let x = dev.tensor([[[1.0f32, 2.0], [3.0, 4.0]]]);
    /// let nearest = x.clone().upsample2d(2.0, Interpolation::Nearest);
    /// assert_eq!(nearest.realize::<Rank3<1, 4, 4>>().array()[0][1], [1.0, 1.0, 2.0, 2.0]);
    /// // Aligned corners: the corners stay, the middle blends.
    /// let aligned = x.clone().upsample2d([3, 3], Interpolation::Bilinear { align_corners: true });
    /// assert_eq!(aligned.realize::<Rank3<1, 3, 3>>().array(), [[[1.0, 1.5, 2.0], [2.0, 2.5, 3.0], [3.0, 3.5, 4.0]]]);
    /// // Half-pixel centres: output row 0 of 4 sits at input row -0.25, clamped to 0.
    /// let bilinear = x.leaky_trace().upsample2d([4, 2], Interpolation::Bilinear { align_corners: false });
    /// let grads = bilinear.sum::<Rank0, _>().backward();
    /// // Each input row is read with weights 1 + 0.75 + 0.25 = 2 in all.
    /// assert_eq!(grads.get(&x).array(), [[[2.0, 2.0], [2.0, 2.0]]]);
    /// ```
    ///
    /// # Panics
    /// As [`Tensor::try_upsample2d`] fails.
    #[track_caller]
    pub fn upsample2d(self, size: impl Into<UpsampleSize>, mode: Interpolation) -> Tensor<S::Resized, E, D, T>
    where
        S: Resize2dShape,
    {
        self.try_upsample2d(size, mode).or_panic()
    }

    /// [`Tensor::upsample2d`], returning an error instead of panicking:
    /// `InvalidArgument` for a scale factor that is not finite and positive;
    /// `ShapeMismatch` for an empty input or output. Messages name the sizes.
    pub fn try_upsample2d(
        self,
        size: impl Into<UpsampleSize>,
        mode: Interpolation,
    ) -> Result<Tensor<S::Resized, E, D, T>, Error>
    where
        S: Resize2dShape,
    {
        let layout = if S::BATCHED {
            self.layout
        } else {
            with_batch_axis(&self.layout)
        };
        let d = layout.dims();
        let spec = Upsample2dSpec::new([d[0], d[1], d[2], d[3]], size.into(), mode)?;
        let out = self.device.upsample2d_forward(&spec, View::new(&*self.data, layout))?;
        let shape = self.shape.resized(spec.out_height, spec.out_width);
        let inputs = [self.op_input()];
        let result = Tensor::from_arc(Arc::new(out), shape, self.device.clone(), self.tape);
        if !T::TRACING {
            return Ok(result);
        }
        Ok(result.record_op(&inputs, move |ctx| {
            ctx.with_grad_output(|ctx, grad_output| {
                let device = ctx.device;
                if let Some(grad) = ctx.grad_mut(0)? {
                    device.upsample2d_backward(&spec, grad_output, ViewMut::new(grad, layout))?;
                }
                Ok(())
            })
        }))
    }
}
