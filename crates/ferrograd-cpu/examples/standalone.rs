//! `ferrograd-cpu` on its own: kernels on host buffers, with no tensors and no autodiff.
//! A matrix product, a softmax and a convolution, each checked against the same
//! numbers computed by plain loops, and a bad layout answered with an error.
//!
//! ```sh
//! cargo run -p ferrograd-cpu --example standalone
//! ```
//!
//! Every kernel takes its buffers as views (a buffer and the layout it is read through)
//! and checks them before touching memory.

use ferrograd_cpu::Cpu;
use ferrograd_cpu::device::ops::conv::{Conv2dKernel, Conv2dSpec, Padding};
use ferrograd_cpu::device::ops::matmul::{MatmulKernel, MatrixLayout};
use ferrograd_cpu::device::ops::softmax::{SoftmaxKernel, SoftmaxKind};
use ferrograd_cpu::device::{Error, Input, InputView, Layout, Storage, View, ViewMut};

fn main() -> Result<(), Error> {
    let cpu = Cpu::default();

    // A (2 × 3) · (3 × 2) product. One matrix per operand: the batch layout has rank 0.
    let a = cpu.try_from_host(vec![1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0])?;
    let b = cpu.try_from_host(vec![7.0f32, 8.0, 9.0, 10.0, 11.0, 12.0])?;
    let mut c = cpu.try_alloc_zeros(4)?;
    let row_major = |columns: usize| MatrixLayout {
        batch: Layout::from_parts(&[], &[]),
        row_stride: columns,
        column_stride: 1,
    };
    cpu.gemm_batched(
        (2, 3, 2),
        View::new(&a, row_major(3)),
        View::new(&b, row_major(2)),
        0.0,
        ViewMut::new(&mut c, row_major(2)),
    )?;
    let (a_host, b_host) = (cpu.try_to_host(&a)?, cpu.try_to_host(&b)?);
    let by_loops: Vec<f32> = (0..4)
        .map(|i| (0..3).map(|k| a_host[(i / 2) * 3 + k] * b_host[k * 2 + i % 2]).sum())
        .collect();
    let product = cpu.try_to_host(&c)?;
    println!("matmul:  {product:?}");
    assert_eq!(product, by_loops);

    // Softmax along the last axis of a (2 × 3) matrix.
    let logits = vec![1.0f32, 2.0, 3.0, -1.0, 0.0, 1.0];
    let x = cpu.try_from_host(logits.clone())?;
    let rows = Layout::from_parts(&[2, 3], &[3, 1]);
    let y = cpu.forward(SoftmaxKind::Softmax, InputView::new(Input::Shared(&x), rows), &[1])?;
    let softmax = cpu.try_to_host(&y)?;
    println!("softmax: {softmax:?}");
    for (row, out) in logits.chunks(3).zip(softmax.chunks(3)) {
        let total: f32 = row.iter().map(|v| v.exp()).sum();
        for (v, p) in row.iter().zip(out) {
            assert!((v.exp() / total - p).abs() < 1e-6);
        }
    }

    // A 2 × 2 kernel of ones over a 4 × 4 image: each output is the sum of a window.
    let image: Vec<f32> = (0..16).map(|v| v as f32).collect();
    let spec = Conv2dSpec::new([1, 1, 4, 4], [1, 1, 2, 2], [1, 1], Padding::Valid, [1, 1], 1)?;
    let input = cpu.try_from_host(image.clone())?;
    let weight = cpu.try_from_host(vec![1.0f32; 4])?;
    let out = cpu.conv2d_forward(
        &spec,
        View::new(&input, Layout::from_parts(&[1, 1, 4, 4], &[16, 16, 4, 1])),
        View::new(&weight, Layout::from_parts(&[1, 1, 2, 2], &[4, 4, 2, 1])),
        None,
    )?;
    let sums = cpu.try_to_host(&out)?;
    println!("conv2d:  {sums:?}");
    let windows: Vec<f32> = (0..9)
        .map(|o| {
            let (row, column) = (o / 3, o % 3);
            [0, 1, 4, 5].iter().map(|d| image[row * 4 + column + d]).sum()
        })
        .collect();
    assert_eq!(sums, windows);

    // A layout that reaches past its buffer is an error naming the kernel and sizes.
    let mut c = cpu.try_alloc_zeros(4)?;
    let error = cpu
        .gemm_batched(
            (2, 4, 2),
            View::new(&a, row_major(4)),
            View::new(&b, row_major(2)),
            0.0,
            ViewMut::new(&mut c, row_major(2)),
        )
        .expect_err("a 2 × 4 matrix does not fit in 6 elements");
    println!("error:   {error}");
    Ok(())
}
