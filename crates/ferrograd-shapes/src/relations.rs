//! How shapes relate: reductions remove axes, broadcasts add them, permutations
//! reorder them. The impls for every rank come from `build.rs`.

use crate::axes::{Axes, Axes2, Axes3, Axes4, Axes5, Axes6, Axis};
use crate::dim::{Const, Dim};
use crate::shape::Shape;

/// `Self` reduced along the axes `Ax` is `Dst`.
///
/// Written with the destination in the impl header, so that a target type alone
/// (`x.sum::<Rank1<3>, _>()`) lets the compiler infer the axes whenever only one set of
/// axes fits.
#[diagnostic::on_unimplemented(
    message = "cannot reduce shape `{Self}` to shape `{Dst}` along axes `{Ax}`",
    label = "the target must be the source shape with the reduced axes removed",
    note = "name the axes (`.sum::<_, Axis<1>>()`) or the target (`.sum::<Rank1<3>, _>()`); when several sets of axes give the target, name the axes"
)]
pub trait ReduceShapeTo<Dst: Shape, Ax: Axes>: Shape {}

/// `Self` reduced along the axes `Ax`; the result is [`ReduceShape::Reduced`].
pub trait ReduceShape<Ax: Axes>: Shape + ReduceShapeTo<Self::Reduced, Ax> {
    /// The shape without the axes `Ax`.
    type Reduced: Shape;
}

/// `Self` broadcast to `Dst` by adding the axes `Ax`: the inverse of [`ReduceShapeTo`].
pub trait BroadcastShapeTo<Dst: Shape, Ax: Axes>: Shape {}

impl<Src: Shape, Dst: ReduceShapeTo<Src, Ax>, Ax: Axes> BroadcastShapeTo<Dst, Ax> for Src {}

/// The dimension type at axis `I` of a shape.
pub trait HasAxis<const I: usize>: Shape {
    /// The dimension type of axis `I`.
    type Dim: Dim;
}

/// `Self` with its axes reordered: axis `k` of the result is axis `Ax::AXES[k]` of `Self`.
///
/// That `Ax` names every axis exactly once is checked when the permutation is used
/// (see [`PermuteShape::check_is_permutation`]).
pub trait PermuteShape<Ax: Axes>: Shape {
    /// The permuted shape.
    type Permuted: Shape;

    /// Returns whether `Ax` names each axis of `Self` exactly once.
    fn check_is_permutation() -> bool {
        let axes = Ax::AXES;
        axes.len() == Self::NUM_DIMS && (0..axes.len()).all(|a| axes.iter().filter(|&&b| b == a).count() == 1)
    }
}

/// `Self` with a size-1 axis inserted at position `I` (an unsqueeze).
pub trait InsertAxis<const I: usize>: Shape {
    /// The shape with the new axis.
    type Inserted: Shape;
}

/// `Self` with axis `I` made a run-time (`usize`) dim: the shape of a concatenation
/// along `I`, whose size the compiler cannot add up on stable Rust.
pub trait DynamicAxis<const I: usize>: Shape {
    /// The shape with axis `I` as `usize`.
    type Dynamic: Shape;
}

include!(concat!(env!("OUT_DIR"), "/reduce_impls.rs"));

#[cfg(test)]
mod tests {
    use super::*;
    use crate::*;

    fn reduces<S: ReduceShapeTo<D, Ax>, D: Shape, Ax: Axes>() {}
    fn reduces_to<S: ReduceShape<Ax>, Ax: Axes>() -> std::marker::PhantomData<S::Reduced> {
        std::marker::PhantomData
    }
    fn broadcasts<S: BroadcastShapeTo<D, Ax>, D: Shape, Ax: Axes>() {}

    #[test]
    fn reductions_relate_the_right_shapes() {
        reduces::<Rank1<3>, Rank0, Axis<0>>();
        reduces::<Rank2<2, 3>, Rank1<3>, _>();
        reduces::<Rank2<2, 3>, Rank1<2>, _>();
        reduces::<Rank3<2, 3, 4>, Rank1<3>, _>();
        reduces::<Rank6<1, 2, 3, 4, 5, 6>, Rank0, Axes6<0, 1, 2, 3, 4, 5>>();
        reduces::<(usize, Const<3>), (Const<3>,), _>();
        let _: std::marker::PhantomData<Rank2<2, 4>> = reduces_to::<Rank3<2, 3, 4>, Axis<1>>();
    }

    #[test]
    fn broadcasts_are_inverse_reductions() {
        broadcasts::<Rank1<3>, Rank2<2, 3>, _>();
        broadcasts::<Rank0, Rank3<2, 3, 4>, Axes3<0, 1, 2>>();
    }

    #[test]
    fn permutations() {
        type P = <Rank3<2, 3, 4> as PermuteShape<Axes3<2, 0, 1>>>::Permuted;
        let p: P = Default::default();
        assert_eq!(p.concrete(), [4, 2, 3]);
        assert!(<Rank3<2, 3, 4> as PermuteShape<Axes3<2, 0, 1>>>::check_is_permutation());
        assert!(!<Rank3<2, 3, 4> as PermuteShape<Axes3<0, 0, 1>>>::check_is_permutation());
    }

    #[test]
    fn inserted_and_dynamic_axes() {
        let s: <Rank2<2, 3> as InsertAxis<1>>::Inserted = Default::default();
        assert_eq!(s.concrete(), [2, 1, 3]);
        let d: <Rank2<2, 3> as DynamicAxis<0>>::Dynamic = (5, Const);
        assert_eq!(d.concrete(), [5, 3]);
    }

    #[test]
    fn axes_lists() {
        assert_eq!(<Axes3<0, 2, 1> as Axes>::AXES, &[0, 2, 1]);
        assert_eq!(<Axis<4> as Axes>::AXES, &[4]);
        let _ = (Axes4::<0, 1, 2, 3>, Axes5::<0, 1, 2, 3, 4>, Axes2::<0, 1>);
    }
}
