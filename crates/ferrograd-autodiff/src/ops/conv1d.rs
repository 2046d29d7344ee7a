//! 1-d convolutions (PyTorch's `torch.nn.functional.conv1d`): the 2-d convolution with
//! a height of 1, through views of the operands' layouts (no copies), so a device's
//! `Conv2dKernel` runs them and their gradients.

use crate::OrPanic;
use crate::ops::conv::conv2d_on_layouts;
use crate::ops::conv_transpose::{rename, with_batch_axis, with_unit_height};
use crate::tape::{MergeTapes, MergedTape, Tape};
use crate::tensor::Tensor;
use ferrograd_device::ops::conv::{Conv2dKernel, Conv2dSpec, Padding};
use ferrograd_device::{Dtype, Error};
use ferrograd_shapes::{Conv1dShape, Shape};

/// How much zero padding surrounds a sequence (PyTorch's `padding` of `conv1d`).
///
/// `From<usize>` gives PyTorch's `padding=2`: that many zeros at both ends.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Padding1d {
    /// No padding (PyTorch's `"valid"`, or `0`).
    #[default]
    Valid,
    /// As much padding as keeps the output the length of the input (PyTorch's
    /// `"same"`): `dilation · (kernel - 1)` in all, half before and the rest after (an
    /// even kernel pads one more at the end). Only for stride 1, as in PyTorch.
    Same,
    /// That many zeros at both ends.
    Symmetric(usize),
    /// A different amount at each end.
    Explicit {
        /// Zeros before the first position.
        left: usize,
        /// Zeros after the last position.
        right: usize,
    },
}

impl From<usize> for Padding1d {
    fn from(both: usize) -> Self {
        Padding1d::Symmetric(both)
    }
}

impl Padding1d {
    /// The 2-d padding of the height-1 convolution that runs this one.
    fn as_2d(self) -> Padding {
        let explicit = |left, right| Padding::Explicit {
            top: 0,
            bottom: 0,
            left,
            right,
        };
        match self {
            Padding1d::Valid => Padding::Valid,
            // A kernel of height 1 pads no rows.
            Padding1d::Same => Padding::Same,
            Padding1d::Symmetric(both) => explicit(both, both),
            Padding1d::Explicit { left, right } => explicit(left, right),
        }
    }
}

/// The options of [`Tensor::conv1d`], PyTorch's defaults by `Default`: stride 1, no
/// padding, dilation 1, one group.
///
/// ```
/// use ferrograd_autodiff::{Conv1dOptions, Padding1d};
/// let options = Conv1dOptions::default().stride(2).padding(1).dilation(3).groups(2);
/// assert_eq!((options.stride, options.dilation, options.groups), (2, 3, 2));
/// assert_eq!(options.padding, Padding1d::Symmetric(1));
/// assert_eq!(Conv1dOptions::default().padding(Padding1d::Same).padding, Padding1d::Same);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Conv1dOptions {
    /// Steps between output positions.
    pub stride: usize,
    /// Zero padding around the input.
    pub padding: Padding1d,
    /// Steps between kernel taps.
    pub dilation: usize,
    /// Channel groups; the weight's in-channel dim is then `C_IN / groups` (name it
    /// `usize` when the input's channels are const, see [`Conv1dShape`]).
    pub groups: usize,
}

impl Default for Conv1dOptions {
    fn default() -> Self {
        Self {
            stride: 1,
            padding: Padding1d::Valid,
            dilation: 1,
            groups: 1,
        }
    }
}

impl Conv1dOptions {
    /// These options with stride `stride`.
    pub fn stride(self, stride: usize) -> Self {
        Self { stride, ..self }
    }

    /// These options with padding `padding` (`1` or a [`Padding1d`]).
    pub fn padding(self, padding: impl Into<Padding1d>) -> Self {
        Self {
            padding: padding.into(),
            ..self
        }
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

/// The bias of a 1-d convolution whose weight has out-channel dim `O`.
pub type Conv1dBias<O, E, D, R> = Tensor<(O,), E, D, R>;

impl<S: Shape, E: Dtype, D: Conv2dKernel<E>, T: Tape<E, D>> Tensor<S, E, D, T> {
    /// The 1-d convolution (cross-correlation) of this input with `weight`, plus
    /// `bias` when given: PyTorch's `conv1d(input, weight, bias, stride, padding,
    /// dilation, groups)`.
    ///
    /// The input is a batch `(N, C_IN, L)` or one sequence `(C_IN, L)`; the weight
    /// `(C_OUT, C_IN / groups, K)`; the bias `(C_OUT,)`. The result is
    /// `(N, C_OUT, usize)` (or `(C_OUT, usize)`). Channels are checked as for
    /// [`Tensor::conv2d`]: a const mismatch does not compile.
    ///
    /// ```
    /// use ferrograd_autodiff::prelude::*;
    /// use ferrograd_autodiff::{Conv1dOptions, Padding1d};
    /// let dev = ferrograd_cpu::Cpu::default();
    /// let x = dev.tensor([[1.0f32, 2.0, 3.0, 4.0]]);
    /// // A difference filter: x[i + 1] - x[i].
    /// let w = dev.tensor([[[-1.0f32, 1.0]]]);
    /// let y = x.clone().conv1d(w.clone(), None, Conv1dOptions::default());
    /// assert_eq!(y.realize::<Rank2<1, 3>>().array(), [[1.0, 1.0, 1.0]]);
    /// // "same" with an even kernel pads one more at the end.
    /// let same = x.conv1d(w, None, Conv1dOptions::default().padding(Padding1d::Same));
    /// assert_eq!(same.realize::<Rank2<1, 4>>().array(), [[1.0, 1.0, 1.0, -4.0]]);
    /// ```
    ///
    /// # Panics
    /// As [`Tensor::try_conv1d`] fails.
    #[track_caller]
    pub fn conv1d<W: Shape, R>(
        self,
        weight: Tensor<W, E, D, R>,
        bias: Option<Conv1dBias<<S as Conv1dShape<W>>::OutChannels, E, D, R>>,
        options: Conv1dOptions,
    ) -> Tensor<<S as Conv1dShape<W>>::Output, E, D, MergedTape<T, R>>
    where
        S: Conv1dShape<W>,
        T: MergeTapes<R>,
        R: Tape<E, D> + MergeTapes<R, Output = R>,
        MergedTape<T, R>: Tape<E, D>,
    {
        self.try_conv1d(weight, bias, options).or_panic()
    }

    /// [`Tensor::conv1d`], returning an error instead of panicking, in the cases
    /// [`Tensor::try_conv2d`] gives (channels, groups, a kernel longer than the padded
    /// input, a stride, dilation or group count of 0, "same" with a stride other than
    /// 1); the messages name the sizes of the height-1 2-d op (`(N, C, 1, L)`).
    #[allow(clippy::type_complexity)] // the result type is the op's own: shape, dtype, device, tape
    pub fn try_conv1d<W: Shape, R>(
        self,
        weight: Tensor<W, E, D, R>,
        bias: Option<Conv1dBias<<S as Conv1dShape<W>>::OutChannels, E, D, R>>,
        options: Conv1dOptions,
    ) -> Result<Tensor<<S as Conv1dShape<W>>::Output, E, D, MergedTape<T, R>>, Error>
    where
        S: Conv1dShape<W>,
        T: MergeTapes<R>,
        R: Tape<E, D> + MergeTapes<R, Output = R>,
        MergedTape<T, R>: Tape<E, D>,
    {
        let batched = if <S as Conv1dShape<W>>::BATCHED {
            self.layout
        } else {
            with_batch_axis(&self.layout)
        };
        let input_layout = with_unit_height(&batched);
        let weight_layout = with_unit_height(&weight.layout);
        let (i, w) = (input_layout.dims(), weight_layout.dims());
        let spec = Conv2dSpec::new(
            [i[0], i[1], i[2], i[3]],
            [w[0], w[1], w[2], w[3]],
            [1, options.stride],
            options.padding.as_2d(),
            [1, options.dilation],
            options.groups,
        )
        .map_err(rename("conv1d"))?;
        let shape = Conv1dShape::output(&self.shape, &weight.shape, spec.out_width);
        conv2d_on_layouts(self, input_layout, weight, weight_layout, bias, &spec, shape).map_err(rename("conv1d"))
    }
}
