//! Kernels of the op families, each implementing a kernel trait of
//! `ferrograd_device::ops` for [`Cuda`](crate::Cuda): the Rust side (checks, launches)
//! in a `.rs` file, the CUDA C in a `.cu` file of the same family.

pub(crate) mod compare;
pub(crate) mod conv;
pub(crate) mod convert;
pub(crate) mod copy;
pub mod elementwise;
pub mod index;
pub(crate) mod matmul;
pub(crate) mod optimizer;
pub(crate) mod pool;
pub mod reduce;
pub mod softmax;
pub(crate) mod upsample;

#[cfg(test)]
mod tests {
    use crate::Cuda;
    use ferrograd_device::Dtype;
    use ferrograd_device::ops::conv::Conv2dKernel;
    use ferrograd_device::ops::optimizer::{GradientClipKernel, OptimizerKernel};
    use ferrograd_device::ops::pool::Pool2dKernel;
    use ferrograd_device::ops::upsample::Upsample2dKernel;

    fn has_the_kernels<
        E: Dtype,
        D: Conv2dKernel<E> + Pool2dKernel<E> + Upsample2dKernel<E> + OptimizerKernel<E> + GradientClipKernel<E>,
    >() {
    }

    /// `Cuda` implements each kernel trait of this module for both float types (the
    /// products too, where it has strided copies: see matmul.rs).
    #[test]
    fn cuda_has_the_kernels_for_f32_and_f64() {
        has_the_kernels::<f32, Cuda>();
        has_the_kernels::<f64, Cuda>();
    }
}
