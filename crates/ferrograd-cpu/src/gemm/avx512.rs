//! ferrograd's own GEMM for x86-64 CPUs with AVX-512, used by default where the CPU has
//! it (see [`available`]).
//!
//! Why not only matrixmultiply: its AVX-512 kernel holds a 16×16 tile of `c` in one
//! vector per row, so every multiply-add needs a broadcast load of its own, and the
//! load ports, not the FMA units, set the pace. This kernel holds a 14×32 tile (f32;
//! 14×16 in f64) in two vectors per row: 16 loads feed 28 multiply-adds. On the
//! 2-core Xeon this was written on, in one run of
//! `cargo run --release -p ferrograd-benches --bin matmul` per build, f32 1024³ went
//! from 277–290 GFLOP/s with matrixmultiply to 315–338, and f64 1024³ from 114–118
//! to 140–155.
//!
//! The structure is the usual one (Goto and van de Geijn; BLIS): `b` is packed in
//! blocks of [`DEPTH_BLOCK`] rows by [`column_block`] columns into panels two vectors
//! wide, `a` in blocks of [`ROW_BLOCK`] rows into panels [`MR`] high, and the
//! micro-kernel multiplies one panel of each into a tile of `c`. Panels are
//! zero-padded, so ragged edges cost masked loads and stores, not a second kernel.
//! Large products split `c` into one share per thread of ferrograd's setting (the
//! caller runs one, the pool the others), each packing its own operands, so the threads never wait on each other.

use std::arch::x86_64::{
    __m512, __m512d, _MM_HINT_T0, _mm_prefetch, _mm512_castpd_ps, _mm512_castps_pd, _mm512_fmadd_pd, _mm512_fmadd_ps,
    _mm512_loadu_pd, _mm512_loadu_ps, _mm512_mask_storeu_pd, _mm512_mask_storeu_ps, _mm512_maskz_loadu_pd,
    _mm512_maskz_loadu_ps, _mm512_mul_pd, _mm512_mul_ps, _mm512_set1_pd, _mm512_set1_ps, _mm512_setzero_pd,
    _mm512_setzero_ps, _mm512_shuffle_f32x4, _mm512_shuffle_f64x2, _mm512_storeu_pd, _mm512_storeu_ps,
    _mm512_unpackhi_pd, _mm512_unpackhi_ps, _mm512_unpacklo_pd, _mm512_unpacklo_ps,
};
use std::cell::RefCell;
use std::ops::Range;
use std::thread::LocalKey;

use super::{GemmElement, MatrixMut, MatrixRef};

/// Rows of `c` in one micro-kernel tile. 14 rows × 2 vectors = 28 accumulators, plus
/// the two vectors of `b` and a broadcast: 31 of the 32 vector registers. (12 rows
/// measured 3–5% slower.)
const MR: usize = 14;
/// Rows of `a` packed at a time (224 × 256 × 4 bytes in f32).
const ROW_BLOCK: usize = 16 * MR;
/// Depth (the `k` dimension) packed at a time: one panel of `a` (14 × 256 × 4 bytes in
/// f32) stays in the 48 KiB L1 cache while the panels of `b` stream past it from L2.
/// (Keeping a panel of `b` in L1 instead measured 3–8% slower; depths of 128, 192,
/// 384 and 512 were no faster.)
const DEPTH_BLOCK: usize = 256;
/// Bytes of `b` packed at a time ([`DEPTH_BLOCK`] × [`column_block`] elements): 1 MiB,
/// which stays in the 2 MiB L2 cache together with the packed rows of `a`.
const PACKED_B_BYTES: usize = 1 << 20;
/// Floating-point operations (2·m·k·n) below which a product stays on one thread.
/// Handing a share to a worker that is awake costs about a microsecond (see
/// `threads.rs`). Measured in f32 on 1 and 2 threads, in a loop: 40³ 3.0 and 3.2 µs,
/// 48³ 4.6 and 4.4 µs, 64³ 7.1 and 5.2–6.3 µs, 96³ 21 and 13–14 µs.
const PARALLEL_MIN_FLOPS: usize = 1 << 18;

/// Whether this CPU runs this module's kernels (checked once by `std`, then cached).
pub(super) fn available() -> bool {
    std::arch::is_x86_feature_detected!("avx512f")
}

/// The vector operations the kernel needs, for one element type. Every method requires
/// AVX-512F, which [`available`] checked before any kernel runs.
pub(super) trait Avx512: GemmElement {
    /// A 512-bit vector of `LANES` elements.
    type Vector: Copy;
    /// Elements per vector: 16 for f32, 8 for f64.
    const LANES: usize;

    /// # Safety
    /// AVX-512F is available.
    unsafe fn zero() -> Self::Vector;
    /// # Safety
    /// AVX-512F is available.
    unsafe fn splat(x: Self) -> Self::Vector;
    /// # Safety
    /// AVX-512F is available; `p` points to `LANES` readable elements.
    unsafe fn load(p: *const Self) -> Self::Vector;
    /// `a · b + c`, rounded once.
    ///
    /// # Safety
    /// AVX-512F is available.
    unsafe fn mul_add(a: Self::Vector, b: Self::Vector, c: Self::Vector) -> Self::Vector;
    /// # Safety
    /// AVX-512F is available.
    unsafe fn multiply(a: Self::Vector, b: Self::Vector) -> Self::Vector;
    /// The first `lanes` elements at `p`, zeros in the other lanes.
    ///
    /// # Safety
    /// AVX-512F is available; `p` points to `lanes` readable elements (the lanes beyond
    /// are masked off and never touched).
    unsafe fn load_first(p: *const Self, lanes: usize) -> Self::Vector;
    /// Writes the first `lanes` elements of `v` to `p`.
    ///
    /// # Safety
    /// AVX-512F is available; `p` points to `lanes` writable elements.
    unsafe fn store_first(p: *mut Self, lanes: usize, v: Self::Vector);

    /// A `LANES × LANES` block transposed in registers: `out[p · out_stride + i] =
    /// rows[i][start + p]` for `i, p < LANES`.
    ///
    /// # Safety
    /// AVX-512F is available; `rows` holds `LANES` slices, each at least `start +
    /// LANES` long; `out` points to `(LANES - 1) · out_stride + LANES` writable
    /// elements.
    unsafe fn transpose_block(rows: &[&[Self]], start: usize, out: *mut Self, out_stride: usize);

    /// [`pack`] into panels of `2 · LANES` rows (the columns of `b`).
    fn pack_b(x: &MatrixRef<'_, Self>, rows: Range<usize>, depths: Range<usize>, out: &mut [Self]);

    /// Runs `f` on this thread's packing buffers for this type.
    fn with_pack_buffers<R>(f: impl FnOnce(&mut PackBuffers<Self>) -> R) -> R;
}

/// The mask selecting the first `lanes` of at most 16 lanes.
fn first_lanes(lanes: usize) -> u16 {
    if lanes >= 16 { u16::MAX } else { (1u16 << lanes) - 1 }
}

impl Avx512 for f32 {
    type Vector = __m512;
    const LANES: usize = 16;

    fn pack_b(x: &MatrixRef<'_, f32>, rows: Range<usize>, depths: Range<usize>, out: &mut [f32]) {
        pack::<f32, 32>(x, rows, depths, out);
    }

    #[inline]
    #[target_feature(enable = "avx512f")]
    unsafe fn transpose_block(rows: &[&[f32]], start: usize, out: *mut f32, out_stride: usize) {
        // SAFETY: each row has 16 readable elements from `start`, as the caller
        // guarantees.
        let r: [__m512; 16] = std::array::from_fn(|i| unsafe { _mm512_loadu_ps(rows[i].as_ptr().add(start)) });
        // Pairs of rows interleaved: in each 128-bit lane, elements (0, 1) and (2, 3).
        let t: [__m512; 16] = std::array::from_fn(|k| {
            let (a, b) = (r[k & !1], r[k | 1]);
            if k % 2 == 0 {
                _mm512_unpacklo_ps(a, b)
            } else {
                _mm512_unpackhi_ps(a, b)
            }
        });
        // Quads: `u[4q + j]` holds, in 128-bit lane L, column `j + 4L` of rows 4q..4q+4.
        let u: [__m512; 16] = std::array::from_fn(|k| {
            let (q, j) = (k / 4, k % 4);
            let (a, b) = (
                _mm512_castps_pd(t[4 * q + j / 2]),
                _mm512_castps_pd(t[4 * q + 2 + j / 2]),
            );
            _mm512_castpd_ps(if j % 2 == 0 {
                _mm512_unpacklo_pd(a, b)
            } else {
                _mm512_unpackhi_pd(a, b)
            })
        });
        for j in 0..4 {
            let x0 = _mm512_shuffle_f32x4::<0x88>(u[j], u[4 + j]);
            let x1 = _mm512_shuffle_f32x4::<0x88>(u[8 + j], u[12 + j]);
            let y0 = _mm512_shuffle_f32x4::<0xDD>(u[j], u[4 + j]);
            let y1 = _mm512_shuffle_f32x4::<0xDD>(u[8 + j], u[12 + j]);
            // SAFETY: column `c < 16` goes to `out + c · out_stride`, 16 writable
            // elements, as the caller guarantees.
            unsafe {
                _mm512_storeu_ps(out.add(j * out_stride), _mm512_shuffle_f32x4::<0x88>(x0, x1));
                _mm512_storeu_ps(out.add((j + 4) * out_stride), _mm512_shuffle_f32x4::<0x88>(y0, y1));
                _mm512_storeu_ps(out.add((j + 8) * out_stride), _mm512_shuffle_f32x4::<0xDD>(x0, x1));
                _mm512_storeu_ps(out.add((j + 12) * out_stride), _mm512_shuffle_f32x4::<0xDD>(y0, y1));
            }
        }
    }

    fn with_pack_buffers<R>(f: impl FnOnce(&mut PackBuffers<f32>) -> R) -> R {
        thread_local!(static BUFFERS: RefCell<PackBuffers<f32>> = RefCell::default());
        with_local_buffers(&BUFFERS, f)
    }

    #[inline]
    #[target_feature(enable = "avx512f")]
    unsafe fn zero() -> __m512 {
        _mm512_setzero_ps()
    }
    #[inline]
    #[target_feature(enable = "avx512f")]
    unsafe fn splat(x: f32) -> __m512 {
        _mm512_set1_ps(x)
    }
    #[inline]
    #[target_feature(enable = "avx512f")]
    unsafe fn load(p: *const f32) -> __m512 {
        // SAFETY: the caller guarantees 16 readable elements at `p`.
        unsafe { _mm512_loadu_ps(p) }
    }
    #[inline]
    #[target_feature(enable = "avx512f")]
    unsafe fn mul_add(a: __m512, b: __m512, c: __m512) -> __m512 {
        _mm512_fmadd_ps(a, b, c)
    }
    #[inline]
    #[target_feature(enable = "avx512f")]
    unsafe fn multiply(a: __m512, b: __m512) -> __m512 {
        _mm512_mul_ps(a, b)
    }
    #[inline]
    #[target_feature(enable = "avx512f")]
    unsafe fn load_first(p: *const f32, lanes: usize) -> __m512 {
        // SAFETY: masked-off lanes are not accessed; the caller guarantees the others.
        unsafe { _mm512_maskz_loadu_ps(first_lanes(lanes), p) }
    }
    #[inline]
    #[target_feature(enable = "avx512f")]
    unsafe fn store_first(p: *mut f32, lanes: usize, v: __m512) {
        // SAFETY: masked-off lanes are not accessed; the caller guarantees the others.
        unsafe { _mm512_mask_storeu_ps(p, first_lanes(lanes), v) }
    }
}

impl Avx512 for f64 {
    type Vector = __m512d;
    const LANES: usize = 8;

    fn pack_b(x: &MatrixRef<'_, f64>, rows: Range<usize>, depths: Range<usize>, out: &mut [f64]) {
        pack::<f64, 16>(x, rows, depths, out);
    }

    #[inline]
    #[target_feature(enable = "avx512f")]
    unsafe fn transpose_block(rows: &[&[f64]], start: usize, out: *mut f64, out_stride: usize) {
        // SAFETY: each row has 8 readable elements from `start`, as the caller
        // guarantees.
        let r: [__m512d; 8] = std::array::from_fn(|i| unsafe { _mm512_loadu_pd(rows[i].as_ptr().add(start)) });
        // `t[2k + h]` holds, in 128-bit lane L, column `2L + h` of rows 2k and 2k + 1.
        let t: [__m512d; 8] = std::array::from_fn(|k| {
            let (a, b) = (r[k & !1], r[k | 1]);
            if k % 2 == 0 {
                _mm512_unpacklo_pd(a, b)
            } else {
                _mm512_unpackhi_pd(a, b)
            }
        });
        for h in 0..2 {
            let x0 = _mm512_shuffle_f64x2::<0x88>(t[h], t[2 + h]);
            let x1 = _mm512_shuffle_f64x2::<0x88>(t[4 + h], t[6 + h]);
            let y0 = _mm512_shuffle_f64x2::<0xDD>(t[h], t[2 + h]);
            let y1 = _mm512_shuffle_f64x2::<0xDD>(t[4 + h], t[6 + h]);
            // SAFETY: column `c < 8` goes to `out + c · out_stride`, 8 writable
            // elements, as the caller guarantees.
            unsafe {
                _mm512_storeu_pd(out.add(h * out_stride), _mm512_shuffle_f64x2::<0x88>(x0, x1));
                _mm512_storeu_pd(out.add((h + 2) * out_stride), _mm512_shuffle_f64x2::<0x88>(y0, y1));
                _mm512_storeu_pd(out.add((h + 4) * out_stride), _mm512_shuffle_f64x2::<0xDD>(x0, x1));
                _mm512_storeu_pd(out.add((h + 6) * out_stride), _mm512_shuffle_f64x2::<0xDD>(y0, y1));
            }
        }
    }

    fn with_pack_buffers<R>(f: impl FnOnce(&mut PackBuffers<f64>) -> R) -> R {
        thread_local!(static BUFFERS: RefCell<PackBuffers<f64>> = RefCell::default());
        with_local_buffers(&BUFFERS, f)
    }

    #[inline]
    #[target_feature(enable = "avx512f")]
    unsafe fn zero() -> __m512d {
        _mm512_setzero_pd()
    }
    #[inline]
    #[target_feature(enable = "avx512f")]
    unsafe fn splat(x: f64) -> __m512d {
        _mm512_set1_pd(x)
    }
    #[inline]
    #[target_feature(enable = "avx512f")]
    unsafe fn load(p: *const f64) -> __m512d {
        // SAFETY: the caller guarantees 8 readable elements at `p`.
        unsafe { _mm512_loadu_pd(p) }
    }
    #[inline]
    #[target_feature(enable = "avx512f")]
    unsafe fn mul_add(a: __m512d, b: __m512d, c: __m512d) -> __m512d {
        _mm512_fmadd_pd(a, b, c)
    }
    #[inline]
    #[target_feature(enable = "avx512f")]
    unsafe fn multiply(a: __m512d, b: __m512d) -> __m512d {
        _mm512_mul_pd(a, b)
    }
    #[inline]
    #[target_feature(enable = "avx512f")]
    unsafe fn load_first(p: *const f64, lanes: usize) -> __m512d {
        // SAFETY: masked-off lanes are not accessed; the caller guarantees the others.
        unsafe { _mm512_maskz_loadu_pd(first_lanes(lanes) as u8, p) }
    }
    #[inline]
    #[target_feature(enable = "avx512f")]
    unsafe fn store_first(p: *mut f64, lanes: usize, v: __m512d) {
        // SAFETY: masked-off lanes are not accessed; the caller guarantees the others.
        unsafe { _mm512_mask_storeu_pd(p, first_lanes(lanes) as u8, v) }
    }
}

/// Columns of `c` in one micro-kernel tile: two vectors.
const fn nr<E: Avx512>() -> usize {
    2 * E::LANES
}

/// `c = alpha · a·b + beta · c` for non-empty `m`, `k`, `n`, nonzero `alpha`, and
/// operands whose slices the caller has checked are long enough.
///
/// # Panics
/// Unless [`available`].
#[allow(clippy::too_many_arguments)]
pub(super) fn gemm<E: Avx512>(
    m: usize,
    k: usize,
    n: usize,
    alpha: E,
    a: MatrixRef<'_, E>,
    b: MatrixRef<'_, E>,
    beta: E,
    c: MatrixMut<'_, E>,
) {
    assert!(available(), "the AVX-512 GEMM runs only on CPUs with AVX-512F");
    if !super::is_non_overlapping(m, n, c.row_stride, c.column_stride) {
        // Tiles of `c` on different threads would write the same memory: a data race.
        super::via_temporary(m, n, beta, c, |c| gemm(m, k, n, alpha, a, b, beta, c));
        return;
    }
    if c.column_stride != 1 {
        if c.row_stride == 1 {
            // The kernel writes rows of `c` with unit stride: compute cᵀ = bᵀ·aᵀ.
            gemm(n, k, m, alpha, b.t(), a.t(), beta, c.t());
        } else {
            super::via_temporary(m, n, beta, c, |c| gemm(m, k, n, alpha, a, b, beta, c));
        }
        return;
    }

    let flops = m.saturating_mul(k).saturating_mul(n).saturating_mul(2);
    let threads = if flops >= PARALLEL_MIN_FLOPS {
        crate::threads()
    } else {
        1
    };
    // Split the longer side of `c` into one share per thread, each a whole number of
    // tiles. (Rows when square: each thread then packs all of `b`, which for row-major
    // operands is a plain copy, rather than all of `a`, a gather.)
    let (split_rows, length, tile) = if m >= n { (true, m, MR) } else { (false, n, nr::<E>()) };
    let share = length.div_ceil(threads).next_multiple_of(tile);
    let output = Output {
        data: c.data.as_mut_ptr(),
        row_stride: c.row_stride,
    };
    let run = |start: usize| {
        let range = start..(start + share).min(length);
        let (rows, columns) = if split_rows { (range, 0..n) } else { (0..m, range) };
        E::with_pack_buffers(|buffers| multiply_share(rows, k, columns, alpha, &a, &b, beta, &output, buffers));
    };
    if share >= length {
        run(0);
    } else {
        crate::threads::map_shares(length.div_ceil(share), |k| run(k * share));
    }
}

/// Where the kernels write `c`: row-major with unit column stride.
///
/// A raw pointer because the threads write disjoint tiles of one buffer, and tiles of
/// a column share are not a contiguous sub-slice.
pub(super) struct Output<E> {
    pub(super) data: *mut E,
    pub(super) row_stride: usize,
}

// SAFETY: each thread sharing an `Output` reads and writes only the elements of its
// own share of rows or columns, and the shares do not intersect.
unsafe impl<E: Send> Sync for Output<E> {}

/// One thread's packing buffers. Each thread keeps its own between calls (at most
/// 1.2 MiB for f32, 1.5 MiB for f64), so neither the allocation nor the page faults of first
/// touching fresh memory recur.
#[derive(Default)]
pub(super) struct PackBuffers<E> {
    a: AlignedBuffer<E>,
    b: AlignedBuffer<E>,
}

/// A growable buffer whose slices start on a 64-byte cache line, so that no vector load
/// of the kernel straddles two lines.
#[derive(Default)]
struct AlignedBuffer<E> {
    buffer: Vec<E>,
}

impl<E: GemmElement> PackBuffers<E> {
    /// The buffer `a` is packed into, as `len` elements on a cache line (for the other
    /// kernels of this module's family, which pack only `a`).
    pub(super) fn a(&mut self, len: usize) -> &mut [E] {
        self.a.slice(len)
    }
}

impl<E: GemmElement> AlignedBuffer<E> {
    /// `len` elements starting on a cache line, growing the buffer if needed.
    fn slice(&mut self, len: usize) -> &mut [E] {
        let padded = len + 64 / size_of::<E>();
        if self.buffer.len() < padded {
            self.buffer = vec![E::ZERO; padded];
        }
        let start = self.buffer.as_ptr().align_offset(64).min(self.buffer.len() - len);
        &mut self.buffer[start..start + len]
    }
}

/// Runs `f` on this thread's packing buffers in `buffers`, or on new ones if those are
/// in use (only if `f` itself multiplies) or gone (in a thread-local destructor).
fn with_local_buffers<E: Default + 'static, R>(
    buffers: &'static LocalKey<RefCell<PackBuffers<E>>>,
    f: impl FnOnce(&mut PackBuffers<E>) -> R,
) -> R {
    // Nothing else runs on this thread between the check and the borrow.
    let usable = buffers.try_with(|cell| cell.try_borrow_mut().is_ok()).unwrap_or(false);
    if usable {
        buffers.with_borrow_mut(f)
    } else {
        f(&mut PackBuffers::default())
    }
}

/// Columns of `b` packed at a time: [`PACKED_B_BYTES`] at full depth.
fn column_block<E: Avx512>() -> usize {
    (PACKED_B_BYTES / (DEPTH_BLOCK * size_of::<E>())).next_multiple_of(nr::<E>())
}

/// `c[rows, columns] = alpha · a[rows, :]·b[:, columns] + beta · c[rows, columns]` on
/// the calling thread.
#[allow(clippy::too_many_arguments)]
fn multiply_share<E: Avx512>(
    rows: Range<usize>,
    k: usize,
    columns: Range<usize>,
    alpha: E,
    a: &MatrixRef<'_, E>,
    b: &MatrixRef<'_, E>,
    beta: E,
    c: &Output<E>,
    buffers: &mut PackBuffers<E>,
) {
    let nr = nr::<E>();
    let column_block = column_block::<E>();
    let b_transposed = b.t();
    let PackBuffers {
        a: a_buffer,
        b: b_buffer,
    } = buffers;

    for column_start in columns.clone().step_by(column_block) {
        let block_columns = column_start..(column_start + column_block).min(columns.end);
        for depth_start in (0..k).step_by(DEPTH_BLOCK) {
            let depths = depth_start..(depth_start + DEPTH_BLOCK).min(k);
            let kc = depths.len();
            // Later depth blocks add to what the first one wrote.
            let beta = if depth_start == 0 { beta } else { E::ONE };
            let packed_b = b_buffer.slice(kc * block_columns.len().next_multiple_of(nr));
            E::pack_b(&b_transposed, block_columns.clone(), depths.clone(), packed_b);

            for row_start in rows.clone().step_by(ROW_BLOCK) {
                let block_rows = row_start..(row_start + ROW_BLOCK).min(rows.end);
                let packed_a = a_buffer.slice(kc * block_rows.len().next_multiple_of(MR));
                pack::<E, MR>(a, block_rows.clone(), depths.clone(), packed_a);

                for (a_panel, tile_row) in packed_a.chunks_exact(kc * MR).zip(block_rows.clone().step_by(MR)) {
                    let tile_rows = MR.min(block_rows.end - tile_row);
                    for (b_panel, tile_column) in packed_b.chunks_exact(kc * nr).zip(block_columns.clone().step_by(nr))
                    {
                        let tile_columns = nr.min(block_columns.end - tile_column);
                        // SAFETY: AVX-512F was checked by `gemm`. The panels hold `kc`
                        // steps of MR and nr elements. The tile's `tile_rows` ×
                        // `tile_columns` elements of `c` lie inside the m×n matrix the
                        // caller checked against `c`'s slice, with unit column stride,
                        // and inside this thread's share, which no other thread writes.
                        unsafe {
                            let tile = (
                                kc,
                                a_panel.as_ptr(),
                                b_panel.as_ptr(),
                                c.data.add(tile_row * c.row_stride + tile_column),
                                c.row_stride,
                                tile_rows,
                                tile_columns,
                                alpha,
                                beta,
                            );
                            // A short last tile (2 rows of 128 = 9·14 + 2) computes only
                            // the rows it has, in the smallest kernel that holds them:
                            // padding rows were 8.6% of the work at 64 and 128 rows.
                            match tile_rows {
                                9.. => kernel::<E, MR>(tile),
                                5..=8 => kernel::<E, 8>(tile),
                                3..=4 => kernel::<E, 4>(tile),
                                _ => kernel::<E, 2>(tile),
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Copies `x[rows, depths]` into panels of `WIDTH` rows, each stored depth-major
/// (`panel[p · WIDTH + i] = x[first + i, depth_start + p]`), the last one zero-padded.
pub(super) fn pack<E: Avx512, const WIDTH: usize>(
    x: &MatrixRef<'_, E>,
    rows: Range<usize>,
    depths: Range<usize>,
    out: &mut [E],
) {
    let kc = depths.len();
    for (panel, first) in out.chunks_exact_mut(WIDTH * kc).zip(rows.clone().step_by(WIDTH)) {
        let height = WIDTH.min(rows.end - first);
        if x.column_stride == 1 && height == WIDTH {
            // Rows are contiguous along the depth: walk all of them at once, writing
            // whole lines.
            let sources: [&[E]; WIDTH] = std::array::from_fn(|i| {
                let start = (first + i) * x.row_stride + depths.start;
                &x.data[start..start + kc]
            });
            // Blocks of LANES rows × LANES depths, transposed in registers: reading one
            // element of each of 32 rows per step was a tenth of the speed (rows a
            // power-of-two-ish distance apart share a few L1 sets, and their lines were
            // evicted before their next element was read), and copying element by
            // element, a cache line of each row at a time, half of it; packing a
            // 512×4608 weight had taken 73 % of a 2×2-map convolution.
            let lanes = E::LANES;
            let blocked = if WIDTH.is_multiple_of(lanes) {
                kc - kc % lanes
            } else {
                0
            };
            for (group, rows) in sources.chunks_exact(lanes).enumerate().take(WIDTH / lanes) {
                for start in (0..blocked).step_by(lanes) {
                    let block = &mut panel[start * WIDTH + group * lanes..];
                    assert!(block.len() >= (lanes - 1) * WIDTH + lanes);
                    // SAFETY: AVX-512F is available (this module's kernels run only
                    // where it is); `rows` holds LANES rows of `kc ≥ start + LANES`
                    // elements; the block has room for LANES lines of WIDTH (asserted).
                    unsafe { E::transpose_block(rows, start, block.as_mut_ptr(), WIDTH) };
                }
            }
            let (lines, _) = panel.as_chunks_mut::<WIDTH>();
            for (p, line) in lines.iter_mut().enumerate().skip(blocked) {
                for (slot, source) in line.iter_mut().zip(&sources) {
                    *slot = source[p];
                }
            }
        } else if x.column_stride == 1 {
            // The last, partial panel: one row at a time.
            let (lines, _) = panel.as_chunks_mut::<WIDTH>();
            for i in 0..height {
                let start = (first + i) * x.row_stride + depths.start;
                for (line, &value) in lines.iter_mut().zip(&x.data[start..start + kc]) {
                    line[i] = value;
                }
            }
        } else if x.row_stride == 1 && height == WIDTH {
            // The panel's rows are contiguous at each depth: copy whole lines.
            let (lines, _) = panel.as_chunks_mut::<WIDTH>();
            for (p, line) in lines.iter_mut().enumerate() {
                let start = first + (depths.start + p) * x.column_stride;
                line.copy_from_slice(&x.data[start..start + WIDTH]);
            }
        } else {
            let (lines, _) = panel.as_chunks_mut::<WIDTH>();
            for (p, line) in lines.iter_mut().enumerate() {
                for (i, slot) in line[..height].iter_mut().enumerate() {
                    *slot = x.data[(first + i) * x.row_stride + (depths.start + p) * x.column_stride];
                }
            }
        }
        if height < WIDTH {
            let (lines, _) = panel.as_chunks_mut::<WIDTH>();
            for line in lines.iter_mut() {
                line[height..].fill(E::ZERO);
            }
        }
    }
}

/// One tile's arguments: `kc`, the panels of `a` and `b`, `c`, its row stride, the
/// tile's rows and columns, `alpha` and `beta`.
type Tile<E> = (usize, *const E, *const E, *mut E, usize, usize, usize, E, E);

/// One tile: `c[0..rows, 0..columns] = alpha · a_panel·b_panel + beta · c[…]`, where the
/// panels hold `kc` steps of [`MR`] and `2 · LANES` elements, computing the first `R`
/// rows of the `a` panel.
///
/// # Safety
/// AVX-512F is available; `a` and `b` point to `kc · MR` and `kc · 2 · LANES` readable
/// elements; `rows ≤ R ≤ MR`, `columns ≤ 2 · LANES`, and for each `i < rows` the
/// `columns` elements from `c + i · row_stride` are writable and written by no one else.
#[target_feature(enable = "avx512f")]
unsafe fn kernel<E: Avx512, const R: usize>((kc, mut a, mut b, c, row_stride, rows, columns, alpha, beta): Tile<E>) {
    debug_assert!(rows <= R && R <= MR);
    let lanes = E::LANES;
    // Ask for the tile of `c` now, so that it is in L1 when the sums are added to it.
    // (`wrapping_add`: a row's second line can lie past the end of `c`; a prefetch may
    // name such an address, but `add` may not form it.)
    for i in 0..rows {
        let row = c.wrapping_add(i * row_stride).cast::<i8>();
        // `_mm_prefetch` is an unsafe fn in Rust 1.89 (the MSRV), which warns under
        // `unsafe_op_in_unsafe_fn` without this block; newer releases (1.95) made it
        // safe and call the block unused.
        #[allow(unused_unsafe)]
        // SAFETY: a prefetch is only a hint: it reads nothing and cannot fault, whatever
        // the address. SSE, which it needs, comes with AVX-512F.
        unsafe {
            _mm_prefetch::<_MM_HINT_T0>(row);
            _mm_prefetch::<_MM_HINT_T0>(row.wrapping_add(64));
        }
    }
    // SAFETY: AVX-512F is available, as the caller guarantees.
    let mut sums = [[unsafe { E::zero() }; 2]; R];
    for _ in 0..kc {
        // SAFETY: each step reads R ≤ MR of its MR elements of `a` and 2 · LANES of
        // `b`, `kc` steps in all, which the caller guarantees are readable.
        unsafe {
            let b0 = E::load(b);
            let b1 = E::load(b.add(lanes));
            for (i, sum) in sums.iter_mut().enumerate() {
                let a_i = E::splat(*a.add(i));
                sum[0] = E::mul_add(a_i, b0, sum[0]);
                sum[1] = E::mul_add(a_i, b1, sum[1]);
            }
            a = a.add(MR);
            b = b.add(2 * lanes);
        }
    }

    let first_columns = columns.min(lanes);
    let second_columns = columns - first_columns;
    // SAFETY: AVX-512F is available, as the caller guarantees.
    let alpha = unsafe { E::splat(alpha) };
    let beta_is_zero = beta == E::ZERO;
    // SAFETY: as above.
    let beta = unsafe { E::splat(beta) };
    // A loop over all R rows with a test inside, rather than `0..rows`, so that the
    // sums stay in registers (the bound is a constant).
    for (i, sum) in sums.iter().enumerate() {
        if i < rows {
            // SAFETY: row `i < rows` of the tile has `columns` writable elements, and
            // the masks keep the loads and stores to them. `row + lanes` is formed only
            // when `columns > lanes`, so it points into the row.
            unsafe {
                let row = c.add(i * row_stride);
                let mut first = E::multiply(alpha, sum[0]);
                // With beta = 0, `c` is not read, so a NaN there does not survive.
                if !beta_is_zero {
                    first = E::mul_add(beta, E::load_first(row, first_columns), first);
                }
                E::store_first(row, first_columns, first);
                // Only a tile wider than one vector has a second half. In a narrower
                // one `row + lanes` can lie past the end of `c`'s allocation, and
                // merely computing such a pointer with `add` is undefined behaviour,
                // masked access or not.
                if second_columns > 0 {
                    let row = row.add(lanes);
                    let mut second = E::multiply(alpha, sum[1]);
                    if !beta_is_zero {
                        second = E::mul_add(beta, E::load_first(row, second_columns), second);
                    }
                    E::store_first(row, second_columns, second);
                }
            }
        }
    }
}
