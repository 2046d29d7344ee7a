//! What a layer is: something that maps an input to an output ([`Module`] for
//! inference, [`ModuleMut`] for training), built on a device from a description free
//! of device and dtype ([`BuildOnDevice`], [`BuildModule::build_module`]).

use ferrograd_autodiff::VisitParameters;
use ferrograd_device::{Dtype, Error, Storage};

/// A layer or model run for inference: dropout off, normalisation from running
/// statistics (PyTorch's `model.eval()`).
///
/// Every layer takes tensors with any tape, so the same model runs on plain tensors and
/// on traced ones (`x.traced(grads)`), whose tape then records the layer's ops.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot take `{X}` as its input",
    label = "this layer does not accept that input",
    note = "a layer's input must have the features it was built for: each layer's input size must equal the previous layer's output size"
)]
pub trait Module<X> {
    /// What the layer returns.
    type Output;

    /// Runs the layer, returning an error where run-time sizes disagree.
    fn try_forward(&self, input: X) -> Result<Self::Output, Error>;

    /// Runs the layer.
    ///
    /// # Panics
    /// Where [`Module::try_forward`] returns an error; the message is the error's.
    #[track_caller]
    fn forward(&self, input: X) -> Self::Output {
        self.try_forward(input).unwrap_or_else(|error| panic!("{error}"))
    }
}

/// A layer or model run for training: dropout on, batch-norm statistics updated
/// (PyTorch's `model.train()`). Layers that behave the same either way run their
/// [`Module`] forward.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot take `{X}` as its input",
    label = "this layer does not accept that input",
    note = "a layer's input must have the features it was built for: each layer's input size must equal the previous layer's output size"
)]
pub trait ModuleMut<X> {
    /// What the layer returns.
    type Output;

    /// Runs the layer in training mode, returning an error where run-time sizes
    /// disagree.
    fn try_forward_mut(&mut self, input: X) -> Result<Self::Output, Error>;

    /// Runs the layer in training mode.
    ///
    /// # Panics
    /// Where [`ModuleMut::try_forward_mut`] returns an error; the message is the error's.
    #[track_caller]
    fn forward_mut(&mut self, input: X) -> Self::Output {
        self.try_forward_mut(input).unwrap_or_else(|error| panic!("{error}"))
    }
}

/// A description of a layer (its sizes and options, no tensors) that can be built on
/// a device with elements `E`: `Linear<784, 128>` builds a `linear::Linear` holding a
/// weight and a bias, initialised as PyTorch does.
pub trait BuildOnDevice<E: Dtype, D: Storage<E>> {
    /// The module with its tensors.
    type Built: VisitParameters<E, D>;

    /// Builds the module on `device`, drawing its initial parameters from the
    /// device's random generator.
    fn try_build_on_device(&self, device: &D) -> Result<Self::Built, Error>;
}

/// The module an architecture `A` builds on device `D` with elements `E`, to name a
/// model's type: `Built<Mlp, f32, Cpu>`.
pub type Built<A, E, D> = <A as BuildOnDevice<E, D>>::Built;

/// Building modules on a device: `dev.build_module::<Mlp, f32>()`.
///
/// ```
/// use ferrograd_cpu::Cpu;
/// use ferrograd_nn::prelude::*;
///
/// type Mlp = (Linear<4, 8>, ReLU, Linear<8, 2>);
/// let dev = Cpu::seed_from_u64(0);
/// let mlp = dev.build_module::<Mlp, f32>();
/// assert_eq!(mlp.num_parameters()?, 4 * 8 + 8 + 8 * 2 + 2);
/// let x: Tensor<Rank2<3, 4>, f32, Cpu> = dev.sample_normal();
/// let y: Tensor<Rank2<3, 2>, f32, Cpu> = mlp.forward(x);
/// # let _ = y;
/// # Ok::<(), Error>(())
/// ```
pub trait BuildModule: Sized {
    /// Builds the architecture `A` (from its default, the const sizes in its type).
    ///
    /// # Panics
    /// Where the device cannot allocate the parameters; see
    /// [`BuildModule::try_build_module`].
    #[track_caller]
    fn build_module<A, E>(&self) -> A::Built
    where
        A: BuildOnDevice<E, Self> + Default,
        E: Dtype,
        Self: Storage<E>,
    {
        self.try_build_module::<A, E>()
            .unwrap_or_else(|error| panic!("{error}"))
    }

    /// [`BuildModule::build_module`], returning an error instead of panicking.
    fn try_build_module<A, E>(&self) -> Result<A::Built, Error>
    where
        A: BuildOnDevice<E, Self> + Default,
        E: Dtype,
        Self: Storage<E>,
    {
        A::default().try_build_on_device(self)
    }

    /// Builds the architecture `architecture`, whose sizes may be run-time values
    /// (`LinearConfig::new(inputs, outputs)`).
    ///
    /// # Panics
    /// Where the device cannot allocate the parameters; see
    /// [`BuildModule::try_build_module_with`].
    #[track_caller]
    fn build_module_with<A, E>(&self, architecture: A) -> A::Built
    where
        A: BuildOnDevice<E, Self>,
        E: Dtype,
        Self: Storage<E>,
    {
        self.try_build_module_with(architecture)
            .unwrap_or_else(|error| panic!("{error}"))
    }

    /// [`BuildModule::build_module_with`], returning an error instead of panicking.
    fn try_build_module_with<A, E>(&self, architecture: A) -> Result<A::Built, Error>
    where
        A: BuildOnDevice<E, Self>,
        E: Dtype,
        Self: Storage<E>,
    {
        architecture.try_build_on_device(self)
    }
}

impl<D> BuildModule for D {}

/// Implements [`ModuleMut`] for a layer that trains as it infers, by its [`Module`].
macro_rules! same_in_training {
    ([$($generics:tt)*] $layer:ty) => {
        impl<X, $($generics)*> $crate::ModuleMut<X> for $layer
        where
            Self: $crate::Module<X>,
        {
            type Output = <Self as $crate::Module<X>>::Output;

            fn try_forward_mut(&mut self, input: X) -> Result<Self::Output, ferrograd_device::Error> {
                $crate::Module::try_forward(self, input)
            }
        }
    };
}
pub(crate) use same_in_training;

/// `VisitParameters` for a built layer of a `weight` and an optional `bias`, PyTorch's
/// names for them.
macro_rules! weight_and_bias {
    ($layer:ident) => {
        impl<
            I: ferrograd_shapes::Dim,
            O: ferrograd_shapes::Dim,
            E: ferrograd_device::Dtype,
            D: ferrograd_device::Storage<E>,
        > ferrograd_autodiff::VisitParameters<E, D> for $layer<I, O, E, D>
        {
            fn visit_parameters<V: ferrograd_autodiff::ParameterVisitor<E, D>>(
                &self,
                visitor: &mut V,
            ) -> Result<(), ferrograd_device::Error> {
                visitor.visit("weight", &self.weight)?;
                match &self.bias {
                    Some(bias) => visitor.visit("bias", bias),
                    None => Ok(()),
                }
            }

            fn visit_parameters_mut<V: ferrograd_autodiff::ParameterVisitorMut<E, D>>(
                &mut self,
                visitor: &mut V,
            ) -> Result<(), ferrograd_device::Error> {
                visitor.visit_mut("weight", &mut self.weight)?;
                match &mut self.bias {
                    Some(bias) => visitor.visit_mut("bias", bias),
                    None => Ok(()),
                }
            }
        }
    };
}
pub(crate) use weight_and_bias;
