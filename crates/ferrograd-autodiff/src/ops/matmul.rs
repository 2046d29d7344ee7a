//! Matrix products in every form a model needs, through one batched GEMM.
//!
//! Each operand is described to the kernel by strides alone, so transposed, permuted or
//! broadcast operands reach the GEMM without copies.

use crate::OrPanic;
use crate::backward::BackwardContext;
use crate::tape::{MergeTapes, MergedTape, Tape};
use crate::tensor::Tensor;
use ferrograd_device::ops::matmul::{MatmulKernel, MatrixLayout};
use ferrograd_device::{Dtype, Error, Layout, Storage, View, ViewMut};
use ferrograd_shapes::{MAX_RANK, MatMulShape, Shape};
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
            View::new(&*self.data, lhs_matrix),
            View::new(&*rhs.data, rhs_matrix),
            E::ZERO,
            ViewMut::new(&mut out, out_matrix),
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
                    gradient_product(
                        device,
                        (m, n, k),
                        View::new(grad_output, out_matrix),
                        View::new(&*rhs_data, rhs_matrix.transposed()),
                        beta,
                        ViewMut::new(grad, lhs_matrix),
                    )?;
                }
                // d rhs = lhsᵀ · d out.
                if let Some((grad, beta)) = gemm_destination(ctx, 1, rhs_written_once)? {
                    gradient_product(
                        device,
                        (k, m, n),
                        View::new(&*lhs_data, lhs_matrix.transposed()),
                        View::new(grad_output, out_matrix),
                        beta,
                        ViewMut::new(grad, rhs_matrix),
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

/// `out = x · y + beta · out` for every batch index, with `dims` = (m, k, n), into the
/// layout of an operand's gradient, which may address an element more than once: a
/// matrix shared by the batch (a broadcast weight) or a row repeated within one. The
/// kernel refuses such an output (a device runs the batch's products concurrently), so
/// the repeats are summed here. `beta` must then be 1: a repeated element gathers
/// several products, and each must add to it.
///
/// The batch axes along which `out` repeats are folded into the inner dimension, since
/// `Σ_b x_b · y_b = [x_1 … x_B] · [y_1; …; y_B]`: one product of inner size `B·k` per
/// index of the other axes. `x` must then hold its matrices' columns back to back over
/// the folded axes, and `y` its rows; an operand that does not (a transposed or
/// broadcast one) is copied into that order first. What `out` still repeats after
/// that (a row within a matrix) is computed into a dense buffer and added through its
/// layout by [`CopyKernel::add_strided`], whose repeated elements accumulate.
///
/// [`CopyKernel::add_strided`]: ferrograd_device::ops::copy::CopyKernel::add_strided
fn gradient_product<E: Dtype, D: MatmulKernel<E>>(
    device: &D,
    (m, k, n): (usize, usize, usize),
    x: View<'_, D::Vec, MatrixLayout>,
    y: View<'_, D::Vec, MatrixLayout>,
    beta: E,
    out: ViewMut<'_, D::Vec, MatrixLayout>,
) -> Result<(), Error> {
    let Some(out_elements) = out.layout.elements(m, n) else {
        // More batch axes than a layout holds: the kernel names the problem.
        return device.gemm_batched((m, k, n), x, y, beta, out);
    };
    if out_elements.has_unique_offsets() {
        return device.gemm_batched((m, k, n), x, y, beta, out);
    }
    if beta != E::ONE {
        return Err(Error::InvalidArgument {
            op: "matmul",
            message: format!(
                "a gradient written through a layout that repeats elements ({}) must be added to (beta 1)",
                ferrograd_device::view::describe(&out_elements)
            ),
        });
    }

    let batch = out.layout.batch;
    if x.layout.batch.dims() != batch.dims() || y.layout.batch.dims() != batch.dims() {
        // The kernel names the disagreement.
        return device.gemm_batched((m, k, n), x, y, beta, out);
    }

    // The batch axes along which `out` repeats its matrix.
    let mut repeated = [false; MAX_RANK];
    for (axis, (&dim, &stride)) in batch.dims().iter().zip(batch.strides()).enumerate() {
        repeated[axis] = dim > 1 && stride == 0;
    }
    let repeated = &repeated[..batch.rank()];
    let folded: usize = batch
        .dims()
        .iter()
        .zip(repeated)
        .filter(|&(_, &r)| r)
        .map(|(&d, _)| d)
        .product();

    // `x`'s columns and `y`'s rows, each run along the folded axes then the inner one,
    // copied into that order where the operand's strides do not give it.
    let (mut x_copy, mut y_copy) = (None, None);
    let (x, y, out_layout, k) = if folded > 1 {
        let (x, x_stride) = fold_operand(device, x, (m, k), repeated, false, &mut x_copy)?;
        let (y, y_stride) = fold_operand(device, y, (k, n), repeated, true, &mut y_copy)?;
        let x_layout = MatrixLayout {
            batch: kept_axes(&x.layout.batch, repeated),
            column_stride: x_stride,
            ..x.layout
        };
        let y_layout = MatrixLayout {
            batch: kept_axes(&y.layout.batch, repeated),
            row_stride: y_stride,
            ..y.layout
        };
        let out_layout = MatrixLayout {
            batch: kept_axes(&batch, repeated),
            ..out.layout
        };
        (
            View::new(x.buffer, x_layout),
            View::new(y.buffer, y_layout),
            out_layout,
            k * folded,
        )
    } else {
        (x, y, out.layout, k)
    };
    let out_elements = out_layout.elements(m, n).unwrap_or(out_elements);
    if out_elements.has_unique_offsets() {
        return device.gemm_batched((m, k, n), x, y, beta, ViewMut::new(out.buffer, out_layout));
    }

    // Still repeated within a matrix: the products into a dense buffer, then added
    // through the layout.
    let matrices = out_layout.batch.num_elements();
    let mut dense = device.try_alloc_for_overwrite(matrices * m * n)?;
    let dense_layout = MatrixLayout {
        batch: Layout::from_parts(out_layout.batch.dims(), &row_major(out_layout.batch.dims(), m * n)),
        row_stride: n,
        column_stride: 1,
    };
    device.gemm_batched((m, k, n), x, y, E::ZERO, ViewMut::new(&mut dense, dense_layout))?;
    let dense_elements = dense_layout.elements(m, n).unwrap_or(out_elements);
    device.add_strided(
        View::new(&dense, dense_elements),
        ViewMut::new(out.buffer, out_elements),
    )
}

/// `operand` (the left factor, whose inner dimension is its columns, or the right
/// one, `rows_inner`, whose inner dimension is its rows) with the stride of one axis
/// running over its `repeated` batch axes and then its inner dimension: itself where
/// its strides give one, else a copy into `copy` laid out so they do.
fn fold_operand<'a, E: Dtype, D: MatmulKernel<E>>(
    device: &D,
    operand: View<'a, D::Vec, MatrixLayout>,
    (rows, columns): (usize, usize),
    repeated: &[bool],
    rows_inner: bool,
    copy: &'a mut Option<D::Vec>,
) -> Result<(View<'a, D::Vec, MatrixLayout>, usize), Error> {
    let stride_of = |layout: &MatrixLayout| {
        let inner = if rows_inner {
            (rows, layout.row_stride)
        } else {
            (columns, layout.column_stride)
        };
        inner_stride(&layout.batch, repeated, inner)
    };
    if let Some(stride) = stride_of(&operand.layout) {
        return Ok((operand, stride));
    }
    let (buffer, layout) = dense_copy(device, operand, (rows, columns), repeated, rows_inner)?;
    // The copy is laid out for the fold, so this holds; an error rather than a wrong
    // product if it did not.
    let stride = stride_of(&layout).ok_or_else(|| Error::InvalidArgument {
        op: "matmul",
        message: "a gradient's operand could not be laid out to fold its batch".into(),
    })?;
    Ok((View::new(copy.insert(buffer), layout), stride))
}

/// The stride of one axis running over the `repeated` axes of `batch` (outermost
/// first) and then over `inner` (its size and stride), when the buffer holds them in
/// that nested order; `None` when it does not. Axes of size 1 take no part.
fn inner_stride(batch: &Layout, repeated: &[bool], inner: (usize, usize)) -> Option<usize> {
    let mut axes = [(0, 0); MAX_RANK + 1];
    let mut count = 0;
    for ((&dim, &stride), _) in batch
        .dims()
        .iter()
        .zip(batch.strides())
        .zip(repeated)
        .filter(|&(_, &r)| r)
    {
        axes[count] = (dim, stride);
        count += 1;
    }
    axes[count] = inner;
    // From the innermost: each axis must step over everything the ones inside it span.
    let mut merged = None;
    let mut span = 0;
    for &(dim, stride) in axes[..=count].iter().rev() {
        match dim {
            0 => return Some(0), // nothing is read
            1 => continue,
            _ if merged.is_none() => merged = Some(stride),
            _ if stride != span => return None,
            _ => {}
        }
        span = dim.checked_mul(stride)?;
    }
    Some(merged.unwrap_or(0))
}

/// `batch` without its `repeated` axes.
fn kept_axes(batch: &Layout, repeated: &[bool]) -> Layout {
    let mut dims = [0; MAX_RANK];
    let mut strides = [0; MAX_RANK];
    let mut count = 0;
    for ((&dim, &stride), &r) in batch.dims().iter().zip(batch.strides()).zip(repeated) {
        if !r {
            dims[count] = dim;
            strides[count] = stride;
            count += 1;
        }
    }
    Layout::from_parts(&dims[..count], &strides[..count]).with_offset(batch.offset())
}

/// The strides of a row-major buffer of `dims` whose innermost step is `step`.
fn row_major(dims: &[usize], step: usize) -> Vec<usize> {
    let mut strides = vec![0; dims.len()];
    let mut next = step;
    for (stride, &dim) in strides.iter_mut().zip(dims).rev() {
        *stride = next;
        next *= dim;
    }
    strides
}

/// A copy of the `rows × columns` matrices of `operand` into a new buffer ordered so
/// the `repeated` batch axes fold into the inner dimension: the other batch axes, then
/// the rows, the repeated axes and the columns when the inner dimension is the columns
/// (`rows_inner` false, the left factor); the other batch axes, the repeated ones, the
/// rows and the columns when it is the rows (the right factor).
fn dense_copy<E: Dtype, D: MatmulKernel<E>>(
    device: &D,
    operand: View<'_, D::Vec, MatrixLayout>,
    (rows, columns): (usize, usize),
    repeated: &[bool],
    rows_inner: bool,
) -> Result<(D::Vec, MatrixLayout), Error> {
    let batch = operand.layout.batch;
    let rank = batch.rank();
    // Logical axes: the batch axes, then rows (rank), then columns (rank + 1); the
    // buffer's order of them, outermost first.
    let kept = (0..rank).filter(|&axis| !repeated[axis]);
    let folded = (0..rank).filter(|&axis| repeated[axis]);
    let order: Vec<usize> = if rows_inner {
        kept.chain(folded).chain([rank, rank + 1]).collect()
    } else {
        kept.chain([rank]).chain(folded).chain([rank + 1]).collect()
    };
    let mut dims = batch.dims().to_vec();
    dims.extend([rows, columns]);
    let mut strides = vec![0; rank + 2];
    let mut step = 1;
    for &axis in order.iter().rev() {
        strides[axis] = step;
        step *= dims[axis];
    }
    let source = operand
        .layout
        .elements(rows, columns)
        .ok_or_else(|| Error::InvalidArgument {
            op: "matmul",
            message: format!("an operand has {rank} batch axes, more than a layout holds"),
        })?;
    let mut copy = device.try_alloc_for_overwrite(step)?;
    device.copy_strided(
        View::new(operand.buffer, source),
        ViewMut::new(&mut copy, Layout::from_parts(&dims, &strides)),
    )?;
    let layout = MatrixLayout {
        batch: Layout::from_parts(&dims[..rank], &strides[..rank]),
        row_stride: strides[rank],
        column_stride: strides[rank + 1],
    };
    Ok((copy, layout))
}
