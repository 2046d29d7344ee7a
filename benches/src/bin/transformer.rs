//! A training step of one `TransformerEncoderLayer` beside PyTorch (issue #13), on 1
//! and on 2 threads:
//!
//! ```sh
//! cargo run --release -p ferrograd-benches --bin transformer
//! ```
//!
//! The layer is `TransformerEncoderLayer<128, 4, 512>` (d_model 128, 4 heads, a
//! feed-forward block of 512, post-norm, ReLU) with dropout 0, so that both libraries
//! compute the same thing; PyTorch's twin (`benches/torch/transformer.py`) is
//! `nn.TransformerEncoderLayer(128, 4, 512, dropout=0.0, batch_first=True)`. The step,
//! on a batch of 16 sequences of 32 positions: fresh gradients, `forward_mut`, the mean
//! squared error to a fixed target, `backward`, `Adam::step` with Adam's defaults.
//!
//! PyTorch loads ferrograd's initial weights from the checkpoint `model.save` writes
//! (the layer's parameter names are PyTorch's state_dict keys) and the same input and
//! target; both take the same few steps and compare their losses before anything is
//! timed. Rounds of both libraries on each thread count are interleaved (see
//! [`Comparison`]).

use std::hint::black_box;

use ferrograd::nn::TransformerEncoderLayerConfig;
use ferrograd::prelude::*;
use ferrograd_benches::{Comparison, Torch, Workload, per_iteration_us};

const ROUNDS: usize = 3;
/// Training steps both sides take, comparing their losses, before the timing.
const CHECK_STEPS: usize = 3;

type Layer = TransformerEncoderLayer<128, 4, 512>;
type Model = Built<Layer, f32, Cpu>;
/// (batch, sequence, d_model).
type Batch = Tensor<Rank3<16, 32, 128>, f32, Cpu>;

const WORKLOADS: [Workload; 1] = [Workload {
    name: "encoder_train",
    label: "TransformerEncoderLayer(128, 4 heads, ff 512) step, batch 16 × seq 32, Adam",
    goal: 1.0,
}];

/// The layer, its optimizer and the data.
struct Training {
    model: Model,
    adam: Adam<f32, Cpu>,
    x: Batch,
    target: Batch,
}

impl Training {
    fn new() -> Self {
        let dev = Cpu::seed_from_u64(0);
        // Dropout off: PyTorch's would draw other masks, and the losses could not agree.
        let config = TransformerEncoderLayerConfig {
            dropout: 0.0,
            ..Layer::default()
        };
        Self {
            model: dev.build_module_with::<_, f32>(config),
            adam: Adam::new(AdamConfig::default()).unwrap(),
            x: dev.sample_normal(),
            target: dev.sample_normal(),
        }
    }

    /// One training step as a user writes it; returns the loss before the update.
    fn step(&mut self) -> f32 {
        let grads = self.model.try_alloc_grads().unwrap();
        let y = self.model.forward_mut(self.x.clone().traced_input(grads));
        let loss = losses::mse_loss(y, self.target.clone(), Reduction::Mean);
        let value = loss.array();
        let grads = loss.backward();
        self.adam.step(&mut self.model, &grads).unwrap();
        value
    }

    /// The input then the target as raw little-endian f32, for `transformer.py`.
    fn data_bytes(&self) -> Vec<u8> {
        let values = self.x.as_vec().into_iter().chain(self.target.as_vec());
        values.flat_map(f32::to_le_bytes).collect()
    }

    /// What `transformer.py` answers to `check`: the loss of each of the first
    /// [`CHECK_STEPS`] steps (each after the first also checks Adam's update).
    fn check(&mut self) -> Vec<(&'static str, f64)> {
        const NAMES: [&str; CHECK_STEPS] = ["step1", "step2", "step3"];
        NAMES.into_iter().map(|name| (name, f64::from(self.step()))).collect()
    }
}

fn main() {
    let mut training = Training::new();
    // The files only have to outlive the script's start; it reads them at once.
    let temp = std::env::temp_dir();
    let weights = temp.join(format!("ferrograd-transformer-{}.npz", std::process::id()));
    let data = temp.join(format!("ferrograd-transformer-{}.f32", std::process::id()));
    training.model.save(&weights).expect("writing the checkpoint");
    std::fs::write(&data, training.data_bytes()).expect("writing the data file");
    let mut torch = Torch::start_or_explain("transformer.py", &[weights.to_str().unwrap(), data.to_str().unwrap()]);
    let _ = std::fs::remove_file(&weights);
    let _ = std::fs::remove_file(&data);
    let ours = training.check();
    if let Some(torch) = torch.as_mut() {
        torch.check(&ours, 1e-4);
    }
    let comparison = Comparison {
        workloads: &WORKLOADS,
        rounds: ROUNDS,
        goals_from: "issue #13",
    };
    comparison.run(torch.as_mut(), || {
        vec![per_iteration_us(|| {
            black_box(training.step());
        })]
    });
}
