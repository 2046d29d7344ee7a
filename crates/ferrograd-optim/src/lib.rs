//! Optimizers for ferrograd with PyTorch's defaults and update formulas.
