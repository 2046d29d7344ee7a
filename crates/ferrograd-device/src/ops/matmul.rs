//! Batched matrix products.
//!
//! # Outputs that repeat a matrix
//!
//! The output of [`MatmulKernel::gemm_batched`] must address every element once: a
//! device runs the products of a batch concurrently (cuBLAS's strided-batched GEMM
//! does), so two products writing one matrix would race. The gradient of an operand
//! shared by a batch (a weight broadcast over it) is the sum of the per-batch
//! products, `Σ_b A_bᵀ · G_b`; the autodiff layer computes it as one product whose
//! inner dimension runs over the batch too, `[A_1; …; A_B]ᵀ · [G_1; …; G_B]`, so the
//! kernel never sees a repeated output. See `docs/kernels.md`.

use crate::dtype::Dtype;
use crate::error::Error;
use crate::ops::copy::CopyKernel;
use crate::storage::Storage;
use crate::view::{BufferLength, View, ViewMut, check_same_dims};
use ferrograd_shapes::{Layout, MAX_RANK};

/// Where the matrices of one operand live: a layout over the batch axes (its offsets
/// are where each matrix starts; a stride of 0 reuses one matrix for the whole batch)
/// and the strides of a matrix's rows and columns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MatrixLayout {
    /// The batch axes: dims, strides, and the offset of the first matrix.
    pub batch: Layout,
    /// Elements between consecutive rows.
    pub row_stride: usize,
    /// Elements between consecutive columns.
    pub column_stride: usize,
}

impl MatrixLayout {
    /// The same matrices transposed: rows and columns swap strides.
    pub fn transposed(self) -> Self {
        Self {
            row_stride: self.column_stride,
            column_stride: self.row_stride,
            ..self
        }
    }

    /// The layout of every element of the batch of `rows × columns` matrices: the batch
    /// axes, then the rows, then the columns. `None` when the batch has more than
    /// [`MAX_RANK`] − 2 axes, which no tensor's layout gives.
    pub fn elements(&self, rows: usize, columns: usize) -> Option<Layout> {
        let rank = self.batch.rank();
        if rank + 2 > MAX_RANK {
            return None;
        }
        let mut dims = [0; MAX_RANK];
        let mut strides = [0; MAX_RANK];
        dims[..rank].copy_from_slice(self.batch.dims());
        strides[..rank].copy_from_slice(self.batch.strides());
        dims[rank..rank + 2].copy_from_slice(&[rows, columns]);
        strides[rank..rank + 2].copy_from_slice(&[self.row_stride, self.column_stride]);
        Some(Layout::from_parts(&dims[..rank + 2], &strides[..rank + 2]).with_offset(self.batch.offset()))
    }
}

/// Runs batched GEMMs on a device.
///
/// A device with products has strided copies too ([`CopyKernel`]): the gradient of an
/// operand that is not laid out for one product (a broadcast one) is gathered with
/// them first.
pub trait MatmulKernel<E: Dtype>: Storage<E> + CopyKernel<E> {
    /// For every batch index: `out = lhs · rhs + beta · out`, with `dims` = (m, k, n):
    /// `lhs` m×k, `rhs` k×n and `out` m×n. The three batch layouts have the same dims.
    ///
    /// `lhs` and `rhs` may have any strides, 0 included (a matrix shared by the batch,
    /// a broadcast row). `out` must address each of its elements once, across the
    /// batch and within a matrix: an `out` that repeats a matrix (batch stride 0) or an
    /// element is refused, since a device runs the batch's products concurrently.
    /// When `beta` is 0, `out` is not read.
    ///
    /// # Errors
    /// `Error::InvalidArgument` when a view reaches past its buffer or `out` repeats
    /// an element; `Error::ShapeMismatch` when the batch dims disagree. Each message
    /// names `matmul` and the sizes.
    fn gemm_batched(
        &self,
        dims: (usize, usize, usize),
        lhs: View<'_, Self::Vec, MatrixLayout>,
        rhs: View<'_, Self::Vec, MatrixLayout>,
        beta: E,
        out: ViewMut<'_, Self::Vec, MatrixLayout>,
    ) -> Result<(), Error>;
}

/// What every [`MatmulKernel::gemm_batched`] checks at entry, before it reads or writes
/// anything: the batch dims agree, each view stays inside its buffer, and `out`
/// addresses each element once. O(rank): no pass over the data.
///
/// ```
/// use ferrograd_device::ops::matmul::{MatrixLayout, check_gemm};
/// use ferrograd_device::{Layout, View, ViewMut};
///
/// let matrix = |batch_stride, rows| MatrixLayout {
///     batch: Layout::from_parts(&[3], &[batch_stride]),
///     row_stride: rows,
///     column_stride: 1,
/// };
/// let (lhs, rhs) = (vec![0.0f32; 3 * 2 * 4], vec![0.0f32; 4 * 5]);
/// let mut out = vec![0.0f32; 3 * 2 * 5];
/// let dims = (2, 4, 5);
/// // One rhs shared by the batch is fine...
/// check_gemm(dims, &View::new(&lhs, matrix(8, 4)), &View::new(&rhs, matrix(0, 5)), &ViewMut::new(&mut out, matrix(10, 5)))?;
/// // ...one out shared by the batch is not.
/// let error = check_gemm(dims, &View::new(&lhs, matrix(8, 4)), &View::new(&rhs, matrix(0, 5)), &ViewMut::new(&mut out, matrix(0, 5)))
///     .unwrap_err();
/// assert!(error.to_string().starts_with("matmul: out is written through a layout that addresses some elements more than once"));
/// # Ok::<(), ferrograd_device::Error>(())
/// ```
///
/// # Errors
/// As [`MatmulKernel::gemm_batched`].
pub fn check_gemm<V: BufferLength>(
    (m, k, n): (usize, usize, usize),
    lhs: &View<'_, V, MatrixLayout>,
    rhs: &View<'_, V, MatrixLayout>,
    out: &ViewMut<'_, V, MatrixLayout>,
) -> Result<(), Error> {
    const KERNEL: &str = "matmul";
    let out_batch = ("out's batch", &out.layout.batch);
    check_same_dims(KERNEL, ("lhs's batch", &lhs.layout.batch), out_batch)?;
    check_same_dims(KERNEL, ("rhs's batch", &rhs.layout.batch), out_batch)?;
    lhs.check_matrices(KERNEL, "lhs", (m, k))?;
    rhs.check_matrices(KERNEL, "rhs", (k, n))?;
    out.check_matrices(KERNEL, "out", (m, n))
}
