// `backward` needs a scalar loss; a traced vector must be reduced first.
use ferrograd_autodiff::prelude::*;
use ferrograd_cpu::Cpu;

fn main() {
    let dev = Cpu::default();
    let x: Tensor<Rank1<3>, f32, Cpu> = dev.ones();
    let y = x.leaky_trace().exp();
    let _ = y.backward();
}
