//! The optimizers' updates derived by hand, their errors, parameter groups and state.

use ferrograd_autodiff::prelude::*;
use ferrograd_autodiff::{ParameterVisitor, ParameterVisitorMut};
use ferrograd_device::Storage;
use ferrograd_optim::{
    Adagrad, AdagradConfig, Adam, AdamConfig, AdamW, AdamWConfig, GroupSelector, LearningRates, Optimizer, Rmsprop,
    RmspropConfig, Sgd, SgdConfig, StateVisitor,
};
use ferrograd_testing::{TestDevice, test_device};

/// Two parameters as a sequential model would name them.
struct Model {
    weight: Tensor<Rank1<2>, f64, TestDevice>,
    bias: Tensor<Rank1<2>, f64, TestDevice>,
}

impl VisitParameters<f64, TestDevice> for Model {
    fn visit_parameters<V: ParameterVisitor<f64, TestDevice>>(&self, visitor: &mut V) -> Result<(), Error> {
        visitor.visit("0.weight", &self.weight)?;
        visitor.visit("1.bias", &self.bias)
    }
    fn visit_parameters_mut<V: ParameterVisitorMut<f64, TestDevice>>(&mut self, visitor: &mut V) -> Result<(), Error> {
        visitor.visit_mut("0.weight", &mut self.weight)?;
        visitor.visit_mut("1.bias", &mut self.bias)
    }
}

fn model() -> Model {
    let dev = test_device();
    Model {
        weight: dev.tensor([1.0, 2.0]),
        bias: dev.tensor([-0.5, 0.25]),
    }
}

/// Gradients holding exactly these values for the two parameters.
fn grads(model: &Model, weight: [f64; 2], bias: [f64; 2]) -> Gradients<f64, TestDevice> {
    let dev = test_device();
    let mut grads = model.try_alloc_grads().unwrap();
    *grads.try_grad_mut(&model.weight).unwrap() = dev.try_from_host(weight.to_vec()).unwrap();
    *grads.try_grad_mut(&model.bias).unwrap() = dev.try_from_host(bias.to_vec()).unwrap();
    grads
}

fn assert_close(got: [f64; 2], expected: [f64; 2]) {
    for (g, e) in got.iter().zip(expected) {
        assert!(
            (g - e).abs() <= 1e-15 * e.abs().max(1.0),
            "got {got:?}, expected {expected:?}"
        );
    }
}

#[test]
fn sgd_with_momentum_dampening_and_weight_decay_by_hand() {
    let mut m = model();
    let (lr, momentum, dampening, decay) = (0.1, 0.9, 0.2, 0.1);
    let mut sgd = Sgd::new(SgdConfig {
        lr,
        momentum,
        dampening,
        weight_decay: decay,
        ..Default::default()
    })
    .unwrap();
    let (g1, g2) = ([0.5, -1.0], [0.25, 0.5]);
    let p0 = [1.0, 2.0];

    let g = grads(&m, g1, [0.0; 2]);

    sgd.step(&mut m, &g).unwrap();
    // Step 1: d = g + wd·p; the buffer starts as d itself (no dampening); p -= lr·b.
    let d1 = [g1[0] + decay * p0[0], g1[1] + decay * p0[1]];
    let b1 = d1;
    let p1 = [p0[0] - lr * b1[0], p0[1] - lr * b1[1]];
    assert_close(m.weight.array(), p1);

    let g = grads(&m, g2, [0.0; 2]);

    sgd.step(&mut m, &g).unwrap();
    // Step 2: b = momentum·b + (1 − dampening)·d.
    let d2 = [g2[0] + decay * p1[0], g2[1] + decay * p1[1]];
    let b2 = [
        momentum * b1[0] + (1.0 - dampening) * d2[0],
        momentum * b1[1] + (1.0 - dampening) * d2[1],
    ];
    assert_close(m.weight.array(), [p1[0] - lr * b2[0], p1[1] - lr * b2[1]]);
}

#[test]
fn sgd_nesterov_by_hand() {
    let mut m = model();
    let mut sgd = Sgd::new(SgdConfig {
        lr: 0.5,
        momentum: 0.5,
        nesterov: true,
        ..Default::default()
    })
    .unwrap();
    let g = grads(&m, [1.0, 2.0], [0.0; 2]);
    sgd.step(&mut m, &g).unwrap();
    // b = g; p -= lr·(g + momentum·b) = lr·1.5·g.
    assert_close(m.weight.array(), [1.0 - 0.5 * 1.5, 2.0 - 0.5 * 3.0]);
}

#[test]
fn adam_first_step_by_hand() {
    let mut m = model();
    let (lr, beta1, beta2, eps) = (0.01, 0.9, 0.999, 1e-8);
    let mut adam = Adam::new(AdamConfig {
        lr,
        ..Default::default()
    })
    .unwrap();
    let g = [0.3, -2.0];
    let gradients = grads(&m, g, [0.0; 2]);
    adam.step(&mut m, &gradients).unwrap();
    // m = (1 − β₁)·g, v = (1 − β₂)·g²; with the bias corrections of step 1,
    // p -= lr/(1 − β₁) · m / (√v / √(1 − β₂) + eps), which is about lr·sign(g).
    let expected = [0, 1].map(|i| {
        let first = (1.0 - beta1) * g[i];
        let second = (1.0 - beta2) * g[i] * g[i];
        let p0 = [1.0, 2.0][i];
        p0 - lr / (1.0 - beta1) * first / (second.sqrt() / (1.0 - beta2).sqrt() + eps)
    });
    let got = m.weight.array();
    for i in 0..2 {
        assert!((got[i] - expected[i]).abs() < 1e-15, "{got:?} vs {expected:?}");
        assert!((got[i] - ([1.0, 2.0][i] - lr * g[i].signum())).abs() < 1e-8);
    }
    // A zero gradient still counts a step, and moves nothing.
    assert_close(m.bias.array(), [-0.5, 0.25]);
}

#[test]
fn adamw_decays_before_the_adam_step() {
    let mut m = model();
    let mut adamw = AdamW::new(AdamWConfig {
        lr: 0.1,
        weight_decay: 0.5,
        ..Default::default()
    })
    .unwrap();
    let g = grads(&m, [0.0; 2], [0.0; 2]);
    adamw.step(&mut m, &g).unwrap();
    // With a zero gradient only the decoupled decay acts: p·(1 − lr·wd).
    assert_close(m.weight.array(), [0.95, 1.9]);
}

#[test]
fn defaults_are_pytorchs() {
    assert_eq!(SgdConfig::default().lr, 1e-3);
    let adam = AdamConfig::default();
    assert_eq!(
        (adam.lr, adam.betas, adam.eps, adam.weight_decay),
        (1e-3, (0.9, 0.999), 1e-8, 0.0)
    );
    assert_eq!(AdamWConfig::default().weight_decay, 1e-2);
    let rmsprop = RmspropConfig::default();
    assert_eq!((rmsprop.lr, rmsprop.alpha, rmsprop.eps), (1e-2, 0.99, 1e-8));
    let adagrad = AdagradConfig::default();
    assert_eq!(
        (adagrad.lr, adagrad.eps, adagrad.initial_accumulator_value),
        (1e-2, 1e-10, 0.0)
    );
}

#[test]
fn a_missing_gradient_names_the_parameter_and_changes_nothing() {
    let mut m = model();
    let mut only_weight = Gradients::default();
    only_weight.try_alloc_for(&m.weight).unwrap();
    let mut sgd = Sgd::new(SgdConfig {
        lr: 0.1,
        ..Default::default()
    })
    .unwrap();
    *only_weight.try_grad_mut(&m.weight).unwrap() = test_device().try_from_host(vec![1.0, 1.0]).unwrap();

    let error = sgd.step(&mut m, &only_weight).unwrap_err();
    assert!(
        matches!(&error, Error::MissingGradient { tensor } if tensor == "parameter `1.bias`"),
        "{error:?}"
    );
    assert!(
        error.to_string().starts_with("no gradient for parameter `1.bias`"),
        "{error}"
    );
    // Found before anything was written.
    assert_eq!(m.weight.array(), [1.0, 2.0]);

    sgd.set_skip_missing_gradients(true);
    sgd.step(&mut m, &only_weight).unwrap();
    assert_close(m.weight.array(), [0.9, 1.9]);
    assert_eq!(m.bias.array(), [-0.5, 0.25]);
}

#[test]
fn a_group_by_prefix_gets_its_own_learning_rate() {
    let mut m = model();
    let mut sgd = Sgd::new(SgdConfig {
        lr: 0.1,
        ..Default::default()
    })
    .unwrap();
    let group = sgd
        .add_group(
            GroupSelector::prefix("1."),
            SgdConfig {
                lr: 0.5,
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!((group, sgd.num_groups()), (1, 2));
    assert_eq!((sgd.lr(0).unwrap(), sgd.lr(1).unwrap()), (0.1, 0.5));
    let g = grads(&m, [1.0, 1.0], [1.0, 1.0]);
    sgd.step(&mut m, &g).unwrap();
    assert_close(m.weight.array(), [0.9, 1.9]);
    assert_close(m.bias.array(), [-1.0, -0.25]);

    sgd.set_lr(group, 0.25).unwrap();
    sgd.step(&mut m, &g).unwrap();
    assert_close(m.bias.array(), [-1.25, -0.5]);
    assert_close(m.weight.array(), [0.8, 1.8]);
}

#[test]
fn a_group_by_predicate_and_the_first_matching_group_wins() {
    let mut m = model();
    let mut sgd = Sgd::new(SgdConfig {
        lr: 0.1,
        ..Default::default()
    })
    .unwrap();
    let config = |lr| SgdConfig {
        lr,
        ..Default::default()
    };
    sgd.add_group(GroupSelector::predicate(|name| name.ends_with("weight")), config(1.0))
        .unwrap();
    sgd.add_group(GroupSelector::prefix(""), config(2.0)).unwrap();
    let g = grads(&m, [1.0, 1.0], [1.0, 1.0]);
    sgd.step(&mut m, &g).unwrap();
    assert_close(m.weight.array(), [0.0, 1.0]);
    assert_close(m.bias.array(), [-2.5, -1.75]);
}

#[test]
fn out_of_range_hyperparameters_are_errors_that_say_so() {
    let message = |e: Error| e.to_string();
    let e = Sgd::<f64, TestDevice>::new(SgdConfig {
        lr: -1.0,
        ..Default::default()
    })
    .unwrap_err();
    assert_eq!(message(e), "SGD: lr must be a finite number >= 0, got -1");
    let e = Sgd::<f64, TestDevice>::new(SgdConfig {
        nesterov: true,
        ..Default::default()
    })
    .unwrap_err();
    assert!(message(e).contains("Nesterov momentum needs a momentum > 0"));
    let e = Adam::<f64, TestDevice>::new(AdamConfig {
        betas: (0.9, 1.0),
        ..Default::default()
    })
    .unwrap_err();
    assert_eq!(message(e), "Adam: betas.1 must be in [0, 1), got 1");
    assert!(matches!(
        Rmsprop::<f64, TestDevice>::new(RmspropConfig {
            alpha: -0.1,
            ..Default::default()
        }),
        Err(Error::InvalidArgument { .. })
    ));
    assert!(
        Adagrad::<f64, TestDevice>::new(AdagradConfig {
            lr_decay: f64::NAN,
            ..Default::default()
        })
        .is_err()
    );

    let mut sgd = Sgd::<f64, TestDevice>::new(SgdConfig::default()).unwrap();
    assert!(message(sgd.set_lr(0, -0.5).unwrap_err()).contains("lr must be"));
    assert_eq!(
        message(sgd.set_lr(3, 0.5).unwrap_err()),
        "SGD: no parameter group 3: there are 1 (0 is the default group)"
    );
    assert_eq!(sgd.lr(0).unwrap(), 1e-3);
}

#[test]
fn a_non_contiguous_parameter_is_an_error() {
    struct Transposed(Tensor<Rank2<3, 2>, f64, TestDevice>);
    impl VisitParameters<f64, TestDevice> for Transposed {
        fn visit_parameters<V: ParameterVisitor<f64, TestDevice>>(&self, visitor: &mut V) -> Result<(), Error> {
            visitor.visit("t", &self.0)
        }
        fn visit_parameters_mut<V: ParameterVisitorMut<f64, TestDevice>>(
            &mut self,
            visitor: &mut V,
        ) -> Result<(), Error> {
            visitor.visit_mut("t", &mut self.0)
        }
    }
    let dev = test_device();
    let base: Tensor<Rank2<2, 3>, f64, TestDevice> = dev.zeros();
    let mut model = Transposed(base.permute::<Axes2<1, 0>>());
    let grads = model.try_alloc_grads().unwrap();
    let error = Sgd::new(SgdConfig::default())
        .unwrap()
        .step(&mut model, &grads)
        .unwrap_err();
    assert!(error.to_string().contains("parameter `t` is a view"), "{error}");
}

/// Collects an optimizer's state, read back from `dev`.
struct Collect {
    dev: TestDevice,
    buffers: Vec<(String, Vec<usize>, Vec<f64>)>,
    steps: Vec<(String, u64)>,
}

impl StateVisitor<f64, TestDevice> for Collect {
    fn visit_buffer(
        &mut self,
        name: &str,
        dims: &[usize],
        buffer: &<TestDevice as Storage<f64>>::Vec,
    ) -> Result<(), Error> {
        self.buffers
            .push((name.to_string(), dims.to_vec(), self.dev.try_to_host(buffer)?));
        Ok(())
    }
    fn visit_step(&mut self, name: &str, step: u64) -> Result<(), Error> {
        self.steps.push((name.to_string(), step));
        Ok(())
    }
}

#[test]
fn state_saved_and_loaded_continues_the_same_trajectory() {
    use ferrograd_device::Storage;
    let config = AdamConfig {
        lr: 0.1,
        amsgrad: true,
        ..Default::default()
    };
    let mut m = model();
    let mut adam = Adam::new(config).unwrap();
    for step in 0..2 {
        let g = grads(&m, [1.0 + step as f64, -0.5], [0.25, 2.0]);
        adam.step(&mut m, &g).unwrap();
    }
    let mut saved = Collect {
        dev: test_device(),
        buffers: Vec::new(),
        steps: Vec::new(),
    };
    adam.visit_state(&mut saved).unwrap();
    assert_eq!(
        saved.steps,
        [
            ("state.0.weight.step".to_string(), 2),
            ("state.1.bias.step".to_string(), 2)
        ]
    );
    let names: Vec<&str> = saved.buffers.iter().map(|(n, _, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "state.0.weight.exp_avg",
            "state.0.weight.exp_avg_sq",
            "state.0.weight.max_exp_avg_sq",
            "state.1.bias.exp_avg",
            "state.1.bias.exp_avg_sq",
            "state.1.bias.max_exp_avg_sq"
        ]
    );
    assert!(saved.buffers.iter().all(|(_, dims, _)| dims == &[2]));

    let dev = test_device();
    let mut restored = Adam::new(config).unwrap();
    for (name, step) in &saved.steps {
        restored.load_state_step(name, *step).unwrap();
    }
    for (name, dims, values) in &saved.buffers {
        restored
            .load_state_buffer(name, dims, dev.try_from_host(values.clone()).unwrap())
            .unwrap();
    }
    let mut twin = Model {
        weight: dev.tensor(m.weight.array()),
        bias: dev.tensor(m.bias.array()),
    };
    let g = grads(&m, [0.5, 0.5], [-1.0, 1.0]);
    adam.step(&mut m, &g).unwrap();
    let g = grads(&twin, [0.5, 0.5], [-1.0, 1.0]);
    restored.step(&mut twin, &g).unwrap();
    assert_eq!(m.weight.array(), twin.weight.array());
    assert_eq!(m.bias.array(), twin.bias.array());

    // A fresh optimizer would have taken another path (bias corrections of step 1).
    let mut fresh_model = Model {
        weight: dev.tensor([1.0, 2.0]),
        bias: dev.tensor([-0.5, 0.25]),
    };
    let mut fresh = Adam::new(config).unwrap();
    let g = grads(&fresh_model, [0.5, 0.5], [-1.0, 1.0]);
    fresh.step(&mut fresh_model, &g).unwrap();
    assert_ne!(fresh_model.weight.array(), m.weight.array());
}

#[test]
fn loading_state_that_does_not_fit_is_an_error() {
    let dev = test_device();
    let mut adam = Adam::<f64, TestDevice>::new(AdamConfig::default()).unwrap();
    let buffer = |n: usize| dev.try_from_host(vec![0.0; n]).unwrap();
    use ferrograd_device::Storage;
    let e = adam
        .load_state_buffer("state.0.weight.momentum_buffer", &[2], buffer(2))
        .unwrap_err();
    assert!(e.to_string().contains("Adam keeps no buffer `momentum_buffer`"), "{e}");
    let e = adam.load_state_buffer("exp_avg", &[2], buffer(2)).unwrap_err();
    assert!(e.to_string().contains("state.<parameter>.<buffer>"), "{e}");
    assert!(
        adam.load_state_buffer("state.0.weight.exp_avg", &[3], buffer(2))
            .is_err()
    );
    assert!(
        Sgd::<f64, TestDevice>::new(SgdConfig::default())
            .unwrap()
            .load_state_step("state.0.weight.step", 1)
            .is_err()
    );

    // Dims of another model: found at the next step, which then changes nothing.
    adam.load_state_buffer("state.0.weight.exp_avg", &[3], buffer(3))
        .unwrap();
    let mut m = model();
    let g = grads(&m, [1.0, 1.0], [1.0, 1.0]);
    let e = adam.step(&mut m, &g).unwrap_err();
    assert!(matches!(e, Error::ShapeMismatch { .. }), "{e:?}");
    assert!(
        e.to_string()
            .contains("the state of `0.weight` has dims [3], the parameter [2]"),
        "{e}"
    );
    assert_eq!(m.weight.array(), [1.0, 2.0]);
}

#[test]
fn parameters_keep_their_ids_and_every_optimizer_steps() {
    fn run<O: Optimizer<f64, TestDevice>>(mut optimizer: O) -> [f64; 2] {
        let mut m = model();
        let ids = (m.weight.id(), m.bias.id());
        let g = grads(&m, [1.0, -1.0], [0.5, 0.5]);
        for _ in 0..3 {
            optimizer.step(&mut m, &g).unwrap();
        }
        assert_eq!((m.weight.id(), m.bias.id()), ids);
        m.weight.array()
    }
    // Each moves the first weight down (positive gradient) and the second up.
    for weight in [
        run(Sgd::new(SgdConfig::default()).unwrap()),
        run(Adam::new(AdamConfig::default()).unwrap()),
        run(AdamW::new(AdamWConfig::default()).unwrap()),
        run(Rmsprop::new(RmspropConfig::default()).unwrap()),
        run(Adagrad::new(AdagradConfig::default()).unwrap()),
    ] {
        assert!(weight[0] < 1.0 && weight[1] > 2.0, "{weight:?}");
    }
}
