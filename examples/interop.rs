//! Weights both ways between PyTorch and ferrograd, as npz files of PyTorch's
//! `state_dict` names.
//!
//! ```sh
//! cargo run --release --example interop                         # writes target/interop
//! python3 examples/interop/check_ferrograd.py target/interop    # numpy; torch if installed
//! ```
//!
//! **PyTorch → ferrograd.** `examples/interop/train_pytorch.py` trained
//! `nn.Sequential(nn.Linear(784, 64), nn.ReLU(), nn.Linear(64, 10))` on the 4 000
//! embedded training digits and saved its `state_dict` (`pytorch_mlp.npz`) and its
//! logits on the 1 000 held-out digits (`pytorch_logits.npz`); both files are
//! committed, so this needs no Python. The example loads the weights into the same
//! layers in ferrograd, strictly (every key, shape and dtype must match), and fails
//! unless its logits are within [`TOLERANCE`] of PyTorch's and every prediction agrees.
//!
//! **ferrograd → PyTorch.** It then trains the same layers from scratch in ferrograd,
//! and writes `model.npz` and its held-out logits (`logits.npz`, key `logits`) to the
//! output folder, for `check_ferrograd.py` to load into PyTorch's `nn.Sequential`
//! (`load_state_dict(strict=True)`) and compare.

use clap::Parser;
use ferrograd::data::DigitBatch;
use ferrograd::nn::checkpoint::{ArchiveEntry, ArchiveReader, save_archive};
use ferrograd::prelude::*;
use ferrograd::shapes::Const;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

/// `nn.Sequential(nn.Linear(784, 64), nn.ReLU(), nn.Linear(64, 10))`: a tuple's layers
/// are named by position, as `nn.Sequential`'s are (`0.weight`, …, `2.bias`).
type Mlp = (Linear<784, 64>, ReLU, Linear<64, 10>);

/// The largest difference allowed between two implementations' logits for the same
/// weights and images: float32 sums of 784 products, added in another order, differ
/// by a few ulps of logits of a magnitude of ten or so, far below this.
const TOLERANCE: f32 = 1e-4;

/// PyTorch's weights and logits, committed beside `train_pytorch.py`.
const PYTORCH_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/interop");

/// Move a model between PyTorch and ferrograd: load PyTorch's weights and reproduce
/// its outputs, then train one here for PyTorch to load.
#[derive(Parser, Debug)]
#[command(about, long_about = None)]
struct Args {
    /// Passes over the 4 000 training digits for the model trained here.
    #[arg(long, default_value_t = 8)]
    epochs: usize,
    /// Seeds the initial weights and the order of the digits.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Threads for the kernels (default: FERROGRAD_NUM_THREADS, else every core).
    #[arg(long)]
    threads: Option<usize>,
    /// Where model.npz and logits.npz go, for check_ferrograd.py.
    #[arg(long, default_value = "target/interop")]
    out: PathBuf,
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

type Result<T, E = Box<dyn std::error::Error>> = std::result::Result<T, E>;

/// A batch of flat images, `(N, 784)`: what a `Linear<784, _>` takes.
type Flat = Tensor<(usize, Const<784>), f32, Cpu>;

fn run(args: &Args) -> Result<()> {
    let started = Instant::now();
    if let Some(threads) = args.threads {
        ferrograd::try_set_num_threads(threads)?;
    }
    let dev = Cpu::seed_from_u64(args.seed);
    // The split train_pytorch.py makes too: the first 400 of each digit to train on.
    let (train, test) = Digits::embedded()?.split_per_class(400);
    let images: Vec<f32> = test.pixels().iter().map(|&p| f32::from(p) / 255.0).collect();
    let images: Flat = dev.try_tensor_from_vec(images, (test.len(), Const))?;
    let labels: Vec<usize> = test.labels().iter().map(|&l| usize::from(l)).collect();

    // PyTorch → ferrograd: the layers start random, then take PyTorch's weights.
    let mut from_pytorch = dev.try_build_module::<Mlp, f32>()?;
    let weights = Path::new(PYTORCH_DIR).join("pytorch_mlp.npz");
    from_pytorch.load(&weights)?; // strict: a missing, extra or misshapen key is an error
    let logits = from_pytorch.try_forward(images.clone())?.as_vec();
    let expected = read_logits(&Path::new(PYTORCH_DIR).join("pytorch_logits.npz"), labels.len())?;
    let difference = max_difference(&logits, &expected);
    let (ours, theirs) = (argmax_rows(&logits), argmax_rows(&expected));
    let same = ours.iter().zip(&theirs).filter(|(a, b)| a == b).count();
    println!(
        "PyTorch → ferrograd: loaded {} (strict); held-out accuracy {:.2} %, logits within {difference:.2e} \
         of PyTorch's (tolerance {TOLERANCE:e}), {same}/{} predictions the same",
        weights.display(),
        100.0 * accuracy(&ours, &labels),
        labels.len()
    );
    // A NaN difference fails too: it is not within the tolerance.
    if difference.is_nan() || difference > TOLERANCE || same != labels.len() {
        return Err("ferrograd does not reproduce PyTorch's logits".into());
    }

    // ferrograd → PyTorch: train the same layers here, then save them for PyTorch.
    let mut model = dev.try_build_module::<Mlp, f32>()?;
    let mut optimizer = Adam::new(AdamConfig {
        lr: 2e-3,
        ..Default::default()
    })?;
    let config = LoaderConfig {
        batch_size: 64,
        shuffle: true,
        seed: args.seed,
        ..Default::default()
    };
    let loader = DataLoader::new(train, DigitsToTensors::new(dev.clone()), config)?;
    let training = Instant::now();
    for epoch in 0..args.epochs {
        for batch in loader.iter(epoch as u64) {
            let DigitBatch { images, labels } = batch?;
            // (N, 1, 28, 28) → (N, 784): row-major, as PyTorch's `x.view(-1, 784)`.
            let images: Flat = images.try_reshape_like(&(labels.dims()[0], Const))?;
            let logits = model.try_forward_mut(images.traced_input(model.try_alloc_grads()?))?;
            let loss = losses::try_cross_entropy(logits, &labels, Reduction::Mean, Default::default())?;
            optimizer.step(&mut model, &loss.try_backward()?)?;
        }
    }
    let logits = model.try_forward(images)?.as_vec();
    println!(
        "ferrograd: trained the same MLP for {} epochs in {:.1} s; held-out accuracy {:.2} %",
        args.epochs,
        training.elapsed().as_secs_f64(),
        100.0 * accuracy(&argmax_rows(&logits), &labels)
    );
    std::fs::create_dir_all(&args.out).map_err(|e| format!("cannot create {}: {e}", args.out.display()))?;
    model.save(args.out.join("model.npz"))?;
    save_archive(args.out.join("logits.npz"), |archive| {
        archive.write_floats("logits", &[labels.len(), 10], logits)
    })?;
    println!(
        "ferrograd → PyTorch: wrote {0}/model.npz and {0}/logits.npz; check them with \
         `python3 examples/interop/check_ferrograd.py {0}`. {1:.1} s in all",
        args.out.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// The `(rows, 10)` float32 array `logits` of the npz at `path`, row-major.
fn read_logits(path: &Path, rows: usize) -> Result<Vec<f32>> {
    match ArchiveReader::open(path)?.read::<f32>("logits")? {
        ArchiveEntry::Floats(dims, values) if dims == [rows, 10] => Ok(values),
        ArchiveEntry::Floats(dims, _) => {
            Err(format!("{}: logits of shape {dims:?}, expected [{rows}, 10]", path.display()).into())
        }
        ArchiveEntry::Count(_) => Err(format!("{}: `logits` is a counter, not an array", path.display()).into()),
    }
}

/// The largest absolute difference between `a` and `b`, element by element (NaN if
/// either has a NaN, so that the tolerance check fails).
fn max_difference(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).fold(0.0, |worst, (x, y)| {
        let d = (x - y).abs();
        if d.is_nan() || d > worst { d } else { worst }
    })
}

/// The index of the largest of each row of 10 logits.
fn argmax_rows(logits: &[f32]) -> Vec<usize> {
    logits
        .chunks_exact(10)
        .map(|row| (0..10).fold(0, |best, i| if row[i] > row[best] { i } else { best }))
        .collect()
}

fn accuracy(predictions: &[usize], labels: &[usize]) -> f64 {
    let correct = predictions.iter().zip(labels).filter(|(p, l)| p == l).count();
    correct as f64 / labels.len().max(1) as f64
}
