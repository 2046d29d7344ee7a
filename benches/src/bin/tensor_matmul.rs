//! matmul through the tensor API (allocation, layout handling and the GEMM together),
//! at 256³ and 1024³ in f32 and f64, plain and with a transposed operand. Compare with
//! `benches/torch/reference.py` run right after, on the same machine.
//!
//! `cargo run --release -p ferrograd-benches --bin tensor_matmul`

use ferrograd::prelude::*;
use std::hint::black_box;
use std::time::Instant;

/// The median GFLOP/s of `f`, an n×n×n product, over `samples` timed calls after warm-up.
fn gflops(n: usize, samples: usize, mut f: impl FnMut()) -> f64 {
    for _ in 0..3 {
        f();
    }
    let mut rates: Vec<f64> = (0..samples)
        .map(|_| {
            let start = Instant::now();
            f();
            2.0 * (n as f64).powi(3) / start.elapsed().as_secs_f64() / 1e9
        })
        .collect();
    rates.sort_by(f64::total_cmp);
    rates[samples / 2]
}

macro_rules! run {
    ($e:ty) => {{
        let dev = Cpu::seed_from_u64(0);
        for n in [256usize, 1024] {
            let samples = if n == 1024 { 11 } else { 51 };
            let a: Tensor<(usize, usize), $e, Cpu> = dev.sample_normal_like(&(n, n));
            let b: Tensor<(usize, usize), $e, Cpu> = dev.sample_normal_like(&(n, n));
            let plain = gflops(n, samples, || {
                black_box(a.clone().matmul(b.clone()));
            });
            let transposed = gflops(n, samples, || {
                black_box(a.clone().matmul(b.clone().t()));
            });
            println!("| {} | {n}³ | {plain:7.1} | {transposed:7.1} |", stringify!($e));
        }
    }};
}

fn main() {
    println!(
        "matmul through the tensor API, GEMM backend: {}",
        ferrograd::cpu::gemm::backend_name()
    );
    println!("| dtype | size | GFLOP/s a·b | GFLOP/s a·bᵀ (view) |");
    println!("|---|---|--:|--:|");
    run!(f32);
    run!(f64);
}
