//! Code written once for any device: each function names one capability group as its
//! bound, and runs on the CPU here (and on any other device that has those kernels).
//!
//! ```sh
//! cargo run --release --example generic_device
//! ```
//!
//! The groups are in `ferrograd::prelude` (and `ferrograd::device::prelude`).
//! `train_classifier` needs [`TrainingKernels`]: it builds an MLP, trains it with Adam
//! on points of four quadrants (the XOR pattern) and fails unless the loss falls.
//! `classify_images` needs [`ConvolutionKernels`]: a small CNN's forward pass.

use ferrograd::prelude::*;

type Mlp = (Linear<2, 32>, ReLU, Linear<32, 2>);
type Cnn = (Conv2D<1, 4, 3, 1, 1>, ReLU, MaxPool2D<2>, Flatten, Linear<64, 3>);
const POINTS: usize = 64;

/// Trains an MLP on the XOR pattern on `device`; returns the first and last losses.
fn train_classifier<D: TrainingKernels<f32>>(device: &D) -> Result<(f32, f32), Error> {
    // An 8 × 8 grid over [-1, 1]², labelled by whether x and y share a sign.
    let mut points = Vec::with_capacity(POINTS * 2);
    let mut labels = Vec::with_capacity(POINTS);
    for i in 0..POINTS {
        let (x, y) = ((i % 8) as f32 / 3.5 - 1.0, (i / 8) as f32 / 3.5 - 1.0);
        points.extend([x, y]);
        labels.push(usize::from(x * y > 0.0));
    }
    let points: Tensor<Rank2<POINTS, 2>, f32, D> = device.try_tensor_from_vec(points, Default::default())?;
    let labels: Tensor<Rank1<POINTS>, usize, D> = device.try_tensor_from_vec(labels, Default::default())?;

    let mut model = device.try_build_module::<Mlp, f32>()?;
    let mut optimizer = Adam::new(AdamConfig {
        lr: 0.02,
        ..Default::default()
    })?;
    let mut losses = Vec::new();
    for _ in 0..300 {
        let logits = model.try_forward(points.clone().traced(model.try_alloc_grads()?))?;
        let loss = losses::try_cross_entropy(logits, &labels, Reduction::Mean, Default::default())?;
        losses.push(loss.array());
        optimizer.step(&mut model, &loss.try_backward()?)?;
    }
    Ok((losses[0], losses[losses.len() - 1]))
}

/// The classes a small, untrained CNN gives two random 8 × 8 images on `device`.
fn classify_images<D: ConvolutionKernels<f32>>(device: &D) -> Result<Vec<usize>, Error> {
    let model = device.try_build_module::<Cnn, f32>()?;
    let images: Tensor<(Const<2>, Const<1>, usize, usize), f32, D> = device.sample_normal_like(&(Const, Const, 8, 8));
    let logits = model.try_forward(images)?;
    Ok(logits.try_argmax::<Rank1<2>, Axis<1>>()?.as_vec())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let cpu = Cpu::seed_from_u64(0);
    let (first, last) = train_classifier(&cpu)?;
    println!("MLP on the CPU: cross-entropy {first:.3} → {last:.3}");
    let classes = classify_images(&cpu)?;
    println!("CNN on the CPU: classes {classes:?}");
    // A NaN loss fails too.
    if last.is_nan() || last >= 0.5 * first {
        return Err(format!("the MLP did not learn: loss {first} → {last}").into());
    }
    Ok(())
}
