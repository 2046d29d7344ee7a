//! The losses' own tests: gradients against finite differences in f64, stability at
//! logits of ±1e4 (against values derived here), the errors' text, and the typed API
//! in a training step. PyTorch parity is `losses_parity.rs`.

use ferrograd_autodiff::prelude::*;
use ferrograd_nn::losses::*;
use ferrograd_testing::{TestDevice, seeded_test_device, test_device};

type Traced = OwnedTape<f64, TestDevice>;

/// Checks the gradient of `loss` at `x` against central differences, element by
/// element: `(loss(x + h·e_i) − loss(x − h·e_i)) / 2h`.
fn check_gradient<S: ConstShape>(
    x: &Tensor<S, f64, TestDevice>,
    loss: impl Fn(Tensor<S, f64, TestDevice, Traced>) -> Tensor<Rank0, f64, TestDevice, Traced>,
) {
    let dev = x.device().clone();
    let analytic = loss(x.leaky_trace()).backward().get(x).as_vec();
    let values = x.as_vec();
    let at = |values: Vec<f64>| loss(dev.tensor_from_vec(values, *x.shape()).leaky_trace()).array();
    let h = 1e-6;
    for i in 0..values.len() {
        let (mut plus, mut minus) = (values.clone(), values.clone());
        plus[i] += h;
        minus[i] -= h;
        let numeric = (at(plus) - at(minus)) / (2.0 * h);
        assert!(
            (numeric - analytic[i]).abs() <= 1e-6 * (1.0 + numeric.abs()),
            "element {i}: analytic {}, finite differences {numeric}",
            analytic[i]
        );
    }
}

/// Values in (0, 1) summing to 1 along the last axis.
fn probabilities<const B: usize, const C: usize>(dev: &TestDevice) -> Tensor<Rank2<B, C>, f64, TestDevice> {
    dev.sample_normal::<Rank2<B, C>>().softmax::<Axis<1>>()
}

#[test]
fn regression_gradients_match_finite_differences() {
    let dev = seeded_test_device(1);
    let x: Tensor<Rank2<3, 4>, f64, _> = dev.sample_normal::<Rank2<3, 4>>() * 2.0;
    let y: Tensor<Rank2<3, 4>, f64, _> = dev.sample_normal();
    check_gradient(&x, |x| mse_loss(x, y.clone(), Reduction::Mean));
    check_gradient(&y, |y| mse_loss(x.clone(), y, Reduction::Sum));
    check_gradient(&x, |x| l1_loss(x, y.clone(), Reduction::Mean));
    check_gradient(&x, |x| huber_loss(x, y.clone(), 0.7, Reduction::Mean));
    check_gradient(&y, |y| huber_loss(x.clone(), y, 0.7, Reduction::Sum));
    check_gradient(&x, |x| smooth_l1_loss(x, y.clone(), 1.3, Reduction::Mean));
    // Unreduced, weighted by an upstream gradient.
    let upstream: Tensor<Rank2<3, 4>, f64, _> = dev.sample_normal();
    check_gradient(&x, |x| {
        (huber_loss_unreduced(x, y.clone(), 0.7) * upstream.clone()).sum()
    });
}

#[test]
fn cross_entropy_gradients_match_finite_differences() {
    let dev = seeded_test_device(2);
    let logits: Tensor<Rank3<2, 4, 3>, f64, _> = dev.sample_normal::<Rank3<2, 4, 3>>() * 2.0;
    let labels = dev.tensor([[0usize, 3, 9], [2, 9, 1]]); // 9: ignored
    let options = || CrossEntropyOptions {
        weight: Some(dev.tensor([0.5, 2.0, 1.0, 1.5])),
        ignore_index: Some(9),
        label_smoothing: 0.2,
    };
    check_gradient(&logits, |x| cross_entropy(x, &labels, Reduction::Mean, options()));
    check_gradient(&logits, |x| cross_entropy(x, &labels, Reduction::Sum, options()));
    let upstream: Tensor<Rank2<2, 3>, f64, _> = dev.sample_normal();
    check_gradient(&logits, |x| {
        (cross_entropy_unreduced(x, &labels, options()) * upstream.clone()).sum()
    });

    let log_p = logits.clone().log_softmax::<Axis<1>>();
    let nll_options = || NllLossOptions {
        weight: Some(dev.tensor([0.5, 2.0, 1.0, 1.5])),
        ignore_index: Some(9),
    };
    check_gradient(&log_p, |x| nll_loss(x, &labels, Reduction::Mean, nll_options()));
}

#[test]
fn soft_target_gradients_match_finite_differences() {
    let dev = seeded_test_device(3);
    let logits: Tensor<Rank2<3, 5>, f64, _> = dev.sample_normal();
    let target = probabilities::<3, 5>(&dev);
    let options = || ProbabilityCrossEntropyOptions {
        weight: Some(dev.tensor([1.0, 0.5, 2.0, 1.5, 0.25])),
        label_smoothing: 0.1,
    };
    check_gradient(&logits, |x| {
        cross_entropy_with_probabilities(x, target.clone(), Reduction::Mean, options())
    });
    check_gradient(&target, |t| {
        cross_entropy_with_probabilities(logits.clone(), t, Reduction::Sum, options())
    });

    let log_p = logits.clone().log_softmax::<Axis<1>>();
    for reduction in [KlDivReduction::Mean, KlDivReduction::Sum, KlDivReduction::BatchMean] {
        check_gradient(&log_p, |x| kl_div(x, target.clone(), reduction, false));
        check_gradient(&target, |t| kl_div(log_p.clone(), t, reduction, false));
    }
    let log_target = target.clone().ln();
    check_gradient(&log_target, |t| {
        kl_div(log_p.clone(), t, KlDivReduction::BatchMean, true)
    });
}

#[test]
fn binary_cross_entropy_gradients_match_finite_differences() {
    let dev = seeded_test_device(4);
    let logits: Tensor<Rank2<3, 4>, f64, _> = dev.sample_normal::<Rank2<3, 4>>() * 3.0;
    let target: Tensor<Rank2<3, 4>, f64, _> = dev.sample_uniform();
    // Sampled once: each evaluation of the loss must see the same weights.
    let weight = dev.sample_uniform::<Rank2<3, 4>>() + 0.5;
    let options = || BinaryCrossEntropyOptions {
        weight: Some(weight.clone()),
        pos_weight: Some(dev.tensor([0.5, 1.0, 2.0, 4.0])),
    };
    check_gradient(&logits, |x| {
        binary_cross_entropy_with_logits(x, target.clone(), Reduction::Mean, options())
    });
    check_gradient(&target, |t| {
        binary_cross_entropy_with_logits(logits.clone(), t, Reduction::Sum, options())
    });
}

#[test]
fn extreme_logits_give_finite_exact_losses_and_gradients() {
    let dev = test_device();
    // Softmax of (1e4, −1e4, 0) is exactly (1, 0, 0) in f32, so with label 1 the loss
    // is 1e4 − (−1e4) = 2e4 and the gradient softmax − one_hot = (1, −1, 0); with label
    // 0 both are 0. The mean halves each.
    let logits: Tensor<Rank2<2, 3>, f32, _> = dev.tensor([[1e4, -1e4, 0.0], [1e4, -1e4, 0.0]]);
    let labels = dev.tensor([1usize, 0]);
    let loss = cross_entropy(
        logits.leaky_trace(),
        &labels,
        Reduction::Mean,
        CrossEntropyOptions::default(),
    );
    assert_eq!(loss.array(), 1e4);
    let grad = loss.backward().get(&logits).array();
    assert_eq!(grad, [[0.5, -0.5, 0.0], [0.0, 0.0, 0.0]]);

    // Binary: at x = 1e4 with y = 0 the loss is x and the gradient σ(x) − y = 1; at
    // x = −1e4 with y = 1 the loss is −x and the gradient −1; where the sign agrees
    // with the target, both are 0.
    let x: Tensor<Rank1<4>, f32, _> = dev.tensor([1e4, -1e4, 1e4, -1e4]);
    let y = dev.tensor([0.0f32, 1.0, 1.0, 0.0]);
    let loss =
        binary_cross_entropy_with_logits(x.leaky_trace(), y, Reduction::Sum, BinaryCrossEntropyOptions::default());
    assert_eq!(loss.array(), 2e4);
    assert_eq!(loss.backward().get(&x).array(), [1.0, -1.0, 0.0, 0.0]);
}

#[test]
fn unreduced_losses_add_up_to_the_reduced_ones() {
    let dev = seeded_test_device(5);
    let logits: Tensor<Rank2<4, 3>, f64, _> = dev.sample_normal();
    let labels = dev.tensor([2usize, 0, 1, 1]);
    let options = || CrossEntropyOptions {
        weight: Some(dev.tensor([1.0, 2.0, 3.0])),
        ignore_index: Some(0),
        label_smoothing: 0.0,
    };
    let per_sample = cross_entropy_unreduced(logits.clone(), &labels, options()).array();
    assert_eq!(per_sample[1], 0.0, "an ignored target adds nothing");
    let sum = cross_entropy(logits.clone(), &labels, Reduction::Sum, options()).array();
    assert!((per_sample.iter().sum::<f64>() - sum).abs() < 1e-12);
    // The mean divides by the weights of the counted targets: 3 + 2 + 2.
    let mean = cross_entropy(logits, &labels, Reduction::Mean, options()).array();
    assert!((mean - sum / 7.0).abs() < 1e-12);
}

#[test]
fn a_training_step_reaches_the_weights() {
    // The README's idiom: the weights are untraced, the input traced with gradients
    // allocated for the weights; the loss's gradient must reach them.
    let dev = seeded_test_device(6);
    let x: Tensor<Rank2<4, 3>, f64, _> = dev.sample_normal();
    let w: Tensor<Rank2<3, 5>, f64, _> = dev.sample_normal();
    let labels = dev.tensor([4usize, 0, 2, 2]);
    let logits = x.clone().traced(w.alloc_grads()).matmul(w.clone());
    let grads = cross_entropy(logits, &labels, Reduction::Mean, CrossEntropyOptions::default()).backward();
    // d loss / d w = xᵀ·(softmax − one_hot) / 4, derived here from the logits.
    let p = x.clone().matmul(w.clone()).softmax::<Axis<1>>().array();
    let xs = x.array();
    let dw = grads.get(&w).array();
    for i in 0..3 {
        for j in 0..5 {
            let expected: f64 = (0..4)
                .map(|b| xs[b][i] * (p[b][j] - f64::from(u8::from(labels.array()[b] == j))) / 4.0)
                .sum();
            assert!((dw[i][j] - expected).abs() < 1e-12);
        }
    }
}

#[test]
fn losses_of_two_traced_operands_merge_their_tapes() {
    let dev = test_device();
    let a: Tensor<Rank1<2>, f64, _> = dev.tensor([1.0, 4.0]);
    let b: Tensor<Rank1<2>, f64, _> = dev.tensor([0.0, 1.0]);
    let grads = mse_loss(a.leaky_trace(), b.leaky_trace(), Reduction::Sum).backward();
    assert_eq!(grads.get(&a).array(), [2.0, 6.0]);
    assert_eq!(grads.get(&b).array(), [-2.0, -6.0]);
}

#[test]
fn errors_name_the_loss_and_both_shapes() {
    let dev = test_device();
    let x: Tensor<(usize, usize), f32, _> = dev.zeros_like(&(2, 3));
    let y: Tensor<(usize, usize), f32, _> = dev.zeros_like(&(3, 2));
    let e = try_mse_loss(x.clone(), y.clone(), Reduction::Mean).unwrap_err();
    assert_eq!(
        e.to_string(),
        "mse_loss: input (2, 3) and target (3, 2) must have the same shape"
    );
    let e = try_kl_div_unreduced(x.clone(), y, false).unwrap_err();
    assert_eq!(
        e.to_string(),
        "kl_div: input (2, 3) and target (3, 2) must have the same shape"
    );

    let labels: Tensor<(usize,), usize, _> = dev.tensor(vec![0usize, 1, 2]);
    let e = try_cross_entropy(x.clone(), &labels, Reduction::Mean, CrossEntropyOptions::default()).unwrap_err();
    assert_eq!(
        e.to_string(),
        "cross_entropy: input (2, 3) needs targets of shape (2,) (the input's without its class axis 1), got (3,)"
    );

    let labels: Tensor<(usize,), usize, _> = dev.tensor(vec![0usize, 5]);
    let e = try_nll_loss(x.clone(), &labels, Reduction::Sum, NllLossOptions::default()).unwrap_err();
    assert_eq!(e.to_string(), "nll_loss: target 5 is out of bounds for 3 classes");
    // The same index, ignored, is no error.
    let options = NllLossOptions {
        ignore_index: Some(5),
        ..Default::default()
    };
    assert!(try_nll_loss(x.clone(), &labels, Reduction::Sum, options).is_ok());

    let labels: Tensor<(usize,), usize, _> = dev.tensor(vec![0usize, 1]);
    let options = CrossEntropyOptions {
        weight: Some(dev.tensor(vec![1.0f32, 2.0])),
        ..Default::default()
    };
    let e = try_cross_entropy(x.clone(), &labels, Reduction::Mean, options).unwrap_err();
    assert_eq!(
        e.to_string(),
        "cross_entropy: weight (2,) and classes (3,) must have the same shape"
    );
    let options = CrossEntropyOptions {
        label_smoothing: 1.5,
        ..Default::default()
    };
    let e = try_cross_entropy(x.clone(), &labels, Reduction::Mean, options).unwrap_err();
    assert_eq!(
        e.to_string(),
        "cross_entropy: label_smoothing must be in [0, 1], got 1.5"
    );

    let options = BinaryCrossEntropyOptions {
        pos_weight: Some(dev.tensor(vec![1.0f32, 2.0])),
        ..Default::default()
    };
    let e = try_binary_cross_entropy_with_logits(x.clone(), x.clone(), Reduction::Mean, options).unwrap_err();
    assert_eq!(
        e.to_string(),
        "binary_cross_entropy_with_logits: pos_weight (2,) and the input's last axis (3,) must have the same shape"
    );

    let e = try_huber_loss(x.clone(), x.clone(), 0.0, Reduction::Mean).unwrap_err();
    assert_eq!(e.to_string(), "huber_loss: delta must be positive, got 0");
    let e = try_smooth_l1_loss_unreduced(x.clone(), x, -1.0).unwrap_err();
    assert_eq!(e.to_string(), "smooth_l1_loss: beta must not be negative, got -1");
}

#[test]
#[should_panic(expected = "cross_entropy: target 7 is out of bounds for 4 classes")]
fn the_panicking_twin_panics_with_the_errors_text() {
    let dev = test_device();
    let logits: Tensor<Rank2<2, 4>, f32, _> = dev.zeros();
    let _ = cross_entropy(
        logits,
        &dev.tensor([7usize, 0]),
        Reduction::Mean,
        CrossEntropyOptions::default(),
    );
}
