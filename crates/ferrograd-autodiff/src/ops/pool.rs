//! Pooling (PyTorch's `torch.nn.functional.max_pool2d`, `avg_pool2d`, `max_pool1d`,
//! `avg_pool1d`, `adaptive_avg_pool2d`, and global average and max pooling),
//! differentiable in the input.

use crate::OrPanic;
use crate::backward::BackwardContext;
use crate::ops::conv::Size2;
use crate::tape::Tape;
use crate::tensor::{Tensor, UniqueId};
use ferrograd_device::ops::pool::{AdaptivePool2dSpec, Pool2dKernel, Pool2dParams, Pool2dSpec, PoolOp};
use ferrograd_device::{Dtype, Error, Layout, View, ViewMut};
use ferrograd_shapes::{Pool1dShape, Pool2dShape, Shape};
use std::sync::Arc;

/// The options of [`Tensor::max_pool2d`] and [`Tensor::avg_pool2d`] besides the
/// kernel, PyTorch's defaults by `Default`: stride = the kernel, no padding, dilation
/// 1, floor rounding, and averages that count the padding.
///
/// ```
/// use ferrograd_autodiff::Pool2dOptions;
/// let options = Pool2dOptions::default().stride((2, 1)).padding(1).ceil_mode(true);
/// assert_eq!(options.stride, Some([2, 1]));
/// assert_eq!(options.padding, [1, 1]);
/// assert!(Pool2dOptions::default().count_include_pad);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pool2dOptions {
    /// Steps between windows, `[height, width]`; `None` is the kernel's size.
    pub stride: Option<[usize; 2]>,
    /// Implicit padding on both sides, `[height, width]`: −∞ for a max, zeros for an
    /// average. At most half the kernel, as in PyTorch.
    pub padding: [usize; 2],
    /// Steps between the window's taps, `[height, width]`: max pooling only (an
    /// average refuses any other than 1, as PyTorch's has none).
    pub dilation: [usize; 2],
    /// Round the output size up: a last window overhanging the input is kept when it
    /// starts inside the input or the top (left) padding.
    pub ceil_mode: bool,
    /// An average divides by the window's size including its padding (else by the
    /// input pixels it covers). Max pooling ignores it.
    pub count_include_pad: bool,
}

impl Default for Pool2dOptions {
    fn default() -> Self {
        Self {
            stride: None,
            padding: [0, 0],
            dilation: [1, 1],
            ceil_mode: false,
            count_include_pad: true,
        }
    }
}

impl Pool2dOptions {
    /// These options with stride `stride` (`2` or `(2, 1)`).
    pub fn stride(self, stride: impl Size2) -> Self {
        Self {
            stride: Some(stride.size2()),
            ..self
        }
    }

    /// These options with padding `padding` (`1` or `(1, 0)`).
    pub fn padding(self, padding: impl Size2) -> Self {
        Self {
            padding: padding.size2(),
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

    /// These options with `ceil_mode`.
    pub fn ceil_mode(self, ceil_mode: bool) -> Self {
        Self { ceil_mode, ..self }
    }

    /// These options with `count_include_pad`.
    pub fn count_include_pad(self, count_include_pad: bool) -> Self {
        Self {
            count_include_pad,
            ..self
        }
    }

    fn params(&self, kernel: [usize; 2]) -> Pool2dParams {
        Pool2dParams {
            kernel,
            stride: self.stride.unwrap_or(kernel),
            padding: self.padding,
            dilation: self.dilation,
            ceil_mode: self.ceil_mode,
            count_include_pad: self.count_include_pad,
        }
    }
}

/// The options of [`Tensor::max_pool1d`] and [`Tensor::avg_pool1d`] besides the
/// kernel, PyTorch's defaults by `Default` (see [`Pool2dOptions`]).
///
/// ```
/// use ferrograd_autodiff::Pool1dOptions;
/// let options = Pool1dOptions::default().stride(2).padding(1).count_include_pad(false);
/// assert_eq!((options.stride, options.padding, options.dilation), (Some(2), 1, 1));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pool1dOptions {
    /// Steps between windows; `None` is the kernel's size.
    pub stride: Option<usize>,
    /// Implicit padding on both sides, at most half the kernel.
    pub padding: usize,
    /// Steps between the window's taps (max pooling only).
    pub dilation: usize,
    /// Round the output size up (see [`Pool2dOptions::ceil_mode`]).
    pub ceil_mode: bool,
    /// An average divides by the window's size including its padding.
    pub count_include_pad: bool,
}

impl Default for Pool1dOptions {
    fn default() -> Self {
        Self {
            stride: None,
            padding: 0,
            dilation: 1,
            ceil_mode: false,
            count_include_pad: true,
        }
    }
}

impl Pool1dOptions {
    /// These options with stride `stride`.
    pub fn stride(self, stride: usize) -> Self {
        Self {
            stride: Some(stride),
            ..self
        }
    }

    /// These options with padding `padding`.
    pub fn padding(self, padding: usize) -> Self {
        Self { padding, ..self }
    }

    /// These options with dilation `dilation`.
    pub fn dilation(self, dilation: usize) -> Self {
        Self { dilation, ..self }
    }

    /// These options with `ceil_mode`.
    pub fn ceil_mode(self, ceil_mode: bool) -> Self {
        Self { ceil_mode, ..self }
    }

    /// These options with `count_include_pad`.
    pub fn count_include_pad(self, count_include_pad: bool) -> Self {
        Self {
            count_include_pad,
            ..self
        }
    }

    /// The 2-d pooling of planes one row high that this is.
    fn params(&self, kernel: usize) -> Pool2dParams {
        Pool2dParams {
            kernel: [1, kernel],
            stride: [1, self.stride.unwrap_or(kernel)],
            padding: [0, self.padding],
            dilation: [1, self.dilation],
            ceil_mode: self.ceil_mode,
            count_include_pad: self.count_include_pad,
        }
    }
}

/// The rank-4 layout `(N, C, H, W)` the kernels see: a batch as it is, one image given
/// a batch axis of size 1.
fn images(layout: &Layout) -> Layout {
    let (dims, strides) = (layout.dims(), layout.strides());
    if layout.rank() == 4 {
        return *layout;
    }
    Layout::from_parts(
        &[1, dims[0], dims[1], dims[2]],
        &[0, strides[0], strides[1], strides[2]],
    )
    .with_offset(layout.offset())
}

/// The rank-4 layout `(N, C, 1, L)` of a batch of sequences `(N, C, L)` or one `(C, L)`.
fn sequences(layout: &Layout) -> Layout {
    let (dims, strides) = (layout.dims(), layout.strides());
    let (dims, strides) = if layout.rank() == 3 {
        ([dims[0], dims[1], 1, dims[2]], [strides[0], strides[1], 0, strides[2]])
    } else {
        ([1, dims[0], 1, dims[1]], [0, strides[0], 0, strides[1]])
    };
    Layout::from_parts(&dims, &strides).with_offset(layout.offset())
}

fn dims4(layout: &Layout) -> [usize; 4] {
    let d = layout.dims();
    [d[0], d[1], d[2], d[3]]
}

/// Which pooling, its sizes checked.
#[derive(Clone, Copy, Debug)]
enum Pooling {
    Max(Pool2dSpec),
    Avg(Pool2dSpec),
    Adaptive(AdaptivePool2dSpec),
}

impl Pooling {
    fn new(op: PoolOp, input: [usize; 4], params: Pool2dParams) -> Result<Self, Error> {
        let spec = Pool2dSpec::new(op, input, params)?;
        Ok(if op.is_max() {
            Pooling::Max(spec)
        } else {
            Pooling::Avg(spec)
        })
    }

    fn out_size(&self) -> (usize, usize) {
        match self {
            Pooling::Max(s) | Pooling::Avg(s) => (s.out_height, s.out_width),
            Pooling::Adaptive(s) => (s.out_height, s.out_width),
        }
    }
}

/// What a pooling's backward step needs.
enum Backward<V> {
    Max(Pool2dSpec, Arc<V>),
    Avg(Pool2dSpec),
    Adaptive(AdaptivePool2dSpec),
}

/// `Error::ShapeMismatch` for a global pooling of an input without pixels.
fn check_has_pixels(op: &'static str, layout: &Layout) -> Result<(), Error> {
    let dims = layout.dims();
    if dims[2] == 0 || dims[3] == 0 {
        return Err(Error::ShapeMismatch {
            op,
            message: format!(
                "the input ({}) has no pixels to pool: its height and width must be at least 1",
                dims.iter().map(usize::to_string).collect::<Vec<_>>().join(", ")
            ),
        });
    }
    Ok(())
}

impl<S: Shape, E: Dtype, D: Pool2dKernel<E>, T: Tape<E, D>> Tensor<S, E, D, T> {
    /// Records a max pooling's backward step for an input that is its whole,
    /// contiguous buffer: the first gradient is a new buffer the kernel fills
    /// ([`Pool2dKernel::max_pool2d_backward_new`]), later ones are added to it.
    fn record_max_pool_gradient(
        &mut self,
        id: UniqueId,
        input_len: usize,
        spec: Pool2dSpec,
        input: Arc<D::Vec>,
        layout: Layout,
    ) {
        let op_input = self.tape.op_input(id, input_len);
        self.tape
            .record(self.id, &[op_input], move |ctx: &mut BackwardContext<'_, E, D>| {
                ctx.with_grad_output(|ctx, grad_output| {
                    let device = ctx.device;
                    match ctx.grad_entry(0) {
                        None => Ok(()),
                        Some(entry @ None) => {
                            *entry =
                                Some(device.max_pool2d_backward_new(&spec, View::new(&*input, layout), grad_output)?);
                            Ok(())
                        }
                        Some(Some(grad)) => device.max_pool2d_backward(
                            &spec,
                            View::new(&*input, layout),
                            grad_output,
                            ViewMut::new(grad, layout),
                        ),
                    }
                })
            });
    }

    /// Runs `pooling` on this tensor seen as `(N, C, H, W)` through `layout`, gives the
    /// result the shape `shape` makes of the output's height and width, and records
    /// the backward step when traced (keeping the input only for a max).
    fn try_pool<Out: Shape>(
        self,
        layout: Layout,
        pooling: Pooling,
        shape: impl FnOnce(&S, usize, usize) -> Out,
    ) -> Result<Tensor<Out, E, D, T>, Error> {
        let input = View::new(&*self.data, layout);
        let out = match &pooling {
            Pooling::Max(spec) => self.device.max_pool2d_forward(spec, input)?,
            Pooling::Avg(spec) => self.device.avg_pool2d_forward(spec, input)?,
            Pooling::Adaptive(spec) => self.device.adaptive_avg_pool2d_forward(spec, input)?,
        };
        let (height, width) = pooling.out_size();
        let out_shape = shape(&self.shape, height, width);
        let Tensor {
            id, data, device, tape, ..
        } = self;
        let input_len = D::len(&data);
        let mut result = Tensor::from_arc(Arc::new(out), out_shape, device, tape);
        if T::TRACING {
            // Only a max pooling reads its input again, to find each window's maximum.
            let step = match pooling {
                Pooling::Max(spec) => {
                    // When the input is its whole buffer, laid out plainly, its first
                    // gradient is written in one pass instead of zeroed then added to
                    // (a training step's usual case: the output of a convolution).
                    if layout.is_contiguous() && layout.num_elements() == input_len {
                        result.record_max_pool_gradient(id, input_len, spec, data, layout);
                        return Ok(result);
                    }
                    Backward::Max(spec, data)
                }
                Pooling::Avg(spec) => Backward::Avg(spec),
                Pooling::Adaptive(spec) => Backward::Adaptive(spec),
            };
            result.record_input_gradient(id, input_len, move |device, grad, grad_output| match &step {
                Backward::Max(spec, input) => device.max_pool2d_backward(
                    spec,
                    View::new(&**input, layout),
                    grad_output,
                    ViewMut::new(grad, layout),
                ),
                Backward::Avg(spec) => device.avg_pool2d_backward(spec, grad_output, ViewMut::new(grad, layout)),
                Backward::Adaptive(spec) => {
                    device.adaptive_avg_pool2d_backward(spec, grad_output, ViewMut::new(grad, layout))
                }
            });
        }
        Ok(result)
    }

    /// 2-d max pooling: PyTorch's `max_pool2d(input, kernel_size, stride, padding,
    /// dilation, ceil_mode)`, the stride defaulting to the kernel.
    ///
    /// The input is a batch `(N, C, H, W)` or one image `(C, H, W)`, any strides; the
    /// result `(N, C, usize, usize)` (or `(C, usize, usize)`), whose run-time height
    /// and width `realize` turns into consts. NaN in a window is its maximum. The
    /// gradient goes to the pixel each maximum came from: the first of tied maxima in
    /// the window (row by row), as in PyTorch.
    ///
    /// ```
    /// use ferrograd_autodiff::prelude::*;
    /// use ferrograd_autodiff::Pool2dOptions;
    /// let dev = ferrograd_cpu::Cpu::default();
    /// let x = dev.tensor([[[1.0f32, 2.0, 5.0, 0.0], [3.0, 4.0, 5.0, 1.0], [9.0, 8.0, 7.0, 6.0]]]);
    /// let y = x.clone().max_pool2d(2, Pool2dOptions::default());
    /// assert_eq!(y.realize::<Rank3<1, 1, 2>>().array(), [[[4.0, 5.0]]]);
    ///
    /// // Ceil mode keeps the overhanging last row of windows.
    /// let y = x.clone().max_pool2d(2, Pool2dOptions::default().ceil_mode(true));
    /// assert_eq!(y.as_vec(), [4.0, 5.0, 9.0, 7.0]);
    ///
    /// // The gradient reaches the first of the tied fives only.
    /// let loss = x.leaky_trace().max_pool2d(2, Pool2dOptions::default()).sum::<Rank0, _>();
    /// let grads = loss.backward();
    /// assert_eq!(grads.get(&x).array()[0][..2], [[0.0, 0.0, 1.0, 0.0], [0.0, 1.0, 0.0, 0.0]]);
    /// ```
    ///
    /// # Panics
    /// As [`Tensor::try_max_pool2d`] fails.
    #[track_caller]
    pub fn max_pool2d(self, kernel: impl Size2, options: Pool2dOptions) -> Tensor<S::Output, E, D, T>
    where
        S: Pool2dShape,
    {
        self.try_max_pool2d(kernel, options).or_panic()
    }

    /// [`Tensor::max_pool2d`], returning an error instead of panicking:
    /// `InvalidArgument` for a kernel, stride or dilation of 0 or a padding of more
    /// than half the kernel, `ShapeMismatch` when no window fits (an output size
    /// below 1). Each message names the sizes.
    pub fn try_max_pool2d(self, kernel: impl Size2, options: Pool2dOptions) -> Result<Tensor<S::Output, E, D, T>, Error>
    where
        S: Pool2dShape,
    {
        let layout = images(&self.layout);
        let pooling = Pooling::new(PoolOp::MaxPool2d, dims4(&layout), options.params(kernel.size2()))?;
        self.try_pool(layout, pooling, |s, h, w| s.output(h, w))
    }

    /// 2-d average pooling: PyTorch's `avg_pool2d(input, kernel_size, stride, padding,
    /// ceil_mode, count_include_pad)`, the stride defaulting to the kernel. Inputs and
    /// results as for [`Tensor::max_pool2d`].
    ///
    /// Each window's sum is divided by its size including the padding (but not the
    /// part of a ceil-mode window past the padding), or with `count_include_pad(false)`
    /// by the input pixels it covers.
    ///
    /// ```
    /// use ferrograd_autodiff::prelude::*;
    /// use ferrograd_autodiff::Pool2dOptions;
    /// let dev = ferrograd_cpu::Cpu::default();
    /// let x = dev.tensor([[[1.0f64, 2.0], [3.0, 6.0]]]);
    /// // Padding 1, kernel 2: four windows, each holding one pixel and three zeros.
    /// let padded = x.clone().avg_pool2d(2, Pool2dOptions::default().padding(1));
    /// assert_eq!(padded.as_vec(), [0.25, 0.5, 0.75, 1.5]);
    /// let without = x.clone().avg_pool2d(2, Pool2dOptions::default().padding(1).count_include_pad(false));
    /// assert_eq!(without.as_vec(), [1.0, 2.0, 3.0, 6.0]);
    ///
    /// let loss = x.leaky_trace().avg_pool2d(2, Pool2dOptions::default()).sum::<Rank0, _>();
    /// assert_eq!(loss.backward().get(&x).array(), [[[0.25, 0.25], [0.25, 0.25]]]);
    /// ```
    ///
    /// # Panics
    /// As [`Tensor::try_avg_pool2d`] fails.
    #[track_caller]
    pub fn avg_pool2d(self, kernel: impl Size2, options: Pool2dOptions) -> Tensor<S::Output, E, D, T>
    where
        S: Pool2dShape,
    {
        self.try_avg_pool2d(kernel, options).or_panic()
    }

    /// [`Tensor::avg_pool2d`], returning an error instead of panicking: as
    /// [`Tensor::try_max_pool2d`], and `InvalidArgument` for a dilation other than 1.
    pub fn try_avg_pool2d(self, kernel: impl Size2, options: Pool2dOptions) -> Result<Tensor<S::Output, E, D, T>, Error>
    where
        S: Pool2dShape,
    {
        let layout = images(&self.layout);
        let pooling = Pooling::new(PoolOp::AvgPool2d, dims4(&layout), options.params(kernel.size2()))?;
        self.try_pool(layout, pooling, |s, h, w| s.output(h, w))
    }

    /// Adaptive 2-d average pooling to `output_size` (`7` or `(7, 5)`): PyTorch's
    /// `adaptive_avg_pool2d`. Output row `i` of `out` averages the input rows
    /// `floor(i·H/out) .. ceil((i+1)·H/out)` (windows overlap when `out` does not
    /// divide `H`), and likewise the columns.
    ///
    /// ```
    /// use ferrograd_autodiff::prelude::*;
    /// let dev = ferrograd_cpu::Cpu::default();
    /// let x = dev.tensor([[[1.0f64, 2.0, 3.0, 4.0, 5.0]]]);
    /// // Over 5 columns, 2 outputs average columns 0..3 and 2..5.
    /// let y = x.clone().adaptive_avg_pool2d((1, 2));
    /// assert_eq!(y.as_vec(), [2.0, 4.0]);
    /// let loss = x.leaky_trace().adaptive_avg_pool2d((1, 2)).sum::<Rank0, _>();
    /// let third = 1.0 / 3.0;
    /// assert_eq!(loss.backward().get(&x).array(), [[[third, third, 2.0 * third, third, third]]]);
    /// ```
    ///
    /// # Panics
    /// As [`Tensor::try_adaptive_avg_pool2d`] fails.
    #[track_caller]
    pub fn adaptive_avg_pool2d(self, output_size: impl Size2) -> Tensor<S::Output, E, D, T>
    where
        S: Pool2dShape,
    {
        self.try_adaptive_avg_pool2d(output_size).or_panic()
    }

    /// [`Tensor::adaptive_avg_pool2d`], returning `Error::ShapeMismatch` for an input
    /// without rows or columns.
    pub fn try_adaptive_avg_pool2d(self, output_size: impl Size2) -> Result<Tensor<S::Output, E, D, T>, Error>
    where
        S: Pool2dShape,
    {
        let layout = images(&self.layout);
        let spec = AdaptivePool2dSpec::new(dims4(&layout), output_size.size2())?;
        self.try_pool(layout, Pooling::Adaptive(spec), |s, h, w| s.output(h, w))
    }

    /// Global average pooling: the mean of each plane, `(N, C, H, W)` → `(N, C)` (or
    /// `(C, H, W)` → `(C,)`); PyTorch's `adaptive_avg_pool2d(x, 1).flatten(1)`, or
    /// `x.mean((2, 3))`.
    ///
    /// ```
    /// use ferrograd_autodiff::prelude::*;
    /// let dev = ferrograd_cpu::Cpu::default();
    /// let x: Tensor<Rank4<1, 2, 1, 2>, f32, _> = dev.tensor([[[[1.0, 3.0]], [[-2.0, 6.0]]]]);
    /// let y: Tensor<Rank2<1, 2>, f32, _> = x.global_avg_pool2d();
    /// assert_eq!(y.array(), [[2.0, 2.0]]);
    /// ```
    ///
    /// # Panics
    /// As [`Tensor::try_global_avg_pool2d`] fails.
    #[track_caller]
    pub fn global_avg_pool2d(self) -> Tensor<S::Global, E, D, T>
    where
        S: Pool2dShape,
    {
        self.try_global_avg_pool2d().or_panic()
    }

    /// [`Tensor::global_avg_pool2d`], returning `Error::ShapeMismatch` for an input
    /// without rows or columns.
    pub fn try_global_avg_pool2d(self) -> Result<Tensor<S::Global, E, D, T>, Error>
    where
        S: Pool2dShape,
    {
        let layout = images(&self.layout);
        check_has_pixels("global_avg_pool2d", &layout)?;
        let [_, _, height, width] = dims4(&layout);
        let pooling = Pooling::new(
            PoolOp::AvgPool2d,
            dims4(&layout),
            Pool2dOptions::default().params([height, width]),
        )?;
        self.try_pool(layout, pooling, |s, _, _| s.global())
    }

    /// Global max pooling: the maximum of each plane, `(N, C, H, W)` → `(N, C)` (or
    /// `(C, H, W)` → `(C,)`); PyTorch's `adaptive_max_pool2d(x, 1).flatten(1)`. The
    /// gradient goes to the first maximum of each plane (not split among ties as
    /// [`Tensor::max`]'s is).
    ///
    /// ```
    /// use ferrograd_autodiff::prelude::*;
    /// let dev = ferrograd_cpu::Cpu::default();
    /// let x = dev.tensor([[[1.0f32, 7.0], [7.0, 2.0]], [[0.5, -1.0], [0.0, 0.25]]]);
    /// let y = x.leaky_trace().global_max_pool2d();
    /// assert_eq!(y.array(), [7.0, 0.5]);
    /// let grads = y.sum::<Rank0, _>().backward();
    /// assert_eq!(grads.get(&x).array(), [[[0.0, 1.0], [0.0, 0.0]], [[1.0, 0.0], [0.0, 0.0]]]);
    /// ```
    ///
    /// # Panics
    /// As [`Tensor::try_global_max_pool2d`] fails.
    #[track_caller]
    pub fn global_max_pool2d(self) -> Tensor<S::Global, E, D, T>
    where
        S: Pool2dShape,
    {
        self.try_global_max_pool2d().or_panic()
    }

    /// [`Tensor::global_max_pool2d`], returning `Error::ShapeMismatch` for an input
    /// without rows or columns.
    pub fn try_global_max_pool2d(self) -> Result<Tensor<S::Global, E, D, T>, Error>
    where
        S: Pool2dShape,
    {
        let layout = images(&self.layout);
        check_has_pixels("global_max_pool2d", &layout)?;
        let [_, _, height, width] = dims4(&layout);
        let pooling = Pooling::new(
            PoolOp::MaxPool2d,
            dims4(&layout),
            Pool2dOptions::default().params([height, width]),
        )?;
        self.try_pool(layout, pooling, |s, _, _| s.global())
    }

    /// 1-d max pooling along the last axis: PyTorch's `max_pool1d(input, kernel_size,
    /// stride, padding, dilation, ceil_mode)`. The input is a batch `(N, C, L)` or one
    /// sequence `(C, L)`; the result `(N, C, usize)` (or `(C, usize)`). As
    /// [`Tensor::max_pool2d`] over planes one row high.
    ///
    /// ```
    /// use ferrograd_autodiff::prelude::*;
    /// use ferrograd_autodiff::Pool1dOptions;
    /// let dev = ferrograd_cpu::Cpu::default();
    /// let x = dev.tensor([[1.0f32, 3.0, 2.0, 0.0, 4.0]]);
    /// let y = x.max_pool1d(3, Pool1dOptions::default().stride(2).padding(1));
    /// assert_eq!(y.as_vec(), [3.0, 3.0, 4.0]);
    /// ```
    ///
    /// # Panics
    /// As [`Tensor::try_max_pool1d`] fails.
    #[track_caller]
    pub fn max_pool1d(self, kernel: usize, options: Pool1dOptions) -> Tensor<S::Output, E, D, T>
    where
        S: Pool1dShape,
    {
        self.try_max_pool1d(kernel, options).or_panic()
    }

    /// [`Tensor::max_pool1d`], returning the errors of [`Tensor::try_max_pool2d`].
    pub fn try_max_pool1d(self, kernel: usize, options: Pool1dOptions) -> Result<Tensor<S::Output, E, D, T>, Error>
    where
        S: Pool1dShape,
    {
        let layout = sequences(&self.layout);
        let pooling = Pooling::new(PoolOp::MaxPool1d, dims4(&layout), options.params(kernel))?;
        self.try_pool(layout, pooling, |s, _, w| s.output(w))
    }

    /// 1-d average pooling along the last axis: PyTorch's `avg_pool1d(input,
    /// kernel_size, stride, padding, ceil_mode, count_include_pad)`. As
    /// [`Tensor::avg_pool2d`] over planes one row high.
    ///
    /// ```
    /// use ferrograd_autodiff::prelude::*;
    /// use ferrograd_autodiff::Pool1dOptions;
    /// let dev = ferrograd_cpu::Cpu::default();
    /// let x = dev.tensor([[[2.0f64, 4.0, 6.0]]]);
    /// let y = x.avg_pool1d(2, Pool1dOptions::default().stride(1));
    /// assert_eq!(y.as_vec(), [3.0, 5.0]);
    /// ```
    ///
    /// # Panics
    /// As [`Tensor::try_avg_pool1d`] fails.
    #[track_caller]
    pub fn avg_pool1d(self, kernel: usize, options: Pool1dOptions) -> Tensor<S::Output, E, D, T>
    where
        S: Pool1dShape,
    {
        self.try_avg_pool1d(kernel, options).or_panic()
    }

    /// [`Tensor::avg_pool1d`], returning the errors of [`Tensor::try_avg_pool2d`].
    pub fn try_avg_pool1d(self, kernel: usize, options: Pool1dOptions) -> Result<Tensor<S::Output, E, D, T>, Error>
    where
        S: Pool1dShape,
    {
        let layout = sequences(&self.layout);
        let pooling = Pooling::new(PoolOp::AvgPool1d, dims4(&layout), options.params(kernel))?;
        self.try_pool(layout, pooling, |s, _, w| s.output(w))
    }
}
