//! 2-d upsampling on the CPU: each plane (one channel of one image) on its own, the
//! planes shared out among threads when the output is large.

use crate::host::{Cpu, CpuBuffer, try_vec};
use crate::threads::for_each_chunk_mut;
use ferrograd_device::ops::conv::check_grad_output;
use ferrograd_device::ops::upsample::{Interpolation, Upsample2dKernel, Upsample2dSpec};
use ferrograd_device::{Dtype, Error, View, ViewMut};

/// Output elements below which one thread does all the planes: below it, handing out
/// shares costs more than it saves.
const THREADED_ELEMENTS: usize = 1 << 15;

/// Planes per share: enough to reach the threshold, at least one.
fn planes_per_share(plane_len: usize) -> usize {
    THREADED_ELEMENTS.div_ceil(plane_len.max(1)).max(1)
}

/// The source rows or columns of each output row or column and their weights: one tap
/// (weight 1) for nearest, two for bilinear.
struct Taps<E> {
    rows: Vec<(usize, usize, E, E)>,
    cols: Vec<(usize, usize, E, E)>,
}

fn taps<E: Dtype>(spec: &Upsample2dSpec) -> Taps<E> {
    match spec.mode {
        Interpolation::Nearest => {
            let one = |sources: Vec<usize>| sources.into_iter().map(|s| (s, s, E::ONE, E::ZERO)).collect();
            Taps {
                rows: one(spec.nearest_sources(0)),
                cols: one(spec.nearest_sources(1)),
            }
        }
        Interpolation::Bilinear { align_corners } => Taps {
            rows: spec.linear_taps(0, align_corners),
            cols: spec.linear_taps(1, align_corners),
        },
    }
}

impl<E: Dtype> Upsample2dKernel<E> for Cpu {
    fn upsample2d_forward(&self, spec: &Upsample2dSpec, input: View<'_, CpuBuffer<E>>) -> Result<CpuBuffer<E>, Error> {
        spec.check()?;
        spec.check_operand("input", &input, &spec.input_dims())?;
        let (input, layout) = (input.buffer, &input.layout);
        let taps = taps::<E>(spec);
        let nearest = spec.mode == Interpolation::Nearest;
        let strides = layout.strides();
        let (channels, plane_len) = (spec.channels, spec.out_height * spec.out_width);
        let mut out = try_vec::<E>(spec.batch * channels * plane_len)?;
        out.resize(spec.batch * channels * plane_len, E::ZERO);
        let per_share = planes_per_share(plane_len);
        for_each_chunk_mut(&mut out, per_share * plane_len, |share, chunk| {
            for (k, plane) in chunk.chunks_mut(plane_len).enumerate() {
                let index = share * per_share + k;
                let base = layout.offset() + (index / channels) * strides[0] + (index % channels) * strides[1];
                let at = |y: usize, x: usize| input[base + y * strides[2] + x * strides[3]];
                for (row, &(y0, y1, wy0, wy1)) in plane.chunks_mut(spec.out_width).zip(&taps.rows) {
                    for (value, &(x0, x1, wx0, wx1)) in row.iter_mut().zip(&taps.cols) {
                        *value = if nearest {
                            // A copy: weights of 0 would turn an infinite pixel into NaN.
                            at(y0, x0)
                        } else {
                            wy0 * (wx0 * at(y0, x0) + wx1 * at(y0, x1)) + wy1 * (wx0 * at(y1, x0) + wx1 * at(y1, x1))
                        };
                    }
                }
            }
        });
        Ok(CpuBuffer(out))
    }

    fn upsample2d_backward(
        &self,
        spec: &Upsample2dSpec,
        grad_output: &CpuBuffer<E>,
        grad_input: ViewMut<'_, CpuBuffer<E>>,
    ) -> Result<(), Error> {
        spec.check()?;
        spec.check_operand("input's gradient", &grad_input.as_view(), &spec.input_dims())?;
        check_grad_output("upsample2d", &spec.output_dims(), grad_output.len())?;
        let (grad_input, layout) = (grad_input.buffer, &grad_input.layout);
        let taps = taps::<E>(spec);
        let nearest = spec.mode == Interpolation::Nearest;
        let (out_plane, in_plane) = (spec.out_height * spec.out_width, spec.in_height * spec.in_width);
        let planes = spec.batch * spec.channels;
        // Each plane's gradient into a dense buffer, planes in parallel; then added
        // through the layout in one pass, since a view's planes may share elements.
        let mut dense = try_vec::<E>(planes * in_plane)?;
        dense.resize(planes * in_plane, E::ZERO);
        let per_share = planes_per_share(out_plane);
        for_each_chunk_mut(&mut dense, per_share * in_plane, |share, chunk| {
            for (k, plane) in chunk.chunks_mut(in_plane).enumerate() {
                let index = share * per_share + k;
                let grads = &grad_output[index * out_plane..(index + 1) * out_plane];
                for (row, &(y0, y1, wy0, wy1)) in grads.chunks(spec.out_width).zip(&taps.rows) {
                    for (&g, &(x0, x1, wx0, wx1)) in row.iter().zip(&taps.cols) {
                        if nearest {
                            plane[y0 * spec.in_width + x0] += g;
                            continue;
                        }
                        let (top, bottom) = (wy0 * g, wy1 * g);
                        plane[y0 * spec.in_width + x0] += top * wx0;
                        plane[y0 * spec.in_width + x1] += top * wx1;
                        plane[y1 * spec.in_width + x0] += bottom * wx0;
                        plane[y1 * spec.in_width + x1] += bottom * wx1;
                    }
                }
            }
        });
        for (offset, g) in layout.offsets().zip(&dense) {
            grad_input[offset] += *g;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferrograd_device::Layout;
    use ferrograd_device::ops::upsample::UpsampleSize;

    /// The threaded split gives what one thread gives, planes of any count.
    #[test]
    fn threaded_planes_match_one_thread() {
        let spec = Upsample2dSpec::new(
            [3, 5, 9, 7],
            UpsampleSize::Scale([8.0, 9.5]),
            Interpolation::Bilinear { align_corners: false },
        )
        .unwrap();
        let input: Vec<f64> = (0..3 * 5 * 9 * 7).map(|i| ((i * 37) % 101) as f64 / 7.0).collect();
        let layout = Layout::from_parts(&[3, 5, 9, 7], &[315, 63, 7, 1]);
        let run = |threads| {
            crate::set_num_threads(threads);
            let out = Cpu::default()
                .upsample2d_forward(&spec, View::new(&CpuBuffer(input.clone()), layout))
                .unwrap();
            let mut grad = CpuBuffer(vec![0.0; input.len()]);
            Cpu::default()
                .upsample2d_backward(&spec, &out, ViewMut::new(&mut grad, layout))
                .unwrap();
            (out.to_vec(), grad.to_vec())
        };
        assert!(spec.output_dims().iter().product::<usize>() > 2 * THREADED_ELEMENTS);
        assert_eq!(run(1), run(2));
    }
}
