//! Optimizer updates as plain loops over equal-length slices (LLVM vectorises them),
//! each written in the order of PyTorch's single-tensor implementation so that the
//! roundings match: `addcmul(s, a, b, value=v)` is `s + v·a·b`, `addcdiv` is
//! `s + v·a/b`, `lerp` takes PyTorch's two-sided form.

use crate::host::{Cpu, CpuBuffer};
use crate::ops::reduce::multiversion;
use ferrograd_device::ops::optimizer::{
    AdagradUpdate, AdamUpdate, GradientClipKernel, NormType, OptimizerKernel, RmspropUpdate, SgdUpdate,
    SparseAdamUpdate, SparseRows, check_lengths, check_sparse_rows, sparse_rows,
};
use ferrograd_device::{Dtype, Error};

/// PyTorch's `lerp(start, end, weight)`: the form that is exact at its nearer end.
#[inline(always)]
fn lerp<E: Dtype>(start: E, end: E, weight: E) -> E {
    if weight.abs() < E::from_f64(0.5) {
        start + weight * (end - start)
    } else {
        end - (end - start) * (E::ONE - weight)
    }
}

/// The gradient an update works with: negated when maximising, plus the L2 penalty
/// (added only when it is non-zero, as PyTorch does, so that `0 · inf` never enters).
#[inline(always)]
fn effective_grad<E: Dtype>(grad: E, param: E, maximize: bool, weight_decay: E) -> E {
    let g = if maximize { -grad } else { grad };
    if weight_decay != E::ZERO {
        g + weight_decay * param
    } else {
        g
    }
}

multiversion! {
    /// One SGD pass over a parameter, its gradient and its momentum buffer (`first`:
    /// the buffer starts as the gradient), in vectors as wide as the CPU has.
    fn sgd_pass<E, M>(u: &SgdUpdate<E>, param: &mut [E], grad: &[E], momentum_buffer: Option<(&mut [E], bool)>) {
        let has_weight_decay = u.weight_decay != E::ZERO;
        match (momentum_buffer, has_weight_decay) {
            (None, false) => sgd_loop::<E, false, false, false>(u, param, grad, &mut []),
            (None, true) => sgd_loop::<E, true, false, false>(u, param, grad, &mut []),
            (Some((buffer, first)), decay) => match (decay, first, u.nesterov) {
                (false, false, false) => sgd_loop::<E, false, true, false>(u, param, grad, buffer),
                (false, false, true) => sgd_loop::<E, false, true, true>(u, param, grad, buffer),
                (false, true, false) => sgd_first_loop::<E, false, false>(u, param, grad, buffer),
                (false, true, true) => sgd_first_loop::<E, false, true>(u, param, grad, buffer),
                (true, false, false) => sgd_loop::<E, true, true, false>(u, param, grad, buffer),
                (true, false, true) => sgd_loop::<E, true, true, true>(u, param, grad, buffer),
                (true, true, false) => sgd_first_loop::<E, true, false>(u, param, grad, buffer),
                (true, true, true) => sgd_first_loop::<E, true, true>(u, param, grad, buffer),
            },
        }
    }
}

/// The gradient SGD steps along: negated when maximising, plus the L2 penalty when
/// there is one (`DECAY`), as [`effective_grad`] but without a branch per element.
#[inline(always)]
fn sgd_gradient<E: Dtype, const DECAY: bool>(u: &SgdUpdate<E>, g: E, p: E) -> E {
    let g = if u.maximize { -g } else { g };
    if DECAY { g + u.weight_decay * p } else { g }
}

/// [`sgd_pass`] without momentum (`MOMENTUM` false: `buffer` is empty) or with a
/// momentum buffer that already holds a step.
#[inline(always)]
fn sgd_loop<E: Dtype, const DECAY: bool, const MOMENTUM: bool, const NESTEROV: bool>(
    u: &SgdUpdate<E>,
    param: &mut [E],
    grad: &[E],
    buffer: &mut [E],
) {
    let neg_lr = -u.lr;
    let grad = &grad[..param.len()];
    if !MOMENTUM {
        for (p, &g) in param.iter_mut().zip(grad) {
            let g = sgd_gradient::<E, DECAY>(u, g, *p);
            *p += neg_lr * g;
        }
        return;
    }
    let buffer = &mut buffer[..param.len()];
    for ((p, &g), b) in param.iter_mut().zip(grad).zip(buffer.iter_mut()) {
        let g = sgd_gradient::<E, DECAY>(u, g, *p);
        *b = *b * u.momentum + u.one_minus_dampening * g;
        let direction = if NESTEROV { g + u.momentum * *b } else { *b };
        *p += neg_lr * direction;
    }
}

/// [`sgd_pass`]'s first momentum step: the buffer becomes the gradient (PyTorch's
/// `torch.clone(grad)`, no dampening).
#[inline(always)]
fn sgd_first_loop<E: Dtype, const DECAY: bool, const NESTEROV: bool>(
    u: &SgdUpdate<E>,
    param: &mut [E],
    grad: &[E],
    buffer: &mut [E],
) {
    let neg_lr = -u.lr;
    let (grad, buffer) = (&grad[..param.len()], &mut buffer[..param.len()]);
    for ((p, &g), b) in param.iter_mut().zip(grad).zip(buffer.iter_mut()) {
        let g = sgd_gradient::<E, DECAY>(u, g, *p);
        *b = g;
        let direction = if NESTEROV { g + u.momentum * *b } else { *b };
        *p += neg_lr * direction;
    }
}

multiversion! {
    /// One Adam (or AdamW) pass over a parameter, its gradient and its moments, in
    /// vectors as wide as the CPU has: one scalar element at a time, the square root
    /// and two divisions per element made Adam 86% of a small model's training step.
    fn adam_pass<E, M>(
        u: &AdamUpdate<E>,
        param: &mut [E],
        grad: &[E],
        exp_avg: &mut [E],
        exp_avg_sq: &mut [E],
        max_exp_avg_sq: Option<&mut [E]>,
    ) {
        // The choices that hold for the whole pass are made here, once, so that each
        // loop below is straight-line code that vectorises.
        let near_start = u.one_minus_beta1.abs() < E::from_f64(0.5);
        let has_weight_decay = u.weight_decay != E::ZERO;
        match (has_weight_decay, near_start) {
            (false, false) => adam_loop::<E, false, false>(u, param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq),
            (false, true) => adam_loop::<E, false, true>(u, param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq),
            (true, false) => adam_loop::<E, true, false>(u, param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq),
            (true, true) => adam_loop::<E, true, true>(u, param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq),
        }
    }
}

/// [`adam_pass`] for one combination of weight decay (`DECAY`) and [`lerp`]'s form
/// (`NEAR_START`), each element in PyTorch's order of operations.
#[inline(always)]
fn adam_loop<E: Dtype, const DECAY: bool, const NEAR_START: bool>(
    u: &AdamUpdate<E>,
    param: &mut [E],
    grad: &[E],
    exp_avg: &mut [E],
    exp_avg_sq: &mut [E],
    max_exp_avg_sq: Option<&mut [E]>,
) {
    let n = param.len();
    let (grad, exp_avg, exp_avg_sq) = (&grad[..n], &mut exp_avg[..n], &mut exp_avg_sq[..n]);
    let neg_step_size = -u.step_size;
    // -g is g·(-1) and p is p·1 exactly, so negating and not decaying cost no branch.
    let sign = if u.maximize { -E::ONE } else { E::ONE };
    let weight = u.one_minus_beta1;
    let moments = |i: usize, p: &mut E, m: &mut [E], v: &mut [E]| {
        *p *= u.decay_factor;
        let mut g = grad[i] * sign;
        if DECAY {
            g += u.weight_decay * *p;
        }
        m[i] = if NEAR_START {
            m[i] + weight * (g - m[i])
        } else {
            g - (g - m[i]) * (E::ONE - weight)
        };
        v[i] = v[i] * u.beta2 + u.one_minus_beta2 * g * g;
    };
    let finish = |p: &mut E, m: E, second: E| {
        let denom = second.sqrt() / u.bias_correction2_sqrt + u.eps;
        *p += neg_step_size * m / denom;
    };
    match max_exp_avg_sq {
        None => {
            for (i, p) in param.iter_mut().enumerate() {
                moments(i, p, exp_avg, exp_avg_sq);
                finish(p, exp_avg[i], exp_avg_sq[i]);
            }
        }
        Some(max_sq) => {
            let max_sq = &mut max_sq[..n];
            for (i, p) in param.iter_mut().enumerate() {
                moments(i, p, exp_avg, exp_avg_sq);
                // torch.maximum: NaN wins.
                let v = exp_avg_sq[i];
                if v > max_sq[i] || v.is_nan() {
                    max_sq[i] = v;
                }
                finish(p, exp_avg[i], max_sq[i]);
            }
        }
    }
}

impl<E: Dtype> OptimizerKernel<E> for Cpu {
    // The sparse updates work on the touched rows in place: a step costs the rows, not
    // the table.
    fn sparse_sgd_update(
        &self,
        lr: E,
        maximize: bool,
        param: &mut CpuBuffer<E>,
        grad: &SparseRows<'_, CpuBuffer<E>>,
    ) -> Result<(), Error> {
        check_sparse_rows("sgd", param.len(), grad.indices, grad.values.len(), grad.row_len, &[])?;
        sparse_rows::sgd(lr, maximize, param, grad.indices, grad.values, grad.row_len);
        Ok(())
    }

    fn sparse_adagrad_update(
        &self,
        update: &AdagradUpdate<E>,
        param: &mut CpuBuffer<E>,
        sum: &mut CpuBuffer<E>,
        grad: &SparseRows<'_, CpuBuffer<E>>,
    ) -> Result<(), Error> {
        let others = [("sum", sum.len())];
        check_sparse_rows(
            "adagrad",
            param.len(),
            grad.indices,
            grad.values.len(),
            grad.row_len,
            &others,
        )?;
        sparse_rows::adagrad(update, param, sum, grad.indices, grad.values, grad.row_len);
        Ok(())
    }

    fn sparse_adam_update(
        &self,
        update: &SparseAdamUpdate<E>,
        param: &mut CpuBuffer<E>,
        exp_avg: &mut CpuBuffer<E>,
        exp_avg_sq: &mut CpuBuffer<E>,
        grad: &SparseRows<'_, CpuBuffer<E>>,
    ) -> Result<(), Error> {
        let others = [("exp_avg", exp_avg.len()), ("exp_avg_sq", exp_avg_sq.len())];
        check_sparse_rows(
            "sparse_adam",
            param.len(),
            grad.indices,
            grad.values.len(),
            grad.row_len,
            &others,
        )?;
        sparse_rows::sparse_adam(
            update,
            param,
            exp_avg,
            exp_avg_sq,
            grad.indices,
            grad.values,
            grad.row_len,
        );
        Ok(())
    }

    fn sgd_update(
        &self,
        update: &SgdUpdate<E>,
        param: &mut CpuBuffer<E>,
        grad: &CpuBuffer<E>,
        momentum_buffer: Option<(&mut CpuBuffer<E>, bool)>,
    ) -> Result<(), Error> {
        match momentum_buffer {
            None => {
                check_lengths("sgd", param.len(), &[("gradient", grad.len())])?;
                sgd_pass(update, &mut param[..], &grad[..], None);
            }
            Some((buffer, first)) => {
                check_lengths(
                    "sgd",
                    param.len(),
                    &[("gradient", grad.len()), ("momentum buffer", buffer.len())],
                )?;
                sgd_pass(update, &mut param[..], &grad[..], Some((&mut buffer[..], first)));
            }
        }
        Ok(())
    }

    fn adam_update(
        &self,
        update: &AdamUpdate<E>,
        param: &mut CpuBuffer<E>,
        grad: &CpuBuffer<E>,
        exp_avg: &mut CpuBuffer<E>,
        exp_avg_sq: &mut CpuBuffer<E>,
        max_exp_avg_sq: Option<&mut CpuBuffer<E>>,
    ) -> Result<(), Error> {
        let u = *update;
        check_lengths(
            "adam",
            param.len(),
            &[
                ("gradient", grad.len()),
                ("exp_avg", exp_avg.len()),
                ("exp_avg_sq", exp_avg_sq.len()),
            ],
        )?;
        let max_exp_avg_sq = match (u.amsgrad, max_exp_avg_sq) {
            (false, _) => None,
            (true, Some(max_sq)) => {
                check_lengths("adam", param.len(), &[("max_exp_avg_sq", max_sq.len())])?;
                Some(&mut max_sq[..])
            }
            (true, None) => {
                return Err(Error::InvalidArgument {
                    op: "adam",
                    message: "amsgrad needs a max_exp_avg_sq buffer, none was given".into(),
                });
            }
        };
        adam_pass(
            &u,
            &mut param[..],
            &grad[..],
            &mut exp_avg[..],
            &mut exp_avg_sq[..],
            max_exp_avg_sq,
        );
        Ok(())
    }

    fn rmsprop_update(
        &self,
        update: &RmspropUpdate<E>,
        param: &mut CpuBuffer<E>,
        grad: &CpuBuffer<E>,
        square_avg: &mut CpuBuffer<E>,
        grad_avg: Option<&mut CpuBuffer<E>>,
        momentum_buffer: Option<&mut CpuBuffer<E>>,
    ) -> Result<(), Error> {
        let u = *update;
        let len = param.len();
        check_lengths(
            "rmsprop",
            len,
            &[("gradient", grad.len()), ("square_avg", square_avg.len())],
        )?;
        if let Some(a) = &grad_avg {
            check_lengths("rmsprop", len, &[("grad_avg", a.len())])?;
        }
        if let Some(b) = &momentum_buffer {
            check_lengths("rmsprop", len, &[("momentum_buffer", b.len())])?;
        }
        let neg_lr = -u.lr;
        // Missing buffers become empty slices, so one loop serves every variant; the
        // flags are loop-invariant, which LLVM hoists.
        let centered = grad_avg.is_some();
        let with_momentum = momentum_buffer.is_some();
        let mut no_grad_avg = [];
        let mut no_momentum = [];
        let grad_avg: &mut [E] = match grad_avg {
            Some(a) => a,
            None => &mut no_grad_avg,
        };
        let momentum_buffer: &mut [E] = match momentum_buffer {
            Some(b) => b,
            None => &mut no_momentum,
        };
        for i in 0..len {
            let p = &mut param[i];
            let g = effective_grad(grad[i], *p, u.maximize, u.weight_decay);
            let s = &mut square_avg[i];
            *s = *s * u.alpha + u.one_minus_alpha * g * g;
            let avg = if centered {
                let a = &mut grad_avg[i];
                *a = lerp(*a, g, u.one_minus_alpha);
                (*s + (-*a) * *a).sqrt()
            } else {
                s.sqrt()
            } + u.eps;
            if with_momentum {
                let b = &mut momentum_buffer[i];
                *b = *b * u.momentum + g / avg;
                *p += neg_lr * *b;
            } else {
                *p += neg_lr * g / avg;
            }
        }
        Ok(())
    }

    fn adagrad_update(
        &self,
        update: &AdagradUpdate<E>,
        param: &mut CpuBuffer<E>,
        grad: &CpuBuffer<E>,
        sum: &mut CpuBuffer<E>,
    ) -> Result<(), Error> {
        let u = *update;
        check_lengths("adagrad", param.len(), &[("gradient", grad.len()), ("sum", sum.len())])?;
        let neg_lr = -u.lr;
        for ((p, &g), s) in param.iter_mut().zip(grad.iter()).zip(sum.iter_mut()) {
            let g = effective_grad(g, *p, u.maximize, u.weight_decay);
            *s += g * g;
            *p += neg_lr * g / (s.sqrt() + u.eps);
        }
        Ok(())
    }
}

impl<E: Dtype> GradientClipKernel<E> for Cpu {
    fn norm(&self, buffer: &CpuBuffer<E>, norm_type: NormType) -> Result<E, Error> {
        Ok(match norm_type {
            NormType::One => buffer.iter().fold(E::ZERO, |acc, &x| acc + x.abs()),
            NormType::Two => buffer.iter().fold(E::ZERO, |acc, &x| acc + x * x).sqrt(),
            NormType::Infinity => buffer.iter().fold(E::ZERO, |acc, &x| {
                let a = x.abs();
                if a > acc || a.is_nan() { a } else { acc }
            }),
        })
    }

    fn scale(&self, buffer: &mut CpuBuffer<E>, factor: E) -> Result<(), Error> {
        for x in buffer.iter_mut() {
            *x *= factor;
        }
        Ok(())
    }

    fn clamp(&self, buffer: &mut CpuBuffer<E>, min: E, max: E) -> Result<(), Error> {
        if min > max || min.is_nan() || max.is_nan() {
            return Err(Error::InvalidArgument {
                op: "clamp",
                message: format!("the bounds must satisfy min <= max, got min {min:?} and max {max:?}"),
            });
        }
        for x in buffer.iter_mut() {
            // NaN stays NaN, as in PyTorch's clamp.
            if *x < min {
                *x = min;
            } else if *x > max {
                *x = max;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferrograd_device::Storage;

    fn buffer(values: &[f64]) -> CpuBuffer<f64> {
        Cpu::default().try_from_host(values.to_vec()).unwrap()
    }

    #[test]
    fn sgd_first_momentum_step_writes_the_gradient_then_damps() {
        let cpu = Cpu::default();
        let update = SgdUpdate {
            lr: 0.5,
            momentum: 0.9,
            one_minus_dampening: 0.75,
            weight_decay: 0.0,
            nesterov: false,
            maximize: false,
        };
        let (mut p, g, mut b) = (buffer(&[1.0, -2.0]), buffer(&[0.2, 0.4]), buffer(&[0.0, 0.0]));
        cpu.sgd_update(&update, &mut p, &g, Some((&mut b, true))).unwrap();
        // First step: b = g exactly (no dampening), p = p - lr·g.
        assert_eq!(&b[..], &[0.2, 0.4]);
        assert_eq!(&p[..], &[1.0 - 0.5 * 0.2, -2.0 - 0.5 * 0.4]);
        cpu.sgd_update(&update, &mut p, &g, Some((&mut b, false))).unwrap();
        // Then b = 0.9·b + 0.75·g.
        let b0 = 0.2 * 0.9 + 0.75 * 0.2;
        assert_eq!(b[0], b0);
        assert_eq!(p[0], 1.0 - 0.5 * 0.2 - 0.5 * b0);
    }

    #[test]
    fn lengths_are_checked_before_anything_is_written() {
        let cpu = Cpu::default();
        let update = AdagradUpdate {
            lr: 0.1,
            eps: 1e-10,
            weight_decay: 0.0,
            maximize: false,
        };
        let (mut p, g, mut s) = (buffer(&[1.0, 2.0]), buffer(&[1.0, 1.0]), buffer(&[0.0]));
        let error = cpu.adagrad_update(&update, &mut p, &g, &mut s).unwrap_err();
        assert_eq!(
            error.to_string(),
            "adagrad: the parameter has 2 elements but its sum has 1"
        );
        assert_eq!(&p[..], &[1.0, 2.0]);
    }

    #[test]
    fn amsgrad_without_its_buffer_is_an_error() {
        let cpu = Cpu::default();
        let update = AdamUpdate {
            step_size: 0.1,
            bias_correction2_sqrt: 1.0,
            one_minus_beta1: 0.1,
            beta2: 0.999,
            one_minus_beta2: 0.001,
            eps: 1e-8,
            weight_decay: 0.0,
            decay_factor: 1.0,
            amsgrad: true,
            maximize: false,
        };
        let (mut p, g, mut m, mut v) = (buffer(&[1.0]), buffer(&[1.0]), buffer(&[0.0]), buffer(&[0.0]));
        let error = cpu.adam_update(&update, &mut p, &g, &mut m, &mut v, None).unwrap_err();
        assert!(error.to_string().contains("max_exp_avg_sq"), "{error}");
    }

    #[test]
    fn norms_scale_and_clamp() {
        let cpu = Cpu::default();
        let mut x = buffer(&[3.0, -4.0, 0.0]);
        assert_eq!(cpu.norm(&x, NormType::One).unwrap(), 7.0);
        assert_eq!(cpu.norm(&x, NormType::Two).unwrap(), 5.0);
        assert_eq!(cpu.norm(&x, NormType::Infinity).unwrap(), 4.0);
        assert_eq!(cpu.norm(&buffer(&[]), NormType::Two).unwrap(), 0.0);
        cpu.scale(&mut x, 0.5).unwrap();
        assert_eq!(&x[..], &[1.5, -2.0, 0.0]);
        cpu.clamp(&mut x, -1.0, 1.0).unwrap();
        assert_eq!(&x[..], &[1.0, -1.0, 0.0]);
        assert!(cpu.clamp(&mut x, 1.0, -1.0).is_err());
    }
}
