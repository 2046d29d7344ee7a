//! Which input and weight shapes a 2-d convolution combines, and what it gives.
//!
//! The batch and channel dims keep their types: a const batch stays const, and the
//! weight's out-channel dim becomes the output's channel dim. The output's height and
//! width are `usize`: they follow from sizes, stride, padding and dilation by
//! arithmetic that stable Rust cannot do on const generics (`realize` turns them back
//! into consts, checked).
//!
//! # How channels are checked
//!
//! The weight of a convolution with `groups` groups is `(C_OUT, C_IN / groups, KH, KW)`.
//! Stable Rust cannot divide const generics, so the compiler checks the common case and
//! leaves the rest to run time ([`ChannelsPerGroup`]):
//!
//! - a const in-channel dim on the weight must be the *same* const as the input's
//!   channel dim: the ungrouped convolution (`groups = 1`, the default), where a
//!   mismatch is a compile error;
//! - a grouped or depthwise convolution names the weight's in-channel dim as `usize`
//!   (its size is `C_IN / groups`), and the input's channels, the weight's and `groups`
//!   are checked when the convolution runs, as they are when either dim is `usize`.
//!
//! `groups` itself is a run-time value of the op's options.

use crate::dim::{Const, Dim};
use crate::shape::Shape;

/// The weight's in-channel dim `Self` fits an input with `C` channels: the same const,
/// or a run-time size on either side (then checked against the groups when the
/// convolution runs). Grouped convolutions name this dim `usize`: its size is
/// `C_IN / groups`, and stable Rust cannot divide const generics.
#[diagnostic::on_unimplemented(
    message = "a convolution weight with `{Self}` input channels does not fit an input with `{C}` channels",
    label = "the weight's second dim must be the input's channel count",
    note = "the weight is (C_OUT, C_IN, KH, KW) for an ungrouped convolution; for groups > 1 name its second dim `usize` (C_IN / groups, checked at run time)"
)]
pub trait ChannelsPerGroup<C: Dim>: Dim {}

impl<const N: usize> ChannelsPerGroup<Const<N>> for Const<N> {}
impl<const N: usize> ChannelsPerGroup<usize> for Const<N> {}
impl<C: Dim> ChannelsPerGroup<C> for usize {}

/// `Self` (an input image or batch of images) convolved with a weight of shape
/// `Weight` gives [`Conv2dShape::Output`].
///
/// The forms: a batch `(N, C_IN, H, W)` → `(N, C_OUT, usize, usize)` and one image
/// `(C_IN, H, W)` → `(C_OUT, usize, usize)`, with a weight `(C_OUT, C_IN / groups, KH, KW)`.
///
/// ```
/// use ferrograd_shapes::*;
/// let x: (usize, Const<3>, usize, usize) = (2, Const, 8, 8);
/// let w: Rank4<16, 3, 3, 3> = Default::default();
/// let out = Conv2dShape::output(&x, &w, 6, 6);
/// assert_eq!(out.concrete(), [2, 16, 6, 6]);
/// ```
///
/// ```compile_fail
/// use ferrograd_shapes::*;
/// fn conv<X: Conv2dShape<W>, W: Shape>() {}
/// // The input has 3 channels, the weight expects 4.
/// conv::<Rank4<2, 3, 8, 8>, Rank4<16, 4, 3, 3>>();
/// ```
#[diagnostic::on_unimplemented(
    message = "cannot convolve an input of shape `{Self}` with a weight of shape `{Weight}`",
    label = "the input must be (N, C_IN, H, W) or (C_IN, H, W), the weight (C_OUT, C_IN / groups, KH, KW)",
    note = "a const in-channel dim of the weight must equal the input's channel dim; for groups > 1 name it `usize`"
)]
pub trait Conv2dShape<Weight: Shape>: Shape {
    /// The shape of the result.
    type Output: Shape;
    /// The weight's out-channel dim: the result's channel dim, and the bias's length.
    type OutChannels: Dim;
    /// Whether `Self` has a batch axis (rank 4) rather than being one image (rank 3).
    const BATCHED: bool;
    /// The result's shape, for an output of `height` × `width` pixels.
    fn output(&self, weight: &Weight, height: usize, width: usize) -> Self::Output;
}

impl<N, C, H, W, O, G, KH, KW> Conv2dShape<(O, G, KH, KW)> for (N, C, H, W)
where
    N: Dim,
    C: Dim,
    H: Dim,
    W: Dim,
    O: Dim,
    G: ChannelsPerGroup<C>,
    KH: Dim,
    KW: Dim,
{
    type Output = (N, O, usize, usize);
    type OutChannels = O;
    const BATCHED: bool = true;
    fn output(&self, weight: &(O, G, KH, KW), height: usize, width: usize) -> Self::Output {
        (self.0, weight.0, height, width)
    }
}

impl<C, H, W, O, G, KH, KW> Conv2dShape<(O, G, KH, KW)> for (C, H, W)
where
    C: Dim,
    H: Dim,
    W: Dim,
    O: Dim,
    G: ChannelsPerGroup<C>,
    KH: Dim,
    KW: Dim,
{
    type Output = (O, usize, usize);
    type OutChannels = O;
    const BATCHED: bool = false;
    fn output(&self, weight: &(O, G, KH, KW), height: usize, width: usize) -> Self::Output {
        (weight.0, height, width)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shape::{Rank3, Rank4};

    fn check<X: Conv2dShape<W>, W: Shape>(x: X, w: W) -> X::Output {
        Conv2dShape::output(&x, &w, 5, 7)
    }

    #[test]
    fn batch_and_channels_keep_their_types() {
        let out: (Const<2>, Const<16>, usize, usize) =
            check(Rank4::<2, 3, 9, 9>::default(), Rank4::<16, 3, 3, 3>::default());
        assert_eq!(out.concrete(), [2, 16, 5, 7]);
        // One image.
        let out: (Const<16>, usize, usize) = check(Rank3::<3, 9, 9>::default(), Rank4::<16, 3, 3, 3>::default());
        assert_eq!(out.concrete(), [16, 5, 7]);
        // A grouped weight names its in-channel dim at run time.
        let grouped: (Const<8>, usize, Const<3>, Const<3>) = (Const, 1, Const, Const);
        let out = check(Rank4::<2, 4, 9, 9>::default(), grouped);
        assert_eq!(out.concrete(), [2, 8, 5, 7]);
        // Run-time channels on the input.
        let out = check((2usize, 4usize, 9usize, 9usize), Rank4::<8, 4, 1, 1>::default());
        assert_eq!(out.concrete(), [2, 8, 5, 7]);
    }
}
