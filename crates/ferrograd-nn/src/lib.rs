//! Neural-network building blocks for ferrograd: modules and layers, losses, and
//! checkpoints that PyTorch reads, with PyTorch's defaults and `state_dict` names.
//!
//! An architecture is a type free of device and dtype — a layer such as
//! [`Linear<784, 128>`](Linear), or a tuple of them run in sequence (PyTorch's
//! `nn.Sequential`, whose parameters it names the same way: `0.weight`, `2.bias`).
//! Building it on a device gives the model, with its parameters initialised as PyTorch
//! initialises them:
//!
//! ```
//! use ferrograd_cpu::Cpu;
//! use ferrograd_nn::prelude::*;
//!
//! type Mlp = (Linear<784, 128>, ReLU, Linear<128, 10>);
//!
//! let dev = Cpu::seed_from_u64(0);
//! let mlp = dev.build_module::<Mlp, f32>();
//! assert_eq!(mlp.parameter_names()?, ["0.weight", "0.bias", "2.weight", "2.bias"]);
//!
//! // Training: trace the input with gradients for the parameters, run forward_mut.
//! let mut mlp = mlp;
//! let x: Tensor<Rank2<16, 784>, f32, Cpu> = dev.sample_normal();
//! let grads = mlp.try_alloc_grads()?;
//! let logits = mlp.forward_mut(x.traced_input(grads));
//! let grads = logits.square().mean::<Rank0, _>().backward();
//! assert_eq!(grads.get(&mlp.0.weight).dims(), [128, 784]);
//! # Ok::<(), Error>(())
//! ```
//!
//! [`losses`] holds PyTorch's loss functions (`mse_loss`, `cross_entropy`, `kl_div`, …),
//! each with mean, sum and unreduced forms.
//!
//! Consecutive layers whose sizes disagree (`(Linear<784, 128>, Linear<64, 10>)`) do not
//! compile: the error says which layer cannot take which input.

pub mod checkpoint;
mod init;
pub mod layers;
pub mod losses;
mod module;
mod tuples;

#[cfg(feature = "safetensors")]
pub use checkpoint::SafetensorsCheckpoint;
pub use checkpoint::{Checkpoint, LoadOptions, LoadReport};
pub use layers::*;
pub use module::{BuildModule, BuildOnDevice, Built, Module, ModuleMut};

/// The built modules (the types that hold tensors), by the name of their architecture.
pub mod built {
    pub use crate::layers::attention::built::MultiHeadAttention;
    pub use crate::layers::batch_norm::built::{BatchNorm, BatchNorm1D, BatchNorm2D};
    pub use crate::layers::conv::built::{Conv1D, Conv2D, ConvTranspose2D};
    pub use crate::layers::embedding::built::Embedding;
    pub use crate::layers::group_norm::built::GroupNorm;
    pub use crate::layers::linear::built::Linear;
    pub use crate::layers::normalization::built::{LayerNorm, RMSNorm};
    pub use crate::layers::transformer::built::{
        Transformer, TransformerDecoder, TransformerDecoderLayer, TransformerEncoder, TransformerEncoderLayer,
    };
}

/// Everything a model definition needs: the autodiff prelude, the layers and the
/// module traits.
pub mod prelude {
    pub use crate::layers::*;
    pub use crate::{BuildModule, BuildOnDevice, Built, Checkpoint, Module, ModuleMut};
    pub use ferrograd_autodiff::prelude::*;
    pub use ferrograd_autodiff::{
        Conv1dOptions, Conv2dOptions, ConvTranspose2dOptions, Interpolation, Padding, Padding1d, Pool1dOptions,
        Pool2dOptions, UpsampleSize,
    };
}
