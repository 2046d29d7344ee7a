//! Optimizers given row-sparse gradients (an `Embedding` built with `sparse(true)`):
//! the same updates as with the dense gradient where PyTorch's are the same (SGD,
//! Adagrad), only the touched rows changed, and clear errors where PyTorch raises.
//! SparseAdam's values are checked against PyTorch in `parity.rs`.

use ferrograd_autodiff::Gradients;
use ferrograd_device::Error;
use ferrograd_nn::EmbeddingConfig;
use ferrograd_nn::built::Embedding;
use ferrograd_nn::prelude::*;
use ferrograd_optim::{
    Adagrad, AdagradConfig, Adam, AdamConfig, AdamW, AdamWConfig, NormType, Optimizer, Rmsprop, RmspropConfig, Sgd,
    SgdConfig, SparseAdam, SparseAdamConfig, clip_grad_norm, clip_grad_value,
};
use ferrograd_testing::{TestDevice, seeded_test_device, test_device};

type Table = Embedding<Const<12>, Const<3>, f64, TestDevice>;

fn tables(seed: u64) -> (Table, Table) {
    let dev = seeded_test_device(seed);
    let sparse = dev.build_module_with::<_, f64>(EmbeddingConfig::<Const<12>, Const<3>>::default().sparse(true));
    let dense = Embedding {
        sparse: false,
        ..sparse.clone()
    };
    (sparse, dense)
}

/// Step `s`'s lookups: repeats within a step, rows shared and not shared across steps.
fn ids(step: usize) -> Tensor<Rank1<6>, usize, TestDevice> {
    let all = [[3, 1, 3, 7, 3, 0], [1, 1, 9, 2, 11, 2], [5, 3, 5, 5, 10, 4]];
    test_device().tensor(all[step % 3])
}

/// loss = Σ tanh(emb(ids)) · c: a gradient that differs per lookup and feature.
fn grads_of(table: &Table, step: usize) -> Gradients<f64, TestDevice> {
    let dev = test_device();
    let c: Tensor<Rank2<6, 3>, f64, TestDevice> = dev.tensor(std::array::from_fn(|k| {
        std::array::from_fn(|j| 1.0 + k as f64 * 0.5 - j as f64 * 0.3)
    }));
    let rows = table.forward(ids(step).traced_indices(table.try_alloc_grads().unwrap()));
    (rows.tanh() * c).sum::<Rank0, _>().backward()
}

fn assert_close(a: &[f64], b: &[f64], what: &str) {
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        assert!(
            (x - y).abs() <= 1e-12 * (1.0 + y.abs()),
            "{what}: element {i}: {x} vs {y}"
        );
    }
}

/// Runs `steps` steps on both tables, with the sparse and the dense gradient.
fn run_both<O: Optimizer<f64, TestDevice>>(make: impl Fn() -> O, steps: usize) -> (Table, Table) {
    let (mut sparse, mut dense) = tables(11);
    let (mut a, mut b) = (make(), make());
    for step in 0..steps {
        let g = grads_of(&sparse, step);
        assert!(g.is_sparse(&sparse.weight));
        a.step(&mut sparse, &g).unwrap();
        let g = grads_of(&dense, step);
        assert!(!g.is_sparse(&dense.weight));
        b.step(&mut dense, &g).unwrap();
    }
    (sparse, dense)
}

#[test]
fn sgd_without_momentum_matches_the_dense_update_and_moves_only_touched_rows() {
    let (before, _) = tables(11);
    let (sparse, dense) = run_both(
        || {
            Sgd::new(SgdConfig {
                lr: 0.3,
                ..Default::default()
            })
            .unwrap()
        },
        2,
    );
    assert_close(&sparse.weight.as_vec(), &dense.weight.as_vec(), "sgd");
    // Steps 0 and 1 touch rows {0, 1, 2, 3, 7, 9, 11}; the others are bit-for-bit unchanged.
    let (w0, w1) = (before.weight.array(), sparse.weight.array());
    for r in 0..12 {
        let touched = [0, 1, 2, 3, 7, 9, 11].contains(&r);
        assert_eq!(w0[r] != w1[r], touched, "row {r}");
    }
}

#[test]
fn sgd_with_momentum_matches_pytorchs_dense_equivalent() {
    // PyTorch 2.15: SGD(momentum=0.9) (and nesterov, dampening) with sparse=True gives
    // the dense run's weights (checked to 1e-7 in f32 when this was written).
    for config in [
        SgdConfig {
            lr: 0.1,
            momentum: 0.9,
            ..Default::default()
        },
        SgdConfig {
            lr: 0.1,
            momentum: 0.9,
            nesterov: true,
            ..Default::default()
        },
        SgdConfig {
            lr: 0.1,
            momentum: 0.9,
            dampening: 0.5,
            maximize: true,
            ..Default::default()
        },
    ] {
        let (sparse, dense) = run_both(|| Sgd::new(config).unwrap(), 3);
        assert_close(&sparse.weight.as_vec(), &dense.weight.as_vec(), "sgd with momentum");
    }
}

#[test]
fn adagrad_matches_the_dense_update() {
    let config = AdagradConfig {
        lr: 0.2,
        lr_decay: 0.1,
        initial_accumulator_value: 0.3,
        ..Default::default()
    };
    let (sparse, dense) = run_both(|| Adagrad::new(config).unwrap(), 3);
    assert_close(&sparse.weight.as_vec(), &dense.weight.as_vec(), "adagrad");
    let max = AdagradConfig {
        maximize: true,
        ..config
    };
    let (sparse, dense) = run_both(|| Adagrad::new(max).unwrap(), 3);
    assert_close(&sparse.weight.as_vec(), &dense.weight.as_vec(), "adagrad, maximize");
}

/// Steps once with a sparse gradient and expects an `InvalidArgument` that names the
/// parameter and says `why`, with the table unchanged.
fn refuses<O: Optimizer<f64, TestDevice>>(mut optimizer: O, why: &str) {
    let (mut sparse, _) = tables(5);
    let before = sparse.weight.as_vec();
    let grads = grads_of(&sparse, 0);
    let err = optimizer.step(&mut sparse, &grads).unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, Error::InvalidArgument { .. }), "{text}");
    assert!(text.contains("parameter `weight`") && text.contains(why), "{text}");
    assert_eq!(sparse.weight.as_vec(), before);
}

#[test]
fn optimizers_that_cannot_take_a_sparse_gradient_say_so() {
    refuses(
        Adam::new(AdamConfig::default()).unwrap(),
        "Adam does not support sparse gradients, please consider SparseAdam",
    );
    refuses(
        AdamW::new(AdamWConfig::default()).unwrap(),
        "does not support sparse gradients",
    );
    refuses(
        Rmsprop::new(RmspropConfig::default()).unwrap(),
        "RMSprop does not support sparse gradients",
    );
    refuses(
        Sgd::new(SgdConfig {
            weight_decay: 0.1,
            ..Default::default()
        })
        .unwrap(),
        "weight_decay",
    );
    refuses(
        Adagrad::new(AdagradConfig {
            weight_decay: 0.1,
            ..Default::default()
        })
        .unwrap(),
        "weight_decay option is not compatible with sparse gradients",
    );
}

#[test]
fn sparse_adam_refuses_a_dense_gradient() {
    let (_, mut dense) = tables(5);
    let mut adam = SparseAdam::new(SparseAdamConfig::default()).unwrap();
    let grads = grads_of(&dense, 0);
    let err = adam.step(&mut dense, &grads).unwrap_err().to_string();
    assert!(
        err.contains("parameter `weight`") && err.contains("SparseAdam does not support dense gradients"),
        "{err}"
    );
}

#[test]
fn sparse_adam_first_step_by_hand() {
    // Step 1: m = (1 − β₁) g, v = (1 − β₂) g², step_size = lr √(1 − β₂) / (1 − β₁), so
    // p moves by lr · √(1 − β₂) / (1 − β₁) · (1 − β₁) g / (√(1 − β₂) |g| + eps).
    let (mut sparse, _) = tables(8);
    let before = sparse.weight.as_vec();
    let grads = grads_of(&sparse, 0);
    let grad = grads.try_get(&sparse.weight).unwrap().as_vec();
    let config = SparseAdamConfig {
        lr: 0.01,
        eps: 1e-3,
        ..Default::default()
    };
    let mut adam = SparseAdam::new(config).unwrap();
    adam.step(&mut sparse, &grads).unwrap();
    let (b1, b2) = config.betas;
    let after = sparse.weight.as_vec();
    for i in 0..before.len() {
        let g = grad[i];
        let expected = if g == 0.0 {
            before[i]
        } else {
            let step_size = config.lr * (1.0 - b2).sqrt() / (1.0 - b1);
            before[i] - step_size * (1.0 - b1) * g / ((1.0 - b2).sqrt() * g.abs() + config.eps)
        };
        assert!(
            (after[i] - expected).abs() < 1e-14,
            "element {i}: {} vs {expected}",
            after[i]
        );
    }
}

#[test]
fn clipping_a_sparse_gradient_is_clipping_its_dense_form() {
    let (sparse, dense) = tables(9);
    let (mut gs, mut gd) = (grads_of(&sparse, 1), grads_of(&dense, 1));
    for norm_type in [NormType::Two, NormType::One, NormType::Infinity] {
        (gs, gd) = (grads_of(&sparse, 1), grads_of(&dense, 1));
        let (ns, nd) = (
            clip_grad_norm(&sparse, &mut gs, 0.05, norm_type).unwrap(),
            clip_grad_norm(&dense, &mut gd, 0.05, norm_type).unwrap(),
        );
        assert!((ns - nd).abs() < 1e-12 && ns > 0.05, "{norm_type:?}: {ns} vs {nd}");
        assert!(gs.is_sparse(&sparse.weight));
        assert_close(
            &gs.get(&sparse.weight).as_vec(),
            &gd.get(&dense.weight).as_vec(),
            "clipped",
        );
    }
    clip_grad_value(&sparse, &mut gs, 0.01).unwrap();
    clip_grad_value(&dense, &mut gd, 0.01).unwrap();
    assert_close(
        &gs.get(&sparse.weight).as_vec(),
        &gd.get(&dense.weight).as_vec(),
        "clamped",
    );
}
