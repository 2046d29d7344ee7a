//! `BatchNorm1D`: normalisation by each channel's statistics over the batch.

use crate::layers::normalization::NormalizationKernels;
use crate::module::{BuildOnDevice, Module, ModuleMut};
use ferrograd_autodiff::{
    MergeTapes, NoneTape, ParameterVisitor, ParameterVisitorMut, Tape, Tensor, TensorCreation, VisitParameters,
};
use ferrograd_device::{Dtype, Error, Storage};
use ferrograd_shapes::{Axes3, Axis, Const, Dim};

/// Normalises each of `C` channels by its mean and variance, over the batch in
/// training and from running statistics at inference: PyTorch's `nn.BatchNorm1d(C)`
/// (eps 1e-5, momentum 0.1, weight ones, bias zeros; buffers `running_mean` zeros,
/// `running_var` ones and the counter `num_batches_tracked`, all in its `state_dict`).
/// It takes `(N, C)` or `(N, C, L)`.
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
pub type BatchNorm1D<const C: usize> = BatchNorm1DConfig<Const<C>>;

/// A [`BatchNorm1D`]'s channels and options.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BatchNorm1DConfig<C: Dim> {
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

impl<C: Dim> BatchNorm1DConfig<C> {
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

impl<const C: usize> Default for BatchNorm1DConfig<Const<C>> {
    fn default() -> Self {
        Self::new(Const)
    }
}

impl<C: Dim, E: Dtype, D: TensorCreation<E>> BuildOnDevice<E, D> for BatchNorm1DConfig<C> {
    type Built = built::BatchNorm1D<C, E, D>;
    fn try_build_on_device(&self, device: &D) -> Result<Self::Built, Error> {
        if let Some(momentum) = self.momentum
            && !(0.0..=1.0).contains(&momentum)
        {
            return Err(Error::InvalidArgument {
                op: "BatchNorm1D",
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
        Ok(built::BatchNorm1D {
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

    /// A built [`BatchNorm1D`](super::BatchNorm1D).
    #[derive(Clone, Debug)]
    pub struct BatchNorm1D<C: Dim, E: Dtype, D: Storage<E>> {
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
        /// See [`BatchNorm1DConfig::momentum`](super::BatchNorm1DConfig::momentum).
        pub momentum: Option<f64>,
        /// See [`BatchNorm1DConfig::track_running_stats`](super::BatchNorm1DConfig::track_running_stats).
        pub track_running_stats: bool,
    }

    impl<C: Dim, E: Dtype, D: Storage<E>> VisitParameters<E, D> for BatchNorm1D<C, E, D> {
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

    impl<C: Dim, E: Dtype, D: NormalizationKernels<E>> BatchNorm1D<C, E, D> {
        /// Normalises `(rows, C)` by the batch's statistics, returning them too (the
        /// mean and the biased variance, untraced) for the running statistics.
        #[allow(clippy::type_complexity)] // a tensor and its two statistics
        fn by_batch<T: Tape<E, D> + MergeTapes<T, Output = T>>(
            &self,
            x: Tensor<(usize, usize), E, D, T>,
        ) -> Result<
            (
                Tensor<(usize, usize), E, D, T>,
                Tensor<(usize,), E, D>,
                Tensor<(usize,), E, D>,
            ),
            Error,
        > {
            let rows = *x.shape();
            if rows.0 < 2 {
                return Err(Error::InvalidArgument {
                    op: "BatchNorm1D",
                    message: format!(
                        "expected more than 1 value per channel when training, got {} (PyTorch refuses too)",
                        rows.0
                    ),
                });
            }
            let mean = x.clone().try_mean::<(usize,), Axis<0>>()?;
            let centered = x.try_sub(mean.clone().try_broadcast_like::<_, Axis<0>>(&rows)?)?;
            let variance = centered.clone().try_square()?.try_mean::<(usize,), Axis<0>>()?;
            let (mean, variance_values) = (mean.detach(), variance.detach());
            let inverse_deviation = variance
                .try_add_scalar(E::from_f64(self.eps))?
                .try_sqrt()?
                .try_recip()?
                .try_broadcast_like::<_, Axis<0>>(&rows)?;
            Ok((centered.try_mul(inverse_deviation)?, mean, variance_values))
        }

        /// Normalises `(rows, C)` by the running statistics.
        fn by_running<T: Tape<E, D>>(
            &self,
            x: Tensor<(usize, usize), E, D, T>,
        ) -> Result<Tensor<(usize, usize), E, D, T>, Error> {
            let rows = *x.shape();
            let channels = (rows.1,);
            let mean = self.running_mean.clone().try_reshape_like(&channels)?;
            let inverse_deviation = self
                .running_var
                .clone()
                .try_reshape_like(&channels)?
                .try_add_scalar(E::from_f64(self.eps))?
                .try_sqrt()?
                .try_recip()?;
            x.try_sub(mean.try_broadcast_like::<_, Axis<0>>(&rows)?)?
                .try_mul(inverse_deviation.try_broadcast_like::<_, Axis<0>>(&rows)?)
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

        fn scale_and_shift<T: Tape<E, D>>(
            &self,
            x: Tensor<(usize, usize), E, D, T>,
        ) -> Result<Tensor<(usize, usize), E, D, T>, Error> {
            let rows = *x.shape();
            let (Some(weight), Some(bias)) = (&self.weight, &self.bias) else {
                return Ok(x);
            };
            let as_rows = |p: &Tensor<(C,), E, D>| -> Result<Tensor<(usize, usize), E, D, NoneTape>, Error> {
                p.clone()
                    .try_reshape_like(&(rows.1,))?
                    .try_broadcast_like::<_, Axis<0>>(&rows)
            };
            x.try_mul(as_rows(weight)?)?.try_add(as_rows(bias)?)
        }

        /// The input as rows of channels, and how to put the result back.
        fn check_channels(&self, channels: usize) -> Result<(), Error> {
            let expected = self.running_mean.layout().dims()[0];
            if channels != expected {
                return Err(Error::ShapeMismatch {
                    op: "BatchNorm1D",
                    message: format!("the input has {channels} channels (axis 1); the layer has {expected}"),
                });
            }
            Ok(())
        }
    }

    /// `(N, C)`, at inference.
    impl<N: Dim, C: Dim, E: Dtype, D: NormalizationKernels<E>, T> Module<Tensor<(N, C), E, D, T>> for BatchNorm1D<C, E, D>
    where
        T: Tape<E, D> + MergeTapes<T, Output = T>,
    {
        type Output = Tensor<(N, C), E, D, T>;
        fn try_forward(&self, x: Tensor<(N, C), E, D, T>) -> Result<Self::Output, Error> {
            let shape = *x.shape();
            let rows = (shape.0.size(), shape.1.size());
            self.check_channels(rows.1)?;
            let x = x.try_reshape_like(&rows)?;
            let normalized = match self.track_running_stats {
                true => self.by_running(x)?,
                false => self.by_batch(x)?.0,
            };
            self.scale_and_shift(normalized)?.try_reshape_like(&shape)
        }
    }

    /// `(N, C)`, in training: batch statistics, running statistics updated.
    impl<N: Dim, C: Dim, E: Dtype, D: NormalizationKernels<E>, T> ModuleMut<Tensor<(N, C), E, D, T>>
        for BatchNorm1D<C, E, D>
    where
        T: Tape<E, D> + MergeTapes<T, Output = T>,
    {
        type Output = Tensor<(N, C), E, D, T>;
        fn try_forward_mut(&mut self, x: Tensor<(N, C), E, D, T>) -> Result<Self::Output, Error> {
            let shape = *x.shape();
            let rows = (shape.0.size(), shape.1.size());
            self.check_channels(rows.1)?;
            let (normalized, mean, variance) = self.by_batch(x.try_reshape_like(&rows)?)?;
            if self.track_running_stats {
                self.update_running(mean, variance, rows.0)?;
            }
            self.scale_and_shift(normalized)?.try_reshape_like(&shape)
        }
    }

    /// `(N, C, L)`, at inference: statistics over `N` and `L`.
    impl<N: Dim, C: Dim, L: Dim, E: Dtype, D: NormalizationKernels<E>, T> Module<Tensor<(N, C, L), E, D, T>>
        for BatchNorm1D<C, E, D>
    where
        T: Tape<E, D> + MergeTapes<T, Output = T>,
    {
        type Output = Tensor<(N, C, L), E, D, T>;
        fn try_forward(&self, x: Tensor<(N, C, L), E, D, T>) -> Result<Self::Output, Error> {
            let (n, c, l) = *x.shape();
            self.check_channels(c.size())?;
            // Channels last, as rows: (N·L, C).
            let rows = (n.size() * l.size(), c.size());
            let x = x.permute::<Axes3<0, 2, 1>>().try_reshape_like(&rows)?;
            let normalized = match self.track_running_stats {
                true => self.by_running(x)?,
                false => self.by_batch(x)?.0,
            };
            self.scale_and_shift(normalized)?
                .try_reshape_like(&(n, l, c))
                .map(|x| x.permute::<Axes3<0, 2, 1>>())
        }
    }

    /// `(N, C, L)`, in training.
    impl<N: Dim, C: Dim, L: Dim, E: Dtype, D: NormalizationKernels<E>, T> ModuleMut<Tensor<(N, C, L), E, D, T>>
        for BatchNorm1D<C, E, D>
    where
        T: Tape<E, D> + MergeTapes<T, Output = T>,
    {
        type Output = Tensor<(N, C, L), E, D, T>;
        fn try_forward_mut(&mut self, x: Tensor<(N, C, L), E, D, T>) -> Result<Self::Output, Error> {
            let (n, c, l) = *x.shape();
            self.check_channels(c.size())?;
            let rows = (n.size() * l.size(), c.size());
            let x = x.permute::<Axes3<0, 2, 1>>().try_reshape_like(&rows)?;
            let (normalized, mean, variance) = self.by_batch(x)?;
            if self.track_running_stats {
                self.update_running(mean, variance, rows.0)?;
            }
            self.scale_and_shift(normalized)?
                .try_reshape_like(&(n, l, c))
                .map(|x| x.permute::<Axes3<0, 2, 1>>())
        }
    }
}
