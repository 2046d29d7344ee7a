//! Batched matrix products ([`MatmulKernel`]) through cuBLAS.
//!
//! cuBLAS is column-major: it reads a matrix whose columns' elements are adjacent, with
//! a leading dimension (the elements between columns), or the transpose of one. A
//! row-major `m × n` matrix is a column-major `n × m` one, so a product whose output is
//! row-major (the usual case) is computed as `outᵀ = rhsᵀ · lhsᵀ`, and each operand is
//! read as it lies, row-major or column-major, by choosing its transpose flag. An
//! operand with neither its rows' nor its columns' elements adjacent (a strided slice,
//! a broadcast row) is first gathered into a dense buffer (`gemm_gather`); an output
//! laid out so is computed into a dense buffer and written back (`gemm_scatter`).
//!
//! The batch: axes of size 1 are dropped and adjacent axes along which all three
//! operands step as along one axis are merged. A batch of one axis (a uniform stride
//! per operand, 0 for a matrix the batch shares) is one
//! `cublas{S,D}gemmStridedBatched` call; more axes are a loop over the outer ones of
//! such calls along the innermost. A right operand shared by the batch whose left
//! operand and output follow on row after row (a linear layer on a `(B, S, F)` input)
//! is folded into the rows of one product instead, as the CPU does.
//!
//! Sizes go to cuBLAS's 64-bit interface (`…_64`), so no size is limited to 2³¹.

use crate::buffer::CudaBuffer;
use crate::compile::KernelSource;
use crate::device::{Cuda, Gpu, grid_for, lock};
use crate::element::CudaElement;
use crate::layout::KernelLayout;
use cudarc::cublas::{CudaBlas, sys as blas};
use cudarc::driver::{DevicePtr, DevicePtrMut, PushKernelArg};
use ferrograd_device::ops::matmul::{MatmulKernel, MatrixLayout, check_gemm};
use ferrograd_device::{Dtype, Error, Layout, View, ViewMut};
use ferrograd_shapes::MAX_RANK;
use std::any::TypeId;
use std::sync::Arc;

/// `gemm.cu`.
pub(crate) const GEMM: KernelSource = KernelSource {
    name: "gemm",
    source: concat!(include_str!("../layout.cuh"), include_str!("gemm.cu")),
    functions: &["gemm_gather", "gemm_scatter", "gemm_scale"],
    element_types: &["float", "double"],
};

const OP: &str = "matmul";

impl Gpu {
    /// The GPU's cuBLAS handle, created on its stream the first time it is needed.
    fn blas(&self) -> Result<Arc<CudaBlas>, Error> {
        let mut slot = lock(&self.blas);
        if let Some(handle) = &*slot {
            return Ok(Arc::clone(handle));
        }
        // SAFETY: only tries to open the library under its usual names (running its
        // initialisers, as any use of it would); nothing in it is called. cudarc panics
        // on the first cuBLAS call when it cannot be loaded, so this runs before any.
        if !unsafe { blas::is_culib_present() } {
            return Err(Error::Device {
                device: self.device(),
                message: "cuBLAS could not be loaded: no libcublas.so.13 or libcublas.so on the library path. \
                          Install the CUDA 13 toolkit, or `pip install nvidia-cublas` and add its \
                          site-packages/nvidia/cu13/lib directory to LD_LIBRARY_PATH"
                    .into(),
            });
        }
        let handle = CudaBlas::new(Arc::clone(&self.stream)).map_err(|e| Error::Device {
            device: self.device(),
            message: format!("creating the cuBLAS handle: {e:?}"),
        })?;
        let handle = Arc::new(handle);
        *slot = Some(Arc::clone(&handle));
        Ok(handle)
    }
}

/// How cuBLAS reads the matrices of one operand.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Order {
    /// The elements of a row are adjacent; the leading dimension steps between rows.
    Rows,
    /// The elements of a column are adjacent; the leading dimension steps between columns.
    Columns,
}

/// The leading dimension under which cuBLAS reads a `rows × columns` matrix of these
/// strides column-major, if it can: its column elements adjacent (unless there is one
/// row) and its columns at least `rows` apart, as cuBLAS requires (unless there is one
/// column, whose stride is then never used).
fn column_major(rows: usize, columns: usize, row_stride: usize, column_stride: usize) -> Option<usize> {
    if rows > 1 && row_stride != 1 {
        return None;
    }
    if columns <= 1 {
        return Some(rows.max(1));
    }
    (column_stride >= rows.max(1)).then_some(column_stride)
}

/// How cuBLAS can read a `rows × columns` matrix of these strides in place, row-major
/// preferably, with its leading dimension; `None` when it must be copied first.
fn order_of(rows: usize, columns: usize, row_stride: usize, column_stride: usize) -> Option<(Order, usize)> {
    column_major(columns, rows, column_stride, row_stride)
        .map(|ld| (Order::Rows, ld))
        .or_else(|| column_major(rows, columns, row_stride, column_stride).map(|ld| (Order::Columns, ld)))
}

/// How the calls read an operand of `rows × columns` matrices in place, or `None`
/// when it must first be copied into a dense buffer, read as [`Operand::dense`].
fn in_place(layout: &MatrixLayout, rows: usize, columns: usize) -> Option<Operand> {
    order_of(rows, columns, layout.row_stride, layout.column_stride)
        .map(|(order, ld)| Operand::of(order, ld, &layout.batch))
}

/// One operand's matrices as the calls read them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Operand {
    order: Order,
    /// cuBLAS's leading dimension.
    ld: usize,
    /// Where the first matrix starts.
    offset: usize,
    /// The step between matrices along each batch axis of the product.
    strides: [usize; MAX_RANK],
}

impl Operand {
    /// An operand read in place: its own batch layout.
    fn of(order: Order, ld: usize, batch: &Layout) -> Self {
        let mut strides = [0; MAX_RANK];
        strides[..batch.rank()].copy_from_slice(batch.strides());
        Self {
            order,
            ld,
            offset: batch.offset(),
            strides,
        }
    }

    /// A dense row-major copy of `rows × columns` matrices, the batch's in row-major
    /// order from offset 0: what `gemm_gather` writes.
    fn dense(rows: usize, columns: usize, batch_dims: &[usize]) -> Self {
        let mut strides = [0; MAX_RANK];
        let mut step = rows * columns;
        for (axis, &dim) in batch_dims.iter().enumerate().rev() {
            strides[axis] = step;
            step *= dim;
        }
        Self {
            order: Order::Rows,
            ld: columns.max(1),
            offset: 0,
            strides,
        }
    }
}

/// Which operand of the product a cuBLAS argument is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Source {
    Lhs,
    Rhs,
}

/// A matrix argument of a cuBLAS call: where its first matrix starts, its leading
/// dimension, its step between the matrices of the call's batch, and whether cuBLAS
/// transposes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Argument {
    offset: usize,
    ld: usize,
    stride: usize,
    transpose: bool,
}

/// One `gemmStridedBatched` call, in cuBLAS's column-major terms: `count` products
/// `C = op(A) · op(B) + beta · C` of `op(A)` `m × k` and `op(B)` `k × n`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Call {
    m: usize,
    n: usize,
    k: usize,
    a: (Source, Argument),
    b: (Source, Argument),
    c: Argument,
    count: usize,
}

/// The batch axes of a product, each `(dim, [lhs, rhs, out] strides)`: axes of size 1
/// dropped, and an axis merged into the one before it where all three operands step
/// through the pair as through one axis.
fn merged_axes(dims: &[usize], operands: [&Operand; 3]) -> Vec<(usize, [usize; 3])> {
    let mut axes: Vec<(usize, [usize; 3])> = Vec::with_capacity(dims.len());
    for (axis, &dim) in dims.iter().enumerate() {
        if dim == 1 {
            continue;
        }
        let strides = operands.map(|operand| operand.strides[axis]);
        if let Some((outer_dim, outer_strides)) = axes.last_mut()
            && (0..3).all(|i| strides[i].checked_mul(dim) == Some(outer_strides[i]))
        {
            *outer_dim *= dim;
            *outer_strides = strides;
            continue;
        }
        axes.push((dim, strides));
    }
    axes
}

/// The cuBLAS calls of `out = lhs · rhs + beta · out` for every index of a batch of
/// dims `batch_dims`, `lhs` `m × k`, `rhs` `k × n`, all three non-empty.
fn plan(
    (m, k, n): (usize, usize, usize),
    batch_dims: &[usize],
    lhs: &Operand,
    rhs: &Operand,
    out: &Operand,
) -> Vec<Call> {
    let mut axes = merged_axes(batch_dims, [lhs, rhs, out]);
    let mut m = m;
    // A right operand shared by the batch, the left one and the output running on row
    // after row through it: one product of all the rows.
    if let [(count, [lhs_stride, 0, out_stride])] = axes[..]
        && lhs.order == Order::Rows
        && out.order == Order::Rows
        && m.checked_mul(lhs.ld) == Some(lhs_stride)
        && m.checked_mul(out.ld) == Some(out_stride)
    {
        m *= count;
        axes.clear();
    }
    let (count, inner) = axes.pop().unwrap_or((1, [0; 3]));
    let outer_count: usize = axes.iter().map(|&(dim, _)| dim).product();
    // A row-major output is the column-major transpose: outᵀ = rhsᵀ · lhsᵀ. An operand
    // is transposed exactly when it is not in the output's order.
    let swapped = out.order == Order::Rows;
    let argument = |operand: &Operand, offset: usize, stride: usize| Argument {
        offset,
        ld: operand.ld,
        stride,
        transpose: operand.order != out.order,
    };
    (0..outer_count)
        .map(|index| {
            let mut offsets = [lhs.offset, rhs.offset, out.offset];
            let mut rest = index;
            for &(dim, strides) in axes.iter().rev() {
                let at = rest % dim;
                rest /= dim;
                for (offset, stride) in offsets.iter_mut().zip(strides) {
                    *offset += at * stride;
                }
            }
            let lhs = (Source::Lhs, argument(lhs, offsets[0], inner[0]));
            let rhs = (Source::Rhs, argument(rhs, offsets[1], inner[1]));
            let c = Argument {
                offset: offsets[2],
                ld: out.ld,
                stride: inner[2],
                transpose: false,
            };
            if swapped {
                Call {
                    m: n,
                    n: m,
                    k,
                    a: rhs,
                    b: lhs,
                    c,
                    count,
                }
            } else {
                Call {
                    m,
                    n,
                    k,
                    a: lhs,
                    b: rhs,
                    c,
                    count,
                }
            }
        })
        .collect()
}

/// The layout of every element of a batch of `rows × columns` matrices.
fn elements(layout: &MatrixLayout, rows: usize, columns: usize) -> Result<Layout, Error> {
    layout.elements(rows, columns).ok_or_else(|| Error::InvalidArgument {
        op: OP,
        message: format!(
            "a batch of {} axes has too many for a batch of matrices (at most {})",
            layout.batch.rank(),
            MAX_RANK - 2
        ),
    })
}

/// A size as cuBLAS's 64-bit interface takes it.
fn int(value: usize) -> Result<i64, Error> {
    i64::try_from(value).map_err(|_| Error::InvalidArgument {
        op: OP,
        message: format!("a size or stride of {value} is beyond cuBLAS's 64-bit interface"),
    })
}

/// cuBLAS's transpose flag.
fn operation(transpose: bool) -> blas::cublasOperation_t {
    if transpose {
        blas::cublasOperation_t::CUBLAS_OP_T
    } else {
        blas::cublasOperation_t::CUBLAS_OP_N
    }
}

impl Cuda {
    /// [`MatmulKernel::gemm_batched`], for every use of a product in this crate (the
    /// convolutions' too): checks, then the cuBLAS calls of [`plan`], with gathered
    /// copies of what cuBLAS cannot read in place.
    pub(crate) fn gemm<E: Dtype + CudaElement>(
        &self,
        (m, k, n): (usize, usize, usize),
        lhs: View<'_, CudaBuffer<E>, MatrixLayout>,
        rhs: View<'_, CudaBuffer<E>, MatrixLayout>,
        beta: E,
        out: ViewMut<'_, CudaBuffer<E>, MatrixLayout>,
    ) -> Result<(), Error> {
        check_gemm((m, k, n), &lhs, &rhs, &out)?;
        self.check_buffer(lhs.buffer, OP, "lhs")?;
        self.check_buffer(rhs.buffer, OP, "rhs")?;
        self.check_buffer(out.buffer, OP, "out")?;
        let batch_dims = out.layout.batch.dims();
        let out_elements = elements(&out.layout, m, n)?;
        if out_elements.num_elements() == 0 {
            return Ok(());
        }
        if k == 0 {
            // Nothing to sum: out = beta · out (the operands, empty, are not read).
            return if beta == E::ONE {
                Ok(())
            } else {
                self.gemm_scale(out.buffer, &out_elements, beta)
            };
        }
        let lhs_in_place = in_place(&lhs.layout, m, k);
        let rhs_in_place = in_place(&rhs.layout, k, n);
        let lhs_copy = match lhs_in_place {
            Some(_) => None,
            None => Some(self.gemm_gather(lhs.buffer, &elements(&lhs.layout, m, k)?)?),
        };
        let rhs_copy = match rhs_in_place {
            Some(_) => None,
            None => Some(self.gemm_gather(rhs.buffer, &elements(&rhs.layout, k, n)?)?),
        };
        let lhs_operand = lhs_in_place.unwrap_or_else(|| Operand::dense(m, k, batch_dims));
        let rhs_operand = rhs_in_place.unwrap_or_else(|| Operand::dense(k, n, batch_dims));
        let lhs_buffer = lhs_copy.as_ref().unwrap_or(lhs.buffer);
        let rhs_buffer = rhs_copy.as_ref().unwrap_or(rhs.buffer);
        match in_place(&out.layout, m, n) {
            Some(out_operand) => {
                let calls = plan((m, k, n), batch_dims, &lhs_operand, &rhs_operand, &out_operand);
                self.run_gemm(&calls, lhs_buffer, rhs_buffer, beta, out.buffer)
            }
            None => {
                // Into a dense copy (of out's values when beta reads them), then back.
                let mut dense = if beta == E::ZERO {
                    CudaBuffer::uninit(&self.gpu, out_elements.num_elements())?
                } else {
                    self.gemm_gather(out.buffer, &out_elements)?
                };
                let calls = plan(
                    (m, k, n),
                    batch_dims,
                    &lhs_operand,
                    &rhs_operand,
                    &Operand::dense(m, n, batch_dims),
                );
                self.run_gemm(&calls, lhs_buffer, rhs_buffer, beta, &mut dense)?;
                self.gemm_scatter(&dense, out.buffer, &out_elements)
            }
        }
    }

    /// Queues `calls` on the GPU's cuBLAS handle, `A` and `B` from `lhs` or `rhs` as each
    /// call says, `C` in `out`.
    ///
    /// Every offset of `calls` comes from [`plan`] on operands whose every element lies
    /// inside its buffer (checked by `check_gemm`, or a dense copy of exactly the
    /// batch's matrices), so the matrices cuBLAS reads and writes lie inside the buffers.
    fn run_gemm<E: Dtype + CudaElement>(
        &self,
        calls: &[Call],
        lhs: &CudaBuffer<E>,
        rhs: &CudaBuffer<E>,
        beta: E,
        out: &mut CudaBuffer<E>,
    ) -> Result<(), Error> {
        let missing = || Error::InvalidArgument {
            op: OP,
            message: "an operand of a non-empty product has an empty buffer".into(),
        };
        let handle = self.gpu.blas()?;
        let stream = &self.gpu.stream;
        let (lhs, rhs) = (
            lhs.allocation().ok_or_else(missing)?,
            rhs.allocation().ok_or_else(missing)?,
        );
        let out = out.allocation_mut().ok_or_else(missing)?;
        let (lhs_ptr, _lhs_sync) = lhs.slice.device_ptr(stream);
        let (rhs_ptr, _rhs_sync) = rhs.slice.device_ptr(stream);
        let (out_ptr, _out_sync) = out.slice.device_ptr_mut(stream);
        let size = size_of::<E::Stored>() as u64;
        let address = |base: u64, offset: usize| base + offset as u64 * size;
        let source = |which: Source| match which {
            Source::Lhs => lhs_ptr,
            Source::Rhs => rhs_ptr,
        };
        // cuBLAS runs on the stream of the context current on this thread's side.
        stream
            .context()
            .bind_to_thread()
            .map_err(|e| self.gpu.error("binding the GPU's context for cuBLAS", &e))?;
        for call in calls {
            let (a, b, c) = (call.a.1, call.b.1, call.c);
            let sizes = [
                call.m, call.n, call.k, a.ld, a.stride, b.ld, b.stride, c.ld, c.stride, call.count,
            ];
            let [m, n, k, lda, stride_a, ldb, stride_b, ldc, stride_c, count] = sizes.map(int);
            let (m, n, k, lda, stride_a, ldb, stride_b) = (m?, n?, k?, lda?, stride_a?, ldb?, stride_b?);
            let (ldc, stride_c, count) = (ldc?, stride_c?, count?);
            let (a_ptr, b_ptr) = (address(source(call.a.0), a.offset), address(source(call.b.0), b.offset));
            let c_ptr = address(out_ptr, c.offset);
            let (op_a, op_b) = (operation(a.transpose), operation(b.transpose));
            let status = if TypeId::of::<E>() == TypeId::of::<f32>() {
                let (alpha, beta) = (1.0f32, beta.to_f64() as f32);
                // SAFETY: E is f32, so the three buffers hold f32 (E::Stored = f32) and
                // the pointers address them; alpha and beta live across the call (cuBLAS
                // reads host scalars before it returns). The matrices lie inside their
                // allocations (see above), read by cuBLAS as `plan` laid them out: leading
                // dimensions at least the rows it reads, as `order_of` chose them. The
                // handle is on this GPU's stream, where the buffers' earlier work is queued.
                unsafe {
                    blas::cublasSgemmStridedBatched_64(
                        *handle.handle(),
                        op_a,
                        op_b,
                        m,
                        n,
                        k,
                        &alpha,
                        a_ptr as *const f32,
                        lda,
                        stride_a,
                        b_ptr as *const f32,
                        ldb,
                        stride_b,
                        &beta,
                        c_ptr as *mut f32,
                        ldc,
                        stride_c,
                        count,
                    )
                }
            } else if TypeId::of::<E>() == TypeId::of::<f64>() {
                let (alpha, beta) = (1.0f64, beta.to_f64());
                // SAFETY: as for f32, with E = f64 = E::Stored.
                unsafe {
                    blas::cublasDgemmStridedBatched_64(
                        *handle.handle(),
                        op_a,
                        op_b,
                        m,
                        n,
                        k,
                        &alpha,
                        a_ptr as *const f64,
                        lda,
                        stride_a,
                        b_ptr as *const f64,
                        ldb,
                        stride_b,
                        &beta,
                        c_ptr as *mut f64,
                        ldc,
                        stride_c,
                        count,
                    )
                }
            } else {
                return Err(Error::InvalidArgument {
                    op: OP,
                    message: format!("cuBLAS has no product of {} elements", E::NAME),
                });
            };
            status.result().map_err(|e| Error::Device {
                device: self.gpu.device(),
                message: format!("cuBLAS's gemmStridedBatched failed: {e:?}"),
            })?;
        }
        Ok(())
    }

    /// A dense row-major copy of the elements `layout` addresses in `source`.
    pub(crate) fn gemm_gather<E: Dtype + CudaElement>(
        &self,
        source: &CudaBuffer<E>,
        layout: &Layout,
    ) -> Result<CudaBuffer<E>, Error> {
        let len = layout.num_elements();
        let mut dense = CudaBuffer::uninit(&self.gpu, len)?;
        let Some(target) = dense.allocation_mut() else {
            return Ok(dense);
        };
        let source = source.allocation().ok_or_else(|| Error::InvalidArgument {
            op: OP,
            message: "a non-empty layout over an empty buffer".into(),
        })?;
        let function = self.gpu.function(&GEMM, "gemm_gather", E::C_TYPE)?;
        let kernel_layout = KernelLayout::from(layout);
        let items = len as u64;
        let mut launch = self.gpu.stream.launch_builder(&function);
        launch
            .arg(&source.slice)
            .arg(&kernel_layout)
            .arg(&mut target.slice)
            .arg(&items);
        // SAFETY: `gemm_gather(const T *src, Layout layout, T *dst, unsigned long long
        // len)` was compiled with T = E::C_TYPE, the C name of E::Stored, the element of
        // both slices; KernelLayout is `struct Layout`. It reads src at the offsets of
        // `layout`, which callers checked lie inside `source` (View::check or
        // check_gemm), and writes dst[0..len], which the new allocation holds.
        unsafe { launch.launch(grid_for(items)) }.map_err(|e| self.gpu.error("launching gemm_gather", &e))?;
        Ok(dense)
    }

    /// Writes the dense row-major `source` through `layout` into `target`.
    fn gemm_scatter<E: Dtype + CudaElement>(
        &self,
        source: &CudaBuffer<E>,
        target: &mut CudaBuffer<E>,
        layout: &Layout,
    ) -> Result<(), Error> {
        let len = layout.num_elements();
        let (Some(source), Some(target)) = (source.allocation(), target.allocation_mut()) else {
            return Ok(());
        };
        let function = self.gpu.function(&GEMM, "gemm_scatter", E::C_TYPE)?;
        let kernel_layout = KernelLayout::from(layout);
        let items = len as u64;
        let mut launch = self.gpu.stream.launch_builder(&function);
        launch
            .arg(&source.slice)
            .arg(&mut target.slice)
            .arg(&kernel_layout)
            .arg(&items);
        // SAFETY: `gemm_scatter(const T *src, T *dst, Layout layout, unsigned long long
        // len)` was compiled with T = E::C_TYPE, the C name of E::Stored; KernelLayout
        // is `struct Layout`. It reads src[0..len] (a dense copy of `len` elements) and
        // writes dst at the offsets of `layout`, which check_gemm checked lie inside
        // `target` and address each element once.
        unsafe { launch.launch(grid_for(items)) }.map_err(|e| self.gpu.error("launching gemm_scatter", &e))?;
        Ok(())
    }

    /// `out = beta · out` through `layout` (0 when beta is 0, whatever out held).
    fn gemm_scale<E: Dtype + CudaElement>(
        &self,
        out: &mut CudaBuffer<E>,
        layout: &Layout,
        beta: E,
    ) -> Result<(), Error> {
        let len = layout.num_elements();
        let Some(out) = out.allocation_mut() else {
            return Ok(());
        };
        let function = self.gpu.function(&GEMM, "gemm_scale", E::C_TYPE)?;
        let kernel_layout = KernelLayout::from(layout);
        let (items, beta) = (len as u64, beta.to_stored());
        let mut launch = self.gpu.stream.launch_builder(&function);
        launch.arg(&mut out.slice).arg(&kernel_layout).arg(&beta).arg(&items);
        // SAFETY: `gemm_scale(T *out, Layout layout, T beta, unsigned long long len)` was
        // compiled with T = E::C_TYPE, the C name of E::Stored, the type of the slice
        // and of `beta`; KernelLayout is `struct Layout`. It reads and writes out at the
        // offsets of `layout`, which check_gemm checked lie inside the buffer and
        // address each element once.
        unsafe { launch.launch(grid_for(items)) }.map_err(|e| self.gpu.error("launching gemm_scale", &e))?;
        Ok(())
    }
}

/// Products through cuBLAS's strided-batched GEMM: each operand read in place, row- or
/// column-major, unless neither its rows' nor its columns' elements are adjacent (then
/// copied first); the batch merged into as few calls as its strides allow.
///
/// The product copies with kernels of its own (`gemm_gather`, `gemm_scatter`);
/// `CopyKernel`, `MatmulKernel`'s supertrait, is for the autodiff layer's folds.
impl<E: Dtype + CudaElement> MatmulKernel<E> for Cuda {
    fn gemm_batched(
        &self,
        dims: (usize, usize, usize),
        lhs: View<'_, CudaBuffer<E>, MatrixLayout>,
        rhs: View<'_, CudaBuffer<E>, MatrixLayout>,
        beta: E,
        out: ViewMut<'_, CudaBuffer<E>, MatrixLayout>,
    ) -> Result<(), Error> {
        self.gemm(dims, lhs, rhs, beta, out)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::device::test_gpu;
    use ferrograd_cpu::{Cpu, CpuBuffer};
    use ferrograd_device::Storage;

    /// cuBLAS's `gemmStridedBatched` on host buffers, by its definition (column-major,
    /// `op(X)[i, j]` = `X[i + j·ld]`, or `X[j + i·ld]` transposed).
    fn emulate(call: &Call, lhs: &[f64], rhs: &[f64], beta: f64, out: &mut [f64]) {
        // cuBLAS refuses a leading dimension below the rows of the matrix as stored.
        let (a, b) = (call.a.1, call.b.1);
        assert!(a.ld >= (if a.transpose { call.k } else { call.m }).max(1), "{call:?}");
        assert!(b.ld >= (if b.transpose { call.n } else { call.k }).max(1), "{call:?}");
        assert!(call.c.ld >= call.m.max(1), "{call:?}");
        let read = |(source, arg): (Source, Argument), batch: usize, i: usize, j: usize| {
            let buffer = if source == Source::Lhs { lhs } else { rhs };
            let (row, column) = if arg.transpose { (j, i) } else { (i, j) };
            buffer[arg.offset + batch * arg.stride + row + column * arg.ld]
        };
        for batch in 0..call.count {
            for i in 0..call.m {
                for j in 0..call.n {
                    let sum: f64 = (0..call.k)
                        .map(|l| read(call.a, batch, i, l) * read(call.b, batch, l, j))
                        .sum();
                    let at = call.c.offset + batch * call.c.stride + i + j * call.c.ld;
                    out[at] = sum + if beta == 0.0 { 0.0 } else { beta * out[at] };
                }
            }
        }
    }

    /// What `Cuda::gemm` does, on host buffers: the same checks, operands read in place
    /// or gathered, the calls of `plan` run by `emulate` (which also checks that cuBLAS
    /// would accept them), a scattered output. The convolutions' tests use it too, so
    /// that the products they ask for go through the planner.
    pub(crate) fn emulated_gemm(
        (m, k, n): (usize, usize, usize),
        lhs: View<'_, CpuBuffer<f64>, MatrixLayout>,
        rhs: View<'_, CpuBuffer<f64>, MatrixLayout>,
        beta: f64,
        out: ViewMut<'_, CpuBuffer<f64>, MatrixLayout>,
    ) -> Result<(), Error> {
        check_gemm((m, k, n), &lhs, &rhs, &out)?;
        let batch_dims = out.layout.batch.dims();
        let out_elements = elements(&out.layout, m, n)?;
        if out_elements.num_elements() == 0 {
            return Ok(());
        }
        if k == 0 {
            if beta != 1.0 {
                for o in out_elements.offsets() {
                    out.buffer[o] = if beta == 0.0 { 0.0 } else { beta * out.buffer[o] };
                }
            }
            return Ok(());
        }
        let gathered = |view: &View<'_, CpuBuffer<f64>, MatrixLayout>, rows, columns| match in_place(
            &view.layout,
            rows,
            columns,
        ) {
            Some(operand) => (view.buffer.to_vec(), operand),
            None => (
                elements(&view.layout, rows, columns)
                    .unwrap()
                    .offsets()
                    .map(|o| view.buffer[o])
                    .collect::<Vec<f64>>(),
                Operand::dense(rows, columns, batch_dims),
            ),
        };
        let (lhs_buffer, lhs_operand) = gathered(&lhs, m, k);
        let (rhs_buffer, rhs_operand) = gathered(&rhs, k, n);
        match in_place(&out.layout, m, n) {
            Some(operand) => {
                for call in plan((m, k, n), batch_dims, &lhs_operand, &rhs_operand, &operand) {
                    emulate(&call, &lhs_buffer, &rhs_buffer, beta, out.buffer);
                }
            }
            None => {
                let mut dense: Vec<f64> = out_elements.offsets().map(|o| out.buffer[o]).collect();
                let operand = Operand::dense(m, n, batch_dims);
                for call in plan((m, k, n), batch_dims, &lhs_operand, &rhs_operand, &operand) {
                    emulate(&call, &lhs_buffer, &rhs_buffer, beta, &mut dense);
                }
                for (value, o) in dense.into_iter().zip(out_elements.offsets()) {
                    out.buffer[o] = value;
                }
            }
        }
        Ok(())
    }

    /// A row-major batch layout of `dims` whose innermost step is `step`, from `offset`.
    fn batch(dims: &[usize], step: usize, offset: usize) -> Layout {
        let mut strides = vec![0; dims.len()];
        let mut s = step;
        for axis in (0..dims.len()).rev() {
            strides[axis] = s;
            s *= dims[axis];
        }
        Layout::from_parts(dims, &strides).with_offset(offset)
    }

    /// The kinds of operand layouts a product meets, for `rows × columns` matrices.
    fn layouts(dims: &[usize], rows: usize, columns: usize) -> Vec<MatrixLayout> {
        let size = rows * columns;
        let zero_batch = Layout::from_parts(dims, &vec![0; dims.len()]).with_offset(1);
        let mut reversed = batch(dims, 1, 2);
        if dims.len() == 2 {
            // The batch axes in the other order (a permuted tensor).
            reversed = Layout::from_parts(dims, &[size, size * dims[0]]).with_offset(2);
        }
        vec![
            // Row-major, contiguous.
            MatrixLayout {
                batch: batch(dims, size, 0),
                row_stride: columns,
                column_stride: 1,
            },
            // Column-major (a transposed tensor), offset.
            MatrixLayout {
                batch: batch(dims, size, 3),
                row_stride: 1,
                column_stride: rows,
            },
            // Rows padded apart.
            MatrixLayout {
                batch: batch(dims, rows * (columns + 2), 1),
                row_stride: columns + 2,
                column_stride: 1,
            },
            // Neither rows nor columns adjacent: copied.
            MatrixLayout {
                batch: batch(dims, 2 * size, 0),
                row_stride: 2 * columns,
                column_stride: 2,
            },
            // One matrix for the whole batch.
            MatrixLayout {
                batch: zero_batch,
                row_stride: columns,
                column_stride: 1,
            },
            // A broadcast row (every row the same).
            MatrixLayout {
                batch: batch(dims, columns, 0),
                row_stride: 0,
                column_stride: 1,
            },
            // Batch axes permuted, matrices interleaved with the batch.
            MatrixLayout {
                batch: reversed,
                row_stride: columns,
                column_stride: 1,
            },
            // The batch inside each row: (rows, batch, columns) storage.
            MatrixLayout {
                batch: batch(dims, columns, 0),
                row_stride: columns * dims.iter().product::<usize>(),
                column_stride: 1,
            },
        ]
    }

    /// The element at (batch index, row, column) of a layout.
    fn at(layout: &MatrixLayout, index: &[usize], row: usize, column: usize) -> usize {
        layout.batch.offset()
            + index
                .iter()
                .zip(layout.batch.strides())
                .map(|(i, s)| i * s)
                .sum::<usize>()
            + row * layout.row_stride
            + column * layout.column_stride
    }

    fn values(len: usize, seed: usize) -> Vec<f64> {
        (0..len).map(|i| ((i * 37 + seed * 11) % 23) as f64 - 11.0).collect()
    }

    /// What `Cuda::gemm` does, on the host: operands read in place or gathered, the
    /// calls of `plan` emulated, a scattered output. Checked against the definition
    /// for every combination of layouts, so the transposes, leading dimensions, batch
    /// merging and folding are right without a GPU.
    #[test]
    fn the_planned_calls_compute_the_product_for_every_layout() {
        for (dims, (m, k, n)) in [
            (vec![], (3, 4, 5)),
            (vec![3], (2, 3, 4)),
            (vec![2, 3], (3, 2, 2)),
            (vec![3], (1, 4, 2)),
            (vec![2], (4, 1, 3)),
            (vec![2, 1], (2, 3, 1)),
        ] {
            let count: usize = dims.iter().product();
            let indices: Vec<Vec<usize>> = (0..count)
                .map(|mut flat| {
                    let mut index = vec![0; dims.len()];
                    for axis in (0..dims.len()).rev() {
                        index[axis] = flat % dims[axis];
                        flat /= dims[axis];
                    }
                    index
                })
                .collect();
            let lhs_layouts = layouts(&dims, m, k);
            let rhs_layouts = layouts(&dims, k, n);
            // Outputs must address each element once: no broadcasts.
            let out_layouts: Vec<MatrixLayout> = layouts(&dims, m, n)
                .into_iter()
                .filter(|l| l.elements(m, n).unwrap().has_unique_offsets())
                .collect();
            for lhs in &lhs_layouts {
                for rhs in &rhs_layouts {
                    for out in &out_layouts {
                        for beta in [0.0, 1.0] {
                            let lhs_data = values(lhs.elements(m, k).unwrap().min_buffer_len(), 1);
                            let rhs_data = values(rhs.elements(k, n).unwrap().min_buffer_len(), 2);
                            let out_len = out.elements(m, n).unwrap().min_buffer_len();
                            let mut expected = values(out_len, 3);
                            for index in &indices {
                                for i in 0..m {
                                    for j in 0..n {
                                        let sum: f64 = (0..k)
                                            .map(|l| lhs_data[at(lhs, index, i, l)] * rhs_data[at(rhs, index, l, j)])
                                            .sum();
                                        let o = at(out, index, i, j);
                                        expected[o] = sum + beta * expected[o];
                                    }
                                }
                            }

                            let cpu = Cpu::default();
                            let lhs_buffer = cpu.try_from_host(lhs_data.clone()).unwrap();
                            let rhs_buffer = cpu.try_from_host(rhs_data.clone()).unwrap();
                            let mut actual = cpu.try_from_host(values(out_len, 3)).unwrap();
                            emulated_gemm(
                                (m, k, n),
                                View::new(&lhs_buffer, *lhs),
                                View::new(&rhs_buffer, *rhs),
                                beta,
                                ViewMut::new(&mut actual, *out),
                            )
                            .unwrap();
                            let actual = actual.to_vec();
                            assert_eq!(
                                actual,
                                expected,
                                "dims {dims:?}, (m, k, n) = {:?}, lhs {lhs:?}, rhs {rhs:?}, out {out:?}, beta {beta}",
                                (m, k, n)
                            );
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn a_shared_right_operand_folds_into_rows_and_uniform_batches_merge() {
        // (2, 3, m=4, k=5) · (5, 6) shared: one call of 24 rows.
        let dims = [2, 3];
        let lhs = Operand::dense(4, 5, &dims);
        let rhs = Operand::of(Order::Rows, 6, &Layout::from_parts(&dims, &[0, 0]));
        let out = Operand::dense(4, 6, &dims);
        let calls = plan((4, 5, 6), &dims, &lhs, &rhs, &out);
        assert_eq!(calls.len(), 1);
        assert_eq!((calls[0].m, calls[0].n, calls[0].count), (6, 24, 1));
        // Contiguous batches of both operands: one strided call over the 6 matrices.
        let rhs = Operand::dense(5, 6, &dims);
        let calls = plan((4, 5, 6), &dims, &lhs, &rhs, &out);
        assert_eq!(calls.len(), 1);
        assert_eq!(calls[0].count, 6);
        assert_eq!(
            (calls[0].a.1.stride, calls[0].b.1.stride, calls[0].c.stride),
            (30, 20, 24)
        );
    }

    /// gemm.cu's copies and scaling, compiled for the CPU (see `crate::emulation`).
    #[test]
    fn the_emulated_copies_and_scaling_follow_the_layout() {
        let Some(library) = crate::emulation::library(&GEMM, "double") else {
            return;
        };
        type Gather = unsafe extern "C" fn(*const f64, KernelLayout, *mut f64, u64);
        type Scatter = unsafe extern "C" fn(*const f64, *mut f64, KernelLayout, u64);
        type Scale = unsafe extern "C" fn(*mut f64, KernelLayout, f64, u64);
        // SAFETY: the kernels' signatures with T = double.
        let (gather, scatter, scale): (Gather, Scatter, Scale) = unsafe {
            (
                crate::emulation::kernel(library, "gemm_gather"),
                crate::emulation::kernel(library, "gemm_scatter"),
                crate::emulation::kernel(library, "gemm_scale"),
            )
        };
        // A (2, 3) view of a 10-element buffer, transposed and offset.
        let layout = Layout::from_parts(&[2, 3], &[1, 3]).with_offset(2);
        let source: Vec<f64> = (0..10).map(f64::from).collect();
        let mut dense = vec![0.0; 6];
        // SAFETY: the layout reaches element 2 + 1 + 2·3 = 9 of 10; dense holds 6.
        unsafe { gather(source.as_ptr(), KernelLayout::from(&layout), dense.as_mut_ptr(), 6) };
        assert_eq!(dense, [2.0, 5.0, 8.0, 3.0, 6.0, 9.0]);
        let mut target = vec![-1.0; 10];
        // SAFETY: as above.
        unsafe { scatter(dense.as_ptr(), target.as_mut_ptr(), KernelLayout::from(&layout), 6) };
        assert_eq!(target, [-1.0, -1.0, 2.0, 3.0, -1.0, 5.0, 6.0, -1.0, 8.0, 9.0]);
        target[3] = f64::NAN;
        // SAFETY: as above.
        unsafe { scale(target.as_mut_ptr(), KernelLayout::from(&layout), 0.5, 6) };
        assert_eq!(target[2], 1.0);
        assert!(target[3].is_nan());
        // SAFETY: as above.
        unsafe { scale(target.as_mut_ptr(), KernelLayout::from(&layout), 0.0, 6) };
        assert_eq!(
            target,
            [-1.0, -1.0, 0.0, 0.0, -1.0, 0.0, 0.0, -1.0, 0.0, 0.0],
            "0 · NaN is 0"
        );
    }

    #[test]
    fn leading_dimensions_satisfy_cublas() {
        // A broadcast row has neither order; a single row or column takes any stride.
        assert_eq!(order_of(3, 4, 0, 1), None);
        assert_eq!(order_of(1, 4, 0, 1), Some((Order::Rows, 4)));
        assert_eq!(
            order_of(4, 1, 7, 9),
            Some((Order::Rows, 7)),
            "rows of one element, 7 apart"
        );
        assert_eq!(order_of(3, 4, 1, 3), Some((Order::Columns, 3)));
        assert_eq!(order_of(3, 4, 1, 2), None, "columns overlap: ld < rows");
        assert_eq!(order_of(3, 4, 6, 1), Some((Order::Rows, 6)));
    }

    /// Copies `data` to the GPU and the CPU.
    fn both(gpu: &Cuda, data: Vec<f32>) -> (CudaBuffer<f32>, Vec<f32>) {
        (gpu.try_from_host(data.clone()).unwrap(), data)
    }

    #[test]
    fn products_match_the_cpu() {
        let Some(gpu) = test_gpu() else { return };
        let cpu = Cpu::default();
        let dims = [2usize, 3];
        for (m, k, n) in [(3, 4, 5), (1, 7, 2), (5, 1, 3), (4, 0, 2), (17, 33, 9)] {
            for lhs in layouts(&dims, m, k) {
                for rhs in layouts(&dims, k, n) {
                    for out in layouts(&dims, m, n) {
                        if !out.elements(m, n).unwrap().has_unique_offsets() {
                            continue;
                        }
                        for beta in [0.0f32, 1.0, 0.5] {
                            let (lg, lc) = both(
                                &gpu,
                                values(lhs.elements(m, k).unwrap().min_buffer_len(), 1)
                                    .into_iter()
                                    .map(|x| x as f32)
                                    .collect(),
                            );
                            let (rg, rc) = both(
                                &gpu,
                                values(rhs.elements(k, n).unwrap().min_buffer_len(), 2)
                                    .into_iter()
                                    .map(|x| x as f32)
                                    .collect(),
                            );
                            let out_len = out.elements(m, n).unwrap().min_buffer_len();
                            let mut init: Vec<f32> = values(out_len, 3).into_iter().map(|x| x as f32).collect();
                            init[0] = f32::NAN; // not read when beta is 0
                            let (mut og, oc) = both(&gpu, init);
                            let mut oc = cpu.try_from_host(oc).unwrap();
                            let (lc, rc) = (cpu.try_from_host(lc).unwrap(), cpu.try_from_host(rc).unwrap());
                            gpu.gemm(
                                (m, k, n),
                                View::new(&lg, lhs),
                                View::new(&rg, rhs),
                                beta,
                                ViewMut::new(&mut og, out),
                            )
                            .unwrap();
                            ferrograd_device::ops::matmul::MatmulKernel::gemm_batched(
                                &cpu,
                                (m, k, n),
                                View::new(&lc, lhs),
                                View::new(&rc, rhs),
                                beta,
                                ViewMut::new(&mut oc, out),
                            )
                            .unwrap();
                            let (g, c) = (gpu.try_to_host(&og).unwrap(), cpu.try_to_host(&oc).unwrap());
                            for (x, y) in g.iter().zip(&c) {
                                assert!(
                                    (x.is_nan() && y.is_nan()) || (x - y).abs() <= 1e-4 * y.abs().max(1.0),
                                    "{x} vs {y}: {:?} {lhs:?} {rhs:?} {out:?} beta {beta}",
                                    (m, k, n)
                                );
                            }
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn bad_views_are_errors_before_any_launch() {
        let Some(gpu) = test_gpu() else { return };
        let lhs = gpu.try_from_host(vec![1.0f64; 6]).unwrap();
        let mut out = gpu.try_from_host(vec![0.0f64; 4]).unwrap();
        let layout = |_rows: usize, columns: usize| MatrixLayout {
            batch: Layout::from_parts(&[], &[]),
            row_stride: columns,
            column_stride: 1,
        };
        // lhs 2×4 needs 8 elements; it has 6.
        let error = gpu
            .gemm(
                (2, 4, 2),
                View::new(&lhs, layout(2, 4)),
                View::new(&lhs, layout(4, 2)),
                0.0,
                ViewMut::new(&mut out, layout(2, 2)),
            )
            .unwrap_err();
        assert!(error.to_string().starts_with("matmul: lhs reaches"), "{error}");
        // A buffer of another handle's GPU is refused too (same GPU here, so accepted).
        let other = Cuda::new(0).unwrap();
        assert!(
            other
                .gemm(
                    (2, 3, 2),
                    View::new(&lhs, layout(2, 3)),
                    View::new(&lhs, layout(3, 2)),
                    0.0,
                    ViewMut::new(&mut out, layout(2, 2))
                )
                .is_ok()
        );
    }
}
