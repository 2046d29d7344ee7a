//! Combinators: a residual connection and a sum of parallel branches.

use crate::module::{BuildOnDevice, Module, ModuleMut};
use ferrograd_autodiff::{MergeTapes, ParameterVisitor, ParameterVisitorMut, Prefixed, Tape, Tensor, VisitParameters};
use ferrograd_device::ops::elementwise::{Add, BinaryKernel};
use ferrograd_device::{Dtype, Error, Storage};
use ferrograd_shapes::Shape;

/// `x + f(x)`, where `f` keeps the input's shape. Its parameters are `f`'s, under
/// `f`'s own names (a residual block adds no level to a `state_dict` key).
///
/// ```
/// use ferrograd_cpu::Cpu;
/// use ferrograd_nn::prelude::*;
///
/// let dev = Cpu::seed_from_u64(0);
/// let block = dev.build_module::<(Linear<4, 4>, Residual<(Linear<4, 4>, ReLU)>), f64>();
/// assert_eq!(block.parameter_names()?, ["0.weight", "0.bias", "1.0.weight", "1.0.bias"]);
/// let x: Tensor<Rank1<4>, f64, Cpu> = dev.sample_normal();
/// let h = block.0.forward(x.clone());
/// let expected = (h.clone() + block.1.0.forward(h.clone())).as_vec();
/// assert_eq!(block.forward(x).as_vec(), expected);
/// # Ok::<(), Error>(())
/// ```
#[derive(Clone, Debug, Default)]
pub struct Residual<F>(pub F);

/// `a(x) + b(x)`: two branches on one input, their outputs added. Parameters are
/// named `0.…` and `1.…`, as the branches of a tuple.
#[derive(Clone, Debug, Default)]
pub struct ParallelAdd<A, B>(pub A, pub B);

impl<E: Dtype, D: Storage<E>, F: BuildOnDevice<E, D>> BuildOnDevice<E, D> for Residual<F> {
    type Built = Residual<F::Built>;
    fn try_build_on_device(&self, device: &D) -> Result<Self::Built, Error> {
        Ok(Residual(self.0.try_build_on_device(device)?))
    }
}

impl<E: Dtype, D: Storage<E>, F: VisitParameters<E, D>> VisitParameters<E, D> for Residual<F> {
    fn visit_parameters<V: ParameterVisitor<E, D>>(&self, visitor: &mut V) -> Result<(), Error> {
        self.0.visit_parameters(visitor)
    }
    fn visit_parameters_mut<V: ParameterVisitorMut<E, D>>(&mut self, visitor: &mut V) -> Result<(), Error> {
        self.0.visit_parameters_mut(visitor)
    }
}

impl<S: Shape, E: Dtype, D: BinaryKernel<Add, E>, T: Tape<E, D> + MergeTapes<T, Output = T>, F>
    Module<Tensor<S, E, D, T>> for Residual<F>
where
    F: Module<Tensor<S, E, D, T>, Output = Tensor<S, E, D, T>>,
{
    type Output = Tensor<S, E, D, T>;
    fn try_forward(&self, x: Tensor<S, E, D, T>) -> Result<Self::Output, Error> {
        let fx = self.0.try_forward(x.clone())?;
        x.try_add(fx)
    }
}

impl<S: Shape, E: Dtype, D: BinaryKernel<Add, E>, T: Tape<E, D> + MergeTapes<T, Output = T>, F>
    ModuleMut<Tensor<S, E, D, T>> for Residual<F>
where
    F: ModuleMut<Tensor<S, E, D, T>, Output = Tensor<S, E, D, T>>,
{
    type Output = Tensor<S, E, D, T>;
    fn try_forward_mut(&mut self, x: Tensor<S, E, D, T>) -> Result<Self::Output, Error> {
        let fx = self.0.try_forward_mut(x.clone())?;
        x.try_add(fx)
    }
}

impl<E: Dtype, D: Storage<E>, A: BuildOnDevice<E, D>, B: BuildOnDevice<E, D>> BuildOnDevice<E, D>
    for ParallelAdd<A, B>
{
    type Built = ParallelAdd<A::Built, B::Built>;
    fn try_build_on_device(&self, device: &D) -> Result<Self::Built, Error> {
        Ok(ParallelAdd(
            self.0.try_build_on_device(device)?,
            self.1.try_build_on_device(device)?,
        ))
    }
}

impl<E: Dtype, D: Storage<E>, A: VisitParameters<E, D>, B: VisitParameters<E, D>> VisitParameters<E, D>
    for ParallelAdd<A, B>
{
    fn visit_parameters<V: ParameterVisitor<E, D>>(&self, visitor: &mut V) -> Result<(), Error> {
        self.0.visit_parameters(&mut Prefixed::new("0", visitor))?;
        self.1.visit_parameters(&mut Prefixed::new("1", visitor))
    }
    fn visit_parameters_mut<V: ParameterVisitorMut<E, D>>(&mut self, visitor: &mut V) -> Result<(), Error> {
        self.0.visit_parameters_mut(&mut Prefixed::new("0", visitor))?;
        self.1.visit_parameters_mut(&mut Prefixed::new("1", visitor))
    }
}

impl<S: Shape, E: Dtype, D: BinaryKernel<Add, E>, T: Tape<E, D> + MergeTapes<T, Output = T>, A, B>
    Module<Tensor<S, E, D, T>> for ParallelAdd<A, B>
where
    A: Module<Tensor<S, E, D, T>, Output = Tensor<S, E, D, T>>,
    B: Module<Tensor<S, E, D, T>, Output = Tensor<S, E, D, T>>,
{
    type Output = Tensor<S, E, D, T>;
    fn try_forward(&self, x: Tensor<S, E, D, T>) -> Result<Self::Output, Error> {
        let a = self.0.try_forward(x.clone())?;
        a.try_add(self.1.try_forward(x)?)
    }
}

impl<S: Shape, E: Dtype, D: BinaryKernel<Add, E>, T: Tape<E, D> + MergeTapes<T, Output = T>, A, B>
    ModuleMut<Tensor<S, E, D, T>> for ParallelAdd<A, B>
where
    A: ModuleMut<Tensor<S, E, D, T>, Output = Tensor<S, E, D, T>>,
    B: ModuleMut<Tensor<S, E, D, T>, Output = Tensor<S, E, D, T>>,
{
    type Output = Tensor<S, E, D, T>;
    fn try_forward_mut(&mut self, x: Tensor<S, E, D, T>) -> Result<Self::Output, Error> {
        let a = self.0.try_forward_mut(x.clone())?;
        a.try_add(self.1.try_forward_mut(x)?)
    }
}
