//! Differentiable ops on [`Tensor`](crate::Tensor), one module per op family.

mod binary;
mod compare;
pub(crate) mod concat;
mod dropout;
pub(crate) mod index;
mod matmul;
mod softmax;
mod sum;
mod unary;
mod views;

use crate::tape::{MergeTapes, MergedTape, Tape};
use crate::tensor::{Tensor, UniqueId};
use ferrograd_device::ops::elementwise::{BinaryKernel, BinaryOp, Operand, UnaryKernel, UnaryOp};
use ferrograd_device::{Dtype, Error, Input, Storage};
use ferrograd_shapes::Shape;
use std::sync::Arc;

/// Hands a buffer to a kernel: `Unique` (reusable in place) when this was the last
/// reference to it.
fn with_input<V, R>(data: Arc<V>, f: impl FnOnce(Input<'_, V>) -> R) -> R {
    match Arc::try_unwrap(data) {
        Ok(owned) => f(Input::Unique(owned)),
        Err(shared) => f(Input::Shared(&shared)),
    }
}

impl<S: Shape, E: Dtype, D: Storage<E>, T: Tape<E, D>> Tensor<S, E, D, T> {
    /// Records how the gradient of this result flows into one input, whose id is
    /// `input` and whose buffer holds `input_len` elements: `accumulate(device, grad,
    /// grad_output)` adds to that input's gradient. Backward skips it when nobody wants
    /// that gradient; nothing is recorded when not tracing.
    pub(crate) fn record_input_gradient<F>(&self, input: UniqueId, input_len: usize, accumulate: F)
    where
        F: FnOnce(&D, &mut D::Vec, &D::Vec) -> Result<(), Error> + Send + 'static,
    {
        if !T::TRACING {
            return;
        }
        let device = self.device.clone();
        self.tape.record(self.id, move |grads, grad_output| {
            if let Some(grad) = grads.grad_mut(input, input_len, &device)? {
                accumulate(&device, grad, grad_output)?;
            }
            Ok(())
        });
    }

    /// Applies a declared element-wise op, recording its backward step when traced.
    pub(crate) fn try_unary<Op: UnaryOp>(self, op: Op) -> Result<Self, Error>
    where
        D: UnaryKernel<Op, E>,
    {
        let Tensor {
            id,
            data,
            shape,
            layout,
            device,
            tape,
        } = self;
        if !T::TRACING {
            let out = with_input(data, |input| device.forward(&op, input, &layout))?;
            return Ok(Tensor::from_arc(Arc::new(out), shape, device, tape));
        }
        let input_len = D::len(&data);
        let (out, saved) = if Op::DERIVATIVE_FROM_OUTPUT {
            // Backward needs only the output, so the input buffer may be overwritten.
            let out = Arc::new(with_input(data, |input| device.forward(&op, input, &layout))?);
            (out.clone(), out)
        } else {
            let out = device.forward(&op, Input::Shared(&data), &layout)?;
            (Arc::new(out), data)
        };
        let result = Tensor::from_arc(out, shape, device, tape);
        result.record_input_gradient(id, input_len, move |device, grad, grad_output| {
            device.backward(&op, &layout, &saved, grad, grad_output)
        });
        Ok(result)
    }

    /// Applies a declared element-wise op of two same-shape tensors.
    pub(crate) fn try_binary<Op: BinaryOp, R: Tape<E, D>>(
        self,
        name: &'static str,
        op: Op,
        rhs: Tensor<S, E, D, R>,
    ) -> Result<Tensor<S, E, D, MergedTape<T, R>>, Error>
    where
        D: BinaryKernel<Op, E>,
        T: MergeTapes<R>,
        MergedTape<T, R>: Tape<E, D>,
    {
        if self.shape != rhs.shape {
            return Err(Error::shape_mismatch(name, self.layout.dims(), rhs.layout.dims()));
        }
        let Tensor {
            id,
            data,
            shape,
            layout,
            device,
            tape,
        } = self;
        let tape = tape.merge_tapes(rhs.tape);
        if !<MergedTape<T, R> as Tape<E, D>>::TRACING {
            let out = with_input(data, |lhs| device.forward(&op, lhs, &layout, &rhs.data, &rhs.layout))?;
            return Ok(Tensor::from_arc(Arc::new(out), shape, device, tape));
        }
        let out = device.forward(&op, Input::Shared(&data), &layout, &rhs.data, &rhs.layout)?;
        let result = Tensor::from_arc(Arc::new(out), shape, device.clone(), tape);
        let (rhs_id, rhs_data, rhs_layout) = (rhs.id, rhs.data, rhs.layout);
        result.tape.record(result.id, move |grads, grad_output| {
            // One operand at a time: `x * x` has one id for both, and one buffer.
            for (operand, grad_id, len) in [
                (Operand::Lhs, id, D::len(&data)),
                (Operand::Rhs, rhs_id, D::len(&rhs_data)),
            ] {
                if let Some(grad) = grads.grad_mut(grad_id, len, &device)? {
                    device.backward(&op, operand, &data, &layout, &rhs_data, &rhs_layout, grad, grad_output)?;
                }
            }
            Ok(())
        });
        Ok(result)
    }
}
