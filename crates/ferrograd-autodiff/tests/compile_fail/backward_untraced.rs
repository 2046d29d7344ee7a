// `backward` exists only for a traced scalar: forgetting to trace is a compile error,
// not a silent zero gradient.
use ferrograd_autodiff::prelude::*;
use ferrograd_cpu::Cpu;

fn main() {
    let dev = Cpu::default();
    let x: Tensor<Rank1<3>, f32, Cpu> = dev.ones();
    let loss: Tensor<Rank0, f32, Cpu> = x.exp().sum();
    let _ = loss.backward();
}
