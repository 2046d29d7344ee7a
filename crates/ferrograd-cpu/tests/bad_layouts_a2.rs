//! Each kernel family of matmul, copies, convolutions, poolings, upsampling and the
//! optimizers, fed a layout that reaches past its buffer, an output that repeats
//! elements, dims that disagree or a spec built by hand: an `Err` naming the kernel and
//! the sizes, never an index panic, and nothing written.

use ferrograd_cpu::{Cpu, CpuBuffer};
use ferrograd_device::ops::conv::{Conv2dKernel, Conv2dSpec, Padding};
use ferrograd_device::ops::conv_transpose::{ConvTranspose2dSpec, conv_transpose2d_forward};
use ferrograd_device::ops::copy::CopyKernel;
use ferrograd_device::ops::matmul::{MatmulKernel, MatrixLayout};
use ferrograd_device::ops::optimizer::{OptimizerKernel, SgdUpdate, SparseRows};
use ferrograd_device::ops::pool::{AdaptivePool2dSpec, Pool2dKernel, Pool2dParams, Pool2dSpec, PoolOp};
use ferrograd_device::ops::upsample::{Interpolation, Upsample2dKernel, Upsample2dSpec, UpsampleSize};
use ferrograd_device::{Error, Layout, Storage, View, ViewMut};

fn buffer(cpu: &Cpu, len: usize) -> CpuBuffer<f64> {
    cpu.try_from_host((0..len).map(|i| i as f64).collect()).unwrap()
}

fn host(cpu: &Cpu, buffer: &CpuBuffer<f64>) -> Vec<f64> {
    cpu.try_to_host(buffer).unwrap()
}

/// The row-major layout of `dims`.
fn contiguous(dims: &[usize]) -> Layout {
    let mut strides = vec![1; dims.len()];
    for axis in (0..dims.len().saturating_sub(1)).rev() {
        strides[axis] = strides[axis + 1] * dims[axis + 1];
    }
    Layout::from_parts(dims, &strides)
}

/// Asserts `result` is an error whose message is `expected`.
#[track_caller]
fn assert_error<T: std::fmt::Debug>(result: Result<T, Error>, expected: &str) {
    match result {
        Ok(value) => panic!("expected the error {expected:?}, got Ok({value:?})"),
        Err(error) => assert_eq!(error.to_string(), expected),
    }
}

/// A batch of `batch` row-major `rows × columns` matrices, each `batch_stride` after
/// the previous one.
fn matrices(batch: usize, batch_stride: usize, columns: usize) -> MatrixLayout {
    MatrixLayout {
        batch: Layout::from_parts(&[batch], &[batch_stride]),
        row_stride: columns,
        column_stride: 1,
    }
}

#[test]
fn matmul() {
    let cpu = Cpu::default();
    // (3, 2, 4)·(4, 5) into (3, 2, 5).
    let (lhs, rhs) = (buffer(&cpu, 24), buffer(&cpu, 20));
    let mut out = buffer(&cpu, 30);
    let dims = (2, 4, 5);
    let gemm = |lhs_layout, rhs_layout, out: &mut CpuBuffer<f64>, out_layout| {
        cpu.gemm_batched(
            dims,
            View::new(&lhs, lhs_layout),
            View::new(&rhs, rhs_layout),
            1.0,
            ViewMut::new(out, out_layout),
        )
    };
    assert!(gemm(matrices(3, 8, 4), matrices(3, 0, 5), &mut out, matrices(3, 10, 5)).is_ok());
    let before = host(&cpu, &out);

    // The last lhs matrix starts at 18 and ends at 18 + 7 = 25, past the buffer.
    assert_error(
        gemm(matrices(3, 9, 4), matrices(3, 0, 5), &mut out, matrices(3, 10, 5)),
        "matmul: lhs reaches element 25 of a buffer of 24 elements \
         (dims (3, 2, 4), strides (9, 4, 1), offset 0)",
    );
    assert_error(
        gemm(matrices(3, 8, 4), matrices(3, 1, 5), &mut out, matrices(3, 10, 5)),
        "matmul: rhs reaches element 21 of a buffer of 20 elements \
         (dims (3, 4, 5), strides (1, 5, 1), offset 0)",
    );
    // One out matrix for the whole batch: the products would race on a device.
    assert_error(
        gemm(matrices(3, 8, 4), matrices(3, 0, 5), &mut out, matrices(3, 0, 5)),
        "matmul: out is written through a layout that addresses some elements more than once \
         (dims (3, 2, 5), strides (0, 5, 1), offset 0); write into a contiguous buffer",
    );
    // Rows that overlap within one matrix.
    let overlapping_rows = MatrixLayout {
        row_stride: 2,
        ..matrices(3, 10, 5)
    };
    assert_error(
        gemm(matrices(3, 8, 4), matrices(3, 0, 5), &mut out, overlapping_rows),
        "matmul: out is written through a layout that addresses some elements more than once \
         (dims (3, 2, 5), strides (10, 2, 1), offset 0); write into a contiguous buffer",
    );
    let two = MatrixLayout {
        batch: Layout::from_parts(&[2], &[10]),
        ..matrices(3, 10, 5)
    };
    assert_error(
        gemm(matrices(3, 8, 4), matrices(3, 0, 5), &mut out, two),
        "matmul: lhs's batch has dims (3,) but out's batch has dims (2,); they must be equal",
    );
    assert_eq!(host(&cpu, &out), before, "a refused product wrote into out");
}

#[test]
fn copies() {
    let cpu = Cpu::default();
    let src = buffer(&cpu, 6);
    let mut dst = cpu.try_alloc_zeros(6).unwrap();
    let past = Layout::from_parts(&[2, 3], &[3, 1]).with_offset(1);
    assert_error(
        cpu.copy_strided(View::new(&src, past), ViewMut::new(&mut dst, contiguous(&[2, 3]))),
        "copy_strided: src reaches element 6 of a buffer of 6 elements (dims (2, 3), strides (3, 1), offset 1)",
    );
    assert_error(
        cpu.add_strided(View::new(&src, contiguous(&[2, 3])), ViewMut::new(&mut dst, past)),
        "add_strided: dst reaches element 6 of a buffer of 6 elements (dims (2, 3), strides (3, 1), offset 1)",
    );
    assert_error(
        cpu.copy_strided(
            View::new(&src, contiguous(&[2, 3])),
            ViewMut::new(&mut dst, contiguous(&[3, 2])),
        ),
        "copy_strided: src has dims (2, 3) but dst has dims (3, 2); they must be equal",
    );
    // A broadcast dst: which of the two writes to each element survives is undefined.
    let broadcast = Layout::from_parts(&[2, 3], &[0, 1]);
    assert_error(
        cpu.copy_strided(View::new(&src, contiguous(&[2, 3])), ViewMut::new(&mut dst, broadcast)),
        "copy_strided: dst is written through a layout that addresses some elements more than once \
         (dims (2, 3), strides (0, 1), offset 0); write into a contiguous buffer",
    );
    assert_eq!(host(&cpu, &dst), [0.0; 6], "a refused copy wrote into dst");
    // add_strided accumulates through the same broadcast: 0 + 3, 1 + 4, 2 + 5.
    cpu.add_strided(View::new(&src, contiguous(&[2, 3])), ViewMut::new(&mut dst, broadcast))
        .unwrap();
    assert_eq!(host(&cpu, &dst), [3.0, 5.0, 7.0, 0.0, 0.0, 0.0]);
}

#[test]
fn convolutions() {
    let cpu = Cpu::default();
    let spec = Conv2dSpec::new([2, 3, 5, 5], [4, 3, 3, 3], [1, 1], Padding::Valid, [1, 1], 1).unwrap();
    let (input, weight) = (buffer(&cpu, 150), buffer(&cpu, 108));
    let input_layout = contiguous(&spec.input_dims());
    let weight_layout = contiguous(&spec.weight_dims());
    assert!(
        cpu.conv2d_forward(
            &spec,
            View::new(&input, input_layout),
            View::new(&weight, weight_layout),
            None
        )
        .is_ok()
    );
    assert_error(
        cpu.conv2d_forward(
            &spec,
            View::new(&input, input_layout.with_offset(1)),
            View::new(&weight, weight_layout),
            None,
        ),
        "conv2d: input reaches element 150 of a buffer of 150 elements \
         (dims (2, 3, 5, 5), strides (75, 25, 5, 1), offset 1)",
    );
    assert_error(
        cpu.conv2d_forward(
            &spec,
            View::new(&input, input_layout),
            View::new(&weight, contiguous(&[4, 3, 3, 2])),
            None,
        ),
        "conv2d: the weight has shape (4, 3, 3, 2) where (4, 3, 3, 3) was expected",
    );
    // A spec changed by hand after `new`: its output no longer follows from its input.
    let tampered = Conv2dSpec { out_height: 4, ..spec };
    assert_error(
        cpu.conv2d_forward(
            &tampered,
            View::new(&input, input_layout),
            View::new(&weight, weight_layout),
            None,
        ),
        "conv2d: the spec's output (2, 4, 4, 3) and weight (4, 3, 3, 3) do not follow from its input \
         (2, 3, 5, 5), kernel, padding, stride, dilation and groups (which give (2, 4, 3, 3) and \
         (4, 3, 3, 3)); build it with Conv2dSpec::new",
    );

    let grad_output = buffer(&cpu, 2 * 4 * 3 * 3 - 1);
    let mut grad_input = cpu.try_alloc_zeros(150).unwrap();
    assert_error(
        cpu.conv2d_backward_input(
            &spec,
            View::new(&weight, weight_layout),
            &grad_output,
            ViewMut::new(&mut grad_input, input_layout),
        ),
        "conv2d: the output's gradient holds 71 elements, the output (2, 4, 3, 3) has 72",
    );
    let grad_output = buffer(&cpu, 72);
    let mut grad_weight = cpu.try_alloc_zeros(107).unwrap();
    assert_error(
        cpu.conv2d_backward_weight(
            &spec,
            View::new(&input, input_layout),
            &grad_output,
            ViewMut::new(&mut grad_weight, weight_layout),
        ),
        "conv2d: weight's gradient reaches element 107 of a buffer of 107 elements \
         (dims (4, 3, 3, 3), strides (27, 9, 3, 1), offset 0)",
    );
    let mut grad_bias = cpu.try_alloc_zeros(4).unwrap();
    assert_error(
        cpu.conv2d_backward_bias(
            &spec,
            &grad_output,
            ViewMut::new(&mut grad_bias, Layout::from_parts(&[4], &[2])),
        ),
        "conv2d: bias's gradient reaches element 6 of a buffer of 4 elements (dims (4,), strides (2,), offset 0)",
    );
    assert_eq!(host(&cpu, &grad_input), [0.0; 150]);
    assert_eq!(host(&cpu, &grad_weight), [0.0; 107]);
    assert_eq!(host(&cpu, &grad_bias), [0.0; 4]);

    // The transposed convolution, built on these kernels, checks its input too.
    let spec = ConvTranspose2dSpec::new([1, 3, 4, 4], [3, 2, 3, 3], [2, 2], [1, 1], [0, 0], [1, 1], 1).unwrap();
    let (input, weight) = (buffer(&cpu, 48), buffer(&cpu, 54));
    assert_error(
        conv_transpose2d_forward(
            &cpu,
            &spec,
            View::new(&input, Layout::from_parts(&[1, 3, 4, 4], &[48, 16, 4, 2])),
            View::new(&weight, contiguous(&[3, 2, 3, 3])),
            None,
        ),
        "conv_transpose2d: input reaches element 50 of a buffer of 48 elements \
         (dims (1, 3, 4, 4), strides (48, 16, 4, 2), offset 0)",
    );
}

#[test]
fn poolings() {
    let cpu = Cpu::default();
    let params = Pool2dParams {
        kernel: [2, 2],
        stride: [2, 2],
        padding: [0, 0],
        dilation: [1, 1],
        ceil_mode: false,
        count_include_pad: true,
    };
    let spec = Pool2dSpec::new(PoolOp::MaxPool2d, [1, 2, 4, 4], params).unwrap();
    let input = buffer(&cpu, 32);
    let layout = contiguous(&[1, 2, 4, 4]);
    assert!(cpu.max_pool2d_forward(&spec, View::new(&input, layout)).is_ok());
    assert_error(
        cpu.max_pool2d_forward(
            &spec,
            View::new(&input, Layout::from_parts(&[1, 2, 4, 4], &[32, 17, 4, 1])),
        ),
        "max_pool2d: input reaches element 32 of a buffer of 32 elements \
         (dims (1, 2, 4, 4), strides (32, 17, 4, 1), offset 0)",
    );
    let grad_output = buffer(&cpu, 8);
    let mut grad_input = cpu.try_alloc_zeros(31).unwrap();
    assert_error(
        cpu.max_pool2d_backward(
            &spec,
            View::new(&input, layout),
            &grad_output,
            ViewMut::new(&mut grad_input, layout),
        ),
        "max_pool2d: input's gradient reaches element 31 of a buffer of 31 elements \
         (dims (1, 2, 4, 4), strides (32, 16, 4, 1), offset 0)",
    );
    let avg = Pool2dSpec::new(PoolOp::AvgPool2d, [1, 2, 4, 4], params).unwrap();
    let mut grad_input = cpu.try_alloc_zeros(32).unwrap();
    assert_error(
        cpu.avg_pool2d_backward(&avg, &buffer(&cpu, 9), ViewMut::new(&mut grad_input, layout)),
        "avg_pool2d: the output's gradient holds 9 elements, the output (1, 2, 2, 2) has 8",
    );
    // A window past the input's edge, were the kernel to trust the spec's output size.
    let tampered = Pool2dSpec { out_height: 3, ..spec };
    assert_error(
        cpu.max_pool2d_forward(&tampered, View::new(&input, layout)),
        "max_pool2d: the spec's output (1, 2, 3, 2) does not follow from its input and options \
         (which give (1, 2, 2, 2)); build it with the spec's `new`",
    );
    let adaptive = AdaptivePool2dSpec::new([1, 2, 4, 4], [3, 3]).unwrap();
    assert_error(
        cpu.adaptive_avg_pool2d_forward(&adaptive, View::new(&input, contiguous(&[1, 2, 4, 5]))),
        "adaptive_avg_pool2d: the input has shape (1, 2, 4, 5) where (1, 2, 4, 4) was expected",
    );
    let empty = AdaptivePool2dSpec {
        in_width: 0,
        ..adaptive
    };
    assert_error(
        cpu.adaptive_avg_pool2d_forward(&empty, View::new(&input, contiguous(&[1, 2, 4, 0]))),
        "adaptive_avg_pool2d: the input (1, 2, 4, 0) has no pixels to pool: its height and width must be at least 1",
    );
    assert_eq!(host(&cpu, &grad_input), [0.0; 32]);
}

#[test]
fn upsampling() {
    let cpu = Cpu::default();
    let spec = Upsample2dSpec::new(
        [1, 2, 3, 3],
        UpsampleSize::Scale([2.0, 2.0]),
        Interpolation::Bilinear { align_corners: false },
    )
    .unwrap();
    let input = buffer(&cpu, 18);
    let layout = contiguous(&[1, 2, 3, 3]);
    assert!(cpu.upsample2d_forward(&spec, View::new(&input, layout)).is_ok());
    assert_error(
        cpu.upsample2d_forward(&spec, View::new(&input, layout.with_offset(2))),
        "upsample2d: input reaches element 19 of a buffer of 18 elements \
         (dims (1, 2, 3, 3), strides (18, 9, 3, 1), offset 2)",
    );
    let mut grad_input = cpu.try_alloc_zeros(18).unwrap();
    assert_error(
        cpu.upsample2d_backward(&spec, &buffer(&cpu, 71), ViewMut::new(&mut grad_input, layout)),
        "upsample2d: the output's gradient holds 71 elements, the output (1, 2, 6, 6) has 72",
    );
    // An input height the output's source rows were not computed for.
    let tampered = Upsample2dSpec { in_height: 2, ..spec };
    assert_error(
        cpu.upsample2d_forward(&tampered, View::new(&input, contiguous(&[1, 2, 2, 3]))),
        "upsample2d: the spec's output (1, 2, 6, 6) does not follow from its input (1, 2, 2, 3) and \
         scale factors Some([2.0, 2.0]) (which give (1, 2, 4, 6)); build it with Upsample2dSpec::new",
    );
    assert_eq!(host(&cpu, &grad_input), [0.0; 18]);
}

#[test]
fn optimizers() {
    let cpu = Cpu::default();
    let update = SgdUpdate {
        lr: 0.1,
        momentum: 0.0,
        one_minus_dampening: 1.0,
        weight_decay: 0.0,
        nesterov: false,
        maximize: false,
    };
    let mut param = buffer(&cpu, 6);
    assert_error(
        cpu.sgd_update(&update, &mut param, &buffer(&cpu, 5), None),
        "sgd: the parameter has 6 elements but its gradient has 5",
    );
    let values = buffer(&cpu, 4);
    let rows = SparseRows {
        indices: &[0, 3],
        values: &values,
        row_len: 2,
    };
    assert_error(
        cpu.sparse_sgd_update(0.1, false, &mut param, &rows),
        "sgd: gradient row 3 lies outside a parameter of 6 elements in rows of 2",
    );
    assert_eq!(host(&cpu, &param), [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]);
}
