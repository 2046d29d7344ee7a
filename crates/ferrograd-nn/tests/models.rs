//! PyTorch models whose `state_dict` was exported to npz (`cargo xtask parity`, see
//! `xtask/parity/models.py`) load into the matching ferrograd architecture and give
//! PyTorch's outputs, input gradients and parameter gradients.

mod model_fixtures;

use model_fixtures::{GradientsByName, Tolerance, models_dir, npz};

use ferrograd_autodiff::ParameterVisitor;
use ferrograd_device::prelude::{ArithmeticKernels, Storage};
use ferrograd_nn::prelude::*;
use ferrograd_testing::{TestDevice, seeded_test_device, test_device};
use npz::{Array, Data};
use std::collections::BTreeMap;

fn assert_close<E: Tolerance>(what: &str, got: &[E], expected: &[E]) {
    assert_eq!(got.len(), expected.len(), "{what}: lengths differ");
    for (i, (g, e)) in got.iter().zip(expected).enumerate() {
        let (g, e) = (g.to_f64(), e.to_f64());
        assert!(
            (g - e).abs() <= E::ATOL + E::RTOL * e.abs(),
            "{what}[{i}]: ferrograd {g}, PyTorch {e}"
        );
    }
}

type Traced<S, E> = Tensor<S, E, TestDevice, OwnedTape<E, TestDevice>>;

/// Loads `<name>_<dtype>.state.npz` into a fresh `A` (strictly: the keys must be the
/// architecture's), runs the fixture's input through it traced, and compares the
/// output, the input's gradient and every parameter's gradient with PyTorch's.
fn check<A, S, O, E>(name: &str, architecture: A)
where
    A: BuildOnDevice<E, TestDevice>,
    A::Built: Module<Traced<S, E>, Output = Traced<O, E>>,
    S: ConstShape,
    O: Shape,
    E: Tolerance,
    TestDevice: ArithmeticKernels<E>,
{
    let dtype = if E::BYTES == 4 { "f32" } else { "f64" };
    let dev = seeded_test_device(0);
    let (model, io) = load(name, dtype, &dev, architecture);

    let x: Tensor<S, E, TestDevice> = dev.tensor_from_vec(E::values(&io["input"]), S::default());
    let mut grads = model.try_alloc_grads().unwrap();
    grads.try_alloc_for(&x).unwrap();
    let y = model.forward(x.clone().traced(grads));
    compare_with_pytorch(name, dtype, &model, &io, &x, y);
}

/// The output `y` of `model` on `x`, then (backward from the fixture's upstream
/// gradient) the input's and every parameter's gradient, against PyTorch's.
fn compare_with_pytorch<M, S, O, E>(
    name: &str,
    dtype: &str,
    model: &M,
    io: &BTreeMap<String, Array>,
    x: &Tensor<S, E, TestDevice>,
    y: Traced<O, E>,
) where
    M: VisitParameters<E, TestDevice>,
    S: Shape,
    O: Shape,
    E: Tolerance,
    TestDevice: ArithmeticKernels<E>,
{
    let dev = test_device();
    assert_close(
        &format!("{name} {dtype} output"),
        &y.as_vec(),
        &E::values(&io["output"]),
    );
    let upstream = dev.tensor_from_vec(E::values(&io["grad_output"]), *y.shape());
    let grads = (y * upstream).flatten().sum::<Rank0, _>().backward();
    assert_close(
        &format!("{name} {dtype} input gradient"),
        &grads.get(x).as_vec(),
        &E::values(&io["grad_input"]),
    );
    check_parameter_gradients(name, dtype, model, &grads, io);
}

/// The model of `A` with `<name>_<dtype>.state.npz` loaded (strictly: the keys must be
/// the architecture's), and the fixture's arrays.
fn load<A: BuildOnDevice<E, TestDevice>, E: Tolerance>(
    name: &str,
    dtype: &str,
    dev: &TestDevice,
    architecture: A,
) -> (A::Built, BTreeMap<String, Array>)
where
    TestDevice: Storage<E>,
{
    let base = models_dir().join(format!("{name}_{dtype}"));
    let mut model = dev.build_module_with::<A, E>(architecture);
    model
        .load(base.with_extension("state.npz"))
        .unwrap_or_else(|e| panic!("{name} {dtype}: {e}"));
    let io = npz::read_npz(&base.with_extension("io.npz")).unwrap_or_else(|e| panic!("{name} {dtype}: {e}"));
    (model, io)
}

/// Every parameter's gradient against the fixture's `grad.<key>`, and the same keys.
fn check_parameter_gradients<M: VisitParameters<E, TestDevice>, E: Tolerance>(
    name: &str,
    dtype: &str,
    model: &M,
    grads: &Gradients<E, TestDevice>,
    io: &BTreeMap<String, Array>,
) where
    TestDevice: Storage<E>,
{
    let mut by_name = GradientsByName(grads, BTreeMap::new());
    model.visit_parameters(&mut by_name).unwrap();
    let expected: Vec<&str> = io.keys().filter_map(|k| k.strip_prefix("grad.")).collect();
    assert_eq!(
        by_name.1.keys().collect::<Vec<_>>(),
        expected,
        "{name} {dtype}: parameters"
    );
    for (key, gradient) in &by_name.1 {
        assert_close(
            &format!("{name} {dtype} gradient of {key}"),
            gradient,
            &E::values(&io[&format!("grad.{key}")]),
        );
    }
}

/// [`check`] for a model that takes indices (int64 in the fixture): no input gradient.
fn check_indices<A, S, O, E>(name: &str, architecture: A)
where
    A: BuildOnDevice<E, TestDevice>,
    A::Built: Module<Tensor<S, usize, TestDevice, OwnedTape<E, TestDevice>>, Output = Traced<O, E>>,
    S: ConstShape,
    O: Shape,
    E: Tolerance,
    TestDevice: ArithmeticKernels<E>,
{
    let dtype = if E::BYTES == 4 { "f32" } else { "f64" };
    let dev = seeded_test_device(0);
    let (model, io) = load(name, dtype, &dev, architecture);
    let Data::I64(indices) = &io["input"].data else {
        panic!("{name}: the input is not int64 indices")
    };
    let indices: Vec<usize> = indices.iter().map(|&i| i as usize).collect();
    let x: Tensor<S, usize, TestDevice> = TensorCreation::<usize>::tensor_from_vec(&dev, indices, S::default());
    let y = model.forward(x.traced_indices(model.try_alloc_grads().unwrap()));
    assert_close(
        &format!("{name} {dtype} output"),
        &y.as_vec(),
        &E::values(&io["output"]),
    );
    let upstream = dev.tensor_from_vec(E::values(&io["grad_output"]), *y.shape());
    let grads = (y * upstream).flatten().sum::<Rank0, _>().backward();
    check_parameter_gradients(name, dtype, &model, &grads, &io);
}

/// [`check`] for a model PyTorch ran in training mode (`train_*`): `forward_mut`, and
/// every buffer and counter after the step against PyTorch's.
fn check_train<A, S, O, E>(name: &str, architecture: A)
where
    A: BuildOnDevice<E, TestDevice>,
    A::Built: ModuleMut<Traced<S, E>, Output = Traced<O, E>>,
    S: ConstShape,
    O: Shape,
    E: Tolerance,
    TestDevice: ArithmeticKernels<E>,
{
    let dtype = if E::BYTES == 4 { "f32" } else { "f64" };
    let dev = seeded_test_device(0);
    let (mut model, io) = load(name, dtype, &dev, architecture);
    let x: Tensor<S, E, TestDevice> = dev.tensor_from_vec(E::values(&io["input"]), S::default());
    let mut grads = model.try_alloc_grads().unwrap();
    grads.try_alloc_for(&x).unwrap();
    let y = model.forward_mut(x.clone().traced(grads));
    compare_with_pytorch(name, dtype, &model, &io, &x, y);

    /// Every buffer's values and every counter, by name.
    struct Buffers<E>(BTreeMap<String, Vec<f64>>, std::marker::PhantomData<E>);
    impl<E: Dtype> ParameterVisitor<E, TestDevice> for Buffers<E>
    where
        TestDevice: Storage<E>,
    {
        fn visit<S: Shape>(&mut self, _: &str, _: &Tensor<S, E, TestDevice>) -> Result<(), Error> {
            Ok(())
        }
        fn visit_buffer<S: Shape>(&mut self, name: &str, buffer: &Tensor<S, E, TestDevice>) -> Result<(), Error> {
            self.0
                .insert(name.into(), buffer.as_vec().iter().map(|v| v.to_f64()).collect());
            Ok(())
        }
        fn visit_count(&mut self, name: &str, count: u64) -> Result<(), Error> {
            self.0.insert(name.into(), vec![count as f64]);
            Ok(())
        }
    }
    let mut buffers = Buffers::<E>(BTreeMap::new(), std::marker::PhantomData);
    model.visit_parameters(&mut buffers).unwrap();
    let expected: Vec<&str> = io.keys().filter_map(|k| k.strip_prefix("after.")).collect();
    assert_eq!(
        buffers.0.keys().collect::<Vec<_>>(),
        expected,
        "{name} {dtype}: buffers"
    );
    for (key, values) in &buffers.0 {
        let theirs: Vec<f64> = match &io[&format!("after.{key}")].data {
            Data::I64(v) => v.iter().map(|&c| c as f64).collect(),
            _ => E::values(&io[&format!("after.{key}")])
                .iter()
                .map(|v| v.to_f64())
                .collect(),
        };
        assert_eq!(values.len(), theirs.len(), "{name} {dtype} {key}: lengths differ");
        for (i, (ours, theirs)) in values.iter().zip(&theirs).enumerate() {
            assert!(
                (ours - theirs).abs() <= E::ATOL + E::RTOL * theirs.abs(),
                "{name} {dtype} {key} after the step [{i}]: ferrograd {ours}, PyTorch {theirs}"
            );
        }
    }
}

/// One test per fixture model, in f32 and f64: the architecture PyTorch's module
/// corresponds to (its default, or the value after `=`), and the input's shape
/// (`indices` before it for int64 inputs).
macro_rules! models {
    ($($name:ident: $architecture:ty $(= $value:expr)?, $(#[$indices:ident])? $input:ty;)+) => {
        $(
            #[test]
            fn $name() {
                models!(@check $name, $architecture $(= $value)?, $($indices)? $input, f32);
                models!(@check $name, $architecture $(= $value)?, $($indices)? $input, f64);
            }
        )+

        /// Every model the generator wrote has a test here.
        #[test]
        fn every_fixture_model_is_checked() {
            let known = [$(stringify!($name)),+];
            for entry in std::fs::read_dir(models_dir()).unwrap() {
                let file = entry.unwrap().file_name().into_string().unwrap();
                let model = file.rsplit_once('_').map(|(model, _)| model).unwrap_or(&file);
                // `attention_` fixtures are checked by tests/attention_models.rs.
                assert!(known.contains(&model) || model.starts_with("attention_"), "no test for the fixture model {model} ({file})");
            }
        }
    };
    (@check $name:ident, $architecture:ty, $input:ty, $dtype:ty) => {
        check::<$architecture, $input, _, $dtype>(stringify!($name), <$architecture>::default())
    };
    (@check $name:ident, $architecture:ty = $value:expr, $input:ty, $dtype:ty) => {
        check::<$architecture, $input, _, $dtype>(stringify!($name), $value)
    };
    (@check $name:ident, $architecture:ty, train $input:ty, $dtype:ty) => {
        check_train::<$architecture, $input, _, $dtype>(stringify!($name), <$architecture>::default())
    };
    (@check $name:ident, $architecture:ty = $value:expr, train $input:ty, $dtype:ty) => {
        check_train::<$architecture, $input, _, $dtype>(stringify!($name), $value)
    };
    (@check $name:ident, $architecture:ty, indices $input:ty, $dtype:ty) => {
        check_indices::<$architecture, $input, _, $dtype>(stringify!($name), <$architecture>::default())
    };
    (@check $name:ident, $architecture:ty = $value:expr, indices $input:ty, $dtype:ty) => {
        check_indices::<$architecture, $input, _, $dtype>(stringify!($name), $value)
    };
}

models! {
    mlp: (Linear<4, 8>, ReLU, Linear<8, 3>), Rank2<5, 4>;
    linear_no_bias: LinearNoBias<6, 2>, Rank2<3, 6>;
    linear_sequence: (Linear<4, 3>,), Rank3<2, 5, 4>;
    linear_one_sample: (Linear<5, 2>, Tanh), Rank1<5>;
    activations: (
        (Linear<3, 6>, GELU),
        (Linear<6, 6>, Tanh),
        (Linear<6, 6>, SiLU),
        (Linear<6, 4>, LeakyReLU),
        (Linear<4, 4>, Sigmoid),
        (Linear<4, 4>, GELUTanh),
        (Linear<4, 3>, LogSoftmax),
    ), Rank2<7, 3>;
    nested_softmax: (Linear<3, 4>, (Linear<4, 4>, ReLU), Linear<4, 5>, Softmax), Rank2<2, 3>;
    layer_norm: (Linear<4, 6>, LayerNorm<6>), Rank3<2, 5, 4>;
    layer_norm_no_bias: (Linear<5, 5>, LayerNorm<5>) = (Linear::default(), LayerNorm { bias: false, ..Default::default() }), Rank2<3, 5>;
    layer_norm_no_affine: (Linear<3, 4>, LayerNorm<4>) = (Linear::default(), LayerNorm { elementwise_affine: false, ..Default::default() }), Rank1<3>;
    rms_norm: (Linear<4, 6>, RMSNorm<6>), Rank3<2, 3, 4>;
    rms_norm_eps: (Linear<4, 6>, RMSNorm<6>) = (Linear::default(), RMSNorm { eps: Some(1e-3), ..Default::default() }), Rank2<5, 4>;
    embedding: (Embedding<10, 4>, Linear<4, 3>) = (Embedding::default().padding_idx(0), Linear::default()), #[indices] Rank2<2, 5>;
    embedding_plain: Embedding<7, 3>, #[indices] Rank1<6>;
    batch_norm: (Linear<4, 6>, BatchNorm1D<6>), Rank2<5, 4>;
    batch_norm_sequence: BatchNorm1D<3>, Rank3<2, 3, 5>;
    train_batch_norm: (Linear<4, 6>, BatchNorm1D<6>), #[train] Rank2<8, 4>;
    train_batch_norm_cumulative: BatchNorm1D<3> = BatchNorm1D { momentum: None, ..Default::default() }, #[train] Rank3<4, 3, 5>;
    train_batch_norm_no_affine: (Linear<3, 4>, BatchNorm1D<4>) = (Linear::default(), BatchNorm1D { affine: false, momentum: Some(0.3), ..Default::default() }), #[train] Rank2<6, 3>;
    conv_net: (Conv2D<2, 4, 3>, ReLU, Conv2D<4, 6, 3, 2, 1>, Flatten, Linear<72, 5>), Rank4<2, 2, 9, 8>;
    conv_grouped: Conv2DConfig<Const<4>, Const<8>> = Conv2DConfig::new(Const, Const, (3, 2)).padding(Padding::Same).dilation(2).groups(2), Rank4<2, 4, 7, 6>;
    conv_depthwise: Conv2DConfig<Const<3>, Const<3>> = Conv2DConfig::new(Const, Const, 3).padding(1).groups(3).without_bias(), Rank4<1, 3, 5, 6>;
    conv_one_image: Conv2DConfig<Const<2>, Const<3>> = Conv2DConfig::new(Const, Const, (2, 3)).stride((2, 1)), Rank3<2, 7, 5>;
    batch_norm2d: (Conv2D<2, 3, 3>, BatchNorm2D<3>), Rank4<2, 2, 6, 5>;
    train_batch_norm2d: (Conv2DConfig<Const<2>, Const<3>>, BatchNorm2D<3>, ReLU) = (Conv2DConfig::new(Const, Const, 3).without_bias(), BatchNorm2D::default(), ReLU), #[train] Rank4<3, 2, 6, 5>;
    train_batch_norm2d_no_affine: BatchNorm2D<3> = BatchNorm2D { affine: false, momentum: Some(0.2), ..Default::default() }, #[train] Rank4<2, 3, 4, 3>;
    group_norm: (Conv2D<2, 6, 1>, GroupNorm<3, 6>), Rank4<2, 2, 5, 4>;
    group_norm_sequence: GroupNormConfig<Const<4>> = GroupNormConfig { eps: 1e-3, ..GroupNormConfig::new(2, Const) }, Rank3<3, 4, 5>;
    conv1d_net: (Conv1D<3, 4, 3, 2, 1>, ReLU, Conv1D<4, 2, 2, 1, 0, 2>), Rank3<2, 3, 9>;
    conv_transpose: ConvTranspose2DConfig<Const<4>, Const<3>> = ConvTranspose2DConfig::new(Const, Const, 3).options(ConvTranspose2dOptions::default().stride(2).padding(1).output_padding(1)), Rank4<2, 4, 4, 5>;
    conv_transpose_grouped: ConvTranspose2DConfig<Const<4>, Const<6>> = ConvTranspose2DConfig::new(Const, Const, (2, 3)).options(ConvTranspose2dOptions::default().groups(2).dilation((1, 2))).without_bias(), Rank4<1, 4, 3, 3>;
    upsample_nearest: (Conv2D<2, 3, 1>, Upsample2D), Rank4<2, 2, 3, 4>;
    upsample_bilinear: (Conv2D<2, 2, 1>, Upsample2D) = (Conv2D, Upsample2D::bilinear([5, 7], false)), Rank4<1, 2, 3, 4>;
    lenet: (Conv2D<1, 8, 3>, ReLU, MaxPool2D<2>, Conv2D<8, 16, 3>, ReLU, MaxPool2D<2>, Flatten, Linear<400, 10>), Rank4<2, 1, 28, 28>;
    pools: (Conv2D<2, 3, 1>, MaxPool2D<3, 2, 1>, AvgPool2DConfig, AvgPool2DConfig, AdaptiveAvgPool2D<2, 3>) = (
        Conv2D,
        MaxPool2D,
        AvgPool2DConfig::new(2).options(Pool2dOptions::default().stride(1).padding(1).count_include_pad(false)),
        AvgPool2DConfig::new((2, 1)).options(Pool2dOptions::default().ceil_mode(true)),
        AdaptiveAvgPool2D,
    ), Rank4<2, 2, 9, 8>;
    max_pool_ceil_dilated: MaxPool2DConfig = MaxPool2DConfig::new(2).options(Pool2dOptions::default().dilation(2).ceil_mode(true)), Rank4<1, 2, 7, 8>;
    global_pools: (Conv2D<2, 4, 3>, AdaptiveAvgPool2D<1>, Flatten, Linear<4, 3>), Rank4<2, 2, 6, 5>;
    global_avg_pool: (Conv2D<2, 4, 3>, GlobalAvgPool2D), Rank4<2, 2, 6, 5>;
    global_max_pool: (Conv2D<2, 4, 3>, GlobalMaxPool2D), Rank4<2, 2, 6, 5>;
    group_norm_no_affine: GroupNormConfig<Const<3>> = GroupNormConfig { affine: false, ..GroupNormConfig::new(1, Const) }, Rank2<2, 3>;
}
