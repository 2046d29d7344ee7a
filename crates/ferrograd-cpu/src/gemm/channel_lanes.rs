//! A convolution with the output channels in the vector lanes, on CPUs with AVX-512F,
//! for the small feature maps of a network's later stages.
//!
//! Why: im2col + GEMM and the shifted GEMM put output pixels in the lanes. On
//! ResNet-18's 8×8, 4×4 and 2×2 maps (64×64 input) a row or a whole map fills a
//! fraction of a vector, and, with padding 1, a third to a half of the products are
//! with padding zeros (a 3×3 kernel over a 2×2 map meets the image with 16 of its 36
//! tap-pixel pairs). Those layers ran at 1.3–1.9× PyTorch's time. Here each tile is
//! [`ROWS`] output pixels × two vectors of output channels: channels come in multiples
//! of 16, so the lanes are full whatever the map's size, and a tile skips the kernel
//! taps that fall in the padding for all of its pixels. Pixels are ordered so that a
//! tile's pixels share their taps: the pixels of the same place in every image of the
//! batch (a corner, an edge, the inside) go together.
//!
//! The input is read channels-last and padded ([`ChannelLanesShape`] says how), so a
//! tile's inner loop walks the input channels of one tap with unit stride: [`ROWS`]
//! broadcasts and two loads of the packed weight feed `2 · ROWS` multiply-adds.

use super::MatrixRef;
use super::avx512::{Avx512, Output, available};

/// Output pixels per tile: 8 × 2 accumulators, two vectors of the weight and a
/// broadcast. Eight divides the pixels of one place over a batch of 8, 16, …
const ROWS: usize = 8;

/// The geometry of [`conv`]: how it reads its channels-last input and writes its
/// output.
#[derive(Clone, Copy, Debug)]
pub struct ChannelLanesShape {
    /// Images in the batch.
    pub images: usize,
    /// Input channels: the input's innermost, contiguous axis.
    pub in_channels: usize,
    /// Output channels.
    pub out_channels: usize,
    /// The input's height and width before padding.
    pub in_size: [usize; 2],
    /// Zeros before the first input row and column (the input holds them).
    pub pad: [usize; 2],
    /// The padded input's height and width: each image is `padded[0] × padded[1] ×
    /// in_channels` elements.
    pub padded: [usize; 2],
    /// Kernel rows and columns.
    pub kernel: [usize; 2],
    /// Steps between output pixels, in input rows and columns.
    pub stride: [usize; 2],
    /// Distance between taps, in input rows and columns.
    pub dilation: [usize; 2],
    /// The output's height and width.
    pub out_size: [usize; 2],
}

impl ChannelLanesShape {
    /// The kernel rows (or columns, `axis` 1) that meet the image, not its padding, at
    /// output row (column) `at`: a range of taps.
    fn taps_inside(&self, axis: usize, at: usize) -> (usize, usize) {
        let start = at * self.stride[axis];
        let (pad, size, dilation) = (self.pad[axis], self.in_size[axis], self.dilation[axis]);
        let first = (0..self.kernel[axis]).find(|&i| start + i * dilation >= pad);
        let last = (0..self.kernel[axis])
            .rev()
            .find(|&i| start + i * dilation < pad + size);
        match (first, last) {
            (Some(first), Some(last)) if first <= last => (first, last + 1),
            _ => (0, 0),
        }
    }
}

/// One tile: its pixels (offsets of their first tap in the input, and of their first
/// channel in the output), how many are real, and the taps it sums.
struct Tile {
    input: [usize; ROWS],
    output: [usize; ROWS],
    pixels: usize,
    rows: (usize, usize),
    columns: (usize, usize),
}

/// `out[n][o][y][x] = Σ_{c,i,j} weight[o][c·kh·kw + i·kw + j] ·
/// input[n][y·sh + i·dh][x·sw + j·dw][c]` for every image `n`, output channel `o` and
/// output pixel, overwriting
/// `out` (`images × out_channels × out_height × out_width`, row-major). `input` is
/// channels-last and padded as `shape` says, zeros in the padding; `weight` is
/// `out_channels × (in_channels · kh · kw)`.
///
/// # Panics
/// Unless [`available`]; if a slice is shorter than `shape` says, or if a window
/// reaches past the padded input.
pub(super) fn conv<E: Avx512>(shape: &ChannelLanesShape, input: &[E], weight: &MatrixRef<'_, E>, out: &mut [E]) {
    assert!(
        available(),
        "the channel-lanes convolution runs only on CPUs with AVX-512F"
    );
    let s = *shape;
    let [out_height, out_width] = s.out_size;
    let pixels = out_height * out_width;
    let taps = s.kernel[0] * s.kernel[1];
    let depth = s.in_channels * taps;
    let image_len = s.padded[0] * s.padded[1] * s.in_channels;
    assert!(s.images * image_len <= input.len(), "channel lanes: `input` too short");
    assert!(
        s.images * s.out_channels * pixels <= out.len(),
        "channel lanes: `out` too short"
    );
    if s.images == 0 || s.out_channels == 0 || pixels == 0 {
        return;
    }
    for axis in 0..2 {
        let reach = (s.out_size[axis] - 1) * s.stride[axis] + (s.kernel[axis].max(1) - 1) * s.dilation[axis];
        assert!(
            reach < s.padded[axis],
            "channel lanes: a window reaches past the padded input"
        );
    }
    super::check_len(
        "weight",
        s.out_channels,
        depth,
        weight.data.len(),
        weight.row_stride,
        weight.column_stride,
    );

    // Pixels in order of the taps they meet (then image, then place), so that a tile's
    // pixels share them.
    let row_taps: Vec<_> = (0..out_height).map(|y| s.taps_inside(0, y)).collect();
    let column_taps: Vec<_> = (0..out_width).map(|x| s.taps_inside(1, x)).collect();
    let mut order: Vec<(usize, usize, usize)> = (0..s.images)
        .flat_map(|n| (0..out_height).flat_map(move |y| (0..out_width).map(move |x| (n, y, x))))
        .collect();
    order.sort_by_key(|&(n, y, x)| (row_taps[y], column_taps[x], n));
    let row_len = s.padded[1] * s.in_channels;
    let tiles: Vec<Tile> = order
        .chunks(ROWS)
        .map(|chunk| {
            let place = |k: usize| chunk[k.min(chunk.len() - 1)];
            let mut rows = (usize::MAX, 0);
            let mut columns = (usize::MAX, 0);
            for &(_, y, x) in chunk {
                rows = (rows.0.min(row_taps[y].0), rows.1.max(row_taps[y].1));
                columns = (columns.0.min(column_taps[x].0), columns.1.max(column_taps[x].1));
            }
            Tile {
                // A short tile repeats its last pixel: computed, not stored.
                input: std::array::from_fn(|k| {
                    let (n, y, x) = place(k);
                    n * image_len + y * s.stride[0] * row_len + x * s.stride[1] * s.in_channels
                }),
                output: std::array::from_fn(|k| {
                    let (n, y, x) = place(k);
                    n * s.out_channels * pixels + y * out_width + x
                }),
                pixels: chunk.len(),
                rows,
                columns,
            }
        })
        .collect();

    let width = 2 * E::LANES;
    let blocks = s.out_channels.div_ceil(width);
    let flops = 2 * s.images * pixels * s.out_channels * depth;
    let threads = if flops >= PARALLEL_MIN_FLOPS {
        crate::threads().min(blocks)
    } else {
        1
    };
    let share = blocks.div_ceil(threads);
    let output = Output {
        data: out.as_mut_ptr(),
        row_stride: pixels,
    };
    let geometry = Geometry {
        in_channels: s.in_channels,
        kernel_width: s.kernel[1],
        row_step: s.dilation[0] * row_len,
        column_step: s.dilation[1] * s.in_channels,
        panel_step: taps * width,
    };
    // Each thread packs the weight of its blocks of output channels, one block at a
    // time (in L2 while every tile reads it), and writes their planes of the output.
    let run = |first: usize| {
        E::with_pack_buffers(|buffers| {
            let panel = buffers.a(depth * width);
            for block in first..(first + share).min(blocks) {
                let channels = block * width..((block + 1) * width).min(s.out_channels);
                E::pack_b(weight, channels.clone(), 0..depth, panel);
                for tile in &tiles {
                    // SAFETY: AVX-512F is available (asserted above). The panel holds
                    // `depth` steps of `width` elements. Every tap a tile reads lies in
                    // its image's padded input: a pixel's first tap is at most
                    // `(out - 1) · stride` along each axis, its last `(kernel - 1) ·
                    // dilation` further, and the reach was asserted inside `padded`
                    // for each axis, with `images · image_len ≤ input.len()`. The tile
                    // writes its pixels of this block's channels, inside `out`
                    // (asserted long enough) and written by no other thread or tile.
                    unsafe {
                        tile_kernel(
                            &geometry,
                            tile,
                            input.as_ptr(),
                            panel.as_ptr(),
                            &output,
                            channels.clone(),
                        )
                    };
                }
            }
        });
    };
    if threads == 1 {
        run(0);
    } else {
        crate::threads::map_shares(blocks.div_ceil(share), |share_index| run(share_index * share));
    }
}

/// Floating-point operations below which a convolution stays on one thread, as in
/// `avx512.rs`.
const PARALLEL_MIN_FLOPS: usize = 1 << 18;

/// What every tile needs of the shape, in elements.
struct Geometry {
    in_channels: usize,
    kernel_width: usize,
    /// From one kernel row's input to the next.
    row_step: usize,
    /// From one kernel column's input to the next.
    column_step: usize,
    /// From one input channel's weights to the next in the packed panel.
    panel_step: usize,
}

/// One tile: `ROWS` pixels × the block's `channels`, summed over the tile's taps and
/// every input channel, then stored to each real pixel's place in `out`.
///
/// # Safety
/// AVX-512F is available; for every tap `(i, j)` of the tile and every pixel `k`,
/// `input + tile.input[k] + i · row_step + j · column_step` starts `in_channels`
/// readable elements; `panel` holds `in_channels · kh · kw` steps of `2 · LANES`
/// elements; `out.data + tile.output[k] + o · out.row_stride` is writable for each real
/// pixel `k` and channel `o` in `channels`, and written by no one else meanwhile.
#[target_feature(enable = "avx512f")]
unsafe fn tile_kernel<E: Avx512>(
    geometry: &Geometry,
    tile: &Tile,
    input: *const E,
    panel: *const E,
    out: &Output<E>,
    channels: std::ops::Range<usize>,
) {
    let lanes = E::LANES;
    let width = 2 * lanes;
    // SAFETY: AVX-512F is available, as the caller guarantees.
    let mut sums = [[unsafe { E::zero() }; 2]; ROWS];
    for i in tile.rows.0..tile.rows.1 {
        for j in tile.columns.0..tile.columns.1 {
            let tap = i * geometry.row_step + j * geometry.column_step;
            // (`wrapping_add`: only the addresses read below are known to be inside.)
            let pixels: [*const E; ROWS] = std::array::from_fn(|k| input.wrapping_add(tile.input[k] + tap));
            let mut weights = panel.wrapping_add((i * geometry.kernel_width + j) * width);
            for c in 0..geometry.in_channels {
                // SAFETY: channel `c < in_channels` of each pixel's tap and this tap's
                // weights for channel `c` are readable, as the caller guarantees.
                unsafe {
                    let w0 = E::load(weights);
                    let w1 = E::load(weights.add(lanes));
                    for (sum, pixel) in sums.iter_mut().zip(&pixels) {
                        let x = E::splat(*pixel.add(c));
                        sum[0] = E::mul_add(x, w0, sum[0]);
                        sum[1] = E::mul_add(x, w1, sum[1]);
                    }
                }
                weights = weights.wrapping_add(geometry.panel_step);
            }
        }
    }
    // Out through a buffer: the tile's channels lie a plane apart in `out`.
    let mut values = [[E::ZERO; 32]; ROWS];
    for (row, sum) in values.iter_mut().zip(&sums) {
        // SAFETY: a row holds 32 ≥ 2 · LANES elements.
        unsafe {
            E::store_first(row.as_mut_ptr(), lanes, sum[0]);
            E::store_first(row.as_mut_ptr().add(lanes), lanes, sum[1]);
        }
    }
    for (row, &at) in values.iter().zip(&tile.output).take(tile.pixels) {
        for (o, &value) in channels.clone().zip(row) {
            // SAFETY: pixel `at` of channel `o` is this tile's to write, as the caller
            // guarantees.
            unsafe { *out.data.add(at + o * out.row_stride) = value };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Small multiples of 1/4: every product and partial sum is exact in f32 and f64.
    fn values(len: usize, seed: usize) -> Vec<f64> {
        (0..len)
            .map(|i| ((i * 7 + seed * 13) % 11) as f64 / 4.0 - 1.25)
            .collect()
    }

    /// The definition, in f64, on an NCHW input without padding stored.
    fn direct(s: &ChannelLanesShape, input: &[f64], weight: &[f64]) -> Vec<f64> {
        let [h, w] = s.in_size;
        let [oh, ow] = s.out_size;
        let [kh, kw] = s.kernel;
        let mut out = vec![0.0; s.images * s.out_channels * oh * ow];
        for n in 0..s.images {
            for o in 0..s.out_channels {
                for y in 0..oh {
                    for x in 0..ow {
                        let mut sum = 0.0;
                        for c in 0..s.in_channels {
                            for i in 0..kh {
                                for j in 0..kw {
                                    let iy = (y * s.stride[0] + i * s.dilation[0]) as isize - s.pad[0] as isize;
                                    let ix = (x * s.stride[1] + j * s.dilation[1]) as isize - s.pad[1] as isize;
                                    if iy < 0 || ix < 0 || iy >= h as isize || ix >= w as isize {
                                        continue;
                                    }
                                    let at = ((n * s.in_channels + c) * h + iy as usize) * w + ix as usize;
                                    sum += input[at] * weight[((o * s.in_channels + c) * kh + i) * kw + j];
                                }
                            }
                        }
                        out[((n * s.out_channels + o) * oh + y) * ow + x] = sum;
                    }
                }
            }
        }
        out
    }

    /// `images, in, out, [h, w], kernel, stride, [top, left, bottom, right], dilation`.
    type Case = (
        usize,
        usize,
        usize,
        [usize; 2],
        [usize; 2],
        [usize; 2],
        [usize; 4],
        [usize; 2],
    );

    fn check<E: Avx512>(case: Case, from: fn(f64) -> E, to: fn(E) -> f64) {
        let (images, in_channels, out_channels, in_size, kernel, stride, [top, left, bottom, right], dilation) = case;
        let padded = [top + in_size[0] + bottom, left + in_size[1] + right];
        let out_size: [usize; 2] =
            std::array::from_fn(|a| (padded[a] - dilation[a] * (kernel[a] - 1) - 1) / stride[a] + 1);
        let shape = ChannelLanesShape {
            images,
            in_channels,
            out_channels,
            in_size,
            pad: [top, left],
            padded,
            kernel,
            stride,
            dilation,
            out_size,
        };
        let input = values(images * in_channels * in_size[0] * in_size[1], 1);
        let depth = in_channels * kernel[0] * kernel[1];
        let weight = values(out_channels * depth, 2);
        // Channels last and padded, as `conv` reads it.
        let mut padded_input = vec![E::ZERO; images * padded[0] * padded[1] * in_channels];
        for n in 0..images {
            for c in 0..in_channels {
                for y in 0..in_size[0] {
                    for x in 0..in_size[1] {
                        let at = ((n * padded[0] + top + y) * padded[1] + left + x) * in_channels + c;
                        padded_input[at] = from(input[((n * in_channels + c) * in_size[0] + y) * in_size[1] + x]);
                    }
                }
            }
        }
        let weight_e: Vec<E> = weight.iter().map(|&v| from(v)).collect();
        let expected = direct(&shape, &input, &weight);
        // One slot past the end, which must stay untouched.
        let mut out = vec![from(99.0); expected.len() + 1];
        conv(&shape, &padded_input, &MatrixRef::new(&weight_e, depth, 1), &mut out);
        for (k, (&got, &want)) in out.iter().zip(&expected).enumerate() {
            assert_eq!(to(got), want, "{case:?}: element {k}");
        }
        assert_eq!(to(out[expected.len()]), 99.0, "{case:?}: wrote past the output");
    }

    const CASES: [Case; 9] = [
        // ResNet-18's later stages (batch 2): 3×3, padding 1, stride 1 and 2.
        (2, 32, 64, [2, 2], [3, 3], [1, 1], [1, 1, 1, 1], [1, 1]),
        (2, 16, 32, [4, 4], [3, 3], [2, 2], [1, 1, 1, 1], [1, 1]),
        // Channels that fill no whole block, a batch of one, an odd map.
        (1, 5, 45, [5, 3], [3, 3], [1, 1], [1, 1, 1, 1], [1, 1]),
        // Kernels larger than the image: taps that meet no pixel for any output.
        (3, 4, 20, [2, 3], [5, 5], [1, 1], [2, 2, 2, 2], [1, 1]),
        // Uneven padding, a non-square kernel, dilation, and stride 2 by 1.
        (2, 3, 33, [6, 7], [2, 3], [2, 1], [0, 2, 1, 1], [2, 1]),
        // No padding at all, and a 1×1 kernel.
        (2, 6, 17, [3, 3], [3, 3], [1, 1], [0, 0, 0, 0], [1, 1]),
        (2, 6, 17, [3, 3], [1, 1], [2, 2], [0, 0, 0, 0], [1, 1]),
        // More pixels than one tile of a place across the batch.
        (9, 7, 40, [3, 4], [3, 3], [1, 1], [1, 1, 1, 1], [1, 1]),
        // Enough work to split over the threads.
        (4, 64, 96, [4, 4], [3, 3], [1, 1], [1, 1, 1, 1], [1, 1]),
    ];

    #[test]
    fn matches_the_definition() {
        if !available() {
            eprintln!("skipped: this CPU has no AVX-512F");
            return;
        }
        for case in CASES {
            check::<f32>(case, |v| v as f32, f64::from);
            check::<f64>(case, |v| v, |v| v);
        }
    }

    #[test]
    fn taps_inside_the_image() {
        // A 3×3 kernel, padding 1, over a 2×2 map: the first output row meets image
        // rows 0 and 1 with kernel rows 1 and 2, the second with rows 0 and 1.
        let shape = ChannelLanesShape {
            images: 1,
            in_channels: 1,
            out_channels: 1,
            in_size: [2, 2],
            pad: [1, 1],
            padded: [4, 4],
            kernel: [3, 3],
            stride: [1, 1],
            dilation: [1, 1],
            out_size: [2, 2],
        };
        assert_eq!(shape.taps_inside(0, 0), (1, 3));
        assert_eq!(shape.taps_inside(0, 1), (0, 2));
        // Stride 2 and dilation 2 over a 5-wide row with padding 2: output column 0
        // starts at padded column 0, its taps at 0, 2, 4 (image columns -2, 0, 2).
        let wide = ChannelLanesShape {
            in_size: [1, 5],
            pad: [0, 2],
            padded: [1, 9],
            kernel: [1, 3],
            stride: [1, 2],
            dilation: [1, 2],
            out_size: [1, 3],
            ..shape
        };
        assert_eq!(wide.taps_inside(1, 0), (1, 3));
        assert_eq!(wide.taps_inside(1, 2), (0, 2));
    }
}
