//! Matrix products in every form a model needs, through one batched GEMM.
//!
//! Each operand is described to the kernel by strides alone, so transposed, permuted or
//! broadcast operands reach the GEMM without copies.

use crate::OrPanic;
use crate::backward::BackwardContext;
use crate::tape::{MergeTapes, MergedTape, Tape};
use crate::tensor::Tensor;
use ferrograd_device::ops::matmul::{MatmulKernel, MatrixLayout};
use ferrograd_device::{Dtype, Error, Layout, Storage};
use ferrograd_shapes::{MatMulShape, Shape};
use std::sync::Arc;

/// Splits a tensor's layout into batch axes and one matrix. A vector on the left is a
/// 1×K row, a vector on the right a K×1 column; a matrix shared by a batch gets stride 0
/// on the batch axes.
fn matrix_layout(layout: &Layout, batch_dims: &[usize], vector_is_column: bool) -> MatrixLayout {
    let (dims, strides) = (layout.dims(), layout.strides());
    let rank = dims.len();
    let (row_stride, column_stride, matrix_axes) = match rank {
        1 if vector_is_column => (strides[0], 0, 1),
        1 => (0, strides[0], 1),
        _ => (strides[rank - 2], strides[rank - 1], 2),
    };
    let own_batch = rank - matrix_axes;
    let batch_strides: Vec<usize> = if own_batch == batch_dims.len() {
        strides[..own_batch].to_vec()
    } else {
        vec![0; batch_dims.len()]
    };
    MatrixLayout {
        batch: Layout::from_parts(batch_dims, &batch_strides).with_offset(layout.offset()),
        row_stride,
        column_stride,
    }
}

impl<S: Shape, E: Dtype, D: MatmulKernel<E>, T: Tape<E, D>> Tensor<S, E, D, T> {
    /// The matrix product `self · rhs` (PyTorch's `matmul` for the supported forms):
    /// vector·matrix, matrix·vector, matrix·matrix, `(B, M, K)·(K, N)`,
    /// `(B, M, K)·(B, K, N)` and `(B, S, M, K)·(B, S, K, N)`. Inner dims that disagree
    /// fail to compile when const.
    ///
    /// ```
    /// use ferrograd_autodiff::prelude::*;
    /// let dev = ferrograd_cpu::Cpu::default();
    /// let a = dev.tensor([[1.0f32, 2.0], [3.0, 4.0]]);
    /// let b = dev.tensor([[5.0f32, 6.0], [7.0, 8.0]]);
    /// assert_eq!(a.clone().matmul(b.clone()).array(), [[19.0, 22.0], [43.0, 50.0]]);
    /// // A transposed operand is a view: no copy reaches the GEMM.
    /// assert_eq!(a.t().matmul(b).array(), [[26.0, 30.0], [38.0, 44.0]]);
    /// ```
    ///
    /// # Panics
    /// When run-time dims disagree; see [`Tensor::try_matmul`].
    #[track_caller]
    pub fn matmul<Rhs: Shape, R: Tape<E, D>>(
        self,
        rhs: Tensor<Rhs, E, D, R>,
    ) -> Tensor<S::Output, E, D, MergedTape<T, R>>
    where
        S: MatMulShape<Rhs>,
        T: MergeTapes<R>,
        MergedTape<T, R>: Tape<E, D>,
    {
        self.try_matmul(rhs).or_panic()
    }

    /// [`Tensor::matmul`], returning `Error::ShapeMismatch` when run-time inner or batch
    /// dims disagree.
    #[allow(clippy::type_complexity)] // the result type is the op's own: shape, dtype, device, tape
    pub fn try_matmul<Rhs: Shape, R: Tape<E, D>>(
        self,
        rhs: Tensor<Rhs, E, D, R>,
    ) -> Result<Tensor<S::Output, E, D, MergedTape<T, R>>, Error>
    where
        S: MatMulShape<Rhs>,
        T: MergeTapes<R>,
        MergedTape<T, R>: Tape<E, D>,
    {
        let (ld, rd) = (self.layout.dims().to_vec(), rhs.layout.dims().to_vec());
        let k = ld[ld.len() - 1];
        let (rhs_k, n) = match rd.len() {
            1 => (rd[0], 1),
            r => (rd[r - 2], rd[r - 1]),
        };
        let batch_axes = <S as MatMulShape<Rhs>>::BATCH_AXES;
        let batch_dims = &ld[..batch_axes];
        let rhs_batch = if rd.len() >= 2 + batch_axes {
            &rd[..batch_axes]
        } else {
            batch_dims
        };
        if k != rhs_k || batch_dims != rhs_batch {
            return Err(Error::ShapeMismatch {
                op: "matmul",
                message: format!("lhs {ld:?} and rhs {rd:?} disagree on the inner or batch dims"),
            });
        }
        let m = if ld.len() == 1 { 1 } else { ld[ld.len() - 2] };
        let shape = self.shape.output(&rhs.shape);
        let out_dims = shape.concrete();
        let out_layout = Layout::contiguous(&shape);
        let out_matrix = if ld.len() == 1 {
            matrix_layout(&out_layout, batch_dims, false)
        } else {
            matrix_layout(&out_layout, batch_dims, true)
        };
        let lhs_matrix = matrix_layout(&self.layout, batch_dims, false);
        let rhs_matrix = matrix_layout(&rhs.layout, batch_dims, true);

        let device = self.device.clone();
        let mut out = device.try_alloc_for_overwrite(out_dims.as_ref().iter().product())?;
        device.gemm_batched(
            (m, k, n),
            &self.data,
            &lhs_matrix,
            &rhs.data,
            &rhs_matrix,
            E::ZERO,
            &mut out,
            &out_matrix,
        )?;

        let inputs = [self.op_input(), rhs.op_input()];
        let lhs_written_once = written_once(&self.layout, D::len(&self.data), &lhs_matrix);
        let rhs_written_once = written_once(&rhs.layout, D::len(&rhs.data), &rhs_matrix);
        let tape = self.tape.merge_tapes(rhs.tape);
        let result = Tensor::from_arc(Arc::new(out), shape, device, tape);
        if !<MergedTape<T, R> as Tape<E, D>>::TRACING {
            return Ok(result);
        }
        let (lhs_data, rhs_data) = (self.data, rhs.data);
        let result = result.record_op(&inputs, move |ctx| {
            ctx.with_grad_output(|ctx, grad_output| {
                let device = ctx.device;
                // d lhs = d out · rhsᵀ, through lhs's own layout: written (beta = 0) when
                // it is the first contribution and covers the whole buffer.
                if let Some((grad, beta)) = gemm_destination(ctx, 0, lhs_written_once)? {
                    device.gemm_batched(
                        (m, n, k),
                        grad_output,
                        &out_matrix,
                        &rhs_data,
                        &rhs_matrix.transposed(),
                        beta,
                        grad,
                        &lhs_matrix,
                    )?;
                }
                // d rhs = lhsᵀ · d out.
                if let Some((grad, beta)) = gemm_destination(ctx, 1, rhs_written_once)? {
                    device.gemm_batched(
                        (k, m, n),
                        &lhs_data,
                        &lhs_matrix.transposed(),
                        grad_output,
                        &out_matrix,
                        beta,
                        grad,
                        &rhs_matrix,
                    )?;
                }
                Ok(())
            })
        });
        Ok(result)
    }
}

/// Whether a product into this operand's layout writes every element of its buffer
/// exactly once: the layout is plain row-major over the whole buffer, and no matrix is
/// repeated across the batch (whose products would have to add up).
fn written_once(layout: &Layout, buffer_len: usize, matrix: &MatrixLayout) -> bool {
    let batch = &matrix.batch;
    layout.is_contiguous()
        && layout.num_elements() == buffer_len
        && batch
            .dims()
            .iter()
            .zip(batch.strides())
            .all(|(&d, &s)| d == 1 || s != 0)
}

/// Where a product's gradient goes, and the GEMM `beta` to put it there with: 0 when
/// this is the first contribution and the product writes every element of the buffer
/// once (a plain, unbroadcast operand), so the fresh buffer's contents never matter.
fn gemm_destination<'c, E: Dtype, D: Storage<E>>(
    ctx: &'c mut BackwardContext<'_, E, D>,
    input: usize,
    written_once: bool,
) -> Result<Option<(&'c mut D::Vec, E)>, Error> {
    let len = ctx.input_len(input);
    let device = ctx.device;
    let Some(entry) = ctx.grad_entry(input) else {
        return Ok(None);
    };
    let beta = match entry {
        Some(_) => E::ONE,
        None => {
            if written_once {
                // beta = 0 never reads the buffer, so it need not be zeroed.
                *entry = Some(device.try_alloc_for_overwrite(len)?);
                E::ZERO
            } else {
                *entry = Some(device.try_alloc_zeros(len)?);
                E::ONE
            }
        }
    };
    Ok(entry.as_mut().map(|grad| (grad, beta)))
}
