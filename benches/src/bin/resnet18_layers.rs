//! The convolutions of ResNet-18's inference at batch 8 on 64×64 images, one by one,
//! beside PyTorch (issue #12): where the `cnn` benchmark's `resnet18_infer_b8` spends
//! its time, and which of ferrograd's convolution paths each shape takes.
//!
//! ```sh
//! cargo run --release -p ferrograd-benches --bin resnet18_layers
//! ```
//!
//! One row per distinct shape, forward only, f32, no bias (ResNet's convolutions
//! have none): `conv1` (7×7, stride 2, onto 32×32), then per stage its 3×3
//! convolutions (`layer1` on 16×16 … `layer4` on 2×2; the stride-2 first convolution
//! of stages 2–4 as `layerN.0`, and their 1×1 stride-2 downsampling as `layerN.down`).
//! Both libraries compute the same inputs, written by formula on each side
//! (`benches/torch/resnet18_layers.py`), and check that their outputs agree before
//! anything is timed. Rounds on 1 and 2 threads are interleaved between the two
//! libraries (see [`Comparison`]).

use ferrograd::autodiff::Conv2dOptions;
use ferrograd::prelude::*;
use ferrograd_benches::{Comparison, Torch, Workload, per_iteration_us};
use std::hint::black_box;

const ROUNDS: usize = 3;

/// (name, input dims, weight dims, stride, padding), as resnet18_layers.py lists them.
type Layer = (&'static str, [usize; 4], [usize; 4], usize, usize);

const LAYERS: [Layer; 10] = [
    ("conv1", [8, 3, 64, 64], [64, 3, 7, 7], 2, 3),
    ("layer1", [8, 64, 16, 16], [64, 64, 3, 3], 1, 1),
    ("layer2_0", [8, 64, 16, 16], [128, 64, 3, 3], 2, 1),
    ("layer2_down", [8, 64, 16, 16], [128, 64, 1, 1], 2, 0),
    ("layer2", [8, 128, 8, 8], [128, 128, 3, 3], 1, 1),
    ("layer3_0", [8, 128, 8, 8], [256, 128, 3, 3], 2, 1),
    ("layer3", [8, 256, 4, 4], [256, 256, 3, 3], 1, 1),
    ("layer4_0", [8, 256, 4, 4], [512, 256, 3, 3], 2, 1),
    ("layer4", [8, 512, 2, 2], [512, 512, 3, 3], 1, 1),
    ("layer4_down", [8, 256, 4, 4], [512, 256, 1, 1], 2, 0),
];

const WORKLOADS: [Workload; 10] = [
    workload("conv1", "conv1 (8,3,64,64) 7×7 stride 2 pad 3 → 64×32×32"),
    workload("layer1", "layer1 (8,64,16,16) 3×3 pad 1 → 64×16×16 (×4 in the net)"),
    workload("layer2_0", "layer2.0 (8,64,16,16) 3×3 stride 2 pad 1 → 128×8×8"),
    workload("layer2_down", "layer2 downsample (8,64,16,16) 1×1 stride 2 → 128×8×8"),
    workload("layer2", "layer2 (8,128,8,8) 3×3 pad 1 → 128×8×8 (×3)"),
    workload("layer3_0", "layer3.0 (8,128,8,8) 3×3 stride 2 pad 1 → 256×4×4"),
    workload("layer3", "layer3 (8,256,4,4) 3×3 pad 1 → 256×4×4 (×3)"),
    workload("layer4_0", "layer4.0 (8,256,4,4) 3×3 stride 2 pad 1 → 512×2×2"),
    workload("layer4", "layer4 (8,512,2,2) 3×3 pad 1 → 512×2×2 (×3)"),
    workload("layer4_down", "layer4 downsample (8,256,4,4) 1×1 stride 2 → 512×2×2"),
];

const fn workload(name: &'static str, label: &'static str) -> Workload {
    Workload { name, label, goal: 1.0 }
}

type Dims4 = (usize, usize, usize, usize);

/// `count` values by the formula resnet18_layers.py uses too: `sin(0.1·i) · scale`.
fn by_formula(dev: &Cpu, dims: [usize; 4], phase: f64, scale: f64) -> Tensor<Dims4, f32, Cpu> {
    let count: usize = dims.iter().product();
    let values: Vec<f32> = (0..count)
        .map(|i| ((0.1 * i as f64 + phase).sin() * scale) as f32)
        .collect();
    dev.tensor_from_vec(values, (dims[0], dims[1], dims[2], dims[3]))
}

struct Case {
    x: Tensor<Dims4, f32, Cpu>,
    w: Tensor<Dims4, f32, Cpu>,
    options: Conv2dOptions,
}

impl Case {
    fn new(dev: &Cpu, (_, x, w, stride, padding): Layer) -> Self {
        let fan_in = (w[1] * w[2] * w[3]) as f64;
        Self {
            x: by_formula(dev, x, 0.0, 1.0),
            w: by_formula(dev, w, 1.0, 1.0 / fan_in.sqrt()),
            options: Conv2dOptions::default().stride(stride).padding(padding),
        }
    }

    fn forward(&self) -> Tensor<Dims4, f32, Cpu> {
        self.x.clone().conv2d(self.w.clone(), None, self.options)
    }
}

fn main() {
    let dev = Cpu::default();
    let cases: Vec<Case> = LAYERS.iter().map(|&layer| Case::new(&dev, layer)).collect();
    let mut torch = Torch::start_or_explain("resnet18_layers.py", &[]);
    if let Some(t) = torch.as_mut() {
        let reply = t.request("check");
        for ((name, ..), case) in LAYERS.iter().zip(&cases) {
            let ours: f64 = case.forward().as_vec().iter().map(|&v| f64::from(v).abs()).sum();
            let theirs = reply.value(name);
            println!("check {name}: Σ|out| ferrograd {ours:.6}, PyTorch {theirs:.6}");
            assert!((ours - theirs).abs() <= 1e-4 * theirs, "{name} differs");
        }
    }
    Comparison {
        workloads: &WORKLOADS,
        rounds: ROUNDS,
        goals_from: "issue #12",
    }
    .run(torch.as_mut(), || {
        cases
            .iter()
            .map(|case| per_iteration_us(|| drop(black_box(case.forward()))))
            .collect()
    });
}
