//! `GroupNorm`: normalisation over groups of channels of each sample.

use crate::layers::normalization::NormalizationKernels;
use crate::module::{BuildOnDevice, Module, same_in_training};
use ferrograd_autodiff::{
    MergeTapes, ParameterVisitor, ParameterVisitorMut, Tape, Tensor, TensorCreation, VisitParameters,
};
use ferrograd_device::{Dtype, Error, Storage};
use ferrograd_shapes::{Axes2, Axis, Const, Dim, Shape};

/// Splits the `C` channels of each sample into `G` groups and normalises each group to
/// mean 0 and variance 1 (biased, plus `eps`) over its channels and positions, then
/// scales and shifts each channel: PyTorch's `nn.GroupNorm(G, C)` (eps 1e-5, `weight`
/// ones and `bias` zeros of `(C,)`). The same in training and at inference. It takes
/// `(N, C)`, `(N, C, L)` or `(N, C, H, W)`; `G` must divide `C`.
///
/// ```
/// use ferrograd_cpu::Cpu;
/// use ferrograd_nn::prelude::*;
///
/// let dev = Cpu::default();
/// let norm = dev.build_module::<GroupNorm<2, 4>, f64>();
/// let x = dev.tensor([[[1.0, 3.0], [5.0, 7.0], [0.0, 0.0], [2.0, 2.0]]]);
/// let y = norm.forward(x).array()[0];
/// // Group 0 holds 1, 3, 5, 7 (mean 4, variance 5); group 1 holds 0, 0, 2, 2.
/// let expected = -3.0 / (5.0f64 + 1e-5).sqrt();
/// assert!((y[0][0] - expected).abs() < 1e-12);
/// assert!((y[3][1] - 1.0 / (1.0f64 + 1e-5).sqrt()).abs() < 1e-12);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GroupNorm<const G: usize, const C: usize>;

/// A [`GroupNorm`]'s sizes (channels as a type or a run-time value) and options.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct GroupNormConfig<C: Dim> {
    /// Groups the channels are split into.
    pub num_groups: usize,
    /// Channels (axis 1 of the input).
    pub num_channels: C,
    /// Added to the variance: 1e-5.
    pub eps: f64,
    /// Whether there are a `weight` and a `bias` (default true).
    pub affine: bool,
}

impl<C: Dim> GroupNormConfig<C> {
    /// PyTorch's defaults for `num_groups` groups of `num_channels` channels.
    pub fn new(num_groups: usize, num_channels: C) -> Self {
        Self {
            num_groups,
            num_channels,
            eps: 1e-5,
            affine: true,
        }
    }
}

impl<const G: usize, const C: usize> From<GroupNorm<G, C>> for GroupNormConfig<Const<C>> {
    fn from(_: GroupNorm<G, C>) -> Self {
        Self::new(G, Const)
    }
}

impl<C: Dim, E: Dtype, D: TensorCreation<E>> BuildOnDevice<E, D> for GroupNormConfig<C> {
    type Built = built::GroupNorm<C, E, D>;

    fn try_build_on_device(&self, device: &D) -> Result<Self::Built, Error> {
        let channels = self.num_channels.size();
        if self.num_groups == 0 || !channels.is_multiple_of(self.num_groups) {
            return Err(Error::InvalidArgument {
                op: "GroupNorm",
                message: format!(
                    "the {channels} channels must be divisible by the number of groups, {}",
                    self.num_groups
                ),
            });
        }
        let shape = (self.num_channels,);
        let (weight, bias) = match self.affine {
            true => (
                Some(device.try_ones_like(&shape)?),
                Some(device.try_zeros_like(&shape)?),
            ),
            false => (None, None),
        };
        Ok(built::GroupNorm {
            weight,
            bias,
            num_groups: self.num_groups,
            eps: self.eps,
        })
    }
}

impl<const G: usize, const C: usize, E: Dtype, D: TensorCreation<E>> BuildOnDevice<E, D> for GroupNorm<G, C> {
    type Built = built::GroupNorm<Const<C>, E, D>;

    fn try_build_on_device(&self, device: &D) -> Result<Self::Built, Error> {
        GroupNormConfig::from(*self).try_build_on_device(device)
    }
}

/// Built group norms.
pub mod built {
    use super::*;

    /// A built [`GroupNorm`](super::GroupNorm).
    #[derive(Clone, Debug)]
    pub struct GroupNorm<C: Dim, E: Dtype, D: Storage<E>> {
        /// `(C,)`, absent without `affine`.
        pub weight: Option<Tensor<(C,), E, D>>,
        /// `(C,)`, absent without `affine`.
        pub bias: Option<Tensor<(C,), E, D>>,
        /// Groups the channels are split into.
        pub num_groups: usize,
        /// Added to the variance.
        pub eps: f64,
    }

    impl<C: Dim, E: Dtype, D: Storage<E>> VisitParameters<E, D> for GroupNorm<C, E, D> {
        fn visit_parameters<V: ParameterVisitor<E, D>>(&self, visitor: &mut V) -> Result<(), Error> {
            if let (Some(weight), Some(bias)) = (&self.weight, &self.bias) {
                visitor.visit("weight", weight)?;
                visitor.visit("bias", bias)?;
            }
            Ok(())
        }

        fn visit_parameters_mut<V: ParameterVisitorMut<E, D>>(&mut self, visitor: &mut V) -> Result<(), Error> {
            if let (Some(weight), Some(bias)) = (&mut self.weight, &mut self.bias) {
                visitor.visit_mut("weight", weight)?;
                visitor.visit_mut("bias", bias)?;
            }
            Ok(())
        }
    }

    impl<C: Dim, E: Dtype, D: NormalizationKernels<E>> GroupNorm<C, E, D> {
        fn normalize<S: Shape, T: Tape<E, D> + MergeTapes<T, Output = T>>(
            &self,
            x: Tensor<S, E, D, T>,
        ) -> Result<Tensor<S, E, D, T>, Error> {
            let shape = *x.shape();
            let dims = x.dims();
            let dims = dims.as_ref();
            let (batch, channels) = (dims[0], dims[1]);
            let positions: usize = dims[2..].iter().product();
            let groups = self.num_groups;
            if groups == 0 || !channels.is_multiple_of(groups) {
                return Err(Error::ShapeMismatch {
                    op: "GroupNorm",
                    message: format!("the input has {channels} channels (axis 1), which {groups} groups do not divide"),
                });
            }
            if let Some(weight) = &self.weight
                && weight.layout().dims()[0] != channels
            {
                return Err(Error::ShapeMismatch {
                    op: "GroupNorm",
                    message: format!(
                        "the input has {channels} channels (axis 1); the layer has {}",
                        weight.layout().dims()[0]
                    ),
                });
            }
            let grouped_shape = (batch, groups, channels / groups * positions);
            let grouped = x.try_reshape_like(&grouped_shape)?;
            let mean = grouped.clone().try_mean::<(usize, usize), Axis<2>>()?;
            let centered = grouped.try_sub(mean.try_broadcast_like::<_, Axis<2>>(&grouped_shape)?)?;
            let inverse_deviation = centered
                .clone()
                .try_square()?
                .try_mean::<(usize, usize), Axis<2>>()?
                .try_add_scalar(E::from_f64(self.eps))?
                .try_sqrt()?
                .try_recip()?;
            let normalized = centered.try_mul(inverse_deviation.try_broadcast_like::<_, Axis<2>>(&grouped_shape)?)?;
            let (Some(weight), Some(bias)) = (&self.weight, &self.bias) else {
                return normalized.try_reshape_like(&shape);
            };
            let planes = (batch, channels, positions);
            let per_channel = |p: &Tensor<(C,), E, D>| {
                p.clone()
                    .try_reshape_like(&(channels,))?
                    .try_broadcast_like::<_, Axes2<0, 2>>(&planes)
            };
            normalized
                .try_reshape_like(&planes)?
                .try_mul(per_channel(weight)?)?
                .try_add(per_channel(bias)?)?
                .try_reshape_like(&shape)
        }
    }

    macro_rules! group_norm_input {
        ($($doc:literal: ($($dim:ident),*)),+ $(,)?) => {$(
            #[doc = $doc]
            impl<N: Dim, C: Dim, $($dim: Dim,)* E: Dtype, D: NormalizationKernels<E>, T>
                Module<Tensor<(N, C, $($dim,)*), E, D, T>> for GroupNorm<C, E, D>
            where
                T: Tape<E, D> + MergeTapes<T, Output = T>,
            {
                type Output = Tensor<(N, C, $($dim,)*), E, D, T>;
                fn try_forward(&self, x: Tensor<(N, C, $($dim,)*), E, D, T>) -> Result<Self::Output, Error> {
                    self.normalize(x)
                }
            }
        )+};
    }

    group_norm_input!(
        "`(N, C)`.": (),
        "`(N, C, L)`.": (L),
        "`(N, C, H, W)`.": (H, W),
    );

    same_in_training!([C: Dim, E: Dtype, D: Storage<E>] GroupNorm<C, E, D>);
}
