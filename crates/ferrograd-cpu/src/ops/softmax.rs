//! Softmax and log-softmax: one pass over memory per direction.
//!
//! When the rows are contiguous (normalising the last axis of a contiguous tensor, or of
//! a view whose rows stay contiguous) each row is handled whole while it sits in the L1
//! cache: its maximum, the sum of shifted exponentials, then the normalised values, so
//! the input is read from memory once and the output written once. Other layouts walk
//! the tensor in row-major order three times with one running maximum and sum per row
//! (kept in small buffers), never materialising an intermediate tensor.

use crate::device::{Cpu, CpuBuffer, try_vec};
use crate::ops::elementwise::is_dense;
use crate::ops::reduce::{
    Groups, Walk, contiguous_strides, exp, for_row_shares, max_ignoring_nan, multiversion, neg_inf, output_strides,
    sum_map, sum_map2,
};
use ferrograd_device::ops::softmax::{SoftmaxKernel, SoftmaxKind};
use ferrograd_device::{Dtype, Error, Input, Layout};

/// Normalises one row in place.
#[inline(always)]
fn normalise_row<E: Dtype>(kind: SoftmaxKind, row: &mut [E]) {
    let m = max_ignoring_nan(row);
    match kind {
        SoftmaxKind::Softmax => {
            for v in row.iter_mut() {
                *v = exp(*v - m);
            }
            let inv = E::ONE / sum_map(row, |e| e);
            for v in row.iter_mut() {
                *v *= inv;
            }
        }
        SoftmaxKind::LogSoftmax => {
            let log_sum = sum_map(row, |x| exp(x - m)).ln();
            for v in row.iter_mut() {
                *v = (*v - m) - log_sum;
            }
        }
    }
}

/// Accumulates one row's input gradient from its output and output gradient.
#[inline(always)]
fn backward_row<E: Dtype>(kind: SoftmaxKind, y: &[E], dy: &[E], dx: &mut [E]) {
    match kind {
        SoftmaxKind::Softmax => {
            let dot = sum_map2(dy, y, |g, y| g * y);
            for ((d, &y), &g) in dx.iter_mut().zip(y).zip(dy) {
                *d += y * (g - dot);
            }
        }
        SoftmaxKind::LogSoftmax => {
            let total = sum_map(dy, |g| g);
            for ((d, &y), &g) in dx.iter_mut().zip(y).zip(dy) {
                *d += g - exp(y) * total;
            }
        }
    }
}

multiversion! {
    /// Normalises the consecutive `len`-element rows of `buffer` in place.
    fn forward_rows_in_place<E>(kind: SoftmaxKind, buffer: &mut [E], len: usize) {
        if len > 0 {
            for row in buffer.chunks_exact_mut(len) {
                normalise_row(kind, row);
            }
        }
    }
}

multiversion! {
    /// Appends to `out` the normalised runs of `len` elements of `x` that start at the
    /// offsets of `starts`: each row is copied (read from memory once), then
    /// normalised while it sits in the L1 cache.
    fn forward_runs<E>(kind: SoftmaxKind, x: &[E], starts: &Layout, len: usize, out: &mut Vec<E>) {
        for s in starts.offsets() {
            let start = out.len();
            out.extend_from_slice(&x[s..s + len]);
            normalise_row(kind, &mut out[start..]);
        }
    }
}

multiversion! {
    /// Accumulates the gradient of consecutive rows of `len` elements.
    fn backward_rows<E>(kind: SoftmaxKind, len: usize, y: &[E], dy: &[E], dx: &mut [E]) {
        if len > 0 {
            let rows = y.chunks_exact(len).zip(dy.chunks_exact(len));
            for (dx, (y, dy)) in dx.chunks_exact_mut(len).zip(rows) {
                backward_row(kind, y, dy, dx);
            }
        }
    }
}

multiversion! {
    /// Accumulates the gradient of every row: the contiguous rows of `y` and `dy`, into
    /// the runs of `dx` that start at the offsets of `starts`.
    fn backward_runs<E>(kind: SoftmaxKind, starts: &Layout, len: usize, y: &[E], dy: &[E], dx: &mut [E]) {
        if len > 0 {
            let rows = y.chunks_exact(len).zip(dy.chunks_exact(len));
            for (s, (y, dy)) in starts.offsets().zip(rows) {
                backward_row(kind, y, dy, &mut dx[s..s + len]);
            }
        }
    }
}

/// The value of an element from its input `x` and its row's statistics: the maximum
/// and `1 / Σ exp(x − max)` (softmax) or `ln Σ exp(x − max)` (log-softmax).
#[inline(always)]
fn normalise<E: Dtype>(kind: SoftmaxKind, x: E, max: E, stat: E) -> E {
    match kind {
        SoftmaxKind::Softmax => exp(x - max) * stat,
        SoftmaxKind::LogSoftmax => (x - max) - stat,
    }
}

/// The per-row statistics of [`normalise`] over any layout: two walks.
fn row_stats<E: Dtype>(kind: SoftmaxKind, x: &[E], walk: &Walk<3>, rows: usize) -> (Vec<E>, Vec<E>) {
    let mut max = vec![neg_inf::<E>(); rows];
    walk.for_each(|[i, r, _]| {
        if x[i] > max[r] {
            max[r] = x[i];
        }
    });
    let mut stat = vec![E::ZERO; rows];
    walk.for_each(|[i, r, _]| stat[r] += exp(x[i] - max[r]));
    for s in &mut stat {
        *s = match kind {
            SoftmaxKind::Softmax => E::ONE / *s,
            SoftmaxKind::LogSoftmax => s.ln(),
        };
    }
    (max, stat)
}

/// The walk pairing each input element (through `layout`) with its row (offset 1) and
/// its place in the contiguous output (offset 2).
fn softmax_walk(layout: &Layout, axes: &[usize]) -> Walk<3> {
    let dims = layout.dims();
    let rank = dims.len();
    let (to_row, to_out) = (output_strides(dims, axes), contiguous_strides(dims));
    Walk::new(
        dims,
        [layout.strides(), &to_row[..rank], &to_out[..rank]],
        [layout.offset(), 0, 0],
    )
}

impl<E: Dtype> SoftmaxKernel<E> for Cpu {
    fn forward(
        &self,
        kind: SoftmaxKind,
        input: Input<'_, CpuBuffer<E>>,
        layout: &Layout,
        axes: &[usize],
    ) -> Result<CpuBuffer<E>, Error> {
        let numel = layout.num_elements();
        let groups = Groups::new(layout, axes);
        let len = groups.len;
        let input = match input {
            // The buffer is ours and dense: normalise it in place.
            Input::Unique(mut buffer) if is_dense(layout, &buffer) => {
                buffer.0.truncate(numel);
                if groups.runs.is_some() {
                    for_row_shares(&mut buffer, len, |_, rows| forward_rows_in_place(kind, rows, len));
                } else {
                    let walk = softmax_walk(layout, axes);
                    let (max, stat) = row_stats(kind, &buffer, &walk, groups.count);
                    // Dense: every element's input and output offsets coincide.
                    walk.for_each(|[i, r, _]| buffer[i] = normalise(kind, buffer[i], max[r], stat[r]));
                }
                return Ok(buffer);
            }
            input => input,
        };
        let x = input.get();
        let mut out = try_vec(numel)?;
        if let Some(starts) = groups.runs {
            forward_runs(kind, x, &starts, len, &mut out);
        } else {
            out.resize(numel, E::ZERO);
            let walk = softmax_walk(layout, axes);
            let (max, stat) = row_stats(kind, x, &walk, groups.count);
            walk.for_each(|[i, r, o]| out[o] = normalise(kind, x[i], max[r], stat[r]));
        }
        Ok(CpuBuffer(out))
    }

    fn backward(
        &self,
        kind: SoftmaxKind,
        layout: &Layout,
        axes: &[usize],
        output: &CpuBuffer<E>,
        grad_input: &mut CpuBuffer<E>,
        grad_output: &CpuBuffer<E>,
    ) -> Result<(), Error> {
        let groups = Groups::new(layout, axes);
        let len = groups.len;
        if let Some(starts) = groups.runs {
            let numel = layout.num_elements();
            if is_dense(layout, grad_input) {
                // Rows at `row · len` in every buffer: split them across threads.
                let (y, dy) = (&output[..numel], &grad_output[..numel]);
                for_row_shares(&mut grad_input[..numel], len, |first, dx| {
                    let rows = first * len..first * len + dx.len();
                    backward_rows(kind, len, &y[rows.clone()], &dy[rows], dx);
                });
            } else {
                backward_runs(kind, &starts, len, output, grad_output, grad_input);
            }
            return Ok(());
        }
        let walk = softmax_walk(layout, axes);
        let mut total = vec![E::ZERO; groups.count];
        match kind {
            SoftmaxKind::Softmax => {
                walk.for_each(|[_, r, o]| total[r] += grad_output[o] * output[o]);
                walk.for_each(|[i, r, o]| grad_input[i] += output[o] * (grad_output[o] - total[r]));
            }
            SoftmaxKind::LogSoftmax => {
                walk.for_each(|[_, r, o]| total[r] += grad_output[o]);
                walk.for_each(|[i, r, o]| grad_input[i] += grad_output[o] - exp(output[o]) * total[r]);
            }
        }
        Ok(())
    }
}
