//! Reductions over a set of axes: sum, mean, max, min, var, std, logsumexp, and the
//! non-differentiable argmax and argmin; along one axis, max and min with their indices.
//!
//! Every reduction names its axes the same way. Either the result's shape is given and
//! the axes follow (`x.max::<Rank1<3>, _>()`, or a typed binding), or the axes are
//! given and the shape follows (`x.max::<_, Axis<0>>()`); reducing to a shape that is
//! not the input without some of its axes does not compile:
//!
//! ```compile_fail
//! use ferrograd_autodiff::prelude::*;
//! let x: Tensor<Rank2<2, 3>, f32, _> = ferrograd_cpu::Cpu::default().zeros();
//! let _ = x.max::<Rank1<4>, _>();
//! ```
//!
//! Inputs may be views (broadcast, permuted, sliced): kernels read them through their
//! strides and send gradients back into the viewed buffer.

use crate::OrPanic;
use crate::tape::{NoneTape, Tape};
use crate::tensor::Tensor;
use ferrograd_device::ops::elementwise::{ScalarMul, UnaryKernel};
use ferrograd_device::ops::reduce::{
    ArgExtremumKernel, Extremum, ExtremumKernel, ExtremumWithIndicesKernel, LogSumExpKernel, Spread, SumKernel,
    VarianceKernel,
};
use ferrograd_device::{Dtype, Error, Layout, Storage, View, ViewMut};
use ferrograd_shapes::{Axes, ReduceShapeTo, Shape, SingleAxis};
use std::sync::Arc;

/// The shape `src` becomes when `axes` are removed.
pub(crate) fn reduced_shape<Src: Shape, Dst: Shape>(src: &Src, axes: &[usize]) -> Dst {
    let dims = src.concrete();
    let mut kept = Dst::Concrete::default();
    let mut k = 0;
    for (axis, &size) in dims.as_ref().iter().enumerate() {
        if !axes.contains(&axis) {
            kept[k] = size;
            k += 1;
        }
    }
    // `ReduceShapeTo` ties Dst to Src without `axes`, so every Const dim agrees.
    Dst::from_concrete(&kept).expect("ReduceShapeTo guarantees the reduced shape")
}

/// Which buffers a reduction's backward step needs.
#[derive(Clone, Copy)]
struct Keep {
    input: bool,
    output: bool,
}

impl<S: Shape, E: Dtype, D: Storage<E>, T: Tape<E, D>> Tensor<S, E, D, T> {
    /// The number of elements each output element reduces.
    fn reduced_count(&self, axes: &[usize]) -> usize {
        let dims = self.shape.concrete();
        axes.iter().map(|&a| dims[a]).product()
    }

    /// `Error::InvalidArgument` when the reduced axes hold no elements: there is no
    /// maximum of nothing (PyTorch refuses too).
    fn check_not_empty(&self, op: &'static str, axes: &[usize]) -> Result<(), Error> {
        if self.reduced_count(axes) == 0 {
            return Err(Error::InvalidArgument {
                op,
                message: format!(
                    "cannot reduce axes {axes:?} of shape {:?}: they hold no elements",
                    self.layout.dims()
                ),
            });
        }
        Ok(())
    }

    /// Runs a reduction's forward kernel, and records `backward` with the buffers
    /// `keep` names (and only those) when traced. `backward` receives the device, the
    /// input's layout, the axes, the kept input and output buffers, the input's
    /// gradient and the output's gradient.
    #[allow(clippy::type_complexity)]
    fn try_reduce<Dst: Shape, Ax: Axes>(
        self,
        keep: Keep,
        forward: impl FnOnce(&D, &D::Vec, &Layout, &[usize]) -> Result<D::Vec, Error>,
        backward: impl FnOnce(
            &D,
            &Layout,
            &[usize],
            Option<&D::Vec>,
            Option<&D::Vec>,
            &mut D::Vec,
            &D::Vec,
        ) -> Result<(), Error>
        + Send
        + 'static,
    ) -> Result<Tensor<Dst, E, D, T>, Error>
    where
        S: ReduceShapeTo<Dst, Ax>,
    {
        let axes = Ax::AXES;
        let out = Arc::new(forward(&self.device, &self.data, &self.layout, axes)?);
        let shape: Dst = reduced_shape(&self.shape, axes);
        let Tensor {
            id,
            data,
            layout,
            device,
            tape,
            ..
        } = self;
        let input_len = D::len(&data);
        let mut result = Tensor::from_arc(out.clone(), shape, device, tape);
        if T::TRACING {
            let input = keep.input.then_some(data);
            let output = keep.output.then_some(out);
            result.record_input_gradient(id, input_len, move |device, grad, grad_output| {
                backward(
                    device,
                    &layout,
                    axes,
                    input.as_deref(),
                    output.as_deref(),
                    grad,
                    grad_output,
                )
            });
        }
        Ok(result)
    }
}

/// The buffer a backward step asked to keep.
fn kept<V>(buffer: Option<&V>) -> &V {
    buffer.expect("the reduction asked to keep this buffer")
}

impl<S: Shape, E: Dtype, D: SumKernel<E>, T: Tape<E, D>> Tensor<S, E, D, T> {
    /// The sum over the axes `Ax`. The result's shape can be named, and the axes then
    /// follow (`x.sum::<Rank1<3>, _>()`), or the axes named (`x.sum::<_, Axis<0>>()`);
    /// `x.sum()` into a `Rank0` binding sums everything.
    ///
    /// ```
    /// use ferrograd_autodiff::prelude::*;
    /// let x = ferrograd_cpu::Cpu::default().tensor([[1.0f32, 2.0, 3.0], [4.0, 5.0, 6.0]]);
    /// let columns: Tensor<Rank1<3>, f32, _> = x.clone().sum();
    /// assert_eq!(columns.array(), [5.0, 7.0, 9.0]);
    /// assert_eq!(x.clone().sum::<_, Axis<1>>().array(), [6.0, 15.0]);
    /// assert_eq!(x.sum::<Rank0, _>().array(), 21.0);
    /// ```
    #[track_caller]
    pub fn sum<Dst: Shape, Ax: Axes>(self) -> Tensor<Dst, E, D, T>
    where
        S: ReduceShapeTo<Dst, Ax>,
    {
        self.try_sum().or_panic()
    }

    /// [`Tensor::sum`], returning an error instead of panicking.
    pub fn try_sum<Dst: Shape, Ax: Axes>(self) -> Result<Tensor<Dst, E, D, T>, Error>
    where
        S: ReduceShapeTo<Dst, Ax>,
    {
        self.try_reduce(
            Keep {
                input: false,
                output: false,
            },
            |device, input, layout, axes| SumKernel::forward(device, View::new(input, *layout), axes),
            |device, layout, axes, _, _, grad, grad_output| {
                SumKernel::backward(device, ViewMut::new(grad, *layout), axes, grad_output)
            },
        )
    }

    /// The mean over the axes `Ax`, chosen as for [`Tensor::sum`].
    ///
    /// ```
    /// use ferrograd_autodiff::prelude::*;
    /// let x = ferrograd_cpu::Cpu::default().tensor([[1.0f32, 2.0], [3.0, 6.0]]);
    /// assert_eq!(x.mean::<Rank0, _>().array(), 3.0);
    /// ```
    #[track_caller]
    pub fn mean<Dst: Shape, Ax: Axes>(self) -> Tensor<Dst, E, D, T>
    where
        S: ReduceShapeTo<Dst, Ax>,
        D: UnaryKernel<ScalarMul<E>, E>,
    {
        self.try_mean().or_panic()
    }

    /// [`Tensor::mean`], returning an error instead of panicking.
    pub fn try_mean<Dst: Shape, Ax: Axes>(self) -> Result<Tensor<Dst, E, D, T>, Error>
    where
        S: ReduceShapeTo<Dst, Ax>,
        D: UnaryKernel<ScalarMul<E>, E>,
    {
        let count = self.reduced_count(Ax::AXES);
        self.try_sum()?.try_mul_scalar(E::ONE / E::from_f64(count as f64))
    }
}

impl<S: Shape, E: Dtype, D: ExtremumKernel<E>, T: Tape<E, D>> Tensor<S, E, D, T> {
    /// The maximum over the axes `Ax`, chosen as for [`Tensor::sum`]: PyTorch's
    /// `torch.amax(x, dim)`. NaN propagates. The gradient is split equally among the
    /// elements equal to the maximum.
    ///
    /// PyTorch's `torch.max(x, dim)` (`x.max(dim=i)`, whose `.values` and `.indices` a
    /// port may use) sends the gradient to the one index it returns instead, the first
    /// among ties: that is [`Tensor::max_with_indices`]. The two gradients differ where
    /// a maximum is tied, and where a group holds NaN (NaN here, finite there).
    ///
    /// ```
    /// use ferrograd_autodiff::prelude::*;
    /// let dev = ferrograd_cpu::Cpu::default();
    /// let x = dev.tensor([[1.0f64, 5.0, 5.0], [4.0, 2.0, 0.0]]);
    /// let rows: Tensor<Rank1<2>, f64, _> = x.clone().max();
    /// assert_eq!(rows.array(), [5.0, 4.0]);
    /// assert_eq!(x.clone().max::<_, Axis<0>>().array(), [4.0, 5.0, 5.0]);
    ///
    /// // The two tied maxima of row 0 share its gradient.
    /// let loss = x.leaky_trace().max::<Rank1<2>, _>().sum::<Rank0, _>();
    /// assert_eq!(loss.backward().get(&x).array(), [[0.0, 0.5, 0.5], [1.0, 0.0, 0.0]]);
    /// ```
    ///
    /// # Panics
    /// When the reduced axes hold no elements; see [`Tensor::try_max`].
    #[track_caller]
    pub fn max<Dst: Shape, Ax: Axes>(self) -> Tensor<Dst, E, D, T>
    where
        S: ReduceShapeTo<Dst, Ax>,
    {
        self.try_max().or_panic()
    }

    /// [`Tensor::max`], returning `Error::InvalidArgument` when the reduced axes hold no
    /// elements.
    pub fn try_max<Dst: Shape, Ax: Axes>(self) -> Result<Tensor<Dst, E, D, T>, Error>
    where
        S: ReduceShapeTo<Dst, Ax>,
    {
        self.try_extremum(Extremum::Max)
    }

    /// The minimum over the axes `Ax`, chosen as for [`Tensor::sum`]: PyTorch's
    /// `torch.amin(x, dim)`. NaN propagates. The gradient is split equally among the
    /// elements equal to the minimum.
    ///
    /// PyTorch's `torch.min(x, dim)` (`.values`, `.indices`) sends the gradient to the
    /// one index it returns instead, the first among ties: that is
    /// [`Tensor::min_with_indices`].
    ///
    /// ```
    /// use ferrograd_autodiff::prelude::*;
    /// let x = ferrograd_cpu::Cpu::default().tensor([[1.0f32, 5.0], [-4.0, 2.0]]);
    /// assert_eq!(x.clone().min::<Rank1<2>, Axis<1>>().array(), [1.0, -4.0]);
    /// assert_eq!(x.min::<Rank0, _>().array(), -4.0);
    /// ```
    ///
    /// # Panics
    /// When the reduced axes hold no elements; see [`Tensor::try_min`].
    #[track_caller]
    pub fn min<Dst: Shape, Ax: Axes>(self) -> Tensor<Dst, E, D, T>
    where
        S: ReduceShapeTo<Dst, Ax>,
    {
        self.try_min().or_panic()
    }

    /// [`Tensor::min`], returning `Error::InvalidArgument` when the reduced axes hold no
    /// elements.
    pub fn try_min<Dst: Shape, Ax: Axes>(self) -> Result<Tensor<Dst, E, D, T>, Error>
    where
        S: ReduceShapeTo<Dst, Ax>,
    {
        self.try_extremum(Extremum::Min)
    }

    fn try_extremum<Dst: Shape, Ax: Axes>(self, kind: Extremum) -> Result<Tensor<Dst, E, D, T>, Error>
    where
        S: ReduceShapeTo<Dst, Ax>,
    {
        self.check_not_empty(kind.name(), Ax::AXES)?;
        self.try_reduce(
            Keep {
                input: true,
                output: true,
            },
            |device, input, layout, axes| ExtremumKernel::forward(device, kind, View::new(input, *layout), axes),
            |device, layout, axes, input, output, grad, grad_output| {
                let input = View::new(kept(input), *layout);
                ExtremumKernel::backward(device, input, axes, kept(output), grad, grad_output)
            },
        )
    }
}

/// A maximum or minimum along one axis and its indices: `(values, indices)`.
type WithIndices<Dst, E, D, T> = (Tensor<Dst, E, D, T>, Tensor<Dst, usize, D>);

impl<S: Shape, E: Dtype, D: ExtremumWithIndicesKernel<E>, T: Tape<E, D>> Tensor<S, E, D, T> {
    /// The maximum along the one axis `Ax` and where it is: PyTorch's
    /// `torch.max(x, dim)`, returning its `(values, indices)`. The axis is chosen as for
    /// [`Tensor::sum`] (`x.max_with_indices::<_, Axis<1>>()`, or the shape of the values
    /// named), and must be a single one.
    ///
    /// The index is the first among ties, and the first NaN's when there is one (the
    /// value is then NaN), as in PyTorch. The values are differentiable and the whole
    /// gradient of each goes to the element at its index, where [`Tensor::max`]
    /// (`torch.amax`) splits it among ties. The indices are an untraced `usize` tensor.
    ///
    /// ```
    /// use ferrograd_autodiff::prelude::*;
    /// let dev = ferrograd_cpu::Cpu::default();
    /// let x = dev.tensor([[1.0f64, 5.0, 5.0], [4.0, 2.0, f64::NAN]]);
    /// let (values, indices) = x.max_with_indices::<_, Axis<1>>();
    /// assert_eq!(indices.array(), [1, 2]); // the first 5.0, the NaN
    /// assert_eq!(values.array()[0], 5.0);
    /// assert!(values.array()[1].is_nan());
    ///
    /// // All of row 0's gradient goes to index 1; `max` would give 0.5 to each 5.0.
    /// let y = dev.tensor([[1.0f64, 5.0, 5.0], [4.0, 2.0, 0.0]]);
    /// let (values, _) = y.leaky_trace().max_with_indices::<Rank1<2>, _>();
    /// let g = values.sum::<Rank0, _>().backward().get(&y);
    /// assert_eq!(g.array(), [[0.0, 1.0, 0.0], [1.0, 0.0, 0.0]]);
    /// ```
    ///
    /// # Panics
    /// When the axis holds no elements; see [`Tensor::try_max_with_indices`].
    #[track_caller]
    pub fn max_with_indices<Dst: Shape, Ax: SingleAxis>(self) -> WithIndices<Dst, E, D, T>
    where
        S: ReduceShapeTo<Dst, Ax>,
    {
        self.try_max_with_indices().or_panic()
    }

    /// [`Tensor::max_with_indices`], returning `Error::InvalidArgument` when the axis
    /// holds no elements (PyTorch refuses too).
    pub fn try_max_with_indices<Dst: Shape, Ax: SingleAxis>(self) -> Result<WithIndices<Dst, E, D, T>, Error>
    where
        S: ReduceShapeTo<Dst, Ax>,
    {
        self.try_extremum_with_indices(Extremum::Max)
    }

    /// The minimum along the one axis `Ax` and where it is: PyTorch's
    /// `torch.min(x, dim)`, returning its `(values, indices)`; otherwise as
    /// [`Tensor::max_with_indices`]. The gradient goes to the returned index only, where
    /// [`Tensor::min`] (`torch.amin`) splits it among ties.
    ///
    /// ```
    /// use ferrograd_autodiff::prelude::*;
    /// let dev = ferrograd_cpu::Cpu::default();
    /// let x = dev.tensor([[3.0f32, 1.0], [1.0, 1.0], [0.0, 2.0]]);
    /// let (values, indices) = x.leaky_trace().min_with_indices::<_, Axis<0>>();
    /// assert_eq!(indices.array(), [2, 0]); // the first of the two 1.0 in column 1
    /// assert_eq!(values.array(), [0.0, 1.0]);
    /// let g = values.sum::<Rank0, _>().backward().get(&x);
    /// assert_eq!(g.array(), [[0.0, 1.0], [0.0, 0.0], [1.0, 0.0]]);
    /// ```
    ///
    /// # Panics
    /// When the axis holds no elements; see [`Tensor::try_min_with_indices`].
    #[track_caller]
    pub fn min_with_indices<Dst: Shape, Ax: SingleAxis>(self) -> WithIndices<Dst, E, D, T>
    where
        S: ReduceShapeTo<Dst, Ax>,
    {
        self.try_min_with_indices().or_panic()
    }

    /// [`Tensor::min_with_indices`], returning `Error::InvalidArgument` when the axis
    /// holds no elements.
    pub fn try_min_with_indices<Dst: Shape, Ax: SingleAxis>(self) -> Result<WithIndices<Dst, E, D, T>, Error>
    where
        S: ReduceShapeTo<Dst, Ax>,
    {
        self.try_extremum_with_indices(Extremum::Min)
    }

    fn try_extremum_with_indices<Dst: Shape, Ax: SingleAxis>(
        self,
        kind: Extremum,
    ) -> Result<WithIndices<Dst, E, D, T>, Error>
    where
        S: ReduceShapeTo<Dst, Ax>,
    {
        let op = match kind {
            Extremum::Max => "max_with_indices",
            Extremum::Min => "min_with_indices",
        };
        self.check_not_empty(op, Ax::AXES)?;
        let axis = Ax::AXIS;
        let (values, indices) =
            ExtremumWithIndicesKernel::forward(&self.device, kind, View::new(&self.data, self.layout), axis)?;
        let shape: Dst = reduced_shape(&self.shape, Ax::AXES);
        let indices = Arc::new(indices);
        let index_tensor = Tensor::from_arc(indices.clone(), shape, self.device.clone(), NoneTape);
        // Backward needs the indices and the input's layout, not the input's values.
        let Tensor {
            id,
            data,
            layout,
            device,
            tape,
            ..
        } = self;
        let input_len = <D as Storage<E>>::len(&data);
        drop(data);
        let mut result = Tensor::from_arc(Arc::new(values), shape, device, tape);
        if T::TRACING {
            result.record_input_gradient(id, input_len, move |device, grad, grad_output| {
                ExtremumWithIndicesKernel::backward(device, ViewMut::new(grad, layout), axis, &indices, grad_output)
            });
        }
        Ok((result, index_tensor))
    }
}

impl<S: Shape, E: Dtype, D: VarianceKernel<E>, T: Tape<E, D>> Tensor<S, E, D, T> {
    /// The variance over the axes `Ax`, chosen as for [`Tensor::sum`], unbiased:
    /// `Σ (x − mean)² / (N − 1)`, PyTorch's default. One element gives NaN (0 / 0),
    /// as in PyTorch; see [`Tensor::var_with_correction`] for other divisors.
    ///
    /// ```
    /// use ferrograd_autodiff::prelude::*;
    /// let x = ferrograd_cpu::Cpu::default().tensor([[1.0f64, 2.0, 3.0], [2.0, 2.0, 8.0]]);
    /// assert_eq!(x.clone().var::<_, Axis<1>>().array(), [1.0, 12.0]);
    /// assert_eq!(x.var_with_correction::<Rank1<2>, _>(0.0).array(), [2.0 / 3.0, 8.0]);
    /// ```
    #[track_caller]
    pub fn var<Dst: Shape, Ax: Axes>(self) -> Tensor<Dst, E, D, T>
    where
        S: ReduceShapeTo<Dst, Ax>,
    {
        self.try_var().or_panic()
    }

    /// [`Tensor::var`], returning an error instead of panicking.
    pub fn try_var<Dst: Shape, Ax: Axes>(self) -> Result<Tensor<Dst, E, D, T>, Error>
    where
        S: ReduceShapeTo<Dst, Ax>,
    {
        self.try_var_with_correction(E::ONE)
    }

    /// The variance with the divisor `N − correction` (0 for the population variance,
    /// 1 for the unbiased estimate); a divisor below 0 counts as 0, as in PyTorch.
    ///
    /// ```
    /// use ferrograd_autodiff::prelude::*;
    /// let x = ferrograd_cpu::Cpu::default().tensor([1.0f32, 3.0]);
    /// assert_eq!(x.var_with_correction::<Rank0, _>(0.0).array(), 1.0);
    /// ```
    #[track_caller]
    pub fn var_with_correction<Dst: Shape, Ax: Axes>(self, correction: E) -> Tensor<Dst, E, D, T>
    where
        S: ReduceShapeTo<Dst, Ax>,
    {
        self.try_var_with_correction(correction).or_panic()
    }

    /// [`Tensor::var_with_correction`], returning an error instead of panicking.
    pub fn try_var_with_correction<Dst: Shape, Ax: Axes>(self, correction: E) -> Result<Tensor<Dst, E, D, T>, Error>
    where
        S: ReduceShapeTo<Dst, Ax>,
    {
        self.try_spread(Spread::Variance, correction)
    }

    /// The standard deviation over the axes `Ax`, chosen as for [`Tensor::sum`]: the
    /// square root of [`Tensor::var`] (unbiased, PyTorch's default). Where it is 0 its
    /// gradient is 0, as in PyTorch, rather than the 0 / 0 of the chain rule.
    ///
    /// ```
    /// use ferrograd_autodiff::prelude::*;
    /// let x = ferrograd_cpu::Cpu::default().tensor([[1.0f64, 3.0], [2.0, 2.0]]);
    /// let s = x.clone().std::<_, Axis<1>>();
    /// assert_eq!(s.array(), [2.0f64.sqrt(), 0.0]);
    /// let g = x.leaky_trace().std::<_, Axis<1>>().sum::<Rank0, _>().backward().get(&x);
    /// assert_eq!(g.array()[1], [0.0, 0.0]);
    /// ```
    #[track_caller]
    pub fn std<Dst: Shape, Ax: Axes>(self) -> Tensor<Dst, E, D, T>
    where
        S: ReduceShapeTo<Dst, Ax>,
    {
        self.try_std().or_panic()
    }

    /// [`Tensor::std`], returning an error instead of panicking.
    pub fn try_std<Dst: Shape, Ax: Axes>(self) -> Result<Tensor<Dst, E, D, T>, Error>
    where
        S: ReduceShapeTo<Dst, Ax>,
    {
        self.try_std_with_correction(E::ONE)
    }

    /// The standard deviation with the divisor `N − correction`, as
    /// [`Tensor::var_with_correction`].
    ///
    /// ```
    /// use ferrograd_autodiff::prelude::*;
    /// let x = ferrograd_cpu::Cpu::default().tensor([1.0f32, 3.0]);
    /// assert_eq!(x.std_with_correction::<Rank0, _>(0.0).array(), 1.0);
    /// ```
    #[track_caller]
    pub fn std_with_correction<Dst: Shape, Ax: Axes>(self, correction: E) -> Tensor<Dst, E, D, T>
    where
        S: ReduceShapeTo<Dst, Ax>,
    {
        self.try_std_with_correction(correction).or_panic()
    }

    /// [`Tensor::std_with_correction`], returning an error instead of panicking.
    pub fn try_std_with_correction<Dst: Shape, Ax: Axes>(self, correction: E) -> Result<Tensor<Dst, E, D, T>, Error>
    where
        S: ReduceShapeTo<Dst, Ax>,
    {
        self.try_spread(Spread::StdDev, correction)
    }

    fn try_spread<Dst: Shape, Ax: Axes>(self, spread: Spread, correction: E) -> Result<Tensor<Dst, E, D, T>, Error>
    where
        S: ReduceShapeTo<Dst, Ax>,
    {
        // The variance's backward needs only the input; the deviation's also its output.
        let keep_output = spread == Spread::StdDev;
        self.try_reduce(
            Keep {
                input: true,
                output: keep_output,
            },
            |device, input, layout, axes| {
                VarianceKernel::forward(device, spread, correction, View::new(input, *layout), axes)
            },
            move |device, layout, axes, input, output, grad, grad_output| {
                let input = View::new(kept(input), *layout);
                VarianceKernel::backward(device, correction, input, axes, output, grad, grad_output)
            },
        )
    }
}

impl<S: Shape, E: Dtype, D: LogSumExpKernel<E>, T: Tape<E, D>> Tensor<S, E, D, T> {
    /// `ln Σ exp(x)` over the axes `Ax`, chosen as for [`Tensor::sum`], computed stably
    /// (shifted by the maximum), so that large logits do not overflow. Its gradient is
    /// the softmax over the same axes.
    ///
    /// ```
    /// use ferrograd_autodiff::prelude::*;
    /// let x = ferrograd_cpu::Cpu::default().tensor([[1e4f32, 1e4], [0.0, 0.0]]);
    /// let l = x.logsumexp::<_, Axis<1>>().array();
    /// assert_eq!(l[0], 1e4 + 2.0f32.ln());
    /// assert_eq!(l[1], 2.0f32.ln());
    /// ```
    #[track_caller]
    pub fn logsumexp<Dst: Shape, Ax: Axes>(self) -> Tensor<Dst, E, D, T>
    where
        S: ReduceShapeTo<Dst, Ax>,
    {
        self.try_logsumexp().or_panic()
    }

    /// [`Tensor::logsumexp`], returning an error instead of panicking.
    pub fn try_logsumexp<Dst: Shape, Ax: Axes>(self) -> Result<Tensor<Dst, E, D, T>, Error>
    where
        S: ReduceShapeTo<Dst, Ax>,
    {
        self.try_reduce(
            Keep {
                input: true,
                output: true,
            },
            |device, input, layout, axes| LogSumExpKernel::forward(device, View::new(input, *layout), axes),
            |device, layout, axes, input, output, grad, grad_output| {
                let input = View::new(kept(input), *layout);
                LogSumExpKernel::backward(device, input, axes, kept(output), grad, grad_output)
            },
        )
    }
}

impl<S: Shape, E: Dtype, D: ArgExtremumKernel<E>, T> Tensor<S, E, D, T> {
    /// The index of the maximum over the axes `Ax`, chosen as for [`Tensor::sum`]: the
    /// first one among ties, and the first NaN when there is one (NaN counts as the
    /// largest), as in PyTorch. Over several axes, the index is row-major within the
    /// reduced axes, as PyTorch's over a flattened tensor. Not differentiable: the
    /// result is an untraced `usize` tensor.
    ///
    /// ```
    /// use ferrograd_autodiff::prelude::*;
    /// let x = ferrograd_cpu::Cpu::default().tensor([[1.0f32, 7.0, 7.0], [f32::NAN, 2.0, 9.0]]);
    /// let i: Tensor<Rank1<2>, usize, _> = x.argmax();
    /// assert_eq!(i.array(), [1, 0]);
    /// assert_eq!(x.argmax::<_, Axis<0>>().array(), [1, 0, 1]);
    /// ```
    ///
    /// # Panics
    /// When the reduced axes hold no elements; see [`Tensor::try_argmax`].
    #[track_caller]
    pub fn argmax<Dst: Shape, Ax: Axes>(&self) -> Tensor<Dst, usize, D>
    where
        S: ReduceShapeTo<Dst, Ax>,
    {
        self.try_argmax().or_panic()
    }

    /// [`Tensor::argmax`], returning `Error::InvalidArgument` when the reduced axes
    /// hold no elements.
    pub fn try_argmax<Dst: Shape, Ax: Axes>(&self) -> Result<Tensor<Dst, usize, D>, Error>
    where
        S: ReduceShapeTo<Dst, Ax>,
    {
        self.try_arg_extremum(Extremum::Max)
    }

    /// The index of the minimum over the axes `Ax`: the first one among ties, and the
    /// first NaN when there is one, as in PyTorch; otherwise as [`Tensor::argmax`].
    ///
    /// ```
    /// use ferrograd_autodiff::prelude::*;
    /// let x = ferrograd_cpu::Cpu::default().tensor([[3.0f64, 1.0], [1.0, 1.0]]);
    /// assert_eq!(x.argmin::<Rank1<2>, Axis<1>>().array(), [1, 0]);
    /// assert_eq!(x.argmin::<Rank0, _>().array(), 1);
    /// ```
    ///
    /// # Panics
    /// When the reduced axes hold no elements; see [`Tensor::try_argmin`].
    #[track_caller]
    pub fn argmin<Dst: Shape, Ax: Axes>(&self) -> Tensor<Dst, usize, D>
    where
        S: ReduceShapeTo<Dst, Ax>,
    {
        self.try_argmin().or_panic()
    }

    /// [`Tensor::argmin`], returning `Error::InvalidArgument` when the reduced axes
    /// hold no elements.
    pub fn try_argmin<Dst: Shape, Ax: Axes>(&self) -> Result<Tensor<Dst, usize, D>, Error>
    where
        S: ReduceShapeTo<Dst, Ax>,
    {
        self.try_arg_extremum(Extremum::Min)
    }

    fn try_arg_extremum<Dst: Shape, Ax: Axes>(&self, kind: Extremum) -> Result<Tensor<Dst, usize, D>, Error>
    where
        S: ReduceShapeTo<Dst, Ax>,
    {
        let axes = Ax::AXES;
        let dims = self.shape.concrete();
        if axes.iter().any(|&a| dims[a] == 0) {
            let op = match kind {
                Extremum::Max => "argmax",
                Extremum::Min => "argmin",
            };
            return Err(Error::InvalidArgument {
                op,
                message: format!(
                    "cannot reduce axes {axes:?} of shape {:?}: they hold no elements",
                    self.layout.dims()
                ),
            });
        }
        let out = ArgExtremumKernel::forward(&self.device, kind, View::new(&self.data, self.layout), axes)?;
        let shape: Dst = reduced_shape(&self.shape, axes);
        Ok(Tensor::from_arc(Arc::new(out), shape, self.device.clone(), NoneTape))
    }
}
