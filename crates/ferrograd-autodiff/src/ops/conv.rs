//! 2-d convolutions (PyTorch's `torch.nn.functional.conv2d`), differentiable in the
//! input, the weight and the bias.

use crate::OrPanic;
use crate::tape::{MergeTapes, MergedTape, Tape};
use crate::tensor::Tensor;
use ferrograd_device::ops::conv::{Conv2dKernel, Conv2dSpec};
use ferrograd_device::{Dtype, Error, Layout, View, ViewMut};
use ferrograd_shapes::{Conv2dShape, Shape};
use std::sync::Arc;

pub use ferrograd_device::ops::conv::Padding;

/// A size given once for both axes (`2`) or per axis (`(2, 1)`: height, then width),
/// as PyTorch takes `stride` and `dilation`.
pub trait Size2 {
    /// `[height, width]`.
    fn size2(self) -> [usize; 2];
}

impl Size2 for usize {
    fn size2(self) -> [usize; 2] {
        [self, self]
    }
}

impl Size2 for (usize, usize) {
    fn size2(self) -> [usize; 2] {
        [self.0, self.1]
    }
}

impl Size2 for [usize; 2] {
    fn size2(self) -> [usize; 2] {
        self
    }
}

/// The options of [`Tensor::conv2d`], PyTorch's defaults by `Default`: stride 1, no
/// padding, dilation 1, one group.
///
/// ```
/// use ferrograd_autodiff::{Conv2dOptions, Padding};
/// let options = Conv2dOptions::default().stride((2, 1)).padding(1).dilation(2).groups(4);
/// assert_eq!(options.stride, [2, 1]);
/// assert_eq!(options.padding, Padding::Symmetric(1, 1));
/// assert_eq!(Conv2dOptions::default().padding(Padding::Same).padding, Padding::Same);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Conv2dOptions {
    /// Steps between output pixels, `[height, width]`.
    pub stride: [usize; 2],
    /// Zero padding around the input.
    pub padding: Padding,
    /// Steps between kernel taps, `[height, width]`.
    pub dilation: [usize; 2],
    /// Channel groups: `1` is an ordinary convolution, the input's channel count a
    /// depthwise one. The weight's in-channel dim is then `C_IN / groups`; name it
    /// `usize` when the input's channels are const (see [`Conv2dShape`]).
    pub groups: usize,
}

impl Default for Conv2dOptions {
    fn default() -> Self {
        Self {
            stride: [1, 1],
            padding: Padding::Valid,
            dilation: [1, 1],
            groups: 1,
        }
    }
}

impl Conv2dOptions {
    /// These options with stride `stride` (`2` or `(2, 1)`).
    pub fn stride(self, stride: impl Size2) -> Self {
        Self {
            stride: stride.size2(),
            ..self
        }
    }

    /// These options with padding `padding` (`1`, `(1, 2)`, or a [`Padding`]).
    pub fn padding(self, padding: impl Into<Padding>) -> Self {
        Self {
            padding: padding.into(),
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

/// The rank-4 layout a kernel sees for `layout`: itself, or one image given a batch
/// axis of size 1.
fn batched(layout: &Layout) -> Layout {
    if layout.rank() == 4 {
        return *layout;
    }
    let (dims, strides) = (layout.dims(), layout.strides());
    Layout::from_parts(
        &[1, dims[0], dims[1], dims[2]],
        &[0, strides[0], strides[1], strides[2]],
    )
    .with_offset(layout.offset())
}

/// The bias of a convolution whose weight has out-channel dim `O` and tape `R`.
pub type Conv2dBias<O, E, D, R> = Tensor<(O,), E, D, R>;

impl<S: Shape, E: Dtype, D: Conv2dKernel<E>, T: Tape<E, D>> Tensor<S, E, D, T> {
    /// The 2-d convolution (cross-correlation) of this input with `weight`, plus
    /// `bias` when given: PyTorch's `conv2d(input, weight, bias, stride, padding,
    /// dilation, groups)`.
    ///
    /// The input is a batch `(N, C_IN, H, W)` or one image `(C_IN, H, W)`; the weight
    /// `(C_OUT, C_IN / groups, KH, KW)`; the bias `(C_OUT,)`. The result is
    /// `(N, C_OUT, usize, usize)` (or `(C_OUT, usize, usize)`): its height and width
    /// are run-time sizes, which `realize` turns back into consts. A weight whose
    /// const in-channel dim is not the input's channel dim does not compile; grouped
    /// weights name that dim `usize` and are checked when the convolution runs.
    ///
    /// Gradients reach the input, the weight and the bias, each when traced or when
    /// the tape's gradients were allocated for it (a model's parameters).
    ///
    /// ```
    /// use ferrograd_autodiff::prelude::*;
    /// use ferrograd_autodiff::{Conv2dOptions, Padding};
    /// let dev = ferrograd_cpu::Cpu::default();
    /// // One 3×3 image, one channel; a 2×2 kernel summing each window, bias 0.5.
    /// let x = dev.tensor([[[1.0f32, 2.0, 3.0], [4.0, 5.0, 6.0], [7.0, 8.0, 9.0]]]);
    /// let w: Tensor<Rank4<1, 1, 2, 2>, f32, _> = dev.ones();
    /// let b = dev.tensor([0.5f32]);
    /// let y = x.clone().conv2d(w.clone(), Some(b.clone()), Conv2dOptions::default());
    /// assert_eq!(y.realize::<Rank3<1, 2, 2>>().array(), [[[12.5, 16.5], [24.5, 28.5]]]);
    ///
    /// // "same" padding with an even kernel pads one more at the bottom and right.
    /// let same = x.clone().conv2d(w.clone(), None, Conv2dOptions::default().padding(Padding::Same));
    /// assert_eq!(same.dims(), [1, 3, 3]);
    ///
    /// // Gradients of the input, weight and bias: each weight tap sees 4 input pixels.
    /// let loss = x.leaky_trace().conv2d(w.clone(), Some(b.clone()), Conv2dOptions::default()).sum::<Rank0, _>();
    /// let grads = loss.backward();
    /// assert_eq!(grads.get(&w).array(), [[[[12.0, 16.0], [24.0, 28.0]]]]);
    /// assert_eq!(grads.get(&b).array(), [4.0]);
    /// assert_eq!(grads.get(&x).array()[0][1], [2.0, 4.0, 2.0]);
    /// ```
    ///
    /// # Panics
    /// As [`Tensor::try_conv2d`] fails.
    #[track_caller]
    pub fn conv2d<W: Shape, R>(
        self,
        weight: Tensor<W, E, D, R>,
        bias: Option<Conv2dBias<S::OutChannels, E, D, R>>,
        options: Conv2dOptions,
    ) -> Tensor<S::Output, E, D, MergedTape<T, R>>
    where
        S: Conv2dShape<W>,
        T: MergeTapes<R>,
        R: Tape<E, D> + MergeTapes<R, Output = R>,
        MergedTape<T, R>: Tape<E, D>,
    {
        self.try_conv2d(weight, bias, options).or_panic()
    }

    /// [`Tensor::conv2d`], returning an error instead of panicking: `ShapeMismatch`
    /// when run-time channels disagree, or the (dilated) kernel is larger than the
    /// padded input; `InvalidArgument` for groups that do not divide the channels, a
    /// stride, dilation or group count of 0, or "same" padding with a stride other
    /// than 1. Each message names the sizes.
    #[allow(clippy::type_complexity)] // the result type is the op's own: shape, dtype, device, tape
    pub fn try_conv2d<W: Shape, R>(
        self,
        weight: Tensor<W, E, D, R>,
        bias: Option<Conv2dBias<S::OutChannels, E, D, R>>,
        options: Conv2dOptions,
    ) -> Result<Tensor<S::Output, E, D, MergedTape<T, R>>, Error>
    where
        S: Conv2dShape<W>,
        T: MergeTapes<R>,
        R: Tape<E, D> + MergeTapes<R, Output = R>,
        MergedTape<T, R>: Tape<E, D>,
    {
        let input_layout = batched(&self.layout);
        let weight_dims = weight.layout.dims();
        let input_dims = input_layout.dims();
        let spec = Conv2dSpec::new(
            [input_dims[0], input_dims[1], input_dims[2], input_dims[3]],
            [weight_dims[0], weight_dims[1], weight_dims[2], weight_dims[3]],
            options.stride,
            options.padding,
            options.dilation,
            options.groups,
        )?;
        let shape = Conv2dShape::output(&self.shape, &weight.shape, spec.out_height, spec.out_width);
        let weight_layout = weight.layout;
        conv2d_on_layouts(self, input_layout, weight, weight_layout, bias, &spec, shape)
    }
}

/// The convolution `spec` of `input` seen through the rank-4 `input_layout` with
/// `weight` seen through `weight_layout`, as a tensor of shape `shape`: conv2d itself,
/// and conv1d, whose layouts are those of its operands with a height of 1.
pub(crate) fn conv2d_on_layouts<S, W, B, O, E, D, T, R>(
    input: Tensor<S, E, D, T>,
    input_layout: Layout,
    weight: Tensor<W, E, D, R>,
    weight_layout: Layout,
    bias: Option<Tensor<B, E, D, R>>,
    spec: &Conv2dSpec,
    shape: O,
) -> Result<Tensor<O, E, D, MergedTape<T, R>>, Error>
where
    S: Shape,
    W: Shape,
    B: Shape,
    O: Shape,
    E: Dtype,
    D: Conv2dKernel<E>,
    T: Tape<E, D> + MergeTapes<R>,
    R: Tape<E, D> + MergeTapes<R, Output = R>,
    MergedTape<T, R>: Tape<E, D>,
{
    let spec = *spec;
    let device = input.device.clone();
    let out = device.conv2d_forward(
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
                device.conv2d_backward_input(
                    &spec,
                    View::new(&*weight_data, weight_layout),
                    grad_output,
                    ViewMut::new(grad, input_layout),
                )?;
            }
            if let Some(grad) = ctx.grad_mut(1)? {
                device.conv2d_backward_weight(
                    &spec,
                    View::new(&*input_data, input_layout),
                    grad_output,
                    ViewMut::new(grad, weight_layout),
                )?;
            }
            if let Some(bias_layout) = bias_parts
                && let Some(grad) = ctx.grad_mut(2)?
            {
                device.conv2d_backward_bias(&spec, grad_output, ViewMut::new(grad, bias_layout))?;
            }
            Ok(())
        })
    }))
}
