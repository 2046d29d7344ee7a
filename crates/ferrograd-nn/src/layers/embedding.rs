//! `Embedding`: a table of vectors looked up by index.

use crate::layers::features::shape_from_dims;
use crate::module::{BuildOnDevice, Module, same_in_training};
use ferrograd_autodiff::{ParameterVisitor, ParameterVisitorMut, SampleTensor, Tape, Tensor, VisitParameters};
use ferrograd_device::ops::compare::{ChooseKernel, CompareKernel};
use ferrograd_device::ops::copy::CopyKernel;
use ferrograd_device::ops::index::{GatherKernel, ScatterAddKernel};
use ferrograd_device::{Dtype, Error, SampleKernel, Storage};
use ferrograd_shapes::{AppendAxis, Axis, Const, Dim, Shape};
use rand_distr::Distribution;
use rand_distr::StandardNormal;

/// `N` vectors of `M` features, looked up by index: PyTorch's `nn.Embedding(N, M)`
/// (weight `(N, M)` drawn from N(0, 1); key `weight`). Indices of any shape `S` give
/// `S` with `M` appended. With a `padding_idx`, that row starts at zero and gets no
/// gradient, as in PyTorch.
///
/// Indices carry the tape of a training step with
/// [`traced_indices`](ferrograd_autodiff::Tensor::traced_indices):
///
/// ```
/// use ferrograd_cpu::Cpu;
/// use ferrograd_nn::prelude::*;
/// use ferrograd_nn::EmbeddingConfig;
///
/// let dev = Cpu::seed_from_u64(0);
/// let embedding = dev.build_module_with::<_, f32>(EmbeddingConfig::<Const<10>, Const<4>>::default().padding_idx(0));
/// let ids: Tensor<Rank2<2, 3>, usize, Cpu> = dev.tensor([[0, 3, 3], [9, 0, 1]]);
/// let vectors = embedding.forward(ids.clone().traced_indices(embedding.try_alloc_grads()?));
/// assert_eq!(vectors.dims(), [2, 3, 4]);
/// let grads = vectors.sum::<Rank0, _>().backward();
/// assert_eq!(grads.get(&embedding.weight).array()[3], [2.0; 4]);
/// assert_eq!(grads.get(&embedding.weight).array()[0], [0.0; 4]);
/// # Ok::<(), Error>(())
/// ```
pub type Embedding<const N: usize, const M: usize> = EmbeddingConfig<Const<N>, Const<M>>;

/// An [`Embedding`]'s sizes and padding index.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EmbeddingConfig<N: Dim, M: Dim> {
    /// How many vectors (the largest index plus one).
    pub num_embeddings: N,
    /// Features per vector.
    pub embedding_dim: M,
    /// The index whose vector is zero at first and never trained (PyTorch's
    /// `padding_idx`; negative indices are written `N - k` here).
    pub padding_idx: Option<usize>,
}

impl<N: Dim, M: Dim> EmbeddingConfig<N, M> {
    /// A table of `num_embeddings` vectors of `embedding_dim` features.
    pub fn new(num_embeddings: N, embedding_dim: M) -> Self {
        Self {
            num_embeddings,
            embedding_dim,
            padding_idx: None,
        }
    }

    /// The same table with a padding index.
    pub fn padding_idx(self, index: usize) -> Self {
        Self {
            padding_idx: Some(index),
            ..self
        }
    }
}

impl<const N: usize, const M: usize> Default for EmbeddingConfig<Const<N>, Const<M>> {
    fn default() -> Self {
        Self::new(Const, Const)
    }
}

impl<N: Dim, M: Dim, E: Dtype, D> BuildOnDevice<E, D> for EmbeddingConfig<N, M>
where
    D: SampleKernel<E>,
    StandardNormal: Distribution<E>,
{
    type Built = built::Embedding<N, M, E, D>;
    fn try_build_on_device(&self, device: &D) -> Result<Self::Built, Error> {
        let rows = self.num_embeddings.size();
        if let Some(padding) = self.padding_idx
            && padding >= rows
        {
            return Err(Error::InvalidArgument {
                op: "Embedding",
                message: format!("padding_idx {padding} is not below num_embeddings {rows}"),
            });
        }
        let mut weight = device.try_sample_like(&(self.num_embeddings, self.embedding_dim), StandardNormal)?;
        if let Some(padding) = self.padding_idx {
            let mut values = weight.try_as_vec()?;
            let width = self.embedding_dim.size();
            values[padding * width..(padding + 1) * width].fill(E::ZERO);
            *weight.storage_mut() = device.try_from_host(values)?;
        }
        Ok(built::Embedding {
            weight,
            padding_idx: self.padding_idx,
        })
    }
}

/// Built embeddings.
pub mod built {
    use super::*;

    /// A built [`Embedding`](super::Embedding).
    #[derive(Clone, Debug)]
    pub struct Embedding<N: Dim, M: Dim, E: Dtype, D: Storage<E>> {
        /// `(N, M)`: row `i` is index `i`'s vector.
        pub weight: Tensor<(N, M), E, D>,
        /// The row that gets no gradient.
        pub padding_idx: Option<usize>,
    }

    impl<N: Dim, M: Dim, E: Dtype, D: Storage<E>> VisitParameters<E, D> for Embedding<N, M, E, D> {
        fn visit_parameters<V: ParameterVisitor<E, D>>(&self, visitor: &mut V) -> Result<(), Error> {
            visitor.visit("weight", &self.weight)
        }
        fn visit_parameters_mut<V: ParameterVisitorMut<E, D>>(&mut self, visitor: &mut V) -> Result<(), Error> {
            visitor.visit_mut("weight", &mut self.weight)
        }
    }

    impl<S, N: Dim, M: Dim, E: Dtype, D, T> Module<Tensor<S, usize, D, T>> for Embedding<N, M, E, D>
    where
        S: Shape + AppendAxis<M>,
        D: GatherKernel<E> + ScatterAddKernel<E> + CopyKernel<E> + ChooseKernel<E> + CompareKernel<usize>,
        T: Tape<E, D>,
    {
        type Output = Tensor<<S as AppendAxis<M>>::Appended, E, D, T>;

        fn try_forward(&self, indices: Tensor<S, usize, D, T>) -> Result<Self::Output, Error> {
            let (indices, tape) = indices.split_tape();
            let device = indices.device().clone();
            let count = indices.num_elements();
            let flat = Tensor::try_from_storage(device.try_from_host(indices.try_as_vec()?)?, (count,), device)?;
            let rows = self.weight.clone().put_tape(tape).try_index_select::<0, usize>(&flat)?;
            let rows = match self.padding_idx {
                None => rows,
                Some(padding) => {
                    // The padding row's value without its gradient: the same forward.
                    let frozen = self.weight.clone().try_index_select::<0, usize>(&flat)?;
                    let trained = flat
                        .try_ne_scalar(padding)?
                        .try_broadcast_like::<_, Axis<1>>(rows.shape())?;
                    trained.try_choose(rows, frozen)?
                }
            };
            let mut dims = indices.layout().dims().to_vec();
            dims.push(self.weight.layout().dims()[1]);
            rows.try_reshape_like(&shape_from_dims("Embedding", &dims)?)
        }
    }

    same_in_training!([N: Dim, M: Dim, E: Dtype, D: Storage<E>] Embedding<N, M, E, D>);
}
