use crate::device::{Cpu, CpuBuffer};
use crate::gemm::{GemmElement, MatrixMut, MatrixRef, gemm};
use ferrograd_device::ops::matmul::{MatmulKernel, MatrixLayout};
use ferrograd_device::{Dtype, Error, Float, Layout, Storage};

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

/// Whether two elements of one m×n matrix share a buffer slot.
fn overlaps_within(layout: &MatrixLayout, m: usize, n: usize) -> bool {
    (m > 1 && layout.row_stride == 0) || (n > 1 && layout.column_stride == 0)
}

impl<E: Dtype + GemmElement> MatmulKernel<E> for Cpu {
    fn gemm_batched(
        &self,
        (m, k, n): (usize, usize, usize),
        lhs: &CpuBuffer<E>,
        lhs_layout: &MatrixLayout,
        rhs: &CpuBuffer<E>,
        rhs_layout: &MatrixLayout,
        beta: E,
        out: &mut CpuBuffer<E>,
        out_layout: &MatrixLayout,
    ) -> Result<(), Error> {
        if overlaps_within(out_layout, m, n) {
            // A GEMM may not write one slot twice: compute into a scratch matrix per
            // batch, then add it through the overlapping layout.
            let scratch_layout = MatrixLayout {
                batch: Layout::from_parts(&[], &[]),
                row_stride: n,
                column_stride: 1,
            };
            let matrix = Layout::from_parts(&[m, n], &[n, 1]);
            for ((l, r), o) in lhs_layout
                .batch
                .offsets()
                .zip(rhs_layout.batch.offsets())
                .zip(out_layout.batch.offsets())
            {
                let mut scratch = self.try_alloc_zeros(m * n)?;
                let single = |layout: &MatrixLayout, offset: usize| MatrixLayout {
                    batch: Layout::from_parts(&[], &[]).with_offset(offset),
                    ..*layout
                };
                self.gemm_batched(
                    (m, k, n),
                    lhs,
                    &single(lhs_layout, l),
                    rhs,
                    &single(rhs_layout, r),
                    <E as Float>::ZERO,
                    &mut scratch,
                    &scratch_layout,
                )?;
                let target =
                    Layout::from_parts(&[m, n], &[out_layout.row_stride, out_layout.column_stride]).with_offset(o);
                for (s, t) in matrix.offsets().zip(target.offsets()) {
                    let value = scratch[s];
                    out[t] = beta * out[t] + value;
                }
            }
            return Ok(());
        }
        let (rows, lhs_layout, rhs_layout, out_layout) =
            match fold_batch_into_rows(m, lhs_layout, rhs_layout, out_layout) {
                Some(folded) => folded,
                None => (m, *lhs_layout, *rhs_layout, *out_layout),
            };
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
                MatrixRef::new(&lhs[l..], lhs_layout.row_stride, lhs_layout.column_stride),
                MatrixRef::new(&rhs[r..], rhs_layout.row_stride, rhs_layout.column_stride),
                beta,
                MatrixMut::new(&mut out[o..], out_layout.row_stride, out_layout.column_stride),
            );
        }
        Ok(())
    }
}
