//! Reductions over axes, and the machinery they share with softmax: splitting an input
//! into groups (one per output element), a fast path when every group is a contiguous
//! run, a general strided walk otherwise, and vectorisable row helpers.
//!
//! The fast path covers reductions over the last axes of contiguous tensors (and of
//! views whose rows stay contiguous, such as slices along an outer axis); each group
//! is then a slice, summed with independent accumulators that the compiler turns into
//! SIMD. Every other layout (permuted, broadcast, a reduction over an outer axis) is
//! walked in the input's logical row-major order, merging axes where the strides allow
//! so that the innermost loop is as long as possible, with one accumulator per output.

use crate::host::{Cpu, CpuBuffer, try_vec};
use crate::threads;
use ferrograd_device::ops::index::ScatterAddKernel;
use ferrograd_device::ops::reduce::{
    ArgExtremumKernel, Extremum, ExtremumKernel, ExtremumWithIndicesKernel, LogSumExpKernel, Spread, SumKernel,
    VarianceKernel, check_axis, check_reduction, check_with_indices_backward,
};
use ferrograd_device::view::{check_axes, check_len, check_reach};
use ferrograd_device::{Dtype, Error, Layout, View, ViewMut};
use ferrograd_shapes::MAX_RANK;
use std::any::TypeId;

// ---------------------------------------------------------------------------------
// Groups and walks
// ---------------------------------------------------------------------------------

/// How the elements of an input split into reduction groups.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Groups {
    /// The number of groups: the output's element count.
    pub count: usize,
    /// The number of elements in each group.
    pub len: usize,
    /// When each group is one contiguous run of `len` elements: a layout over the kept
    /// axes whose offsets (in output order) are the runs' first elements.
    pub runs: Option<Layout>,
}

impl Groups {
    /// Splits `layout`'s elements into the groups of a reduction over `axes`.
    pub(crate) fn new(layout: &Layout, axes: &[usize]) -> Self {
        let (dims, strides) = (layout.dims(), layout.strides());
        // A loss is usually every axis of a contiguous tensor reduced to a scalar: one
        // run, known without the general analysis below (which this skips, not changes).
        if axes.len() == dims.len() && layout.is_contiguous() {
            let len = layout.num_elements();
            return Self {
                count: 1,
                len,
                runs: (len > 0).then(|| Layout::from_parts(&[], &[])),
            };
        }
        let len: usize = axes.iter().map(|&a| dims[a]).product();
        let count: usize = (0..dims.len()).filter(|a| !axes.contains(a)).map(|a| dims[a]).product();
        // Runs: going from the last axis backwards, the reduced axes of size > 1 come
        // first, row-major with stride 1 at the end, before any kept axis of size > 1.
        let mut expected = 1;
        let mut in_reduced_block = true;
        let mut contiguous = len > 0;
        for axis in (0..dims.len()).rev() {
            if dims[axis] == 1 {
                continue;
            }
            if axes.contains(&axis) {
                if !in_reduced_block || strides[axis] != expected {
                    contiguous = false;
                    break;
                }
                expected *= dims[axis];
            } else {
                in_reduced_block = false;
            }
        }
        let runs = contiguous.then(|| {
            let kept: Vec<usize> = (0..dims.len()).filter(|a| !axes.contains(a)).collect();
            let kept_dims: Vec<usize> = kept.iter().map(|&a| dims[a]).collect();
            let kept_strides: Vec<usize> = kept.iter().map(|&a| strides[a]).collect();
            Layout::from_parts(&kept_dims, &kept_strides).with_offset(layout.offset())
        });
        Self { count, len, runs }
    }
}

/// Strides over the input's dims that address the reduced output: 0 on reduced axes,
/// the output's row-major strides on kept axes. Walked beside the input, they pair
/// every input element with the output element it reduces into.
pub(crate) fn output_strides(dims: &[usize], axes: &[usize]) -> [usize; MAX_RANK] {
    let mut strides = [0; MAX_RANK];
    let mut step = 1;
    for axis in (0..dims.len()).rev() {
        if !axes.contains(&axis) {
            strides[axis] = step;
            step *= dims[axis];
        }
    }
    strides
}

/// Strides over the input's dims giving each element's index within its group:
/// row-major over the reduced axes, 0 on kept axes.
fn group_strides(dims: &[usize], axes: &[usize]) -> [usize; MAX_RANK] {
    let mut strides = [0; MAX_RANK];
    let mut step = 1;
    for &axis in axes.iter().rev() {
        strides[axis] = step;
        step *= dims[axis];
    }
    strides
}

/// Row-major strides of `dims`.
pub(crate) fn contiguous_strides(dims: &[usize]) -> [usize; MAX_RANK] {
    let mut strides = [0; MAX_RANK];
    let mut step = 1;
    for axis in (0..dims.len()).rev() {
        strides[axis] = step;
        step *= dims[axis];
    }
    strides
}

/// `N` buffers walked together over one index space in row-major logical order: each
/// step hands the closure one offset per buffer. Size-1 axes are dropped and adjacent
/// axes merged where every buffer's strides allow, so the innermost loop is long.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Walk<const N: usize> {
    rank: usize,
    numel: usize,
    dims: [usize; MAX_RANK],
    strides: [[usize; MAX_RANK]; N],
    starts: [usize; N],
}

impl<const N: usize> Walk<N> {
    /// A walk over `dims`, buffer `k` read at `starts[k] + Σ index · strides[k]`.
    #[allow(clippy::needless_range_loop)] // k walks N parallel arrays
    pub(crate) fn new(dims: &[usize], strides: [&[usize]; N], starts: [usize; N]) -> Self {
        let mut walk = Self {
            rank: 0,
            numel: dims.iter().product(),
            dims: [1; MAX_RANK],
            strides: [[0; MAX_RANK]; N],
            starts,
        };
        for (axis, &size) in dims.iter().enumerate() {
            if size == 1 {
                continue;
            }
            if walk.rank > 0 {
                let last = walk.rank - 1;
                if (0..N).all(|k| walk.strides[k][last] == strides[k][axis] * size) {
                    walk.dims[last] *= size;
                    for k in 0..N {
                        walk.strides[k][last] = strides[k][axis];
                    }
                    continue;
                }
            }
            walk.dims[walk.rank] = size;
            for k in 0..N {
                walk.strides[k][walk.rank] = strides[k][axis];
            }
            walk.rank += 1;
        }
        walk
    }

    /// Calls `f` with the offsets of every element, in row-major logical order.
    #[inline(always)]
    #[allow(clippy::needless_range_loop)] // k walks N parallel arrays
    pub(crate) fn for_each(&self, mut f: impl FnMut([usize; N])) {
        if self.numel == 0 {
            return;
        }
        if self.rank == 0 {
            f(self.starts);
            return;
        }
        let last = self.rank - 1;
        let inner = self.dims[last];
        let step: [usize; N] = std::array::from_fn(|k| self.strides[k][last]);
        let mut index = [0usize; MAX_RANK];
        let mut base = self.starts;
        loop {
            let mut at = base;
            for _ in 0..inner {
                f(at);
                for k in 0..N {
                    at[k] += step[k];
                }
            }
            // Odometer step over the outer axes.
            let mut axis = last;
            loop {
                if axis == 0 {
                    return;
                }
                axis -= 1;
                index[axis] += 1;
                for k in 0..N {
                    base[k] += self.strides[k][axis];
                }
                if index[axis] < self.dims[axis] {
                    break;
                }
                for k in 0..N {
                    base[k] -= self.strides[k][axis] * self.dims[axis];
                }
                index[axis] = 0;
            }
        }
    }
}

/// The walk pairing each input element (offset 0) with its group's output element
/// (offset 1).
/// When the last axis is kept and contiguous in the input (summing a `(B, S, D)` tensor
/// over `S`, say), the reduction is rows of the input added to rows of the output: the
/// walk over the other axes, which gives each row's two starts, and the row length.
/// Each output element receives its inputs in the same order as in [`reduce_walk`], so
/// the sums are the same to the bit; only the inner loop is over a contiguous row.
pub(crate) fn reduce_rows(layout: &Layout, axes: &[usize]) -> Option<(Walk<2>, usize)> {
    let dims = layout.dims();
    let last = dims.len().checked_sub(1)?;
    let row = dims[last];
    // Short rows gain nothing over the element walk.
    if axes.contains(&last) || layout.strides()[last] != 1 || row < 8 {
        return None;
    }
    let out = output_strides(dims, axes);
    let walk = Walk::new(
        &dims[..last],
        [&layout.strides()[..last], &out[..last]],
        [layout.offset(), 0],
    );
    Some((walk, row))
}

pub(crate) fn reduce_walk(layout: &Layout, axes: &[usize]) -> Walk<2> {
    let dims = layout.dims();
    let out = output_strides(dims, axes);
    Walk::new(dims, [layout.strides(), &out[..dims.len()]], [layout.offset(), 0])
}

// ---------------------------------------------------------------------------------
// Compiling hot loops for the CPU at hand
// ---------------------------------------------------------------------------------

/// How the exponential computes `a · b + c`: fused into one instruction (and one
/// rounding) where the code is compiled for a CPU with FMA, a multiply and an add
/// elsewhere (where `f32::mul_add` would be a slow library call).
pub(crate) trait MulAdd: 'static {
    /// `a · b + c`.
    fn mul_add(a: f32, b: f32, c: f32) -> f32;
}

/// `a · b + c` as a multiply and an add: the baseline target.
pub(crate) struct Separate;

impl MulAdd for Separate {
    #[inline(always)]
    fn mul_add(a: f32, b: f32, c: f32) -> f32 {
        a * b + c
    }
}

/// `a · b + c` as one fused instruction: only inside functions compiled with FMA.
pub(crate) struct Fused;

impl MulAdd for Fused {
    #[inline(always)]
    fn mul_add(a: f32, b: f32, c: f32) -> f32 {
        a.mul_add(b, c)
    }
}

/// Defines a function whose body is compiled three times, for the baseline target,
/// for AVX2 + FMA and for AVX-512, and which runs the widest copy the CPU supports
/// (checked on each call, a cached flag). The body names the [`MulAdd`] to use as its
/// second type parameter, and its helpers are `#[inline(always)]`, so they are inlined
/// into, and vectorised for, each copy: 16 `f32` lanes with fused multiply-adds
/// instead of SSE2's 4, which is what the exponentials of softmax and logsumexp need
/// to keep up with memory.
macro_rules! multiversion {
    ($(#[$meta:meta])* fn $name:ident<$E:ident, $M:ident>($($arg:ident: $ty:ty),* $(,)?) $(-> $ret:ty)? $body:block) => {
        $(#[$meta])*
        fn $name<$E: Dtype>($($arg: $ty),*) $(-> $ret)? {
            #[inline(always)]
            #[allow(unused)]
            fn body<$E: Dtype, $M: $crate::ops::reduce::MulAdd>($($arg: $ty),*) $(-> $ret)? $body

            #[cfg(target_arch = "x86_64")]
            #[target_feature(enable = "avx2,fma")]
            fn avx2<$E: Dtype>($($arg: $ty),*) $(-> $ret)? {
                body::<$E, $crate::ops::reduce::Fused>($($arg),*)
            }

            #[cfg(target_arch = "x86_64")]
            #[target_feature(enable = "avx512f,fma")]
            fn avx512<$E: Dtype>($($arg: $ty),*) $(-> $ret)? {
                body::<$E, $crate::ops::reduce::Fused>($($arg),*)
            }

            #[cfg(target_arch = "x86_64")]
            {
                use std::arch::is_x86_feature_detected as has;
                if has!("avx512f") && has!("fma") {
                    // SAFETY: `avx512` needs only AVX-512F and FMA, both checked above.
                    return unsafe { avx512($($arg),*) };
                }
                if has!("avx2") && has!("fma") {
                    // SAFETY: `avx2` needs only AVX2 and FMA, both checked above.
                    return unsafe { avx2($($arg),*) };
                }
            }
            body::<$E, $crate::ops::reduce::Separate>($($arg),*)
        }
    };
}
pub(crate) use multiversion;

/// Elements below which a kernel stays on the calling thread. Measured in f32 on 1 and
/// 2 threads, rows of a square matrix: summing 128² took 2.4–4.5 and 4.5–5.7 µs, 256²
/// 10 and 7.6 µs; softmax over 128² 12–17 and 11–12 µs, over 256² 45–50 and 26–28 µs.
pub(crate) const PARALLEL_MIN: usize = 1 << 16;

/// Splits `data`, a sequence of rows of `len` elements, into one share of whole rows
/// per thread when it is large enough to pay for the threads, and calls `f(first_row,
/// share)` on each share, on the thread pool (see `threads.rs`). Small inputs run as
/// one share on the calling thread.
pub(crate) fn for_row_shares<E: Send>(data: &mut [E], len: usize, f: impl Fn(usize, &mut [E]) + Sync) {
    let rows = data.len().checked_div(len).unwrap_or(0);
    let threads = threads().min(rows);
    if threads < 2 || data.len() < PARALLEL_MIN {
        f(0, data);
        return;
    }
    let per_share = rows.div_ceil(threads);
    crate::threads::for_each_chunk_mut(data, per_share * len, |k, share| f(k * per_share, share));
}

// ---------------------------------------------------------------------------------
// Row helpers
// ---------------------------------------------------------------------------------

/// Independent accumulators per slice. Each chunk of this many elements is added
/// element-wise into an array of accumulators, a plain map that the compiler
/// vectorises whatever the mapped function (a horizontal sum would have to keep the
/// order of the adds, and so stay scalar); the accumulators are added as a tree at the
/// end. 64 lanes are four AVX-512 registers of `f32`, enough to hide the adds'
/// latency.
const LANES: usize = 64;
/// Slices are summed in blocks of this many elements whose totals are added in eight
/// separate partial sums, so that the rounding error of a long sum grows with
/// `len / (8 · BLOCK)` rather than `len`.
const BLOCK: usize = 4096;

/// The sum of the lanes, as a balanced tree.
#[inline(always)]
fn fold_lanes<E: Dtype, const N: usize>(mut lanes: [E; N]) -> E {
    let mut width = N;
    while width > 1 {
        width /= 2;
        for i in 0..width {
            lanes[i] += lanes[i + width];
        }
    }
    lanes[0]
}

/// `Σ f(v)` over a slice.
#[inline(always)]
pub(crate) fn sum_map<E: Dtype>(values: &[E], f: impl Fn(E) -> E + Copy) -> E {
    // Closures are not guaranteed to be inlined, and a body left out of line would not
    // be compiled for the vector unit `multiversion!` picked: the loops are spelled out.
    let mut partial = [E::ZERO; 8];
    for (b, block) in values.chunks(BLOCK).enumerate() {
        let mut lanes = [E::ZERO; LANES];
        let mut chunks = block.chunks_exact(LANES);
        for chunk in &mut chunks {
            for (lane, &v) in lanes.iter_mut().zip(chunk) {
                *lane += f(v);
            }
        }
        for (lane, &v) in lanes.iter_mut().zip(chunks.remainder()) {
            *lane += f(v);
        }
        partial[b % 8] += fold_lanes(lanes);
    }
    fold_lanes(partial)
}

/// The sum of a slice.
#[inline(always)]
pub(crate) fn sum_slice<E: Dtype>(values: &[E]) -> E {
    sum_map(values, |v| v)
}

/// `Σ f(a, b)` over two slices of equal length.
#[inline(always)]
pub(crate) fn sum_map2<E: Dtype>(a: &[E], b: &[E], f: impl Fn(E, E) -> E + Copy) -> E {
    debug_assert_eq!(a.len(), b.len());
    let mut partial = [E::ZERO; 8];
    for (k, (a, b)) in a.chunks(BLOCK).zip(b.chunks(BLOCK)).enumerate() {
        let mut lanes = [E::ZERO; LANES];
        let mut chunks_a = a.chunks_exact(LANES);
        let mut chunks_b = b.chunks_exact(LANES);
        for (ca, cb) in (&mut chunks_a).zip(&mut chunks_b) {
            for ((lane, &x), &y) in lanes.iter_mut().zip(ca).zip(cb) {
                *lane += f(x, y);
            }
        }
        for ((lane, &x), &y) in lanes.iter_mut().zip(chunks_a.remainder()).zip(chunks_b.remainder()) {
            *lane += f(x, y);
        }
        partial[k % 8] += fold_lanes(lanes);
    }
    fold_lanes(partial)
}

/// The largest element ignoring NaN (`-inf` for an empty or all-NaN slice), with
/// vectorisable comparisons. Softmax and logsumexp need no more: a NaN element makes
/// its exponential, and so the whole row, NaN anyway.
#[inline(always)]
pub(crate) fn max_ignoring_nan<E: Dtype>(values: &[E]) -> E {
    let neg_inf = neg_inf::<E>();
    let mut lanes = [neg_inf; LANES];
    let mut chunks = values.chunks_exact(LANES);
    for chunk in &mut chunks {
        for (lane, &v) in lanes.iter_mut().zip(chunk) {
            *lane = if v > *lane { v } else { *lane };
        }
    }
    for (lane, &v) in lanes.iter_mut().zip(chunks.remainder()) {
        *lane = if v > *lane { v } else { *lane };
    }
    fold_max(lanes)
}

/// The largest lane, as a balanced tree (a chain of dependent comparisons would take
/// longer than the vector loop before it). The lanes hold no NaN.
#[inline(always)]
fn fold_max<E: Dtype, const N: usize>(mut lanes: [E; N]) -> E {
    let mut width = N;
    while width > 1 {
        width /= 2;
        for i in 0..width {
            let other = lanes[i + width];
            lanes[i] = if other > lanes[i] { other } else { lanes[i] };
        }
    }
    lanes[0]
}

/// The maximum or minimum of a slice, NaN if it holds one (`∓inf` when empty).
#[inline(always)]
fn extremum_slice<E: Dtype>(kind: Extremum, values: &[E]) -> E {
    let (init, flip) = match kind {
        Extremum::Max => (neg_inf::<E>(), E::ONE),
        Extremum::Min => (E::from_f64(f64::INFINITY), E::ZERO - E::ONE),
    };
    // min(x) = −max(−x): one vectorisable loop serves both.
    let mut lanes = [init * flip; LANES];
    let mut nan = [false; LANES];
    let mut chunks = values.chunks_exact(LANES);
    for chunk in &mut chunks {
        for ((lane, seen), &v) in lanes.iter_mut().zip(&mut nan).zip(chunk) {
            let v = v * flip;
            *lane = if v > *lane { v } else { *lane };
            *seen |= v.is_nan();
        }
    }
    for ((lane, seen), &v) in lanes.iter_mut().zip(&mut nan).zip(chunks.remainder()) {
        let v = v * flip;
        *lane = if v > *lane { v } else { *lane };
        *seen |= v.is_nan();
    }
    if nan.iter().any(|&n| n) {
        E::from_f64(f64::NAN)
    } else {
        fold_max(lanes) * flip
    }
}

/// `e^x` for `x` already clamped into `[-104, 89]`, as `(e^r, k)` with
/// `e^x = e^r · 2^k`: `x = k·ln 2 + r` with `|r| ≤ ln 2 / 2` (ln 2 split in two, so
/// that `k·LN2_HI` is exact for the `k` in range), `e^r` by Cephes' minimax polynomial
/// (about 1 ulp). Shared by [`exp_f32`] and `fast_math`, which assemble `2^k` each to
/// its own range. NaN passes through into `e^r`.
#[inline(always)]
#[allow(clippy::excessive_precision)]
pub(crate) fn exp_reduced<M: MulAdd>(clamped: f32) -> (f32, i32) {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_359_375;
    const LN2_LO: f32 = -2.121_944_400_546_905_827_68e-4;
    // Adding 1.5·2^23 rounds to an integer, which then sits in the low mantissa bits.
    const ROUND: f32 = 12_582_912.0;
    const ROUND_BITS: i32 = 0x4B40_0000;
    let t = M::mul_add(clamped, LOG2E, ROUND);
    let kf = t - ROUND;
    let k = (t.to_bits() as i32).wrapping_sub(ROUND_BITS);
    let r = M::mul_add(kf, -LN2_LO, M::mul_add(kf, -LN2_HI, clamped));
    let mut p = 1.987_569_150_0e-4_f32;
    p = M::mul_add(p, r, 1.398_199_950_7e-3);
    p = M::mul_add(p, r, 8.333_451_907_3e-3);
    p = M::mul_add(p, r, 4.166_579_589_4e-2);
    p = M::mul_add(p, r, 1.666_666_545_9e-1);
    p = M::mul_add(p, r, 5.000_000_120_1e-1);
    (M::mul_add(p, r * r, r) + 1.0, k)
}

/// `e^x` for `f32`, in a form the compiler vectorises (no calls, no branches):
/// [`exp_reduced`] times `2^k` assembled from exponent bits. Results below
/// `f32::MIN_POSITIVE` (x < −87.34) are flushed to 0 and those from x > 88.37 saturate
/// to `+inf` (the true overflow is at 88.72): the kernels only take exponentials of
/// `x − max ≤ 0`.
#[inline(always)]
pub(crate) fn exp_f32<M: MulAdd>(x: f32) -> f32 {
    // ln(f32::MIN_POSITIVE) and 127.49·ln 2: 2^k is a normal number in between.
    const LOW: f32 = -87.336_54;
    const HIGH: f32 = 88.37;
    let (e, k) = exp_reduced::<M>(x.clamp(LOW, HIGH)); // NaN passes through
    let value = e * f32::from_bits(((k + 127) as u32) << 23);
    if x < LOW {
        0.0
    } else if x > HIGH {
        f32::INFINITY
    } else {
        value
    }
}

/// `e^x`: [`exp_f32`] for `f32` (vectorisable), the standard library's otherwise.
#[inline(always)]
pub(crate) fn exp<E: Dtype, M: MulAdd>(x: E) -> E {
    if TypeId::of::<E>() == TypeId::of::<f32>() {
        // Both conversions are exact for an f32 held in E = f32; the compiler drops them.
        E::from_f64(exp_f32::<M>(x.to_f64() as f32) as f64)
    } else {
        x.exp()
    }
}

/// `-inf`.
#[inline(always)]
pub(crate) fn neg_inf<E: Dtype>() -> E {
    E::from_f64(f64::NEG_INFINITY)
}

/// `-inf` or `+inf` to start a search for a maximum or minimum.
fn extremum_start<E: Dtype>(kind: Extremum) -> E {
    match kind {
        Extremum::Max => neg_inf::<E>(),
        Extremum::Min => E::from_f64(f64::INFINITY),
    }
}

/// 1 or 0.
#[inline(always)]
fn indicator<E: Dtype>(condition: bool) -> E {
    if condition { E::ONE } else { E::ZERO }
}

// ---------------------------------------------------------------------------------
// Kernels
// ---------------------------------------------------------------------------------

multiversion! {
    /// Appends the sum of each run of `len` elements of `input` starting at the offsets
    /// of `starts`.
    fn sum_runs<E, M>(input: &[E], starts: &Layout, len: usize, out: &mut Vec<E>) {
        for s in starts.offsets() {
            out.push(sum_slice(&input[s..s + len]));
        }
    }
}

multiversion! {
    /// Appends the sums of the runs `first..first + count` of `starts`.
    fn sum_runs_range<E, M>(input: &[E], starts: &Layout, len: usize, first: usize, count: usize, out: &mut Vec<E>) {
        for s in starts.offsets().skip(first).take(count) {
            out.push(sum_slice(&input[s..s + len]));
        }
    }
}

/// [`sum_runs`] across threads when there is enough to read: many runs are shared out
/// whole; a few long runs are each cut into one piece per thread.
fn sum_runs_parallel<E: Dtype>(input: &[E], starts: &Layout, len: usize, out: &mut Vec<E>) {
    let count = starts.num_elements();
    let threads = threads();
    if threads < 2 || count * len < PARALLEL_MIN {
        return sum_runs(input, starts, len, out);
    }
    if count >= threads {
        let per_thread = count.div_ceil(threads);
        let shares = crate::threads::map_shares(threads, |k| {
            let mut sums = Vec::with_capacity(per_thread);
            sum_runs_range(input, starts, len, k * per_thread, per_thread, &mut sums);
            sums
        });
        for sums in shares {
            out.extend(sums);
        }
    } else {
        let piece = len.div_ceil(threads);
        let one_run = Layout::from_parts(&[1], &[0]);
        for start in starts.offsets() {
            let run = &input[start..start + len];
            let pieces = run.len().div_ceil(piece);
            let totals = crate::threads::map_shares(pieces, |k| {
                let chunk = &run[k * piece..((k + 1) * piece).min(len)];
                let mut sum = Vec::with_capacity(1);
                sum_runs(chunk, &one_run, chunk.len(), &mut sum);
                sum[0]
            });
            // In piece order, as before: the first piece's sum, then each later one.
            let mut totals = totals.into_iter();
            let first = totals.next().unwrap_or(E::ZERO);
            out.push(totals.fold(first, |total, part| total + part));
        }
    }
}

multiversion! {
    /// Adds `values[k]` to every element of the `k`-th run of `len` elements of `grad`
    /// (runs starting at the offsets of `starts`).
    fn add_to_runs<E, M>(grad: &mut [E], starts: &Layout, len: usize, values: &[E]) {
        for (s, &g) in starts.offsets().zip(values) {
            for v in &mut grad[s..s + len] {
                *v += g;
            }
        }
    }
}

multiversion! {
    /// Appends the logsumexp of each run.
    fn logsumexp_runs<E, M>(input: &[E], starts: &Layout, len: usize, out: &mut Vec<E>) {
        for s in starts.offsets() {
            let row = &input[s..s + len];
            let m = lse_shift(max_ignoring_nan(row));
            out.push(m + sum_map(row, |x| exp::<E, M>(x - m)).ln());
        }
    }
}

multiversion! {
    /// Accumulates `grad_output[k] · exp(x − output[k])` into the `k`-th run.
    fn logsumexp_backward_runs<E, M>(
        input: &[E],
        starts: &Layout,
        len: usize,
        output: &[E],
        grad_output: &[E],
        grad_input: &mut [E],
    ) {
        for ((s, &l), &g) in starts.offsets().zip(output).zip(grad_output) {
            let row = &input[s..s + len];
            for (v, &x) in grad_input[s..s + len].iter_mut().zip(row) {
                *v += g * exp::<E, M>(x - l);
            }
        }
    }
}

impl<E: Dtype> SumKernel<E> for Cpu {
    fn forward(&self, input: View<'_, CpuBuffer<E>>, axes: &[usize]) -> Result<CpuBuffer<E>, Error> {
        check_reduction("sum", input, axes)?;
        let View {
            buffer: input,
            ref layout,
        } = input;
        let groups = Groups::new(layout, axes);
        let mut out = try_vec(groups.count)?;
        match groups.runs {
            Some(starts) => sum_runs_parallel(input, &starts, groups.len, &mut out),
            None => {
                out.resize(groups.count, E::ZERO);
                match reduce_rows(layout, axes) {
                    Some((rows, len)) => rows.for_each(|[i, o]| {
                        for (total, &x) in out[o..o + len].iter_mut().zip(&input[i..i + len]) {
                            *total += x;
                        }
                    }),
                    None => reduce_walk(layout, axes).for_each(|[i, o]| out[o] += input[i]),
                }
            }
        }
        Ok(CpuBuffer(out))
    }

    fn backward(
        &self,
        grad_input: ViewMut<'_, CpuBuffer<E>>,
        axes: &[usize],
        grad_output: &CpuBuffer<E>,
    ) -> Result<(), Error> {
        let groups = check_reduction_backward("sum", ("grad_input", grad_input.as_view()), axes, grad_output)?;
        let ViewMut {
            buffer: grad_input,
            ref layout,
        } = grad_input;
        match groups.runs {
            Some(starts) => add_to_runs(grad_input, &starts, groups.len, grad_output),
            None => match reduce_rows(layout, axes) {
                Some((rows, len)) => rows.for_each(|[i, o]| {
                    for (grad, &g) in grad_input[i..i + len].iter_mut().zip(&grad_output[o..o + len]) {
                        *grad += g;
                    }
                }),
                None => reduce_walk(layout, axes).for_each(|[i, o]| grad_input[i] += grad_output[o]),
            },
        }
        Ok(())
    }
}

impl<E: Dtype> ExtremumKernel<E> for Cpu {
    fn forward(&self, kind: Extremum, input: View<'_, CpuBuffer<E>>, axes: &[usize]) -> Result<CpuBuffer<E>, Error> {
        check_reduction(kind.name(), input, axes)?;
        let View {
            buffer: input,
            ref layout,
        } = input;
        let groups = Groups::new(layout, axes);
        let mut out = try_vec(groups.count)?;
        match groups.runs {
            Some(starts) => out.extend(
                starts
                    .offsets()
                    .map(|s| extremum_slice(kind, &input[s..s + groups.len])),
            ),
            None => {
                out.resize(groups.count, extremum_start(kind));
                reduce_walk(layout, axes).for_each(|[i, o]| {
                    if kind.replaces(input[i], out[o]) {
                        out[o] = input[i];
                    }
                });
            }
        }
        Ok(CpuBuffer(out))
    }

    fn backward(
        &self,
        input: View<'_, CpuBuffer<E>>,
        axes: &[usize],
        output: &CpuBuffer<E>,
        grad_input: &mut CpuBuffer<E>,
        grad_output: &CpuBuffer<E>,
    ) -> Result<(), Error> {
        let op = "max / min";
        let groups = check_reduction_backward(op, ("input", input), axes, grad_output)?;
        check_reach(op, "grad_input", &input.layout, grad_input.len())?;
        check_len(op, "output", output.len(), groups.count)?;
        let View {
            buffer: input,
            ref layout,
        } = input;
        match groups.runs {
            Some(starts) => {
                for ((s, &m), &g) in starts.offsets().zip(output.iter()).zip(grad_output.iter()) {
                    let row = &input[s..s + groups.len];
                    let count = sum_map(row, |x| indicator(x == m));
                    let share = g / count;
                    for (v, &x) in grad_input[s..s + groups.len].iter_mut().zip(row) {
                        *v += share * indicator::<E>(x == m);
                    }
                }
            }
            None => {
                let walk = reduce_walk(layout, axes);
                let mut share = vec![E::ZERO; groups.count];
                walk.for_each(|[i, o]| share[o] += indicator(input[i] == output[o]));
                for (s, &g) in share.iter_mut().zip(grad_output.iter()) {
                    *s = g / *s;
                }
                walk.for_each(|[i, o]| grad_input[i] += share[o] * indicator::<E>(input[i] == output[o]));
            }
        }
        Ok(())
    }
}

/// The extremum of each group and its index within the group (row-major over the
/// reduced axes), in output order: the first among ties, the first NaN when there is
/// one. What argmax, argmin and the max / min with indices share.
fn extremum_and_index<E: Dtype>(
    kind: Extremum,
    input: &[E],
    layout: &Layout,
    axes: &[usize],
) -> Result<(Vec<E>, Vec<usize>), Error> {
    let groups = Groups::new(layout, axes);
    let (mut values, mut indices) = (try_vec(groups.count)?, try_vec(groups.count)?);
    match groups.runs {
        Some(starts) => {
            for s in starts.offsets() {
                let mut best = (0, extremum_start(kind));
                for (j, &x) in input[s..s + groups.len].iter().enumerate() {
                    if kind.replaces(x, best.1) {
                        best = (j, x);
                    }
                }
                indices.push(best.0);
                values.push(best.1);
            }
        }
        None => {
            let dims = layout.dims();
            let (to_out, to_group) = (output_strides(dims, axes), group_strides(dims, axes));
            let rank = dims.len();
            let walk = Walk::new(
                dims,
                [layout.strides(), &to_out[..rank], &to_group[..rank]],
                [layout.offset(), 0, 0],
            );
            values.resize(groups.count, extremum_start::<E>(kind));
            indices.resize(groups.count, 0);
            // Row-major order visits each group's elements in index order, so a
            // strict comparison keeps the first of ties.
            walk.for_each(|[i, o, j]| {
                if kind.replaces(input[i], values[o]) {
                    values[o] = input[i];
                    indices[o] = j;
                }
            });
        }
    }
    Ok((values, indices))
}

impl<E: Dtype> ArgExtremumKernel<E> for Cpu {
    fn forward(
        &self,
        kind: Extremum,
        input: View<'_, CpuBuffer<E>>,
        axes: &[usize],
    ) -> Result<CpuBuffer<usize>, Error> {
        let op = match kind {
            Extremum::Max => "argmax",
            Extremum::Min => "argmin",
        };
        check_reduction(op, input, axes)?;
        let (_, indices) = extremum_and_index(kind, input.buffer, &input.layout, axes)?;
        Ok(CpuBuffer(indices))
    }
}

impl<E: Dtype> ExtremumWithIndicesKernel<E> for Cpu {
    fn forward(
        &self,
        kind: Extremum,
        input: View<'_, CpuBuffer<E>>,
        axis: usize,
    ) -> Result<(CpuBuffer<E>, CpuBuffer<usize>), Error> {
        let op = match kind {
            Extremum::Max => "max_with_indices",
            Extremum::Min => "min_with_indices",
        };
        check_axis(op, &input.layout, axis)?;
        input.check(op, "input")?;
        let (values, indices) = extremum_and_index(kind, input.buffer, &input.layout, &[axis])?;
        Ok((CpuBuffer(values), CpuBuffer(indices)))
    }

    fn backward(
        &self,
        grad_input: ViewMut<'_, CpuBuffer<E>>,
        axis: usize,
        indices: &CpuBuffer<usize>,
        grad_output: &CpuBuffer<E>,
    ) -> Result<(), Error> {
        // The kernel does not know which extremum the indices point at.
        let op = "max_with_indices / min_with_indices";
        check_with_indices_backward(op, &grad_input, axis, indices, grad_output)?;
        let layout = grad_input.layout;
        // The output, contiguous, seen with a size-1 `axis` put back: the indices and the
        // output gradient in the form a scatter along `axis` takes.
        let mut dims = layout.dims().to_vec();
        dims[axis] = 1;
        let strides = contiguous_strides(&dims);
        let out_layout = Layout::from_parts(&dims, &strides[..dims.len()]);
        ScatterAddKernel::scatter_add(
            self,
            op,
            grad_input,
            axis,
            View::new(indices, out_layout),
            View::new(grad_output, out_layout),
        )
    }
}

/// [`check_reduction`] for a backward kernel reading `grad_output`, one value per
/// group, with `input` the view it walks (the input, or its gradient), named `role`;
/// returns the groups, which the kernel needs next.
fn check_reduction_backward<E: Dtype>(
    op: &'static str,
    (role, input): (&str, View<'_, CpuBuffer<E>>),
    axes: &[usize],
    grad_output: &CpuBuffer<E>,
) -> Result<Groups, Error> {
    check_axes(op, axes, input.layout.rank())?;
    input.check(op, role)?;
    let groups = Groups::new(&input.layout, axes);
    check_len(op, "grad_output", grad_output.len(), groups.count)?;
    Ok(groups)
}

/// `N − correction`, at least 0.
fn divisor<E: Dtype>(len: usize, correction: E) -> E {
    let d = E::from_f64(len as f64) - correction;
    if d > E::ZERO { d } else { E::ZERO }
}

/// The mean of every group, in output order, as `x₀ + Σ (x − x₀) / N` with `x₀` the
/// group's first element: as accurate as `Σ x / N`, and exact for a constant group (a
/// broadcast one, say), whose variance is then exactly 0, as PyTorch's is.
fn group_means<E: Dtype>(input: &[E], layout: &Layout, axes: &[usize], groups: &Groups) -> Vec<E> {
    let n = E::from_f64(groups.len as f64);
    match groups.runs {
        Some(starts) => starts
            .offsets()
            .map(|s| {
                let row = &input[s..s + groups.len];
                let first = row[0];
                first + sum_map(row, |x| x - first) / n
            })
            .collect(),
        None => {
            let walk = reduce_walk(layout, axes);
            let mut first = vec![None; groups.count];
            walk.for_each(|[i, o]| {
                first[o].get_or_insert(input[i]);
            });
            let first: Vec<E> = first.into_iter().map(|f| f.unwrap_or(E::ZERO)).collect();
            let mut sums = vec![E::ZERO; groups.count];
            walk.for_each(|[i, o]| sums[o] += input[i] - first[o]);
            first.iter().zip(sums).map(|(&f, s)| f + s / n).collect()
        }
    }
}

impl<E: Dtype> VarianceKernel<E> for Cpu {
    fn forward(
        &self,
        spread: Spread,
        correction: E,
        input: View<'_, CpuBuffer<E>>,
        axes: &[usize],
    ) -> Result<CpuBuffer<E>, Error> {
        let op = match spread {
            Spread::Variance => "var",
            Spread::StdDev => "std",
        };
        check_reduction(op, input, axes)?;
        let View {
            buffer: input,
            ref layout,
        } = input;
        let groups = Groups::new(layout, axes);
        let means = group_means(input, layout, axes, &groups);
        let mut out = try_vec(groups.count)?;
        match groups.runs {
            Some(starts) => out.extend(
                starts
                    .offsets()
                    .zip(&means)
                    .map(|(s, &mean)| sum_map(&input[s..s + groups.len], |x| (x - mean) * (x - mean))),
            ),
            None => {
                out.resize(groups.count, E::ZERO);
                reduce_walk(layout, axes).for_each(|[i, o]| {
                    let d = input[i] - means[o];
                    out[o] += d * d;
                });
            }
        }
        let div = divisor(groups.len, correction);
        for v in &mut out {
            *v = *v / div;
            if spread == Spread::StdDev {
                *v = v.sqrt();
            }
        }
        Ok(CpuBuffer(out))
    }

    fn backward(
        &self,
        correction: E,
        input: View<'_, CpuBuffer<E>>,
        axes: &[usize],
        std: Option<&CpuBuffer<E>>,
        grad_input: &mut CpuBuffer<E>,
        grad_output: &CpuBuffer<E>,
    ) -> Result<(), Error> {
        let op = "var / std";
        let groups = check_reduction_backward(op, ("input", input), axes, grad_output)?;
        check_reach(op, "grad_input", &input.layout, grad_input.len())?;
        if let Some(std) = std {
            check_len(op, "std", std.len(), groups.count)?;
        }
        let View {
            buffer: input,
            ref layout,
        } = input;
        let means = group_means(input, layout, axes, &groups);
        let two = E::ONE + E::ONE;
        let scale = two / divisor(groups.len, correction);
        // d var / d x_i = 2 (x_i − mean) / (N − c); d std = d var / (2 std), 0 where std is 0.
        let factors: Vec<E> = match std {
            None => grad_output.iter().map(|&g| g * scale).collect(),
            Some(std) => grad_output
                .iter()
                .zip(std.iter())
                .map(|(&g, &s)| if s == E::ZERO { E::ZERO } else { g * scale / (two * s) })
                .collect(),
        };
        match groups.runs {
            Some(starts) => {
                for ((s, &mean), &f) in starts.offsets().zip(&means).zip(&factors) {
                    let row = &input[s..s + groups.len];
                    for (v, &x) in grad_input[s..s + groups.len].iter_mut().zip(row) {
                        *v += f * (x - mean);
                    }
                }
            }
            None => reduce_walk(layout, axes).for_each(|[i, o]| grad_input[i] += factors[o] * (input[i] - means[o])),
        }
        Ok(())
    }
}

/// The shift logsumexp subtracts: the maximum, or 0 when that is infinite.
#[inline(always)]
fn lse_shift<E: Dtype>(max: E) -> E {
    if max.to_f64().is_finite() { max } else { E::ZERO }
}

impl<E: Dtype> LogSumExpKernel<E> for Cpu {
    fn forward(&self, input: View<'_, CpuBuffer<E>>, axes: &[usize]) -> Result<CpuBuffer<E>, Error> {
        check_reduction("logsumexp", input, axes)?;
        let View {
            buffer: input,
            ref layout,
        } = input;
        let groups = Groups::new(layout, axes);
        let mut out = try_vec(groups.count)?;
        match groups.runs {
            Some(starts) => logsumexp_runs(input, &starts, groups.len, &mut out),
            None => {
                let walk = reduce_walk(layout, axes);
                let mut shift = vec![neg_inf::<E>(); groups.count];
                walk.for_each(|[i, o]| {
                    if input[i] > shift[o] {
                        shift[o] = input[i];
                    }
                });
                for m in &mut shift {
                    *m = lse_shift(*m);
                }
                out.resize(groups.count, E::ZERO);
                walk.for_each(|[i, o]| out[o] += exp::<E, Separate>(input[i] - shift[o]));
                for (v, &m) in out.iter_mut().zip(&shift) {
                    *v = m + v.ln();
                }
            }
        }
        Ok(CpuBuffer(out))
    }

    fn backward(
        &self,
        input: View<'_, CpuBuffer<E>>,
        axes: &[usize],
        output: &CpuBuffer<E>,
        grad_input: &mut CpuBuffer<E>,
        grad_output: &CpuBuffer<E>,
    ) -> Result<(), Error> {
        let op = "logsumexp";
        let groups = check_reduction_backward(op, ("input", input), axes, grad_output)?;
        check_reach(op, "grad_input", &input.layout, grad_input.len())?;
        check_len(op, "output", output.len(), groups.count)?;
        let View {
            buffer: input,
            ref layout,
        } = input;
        match groups.runs {
            Some(starts) => logsumexp_backward_runs(input, &starts, groups.len, output, grad_output, grad_input),
            None => reduce_walk(layout, axes)
                .for_each(|[i, o]| grad_input[i] += grad_output[o] * exp::<E, Separate>(input[i] - output[o])),
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Sums large enough to be split across threads, both ways (many runs shared out,
    /// one long run cut in pieces), against a sequential f64 sum of the same values.
    #[test]
    fn threaded_sums_match_sequential_ones() {
        let cpu = Cpu::default();
        let (rows, len) = (64, 8191);
        let values: Vec<f32> = (0..rows * len)
            .map(|i| ((i * 7919) % 1000) as f32 / 100.0 - 5.0)
            .collect();
        assert!(values.len() >= PARALLEL_MIN);
        let input = CpuBuffer(values.clone());
        let layout = Layout::from_parts(&[rows, len], &[len, 1]);
        let exact = |run: &[f32]| run.iter().map(|&v| f64::from(v)).sum::<f64>();

        let per_row = SumKernel::forward(&cpu, View::new(&input, layout), &[1]).unwrap();
        for (r, &got) in per_row.iter().enumerate() {
            let expected = exact(&values[r * len..(r + 1) * len]);
            assert!(
                (f64::from(got) - expected).abs() < 1e-3 * (1.0 + expected.abs()),
                "row {r}: {got} vs {expected}"
            );
        }
        let all = SumKernel::forward(&cpu, View::new(&input, layout), &[0, 1]).unwrap();
        let expected = exact(&values);
        assert!(
            (f64::from(all[0]) - expected).abs() < 1e-3 * (1.0 + expected.abs()),
            "{} vs {expected}",
            all[0]
        );
        // Fewer runs than threads, each long: a (2, N) tensor summed over its last axis.
        let two_rows = SumKernel::forward(
            &cpu,
            View::new(&input, Layout::from_parts(&[2, rows * len / 2], &[rows * len / 2, 1])),
            &[1],
        )
        .unwrap();
        let half = rows * len / 2;
        for (r, &got) in two_rows.iter().enumerate() {
            let expected = exact(&values[r * half..(r + 1) * half]);
            assert!(
                (f64::from(got) - expected).abs() < 1e-3 * (1.0 + expected.abs()),
                "half {r}: {got} vs {expected}"
            );
        }
    }

    #[test]
    fn runs_are_found_only_for_contiguous_trailing_groups() {
        let x = Layout::from_parts(&[2, 3, 4], &[12, 4, 1]);
        let g = Groups::new(&x, &[2]);
        assert_eq!((g.count, g.len), (6, 4));
        assert_eq!(g.runs.unwrap().offsets().collect::<Vec<_>>(), vec![0, 4, 8, 12, 16, 20]);
        assert_eq!(
            Groups::new(&x, &[1, 2]).runs.unwrap().offsets().collect::<Vec<_>>(),
            vec![0, 12]
        );
        assert!(Groups::new(&x, &[0, 1, 2]).runs.is_some());
        assert!(Groups::new(&x, &[1]).runs.is_none());
        assert!(Groups::new(&x, &[0, 2]).runs.is_none());
        // Transposed: the last axis has stride 3.
        assert!(Groups::new(&Layout::from_parts(&[3, 2], &[1, 3]), &[1]).runs.is_none());
        // Broadcast rows of a contiguous vector: runs that overlap.
        let b = Layout::from_parts(&[3, 4], &[0, 1]);
        assert_eq!(
            Groups::new(&b, &[1]).runs.unwrap().offsets().collect::<Vec<_>>(),
            vec![0, 0, 0]
        );
        // Size-1 axes do not matter; an offset carries over.
        let s = Layout::from_parts(&[2, 1, 4], &[8, 5, 1]).with_offset(3);
        assert_eq!(
            Groups::new(&s, &[1, 2]).runs.unwrap().offsets().collect::<Vec<_>>(),
            vec![3, 11]
        );
    }

    #[test]
    fn walks_merge_axes_and_visit_in_row_major_order() {
        let dims = [2, 3, 4];
        let walk = Walk::new(&dims, [&[12, 4, 1]], [0]);
        assert_eq!(walk.rank, 1);
        let mut seen = Vec::new();
        walk.for_each(|[i]| seen.push(i));
        assert_eq!(seen, (0..24).collect::<Vec<_>>());
        // Transposed input beside a contiguous output.
        let walk = Walk::new(&[2, 3], [&[1, 2], &[3, 1]], [5, 0]);
        let mut pairs = Vec::new();
        walk.for_each(|[i, o]| pairs.push((i, o)));
        assert_eq!(pairs, vec![(5, 0), (7, 1), (9, 2), (6, 3), (8, 4), (10, 5)]);
        let mut n = 0;
        Walk::new(&[], [&[]], [0]).for_each(|_| n += 1);
        Walk::new(&[3, 0], [&[1, 1]], [0]).for_each(|_| n += 10);
        assert_eq!(n, 1);
    }

    /// Values, indices and the scatter of their gradient along one axis, through a
    /// contiguous, a transposed and a broadcast layout.
    #[test]
    fn extremum_with_indices_scatters_to_the_first_of_ties() {
        let cpu = Cpu::default();
        // [[1, 7, 7], [NaN, 2, 9]], row-major.
        let input = CpuBuffer(vec![1.0f64, 7.0, 7.0, f64::NAN, 2.0, 9.0]);
        let rows = Layout::from_parts(&[2, 3], &[3, 1]);
        let (values, indices) =
            ExtremumWithIndicesKernel::forward(&cpu, Extremum::Max, View::new(&input, rows), 1).unwrap();
        assert_eq!((values[0], indices.0.clone()), (7.0, vec![1, 0]));
        assert!(values[1].is_nan());
        let (values, indices) =
            ExtremumWithIndicesKernel::forward(&cpu, Extremum::Min, View::new(&input, rows), 0).unwrap();
        assert!(values[0].is_nan());
        assert_eq!((values[1], values[2]), (2.0, 7.0));
        assert_eq!(indices.0, vec![1, 1, 0]);

        let mut grad = CpuBuffer(vec![0.0f64; 6]);
        let (_, indices) = ExtremumWithIndicesKernel::forward(&cpu, Extremum::Max, View::new(&input, rows), 1).unwrap();
        ExtremumWithIndicesKernel::backward(
            &cpu,
            ViewMut::new(&mut grad, rows),
            1,
            &indices,
            &CpuBuffer(vec![0.5, -2.0]),
        )
        .unwrap();
        assert_eq!(grad.0, vec![0.0, 0.5, 0.0, -2.0, 0.0, 0.0]);

        // The transpose, (3, 2) with strides (1, 3): its axis 1 is the rows' axis 0.
        let t = Layout::from_parts(&[3, 2], &[1, 3]);
        let (_, indices) = ExtremumWithIndicesKernel::forward(&cpu, Extremum::Min, View::new(&input, t), 1).unwrap();
        assert_eq!(indices.0, vec![1, 1, 0]);
        let mut grad = CpuBuffer(vec![0.0f64; 6]);
        ExtremumWithIndicesKernel::backward(
            &cpu,
            ViewMut::new(&mut grad, t),
            1,
            &indices,
            &CpuBuffer(vec![1.0, 2.0, 3.0]),
        )
        .unwrap();
        assert_eq!(grad.0, vec![0.0, 0.0, 3.0, 1.0, 2.0, 0.0]);

        // A vector broadcast to (2, 3) rows: both rows pick element 1, whose gradient adds up.
        let v = CpuBuffer(vec![1.0f32, 7.0, 7.0]);
        let b = Layout::from_parts(&[2, 3], &[0, 1]);
        let (values, indices) = ExtremumWithIndicesKernel::forward(&cpu, Extremum::Max, View::new(&v, b), 1).unwrap();
        assert_eq!((values.0.clone(), indices.0.clone()), (vec![7.0, 7.0], vec![1, 1]));
        let mut grad = CpuBuffer(vec![0.0f32; 3]);
        ExtremumWithIndicesKernel::backward(
            &cpu,
            ViewMut::new(&mut grad, b),
            1,
            &indices,
            &CpuBuffer(vec![1.0, 2.0]),
        )
        .unwrap();
        assert_eq!(grad.0, vec![0.0, 3.0, 0.0]);

        // Bad arguments are errors, and nothing is written.
        let mut grad = CpuBuffer(vec![0.0f64; 6]);
        let err = ExtremumWithIndicesKernel::backward(
            &cpu,
            ViewMut::new(&mut grad, rows),
            1,
            &CpuBuffer(vec![0, 3]),
            &CpuBuffer(vec![1.0, 1.0]),
        )
        .unwrap_err();
        assert!(
            err.to_string()
                .contains("index 3 is out of bounds for axis 1 of size 3"),
            "{err}"
        );
        assert_eq!(grad.0, vec![0.0; 6]);
        let err = ExtremumWithIndicesKernel::forward(&cpu, Extremum::Max, View::new(&input, rows), 2).unwrap_err();
        assert_eq!(err.to_string(), "max_with_indices: axis 2 of a rank-2 tensor");
    }

    #[test]
    fn fast_exp_matches_the_standard_library() {
        fn check<M: MulAdd>() {
            let mut worst: f64 = 0.0;
            let mut x = -87.3f32;
            while x < 88.37 {
                let (fast, reference) = (exp_f32::<M>(x) as f64, (x as f64).exp());
                worst = worst.max(((fast - reference) / reference).abs());
                x += 0.0137;
            }
            assert!(worst < 2.0 * f32::EPSILON as f64, "worst relative error {worst}");
            assert_eq!(exp_f32::<M>(0.0), 1.0);
            assert_eq!(exp_f32::<M>(f32::NEG_INFINITY), 0.0);
            assert_eq!(exp_f32::<M>(-88.0), 0.0); // below f32::MIN_POSITIVE: flushed
            assert_eq!(exp_f32::<M>(-200.0), 0.0);
            assert_eq!(exp_f32::<M>(89.0), f32::INFINITY);
            assert_eq!(exp_f32::<M>(f32::INFINITY), f32::INFINITY);
            assert!(exp_f32::<M>(f32::NAN).is_nan());
            assert!(exp_f32::<M>(-87.33) >= f32::MIN_POSITIVE);
        }
        check::<Separate>();
        // Outside an FMA build `mul_add` is a library call: slow, but as exact.
        check::<Fused>();
        assert_eq!(exp::<f64, Separate>(1.0), 1.0f64.exp());
    }

    #[test]
    fn row_helpers() {
        let v: Vec<f64> = (0..10_000).map(|i| (i % 7) as f64 - 3.0).collect();
        assert_eq!(sum_slice(&v), v.iter().sum::<f64>());
        assert_eq!(sum_map2(&v, &v, |a, b| a * b), v.iter().map(|a| a * a).sum::<f64>());
        assert_eq!(max_ignoring_nan(&[1.0f32, f32::NAN, 3.0]), 3.0);
        assert_eq!(max_ignoring_nan::<f32>(&[]), f32::NEG_INFINITY);
        assert_eq!(extremum_slice(Extremum::Min, &v), -3.0);
        assert_eq!(extremum_slice(Extremum::Max, &v), 3.0);
        assert!(extremum_slice(Extremum::Min, &[1.0f32, f32::NAN]).is_nan());
        assert_eq!(extremum_slice::<f64>(Extremum::Min, &[]), f64::INFINITY);
    }
}
