//! One plane of a depthwise convolution (one input channel, one filter, stride 1), on
//! CPUs with AVX-512F: `out[y][x] = bias + Σ_{i,j} taps[i][j] · plane[y + i·dh][x + j·dw]`.
//!
//! Why not the shifted GEMM: a depthwise convolution is a product of one row (the
//! filter) by a depth of only the taps (9 for 3×3), once per channel and image. The
//! GEMM's fixed costs per call and per tile (packing the filter, cutting the runs into
//! pieces, dispatching tiles) then outweigh its 9 multiply-adds per vector: the conv
//! benchmark's (16, 32, 28, 28) depthwise case ran at 1.9× PyTorch's time through it.
//! Here the filter is broadcast into registers once and a block of [`ROWS`] output rows
//! is summed vector by vector along the row, straight from the (padded) plane.

use super::avx512::{Avx512, available};

/// Output rows summed at a time: 8 accumulators, the filter's tap and one loaded
/// vector. More rows per block share each broadcast of a tap and each loop step.
const ROWS: usize = 8;

/// The sizes of one plane: how [`depthwise`] reads its input and writes its output.
#[derive(Clone, Copy, Debug)]
pub struct DepthwiseShape {
    /// Elements from one row of the input plane to the next, at least
    /// `out_width + (kernel[1] - 1) · dilation[1]`.
    pub row_len: usize,
    /// Output rows.
    pub out_height: usize,
    /// Output columns; the output's rows follow each other, `out_width` apart.
    pub out_width: usize,
    /// Kernel rows and columns.
    pub kernel: [usize; 2],
    /// Distance between taps, in rows and columns.
    pub dilation: [usize; 2],
}

/// `out[y·out_width + x] = bias + Σ_{i,j} taps[i·kw + j] · plane[(y + i·dh)·row_len + x +
/// j·dw]` for every output pixel, overwriting `out`'s first `out_height · out_width`
/// elements.
///
/// # Panics
/// Unless [`available`]; if `taps` is not `kh · kw` long, if a row is shorter than the
/// windows read from it, or if `plane` or `out` is too short.
pub(super) fn depthwise<E: Avx512>(shape: &DepthwiseShape, plane: &[E], taps: &[E], bias: E, out: &mut [E]) {
    assert!(available(), "the depthwise kernel runs only on CPUs with AVX-512F");
    let DepthwiseShape {
        row_len,
        out_height,
        out_width,
        kernel: [kh, kw],
        dilation: [dh, dw],
    } = *shape;
    assert_eq!(taps.len(), kh * kw, "depthwise: one tap per kernel element");
    if out_height == 0 || out_width == 0 {
        return;
    }
    assert!(kh > 0 && kw > 0, "depthwise: an empty kernel");
    let reach = out_width + (kw - 1) * dw;
    assert!(reach <= row_len, "depthwise: rows shorter than the windows");
    let last_row = out_height - 1 + (kh - 1) * dh;
    assert!(
        last_row * row_len + reach <= plane.len(),
        "depthwise: `plane` too short"
    );
    assert!(out_height * out_width <= out.len(), "depthwise: `out` too short");

    let block = Block {
        taps,
        kh,
        kw,
        row_step: dh * row_len,
        column_step: dw,
        row_len,
        out_width,
        bias,
    };
    let lanes = E::LANES;
    let mut y = 0;
    while y < out_height {
        let rows = out_height - y;
        for x in (0..out_width).step_by(lanes) {
            let width = lanes.min(out_width - x);
            let input = plane[y * row_len + x..].as_ptr();
            let output = out[y * out_width + x..].as_mut_ptr();
            // SAFETY: AVX-512F was checked above. The block's rows `y..y + R` (R ≤
            // rows) read, for every tap, `width` elements from `(y + r + i·dh)·row_len +
            // x + j·dw`, whose end is at most `last_row · row_len + reach` (checked
            // against `plane`); it writes `width` elements of output rows below
            // `out_height` (checked against `out`), which `out`'s exclusive borrow
            // leaves to it alone.
            unsafe {
                match (rows, width == lanes) {
                    (8.., true) => block.sum::<ROWS, false>(input, output, width),
                    (4..=7, true) => block.sum::<4, false>(input, output, width),
                    (2..=3, true) => block.sum::<2, false>(input, output, width),
                    (_, true) => block.sum::<1, false>(input, output, width),
                    (8.., false) => block.sum::<ROWS, true>(input, output, width),
                    (4..=7, false) => block.sum::<4, true>(input, output, width),
                    (2..=3, false) => block.sum::<2, true>(input, output, width),
                    (_, false) => block.sum::<1, true>(input, output, width),
                }
            }
        }
        y += match rows {
            8.. => ROWS,
            4..=7 => 4,
            2..=3 => 2,
            _ => 1,
        };
    }
}

/// What every block of a plane shares.
struct Block<'a, E> {
    taps: &'a [E],
    kh: usize,
    kw: usize,
    /// Elements between the rows of consecutive kernel rows: `dh · row_len`.
    row_step: usize,
    /// Elements between consecutive kernel columns: `dw`.
    column_step: usize,
    row_len: usize,
    out_width: usize,
    bias: E,
}

impl<E: Avx512> Block<'_, E> {
    /// `R` output rows of one vector (`width` lanes, all of them unless `MASKED`),
    /// the first at `output`, reading the window whose first tap is at `input`.
    ///
    /// # Safety
    /// AVX-512F is available; `width ≤ LANES`, and equal unless `MASKED`; for `r < R`,
    /// `i < kh`, `j < kw`, the `width` elements at `input + r·row_len + i·row_step +
    /// j·column_step` are readable, and those at `output + r·out_width` writable.
    #[target_feature(enable = "avx512f")]
    unsafe fn sum<const R: usize, const MASKED: bool>(&self, input: *const E, output: *mut E, width: usize) {
        // SAFETY: AVX-512F is available, as the caller guarantees; the loads and stores
        // stay inside the elements the caller guarantees.
        unsafe {
            let mut sums = [E::splat(self.bias); R];
            let mut taps = self.taps.iter();
            for i in 0..self.kh {
                let row = input.add(i * self.row_step);
                for j in 0..self.kw {
                    let tap = E::splat(*taps.next().unwrap_unchecked());
                    let window = row.add(j * self.column_step);
                    for (r, sum) in sums.iter_mut().enumerate() {
                        let p = window.add(r * self.row_len);
                        let x = if MASKED { E::load_first(p, width) } else { E::load(p) };
                        *sum = E::mul_add(tap, x, *sum);
                    }
                }
            }
            for (r, &sum) in sums.iter().enumerate() {
                E::store_first(output.add(r * self.out_width), width, sum);
            }
        }
    }
}

/// Copies `rows` rows of `width` elements, `src_stride` apart in `src`, to rows
/// `dst_stride` apart in `dst`: the middle of a convolution's padded copy of its
/// input. A vector at a time with masked ends, where `copy_from_slice` on rows this
/// short (16 elements in the resnet case) is a call to `memmove` per row: padding
/// took 4–5% of a stride-1 convolution's time through those calls.
///
/// # Panics
/// Unless [`available`]; if a row reaches past the end of `src` or `dst`.
pub(super) fn copy_rows<E: Avx512>(
    src: &[E],
    src_stride: usize,
    dst: &mut [E],
    dst_stride: usize,
    rows: usize,
    width: usize,
) {
    assert!(available(), "copy_rows runs only on CPUs with AVX-512F");
    if rows == 0 || width == 0 {
        return;
    }
    assert!(
        (rows - 1) * src_stride + width <= src.len(),
        "copy_rows: `src` too short"
    );
    assert!(
        (rows - 1) * dst_stride + width <= dst.len(),
        "copy_rows: `dst` too short"
    );
    // SAFETY: AVX-512F was checked above; both slices hold every row (checked above).
    unsafe { copy_rows_unchecked(src.as_ptr(), src_stride, dst.as_mut_ptr(), dst_stride, rows, width) }
}

/// [`copy_rows`] without its checks.
///
/// # Safety
/// AVX-512F is available; `rows` rows of `width` elements are readable at `src` and
/// writable at `dst`, `src_stride` and `dst_stride` apart, and do not overlap.
#[target_feature(enable = "avx512f")]
unsafe fn copy_rows_unchecked<E: Avx512>(
    src: *const E,
    src_stride: usize,
    dst: *mut E,
    dst_stride: usize,
    rows: usize,
    width: usize,
) {
    // SAFETY: each access lies within a row the caller guarantees.
    unsafe {
        for row in 0..rows {
            let (from, to) = (src.add(row * src_stride), dst.add(row * dst_stride));
            let mut x = 0;
            while x + E::LANES <= width {
                E::store_first(to.add(x), E::LANES, E::load(from.add(x)));
                x += E::LANES;
            }
            if x < width {
                E::store_first(to.add(x), width - x, E::load_first(from.add(x), width - x));
            }
        }
    }
}

/// The filter's gradient of one plane of [`depthwise`]: `sums[i·kw + j] += Σ_{y,x}
/// grad[y·out_width + x] · plane[(y + i·dh)·row_len + x + j·dw]`, vector by vector
/// along the rows. Through im2col and a one-row GEMM per channel and image, the
/// copies took two thirds of the depthwise case's forward + backward (perf).
///
/// # Panics
/// Unless [`available`]; if `sums` is not `kh · kw` long, if a row is shorter than
/// the windows read from it, or if `plane` or `grad` is too short.
pub(super) fn depthwise_filter_grad<E: Avx512>(shape: &DepthwiseShape, plane: &[E], grad: &[E], sums: &mut [E]) {
    assert!(available(), "the depthwise kernel runs only on CPUs with AVX-512F");
    let DepthwiseShape {
        row_len,
        out_height,
        out_width,
        kernel: [kh, kw],
        dilation: [dh, dw],
    } = *shape;
    assert_eq!(sums.len(), kh * kw, "depthwise: one sum per kernel element");
    if out_height == 0 || out_width == 0 {
        return;
    }
    let reach = out_width + (kw - 1) * dw;
    assert!(reach <= row_len, "depthwise: rows shorter than the windows");
    let last_row = out_height - 1 + (kh - 1) * dh;
    assert!(
        last_row * row_len + reach <= plane.len(),
        "depthwise: `plane` too short"
    );
    assert!(out_height * out_width <= grad.len(), "depthwise: `grad` too short");
    for i in 0..kh {
        for j in 0..kw {
            let window = plane[i * dh * row_len + j * dw..].as_ptr();
            // SAFETY: AVX-512F was checked above. Row `y < out_height` of the window
            // reads `out_width` elements from `(y + i·dh)·row_len + j·dw`, whose end
            // is at most `last_row · row_len + reach` (checked against `plane`), and
            // the same row of `grad`, inside its `out_height · out_width` elements.
            let sum = unsafe { dot_rows::<E>(window, row_len, grad.as_ptr(), out_width, out_height) };
            sums[i * kw + j] = sums[i * kw + j] + sum;
        }
    }
}

/// `Σ_{y < rows, x < width} a[y·a_stride + x] · b[y·width + x]`, four rows at a time
/// into four accumulators (one chain of dependent multiply-adds would wait on each).
///
/// # Safety
/// AVX-512F is available; for `y < rows`, the `width` elements at `a + y·a_stride`
/// and at `b + y·width` are readable.
#[target_feature(enable = "avx512f")]
unsafe fn dot_rows<E: Avx512>(a: *const E, a_stride: usize, b: *const E, width: usize, rows: usize) -> E {
    // SAFETY: every access lies in a row the caller guarantees.
    unsafe {
        let mut sums = [E::zero(); 4];
        let mut y = 0;
        while y < rows {
            for (r, sum) in sums.iter_mut().enumerate() {
                if y + r < rows {
                    let (a, b) = (a.add((y + r) * a_stride), b.add((y + r) * width));
                    let mut x = 0;
                    while x + E::LANES <= width {
                        *sum = E::mul_add(E::load(a.add(x)), E::load(b.add(x)), *sum);
                        x += E::LANES;
                    }
                    if x < width {
                        let lanes = width - x;
                        *sum = E::mul_add(E::load_first(a.add(x), lanes), E::load_first(b.add(x), lanes), *sum);
                    }
                }
            }
            y += 4;
        }
        let mut total = [E::ZERO; 16];
        let mut result = E::ZERO;
        for sum in sums {
            E::store_first(total.as_mut_ptr(), E::LANES, sum);
            result = total[..E::LANES].iter().fold(result, |acc, &x| acc + x);
        }
        result
    }
}
