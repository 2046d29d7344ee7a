//! Batched matrix products.

use crate::dtype::Dtype;
use crate::error::Error;
use crate::storage::Storage;
use ferrograd_shapes::Layout;

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
}

/// Runs batched GEMMs on a device.
pub trait MatmulKernel<E: Dtype>: Storage<E> {
    /// For every batch index: `out = lhs · rhs + beta · out`, with `dims` = (m, k, n):
    /// `lhs` m×k, `rhs` k×n
    /// and `out` m×n. `out` may repeat matrices across the batch (stride 0) or within
    /// one only when `beta` is 1: the products then add up, as a gradient must.
    #[allow(clippy::too_many_arguments)]
    fn gemm_batched(
        &self,
        dims: (usize, usize, usize),
        lhs: &Self::Vec,
        lhs_layout: &MatrixLayout,
        rhs: &Self::Vec,
        rhs_layout: &MatrixLayout,
        beta: E,
        out: &mut Self::Vec,
        out_layout: &MatrixLayout,
    ) -> Result<(), Error>;
}
