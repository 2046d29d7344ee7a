//! PyTorch parity of the optimizers and LR schedules: every fixture in
//! `fixtures/parity/optim/` (written by `xtask/parity/cases_optim.py` through
//! `cargo xtask parity`) is replayed and compared.
//!
//! An optimizer fixture gives two parameters, the gradients of each of 5 steps and
//! PyTorch's parameters after each step; here the same optimizer, built from the
//! fixture's config (and a second parameter group when it has one), takes the same
//! steps. A schedule fixture gives `get_last_lr()` after creation and after each of 20
//! steps. A fixture naming an optimizer, a schedule or a hyperparameter this test does
//! not know fails it.

#[allow(dead_code)]
#[path = "../../ferrograd-autodiff/tests/parity/json.rs"]
mod json;
#[allow(dead_code)]
#[path = "../../ferrograd-autodiff/tests/parity/npz.rs"]
mod npz;

use ferrograd_autodiff::prelude::*;
use ferrograd_autodiff::{ParameterVisitor, ParameterVisitorMut};
use ferrograd_device::Storage;
use ferrograd_device::prelude::TrainingKernels;
use ferrograd_optim::schedule::{
    Anneal, ChainedScheduler, CosineAnnealingLr, ExponentialLr, LinearLr, LrScheduler, MultiStepLr, OneCycleConfig,
    OneCycleLr, SequentialLr, StepLr,
};
use ferrograd_optim::{
    Adagrad, AdagradConfig, Adam, AdamConfig, AdamW, AdamWConfig, GroupSelector, Optimizer, Rmsprop, RmspropConfig,
    Sgd, SgdConfig,
};
use ferrograd_testing::{TestDevice, test_device};
use json::Json;
use npz::{Array, Data};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The tolerances of the op parity test (`crates/ferrograd-autodiff/tests/parity.rs`),
/// `|got − expected| <= atol + rtol·|expected|`.
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

fn compare(what: &str, got: &[f64], expected: &[f64], rtol: f64, atol: f64) -> Result<(), String> {
    if got.len() != expected.len() {
        return Err(format!("{what}: {} values, PyTorch has {}", got.len(), expected.len()));
    }
    for (i, (&g, &e)) in got.iter().zip(expected).enumerate() {
        // Written so that a NaN on either side fails.
        let within = (g - e).abs() <= atol + rtol * e.abs();
        if !within {
            return Err(format!(
                "{what}[{i}]: ferrograd {g}, PyTorch {e} (differ by {:e})",
                (g - e).abs()
            ));
        }
    }
    Ok(())
}

/// The fixtures' two parameters, named `param0` and `param1`.
struct TwoParameters<E: Dtype>
where
    TestDevice: Storage<E>,
{
    param0: Tensor<Rank2<3, 4>, E, TestDevice>,
    param1: Tensor<Rank1<4>, E, TestDevice>,
}

impl<E: Dtype> VisitParameters<E, TestDevice> for TwoParameters<E>
where
    TestDevice: Storage<E>,
{
    fn visit_parameters<V: ParameterVisitor<E, TestDevice>>(&self, visitor: &mut V) -> Result<(), Error> {
        visitor.visit("param0", &self.param0)?;
        visitor.visit("param1", &self.param1)
    }
    fn visit_parameters_mut<V: ParameterVisitorMut<E, TestDevice>>(&mut self, visitor: &mut V) -> Result<(), Error> {
        visitor.visit_mut("param0", &mut self.param0)?;
        visitor.visit_mut("param1", &mut self.param1)
    }
}

struct Fixture {
    name: String,
    meta: Json,
    arrays: BTreeMap<String, Array>,
}

impl Fixture {
    fn read(path: &Path) -> Result<Fixture, String> {
        let arrays = npz::read_npz(path)?;
        let meta = match arrays.get("meta").map(|a| &a.data) {
            Some(Data::U8(bytes)) => String::from_utf8(bytes.clone()).map_err(|e| format!("meta: {e}"))?,
            _ => return Err("no uint8 `meta` entry".into()),
        };
        Ok(Fixture {
            name: path.file_name().unwrap_or_default().to_string_lossy().into_owned(),
            meta: Json::parse(&meta)?,
            arrays,
        })
    }

    fn floats<E: ParityFloat>(&self, key: &str, shape: &[usize]) -> Result<Vec<E>, String> {
        let array = self.arrays.get(key).ok_or_else(|| format!("no entry `{key}`"))?;
        if array.shape != shape {
            return Err(format!("`{key}` has shape {:?}, expected {shape:?}", array.shape));
        }
        E::values(array)
            .map(<[E]>::to_vec)
            .ok_or_else(|| format!("`{key}` is {}, not {}", array.dtype_name(), E::NAME))
    }
}

fn fixtures() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/parity/optim");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}; run `cargo xtask parity`", dir.display()))
        .map(|entry| entry.expect("directory entry").path())
        .filter(|path| path.extension().is_some_and(|x| x == "zip"))
        .collect();
    files.sort();
    files
}

fn number(value: &Json, key: &str) -> Result<f64, String> {
    value.as_f64().map_err(|e| format!("`{key}`: {e}"))
}

fn boolean(value: &Json, key: &str) -> Result<bool, String> {
    match value {
        Json::Bool(b) => Ok(*b),
        other => Err(format!("`{key}`: expected a boolean, found {other}")),
    }
}

fn pair(value: &Json, key: &str) -> Result<(f64, f64), String> {
    match value.as_array()? {
        [a, b] => Ok((number(a, key)?, number(b, key)?)),
        other => Err(format!("`{key}`: expected two numbers, found {}", other.len())),
    }
}

fn entries(config: &Json) -> Result<Vec<(&str, &Json)>, String> {
    match config {
        Json::Object(map) => Ok(map.iter().map(|(k, v)| (k.as_str(), v)).collect()),
        Json::Null => Ok(Vec::new()),
        other => Err(format!("expected a config object, found {other}")),
    }
}

fn unknown(optimizer: &str, key: &str) -> String {
    format!("{optimizer}: unknown hyperparameter `{key}` (teach this test and ferrograd-optim about it)")
}

fn sgd_config(mut c: SgdConfig, json: &Json) -> Result<SgdConfig, String> {
    for (key, v) in entries(json)? {
        match key {
            "lr" => c.lr = number(v, key)?,
            "momentum" => c.momentum = number(v, key)?,
            "dampening" => c.dampening = number(v, key)?,
            "weight_decay" => c.weight_decay = number(v, key)?,
            "nesterov" => c.nesterov = boolean(v, key)?,
            "maximize" => c.maximize = boolean(v, key)?,
            _ => return Err(unknown("sgd", key)),
        }
    }
    Ok(c)
}

fn adam_config(mut c: AdamConfig, json: &Json) -> Result<AdamConfig, String> {
    for (key, v) in entries(json)? {
        match key {
            "lr" => c.lr = number(v, key)?,
            "betas" => c.betas = pair(v, key)?,
            "eps" => c.eps = number(v, key)?,
            "weight_decay" => c.weight_decay = number(v, key)?,
            "amsgrad" => c.amsgrad = boolean(v, key)?,
            "maximize" => c.maximize = boolean(v, key)?,
            _ => return Err(unknown("adam", key)),
        }
    }
    Ok(c)
}

fn adamw_config(mut c: AdamWConfig, json: &Json) -> Result<AdamWConfig, String> {
    for (key, v) in entries(json)? {
        match key {
            "lr" => c.lr = number(v, key)?,
            "betas" => c.betas = pair(v, key)?,
            "eps" => c.eps = number(v, key)?,
            "weight_decay" => c.weight_decay = number(v, key)?,
            "amsgrad" => c.amsgrad = boolean(v, key)?,
            "maximize" => c.maximize = boolean(v, key)?,
            _ => return Err(unknown("adamw", key)),
        }
    }
    Ok(c)
}

fn rmsprop_config(mut c: RmspropConfig, json: &Json) -> Result<RmspropConfig, String> {
    for (key, v) in entries(json)? {
        match key {
            "lr" => c.lr = number(v, key)?,
            "alpha" => c.alpha = number(v, key)?,
            "eps" => c.eps = number(v, key)?,
            "weight_decay" => c.weight_decay = number(v, key)?,
            "momentum" => c.momentum = number(v, key)?,
            "centered" => c.centered = boolean(v, key)?,
            "maximize" => c.maximize = boolean(v, key)?,
            _ => return Err(unknown("rmsprop", key)),
        }
    }
    Ok(c)
}

fn adagrad_config(mut c: AdagradConfig, json: &Json) -> Result<AdagradConfig, String> {
    for (key, v) in entries(json)? {
        match key {
            "lr" => c.lr = number(v, key)?,
            "lr_decay" => c.lr_decay = number(v, key)?,
            "weight_decay" => c.weight_decay = number(v, key)?,
            "initial_accumulator_value" => c.initial_accumulator_value = number(v, key)?,
            "eps" => c.eps = number(v, key)?,
            "maximize" => c.maximize = boolean(v, key)?,
            _ => return Err(unknown("adagrad", key)),
        }
    }
    Ok(c)
}

/// Builds the fixture's optimizer: the default group from `config` over the
/// defaults, a group for `param1` from `group1` over that, as PyTorch merges them.
macro_rules! build {
    ($optimizer:ident, $config:expr, $parse:ident, $fixture:expr) => {{
        let config = $parse($config, $fixture.meta.get("config")?)?;
        let mut optimizer = $optimizer::new(config).map_err(|e| e.to_string())?;
        let group1 = $fixture.meta.get("group1")?;
        if *group1 != Json::Null {
            optimizer
                .add_group(GroupSelector::prefix("param1"), $parse(config, group1)?)
                .map_err(|e| e.to_string())?;
        }
        optimizer
    }};
}

fn run_optimizer<E: ParityFloat>(fixture: &Fixture) -> Result<(), String>
where
    TestDevice: TrainingKernels<E>,
{
    match fixture.meta.get("optimizer")?.as_str()? {
        "sgd" => trajectory::<E, _>(fixture, build!(Sgd, SgdConfig::default(), sgd_config, fixture)),
        "adam" => trajectory::<E, _>(fixture, build!(Adam, AdamConfig::default(), adam_config, fixture)),
        "adamw" => trajectory::<E, _>(fixture, build!(AdamW, AdamWConfig::default(), adamw_config, fixture)),
        "rmsprop" => trajectory::<E, _>(
            fixture,
            build!(Rmsprop, RmspropConfig::default(), rmsprop_config, fixture),
        ),
        "adagrad" => trajectory::<E, _>(
            fixture,
            build!(Adagrad, AdagradConfig::default(), adagrad_config, fixture),
        ),
        other => Err(format!("unknown optimizer `{other}`")),
    }
}

fn trajectory<E: ParityFloat, O: Optimizer<E, TestDevice>>(fixture: &Fixture, mut optimizer: O) -> Result<(), String>
where
    TestDevice: TrainingKernels<E>,
{
    let dev = test_device();
    let shapes: [&[usize]; 2] = [&[3, 4], &[4]];
    let tensor = |values: Vec<E>| dev.try_from_host(values).map_err(|e| e.to_string());
    let mut model = TwoParameters {
        param0: Tensor::try_from_storage(
            tensor(fixture.floats("param0", shapes[0])?)?,
            Default::default(),
            dev.clone(),
        )
        .map_err(|e| e.to_string())?,
        param1: Tensor::try_from_storage(
            tensor(fixture.floats("param1", shapes[1])?)?,
            Default::default(),
            dev.clone(),
        )
        .map_err(|e| e.to_string())?,
    };
    let ids = (model.param0.id(), model.param1.id());
    let steps = fixture.meta.get("steps")?.as_usize()?;
    for step in 1..=steps {
        let mut grads = model.try_alloc_grads().map_err(|e| e.to_string())?;
        let g0 = fixture.floats::<E>(&format!("grad0_step{step}"), shapes[0])?;
        let g1 = fixture.floats::<E>(&format!("grad1_step{step}"), shapes[1])?;
        // `floats` checked the shapes, so each buffer is replaced by one of its length.
        *grads.try_grad_mut(&model.param0).map_err(|e| e.to_string())? = tensor(g0)?;
        *grads.try_grad_mut(&model.param1).map_err(|e| e.to_string())? = tensor(g1)?;
        optimizer
            .step(&mut model, &grads)
            .map_err(|e| format!("step {step}: {e}"))?;
        for (i, got) in [model.param0.as_vec(), model.param1.as_vec()].into_iter().enumerate() {
            let expected = fixture.floats::<E>(&format!("param{i}_step{step}"), shapes[i])?;
            compare(
                &format!("param{i} after step {step}"),
                &got.iter().map(|x| x.to_f64()).collect::<Vec<_>>(),
                &expected.iter().map(|x| x.to_f64()).collect::<Vec<_>>(),
                E::RTOL,
                E::ATOL,
            )?;
        }
    }
    if (model.param0.id(), model.param1.id()) != ids {
        return Err("the parameters' ids changed".into());
    }
    Ok(())
}

fn usize_param(params: &Json, key: &str, default: Option<usize>) -> Result<usize, String> {
    match (params.get(key), default) {
        (Ok(v), _) => v.as_usize(),
        (Err(_), Some(d)) => Ok(d),
        (Err(e), None) => Err(e),
    }
}

fn f64_param(params: &Json, key: &str, default: Option<f64>) -> Result<f64, String> {
    match (params.get(key), default) {
        (Ok(v), _) => number(v, key),
        (Err(_), Some(d)) => Ok(d),
        (Err(e), None) => Err(e),
    }
}

fn check_keys(kind: &str, params: &Json, known: &[&str]) -> Result<(), String> {
    for (key, _) in entries(params)? {
        if !known.contains(&key) {
            return Err(format!("schedule `{kind}`: unknown parameter `{key}`"));
        }
    }
    Ok(())
}

fn build_schedule(spec: &Json, optimizer: &mut Sgd<f64, TestDevice>) -> Result<Box<dyn LrScheduler>, String> {
    let kind = spec.get("kind")?.as_str()?;
    let p = spec.get("params")?;
    let e = |e: Error| e.to_string();
    Ok(match kind {
        "step" => {
            check_keys(kind, p, &["step_size", "gamma"])?;
            Box::new(
                StepLr::new(
                    optimizer,
                    usize_param(p, "step_size", None)?,
                    f64_param(p, "gamma", Some(0.1))?,
                )
                .map_err(e)?,
            )
        }
        "multistep" => {
            check_keys(kind, p, &["milestones", "gamma"])?;
            let milestones = p.get("milestones")?.as_usizes()?;
            Box::new(MultiStepLr::new(optimizer, &milestones, f64_param(p, "gamma", Some(0.1))?).map_err(e)?)
        }
        "exponential" => {
            check_keys(kind, p, &["gamma"])?;
            Box::new(ExponentialLr::new(optimizer, f64_param(p, "gamma", None)?).map_err(e)?)
        }
        "cosine" => {
            check_keys(kind, p, &["T_max", "eta_min"])?;
            Box::new(
                CosineAnnealingLr::new(
                    optimizer,
                    usize_param(p, "T_max", None)?,
                    f64_param(p, "eta_min", Some(0.0))?,
                )
                .map_err(e)?,
            )
        }
        "linear" => {
            check_keys(kind, p, &["start_factor", "end_factor", "total_iters"])?;
            Box::new(
                LinearLr::new(
                    optimizer,
                    f64_param(p, "start_factor", Some(1.0 / 3.0))?,
                    f64_param(p, "end_factor", Some(1.0))?,
                    usize_param(p, "total_iters", Some(5))?,
                )
                .map_err(e)?,
            )
        }
        "onecycle" => {
            check_keys(
                kind,
                p,
                &[
                    "max_lr",
                    "total_steps",
                    "pct_start",
                    "anneal_strategy",
                    "div_factor",
                    "final_div_factor",
                    "three_phase",
                ],
            )?;
            let defaults = OneCycleConfig::default();
            let config = OneCycleConfig {
                pct_start: f64_param(p, "pct_start", Some(defaults.pct_start))?,
                anneal: match p.get("anneal_strategy").and_then(Json::as_str) {
                    Err(_) => defaults.anneal,
                    Ok("cos") => Anneal::Cos,
                    Ok("linear") => Anneal::Linear,
                    Ok(other) => return Err(format!("unknown anneal_strategy `{other}`")),
                },
                div_factor: f64_param(p, "div_factor", Some(defaults.div_factor))?,
                final_div_factor: f64_param(p, "final_div_factor", Some(defaults.final_div_factor))?,
                three_phase: match p.get("three_phase") {
                    Ok(v) => boolean(v, "three_phase")?,
                    Err(_) => defaults.three_phase,
                },
            };
            let max_lrs: Vec<f64> = p
                .get("max_lr")?
                .as_array()?
                .iter()
                .map(|v| number(v, "max_lr"))
                .collect::<Result<_, _>>()?;
            Box::new(
                OneCycleLr::with_max_lrs(optimizer, &max_lrs, usize_param(p, "total_steps", None)?, config)
                    .map_err(e)?,
            )
        }
        "sequential" => {
            check_keys(kind, p, &["schedulers", "milestones"])?;
            let children = p
                .get("schedulers")?
                .as_array()?
                .iter()
                .map(|child| build_schedule(child, optimizer))
                .collect::<Result<Vec<_>, _>>()?;
            let milestones = p.get("milestones")?.as_usizes()?;
            Box::new(SequentialLr::new(optimizer, children, milestones).map_err(e)?)
        }
        "chained" => {
            check_keys(kind, p, &["schedulers"])?;
            let children = p
                .get("schedulers")?
                .as_array()?
                .iter()
                .map(|child| build_schedule(child, optimizer))
                .collect::<Result<Vec<_>, _>>()?;
            Box::new(ChainedScheduler::new(optimizer, children).map_err(e)?)
        }
        other => return Err(format!("unknown schedule `{other}`")),
    })
}

fn run_schedule(fixture: &Fixture) -> Result<(), String> {
    let e = |e: Error| e.to_string();
    let initial: Vec<f64> = fixture
        .meta
        .get("initial_lrs")?
        .as_array()?
        .iter()
        .map(|v| number(v, "initial_lrs"))
        .collect::<Result<_, _>>()?;
    let [first, rest @ ..] = initial.as_slice() else {
        return Err("no initial_lrs".into());
    };
    let mut sgd = Sgd::<f64, TestDevice>::new(SgdConfig {
        lr: *first,
        momentum: 0.9,
        ..Default::default()
    })
    .map_err(e)?;
    for &lr in rest {
        sgd.add_group(
            GroupSelector::predicate(|_| false),
            SgdConfig {
                lr,
                momentum: 0.9,
                ..Default::default()
            },
        )
        .map_err(e)?;
    }
    let mut schedule = build_schedule(fixture.meta.get("schedule")?, &mut sgd)?;
    let steps = fixture.meta.get("steps")?.as_usize()?;
    let lrs = fixture.arrays.get("lrs").ok_or("no entry `lrs`")?;
    let groups = initial.len();
    if lrs.shape != [steps + 1, groups] {
        return Err(format!(
            "`lrs` has shape {:?}, expected [{}, {groups}]",
            lrs.shape,
            steps + 1
        ));
    }
    let expected = f64::values(lrs).ok_or("`lrs` is not float64")?;
    for step in 0..=steps {
        if step > 0 {
            schedule.step(&mut sgd).map_err(|err| format!("step {step}: {err}"))?;
        }
        let row = &expected[step * groups..(step + 1) * groups];
        compare(
            &format!("lrs after step {step}"),
            schedule.last_lr(),
            row,
            f64::RTOL,
            f64::ATOL,
        )?;
        let in_optimizer: Vec<f64> = (0..groups)
            .map(|g| ferrograd_optim::LearningRates::lr(&sgd, g))
            .collect::<Result<_, _>>()
            .map_err(e)?;
        compare(
            &format!("optimizer's lrs after step {step}"),
            &in_optimizer,
            row,
            f64::RTOL,
            f64::ATOL,
        )?;
    }
    Ok(())
}

#[test]
fn pytorch_parity_of_optimizers_and_schedules() {
    let files = fixtures();
    assert!(
        !files.is_empty(),
        "no fixtures in fixtures/parity/optim: run `cargo xtask parity`"
    );
    let mut failures = Vec::new();
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for path in &files {
        let result = Fixture::read(path).and_then(|fixture| {
            let kind = fixture.meta.get("kind")?.as_str()?.to_string();
            let label = match kind.as_str() {
                "optimizer" => format!(
                    "{} {}",
                    fixture.meta.get("optimizer")?.as_str()?,
                    fixture.meta.get("dtype")?.as_str()?
                ),
                "schedule" => format!("schedule {}", fixture.meta.get("schedule")?.get("kind")?.as_str()?),
                other => return Err(format!("unknown fixture kind `{other}`")),
            };
            match (kind.as_str(), fixture.meta.get("dtype").and_then(Json::as_str)) {
                ("optimizer", Ok("f32")) => run_optimizer::<f32>(&fixture)?,
                ("optimizer", Ok("f64")) => run_optimizer::<f64>(&fixture)?,
                ("optimizer", other) => return Err(format!("unsupported dtype {other:?}")),
                _ => run_schedule(&fixture)?,
            }
            *counts.entry(label).or_default() += 1;
            Ok(fixture.name)
        });
        if let Err(error) = result {
            failures.push(format!("FAIL {}: {error}", path.display()));
        }
    }
    eprintln!("optim parity: {} fixtures: {counts:?}", files.len());
    assert!(
        failures.is_empty(),
        "{} of {} fixtures differ from PyTorch:\n{}",
        failures.len(),
        files.len(),
        failures.join("\n")
    );
}
