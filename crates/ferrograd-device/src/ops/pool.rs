//! Pooling: the sizes of a max or average pooling ([`Pool2dSpec`]) and of an adaptive
//! average pooling ([`AdaptivePool2dSpec`]), checked once, and the kernel trait a
//! device implements ([`Pool2dKernel`]).
//!
//! As in PyTorch (`torch.nn.functional.max_pool2d`, `avg_pool2d`), output pixel
//! `(y, x)` of a plane looks at the window of input rows `y·sh - top + i·dh` for
//! `i < kh` (and likewise columns), of which only those inside the input count: a max
//! pooling never sees the padding (it is −∞), an average pooling counts it as zeros
//! when `count_include_pad`. 1-d pooling is 2-d pooling of planes one row high.
//!
//! Adaptive average pooling (`adaptive_avg_pool2d`) averages, for output row `i` of
//! `out` rows over `in` input rows, the rows `floor(i·in/out) .. ceil((i+1)·in/out)`.

use crate::dtype::Dtype;
use crate::error::{Error, format_dims};
use crate::storage::Storage;
use crate::view::{View, ViewMut};
use ferrograd_shapes::Layout;

/// Which pooling a [`Pool2dSpec`] describes: the op's name in errors, whether it takes
/// the maximum or the average, and whether it pools one axis (the width) or two.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PoolOp {
    /// `max_pool1d`: planes one row high, windows along the width.
    MaxPool1d,
    /// `max_pool2d`.
    MaxPool2d,
    /// `avg_pool1d`.
    AvgPool1d,
    /// `avg_pool2d`.
    AvgPool2d,
}

impl PoolOp {
    /// The op's name, as PyTorch's function.
    pub fn name(self) -> &'static str {
        match self {
            PoolOp::MaxPool1d => "max_pool1d",
            PoolOp::MaxPool2d => "max_pool2d",
            PoolOp::AvgPool1d => "avg_pool1d",
            PoolOp::AvgPool2d => "avg_pool2d",
        }
    }

    /// Whether it takes the maximum (else the average).
    pub fn is_max(self) -> bool {
        matches!(self, PoolOp::MaxPool1d | PoolOp::MaxPool2d)
    }

    /// Whether it pools along the width only.
    pub fn is_1d(self) -> bool {
        matches!(self, PoolOp::MaxPool1d | PoolOp::AvgPool1d)
    }

    /// `[height, width]` as the user gave them: the width alone for a 1-d pooling.
    fn sizes(self, pair: [impl std::fmt::Display; 2]) -> String {
        let [height, width] = pair;
        if self.is_1d() {
            width.to_string()
        } else {
            format!("({height}, {width})")
        }
    }
}

/// The options of a pooling, each `[height, width]` (a 1-d pooling has height 1,
/// stride 1, padding 0 and dilation 1 on the height).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pool2dParams {
    /// Rows and columns of the window.
    pub kernel: [usize; 2],
    /// Steps between windows, in input pixels.
    pub stride: [usize; 2],
    /// Implicit padding on both sides: rows above and below, columns left and right.
    pub padding: [usize; 2],
    /// Steps between the window's taps (max pooling only; 1 for an average).
    pub dilation: [usize; 2],
    /// Whether the output size rounds up, adding a last window that overhangs the
    /// input, kept only when it starts inside the input or the left (top) padding.
    pub ceil_mode: bool,
    /// Whether an average divides by the window's size including its padding (else
    /// by the input pixels it covers). Ignored by max pooling.
    pub count_include_pad: bool,
}

/// Everything a pooling's kernels need to know, its sizes validated: build it with
/// [`Pool2dSpec::new`]. The input is `(batch, channels, in_height, in_width)`, the
/// output `(batch, channels, out_height, out_width)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pool2dSpec {
    /// Which pooling.
    pub op: PoolOp,
    /// Images in the batch.
    pub batch: usize,
    /// Channels (planes per image).
    pub channels: usize,
    /// Rows of the input.
    pub in_height: usize,
    /// Columns of the input.
    pub in_width: usize,
    /// The window, stride, padding, dilation and rounding.
    pub params: Pool2dParams,
    /// Rows of the output.
    pub out_height: usize,
    /// Columns of the output.
    pub out_width: usize,
}

/// PyTorch's `pooling_output_shape` along one axis; below 1 when nothing fits.
fn pooled_len(input: usize, kernel: usize, stride: usize, pad: usize, dilation: usize, ceil_mode: bool) -> i64 {
    let (input, kernel, stride, pad, dilation) =
        (input as i64, kernel as i64, stride as i64, pad as i64, dilation as i64);
    let span = input + 2 * pad - dilation * (kernel - 1) - 1 + if ceil_mode { stride - 1 } else { 0 };
    let mut len = span.div_euclid(stride) + 1;
    // The last window must start inside the input or the left padding.
    if ceil_mode && (len - 1) * stride >= input + pad {
        len -= 1;
    }
    len
}

impl Pool2dSpec {
    /// Checks a pooling of an `input` of dims `[batch, channels, height, width]` and
    /// works out the output's size, as PyTorch does.
    ///
    /// ```
    /// use ferrograd_device::ops::pool::{Pool2dParams, Pool2dSpec, PoolOp};
    /// let params = Pool2dParams {
    ///     kernel: [3, 2],
    ///     stride: [2, 2],
    ///     padding: [0, 1],
    ///     dilation: [1, 1],
    ///     ceil_mode: true,
    ///     count_include_pad: true,
    /// };
    /// let spec = Pool2dSpec::new(PoolOp::MaxPool2d, [1, 1, 6, 5], params)?;
    /// // Rows: ceil((6 - 3) / 2) + 1 = 3 (floor gives 2): the extra window starts at
    /// // row 4, inside the input. Columns: ceil((5 + 2 - 2) / 2) + 1 = 4, but the last
    /// // window would start at padded column 6 = 5 + 1, past the input: dropped.
    /// assert_eq!((spec.out_height, spec.out_width), (3, 3));
    /// let too_much = Pool2dParams { padding: [2, 1], ..params };
    /// let error = Pool2dSpec::new(PoolOp::MaxPool2d, [1, 1, 6, 5], too_much).unwrap_err();
    /// assert_eq!(
    ///     error.to_string(),
    ///     "max_pool2d: the padding (2, 1) must be at most half the kernel (3, 2)"
    /// );
    /// # Ok::<(), ferrograd_device::Error>(())
    /// ```
    ///
    /// # Errors
    /// `Error::InvalidArgument` for a kernel, stride or dilation of 0, a padding of
    /// more than half the kernel, or a dilation other than 1 for an average;
    /// `Error::ShapeMismatch` when the output would have fewer than one row or
    /// column. Each message names the sizes.
    pub fn new(op: PoolOp, input: [usize; 4], params: Pool2dParams) -> Result<Self, Error> {
        let [batch, channels, in_height, in_width] = input;
        let Pool2dParams {
            kernel,
            stride,
            padding,
            dilation,
            ceil_mode,
            ..
        } = params;
        let invalid = |message: String| Err(Error::InvalidArgument { op: op.name(), message });
        if kernel.contains(&0) {
            return invalid(format!("the kernel must be at least 1, got {}", op.sizes(kernel)));
        }
        if stride.contains(&0) {
            return invalid(format!("the stride must be at least 1, got {}", op.sizes(stride)));
        }
        if dilation.contains(&0) {
            return invalid(format!("the dilation must be at least 1, got {}", op.sizes(dilation)));
        }
        if !op.is_max() && dilation != [1, 1] {
            return invalid(format!(
                "an average pooling has no dilation (as in PyTorch), got {}",
                op.sizes(dilation)
            ));
        }
        if padding[0] > kernel[0] / 2 || padding[1] > kernel[1] / 2 {
            return invalid(format!(
                "the padding {} must be at most half the kernel {}",
                op.sizes(padding),
                op.sizes(kernel)
            ));
        }
        let out = [
            pooled_len(in_height, kernel[0], stride[0], padding[0], dilation[0], ceil_mode),
            pooled_len(in_width, kernel[1], stride[1], padding[1], dilation[1], ceil_mode),
        ];
        if out[0] < 1 || out[1] < 1 {
            let input = if op.is_1d() {
                format_dims(&[batch, channels, in_width])
            } else {
                format_dims(&input)
            };
            return Err(Error::ShapeMismatch {
                op: op.name(),
                message: format!(
                    "the input {input} is too small for the kernel {} with padding {} and dilation {}: the output would have size {}",
                    op.sizes(kernel),
                    op.sizes(padding),
                    op.sizes(dilation),
                    op.sizes(out)
                ),
            });
        }
        Ok(Self {
            op,
            batch,
            channels,
            in_height,
            in_width,
            params,
            out_height: out[0] as usize,
            out_width: out[1] as usize,
        })
    }

    /// The input's dims: `[batch, channels, in_height, in_width]`.
    pub fn input_dims(&self) -> [usize; 4] {
        [self.batch, self.channels, self.in_height, self.in_width]
    }

    /// The output's dims: `[batch, channels, out_height, out_width]`.
    pub fn output_dims(&self) -> [usize; 4] {
        [self.batch, self.channels, self.out_height, self.out_width]
    }

    /// Checks that the spec is one [`Pool2dSpec::new`] gives (its fields are public, so
    /// a caller may have built or changed it by hand), so every index a kernel derives
    /// from it is consistent. O(1).
    ///
    /// # Errors
    /// The error `new` gives for these sizes, or `Error::InvalidArgument` naming the
    /// output size they give.
    pub fn check(&self) -> Result<(), Error> {
        let rebuilt = Self::new(self.op, self.input_dims(), self.params)?;
        if rebuilt == *self {
            return Ok(());
        }
        Err(spec_disagrees(
            self.op.name(),
            self.output_dims(),
            rebuilt.output_dims(),
        ))
    }
}

/// The error of a spec whose output size does not follow from its other fields.
fn spec_disagrees(op: &'static str, output: [usize; 4], expected: [usize; 4]) -> Error {
    Error::InvalidArgument {
        op,
        message: format!(
            "the spec's output {} does not follow from its input and options (which give {}); \
             build it with the spec's `new`",
            format_dims(&output),
            format_dims(&expected)
        ),
    }
}

/// The sizes of an adaptive average pooling: build it with [`AdaptivePool2dSpec::new`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AdaptivePool2dSpec {
    /// Images in the batch.
    pub batch: usize,
    /// Channels (planes per image).
    pub channels: usize,
    /// Rows of the input.
    pub in_height: usize,
    /// Columns of the input.
    pub in_width: usize,
    /// Rows of the output.
    pub out_height: usize,
    /// Columns of the output.
    pub out_width: usize,
}

impl AdaptivePool2dSpec {
    /// Checks an adaptive average pooling of an `input` of dims
    /// `[batch, channels, height, width]` to `output` `[height, width]`. An output
    /// size of 0 gives an empty output, as in PyTorch.
    ///
    /// ```
    /// use ferrograd_device::ops::pool::AdaptivePool2dSpec;
    /// let spec = AdaptivePool2dSpec::new([2, 3, 7, 5], [3, 5])?;
    /// // Output row 1 of 3 over 7 rows averages rows floor(7/3) = 2 .. ceil(14/3) = 5.
    /// assert_eq!(spec.rows(1), 2..5);
    /// assert!(AdaptivePool2dSpec::new([2, 3, 0, 5], [3, 5]).is_err());
    /// # Ok::<(), ferrograd_device::Error>(())
    /// ```
    ///
    /// # Errors
    /// `Error::ShapeMismatch` when the input has no rows or no columns, naming its dims.
    pub fn new(input: [usize; 4], output: [usize; 2]) -> Result<Self, Error> {
        let [batch, channels, in_height, in_width] = input;
        if in_height == 0 || in_width == 0 {
            return Err(Error::ShapeMismatch {
                op: "adaptive_avg_pool2d",
                message: format!(
                    "the input {} has no pixels to pool: its height and width must be at least 1",
                    format_dims(&input)
                ),
            });
        }
        Ok(Self {
            batch,
            channels,
            in_height,
            in_width,
            out_height: output[0],
            out_width: output[1],
        })
    }

    /// Checks that the spec is one [`AdaptivePool2dSpec::new`] gives: an input with
    /// pixels. O(1).
    ///
    /// # Errors
    /// As `new`.
    pub fn check(&self) -> Result<(), Error> {
        Self::new(self.input_dims(), [self.out_height, self.out_width]).map(|_| ())
    }

    /// The input rows output row `row` averages.
    pub fn rows(&self, row: usize) -> std::ops::Range<usize> {
        adaptive_window(row, self.in_height, self.out_height)
    }

    /// The input columns output column `column` averages.
    pub fn columns(&self, column: usize) -> std::ops::Range<usize> {
        adaptive_window(column, self.in_width, self.out_width)
    }

    /// The input's dims: `[batch, channels, in_height, in_width]`.
    pub fn input_dims(&self) -> [usize; 4] {
        [self.batch, self.channels, self.in_height, self.in_width]
    }

    /// The output's dims: `[batch, channels, out_height, out_width]`.
    pub fn output_dims(&self) -> [usize; 4] {
        [self.batch, self.channels, self.out_height, self.out_width]
    }
}

/// `floor(i·input/output) .. ceil((i+1)·input/output)`.
fn adaptive_window(i: usize, input: usize, output: usize) -> std::ops::Range<usize> {
    (i * input / output)..((i + 1) * input).div_ceil(output)
}

pub use crate::ops::conv::{check_grad_output, check_operand};

/// Runs poolings and their gradients on a device.
///
/// Inputs are views with a rank-4 [`Layout`] (any strides: views need no copy);
/// outputs and output gradients are contiguous. Each kernel checks, before it reads
/// anything, that the spec is consistent ([`Pool2dSpec::check`],
/// [`AdaptivePool2dSpec::check`]), that every view has the spec's dims and stays inside
/// its buffer, and that the output's gradient has the output's length. Gradients are
/// added (`+=`) through the input's layout, so a view's gradient lands in the part of
/// its buffer it reads; that layout may repeat elements (a broadcast input's), and
/// then every position adds to its element.
pub trait Pool2dKernel<E: Dtype>: Storage<E> {
    /// The maximum of each window (NaN when the window holds one, as in PyTorch): a
    /// new contiguous buffer of [`Pool2dSpec::output_dims`].
    fn max_pool2d_forward(&self, spec: &Pool2dSpec, input: View<'_, Self::Vec>) -> Result<Self::Vec, Error>;

    /// Adds each output pixel's gradient to the input pixel its window's maximum came
    /// from: the first maximum in the window's row-major order, or its last NaN.
    fn max_pool2d_backward(
        &self,
        spec: &Pool2dSpec,
        input: View<'_, Self::Vec>,
        grad_output: &Self::Vec,
        grad_input: ViewMut<'_, Self::Vec>,
    ) -> Result<(), Error>;

    /// The first gradient of a max pooling's input: [`Pool2dKernel::max_pool2d_backward`]
    /// into zeros, as a new contiguous buffer of [`Pool2dSpec::input_dims`]. A kernel
    /// may write each element once instead of zeroing the buffer and adding to it,
    /// which this default does.
    fn max_pool2d_backward_new(
        &self,
        spec: &Pool2dSpec,
        input: View<'_, Self::Vec>,
        grad_output: &Self::Vec,
    ) -> Result<Self::Vec, Error> {
        let [n, c, h, w] = spec.input_dims();
        let mut grad = self.try_alloc_zeros(n * c * h * w)?;
        let layout = Layout::from_parts(&[n, c, h, w], &[c * h * w, h * w, w, 1]);
        self.max_pool2d_backward(spec, input, grad_output, ViewMut::new(&mut grad, layout))?;
        Ok(grad)
    }

    /// The average of each window: a new contiguous buffer of
    /// [`Pool2dSpec::output_dims`].
    fn avg_pool2d_forward(&self, spec: &Pool2dSpec, input: View<'_, Self::Vec>) -> Result<Self::Vec, Error>;

    /// Adds each output pixel's gradient, divided as in the forward pass, to the input
    /// pixels of its window.
    fn avg_pool2d_backward(
        &self,
        spec: &Pool2dSpec,
        grad_output: &Self::Vec,
        grad_input: ViewMut<'_, Self::Vec>,
    ) -> Result<(), Error>;

    /// The adaptive average pooling: a new contiguous buffer of
    /// [`AdaptivePool2dSpec::output_dims`].
    fn adaptive_avg_pool2d_forward(
        &self,
        spec: &AdaptivePool2dSpec,
        input: View<'_, Self::Vec>,
    ) -> Result<Self::Vec, Error>;

    /// Adds each output pixel's gradient, divided by its window's size, to the input
    /// pixels of its window.
    fn adaptive_avg_pool2d_backward(
        &self,
        spec: &AdaptivePool2dSpec,
        grad_output: &Self::Vec,
        grad_input: ViewMut<'_, Self::Vec>,
    ) -> Result<(), Error>;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(
        kernel: [usize; 2],
        stride: [usize; 2],
        padding: [usize; 2],
        dilation: [usize; 2],
        ceil: bool,
    ) -> Pool2dParams {
        Pool2dParams {
            kernel,
            stride,
            padding,
            dilation,
            ceil_mode: ceil,
            count_include_pad: true,
        }
    }

    /// Output sizes from PyTorch's `pooling_output_shape`, worked out by hand; the
    /// ceil-mode cases checked against `torch.nn.functional.max_pool2d` shapes.
    #[test]
    fn output_sizes_follow_pytorch() {
        let spec = |input, p, op| {
            Pool2dSpec::new(op, input, p)
                .map(|s: Pool2dSpec| (s.out_height, s.out_width))
                .unwrap()
        };
        // floor((7 - 2) / 2) + 1 = 3; ceil: ceil(5 / 2) + 1 = 4, last start 6 < 7: kept.
        assert_eq!(
            spec(
                [1, 1, 7, 7],
                params([2, 2], [2, 2], [0, 0], [1, 1], false),
                PoolOp::MaxPool2d
            ),
            (3, 3)
        );
        assert_eq!(
            spec(
                [1, 1, 7, 7],
                params([2, 2], [2, 2], [0, 0], [1, 1], true),
                PoolOp::MaxPool2d
            ),
            (4, 4)
        );
        // 5 wide, kernel 2, stride 2, pad 1: floor((5 + 2 - 2) / 2) + 1 = 3;
        // ceil: ceil(5 / 2) + 1 = 4, but the last window starts at 3·2 = 6 ≥ 5 + 1: dropped.
        assert_eq!(
            spec(
                [1, 1, 5, 5],
                params([2, 2], [2, 2], [1, 1], [1, 1], true),
                PoolOp::AvgPool2d
            ),
            (3, 3)
        );
        // Dilation 2 spans 5: floor((8 - 5) / 1) + 1 = 4.
        assert_eq!(
            spec(
                [1, 1, 8, 8],
                params([3, 3], [1, 1], [0, 0], [2, 2], false),
                PoolOp::MaxPool2d
            ),
            (4, 4)
        );
    }

    #[test]
    fn errors_name_the_sizes() {
        let e = Pool2dSpec::new(
            PoolOp::MaxPool2d,
            [1, 3, 4, 4],
            params([5, 5], [5, 5], [0, 0], [1, 1], false),
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "max_pool2d: the input (1, 3, 4, 4) is too small for the kernel (5, 5) with padding (0, 0) and dilation (1, 1): the output would have size (0, 0)"
        );
        let e = Pool2dSpec::new(
            PoolOp::AvgPool1d,
            [1, 3, 1, 4],
            params([1, 3], [1, 1], [0, 2], [1, 1], false),
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "avg_pool1d: the padding 2 must be at most half the kernel 3"
        );
        let e = Pool2dSpec::new(
            PoolOp::AvgPool2d,
            [1, 3, 4, 4],
            params([2, 2], [2, 2], [0, 0], [2, 1], false),
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "avg_pool2d: an average pooling has no dilation (as in PyTorch), got (2, 1)"
        );
        assert!(
            Pool2dSpec::new(
                PoolOp::MaxPool2d,
                [1, 3, 4, 4],
                params([2, 2], [0, 2], [0, 0], [1, 1], false)
            )
            .is_err()
        );
        assert!(
            Pool2dSpec::new(
                PoolOp::MaxPool2d,
                [1, 3, 4, 4],
                params([0, 2], [1, 2], [0, 0], [1, 1], false)
            )
            .is_err()
        );
        assert!(
            Pool2dSpec::new(
                PoolOp::MaxPool2d,
                [1, 3, 4, 4],
                params([2, 2], [1, 2], [0, 0], [1, 0], false)
            )
            .is_err()
        );
    }
}
