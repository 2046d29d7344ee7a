use crate::dim::{Const, ConstDim, Dim};
use std::fmt::Debug;

/// A tuple of 0 to 6 [`Dim`]s.
pub trait Shape: 'static + Copy + Debug + PartialEq + Eq + Send + Sync {
    /// The rank.
    const NUM_DIMS: usize;
    /// The sizes as an array, `[usize; NUM_DIMS]`.
    type Concrete: Copy
        + Debug
        + Default
        + PartialEq
        + Send
        + Sync
        + AsRef<[usize]>
        + AsMut<[usize]>
        + std::ops::Index<usize, Output = usize>
        + std::ops::IndexMut<usize>;

    /// The size of every dimension.
    fn concrete(&self) -> Self::Concrete;

    /// Builds the shape from sizes; `None` when a `Const` dimension disagrees.
    fn from_concrete(concrete: &Self::Concrete) -> Option<Self>;

    /// The number of elements: the product of the sizes (1 for rank 0).
    fn num_elements(&self) -> usize {
        self.concrete().as_ref().iter().product()
    }

    /// Row-major (C order) strides, in elements.
    fn strides(&self) -> Self::Concrete {
        let dims = self.concrete();
        let mut strides = Self::Concrete::default();
        let mut step = 1;
        for i in (0..Self::NUM_DIMS).rev() {
            strides[i] = step;
            step *= dims[i];
        }
        strides
    }
}

/// A shape whose every dimension is a [`Const`]: its size is known to the compiler.
pub trait ConstShape: Shape + Default {
    /// The number of elements.
    const NUMEL: usize;
}

/// The shape of a scalar.
pub type Rank0 = ();
/// A vector of `M` elements.
pub type Rank1<const M: usize> = (Const<M>,);
/// An `M`×`N` matrix.
pub type Rank2<const M: usize, const N: usize> = (Const<M>, Const<N>);
/// A rank-3 shape of const dimensions.
pub type Rank3<const M: usize, const N: usize, const O: usize> = (Const<M>, Const<N>, Const<O>);
/// A rank-4 shape of const dimensions.
pub type Rank4<const M: usize, const N: usize, const O: usize, const P: usize> =
    (Const<M>, Const<N>, Const<O>, Const<P>);
/// A rank-5 shape of const dimensions.
pub type Rank5<const M: usize, const N: usize, const O: usize, const P: usize, const Q: usize> =
    (Const<M>, Const<N>, Const<O>, Const<P>, Const<Q>);
/// A rank-6 shape of const dimensions.
pub type Rank6<const M: usize, const N: usize, const O: usize, const P: usize, const Q: usize, const R: usize> =
    (Const<M>, Const<N>, Const<O>, Const<P>, Const<Q>, Const<R>);

macro_rules! tuple_shape {
    ($rank:literal; $($D:ident $i:tt),*) => {
        impl<$($D: Dim),*> Shape for ($($D,)*) {
            const NUM_DIMS: usize = $rank;
            type Concrete = [usize; $rank];
            #[inline(always)]
            fn concrete(&self) -> Self::Concrete {
                [$(self.$i.size()),*]
            }
            #[inline]
            #[allow(unused_variables)]
            fn from_concrete(concrete: &Self::Concrete) -> Option<Self> {
                Some(($($D::from_size(concrete[$i])?,)*))
            }
        }
        impl<$($D: ConstDim),*> ConstShape for ($($D,)*) {
            const NUMEL: usize = 1 $(* $D::SIZE)*;
        }
    };
}

tuple_shape!(0;);
tuple_shape!(1; D0 0);
tuple_shape!(2; D0 0, D1 1);
tuple_shape!(3; D0 0, D1 1, D2 2);
tuple_shape!(4; D0 0, D1 1, D2 2, D3 3);
tuple_shape!(5; D0 0, D1 1, D2 2, D3 3, D4 4);
tuple_shape!(6; D0 0, D1 1, D2 2, D3 3, D4 4, D5 5);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strides_are_row_major() {
        let s: Rank3<2, 3, 4> = Default::default();
        assert_eq!(s.strides(), [12, 4, 1]);
        assert_eq!(().strides(), []);
        assert_eq!(().num_elements(), 1);
    }

    #[test]
    fn runtime_dims_round_trip() {
        let s = (2usize, Const::<3>);
        assert_eq!(s.concrete(), [2, 3]);
        assert_eq!(<(usize, Const<3>)>::from_concrete(&[4, 3]), Some((4, Const)));
        assert_eq!(<(usize, Const<3>)>::from_concrete(&[4, 2]), None);
    }

    #[test]
    fn numel_of_const_shapes() {
        assert_eq!(<Rank0 as ConstShape>::NUMEL, 1);
        assert_eq!(<Rank4<2, 3, 4, 5> as ConstShape>::NUMEL, 120);
    }
}
