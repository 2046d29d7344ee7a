//! `gemm` against a naive triple loop in f64, on every backend this build can run on
//! this CPU (the BLAS library of the feature, our AVX-512 kernel, matrixmultiply).
//!
//! Inputs are small multiples of 1/4, so every product and partial sum is exact in
//! f32 and f64 whatever order a backend adds in; results are nonetheless compared
//! with a small tolerance.

use super::{Backend, GemmElement, MatrixMut, MatrixRef, Run, backend_name, gemm, gemm_with, is_non_overlapping};

/// The value put in buffer slots no element addresses, to check they stay untouched.
const UNTOUCHED: f64 = 1234.5;

trait Elem: GemmElement {
    const TOL: f64;
    fn from_f64(x: f64) -> Self;
    fn to_f64(self) -> f64;
}

impl Elem for f32 {
    const TOL: f64 = 1e-5;
    fn from_f64(x: f64) -> Self {
        x as f32
    }
    fn to_f64(self) -> f64 {
        self.into()
    }
}

impl Elem for f64 {
    const TOL: f64 = 1e-12;
    fn from_f64(x: f64) -> Self {
        x
    }
    fn to_f64(self) -> f64 {
        self
    }
}

/// How an operand is laid out in its buffer.
#[derive(Clone, Copy, Debug)]
enum Layout {
    RowMajor,
    /// A transposed view: `column_stride != 1`.
    ColMajor,
    /// Row-major with rows 3 elements longer than needed.
    PaddedRows,
    /// Column-major with columns 2 elements longer than needed.
    PaddedCols,
    /// Both strides above 1: no CBLAS layout, forces a copy.
    Strided,
    /// Every row the same: row stride 0.
    BroadcastRows,
    /// Every column the same: column stride 0.
    BroadcastCols,
    /// One value everywhere: both strides 0.
    Scalar,
}

const INPUT_LAYOUTS: [Layout; 8] = [
    Layout::RowMajor,
    Layout::ColMajor,
    Layout::PaddedRows,
    Layout::PaddedCols,
    Layout::Strided,
    Layout::BroadcastRows,
    Layout::BroadcastCols,
    Layout::Scalar,
];

const OUTPUT_LAYOUTS: [Layout; 5] = [
    Layout::RowMajor,
    Layout::ColMajor,
    Layout::PaddedRows,
    Layout::PaddedCols,
    Layout::Strided,
];

impl Layout {
    fn strides(self, rows: usize, cols: usize) -> (usize, usize) {
        match self {
            Layout::RowMajor => (cols, 1),
            Layout::ColMajor => (1, rows),
            Layout::PaddedRows => (cols + 3, 1),
            Layout::PaddedCols => (1, rows + 2),
            Layout::Strided => (2 * cols + 1, 2),
            Layout::BroadcastRows => (0, 1),
            Layout::BroadcastCols => (1, 0),
            Layout::Scalar => (0, 0),
        }
    }
}

/// A deterministic pseudo-random source of small multiples of 1/4 in [-2, 2).
struct Values(u64);

impl Values {
    fn next(&mut self) -> f64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((self.0 >> 33) % 16) as f64 / 4.0 - 2.0
    }
}

/// An operand: its buffer (with one slot of slack at the end) and strides, and its
/// logical values row-major in f64.
struct Operand<E> {
    data: Vec<E>,
    rs: usize,
    cs: usize,
    logical: Vec<f64>,
}

impl<E: Elem> Operand<E> {
    fn new(rows: usize, cols: usize, layout: Layout, values: &mut Values) -> Self {
        let (rs, cs) = layout.strides(rows, cols);
        let len = super::required_len(rows, cols, rs, cs).unwrap() + 1;
        let mut data = vec![E::from_f64(UNTOUCHED); len];
        let mut logical = vec![0.0; rows * cols];
        for i in 0..rows {
            for j in 0..cols {
                let at = i * rs + j * cs;
                if data[at] == E::from_f64(UNTOUCHED) {
                    data[at] = E::from_f64(values.next());
                }
                logical[i * cols + j] = data[at].to_f64();
            }
        }
        Self { data, rs, cs, logical }
    }

    fn as_ref(&self) -> MatrixRef<'_, E> {
        MatrixRef::new(&self.data, self.rs, self.cs)
    }

    fn as_mut(&mut self) -> MatrixMut<'_, E> {
        MatrixMut::new(&mut self.data, self.rs, self.cs)
    }
}

/// Runs one case on every backend and compares with the naive product; also checks
/// that no buffer slot outside `c`'s elements changed.
fn check<E: Elem>(
    shape: (usize, usize, usize),
    layouts: (Layout, Layout, Layout),
    alpha: f64,
    beta: f64,
    nan_in_c: bool,
    seed: u64,
) {
    for backend in Backend::available() {
        check_on::<E>(backend, shape, layouts, alpha, beta, nan_in_c, seed);
    }
}

/// [`check`] on one backend.
#[allow(clippy::too_many_arguments)]
fn check_on<E: Elem>(
    backend: Backend,
    (m, k, n): (usize, usize, usize),
    layouts: (Layout, Layout, Layout),
    alpha: f64,
    beta: f64,
    nan_in_c: bool,
    seed: u64,
) {
    let mut values = Values(seed);
    let a = Operand::<E>::new(m, k, layouts.0, &mut values);
    let b = Operand::<E>::new(k, n, layouts.1, &mut values);
    let mut c = Operand::<E>::new(m, n, layouts.2, &mut values);
    if nan_in_c {
        for i in 0..m {
            for j in 0..n {
                c.data[i * c.rs + j * c.cs] = E::from_f64(f64::NAN);
            }
        }
    }
    let c_before = c.data.clone();

    gemm_with(
        backend,
        m,
        k,
        n,
        E::from_f64(alpha),
        a.as_ref(),
        b.as_ref(),
        E::from_f64(beta),
        c.as_mut(),
    );

    let mut addressed = vec![false; c.data.len()];
    for i in 0..m {
        for j in 0..n {
            let mut sum = 0.0;
            for p in 0..k {
                sum += a.logical[i * k + p] * b.logical[p * n + j];
            }
            let old = c.logical[i * n + j];
            let expected = if beta == 0.0 {
                alpha * sum
            } else {
                alpha * sum + beta * old
            };
            let at = i * c.rs + j * c.cs;
            addressed[at] = true;
            let got = c.data[at].to_f64();
            assert!(
                (got - expected).abs() <= E::TOL * (1.0 + expected.abs()),
                "{backend:?}: {m}×{k}×{n} {layouts:?} alpha {alpha} beta {beta} nan_in_c {nan_in_c} \
                 <{}>: c[{i}][{j}] = {got}, expected {expected}",
                std::any::type_name::<E>(),
            );
        }
    }
    for (at, _) in addressed.iter().enumerate().filter(|(_, a)| !**a) {
        assert!(
            c.data[at] == c_before[at],
            "{backend:?}: {m}×{k}×{n} {layouts:?}: slot {at} outside c changed",
        );
    }
}

const SMALL_SHAPES: [(usize, usize, usize); 16] = [
    (1, 1, 1),
    (1, 7, 1),
    (1, 5, 6),
    (6, 5, 1),
    (7, 1, 5),
    (3, 4, 5),
    (9, 17, 8),
    (33, 2, 3),  // tall
    (40, 3, 1),  // tall and skinny
    (2, 3, 37),  // wide
    (1, 64, 40), // a row vector times a matrix
    (1, 19, 3),  // a row vector, k not a multiple of the dot product's lanes
    (1, 9, 300), // a row vector: blocks of 128 and 32 columns, and 12 left over
    (30, 1, 17), // an outer product
    (1, 1, 9),   // both
    (5, 0, 4),   // k = 0
];

/// (alpha, beta, NaN in c), rotated through the cases.
const COEFFICIENTS: [(f64, f64, bool); 4] = [
    (1.0, 0.0, false),
    (1.5, 0.0, true),
    (0.5, -1.5, false),
    (1.0, 1.0, false),
];

fn all_small_cases<E: Elem>() {
    let mut case = 0u64;
    for &shape in &SMALL_SHAPES {
        for la in INPUT_LAYOUTS {
            for lb in INPUT_LAYOUTS {
                for lc in OUTPUT_LAYOUTS {
                    let (alpha, beta, nan) = COEFFICIENTS[case as usize % COEFFICIENTS.len()];
                    check::<E>(shape, (la, lb, lc), alpha, beta, nan, case);
                    case += 1;
                }
            }
        }
    }
}

#[test]
fn small_shapes_all_layouts_f32() {
    all_small_cases::<f32>();
}

#[test]
fn small_shapes_all_layouts_f64() {
    all_small_cases::<f64>();
}

fn larger_cases<E: Elem>() {
    // Big enough for the backends' blocking and packing to matter.
    let layouts = [
        (Layout::RowMajor, Layout::RowMajor, Layout::RowMajor),
        (Layout::ColMajor, Layout::PaddedRows, Layout::ColMajor),
        (Layout::PaddedCols, Layout::ColMajor, Layout::PaddedRows),
        (Layout::Strided, Layout::BroadcastRows, Layout::Strided),
        (Layout::BroadcastCols, Layout::Strided, Layout::PaddedCols),
    ];
    for (case, &shape) in [(130, 70, 257), (257, 129, 65), (64, 300, 64)].iter().enumerate() {
        for (i, &lay) in layouts.iter().enumerate() {
            let (alpha, beta, nan) = COEFFICIENTS[(case + i) % COEFFICIENTS.len()];
            check::<E>(shape, lay, alpha, beta, nan, (case * 10 + i) as u64);
        }
    }
}

/// Products large enough to run on several threads, split along `n` (the first) and
/// along `m` (the second), with several blocks along every dimension.
fn threaded_cases<E: Elem>() {
    check::<E>(
        (70, 300, 1100),
        (Layout::RowMajor, Layout::RowMajor, Layout::RowMajor),
        1.0,
        0.0,
        true,
        1,
    );
    check::<E>(
        (610, 520, 40),
        (Layout::ColMajor, Layout::PaddedRows, Layout::PaddedRows),
        0.5,
        -1.5,
        false,
        2,
    );
}

#[test]
fn threaded_shapes_f32() {
    threaded_cases::<f32>();
}

#[test]
fn threaded_shapes_f64() {
    threaded_cases::<f64>();
}

#[test]
fn larger_shapes_f32() {
    larger_cases::<f32>();
}

#[test]
fn larger_shapes_f64() {
    larger_cases::<f64>();
}

/// [`check_on`] with `c` filling its allocation exactly: a boxed slice no longer than its
/// last element needs (no slot of slack), so that its last row (column, if column-major)
/// ends where the allocation ends. `a` and `b` are row-major.
fn check_c_at_end_of_allocation<E: Elem>(
    backend: Backend,
    (m, k, n): (usize, usize, usize),
    c_layout: Layout,
    alpha: f64,
    beta: f64,
    seed: u64,
) {
    let mut values = Values(seed);
    let a = Operand::<E>::new(m, k, Layout::RowMajor, &mut values);
    let b = Operand::<E>::new(k, n, Layout::RowMajor, &mut values);
    let c_values = Operand::<E>::new(m, n, c_layout, &mut values);
    let (rs, cs) = (c_values.rs, c_values.cs);
    let len = super::required_len(m, n, rs, cs).unwrap();
    // A fresh allocation of exactly `len` elements.
    let mut c: Box<[E]> = c_values.data[..len].into();

    gemm_with(
        backend,
        m,
        k,
        n,
        E::from_f64(alpha),
        a.as_ref(),
        b.as_ref(),
        E::from_f64(beta),
        MatrixMut::new(&mut c, rs, cs),
    );

    let mut addressed = vec![false; len];
    for i in 0..m {
        for j in 0..n {
            let sum: f64 = (0..k).map(|p| a.logical[i * k + p] * b.logical[p * n + j]).sum();
            let old = c_values.logical[i * n + j];
            let expected = if beta == 0.0 {
                alpha * sum
            } else {
                alpha * sum + beta * old
            };
            let at = i * rs + j * cs;
            addressed[at] = true;
            let got = c[at].to_f64();
            assert!(
                (got - expected).abs() <= E::TOL * (1.0 + expected.abs()),
                "{backend:?}: {m}×{k}×{n} c {c_layout:?} at the end of its allocation, alpha {alpha} \
                 beta {beta} <{}>: c[{i}][{j}] = {got}, expected {expected}",
                std::any::type_name::<E>(),
            );
        }
    }
    for (at, _) in addressed.iter().enumerate().filter(|(_, a)| !**a) {
        assert!(
            c[at] == c_values.data[at],
            "{backend:?}: {m}×{k}×{n} c {c_layout:?} at the end of its allocation: slot {at} outside c changed",
        );
    }
}

/// Issue #9: `c` ending exactly where its allocation ends, with widths (the row length
/// the kernels write: `n`, or `m` for a column-major `c`) whose right-edge tile is
/// narrower than one vector (16 columns in f32, 8 in f64), exactly one, or wider. The
/// AVX-512 kernel formed a pointer one vector into such a tile whenever it read `c`,
/// past the end of the allocation. `k = 300` spans two depth blocks, the second of
/// which reads `c` even when `beta` is zero.
fn c_at_end_of_allocation_cases<E: Elem>() {
    let mut case = 0;
    // Under Miri (hours otherwise), the widths that cover each kind of edge tile.
    let widths: &[usize] = if cfg!(miri) {
        &[5, 16, 17, 33]
    } else {
        &[1, 5, 8, 15, 16, 17, 20, 31, 32, 33, 47, 49]
    };
    for backend in Backend::available() {
        for &n in widths {
            for (m, k) in [(1, 3), (15, 4), (3, 300)] {
                for c_layout in [Layout::RowMajor, Layout::PaddedRows, Layout::ColMajor] {
                    for (alpha, beta) in [(1.0, 0.0), (0.5, -1.5)] {
                        check_c_at_end_of_allocation::<E>(backend, (m, k, n), c_layout, alpha, beta, case);
                        case += 1;
                    }
                }
            }
        }
    }
}

#[test]
fn c_at_end_of_allocation_f32() {
    c_at_end_of_allocation_cases::<f32>();
}

#[test]
fn c_at_end_of_allocation_f64() {
    c_at_end_of_allocation_cases::<f64>();
}

#[test]
fn k_zero_scales_c_and_beta_zero_clears_nan() {
    for beta in [0.0, 1.0, -2.0] {
        for lc in OUTPUT_LAYOUTS {
            check::<f32>((4, 0, 3), (Layout::RowMajor, Layout::RowMajor, lc), 1.0, beta, false, 1);
            check::<f64>((4, 0, 3), (Layout::RowMajor, Layout::RowMajor, lc), 1.0, beta, false, 2);
        }
    }
    let mut c = [f64::NAN; 6];
    gemm(
        2,
        0,
        3,
        1.0,
        MatrixRef::new(&[], 0, 1),
        MatrixRef::new(&[], 3, 1),
        0.0,
        MatrixMut::new(&mut c, 3, 1),
    );
    assert_eq!(c, [0.0; 6]);
}

#[test]
fn alpha_zero_reads_neither_a_nor_b() {
    let a = [f32::NAN; 4];
    let b = [f32::INFINITY; 4];
    let mut c = [1.0f32, 2.0, 3.0, 4.0];
    gemm(
        2,
        2,
        2,
        0.0,
        MatrixRef::new(&a, 2, 1),
        MatrixRef::new(&b, 2, 1),
        2.0,
        MatrixMut::new(&mut c, 2, 1),
    );
    assert_eq!(c, [2.0, 4.0, 6.0, 8.0]);
}

#[test]
fn empty_m_or_n_touches_nothing() {
    let a = [1.0f64; 8];
    let mut c = [7.0f64; 8];
    for (m, n) in [(0, 4), (4, 0), (0, 0)] {
        gemm(
            m,
            2,
            n,
            1.0,
            MatrixRef::new(&a, 2, 1),
            MatrixRef::new(&a, 4, 1),
            0.0,
            MatrixMut::new(&mut c[..m * n], n, 1),
        );
    }
    assert_eq!(c, [7.0; 8]);
}

#[test]
fn aliased_output_is_sound() {
    // Every row of c is the same memory. What it ends up holding is unspecified; the
    // call must not misbehave (the temporary path handles it). 512 rows: enough work
    // for the kernels to split it across threads, which must not race on that memory.
    let a = vec![1.0f32; 512 * 64];
    for backend in Backend::available() {
        let mut c = [0.0f32; 64];
        gemm_with(
            backend,
            512,
            64,
            64,
            1.0,
            MatrixRef::new(&a, 64, 1),
            MatrixRef::new(&a, 64, 1),
            0.0,
            MatrixMut::new(&mut c, 0, 1),
        );
        assert!(c.iter().all(|&x| x == 64.0), "{backend:?}");
    }
}

#[test]
#[should_panic(expected = "operand `a`")]
fn short_a_panics() {
    let a = [0.0f32; 5];
    let b = [0.0f32; 6];
    let mut c = [0.0f32; 4];
    gemm(
        2,
        3,
        2,
        1.0,
        MatrixRef::new(&a, 3, 1),
        MatrixRef::new(&b, 2, 1),
        0.0,
        MatrixMut::new(&mut c, 2, 1),
    );
}

#[test]
#[should_panic(expected = "operand `b`")]
fn short_transposed_b_panics() {
    let a = [0.0f64; 6];
    let b = [0.0f64; 6];
    let mut c = [0.0f64; 4];
    // b is 3×2 column-major with padded columns: needs 1·4 + 2·1 + 1 = 7 elements.
    gemm(
        2,
        3,
        2,
        1.0,
        MatrixRef::new(&a, 3, 1),
        MatrixRef::new(&b, 1, 4),
        0.0,
        MatrixMut::new(&mut c, 2, 1),
    );
}

#[test]
#[should_panic(expected = "operand `c`")]
fn short_c_panics() {
    let a = [0.0f32; 6];
    let mut c = [0.0f32; 3];
    gemm(
        2,
        3,
        2,
        1.0,
        MatrixRef::new(&a, 3, 1),
        MatrixRef::new(&a, 2, 1),
        0.0,
        MatrixMut::new(&mut c, 2, 1),
    );
}

#[test]
#[should_panic(expected = "more than usize::MAX")]
fn overflowing_strides_panic() {
    let a = [0.0f32; 6];
    let mut c = [0.0f32; 4];
    gemm(
        2,
        3,
        2,
        1.0,
        MatrixRef::new(&a, usize::MAX, 1),
        MatrixRef::new(&a, 2, 1),
        0.0,
        MatrixMut::new(&mut c, 2, 1),
    );
}

#[test]
fn transposed_views() {
    // (aᵀ)ᵀ through `t()`: a 3×2 column-major buffer read as 2×3.
    let a_cm = [1.0f64, 4.0, 2.0, 5.0, 3.0, 6.0]; // 2×3 [[1,2,3],[4,5,6]] column-major
    let b = [1.0f64, 0.0, 0.0, 1.0, 1.0, 1.0]; // 3×2 row-major
    let mut c_cm = [0.0f64; 4];
    gemm(
        2,
        3,
        2,
        1.0,
        MatrixRef::new(&a_cm, 2, 1).t(),
        MatrixRef::new(&b, 2, 1),
        0.0,
        MatrixMut::new(&mut c_cm, 2, 1).t(),
    );
    assert_eq!(c_cm, [4.0, 10.0, 5.0, 11.0]);
}

#[test]
fn overlap_check() {
    assert!(is_non_overlapping(3, 4, 4, 1));
    assert!(is_non_overlapping(3, 4, 1, 3));
    assert!(is_non_overlapping(3, 4, 9, 2));
    assert!(is_non_overlapping(1, 4, 0, 1));
    assert!(is_non_overlapping(4, 1, 5, 0));
    assert!(is_non_overlapping(1, 1, 0, 0));
    assert!(!is_non_overlapping(3, 4, 0, 1));
    assert!(!is_non_overlapping(3, 4, 3, 1));
    assert!(!is_non_overlapping(3, 4, 2, 2));
    assert!(!is_non_overlapping(1, 4, 1, 0));
}

#[test]
fn backend_matches_features() {
    let avx512 = cfg!(target_arch = "x86_64") && std::arch::is_x86_feature_detected!("avx512f");
    let expected = if cfg!(feature = "openblas") {
        "openblas"
    } else if cfg!(feature = "mkl-threaded") {
        "mkl-threaded"
    } else if cfg!(feature = "mkl") {
        "mkl"
    } else if avx512 {
        "avx512"
    } else {
        "matrixmultiply"
    };
    assert_eq!(backend_name(), expected);
}

/// `gemm_shifted` against the naive sum `Σ_p a[i, p] · data[offsets[p] + load + j]`,
/// for every kind of edge tile: rows 1–17 against panels of 8; one run of widths around
/// the tile's three vectors (48 columns in f32, 24 in f64), and several runs (rows of
/// a convolution) with gaps between them in `c` and partial vectors; windows that
/// overlap and that end exactly where `data`'s allocation ends; `a` row-major and
/// transposed; `c` with rows longer than the runs. What the runs do not cover must
/// stay untouched.
fn shifted_cases<E: Elem>() {
    if !super::shifted_available() {
        return;
    }
    let mut values = Values(7);
    let mut run_sets: Vec<Vec<Run>> = [1, 7, 16, 23, 24, 25, 47, 48, 49, 100, 700]
        .into_iter()
        .map(|len| vec![Run { load: 0, store: 0, len }])
        .collect();
    for (rows, width, gap) in [(3, 5, 2), (25, 25, 3), (16, 16, 0), (4, 17, 1), (7, 33, 4)] {
        run_sets.push(
            (0..rows)
                .map(|y| Run {
                    load: y * (width + gap + 1),
                    store: y * (width + gap),
                    len: width,
                })
                .collect(),
        );
    }
    for runs in &run_sets {
        let reach = runs.iter().map(|run| run.load + run.len).max().unwrap();
        let end = runs.last().map_or(0, |run| run.store + run.len);
        for m in [1, 2, 3, 4, 5, 8, 9, 13, 17] {
            for k in [1, 3, 20] {
                for transposed in [false, true] {
                    let a = Operand::<E>::new(
                        m,
                        k,
                        if transposed { Layout::ColMajor } else { Layout::RowMajor },
                        &mut values,
                    );
                    let len = reach + 2 * k + 5;
                    let data: Box<[E]> = (0..len).map(|_| E::from_f64(values.next())).collect();
                    // Windows from the start, from the end, and in between, overlapping.
                    let mut offsets: Vec<usize> = (0..k).map(|p| (p * 7) % (len - reach + 1)).rev().collect();
                    offsets[0] = len - reach;
                    let ldc = end + 3;
                    let mut c: Box<[E]> = vec![E::from_f64(UNTOUCHED); (m - 1) * ldc + end].into();
                    super::gemm_shifted(m, a.as_ref(), &data, &offsets, runs, &mut c, ldc);
                    let mut expected = vec![UNTOUCHED; c.len()];
                    for i in 0..m {
                        for run in runs {
                            for j in 0..run.len {
                                expected[i * ldc + run.store + j] = (0..k)
                                    .map(|p| a.logical[i * k + p] * data[offsets[p] + run.load + j].to_f64())
                                    .sum();
                            }
                        }
                    }
                    for (at, (got, expected)) in c.iter().zip(&expected).enumerate() {
                        let got = got.to_f64();
                        assert!(
                            (got - expected).abs() <= E::TOL * (1.0 + expected.abs()),
                            "{m}×{k}, runs {runs:?} (a transposed: {transposed}) <{}>: c[{at}] = {got}, expected {expected}",
                            std::any::type_name::<E>(),
                        );
                    }
                }
            }
        }
    }
}

#[test]
fn shifted_windows_f32() {
    shifted_cases::<f32>();
}

#[test]
fn shifted_windows_f64() {
    shifted_cases::<f64>();
}

#[test]
#[should_panic(expected = "past the end")]
fn shifted_window_past_the_end_panics() {
    if !super::shifted_available() {
        panic!("past the end (no AVX-512 here: nothing to check)");
    }
    let (a, data, mut c) = ([1.0f32; 2], [1.0f32; 10], [0.0f32; 8]);
    let runs = [Run {
        load: 0,
        store: 0,
        len: 8,
    }];
    super::gemm_shifted(1, MatrixRef::new(&a, 2, 1), &data, &[0, 3], &runs, &mut c, 8);
}

#[test]
#[should_panic(expected = "overlap")]
fn shifted_overlapping_runs_panic() {
    if !super::shifted_available() {
        panic!("overlap (no AVX-512 here: nothing to check)");
    }
    let (a, data, mut c) = ([1.0f32; 1], [1.0f32; 40], [0.0f32; 40]);
    let runs = [
        Run {
            load: 0,
            store: 0,
            len: 20,
        },
        Run {
            load: 0,
            store: 19,
            len: 20,
        },
    ];
    super::gemm_shifted(1, MatrixRef::new(&a, 1, 1), &data, &[0], &runs, &mut c, 40);
}
