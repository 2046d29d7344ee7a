//! Strided copies ([`CopyKernel`]) on the GPU: `copy.cu`.

use crate::buffer::CudaBuffer;
use crate::compile::KernelSource;
use crate::device::{Cuda, grid_for};
use crate::element::CudaElement;
use crate::kernel::{add_mode, contiguous, read_ptr, write_ptr};
use crate::layout::KernelLayout;
use cudarc::driver::PushKernelArg;
use ferrograd_device::ops::copy::{CopyKernel, check_copy};
use ferrograd_device::{Dtype, Error, View, ViewMut};

/// `copy.cu`: `copy_strided` and `copy_add_strided`.
pub(crate) const COPY: KernelSource = KernelSource {
    name: "copy",
    source: concat!(
        include_str!("../layout.cuh"),
        include_str!("../elementwise.cuh"),
        include_str!("copy.cu")
    ),
    functions: &["copy_strided", "copy_add_strided"],
    element_types: &["float", "double"],
};

/// `add_strided` adds with `atomicAdd` where `dst`'s layout may repeat elements, so
/// they accumulate (each position once, in an unspecified order); plainly otherwise.
impl<E: Dtype + CudaElement> CopyKernel<E> for Cuda {
    fn copy_strided(&self, src: View<'_, CudaBuffer<E>>, dst: ViewMut<'_, CudaBuffer<E>>) -> Result<(), Error> {
        check_copy("copy_strided", &src, &dst, false)?;
        self.strided("copy_strided", "copy_strided", src, dst, contiguous)
    }

    fn add_strided(&self, src: View<'_, CudaBuffer<E>>, dst: ViewMut<'_, CudaBuffer<E>>) -> Result<(), Error> {
        check_copy("add_strided", &src, &dst, true)?;
        self.strided("add_strided", "copy_add_strided", src, dst, add_mode)
    }
}

impl Cuda {
    /// Launches `function`, `copy_strided` (`dst_flag` gives the destination's
    /// contiguity) or `copy_add_strided` (`dst_flag` gives its write mode), for the op
    /// `kernel`, on views checked by `check_copy`.
    fn strided<E: CudaElement>(
        &self,
        kernel: &'static str,
        function: &'static str,
        src: View<'_, CudaBuffer<E>>,
        dst: ViewMut<'_, CudaBuffer<E>>,
        dst_flag: fn(&ferrograd_device::Layout) -> i32,
    ) -> Result<(), Error> {
        self.check_buffer(src.buffer, kernel, "src")?;
        self.check_buffer(dst.buffer, kernel, "dst")?;
        let numel = src.layout.num_elements();
        if numel == 0 {
            return Ok(());
        }
        let function = self.gpu.function(&COPY, function, E::C_TYPE)?;
        let stream = &self.gpu.stream;
        let items = numel as u64;
        let (src_layout, src_contiguous) = (KernelLayout::from(&src.layout), contiguous(&src.layout));
        let (dst_layout, dst_flag) = (KernelLayout::from(&dst.layout), dst_flag(&dst.layout));
        let (src_pointer, _src_guard) = read_ptr(stream, src.buffer);
        let (dst_pointer, _dst_guard) = write_ptr(stream, dst.buffer);
        let mut launch = stream.launch_builder(&function);
        launch
            .arg(&src_pointer)
            .arg(&src_layout)
            .arg(&src_contiguous)
            .arg(&dst_pointer)
            .arg(&dst_layout)
            .arg(&dst_flag)
            .arg(&items);
        // SAFETY: `copy_strided(const T *src, Layout, int src_contiguous, T *dst, Layout,
        // int dst_contiguous, unsigned long long len)` and `copy_add_strided(..., Layout,
        // int dst_mode, unsigned long long len)` take the same argument types, compiled
        // with T = E::C_TYPE: device pointers (u64), KernelLayouts, ints and a u64 in
        // that order. Position i < len (both layouts' element count, equal dims checked)
        // reads src at layout_offset(i) (or i) within its checked length and writes dst
        // at layout_offset(i) (or i) within its checked length; copy_strided's dst
        // repeats no element (ViewMut::check), so no two threads write one element, and
        // add_strided's repeats are added atomically (add_mode).
        unsafe { launch.launch(grid_for(items)) }.map_err(|e| self.gpu.error(&format!("launching {kernel}"), &e))?;
        Ok(())
    }
}
