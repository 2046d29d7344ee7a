use crate::device::{Cpu, CpuBuffer};
use ferrograd_device::ops::copy::CopyKernel;
use ferrograd_device::{Dtype, Error, Layout};

impl<E: Dtype> CopyKernel<E> for Cpu {
    fn copy_strided(
        &self,
        src: &CpuBuffer<E>,
        src_layout: &Layout,
        dst: &mut CpuBuffer<E>,
        dst_layout: &Layout,
    ) -> Result<(), Error> {
        for (s, d) in src_layout.offsets().zip(dst_layout.offsets()) {
            dst[d] = src[s];
        }
        Ok(())
    }

    fn add_strided(
        &self,
        src: &CpuBuffer<E>,
        src_layout: &Layout,
        dst: &mut CpuBuffer<E>,
        dst_layout: &Layout,
    ) -> Result<(), Error> {
        for (s, d) in src_layout.offsets().zip(dst_layout.offsets()) {
            dst[d] += src[s];
        }
        Ok(())
    }
}
