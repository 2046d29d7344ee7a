//! `Cuda` has every kernel of every capability group, for both float dtypes, so any
//! code generic over the device accepts it; and, where a GPU is present, its kernels
//! pass the conformance suite against the CPU. (Without a GPU the second test says it
//! is skipped; `FERROGRAD_REQUIRE_GPU` makes that a failure.)

use ferrograd_cuda::Cuda;
use ferrograd_device::prelude::*;
use ferrograd_testing::conformance::{Tolerance, run_all};

/// Compiles only for a device with every group; the device is a value so the bound
/// is checked on a real type, not a phantom one.
fn has_every_group<E: Dtype, D: ArithmeticKernels<E> + TrainingKernels<E> + ConvolutionKernels<E>>(
    _device: std::marker::PhantomData<D>,
) -> bool {
    true
}

#[test]
fn cuda_has_every_capability_group() {
    assert!(has_every_group::<f32, Cuda>(std::marker::PhantomData));
    assert!(has_every_group::<f64, Cuda>(std::marker::PhantomData));
}

#[test]
fn cuda_conforms_to_the_cpu() {
    let gpu = match Cuda::new(0) {
        Ok(gpu) => gpu,
        Err(e) if std::env::var_os("FERROGRAD_REQUIRE_GPU").is_some() => {
            panic!("FERROGRAD_REQUIRE_GPU is set, but there is no usable GPU: {e}")
        }
        Err(e) => {
            println!("skipped, no GPU: {e}");
            return;
        }
    };
    let f32_summary = run_all::<f32, _>(&gpu, Tolerance::close::<f32>()).unwrap_or_else(|failure| panic!("{failure}"));
    println!("f32: {f32_summary:?}");
    let f64_summary = run_all::<f64, _>(&gpu, Tolerance::close::<f64>()).unwrap_or_else(|failure| panic!("{failure}"));
    println!("f64: {f64_summary:?}");
}
