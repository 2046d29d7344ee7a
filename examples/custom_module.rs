//! A model of your own: a struct whose fields are layers, made a module by hand.
//!
//! ```sh
//! cargo run --release --example custom_module
//! ```
//!
//! Three small impls make a struct a full module: `VisitParameters` (its parameters by
//! PyTorch's `state_dict` names: the field name, a dot, the layer's own names),
//! `Module` / `ModuleMut` (its forward pass, at inference and in training), and, for
//! `dev.build_module`, `BuildOnDevice` on a description of it free of device and dtype.
//! PyTorch's equivalent:
//!
//! ```python
//! class Classifier(nn.Module):
//!     def __init__(self):
//!         super().__init__()
//!         self.stem = nn.Linear(8, 32)
//!         self.body = nn.Sequential(nn.Linear(32, 32), nn.GELU(), nn.Linear(32, 32))
//!         self.norm = nn.LayerNorm(32)
//!         self.head = nn.Linear(32, 3)
//!     def forward(self, x):
//!         h = self.stem(x)
//!         return self.head(self.norm(h + self.body(h)))
//! ```

use ferrograd::autodiff::{MergeTapes, ParameterVisitor, ParameterVisitorMut, Prefixed};
use ferrograd::prelude::*;

type Body = (Linear<32, 32>, GELU, Linear<32, 32>);

/// The description: which layers, no tensors (what `dev.build_module` builds from).
#[derive(Default)]
struct ClassifierConfig;

/// The model: built layers, named as the fields are named.
struct Classifier {
    stem: Built<Linear<8, 32>, f32, Cpu>,
    body: Built<Body, f32, Cpu>,
    norm: Built<LayerNorm<32>, f32, Cpu>,
    head: Built<Linear<32, 3>, f32, Cpu>,
}

impl BuildOnDevice<f32, Cpu> for ClassifierConfig {
    type Built = Classifier;
    fn try_build_on_device(&self, dev: &Cpu) -> Result<Classifier, Error> {
        Ok(Classifier {
            stem: dev.try_build_module::<Linear<8, 32>, f32>()?,
            body: dev.try_build_module::<Body, f32>()?,
            norm: dev.try_build_module::<LayerNorm<32>, f32>()?,
            head: dev.try_build_module::<Linear<32, 3>, f32>()?,
        })
    }
}

/// The parameters, in the order and with the names of PyTorch's `state_dict`.
impl VisitParameters<f32, Cpu> for Classifier {
    fn visit_parameters<V: ParameterVisitor<f32, Cpu>>(&self, visitor: &mut V) -> Result<(), Error> {
        self.stem.visit_parameters(&mut Prefixed::new("stem", visitor))?;
        self.body.visit_parameters(&mut Prefixed::new("body", visitor))?;
        self.norm.visit_parameters(&mut Prefixed::new("norm", visitor))?;
        self.head.visit_parameters(&mut Prefixed::new("head", visitor))
    }
    fn visit_parameters_mut<V: ParameterVisitorMut<f32, Cpu>>(&mut self, visitor: &mut V) -> Result<(), Error> {
        self.stem.visit_parameters_mut(&mut Prefixed::new("stem", visitor))?;
        self.body.visit_parameters_mut(&mut Prefixed::new("body", visitor))?;
        self.norm.visit_parameters_mut(&mut Prefixed::new("norm", visitor))?;
        self.head.visit_parameters_mut(&mut Prefixed::new("head", visitor))
    }
}

/// The forward pass, for any batch size and any tape: `head(norm(h + body(h)))` with
/// `h = stem(x)`. Written once; `Module` (inference) and `ModuleMut` (training) share it.
impl<const B: usize, T> Module<Tensor<Rank2<B, 8>, f32, Cpu, T>> for Classifier
where
    T: Tape<f32, Cpu> + MergeTapes<T, Output = T>,
{
    type Output = Tensor<Rank2<B, 3>, f32, Cpu, T>;
    fn try_forward(&self, x: Tensor<Rank2<B, 8>, f32, Cpu, T>) -> Result<Self::Output, Error> {
        let h = self.stem.try_forward(x)?;
        let h = h.clone().try_add(self.body.try_forward(h)?)?;
        self.head.try_forward(self.norm.try_forward(h)?)
    }
}

impl<const B: usize, T> ModuleMut<Tensor<Rank2<B, 8>, f32, Cpu, T>> for Classifier
where
    T: Tape<f32, Cpu> + MergeTapes<T, Output = T>,
{
    type Output = Tensor<Rank2<B, 3>, f32, Cpu, T>;
    fn try_forward_mut(&mut self, x: Tensor<Rank2<B, 8>, f32, Cpu, T>) -> Result<Self::Output, Error> {
        // No dropout or batch norm inside: training runs the same forward pass.
        self.try_forward(x)
    }
}

fn main() -> Result<(), Error> {
    let dev = Cpu::seed_from_u64(0);
    let mut model = dev.build_module::<ClassifierConfig, f32>();
    println!("parameters ({} values):", model.num_parameters()?);
    for name in model.parameter_names()? {
        println!("  {name}");
    }

    // Three classes: the sign pattern of the first two inputs, roughly.
    let x: Tensor<Rank2<96, 8>, f32, Cpu> = dev.sample_normal();
    let labels: [usize; 96] = {
        let x = x.array();
        std::array::from_fn(|i| match (x[i][0] > 0.0, x[i][1] > 0.0) {
            (true, _) => 0,
            (false, true) => 1,
            (false, false) => 2,
        })
    };
    let y = dev.tensor(labels);

    let mut optimizer = AdamW::new(AdamWConfig {
        lr: 3e-3,
        ..Default::default()
    })?;
    let mut first = None;
    for step in 0..=200 {
        let grads = model.try_alloc_grads()?;
        let logits = model.forward_mut(x.clone().traced_input(grads));
        let loss = losses::cross_entropy(logits, &y, Reduction::Mean, Default::default());
        let value = loss.array();
        first.get_or_insert(value);
        if step % 50 == 0 {
            println!("step {step:3}: loss {value:.4}");
        }
        optimizer.step(&mut model, &loss.backward())?;
    }
    let predicted = model.forward(x).argmax::<Rank1<96>, _>().array();
    let correct = predicted.iter().zip(&labels).filter(|(p, l)| p == l).count();
    println!("training accuracy: {correct}/96");
    assert!(correct >= 90, "the model should fit its training set");
    Ok(())
}
