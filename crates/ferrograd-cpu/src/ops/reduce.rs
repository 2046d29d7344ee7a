use crate::device::{Cpu, CpuBuffer};
use crate::ops::elementwise::is_dense;
use ferrograd_device::ops::reduce::SumKernel;
use ferrograd_device::{Dtype, Error, Layout, Storage};

/// The layout, over the input's dims, that addresses the reduced output: reduced axes
/// get stride 0, kept axes the output's row-major strides. Walking it beside the input
/// pairs every input element with the output element it reduces into.
pub(crate) fn reduced_view(input: &Layout, axes: &[usize]) -> Layout {
    let dims = input.dims();
    let mut strides = vec![0; dims.len()];
    let mut step = 1;
    for axis in (0..dims.len()).rev() {
        if !axes.contains(&axis) {
            strides[axis] = step;
            step *= dims[axis];
        }
    }
    Layout::from_parts(dims, &strides)
}

/// Sums a slice with eight independent accumulators: faster than one running sum, and
/// its error grows more slowly with length.
fn sum_slice<E: Dtype>(values: &[E]) -> E {
    let mut lanes = [E::ZERO; 8];
    let mut chunks = values.chunks_exact(8);
    for chunk in &mut chunks {
        for (lane, &v) in lanes.iter_mut().zip(chunk) {
            *lane += v;
        }
    }
    let mut total = E::ZERO;
    for &v in chunks.remainder() {
        total += v;
    }
    let [a, b, c, d, e, f, g, h] = lanes;
    total + (((a + b) + (c + d)) + ((e + f) + (g + h)))
}

impl<E: Dtype> SumKernel<E> for Cpu {
    fn forward(&self, input: &CpuBuffer<E>, layout: &Layout, axes: &[usize]) -> Result<CpuBuffer<E>, Error> {
        let dims = layout.dims();
        let out_len: usize = (0..dims.len()).filter(|a| !axes.contains(a)).map(|a| dims[a]).product();
        let mut out = self.try_alloc_zeros(out_len)?;
        let numel = layout.num_elements();
        let trailing = axes.iter().rev().zip((0..dims.len()).rev()).take_while(|pair| *pair.0 == pair.1).count();
        if is_dense(layout, input) && trailing == axes.len() {
            // Reducing the last axes of a contiguous tensor: each output is one run.
            let run: usize = dims[dims.len() - trailing..].iter().product();
            if run > 0 {
                for (o, chunk) in out.iter_mut().zip(input[..numel].chunks_exact(run)) {
                    *o = sum_slice(chunk);
                }
            }
        } else {
            let view = reduced_view(layout, axes);
            for (i, o) in layout.offsets().zip(view.offsets()) {
                out[o] += input[i];
            }
        }
        Ok(out)
    }

    fn backward(
        &self,
        layout: &Layout,
        axes: &[usize],
        grad_input: &mut CpuBuffer<E>,
        grad_output: &CpuBuffer<E>,
    ) -> Result<(), Error> {
        let view = reduced_view(layout, axes);
        for (i, o) in layout.offsets().zip(view.offsets()) {
            grad_input[i] += grad_output[o];
        }
        Ok(())
    }
}
