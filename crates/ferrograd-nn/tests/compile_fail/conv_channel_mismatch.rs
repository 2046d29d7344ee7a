// A convolution taking 4 channels after one giving 8: the first error line names the
// layer and the input it cannot take (its channel dim is `Const<8>`).
use ferrograd_cpu::Cpu;
use ferrograd_nn::prelude::*;

fn main() {
    let dev = Cpu::default();
    let model = dev.build_module::<(Conv2D<1, 8, 3>, ReLU, Conv2D<4, 16, 3>), f32>();
    let x: Tensor<Rank4<2, 1, 28, 28>, f32, Cpu> = dev.zeros();
    let _ = model.forward(x);
}
