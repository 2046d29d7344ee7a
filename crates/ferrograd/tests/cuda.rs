//! Tensors on `Cuda` through the facade (`--features cuda`): created, sampled and read
//! back like on the CPU. Skipped, saying so, without a GPU, unless the environment
//! variable `FERROGRAD_REQUIRE_GPU` is set.
#![cfg(feature = "cuda")]

use ferrograd::prelude::*;
use ferrograd::{Cuda, Error};

fn gpu(seed: u64) -> Option<Cuda> {
    match Cuda::seed_from_u64(seed) {
        Ok(gpu) => Some(gpu),
        Err(e) if std::env::var_os("FERROGRAD_REQUIRE_GPU").is_some() => {
            panic!("FERROGRAD_REQUIRE_GPU is set, but there is no usable GPU: {e}")
        }
        Err(e) => {
            println!("skipped, no GPU: {e}");
            None
        }
    }
}

#[test]
fn tensors_on_the_gpu_hold_what_they_hold_on_the_cpu() {
    let Some(gpu) = gpu(11) else { return };
    let cpu = Cpu::seed_from_u64(11);

    let normal: Tensor<Rank2<3, 4>, f32, Cuda> = gpu.sample_normal();
    let cpu_normal: Tensor<Rank2<3, 4>, f32, Cpu> = cpu.sample_normal();
    assert_eq!(normal.array(), cpu_normal.array());
    let uniform: Tensor<Rank1<5>, f64, Cuda> = gpu.sample_uniform();
    let cpu_uniform: Tensor<Rank1<5>, f64, Cpu> = cpu.sample_uniform();
    assert_eq!(uniform.array(), cpu_uniform.array());

    let x: Tensor<Rank2<2, 2>, f64, Cuda> = gpu.tensor([[1.0, 2.0], [3.0, 4.0]]);
    assert_eq!(x.array(), [[1.0, 2.0], [3.0, 4.0]]);
    let zeros: Tensor<Rank1<3>, f32, Cuda> = gpu.zeros();
    assert_eq!(zeros.array(), [0.0; 3]);
    let from_vec = gpu.tensor_from_vec(vec![true, false, true], (3,));
    assert_eq!(from_vec.as_vec(), [true, false, true]);
}

#[test]
fn no_gpu_is_an_error_not_a_panic() {
    // Runs everywhere: no GPU has this ordinal.
    assert!(matches!(Cuda::new(1 << 40), Err(Error::Device { .. })));
}
