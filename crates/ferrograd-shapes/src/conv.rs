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

/// The weight's first dim `Self` of a transposed convolution fits an input with `C`
/// channels: the same const, or a run-time size on either side (then checked when the
/// op runs).
#[diagnostic::on_unimplemented(
    message = "a transposed-convolution weight with `{Self}` input channels does not fit an input with `{C}` channels",
    label = "the weight's first dim must be the input's channel count",
    note = "a transposed convolution's weight is (C_IN, C_OUT / groups, KH, KW), as in PyTorch"
)]
pub trait TransposedInChannels<C: Dim>: Dim {}

impl<const N: usize> TransposedInChannels<Const<N>> for Const<N> {}
impl<const N: usize> TransposedInChannels<usize> for Const<N> {}
impl<C: Dim> TransposedInChannels<C> for usize {}

/// `Self` (an input image or batch of images) transposed-convolved with a weight of
/// shape `Weight` gives [`ConvTranspose2dShape::Output`].
///
/// The forms: a batch `(N, C_IN, H, W)` → `(N, C_OUT, usize, usize)` and one image
/// `(C_IN, H, W)` → `(C_OUT, usize, usize)`, with a weight `(C_IN, C_OUT / groups, KH, KW)`
/// (PyTorch's layout). The input's channel dim must be the weight's *first* dim: two
/// different consts do not compile.
///
/// # Output channels and groups
/// The result's channel dim has the type of the weight's second dim: right for one
/// group, where it is `C_OUT`. With `groups > 1` the output has `groups` times as many
/// channels as that dim, which a const cannot say (stable Rust cannot multiply const
/// generics), so a grouped transposed convolution names the weight's second dim
/// `usize`; a const there with `groups > 1` is an error when the op runs.
///
/// ```
/// use ferrograd_shapes::*;
/// let x: (usize, Const<4>, usize, usize) = (2, Const, 8, 8);
/// let w: Rank4<4, 16, 3, 3> = Default::default();
/// let out = ConvTranspose2dShape::output(&x, &w, Const, 10, 10);
/// assert_eq!(out.concrete(), [2, 16, 10, 10]);
/// ```
///
/// ```compile_fail
/// use ferrograd_shapes::*;
/// fn conv_transpose<X: ConvTranspose2dShape<W>, W: Shape>() {}
/// // The input has 3 channels, the weight's first dim says 16.
/// conv_transpose::<Rank4<2, 3, 8, 8>, Rank4<16, 3, 3, 3>>();
/// ```
#[diagnostic::on_unimplemented(
    message = "cannot transposed-convolve an input of shape `{Self}` with a weight of shape `{Weight}`",
    label = "the input must be (N, C_IN, H, W) or (C_IN, H, W), the weight (C_IN, C_OUT / groups, KH, KW)",
    note = "the weight's first dim must equal the input's channel dim"
)]
pub trait ConvTranspose2dShape<Weight: Shape>: Shape {
    /// The shape of the result.
    type Output: Shape;
    /// The result's channel dim (the bias's length): the weight's second dim's type.
    type OutChannels: Dim;
    /// Whether `Self` has a batch axis (rank 4) rather than being one image (rank 3).
    const BATCHED: bool;
    /// The result's shape, for `channels` output channels of `height` × `width` pixels.
    fn output(&self, weight: &Weight, channels: Self::OutChannels, height: usize, width: usize) -> Self::Output;
}

impl<N, C, H, W, I, O, KH, KW> ConvTranspose2dShape<(I, O, KH, KW)> for (N, C, H, W)
where
    N: Dim,
    C: Dim,
    H: Dim,
    W: Dim,
    I: TransposedInChannels<C>,
    O: Dim,
    KH: Dim,
    KW: Dim,
{
    type Output = (N, O, usize, usize);
    type OutChannels = O;
    const BATCHED: bool = true;
    fn output(&self, _: &(I, O, KH, KW), channels: O, height: usize, width: usize) -> Self::Output {
        (self.0, channels, height, width)
    }
}

impl<C, H, W, I, O, KH, KW> ConvTranspose2dShape<(I, O, KH, KW)> for (C, H, W)
where
    C: Dim,
    H: Dim,
    W: Dim,
    I: TransposedInChannels<C>,
    O: Dim,
    KH: Dim,
    KW: Dim,
{
    type Output = (O, usize, usize);
    type OutChannels = O;
    const BATCHED: bool = false;
    fn output(&self, _: &(I, O, KH, KW), channels: O, height: usize, width: usize) -> Self::Output {
        (channels, height, width)
    }
}

/// `Self` (a sequence or batch of sequences) convolved in 1-d with a weight of shape
/// `Weight` gives [`Conv1dShape::Output`].
///
/// The forms: a batch `(N, C_IN, L)` → `(N, C_OUT, usize)` and one sequence
/// `(C_IN, L)` → `(C_OUT, usize)`, with a weight `(C_OUT, C_IN / groups, K)`. Channels
/// are checked as for [`Conv2dShape`]: a const in-channel dim of the weight must be the
/// input's; grouped weights name it `usize`.
///
/// ```
/// use ferrograd_shapes::*;
/// let x: (usize, Const<3>, usize) = (2, Const, 20);
/// let w: Rank3<16, 3, 5> = Default::default();
/// assert_eq!(Conv1dShape::output(&x, &w, 16).concrete(), [2, 16, 16]);
/// ```
///
/// ```compile_fail
/// use ferrograd_shapes::*;
/// fn conv1d<X: Conv1dShape<W>, W: Shape>() {}
/// conv1d::<Rank3<2, 3, 8>, Rank3<16, 4, 3>>();
/// ```
#[diagnostic::on_unimplemented(
    message = "cannot convolve (1-d) an input of shape `{Self}` with a weight of shape `{Weight}`",
    label = "the input must be (N, C_IN, L) or (C_IN, L), the weight (C_OUT, C_IN / groups, K)",
    note = "a const in-channel dim of the weight must equal the input's channel dim; for groups > 1 name it `usize`"
)]
pub trait Conv1dShape<Weight: Shape>: Shape {
    /// The shape of the result.
    type Output: Shape;
    /// The weight's out-channel dim: the result's channel dim, and the bias's length.
    type OutChannels: Dim;
    /// Whether `Self` has a batch axis (rank 3) rather than being one sequence (rank 2).
    const BATCHED: bool;
    /// The result's shape, for an output of `length` positions.
    fn output(&self, weight: &Weight, length: usize) -> Self::Output;
}

impl<N, C, L, O, G, K> Conv1dShape<(O, G, K)> for (N, C, L)
where
    N: Dim,
    C: Dim,
    L: Dim,
    O: Dim,
    G: ChannelsPerGroup<C>,
    K: Dim,
{
    type Output = (N, O, usize);
    type OutChannels = O;
    const BATCHED: bool = true;
    fn output(&self, weight: &(O, G, K), length: usize) -> Self::Output {
        (self.0, weight.0, length)
    }
}

impl<C, L, O, G, K> Conv1dShape<(O, G, K)> for (C, L)
where
    C: Dim,
    L: Dim,
    O: Dim,
    G: ChannelsPerGroup<C>,
    K: Dim,
{
    type Output = (O, usize);
    type OutChannels = O;
    const BATCHED: bool = false;
    fn output(&self, weight: &(O, G, K), length: usize) -> Self::Output {
        (weight.0, length)
    }
}

/// `Self` transposed-convolved in 1-d with a weight of shape `Weight` gives
/// [`ConvTranspose1dShape::Output`]: `(N, C_IN, L)` → `(N, C_OUT, usize)` and
/// `(C_IN, L)` → `(C_OUT, usize)` with a weight `(C_IN, C_OUT / groups, K)`. Channels
/// and groups as for [`ConvTranspose2dShape`].
///
/// ```
/// use ferrograd_shapes::*;
/// let x: Rank3<2, 4, 10> = Default::default();
/// let w: Rank3<4, 8, 3> = Default::default();
/// assert_eq!(ConvTranspose1dShape::output(&x, &w, Const, 12).concrete(), [2, 8, 12]);
/// ```
///
/// ```compile_fail
/// use ferrograd_shapes::*;
/// fn conv_transpose1d<X: ConvTranspose1dShape<W>, W: Shape>() {}
/// conv_transpose1d::<Rank3<2, 3, 8>, Rank3<4, 3, 3>>();
/// ```
#[diagnostic::on_unimplemented(
    message = "cannot transposed-convolve (1-d) an input of shape `{Self}` with a weight of shape `{Weight}`",
    label = "the input must be (N, C_IN, L) or (C_IN, L), the weight (C_IN, C_OUT / groups, K)",
    note = "the weight's first dim must equal the input's channel dim"
)]
pub trait ConvTranspose1dShape<Weight: Shape>: Shape {
    /// The shape of the result.
    type Output: Shape;
    /// The result's channel dim (the bias's length): the weight's second dim's type.
    type OutChannels: Dim;
    /// Whether `Self` has a batch axis (rank 3) rather than being one sequence (rank 2).
    const BATCHED: bool;
    /// The result's shape, for `channels` output channels of `length` positions.
    fn output(&self, weight: &Weight, channels: Self::OutChannels, length: usize) -> Self::Output;
}

impl<N, C, L, I, O, K> ConvTranspose1dShape<(I, O, K)> for (N, C, L)
where
    N: Dim,
    C: Dim,
    L: Dim,
    I: TransposedInChannels<C>,
    O: Dim,
    K: Dim,
{
    type Output = (N, O, usize);
    type OutChannels = O;
    const BATCHED: bool = true;
    fn output(&self, _: &(I, O, K), channels: O, length: usize) -> Self::Output {
        (self.0, channels, length)
    }
}

impl<C, L, I, O, K> ConvTranspose1dShape<(I, O, K)> for (C, L)
where
    C: Dim,
    L: Dim,
    I: TransposedInChannels<C>,
    O: Dim,
    K: Dim,
{
    type Output = (O, usize);
    type OutChannels = O;
    const BATCHED: bool = false;
    fn output(&self, _: &(I, O, K), channels: O, length: usize) -> Self::Output {
        (channels, length)
    }
}

/// An image `(C, H, W)` or a batch of images `(N, C, H, W)` whose height and width are
/// resized (upsampling): batch and channels keep their types, the new height and width
/// are `usize`.
///
/// ```
/// use ferrograd_shapes::*;
/// let x: Rank4<2, 3, 8, 8> = Default::default();
/// let out: (Const<2>, Const<3>, usize, usize) = Resize2dShape::resized(&x, 16, 12);
/// assert_eq!(out.concrete(), [2, 3, 16, 12]);
/// ```
#[diagnostic::on_unimplemented(
    message = "cannot resize the height and width of a tensor of shape `{Self}`",
    label = "the input must be (N, C, H, W) or (C, H, W)"
)]
pub trait Resize2dShape: Shape {
    /// The shape with the new height and width.
    type Resized: Shape;
    /// Whether `Self` has a batch axis (rank 4) rather than being one image (rank 3).
    const BATCHED: bool;
    /// The shape with `height` rows and `width` columns.
    fn resized(&self, height: usize, width: usize) -> Self::Resized;
}

impl<N: Dim, C: Dim, H: Dim, W: Dim> Resize2dShape for (N, C, H, W) {
    type Resized = (N, C, usize, usize);
    const BATCHED: bool = true;
    fn resized(&self, height: usize, width: usize) -> Self::Resized {
        (self.0, self.1, height, width)
    }
}

impl<C: Dim, H: Dim, W: Dim> Resize2dShape for (C, H, W) {
    type Resized = (C, usize, usize);
    const BATCHED: bool = false;
    fn resized(&self, height: usize, width: usize) -> Self::Resized {
        (self.0, height, width)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shape::{Rank2, Rank3, Rank4};

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

    #[test]
    fn transposed_and_1d_shapes_keep_their_types() {
        let x = Rank4::<2, 3, 9, 9>::default();
        let out: (Const<2>, Const<5>, usize, usize) =
            ConvTranspose2dShape::output(&x, &Rank4::<3, 5, 2, 2>::default(), Const, 10, 11);
        assert_eq!(out.concrete(), [2, 5, 10, 11]);
        let grouped: (Const<3>, usize, Const<2>, Const<2>) = (Const, 1, Const, Const);
        let out: (usize, usize, usize) = ConvTranspose2dShape::output(&Rank3::<3, 4, 4>::default(), &grouped, 3, 5, 5);
        assert_eq!(out.concrete(), [3, 5, 5]);
        let out: (Const<2>, Const<6>, usize) =
            Conv1dShape::output(&Rank3::<2, 3, 9>::default(), &Rank3::<6, 3, 2>::default(), 8);
        assert_eq!(out.concrete(), [2, 6, 8]);
        let out: (Const<6>, usize) = Conv1dShape::output(&Rank2::<3, 9>::default(), &Rank3::<6, 3, 2>::default(), 8);
        assert_eq!(out.concrete(), [6, 8]);
        let out: (usize, Const<7>, usize) =
            ConvTranspose1dShape::output(&(4usize, 3usize, 9usize), &Rank3::<3, 7, 2>::default(), Const, 10);
        assert_eq!(out.concrete(), [4, 7, 10]);
    }
}
