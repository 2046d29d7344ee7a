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
        // Shares of `c` are written from several threads: aliased elements would be a
        // data race.
        via_temporary(m, n, beta, c, |c| gemm(m, k, n, alpha, a, b, beta, c));
        return;
    }
    let (rsa, csa) = (stride(m, a.row_stride), stride(k, a.column_stride));
    let (rsb, csb) = (stride(k, b.row_stride), stride(n, b.column_stride));
    let (rsc, csc) = (stride(m, c.row_stride), stride(n, c.column_stride));
    // matrixmultiply's own threads would ignore ferrograd's thread setting, so the
    // product is split here: the longer side of `c` into one share per thread, each
    // share one call on ferrograd's pool.
    let flops = m.saturating_mul(k).saturating_mul(n).saturating_mul(2);
    let threads = if flops >= PARALLEL_MIN_FLOPS {
        crate::threads()
    } else {
        1
    };
    let split_rows = m >= n;
    let length = if split_rows { m } else { n };
    let share = length.div_ceil(threads.max(1));
    let (a_data, b_data, c_data) = (
        Shared(a.data.as_ptr()),
        Shared(b.data.as_ptr()),
        Shared(c.data.as_mut_ptr()),
    );
    let run = |index: usize| {
        let start = index * share;
        let size = share.min(length - start);
        let start = isize::try_from(start).expect("an index into a slice fits in isize");
        let (m, n, a_start, b_start, c_start) = if split_rows {
            (size, n, start * rsa, 0, start * rsc)
        } else {
            (m, size, 0, start * csb, start * csc)
        };
        // SAFETY: `super::gemm` checked that each slice holds every element its
        // dimensions and strides address, and `stride` keeps the offsets of every
        // addressed element unchanged; a share is a block of those rows (or columns)
        // of `a` and `c` (or `b` and `c`), so its offset pointers and all its reads
        // and writes stay inside the slices. The elements of `c` lie at distinct
        // offsets (checked above) and shares are disjoint blocks of them, so no two
        // threads write one element; `c` is a unique borrow, so it aliases neither `a`
        // nor `b`. Both kernels accept any strides, stride 0 included, for `a` and `b`.
        unsafe {
            E::matrixmultiply(
                m,
                k,
                n,
                alpha,
                a_data.get().offset(a_start),
                rsa,
                csa,
                b_data.get().offset(b_start),
                rsb,
                csb,
                beta,
                c_data.get().offset(c_start),
                rsc,
                csc,
            );
        }
    };
    let shares = length.div_ceil(share);
    if shares <= 1 {
        run(0);
    } else {
        crate::threads::map_shares(shares, run);
    }
}

/// Products below this many floating-point operations stay on one thread (the same
/// threshold as the AVX-512 kernel's, measured there).
const PARALLEL_MIN_FLOPS: usize = 1 << 18;

/// A pointer the shares of one product hand to the pool's threads.
#[derive(Clone, Copy)]
struct Shared<P>(P);

impl<P: Copy> Shared<P> {
    /// The pointer. A method, so closures capture the whole `Shared` (which is `Sync`)
    /// rather than the bare pointer field.
    fn get(self) -> P {
        self.0
    }
}

// SAFETY: the threads of one product read `a` and `b` only, and write disjoint blocks
// of `c` (see `gemm`); the borrows behind the pointers outlive the product, whose
// shares all end before `gemm` returns.
unsafe impl<P> Send for Shared<P> {}
// SAFETY: as above; the pointers are only copied out, never mutated, through `&Shared`.
unsafe impl<P> Sync for Shared<P> {}

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
