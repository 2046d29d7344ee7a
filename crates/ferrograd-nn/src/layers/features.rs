//! Shapes with the features on the last axis, seen as rows: what layers that act on
//! each feature vector (normalisations, embeddings) share.

use ferrograd_device::Error;
use ferrograd_shapes::{Dim, Shape};

/// A shape whose last axis has `F` features: `(F,)`, `(batch, F)`,
/// `(batch, sequence, F)`, `(batch, channels, height, F)`.
pub trait FeaturesLast<F: Dim>: Shape {
    /// How many feature vectors the shape holds.
    fn rows(&self) -> usize {
        let dims = self.concrete();
        dims.as_ref()[..Self::NUM_DIMS - 1].iter().product()
    }
}

impl<F: Dim> FeaturesLast<F> for (F,) {}
impl<A: Dim, F: Dim> FeaturesLast<F> for (A, F) {}
impl<A: Dim, B: Dim, F: Dim> FeaturesLast<F> for (A, B, F) {}
impl<A: Dim, B: Dim, C: Dim, F: Dim> FeaturesLast<F> for (A, B, C, F) {}

/// Builds `S` from sizes; an error when a `Const` dim of `S` disagrees.
pub(crate) fn shape_from_dims<S: Shape>(op: &'static str, dims: &[usize]) -> Result<S, Error> {
    let mut concrete = S::Concrete::default();
    let mismatch = || Error::ShapeMismatch {
        op,
        message: format!("the sizes {dims:?} do not fit the shape {}", std::any::type_name::<S>()),
    };
    if concrete.as_ref().len() != dims.len() {
        return Err(mismatch());
    }
    concrete.as_mut().copy_from_slice(dims);
    S::from_concrete(&concrete).ok_or_else(mismatch)
}
