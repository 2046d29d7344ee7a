// A (2, 3) matrix times a (4, 5) one: the inner dims 3 and 4 disagree.
use ferrograd_autodiff::prelude::*;
use ferrograd_cpu::Cpu;

fn main() {
    let dev = Cpu::default();
    let a: Tensor<Rank2<2, 3>, f32, Cpu> = dev.ones();
    let b: Tensor<Rank2<4, 5>, f32, Cpu> = dev.ones();
    let _ = a.matmul(b);
}
