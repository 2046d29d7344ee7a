//! conv2d on the CPU beside PyTorch (issue #12): an input (64, 4, 28, 28) through a
//! Conv2d(4, 8, 4) (weight (8, 4, 4, 4) and bias, stride 1, no padding), in f32:
//!
//! ```sh
//! cargo run --release -p ferrograd-benches --bin conv
//! ```
//!
//! Workloads: the forward pass alone (untraced), and forward + backward of the
//! output's sum with gradients for the input, the weight and the bias (`traced(grads)`
//! keeps the traced input's gradient, so PyTorch's input requires one too). PyTorch (`benches/torch/conv.py`) runs the same on the same data, which
//! this program writes to a temporary file; both check that they compute the same
//! thing before anything is timed. Rounds on 1 and 2 threads are interleaved between
//! the two libraries; each figure is the median over the rounds of medians per batch.

use ferrograd::autodiff::Conv2dOptions;
use ferrograd::prelude::*;
use ferrograd_benches::{BATCH, BATCHES, Torch, median, per_iteration_us};
use std::hint::black_box;

const ROUNDS: usize = 3;
const THREADS: [usize; 2] = [1, 2];
/// (name in conv.py's replies, label, goal for the ratio ferrograd / PyTorch).
const WORKLOADS: [(&str, &str, f64); 2] = [("forward", "forward", 1.0), ("train", "forward + backward", 1.0)];

type Input = Tensor<Rank4<64, 4, 28, 28>, f32, Cpu>;
type Weight = Tensor<Rank4<8, 4, 4, 4>, f32, Cpu>;
type Bias = Tensor<Rank1<8>, f32, Cpu>;

struct Conv {
    x: Input,
    w: Weight,
    b: Bias,
}

impl Conv {
    fn new() -> Self {
        let dev = Cpu::seed_from_u64(12);
        Self {
            x: dev.sample_normal(),
            w: dev.sample_normal::<Rank4<8, 4, 4, 4>>() * 0.125,
            b: dev.sample_normal(),
        }
    }

    fn to_bytes(&self) -> Vec<u8> {
        let mut values = self.x.as_vec();
        values.extend(self.w.as_vec());
        values.extend(self.b.as_vec());
        values.iter().flat_map(|v| v.to_le_bytes()).collect()
    }

    fn forward(&self) -> Tensor<(Const<64>, Const<8>, usize, usize), f32, Cpu> {
        self.x
            .clone()
            .conv2d(self.w.clone(), Some(self.b.clone()), Conv2dOptions::default())
    }

    /// One step: fresh gradients for the weight and bias, forward, backward.
    fn train(&self, grads: Gradients<f32, Cpu>) -> Gradients<f32, Cpu> {
        let y = self
            .x
            .clone()
            .traced(grads)
            .conv2d(self.w.clone(), Some(self.b.clone()), Conv2dOptions::default());
        y.sum::<Rank0, _>().backward()
    }

    fn grads(&self) -> Gradients<f32, Cpu> {
        let mut grads = self.w.alloc_grads();
        grads.try_alloc_for(&self.b).expect("allocating the bias's gradient");
        grads
    }

    /// The sums PyTorch's `check` prints.
    fn check(&self) -> [(&'static str, f64); 3] {
        let out: f64 = self.forward().as_vec().iter().map(|&v| v as f64).sum();
        let grads = self.train(self.grads());
        let sum = |v: Vec<f32>| v.iter().map(|&v| v as f64).sum::<f64>();
        [
            ("out", out),
            ("dw", sum(grads.get(&self.w).as_vec())),
            ("db", sum(grads.get(&self.b).as_vec())),
        ]
    }

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
    let conv = Conv::new();
    let data = std::env::temp_dir().join(format!("ferrograd-conv-{}.f32", std::process::id()));
    std::fs::write(&data, conv.to_bytes()).expect("writing the data file");
    let mut torch = Torch::start_or_explain("conv.py", &[data.to_str().unwrap()]);
    let _ = std::fs::remove_file(&data);
    if let Some(t) = torch.as_mut() {
        let reply = t.request("check");
        for (name, ours) in conv.check() {
            let theirs = reply.value(name);
            println!("check {name}: ferrograd {ours:.6}, PyTorch {theirs:.6}");
            assert!((ours - theirs).abs() <= 1e-3 * theirs.abs().max(1.0), "{name} differs");
        }
    }
    println!(
        "µs per iteration, median of {BATCHES} batches of ~{} ms, median of {ROUNDS} interleaved rounds; {} cores{}\n",
        BATCH.as_millis(),
        std::thread::available_parallelism().map_or(1, |n| n.get()),
        torch.as_ref().map_or(String::new(), |t| format!("; {}", t.version)),
    );
    // [thread setting][workload] → times per round
    let mut ours = vec![vec![Vec::new(); WORKLOADS.len()]; THREADS.len()];
    let mut theirs = ours.clone();
    for round in 1..=ROUNDS {
        eprintln!("round {round} of {ROUNDS}…");
        for (t, &threads) in THREADS.iter().enumerate() {
            ferrograd::set_num_threads(threads);
            for (w, time) in conv.round().into_iter().enumerate() {
                ours[t][w].push(time);
            }
            if let Some(torch) = torch.as_mut() {
                let reply = torch.request(&format!("round {threads}"));
                for (w, (name, _, _)) in WORKLOADS.iter().enumerate() {
                    theirs[t][w].push(reply.value(name));
                }
            }
        }
    }
    for (t, threads) in THREADS.iter().enumerate() {
        for (w, (_, label, goal)) in WORKLOADS.iter().enumerate() {
            let our = median(ours[t][w].clone());
            match torch {
                Some(_) => {
                    let their = median(theirs[t][w].clone());
                    println!(
                        "{threads} thr  {label:<20} ferrograd {our:>9.1} µs  PyTorch {their:>9.1} µs  ratio {:.3}× (goal ≤ {goal})",
                        our / their
                    );
                }
                None => println!("{threads} thr  {label:<20} ferrograd {our:>9.1} µs"),
            }
        }
    }
}
