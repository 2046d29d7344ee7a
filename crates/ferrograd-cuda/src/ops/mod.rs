//! Kernels of the op families, each implementing a kernel trait of
//! `ferrograd_device::ops` for [`Cuda`](crate::Cuda): the Rust side (checks, launches)
//! in a `.rs` file, the CUDA C in a `.cu` file of the same family.

pub(crate) mod conv;
pub(crate) mod matmul;
pub(crate) mod optimizer;
pub(crate) mod pool;
pub(crate) mod upsample;

use crate::buffer::CudaBuffer;
use crate::device::Cuda;
use crate::element::CudaElement;
use ferrograd_device::Error;

impl Cuda {
    /// `Ok` when `buffer` is empty (it holds no memory) or lives on this device's GPU.
    pub(crate) fn check_buffer<E: CudaElement>(&self, buffer: &CudaBuffer<E>, op: &'static str) -> Result<(), Error> {
        match buffer.allocation() {
            Some(allocation) => self.check_owner(allocation, op),
            None => Ok(()),
        }
    }
}
