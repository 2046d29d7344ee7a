//! Max, average and adaptive average pooling ([`Pool2dKernel`]).
//!
//! One thread per output pixel works out its window along each axis (the CPU's windows:
//! the same taps in the same order, the same divisors), then takes the maximum by
//! PyTorch's rule (the first of tied maxima, the last NaN) or the divided sum. The
//! backward passes scatter from each output pixel into its window's input pixels,
//! through the gradient's layout: with `atomicAdd` where windows overlap (a stride
//! below the window's span, adaptive windows of an input that the output does not
//! divide) or the layout repeats elements, with plain additions otherwise. The first
//! gradient of a max pooling is the trait's default: zeros, then the backward pass.

use crate::buffer::CudaBuffer;
use crate::compile::KernelSource;
use crate::device::{Cuda, grid_for};
use crate::element::CudaElement;
use crate::layout::KernelLayout;
use cudarc::driver::{DeviceRepr, PushKernelArg};
use ferrograd_device::ops::pool::{AdaptivePool2dSpec, Pool2dKernel, Pool2dSpec, check_grad_output, check_operand};
use ferrograd_device::{Dtype, Error, Layout, View, ViewMut};

/// `pool.cu`.
pub(crate) const POOL: KernelSource = KernelSource {
    name: "pool",
    source: concat!(include_str!("../layout.cuh"), include_str!("pool.cu")),
    functions: &["pool_forward", "pool_max_backward", "pool_average_backward"],
    element_types: &["float", "double"],
};

const ADAPTIVE: &str = "adaptive_avg_pool2d";

/// What a pooling kernel computes in each window: `mode` of `struct PoolGeometry`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
enum Mode {
    Max = 0,
    Average = 1,
    Adaptive = 2,
}

/// A pooling's sizes as the kernels take them: `struct PoolGeometry` of pool.cu, field
/// for field.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
struct PoolGeometry {
    channels: u64,
    in_height: u64,
    in_width: u64,
    out_height: u64,
    out_width: u64,
    kernel_height: u64,
    kernel_width: u64,
    stride_height: u64,
    stride_width: u64,
    pad_height: u64,
    pad_width: u64,
    dilation_height: u64,
    dilation_width: u64,
    mode: u32,
    count_include_pad: u32,
}

// SAFETY: `PoolGeometry` is `repr(C)`, `Copy`, and holds only integers with no padding
// (13 u64s, then 2 u32s filling the last 8 bytes), matching `struct PoolGeometry` of
// pool.cu field for field.
unsafe impl DeviceRepr for PoolGeometry {}

impl PoolGeometry {
    fn pool(spec: &Pool2dSpec) -> Self {
        let p = &spec.params;
        let u = |x: usize| x as u64;
        Self {
            channels: u(spec.channels),
            in_height: u(spec.in_height),
            in_width: u(spec.in_width),
            out_height: u(spec.out_height),
            out_width: u(spec.out_width),
            kernel_height: u(p.kernel[0]),
            kernel_width: u(p.kernel[1]),
            stride_height: u(p.stride[0]),
            stride_width: u(p.stride[1]),
            pad_height: u(p.padding[0]),
            pad_width: u(p.padding[1]),
            dilation_height: u(p.dilation[0]),
            dilation_width: u(p.dilation[1]),
            mode: if spec.op.is_max() { Mode::Max } else { Mode::Average } as u32,
            count_include_pad: u32::from(p.count_include_pad),
        }
    }

    fn adaptive(spec: &AdaptivePool2dSpec) -> Self {
        let u = |x: usize| x as u64;
        Self {
            channels: u(spec.channels),
            in_height: u(spec.in_height),
            in_width: u(spec.in_width),
            out_height: u(spec.out_height),
            out_width: u(spec.out_width),
            kernel_height: 1,
            kernel_width: 1,
            stride_height: 1,
            stride_width: 1,
            pad_height: 0,
            pad_width: 0,
            dilation_height: 1,
            dilation_width: 1,
            mode: Mode::Adaptive as u32,
            count_include_pad: 0,
        }
    }

    /// Whether two output pixels' windows may share an input pixel.
    fn windows_overlap(&self) -> bool {
        if self.mode == Mode::Adaptive as u32 {
            // Window i is floor(i·in/out) .. ceil((i+1)·in/out): disjoint exactly when
            // out divides in.
            return !self.in_height.is_multiple_of(self.out_height.max(1))
                || !self.in_width.is_multiple_of(self.out_width.max(1));
        }
        let span = |kernel: u64, dilation: u64| (kernel - 1) * dilation + 1;
        self.stride_height < span(self.kernel_height, self.dilation_height)
            || self.stride_width < span(self.kernel_width, self.dilation_width)
    }

    /// The output's elements.
    fn output_len(&self, batch: usize) -> u64 {
        batch as u64 * self.channels * self.out_height * self.out_width
    }
}

/// Whether a backward pass's writes into `grad` through `layout` must be atomic.
fn atomic(geometry: &PoolGeometry, layout: &Layout) -> i32 {
    i32::from(geometry.windows_overlap() || !layout.has_unique_offsets())
}

impl Cuda {
    /// The pooling of `input` (checked) into a new contiguous buffer.
    fn pool_forward<E: Dtype + CudaElement>(
        &self,
        op: &'static str,
        geometry: PoolGeometry,
        batch: usize,
        input: View<'_, CudaBuffer<E>>,
    ) -> Result<CudaBuffer<E>, Error> {
        self.check_buffer(input.buffer, op, "input")?;
        let len = geometry.output_len(batch);
        let mut out = CudaBuffer::uninit(&self.gpu, len as usize)?;
        let Some(target) = out.allocation_mut() else {
            return Ok(out);
        };
        let function = self.gpu.function(&POOL, "pool_forward", E::C_TYPE)?;
        let layout = KernelLayout::from(&input.layout);
        // An input of no pixels (a height or width of 0, which a padded window may
        // still cover) has no memory: no window has a tap then, and nothing is read.
        let null = 0u64;
        let mut launch = self.gpu.stream.launch_builder(&function);
        match input.buffer.allocation() {
            Some(source) => launch.arg(&source.slice),
            None => launch.arg(&null),
        };
        launch.arg(&layout).arg(&geometry).arg(&mut target.slice).arg(&len);
        // SAFETY: `pool_forward(const T *input, Layout layout, PoolGeometry g, T *out, u64
        // len)` was compiled with T = E::C_TYPE, the C name of E::Stored, the slices'
        // element (or a null pointer, 64 bits, never read: see above); KernelLayout and
        // PoolGeometry are the C structs. It writes out[0..len] (the new buffer's
        // length) and reads the input at window pixels, all inside the input's dims,
        // which check_operand checked lie inside its buffer.
        unsafe { launch.launch(grid_for(len)) }.map_err(|e| self.gpu.error("launching pool_forward", &e))?;
        Ok(out)
    }

    /// Adds the gradient of a pooling (its output's, checked) into `grad_input`
    /// (checked): to the window's maximum of `input` where given, else spread over the
    /// window.
    fn pool_backward<E: Dtype + CudaElement>(
        &self,
        op: &'static str,
        geometry: PoolGeometry,
        input: Option<View<'_, CudaBuffer<E>>>,
        grad_output: &CudaBuffer<E>,
        grad_input: ViewMut<'_, CudaBuffer<E>>,
    ) -> Result<(), Error> {
        if let Some(input) = &input {
            self.check_buffer(input.buffer, op, "input")?;
        }
        self.check_buffer(grad_output, op, "grad_output")?;
        self.check_buffer(grad_input.buffer, op, "grad_input")?;
        let len = grad_output.len() as u64;
        let grad_layout = grad_input.layout;
        let (Some(grads), Some(target)) = (grad_output.allocation(), grad_input.buffer.allocation_mut()) else {
            // No output pixel, or no input pixel for a gradient.
            return Ok(());
        };
        let kernel_grad_layout = KernelLayout::from(&grad_layout);
        let atomic = atomic(&geometry, &grad_layout);
        match input {
            Some(input) => {
                let source = input.buffer.allocation().ok_or_else(|| Error::InvalidArgument {
                    op,
                    message: "the input of a pooling with an output is empty".into(),
                })?;
                let function = self.gpu.function(&POOL, "pool_max_backward", E::C_TYPE)?;
                let layout = KernelLayout::from(&input.layout);
                let mut launch = self.gpu.stream.launch_builder(&function);
                launch
                    .arg(&source.slice)
                    .arg(&layout)
                    .arg(&geometry)
                    .arg(&grads.slice)
                    .arg(&mut target.slice)
                    .arg(&kernel_grad_layout)
                    .arg(&len)
                    .arg(&atomic);
                // SAFETY: `pool_max_backward(const T *input, Layout layout, PoolGeometry
                // g, const T *grad_output, T *grad, Layout grad_layout, u64 len, int
                // atomic)` was compiled with T = E::C_TYPE, the C name of E::Stored, the
                // slices' element; the structs are the C ones. It reads grad_output[0..len]
                // (its checked length) and the input's window pixels, and adds to the
                // gradient at one pixel of each window; input and gradient have the
                // input's dims, which check_operand checked lie inside their buffers.
                // Atomically where two threads may add to one element.
                unsafe { launch.launch(grid_for(len)) }
                    .map_err(|e| self.gpu.error("launching pool_max_backward", &e))?;
            }
            None => {
                let function = self.gpu.function(&POOL, "pool_average_backward", E::C_TYPE)?;
                let mut launch = self.gpu.stream.launch_builder(&function);
                launch
                    .arg(&geometry)
                    .arg(&grads.slice)
                    .arg(&mut target.slice)
                    .arg(&kernel_grad_layout)
                    .arg(&len)
                    .arg(&atomic);
                // SAFETY: `pool_average_backward(PoolGeometry g, const T *grad_output, T
                // *grad, Layout grad_layout, u64 len, int atomic)` was compiled with T =
                // E::C_TYPE, the C name of E::Stored, the slices' element; the structs
                // are the C ones. It reads grad_output[0..len] (its checked length) and
                // adds to the gradient at window pixels, inside the input's dims, which
                // check_operand checked lie inside its buffer. Atomically where two
                // threads may add to one element.
                unsafe { launch.launch(grid_for(len)) }
                    .map_err(|e| self.gpu.error("launching pool_average_backward", &e))?;
            }
        }
        Ok(())
    }
}

/// One thread per output pixel, with the CPU's windows and its tie and NaN rules;
/// gradients scattered atomically where windows overlap or the layout repeats elements.
impl<E: Dtype + CudaElement> Pool2dKernel<E> for Cuda {
    fn max_pool2d_forward(&self, spec: &Pool2dSpec, input: View<'_, CudaBuffer<E>>) -> Result<CudaBuffer<E>, Error> {
        spec.check()?;
        check_operand(spec.op.name(), "input", &input, &spec.input_dims())?;
        self.pool_forward(spec.op.name(), PoolGeometry::pool(spec), spec.batch, input)
    }

    fn max_pool2d_backward(
        &self,
        spec: &Pool2dSpec,
        input: View<'_, CudaBuffer<E>>,
        grad_output: &CudaBuffer<E>,
        grad_input: ViewMut<'_, CudaBuffer<E>>,
    ) -> Result<(), Error> {
        let op = spec.op.name();
        spec.check()?;
        check_operand(op, "input", &input, &spec.input_dims())?;
        check_operand(op, "input's gradient", &grad_input.as_view(), &spec.input_dims())?;
        check_grad_output(op, &spec.output_dims(), grad_output.len())?;
        self.pool_backward(op, PoolGeometry::pool(spec), Some(input), grad_output, grad_input)
    }

    fn avg_pool2d_forward(&self, spec: &Pool2dSpec, input: View<'_, CudaBuffer<E>>) -> Result<CudaBuffer<E>, Error> {
        spec.check()?;
        check_operand(spec.op.name(), "input", &input, &spec.input_dims())?;
        self.pool_forward(spec.op.name(), PoolGeometry::pool(spec), spec.batch, input)
    }

    fn avg_pool2d_backward(
        &self,
        spec: &Pool2dSpec,
        grad_output: &CudaBuffer<E>,
        grad_input: ViewMut<'_, CudaBuffer<E>>,
    ) -> Result<(), Error> {
        let op = spec.op.name();
        spec.check()?;
        check_operand(op, "input's gradient", &grad_input.as_view(), &spec.input_dims())?;
        check_grad_output(op, &spec.output_dims(), grad_output.len())?;
        self.pool_backward(op, PoolGeometry::pool(spec), None, grad_output, grad_input)
    }

    fn adaptive_avg_pool2d_forward(
        &self,
        spec: &AdaptivePool2dSpec,
        input: View<'_, CudaBuffer<E>>,
    ) -> Result<CudaBuffer<E>, Error> {
        spec.check()?;
        check_operand(ADAPTIVE, "input", &input, &spec.input_dims())?;
        self.pool_forward(ADAPTIVE, PoolGeometry::adaptive(spec), spec.batch, input)
    }

    fn adaptive_avg_pool2d_backward(
        &self,
        spec: &AdaptivePool2dSpec,
        grad_output: &CudaBuffer<E>,
        grad_input: ViewMut<'_, CudaBuffer<E>>,
    ) -> Result<(), Error> {
        spec.check()?;
        check_operand(ADAPTIVE, "input's gradient", &grad_input.as_view(), &spec.input_dims())?;
        check_grad_output(ADAPTIVE, &spec.output_dims(), grad_output.len())?;
        self.pool_backward(ADAPTIVE, PoolGeometry::adaptive(spec), None, grad_output, grad_input)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::device::test_gpu;
    use crate::emulation::{kernel, library};
    use crate::ops::conv::tests::{KINDS, layout, values};
    use ferrograd_cpu::Cpu;
    use ferrograd_device::Storage;
    use ferrograd_device::ops::pool::{Pool2dParams, PoolOp};

    fn params(kernel: [usize; 2], stride: [usize; 2], padding: [usize; 2], dilation: [usize; 2]) -> Pool2dParams {
        Pool2dParams {
            kernel,
            stride,
            padding,
            dilation,
            ceil_mode: false,
            count_include_pad: true,
        }
    }

    /// Poolings of every kind: overlapping windows, padding, dilation, ceil mode (a
    /// window overhanging the input), 1-d, and an input of no rows that a padded window
    /// still covers.
    fn specs() -> Vec<Pool2dSpec> {
        let p = params;
        let mut specs = Vec::new();
        for op in [PoolOp::MaxPool2d, PoolOp::AvgPool2d] {
            let max = op.is_max();
            let dilation = if max { [2, 1] } else { [1, 1] };
            for (input, params) in [
                ([2, 3, 6, 7], p([2, 2], [2, 2], [0, 0], [1, 1])),
                ([2, 3, 7, 6], p([3, 3], [2, 2], [1, 1], [1, 1])),
                ([1, 2, 9, 8], p([3, 2], [1, 2], [1, 1], dilation)),
                (
                    [2, 2, 6, 5],
                    Pool2dParams {
                        ceil_mode: true,
                        ..p([3, 2], [2, 2], [0, 1], [1, 1])
                    },
                ),
                (
                    [2, 2, 7, 7],
                    Pool2dParams {
                        ceil_mode: true,
                        count_include_pad: false,
                        ..p([3, 3], [3, 2], [1, 1], [1, 1])
                    },
                ),
                ([1, 2, 0, 5], p([2, 2], [1, 1], [1, 1], [1, 1])),
            ] {
                specs.push(Pool2dSpec::new(op, input, params).unwrap());
            }
        }
        for op in [PoolOp::MaxPool1d, PoolOp::AvgPool1d] {
            specs.push(Pool2dSpec::new(op, [2, 3, 1, 9], p([1, 3], [1, 2], [0, 1], [1, 1])).unwrap());
        }
        specs
    }

    fn adaptive_specs() -> Vec<AdaptivePool2dSpec> {
        [
            ([2, 3, 7, 5], [3, 5]),
            ([1, 2, 4, 6], [2, 3]),
            ([2, 1, 3, 2], [5, 4]),
            ([1, 2, 5, 5], [1, 1]),
        ]
        .into_iter()
        .map(|(input, output)| AdaptivePool2dSpec::new(input, output).unwrap())
        .collect()
    }

    /// Input values with ties and NaNs.
    fn input(len: usize) -> Vec<f64> {
        let mut x: Vec<f64> = values(len, 1).into_iter().map(|v| v.round()).collect();
        for i in (5..len).step_by(17) {
            x[i] = f64::NAN;
        }
        x
    }

    fn same(actual: &[f64], expected: &[f64], what: &str) {
        assert_eq!(actual.len(), expected.len(), "{what}");
        for (i, (a, e)) in actual.iter().zip(expected).enumerate() {
            let close = (a.is_nan() && e.is_nan()) || a == e || (a - e).abs() <= 1e-12 * e.abs().max(1.0);
            assert!(close, "{what}: element {i}: {a} vs {e}");
        }
    }

    type Forward = unsafe extern "C" fn(*const f64, KernelLayout, PoolGeometry, *mut f64, u64);
    type MaxBackward =
        unsafe extern "C" fn(*const f64, KernelLayout, PoolGeometry, *const f64, *mut f64, KernelLayout, u64, i32);
    type AverageBackward = unsafe extern "C" fn(PoolGeometry, *const f64, *mut f64, KernelLayout, u64, i32);

    /// pool.cu compiled for the CPU (see `crate::emulation`) against `Cpu`'s poolings,
    /// every pass and every kind of input layout.
    #[test]
    fn the_emulated_kernels_match_the_cpu() {
        let Some(library) = library(&POOL, "double") else {
            return;
        };
        // SAFETY: the kernels' signatures with T = double, as launched above.
        let (forward, max_backward, average_backward): (Forward, MaxBackward, AverageBackward) = unsafe {
            (
                kernel(library, "pool_forward"),
                kernel(library, "pool_max_backward"),
                kernel(library, "pool_average_backward"),
            )
        };
        let cpu = Cpu::default();
        let cases = specs()
            .into_iter()
            .map(|s| {
                (
                    PoolGeometry::pool(&s),
                    s.batch,
                    s.input_dims(),
                    s.output_dims(),
                    Some(s),
                )
            })
            .chain(adaptive_specs().into_iter().map(|s| {
                (
                    PoolGeometry::adaptive(&s),
                    s.batch,
                    s.input_dims(),
                    s.output_dims(),
                    None,
                )
            }));
        for (geometry, batch, input_dims, output_dims, spec) in cases {
            for kind in KINDS {
                let what = format!("{geometry:?} with a {kind:?} input");
                let (in_layout, in_len) = layout(input_dims, kind);
                let x = cpu.try_from_host(input(in_len)).unwrap();
                let expected = match (&spec, geometry.mode) {
                    (Some(spec), 0) => cpu.max_pool2d_forward(spec, View::new(&x, in_layout)).unwrap(),
                    (Some(spec), _) => cpu.avg_pool2d_forward(spec, View::new(&x, in_layout)).unwrap(),
                    (None, _) => {
                        let spec = AdaptivePool2dSpec::new(input_dims, [output_dims[2], output_dims[3]]).unwrap();
                        cpu.adaptive_avg_pool2d_forward(&spec, View::new(&x, in_layout))
                            .unwrap()
                    }
                };
                let len = geometry.output_len(batch);
                let mut actual = vec![0.0; len as usize];
                // SAFETY: as the launch: the input layout lies inside `x`; `actual` holds len.
                unsafe {
                    forward(
                        x.as_ptr(),
                        KernelLayout::from(&in_layout),
                        geometry,
                        actual.as_mut_ptr(),
                        len,
                    )
                };
                same(&actual, &expected, &format!("forward of {what}"));

                let grad_output = cpu.try_from_host(values(len as usize, 2)).unwrap();
                let mut expected = cpu.try_from_host(values(in_len, 3)).unwrap();
                let mut actual = expected.clone();
                let grad_layout = KernelLayout::from(&in_layout);
                match (&spec, geometry.mode) {
                    (Some(spec), 0) => {
                        cpu.max_pool2d_backward(
                            spec,
                            View::new(&x, in_layout),
                            &grad_output,
                            ViewMut::new(&mut expected, in_layout),
                        )
                        .unwrap();
                        // SAFETY: as the launch.
                        unsafe {
                            max_backward(
                                x.as_ptr(),
                                KernelLayout::from(&in_layout),
                                geometry,
                                grad_output.as_ptr(),
                                actual.as_mut_ptr(),
                                grad_layout,
                                len,
                                1,
                            )
                        };
                    }
                    (spec, _) => {
                        match spec {
                            Some(spec) => cpu
                                .avg_pool2d_backward(spec, &grad_output, ViewMut::new(&mut expected, in_layout))
                                .unwrap(),
                            None => {
                                let spec =
                                    AdaptivePool2dSpec::new(input_dims, [output_dims[2], output_dims[3]]).unwrap();
                                cpu.adaptive_avg_pool2d_backward(
                                    &spec,
                                    &grad_output,
                                    ViewMut::new(&mut expected, in_layout),
                                )
                                .unwrap()
                            }
                        }
                        // SAFETY: as the launch.
                        unsafe {
                            average_backward(geometry, grad_output.as_ptr(), actual.as_mut_ptr(), grad_layout, len, 1)
                        };
                    }
                }
                same(&actual, &expected, &format!("backward of {what}"));
            }
        }
    }

    #[test]
    fn overlapping_windows_are_known() {
        let p = params;
        let spec = |params| PoolGeometry::pool(&Pool2dSpec::new(PoolOp::MaxPool2d, [1, 1, 9, 9], params).unwrap());
        assert!(!spec(p([2, 2], [2, 2], [0, 0], [1, 1])).windows_overlap());
        assert!(spec(p([3, 3], [2, 2], [1, 1], [1, 1])).windows_overlap());
        // Dilation 2 spreads a 2-tap window over 3 pixels.
        assert!(!spec(p([2, 2], [3, 3], [0, 0], [2, 2])).windows_overlap());
        assert!(spec(p([2, 2], [2, 2], [0, 0], [2, 2])).windows_overlap());
        let adaptive = |input, output| PoolGeometry::adaptive(&AdaptivePool2dSpec::new(input, output).unwrap());
        assert!(!adaptive([1, 1, 6, 4], [3, 2]).windows_overlap());
        assert!(adaptive([1, 1, 7, 4], [3, 2]).windows_overlap());
        assert!(adaptive([1, 1, 2, 2], [4, 4]).windows_overlap());
    }

    /// The same on the GPU, in f32, when there is one.
    #[test]
    fn the_gpu_matches_the_cpu() {
        let Some(gpu) = test_gpu() else { return };
        let cpu = Cpu::default();
        let f32s = |v: Vec<f64>| v.into_iter().map(|x| x as f32).collect::<Vec<f32>>();
        let check = |actual: Vec<f32>, expected: &[f32], what: &str| {
            for (i, (a, e)) in actual.iter().zip(expected).enumerate() {
                let close = (a.is_nan() && e.is_nan()) || (a - e).abs() <= 1e-5 * e.abs().max(1.0);
                assert!(close, "{what}: element {i}: {a} vs {e}");
            }
        };
        for spec in specs() {
            for kind in KINDS {
                let what = format!("{spec:?} with a {kind:?} input");
                let (in_layout, in_len) = layout(spec.input_dims(), kind);
                let x = f32s(input(in_len));
                let (xc, xg) = (cpu.try_from_host(x.clone()).unwrap(), gpu.try_from_host(x).unwrap());
                let out_len: usize = spec.output_dims().iter().product();
                let g = f32s(values(out_len, 2));
                let (gc, gg) = (cpu.try_from_host(g.clone()).unwrap(), gpu.try_from_host(g).unwrap());
                let start = f32s(values(in_len, 3));
                let mut expected = cpu.try_from_host(start.clone()).unwrap();
                let mut actual = gpu.try_from_host(start).unwrap();
                if spec.op.is_max() {
                    let e = cpu.max_pool2d_forward(&spec, View::new(&xc, in_layout)).unwrap();
                    let a = gpu.max_pool2d_forward(&spec, View::new(&xg, in_layout)).unwrap();
                    check(gpu.try_to_host(&a).unwrap(), &e, &format!("forward of {what}"));
                    cpu.max_pool2d_backward(
                        &spec,
                        View::new(&xc, in_layout),
                        &gc,
                        ViewMut::new(&mut expected, in_layout),
                    )
                    .unwrap();
                    gpu.max_pool2d_backward(
                        &spec,
                        View::new(&xg, in_layout),
                        &gg,
                        ViewMut::new(&mut actual, in_layout),
                    )
                    .unwrap();
                    let e = cpu
                        .max_pool2d_backward_new(&spec, View::new(&xc, in_layout), &gc)
                        .unwrap();
                    let a = gpu
                        .max_pool2d_backward_new(&spec, View::new(&xg, in_layout), &gg)
                        .unwrap();
                    check(gpu.try_to_host(&a).unwrap(), &e, &format!("first gradient of {what}"));
                } else {
                    let e = cpu.avg_pool2d_forward(&spec, View::new(&xc, in_layout)).unwrap();
                    let a = gpu.avg_pool2d_forward(&spec, View::new(&xg, in_layout)).unwrap();
                    check(gpu.try_to_host(&a).unwrap(), &e, &format!("forward of {what}"));
                    cpu.avg_pool2d_backward(&spec, &gc, ViewMut::new(&mut expected, in_layout))
                        .unwrap();
                    gpu.avg_pool2d_backward(&spec, &gg, ViewMut::new(&mut actual, in_layout))
                        .unwrap();
                }
                check(
                    gpu.try_to_host(&actual).unwrap(),
                    &expected,
                    &format!("backward of {what}"),
                );
            }
        }
        for spec in adaptive_specs() {
            let (in_layout, in_len) = layout(spec.input_dims(), KINDS[1]);
            let x = f32s(values(in_len, 1));
            let (xc, xg) = (cpu.try_from_host(x.clone()).unwrap(), gpu.try_from_host(x).unwrap());
            let e = cpu
                .adaptive_avg_pool2d_forward(&spec, View::new(&xc, in_layout))
                .unwrap();
            let a = gpu
                .adaptive_avg_pool2d_forward(&spec, View::new(&xg, in_layout))
                .unwrap();
            check(
                gpu.try_to_host(&a).unwrap(),
                &e,
                &format!("adaptive forward of {spec:?}"),
            );
            let g = f32s(values(e.len(), 2));
            let (gc, gg) = (cpu.try_from_host(g.clone()).unwrap(), gpu.try_from_host(g).unwrap());
            let mut expected = cpu.try_from_host(vec![0.0f32; in_len]).unwrap();
            let mut actual = gpu.try_from_host(vec![0.0f32; in_len]).unwrap();
            cpu.adaptive_avg_pool2d_backward(&spec, &gc, ViewMut::new(&mut expected, in_layout))
                .unwrap();
            gpu.adaptive_avg_pool2d_backward(&spec, &gg, ViewMut::new(&mut actual, in_layout))
                .unwrap();
            check(
                gpu.try_to_host(&actual).unwrap(),
                &expected,
                &format!("adaptive backward of {spec:?}"),
            );
        }
    }
}
