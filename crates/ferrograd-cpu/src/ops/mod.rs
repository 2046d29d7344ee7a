//! The CPU kernel of each op family, one module per family as in `ferrograd-device`.

mod compare;
mod conv;
mod convert;
mod copy;
mod dropout;
mod elementwise;
mod index;
mod matmul;
mod optimizer;
mod pool;
pub(crate) mod reduce;
mod softmax;
mod upsample;
