// The operator form of `add_mismatched_lengths`: `+` is implemented only between
// tensors of one shape, so the compiler reports a missing `Add` impl naming both shapes.
use ferrograd_autodiff::prelude::*;
use ferrograd_cpu::Cpu;

fn main() {
    let dev = Cpu::default();
    let a: Tensor<Rank1<3>, f32, Cpu> = dev.zeros();
    let b: Tensor<Rank1<4>, f32, Cpu> = dev.zeros();
    let _ = a + b;
}
