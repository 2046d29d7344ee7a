//! Pooling layers: `MaxPool2D`, `AvgPool2D`, `AdaptiveAvgPool2D` and the global pools,
//! PyTorch's `nn.MaxPool2d`, `nn.AvgPool2d`, `nn.AdaptiveAvgPool2d`.

use crate::layers::activations::{parameter_free, parameter_free_but_training};
use crate::module::{Module, same_in_training};
use ferrograd_autodiff::{Pool2dOptions, Size2, Tape, Tensor};
use ferrograd_device::ops::pool::Pool2dKernel;
use ferrograd_device::{Dtype, Error};
use ferrograd_shapes::{Pool2dShape, Shape};

macro_rules! pool_layer {
    ($(#[$doc:meta])* $layer:ident, $(#[$config_doc:meta])* $config:ident, $method:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
        pub struct $layer<const K: usize, const STRIDE: usize = K, const PAD: usize = 0>;

        $(#[$config_doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub struct $config {
            /// The window's `[height, width]`.
            pub kernel_size: [usize; 2],
            /// Stride, padding, dilation, rounding and what an average counts.
            pub options: Pool2dOptions,
        }

        impl $config {
            /// A pool over windows of `kernel_size` (`2` or `(2, 3)`) with PyTorch's
            /// defaults: stride = the window, no padding, floor rounding.
            pub fn new(kernel_size: impl Size2) -> Self {
                Self {
                    kernel_size: kernel_size.size2(),
                    options: Pool2dOptions::default(),
                }
            }

            /// With these options (`Pool2dOptions::default().stride(1).ceil_mode(true)`).
            pub fn options(self, options: Pool2dOptions) -> Self {
                Self { options, ..self }
            }
        }

        impl<const K: usize, const STRIDE: usize, const PAD: usize> From<$layer<K, STRIDE, PAD>> for $config {
            fn from(_: $layer<K, STRIDE, PAD>) -> Self {
                Self::new(K).options(Pool2dOptions::default().stride(STRIDE).padding(PAD))
            }
        }

        impl<S: Pool2dShape, E: Dtype, D: Pool2dKernel<E>, T: Tape<E, D>, const K: usize, const STRIDE: usize, const PAD: usize>
            Module<Tensor<S, E, D, T>> for $layer<K, STRIDE, PAD>
        {
            type Output = Tensor<S::Output, E, D, T>;
            fn try_forward(&self, x: Tensor<S, E, D, T>) -> Result<Self::Output, Error> {
                $config::from(*self).try_forward(x)
            }
        }

        impl<S: Pool2dShape, E: Dtype, D: Pool2dKernel<E>, T: Tape<E, D>> Module<Tensor<S, E, D, T>> for $config {
            type Output = Tensor<S::Output, E, D, T>;
            fn try_forward(&self, x: Tensor<S, E, D, T>) -> Result<Self::Output, Error> {
                x.$method(self.kernel_size, self.options)
            }
        }

        parameter_free!($config);

        parameter_free!([const K: usize, const STRIDE: usize, const PAD: usize,] $layer<K, STRIDE, PAD>);
    };
}

pool_layer!(
    /// The maximum of each `K`×`K` window, `STRIDE` apart (default: `K`), over an
    /// input padded by `PAD` on every side: PyTorch's `nn.MaxPool2d(K, STRIDE, PAD)`.
    /// Dilation and `ceil_mode` are [`MaxPool2DConfig`]'s. It takes `(N, C, H, W)` or
    /// `(C, H, W)`; the batch and channel dims keep their types.
    ///
    /// ```
    /// use ferrograd_cpu::Cpu;
    /// use ferrograd_nn::prelude::*;
    ///
    /// let dev = Cpu::default();
    /// let x: Tensor<Rank4<2, 3, 7, 7>, f32, Cpu> = dev.sample_normal();
    /// let y: Tensor<(Const<2>, Const<3>, usize, usize), f32, Cpu> = MaxPool2D::<2>.forward(x.clone());
    /// assert_eq!(y.dims(), [2, 3, 3, 3]);
    /// // ResNet's stem: 3×3 windows, stride 2, padding 1.
    /// assert_eq!(MaxPool2D::<3, 2, 1>.forward(x).dims(), [2, 3, 4, 4]);
    /// ```
    MaxPool2D,
    /// A [`MaxPool2D`] of run-time sizes and every option of PyTorch's `nn.MaxPool2d`.
    ///
    /// ```
    /// use ferrograd_cpu::Cpu;
    /// use ferrograd_nn::prelude::*;
    ///
    /// let dev = Cpu::default();
    /// let pool = MaxPool2DConfig::new(2).options(Pool2dOptions::default().ceil_mode(true));
    /// let x: Tensor<Rank3<1, 5, 5>, f32, Cpu> = dev.sample_normal();
    /// assert_eq!(pool.forward(x).dims(), [1, 3, 3]);
    /// ```
    MaxPool2DConfig,
    try_max_pool2d
);

pool_layer!(
    /// The mean of each `K`×`K` window, `STRIDE` apart (default: `K`), over an input
    /// padded with `PAD` zeros on every side, counted in the mean: PyTorch's
    /// `nn.AvgPool2d(K, STRIDE, PAD)`. `ceil_mode` and `count_include_pad` are
    /// [`AvgPool2DConfig`]'s. It takes `(N, C, H, W)` or `(C, H, W)`.
    ///
    /// ```
    /// use ferrograd_cpu::Cpu;
    /// use ferrograd_nn::prelude::*;
    ///
    /// let dev = Cpu::default();
    /// let x = dev.tensor([[[1.0f32, 2.0], [3.0, 6.0]]]);
    /// assert_eq!(AvgPool2D::<2>.forward(x).as_vec(), [3.0]);
    /// ```
    AvgPool2D,
    /// An [`AvgPool2D`] of run-time sizes and every option of PyTorch's `nn.AvgPool2d`.
    ///
    /// ```
    /// use ferrograd_cpu::Cpu;
    /// use ferrograd_nn::prelude::*;
    ///
    /// let dev = Cpu::default();
    /// // Padding not counted: the corner window averages its one real pixel.
    /// let pool = AvgPool2DConfig::new(2).options(Pool2dOptions::default().padding(1).count_include_pad(false));
    /// let x = dev.tensor([[[4.0f32, 2.0], [3.0, 6.0]]]);
    /// assert_eq!(pool.forward(x).as_vec(), [4.0, 2.0, 3.0, 6.0]);
    /// ```
    AvgPool2DConfig,
    try_avg_pool2d
);

/// Averages each image to `H`×`W` outputs (default `W = H`), whatever its size, over
/// windows PyTorch's way (`floor(i·in/out)` to `ceil((i+1)·in/out)`): PyTorch's
/// `nn.AdaptiveAvgPool2d((H, W))`. Output sizes at run time are
/// [`AdaptiveAvgPool2DConfig`]'s.
///
/// ```
/// use ferrograd_cpu::Cpu;
/// use ferrograd_nn::prelude::*;
///
/// let dev = Cpu::default();
/// let x: Tensor<Rank4<2, 8, 9, 7>, f32, Cpu> = dev.sample_normal();
/// assert_eq!(AdaptiveAvgPool2D::<3>.forward(x.clone()).dims(), [2, 8, 3, 3]);
/// assert_eq!(AdaptiveAvgPool2D::<1, 2>.forward(x).dims(), [2, 8, 1, 2]);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AdaptiveAvgPool2D<const H: usize, const W: usize = H>;

/// An [`AdaptiveAvgPool2D`] whose output size is a run-time `[height, width]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AdaptiveAvgPool2DConfig {
    /// The output's `[height, width]`.
    pub output_size: [usize; 2],
}

impl<S: Pool2dShape, E: Dtype, D: Pool2dKernel<E>, T: Tape<E, D>> Module<Tensor<S, E, D, T>>
    for AdaptiveAvgPool2DConfig
{
    type Output = Tensor<S::Output, E, D, T>;
    fn try_forward(&self, x: Tensor<S, E, D, T>) -> Result<Self::Output, Error> {
        x.try_adaptive_avg_pool2d(self.output_size)
    }
}

impl<S: Pool2dShape, E: Dtype, D: Pool2dKernel<E>, T: Tape<E, D>, const H: usize, const W: usize>
    Module<Tensor<S, E, D, T>> for AdaptiveAvgPool2D<H, W>
{
    type Output = Tensor<S::Output, E, D, T>;
    fn try_forward(&self, x: Tensor<S, E, D, T>) -> Result<Self::Output, Error> {
        x.try_adaptive_avg_pool2d([H, W])
    }
}

parameter_free!(AdaptiveAvgPool2DConfig);

parameter_free!([const H: usize, const W: usize,] AdaptiveAvgPool2D<H, W>);

/// The mean of each channel of each image: `(N, C, H, W)` → `(N, C)` (or `(C, H, W)` →
/// `(C,)`), PyTorch's `nn.AdaptiveAvgPool2d(1)` followed by `nn.Flatten()`, as at the end
/// of a ResNet. The channel dim keeps its type, so a `Linear` of const size follows.
///
/// ```
/// use ferrograd_cpu::Cpu;
/// use ferrograd_nn::prelude::*;
///
/// let dev = Cpu::default();
/// let x = dev.tensor([[[[1.0f32, 3.0]], [[-2.0, 6.0]]]]);
/// let y: Tensor<Rank2<1, 2>, f32, Cpu> = GlobalAvgPool2D.forward(x);
/// assert_eq!(y.array(), [[2.0, 2.0]]);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GlobalAvgPool2D;

/// The maximum of each channel of each image: `(N, C, H, W)` → `(N, C)` (or
/// `(C, H, W)` → `(C,)`), PyTorch's `nn.AdaptiveMaxPool2d(1)` followed by `nn.Flatten()`.
///
/// ```
/// use ferrograd_cpu::Cpu;
/// use ferrograd_nn::prelude::*;
///
/// let dev = Cpu::default();
/// let x = dev.tensor([[[[1.0f32, 3.0]], [[-2.0, 6.0]]]]);
/// assert_eq!(GlobalMaxPool2D.forward(x).array(), [[3.0, 6.0]]);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GlobalMaxPool2D;

impl<S: Pool2dShape, E: Dtype, D: Pool2dKernel<E>, T: Tape<E, D>> Module<Tensor<S, E, D, T>> for GlobalAvgPool2D
where
    S::Global: Shape,
{
    type Output = Tensor<S::Global, E, D, T>;
    fn try_forward(&self, x: Tensor<S, E, D, T>) -> Result<Self::Output, Error> {
        x.try_global_avg_pool2d()
    }
}

impl<S: Pool2dShape, E: Dtype, D: Pool2dKernel<E>, T: Tape<E, D>> Module<Tensor<S, E, D, T>> for GlobalMaxPool2D
where
    S::Global: Shape,
{
    type Output = Tensor<S::Global, E, D, T>;
    fn try_forward(&self, x: Tensor<S, E, D, T>) -> Result<Self::Output, Error> {
        x.try_global_max_pool2d()
    }
}

parameter_free!(GlobalAvgPool2D);
parameter_free!(GlobalMaxPool2D);
