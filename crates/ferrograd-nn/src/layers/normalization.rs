//! Normalisations over each feature vector: `LayerNorm` and `RMSNorm`.

use crate::layers::features::FeaturesLast;
use crate::module::{BuildOnDevice, Module, same_in_training};
use ferrograd_autodiff::{
    MergeTapes, ParameterVisitor, ParameterVisitorMut, Tape, Tensor, TensorCreation, VisitParameters,
};
use ferrograd_device::ops::copy::CopyKernel;
use ferrograd_device::ops::elementwise::{
    Add, BinaryKernel, Mul, Recip, ScalarAdd, ScalarMul, Sqrt, Square, Sub, UnaryKernel,
};
use ferrograd_device::ops::reduce::SumKernel;
use ferrograd_device::{Dtype, Error, Storage};
use ferrograd_shapes::{Axis, Const, Dim};

/// The kernels a normalisation over feature vectors runs.
pub trait NormalizationKernels<E: Dtype>:
    TensorCreation<E>
    + CopyKernel<E>
    + SumKernel<E>
    + BinaryKernel<Add, E>
    + BinaryKernel<Sub, E>
    + BinaryKernel<Mul, E>
    + UnaryKernel<Square, E>
    + UnaryKernel<Sqrt, E>
    + UnaryKernel<Recip, E>
    + UnaryKernel<ScalarAdd<E>, E>
    + UnaryKernel<ScalarMul<E>, E>
{
}

impl<E: Dtype, D> NormalizationKernels<E> for D where
    D: TensorCreation<E>
        + CopyKernel<E>
        + SumKernel<E>
        + BinaryKernel<Add, E>
        + BinaryKernel<Sub, E>
        + BinaryKernel<Mul, E>
        + UnaryKernel<Square, E>
        + UnaryKernel<Sqrt, E>
        + UnaryKernel<Recip, E>
        + UnaryKernel<ScalarAdd<E>, E>
        + UnaryKernel<ScalarMul<E>, E>
{
}

/// Normalises each feature vector to mean 0 and variance 1 (the biased variance, plus
/// `eps`), then scales by `weight` and shifts by `bias`: PyTorch's
/// `nn.LayerNorm(F)` (eps 1e-5, weight ones, bias zeros; keys `weight`, `bias`).
///
/// ```
/// use ferrograd_cpu::Cpu;
/// use ferrograd_nn::prelude::*;
///
/// let dev = Cpu::default();
/// let norm = dev.build_module::<LayerNorm<4>, f64>();
/// let y = norm.forward(dev.tensor([[1.0, 2.0, 3.0, 4.0]])).array()[0];
/// let mean: f64 = y.iter().sum::<f64>() / 4.0;
/// let variance: f64 = y.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / 4.0;
/// assert!(mean.abs() < 1e-12 && (variance - 1.0).abs() < 1e-4);
/// ```
pub type LayerNorm<const F: usize> = LayerNormConfig<Const<F>>;

/// A [`LayerNorm`]'s size and options, as a type or from run-time values.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LayerNormConfig<F: Dim> {
    /// The features normalised together (the last axis).
    pub features: F,
    /// Added to the variance: PyTorch's default 1e-5.
    pub eps: f64,
    /// Whether there is a `weight` (PyTorch's `elementwise_affine`, default true).
    pub elementwise_affine: bool,
    /// Whether there is a `bias` when affine (default true).
    pub bias: bool,
}

impl<F: Dim> LayerNormConfig<F> {
    /// PyTorch's defaults for `features`.
    pub fn new(features: F) -> Self {
        Self {
            features,
            eps: 1e-5,
            elementwise_affine: true,
            bias: true,
        }
    }
}

impl<const F: usize> Default for LayerNormConfig<Const<F>> {
    fn default() -> Self {
        Self::new(Const)
    }
}

impl<F: Dim, E: Dtype, D: TensorCreation<E>> BuildOnDevice<E, D> for LayerNormConfig<F> {
    type Built = built::LayerNorm<F, E, D>;
    fn try_build_on_device(&self, device: &D) -> Result<Self::Built, Error> {
        let shape = (self.features,);
        let weight = match self.elementwise_affine {
            true => Some(device.try_ones_like(&shape)?),
            false => None,
        };
        let bias = match self.elementwise_affine && self.bias {
            true => Some(device.try_zeros_like(&shape)?),
            false => None,
        };
        Ok(built::LayerNorm {
            weight,
            bias,
            eps: self.eps,
        })
    }
}

/// Normalises each feature vector by its root mean square (plus `eps`), then scales by
/// `weight`: PyTorch's `nn.RMSNorm(F)` (eps: the dtype's machine epsilon unless given;
/// weight ones; key `weight`).
pub type RMSNorm<const F: usize> = RMSNormConfig<Const<F>>;

/// An [`RMSNorm`]'s size and options.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RMSNormConfig<F: Dim> {
    /// The features normalised together (the last axis).
    pub features: F,
    /// Added to the mean square; `None` is the dtype's machine epsilon, as PyTorch.
    pub eps: Option<f64>,
    /// Whether there is a `weight` (default true).
    pub elementwise_affine: bool,
}

impl<F: Dim> RMSNormConfig<F> {
    /// PyTorch's defaults for `features`.
    pub fn new(features: F) -> Self {
        Self {
            features,
            eps: None,
            elementwise_affine: true,
        }
    }
}

impl<const F: usize> Default for RMSNormConfig<Const<F>> {
    fn default() -> Self {
        Self::new(Const)
    }
}

impl<F: Dim, E: Dtype, D: TensorCreation<E>> BuildOnDevice<E, D> for RMSNormConfig<F> {
    type Built = built::RMSNorm<F, E, D>;
    fn try_build_on_device(&self, device: &D) -> Result<Self::Built, Error> {
        let weight = match self.elementwise_affine {
            true => Some(device.try_ones_like(&(self.features,))?),
            false => None,
        };
        // torch.finfo(dtype).eps
        let eps = self.eps.unwrap_or(if size_of::<E>() == 4 {
            f32::EPSILON as f64
        } else {
            f64::EPSILON
        });
        Ok(built::RMSNorm { weight, eps })
    }
}

/// Built normalisation layers.
pub mod built {
    use super::*;

    /// A built [`LayerNorm`](super::LayerNorm).
    #[derive(Clone, Debug)]
    pub struct LayerNorm<F: Dim, E: Dtype, D: Storage<E>> {
        /// `(F,)`, absent without `elementwise_affine`.
        pub weight: Option<Tensor<(F,), E, D>>,
        /// `(F,)`, absent without `elementwise_affine` or `bias`.
        pub bias: Option<Tensor<(F,), E, D>>,
        /// Added to the variance.
        pub eps: f64,
    }

    /// A built [`RMSNorm`](super::RMSNorm).
    #[derive(Clone, Debug)]
    pub struct RMSNorm<F: Dim, E: Dtype, D: Storage<E>> {
        /// `(F,)`, absent without `elementwise_affine`.
        pub weight: Option<Tensor<(F,), E, D>>,
        /// Added to the mean square.
        pub eps: f64,
    }

    impl<F: Dim, E: Dtype, D: Storage<E>> VisitParameters<E, D> for LayerNorm<F, E, D> {
        fn visit_parameters<V: ParameterVisitor<E, D>>(&self, visitor: &mut V) -> Result<(), Error> {
            if let Some(weight) = &self.weight {
                visitor.visit("weight", weight)?;
            }
            if let Some(bias) = &self.bias {
                visitor.visit("bias", bias)?;
            }
            Ok(())
        }
        fn visit_parameters_mut<V: ParameterVisitorMut<E, D>>(&mut self, visitor: &mut V) -> Result<(), Error> {
            if let Some(weight) = &mut self.weight {
                visitor.visit_mut("weight", weight)?;
            }
            if let Some(bias) = &mut self.bias {
                visitor.visit_mut("bias", bias)?;
            }
            Ok(())
        }
    }

    impl<F: Dim, E: Dtype, D: Storage<E>> VisitParameters<E, D> for RMSNorm<F, E, D> {
        fn visit_parameters<V: ParameterVisitor<E, D>>(&self, visitor: &mut V) -> Result<(), Error> {
            match &self.weight {
                Some(weight) => visitor.visit("weight", weight),
                None => Ok(()),
            }
        }
        fn visit_parameters_mut<V: ParameterVisitorMut<E, D>>(&mut self, visitor: &mut V) -> Result<(), Error> {
            match &mut self.weight {
                Some(weight) => visitor.visit_mut("weight", weight),
                None => Ok(()),
            }
        }
    }

    impl<S, F: Dim, E: Dtype, D: NormalizationKernels<E>, T> Module<Tensor<S, E, D, T>> for LayerNorm<F, E, D>
    where
        S: FeaturesLast<F>,
        T: Tape<E, D> + MergeTapes<T, Output = T>,
    {
        type Output = Tensor<S, E, D, T>;
        fn try_forward(&self, x: Tensor<S, E, D, T>) -> Result<Self::Output, Error> {
            let shape = *x.shape();
            let rows = (shape.rows(), shape.concrete()[S::NUM_DIMS - 1]);
            let x = x.try_reshape_like(&rows)?;
            let mean = x
                .clone()
                .try_mean::<(usize,), Axis<1>>()?
                .try_broadcast_like::<_, Axis<1>>(&rows)?;
            let centered = x.try_sub(mean)?;
            let variance = centered.clone().try_square()?.try_mean::<(usize,), Axis<1>>()?;
            let inverse_deviation = variance
                .try_add_scalar(E::from_f64(self.eps))?
                .try_sqrt()?
                .try_recip()?
                .try_broadcast_like::<_, Axis<1>>(&rows)?;
            let normalized = centered.try_mul(inverse_deviation)?;
            scale_and_shift(normalized, self.weight.as_ref(), self.bias.as_ref())?.try_reshape_like(&shape)
        }
    }

    impl<S, F: Dim, E: Dtype, D: NormalizationKernels<E>, T> Module<Tensor<S, E, D, T>> for RMSNorm<F, E, D>
    where
        S: FeaturesLast<F>,
        T: Tape<E, D> + MergeTapes<T, Output = T>,
    {
        type Output = Tensor<S, E, D, T>;
        fn try_forward(&self, x: Tensor<S, E, D, T>) -> Result<Self::Output, Error> {
            let shape = *x.shape();
            let rows = (shape.rows(), shape.concrete()[S::NUM_DIMS - 1]);
            let x = x.try_reshape_like(&rows)?;
            let inverse_rms = x
                .clone()
                .try_square()?
                .try_mean::<(usize,), Axis<1>>()?
                .try_add_scalar(E::from_f64(self.eps))?
                .try_sqrt()?
                .try_recip()?
                .try_broadcast_like::<_, Axis<1>>(&rows)?;
            let normalized = x.try_mul(inverse_rms)?;
            scale_and_shift(normalized, self.weight.as_ref(), None)?.try_reshape_like(&shape)
        }
    }

    /// `x · weight + bias` over rows of features, each factor optional.
    fn scale_and_shift<F: Dim, E: Dtype, D: NormalizationKernels<E>, T: Tape<E, D>>(
        x: Tensor<(usize, usize), E, D, T>,
        weight: Option<&Tensor<(F,), E, D>>,
        bias: Option<&Tensor<(F,), E, D>>,
    ) -> Result<Tensor<(usize, usize), E, D, T>, Error> {
        let rows = *x.shape();
        let as_row = |p: &Tensor<(F,), E, D>| -> Result<Tensor<(usize, usize), E, D>, Error> {
            p.clone()
                .try_reshape_like(&(rows.1,))?
                .try_broadcast_like::<_, Axis<0>>(&rows)
        };
        let x = match weight {
            Some(weight) => x.try_mul(as_row(weight)?)?,
            None => x,
        };
        match bias {
            Some(bias) => x.try_add(as_row(bias)?),
            None => Ok(x),
        }
    }

    same_in_training!([F: Dim, E: Dtype, D: Storage<E>] LayerNorm<F, E, D>);
    same_in_training!([F: Dim, E: Dtype, D: Storage<E>] RMSNorm<F, E, D>);
}
