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

use super::MatrixRef;
use super::avx512::{Avx512, Output, available, pack};

/// Rows of `c` in one tile (output channels, in a convolution).
const ROWS: usize = 8;
/// Vectors of `c` per row of a tile: 8 × 3 accumulators, 3 vectors of `b` and one
/// broadcast fill 28 of the 32 registers. Each vector may come from a different run
/// of columns (a different output row).
const VECTORS: usize = 3;
/// Floating-point operations below which a product stays on one thread, as in
/// `avx512.rs`.
const PARALLEL_MIN_FLOPS: usize = 1 << 18;

/// A run of columns of a shifted product: `c[i][store + j] = Σ_p a[i, p] ·
/// data[offsets[p] + load + j]` for `j < len`. A convolution's output row is one (the
/// input row it starts on, and its place in the output).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Run {
    /// Where the run's windows start in `data`, before each tap's offset.
    pub load: usize,
    /// Where the run starts in each row of `c`.
    pub store: usize,
    /// Columns in the run.
    pub len: usize,
}

/// One vector of a tile: a piece of a [`Run`] at most one vector long.
#[derive(Clone, Copy, Debug, Default)]
struct Piece {
    load: usize,
    store: usize,
    lanes: usize,
}

/// The same product over several operands at fixed distances, one `a` for all: the
/// images of a convolution's batch, whose windows lie `data_step` apart in `data` and
/// whose outputs lie `c_step` apart in `c`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Batch {
    /// How many.
    pub images: usize,
    /// Elements from one image's data to the next.
    pub data_step: usize,
    /// Elements from one image's output to the next.
    pub c_step: usize,
}

/// `c[n·c_step + i·ldc + run.store + j] = Σ_p a[i, p] · data[n·data_step + offsets[p] +
/// run.load + j]` for each image `n < batch.images`, `i < m`, every run and `j <
/// run.len`, `p < k` (`k = offsets.len()`), overwriting those elements of `c` and no
/// others. `a` is packed once for the whole batch, and the tiles run across images,
/// so that no image ends on a short tile (the resnet case's 16 vectors an image
/// left one in every 16 to a one-vector kernel) and packing `a` once per image (2%)
/// is gone.
///
/// # Panics
/// Unless [`available`]; if a slice is too short for what the sizes address, if the
/// runs do not follow each other in `c` without overlapping, within `ldc`, or if the
/// images' outputs overlap.
#[allow(clippy::too_many_arguments)]
pub(super) fn gemm<E: Avx512>(
    m: usize,
    a: &MatrixRef<'_, E>,
    data: &[E],
    offsets: &[usize],
    runs: &[Run],
    c: &mut [E],
    ldc: usize,
    batch: Batch,
) {
    assert!(available(), "the shifted-window GEMM runs only on CPUs with AVX-512F");
    let k = offsets.len();
    let mut end = 0;
    let mut reach = 0;
    for run in runs.iter().filter(|run| run.len > 0) {
        assert!(
            run.store >= end,
            "gemm_shifted: runs overlap in `c` or are out of order"
        );
        end = run.store.checked_add(run.len).expect("gemm_shifted: run too long");
        reach = reach.max(run.load.checked_add(run.len).expect("gemm_shifted: run too long"));
    }
    let n: usize = runs.iter().map(|run| run.len).sum();
    if m == 0 || n == 0 || batch.images == 0 {
        return;
    }
    let last = batch.images - 1;
    let image_len = (m - 1) * ldc + end;
    assert!(
        end <= ldc
            && last
                .checked_mul(batch.c_step)
                .and_then(|first| first.checked_add(image_len))
                .is_some_and(|len| len <= c.len()),
        "gemm_shifted: `c` too short"
    );
    assert!(
        last == 0 || batch.c_step >= image_len,
        "gemm_shifted: the images' outputs overlap"
    );
    let reach = last
        .checked_mul(batch.data_step)
        .and_then(|first| first.checked_add(reach))
        .expect("gemm_shifted: batch too long");
    assert!(
        offsets
            .iter()
            .all(|&offset| offset.checked_add(reach).is_some_and(|end| end <= data.len())),
        "gemm_shifted: a window reaches past the end of `data`"
    );
    if k == 0 {
        for image in 0..batch.images {
            for row in c[image * batch.c_step..].chunks_mut(ldc).take(m) {
                for run in runs {
                    row[run.store..run.store + run.len].fill(E::ZERO);
                }
            }
        }
        return;
    }
    super::check_len("a", m, k, a.data.len(), a.row_stride, a.column_stride);

    // The runs cut into vectors, the tiles' columns.
    let lanes = E::LANES;
    let mut pieces = Vec::with_capacity((n.div_ceil(lanes) + runs.len()) * batch.images);
    for image in 0..batch.images {
        let (load, store) = (image * batch.data_step, image * batch.c_step);
        for run in runs {
            for start in (0..run.len).step_by(lanes) {
                pieces.push(Piece {
                    load: load + run.load + start,
                    store: store + run.store + start,
                    lanes: lanes.min(run.len - start),
                });
            }
        }
    }
    let flops = m
        .saturating_mul(k)
        .saturating_mul(n)
        .saturating_mul(2)
        .saturating_mul(batch.images);
    let threads = if flops >= PARALLEL_MIN_FLOPS {
        crate::threads()
    } else {
        1
    };
    let share = pieces.len().div_ceil(threads).next_multiple_of(tile_vectors(m));
    let output = Output {
        data: c.as_mut_ptr(),
        row_stride: ldc,
    };
    E::with_pack_buffers(|buffers| {
        let packed = buffers.a(k * m.next_multiple_of(ROWS));
        pack::<E, ROWS>(a, 0..m, 0..k, packed);
        let packed = &*packed;
        let run = |start: usize| {
            let pieces = &pieces[start..(start + share).min(pieces.len())];
            multiply_share(m, pieces, packed, data, offsets, &output);
        };
        if share >= pieces.len() {
            run(0);
        } else {
            crate::threads::map_shares(pieces.len().div_ceil(share), |s| run(s * share));
        }
    });
}

/// Vectors per tile of a product of one or two rows (a depthwise convolution's): the
/// depth is short there (the taps), so a wider tile spreads each tile's fixed costs
/// over more multiply-adds. 8 or 16 accumulators.
const WIDE: usize = 8;

/// Vectors per tile for a product of `m` rows.
fn tile_vectors(m: usize) -> usize {
    if m <= 2 { WIDE } else { VECTORS }
}

/// The columns `pieces` of every row of `c`, on the calling thread, from `a` packed in
/// panels of [`ROWS`] rows.
fn multiply_share<E: Avx512>(m: usize, pieces: &[Piece], packed: &[E], data: &[E], offsets: &[usize], c: &Output<E>) {
    let k = offsets.len();
    let vectors = tile_vectors(m);
    // Column tiles outside, row panels inside: the input rows a tile reads stay in L1
    // while every panel of `a` passes over them.
    for tile in pieces.chunks(vectors) {
        let full = tile.iter().all(|piece| piece.lanes == E::LANES);
        for (panel, row) in packed.chunks_exact(k * ROWS).zip((0..m).step_by(ROWS)) {
            let rows = ROWS.min(m - row);
            // (`wrapping_add`, as `c` is a raw pointer shared by the threads.)
            let args = (
                panel.as_ptr(),
                data.as_ptr(),
                offsets,
                c.data.wrapping_add(row * c.row_stride),
                c.row_stride,
            );
            // SAFETY: AVX-512F was checked by `gemm`. The panel holds `k` steps of ROWS
            // elements. Every piece's windows `data[offset + load..][..lanes]` lie
            // inside `data` (checked by `gemm` for whole runs of every image). The
            // tile's `rows` rows of each piece's `lanes` elements of `c` lie inside its
            // image's m × ldc matrix checked against `c`, within this thread's pieces,
            // which no other thread writes (`gemm` checked that the runs, and the
            // images, do not overlap).
            unsafe {
                if tile.len() < vectors {
                    // The last, short tile: a vector at a time, so that no multiply-add
                    // is spent on vectors it does not have.
                    for piece in tile {
                        let tile = (args.0, args.1, args.2, args.3, args.4, rows, [*piece]);
                        dispatch::<E, 1>(tile, rows, piece.lanes == E::LANES);
                    }
                } else if vectors == WIDE {
                    let tile = (
                        args.0,
                        args.1,
                        args.2,
                        args.3,
                        args.4,
                        rows,
                        std::array::from_fn(|v| tile[v]),
                    );
                    match (rows, full) {
                        (2.., true) => kernel::<E, 2, WIDE, false>(tile),
                        (_, true) => kernel::<E, 1, WIDE, false>(tile),
                        (2.., false) => kernel::<E, 2, WIDE, true>(tile),
                        (_, false) => kernel::<E, 1, WIDE, true>(tile),
                    }
                } else {
                    let tile = (
                        args.0,
                        args.1,
                        args.2,
                        args.3,
                        args.4,
                        rows,
                        std::array::from_fn(|v| tile[v]),
                    );
                    dispatch::<E, VECTORS>(tile, rows, full);
                }
            }
        }
    }
}

/// [`kernel`] with the smallest `R` of 8, 4, 2, 1 that holds `rows`.
///
/// # Safety
/// As [`kernel`], for that `R`; `full` only if every piece is a whole vector.
#[target_feature(enable = "avx512f")]
unsafe fn dispatch<E: Avx512, const V: usize>(tile: Tile<'_, E, V>, rows: usize, full: bool) {
    // SAFETY: the caller's guarantees, and R ≥ rows.
    unsafe {
        match (rows, full) {
            (5.., true) => kernel::<E, 8, V, false>(tile),
            (3..=4, true) => kernel::<E, 4, V, false>(tile),
            (2, true) => kernel::<E, 2, V, false>(tile),
            (_, true) => kernel::<E, 1, V, false>(tile),
            (5.., false) => kernel::<E, 8, V, true>(tile),
            (3..=4, false) => kernel::<E, 4, V, true>(tile),
            (2, false) => kernel::<E, 2, V, true>(tile),
            (_, false) => kernel::<E, 1, V, true>(tile),
        }
    }
}

/// One tile's arguments: the panel of `a`, `data`, the offsets, `c` at the panel's
/// first row, its row stride, the tile's rows and its vectors.
type Tile<'a, E, const V: usize> = (*const E, *const E, &'a [usize], *mut E, usize, usize, [Piece; V]);

/// One tile: `c[i][piece.store + j] = Σ_p panel[p·ROWS + i] · data[offsets[p] +
/// piece.load + j]` for `i < rows`, each of the `V` pieces and `j < piece.lanes`,
/// computing `R` rows of the panel (`R × V` accumulators). `MASKED` reads and writes
/// only each piece's lanes; otherwise every piece is a whole vector.
///
/// # Safety
/// AVX-512F is available; the panel holds `offsets.len()` steps of [`ROWS`] elements;
/// `rows ≤ R ≤ ROWS`; every piece has at most `LANES` lanes, and exactly that unless
/// `MASKED`; for every offset and piece, the `lanes` elements from `data + offset +
/// load` are readable; for each `i < rows` and piece, the `lanes` elements from
/// `c + i · row_stride + store` are writable and written by no one else.
#[target_feature(enable = "avx512f")]
unsafe fn kernel<E: Avx512, const R: usize, const V: usize, const MASKED: bool>(
    (a, data, offsets, c, row_stride, rows, pieces): Tile<'_, E, V>,
) {
    debug_assert!(rows <= R && R <= ROWS);
    // (`wrapping_add`: only the windows, base plus offset, are known to lie in `data`.)
    let windows: [*const E; V] = std::array::from_fn(|v| data.wrapping_add(pieces[v].load));
    // SAFETY: AVX-512F is available, as the caller guarantees.
    let mut sums = [[unsafe { E::zero() }; V]; R];
    let mut a = a;
    for &offset in offsets {
        // SAFETY: each vector reads only its piece's lanes (all of them in a full
        // tile), which the caller guarantees are readable; the panel's step holds
        // ROWS ≥ R elements.
        unsafe {
            let b: [E::Vector; V] = std::array::from_fn(|v| {
                let p = windows[v].wrapping_add(offset);
                if MASKED {
                    E::load_first(p, pieces[v].lanes)
                } else {
                    E::load(p)
                }
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
            for (piece, &sum) in pieces.iter().zip(sum) {
                if piece.lanes > 0 {
                    // SAFETY: row `i < rows` has the piece's `lanes` writable elements.
                    unsafe { E::store_first(c.add(i * row_stride + piece.store), piece.lanes, sum) }
                }
            }
        }
    }
}
