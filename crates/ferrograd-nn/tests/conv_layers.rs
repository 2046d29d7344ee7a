//! Convolution-network layers: initialisation, the untraced inference path of batch
//! norm against the traced one (which the PyTorch fixtures check), and the errors.

use ferrograd_nn::prelude::*;
use ferrograd_nn::{Conv2DConfig, GroupNormConfig};
use ferrograd_testing::{TestDevice, seeded_test_device, test_device};

#[test]
fn conv_init_is_uniform_within_one_over_root_fan_in() {
    // PyTorch: nn.Conv2d(8, 16, (3, 2), groups=2) draws weight and bias from
    // U(-1/sqrt(fan_in), 1/sqrt(fan_in)) with fan_in = 8 / 2 * 3 * 2 = 24.
    let dev = seeded_test_device(3);
    let layer = dev.build_module_with::<_, f64>(Conv2DConfig::new(Const::<8>, Const::<16>, (3, 2)).groups(2));
    assert_eq!(layer.weight.dims(), [16, 4, 3, 2]);
    let bound = 1.0 / 24f64.sqrt();
    let weight = layer.weight.as_vec();
    assert!(weight.iter().all(|w| w.abs() <= bound));
    // Spread over the range, not clustered: the largest magnitude is near the bound.
    assert!(weight.iter().any(|w| w.abs() > 0.9 * bound));
    let bias = layer.bias.as_ref().unwrap().as_vec();
    assert!(bias.iter().all(|b| b.abs() <= bound) && bias.iter().any(|b| b.abs() > 0.5 * bound));
}

#[test]
fn batch_norm_inference_is_the_same_traced_or_not() {
    let dev = seeded_test_device(4);
    let mut norm = dev.build_module::<BatchNorm2D<3>, f64>();
    // Running statistics and affine parameters away from their defaults.
    for _ in 0..3 {
        let batch: Tensor<Rank4<4, 3, 5, 2>, f64, TestDevice> = dev.sample_normal();
        norm.forward_mut(batch * 2.0 + 1.0);
    }
    let weight: Tensor<Rank1<3>, f64, TestDevice> = dev.sample_normal();
    let bias: Tensor<Rank1<3>, f64, TestDevice> = dev.sample_normal();
    *norm.weight.as_mut().unwrap() = weight;
    *norm.bias.as_mut().unwrap() = bias;

    let x: Tensor<Rank4<2, 3, 5, 2>, f64, TestDevice> = dev.sample_normal();
    let plain = norm.forward(x.clone()).as_vec();
    let traced = norm.forward(x.leaky_trace()).as_vec();
    for (p, t) in plain.iter().zip(&traced) {
        assert!((p - t).abs() < 1e-12, "{p} vs {t}");
    }
    // And by hand for one element: (x - mean) / sqrt(var + eps) * weight + bias.
    let (mean, var) = (norm.running_mean.array()[1], norm.running_var.array()[1]);
    let (w, b) = (
        norm.weight.as_ref().unwrap().array()[1],
        norm.bias.as_ref().unwrap().array()[1],
    );
    let element = x.array()[1][1][4][0];
    let expected = (element - mean) / (var + 1e-5).sqrt() * w + b;
    assert!((plain[10 + 3 * 10 + 8] - expected).abs() < 1e-12);
}

#[test]
fn bad_sizes_are_errors_that_name_them() {
    let dev = test_device();
    let error = dev
        .try_build_module_with::<_, f32>(Conv2DConfig::new(6usize, 4usize, 3).groups(4))
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "Conv2D: 4 groups must divide both the 6 input channels and the 4 output channels"
    );
    let error = dev
        .try_build_module_with::<_, f32>(GroupNormConfig::new(4, 6usize))
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "GroupNorm: the 6 channels must be divisible by the number of groups, 4"
    );
    // Run-time channels that disagree with the layer's.
    let layer = dev.build_module_with::<_, f32>(Conv2DConfig::new(3usize, 4usize, 3));
    let x = dev.zeros_like(&(1usize, 2usize, 5usize, 5usize));
    let error = layer.try_forward(x).unwrap_err();
    assert!(error.to_string().contains("has 2 channels"), "{error}");
    // A kernel larger than the input.
    let x: Tensor<Rank4<1, 3, 2, 2>, f32, TestDevice> = dev.zeros();
    let layer = dev.build_module::<Conv2D<3, 4, 3>, f32>();
    let error = layer.try_forward(x).unwrap_err();
    assert!(
        error.to_string().contains("larger than the padded input (2, 2)"),
        "{error}"
    );
    let norm = dev.build_module_with::<_, f32>(BatchNorm2DConfig::new(4usize));
    let error = norm
        .try_forward(dev.zeros_like(&(2usize, 3usize, 2usize, 2usize)))
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "BatchNorm: the input has 3 channels (axis 1); the layer has 4"
    );
}
