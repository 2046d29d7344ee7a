//! conv2d: gradients of the input, the weight and the bias against finite differences
//! in f64 across strides, paddings, dilations and groups; views; const shapes; the
//! threaded batch split against image-by-image results; and the errors.

mod common;

use common::{GradCheck, assert_close, numerical_gradient, weighted_sum, weights};
use ferrograd_autodiff::prelude::*;
use ferrograd_autodiff::{Conv2dOptions, Padding};
use ferrograd_testing::{TestDevice, test_device};

type Dims4 = (usize, usize, usize, usize);
type Image = Tensor<Dims4, f64, TestDevice>;

fn tensor(dims: [usize; 4], seed: u64) -> Image {
    let shape = (dims[0], dims[1], dims[2], dims[3]);
    test_device().tensor_from_vec(weights(dims.iter().product(), seed), shape)
}

/// The weighted-sum loss of the convolution, untraced: what finite differences see.
fn loss_value(x: Image, w: Image, b: Option<Tensor<(usize,), f64, TestDevice>>, options: Conv2dOptions) -> f64 {
    weighted_sum(x.conv2d(w, b, options)).array()
}

/// Checks d loss / d input, weight and bias against five-point finite differences.
fn check(input: [usize; 4], weight: [usize; 4], options: Conv2dOptions, with_bias: bool) {
    let what = format!("input {input:?}, weight {weight:?}, {options:?}, bias {with_bias}");
    let x = tensor(input, 1);
    let w = tensor(weight, 2);
    let b = with_bias.then(|| test_device().tensor_from_vec(weights(weight[0], 3), (weight[0],)));

    // The input traced, the weight and bias untraced parameters whose gradients the
    // leaky tape keeps.
    let loss = weighted_sum(x.leaky_trace().conv2d(w.clone(), b.clone(), options));
    let grads = loss.backward();
    let opts = GradCheck::default();

    let numerical = numerical_gradient(&x, opts.step, |x| loss_value(x, w.clone(), b.clone(), options));
    assert_close(
        &grads.get(&x).as_vec(),
        &numerical,
        opts.rel,
        opts.abs,
        &format!("{what}: d input"),
    );
    let numerical = numerical_gradient(&w, opts.step, |w| loss_value(x.clone(), w, b.clone(), options));
    assert_close(
        &grads.get(&w).as_vec(),
        &numerical,
        opts.rel,
        opts.abs,
        &format!("{what}: d weight"),
    );
    if let Some(b) = &b {
        let numerical = numerical_gradient(b, opts.step, |b| loss_value(x.clone(), w.clone(), Some(b), options));
        assert_close(
            &grads.get(b).as_vec(),
            &numerical,
            opts.rel,
            opts.abs,
            &format!("{what}: d bias"),
        );
    }
}

#[test]
fn gradients_match_finite_differences() {
    let o = Conv2dOptions::default;
    check([2, 3, 5, 6], [4, 3, 3, 2], o(), true);
    check([1, 2, 7, 5], [3, 2, 3, 3], o().stride((2, 1)).padding((1, 2)), true);
    check([2, 2, 6, 6], [2, 2, 2, 3], o().stride(2).padding(1), false);
    // "same" with an even kernel pads one more at the bottom and right.
    check([1, 2, 5, 4], [3, 2, 4, 2], o().padding(Padding::Same), true);
    check(
        [1, 2, 7, 7],
        [2, 2, 3, 2],
        o().padding(Padding::Same).dilation(2),
        false,
    );
    check([2, 2, 7, 6], [2, 2, 2, 2], o().dilation((2, 1)).padding(1), true);
    check([2, 4, 5, 5], [6, 2, 3, 3], o().groups(2).padding(1), true);
    // Depthwise, and a channel multiplier of 2.
    check([1, 3, 5, 5], [3, 1, 3, 3], o().groups(3).stride(2), true);
    check([2, 2, 4, 5], [4, 1, 2, 2], o().groups(2), false);
    // 1×1: the GEMM reads the input in place.
    check([2, 3, 4, 3], [5, 3, 1, 1], o(), true);
    check([2, 4, 3, 3], [4, 2, 1, 1], o().groups(2), false);
    check(
        [1, 1, 4, 5],
        [2, 1, 2, 3],
        o().padding(Padding::Explicit {
            top: 0,
            bottom: 2,
            left: 1,
            right: 0,
        }),
        true,
    );
}

/// One image without a batch axis gives the batch-of-one result without it, and the
/// same gradients.
#[test]
fn one_image_without_a_batch_axis() {
    let dev = test_device();
    let x: Tensor<Rank3<2, 5, 4>, f64, _> = dev.tensor_from_vec(weights(40, 4), Default::default());
    let w: Tensor<Rank4<3, 2, 2, 2>, f64, _> = dev.tensor_from_vec(weights(24, 5), Default::default());
    let options = Conv2dOptions::default().padding(1);
    let single = x.leaky_trace().conv2d(w.clone(), None, options);
    assert_eq!(single.dims(), [3, 6, 5]);
    let values = single.as_vec();
    let grads = single.sum::<Rank0, _>().backward();
    let batched = x.clone().realize::<(usize, usize, usize)>();
    let batched = dev.tensor_from_vec(batched.as_vec(), (1usize, Const::<2>, Const::<5>, Const::<4>));
    let reference = batched.leaky_trace().conv2d(w.clone(), None, options);
    assert_close(&values, &reference.as_vec(), 0.0, 0.0, "forward");
    let reference_grads = reference.sum::<Rank0, _>().backward();
    assert_close(
        &grads.get(&x).as_vec(),
        &reference_grads.get(&batched).as_vec(),
        0.0,
        0.0,
        "d input",
    );
    assert_close(
        &grads.get(&w).as_vec(),
        &reference_grads.get(&w).as_vec(),
        1e-15,
        0.0,
        "d weight",
    );
}

/// A permuted (channels-last) input and a permuted weight reach the kernels as strides:
/// the results and the gradients of the underlying buffers are those of contiguous
/// copies.
#[test]
fn views_read_and_receive_gradients_through_their_strides() {
    let dev = test_device();
    let nhwc: Tensor<Rank4<2, 5, 6, 3>, f64, _> = dev.tensor_from_vec(weights(180, 6), Default::default());
    let w_hw: Tensor<Rank4<3, 2, 4, 3>, f64, _> = dev.tensor_from_vec(weights(72, 7), Default::default());
    for options in [
        Conv2dOptions::default().padding(1).stride((1, 2)),
        Conv2dOptions::default(),
    ] {
        // (N, H, W, C) → (N, C, H, W); the weight (O, KH, KW, C) → (O, C, KH, KW).
        let loss = |x: Tensor<Rank4<2, 3, 5, 6>, f64, TestDevice, _>, w| weighted_sum(x.conv2d(w, None, options));
        let w_kw = w_hw.clone().permute::<Axes4<0, 3, 1, 2>>();
        let traced = nhwc.leaky_trace().permute::<Axes4<0, 3, 1, 2>>();
        let w_traced = w_hw.leaky_trace().permute::<Axes4<0, 3, 1, 2>>();
        let view_loss = loss(traced, w_traced);
        let view_value = view_loss.array();
        let grads = view_loss.backward();

        let x_copy = nhwc.clone().permute::<Axes4<0, 3, 1, 2>>().contiguous();
        let w_copy = w_kw.contiguous();
        let copy_loss = loss(x_copy.leaky_trace(), w_copy.leaky_trace());
        assert!((copy_loss.array() - view_value).abs() < 1e-12, "{options:?}: forward");
        let copy_grads = copy_loss.backward();
        // The gradient of the copy, permuted back to the base's layout.
        let back =
            |g: Tensor<Rank4<2, 3, 5, 6>, f64, TestDevice>| g.permute::<Axes4<0, 2, 3, 1>>().contiguous().as_vec();
        assert_close(
            &grads.get(&nhwc).as_vec(),
            &back(copy_grads.get(&x_copy)),
            1e-12,
            1e-12,
            "d input",
        );
        let back_w =
            |g: Tensor<Rank4<3, 3, 2, 4>, f64, TestDevice>| g.permute::<Axes4<0, 2, 3, 1>>().contiguous().as_vec();
        assert_close(
            &grads.get(&w_hw).as_vec(),
            &back_w(copy_grads.get(&w_copy)),
            1e-12,
            1e-12,
            "d weight",
        );
    }
}

/// Const batch and channel dims keep their types; the spatial dims are run-time
/// sizes that `realize` checks. A grouped weight names its in-channel dim `usize`.
#[test]
fn const_shapes_keep_their_types() {
    let dev = test_device();
    let x: Tensor<Rank4<2, 4, 8, 8>, f32, _> = dev.sample_normal();
    let w: Tensor<Rank4<6, 4, 3, 3>, f32, _> = dev.sample_normal();
    let b: Tensor<Rank1<6>, f32, _> = dev.sample_normal();
    let y: Tensor<(Const<2>, Const<6>, usize, usize), f32, _> = x.clone().conv2d(w, Some(b), Conv2dOptions::default());
    let y: Tensor<Rank4<2, 6, 6, 6>, f32, _> = y.realize();
    assert_eq!(y.dims(), [2, 6, 6, 6]);
    assert!(y.clone().try_realize::<Rank4<2, 6, 5, 6>>().is_err());

    let depthwise: Tensor<(Const<4>, usize, Const<3>, Const<3>), f32, _> =
        dev.sample_normal_like(&(Const, 1, Const, Const));
    let z = x.conv2d(
        depthwise,
        None,
        Conv2dOptions::default().groups(4).padding(Padding::Same),
    );
    assert_eq!(z.dims(), [2, 4, 8, 8]);
}

/// With the batch split across threads, each image's result and input gradient are
/// what a batch of that image alone gives, and the weight and bias gradients their sum
/// (the gradient of a sum of per-image losses).
#[test]
fn a_batch_split_across_threads_matches_image_by_image() {
    let dev = test_device();
    // 2 · 8 images · 8 filters · 36 · 100 pixels ≈ 460k flops: above the split threshold.
    let (n, c, h, o) = (8, 4, 12, 8);
    let x = tensor([n, c, h, h], 8);
    let w = tensor([o, c, 3, 3], 9);
    let b = dev.tensor_from_vec(weights(o, 10), (o,));
    let options = Conv2dOptions::default().padding(1).stride((1, 1));
    for threads in [1, 2] {
        ferrograd_cpu::set_num_threads(threads);
        let y = x.leaky_trace().conv2d(w.clone(), Some(b.clone()), options);
        let values = y.as_vec();
        let grads = weighted_sum(y).backward();
        let all_weights = weights(values.len(), common::DEFAULT_WEIGHT_SEED);
        let per_output = values.len() / n;
        let (mut d_weight, mut d_bias) = (vec![0.0; o * c * 9], vec![0.0; o]);
        for image in 0..n {
            let one = dev.tensor_from_vec(
                x.as_vec()[image * c * h * h..(image + 1) * c * h * h].to_vec(),
                (1, c, h, h),
            );
            let y1 = one.leaky_trace().conv2d(w.clone(), Some(b.clone()), options);
            assert_close(
                &y1.as_vec(),
                &values[image * per_output..(image + 1) * per_output],
                1e-14,
                1e-14,
                "forward",
            );
            let upstream = all_weights[image * per_output..(image + 1) * per_output].to_vec();
            let upstream = dev.tensor_from_vec(upstream, (1, o, h, h));
            let g1 = (y1 * upstream).sum::<Rank0, _>().backward();
            let d_input = grads.get(&x).as_vec();
            assert_close(
                &g1.get(&one).as_vec(),
                &d_input[image * c * h * h..(image + 1) * c * h * h],
                1e-14,
                1e-14,
                "d input",
            );
            d_weight.iter_mut().zip(g1.get(&w).as_vec()).for_each(|(s, g)| *s += g);
            d_bias.iter_mut().zip(g1.get(&b).as_vec()).for_each(|(s, g)| *s += g);
        }
        assert_close(&grads.get(&w).as_vec(), &d_weight, 1e-12, 1e-12, "d weight");
        assert_close(&grads.get(&b).as_vec(), &d_bias, 1e-12, 1e-12, "d bias");
    }
}

#[test]
fn errors_name_the_sizes() {
    let dev = test_device();
    let err = |x: Image, w: Image, options: Conv2dOptions| x.try_conv2d(w, None, options).unwrap_err().to_string();
    assert_eq!(
        err(
            tensor([1, 2, 3, 3], 1),
            tensor([4, 2, 3, 4], 2),
            Conv2dOptions::default()
        ),
        "conv2d: the kernel (3, 4) (dilated: (3, 4)) is larger than the padded input (3, 3)"
    );
    assert_eq!(
        err(
            tensor([1, 2, 5, 5], 1),
            tensor([4, 2, 3, 3], 2),
            Conv2dOptions::default().dilation(3)
        ),
        "conv2d: the kernel (3, 3) (dilated: (7, 7)) is larger than the padded input (5, 5)"
    );
    assert_eq!(
        err(
            tensor([1, 4, 5, 5], 1),
            tensor([6, 2, 3, 3], 2),
            Conv2dOptions::default().groups(3)
        ),
        "conv2d: 3 groups do not divide the input's 4 channels and the output's 6"
    );
    assert_eq!(
        err(
            tensor([2, 3, 5, 5], 1),
            tensor([4, 2, 3, 3], 2),
            Conv2dOptions::default()
        ),
        "conv2d: the input (2, 3, 5, 5) has 3 channels, but the weight (4, 2, 3, 3) expects 2 per group × 1 groups = 2"
    );
    assert_eq!(
        err(
            tensor([1, 2, 5, 5], 1),
            tensor([4, 2, 3, 3], 2),
            Conv2dOptions::default().stride(2).padding(Padding::Same)
        ),
        "conv2d: padding \"same\" needs stride 1 (as in PyTorch), got stride [2, 2]"
    );
    let bias = dev.tensor_from_vec(vec![0.0; 3], (3usize,));
    let message = tensor([1, 2, 5, 5], 1)
        .try_conv2d(tensor([4, 2, 3, 3], 2), Some(bias), Conv2dOptions::default())
        .unwrap_err()
        .to_string();
    assert_eq!(message, "conv2d: the bias has shape (3,) where (4,) was expected");
    // The panicking twin panics with the same text.
    let panic = std::panic::catch_unwind(|| {
        tensor([1, 4, 5, 5], 1).conv2d(tensor([6, 2, 3, 3], 2), None, Conv2dOptions::default().groups(3))
    })
    .unwrap_err();
    assert_eq!(
        panic.downcast_ref::<String>().map(String::as_str),
        Some("conv2d: 3 groups do not divide the input's 4 channels and the output's 6")
    );
}
