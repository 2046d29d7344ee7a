//! Ops that change how a buffer is read, not what it holds: broadcast, permute, slice,
//! unsqueeze, squeeze and realize are views (same buffer, same id, no copy), so their
//! gradients land in the viewed tensor's gradient without any recorded step. reshape
//! is a view when the data is contiguous, else a copy by [`Tensor::contiguous`].

use crate::OrPanic;
use crate::tape::Tape;
use crate::tensor::Tensor;
use ferrograd_device::ops::copy::CopyKernel;
use ferrograd_device::{Dtype, Error, Layout, Storage, Unit, View, ViewMut};
use ferrograd_shapes::{
    Axes, Axis, BroadcastShapeTo, ConstShape, InsertAxis, PermuteShape, ReduceShape, Shape, SliceRanges,
};
use std::sync::Arc;

/// Whether `axes` names each of `0..rank` exactly once.
const fn is_permutation(axes: &[usize], rank: usize) -> bool {
    if axes.len() != rank {
        return false;
    }
    let mut axis = 0;
    while axis < rank {
        let mut count = 0;
        let mut k = 0;
        while k < axes.len() {
            if axes[k] == axis {
                count += 1;
            }
            k += 1;
        }
        if count != 1 {
            return false;
        }
        axis += 1;
    }
    true
}

/// Builds `Dst` from sizes that the type relations guarantee fit.
fn shape_from_dims<Dst: Shape>(dims: &[usize]) -> Option<Dst> {
    let mut concrete = Dst::Concrete::default();
    if concrete.as_ref().len() != dims.len() {
        return None;
    }
    concrete.as_mut().copy_from_slice(dims);
    Dst::from_concrete(&concrete)
}

impl<S: Shape, E: Unit, D: Storage<E>, T> Tensor<S, E, D, T> {
    /// The same buffer, id and tape, read through another shape and layout.
    fn view<S2: Shape>(self, shape: S2, layout: Layout) -> Tensor<S2, E, D, T> {
        Tensor {
            id: self.id,
            data: self.data,
            shape,
            layout,
            device: self.device,
            tape: self.tape,
        }
    }

    /// Repeats the tensor along new axes `Ax` to the const shape `Dst`, without copying
    /// (PyTorch's `expand`). The axes follow from the target when only one set fits;
    /// otherwise name them.
    ///
    /// ```
    /// use ferrograd_autodiff::prelude::*;
    /// let dev = ferrograd_cpu::Cpu::default();
    /// let bias = dev.tensor([1.0f32, 2.0, 3.0]);
    /// let rows: Tensor<Rank2<2, 3>, f32, _> = bias.clone().broadcast();
    /// assert_eq!(rows.array(), [[1.0, 2.0, 3.0], [1.0, 2.0, 3.0]]);
    /// // A square target is ambiguous: say which axis is new.
    /// let cols = bias.broadcast::<Rank2<3, 3>, Axis<1>>();
    /// assert_eq!(cols.array()[2], [3.0, 3.0, 3.0]);
    /// ```
    pub fn broadcast<Dst: ConstShape, Ax: Axes>(self) -> Tensor<Dst, E, D, T>
    where
        S: BroadcastShapeTo<Dst, Ax>,
    {
        self.broadcast_like(&Dst::default())
    }

    /// [`Tensor::broadcast`] to a shape that may have run-time dims, such as another
    /// tensor's (`x.broadcast_like(y.shape())`).
    ///
    /// # Panics
    /// When a kept run-time dim differs from `shape`'s; see [`Tensor::try_broadcast_like`].
    #[track_caller]
    pub fn broadcast_like<Dst: Shape, Ax: Axes>(self, shape: &Dst) -> Tensor<Dst, E, D, T>
    where
        S: BroadcastShapeTo<Dst, Ax>,
    {
        self.try_broadcast_like(shape).or_panic()
    }

    /// [`Tensor::broadcast_like`], returning `Error::ShapeMismatch` when a kept dim
    /// differs from the target's.
    pub fn try_broadcast_like<Dst: Shape, Ax: Axes>(self, shape: &Dst) -> Result<Tensor<Dst, E, D, T>, Error>
    where
        S: BroadcastShapeTo<Dst, Ax>,
    {
        let dst = shape.concrete();
        let (src_dims, src_strides) = (self.layout.dims(), self.layout.strides());
        let mut strides = Dst::Concrete::default();
        let mut kept = 0;
        for axis in 0..Dst::NUM_DIMS {
            if Ax::AXES.contains(&axis) {
                continue; // stride 0: every index along a new axis reads the same element
            }
            if dst[axis] != src_dims[kept] {
                return Err(Error::ShapeMismatch {
                    op: "broadcast",
                    message: format!("cannot broadcast {:?} to {:?} along axes {:?}", src_dims, dst, Ax::AXES),
                });
            }
            strides[axis] = src_strides[kept];
            kept += 1;
        }
        let layout = Layout::from_parts(dst.as_ref(), strides.as_ref()).with_offset(self.layout.offset());
        Ok(self.view(*shape, layout))
    }

    /// Reorders the axes without copying: axis `k` of the result is axis `Ax::AXES[k]`
    /// of `self` (PyTorch's `permute`). Axes that are not a permutation fail to build.
    ///
    /// ```
    /// use ferrograd_autodiff::prelude::*;
    /// let x = ferrograd_cpu::Cpu::default().tensor([[1.0f32, 2.0, 3.0], [4.0, 5.0, 6.0]]);
    /// let t: Tensor<Rank2<3, 2>, f32, _> = x.permute::<Axes2<1, 0>>();
    /// assert_eq!(t.array(), [[1.0, 4.0], [2.0, 5.0], [3.0, 6.0]]);
    /// ```
    pub fn permute<Ax: Axes>(self) -> Tensor<S::Permuted, E, D, T>
    where
        S: PermuteShape<Ax>,
    {
        const {
            assert!(
                is_permutation(Ax::AXES, S::NUM_DIMS),
                "permute: the axes must name every axis exactly once"
            )
        };
        let (dims, strides) = (self.layout.dims(), self.layout.strides());
        let new_dims: Vec<usize> = Ax::AXES.iter().map(|&a| dims[a]).collect();
        let new_strides: Vec<usize> = Ax::AXES.iter().map(|&a| strides[a]).collect();
        let shape = shape_from_dims(&new_dims).expect("PermuteShape guarantees the permuted shape");
        let layout = Layout::from_parts(&new_dims, &new_strides).with_offset(self.layout.offset());
        self.view(shape, layout)
    }

    /// Swaps the two axes of a matrix (or the last two of a batch, through `permute`).
    ///
    /// ```
    /// use ferrograd_autodiff::prelude::*;
    /// let x = ferrograd_cpu::Cpu::default().tensor([[1.0f32, 2.0]]);
    /// assert_eq!(x.t().array(), [[1.0], [2.0]]);
    /// ```
    pub fn t(self) -> Tensor<S::Permuted, E, D, T>
    where
        S: PermuteShape<ferrograd_shapes::Axes2<1, 0>>,
    {
        self.permute::<ferrograd_shapes::Axes2<1, 0>>()
    }

    /// A view of the elements in one range per axis (`..` keeps an axis whole); the
    /// sliced axes become run-time dims.
    ///
    /// ```
    /// use ferrograd_autodiff::prelude::*;
    /// let x = ferrograd_cpu::Cpu::default().tensor([[1.0f32, 2.0, 3.0], [4.0, 5.0, 6.0]]);
    /// let y = x.slice((.., 1..));
    /// assert_eq!(y.dims(), [2, 2]);
    /// assert_eq!(y.as_vec(), vec![2.0, 3.0, 5.0, 6.0]);
    /// ```
    ///
    /// # Panics
    /// When a range is out of bounds; see [`Tensor::try_slice`].
    #[track_caller]
    pub fn slice<R: SliceRanges<S>>(self, ranges: R) -> Tensor<R::Sliced, E, D, T> {
        self.try_slice(ranges).or_panic()
    }

    /// [`Tensor::slice`], returning `Error::InvalidArgument` when a range is reversed or
    /// reaches past its axis.
    pub fn try_slice<R: SliceRanges<S>>(self, ranges: R) -> Result<Tensor<R::Sliced, E, D, T>, Error> {
        let dims = self.layout.dims().to_vec();
        let strides = self.layout.strides();
        let bounds = ranges.all_bounds(&dims);
        let mut offset = self.layout.offset();
        let mut new_dims = Vec::with_capacity(dims.len());
        for (axis, &(start, end)) in bounds.iter().enumerate() {
            if start > end || end > dims[axis] {
                return Err(Error::InvalidArgument {
                    op: "slice",
                    message: format!(
                        "range {start}..{end} is out of bounds for axis {axis} of size {}",
                        dims[axis]
                    ),
                });
            }
            offset += start * strides[axis];
            new_dims.push(end - start);
        }
        let shape = shape_from_dims(&new_dims).expect("SliceRanges guarantees the sliced shape");
        let layout = Layout::from_parts(&new_dims, strides).with_offset(offset);
        Ok(self.view(shape, layout))
    }

    /// Inserts an axis of size 1 at position `I`, without copying.
    ///
    /// ```
    /// use ferrograd_autodiff::prelude::*;
    /// let x = ferrograd_cpu::Cpu::default().tensor([1.0f32, 2.0]);
    /// let column: Tensor<Rank2<2, 1>, f32, _> = x.unsqueeze::<1>();
    /// assert_eq!(column.array(), [[1.0], [2.0]]);
    /// ```
    pub fn unsqueeze<const I: usize>(self) -> Tensor<S::Inserted, E, D, T>
    where
        S: InsertAxis<I>,
    {
        let mut dims = self.layout.dims().to_vec();
        let mut strides = self.layout.strides().to_vec();
        dims.insert(I, 1);
        strides.insert(I, 0);
        let shape = shape_from_dims(&dims).expect("InsertAxis guarantees the unsqueezed shape");
        let layout = Layout::from_parts(&dims, &strides).with_offset(self.layout.offset());
        self.view(shape, layout)
    }

    /// Removes axis `I`, which must have size 1, without copying.
    ///
    /// # Panics
    /// When axis `I` is not of size 1; see [`Tensor::try_squeeze`].
    #[track_caller]
    pub fn squeeze<const I: usize>(self) -> Tensor<<S as ReduceShape<Axis<I>>>::Reduced, E, D, T>
    where
        S: ReduceShape<Axis<I>>,
    {
        self.try_squeeze::<I>().or_panic()
    }

    /// [`Tensor::squeeze`], returning `Error::ShapeMismatch` when axis `I` is not of size 1.
    pub fn try_squeeze<const I: usize>(self) -> Result<Tensor<<S as ReduceShape<Axis<I>>>::Reduced, E, D, T>, Error>
    where
        S: ReduceShape<Axis<I>>,
    {
        let mut dims = self.layout.dims().to_vec();
        let mut strides = self.layout.strides().to_vec();
        if dims[I] != 1 {
            return Err(Error::ShapeMismatch {
                op: "squeeze",
                message: format!("axis {I} of shape {dims:?} has size {}, expected 1", dims[I]),
            });
        }
        dims.remove(I);
        strides.remove(I);
        let shape = shape_from_dims(&dims).expect("ReduceShape guarantees the squeezed shape");
        let layout = Layout::from_parts(&dims, &strides).with_offset(self.layout.offset());
        Ok(self.view(shape, layout))
    }

    /// The same tensor with its shape's dims given another type: const dims checked
    /// against the run-time sizes, e.g. `(usize, Const<3>)` back to `Rank2<4, 3>`.
    ///
    /// ```
    /// use ferrograd_autodiff::prelude::*;
    /// let dev = ferrograd_cpu::Cpu::default();
    /// let x = dev.tensor_from_vec(vec![1.0f32; 6], (2usize, 3usize));
    /// let y: Tensor<Rank2<2, 3>, f32, _> = x.clone().realize();
    /// assert!(x.try_realize::<Rank2<3, 2>>().is_err());
    /// # let _ = y;
    /// ```
    ///
    /// # Panics
    /// When the sizes disagree with `Dst`; see [`Tensor::try_realize`].
    #[track_caller]
    pub fn realize<Dst: Shape>(self) -> Tensor<Dst, E, D, T> {
        self.try_realize().or_panic()
    }

    /// [`Tensor::realize`], returning `Error::ShapeMismatch` when the sizes disagree.
    pub fn try_realize<Dst: Shape>(self) -> Result<Tensor<Dst, E, D, T>, Error> {
        match shape_from_dims::<Dst>(self.layout.dims()) {
            Some(shape) => {
                let layout = self.layout;
                Ok(self.view(shape, layout))
            }
            None => Err(Error::ShapeMismatch {
                op: "realize",
                message: format!(
                    "shape {:?} does not fit the type {}",
                    self.layout.dims(),
                    std::any::type_name::<Dst>()
                ),
            }),
        }
    }
}

impl<S: Shape, E: Dtype, D: CopyKernel<E>, T: Tape<E, D>> Tensor<S, E, D, T> {
    /// The tensor with its elements laid out row-major in a buffer of their own; the
    /// tensor itself when they already are.
    #[track_caller]
    pub fn contiguous(self) -> Self {
        self.try_contiguous().or_panic()
    }

    /// [`Tensor::contiguous`], returning an error instead of panicking.
    pub fn try_contiguous(self) -> Result<Self, Error> {
        if self.layout.is_contiguous() && self.buffer_len() == self.num_elements() {
            return Ok(self);
        }
        let out_layout = Layout::contiguous(&self.shape);
        let mut out = self.device.try_alloc_for_overwrite(self.num_elements())?;
        self.device
            .copy_strided(View::new(&*self.data, self.layout), ViewMut::new(&mut out, out_layout))?;
        let Tensor {
            id,
            data,
            shape,
            layout,
            device,
            tape,
        } = self;
        let input_len = D::len(&data);
        drop(data);
        let mut result = Tensor::from_arc(Arc::new(out), shape, device, tape);
        if T::TRACING {
            result.record_input_gradient(id, input_len, move |device, grad, grad_output| {
                device.add_strided(View::new(grad_output, out_layout), ViewMut::new(grad, layout))
            });
        }
        Ok(result)
    }

    /// The same elements in another const shape with as many elements; a mismatch in
    /// element count fails to build. A view when the data is contiguous, else a copy.
    ///
    /// ```
    /// use ferrograd_autodiff::prelude::*;
    /// let x = ferrograd_cpu::Cpu::default().tensor([[1.0f32, 2.0, 3.0], [4.0, 5.0, 6.0]]);
    /// let y: Tensor<Rank3<3, 2, 1>, f32, _> = x.reshape();
    /// assert_eq!(y.as_vec(), vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
    /// ```
    pub fn reshape<Dst: ConstShape>(self) -> Tensor<Dst, E, D, T>
    where
        S: ConstShape,
    {
        const {
            assert!(
                S::NUMEL == Dst::NUMEL,
                "reshape: the shapes have different numbers of elements"
            )
        };
        self.reshape_like(&Dst::default())
    }

    /// [`Tensor::reshape`] to a shape that may have run-time dims.
    ///
    /// # Panics
    /// When the element counts differ; see [`Tensor::try_reshape_like`].
    #[track_caller]
    pub fn reshape_like<Dst: Shape>(self, shape: &Dst) -> Tensor<Dst, E, D, T> {
        self.try_reshape_like(shape).or_panic()
    }

    /// [`Tensor::reshape_like`], returning `Error::ShapeMismatch` when the element
    /// counts differ.
    pub fn try_reshape_like<Dst: Shape>(self, shape: &Dst) -> Result<Tensor<Dst, E, D, T>, Error> {
        if shape.num_elements() != self.num_elements() {
            return Err(Error::ShapeMismatch {
                op: "reshape",
                message: format!(
                    "cannot reshape {:?} ({} elements) to {:?} ({} elements)",
                    self.layout.dims(),
                    self.num_elements(),
                    shape.concrete(),
                    shape.num_elements()
                ),
            });
        }
        let contiguous = self.try_contiguous()?;
        Ok(contiguous.view(*shape, Layout::contiguous(shape)))
    }

    /// All elements in one axis, row-major.
    pub fn flatten(self) -> Tensor<(usize,), E, D, T> {
        let numel = self.num_elements();
        self.reshape_like(&(numel,))
    }
}

#[cfg(test)]
mod tests {
    use super::is_permutation;

    #[test]
    fn permutation_check() {
        assert!(is_permutation(&[2, 0, 1], 3));
        assert!(!is_permutation(&[0, 0, 1], 3));
        assert!(!is_permutation(&[0, 1], 3));
    }
}
