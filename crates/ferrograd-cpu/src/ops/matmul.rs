use crate::gemm::{GemmElement, MatrixMut, MatrixRef, gemm};
use crate::host::{Cpu, CpuBuffer};
use ferrograd_device::ops::matmul::{MatmulKernel, MatrixLayout, check_gemm};
use ferrograd_device::{Dtype, Error, Float, Layout, View, ViewMut};

/// Folds the batch into the rows of one big GEMM when every matrix of `lhs` and `out`
/// follows the previous one row after row, and `rhs` is one matrix for the whole batch:
/// `(B, M, K)·(K, N)` is then `(B·M, K)·(K, N)`, one call instead of B.
fn fold_batch_into_rows(
    m: usize,
    lhs: &MatrixLayout,
    rhs: &MatrixLayout,
    out: &MatrixLayout,
) -> Option<(usize, MatrixLayout, MatrixLayout, MatrixLayout)> {
    let dims = lhs.batch.dims();
    if dims.is_empty() || rhs.batch.strides().iter().any(|&s| s != 0) {
        return None;
    }
    let rows_follow = |layout: &MatrixLayout| {
        let mut expected = m * layout.row_stride;
        for axis in (0..dims.len()).rev() {
            if dims[axis] > 1 && layout.batch.strides()[axis] != expected {
                return false;
            }
            expected *= dims[axis];
        }
        true
    };
    if !(rows_follow(lhs) && rows_follow(out)) || m * lhs.row_stride == 0 || m * out.row_stride == 0 {
        return None;
    }
    let single = |layout: &MatrixLayout| MatrixLayout {
        batch: Layout::from_parts(&[], &[]).with_offset(layout.batch.offset()),
        ..*layout
    };
    Some((m * lhs.batch.num_elements(), single(lhs), single(rhs), single(out)))
}

/// The buffer from `offset` on: empty past its end, where only an operand with no
/// elements (k = 0, which the GEMM does not read) can start.
fn tail<E>(buffer: &[E], offset: usize) -> &[E] {
    buffer.get(offset..).unwrap_or(&[])
}

impl<E: Dtype + GemmElement> MatmulKernel<E> for Cpu {
    fn gemm_batched(
        &self,
        (m, k, n): (usize, usize, usize),
        lhs: View<'_, CpuBuffer<E>, MatrixLayout>,
        rhs: View<'_, CpuBuffer<E>, MatrixLayout>,
        beta: E,
        out: ViewMut<'_, CpuBuffer<E>, MatrixLayout>,
    ) -> Result<(), Error> {
        check_gemm((m, k, n), &lhs, &rhs, &out)?;
        if m == 0 || n == 0 {
            // No element to write; the offsets of empty views were not checked.
            return Ok(());
        }
        let (rows, lhs_layout, rhs_layout, out_layout) =
            match fold_batch_into_rows(m, &lhs.layout, &rhs.layout, &out.layout) {
                Some(folded) => folded,
                None => (m, lhs.layout, rhs.layout, out.layout),
            };
        let (lhs, rhs, out) = (lhs.buffer, rhs.buffer, out.buffer);
        let batches = lhs_layout
            .batch
            .offsets()
            .zip(rhs_layout.batch.offsets())
            .zip(out_layout.batch.offsets());
        for ((l, r), o) in batches {
            gemm(
                rows,
                k,
                n,
                <E as Float>::ONE,
                MatrixRef::new(tail(lhs, l), lhs_layout.row_stride, lhs_layout.column_stride),
                MatrixRef::new(tail(rhs, r), rhs_layout.row_stride, rhs_layout.column_stride),
                beta,
                MatrixMut::new(&mut out[o..], out_layout.row_stride, out_layout.column_stride),
            );
        }
        Ok(())
    }
}
