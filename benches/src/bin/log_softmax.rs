//! `log_softmax` over the last axis of a 64×128×1024 f32 tensor (32 MiB) beside
//! PyTorch (issue #13), on 1 and on 2 threads:
//!
//! ```sh
//! cargo run --release -p ferrograd-benches --bin log_softmax
//! ```
//!
//! Workloads: the forward pass alone (untraced; PyTorch under `inference_mode`), and
//! forward + backward of the output's sum with the input's gradient kept (PyTorch's
//! input requires grad). `reductions` measures the same kernels against the memory
//! bandwidth; this program measures them against PyTorch.
//!
//! Both sides fill the input from the same formula of the element's index, so no data
//! file is needed, and compare the output's sum and the gradient's norm before
//! anything is timed. Rounds of both libraries on each thread count are interleaved
//! (see [`Comparison`]).

use std::hint::black_box;

use ferrograd::prelude::*;
use ferrograd_benches::{Comparison, Torch, Workload, per_iteration_us};

const ROUNDS: usize = 3;

type Big = Tensor<Rank3<64, 128, 1024>, f32, Cpu>;

const WORKLOADS: [Workload; 2] = [
    Workload {
        name: "forward",
        label: "log_softmax 64×128×1024, last axis: forward",
        goal: 1.0,
    },
    Workload {
        name: "train",
        label: "log_softmax 64×128×1024, last axis: forward + backward",
        goal: 1.0,
    },
];

/// Element `i` is `(i · 7919 mod 1000) / 100 − 5`, in [−5, 5): `log_softmax.py` computes
/// the same, exactly (every value is a multiple of 0.01 below 10, rounded once).
fn input(dev: &Cpu) -> Big {
    let n = 64 * 128 * 1024;
    let values = (0..n)
        .map(|i: usize| ((i * 7919) % 1000) as f32 / 100.0 - 5.0)
        .collect();
    dev.tensor_from_vec(values, Default::default())
}

/// The sum of `log_softmax(x)`, and its gradients (with respect to `x`).
fn forward_backward(x: &Big) -> Gradients<f32, Cpu> {
    x.clone()
        .traced(x.alloc_grads())
        .log_softmax::<Axis<2>>()
        .sum::<Rank0, _>()
        .backward()
}

fn main() {
    let dev = Cpu::seed_from_u64(0);
    let x = input(&dev);
    let mut torch = Torch::start_or_explain("log_softmax.py", &[]);
    if let Some(torch) = torch.as_mut() {
        let sum = x
            .clone()
            .log_softmax::<Axis<2>>()
            .as_vec()
            .iter()
            .map(|&v| f64::from(v))
            .sum();
        let grad = forward_backward(&x).get(&x).as_vec();
        let norm = grad.iter().map(|&g| f64::from(g).powi(2)).sum::<f64>().sqrt();
        torch.check(&[("sum", sum), ("gnorm", norm)], 1e-4);
    }
    let comparison = Comparison {
        workloads: &WORKLOADS,
        rounds: ROUNDS,
        goals_from: "issue #13",
    };
    // Results are dropped inside the loops, as PyTorch frees its outputs and graph.
    comparison.run(torch.as_mut(), || {
        vec![
            per_iteration_us(|| drop(black_box(black_box(&x).clone().log_softmax::<Axis<2>>()))),
            per_iteration_us(|| drop(black_box(forward_backward(black_box(&x))))),
        ]
    });
}
