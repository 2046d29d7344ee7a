//! Indexing on the GPU: [`GatherKernel`] (for `f32`, `f64`, `usize` and `bool`),
//! [`ScatterAddKernel`] and [`OneHotKernel`] (for `f32` and `f64`), in `index.cu` and
//! `index_add.cu`.
//!
//! Every kernel is element-wise over the positions of the index (row-major over its
//! dims), each thread reading its index through the index's layout and the element it
//! picks through the indexed buffer's layout with the indexed axis pinned at 0, plus
//! the index times that axis' stride. Scatter-add adds atomically (`atomicAdd`), since
//! repeated indices add into one element; gather-add does where the destination's
//! layout repeats elements.
//!
//! # Out-of-range indices
//!
//! The contract asks for the CPU's error, naming the first index (in row-major order)
//! that is not below the size of its axis, and for nothing written by a kernel that
//! accumulates. The indices live on the GPU, so checking them on the host would copy
//! the whole index buffer back. Instead:
//!
//! - **gather** records, in one `u64` on the GPU, the smallest position whose index is
//!   out of range (`atomicMin`; such positions are not read), and the host reads that
//!   word back after the launch. The output is new, so nothing the caller sees has
//!   been written when the error is returned.
//! - **scatter-add, gather-add and one-hot** first launch a check kernel that records
//!   the same word without writing anything else, read it back, and launch the kernel
//!   that writes only when it says every index is in range. (Those kernels skip an
//!   out-of-range index anyway, so no index can reach outside a buffer.)
//!
//! Either way the host waits for the GPU once per call (the read-back is a
//! synchronising copy of 8 bytes), which costs the queue of work ahead of it its
//! overlap with the host; it is the price of an error at the call rather than at some
//! later synchronisation. On an error the offending index value is copied back too,
//! for the message, which is then word for word the CPU's.

use crate::buffer::CudaBuffer;
use crate::compile::KernelSource;
use crate::device::{Cuda, grid_for};
use crate::element::CudaElement;
use crate::ops::reduce::{atomic_flag, launch_error};
use crate::strided::{kernel_layouts, offset_of, slice, slice_mut};
use cudarc::driver::PushKernelArg;
use ferrograd_device::ops::index::{
    GatherKernel, OneHotKernel, ScatterAddKernel, check_index_layouts, check_index_values, index_out_of_bounds,
};
use ferrograd_device::{Dtype, Error, Layout, Storage, View, ViewMut};

/// `index.cu`: the gather and the index check, for every element type.
pub(crate) const INDEX: KernelSource = KernelSource {
    name: "index",
    source: concat!(
        include_str!("../layout.cuh"),
        include_str!("../strided.cuh"),
        include_str!("index.cu")
    ),
    functions: &["index_gather", "index_check"],
    element_types: &["float", "double", "unsigned long long", "unsigned char"],
};

/// `index_add.cu`: scatter-add, gather-add and one-hot, for the float types.
pub(crate) const INDEX_ADD: KernelSource = KernelSource {
    name: "index_add",
    source: concat!(
        include_str!("../layout.cuh"),
        include_str!("../strided.cuh"),
        include_str!("index_add.cu")
    ),
    functions: &["index_scatter_add", "index_gather_add", "index_one_hot"],
    element_types: &["float", "double"],
};

/// The C type the index check is compiled for: it reads only indices.
const CHECK_TYPE: &str = <usize as CudaElement>::C_TYPE;

/// `data`'s strides over the index's dims with `axis` pinned (stride 0).
fn pinned_strides(data: &Layout, axis: usize) -> Vec<usize> {
    let mut strides = data.strides().to_vec();
    strides[axis] = 0;
    strides
}

/// A buffer holding `u64::MAX`: the "no bad position" a check kernel lowers.
fn no_bad_position(device: &Cuda) -> Result<CudaBuffer<usize>, Error> {
    device.try_from_host(vec![usize::MAX])
}

/// The index at row-major position `position` of `index`, copied from the GPU (for an
/// error message).
fn read_index(
    device: &Cuda,
    index: View<'_, CudaBuffer<usize>>,
    position: usize,
    op: &'static str,
) -> Result<usize, Error> {
    let offset = offset_of(&index.layout, position);
    let slice = slice(device, index.buffer, op)?;
    let stream = &device.gpu.stream;
    let value = stream
        .clone_dtoh(&slice.slice(offset..offset + 1))
        .map_err(|e| device.gpu.error("copying an index to the host", &e))?;
    stream
        .synchronize()
        .map_err(|e| device.gpu.error("waiting for the copy to the host", &e))?;
    Ok(value[0] as usize)
}

/// The value of the first index (row-major) of `index` that is not below `size`, if
/// any: the check kernel, then a read-back (see the [module documentation](self)).
/// `index` was checked and holds elements.
fn first_out_of_range(
    device: &Cuda,
    op: &'static str,
    index: View<'_, CudaBuffer<usize>>,
    size: usize,
) -> Result<Option<usize>, Error> {
    let layout = &index.layout;
    let numel = layout.num_elements() as u64;
    let [index_layout] = kernel_layouts(layout.dims(), [layout.strides()], [layout.offset()]);
    let mut first_bad = no_bad_position(device)?;
    let size_u64 = size as u64;
    let kernel = device.gpu.function(&INDEX, "index_check", CHECK_TYPE)?;
    let mut launch = device.gpu.stream.launch_builder(&kernel);
    launch
        .arg(slice(device, index.buffer, op)?)
        .arg(&index_layout)
        .arg(&numel)
        .arg(&size_u64)
        .arg(slice_mut(device, &mut first_bad, op)?);
    // SAFETY: index_check(const u64 *index, Layout index_layout, u64 numel, u64 size,
    // u64 *first_bad): the index buffer is usize stored as u64, the layout a
    // `KernelLayout`, numel and size u64, first_bad a u64 buffer of one element. It reads
    // the index's elements through its checked layout and writes only first_bad[0].
    unsafe { launch.launch(grid_for(numel)) }.map_err(|e| launch_error(device, "index_check", &e))?;
    drop(launch);
    bad_index(device, op, index, &first_bad)
}

/// The index at the position `first_bad` holds, unless it holds `u64::MAX` (none).
fn bad_index(
    device: &Cuda,
    op: &'static str,
    index: View<'_, CudaBuffer<usize>>,
    first_bad: &CudaBuffer<usize>,
) -> Result<Option<usize>, Error> {
    let position = device.try_to_host(first_bad)?[0];
    if position == usize::MAX {
        return Ok(None);
    }
    read_index(device, index, position, op).map(Some)
}

impl<E: CudaElement> GatherKernel<E> for Cuda {
    fn gather(
        &self,
        op: &'static str,
        input: View<'_, CudaBuffer<E>>,
        axis: usize,
        index: View<'_, CudaBuffer<usize>>,
    ) -> Result<CudaBuffer<E>, Error> {
        input.check(op, "input")?;
        index.check(op, "index")?;
        check_index_layouts(op, &input.layout, axis, &index.layout)?;
        let size = input.layout.dims()[axis];
        let numel = index.layout.num_elements();
        if numel == 0 {
            return Ok(CudaBuffer::default());
        }
        if size == 0 {
            // Every index is out of range, and the input has no element to read.
            let bad = first_out_of_range(self, op, index, size)?.unwrap_or_default();
            return Err(index_out_of_bounds(op, bad, axis, size));
        }
        let dims = index.layout.dims();
        let pinned = pinned_strides(&input.layout, axis);
        let [pinned_layout, index_layout] = kernel_layouts(
            dims,
            [&pinned, index.layout.strides()],
            [input.layout.offset(), index.layout.offset()],
        );
        let (stride, size_u64, items) = (input.layout.strides()[axis] as u64, size as u64, numel as u64);
        let mut out = CudaBuffer::<E>::uninit(&self.gpu, numel)?;
        let mut first_bad = no_bad_position(self)?;
        let kernel = self.gpu.function(&INDEX, "index_gather", E::C_TYPE)?;
        let mut launch = self.gpu.stream.launch_builder(&kernel);
        launch
            .arg(slice(self, input.buffer, op)?)
            .arg(&pinned_layout)
            .arg(&stride)
            .arg(&size_u64)
            .arg(slice(self, index.buffer, op)?)
            .arg(&index_layout)
            .arg(&items)
            .arg(slice_mut(self, &mut out, op)?)
            .arg(slice_mut(self, &mut first_bad, op)?);
        // SAFETY: index_gather(const T *x, Layout pinned, u64 stride, u64 size, const u64
        // *index, Layout index_layout, u64 numel, T *out, u64 *first_bad), T = E::C_TYPE,
        // the C name of E::Stored, the element type of `x` and `out`; the index buffer is
        // usize stored as u64; first_bad a one-element u64 buffer. The input's layout was
        // checked, so `pinned` plus k · stride for k < size (the only indices followed)
        // lies inside `x`; the index is read through its checked layout; `out` holds
        // numel.
        unsafe { launch.launch(grid_for(items)) }.map_err(|e| launch_error(self, "index_gather", &e))?;
        drop(launch);
        match bad_index(self, op, index, &first_bad)? {
            Some(bad) => Err(index_out_of_bounds(op, bad, axis, size)),
            None => Ok(out),
        }
    }
}

impl<E: Dtype + CudaElement> ScatterAddKernel<E> for Cuda {
    fn scatter_add(
        &self,
        op: &'static str,
        dst: ViewMut<'_, CudaBuffer<E>>,
        axis: usize,
        index: View<'_, CudaBuffer<usize>>,
        src: View<'_, CudaBuffer<E>>,
    ) -> Result<(), Error> {
        dst.check_accumulating(op, "dst")?;
        index.check(op, "index")?;
        src.check(op, "src")?;
        check_index_layouts(op, &dst.layout, axis, &index.layout)?;
        check_index_values(op, &index.layout, &src.layout)?;
        let size = dst.layout.dims()[axis];
        let numel = index.layout.num_elements();
        if numel == 0 {
            return Ok(());
        }
        if let Some(bad) = first_out_of_range(self, op, index, size)? {
            return Err(index_out_of_bounds(op, bad, axis, size));
        }
        let ViewMut {
            buffer: dst,
            layout: dst_layout,
        } = dst;
        let pinned = pinned_strides(&dst_layout, axis);
        let [pinned_layout, index_layout, src_layout] = kernel_layouts(
            index.layout.dims(),
            [&pinned, index.layout.strides(), src.layout.strides()],
            [dst_layout.offset(), index.layout.offset(), src.layout.offset()],
        );
        let (stride, size_u64, items) = (dst_layout.strides()[axis] as u64, size as u64, numel as u64);
        let kernel = self.gpu.function(&INDEX_ADD, "index_scatter_add", E::C_TYPE)?;
        let mut launch = self.gpu.stream.launch_builder(&kernel);
        launch
            .arg(slice_mut(self, dst, op)?)
            .arg(&pinned_layout)
            .arg(&stride)
            .arg(&size_u64)
            .arg(slice(self, index.buffer, op)?)
            .arg(&index_layout)
            .arg(slice(self, src.buffer, op)?)
            .arg(&src_layout)
            .arg(&items);
        // SAFETY: index_scatter_add(T *dst, Layout pinned, u64 stride, u64 size, const
        // u64 *index, Layout index_layout, const T *src, Layout src_layout, u64 numel), T
        // = E::C_TYPE, the C name of E::Stored, the element type of `dst` and `src`; the
        // index buffer is usize stored as u64. dst's layout was checked, so `pinned` plus
        // k · stride for k < size (the only indices followed) lies inside it; `index` and
        // `src` are read through their checked layouts over the same dims. The adds are
        // atomic.
        unsafe { launch.launch(grid_for(items)) }.map_err(|e| launch_error(self, "index_scatter_add", &e))?;
        Ok(())
    }

    fn gather_add(
        &self,
        op: &'static str,
        src: View<'_, CudaBuffer<E>>,
        axis: usize,
        index: View<'_, CudaBuffer<usize>>,
        dst: ViewMut<'_, CudaBuffer<E>>,
    ) -> Result<(), Error> {
        src.check(op, "src")?;
        index.check(op, "index")?;
        dst.check_accumulating(op, "dst")?;
        check_index_layouts(op, &src.layout, axis, &index.layout)?;
        check_index_values(op, &index.layout, &dst.layout)?;
        let size = src.layout.dims()[axis];
        let numel = index.layout.num_elements();
        if numel == 0 {
            return Ok(());
        }
        if let Some(bad) = first_out_of_range(self, op, index, size)? {
            return Err(index_out_of_bounds(op, bad, axis, size));
        }
        let ViewMut {
            buffer: dst,
            layout: dst_layout,
        } = dst;
        let pinned = pinned_strides(&src.layout, axis);
        let [pinned_layout, index_layout, dst_kernel_layout] = kernel_layouts(
            index.layout.dims(),
            [&pinned, index.layout.strides(), dst_layout.strides()],
            [src.layout.offset(), index.layout.offset(), dst_layout.offset()],
        );
        let (stride, size_u64, items) = (src.layout.strides()[axis] as u64, size as u64, numel as u64);
        let atomic = atomic_flag(&dst_layout);
        let kernel = self.gpu.function(&INDEX_ADD, "index_gather_add", E::C_TYPE)?;
        let mut launch = self.gpu.stream.launch_builder(&kernel);
        launch
            .arg(slice(self, src.buffer, op)?)
            .arg(&pinned_layout)
            .arg(&stride)
            .arg(&size_u64)
            .arg(slice(self, index.buffer, op)?)
            .arg(&index_layout)
            .arg(slice_mut(self, dst, op)?)
            .arg(&dst_kernel_layout)
            .arg(&items)
            .arg(&atomic);
        // SAFETY: index_gather_add(const T *src, Layout pinned, u64 stride, u64 size,
        // const u64 *index, Layout index_layout, T *dst, Layout dst_layout, u64 numel,
        // unsigned atomic), T = E::C_TYPE, the C name of E::Stored, the element type of
        // `src` and `dst`; the index buffer is usize stored as u64; atomic u32. src's
        // layout was checked, so `pinned` plus k · stride for k < size (the only indices
        // followed) lies inside it; `index` and `dst` are addressed through their checked
        // layouts over the same dims; repeated elements of `dst` are added atomically.
        unsafe { launch.launch(grid_for(items)) }.map_err(|e| launch_error(self, "index_gather_add", &e))?;
        Ok(())
    }
}

impl<E: Dtype + CudaElement> OneHotKernel<E> for Cuda {
    fn one_hot(&self, index: View<'_, CudaBuffer<usize>>, classes: usize) -> Result<CudaBuffer<E>, Error> {
        let op = "one_hot";
        index.check(op, "index")?;
        let numel = index.layout.num_elements();
        let len = numel.checked_mul(classes).ok_or(Error::OutOfMemory {
            elements: usize::MAX,
            dtype: E::NAME,
        })?;
        if numel == 0 {
            return Ok(CudaBuffer::default());
        }
        if let Some(bad) = first_out_of_range(self, op, index, classes)? {
            return Err(Error::InvalidArgument {
                op,
                message: format!("index {bad} is out of bounds for {classes} classes"),
            });
        }
        // `classes` is not 0 here: every index would have been out of range.
        let mut out = Storage::<E>::try_alloc_zeros(self, len)?;
        let [index_layout] = kernel_layouts(index.layout.dims(), [index.layout.strides()], [index.layout.offset()]);
        let (items, classes) = (numel as u64, classes as u64);
        let kernel = self.gpu.function(&INDEX_ADD, "index_one_hot", E::C_TYPE)?;
        let mut launch = self.gpu.stream.launch_builder(&kernel);
        launch
            .arg(slice(self, index.buffer, op)?)
            .arg(&index_layout)
            .arg(&items)
            .arg(&classes)
            .arg(slice_mut(self, &mut out, op)?);
        // SAFETY: index_one_hot(const u64 *index, Layout index_layout, u64 numel, u64
        // classes, T *out), the index buffer usize stored as u64, T = E::C_TYPE, the C
        // name of E::Stored, `out`'s element type. The index is read through its checked
        // layout; the kernel writes out[p · classes + k] only for p < numel and k <
        // classes, inside the numel · classes elements of `out`.
        unsafe { launch.launch(grid_for(items)) }.map_err(|e| launch_error(self, "index_one_hot", &e))?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shape_checks_use_the_cpu_text() {
        let data = Layout::from_parts(&[2, 3], &[3, 1]);
        let index = Layout::from_parts(&[2, 5], &[5, 1]);
        assert!(check_index_layouts("gather", &data, 1, &index).is_ok());
        let e = check_index_layouts("gather", &data, 0, &index).unwrap_err();
        assert_eq!(
            e.to_string(),
            "gather: data [2, 3] and indices [2, 5] must have one rank and agree on every axis but 0"
        );
        let e = check_index_values("scatter_add", &index, &data).unwrap_err();
        assert_eq!(
            e.to_string(),
            "scatter_add: indices [2, 5] and values [2, 3] must have one shape"
        );
        assert_eq!(pinned_strides(&data, 1), vec![3, 0]);
    }
}
