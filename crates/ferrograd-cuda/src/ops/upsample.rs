//! 2-d upsampling, nearest and bilinear ([`Upsample2dKernel`]).
//!
//! The source rows and columns of each output row and column and their weights are the
//! spec's own tables ([`Upsample2dSpec::nearest_sources`],
//! [`Upsample2dSpec::linear_taps`]), worked out on the host as the CPU does, in the
//! element type, and copied to the GPU with each call (a few hundred bytes): both
//! devices read the same pixels with the same weights, and blend them in the same order
//! without fused multiply-adds. One thread per output pixel; the backward pass scatters
//! with `atomicAdd`, since several output pixels read each input pixel.

use crate::buffer::CudaBuffer;
use crate::compile::KernelSource;
use crate::device::{Cuda, grid_for};
use crate::element::CudaElement;
use crate::layout::KernelLayout;
use cudarc::driver::PushKernelArg;
use ferrograd_device::ops::conv::check_grad_output;
use ferrograd_device::ops::upsample::{Interpolation, Upsample2dKernel, Upsample2dSpec};
use ferrograd_device::{Dtype, Error, Storage, View, ViewMut};

/// `upsample.cu`.
pub(crate) const UPSAMPLE: KernelSource = KernelSource {
    name: "upsample",
    source: concat!(include_str!("../layout.cuh"), include_str!("upsample.cu")),
    functions: &["upsample_forward", "upsample_backward"],
    element_types: &["float", "double"],
};

const OP: &str = "upsample2d";

/// The taps of every output row, then of every output column, as the kernels read them:
/// `(low, high)` source indices and `(w_low, w_high)` weights, flattened.
fn taps<E: Dtype>(spec: &Upsample2dSpec) -> (Vec<usize>, Vec<E>) {
    let all: Vec<(usize, usize, E, E)> = match spec.mode {
        Interpolation::Nearest => [0, 1]
            .into_iter()
            .flat_map(|axis| spec.nearest_sources(axis))
            .map(|source| (source, source, E::ONE, E::ZERO))
            .collect(),
        Interpolation::Bilinear { align_corners } => [0, 1]
            .into_iter()
            .flat_map(|axis| spec.linear_taps::<E>(axis, align_corners))
            .collect(),
    };
    let index = all.iter().flat_map(|&(low, high, _, _)| [low, high]).collect();
    let weight = all.iter().flat_map(|&(_, _, low, high)| [low, high]).collect();
    (index, weight)
}

/// One thread per output pixel, from the spec's source tables (the CPU's), blended as
/// the CPU blends; the gradient scattered atomically.
impl<E: Dtype + CudaElement> Upsample2dKernel<E> for Cuda {
    fn upsample2d_forward(
        &self,
        spec: &Upsample2dSpec,
        input: View<'_, CudaBuffer<E>>,
    ) -> Result<CudaBuffer<E>, Error> {
        spec.check()?;
        spec.check_operand("input", &input, &spec.input_dims())?;
        self.check_buffer(input.buffer, OP, "input")?;
        let len = spec.output_dims().iter().product::<usize>();
        let mut out = CudaBuffer::uninit(&self.gpu, len)?;
        let (Some(source), Some(target)) = (input.buffer.allocation(), out.allocation_mut()) else {
            // An empty batch or no channels: nothing to compute.
            return Ok(out);
        };
        let (index, weight) = taps::<E>(spec);
        let (index, weight) = (self.try_from_host(index)?, self.try_from_host(weight)?);
        let (Some(index), Some(weight)) = (index.allocation(), weight.allocation()) else {
            return Ok(out);
        };
        let function = self.gpu.function(&UPSAMPLE, "upsample_forward", E::C_TYPE)?;
        let layout = KernelLayout::from(&input.layout);
        let [channels, height, width] = [spec.channels, spec.out_height, spec.out_width].map(|x| x as u64);
        let nearest = i32::from(spec.mode == Interpolation::Nearest);
        let items = len as u64;
        let mut launch = self.gpu.stream.launch_builder(&function);
        launch
            .arg(&source.slice)
            .arg(&layout)
            .arg(&channels)
            .arg(&height)
            .arg(&width)
            .arg(&index.slice)
            .arg(&weight.slice)
            .arg(&nearest)
            .arg(&mut target.slice)
            .arg(&items);
        // SAFETY: `upsample_forward(const T *input, Layout layout, u64 channels, u64
        // out_height, u64 out_width, const u64 *index, const T *weight, int nearest, T
        // *out, u64 len)` was compiled with T = E::C_TYPE, the C name of E::Stored, the
        // element of input, weight and out; index holds usize stored as u64;
        // KernelLayout is `struct Layout`. index and weight hold 2·(out_height +
        // out_width) entries, the most the kernel reads; their source indices are below
        // the input's height and width (the checked spec's tables), so every pixel read
        // lies inside the input's dims, which check_operand checked lie inside its
        // buffer. It writes out[0..len], the new buffer's length.
        unsafe { launch.launch(grid_for(items)) }.map_err(|e| self.gpu.error("launching upsample_forward", &e))?;
        Ok(out)
    }

    fn upsample2d_backward(
        &self,
        spec: &Upsample2dSpec,
        grad_output: &CudaBuffer<E>,
        grad_input: ViewMut<'_, CudaBuffer<E>>,
    ) -> Result<(), Error> {
        spec.check()?;
        spec.check_operand("input's gradient", &grad_input.as_view(), &spec.input_dims())?;
        check_grad_output(OP, &spec.output_dims(), grad_output.len())?;
        self.check_buffer(grad_output, OP, "grad_output")?;
        self.check_buffer(grad_input.buffer, OP, "grad_input")?;
        let layout = KernelLayout::from(&grad_input.layout);
        let (Some(source), Some(target)) = (grad_output.allocation(), grad_input.buffer.allocation_mut()) else {
            return Ok(());
        };
        let (index, weight) = taps::<E>(spec);
        let (index, weight) = (self.try_from_host(index)?, self.try_from_host(weight)?);
        let (Some(index), Some(weight)) = (index.allocation(), weight.allocation()) else {
            return Ok(());
        };
        let function = self.gpu.function(&UPSAMPLE, "upsample_backward", E::C_TYPE)?;
        let [channels, height, width] = [spec.channels, spec.out_height, spec.out_width].map(|x| x as u64);
        let nearest = i32::from(spec.mode == Interpolation::Nearest);
        let items = grad_output.len() as u64;
        let mut launch = self.gpu.stream.launch_builder(&function);
        launch
            .arg(&source.slice)
            .arg(&channels)
            .arg(&height)
            .arg(&width)
            .arg(&index.slice)
            .arg(&weight.slice)
            .arg(&nearest)
            .arg(&mut target.slice)
            .arg(&layout)
            .arg(&items);
        // SAFETY: `upsample_backward(const T *grad_output, u64 channels, u64 out_height,
        // u64 out_width, const u64 *index, const T *weight, int nearest, T *grad, Layout
        // layout, u64 len)` was compiled with T = E::C_TYPE, the C name of E::Stored, the
        // element of grad_output, weight and grad; index holds usize stored as u64;
        // KernelLayout is `struct Layout`. It reads grad_output[0..len], its checked
        // length (the output's elements), and the tables (2·(out_height + out_width)
        // entries each, as uploaded), and adds atomically to the gradient at source
        // pixels inside the input's dims, which check_operand checked lie inside its
        // buffer.
        unsafe { launch.launch(grid_for(items)) }.map_err(|e| self.gpu.error("launching upsample_backward", &e))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::device::test_gpu;
    use crate::emulation::{kernel, library};
    use crate::ops::conv::tests::{KINDS, layout, values};
    use ferrograd_cpu::Cpu;
    use ferrograd_device::ops::upsample::UpsampleSize;

    fn specs() -> Vec<Upsample2dSpec> {
        let bilinear = |align_corners| Interpolation::Bilinear { align_corners };
        let mut specs = Vec::new();
        for mode in [Interpolation::Nearest, bilinear(false), bilinear(true)] {
            for (input, size) in [
                ([2, 3, 4, 5], UpsampleSize::Scale([2.0, 2.0])),
                ([1, 2, 5, 3], UpsampleSize::Scale([1.5, 2.5])),
                ([2, 2, 3, 4], UpsampleSize::Size([7, 4])),
                ([1, 3, 6, 5], UpsampleSize::Size([4, 2])),
                ([2, 1, 1, 3], UpsampleSize::Size([3, 1])),
            ] {
                specs.push(Upsample2dSpec::new(input, size, mode).unwrap());
            }
        }
        specs
    }

    type Forward =
        unsafe extern "C" fn(*const f64, KernelLayout, u64, u64, u64, *const u64, *const f64, i32, *mut f64, u64);
    type Backward =
        unsafe extern "C" fn(*const f64, u64, u64, u64, *const u64, *const f64, i32, *mut f64, KernelLayout, u64);

    /// upsample.cu compiled for the CPU (see `crate::emulation`) against `Cpu`'s
    /// upsampling: the same pixels and weights, the same roundings.
    #[test]
    fn the_emulated_kernels_match_the_cpu() {
        let Some(library) = library(&UPSAMPLE, "double") else {
            return;
        };
        // SAFETY: the kernels' signatures with T = double, as launched above.
        let (forward, backward): (Forward, Backward) = unsafe {
            (
                kernel(library, "upsample_forward"),
                kernel(library, "upsample_backward"),
            )
        };
        let cpu = Cpu::default();
        for spec in specs() {
            for kind in KINDS {
                let what = format!("{spec:?} with a {kind:?} input");
                let (in_layout, in_len) = layout(spec.input_dims(), kind);
                let x = cpu.try_from_host(values(in_len, 1)).unwrap();
                let expected = cpu.upsample2d_forward(&spec, View::new(&x, in_layout)).unwrap();
                let (index, weight) = taps::<f64>(&spec);
                let index: Vec<u64> = index.into_iter().map(|i| i as u64).collect();
                let len = expected.len();
                let nearest = i32::from(spec.mode == Interpolation::Nearest);
                let sizes = [spec.channels, spec.out_height, spec.out_width].map(|s| s as u64);
                let mut actual = vec![0.0; len];
                // SAFETY: as the launch: tables of 2·(height + width) entries, the
                // input's layout inside `x`, `actual` of the output's length.
                unsafe {
                    forward(
                        x.as_ptr(),
                        KernelLayout::from(&in_layout),
                        sizes[0],
                        sizes[1],
                        sizes[2],
                        index.as_ptr(),
                        weight.as_ptr(),
                        nearest,
                        actual.as_mut_ptr(),
                        len as u64,
                    )
                };
                assert_eq!(actual, &expected[..], "forward of {what}");

                let grad_output = cpu.try_from_host(values(len, 2)).unwrap();
                let mut expected = cpu.try_from_host(values(in_len, 3)).unwrap();
                let mut actual = expected.to_vec();
                cpu.upsample2d_backward(&spec, &grad_output, ViewMut::new(&mut expected, in_layout))
                    .unwrap();
                // SAFETY: as above, with the gradient's layout that of the input.
                unsafe {
                    backward(
                        grad_output.as_ptr(),
                        sizes[0],
                        sizes[1],
                        sizes[2],
                        index.as_ptr(),
                        weight.as_ptr(),
                        nearest,
                        actual.as_mut_ptr(),
                        KernelLayout::from(&in_layout),
                        len as u64,
                    )
                };
                for (i, (a, e)) in actual.iter().zip(expected.iter()).enumerate() {
                    assert!(
                        (a - e).abs() <= 1e-12 * e.abs().max(1.0),
                        "backward of {what}: element {i}: {a} vs {e}"
                    );
                }
            }
        }
    }

    /// The same on the GPU, in f32, when there is one.
    #[test]
    fn the_gpu_matches_the_cpu() {
        let Some(gpu) = test_gpu() else { return };
        let cpu = Cpu::default();
        let f32s = |v: Vec<f64>| v.into_iter().map(|x| x as f32).collect::<Vec<f32>>();
        for spec in specs() {
            for kind in KINDS {
                let what = format!("{spec:?} with a {kind:?} input");
                let (in_layout, in_len) = layout(spec.input_dims(), kind);
                let x = f32s(values(in_len, 1));
                let (xc, xg) = (cpu.try_from_host(x.clone()).unwrap(), gpu.try_from_host(x).unwrap());
                let expected = cpu.upsample2d_forward(&spec, View::new(&xc, in_layout)).unwrap();
                let actual = gpu.upsample2d_forward(&spec, View::new(&xg, in_layout)).unwrap();
                assert_eq!(gpu.try_to_host(&actual).unwrap(), &expected[..], "forward of {what}");
                let g = f32s(values(expected.len(), 2));
                let (gc, gg) = (cpu.try_from_host(g.clone()).unwrap(), gpu.try_from_host(g).unwrap());
                let start = f32s(values(in_len, 3));
                let mut expected = cpu.try_from_host(start.clone()).unwrap();
                let mut actual = gpu.try_from_host(start).unwrap();
                cpu.upsample2d_backward(&spec, &gc, ViewMut::new(&mut expected, in_layout))
                    .unwrap();
                gpu.upsample2d_backward(&spec, &gg, ViewMut::new(&mut actual, in_layout))
                    .unwrap();
                for (i, (a, e)) in gpu
                    .try_to_host(&actual)
                    .unwrap()
                    .iter()
                    .zip(expected.iter())
                    .enumerate()
                {
                    assert!(
                        (a - e).abs() <= 1e-5 * e.abs().max(1.0),
                        "backward of {what}: element {i}: {a} vs {e}"
                    );
                }
            }
        }
    }
}
