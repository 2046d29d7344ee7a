//! Softmax and log-softmax along axes, each one fused kernel forward and one backward.
//!
//! The axis is named by type, and an axis the tensor does not have does not compile:
//!
//! ```compile_fail
//! use ferrograd_autodiff::prelude::*;
//! let x: Tensor<Rank2<2, 3>, f32, _> = ferrograd_cpu::Cpu::default().zeros();
//! let _ = x.softmax::<Axis<2>>();
//! ```

use super::reusing_input;
use crate::OrPanic;
use crate::tape::Tape;
use crate::tensor::Tensor;
use ferrograd_device::ops::softmax::{SoftmaxKernel, SoftmaxKind};
use ferrograd_device::view::InputView;
use ferrograd_device::{Dtype, Error, ViewMut};
use ferrograd_shapes::{Axes, ReduceShape, Shape};

impl<S: Shape, E: Dtype, D: SoftmaxKernel<E>, T: Tape<E, D>> Tensor<S, E, D, T> {
    /// `exp(x) / Σ exp(x)` along the axis `Ax` (name it: `x.softmax::<Axis<1>>()`), same
    /// shape out. Computed stably, shifted by each row's maximum, so that logits of
    /// ±1e4 give exact probabilities rather than NaN. Several axes
    /// (`Axes2<1, 2>`) normalise over all of them together.
    ///
    /// The forward pass is one kernel (no intermediate tensors) that reuses the input's
    /// buffer when nothing else holds it; backward keeps only the output.
    ///
    /// ```
    /// use ferrograd_autodiff::prelude::*;
    /// let x = ferrograd_cpu::Cpu::default().tensor([[0.0f64, 2.0f64.ln()], [1e4, -1e4]]);
    /// let p = x.softmax::<Axis<1>>().array();
    /// assert!((p[0][0] - 1.0 / 3.0).abs() < 1e-15 && (p[0][1] - 2.0 / 3.0).abs() < 1e-15);
    /// assert_eq!(p[1], [1.0, 0.0]);
    /// ```
    #[track_caller]
    pub fn softmax<Ax: Axes>(self) -> Self
    where
        S: ReduceShape<Ax>,
    {
        self.try_softmax::<Ax>().or_panic()
    }

    /// [`Tensor::softmax`], returning an error instead of panicking.
    pub fn try_softmax<Ax: Axes>(self) -> Result<Self, Error>
    where
        S: ReduceShape<Ax>,
    {
        self.try_normalise(SoftmaxKind::Softmax, Ax::AXES)
    }

    /// `x − ln Σ exp(x)` along the axis `Ax`, same shape out: the logarithm of
    /// [`Tensor::softmax`], computed directly (`x − max − ln Σ exp(x − max)`) so that it
    /// stays finite where the softmax underflows to 0.
    ///
    /// ```
    /// use ferrograd_autodiff::prelude::*;
    /// let x = ferrograd_cpu::Cpu::default().tensor([[1e4f32, -1e4], [0.0, 0.0]]);
    /// let l = x.log_softmax::<Axis<1>>().array();
    /// assert_eq!(l[0], [0.0, -2e4]);
    /// assert_eq!(l[1], [-(2.0f32.ln()), -(2.0f32.ln())]);
    /// ```
    #[track_caller]
    pub fn log_softmax<Ax: Axes>(self) -> Self
    where
        S: ReduceShape<Ax>,
    {
        self.try_log_softmax::<Ax>().or_panic()
    }

    /// [`Tensor::log_softmax`], returning an error instead of panicking.
    pub fn try_log_softmax<Ax: Axes>(self) -> Result<Self, Error>
    where
        S: ReduceShape<Ax>,
    {
        self.try_normalise(SoftmaxKind::LogSoftmax, Ax::AXES)
    }

    fn try_normalise(self, kind: SoftmaxKind, axes: &'static [usize]) -> Result<Self, Error> {
        let Tensor {
            id,
            data,
            shape,
            layout,
            device,
            tape,
        } = self;
        if !T::TRACING {
            let out = reusing_input(data, |input| device.forward(kind, InputView::new(input, layout), axes))?;
            return Ok(Tensor::from_arc(out, shape, device, tape));
        }
        let input_len = D::len(&data);
        // Backward needs only the output, so the input's buffer may become the output.
        let out = reusing_input(data, |input| device.forward(kind, InputView::new(input, layout), axes))?;
        let mut result = Tensor::from_arc(out.clone(), shape, device, tape);
        result.record_input_gradient(id, input_len, move |device, grad, grad_output| {
            device.backward(kind, ViewMut::new(grad, layout), axes, &out, grad_output)
        });
        Ok(result)
    }
}
