//! The CBLAS backends (Intel MKL, OpenBLAS): one row-major `?gemm` call, with each
//! operand passed in place where CBLAS can describe its layout.
//!
//! CBLAS describes an operand by a transpose flag and a leading dimension, so an
//! operand is passed without a copy when one of its strides is 1 and the other at
//! least the length of a row (`NoTrans`) or of a column (`Trans`); any other operand
//! (both strides above 1, a stride-0 broadcast) is first copied into a contiguous
//! temporary. The output is written in place when it is row-major (`ldc` = its row
//! stride) or column-major, computing `cᵀ = bᵀ·aᵀ` in the latter case; otherwise the
//! product goes into a temporary that is then copied into `c`.

use cblas_sys::{CBLAS_TRANSPOSE, CblasNoTrans, CblasTrans};

use super::{GemmElement, MatrixMut, MatrixRef, pack, via_temporary};

// Bring in the crate that links the library providing the `cblas_*` symbols.
#[cfg(any(feature = "mkl", feature = "mkl-threaded"))]
use intel_mkl_src as _;
#[cfg(feature = "openblas")]
use openblas_src as _;

#[cfg(feature = "openblas")]
unsafe extern "C" {
    /// OpenBLAS's thread count for its own pool.
    fn openblas_set_num_threads(threads: std::ffi::c_int);
}

#[cfg(feature = "mkl-threaded")]
unsafe extern "C" {
    /// MKL's thread count for its OpenMP threads (`mkl_set_num_threads` in C).
    fn MKL_Set_Num_Threads(threads: std::ffi::c_int);
}

/// The count the library was last told; 0 before the first product.
#[cfg(any(feature = "mkl-threaded", feature = "openblas"))]
static TOLD: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Tells the library to use `threads` threads.
#[cfg(any(feature = "mkl-threaded", feature = "openblas"))]
pub(super) fn set_threads(threads: usize) {
    let count = std::ffi::c_int::try_from(threads).unwrap_or(std::ffi::c_int::MAX);
    // SAFETY: both functions only store the count for the library's later calls, and
    // take any positive `int`; `threads` is at least 1 (`try_set_num_threads`).
    #[cfg(feature = "openblas")]
    unsafe {
        openblas_set_num_threads(count)
    };
    // SAFETY: as above.
    #[cfg(feature = "mkl-threaded")]
    unsafe {
        MKL_Set_Num_Threads(count)
    };
    TOLD.store(threads, std::sync::atomic::Ordering::Relaxed);
}

/// [`super::gemm`] on CBLAS, for non-empty `m`, `k`, `n` and operands whose slices the
/// caller has checked are long enough.
#[allow(clippy::too_many_arguments)]
pub(super) fn gemm<E: GemmElement>(
    m: usize,
    k: usize,
    n: usize,
    alpha: E,
    a: MatrixRef<'_, E>,
    b: MatrixRef<'_, E>,
    beta: E,
    c: MatrixMut<'_, E>,
) {
    // The setting may come from the environment or the default, which the library
    // has not been told yet.
    #[cfg(any(feature = "mkl-threaded", feature = "openblas"))]
    if TOLD.load(std::sync::atomic::Ordering::Relaxed) != crate::threads() {
        set_threads(crate::threads());
    }
    // The LP64 interface counts in `int`: larger problems go to matrixmultiply.
    let (Some(mi), Some(ki), Some(ni)) = (to_int(m), to_int(k), to_int(n)) else {
        super::matrixmultiply::gemm(m, k, n, alpha, a, b, beta, c);
        return;
    };
    let Some((c_trans, ldc)) = layout(m, n, c.row_stride, c.column_stride) else {
        via_temporary(m, n, beta, c, |c| gemm(m, k, n, alpha, a, b, beta, c));
        return;
    };

    let a_packed;
    let (a_data, a_trans, lda) = match layout(m, k, a.row_stride, a.column_stride) {
        Some((trans, ld)) => (a.data, trans, ld),
        None => {
            a_packed = pack(m, k, &a);
            (&a_packed[..], Trans::No, ki.max(1))
        }
    };
    let b_packed;
    let (b_data, b_trans, ldb) = match layout(k, n, b.row_stride, b.column_stride) {
        Some((trans, ld)) => (b.data, trans, ld),
        None => {
            b_packed = pack(k, n, &b);
            (&b_packed[..], Trans::No, ni.max(1))
        }
    };

    // SAFETY: `layout` (or `pack`, which produces a row-major buffer with leading
    // dimension = its row length) returned a transpose flag and leading dimension
    // such that element (i, j) of each operand is at offset i·ld + j (`NoTrans`) or
    // j·ld + i (`Trans`) — the very offset its strides give, which `super::gemm`
    // checked is inside its slice (`pack`'s buffer holds exactly rows × cols). Each
    // leading dimension is at least max(1, the stored row length), as CBLAS requires,
    // and m, n, k and every ld fit in `int`. `c` is a unique borrow, so it does not
    // overlap `a` or `b`. In the column-major case the call computes
    // cᵀ (n×m, row-major, ldc) = bᵀ·aᵀ, where transposing an operand flips its flag
    // and keeps its leading dimension, which describes the same memory.
    unsafe {
        match c_trans {
            Trans::No => E::cblas(
                a_trans.flag(),
                b_trans.flag(),
                mi,
                ni,
                ki,
                alpha,
                a_data.as_ptr(),
                lda,
                b_data.as_ptr(),
                ldb,
                beta,
                c.data.as_mut_ptr(),
                ldc,
            ),
            Trans::Yes => E::cblas(
                b_trans.flipped().flag(),
                a_trans.flipped().flag(),
                ni,
                mi,
                ki,
                alpha,
                b_data.as_ptr(),
                ldb,
                a_data.as_ptr(),
                lda,
                beta,
                c.data.as_mut_ptr(),
                ldc,
            ),
        }
    }
}

/// How a row-major CBLAS call sees an operand.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Trans {
    /// Element (i, j) at i·ld + j.
    No,
    /// Element (i, j) at j·ld + i.
    Yes,
}

impl Trans {
    fn flag(self) -> CBLAS_TRANSPOSE {
        match self {
            Trans::No => CblasNoTrans,
            Trans::Yes => CblasTrans,
        }
    }

    fn flipped(self) -> Self {
        match self {
            Trans::No => Trans::Yes,
            Trans::Yes => Trans::No,
        }
    }
}

/// The transpose flag and leading dimension that describe a non-empty `rows×cols`
/// operand with strides `rs`, `cs` in a row-major CBLAS call, if there are any.
///
/// The stride of a dimension of size 1 never multiplies a nonzero index, so it is free
/// and chosen to fit. A layout found here also never maps two elements to one offset.
fn layout(rows: usize, cols: usize, rs: usize, cs: usize) -> Option<(Trans, i32)> {
    // (i, j) at i·ld + j: unit column stride, rows at least a row apart.
    if cs == 1 || cols == 1 {
        let ld = if rows == 1 { cols } else { rs };
        if ld >= cols.max(1)
            && let Some(ld) = to_int(ld)
        {
            return Some((Trans::No, ld));
        }
    }
    // (i, j) at j·ld + i: unit row stride, columns at least a column apart.
    if rs == 1 || rows == 1 {
        let ld = if cols == 1 { rows } else { cs };
        if ld >= rows.max(1)
            && let Some(ld) = to_int(ld)
        {
            return Some((Trans::Yes, ld));
        }
    }
    None
}

fn to_int(x: usize) -> Option<i32> {
    i32::try_from(x).ok()
}

#[cfg(test)]
mod tests {
    use super::{Trans, layout};

    #[test]
    fn layouts() {
        // Row-major, padded row-major, column-major, padded column-major.
        assert_eq!(layout(3, 4, 4, 1), Some((Trans::No, 4)));
        assert_eq!(layout(3, 4, 7, 1), Some((Trans::No, 7)));
        assert_eq!(layout(3, 4, 1, 3), Some((Trans::Yes, 3)));
        assert_eq!(layout(3, 4, 1, 5), Some((Trans::Yes, 5)));
        // Rows overlapping, both strides above 1, broadcasts: no CBLAS layout.
        assert_eq!(layout(3, 4, 2, 1), None);
        assert_eq!(layout(3, 4, 9, 2), None);
        assert_eq!(layout(3, 4, 0, 1), None);
        assert_eq!(layout(3, 4, 1, 0), None);
        // A row or column vector with any nonzero stride fits.
        assert_eq!(layout(1, 4, 0, 1), Some((Trans::No, 4)));
        assert_eq!(layout(1, 4, 0, 3), Some((Trans::Yes, 3)));
        assert_eq!(layout(4, 1, 3, 0), Some((Trans::No, 3)));
        assert_eq!(layout(1, 1, 0, 0), Some((Trans::No, 1)));
        assert_eq!(layout(4, 1, 0, 0), None);
        // Leading dimensions beyond `int`.
        assert_eq!(layout(2, 4, 1 << 40, 1), None);
    }
}
