use std::fmt::Debug;

/// One dimension of a shape: its size is either part of the type ([`Const<N>`]) or a
/// run-time value (`usize`).
pub trait Dim: 'static + Copy + Debug + PartialEq + Eq + Send + Sync {
    /// The number of elements along this dimension.
    fn size(&self) -> usize;
    /// Builds the dimension from a size; `None` when `Self` is a `Const` of another size.
    fn from_size(size: usize) -> Option<Self>;
}

/// A dimension whose size the compiler knows.
pub trait ConstDim: Dim + Default {
    /// The size.
    const SIZE: usize;
}

/// A dimension of size `N`, known at compile time.
///
/// ```
/// use ferrograd_shapes::{Const, Dim};
/// assert_eq!(Const::<7>.size(), 7);
/// assert_eq!(Const::<7>::from_size(8), None);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Const<const N: usize>;

impl<const N: usize> Dim for Const<N> {
    #[inline(always)]
    fn size(&self) -> usize {
        N
    }
    #[inline(always)]
    fn from_size(size: usize) -> Option<Self> {
        (size == N).then_some(Const)
    }
}

impl<const N: usize> ConstDim for Const<N> {
    const SIZE: usize = N;
}

impl Dim for usize {
    #[inline(always)]
    fn size(&self) -> usize {
        *self
    }
    #[inline(always)]
    fn from_size(size: usize) -> Option<Self> {
        Some(size)
    }
}
