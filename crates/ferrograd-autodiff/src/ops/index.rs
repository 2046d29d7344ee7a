//! Indexing: [`select`](Tensor::select), [`gather`](Tensor::gather),
//! [`index_select`](Tensor::index_select) and [`scatter_add`](Tensor::scatter_add),
//! which are differentiable, and [`one_hot`](Tensor::one_hot) and
//! [`arange`](ArangeTensor::arange), which make index-derived tensors.
//!
//! Indices are `usize` tensors (`Tensor<S, usize, D>`): made from arrays or vectors
//! (`dev.tensor([2usize, 0])`, `dev.tensor_from_vec(vec![1usize], ())`), by `arange`, or
//! as views (broadcast, permuted, sliced) of those. The axis is a const generic, as in
//! [`Tensor::squeeze`]: `x.gather::<1, _>(&idx)` is PyTorch's `x.gather(1, idx)`.
//!
//! An index past the end of its axis is an `Error::InvalidArgument` from the `try_` twin
//! (`gather: index 7 is out of bounds for axis 1 of size 5`), and a panic with that text
//! from the plain op; nothing is ever read or written out of bounds. Gradients of
//! repeated indices accumulate.

use crate::OrPanic;
use crate::tape::{MergeTapes, Tape};
use crate::tensor::Tensor;
use ferrograd_device::ops::copy::CopyKernel;
use ferrograd_device::ops::index::{FromIndex, GatherKernel, OneHotKernel, ScatterAddKernel};
use ferrograd_device::{Dtype, Error, Layout, Storage, View, ViewMut};
use ferrograd_shapes::{
    AppendAxis, Axis, Const, Dim, Rank1, ReduceShape, ReplaceAxis, ReplaceAxisTo, SelectIndexShape, Shape,
};
use std::sync::Arc;

/// Builds `S` from sizes that the shape relations guarantee fit; `None` when they do not.
fn shape_from_dims<S: Shape>(dims: &[usize]) -> Option<S> {
    let mut concrete = S::Concrete::default();
    if concrete.as_ref().len() != dims.len() {
        return None;
    }
    concrete.as_mut().copy_from_slice(dims);
    S::from_concrete(&concrete)
}

/// The row-major layout of `dims`.
fn row_major(dims: &[usize]) -> Layout {
    let mut strides = vec![0; dims.len()];
    let mut step = 1;
    for axis in (0..dims.len()).rev() {
        strides[axis] = step;
        step *= dims[axis];
    }
    Layout::from_parts(dims, &strides)
}

/// Sizes the way PyTorch prints a shape: `(2, 3)`, `(4,)`, `()`.
fn format_dims(dims: &[usize]) -> String {
    match dims {
        [d] => format!("({d},)"),
        _ => format!(
            "({})",
            dims.iter().map(|d| d.to_string()).collect::<Vec<_>>().join(", ")
        ),
    }
}

impl<S: Shape, E: Dtype, D: GatherKernel<E> + ScatterAddKernel<E>, T: Tape<E, D>> Tensor<S, E, D, T> {
    /// Picks one element along axis `I` for every element of the rest, removing axis
    /// `I`. The indices have one of three shapes:
    ///
    /// - `()`: the same index everywhere, PyTorch's `x.select(I, i)` or `x[:, i]`;
    /// - the axes before `I`: one index per leading position, e.g. for `x` of shape
    ///   `(B, N)` and `idx` of shape `(B,)`, `out[b] = x[b, idx[b]]` (PyTorch's
    ///   `x.gather(1, idx[:, None]).squeeze(1)`, the logit of each row's label);
    /// - the shape of `x` without axis `I`: one index per element of the result.
    ///
    /// The gradient flows to the picked elements, adding up where an element is picked
    /// more than once.
    ///
    /// ```
    /// use ferrograd_autodiff::prelude::*;
    /// let dev = ferrograd_cpu::Cpu::default();
    /// let x = dev.tensor([[1.0f32, 2.0, 3.0], [4.0, 5.0, 6.0]]);
    ///
    /// // Column 2 (x[:, 2]): a scalar index.
    /// let column = x.clone().select::<1>(&dev.tensor_from_vec(vec![2usize], ()));
    /// assert_eq!(column.array(), [3.0, 6.0]);
    ///
    /// // One element per row: x[0, 1] and x[1, 0].
    /// let picked: Tensor<Rank1<2>, f32, _> = x.clone().select::<1>(&dev.tensor([1usize, 0]));
    /// assert_eq!(picked.array(), [2.0, 4.0]);
    ///
    /// // Row 1 (x[1]).
    /// assert_eq!(x.select::<0>(&dev.tensor_from_vec(vec![1usize], ())).array(), [4.0, 5.0, 6.0]);
    /// ```
    ///
    /// # Panics
    /// When an index is out of bounds or a run-time dim of the indices disagrees with
    /// `x`'s; see [`Tensor::try_select`].
    #[track_caller]
    pub fn select<const I: usize>(
        self,
        idx: &Tensor<impl SelectIndexShape<S, I>, usize, D>,
    ) -> Tensor<<S as ReduceShape<Axis<I>>>::Reduced, E, D, T>
    where
        S: ReduceShape<Axis<I>>,
    {
        self.try_select::<I>(idx).or_panic()
    }

    /// [`Tensor::select`], returning `Error::InvalidArgument` when an index is not below
    /// the size of axis `I`, and `Error::ShapeMismatch` when a run-time dim of the
    /// indices disagrees with `x`'s.
    pub fn try_select<const I: usize>(
        self,
        idx: &Tensor<impl SelectIndexShape<S, I>, usize, D>,
    ) -> Result<Tensor<<S as ReduceShape<Axis<I>>>::Reduced, E, D, T>, Error>
    where
        S: ReduceShape<Axis<I>>,
    {
        let dims = self.layout.dims().to_vec();
        let rank = dims.len();
        let (idx_dims, idx_strides) = (idx.layout.dims(), idx.layout.strides());
        // The axes of `x` the axes of the indices run along: all but `I`, or those
        // before `I` (none for a scalar index). `SelectIndexShape` admits no other rank.
        let axes: Vec<usize> = if idx_dims.len() + 1 == rank {
            (0..rank).filter(|&a| a != I).collect()
        } else {
            (0..idx_dims.len()).collect()
        };
        let expected: Vec<usize> = axes.iter().map(|&a| dims[a]).collect();
        if idx_dims != expected.as_slice() {
            return Err(Error::ShapeMismatch {
                op: "select",
                message: format!(
                    "indices {} do not fit input {} along axis {I}: expected {}",
                    format_dims(idx_dims),
                    format_dims(&dims),
                    format_dims(&expected)
                ),
            });
        }
        // The indices read over the input's dims with axis `I` of size 1: broadcast
        // (stride 0) along every axis they do not have.
        let mut index_dims = dims.clone();
        index_dims[I] = 1;
        let mut strides = vec![0; rank];
        for (k, &a) in axes.iter().enumerate() {
            strides[a] = idx_strides[k];
        }
        let index_layout = Layout::from_parts(&index_dims, &strides).with_offset(idx.layout.offset());
        let kept: Vec<usize> = (0..rank).filter(|&a| a != I).map(|a| dims[a]).collect();
        let shape = shape_from_dims(&kept).expect("ReduceShape guarantees the selected shape");
        self.try_gather_along("select", I, idx.data.clone(), index_layout, shape)
    }

    /// PyTorch's `torch.gather(x, I, idx)`: the indices have `x`'s shape except along
    /// axis `I`, and so has the result, with `out[.., j, ..] = x[.., idx[.., j, ..], ..]`
    /// (index `j` along axis `I`). The gradient is scattered back, adding up over repeated
    /// indices.
    ///
    /// The axis can be left to the compiler when only one axis of `x` differs from the
    /// indices' shape (`x.gather(&idx)`); otherwise name it: `x.gather::<1, _>(&idx)`.
    ///
    /// ```
    /// use ferrograd_autodiff::prelude::*;
    /// let dev = ferrograd_cpu::Cpu::default();
    /// let x = dev.tensor([[1.0f32, 2.0, 3.0], [4.0, 5.0, 6.0]]);
    /// let idx = dev.tensor([[2usize, 2, 0, 1], [0, 1, 1, 1]]);
    /// let y: Tensor<Rank2<2, 4>, f32, _> = x.clone().gather(&idx); // along axis 1
    /// assert_eq!(y.array(), [[3.0, 3.0, 1.0, 2.0], [4.0, 5.0, 5.0, 5.0]]);
    ///
    /// let rows = dev.tensor([[1usize, 0, 1]]);
    /// assert_eq!(x.gather::<0, _>(&rows).array(), [[4.0, 2.0, 6.0]]);
    /// ```
    ///
    /// # Panics
    /// When an index is out of bounds or a run-time dim disagrees; see
    /// [`Tensor::try_gather`].
    #[track_caller]
    pub fn gather<const I: usize, Idx: Shape>(self, idx: &Tensor<Idx, usize, D>) -> Tensor<Idx, E, D, T>
    where
        S: ReplaceAxisTo<Idx, I>,
    {
        self.try_gather::<I, Idx>(idx).or_panic()
    }

    /// [`Tensor::gather`], returning `Error::InvalidArgument` when an index is not below
    /// the size of axis `I`, and `Error::ShapeMismatch` when the indices' run-time dims
    /// disagree with `x`'s on another axis.
    pub fn try_gather<const I: usize, Idx: Shape>(
        self,
        idx: &Tensor<Idx, usize, D>,
    ) -> Result<Tensor<Idx, E, D, T>, Error>
    where
        S: ReplaceAxisTo<Idx, I>,
    {
        let (dims, idx_dims) = (self.layout.dims(), idx.layout.dims());
        if (0..dims.len()).any(|a| a != I && dims[a] != idx_dims[a]) {
            return Err(Error::ShapeMismatch {
                op: "gather",
                message: format!(
                    "indices {} and input {} must agree on every axis but {I}",
                    format_dims(idx_dims),
                    format_dims(dims)
                ),
            });
        }
        self.try_gather_along("gather", I, idx.data.clone(), idx.layout, idx.shape)
    }

    /// PyTorch's `torch.index_select(x, I, idx)`: the entries `idx[k]` of axis `I`, in
    /// order (repeats allowed), so axis `I` of the result has the indices' length.
    ///
    /// That axis takes the indices' dim type: `Const<K>` for a `Rank1<K>` index tensor,
    /// keeping the result's shape known to the compiler, and `usize` for a run-time one
    /// (`dev.tensor(vec![..])`). Gradients of repeated indices add up.
    ///
    /// ```
    /// use ferrograd_autodiff::prelude::*;
    /// let dev = ferrograd_cpu::Cpu::default();
    /// let table = dev.tensor([[0.0f32, 0.5], [1.0, 1.5], [2.0, 2.5]]);
    /// let rows: Tensor<Rank2<4, 2>, f32, _> = table.clone().index_select::<0, _>(&dev.tensor([2usize, 0, 2, 1]));
    /// assert_eq!(rows.array(), [[2.0, 2.5], [0.0, 0.5], [2.0, 2.5], [1.0, 1.5]]);
    ///
    /// let cols = table.index_select::<1, _>(&dev.tensor(vec![1usize]));
    /// assert_eq!(cols.dims(), [3, 1]);
    /// assert_eq!(cols.as_vec(), vec![0.5, 1.5, 2.5]);
    /// ```
    ///
    /// # Panics
    /// When an index is out of bounds; see [`Tensor::try_index_select`].
    #[track_caller]
    pub fn index_select<const I: usize, K: Dim>(
        self,
        idx: &Tensor<(K,), usize, D>,
    ) -> Tensor<<S as ReplaceAxis<I, K>>::Replaced, E, D, T>
    where
        S: ReplaceAxis<I, K>,
    {
        self.try_index_select::<I, K>(idx).or_panic()
    }

    /// [`Tensor::index_select`], returning `Error::InvalidArgument` when an index is not
    /// below the size of axis `I`.
    pub fn try_index_select<const I: usize, K: Dim>(
        self,
        idx: &Tensor<(K,), usize, D>,
    ) -> Result<Tensor<<S as ReplaceAxis<I, K>>::Replaced, E, D, T>, Error>
    where
        S: ReplaceAxis<I, K>,
    {
        let mut dims = self.layout.dims().to_vec();
        dims[I] = idx.layout.dims()[0];
        let mut strides = vec![0; dims.len()];
        strides[I] = idx.layout.strides()[0];
        let index_layout = Layout::from_parts(&dims, &strides).with_offset(idx.layout.offset());
        let shape = shape_from_dims(&dims).expect("ReplaceAxis guarantees the selected shape");
        self.try_gather_along("index_select", I, idx.data.clone(), index_layout, shape)
    }

    /// Gathers along `axis` with indices read through `index_layout` (the output's dims,
    /// possibly broadcast), and records the scatter of the gradient.
    fn try_gather_along<Dst: Shape>(
        self,
        op: &'static str,
        axis: usize,
        index: Arc<<D as Storage<usize>>::Vec>,
        index_layout: Layout,
        shape: Dst,
    ) -> Result<Tensor<Dst, E, D, T>, Error> {
        let out = self.device.gather(
            op,
            View::new(&self.data, self.layout),
            axis,
            View::new(&index, index_layout),
        )?;
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
        let mut result = Tensor::from_arc(Arc::new(out), shape, device, tape);
        if T::TRACING {
            let out_layout = row_major(index_layout.dims());
            result.record_input_gradient(id, input_len, move |device, grad, grad_output| {
                device.scatter_add(
                    op,
                    ViewMut::new(grad, layout),
                    axis,
                    View::new(&index, index_layout),
                    View::new(grad_output, out_layout),
                )
            });
        }
        Ok(result)
    }
}

impl<S: Shape, E: Dtype, D: ScatterAddKernel<E> + CopyKernel<E>, T: Tape<E, D>> Tensor<S, E, D, T> {
    /// PyTorch's `x.scatter_add(I, idx, src)`: a copy of `x` with each `src[p]` added at
    /// `p` with its position along axis `I` replaced by `idx[p]`. `idx` and `src` have
    /// one shape, which is `x`'s except along axis `I`; repeated indices add up. The
    /// inverse of [`Tensor::gather`], and differentiable with respect to `x` (the
    /// gradient passes unchanged) and `src` (the gradient gathered at `idx`).
    ///
    /// As for `gather`, the axis is inferred when only one fits; otherwise name it:
    /// `x.scatter_add::<1, _, _>(&idx, src)`.
    ///
    /// ```
    /// use ferrograd_autodiff::prelude::*;
    /// let dev = ferrograd_cpu::Cpu::default();
    /// let zeros: Tensor<Rank2<2, 3>, f32, _> = dev.zeros();
    /// let idx = dev.tensor([[0usize, 2, 0, 0], [1, 1, 2, 1]]);
    /// let src = dev.tensor([[1.0f32, 2.0, 3.0, 4.0], [5.0, 6.0, 7.0, 8.0]]);
    /// let y = zeros.scatter_add(&idx, src);
    /// assert_eq!(y.array(), [[8.0, 0.0, 2.0], [0.0, 19.0, 7.0]]);
    /// ```
    ///
    /// # Panics
    /// When an index is out of bounds or a run-time dim disagrees; see
    /// [`Tensor::try_scatter_add`].
    #[track_caller]
    pub fn scatter_add<const I: usize, Idx: Shape, R: Tape<E, D>>(
        self,
        idx: &Tensor<Idx, usize, D>,
        src: Tensor<Idx, E, D, R>,
    ) -> Tensor<S, E, D, <T as MergeTapes<R>>::Output>
    where
        S: ReplaceAxisTo<Idx, I>,
        T: MergeTapes<R>,
        <T as MergeTapes<R>>::Output: Tape<E, D>,
    {
        self.try_scatter_add::<I, Idx, R>(idx, src).or_panic()
    }

    /// [`Tensor::scatter_add`], returning `Error::InvalidArgument` when an index is not
    /// below the size of axis `I`, and `Error::ShapeMismatch` when run-time dims of
    /// `idx`, `src` and `x` disagree.
    pub fn try_scatter_add<const I: usize, Idx: Shape, R: Tape<E, D>>(
        self,
        idx: &Tensor<Idx, usize, D>,
        src: Tensor<Idx, E, D, R>,
    ) -> Result<Tensor<S, E, D, <T as MergeTapes<R>>::Output>, Error>
    where
        S: ReplaceAxisTo<Idx, I>,
        T: MergeTapes<R>,
        <T as MergeTapes<R>>::Output: Tape<E, D>,
    {
        let (dims, idx_dims) = (self.layout.dims(), idx.layout.dims());
        if idx_dims != src.layout.dims() {
            return Err(Error::ShapeMismatch {
                op: "scatter_add",
                message: format!(
                    "indices {} and source {} must have one shape",
                    format_dims(idx_dims),
                    format_dims(src.layout.dims())
                ),
            });
        }
        if (0..dims.len()).any(|a| a != I && dims[a] != idx_dims[a]) {
            return Err(Error::ShapeMismatch {
                op: "scatter_add",
                message: format!(
                    "indices {} and input {} must agree on every axis but {I}",
                    format_dims(idx_dims),
                    format_dims(dims)
                ),
            });
        }
        let numel = self.num_elements();
        let out_layout = Layout::contiguous(&self.shape);
        let inputs = [self.op_input(), src.op_input()];
        let Tensor {
            data,
            shape,
            layout,
            device,
            tape,
            ..
        } = self;
        let input_len = <D as Storage<E>>::len(&data);
        // Backward needs only the input's layout, so its buffer becomes the output when
        // nobody else holds it.
        let unique = if layout.is_contiguous() && input_len == numel {
            Arc::try_unwrap(data)
        } else {
            Err(data)
        };
        let mut out = match unique {
            Ok(buffer) => buffer,
            Err(data) => {
                let mut out = <D as Storage<E>>::try_alloc_for_overwrite(&device, numel)?;
                device.copy_strided(
                    ferrograd_device::View::new(&*data, layout),
                    ferrograd_device::ViewMut::new(&mut out, out_layout),
                )?;
                out
            }
        };
        device.scatter_add(
            "scatter_add",
            ViewMut::new(&mut out, out_layout),
            I,
            View::new(&idx.data, idx.layout),
            View::new(&src.data, src.layout),
        )?;
        let Tensor {
            data: src_data,
            layout: src_layout,
            tape: src_tape,
            ..
        } = src;
        drop(src_data);
        let result = Tensor::from_arc(Arc::new(out), shape, device, tape.merge_tapes(src_tape));
        if !<<T as MergeTapes<R>>::Output as Tape<E, D>>::TRACING {
            return Ok(result);
        }
        let (index, index_layout) = (idx.data.clone(), idx.layout);
        let result = result.record_op(&inputs, move |ctx| {
            ctx.with_grad_output(|ctx, grad_output| {
                let device = ctx.device;
                if let Some(grad) = ctx.grad_mut(0)? {
                    device.add_strided(
                        ferrograd_device::View::new(grad_output, out_layout),
                        ferrograd_device::ViewMut::new(grad, layout),
                    )?;
                }
                if let Some(grad) = ctx.grad_mut(1)? {
                    device.gather_add(
                        "scatter_add",
                        View::new(grad_output, out_layout),
                        I,
                        View::new(&index, index_layout),
                        ViewMut::new(grad, src_layout),
                    )?;
                }
                Ok(())
            })
        });
        Ok(result)
    }
}

impl<S: Shape, D: Storage<usize>, T> Tensor<S, usize, D, T> {
    /// One-hot encoding with `C` classes: a new last axis of size `C`, 1 at each index
    /// and 0 elsewhere (PyTorch's `F.one_hot(idx, C)`, in a float dtype). No gradient.
    ///
    /// ```
    /// use ferrograd_autodiff::prelude::*;
    /// let dev = ferrograd_cpu::Cpu::default();
    /// let labels = dev.tensor([2usize, 0]);
    /// let targets: Tensor<Rank2<2, 3>, f32, _> = labels.one_hot();
    /// assert_eq!(targets.array(), [[0.0, 0.0, 1.0], [1.0, 0.0, 0.0]]);
    /// assert!(labels.try_one_hot::<2, f32>().is_err()); // 2 is not a class of 2
    /// ```
    ///
    /// # Panics
    /// When an index is not below `C`; see [`Tensor::try_one_hot`].
    #[track_caller]
    pub fn one_hot<const C: usize, E: Dtype>(&self) -> Tensor<<S as AppendAxis<Const<C>>>::Appended, E, D>
    where
        S: AppendAxis<Const<C>>,
        D: OneHotKernel<E>,
    {
        self.try_one_hot().or_panic()
    }

    /// [`Tensor::one_hot`], returning `Error::InvalidArgument` when an index is not
    /// below `C`.
    pub fn try_one_hot<const C: usize, E: Dtype>(
        &self,
    ) -> Result<Tensor<<S as AppendAxis<Const<C>>>::Appended, E, D>, Error>
    where
        S: AppendAxis<Const<C>>,
        D: OneHotKernel<E>,
    {
        self.try_one_hot_like(Const::<C>)
    }

    /// [`Tensor::one_hot`] with the number of classes as a value: a `usize` (a
    /// run-time dim) or a `Const`.
    ///
    /// ```
    /// use ferrograd_autodiff::prelude::*;
    /// let dev = ferrograd_cpu::Cpu::default();
    /// let labels = dev.tensor(vec![1usize, 3]);
    /// let targets = labels.one_hot_like::<_, f64>(4);
    /// assert_eq!(targets.dims(), [2, 4]);
    /// assert_eq!(targets.as_vec(), vec![0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0]);
    /// ```
    ///
    /// # Panics
    /// When an index is not below `classes`; see [`Tensor::try_one_hot_like`].
    #[track_caller]
    pub fn one_hot_like<C: Dim, E: Dtype>(&self, classes: C) -> Tensor<<S as AppendAxis<C>>::Appended, E, D>
    where
        S: AppendAxis<C>,
        D: OneHotKernel<E>,
    {
        self.try_one_hot_like(classes).or_panic()
    }

    /// [`Tensor::one_hot_like`], returning `Error::InvalidArgument` when an index is not
    /// below `classes`.
    pub fn try_one_hot_like<C: Dim, E: Dtype>(
        &self,
        classes: C,
    ) -> Result<Tensor<<S as AppendAxis<C>>::Appended, E, D>, Error>
    where
        S: AppendAxis<C>,
        D: OneHotKernel<E>,
    {
        let data = self
            .device
            .one_hot(View::new(&self.data, self.layout), classes.size())?;
        let mut dims = self.layout.dims().to_vec();
        dims.push(classes.size());
        let shape = shape_from_dims(&dims).expect("AppendAxis guarantees the one-hot shape");
        Ok(Tensor::from_buffer(data, shape, self.device.clone()))
    }
}

/// Makes the tensor `[0, 1, …, n - 1]` (PyTorch's `arange`), of indices (`usize`, like
/// PyTorch's default `int64`) or of floats (`f32`, `f64`). Implemented for every device;
/// in the prelude.
///
/// ```
/// use ferrograd_autodiff::prelude::*;
/// let dev = ferrograd_cpu::Cpu::default();
/// let i: Tensor<Rank1<4>, usize, _> = dev.arange();
/// assert_eq!(i.array(), [0, 1, 2, 3]);
/// let x: Tensor<(usize,), f32, _> = dev.arange_like(&(3,));
/// assert_eq!(x.as_vec(), vec![0.0, 1.0, 2.0]);
/// ```
pub trait ArangeTensor<E: FromIndex>: Storage<E> {
    /// `[0, 1, …, N - 1]`, of a const length.
    fn arange<const N: usize>(&self) -> Tensor<Rank1<N>, E, Self> {
        self.arange_like(&(Const::<N>,))
    }
    /// [`ArangeTensor::arange`], returning an error instead of panicking.
    fn try_arange<const N: usize>(&self) -> Result<Tensor<Rank1<N>, E, Self>, Error> {
        self.try_arange_like(&(Const::<N>,))
    }
    /// `[0, 1, …, n - 1]` for the shape `(n,)`, whose dim may be a run-time `usize`.
    #[track_caller]
    fn arange_like<L: Dim>(&self, shape: &(L,)) -> Tensor<(L,), E, Self> {
        self.try_arange_like(shape).or_panic()
    }
    /// [`ArangeTensor::arange_like`], returning `Error::OutOfMemory` instead of
    /// panicking.
    fn try_arange_like<L: Dim>(&self, shape: &(L,)) -> Result<Tensor<(L,), E, Self>, Error> {
        let len = shape.0.size();
        let mut values = Vec::new();
        values.try_reserve_exact(len).map_err(|_| Error::OutOfMemory {
            elements: len,
            dtype: E::NAME,
        })?;
        values.extend((0..len).map(E::from_index));
        Ok(Tensor::from_buffer(self.try_from_host(values)?, *shape, self.clone()))
    }
}

impl<E: FromIndex, D: Storage<E>> ArangeTensor<E> for D {}
