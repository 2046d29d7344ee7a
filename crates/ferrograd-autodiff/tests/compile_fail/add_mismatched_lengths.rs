// Element-wise ops take two tensors of one shape: a length-3 vector plus a length-4
// vector is a type error.
use ferrograd_autodiff::prelude::*;
use ferrograd_cpu::Cpu;

fn main() {
    let dev = Cpu::default();
    let a: Tensor<Rank1<3>, f32, Cpu> = dev.zeros();
    let b: Tensor<Rank1<4>, f32, Cpu> = dev.zeros();
    let _ = a.add(b);
}
