//! Building on autodiff from outside it, through its public API only, as the nn and
//! optim crates do: a differentiable op of our own (softsign, with its CPU kernel
//! written here), a module whose parameters are visited by name, and a tiny SGD that
//! updates the parameters in place. The op's gradient is checked against finite
//! differences in f64.
//!
//! CPU-only on purpose: the op's kernels read and write CPU buffers (slices), and the
//! SGD and the finite differences change parameters in place through them, so this
//! file names `Cpu` instead of ferrograd-testing's `Cpu` and runs on the CPU
//! whichever device the rest of the suite uses.

use ferrograd::autodiff::{BackwardContext, ParameterVisitor, ParameterVisitorMut, Prefixed};
use ferrograd::prelude::*;

/// `softsign(x) = x / (1 + |x|)`, whose derivative is `1 / (1 + |x|)²`.
fn softsign<S: Shape, T: Tape<f64, Cpu>>(x: Tensor<S, f64, Cpu, T>) -> Tensor<S, f64, Cpu, T> {
    let input = x.op_input();
    let (x, tape) = x.split_tape();
    let layout = *x.layout();
    let values: Vec<f64> = layout
        .offsets()
        .map(|offset| {
            let v = x.storage()[offset];
            v / (1.0 + v.abs())
        })
        .collect();
    let y = x.device().tensor_from_vec(values, *x.shape());
    // Backward reads the input, so the step keeps (a handle on) its buffer.
    let saved = x.shared_storage().clone();
    y.put_tape(tape)
        .record_op(&[input], move |ctx: &mut BackwardContext<'_, f64, Cpu>| {
            ctx.with_grad_output(|ctx, grad_output| {
                if let Some(grad) = ctx.grad_mut(0)? {
                    for (i, offset) in layout.offsets().enumerate() {
                        let denominator = 1.0 + saved[offset].abs();
                        grad[offset] += grad_output[i] / (denominator * denominator);
                    }
                }
                Ok(())
            })
        })
}

/// `softsign(x · weight + bias)`, with PyTorch-style parameter names.
struct Layer {
    weight: Tensor<Rank2<3, 2>, f64, Cpu>,
    bias: Tensor<Rank1<2>, f64, Cpu>,
}

impl Layer {
    fn forward<T: Tape<f64, Cpu>>(&self, x: Tensor<Rank2<4, 3>, f64, Cpu, T>) -> Tensor<Rank2<4, 2>, f64, Cpu, T> {
        softsign(x.matmul(self.weight.clone()) + self.bias.clone().broadcast::<Rank2<4, 2>, _>())
    }
}

impl VisitParameters<f64, Cpu> for Layer {
    fn visit_parameters<V: ParameterVisitor<f64, Cpu>>(&self, visitor: &mut V) -> Result<(), Error> {
        visitor.visit("weight", &self.weight)?;
        visitor.visit("bias", &self.bias)
    }
    fn visit_parameters_mut<V: ParameterVisitorMut<f64, Cpu>>(&mut self, visitor: &mut V) -> Result<(), Error> {
        visitor.visit_mut("weight", &mut self.weight)?;
        visitor.visit_mut("bias", &mut self.bias)
    }
}

/// A model holding a layer under the name `layer` and a parameter the loss never uses.
struct Model {
    layer: Layer,
    unused: Tensor<Rank1<2>, f64, Cpu>,
}

impl VisitParameters<f64, Cpu> for Model {
    fn visit_parameters<V: ParameterVisitor<f64, Cpu>>(&self, visitor: &mut V) -> Result<(), Error> {
        self.layer.visit_parameters(&mut Prefixed::new("layer", visitor))?;
        visitor.visit("unused", &self.unused)
    }
    fn visit_parameters_mut<V: ParameterVisitorMut<f64, Cpu>>(&mut self, visitor: &mut V) -> Result<(), Error> {
        self.layer.visit_parameters_mut(&mut Prefixed::new("layer", visitor))?;
        visitor.visit_mut("unused", &mut self.unused)
    }
}

/// Plain SGD: `p ← p − lr · ∂loss/∂p`, in place, through the visitor.
struct Sgd<'a> {
    lr: f64,
    grads: &'a Gradients<f64, Cpu>,
}

impl ParameterVisitorMut<f64, Cpu> for Sgd<'_> {
    fn visit_mut<S: Shape>(&mut self, name: &str, parameter: &mut Tensor<S, f64, Cpu>) -> Result<(), Error> {
        let grad = self.grads.try_grad(parameter).map_err(|_| Error::MissingGradient {
            tensor: format!("parameter `{name}`"),
        })?;
        for (p, g) in parameter.storage_mut().iter_mut().zip(grad.iter()) {
            *p -= self.lr * g;
        }
        Ok(())
    }
}

fn input() -> Tensor<Rank2<4, 3>, f64, Cpu> {
    Cpu::default().tensor([[0.5, -1.2, 2.0], [1.5, 0.3, -0.7], [-0.4, 0.9, 0.1], [2.2, -0.6, 1.3]])
}

fn layer() -> Layer {
    let dev = Cpu::default();
    Layer {
        weight: dev.tensor([[0.3, -0.8], [1.1, 0.25], [-0.5, 0.7]]),
        bias: dev.tensor([0.1, -0.2]),
    }
}

/// The loss, weighted so that every output element's gradient differs.
fn loss<T: Tape<f64, Cpu>>(layer: &Layer, x: Tensor<Rank2<4, 3>, f64, Cpu, T>) -> Tensor<Rank0, f64, Cpu, T> {
    let weights: Tensor<Rank2<4, 2>, f64, Cpu> =
        Cpu::default().tensor([[1.0, -2.0], [0.5, 3.0], [-1.5, 0.25], [2.0, -0.75]]);
    (layer.forward(x) * weights).sum()
}

/// Central differences of the loss with respect to every element of one parameter.
fn numerical_gradient(layer: &mut Layer, pick: fn(&mut Layer) -> &mut [f64]) -> Vec<f64> {
    let h = 1e-6;
    let n = pick(layer).len();
    (0..n)
        .map(|i| {
            let original = pick(layer)[i];
            pick(layer)[i] = original + h;
            let up = loss(layer, input()).array();
            pick(layer)[i] = original - h;
            let down = loss(layer, input()).array();
            pick(layer)[i] = original;
            (up - down) / (2.0 * h)
        })
        .collect()
}

#[test]
fn a_custom_op_and_its_parameters_have_the_finite_difference_gradients() {
    let mut layer = layer();
    let grads = layer.try_alloc_grads().unwrap();
    let grads = loss(&layer, input().traced(grads)).backward();
    let analytic_weight = grads.try_grad(&layer.weight).unwrap().to_vec();
    let analytic_bias = grads.try_grad(&layer.bias).unwrap().to_vec();
    let numerical_weight = numerical_gradient(&mut layer, |l| &mut l.weight.storage_mut()[..]);
    let numerical_bias = numerical_gradient(&mut layer, |l| &mut l.bias.storage_mut()[..]);
    for (what, analytic, numerical) in [
        ("weight", analytic_weight, numerical_weight),
        ("bias", analytic_bias, numerical_bias),
    ] {
        for (a, n) in analytic.iter().zip(&numerical) {
            assert!(
                (a - n).abs() <= 1e-7 * (1.0 + n.abs()),
                "{what}: analytic {a}, numerical {n}"
            );
        }
    }
}

#[test]
fn sgd_updates_parameters_in_place_and_the_loss_falls() {
    let mut layer = layer();
    let ids = (layer.weight.id(), layer.bias.id());
    let before = loss(&layer, input()).array();
    let lr = 0.05;
    let mut last = before;
    for _ in 0..5 {
        let grads = loss(&layer, input().traced(layer.try_alloc_grads().unwrap())).backward();
        let expected: Vec<f64> = layer
            .weight
            .as_vec()
            .iter()
            .zip(grads.try_grad(&layer.weight).unwrap().iter())
            .map(|(p, g)| p - lr * g)
            .collect();
        layer.visit_parameters_mut(&mut Sgd { lr, grads: &grads }).unwrap();
        assert_eq!(layer.weight.as_vec(), expected, "p ← p − lr·g, element by element");
        let now = loss(&layer, input()).array();
        assert!(
            now < last,
            "a small step down the gradient lowers the loss: {last} → {now}"
        );
        last = now;
    }
    assert_eq!(
        (layer.weight.id(), layer.bias.id()),
        ids,
        "updates keep the parameters' ids"
    );
}

#[test]
fn a_parameter_without_a_gradient_is_an_error_that_names_it() {
    let dev = Cpu::default();
    let mut model = Model {
        layer: layer(),
        unused: dev.zeros(),
    };
    assert_eq!(
        model.parameter_names().unwrap(),
        ["layer.weight", "layer.bias", "unused"]
    );
    assert_eq!(model.num_parameters().unwrap(), 6 + 2 + 2);
    // Gradients allocated for the layer only: `unused` has none.
    let grads = loss(&model.layer, input().traced(model.layer.try_alloc_grads().unwrap())).backward();
    let error = model
        .visit_parameters_mut(&mut Sgd { lr: 0.1, grads: &grads })
        .unwrap_err();
    assert!(matches!(&error, Error::MissingGradient { tensor } if tensor == "parameter `unused`"));
    assert!(error.to_string().contains("unused"), "{error}");
}
