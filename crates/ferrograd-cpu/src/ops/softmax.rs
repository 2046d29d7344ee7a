//! Softmax and log-softmax: one pass over memory per direction.
//!
//! When the rows are contiguous (normalising the last axis of a contiguous tensor, or of
//! a view whose rows stay contiguous) each row is handled whole while it sits in the L1
//! cache: its maximum, the sum of shifted exponentials, then the normalised values, so
//! the input is read from memory once and the output written once. Other layouts walk
//! the tensor in row-major order three times with one running maximum and sum per row
//! (kept in small buffers), never materialising an intermediate tensor.

use crate::host::{Cpu, CpuBuffer, try_vec, try_vec_for_overwrite};
use crate::ops::elementwise::is_dense;
use crate::ops::reduce::{
    Groups, MulAdd, Separate, Walk, contiguous_strides, exp, for_row_shares, max_ignoring_nan, multiversion, neg_inf,
    output_strides, sum_map, sum_map2,
};
use ferrograd_device::ops::softmax::{SoftmaxKernel, SoftmaxKind};
use ferrograd_device::view::{InputView, check_axes, check_len};
use ferrograd_device::{Dtype, Error, Input, Layout, ViewMut};

/// Normalises one row in place.
#[inline(always)]
fn normalise_row<E: Dtype, M: MulAdd>(kind: SoftmaxKind, row: &mut [E]) {
    let m = max_ignoring_nan(row);
    match kind {
        SoftmaxKind::Softmax => {
            for v in row.iter_mut() {
                *v = exp::<E, M>(*v - m);
            }
            let inv = E::ONE / sum_map(row, |e| e);
            for v in row.iter_mut() {
                *v *= inv;
            }
        }
        SoftmaxKind::LogSoftmax => {
            let log_sum = sum_map(row, |x| exp::<E, M>(x - m)).ln();
            for v in row.iter_mut() {
                *v = (*v - m) - log_sum;
            }
        }
    }
}

/// Accumulates one row's input gradient from its output and output gradient.
#[inline(always)]
fn backward_row<E: Dtype, M: MulAdd>(kind: SoftmaxKind, y: &[E], dy: &[E], dx: &mut [E]) {
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
                *d += g - exp::<E, M>(y) * total;
            }
        }
    }
}

multiversion! {
    /// Normalises the consecutive `len`-element rows of `buffer` in place.
    fn forward_rows_in_place<E, M>(kind: SoftmaxKind, buffer: &mut [E], len: usize) {
        if len > 0 {
            for row in buffer.chunks_exact_mut(len) {
                normalise_row::<E, M>(kind, row);
            }
        }
    }
}

multiversion! {
    /// Appends to `out` the normalised runs of `len` elements of `x` that start at the
    /// offsets of `starts`: each row is copied (read from memory once), then
    /// normalised while it sits in the L1 cache.
    fn forward_runs<E, M>(kind: SoftmaxKind, x: &[E], starts: &Layout, len: usize, out: &mut Vec<E>) {
        for s in starts.offsets() {
            let start = out.len();
            out.extend_from_slice(&x[s..s + len]);
            normalise_row::<E, M>(kind, &mut out[start..]);
        }
    }
}

multiversion! {
    /// Accumulates the gradient of consecutive rows of `len` elements.
    fn backward_rows<E, M>(kind: SoftmaxKind, len: usize, y: &[E], dy: &[E], dx: &mut [E]) {
        if len > 0 {
            let rows = y.chunks_exact(len).zip(dy.chunks_exact(len));
            for (dx, (y, dy)) in dx.chunks_exact_mut(len).zip(rows) {
                backward_row::<E, M>(kind, y, dy, dx);
            }
        }
    }
}

multiversion! {
    /// Accumulates the gradient of every row: the contiguous rows of `y` and `dy`, into
    /// the runs of `dx` that start at the offsets of `starts`.
    fn backward_runs<E, M>(kind: SoftmaxKind, starts: &Layout, len: usize, y: &[E], dy: &[E], dx: &mut [E]) {
        if len > 0 {
            let rows = y.chunks_exact(len).zip(dy.chunks_exact(len));
            for (s, (y, dy)) in starts.offsets().zip(rows) {
                backward_row::<E, M>(kind, y, dy, &mut dx[s..s + len]);
            }
        }
    }
}

/// The value of an element from its input `x` and its row's statistics: the maximum
/// and `1 / Σ exp(x − max)` (softmax) or `ln Σ exp(x − max)` (log-softmax).
#[inline(always)]
fn normalise<E: Dtype>(kind: SoftmaxKind, x: E, max: E, stat: E) -> E {
    match kind {
        SoftmaxKind::Softmax => exp::<E, Separate>(x - max) * stat,
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
    walk.for_each(|[i, r, _]| stat[r] += exp::<E, Separate>(x[i] - max[r]));
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
        input: InputView<'_, CpuBuffer<E>>,
        axes: &[usize],
    ) -> Result<CpuBuffer<E>, Error> {
        check_axes(kind.name(), axes, input.layout.rank())?;
        input.check(kind.name(), "input")?;
        let InputView {
            buffer: input,
            ref layout,
        } = input;
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
        let out = if groups.runs.is_some() && is_dense(layout, x) {
            // Rows split across threads; each row is copied and then normalised while it
            // sits in L1. Every element is written, so the buffer is not filled first.
            let mut out = try_vec_for_overwrite(numel)?;
            for_row_shares(&mut out, len, |first, rows| {
                for (r, row) in rows.chunks_exact_mut(len).enumerate() {
                    let start = (first + r) * len;
                    row.copy_from_slice(&x[start..start + len]);
                    forward_rows_in_place(kind, row, len);
                }
            });
            out
        } else if let Some(starts) = groups.runs {
            let mut out = try_vec(numel)?;
            forward_runs(kind, x, &starts, len, &mut out);
            out
        } else {
            // The walk visits every output element once.
            let mut out = try_vec_for_overwrite(numel)?;
            let walk = softmax_walk(layout, axes);
            let (max, stat) = row_stats(kind, x, &walk, groups.count);
            walk.for_each(|[i, r, o]| out[o] = normalise(kind, x[i], max[r], stat[r]));
            out
        };
        Ok(CpuBuffer(out))
    }

    fn backward(
        &self,
        kind: SoftmaxKind,
        grad_input: ViewMut<'_, CpuBuffer<E>>,
        axes: &[usize],
        output: &CpuBuffer<E>,
        grad_output: &CpuBuffer<E>,
    ) -> Result<(), Error> {
        let op = kind.name();
        check_axes(op, axes, grad_input.layout.rank())?;
        grad_input.check_accumulating(op, "grad_input")?;
        let numel = grad_input.layout.num_elements();
        check_len(op, "output", output.len(), numel)?;
        check_len(op, "grad_output", grad_output.len(), numel)?;
        let ViewMut {
            buffer: grad_input,
            ref layout,
        } = grad_input;
        let groups = Groups::new(layout, axes);
        let len = groups.len;
        if let Some(starts) = groups.runs {
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
                walk.for_each(|[i, r, o]| grad_input[i] += grad_output[o] - exp::<E, Separate>(output[o]) * total[r]);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferrograd_device::Storage;

    /// Large enough to be split across threads, with rows that are not a multiple of
    /// the vector width.
    const ROWS: usize = 700;
    const LEN: usize = 403;

    fn values(n: usize, seed: usize) -> Vec<f64> {
        (0..n)
            .map(|i| (((i * 7919 + seed) % 1009) as f64 - 504.0) / 37.0)
            .collect()
    }

    #[test]
    fn threaded_rows_match_the_single_threaded_paths() {
        let cpu = Cpu::default();
        let n = ROWS * LEN;
        assert!(n >= crate::ops::reduce::PARALLEL_MIN);
        let dense = Layout::from_parts(&[ROWS, LEN], &[LEN, 1]);
        // The same rows one element into a longer buffer: not dense, so one thread.
        let shifted = dense.with_offset(1);
        for kind in [SoftmaxKind::Softmax, SoftmaxKind::LogSoftmax] {
            let x = cpu.try_from_host(values(n, 1)).unwrap();
            let mut padded = vec![0.0];
            padded.extend(values(n, 1));
            let x_shifted = cpu.try_from_host(padded).unwrap();
            let threaded = SoftmaxKernel::forward(&cpu, kind, InputView::new(Input::Unique(x), dense), &[1]).unwrap();
            let single =
                SoftmaxKernel::forward(&cpu, kind, InputView::new(Input::Shared(&x_shifted), shifted), &[1]).unwrap();
            assert_eq!(threaded, single, "{kind:?} forward");

            let dy = cpu.try_from_host(values(n, 5)).unwrap();
            let mut dx = cpu.try_alloc_filled(n, 0.25).unwrap();
            let mut dx_shifted = cpu.try_alloc_filled(n + 1, 0.25).unwrap();
            SoftmaxKernel::backward(&cpu, kind, ViewMut::new(&mut dx, dense), &[1], &threaded, &dy).unwrap();
            SoftmaxKernel::backward(&cpu, kind, ViewMut::new(&mut dx_shifted, shifted), &[1], &threaded, &dy).unwrap();
            assert_eq!(&dx[..], &dx_shifted[1..], "{kind:?} backward");
            assert_eq!(dx_shifted[0], 0.25);
        }
    }

    #[test]
    fn one_row_per_group_of_axes_in_any_layout() {
        let cpu = Cpu::default();
        // (2, 3, 4) normalised over axes 0 and 2 of its transpose-like view.
        let x = cpu.try_from_host(values(24, 3)).unwrap();
        let layout = Layout::from_parts(&[4, 3, 2], &[1, 4, 12]);
        let y = SoftmaxKernel::forward(
            &cpu,
            SoftmaxKind::Softmax,
            InputView::new(Input::Shared(&x), layout),
            &[0, 2],
        )
        .unwrap();
        // Every row (fixed middle index) sums to one.
        for j in 0..3 {
            let total: f64 = (0..4)
                .flat_map(|i| (0..2).map(move |k| (i, k)))
                .map(|(i, k)| y[i * 6 + j * 2 + k])
                .sum();
            assert!((total - 1.0).abs() < 1e-15, "row {j}: {total}");
        }
    }
}
