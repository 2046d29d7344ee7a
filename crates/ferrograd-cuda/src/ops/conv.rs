//! 2-d convolutions ([`Conv2dKernel`]) as im2col + cuBLAS products.
//!
//! For a chunk of images, `conv_im2col` copies the input pixels each output pixel reads
//! into a matrix of columns, `(C_IN · KH · KW) × (OH · OW)` per image: row `(c, i, j)`
//! holds, for every output pixel, the pixel kernel tap `(i, j)` of channel `c` meets
//! (zero in the padding). Then, batched over the chunk's images and the groups:
//!
//! - forward: `out[n, g] = W_g · columns[n, g]` (into the bias, when there is one);
//! - input gradient: `columns[n, g] = W_gᵀ · grad_out[n, g]`, then `conv_col2im` sums,
//!   for each input pixel, the entries of the taps that read it (a gather: no two
//!   threads write one pixel), added through the gradient's layout;
//! - weight gradient: the columns of the whole chunk side by side, `(C_IN · KH · KW) ×
//!   (images · OH · OW)`, and the output's gradient regrouped channel-first
//!   (`conv_regroup`), so that `dW_g += grad_out_g · columns_gᵀ` sums over the chunk's
//!   images inside one product;
//! - bias gradient: one block per channel sums the output's gradient (`conv_bias_grad`).
//!
//! A 1×1 convolution of stride 1 without padding needs no columns: the input is that
//! matrix already, read in place. Chunks keep the columns under `WORKSPACE_ELEMENTS`
//! elements (at least one image).
//!
//! Gradients are added through the operand's layout: with plain additions where the
//! layout addresses each element once, with `atomicAdd` where it repeats elements (the
//! gradient of a broadcast operand), so every position adds to its element.

use crate::buffer::CudaBuffer;
use crate::compile::KernelSource;
use crate::device::{Cuda, grid_for};
use crate::element::CudaElement;
use crate::layout::KernelLayout;
use cudarc::driver::{DeviceRepr, PushKernelArg};
use ferrograd_device::ops::conv::{Conv2dKernel, Conv2dSpec, check_grad_output};
use ferrograd_device::ops::matmul::MatrixLayout;
use ferrograd_device::{BufferLength, Dtype, Error, Layout, View, ViewMut};
use std::borrow::Cow;

/// `conv.cu`.
pub(crate) const CONV: KernelSource = KernelSource {
    name: "conv",
    source: concat!(include_str!("../layout.cuh"), include_str!("conv.cu")),
    functions: &[
        "conv_im2col",
        "conv_col2im",
        "conv_fill_bias",
        "conv_bias_grad",
        "conv_regroup",
        "conv_accumulate",
    ],
    element_types: &["float", "double"],
};

const OP: &str = "conv2d";

/// The most elements the columns of one chunk of images hold (128 MiB of `f32`), unless
/// one image needs more. Small in tests, so that they cover several chunks.
const WORKSPACE_ELEMENTS: usize = if cfg!(test) { 1 << 9 } else { 1 << 25 };

/// A convolution's sizes as the kernels take them: `struct ConvGeometry` of conv.cu,
/// field for field.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
struct ConvGeometry {
    channels: u64,
    in_height: u64,
    in_width: u64,
    out_height: u64,
    out_width: u64,
    kernel_height: u64,
    kernel_width: u64,
    stride_height: u64,
    stride_width: u64,
    dilation_height: u64,
    dilation_width: u64,
    pad_top: u64,
    pad_left: u64,
}

// SAFETY: `ConvGeometry` is `repr(C)`, `Copy`, and holds only u64s (no pointers, no
// padding), matching `struct ConvGeometry` of conv.cu field for field.
unsafe impl DeviceRepr for ConvGeometry {}

impl ConvGeometry {
    fn of(spec: &Conv2dSpec) -> Self {
        let u = |x: usize| x as u64;
        Self {
            channels: u(spec.in_channels),
            in_height: u(spec.in_height),
            in_width: u(spec.in_width),
            out_height: u(spec.out_height),
            out_width: u(spec.out_width),
            kernel_height: u(spec.kernel_height),
            kernel_width: u(spec.kernel_width),
            stride_height: u(spec.stride[0]),
            stride_width: u(spec.stride[1]),
            dilation_height: u(spec.dilation[0]),
            dilation_width: u(spec.dilation[1]),
            pad_top: u(spec.pad_top),
            pad_left: u(spec.pad_left),
        }
    }
}

/// The sizes of one convolution's products, derived once from its (checked) spec.
#[derive(Clone, Copy, Debug)]
struct Sizes {
    groups: usize,
    /// Output channels per group: the rows of a group's product.
    outputs_per_group: usize,
    /// `in_channels / groups · KH · KW`: a group's inner size.
    group_rows: usize,
    /// `in_channels · KH · KW`: the rows of an image's columns.
    rows: usize,
    /// `OH · OW`.
    pixels: usize,
}

impl Sizes {
    fn of(spec: &Conv2dSpec) -> Self {
        let taps = spec.kernel_height * spec.kernel_width;
        Self {
            groups: spec.groups,
            outputs_per_group: spec.out_channels / spec.groups,
            group_rows: spec.in_channels / spec.groups * taps,
            rows: spec.in_channels * taps,
            pixels: spec.out_height * spec.out_width,
        }
    }

    /// Images per chunk: as many as keep `per_image` elements each under the workspace.
    fn images_per_chunk(&self, batch: usize, per_image: usize) -> usize {
        (WORKSPACE_ELEMENTS / per_image.max(1)).clamp(1, batch.max(1))
    }
}

/// The stride of axes `axes` of `layout` read as one axis (row-major), if they can be:
/// each axis longer than 1 steps over all the ones inside it. Axes of one element do
/// not count; with none longer than 1, any stride works and 1 is returned.
fn flat_stride(layout: &Layout, axes: std::ops::Range<usize>) -> Option<usize> {
    let (dims, strides) = (layout.dims(), layout.strides());
    let mut flat: Option<(usize, usize)> = None; // (stride, elements covered)
    for axis in axes.rev() {
        if dims[axis] == 1 {
            continue;
        }
        flat = match flat {
            None => Some((strides[axis], dims[axis])),
            Some((stride, covered)) => {
                if Some(strides[axis]) != stride.checked_mul(covered) {
                    return None;
                }
                Some((stride, covered * dims[axis]))
            }
        };
    }
    Some(flat.map_or(1, |(stride, _)| stride))
}

/// A batch layout over `(images, groups)` with each operand's step along them, in the
/// order that puts the longer axis innermost (the one cuBLAS batches; the other is a
/// loop of calls).
fn batch(dims: [usize; 2], strides: [usize; 2], offset: usize) -> Layout {
    if dims[1] >= dims[0] {
        Layout::from_parts(&dims, &strides).with_offset(offset)
    } else {
        Layout::from_parts(&[dims[1], dims[0]], &[strides[1], strides[0]]).with_offset(offset)
    }
}

/// A matrix layout: `batch`, then rows and columns of these strides.
fn matrices(batch: Layout, row_stride: usize, column_stride: usize) -> MatrixLayout {
    MatrixLayout {
        batch,
        row_stride,
        column_stride,
    }
}

/// Whether a gradient's writes through `layout` must be atomic: where two positions
/// share an element.
fn atomic(layout: &Layout) -> i32 {
    i32::from(!layout.has_unique_offsets())
}

/// What a convolution is made of: products, im2col and col2im, and moving gradients
/// between layouts. [`Cuda`] runs them on the GPU; the tests run the same kernels
/// compiled for the CPU, so the code that puts them together ([`forward`],
/// [`backward_input`], [`backward_weight`]) is checked without a GPU.
pub(crate) trait ConvOps<E: Dtype> {
    /// A buffer of `E`.
    type Buffer: BufferLength + Clone;

    /// A buffer of `len` elements whose values are unspecified.
    fn uninit(&self, len: usize) -> Result<Self::Buffer, Error>;

    /// [`MatmulKernel::gemm_batched`](ferrograd_device::ops::matmul::MatmulKernel::gemm_batched).
    fn gemm(
        &self,
        dims: (usize, usize, usize),
        lhs: View<'_, Self::Buffer, MatrixLayout>,
        rhs: View<'_, Self::Buffer, MatrixLayout>,
        beta: E,
        out: ViewMut<'_, Self::Buffer, MatrixLayout>,
    ) -> Result<(), Error>;

    /// A dense row-major copy of what `layout` addresses in `source`.
    fn gather(&self, source: &Self::Buffer, layout: &Layout) -> Result<Self::Buffer, Error>;

    /// `conv_im2col`: images `first .. first + images` of the input into `columns`, image
    /// `n`'s row `r` from `n·image_stride + r·row_stride` (a checked input, and columns
    /// holding every row of every image).
    fn im2col(
        &self,
        spec: &Conv2dSpec,
        input: &View<'_, Self::Buffer>,
        images: (usize, usize),
        columns: &mut Self::Buffer,
        strides: (usize, usize),
    ) -> Result<(), Error>;

    /// `conv_col2im`: the images' columns (`rows × pixels` each, one after another) added
    /// into the input's gradient of those images.
    fn col2im(
        &self,
        spec: &Conv2dSpec,
        columns: &Self::Buffer,
        images: (usize, usize),
        grad: &mut ViewMut<'_, Self::Buffer>,
    ) -> Result<(), Error>;

    /// `conv_fill_bias`: every output pixel of channel `o` set to `bias[o]`.
    fn fill_bias(
        &self,
        out: &mut Self::Buffer,
        bias: &View<'_, Self::Buffer>,
        channels: usize,
        pixels: usize,
    ) -> Result<(), Error>;

    /// `conv_regroup`: the output's gradient of the images, channel-first, into `out`.
    fn regroup(
        &self,
        grad_output: &Self::Buffer,
        images: (usize, usize),
        channels: usize,
        pixels: usize,
        out: &mut Self::Buffer,
    ) -> Result<(), Error>;

    /// `conv_accumulate`: the dense `source` added into `target` through `layout`.
    fn accumulate(&self, source: &Self::Buffer, target: &mut Self::Buffer, layout: &Layout) -> Result<(), Error>;

    /// `conv_bias_grad`: the output's gradient, of `sizes` = (batch, channels, pixels),
    /// summed per channel and added into the bias's gradient.
    fn bias_grad(
        &self,
        grad_output: &Self::Buffer,
        sizes: (usize, usize, usize),
        grad_bias: ViewMut<'_, Self::Buffer>,
    ) -> Result<(), Error>;
}

/// The weight as `out_channels × (in_channels / groups · KH · KW)` matrices.
struct WeightMatrix<'a, B: Clone> {
    buffer: Cow<'a, B>,
    row_stride: usize,
    column_stride: usize,
    /// Where the first filter starts.
    offset: usize,
}

/// The weight's matrices: in place when each filter's elements follow each other at one
/// stride, else a dense copy.
fn weight_matrix<'a, E: Dtype, O: ConvOps<E>>(
    ops: &O,
    weight: &View<'a, O::Buffer>,
) -> Result<WeightMatrix<'a, O::Buffer>, Error> {
    let layout = &weight.layout;
    Ok(match flat_stride(layout, 1..4) {
        Some(column_stride) => WeightMatrix {
            buffer: Cow::Borrowed(weight.buffer),
            row_stride: layout.strides()[0],
            column_stride,
            offset: layout.offset(),
        },
        None => WeightMatrix {
            buffer: Cow::Owned(ops.gather(weight.buffer, layout)?),
            row_stride: layout.dims()[1..].iter().product(),
            column_stride: 1,
            offset: 0,
        },
    })
}

/// [`Conv2dKernel::conv2d_forward`] after the buffers' device was checked.
pub(crate) fn forward<E: Dtype, O: ConvOps<E>>(
    ops: &O,
    spec: &Conv2dSpec,
    input: View<'_, O::Buffer>,
    weight: View<'_, O::Buffer>,
    bias: Option<View<'_, O::Buffer>>,
) -> Result<O::Buffer, Error> {
    spec.check()?;
    spec.check_operand("input", &input, &spec.input_dims())?;
    spec.check_operand("weight", &weight, &spec.weight_dims())?;
    if let Some(bias) = &bias {
        spec.check_operand("bias", bias, &[spec.out_channels])?;
    }
    let sizes = Sizes::of(spec);
    let (batch, out_channels, pixels) = (spec.batch, spec.out_channels, sizes.pixels);
    let mut out = ops.uninit(batch * out_channels * pixels)?;
    if out.buffer_length() == 0 {
        return Ok(out);
    }
    let beta = match &bias {
        Some(bias) => {
            ops.fill_bias(&mut out, bias, out_channels, pixels)?;
            E::ONE
        }
        None => E::ZERO,
    };
    let WeightMatrix {
        buffer: weight_buffer,
        row_stride: weight_rows,
        column_stride: weight_columns,
        offset: weight_offset,
    } = weight_matrix(ops, &weight)?;
    let (groups, og, k) = (sizes.groups, sizes.outputs_per_group, sizes.group_rows);
    let weight_matrices = |images| {
        matrices(
            batch_of(images, groups, [0, og * weight_rows], weight_offset),
            weight_rows,
            weight_columns,
        )
    };
    let out_matrices = |first: usize, images| {
        matrices(
            batch_of(
                images,
                groups,
                [out_channels * pixels, og * pixels],
                first * out_channels * pixels,
            ),
            pixels,
            1,
        )
    };
    let layout = &input.layout;
    let strides = layout.strides();
    let one_by_one = spec.kernel_height == 1
        && spec.kernel_width == 1
        && spec.stride == [1, 1]
        && [spec.pad_top, spec.pad_bottom, spec.pad_left, spec.pad_right] == [0; 4];
    if let (true, Some(pixel_stride)) = (one_by_one, flat_stride(layout, 2..4)) {
        // The input is the columns already: channels × pixels per image and group.
        let per_group = spec.in_channels / groups;
        let columns = matrices(
            batch_of(batch, groups, [strides[0], per_group * strides[1]], layout.offset()),
            strides[1],
            pixel_stride,
        );
        ops.gemm(
            (og, k, pixels),
            View::new(&*weight_buffer, weight_matrices(batch)),
            View::new(input.buffer, columns),
            beta,
            ViewMut::new(&mut out, out_matrices(0, batch)),
        )?;
        return Ok(out);
    }
    let image_len = sizes.rows * pixels;
    let chunk = sizes.images_per_chunk(batch, image_len);
    let mut columns = ops.uninit(chunk * image_len)?;
    for first in (0..batch).step_by(chunk) {
        let images = chunk.min(batch - first);
        ops.im2col(spec, &input, (first, images), &mut columns, (image_len, pixels))?;
        let column_matrices = matrices(batch_of(images, groups, [image_len, k * pixels], 0), pixels, 1);
        ops.gemm(
            (og, k, pixels),
            View::new(&*weight_buffer, weight_matrices(images)),
            View::new(&columns, column_matrices),
            beta,
            ViewMut::new(&mut out, out_matrices(first, images)),
        )?;
    }
    Ok(out)
}

/// [`Conv2dKernel::conv2d_backward_input`] after the buffers' device was checked.
pub(crate) fn backward_input<E: Dtype, O: ConvOps<E>>(
    ops: &O,
    spec: &Conv2dSpec,
    weight: View<'_, O::Buffer>,
    grad_output: &O::Buffer,
    mut grad_input: ViewMut<'_, O::Buffer>,
) -> Result<(), Error> {
    spec.check()?;
    spec.check_operand("weight", &weight, &spec.weight_dims())?;
    spec.check_operand("input's gradient", &grad_input.as_view(), &spec.input_dims())?;
    check_grad_output(OP, &spec.output_dims(), grad_output.buffer_length())?;
    let sizes = Sizes::of(spec);
    if grad_output.buffer_length() == 0 || grad_input.layout.num_elements() == 0 {
        return Ok(());
    }
    let (batch, out_channels, pixels) = (spec.batch, spec.out_channels, sizes.pixels);
    let (groups, og, k) = (sizes.groups, sizes.outputs_per_group, sizes.group_rows);
    let WeightMatrix {
        buffer: weight_buffer,
        row_stride: weight_rows,
        column_stride: weight_columns,
        offset: weight_offset,
    } = weight_matrix(ops, &weight)?;
    let image_len = sizes.rows * pixels;
    let chunk = sizes.images_per_chunk(batch, image_len);
    let mut columns = ops.uninit(chunk * image_len)?;
    for first in (0..batch).step_by(chunk) {
        let images = chunk.min(batch - first);
        // columns[n, g] = W_gᵀ · grad_out[n, g]: the transposed filters, k × og.
        let transposed_weight = matrices(
            batch_of(images, groups, [0, og * weight_rows], weight_offset),
            weight_columns,
            weight_rows,
        );
        let grads = matrices(
            batch_of(
                images,
                groups,
                [out_channels * pixels, og * pixels],
                first * out_channels * pixels,
            ),
            pixels,
            1,
        );
        let column_matrices = matrices(batch_of(images, groups, [image_len, k * pixels], 0), pixels, 1);
        ops.gemm(
            (k, og, pixels),
            View::new(&*weight_buffer, transposed_weight),
            View::new(grad_output, grads),
            E::ZERO,
            ViewMut::new(&mut columns, column_matrices),
        )?;
        ops.col2im(spec, &columns, (first, images), &mut grad_input)?;
    }
    Ok(())
}

/// Where the weight's gradient is summed: straight into its buffer through its layout
/// (the column stride of its filters), which the products add to, where that layout
/// makes matrices addressing each element once; else into a dense sum, added through
/// the layout at the end.
enum WeightGradient<B> {
    Direct(usize),
    Dense(B),
}

/// [`Conv2dKernel::conv2d_backward_weight`] after the buffers' device was checked.
pub(crate) fn backward_weight<E: Dtype, O: ConvOps<E>>(
    ops: &O,
    spec: &Conv2dSpec,
    input: View<'_, O::Buffer>,
    grad_output: &O::Buffer,
    grad_weight: ViewMut<'_, O::Buffer>,
) -> Result<(), Error> {
    spec.check()?;
    spec.check_operand("input", &input, &spec.input_dims())?;
    spec.check_operand("weight's gradient", &grad_weight.as_view(), &spec.weight_dims())?;
    check_grad_output(OP, &spec.output_dims(), grad_output.buffer_length())?;
    let sizes = Sizes::of(spec);
    if grad_output.buffer_length() == 0 || grad_weight.layout.num_elements() == 0 {
        return Ok(());
    }
    let (batch, out_channels, pixels) = (spec.batch, spec.out_channels, sizes.pixels);
    let (groups, og, k) = (sizes.groups, sizes.outputs_per_group, sizes.group_rows);
    let chunk = sizes.images_per_chunk(batch, (sizes.rows + out_channels) * pixels);
    let mut columns = ops.uninit(chunk * sizes.rows * pixels)?;
    let mut regrouped = ops.uninit(chunk * out_channels * pixels)?;
    let grad_layout = grad_weight.layout;
    let mut target = match flat_stride(&grad_layout, 1..4) {
        Some(column_stride) if grad_layout.has_unique_offsets() => WeightGradient::Direct(column_stride),
        _ => WeightGradient::Dense(ops.uninit(out_channels * k)?),
    };
    let grad_weight = grad_weight.buffer;
    for first in (0..batch).step_by(chunk) {
        let images = chunk.min(batch - first);
        let span = images * pixels;
        // The chunk's images side by side: row r of image n from r·span + n·pixels.
        ops.im2col(spec, &input, (first, images), &mut columns, (pixels, span))?;
        ops.regroup(grad_output, (first, images), out_channels, pixels, &mut regrouped)?;
        // dW_g (og × k) += grad_out_g (og × span) · columns_gᵀ (span × k).
        let grads = matrices(Layout::from_parts(&[groups], &[og * span]), span, 1);
        let transposed_columns = matrices(Layout::from_parts(&[groups], &[k * span]), 1, span);
        let (out, out_layout, beta) = match &mut target {
            WeightGradient::Direct(column_stride) => {
                let rows = grad_layout.strides()[0];
                let layout = matrices(
                    Layout::from_parts(&[groups], &[og * rows]).with_offset(grad_layout.offset()),
                    rows,
                    *column_stride,
                );
                (&mut *grad_weight, layout, E::ONE)
            }
            WeightGradient::Dense(dense) => {
                let beta = if first == 0 { E::ZERO } else { E::ONE };
                (dense, matrices(Layout::from_parts(&[groups], &[og * k]), k, 1), beta)
            }
        };
        ops.gemm(
            (og, span, k),
            View::new(&regrouped, grads),
            View::new(&columns, transposed_columns),
            beta,
            ViewMut::new(out, out_layout),
        )?;
    }
    if let WeightGradient::Dense(dense) = &target {
        ops.accumulate(dense, grad_weight, &grad_layout)?;
    }
    Ok(())
}

/// [`Conv2dKernel::conv2d_backward_bias`] after the buffers' device was checked.
pub(crate) fn backward_bias<E: Dtype, O: ConvOps<E>>(
    ops: &O,
    spec: &Conv2dSpec,
    grad_output: &O::Buffer,
    grad_bias: ViewMut<'_, O::Buffer>,
) -> Result<(), Error> {
    spec.check()?;
    spec.check_operand("bias's gradient", &grad_bias.as_view(), &[spec.out_channels])?;
    check_grad_output(OP, &spec.output_dims(), grad_output.buffer_length())?;
    if grad_output.buffer_length() == 0 {
        // An empty batch adds zeros; no channels, nothing.
        return Ok(());
    }
    let pixels = spec.out_height * spec.out_width;
    ops.bias_grad(grad_output, (spec.batch, spec.out_channels, pixels), grad_bias)
}

/// [`batch`] over `(images, groups)`.
fn batch_of(images: usize, groups: usize, strides: [usize; 2], offset: usize) -> Layout {
    batch([images, groups], strides, offset)
}

impl<E: Dtype + CudaElement> ConvOps<E> for Cuda {
    type Buffer = CudaBuffer<E>;

    fn uninit(&self, len: usize) -> Result<CudaBuffer<E>, Error> {
        CudaBuffer::uninit(&self.gpu, len)
    }

    fn gemm(
        &self,
        dims: (usize, usize, usize),
        lhs: View<'_, CudaBuffer<E>, MatrixLayout>,
        rhs: View<'_, CudaBuffer<E>, MatrixLayout>,
        beta: E,
        out: ViewMut<'_, CudaBuffer<E>, MatrixLayout>,
    ) -> Result<(), Error> {
        Cuda::gemm(self, dims, lhs, rhs, beta, out)
    }

    fn gather(&self, source: &CudaBuffer<E>, layout: &Layout) -> Result<CudaBuffer<E>, Error> {
        self.gemm_gather(source, layout)
    }

    fn im2col(
        &self,
        spec: &Conv2dSpec,
        input: &View<'_, CudaBuffer<E>>,
        (first, images): (usize, usize),
        columns: &mut CudaBuffer<E>,
        (image_stride, row_stride): (usize, usize),
    ) -> Result<(), Error> {
        let sizes = Sizes::of(spec);
        let items = (images * sizes.rows * sizes.pixels) as u64;
        let (Some(source), Some(target)) = (input.buffer.allocation(), columns.allocation_mut()) else {
            return Ok(());
        };
        if items == 0 {
            return Ok(());
        }
        let function = self.gpu.function(&CONV, "conv_im2col", E::C_TYPE)?;
        let (layout, geometry) = (KernelLayout::from(&input.layout), ConvGeometry::of(spec));
        let (first, images, image_stride, row_stride) =
            (first as u64, images as u64, image_stride as u64, row_stride as u64);
        let mut launch = self.gpu.stream.launch_builder(&function);
        launch
            .arg(&source.slice)
            .arg(&layout)
            .arg(&geometry)
            .arg(&first)
            .arg(&images)
            .arg(&mut target.slice)
            .arg(&image_stride)
            .arg(&row_stride);
        // SAFETY: `conv_im2col(const T *input, Layout layout, ConvGeometry g, u64
        // first_image, u64 images, T *columns, u64 image_stride, u64 row_stride)` was
        // compiled with T = E::C_TYPE, the C name of E::Stored, the slices' element;
        // KernelLayout and ConvGeometry are the C structs. It reads the input at
        // positions (n, c, y, x) with n < first + images ≤ batch and (y, x) inside the
        // input, which `forward` checked lie inside its buffer (check_operand against
        // the checked spec's dims); it writes columns up to (images - 1)·image_stride +
        // (rows - 1)·row_stride + pixels - 1, inside the workspace the caller sized so.
        unsafe { launch.launch(grid_for(items)) }.map_err(|e| self.gpu.error("launching conv_im2col", &e))?;
        Ok(())
    }

    fn col2im(
        &self,
        spec: &Conv2dSpec,
        columns: &CudaBuffer<E>,
        (first, images): (usize, usize),
        grad: &mut ViewMut<'_, CudaBuffer<E>>,
    ) -> Result<(), Error> {
        let sizes = Sizes::of(spec);
        let items = (images * spec.in_channels * spec.in_height * spec.in_width) as u64;
        let (Some(source), Some(target)) = (columns.allocation(), grad.buffer.allocation_mut()) else {
            return Ok(());
        };
        if items == 0 {
            return Ok(());
        }
        let function = self.gpu.function(&CONV, "conv_col2im", E::C_TYPE)?;
        let (layout, geometry) = (KernelLayout::from(&grad.layout), ConvGeometry::of(spec));
        let atomic = atomic(&grad.layout);
        let (image_stride, row_stride) = ((sizes.rows * sizes.pixels) as u64, sizes.pixels as u64);
        let (first, images) = (first as u64, images as u64);
        let mut launch = self.gpu.stream.launch_builder(&function);
        launch
            .arg(&source.slice)
            .arg(&image_stride)
            .arg(&row_stride)
            .arg(&geometry)
            .arg(&first)
            .arg(&images)
            .arg(&mut target.slice)
            .arg(&layout)
            .arg(&atomic);
        // SAFETY: `conv_col2im(const T *columns, u64 image_stride, u64 row_stride,
        // ConvGeometry g, u64 first_image, u64 images, T *grad, Layout layout, int
        // atomic)` was compiled with T = E::C_TYPE, the C name of E::Stored, the
        // slices' element; the structs are the C ones. It reads columns of `images`
        // images of rows·pixels entries, which the caller's workspace holds, and adds
        // to grad at positions (n, c, y, x) inside the input's dims, which
        // `backward_input` checked lie inside its buffer; atomically where the layout
        // repeats elements.
        unsafe { launch.launch(grid_for(items)) }.map_err(|e| self.gpu.error("launching conv_col2im", &e))?;
        Ok(())
    }

    fn fill_bias(
        &self,
        out: &mut CudaBuffer<E>,
        bias: &View<'_, CudaBuffer<E>>,
        channels: usize,
        pixels: usize,
    ) -> Result<(), Error> {
        let items = out.len() as u64;
        let (Some(target), Some(source)) = (out.allocation_mut(), bias.buffer.allocation()) else {
            return Ok(());
        };
        let function = self.gpu.function(&CONV, "conv_fill_bias", E::C_TYPE)?;
        let layout = KernelLayout::from(&bias.layout);
        let (channels, pixels) = (channels as u64, pixels as u64);
        let mut launch = self.gpu.stream.launch_builder(&function);
        launch
            .arg(&mut target.slice)
            .arg(&source.slice)
            .arg(&layout)
            .arg(&channels)
            .arg(&pixels)
            .arg(&items);
        // SAFETY: `conv_fill_bias(T *out, const T *bias, Layout layout, u64 channels,
        // u64 pixels, u64 len)` was compiled with T = E::C_TYPE, the C name of
        // E::Stored, the slices' element; KernelLayout is `struct Layout`. It writes
        // out[0..len], the buffer's length, and reads the bias at offset + o·stride for
        // o < channels, which check_operand checked lie inside its buffer.
        unsafe { launch.launch(grid_for(items)) }.map_err(|e| self.gpu.error("launching conv_fill_bias", &e))?;
        Ok(())
    }

    fn regroup(
        &self,
        grad_output: &CudaBuffer<E>,
        (first, images): (usize, usize),
        channels: usize,
        pixels: usize,
        out: &mut CudaBuffer<E>,
    ) -> Result<(), Error> {
        let items = (channels * images * pixels) as u64;
        let (Some(source), Some(target)) = (grad_output.allocation(), out.allocation_mut()) else {
            return Ok(());
        };
        let function = self.gpu.function(&CONV, "conv_regroup", E::C_TYPE)?;
        let (first, images, channels, pixels) = (first as u64, images as u64, channels as u64, pixels as u64);
        let mut launch = self.gpu.stream.launch_builder(&function);
        launch
            .arg(&source.slice)
            .arg(&first)
            .arg(&images)
            .arg(&channels)
            .arg(&pixels)
            .arg(&mut target.slice);
        // SAFETY: `conv_regroup(const T *grad_output, u64 first_image, u64 images, u64
        // channels, u64 pixels, T *out)` was compiled with T = E::C_TYPE, the C name of
        // E::Stored, the slices' element. It reads grad_output below (first + images)·
        // channels·pixels ≤ its checked length, and writes out[0 .. channels·images·
        // pixels], which the caller's workspace holds.
        unsafe { launch.launch(grid_for(items)) }.map_err(|e| self.gpu.error("launching conv_regroup", &e))?;
        Ok(())
    }

    fn accumulate(&self, source: &CudaBuffer<E>, target: &mut CudaBuffer<E>, layout: &Layout) -> Result<(), Error> {
        let items = layout.num_elements() as u64;
        let (Some(source), Some(target)) = (source.allocation(), target.allocation_mut()) else {
            return Ok(());
        };
        let function = self.gpu.function(&CONV, "conv_accumulate", E::C_TYPE)?;
        let (kernel_layout, atomic) = (KernelLayout::from(layout), atomic(layout));
        let mut launch = self.gpu.stream.launch_builder(&function);
        launch
            .arg(&source.slice)
            .arg(&mut target.slice)
            .arg(&kernel_layout)
            .arg(&items)
            .arg(&atomic);
        // SAFETY: `conv_accumulate(const T *src, T *dst, Layout layout, u64 len, int
        // atomic)` was compiled with T = E::C_TYPE, the C name of E::Stored, the
        // slices' element; KernelLayout is `struct Layout`. It reads src[0..len] (the
        // caller's dense buffer of the layout's element count) and adds to dst at the
        // layout's offsets, which the caller checked lie inside the buffer; atomically
        // where they repeat.
        unsafe { launch.launch(grid_for(items)) }.map_err(|e| self.gpu.error("launching conv_accumulate", &e))?;
        Ok(())
    }

    fn bias_grad(
        &self,
        grad_output: &CudaBuffer<E>,
        (batch, channels, pixels): (usize, usize, usize),
        grad_bias: ViewMut<'_, CudaBuffer<E>>,
    ) -> Result<(), Error> {
        let layout = grad_bias.layout;
        let (Some(source), Some(target)) = (grad_output.allocation(), grad_bias.buffer.allocation_mut()) else {
            return Ok(());
        };
        let function = self.gpu.function(&CONV, "conv_bias_grad", E::C_TYPE)?;
        let (kernel_layout, atomic) = (KernelLayout::from(&layout), atomic(&layout));
        let (batch, channels, pixels) = (batch as u64, channels as u64, pixels as u64);
        let mut launch = self.gpu.stream.launch_builder(&function);
        launch
            .arg(&source.slice)
            .arg(&batch)
            .arg(&channels)
            .arg(&pixels)
            .arg(&mut target.slice)
            .arg(&kernel_layout)
            .arg(&atomic);
        // SAFETY: `conv_bias_grad(const T *grad_output, u64 batch, u64 channels, u64
        // pixels, T *grad_bias, Layout layout, int atomic)` was compiled with T =
        // E::C_TYPE, the C name of E::Stored, the slices' element; KernelLayout is
        // `struct Layout`. It reads grad_output[0 .. batch·channels·pixels], its checked
        // length, and adds to grad_bias at offset + o·stride for o < channels, which
        // check_operand checked lie inside the buffer. Blocks of 256 threads, as the
        // kernel's shared array and halving reduction assume (grid_for's block size).
        unsafe { launch.launch(grid_for(channels * 256)) }
            .map_err(|e| self.gpu.error("launching conv_bias_grad", &e))?;
        Ok(())
    }
}

/// Convolutions by im2col and cuBLAS products over chunks of images; gradients are added
/// through their operand's layout, atomically where it repeats elements.
impl<E: Dtype + CudaElement> Conv2dKernel<E> for Cuda {
    fn conv2d_forward(
        &self,
        spec: &Conv2dSpec,
        input: View<'_, CudaBuffer<E>>,
        weight: View<'_, CudaBuffer<E>>,
        bias: Option<View<'_, CudaBuffer<E>>>,
    ) -> Result<CudaBuffer<E>, Error> {
        self.check_buffer(input.buffer, OP, "input")?;
        self.check_buffer(weight.buffer, OP, "weight")?;
        if let Some(bias) = &bias {
            self.check_buffer(bias.buffer, OP, "bias")?;
        }
        forward(self, spec, input, weight, bias)
    }

    fn conv2d_backward_input(
        &self,
        spec: &Conv2dSpec,
        weight: View<'_, CudaBuffer<E>>,
        grad_output: &CudaBuffer<E>,
        grad_input: ViewMut<'_, CudaBuffer<E>>,
    ) -> Result<(), Error> {
        self.check_buffer(weight.buffer, OP, "weight")?;
        self.check_buffer(grad_output, OP, "grad_output")?;
        self.check_buffer(grad_input.buffer, OP, "grad_input")?;
        backward_input(self, spec, weight, grad_output, grad_input)
    }

    fn conv2d_backward_weight(
        &self,
        spec: &Conv2dSpec,
        input: View<'_, CudaBuffer<E>>,
        grad_output: &CudaBuffer<E>,
        grad_weight: ViewMut<'_, CudaBuffer<E>>,
    ) -> Result<(), Error> {
        self.check_buffer(input.buffer, OP, "input")?;
        self.check_buffer(grad_output, OP, "grad_output")?;
        self.check_buffer(grad_weight.buffer, OP, "grad_weight")?;
        backward_weight(self, spec, input, grad_output, grad_weight)
    }

    fn conv2d_backward_bias(
        &self,
        spec: &Conv2dSpec,
        grad_output: &CudaBuffer<E>,
        grad_bias: ViewMut<'_, CudaBuffer<E>>,
    ) -> Result<(), Error> {
        self.check_buffer(grad_output, OP, "grad_output")?;
        self.check_buffer(grad_bias.buffer, OP, "grad_bias")?;
        backward_bias(self, spec, grad_output, grad_bias)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::device::test_gpu;
    use crate::emulation::{kernel, library};
    use crate::ops::matmul::GEMM;
    use ferrograd_cpu::{Cpu, CpuBuffer};
    use ferrograd_device::Storage;
    use ferrograd_device::ops::conv::Padding;

    /// The convolution's kernels compiled for the CPU (see `crate::emulation`), with
    /// `Cpu`'s buffers and the product's planner over an emulated cuBLAS: the
    /// orchestration of this module run without a GPU.
    /// Each kernel's Rust type mirrors its launch's argument list above.
    pub(crate) struct Emulated {
        cpu: Cpu,
        conv: &'static libloading::Library,
        gemm: &'static libloading::Library,
    }

    impl Emulated {
        pub(crate) fn new() -> Option<Self> {
            Some(Self {
                cpu: Cpu::default(),
                conv: library(&CONV, "double")?,
                gemm: library(&GEMM, "double")?,
            })
        }
    }

    type Buffer = CpuBuffer<f64>;

    impl ConvOps<f64> for Emulated {
        type Buffer = Buffer;

        fn uninit(&self, len: usize) -> Result<Buffer, Error> {
            // NaN, so that a value read before it is written shows.
            self.cpu.try_alloc_filled(len, f64::NAN)
        }

        fn gemm(
            &self,
            dims: (usize, usize, usize),
            lhs: View<'_, Buffer, MatrixLayout>,
            rhs: View<'_, Buffer, MatrixLayout>,
            beta: f64,
            out: ViewMut<'_, Buffer, MatrixLayout>,
        ) -> Result<(), Error> {
            // Through the product's planner, with cuBLAS emulated.
            crate::ops::matmul::tests::emulated_gemm(dims, lhs, rhs, beta, out)
        }

        fn gather(&self, source: &Buffer, layout: &Layout) -> Result<Buffer, Error> {
            let mut dense = self.uninit(layout.num_elements())?;
            // SAFETY: gemm_gather's signature with T = double.
            let f: unsafe extern "C" fn(*const f64, KernelLayout, *mut f64, u64) =
                unsafe { kernel(self.gemm, "gemm_gather") };
            // SAFETY: the layout lies inside `source` (checked by the caller), `dense`
            // holds its elements.
            unsafe {
                f(
                    source.as_ptr(),
                    KernelLayout::from(layout),
                    dense.as_mut_ptr(),
                    layout.num_elements() as u64,
                )
            };
            Ok(dense)
        }

        fn im2col(
            &self,
            spec: &Conv2dSpec,
            input: &View<'_, Buffer>,
            (first, images): (usize, usize),
            columns: &mut Buffer,
            (image_stride, row_stride): (usize, usize),
        ) -> Result<(), Error> {
            type F = unsafe extern "C" fn(*const f64, KernelLayout, ConvGeometry, u64, u64, *mut f64, u64, u64);
            // SAFETY: conv_im2col's signature with T = double.
            let f: F = unsafe { kernel(self.conv, "conv_im2col") };
            // SAFETY: as the launch's.
            unsafe {
                f(
                    input.buffer.as_ptr(),
                    KernelLayout::from(&input.layout),
                    ConvGeometry::of(spec),
                    first as u64,
                    images as u64,
                    columns.as_mut_ptr(),
                    image_stride as u64,
                    row_stride as u64,
                )
            };
            Ok(())
        }

        fn col2im(
            &self,
            spec: &Conv2dSpec,
            columns: &Buffer,
            (first, images): (usize, usize),
            grad: &mut ViewMut<'_, Buffer>,
        ) -> Result<(), Error> {
            type F = unsafe extern "C" fn(*const f64, u64, u64, ConvGeometry, u64, u64, *mut f64, KernelLayout, i32);
            let sizes = Sizes::of(spec);
            // SAFETY: conv_col2im's signature with T = double.
            let f: F = unsafe { kernel(self.conv, "conv_col2im") };
            // SAFETY: as the launch's.
            unsafe {
                f(
                    columns.as_ptr(),
                    (sizes.rows * sizes.pixels) as u64,
                    sizes.pixels as u64,
                    ConvGeometry::of(spec),
                    first as u64,
                    images as u64,
                    grad.buffer.as_mut_ptr(),
                    KernelLayout::from(&grad.layout),
                    atomic(&grad.layout),
                )
            };
            Ok(())
        }

        fn fill_bias(
            &self,
            out: &mut Buffer,
            bias: &View<'_, Buffer>,
            channels: usize,
            pixels: usize,
        ) -> Result<(), Error> {
            type F = unsafe extern "C" fn(*mut f64, *const f64, KernelLayout, u64, u64, u64);
            // SAFETY: conv_fill_bias's signature with T = double.
            let f: F = unsafe { kernel(self.conv, "conv_fill_bias") };
            let len = out.len() as u64;
            // SAFETY: as the launch's.
            unsafe {
                f(
                    out.as_mut_ptr(),
                    bias.buffer.as_ptr(),
                    KernelLayout::from(&bias.layout),
                    channels as u64,
                    pixels as u64,
                    len,
                )
            };
            Ok(())
        }

        fn regroup(
            &self,
            grad_output: &Buffer,
            (first, images): (usize, usize),
            channels: usize,
            pixels: usize,
            out: &mut Buffer,
        ) -> Result<(), Error> {
            type F = unsafe extern "C" fn(*const f64, u64, u64, u64, u64, *mut f64);
            // SAFETY: conv_regroup's signature with T = double.
            let f: F = unsafe { kernel(self.conv, "conv_regroup") };
            // SAFETY: as the launch's.
            unsafe {
                f(
                    grad_output.as_ptr(),
                    first as u64,
                    images as u64,
                    channels as u64,
                    pixels as u64,
                    out.as_mut_ptr(),
                )
            };
            Ok(())
        }

        fn accumulate(&self, source: &Buffer, target: &mut Buffer, layout: &Layout) -> Result<(), Error> {
            type F = unsafe extern "C" fn(*const f64, *mut f64, KernelLayout, u64, i32);
            // SAFETY: conv_accumulate's signature with T = double.
            let f: F = unsafe { kernel(self.conv, "conv_accumulate") };
            // SAFETY: as the launch's.
            unsafe {
                f(
                    source.as_ptr(),
                    target.as_mut_ptr(),
                    KernelLayout::from(layout),
                    layout.num_elements() as u64,
                    atomic(layout),
                )
            };
            Ok(())
        }

        fn bias_grad(
            &self,
            grad_output: &Buffer,
            (batch, channels, pixels): (usize, usize, usize),
            grad_bias: ViewMut<'_, Buffer>,
        ) -> Result<(), Error> {
            type F = unsafe extern "C" fn(*const f64, u64, u64, u64, *mut f64, KernelLayout, i32);
            // SAFETY: conv_bias_grad's signature with T = double.
            let f: F = unsafe { kernel(self.conv, "conv_bias_grad") };
            // SAFETY: as the launch's.
            unsafe {
                f(
                    grad_output.as_ptr(),
                    batch as u64,
                    channels as u64,
                    pixels as u64,
                    grad_bias.buffer.as_mut_ptr(),
                    KernelLayout::from(&grad_bias.layout),
                    atomic(&grad_bias.layout),
                )
            };
            Ok(())
        }
    }

    /// How an operand of dims `[a, b, c, d]` is laid out in a test.
    #[derive(Clone, Copy, Debug)]
    pub(crate) enum Kind {
        /// Row-major from offset 0.
        Contiguous,
        /// Axis 1 innermost (channels-last storage), from offset 3.
        ChannelsLast,
        /// One image (axis 0) repeated: stride 0.
        Broadcast,
        /// Every axis twice as far apart, from offset 1: neither rows nor columns adjacent.
        Spread,
    }

    pub(crate) const KINDS: [Kind; 4] = [Kind::Contiguous, Kind::ChannelsLast, Kind::Broadcast, Kind::Spread];

    /// The layout of `kind` for `dims`, and the buffer length it needs.
    pub(crate) fn layout(dims: [usize; 4], kind: Kind) -> (Layout, usize) {
        let [a, b, c, d] = dims;
        let layout = match kind {
            Kind::Contiguous => Layout::from_parts(&dims, &[b * c * d, c * d, d, 1]),
            Kind::ChannelsLast => Layout::from_parts(&dims, &[b * c * d, 1, d * b, b]).with_offset(3),
            Kind::Broadcast => Layout::from_parts(&dims, &[0, c * d, d, 1]),
            Kind::Spread => Layout::from_parts(&dims, &[2 * b * c * d, 2 * c * d, 2 * d, 2]).with_offset(1),
        };
        let _ = a;
        (layout, layout.min_buffer_len().max(1))
    }

    pub(crate) fn values(len: usize, seed: u64) -> Vec<f64> {
        (0..len as u64)
            .map(|i| (((i * 2_654_435_761 + seed * 97) % 1000) as f64) / 250.0 - 2.0)
            .collect()
    }

    fn specs() -> Vec<Conv2dSpec> {
        let s = |input, weight, stride, padding, dilation, groups| {
            Conv2dSpec::new(input, weight, stride, padding, dilation, groups).unwrap()
        };
        vec![
            s([2, 3, 7, 6], [4, 3, 3, 3], [1, 1], Padding::Valid, [1, 1], 1),
            s([3, 4, 9, 8], [6, 2, 3, 2], [2, 3], Padding::Symmetric(1, 2), [1, 1], 2),
            s([2, 2, 8, 9], [2, 2, 4, 3], [1, 1], Padding::Same, [2, 1], 1),
            s(
                [2, 3, 6, 7],
                [3, 1, 3, 3],
                [2, 1],
                Padding::Explicit {
                    top: 2,
                    bottom: 0,
                    left: 1,
                    right: 3,
                },
                [1, 2],
                3,
            ),
            // 1×1 at stride 1: the input read in place.
            s([3, 4, 5, 3], [6, 4, 1, 1], [1, 1], Padding::Valid, [1, 1], 1),
            s([2, 4, 5, 3], [4, 2, 1, 1], [1, 1], Padding::Valid, [1, 1], 2),
            // Stride larger than the kernel: pixels no tap reads.
            s([2, 1, 7, 7], [2, 1, 2, 2], [3, 3], Padding::Valid, [1, 1], 1),
            // Small images: several per chunk (of the tests' small workspace), with
            // groups, over several chunks.
            s([20, 4, 3, 3], [4, 2, 2, 2], [1, 1], Padding::Valid, [1, 1], 2),
            // Depthwise with a channel multiplier, padded.
            s([6, 3, 4, 4], [6, 1, 3, 3], [1, 1], Padding::Symmetric(1, 1), [1, 1], 3),
        ]
    }

    fn assert_close(actual: &[f64], expected: &[f64], what: &str) {
        assert_eq!(actual.len(), expected.len(), "{what}");
        for (i, (a, e)) in actual.iter().zip(expected).enumerate() {
            assert!(
                (a - e).abs() <= 1e-9 * e.abs().max(1.0),
                "{what}: element {i}: {a} vs {e}"
            );
        }
    }

    /// Every pass of every spec, with every kind of operand layout, through the kernels
    /// compiled for the CPU, against `Cpu`'s convolution.
    #[test]
    fn the_emulated_kernels_match_the_cpu() {
        let Some(emulated) = Emulated::new() else { return };
        let cpu = Cpu::default();
        for spec in specs() {
            for (kind_index, kind) in KINDS.into_iter().enumerate() {
                let what = format!("{spec:?} with {kind:?} operands");
                let (input_layout, input_len) = layout(spec.input_dims(), kind);
                let weight_kind = KINDS[(kind_index + 1) % KINDS.len()];
                let (weight_layout, weight_len) = layout(spec.weight_dims(), weight_kind);
                let input = cpu.try_from_host(values(input_len, 1)).unwrap();
                let weight = cpu.try_from_host(values(weight_len, 2)).unwrap();
                let bias_layout = Layout::from_parts(&[spec.out_channels], &[2]).with_offset(1);
                let bias = cpu.try_from_host(values(2 * spec.out_channels + 1, 3)).unwrap();
                for with_bias in [false, true] {
                    let bias = with_bias.then(|| View::new(&bias, bias_layout));
                    let expected = cpu
                        .conv2d_forward(
                            &spec,
                            View::new(&input, input_layout),
                            View::new(&weight, weight_layout),
                            bias,
                        )
                        .unwrap();
                    let actual = forward(
                        &emulated,
                        &spec,
                        View::new(&input, input_layout),
                        View::new(&weight, weight_layout),
                        bias,
                    )
                    .unwrap();
                    assert_close(&actual, &expected, &format!("forward of {what}, bias {with_bias}"));
                }
                let grad_output = cpu
                    .try_from_host(values(spec.output_dims().iter().product(), 4))
                    .unwrap();
                // The input's gradient, through the input's layout (repeating elements
                // for a broadcast input).
                let mut expected = cpu.try_from_host(values(input_len, 5)).unwrap();
                let mut actual = expected.clone();
                cpu.conv2d_backward_input(
                    &spec,
                    View::new(&weight, weight_layout),
                    &grad_output,
                    ViewMut::new(&mut expected, input_layout),
                )
                .unwrap();
                backward_input(
                    &emulated,
                    &spec,
                    View::new(&weight, weight_layout),
                    &grad_output,
                    ViewMut::new(&mut actual, input_layout),
                )
                .unwrap();
                assert_close(&actual, &expected, &format!("input gradient of {what}"));
                let mut expected = cpu.try_from_host(values(weight_len, 6)).unwrap();
                let mut actual = expected.clone();
                cpu.conv2d_backward_weight(
                    &spec,
                    View::new(&input, input_layout),
                    &grad_output,
                    ViewMut::new(&mut expected, weight_layout),
                )
                .unwrap();
                backward_weight(
                    &emulated,
                    &spec,
                    View::new(&input, input_layout),
                    &grad_output,
                    ViewMut::new(&mut actual, weight_layout),
                )
                .unwrap();
                assert_close(&actual, &expected, &format!("weight gradient of {what}"));
                for bias_layout in [bias_layout, Layout::from_parts(&[spec.out_channels], &[0])] {
                    let mut expected = cpu.try_from_host(values(2 * spec.out_channels + 1, 7)).unwrap();
                    let mut actual = expected.clone();
                    cpu.conv2d_backward_bias(&spec, &grad_output, ViewMut::new(&mut expected, bias_layout))
                        .unwrap();
                    backward_bias(&emulated, &spec, &grad_output, ViewMut::new(&mut actual, bias_layout)).unwrap();
                    assert_close(&actual, &expected, &format!("bias gradient of {what}"));
                }
            }
        }
    }

    /// The same on the GPU, in f32, when there is one.
    #[test]
    fn the_gpu_matches_the_cpu() {
        let Some(gpu) = test_gpu() else { return };
        let cpu = Cpu::default();
        let close = |actual: Vec<f32>, expected: &[f32], what: &str| {
            for (i, (a, e)) in actual.iter().zip(expected).enumerate() {
                assert!(
                    (a - e).abs() <= 1e-4 * e.abs().max(1.0),
                    "{what}: element {i}: {a} vs {e}"
                );
            }
        };
        let f32s = |len, seed| values(len, seed).into_iter().map(|x| x as f32).collect::<Vec<f32>>();
        for spec in specs() {
            for kind in KINDS {
                let what = format!("{spec:?} with {kind:?} operands");
                let (input_layout, input_len) = layout(spec.input_dims(), kind);
                let (weight_layout, weight_len) = layout(spec.weight_dims(), kind);
                let (input_cpu, weight_cpu) = (f32s(input_len, 1), f32s(weight_len, 2));
                let input_gpu = gpu.try_from_host(input_cpu.clone()).unwrap();
                let weight_gpu = gpu.try_from_host(weight_cpu.clone()).unwrap();
                let (input_cpu, weight_cpu) = (
                    cpu.try_from_host(input_cpu).unwrap(),
                    cpu.try_from_host(weight_cpu).unwrap(),
                );
                let bias_layout = Layout::from_parts(&[spec.out_channels], &[1]);
                let bias_cpu = cpu.try_from_host(f32s(spec.out_channels, 3)).unwrap();
                let bias_gpu = gpu.try_from_host(f32s(spec.out_channels, 3)).unwrap();
                let expected = cpu
                    .conv2d_forward(
                        &spec,
                        View::new(&input_cpu, input_layout),
                        View::new(&weight_cpu, weight_layout),
                        Some(View::new(&bias_cpu, bias_layout)),
                    )
                    .unwrap();
                let actual = gpu
                    .conv2d_forward(
                        &spec,
                        View::new(&input_gpu, input_layout),
                        View::new(&weight_gpu, weight_layout),
                        Some(View::new(&bias_gpu, bias_layout)),
                    )
                    .unwrap();
                close(
                    gpu.try_to_host(&actual).unwrap(),
                    &expected,
                    &format!("forward of {what}"),
                );

                let grad = f32s(spec.output_dims().iter().product(), 4);
                let (grad_cpu, grad_gpu) = (
                    cpu.try_from_host(grad.clone()).unwrap(),
                    gpu.try_from_host(grad).unwrap(),
                );
                let mut expected = cpu.try_from_host(f32s(input_len, 5)).unwrap();
                let mut actual = gpu.try_from_host(f32s(input_len, 5)).unwrap();
                cpu.conv2d_backward_input(
                    &spec,
                    View::new(&weight_cpu, weight_layout),
                    &grad_cpu,
                    ViewMut::new(&mut expected, input_layout),
                )
                .unwrap();
                gpu.conv2d_backward_input(
                    &spec,
                    View::new(&weight_gpu, weight_layout),
                    &grad_gpu,
                    ViewMut::new(&mut actual, input_layout),
                )
                .unwrap();
                close(
                    gpu.try_to_host(&actual).unwrap(),
                    &expected,
                    &format!("input gradient of {what}"),
                );
                let mut expected = cpu.try_from_host(f32s(weight_len, 6)).unwrap();
                let mut actual = gpu.try_from_host(f32s(weight_len, 6)).unwrap();
                cpu.conv2d_backward_weight(
                    &spec,
                    View::new(&input_cpu, input_layout),
                    &grad_cpu,
                    ViewMut::new(&mut expected, weight_layout),
                )
                .unwrap();
                gpu.conv2d_backward_weight(
                    &spec,
                    View::new(&input_gpu, input_layout),
                    &grad_gpu,
                    ViewMut::new(&mut actual, weight_layout),
                )
                .unwrap();
                close(
                    gpu.try_to_host(&actual).unwrap(),
                    &expected,
                    &format!("weight gradient of {what}"),
                );
                let mut expected = cpu.try_from_host(f32s(spec.out_channels, 7)).unwrap();
                let mut actual = gpu.try_from_host(f32s(spec.out_channels, 7)).unwrap();
                cpu.conv2d_backward_bias(&spec, &grad_cpu, ViewMut::new(&mut expected, bias_layout))
                    .unwrap();
                gpu.conv2d_backward_bias(&spec, &grad_gpu, ViewMut::new(&mut actual, bias_layout))
                    .unwrap();
                close(
                    gpu.try_to_host(&actual).unwrap(),
                    &expected,
                    &format!("bias gradient of {what}"),
                );
            }
        }
    }
}
