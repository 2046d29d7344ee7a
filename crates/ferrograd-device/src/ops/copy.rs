//! Strided copies: what `contiguous`, `concat` and `stack` are made of, and how their
//! gradients flow back.

use crate::dtype::Dtype;
use crate::error::Error;
use crate::storage::Storage;
use ferrograd_shapes::Layout;

/// Copies and accumulates between buffers through layouts of equal dims.
pub trait CopyKernel<E: Dtype>: Storage<E> {
    /// `dst[dst_layout[i]] = src[src_layout[i]]` for every element `i`.
    fn copy_strided(
        &self,
        src: &Self::Vec,
        src_layout: &Layout,
        dst: &mut Self::Vec,
        dst_layout: &Layout,
    ) -> Result<(), Error>;

    /// `dst[dst_layout[i]] += src[src_layout[i]]` for every element `i`.
    fn add_strided(
        &self,
        src: &Self::Vec,
        src_layout: &Layout,
        dst: &mut Self::Vec,
        dst_layout: &Layout,
    ) -> Result<(), Error>;
}
