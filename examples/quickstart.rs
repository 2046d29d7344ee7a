//! Quickstart: one neuron, `y = tanh(w·x + b)`, scored against a target with a squared
//! error plus a small penalty on `w`, then differentiated.
//!
//! Run it with `cargo run --release --example quickstart`.

use ferrograd::prelude::*;

fn main() -> Result<(), Error> {
    let dev = Cpu::seed_from_u64(0);

    // Lengths are part of the types: `w * x` with an `x` of another length would be a
    // compile error, not a run-time surprise.
    let w: Tensor<Rank1<3>, f32, Cpu> = dev.tensor([0.5, -0.3, 0.8]);
    let b: Tensor<Rank0, f32, Cpu> = dev.tensor(0.1);
    let x: Tensor<Rank1<3>, f32, Cpu> = dev.tensor([1.0, 2.0, -1.0]);
    let target: Tensor<Rank0, f32, Cpu> = dev.tensor(0.5);

    // One `Gradients` with a slot per parameter, as a model would allocate. Tracing `w`
    // puts the tape on it; `b` needs no tape of its own, since its slot already asks
    // backward to keep its gradient.
    let mut grads = w.alloc_grads();
    grads.try_alloc_for(&b)?;
    let w_t = w.clone().traced(grads);

    // `w` is used twice, in the prediction and in the penalty. Cloning the traced tensor
    // is how: the clones share one tape, so both uses land in one graph and their
    // gradients add up.
    let y = ((w_t.clone() * x.clone()).sum::<Rank0, _>() + b.clone()).tanh();
    let loss = (y - target.clone()).square() + w_t.square().sum::<Rank0, _>() * 0.01;

    println!("loss  = {:.6}", loss.array());
    let grads = loss.backward();
    let (dw, db) = (grads.get(&w).array(), grads.get(&b).array());
    println!("dL/dw = {dw:?}");
    println!("dL/db = {db:?}");

    // The same derivatives by hand, so the output can be trusted at a glance:
    // dL/db = 2(y - t)(1 - y²), and dL/dw = dL/db · x + 0.02 w (the second use of w).
    let (wv, xv) = (w.array(), x.array());
    let z: f32 = wv.iter().zip(&xv).map(|(w, x)| w * x).sum::<f32>() + b.array();
    let by_hand_db = 2.0 * (z.tanh() - target.array()) * (1.0 - z.tanh().powi(2));
    let by_hand_dw = [0, 1, 2].map(|i| by_hand_db * xv[i] + 0.02 * wv[i]);
    println!("by hand: dL/dw = {by_hand_dw:?}, dL/db = {by_hand_db}");
    let close = |a: f32, b: f32| (a - b).abs() < 1e-5;
    assert!(close(db, by_hand_db) && (0..3).all(|i| close(dw[i], by_hand_dw[i])));
    Ok(())
}
