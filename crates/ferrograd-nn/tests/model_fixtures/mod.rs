//! What the whole-model parity tests share: the npz reader, the parity tolerances, the
//! fixtures' folder, and parameter gradients by name.

#[path = "../../../ferrograd-autodiff/tests/parity/npz.rs"]
#[allow(dead_code)]
pub mod npz;

use ferrograd_autodiff::{Gradients, ParameterVisitor, Tensor};
use ferrograd_device::{Dtype, Error, Storage};
use ferrograd_nn::checkpoint::CheckpointElement;
use ferrograd_shapes::Shape;
use ferrograd_testing::TestDevice;
use npz::{Array, Data};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The project's parity tolerances (`xtask/parity/README.md`): relative and absolute.
pub trait Tolerance: CheckpointElement {
    /// Relative tolerance.
    const RTOL: f64;
    /// Absolute tolerance.
    const ATOL: f64;
    /// The array's elements, which must be of this dtype.
    fn values(array: &Array) -> Vec<Self>;
}

impl Tolerance for f32 {
    const RTOL: f64 = 1e-5;
    const ATOL: f64 = 1e-6;
    fn values(array: &Array) -> Vec<f32> {
        match &array.data {
            Data::F32(v) => v.clone(),
            other => panic!("expected f32 data, found {other:?}"),
        }
    }
}

impl Tolerance for f64 {
    const RTOL: f64 = 1e-10;
    const ATOL: f64 = 1e-12;
    fn values(array: &Array) -> Vec<f64> {
        match &array.data {
            Data::F64(v) => v.clone(),
            other => panic!("expected f64 data, found {other:?}"),
        }
    }
}

/// The folder of the whole-model fixtures.
pub fn models_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/parity/models")
}

/// Collects every parameter's gradient by name.
pub struct GradientsByName<'a, E: Dtype>(pub &'a Gradients<E, TestDevice>, pub BTreeMap<String, Vec<E>>)
where
    TestDevice: Storage<E>;

impl<E: Dtype> ParameterVisitor<E, TestDevice> for GradientsByName<'_, E>
where
    TestDevice: Storage<E>,
{
    fn visit<S: Shape>(&mut self, name: &str, parameter: &Tensor<S, E, TestDevice>) -> Result<(), Error> {
        self.1.insert(name.to_string(), self.0.try_get(parameter)?.as_vec());
        Ok(())
    }
}
