//! Pooling: gradients against finite differences in f64 (average, adaptive, and max
//! at points without ties) across kernels, strides, padding, dilation and rounding;
//! views and broadcasts; the threaded plane split against one thread; the errors.

mod common;

use common::{assert_close, check_gradient, weighted_sum, weights};
use ferrograd_autodiff::prelude::*;
use ferrograd_autodiff::{Pool1dOptions, Pool2dOptions};
use ferrograd_testing::{TestDevice, test_device};

type Dims4 = (usize, usize, usize, usize);

fn tensor(dims: [usize; 4], seed: u64) -> Tensor<Dims4, f64, TestDevice> {
    let shape = (dims[0], dims[1], dims[2], dims[3]);
    test_device().tensor_from_vec(weights(dims.iter().product(), seed), shape)
}

/// The option sets every 2-d check runs, with the kernel: plain, strided, padded,
/// rectangular, ceil mode adding a window (7 → 4 of kernel 2) and ceil mode whose
/// extra window PyTorch's rule drops (5 with pad 1 → 3).
fn option_sets() -> Vec<([usize; 2], Pool2dOptions)> {
    let o = Pool2dOptions::default;
    vec![
        ([2, 2], o()),
        ([3, 3], o().stride(2)),
        ([3, 3], o().stride(1).padding(1)),
        ([3, 2], o().stride((2, 1)).padding((1, 0))),
        ([2, 2], o().ceil_mode(true)),
        ([2, 2], o().stride(2).padding(1).ceil_mode(true)),
        ([3, 3], o().stride(2).padding(1).ceil_mode(true)),
    ]
}

#[test]
fn avg_pool2d_gradients_match_finite_differences() {
    for dims in [[2, 2, 7, 7], [1, 3, 5, 6]] {
        let x = tensor(dims, 1);
        for (kernel, options) in option_sets() {
            for include in [true, false] {
                let options = options.count_include_pad(include);
                check_gradient(&x, |x| weighted_sum(x.avg_pool2d(kernel, options)));
            }
        }
    }
}

/// Random weights in ±[0.5, 1.5) differ by far more than the finite-difference step
/// in every window here, so each window's maximum stays put while it is perturbed.
#[test]
fn max_pool2d_gradients_match_finite_differences() {
    let x = tensor([2, 2, 7, 7], 2);
    let mut sets = option_sets();
    sets.push(([3, 3], Pool2dOptions::default().stride(1).dilation(2)));
    sets.push((
        [3, 2],
        Pool2dOptions::default()
            .stride((2, 1))
            .padding(1)
            .dilation((2, 3))
            .ceil_mode(true),
    ));
    for (kernel, options) in sets {
        check_gradient(&x, |x| weighted_sum(x.max_pool2d(kernel, options)));
    }
}

#[test]
fn adaptive_avg_pool2d_gradients_match_finite_differences() {
    let x = tensor([2, 2, 7, 5], 3);
    for size in [[7, 5], [3, 2], [1, 1], [9, 8], [4, 5]] {
        check_gradient(&x, |x| weighted_sum(x.adaptive_avg_pool2d(size)));
    }
}

#[test]
fn global_pools_match_finite_differences_and_their_definitions() {
    let x = tensor([2, 3, 4, 5], 4);
    check_gradient(&x, |x| weighted_sum(x.global_avg_pool2d()));
    check_gradient(&x, |x| weighted_sum(x.global_max_pool2d()));
    // The mean and the maximum of each plane, by hand.
    let values = x.as_vec();
    let planes: Vec<&[f64]> = values.chunks(20).collect();
    let means: Vec<f64> = planes.iter().map(|p| p.iter().sum::<f64>() / 20.0).collect();
    let maxima: Vec<f64> = planes
        .iter()
        .map(|p| p.iter().cloned().fold(f64::MIN, f64::max))
        .collect();
    assert_close(
        &x.clone().global_avg_pool2d().as_vec(),
        &means,
        1e-15,
        0.0,
        "global average",
    );
    assert_close(&x.global_max_pool2d().as_vec(), &maxima, 0.0, 0.0, "global max");
}

#[test]
fn pool1d_gradients_match_finite_differences() {
    let dev = test_device();
    let x = dev.tensor_from_vec(weights(2 * 3 * 11, 5), (2usize, 3usize, 11usize));
    let o = Pool1dOptions::default;
    for (kernel, options) in [
        (2, o()),
        (3, o().stride(2).padding(1)),
        (3, o().stride(2).padding(1).count_include_pad(false)),
        (3, o().stride(2).ceil_mode(true)),
    ] {
        check_gradient(&x, |x| weighted_sum(x.avg_pool1d(kernel, options)));
        check_gradient(&x, |x| weighted_sum(x.max_pool1d(kernel, options)));
    }
    check_gradient(&x, |x| {
        weighted_sum(x.max_pool1d(3, o().stride(1).dilation(2).padding(1)))
    });
}

/// A permuted input reads through its strides; a broadcast one (planes sharing
/// elements) sums its planes' gradients into the shared elements.
#[test]
fn views_and_broadcasts_receive_gradients_through_their_strides() {
    let dev = test_device();
    let nhwc: Tensor<Rank4<2, 5, 6, 3>, f64, _> = dev.tensor_from_vec(weights(180, 6), Default::default());
    let options = Pool2dOptions::default().stride(2).padding(1);
    check_gradient(&nhwc, |x| {
        weighted_sum(x.permute::<Axes4<0, 3, 1, 2>>().max_pool2d(3, options))
    });
    check_gradient(&nhwc, |x| {
        weighted_sum(x.permute::<Axes4<0, 3, 1, 2>>().avg_pool2d(3, options))
    });
    check_gradient(&nhwc, |x| {
        weighted_sum(x.permute::<Axes4<0, 3, 1, 2>>().adaptive_avg_pool2d((4, 3)))
    });
    let image: Tensor<Rank3<2, 6, 5>, f64, _> = dev.tensor_from_vec(weights(60, 7), Default::default());
    check_gradient(&image, |x| {
        weighted_sum(
            x.broadcast::<Rank4<3, 2, 6, 5>, _>()
                .avg_pool2d(2, Pool2dOptions::default()),
        )
    });
    check_gradient(&image, |x| {
        weighted_sum(
            x.broadcast::<Rank4<3, 2, 6, 5>, _>()
                .max_pool2d(2, Pool2dOptions::default().stride(1)),
        )
    });
}

/// Const batch and channel dims keep their types; unbatched inputs pool as a batch of
/// one; ties send the gradient to the first maximum of each window.
#[test]
fn shapes_unbatched_inputs_and_ties() {
    let dev = test_device();
    let x: Tensor<Rank4<2, 3, 8, 8>, f32, _> = dev.sample_normal();
    let y: Tensor<(Const<2>, Const<3>, usize, usize), f32, _> = x.clone().max_pool2d(2, Pool2dOptions::default());
    let _: Tensor<Rank4<2, 3, 4, 4>, f32, _> = y.realize();
    let g: Tensor<Rank2<2, 3>, f32, _> = x.global_avg_pool2d();
    assert_eq!(g.dims(), [2, 3]);

    // Every pixel of the window is 1: the first one (row-major) gets the gradient.
    let ones: Tensor<Rank3<1, 2, 4>, f64, _> = dev.ones();
    let grads = ones
        .leaky_trace()
        .max_pool2d(2, Pool2dOptions::default())
        .sum::<Rank0, _>()
        .backward();
    assert_eq!(grads.get(&ones).array(), [[[1.0, 0.0, 1.0, 0.0], [0.0, 0.0, 0.0, 0.0]]]);

    let single: Tensor<Rank3<2, 5, 5>, f64, _> = dev.tensor_from_vec(weights(50, 8), Default::default());
    let batched = dev.tensor_from_vec(single.as_vec(), (1usize, 2usize, 5usize, 5usize));
    let options = Pool2dOptions::default().stride(2).padding(1).ceil_mode(true);
    assert_eq!(
        single.clone().avg_pool2d(3, options).as_vec(),
        batched.avg_pool2d(3, options).as_vec()
    );
}

/// A pooling large enough to split its planes across threads gives, on two threads,
/// exactly what one thread gives, forward and backward.
#[test]
fn a_split_across_threads_matches_one_thread() {
    // 64 · 6 · 28 · 28 ≈ 300k input elements: above the split threshold (LeNet's).
    let x = tensor([64, 6, 28, 28], 9);
    let run = |threads| {
        ferrograd_cpu::set_num_threads(threads);
        let mut results = Vec::new();
        for (kernel, options) in [
            ([2, 2], Pool2dOptions::default()),
            ([3, 3], Pool2dOptions::default().stride(2).padding(1)),
        ] {
            let y = x.leaky_trace().max_pool2d(kernel, options);
            results.push(y.as_vec());
            results.push(weighted_sum(y).backward().get(&x).as_vec());
            let y = x.leaky_trace().avg_pool2d(kernel, options);
            results.push(y.as_vec());
            results.push(weighted_sum(y).backward().get(&x).as_vec());
        }
        results
    };
    let one = run(1);
    let two = run(2);
    for (a, b) in one.iter().zip(&two) {
        assert_close(a, b, 0.0, 0.0, "two threads vs one");
    }
}

#[test]
fn errors_name_the_sizes() {
    let x = || tensor([1, 3, 4, 4], 1);
    let o = Pool2dOptions::default;
    assert_eq!(
        x().try_max_pool2d(3, o().padding(2)).unwrap_err().to_string(),
        "max_pool2d: the padding (2, 2) must be at most half the kernel (3, 3)"
    );
    assert_eq!(
        x().try_max_pool2d(5, o()).unwrap_err().to_string(),
        "max_pool2d: the input (1, 3, 4, 4) is too small for the kernel (5, 5) with padding (0, 0) and dilation (1, 1): the output would have size (0, 0)"
    );
    assert_eq!(
        x().try_max_pool2d(3, o().dilation(2)).unwrap_err().to_string(),
        "max_pool2d: the input (1, 3, 4, 4) is too small for the kernel (3, 3) with padding (0, 0) and dilation (2, 2): the output would have size (0, 0)"
    );
    assert_eq!(
        x().try_avg_pool2d(2, o().stride((0, 1))).unwrap_err().to_string(),
        "avg_pool2d: the stride must be at least 1, got (0, 1)"
    );
    assert_eq!(
        x().try_avg_pool2d(2, o().dilation(2)).unwrap_err().to_string(),
        "avg_pool2d: an average pooling has no dilation (as in PyTorch), got (2, 2)"
    );
    assert_eq!(
        x().try_max_pool2d((0, 2), o()).unwrap_err().to_string(),
        "max_pool2d: the kernel must be at least 1, got (0, 2)"
    );
    let seq = test_device().tensor_from_vec(weights(12, 2), (3usize, 4usize));
    assert_eq!(
        seq.clone()
            .try_avg_pool1d(3, Pool1dOptions::default().padding(2))
            .unwrap_err()
            .to_string(),
        "avg_pool1d: the padding 2 must be at most half the kernel 3"
    );
    assert_eq!(
        seq.try_max_pool1d(5, Pool1dOptions::default()).unwrap_err().to_string(),
        "max_pool1d: the input (1, 3, 4) is too small for the kernel 5 with padding 0 and dilation 1: the output would have size 0"
    );
    let empty = tensor([1, 3, 0, 4], 1);
    assert_eq!(
        empty.clone().try_adaptive_avg_pool2d(2).unwrap_err().to_string(),
        "adaptive_avg_pool2d: the input (1, 3, 0, 4) has no pixels to pool: its height and width must be at least 1"
    );
    assert_eq!(
        empty.try_global_max_pool2d().unwrap_err().to_string(),
        "global_max_pool2d: the input (1, 3, 0, 4) has no pixels to pool: its height and width must be at least 1"
    );
    // The panicking twin panics with the same text.
    let panic = std::panic::catch_unwind(|| x().max_pool2d(3, o().padding(2))).unwrap_err();
    assert_eq!(
        panic.downcast_ref::<String>().map(String::as_str),
        Some("max_pool2d: the padding (2, 2) must be at most half the kernel (3, 3)")
    );
}
