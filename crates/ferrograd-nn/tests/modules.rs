//! Building, naming, initialising and running modules.

use ferrograd_nn::LinearConfig;
use ferrograd_nn::prelude::*;
use ferrograd_testing::{TestDevice, seeded_test_device};

#[test]
fn nested_tuples_are_named_like_nested_sequentials() {
    // PyTorch: nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Sequential(nn.Linear(4, 4), nn.Tanh()), nn.Linear(4, 2, bias=False))
    type Model = (Linear<3, 4>, ReLU, (Linear<4, 4>, Tanh), LinearNoBias<4, 2>);
    let dev = seeded_test_device(1);
    let model = dev.build_module::<Model, f32>();
    assert_eq!(
        model.parameter_names().unwrap(),
        ["0.weight", "0.bias", "2.0.weight", "2.0.bias", "3.weight"]
    );
    assert_eq!(model.num_parameters().unwrap(), 3 * 4 + 4 + 4 * 4 + 4 + 4 * 2);
    assert!(model.3.bias.is_none());
}

#[test]
fn linear_init_is_uniform_within_one_over_root_fan_in() {
    let dev = seeded_test_device(7);
    let layer = dev.build_module::<Linear<400, 300>, f64>();
    let bound = 1.0 / 400f64.sqrt();
    for (name, values) in [
        ("weight", layer.weight.as_vec()),
        ("bias", layer.bias.unwrap().as_vec()),
    ] {
        assert!(values.iter().all(|v| v.abs() <= bound), "{name} outside ±{bound}");
        // U(-b, b) has mean 0 and variance b²/3; with n samples the sample mean is
        // within 5 standard errors (b/√(3n)) and the variance within 10%.
        let n = values.len() as f64;
        let mean = values.iter().sum::<f64>() / n;
        let variance = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n;
        assert!(mean.abs() < 5.0 * bound / (3.0 * n).sqrt(), "{name} mean {mean}");
        assert!(
            (variance / (bound * bound / 3.0) - 1.0).abs() < 0.1,
            "{name} variance {variance}"
        );
    }
}

#[test]
fn linear_computes_x_times_weight_transposed_plus_bias() {
    let dev = seeded_test_device(3);
    let layer = dev.build_module::<Linear<3, 2>, f64>();
    let x: Tensor<Rank3<2, 4, 3>, f64, TestDevice> = dev.sample_normal();
    let y = layer.forward(x.clone()).array();
    let (w, b) = (layer.weight.array(), layer.bias.as_ref().unwrap().array());
    let x = x.array();
    for batch in 0..2 {
        for step in 0..4 {
            for out in 0..2 {
                let expected: f64 = (0..3).map(|i| x[batch][step][i] * w[out][i]).sum::<f64>() + b[out];
                assert!((y[batch][step][out] - expected).abs() < 1e-12);
            }
        }
    }
    let one: Tensor<Rank1<3>, f64, TestDevice> = dev.tensor(x[1][2]);
    let y1 = layer.forward(one).array();
    assert!((y1[1] - y[1][2][1]).abs() < 1e-12);
}

#[test]
fn run_time_sized_layers_check_sizes_at_run_time() {
    let dev = seeded_test_device(0);
    let model = dev.build_module_with::<_, f32>((LinearConfig::new(5, 3), ReLU, LinearConfig::new(3, 2)));
    assert_eq!(model.0.weight.dims(), [3, 5]);
    let x = dev.sample_normal_like(&(4, 5));
    assert_eq!(model.forward(x).dims(), [4, 2]);
    let wrong = dev.sample_normal_like(&(4, 6));
    let error = model.try_forward(wrong).unwrap_err().to_string();
    assert!(error.contains('6') && error.contains('5'), "{error}");
}

#[test]
fn gradients_reach_every_parameter_through_a_sequential_model() {
    let dev = seeded_test_device(5);
    type Model = (Linear<4, 8>, GELU, Residual<(Linear<8, 8>, SiLU)>, Linear<8, 3>);
    let mut model = dev.build_module::<Model, f64>();
    let x: Tensor<Rank2<5, 4>, f64, TestDevice> = dev.sample_normal();
    let grads = model.try_alloc_grads().unwrap();
    let loss = model
        .forward_mut(x.clone().traced(grads))
        .log_softmax::<Axis<1>>()
        .mean::<Rank0, _>();
    let grads = loss.backward();

    // Finite differences on one weight of the residual branch.
    let (row, column) = (2, 5);
    let analytic = grads.get(&model.2.0.0.weight).array()[row][column];
    let loss_at = |model: &Built<Model, f64, TestDevice>| {
        model
            .forward(x.clone())
            .log_softmax::<Axis<1>>()
            .mean::<Rank0, _>()
            .array()
    };
    let h = 1e-6;
    let shifted = |delta: f64| {
        let mut values = model.2.0.0.weight.array();
        values[row][column] += delta;
        let mut moved = model.clone();
        moved.2.0.0.weight = dev.tensor(values);
        loss_at(&moved)
    };
    let numeric = (shifted(h) - shifted(-h)) / (2.0 * h);
    assert!((analytic - numeric).abs() < 1e-7, "{analytic} vs {numeric}");
    for name in ["0.weight", "0.bias", "2.0.weight", "2.0.bias", "3.weight", "3.bias"] {
        let parameter_grads = GradientsByName::of(&model, &grads);
        assert!(parameter_grads.contains(&name.to_string()), "no gradient for {name}");
    }
}

#[test]
fn dropout_is_on_only_in_training() {
    let dev = seeded_test_device(11);
    let mut model = dev.build_module::<(Linear<10, 10>, Dropout), f32>();
    let x: Tensor<Rank2<50, 10>, f32, TestDevice> = dev.sample_normal();
    let eval = model.forward(x.clone()).as_vec();
    assert_eq!(eval, model.0.forward(x.clone()).as_vec());
    let train = model.forward_mut(x).as_vec();
    let zeros = train.iter().filter(|&&v| v == 0.0).count();
    // p = 0.5 of 500: far from none and from all.
    assert!((150..350).contains(&zeros), "{zeros} zeros");
    for (t, e) in train.iter().zip(&eval) {
        assert!(*t == 0.0 || (t - 2.0 * e).abs() <= 1e-6 * e.abs().max(1.0));
    }
}

#[test]
fn activations_match_their_ops() {
    let dev = seeded_test_device(2);
    let x: Tensor<Rank2<3, 4>, f64, TestDevice> = dev.sample_normal();
    assert_eq!(ReLU.forward(x.clone()).as_vec(), x.clone().relu().as_vec());
    assert_eq!(GELU.forward(x.clone()).as_vec(), x.clone().gelu().as_vec());
    assert_eq!(GELUTanh.forward(x.clone()).as_vec(), x.clone().gelu_tanh().as_vec());
    assert_eq!(SiLU.forward(x.clone()).as_vec(), x.clone().silu().as_vec());
    assert_eq!(Sigmoid.forward(x.clone()).as_vec(), x.clone().sigmoid().as_vec());
    assert_eq!(Tanh.forward(x.clone()).as_vec(), x.clone().tanh().as_vec());
    assert_eq!(
        LeakyReLU::default().forward(x.clone()).as_vec(),
        x.clone().leaky_relu(0.01).as_vec()
    );
    assert_eq!(
        Softmax.forward(x.clone()).as_vec(),
        x.clone().softmax::<Axis<1>>().as_vec()
    );
    assert_eq!(
        LogSoftmax.forward(x.clone()).as_vec(),
        x.log_softmax::<Axis<1>>().as_vec()
    );
}

/// The names of a model's parameters that have a gradient in `grads`.
struct GradientsByName;

impl GradientsByName {
    fn of<M: VisitParameters<f64, TestDevice>>(model: &M, grads: &Gradients<f64, TestDevice>) -> Vec<String> {
        struct Names<'a>(&'a Gradients<f64, TestDevice>, Vec<String>);
        impl ferrograd_autodiff::ParameterVisitor<f64, TestDevice> for Names<'_> {
            fn visit<S: Shape>(&mut self, name: &str, parameter: &Tensor<S, f64, TestDevice>) -> Result<(), Error> {
                if self.0.contains(parameter) {
                    self.1.push(name.to_string());
                }
                Ok(())
            }
        }
        let mut names = Names(grads, Vec::new());
        model.visit_parameters(&mut names).unwrap();
        names.1
    }
}
