//! Comparisons, which give `bool` masks (no gradient), and `choose`, which picks
//! elements of two tensors by a mask (PyTorch's `where`).

use crate::OrPanic;
use crate::tape::{MergeTapes, MergedTape, Tape};
use crate::tensor::Tensor;
use ferrograd_device::ops::compare::{ChooseKernel, CompareKernel, Comparison};
use ferrograd_device::ops::elementwise::Operand;
use ferrograd_device::{Dtype, Error, Storage, Unit, View, ViewMut};
use ferrograd_shapes::Shape;
use std::sync::Arc;

macro_rules! comparisons {
    ($($(#[$doc:meta])* $name:ident / $try_name:ident / $scalar:ident / $try_scalar:ident => $cmp:ident;)*) => {
        impl<S: Shape, E: Unit + PartialOrd, D: CompareKernel<E>, T> Tensor<S, E, D, T> {$(
            $(#[$doc])*
            ///
            /// # Panics
            /// When run-time dims differ; see the `try_` twin.
            #[track_caller]
            pub fn $name<R>(&self, rhs: &Tensor<S, E, D, R>) -> Tensor<S, bool, D> {
                self.$try_name(rhs).or_panic()
            }

            #[doc = concat!("[`Tensor::", stringify!($name), "`], returning `Error::ShapeMismatch` when run-time dims differ.")]
            pub fn $try_name<R>(&self, rhs: &Tensor<S, E, D, R>) -> Result<Tensor<S, bool, D>, Error> {
                self.try_compare(Comparison::$cmp, rhs)
            }

            #[doc = concat!("[`Tensor::", stringify!($name), "`] against one scalar.")]
            #[track_caller]
            pub fn $scalar(&self, scalar: E) -> Tensor<S, bool, D> {
                self.$try_scalar(scalar).or_panic()
            }

            #[doc = concat!("[`Tensor::", stringify!($scalar), "`], returning an error instead of panicking.")]
            pub fn $try_scalar(&self, scalar: E) -> Result<Tensor<S, bool, D>, Error> {
                let data = self.device.compare_scalar(Comparison::$cmp, View::new(&self.data, self.layout), scalar)?;
                Ok(Tensor::from_buffer(data, self.shape, self.device.clone()))
            }
        )*}
    };
}

comparisons! {
    /// `x == y`, element-wise.
    ///
    /// ```
    /// use ferrograd_autodiff::prelude::*;
    /// let dev = ferrograd_cpu::Cpu::default();
    /// let (x, y) = (dev.tensor([1.0f32, 2.0]), dev.tensor([1.0f32, 3.0]));
    /// assert_eq!(x.eq(&y).array(), [true, false]);
    /// assert_eq!(x.gt_scalar(1.5).array(), [false, true]);
    /// ```
    eq / try_eq / eq_scalar / try_eq_scalar => Eq;
    /// `x != y`, element-wise.
    ne / try_ne / ne_scalar / try_ne_scalar => Ne;
    /// `x < y`, element-wise.
    lt / try_lt / lt_scalar / try_lt_scalar => Lt;
    /// `x <= y`, element-wise.
    le / try_le / le_scalar / try_le_scalar => Le;
    /// `x > y`, element-wise.
    gt / try_gt / gt_scalar / try_gt_scalar => Gt;
    /// `x >= y`, element-wise.
    ge / try_ge / ge_scalar / try_ge_scalar => Ge;
}

impl<S: Shape, E: Unit + PartialOrd, D: CompareKernel<E>, T> Tensor<S, E, D, T> {
    fn try_compare<R>(&self, op: Comparison, rhs: &Tensor<S, E, D, R>) -> Result<Tensor<S, bool, D>, Error> {
        if self.shape != rhs.shape {
            return Err(Error::shape_mismatch(op.name(), self.layout.dims(), rhs.layout.dims()));
        }
        let data = self
            .device
            .compare(op, View::new(&self.data, self.layout), View::new(&rhs.data, rhs.layout))?;
        Ok(Tensor::from_buffer(data, self.shape, self.device.clone()))
    }
}

impl<S: Shape, D: Storage<bool>, T> Tensor<S, bool, D, T> {
    /// `on_true` where this mask is true, `on_false` elsewhere (PyTorch's
    /// `torch.where(mask, on_true, on_false)`). Gradients flow to the picked elements.
    ///
    /// ```
    /// use ferrograd_autodiff::prelude::*;
    /// let dev = ferrograd_cpu::Cpu::default();
    /// let x = dev.tensor([-1.0f64, 2.0]);
    /// let mask = x.gt_scalar(0.0);
    /// let zeros = dev.zeros_like(x.shape());
    /// assert_eq!(mask.choose(x, zeros).array(), [0.0, 2.0]);
    /// ```
    ///
    /// # Panics
    /// When run-time dims differ; see [`Tensor::try_choose`].
    #[track_caller]
    pub fn choose<E: Dtype, L, R: Tape<E, D>>(
        &self,
        on_true: Tensor<S, E, D, L>,
        on_false: Tensor<S, E, D, R>,
    ) -> Tensor<S, E, D, MergedTape<L, R>>
    where
        D: ChooseKernel<E>,
        L: Tape<E, D> + MergeTapes<R>,
        MergedTape<L, R>: Tape<E, D>,
    {
        self.try_choose(on_true, on_false).or_panic()
    }

    /// [`Tensor::choose`], returning `Error::ShapeMismatch` when run-time dims differ.
    pub fn try_choose<E: Dtype, L, R: Tape<E, D>>(
        &self,
        on_true: Tensor<S, E, D, L>,
        on_false: Tensor<S, E, D, R>,
    ) -> Result<Tensor<S, E, D, MergedTape<L, R>>, Error>
    where
        D: ChooseKernel<E>,
        L: Tape<E, D> + MergeTapes<R>,
        MergedTape<L, R>: Tape<E, D>,
    {
        for other in [on_true.layout.dims(), on_false.layout.dims()] {
            if other != self.layout.dims() {
                return Err(Error::shape_mismatch("choose", self.layout.dims(), other));
            }
        }
        let device = on_true.device.clone();
        let data = device.forward(
            View::new(&self.data, self.layout),
            View::new(&on_true.data, on_true.layout),
            View::new(&on_false.data, on_false.layout),
        )?;
        let inputs = [on_true.op_input(), on_false.op_input()];
        let tape = on_true.tape.merge_tapes(on_false.tape);
        let result = Tensor::from_arc(Arc::new(data), self.shape, device, tape);
        if !<MergedTape<L, R> as Tape<E, D>>::TRACING {
            return Ok(result);
        }
        let (condition, condition_layout) = (self.data.clone(), self.layout);
        let layouts = [on_true.layout, on_false.layout];
        let result = result.record_op(&inputs, move |ctx| {
            ctx.with_grad_output(|ctx, grad_output| {
                for (position, operand) in [(0, Operand::Lhs), (1, Operand::Rhs)] {
                    let device = ctx.device;
                    if let Some(grad) = ctx.grad_mut(position)? {
                        device.backward(
                            operand,
                            View::new(&condition, condition_layout),
                            ViewMut::new(grad, layouts[position]),
                            grad_output,
                        )?;
                    }
                }
                Ok(())
            })
        });
        Ok(result)
    }
}
