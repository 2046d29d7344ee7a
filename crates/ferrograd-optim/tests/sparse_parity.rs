//! PyTorch parity of sparse embedding gradients and the optimizers that take them:
//! every fixture in `fixtures/parity/sparse/` (written by `xtask/parity/cases_sparse.py`
//! through `cargo xtask parity`) is replayed. Each is `nn.Embedding(sparse=True)`
//! trained for 5 steps by `SGD`, `Adagrad` or `SparseAdam` with the loss
//! `sum(embedding(ids) * grad_output)`; here the same table takes the same steps, and
//! after each the coalesced sparse gradient (rows and values) and the table are
//! compared with PyTorch's. A fixture naming an optimizer or a hyperparameter this test
//! does not know fails it.

#[allow(dead_code)]
#[path = "../../ferrograd-autodiff/tests/parity/json.rs"]
mod json;
#[allow(dead_code)]
#[path = "../../ferrograd-autodiff/tests/parity/npz.rs"]
mod npz;

use ferrograd_device::Storage;
use ferrograd_nn::built::Embedding;
use ferrograd_nn::prelude::*;
use ferrograd_optim::{Adagrad, AdagradConfig, Optimizer, Sgd, SgdConfig, SparseAdam, SparseAdamConfig};
use ferrograd_testing::{TestDevice, test_device};
use json::Json;
use npz::{Array, Data};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The op parity test's tolerances, `|got − expected| <= atol + rtol·|expected|`.
trait ParityFloat: Dtype {
    const RTOL: f64;
    const ATOL: f64;
    fn values(array: &Array) -> Option<&[Self]>;
}

impl ParityFloat for f32 {
    const RTOL: f64 = 1e-5;
    const ATOL: f64 = 1e-6;
    fn values(array: &Array) -> Option<&[f32]> {
        match &array.data {
            Data::F32(v) => Some(v),
            _ => None,
        }
    }
}

impl ParityFloat for f64 {
    const RTOL: f64 = 1e-10;
    const ATOL: f64 = 1e-12;
    fn values(array: &Array) -> Option<&[f64]> {
        match &array.data {
            Data::F64(v) => Some(v),
            _ => None,
        }
    }
}

fn compare<E: ParityFloat>(what: &str, got: &[E], expected: &[E]) -> Result<(), String> {
    if got.len() != expected.len() {
        return Err(format!("{what}: {} values, PyTorch has {}", got.len(), expected.len()));
    }
    for (i, (&g, &e)) in got.iter().zip(expected).enumerate() {
        let (g, e) = (g.to_f64(), e.to_f64());
        // Written so that a NaN on either side fails.
        let within = (g - e).abs() <= E::ATOL + E::RTOL * e.abs();
        if !within {
            return Err(format!("{what}[{i}]: ferrograd {g}, PyTorch {e}"));
        }
    }
    Ok(())
}

fn floats<E: ParityFloat>(arrays: &BTreeMap<String, Array>, key: &str) -> Result<Vec<E>, String> {
    let array = arrays.get(key).ok_or_else(|| format!("no entry `{key}`"))?;
    E::values(array)
        .map(<[E]>::to_vec)
        .ok_or_else(|| format!("`{key}` is {}, not {}", array.dtype_name(), E::NAME))
}

fn indices(arrays: &BTreeMap<String, Array>, key: &str) -> Result<Vec<usize>, String> {
    match arrays.get(key).map(|a| &a.data) {
        Some(Data::I64(v)) => v
            .iter()
            .map(|&i| usize::try_from(i).map_err(|_| format!("`{key}`: negative index {i}")))
            .collect(),
        _ => Err(format!("no int64 entry `{key}`")),
    }
}

fn entries(config: &Json) -> Result<Vec<(&str, &Json)>, String> {
    match config {
        Json::Object(map) => Ok(map.iter().map(|(k, v)| (k.as_str(), v)).collect()),
        other => Err(format!("expected a config object, found {other}")),
    }
}

fn boolean(value: &Json, key: &str) -> Result<bool, String> {
    match value {
        Json::Bool(b) => Ok(*b),
        other => Err(format!("`{key}`: expected a boolean, found {other}")),
    }
}

fn number(value: &Json, key: &str) -> Result<f64, String> {
    value.as_f64().map_err(|e| format!("`{key}`: {e}"))
}

fn unknown(optimizer: &str, key: &str) -> String {
    format!("{optimizer}: unknown hyperparameter `{key}` (teach this test and ferrograd-optim about it)")
}

/// Replays one fixture with optimizer `O`: a function per float type, because the
/// ops' kernel bounds hold for each but are not implied by `Dtype`.
macro_rules! replay {
    ($name:ident, $E:ty) => {
        fn $name<O: Optimizer<$E, TestDevice>>(
            arrays: &BTreeMap<String, Array>,
            meta: &Json,
            mut optimizer: O,
        ) -> Result<(), String> {
            type E = $E;
            let (rows, width) = (
                meta.get("num_embeddings")?.as_usize()?,
                meta.get("embedding_dim")?.as_usize()?,
            );
            let steps = meta.get("steps")?.as_usize()?;
            let dev = test_device();
            let mut table: Embedding<usize, usize, E, TestDevice> = dev
                .try_build_module_with::<_, E>(EmbeddingConfig::new(rows, width).sparse(true))
                .map_err(|e| e.to_string())?;
            *table.weight.storage_mut() = dev
                .try_from_host(floats::<E>(arrays, "weight")?)
                .map_err(|e| e.to_string())?;
            for step in 1..=steps {
                let ids = indices(arrays, &format!("ids_step{step}"))?;
                let n = ids.len();
                let ids = dev.tensor_from_vec(ids, (n,));
                let upstream = dev.tensor_from_vec(
                    floats::<E>(arrays, &format!("grad_output_step{step}"))?,
                    (n, width),
                );
                let grads = table.try_alloc_grads().map_err(|e| e.to_string())?;
                let out = table
                    .try_forward(ids.traced_indices(grads))
                    .map_err(|e| e.to_string())?;
                let grads = (out * upstream).sum::<Rank0, _>().backward();
                let grad = grads
                    .sparse_grad(&table.weight)
                    .ok_or_else(|| format!("step {step}: the gradient is not sparse"))?;
                let expected_rows = indices(arrays, &format!("grad_indices_step{step}"))?;
                if grad.indices() != expected_rows.as_slice() {
                    return Err(format!(
                        "step {step}: gradient rows {:?}, PyTorch {expected_rows:?}",
                        grad.indices()
                    ));
                }
                let values = floats::<E>(arrays, &format!("grad_values_step{step}"))?;
                compare(
                    &format!("step {step}: gradient values"),
                    &dev.try_to_host(grad.values()).map_err(|e| e.to_string())?,
                    &values,
                )?;
                optimizer
                    .step(&mut table, &grads)
                    .map_err(|e| format!("step {step}: {e}"))?;
                let expected = floats::<E>(arrays, &format!("weight_step{step}"))?;
                compare(&format!("step {step}: weight"), &table.weight.as_vec(), &expected)?;
            }
            Ok(())
        }
    };
}

replay!(replay_f32, f32);
replay!(replay_f64, f64);

/// The optimizer a fixture names, built from its config, handed to `replay`.
macro_rules! run {
    ($name:ident, $replay:ident, $E:ty) => {
        fn $name(arrays: &BTreeMap<String, Array>, meta: &Json) -> Result<(), String> {
            let name = meta.get("optimizer")?.as_str()?;
            let config = meta.get("config")?;
            match name {
                "sgd" => {
                    let mut c = SgdConfig::default();
                    for (key, v) in entries(config)? {
                        match key {
                            "lr" => c.lr = number(v, key)?,
                            "momentum" => c.momentum = number(v, key)?,
                            "nesterov" => c.nesterov = boolean(v, key)?,
                            _ => return Err(unknown(name, key)),
                        }
                    }
                    $replay(arrays, meta, Sgd::new(c).map_err(|e| e.to_string())?)
                }
                "adagrad" => {
                    let mut c = AdagradConfig::default();
                    for (key, v) in entries(config)? {
                        match key {
                            "lr" => c.lr = number(v, key)?,
                            "lr_decay" => c.lr_decay = number(v, key)?,
                            "initial_accumulator_value" => c.initial_accumulator_value = number(v, key)?,
                            "eps" => c.eps = number(v, key)?,
                            _ => return Err(unknown(name, key)),
                        }
                    }
                    $replay(arrays, meta, Adagrad::new(c).map_err(|e| e.to_string())?)
                }
                "sparse_adam" => {
                    let mut c = SparseAdamConfig::default();
                    for (key, v) in entries(config)? {
                        match key {
                            "lr" => c.lr = number(v, key)?,
                            "eps" => c.eps = number(v, key)?,
                            "maximize" => c.maximize = boolean(v, key)?,
                            "betas" => match v.as_array()? {
                                [a, b] => c.betas = (number(a, key)?, number(b, key)?),
                                _ => return Err(format!("`{key}`: expected two numbers")),
                            },
                            _ => return Err(unknown(name, key)),
                        }
                    }
                    $replay(arrays, meta, SparseAdam::new(c).map_err(|e| e.to_string())?)
                }
                other => Err(format!("unknown optimizer `{other}`")),
            }
        }
    };
}

run!(run_f32, replay_f32, f32);
run!(run_f64, replay_f64, f64);

fn fixtures() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/parity/sparse");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}; run `cargo xtask parity`", dir.display()))
        .map(|entry| entry.expect("directory entry").path())
        .filter(|path| path.extension().is_some_and(|x| x == "zip"))
        .collect();
    files.sort();
    files
}

#[test]
fn sparse_embedding_training_matches_pytorch() {
    let files = fixtures();
    assert!(files.len() >= 14, "expected the sparse fixtures, found {}", files.len());
    let mut failures = Vec::new();
    for path in &files {
        let name = path.file_name().unwrap_or_default().to_string_lossy().into_owned();
        let result = npz::read_npz(path).and_then(|arrays| {
            let meta = match arrays.get("meta").map(|a| &a.data) {
                Some(Data::U8(bytes)) => String::from_utf8(bytes.clone()).map_err(|e| format!("meta: {e}"))?,
                _ => return Err("no uint8 `meta` entry".to_string()),
            };
            let meta = Json::parse(&meta)?;
            match meta.get("dtype")?.as_str()? {
                "f32" => run_f32(&arrays, &meta),
                "f64" => run_f64(&arrays, &meta),
                other => Err(format!("unknown dtype `{other}`")),
            }
        });
        if let Err(e) = result {
            failures.push(format!("{name}: {e}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} fixtures differ:\n{}",
        failures.len(),
        files.len(),
        failures.join("\n")
    );
}
