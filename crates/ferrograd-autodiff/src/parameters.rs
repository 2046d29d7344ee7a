//! Visiting a model's parameters by name: what layers implement (`ferrograd-nn`) and
//! what optimizers, checkpoints and gradient allocation use (`ferrograd-optim`, …).
//!
//! Names follow PyTorch's `state_dict` keys: a module visits its own tensors by their
//! field names (`weight`, `bias`) and its sub-modules through [`Prefixed`], so a
//! nested parameter reads `0.weight` or `layers.1.norm1.bias`.

use crate::gradients::Gradients;
use crate::tensor::Tensor;
use ferrograd_device::{Dtype, Error, Storage};
use ferrograd_shapes::Shape;

/// Receives each parameter of a model, read-only.
pub trait ParameterVisitor<E: Dtype, D: Storage<E>> {
    /// Called once per parameter, with its full name.
    fn visit<S: Shape>(&mut self, name: &str, parameter: &Tensor<S, E, D>) -> Result<(), Error>;

    /// Called instead of [`ParameterVisitor::visit`] for a parameter whose gradient is
    /// row-sparse (an `Embedding` built with `sparse(true)`): gradient allocation
    /// gives it a [`SparseGrad`](crate::SparseGrad) instead of a dense buffer. Every
    /// other visitor treats it as any parameter (the default).
    fn visit_sparse<S: Shape>(&mut self, name: &str, parameter: &Tensor<S, E, D>) -> Result<(), Error> {
        self.visit(name, parameter)
    }

    /// Called once per buffer: state saved with the model that is not trained, such as
    /// batch norm's `running_mean` (PyTorch's `register_buffer`). Optimizers and
    /// gradient allocation ignore buffers (the default); checkpoints save them.
    fn visit_buffer<S: Shape>(&mut self, name: &str, buffer: &Tensor<S, E, D>) -> Result<(), Error> {
        let _ = (name, buffer);
        Ok(())
    }

    /// Called once per integer counter kept with the model, such as batch norm's
    /// `num_batches_tracked` (an int64 in PyTorch's `state_dict`). Ignored by default.
    fn visit_count(&mut self, name: &str, count: u64) -> Result<(), Error> {
        let _ = (name, count);
        Ok(())
    }
}

/// Receives each parameter of a model, to change (an optimizer step, loading a
/// checkpoint). Changing a parameter in place ([`Tensor::storage_mut`]) keeps its id,
/// so its gradients and optimizer state still match it.
pub trait ParameterVisitorMut<E: Dtype, D: Storage<E>> {
    /// Called once per parameter, with its full name.
    fn visit_mut<S: Shape>(&mut self, name: &str, parameter: &mut Tensor<S, E, D>) -> Result<(), Error>;

    /// Called once per buffer (see [`ParameterVisitor::visit_buffer`]), to change it
    /// (loading a checkpoint). Ignored by default.
    fn visit_buffer_mut<S: Shape>(&mut self, name: &str, buffer: &mut Tensor<S, E, D>) -> Result<(), Error> {
        let _ = (name, buffer);
        Ok(())
    }

    /// Called once per integer counter (see [`ParameterVisitor::visit_count`]), to
    /// change it. Ignored by default.
    fn visit_count_mut(&mut self, name: &str, count: &mut u64) -> Result<(), Error> {
        let _ = (name, count);
        Ok(())
    }
}

/// A model, or any part of one, whose parameters can be visited by name.
///
/// A hand-written module lists its tensors and sub-modules; the order is the order of
/// PyTorch's `state_dict`:
///
/// ```
/// use ferrograd_autodiff::prelude::*;
/// use ferrograd_autodiff::{ParameterVisitor, ParameterVisitorMut, Prefixed, VisitParameters};
/// use ferrograd_cpu::Cpu;
///
/// struct Affine {
///     weight: Tensor<Rank2<3, 2>, f32, Cpu>,
///     bias: Tensor<Rank1<2>, f32, Cpu>,
/// }
///
/// impl VisitParameters<f32, Cpu> for Affine {
///     fn visit_parameters<V: ParameterVisitor<f32, Cpu>>(&self, visitor: &mut V) -> Result<(), Error> {
///         visitor.visit("weight", &self.weight)?;
///         visitor.visit("bias", &self.bias)
///     }
///     fn visit_parameters_mut<V: ParameterVisitorMut<f32, Cpu>>(&mut self, visitor: &mut V) -> Result<(), Error> {
///         visitor.visit_mut("weight", &mut self.weight)?;
///         visitor.visit_mut("bias", &mut self.bias)
///     }
/// }
///
/// /// Two of them in sequence, named like PyTorch's `nn.Sequential`: `0.weight`, …
/// struct Two(Affine, Affine);
///
/// impl VisitParameters<f32, Cpu> for Two {
///     fn visit_parameters<V: ParameterVisitor<f32, Cpu>>(&self, visitor: &mut V) -> Result<(), Error> {
///         self.0.visit_parameters(&mut Prefixed::new("0", visitor))?;
///         self.1.visit_parameters(&mut Prefixed::new("1", visitor))
///     }
///     fn visit_parameters_mut<V: ParameterVisitorMut<f32, Cpu>>(&mut self, visitor: &mut V) -> Result<(), Error> {
///         self.0.visit_parameters_mut(&mut Prefixed::new("0", visitor))?;
///         self.1.visit_parameters_mut(&mut Prefixed::new("1", visitor))
///     }
/// }
///
/// let dev = Cpu::default();
/// let affine = || Affine { weight: dev.zeros(), bias: dev.zeros() };
/// let model = Two(affine(), affine());
/// assert_eq!(model.parameter_names()?, ["0.weight", "0.bias", "1.weight", "1.bias"]);
/// assert_eq!(model.num_parameters()?, 16);
/// # Ok::<(), Error>(())
/// ```
pub trait VisitParameters<E: Dtype, D: Storage<E>> {
    /// Calls `visitor` with every parameter, read-only.
    fn visit_parameters<V: ParameterVisitor<E, D>>(&self, visitor: &mut V) -> Result<(), Error>;

    /// Calls `visitor` with every parameter, to change.
    fn visit_parameters_mut<V: ParameterVisitorMut<E, D>>(&mut self, visitor: &mut V) -> Result<(), Error>;

    /// The number of scalar parameters (PyTorch's `sum(p.numel() for p in
    /// model.parameters())`).
    fn num_parameters(&self) -> Result<usize, Error> {
        struct Count(usize);
        impl<E: Dtype, D: Storage<E>> ParameterVisitor<E, D> for Count {
            fn visit<S: Shape>(&mut self, _: &str, parameter: &Tensor<S, E, D>) -> Result<(), Error> {
                self.0 += parameter.num_elements();
                Ok(())
            }
        }
        let mut count = Count(0);
        self.visit_parameters(&mut count)?;
        Ok(count.0)
    }

    /// Every parameter's name, in visiting order.
    fn parameter_names(&self) -> Result<Vec<String>, Error> {
        struct Names(Vec<String>);
        impl<E: Dtype, D: Storage<E>> ParameterVisitor<E, D> for Names {
            fn visit<S: Shape>(&mut self, name: &str, _: &Tensor<S, E, D>) -> Result<(), Error> {
                self.0.push(name.to_string());
                Ok(())
            }
        }
        let mut names = Names(Vec::new());
        self.visit_parameters(&mut names)?;
        Ok(names.0)
    }

    /// Gradients holding a zero gradient for every parameter, to pass to
    /// [`Tensor::traced`]: after `backward`, each parameter's gradient is there (and
    /// adds up over several backward passes until [`Gradients::zero_grads`]). Sparse
    /// parameters ([`ParameterVisitor::visit_sparse`]) get an empty row-sparse gradient
    /// ([`Gradients::try_alloc_sparse_for`]).
    fn try_alloc_grads(&self) -> Result<Gradients<E, D>, Error> {
        struct Alloc<E: Dtype, D: Storage<E>>(Gradients<E, D>);
        impl<E: Dtype, D: Storage<E>> ParameterVisitor<E, D> for Alloc<E, D> {
            fn visit<S: Shape>(&mut self, _: &str, parameter: &Tensor<S, E, D>) -> Result<(), Error> {
                self.0.try_alloc_for(parameter)
            }
            fn visit_sparse<S: Shape>(&mut self, _: &str, parameter: &Tensor<S, E, D>) -> Result<(), Error> {
                self.0.try_alloc_sparse_for(parameter)
            }
        }
        let mut alloc = Alloc(Gradients::default());
        self.visit_parameters(&mut alloc)?;
        Ok(alloc.0)
    }

    /// [`VisitParameters::try_alloc_grads`] for the parameters whose name `trainable`
    /// accepts: the others are frozen (PyTorch's `requires_grad_(False)`). Backward
    /// computes no gradient for a frozen parameter, and an optimizer told to skip
    /// parameters without one leaves it unchanged.
    ///
    /// ```
    /// use ferrograd_autodiff::prelude::*;
    /// use ferrograd_cpu::Cpu;
    ///
    /// let dev = Cpu::default();
    /// let (w, b): (Tensor<Rank1<2>, f64, Cpu>, Tensor<Rank1<2>, f64, Cpu>) = (dev.ones(), dev.ones());
    /// let model = (w, b);
    /// let grads = model.try_alloc_grads_where(|name| name != "1")?;
    /// assert!(grads.contains(&model.0) && !grads.contains(&model.1));
    /// # Ok::<(), Error>(())
    /// ```
    fn try_alloc_grads_where(&self, trainable: impl Fn(&str) -> bool) -> Result<Gradients<E, D>, Error> {
        struct Alloc<E: Dtype, D: Storage<E>, F>(Gradients<E, D>, F);
        impl<E: Dtype, D: Storage<E>, F: Fn(&str) -> bool> ParameterVisitor<E, D> for Alloc<E, D, F> {
            fn visit<S: Shape>(&mut self, name: &str, parameter: &Tensor<S, E, D>) -> Result<(), Error> {
                match (self.1)(name) {
                    true => self.0.try_alloc_for(parameter),
                    false => Ok(()),
                }
            }
            fn visit_sparse<S: Shape>(&mut self, name: &str, parameter: &Tensor<S, E, D>) -> Result<(), Error> {
                match (self.1)(name) {
                    true => self.0.try_alloc_sparse_for(parameter),
                    false => Ok(()),
                }
            }
        }
        let mut alloc = Alloc(Gradients::default(), trainable);
        self.visit_parameters(&mut alloc)?;
        Ok(alloc.0)
    }
}

/// A visitor that puts `prefix.` before every name, for a module's sub-module.
pub struct Prefixed<'a, V> {
    prefix: &'a str,
    inner: &'a mut V,
    name: String,
}

impl<'a, V> Prefixed<'a, V> {
    /// Wraps `inner` so that names reach it as `prefix.name`.
    pub fn new(prefix: &'a str, inner: &'a mut V) -> Self {
        Self {
            prefix,
            inner,
            name: String::new(),
        }
    }

    fn full_name(&mut self, name: &str) -> &str {
        self.name.clear();
        self.name.push_str(self.prefix);
        if !self.prefix.is_empty() && !name.is_empty() {
            self.name.push('.');
        }
        self.name.push_str(name);
        &self.name
    }
}

impl<E: Dtype, D: Storage<E>, V: ParameterVisitor<E, D>> ParameterVisitor<E, D> for Prefixed<'_, V> {
    fn visit<S: Shape>(&mut self, name: &str, parameter: &Tensor<S, E, D>) -> Result<(), Error> {
        self.full_name(name);
        self.inner.visit(&self.name, parameter)
    }

    fn visit_sparse<S: Shape>(&mut self, name: &str, parameter: &Tensor<S, E, D>) -> Result<(), Error> {
        self.full_name(name);
        self.inner.visit_sparse(&self.name, parameter)
    }

    fn visit_buffer<S: Shape>(&mut self, name: &str, buffer: &Tensor<S, E, D>) -> Result<(), Error> {
        self.full_name(name);
        self.inner.visit_buffer(&self.name, buffer)
    }

    fn visit_count(&mut self, name: &str, count: u64) -> Result<(), Error> {
        self.full_name(name);
        self.inner.visit_count(&self.name, count)
    }
}

impl<E: Dtype, D: Storage<E>, V: ParameterVisitorMut<E, D>> ParameterVisitorMut<E, D> for Prefixed<'_, V> {
    fn visit_mut<S: Shape>(&mut self, name: &str, parameter: &mut Tensor<S, E, D>) -> Result<(), Error> {
        self.full_name(name);
        self.inner.visit_mut(&self.name, parameter)
    }

    fn visit_buffer_mut<S: Shape>(&mut self, name: &str, buffer: &mut Tensor<S, E, D>) -> Result<(), Error> {
        self.full_name(name);
        self.inner.visit_buffer_mut(&self.name, buffer)
    }

    fn visit_count_mut(&mut self, name: &str, count: &mut u64) -> Result<(), Error> {
        self.full_name(name);
        self.inner.visit_count_mut(&self.name, count)
    }
}

impl<S: Shape, E: Dtype, D: Storage<E>> VisitParameters<E, D> for Tensor<S, E, D> {
    /// A lone tensor is one parameter with an empty name; inside a module it takes the
    /// module's name for it (through [`Prefixed`]).
    fn visit_parameters<V: ParameterVisitor<E, D>>(&self, visitor: &mut V) -> Result<(), Error> {
        visitor.visit("", self)
    }

    fn visit_parameters_mut<V: ParameterVisitorMut<E, D>>(&mut self, visitor: &mut V) -> Result<(), Error> {
        visitor.visit_mut("", self)
    }
}

/// A tuple of modules is visited by position, as PyTorch names the layers of an
/// `nn.Sequential`: `0.weight`, `1.bias`, `2.0.weight` for a nested one.
macro_rules! tuple_parameters {
    ($($part:ident $index:tt),+) => {
        impl<E: Dtype, D: Storage<E>, $($part: VisitParameters<E, D>),+> VisitParameters<E, D> for ($($part,)+) {
            fn visit_parameters<V: ParameterVisitor<E, D>>(&self, visitor: &mut V) -> Result<(), Error> {
                $(self.$index.visit_parameters(&mut Prefixed::new(stringify!($index), visitor))?;)+
                Ok(())
            }

            fn visit_parameters_mut<V: ParameterVisitorMut<E, D>>(&mut self, visitor: &mut V) -> Result<(), Error> {
                $(self.$index.visit_parameters_mut(&mut Prefixed::new(stringify!($index), visitor))?;)+
                Ok(())
            }
        }
    };
}
tuple_parameters!(A 0);
tuple_parameters!(A 0, B 1);
tuple_parameters!(A 0, B 1, C 2);
tuple_parameters!(A 0, B 1, C 2, F 3);
tuple_parameters!(A 0, B 1, C 2, F 3, G 4);
tuple_parameters!(A 0, B 1, C 2, F 3, G 4, H 5);
tuple_parameters!(A 0, B 1, C 2, F 3, G 4, H 5, I 6);
tuple_parameters!(A 0, B 1, C 2, F 3, G 4, H 5, I 6, J 7);
tuple_parameters!(A 0, B 1, C 2, F 3, G 4, H 5, I 6, J 7, K 8);
tuple_parameters!(A 0, B 1, C 2, F 3, G 4, H 5, I 6, J 7, K 8, L 9);
tuple_parameters!(A 0, B 1, C 2, F 3, G 4, H 5, I 6, J 7, K 8, L 9, M 10);
tuple_parameters!(A 0, B 1, C 2, F 3, G 4, H 5, I 6, J 7, K 8, L 9, M 10, N 11);
