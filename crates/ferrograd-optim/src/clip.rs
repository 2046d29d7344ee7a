//! Gradient clipping over a model's parameters: PyTorch's
//! `torch.nn.utils.clip_grad_norm_` and `clip_grad_value_`.

use crate::optimizer::{check_parameter, invalid};
use ferrograd_autodiff::{Gradients, ParameterVisitor, Tensor, VisitParameters};
use ferrograd_device::ops::optimizer::{GradientClipKernel, NormType};
use ferrograd_device::{Dtype, Error, Storage};
use ferrograd_shapes::Shape;

/// Scales the gradients of `model`'s parameters so that their joint norm is at most
/// `max_norm`, and returns that norm as it was before clipping.
///
/// The joint norm is the norm of the per-parameter norms (for [`NormType::Two`]:
/// `√(Σ‖g‖²)`, as if every gradient were one vector). When it exceeds `max_norm`,
/// every gradient is multiplied by `max_norm / (norm + 1e-6)`, PyTorch's factor;
/// otherwise nothing changes. Parameters without a gradient are left out, as PyTorch
/// leaves out those whose `.grad` is `None`. A row-sparse gradient counts its rows
/// (each held once, so its norm is its dense norm) and is scaled in place, staying
/// sparse.
///
/// # Errors
/// [`Error::InvalidArgument`] when `max_norm` is negative or NaN, or a parameter is a
/// non-contiguous view.
///
/// ```
/// use ferrograd_autodiff::prelude::*;
/// use ferrograd_optim::{NormType, clip_grad_norm};
///
/// let dev = ferrograd_cpu::Cpu::default();
/// let w: Tensor<Rank1<2>, f64, _> = dev.tensor([3.0, 4.0]);
/// // d(w·w / 2)/dw = w, whose norm is 5.
/// let mut grads = (w.leaky_trace().square().sum::<Rank0, _>() * 0.5).backward();
/// let norm = clip_grad_norm(&w, &mut grads, 1.0, NormType::Two)?;
/// assert_eq!(norm, 5.0);
/// let clipped = grads.get(&w).array();
/// assert!((clipped[0] - 3.0 / (5.0 + 1e-6)).abs() < 1e-15);
/// # Ok::<(), Error>(())
/// ```
pub fn clip_grad_norm<E, D, M>(
    model: &M,
    grads: &mut Gradients<E, D>,
    max_norm: f64,
    norm_type: NormType,
) -> Result<E, Error>
where
    E: Dtype,
    D: GradientClipKernel<E>,
    M: VisitParameters<E, D>,
{
    if max_norm.is_nan() || max_norm < 0.0 {
        return Err(invalid(
            "clip_grad_norm",
            format!("max_norm must be >= 0, got {max_norm}"),
        ));
    }
    struct Norms<'a, E: Dtype, D: Storage<E>> {
        grads: &'a Gradients<E, D>,
        norm_type: NormType,
        total: E,
    }
    impl<E: Dtype, D: GradientClipKernel<E>> ParameterVisitor<E, D> for Norms<'_, E, D> {
        fn visit<S: Shape>(&mut self, name: &str, parameter: &Tensor<S, E, D>) -> Result<(), Error> {
            let grad = match self.grads.sparse_grad(parameter) {
                Some(sparse) => sparse.values(),
                None => match self.grads.try_grad(parameter) {
                    Ok(grad) => grad,
                    Err(_) => return Ok(()),
                },
            };
            check_parameter("clip_grad_norm", name, parameter)?;
            let norm = parameter.device().norm(grad, self.norm_type)?;
            self.total = match self.norm_type {
                NormType::One => self.total + norm,
                NormType::Two => self.total + norm * norm,
                NormType::Infinity if norm > self.total || norm.is_nan() => norm,
                NormType::Infinity => self.total,
            };
            Ok(())
        }
    }
    let mut norms = Norms {
        grads,
        norm_type,
        total: E::ZERO,
    };
    model.visit_parameters(&mut norms)?;
    let total = match norm_type {
        NormType::Two => norms.total.sqrt(),
        NormType::One | NormType::Infinity => norms.total,
    };
    let coefficient = E::from_f64(max_norm) / (total + E::from_f64(1e-6));
    if coefficient < E::ONE {
        model.visit_parameters(&mut Each {
            grads,
            op: |device: &D, grad: &mut D::Vec| device.scale(grad, coefficient),
        })?;
    }
    Ok(total)
}

/// Clamps every gradient of `model`'s parameters into `[-clip_value, clip_value]`
/// (PyTorch's `clip_grad_value_`). Parameters without a gradient are left out; a
/// row-sparse gradient has its rows clamped (its zeros need no clamping).
///
/// # Errors
/// [`Error::InvalidArgument`] when `clip_value` is negative or NaN.
///
/// ```
/// use ferrograd_autodiff::prelude::*;
/// use ferrograd_optim::clip_grad_value;
///
/// let dev = ferrograd_cpu::Cpu::default();
/// let w: Tensor<Rank1<3>, f32, _> = dev.tensor([-3.0, 0.25, 2.0]);
/// let mut grads = (w.leaky_trace().square().sum::<Rank0, _>() * 0.5).backward(); // gradient = w
/// clip_grad_value(&w, &mut grads, 1.0)?;
/// assert_eq!(grads.get(&w).array(), [-1.0, 0.25, 1.0]);
/// # Ok::<(), Error>(())
/// ```
pub fn clip_grad_value<E, D, M>(model: &M, grads: &mut Gradients<E, D>, clip_value: f64) -> Result<(), Error>
where
    E: Dtype,
    D: GradientClipKernel<E>,
    M: VisitParameters<E, D>,
{
    if clip_value.is_nan() || clip_value < 0.0 {
        return Err(invalid(
            "clip_grad_value",
            format!("clip_value must be >= 0, got {clip_value}"),
        ));
    }
    let bound = E::from_f64(clip_value);
    model.visit_parameters(&mut Each {
        grads,
        op: |device: &D, grad: &mut D::Vec| device.clamp(grad, -bound, bound),
    })
}

/// Applies `op` to the gradient of every parameter that has one.
struct Each<'a, E: Dtype, D: Storage<E>, F> {
    grads: &'a mut Gradients<E, D>,
    op: F,
}

impl<E: Dtype, D: Storage<E>, F: FnMut(&D, &mut D::Vec) -> Result<(), Error>> ParameterVisitor<E, D>
    for Each<'_, E, D, F>
{
    fn visit<S: Shape>(&mut self, _name: &str, parameter: &Tensor<S, E, D>) -> Result<(), Error> {
        if let Some(sparse) = self.grads.sparse_grad_mut(parameter) {
            return (self.op)(parameter.device(), sparse.values_mut());
        }
        match self.grads.try_grad_mut(parameter) {
            Ok(grad) => (self.op)(parameter.device(), grad),
            Err(_) => Ok(()),
        }
    }
}
