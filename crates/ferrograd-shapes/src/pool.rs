//! What pooling gives: the batch and channel dims keep their types, the pooled axes
//! become `usize` (their sizes follow from kernel, stride, padding and rounding by
//! arithmetic that stable Rust cannot do on const generics; `realize` turns them back
//! into consts, checked), and a global pooling removes them.

use crate::dim::Dim;
use crate::shape::Shape;

/// `Self`, a batch of images `(N, C, H, W)` or one image `(C, H, W)`, pooled over its
/// last two axes gives [`Pool2dShape::Output`], and pooled over all of them (global
/// pooling) [`Pool2dShape::Global`].
///
/// ```
/// use ferrograd_shapes::*;
/// let x: Rank4<2, 3, 8, 8> = Default::default();
/// let out: (Const<2>, Const<3>, usize, usize) = Pool2dShape::output(&x, 4, 4);
/// assert_eq!(out.concrete(), [2, 3, 4, 4]);
/// let global: Rank2<2, 3> = x.global();
/// assert_eq!(global.concrete(), [2, 3]);
/// ```
#[diagnostic::on_unimplemented(
    message = "cannot pool a tensor of shape `{Self}` in 2-d",
    label = "2-d pooling takes (N, C, H, W) or (C, H, W)"
)]
pub trait Pool2dShape: Shape {
    /// The shape of the pooled result.
    type Output: Shape;
    /// The shape of the globally pooled result: `(N, C)` or `(C,)`.
    type Global: Shape;
    /// The result's shape, for `height` × `width` output pixels.
    fn output(&self, height: usize, width: usize) -> Self::Output;
    /// The globally pooled shape.
    fn global(&self) -> Self::Global;
}

impl<N: Dim, C: Dim, H: Dim, W: Dim> Pool2dShape for (N, C, H, W) {
    type Output = (N, C, usize, usize);
    type Global = (N, C);
    fn output(&self, height: usize, width: usize) -> Self::Output {
        (self.0, self.1, height, width)
    }
    fn global(&self) -> Self::Global {
        (self.0, self.1)
    }
}

impl<C: Dim, H: Dim, W: Dim> Pool2dShape for (C, H, W) {
    type Output = (C, usize, usize);
    type Global = (C,);
    fn output(&self, height: usize, width: usize) -> Self::Output {
        (self.0, height, width)
    }
    fn global(&self) -> Self::Global {
        (self.0,)
    }
}

/// `Self`, a batch of sequences `(N, C, L)` or one sequence `(C, L)`, pooled over its
/// last axis gives [`Pool1dShape::Output`].
///
/// ```
/// use ferrograd_shapes::*;
/// let x: Rank3<2, 3, 9> = Default::default();
/// assert_eq!(Pool1dShape::output(&x, 4).concrete(), [2, 3, 4]);
/// ```
#[diagnostic::on_unimplemented(
    message = "cannot pool a tensor of shape `{Self}` in 1-d",
    label = "1-d pooling takes (N, C, L) or (C, L)"
)]
pub trait Pool1dShape: Shape {
    /// The shape of the pooled result.
    type Output: Shape;
    /// The result's shape, for `length` outputs.
    fn output(&self, length: usize) -> Self::Output;
}

impl<N: Dim, C: Dim, L: Dim> Pool1dShape for (N, C, L) {
    type Output = (N, C, usize);
    fn output(&self, length: usize) -> Self::Output {
        (self.0, self.1, length)
    }
}

impl<C: Dim, L: Dim> Pool1dShape for (C, L) {
    type Output = (C, usize);
    fn output(&self, length: usize) -> Self::Output {
        (self.0, length)
    }
}
