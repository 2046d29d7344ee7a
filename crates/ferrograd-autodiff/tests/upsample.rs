//! upsample2d: input gradients against finite differences in f64 for each mode, size
//! and scale; one image against a batch of one; and the errors.

mod common;

use common::{GradCheck, assert_close, numerical_gradient, weighted_sum, weights};
use ferrograd_autodiff::prelude::*;
use ferrograd_autodiff::{Interpolation, UpsampleSize};
use ferrograd_testing::{TestDevice, test_device};

type Image = Tensor<(usize, usize, usize, usize), f64, TestDevice>;

fn tensor(dims: [usize; 4], seed: u64) -> Image {
    test_device().tensor_from_vec(
        weights(dims.iter().product(), seed),
        (dims[0], dims[1], dims[2], dims[3]),
    )
}

#[test]
fn gradients_match_finite_differences() {
    let opts = GradCheck::default();
    let bilinear = |align_corners| Interpolation::Bilinear { align_corners };
    for (dims, size, mode) in [
        ([2, 2, 3, 4], UpsampleSize::Scale([2.0, 2.0]), Interpolation::Nearest),
        ([1, 2, 4, 3], UpsampleSize::Size([7, 2]), Interpolation::Nearest),
        ([2, 1, 3, 4], UpsampleSize::Scale([2.0, 1.5]), bilinear(false)),
        ([1, 2, 5, 4], UpsampleSize::Size([3, 7]), bilinear(false)),
        ([1, 2, 3, 4], UpsampleSize::Size([5, 9]), bilinear(true)),
        ([2, 1, 4, 3], UpsampleSize::Size([1, 2]), bilinear(true)),
    ] {
        let x = tensor(dims, 1);
        let grads = weighted_sum(x.leaky_trace().upsample2d(size, mode)).backward();
        let numerical = numerical_gradient(&x, opts.step, |x| weighted_sum(x.upsample2d(size, mode)).array());
        assert_close(
            &grads.get(&x).as_vec(),
            &numerical,
            opts.rel,
            opts.abs,
            &format!("{size:?} {mode:?}"),
        );
    }
}

#[test]
fn one_image_and_errors() {
    let dev = test_device();
    let x: Tensor<Rank3<2, 3, 4>, f64, _> = dev.tensor_from_vec(weights(24, 2), Default::default());
    let mode = Interpolation::Bilinear { align_corners: false };
    let single: Tensor<(Const<2>, usize, usize), f64, _> = x.clone().upsample2d([5, 5], mode);
    let batched = tensor([1, 2, 3, 4], 2).upsample2d([5, 5], mode);
    assert_close(&single.as_vec(), &batched.as_vec(), 0.0, 0.0, "one image");

    let error = tensor([1, 2, 3, 3], 1)
        .try_upsample2d(0.3, Interpolation::Nearest)
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "upsample2d: input and output must have pixels: the input (1, 2, 3, 3) would give an output of (0, 0)"
    );
    let error = tensor([1, 2, 3, 3], 1)
        .try_upsample2d(f64::NAN, Interpolation::Nearest)
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "upsample2d: the scale factors must be finite and positive, got [NaN, NaN]"
    );
}
