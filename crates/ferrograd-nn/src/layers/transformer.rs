//! Transformer layers, stacks and the whole encoder-decoder, as PyTorch's
//! `nn.TransformerEncoderLayer`, `nn.TransformerDecoderLayer`, `nn.TransformerEncoder`,
//! `nn.TransformerDecoder` and `nn.Transformer` with `batch_first=True`.

use crate::layers::attention::{
    AttentionKernels, AttentionMasks, MultiHeadAttentionConfig, check_probability, xavier_uniform,
};
use crate::layers::linear::LinearConfig;
use crate::layers::normalization::{LayerNormConfig, NormalizationKernels};
use crate::module::{BuildOnDevice, Module, ModuleMut};
use ferrograd_autodiff::{MergeTapes, ParameterVisitor, ParameterVisitorMut, Prefixed, Tape, Tensor, VisitParameters};
use ferrograd_device::ops::elementwise::{Gelu, Relu, UnaryKernel};
use ferrograd_device::{Dtype, Error, SampleKernel, Storage};
use ferrograd_shapes::{Const, Dim, Shape};

/// The kernels a transformer layer runs: attention's, layer norm's and the activations.
pub trait TransformerKernels<E: Dtype>:
    AttentionKernels<E> + NormalizationKernels<E> + UnaryKernel<Relu, E> + UnaryKernel<Gelu, E>
{
}

impl<E: Dtype, D> TransformerKernels<E> for D where
    D: AttentionKernels<E> + NormalizationKernels<E> + UnaryKernel<Relu, E> + UnaryKernel<Gelu, E>
{
}

/// The activation between a transformer layer's two linear layers (PyTorch's
/// `activation="relu"` or `"gelu"`, the exact GELU).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Activation {
    /// `max(x, 0)`, PyTorch's default.
    #[default]
    Relu,
    /// `x·Φ(x)`.
    Gelu,
}

/// `x` with dropout `p` when training, `x` itself otherwise.
fn dropout<S: Shape, E: Dtype, D: TransformerKernels<E>, T: Tape<E, D>>(
    x: Tensor<S, E, D, T>,
    p: f64,
    training: bool,
) -> Result<Tensor<S, E, D, T>, Error> {
    match training && p > 0.0 {
        true => x.try_dropout(p),
        false => Ok(x),
    }
}

/// A layer's configuration: the options PyTorch's encoder and decoder layers share.
macro_rules! layer_config {
    ($(#[$doc:meta])* $config:ident, $alias:ident) => {
        $(#[$doc])*
        pub type $alias<const D_MODEL: usize, const NHEAD: usize, const FF: usize> =
            $config<Const<D_MODEL>, Const<NHEAD>, Const<FF>>;

        #[doc = concat!("A [`", stringify!($alias), "`]'s sizes and options, as types or run-time values; the defaults are PyTorch's.")]
        #[derive(Clone, Copy, Debug, PartialEq)]
        pub struct $config<M: Dim, H: Dim, F: Dim> {
            /// Features of each position (PyTorch's `d_model`).
            pub d_model: M,
            /// Attention heads; must divide `d_model` (`nhead`).
            pub nhead: H,
            /// Features between the two linear layers (`dim_feedforward`, PyTorch's
            /// default 2048).
            pub dim_feedforward: F,
            /// Dropout probability in training, after attention and in the
            /// feed-forward block, and on the attention weights (default 0.1).
            pub dropout: f64,
            /// The feed-forward activation (default ReLU).
            pub activation: Activation,
            /// The layer norms' `eps` (default 1e-5).
            pub layer_norm_eps: f64,
            /// Whether each block normalises its input (pre-norm) rather than the
            /// residual sum (post-norm, PyTorch's default `norm_first=False`).
            pub norm_first: bool,
            /// Whether the linear layers and layer norms have biases (default true).
            pub bias: bool,
        }

        impl<M: Dim, H: Dim, F: Dim> $config<M, H, F> {
            /// PyTorch's defaults for these sizes.
            pub fn new(d_model: M, nhead: H, dim_feedforward: F) -> Self {
                Self {
                    d_model,
                    nhead,
                    dim_feedforward,
                    dropout: 0.1,
                    activation: Activation::Relu,
                    layer_norm_eps: 1e-5,
                    norm_first: false,
                    bias: true,
                }
            }

            fn attention(&self) -> MultiHeadAttentionConfig<M, H> {
                MultiHeadAttentionConfig {
                    embed_dim: self.d_model,
                    num_heads: self.nhead,
                    dropout: self.dropout,
                    bias: self.bias,
                }
            }

            fn linear<I: Dim, O: Dim>(&self, inputs: I, outputs: O) -> LinearConfig<I, O> {
                LinearConfig { inputs, outputs, bias: self.bias }
            }

            fn norm(&self) -> LayerNormConfig<M> {
                LayerNormConfig {
                    eps: self.layer_norm_eps,
                    bias: self.bias,
                    ..LayerNormConfig::new(self.d_model)
                }
            }
        }

        impl<const D_MODEL: usize, const NHEAD: usize, const FF: usize> Default
            for $config<Const<D_MODEL>, Const<NHEAD>, Const<FF>>
        {
            fn default() -> Self {
                // Checks at compile time that the heads divide the model's features.
                let attention = MultiHeadAttentionConfig::<Const<D_MODEL>, Const<NHEAD>>::default();
                Self::new(attention.embed_dim, attention.num_heads, Const)
            }
        }
    };
}

layer_config!(
    /// Self-attention then a feed-forward block, each with a residual connection and a
    /// layer norm: PyTorch's `nn.TransformerEncoderLayer(D_MODEL, NHEAD, FF,
    /// batch_first=True)`, keys `self_attn.*`, `linear1.*`, `linear2.*`, `norm1.*`,
    /// `norm2.*`. With `norm_first` false (the default) a layer computes
    ///
    /// ```text
    /// x = norm1(x + dropout1(self_attn(x, x, x)))
    /// x = norm2(x + dropout2(linear2(dropout(activation(linear1(x))))))
    /// ```
    ///
    /// and with `norm_first` true `x = x + dropout1(self_attn(norm1(x), …))`, then
    /// `x = x + dropout2(linear2(…(norm2(x))))`. It takes `(batch, sequence, D_MODEL)`;
    /// masks go through [`try_forward_masked`](crate::built::TransformerEncoderLayer::try_forward_masked).
    /// The dropouts (including on the attention weights) act in training
    /// ([`ModuleMut`]) only.
    ///
    /// ```
    /// use ferrograd_cpu::Cpu;
    /// use ferrograd_nn::prelude::*;
    /// use ferrograd_nn::{Activation, AttentionMasks, TransformerEncoderLayerConfig};
    ///
    /// let dev = Cpu::seed_from_u64(0);
    /// let layer = dev.build_module_with::<_, f32>(TransformerEncoderLayerConfig {
    ///     activation: Activation::Gelu,
    ///     norm_first: true,
    ///     ..TransformerEncoderLayer::<16, 4, 32>::default()
    /// });
    /// assert_eq!(layer.parameter_names()?[..4], [
    ///     "self_attn.in_proj_weight",
    ///     "self_attn.in_proj_bias",
    ///     "self_attn.out_proj.weight",
    ///     "self_attn.out_proj.bias",
    /// ]);
    ///
    /// let x: Tensor<Rank3<2, 6, 16>, f32, Cpu> = dev.sample_normal();
    /// let y = layer.forward(x.clone());
    /// // The second sequence's last two positions are padding.
    /// let padding = dev.tensor([[false; 6], [false, false, false, false, true, true]]);
    /// let z = layer.forward_masked(x, &AttentionMasks::new().key_padding(padding));
    /// assert_eq!((y.dims(), z.dims()), ([2, 6, 16], [2, 6, 16]));
    /// # Ok::<(), Error>(())
    /// ```
    TransformerEncoderLayerConfig,
    TransformerEncoderLayer
);

layer_config!(
    /// Self-attention, attention to the encoder's output (the memory), then a
    /// feed-forward block, each with a residual connection and a layer norm: PyTorch's
    /// `nn.TransformerDecoderLayer(D_MODEL, NHEAD, FF, batch_first=True)`, keys
    /// `self_attn.*`, `multihead_attn.*`, `linear1.*`, `linear2.*`, `norm1.*`,
    /// `norm2.*`, `norm3.*`. It takes `(target, memory)`, each
    /// `(batch, sequence, D_MODEL)`; masks go through
    /// [`try_forward_masked`](crate::built::TransformerDecoderLayer::try_forward_masked).
    TransformerDecoderLayerConfig,
    TransformerDecoderLayer
);

impl<M: Dim, H: Dim, F: Dim, E: Dtype, D: SampleKernel<E>> BuildOnDevice<E, D>
    for TransformerEncoderLayerConfig<M, H, F>
{
    type Built = built::TransformerEncoderLayer<M, H, F, E, D>;

    fn try_build_on_device(&self, device: &D) -> Result<Self::Built, Error> {
        check_probability("TransformerEncoderLayer", self.dropout)?;
        Ok(built::TransformerEncoderLayer {
            self_attn: self.attention().try_build_on_device(device)?,
            linear1: self
                .linear(self.d_model, self.dim_feedforward)
                .try_build_on_device(device)?,
            linear2: self
                .linear(self.dim_feedforward, self.d_model)
                .try_build_on_device(device)?,
            norm1: self.norm().try_build_on_device(device)?,
            norm2: self.norm().try_build_on_device(device)?,
            dropout: self.dropout,
            activation: self.activation,
            norm_first: self.norm_first,
        })
    }
}

impl<M: Dim, H: Dim, F: Dim, E: Dtype, D: SampleKernel<E>> BuildOnDevice<E, D>
    for TransformerDecoderLayerConfig<M, H, F>
{
    type Built = built::TransformerDecoderLayer<M, H, F, E, D>;

    fn try_build_on_device(&self, device: &D) -> Result<Self::Built, Error> {
        check_probability("TransformerDecoderLayer", self.dropout)?;
        Ok(built::TransformerDecoderLayer {
            self_attn: self.attention().try_build_on_device(device)?,
            multihead_attn: self.attention().try_build_on_device(device)?,
            linear1: self
                .linear(self.d_model, self.dim_feedforward)
                .try_build_on_device(device)?,
            linear2: self
                .linear(self.dim_feedforward, self.d_model)
                .try_build_on_device(device)?,
            norm1: self.norm().try_build_on_device(device)?,
            norm2: self.norm().try_build_on_device(device)?,
            norm3: self.norm().try_build_on_device(device)?,
            dropout: self.dropout,
            activation: self.activation,
            norm_first: self.norm_first,
        })
    }
}

/// `L` encoder layers in sequence, then an optional layer norm: PyTorch's
/// `nn.TransformerEncoder(layer, L, norm)`, keys `layers.<i>.…` and `norm.*`. The
/// default has no final norm, as PyTorch's.
///
/// PyTorch starts every layer as a copy of one layer; here each layer draws its own
/// initial parameters.
pub type TransformerEncoder<const D_MODEL: usize, const NHEAD: usize, const FF: usize, const L: usize> =
    TransformerEncoderConfig<Const<D_MODEL>, Const<NHEAD>, Const<FF>, Const<L>>;

/// A [`TransformerEncoder`]'s layer, how many, and its final norm.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TransformerEncoderConfig<M: Dim, H: Dim, F: Dim, L: Dim> {
    /// Every layer's configuration.
    pub layer: TransformerEncoderLayerConfig<M, H, F>,
    /// How many layers.
    pub num_layers: L,
    /// The norm after the last layer, if any.
    pub norm: Option<LayerNormConfig<M>>,
}

/// `L` decoder layers in sequence, then an optional layer norm: PyTorch's
/// `nn.TransformerDecoder(layer, L, norm)`, keys `layers.<i>.…` and `norm.*`.
///
/// PyTorch starts every layer as a copy of one layer; here each layer draws its own
/// initial parameters.
pub type TransformerDecoder<const D_MODEL: usize, const NHEAD: usize, const FF: usize, const L: usize> =
    TransformerDecoderConfig<Const<D_MODEL>, Const<NHEAD>, Const<FF>, Const<L>>;

/// A [`TransformerDecoder`]'s layer, how many, and its final norm.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TransformerDecoderConfig<M: Dim, H: Dim, F: Dim, L: Dim> {
    /// Every layer's configuration.
    pub layer: TransformerDecoderLayerConfig<M, H, F>,
    /// How many layers.
    pub num_layers: L,
    /// The norm after the last layer, if any.
    pub norm: Option<LayerNormConfig<M>>,
}

macro_rules! stack_config {
    ($config:ident, $layer:ident, $built:ident) => {
        impl<M: Dim, H: Dim, F: Dim, L: Dim> $config<M, H, F, L> {
            /// `num_layers` layers like `layer`, without a final norm.
            pub fn new(layer: $layer<M, H, F>, num_layers: L) -> Self {
                Self {
                    layer,
                    num_layers,
                    norm: None,
                }
            }

            /// The same stack with a final layer norm of the layers' `eps` and bias.
            pub fn with_norm(self) -> Self {
                Self {
                    norm: Some(self.layer.norm()),
                    ..self
                }
            }
        }

        impl<const D_MODEL: usize, const NHEAD: usize, const FF: usize, const L: usize> Default
            for $config<Const<D_MODEL>, Const<NHEAD>, Const<FF>, Const<L>>
        {
            fn default() -> Self {
                Self::new(Default::default(), Const)
            }
        }

        impl<M: Dim, H: Dim, F: Dim, L: Dim, E: Dtype, D: SampleKernel<E>> BuildOnDevice<E, D> for $config<M, H, F, L> {
            type Built = built::$built<M, H, F, E, D>;

            fn try_build_on_device(&self, device: &D) -> Result<Self::Built, Error> {
                let layers = (0..self.num_layers.size())
                    .map(|_| self.layer.try_build_on_device(device))
                    .collect::<Result<Vec<_>, Error>>()?;
                let norm = match &self.norm {
                    Some(norm) => Some(norm.try_build_on_device(device)?),
                    None => None,
                };
                Ok(built::$built { layers, norm })
            }
        }
    };
}
stack_config!(
    TransformerEncoderConfig,
    TransformerEncoderLayerConfig,
    TransformerEncoder
);
stack_config!(
    TransformerDecoderConfig,
    TransformerDecoderLayerConfig,
    TransformerDecoder
);

/// An encoder of `ENC` layers and a decoder of `DEC` layers, each with a final layer
/// norm: PyTorch's `nn.Transformer(D_MODEL, NHEAD, ENC, DEC, FF, batch_first=True)`,
/// keys `encoder.layers.<i>.…`, `encoder.norm.*`, `decoder.layers.<i>.…`,
/// `decoder.norm.*`. As PyTorch does, every matrix starts Xavier-uniform. It takes
/// `(source, target)` and gives the decoder's output, shaped as the target; masks go
/// through [`try_forward_masked`](crate::built::Transformer::try_forward_masked).
pub type Transformer<const D_MODEL: usize, const NHEAD: usize, const ENC: usize, const DEC: usize, const FF: usize> =
    TransformerConfig<Const<D_MODEL>, Const<NHEAD>, Const<ENC>, Const<DEC>, Const<FF>>;

/// A [`Transformer`]'s sizes and options; the defaults are PyTorch's.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TransformerConfig<M: Dim, H: Dim, NE: Dim, ND: Dim, F: Dim> {
    /// Features of each position (`d_model`).
    pub d_model: M,
    /// Attention heads; must divide `d_model`.
    pub nhead: H,
    /// Encoder layers.
    pub num_encoder_layers: NE,
    /// Decoder layers.
    pub num_decoder_layers: ND,
    /// Features between each layer's two linear layers (PyTorch's default 2048).
    pub dim_feedforward: F,
    /// Dropout probability in training (default 0.1).
    pub dropout: f64,
    /// The feed-forward activation (default ReLU).
    pub activation: Activation,
    /// The layer norms' `eps` (default 1e-5).
    pub layer_norm_eps: f64,
    /// Pre-norm layers (default false: post-norm).
    pub norm_first: bool,
    /// Whether linear layers and norms have biases (default true).
    pub bias: bool,
}

impl<M: Dim, H: Dim, NE: Dim, ND: Dim, F: Dim> TransformerConfig<M, H, NE, ND, F> {
    /// PyTorch's defaults for these sizes.
    pub fn new(d_model: M, nhead: H, num_encoder_layers: NE, num_decoder_layers: ND, dim_feedforward: F) -> Self {
        Self {
            d_model,
            nhead,
            num_encoder_layers,
            num_decoder_layers,
            dim_feedforward,
            dropout: 0.1,
            activation: Activation::Relu,
            layer_norm_eps: 1e-5,
            norm_first: false,
            bias: true,
        }
    }
}

impl<const D_MODEL: usize, const NHEAD: usize, const ENC: usize, const DEC: usize, const FF: usize> Default
    for TransformerConfig<Const<D_MODEL>, Const<NHEAD>, Const<ENC>, Const<DEC>, Const<FF>>
{
    fn default() -> Self {
        let attention = MultiHeadAttentionConfig::<Const<D_MODEL>, Const<NHEAD>>::default();
        Self::new(attention.embed_dim, attention.num_heads, Const, Const, Const)
    }
}

/// Redraws every matrix Xavier-uniform, as `nn.Transformer._reset_parameters` does.
struct XavierMatrices<'a, D>(&'a D);

impl<E: Dtype, D: SampleKernel<E>> ParameterVisitorMut<E, D> for XavierMatrices<'_, D> {
    fn visit_mut<S: Shape>(&mut self, _: &str, parameter: &mut Tensor<S, E, D>) -> Result<(), Error> {
        if let [rows, columns] = *parameter.layout().dims() {
            *parameter.storage_mut() = xavier_uniform::<E, D>(self.0, rows, columns)?;
        }
        Ok(())
    }
}

impl<M: Dim, H: Dim, NE: Dim, ND: Dim, F: Dim, E: Dtype, D: SampleKernel<E>> BuildOnDevice<E, D>
    for TransformerConfig<M, H, NE, ND, F>
{
    type Built = built::Transformer<M, H, F, E, D>;

    fn try_build_on_device(&self, device: &D) -> Result<Self::Built, Error> {
        let encoder_layer = TransformerEncoderLayerConfig {
            d_model: self.d_model,
            nhead: self.nhead,
            dim_feedforward: self.dim_feedforward,
            dropout: self.dropout,
            activation: self.activation,
            layer_norm_eps: self.layer_norm_eps,
            norm_first: self.norm_first,
            bias: self.bias,
        };
        let decoder_layer = TransformerDecoderLayerConfig {
            d_model: self.d_model,
            nhead: self.nhead,
            dim_feedforward: self.dim_feedforward,
            dropout: self.dropout,
            activation: self.activation,
            layer_norm_eps: self.layer_norm_eps,
            norm_first: self.norm_first,
            bias: self.bias,
        };
        let mut transformer = built::Transformer {
            encoder: TransformerEncoderConfig::new(encoder_layer, self.num_encoder_layers)
                .with_norm()
                .try_build_on_device(device)?,
            decoder: TransformerDecoderConfig::new(decoder_layer, self.num_decoder_layers)
                .with_norm()
                .try_build_on_device(device)?,
        };
        transformer.visit_parameters_mut(&mut XavierMatrices(device))?;
        Ok(transformer)
    }
}

/// The masks of a decoder: those of its self-attention over the target (PyTorch's
/// `tgt_mask`, `tgt_key_padding_mask`, `tgt_is_causal`) and of its attention to the
/// memory (`memory_mask`, `memory_key_padding_mask`, `memory_is_causal`).
#[derive(Clone, Debug)]
pub struct DecoderMasks<E: Dtype, D: Storage<E> + Storage<bool>> {
    /// The target's self-attention masks.
    pub tgt: AttentionMasks<E, D>,
    /// The masks of the attention from the target to the memory.
    pub memory: AttentionMasks<E, D>,
}

impl<E: Dtype, D: Storage<E> + Storage<bool>> Default for DecoderMasks<E, D> {
    fn default() -> Self {
        Self {
            tgt: AttentionMasks::new(),
            memory: AttentionMasks::new(),
        }
    }
}

/// The masks of a [`Transformer`]: the source's self-attention (`src_mask`,
/// `src_key_padding_mask`, `src_is_causal`), then the decoder's.
#[derive(Clone, Debug)]
pub struct TransformerMasks<E: Dtype, D: Storage<E> + Storage<bool>> {
    /// The encoder's self-attention masks.
    pub src: AttentionMasks<E, D>,
    /// The decoder's self-attention masks.
    pub tgt: AttentionMasks<E, D>,
    /// The masks of the decoder's attention to the encoder's output.
    pub memory: AttentionMasks<E, D>,
}

impl<E: Dtype, D: Storage<E> + Storage<bool>> Default for TransformerMasks<E, D> {
    fn default() -> Self {
        Self {
            src: AttentionMasks::new(),
            tgt: AttentionMasks::new(),
            memory: AttentionMasks::new(),
        }
    }
}

/// Built transformer layers.
pub mod built {
    use super::*;
    use crate::built::{LayerNorm, Linear, MultiHeadAttention};

    /// A batch of sequences of `M` features.
    type Sequences<B, S, M, E, D, T> = Tensor<(B, S, M), E, D, T>;

    /// A built [`TransformerEncoderLayer`](super::TransformerEncoderLayer).
    #[derive(Clone, Debug)]
    pub struct TransformerEncoderLayer<M: Dim, H: Dim, F: Dim, E: Dtype, D: Storage<E>> {
        /// The self-attention.
        pub self_attn: MultiHeadAttention<M, H, E, D>,
        /// `M → F`.
        pub linear1: Linear<M, F, E, D>,
        /// `F → M`.
        pub linear2: Linear<F, M, E, D>,
        /// The norm of the attention block.
        pub norm1: LayerNorm<M, E, D>,
        /// The norm of the feed-forward block.
        pub norm2: LayerNorm<M, E, D>,
        /// Dropout probability in training.
        pub dropout: f64,
        /// The feed-forward activation.
        pub activation: Activation,
        /// Pre-norm rather than post-norm.
        pub norm_first: bool,
    }

    /// A built [`TransformerDecoderLayer`](super::TransformerDecoderLayer).
    #[derive(Clone, Debug)]
    pub struct TransformerDecoderLayer<M: Dim, H: Dim, F: Dim, E: Dtype, D: Storage<E>> {
        /// The target's self-attention.
        pub self_attn: MultiHeadAttention<M, H, E, D>,
        /// The attention from the target to the memory.
        pub multihead_attn: MultiHeadAttention<M, H, E, D>,
        /// `M → F`.
        pub linear1: Linear<M, F, E, D>,
        /// `F → M`.
        pub linear2: Linear<F, M, E, D>,
        /// The norm of the self-attention block.
        pub norm1: LayerNorm<M, E, D>,
        /// The norm of the memory-attention block.
        pub norm2: LayerNorm<M, E, D>,
        /// The norm of the feed-forward block.
        pub norm3: LayerNorm<M, E, D>,
        /// Dropout probability in training.
        pub dropout: f64,
        /// The feed-forward activation.
        pub activation: Activation,
        /// Pre-norm rather than post-norm.
        pub norm_first: bool,
    }

    /// A built [`TransformerEncoder`](super::TransformerEncoder).
    #[derive(Clone, Debug)]
    pub struct TransformerEncoder<M: Dim, H: Dim, F: Dim, E: Dtype, D: Storage<E>> {
        /// The layers, in order.
        pub layers: Vec<TransformerEncoderLayer<M, H, F, E, D>>,
        /// The norm after the last layer.
        pub norm: Option<LayerNorm<M, E, D>>,
    }

    /// A built [`TransformerDecoder`](super::TransformerDecoder).
    #[derive(Clone, Debug)]
    pub struct TransformerDecoder<M: Dim, H: Dim, F: Dim, E: Dtype, D: Storage<E>> {
        /// The layers, in order.
        pub layers: Vec<TransformerDecoderLayer<M, H, F, E, D>>,
        /// The norm after the last layer.
        pub norm: Option<LayerNorm<M, E, D>>,
    }

    /// A built [`Transformer`](super::Transformer).
    #[derive(Clone, Debug)]
    pub struct Transformer<M: Dim, H: Dim, F: Dim, E: Dtype, D: Storage<E>> {
        /// The encoder, with its final norm.
        pub encoder: TransformerEncoder<M, H, F, E, D>,
        /// The decoder, with its final norm.
        pub decoder: TransformerDecoder<M, H, F, E, D>,
    }

    /// Visits named sub-modules in order, as PyTorch lists a module's children.
    macro_rules! visit_fields {
        ($type:ident: $($field:ident),+) => {
            impl<M: Dim, H: Dim, F: Dim, E: Dtype, D: Storage<E>> VisitParameters<E, D> for $type<M, H, F, E, D> {
                fn visit_parameters<V: ParameterVisitor<E, D>>(&self, visitor: &mut V) -> Result<(), Error> {
                    $(self.$field.visit_parameters(&mut Prefixed::new(stringify!($field), visitor))?;)+
                    Ok(())
                }
                fn visit_parameters_mut<V: ParameterVisitorMut<E, D>>(&mut self, visitor: &mut V) -> Result<(), Error> {
                    $(self.$field.visit_parameters_mut(&mut Prefixed::new(stringify!($field), visitor))?;)+
                    Ok(())
                }
            }
        };
    }
    visit_fields!(TransformerEncoderLayer: self_attn, linear1, linear2, norm1, norm2);
    visit_fields!(TransformerDecoderLayer: self_attn, multihead_attn, linear1, linear2, norm1, norm2, norm3);
    visit_fields!(Transformer: encoder, decoder);

    /// `layers.<i>.…` then `norm.…`.
    macro_rules! visit_stack {
        ($type:ident) => {
            impl<M: Dim, H: Dim, F: Dim, E: Dtype, D: Storage<E>> VisitParameters<E, D> for $type<M, H, F, E, D> {
                fn visit_parameters<V: ParameterVisitor<E, D>>(&self, visitor: &mut V) -> Result<(), Error> {
                    for (index, layer) in self.layers.iter().enumerate() {
                        let prefix = format!("layers.{index}");
                        layer.visit_parameters(&mut Prefixed::new(&prefix, visitor))?;
                    }
                    match &self.norm {
                        Some(norm) => norm.visit_parameters(&mut Prefixed::new("norm", visitor)),
                        None => Ok(()),
                    }
                }
                fn visit_parameters_mut<V: ParameterVisitorMut<E, D>>(&mut self, visitor: &mut V) -> Result<(), Error> {
                    for (index, layer) in self.layers.iter_mut().enumerate() {
                        let prefix = format!("layers.{index}");
                        layer.visit_parameters_mut(&mut Prefixed::new(&prefix, visitor))?;
                    }
                    match &mut self.norm {
                        Some(norm) => norm.visit_parameters_mut(&mut Prefixed::new("norm", visitor)),
                        None => Ok(()),
                    }
                }
            }
        };
    }
    visit_stack!(TransformerEncoder);
    visit_stack!(TransformerDecoder);

    /// `linear2(dropout(activation(linear1(x))))`, the feed-forward block before its
    /// own dropout.
    fn feed_forward<B: Dim, S: Dim, M: Dim, F: Dim, E: Dtype, D: TransformerKernels<E>, T>(
        linear1: &Linear<M, F, E, D>,
        linear2: &Linear<F, M, E, D>,
        activation: Activation,
        p: f64,
        training: bool,
        x: Sequences<B, S, M, E, D, T>,
    ) -> Result<Sequences<B, S, M, E, D, T>, Error>
    where
        T: Tape<E, D> + MergeTapes<T, Output = T>,
    {
        let hidden = linear1.try_forward(x)?;
        let hidden = match activation {
            Activation::Relu => hidden.try_relu()?,
            Activation::Gelu => hidden.try_gelu()?,
        };
        linear2.try_forward(dropout(hidden, p, training)?)
    }

    /// Self-attention of `x` under `masks`, before its block's dropout.
    fn self_attention<B: Dim, S: Dim, M: Dim, H: Dim, E: Dtype, D: TransformerKernels<E>, T>(
        attention: &MultiHeadAttention<M, H, E, D>,
        x: Sequences<B, S, M, E, D, T>,
        masks: &AttentionMasks<E, D>,
        training: bool,
    ) -> Result<Sequences<B, S, M, E, D, T>, Error>
    where
        T: Tape<E, D> + MergeTapes<T, Output = T>,
    {
        Ok(attention.try_attend(x.clone(), x.clone(), x, masks, training, false)?.0)
    }

    impl<M: Dim, H: Dim, F: Dim, E: Dtype, D: TransformerKernels<E>> TransformerEncoderLayer<M, H, F, E, D> {
        /// The layer on `(batch, sequence, M)` under the self-attention's `masks`
        /// (PyTorch's `src_mask`, `src_key_padding_mask`, `is_causal`), for inference.
        /// Errors name a mask whose shape does not fit.
        pub fn try_forward_masked<B: Dim, S: Dim, T>(
            &self,
            src: Sequences<B, S, M, E, D, T>,
            masks: &AttentionMasks<E, D>,
        ) -> Result<Sequences<B, S, M, E, D, T>, Error>
        where
            T: Tape<E, D> + MergeTapes<T, Output = T>,
        {
            self.try_run(src, masks, false)
        }

        /// [`TransformerEncoderLayer::try_forward_masked`], panicking on error.
        ///
        /// # Panics
        /// Where `try_forward_masked` returns an error; the message is the error's.
        #[track_caller]
        pub fn forward_masked<B: Dim, S: Dim, T>(
            &self,
            src: Sequences<B, S, M, E, D, T>,
            masks: &AttentionMasks<E, D>,
        ) -> Sequences<B, S, M, E, D, T>
        where
            T: Tape<E, D> + MergeTapes<T, Output = T>,
        {
            self.try_run(src, masks, false)
                .unwrap_or_else(|error| panic!("{error}"))
        }

        /// [`TransformerEncoderLayer::try_forward_masked`] in training: dropout on.
        pub fn try_forward_masked_mut<B: Dim, S: Dim, T>(
            &mut self,
            src: Sequences<B, S, M, E, D, T>,
            masks: &AttentionMasks<E, D>,
        ) -> Result<Sequences<B, S, M, E, D, T>, Error>
        where
            T: Tape<E, D> + MergeTapes<T, Output = T>,
        {
            self.try_run(src, masks, true)
        }

        fn try_run<B: Dim, S: Dim, T>(
            &self,
            x: Sequences<B, S, M, E, D, T>,
            masks: &AttentionMasks<E, D>,
            training: bool,
        ) -> Result<Sequences<B, S, M, E, D, T>, Error>
        where
            T: Tape<E, D> + MergeTapes<T, Output = T>,
        {
            let p = self.dropout;
            let attend = |x| dropout(self_attention(&self.self_attn, x, masks, training)?, p, training);
            let feed = |x| {
                let y = feed_forward(&self.linear1, &self.linear2, self.activation, p, training, x)?;
                dropout(y, p, training)
            };
            if self.norm_first {
                let x = x.clone().try_add(attend(self.norm1.try_forward(x)?)?)?;
                x.clone().try_add(feed(self.norm2.try_forward(x)?)?)
            } else {
                let x = self.norm1.try_forward(x.clone().try_add(attend(x)?)?)?;
                self.norm2.try_forward(x.clone().try_add(feed(x)?)?)
            }
        }
    }

    impl<M: Dim, H: Dim, F: Dim, E: Dtype, D: TransformerKernels<E>> TransformerDecoderLayer<M, H, F, E, D> {
        /// The layer on the target `(batch, target length, M)` and the memory
        /// `(batch, source length, M)` under `masks`, for inference.
        pub fn try_forward_masked<B: Dim, St: Dim, Ss: Dim, T>(
            &self,
            tgt: Sequences<B, St, M, E, D, T>,
            memory: Sequences<B, Ss, M, E, D, T>,
            masks: &DecoderMasks<E, D>,
        ) -> Result<Sequences<B, St, M, E, D, T>, Error>
        where
            T: Tape<E, D> + MergeTapes<T, Output = T>,
        {
            self.try_run(tgt, memory, masks, false)
        }

        /// [`TransformerDecoderLayer::try_forward_masked`], panicking on error.
        ///
        /// # Panics
        /// Where `try_forward_masked` returns an error; the message is the error's.
        #[track_caller]
        pub fn forward_masked<B: Dim, St: Dim, Ss: Dim, T>(
            &self,
            tgt: Sequences<B, St, M, E, D, T>,
            memory: Sequences<B, Ss, M, E, D, T>,
            masks: &DecoderMasks<E, D>,
        ) -> Sequences<B, St, M, E, D, T>
        where
            T: Tape<E, D> + MergeTapes<T, Output = T>,
        {
            self.try_run(tgt, memory, masks, false)
                .unwrap_or_else(|error| panic!("{error}"))
        }

        /// [`TransformerDecoderLayer::try_forward_masked`] in training: dropout on.
        pub fn try_forward_masked_mut<B: Dim, St: Dim, Ss: Dim, T>(
            &mut self,
            tgt: Sequences<B, St, M, E, D, T>,
            memory: Sequences<B, Ss, M, E, D, T>,
            masks: &DecoderMasks<E, D>,
        ) -> Result<Sequences<B, St, M, E, D, T>, Error>
        where
            T: Tape<E, D> + MergeTapes<T, Output = T>,
        {
            self.try_run(tgt, memory, masks, true)
        }

        fn try_run<B: Dim, St: Dim, Ss: Dim, T>(
            &self,
            x: Sequences<B, St, M, E, D, T>,
            memory: Sequences<B, Ss, M, E, D, T>,
            masks: &DecoderMasks<E, D>,
            training: bool,
        ) -> Result<Sequences<B, St, M, E, D, T>, Error>
        where
            T: Tape<E, D> + MergeTapes<T, Output = T>,
        {
            let p = self.dropout;
            let attend = |x| dropout(self_attention(&self.self_attn, x, &masks.tgt, training)?, p, training);
            let attend_memory = |x| {
                let (y, _) = self.multihead_attn.try_attend(
                    x,
                    memory.clone(),
                    memory.clone(),
                    &masks.memory,
                    training,
                    false,
                )?;
                dropout(y, p, training)
            };
            let feed = |x| {
                let y = feed_forward(&self.linear1, &self.linear2, self.activation, p, training, x)?;
                dropout(y, p, training)
            };
            if self.norm_first {
                let x = x.clone().try_add(attend(self.norm1.try_forward(x)?)?)?;
                let x = x.clone().try_add(attend_memory(self.norm2.try_forward(x)?)?)?;
                x.clone().try_add(feed(self.norm3.try_forward(x)?)?)
            } else {
                let x = self.norm1.try_forward(x.clone().try_add(attend(x)?)?)?;
                let x = self.norm2.try_forward(x.clone().try_add(attend_memory(x)?)?)?;
                self.norm3.try_forward(x.clone().try_add(feed(x)?)?)
            }
        }
    }

    impl<M: Dim, H: Dim, F: Dim, E: Dtype, D: TransformerKernels<E>> TransformerEncoder<M, H, F, E, D> {
        /// Every layer under the same `masks`, then the final norm, for inference.
        pub fn try_forward_masked<B: Dim, S: Dim, T>(
            &self,
            src: Sequences<B, S, M, E, D, T>,
            masks: &AttentionMasks<E, D>,
        ) -> Result<Sequences<B, S, M, E, D, T>, Error>
        where
            T: Tape<E, D> + MergeTapes<T, Output = T>,
        {
            self.try_run(src, masks, false)
        }

        /// [`TransformerEncoder::try_forward_masked`] in training: dropout on.
        pub fn try_forward_masked_mut<B: Dim, S: Dim, T>(
            &mut self,
            src: Sequences<B, S, M, E, D, T>,
            masks: &AttentionMasks<E, D>,
        ) -> Result<Sequences<B, S, M, E, D, T>, Error>
        where
            T: Tape<E, D> + MergeTapes<T, Output = T>,
        {
            self.try_run(src, masks, true)
        }

        fn try_run<B: Dim, S: Dim, T>(
            &self,
            mut x: Sequences<B, S, M, E, D, T>,
            masks: &AttentionMasks<E, D>,
            training: bool,
        ) -> Result<Sequences<B, S, M, E, D, T>, Error>
        where
            T: Tape<E, D> + MergeTapes<T, Output = T>,
        {
            for layer in &self.layers {
                x = layer.try_run(x, masks, training)?;
            }
            match &self.norm {
                Some(norm) => norm.try_forward(x),
                None => Ok(x),
            }
        }
    }

    impl<M: Dim, H: Dim, F: Dim, E: Dtype, D: TransformerKernels<E>> TransformerDecoder<M, H, F, E, D> {
        /// Every layer under the same `masks` and memory, then the final norm, for
        /// inference.
        pub fn try_forward_masked<B: Dim, St: Dim, Ss: Dim, T>(
            &self,
            tgt: Sequences<B, St, M, E, D, T>,
            memory: Sequences<B, Ss, M, E, D, T>,
            masks: &DecoderMasks<E, D>,
        ) -> Result<Sequences<B, St, M, E, D, T>, Error>
        where
            T: Tape<E, D> + MergeTapes<T, Output = T>,
        {
            self.try_run(tgt, memory, masks, false)
        }

        /// [`TransformerDecoder::try_forward_masked`] in training: dropout on.
        pub fn try_forward_masked_mut<B: Dim, St: Dim, Ss: Dim, T>(
            &mut self,
            tgt: Sequences<B, St, M, E, D, T>,
            memory: Sequences<B, Ss, M, E, D, T>,
            masks: &DecoderMasks<E, D>,
        ) -> Result<Sequences<B, St, M, E, D, T>, Error>
        where
            T: Tape<E, D> + MergeTapes<T, Output = T>,
        {
            self.try_run(tgt, memory, masks, true)
        }

        fn try_run<B: Dim, St: Dim, Ss: Dim, T>(
            &self,
            mut x: Sequences<B, St, M, E, D, T>,
            memory: Sequences<B, Ss, M, E, D, T>,
            masks: &DecoderMasks<E, D>,
            training: bool,
        ) -> Result<Sequences<B, St, M, E, D, T>, Error>
        where
            T: Tape<E, D> + MergeTapes<T, Output = T>,
        {
            for layer in &self.layers {
                x = layer.try_run(x, memory.clone(), masks, training)?;
            }
            match &self.norm {
                Some(norm) => norm.try_forward(x),
                None => Ok(x),
            }
        }
    }

    impl<M: Dim, H: Dim, F: Dim, E: Dtype, D: TransformerKernels<E>> Transformer<M, H, F, E, D> {
        /// The decoder's output for `tgt` `(batch, target length, M)`, attending to the
        /// encoding of `src` `(batch, source length, M)`, under `masks`, for inference.
        pub fn try_forward_masked<B: Dim, Ss: Dim, St: Dim, T>(
            &self,
            src: Sequences<B, Ss, M, E, D, T>,
            tgt: Sequences<B, St, M, E, D, T>,
            masks: &TransformerMasks<E, D>,
        ) -> Result<Sequences<B, St, M, E, D, T>, Error>
        where
            T: Tape<E, D> + MergeTapes<T, Output = T>,
        {
            self.try_run(src, tgt, masks, false)
        }

        /// [`Transformer::try_forward_masked`], panicking on error.
        ///
        /// # Panics
        /// Where `try_forward_masked` returns an error; the message is the error's.
        #[track_caller]
        pub fn forward_masked<B: Dim, Ss: Dim, St: Dim, T>(
            &self,
            src: Sequences<B, Ss, M, E, D, T>,
            tgt: Sequences<B, St, M, E, D, T>,
            masks: &TransformerMasks<E, D>,
        ) -> Sequences<B, St, M, E, D, T>
        where
            T: Tape<E, D> + MergeTapes<T, Output = T>,
        {
            self.try_run(src, tgt, masks, false)
                .unwrap_or_else(|error| panic!("{error}"))
        }

        /// [`Transformer::try_forward_masked`] in training: dropout on.
        pub fn try_forward_masked_mut<B: Dim, Ss: Dim, St: Dim, T>(
            &mut self,
            src: Sequences<B, Ss, M, E, D, T>,
            tgt: Sequences<B, St, M, E, D, T>,
            masks: &TransformerMasks<E, D>,
        ) -> Result<Sequences<B, St, M, E, D, T>, Error>
        where
            T: Tape<E, D> + MergeTapes<T, Output = T>,
        {
            self.try_run(src, tgt, masks, true)
        }

        fn try_run<B: Dim, Ss: Dim, St: Dim, T>(
            &self,
            src: Sequences<B, Ss, M, E, D, T>,
            tgt: Sequences<B, St, M, E, D, T>,
            masks: &TransformerMasks<E, D>,
            training: bool,
        ) -> Result<Sequences<B, St, M, E, D, T>, Error>
        where
            T: Tape<E, D> + MergeTapes<T, Output = T>,
        {
            let memory = self.encoder.try_run(src, &masks.src, training)?;
            let decoder_masks = DecoderMasks {
                tgt: masks.tgt.clone(),
                memory: masks.memory.clone(),
            };
            self.decoder.try_run(tgt, memory, &decoder_masks, training)
        }
    }

    /// [`Module`] and [`ModuleMut`] for a layer whose input is one batch of sequences.
    macro_rules! sequence_module {
        ($type:ident) => {
            impl<B: Dim, S: Dim, M: Dim, H: Dim, F: Dim, E: Dtype, D: TransformerKernels<E>, T>
                Module<Sequences<B, S, M, E, D, T>> for $type<M, H, F, E, D>
            where
                T: Tape<E, D> + MergeTapes<T, Output = T>,
            {
                type Output = Sequences<B, S, M, E, D, T>;
                fn try_forward(&self, x: Sequences<B, S, M, E, D, T>) -> Result<Self::Output, Error> {
                    self.try_run(x, &AttentionMasks::new(), false)
                }
            }

            impl<B: Dim, S: Dim, M: Dim, H: Dim, F: Dim, E: Dtype, D: TransformerKernels<E>, T>
                ModuleMut<Sequences<B, S, M, E, D, T>> for $type<M, H, F, E, D>
            where
                T: Tape<E, D> + MergeTapes<T, Output = T>,
            {
                type Output = Sequences<B, S, M, E, D, T>;
                fn try_forward_mut(&mut self, x: Sequences<B, S, M, E, D, T>) -> Result<Self::Output, Error> {
                    self.try_run(x, &AttentionMasks::new(), true)
                }
            }
        };
    }
    sequence_module!(TransformerEncoderLayer);
    sequence_module!(TransformerEncoder);

    /// [`Module`] and [`ModuleMut`] for a layer whose input is a pair of batches of
    /// sequences: (target, memory) for a decoder, (source, target) for a transformer.
    macro_rules! pair_module {
        ($type:ident, $masks:ident) => {
            impl<B: Dim, S1: Dim, S2: Dim, M: Dim, H: Dim, F: Dim, E: Dtype, D: TransformerKernels<E>, T>
                Module<(Sequences<B, S1, M, E, D, T>, Sequences<B, S2, M, E, D, T>)> for $type<M, H, F, E, D>
            where
                T: Tape<E, D> + MergeTapes<T, Output = T>,
            {
                type Output = pair_module!(@output $type, B, S1, S2, M, E, D, T);
                fn try_forward(
                    &self,
                    (first, second): (Sequences<B, S1, M, E, D, T>, Sequences<B, S2, M, E, D, T>),
                ) -> Result<Self::Output, Error> {
                    self.try_run(first, second, &$masks::default(), false)
                }
            }

            impl<B: Dim, S1: Dim, S2: Dim, M: Dim, H: Dim, F: Dim, E: Dtype, D: TransformerKernels<E>, T>
                ModuleMut<(Sequences<B, S1, M, E, D, T>, Sequences<B, S2, M, E, D, T>)> for $type<M, H, F, E, D>
            where
                T: Tape<E, D> + MergeTapes<T, Output = T>,
            {
                type Output = pair_module!(@output $type, B, S1, S2, M, E, D, T);
                fn try_forward_mut(
                    &mut self,
                    (first, second): (Sequences<B, S1, M, E, D, T>, Sequences<B, S2, M, E, D, T>),
                ) -> Result<Self::Output, Error> {
                    self.try_run(first, second, &$masks::default(), true)
                }
            }
        };
        // A decoder gives the target's shape (the first input), a transformer the
        // target's too (the second).
        (@output Transformer, $b:ident, $s1:ident, $s2:ident, $m:ident, $e:ident, $d:ident, $t:ident) => {
            Sequences<$b, $s2, $m, $e, $d, $t>
        };
        (@output $type:ident, $b:ident, $s1:ident, $s2:ident, $m:ident, $e:ident, $d:ident, $t:ident) => {
            Sequences<$b, $s1, $m, $e, $d, $t>
        };
    }
    pair_module!(TransformerDecoderLayer, DecoderMasks);
    pair_module!(TransformerDecoder, DecoderMasks);
    pair_module!(Transformer, TransformerMasks);
}
