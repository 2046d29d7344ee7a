// Reducing a 2x3 matrix can give 2, 3 or a scalar, never 5 elements.
use ferrograd_autodiff::prelude::*;
use ferrograd_cpu::Cpu;

fn main() {
    let dev = Cpu::default();
    let x: Tensor<Rank2<2, 3>, f32, Cpu> = dev.ones();
    let _ = x.sum::<Rank1<5>, _>();
}
