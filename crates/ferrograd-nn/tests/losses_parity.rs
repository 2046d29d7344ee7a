//! PyTorch parity of the losses: every fixture of `fixtures/parity/loss/` (written by
//! `cargo xtask parity` from `xtask/parity/cases_loss.py`) is run through
//! `ferrograd_nn::losses` and compared with PyTorch's output and gradients.
//!
//! A fixture holds the loss's inputs, PyTorch's output, a random upstream gradient `g`
//! and PyTorch's gradients of `sum(output · g)` with respect to each float input that
//! has one (class weights and `pos_weight` have none). The operands become traced
//! tensors with run-time dims (permuted views where the fixture says so), class
//! indices `usize` tensors; `reduction='none'` calls the `_unreduced` function. A
//! fixture naming a loss this test does not know fails it, as does a gradient PyTorch
//! has and ferrograd does not compute.
//!
//! The file reader, the JSON parser and the run-time-rank tensors are the autodiff
//! parity test's own.

#[allow(dead_code)]
#[path = "../../ferrograd-autodiff/tests/parity/json.rs"]
mod json;
#[allow(dead_code)]
#[path = "../../ferrograd-autodiff/tests/parity/npz.rs"]
mod npz;
#[allow(dead_code, unused_macros)]
#[macro_use]
#[path = "../../ferrograd-autodiff/tests/parity/dyn_tensor.rs"]
mod dyn_tensor;

use dyn_tensor::{Dyn, Traced};
use ferrograd_autodiff::prelude::*;
use ferrograd_device::prelude::{Storage, TrainingKernels};
use ferrograd_nn::losses::*;
use ferrograd_testing::{TestDevice, test_device};
use json::Json;
use npz::{Array, Data};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The project's tolerances (those of `ferrograd-autodiff/tests/parity.rs`, which
/// `cargo xtask parity --check` is calibrated against): `|got − expected| <= atol +
/// rtol·|expected|`; NaN matches only NaN, an infinity only itself.
#[derive(Clone, Copy)]
struct Tol {
    rtol: f64,
    atol: f64,
}
const F32_TOL: Tol = Tol { rtol: 1e-5, atol: 1e-6 };
const F64_TOL: Tol = Tol {
    rtol: 1e-10,
    atol: 1e-12,
};

/// Every loss a fixture may name.
const LOSSES: &[&str] = &[
    "mse_loss",
    "l1_loss",
    "huber_loss",
    "smooth_l1_loss",
    "cross_entropy",
    "cross_entropy_weighted",
    "cross_entropy_probabilities",
    "cross_entropy_probabilities_weighted",
    "nll_loss",
    "nll_loss_weighted",
    "binary_cross_entropy_with_logits",
    "binary_cross_entropy_with_logits_pos_weight",
    "binary_cross_entropy_with_logits_weighted",
    "kl_div",
];

trait ParityFloat: Dtype + std::fmt::Debug {
    const TOL: Tol;
    fn values(array: &Array) -> Option<&[Self]>;
}
impl ParityFloat for f32 {
    const TOL: Tol = F32_TOL;
    fn values(array: &Array) -> Option<&[f32]> {
        match &array.data {
            Data::F32(v) => Some(v),
            _ => None,
        }
    }
}
impl ParityFloat for f64 {
    const TOL: Tol = F64_TOL;
    fn values(array: &Array) -> Option<&[f64]> {
        match &array.data {
            Data::F64(v) => Some(v),
            _ => None,
        }
    }
}

struct Fixture {
    op: String,
    dtype: String,
    params: Json,
    permutes: Vec<Option<Vec<usize>>>,
    arrays: BTreeMap<String, Array>,
}

impl Fixture {
    fn read(path: &Path) -> Result<Fixture, String> {
        let arrays = npz::read_npz(path)?;
        let meta = match arrays.get("meta").map(|a| &a.data) {
            Some(Data::U8(bytes)) => String::from_utf8(bytes.clone()).map_err(|e| format!("meta: {e}"))?,
            _ => return Err("no uint8 `meta` entry".into()),
        };
        let meta = Json::parse(&meta)?;
        let mut permutes = Vec::new();
        for input in meta.get("inputs")?.as_array()? {
            permutes.push(match input.get("permute")? {
                Json::Null => None,
                axes => Some(axes.as_usizes()?),
            });
        }
        if !matches!(meta.get("diverges")?, Json::Null) {
            return Err("a loss case marked `diverges`: this test expects none".into());
        }
        Ok(Fixture {
            op: meta.get("op")?.as_str()?.to_string(),
            dtype: meta.get("dtype")?.as_str()?.to_string(),
            params: meta.get("params")?.clone(),
            permutes,
            arrays,
        })
    }

    fn array(&self, key: &str) -> Result<&Array, String> {
        self.arrays.get(key).ok_or_else(|| format!("no entry `{key}`"))
    }

    fn floats<E: ParityFloat>(&self, key: &str) -> Result<(&[E], &[usize]), String> {
        let array = self.array(key)?;
        let values =
            E::values(array).ok_or_else(|| format!("`{key}` is {}, not {}", array.dtype_name(), self.dtype))?;
        Ok((values, &array.shape))
    }

    fn param(&self, key: &str) -> Option<&Json> {
        self.params.get(key).ok()
    }

    fn reduction(&self) -> Result<Option<Reduction>, String> {
        match self.params.get("reduction")?.as_str()? {
            "mean" => Ok(Some(Reduction::Mean)),
            "sum" => Ok(Some(Reduction::Sum)),
            "none" => Ok(None),
            other => Err(format!("reduction `{other}`")),
        }
    }

    fn scalar<E: Dtype>(&self, key: &str) -> Result<E, String> {
        Ok(E::from_f64(self.params.get(key)?.as_f64()?))
    }

    fn label_smoothing<E: Dtype>(&self) -> Result<E, String> {
        match self.param("label_smoothing") {
            None => Ok(E::ZERO),
            Some(value) => Ok(E::from_f64(value.as_f64()?)),
        }
    }

    fn ignore_index(&self) -> Result<Option<usize>, String> {
        self.param("ignore_index").map(Json::as_usize).transpose()
    }
}

/// The inputs of a fixture: float ones (as given, and traced through the fixture's
/// permutation) and index ones, by position.
#[allow(clippy::large_enum_variant)] // a GPU tensor's handle is large; a fixture has a few inputs
enum Input<E: Dtype>
where
    TestDevice: Storage<E>,
{
    Float { base: Dyn<E>, traced: Dyn<E, Traced<E>> },
    Index(Dyn<usize>),
}

/// A float input: as given (a constant), and traced.
type Float<E> = (Dyn<E>, Dyn<E, Traced<E>>);

fn take_float<E: Dtype>(inputs: &mut [Option<Input<E>>], i: usize) -> Result<Float<E>, String>
where
    TestDevice: Storage<E>,
{
    match inputs.get_mut(i).and_then(Option::take) {
        Some(Input::Float { base, traced }) => Ok((base, traced)),
        _ => Err(format!("input {i} is not a float tensor")),
    }
}

fn take_index<E: Dtype>(inputs: &mut [Option<Input<E>>], i: usize) -> Result<Dyn<usize>, String>
where
    TestDevice: Storage<E>,
{
    match inputs.get_mut(i).and_then(Option::take) {
        Some(Input::Index(t)) => Ok(t),
        _ => Err(format!("input {i} is not an index tensor")),
    }
}

/// A constant rank-1 tensor (class weights, `pos_weight`).
fn vector<E: Dtype>(x: Dyn<E>) -> Result<Tensor<(usize,), E, TestDevice>, String>
where
    TestDevice: Storage<E>,
{
    match x {
        Dyn::R1(t) => Ok(t),
        x => Err(format!("a weight vector of rank {}", x.rank())),
    }
}

fn err(e: Error) -> String {
    e.to_string()
}

/// `$body` with `$a` and `$b` bound to two operands of one rank, its result (reduced
/// or not) back in a `Dyn`.
macro_rules! pair {
    ($x:expr, $y:expr, |$a:ident, $b:ident| $body:expr) => {
        match ($x, $y) {
            (Dyn::R0($a), Dyn::R0($b)) => Dyn::from($body),
            (Dyn::R1($a), Dyn::R1($b)) => Dyn::from($body),
            (Dyn::R2($a), Dyn::R2($b)) => Dyn::from($body),
            (Dyn::R3($a), Dyn::R3($b)) => Dyn::from($body),
            (Dyn::R4($a), Dyn::R4($b)) => Dyn::from($body),
            (x, y) => return Err(format!("operands of ranks {} and {}", x.rank(), y.rank())),
        }
    };
}

/// `$body` with `$a` bound to class-axis logits of rank 1 to 4 and `$t` to targets of
/// one rank less.
macro_rules! classes {
    ($x:expr, $targets:expr, |$a:ident, $t:ident| $body:expr) => {
        match ($x, $targets) {
            (Dyn::R1($a), Dyn::R0($t)) => Dyn::from($body),
            (Dyn::R2($a), Dyn::R1($t)) => Dyn::from($body),
            (Dyn::R3($a), Dyn::R2($t)) => Dyn::from($body),
            (Dyn::R4($a), Dyn::R3($t)) => Dyn::from($body),
            (x, t) => return Err(format!("logits of rank {} and targets of rank {}", x.rank(), t.rank())),
        }
    };
}

/// Runs the fixture's loss; its result, traced.
fn run_loss<E: ParityFloat>(fixture: &Fixture, mut inputs: Vec<Option<Input<E>>>) -> Result<Dyn<E, Traced<E>>, String>
where
    TestDevice: TrainingKernels<E>,
{
    let op = fixture.op.as_str();
    // kl_div has a reduction of its own (with 'batchmean'), read in its arm.
    let reduction = if op == "kl_div" { None } else { fixture.reduction()? };
    Ok(match op {
        "mse_loss" | "l1_loss" | "huber_loss" | "smooth_l1_loss" => {
            let (_, x) = take_float(&mut inputs, 0)?;
            let (_, y) = take_float(&mut inputs, 1)?;
            let parameter: E = match op {
                "huber_loss" => fixture.scalar("delta")?,
                "smooth_l1_loss" => fixture.scalar("beta")?,
                _ => E::ZERO,
            };
            pair!(x, y, |a, b| match (op, reduction) {
                ("mse_loss", Some(r)) => Dyn::from(try_mse_loss(a, b, r).map_err(err)?),
                ("mse_loss", None) => Dyn::from(try_mse_loss_unreduced(a, b).map_err(err)?),
                ("l1_loss", Some(r)) => Dyn::from(try_l1_loss(a, b, r).map_err(err)?),
                ("l1_loss", None) => Dyn::from(try_l1_loss_unreduced(a, b).map_err(err)?),
                ("huber_loss", Some(r)) => Dyn::from(try_huber_loss(a, b, parameter, r).map_err(err)?),
                ("huber_loss", None) => Dyn::from(try_huber_loss_unreduced(a, b, parameter).map_err(err)?),
                (_, Some(r)) => Dyn::from(try_smooth_l1_loss(a, b, parameter, r).map_err(err)?),
                (_, None) => Dyn::from(try_smooth_l1_loss_unreduced(a, b, parameter).map_err(err)?),
            })
        }
        "cross_entropy" | "cross_entropy_weighted" | "nll_loss" | "nll_loss_weighted" => {
            let (_, x) = take_float(&mut inputs, 0)?;
            let targets = take_index(&mut inputs, 1)?;
            let weight = match op {
                "cross_entropy_weighted" | "nll_loss_weighted" => Some(vector(take_float(&mut inputs, 2)?.0)?),
                _ => None,
            };
            let ignore_index = fixture.ignore_index()?;
            let label_smoothing = fixture.label_smoothing::<E>()?;
            let cross = op.starts_with("cross_entropy");
            classes!(x, targets, |a, t| {
                let ce = CrossEntropyOptions {
                    weight: weight.clone(),
                    ignore_index,
                    label_smoothing,
                };
                let nll = NllLossOptions {
                    weight: weight.clone(),
                    ignore_index,
                };
                match (cross, reduction) {
                    (true, Some(r)) => Dyn::from(try_cross_entropy(a, &t, r, ce).map_err(err)?),
                    (true, None) => Dyn::from(try_cross_entropy_unreduced(a, &t, ce).map_err(err)?),
                    (false, Some(r)) => Dyn::from(try_nll_loss(a, &t, r, nll).map_err(err)?),
                    (false, None) => Dyn::from(try_nll_loss_unreduced(a, &t, nll).map_err(err)?),
                }
            })
        }
        "cross_entropy_probabilities" | "cross_entropy_probabilities_weighted" => {
            let (_, x) = take_float(&mut inputs, 0)?;
            let (_, y) = take_float(&mut inputs, 1)?;
            let weight = match op {
                "cross_entropy_probabilities_weighted" => Some(vector(take_float(&mut inputs, 2)?.0)?),
                _ => None,
            };
            let label_smoothing = fixture.label_smoothing::<E>()?;
            macro_rules! soft {
                ($x:expr, $y:expr, $($variant:ident),*) => {
                    match ($x, $y) {
                        $((Dyn::$variant(a), Dyn::$variant(b)) => {
                            let options = ProbabilityCrossEntropyOptions { weight, label_smoothing };
                            match reduction {
                                Some(r) => Dyn::from(try_cross_entropy_with_probabilities(a, b, r, options).map_err(err)?),
                                None => Dyn::from(try_cross_entropy_with_probabilities_unreduced(a, b, options).map_err(err)?),
                            }
                        })*
                        (x, y) => return Err(format!("operands of ranks {} and {}", x.rank(), y.rank())),
                    }
                };
            }
            soft!(x, y, R1, R2, R3, R4)
        }
        "binary_cross_entropy_with_logits"
        | "binary_cross_entropy_with_logits_pos_weight"
        | "binary_cross_entropy_with_logits_weighted" => {
            let (_, x) = take_float(&mut inputs, 0)?;
            let (_, y) = take_float(&mut inputs, 1)?;
            let (weight, pos_weight) = match op {
                "binary_cross_entropy_with_logits_pos_weight" => (None, Some(vector(take_float(&mut inputs, 2)?.0)?)),
                "binary_cross_entropy_with_logits_weighted" => (
                    Some(take_float(&mut inputs, 2)?.0),
                    Some(vector(take_float(&mut inputs, 3)?.0)?),
                ),
                _ => (None, None),
            };
            macro_rules! bce {
                ($x:expr, $y:expr, $($variant:ident),*) => {
                    match ($x, $y) {
                        $((Dyn::$variant(a), Dyn::$variant(b)) => {
                            let weight = match weight {
                                None => None,
                                Some(Dyn::$variant(w)) => Some(w),
                                Some(w) => return Err(format!("a weight of rank {}", w.rank())),
                            };
                            let options = BinaryCrossEntropyOptions { weight, pos_weight };
                            match reduction {
                                Some(r) => Dyn::from(try_binary_cross_entropy_with_logits(a, b, r, options).map_err(err)?),
                                None => Dyn::from(try_binary_cross_entropy_with_logits_unreduced(a, b, options).map_err(err)?),
                            }
                        })*
                        (x, y) => return Err(format!("operands of ranks {} and {}", x.rank(), y.rank())),
                    }
                };
            }
            bce!(x, y, R1, R2, R3, R4)
        }
        "kl_div" => {
            let (_, x) = take_float(&mut inputs, 0)?;
            let (_, y) = take_float(&mut inputs, 1)?;
            let log_target = match fixture.params.get("log_target")? {
                Json::Bool(b) => *b,
                other => return Err(format!("log_target {other}")),
            };
            let kl_reduction = match fixture.params.get("reduction")?.as_str()? {
                "mean" => Some(KlDivReduction::Mean),
                "sum" => Some(KlDivReduction::Sum),
                "batchmean" => Some(KlDivReduction::BatchMean),
                "none" => None,
                other => return Err(format!("reduction `{other}`")),
            };
            pair!(x, y, |a, b| match kl_reduction {
                Some(r) => Dyn::from(try_kl_div(a, b, r, log_target).map_err(err)?),
                None => Dyn::from(try_kl_div_unreduced(a, b, log_target).map_err(err)?),
            })
        }
        other => return Err(format!("unknown loss `{other}`: add it to this test")),
    })
}

/// Runs one fixture; `Err` lists every mismatch.
fn run_fixture<E: ParityFloat>(fixture: &Fixture) -> Result<(), String>
where
    TestDevice: TrainingKernels<E>,
{
    let dev = test_device();
    let mut inputs = Vec::new();
    let mut bases = Vec::new();
    for (i, permute) in fixture.permutes.iter().enumerate() {
        let key = format!("input{i}");
        let array = fixture.array(&key)?;
        if let Data::I64(values) = &array.data {
            let indices = values
                .iter()
                .map(|&v| usize::try_from(v).map_err(|_| format!("{key}: negative index {v}")))
                .collect::<Result<Vec<_>, _>>()?;
            inputs.push(Some(Input::Index(Dyn::from_vec(&dev, indices, &array.shape)?)));
            bases.push(None);
            continue;
        }
        let (values, shape) = fixture.floats::<E>(&key)?;
        let base = Dyn::from_vec(&dev, values.to_vec(), shape)?;
        let traced = match permute {
            None => base.trace(),
            Some(axes) => permute_axes!(base.trace(), axes.as_slice()),
        };
        // A clone keeps the id, so the gradient of either is read through `base`.
        let constant = same_rank!(&base, |t| t.clone());
        bases.push(Some(base));
        inputs.push(Some(Input::Float { base: constant, traced }));
    }

    let out = run_loss::<E>(fixture, inputs)?;
    let tol = E::TOL;
    let mut mismatches = Vec::new();
    let (want, shape) = fixture.floats::<E>("output")?;
    if out.dims() != shape {
        return Err(format!(
            "output: ferrograd's shape {:?}, PyTorch's {shape:?}",
            out.dims()
        ));
    }
    if let Err(e) = compare("output", &out.to_vec(), want, tol) {
        mismatches.push(e);
    }
    let (upstream, up_shape) = fixture.floats::<E>("grad_output")?;
    let upstream = Dyn::from_vec(&dev, upstream.to_vec(), up_shape)?;
    let total = match (out, upstream) {
        (Dyn::R0(o), Dyn::R0(g)) => o * g,
        (Dyn::R1(o), Dyn::R1(g)) => (o * g).sum::<Rank0, _>(),
        (Dyn::R2(o), Dyn::R2(g)) => (o * g).sum::<Rank0, _>(),
        (Dyn::R3(o), Dyn::R3(g)) => (o * g).sum::<Rank0, _>(),
        (o, g) => return Err(format!("output of rank {}, upstream of rank {}", o.rank(), g.rank())),
    };
    let grads = total.try_backward().map_err(err)?;
    for (i, base) in bases.iter().enumerate() {
        let key = format!("grad_input{i}");
        match (base, fixture.arrays.contains_key(&key)) {
            (Some(base), true) => {
                let (want, _) = fixture.floats::<E>(&key)?;
                if let Err(e) = compare(&key, &base.grad(&grads), want, tol) {
                    mismatches.push(e);
                }
            }
            // A constant (class weights, pos_weight): PyTorch has no gradient for it.
            (_, false) => {}
            (None, true) => return Err(format!("PyTorch has {key} for a non-float input")),
        }
    }
    if mismatches.is_empty() {
        Ok(())
    } else {
        Err(mismatches.join("\n"))
    }
}

fn compare<E: ParityFloat>(what: &str, got: &[E], expected: &[E], tol: Tol) -> Result<(), String> {
    if got.len() != expected.len() {
        return Err(format!(
            "{what}: {} elements, PyTorch has {}",
            got.len(),
            expected.len()
        ));
    }
    let mut failures = Vec::new();
    for (i, (&g, &e)) in got.iter().zip(expected).enumerate() {
        let (g, e) = (g.to_f64(), e.to_f64());
        let ok = if g.is_nan() || e.is_nan() {
            g.is_nan() && e.is_nan()
        } else if g.is_infinite() || e.is_infinite() {
            g == e
        } else {
            (g - e).abs() <= tol.atol + tol.rtol * e.abs()
        };
        if !ok {
            failures.push(format!("[{i}] ferrograd {g:e}, PyTorch {e:e}"));
        }
    }
    if failures.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{what}: {} of {} elements out of tolerance: {}",
            failures.len(),
            got.len(),
            failures.iter().take(4).cloned().collect::<Vec<_>>().join(", ")
        ))
    }
}

fn fixture_files() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/parity/loss");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e} (run `cargo xtask parity`)", dir.display()))
        .map(|entry| entry.expect("directory entry").path())
        .filter(|path| path.extension().is_some_and(|x| x == "npz"))
        .collect();
    files.sort();
    files
}

#[test]
fn losses_match_pytorch() {
    let files = fixture_files();
    assert!(!files.is_empty(), "no loss fixtures: run `cargo xtask parity`");
    let mut failures = Vec::new();
    let mut per_loss: BTreeMap<String, usize> = BTreeMap::new();
    for path in &files {
        let name = path.file_name().unwrap_or_default().to_string_lossy().into_owned();
        let result = Fixture::read(path).and_then(|fixture| {
            if !LOSSES.contains(&fixture.op.as_str()) {
                return Err(format!("unknown loss `{}`: add it to this test", fixture.op));
            }
            *per_loss.entry(fixture.op.clone()).or_default() += 1;
            match fixture.dtype.as_str() {
                "f32" => run_fixture::<f32>(&fixture),
                "f64" => run_fixture::<f64>(&fixture),
                other => Err(format!("dtype {other}")),
            }
        });
        if let Err(e) = result {
            failures.push(format!("{name}: {e}"));
        }
    }
    eprintln!("loss parity: {} fixtures: {per_loss:?}", files.len());
    let unused: Vec<&&str> = LOSSES.iter().filter(|l| !per_loss.contains_key(**l)).collect();
    assert!(unused.is_empty(), "losses without fixtures: {unused:?}");
    assert!(
        failures.is_empty(),
        "{} of {} fixtures failed:\n{}",
        failures.len(),
        files.len(),
        failures.join("\n")
    );
}
