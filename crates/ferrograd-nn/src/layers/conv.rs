//! Convolution layers: `Conv2D`, `Conv1D` and `ConvTranspose2D`, PyTorch's
//! `nn.Conv2d`, `nn.Conv1d` and `nn.ConvTranspose2d`.

use crate::init::weight_and_bias;
use crate::module::{BuildOnDevice, Module, same_in_training, weight_and_bias};
use ferrograd_autodiff::{
    Conv1dOptions, Conv2dOptions, ConvTranspose2dOptions, Padding, Padding1d, Size2, Tape, Tensor,
};
use ferrograd_device::ops::conv::Conv2dKernel;
use ferrograd_device::ops::copy::CopyKernel;
use ferrograd_device::{Dtype, Error, SampleKernel, Storage};
use ferrograd_shapes::{Const, ConvTranspose2dShape, Dim};

/// A 2-d convolution from `IN` to `OUT` channels with a `K`×`K` kernel, a bias, and
/// PyTorch's `stride`, `padding` (zeros on every side), `dilation` and `groups`:
/// `Conv2D<1, 8, 3>` is PyTorch's `nn.Conv2d(1, 8, 3)`, `Conv2D<64, 64, 3, 1, 1>` is
/// `nn.Conv2d(64, 64, 3, stride=1, padding=1)`. Its `weight` is
/// `(OUT, IN / GROUPS, K, K)` and its `bias` `(OUT,)`, with PyTorch's names and
/// initialisation (both `U(-1/√fan_in, 1/√fan_in)`, `fan_in = IN / GROUPS · K · K`).
/// Non-square kernels, per-axis options, `"same"` padding and run-time channel counts
/// are [`Conv2DConfig`]'s.
///
/// It takes a batch `(N, IN, H, W)` or one image `(IN, H, W)` and gives
/// `(N, OUT, usize, usize)` (or `(OUT, usize, usize)`): the batch and channel dims keep
/// their types, so a layer whose input channels are not the previous layer's output
/// channels does not compile; the output's height and width are run-time sizes.
///
/// ```
/// use ferrograd_cpu::Cpu;
/// use ferrograd_nn::prelude::*;
///
/// let dev = Cpu::seed_from_u64(0);
/// type Net = (Conv2D<1, 4, 3>, ReLU, Conv2D<4, 8, 3, 2, 1>);
/// let net = dev.build_module::<Net, f32>();
/// assert_eq!(net.parameter_names()?, ["0.weight", "0.bias", "2.weight", "2.bias"]);
/// assert_eq!(net.0.weight.dims(), [4, 1, 3, 3]);
/// let x: Tensor<Rank4<2, 1, 28, 28>, f32, Cpu> = dev.sample_normal();
/// // 28 → 26 (3×3, no padding) → 13 (stride 2, padding 1).
/// let y: Tensor<(Const<2>, Const<8>, usize, usize), f32, Cpu> = net.forward(x);
/// assert_eq!(y.dims(), [2, 8, 13, 13]);
/// # Ok::<(), Error>(())
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Conv2D<
    const IN: usize,
    const OUT: usize,
    const K: usize,
    const STRIDE: usize = 1,
    const PAD: usize = 0,
    const DILATION: usize = 1,
    const GROUPS: usize = 1,
>;

/// A 2-d convolution's channels, as types (`Const<N>`) or run-time values (`usize`),
/// and its options, PyTorch's defaults by [`Conv2DConfig::new`]: stride 1, no padding,
/// dilation 1, one group, a bias.
///
/// ```
/// use ferrograd_cpu::Cpu;
/// use ferrograd_nn::prelude::*;
///
/// let dev = Cpu::seed_from_u64(0);
/// // nn.Conv2d(32, 32, (3, 5), padding="same", groups=32, bias=False): depthwise.
/// let config = Conv2DConfig::new(Const::<32>, Const::<32>, (3, 5))
///     .padding(Padding::Same)
///     .groups(32)
///     .without_bias();
/// let layer = dev.build_module_with::<_, f32>(config);
/// assert_eq!(layer.weight.dims(), [32, 1, 3, 5]);
/// let x: Tensor<Rank4<1, 32, 9, 9>, f32, Cpu> = dev.sample_normal();
/// assert_eq!(layer.forward(x).dims(), [1, 32, 9, 9]);
/// // Channels that the groups do not divide are refused when the layer is built.
/// let bad = Conv2DConfig::new(6usize, 4usize, 3).groups(4);
/// assert!(dev.try_build_module_with::<_, f32>(bad).is_err());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Conv2DConfig<I: Dim, O: Dim> {
    /// Channels of the input.
    pub in_channels: I,
    /// Channels of the output.
    pub out_channels: O,
    /// The kernel's `[height, width]`.
    pub kernel_size: [usize; 2],
    /// Stride, padding, dilation and groups, as the op takes them.
    pub options: Conv2dOptions,
    /// Whether the layer adds a bias (PyTorch's default: it does).
    pub bias: bool,
}

impl<I: Dim, O: Dim> Conv2DConfig<I, O> {
    /// A convolution from `in_channels` to `out_channels` with a kernel of
    /// `kernel_size` (`3` or `(3, 5)`), with PyTorch's defaults.
    pub fn new(in_channels: I, out_channels: O, kernel_size: impl Size2) -> Self {
        Self {
            in_channels,
            out_channels,
            kernel_size: kernel_size.size2(),
            options: Conv2dOptions::default(),
            bias: true,
        }
    }

    /// With stride `stride` (`2` or `(2, 1)`).
    pub fn stride(mut self, stride: impl Size2) -> Self {
        self.options = self.options.stride(stride);
        self
    }

    /// With padding `padding` (`1`, `(1, 2)`, or a [`Padding`] such as `Padding::Same`).
    pub fn padding(mut self, padding: impl Into<Padding>) -> Self {
        self.options = self.options.padding(padding);
        self
    }

    /// With dilation `dilation` (`2` or `(2, 1)`).
    pub fn dilation(mut self, dilation: impl Size2) -> Self {
        self.options = self.options.dilation(dilation);
        self
    }

    /// With `groups` channel groups (the input's channel count: depthwise).
    pub fn groups(mut self, groups: usize) -> Self {
        self.options = self.options.groups(groups);
        self
    }

    /// The same layer without a bias.
    pub fn without_bias(self) -> Self {
        Self { bias: false, ..self }
    }
}

impl<
    const IN: usize,
    const OUT: usize,
    const K: usize,
    const STRIDE: usize,
    const PAD: usize,
    const DILATION: usize,
    const GROUPS: usize,
> From<Conv2D<IN, OUT, K, STRIDE, PAD, DILATION, GROUPS>> for Conv2DConfig<Const<IN>, Const<OUT>>
{
    fn from(_: Conv2D<IN, OUT, K, STRIDE, PAD, DILATION, GROUPS>) -> Self {
        Conv2DConfig::new(Const, Const, K)
            .stride(STRIDE)
            .padding(PAD)
            .dilation(DILATION)
            .groups(GROUPS)
    }
}

/// Checks what a layer's sizes must satisfy whatever its input: PyTorch refuses the
/// same when `nn.Conv2d` is constructed.
pub(crate) fn check_channels(
    layer: &'static str,
    in_channels: usize,
    out_channels: usize,
    kernel_size: &[usize],
    groups: usize,
) -> Result<(), Error> {
    let invalid = |message: String| Err(Error::InvalidArgument { op: layer, message });
    if groups == 0 {
        return invalid("the group count must be at least 1, got 0".into());
    }
    if !in_channels.is_multiple_of(groups) || !out_channels.is_multiple_of(groups) {
        return invalid(format!(
            "{groups} groups must divide both the {in_channels} input channels and the {out_channels} output channels"
        ));
    }
    if kernel_size.contains(&0) {
        return invalid(format!("the kernel size must be at least 1, got {kernel_size:?}"));
    }
    Ok(())
}

impl<I: Dim, O: Dim, E: Dtype, D: SampleKernel<E>> BuildOnDevice<E, D> for Conv2DConfig<I, O> {
    type Built = built::Conv2D<I, O, E, D>;

    fn try_build_on_device(&self, device: &D) -> Result<Self::Built, Error> {
        let (inputs, outputs) = (self.in_channels.size(), self.out_channels.size());
        let groups = self.options.groups;
        check_channels("Conv2D", inputs, outputs, &self.kernel_size, groups)?;
        let [height, width] = self.kernel_size;
        let weight_shape = (self.out_channels, inputs / groups, height, width);
        let (weight, bias) = weight_and_bias(device, &weight_shape, self.out_channels, self.bias)?;
        Ok(built::Conv2D {
            weight,
            bias,
            options: self.options,
            in_channels: self.in_channels,
        })
    }
}

impl<
    const IN: usize,
    const OUT: usize,
    const K: usize,
    const STRIDE: usize,
    const PAD: usize,
    const DILATION: usize,
    const GROUPS: usize,
    E: Dtype,
    D: SampleKernel<E>,
> BuildOnDevice<E, D> for Conv2D<IN, OUT, K, STRIDE, PAD, DILATION, GROUPS>
{
    type Built = built::Conv2D<Const<IN>, Const<OUT>, E, D>;

    fn try_build_on_device(&self, device: &D) -> Result<Self::Built, Error> {
        Conv2DConfig::from(*self).try_build_on_device(device)
    }
}

/// A 1-d convolution from `IN` to `OUT` channels with a kernel of `K` and a bias:
/// PyTorch's `nn.Conv1d(IN, OUT, K, STRIDE, PAD, DILATION, GROUPS)`, its `weight`
/// `(OUT, IN / GROUPS, K)` and `bias` `(OUT,)` initialised as PyTorch does. "same"
/// padding and run-time channels are [`Conv1DConfig`]'s. It takes `(N, IN, L)` or
/// `(IN, L)`.
///
/// ```
/// use ferrograd_cpu::Cpu;
/// use ferrograd_nn::prelude::*;
///
/// let dev = Cpu::seed_from_u64(0);
/// let layer = dev.build_module::<Conv1D<4, 6, 3, 2, 1>, f32>();
/// assert_eq!(layer.weight.dims(), [6, 4, 3]);
/// let x: Tensor<Rank3<2, 4, 9>, f32, Cpu> = dev.sample_normal();
/// // (9 + 2 - 3) / 2 + 1 = 5
/// assert_eq!(layer.forward(x).dims(), [2, 6, 5]);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Conv1D<
    const IN: usize,
    const OUT: usize,
    const K: usize,
    const STRIDE: usize = 1,
    const PAD: usize = 0,
    const DILATION: usize = 1,
    const GROUPS: usize = 1,
>;

/// A 1-d convolution's channels (types or run-time values), kernel and options.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Conv1DConfig<I: Dim, O: Dim> {
    /// Channels of the input.
    pub in_channels: I,
    /// Channels of the output.
    pub out_channels: O,
    /// The kernel's length.
    pub kernel_size: usize,
    /// Stride, padding, dilation and groups, as the op takes them.
    pub options: Conv1dOptions,
    /// Whether the layer adds a bias (PyTorch's default: it does).
    pub bias: bool,
}

impl<I: Dim, O: Dim> Conv1DConfig<I, O> {
    /// A convolution from `in_channels` to `out_channels` with a kernel of
    /// `kernel_size`, with PyTorch's defaults; set `options` for the rest.
    pub fn new(in_channels: I, out_channels: O, kernel_size: usize) -> Self {
        Self {
            in_channels,
            out_channels,
            kernel_size,
            options: Conv1dOptions::default(),
            bias: true,
        }
    }

    /// With these options (`Conv1dOptions::default().padding(Padding1d::Same)`).
    pub fn options(self, options: Conv1dOptions) -> Self {
        Self { options, ..self }
    }

    /// The same layer without a bias.
    pub fn without_bias(self) -> Self {
        Self { bias: false, ..self }
    }
}

impl<
    const IN: usize,
    const OUT: usize,
    const K: usize,
    const STRIDE: usize,
    const PAD: usize,
    const DILATION: usize,
    const GROUPS: usize,
> From<Conv1D<IN, OUT, K, STRIDE, PAD, DILATION, GROUPS>> for Conv1DConfig<Const<IN>, Const<OUT>>
{
    fn from(_: Conv1D<IN, OUT, K, STRIDE, PAD, DILATION, GROUPS>) -> Self {
        let options = Conv1dOptions::default()
            .stride(STRIDE)
            .padding(Padding1d::Symmetric(PAD))
            .dilation(DILATION)
            .groups(GROUPS);
        Conv1DConfig::new(Const, Const, K).options(options)
    }
}

impl<I: Dim, O: Dim, E: Dtype, D: SampleKernel<E>> BuildOnDevice<E, D> for Conv1DConfig<I, O> {
    type Built = built::Conv1D<I, O, E, D>;

    fn try_build_on_device(&self, device: &D) -> Result<Self::Built, Error> {
        let (inputs, outputs) = (self.in_channels.size(), self.out_channels.size());
        let groups = self.options.groups;
        check_channels("Conv1D", inputs, outputs, &[self.kernel_size], groups)?;
        let weight_shape = (self.out_channels, inputs / groups, self.kernel_size);
        let (weight, bias) = weight_and_bias(device, &weight_shape, self.out_channels, self.bias)?;
        Ok(built::Conv1D {
            weight,
            bias,
            options: self.options,
            in_channels: self.in_channels,
        })
    }
}

impl<
    const IN: usize,
    const OUT: usize,
    const K: usize,
    const STRIDE: usize,
    const PAD: usize,
    const DILATION: usize,
    const GROUPS: usize,
    E: Dtype,
    D: SampleKernel<E>,
> BuildOnDevice<E, D> for Conv1D<IN, OUT, K, STRIDE, PAD, DILATION, GROUPS>
{
    type Built = built::Conv1D<Const<IN>, Const<OUT>, E, D>;

    fn try_build_on_device(&self, device: &D) -> Result<Self::Built, Error> {
        Conv1DConfig::from(*self).try_build_on_device(device)
    }
}

/// A transposed 2-d convolution from `IN` to `OUT` channels with a `K`×`K` kernel and a
/// bias (the gradient of a convolution, used to upsample): PyTorch's
/// `nn.ConvTranspose2d(IN, OUT, K, STRIDE, PAD)`, its `weight` `(IN, OUT / groups, K, K)`
/// and `bias` `(OUT,)` initialised as PyTorch does (`fan_in = OUT / groups · K · K`,
/// from the weight's second dim). Output padding, dilation, groups and run-time
/// channels are [`ConvTranspose2DConfig`]'s.
///
/// ```
/// use ferrograd_cpu::Cpu;
/// use ferrograd_nn::prelude::*;
///
/// let dev = Cpu::seed_from_u64(0);
/// let layer = dev.build_module::<ConvTranspose2D<8, 4, 4, 2, 1>, f32>();
/// assert_eq!(layer.weight.dims(), [8, 4, 4, 4]);
/// let x: Tensor<Rank4<2, 8, 7, 7>, f32, Cpu> = dev.sample_normal();
/// // (7 - 1) · 2 - 2 · 1 + (4 - 1) + 1 = 14: twice the size.
/// let y: Tensor<(Const<2>, Const<4>, usize, usize), f32, Cpu> = layer.forward(x);
/// assert_eq!(y.dims(), [2, 4, 14, 14]);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ConvTranspose2D<
    const IN: usize,
    const OUT: usize,
    const K: usize,
    const STRIDE: usize = 1,
    const PAD: usize = 0,
>;

/// A transposed 2-d convolution's channels (types or run-time values), kernel and
/// options.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConvTranspose2DConfig<I: Dim, O: Dim> {
    /// Channels of the input.
    pub in_channels: I,
    /// Channels of the output.
    pub out_channels: O,
    /// The kernel's `[height, width]`.
    pub kernel_size: [usize; 2],
    /// Stride, padding, output padding, dilation and groups, as the op takes them.
    pub options: ConvTranspose2dOptions,
    /// Whether the layer adds a bias (PyTorch's default: it does).
    pub bias: bool,
}

impl<I: Dim, O: Dim> ConvTranspose2DConfig<I, O> {
    /// A transposed convolution from `in_channels` to `out_channels` with a kernel of
    /// `kernel_size` (`3` or `(3, 5)`), with PyTorch's defaults; set `options` for the
    /// rest.
    pub fn new(in_channels: I, out_channels: O, kernel_size: impl Size2) -> Self {
        Self {
            in_channels,
            out_channels,
            kernel_size: kernel_size.size2(),
            options: ConvTranspose2dOptions::default(),
            bias: true,
        }
    }

    /// With these options (`ConvTranspose2dOptions::default().stride(2).output_padding(1)`).
    pub fn options(self, options: ConvTranspose2dOptions) -> Self {
        Self { options, ..self }
    }

    /// The same layer without a bias.
    pub fn without_bias(self) -> Self {
        Self { bias: false, ..self }
    }
}

impl<const IN: usize, const OUT: usize, const K: usize, const STRIDE: usize, const PAD: usize>
    From<ConvTranspose2D<IN, OUT, K, STRIDE, PAD>> for ConvTranspose2DConfig<Const<IN>, Const<OUT>>
{
    fn from(_: ConvTranspose2D<IN, OUT, K, STRIDE, PAD>) -> Self {
        ConvTranspose2DConfig::new(Const, Const, K)
            .options(ConvTranspose2dOptions::default().stride(STRIDE).padding(PAD))
    }
}

impl<I: Dim, O: Dim, E: Dtype, D: SampleKernel<E>> BuildOnDevice<E, D> for ConvTranspose2DConfig<I, O> {
    type Built = built::ConvTranspose2D<I, O, E, D>;

    fn try_build_on_device(&self, device: &D) -> Result<Self::Built, Error> {
        let (inputs, outputs) = (self.in_channels.size(), self.out_channels.size());
        let groups = self.options.groups;
        check_channels("ConvTranspose2D", inputs, outputs, &self.kernel_size, groups)?;
        let [height, width] = self.kernel_size;
        // The weight's second dim is the output's channels per group, so PyTorch's
        // fan-in (and this one) counts those.
        let weight_shape = (self.in_channels, outputs / groups, height, width);
        let (weight, bias) = weight_and_bias(device, &weight_shape, self.out_channels, self.bias)?;
        Ok(built::ConvTranspose2D {
            weight,
            bias,
            options: self.options,
            out_channels: self.out_channels,
        })
    }
}

impl<
    const IN: usize,
    const OUT: usize,
    const K: usize,
    const STRIDE: usize,
    const PAD: usize,
    E: Dtype,
    D: SampleKernel<E>,
> BuildOnDevice<E, D> for ConvTranspose2D<IN, OUT, K, STRIDE, PAD>
{
    type Built = built::ConvTranspose2D<Const<IN>, Const<OUT>, E, D>;

    fn try_build_on_device(&self, device: &D) -> Result<Self::Built, Error> {
        ConvTranspose2DConfig::from(*self).try_build_on_device(device)
    }
}

/// Built convolution layers.
pub mod built {
    use super::*;

    /// A built [`Conv2D`](super::Conv2D) or [`Conv2DConfig`].
    ///
    /// The weight's in-channel and kernel dims are run-time sizes: grouped layers
    /// have `I / groups` in-channels, which stable Rust cannot compute from a const.
    /// The layer's input channels are checked through `I` instead.
    #[derive(Clone, Debug)]
    pub struct Conv2D<I: Dim, O: Dim, E: Dtype, D: Storage<E>> {
        /// `(out_channels, in_channels / groups, kernel_height, kernel_width)`.
        pub weight: Tensor<(O, usize, usize, usize), E, D>,
        /// `(out_channels,)`, absent in a layer built without one.
        pub bias: Option<Tensor<(O,), E, D>>,
        /// Stride, padding, dilation and groups.
        pub options: Conv2dOptions,
        /// The input's channels.
        pub in_channels: I,
    }

    weight_and_bias!(Conv2D);
    weight_and_bias!(Conv1D);
    weight_and_bias!(ConvTranspose2D);

    /// A batch: `(N, I, H, W)` → `(N, O, usize, usize)`.
    impl<N: Dim, I: Dim, O: Dim, H: Dim, W: Dim, E: Dtype, D, T> Module<Tensor<(N, I, H, W), E, D, T>>
        for Conv2D<I, O, E, D>
    where
        D: Conv2dKernel<E>,
        T: Tape<E, D>,
    {
        type Output = Tensor<(N, O, usize, usize), E, D, T>;

        fn try_forward(&self, input: Tensor<(N, I, H, W), E, D, T>) -> Result<Self::Output, Error> {
            input.try_conv2d(self.weight.clone(), self.bias.clone(), self.options)
        }
    }

    /// One image: `(I, H, W)` → `(O, usize, usize)`.
    impl<I: Dim, O: Dim, H: Dim, W: Dim, E: Dtype, D, T> Module<Tensor<(I, H, W), E, D, T>> for Conv2D<I, O, E, D>
    where
        D: Conv2dKernel<E>,
        T: Tape<E, D>,
    {
        type Output = Tensor<(O, usize, usize), E, D, T>;

        fn try_forward(&self, input: Tensor<(I, H, W), E, D, T>) -> Result<Self::Output, Error> {
            input.try_conv2d(self.weight.clone(), self.bias.clone(), self.options)
        }
    }

    same_in_training!([I: Dim, O: Dim, E: Dtype, D: Storage<E>] Conv2D<I, O, E, D>);

    /// A built [`Conv1D`](super::Conv1D) or [`Conv1DConfig`].
    #[derive(Clone, Debug)]
    pub struct Conv1D<I: Dim, O: Dim, E: Dtype, D: Storage<E>> {
        /// `(out_channels, in_channels / groups, kernel_size)`.
        pub weight: Tensor<(O, usize, usize), E, D>,
        /// `(out_channels,)`, absent in a layer built without one.
        pub bias: Option<Tensor<(O,), E, D>>,
        /// Stride, padding, dilation and groups.
        pub options: Conv1dOptions,
        /// The input's channels.
        pub in_channels: I,
    }

    /// A batch: `(N, I, L)` → `(N, O, usize)`.
    impl<N: Dim, I: Dim, O: Dim, L: Dim, E: Dtype, D, T> Module<Tensor<(N, I, L), E, D, T>> for Conv1D<I, O, E, D>
    where
        D: Conv2dKernel<E>,
        T: Tape<E, D>,
    {
        type Output = Tensor<(N, O, usize), E, D, T>;

        fn try_forward(&self, input: Tensor<(N, I, L), E, D, T>) -> Result<Self::Output, Error> {
            input.try_conv1d(self.weight.clone(), self.bias.clone(), self.options)
        }
    }

    /// One sequence: `(I, L)` → `(O, usize)`.
    impl<I: Dim, O: Dim, L: Dim, E: Dtype, D, T> Module<Tensor<(I, L), E, D, T>> for Conv1D<I, O, E, D>
    where
        D: Conv2dKernel<E>,
        T: Tape<E, D>,
    {
        type Output = Tensor<(O, usize), E, D, T>;

        fn try_forward(&self, input: Tensor<(I, L), E, D, T>) -> Result<Self::Output, Error> {
            input.try_conv1d(self.weight.clone(), self.bias.clone(), self.options)
        }
    }

    same_in_training!([I: Dim, O: Dim, E: Dtype, D: Storage<E>] Conv1D<I, O, E, D>);

    /// A built [`ConvTranspose2D`](super::ConvTranspose2D) or
    /// [`ConvTranspose2DConfig`].
    ///
    /// The weight's second dim is the output's channels per group, a run-time size;
    /// the output's channel dim gets the type `O` back when the layer runs.
    #[derive(Clone, Debug)]
    pub struct ConvTranspose2D<I: Dim, O: Dim, E: Dtype, D: Storage<E>> {
        /// `(in_channels, out_channels / groups, kernel_height, kernel_width)`.
        pub weight: Tensor<(I, usize, usize, usize), E, D>,
        /// `(out_channels,)`, absent in a layer built without one.
        pub bias: Option<Tensor<(O,), E, D>>,
        /// Stride, padding, output padding, dilation and groups.
        pub options: ConvTranspose2dOptions,
        /// The output's channels.
        pub out_channels: O,
    }

    impl<I: Dim, O: Dim, E: Dtype, D: Conv2dKernel<E> + CopyKernel<E>> ConvTranspose2D<I, O, E, D> {
        fn run<S, T>(&self, input: Tensor<S, E, D, T>) -> Result<Tensor<S::Output, E, D, T>, Error>
        where
            S: ConvTranspose2dShape<(usize, usize, usize, usize), OutChannels = usize>,
            T: Tape<E, D>,
        {
            // The bias as the op's run-time channel dim: a view with the same id, so
            // its gradient is the parameter's.
            let bias = match &self.bias {
                Some(bias) => Some(bias.clone().try_realize::<(usize,)>()?),
                None => None,
            };
            // The weight as run-time dims too (the Module impls have checked the input's
            // channels by type already).
            let weight = self.weight.clone().try_realize::<(usize, usize, usize, usize)>()?;
            input.try_conv_transpose2d(weight, bias, self.options)
        }
    }

    /// A batch: `(N, I, H, W)` → `(N, O, usize, usize)`.
    impl<N: Dim, I: Dim, O: Dim, H: Dim, W: Dim, E: Dtype, D, T> Module<Tensor<(N, I, H, W), E, D, T>>
        for ConvTranspose2D<I, O, E, D>
    where
        D: Conv2dKernel<E> + CopyKernel<E>,
        T: Tape<E, D>,
    {
        type Output = Tensor<(N, O, usize, usize), E, D, T>;

        fn try_forward(&self, input: Tensor<(N, I, H, W), E, D, T>) -> Result<Self::Output, Error> {
            self.run(input)?.try_realize()
        }
    }

    /// One image: `(I, H, W)` → `(O, usize, usize)`.
    impl<I: Dim, O: Dim, H: Dim, W: Dim, E: Dtype, D, T> Module<Tensor<(I, H, W), E, D, T>> for ConvTranspose2D<I, O, E, D>
    where
        D: Conv2dKernel<E> + CopyKernel<E>,
        T: Tape<E, D>,
    {
        type Output = Tensor<(O, usize, usize), E, D, T>;

        fn try_forward(&self, input: Tensor<(I, H, W), E, D, T>) -> Result<Self::Output, Error> {
            self.run(input)?.try_realize()
        }
    }

    same_in_training!([I: Dim, O: Dim, E: Dtype, D: Storage<E>] ConvTranspose2D<I, O, E, D>);
}
