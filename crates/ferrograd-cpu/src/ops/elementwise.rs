//! One generic kernel serves every declared element-wise op: the declaration supplies
//! `value` and `derivative`, this file supplies the loops.

use crate::host::{Cpu, CpuBuffer, try_vec, try_vec_for_overwrite};
use ferrograd_device::ops::elementwise::{
    BinaryFn, BinaryKernel, BinaryOp, Operand, Saved, UnaryFn, UnaryKernel, UnaryOp,
};
use ferrograd_device::view::{GradientSlot, InputView, OptionalView, check_len, check_same_dims};
use ferrograd_device::{Dtype, Error, Input, Layout, Storage, View};

/// Whether the layout addresses the first `numel` elements of a buffer in order.
pub(crate) fn is_dense<E>(layout: &Layout, buffer: &[E]) -> bool {
    layout.is_contiguous() && buffer.len() >= layout.num_elements()
}

impl<E: Dtype, Op: UnaryOp + UnaryFn<E>> UnaryKernel<Op, E> for Cpu {
    fn forward(&self, op: &Op, input: InputView<'_, Self::Vec>) -> Result<Self::Vec, Error> {
        input.check(Op::NAME, "input")?;
        let InputView {
            buffer: input,
            ref layout,
        } = input;
        let numel = layout.num_elements();
        // With `fast-math`, exp, ln, tanh and sigmoid on f32 run a vectorised
        // approximation over the (gathered) values in place. Backward needs no change:
        // the derivatives of exp, tanh and sigmoid read the saved output, which is this
        // approximated one, so gradients stay consistent with the forward.
        #[cfg(feature = "fast-math")]
        if let Some(apply) = crate::fast_math::unary_in_place::<Op, E>() {
            let mut out = match input {
                Input::Unique(mut buffer) if is_dense(layout, &buffer) => {
                    buffer.0.truncate(numel);
                    buffer
                }
                input => {
                    let x = input.get();
                    let mut out = try_vec(numel)?;
                    if is_dense(layout, x) {
                        out.extend_from_slice(&x[..numel]);
                    } else {
                        out.extend(layout.offsets().map(|i| x[i]));
                    }
                    CpuBuffer(out)
                }
            };
            apply(&mut out.0);
            return Ok(out);
        }
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
        input: OptionalView<'_, Self::Vec>,
        output: Option<&Self::Vec>,
        grad_input: GradientSlot<'_, Self::Vec>,
        grad_output: Input<'_, Self::Vec>,
    ) -> Result<(), Error> {
        let layout = &input.layout;
        let numel = layout.num_elements();
        input.check(Op::NAME, "input")?;
        grad_input.check(Op::NAME, "grad_input", layout)?;
        check_len(Op::NAME, "grad_output", grad_output.get().len(), numel)?;
        let saved: &[E] = match Op::SAVES {
            Saved::Nothing => &[],
            Saved::Input => input.buffer.ok_or_else(|| missing_saved_buffer(Op::NAME))?,
            Saved::Output => {
                let output = output.ok_or_else(|| missing_saved_buffer(Op::NAME))?;
                check_len(Op::NAME, "output", output.len(), numel)?;
                output
            }
        };
        let GradientSlot {
            buffer: grad_input,
            len: grad_len,
        } = grad_input;
        // The derivative at output position `i`, whose input lives at `offset`.
        let derivative = |i: usize, offset: usize| match Op::SAVES {
            Saved::Input => op.derivative(saved[offset]),
            Saved::Output => op.derivative(saved[i]),
            Saved::Nothing => op.derivative(E::ZERO),
        };
        let covers_buffer = layout.is_contiguous() && numel == grad_len;
        match grad_input {
            None if covers_buffer => {
                *grad_input = Some(first_gradient(grad_output, numel, false, |i| derivative(i, i))?);
            }
            None => {
                let mut grad = self.try_alloc_zeros(grad_len)?;
                accumulate_unary(&mut grad, layout, grad_output.get(), covers_buffer, derivative);
                *grad_input = Some(grad);
            }
            Some(grad) => accumulate_unary(grad, layout, grad_output.get(), covers_buffer, derivative),
        }
        Ok(())
    }
}

/// The first contribution to a gradient that covers its whole buffer densely:
/// `grad_output[i] · factor(i)`, written into `grad_output`'s own buffer when it is
/// ours to reuse (or that buffer as it is, when `factor` is known to be 1), else into
/// a new one. Never a zero-fill followed by an add.
fn first_gradient<E: Dtype>(
    grad_output: Input<'_, CpuBuffer<E>>,
    numel: usize,
    factor_is_one: bool,
    factor: impl Fn(usize) -> E,
) -> Result<CpuBuffer<E>, Error> {
    match grad_output {
        Input::Unique(mut buffer) if buffer.len() == numel => {
            if !factor_is_one {
                for (i, g) in buffer.iter_mut().enumerate() {
                    *g *= factor(i);
                }
            }
            Ok(buffer)
        }
        grad_output => {
            let go = grad_output.get();
            let mut out = try_vec(numel)?;
            out.extend(go[..numel].iter().enumerate().map(|(i, &g)| g * factor(i)));
            Ok(CpuBuffer(out))
        }
    }
}

/// `grad[i] += grad_output[i] · factor(i)` over the first `numel` elements.
fn accumulate_dense<E: Dtype>(grad: &mut [E], grad_output: &[E], numel: usize, factor: impl Fn(usize) -> E) {
    for (i, (g, &go)) in grad[..numel].iter_mut().zip(&grad_output[..numel]).enumerate() {
        *g += go * factor(i);
    }
}

/// `grad[offset] += grad_output[i] · derivative(i, offset)` over the input's layout.
fn accumulate_unary<E: Dtype>(
    grad: &mut [E],
    layout: &Layout,
    grad_output: &[E],
    dense: bool,
    derivative: impl Fn(usize, usize) -> E,
) {
    if dense {
        accumulate_dense(grad, grad_output, layout.num_elements(), |i| derivative(i, i));
    } else {
        for (i, offset) in layout.offsets().enumerate() {
            grad[offset] += grad_output[i] * derivative(i, offset);
        }
    }
}

fn missing_saved_buffer(op: &'static str) -> Error {
    Error::InvalidArgument {
        op,
        message: "backward needs the buffer this op saves, and none was passed".into(),
    }
}

impl<E: Dtype, Op: BinaryOp + BinaryFn<E>> BinaryKernel<Op, E> for Cpu {
    fn forward(&self, op: &Op, lhs: InputView<'_, Self::Vec>, rhs: View<'_, Self::Vec>) -> Result<Self::Vec, Error> {
        lhs.check(Op::NAME, "lhs")?;
        rhs.check(Op::NAME, "rhs")?;
        check_same_dims(Op::NAME, ("lhs", &lhs.layout), ("rhs", &rhs.layout))?;
        let InputView {
            buffer: lhs,
            layout: ref lhs_layout,
        } = lhs;
        let View {
            buffer: rhs,
            layout: ref rhs_layout,
        } = rhs;
        let numel = lhs_layout.num_elements();
        let rhs_dense = is_dense(rhs_layout, rhs);
        // A bias broadcast over the leading axes: one row of `rhs`, read again per row.
        let rhs_row = if rhs_dense { None } else { repeated_row(rhs_layout, rhs) };
        let rhs_runs = if rhs_dense || rhs_row.is_some() {
            None
        } else {
            constant_runs(rhs_layout)
        };
        if let Some((run, outer)) = rhs_runs {
            let apply = |out: &mut [E], x: &[E]| {
                for ((out, x), j) in out.chunks_exact_mut(run).zip(x.chunks_exact(run)).zip(outer.offsets()) {
                    let y = rhs[j];
                    for (out, &x) in out.iter_mut().zip(x) {
                        *out = op.value(x, y);
                    }
                }
            };
            match lhs {
                Input::Unique(mut buffer) if is_dense(lhs_layout, &buffer) => {
                    buffer.0.truncate(numel);
                    for (chunk, j) in buffer.chunks_exact_mut(run).zip(outer.offsets()) {
                        let y = rhs[j];
                        for x in chunk {
                            *x = op.value(*x, y);
                        }
                    }
                    return Ok(buffer);
                }
                Input::Shared(x) if is_dense(lhs_layout, x) => {
                    let mut out = try_vec_for_overwrite(numel)?;
                    apply(&mut out, &x[..numel]);
                    return Ok(CpuBuffer(out));
                }
                _ => {}
            }
        }
        match lhs {
            Input::Unique(mut buffer) if (rhs_dense || rhs_row.is_some()) && is_dense(lhs_layout, &buffer) => {
                buffer.0.truncate(numel);
                match rhs_row {
                    Some(row) => {
                        for chunk in buffer.chunks_mut(row.len()) {
                            for (x, &y) in chunk.iter_mut().zip(row) {
                                *x = op.value(*x, y);
                            }
                        }
                    }
                    None => {
                        for (x, &y) in buffer.iter_mut().zip(&rhs[..numel]) {
                            *x = op.value(*x, y);
                        }
                    }
                }
                Ok(buffer)
            }
            lhs => {
                let x = lhs.get();
                let mut out = try_vec(numel)?;
                match rhs_row {
                    Some(row) if is_dense(lhs_layout, x) => out.extend(
                        x[..numel]
                            .chunks(row.len())
                            .flat_map(|chunk| chunk.iter().zip(row).map(|(&a, &b)| op.value(a, b))),
                    ),
                    _ if rhs_dense && is_dense(lhs_layout, x) => {
                        out.extend(x[..numel].iter().zip(&rhs[..numel]).map(|(&a, &b)| op.value(a, b)))
                    }
                    _ => out.extend(
                        lhs_layout
                            .offsets()
                            .zip(rhs_layout.offsets())
                            .map(|(i, j)| op.value(x[i], rhs[j])),
                    ),
                }
                Ok(CpuBuffer(out))
            }
        }
    }

    fn backward(
        &self,
        op: &Op,
        operand: Operand,
        lhs: OptionalView<'_, Self::Vec>,
        rhs: OptionalView<'_, Self::Vec>,
        grad: GradientSlot<'_, Self::Vec>,
        grad_output: Input<'_, Self::Vec>,
    ) -> Result<(), Error> {
        lhs.check(Op::NAME, "lhs")?;
        rhs.check(Op::NAME, "rhs")?;
        check_same_dims(Op::NAME, ("lhs", &lhs.layout), ("rhs", &rhs.layout))?;
        let (lhs_layout, rhs_layout) = (&lhs.layout, &rhs.layout);
        let (role, grad_layout) = match operand {
            Operand::Lhs => ("grad_lhs", lhs_layout),
            Operand::Rhs => ("grad_rhs", rhs_layout),
        };
        grad.check(Op::NAME, role, grad_layout)?;
        check_len(
            Op::NAME,
            "grad_output",
            grad_output.get().len(),
            grad_layout.num_elements(),
        )?;
        let GradientSlot {
            buffer: grad,
            len: grad_len,
        } = grad;
        let (lhs, rhs): (&[E], &[E]) = match (lhs.buffer, rhs.buffer) {
            (Some(lhs), Some(rhs)) => (lhs, rhs),
            _ if Op::DERIVATIVES_READ_OPERANDS => return Err(missing_saved_buffer(Op::NAME)),
            _ => (&[], &[]),
        };
        let partial = |i: usize, j: usize| {
            let (x, y) = if Op::DERIVATIVES_READ_OPERANDS {
                (lhs[i], rhs[j])
            } else {
                (E::ZERO, E::ZERO)
            };
            match operand {
                Operand::Lhs => op.dx(x, y),
                Operand::Rhs => op.dy(x, y),
            }
        };
        let numel = grad_layout.num_elements();
        let operands_dense = !Op::DERIVATIVES_READ_OPERANDS || (is_dense(lhs_layout, lhs) && is_dense(rhs_layout, rhs));
        let dense = operands_dense && grad_layout.is_contiguous() && numel == grad_len;
        // The gradient of a bias broadcast over the leading axes: a sum over rows,
        // row by row, when the other operand (if read) is dense.
        let (other_layout, other) = match operand {
            Operand::Lhs => (rhs_layout, rhs),
            Operand::Rhs => (lhs_layout, lhs),
        };
        let other_dense = !Op::DERIVATIVES_READ_OPERANDS || is_dense(other_layout, other);
        let row = match grad_layout.dims().last() {
            Some(&n) if !dense && other_dense && n > 0 && is_repeated_row(grad_layout) => Some(n),
            _ => None,
        };
        if let Some(n) = row {
            let offset = grad_layout.offset();
            let buffer = match grad {
                Some(buffer) => buffer,
                None => grad.insert(self.try_alloc_zeros(grad_len)?),
            };
            let go = grad_output.get();
            for (r, go_row) in go[..numel].chunks(n).enumerate() {
                let sums = &mut buffer[offset..offset + n];
                for (j, (sum, &g)) in sums.iter_mut().zip(go_row).enumerate() {
                    let (i_lhs, i_rhs) = match operand {
                        Operand::Lhs => (offset + j, r * n + j),
                        Operand::Rhs => (r * n + j, offset + j),
                    };
                    *sum += g * partial(i_lhs, i_rhs);
                }
            }
            return Ok(());
        }
        match grad {
            None if dense => {
                // For `x + y` the output's gradient is just moved.
                let moves = !Op::DERIVATIVES_READ_OPERANDS && partial(0, 0) == E::ONE;
                *grad = Some(first_gradient(grad_output, numel, moves, |i| partial(i, i))?);
            }
            None => {
                let mut buffer = self.try_alloc_zeros(grad_len)?;
                accumulate_binary(
                    &mut buffer,
                    lhs_layout,
                    rhs_layout,
                    grad_layout,
                    grad_output.get(),
                    dense,
                    partial,
                );
                *grad = Some(buffer);
            }
            Some(buffer) => accumulate_binary(
                buffer,
                lhs_layout,
                rhs_layout,
                grad_layout,
                grad_output.get(),
                dense,
                partial,
            ),
        }
        Ok(())
    }
}

/// Whether `layout` reads one contiguous row again and again: its last axis has
/// stride 1 and every other axis stride 0 (or size 1) — a bias broadcast over the
/// leading axes.
fn is_repeated_row(layout: &Layout) -> bool {
    let (dims, strides) = (layout.dims(), layout.strides());
    let Some((&n, outer)) = dims.split_last() else {
        return false;
    };
    let last_stride = strides[dims.len() - 1];
    (last_stride == 1 || n == 1) && outer.iter().zip(strides).all(|(&d, &s)| s == 0 || d == 1)
}

/// The row `layout` repeats, when it is one (see [`is_repeated_row`]) and `buffer`
/// holds it.
fn repeated_row<'b, E>(layout: &Layout, buffer: &'b [E]) -> Option<&'b [E]> {
    let n = *layout.dims().last()?;
    if n == 0 || !is_repeated_row(layout) {
        return None;
    }
    buffer.get(layout.offset()..layout.offset() + n)
}

/// For a layout whose last axis repeats one element (stride 0, a per-channel value
/// broadcast over the pixels of `(N, C, H·W)`): the length of those runs and the layout
/// of the value each run reads, so a kernel reads it once per run instead of walking
/// both layouts element by element.
fn constant_runs(layout: &Layout) -> Option<(usize, Layout)> {
    let rank = layout.rank();
    let run = *layout.dims().last()?;
    // Short runs gain little over the general walk.
    if run < 8 || layout.strides()[rank - 1] != 0 {
        return None;
    }
    let outer =
        Layout::from_parts(&layout.dims()[..rank - 1], &layout.strides()[..rank - 1]).with_offset(layout.offset());
    Some((run, outer))
}

/// `grad[g] += grad_output[k] · partial(i, j)` over the three layouts.
fn accumulate_binary<E: Dtype>(
    grad: &mut [E],
    lhs_layout: &Layout,
    rhs_layout: &Layout,
    grad_layout: &Layout,
    grad_output: &[E],
    dense: bool,
    partial: impl Fn(usize, usize) -> E,
) {
    if dense {
        accumulate_dense(grad, grad_output, grad_layout.num_elements(), |i| partial(i, i));
        return;
    }
    let offsets = lhs_layout
        .offsets()
        .zip(rhs_layout.offsets())
        .zip(grad_layout.offsets());
    for (k, ((i, j), g)) in offsets.enumerate() {
        grad[g] += grad_output[k] * partial(i, j);
    }
}
