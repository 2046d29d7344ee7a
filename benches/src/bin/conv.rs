//! conv2d on the CPU beside PyTorch (issue #12), in f32, stride 1, with a bias:
//!
//! ```sh
//! cargo run --release -p ferrograd-benches --bin conv
//! ```
//!
//! Cases:
//! - `small`: an input (64, 4, 28, 28) through a Conv2d(4, 8, 4), no padding (from
//!   dfdx's release notes): few channels, where im2col's copies weigh most;
//! - `resnet`: (8, 64, 16, 16) through a Conv2d(64, 64, 3, padding=1), a ResNet block's;
//! - `depthwise`: (16, 32, 28, 28) through a Conv2d(32, 32, 3, padding=1, groups=32),
//!   a MobileNet block's.
//!
//! Workloads, per case: the forward pass alone (untraced), and forward + backward of
//! the output's sum with gradients for the input, the weight and the bias
//! (`traced(grads)` keeps the traced input's gradient, so PyTorch's input requires one
//! too). PyTorch (`benches/torch/conv.py`) runs the same on the same data, which this
//! program writes to a temporary file; both check that they compute the same thing
//! before anything is timed. Rounds on 1 and 2 threads are interleaved between the two
//! libraries (see [`Comparison`]); each figure is the median over the rounds of
//! medians per batch.

use ferrograd::autodiff::Conv2dOptions;
use ferrograd::prelude::*;
use ferrograd_benches::{Comparison, Torch, Workload, per_iteration_us};
use std::hint::black_box;

const ROUNDS: usize = 3;

/// (name, input dims, weight dims, padding, groups).
type CaseSpec = (&'static str, [usize; 4], [usize; 4], usize, usize);

const CASES: [CaseSpec; 3] = [
    ("small", [64, 4, 28, 28], [8, 4, 4, 4], 0, 1),
    ("resnet", [8, 64, 16, 16], [64, 64, 3, 3], 1, 1),
    ("depthwise", [16, 32, 28, 28], [32, 1, 3, 3], 1, 32),
];

/// The workloads in the order of [`Case::round`], case after case, with their names in
/// conv.py's replies and the goals for the ratio ferrograd / PyTorch.
const WORKLOADS: [Workload; 6] = [
    workload("small_forward", "small (64,4,28,28) Conv2d(4,8,4): forward", 1.0),
    workload(
        "small_train",
        "small (64,4,28,28) Conv2d(4,8,4): forward + backward",
        1.0,
    ),
    workload(
        "resnet_forward",
        "resnet (8,64,16,16) Conv2d(64,64,3,pad 1): forward",
        1.0,
    ),
    workload(
        "resnet_train",
        "resnet (8,64,16,16) Conv2d(64,64,3,pad 1): forward + backward",
        1.0,
    ),
    workload(
        "depthwise_forward",
        "depthwise (16,32,28,28) Conv2d(32,32,3,pad 1,groups 32): forward",
        1.0,
    ),
    workload(
        "depthwise_train",
        "depthwise (16,32,28,28) Conv2d(32,32,3,pad 1,groups 32): forward + backward",
        1.0,
    ),
];

const fn workload(name: &'static str, label: &'static str, goal: f64) -> Workload {
    Workload { name, label, goal }
}

type Dims4 = (usize, usize, usize, usize);

struct Case {
    name: &'static str,
    x: Tensor<Dims4, f32, Cpu>,
    w: Tensor<Dims4, f32, Cpu>,
    b: Tensor<(usize,), f32, Cpu>,
    options: Conv2dOptions,
}

impl Case {
    fn new(dev: &Cpu, (name, x, w, padding, groups): CaseSpec) -> Self {
        let fan_in = (w[1] * w[2] * w[3]) as f32;
        Self {
            name,
            x: dev.sample_normal_like(&(x[0], x[1], x[2], x[3])),
            w: dev.sample_normal_like(&(w[0], w[1], w[2], w[3])) / fan_in.sqrt(),
            b: dev.sample_normal_like(&(w[0],)),
            options: Conv2dOptions::default().padding(padding).groups(groups),
        }
    }

    /// `name:N,C,H,W:O,G,KH,KW:padding:groups`, as conv.py reads it.
    fn argument((name, x, w, padding, groups): CaseSpec) -> String {
        let dims = |d: [usize; 4]| d.map(|d| d.to_string()).join(",");
        format!("{name}:{}:{}:{padding}:{groups}", dims(x), dims(w))
    }

    fn to_bytes(&self) -> Vec<u8> {
        let mut values = self.x.as_vec();
        values.extend(self.w.as_vec());
        values.extend(self.b.as_vec());
        values.iter().flat_map(|v| v.to_le_bytes()).collect()
    }

    fn forward(&self) -> Tensor<Dims4, f32, Cpu> {
        self.x
            .clone()
            .conv2d(self.w.clone(), Some(self.b.clone()), self.options)
    }

    /// One step: fresh gradients for the weight and bias, forward, backward.
    fn train(&self, grads: Gradients<f32, Cpu>) -> Gradients<f32, Cpu> {
        let y = self
            .x
            .clone()
            .traced(grads)
            .conv2d(self.w.clone(), Some(self.b.clone()), self.options);
        y.sum::<Rank0, _>().backward()
    }

    fn grads(&self) -> Gradients<f32, Cpu> {
        let mut grads = self.w.alloc_grads();
        grads.try_alloc_for(&self.b).expect("allocating the bias's gradient");
        grads
    }

    /// The sums conv.py's `check` prints for this case.
    fn check(&self) -> [(String, f64); 3] {
        let out: f64 = self.forward().as_vec().iter().map(|&v| v as f64).sum();
        let grads = self.train(self.grads());
        let sum = |v: Vec<f32>| v.iter().map(|&v| v as f64).sum::<f64>();
        [
            (format!("{}_out", self.name), out),
            (format!("{}_dw", self.name), sum(grads.get(&self.w).as_vec())),
            (format!("{}_db", self.name), sum(grads.get(&self.b).as_vec())),
        ]
    }

    /// µs per forward, then per forward + backward.
    fn round(&self) -> [f64; 2] {
        let forward = per_iteration_us(|| {
            black_box(self.forward());
        });
        let mut grads = Some(self.grads());
        let train = per_iteration_us(|| {
            let mut g = self.train(grads.take().expect("the gradients come back each step"));
            g.zero_grads().expect("zeroing");
            grads = Some(g);
        });
        [forward, train]
    }
}

fn main() {
    let dev = Cpu::seed_from_u64(12);
    let cases: Vec<Case> = CASES.iter().map(|&spec| Case::new(&dev, spec)).collect();
    let data = std::env::temp_dir().join(format!("ferrograd-conv-{}.f32", std::process::id()));
    let bytes: Vec<u8> = cases.iter().flat_map(Case::to_bytes).collect();
    std::fs::write(&data, bytes).expect("writing the data file");
    let mut args = vec![data.to_str().unwrap().to_owned()];
    args.extend(CASES.iter().map(|&spec| Case::argument(spec)));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut torch = Torch::start_or_explain("conv.py", &args);
    let _ = std::fs::remove_file(&data);
    if let Some(t) = torch.as_mut() {
        let reply = t.request("check");
        for (name, ours) in cases.iter().flat_map(Case::check) {
            let theirs = reply.value(&name);
            println!("check {name}: ferrograd {ours:.6}, PyTorch {theirs:.6}");
            // Sums of many terms of both signs: relative to their size, or to 1.
            assert!((ours - theirs).abs() <= 1e-3 * theirs.abs().max(1.0), "{name} differs");
        }
    }
    Comparison {
        workloads: &WORKLOADS,
        rounds: ROUNDS,
        goals_from: "issue #12",
    }
    .run(torch.as_mut(), || cases.iter().flat_map(Case::round).collect());
}
