//! ferrograd's device layer: element types, storage, the kernel traits every device
//! implements (one per op family), and the [`Error`] type.
//!
//! Nothing here knows about gradient tapes: a device crate (`ferrograd-cpu`,
//! `ferrograd-cuda`) implements these traits on raw buffers read through a [`Layout`] ([`View`]), and
//! `ferrograd-autodiff` builds differentiable tensors on top.

pub mod capabilities;
mod dtype;
mod error;
pub mod math;
pub mod ops;
mod storage;
pub mod view;

pub use dtype::{Dtype, Float, Unit};
pub use error::Error;
pub use ferrograd_shapes::Layout;
pub use storage::{Input, SampleKernel, Storage};
pub use view::{BufferLength, GradientSlot, InputView, OptionalView, View, ViewMut};

/// What a function generic over the device needs: the capability groups, the element
/// types, storage, views and the error. `use ferrograd_device::prelude::*;`
pub mod prelude {
    pub use crate::capabilities::{ArithmeticKernels, ConvolutionKernels, TrainingKernels};
    pub use crate::{Dtype, Error, Float, Storage, Unit, View, ViewMut};
}
