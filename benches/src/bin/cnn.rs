//! Convolutional networks as users write them, side by side with PyTorch on 1 and on 2
//! threads:
//!
//! ```sh
//! cargo run --release -p ferrograd-benches --bin cnn
//! cargo run --release -p ferrograd-benches --bin cnn -- --profile lenet_train_b64
//! ```
//!
//! (`--profile` runs one workload alone for a few seconds, for `perf record -g`.)
//!
//! Workloads, in f32 on `Cpu`:
//! - a LeNet training step at batch 64: `(Conv2D<1, 8, 3>, ReLU, MaxPool2D<2>,
//!   Conv2D<8, 16, 3>, ReLU, MaxPool2D<2>, Flatten, Linear<400, 10>)` on (64, 1, 28, 28)
//!   images: fresh gradients (`model.try_alloc_grads()`; PyTorch:
//!   `zero_grad(set_to_none=True)`), `forward_mut` on the traced input, `cross_entropy`
//!   (mean), `backward`, `Sgd::step` with lr 0.01 and momentum 0.9 (PyTorch:
//!   `F.cross_entropy`, `loss.backward()`, `torch.optim.SGD`'s `step`);
//! - ResNet-18 inference at batch 8 on 64×64 images: `ferrograd_examples::resnet`'s
//!   torchvision architecture (`ResNet18Config::default()`: width 64, 1000 classes),
//!   `forward` on an untraced tensor, so batch norms use their running statistics
//!   (PyTorch: the same module in eval mode under `torch.no_grad()`).
//!
//! PyTorch (`benches/torch/cnn.py`) loads ferrograd's initial weights from checkpoints
//! that `model.save` writes as npz (PyTorch's `state_dict` names), and the same
//! inputs and labels; both sides then take the same few LeNet steps and run the
//! ResNet once, and their losses and logits are compared before anything is timed.
//! Rounds of both libraries on each thread count are interleaved, each figure is the
//! median time per iteration over several batches, and each table gives the median
//! of the rounds (see [`Comparison`]).

use std::hint::black_box;

use ferrograd::Cpu;
use ferrograd::nn::losses::{CrossEntropyOptions, Reduction, cross_entropy};
use ferrograd::nn::prelude::*;
use ferrograd::optim::{Optimizer, Sgd, SgdConfig};
use ferrograd_benches::{Comparison, Torch, Workload, per_iteration_us};
use ferrograd_examples::resnet::{ResNet18, ResNet18Config};

/// The LeNet, as a user writes it (28 → 26 → 13 → 11 → 5: 16·5·5 = 400 features).
type LeNet = (
    Conv2D<1, 8, 3>,
    ReLU,
    MaxPool2D<2>,
    Conv2D<8, 16, 3>,
    ReLU,
    MaxPool2D<2>,
    Flatten,
    Linear<400, 10>,
);

const ROUNDS: usize = 5;
const LENET_BATCH: usize = 64;
const RESNET_BATCH: usize = 8;
/// LeNet training steps whose losses both sides compare.
const CHECK_STEPS: usize = 3;
/// How long `--profile` runs its workload.
const PROFILE_TIME: std::time::Duration = std::time::Duration::from_secs(5);

/// Workloads with their names in `cnn.py`, in the order of [`Cnn::ferrograd_round`];
/// the goal is to be at least as fast as PyTorch.
const WORKLOADS: [Workload; 2] = [
    Workload {
        name: "lenet_train_b64",
        label: "LeNet training step (cross-entropy, SGD with momentum), batch 64",
        goal: 1.0,
    },
    Workload {
        name: "resnet18_infer_b8",
        label: "ResNet-18 inference, batch 8, 64×64",
        goal: 1.0,
    },
];

type Images = Tensor<Rank4<LENET_BATCH, 1, 28, 28>, f32, Cpu>;
type Labels = Tensor<Rank1<LENET_BATCH>, usize, Cpu>;
type Photos = Tensor<Rank4<RESNET_BATCH, 3, 64, 64>, f32, Cpu>;

/// The models, the optimizer and the data.
struct Cnn {
    lenet: Built<LeNet, f32, Cpu>,
    sgd: Sgd<f32, Cpu>,
    x: Images,
    y: Labels,
    resnet: ResNet18,
    photos: Photos,
}

impl Cnn {
    fn new() -> Self {
        let dev = Cpu::seed_from_u64(0);
        Self {
            lenet: dev.build_module::<LeNet, f32>(),
            sgd: Sgd::new(SgdConfig {
                lr: 0.01,
                momentum: 0.9,
                ..Default::default()
            })
            .unwrap(),
            x: dev.sample_normal(),
            y: dev.tensor(std::array::from_fn(|i| (i * 7 + 3) % 10)),
            resnet: dev.build_module_with::<_, f32>(ResNet18Config::default()),
            photos: dev.sample_normal(),
        }
    }

    /// One LeNet training step as a user writes it; returns the loss (computed before
    /// the update), untouched in the timed loops as PyTorch's side leaves its own.
    fn step(&mut self, x: &Images, y: &Labels) -> Tensor<Rank0, f32, Cpu> {
        let grads = self.lenet.try_alloc_grads().unwrap();
        let logits = self.lenet.forward_mut(x.clone().traced_input(grads));
        let loss = cross_entropy(logits, y, Reduction::Mean, CrossEntropyOptions::default());
        let value = loss.detach();
        let grads = loss.backward();
        self.sgd.step(&mut self.lenet, &grads).unwrap();
        value
    }

    /// The ResNet's logits for `photos`.
    fn infer(&self, photos: Photos) -> Tensor<(Const<RESNET_BATCH>, usize), f32, Cpu> {
        self.resnet.forward(photos)
    }

    /// The LeNet's images and labels, then the ResNet's images, as raw little-endian
    /// f32, for `cnn.py`.
    fn data_bytes(&self) -> Vec<u8> {
        let labels = self.y.as_vec().into_iter().map(|l| l as f32);
        let values = self.x.as_vec().into_iter().chain(labels).chain(self.photos.as_vec());
        values.flat_map(f32::to_le_bytes).collect()
    }

    /// What `cnn.py` answers to `check`: the loss of each of [`CHECK_STEPS`] LeNet
    /// steps (each after the first also checks the updates before it), then the sum of
    /// the ResNet's logits' magnitudes.
    fn check(&mut self) -> Vec<(&'static str, f64)> {
        const NAMES: [&str; CHECK_STEPS] = ["lenet_step1", "lenet_step2", "lenet_step3"];
        let (x, y) = (self.x.clone(), self.y.clone());
        let losses: Vec<_> = (0..CHECK_STEPS).map(|_| self.step(&x, &y)).collect();
        let losses = losses.iter().map(|loss| f64::from(loss.array()));
        let mut values: Vec<(&str, f64)> = NAMES.into_iter().zip(losses).collect();
        let logits = self.infer(self.photos.clone()).as_vec();
        values.push(("resnet_logits", logits.iter().map(|&l| f64::from(l.abs())).sum()));
        values
    }

    /// One round of ferrograd's figures, in the order of [`WORKLOADS`]. Results are
    /// dropped inside the loops, as PyTorch frees its graph and outputs.
    fn ferrograd_round(&mut self) -> Vec<f64> {
        let (x, y, photos) = (self.x.clone(), self.y.clone(), self.photos.clone());
        vec![
            per_iteration_us(|| drop(black_box(self.step(black_box(&x), &y)))),
            per_iteration_us(|| drop(black_box(self.infer(black_box(photos.clone()))))),
        ]
    }

    /// Runs one workload of [`WORKLOADS`] for [`PROFILE_TIME`], alone, for a profiler
    /// (`perf record -g`).
    fn profile(&mut self, name: &str) {
        let (x, y, photos) = (self.x.clone(), self.y.clone(), self.photos.clone());
        let start = std::time::Instant::now();
        let mut iterations = 0u64;
        while start.elapsed() < PROFILE_TIME {
            match name {
                "lenet_train_b64" => drop(black_box(self.step(black_box(&x), &y))),
                "resnet18_infer_b8" => drop(black_box(self.infer(black_box(photos.clone())))),
                _ => panic!("no workload {name:?}"),
            }
            iterations += 1;
        }
        let us = start.elapsed().as_secs_f64() / iterations as f64 * 1e6;
        println!("{name}: {iterations} iterations, {us:.2} µs each");
    }
}

fn main() {
    let mut cnn = Cnn::new();
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        [] => {}
        ["--profile", name] => return cnn.profile(name),
        _ => panic!("usage: cnn [--profile lenet_train_b64|resnet18_infer_b8]"),
    }

    // The files only have to outlive the script's start; it reads them at once.
    let temp = std::env::temp_dir();
    let file = |what: &str| temp.join(format!("ferrograd-cnn-{what}-{}", std::process::id()));
    let (lenet, resnet, data) = (file("lenet.npz"), file("resnet.npz"), file("data.f32"));
    cnn.lenet.save(&lenet).expect("writing the LeNet's checkpoint");
    cnn.resnet.save(&resnet).expect("writing the ResNet's checkpoint");
    std::fs::write(&data, cnn.data_bytes()).expect("writing the data file");
    let paths = [&lenet, &resnet, &data].map(|p| p.to_str().unwrap().to_owned());
    let mut torch = Torch::start_or_explain("cnn.py", &paths.each_ref().map(String::as_str));
    for path in [&lenet, &resnet, &data] {
        let _ = std::fs::remove_file(path);
    }
    // Both sides compute the same thing from the same weights, or the ratios mean
    // nothing. Sums of convolutions in different orders: a looser tolerance than an MLP's.
    let ours = cnn.check();
    if let Some(torch) = torch.as_mut() {
        torch.check(&ours, 1e-3);
    }

    let comparison = Comparison {
        workloads: &WORKLOADS,
        rounds: ROUNDS,
        goals_from: "as fast as PyTorch",
    };
    comparison.run(torch.as_mut(), || cnn.ferrograd_round());
}
