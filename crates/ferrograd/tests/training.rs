//! Layers, losses and optimizers together, as a user writes a training loop.

use ferrograd::prelude::*;
use ferrograd_testing::{TestDevice, seeded_test_device};

type Mlp = (Linear<4, 16>, ReLU, Linear<16, 3>);

/// Three classes, each a cluster around its own centre.
fn clusters(
    dev: &TestDevice,
) -> (
    Tensor<Rank2<60, 4>, f32, TestDevice>,
    Tensor<Rank1<60>, usize, TestDevice>,
) {
    let centres = [[2.0f32, 0.0, 0.0, 1.0], [0.0, 2.0, 1.0, 0.0], [-2.0, -2.0, 0.0, 0.0]];
    let noise: Tensor<Rank2<60, 4>, f32, TestDevice> = dev.sample_normal();
    let noise = noise.array();
    let x: [[f32; 4]; 60] = std::array::from_fn(|i| std::array::from_fn(|j| centres[i % 3][j] + 0.3 * noise[i][j]));
    (dev.tensor(x), dev.tensor(std::array::from_fn(|i| i % 3)))
}

fn loss_of(
    model: &Built<Mlp, f32, TestDevice>,
    x: &Tensor<Rank2<60, 4>, f32, TestDevice>,
    y: &Tensor<Rank1<60>, usize, TestDevice>,
) -> f32 {
    losses::cross_entropy(model.forward(x.clone()), y, Reduction::Mean, Default::default()).array()
}

#[test]
fn adam_and_cross_entropy_learn_separable_clusters() {
    let dev = seeded_test_device(0);
    let (x, y) = clusters(&dev);
    let mut model = dev.build_module::<Mlp, f32>();
    let mut optimizer = Adam::new(AdamConfig {
        lr: 0.01,
        ..Default::default()
    })
    .unwrap();
    let initial = loss_of(&model, &x, &y);
    for _ in 0..150 {
        let grads = model.try_alloc_grads().unwrap();
        let logits = model.forward_mut(x.clone().traced(grads));
        let loss = losses::cross_entropy(logits, &y, Reduction::Mean, Default::default());
        optimizer.step(&mut model, &loss.backward()).unwrap();
    }
    let last = loss_of(&model, &x, &y);
    // Separable clusters: the loss falls from about ln 3 to near zero.
    assert!(initial > 0.5 && last < 0.05 * initial, "loss {initial} -> {last}");
    let predicted = model.forward(x).argmax::<Rank1<60>, _>().array();
    assert!(predicted.iter().enumerate().all(|(i, &p)| p == i % 3));
}

#[test]
fn a_frozen_layer_keeps_its_weights_and_an_optimizer_names_it_unless_told_to_skip() {
    let dev = seeded_test_device(1);
    let (x, y) = clusters(&dev);
    let mut model = dev.build_module::<Mlp, f32>();
    let frozen_before = model.0.weight.as_vec();
    let trained_before = model.2.weight.as_vec();
    let step = |model: &mut Built<Mlp, f32, TestDevice>| {
        // Layer 0 is frozen: no gradients are allocated (or computed) for it.
        let grads = model.try_alloc_grads_where(|name| !name.starts_with("0.")).unwrap();
        let logits = model.forward_mut(x.clone().traced(grads));
        losses::cross_entropy(logits, &y, Reduction::Mean, Default::default()).backward()
    };

    let mut optimizer = Sgd::new(SgdConfig {
        lr: 0.1,
        ..Default::default()
    })
    .unwrap();
    let grads = step(&mut model);
    assert!(!grads.contains(&model.0.weight) && grads.contains(&model.2.weight));
    let error = optimizer.step(&mut model, &grads).unwrap_err().to_string();
    assert!(error.contains("0.weight"), "{error}");

    optimizer.set_skip_missing_gradients(true);
    optimizer.step(&mut model, &grads).unwrap();
    assert_eq!(model.0.weight.as_vec(), frozen_before);
    assert_ne!(model.2.weight.as_vec(), trained_before);
}

/// The LeNet-style network: two convolutions with ReLU and 2×2 max pools, then
/// a linear classifier (28 → 26 → 13 → 11 → 5: 16·5·5 = 400 features).
type LeNet = (
    Conv2D<1, 8, 3>,
    ReLU,
    MaxPool2D<2>,
    Conv2D<8, 16, 3>,
    ReLU,
    MaxPool2D<2>,
    Flatten,
    Linear<400, 10>,
);

/// A batch of one-channel 28×28 images.
type Digits = Tensor<(usize, Const<1>, Const<28>, Const<28>), f32, TestDevice>;

/// Images of ten classes: class `k` is a bright 3-pixel-thick bar, horizontal at row
/// `4 + 2k` for even `k` and vertical at column `4 + 2k` for odd `k`, in noise.
fn bars(dev: &TestDevice, count: usize) -> (Digits, Tensor<(usize,), usize, TestDevice>) {
    let noise: Digits = dev.sample_normal_like(&(count, Const, Const, Const));
    let mut pixels = noise.as_vec().iter().map(|v| 0.3 * v).collect::<Vec<_>>();
    let labels: Vec<usize> = (0..count).map(|i| (i * 7 + 3) % 10).collect();
    for (image, &label) in labels.iter().enumerate() {
        let at = 4 + 2 * label;
        for along in 0..28 {
            for across in at..at + 3 {
                let (row, column) = if label % 2 == 0 {
                    (across, along)
                } else {
                    (along, across)
                };
                pixels[image * 784 + row * 28 + column] += 1.0;
            }
        }
    }
    (
        dev.tensor_from_vec(pixels, (count, Const, Const, Const)),
        dev.tensor_from_vec(labels, (count,)),
    )
}

#[test]
fn a_lenet_trains_on_synthetic_images_with_sgd_and_momentum() {
    let dev = seeded_test_device(2);
    let mut model = dev.build_module::<LeNet, f32>();
    let (x, y) = bars(&dev, 64);
    let loss_of = |model: &Built<LeNet, f32, TestDevice>| {
        losses::cross_entropy(model.forward(x.clone()), &y, Reduction::Mean, Default::default()).array()
    };
    let mut optimizer = Sgd::new(SgdConfig {
        lr: 0.05,
        momentum: 0.9,
        ..Default::default()
    })
    .unwrap();
    let initial = loss_of(&model);
    for _ in 0..40 {
        let grads = model.try_alloc_grads().unwrap();
        let logits = model.forward_mut(x.clone().traced_input(grads));
        let loss = losses::cross_entropy(logits, &y, Reduction::Mean, Default::default());
        optimizer.step(&mut model, &loss.backward()).unwrap();
    }
    let last = loss_of(&model);
    // Ten classes: from about ln 10 ≈ 2.3 to a fraction of it.
    assert!(initial > 1.5 && last < 0.3 * initial, "loss {initial} -> {last}");
    let predicted = model.forward(x).argmax::<(usize,), _>().as_vec();
    let correct = predicted.iter().zip(y.as_vec()).filter(|(p, l)| **p == *l).count();
    assert!(correct >= 56, "{correct}/64 right after training");
}
