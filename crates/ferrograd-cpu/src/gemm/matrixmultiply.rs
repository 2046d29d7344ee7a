//! The default backend: `matrixmultiply`, which takes any strides, so no operand is
//! copied unless the output's layout makes two of its elements share memory.

use super::{GemmElement, MatrixMut, MatrixRef, is_non_overlapping, via_temporary};

/// [`super::gemm`] on `matrixmultiply`, for non-empty `m`, `k`, `n` and operands whose
/// slices the caller has checked are long enough.
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
    if !is_non_overlapping(m, n, c.row_stride, c.column_stride) {
        // With its `threading` feature matrixmultiply writes blocks of `c` from
        // several threads: aliased elements would be a data race.
        via_temporary(m, n, beta, c, |c| gemm(m, k, n, alpha, a, b, beta, c));
        return;
    }
    let (rsa, csa) = (stride(m, a.row_stride), stride(k, a.column_stride));
    let (rsb, csb) = (stride(k, b.row_stride), stride(n, b.column_stride));
    let (rsc, csc) = (stride(m, c.row_stride), stride(n, c.column_stride));
    // SAFETY: `super::gemm` checked that each slice holds every element its dimensions
    // and strides address, and `stride` keeps the offsets of every addressed element
    // unchanged, so all reads and writes stay inside the slices. The elements of `c`
    // lie at distinct offsets (checked above), and `c` is a unique borrow, so it
    // aliases neither `a` nor `b`. Both kernels accept any strides, stride 0 included,
    // for `a` and `b`.
    unsafe {
        E::matrixmultiply(
            m,
            k,
            n,
            alpha,
            a.data.as_ptr(),
            rsa,
            csa,
            b.data.as_ptr(),
            rsb,
            csb,
            beta,
            c.data.as_mut_ptr(),
            rsc,
            csc,
        );
    }
}

/// A stride as `isize`. The stride of a dimension of size 1 is never multiplied by a
/// nonzero index, so it is replaced by 0; any other stride times (size - 1) is an
/// offset inside a slice, hence at most `isize::MAX`.
fn stride(size: usize, stride: usize) -> isize {
    if size <= 1 {
        0
    } else {
        isize::try_from(stride).expect("a stride that addresses a slice fits in isize")
    }
}
