//! PyTorch's attention and transformer modules (`xtask/parity/models_attention.py`),
//! their `state_dict`s loaded strictly into the matching ferrograd architectures: the
//! outputs, every input's gradient and every parameter's gradient match PyTorch's in
//! f32 and f64, masks included. Also the errors a wrong head count or mask shape gives,
//! and dropout acting in training only.

mod model_fixtures;

use model_fixtures::{GradientsByName, Tolerance, models_dir, npz};

use ferrograd_device::Storage;
use ferrograd_nn::prelude::*;
use ferrograd_nn::transformer::TransformerKernels;
use ferrograd_nn::{
    Activation, AttentionMasks, DecoderMasks, MultiHeadAttentionConfig, TransformerConfig, TransformerEncoderConfig,
    TransformerEncoderLayerConfig, TransformerMasks,
};
use ferrograd_testing::{TestDevice, seeded_test_device};
use npz::{Array, Data};
use std::collections::BTreeMap;

/// ferrograd's values `got` against PyTorch's `expected`, element by element, within
/// the tolerance. In f32 the fixture also holds `reference`, the same computation in
/// f64 from the same f32 values: where ferrograd and PyTorch differ by more than the
/// tolerance, ferrograd passes if it is no further from that exact value than PyTorch's
/// own f32 result is (plus the tolerance). Attention's key-projection gradients are sums
/// whose terms cancel (their bias's gradient is exactly zero), so two correct f32
/// computations in different orders can differ there by more than the tolerance of
/// the small result, while both stay as close to the exact value.
fn assert_close<E: Tolerance>(what: &str, got: &[E], expected: &[E], reference: Option<&[f64]>) {
    assert_eq!(got.len(), expected.len(), "{what}: lengths differ");
    let tolerance = |x: f64| E::ATOL + E::RTOL * x.abs();
    for (i, (g, e)) in got.iter().zip(expected).enumerate() {
        let (g, e) = (g.to_f64(), e.to_f64());
        let as_accurate = reference.is_some_and(|r| (g - r[i]).abs() <= (e - r[i]).abs() + tolerance(r[i]));
        assert!(
            (g - e).abs() <= tolerance(e) || as_accurate,
            "{what}[{i}]: ferrograd {g}, PyTorch {e}, exact {:?}",
            reference.map(|r| r[i])
        );
    }
}

/// The fixture's `reference.<key>` (f32 fixtures only), in f64.
fn reference(io: &BTreeMap<String, Array>, key: &str) -> Option<Vec<f64>> {
    io.get(&format!("reference.{key}")).map(|array| match &array.data {
        Data::F64(values) => values.clone(),
        other => panic!("expected f64 reference data, found {other:?}"),
    })
}

/// A batch of sequences of `M` features on the test's tape.
type Sequences<M, E> = Tensor<(usize, usize, M), E, TestDevice, OwnedTape<E, TestDevice>>;

/// What a case's forward gives: the output and, for attention, the averaged weights.
type Outputs<M, E> = (Sequences<M, E>, Option<Sequences<usize, E>>);

/// A fixture's arrays, and its masks as tensors.
struct Fixture<'a> {
    name: &'a str,
    dev: TestDevice,
    io: BTreeMap<String, Array>,
}

impl Fixture<'_> {
    fn mask_array(&self, key: &str) -> &Array {
        self.io
            .get(&format!("mask.{key}"))
            .unwrap_or_else(|| panic!("{}: no mask {key}", self.name))
    }

    /// The boolean mask `mask.<key>` (true = blocked).
    fn blocked(&self, key: &str) -> Tensor<(usize, usize), bool, TestDevice> {
        let array = self.mask_array(key);
        let Data::Bool(values) = &array.data else {
            panic!("{}: mask {key} is not bool", self.name)
        };
        self.dev
            .tensor_from_vec(values.clone(), (array.shape[0], array.shape[1]))
    }

    /// The additive mask `mask.<key>`.
    fn additive<E: Tolerance>(&self, key: &str) -> Tensor<(usize, usize), E, TestDevice>
    where
        TestDevice: Storage<E>,
    {
        let array = self.mask_array(key);
        self.dev
            .tensor_from_vec(E::values(array), (array.shape[0], array.shape[1]))
    }
}

/// The name of input `i` in a fixture, and of its gradient.
fn input_key(prefix: &str, i: usize) -> String {
    match i {
        0 => prefix.to_string(),
        i => format!("{prefix}{i}"),
    }
}

/// Loads `<name>_<dtype>.state.npz` strictly into a fresh `A`, runs `forward` on the
/// fixture's inputs (all traced on one tape), and compares the output, the averaged
/// attention weights where the fixture has them, every input's gradient and every
/// parameter's gradient with PyTorch's.
fn check<E, A, M>(
    name: &str,
    architecture: A,
    forward: impl FnOnce(&A::Built, Vec<Sequences<M, E>>, &Fixture<'_>) -> Result<Outputs<M, E>, Error>,
) where
    M: Dim,
    E: Tolerance,
    A: BuildOnDevice<E, TestDevice>,
    TestDevice: TransformerKernels<E>,
{
    let dtype = if E::BYTES == 4 { "f32" } else { "f64" };
    let dev = seeded_test_device(0);
    let base = models_dir().join(format!("{name}_{dtype}"));
    let mut model = dev.build_module_with::<A, E>(architecture);
    model
        .load(base.with_extension("state.npz"))
        .unwrap_or_else(|e| panic!("{name} {dtype}: {e}"));
    let io = npz::read_npz(&base.with_extension("io.npz")).unwrap_or_else(|e| panic!("{name} {dtype}: {e}"));
    let fixture = Fixture { name, dev, io };
    let io = &fixture.io;

    let inputs: Vec<Tensor<(usize, usize, M), E, TestDevice>> = (0..)
        .map(|i| input_key("input", i))
        .take_while(|key| io.contains_key(key))
        .map(|key| {
            let shape = &io[&key].shape;
            let features = M::from_size(shape[2]).unwrap_or_else(|| panic!("{name}: {key} has {} features", shape[2]));
            fixture
                .dev
                .tensor_from_vec(E::values(&io[&key]), (shape[0], shape[1], features))
        })
        .collect();
    let mut grads = model.try_alloc_grads().unwrap();
    for x in &inputs {
        grads.try_alloc_for(x).unwrap();
    }
    // Every input on one tape: the first starts it, the others join it as leaves.
    let (first, tape) = inputs[0].clone().traced(grads).split_tape();
    let mut traced = vec![first.put_tape(tape.clone())];
    traced.extend(inputs[1..].iter().map(|x| x.clone().put_tape(tape.clone())));
    drop(tape);

    let (y, weights) = forward(&model, traced, &fixture).unwrap_or_else(|e| panic!("{name} {dtype}: {e}"));
    assert_close(
        &format!("{name} {dtype} output"),
        &y.as_vec(),
        &E::values(&io["output"]),
        reference(io, "output").as_deref(),
    );
    match (weights, io.get("weights")) {
        (Some(weights), Some(expected)) => assert_close(
            &format!("{name} {dtype} weights"),
            &weights.as_vec(),
            &E::values(expected),
            None,
        ),
        (None, None) => {}
        (got, expected) => panic!(
            "{name} {dtype}: weights computed {}, in the fixture {}",
            got.is_some(),
            expected.is_some()
        ),
    }

    let upstream = fixture.dev.tensor_from_vec(E::values(&io["grad_output"]), *y.shape());
    let grads = (y * upstream).flatten().sum::<Rank0, _>().backward();
    for (i, x) in inputs.iter().enumerate() {
        let key = input_key("grad_input", i);
        assert_close(
            &format!("{name} {dtype} gradient of input {i}"),
            &grads.get(x).as_vec(),
            &E::values(&io[&key]),
            reference(io, &key).as_deref(),
        );
    }

    let mut by_name = GradientsByName(&grads, BTreeMap::new());
    model.visit_parameters(&mut by_name).unwrap();
    let mut expected: Vec<&str> = io.keys().filter_map(|k| k.strip_prefix("grad.")).collect();
    expected.sort();
    assert_eq!(
        by_name.1.keys().map(String::as_str).collect::<Vec<_>>(),
        expected,
        "{name} {dtype}: parameters"
    );
    for (key, gradient) in &by_name.1 {
        assert_close(
            &format!("{name} {dtype} gradient of {key}"),
            gradient,
            &E::values(&io[&format!("grad.{key}")]),
            reference(io, &format!("grad.{key}")).as_deref(),
        );
    }
}

/// One test per fixture, in f32 and f64: the architecture, and the forward pass on the
/// traced inputs `x` with the fixture `f` at hand for its masks.
macro_rules! fixtures {
    ($($name:ident: $architecture:expr, $features:ty, |$model:ident, $x:ident, $f:ident| $forward:expr;)+) => {
        $(
            #[test]
            fn $name() {
                fn run<E: Tolerance>()
                where
                    TestDevice: TransformerKernels<E>,
                {
                    check::<E, _, $features>(stringify!($name), $architecture, |$model, $x, $f| {
                        let _ = &$f;
                        $forward
                    });
                }
                run::<f32>();
                run::<f64>();
            }
        )+

        /// Names of the fixtures these tests cover; `tests/models.rs` leaves every
        /// `attention_` fixture to this file.
        const COVERED: &[&str] = &[$(stringify!($name)),+];
    };
}

/// Runs `attention` on `(q, k, v)` with `masks` twice: for the output (the graph the
/// gradients come from) and for the averaged weights.
fn attention_with_weights<E: Tolerance>(
    attention: &ferrograd_nn::built::MultiHeadAttention<Const<8>, Const<2>, E, TestDevice>,
    (q, k, v): (Sequences<Const<8>, E>, Sequences<Const<8>, E>, Sequences<Const<8>, E>),
    masks: &AttentionMasks<E, TestDevice>,
) -> Result<Outputs<Const<8>, E>, Error>
where
    TestDevice: TransformerKernels<E>,
{
    let (output, weights) = attention.try_forward_with_weights(q, k, v, masks)?;
    Ok((output, Some(weights)))
}

fixtures! {
    attention_self: MultiHeadAttention::<8, 2>::default(), Const<8>, |m, x, f| {
        // Self-attention as a one-input module; the weights from a second call.
        let (_, weights) = m.try_forward_with_weights(x[0].clone(), x[0].clone(), x[0].clone(), &AttentionMasks::new())?;
        Ok((m.try_forward(x[0].clone())?, Some(weights)))
    };
    attention_cross: MultiHeadAttention::<8, 4>::default(), Const<8>, |m, x, f| {
        let (_, weights) = m.try_forward_with_weights(x[0].clone(), x[1].clone(), x[2].clone(), &AttentionMasks::new())?;
        Ok((m.try_forward((x[0].clone(), x[1].clone(), x[2].clone()))?, Some(weights)))
    };
    attention_key_padding: MultiHeadAttention::<8, 2>::default(), Const<8>, |m, x, f| {
        let masks = AttentionMasks::new().key_padding(f.blocked("key_padding"));
        attention_with_weights(m, (x[0].clone(), x[0].clone(), x[0].clone()), &masks)
    };
    attention_causal: MultiHeadAttention::<6, 3>::default(), Const<6>, |m, x, f| {
        let (output, weights) =
            m.try_forward_with_weights(x[0].clone(), x[0].clone(), x[0].clone(), &AttentionMasks::new().causal())?;
        Ok((output, Some(weights)))
    };
    attention_bool_mask: MultiHeadAttention::<4, 2>::default(), Const<4>, |m, x, f| {
        let masks = AttentionMasks::new().blocked(f.blocked("attention"));
        let (output, weights) = m.try_forward_with_weights(x[0].clone(), x[0].clone(), x[0].clone(), &masks)?;
        Ok((output, Some(weights)))
    };
    attention_float_mask: MultiHeadAttentionConfig::new(8, 2), usize, |m, x, f| {
        // Run-time sizes; the memory is both key and value.
        let masks = AttentionMasks::new()
            .additive(f.additive("attention"))
            .key_padding(f.blocked("key_padding"));
        let (output, weights) = m.try_forward_with_weights(x[0].clone(), x[1].clone(), x[1].clone(), &masks)?;
        Ok((output, Some(weights)))
    };
    attention_encoder_post_relu: TransformerEncoderLayer::<8, 2, 16>::default(), Const<8>, |m, x, f| {
        Ok((m.try_forward(x[0].clone())?, None))
    };
    attention_encoder_pre_gelu: TransformerEncoderLayerConfig {
        norm_first: true,
        activation: Activation::Gelu,
        ..TransformerEncoderLayer::<8, 2, 16>::default()
    }, Const<8>, |m, x, f| {
        let masks = AttentionMasks::new().key_padding(f.blocked("key_padding"));
        Ok((m.try_forward_masked(x[0].clone(), &masks)?, None))
    };
    attention_encoder_post_gelu_causal: TransformerEncoderLayerConfig {
        activation: Activation::Gelu,
        layer_norm_eps: 1e-3,
        ..TransformerEncoderLayerConfig::new(8, 2, 16)
    }, usize, |m, x, f| {
        Ok((m.try_forward_masked(x[0].clone(), &AttentionMasks::new().causal())?, None))
    };
    attention_encoder_pre_relu_no_bias: TransformerEncoderLayerConfig {
        norm_first: true,
        bias: false,
        ..TransformerEncoderLayer::<8, 2, 16>::default()
    }, Const<8>, |m, x, f| {
        Ok((m.try_forward(x[0].clone())?, None))
    };
    attention_decoder_post_relu: TransformerDecoderLayer::<8, 2, 16>::default(), Const<8>, |m, x, f| {
        let masks = DecoderMasks {
            tgt: AttentionMasks::new().causal(),
            memory: AttentionMasks::new().key_padding(f.blocked("memory_key_padding")),
        };
        Ok((m.try_forward_masked(x[0].clone(), x[1].clone(), &masks)?, None))
    };
    attention_decoder_pre_gelu: ferrograd_nn::TransformerDecoderLayerConfig {
        norm_first: true,
        activation: Activation::Gelu,
        ..TransformerDecoderLayer::<8, 2, 16>::default()
    }, Const<8>, |m, x, f| {
        let masks = DecoderMasks {
            tgt: AttentionMasks::new().key_padding(f.blocked("tgt_key_padding")),
            memory: AttentionMasks::new(),
        };
        Ok((m.try_forward_masked(x[0].clone(), x[1].clone(), &masks)?, None))
    };
    attention_encoder_stack: TransformerEncoder::<8, 2, 16, 2>::default().with_norm(), Const<8>, |m, x, f| {
        let masks = AttentionMasks::new().key_padding(f.blocked("key_padding"));
        Ok((m.try_forward_masked(x[0].clone(), &masks)?, None))
    };
    attention_transformer: Transformer::<8, 2, 2, 1, 16>::default(), Const<8>, |m, x, f| {
        let padding = f.blocked("src_key_padding");
        let masks = TransformerMasks {
            src: AttentionMasks::new().key_padding(padding.clone()),
            tgt: AttentionMasks::new().causal(),
            memory: AttentionMasks::new().key_padding(padding),
        };
        Ok((m.try_forward_masked(x[0].clone(), x[1].clone(), &masks)?, None))
    };
}

/// Every `attention_` fixture the generator wrote has a test here.
#[test]
fn every_attention_fixture_is_checked() {
    let mut found = 0;
    for entry in std::fs::read_dir(models_dir()).unwrap() {
        let file = entry.unwrap().file_name().into_string().unwrap();
        let model = file.rsplit_once('_').map(|(model, _)| model).unwrap_or(&file);
        if model.starts_with("attention_") {
            assert!(COVERED.contains(&model), "no test for the fixture {model} ({file})");
            found += 1;
        }
    }
    // Two dtypes, a state and an io file each.
    assert_eq!(found, COVERED.len() * 4);
}

#[test]
fn heads_that_do_not_divide_the_embedding_are_an_error() {
    let dev = seeded_test_device(0);
    let error = dev
        .try_build_module_with::<_, f32>(MultiHeadAttentionConfig::new(10, 4))
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        Error::InvalidArgument {
            op: "MultiHeadAttention",
            message: "embed_dim 10 is not divisible by num_heads 4".into()
        }
        .to_string()
    );
    let layer = TransformerEncoderLayerConfig::new(6, 4, 8);
    assert!(dev.try_build_module_with::<_, f32>(layer).is_err());
    assert!(
        dev.try_build_module_with::<_, f32>(MultiHeadAttentionConfig::new(8, 0))
            .is_err()
    );
}

#[test]
fn mask_shapes_that_do_not_fit_are_errors_naming_them() {
    let dev = seeded_test_device(0);
    let mha = dev.build_module::<MultiHeadAttention<4, 2>, f64>();
    let q: Tensor<Rank3<2, 3, 4>, f64, TestDevice> = dev.sample_normal();
    let kv: Tensor<Rank3<2, 5, 4>, f64, TestDevice> = dev.sample_normal();

    let padding: Tensor<Rank2<2, 3>, bool, TestDevice> = dev.zeros();
    let error = mha
        .try_forward_masked(
            q.clone(),
            kv.clone(),
            kv.clone(),
            &AttentionMasks::new().key_padding(padding),
        )
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("key padding mask (2, 3)") && error.contains("(batch, key length) = (2, 5)"),
        "{error}"
    );

    let blocked: Tensor<Rank2<5, 3>, bool, TestDevice> = dev.zeros();
    let error = mha
        .try_forward_masked(
            q.clone(),
            kv.clone(),
            kv.clone(),
            &AttentionMasks::new().blocked(blocked),
        )
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("attention mask (5, 3)") && error.contains("(query length, key length) = (3, 5)"),
        "{error}"
    );

    let additive: Tensor<Rank2<3, 4>, f64, TestDevice> = dev.zeros();
    let error = mha
        .try_forward_masked(q.clone(), kv.clone(), kv, &AttentionMasks::new().additive(additive))
        .unwrap_err()
        .to_string();
    assert!(error.contains("attention mask (3, 4)"), "{error}");

    // Keys and values of different lengths: a compile error when the lengths are
    // const, so here they are run-time sizes.
    type RuntimeLength = (Const<2>, usize, Const<4>);
    let short = dev.sample_normal::<Rank3<2, 4, 4>>().realize::<RuntimeLength>();
    let long = dev.sample_normal::<Rank3<2, 5, 4>>().realize::<RuntimeLength>();
    let error = mha.try_forward((q, short, long)).unwrap_err().to_string();
    assert!(
        error.contains("key (2, 4, 4)") && error.contains("value (2, 5, 4)"),
        "{error}"
    );
}

#[test]
fn dropout_acts_in_training_only() {
    let dev = seeded_test_device(0);
    let mut mha = dev.build_module_with::<_, f64>(MultiHeadAttention::<8, 2>::default().with_dropout(0.5));
    let x: Tensor<Rank3<2, 6, 8>, f64, TestDevice> = dev.sample_normal();
    // Inference is deterministic, and equals the same attention without dropout.
    let eval = mha.forward(x.clone()).as_vec();
    assert_eq!(mha.forward(x.clone()).as_vec(), eval);
    let mut without = mha.clone();
    without.dropout = 0.0;
    assert_eq!(without.forward_mut(x.clone()).as_vec(), eval);
    // Training drops weights, differently each call.
    let first = mha.forward_mut(x.clone()).as_vec();
    let second = mha.forward_mut(x.clone()).as_vec();
    assert_ne!(first, eval);
    assert_ne!(first, second);

    // The same for a whole layer, whose default dropout is PyTorch's 0.1.
    let mut layer = dev.build_module::<TransformerEncoderLayer<8, 2, 16>, f64>();
    let eval = layer.forward(x.clone()).as_vec();
    assert_eq!(layer.forward(x.clone()).as_vec(), eval);
    assert_ne!(layer.forward_mut(x.clone()).as_vec(), eval);
    let mut no_dropout = layer.clone();
    no_dropout.dropout = 0.0;
    no_dropout.self_attn.dropout = 0.0;
    assert_eq!(no_dropout.forward_mut(x).as_vec(), eval);
}

#[test]
fn attention_weights_are_probabilities_that_respect_the_masks() {
    let dev = seeded_test_device(3);
    let mha = dev.build_module::<MultiHeadAttention<4, 2>, f64>();
    let x: Tensor<Rank3<2, 4, 4>, f64, TestDevice> = dev.sample_normal();
    let padding = dev.tensor([[false, false, false, true], [false, true, false, false]]);
    let masks = AttentionMasks::new().key_padding(padding).causal();
    let (_, weights) = mha.try_forward_with_weights(x.clone(), x.clone(), x, &masks).unwrap();
    let weights = weights.array();
    for (b, rows) in weights.iter().enumerate() {
        for (i, row) in rows.iter().enumerate() {
            assert!((row.iter().sum::<f64>() - 1.0).abs() < 1e-12);
            for (j, &w) in row.iter().enumerate() {
                let blocked = j > i || (b == 0 && j == 3) || (b == 1 && j == 1);
                assert_eq!(w == 0.0, blocked, "batch {b}, query {i}, key {j}: {w}");
            }
        }
    }
}

#[test]
fn one_sequence_is_a_batch_of_one() {
    let dev = seeded_test_device(1);
    let mha = dev.build_module::<MultiHeadAttention<6, 3>, f64>();
    let x: Tensor<Rank2<5, 6>, f64, TestDevice> = dev.sample_normal();
    let memory: Tensor<Rank2<3, 6>, f64, TestDevice> = dev.sample_normal();
    let batched = mha.forward(x.clone().unsqueeze::<0>()).as_vec();
    assert_eq!(mha.forward(x.clone()).as_vec(), batched);
    let cross = mha.forward((x.clone(), memory.clone(), memory.clone())).as_vec();
    let cross_batched = mha
        .forward((
            x.unsqueeze::<0>(),
            memory.clone().unsqueeze::<0>(),
            memory.unsqueeze::<0>(),
        ))
        .as_vec();
    assert_eq!(cross, cross_batched);
}

#[test]
fn parameters_are_named_and_initialised_as_pytorch() {
    let dev = seeded_test_device(0);
    let mha = dev.build_module::<MultiHeadAttention<8, 2>, f32>();
    // xavier_uniform_ on (24, 8): U(±√(6 / 32)).
    let bound = (6.0f32 / 32.0).sqrt();
    let weight = mha.in_proj_weight.as_vec();
    assert!(weight.iter().all(|w| w.abs() <= bound));
    assert!(weight.iter().any(|w| w.abs() > 0.9 * bound));
    assert!(mha.in_proj_bias.as_ref().unwrap().as_vec().iter().all(|&b| b == 0.0));
    assert!(mha.out_proj.bias.as_ref().unwrap().as_vec().iter().all(|&b| b == 0.0));
    // out_proj.weight as nn.Linear(8, 8): U(±1/√8).
    assert!(
        mha.out_proj
            .weight
            .as_vec()
            .iter()
            .all(|w| w.abs() <= 1.0 / 8f32.sqrt())
    );

    let transformer = dev.build_module_with::<_, f32>(TransformerConfig::new(8, 2, 1, 1, 16));
    let names = transformer.parameter_names().unwrap();
    assert_eq!(names.len(), 12 + 2 + 18 + 2);
    assert_eq!(names[0], "encoder.layers.0.self_attn.in_proj_weight");
    assert!(names.contains(&"encoder.norm.weight".to_string()));
    assert!(names.contains(&"decoder.layers.0.multihead_attn.out_proj.bias".to_string()));
    assert_eq!(names.last().unwrap(), "decoder.norm.bias");
    // Every matrix Xavier-uniform: linear1.weight (16, 8) within √(6 / 24).
    let linear1 = transformer.encoder.layers[0].linear1.weight.as_vec();
    assert!(linear1.iter().all(|w| w.abs() <= (6.0f32 / 24.0).sqrt()));
    assert!(linear1.iter().any(|w| w.abs() > 1.0 / 8f32.sqrt()));

    let stack = dev.build_module_with::<_, f32>(TransformerEncoderConfig::new(
        TransformerEncoderLayerConfig::new(8, 2, 16),
        3,
    ));
    let names = stack.parameter_names().unwrap();
    assert_eq!(names.last().unwrap(), "layers.2.norm2.bias");
}
