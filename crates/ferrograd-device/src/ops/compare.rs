//! Comparisons giving `bool` tensors, and `choose` (PyTorch's `where`).

use crate::dtype::{Dtype, Unit};
use crate::error::Error;
use crate::ops::elementwise::Operand;
use crate::storage::Storage;
use ferrograd_shapes::Layout;

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
pub trait CompareKernel<E: Unit + PartialOrd>: Storage<E> + Storage<bool> {
    /// `lhs op rhs` element-wise; both read through their layouts (same dims); the
    /// result is contiguous.
    fn compare(
        &self,
        op: Comparison,
        lhs: &<Self as Storage<E>>::Vec,
        lhs_layout: &Layout,
        rhs: &<Self as Storage<E>>::Vec,
        rhs_layout: &Layout,
    ) -> Result<<Self as Storage<bool>>::Vec, Error>;

    /// `lhs op scalar` element-wise.
    fn compare_scalar(
        &self,
        op: Comparison,
        lhs: &<Self as Storage<E>>::Vec,
        lhs_layout: &Layout,
        scalar: E,
    ) -> Result<<Self as Storage<bool>>::Vec, Error>;
}

/// Picks elements from two tensors by a mask: `condition ? on_true : on_false`.
pub trait ChooseKernel<E: Dtype>: Storage<E> + Storage<bool> {
    /// The chosen elements; every operand read through its layout (same dims); the
    /// result is contiguous.
    fn forward(
        &self,
        condition: &<Self as Storage<bool>>::Vec,
        condition_layout: &Layout,
        on_true: &<Self as Storage<E>>::Vec,
        on_true_layout: &Layout,
        on_false: &<Self as Storage<E>>::Vec,
        on_false_layout: &Layout,
    ) -> Result<<Self as Storage<E>>::Vec, Error>;

    /// Accumulates the gradient of `on_true` (`Operand::Lhs`) or `on_false`
    /// (`Operand::Rhs`), addressed through `layout`: `grad_output` where the condition
    /// picked that operand.
    fn backward(
        &self,
        operand: Operand,
        condition: &<Self as Storage<bool>>::Vec,
        condition_layout: &Layout,
        layout: &Layout,
        grad: &mut <Self as Storage<E>>::Vec,
        grad_output: &<Self as Storage<E>>::Vec,
    ) -> Result<(), Error>;
}
