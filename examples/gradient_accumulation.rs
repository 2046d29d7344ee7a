//! Gradient accumulation with a learning-rate schedule: four micro-batches per
//! optimizer step, a linear warm-up then cosine annealing.
//!
//! ```sh
//! cargo run --release --example gradient_accumulation
//! ```
//!
//! Gradients allocated once add up over several backward passes, as PyTorch's `.grad`
//! does, until `zero_grads`. Scaling each micro-batch's loss by 1/4 makes their sum the
//! gradient of the whole batch's mean loss, which the program checks.

use ferrograd::optim::schedule::{CosineAnnealingLr, LinearLr, LrScheduler, SequentialLr};
use ferrograd::prelude::*;

type Model = (Linear<1, 32>, Tanh, Linear<32, 1>);
const MICRO_BATCHES: usize = 4;
const MICRO: usize = 16;
/// A micro-batch: inputs and targets.
type Batch = (Tensor<Rank2<MICRO, 1>, f32, Cpu>, Tensor<Rank2<MICRO, 1>, f32, Cpu>);

fn main() -> Result<(), Error> {
    let dev = Cpu::seed_from_u64(0);
    let mut model = dev.build_module::<Model, f32>();

    // y = sin(3x) on [-1, 1], split into micro-batches.
    let xs: Vec<f32> = (0..MICRO * MICRO_BATCHES).map(|i| i as f32 / 32.0 - 1.0).collect();
    let batches: Vec<Batch> = xs
        .chunks(MICRO)
        .map(|chunk| {
            let x = dev.tensor_from_vec(chunk.to_vec(), Default::default());
            let y = dev.tensor_from_vec(chunk.iter().map(|v| (3.0 * v).sin()).collect(), Default::default());
            (x, y)
        })
        .collect();

    let mut optimizer = Sgd::new(SgdConfig {
        lr: 0.05,
        momentum: 0.9,
        ..Default::default()
    })?;
    // 10 warm-up steps from 10% of the rate, then a cosine over the remaining 290.
    let warm_up = LinearLr::new(&mut optimizer, 0.1, 1.0, 10)?;
    let cosine = CosineAnnealingLr::new(&mut optimizer, 290, 0.0)?;
    let mut schedule = SequentialLr::new(&mut optimizer, vec![Box::new(warm_up), Box::new(cosine)], vec![10])?;

    let mut grads = model.try_alloc_grads()?;
    let mut first_loss = None;
    for step in 0..300 {
        let mut total = 0.0;
        for (x, y) in &batches {
            let prediction = model.forward_mut(x.clone().traced_input(grads));
            let loss = (prediction - y.clone()).square().mean::<Rank0, _>() / MICRO_BATCHES as f32;
            total += loss.array();
            grads = loss.backward(); // adds to the gradients of the micro-batches before
        }
        if step == 0 {
            check_accumulated_gradient(&model, &batches, &grads)?;
        }
        first_loss.get_or_insert(total);
        optimizer.step(&mut model, &grads)?;
        grads.zero_grads()?;
        schedule.step(&mut optimizer)?;
        if step % 50 == 0 || step == 299 {
            println!("step {step:3}: loss {total:.5}, lr {:.4}", optimizer.lr(0)?);
        }
    }
    let last: f32 = batches
        .iter()
        .map(|(x, y)| {
            (model.forward(x.clone()) - y.clone())
                .square()
                .mean::<Rank0, _>()
                .array()
        })
        .sum::<f32>()
        / MICRO_BATCHES as f32;
    println!("loss {:.5} -> {last:.5}", first_loss.unwrap_or_default());
    assert!(
        last < 0.1 * first_loss.unwrap_or_default(),
        "the model should fit sin(3x)"
    );
    Ok(())
}

/// The accumulated gradient of the first layer's weight equals that of one batch of all
/// the samples (up to float rounding).
fn check_accumulated_gradient(
    model: &Built<Model, f32, Cpu>,
    batches: &[Batch],
    accumulated: &Gradients<f32, Cpu>,
) -> Result<(), Error> {
    let dev = Cpu::default();
    let gather = |pick: fn(&Batch) -> Vec<f32>| batches.iter().flat_map(pick).collect::<Vec<f32>>();
    let x: Tensor<Rank2<64, 1>, f32, Cpu> = dev.tensor_from_vec(gather(|b| b.0.as_vec()), Default::default());
    let y: Tensor<Rank2<64, 1>, f32, Cpu> = dev.tensor_from_vec(gather(|b| b.1.as_vec()), Default::default());
    let loss = (model.forward(x.traced(model.try_alloc_grads()?)) - y)
        .square()
        .mean::<Rank0, _>();
    let whole = loss.backward().get(&model.0.weight).as_vec();
    let summed = accumulated.get(&model.0.weight).as_vec();
    for (a, b) in whole.iter().zip(&summed) {
        assert!(
            (a - b).abs() <= 1e-5 * a.abs().max(1.0),
            "whole batch {a}, accumulated {b}"
        );
    }
    println!(
        "accumulated gradient = whole-batch gradient (first layer, {} values)",
        whole.len()
    );
    Ok(())
}
