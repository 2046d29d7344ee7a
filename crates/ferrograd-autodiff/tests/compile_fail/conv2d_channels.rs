// A 3-channel input with a weight made for 4 input channels: the weight's second dim
// must be the input's channel count.
use ferrograd_autodiff::prelude::*;
use ferrograd_autodiff::Conv2dOptions;
use ferrograd_cpu::Cpu;

fn main() {
    let dev = Cpu::default();
    let x: Tensor<Rank4<2, 3, 8, 8>, f32, Cpu> = dev.ones();
    let w: Tensor<Rank4<16, 4, 3, 3>, f32, Cpu> = dev.ones();
    let _ = x.conv2d(w, None, Conv2dOptions::default());
}
