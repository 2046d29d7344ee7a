//! Element-wise ops of two tensors of one shape. Either operand may be traced; if both
//! are, on different tapes, the tapes merge.

use crate::OrPanic;
use crate::tape::{MergeTapes, MergedTape, Tape};
use crate::tensor::Tensor;
use ferrograd_device::ops::elementwise::{Add, BinaryKernel, Div, Maximum, Minimum, Mul, Sub};
use ferrograd_device::{Dtype, Error, Storage};
use ferrograd_shapes::Shape;

macro_rules! binary_methods {
    ($(
        $(#[$doc:meta])*
        $name:ident / $try_name:ident -> $op:ident;
    )*) => {
        // `add`, `sub`, `mul` and `div` are also the std operator traits (below), which
        // call these; the inherent methods carry the docs and the `try_` twins.
        #[allow(clippy::should_implement_trait)]
        impl<S: Shape, E: Dtype, D: Storage<E>, T: Tape<E, D>> Tensor<S, E, D, T> {$(
            $(#[$doc])*
            ///
            /// # Panics
            /// When run-time dims differ; see the `try_` twin.
            #[track_caller]
            pub fn $name<R: Tape<E, D>>(self, rhs: Tensor<S, E, D, R>) -> Tensor<S, E, D, MergedTape<T, R>>
            where
                D: BinaryKernel<$op, E>,
                T: MergeTapes<R>,
                MergedTape<T, R>: Tape<E, D>,
            {
                self.$try_name(rhs).or_panic()
            }

            #[doc = concat!("[`Tensor::", stringify!($name), "`], returning `Error::ShapeMismatch` when run-time dims differ.")]
            pub fn $try_name<R: Tape<E, D>>(self, rhs: Tensor<S, E, D, R>) -> Result<Tensor<S, E, D, MergedTape<T, R>>, Error>
            where
                D: BinaryKernel<$op, E>,
                T: MergeTapes<R>,
                MergedTape<T, R>: Tape<E, D>,
            {
                self.try_binary(stringify!($name), $op, rhs)
            }
        )*}
    };
}

binary_methods! {
    /// `x + y`, element-wise; also written `x + y`.
    ///
    /// ```
    /// use ferrograd_autodiff::prelude::*;
    /// let dev = ferrograd_cpu::Cpu::default();
    /// let (x, y) = (dev.tensor([1.0f32, 2.0]), dev.tensor([10.0f32, 20.0]));
    /// assert_eq!(x.add(y).array(), [11.0, 22.0]);
    /// ```
    add / try_add -> Add;
    /// `x - y`, element-wise; also written `x - y`.
    sub / try_sub -> Sub;
    /// `x · y`, element-wise; also written `x * y`.
    mul / try_mul -> Mul;
    /// `x / y`, element-wise; also written `x / y`.
    div / try_div -> Div;
    /// The larger of `x` and `y`, element-wise (NaN if either is); tied elements split
    /// the gradient equally, as in PyTorch.
    maximum / try_maximum -> Maximum;
    /// The smaller of `x` and `y`, element-wise (NaN if either is); tied elements split
    /// the gradient equally.
    minimum / try_minimum -> Minimum;
}

macro_rules! tensor_operator {
    ($trait:ident, $method:ident, $op:ident) => {
        impl<S: Shape, E: Dtype, D: BinaryKernel<$op, E>, L: Tape<E, D>, R: Tape<E, D>>
            std::ops::$trait<Tensor<S, E, D, R>> for Tensor<S, E, D, L>
        where
            L: MergeTapes<R>,
            MergedTape<L, R>: Tape<E, D>,
        {
            type Output = Tensor<S, E, D, MergedTape<L, R>>;
            /// Panics when run-time dims differ; see the `try_` method.
            #[track_caller]
            fn $method(self, rhs: Tensor<S, E, D, R>) -> Self::Output {
                Tensor::$method(self, rhs)
            }
        }
    };
}
tensor_operator!(Add, add, Add);
tensor_operator!(Sub, sub, Sub);
tensor_operator!(Mul, mul, Mul);
tensor_operator!(Div, div, Div);
