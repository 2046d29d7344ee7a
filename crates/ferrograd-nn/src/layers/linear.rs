//! `Linear`: `y = x·Wᵀ + b`, PyTorch's `nn.Linear`.

use crate::init::weight_and_bias;
use crate::module::{BuildOnDevice, Module, same_in_training, weight_and_bias};
use ferrograd_autodiff::{Tape, Tensor};
use ferrograd_device::ops::elementwise::{Add, BinaryKernel};
use ferrograd_device::ops::matmul::MatmulKernel;
use ferrograd_device::{Dtype, Error, SampleKernel, Storage};
use ferrograd_shapes::{Axes2, Axis, Const, Dim};

/// A fully connected layer from `I` to `O` features, with a bias: the architecture
/// `Linear<784, 128>` builds a [`built::Linear`] whose `weight`
/// is `(O, I)` and `bias` `(O,)`, as in PyTorch's `nn.Linear(784, 128)` (and its
/// `state_dict`), initialised as PyTorch does: both `U(-1/√I, 1/√I)`.
///
/// It takes `(I,)`, `(batch, I)` or `(batch, sequence, I)` and gives the same with
/// `O` features.
///
/// ```
/// use ferrograd_cpu::Cpu;
/// use ferrograd_nn::prelude::*;
///
/// let dev = Cpu::seed_from_u64(0);
/// let layer = dev.build_module::<Linear<3, 2>, f64>();
/// assert_eq!(layer.parameter_names()?, ["weight", "bias"]);
/// let x: Tensor<Rank2<4, 3>, f64, Cpu> = dev.ones();
/// let y = layer.forward(x);
/// // Each row is the sum of the weight's rows' entries plus the bias.
/// let (w, b) = (layer.weight.array(), layer.bias.as_ref().unwrap().array());
/// assert!((y.array()[0][1] - (w[1][0] + w[1][1] + w[1][2] + b[1])).abs() < 1e-12);
/// # Ok::<(), Error>(())
/// ```
pub type Linear<const I: usize, const O: usize> = LinearConfig<Const<I>, Const<O>>;

/// [`Linear`] without a bias (PyTorch's `nn.Linear(I, O, bias=False)`): only `weight`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LinearNoBias<const I: usize, const O: usize>;

/// A linear layer's sizes, as types (`Const<N>`, see [`Linear`]) or run-time values
/// (`usize`, from a configuration: `LinearConfig::new(784, 128)`), and whether it has a
/// bias.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LinearConfig<I: Dim, O: Dim> {
    /// Input features.
    pub inputs: I,
    /// Output features.
    pub outputs: O,
    /// Whether the layer adds a bias (PyTorch's default: it does).
    pub bias: bool,
}

impl<I: Dim, O: Dim> LinearConfig<I, O> {
    /// A layer from `inputs` to `outputs` features, with a bias.
    pub fn new(inputs: I, outputs: O) -> Self {
        Self {
            inputs,
            outputs,
            bias: true,
        }
    }

    /// The same layer without a bias.
    pub fn without_bias(self) -> Self {
        Self { bias: false, ..self }
    }
}

impl<const I: usize, const O: usize> Default for LinearConfig<Const<I>, Const<O>> {
    fn default() -> Self {
        Self::new(Const, Const)
    }
}

impl<I: Dim, O: Dim, E: Dtype, D: SampleKernel<E>> BuildOnDevice<E, D> for LinearConfig<I, O> {
    type Built = built::Linear<I, O, E, D>;

    fn try_build_on_device(&self, device: &D) -> Result<Self::Built, Error> {
        let (weight, bias) = weight_and_bias(device, &(self.outputs, self.inputs), self.outputs, self.bias)?;
        Ok(built::Linear { weight, bias })
    }
}

impl<const I: usize, const O: usize, E: Dtype, D: SampleKernel<E>> BuildOnDevice<E, D> for LinearNoBias<I, O> {
    type Built = built::Linear<Const<I>, Const<O>, E, D>;

    fn try_build_on_device(&self, device: &D) -> Result<Self::Built, Error> {
        Linear::<I, O>::default().without_bias().try_build_on_device(device)
    }
}

/// Built layers, the modules that hold tensors.
pub mod built {
    use super::*;

    /// A built [`Linear`](super::Linear) layer: `y = x·weightᵀ + bias`.
    #[derive(Clone, Debug)]
    pub struct Linear<I: Dim, O: Dim, E: Dtype, D: Storage<E>> {
        /// `(outputs, inputs)`, PyTorch's layout.
        pub weight: Tensor<(O, I), E, D>,
        /// `(outputs,)`, absent in a layer built without one.
        pub bias: Option<Tensor<(O,), E, D>>,
    }

    weight_and_bias!(Linear);

    /// One sample: `(I,)` → `(O,)`.
    impl<I: Dim, O: Dim, E: Dtype, D, T> Module<Tensor<(I,), E, D, T>> for Linear<I, O, E, D>
    where
        D: MatmulKernel<E> + BinaryKernel<Add, E>,
        T: Tape<E, D>,
    {
        type Output = Tensor<(O,), E, D, T>;

        fn try_forward(&self, input: Tensor<(I,), E, D, T>) -> Result<Self::Output, Error> {
            let output = input.try_matmul(self.weight.clone().t())?;
            match &self.bias {
                Some(bias) => output.try_add(bias.clone()),
                None => Ok(output),
            }
        }
    }

    /// A batch: `(B, I)` → `(B, O)`.
    impl<B: Dim, I: Dim, O: Dim, E: Dtype, D, T> Module<Tensor<(B, I), E, D, T>> for Linear<I, O, E, D>
    where
        D: MatmulKernel<E> + BinaryKernel<Add, E>,
        T: Tape<E, D>,
    {
        type Output = Tensor<(B, O), E, D, T>;

        fn try_forward(&self, input: Tensor<(B, I), E, D, T>) -> Result<Self::Output, Error> {
            let output = input.try_matmul(self.weight.clone().t())?;
            match &self.bias {
                Some(bias) => {
                    let shape = *output.shape();
                    output.try_add(bias.clone().try_broadcast_like::<_, Axis<0>>(&shape)?)
                }
                None => Ok(output),
            }
        }
    }

    /// A batch of sequences: `(B, S, I)` → `(B, S, O)`.
    impl<B: Dim, S: Dim, I: Dim, O: Dim, E: Dtype, D, T> Module<Tensor<(B, S, I), E, D, T>> for Linear<I, O, E, D>
    where
        D: MatmulKernel<E> + BinaryKernel<Add, E>,
        T: Tape<E, D>,
    {
        type Output = Tensor<(B, S, O), E, D, T>;

        fn try_forward(&self, input: Tensor<(B, S, I), E, D, T>) -> Result<Self::Output, Error> {
            let output = input.try_matmul(self.weight.clone().t())?;
            match &self.bias {
                Some(bias) => {
                    let shape = *output.shape();
                    output.try_add(bias.clone().try_broadcast_like::<_, Axes2<0, 1>>(&shape)?)
                }
                None => Ok(output),
            }
        }
    }

    /// Checks that a run-time feature count is the layer's `IN`, so that the input
    /// can be given the layer's type.
    fn check_features<const IN: usize>(features: usize) -> Result<(), Error> {
        if features != IN {
            return Err(Error::ShapeMismatch {
                op: "Linear",
                message: format!("the input has {features} features (its last axis), the layer takes {IN}"),
            });
        }
        Ok(())
    }

    /// Run-time features into a layer of const size, e.g. after `Flatten` (whose
    /// output size stable Rust cannot compute as a const): checked, then as `(B, IN)`.
    impl<B: Dim, const IN: usize, O: Dim, E: Dtype, D, T> Module<Tensor<(B, usize), E, D, T>> for Linear<Const<IN>, O, E, D>
    where
        D: MatmulKernel<E> + BinaryKernel<Add, E>,
        T: Tape<E, D>,
    {
        type Output = Tensor<(B, O), E, D, T>;

        fn try_forward(&self, input: Tensor<(B, usize), E, D, T>) -> Result<Self::Output, Error> {
            check_features::<IN>(input.shape().1)?;
            self.try_forward(input.try_realize::<(B, Const<IN>)>()?)
        }
    }

    /// One sample of run-time features into a layer of const size: checked.
    impl<const IN: usize, O: Dim, E: Dtype, D, T> Module<Tensor<(usize,), E, D, T>> for Linear<Const<IN>, O, E, D>
    where
        D: MatmulKernel<E> + BinaryKernel<Add, E>,
        T: Tape<E, D>,
    {
        type Output = Tensor<(O,), E, D, T>;

        fn try_forward(&self, input: Tensor<(usize,), E, D, T>) -> Result<Self::Output, Error> {
            check_features::<IN>(input.shape().0)?;
            self.try_forward(input.try_realize::<(Const<IN>,)>()?)
        }
    }

    /// Sequences of run-time features into a layer of const size: checked.
    impl<B: Dim, S: Dim, const IN: usize, O: Dim, E: Dtype, D, T> Module<Tensor<(B, S, usize), E, D, T>>
        for Linear<Const<IN>, O, E, D>
    where
        D: MatmulKernel<E> + BinaryKernel<Add, E>,
        T: Tape<E, D>,
    {
        type Output = Tensor<(B, S, O), E, D, T>;

        fn try_forward(&self, input: Tensor<(B, S, usize), E, D, T>) -> Result<Self::Output, Error> {
            check_features::<IN>(input.shape().2)?;
            self.try_forward(input.try_realize::<(B, S, Const<IN>)>()?)
        }
    }

    same_in_training!([I: Dim, O: Dim, E: Dtype, D: Storage<E>] Linear<I, O, E, D>);
}
