//! Optimizer updates and gradient clipping: each update is one fused pass over a
//! parameter's buffer, its gradient's and its state's, with no temporary buffers.
//!
//! The hyperparameters reach a kernel already combined and rounded to the element
//! type the way PyTorch's single-tensor implementations do it on the host (a step
//! size `lr / (1 − β₁ᵗ)` is computed in `f64`, then rounded once), so every device
//! computes the same thing from the same scalars. Every buffer of one update has the
//! parameter's length: a kernel checks that first and returns
//! [`Error::ShapeMismatch`] otherwise.

use crate::dtype::Dtype;
use crate::error::Error;
use crate::storage::Storage;

/// One step of SGD (PyTorch's `torch.optim.SGD`), per element:
///
/// ```text
/// g = ±grad + weight_decay · p                    (− when maximising)
/// with momentum:  b = g on the first step, else b = momentum · b + (1 − dampening) · g
///                 g = g + momentum · b (nesterov), else g = b
/// p = p − lr · g
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SgdUpdate<E> {
    /// The learning rate.
    pub lr: E,
    /// The momentum factor; 0 for none (then there is no momentum buffer).
    pub momentum: E,
    /// `1 − dampening`: how much of the gradient enters the momentum buffer.
    pub one_minus_dampening: E,
    /// The L2 penalty added to the gradient.
    pub weight_decay: E,
    /// Nesterov momentum.
    pub nesterov: bool,
    /// Ascend instead of descend (negates the gradient).
    pub maximize: bool,
}

/// One step of Adam or AdamW (PyTorch's `torch.optim.Adam` / `AdamW`), per element:
///
/// ```text
/// p = p · decay_factor                            (AdamW: 1 − lr · weight_decay)
/// g = ±grad + weight_decay · p                    (Adam's L2 penalty; 0 for AdamW)
/// m = m + (1 − β₁) · (g − m)                      (PyTorch's lerp)
/// v = β₂ · v + (1 − β₂) · g²
/// v̂ = max(v̂, v) with amsgrad, else v
/// p = p − step_size · m / (√v̂ / bias_correction2_sqrt + eps)
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdamUpdate<E> {
    /// `lr / (1 − β₁ᵗ)` at step `t`.
    pub step_size: E,
    /// `√(1 − β₂ᵗ)` at step `t`.
    pub bias_correction2_sqrt: E,
    /// `1 − β₁`, the weight of the gradient in the first moment.
    pub one_minus_beta1: E,
    /// β₂, the decay of the second moment.
    pub beta2: E,
    /// `1 − β₂`.
    pub one_minus_beta2: E,
    /// Added to the denominator for stability.
    pub eps: E,
    /// Adam's L2 penalty added to the gradient (0 for AdamW, whose decay is
    /// `decay_factor`).
    pub weight_decay: E,
    /// What the parameter is multiplied by before the update: AdamW's decoupled
    /// decay `1 − lr · weight_decay`, 1 for Adam.
    pub decay_factor: E,
    /// Keep the maximum of the second moment (AMSGrad).
    pub amsgrad: bool,
    /// Ascend instead of descend.
    pub maximize: bool,
}

/// One step of RMSprop (PyTorch's `torch.optim.RMSprop`), per element:
///
/// ```text
/// g = ±grad + weight_decay · p
/// s = α · s + (1 − α) · g²
/// centered:   a = a + (1 − α) · (g − a),  d = √(s − a²) + eps;  else d = √s + eps
/// momentum:   b = momentum · b + g / d,  p = p − lr · b;        else p = p − lr · g / d
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RmspropUpdate<E> {
    /// The learning rate.
    pub lr: E,
    /// α, the decay of the running average of squared gradients.
    pub alpha: E,
    /// `1 − α`.
    pub one_minus_alpha: E,
    /// Added to the denominator for stability.
    pub eps: E,
    /// The L2 penalty added to the gradient.
    pub weight_decay: E,
    /// The momentum factor (used only when a momentum buffer is given).
    pub momentum: E,
    /// Ascend instead of descend.
    pub maximize: bool,
}

/// One step of Adagrad (PyTorch's `torch.optim.Adagrad`), per element:
///
/// ```text
/// g = ±grad + weight_decay · p
/// s = s + g²
/// p = p − lr · g / (√s + eps)          (lr already decayed: lr / (1 + (t − 1) · lr_decay))
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AdagradUpdate<E> {
    /// The learning rate of this step, decay included.
    pub lr: E,
    /// Added to the denominator for stability.
    pub eps: E,
    /// The L2 penalty added to the gradient.
    pub weight_decay: E,
    /// Ascend instead of descend.
    pub maximize: bool,
}

/// The rows of a row-sparse gradient, as an update kernel reads them: `indices[k]`'s
/// row is `values[k * row_len..(k + 1) * row_len]`. The indices must be sorted and
/// distinct (a coalesced gradient, as `SparseGrad` keeps them): Adagrad and SparseAdam
/// are not linear in the gradient, and a device updating rows in parallel would race on
/// a repeated one.
#[derive(Debug)]
pub struct SparseRows<'a, V> {
    /// The rows touched, each once.
    pub indices: &'a [usize],
    /// `indices.len() × row_len` elements, row-major.
    pub values: &'a V,
    /// The elements of one row.
    pub row_len: usize,
}

/// One step of PyTorch's `torch.optim.SparseAdam` on the rows a gradient touched, per
/// element of those rows (the others, their moments included, are left alone):
///
/// ```text
/// g = ±grad
/// m' = m + (1 − β₁) · (g − m)        v' = v + (1 − β₂) · (g² − v)
/// p = p − step_size · m' / (√v' + eps)      step_size = lr · √(1 − β₂ᵗ) / (1 − β₁ᵗ)
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SparseAdamUpdate<E> {
    /// `lr · √(1 − β₂ᵗ) / (1 − β₁ᵗ)`, with `t` the parameter's step count.
    pub step_size: E,
    /// `1 − β₁`.
    pub one_minus_beta1: E,
    /// `1 − β₂`.
    pub one_minus_beta2: E,
    /// Added to `√v'`.
    pub eps: E,
    /// Ascend instead of descend.
    pub maximize: bool,
}

/// Checks a sparse update's buffers: the values fill the rows, the rows are sorted and
/// distinct, every row lies inside the parameter, and every state buffer has the
/// parameter's length.
pub fn check_sparse_rows(
    op: &'static str,
    param_len: usize,
    indices: &[usize],
    values_len: usize,
    row_len: usize,
    others: &[(&str, usize)],
) -> Result<(), Error> {
    check_lengths(op, param_len, others)?;
    if indices.len().checked_mul(row_len) != Some(values_len) {
        return Err(Error::ShapeMismatch {
            op,
            message: format!(
                "{} rows of {row_len} elements need {} values, the gradient has {values_len}",
                indices.len(),
                indices.len().saturating_mul(row_len)
            ),
        });
    }
    if let Some(pair) = indices.windows(2).find(|pair| pair[0] >= pair[1]) {
        return Err(Error::InvalidArgument {
            op,
            message: format!(
                "gradient rows must be sorted and distinct (a coalesced gradient), but row {} comes after row {}",
                pair[1], pair[0]
            ),
        });
    }
    if let Some(&bad) = indices.iter().find(|&&i| {
        i.checked_add(1)
            .and_then(|end| end.checked_mul(row_len))
            .is_none_or(|end| end > param_len)
    }) {
        return Err(Error::InvalidArgument {
            op,
            message: format!(
                "gradient row {bad} lies outside a parameter of {param_len} elements in rows of {row_len}"
            ),
        });
    }
    Ok(())
}

/// The sparse updates on host slices: what the CPU runs in place, and what any other
/// device runs by default through a copy to the host and back. Each follows the order
/// of PyTorch's sparse code path, so the roundings match it.
pub mod sparse_rows {
    use super::{AdagradUpdate, SparseAdamUpdate};
    use crate::dtype::Dtype;

    /// `p[r] = p[r] − lr · (±g[r])` for every touched row `r`.
    pub fn sgd<E: Dtype>(lr: E, maximize: bool, param: &mut [E], indices: &[usize], values: &[E], row_len: usize) {
        let neg_lr = -lr;
        for (row, &index) in values.chunks_exact(row_len.max(1)).zip(indices) {
            for (p, &g) in param[index * row_len..(index + 1) * row_len].iter_mut().zip(row) {
                let g = if maximize { -g } else { g };
                *p += neg_lr * g;
            }
        }
    }

    /// Adagrad on the touched rows (`update.weight_decay` must be zero, as PyTorch
    /// requires with a sparse gradient).
    pub fn adagrad<E: Dtype>(
        update: &AdagradUpdate<E>,
        param: &mut [E],
        sum: &mut [E],
        indices: &[usize],
        values: &[E],
        row_len: usize,
    ) {
        let neg_lr = -update.lr;
        for (row, &index) in values.chunks_exact(row_len.max(1)).zip(indices) {
            let range = index * row_len..(index + 1) * row_len;
            for ((p, s), &g) in param[range.clone()].iter_mut().zip(&mut sum[range]).zip(row) {
                let g = if update.maximize { -g } else { g };
                *s += g * g;
                *p += neg_lr * (g / (s.sqrt() + update.eps));
            }
        }
    }

    /// SparseAdam on the touched rows.
    pub fn sparse_adam<E: Dtype>(
        update: &SparseAdamUpdate<E>,
        param: &mut [E],
        exp_avg: &mut [E],
        exp_avg_sq: &mut [E],
        indices: &[usize],
        values: &[E],
        row_len: usize,
    ) {
        let neg_step = -update.step_size;
        for (row, &index) in values.chunks_exact(row_len.max(1)).zip(indices) {
            let range = index * row_len..(index + 1) * row_len;
            let moments = exp_avg[range.clone()].iter_mut().zip(&mut exp_avg_sq[range.clone()]);
            for ((p, (m, v)), &g) in param[range].iter_mut().zip(moments).zip(row) {
                let g = if update.maximize { -g } else { g };
                let (old_m, old_v) = (*m, *v);
                let m_step = (g - old_m) * update.one_minus_beta1;
                let v_step = (g * g - old_v) * update.one_minus_beta2;
                *m = old_m + m_step;
                *v = old_v + v_step;
                let denom = (v_step + old_v).sqrt() + update.eps;
                *p += neg_step * ((m_step + old_m) / denom);
            }
        }
    }
}

/// Runs optimizer updates in place on a device.
///
/// Every buffer is a whole buffer, read and written element by element without a
/// layout. Each kernel checks, before it touches any, that every buffer has the
/// parameter's length ([`check_lengths`]) and, for a sparse gradient, that its values
/// fill its rows and every row lies inside the parameter ([`check_sparse_rows`]); a
/// mismatch is an error naming the optimizer and the sizes.
///
/// The sparse updates (`sparse_*`) touch only the rows of a row-sparse gradient. Their
/// default bodies copy the buffers to the host and back, which is correct on any
/// device but costs the whole parameter; a device overrides them to work in place
/// (the CPU does).
pub trait OptimizerKernel<E: Dtype>: Storage<E> {
    /// An SGD step on `param`. `momentum_buffer` is `None` without momentum; with it,
    /// `Some((buffer, first))`, where `first` says the buffer is new and the step
    /// writes it (PyTorch's first momentum buffer is the gradient itself, undamped).
    fn sgd_update(
        &self,
        update: &SgdUpdate<E>,
        param: &mut Self::Vec,
        grad: &Self::Vec,
        momentum_buffer: Option<(&mut Self::Vec, bool)>,
    ) -> Result<(), Error>;

    /// An Adam or AdamW step on `param`; `max_exp_avg_sq` is required with `amsgrad`.
    fn adam_update(
        &self,
        update: &AdamUpdate<E>,
        param: &mut Self::Vec,
        grad: &Self::Vec,
        exp_avg: &mut Self::Vec,
        exp_avg_sq: &mut Self::Vec,
        max_exp_avg_sq: Option<&mut Self::Vec>,
    ) -> Result<(), Error>;

    /// An RMSprop step on `param`; `grad_avg` is given when centered,
    /// `momentum_buffer` when the momentum is positive.
    fn rmsprop_update(
        &self,
        update: &RmspropUpdate<E>,
        param: &mut Self::Vec,
        grad: &Self::Vec,
        square_avg: &mut Self::Vec,
        grad_avg: Option<&mut Self::Vec>,
        momentum_buffer: Option<&mut Self::Vec>,
    ) -> Result<(), Error>;

    /// An Adagrad step on `param`.
    fn adagrad_update(
        &self,
        update: &AdagradUpdate<E>,
        param: &mut Self::Vec,
        grad: &Self::Vec,
        sum: &mut Self::Vec,
    ) -> Result<(), Error>;

    /// SGD without momentum or weight decay on the rows of a sparse gradient:
    /// `p[r] −= lr · (±g[r])`.
    fn sparse_sgd_update(
        &self,
        lr: E,
        maximize: bool,
        param: &mut Self::Vec,
        grad: &SparseRows<'_, Self::Vec>,
    ) -> Result<(), Error> {
        let values = self.try_to_host(grad.values)?;
        check_sparse_rows("sgd", Self::len(param), grad.indices, values.len(), grad.row_len, &[])?;
        let mut host = self.try_to_host(param)?;
        sparse_rows::sgd(lr, maximize, &mut host, grad.indices, &values, grad.row_len);
        *param = self.try_from_host(host)?;
        Ok(())
    }

    /// Adagrad on the rows of a sparse gradient (`update.weight_decay` is ignored: it
    /// must be zero with a sparse gradient).
    fn sparse_adagrad_update(
        &self,
        update: &AdagradUpdate<E>,
        param: &mut Self::Vec,
        sum: &mut Self::Vec,
        grad: &SparseRows<'_, Self::Vec>,
    ) -> Result<(), Error> {
        let values = self.try_to_host(grad.values)?;
        let len = Self::len(param);
        check_sparse_rows(
            "adagrad",
            len,
            grad.indices,
            values.len(),
            grad.row_len,
            &[("sum", Self::len(sum))],
        )?;
        let (mut p, mut s) = (self.try_to_host(param)?, self.try_to_host(sum)?);
        sparse_rows::adagrad(update, &mut p, &mut s, grad.indices, &values, grad.row_len);
        *param = self.try_from_host(p)?;
        *sum = self.try_from_host(s)?;
        Ok(())
    }

    /// A SparseAdam step on the rows of a sparse gradient.
    fn sparse_adam_update(
        &self,
        update: &SparseAdamUpdate<E>,
        param: &mut Self::Vec,
        exp_avg: &mut Self::Vec,
        exp_avg_sq: &mut Self::Vec,
        grad: &SparseRows<'_, Self::Vec>,
    ) -> Result<(), Error> {
        let values = self.try_to_host(grad.values)?;
        let others = [("exp_avg", Self::len(exp_avg)), ("exp_avg_sq", Self::len(exp_avg_sq))];
        check_sparse_rows(
            "sparse_adam",
            Self::len(param),
            grad.indices,
            values.len(),
            grad.row_len,
            &others,
        )?;
        let (mut p, mut m, mut v) = (
            self.try_to_host(param)?,
            self.try_to_host(exp_avg)?,
            self.try_to_host(exp_avg_sq)?,
        );
        sparse_rows::sparse_adam(update, &mut p, &mut m, &mut v, grad.indices, &values, grad.row_len);
        *param = self.try_from_host(p)?;
        *exp_avg = self.try_from_host(m)?;
        *exp_avg_sq = self.try_from_host(v)?;
        Ok(())
    }
}

/// Which vector norm [`GradientClipKernel::norm`] computes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NormType {
    /// Σ |x|.
    One,
    /// √(Σ x²), the Euclidean norm.
    Two,
    /// max |x|.
    Infinity,
}

/// What gradient clipping needs from a device: a norm, a scale, a clamp.
pub trait GradientClipKernel<E: Dtype>: Storage<E> {
    /// The norm of every element of `buffer` (0 for an empty one).
    fn norm(&self, buffer: &Self::Vec, norm_type: NormType) -> Result<E, Error>;
    /// Multiplies every element by `factor`.
    fn scale(&self, buffer: &mut Self::Vec, factor: E) -> Result<(), Error>;
    /// Clamps every element into `[min, max]`.
    fn clamp(&self, buffer: &mut Self::Vec, min: E, max: E) -> Result<(), Error>;
}

/// Checks that every buffer of an update has the parameter's length: what a kernel
/// calls first, so a wrong state (from a checkpoint of another model, say) is an
/// error naming the buffer instead of a panic or a partial update.
pub fn check_lengths(op: &'static str, param_len: usize, others: &[(&str, usize)]) -> Result<(), Error> {
    for &(name, len) in others {
        if len != param_len {
            return Err(Error::ShapeMismatch {
                op,
                message: format!("the parameter has {param_len} elements but its {name} has {len}"),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sparse_rows_must_be_coalesced_and_inside_the_parameter() {
        // A parameter of 4 rows of 2.
        assert!(check_sparse_rows("sgd", 8, &[0, 3], 4, 2, &[]).is_ok());
        let repeated = check_sparse_rows("adagrad", 8, &[1, 1], 4, 2, &[]).unwrap_err();
        assert!(repeated.to_string().contains("sorted and distinct"), "{repeated}");
        assert!(check_sparse_rows("sgd", 8, &[2, 1], 4, 2, &[]).is_err());
        let outside = check_sparse_rows("sgd", 8, &[4], 2, 2, &[]).unwrap_err();
        assert!(outside.to_string().contains("row 4 lies outside"), "{outside}");
        assert!(check_sparse_rows("sgd", 8, &[0], 3, 2, &[]).is_err());
    }
}
