//! Sums and means over axes.

use crate::tape::Tape;
use crate::tensor::Tensor;
use ferrograd_device::ops::elementwise::{ScalarMul, UnaryKernel};
use ferrograd_device::ops::reduce::SumKernel;
use ferrograd_device::{Dtype, Error};
use ferrograd_shapes::{Axes, ReduceShapeTo, Shape};
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
    pub fn sum<Dst: Shape, Ax: Axes>(self) -> Tensor<Dst, E, D, T>
    where
        S: ReduceShapeTo<Dst, Ax>,
    {
        self.try_sum().unwrap_or_else(|e| panic!("{e}"))
    }

    /// [`Tensor::sum`], returning an error instead of panicking.
    pub fn try_sum<Dst: Shape, Ax: Axes>(self) -> Result<Tensor<Dst, E, D, T>, Error>
    where
        S: ReduceShapeTo<Dst, Ax>,
    {
        let axes = Ax::AXES;
        let out = self.device.forward(&self.data, &self.layout, axes)?;
        let shape: Dst = reduced_shape(&self.shape, axes);
        let Tensor { id, data, layout, device, tape, .. } = self;
        let input_len = D::len(&data);
        drop(data);
        let result = Tensor::from_arc(Arc::new(out), shape, device.clone(), tape);
        if T::TRACING {
            result.tape.record(result.id, move |grads, grad_output| {
                if let Some(grad) = grads.grad_mut(id, input_len, &device)? {
                    device.backward(&layout, axes, grad, grad_output)?;
                }
                Ok(())
            });
        }
        Ok(result)
    }

    /// The mean over the axes `Ax`, chosen as for [`Tensor::sum`].
    ///
    /// ```
    /// use ferrograd_autodiff::prelude::*;
    /// let x = ferrograd_cpu::Cpu::default().tensor([[1.0f32, 2.0], [3.0, 6.0]]);
    /// assert_eq!(x.mean::<Rank0, _>().array(), 3.0);
    /// ```
    pub fn mean<Dst: Shape, Ax: Axes>(self) -> Tensor<Dst, E, D, T>
    where
        S: ReduceShapeTo<Dst, Ax>,
        D: UnaryKernel<ScalarMul<E>, E>,
    {
        self.try_mean().unwrap_or_else(|e| panic!("{e}"))
    }

    /// [`Tensor::mean`], returning an error instead of panicking.
    pub fn try_mean<Dst: Shape, Ax: Axes>(self) -> Result<Tensor<Dst, E, D, T>, Error>
    where
        S: ReduceShapeTo<Dst, Ax>,
        D: UnaryKernel<ScalarMul<E>, E>,
    {
        let dims = self.shape.concrete();
        let count: usize = Ax::AXES.iter().map(|&a| dims[a]).product();
        self.try_sum()?.try_mul_scalar(E::ONE / E::from_f64(count as f64))
    }
}
