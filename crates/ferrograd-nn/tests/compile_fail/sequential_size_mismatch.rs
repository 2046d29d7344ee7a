// A layer of 64 inputs after one of 128 outputs: the first error line names the layer
// and the input it cannot take.
use ferrograd_cpu::Cpu;
use ferrograd_nn::prelude::*;

fn main() {
    let dev = Cpu::default();
    let model = dev.build_module::<(Linear<784, 128>, ReLU, Linear<64, 10>), f32>();
    let x: Tensor<Rank2<16, 784>, f32, Cpu> = dev.zeros();
    let _ = model.forward(x);
}
