//! Capability groups: small named sets of kernel traits, so a function generic over
//! the device writes one bound instead of ten.
//!
//! Each group is a trait with a blanket implementation: any device that has every
//! kernel of the group has the group, with nothing to implement. Callers inside
//! ferrograd still bound on the single kernel an op needs (an error then names that
//! kernel); these groups are for users' code, and come in three sizes:
//!
//! - [`ArithmeticKernels`]: what a float tensor's arithmetic needs — every declared
//!   element-wise op, comparisons and `choose`, reductions, strided copies, random
//!   sampling and matrix products;
//! - [`TrainingKernels`]: what training an MLP or a transformer needs — arithmetic, plus
//!   softmax, indexing (embeddings, cross-entropy), and the optimizers' and gradient
//!   clipping's fused updates;
//! - [`ConvolutionKernels`]: what a convolutional network needs — training, plus
//!   convolution, pooling and upsampling.
//!
//! ```
//! use ferrograd_device::prelude::*;
//!
//! // One bound covers the whole model's needs, on any device.
//! fn needs_training<D: TrainingKernels<f32>>(_device: &D) {}
//! ```

use crate::dtype::Dtype;
use crate::ops::compare::{ChooseKernel, CompareKernel};
use crate::ops::conv::Conv2dKernel;
use crate::ops::copy::CopyKernel;
use crate::ops::dropout::DropoutKernel;
use crate::ops::elementwise::*;
use crate::ops::index::{GatherKernel, OneHotKernel, ScatterAddKernel};
use crate::ops::matmul::MatmulKernel;
use crate::ops::optimizer::{GradientClipKernel, OptimizerKernel};
use crate::ops::pool::Pool2dKernel;
use crate::ops::reduce::{
    ArgExtremumKernel, ExtremumKernel, ExtremumWithIndicesKernel, LogSumExpKernel, SumKernel, VarianceKernel,
};
use crate::ops::softmax::SoftmaxKernel;
use crate::ops::upsample::Upsample2dKernel;
use crate::storage::{SampleKernel, Storage};

/// Declares a capability group: the trait, with its kernels as supertraits, and the
/// blanket implementation for every device that has them all. Written once so the two
/// lists cannot drift apart.
macro_rules! capability_group {
    ($(#[$meta:meta])* $name:ident: $($bound:path),+ $(,)?) => {
        $(#[$meta])*
        pub trait $name<E: Dtype>: $($bound +)+ {}
        impl<E: Dtype, D: $($bound +)+> $name<E> for D {}
    };
}

capability_group! {
    /// What a float tensor's arithmetic needs: every declared element-wise op (unary,
    /// binary, with scalars), comparisons and `choose`, every reduction, strided copies,
    /// random sampling (dropout masks included), and batched matrix products (dtype
    /// conversions, which name two element types, are bounded on their own). See the
    /// [module docs](self).
    ArithmeticKernels:
        Storage<E>, Storage<bool>, Storage<usize>, SampleKernel<E>, DropoutKernel<E>,
        UnaryKernel<Negate, E>, UnaryKernel<Abs, E>, UnaryKernel<Exp, E>, UnaryKernel<Ln, E>,
        UnaryKernel<Sqrt, E>, UnaryKernel<Square, E>, UnaryKernel<Powf<E>, E>, UnaryKernel<Powi, E>,
        UnaryKernel<Recip, E>, UnaryKernel<Sin, E>, UnaryKernel<Cos, E>, UnaryKernel<Tanh, E>,
        UnaryKernel<Sigmoid, E>, UnaryKernel<Relu, E>, UnaryKernel<LeakyRelu<E>, E>, UnaryKernel<Gelu, E>,
        UnaryKernel<GeluTanh, E>, UnaryKernel<Silu, E>, UnaryKernel<Softplus<E>, E>, UnaryKernel<Clamp<E>, E>,
        UnaryKernel<NansTo<E>, E>, UnaryKernel<ScalarAdd<E>, E>, UnaryKernel<ScalarSub<E>, E>,
        UnaryKernel<ScalarMul<E>, E>, UnaryKernel<ScalarDiv<E>, E>,
        BinaryKernel<Add, E>, BinaryKernel<Sub, E>, BinaryKernel<Mul, E>, BinaryKernel<Div, E>,
        BinaryKernel<Maximum, E>, BinaryKernel<Minimum, E>,
        CompareKernel<E>, ChooseKernel<E>,
        SumKernel<E>, ExtremumKernel<E>, ArgExtremumKernel<E>, ExtremumWithIndicesKernel<E>,
        VarianceKernel<E>, LogSumExpKernel<E>,
        CopyKernel<E>, MatmulKernel<E>,
}

capability_group! {
    /// What training an MLP or a transformer needs: [`ArithmeticKernels`], softmax and
    /// log-softmax, gathering and scattering (embeddings, cross-entropy, one-hot
    /// targets), and the fused updates of the optimizers and of gradient clipping. See
    /// the [module docs](self).
    TrainingKernels:
        ArithmeticKernels<E>, SoftmaxKernel<E>, GatherKernel<E>, ScatterAddKernel<E>, OneHotKernel<E>,
        OptimizerKernel<E>, GradientClipKernel<E>,
}

capability_group! {
    /// What a convolutional network needs: [`TrainingKernels`], convolution (and, built
    /// on it, transposed convolution), pooling and upsampling. See the
    /// [module docs](self).
    ConvolutionKernels:
        TrainingKernels<E>, Conv2dKernel<E>, Pool2dKernel<E>, Upsample2dKernel<E>,
}
