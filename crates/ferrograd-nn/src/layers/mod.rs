//! The layers, one file each, with their architecture types and built modules.

pub mod activations;
pub mod attention;
pub mod batch_norm;
pub mod conv;
pub mod dropout;
pub mod embedding;
pub mod features;
pub mod flatten;
pub mod group_norm;
pub mod linear;
pub mod normalization;
pub mod pool;
pub mod residual;
pub mod transformer;
pub mod upsample;

pub use activations::{GELU, GELUTanh, LeakyReLU, LogSoftmax, ReLU, SiLU, Sigmoid, Softmax, Tanh};
pub use attention::{AttentionMask, AttentionMasks, MultiHeadAttention, MultiHeadAttentionConfig};
pub use batch_norm::{BatchNorm1D, BatchNorm1DConfig, BatchNorm2D, BatchNorm2DConfig, BatchNormConfig};
pub use conv::{Conv1D, Conv1DConfig, Conv2D, Conv2DConfig, ConvTranspose2D, ConvTranspose2DConfig};
pub use dropout::Dropout;
pub use embedding::{Embedding, EmbeddingConfig};
pub use features::FeaturesLast;
pub use flatten::Flatten;
pub use group_norm::{GroupNorm, GroupNormConfig};
pub use linear::{Linear, LinearConfig, LinearNoBias};
pub use normalization::{LayerNorm, LayerNormConfig, RMSNorm, RMSNormConfig};
pub use pool::{
    AdaptiveAvgPool2D, AdaptiveAvgPool2DConfig, AvgPool2D, AvgPool2DConfig, GlobalAvgPool2D, GlobalMaxPool2D,
    MaxPool2D, MaxPool2DConfig,
};
pub use residual::{ParallelAdd, Residual};
pub use transformer::{
    Activation, DecoderMasks, Transformer, TransformerConfig, TransformerDecoder, TransformerDecoderConfig,
    TransformerDecoderLayer, TransformerDecoderLayerConfig, TransformerEncoder, TransformerEncoderConfig,
    TransformerEncoderLayer, TransformerEncoderLayerConfig, TransformerMasks,
};
pub use upsample::Upsample2D;
