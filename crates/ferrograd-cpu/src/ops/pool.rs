//! Max, average and adaptive average pooling, plane by plane.
//!
//! Every pooling here is separable in its windows: output row `y` reads a run of
//! input rows (`start`, `start + step`, …, `taps` of them) and output column `x` a run
//! of columns, so each axis's windows are worked out once per call into a table, and
//! the plane loops only read them. An average divides by a per-axis count too (the
//! window's size with or without its padding), the product of the two.
//!
//! Planes (batch × channels) are independent: a large pooling splits them across the
//! thread pool, each share writing its own planes of the output (or, in backward, of
//! a contiguous input gradient). The common 2×2, stride-2 max pooling of a plane whose
//! columns are adjacent has a loop of its own.

use super::reduce::PARALLEL_MIN;
use crate::host::{Cpu, CpuBuffer};
use crate::threads::for_each_chunk_mut;
use ferrograd_device::ops::pool::{AdaptivePool2dSpec, Pool2dKernel, Pool2dSpec, check_grad_output, check_operand};
use ferrograd_device::{Dtype, Error, Layout, Storage, View, ViewMut};

/// The input pixels one output position reads along one axis.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Window {
    /// The first input index read.
    start: usize,
    /// How many indices are read, `step` apart.
    taps: usize,
    /// What an average divides by along this axis.
    count: usize,
}

/// The windows of a max or average pooling along one axis: taps `i·stride - pad +
/// j·dilation` for `j < kernel`, those inside `0..input`. An average counts the
/// window up to the end of the padding when `include_pad` (as PyTorch does, a ceil-mode
/// window overhanging the padding counts only to its end), else the pixels it reads.
fn pool_windows(
    output: usize,
    input: usize,
    kernel: usize,
    stride: usize,
    pad: usize,
    dilation: usize,
    include_pad: bool,
) -> Vec<Window> {
    (0..output)
        .map(|i| {
            let first = (i * stride) as i64 - pad as i64;
            let (dilation_i, input_i) = (dilation as i64, input as i64);
            // Taps before the input, and taps before the end of the input.
            let skipped = if first < 0 {
                (-first + dilation_i - 1) / dilation_i
            } else {
                0
            };
            let inside = if input_i > first {
                ((input_i - first + dilation_i - 1) / dilation_i).min(kernel as i64)
            } else {
                0
            };
            let taps = (inside - skipped).max(0) as usize;
            let start = if taps > 0 {
                (first + skipped * dilation_i) as usize
            } else {
                0
            };
            let padded_end = (first + kernel as i64).min(input_i + pad as i64);
            let count = if include_pad {
                (padded_end - first) as usize
            } else {
                taps
            };
            Window { start, taps, count }
        })
        .collect()
}

/// The windows of an adaptive average pooling along one axis.
fn adaptive_windows(output: usize, range: impl Fn(usize) -> std::ops::Range<usize>) -> Vec<Window> {
    (0..output)
        .map(|i| {
            let r = range(i);
            Window {
                start: r.start,
                taps: r.len(),
                count: r.len(),
            }
        })
        .collect()
}

/// What a plane loop does in each window.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Max,
    /// Divide by the product of the two counts (PyTorch's `avg_pool2d`).
    Average,
    /// Divide by one count, then the other (PyTorch's `adaptive_avg_pool2d`).
    Adaptive,
}

/// One pooling's geometry, shared by its planes.
struct Plan {
    mode: Mode,
    /// Planes: batch × channels.
    channels: usize,
    planes: usize,
    in_plane: [usize; 2],
    rows: Vec<Window>,
    columns: Vec<Window>,
    /// Steps between taps: `[rows, columns]`.
    step: [usize; 2],
    /// Whether every window is a full 2×2 block, 2 apart: the fast max pooling.
    two_by_two: bool,
}

impl Plan {
    fn pool(spec: &Pool2dSpec) -> Self {
        let p = &spec.params;
        let include_pad = p.count_include_pad && !spec.op.is_max();
        let rows = pool_windows(
            spec.out_height,
            spec.in_height,
            p.kernel[0],
            p.stride[0],
            p.padding[0],
            p.dilation[0],
            include_pad,
        );
        let columns = pool_windows(
            spec.out_width,
            spec.in_width,
            p.kernel[1],
            p.stride[1],
            p.padding[1],
            p.dilation[1],
            include_pad,
        );
        let full = |w: &[Window]| w.iter().all(|w| w.taps == 2);
        let two_by_two = spec.op.is_max()
            && p.kernel == [2, 2]
            && p.stride == [2, 2]
            && p.padding == [0, 0]
            && full(&rows)
            && full(&columns);
        Self {
            mode: if spec.op.is_max() { Mode::Max } else { Mode::Average },
            channels: spec.channels,
            planes: spec.batch * spec.channels,
            in_plane: [spec.in_height, spec.in_width],
            rows,
            columns,
            step: p.dilation,
            two_by_two,
        }
    }

    fn adaptive(spec: &AdaptivePool2dSpec) -> Self {
        Self {
            mode: Mode::Adaptive,
            channels: spec.channels,
            planes: spec.batch * spec.channels,
            in_plane: [spec.in_height, spec.in_width],
            rows: adaptive_windows(spec.out_height, |i| spec.rows(i)),
            columns: adaptive_windows(spec.out_width, |i| spec.columns(i)),
            step: [1, 1],
            two_by_two: false,
        }
    }

    fn out_plane(&self) -> usize {
        self.rows.len() * self.columns.len()
    }

    fn in_plane_len(&self) -> usize {
        self.in_plane[0] * self.in_plane[1]
    }

    /// Planes per share: all of them when the pooling is too small to split.
    fn planes_per_share(&self) -> usize {
        let threads = crate::threads().min(self.planes);
        if threads < 2 || self.planes * self.in_plane_len().max(self.out_plane()) < PARALLEL_MIN {
            self.planes.max(1)
        } else {
            self.planes.div_ceil(threads)
        }
    }

    /// Where plane `plane` starts in a rank-4 operand, and its row and column strides.
    fn plane_of(&self, layout: &Layout, plane: usize) -> (usize, usize, usize) {
        let s = layout.strides();
        let (image, channel) = (plane / self.channels.max(1), plane % self.channels.max(1));
        (layout.offset() + image * s[0] + channel * s[1], s[2], s[3])
    }

    /// The (row, column) in the plane of window `(y, x)`'s maximum, by PyTorch's rule:
    /// starting from −∞ at the window's first pixel, a value replaces the best so far
    /// when greater, or when NaN (so the first of tied maxima wins, and the last NaN).
    /// `None` for a window that reads no pixel.
    #[inline]
    fn argmax<E: Dtype>(
        &self,
        input: &[E],
        base: usize,
        rs: usize,
        cs: usize,
        y: usize,
        x: usize,
    ) -> Option<(usize, usize)> {
        let (row, column) = (self.rows[y], self.columns[x]);
        if row.taps == 0 || column.taps == 0 {
            return None;
        }
        let mut best = E::from_f64(f64::NEG_INFINITY);
        let mut at = (row.start, column.start);
        for i in 0..row.taps {
            let r = row.start + i * self.step[0];
            for j in 0..column.taps {
                let c = column.start + j * self.step[1];
                let value = input[base + r * rs + c * cs];
                if value > best || value.is_nan() {
                    best = value;
                    at = (r, c);
                }
            }
        }
        Some(at)
    }

    /// Pools one plane of the input (starting at `base`, strides `rs`, `cs`) into
    /// `out` (contiguous, `out_plane` elements).
    fn forward_plane<E: Dtype>(&self, input: &[E], base: usize, rs: usize, cs: usize, out: &mut [E]) {
        let width = self.columns.len();
        if self.two_by_two && cs == 1 {
            for (y, out) in out.chunks_exact_mut(width).enumerate() {
                let top = &input[base + 2 * y * rs..][..2 * width];
                let bottom = &input[base + (2 * y + 1) * rs..][..2 * width];
                for ((out, top), bottom) in out.iter_mut().zip(top.chunks_exact(2)).zip(bottom.chunks_exact(2)) {
                    *out = max4(top[0], top[1], bottom[0], bottom[1]).0;
                }
            }
            return;
        }
        for (y, out) in out.chunks_exact_mut(width.max(1)).enumerate() {
            let row = self.rows[y];
            for (x, out) in out.iter_mut().enumerate() {
                let column = self.columns[x];
                *out = match self.mode {
                    Mode::Max => match self.argmax(input, base, rs, cs, y, x) {
                        Some((r, c)) => input[base + r * rs + c * cs],
                        None => E::from_f64(f64::NEG_INFINITY),
                    },
                    Mode::Average | Mode::Adaptive => {
                        let mut sum = E::ZERO;
                        for i in 0..row.taps {
                            let r = base + (row.start + i) * rs;
                            for j in 0..column.taps {
                                sum += input[r + (column.start + j) * cs];
                            }
                        }
                        self.divide(sum, row, column)
                    }
                };
            }
        }
    }

    /// An average's sum (or gradient) divided as PyTorch divides it; 0 for an empty
    /// window.
    #[inline]
    fn divide<E: Dtype>(&self, sum: E, row: Window, column: Window) -> E {
        if row.taps == 0 || column.taps == 0 {
            return E::ZERO;
        }
        match self.mode {
            Mode::Adaptive => sum / E::from_f64(row.count as f64) / E::from_f64(column.count as f64),
            _ => sum / E::from_f64((row.count * column.count) as f64),
        }
    }

    /// Adds one plane's output gradient (contiguous) into its input gradient
    /// `grad` (contiguous, `in_plane` elements). Max pooling reads the plane's input
    /// (at `base`, strides `rs`, `cs`) to find each window's maximum again.
    fn backward_plane<E: Dtype>(&self, input: Option<(&[E], usize, usize, usize)>, grad_output: &[E], grad: &mut [E]) {
        let width = self.columns.len();
        let in_width = self.in_plane[1];
        if let (true, Some((input, base, rs, 1))) = (self.two_by_two, input) {
            for (y, (grad_row, grad)) in grad_output
                .chunks_exact(width)
                .zip(grad.chunks_exact_mut(2 * in_width))
                .enumerate()
            {
                let top = &input[base + 2 * y * rs..][..2 * width];
                let bottom = &input[base + (2 * y + 1) * rs..][..2 * width];
                for (x, &g) in grad_row.iter().enumerate() {
                    let (a, b) = (2 * x, 2 * x + 1);
                    let at = max4_index(top[a], top[b], bottom[a], bottom[b]);
                    grad[(at >> 1) * in_width + a + (at & 1)] += g;
                }
            }
            return;
        }
        for (y, grad_row) in grad_output.chunks_exact(width.max(1)).enumerate() {
            let row = self.rows[y];
            for (x, &g) in grad_row.iter().enumerate() {
                let column = self.columns[x];
                match (self.mode, input) {
                    (Mode::Max, Some((input, base, rs, cs))) => {
                        if let Some((r, c)) = self.argmax(input, base, rs, cs, y, x) {
                            grad[r * in_width + c] += g;
                        }
                    }
                    _ => {
                        let share = self.divide(g, row, column);
                        for i in 0..row.taps {
                            let start = (row.start + i) * in_width + column.start;
                            for target in &mut grad[start..start + column.taps] {
                                *target += share;
                            }
                        }
                    }
                }
            }
        }
    }
}

impl Plan {
    /// One plane's first input gradient of the 2×2 max pooling, written whole into
    /// `grad` (contiguous, `in_plane` elements, any values before): each window's
    /// gradient at its maximum and zeros elsewhere, the odd last row and column too.
    fn two_by_two_backward_new<E: Dtype>(
        &self,
        input: &[E],
        base: usize,
        rs: usize,
        grad_output: &[E],
        grad: &mut [E],
    ) {
        let width = self.columns.len();
        let in_width = self.in_plane[1];
        let covered = 2 * self.rows.len() * in_width;
        let (pairs, rest) = grad.split_at_mut(covered);
        rest.fill(E::ZERO);
        for (y, (grad_row, grad)) in grad_output
            .chunks_exact(width)
            .zip(pairs.chunks_exact_mut(2 * in_width))
            .enumerate()
        {
            let top = &input[base + 2 * y * rs..][..2 * width];
            let bottom = &input[base + (2 * y + 1) * rs..][..2 * width];
            let (grad_top, grad_bottom) = grad.split_at_mut(in_width);
            grad_top[2 * width..].fill(E::ZERO);
            grad_bottom[2 * width..].fill(E::ZERO);
            let windows = grad_row
                .iter()
                .zip(top.chunks_exact(2).zip(bottom.chunks_exact(2)))
                .zip(grad_top.chunks_exact_mut(2).zip(grad_bottom.chunks_exact_mut(2)));
            for ((&g, (top, bottom)), (grad_top, grad_bottom)) in windows {
                let at = max4_index(top[0], top[1], bottom[0], bottom[1]);
                grad_top.fill(E::ZERO);
                grad_bottom.fill(E::ZERO);
                let target = if at < 2 { grad_top } else { grad_bottom };
                target[at & 1] = g;
            }
        }
    }
}

/// The maximum of a 2×2 window read row by row, and which of the four it is, by
/// PyTorch's rule (see [`Plan::argmax`]).
#[inline(always)]
fn max4<E: Dtype>(a: E, b: E, c: E, d: E) -> (E, usize) {
    let (mut best, mut at) = (a, 0);
    for (k, v) in [(1, b), (2, c), (3, d)] {
        if v > best || v.is_nan() {
            best = v;
            at = k;
        }
    }
    (best, at)
}

/// Which of a 2×2 window's four pixels (row by row) [`max4`] picks: the first equal
/// to the maximum, or the last NaN.
///
/// Worked out from the maximum with flags and arithmetic rather than [`max4`]'s running
/// index, which compiles to branches: which pixel wins is a coin toss on real data,
/// and a mispredicted branch per window cost several times the rest of the loop.
#[inline(always)]
fn max4_index<E: Dtype>(a: E, b: E, c: E, d: E) -> usize {
    // NaN exactly when one of the four is: then nothing equals it.
    let best = max4(a, b, c, d).0;
    let (ea, eb, ec) = (a == best, b == best, c == best);
    let first_equal = usize::from(!ea) + usize::from(!ea & !eb) + usize::from(!ea & !eb & !ec);
    let (nb, nc, nd) = (b.is_nan(), c.is_nan(), d.is_nan());
    let last_nan = 3 * usize::from(nd) + usize::from(!nd) * (2 * usize::from(nc) + usize::from(!nc & nb));
    // Without a NaN, `last_nan` is 0; with one, `first_equal` is 3.
    first_equal - usize::from(best.is_nan()) * (3 - last_nan)
}

/// Whether a rank-4 layout is row-major (ignoring axes of size 1), so its elements
/// are one block from its offset, plane after plane.
fn is_row_major(layout: &Layout) -> bool {
    let mut step = 1;
    for (&dim, &stride) in layout.dims().iter().zip(layout.strides()).rev() {
        if dim != 1 && stride != step {
            return false;
        }
        step *= dim;
    }
    true
}

impl Cpu {
    fn pool_forward<E: Dtype>(&self, plan: &Plan, input: &[E], layout: &Layout) -> Result<CpuBuffer<E>, Error> {
        let out_plane = plan.out_plane();
        let mut out = self.try_alloc_for_overwrite(plan.planes * out_plane)?;
        if out.is_empty() {
            return Ok(out);
        }
        let per_share = plan.planes_per_share();
        for_each_chunk_mut(&mut out, per_share * out_plane, |share, chunk| {
            for (k, out) in chunk.chunks_exact_mut(out_plane).enumerate() {
                let (base, rs, cs) = plan.plane_of(layout, share * per_share + k);
                plan.forward_plane(input, base, rs, cs, out);
            }
        });
        Ok(out)
    }

    fn pool_backward<E: Dtype>(
        &self,
        plan: &Plan,
        input: Option<(&[E], &Layout)>,
        grad_output: &[E],
        (grad, grad_layout): (&mut CpuBuffer<E>, &Layout),
    ) -> Result<(), Error> {
        let (in_plane, out_plane) = (plan.in_plane_len(), plan.out_plane());
        let total = plan.planes * in_plane;
        if total == 0 || out_plane == 0 {
            return Ok(());
        }
        let per_share = plan.planes_per_share();
        let run = |block: &mut [E]| {
            for_each_chunk_mut(block, per_share * in_plane, |share, chunk| {
                for (k, grad) in chunk.chunks_exact_mut(in_plane).enumerate() {
                    let plane = share * per_share + k;
                    let input = input.map(|(input, layout)| {
                        let (base, rs, cs) = plan.plane_of(layout, plane);
                        (input, base, rs, cs)
                    });
                    let grad_output = &grad_output[plane * out_plane..(plane + 1) * out_plane];
                    plan.backward_plane(input, grad_output, grad);
                }
            });
        };
        if is_row_major(grad_layout) {
            let offset = grad_layout.offset();
            run(&mut grad[offset..offset + total]);
        } else {
            // A view's planes may share elements (a broadcast): sum into a contiguous
            // block first, then add it through the layout on one thread.
            let mut scratch = self.try_alloc_zeros(total)?;
            run(&mut scratch);
            for (from, to) in grad_layout.offsets().enumerate() {
                grad[to] += scratch[from];
            }
        }
        Ok(())
    }
}

impl<E: Dtype> Pool2dKernel<E> for Cpu {
    fn max_pool2d_forward(&self, spec: &Pool2dSpec, input: View<'_, CpuBuffer<E>>) -> Result<CpuBuffer<E>, Error> {
        spec.check()?;
        check_operand(spec.op.name(), "input", &input, &spec.input_dims())?;
        self.pool_forward(&Plan::pool(spec), input.buffer, &input.layout)
    }

    fn max_pool2d_backward(
        &self,
        spec: &Pool2dSpec,
        input: View<'_, CpuBuffer<E>>,
        grad_output: &CpuBuffer<E>,
        grad_input: ViewMut<'_, CpuBuffer<E>>,
    ) -> Result<(), Error> {
        let op = spec.op.name();
        spec.check()?;
        check_operand(op, "input", &input, &spec.input_dims())?;
        check_operand(op, "input's gradient", &grad_input.as_view(), &spec.input_dims())?;
        check_grad_output(op, &spec.output_dims(), grad_output.len())?;
        self.pool_backward(
            &Plan::pool(spec),
            Some((input.buffer, &input.layout)),
            grad_output,
            (grad_input.buffer, &grad_input.layout),
        )
    }

    fn max_pool2d_backward_new(
        &self,
        spec: &Pool2dSpec,
        input: View<'_, CpuBuffer<E>>,
        grad_output: &CpuBuffer<E>,
    ) -> Result<CpuBuffer<E>, Error> {
        let op = spec.op.name();
        spec.check()?;
        check_operand(op, "input", &input, &spec.input_dims())?;
        check_grad_output(op, &spec.output_dims(), grad_output.len())?;
        let (input, layout) = (input.buffer, &input.layout);
        let plan = Plan::pool(spec);
        let (in_plane, out_plane) = (plan.in_plane_len(), plan.out_plane());
        let total = plan.planes * in_plane;
        let dims = spec.input_dims();
        let grad_layout = Layout::from_parts(&dims, &[dims[1] * in_plane, in_plane, dims[3], 1]);
        if !plan.two_by_two || layout.strides()[3] != 1 || out_plane == 0 {
            let mut grad = self.try_alloc_zeros(total)?;
            self.pool_backward(&plan, Some((input, layout)), grad_output, (&mut grad, &grad_layout))?;
            return Ok(grad);
        }
        // Every element is written below: no zeroing pass first.
        let mut grad = self.try_alloc_for_overwrite(total)?;
        let per_share = plan.planes_per_share();
        for_each_chunk_mut(&mut grad, per_share * in_plane, |share, chunk| {
            for (k, grad) in chunk.chunks_exact_mut(in_plane).enumerate() {
                let plane = share * per_share + k;
                let (base, rs, _) = plan.plane_of(layout, plane);
                let grad_output = &grad_output[plane * out_plane..(plane + 1) * out_plane];
                plan.two_by_two_backward_new(input, base, rs, grad_output, grad);
            }
        });
        Ok(grad)
    }

    fn avg_pool2d_forward(&self, spec: &Pool2dSpec, input: View<'_, CpuBuffer<E>>) -> Result<CpuBuffer<E>, Error> {
        spec.check()?;
        check_operand(spec.op.name(), "input", &input, &spec.input_dims())?;
        self.pool_forward(&Plan::pool(spec), input.buffer, &input.layout)
    }

    fn avg_pool2d_backward(
        &self,
        spec: &Pool2dSpec,
        grad_output: &CpuBuffer<E>,
        grad_input: ViewMut<'_, CpuBuffer<E>>,
    ) -> Result<(), Error> {
        let op = spec.op.name();
        spec.check()?;
        check_operand(op, "input's gradient", &grad_input.as_view(), &spec.input_dims())?;
        check_grad_output(op, &spec.output_dims(), grad_output.len())?;
        self.pool_backward(
            &Plan::pool(spec),
            None,
            grad_output,
            (grad_input.buffer, &grad_input.layout),
        )
    }

    fn adaptive_avg_pool2d_forward(
        &self,
        spec: &AdaptivePool2dSpec,
        input: View<'_, CpuBuffer<E>>,
    ) -> Result<CpuBuffer<E>, Error> {
        spec.check()?;
        check_operand("adaptive_avg_pool2d", "input", &input, &spec.input_dims())?;
        self.pool_forward(&Plan::adaptive(spec), input.buffer, &input.layout)
    }

    fn adaptive_avg_pool2d_backward(
        &self,
        spec: &AdaptivePool2dSpec,
        grad_output: &CpuBuffer<E>,
        grad_input: ViewMut<'_, CpuBuffer<E>>,
    ) -> Result<(), Error> {
        let op = "adaptive_avg_pool2d";
        spec.check()?;
        check_operand(op, "input's gradient", &grad_input.as_view(), &spec.input_dims())?;
        check_grad_output(op, &spec.output_dims(), grad_output.len())?;
        self.pool_backward(
            &Plan::adaptive(spec),
            None,
            grad_output,
            (grad_input.buffer, &grad_input.layout),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferrograd_device::ops::pool::{Pool2dParams, PoolOp};

    fn contiguous(dims: [usize; 4]) -> Layout {
        Layout::from_parts(&dims, &[dims[1] * dims[2] * dims[3], dims[2] * dims[3], dims[3], 1])
    }

    /// Windows by hand: kernel 3, stride 2, pad 1 over 5 pixels, ceil mode (3 windows):
    /// starts -1, 1, 3 → taps 0..2, 1..4, 3..5; with the padding counted, the first
    /// spans -1..2 (3), the last 3..6 (3, up to the padding's end).
    #[test]
    fn windows_clip_to_the_input() {
        let w = pool_windows(3, 5, 3, 2, 1, 1, true);
        let w: Vec<_> = w.iter().map(|w| (w.start, w.taps, w.count)).collect();
        assert_eq!(w, [(0, 2, 3), (1, 3, 3), (3, 2, 3)]);
        // A window overhanging past the padding counts only to its end: start 4 of a
        // 2-kernel over 5 pixels with pad 0 spans 4..6, the padding ends at 5.
        let w = pool_windows(3, 5, 2, 2, 0, 1, true);
        assert_eq!(
            w[2],
            Window {
                start: 4,
                taps: 1,
                count: 1
            }
        );
        // Dilation 2, kernel 3, pad 1: taps -1, 1, 3 → 1, 3.
        let w = pool_windows(1, 5, 3, 1, 1, 2, false);
        assert_eq!(
            w[0],
            Window {
                start: 1,
                taps: 2,
                count: 2
            }
        );
    }

    /// The 2×2 fast path and the general loop agree, on values with ties, and NaN
    /// propagates in both.
    #[test]
    fn the_two_by_two_path_matches_the_general_one() {
        let cpu = Cpu::default();
        let dims = [2, 3, 6, 8];
        let mut values: Vec<f64> = (0..288).map(|i| ((i * 7) % 5) as f64).collect();
        values[17] = f64::NAN;
        let input = CpuBuffer(values);
        let params = Pool2dParams {
            kernel: [2, 2],
            stride: [2, 2],
            padding: [0, 0],
            dilation: [1, 1],
            ceil_mode: false,
            count_include_pad: true,
        };
        let spec = Pool2dSpec::new(PoolOp::MaxPool2d, dims, params).unwrap();
        let fast = cpu
            .max_pool2d_forward(&spec, View::new(&input, contiguous(dims)))
            .unwrap();
        let mut plan = Plan::pool(&spec);
        assert!(plan.two_by_two);
        plan.two_by_two = false;
        let general = cpu.pool_forward(&plan, &input, &contiguous(dims)).unwrap();
        // Pixel 17 is row 2, column 1 of the 8-wide plane: output row 1, column 0.
        assert!(fast[4].is_nan() && general[4].is_nan());
        assert_eq!(format!("{:?}", fast.0), format!("{:?}", general.0));
        let grad_output = CpuBuffer((0..spec.output_dims().iter().product()).map(|i| i as f64).collect());
        let mut fast_grad = CpuBuffer(vec![0.0; 288]);
        cpu.max_pool2d_backward(
            &spec,
            View::new(&input, contiguous(dims)),
            &grad_output,
            ViewMut::new(&mut fast_grad, contiguous(dims)),
        )
        .unwrap();
        let mut general_grad = CpuBuffer(vec![0.0; 288]);
        cpu.pool_backward(
            &plan,
            Some((&input, &contiguous(dims))),
            &grad_output,
            (&mut general_grad, &contiguous(dims)),
        )
        .unwrap();
        assert_eq!(fast_grad.0, general_grad.0);
    }
}
