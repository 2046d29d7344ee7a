//! Softmax and log-softmax on the GPU: [`SoftmaxKernel`] for `f32` and `f64`
//! (`softmax.cu`), over any sorted set of axes of any layout.
//!
//! One fused kernel per direction. Each row (the elements sharing every index outside
//! the normalised axes) is handled by a team of threads, as the reductions' groups are
//! (see [`reduce`](crate::ops::reduce)): a thread, a warp or a block, after the row's length
//! and stride. Forward reads the row three times (its maximum ignoring NaN, the sum of
//! shifted exponentials, the normalised values) and writes the contiguous output once;
//! the second and third reads mostly come from cache. Backward reads the output and its
//! gradient twice (the row's sum, then each element's gradient).
//!
//! Results are the CPU's formulas (`exp(x − m) · (1 / Σ)`, `(x − m) − ln Σ`), with the
//! sums in another order and CUDA's `exp` and `ln`, so they differ by rounding.
//!
//! A `Unique` input whose layout is contiguous and whose buffer holds exactly the
//! input's elements is normalised in place and returned (each element is read before
//! it is overwritten, by the thread that overwrites it). The gradient is added through
//! the input's layout, atomically (`atomicAdd`) where that layout repeats elements.

use crate::buffer::CudaBuffer;
use crate::compile::KernelSource;
use crate::device::Cuda;
use crate::element::CudaElement;
use crate::ops::reduce::{atomic_flag, launch_error};
use crate::strided::{Groups, contiguous_strides, slice, slice_mut};
use cudarc::driver::PushKernelArg;
use ferrograd_device::ops::softmax::{SoftmaxKernel, SoftmaxKind};
use ferrograd_device::view::{check_axes, check_len};
use ferrograd_device::{Dtype, Error, Input, InputView, ViewMut};

/// `softmax.cu`.
pub(crate) const SOFTMAX: KernelSource = KernelSource {
    name: "softmax",
    source: concat!(
        include_str!("../layout.cuh"),
        include_str!("../strided.cuh"),
        include_str!("../team.cuh"),
        include_str!("softmax.cu")
    ),
    functions: &["softmax_forward", "softmax_forward_in_place", "softmax_backward"],
    element_types: &["float", "double"],
};

/// `kind` as the kernels take it: 0 for softmax, 1 for log-softmax.
fn log_code(kind: SoftmaxKind) -> i32 {
    match kind {
        SoftmaxKind::Softmax => 0,
        SoftmaxKind::LogSoftmax => 1,
    }
}

impl<E: Dtype + CudaElement> SoftmaxKernel<E> for Cuda {
    fn forward(
        &self,
        kind: SoftmaxKind,
        input: InputView<'_, CudaBuffer<E>>,
        axes: &[usize],
    ) -> Result<CudaBuffer<E>, Error> {
        let op = kind.name();
        check_axes(op, axes, input.layout.rank())?;
        input.check(op, "input")?;
        let InputView { buffer, layout } = input;
        let numel = layout.num_elements();
        if numel == 0 {
            return Ok(CudaBuffer::default());
        }
        let dims = layout.dims();
        let out_strides = contiguous_strides(dims);
        // The input first: the team size follows its rows.
        let groups = Groups::new(dims, [(layout.strides(), layout.offset()), (&out_strides, 0)], axes);
        let (count, len, log) = (groups.count as u64, groups.len as u64, log_code(kind));
        match buffer {
            Input::Unique(mut buffer) if layout.is_contiguous() && buffer.len() == numel => {
                let kernel = self.gpu.function(&SOFTMAX, "softmax_forward_in_place", E::C_TYPE)?;
                let mut launch = self.gpu.stream.launch_builder(&kernel);
                launch
                    .arg(slice_mut(self, &mut buffer, op)?)
                    .arg(&groups.outer[0])
                    .arg(&groups.inner[0])
                    .arg(&count)
                    .arg(&len)
                    .arg(&groups.team)
                    .arg(&log);
                // SAFETY: softmax_forward_in_place(T *x, Layout outer, Layout inner, u64
                // count, u64 len, unsigned team, int log), T = E::C_TYPE, the C name of
                // E::Stored, the buffer's element type; the layouts are `KernelLayout`s,
                // count and len u64, team u32, log i32. The groups are the elements of the
                // checked, contiguous layout, inside the buffer; each is read, then
                // overwritten by the same thread.
                unsafe { launch.launch(groups.launch_config()) }
                    .map_err(|e| launch_error(self, "softmax_forward_in_place", &e))?;
                drop(launch);
                Ok(buffer)
            }
            // A buffer handed over but not usable in place is read, then dropped: its
            // memory goes back to the cache, and stream order keeps it from being
            // reused before this kernel has read it.
            buffer => {
                let x = slice(self, buffer.get(), op)?;
                let mut out = CudaBuffer::<E>::uninit(&self.gpu, numel)?;
                let kernel = self.gpu.function(&SOFTMAX, "softmax_forward", E::C_TYPE)?;
                let mut launch = self.gpu.stream.launch_builder(&kernel);
                launch
                    .arg(x)
                    .arg(slice_mut(self, &mut out, op)?)
                    .arg(&groups.outer[0])
                    .arg(&groups.inner[0])
                    .arg(&groups.outer[1])
                    .arg(&groups.inner[1])
                    .arg(&count)
                    .arg(&len)
                    .arg(&groups.team)
                    .arg(&log);
                // SAFETY: softmax_forward(const T *x, T *out, Layout x_outer, Layout
                // x_inner, Layout y_outer, Layout y_inner, u64 count, u64 len, unsigned
                // team, int log), types as above. The x groups are the elements of the
                // input's checked layout; the y groups those of a contiguous layout over
                // the same dims, below numel, which `out` holds.
                unsafe { launch.launch(groups.launch_config()) }
                    .map_err(|e| launch_error(self, "softmax_forward", &e))?;
                drop(launch);
                Ok(out)
            }
        }
    }

    fn backward(
        &self,
        kind: SoftmaxKind,
        grad_input: ViewMut<'_, CudaBuffer<E>>,
        axes: &[usize],
        output: &CudaBuffer<E>,
        grad_output: &CudaBuffer<E>,
    ) -> Result<(), Error> {
        let op = kind.name();
        check_axes(op, axes, grad_input.layout.rank())?;
        grad_input.check_accumulating(op, "grad_input")?;
        let numel = grad_input.layout.num_elements();
        check_len(op, "output", output.len(), numel)?;
        check_len(op, "grad_output", grad_output.len(), numel)?;
        if numel == 0 {
            return Ok(());
        }
        let ViewMut { buffer, layout } = grad_input;
        let dims = layout.dims();
        let out_strides = contiguous_strides(dims);
        // The output first: read twice, it sets the team size.
        let groups = Groups::new(dims, [(&out_strides, 0), (layout.strides(), layout.offset())], axes);
        let (count, len, log, atomic) = (
            groups.count as u64,
            groups.len as u64,
            log_code(kind),
            atomic_flag(&layout),
        );
        let (y, dy) = (slice(self, output, op)?, slice(self, grad_output, op)?);
        let kernel = self.gpu.function(&SOFTMAX, "softmax_backward", E::C_TYPE)?;
        let mut launch = self.gpu.stream.launch_builder(&kernel);
        launch
            .arg(slice_mut(self, buffer, op)?)
            .arg(&groups.outer[1])
            .arg(&groups.inner[1])
            .arg(y)
            .arg(dy)
            .arg(&groups.outer[0])
            .arg(&groups.inner[0])
            .arg(&count)
            .arg(&len)
            .arg(&groups.team)
            .arg(&log)
            .arg(&atomic);
        // SAFETY: softmax_backward(T *grad_input, Layout x_outer, Layout x_inner, const T
        // *y, const T *dy, Layout y_outer, Layout y_inner, u64 count, u64 len, unsigned
        // team, int log, unsigned atomic), T = E::C_TYPE, the C name of E::Stored, the
        // slices' element type; layouts `KernelLayout`s, count and len u64, team and
        // atomic u32, log i32. The x groups are the elements of grad_input's checked
        // layout; the y groups those of a contiguous layout over the same dims, below
        // numel, which `output` and `grad_output` hold (checked). Repeated elements of
        // grad_input are added atomically.
        unsafe { launch.launch(groups.launch_config()) }.map_err(|e| launch_error(self, "softmax_backward", &e))?;
        Ok(())
    }
}
