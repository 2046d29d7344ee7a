use crate::host::{Cpu, CpuBuffer};
use ferrograd_device::ops::copy::{CopyKernel, check_copy};
use ferrograd_device::{Dtype, Error, View, ViewMut};

impl<E: Dtype> CopyKernel<E> for Cpu {
    fn copy_strided(&self, src: View<'_, CpuBuffer<E>>, dst: ViewMut<'_, CpuBuffer<E>>) -> Result<(), Error> {
        check_copy("copy_strided", &src, &dst, false)?;
        for (s, d) in src.layout.offsets().zip(dst.layout.offsets()) {
            dst.buffer[d] = src.buffer[s];
        }
        Ok(())
    }

    fn add_strided(&self, src: View<'_, CpuBuffer<E>>, dst: ViewMut<'_, CpuBuffer<E>>) -> Result<(), Error> {
        check_copy("add_strided", &src, &dst, true)?;
        for (s, d) in src.layout.offsets().zip(dst.layout.offsets()) {
            dst.buffer[d] += src.buffer[s];
        }
        Ok(())
    }
}
