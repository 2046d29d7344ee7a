//! CPU kernels of indexing: gather, scatter-add, gather-add and one-hot.
//!
//! Every kernel walks the index layout beside a "pinned" view of the indexed buffer (its
//! layout with the indexed axis' stride set to 0), so the element an index picks is at
//! `pinned offset + index · stride of the axis`. When the indexed buffer is contiguous
//! and the indices are constant over the axes after the indexed one (`index_select`,
//! `select` with per-row indices, embedding lookups), each index picks one contiguous
//! run, which is copied or added as a slice.

use crate::host::{Cpu, CpuBuffer, try_vec};
use crate::ops::elementwise::is_dense;
use ferrograd_device::ops::index::{
    GatherKernel, OneHotKernel, ScatterAddKernel, check_index_layouts, check_index_values, index_out_of_bounds,
};
use ferrograd_device::{Dtype, Error, Layout, Storage, Unit, View, ViewMut};

/// Every index below `size`, or the error naming the first that is not.
fn check_indices(op: &'static str, index: &[usize], layout: &Layout, axis: usize, size: usize) -> Result<(), Error> {
    match layout.offsets().map(|i| index[i]).find(|&k| k >= size) {
        Some(k) => Err(index_out_of_bounds(op, k, axis, size)),
        None => Ok(()),
    }
}

/// `data` read over `dims` with axis `axis` pinned at index 0.
fn pinned(data: &Layout, dims: &[usize], axis: usize) -> Layout {
    let mut strides = data.strides().to_vec();
    strides[axis] = 0;
    Layout::from_parts(dims, &strides).with_offset(data.offset())
}

/// When the indices are constant over every axis after `axis`, the layout of one index
/// per (leading position, position along `axis`), in row-major order, and the length of
/// the run of trailing elements each index picks.
fn runs(index: &Layout, axis: usize) -> Option<(Layout, usize)> {
    let (dims, strides) = (index.dims(), index.strides());
    let trailing = dims[axis + 1..].iter().zip(&strides[axis + 1..]);
    if trailing.clone().any(|(&d, &s)| d != 1 && s != 0) {
        return None;
    }
    let run = trailing.map(|(&d, _)| d).product();
    Some((
        Layout::from_parts(&dims[..=axis], &strides[..=axis]).with_offset(index.offset()),
        run,
    ))
}

impl<E: Unit> GatherKernel<E> for Cpu {
    fn gather(
        &self,
        op: &'static str,
        input: View<'_, CpuBuffer<E>>,
        axis: usize,
        index: View<'_, CpuBuffer<usize>>,
    ) -> Result<CpuBuffer<E>, Error> {
        input.check(op, "input")?;
        index.check(op, "index")?;
        let View {
            buffer: input,
            layout: ref input_layout,
        } = input;
        let View {
            buffer: index,
            layout: ref index_layout,
        } = index;
        check_index_layouts(op, input_layout, axis, index_layout)?;
        let size = input_layout.dims()[axis];
        let mut out = try_vec(index_layout.num_elements())?;
        if is_dense(input_layout, input)
            && let Some((heads, run)) = runs(index_layout, axis)
        {
            let picks = index_layout.dims()[axis];
            for (j, i) in heads.offsets().enumerate() {
                let k = index[i];
                if k >= size {
                    return Err(index_out_of_bounds(op, k, axis, size));
                }
                let start = ((j / picks) * size + k) * run;
                out.extend_from_slice(&input[start..start + run]);
            }
        } else {
            let stride = input_layout.strides()[axis];
            let base = pinned(input_layout, index_layout.dims(), axis);
            for (b, i) in base.offsets().zip(index_layout.offsets()) {
                let k = index[i];
                if k >= size {
                    return Err(index_out_of_bounds(op, k, axis, size));
                }
                out.push(input[b + k * stride]);
            }
        }
        Ok(CpuBuffer(out))
    }
}

impl<E: Dtype> ScatterAddKernel<E> for Cpu {
    fn scatter_add(
        &self,
        op: &'static str,
        dst: ViewMut<'_, CpuBuffer<E>>,
        axis: usize,
        index: View<'_, CpuBuffer<usize>>,
        src: View<'_, CpuBuffer<E>>,
    ) -> Result<(), Error> {
        dst.check_accumulating(op, "dst")?;
        index.check(op, "index")?;
        src.check(op, "src")?;
        let ViewMut {
            buffer: dst,
            layout: ref dst_layout,
        } = dst;
        let View {
            buffer: index,
            layout: ref index_layout,
        } = index;
        let View {
            buffer: src,
            layout: ref src_layout,
        } = src;
        check_index_layouts(op, dst_layout, axis, index_layout)?;
        check_index_values(op, index_layout, src_layout)?;
        let size = dst_layout.dims()[axis];
        check_indices(op, index, index_layout, axis, size)?;
        if is_dense(dst_layout, dst)
            && is_dense(src_layout, src)
            && let Some((heads, run)) = runs(index_layout, axis)
        {
            let picks = index_layout.dims()[axis];
            for (j, i) in heads.offsets().enumerate() {
                let start = ((j / picks) * size + index[i]) * run;
                for (d, &s) in dst[start..start + run].iter_mut().zip(&src[j * run..(j + 1) * run]) {
                    *d += s;
                }
            }
        } else {
            let stride = dst_layout.strides()[axis];
            let base = pinned(dst_layout, index_layout.dims(), axis);
            for ((b, i), s) in base.offsets().zip(index_layout.offsets()).zip(src_layout.offsets()) {
                dst[b + index[i] * stride] += src[s];
            }
        }
        Ok(())
    }

    fn gather_add(
        &self,
        op: &'static str,
        src: View<'_, CpuBuffer<E>>,
        axis: usize,
        index: View<'_, CpuBuffer<usize>>,
        dst: ViewMut<'_, CpuBuffer<E>>,
    ) -> Result<(), Error> {
        src.check(op, "src")?;
        index.check(op, "index")?;
        dst.check_accumulating(op, "dst")?;
        let View {
            buffer: src,
            layout: ref src_layout,
        } = src;
        let View {
            buffer: index,
            layout: ref index_layout,
        } = index;
        let ViewMut {
            buffer: dst,
            layout: ref dst_layout,
        } = dst;
        check_index_layouts(op, src_layout, axis, index_layout)?;
        check_index_values(op, index_layout, dst_layout)?;
        let size = src_layout.dims()[axis];
        check_indices(op, index, index_layout, axis, size)?;
        if is_dense(dst_layout, dst)
            && is_dense(src_layout, src)
            && let Some((heads, run)) = runs(index_layout, axis)
        {
            let picks = index_layout.dims()[axis];
            for (j, i) in heads.offsets().enumerate() {
                let start = ((j / picks) * size + index[i]) * run;
                for (d, &s) in dst[j * run..(j + 1) * run].iter_mut().zip(&src[start..start + run]) {
                    *d += s;
                }
            }
        } else {
            let stride = src_layout.strides()[axis];
            let base = pinned(src_layout, index_layout.dims(), axis);
            for ((b, i), d) in base.offsets().zip(index_layout.offsets()).zip(dst_layout.offsets()) {
                dst[d] += src[b + index[i] * stride];
            }
        }
        Ok(())
    }
}

impl<E: Dtype> OneHotKernel<E> for Cpu {
    fn one_hot(&self, index: View<'_, CpuBuffer<usize>>, classes: usize) -> Result<CpuBuffer<E>, Error> {
        index.check("one_hot", "index")?;
        let View {
            buffer: index,
            layout: ref index_layout,
        } = index;
        let numel = index_layout.num_elements();
        let len = numel.checked_mul(classes).ok_or(Error::OutOfMemory {
            elements: usize::MAX,
            dtype: E::NAME,
        })?;
        let mut out = <Cpu as Storage<E>>::try_alloc_zeros(self, len)?;
        for (p, i) in index_layout.offsets().enumerate() {
            let k = index[i];
            if k >= classes {
                return Err(Error::InvalidArgument {
                    op: "one_hot",
                    message: format!("index {k} is out of bounds for {classes} classes"),
                });
            }
            out[p * classes + k] = E::ONE;
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn buf<E: Unit>(v: Vec<E>) -> CpuBuffer<E> {
        CpuBuffer(v)
    }

    #[test]
    fn gather_reads_through_strides_and_broadcast_indices() {
        let cpu = Cpu::default();
        // x = [[0, 1, 2], [3, 4, 5]] stored transposed: element (i, j) at j * 2 + i.
        let x = buf(vec![0.0f64, 3.0, 1.0, 4.0, 2.0, 5.0]);
        let x_layout = Layout::from_parts(&[2, 3], &[1, 2]);
        // Indices (2, 2) along axis 1.
        let idx = buf(vec![2usize, 0, 1, 1]);
        let out = cpu
            .gather(
                "gather",
                View::new(&x, x_layout),
                1,
                View::new(&idx, Layout::from_parts(&[2, 2], &[2, 1])),
            )
            .unwrap();
        assert_eq!(out.0, vec![2.0, 0.0, 4.0, 4.0]);
        // One index (1) for every row: a broadcast index layout.
        let one = buf(vec![1usize]);
        let out = cpu
            .gather(
                "select",
                View::new(&x, x_layout),
                1,
                View::new(&one, Layout::from_parts(&[2, 1], &[0, 0])),
            )
            .unwrap();
        assert_eq!(out.0, vec![1.0, 4.0]);
    }

    #[test]
    fn runs_and_strided_walks_agree() {
        let cpu = Cpu::default();
        // x: (2, 3, 2), contiguous; indices (2, 4) along axis 1, broadcast over axis 2.
        let x = buf((0..12).map(|v| v as f64).collect());
        let x_layout = Layout::from_parts(&[2, 3, 2], &[6, 2, 1]);
        let idx = buf(vec![2usize, 0, 0, 1, 1, 2, 2, 0]);
        let idx_layout = Layout::from_parts(&[2, 4, 2], &[4, 1, 0]);
        let fast = cpu
            .gather("gather", View::new(&x, x_layout), 1, View::new(&idx, idx_layout))
            .unwrap();
        // The same data padded at the front, so the dense path does not apply.
        let mut padded = vec![-1.0];
        padded.extend(x.0.iter().copied());
        let slow = cpu
            .gather(
                "gather",
                View::new(&buf(padded), x_layout.with_offset(1)),
                1,
                View::new(&idx, idx_layout),
            )
            .unwrap();
        assert_eq!(fast, slow);
        assert_eq!(&fast.0[..4], &[4.0, 5.0, 0.0, 1.0]);

        let src = buf((0..16).map(|v| v as f64).collect::<Vec<_>>());
        let src_layout = Layout::from_parts(&[2, 4, 2], &[8, 2, 1]);
        let mut dense = buf(vec![0.0f64; 12]);
        cpu.scatter_add(
            "scatter_add",
            ViewMut::new(&mut dense, x_layout),
            1,
            View::new(&idx, idx_layout),
            View::new(&src, src_layout),
        )
        .unwrap();
        let mut strided = buf(vec![0.0f64; 13]);
        let strided_layout = x_layout.with_offset(1);
        cpu.scatter_add(
            "scatter_add",
            ViewMut::new(&mut strided, strided_layout),
            1,
            View::new(&idx, idx_layout),
            View::new(&src, src_layout),
        )
        .unwrap();
        assert_eq!(&dense.0[..], &strided.0[1..]);
        // Row 0 of x at index 0 receives src (0, 1) and (0, 2): 2 + 4 and 3 + 5.
        assert_eq!(&dense.0[..2], &[6.0, 8.0]);

        let mut a = buf(vec![0.0f64; 16]);
        cpu.gather_add(
            "scatter_add",
            View::new(&x, x_layout),
            1,
            View::new(&idx, idx_layout),
            ViewMut::new(&mut a, src_layout),
        )
        .unwrap();
        let mut b = buf(vec![0.0f64; 16]);
        let transposed = Layout::from_parts(&[2, 4, 2], &[1, 4, 2]);
        cpu.gather_add(
            "scatter_add",
            View::new(&x, x_layout),
            1,
            View::new(&idx, idx_layout),
            ViewMut::new(&mut b, transposed),
        )
        .unwrap();
        let b_row_major: Vec<f64> = transposed.offsets().map(|o| b[o]).collect();
        assert_eq!(a.0, b_row_major);
        assert_eq!(a.0, fast.0);
    }

    #[test]
    fn out_of_range_indices_are_errors_and_write_nothing() {
        let cpu = Cpu::default();
        let x = buf(vec![1.0f32, 2.0, 3.0]);
        let layout = Layout::from_parts(&[3], &[1]);
        let idx = buf(vec![0usize, 3]);
        let idx_layout = Layout::from_parts(&[2], &[1]);
        let e = cpu
            .gather("gather", View::new(&x, layout), 0, View::new(&idx, idx_layout))
            .unwrap_err();
        assert_eq!(e.to_string(), "gather: index 3 is out of bounds for axis 0 of size 3");
        let mut dst = x.clone();
        let src = buf(vec![10.0f32, 20.0]);
        let e = cpu.scatter_add(
            "scatter_add",
            ViewMut::new(&mut dst, layout),
            0,
            View::new(&idx, idx_layout),
            View::new(&src, idx_layout),
        );
        assert!(e.is_err());
        assert_eq!(dst, x);
        let e = cpu
            .gather("gather", View::new(&x, layout), 1, View::new(&idx, idx_layout))
            .unwrap_err();
        assert!(matches!(e, Error::ShapeMismatch { .. }), "{e}");
    }

    #[test]
    fn one_hot_rows() {
        let cpu = Cpu::default();
        let idx = buf(vec![2usize, 0]);
        let out: CpuBuffer<f64> = cpu.one_hot(View::new(&idx, Layout::from_parts(&[2], &[1])), 3).unwrap();
        assert_eq!(out.0, vec![0.0, 0.0, 1.0, 1.0, 0.0, 0.0]);
        let e = OneHotKernel::<f64>::one_hot(&cpu, View::new(&idx, Layout::from_parts(&[2], &[1])), 2).unwrap_err();
        assert_eq!(e.to_string(), "one_hot: index 2 is out of bounds for 2 classes");
    }
}
