//! Conversions between element types ([`ConvertKernel`]) on the GPU: `convert.cu`.

use crate::buffer::CudaBuffer;
use crate::compile::KernelSource;
use crate::device::{Cuda, grid_for};
use crate::element::CudaElement;
use crate::kernel::{contiguous, read_ptr, write_ptr};
use crate::layout::KernelLayout;
use cudarc::driver::PushKernelArg;
use ferrograd_device::ops::convert::{CastTo, ConvertKernel};
use ferrograd_device::{Error, View};

/// `convert.cu`: one kernel per type converted from, compiled for each type converted
/// to (`T`).
pub(crate) const CONVERT: KernelSource = KernelSource {
    name: "convert",
    source: concat!(
        include_str!("../layout.cuh"),
        include_str!("../elementwise.cuh"),
        include_str!("convert.cu")
    ),
    functions: &["convert_from_float", "convert_from_double", "convert_from_bool"],
    element_types: &["float", "double", "unsigned char"],
};

/// Every conversion [`CastTo`] defines: `f32` ↔ `f64`, each to itself, `bool` to
/// `f32`, `f64` and itself (`true` is 1).
impl<From, To> ConvertKernel<From, To> for Cuda
where
    From: CastTo<To> + CudaElement,
    To: CudaElement,
{
    fn convert(&self, input: View<'_, CudaBuffer<From>>) -> Result<CudaBuffer<To>, Error> {
        input.check("convert", "input")?;
        self.check_buffer(input.buffer, "convert", "input")?;
        let function_name = match From::C_TYPE {
            "float" => "convert_from_float",
            "double" => "convert_from_double",
            "unsigned char" => "convert_from_bool",
            other => {
                return Err(Error::InvalidArgument {
                    op: "convert",
                    message: format!("no GPU conversion from {other}"),
                });
            }
        };
        let numel = input.layout.num_elements();
        let mut out = CudaBuffer::<To>::uninit(&self.gpu, numel)?;
        if numel == 0 {
            return Ok(out);
        }
        let function = self.gpu.function(&CONVERT, function_name, To::C_TYPE)?;
        let stream = &self.gpu.stream;
        let items = numel as u64;
        let (layout, input_contiguous) = (KernelLayout::from(&input.layout), contiguous(&input.layout));
        let (input_pointer, input_guard) = read_ptr(stream, input.buffer);
        let (out_pointer, out_guard) = write_ptr(stream, &mut out);
        let mut launch = stream.launch_builder(&function);
        launch
            .arg(&input_pointer)
            .arg(&layout)
            .arg(&input_contiguous)
            .arg(&out_pointer)
            .arg(&items);
        // SAFETY: `convert_from_X(const X *input, Layout, int, T *out, unsigned long long
        // len)` where X is From::C_TYPE (the function is chosen by it) and the source is
        // compiled with T = To::C_TYPE: device pointers (u64), a KernelLayout, an int and
        // a u64. Position i < len reads the input at layout_offset(i) (or i) within its
        // checked length and writes out[i] of a buffer of `len` elements.
        unsafe { launch.launch(grid_for(items)) }.map_err(|e| self.gpu.error("launching convert", &e))?;
        drop((input_guard, out_guard));
        Ok(out)
    }
}
