//! An MLP 784-128-64-10 trained and run as users write it with `ferrograd-nn` and
//! `ferrograd-optim`, side by side with PyTorch on 1 and on 2 threads (issue #11):
//!
//! ```sh
//! cargo run --release -p ferrograd-benches --bin nn_mlp            # times, then memory
//! cargo run --release -p ferrograd-benches --bin nn_mlp -- --memory # memory only
//! cargo run --release -p ferrograd-benches --bin nn_mlp -- --profile train_b1
//! ```
//!
//! (`--profile` runs one workload alone for a few seconds, for `perf record -g`.)
//!
//! The model is `(Linear<784, 128>, ReLU, Linear<128, 64>, ReLU, Linear<64, 10>)` built
//! with `dev.build_module`, in PyTorch `nn.Sequential` of the same layers. Workloads,
//! in f32 on `Cpu`:
//! - a training step at batch 64 and at batch 1: fresh gradients for the parameters
//!   (`model.try_alloc_grads()`; PyTorch: `zero_grad(set_to_none=True)`), `forward_mut`
//!   on the traced input, `cross_entropy` (mean), `backward`, `Adam::step` (PyTorch:
//!   `F.cross_entropy`, `loss.backward()`, `torch.optim.Adam`'s `step`), both with
//!   Adam's defaults;
//! - inference at batch 1: `forward` on an untraced tensor (PyTorch under
//!   `torch.inference_mode()`).
//!
//! PyTorch (`benches/torch/nn_mlp.py`) loads ferrograd's initial weights from a
//! checkpoint that `model.save` writes as npz, and the same inputs and labels; both
//! sides then take the same few training steps and their losses are compared before
//! anything is timed. Rounds of both libraries on each thread count are interleaved,
//! each figure is the median time per iteration over several batches, and each table
//! gives the median of the rounds (see [`Comparison`]).
//!
//! Memory: after the tables, ferrograd trains 10 000 more steps at batch 64 and prints
//! its resident memory (VmRSS) after 100, 1 000 and 10 000 of them; a training loop
//! must not grow (issue #11: the figure after 10 000 steps equals that after 100).
//! With PyTorch, its script trains as many steps first and reports its own resident
//! memory the same way (both on one thread after the tables); the figures after 100 and 10 000 steps, both sides', are
//! recorded for `cargo xtask bench` (issue #13).

use std::hint::black_box;

use ferrograd::Cpu;
use ferrograd::nn::losses::{CrossEntropyOptions, Reduction, cross_entropy};
use ferrograd::nn::prelude::*;
use ferrograd::optim::{Adam, AdamConfig, Optimizer};
use ferrograd_benches::{Comparison, Row, Torch, Workload, per_iteration_us, record};

/// The architecture, as a user writes it.
type Mlp = (Linear<784, 128>, ReLU, Linear<128, 64>, ReLU, Linear<64, 10>);
type Model = Built<Mlp, f32, Cpu>;

const ROUNDS: usize = 5;
const BATCH_SIZE: usize = 64;
/// Training steps at batch 64, then at batch 1, whose losses both sides compare.
const CHECK_STEPS: (usize, usize) = (3, 2);
/// After how many steps the memory section prints the resident memory.
const MEMORY_STEPS: [usize; 3] = [100, 1_000, 10_000];
/// How long `--profile` runs its workload.
const PROFILE_TIME: std::time::Duration = std::time::Duration::from_secs(5);

/// Workloads with their names in `nn_mlp.py` and the goals for the ratio ferrograd /
/// PyTorch (issue #11), in the order of [`Training::ferrograd_round`].
const WORKLOADS: [Workload; 3] = [
    Workload {
        name: "train_b64",
        label: "MLP training step (cross-entropy, Adam), batch 64",
        goal: 0.7,
    },
    Workload {
        name: "train_b1",
        label: "MLP training step (cross-entropy, Adam), batch 1",
        goal: 0.2,
    },
    Workload {
        name: "infer_b1",
        label: "MLP inference, batch 1",
        goal: 0.2,
    },
];

type Inputs<const B: usize> = Tensor<Rank2<B, 784>, f32, Cpu>;
type Labels<const B: usize> = Tensor<Rank1<B>, usize, Cpu>;

/// The model, its optimizer and the data.
struct Training {
    model: Model,
    adam: Adam<f32, Cpu>,
    x: Inputs<BATCH_SIZE>,
    y: Labels<BATCH_SIZE>,
    x1: Inputs<1>,
    y1: Labels<1>,
}

impl Training {
    fn new() -> Self {
        let dev = Cpu::seed_from_u64(0);
        let model = dev.build_module::<Mlp, f32>();
        let x: Inputs<BATCH_SIZE> = dev.sample_normal();
        let y = dev.tensor(std::array::from_fn(|i| (i * 7 + 3) % 10));
        let x1 = dev.tensor_from_vec(x.as_vec()[..784].to_vec(), Default::default());
        let y1 = dev.tensor([y.array()[0]]);
        Self {
            model,
            adam: Adam::new(AdamConfig::default()).unwrap(),
            x,
            y,
            x1,
            y1,
        }
    }

    /// One training step as a user writes it; returns the loss (computed before the
    /// update), untouched in the timed loops as PyTorch's side leaves its own.
    fn step<const B: usize>(&mut self, x: &Inputs<B>, y: &Labels<B>) -> Tensor<Rank0, f32, Cpu> {
        let grads = self.model.try_alloc_grads().unwrap();
        let logits = self.model.forward_mut(x.clone().traced_input(grads));
        let loss = cross_entropy(logits, y, Reduction::Mean, CrossEntropyOptions::default());
        let value = loss.detach();
        let grads = loss.backward();
        self.adam.step(&mut self.model, &grads).unwrap();
        value
    }

    /// The inputs and labels as raw little-endian f32, for `nn_mlp.py`.
    fn data_bytes(&self) -> Vec<u8> {
        let labels = self.y.as_vec().into_iter().map(|l| l as f32);
        let values = self.x.as_vec().into_iter().chain(labels);
        values.flat_map(f32::to_le_bytes).collect()
    }

    /// What `nn_mlp.py` answers to `check`: the loss of each of [`CHECK_STEPS`] (batch
    /// 64, then batch 1), then the sum of the batch-1 logits' magnitudes after them.
    /// Each loss after the first also checks the Adam updates before it.
    fn check(&mut self) -> Vec<(&'static str, f64)> {
        const NAMES: [&str; 5] = ["b64_step1", "b64_step2", "b64_step3", "b1_step1", "b1_step2"];
        let (x, y, x1, y1) = (self.x.clone(), self.y.clone(), self.x1.clone(), self.y1.clone());
        let mut losses: Vec<_> = (0..CHECK_STEPS.0).map(|_| self.step(&x, &y)).collect();
        losses.extend((0..CHECK_STEPS.1).map(|_| self.step(&x1, &y1)));
        let losses = losses.iter().map(|loss| f64::from(loss.array()));
        let mut values: Vec<(&str, f64)> = NAMES.into_iter().zip(losses).collect();
        let logits = self.model.forward(x1).as_vec();
        values.push(("logits_b1", logits.iter().map(|&l| f64::from(l.abs())).sum()));
        values
    }

    /// One round of ferrograd's figures, in the order of [`WORKLOADS`]. Results are
    /// dropped inside the loops, as PyTorch frees its graph and outputs.
    fn ferrograd_round(&mut self) -> Vec<f64> {
        let (x, y, x1, y1) = (self.x.clone(), self.y.clone(), self.x1.clone(), self.y1.clone());
        vec![
            per_iteration_us(|| drop(black_box(self.step(black_box(&x), &y)))),
            per_iteration_us(|| drop(black_box(self.step(black_box(&x1), &y1)))),
            per_iteration_us(|| drop(black_box(self.model.forward(black_box(x1.clone()))))),
        ]
    }

    /// Runs one workload of [`WORKLOADS`] for [`PROFILE_TIME`], alone, for a profiler
    /// (`perf record -g`).
    fn profile(&mut self, name: &str) {
        let (x, y, x1, y1) = (self.x.clone(), self.y.clone(), self.x1.clone(), self.y1.clone());
        let start = std::time::Instant::now();
        let mut iterations = 0u64;
        while start.elapsed() < PROFILE_TIME {
            for _ in 0..100 {
                match name {
                    "train_b64" => drop(black_box(self.step(black_box(&x), &y))),
                    "train_b1" => drop(black_box(self.step(black_box(&x1), &y1))),
                    "infer_b1" => drop(black_box(self.model.forward(black_box(x1.clone())))),
                    _ => panic!("no workload {name:?}"),
                }
            }
            iterations += 100;
        }
        let us = start.elapsed().as_secs_f64() / iterations as f64 * 1e6;
        println!("{name}: {iterations} iterations, {us:.2} µs each");
    }

    /// Trains [`MEMORY_STEPS`]' last count of steps at batch 64, printing the resident
    /// memory after each of them; returns those figures in kB.
    fn memory(&mut self) -> Vec<u64> {
        let (x, y) = (self.x.clone(), self.y.clone());
        println!(
            "Resident memory (VmRSS) while training at batch {BATCH_SIZE} ({} ferrograd threads)",
            ferrograd::num_threads()
        );
        println!("|  steps | VmRSS kB |\n|-------:|---------:|");
        let mut done = 0;
        let mut figures = Vec::new();
        for target in MEMORY_STEPS {
            while done < target {
                drop(self.step(&x, &y));
                done += 1;
            }
            figures.push(resident_kb());
            println!("| {done:>6} | {:>8} |", figures[figures.len() - 1]);
        }
        let growth = figures[figures.len() - 1] as i64 - figures[0] as i64;
        println!(
            "\ngrowth from {} to {done} steps: {growth:+} kB (goal, issue #11: none)",
            MEMORY_STEPS[0]
        );
        figures
    }
}

/// This process's resident memory in kB (VmRSS in /proc/self/status), 0 where there is
/// none (not Linux).
fn resident_kb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
            line.split_whitespace().nth(1)?.parse().ok()
        })
        .unwrap_or(0)
}

fn main() {
    let mut training = Training::new();
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        [] => {}
        ["--memory"] => return drop(training.memory()),
        ["--profile", name] => return training.profile(name),
        _ => panic!("usage: nn_mlp [--memory | --profile train_b64|train_b1|infer_b1]"),
    }

    // The files only have to outlive the script's start; it reads them at once.
    let temp = std::env::temp_dir();
    let weights = temp.join(format!("ferrograd-nn-mlp-{}.npz", std::process::id()));
    let data = temp.join(format!("ferrograd-nn-mlp-{}.f32", std::process::id()));
    training.model.save(&weights).expect("writing the checkpoint");
    std::fs::write(&data, training.data_bytes()).expect("writing the data file");
    let mut torch = Torch::start_or_explain("nn_mlp.py", &[weights.to_str().unwrap(), data.to_str().unwrap()]);
    let _ = std::fs::remove_file(&weights);
    let _ = std::fs::remove_file(&data);
    // Both sides take the same steps from the same weights, or the ratios mean nothing.
    let ours = training.check();
    if let Some(torch) = torch.as_mut() {
        torch.check(&ours, 1e-4);
    }

    let comparison = Comparison {
        workloads: &WORKLOADS,
        rounds: ROUNDS,
        goals_from: "issue #11",
    };
    comparison.run(torch.as_mut(), || training.ferrograd_round());
    // PyTorch's memory before ferrograd's, so that the two never train at once; both
    // on one thread, where a busy machine slows the 10 000 steps least.
    let counts = MEMORY_STEPS.map(|s| s.to_string()).join(" ");
    let theirs = torch.as_mut().map(|t| t.request(&format!("memory 1 {counts}")));
    ferrograd::set_num_threads(1);
    drop(torch);
    let ours = training.memory();
    if let Some(theirs) = &theirs {
        println!(
            "PyTorch's VmRSS after {counts} steps: {} MB",
            MEMORY_STEPS
                .map(|s| format!("{:.1}", theirs.value(&format!("rss_{s}"))))
                .join(", ")
        );
    }
    // After the first and the last count: the start of the loop and where it got to.
    let rows: Vec<Row> = [0, MEMORY_STEPS.len() - 1]
        .into_iter()
        .map(|i| {
            let steps = MEMORY_STEPS[i];
            let ferrograd = ours[i] as f64 / 1024.0;
            let pytorch = theirs.as_ref().map(|t| t.value(&format!("rss_{steps}")));
            Row {
                name: format!("rss_{steps}"),
                label: format!("resident memory (VmRSS) after {steps} MLP training steps, batch {BATCH_SIZE}"),
                unit: "MB",
                threads: ferrograd::num_threads(),
                ferrograd,
                pytorch,
                ratio: pytorch.map(|p| ferrograd / p),
                // One figure per side, not rounds: nothing to spread.
                spread: 0.0,
                goal: None,
            }
        })
        .collect();
    record(&rows);
}
