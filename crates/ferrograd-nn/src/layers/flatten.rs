//! `Flatten`: every axis after the batch's into one, PyTorch's `nn.Flatten()`.

use crate::layers::activations::{parameter_free, parameter_free_but_training};
use crate::module::{Module, same_in_training};
use ferrograd_autodiff::{Tape, Tensor};
use ferrograd_device::ops::copy::CopyKernel;
use ferrograd_device::{Dtype, Error};
use ferrograd_shapes::Dim;

/// Joins every axis after the first into one: `(N, C, H, W)` → `(N, C·H·W)`, as
/// PyTorch's `nn.Flatten()` (`start_dim=1`, `end_dim=-1`), between the convolutions and
/// the linear layers of a CNN.
///
/// The joined axis is a run-time `usize` (stable Rust cannot multiply const generics);
/// a [`Linear`](crate::Linear) of const size takes it and checks its size when it runs.
/// The batch axis keeps its type. A view of contiguous data is reused, anything else
/// copied.
///
/// ```
/// use ferrograd_cpu::Cpu;
/// use ferrograd_nn::prelude::*;
///
/// let dev = Cpu::seed_from_u64(0);
/// let x: Tensor<Rank4<2, 3, 4, 5>, f32, Cpu> = dev.sample_normal();
/// let flat: Tensor<(Const<2>, usize), f32, Cpu> = Flatten.forward(x.clone());
/// assert_eq!(flat.dims(), [2, 60]);
/// assert_eq!(flat.as_vec(), x.as_vec());
/// // Into a Linear<60, 10>: its input size is checked when it runs.
/// let head = dev.build_module::<(Flatten, Linear<60, 10>), f32>();
/// assert_eq!(head.forward(x).dims(), [2, 10]);
/// let wrong: Tensor<Rank4<2, 3, 4, 4>, f32, Cpu> = dev.sample_normal();
/// let error = head.try_forward(wrong).unwrap_err();
/// assert_eq!(error.to_string(), "Linear: the input has 48 features (its last axis), the layer takes 60");
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Flatten;

macro_rules! flatten_rank {
    ($($rest:ident),+) => {
        /// `(N, …)` → `(N, product of the rest)`.
        impl<N: Dim, $($rest: Dim,)+ E: Dtype, D: CopyKernel<E>, T: Tape<E, D>> Module<Tensor<(N, $($rest,)+), E, D, T>>
            for Flatten
        {
            type Output = Tensor<(N, usize), E, D, T>;

            fn try_forward(&self, x: Tensor<(N, $($rest,)+), E, D, T>) -> Result<Self::Output, Error> {
                let dims = x.dims();
                let batch = x.shape().0;
                x.try_reshape_like(&(batch, dims[1..].iter().product::<usize>()))
            }
        }
    };
}

flatten_rank!(A);
flatten_rank!(A, B);
flatten_rank!(A, B, C);
flatten_rank!(A, B, C, F);
flatten_rank!(A, B, C, F, G);

parameter_free!(Flatten);
