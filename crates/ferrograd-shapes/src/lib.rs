//! Shapes for ferrograd tensors.
//!
//! A dimension is either [`Const<N>`], known to the compiler, or `usize`, known only at
//! run time. A shape is a tuple of dimensions of rank 0 to 6; [`Rank0`] … [`Rank6`]
//! name the all-const ones:
//!
//! ```
//! use ferrograd_shapes::*;
//!
//! let s: Rank2<2, 3> = Default::default();
//! assert_eq!(s.concrete(), [2, 3]);
//! assert_eq!(s.strides(), [3, 1]);
//! assert_eq!(<Rank2<2, 3> as ConstShape>::NUMEL, 6);
//!
//! // A batch dimension known only at run time:
//! let t: (usize, Const<3>) = (5, Const);
//! assert_eq!(t.num_elements(), 15);
//! ```
//!
//! Relations between shapes — which axes a reduction removes, which a broadcast adds,
//! how a permutation reorders — are traits, so a wrong target shape is a compile error:
//!
//! ```
//! use ferrograd_shapes::*;
//! fn reduced<S: ReduceShapeTo<D, Ax>, D: Shape, Ax: Axes>() {}
//! reduced::<Rank3<2, 3, 4>, Rank1<3>, Axes2<0, 2>>();
//! ```
//!
//! ```compile_fail
//! use ferrograd_shapes::*;
//! fn reduced<S: ReduceShapeTo<D, Ax>, D: Shape, Ax: Axes>() {}
//! reduced::<Rank3<2, 3, 4>, Rank1<5>, Axes2<0, 2>>();
//! ```

mod axes;
mod conv;
mod dim;
mod index;
mod layout;
mod matmul;
mod pool;
mod relations;
mod shape;
mod slice;

pub use axes::{Axes, Axes2, Axes3, Axes4, Axes5, Axes6, Axis, SingleAxis};
pub use conv::{
    ChannelsPerGroup, Conv1dShape, Conv2dShape, ConvTranspose1dShape, ConvTranspose2dShape, Resize2dShape,
    TransposedInChannels,
};
pub use dim::{Const, ConstDim, Dim};
pub use index::{AppendAxis, ReplaceAxis, ReplaceAxisTo, SelectIndexShape};
pub use layout::{Layout, MAX_RANK};
pub use matmul::MatMulShape;
pub use pool::{Pool1dShape, Pool2dShape};
pub use relations::{BroadcastShapeTo, DynamicAxis, HasAxis, InsertAxis, PermuteShape, ReduceShape, ReduceShapeTo};
pub use shape::{ConstShape, Rank0, Rank1, Rank2, Rank3, Rank4, Rank5, Rank6, Shape};
pub use slice::{AxisRange, PrependAxis, SliceRanges};
