//! `BatchNorm1D` and `BatchNorm2D`: normalisation by each channel's statistics over
//! the batch.

use crate::layers::normalization::NormalizationKernels;
use crate::module::{BuildOnDevice, Module, ModuleMut};
use ferrograd_autodiff::{
    MergeTapes, ParameterVisitor, ParameterVisitorMut, Tape, Tensor, TensorCreation, VisitParameters,
};
use ferrograd_device::{Dtype, Error, Storage};
use ferrograd_shapes::{Axes2, Const, Dim, Shape};

/// Normalises each of `C` channels by its mean and variance, over the batch in
/// training and from running statistics at inference: PyTorch's `nn.BatchNorm1d(C)`
/// (eps 1e-5, momentum 0.1, weight ones, bias zeros; buffers `running_mean` zeros,
/// `running_var` ones and the counter `num_batches_tracked`, all in its `state_dict`).
/// It takes `(N, C)` or `(N, C, L)`; [`BatchNorm2D`] is the same layer for images.
///
/// ```
/// use ferrograd_cpu::Cpu;
/// use ferrograd_nn::prelude::*;
///
/// let dev = Cpu::default();
/// let mut norm = dev.build_module::<BatchNorm1D<2>, f64>();
/// let x = dev.tensor([[1.0, 10.0], [3.0, 30.0]]);
/// // Training: each channel normalised over the batch (biased variance 1 and 100);
/// // the running statistics move 10% of the way to the batch's.
/// let y = norm.forward_mut(x.clone()).array();
/// let expected = [[-1.0 / (1.0f64 + 1e-5).sqrt(), -10.0 / (100.0f64 + 1e-5).sqrt()]];
/// assert!((y[0][0] - expected[0][0]).abs() < 1e-12 && (y[0][1] - expected[0][1]).abs() < 1e-12);
/// assert_eq!(norm.running_mean.array(), [0.2, 2.0]);
/// assert_eq!(norm.num_batches_tracked, 1);
/// // Inference: the running statistics.
/// let y = norm.forward(x).array();
/// assert!((y[0][0] - (1.0 - 0.2) / (norm.running_var.array()[0] + 1e-5).sqrt()).abs() < 1e-12);
/// ```
pub type BatchNorm1D<const C: usize> = BatchNormConfig<Const<C>>;

/// Normalises each of `C` channels of images `(N, C, H, W)` by its mean and variance
/// over the batch and the pixels in training, and by running statistics at inference:
/// PyTorch's `nn.BatchNorm2d(C)`, with [`BatchNorm1D`]'s defaults, parameters and
/// buffers (the two are one layer; the name says what it is for).
///
/// ```
/// use ferrograd_cpu::Cpu;
/// use ferrograd_nn::prelude::*;
///
/// let dev = Cpu::default();
/// let mut norm = dev.build_module::<BatchNorm2D<3>, f64>();
/// let x: Tensor<Rank4<4, 3, 5, 5>, f64, Cpu> = dev.sample_normal();
/// let y = norm.forward_mut(x).array();
/// // Training: each channel has mean 0 over the batch and the pixels.
/// let channel_sum: f64 = y.iter().flat_map(|image| image[1].iter().flatten()).sum();
/// assert!(channel_sum.abs() < 1e-9);
/// assert_eq!(norm.num_batches_tracked, 1);
/// ```
pub type BatchNorm2D<const C: usize> = BatchNormConfig<Const<C>>;

/// [`BatchNormConfig`], by the name of the 1-d layer.
pub type BatchNorm1DConfig<C> = BatchNormConfig<C>;

/// [`BatchNormConfig`], by the name of the 2-d layer.
pub type BatchNorm2DConfig<C> = BatchNormConfig<C>;

/// A [`BatchNorm1D`]'s or [`BatchNorm2D`]'s channels and options.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BatchNormConfig<C: Dim> {
    /// The channels (axis 1 of the input).
    pub num_features: C,
    /// Added to the variance: 1e-5.
    pub eps: f64,
    /// How far each training batch moves the running statistics: 0.1; `None` keeps
    /// their cumulative average instead.
    pub momentum: Option<f64>,
    /// Whether there are a `weight` and a `bias` (default true).
    pub affine: bool,
    /// Whether running statistics are kept and used at inference (default true);
    /// without, inference normalises by the batch too.
    pub track_running_stats: bool,
}

impl<C: Dim> BatchNormConfig<C> {
    /// PyTorch's defaults for `num_features` channels.
    pub fn new(num_features: C) -> Self {
        Self {
            num_features,
            eps: 1e-5,
            momentum: Some(0.1),
            affine: true,
            track_running_stats: true,
        }
    }
}

impl<const C: usize> Default for BatchNormConfig<Const<C>> {
    fn default() -> Self {
        Self::new(Const)
    }
}

impl<C: Dim, E: Dtype, D: TensorCreation<E>> BuildOnDevice<E, D> for BatchNormConfig<C> {
    type Built = built::BatchNorm<C, E, D>;
    fn try_build_on_device(&self, device: &D) -> Result<Self::Built, Error> {
        if let Some(momentum) = self.momentum
            && !(0.0..=1.0).contains(&momentum)
        {
            return Err(Error::InvalidArgument {
                op: "BatchNorm",
                message: format!("momentum must be in [0, 1], got {momentum}"),
            });
        }
        let shape = (self.num_features,);
        let (weight, bias) = match self.affine {
            true => (
                Some(device.try_ones_like(&shape)?),
                Some(device.try_zeros_like(&shape)?),
            ),
            false => (None, None),
        };
        Ok(built::BatchNorm {
            weight,
            bias,
            running_mean: device.try_zeros_like(&shape)?,
            running_var: device.try_ones_like(&shape)?,
            num_batches_tracked: 0,
            eps: self.eps,
            momentum: self.momentum,
            track_running_stats: self.track_running_stats,
        })
    }
}

/// Built batch norms.
pub mod built {
    use super::*;

    /// A built [`BatchNorm1D`](super::BatchNorm1D) or [`BatchNorm2D`](super::BatchNorm2D).
    #[derive(Clone, Debug)]
    pub struct BatchNorm<C: Dim, E: Dtype, D: Storage<E>> {
        /// `(C,)`, absent without `affine`.
        pub weight: Option<Tensor<(C,), E, D>>,
        /// `(C,)`, absent without `affine`.
        pub bias: Option<Tensor<(C,), E, D>>,
        /// Each channel's running mean (a buffer: saved, not trained).
        pub running_mean: Tensor<(C,), E, D>,
        /// Each channel's running unbiased variance (a buffer).
        pub running_var: Tensor<(C,), E, D>,
        /// Training batches seen.
        pub num_batches_tracked: u64,
        /// Added to the variance.
        pub eps: f64,
        /// See [`BatchNormConfig::momentum`](super::BatchNormConfig::momentum).
        pub momentum: Option<f64>,
        /// See [`BatchNormConfig::track_running_stats`](super::BatchNormConfig::track_running_stats).
        pub track_running_stats: bool,
    }

    /// A built [`BatchNorm1D`](super::BatchNorm1D).
    pub type BatchNorm1D<C, E, D> = BatchNorm<C, E, D>;

    /// A built [`BatchNorm2D`](super::BatchNorm2D).
    pub type BatchNorm2D<C, E, D> = BatchNorm<C, E, D>;

    impl<C: Dim, E: Dtype, D: Storage<E>> VisitParameters<E, D> for BatchNorm<C, E, D> {
        fn visit_parameters<V: ParameterVisitor<E, D>>(&self, visitor: &mut V) -> Result<(), Error> {
            if let (Some(weight), Some(bias)) = (&self.weight, &self.bias) {
                visitor.visit("weight", weight)?;
                visitor.visit("bias", bias)?;
            }
            if self.track_running_stats {
                visitor.visit_buffer("running_mean", &self.running_mean)?;
                visitor.visit_buffer("running_var", &self.running_var)?;
                visitor.visit_count("num_batches_tracked", self.num_batches_tracked)?;
            }
            Ok(())
        }

        fn visit_parameters_mut<V: ParameterVisitorMut<E, D>>(&mut self, visitor: &mut V) -> Result<(), Error> {
            if let (Some(weight), Some(bias)) = (&mut self.weight, &mut self.bias) {
                visitor.visit_mut("weight", weight)?;
                visitor.visit_mut("bias", bias)?;
            }
            if self.track_running_stats {
                visitor.visit_buffer_mut("running_mean", &mut self.running_mean)?;
                visitor.visit_buffer_mut("running_var", &mut self.running_var)?;
                visitor.visit_count_mut("num_batches_tracked", &mut self.num_batches_tracked)?;
            }
            Ok(())
        }
    }

    /// The input seen as `(N, C, R)`, its other axes joined (free for contiguous data).
    type Planes<E, D, T> = Tensor<(usize, usize, usize), E, D, T>;

    impl<C: Dim, E: Dtype, D: NormalizationKernels<E>> BatchNorm<C, E, D> {
        /// The batch's statistics: the mean and the biased variance of each channel,
        /// over the batch and the other axes.
        #[allow(clippy::type_complexity)] // the normalised input and two statistics
        fn by_batch<T: Tape<E, D> + MergeTapes<T, Output = T>>(
            &self,
            x: Planes<E, D, T>,
        ) -> Result<(Planes<E, D, T>, Tensor<(usize,), E, D>, Tensor<(usize,), E, D>), Error> {
            let shape = *x.shape();
            let count = shape.0 * shape.2;
            if count < 2 {
                return Err(Error::InvalidArgument {
                    op: "BatchNorm",
                    message: format!(
                        "expected more than 1 value per channel when training, got {count} (PyTorch refuses too)"
                    ),
                });
            }
            let mean = x.clone().try_mean::<(usize,), Axes2<0, 2>>()?;
            let centered = x.try_sub(mean.clone().try_broadcast_like::<_, Axes2<0, 2>>(&shape)?)?;
            let variance = centered.clone().try_square()?.try_mean::<(usize,), Axes2<0, 2>>()?;
            let (mean, variance_values) = (mean.detach(), variance.clone().detach());
            let inverse_deviation = variance
                .try_add_scalar(E::from_f64(self.eps))?
                .try_sqrt()?
                .try_recip()?;
            // The weight joins the per-channel factor, so the input is scaled once.
            let factor = match &self.weight {
                Some(weight) => inverse_deviation.try_mul(weight.clone().try_reshape_like(&(shape.1,))?)?,
                None => inverse_deviation,
            };
            let normalized = centered.try_mul(factor.try_broadcast_like::<_, Axes2<0, 2>>(&shape)?)?;
            let shifted = match &self.bias {
                Some(bias) => normalized.try_add(
                    bias.clone()
                        .try_reshape_like(&(shape.1,))?
                        .try_broadcast_like::<_, Axes2<0, 2>>(&shape)?,
                )?,
                None => normalized,
            };
            Ok((shifted, mean, variance_values))
        }

        /// Normalises by the running statistics.
        fn by_running<T: Tape<E, D>>(&self, x: Planes<E, D, T>) -> Result<Planes<E, D, T>, Error> {
            let shape = *x.shape();
            let channels = (shape.1,);
            let inverse_deviation = self
                .running_var
                .clone()
                .try_reshape_like(&channels)?
                .try_add_scalar(E::from_f64(self.eps))?
                .try_sqrt()?
                .try_recip()?;
            let mean = self.running_mean.clone().try_reshape_like(&channels)?;
            let per_channel = |p: Tensor<(usize,), E, D>| p.try_broadcast_like::<_, Axes2<0, 2>>(&shape);
            if !T::TRACING {
                // Inference proper: one scale and one shift per channel, two passes.
                let scale = match &self.weight {
                    Some(weight) => inverse_deviation.try_mul(weight.clone().try_reshape_like(&channels)?)?,
                    None => inverse_deviation,
                };
                let offset = mean.try_mul(scale.clone())?;
                let shift = match &self.bias {
                    Some(bias) => bias.clone().try_reshape_like(&channels)?.try_sub(offset)?,
                    None => offset.try_mul_scalar(E::from_f64(-1.0))?,
                };
                return x.try_mul(per_channel(scale)?)?.try_add(per_channel(shift)?);
            }
            // Traced (fine-tuning in eval mode): the weight and bias meet the traced
            // input, so that their gradients are recorded.
            let shift = mean
                .try_mul(inverse_deviation.clone())?
                .try_mul_scalar(E::from_f64(-1.0))?;
            let normalized = x
                .try_mul(per_channel(inverse_deviation)?)?
                .try_add(per_channel(shift)?)?;
            let (Some(weight), Some(bias)) = (&self.weight, &self.bias) else {
                return Ok(normalized);
            };
            normalized
                .try_mul(per_channel(weight.clone().try_reshape_like(&channels)?)?)?
                .try_add(per_channel(bias.clone().try_reshape_like(&channels)?)?)
        }

        /// Moves the running statistics towards a training batch's (PyTorch stores the
        /// unbiased variance).
        fn update_running(
            &mut self,
            mean: Tensor<(usize,), E, D>,
            biased_variance: Tensor<(usize,), E, D>,
            count: usize,
        ) -> Result<(), Error> {
            self.num_batches_tracked += 1;
            let factor = match self.momentum {
                Some(momentum) => momentum,
                None => 1.0 / self.num_batches_tracked as f64,
            };
            let unbiased = biased_variance.try_mul_scalar(E::from_f64(count as f64 / (count - 1) as f64))?;
            let blend =
                |running: &Tensor<(C,), E, D>, batch: Tensor<(usize,), E, D>| -> Result<Tensor<(C,), E, D>, Error> {
                    let shape = *running.shape();
                    let kept = running.clone().try_mul_scalar(E::from_f64(1.0 - factor))?;
                    let moved = batch.try_mul_scalar(E::from_f64(factor))?.try_reshape_like(&shape)?;
                    kept.try_add(moved)
                };
            // In place, so that the buffers keep their ids.
            let new_mean = blend(&self.running_mean, mean)?;
            let new_var = blend(&self.running_var, unbiased)?;
            *self.running_mean.storage_mut() = new_mean.storage().clone();
            *self.running_var.storage_mut() = new_var.storage().clone();
            Ok(())
        }

        /// `x` (`(N, C, …)`) as `(N, C, R)`, after checking its channels.
        fn planes<S: Shape, T: Tape<E, D>>(&self, x: Tensor<S, E, D, T>) -> Result<Planes<E, D, T>, Error> {
            let dims = x.dims();
            let dims = dims.as_ref();
            let expected = self.running_mean.layout().dims()[0];
            if dims[1] != expected {
                return Err(Error::ShapeMismatch {
                    op: "BatchNorm",
                    message: format!("the input has {} channels (axis 1); the layer has {expected}", dims[1]),
                });
            }
            x.try_reshape_like(&(dims[0], dims[1], dims[2..].iter().product::<usize>()))
        }

        /// Normalises `x` by the running statistics (inference), or by the batch's
        /// when none are kept.
        fn infer<S: Shape, T: Tape<E, D> + MergeTapes<T, Output = T>>(
            &self,
            x: Tensor<S, E, D, T>,
        ) -> Result<Tensor<S, E, D, T>, Error> {
            let shape = *x.shape();
            let planes = self.planes(x)?;
            let normalized = match self.track_running_stats {
                true => self.by_running(planes)?,
                false => self.by_batch(planes)?.0,
            };
            normalized.try_reshape_like(&shape)
        }

        /// Normalises `x` by the batch's statistics and updates the running ones.
        fn train<S: Shape, T: Tape<E, D> + MergeTapes<T, Output = T>>(
            &mut self,
            x: Tensor<S, E, D, T>,
        ) -> Result<Tensor<S, E, D, T>, Error> {
            let shape = *x.shape();
            let planes = self.planes(x)?;
            let count = planes.shape().0 * planes.shape().2;
            let (normalized, mean, variance) = self.by_batch(planes)?;
            if self.track_running_stats {
                self.update_running(mean, variance, count)?;
            }
            normalized.try_reshape_like(&shape)
        }
    }

    macro_rules! batch_norm_input {
        ($($doc:literal: ($($dim:ident),+)),+ $(,)?) => {$(
            #[doc = $doc]
            #[doc = ", at inference: normalised by the running statistics."]
            impl<N: Dim, C: Dim, $($dim: Dim,)* E: Dtype, D: NormalizationKernels<E>, T>
                Module<Tensor<(N, C, $($dim,)*), E, D, T>> for BatchNorm<C, E, D>
            where
                T: Tape<E, D> + MergeTapes<T, Output = T>,
            {
                type Output = Tensor<(N, C, $($dim,)*), E, D, T>;
                fn try_forward(&self, x: Tensor<(N, C, $($dim,)*), E, D, T>) -> Result<Self::Output, Error> {
                    self.infer(x)
                }
            }

            #[doc = $doc]
            #[doc = ", in training: normalised by the batch's statistics, which update the running ones."]
            impl<N: Dim, C: Dim, $($dim: Dim,)* E: Dtype, D: NormalizationKernels<E>, T>
                ModuleMut<Tensor<(N, C, $($dim,)*), E, D, T>> for BatchNorm<C, E, D>
            where
                T: Tape<E, D> + MergeTapes<T, Output = T>,
            {
                type Output = Tensor<(N, C, $($dim,)*), E, D, T>;
                fn try_forward_mut(&mut self, x: Tensor<(N, C, $($dim,)*), E, D, T>) -> Result<Self::Output, Error> {
                    self.train(x)
                }
            }
        )+};
    }

    batch_norm_input!(
        "`(N, C, L)` (`BatchNorm1d`'s sequences)": (L),
        "`(N, C, H, W)` (`BatchNorm2d`)": (H, W),
    );

    /// `(N, C)` (`BatchNorm1d`'s features), at inference.
    impl<N: Dim, C: Dim, E: Dtype, D: NormalizationKernels<E>, T> Module<Tensor<(N, C), E, D, T>> for BatchNorm<C, E, D>
    where
        T: Tape<E, D> + MergeTapes<T, Output = T>,
    {
        type Output = Tensor<(N, C), E, D, T>;
        fn try_forward(&self, x: Tensor<(N, C), E, D, T>) -> Result<Self::Output, Error> {
            self.infer(x)
        }
    }

    /// `(N, C)`, in training.
    impl<N: Dim, C: Dim, E: Dtype, D: NormalizationKernels<E>, T> ModuleMut<Tensor<(N, C), E, D, T>> for BatchNorm<C, E, D>
    where
        T: Tape<E, D> + MergeTapes<T, Output = T>,
    {
        type Output = Tensor<(N, C), E, D, T>;
        fn try_forward_mut(&mut self, x: Tensor<(N, C), E, D, T>) -> Result<Self::Output, Error> {
            self.train(x)
        }
    }
}
