//! `Embedding`: a table of vectors looked up by index.

use crate::layers::features::shape_from_dims;
use crate::module::{BuildOnDevice, Module, same_in_training};
use ferrograd_autodiff::{
    BackwardContext, ParameterVisitor, ParameterVisitorMut, SampleTensor, SparseGrad, Tape, Tensor, VisitParameters,
};
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
///
/// # Sparse gradients
///
/// Built with [`EmbeddingConfig::sparse`] (PyTorch's `sparse=True`), the weight's
/// gradient is row-sparse: the rows looked up, each once with its lookups' gradients
/// summed ([`SparseGrad`]), and no `N × M` buffer is ever allocated for it. Gradients
/// allocated with `try_alloc_grads` hold it; `Sgd`, `Adagrad` and `SparseAdam` update
/// only those rows, and optimizers that cannot (Adam, RMSprop) refuse it by name.
///
/// ```
/// use ferrograd_cpu::Cpu;
/// use ferrograd_nn::prelude::*;
/// use ferrograd_nn::EmbeddingConfig;
///
/// let dev = Cpu::seed_from_u64(0);
/// let embedding = dev.build_module_with::<_, f32>(EmbeddingConfig::<Const<100_000>, Const<4>>::default().sparse(true));
/// let ids: Tensor<Rank1<3>, usize, Cpu> = dev.tensor([7, 3, 7]);
/// let grads = embedding.forward(ids.traced_indices(embedding.try_alloc_grads()?)).sum::<Rank0, _>().backward();
/// let grad = grads.sparse_grad(&embedding.weight).expect("a sparse gradient");
/// assert_eq!(grad.indices(), &[3, 7]);
/// assert_eq!(&grad.values()[..], &[1.0, 1.0, 1.0, 1.0, 2.0, 2.0, 2.0, 2.0]);
/// # Ok::<(), Error>(())
/// ```
pub type Embedding<const N: usize, const M: usize> = EmbeddingConfig<Const<N>, Const<M>>;

/// An [`Embedding`]'s sizes, padding index and gradient layout.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EmbeddingConfig<N: Dim, M: Dim> {
    /// How many vectors (the largest index plus one).
    pub num_embeddings: N,
    /// Features per vector.
    pub embedding_dim: M,
    /// The index whose vector is zero at first and never trained (PyTorch's
    /// `padding_idx`; negative indices are written `N - k` here).
    pub padding_idx: Option<usize>,
    /// Whether the weight's gradient is row-sparse (PyTorch's `sparse`); off by default.
    pub sparse: bool,
}

impl<N: Dim, M: Dim> EmbeddingConfig<N, M> {
    /// A table of `num_embeddings` vectors of `embedding_dim` features.
    pub fn new(num_embeddings: N, embedding_dim: M) -> Self {
        Self {
            num_embeddings,
            embedding_dim,
            padding_idx: None,
            sparse: false,
        }
    }

    /// The same table with a row-sparse gradient when `sparse` (PyTorch's
    /// `nn.Embedding(…, sparse=True)`); see [`Embedding`]'s section on sparse gradients.
    pub fn sparse(self, sparse: bool) -> Self {
        Self { sparse, ..self }
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
            sparse: self.sparse,
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
        /// Whether the weight's gradient is row-sparse.
        pub sparse: bool,
    }

    impl<N: Dim, M: Dim, E: Dtype, D: Storage<E>> VisitParameters<E, D> for Embedding<N, M, E, D> {
        fn visit_parameters<V: ParameterVisitor<E, D>>(&self, visitor: &mut V) -> Result<(), Error> {
            match self.sparse {
                true => visitor.visit_sparse("weight", &self.weight),
                false => visitor.visit("weight", &self.weight),
            }
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
            let ids = indices.try_as_vec()?;
            let flat = Tensor::try_from_storage(device.try_from_host(ids.clone())?, (count,), device)?;
            if self.sparse {
                let rows = self.try_lookup_sparse(&flat, ids, tape)?;
                let mut dims = indices.layout().dims().to_vec();
                dims.push(self.weight.layout().dims()[1]);
                return rows.try_reshape_like(&shape_from_dims("Embedding", &dims)?);
            }
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

    impl<N: Dim, M: Dim, E: Dtype, D: Storage<E>> Embedding<N, M, E, D> {
        /// The rows `ids` (also on the device as `flat`) of the weight, recording a
        /// backward step that hands the weight a row-sparse gradient. The padding row's
        /// lookups are left out of it, which is all `padding_idx` asks here: the
        /// forward values are the weight's rows either way.
        fn try_lookup_sparse<T: Tape<E, D>>(
            &self,
            flat: &Tensor<(usize,), usize, D>,
            ids: Vec<usize>,
            tape: T,
        ) -> Result<Tensor<(usize, M), E, D, T>, Error>
        where
            D: GatherKernel<E> + ScatterAddKernel<E>,
        {
            let weight = &self.weight;
            let (num_rows, row_len) = (weight.layout().dims()[0], weight.layout().dims()[1]);
            if !weight.layout().is_contiguous() || <D as Storage<E>>::len(weight.storage()) != num_rows * row_len {
                return Err(Error::InvalidArgument {
                    op: "Embedding",
                    message: format!(
                        "a sparse embedding needs a contiguous weight (its rows are the gradient's rows), got strides {:?}",
                        weight.strides()
                    ),
                });
            }
            let input = weight.op_input();
            let rows = weight.clone().try_index_select::<0, usize>(flat)?;
            let padding = self.padding_idx;
            Ok(rows
                .put_tape(tape)
                .record_op(&[input], move |ctx: &mut BackwardContext<'_, E, D>| {
                    if !ctx.wants(0) {
                        return Ok(());
                    }
                    let device = ctx.device().clone();
                    let mut values = device.try_to_host(ctx.grad_output())?;
                    let mut ids = ids;
                    if let Some(padding) = padding {
                        // Keep the other lookups' rows, in order, in place.
                        let mut kept = 0;
                        for k in 0..ids.len() {
                            if ids[k] != padding {
                                ids[kept] = ids[k];
                                values.copy_within(k * row_len..(k + 1) * row_len, kept * row_len);
                                kept += 1;
                            }
                        }
                        ids.truncate(kept);
                        values.truncate(kept * row_len);
                    }
                    let grad = SparseGrad::try_from_rows(&device, num_rows, row_len, &ids, &values)?;
                    ctx.add_sparse_grad(0, grad)
                }))
        }
    }

    same_in_training!([N: Dim, M: Dim, E: Dtype, D: Storage<E>] Embedding<N, M, E, D>);
}
