//! Tensors with automatic differentiation.
//!
//! [`Tensor<S, E, D, T>`](Tensor) is an array of shape `S` and element type `E` on
//! device `D`. Its tape `T` is [`NoneTape`] until it is traced; from then on every op
//! records how to compute gradients, and `backward()` on a traced scalar computes them.
//!
//! ```
//! use ferrograd_autodiff::prelude::*;
//! use ferrograd_cpu::Cpu;
//!
//! let dev = Cpu::default();
//! let x: Tensor<Rank1<3>, f64, Cpu> = dev.tensor([1.0, 2.0, 3.0]);
//! let loss = x.leaky_trace().exp().sum::<Rank0, _>();
//! let grads = loss.backward();
//! assert_eq!(grads.get(&x).array(), [1.0f64.exp(), 2.0f64.exp(), 3.0f64.exp()]);
//! ```
//!
//! # Graphs with several paths
//!
//! Clone a traced tensor to use it twice: the clone shares the tape, so every use
//! records into one graph and the gradients of all uses add up. The same holds for a
//! residual connection and for losses summed together:
//!
//! ```
//! use ferrograd_autodiff::prelude::*;
//! use ferrograd_cpu::Cpu;
//!
//! let dev = Cpu::default();
//! let x: Tensor<Rank1<2>, f64, Cpu> = dev.tensor([1.0, -2.0]);
//! let t = x.leaky_trace();
//!
//! // A tensor used twice: d(x·x)/dx = 2x.
//! let squared = t.clone() * t.clone();
//! // A residual path: y = tanh(x) + x, so dy/dx = 1 - tanh²(x) + 1.
//! let residual = t.clone().tanh() + t.clone();
//! // Two losses added into one.
//! let loss = squared.sum::<Rank0, _>() + residual.sum::<Rank0, _>();
//!
//! let g = loss.backward().get(&x).array();
//! for (i, &v) in [1.0f64, -2.0].iter().enumerate() {
//!     let expected = 2.0 * v + (1.0 - v.tanh().powi(2)) + 1.0;
//!     assert!((g[i] - expected).abs() < 1e-12);
//! }
//! ```
//!
//! A second `backward` on the same graph is an error (the tape is consumed), as in
//! PyTorch; to compute several losses' gradients at once, add the losses.
//!
//! # Training loops
//!
//! `leaky_trace()` keeps every gradient, intermediate ones included. In a training
//! loop, trace the input with gradients allocated for the parameters instead
//! (`x.traced_input(model.try_alloc_grads()?)`, see [`VisitParameters`]): backward then
//! computes no gradient for the input, keeps only the parameters' and frees the rest
//! as soon as it has used them.
//!
//! # Writing ops and optimizers in other crates
//!
//! Everything an op, a layer or an optimizer needs is public: a tensor's
//! [`storage`](Tensor::storage), [`layout`](Tensor::layout) and
//! [`device`](Tensor::device); [`Tensor::try_from_storage`]; [`Tensor::op_input`] and
//! [`Tensor::record_op`] with a [`BackwardContext`] to define a differentiable op;
//! [`Gradients::try_grad`] to lend a gradient (and [`Gradients::sparse_grad`] for a
//! row-sparse one, [`SparseGrad`], which [`BackwardContext::add_sparse_grad`] writes); [`Tensor::storage_mut`] to update a
//! parameter in place, keeping its id; and [`VisitParameters`] to visit a model's
//! parameters by name. How the tape works: `docs/tape.md` in the repository.

use ferrograd_device::Error;

mod backward;
mod create;
mod gradients;
pub(crate) mod ops;
mod parameters;
mod sparse;
mod step;
mod tape;
mod tensor;

pub use backward::{BackwardContext, ScalarShape, TracedTape};
pub use create::{SampleTensor, TensorCreation, TensorData};
pub use gradients::Gradients;
pub use ops::concat::{Stack, stack};
pub use ops::conv::{Conv2dBias, Conv2dOptions, Padding, Size2};
pub use ops::conv_transpose::{ConvTranspose1dOptions, ConvTranspose2dOptions, ConvTransposeBias};
pub use ops::conv1d::{Conv1dBias, Conv1dOptions, Padding1d};
pub use ops::pool::{Pool1dOptions, Pool2dOptions};
pub use ops::upsample::{Interpolation, UpsampleSize};
pub use parameters::{ParameterVisitor, ParameterVisitorMut, Prefixed, VisitParameters};
pub use sparse::SparseGrad;
pub use tape::{MergeTapes, MergedTape, NoneTape, OpInput, OwnedTape, Tape};
pub use tensor::{Tensor, UniqueId};

/// Everything a user of tensors needs in scope.
pub mod prelude {
    pub use crate::ops::index::ArangeTensor;
    pub use crate::{
        Gradients, NoneTape, OwnedTape, SampleTensor, Stack, Tape, Tensor, TensorCreation, VisitParameters, stack,
    };
    pub use ferrograd_device::{Dtype, Error};
    pub use ferrograd_shapes::{
        Axes2, Axes3, Axes4, Axes5, Axes6, Axis, Const, ConstShape, Dim, Rank0, Rank1, Rank2, Rank3, Rank4, Rank5,
        Rank6, Shape,
    };
}

/// The panicking twins' way out: `op()` is `try_op()` plus a panic whose message is
/// the error's text, reported at the user's line (`#[track_caller]` all the way up).
pub(crate) trait OrPanic<T> {
    fn or_panic(self) -> T;
}

impl<T> OrPanic<T> for Result<T, Error> {
    #[track_caller]
    fn or_panic(self) -> T {
        match self {
            Ok(value) => value,
            Err(error) => panic!("{error}"),
        }
    }
}
