//! PyTorch parity: every fixture in `fixtures/parity/` (written by `cargo xtask parity`
//! from the scripts in `xtask/parity/`) is run through ferrograd and compared.
//!
//! A fixture holds an op's name and params, its inputs, PyTorch's output, a random
//! upstream gradient `g`, and PyTorch's gradients of `sum(output · g)` with respect to
//! each float input. Here the inputs become tensors with run-time dims (float ones
//! traced, bool masks and int64 indices, as `usize` tensors, not), are permuted into
//! non-contiguous views where the fixture says so, go through the op the registry
//! (`parity/registry.rs`) maps the name to, and the output and the gradients of
//! `(output * g).sum()` are compared within the dtype's tolerance; masks and indices
//! exactly. An op with no gradient (a float result of indices, like `one_hot`) is
//! compared forward only, and its fixture must have no `g`. An op with several results
//! (`torch.max(x, dim)`: values and indices) has `output`, `output1`, … each compared
//! as above, and the gradients are those of the sum of `(output_k * g_k).sum()` over
//! its differentiable results. A fixture naming an op the registry does not know fails
//! the test.
//!
//! No Python is needed. `cargo test -p ferrograd-autodiff --test parity -- --nocapture`
//! also shows which fixtures ran; the per-op summary is printed either way.

#[path = "parity/json.rs"]
mod json;
#[path = "parity/npz.rs"]
mod npz;
#[macro_use]
#[path = "parity/dyn_tensor.rs"]
mod dyn_tensor;
#[path = "parity/registry.rs"]
mod registry;

use dyn_tensor::{Dyn, Traced};
use ferrograd_autodiff::prelude::*;
use ferrograd_device::prelude::ArithmeticKernels;
use ferrograd_testing::{TestDevice, test_device};
use json::Json;
use npz::{Array, Data};
use registry::{Arg, Entry, OpFn, Out, Params};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

/// How close ferrograd must come to PyTorch: `|got - expected| <= atol + rtol·|expected|`.
/// NaN matches only NaN, an infinity only the same infinity.
#[derive(Clone, Copy, Debug)]
struct Tol {
    rtol: f64,
    atol: f64,
}

impl Tol {
    fn times(self, factor: f64) -> Tol {
        Tol {
            rtol: self.rtol * factor,
            atol: self.atol * factor,
        }
    }
}

/// f32: about 80 ulp relative, which covers a different but correct evaluation order
/// or libm (PyTorch's vectorised Sleef functions against Rust's `f32` methods).
const F32_TOL: Tol = Tol { rtol: 1e-5, atol: 1e-6 };
/// f64: about 5·10⁵ ulp relative; f64 results agree far better than f32 ones, so this
/// still catches any wrong formula.
const F64_TOL: Tol = Tol {
    rtol: 1e-10,
    atol: 1e-12,
};

/// Traced results, each with its upstream gradient.
type WithUpstream<E> = Vec<(Dyn<E, Traced<E>>, Dyn<E>)>;

/// The dtypes fixtures come in; the per-dtype parts of running a case.
trait ParityFloat: Dtype + std::fmt::Debug {
    const TOL: Tol;
    fn op(entry: &Entry) -> OpFn<Self>
    where
        TestDevice: ArithmeticKernels<Self>;
    fn values(array: &Array) -> Option<&[Self]>;
    /// The gradients of `Σ_k sum(out_k · upstream_k)`.
    fn backward(outs: WithUpstream<Self>) -> Result<Gradients<Self, TestDevice>, String>
    where
        TestDevice: ArithmeticKernels<Self>;
}

macro_rules! parity_float {
    ($e:ty, $variant:ident, $tol:expr, $field:ident) => {
        impl ParityFloat for $e {
            const TOL: Tol = $tol;
            fn op(entry: &Entry) -> OpFn<Self> {
                entry.$field
            }
            fn values(array: &Array) -> Option<&[Self]> {
                match &array.data {
                    Data::$variant(v) => Some(v),
                    _ => None,
                }
            }
            fn backward(outs: WithUpstream<Self>) -> Result<Gradients<Self, TestDevice>, String> {
                let mut total = None;
                for (out, upstream) in outs {
                    let loss = match (out, upstream) {
                        (Dyn::R0(o), Dyn::R0(g)) => o * g, // already a scalar
                        (Dyn::R1(o), Dyn::R1(g)) => (o * g).sum::<Rank0, _>(),
                        (Dyn::R2(o), Dyn::R2(g)) => (o * g).sum::<Rank0, _>(),
                        (Dyn::R3(o), Dyn::R3(g)) => (o * g).sum::<Rank0, _>(),
                        (Dyn::R4(o), Dyn::R4(g)) => (o * g).sum::<Rank0, _>(),
                        (o, g) => {
                            return Err(format!(
                                "output of rank {}, upstream gradient of rank {}",
                                o.rank(),
                                g.rank()
                            ));
                        }
                    };
                    // One result (every op but a few) is its own loss, added to nothing.
                    total = Some(match total {
                        None => loss,
                        Some(sum) => sum + loss,
                    });
                }
                let total = total.ok_or("no differentiable output")?;
                total.try_backward().map_err(|e| format!("backward: {e}"))
            }
        }
    };
}
parity_float!(f32, F32, F32_TOL, f32);
parity_float!(f64, F64, F64_TOL, f64);

/// One fixture file, read.
struct Fixture {
    /// Relative to `fixtures/parity/`.
    name: String,
    case: String,
    op: String,
    dtype: String,
    /// Why ferrograd knowingly differs from PyTorch in this case, if it does.
    diverges: Option<String>,
    params: Params,
    /// Per input: its `permute` (the op sees the base through it), if any.
    permutes: Vec<Option<Vec<usize>>>,
    arrays: BTreeMap<String, Array>,
}

impl Fixture {
    fn read(root: &Path, path: &Path) -> Result<Fixture, String> {
        let arrays = npz::read_npz(path)?;
        let meta = match arrays.get("meta").map(|a| &a.data) {
            Some(Data::U8(bytes)) => String::from_utf8(bytes.clone()).map_err(|e| format!("meta: {e}"))?,
            _ => return Err("no uint8 `meta` entry".into()),
        };
        let meta = Json::parse(&meta).map_err(|e| format!("meta: {e}"))?;
        let mut permutes = Vec::new();
        for input in meta.get("inputs")?.as_array()? {
            permutes.push(match input.get("permute")? {
                Json::Null => None,
                axes => Some(axes.as_usizes()?),
            });
        }
        Ok(Fixture {
            name: path.strip_prefix(root).unwrap_or(path).display().to_string(),
            case: meta.get("case")?.as_str()?.to_string(),
            op: meta.get("op")?.as_str()?.to_string(),
            dtype: meta.get("dtype")?.as_str()?.to_string(),
            diverges: match meta.get("diverges")? {
                Json::Null => None,
                reason => Some(reason.as_str()?.to_string()),
            },
            params: Params(meta.get("params")?.clone()),
            permutes,
            arrays,
        })
    }

    fn array(&self, key: &str) -> Result<&Array, String> {
        self.arrays.get(key).ok_or_else(|| format!("no entry `{key}`"))
    }

    fn floats<E: ParityFloat>(&self, key: &str) -> Result<(&[E], &[usize]), String> {
        let array = self.array(key)?;
        let values = E::values(array).ok_or_else(|| {
            format!(
                "`{key}` is {}, the fixture's dtype is {}",
                array.dtype_name(),
                self.dtype
            )
        })?;
        Ok((values, &array.shape))
    }
}

/// Runs one fixture; `Err` lists every mismatch.
fn run_fixture<E: ParityFloat>(fixture: &Fixture, entry: &Entry) -> Result<(), String>
where
    TestDevice: ArithmeticKernels<E>,
{
    let dev = test_device();
    let tol = E::TOL.times(entry.loosen);

    let mut bases: Vec<Option<Dyn<E>>> = Vec::new();
    let mut args = Vec::new();
    for (i, permute) in fixture.permutes.iter().enumerate() {
        let key = format!("input{i}");
        let array = fixture.array(&key)?;
        if let Data::Bool(mask) = &array.data {
            args.push(Arg::Bool(Dyn::from_vec(&dev, mask.clone(), &array.shape)?));
            bases.push(None);
            continue;
        }
        if let Data::I64(values) = &array.data {
            let indices = values
                .iter()
                .map(|&i| usize::try_from(i).map_err(|_| format!("{key}: negative index {i}")))
                .collect::<Result<Vec<usize>, _>>()?;
            let indices = Dyn::from_vec(&dev, indices, &array.shape)?;
            args.push(Arg::Index(match permute {
                None => indices,
                Some(axes) => permute_axes!(indices, axes.as_slice()),
            }));
            bases.push(None);
            continue;
        }
        let (values, shape) = fixture.floats::<E>(&key)?;
        let base = Dyn::from_vec(&dev, values.to_vec(), shape)?;
        let traced = base.trace();
        let view = match permute {
            None => traced,
            Some(axes) => permute_input(traced, axes)?,
        };
        args.push(Arg::Float(view));
        bases.push(Some(base));
    }

    let outs = match (E::op(entry))(&fixture.params, args)? {
        Out::Tuple(outs) => outs,
        out => vec![out],
    };
    // A result PyTorch gives beyond ferrograd's would go unchecked.
    if fixture.arrays.contains_key(&format!("output{}", outs.len().max(1))) {
        return Err(format!("PyTorch gives more results than ferrograd's {}", outs.len()));
    }
    let mut mismatches = Vec::new();
    let mut differentiable = Vec::new();
    for (k, out) in outs.into_iter().enumerate() {
        let suffix = if k == 0 { String::new() } else { k.to_string() };
        let (key, grad_key) = (format!("output{suffix}"), format!("grad_output{suffix}"));
        let key = key.as_str();
        let expected = fixture.array(key)?;
        match out {
            Out::Bool(mask) => {
                let Data::Bool(want) = &expected.data else {
                    return Err(format!(
                        "ferrograd gives a mask, PyTorch's {key} is {}",
                        expected.dtype_name()
                    ));
                };
                check_shape(key, &mask.dims(), &expected.shape)?;
                if let Err(e) = compare_exact(key, &mask.to_vec(), want, &expected.shape) {
                    mismatches.push(e);
                }
            }
            Out::Index(indices) => {
                let Data::I64(want) = &expected.data else {
                    return Err(format!(
                        "ferrograd gives indices, PyTorch's {key} is {}",
                        expected.dtype_name()
                    ));
                };
                check_shape(key, &indices.dims(), &expected.shape)?;
                let got: Vec<i64> = indices.to_vec().into_iter().map(|i| i as i64).collect();
                if let Err(e) = compare_exact(key, &got, want, &expected.shape) {
                    mismatches.push(e);
                }
            }
            Out::Const(out) => {
                if fixture.arrays.contains_key(&grad_key) {
                    return Err(format!(
                        "ferrograd's {key} has no gradient, PyTorch's does (the fixture has a `{grad_key}`)"
                    ));
                }
                let (want, shape) = fixture.floats::<E>(key)?;
                check_shape(key, &out.dims(), shape)?;
                if let Err(e) = compare(key, &out.to_vec(), want, shape, tol) {
                    mismatches.push(e);
                }
            }
            Out::Float(out) => {
                let (want, shape) = fixture.floats::<E>(key)?;
                check_shape(key, &out.dims(), shape)?;
                if let Err(e) = compare(key, &out.to_vec(), want, shape, tol) {
                    mismatches.push(e);
                }
                let (upstream, up_shape) = fixture.floats::<E>(&grad_key)?;
                differentiable.push((out, Dyn::from_vec(&dev, upstream.to_vec(), up_shape)?));
            }
            Out::Tuple(_) => return Err("the registry gave a tuple inside a tuple".into()),
        }
    }
    if !differentiable.is_empty() {
        let grads = E::backward(differentiable)?;
        for (i, base) in bases.iter().enumerate() {
            if let Some(base) = base {
                let key = format!("grad_input{i}");
                let (want, shape) = fixture.floats::<E>(&key)?;
                if let Err(e) = compare(&key, &base.grad(&grads), want, shape, tol) {
                    mismatches.push(e);
                }
            }
        }
    }
    if mismatches.is_empty() {
        Ok(())
    } else {
        Err(mismatches.join("\n"))
    }
}

/// The input seen through `permute(axes)`, as the fixture asks: a non-contiguous view.
fn permute_input<E: ParityFloat>(x: Dyn<E, Traced<E>>, axes: &[usize]) -> Result<Dyn<E, Traced<E>>, String>
where
    TestDevice: ArithmeticKernels<E>,
{
    Ok(permute_axes!(x, axes))
}

fn check_shape(what: &str, got: &[usize], expected: &[usize]) -> Result<(), String> {
    if got == expected {
        Ok(())
    } else {
        Err(format!("{what}: ferrograd's shape {got:?}, PyTorch's {expected:?}"))
    }
}

/// The multi-index of the `flat` element of a row-major array of `shape`.
fn unravel(mut flat: usize, shape: &[usize]) -> Vec<usize> {
    let mut index = vec![0; shape.len()];
    for (axis, &dim) in shape.iter().enumerate().rev() {
        if dim > 0 {
            index[axis] = flat % dim;
            flat /= dim;
        }
    }
    index
}

fn compare<E: ParityFloat>(what: &str, got: &[E], expected: &[E], shape: &[usize], tol: Tol) -> Result<(), String> {
    if got.len() != expected.len() {
        return Err(format!(
            "{what}: {} elements, PyTorch has {}",
            got.len(),
            expected.len()
        ));
    }
    // How far each element is outside its tolerance (> 1: outside); the worst is shown.
    let mut worst = (0, 0.0f64);
    let mut failing = 0;
    for (i, (&g, &e)) in got.iter().zip(expected).enumerate() {
        let (g64, e64) = (g.to_f64(), e.to_f64());
        let excess = if g64.is_nan() || e64.is_nan() {
            if g64.is_nan() && e64.is_nan() {
                0.0
            } else {
                f64::INFINITY
            }
        } else if g64.is_infinite() || e64.is_infinite() {
            if g64 == e64 { 0.0 } else { f64::INFINITY }
        } else {
            (g64 - e64).abs() / (tol.atol + tol.rtol * e64.abs())
        };
        if excess > 1.0 {
            failing += 1;
        }
        if excess > worst.1 {
            worst = (i, excess);
        }
    }
    if failing == 0 {
        return Ok(());
    }
    let (i, _) = worst;
    let (g, e) = (got[i], expected[i]);
    let allowed = tol.atol + tol.rtol * e.to_f64().abs();
    Err(format!(
        "{what}: {failing} of {} elements out of tolerance; worst at index {:?}: ferrograd {g:?}, PyTorch {e:?}, \
         |diff| {:e} > tol {allowed:e} (atol {:e} + rtol {:e}·|PyTorch|)",
        got.len(),
        unravel(i, shape),
        (g.to_f64() - e.to_f64()).abs(),
        tol.atol,
        tol.rtol,
    ))
}

fn compare_exact<T: PartialEq + std::fmt::Display>(
    what: &str,
    got: &[T],
    expected: &[T],
    shape: &[usize],
) -> Result<(), String> {
    if got.len() != expected.len() {
        return Err(format!(
            "{what}: {} elements, PyTorch has {}",
            got.len(),
            expected.len()
        ));
    }
    let wrong: Vec<usize> = (0..got.len()).filter(|&i| got[i] != expected[i]).collect();
    match wrong.first() {
        None => Ok(()),
        Some(&i) => Err(format!(
            "{what}: {} of {} elements differ; first at index {:?}: ferrograd {}, PyTorch {}",
            wrong.len(),
            got.len(),
            unravel(i, shape),
            got[i],
            expected[i]
        )),
    }
}

fn fixture_root() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/parity");
    root.canonicalize().unwrap_or(root)
}

/// Fixture folders that other crates' tests read: whole models and losses
/// (`ferrograd-nn`'s `tests/models.rs` and `tests/losses_parity.rs`), optimizers
/// (`ferrograd-optim`), ResNet-18 (`examples/tests/resnet18.rs`).
const OTHER_CRATES_FOLDERS: [&str; 4] = ["models", "loss", "optim", "resnet"];

/// Every `.npz` below `dir` (but not in [`OTHER_CRATES_FOLDERS`]), sorted.
fn fixture_files(dir: &Path) -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()));
        for entry in entries {
            let path = entry.expect("directory entry").path();
            if path.is_dir() {
                if path
                    .file_name()
                    .is_some_and(|name| OTHER_CRATES_FOLDERS.iter().any(|other| name == *other))
                {
                    continue;
                }
                walk(&path, out);
            } else if path.extension().is_some_and(|x| x == "npz") {
                out.push(path);
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, &mut out);
    out.sort();
    out
}

/// Prints past the test harness's capture: the summary shows on every run.
fn report(text: &str) {
    let _ = writeln!(std::io::stderr(), "{text}");
}

#[test]
fn pytorch_parity() {
    let root = fixture_root();
    let files = fixture_files(&root);
    assert!(
        !files.is_empty(),
        "no fixtures in {}: run `cargo xtask parity`",
        root.display()
    );
    let registry = registry::registry();
    let by_name: BTreeMap<&str, &Entry> = registry.iter().map(|e| (e.name, e)).collect();
    assert_eq!(by_name.len(), registry.len(), "an op is registered twice");

    let mut ran: BTreeMap<String, usize> = BTreeMap::new();
    let mut failures: Vec<String> = Vec::new();
    let mut unknown: Vec<String> = Vec::new();
    let mut divergences: Vec<String> = Vec::new();
    for path in &files {
        let fixture = match Fixture::read(&root, path) {
            Ok(f) => f,
            Err(e) => {
                failures.push(format!("{}: unreadable: {e}", path.display()));
                continue;
            }
        };
        let Some(entry) = by_name.get(fixture.op.as_str()) else {
            unknown.push(format!("{} names op `{}`", fixture.name, fixture.op));
            continue;
        };
        *ran.entry(fixture.op.clone()).or_default() += 1;
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| match fixture.dtype.as_str() {
            "f32" => run_fixture::<f32>(&fixture, entry),
            "f64" => run_fixture::<f64>(&fixture, entry),
            other => Err(format!("unsupported dtype `{other}`")),
        }));
        let result = result.unwrap_or_else(|panic| {
            let message = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            Err(format!("panicked: {message}"))
        });
        match (result, &fixture.diverges) {
            (Ok(()), None) => {}
            (Err(e), None) => failures.push(format!(
                "FAIL {} ({}, {}, {}):\n    {}",
                fixture.case,
                fixture.op,
                fixture.dtype,
                fixture.name,
                e.replace('\n', "\n    ")
            )),
            // A known divergence must still differ: once it matches, drop its marker.
            (Err(e), Some(reason)) => divergences.push(format!(
                "  {} ({}): {reason}\n    {}",
                fixture.name,
                fixture.dtype,
                e.lines().next().unwrap_or_default()
            )),
            (Ok(()), Some(reason)) => failures.push(format!(
                "FAIL {} ({}): marked `diverges` ({reason}) but matches PyTorch now: remove the marker \
                 in xtask/parity/ and regenerate",
                fixture.case, fixture.name
            )),
        }
    }

    let total: usize = ran.values().sum();
    let counts: Vec<String> = ran.iter().map(|(op, n)| format!("{op} {n}")).collect();
    report(&format!(
        "parity: {total} fixtures of {} ops from {}:",
        ran.len(),
        root.display()
    ));
    for line in counts.chunks(8) {
        report(&format!("  {}", line.join(", ")));
    }
    let untested: Vec<&str> = registry
        .iter()
        .map(|e| e.name)
        .filter(|n| !ran.contains_key(*n))
        .collect();
    if !untested.is_empty() {
        report(&format!(
            "parity: registered ops without fixtures: {}",
            untested.join(", ")
        ));
    }
    if !divergences.is_empty() {
        report(&format!(
            "parity: {} fixtures of known divergences from PyTorch (cases marked `diverges`), still differing:",
            divergences.len()
        ));
        for line in &divergences {
            report(line);
        }
    }
    for failure in &failures {
        report(failure);
    }
    assert!(
        unknown.is_empty(),
        "fixtures name ops the registry (tests/parity/registry.rs) does not know:\n  {}",
        unknown.join("\n  ")
    );
    assert!(
        failures.is_empty(),
        "{} of {} fixtures failed (listed above)",
        failures.len(),
        files.len()
    );
}
