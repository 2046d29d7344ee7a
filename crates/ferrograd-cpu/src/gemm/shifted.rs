//! A product whose right-hand operand is a set of shifted windows of one buffer:
//! `c[i][j] = Σ_p a[i][p] · data[offsets[p] + j]`, on CPUs with AVX-512F.
//!
//! This is a stride-1 convolution without im2col. Lay the output pixels out with the
//! input's row length (each output row followed by a few pixels of junk, which the
//! caller drops), and the input pixels that kernel tap `p = (c, i, j)` meets, for every
//! output pixel, are one contiguous run starting at `offset(c) + i·row + j`. So `b`'s
//! rows are read straight from the input, with unaligned vector loads: no columns
//! matrix is written, and none is packed (the two copies took a quarter of the time of
//! a small convolution before: 14% and 13%).
//!
//! The micro-kernel keeps a tile of [`ROWS`] rows × [`VECTORS`] vectors of `c` in
//! registers over the whole depth: 24 accumulators, 3 loads of `b` and a broadcast of
//! `a` per step, which leaves the FMA units, not the loads, setting the pace. The
//! depth is not blocked: convolutions have short ones (channels × taps), and a panel of
//! `a` ([`ROWS`] × depth) and the rows of the input a tile reads stay in L1 or L2.

use std::ops::Range;

use super::MatrixRef;
use super::avx512::{Avx512, Output, available, pack};

/// Rows of `c` in one tile (output channels, in a convolution).
const ROWS: usize = 8;
/// Vectors of `c` per row of a tile: 8 × 3 accumulators, 3 vectors of `b` and one
/// broadcast fill 28 of the 32 registers.
const VECTORS: usize = 3;
/// Floating-point operations below which a product stays on one thread, as in
/// `avx512.rs`.
const PARALLEL_MIN_FLOPS: usize = 1 << 18;

/// `c[i·ldc + j] = Σ_p a[i, p] · data[offsets[p] + j]` for `i < m`, `j < n`, `p < k`
/// (`k = offsets.len()`), overwriting `c`.
///
/// # Panics
/// Unless [`available`], or if a slice is too short for what the sizes address.
pub(super) fn gemm<E: Avx512>(
    m: usize,
    n: usize,
    a: &MatrixRef<'_, E>,
    data: &[E],
    offsets: &[usize],
    c: &mut [E],
    ldc: usize,
) {
    assert!(available(), "the shifted-window GEMM runs only on CPUs with AVX-512F");
    let k = offsets.len();
    if m == 0 || n == 0 {
        return;
    }
    assert!(ldc >= n && (m - 1) * ldc + n <= c.len(), "gemm_shifted: `c` too short");
    assert!(
        offsets
            .iter()
            .all(|&offset| offset.checked_add(n).is_some_and(|end| end <= data.len())),
        "gemm_shifted: a window reaches past the end of `data`"
    );
    if k == 0 {
        for row in c.chunks_mut(ldc).take(m) {
            row[..n].fill(E::ZERO);
        }
        return;
    }
    super::check_len("a", m, k, a.data.len(), a.row_stride, a.column_stride);

    let width = VECTORS * E::LANES;
    let flops = m.saturating_mul(k).saturating_mul(n).saturating_mul(2);
    let threads = if flops >= PARALLEL_MIN_FLOPS {
        crate::threads()
    } else {
        1
    };
    let share = n.div_ceil(threads).next_multiple_of(width);
    let output = Output {
        data: c.as_mut_ptr(),
        row_stride: ldc,
    };
    E::with_pack_buffers(|buffers| {
        let packed = buffers.a(k * m.next_multiple_of(ROWS));
        pack::<E, ROWS>(a, 0..m, 0..k, packed);
        let packed = &*packed;
        let run = |start: usize| multiply_share(m, start..(start + share).min(n), packed, data, offsets, &output);
        if share >= n {
            run(0);
        } else {
            crate::threads::map_shares(n.div_ceil(share), |s| run(s * share));
        }
    });
}

/// Columns `columns` of every row of `c`, on the calling thread, from `a` packed in
/// panels of [`ROWS`] rows.
fn multiply_share<E: Avx512>(
    m: usize,
    columns: Range<usize>,
    packed: &[E],
    data: &[E],
    offsets: &[usize],
    c: &Output<E>,
) {
    let k = offsets.len();
    let width = VECTORS * E::LANES;
    // Column tiles outside, row panels inside: the input rows a tile reads stay in L1
    // while every panel of `a` passes over them.
    for first in columns.clone().step_by(width) {
        let columns = width.min(columns.end - first);
        for (panel, row) in packed.chunks_exact(k * ROWS).zip((0..m).step_by(ROWS)) {
            let rows = ROWS.min(m - row);
            let tile = (
                panel.as_ptr(),
                // `first < n`, and the caller checked every window holds `n` elements.
                data[first..].as_ptr(),
                offsets,
                // (`wrapping_add`, as `c` is a raw pointer shared by the threads.)
                c.data.wrapping_add(row * c.row_stride + first),
                c.row_stride,
                rows,
                columns,
            );
            // SAFETY: AVX-512F was checked by `gemm`. The panel holds `k` steps of ROWS
            // elements. Every window `data[offsets[p] + first..][..columns]` lies inside
            // `data` (`first + columns ≤ n`, checked against `data` by `gemm`). The
            // tile's `rows` × `columns` elements of `c` lie inside the m × n matrix
            // checked against `c`, within this thread's columns, which no other thread
            // writes.
            unsafe {
                match (rows, columns == width) {
                    (5.., true) => kernel::<E, 8, false>(tile),
                    (3..=4, true) => kernel::<E, 4, false>(tile),
                    (2, true) => kernel::<E, 2, false>(tile),
                    (_, true) => kernel::<E, 1, false>(tile),
                    (5.., false) => kernel::<E, 8, true>(tile),
                    (3..=4, false) => kernel::<E, 4, true>(tile),
                    (2, false) => kernel::<E, 2, true>(tile),
                    (_, false) => kernel::<E, 1, true>(tile),
                }
            }
        }
    }
}

/// One tile's arguments: the panel of `a`, `data` at the tile's first column, the
/// offsets, `c` at the tile's first element, its row stride, the tile's rows and
/// columns.
type Tile<'a, E> = (*const E, *const E, &'a [usize], *mut E, usize, usize, usize);

/// One tile: `c[i][j] = Σ_p panel[p·ROWS + i] · data[offsets[p] + j]` for `i < rows`,
/// `j < columns`, computing `R` rows of the panel. `MASKED` reads and writes only the
/// first `columns` of the tile's [`VECTORS`] vectors; otherwise the tile is full.
///
/// # Safety
/// AVX-512F is available; the panel holds `offsets.len()` steps of [`ROWS`] elements;
/// `rows ≤ R ≤ ROWS`; `columns ≤ VECTORS · LANES`, and equal to it unless `MASKED`; for
/// every offset, the `columns` elements from `data + offset` are readable; for each
/// `i < rows`, the `columns` elements from `c + i · row_stride` are writable and written
/// by no one else.
#[target_feature(enable = "avx512f")]
unsafe fn kernel<E: Avx512, const R: usize, const MASKED: bool>(
    (a, data, offsets, c, row_stride, rows, columns): Tile<'_, E>,
) {
    debug_assert!(rows <= R && R <= ROWS && columns <= VECTORS * E::LANES);
    let lanes = E::LANES;
    // The lanes of each vector inside the tile (all of them unless MASKED).
    let used: [usize; VECTORS] = std::array::from_fn(|v| columns.saturating_sub(v * lanes).min(lanes));
    // SAFETY: AVX-512F is available, as the caller guarantees.
    let mut sums = [[unsafe { E::zero() }; VECTORS]; R];
    let mut a = a;
    for &offset in offsets {
        // `wrapping_add`: in a masked tile a vector past the tile's columns is not
        // read, and its address may lie past the end of `data`.
        let window = data.wrapping_add(offset);
        // SAFETY: each vector reads only its `used` lanes (all of them in a full
        // tile), which the caller guarantees are readable; the panel's step holds
        // ROWS ≥ R elements.
        unsafe {
            let b: [E::Vector; VECTORS] = std::array::from_fn(|v| {
                let p = window.wrapping_add(v * lanes);
                if MASKED { E::load_first(p, used[v]) } else { E::load(p) }
            });
            for (i, sum) in sums.iter_mut().enumerate() {
                let a_i = E::splat(*a.add(i));
                for (sum, &b) in sum.iter_mut().zip(&b) {
                    *sum = E::mul_add(a_i, b, *sum);
                }
            }
            a = a.add(ROWS);
        }
    }
    // A loop over all R rows with a test inside, rather than `0..rows`, so that the
    // sums stay in registers (the bound is a constant).
    for (i, sum) in sums.iter().enumerate() {
        if i < rows {
            for (v, &sum) in sum.iter().enumerate() {
                if used[v] > 0 {
                    // SAFETY: row `i < rows` of the tile has `columns` writable
                    // elements, and vector `v` writes only its `used[v]` of them.
                    unsafe { E::store_first(c.add(i * row_stride + v * lanes), used[v], sum) }
                }
            }
        }
    }
}
