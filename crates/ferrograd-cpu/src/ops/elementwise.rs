//! One generic kernel serves every declared element-wise op: the declaration supplies
//! `value` and `derivative`, this file supplies the loops.

use crate::device::{Cpu, CpuBuffer, try_vec};
use ferrograd_device::ops::elementwise::{BinaryFn, BinaryKernel, BinaryOp, Operand, UnaryFn, UnaryKernel, UnaryOp};
use ferrograd_device::{Dtype, Error, Input, Layout};

/// Whether the layout addresses the first `numel` elements of a buffer in order.
pub(crate) fn is_dense<E>(layout: &Layout, buffer: &[E]) -> bool {
    layout.is_contiguous() && buffer.len() >= layout.num_elements()
}

impl<E: Dtype, Op: UnaryOp + UnaryFn<E>> UnaryKernel<Op, E> for Cpu {
    fn forward(&self, op: &Op, input: Input<'_, Self::Vec>, layout: &Layout) -> Result<Self::Vec, Error> {
        let numel = layout.num_elements();
        match input {
            Input::Unique(mut buffer) if is_dense(layout, &buffer) => {
                buffer.0.truncate(numel);
                for x in buffer.iter_mut() {
                    *x = op.value(*x);
                }
                Ok(buffer)
            }
            input => {
                let x = input.get();
                let mut out = try_vec(numel)?;
                if is_dense(layout, x) {
                    out.extend(x[..numel].iter().map(|&v| op.value(v)));
                } else {
                    out.extend(layout.offsets().map(|i| op.value(x[i])));
                }
                Ok(CpuBuffer(out))
            }
        }
    }

    fn backward(
        &self,
        op: &Op,
        layout: &Layout,
        saved: &Self::Vec,
        grad_input: &mut Self::Vec,
        grad_output: &Self::Vec,
    ) -> Result<(), Error> {
        let numel = layout.num_elements();
        if is_dense(layout, grad_input) {
            let grad_input = &mut grad_input[..numel];
            let saved = &saved[..numel];
            for ((g, &s), &go) in grad_input.iter_mut().zip(saved).zip(&grad_output[..numel]) {
                *g += go * op.derivative(s);
            }
        } else if Op::DERIVATIVE_FROM_OUTPUT {
            for (i, offset) in layout.offsets().enumerate() {
                grad_input[offset] += grad_output[i] * op.derivative(saved[i]);
            }
        } else {
            for (i, offset) in layout.offsets().enumerate() {
                grad_input[offset] += grad_output[i] * op.derivative(saved[offset]);
            }
        }
        Ok(())
    }
}

impl<E: Dtype, Op: BinaryOp + BinaryFn<E>> BinaryKernel<Op, E> for Cpu {
    fn forward(
        &self,
        op: &Op,
        lhs: Input<'_, Self::Vec>,
        lhs_layout: &Layout,
        rhs: &Self::Vec,
        rhs_layout: &Layout,
    ) -> Result<Self::Vec, Error> {
        let numel = lhs_layout.num_elements();
        let rhs_dense = is_dense(rhs_layout, rhs);
        match lhs {
            Input::Unique(mut buffer) if rhs_dense && is_dense(lhs_layout, &buffer) => {
                buffer.0.truncate(numel);
                for (x, &y) in buffer.iter_mut().zip(&rhs[..numel]) {
                    *x = op.value(*x, y);
                }
                Ok(buffer)
            }
            lhs => {
                let x = lhs.get();
                let mut out = try_vec(numel)?;
                if rhs_dense && is_dense(lhs_layout, x) {
                    out.extend(x[..numel].iter().zip(&rhs[..numel]).map(|(&a, &b)| op.value(a, b)));
                } else {
                    out.extend(
                        lhs_layout
                            .offsets()
                            .zip(rhs_layout.offsets())
                            .map(|(i, j)| op.value(x[i], rhs[j])),
                    );
                }
                Ok(CpuBuffer(out))
            }
        }
    }

    fn backward(
        &self,
        op: &Op,
        operand: Operand,
        lhs: &Self::Vec,
        lhs_layout: &Layout,
        rhs: &Self::Vec,
        rhs_layout: &Layout,
        grad: &mut Self::Vec,
        grad_output: &Self::Vec,
    ) -> Result<(), Error> {
        let grad_layout = match operand {
            Operand::Lhs => lhs_layout,
            Operand::Rhs => rhs_layout,
        };
        let offsets = lhs_layout
            .offsets()
            .zip(rhs_layout.offsets())
            .zip(grad_layout.offsets());
        for (k, ((i, j), g)) in offsets.enumerate() {
            let d = match operand {
                Operand::Lhs => op.dx(lhs[i], rhs[j]),
                Operand::Rhs => op.dy(lhs[i], rhs[j]),
            };
            grad[g] += grad_output[k] * d;
        }
        Ok(())
    }
}
