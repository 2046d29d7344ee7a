//! 2-d convolutions: the sizes of one ([`Conv2dSpec`]), checked once, and the kernel
//! trait a device implements ([`Conv2dKernel`]).
//!
//! As in PyTorch (`torch.nn.functional.conv2d`), a convolution is a cross-correlation:
//! `out[n, o, y, x] = bias[o] + Σ input[n, c, y·sh - top + i·dh, x·sw - left + j·dw] ·
//! weight[o, c - g·C_IN/groups, i, j]` over the channels `c` of the group `g` of `o`
//! and the kernel offsets `(i, j)`, reading zeros outside the input.

use crate::dtype::Dtype;
use crate::error::{Error, format_dims};
use crate::storage::Storage;
use crate::view::{BufferLength, View, ViewMut};

/// How much zero padding surrounds the input (PyTorch's `padding`).
///
/// `From<usize>` and `From<(usize, usize)>` give PyTorch's `padding=1` and
/// `padding=(1, 2)`: the same amount on both sides of the height (then the width).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Padding {
    /// No padding (PyTorch's `"valid"`, or `0`).
    #[default]
    Valid,
    /// As much padding as keeps the output the size of the input (PyTorch's `"same"`):
    /// `dilation · (kernel - 1)` in all along each axis, half before and the rest
    /// after, so an even kernel pads one more at the bottom and right, as PyTorch does.
    /// Only for stride 1, as in PyTorch.
    Same,
    /// `(height, width)`: that many rows above and below, columns left and right.
    Symmetric(usize, usize),
    /// A different amount on each side.
    Explicit {
        /// Rows above.
        top: usize,
        /// Rows below.
        bottom: usize,
        /// Columns on the left.
        left: usize,
        /// Columns on the right.
        right: usize,
    },
}

impl From<usize> for Padding {
    fn from(both: usize) -> Self {
        Padding::Symmetric(both, both)
    }
}

impl From<(usize, usize)> for Padding {
    fn from((height, width): (usize, usize)) -> Self {
        Padding::Symmetric(height, width)
    }
}

/// Everything a 2-d convolution's kernels need to know, its sizes validated: build it
/// with [`Conv2dSpec::new`].
///
/// The input is `(batch, in_channels, in_height, in_width)`, the weight
/// `(out_channels, in_channels / groups, kernel_height, kernel_width)`, the output
/// `(batch, out_channels, out_height, out_width)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Conv2dSpec {
    /// Images in the batch.
    pub batch: usize,
    /// Channels of the input.
    pub in_channels: usize,
    /// Rows of the input.
    pub in_height: usize,
    /// Columns of the input.
    pub in_width: usize,
    /// Channels of the output (filters of the weight).
    pub out_channels: usize,
    /// Rows of the kernel.
    pub kernel_height: usize,
    /// Columns of the kernel.
    pub kernel_width: usize,
    /// Steps between output pixels, in input pixels: `[vertical, horizontal]`.
    pub stride: [usize; 2],
    /// Steps between kernel taps, in input pixels: `[vertical, horizontal]`.
    pub dilation: [usize; 2],
    /// Zero rows above the input.
    pub pad_top: usize,
    /// Zero rows below the input.
    pub pad_bottom: usize,
    /// Zero columns left of the input.
    pub pad_left: usize,
    /// Zero columns right of the input.
    pub pad_right: usize,
    /// Groups: input and output channels are split into this many blocks, block `g`
    /// of the output seeing block `g` of the input only (`in_channels` = depthwise).
    pub groups: usize,
    /// Rows of the output.
    pub out_height: usize,
    /// Columns of the output.
    pub out_width: usize,
}

impl Conv2dSpec {
    /// Checks the sizes and options of a convolution of an `input` of dims
    /// `[batch, in_channels, height, width]` with a `weight` of dims
    /// `[out_channels, in_channels / groups, kernel_height, kernel_width]`, and works
    /// out the padding and the output's size.
    ///
    /// ```
    /// use ferrograd_device::ops::conv::{Conv2dSpec, Padding};
    /// let spec = Conv2dSpec::new([64, 4, 28, 28], [8, 4, 4, 4], [1, 1], Padding::Same, [1, 1], 1)?;
    /// // An even kernel pads one more row at the bottom, one more column on the right.
    /// assert_eq!((spec.pad_top, spec.pad_bottom, spec.pad_left, spec.pad_right), (1, 2, 1, 2));
    /// assert_eq!((spec.out_height, spec.out_width), (28, 28));
    /// let error = Conv2dSpec::new([1, 4, 3, 3], [8, 4, 5, 5], [1, 1], Padding::Valid, [1, 1], 1).unwrap_err();
    /// assert_eq!(
    ///     error.to_string(),
    ///     "conv2d: the kernel (5, 5) (dilated: (5, 5)) is larger than the padded input (3, 3)"
    /// );
    /// # Ok::<(), ferrograd_device::Error>(())
    /// ```
    ///
    /// # Errors
    /// `Error::InvalidArgument` for a stride, dilation or group count of 0, groups
    /// that do not divide both channel counts, or `Padding::Same` with a stride other
    /// than 1; `Error::ShapeMismatch` when the weight's in-channels times the groups
    /// are not the input's channels, or the (dilated) kernel is larger than the padded
    /// input. Each message names the sizes.
    pub fn new(
        input: [usize; 4],
        weight: [usize; 4],
        stride: [usize; 2],
        padding: Padding,
        dilation: [usize; 2],
        groups: usize,
    ) -> Result<Self, Error> {
        let [batch, in_channels, in_height, in_width] = input;
        let [out_channels, channels_per_group, kernel_height, kernel_width] = weight;
        let invalid = |message: String| Err(Error::InvalidArgument { op: "conv2d", message });
        if stride.contains(&0) {
            return invalid(format!("the stride must be at least 1, got {stride:?}"));
        }
        if dilation.contains(&0) {
            return invalid(format!("the dilation must be at least 1, got {dilation:?}"));
        }
        if groups == 0 {
            return invalid("the group count must be at least 1, got 0".into());
        }
        if in_channels % groups != 0 || out_channels % groups != 0 {
            return invalid(format!(
                "{groups} groups do not divide the input's {in_channels} channels and the output's {out_channels}"
            ));
        }
        if channels_per_group * groups != in_channels {
            return Err(Error::ShapeMismatch {
                op: "conv2d",
                message: format!(
                    "the input {} has {in_channels} channels, but the weight {} expects {channels_per_group} per group × {groups} groups = {}",
                    format_dims(&input),
                    format_dims(&weight),
                    channels_per_group * groups
                ),
            });
        }
        let dilated = [
            dilation[0] * (kernel_height.max(1) - 1) + 1,
            dilation[1] * (kernel_width.max(1) - 1) + 1,
        ];
        let (pad_top, pad_bottom, pad_left, pad_right) = match padding {
            Padding::Valid => (0, 0, 0, 0),
            Padding::Symmetric(h, w) => (h, h, w, w),
            Padding::Explicit {
                top,
                bottom,
                left,
                right,
            } => (top, bottom, left, right),
            Padding::Same => {
                if stride != [1, 1] {
                    return invalid(format!(
                        "padding \"same\" needs stride 1 (as in PyTorch), got stride {stride:?}"
                    ));
                }
                let (total_h, total_w) = (dilated[0] - 1, dilated[1] - 1);
                (total_h / 2, total_h - total_h / 2, total_w / 2, total_w - total_w / 2)
            }
        };
        let padded = [in_height + pad_top + pad_bottom, in_width + pad_left + pad_right];
        if kernel_height == 0 || kernel_width == 0 || dilated[0] > padded[0] || dilated[1] > padded[1] {
            return Err(Error::ShapeMismatch {
                op: "conv2d",
                message: format!(
                    "the kernel {} (dilated: {}) is larger than the padded input {}",
                    format_dims(&[kernel_height, kernel_width]),
                    format_dims(&dilated),
                    format_dims(&padded)
                ),
            });
        }
        Ok(Self {
            batch,
            in_channels,
            in_height,
            in_width,
            out_channels,
            kernel_height,
            kernel_width,
            stride,
            dilation,
            pad_top,
            pad_bottom,
            pad_left,
            pad_right,
            groups,
            out_height: (padded[0] - dilated[0]) / stride[0] + 1,
            out_width: (padded[1] - dilated[1]) / stride[1] + 1,
        })
    }

    /// The input's dims: `[batch, in_channels, in_height, in_width]`.
    pub fn input_dims(&self) -> [usize; 4] {
        [self.batch, self.in_channels, self.in_height, self.in_width]
    }

    /// The weight's dims: `[out_channels, in_channels / groups, kernel_height, kernel_width]`.
    pub fn weight_dims(&self) -> [usize; 4] {
        [
            self.out_channels,
            self.in_channels / self.groups,
            self.kernel_height,
            self.kernel_width,
        ]
    }

    /// The output's dims: `[batch, out_channels, out_height, out_width]`.
    pub fn output_dims(&self) -> [usize; 4] {
        [self.batch, self.out_channels, self.out_height, self.out_width]
    }

    /// Checks that the spec is one [`Conv2dSpec::new`] gives (its fields are public, so
    /// a caller may have built or changed it by hand): every size a kernel derives
    /// from it, and so every index it computes, is then consistent. O(1).
    ///
    /// # Errors
    /// The error `new` gives for these sizes, or `Error::InvalidArgument` naming the
    /// fields that disagree with them.
    pub fn check(&self) -> Result<(), Error> {
        let rebuilt = Self::new(
            self.input_dims(),
            self.weight_dims(),
            self.stride,
            Padding::Explicit {
                top: self.pad_top,
                bottom: self.pad_bottom,
                left: self.pad_left,
                right: self.pad_right,
            },
            self.dilation,
            self.groups,
        )?;
        if rebuilt == *self {
            return Ok(());
        }
        Err(Error::InvalidArgument {
            op: "conv2d",
            message: format!(
                "the spec's output {} and weight {} do not follow from its input {}, kernel, padding, \
                 stride, dilation and groups (which give {} and {}); build it with Conv2dSpec::new",
                format_dims(&self.output_dims()),
                format_dims(&self.weight_dims()),
                format_dims(&self.input_dims()),
                format_dims(&rebuilt.output_dims()),
                format_dims(&rebuilt.weight_dims()),
            ),
        })
    }

    /// Checks that `operand` has dims `expected` and stays inside its buffer: what a
    /// kernel checks once at entry for each operand (a gradient's too, through
    /// [`ViewMut::as_view`], since gradients may repeat elements). O(rank).
    ///
    /// # Errors
    /// `Error::ShapeMismatch` naming the operand and both shapes;
    /// `Error::InvalidArgument` naming the operand, its layout and its buffer's length.
    pub fn check_operand<V: BufferLength>(
        &self,
        name: &str,
        operand: &View<'_, V>,
        expected: &[usize],
    ) -> Result<(), Error> {
        check_operand("conv2d", name, operand, expected)
    }
}

/// Checks that `operand` has dims `expected` and stays inside its buffer, naming `op`:
/// the entry check of the kernels of convolutions, poolings and upsampling. O(rank).
///
/// # Errors
/// `Error::ShapeMismatch` naming the operand and both shapes; `Error::InvalidArgument`
/// naming the operand, its layout and its buffer's length.
pub fn check_operand<V: BufferLength>(
    op: &'static str,
    name: &str,
    operand: &View<'_, V>,
    expected: &[usize],
) -> Result<(), Error> {
    if operand.layout.dims() != expected {
        return Err(Error::ShapeMismatch {
            op,
            message: format!(
                "the {name} has shape {} where {} was expected",
                format_dims(operand.layout.dims()),
                format_dims(expected)
            ),
        });
    }
    operand.check(op, name)
}

/// Checks that a contiguous output gradient holds exactly the `dims` of the output.
///
/// # Errors
/// `Error::ShapeMismatch` naming `op` and both sizes.
pub fn check_grad_output(op: &'static str, dims: &[usize], len: usize) -> Result<(), Error> {
    let expected: usize = dims.iter().product();
    if len == expected {
        return Ok(());
    }
    Err(Error::ShapeMismatch {
        op,
        message: format!(
            "the output's gradient holds {len} elements, the output {} has {expected}",
            format_dims(dims)
        ),
    })
}

/// Runs 2-d convolutions and their gradients on a device.
///
/// Operands are views with a rank-4 [`Layout`](crate::Layout) (any strides: views need no copy);
/// each kernel checks, before it reads anything, that the spec is consistent
/// ([`Conv2dSpec::check`]), that every view has the dims the spec gives and stays
/// inside its buffer, and that the output's gradient (contiguous) has the output's
/// length. Gradients are added to (`+=`) through the layout of the operand they belong
/// to, so a view's gradient lands in the part of its buffer it reads and several uses
/// of a tensor add up; a gradient's layout may repeat elements (the gradient of a
/// broadcast operand), and then every position adds to its element: a device that
/// writes in parallel sums into a dense buffer first, or adds atomically.
pub trait Conv2dKernel<E: Dtype>: Storage<E> {
    /// The convolution: a new contiguous buffer of [`Conv2dSpec::output_dims`], plus
    /// `bias` (of `out_channels` elements, through its rank-1 layout) when given.
    fn conv2d_forward(
        &self,
        spec: &Conv2dSpec,
        input: View<'_, Self::Vec>,
        weight: View<'_, Self::Vec>,
        bias: Option<View<'_, Self::Vec>>,
    ) -> Result<Self::Vec, Error>;

    /// Adds the gradient of the input, from the output's (contiguous), into
    /// `grad_input` (through the input's layout).
    fn conv2d_backward_input(
        &self,
        spec: &Conv2dSpec,
        weight: View<'_, Self::Vec>,
        grad_output: &Self::Vec,
        grad_input: ViewMut<'_, Self::Vec>,
    ) -> Result<(), Error>;

    /// Adds the gradient of the weight, from the input and the output's gradient
    /// (contiguous), into `grad_weight` (through the weight's layout).
    fn conv2d_backward_weight(
        &self,
        spec: &Conv2dSpec,
        input: View<'_, Self::Vec>,
        grad_output: &Self::Vec,
        grad_weight: ViewMut<'_, Self::Vec>,
    ) -> Result<(), Error>;

    /// Adds the gradient of the bias (the output's gradient summed over the batch and
    /// the pixels) into `grad_bias` through its rank-1 layout.
    fn conv2d_backward_bias(
        &self,
        spec: &Conv2dSpec,
        grad_output: &Self::Vec,
        grad_bias: ViewMut<'_, Self::Vec>,
    ) -> Result<(), Error>;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(
        input: [usize; 4],
        weight: [usize; 4],
        stride: [usize; 2],
        padding: Padding,
        dilation: [usize; 2],
        groups: usize,
    ) -> Result<Conv2dSpec, Error> {
        Conv2dSpec::new(input, weight, stride, padding, dilation, groups)
    }

    /// Output sizes from PyTorch's formula, floor((in + pads - dilation·(k-1) - 1) / stride) + 1,
    /// worked out by hand for each case.
    #[test]
    fn output_sizes_follow_pytorch() {
        // (7 + 2 - 3) / 2 + 1 = 4; (9 + 4 - 3) / 1 + 1 = 11
        let s = spec([2, 3, 7, 9], [5, 3, 3, 3], [2, 1], Padding::Symmetric(1, 2), [1, 1], 1).unwrap();
        assert_eq!(s.output_dims(), [2, 5, 4, 11]);
        // dilated 3-kernel spans 5: (8 - 5) / 1 + 1 = 4
        let s = spec([1, 4, 8, 8], [4, 1, 3, 3], [1, 1], Padding::Valid, [2, 2], 4).unwrap();
        assert_eq!(s.output_dims(), [1, 4, 4, 4]);
        // "same" with a dilated even kernel: spans 2·3+1 = 7, pads 3 before, 3 after
        let s = spec([1, 2, 5, 6], [2, 2, 4, 2], [1, 1], Padding::Same, [2, 1], 1).unwrap();
        assert_eq!((s.pad_top, s.pad_bottom, s.pad_left, s.pad_right), (3, 3, 0, 1));
        assert_eq!(s.output_dims(), [1, 2, 5, 6]);
    }

    #[test]
    fn errors_name_the_sizes() {
        let e = spec([1, 4, 5, 5], [6, 2, 3, 3], [1, 1], Padding::Valid, [1, 1], 3).unwrap_err();
        assert_eq!(
            e.to_string(),
            "conv2d: 3 groups do not divide the input's 4 channels and the output's 6"
        );
        let e = spec([1, 4, 5, 5], [6, 3, 3, 3], [1, 1], Padding::Valid, [1, 1], 1).unwrap_err();
        assert_eq!(
            e.to_string(),
            "conv2d: the input (1, 4, 5, 5) has 4 channels, but the weight (6, 3, 3, 3) expects 3 per group × 1 groups = 3"
        );
        let e = spec([1, 4, 2, 5], [6, 4, 3, 3], [1, 1], Padding::Symmetric(0, 1), [1, 2], 1).unwrap_err();
        assert_eq!(
            e.to_string(),
            "conv2d: the kernel (3, 3) (dilated: (3, 5)) is larger than the padded input (2, 7)"
        );
        let e = spec([1, 4, 5, 5], [6, 4, 3, 3], [2, 1], Padding::Same, [1, 1], 1).unwrap_err();
        assert_eq!(
            e.to_string(),
            "conv2d: padding \"same\" needs stride 1 (as in PyTorch), got stride [2, 1]"
        );
        assert!(spec([1, 4, 5, 5], [6, 4, 3, 3], [0, 1], Padding::Valid, [1, 1], 1).is_err());
        assert!(spec([1, 4, 5, 5], [6, 4, 3, 3], [1, 1], Padding::Valid, [1, 0], 1).is_err());
        assert!(spec([1, 4, 5, 5], [6, 4, 3, 3], [1, 1], Padding::Valid, [1, 1], 0).is_err());
    }
}
