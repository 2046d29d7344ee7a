//! Shape relations of the indexing ops: which index shapes `select` accepts, the shape
//! `gather` and `scatter_add` pair with the data (one axis replaced), the shape
//! `index_select` gives, and the shape `one_hot` appends a class axis to.
//!
//! ```
//! use ferrograd_shapes::*;
//!
//! // gather along axis 1: (2, 5) data with (2, 3) indices.
//! fn gathers<S: ReplaceAxisTo<Idx, I>, Idx: Shape, const I: usize>() {}
//! gathers::<Rank2<2, 5>, Rank2<2, 3>, 1>();
//!
//! // index_select along axis 0 with 4 indices: (10, 3) becomes (4, 3).
//! let s: <Rank2<10, 3> as ReplaceAxis<0, Const<4>>>::Replaced = Default::default();
//! assert_eq!(s.concrete(), [4, 3]);
//!
//! // one_hot with 10 classes: (4,) becomes (4, 10).
//! let h: <Rank1<4> as AppendAxis<Const<10>>>::Appended = Default::default();
//! assert_eq!(h.concrete(), [4, 10]);
//! ```
//!
//! Only axis `I` may differ between the data and the index shape of a gather:
//!
//! ```compile_fail
//! use ferrograd_shapes::*;
//! fn gathers<S: ReplaceAxisTo<Idx, I>, Idx: Shape, const I: usize>() {}
//! gathers::<Rank2<2, 5>, Rank2<3, 3>, 1>();
//! ```

use crate::dim::Dim;
use crate::shape::Shape;

/// `Self` is a shape of indices that picks one element along axis `I` of `Src` for each
/// element of `Src` without axis `I` (the shape `select` returns). Three shapes are
/// accepted:
///
/// - `()`: one index for every element (PyTorch's `x.select(I, i)`, or `x[:, i]`);
/// - the axes of `Src` before `I`: one index per leading position, shared by the trailing
///   axes (x `(B, N)` with indices `(B,)`: one element per row);
/// - `Src` without axis `I`: one index per element of the result (PyTorch's
///   `x.gather(I, idx.unsqueeze(I)).squeeze(I)`).
///
/// ```
/// use ferrograd_shapes::*;
/// fn selects<Idx: SelectIndexShape<S, I>, S: Shape, const I: usize>() {}
/// selects::<(), Rank3<2, 3, 4>, 1>();
/// selects::<Rank1<2>, Rank3<2, 3, 4>, 1>();
/// selects::<Rank2<2, 4>, Rank3<2, 3, 4>, 1>();
/// ```
pub trait SelectIndexShape<Src: Shape, const I: usize>: Shape {}

/// `Self` with axis `I` replaced by some dim is `Dst`: the data and index shapes of a
/// gather or a scatter, which agree on every axis but `I`.
///
/// Written with `Dst` in the impl header so that the compiler can infer `I` from the two
/// shapes whenever only one axis fits.
pub trait ReplaceAxisTo<Dst: Shape, const I: usize>: Shape {}

/// `Self` with the dim of axis `I` replaced by `New` (the shape `index_select` returns).
pub trait ReplaceAxis<const I: usize, New: Dim>: Shape + ReplaceAxisTo<Self::Replaced, I> {
    /// The shape with axis `I` of dim `New`.
    type Replaced: Shape;
}

/// `Self` with a new last axis of dim `New` (the shape `one_hot` returns).
pub trait AppendAxis<New: Dim>: Shape {
    /// The shape with the new axis last.
    type Appended: Shape;
}

/// The relations of one (rank, axis): the dims before the axis, the axis' dim, the dims
/// after it, and the index shapes `select` accepts.
macro_rules! axis_relations {
    ($I:literal; [$($B:ident),*] $A:ident [$($T:ident),*]; $($select:ty),+) => {
        impl<$($B: Dim,)* $A: Dim, $($T: Dim,)* New: Dim> ReplaceAxisTo<($($B,)* New, $($T,)*), $I>
            for ($($B,)* $A, $($T,)*)
        {
        }
        impl<$($B: Dim,)* $A: Dim, $($T: Dim,)* New: Dim> ReplaceAxis<$I, New> for ($($B,)* $A, $($T,)*) {
            type Replaced = ($($B,)* New, $($T,)*);
        }
        axis_relations!(@select $I; [$($B),*] $A [$($T),*]; $($select),+);
    };
    (@select $I:literal; [$($B:ident),*] $A:ident [$($T:ident),*]; $first:ty $(, $rest:ty)*) => {
        impl<$($B: Dim,)* $A: Dim, $($T: Dim,)*> SelectIndexShape<($($B,)* $A, $($T,)*), $I> for $first {}
        axis_relations!(@select $I; [$($B),*] $A [$($T),*]; $($rest),*);
    };
    (@select $I:literal; [$($B:ident),*] $A:ident [$($T:ident),*];) => {};
}

axis_relations!(0; [] D0 []; ());
axis_relations!(0; [] D0 [D1]; (), (D1,));
axis_relations!(1; [D0] D1 []; (), (D0,));
axis_relations!(0; [] D0 [D1, D2]; (), (D1, D2));
axis_relations!(1; [D0] D1 [D2]; (), (D0,), (D0, D2));
axis_relations!(2; [D0, D1] D2 []; (), (D0, D1));
axis_relations!(0; [] D0 [D1, D2, D3]; (), (D1, D2, D3));
axis_relations!(1; [D0] D1 [D2, D3]; (), (D0,), (D0, D2, D3));
axis_relations!(2; [D0, D1] D2 [D3]; (), (D0, D1), (D0, D1, D3));
axis_relations!(3; [D0, D1, D2] D3 []; (), (D0, D1, D2));
axis_relations!(0; [] D0 [D1, D2, D3, D4]; (), (D1, D2, D3, D4));
axis_relations!(1; [D0] D1 [D2, D3, D4]; (), (D0,), (D0, D2, D3, D4));
axis_relations!(2; [D0, D1] D2 [D3, D4]; (), (D0, D1), (D0, D1, D3, D4));
axis_relations!(3; [D0, D1, D2] D3 [D4]; (), (D0, D1, D2), (D0, D1, D2, D4));
axis_relations!(4; [D0, D1, D2, D3] D4 []; (), (D0, D1, D2, D3));
axis_relations!(0; [] D0 [D1, D2, D3, D4, D5]; (), (D1, D2, D3, D4, D5));
axis_relations!(1; [D0] D1 [D2, D3, D4, D5]; (), (D0,), (D0, D2, D3, D4, D5));
axis_relations!(2; [D0, D1] D2 [D3, D4, D5]; (), (D0, D1), (D0, D1, D3, D4, D5));
axis_relations!(3; [D0, D1, D2] D3 [D4, D5]; (), (D0, D1, D2), (D0, D1, D2, D4, D5));
axis_relations!(4; [D0, D1, D2, D3] D4 [D5]; (), (D0, D1, D2, D3), (D0, D1, D2, D3, D5));
axis_relations!(5; [D0, D1, D2, D3, D4] D5 []; (), (D0, D1, D2, D3, D4));

macro_rules! append_axis {
    ($($D:ident),*) => {
        impl<New: Dim, $($D: Dim),*> AppendAxis<New> for ($($D,)*) {
            type Appended = ($($D,)* New,);
        }
    };
}
append_axis!();
append_axis!(D0);
append_axis!(D0, D1);
append_axis!(D0, D1, D2);
append_axis!(D0, D1, D2, D3);
append_axis!(D0, D1, D2, D3, D4);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::*;

    fn selects<Idx: SelectIndexShape<S, I>, S: Shape, const I: usize>() {}
    #[allow(clippy::extra_unused_type_parameters)] // S and Dst are the relation tested
    fn replaces<S: ReplaceAxisTo<Dst, I>, Dst: Shape, const I: usize>() -> usize {
        I
    }

    #[test]
    fn select_accepts_scalar_leading_and_reduced_indices() {
        selects::<(), Rank1<5>, 0>();
        selects::<(), Rank2<2, 5>, 0>();
        selects::<Rank1<5>, Rank2<2, 5>, 0>();
        selects::<Rank1<2>, Rank2<2, 5>, 1>();
        selects::<(usize,), (usize, Const<5>), 1>();
        selects::<Rank2<2, 3>, Rank4<2, 3, 4, 5>, 2>();
        selects::<Rank3<2, 3, 5>, Rank4<2, 3, 4, 5>, 2>();
        selects::<Rank5<1, 2, 3, 4, 5>, Rank6<1, 2, 3, 4, 5, 6>, 5>();
    }

    #[test]
    fn the_replaced_axis_is_inferred_when_only_one_fits() {
        assert_eq!(replaces::<Rank2<2, 5>, Rank2<2, 3>, _>(), 1);
        assert_eq!(replaces::<Rank3<2, 5, 4>, Rank3<7, 5, 4>, _>(), 0);
        assert_eq!(replaces::<Rank2<2, 5>, Rank2<2, 5>, 0>(), 0);
    }

    #[test]
    fn replaced_and_appended_shapes() {
        let r: <Rank3<2, 3, 4> as ReplaceAxis<1, usize>>::Replaced = (Const, 9, Const);
        assert_eq!(r.concrete(), [2, 9, 4]);
        let a: <Rank0 as AppendAxis<Const<3>>>::Appended = Default::default();
        assert_eq!(a.concrete(), [3]);
        let b: <(usize, Const<2>) as AppendAxis<usize>>::Appended = (4, Const, 7);
        assert_eq!(b.concrete(), [4, 2, 7]);
    }
}
