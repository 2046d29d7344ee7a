//! 2-d transposed convolutions (PyTorch's `torch.nn.functional.conv_transpose2d`):
//! their sizes ([`ConvTranspose2dSpec`]) and their passes, built from the kernels of
//! [`Conv2dKernel`] and [`CopyKernel`], so that every device with a convolution has
//! them without a kernel of its own.
//!
//! A transposed convolution is the gradient of a convolution with respect to its
//! input: `out[n, o, y·s - p + i·d, x·s - p + j·d] += input[n, c, y, x] ·
//! weight[c, o - g·C_OUT/groups, i, j]` for the channels `c` of group `g`. So its
//! forward pass is [`Conv2dKernel::conv2d_backward_input`] of the convolution
//! [`ConvTranspose2dSpec::conv`] (whose input is this op's output and whose output is
//! this op's input), its input gradient that convolution's forward pass, and its weight
//! gradient that convolution's weight gradient with the roles of input and output
//! gradient swapped.

use crate::dtype::Dtype;
use crate::error::{Error, format_dims};
use crate::ops::conv::{Conv2dKernel, Conv2dSpec, Padding, check_operand};
use crate::ops::copy::CopyKernel;
use crate::view::{View, ViewMut};
use ferrograd_shapes::Layout;

/// Everything a 2-d transposed convolution needs, its sizes validated: build it with
/// [`ConvTranspose2dSpec::new`].
///
/// The input is `(batch, in_channels, in_height, in_width)`, the weight
/// `(in_channels, out_channels / groups, kernel_height, kernel_width)` (PyTorch's
/// layout: the first dim is the input's channels), the output
/// `(batch, out_channels, out_height, out_width)` with
/// `out_height = (in_height - 1)·stride - 2·padding + dilation·(kernel_height - 1) +
/// output_padding + 1`, and the same for the width.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConvTranspose2dSpec {
    /// Images in the batch.
    pub batch: usize,
    /// Channels of the input (the weight's first dim).
    pub in_channels: usize,
    /// Rows of the input.
    pub in_height: usize,
    /// Columns of the input.
    pub in_width: usize,
    /// Channels of the output: the weight's second dim times the groups.
    pub out_channels: usize,
    /// Rows of the kernel.
    pub kernel_height: usize,
    /// Columns of the kernel.
    pub kernel_width: usize,
    /// Steps between the input's pixels, in output pixels: `[vertical, horizontal]`.
    pub stride: [usize; 2],
    /// Rows (then columns) cut from both sides of the full output.
    pub padding: [usize; 2],
    /// Rows (then columns) added below (right of) the output, to reach a size that
    /// several input sizes of the matching convolution share.
    pub output_padding: [usize; 2],
    /// Steps between kernel taps, in output pixels: `[vertical, horizontal]`.
    pub dilation: [usize; 2],
    /// Groups: block `g` of the output channels sees block `g` of the input's only.
    pub groups: usize,
    /// Rows of the output.
    pub out_height: usize,
    /// Columns of the output.
    pub out_width: usize,
    /// The convolution this op is the input gradient of. Its input is the top-left
    /// `conv.in_height × conv.in_width` corner of this op's output (see
    /// [`ConvTranspose2dSpec::conv_input_layout`]): the rows and columns of output
    /// padding that no kernel tap reaches are left out when the convolution could not
    /// otherwise give exactly this op's input size; its output is this op's input.
    pub conv: Conv2dSpec,
}

impl ConvTranspose2dSpec {
    /// Checks the sizes and options of a transposed convolution of an `input` of dims
    /// `[batch, in_channels, height, width]` with a `weight` of dims
    /// `[in_channels, out_channels / groups, kernel_height, kernel_width]`, and works
    /// out the output's size, as PyTorch does.
    ///
    /// ```
    /// use ferrograd_device::ops::conv_transpose::ConvTranspose2dSpec;
    /// // (5 - 1)·2 - 2·1 + 1·(3 - 1) + 1 + 1 = 10 rows; (4 - 1)·1 + 2·(2 - 1) + 1 = 6 columns.
    /// let spec = ConvTranspose2dSpec::new([2, 4, 5, 4], [4, 3, 3, 2], [2, 1], [1, 0], [1, 0], [1, 2], 1)?;
    /// assert_eq!(spec.output_dims(), [2, 3, 10, 6]);
    /// let error = ConvTranspose2dSpec::new([1, 4, 5, 5], [4, 3, 3, 3], [2, 2], [0, 0], [2, 0], [1, 1], 1)
    ///     .unwrap_err();
    /// assert_eq!(
    ///     error.to_string(),
    ///     "conv_transpose2d: the output padding [2, 0] must be smaller than the stride [2, 2] or the dilation [1, 1] on each axis"
    /// );
    /// # Ok::<(), ferrograd_device::Error>(())
    /// ```
    ///
    /// # Errors
    /// `Error::InvalidArgument` for a stride, dilation or group count of 0, groups that
    /// do not divide the input's channels, or an output padding not smaller than the
    /// stride or the dilation of its axis; `Error::ShapeMismatch` when the input's
    /// channels are not the weight's first dim, the kernel or the input is empty, or
    /// the padding leaves no output. Each message names the sizes.
    pub fn new(
        input: [usize; 4],
        weight: [usize; 4],
        stride: [usize; 2],
        padding: [usize; 2],
        output_padding: [usize; 2],
        dilation: [usize; 2],
        groups: usize,
    ) -> Result<Self, Error> {
        let [batch, in_channels, in_height, in_width] = input;
        let [weight_in, channels_per_group, kernel_height, kernel_width] = weight;
        let invalid = |message: String| Err(Error::InvalidArgument { op: OP, message });
        let mismatch = |message: String| Err(Error::ShapeMismatch { op: OP, message });
        if stride.contains(&0) {
            return invalid(format!("the stride must be at least 1, got {stride:?}"));
        }
        if dilation.contains(&0) {
            return invalid(format!("the dilation must be at least 1, got {dilation:?}"));
        }
        if groups == 0 {
            return invalid("the group count must be at least 1, got 0".into());
        }
        if weight_in != in_channels {
            return mismatch(format!(
                "the input {} has {in_channels} channels, but the weight {} (in_channels, out_channels / groups, kH, kW) expects {weight_in}",
                format_dims(&input),
                format_dims(&weight)
            ));
        }
        if in_channels % groups != 0 {
            return invalid(format!(
                "{groups} groups do not divide the input's {in_channels} channels"
            ));
        }
        if (0..2).any(|axis| output_padding[axis] >= stride[axis] && output_padding[axis] >= dilation[axis]) {
            return invalid(format!(
                "the output padding {output_padding:?} must be smaller than the stride {stride:?} or the dilation {dilation:?} on each axis"
            ));
        }
        if kernel_height == 0 || kernel_width == 0 || channels_per_group == 0 {
            return mismatch(format!("the weight {} is empty", format_dims(&weight)));
        }
        if in_height == 0 || in_width == 0 {
            return mismatch(format!("the input {} has no pixels", format_dims(&input)));
        }
        let sizes = [in_height, in_width];
        let kernel = [kernel_height, kernel_width];
        // Before the padding is cut: (in - 1)·stride + dilation·(k - 1) + output_padding + 1.
        let full: [usize; 2] = std::array::from_fn(|axis| {
            (sizes[axis] - 1) * stride[axis] + dilation[axis] * (kernel[axis] - 1) + output_padding[axis] + 1
        });
        if (0..2).any(|axis| full[axis] <= 2 * padding[axis]) {
            return mismatch(format!(
                "the padding {padding:?} cuts the whole output {} of the input {} and the weight {} (it must be less than half of each)",
                format_dims(&full),
                format_dims(&input),
                format_dims(&weight)
            ));
        }
        let out = [full[0] - 2 * padding[0], full[1] - 2 * padding[1]];
        let out_channels = channels_per_group * groups;

        // The convolution from the output back to the input pads `padding` before and
        // `after` behind, and reads `out - crop` pixels: so that it gives exactly `in`
        // pixels, `out - crop + padding + after - dilation·(k - 1) - 1` must be
        // `(in - 1)·stride + r` with 0 <= r < stride. With `after = padding -
        // output_padding` that holds for r = 0; when the output padding is larger
        // than the padding, `after` is 0 and r is the difference, cropped down to
        // `stride - 1` if larger (only when output padding >= stride, which PyTorch
        // allows below the dilation): the cropped pixels lie past the last one any
        // kernel tap reaches, so only the bias lands there.
        let mut after = [0; 2];
        let mut crop = [0; 2];
        for axis in 0..2 {
            after[axis] = padding[axis].saturating_sub(output_padding[axis]);
            let r = output_padding[axis] + after[axis] - padding[axis];
            crop[axis] = (r + 1).saturating_sub(stride[axis]);
        }
        let conv = Conv2dSpec::new(
            [batch, out_channels, out[0] - crop[0], out[1] - crop[1]],
            weight,
            stride,
            Padding::Explicit {
                top: padding[0],
                bottom: after[0],
                left: padding[1],
                right: after[1],
            },
            dilation,
            groups,
        )
        .map_err(|e| Error::InvalidArgument {
            op: OP,
            message: format!("the matching convolution is invalid: {e}"),
        })?;
        debug_assert_eq!((conv.out_height, conv.out_width), (in_height, in_width));
        Ok(Self {
            batch,
            in_channels,
            in_height,
            in_width,
            out_channels,
            kernel_height,
            kernel_width,
            stride,
            padding,
            output_padding,
            dilation,
            groups,
            out_height: out[0],
            out_width: out[1],
            conv,
        })
    }

    /// The input's dims: `[batch, in_channels, in_height, in_width]`.
    pub fn input_dims(&self) -> [usize; 4] {
        [self.batch, self.in_channels, self.in_height, self.in_width]
    }

    /// The weight's dims: `[in_channels, out_channels / groups, kernel_height, kernel_width]`.
    pub fn weight_dims(&self) -> [usize; 4] {
        [
            self.in_channels,
            self.out_channels / self.groups,
            self.kernel_height,
            self.kernel_width,
        ]
    }

    /// The output's dims: `[batch, out_channels, out_height, out_width]`.
    pub fn output_dims(&self) -> [usize; 4] {
        [self.batch, self.out_channels, self.out_height, self.out_width]
    }

    /// The part of a contiguous output buffer that [`ConvTranspose2dSpec::conv`] sees
    /// as its input: all of it, or its top-left corner.
    pub fn conv_input_layout(&self) -> Layout {
        let pixels = self.out_height * self.out_width;
        Layout::from_parts(
            &self.conv.input_dims(),
            &[self.out_channels * pixels, pixels, self.out_width, 1],
        )
    }

    /// A spec whose output has this op's output dims: what
    /// [`Conv2dKernel::conv2d_backward_bias`] needs to sum the output's gradient.
    fn bias_spec(&self) -> Result<Conv2dSpec, Error> {
        Conv2dSpec::new(
            self.output_dims(),
            [self.out_channels, self.out_channels, 1, 1],
            [1, 1],
            Padding::Valid,
            [1, 1],
            1,
        )
    }
}

/// `operand` as one contiguous buffer of its layout's dims: itself when it is one
/// already, else a copy.
fn contiguous<E: Dtype, D: CopyKernel<E>>(device: &D, operand: View<'_, D::Vec>) -> Result<Option<D::Vec>, Error> {
    let layout = operand.layout;
    if layout.is_contiguous() && D::len(operand.buffer) == layout.num_elements() {
        return Ok(None);
    }
    let mut copy = device.try_alloc_for_overwrite(layout.num_elements())?;
    let dense = Layout::from_parts(layout.dims(), &dense_strides(layout.dims()));
    device.copy_strided(operand, ViewMut::new(&mut copy, dense))?;
    Ok(Some(copy))
}

fn dense_strides(dims: &[usize]) -> Vec<usize> {
    let mut strides = vec![1; dims.len()];
    for axis in (0..dims.len().saturating_sub(1)).rev() {
        strides[axis] = strides[axis + 1] * dims[axis + 1];
    }
    strides
}

const OP: &str = "conv_transpose2d";

/// The transposed convolution: a new contiguous buffer of
/// [`ConvTranspose2dSpec::output_dims`], plus `bias` (of `out_channels` elements,
/// through its rank-1 layout) when given. The input and the weight may have any
/// strides; a non-contiguous input is copied once (the convolution's gradient kernel
/// reads its output gradient contiguous).
///
/// # Errors
/// `Error::ShapeMismatch` when an operand's dims do not fit the spec,
/// `Error::InvalidArgument` when a view reaches past its buffer; the device's
/// allocation errors.
pub fn conv_transpose2d_forward<E: Dtype, D: Conv2dKernel<E> + CopyKernel<E>>(
    device: &D,
    spec: &ConvTranspose2dSpec,
    input: View<'_, D::Vec>,
    weight: View<'_, D::Vec>,
    bias: Option<View<'_, D::Vec>>,
) -> Result<D::Vec, Error> {
    check_operand(OP, "input", &input, &spec.input_dims())?;
    let [n, o, h, w] = spec.output_dims();
    let output_layout = Layout::from_parts(&[n, o, h, w], &dense_strides(&[n, o, h, w]));
    let mut output = match bias {
        Some(bias) => {
            check_operand(OP, "bias", &bias, &[o])?;
            // The bias broadcast over the batch and the pixels: a copy with stride 0.
            let broadcast = Layout::from_parts(&[n, o, h, w], &[0, bias.layout.strides()[0], 0, 0])
                .with_offset(bias.layout.offset());
            let mut output = device.try_alloc_for_overwrite(n * o * h * w)?;
            device.copy_strided(
                View::new(bias.buffer, broadcast),
                ViewMut::new(&mut output, output_layout),
            )?;
            output
        }
        None => device.try_alloc_zeros(n * o * h * w)?,
    };
    let dense = contiguous(device, input)?;
    let input = dense.as_ref().unwrap_or(input.buffer);
    device.conv2d_backward_input(
        &spec.conv,
        weight,
        input,
        ViewMut::new(&mut output, spec.conv_input_layout()),
    )?;
    Ok(output)
}

/// Adds the gradient of the input, from the output's (contiguous), into `grad_input`
/// (through the input's layout): the matching convolution of the output's gradient
/// with the same weight.
///
/// # Errors
/// As [`conv_transpose2d_forward`].
pub fn conv_transpose2d_backward_input<E: Dtype, D: Conv2dKernel<E> + CopyKernel<E>>(
    device: &D,
    spec: &ConvTranspose2dSpec,
    weight: View<'_, D::Vec>,
    grad_output: &D::Vec,
    grad_input: ViewMut<'_, D::Vec>,
) -> Result<(), Error> {
    check_operand(OP, "input's gradient", &grad_input.as_view(), &spec.input_dims())?;
    let gradient = device.conv2d_forward(
        &spec.conv,
        View::new(grad_output, spec.conv_input_layout()),
        weight,
        None,
    )?;
    let dense = Layout::from_parts(&spec.input_dims(), &dense_strides(&spec.input_dims()));
    device.add_strided(View::new(&gradient, dense), grad_input)
}

/// Adds the gradient of the weight into `grad_weight` (through the weight's layout):
/// the matching convolution's weight gradient, whose input is this op's output
/// gradient and whose output gradient is this op's input (copied once when not
/// contiguous).
///
/// # Errors
/// As [`conv_transpose2d_forward`].
pub fn conv_transpose2d_backward_weight<E: Dtype, D: Conv2dKernel<E> + CopyKernel<E>>(
    device: &D,
    spec: &ConvTranspose2dSpec,
    input: View<'_, D::Vec>,
    grad_output: &D::Vec,
    grad_weight: ViewMut<'_, D::Vec>,
) -> Result<(), Error> {
    check_operand(OP, "input", &input, &spec.input_dims())?;
    let dense = contiguous(device, input)?;
    let input = dense.as_ref().unwrap_or(input.buffer);
    device.conv2d_backward_weight(
        &spec.conv,
        View::new(grad_output, spec.conv_input_layout()),
        input,
        grad_weight,
    )
}

/// Adds the gradient of the bias (the output's gradient summed over the batch and the
/// pixels) into `grad_bias` through its rank-1 layout.
///
/// # Errors
/// As [`conv_transpose2d_forward`].
pub fn conv_transpose2d_backward_bias<E: Dtype, D: Conv2dKernel<E>>(
    device: &D,
    spec: &ConvTranspose2dSpec,
    grad_output: &D::Vec,
    grad_bias: ViewMut<'_, D::Vec>,
) -> Result<(), Error> {
    device.conv2d_backward_bias(&spec.bias_spec()?, grad_output, grad_bias)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(
        input: [usize; 4],
        weight: [usize; 4],
        stride: [usize; 2],
        padding: [usize; 2],
        output_padding: [usize; 2],
        dilation: [usize; 2],
        groups: usize,
    ) -> Result<ConvTranspose2dSpec, Error> {
        ConvTranspose2dSpec::new(input, weight, stride, padding, output_padding, dilation, groups)
    }

    /// Output sizes from PyTorch's formula, worked out by hand; the matching
    /// convolution gives back the input's size in each case.
    #[test]
    fn output_sizes_follow_pytorch() {
        // (3 - 1)·2 - 2 + 2 + 1 + 1 = 6; (4 - 1)·1 - 0 + 1 + 0 + 1 = 5
        let s = spec([2, 4, 3, 4], [4, 3, 3, 2], [2, 1], [1, 0], [1, 0], [1, 1], 2).unwrap();
        assert_eq!(s.output_dims(), [2, 6, 6, 5]);
        assert_eq!(s.weight_dims(), [4, 3, 3, 2]);
        assert_eq!((s.conv.out_height, s.conv.out_width), (3, 4));
        // Output padding 2 >= stride 1, allowed below dilation 3: (4 - 1) + 3·1 + 2 + 1 = 9,
        // of which the last 2 rows are beyond every tap and the convolution leaves out 2.
        let s = spec([1, 1, 4, 4], [1, 1, 2, 2], [1, 1], [0, 0], [2, 0], [3, 1], 1).unwrap();
        assert_eq!(s.output_dims(), [1, 1, 9, 5]);
        assert_eq!(s.conv.input_dims(), [1, 1, 7, 5]);
        assert_eq!((s.conv.out_height, s.conv.out_width), (4, 4));
        // Stride 3, output padding 2, padding 1: (2 - 1)·3 - 2 + 2 + 2 + 1 = 6.
        let s = spec([1, 2, 2, 2], [2, 1, 3, 3], [3, 3], [1, 1], [2, 2], [1, 1], 1).unwrap();
        assert_eq!(s.output_dims(), [1, 1, 6, 6]);
        assert_eq!((s.conv.out_height, s.conv.out_width), (2, 2));
    }

    #[test]
    fn errors_name_the_sizes() {
        let e = spec([1, 4, 5, 5], [3, 2, 3, 3], [1, 1], [0, 0], [0, 0], [1, 1], 1).unwrap_err();
        assert_eq!(
            e.to_string(),
            "conv_transpose2d: the input (1, 4, 5, 5) has 4 channels, but the weight (3, 2, 3, 3) (in_channels, out_channels / groups, kH, kW) expects 3"
        );
        let e = spec([1, 4, 5, 5], [4, 2, 3, 3], [1, 1], [0, 0], [0, 0], [1, 1], 3).unwrap_err();
        assert_eq!(
            e.to_string(),
            "conv_transpose2d: 3 groups do not divide the input's 4 channels"
        );
        let e = spec([1, 4, 2, 2], [4, 2, 3, 3], [1, 1], [2, 0], [0, 0], [1, 1], 1).unwrap_err();
        assert_eq!(
            e.to_string(),
            "conv_transpose2d: the padding [2, 0] cuts the whole output (4, 4) of the input (1, 4, 2, 2) and the weight (4, 2, 3, 3) (it must be less than half of each)"
        );
        let e = spec([1, 4, 2, 2], [4, 2, 3, 3], [2, 1], [0, 0], [0, 1], [1, 1], 1).unwrap_err();
        assert_eq!(
            e.to_string(),
            "conv_transpose2d: the output padding [0, 1] must be smaller than the stride [2, 1] or the dilation [1, 1] on each axis"
        );
        assert!(spec([1, 4, 5, 5], [4, 2, 3, 3], [0, 1], [0, 0], [0, 0], [1, 1], 1).is_err());
        assert!(spec([1, 4, 5, 5], [4, 2, 3, 3], [1, 1], [0, 0], [0, 0], [1, 0], 1).is_err());
        assert!(spec([1, 4, 5, 5], [4, 2, 3, 3], [1, 1], [0, 0], [0, 0], [1, 1], 0).is_err());
        assert!(spec([1, 4, 0, 5], [4, 2, 3, 3], [1, 1], [0, 0], [0, 0], [1, 1], 1).is_err());
        assert!(spec([1, 4, 5, 5], [4, 2, 0, 3], [1, 1], [0, 0], [0, 0], [1, 1], 1).is_err());
    }
}
