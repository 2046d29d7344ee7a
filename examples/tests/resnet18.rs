//! ResNet-18 against PyTorch: torchvision's architecture, its `state_dict` exported to
//! npz by `xtask/parity/models_resnet.py`, loaded strictly (every key, every shape), and
//! run at batch 2 on 64×64 images, at inference and in training. The logits, the
//! input's gradient and the parameters' gradients match PyTorch's (computed in f64 from
//! the same f32 values), and training updates the running statistics as PyTorch does.
//!
//! The committed fixture has base width 8 (every layer, key and code path of the full
//! network, 0.7 MB of weights); `FERROGRAD_RESNET18_FULL=DIR` also checks the full width
//! written by `python xtask/parity/models_resnet.py --full DIR`.

use ferrograd::autodiff::ParameterVisitor;
use ferrograd::nn::checkpoint::{ArchiveEntry, ArchiveReader};
use ferrograd::prelude::*;
use ferrograd_examples::resnet::{ResNet18, ResNet18Config};
use ferrograd_testing::{TestDevice, seeded_test_device};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

type Images = Tensor<Rank4<2, 3, 64, 64>, f32, TestDevice>;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/parity/resnet")
}

fn read_io(path: &Path) -> BTreeMap<String, Vec<f32>> {
    let mut archive = ArchiveReader::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let keys: Vec<String> = archive.keys().map(str::to_string).collect();
    keys.into_iter()
        .map(|key| match archive.read::<f32>(&key).unwrap() {
            ArchiveEntry::Floats(_, values) => (key, values),
            ArchiveEntry::Count(_) => panic!("{key}: a count where floats were expected"),
        })
        .collect()
}

/// Each value within `tolerance` of the array's largest magnitude: f32 sums of
/// hundreds of terms over 18 layers, against an f64 reference.
fn assert_close(what: &str, got: &[f32], expected: &[f32], tolerance: f32) {
    assert_eq!(got.len(), expected.len(), "{what}: lengths differ");
    let scale = expected.iter().fold(0f32, |m, v| m.max(v.abs()));
    for (i, (g, e)) in got.iter().zip(expected).enumerate() {
        assert!(
            (g - e).abs() <= tolerance * scale,
            "{what}[{i}]: ferrograd {g}, PyTorch {e} (largest magnitude {scale})"
        );
    }
}

struct GradientsByName<'a>(&'a Gradients<f32, TestDevice>, BTreeMap<String, Vec<f32>>);

impl ParameterVisitor<f32, TestDevice> for GradientsByName<'_> {
    fn visit<S: Shape>(&mut self, name: &str, parameter: &Tensor<S, f32, TestDevice>) -> Result<(), Error> {
        self.1.insert(name.to_string(), self.0.try_get(parameter)?.as_vec());
        Ok(())
    }
}

fn gradients_by_name(model: &ResNet18<TestDevice>, grads: &Gradients<f32, TestDevice>) -> BTreeMap<String, Vec<f32>> {
    let mut by_name = GradientsByName(grads, BTreeMap::new());
    model.visit_parameters(&mut by_name).unwrap();
    by_name.1
}

fn check(directory: &Path, name: &str, config: ResNet18Config) {
    let dev = seeded_test_device(0);
    let mut model = dev.build_module_with::<_, f32>(config);
    model
        .load(directory.join(format!("{name}.state.npz")))
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    let io = read_io(&directory.join(format!("{name}.io.npz")));
    let x: Images = dev.tensor_from_vec(io["input"].clone(), Default::default());

    // Inference: running statistics; gradients of the input and of every parameter.
    let mut grads = model.try_alloc_grads().unwrap();
    grads.try_alloc_for(&x).unwrap();
    let logits = model.forward(x.clone().traced(grads));
    assert_eq!(logits.dims(), [2, config.num_classes]);
    assert_close(&format!("{name} logits"), &logits.as_vec(), &io["output"], 1e-4);
    let upstream = dev.tensor_from_vec(io["grad_output"].clone(), *logits.shape());
    let grads = (logits * upstream).sum::<Rank0, _>().backward();
    assert_close(
        &format!("{name} input gradient"),
        &grads.get(&x).as_vec(),
        &io["grad_input"],
        1e-3,
    );
    let by_name = gradients_by_name(&model, &grads);
    let expected: Vec<&str> = io.keys().filter_map(|k| k.strip_prefix("grad.")).collect();
    assert_eq!(by_name.keys().collect::<Vec<_>>(), expected, "{name}: parameters");
    for (key, gradient) in &by_name {
        assert_close(
            &format!("{name} gradient of {key}"),
            gradient,
            &io[&format!("grad.{key}")],
            1e-3,
        );
    }

    // Training: batch statistics, running statistics updated.
    let mut grads = model.try_alloc_grads().unwrap();
    grads.try_alloc_for(&x).unwrap();
    let logits = model.forward_mut(x.clone().traced(grads));
    assert_close(
        &format!("{name} training logits"),
        &logits.as_vec(),
        &io["train.output"],
        1e-4,
    );
    let upstream = dev.tensor_from_vec(io["grad_output"].clone(), *logits.shape());
    let grads = (logits * upstream).sum::<Rank0, _>().backward();
    assert_close(
        &format!("{name} training input gradient"),
        &grads.get(&x).as_vec(),
        &io["train.grad_input"],
        1e-3,
    );
    let by_name = gradients_by_name(&model, &grads);
    for key in io.keys().filter_map(|k| k.strip_prefix("train.grad.")) {
        assert_close(
            &format!("{name} training gradient of {key}"),
            &by_name[key],
            &io[&format!("train.grad.{key}")],
            1e-3,
        );
    }
    assert_eq!(model.bn1.num_batches_tracked, 11);
    let running = [
        ("bn1.running_mean", model.bn1.running_mean.as_vec()),
        ("bn1.running_var", model.bn1.running_var.as_vec()),
    ];
    for (key, values) in running {
        assert_close(
            &format!("{name} {key} after training"),
            &values,
            &io[&format!("after.{key}")],
            1e-4,
        );
    }
}

#[test]
fn resnet18_matches_pytorch() {
    let config = ResNet18Config {
        base_width: 8,
        num_classes: 10,
    };
    check(&fixtures(), "resnet18_w8_f32", config);
}

#[test]
fn full_width_resnet18_matches_pytorch_when_its_fixture_is_given() {
    match std::env::var_os("FERROGRAD_RESNET18_FULL") {
        Some(directory) => check(Path::new(&directory), "resnet18_w64_f32", ResNet18Config::default()),
        None => eprintln!("skipped: set FERROGRAD_RESNET18_FULL to a folder written by models_resnet.py --full"),
    }
}
