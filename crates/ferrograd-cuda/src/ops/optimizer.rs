//! Optimizer updates ([`OptimizerKernel`]) and gradient clipping
//! ([`GradientClipKernel`]).
//!
//! Each update is one kernel, one thread per element, reading and writing the
//! parameter, its gradient and its state in one pass, in the order of operations of the
//! CPU's implementation (PyTorch's single-tensor one), with products, quotients and
//! square roots that are never fused into multiply-adds: a step on the GPU rounds
//! exactly as the same step on the CPU. The sparse updates run in place on the rows a
//! gradient touched (their indices copied to the GPU), not through the host as the
//! trait's defaults do.
//!
//! A norm is a reduction in two launches of `clip_norm`: blocks of 256 threads each sum
//! (or take the maximum of) a share of the buffer, then one block combines the blocks'
//! results; the value is read back to the host, which takes the square root of a
//! 2-norm.

use crate::buffer::CudaBuffer;
use crate::compile::KernelSource;
use crate::device::{Cuda, grid_for};
use crate::element::CudaElement;
use cudarc::driver::{LaunchConfig, PushKernelArg};
use ferrograd_device::ops::optimizer::{
    AdagradUpdate, AdamUpdate, GradientClipKernel, NormType, OptimizerKernel, RmspropUpdate, SgdUpdate,
    SparseAdamUpdate, SparseRows, check_lengths, check_sparse_rows,
};
use ferrograd_device::{Dtype, Error, Storage};

/// `optimizer.cu`.
pub(crate) const OPTIMIZER: KernelSource = KernelSource {
    name: "optimizer",
    source: include_str!("optimizer.cu"),
    functions: &[
        "optim_sgd",
        "optim_adam",
        "optim_rmsprop",
        "optim_adagrad",
        "optim_sparse_sgd",
        "optim_sparse_adagrad",
        "optim_sparse_adam",
        "clip_norm",
        "clip_scale",
        "clip_clamp",
    ],
    element_types: &["float", "double"],
};

/// The `flags` bits of the update kernels (`FLAG_*` of optimizer.cu).
struct Flags;

impl Flags {
    const MAXIMIZE: u32 = 1;
    const DECAY: u32 = 2;
    const MOMENTUM: u32 = 4;
    const FIRST: u32 = 8;
    const NESTEROV: u32 = 16;
    const AMSGRAD: u32 = 32;
    const NEAR_START: u32 = 64;
    const CENTERED: u32 = 128;

    /// `bit` where `on`, else 0.
    fn of(on: bool, bit: u32) -> u32 {
        if on { bit } else { 0 }
    }
}

/// Threads per block of `clip_norm`, as its shared array is sized.
const NORM_THREADS: u32 = 256;
/// The most blocks of `clip_norm`'s first pass: the second pass's one block combines
/// their results.
const NORM_BLOCKS: u64 = 1024;

/// A null pointer for a kernel's optional buffer, which the kernel does not read when
/// its flag is clear.
const NULL: u64 = 0;

impl Cuda {
    /// The updates' entry checks of ownership: every buffer on this GPU.
    fn check_buffers<E: CudaElement>(&self, op: &'static str, buffers: &[Option<&CudaBuffer<E>>]) -> Result<(), Error> {
        buffers
            .iter()
            .flatten()
            .try_for_each(|buffer| self.check_buffer(buffer, op, "buffer"))
    }

    /// The rows of a sparse gradient, checked, and their indices on the GPU.
    fn sparse_indices<E: Dtype + CudaElement>(
        &self,
        op: &'static str,
        param_len: usize,
        grad: &SparseRows<'_, CudaBuffer<E>>,
        others: &[(&str, usize)],
    ) -> Result<CudaBuffer<usize>, Error> {
        self.check_buffer(grad.values, op, "grad")?;
        check_sparse_rows(op, param_len, grad.indices, grad.values.len(), grad.row_len, others)?;
        self.try_from_host(grad.indices.to_vec())
    }
}

/// Each update one fused kernel, rounding exactly as the CPU's (no fused multiply-adds);
/// the sparse updates in place on the touched rows.
impl<E: Dtype + CudaElement> OptimizerKernel<E> for Cuda {
    fn sgd_update(
        &self,
        update: &SgdUpdate<E>,
        param: &mut CudaBuffer<E>,
        grad: &CudaBuffer<E>,
        momentum_buffer: Option<(&mut CudaBuffer<E>, bool)>,
    ) -> Result<(), Error> {
        let op = "sgd";
        let len = param.len();
        check_lengths(op, len, &[("gradient", grad.len())])?;
        if let Some((buffer, _)) = &momentum_buffer {
            check_lengths(op, len, &[("momentum buffer", buffer.len())])?;
        }
        let momentum_ref = momentum_buffer.as_ref().map(|(buffer, _)| &**buffer);
        self.check_buffers(op, &[Some(&*param), Some(grad), momentum_ref])?;
        let u = *update;
        let flags = Flags::of(u.maximize, Flags::MAXIMIZE)
            | Flags::of(u.weight_decay != E::ZERO, Flags::DECAY)
            | Flags::of(momentum_buffer.is_some(), Flags::MOMENTUM)
            | Flags::of(momentum_buffer.as_ref().is_some_and(|(_, first)| *first), Flags::FIRST)
            | Flags::of(u.nesterov, Flags::NESTEROV);
        let (Some(p), Some(g)) = (param.allocation_mut(), grad.allocation()) else {
            return Ok(());
        };
        let function = self.gpu.function(&OPTIMIZER, "optim_sgd", E::C_TYPE)?;
        let items = len as u64;
        let scalars = [u.lr, u.momentum, u.one_minus_dampening, u.weight_decay].map(|x| x.to_stored());
        let mut launch = self.gpu.stream.launch_builder(&function);
        launch.arg(&mut p.slice).arg(&g.slice);
        let mut momentum = momentum_buffer.and_then(|(buffer, _)| buffer.allocation_mut());
        match &mut momentum {
            Some(b) => launch.arg(&mut b.slice),
            None => launch.arg(&NULL),
        };
        launch.arg(&items);
        for scalar in &scalars {
            launch.arg(scalar);
        }
        launch.arg(&flags);
        // SAFETY: `optim_sgd(T *param, const T *grad, T *momentum_buffer, u64 len, T lr,
        // T momentum, T one_minus_dampening, T weight_decay, unsigned flags)` was
        // compiled with T = E::C_TYPE, the C name of E::Stored, the type of the slices
        // and scalars. It reads and writes elements 0..len of each buffer, all of
        // length len (checked); the momentum buffer is null only without its flag, when
        // the kernel does not touch it.
        unsafe { launch.launch(grid_for(items)) }.map_err(|e| self.gpu.error("launching optim_sgd", &e))?;
        Ok(())
    }

    fn adam_update(
        &self,
        update: &AdamUpdate<E>,
        param: &mut CudaBuffer<E>,
        grad: &CudaBuffer<E>,
        exp_avg: &mut CudaBuffer<E>,
        exp_avg_sq: &mut CudaBuffer<E>,
        max_exp_avg_sq: Option<&mut CudaBuffer<E>>,
    ) -> Result<(), Error> {
        let op = "adam";
        let u = *update;
        let len = param.len();
        check_lengths(
            op,
            len,
            &[
                ("gradient", grad.len()),
                ("exp_avg", exp_avg.len()),
                ("exp_avg_sq", exp_avg_sq.len()),
            ],
        )?;
        let max_exp_avg_sq = match (u.amsgrad, max_exp_avg_sq) {
            (false, _) => None,
            (true, Some(max_sq)) => {
                check_lengths(op, len, &[("max_exp_avg_sq", max_sq.len())])?;
                Some(max_sq)
            }
            (true, None) => {
                return Err(Error::InvalidArgument {
                    op,
                    message: "amsgrad needs a max_exp_avg_sq buffer, none was given".into(),
                });
            }
        };
        self.check_buffers(
            op,
            &[
                Some(&*param),
                Some(grad),
                Some(&*exp_avg),
                Some(&*exp_avg_sq),
                max_exp_avg_sq.as_deref(),
            ],
        )?;
        let flags = Flags::of(u.maximize, Flags::MAXIMIZE)
            | Flags::of(u.weight_decay != E::ZERO, Flags::DECAY)
            | Flags::of(u.amsgrad, Flags::AMSGRAD)
            | Flags::of(u.one_minus_beta1.abs() < E::from_f64(0.5), Flags::NEAR_START);
        let (Some(p), Some(g), Some(m), Some(v)) = (
            param.allocation_mut(),
            grad.allocation(),
            exp_avg.allocation_mut(),
            exp_avg_sq.allocation_mut(),
        ) else {
            return Ok(());
        };
        let function = self.gpu.function(&OPTIMIZER, "optim_adam", E::C_TYPE)?;
        let items = len as u64;
        let scalars = [
            u.step_size,
            u.bias_correction2_sqrt,
            u.one_minus_beta1,
            u.beta2,
            u.one_minus_beta2,
            u.eps,
            u.weight_decay,
            u.decay_factor,
        ]
        .map(|x| x.to_stored());
        let mut launch = self.gpu.stream.launch_builder(&function);
        launch
            .arg(&mut p.slice)
            .arg(&g.slice)
            .arg(&mut m.slice)
            .arg(&mut v.slice);
        let mut max_sq = max_exp_avg_sq.and_then(|buffer| buffer.allocation_mut());
        match &mut max_sq {
            Some(max_sq) => launch.arg(&mut max_sq.slice),
            None => launch.arg(&NULL),
        };
        launch.arg(&items);
        for scalar in &scalars {
            launch.arg(scalar);
        }
        launch.arg(&flags);
        // SAFETY: `optim_adam(T *param, const T *grad, T *exp_avg, T *exp_avg_sq, T
        // *max_exp_avg_sq, u64 len, T step_size, T bias_correction2_sqrt, T
        // one_minus_beta1, T beta2, T one_minus_beta2, T eps, T weight_decay, T
        // decay_factor, unsigned flags)` was compiled with T = E::C_TYPE, the C name of
        // E::Stored, the type of the slices and scalars. It reads and writes elements
        // 0..len of each buffer, all of length len (checked); max_exp_avg_sq is null
        // only without AMSGrad, when the kernel does not touch it.
        unsafe { launch.launch(grid_for(items)) }.map_err(|e| self.gpu.error("launching optim_adam", &e))?;
        Ok(())
    }

    fn rmsprop_update(
        &self,
        update: &RmspropUpdate<E>,
        param: &mut CudaBuffer<E>,
        grad: &CudaBuffer<E>,
        square_avg: &mut CudaBuffer<E>,
        grad_avg: Option<&mut CudaBuffer<E>>,
        momentum_buffer: Option<&mut CudaBuffer<E>>,
    ) -> Result<(), Error> {
        let op = "rmsprop";
        let u = *update;
        let len = param.len();
        check_lengths(op, len, &[("gradient", grad.len()), ("square_avg", square_avg.len())])?;
        if let Some(a) = &grad_avg {
            check_lengths(op, len, &[("grad_avg", a.len())])?;
        }
        if let Some(b) = &momentum_buffer {
            check_lengths(op, len, &[("momentum_buffer", b.len())])?;
        }
        self.check_buffers(
            op,
            &[
                Some(&*param),
                Some(grad),
                Some(&*square_avg),
                grad_avg.as_deref(),
                momentum_buffer.as_deref(),
            ],
        )?;
        let flags = Flags::of(u.maximize, Flags::MAXIMIZE)
            | Flags::of(u.weight_decay != E::ZERO, Flags::DECAY)
            | Flags::of(grad_avg.is_some(), Flags::CENTERED)
            | Flags::of(momentum_buffer.is_some(), Flags::MOMENTUM);
        let (Some(p), Some(g), Some(s)) = (param.allocation_mut(), grad.allocation(), square_avg.allocation_mut())
        else {
            return Ok(());
        };
        let function = self.gpu.function(&OPTIMIZER, "optim_rmsprop", E::C_TYPE)?;
        let items = len as u64;
        let scalars = [u.lr, u.alpha, u.one_minus_alpha, u.eps, u.weight_decay, u.momentum].map(|x| x.to_stored());
        let mut launch = self.gpu.stream.launch_builder(&function);
        launch.arg(&mut p.slice).arg(&g.slice).arg(&mut s.slice);
        let mut average = grad_avg.and_then(|buffer| buffer.allocation_mut());
        match &mut average {
            Some(a) => launch.arg(&mut a.slice),
            None => launch.arg(&NULL),
        };
        let mut momentum = momentum_buffer.and_then(|buffer| buffer.allocation_mut());
        match &mut momentum {
            Some(b) => launch.arg(&mut b.slice),
            None => launch.arg(&NULL),
        };
        launch.arg(&items);
        for scalar in &scalars {
            launch.arg(scalar);
        }
        launch.arg(&flags);
        // SAFETY: `optim_rmsprop(T *param, const T *grad, T *square_avg, T *grad_avg, T
        // *momentum_buffer, u64 len, T lr, T alpha, T one_minus_alpha, T eps, T
        // weight_decay, T momentum, unsigned flags)` was compiled with T = E::C_TYPE,
        // the C name of E::Stored, the type of the slices and scalars. It reads and
        // writes elements 0..len of each buffer, all of length len (checked); grad_avg
        // and momentum_buffer are null only without their flags, when the kernel does
        // not touch them.
        unsafe { launch.launch(grid_for(items)) }.map_err(|e| self.gpu.error("launching optim_rmsprop", &e))?;
        Ok(())
    }

    fn adagrad_update(
        &self,
        update: &AdagradUpdate<E>,
        param: &mut CudaBuffer<E>,
        grad: &CudaBuffer<E>,
        sum: &mut CudaBuffer<E>,
    ) -> Result<(), Error> {
        let op = "adagrad";
        let u = *update;
        let len = param.len();
        check_lengths(op, len, &[("gradient", grad.len()), ("sum", sum.len())])?;
        self.check_buffers(op, &[Some(&*param), Some(grad), Some(&*sum)])?;
        let flags = Flags::of(u.maximize, Flags::MAXIMIZE) | Flags::of(u.weight_decay != E::ZERO, Flags::DECAY);
        let (Some(p), Some(g), Some(s)) = (param.allocation_mut(), grad.allocation(), sum.allocation_mut()) else {
            return Ok(());
        };
        let function = self.gpu.function(&OPTIMIZER, "optim_adagrad", E::C_TYPE)?;
        let items = len as u64;
        let [lr, eps, weight_decay] = [u.lr, u.eps, u.weight_decay].map(|x| x.to_stored());
        let mut launch = self.gpu.stream.launch_builder(&function);
        launch
            .arg(&mut p.slice)
            .arg(&g.slice)
            .arg(&mut s.slice)
            .arg(&items)
            .arg(&lr)
            .arg(&eps)
            .arg(&weight_decay)
            .arg(&flags);
        // SAFETY: `optim_adagrad(T *param, const T *grad, T *sum, u64 len, T lr, T eps, T
        // weight_decay, unsigned flags)` was compiled with T = E::C_TYPE, the C name of
        // E::Stored, the type of the slices and scalars. It reads and writes elements
        // 0..len of each buffer, all of length len (checked).
        unsafe { launch.launch(grid_for(items)) }.map_err(|e| self.gpu.error("launching optim_adagrad", &e))?;
        Ok(())
    }

    fn sparse_sgd_update(
        &self,
        lr: E,
        maximize: bool,
        param: &mut CudaBuffer<E>,
        grad: &SparseRows<'_, CudaBuffer<E>>,
    ) -> Result<(), Error> {
        let op = "sgd";
        self.check_buffer(param, op, "param")?;
        let indices = self.sparse_indices(op, param.len(), grad, &[])?;
        let items = grad.values.len() as u64;
        let (Some(p), Some(rows), Some(values)) =
            (param.allocation_mut(), indices.allocation(), grad.values.allocation())
        else {
            return Ok(());
        };
        let function = self.gpu.function(&OPTIMIZER, "optim_sparse_sgd", E::C_TYPE)?;
        let (row_len, lr, flags) = (
            grad.row_len as u64,
            lr.to_stored(),
            Flags::of(maximize, Flags::MAXIMIZE),
        );
        let mut launch = self.gpu.stream.launch_builder(&function);
        launch
            .arg(&mut p.slice)
            .arg(&rows.slice)
            .arg(&values.slice)
            .arg(&row_len)
            .arg(&items)
            .arg(&lr)
            .arg(&flags);
        // SAFETY: `optim_sparse_sgd(T *param, const u64 *indices, const T *values, u64
        // row_len, u64 len, T lr, unsigned flags)` was compiled with T = E::C_TYPE, the C
        // name of E::Stored; indices holds usize stored as u64. It reads values[0..len]
        // (len = rows × row_len, checked, so row_len > 0 when len > 0) and
        // indices[0..rows], and touches element i % row_len of row indices[i / row_len]
        // of the parameter, inside it (checked), each once (distinct rows, checked).
        unsafe { launch.launch(grid_for(items)) }.map_err(|e| self.gpu.error("launching optim_sparse_sgd", &e))?;
        Ok(())
    }

    fn sparse_adagrad_update(
        &self,
        update: &AdagradUpdate<E>,
        param: &mut CudaBuffer<E>,
        sum: &mut CudaBuffer<E>,
        grad: &SparseRows<'_, CudaBuffer<E>>,
    ) -> Result<(), Error> {
        let op = "adagrad";
        self.check_buffers(op, &[Some(&*param), Some(&*sum)])?;
        let indices = self.sparse_indices(op, param.len(), grad, &[("sum", sum.len())])?;
        let items = grad.values.len() as u64;
        let (Some(p), Some(s), Some(rows), Some(values)) = (
            param.allocation_mut(),
            sum.allocation_mut(),
            indices.allocation(),
            grad.values.allocation(),
        ) else {
            return Ok(());
        };
        let function = self.gpu.function(&OPTIMIZER, "optim_sparse_adagrad", E::C_TYPE)?;
        let row_len = grad.row_len as u64;
        let [lr, eps] = [update.lr, update.eps].map(|x| x.to_stored());
        let flags = Flags::of(update.maximize, Flags::MAXIMIZE);
        let mut launch = self.gpu.stream.launch_builder(&function);
        launch
            .arg(&mut p.slice)
            .arg(&mut s.slice)
            .arg(&rows.slice)
            .arg(&values.slice)
            .arg(&row_len)
            .arg(&items)
            .arg(&lr)
            .arg(&eps)
            .arg(&flags);
        // SAFETY: `optim_sparse_adagrad(T *param, T *sum, const u64 *indices, const T
        // *values, u64 row_len, u64 len, T lr, T eps, unsigned flags)` was compiled with T
        // = E::C_TYPE, the C name of E::Stored; indices holds usize stored as u64. As
        // for optim_sparse_sgd, with `sum` of the parameter's length (checked).
        unsafe { launch.launch(grid_for(items)) }.map_err(|e| self.gpu.error("launching optim_sparse_adagrad", &e))?;
        Ok(())
    }

    fn sparse_adam_update(
        &self,
        update: &SparseAdamUpdate<E>,
        param: &mut CudaBuffer<E>,
        exp_avg: &mut CudaBuffer<E>,
        exp_avg_sq: &mut CudaBuffer<E>,
        grad: &SparseRows<'_, CudaBuffer<E>>,
    ) -> Result<(), Error> {
        let op = "sparse_adam";
        self.check_buffers(op, &[Some(&*param), Some(&*exp_avg), Some(&*exp_avg_sq)])?;
        let others = [("exp_avg", exp_avg.len()), ("exp_avg_sq", exp_avg_sq.len())];
        let indices = self.sparse_indices(op, param.len(), grad, &others)?;
        let items = grad.values.len() as u64;
        let (Some(p), Some(m), Some(v), Some(rows), Some(values)) = (
            param.allocation_mut(),
            exp_avg.allocation_mut(),
            exp_avg_sq.allocation_mut(),
            indices.allocation(),
            grad.values.allocation(),
        ) else {
            return Ok(());
        };
        let function = self.gpu.function(&OPTIMIZER, "optim_sparse_adam", E::C_TYPE)?;
        let row_len = grad.row_len as u64;
        let u = *update;
        let [step_size, one_minus_beta1, one_minus_beta2, eps] =
            [u.step_size, u.one_minus_beta1, u.one_minus_beta2, u.eps].map(|x| x.to_stored());
        let flags = Flags::of(u.maximize, Flags::MAXIMIZE);
        let mut launch = self.gpu.stream.launch_builder(&function);
        launch
            .arg(&mut p.slice)
            .arg(&mut m.slice)
            .arg(&mut v.slice)
            .arg(&rows.slice)
            .arg(&values.slice)
            .arg(&row_len)
            .arg(&items)
            .arg(&step_size)
            .arg(&one_minus_beta1)
            .arg(&one_minus_beta2)
            .arg(&eps)
            .arg(&flags);
        // SAFETY: `optim_sparse_adam(T *param, T *exp_avg, T *exp_avg_sq, const u64
        // *indices, const T *values, u64 row_len, u64 len, T step_size, T
        // one_minus_beta1, T one_minus_beta2, T eps, unsigned flags)` was compiled with T
        // = E::C_TYPE, the C name of E::Stored; indices holds usize stored as u64. As for
        // optim_sparse_sgd, with both moments of the parameter's length (checked).
        unsafe { launch.launch(grid_for(items)) }.map_err(|e| self.gpu.error("launching optim_sparse_adam", &e))?;
        Ok(())
    }
}

/// Norms by a two-pass reduction on the GPU (read back to the host); scaling and
/// clamping in place.
impl<E: Dtype + CudaElement> GradientClipKernel<E> for Cuda {
    fn norm(&self, buffer: &CudaBuffer<E>, norm_type: NormType) -> Result<E, Error> {
        self.check_buffer(buffer, "norm", "buffer")?;
        let Some(source) = buffer.allocation() else {
            return Ok(E::ZERO);
        };
        let (first_mode, second_mode): (u32, u32) = match norm_type {
            NormType::One => (0, 0),
            NormType::Two => (1, 0),
            NormType::Infinity => (2, 2),
        };
        let len = buffer.len() as u64;
        let blocks = len.div_ceil(u64::from(NORM_THREADS)).clamp(1, NORM_BLOCKS);
        let config = |blocks: u64| LaunchConfig {
            grid_dim: (blocks as u32, 1, 1),
            block_dim: (NORM_THREADS, 1, 1),
            shared_mem_bytes: 0,
        };
        let function = self.gpu.function(&OPTIMIZER, "clip_norm", E::C_TYPE)?;
        let mut partial = CudaBuffer::<E>::uninit(&self.gpu, blocks as usize)?;
        let mut total = CudaBuffer::<E>::uninit(&self.gpu, 1)?;
        {
            let (Some(partial), Some(total)) = (partial.allocation_mut(), total.allocation_mut()) else {
                return Ok(E::ZERO);
            };
            let mut launch = self.gpu.stream.launch_builder(&function);
            launch
                .arg(&source.slice)
                .arg(&len)
                .arg(&first_mode)
                .arg(&mut partial.slice);
            // SAFETY: `clip_norm(const T *x, u64 len, unsigned mode, T *partial)` was
            // compiled with T = E::C_TYPE, the C name of E::Stored, the slices' element.
            // It reads x[0..len], the buffer's length, and writes partial[block] for each
            // of the `blocks` blocks, which `partial` holds; blocks of 256 threads, as
            // its shared array and halving reduction assume.
            unsafe { launch.launch(config(blocks)) }.map_err(|e| self.gpu.error("launching clip_norm", &e))?;
            let mut launch = self.gpu.stream.launch_builder(&function);
            launch
                .arg(&partial.slice)
                .arg(&blocks)
                .arg(&second_mode)
                .arg(&mut total.slice);
            // SAFETY: as above, over the `blocks` partial results, into the one element
            // of `total`, with one block.
            unsafe { launch.launch(config(1)) }.map_err(|e| self.gpu.error("launching clip_norm", &e))?;
        }
        let value = self.try_to_host(&total)?[0];
        Ok(match norm_type {
            NormType::Two => value.sqrt(),
            NormType::One | NormType::Infinity => value,
        })
    }

    fn scale(&self, buffer: &mut CudaBuffer<E>, factor: E) -> Result<(), Error> {
        self.check_buffer(buffer, "scale", "buffer")?;
        let len = buffer.len() as u64;
        let Some(target) = buffer.allocation_mut() else {
            return Ok(());
        };
        let function = self.gpu.function(&OPTIMIZER, "clip_scale", E::C_TYPE)?;
        let factor = factor.to_stored();
        let mut launch = self.gpu.stream.launch_builder(&function);
        launch.arg(&mut target.slice).arg(&len).arg(&factor);
        // SAFETY: `clip_scale(T *x, u64 len, T factor)` was compiled with T = E::C_TYPE,
        // the C name of E::Stored, the type of the slice and of `factor`. It reads and
        // writes x[0..len], the buffer's length.
        unsafe { launch.launch(grid_for(len)) }.map_err(|e| self.gpu.error("launching clip_scale", &e))?;
        Ok(())
    }

    fn clamp(&self, buffer: &mut CudaBuffer<E>, min: E, max: E) -> Result<(), Error> {
        if min > max || min.is_nan() || max.is_nan() {
            return Err(Error::InvalidArgument {
                op: "clamp",
                message: format!("the bounds must satisfy min <= max, got min {min:?} and max {max:?}"),
            });
        }
        self.check_buffer(buffer, "clamp", "buffer")?;
        let len = buffer.len() as u64;
        let Some(target) = buffer.allocation_mut() else {
            return Ok(());
        };
        let function = self.gpu.function(&OPTIMIZER, "clip_clamp", E::C_TYPE)?;
        let (low, high) = (min.to_stored(), max.to_stored());
        let mut launch = self.gpu.stream.launch_builder(&function);
        launch.arg(&mut target.slice).arg(&len).arg(&low).arg(&high);
        // SAFETY: `clip_clamp(T *x, u64 len, T low, T high)` was compiled with T =
        // E::C_TYPE, the C name of E::Stored, the type of the slice and the bounds. It
        // reads and writes x[0..len], the buffer's length.
        unsafe { launch.launch(grid_for(len)) }.map_err(|e| self.gpu.error("launching clip_clamp", &e))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::device::test_gpu;
    use crate::emulation::{kernel, library};
    use ferrograd_cpu::{Cpu, CpuBuffer};

    const LEN: usize = 37;

    /// Values in [-2, 2) with a zero, an infinity-free spread, from a seed.
    fn values<E: Dtype>(seed: u64) -> Vec<E> {
        (0..LEN as u64)
            .map(|i| E::from_f64((((i * 2_654_435_761 + seed * 977) % 1000) as f64) / 250.0 - 2.0))
            .collect()
    }

    /// Equal bit for bit, NaNs alike: the kernels round as the CPU does.
    fn identical<E: Dtype>(actual: &[E], expected: &[E], what: &str) {
        assert_eq!(actual.len(), expected.len(), "{what}");
        for (i, (a, e)) in actual.iter().zip(expected).enumerate() {
            assert!(
                a == e || (a.is_nan() && e.is_nan()),
                "{what}: element {i}: {a:?} vs {e:?}"
            );
        }
    }

    fn host<E: Dtype>(cpu: &Cpu, data: Vec<E>) -> CpuBuffer<E> {
        cpu.try_from_host(data).unwrap()
    }

    fn sgd_updates<E: Dtype>() -> Vec<SgdUpdate<E>> {
        let e = E::from_f64;
        let base = SgdUpdate {
            lr: e(0.1),
            momentum: e(0.0),
            one_minus_dampening: e(1.0),
            weight_decay: e(0.0),
            nesterov: false,
            maximize: false,
        };
        vec![
            base,
            SgdUpdate {
                weight_decay: e(0.01),
                maximize: true,
                ..base
            },
            SgdUpdate {
                momentum: e(0.9),
                one_minus_dampening: e(0.75),
                ..base
            },
            SgdUpdate {
                momentum: e(0.9),
                nesterov: true,
                weight_decay: e(1e-3),
                ..base
            },
        ]
    }

    fn adam_updates<E: Dtype>() -> Vec<AdamUpdate<E>> {
        let e = E::from_f64;
        let base = AdamUpdate {
            step_size: e(1e-3 / (1.0 - 0.9f64.powi(3))),
            bias_correction2_sqrt: e((1.0 - 0.999f64.powi(3)).sqrt()),
            one_minus_beta1: e(0.1),
            beta2: e(0.999),
            one_minus_beta2: e(0.001),
            eps: e(1e-8),
            weight_decay: e(0.0),
            decay_factor: e(1.0),
            amsgrad: false,
            maximize: false,
        };
        vec![
            base,
            AdamUpdate {
                weight_decay: e(0.01),
                amsgrad: true,
                ..base
            },
            // AdamW, and a β₁ far from 1 (lerp's other form).
            AdamUpdate {
                decay_factor: e(1.0 - 1e-3 * 0.01),
                one_minus_beta1: e(0.7),
                maximize: true,
                ..base
            },
        ]
    }

    fn rmsprop_updates<E: Dtype>() -> Vec<(RmspropUpdate<E>, bool, bool)> {
        let e = E::from_f64;
        let base = RmspropUpdate {
            lr: e(0.01),
            alpha: e(0.99),
            one_minus_alpha: e(0.01),
            eps: e(1e-8),
            weight_decay: e(0.0),
            momentum: e(0.0),
            maximize: false,
        };
        vec![
            (base, false, false),
            (
                RmspropUpdate {
                    weight_decay: e(0.1),
                    alpha: e(0.3),
                    one_minus_alpha: e(0.7),
                    ..base
                },
                true,
                false,
            ),
            (
                RmspropUpdate {
                    momentum: e(0.9),
                    maximize: true,
                    ..base
                },
                true,
                true,
            ),
            (
                RmspropUpdate {
                    momentum: e(0.5),
                    ..base
                },
                false,
                true,
            ),
        ]
    }

    fn adagrad_updates<E: Dtype>() -> Vec<AdagradUpdate<E>> {
        let e = E::from_f64;
        let base = AdagradUpdate {
            lr: e(0.05),
            eps: e(1e-10),
            weight_decay: e(0.0),
            maximize: false,
        };
        vec![
            base,
            AdagradUpdate {
                weight_decay: e(0.2),
                maximize: true,
                ..base
            },
        ]
    }

    /// optimizer.cu compiled for the CPU (see `crate::emulation`), three steps of every
    /// update against `Cpu`'s, bit for bit.
    fn emulated_updates_match_the_cpu<E: Dtype + CudaElement>() {
        let Some(library) = library(&OPTIMIZER, E::C_TYPE) else {
            return;
        };
        type Sgd<E> = unsafe extern "C" fn(*mut E, *const E, *mut E, u64, E, E, E, E, u32);
        type Adam<E> = unsafe extern "C" fn(*mut E, *const E, *mut E, *mut E, *mut E, u64, E, E, E, E, E, E, E, E, u32);
        type Rmsprop<E> = unsafe extern "C" fn(*mut E, *const E, *mut E, *mut E, *mut E, u64, E, E, E, E, E, E, u32);
        type Adagrad<E> = unsafe extern "C" fn(*mut E, *const E, *mut E, u64, E, E, E, u32);
        // SAFETY: the kernels' signatures with T = E, as launched above.
        let (sgd, adam, rmsprop, adagrad): (Sgd<E>, Adam<E>, Rmsprop<E>, Adagrad<E>) = unsafe {
            (
                kernel(library, "optim_sgd"),
                kernel(library, "optim_adam"),
                kernel(library, "optim_rmsprop"),
                kernel(library, "optim_adagrad"),
            )
        };
        let cpu = Cpu::default();
        let n = LEN as u64;
        let null = std::ptr::null_mut::<E>();
        let mut param = host(&cpu, values::<E>(1));
        let mut gpu_param = param.to_vec();

        for u in sgd_updates::<E>() {
            let with_momentum = u.momentum != E::ZERO;
            let mut buffer = host(&cpu, vec![E::ZERO; LEN]);
            let mut gpu_buffer = buffer.to_vec();
            for step in 0..3 {
                let grad = host(&cpu, values::<E>(10 + step));
                let first = step == 0;
                cpu.sgd_update(&u, &mut param, &grad, with_momentum.then_some((&mut buffer, first)))
                    .unwrap();
                let flags = Flags::of(u.maximize, Flags::MAXIMIZE)
                    | Flags::of(u.weight_decay != E::ZERO, Flags::DECAY)
                    | Flags::of(with_momentum, Flags::MOMENTUM)
                    | Flags::of(first, Flags::FIRST)
                    | Flags::of(u.nesterov, Flags::NESTEROV);
                let b = if with_momentum { gpu_buffer.as_mut_ptr() } else { null };
                // SAFETY: buffers of n elements; the momentum buffer null only without its flag.
                unsafe {
                    sgd(
                        gpu_param.as_mut_ptr(),
                        grad.as_ptr(),
                        b,
                        n,
                        u.lr,
                        u.momentum,
                        u.one_minus_dampening,
                        u.weight_decay,
                        flags,
                    )
                };
                identical(&gpu_param, &param, &format!("sgd {u:?}, step {step}"));
                identical(&gpu_buffer, &buffer, &format!("sgd {u:?}'s momentum, step {step}"));
            }
        }

        for u in adam_updates::<E>() {
            let zeros = || host(&cpu, vec![E::ZERO; LEN]);
            let (mut m, mut v, mut max_sq) = (zeros(), zeros(), zeros());
            let (mut gm, mut gv, mut gmax) = (m.to_vec(), v.to_vec(), max_sq.to_vec());
            for step in 0..3 {
                let grad = host(&cpu, values::<E>(20 + step));
                cpu.adam_update(&u, &mut param, &grad, &mut m, &mut v, Some(&mut max_sq))
                    .unwrap();
                let flags = Flags::of(u.maximize, Flags::MAXIMIZE)
                    | Flags::of(u.weight_decay != E::ZERO, Flags::DECAY)
                    | Flags::of(u.amsgrad, Flags::AMSGRAD)
                    | Flags::of(u.one_minus_beta1.abs() < E::from_f64(0.5), Flags::NEAR_START);
                let max_ptr = if u.amsgrad { gmax.as_mut_ptr() } else { null };
                // SAFETY: buffers of n elements; max_exp_avg_sq null only without AMSGrad.
                unsafe {
                    adam(
                        gpu_param.as_mut_ptr(),
                        grad.as_ptr(),
                        gm.as_mut_ptr(),
                        gv.as_mut_ptr(),
                        max_ptr,
                        n,
                        u.step_size,
                        u.bias_correction2_sqrt,
                        u.one_minus_beta1,
                        u.beta2,
                        u.one_minus_beta2,
                        u.eps,
                        u.weight_decay,
                        u.decay_factor,
                        flags,
                    )
                };
                identical(&gpu_param, &param, &format!("adam {u:?}, step {step}"));
                identical(&gm, &m, &format!("adam {u:?}'s exp_avg, step {step}"));
                identical(&gv, &v, &format!("adam {u:?}'s exp_avg_sq, step {step}"));
                if u.amsgrad {
                    identical(&gmax, &max_sq, &format!("adam {u:?}'s max_exp_avg_sq, step {step}"));
                }
            }
        }

        for (u, centered, momentum) in rmsprop_updates::<E>() {
            let zeros = || host(&cpu, vec![E::ZERO; LEN]);
            let (mut s, mut a, mut b) = (zeros(), zeros(), zeros());
            let (mut gs, mut ga, mut gb) = (s.to_vec(), a.to_vec(), b.to_vec());
            for step in 0..3 {
                let grad = host(&cpu, values::<E>(30 + step));
                cpu.rmsprop_update(
                    &u,
                    &mut param,
                    &grad,
                    &mut s,
                    centered.then_some(&mut a),
                    momentum.then_some(&mut b),
                )
                .unwrap();
                let flags = Flags::of(u.maximize, Flags::MAXIMIZE)
                    | Flags::of(u.weight_decay != E::ZERO, Flags::DECAY)
                    | Flags::of(centered, Flags::CENTERED)
                    | Flags::of(momentum, Flags::MOMENTUM);
                let a_ptr = if centered { ga.as_mut_ptr() } else { null };
                let b_ptr = if momentum { gb.as_mut_ptr() } else { null };
                // SAFETY: buffers of n elements; the optional ones null only without their flags.
                unsafe {
                    rmsprop(
                        gpu_param.as_mut_ptr(),
                        grad.as_ptr(),
                        gs.as_mut_ptr(),
                        a_ptr,
                        b_ptr,
                        n,
                        u.lr,
                        u.alpha,
                        u.one_minus_alpha,
                        u.eps,
                        u.weight_decay,
                        u.momentum,
                        flags,
                    )
                };
                identical(&gpu_param, &param, &format!("rmsprop {u:?}, step {step}"));
                identical(&gs, &s, &format!("rmsprop {u:?}'s square_avg, step {step}"));
                identical(&ga, &a, &format!("rmsprop {u:?}'s grad_avg, step {step}"));
                identical(&gb, &b, &format!("rmsprop {u:?}'s momentum, step {step}"));
            }
        }

        for u in adagrad_updates::<E>() {
            let mut s = host(&cpu, vec![E::from_f64(0.1); LEN]);
            let mut gs = s.to_vec();
            for step in 0..3 {
                let grad = host(&cpu, values::<E>(40 + step));
                cpu.adagrad_update(&u, &mut param, &grad, &mut s).unwrap();
                let flags = Flags::of(u.maximize, Flags::MAXIMIZE) | Flags::of(u.weight_decay != E::ZERO, Flags::DECAY);
                // SAFETY: buffers of n elements.
                unsafe {
                    adagrad(
                        gpu_param.as_mut_ptr(),
                        grad.as_ptr(),
                        gs.as_mut_ptr(),
                        n,
                        u.lr,
                        u.eps,
                        u.weight_decay,
                        flags,
                    )
                };
                identical(&gpu_param, &param, &format!("adagrad {u:?}, step {step}"));
                identical(&gs, &s, &format!("adagrad {u:?}'s sum, step {step}"));
            }
        }
    }

    #[test]
    fn the_emulated_updates_match_the_cpu_bit_for_bit() {
        emulated_updates_match_the_cpu::<f32>();
        emulated_updates_match_the_cpu::<f64>();
    }

    /// The sparse updates and the clipping kernels compiled for the CPU.
    fn emulated_sparse_updates_and_clipping_match_the_cpu<E: Dtype + CudaElement>() {
        let Some(library) = library(&OPTIMIZER, E::C_TYPE) else {
            return;
        };
        type SparseSgd<E> = unsafe extern "C" fn(*mut E, *const u64, *const E, u64, u64, E, u32);
        type SparseAdagrad<E> = unsafe extern "C" fn(*mut E, *mut E, *const u64, *const E, u64, u64, E, E, u32);
        type SparseAdam<E> =
            unsafe extern "C" fn(*mut E, *mut E, *mut E, *const u64, *const E, u64, u64, E, E, E, E, u32);
        type Norm<E> = unsafe extern "C" fn(*const E, u64, u32, *mut E);
        type Scale<E> = unsafe extern "C" fn(*mut E, u64, E);
        type Clamp<E> = unsafe extern "C" fn(*mut E, u64, E, E);
        // SAFETY (each): the kernel's signature with T = E, as launched above.
        let sparse_sgd: SparseSgd<E> = unsafe { kernel(library, "optim_sparse_sgd") };
        let sparse_adagrad: SparseAdagrad<E> = unsafe { kernel(library, "optim_sparse_adagrad") };
        let sparse_adam: SparseAdam<E> = unsafe { kernel(library, "optim_sparse_adam") };
        let norm: Norm<E> = unsafe { kernel(library, "clip_norm") };
        let scale: Scale<E> = unsafe { kernel(library, "clip_scale") };
        let clamp: Clamp<E> = unsafe { kernel(library, "clip_clamp") };
        let cpu = Cpu::default();
        let e = E::from_f64;
        // A table of 6 rows of 4; the gradient touches rows 1, 2 and 5.
        let row_len = 4;
        let indices = [1usize, 2, 5];
        let rows: Vec<u64> = indices.iter().map(|&i| i as u64).collect();
        let table = || host(&cpu, values::<E>(3)[..24].to_vec());
        let (mut param, mut sum, mut m, mut v) = (table(), table(), table(), table());
        for x in sum.iter_mut().chain(v.iter_mut()) {
            *x = x.abs();
        }
        let (mut gp, mut gsum, mut gm, mut gv) = (param.to_vec(), sum.to_vec(), m.to_vec(), v.to_vec());
        let count = (indices.len() * row_len) as u64;
        for step in 0..2 {
            let values_host = host(&cpu, values::<E>(50 + step)[..12].to_vec());
            let grad = SparseRows {
                indices: &indices,
                values: &values_host,
                row_len,
            };
            let maximize = step == 1;
            let flags = Flags::of(maximize, Flags::MAXIMIZE);
            cpu.sparse_sgd_update(e(0.1), maximize, &mut param, &grad).unwrap();
            // SAFETY: rows inside the 24-element table, values of count elements.
            unsafe {
                sparse_sgd(
                    gp.as_mut_ptr(),
                    rows.as_ptr(),
                    values_host.as_ptr(),
                    row_len as u64,
                    count,
                    e(0.1),
                    flags,
                )
            };
            identical(&gp, &param, "sparse sgd");
            let adagrad = AdagradUpdate {
                lr: e(0.05),
                eps: e(1e-10),
                weight_decay: E::ZERO,
                maximize,
            };
            cpu.sparse_adagrad_update(&adagrad, &mut param, &mut sum, &grad)
                .unwrap();
            // SAFETY: as above.
            unsafe {
                sparse_adagrad(
                    gp.as_mut_ptr(),
                    gsum.as_mut_ptr(),
                    rows.as_ptr(),
                    values_host.as_ptr(),
                    row_len as u64,
                    count,
                    adagrad.lr,
                    adagrad.eps,
                    flags,
                )
            };
            identical(&gp, &param, "sparse adagrad");
            identical(&gsum, &sum, "sparse adagrad's sum");
            let adam = SparseAdamUpdate {
                step_size: e(0.01),
                one_minus_beta1: e(0.1),
                one_minus_beta2: e(0.001),
                eps: e(1e-8),
                maximize,
            };
            cpu.sparse_adam_update(&adam, &mut param, &mut m, &mut v, &grad)
                .unwrap();
            // SAFETY: as above.
            unsafe {
                sparse_adam(
                    gp.as_mut_ptr(),
                    gm.as_mut_ptr(),
                    gv.as_mut_ptr(),
                    rows.as_ptr(),
                    values_host.as_ptr(),
                    row_len as u64,
                    count,
                    adam.step_size,
                    adam.one_minus_beta1,
                    adam.one_minus_beta2,
                    adam.eps,
                    flags,
                )
            };
            identical(&gp, &param, "sparse adam");
            identical(&gm, &m, "sparse adam's exp_avg");
            identical(&gv, &v, "sparse adam's exp_avg_sq");
        }

        // Norms: one block emulated, so the sums run in the CPU's order.
        let mut x = values::<E>(60);
        for norm_type in [NormType::One, NormType::Two, NormType::Infinity] {
            let mode = match norm_type {
                NormType::One => 0,
                NormType::Two => 1,
                NormType::Infinity => 2,
            };
            let mut partial = [E::ZERO];
            // SAFETY: x of LEN elements, one block's result.
            unsafe { norm(x.as_ptr(), LEN as u64, mode, partial.as_mut_ptr()) };
            let value = if norm_type == NormType::Two {
                partial[0].sqrt()
            } else {
                partial[0]
            };
            let expected = cpu.norm(&host(&cpu, x.clone()), norm_type).unwrap();
            identical(&[value], &[expected], &format!("{norm_type:?} norm"));
        }
        x[7] = E::from_f64(f64::NAN);
        let mut partial = [E::ZERO];
        // SAFETY: as above.
        unsafe { norm(x.as_ptr(), LEN as u64, 2, partial.as_mut_ptr()) };
        assert!(partial[0].is_nan(), "a NaN is the infinity norm");
        let mut expected = host(&cpu, x.clone());
        cpu.scale(&mut expected, e(0.3)).unwrap();
        // SAFETY: x of LEN elements.
        unsafe { scale(x.as_mut_ptr(), LEN as u64, e(0.3)) };
        identical(&x, &expected, "scale");
        cpu.clamp(&mut expected, e(-0.25), e(0.5)).unwrap();
        // SAFETY: x of LEN elements.
        unsafe { clamp(x.as_mut_ptr(), LEN as u64, e(-0.25), e(0.5)) };
        identical(&x, &expected, "clamp");
        assert!(x[7].is_nan(), "NaN stays NaN");
    }

    #[test]
    fn the_emulated_sparse_updates_and_clipping_match_the_cpu() {
        emulated_sparse_updates_and_clipping_match_the_cpu::<f32>();
        emulated_sparse_updates_and_clipping_match_the_cpu::<f64>();
    }

    /// Every update through `Cuda` on a GPU, when there is one, bit for bit with `Cpu`.
    #[test]
    fn the_gpu_matches_the_cpu() {
        let Some(gpu) = test_gpu() else { return };
        let cpu = Cpu::default();
        let to_gpu = |b: &CpuBuffer<f32>| gpu.try_from_host(b.to_vec()).unwrap();
        let same = |g: &CudaBuffer<f32>, c: &CpuBuffer<f32>, what: &str| {
            identical(&gpu.try_to_host(g).unwrap(), c, what);
        };
        let mut param = host(&cpu, values::<f32>(1));
        let mut gparam = to_gpu(&param);
        for u in sgd_updates::<f32>() {
            let with_momentum = u.momentum != 0.0;
            let mut b = host(&cpu, vec![0.0f32; LEN]);
            let mut gb = to_gpu(&b);
            for step in 0..3 {
                let grad = host(&cpu, values::<f32>(10 + step));
                let first = step == 0;
                cpu.sgd_update(&u, &mut param, &grad, with_momentum.then_some((&mut b, first)))
                    .unwrap();
                gpu.sgd_update(
                    &u,
                    &mut gparam,
                    &to_gpu(&grad),
                    with_momentum.then_some((&mut gb, first)),
                )
                .unwrap();
                same(&gparam, &param, "sgd");
            }
        }
        for u in adam_updates::<f32>() {
            let z = || host(&cpu, vec![0.0f32; LEN]);
            let (mut m, mut v, mut x) = (z(), z(), z());
            let (mut gm, mut gv, mut gx) = (to_gpu(&m), to_gpu(&v), to_gpu(&x));
            for step in 0..3 {
                let grad = host(&cpu, values::<f32>(20 + step));
                cpu.adam_update(&u, &mut param, &grad, &mut m, &mut v, Some(&mut x))
                    .unwrap();
                gpu.adam_update(&u, &mut gparam, &to_gpu(&grad), &mut gm, &mut gv, Some(&mut gx))
                    .unwrap();
                same(&gparam, &param, "adam");
            }
        }
        for (u, centered, momentum) in rmsprop_updates::<f32>() {
            let z = || host(&cpu, vec![0.0f32; LEN]);
            let (mut s, mut a, mut b) = (z(), z(), z());
            let (mut gs, mut ga, mut gb) = (to_gpu(&s), to_gpu(&a), to_gpu(&b));
            let grad = host(&cpu, values::<f32>(30));
            cpu.rmsprop_update(
                &u,
                &mut param,
                &grad,
                &mut s,
                centered.then_some(&mut a),
                momentum.then_some(&mut b),
            )
            .unwrap();
            gpu.rmsprop_update(
                &u,
                &mut gparam,
                &to_gpu(&grad),
                &mut gs,
                centered.then_some(&mut ga),
                momentum.then_some(&mut gb),
            )
            .unwrap();
            same(&gparam, &param, "rmsprop");
        }
        for u in adagrad_updates::<f32>() {
            let mut s = host(&cpu, vec![0.1f32; LEN]);
            let mut gs = to_gpu(&s);
            let grad = host(&cpu, values::<f32>(40));
            cpu.adagrad_update(&u, &mut param, &grad, &mut s).unwrap();
            gpu.adagrad_update(&u, &mut gparam, &to_gpu(&grad), &mut gs).unwrap();
            same(&gparam, &param, "adagrad");
        }
        // Sparse rows, in place.
        let indices = [0usize, 3, 4];
        let values_cpu = host(&cpu, values::<f32>(50)[..6].to_vec());
        let values_gpu = to_gpu(&values_cpu);
        let mut table = host(&cpu, values::<f32>(2)[..10].to_vec());
        let mut gtable = to_gpu(&table);
        let rows_cpu = SparseRows {
            indices: &indices,
            values: &values_cpu,
            row_len: 2,
        };
        let rows_gpu = SparseRows {
            indices: &indices,
            values: &values_gpu,
            row_len: 2,
        };
        cpu.sparse_sgd_update(0.1, false, &mut table, &rows_cpu).unwrap();
        gpu.sparse_sgd_update(0.1, false, &mut gtable, &rows_gpu).unwrap();
        same(&gtable, &table, "sparse sgd");
        let bad = [4usize, 3, 0];
        let error = gpu
            .sparse_sgd_update(
                0.1,
                false,
                &mut gtable,
                &SparseRows {
                    indices: &bad,
                    values: &values_gpu,
                    row_len: 2,
                },
            )
            .unwrap_err();
        assert!(error.to_string().contains("sorted and distinct"), "{error}");
        // Norms over many blocks: close, not identical (another order of sums).
        let big: Vec<f32> = (0..1_000_003).map(|i| ((i % 1000) as f32) / 500.0 - 1.0).collect();
        let (big_cpu, big_gpu) = (host(&cpu, big.clone()), gpu.try_from_host(big).unwrap());
        for norm_type in [NormType::One, NormType::Two, NormType::Infinity] {
            let (c, g) = (
                cpu.norm(&big_cpu, norm_type).unwrap(),
                gpu.norm(&big_gpu, norm_type).unwrap(),
            );
            assert!((c - g).abs() <= 1e-3 * c.abs(), "{norm_type:?}: {g} vs {c}");
        }
        assert_eq!(gpu.norm(&CudaBuffer::<f32>::default(), NormType::Two).unwrap(), 0.0);
        assert!(gpu.clamp(&mut gtable, 1.0, -1.0).is_err());
        let error = gpu.adagrad_update(&adagrad_updates::<f32>()[0], &mut gparam, &gtable, &mut gtable.clone());
        assert!(error.is_err(), "lengths are checked");
    }
}
