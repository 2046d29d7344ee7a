//! Joining tensors: `concat_along` an existing axis, `stack` along a new one.

use crate::OrPanic;
use crate::tape::{MergeTapes, MergedTape, OpInput, Tape};
use crate::tensor::Tensor;
use ferrograd_device::ops::copy::CopyKernel;
use ferrograd_device::{Dtype, Error, Layout, View, ViewMut};
use ferrograd_shapes::{Axis, Const, DynamicAxis, PrependAxis, Shape};
use std::sync::Arc;

/// One input of a join: where its data and gradient live, and the region of the
/// output it fills.
struct Part<D: ferrograd_device::Storage<E>, E: Dtype> {
    input: OpInput,
    data: Arc<D::Vec>,
    layout: Layout,
    region: Layout,
}

/// Copies every part into its region of a new buffer and records the backward step,
/// which hands each part the gradient of its region.
fn join<S: Shape, E: Dtype, D: CopyKernel<E>, T: Tape<E, D>>(
    parts: Vec<Part<D, E>>,
    shape: S,
    device: D,
    tape: T,
) -> Result<Tensor<S, E, D, T>, Error> {
    let mut out = device.try_alloc_for_overwrite(shape.num_elements())?;
    for part in &parts {
        device.copy_strided(View::new(&*part.data, part.layout), ViewMut::new(&mut out, part.region))?;
    }
    let result = Tensor::from_arc(Arc::new(out), shape, device, tape);
    if !T::TRACING {
        return Ok(result);
    }
    let inputs: Vec<OpInput> = parts.iter().map(|p| p.input).collect();
    let layouts: Vec<(Layout, Layout)> = parts.into_iter().map(|p| (p.layout, p.region)).collect();
    let result = result.record_op(&inputs, move |ctx| {
        ctx.with_grad_output(|ctx, grad_output| {
            for (position, (layout, region)) in layouts.iter().enumerate() {
                let device = ctx.device;
                if let Some(grad) = ctx.grad_mut(position)? {
                    device.add_strided(View::new(grad_output, *region), ViewMut::new(grad, *layout))?;
                }
            }
            Ok(())
        })
    });
    Ok(result)
}

/// The layout of the block of a contiguous tensor of `dims` that starts at `start` along
/// `axis` and spans `size` there.
fn region(dims: &[usize], axis: usize, start: usize, size: usize) -> Layout {
    let full = Layout::from_parts(dims, &row_major(dims));
    let mut sub = dims.to_vec();
    sub[axis] = size;
    Layout::from_parts(&sub, full.strides()).with_offset(start * full.strides()[axis])
}

fn row_major(dims: &[usize]) -> Vec<usize> {
    let mut strides = vec![1; dims.len()];
    for i in (0..dims.len().saturating_sub(1)).rev() {
        strides[i] = strides[i + 1] * dims[i + 1];
    }
    strides
}

impl<S: Shape, E: Dtype, D: CopyKernel<E>, T: Tape<E, D>> Tensor<S, E, D, T> {
    /// `self` followed by `other` along axis `I` (PyTorch's `cat`); the other axes must
    /// agree. The joined axis becomes a run-time dim (its size is a sum the compiler
    /// cannot do on stable Rust); `realize` it back to a const if needed.
    ///
    /// ```
    /// use ferrograd_autodiff::prelude::*;
    /// let dev = ferrograd_cpu::Cpu::default();
    /// let a = dev.tensor([[1.0f32, 2.0]]);
    /// let b = dev.tensor([[3.0f32, 4.0], [5.0, 6.0]]);
    /// let c = a.concat_along(Axis::<0>, b);
    /// assert_eq!(c.dims(), [3, 2]);
    /// assert_eq!(c.realize::<Rank2<3, 2>>().array(), [[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]);
    /// ```
    ///
    /// # Panics
    /// When another axis differs at run time; see [`Tensor::try_concat_along`].
    #[track_caller]
    pub fn concat_along<const I: usize, S2, R: Tape<E, D>>(
        self,
        axis: Axis<I>,
        other: Tensor<S2, E, D, R>,
    ) -> Tensor<S::Dynamic, E, D, MergedTape<T, R>>
    where
        S: DynamicAxis<I>,
        S2: DynamicAxis<I, Dynamic = S::Dynamic>,
        T: MergeTapes<R>,
        MergedTape<T, R>: Tape<E, D>,
    {
        self.try_concat_along(axis, other).or_panic()
    }

    /// [`Tensor::concat_along`], returning `Error::ShapeMismatch` when an axis other
    /// than `I` differs.
    #[allow(clippy::type_complexity)] // the result type is the op's own: shape, dtype, device, tape
    pub fn try_concat_along<const I: usize, S2, R: Tape<E, D>>(
        self,
        _axis: Axis<I>,
        other: Tensor<S2, E, D, R>,
    ) -> Result<Tensor<S::Dynamic, E, D, MergedTape<T, R>>, Error>
    where
        S: DynamicAxis<I>,
        S2: DynamicAxis<I, Dynamic = S::Dynamic>,
        T: MergeTapes<R>,
        MergedTape<T, R>: Tape<E, D>,
    {
        let (a, b) = (self.layout.dims().to_vec(), other.layout.dims().to_vec());
        let others_agree = (0..a.len()).all(|axis| axis == I || a[axis] == b[axis]);
        if !others_agree {
            return Err(Error::ShapeMismatch {
                op: "concat",
                message: format!("{a:?} and {b:?} differ outside axis {I}"),
            });
        }
        let mut dims = a.clone();
        dims[I] = a[I] + b[I];
        let mut concrete = <S::Dynamic as Shape>::Concrete::default();
        concrete.as_mut().copy_from_slice(&dims);
        let shape = <S::Dynamic as Shape>::from_concrete(&concrete).expect("DynamicAxis guarantees the joined shape");
        let parts = vec![
            Part {
                input: self.op_input(),
                data: self.data,
                layout: self.layout,
                region: region(&dims, I, 0, a[I]),
            },
            Part {
                input: other.op_input(),
                data: other.data,
                layout: other.layout,
                region: region(&dims, I, a[I], b[I]),
            },
        ];
        join(parts, shape, self.device, self.tape.merge_tapes(other.tape))
    }
}

/// Tensors that [`stack`] joins along a new leading axis: an array (the new axis is a
/// `Const`) or a `Vec` (the new axis is a run-time dim).
pub trait Stack {
    /// The stacked tensor.
    type Output;
    /// Stacks, returning `Error::ShapeMismatch` when run-time dims differ, or
    /// `Error::InvalidArgument` for an empty `Vec`.
    fn try_stack(self) -> Result<Self::Output, Error>;
    /// Stacks; panics as [`Stack::try_stack`] fails.
    #[track_caller]
    fn stack(self) -> Self::Output
    where
        Self: Sized,
    {
        self.try_stack().or_panic()
    }
}

fn stack_all<S, New, E, D, T>(
    tensors: Vec<Tensor<S, E, D, T>>,
    new: New,
) -> Result<Tensor<S::Prepended, E, D, T>, Error>
where
    S: Shape + PrependAxis<New>,
    New: ferrograd_shapes::Dim,
    E: Dtype,
    D: CopyKernel<E>,
    T: Tape<E, D> + MergeTapes<T, Output = T>,
{
    let Some(first) = tensors.first() else {
        return Err(Error::InvalidArgument {
            op: "stack",
            message: "nothing to stack: the list is empty".into(),
        });
    };
    let item = first.layout.dims().to_vec();
    let device = first.device.clone();
    let mut dims = vec![tensors.len()];
    dims.extend(&item);
    let mut concrete = <S::Prepended as Shape>::Concrete::default();
    concrete.as_mut().copy_from_slice(&dims);
    let shape = <S::Prepended as Shape>::from_concrete(&concrete).expect("PrependAxis guarantees the stacked shape");
    let _ = new;
    let mut parts = Vec::with_capacity(tensors.len());
    let mut tape: Option<T> = None;
    for (i, tensor) in tensors.into_iter().enumerate() {
        if tensor.layout.dims() != item.as_slice() {
            return Err(Error::ShapeMismatch {
                op: "stack",
                message: format!("tensor {i} has shape {:?}, tensor 0 has {item:?}", tensor.layout.dims()),
            });
        }
        let whole = region(&dims, 0, i, 1);
        let region = Layout::from_parts(&item, &whole.strides()[1..]).with_offset(whole.offset());
        let input = tensor.op_input();
        tape = Some(match tape {
            None => tensor.tape,
            Some(t) => t.merge_tapes(tensor.tape),
        });
        parts.push(Part {
            input,
            data: tensor.data,
            layout: tensor.layout,
            region,
        });
    }
    join(parts, shape, device, tape.expect("the list is not empty"))
}

impl<S, E, D, T, const N: usize> Stack for [Tensor<S, E, D, T>; N]
where
    S: Shape + PrependAxis<Const<N>>,
    E: Dtype,
    D: CopyKernel<E>,
    T: Tape<E, D> + MergeTapes<T, Output = T>,
{
    type Output = Tensor<S::Prepended, E, D, T>;
    fn try_stack(self) -> Result<Self::Output, Error> {
        stack_all(Vec::from(self), Const::<N>)
    }
}

impl<S, E, D, T> Stack for Vec<Tensor<S, E, D, T>>
where
    S: Shape + PrependAxis<usize>,
    E: Dtype,
    D: CopyKernel<E>,
    T: Tape<E, D> + MergeTapes<T, Output = T>,
{
    type Output = Tensor<S::Prepended, E, D, T>;
    fn try_stack(self) -> Result<Self::Output, Error> {
        let n = self.len();
        stack_all(self, n)
    }
}

/// Joins tensors of one shape along a new leading axis (PyTorch's `stack(dim=0)`).
///
/// ```
/// use ferrograd_autodiff::prelude::*;
/// use ferrograd_autodiff::stack;
/// let dev = ferrograd_cpu::Cpu::default();
/// let rows = [dev.tensor([1.0f32, 2.0]), dev.tensor([3.0f32, 4.0])];
/// let m: Tensor<Rank2<2, 2>, f32, _> = stack(rows);
/// assert_eq!(m.array(), [[1.0, 2.0], [3.0, 4.0]]);
/// ```
pub fn stack<Tensors: Stack>(tensors: Tensors) -> Tensors::Output {
    tensors.stack()
}
