//! Reductions over axes on the GPU: [`SumKernel`], [`ExtremumKernel`],
//! [`ArgExtremumKernel`], [`ExtremumWithIndicesKernel`], [`VarianceKernel`] and
//! [`LogSumExpKernel`], for `f32` and `f64` (`reduce.cu`).
//!
//! **Forward**: the input's elements split into groups, one per output element (see
//! `strided::Groups`), each reduced by a team of threads: one thread, a warp (warp
//! shuffles), or a block of 256 (shuffles, then shared memory), chosen from the
//! groups' length, number and stride. Groups read at consecutive addresses (the last
//! axes of a contiguous tensor) get a warp or a block, whose reads are coalesced;
//! strided ones (an outer axis) a thread each, so that neighbouring threads read
//! neighbouring elements. Any layout works: strided, permuted, broadcast, offset.
//!
//! **Results**: as the CPU's, with these exceptions. Sums (and the means, variances
//! and logsumexps built on them) add in another order (each thread a strided share,
//! then a tree), so they differ from the CPU's by rounding; `exp` and `ln` are CUDA's,
//! within 2 ulp of the CPU's. Maxima and minima propagate NaN as the CPU does, and
//! argmax / argmin and the indices of max / min pick exactly what the CPU picks: the
//! first NaN, else the first of the ties, whatever the split among threads. (Between
//! `0.0` and `-0.0`, which compare equal, the value of a max may be either zero.)
//!
//! **Backward**: element-wise over the input's positions, adding into the gradient
//! through the input's layout; where that layout addresses an element more than once
//! (a broadcast input) the adds are atomic (`atomicAdd`), otherwise plain. The max /
//! min gradient first counts each group's elements equal to its extremum (a team
//! kernel), as the CPU does; the variance gradient first recomputes the means. The
//! gradient of max / min with indices is a scatter-add (`index.rs`).
//!
//! **Empty groups** (a reduced axis of size 0) run no kernel: the output is filled with
//! the CPU's value for them.

use crate::buffer::CudaBuffer;
use crate::compile::KernelSource;
use crate::device::{Cuda, grid_for};
use crate::element::CudaElement;
use crate::strided::{Groups, contiguous_strides, kernel_layouts, output_strides, slice, slice_mut};
use cudarc::driver::{CudaFunction, DriverError, PushKernelArg};
use ferrograd_device::ops::index::ScatterAddKernel;
use ferrograd_device::ops::reduce::{
    ArgExtremumKernel, Extremum, ExtremumKernel, ExtremumWithIndicesKernel, LogSumExpKernel, Spread, SumKernel,
    VarianceKernel, check_axis, check_reduction, check_with_indices_backward,
};
use ferrograd_device::view::{check_axes, check_len, check_reach};
use ferrograd_device::{Dtype, Error, Layout, Storage, View, ViewMut};

/// `reduce.cu`.
pub(crate) const REDUCE: KernelSource = KernelSource {
    name: "reduce",
    source: concat!(
        include_str!("../layout.cuh"),
        include_str!("../strided.cuh"),
        include_str!("../team.cuh"),
        include_str!("reduce.cu")
    ),
    functions: &[
        "reduce_sum",
        "reduce_extremum",
        "reduce_arg_extremum",
        "reduce_extremum_with_indices",
        "reduce_extremum_share",
        "reduce_variance",
        "reduce_mean",
        "reduce_logsumexp",
        "reduce_sum_backward",
        "reduce_extremum_backward",
        "reduce_variance_backward",
        "reduce_logsumexp_backward",
    ],
    element_types: &["float", "double"],
};

/// `kind` as the kernels take it: 0 for the maximum, 1 for the minimum.
fn kind_code(kind: Extremum) -> i32 {
    match kind {
        Extremum::Max => 0,
        Extremum::Min => 1,
    }
}

/// `-inf` or `+inf`: the extremum of an empty group.
fn extremum_start<E: Dtype>(kind: Extremum) -> E {
    match kind {
        Extremum::Max => E::from_f64(f64::NEG_INFINITY),
        Extremum::Min => E::from_f64(f64::INFINITY),
    }
}

/// `N − correction`, at least 0, as the CPU computes it.
fn divisor<E: Dtype>(len: usize, correction: E) -> E {
    let d = E::from_f64(len as f64) - correction;
    if d > E::ZERO { d } else { E::ZERO }
}

/// The groups of a reduction of `layout` over `axes`.
fn groups(layout: &Layout, axes: &[usize]) -> Groups<1> {
    Groups::new(layout.dims(), [(layout.strides(), layout.offset())], axes)
}

/// The two layouts of a backward kernel, over the input's positions: the input's own
/// (`in`, which also addresses its gradient) and the map to its group (`to_out`), their
/// axes merged together.
fn backward_layouts(layout: &Layout, axes: &[usize]) -> [crate::layout::KernelLayout; 2] {
    let to_out = output_strides(layout.dims(), axes);
    kernel_layouts(layout.dims(), [layout.strides(), &to_out], [layout.offset(), 0])
}

/// [`check_reduction`] for a backward kernel, with `input` the view it walks (named
/// `role`), and `grad_output` holding a value per group; returns the groups.
fn check_reduction_backward<E: CudaElement>(
    op: &'static str,
    (role, input): (&str, View<'_, CudaBuffer<E>>),
    axes: &[usize],
    grad_output: &CudaBuffer<E>,
) -> Result<Groups<1>, Error> {
    check_axes(op, axes, input.layout.rank())?;
    input.check(op, role)?;
    let groups = groups(&input.layout, axes);
    check_len(op, "grad_output", grad_output.len(), groups.count)?;
    Ok(groups)
}

/// Whether adds through `layout` must be atomic: it addresses some element from more
/// than one position (conservatively, as `Layout::has_unique_offsets` decides).
pub(crate) fn atomic_flag(layout: &Layout) -> u32 {
    u32::from(!layout.has_unique_offsets())
}

/// The kernel `name` of `reduce.cu` for `E`.
fn function<E: CudaElement>(device: &Cuda, name: &'static str) -> Result<CudaFunction, Error> {
    device.gpu.function(&REDUCE, name, E::C_TYPE)
}

/// The error of a launch of `name` that failed.
pub(crate) fn launch_error(device: &Cuda, name: &str, error: &DriverError) -> Error {
    device.gpu.error(&format!("launching {name}"), error)
}

/// The extremum of each group and its index in the group, as `(values, indices)`;
/// values only when `with_values`. The caller checked the input and the axes.
#[allow(clippy::type_complexity)]
fn arg_extremum<E: Dtype + CudaElement>(
    device: &Cuda,
    op: &'static str,
    kind: Extremum,
    input: View<'_, CudaBuffer<E>>,
    axes: &[usize],
    with_values: bool,
) -> Result<(Option<CudaBuffer<E>>, CudaBuffer<usize>), Error> {
    let groups = groups(&input.layout, axes);
    if groups.count == 0 || groups.len == 0 {
        let values = match with_values {
            true => Some(device.try_alloc_filled(groups.count, extremum_start::<E>(kind))?),
            false => None,
        };
        return Ok((values, Storage::<usize>::try_alloc_zeros(device, groups.count)?));
    }
    let x = slice(device, input.buffer, op)?;
    let mut indices = CudaBuffer::<usize>::uninit(&device.gpu, groups.count)?;
    let (count, len, kind) = (groups.count as u64, groups.len as u64, kind_code(kind));
    let name = if with_values {
        "reduce_extremum_with_indices"
    } else {
        "reduce_arg_extremum"
    };
    let kernel = function::<E>(device, name)?;
    let mut launch = device.gpu.stream.launch_builder(&kernel);
    launch
        .arg(x)
        .arg(&groups.outer[0])
        .arg(&groups.inner[0])
        .arg(&count)
        .arg(&len)
        .arg(&groups.team)
        .arg(&kind);
    let mut values = None;
    if with_values {
        let mut buffer = CudaBuffer::<E>::uninit(&device.gpu, groups.count)?;
        let indices = slice_mut(device, &mut indices, op)?;
        launch.arg(slice_mut(device, &mut buffer, op)?).arg(indices);
        // SAFETY: reduce_extremum_with_indices(const T *x, Layout outer, Layout inner,
        // u64 count, u64 len, unsigned team, int kind, T *values, u64 *indices) with T
        // = E::C_TYPE, the C name of E::Stored, the slices' element type; the layouts
        // are `KernelLayout`s (struct Layout), count and len u64, team u32, kind i32,
        // indices u64 (usize's stored form). Every group's element lies inside `x`
        // (the input view was checked, and the groups are its elements); the kernel
        // writes elements 0 to count - 1 of `values` and `indices`, each holding
        // `count`.
        unsafe { launch.launch(groups.launch_config()) }.map_err(|e| launch_error(device, name, &e))?;
        drop(launch);
        values = Some(buffer);
    } else {
        launch.arg(slice_mut(device, &mut indices, op)?);
        // SAFETY: reduce_arg_extremum(const T *x, Layout outer, Layout inner, u64
        // count, u64 len, unsigned team, int kind, u64 *indices): the types as above;
        // the kernel reads the input's elements (checked) and writes elements 0 to
        // count - 1 of `indices`, which holds `count`.
        unsafe { launch.launch(groups.launch_config()) }.map_err(|e| launch_error(device, name, &e))?;
    }
    Ok((values, indices))
}

impl<E: Dtype + CudaElement> SumKernel<E> for Cuda {
    fn forward(&self, input: View<'_, CudaBuffer<E>>, axes: &[usize]) -> Result<CudaBuffer<E>, Error> {
        let op = "sum";
        check_reduction(op, input, axes)?;
        let groups = groups(&input.layout, axes);
        if groups.count == 0 || groups.len == 0 {
            return self.try_alloc_zeros(groups.count);
        }
        let x = slice(self, input.buffer, op)?;
        let mut out = CudaBuffer::<E>::uninit(&self.gpu, groups.count)?;
        let (count, len) = (groups.count as u64, groups.len as u64);
        let kernel = function::<E>(self, "reduce_sum")?;
        let mut launch = self.gpu.stream.launch_builder(&kernel);
        launch
            .arg(x)
            .arg(&groups.outer[0])
            .arg(&groups.inner[0])
            .arg(&count)
            .arg(&len)
            .arg(&groups.team)
            .arg(slice_mut(self, &mut out, op)?);
        // SAFETY: reduce_sum(const T *x, Layout outer, Layout inner, u64 count, u64 len,
        // unsigned team, T *out) with T = E::C_TYPE, the C name of E::Stored, the slices'
        // element type; the layouts are `KernelLayout`s, count and len u64, team u32.
        // Every group's element lies inside `x` (the input view was checked; the groups
        // are its elements); the kernel writes elements 0 to count - 1 of `out`, which
        // holds `count`.
        unsafe { launch.launch(groups.launch_config()) }.map_err(|e| launch_error(self, "reduce_sum", &e))?;
        Ok(out)
    }

    fn backward(
        &self,
        grad_input: ViewMut<'_, CudaBuffer<E>>,
        axes: &[usize],
        grad_output: &CudaBuffer<E>,
    ) -> Result<(), Error> {
        let op = "sum";
        check_reduction_backward(op, ("grad_input", grad_input.as_view()), axes, grad_output)?;
        let ViewMut { buffer, layout } = grad_input;
        let numel = layout.num_elements();
        if numel == 0 {
            return Ok(());
        }
        let [input_layout, to_out] = backward_layouts(&layout, axes);
        let (items, atomic) = (numel as u64, atomic_flag(&layout));
        let grad_output = slice(self, grad_output, op)?;
        let kernel = function::<E>(self, "reduce_sum_backward")?;
        let mut launch = self.gpu.stream.launch_builder(&kernel);
        launch
            .arg(slice_mut(self, buffer, op)?)
            .arg(&input_layout)
            .arg(&to_out)
            .arg(&items)
            .arg(grad_output)
            .arg(&atomic);
        // SAFETY: reduce_sum_backward(T *grad_input, Layout in, Layout to_out, u64 numel,
        // const T *grad_output, unsigned atomic), T = E::C_TYPE as above, `atomic` u32.
        // `in` is grad_input's checked layout, so every offset it gives lies inside
        // grad_input; `to_out` maps each position to its group, below `count`, and
        // grad_output holds at least `count` (checked). Repeated elements are added
        // atomically.
        unsafe { launch.launch(grid_for(items)) }.map_err(|e| launch_error(self, "reduce_sum_backward", &e))?;
        Ok(())
    }
}

impl<E: Dtype + CudaElement> ExtremumKernel<E> for Cuda {
    fn forward(&self, kind: Extremum, input: View<'_, CudaBuffer<E>>, axes: &[usize]) -> Result<CudaBuffer<E>, Error> {
        let op = kind.name();
        check_reduction(op, input, axes)?;
        let groups = groups(&input.layout, axes);
        if groups.count == 0 || groups.len == 0 {
            return self.try_alloc_filled(groups.count, extremum_start::<E>(kind));
        }
        let x = slice(self, input.buffer, op)?;
        let mut out = CudaBuffer::<E>::uninit(&self.gpu, groups.count)?;
        let (count, len, kind) = (groups.count as u64, groups.len as u64, kind_code(kind));
        let kernel = function::<E>(self, "reduce_extremum")?;
        let mut launch = self.gpu.stream.launch_builder(&kernel);
        launch
            .arg(x)
            .arg(&groups.outer[0])
            .arg(&groups.inner[0])
            .arg(&count)
            .arg(&len)
            .arg(&groups.team)
            .arg(&kind)
            .arg(slice_mut(self, &mut out, op)?);
        // SAFETY: reduce_extremum(const T *x, Layout outer, Layout inner, u64 count, u64
        // len, unsigned team, int kind, T *out), T = E::C_TYPE as in `sum`, kind i32. It
        // reads the input's elements (checked) and writes elements 0 to count - 1 of
        // `out`, which holds `count`.
        unsafe { launch.launch(groups.launch_config()) }.map_err(|e| launch_error(self, "reduce_extremum", &e))?;
        Ok(out)
    }

    fn backward(
        &self,
        input: View<'_, CudaBuffer<E>>,
        axes: &[usize],
        output: &CudaBuffer<E>,
        grad_input: &mut CudaBuffer<E>,
        grad_output: &CudaBuffer<E>,
    ) -> Result<(), Error> {
        let op = "max / min";
        let groups = check_reduction_backward(op, ("input", input), axes, grad_output)?;
        check_reach(op, "grad_input", &input.layout, grad_input.len())?;
        check_len(op, "output", output.len(), groups.count)?;
        let numel = input.layout.num_elements();
        if numel == 0 {
            return Ok(());
        }
        let (x, output, grad_output) = (
            slice(self, input.buffer, op)?,
            slice(self, output, op)?,
            slice(self, grad_output, op)?,
        );
        let grad_input = slice_mut(self, grad_input, op)?;
        let mut share = CudaBuffer::<E>::uninit(&self.gpu, groups.count)?;
        let (count, len) = (groups.count as u64, groups.len as u64);
        let kernel = function::<E>(self, "reduce_extremum_share")?;
        let mut launch = self.gpu.stream.launch_builder(&kernel);
        launch
            .arg(x)
            .arg(&groups.outer[0])
            .arg(&groups.inner[0])
            .arg(&count)
            .arg(&len)
            .arg(&groups.team)
            .arg(output)
            .arg(grad_output)
            .arg(slice_mut(self, &mut share, op)?);
        // SAFETY: reduce_extremum_share(const T *x, Layout outer, Layout inner, u64
        // count, u64 len, unsigned team, const T *output, const T *grad_output, T
        // *share), T = E::C_TYPE as in `sum`. It reads the input's elements (checked),
        // elements 0 to count - 1 of `output` and `grad_output` (each checked to hold
        // `count`) and writes as many of `share`, which holds `count`.
        unsafe { launch.launch(groups.launch_config()) }
            .map_err(|e| launch_error(self, "reduce_extremum_share", &e))?;
        drop(launch);

        let [input_layout, to_out] = backward_layouts(&input.layout, axes);
        let (items, atomic) = (numel as u64, atomic_flag(&input.layout));
        let share = slice(self, &share, op)?;
        let kernel = function::<E>(self, "reduce_extremum_backward")?;
        let mut launch = self.gpu.stream.launch_builder(&kernel);
        launch
            .arg(x)
            .arg(grad_input)
            .arg(&input_layout)
            .arg(&to_out)
            .arg(&items)
            .arg(output)
            .arg(share)
            .arg(&atomic);
        // SAFETY: reduce_extremum_backward(const T *x, T *grad_input, Layout in, Layout
        // to_out, u64 numel, const T *output, const T *share, unsigned atomic), T as
        // above. `in` is the input's layout, checked against both `x` and grad_input, so
        // its offsets lie inside both; `to_out` gives group indices below `count`, which
        // `output` and `share` hold. Repeated elements are added atomically.
        unsafe { launch.launch(grid_for(items)) }.map_err(|e| launch_error(self, "reduce_extremum_backward", &e))?;
        Ok(())
    }
}

impl<E: Dtype + CudaElement> ArgExtremumKernel<E> for Cuda {
    fn forward(
        &self,
        kind: Extremum,
        input: View<'_, CudaBuffer<E>>,
        axes: &[usize],
    ) -> Result<CudaBuffer<usize>, Error> {
        let op = match kind {
            Extremum::Max => "argmax",
            Extremum::Min => "argmin",
        };
        check_reduction(op, input, axes)?;
        let (_, indices) = arg_extremum(self, op, kind, input, axes, false)?;
        Ok(indices)
    }
}

impl<E: Dtype + CudaElement> ExtremumWithIndicesKernel<E> for Cuda {
    fn forward(
        &self,
        kind: Extremum,
        input: View<'_, CudaBuffer<E>>,
        axis: usize,
    ) -> Result<(CudaBuffer<E>, CudaBuffer<usize>), Error> {
        let op = match kind {
            Extremum::Max => "max_with_indices",
            Extremum::Min => "min_with_indices",
        };
        check_axis(op, &input.layout, axis)?;
        input.check(op, "input")?;
        let (values, indices) = arg_extremum(self, op, kind, input, &[axis], true)?;
        Ok((values.unwrap_or_default(), indices))
    }

    /// A scatter-add of the output's gradient at the indices (as on the CPU), so the
    /// index check and its error are `ScatterAddKernel`'s: the indices are checked on
    /// the GPU, and the host waits for that check.
    fn backward(
        &self,
        grad_input: ViewMut<'_, CudaBuffer<E>>,
        axis: usize,
        indices: &CudaBuffer<usize>,
        grad_output: &CudaBuffer<E>,
    ) -> Result<(), Error> {
        let op = "max_with_indices / min_with_indices";
        check_with_indices_backward(op, &grad_input, axis, indices, grad_output)?;
        let layout = grad_input.layout;
        // The output, contiguous, seen with a size-1 `axis` put back: the indices and the
        // output gradient in the form a scatter along `axis` takes.
        let mut dims = layout.dims().to_vec();
        dims[axis] = 1;
        let out_layout = Layout::from_parts(&dims, &contiguous_strides(&dims));
        ScatterAddKernel::scatter_add(
            self,
            op,
            grad_input,
            axis,
            View::new(indices, out_layout),
            View::new(grad_output, out_layout),
        )
    }
}

impl<E: Dtype + CudaElement> VarianceKernel<E> for Cuda {
    fn forward(
        &self,
        spread: Spread,
        correction: E,
        input: View<'_, CudaBuffer<E>>,
        axes: &[usize],
    ) -> Result<CudaBuffer<E>, Error> {
        let op = match spread {
            Spread::Variance => "var",
            Spread::StdDev => "std",
        };
        check_reduction(op, input, axes)?;
        let groups = groups(&input.layout, axes);
        let std_dev = i32::from(spread == Spread::StdDev);
        if groups.count == 0 || groups.len == 0 {
            // The CPU's value for an empty group: no squares over a divisor of
            // max(−correction, 0), NaN unless the correction is negative.
            let variance = E::ZERO / divisor(0, correction);
            let value = if std_dev == 1 { variance.sqrt() } else { variance };
            return self.try_alloc_filled(groups.count, value);
        }
        let x = slice(self, input.buffer, op)?;
        let mut out = CudaBuffer::<E>::uninit(&self.gpu, groups.count)?;
        let (count, len) = (groups.count as u64, groups.len as u64);
        let n = E::from_f64(groups.len as f64).to_stored();
        let divisor = divisor(groups.len, correction).to_stored();
        let kernel = function::<E>(self, "reduce_variance")?;
        let mut launch = self.gpu.stream.launch_builder(&kernel);
        launch
            .arg(x)
            .arg(&groups.outer[0])
            .arg(&groups.inner[0])
            .arg(&count)
            .arg(&len)
            .arg(&groups.team)
            .arg(&n)
            .arg(&divisor)
            .arg(&std_dev)
            .arg(slice_mut(self, &mut out, op)?);
        // SAFETY: reduce_variance(const T *x, Layout outer, Layout inner, u64 count, u64
        // len, unsigned team, T n, T divisor, int std_dev, T *out), T = E::C_TYPE, the C
        // name of E::Stored, which `n` and `divisor` are too; std_dev i32. It reads the
        // input's elements (checked) and writes elements 0 to count - 1 of `out`, which
        // holds `count`.
        unsafe { launch.launch(groups.launch_config()) }.map_err(|e| launch_error(self, "reduce_variance", &e))?;
        Ok(out)
    }

    fn backward(
        &self,
        correction: E,
        input: View<'_, CudaBuffer<E>>,
        axes: &[usize],
        std: Option<&CudaBuffer<E>>,
        grad_input: &mut CudaBuffer<E>,
        grad_output: &CudaBuffer<E>,
    ) -> Result<(), Error> {
        let op = "var / std";
        let groups = check_reduction_backward(op, ("input", input), axes, grad_output)?;
        check_reach(op, "grad_input", &input.layout, grad_input.len())?;
        if let Some(std) = std {
            check_len(op, "std", std.len(), groups.count)?;
        }
        let numel = input.layout.num_elements();
        if numel == 0 {
            return Ok(());
        }
        let x = slice(self, input.buffer, op)?;
        let grad_output = slice(self, grad_output, op)?;
        // Without a standard deviation the kernel does not read it: grad_output stands in.
        let (std, has_std) = match std {
            Some(std) => (slice(self, std, op)?, 1i32),
            None => (grad_output, 0),
        };
        let grad_input = slice_mut(self, grad_input, op)?;
        let mut means = CudaBuffer::<E>::uninit(&self.gpu, groups.count)?;
        let (count, len) = (groups.count as u64, groups.len as u64);
        let n = E::from_f64(groups.len as f64).to_stored();
        let kernel = function::<E>(self, "reduce_mean")?;
        let mut launch = self.gpu.stream.launch_builder(&kernel);
        launch
            .arg(x)
            .arg(&groups.outer[0])
            .arg(&groups.inner[0])
            .arg(&count)
            .arg(&len)
            .arg(&groups.team)
            .arg(&n)
            .arg(slice_mut(self, &mut means, op)?);
        // SAFETY: reduce_mean(const T *x, Layout outer, Layout inner, u64 count, u64 len,
        // unsigned team, T n, T *out), T = E::C_TYPE, the C name of E::Stored, which `n`
        // is. It reads the input's elements (checked) and writes elements 0 to count - 1
        // of `means`, which holds `count`.
        unsafe { launch.launch(groups.launch_config()) }.map_err(|e| launch_error(self, "reduce_mean", &e))?;
        drop(launch);

        let two = E::ONE + E::ONE;
        let scale = (two / divisor(groups.len, correction)).to_stored();
        let [input_layout, to_out] = backward_layouts(&input.layout, axes);
        let (items, atomic) = (numel as u64, atomic_flag(&input.layout));
        let means = slice(self, &means, op)?;
        let kernel = function::<E>(self, "reduce_variance_backward")?;
        let mut launch = self.gpu.stream.launch_builder(&kernel);
        launch
            .arg(x)
            .arg(grad_input)
            .arg(&input_layout)
            .arg(&to_out)
            .arg(&items)
            .arg(means)
            .arg(grad_output)
            .arg(std)
            .arg(&has_std)
            .arg(&scale)
            .arg(&atomic);
        // SAFETY: reduce_variance_backward(const T *x, T *grad_input, Layout in, Layout
        // to_out, u64 numel, const T *means, const T *grad_output, const T *std_dev, int
        // has_std, T scale, unsigned atomic), T = E::C_TYPE as above. `in` is the input's
        // layout, checked against `x` and grad_input; `to_out` gives group indices below
        // `count`, which means, grad_output and (when has_std) std hold. Repeated
        // elements are added atomically.
        unsafe { launch.launch(grid_for(items)) }.map_err(|e| launch_error(self, "reduce_variance_backward", &e))?;
        Ok(())
    }
}

impl<E: Dtype + CudaElement> LogSumExpKernel<E> for Cuda {
    fn forward(&self, input: View<'_, CudaBuffer<E>>, axes: &[usize]) -> Result<CudaBuffer<E>, Error> {
        let op = "logsumexp";
        check_reduction(op, input, axes)?;
        let groups = groups(&input.layout, axes);
        if groups.count == 0 || groups.len == 0 {
            // ln 0 after a shift of 0, as on the CPU.
            return self.try_alloc_filled(groups.count, E::from_f64(f64::NEG_INFINITY));
        }
        let x = slice(self, input.buffer, op)?;
        let mut out = CudaBuffer::<E>::uninit(&self.gpu, groups.count)?;
        let (count, len) = (groups.count as u64, groups.len as u64);
        let kernel = function::<E>(self, "reduce_logsumexp")?;
        let mut launch = self.gpu.stream.launch_builder(&kernel);
        launch
            .arg(x)
            .arg(&groups.outer[0])
            .arg(&groups.inner[0])
            .arg(&count)
            .arg(&len)
            .arg(&groups.team)
            .arg(slice_mut(self, &mut out, op)?);
        // SAFETY: reduce_logsumexp(const T *x, Layout outer, Layout inner, u64 count, u64
        // len, unsigned team, T *out), T = E::C_TYPE as in `sum`. It reads the input's
        // elements (checked) and writes elements 0 to count - 1 of `out`, which holds
        // `count`.
        unsafe { launch.launch(groups.launch_config()) }.map_err(|e| launch_error(self, "reduce_logsumexp", &e))?;
        Ok(out)
    }

    fn backward(
        &self,
        input: View<'_, CudaBuffer<E>>,
        axes: &[usize],
        output: &CudaBuffer<E>,
        grad_input: &mut CudaBuffer<E>,
        grad_output: &CudaBuffer<E>,
    ) -> Result<(), Error> {
        let op = "logsumexp";
        let groups = check_reduction_backward(op, ("input", input), axes, grad_output)?;
        check_reach(op, "grad_input", &input.layout, grad_input.len())?;
        check_len(op, "output", output.len(), groups.count)?;
        let numel = input.layout.num_elements();
        if numel == 0 {
            return Ok(());
        }
        let (x, output, grad_output) = (
            slice(self, input.buffer, op)?,
            slice(self, output, op)?,
            slice(self, grad_output, op)?,
        );
        let [input_layout, to_out] = backward_layouts(&input.layout, axes);
        let (items, atomic) = (numel as u64, atomic_flag(&input.layout));
        let kernel = function::<E>(self, "reduce_logsumexp_backward")?;
        let mut launch = self.gpu.stream.launch_builder(&kernel);
        launch
            .arg(x)
            .arg(slice_mut(self, grad_input, op)?)
            .arg(&input_layout)
            .arg(&to_out)
            .arg(&items)
            .arg(output)
            .arg(grad_output)
            .arg(&atomic);
        // SAFETY: reduce_logsumexp_backward(const T *x, T *grad_input, Layout in, Layout
        // to_out, u64 numel, const T *output, const T *grad_output, unsigned atomic), T =
        // E::C_TYPE as in `sum`. `in` is the input's layout, checked against `x` and
        // grad_input; `to_out` gives group indices below `count`, which output and
        // grad_output hold (checked). Repeated elements are added atomically.
        unsafe { launch.launch(grid_for(items)) }.map_err(|e| launch_error(self, "reduce_logsumexp_backward", &e))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `comes_first` of team.cuh.
    fn comes_first(kind: Extremum, a: f64, ja: u64, b: f64, jb: u64) -> bool {
        let (a_nan, b_nan) = (a.is_nan(), b.is_nan());
        if a_nan || b_nan {
            return if a_nan == b_nan { ja < jb } else { a_nan };
        }
        if a == b {
            return ja < jb;
        }
        match kind {
            Extremum::Max => a > b,
            Extremum::Min => a < b,
        }
    }

    /// What a team of `team` threads (1, 32 or 256) keeps for `values`, as the kernels
    /// run it: each lane scans its share in order, then a butterfly in each warp, then
    /// (for a block) each warp's result in warp order. Returns every lane's result.
    fn team_first(kind: Extremum, values: &[f64], team: usize) -> Vec<(f64, u64)> {
        let start = extremum_start::<f64>(kind);
        let mut lanes = vec![(start, u64::MAX); team];
        for (lane, best) in lanes.iter_mut().enumerate() {
            for j in (lane..values.len()).step_by(team) {
                if comes_first(kind, values[j], j as u64, best.0, best.1) {
                    *best = (values[j], j as u64);
                }
            }
        }
        if team == 1 {
            return lanes;
        }
        for warp in lanes.chunks_mut(32) {
            for delta in [16, 8, 4, 2, 1] {
                let before = warp.to_vec();
                for (lane, best) in warp.iter_mut().enumerate() {
                    let other = before[lane ^ delta];
                    if comes_first(kind, other.0, other.1, best.0, best.1) {
                        *best = other;
                    }
                }
            }
        }
        if team == 32 {
            return lanes;
        }
        let mut block = lanes[0];
        for w in 1..team / 32 {
            let other = lanes[w * 32];
            if comes_first(kind, other.0, other.1, block.0, block.1) {
                block = other;
            }
        }
        vec![block; team]
    }

    /// The argmax order of the kernels keeps, whatever the team, exactly what the CPU's
    /// scan in order with `Extremum::replaces` keeps: the first NaN, else the first of
    /// the ties for the extremum (also when every element is -inf).
    #[test]
    fn every_team_keeps_what_a_scan_in_order_keeps() {
        let pool = [f64::NAN, f64::NEG_INFINITY, -1.0, 0.0, 1.0, 2.0, f64::INFINITY];
        let mut state = 12345u64;
        for case in 0..3000 {
            let len = 1 + case % 700;
            let values: Vec<f64> = (0..len)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    // NaN rarely, so that many groups have none.
                    let k = (state % 61) as usize;
                    pool[if k == 0 { 0 } else { 1 + k % (pool.len() - 1) }]
                })
                .collect();
            for kind in [Extremum::Max, Extremum::Min] {
                let mut best = (0usize, extremum_start::<f64>(kind));
                for (j, &x) in values.iter().enumerate() {
                    if kind.replaces(x, best.1) {
                        best = (j, x);
                    }
                }
                for team in [1, 32, 256] {
                    let results = team_first(kind, &values, team);
                    let (value, index) = results[0];
                    assert_eq!(index as usize, best.0, "{kind:?}, team {team}, {values:?}");
                    assert!(value.to_bits() == best.1.to_bits() || value == best.1);
                    if team > 1 {
                        assert!(results.iter().all(|r| r.1 == index), "every lane agrees");
                    }
                }
            }
        }
    }
}
