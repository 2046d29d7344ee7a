//! One training epoch of the `mnist` example beside PyTorch (issue #13), on 1 and on 2
//! threads:
//!
//! ```sh
//! cargo run --release -p ferrograd-benches --bin mnist_epoch
//! ```
//!
//! The model, data and loop are `examples/mnist.rs`'s: the LeNet-like CNN (two 5×5
//! convolutions of 16 and 32 channels with ReLU and 2×2 max pools, then 512 → 64 → 10),
//! the 4 000 training digits embedded in `ferrograd-data`, shuffled batches of 32 from
//! its `DataLoader`, cross-entropy and Adam (lr 2e-3; the example's cosine schedule is
//! left out, it costs nothing). PyTorch's twin (`benches/torch/mnist_epoch.py`) trains
//! the same network, from ferrograd's initial weights, on the same 4 000 images, in
//! batches of 32 indexed from one tensor in a shuffled order.
//!
//! Each round times one whole epoch (125 steps) per library and thread count; so the
//! figures are seconds, not the median of many short batches. Before the timing, both
//! sides take one step on the same first batch and compare its loss.

use std::time::Instant;

use ferrograd::data::DigitBatch;
use ferrograd::prelude::*;
use ferrograd_benches::{Comparison, Torch, Workload};

const ROUNDS: usize = 3;
const BATCH_SIZE: usize = 32;
const LR: f64 = 2e-3;

/// `examples/mnist.rs`'s `Net`.
type Net = (
    (Conv2D<1, 16, 5>, ReLU, MaxPool2D<2>),
    (Conv2D<16, 32, 5>, ReLU, MaxPool2D<2>),
    (Flatten, Linear<512, 64>, ReLU, Linear<64, 10>),
);
type Model = Built<Net, f32, Cpu>;
type Loader = DataLoader<Digits, DigitsToTensors<Cpu>>;

const WORKLOADS: [Workload; 1] = [Workload {
    name: "epoch",
    label: "mnist example: one epoch, 4 000 digits, batch 32, Adam",
    goal: 1.0,
}];

/// The model and its optimizer: apart from the loader, which an epoch borrows while
/// they step.
struct Learner {
    model: Model,
    adam: Adam<f32, Cpu>,
}

impl Learner {
    /// One step, as the example's loop takes it; returns the loss before the update.
    fn step(&mut self, batch: DigitBatch<Cpu>) -> f32 {
        let DigitBatch { images, labels } = batch;
        let grads = self.model.try_alloc_grads().unwrap();
        let logits = self.model.forward_mut(images.traced_input(grads));
        let loss = losses::cross_entropy(logits, &labels, Reduction::Mean, Default::default());
        let value = loss.array();
        let grads = loss.backward();
        self.adam.step(&mut self.model, &grads).unwrap();
        value
    }
}

/// The example's training state.
struct Training {
    learner: Learner,
    loader: Loader,
    train: Digits,
    epoch: u64,
}

impl Training {
    fn new() -> Self {
        let dev = Cpu::seed_from_u64(0);
        let (train, _test) = Digits::embedded().expect("the embedded digits").split_per_class(400);
        let config = LoaderConfig {
            batch_size: BATCH_SIZE,
            shuffle: true,
            ..Default::default()
        };
        let loader = DataLoader::new(train.clone(), DigitsToTensors::new(dev.clone()), config).unwrap();
        let learner = Learner {
            model: dev.build_module::<Net, f32>(),
            adam: Adam::new(AdamConfig {
                lr: LR,
                ..Default::default()
            })
            .unwrap(),
        };
        Self {
            learner,
            loader,
            train,
            epoch: 0,
        }
    }

    /// One epoch's µs: a new shuffle each epoch, as the example's.
    fn epoch_us(&mut self) -> f64 {
        let start = Instant::now();
        for batch in self.loader.iter(self.epoch) {
            self.learner.step(batch.expect("a batch of embedded digits"));
        }
        self.epoch += 1;
        start.elapsed().as_secs_f64() * 1e6
    }

    /// The training images (grey levels / 255, as the example's tensors hold them) then
    /// the labels, as raw little-endian f32, for `mnist_epoch.py`.
    fn data_bytes(&self) -> Vec<u8> {
        let pixels = self.train.pixels().iter().map(|&p| f32::from(p) / 255.0);
        let labels = self.train.labels().iter().map(|&l| f32::from(l));
        pixels.chain(labels).flat_map(f32::to_le_bytes).collect()
    }
}

fn main() {
    let mut training = Training::new();
    let temp = std::env::temp_dir();
    let weights = temp.join(format!("ferrograd-mnist-epoch-{}.npz", std::process::id()));
    let data = temp.join(format!("ferrograd-mnist-epoch-{}.f32", std::process::id()));
    training.learner.model.save(&weights).expect("writing the checkpoint");
    std::fs::write(&data, training.data_bytes()).expect("writing the data file");
    let mut torch = Torch::start_or_explain("mnist_epoch.py", &[weights.to_str().unwrap(), data.to_str().unwrap()]);
    let _ = std::fs::remove_file(&weights);
    let _ = std::fs::remove_file(&data);

    // One step on the first BATCH_SIZE digits, in order, on both sides.
    let first: Vec<Digit> = (0..BATCH_SIZE).map(|i| training.train.get_item(i).unwrap()).collect();
    let collate = DigitsToTensors::new(Cpu::seed_from_u64(0));
    let loss = training.learner.step(collate.try_collate(first).unwrap());
    if let Some(torch) = torch.as_mut() {
        torch.check(&[("loss", f64::from(loss))], 1e-4);
    }

    let comparison = Comparison {
        workloads: &WORKLOADS,
        rounds: ROUNDS,
        goals_from: "issue #13",
    };
    comparison.run(torch.as_mut(), || vec![training.epoch_us()]);
}
