// `max_with_indices` is `torch.max(x, dim)`: one axis, not a set of them.
use ferrograd_autodiff::prelude::*;
use ferrograd_cpu::Cpu;

fn main() {
    let dev = Cpu::default();
    let x: Tensor<Rank3<2, 3, 4>, f32, Cpu> = dev.ones();
    let _ = x.max_with_indices::<_, Axes2<0, 2>>();
}
