//! Products with a side of 1 — a row vector times a matrix (a batch of one), and an
//! outer product (`k = 1`, the weight gradient of a batch of one) — without the
//! blocked kernels' packing: packing the whole weight matrix to multiply it by one row
//! cost more than the product, and 13 of a tile's 14 rows were padding. Each case
//! streams the matrix once in its memory order.
//!
//! A layout these loops do not read in memory order returns `false`, and the caller
//! takes the general path.

use super::{GemmElement, MatrixMut, MatrixRef, is_non_overlapping};

/// Independent sums per dot product, so the adds can overlap and vectorise: one
/// AVX-512 vector of f32 (measured on a 784-long dot: 8 lanes 9.5 µs for 128 columns,
/// 16 lanes 7.9, 32 lanes 8.3).
const LANES: usize = 16;

/// `c = alpha · a·b + beta · c` for `m = 1` or `k = 1` when the operands' layouts allow a
/// single streaming pass; `false` (nothing written) otherwise.
#[allow(clippy::too_many_arguments)]
pub(super) fn try_gemm<E: GemmElement>(
    m: usize,
    k: usize,
    n: usize,
    alpha: E,
    a: &MatrixRef<'_, E>,
    b: &MatrixRef<'_, E>,
    beta: E,
    c: &mut MatrixMut<'_, E>,
) -> bool {
    // An output whose elements share memory is left to the general path's rules.
    if !is_non_overlapping(m, n, c.row_stride, c.column_stride) {
        return false;
    }
    if m == 1 && c.column_stride == 1 && b.column_stride == 1 {
        // c (1×n) += Σ_p alpha·a[p] · b[p, :], one contiguous row of b at a time.
        let row = &mut c.data[..n];
        scale_row(row, beta);
        add_scaled_rows(row, a.data, a.column_stride, b.data, b.row_stride, alpha, k);
        return true;
    }
    if m == 1 && a.column_stride == 1 && b.row_stride == 1 {
        // c[j] = alpha · (a · b[:, j]) + beta · c[j], each column of b contiguous.
        dot_columns(
            &a.data[..k],
            b.data,
            b.column_stride,
            alpha,
            beta,
            c.data,
            c.column_stride,
            n,
        );
        return true;
    }
    if k == 1 && c.column_stride == 1 && b.column_stride == 1 {
        // An outer product: c[i, :] = alpha·a[i] · b[0, :] + beta · c[i, :].
        outer_rows(a.data, a.row_stride, &b.data[..n], alpha, beta, c.data, c.row_stride, m);
        return true;
    }
    false
}

/// Compiles a loop for AVX-512 and AVX2 as well as the baseline, and runs the widest
/// this CPU has. The loops multiply and add separately (no fused multiply-add), so
/// every version gives the same bits.
macro_rules! widest_vectors {
    ($(#[$meta:meta])* fn $name:ident<$E:ident>($($arg:ident: $ty:ty),* $(,)?) $body:block) => {
        $(#[$meta])*
        #[allow(clippy::too_many_arguments)]
        fn $name<$E: GemmElement>($($arg: $ty),*) {
            #[inline(always)]
            #[allow(clippy::too_many_arguments)]
            fn body<$E: GemmElement>($($arg: $ty),*) $body

            #[cfg(target_arch = "x86_64")]
            #[target_feature(enable = "avx512f")]
            #[allow(clippy::too_many_arguments)]
            fn avx512<$E: GemmElement>($($arg: $ty),*) {
                body::<$E>($($arg),*)
            }

            #[cfg(target_arch = "x86_64")]
            #[target_feature(enable = "avx2")]
            #[allow(clippy::too_many_arguments)]
            fn avx2<$E: GemmElement>($($arg: $ty),*) {
                body::<$E>($($arg),*)
            }

            #[cfg(target_arch = "x86_64")]
            {
                if std::arch::is_x86_feature_detected!("avx512f") {
                    // SAFETY: `avx512` needs only AVX-512F, checked just above.
                    return unsafe { avx512::<$E>($($arg),*) };
                }
                if std::arch::is_x86_feature_detected!("avx2") {
                    // SAFETY: `avx2` needs only AVX2, checked just above.
                    return unsafe { avx2::<$E>($($arg),*) };
                }
            }
            body::<$E>($($arg),*)
        }
    };
}

widest_vectors! {
    /// `row += Σ_p alpha·a[p·a_stride] · b[p·b_stride ..][..row.len()]`.
    ///
    /// The row is summed in blocks held in registers across all of `p`: adding into
    /// the row in memory made each step wait for the previous step's store.
    fn add_scaled_rows<E>(row: &mut [E], a: &[E], a_stride: usize, b: &[E], b_stride: usize, alpha: E, k: usize) {
        let mut start = 0;
        let mut blocks = row.chunks_exact_mut(ROW_BLOCK);
        for block in &mut blocks {
            add_scaled_block::<E, ROW_BLOCK>(block.try_into().unwrap(), a, a_stride, &b[start..], b_stride, alpha, k);
            start += ROW_BLOCK;
        }
        let mut blocks = blocks.into_remainder().chunks_exact_mut(ROW_BLOCK / 4);
        for block in &mut blocks {
            add_scaled_block::<E, { ROW_BLOCK / 4 }>(block.try_into().unwrap(), a, a_stride, &b[start..], b_stride, alpha, k);
            start += ROW_BLOCK / 4;
        }
        // Fewer columns than a block. Where a whole block's width of b lies past the
        // start of a row, the row is summed a block wide in registers and the columns
        // beyond the last are dropped: two vector operations rather than a dozen
        // scalar ones. The last rows, whose block would run off the end of b, are
        // summed column by column.
        const W: usize = ROW_BLOCK / 4;
        let rest = blocks.into_remainder();
        if rest.is_empty() {
            return;
        }
        let mut sums = [E::ZERO; W];
        sums[..rest.len()].copy_from_slice(rest);
        let fits = |p: usize| p * b_stride + start + W <= b.len();
        let wide_rows = if fits(0) {
            match b_stride {
                0 => k,
                stride => ((b.len() - start - W) / stride + 1).min(k),
            }
        } else {
            0
        };
        add_scaled_block::<E, W>(&mut sums, a, a_stride, &b[start..], b_stride, alpha, wide_rows);
        let narrow = &mut sums[..rest.len()];
        for p in wide_rows..k {
            let factor = alpha * a[p * a_stride];
            let b_row = &b[p * b_stride + start..p * b_stride + start + narrow.len()];
            for (sum, &b) in narrow.iter_mut().zip(b_row) {
                *sum = *sum + factor * b;
            }
        }
        rest.copy_from_slice(narrow);
    }
}

/// Columns of a one-row product summed together in registers: four AVX-512 vectors of
/// f32 (eight of f64), enough independent sums to hide the adds' latency.
const ROW_BLOCK: usize = 128;

/// `block += Σ_p alpha·a[p·a_stride] · b[p·b_stride ..][..W]`, each sum in the same
/// order as an add into memory would give.
#[inline(always)]
fn add_scaled_block<E: GemmElement, const W: usize>(
    block: &mut [E; W],
    a: &[E],
    a_stride: usize,
    b: &[E],
    b_stride: usize,
    alpha: E,
    k: usize,
) {
    let mut sums = *block;
    for p in 0..k {
        let factor = alpha * a[p * a_stride];
        let b_row: &[E; W] = b[p * b_stride..p * b_stride + W].try_into().unwrap();
        for (sum, &b) in sums.iter_mut().zip(b_row) {
            *sum = *sum + factor * b;
        }
    }
    *block = sums;
}

widest_vectors! {
    /// `c[j·c_stride] = alpha · (a · column j) + beta · c[j·c_stride]` for `j < n`,
    /// column `j` being `b[j·b_stride ..][..a.len()]`.
    ///
    /// Four columns at a time share each load of `a` and keep four sets of sums going
    /// at once: one column at a time was a chain of dependent adds (a weight stored
    /// `(out, in)` as PyTorch's Linear, times one sample, takes this path).
    fn dot_columns<E>(a: &[E], b: &[E], b_stride: usize, alpha: E, beta: E, c: &mut [E], c_stride: usize, n: usize) {
        let k = a.len();
        let column = |j: usize| &b[j * b_stride..j * b_stride + k];
        let mut store = |j: usize, dot: E| {
            let c = &mut c[j * c_stride];
            *c = if beta == E::ZERO { alpha * dot } else { alpha * dot + beta * *c };
        };
        let mut j = 0;
        while j + 4 <= n {
            let dots = dot4(a, [column(j), column(j + 1), column(j + 2), column(j + 3)]);
            for (t, dot) in dots.into_iter().enumerate() {
                store(j + t, dot);
            }
            j += 4;
        }
        for j in j..n {
            store(j, dot(a, column(j)));
        }
    }
}

widest_vectors! {
    /// `c[i·c_stride ..][..b.len()] = alpha·a[i·a_stride] · b + beta · (the same)` for
    /// `i < m`.
    fn outer_rows<E>(a: &[E], a_stride: usize, b: &[E], alpha: E, beta: E, c: &mut [E], c_stride: usize, m: usize) {
        let n = b.len();
        for i in 0..m {
            let factor = alpha * a[i * a_stride];
            let row = &mut c[i * c_stride..i * c_stride + n];
            if beta == E::ZERO {
                for (c, &b) in row.iter_mut().zip(b) {
                    *c = factor * b;
                }
            } else {
                for (c, &b) in row.iter_mut().zip(b) {
                    *c = factor * b + beta * *c;
                }
            }
        }
    }
}

/// `row = beta · row`, where `beta = 0` clears it (a NaN there does not survive, as in
/// BLAS).
fn scale_row<E: GemmElement>(row: &mut [E], beta: E) {
    if beta == E::ZERO {
        row.fill(E::ZERO);
    } else if beta != E::ONE {
        for c in row {
            *c = beta * *c;
        }
    }
}

/// The dot product of two slices of one length, in [`LANES`] interleaved sums added
/// pairwise at the end.
#[inline(always)]
fn dot<E: GemmElement>(x: &[E], y: &[E]) -> E {
    let mut sums = [E::ZERO; LANES];
    let mut x_chunks = x.chunks_exact(LANES);
    let mut y_chunks = y.chunks_exact(LANES);
    for (xs, ys) in (&mut x_chunks).zip(&mut y_chunks) {
        for lane in 0..LANES {
            sums[lane] = sums[lane] + xs[lane] * ys[lane];
        }
    }
    for (&x, &y) in x_chunks.remainder().iter().zip(y_chunks.remainder()) {
        sums[0] = sums[0] + x * y;
    }
    pairwise_sum(sums)
}

/// The dot products of `x` with four slices of its length, each summed as [`dot`] sums.
#[inline(always)]
fn dot4<E: GemmElement>(x: &[E], [y0, y1, y2, y3]: [&[E]; 4]) -> [E; 4] {
    let (mut s0, mut s1, mut s2, mut s3) = ([E::ZERO; LANES], [E::ZERO; LANES], [E::ZERO; LANES], [E::ZERO; LANES]);
    let full = x.len() / LANES * LANES;
    let mut start = 0;
    while start < full {
        let xs = &x[start..start + LANES];
        let (c0, c1, c2, c3) = (
            &y0[start..start + LANES],
            &y1[start..start + LANES],
            &y2[start..start + LANES],
            &y3[start..start + LANES],
        );
        for lane in 0..LANES {
            s0[lane] = s0[lane] + xs[lane] * c0[lane];
            s1[lane] = s1[lane] + xs[lane] * c1[lane];
            s2[lane] = s2[lane] + xs[lane] * c2[lane];
            s3[lane] = s3[lane] + xs[lane] * c3[lane];
        }
        start += LANES;
    }
    for i in full..x.len() {
        s0[0] = s0[0] + x[i] * y0[i];
        s1[0] = s1[0] + x[i] * y1[i];
        s2[0] = s2[0] + x[i] * y2[i];
        s3[0] = s3[0] + x[i] * y3[i];
    }
    [pairwise_sum(s0), pairwise_sum(s1), pairwise_sum(s2), pairwise_sum(s3)]
}

/// The sum of [`LANES`] values, added in halves.
#[inline(always)]
fn pairwise_sum<E: GemmElement>(mut sums: [E; LANES]) -> E {
    let mut width = LANES;
    while width > 1 {
        width /= 2;
        for lane in 0..width {
            sums[lane] = sums[lane] + sums[lane + width];
        }
    }
    sums[0]
}
