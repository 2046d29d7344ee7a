//! Differentiable ops on [`Tensor`](crate::Tensor), one module per op family.

mod binary;
mod compare;
pub(crate) mod concat;
pub(crate) mod conv;
pub(crate) mod conv1d;
pub(crate) mod conv_transpose;
mod dropout;
pub(crate) mod index;
mod matmul;
pub(crate) mod pool;
mod softmax;
mod sum;
mod unary;
pub(crate) mod upsample;
mod views;

use crate::backward::BackwardContext;
use crate::tape::{MergeTapes, MergedTape, OpInput, Tape};
use crate::tensor::{Tensor, UniqueId};
use ferrograd_device::ops::elementwise::{BinaryKernel, BinaryOp, Operand, Saved, UnaryKernel, UnaryOp};
use ferrograd_device::view::{GradientSlot, InputView, OptionalView};
use ferrograd_device::{Dtype, Error, Input, Storage, View};
use ferrograd_shapes::Shape;
use std::sync::Arc;

/// Runs a kernel that may write its result over its input: the buffer goes in as
/// `Unique` when this was the last reference to it, and then the result goes back into
/// the same `Arc`, so an op that reuses its input's buffer allocates nothing at all.
fn reusing_input<V: Default>(
    mut data: Arc<V>,
    kernel: impl FnOnce(Input<'_, V>) -> Result<V, Error>,
) -> Result<Arc<V>, Error> {
    match Arc::get_mut(&mut data) {
        Some(slot) => {
            let input = std::mem::take(slot);
            *slot = kernel(Input::Unique(input))?;
            Ok(data)
        }
        None => Ok(Arc::new(kernel(Input::Shared(&data))?)),
    }
}

impl<S: Shape, E: Dtype, D: Storage<E>, T: Tape<E, D>> Tensor<S, E, D, T> {
    /// How the tape knows this tensor as the input of an op. Take it before the
    /// tensor's tape moves to the op's result, and pass it to [`Tensor::record_op`].
    pub fn op_input(&self) -> OpInput {
        self.tape.op_input(self.id, self.buffer_len())
    }

    /// Records a differentiable op whose result is `self`: a tensor carrying the tape
    /// of the op's inputs (merged with [`MergeTapes`] when there are several), computed
    /// from the inputs that `inputs` stand for (in that order). Backward calls
    /// `backward` with the gradient of `self` and the inputs' gradients, by position.
    /// Nothing is recorded when the tape does not trace.
    ///
    /// This is how a crate outside this one writes an op:
    ///
    /// ```
    /// use ferrograd_autodiff::prelude::*;
    /// use ferrograd_autodiff::BackwardContext;
    /// use ferrograd_cpu::Cpu;
    ///
    /// /// `y = x³`, written from scratch; its gradient is `3x² · dy`.
    /// fn cube<T: Tape<f64, Cpu>>(x: Tensor<Rank1<3>, f64, Cpu, T>) -> Tensor<Rank1<3>, f64, Cpu, T> {
    ///     let input = x.op_input();
    ///     let (x, tape) = x.split_tape();
    ///     let values: Vec<f64> = x.as_vec().iter().map(|v| v * v * v).collect();
    ///     let y = x.device().tensor_from_vec(values, *x.shape());
    ///     let layout = *x.layout();
    ///     y.put_tape(tape).record_op(&[input], move |ctx: &mut BackwardContext<'_, f64, Cpu>| {
    ///         let dy = ctx.grad_output().to_vec();
    ///         if let Some(grad) = ctx.grad_mut(0)? {
    ///             for (i, offset) in layout.offsets().enumerate() {
    ///                 let v = x.storage()[offset];
    ///                 grad[offset] += 3.0 * v * v * dy[i];
    ///             }
    ///         }
    ///         Ok(())
    ///     })
    /// }
    ///
    /// let dev = Cpu::default();
    /// let x: Tensor<Rank1<3>, f64, Cpu> = dev.tensor([1.0, 2.0, -1.0]);
    /// let grads = cube(x.leaky_trace()).sum::<Rank0, _>().backward();
    /// assert_eq!(grads.get(&x).array(), [3.0, 12.0, 3.0]);
    /// ```
    pub fn record_op<F>(mut self, inputs: &[OpInput], backward: F) -> Self
    where
        F: FnOnce(&mut BackwardContext<'_, E, D>) -> Result<(), Error> + Send + 'static,
    {
        if T::TRACING {
            self.tape.record(self.id, inputs, backward);
        }
        self
    }

    /// Records how the gradient of this result flows into one input, whose id is
    /// `input` and whose buffer holds `input_len` elements: `accumulate(device, grad,
    /// grad_output)` adds to that input's gradient (zeros on the first contribution).
    /// `self` must still carry that input's tape handle. Backward skips it when nobody
    /// wants that gradient; nothing is recorded when not tracing.
    pub(crate) fn record_input_gradient<F>(&mut self, input: UniqueId, input_len: usize, accumulate: F)
    where
        F: FnOnce(&D, &mut D::Vec, &D::Vec) -> Result<(), Error> + Send + 'static,
    {
        if !T::TRACING {
            return;
        }
        let input = self.tape.op_input(input, input_len);
        self.tape
            .record(self.id, &[input], move |ctx: &mut BackwardContext<'_, E, D>| {
                ctx.with_grad_output(|ctx, grad_output| {
                    let device = ctx.device;
                    match ctx.grad_mut(0)? {
                        Some(grad) => accumulate(device, grad, grad_output),
                        None => Ok(()),
                    }
                })
            });
    }
}

impl<S: Shape, E: Dtype, D: Storage<E>, T: Tape<E, D>> Tensor<S, E, D, T> {
    /// Applies a declared element-wise op, recording its backward step when traced.
    /// Backward keeps only the buffer the op's declaration says it reads.
    pub(crate) fn try_unary<Op: UnaryOp>(self, op: Op) -> Result<Self, Error>
    where
        D: UnaryKernel<Op, E>,
    {
        let input = self.op_input();
        let Tensor {
            data,
            shape,
            layout,
            device,
            tape,
            ..
        } = self;
        let (out, saved) = match Op::SAVES {
            Saved::Input if T::TRACING => (
                Arc::new(device.forward(&op, InputView::new(Input::Shared(&data), layout))?),
                Some(data),
            ),
            // Nothing recorded reads the input, so its buffer may become the output.
            _ => {
                let out = reusing_input(data, |input| device.forward(&op, InputView::new(input, layout)))?;
                let saved = (T::TRACING && Op::SAVES == Saved::Output).then(|| out.clone());
                (out, saved)
            }
        };
        let result = Tensor::from_arc(out, shape, device, tape);
        Ok(result.record_op(&[input], move |ctx| {
            ctx.with_grad_output_input(|ctx, grad_output| {
                let device = ctx.device;
                // `saved` is whichever buffer the op's derivative reads.
                let (input_buffer, output) = match Op::SAVES {
                    Saved::Input => (saved.as_deref(), None),
                    Saved::Output | Saved::Nothing => (None, saved.as_deref()),
                };
                match ctx.grad_entry(0) {
                    Some(grad) => device.backward(
                        &op,
                        OptionalView::new(input_buffer, layout),
                        output,
                        GradientSlot::new(grad, input.len()),
                        grad_output,
                    ),
                    None => Ok(()),
                }
            })
        }))
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
        let inputs = [self.op_input(), rhs.op_input()];
        let Tensor {
            data,
            shape,
            layout,
            device,
            tape,
            ..
        } = self;
        let tape = tape.merge_tapes(rhs.tape);
        if !<MergedTape<T, R> as Tape<E, D>>::TRACING || !Op::DERIVATIVES_READ_OPERANDS {
            // Nothing to keep for backward: the lhs buffer may become the output.
            let rhs_view = View::new(&*rhs.data, rhs.layout);
            let out = reusing_input(data, |lhs| device.forward(&op, InputView::new(lhs, layout), rhs_view))?;
            let result = Tensor::from_arc(out, shape, device, tape);
            let rhs_layout = rhs.layout;
            return Ok(result.record_op(&inputs, move |ctx| {
                let (lhs, rhs) = (OptionalView::new(None, layout), OptionalView::new(None, rhs_layout));
                binary_backward(ctx, &op, inputs, lhs, rhs)
            }));
        }
        let out = device.forward(
            &op,
            InputView::new(Input::Shared(&data), layout),
            View::new(&rhs.data, rhs.layout),
        )?;
        let result = Tensor::from_arc(Arc::new(out), shape, device, tape);
        let (rhs_data, rhs_layout) = (rhs.data, rhs.layout);
        Ok(result.record_op(&inputs, move |ctx| {
            let lhs = OptionalView::new(Some(&*data), layout);
            let rhs = OptionalView::new(Some(&*rhs_data), rhs_layout);
            binary_backward(ctx, &op, inputs, lhs, rhs)
        }))
    }
}

/// The backward step of a declared binary op: each wanted operand's gradient, the
/// output's gradient handed on (reusable) to the last one that needs it.
fn binary_backward<E: Dtype, D: BinaryKernel<Op, E>, Op: BinaryOp>(
    ctx: &mut BackwardContext<'_, E, D>,
    op: &Op,
    inputs: [OpInput; 2],
    lhs: OptionalView<'_, D::Vec>,
    rhs: OptionalView<'_, D::Vec>,
) -> Result<(), Error> {
    let operand_backward =
        |ctx: &mut BackwardContext<'_, E, D>, position: usize, grad_output: Input<'_, D::Vec>| -> Result<(), Error> {
            let operand = if position == 0 { Operand::Lhs } else { Operand::Rhs };
            let device = ctx.device;
            match ctx.grad_entry(position) {
                Some(grad) => device.backward(
                    op,
                    operand,
                    lhs,
                    rhs,
                    GradientSlot::new(grad, inputs[position].len()),
                    grad_output,
                ),
                None => Ok(()),
            }
        };
    match (ctx.wants(0), ctx.wants(1)) {
        (true, true) => {
            ctx.with_grad_output(|ctx, grad_output| operand_backward(ctx, 0, Input::Shared(grad_output)))?;
            ctx.with_grad_output_input(|ctx, grad_output| operand_backward(ctx, 1, grad_output))
        }
        (true, false) => ctx.with_grad_output_input(|ctx, grad_output| operand_backward(ctx, 0, grad_output)),
        (false, true) => ctx.with_grad_output_input(|ctx, grad_output| operand_backward(ctx, 1, grad_output)),
        (false, false) => Ok(()),
    }
}
