//! `MultiHeadAttention`: scaled dot-product attention over several heads, PyTorch's
//! `nn.MultiheadAttention(embed_dim, num_heads, batch_first=True)`, with its masks.

use crate::layers::linear::built::Linear;
use crate::module::{BuildOnDevice, Module, ModuleMut};
use ferrograd_autodiff::{
    MergeTapes, ParameterVisitor, ParameterVisitorMut, Prefixed, Tape, Tensor, TensorCreation, VisitParameters,
};
use ferrograd_device::ops::compare::ChooseKernel;
use ferrograd_device::ops::copy::CopyKernel;
use ferrograd_device::ops::dropout::DropoutKernel;
use ferrograd_device::ops::elementwise::{Add, BinaryKernel, Mul, ScalarMul, UnaryKernel};
use ferrograd_device::ops::matmul::MatmulKernel;
use ferrograd_device::ops::reduce::SumKernel;
use ferrograd_device::ops::softmax::SoftmaxKernel;
use ferrograd_device::{Dtype, Error, SampleKernel, Storage};
use ferrograd_shapes::{Axes2, Axes4, Axis, Const, Dim};
use rand::Rng;
use rand::distr::Distribution;

/// The kernels attention runs: products, softmax, masks, dropout and the copies that
/// gather the heads back together.
pub trait AttentionKernels<E: Dtype>:
    MatmulKernel<E>
    + SoftmaxKernel<E>
    + CopyKernel<E>
    + SumKernel<E>
    + ChooseKernel<E>
    + SampleKernel<E>
    + DropoutKernel<E>
    + BinaryKernel<Add, E>
    + BinaryKernel<Mul, E>
    + UnaryKernel<ScalarMul<E>, E>
{
}

impl<E: Dtype, D> AttentionKernels<E> for D where
    D: MatmulKernel<E>
        + SoftmaxKernel<E>
        + CopyKernel<E>
        + SumKernel<E>
        + ChooseKernel<E>
        + SampleKernel<E>
        + DropoutKernel<E>
        + BinaryKernel<Add, E>
        + BinaryKernel<Mul, E>
        + UnaryKernel<ScalarMul<E>, E>
{
}

/// Attention over `H` heads of `M / H` features each, on sequences of `M`-feature
/// vectors: PyTorch's `nn.MultiheadAttention(M, H, batch_first=True)` (no dropout by
/// default; keys `in_proj_weight (3M, M)`, `in_proj_bias (3M,)`, `out_proj.weight`,
/// `out_proj.bias`), initialised as PyTorch does: `in_proj_weight` Xavier-uniform,
/// both biases zero, `out_proj.weight` as a [`Linear`](crate::Linear)'s.
///
/// Inputs are batch-first, `(batch, sequence, M)`, or one sequence `(sequence, M)`. A
/// single tensor is self-attention; a tuple `(query, key, value)` attends from the
/// query to keys and values of another length. Masks go through
/// [`try_forward_masked`](crate::built::MultiHeadAttention::try_forward_masked), the
/// averaged attention weights come from
/// [`try_forward_with_weights`](crate::built::MultiHeadAttention::try_forward_with_weights).
/// In training ([`ModuleMut`]) the attention weights go through dropout with
/// probability `dropout`.
///
/// ```
/// use ferrograd_cpu::Cpu;
/// use ferrograd_nn::prelude::*;
/// use ferrograd_nn::AttentionMasks;
///
/// let dev = Cpu::seed_from_u64(0);
/// let mha = dev.build_module::<MultiHeadAttention<8, 2>, f32>();
/// assert_eq!(
///     mha.parameter_names()?,
///     ["in_proj_weight", "in_proj_bias", "out_proj.weight", "out_proj.bias"]
/// );
///
/// let x: Tensor<Rank3<4, 5, 8>, f32, Cpu> = dev.sample_normal();
/// let memory: Tensor<Rank3<4, 7, 8>, f32, Cpu> = dev.sample_normal();
/// let y = mha.forward(x.clone()); // self-attention
/// let z = mha.forward((x.clone(), memory.clone(), memory)); // cross-attention
/// assert_eq!((y.dims(), z.dims()), ([4, 5, 8], [4, 5, 8]));
///
/// // Each position sees itself and the positions before it only.
/// let causal = mha.forward_masked(x.clone(), x.clone(), x, &AttentionMasks::new().causal());
/// # let _ = causal;
/// # Ok::<(), Error>(())
/// ```
///
/// A head count that does not divide the embedding does not build:
///
/// ```compile_fail
/// use ferrograd_cpu::Cpu;
/// use ferrograd_nn::prelude::*;
/// let mha = Cpu::default().build_module::<MultiHeadAttention<6, 4>, f32>();
/// ```
pub type MultiHeadAttention<const M: usize, const H: usize> = MultiHeadAttentionConfig<Const<M>, Const<H>>;

/// A [`MultiHeadAttention`]'s sizes and options, as types or run-time values
/// (`MultiHeadAttentionConfig::new(512, 8)`, whose head count is checked when built).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MultiHeadAttentionConfig<M: Dim, H: Dim> {
    /// Features of each query, key and value vector (PyTorch's `embed_dim`).
    pub embed_dim: M,
    /// How many heads share the features; must divide `embed_dim`.
    pub num_heads: H,
    /// The probability of dropping an attention weight in training (default 0).
    pub dropout: f64,
    /// Whether the projections add biases (default true).
    pub bias: bool,
}

impl<M: Dim, H: Dim> MultiHeadAttentionConfig<M, H> {
    /// `num_heads` heads over `embed_dim` features, without dropout, with biases.
    pub fn new(embed_dim: M, num_heads: H) -> Self {
        Self {
            embed_dim,
            num_heads,
            dropout: 0.0,
            bias: true,
        }
    }

    /// The same attention with dropout `p` on its weights in training.
    pub fn with_dropout(self, p: f64) -> Self {
        Self { dropout: p, ..self }
    }

    /// The same attention without biases (PyTorch's `bias=False`).
    pub fn without_bias(self) -> Self {
        Self { bias: false, ..self }
    }

    /// The error that `num_heads` does not divide `embed_dim`, or that `dropout` is not a
    /// probability.
    pub(crate) fn check(&self) -> Result<(), Error> {
        let (embed, heads) = (self.embed_dim.size(), self.num_heads.size());
        if heads == 0 || !embed.is_multiple_of(heads) {
            return Err(Error::InvalidArgument {
                op: "MultiHeadAttention",
                message: format!("embed_dim {embed} is not divisible by num_heads {heads}"),
            });
        }
        check_probability("MultiHeadAttention", self.dropout)
    }
}

/// `Err` unless `p` is a probability.
pub(crate) fn check_probability(op: &'static str, p: f64) -> Result<(), Error> {
    match (0.0..=1.0).contains(&p) {
        true => Ok(()),
        false => Err(Error::InvalidArgument {
            op,
            message: format!("dropout probability must be in [0, 1], got {p}"),
        }),
    }
}

impl<const M: usize, const H: usize> Default for MultiHeadAttentionConfig<Const<M>, Const<H>> {
    fn default() -> Self {
        const {
            assert!(
                H > 0 && M.is_multiple_of(H),
                "MultiHeadAttention<M, H>: the number of heads H must divide the embedding size M"
            )
        };
        Self::new(Const, Const)
    }
}

/// Uniform values in `[-bound, bound)`, for any dtype (drawn in f64, then rounded).
#[derive(Clone, Copy, Debug)]
struct Symmetric {
    bound: f64,
}

impl<E: Dtype> Distribution<E> for Symmetric {
    fn sample<R: Rng + ?Sized>(&self, rng: &mut R) -> E {
        let unit: f64 = rand::distr::StandardUniform.sample(rng);
        E::from_f64(self.bound * (2.0 * unit - 1.0))
    }
}

/// PyTorch's `xavier_uniform_` for a `(rows, columns)` matrix: `U(±√(6 / (rows + columns)))`.
pub(crate) fn xavier_uniform<E: Dtype, D: SampleKernel<E>>(
    device: &D,
    rows: usize,
    columns: usize,
) -> Result<D::Vec, Error> {
    let fans = rows + columns;
    let bound = if fans == 0 { 0.0 } else { (6.0 / fans as f64).sqrt() };
    device.try_sample(rows * columns, Symmetric { bound })
}

impl<M: Dim, H: Dim, E: Dtype, D: SampleKernel<E>> BuildOnDevice<E, D> for MultiHeadAttentionConfig<M, H> {
    type Built = built::MultiHeadAttention<M, H, E, D>;

    fn try_build_on_device(&self, device: &D) -> Result<Self::Built, Error> {
        self.check()?;
        let embed = self.embed_dim.size();
        let weight_shape = (3 * embed, self.embed_dim);
        let in_proj_weight = Tensor::try_from_storage(
            xavier_uniform::<E, D>(device, 3 * embed, embed)?,
            weight_shape,
            device.clone(),
        )?;
        let in_proj_bias = match self.bias {
            true => Some(device.try_zeros_like(&(3 * embed,))?),
            false => None,
        };
        let linear = crate::layers::linear::LinearConfig::new(self.embed_dim, self.embed_dim);
        let linear = if self.bias { linear } else { linear.without_bias() };
        let mut out_proj: Linear<M, M, E, D> = linear.try_build_on_device(device)?;
        if let Some(bias) = &mut out_proj.bias {
            *bias = device.try_zeros_like(&(self.embed_dim,))?;
        }
        Ok(built::MultiHeadAttention {
            in_proj_weight,
            in_proj_bias,
            out_proj,
            num_heads: self.num_heads,
            dropout: self.dropout,
        })
    }
}

/// Which key positions each query may attend to, as PyTorch's `attn_mask`,
/// `key_padding_mask` and `is_causal` say it. Masks that block a position add −∞ to
/// its score before the softmax; several masks add up. A query row that every mask
/// blocks entirely has no weights to normalise and comes out NaN, as in PyTorch.
///
/// ```
/// use ferrograd_cpu::Cpu;
/// use ferrograd_nn::prelude::*;
/// use ferrograd_nn::AttentionMasks;
///
/// let dev = Cpu::default();
/// // Batch of 2, keys of length 3: the second sequence's last key is padding.
/// let padding: Tensor<Rank2<2, 3>, bool, Cpu> = dev.tensor([[false, false, false], [false, false, true]]);
/// let masks = AttentionMasks::<f32, Cpu>::new().key_padding(padding).causal();
/// assert!(masks.causal && masks.key_padding.is_some() && masks.attention.is_none());
/// ```
#[derive(Clone, Debug)]
pub struct AttentionMasks<E: Dtype, D: Storage<E> + Storage<bool>> {
    /// `(batch, key length)`: `true` where a key is padding and no query may attend to
    /// it (PyTorch's `key_padding_mask`).
    pub key_padding: Option<Tensor<(usize, usize), bool, D>>,
    /// `(query length, key length)`, shared by the batch (PyTorch's 2-d `attn_mask`).
    pub attention: Option<AttentionMask<E, D>>,
    /// Whether query `i` may attend only to keys `0..=i` (PyTorch's `is_causal` with
    /// `generate_square_subsequent_mask`; for keys of another length, the top-left
    /// aligned triangle, as PyTorch's `scaled_dot_product_attention`). Applies on top of
    /// `attention`.
    pub causal: bool,
}

/// A 2-d attention mask of either kind PyTorch takes.
#[derive(Clone, Debug)]
pub enum AttentionMask<E: Dtype, D: Storage<E> + Storage<bool>> {
    /// `true` where a query may not attend to a key.
    Blocked(Tensor<(usize, usize), bool, D>),
    /// Added to the scores (0 allows, −∞ blocks, anything else biases).
    Additive(Tensor<(usize, usize), E, D>),
}

impl<E: Dtype, D: Storage<E> + Storage<bool>> Default for AttentionMasks<E, D> {
    fn default() -> Self {
        Self {
            key_padding: None,
            attention: None,
            causal: false,
        }
    }
}

/// A 2-d mask with run-time dims, from any 2-d tensor.
fn runtime_dims<A: Dim, B: Dim, E: ferrograd_device::Unit, D: Storage<E>>(
    mask: Tensor<(A, B), E, D>,
) -> Tensor<(usize, usize), E, D> {
    mask.try_realize().expect("every rank-2 shape fits (usize, usize)")
}

impl<E: Dtype, D: Storage<E> + Storage<bool>> AttentionMasks<E, D> {
    /// No masks: every query attends to every key.
    pub fn new() -> Self {
        Self::default()
    }

    /// The same masks with a key-padding mask, `(batch, key length)`, `true` at padding.
    pub fn key_padding<A: Dim, B: Dim>(self, mask: Tensor<(A, B), bool, D>) -> Self {
        Self {
            key_padding: Some(runtime_dims(mask)),
            ..self
        }
    }

    /// The same masks with a boolean attention mask, `(query length, key length)`,
    /// `true` where attending is not allowed.
    pub fn blocked<A: Dim, B: Dim>(self, mask: Tensor<(A, B), bool, D>) -> Self {
        Self {
            attention: Some(AttentionMask::Blocked(runtime_dims(mask))),
            ..self
        }
    }

    /// The same masks with a float attention mask, `(query length, key length)`, added
    /// to the scores.
    pub fn additive<A: Dim, B: Dim>(self, mask: Tensor<(A, B), E, D>) -> Self {
        Self {
            attention: Some(AttentionMask::Additive(runtime_dims(mask))),
            ..self
        }
    }

    /// The same masks, causal: query `i` attends to keys `0..=i` only.
    pub fn causal(self) -> Self {
        Self { causal: true, ..self }
    }
}

/// Sizes as PyTorch prints a shape: `(2, 3)`.
fn dims_text(dims: &[usize]) -> String {
    let inner: Vec<String> = dims.iter().map(|d| d.to_string()).collect();
    format!("({})", inner.join(", "))
}

/// Tensors of the batch's attention, every dim known at run time.
type Rows<E, D, T> = Tensor<(usize, usize, usize), E, D, T>;
type Heads<E, D, T> = Tensor<(usize, usize, usize, usize), E, D, T>;

/// Built attention.
pub mod built {
    use super::*;

    /// A built [`MultiHeadAttention`](super::MultiHeadAttention).
    #[derive(Clone, Debug)]
    pub struct MultiHeadAttention<M: Dim, H: Dim, E: Dtype, D: Storage<E>> {
        /// `(3·M, M)`: the query, key and value projections stacked, PyTorch's layout.
        pub in_proj_weight: Tensor<(usize, M), E, D>,
        /// `(3·M,)`, absent without biases.
        pub in_proj_bias: Option<Tensor<(usize,), E, D>>,
        /// The projection of the joined heads.
        pub out_proj: Linear<M, M, E, D>,
        /// How many heads.
        pub num_heads: H,
        /// The probability of dropping an attention weight in training.
        pub dropout: f64,
    }

    impl<M: Dim, H: Dim, E: Dtype, D: Storage<E>> VisitParameters<E, D> for MultiHeadAttention<M, H, E, D> {
        fn visit_parameters<V: ParameterVisitor<E, D>>(&self, visitor: &mut V) -> Result<(), Error> {
            visitor.visit("in_proj_weight", &self.in_proj_weight)?;
            if let Some(bias) = &self.in_proj_bias {
                visitor.visit("in_proj_bias", bias)?;
            }
            self.out_proj.visit_parameters(&mut Prefixed::new("out_proj", visitor))
        }

        fn visit_parameters_mut<V: ParameterVisitorMut<E, D>>(&mut self, visitor: &mut V) -> Result<(), Error> {
            visitor.visit_mut("in_proj_weight", &mut self.in_proj_weight)?;
            if let Some(bias) = &mut self.in_proj_bias {
                visitor.visit_mut("in_proj_bias", bias)?;
            }
            self.out_proj
                .visit_parameters_mut(&mut Prefixed::new("out_proj", visitor))
        }
    }

    /// A batch of sequences of `M` features.
    type Sequences<B, S, M, E, D, T> = Tensor<(B, S, M), E, D, T>;

    /// What one attention call returns: the output and, when asked for, the attention
    /// weights averaged over the heads.
    pub(crate) type Attended<B, Sq, Sk, M, E, D, T> =
        (Tensor<(B, Sq, M), E, D, T>, Option<Tensor<(B, Sq, Sk), E, D, T>>);

    impl<M: Dim, H: Dim, E: Dtype, D: AttentionKernels<E>> MultiHeadAttention<M, H, E, D> {
        /// Attention from `query` `(batch, query length, M)` to `key` and `value`
        /// `(batch, key length, M)` under `masks`, for inference (no dropout). Errors
        /// name the shapes that disagree: batches, key and value lengths, or a mask's
        /// shape against `(batch, key length)` or `(query length, key length)`.
        pub fn try_forward_masked<B: Dim, Sq: Dim, Sk: Dim, T>(
            &self,
            query: Sequences<B, Sq, M, E, D, T>,
            key: Sequences<B, Sk, M, E, D, T>,
            value: Sequences<B, Sk, M, E, D, T>,
            masks: &AttentionMasks<E, D>,
        ) -> Result<Sequences<B, Sq, M, E, D, T>, Error>
        where
            T: Tape<E, D> + MergeTapes<T, Output = T>,
        {
            Ok(self.try_attend(query, key, value, masks, false, false)?.0)
        }

        /// [`MultiHeadAttention::try_forward_masked`], panicking on error.
        ///
        /// # Panics
        /// Where `try_forward_masked` returns an error; the message is the error's.
        #[track_caller]
        pub fn forward_masked<B: Dim, Sq: Dim, Sk: Dim, T>(
            &self,
            query: Sequences<B, Sq, M, E, D, T>,
            key: Sequences<B, Sk, M, E, D, T>,
            value: Sequences<B, Sk, M, E, D, T>,
            masks: &AttentionMasks<E, D>,
        ) -> Sequences<B, Sq, M, E, D, T>
        where
            T: Tape<E, D> + MergeTapes<T, Output = T>,
        {
            self.try_forward_masked(query, key, value, masks)
                .unwrap_or_else(|error| panic!("{error}"))
        }

        /// [`MultiHeadAttention::try_forward_masked`] in training: dropout on the
        /// attention weights.
        pub fn try_forward_masked_mut<B: Dim, Sq: Dim, Sk: Dim, T>(
            &mut self,
            query: Sequences<B, Sq, M, E, D, T>,
            key: Sequences<B, Sk, M, E, D, T>,
            value: Sequences<B, Sk, M, E, D, T>,
            masks: &AttentionMasks<E, D>,
        ) -> Result<Sequences<B, Sq, M, E, D, T>, Error>
        where
            T: Tape<E, D> + MergeTapes<T, Output = T>,
        {
            Ok(self.try_attend(query, key, value, masks, true, false)?.0)
        }

        /// [`MultiHeadAttention::try_forward_masked_mut`], panicking on error.
        ///
        /// # Panics
        /// Where `try_forward_masked_mut` returns an error; the message is the error's.
        #[track_caller]
        pub fn forward_masked_mut<B: Dim, Sq: Dim, Sk: Dim, T>(
            &mut self,
            query: Sequences<B, Sq, M, E, D, T>,
            key: Sequences<B, Sk, M, E, D, T>,
            value: Sequences<B, Sk, M, E, D, T>,
            masks: &AttentionMasks<E, D>,
        ) -> Sequences<B, Sq, M, E, D, T>
        where
            T: Tape<E, D> + MergeTapes<T, Output = T>,
        {
            self.try_forward_masked_mut(query, key, value, masks)
                .unwrap_or_else(|error| panic!("{error}"))
        }

        /// [`MultiHeadAttention::try_forward_masked`] that also returns the attention
        /// weights averaged over the heads, `(batch, query length, key length)`: what
        /// PyTorch's module returns with its defaults `need_weights=True,
        /// average_attn_weights=True`.
        #[allow(clippy::type_complexity)] // the output and the weights, each with its shape
        pub fn try_forward_with_weights<B: Dim, Sq: Dim, Sk: Dim, T>(
            &self,
            query: Sequences<B, Sq, M, E, D, T>,
            key: Sequences<B, Sk, M, E, D, T>,
            value: Sequences<B, Sk, M, E, D, T>,
            masks: &AttentionMasks<E, D>,
        ) -> Result<(Sequences<B, Sq, M, E, D, T>, Tensor<(B, Sq, Sk), E, D, T>), Error>
        where
            T: Tape<E, D> + MergeTapes<T, Output = T>,
        {
            let (output, weights) = self.try_attend(query, key, value, masks, false, true)?;
            let weights = weights.ok_or(Error::InvalidArgument {
                op: "MultiHeadAttention",
                message: "the attention weights were not kept".into(),
            })?;
            Ok((output, weights))
        }

        /// The shared forward pass; `training` turns dropout on, `need_weights` returns
        /// the averaged weights.
        #[allow(clippy::type_complexity)] // the output and the weights, each with its shape
        pub(crate) fn try_attend<B: Dim, Sq: Dim, Sk: Dim, T>(
            &self,
            query: Sequences<B, Sq, M, E, D, T>,
            key: Sequences<B, Sk, M, E, D, T>,
            value: Sequences<B, Sk, M, E, D, T>,
            masks: &AttentionMasks<E, D>,
            training: bool,
            need_weights: bool,
        ) -> Result<Attended<B, Sq, Sk, M, E, D, T>, Error>
        where
            T: Tape<E, D> + MergeTapes<T, Output = T>,
        {
            let (q_dims, k_dims, v_dims) = (query.dims(), key.dims(), value.dims());
            if q_dims[0] != k_dims[0] || k_dims != v_dims {
                return Err(Error::ShapeMismatch {
                    op: "MultiHeadAttention",
                    message: format!(
                        "query {}, key {} and value {} must share the batch, and key and value the length",
                        dims_text(&q_dims),
                        dims_text(&k_dims),
                        dims_text(&v_dims)
                    ),
                });
            }
            let embed = q_dims[2];
            let heads = self.num_heads.size();
            let weight_dims = self.in_proj_weight.dims();
            if heads == 0 || !embed.is_multiple_of(heads) || weight_dims != [3 * embed, embed] {
                return Err(Error::InvalidArgument {
                    op: "MultiHeadAttention",
                    message: format!(
                        "in_proj_weight {} does not fit {heads} heads over embed_dim {embed}: expected ({}, {embed}) \
                         with embed_dim divisible by the heads",
                        dims_text(&weight_dims),
                        3 * embed
                    ),
                });
            }
            let (batch, query_length, key_length) = (q_dims[0], q_dims[1], k_dims[1]);
            let head_dim = embed / heads;
            let output_shape = *query.shape();
            let weights_shape = (output_shape.0, output_shape.1, key.shape().1);

            // Self-attention (one tensor as query, key and value, as PyTorch's `query is
            // key`) projects all three with one product.
            let packed = query.id() == key.id()
                && key.id() == value.id()
                && query.layout() == key.layout()
                && key.layout() == value.layout();
            let query = query.try_realize::<(usize, usize, usize)>()?;
            let (q, k, v) = if packed {
                let projected = self.project(query, 0..3 * embed)?;
                let split = projected.try_reshape_like(&(batch, query_length, 3, heads, head_dim))?;
                let part = |index: usize| -> Result<Heads<E, D, T>, Error> {
                    Ok(split
                        .clone()
                        .try_slice((.., .., index..index + 1, .., ..))?
                        .try_squeeze::<2>()?
                        .permute::<Axes4<0, 2, 1, 3>>())
                };
                (part(0)?, part(1)?, part(2)?)
            } else {
                let key = key.try_realize::<(usize, usize, usize)>()?;
                let value = value.try_realize::<(usize, usize, usize)>()?;
                (
                    split_heads(self.project(query, 0..embed)?, heads, head_dim)?,
                    split_heads(self.project(key, embed..2 * embed)?, heads, head_dim)?,
                    split_heads(self.project(value, 2 * embed..3 * embed)?, heads, head_dim)?,
                )
            };

            // (batch, heads, query length, key length)
            let scores_shape = (batch, heads, query_length, key_length);
            let scores = q
                .try_matmul(k.permute::<Axes4<0, 1, 3, 2>>())?
                .try_mul_scalar(E::from_f64(1.0 / (head_dim as f64).sqrt()))?;
            let scores = add_masks(scores, masks, scores_shape)?;
            let mut weights = scores.try_softmax::<Axis<3>>()?;
            if training && self.dropout > 0.0 {
                weights = weights.try_dropout(self.dropout)?;
            }
            let averaged = match need_weights {
                true => Some(
                    weights
                        .clone()
                        .try_mean::<(usize, usize, usize), Axis<1>>()?
                        .try_reshape_like(&weights_shape)?,
                ),
                false => None,
            };
            // (batch, heads, query length, head_dim) → (batch, query length, embed)
            let joined = weights
                .try_matmul(v)?
                .permute::<Axes4<0, 2, 1, 3>>()
                .try_reshape_like(&output_shape)?;
            Ok((self.out_proj.try_forward(joined)?, averaged))
        }

        /// `x · Wᵀ + b` with the rows `rows` of the stacked projection.
        fn project<T: Tape<E, D>>(
            &self,
            x: Rows<E, D, T>,
            rows: std::ops::Range<usize>,
        ) -> Result<Rows<E, D, T>, Error> {
            let weight = self
                .in_proj_weight
                .clone()
                .try_realize::<(usize, usize)>()?
                .try_slice((rows.clone(), ..))?;
            let projected = x.try_matmul(weight.permute::<Axes2<1, 0>>())?;
            match &self.in_proj_bias {
                Some(bias) => {
                    let shape = *projected.shape();
                    let bias = bias
                        .clone()
                        .try_slice((rows,))?
                        .try_broadcast_like::<_, Axes2<0, 1>>(&shape)?;
                    projected.try_add(bias)
                }
                None => Ok(projected),
            }
        }
    }

    /// `(batch, length, heads · head_dim)` → a `(batch, heads, length, head_dim)` view.
    fn split_heads<E: Dtype, D: AttentionKernels<E>, T: Tape<E, D>>(
        x: Rows<E, D, T>,
        heads: usize,
        head_dim: usize,
    ) -> Result<Heads<E, D, T>, Error> {
        let (batch, length, _) = *x.shape();
        Ok(x.try_reshape_like(&(batch, length, heads, head_dim))?
            .permute::<Axes4<0, 2, 1, 3>>())
    }

    /// The scores with every mask added: −∞ where a mask blocks, a float mask's values.
    fn add_masks<E: Dtype, D: AttentionKernels<E>, T: Tape<E, D>>(
        mut scores: Heads<E, D, T>,
        masks: &AttentionMasks<E, D>,
        shape: (usize, usize, usize, usize),
    ) -> Result<Heads<E, D, T>, Error> {
        let (batch, _, query_length, key_length) = shape;
        let device = scores.device().clone();
        if let Some(padding) = &masks.key_padding {
            if padding.dims() != [batch, key_length] {
                return Err(Error::ShapeMismatch {
                    op: "MultiHeadAttention",
                    message: format!(
                        "key padding mask {} does not match (batch, key length) = {}",
                        dims_text(&padding.dims()),
                        dims_text(&[batch, key_length])
                    ),
                });
            }
            let additive = blocked_to_additive(&device, padding)?.try_broadcast_like::<_, Axes2<1, 2>>(&shape)?;
            scores = scores.try_add(additive)?;
        }
        let attention = match &masks.attention {
            Some(AttentionMask::Blocked(mask)) => Some((mask.dims(), blocked_to_additive(&device, mask)?)),
            Some(AttentionMask::Additive(mask)) => Some((mask.dims(), mask.clone())),
            None => None,
        };
        if let Some((dims, additive)) = attention {
            if dims != [query_length, key_length] {
                return Err(Error::ShapeMismatch {
                    op: "MultiHeadAttention",
                    message: format!(
                        "attention mask {} does not match (query length, key length) = {}",
                        dims_text(&dims),
                        dims_text(&[query_length, key_length])
                    ),
                });
            }
            scores = scores.try_add(additive.try_broadcast_like::<_, Axes2<0, 1>>(&shape)?)?;
        }
        if masks.causal {
            let blocked = E::from_f64(f64::NEG_INFINITY);
            let values = (0..query_length)
                .flat_map(|i| (0..key_length).map(move |j| if j > i { blocked } else { E::ZERO }))
                .collect();
            let causal = device.try_tensor_from_vec(values, (query_length, key_length))?;
            scores = scores.try_add(causal.try_broadcast_like::<_, Axes2<0, 1>>(&shape)?)?;
        }
        Ok(scores)
    }

    /// −∞ where `mask` is true, 0 elsewhere.
    fn blocked_to_additive<E: Dtype, D: AttentionKernels<E>>(
        device: &D,
        mask: &Tensor<(usize, usize), bool, D>,
    ) -> Result<Tensor<(usize, usize), E, D>, Error> {
        let shape = *mask.shape();
        let blocked = device.try_full_like(&shape, E::from_f64(f64::NEG_INFINITY))?;
        mask.try_choose(blocked, device.try_zeros_like(&shape)?)
    }

    /// Self-attention on a batch: `(B, S, M)` → `(B, S, M)`.
    impl<B: Dim, S: Dim, M: Dim, H: Dim, E: Dtype, D: AttentionKernels<E>, T> Module<Tensor<(B, S, M), E, D, T>>
        for MultiHeadAttention<M, H, E, D>
    where
        T: Tape<E, D> + MergeTapes<T, Output = T>,
    {
        type Output = Tensor<(B, S, M), E, D, T>;
        fn try_forward(&self, x: Tensor<(B, S, M), E, D, T>) -> Result<Self::Output, Error> {
            Ok(self
                .try_attend(x.clone(), x.clone(), x, &AttentionMasks::new(), false, false)?
                .0)
        }
    }

    impl<B: Dim, S: Dim, M: Dim, H: Dim, E: Dtype, D: AttentionKernels<E>, T> ModuleMut<Tensor<(B, S, M), E, D, T>>
        for MultiHeadAttention<M, H, E, D>
    where
        T: Tape<E, D> + MergeTapes<T, Output = T>,
    {
        type Output = Tensor<(B, S, M), E, D, T>;
        fn try_forward_mut(&mut self, x: Tensor<(B, S, M), E, D, T>) -> Result<Self::Output, Error> {
            Ok(self
                .try_attend(x.clone(), x.clone(), x, &AttentionMasks::new(), true, false)?
                .0)
        }
    }

    /// Query, key and value of a batch: `(B, Sq, M)`, `(B, Sk, M)`, `(B, Sk, M)` →
    /// `(B, Sq, M)`.
    impl<B: Dim, Sq: Dim, Sk: Dim, M: Dim, H: Dim, E: Dtype, D: AttentionKernels<E>, T>
        Module<(
            Tensor<(B, Sq, M), E, D, T>,
            Tensor<(B, Sk, M), E, D, T>,
            Tensor<(B, Sk, M), E, D, T>,
        )> for MultiHeadAttention<M, H, E, D>
    where
        T: Tape<E, D> + MergeTapes<T, Output = T>,
    {
        type Output = Tensor<(B, Sq, M), E, D, T>;
        #[allow(clippy::type_complexity)] // the three inputs, each with its shape
        fn try_forward(
            &self,
            (query, key, value): (
                Tensor<(B, Sq, M), E, D, T>,
                Tensor<(B, Sk, M), E, D, T>,
                Tensor<(B, Sk, M), E, D, T>,
            ),
        ) -> Result<Self::Output, Error> {
            self.try_forward_masked(query, key, value, &AttentionMasks::new())
        }
    }

    impl<B: Dim, Sq: Dim, Sk: Dim, M: Dim, H: Dim, E: Dtype, D: AttentionKernels<E>, T>
        ModuleMut<(
            Tensor<(B, Sq, M), E, D, T>,
            Tensor<(B, Sk, M), E, D, T>,
            Tensor<(B, Sk, M), E, D, T>,
        )> for MultiHeadAttention<M, H, E, D>
    where
        T: Tape<E, D> + MergeTapes<T, Output = T>,
    {
        type Output = Tensor<(B, Sq, M), E, D, T>;
        #[allow(clippy::type_complexity)] // the three inputs, each with its shape
        fn try_forward_mut(
            &mut self,
            (query, key, value): (
                Tensor<(B, Sq, M), E, D, T>,
                Tensor<(B, Sk, M), E, D, T>,
                Tensor<(B, Sk, M), E, D, T>,
            ),
        ) -> Result<Self::Output, Error> {
            self.try_forward_masked_mut(query, key, value, &AttentionMasks::new())
        }
    }

    /// Self-attention on one sequence: `(S, M)` → `(S, M)`, as a batch of one.
    impl<S: Dim, M: Dim, H: Dim, E: Dtype, D: AttentionKernels<E>, T> Module<Tensor<(S, M), E, D, T>>
        for MultiHeadAttention<M, H, E, D>
    where
        T: Tape<E, D> + MergeTapes<T, Output = T>,
    {
        type Output = Tensor<(S, M), E, D, T>;
        fn try_forward(&self, x: Tensor<(S, M), E, D, T>) -> Result<Self::Output, Error> {
            let x = x.unsqueeze::<0>();
            let (output, _) = self.try_attend(x.clone(), x.clone(), x, &AttentionMasks::new(), false, false)?;
            output.try_squeeze::<0>()
        }
    }

    impl<S: Dim, M: Dim, H: Dim, E: Dtype, D: AttentionKernels<E>, T> ModuleMut<Tensor<(S, M), E, D, T>>
        for MultiHeadAttention<M, H, E, D>
    where
        T: Tape<E, D> + MergeTapes<T, Output = T>,
    {
        type Output = Tensor<(S, M), E, D, T>;
        fn try_forward_mut(&mut self, x: Tensor<(S, M), E, D, T>) -> Result<Self::Output, Error> {
            let x = x.unsqueeze::<0>();
            let (output, _) = self.try_attend(x.clone(), x.clone(), x, &AttentionMasks::new(), true, false)?;
            output.try_squeeze::<0>()
        }
    }

    /// Query, key and value of one sequence each: `(Sq, M)`, `(Sk, M)`, `(Sk, M)` →
    /// `(Sq, M)`.
    impl<Sq: Dim, Sk: Dim, M: Dim, H: Dim, E: Dtype, D: AttentionKernels<E>, T>
        Module<(
            Tensor<(Sq, M), E, D, T>,
            Tensor<(Sk, M), E, D, T>,
            Tensor<(Sk, M), E, D, T>,
        )> for MultiHeadAttention<M, H, E, D>
    where
        T: Tape<E, D> + MergeTapes<T, Output = T>,
    {
        type Output = Tensor<(Sq, M), E, D, T>;
        #[allow(clippy::type_complexity)] // the three inputs, each with its shape
        fn try_forward(
            &self,
            (query, key, value): (
                Tensor<(Sq, M), E, D, T>,
                Tensor<(Sk, M), E, D, T>,
                Tensor<(Sk, M), E, D, T>,
            ),
        ) -> Result<Self::Output, Error> {
            let (output, _) = self.try_attend(
                query.unsqueeze::<0>(),
                key.unsqueeze::<0>(),
                value.unsqueeze::<0>(),
                &AttentionMasks::new(),
                false,
                false,
            )?;
            output.try_squeeze::<0>()
        }
    }
}
