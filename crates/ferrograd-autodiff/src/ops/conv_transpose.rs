//! Transposed convolutions (PyTorch's `torch.nn.functional.conv_transpose2d` and
//! `conv_transpose1d`), differentiable in the input, the weight and the bias.
//!
//! They run on the kernels of a 2-d convolution (see
//! `ferrograd_device::ops::conv_transpose`): a device with `Conv2dKernel` and
//! `CopyKernel` has them. The 1-d op is the 2-d one with a height of 1, through views
//! of its operands' layouts (no copies).

use crate::OrPanic;
use crate::ops::conv::Size2;
use crate::tape::{MergeTapes, MergedTape, Tape};
use crate::tensor::Tensor;
use ferrograd_device::ops::conv::Conv2dKernel;
use ferrograd_device::ops::conv_transpose::{
    ConvTranspose2dSpec, conv_transpose2d_backward_bias, conv_transpose2d_backward_input,
    conv_transpose2d_backward_weight, conv_transpose2d_forward,
};
use ferrograd_device::ops::copy::CopyKernel;
use ferrograd_device::{Dtype, Error, Layout, View, ViewMut};
use ferrograd_shapes::{ConvTranspose1dShape, ConvTranspose2dShape, Dim, Shape};
use std::sync::Arc;

/// The options of [`Tensor::conv_transpose2d`], PyTorch's defaults by `Default`:
/// stride 1, no padding, no output padding, dilation 1, one group.
///
/// ```
/// use ferrograd_autodiff::ConvTranspose2dOptions;
/// let options = ConvTranspose2dOptions::default().stride(2).padding((1, 0)).output_padding(1).groups(2);
/// assert_eq!(options.stride, [2, 2]);
/// assert_eq!(options.padding, [1, 0]);
/// assert_eq!(options.output_padding, [1, 1]);
/// assert_eq!(options.dilation, [1, 1]);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConvTranspose2dOptions {
    /// Steps between the input's pixels in the output, `[height, width]`.
    pub stride: [usize; 2],
    /// Rows (columns) cut from both sides of the output, `[height, width]`:
    /// PyTorch's `dilation · (kernel - 1) - padding` of zero padding around the input.
    pub padding: [usize; 2],
    /// Rows (columns) added below (right of) the output, `[height, width]`: each must be
    /// smaller than the stride or the dilation of its axis.
    pub output_padding: [usize; 2],
    /// Steps between kernel taps, `[height, width]`.
    pub dilation: [usize; 2],
    /// Channel groups. The weight is `(C_IN, C_OUT / groups, KH, KW)`; with more than
    /// one group, name its second dim `usize` (see [`ConvTranspose2dShape`]).
    pub groups: usize,
}

impl Default for ConvTranspose2dOptions {
    fn default() -> Self {
        Self {
            stride: [1, 1],
            padding: [0, 0],
            output_padding: [0, 0],
            dilation: [1, 1],
            groups: 1,
        }
    }
}

impl ConvTranspose2dOptions {
    /// These options with stride `stride` (`2` or `(2, 1)`).
    pub fn stride(self, stride: impl Size2) -> Self {
        Self {
            stride: stride.size2(),
            ..self
        }
    }

    /// These options with padding `padding` (`1` or `(1, 2)`).
    pub fn padding(self, padding: impl Size2) -> Self {
        Self {
            padding: padding.size2(),
            ..self
        }
    }

    /// These options with output padding `output_padding` (`1` or `(1, 0)`).
    pub fn output_padding(self, output_padding: impl Size2) -> Self {
        Self {
            output_padding: output_padding.size2(),
            ..self
        }
    }

    /// These options with dilation `dilation` (`2` or `(2, 1)`).
    pub fn dilation(self, dilation: impl Size2) -> Self {
        Self {
            dilation: dilation.size2(),
            ..self
        }
    }

    /// These options with `groups` channel groups.
    pub fn groups(self, groups: usize) -> Self {
        Self { groups, ..self }
    }
}

/// The options of [`Tensor::conv_transpose1d`], PyTorch's defaults by `Default`:
/// stride 1, no padding, no output padding, dilation 1, one group.
///
/// ```
/// use ferrograd_autodiff::ConvTranspose1dOptions;
/// let options = ConvTranspose1dOptions::default().stride(3).padding(1).output_padding(2);
/// assert_eq!((options.stride, options.padding, options.output_padding), (3, 1, 2));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConvTranspose1dOptions {
    /// Steps between the input's positions in the output.
    pub stride: usize,
    /// Positions cut from both ends of the output.
    pub padding: usize,
    /// Positions added at the end of the output: smaller than the stride or the dilation.
    pub output_padding: usize,
    /// Steps between kernel taps.
    pub dilation: usize,
    /// Channel groups; the weight is `(C_IN, C_OUT / groups, K)`.
    pub groups: usize,
}

impl Default for ConvTranspose1dOptions {
    fn default() -> Self {
        Self {
            stride: 1,
            padding: 0,
            output_padding: 0,
            dilation: 1,
            groups: 1,
        }
    }
}

impl ConvTranspose1dOptions {
    /// These options with stride `stride`.
    pub fn stride(self, stride: usize) -> Self {
        Self { stride, ..self }
    }

    /// These options with padding `padding`.
    pub fn padding(self, padding: usize) -> Self {
        Self { padding, ..self }
    }

    /// These options with output padding `output_padding`.
    pub fn output_padding(self, output_padding: usize) -> Self {
        Self { output_padding, ..self }
    }

    /// These options with dilation `dilation`.
    pub fn dilation(self, dilation: usize) -> Self {
        Self { dilation, ..self }
    }

    /// These options with `groups` channel groups.
    pub fn groups(self, groups: usize) -> Self {
        Self { groups, ..self }
    }
}

/// `layout` of rank `rank - 1` given a leading axis of size 1: one image or sequence as
/// a batch of one.
pub(crate) fn with_batch_axis(layout: &Layout) -> Layout {
    let (dims, strides) = (layout.dims(), layout.strides());
    let mut new_dims = vec![1];
    new_dims.extend_from_slice(dims);
    let mut new_strides = vec![0];
    new_strides.extend_from_slice(strides);
    Layout::from_parts(&new_dims, &new_strides).with_offset(layout.offset())
}

/// A rank-3 layout `(A, B, L)` as the rank-4 `(A, B, 1, L)`: a sequence as an image of
/// height 1, the same elements.
pub(crate) fn with_unit_height(layout: &Layout) -> Layout {
    let (dims, strides) = (layout.dims(), layout.strides());
    // The stride of a size-1 axis never moves; this one keeps a contiguous layout
    // contiguous.
    let height_stride = strides[2] * dims[2];
    Layout::from_parts(
        &[dims[0], dims[1], 1, dims[2]],
        &[strides[0], strides[1], height_stride, strides[2]],
    )
    .with_offset(layout.offset())
}

/// The output-channel dim `O` for `channels` channels, or the error that a const one
/// of another size is (with more than one group).
fn out_channels<O: Dim>(op: &'static str, weight_dim: usize, channels: usize, groups: usize) -> Result<O, Error> {
    O::from_size(channels).ok_or_else(|| Error::ShapeMismatch {
        op,
        message: format!(
            "{groups} groups give {channels} output channels, but the weight's second dim is the const {weight_dim}, which names the output's channels; name it `usize` for groups > 1"
        ),
    })
}

/// The transposed convolution `spec` of `input` (through the rank-4 `input_layout`)
/// with `weight` (through `weight_layout`), as a tensor of shape `shape`.
fn conv_transpose_on_layouts<S, W, B, O, E, D, T, R>(
    input: Tensor<S, E, D, T>,
    input_layout: Layout,
    weight: Tensor<W, E, D, R>,
    weight_layout: Layout,
    bias: Option<Tensor<B, E, D, R>>,
    spec: ConvTranspose2dSpec,
    shape: O,
) -> Result<Tensor<O, E, D, MergedTape<T, R>>, Error>
where
    S: Shape,
    W: Shape,
    B: Shape,
    O: Shape,
    E: Dtype,
    D: Conv2dKernel<E> + CopyKernel<E>,
    T: Tape<E, D> + MergeTapes<R>,
    R: Tape<E, D> + MergeTapes<R, Output = R>,
    MergedTape<T, R>: Tape<E, D>,
{
    let device = input.device.clone();
    let out = conv_transpose2d_forward(
        &device,
        &spec,
        View::new(&*input.data, input_layout),
        View::new(&*weight.data, weight_layout),
        bias.as_ref().map(|b| View::new(&*b.data, b.layout)),
    )?;

    let mut inputs = vec![input.op_input(), weight.op_input()];
    let (weight_tape, bias_parts) = match bias {
        Some(bias) => {
            inputs.push(bias.op_input());
            (weight.tape.merge_tapes(bias.tape), Some(bias.layout))
        }
        None => (weight.tape, None),
    };
    let tape = input.tape.merge_tapes(weight_tape);
    let result = Tensor::from_arc(Arc::new(out), shape, device, tape);
    if !<MergedTape<T, R> as Tape<E, D>>::TRACING {
        return Ok(result);
    }
    let (input_data, weight_data) = (input.data, weight.data);
    Ok(result.record_op(&inputs, move |ctx| {
        ctx.with_grad_output(|ctx, grad_output| {
            let device = ctx.device;
            if let Some(grad) = ctx.grad_mut(0)? {
                conv_transpose2d_backward_input(
                    device,
                    &spec,
                    View::new(&*weight_data, weight_layout),
                    grad_output,
                    ViewMut::new(grad, input_layout),
                )?;
            }
            if let Some(grad) = ctx.grad_mut(1)? {
                conv_transpose2d_backward_weight(
                    device,
                    &spec,
                    View::new(&*input_data, input_layout),
                    grad_output,
                    ViewMut::new(grad, weight_layout),
                )?;
            }
            if let Some(bias_layout) = bias_parts
                && let Some(grad) = ctx.grad_mut(2)?
            {
                conv_transpose2d_backward_bias(device, &spec, grad_output, ViewMut::new(grad, bias_layout))?;
            }
            Ok(())
        })
    }))
}

/// The bias of a transposed convolution whose output has channel dim `O`.
pub type ConvTransposeBias<O, E, D, R> = Tensor<(O,), E, D, R>;

impl<S: Shape, E: Dtype, D: Conv2dKernel<E> + CopyKernel<E>, T: Tape<E, D>> Tensor<S, E, D, T> {
    /// The 2-d transposed convolution of this input with `weight`, plus `bias` when
    /// given: PyTorch's `conv_transpose2d(input, weight, bias, stride, padding,
    /// output_padding, groups, dilation)`, the gradient of a convolution with respect
    /// to its input (each input pixel scatters the kernel times its value into the
    /// output, `stride` pixels apart).
    ///
    /// The input is a batch `(N, C_IN, H, W)` or one image `(C_IN, H, W)`; the weight
    /// `(C_IN, C_OUT / groups, KH, KW)` (PyTorch's layout: input channels first); the
    /// bias `(C_OUT,)`. The result has `(H - 1)·stride - 2·padding + dilation·(KH - 1) +
    /// output_padding + 1` rows (the same for the columns), as run-time sizes. Its
    /// channel dim has the type of the weight's second dim: const for one group; for
    /// groups > 1 name that dim `usize` (see [`ConvTranspose2dShape`]).
    ///
    /// ```
    /// use ferrograd_autodiff::prelude::*;
    /// use ferrograd_autodiff::ConvTranspose2dOptions;
    /// let dev = ferrograd_cpu::Cpu::default();
    /// // A 2×2 image, one channel, stride 2 and a 2×2 kernel of ones: each pixel becomes
    /// // a 2×2 block of its value, plus the bias.
    /// let x = dev.tensor([[[1.0f32, 2.0], [3.0, 4.0]]]);
    /// let w: Tensor<Rank4<1, 1, 2, 2>, f32, _> = dev.ones();
    /// let b = dev.tensor([0.5f32]);
    /// let y = x.clone().conv_transpose2d(w.clone(), Some(b.clone()), ConvTranspose2dOptions::default().stride(2));
    /// assert_eq!(
    ///     y.realize::<Rank3<1, 4, 4>>().array(),
    ///     [[[1.5, 1.5, 2.5, 2.5], [1.5, 1.5, 2.5, 2.5], [3.5, 3.5, 4.5, 4.5], [3.5, 3.5, 4.5, 4.5]]]
    /// );
    ///
    /// // Gradients: each weight tap sees every input pixel once.
    /// let options = ConvTranspose2dOptions::default().stride(2);
    /// let loss = x.leaky_trace().conv_transpose2d(w.clone(), Some(b.clone()), options).sum::<Rank0, _>();
    /// let grads = loss.backward();
    /// assert_eq!(grads.get(&w).array(), [[[[10.0, 10.0], [10.0, 10.0]]]]);
    /// assert_eq!(grads.get(&b).array(), [16.0]);
    /// assert_eq!(grads.get(&x).array(), [[[4.0, 4.0], [4.0, 4.0]]]);
    /// ```
    ///
    /// # Panics
    /// As [`Tensor::try_conv_transpose2d`] fails.
    #[track_caller]
    pub fn conv_transpose2d<W: Shape, R>(
        self,
        weight: Tensor<W, E, D, R>,
        bias: Option<ConvTransposeBias<S::OutChannels, E, D, R>>,
        options: ConvTranspose2dOptions,
    ) -> Tensor<S::Output, E, D, MergedTape<T, R>>
    where
        S: ConvTranspose2dShape<W>,
        T: MergeTapes<R>,
        R: Tape<E, D> + MergeTapes<R, Output = R>,
        MergedTape<T, R>: Tape<E, D>,
    {
        self.try_conv_transpose2d(weight, bias, options).or_panic()
    }

    /// [`Tensor::conv_transpose2d`], returning an error instead of panicking:
    /// `ShapeMismatch` when the input's channels are not the weight's first dim, the
    /// padding leaves no output, the bias is not `(C_OUT,)`, or a const second weight
    /// dim meets groups > 1; `InvalidArgument` for a stride, dilation or group count of
    /// 0, groups that do not divide the input's channels, or an output padding not
    /// smaller than the stride or the dilation of its axis. Each message names the
    /// sizes.
    #[allow(clippy::type_complexity)] // the result type is the op's own: shape, dtype, device, tape
    pub fn try_conv_transpose2d<W: Shape, R>(
        self,
        weight: Tensor<W, E, D, R>,
        bias: Option<ConvTransposeBias<S::OutChannels, E, D, R>>,
        options: ConvTranspose2dOptions,
    ) -> Result<Tensor<S::Output, E, D, MergedTape<T, R>>, Error>
    where
        S: ConvTranspose2dShape<W>,
        T: MergeTapes<R>,
        R: Tape<E, D> + MergeTapes<R, Output = R>,
        MergedTape<T, R>: Tape<E, D>,
    {
        let input_layout = if S::BATCHED {
            self.layout
        } else {
            with_batch_axis(&self.layout)
        };
        let (i, w) = (input_layout.dims(), weight.layout.dims());
        let spec = ConvTranspose2dSpec::new(
            [i[0], i[1], i[2], i[3]],
            [w[0], w[1], w[2], w[3]],
            options.stride,
            options.padding,
            options.output_padding,
            options.dilation,
            options.groups,
        )?;
        let channels = out_channels("conv_transpose2d", w[1], spec.out_channels, spec.groups)?;
        let shape = ConvTranspose2dShape::output(&self.shape, &weight.shape, channels, spec.out_height, spec.out_width);
        let weight_layout = weight.layout;
        conv_transpose_on_layouts(self, input_layout, weight, weight_layout, bias, spec, shape)
    }

    /// The 1-d transposed convolution of this input with `weight`, plus `bias` when
    /// given: PyTorch's `conv_transpose1d(input, weight, bias, stride, padding,
    /// output_padding, groups, dilation)`, run as [`Tensor::conv_transpose2d`] with a
    /// height of 1 (through views, no copies).
    ///
    /// The input is a batch `(N, C_IN, L)` or one sequence `(C_IN, L)`; the weight
    /// `(C_IN, C_OUT / groups, K)`; the bias `(C_OUT,)`. The result has `(L - 1)·stride
    /// - 2·padding + dilation·(K - 1) + output_padding + 1` positions. Channels and
    /// groups as for [`Tensor::conv_transpose2d`].
    ///
    /// ```
    /// use ferrograd_autodiff::prelude::*;
    /// use ferrograd_autodiff::ConvTranspose1dOptions;
    /// let dev = ferrograd_cpu::Cpu::default();
    /// let x = dev.tensor([[1.0f32, 2.0, 3.0]]);
    /// let w = dev.tensor([[[1.0f32, 10.0]]]);
    /// // Stride 2, output padding 1: 1, 10, 2, 20, 3, 30, then one more position.
    /// let y = x.conv_transpose1d(w, None, ConvTranspose1dOptions::default().stride(2).output_padding(1));
    /// assert_eq!(y.realize::<Rank2<1, 7>>().array(), [[1.0, 10.0, 2.0, 20.0, 3.0, 30.0, 0.0]]);
    /// ```
    ///
    /// # Panics
    /// As [`Tensor::try_conv_transpose1d`] fails.
    #[track_caller]
    pub fn conv_transpose1d<W: Shape, R>(
        self,
        weight: Tensor<W, E, D, R>,
        bias: Option<ConvTransposeBias<<S as ConvTranspose1dShape<W>>::OutChannels, E, D, R>>,
        options: ConvTranspose1dOptions,
    ) -> Tensor<<S as ConvTranspose1dShape<W>>::Output, E, D, MergedTape<T, R>>
    where
        S: ConvTranspose1dShape<W>,
        T: MergeTapes<R>,
        R: Tape<E, D> + MergeTapes<R, Output = R>,
        MergedTape<T, R>: Tape<E, D>,
    {
        self.try_conv_transpose1d(weight, bias, options).or_panic()
    }

    /// [`Tensor::conv_transpose1d`], returning an error instead of panicking, in the
    /// cases [`Tensor::try_conv_transpose2d`] gives; the messages name the sizes of the
    /// height-1 2-d op (`(N, C, 1, L)`).
    #[allow(clippy::type_complexity)] // the result type is the op's own: shape, dtype, device, tape
    pub fn try_conv_transpose1d<W: Shape, R>(
        self,
        weight: Tensor<W, E, D, R>,
        bias: Option<ConvTransposeBias<<S as ConvTranspose1dShape<W>>::OutChannels, E, D, R>>,
        options: ConvTranspose1dOptions,
    ) -> Result<Tensor<<S as ConvTranspose1dShape<W>>::Output, E, D, MergedTape<T, R>>, Error>
    where
        S: ConvTranspose1dShape<W>,
        T: MergeTapes<R>,
        R: Tape<E, D> + MergeTapes<R, Output = R>,
        MergedTape<T, R>: Tape<E, D>,
    {
        let batched = if <S as ConvTranspose1dShape<W>>::BATCHED {
            self.layout
        } else {
            with_batch_axis(&self.layout)
        };
        let input_layout = with_unit_height(&batched);
        let weight_layout = with_unit_height(&weight.layout);
        let (i, w) = (input_layout.dims(), weight_layout.dims());
        let spec = ConvTranspose2dSpec::new(
            [i[0], i[1], i[2], i[3]],
            [w[0], w[1], w[2], w[3]],
            [1, options.stride],
            [0, options.padding],
            [0, options.output_padding],
            [1, options.dilation],
            options.groups,
        )
        .map_err(rename("conv_transpose1d"))?;
        let channels = out_channels("conv_transpose1d", w[1], spec.out_channels, spec.groups)?;
        let shape = ConvTranspose1dShape::output(&self.shape, &weight.shape, channels, spec.out_width);
        conv_transpose_on_layouts(self, input_layout, weight, weight_layout, bias, spec, shape)
    }
}

/// An error of the 2-d op that runs a 1-d one, under the 1-d op's name.
pub(crate) fn rename(op: &'static str) -> impl Fn(Error) -> Error {
    move |error| match error {
        Error::ShapeMismatch { message, .. } => Error::ShapeMismatch { op, message },
        Error::InvalidArgument { message, .. } => Error::InvalidArgument { op, message },
        other => other,
    }
}
