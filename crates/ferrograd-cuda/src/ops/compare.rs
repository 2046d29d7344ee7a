//! Comparisons ([`CompareKernel`]) and `choose` ([`ChooseKernel`]) on the GPU:
//! `compare.cu` and `choose.cu`.

use crate::buffer::CudaBuffer;
use crate::compile::KernelSource;
use crate::device::{Cuda, grid_for};
use crate::element::CudaElement;
use crate::kernel::{add_mode, contiguous, read_ptr, write_ptr};
use crate::layout::KernelLayout;
use cudarc::driver::PushKernelArg;
use ferrograd_device::ops::compare::{ChooseKernel, CompareKernel, Comparison};
use ferrograd_device::ops::elementwise::Operand;
use ferrograd_device::view::{check_len, check_same_dims};
use ferrograd_device::{Dtype, Error, View, ViewMut};

/// `compare.cu`: `compare_tensor` and `compare_scalar`, for every element type.
pub(crate) const COMPARE: KernelSource = KernelSource {
    name: "compare",
    source: concat!(
        include_str!("../layout.cuh"),
        include_str!("../elementwise.cuh"),
        include_str!("compare.cu")
    ),
    functions: &["compare_tensor", "compare_scalar"],
    element_types: &["float", "double", "unsigned long long", "unsigned char"],
};

/// `choose.cu`: `choose_forward` and `choose_backward`, for the float types.
pub(crate) const CHOOSE: KernelSource = KernelSource {
    name: "choose",
    source: concat!(
        include_str!("../layout.cuh"),
        include_str!("../elementwise.cuh"),
        include_str!("choose.cu")
    ),
    functions: &["choose_forward", "choose_backward"],
    element_types: &["float", "double"],
};

/// The code `compare_apply` of compare.cu reads for `op`.
fn code(op: Comparison) -> i32 {
    match op {
        Comparison::Eq => 0,
        Comparison::Ne => 1,
        Comparison::Lt => 2,
        Comparison::Le => 3,
        Comparison::Gt => 4,
        Comparison::Ge => 5,
    }
}

/// Every element type: `f32`, `f64`, `usize` (compared as 64-bit integers) and `bool`
/// (`false < true`).
impl<E: CudaElement + PartialOrd> CompareKernel<E> for Cuda {
    fn compare(
        &self,
        op: Comparison,
        lhs: View<'_, CudaBuffer<E>>,
        rhs: View<'_, CudaBuffer<E>>,
    ) -> Result<CudaBuffer<bool>, Error> {
        let name = op.name();
        lhs.check(name, "lhs")?;
        rhs.check(name, "rhs")?;
        check_same_dims(name, ("lhs", &lhs.layout), ("rhs", &rhs.layout))?;
        self.check_buffer(lhs.buffer, name, "lhs")?;
        self.check_buffer(rhs.buffer, name, "rhs")?;
        let numel = lhs.layout.num_elements();
        let mut out = CudaBuffer::<bool>::uninit(&self.gpu, numel)?;
        if numel == 0 {
            return Ok(out);
        }
        let function = self.gpu.function(&COMPARE, "compare_tensor", E::C_TYPE)?;
        let stream = &self.gpu.stream;
        let items = numel as u64;
        let (lhs_layout, lhs_contiguous) = (KernelLayout::from(&lhs.layout), contiguous(&lhs.layout));
        let (rhs_layout, rhs_contiguous) = (KernelLayout::from(&rhs.layout), contiguous(&rhs.layout));
        let op = code(op);
        let (lhs_pointer, lhs_guard) = read_ptr(stream, lhs.buffer);
        let (rhs_pointer, rhs_guard) = read_ptr(stream, rhs.buffer);
        let (out_pointer, out_guard) = write_ptr(stream, &mut out);
        let mut launch = stream.launch_builder(&function);
        launch
            .arg(&lhs_pointer)
            .arg(&lhs_layout)
            .arg(&lhs_contiguous)
            .arg(&rhs_pointer)
            .arg(&rhs_layout)
            .arg(&rhs_contiguous)
            .arg(&out_pointer)
            .arg(&items)
            .arg(&op);
        // SAFETY: `compare_tensor(const T *lhs, Layout, int, const T *rhs, Layout, int,
        // unsigned char *out, unsigned long long len, int op)` compiled with T =
        // E::C_TYPE: device pointers (u64), KernelLayouts (the same struct), ints and a
        // u64, in that order. Position i < len (both views' element count, equal dims)
        // reads each operand at layout_offset(i) (or i, contiguous) within its checked
        // length and writes out[i] of a buffer of `len` bytes (bool is stored as u8).
        unsafe { launch.launch(grid_for(items)) }.map_err(|e| self.gpu.error("launching compare_tensor", &e))?;
        drop((lhs_guard, rhs_guard, out_guard));
        Ok(out)
    }

    fn compare_scalar(
        &self,
        op: Comparison,
        lhs: View<'_, CudaBuffer<E>>,
        scalar: E,
    ) -> Result<CudaBuffer<bool>, Error> {
        let name = op.name();
        lhs.check(name, "lhs")?;
        self.check_buffer(lhs.buffer, name, "lhs")?;
        let numel = lhs.layout.num_elements();
        let mut out = CudaBuffer::<bool>::uninit(&self.gpu, numel)?;
        if numel == 0 {
            return Ok(out);
        }
        let function = self.gpu.function(&COMPARE, "compare_scalar", E::C_TYPE)?;
        let stream = &self.gpu.stream;
        let items = numel as u64;
        let (lhs_layout, lhs_contiguous) = (KernelLayout::from(&lhs.layout), contiguous(&lhs.layout));
        let (op, scalar) = (code(op), scalar.to_stored());
        let (lhs_pointer, lhs_guard) = read_ptr(stream, lhs.buffer);
        let (out_pointer, out_guard) = write_ptr(stream, &mut out);
        let mut launch = stream.launch_builder(&function);
        launch
            .arg(&lhs_pointer)
            .arg(&lhs_layout)
            .arg(&lhs_contiguous)
            .arg(&scalar)
            .arg(&out_pointer)
            .arg(&items)
            .arg(&op);
        // SAFETY: `compare_scalar(const T *lhs, Layout, int, T scalar, unsigned char
        // *out, unsigned long long len, int op)` compiled with T = E::C_TYPE, the C name
        // of E::Stored, which `scalar` is; the rest as for compare_tensor. Position
        // i < len reads lhs at layout_offset(i) within its checked length and writes
        // out[i] of `len` bytes.
        unsafe { launch.launch(grid_for(items)) }.map_err(|e| self.gpu.error("launching compare_scalar", &e))?;
        drop((lhs_guard, out_guard));
        Ok(out)
    }
}

impl<E: Dtype + CudaElement> ChooseKernel<E> for Cuda {
    fn forward(
        &self,
        condition: View<'_, CudaBuffer<bool>>,
        on_true: View<'_, CudaBuffer<E>>,
        on_false: View<'_, CudaBuffer<E>>,
    ) -> Result<CudaBuffer<E>, Error> {
        condition.check("choose", "condition")?;
        on_true.check("choose", "on_true")?;
        on_false.check("choose", "on_false")?;
        check_same_dims("choose", ("condition", &condition.layout), ("on_true", &on_true.layout))?;
        check_same_dims(
            "choose",
            ("condition", &condition.layout),
            ("on_false", &on_false.layout),
        )?;
        self.check_buffer(condition.buffer, "choose", "condition")?;
        self.check_buffer(on_true.buffer, "choose", "on_true")?;
        self.check_buffer(on_false.buffer, "choose", "on_false")?;
        let numel = condition.layout.num_elements();
        let mut out = CudaBuffer::<E>::uninit(&self.gpu, numel)?;
        if numel == 0 {
            return Ok(out);
        }
        let function = self.gpu.function(&CHOOSE, "choose_forward", E::C_TYPE)?;
        let stream = &self.gpu.stream;
        let items = numel as u64;
        let layouts = [&condition.layout, &on_true.layout, &on_false.layout];
        let [condition_layout, true_layout, false_layout] = layouts.map(KernelLayout::from);
        let [condition_contiguous, true_contiguous, false_contiguous] = layouts.map(contiguous);
        let (condition_pointer, condition_guard) = read_ptr(stream, condition.buffer);
        let (true_pointer, true_guard) = read_ptr(stream, on_true.buffer);
        let (false_pointer, false_guard) = read_ptr(stream, on_false.buffer);
        let (out_pointer, out_guard) = write_ptr(stream, &mut out);
        let mut launch = stream.launch_builder(&function);
        launch
            .arg(&condition_pointer)
            .arg(&condition_layout)
            .arg(&condition_contiguous)
            .arg(&true_pointer)
            .arg(&true_layout)
            .arg(&true_contiguous)
            .arg(&false_pointer)
            .arg(&false_layout)
            .arg(&false_contiguous)
            .arg(&out_pointer)
            .arg(&items);
        // SAFETY: `choose_forward(const unsigned char *condition, Layout, int, const T
        // *on_true, Layout, int, const T *on_false, Layout, int, T *out, unsigned long
        // long len)` compiled with T = E::C_TYPE: device pointers (u64), KernelLayouts,
        // ints and a u64 in that order (the condition is bool, stored as u8). Position
        // i < len (the common element count) reads each operand at layout_offset(i) (or
        // i) within its checked length and writes out[i] of a buffer of `len` elements.
        unsafe { launch.launch(grid_for(items)) }.map_err(|e| self.gpu.error("launching choose_forward", &e))?;
        drop((condition_guard, true_guard, false_guard, out_guard));
        Ok(out)
    }

    fn backward(
        &self,
        operand: Operand,
        condition: View<'_, CudaBuffer<bool>>,
        grad: ViewMut<'_, CudaBuffer<E>>,
        grad_output: &CudaBuffer<E>,
    ) -> Result<(), Error> {
        condition.check("choose", "condition")?;
        grad.check_accumulating("choose", "grad")?;
        check_same_dims("choose", ("condition", &condition.layout), ("grad", &grad.layout))?;
        let numel = condition.layout.num_elements();
        check_len("choose", "grad_output", grad_output.len(), numel)?;
        self.check_buffer(condition.buffer, "choose", "condition")?;
        self.check_buffer(grad.buffer, "choose", "grad")?;
        self.check_buffer(grad_output, "choose", "grad_output")?;
        if numel == 0 {
            return Ok(());
        }
        let function = self.gpu.function(&CHOOSE, "choose_backward", E::C_TYPE)?;
        let stream = &self.gpu.stream;
        let items = numel as u64;
        let (condition_layout, condition_contiguous) =
            (KernelLayout::from(&condition.layout), contiguous(&condition.layout));
        let (grad_layout, grad_mode) = (KernelLayout::from(&grad.layout), add_mode(&grad.layout));
        let picks = i32::from(operand == Operand::Lhs);
        let (condition_pointer, condition_guard) = read_ptr(stream, condition.buffer);
        let (grad_output_pointer, grad_output_guard) = read_ptr(stream, grad_output);
        let (grad_pointer, grad_guard) = write_ptr(stream, grad.buffer);
        let mut launch = stream.launch_builder(&function);
        launch
            .arg(&condition_pointer)
            .arg(&condition_layout)
            .arg(&condition_contiguous)
            .arg(&picks)
            .arg(&grad_output_pointer)
            .arg(&grad_pointer)
            .arg(&grad_layout)
            .arg(&grad_mode)
            .arg(&items);
        // SAFETY: `choose_backward(const unsigned char *condition, Layout, int, int picks,
        // const T *grad_output, T *grad, Layout, int grad_mode, unsigned long long len)`
        // compiled with T = E::C_TYPE: pointers (u64), KernelLayouts, ints and a u64 in
        // that order. Position i < len reads the condition at layout_offset(i) within its
        // checked length and grad_output[i] < its checked length, and adds into grad at
        // layout_offset(i) (or i, contiguous), within grad's checked length; repeated
        // elements are added atomically (add_mode).
        unsafe { launch.launch(grid_for(items)) }.map_err(|e| self.gpu.error("launching choose_backward", &e))?;
        drop((condition_guard, grad_output_guard, grad_guard));
        Ok(())
    }
}
