//! LR schedules and gradient clipping, derived by hand (the schedules' full
//! trajectories are compared with PyTorch in `parity.rs`).

use ferrograd_autodiff::prelude::*;
use ferrograd_autodiff::{ParameterVisitor, ParameterVisitorMut};
use ferrograd_device::Storage;
use ferrograd_optim::schedule::{
    ChainedScheduler, CosineAnnealingLr, ExponentialLr, LinearLr, LrScheduler, MultiStepLr, OneCycleConfig, OneCycleLr,
    SequentialLr, StepLr,
};
use ferrograd_optim::{
    Adam, AdamConfig, GroupSelector, LearningRates, NormType, Sgd, SgdConfig, clip_grad_norm, clip_grad_value,
};
use ferrograd_testing::{TestDevice, test_device};

fn sgd(lr: f64) -> Sgd<f32, TestDevice> {
    Sgd::new(SgdConfig {
        lr,
        ..Default::default()
    })
    .unwrap()
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-12 * b.abs().max(1e-3)
}

#[test]
fn step_lr_halves_every_three_steps_in_every_group() {
    let mut opt = sgd(0.1);
    opt.add_group(
        GroupSelector::prefix("head."),
        SgdConfig {
            lr: 1.0,
            ..Default::default()
        },
    )
    .unwrap();
    let mut schedule = StepLr::new(&mut opt, 3, 0.5).unwrap();
    let mut seen = vec![schedule.last_lr().to_vec()];
    for _ in 0..6 {
        schedule.step(&mut opt).unwrap();
        seen.push(schedule.last_lr().to_vec());
    }
    let expected = [
        [0.1, 1.0],
        [0.1, 1.0],
        [0.1, 1.0],
        [0.05, 0.5],
        [0.05, 0.5],
        [0.05, 0.5],
        [0.025, 0.25],
    ];
    for (got, want) in seen.iter().zip(expected) {
        assert!(close(got[0], want[0]) && close(got[1], want[1]), "{seen:?}");
    }
    assert_eq!((opt.lr(0).unwrap(), opt.lr(1).unwrap()), (seen[6][0], seen[6][1]));
    assert_eq!(schedule.last_epoch(), 6);
}

#[test]
fn multi_step_exponential_cosine_and_linear_by_hand() {
    let mut opt = sgd(1.0);
    let mut multi = MultiStepLr::new(&mut opt, &[2, 2, 4], 0.5).unwrap();
    let mut rates = Vec::new();
    for _ in 0..5 {
        multi.step(&mut opt).unwrap();
        rates.push(opt.lr(0).unwrap());
    }
    // A milestone listed twice multiplies by 0.5².
    assert_eq!(rates, [1.0, 0.25, 0.25, 0.125, 0.125]);

    let mut opt = sgd(2.0);
    let mut exponential = ExponentialLr::new(&mut opt, 0.9).unwrap();
    exponential.step(&mut opt).unwrap();
    exponential.step(&mut opt).unwrap();
    assert!(close(opt.lr(0).unwrap(), 2.0 * 0.81));

    // Half way through T_max the cosine is at the middle of its range.
    let mut opt = sgd(1.0);
    let mut cosine = CosineAnnealingLr::new(&mut opt, 4, 0.2).unwrap();
    for _ in 0..2 {
        cosine.step(&mut opt).unwrap();
    }
    assert!(close(opt.lr(0).unwrap(), 0.6));
    for _ in 0..2 {
        cosine.step(&mut opt).unwrap();
    }
    assert!(close(opt.lr(0).unwrap(), 0.2));

    // Warm-up from a quarter of the rate to all of it over 3 steps.
    let mut opt = sgd(0.4);
    let mut linear = LinearLr::new(&mut opt, 0.25, 1.0, 3).unwrap();
    let mut rates = vec![opt.lr(0).unwrap()];
    for _ in 0..4 {
        linear.step(&mut opt).unwrap();
        rates.push(opt.lr(0).unwrap());
    }
    for (got, want) in rates.iter().zip([0.1, 0.2, 0.3, 0.4, 0.4]) {
        assert!(close(*got, want), "{rates:?}");
    }
}

#[test]
fn one_cycle_rises_to_max_then_falls_and_ends() {
    let mut opt = sgd(123.0);
    let mut schedule = OneCycleLr::new(&mut opt, 1.0, 10, OneCycleConfig::default()).unwrap();
    // It starts at max_lr / div_factor, whatever the optimizer had.
    assert!(close(opt.lr(0).unwrap(), 1.0 / 25.0));
    assert_eq!(opt.initial_lr(0).unwrap(), Some(1.0 / 25.0));
    let mut rates = Vec::new();
    for _ in 0..10 {
        schedule.step(&mut opt).unwrap();
        rates.push(opt.lr(0).unwrap());
    }
    // The peak is at pct_start · total_steps − 1 = step 2.
    assert!(close(rates[1], 1.0), "{rates:?}");
    // The last phase ends at step 9 with initial / final_div_factor.
    assert!(close(rates[8], 1.0 / 25.0 / 1e4), "{rates:?}");
    let error = schedule.step(&mut opt).unwrap_err();
    assert!(error.to_string().contains("past its total_steps 10"), "{error}");
}

#[test]
fn sequential_switches_at_the_milestone_and_chained_multiplies() {
    let mut opt = sgd(1.0);
    let first = ExponentialLr::new(&mut opt, 0.5).unwrap();
    let second = StepLr::new(&mut opt, 10, 0.1).unwrap();
    let mut sequential = SequentialLr::new(&mut opt, vec![Box::new(first), Box::new(second)], vec![2]).unwrap();
    let mut rates = vec![opt.lr(0).unwrap()];
    for _ in 0..3 {
        sequential.step(&mut opt).unwrap();
        rates.push(opt.lr(0).unwrap());
    }
    // Two halvings, then the step schedule restarts from the initial rate.
    assert_eq!(rates, [1.0, 0.5, 1.0, 1.0]);

    let mut opt = sgd(1.0);
    let exponential = ExponentialLr::new(&mut opt, 0.5).unwrap();
    let step = StepLr::new(&mut opt, 2, 0.1).unwrap();
    let mut chained = ChainedScheduler::new(&mut opt, vec![Box::new(exponential), Box::new(step)]).unwrap();
    chained.step(&mut opt).unwrap();
    chained.step(&mut opt).unwrap();
    assert!(close(opt.lr(0).unwrap(), 0.25 * 0.1));
    assert!(close(chained.last_lr()[0], 0.25 * 0.1));
}

#[test]
fn schedule_arguments_out_of_range_are_errors() {
    let mut opt = sgd(0.1);
    assert!(
        StepLr::new(&mut opt, 0, 0.1)
            .unwrap_err()
            .to_string()
            .contains("step_size must be at least 1")
    );
    assert!(
        LinearLr::new(&mut opt, 0.0, 1.0, 5)
            .unwrap_err()
            .to_string()
            .contains("start_factor must be in (0, 1]")
    );
    assert!(CosineAnnealingLr::new(&mut opt, 0, 0.0).is_err());
    let e = OneCycleLr::with_max_lrs(&mut opt, &[1.0, 2.0], 10, OneCycleConfig::default()).unwrap_err();
    assert!(
        e.to_string()
            .contains("expected one max_lr per parameter group (1), got 2"),
        "{e}"
    );
    let a = ExponentialLr::new(&mut opt, 0.9).unwrap();
    let e = SequentialLr::new(&mut opt, vec![Box::new(a)], vec![3]).unwrap_err();
    assert!(e.to_string().contains("one milestone fewer than schedules"), "{e}");
    let mut plain = sgd(0.1);
    let e = SequentialLr::new(&mut plain, Vec::new(), Vec::new()).unwrap_err();
    assert!(e.to_string().contains("at least one schedule"), "{e}");
}

/// Two parameters whose gradients the tests set.
struct Pair {
    a: Tensor<Rank1<2>, f64, TestDevice>,
    b: Tensor<Rank1<1>, f64, TestDevice>,
}

impl VisitParameters<f64, TestDevice> for Pair {
    fn visit_parameters<V: ParameterVisitor<f64, TestDevice>>(&self, visitor: &mut V) -> Result<(), Error> {
        visitor.visit("a", &self.a)?;
        visitor.visit("b", &self.b)
    }
    fn visit_parameters_mut<V: ParameterVisitorMut<f64, TestDevice>>(&mut self, visitor: &mut V) -> Result<(), Error> {
        visitor.visit_mut("a", &mut self.a)?;
        visitor.visit_mut("b", &mut self.b)
    }
}

fn pair_with_grads(a: [f64; 2], b: f64) -> (Pair, Gradients<f64, TestDevice>) {
    let dev = test_device();
    let pair = Pair {
        a: dev.zeros(),
        b: dev.zeros(),
    };
    let mut grads = pair.try_alloc_grads().unwrap();
    *grads.try_grad_mut(&pair.a).unwrap() = dev.try_from_host(a.to_vec()).unwrap();
    *grads.try_grad_mut(&pair.b).unwrap() = dev.try_from_host(vec![b]).unwrap();
    (pair, grads)
}

#[test]
fn clip_grad_norm_scales_all_gradients_by_one_factor() {
    // ‖(3, 4)‖ = 5 and ‖(12)‖ = 12: jointly √(25 + 144) = 13.
    let (pair, mut grads) = pair_with_grads([3.0, 4.0], 12.0);
    let norm = clip_grad_norm(&pair, &mut grads, 6.5, NormType::Two).unwrap();
    assert_eq!(norm, 13.0);
    let factor = 6.5 / (13.0 + 1e-6);
    assert_eq!(grads.get(&pair.a).array(), [3.0 * factor, 4.0 * factor]);
    assert_eq!(grads.get(&pair.b).array(), [12.0 * factor]);

    // Below the bound nothing changes.
    let (pair, mut grads) = pair_with_grads([3.0, 4.0], 12.0);
    assert_eq!(clip_grad_norm(&pair, &mut grads, 100.0, NormType::Two).unwrap(), 13.0);
    assert_eq!(grads.get(&pair.a).array(), [3.0, 4.0]);

    let (pair, mut grads) = pair_with_grads([3.0, -4.0], -2.0);
    assert_eq!(clip_grad_norm(&pair, &mut grads, 100.0, NormType::One).unwrap(), 9.0);
    assert_eq!(clip_grad_norm(&pair, &mut grads, 1.0, NormType::Infinity).unwrap(), 4.0);
    let factor = 1.0 / (4.0 + 1e-6);
    assert_eq!(grads.get(&pair.a).array(), [3.0 * factor, -4.0 * factor]);

    let e = clip_grad_norm(&pair, &mut grads, -1.0, NormType::Two).unwrap_err();
    assert_eq!(e.to_string(), "clip_grad_norm: max_norm must be >= 0, got -1");
}

#[test]
fn clipping_leaves_out_parameters_without_gradients() {
    let dev = test_device();
    let pair = Pair {
        a: dev.zeros(),
        b: dev.zeros(),
    };
    let mut grads = Gradients::default();
    grads.try_alloc_for(&pair.a).unwrap();
    *grads.try_grad_mut(&pair.a).unwrap() = dev.try_from_host(vec![-3.0, 0.5]).unwrap();
    assert_eq!(clip_grad_norm(&pair, &mut grads, 100.0, NormType::One).unwrap(), 3.5);
    clip_grad_value(&pair, &mut grads, 1.0).unwrap();
    assert_eq!(grads.get(&pair.a).array(), [-1.0, 0.5]);
    assert!(!grads.contains(&pair.b));
    assert!(clip_grad_value(&pair, &mut grads, f64::NAN).is_err());
}

#[test]
fn schedules_drive_any_optimizer() {
    let mut adam = Adam::<f32, TestDevice>::new(AdamConfig {
        lr: 0.01,
        ..Default::default()
    })
    .unwrap();
    let mut schedule = ExponentialLr::new(&mut adam, 0.5).unwrap();
    schedule.step(&mut adam).unwrap();
    assert_eq!(adam.config(0).unwrap().lr, 0.005);
}
