//! ResNet-18, torchvision's architecture with its `state_dict` names: built, run at
//! inference on a batch of 8 images and trained one step at batch 2, on 64×64 inputs.
//!
//! ```sh
//! cargo run --release --example resnet18                  # PyTorch's initialisation
//! cargo run --release --example resnet18 -- weights.npz   # a state_dict from PyTorch
//! ```
//!
//! The weights of `torchvision.models.resnet18(weights="DEFAULT")` load as PyTorch saves
//! them:
//!
//! ```python
//! import numpy, torchvision
//! model = torchvision.models.resnet18(weights="DEFAULT")
//! numpy.savez("weights.npz", **{k: v.numpy() for k, v in model.state_dict().items()})
//! ```

use ferrograd::prelude::*;
use ferrograd_examples::resnet::ResNet18Config;
use std::time::Instant;

fn main() -> Result<(), Error> {
    let dev = Cpu::seed_from_u64(0);
    let started = Instant::now();
    let mut model = dev.try_build_module_with::<_, f32>(ResNet18Config::default())?;
    println!(
        "ResNet-18: {} parameters, built in {:.0} ms",
        model.num_parameters()?,
        started.elapsed().as_secs_f64() * 1e3
    );
    if let Some(path) = std::env::args().nth(1) {
        model.load(&path)?;
        println!("loaded {path}");
    }

    // Inference: a batch of 8 images.
    let images: Tensor<Rank4<8, 3, 64, 64>, f32, Cpu> = dev.sample_normal();
    let started = Instant::now();
    let logits = model.try_forward(images)?;
    println!(
        "inference, batch 8, 64×64: logits {:?} in {:.1} ms",
        logits.dims(),
        started.elapsed().as_secs_f64() * 1e3
    );
    let logits = logits.as_vec();
    if logits.iter().any(|v| !v.is_finite()) {
        return Err(Error::InvalidArgument {
            op: "resnet18",
            message: "the logits are not all finite".into(),
        });
    }

    // One training step at batch 2: batch statistics, gradients for every parameter.
    let images: Tensor<Rank4<2, 3, 64, 64>, f32, Cpu> = dev.sample_normal();
    let labels = dev.tensor([3usize, 7]);
    let mut optimizer = Sgd::new(SgdConfig {
        lr: 0.01,
        momentum: 0.9,
        ..Default::default()
    })?;
    let started = Instant::now();
    let grads = model.try_alloc_grads()?;
    let logits = model.try_forward_mut(images.traced_input(grads))?;
    let loss = losses::cross_entropy(logits, &labels, Reduction::Mean, Default::default());
    let loss_value = loss.array();
    let grads = loss.backward();
    optimizer.step(&mut model, &grads)?;
    println!(
        "training step, batch 2, 64×64: loss {loss_value:.4} in {:.1} ms",
        started.elapsed().as_secs_f64() * 1e3
    );
    Ok(())
}
