//! Neural-network building blocks for ferrograd: modules and layers, losses, and
//! checkpoints that PyTorch reads, with PyTorch's defaults and `state_dict` names.
//!
//! [`losses`]: PyTorch's loss functions (`mse_loss`, `cross_entropy`, `kl_div`, …), each
//! with mean, sum and unreduced forms.

pub mod losses;
