//! Comparisons giving `bool` tensors, and `choose` (PyTorch's `where`).

use crate::dtype::{Dtype, Unit};
use crate::error::Error;
use crate::ops::elementwise::Operand;
use crate::storage::Storage;
use crate::view::{View, ViewMut};

/// An element-wise comparison. NaN compares as IEEE 754 says: unequal to everything.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Comparison {
    /// `x == y`
    Eq,
    /// `x != y`
    Ne,
    /// `x < y`
    Lt,
    /// `x <= y`
    Le,
    /// `x > y`
    Gt,
    /// `x >= y`
    Ge,
}

impl Comparison {
    /// The comparison's name, for errors.
    pub fn name(self) -> &'static str {
        match self {
            Comparison::Eq => "eq",
            Comparison::Ne => "ne",
            Comparison::Lt => "lt",
            Comparison::Le => "le",
            Comparison::Gt => "gt",
            Comparison::Ge => "ge",
        }
    }

    /// Compares two values.
    #[inline(always)]
    pub fn apply<E: PartialOrd>(self, x: E, y: E) -> bool {
        match self {
            Comparison::Eq => x == y,
            Comparison::Ne => x != y,
            Comparison::Lt => x < y,
            Comparison::Le => x <= y,
            Comparison::Gt => x > y,
            Comparison::Ge => x >= y,
        }
    }
}

/// Runs comparisons on a device.
///
/// Every method checks its arguments before touching memory: a layout that reaches past
/// its buffer is an [`Error::InvalidArgument`], and operands of different dims an
/// [`Error::ShapeMismatch`], naming the comparison ([`Comparison::name`]) and the sizes.
pub trait CompareKernel<E: Unit + PartialOrd>: Storage<E> + Storage<bool> {
    /// `lhs op rhs` element-wise; both read through their layouts (same dims); the
    /// result is contiguous.
    fn compare(
        &self,
        op: Comparison,
        lhs: View<'_, <Self as Storage<E>>::Vec>,
        rhs: View<'_, <Self as Storage<E>>::Vec>,
    ) -> Result<<Self as Storage<bool>>::Vec, Error>;

    /// `lhs op scalar` element-wise.
    fn compare_scalar(
        &self,
        op: Comparison,
        lhs: View<'_, <Self as Storage<E>>::Vec>,
        scalar: E,
    ) -> Result<<Self as Storage<bool>>::Vec, Error>;
}

/// Picks elements from two tensors by a mask: `condition ? on_true : on_false`.
///
/// Every method checks its arguments before touching memory, as [`CompareKernel`]
/// does, naming `choose`.
pub trait ChooseKernel<E: Dtype>: Storage<E> + Storage<bool> {
    /// The chosen elements; every operand read through its layout (same dims); the
    /// result is contiguous.
    fn forward(
        &self,
        condition: View<'_, <Self as Storage<bool>>::Vec>,
        on_true: View<'_, <Self as Storage<E>>::Vec>,
        on_false: View<'_, <Self as Storage<E>>::Vec>,
    ) -> Result<<Self as Storage<E>>::Vec, Error>;

    /// Adds into `grad`, the gradient of `on_true` (`Operand::Lhs`) or `on_false`
    /// (`Operand::Rhs`) addressed through that operand's layout, `grad_output`
    /// (contiguous over the condition's dims) where the condition picked that operand.
    /// Positions of `grad`'s layout that share an element (a broadcast operand) all add
    /// into it.
    fn backward(
        &self,
        operand: Operand,
        condition: View<'_, <Self as Storage<bool>>::Vec>,
        grad: ViewMut<'_, <Self as Storage<E>>::Vec>,
        grad_output: &<Self as Storage<E>>::Vec,
    ) -> Result<(), Error>;
}
