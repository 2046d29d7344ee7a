//! The CPU workloads where PyTorch was still ahead (issue #10), side by side with
//! PyTorch on 1 and on 2 threads:
//!
//! ```sh
//! cargo run --release -p ferrograd-benches --bin cpu_gaps
//! ```
//!
//! Workloads, all in f32 on `Cpu`:
//! - an MLP 784-128-64-10 written from ops: `x·W1 + b1` (bias broadcast), relu, twice
//!   more, `log_softmax` over the classes, the target's entry of each row (`select`),
//!   negative mean. A training step (forward + backward from fresh gradients for the
//!   six parameters) at batch 64 and at batch 1, and inference (forward to the logits,
//!   untraced) at batch 1;
//! - `n×n · n×n` matmul at n = 64, 128, 256, 1024 and 2048.
//!
//! PyTorch runs the same workloads (`benches/torch/cpu_gaps.py`) on the same weights and
//! inputs, which this program writes to a temporary file; the losses of both are
//! compared before anything is timed. Rounds of ferrograd, PyTorch on 1 thread and
//! PyTorch on 2 threads are interleaved, so that machine noise hits all three; each
//! figure is the median time per iteration over several batches, and each table gives
//! the median of the rounds. The interpreter is `$FERROGRAD_TORCH_PYTHON`, else the parity
//! venv (`target/parity-venv/bin/python`, made by `cargo xtask parity`); without one,
//! only ferrograd's figures are printed.
//!
//! ferrograd runs at each thread count too (`ferrograd::set_num_threads`), so each
//! ratio compares the two libraries on the same number of threads.

use std::hint::black_box;

use ferrograd::autodiff::MergeTapes;
use ferrograd::prelude::*;
use ferrograd_benches::{Comparison, Torch, Workload, per_iteration_us};

const ROUNDS: usize = 3;
const BATCH_SIZE: usize = 64;
const MATMUL_SIZES: [usize; 5] = [64, 128, 256, 1024, 2048];

/// Workloads with their names in `cpu_gaps.py` and the goals for the ratio ferrograd /
/// PyTorch (issue #10), in the order of [`Workloads::ferrograd_round`].
const WORKLOADS: [Workload; 8] = [
    workload("mlp_infer_b1", "MLP inference, batch 1", 0.3),
    workload("mlp_train_b1", "MLP forward + backward, batch 1", 0.15),
    workload("mlp_train_b64", "MLP forward + backward, batch 64", 0.8),
    workload("matmul_64", "f32 matmul 64³", 1.0),
    workload("matmul_128", "f32 matmul 128³", 1.0),
    workload("matmul_256", "f32 matmul 256³", 1.0),
    workload("matmul_1024", "f32 matmul 1024³", 1.0),
    workload("matmul_2048", "f32 matmul 2048³", 1.0),
];

const fn workload(name: &'static str, label: &'static str, goal: f64) -> Workload {
    Workload { name, label, goal }
}

type Matrix<const R: usize, const C: usize, T = NoneTape> = Tensor<Rank2<R, C>, f32, Cpu, T>;
type Vector<const N: usize> = Tensor<Rank1<N>, f32, Cpu>;
type Labels<const B: usize> = Tensor<Rank1<B>, usize, Cpu>;
/// A matmul operand, square with a run-time size.
type Square = Tensor<(usize, usize), f32, Cpu>;

struct Mlp {
    w1: Matrix<784, 128>,
    b1: Vector<128>,
    w2: Matrix<128, 64>,
    b2: Vector<64>,
    w3: Matrix<64, 10>,
    b3: Vector<10>,
}

impl Mlp {
    /// Normal weights scaled by 1/√fan_in, so that activations stay of order 1.
    fn new(dev: &Cpu) -> Self {
        let scale = |fan_in: f32| 1.0 / fan_in.sqrt();
        Self {
            w1: dev.sample_normal() * scale(784.0),
            b1: dev.sample_normal() * scale(784.0),
            w2: dev.sample_normal() * scale(128.0),
            b2: dev.sample_normal() * scale(128.0),
            w3: dev.sample_normal() * scale(64.0),
            b3: dev.sample_normal() * scale(64.0),
        }
    }

    /// The parameters' elements, row-major in `cpu_gaps.py`'s order; or those of their
    /// gradients in `grads`.
    fn to_vec(&self, grads: Option<&Gradients<f32, Cpu>>) -> Vec<f32> {
        fn of<S: Shape>(p: &Tensor<S, f32, Cpu>, grads: Option<&Gradients<f32, Cpu>>) -> Vec<f32> {
            grads.map_or_else(|| p.as_vec(), |g| g.get(p).as_vec())
        }
        let (w1, b1, w2, b2, w3, b3) = (&self.w1, &self.b1, &self.w2, &self.b2, &self.w3, &self.b3);
        [
            of(w1, grads),
            of(b1, grads),
            of(w2, grads),
            of(b2, grads),
            of(w3, grads),
            of(b3, grads),
        ]
        .concat()
    }

    /// The logits. The tape, if any, rides on `w1` rather than on `x`: tracing `x` would
    /// make backward compute and keep `x`'s gradient, which PyTorch's side never does
    /// (its `x` does not require grad).
    fn logits<const B: usize, T>(&self, x: &Matrix<B, 784>, w1: Matrix<784, 128, T>) -> Matrix<B, 10, T>
    where
        T: Tape<f32, Cpu>,
        NoneTape: MergeTapes<T, Output = T>,
    {
        let h = (x.clone().matmul(w1) + self.b1.clone().broadcast::<_, Axis<0>>()).relu();
        let h = (h.matmul(self.w2.clone()) + self.b2.clone().broadcast::<_, Axis<0>>()).relu();
        h.matmul(self.w3.clone()) + self.b3.clone().broadcast::<_, Axis<0>>()
    }

    /// The negative mean log-probability of each row's label.
    fn loss<const B: usize, T>(
        &self,
        x: &Matrix<B, 784>,
        y: &Labels<B>,
        w1: Matrix<784, 128, T>,
    ) -> Tensor<Rank0, f32, Cpu, T>
    where
        T: Tape<f32, Cpu>,
        NoneTape: MergeTapes<T, Output = T>,
    {
        let logp = self.logits(x, w1).log_softmax::<Axis<1>>();
        -logp.select::<1>(y).mean::<Rank0, _>()
    }

    /// Forward and backward from fresh gradients for the six parameters, as a training
    /// loop allocates them each step.
    fn train_step<const B: usize>(&self, x: &Matrix<B, 784>, y: &Labels<B>) -> Gradients<f32, Cpu> {
        let mut grads = Gradients::default();
        grads.try_alloc_for(&self.w1).unwrap();
        grads.try_alloc_for(&self.b1).unwrap();
        grads.try_alloc_for(&self.w2).unwrap();
        grads.try_alloc_for(&self.b2).unwrap();
        grads.try_alloc_for(&self.w3).unwrap();
        grads.try_alloc_for(&self.b3).unwrap();
        self.loss(x, y, self.w1.clone().traced(grads)).backward()
    }
}

/// Everything ferrograd's rounds run on.
struct Workloads {
    mlp: Mlp,
    x: Matrix<BATCH_SIZE, 784>,
    y: Labels<BATCH_SIZE>,
    x1: Matrix<1, 784>,
    y1: Labels<1>,
    matrices: Vec<[Square; 2]>,
}

impl Workloads {
    fn new() -> Self {
        let dev = Cpu::seed_from_u64(0);
        let mlp = Mlp::new(&dev);
        let x: Matrix<BATCH_SIZE, 784> = dev.sample_normal();
        let y = dev.tensor(std::array::from_fn(|i| (i * 7 + 3) % 10));
        let x1 = dev.tensor_from_vec(x.as_vec()[..784].to_vec(), Default::default());
        let y1 = dev.tensor([y.array()[0]]);
        let matrices = MATMUL_SIZES
            .map(|n| [(); 2].map(|_| dev.sample_normal_like(&(n, n))))
            .to_vec();
        Self {
            mlp,
            x,
            y,
            x1,
            y1,
            matrices,
        }
    }

    /// The weights, inputs and labels as raw little-endian f32, for `cpu_gaps.py`.
    fn to_bytes(&self) -> Vec<u8> {
        let labels = self.y.as_vec().into_iter().map(|l| l as f32);
        let values = self.mlp.to_vec(None).into_iter().chain(self.x.as_vec()).chain(labels);
        values.flat_map(f32::to_le_bytes).collect()
    }

    /// What `cpu_gaps.py` answers to `check`: the losses at batch 64 and 1, and the norm
    /// of all six gradients at batch 64.
    fn check(&self) -> [(&'static str, f64); 3] {
        let grads = self.mlp.train_step(&self.x, &self.y);
        let m = &self.mlp;
        let squares: f64 = m.to_vec(Some(&grads)).iter().map(|&g| f64::from(g).powi(2)).sum();
        let loss = |t: Tensor<Rank0, f32, Cpu>| f64::from(t.array());
        [
            ("loss64", loss(m.loss(&self.x, &self.y, m.w1.clone()))),
            ("loss1", loss(m.loss(&self.x1, &self.y1, m.w1.clone()))),
            ("gnorm", squares.sqrt()),
        ]
    }

    /// One round of ferrograd's figures, in the order of [`WORKLOADS`].
    fn ferrograd_round(&self) -> Vec<f64> {
        let m = &self.mlp;
        // Results are dropped inside the loop, as PyTorch frees its graph and outputs.
        let mut times = vec![
            per_iteration_us(|| drop(black_box(m.logits(black_box(&self.x1), m.w1.clone())))),
            per_iteration_us(|| drop(black_box(m.train_step(black_box(&self.x1), &self.y1)))),
            per_iteration_us(|| drop(black_box(m.train_step(black_box(&self.x), &self.y)))),
        ];
        for [a, b] in &self.matrices {
            times.push(per_iteration_us(|| drop(black_box(a.clone().matmul(b.clone())))));
        }
        times
    }
}

fn main() {
    let workloads = Workloads::new();
    // The data file only has to outlive the script's start; it reads it at once.
    let data = std::env::temp_dir().join(format!("ferrograd-cpu-gaps-{}.f32", std::process::id()));
    std::fs::write(&data, workloads.to_bytes()).expect("writing the data file");
    let mut torch = Torch::start_or_explain("cpu_gaps.py", &[data.to_str().unwrap()]);
    let _ = std::fs::remove_file(&data);
    if let Some(torch) = torch.as_mut() {
        torch.check(&workloads.check(), 1e-4);
    }
    let comparison = Comparison {
        workloads: &WORKLOADS,
        rounds: ROUNDS,
        goals_from: "issue #10",
    };
    comparison.run(torch.as_mut(), || workloads.ferrograd_round());
}
