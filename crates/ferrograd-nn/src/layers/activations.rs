//! Activation layers: parameter-free unit structs (PyTorch's `nn.ReLU()` …), each its
//! own architecture and built module.

use crate::module::{Module, same_in_training};
use ferrograd_autodiff::{Tape, Tensor};
use ferrograd_device::ops::elementwise::{self as op, UnaryKernel};
use ferrograd_device::ops::softmax::SoftmaxKernel;
use ferrograd_device::{Dtype, Error};
use ferrograd_shapes::{Axis, Dim, Shape};

/// Building (to itself) and visiting (nothing), for a parameter-free layer; generics
/// (`[const K: usize]`) before the type where it has some.
macro_rules! parameter_free_but_training {
    ([$($generics:tt)*] $layer:ty) => {
        impl<$($generics)* E: ferrograd_device::Dtype, D: ferrograd_device::Storage<E>> $crate::BuildOnDevice<E, D> for $layer {
            type Built = Self;
            fn try_build_on_device(&self, _: &D) -> Result<Self, ferrograd_device::Error> {
                Ok(self.clone())
            }
        }

        impl<$($generics)* E: ferrograd_device::Dtype, D: ferrograd_device::Storage<E>>
            ferrograd_autodiff::VisitParameters<E, D> for $layer
        {
            fn visit_parameters<V: ferrograd_autodiff::ParameterVisitor<E, D>>(
                &self,
                _: &mut V,
            ) -> Result<(), ferrograd_device::Error> {
                Ok(())
            }
            fn visit_parameters_mut<V: ferrograd_autodiff::ParameterVisitorMut<E, D>>(
                &mut self,
                _: &mut V,
            ) -> Result<(), ferrograd_device::Error> {
                Ok(())
            }
        }
    };
    ($layer:ty) => {
        parameter_free_but_training!([] $layer);
    };
}
pub(crate) use parameter_free_but_training;

/// [`parameter_free_but_training`], for a layer that trains as it infers.
macro_rules! parameter_free {
    ([$($generics:tt)*] $layer:ty) => {
        parameter_free_but_training!([$($generics)*] $layer);
        same_in_training!([$($generics)*] $layer);
    };
    ($layer:ty) => {
        parameter_free!([] $layer);
    };
}
pub(crate) use parameter_free;

/// An element-wise activation as a layer over any shape.
macro_rules! elementwise_activation {
    ($(#[$doc:meta])* $layer:ident => $op:ty, |$this:ident, $x:ident| $apply:expr) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, Default, PartialEq)]
        pub struct $layer;

        impl<S: Shape, E: Dtype, D: UnaryKernel<$op, E>, T: Tape<E, D>> Module<Tensor<S, E, D, T>> for $layer {
            type Output = Tensor<S, E, D, T>;
            fn try_forward(&self, $x: Tensor<S, E, D, T>) -> Result<Self::Output, Error> {
                let $this = self;
                let _ = $this;
                $apply
            }
        }

        parameter_free!($layer);
    };
}

elementwise_activation!(
    /// `max(x, 0)`, PyTorch's `nn.ReLU`.
    ReLU => op::Relu, |_this, x| x.try_relu()
);
elementwise_activation!(
    /// `x·Φ(x)` with the exact normal CDF, PyTorch's `nn.GELU()`.
    GELU => op::Gelu, |_this, x| x.try_gelu()
);
elementwise_activation!(
    /// GELU's tanh approximation, PyTorch's `nn.GELU(approximate="tanh")`.
    GELUTanh => op::GeluTanh, |_this, x| x.try_gelu_tanh()
);
elementwise_activation!(
    /// `x·σ(x)`, PyTorch's `nn.SiLU`.
    SiLU => op::Silu, |_this, x| x.try_silu()
);
elementwise_activation!(
    /// `1 / (1 + e^(-x))`, PyTorch's `nn.Sigmoid`.
    Sigmoid => op::Sigmoid, |_this, x| x.try_sigmoid()
);
elementwise_activation!(
    /// `tanh(x)`, PyTorch's `nn.Tanh`.
    Tanh => op::Tanh, |_this, x| x.try_tanh()
);

/// `x` where positive, `negative_slope·x` elsewhere: PyTorch's `nn.LeakyReLU`, whose
/// default slope is 0.01.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LeakyReLU {
    /// The slope for negative inputs.
    pub negative_slope: f64,
}

impl Default for LeakyReLU {
    fn default() -> Self {
        Self { negative_slope: 0.01 }
    }
}

impl<S: Shape, E: Dtype, D: UnaryKernel<op::LeakyRelu<E>, E>, T: Tape<E, D>> Module<Tensor<S, E, D, T>> for LeakyReLU {
    type Output = Tensor<S, E, D, T>;
    fn try_forward(&self, x: Tensor<S, E, D, T>) -> Result<Self::Output, Error> {
        x.try_leaky_relu(E::from_f64(self.negative_slope))
    }
}

parameter_free!(LeakyReLU);

/// A normalisation over the last axis (PyTorch's `nn.Softmax(dim=-1)` and
/// `nn.LogSoftmax(dim=-1)`), for ranks 1 to 4.
macro_rules! last_axis_normalisation {
    ($(#[$doc:meta])* $layer:ident, $method:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, Default, PartialEq)]
        pub struct $layer;

        last_axis_normalisation!(@rank $layer, $method, Axis<0>, A);
        last_axis_normalisation!(@rank $layer, $method, Axis<1>, A, B);
        last_axis_normalisation!(@rank $layer, $method, Axis<2>, A, B, C);
        last_axis_normalisation!(@rank $layer, $method, Axis<3>, A, B, C, F);

        parameter_free!($layer);
    };
    (@rank $layer:ident, $method:ident, $axis:ty, $($dim:ident),+) => {
        impl<$($dim: Dim,)+ E: Dtype, D: SoftmaxKernel<E>, T: Tape<E, D>> Module<Tensor<($($dim,)+), E, D, T>> for $layer {
            type Output = Tensor<($($dim,)+), E, D, T>;
            fn try_forward(&self, x: Tensor<($($dim,)+), E, D, T>) -> Result<Self::Output, Error> {
                x.$method::<$axis>()
            }
        }
    };
}

last_axis_normalisation!(
    /// `exp(x) / Σ exp(x)` over the last axis, PyTorch's `nn.Softmax(dim=-1)`.
    Softmax, try_softmax
);
last_axis_normalisation!(
    /// `x − log Σ exp(x)` over the last axis, PyTorch's `nn.LogSoftmax(dim=-1)`.
    LogSoftmax, try_log_softmax
);
