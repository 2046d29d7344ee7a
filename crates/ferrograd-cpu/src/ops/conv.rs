//! 2-d convolutions as im2col + GEMM, or, at stride 1 where our AVX-512 GEMM runs,
//! without im2col: the GEMM reads shifted windows of the input itself
//! ([`gemm_shifted`], see [`Windows`]), and the input's gradient is such a
//! convolution of the output's gradient ([`Geometry::transposed`]). On the conv
//! benchmark's (64, 4, 28, 28) Conv2d(4, 8, 4) that took the forward pass from 1.2×
//! PyTorch's time to 0.5× (1 thread).
//!
//! For each image and group, im2col copies the input pixels each output pixel reads
//! into a matrix of columns, `(C_IN/groups · KH · KW) × (OH · OW)`: row `(c, i, j)` holds,
//! for every output pixel, the input pixel that kernel tap `(i, j)` of channel `c`
//! meets (zero in the padding). The convolution is then one GEMM, weight × columns;
//! the input's gradient is weightᵀ × output gradient, scattered back by col2im; the
//! weight's gradient is output gradient × columnsᵀ, summed over the batch.
//!
//! The columns live in a workspace kept per thread and reused by every call (as the
//! GEMM keeps its pack buffers), so a training loop allocates none. A 1×1 convolution
//! with stride 1 and no padding over rows stored back to back needs no columns: the
//! input already is that matrix, and the GEMM reads it in place.
//!
//! Maps of at most 64 output pixels with many channels (a ResNet's later stages) take a
//! third path, [`conv_channel_lanes`]: output channels in the vector lanes rather than
//! pixels, over a padded channels-last copy of the input, skipping the taps that meet
//! only padding (see `Geometry::channel_lanes` for the measurements that drew the line).
//!
//! Batches are split across the thread pool, each share running im2col and its GEMMs
//! on its own images (the GEMMs then stay on that thread); a convolution too small to
//! pay for the split, or of one image, runs on the calling thread, where its GEMM may
//! use the pool itself.

use crate::gemm::{
    Batch, ChannelLanesShape, DepthwiseShape, GemmElement, MatrixMut, MatrixRef, Run, conv_channel_lanes, copy_rows,
    correlate, depthwise, depthwise_filter_grad, gemm, gemm_shifted_batch, shifted_available,
};
use crate::host::{Cpu, CpuBuffer};
use crate::threads::{for_each_chunk_mut, map_shares};
use ferrograd_device::ops::conv::check_grad_output;
use ferrograd_device::ops::conv::{Conv2dKernel, Conv2dSpec, Padding};
use ferrograd_device::{Dtype, Error, Layout, Storage, View, ViewMut};
use std::borrow::Cow;
use std::cell::RefCell;

/// Floating-point operations (2 · GEMM volume) of a whole convolution below which it
/// stays on one thread, as the GEMM's own threshold: handing a share to a worker costs
/// about a microsecond.
const PARALLEL_MIN_FLOPS: usize = 1 << 18;

/// Columns (output pixels) of an im2col product below which several images share
/// one product: 512 keeps the weight's packing and the GEMM's edge tiles a small
/// part of each, while the columns matrix stays within L2.
const COLUMNS_PER_PRODUCT: usize = 512;

/// Element types the convolution kernels handle, each with a per-thread workspace.
pub(crate) trait ConvElement: Dtype + GemmElement {
    /// Runs `f` on a workspace of `len` elements (contents unspecified), the calling
    /// thread's own, reused across calls.
    fn with_workspace<R>(len: usize, f: impl FnOnce(&mut [Self]) -> R) -> R;
}

macro_rules! conv_element {
    ($t:ty) => {
        impl ConvElement for $t {
            fn with_workspace<R>(len: usize, f: impl FnOnce(&mut [Self]) -> R) -> R {
                thread_local!(static WORKSPACE: RefCell<Vec<$t>> = const { RefCell::new(Vec::new()) });
                WORKSPACE.with(|workspace| match workspace.try_borrow_mut() {
                    Ok(mut workspace) => {
                        if workspace.len() < len {
                            workspace.resize(len, 0.0);
                        }
                        f(&mut workspace[..len])
                    }
                    // Only a convolution called from inside `f` finds it borrowed;
                    // nothing here does that, but a fresh buffer keeps it correct.
                    Err(_) => f(&mut vec![0.0; len]),
                })
            }
        }
    };
}

conv_element!(f32);
conv_element!(f64);

/// Where the elements of a rank-4 operand live: its offset and its strides.
#[derive(Clone, Copy, Debug)]
struct Strides4 {
    offset: usize,
    strides: [usize; 4],
}

impl Strides4 {
    fn of(layout: &Layout) -> Self {
        let s = layout.strides();
        Self {
            offset: layout.offset(),
            strides: [s[0], s[1], s[2], s[3]],
        }
    }

    /// Whether the strides are row-major for `dims` (ignoring axes of size 1), so the
    /// operand is one block of `dims`' element count starting at `offset`.
    fn is_row_major(&self, dims: [usize; 4]) -> bool {
        let mut step = 1;
        for axis in (0..4).rev() {
            if dims[axis] != 1 && self.strides[axis] != step {
                return false;
            }
            step *= dims[axis];
        }
        true
    }
}

/// The output positions `x` (in `0..out_len`) whose input position
/// `x · stride + tap - pad_before` falls inside `0..in_len`: a range, since it grows
/// with `x`. Outside it the tap reads padding.
fn valid_range(out_len: usize, in_len: usize, stride: usize, tap: usize, pad_before: usize) -> (usize, usize) {
    let start = pad_before.saturating_sub(tap).div_ceil(stride);
    let end = (in_len + pad_before).saturating_sub(tap).div_ceil(stride).min(out_len);
    (start.min(end), end)
}

/// The sizes of one image's GEMMs, derived once from the spec.
#[derive(Clone, Copy, Debug)]
struct Geometry {
    spec: Conv2dSpec,
    /// Input channels per group.
    channels_per_group: usize,
    /// Output channels per group.
    outputs_per_group: usize,
    /// Rows of the columns matrix: channels per group × kernel taps.
    column_rows: usize,
    /// Output pixels of one image: the columns matrix's width.
    pixels: usize,
}

impl Geometry {
    fn new(spec: &Conv2dSpec) -> Self {
        let channels_per_group = spec.in_channels / spec.groups;
        Self {
            spec: *spec,
            channels_per_group,
            outputs_per_group: spec.out_channels / spec.groups,
            column_rows: channels_per_group * spec.kernel_height * spec.kernel_width,
            pixels: spec.out_height * spec.out_width,
        }
    }

    /// The floating-point operations of one of the three GEMM passes over the batch.
    fn flops(&self) -> usize {
        2 * self.spec.batch * self.spec.out_channels * self.column_rows * self.pixels
    }

    /// How many images each share takes: all of them when the work is too small to
    /// split or there is one thread.
    fn images_per_share(&self) -> usize {
        let batch = self.spec.batch.max(1);
        let threads = crate::threads();
        if threads < 2 || batch < 2 || self.flops() < PARALLEL_MIN_FLOPS {
            batch
        } else {
            batch.div_ceil(threads.min(batch))
        }
    }

    /// Whether the input itself is the columns matrix: a 1×1 kernel with stride 1 and
    /// no padding, over an input whose rows follow each other (`(c, y·W + x)` is then
    /// at `c · channel stride + (y·W + x) · column stride`).
    fn columns_are_input(&self, input: &Strides4) -> bool {
        let s = &self.spec;
        s.kernel_height == 1
            && s.kernel_width == 1
            && s.stride == [1, 1]
            && s.pad_top + s.pad_bottom + s.pad_left + s.pad_right == 0
            && (s.in_height == 1 || input.strides[2] == s.in_width * input.strides[3])
    }

    /// How a stride-1 convolution reads its input without im2col, or `None` where it
    /// cannot (or the 1×1 path needs no columns anyway): see [`Windows`].
    fn windows<E: ConvElement>(&self, input: &Strides4) -> Option<Windows> {
        let s = &self.spec;
        if !shifted_available() || s.stride != [1, 1] || self.columns_are_input(input) {
            return None;
        }
        let padded = s.pad_top + s.pad_bottom + s.pad_left + s.pad_right > 0;
        // The windows read rows of unit stride, one after the other; any other input
        // is copied first (it is small beside the columns matrix it replaces).
        let in_place = !padded && input.strides[3] == 1 && (s.in_height == 1 || input.strides[2] == s.in_width);
        let (row_len, channel_len) = if in_place {
            (s.in_width, input.strides[1])
        } else {
            let row_len = s.pad_left + s.in_width + s.pad_right;
            (row_len, (s.pad_top + s.in_height + s.pad_bottom) * row_len)
        };
        // The output rows, as runs of the product's columns: either each on its own,
        // written straight to the output, its last vector partly empty; or, where that
        // wastes more lanes, all in one run through a buffer, each row followed by the
        // `row_len - out_width` pixels of junk that lie between it and the next one in
        // the input (computed, then dropped as the rows are copied out).
        let lanes = 64 / size_of::<E>();
        let virtual_pixels = (s.out_height - 1) * row_len + s.out_width;
        let by_rows = s.out_height * s.out_width.div_ceil(lanes);
        let through_buffer = virtual_pixels.div_ceil(lanes);
        // Copying out costs about one vector in eight (measured on the benchmark's cases).
        let direct = by_rows <= through_buffer + through_buffer / 8;
        let vectors = if direct { by_rows } else { through_buffer };
        // Too much waste where the kernel is nearly as wide as the input, or the maps
        // are small (ResNet-18's 4×4 and 2×2 at 64×64 input, padded, use a third of
        // their lanes or less): im2col and a product batched over images win there,
        // ResNet-18 inference at batch 8 going from 1.65× to 1.18× PyTorch's time.
        if 2 * vectors * lanes > 3 * self.pixels {
            return None;
        }
        let runs = if direct {
            (0..s.out_height)
                .map(|y| Run {
                    load: y * row_len,
                    store: y * s.out_width,
                    len: s.out_width,
                })
                .collect()
        } else {
            vec![Run {
                load: 0,
                store: 0,
                len: virtual_pixels,
            }]
        };
        let mut offsets = Vec::with_capacity(self.column_rows);
        for c in 0..self.channels_per_group {
            for i in 0..s.kernel_height {
                for j in 0..s.kernel_width {
                    offsets.push(c * channel_len + i * s.dilation[0] * row_len + j * s.dilation[1]);
                }
            }
        }
        Some(Windows {
            copy_len: if in_place { 0 } else { s.in_channels * channel_len },
            row_len,
            channel_len,
            buffer_len: if direct { 0 } else { virtual_pixels },
            runs,
            offsets,
        })
    }

    /// Copies the image that starts at `image` in `input` (channel, row and column
    /// strides `strides`) into `padded`, `channel_len` elements a channel, `row_len` a
    /// row, with the spec's padding as zeros around it.
    fn pad<E: ConvElement>(&self, input: &[E], image: usize, strides: [usize; 3], windows: &Windows, padded: &mut [E]) {
        let [channel_stride, row_stride, column_stride] = strides;
        for (c, channel) in padded.chunks_exact_mut(windows.channel_len).enumerate() {
            let start = image + c * channel_stride;
            self.pad_channel(input, start, [row_stride, column_stride], windows.row_len, channel);
        }
    }

    /// Copies the channel that starts at `start` in `input` (row and column strides
    /// `strides`) into `padded`, `row_len` elements a row, with the spec's padding as
    /// zeros around it; `padded` holds `pad_top + in_height + pad_bottom` rows.
    fn pad_channel<E: ConvElement>(
        &self,
        input: &[E],
        start: usize,
        [row_stride, column_stride]: [usize; 2],
        row_len: usize,
        padded: &mut [E],
    ) {
        let s = &self.spec;
        // Zeros everywhere first (one fill, rather than a short one either side of
        // each row), then the rows over them.
        padded.fill(<E as GemmElement>::ZERO);
        let rows = &mut padded[s.pad_top * row_len + s.pad_left..];
        if column_stride == 1 {
            copy_rows(&input[start..], row_stride, rows, row_len, s.in_height, s.in_width);
        } else {
            for (y, row) in rows.chunks_mut(row_len).take(s.in_height).enumerate() {
                for (x, value) in row[..s.in_width].iter_mut().enumerate() {
                    *value = input[start + y * row_stride + x * column_stride];
                }
            }
        }
    }

    /// How a stride-1 depthwise convolution (one input channel per group) reads each
    /// input channel with [`depthwise`]: the plane's shape, and whether the channel is
    /// read in place (no padding, rows of unit stride) rather than from a padded copy.
    fn depthwise(&self, input: &Strides4) -> Option<(DepthwiseShape, bool)> {
        let s = &self.spec;
        if !shifted_available() || s.stride != [1, 1] || self.channels_per_group != 1 {
            return None;
        }
        let padded = s.pad_top + s.pad_bottom + s.pad_left + s.pad_right > 0;
        let in_place = !padded && input.strides[3] == 1 && (s.in_height == 1 || input.strides[2] >= s.in_width);
        let row_len = match (in_place, s.in_height) {
            (true, 1) => s.in_width,
            (true, _) => input.strides[2],
            (false, _) => s.pad_left + s.in_width + s.pad_right,
        };
        let shape = DepthwiseShape {
            row_len,
            out_height: s.out_height,
            out_width: s.out_width,
            kernel: [s.kernel_height, s.kernel_width],
            dilation: s.dilation,
        };
        Some((shape, in_place))
    }

    /// How [`conv_channel_lanes`] computes this convolution, where it beats the paths
    /// with pixels in the lanes: one group; enough input channels that a tap's loop
    /// over them pays for its setup; a kernel of more than one tap (a 1×1 kernel meets
    /// no padding, and im2col is a plain copy for it); and maps of at most 64 pixels,
    /// where pixels fill few lanes and meet much padding. Measured on ResNet-18's
    /// convolutions at batch 8 (64×64 input), 1 thread, time with pixels in the lanes →
    /// with channels: 8×8 maps 1 729 → 1 264 µs, 4×4 2 076 → 1 141, 2×2 2 728 → 1 480,
    /// and the stride-2 convolutions onto them 954 → 801, 1 010 → 717, 1 297 → 929;
    /// but 16×16 maps 1 346 → 1 507 and the 1×1 downsampling 117 → 232.
    fn channel_lanes(&self) -> Option<ChannelLanesShape> {
        let s = &self.spec;
        let taps = s.kernel_height * s.kernel_width;
        if !shifted_available() || s.groups != 1 || s.in_channels < 16 || taps == 1 || self.pixels > 64 {
            return None;
        }
        Some(ChannelLanesShape {
            images: s.batch,
            in_channels: s.in_channels,
            out_channels: s.out_channels,
            in_size: [s.in_height, s.in_width],
            pad: [s.pad_top, s.pad_left],
            padded: [
                s.pad_top + s.in_height + s.pad_bottom,
                s.pad_left + s.in_width + s.pad_right,
            ],
            kernel: [s.kernel_height, s.kernel_width],
            stride: s.stride,
            dilation: s.dilation,
            out_size: [s.out_height, s.out_width],
        })
    }

    /// Copies every image of `input` (strides `strides`) into `padded`, channels last,
    /// with the spec's padding as zeros around each: `shape.padded[0] × shape.padded[1]
    /// × in_channels` elements an image.
    fn pad_channels_last<E: ConvElement>(
        &self,
        input: &[E],
        strides: &Strides4,
        shape: &ChannelLanesShape,
        padded: &mut [E],
    ) {
        let s = &self.spec;
        let channels = s.in_channels;
        let row_len = shape.padded[1] * channels;
        let image_len = shape.padded[0] * row_len;
        let [image_stride, channel_stride, row_stride, column_stride] = strides.strides;
        for (n, image) in padded.chunks_exact_mut(image_len).enumerate() {
            image.fill(<E as GemmElement>::ZERO);
            let source = strides.offset + n * image_stride;
            for y in 0..s.in_height {
                let row = &mut image[(s.pad_top + y) * row_len + s.pad_left * channels..];
                for (x, pixel) in row.chunks_exact_mut(channels).take(s.in_width).enumerate() {
                    let at = source + y * row_stride + x * column_stride;
                    for (c, value) in pixel.iter_mut().enumerate() {
                        *value = input[at + c * channel_stride];
                    }
                }
            }
        }
    }

    /// The convolution whose output is this one's input's gradient, where it reads
    /// windows (stride 1, and padding no wider than the dilated kernel, as usual):
    /// input pixel `y` receives from output pixels `y + pad - i · dilation`, so the
    /// gradient is the output's gradient, padded by `dilation · (kernel - 1) - pad`,
    /// convolved with the weight flipped and its two channel axes swapped per group
    /// ([`Geometry::flipped_weight`]).
    fn transposed(&self) -> Option<Conv2dSpec> {
        let s = &self.spec;
        let reach = [
            s.dilation[0] * (s.kernel_height - 1),
            s.dilation[1] * (s.kernel_width - 1),
        ];
        let fits = s.pad_top.max(s.pad_bottom) <= reach[0] && s.pad_left.max(s.pad_right) <= reach[1];
        if !shifted_available() || s.stride != [1, 1] || !fits || s.kernel_height * s.kernel_width == 1 {
            return None;
        }
        let padding = Padding::Explicit {
            top: reach[0] - s.pad_top,
            bottom: reach[0] - s.pad_bottom,
            left: reach[1] - s.pad_left,
            right: reach[1] - s.pad_right,
        };
        let input = [s.batch, s.out_channels, s.out_height, s.out_width];
        let weight = [s.in_channels, self.outputs_per_group, s.kernel_height, s.kernel_width];
        let spec = Conv2dSpec::new(input, weight, [1, 1], padding, s.dilation, s.groups).ok()?;
        (spec.out_height == s.in_height && spec.out_width == s.in_width).then_some(spec)
    }

    /// The weight of [`Geometry::transposed`], contiguous: `flipped[g·cg + c][o][i][j] =
    /// weight[g·og + o][c][KH-1-i][KW-1-j]` for group `g`, `cg` input channels and `og`
    /// outputs per group.
    fn flipped_weight<E: ConvElement>(&self, weight: &[E], layout: &Layout) -> CpuBuffer<E> {
        let s = &self.spec;
        let (cg, og, kh, kw) = (
            self.channels_per_group,
            self.outputs_per_group,
            s.kernel_height,
            s.kernel_width,
        );
        let strides = Strides4::of(layout);
        let [so, sc, si, sj] = strides.strides;
        let mut flipped = Vec::with_capacity(s.in_channels * og * kh * kw);
        for g in 0..s.groups {
            for c in 0..cg {
                for o in 0..og {
                    for i in 0..kh {
                        for j in 0..kw {
                            let at =
                                strides.offset + (g * og + o) * so + c * sc + (kh - 1 - i) * si + (kw - 1 - j) * sj;
                            flipped.push(weight[at]);
                        }
                    }
                }
            }
        }
        CpuBuffer(flipped)
    }

    /// Fills `columns` (`column_rows × pixels`, rows `ld ≥ pixels` apart) from group
    /// `group` of the image that starts at `image` in `input`, whose channel, row and
    /// column strides are `strides`.
    fn im2col<E: ConvElement>(
        &self,
        input: &[E],
        image: usize,
        strides: [usize; 3],
        group: usize,
        columns: &mut [E],
        ld: usize,
    ) {
        let s = &self.spec;
        let [channel_stride, row_stride, column_stride] = strides;
        let (out_w, pixels) = (s.out_width, self.pixels);
        // The output rows and columns each tap reads inside the image, the same for
        // every channel: worked out once, not per channel (small maps spent a tenth of
        // im2col on these divisions).
        let row_ranges: Vec<(usize, usize)> = (0..s.kernel_height)
            .map(|i| valid_range(s.out_height, s.in_height, s.stride[0], i * s.dilation[0], s.pad_top))
            .collect();
        let column_ranges: Vec<(usize, usize)> = (0..s.kernel_width)
            .map(|j| valid_range(out_w, s.in_width, s.stride[1], j * s.dilation[1], s.pad_left))
            .collect();
        for c in 0..self.channels_per_group {
            let channel = image + (group * self.channels_per_group + c) * channel_stride;
            for (i, &(y0, y1)) in row_ranges.iter().enumerate() {
                let tap_y = i * s.dilation[0];
                for (j, &(x0, x1)) in column_ranges.iter().enumerate() {
                    let tap_x = j * s.dilation[1];
                    let row = ((c * s.kernel_height + i) * s.kernel_width + j) * ld;
                    let row = &mut columns[row..row + pixels];
                    row[..y0 * out_w].fill(<E as GemmElement>::ZERO);
                    row[y1 * out_w..].fill(<E as GemmElement>::ZERO);
                    for y in y0..y1 {
                        let out = &mut row[y * out_w..(y + 1) * out_w];
                        out[..x0].fill(<E as GemmElement>::ZERO);
                        out[x1..].fill(<E as GemmElement>::ZERO);
                        if x0 == x1 {
                            continue;
                        }
                        let in_y = y * s.stride[0] + tap_y - s.pad_top;
                        let first = x0 * s.stride[1] + tap_x - s.pad_left;
                        let start = channel + in_y * row_stride + first * column_stride;
                        let step = s.stride[1] * column_stride;
                        if step == 1 {
                            out[x0..x1].copy_from_slice(&input[start..start + (x1 - x0)]);
                        } else {
                            for (k, value) in out[x0..x1].iter_mut().enumerate() {
                                *value = input[start + k * step];
                            }
                        }
                    }
                }
            }
        }
    }

    /// Adds `columns` (`column_rows × pixels`) back onto the input pixels they were
    /// taken from (the reverse of [`Geometry::im2col`]): group `group` of the image
    /// starting at `image` in `grad`, with channel, row and column strides `strides`.
    fn col2im<E: ConvElement>(&self, columns: &[E], grad: &mut [E], image: usize, strides: [usize; 3], group: usize) {
        let s = &self.spec;
        let [channel_stride, row_stride, column_stride] = strides;
        let (out_w, pixels) = (s.out_width, self.pixels);
        for c in 0..self.channels_per_group {
            let channel = image + (group * self.channels_per_group + c) * channel_stride;
            for i in 0..s.kernel_height {
                let tap_y = i * s.dilation[0];
                let (y0, y1) = valid_range(s.out_height, s.in_height, s.stride[0], tap_y, s.pad_top);
                for j in 0..s.kernel_width {
                    let tap_x = j * s.dilation[1];
                    let (x0, x1) = valid_range(out_w, s.in_width, s.stride[1], tap_x, s.pad_left);
                    if x0 == x1 {
                        continue;
                    }
                    let row = ((c * s.kernel_height + i) * s.kernel_width + j) * pixels;
                    for y in y0..y1 {
                        let from = &columns[row + y * out_w + x0..row + y * out_w + x1];
                        let in_y = y * s.stride[0] + tap_y - s.pad_top;
                        let first = x0 * s.stride[1] + tap_x - s.pad_left;
                        let start = channel + in_y * row_stride + first * column_stride;
                        let step = s.stride[1] * column_stride;
                        if step == 1 {
                            for (target, &value) in grad[start..start + from.len()].iter_mut().zip(from) {
                                *target += value;
                            }
                        } else {
                            for (k, &value) in from.iter().enumerate() {
                                let target = &mut grad[start + k * step];
                                *target += value;
                            }
                        }
                    }
                }
            }
        }
    }
}

/// How a stride-1 convolution reads its input in place of a columns matrix, through
/// [`gemm_shifted`]: the input pixels that kernel tap `(c, i, j)` meets for output row
/// `y` are one run of `out_width` starting at `c · channel_len + (y + i · dilation) ·
/// row_len + j · dilation`, in the input or its padded copy.
#[derive(Debug)]
struct Windows {
    /// Elements of the padded copy of one image; 0 where the input is read in place.
    copy_len: usize,
    /// Elements from one row to the next.
    row_len: usize,
    /// Elements from one channel to the next.
    channel_len: usize,
    /// The product's columns: each output row, or all of them with the junk between.
    runs: Vec<Run>,
    /// 0 where the runs are the output's rows; else the run's length, and the length
    /// of each channel's row of the buffer it is written to.
    buffer_len: usize,
    /// Where each of the `column_rows` taps starts, from the group's first channel.
    offsets: Vec<usize>,
}

/// The weight as a matrix `out_channels × (in_channels/groups · KH · KW)` with a row
/// stride and a column stride: in place when each filter's elements follow each other
/// at one stride, else a contiguous copy (a weight is small).
fn weight_matrix<'a, E: ConvElement>(
    weight: &'a [E],
    layout: &Layout,
    geometry: &Geometry,
) -> (Cow<'a, [E]>, usize, usize) {
    let dims = geometry.spec.weight_dims();
    let strides = Strides4::of(layout);
    // The stride of the innermost axis that is longer than 1 is the column stride;
    // the outer ones must then step over whole blocks of it.
    let column_stride = (1..4)
        .rev()
        .find(|&axis| dims[axis] > 1)
        .map_or(1, |axis| strides.strides[axis]);
    let mut block = column_stride;
    let mut fused = true;
    for axis in (1..4).rev() {
        if dims[axis] > 1 && strides.strides[axis] != block {
            fused = false;
        }
        block *= dims[axis];
    }
    if fused {
        return (
            Cow::Borrowed(&weight[strides.offset..]),
            strides.strides[0],
            column_stride,
        );
    }
    let copy: Vec<E> = layout.offsets().map(|offset| weight[offset]).collect();
    (Cow::Owned(copy), geometry.column_rows, 1)
}

/// Adds `bias[o]` to every pixel of output channel `o` of each image of `out` (images
/// `per_image` long, channels `pixels` long); nothing without a bias.
fn add_bias<E: ConvElement>(out: &mut [E], bias: Option<&[E]>, per_image: usize, pixels: usize) {
    let Some(bias) = bias else { return };
    for out in out.chunks_exact_mut(per_image) {
        for (channel, &b) in out.chunks_exact_mut(pixels).zip(bias) {
            channel.iter_mut().for_each(|x| *x += b);
        }
    }
}

/// The row-major layout of `dims`.
fn contiguous_layout(dims: [usize; 4]) -> Layout {
    Layout::from_parts(&dims, &[dims[1] * dims[2] * dims[3], dims[2] * dims[3], dims[3], 1])
}

impl<E: ConvElement> Conv2dKernel<E> for Cpu {
    fn conv2d_forward(
        &self,
        spec: &Conv2dSpec,
        input: View<'_, CpuBuffer<E>>,
        weight: View<'_, CpuBuffer<E>>,
        bias: Option<View<'_, CpuBuffer<E>>>,
    ) -> Result<CpuBuffer<E>, Error> {
        spec.check()?;
        spec.check_operand("input", &input, &spec.input_dims())?;
        spec.check_operand("weight", &weight, &spec.weight_dims())?;
        if let Some(bias) = &bias {
            spec.check_operand("bias", bias, &[spec.out_channels])?;
        }
        let (input, input_layout) = (input.buffer, &input.layout);
        let (weight, weight_layout) = (weight.buffer, &weight.layout);
        let geometry = Geometry::new(spec);
        let per_image = spec.out_channels * geometry.pixels;
        let mut out = self.try_alloc_for_overwrite(spec.batch * per_image)?;
        if out.is_empty() {
            return Ok(out);
        }
        let (weight, weight_rows, weight_columns) = weight_matrix(weight, weight_layout, &geometry);
        let bias: Option<Vec<E>> = bias.map(|bias| bias.layout.offsets().map(|o| bias.buffer[o]).collect());
        let input_strides = Strides4::of(input_layout);
        let in_place = geometry.columns_are_input(&input_strides);
        let [image_stride, channel_stride, row_stride, column_stride] = input_strides.strides;
        let (og, k, p) = (geometry.outputs_per_group, geometry.column_rows, geometry.pixels);
        let images = geometry.images_per_share();

        if let Some((shape, in_place)) = geometry.depthwise(&input_strides) {
            // One plane per input channel, padded once into a buffer that stays in L1,
            // then each of its filters summed over it by `depthwise`.
            let taps: Vec<E> = (0..spec.out_channels)
                .flat_map(|f| (0..k).map(move |t| f * weight_rows + t * weight_columns))
                .map(|at| weight[at])
                .collect();
            let plane_len = if in_place {
                0
            } else {
                (spec.pad_top + spec.in_height + spec.pad_bottom) * shape.row_len
            };
            let run = |first_image: usize, out: &mut [E]| {
                E::with_workspace(plane_len, |padded| {
                    for (index, out) in out.chunks_exact_mut(per_image).enumerate() {
                        let image = input_strides.offset + (first_image + index) * image_stride;
                        for (channel, out) in out.chunks_exact_mut(og * p).enumerate() {
                            let start = image + channel * channel_stride;
                            let plane = if in_place {
                                &input[start..]
                            } else {
                                geometry.pad_channel(input, start, [row_stride, column_stride], shape.row_len, padded);
                                &*padded
                            };
                            for (o, out) in out.chunks_exact_mut(p).enumerate() {
                                let f = channel * og + o;
                                let b = bias.as_ref().map_or(<E as GemmElement>::ZERO, |bias| bias[f]);
                                depthwise(&shape, plane, &taps[f * k..(f + 1) * k], b, out);
                            }
                        }
                    }
                })
            };
            if images >= spec.batch {
                run(0, &mut out);
            } else {
                for_each_chunk_mut(&mut out, images * per_image, |share, chunk| run(share * images, chunk));
            }
            return Ok(out);
        }

        if let Some(shape) = geometry.channel_lanes() {
            let image_len = shape.padded[0] * shape.padded[1] * spec.in_channels;
            E::with_workspace(spec.batch * image_len, |padded| {
                geometry.pad_channels_last(input, &input_strides, &shape, padded);
                let weight = MatrixRef::new(&weight, weight_rows, weight_columns);
                conv_channel_lanes(&shape, padded, weight, &mut out);
            });
            add_bias(&mut out, bias.as_deref(), per_image, p);
            return Ok(out);
        }

        if let Some(windows) = geometry.windows::<E>(&input_strides) {
            let (copy_len, buffer_len, row_len) = (windows.copy_len, windows.buffer_len, windows.row_len);
            let out_w = spec.out_width;
            // All the share's images in one product per group (its weight packed once,
            // tiles running on from one image into the next: the small images of a
            // ResNet's last stages, 4×4 or 2×2, are less than a tile each).
            let run = |first_image: usize, out: &mut [E]| {
                let images = out.len() / per_image;
                let buffer_step = og * buffer_len;
                E::with_workspace(images * (copy_len + buffer_step), |workspace| {
                    let (padded, buffer) = workspace.split_at_mut(images * copy_len);
                    let data_step = if copy_len > 0 {
                        for (index, padded) in padded.chunks_exact_mut(copy_len).enumerate() {
                            let image = input_strides.offset + (first_image + index) * image_stride;
                            let strides = [channel_stride, row_stride, column_stride];
                            geometry.pad(input, image, strides, &windows, padded);
                        }
                        copy_len
                    } else {
                        image_stride
                    };
                    let (data, group_stride) = if copy_len > 0 {
                        (&*padded, geometry.channels_per_group * windows.channel_len)
                    } else {
                        (
                            &input[input_strides.offset + first_image * image_stride..],
                            geometry.channels_per_group * channel_stride,
                        )
                    };
                    for group in 0..spec.groups {
                        let filters = MatrixRef::new(&weight[group * og * weight_rows..], weight_rows, weight_columns);
                        let data = &data[group * group_stride..];
                        let (offsets, runs) = (&windows.offsets, &windows.runs);
                        if buffer_len == 0 {
                            // The output rows are the runs.
                            let batch = Batch {
                                images,
                                data_step,
                                c_step: per_image,
                            };
                            let out = &mut out[group * og * p..];
                            gemm_shifted_batch(og, filters, data, offsets, runs, out, p, batch);
                            continue;
                        }
                        let batch = Batch {
                            images,
                            data_step,
                            c_step: buffer_step,
                        };
                        gemm_shifted_batch(og, filters, data, offsets, runs, buffer, buffer_len, batch);
                        // Drop the junk after each row.
                        for (out, sums) in out.chunks_exact_mut(per_image).zip(buffer.chunks_exact(buffer_step)) {
                            let out = &mut out[group * og * p..(group + 1) * og * p];
                            for (out, sums) in out.chunks_exact_mut(p).zip(sums.chunks_exact(buffer_len)) {
                                copy_rows(sums, row_len, out, out_w, spec.out_height, out_w);
                            }
                        }
                    }
                    add_bias(out, bias.as_deref(), per_image, p);
                })
            };
            if images >= spec.batch {
                run(0, &mut out);
            } else {
                for_each_chunk_mut(&mut out, images * per_image, |share, chunk| run(share * images, chunk));
            }
            return Ok(out);
        }

        // Images per product: enough for about COLUMNS_PER_PRODUCT columns. A small map
        // (ResNet-18's stride-2 convolutions at 64×64 have 8×8, 4×4 and 2×2 outputs)
        // would otherwise make products a few columns wide, in which the GEMM's
        // tiles (32 columns) and packing of the weight dominate.
        let chunk = if in_place {
            1
        } else {
            COLUMNS_PER_PRODUCT.div_ceil(p).clamp(1, images)
        };
        let ld = chunk * p;
        let run = |first_image: usize, out: &mut [E]| {
            let mut work = |workspace: &mut [E]| {
                let (columns, staging) = workspace.split_at_mut(if in_place { 0 } else { k * ld });
                for (index, out) in out.chunks_mut(chunk * per_image).enumerate() {
                    let first = first_image + index * chunk;
                    let count = out.len() / per_image;
                    for group in 0..spec.groups {
                        let filters = MatrixRef::new(&weight[group * og * weight_rows..], weight_rows, weight_columns);
                        if in_place {
                            let image = input_strides.offset + first * image_stride;
                            let start = image + group * geometry.channels_per_group * channel_stride;
                            let columns = MatrixRef::new(&input[start..], channel_stride, column_stride);
                            let out_group = &mut out[group * og * p..(group + 1) * og * p];
                            let target = MatrixMut::new(out_group, p, 1);
                            gemm(
                                og,
                                k,
                                p,
                                <E as GemmElement>::ONE,
                                filters,
                                columns,
                                <E as GemmElement>::ZERO,
                                target,
                            );
                            continue;
                        }
                        for n in 0..count {
                            let image = input_strides.offset + (first + n) * image_stride;
                            let strides = [channel_stride, row_stride, column_stride];
                            geometry.im2col(input, image, strides, group, &mut columns[n * p..], ld);
                        }
                        let columns = MatrixRef::new(&*columns, ld, 1);
                        if count == 1 {
                            let out_group = &mut out[group * og * p..(group + 1) * og * p];
                            let target = MatrixMut::new(out_group, p, 1);
                            gemm(
                                og,
                                k,
                                p,
                                <E as GemmElement>::ONE,
                                filters,
                                columns,
                                <E as GemmElement>::ZERO,
                                target,
                            );
                            continue;
                        }
                        // One product over the images' columns side by side, then each
                        // image's block of it to its place in the output.
                        let target = MatrixMut::new(staging, ld, 1);
                        let one = <E as GemmElement>::ONE;
                        gemm(
                            og,
                            k,
                            count * p,
                            one,
                            filters,
                            columns,
                            <E as GemmElement>::ZERO,
                            target,
                        );
                        for (n, out) in out.chunks_exact_mut(per_image).enumerate() {
                            let out_group = &mut out[group * og * p..(group + 1) * og * p];
                            copy_rows(&staging[n * p..], ld, out_group, p, og, p);
                        }
                    }
                    add_bias(out, bias.as_deref(), per_image, p);
                }
            };
            if in_place {
                work(&mut []);
            } else if chunk == 1 {
                E::with_workspace(k * ld, work);
            } else {
                E::with_workspace(k * ld + og * ld, work);
            }
        };
        if images >= spec.batch {
            run(0, &mut out);
        } else {
            for_each_chunk_mut(&mut out, images * per_image, |share, chunk| run(share * images, chunk));
        }
        Ok(out)
    }

    fn conv2d_backward_input(
        &self,
        spec: &Conv2dSpec,
        weight: View<'_, CpuBuffer<E>>,
        grad_output: &CpuBuffer<E>,
        grad_input: ViewMut<'_, CpuBuffer<E>>,
    ) -> Result<(), Error> {
        spec.check()?;
        spec.check_operand("weight", &weight, &spec.weight_dims())?;
        spec.check_operand("input's gradient", &grad_input.as_view(), &spec.input_dims())?;
        check_grad_output("conv2d", &spec.output_dims(), grad_output.len())?;
        let (weight, weight_layout) = (weight.buffer, &weight.layout);
        let (grad_input, grad_layout) = (grad_input.buffer, &grad_input.layout);
        let geometry = Geometry::new(spec);
        if grad_output.is_empty() {
            return Ok(());
        }
        if let Some(transposed) = geometry.transposed() {
            // The gradient as a convolution of the output's gradient (through the
            // windows of `gemm_shifted`, with no col2im), added to `grad_input`.
            let weight = geometry.flipped_weight(weight, weight_layout);
            let dims = transposed.weight_dims();
            let sums = self.conv2d_forward(
                &transposed,
                View::new(grad_output, contiguous_layout(transposed.input_dims())),
                View::new(&weight, contiguous_layout(dims)),
                None,
            )?;
            let input_dims = spec.input_dims();
            if Strides4::of(grad_layout).is_row_major(input_dims) {
                let offset = grad_layout.offset();
                for (target, &sum) in grad_input[offset..offset + sums.len()].iter_mut().zip(sums.iter()) {
                    *target += sum;
                }
            } else {
                for (offset, &sum) in grad_layout.offsets().zip(sums.iter()) {
                    grad_input[offset] += sum;
                }
            }
            return Ok(());
        }
        let (weight, weight_rows, weight_columns) = weight_matrix(weight, weight_layout, &geometry);
        let grad_strides = Strides4::of(grad_layout);
        // Images are split across threads as disjoint blocks of the gradient: a
        // gradient laid out otherwise (a view's) is computed into a scratch block
        // first, then added through its layout.
        let input_dims = spec.input_dims();
        let direct = grad_strides.is_row_major(input_dims);
        let row_major = Strides4 {
            offset: 0,
            strides: [
                input_dims[1] * input_dims[2] * input_dims[3],
                input_dims[2] * input_dims[3],
                input_dims[3],
                1,
            ],
        };
        let per_image = row_major.strides[0];
        let in_place = geometry.columns_are_input(&row_major);
        let (og, k, p) = (geometry.outputs_per_group, geometry.column_rows, geometry.pixels);
        let per_output_image = spec.out_channels * p;

        let run = |first_image: usize, grad: &mut [E]| {
            let mut work = |columns: &mut [E]| {
                for (index, grad) in grad.chunks_exact_mut(per_image).enumerate() {
                    let grad_out = &grad_output[(first_image + index) * per_output_image..];
                    for group in 0..spec.groups {
                        let filters = MatrixRef::new(&weight[group * og * weight_rows..], weight_rows, weight_columns);
                        let grad_out = MatrixRef::new(&grad_out[group * og * p..], p, 1);
                        if in_place {
                            let start = group * geometry.channels_per_group * row_major.strides[1];
                            let target = MatrixMut::new(&mut grad[start..], row_major.strides[1], 1);
                            gemm(
                                k,
                                og,
                                p,
                                <E as GemmElement>::ONE,
                                filters.t(),
                                grad_out,
                                <E as GemmElement>::ONE,
                                target,
                            );
                        } else {
                            gemm(
                                k,
                                og,
                                p,
                                <E as GemmElement>::ONE,
                                filters.t(),
                                grad_out,
                                <E as GemmElement>::ZERO,
                                MatrixMut::new(columns, p, 1),
                            );
                            let strides = [row_major.strides[1], row_major.strides[2], 1];
                            geometry.col2im(columns, grad, 0, strides, group);
                        }
                    }
                }
            };
            if in_place {
                work(&mut []);
            } else {
                E::with_workspace(k * p, work);
            }
        };
        let images = geometry.images_per_share();
        let total = spec.batch * per_image;
        let split = |block: &mut [E]| {
            if images >= spec.batch {
                run(0, block);
            } else {
                for_each_chunk_mut(block, images * per_image, |share, chunk| run(share * images, chunk));
            }
        };
        if direct {
            split(&mut grad_input[grad_strides.offset..grad_strides.offset + total]);
        } else {
            let mut scratch = self.try_alloc_zeros(total)?;
            split(&mut scratch);
            let contiguous = Layout::from_parts(&input_dims, &row_major.strides);
            for (from, to) in contiguous.offsets().zip(grad_layout.offsets()) {
                grad_input[to] += scratch[from];
            }
        }
        Ok(())
    }

    fn conv2d_backward_weight(
        &self,
        spec: &Conv2dSpec,
        input: View<'_, CpuBuffer<E>>,
        grad_output: &CpuBuffer<E>,
        grad_weight: ViewMut<'_, CpuBuffer<E>>,
    ) -> Result<(), Error> {
        spec.check()?;
        spec.check_operand("input", &input, &spec.input_dims())?;
        spec.check_operand("weight's gradient", &grad_weight.as_view(), &spec.weight_dims())?;
        check_grad_output("conv2d", &spec.output_dims(), grad_output.len())?;
        let (input, input_layout) = (input.buffer, &input.layout);
        let (grad_weight, grad_layout) = (grad_weight.buffer, &grad_weight.layout);
        let geometry = Geometry::new(spec);
        if grad_output.is_empty() {
            return Ok(());
        }
        let input_strides = Strides4::of(input_layout);
        let in_place = geometry.columns_are_input(&input_strides);
        let [image_stride, channel_stride, row_stride, column_stride] = input_strides.strides;
        let (og, k, p) = (geometry.outputs_per_group, geometry.column_rows, geometry.pixels);
        let per_output_image = spec.out_channels * p;
        let weight_len = spec.out_channels * k;

        // A depthwise convolution's filters, each over its own channel's plane (padded
        // once into a buffer in L1), with the output's gradient: no im2col.
        if let Some((shape, in_place)) = geometry.depthwise(&input_strides) {
            let plane_len = if in_place {
                0
            } else {
                (spec.pad_top + spec.in_height + spec.pad_bottom) * shape.row_len
            };
            let run = |images: std::ops::Range<usize>| -> Vec<E> {
                let mut sum = vec![<E as GemmElement>::ZERO; weight_len];
                E::with_workspace(plane_len, |padded| {
                    for image_index in images {
                        let image = input_strides.offset + image_index * image_stride;
                        let grad_out =
                            &grad_output[image_index * per_output_image..(image_index + 1) * per_output_image];
                        for (channel, (grads, sums)) in grad_out
                            .chunks_exact(og * p)
                            .zip(sum.chunks_exact_mut(og * k))
                            .enumerate()
                        {
                            let start = image + channel * channel_stride;
                            let plane = if in_place {
                                &input[start..]
                            } else {
                                geometry.pad_channel(input, start, [row_stride, column_stride], shape.row_len, padded);
                                &*padded
                            };
                            for (grad, sums) in grads.chunks_exact(p).zip(sums.chunks_exact_mut(k)) {
                                depthwise_filter_grad(&shape, plane, grad, sums);
                            }
                        }
                    }
                });
                sum
            };
            let images = geometry.images_per_share();
            let sums = if images >= spec.batch {
                vec![run(0..spec.batch)]
            } else {
                map_shares(spec.batch.div_ceil(images), |share| {
                    run(share * images..((share + 1) * images).min(spec.batch))
                })
            };
            for (index, offset) in grad_layout.offsets().enumerate() {
                grad_weight[offset] = sums.iter().fold(grad_weight[offset], |acc, sum| acc + sum[index]);
            }
            return Ok(());
        }

        // Where the forward pass reads windows of the input, and there are filters
        // enough to fill whole vectors, the gradient reads the same windows: tap `t`
        // of filter `o` is `Σ_v window_t[v] · gy[o][v]` over the output pixels, each
        // output row's window one run of the input's row (`correlate`): no im2col.
        let lanes = 64 / size_of::<E>();
        if og >= lanes
            && let Some(windows) = geometry.windows::<E>(&input_strides)
        {
            let ldb = og.next_multiple_of(lanes);
            let row_len = windows.row_len;
            let (out_h, out_w) = (spec.out_height, spec.out_width);
            let b_len = p * ldb;
            let group_len = k * ldb;
            let run = |images: std::ops::Range<usize>| -> Vec<E> {
                let mut sum = vec![<E as GemmElement>::ZERO; spec.groups * group_len];
                // `b` starts on a cache line (and its rows, `ldb` a whole number of
                // vectors, then all do): its loads are then never split across two.
                E::with_workspace(windows.copy_len + b_len + lanes, |workspace| {
                    let (padded, b) = workspace.split_at_mut(windows.copy_len);
                    let align = b.as_ptr().align_offset(64).min(lanes);
                    let b = &mut b[align..align + b_len];
                    // Zero in the lanes past `og`: they then add nothing.
                    b.fill(<E as GemmElement>::ZERO);
                    for image_index in images {
                        let image = input_strides.offset + image_index * image_stride;
                        let (data, group_stride) = if windows.copy_len > 0 {
                            let strides = [channel_stride, row_stride, column_stride];
                            geometry.pad(input, image, strides, &windows, padded);
                            (&*padded, geometry.channels_per_group * windows.channel_len)
                        } else {
                            (&input[image..], geometry.channels_per_group * channel_stride)
                        };
                        let grad_out = &grad_output[image_index * per_output_image..];
                        for (group, sum) in sum.chunks_exact_mut(group_len).enumerate() {
                            // b[pixel][o] = gy[o][pixel], transposed so that the
                            // kernel loads a vector of filters per pixel; 16 pixels
                            // at a time, so that the rows of `b` written stay in L1
                            // (a whole plane at a time wrote 256-byte strides across
                            // 64 KiB: 2% of forward + backward in the resnet case).
                            let planes = &grad_out[group * og * p..(group + 1) * og * p];
                            for first in (0..p).step_by(16) {
                                let pixels = 16.min(p - first);
                                let rows = &mut b[first * ldb..(first + pixels) * ldb];
                                for (o, plane) in planes.chunks_exact(p).enumerate() {
                                    for (row, &value) in rows.chunks_exact_mut(ldb).zip(&plane[first..first + pixels]) {
                                        row[o] = value;
                                    }
                                }
                            }
                            let data = &data[group * group_stride..];
                            correlate(data, &windows.offsets, out_h, out_w, row_len, b, ldb, sum);
                        }
                    }
                });
                sum
            };
            let images = geometry.images_per_share();
            let sums = if images >= spec.batch {
                vec![run(0..spec.batch)]
            } else {
                map_shares(spec.batch.div_ceil(images), |share| {
                    run(share * images..((share + 1) * images).min(spec.batch))
                })
            };
            // (Nested loops, not a division per element, and the layout's offsets only
            // where it is not row-major: each took 2% of the time.)
            let add = |grad: &mut E, filter: usize, tap: usize| {
                let at = (filter / og) * group_len + tap * ldb + filter % og;
                *grad = sums.iter().fold(*grad, |acc, sum| acc + sum[at]);
            };
            if Strides4::of(grad_layout).is_row_major(spec.weight_dims()) {
                let grad = &mut grad_weight[grad_layout.offset()..grad_layout.offset() + spec.out_channels * k];
                for (filter, grad) in grad.chunks_exact_mut(k).enumerate() {
                    for (tap, grad) in grad.iter_mut().enumerate() {
                        add(grad, filter, tap);
                    }
                }
            } else {
                let mut offsets = grad_layout.offsets();
                for filter in 0..spec.out_channels {
                    for (tap, offset) in (&mut offsets).take(k).enumerate() {
                        add(&mut grad_weight[offset], filter, tap);
                    }
                }
            }
            return Ok(());
        }

        // Each share sums its images' products into a weight-sized block of its own;
        // the blocks are added up at the end.
        let run = |images: std::ops::Range<usize>| -> Vec<E> {
            let mut sum = vec![<E as GemmElement>::ZERO; weight_len];
            let work = |columns: &mut [E]| {
                for image_index in images {
                    let image = input_strides.offset + image_index * image_stride;
                    let grad_out = &grad_output[image_index * per_output_image..];
                    for group in 0..spec.groups {
                        let columns = if in_place {
                            let start = image + group * geometry.channels_per_group * channel_stride;
                            MatrixRef::new(&input[start..], channel_stride, column_stride)
                        } else {
                            geometry.im2col(
                                input,
                                image,
                                [channel_stride, row_stride, column_stride],
                                group,
                                columns,
                                p,
                            );
                            MatrixRef::new(&*columns, p, 1)
                        };
                        gemm(
                            og,
                            p,
                            k,
                            <E as GemmElement>::ONE,
                            MatrixRef::new(&grad_out[group * og * p..], p, 1),
                            columns.t(),
                            <E as GemmElement>::ONE,
                            MatrixMut::new(&mut sum[group * og * k..(group + 1) * og * k], k, 1),
                        );
                    }
                }
            };
            if in_place {
                work(&mut []);
            } else {
                E::with_workspace(k * p, work);
            }
            sum
        };
        let images = geometry.images_per_share();
        let sums = if images >= spec.batch {
            vec![run(0..spec.batch)]
        } else {
            map_shares(spec.batch.div_ceil(images), |share| {
                run(share * images..((share + 1) * images).min(spec.batch))
            })
        };
        for (index, offset) in grad_layout.offsets().enumerate() {
            let total = sums.iter().fold(grad_weight[offset], |acc, sum| acc + sum[index]);
            grad_weight[offset] = total;
        }
        Ok(())
    }

    fn conv2d_backward_bias(
        &self,
        spec: &Conv2dSpec,
        grad_output: &CpuBuffer<E>,
        grad_bias: ViewMut<'_, CpuBuffer<E>>,
    ) -> Result<(), Error> {
        spec.check()?;
        spec.check_operand("bias's gradient", &grad_bias.as_view(), &[spec.out_channels])?;
        check_grad_output("conv2d", &spec.output_dims(), grad_output.len())?;
        let (grad_bias, grad_layout) = (grad_bias.buffer, &grad_bias.layout);
        let pixels = spec.out_height * spec.out_width;
        for (channel, offset) in grad_layout.offsets().enumerate() {
            // Sixteen running sums, not one: the compiler keeps them in a vector, where
            // a single sum's chain of dependent additions allows no such reordering.
            let mut sums = [<E as GemmElement>::ZERO; 16];
            for image in 0..spec.batch {
                let start = (image * spec.out_channels + channel) * pixels;
                let (chunks, rest) = grad_output[start..start + pixels].as_chunks::<16>();
                for chunk in chunks {
                    for (sum, &x) in sums.iter_mut().zip(chunk) {
                        *sum += x;
                    }
                }
                for (sum, &x) in sums.iter_mut().zip(rest) {
                    *sum += x;
                }
            }
            grad_bias[offset] += sums.iter().fold(<E as GemmElement>::ZERO, |acc, &x| acc + x);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The convolution by its definition (see `ferrograd_device::ops::conv`), one
    /// output element at a time, on contiguous data.
    fn direct(spec: &Conv2dSpec, input: &[f64], weight: &[f64]) -> Vec<f64> {
        let [n, c, h, w] = spec.input_dims();
        let [o, cg, kh, kw] = spec.weight_dims();
        let (oh, ow) = (spec.out_height, spec.out_width);
        let og = o / spec.groups;
        let mut out = vec![0.0; n * o * oh * ow];
        for b in 0..n {
            for f in 0..o {
                let g = f / og;
                for y in 0..oh {
                    for x in 0..ow {
                        let mut sum = 0.0;
                        for ci in 0..cg {
                            for i in 0..kh {
                                for j in 0..kw {
                                    let iy =
                                        (y * spec.stride[0] + i * spec.dilation[0]) as isize - spec.pad_top as isize;
                                    let ix =
                                        (x * spec.stride[1] + j * spec.dilation[1]) as isize - spec.pad_left as isize;
                                    if iy < 0 || ix < 0 || iy >= h as isize || ix >= w as isize {
                                        continue;
                                    }
                                    let channel = g * cg + ci;
                                    sum += input[((b * c + channel) * h + iy as usize) * w + ix as usize]
                                        * weight[((f * cg + ci) * kh + i) * kw + j];
                                }
                            }
                        }
                        out[((b * o + f) * oh + y) * ow + x] = sum;
                    }
                }
            }
        }
        out
    }

    fn values(len: usize, seed: usize) -> Vec<f64> {
        (0..len)
            .map(|i| (((i * 7 + seed * 13) % 17) as f64 - 8.0) / 8.0)
            .collect()
    }

    fn contiguous(dims: [usize; 4]) -> Layout {
        Layout::from_parts(&dims, &[dims[1] * dims[2] * dims[3], dims[2] * dims[3], dims[3], 1])
    }

    /// im2col + GEMM, the in-place 1×1 path and the threaded batch split agree with
    /// the definition, across strides, paddings, dilations and groups.
    #[test]
    fn forward_matches_the_definition() {
        let cpu = Cpu::default();
        let cases = [
            ([2, 3, 7, 6], [4, 3, 3, 2], [1, 1], Padding::Valid, [1, 1], 1),
            ([3, 4, 8, 9], [6, 2, 3, 3], [2, 1], Padding::Symmetric(1, 2), [1, 2], 2),
            ([2, 4, 5, 5], [4, 1, 3, 3], [1, 1], Padding::Same, [2, 1], 4),
            ([2, 4, 5, 5], [6, 4, 1, 1], [1, 1], Padding::Valid, [1, 1], 1),
            ([1, 2, 6, 7], [2, 2, 4, 4], [1, 1], Padding::Same, [1, 1], 1),
            // Stride 1 over more output channels than a tile's 8 rows, ragged, in
            // place and padded; a kernel as wide as the input (one output column).
            ([3, 5, 9, 11], [19, 5, 3, 2], [1, 1], Padding::Valid, [1, 1], 1),
            ([2, 6, 7, 5], [22, 3, 3, 3], [1, 1], Padding::Same, [1, 1], 2),
            ([2, 3, 5, 8], [4, 3, 2, 8], [1, 1], Padding::Valid, [1, 1], 1),
            // Output rows of whole vectors (8 in f64), written straight to the output.
            ([2, 3, 8, 8], [10, 3, 3, 3], [1, 1], Padding::Symmetric(1, 1), [1, 1], 1),
            ([2, 3, 9, 17], [3, 3, 2, 2], [1, 1], Padding::Valid, [1, 1], 1),
            // Depthwise with a channel multiplier.
            ([2, 4, 9, 9], [8, 1, 3, 3], [1, 1], Padding::Symmetric(1, 1), [1, 1], 4),
            // Strided, 14×14 outputs: images three to a product, the last product two.
            ([5, 4, 30, 30], [6, 2, 3, 3], [2, 2], Padding::Valid, [1, 1], 2),
            // Depthwise read in place, rows of two vectors and a ragged one (f64), and
            // output rows in blocks of 4 and 1; padded and dilated, blocks of 8, 8, 2, 1.
            ([3, 5, 7, 37], [5, 1, 3, 2], [1, 1], Padding::Valid, [1, 1], 5),
            (
                [2, 3, 19, 20],
                [3, 1, 5, 3],
                [1, 1],
                Padding::Symmetric(2, 1),
                [1, 2],
                3,
            ),
            (
                [64, 4, 28, 28],
                [8, 4, 4, 4],
                [1, 1],
                Padding::Explicit {
                    top: 0,
                    bottom: 1,
                    left: 2,
                    right: 0,
                },
                [1, 1],
                1,
            ),
        ];
        for (input, weight, stride, padding, dilation, groups) in cases {
            let spec = Conv2dSpec::new(input, weight, stride, padding, dilation, groups).unwrap();
            let x = values(input.iter().product(), 1);
            let w = values(weight.iter().product(), 2);
            let expected = direct(&spec, &x, &w);
            let (xb, wb) = (CpuBuffer(x), CpuBuffer(w));
            let out = cpu
                .conv2d_forward(
                    &spec,
                    View::new(&xb, contiguous(input)),
                    View::new(&wb, contiguous(weight)),
                    None,
                )
                .unwrap();
            for (a, e) in out.0.iter().zip(&expected) {
                assert!((a - e).abs() < 1e-12, "{spec:?}: {a} vs {e}");
            }
        }
    }

    /// The weight's gradient by its definition, `Σ_{n,y,x} gy[n][f][y][x] ·
    /// x[n][channel][y·s + i·d - pad][x·s + j·d - pad]`, added to `initial`, against
    /// the kernel's: through `correlate` (stride 1, filters enough for a vector of
    /// f64, with and without padding, groups, a ragged vector of filters, several
    /// shares of images) and through im2col + GEMM.
    #[test]
    fn weight_gradient_matches_the_definition() {
        let cpu = Cpu::default();
        let cases = [
            ([3, 5, 9, 11], [19, 5, 3, 2], [1, 1], Padding::Valid, [1, 1], 1),
            ([4, 6, 7, 5], [16, 3, 3, 3], [1, 1], Padding::Same, [1, 1], 2),
            ([2, 3, 8, 8], [8, 3, 3, 3], [1, 1], Padding::Symmetric(1, 1), [1, 2], 1),
            ([2, 4, 9, 9], [8, 2, 3, 3], [2, 1], Padding::Symmetric(1, 1), [1, 1], 2),
            // Depthwise (its own kernel): padded; in place, dilated, with a channel
            // multiplier and rows of a vector and a ragged one.
            ([2, 4, 9, 9], [4, 1, 3, 3], [1, 1], Padding::Same, [1, 1], 4),
            ([3, 3, 11, 21], [6, 1, 3, 2], [1, 1], Padding::Valid, [2, 1], 3),
        ];
        for (input, weight, stride, padding, dilation, groups) in cases {
            let spec = Conv2dSpec::new(input, weight, stride, padding, dilation, groups).unwrap();
            let x = values(input.iter().product(), 5);
            let out_len: usize = spec.output_dims().iter().product();
            let gy = values(out_len, 6);
            let initial = values(weight.iter().product(), 7);
            let [n, c, h, w] = input;
            let [o, cg, kh, kw] = weight;
            let (oh, ow) = (spec.out_height, spec.out_width);
            let og = o / groups;
            let mut expected = initial.clone();
            for f in 0..o {
                for ci in 0..cg {
                    for i in 0..kh {
                        for j in 0..kw {
                            let mut sum = 0.0;
                            for b in 0..n {
                                for y in 0..oh {
                                    for xo in 0..ow {
                                        let iy = (y * stride[0] + i * dilation[0]) as isize - spec.pad_top as isize;
                                        let ix = (xo * stride[1] + j * dilation[1]) as isize - spec.pad_left as isize;
                                        if iy < 0 || ix < 0 || iy >= h as isize || ix >= w as isize {
                                            continue;
                                        }
                                        let channel = (f / og) * cg + ci;
                                        sum += gy[((b * o + f) * oh + y) * ow + xo]
                                            * x[((b * c + channel) * h + iy as usize) * w + ix as usize];
                                    }
                                }
                            }
                            expected[((f * cg + ci) * kh + i) * kw + j] += sum;
                        }
                    }
                }
            }
            let mut grad = CpuBuffer(initial);
            cpu.conv2d_backward_weight(
                &spec,
                View::new(&CpuBuffer(x), contiguous(input)),
                &CpuBuffer(gy),
                ViewMut::new(&mut grad, contiguous(weight)),
            )
            .unwrap();
            for (a, e) in grad.0.iter().zip(&expected) {
                assert!((a - e).abs() < 1e-9, "{spec:?}: {a} vs {e}");
            }
        }
    }

    /// Inputs that are views: rows longer than the image (the windows then read a
    /// padded copy), columns of stride 2, channels further apart than an image's
    /// rows (read in place), and the batch axis last.
    #[test]
    fn forward_reads_views() {
        let cpu = Cpu::default();
        let dims = [2, 3, 6, 7];
        let [n, c, h, w] = dims;
        let layouts: [[usize; 4]; 4] = [
            [c * h * (w + 3), h * (w + 3), w + 3, 1],
            [c * h * w * 2, h * w * 2, w * 2, 2],
            [c * (h * w + 5), h * w + 5, w, 1],
            [1, h * w * n, w * n, n],
        ];
        // Dense, and depthwise (which reads each channel on its own).
        for (padding, weight_dims, groups) in [
            (Padding::Valid, [5, 3, 3, 2], 1),
            (Padding::Same, [5, 3, 3, 2], 1),
            (Padding::Valid, [6, 1, 3, 2], 3),
            (Padding::Same, [6, 1, 3, 2], 3),
        ] {
            let spec = Conv2dSpec::new(dims, weight_dims, [1, 1], padding, [1, 1], groups).unwrap();
            let logical = values(n * c * h * w, 3);
            let weight = values(weight_dims.iter().product(), 4);
            let expected = direct(&spec, &logical, &weight);
            for strides in layouts {
                let layout = Layout::from_parts(&dims, &strides);
                let len = layout.offsets().max().unwrap() + 1;
                let mut buffer = vec![f64::NAN; len];
                for (value, offset) in logical.iter().zip(layout.offsets()) {
                    buffer[offset] = *value;
                }
                let out = cpu
                    .conv2d_forward(
                        &spec,
                        View::new(&CpuBuffer(buffer), layout),
                        View::new(&CpuBuffer(weight.clone()), contiguous(weight_dims)),
                        None,
                    )
                    .unwrap();
                for (a, e) in out.0.iter().zip(&expected) {
                    assert!((a - e).abs() < 1e-12, "{strides:?} {padding:?}: {a} vs {e}");
                }
            }
        }
    }
}
