//! Neural-network building blocks for ferrograd: modules and layers, losses, and
//! checkpoints that PyTorch reads, with PyTorch's defaults and `state_dict` names.
