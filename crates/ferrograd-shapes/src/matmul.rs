//! Which shapes multiply, and what they give.

use crate::dim::Dim;
use crate::shape::Shape;

/// `Self · Rhs` is a matrix product with result shape [`MatMulShape::Output`].
///
/// The forms: vector·matrix `(K,)·(K, N)`, matrix·vector `(M, K)·(K,)`, matrix·matrix,
/// a batch times one matrix `(B, M, K)·(K, N)`, batch·batch `(B, M, K)·(B, K, N)` and
/// `(B, S, M, K)·(B, S, K, N)`. The inner dims share one type, so const inner dims that
/// disagree fail to compile; run-time ones are checked when the product runs.
#[diagnostic::on_unimplemented(
    message = "cannot multiply a tensor of shape `{Self}` by one of shape `{Rhs}`",
    label = "the inner dimensions (last of the left, first matrix dim of the right) must be the same, and batch dims must match",
    note = "supported forms: (K,)·(K, N), (M, K)·(K,), (M, K)·(K, N), (B, M, K)·(K, N), (B, M, K)·(B, K, N), (B, S, M, K)·(B, S, K, N)"
)]
pub trait MatMulShape<Rhs: Shape>: Shape {
    /// The shape of the product.
    type Output: Shape;
    /// The number of leading batch axes of the output.
    const BATCH_AXES: usize;
    /// The product's shape from the operands' shapes.
    fn output(&self, rhs: &Rhs) -> Self::Output;
}

impl<K: Dim, N: Dim> MatMulShape<(K, N)> for (K,) {
    type Output = (N,);
    const BATCH_AXES: usize = 0;
    fn output(&self, rhs: &(K, N)) -> (N,) {
        (rhs.1,)
    }
}

impl<M: Dim, K: Dim> MatMulShape<(K,)> for (M, K) {
    type Output = (M,);
    const BATCH_AXES: usize = 0;
    fn output(&self, _: &(K,)) -> (M,) {
        (self.0,)
    }
}

impl<M: Dim, K: Dim, N: Dim> MatMulShape<(K, N)> for (M, K) {
    type Output = (M, N);
    const BATCH_AXES: usize = 0;
    fn output(&self, rhs: &(K, N)) -> (M, N) {
        (self.0, rhs.1)
    }
}

impl<B: Dim, M: Dim, K: Dim, N: Dim> MatMulShape<(K, N)> for (B, M, K) {
    type Output = (B, M, N);
    const BATCH_AXES: usize = 1;
    fn output(&self, rhs: &(K, N)) -> (B, M, N) {
        (self.0, self.1, rhs.1)
    }
}

impl<B: Dim, M: Dim, K: Dim, N: Dim> MatMulShape<(B, K, N)> for (B, M, K) {
    type Output = (B, M, N);
    const BATCH_AXES: usize = 1;
    fn output(&self, rhs: &(B, K, N)) -> (B, M, N) {
        (self.0, self.1, rhs.2)
    }
}

impl<B: Dim, S: Dim, M: Dim, K: Dim, N: Dim> MatMulShape<(B, S, K, N)> for (B, S, M, K) {
    type Output = (B, S, M, N);
    const BATCH_AXES: usize = 2;
    fn output(&self, rhs: &(B, S, K, N)) -> (B, S, M, N) {
        (self.0, self.1, self.2, rhs.3)
    }
}
