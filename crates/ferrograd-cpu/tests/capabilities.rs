//! The CPU has every capability group, for both float dtypes: a function bounded on a
//! group accepts `Cpu`. A kernel the CPU lacks would make this fail to compile.

use ferrograd_cpu::Cpu;
use ferrograd_device::prelude::*;

fn has_every_group<E: Dtype, D: ArithmeticKernels<E> + TrainingKernels<E> + ConvolutionKernels<E>>(_: &D) -> bool {
    true
}

#[test]
fn cpu_has_every_capability_group() {
    let cpu = Cpu::default();
    assert!(has_every_group::<f32, _>(&cpu));
    assert!(has_every_group::<f64, _>(&cpu));
}
