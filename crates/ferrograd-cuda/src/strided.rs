//! What the kernels reading strided views (reductions, softmax, indexing) share on the
//! host: layouts with their axes merged, the split of a layout into reduction groups,
//! the choice of how many threads reduce one group, and the GPU memory of a buffer.
//!
//! The CUDA side is `strided.cuh` (`fast_offset`, a grid-stride loop) and `team.cuh`
//! (the teams that reduce groups).

use crate::buffer::CudaBuffer;
use crate::device::Cuda;
use crate::element::CudaElement;
use crate::layout::KernelLayout;
use cudarc::driver::{CudaSlice, LaunchConfig};
use ferrograd_device::{Error, Layout};

/// Threads per block of the kernels that reduce groups: `TEAM_BLOCK` in team.cuh.
pub(crate) const TEAM_BLOCK: u32 = 256;

/// The most blocks a kernel that loops over its work with a grid stride is launched with,
/// as [`grid_for`](crate::device::grid_for) does.
const MAX_BLOCKS: usize = 1 << 16;

/// The dims of several layouts over one index space, size-1 axes dropped and
/// neighbouring axes merged where every layout's strides allow (`stride[a] ==
/// stride[a + 1] · dims[a + 1]` in each): the same elements in the same row-major order,
/// with fewer divisions per offset on the GPU. Returns the merged dims and each
/// layout's merged strides.
pub(crate) fn merge_axes<const N: usize>(dims: &[usize], strides: [&[usize]; N]) -> (Vec<usize>, [Vec<usize>; N]) {
    let mut merged_dims: Vec<usize> = Vec::with_capacity(dims.len());
    let mut merged: [Vec<usize>; N] = std::array::from_fn(|_| Vec::with_capacity(dims.len()));
    for (axis, &size) in dims.iter().enumerate() {
        if size == 1 {
            continue;
        }
        if let Some(last) = merged_dims.len().checked_sub(1)
            && (0..N).all(|k| merged[k][last] == strides[k][axis] * size)
        {
            merged_dims[last] *= size;
            for (list, s) in merged.iter_mut().zip(strides) {
                list[last] = s[axis];
            }
            continue;
        }
        merged_dims.push(size);
        for (list, s) in merged.iter_mut().zip(strides) {
            list.push(s[axis]);
        }
    }
    (merged_dims, merged)
}

/// Several layouts over `dims`, their axes merged together (see [`merge_axes`]):
/// layout `k` has strides `strides[k]` and offset `offsets[k]`.
pub(crate) fn merged_layouts<const N: usize>(
    dims: &[usize],
    strides: [&[usize]; N],
    offsets: [usize; N],
) -> [Layout; N] {
    let (dims, strides) = merge_axes(dims, strides);
    std::array::from_fn(|k| Layout::from_parts(&dims, &strides[k]).with_offset(offsets[k]))
}

/// [`merged_layouts`] as kernel arguments.
pub(crate) fn kernel_layouts<const N: usize>(
    dims: &[usize],
    strides: [&[usize]; N],
    offsets: [usize; N],
) -> [KernelLayout; N] {
    merged_layouts(dims, strides, offsets).map(|layout| KernelLayout::from(&layout))
}

/// Strides over the input's dims that address the reduced output (contiguous over the
/// kept axes): 0 on reduced axes, the output's row-major strides on kept ones. As the
/// strides of a layout over the input's dims, they map each input position to its
/// group.
pub(crate) fn output_strides(dims: &[usize], axes: &[usize]) -> Vec<usize> {
    let mut strides = vec![0; dims.len()];
    let mut step = 1;
    for axis in (0..dims.len()).rev() {
        if !axes.contains(&axis) {
            strides[axis] = step;
            step *= dims[axis];
        }
    }
    strides
}

/// Row-major strides of `dims`.
pub(crate) fn contiguous_strides(dims: &[usize]) -> Vec<usize> {
    output_strides(dims, &[])
}

/// How the elements of `N` layouts over one set of dims split into the groups of a
/// reduction (or the rows of a softmax) over some axes, for the team kernels of
/// team.cuh: group `o` of layout `k` starts at `outer[k]`'s offset of `o` (row-major
/// over the kept axes, the output's order), and its element `j` (row-major over the
/// reduced axes) lies `inner[k]`'s offset of `j` further.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Groups<const N: usize> {
    /// Per layout: the kept axes, with the layout's offset.
    pub outer: [KernelLayout; N],
    /// Per layout: the reduced axes, offset 0.
    pub inner: [KernelLayout; N],
    /// The number of groups (the output's element count).
    pub count: usize,
    /// The number of elements in a group.
    pub len: usize,
    /// Threads per group: 1, 32 or [`TEAM_BLOCK`].
    pub team: u32,
}

impl<const N: usize> Groups<N> {
    /// The groups of layouts over `dims` with `(strides, offset)` each, reduced over
    /// `axes` (sorted, distinct, below the rank: checked by the caller). The team size
    /// follows the first layout's groups, the one the kernel reads most.
    pub(crate) fn new(dims: &[usize], layouts: [(&[usize], usize); N], axes: &[usize]) -> Self {
        let (outer, inner) = split(dims, layouts, axes);
        let count = outer[0].num_elements();
        let len = inner[0].num_elements();
        // Whether a group of the first layout is read at consecutive addresses.
        let unit_stride = inner[0].strides().last().is_none_or(|&s| s == 1);
        Self {
            outer: outer.map(|layout| KernelLayout::from(&layout)),
            inner: inner.map(|layout| KernelLayout::from(&layout)),
            count,
            len,
            team: team_size(count, len, unit_stride),
        }
    }

    /// The launch of a team kernel over these groups: blocks of [`TEAM_BLOCK`]
    /// threads, as many as the groups need up to a bound (the kernels loop over groups
    /// with a grid stride).
    pub(crate) fn launch_config(&self) -> LaunchConfig {
        let per_block = (TEAM_BLOCK / self.team) as usize;
        let blocks = self.count.div_ceil(per_block).clamp(1, MAX_BLOCKS);
        LaunchConfig {
            grid_dim: (blocks as u32, 1, 1),
            block_dim: (TEAM_BLOCK, 1, 1),
            shared_mem_bytes: 0,
        }
    }
}

/// The groups of [`Groups::new`] as layouts: per layout, the kept axes (with the
/// layout's offset) and the reduced axes (offset 0), each with its axes merged.
fn split<const N: usize>(
    dims: &[usize],
    layouts: [(&[usize], usize); N],
    axes: &[usize],
) -> ([Layout; N], [Layout; N]) {
    let kept: Vec<usize> = (0..dims.len()).filter(|a| !axes.contains(a)).collect();
    let pick = |which: &[usize], from: &[usize]| -> Vec<usize> { which.iter().map(|&a| from[a]).collect() };
    let kept_strides: [Vec<usize>; N] = std::array::from_fn(|k| pick(&kept, layouts[k].0));
    let reduced_strides: [Vec<usize>; N] = std::array::from_fn(|k| pick(axes, layouts[k].0));
    let outer = merged_layouts(
        &pick(&kept, dims),
        std::array::from_fn(|k| kept_strides[k].as_slice()),
        std::array::from_fn(|k| layouts[k].1),
    );
    let inner = merged_layouts(
        &pick(axes, dims),
        std::array::from_fn(|k| reduced_strides[k].as_slice()),
        [0; N],
    );
    (outer, inner)
}

/// How many threads reduce one group of `len` elements, out of `count` groups:
///
/// - groups read at consecutive addresses (the last axes of a contiguous tensor): a
///   whole block for long groups, or long ones that are too few to fill the GPU
///   otherwise; a warp for those of 16 elements or more, whose reads are then
///   coalesced; one thread for shorter ones;
/// - strided groups (a reduction over an outer axis, such as the columns of a
///   row-major matrix): one thread each, so that neighbouring threads read
///   neighbouring columns, unless the groups are too few to fill the GPU that way.
fn team_size(count: usize, len: usize, unit_stride: bool) -> u32 {
    let block = TEAM_BLOCK as usize;
    let team = if unit_stride {
        if len >= 16 * block || (count < 1024 && len >= block) {
            block
        } else if len >= 16 {
            32
        } else {
            1
        }
    } else if count < 2048 && len >= block {
        block
    } else if count < 16 * 1024 && len >= 32 {
        32
    } else {
        1
    };
    team as u32
}

/// The GPU memory of `buffer`, to read in a kernel of `op`, after checking that it is
/// on `device`'s GPU.
///
/// # Errors
/// `Error::InvalidArgument` when the buffer is on another GPU, or is empty (a kernel
/// is only launched with elements to read, so its views' checks rule that out).
pub(crate) fn slice<'a, E: CudaElement>(
    device: &Cuda,
    buffer: &'a CudaBuffer<E>,
    op: &'static str,
) -> Result<&'a CudaSlice<E::Stored>, Error> {
    let allocation = buffer.allocation().ok_or_else(|| empty(op))?;
    device.check_owner(allocation, op)?;
    Ok(&allocation.slice)
}

/// [`slice`], to write.
pub(crate) fn slice_mut<'a, E: CudaElement>(
    device: &Cuda,
    buffer: &'a mut CudaBuffer<E>,
    op: &'static str,
) -> Result<&'a mut CudaSlice<E::Stored>, Error> {
    let allocation = buffer.allocation_mut().ok_or_else(|| empty(op))?;
    device.check_owner(allocation, op)?;
    Ok(&mut allocation.slice)
}

fn empty(op: &'static str) -> Error {
    Error::InvalidArgument {
        op,
        message: "a buffer the kernel must read or write is empty".into(),
    }
}

/// The buffer offset of row-major position `position` of `layout` (below its element
/// count): `layout_offset` of layout.cuh, on the host.
pub(crate) fn offset_of(layout: &Layout, mut position: usize) -> usize {
    let mut offset = layout.offset();
    for (&size, &stride) in layout.dims().iter().zip(layout.strides()).rev() {
        offset += (position % size) * stride;
        position /= size;
    }
    offset
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merging_keeps_the_order_and_drops_size_one_axes() {
        // A contiguous (2, 1, 3, 4) tensor is one run of 24.
        let (dims, [s]) = merge_axes(&[2, 1, 3, 4], [&[12, 99, 4, 1]]);
        assert_eq!((dims, s), (vec![24], vec![1]));
        // Beside a permuted partner, no axes merge.
        let (dims, [a, b]) = merge_axes(&[2, 3, 4], [&[12, 4, 1], &[1, 2, 8]]);
        assert_eq!((dims, a, b), (vec![2, 3, 4], vec![12, 4, 1], vec![1, 2, 8]));
        // Axes that both partners step through in order merge.
        let (dims, [a, b]) = merge_axes(&[2, 3, 4], [&[12, 4, 1], &[1, 8, 2]]);
        assert_eq!((dims, a, b), (vec![2, 12], vec![12, 1], vec![1, 2]));
        // A broadcast axis merges with a broadcast neighbour only.
        let (dims, [a, b]) = merge_axes(&[5, 2, 3], [&[0, 0, 1], &[6, 3, 1]]);
        assert_eq!((dims, a, b), (vec![10, 3], vec![0, 1], vec![3, 1]));
        let (dims, [s]) = merge_axes(&[1, 1], [&[3, 3]]);
        assert!(dims.is_empty() && s.is_empty());
    }

    #[test]
    fn groups_split_kept_and_reduced_axes() {
        // (2, 3, 4) contiguous, reduced over axis 1: 8 groups of 3, stride 4.
        let g = Groups::new(&[2, 3, 4], [(&[12, 4, 1], 5)], &[1]);
        assert_eq!((g.count, g.len), (8, 3));
        let outer = KernelLayout::from(&Layout::from_parts(&[2, 4], &[12, 1]).with_offset(5));
        assert_eq!(g.outer[0], outer);
        assert_eq!(g.inner[0], KernelLayout::from(&Layout::from_parts(&[3], &[4])));
        assert_eq!(g.team, 1, "short strided groups: a thread each");
        // Over the last two axes: one run of 12 per group.
        let g = Groups::new(&[2, 3, 4], [(&[12, 4, 1], 0)], &[1, 2]);
        assert_eq!((g.count, g.len), (2, 12));
        assert_eq!(g.inner[0], KernelLayout::from(&Layout::from_parts(&[12], &[1])));
        assert_eq!(g.team, 1);
        // Everything: one group, no kept axes.
        let g = Groups::new(&[64, 1000], [(&[1000, 1], 0)], &[0, 1]);
        assert_eq!((g.count, g.len, g.team), (1, 64_000, TEAM_BLOCK));
        assert_eq!(g.outer[0], KernelLayout::from(&Layout::from_parts(&[], &[])));
        // Rows of 100 of a contiguous matrix: a warp each.
        let g = Groups::new(&[5000, 100], [(&[100, 1], 0), (&[1, 5000], 0)], &[1]);
        assert_eq!(g.team, 32);
        assert_eq!(g.inner[1], KernelLayout::from(&Layout::from_parts(&[100], &[5000])));
        assert_eq!(g.launch_config().grid_dim.0, 5000 / 8);
        // An empty reduced axis: groups of none.
        let g = Groups::new(&[3, 0], [(&[0, 1], 0)], &[1]);
        assert_eq!((g.count, g.len), (3, 0));
    }

    #[test]
    fn teams_follow_group_length_and_stride() {
        assert_eq!(team_size(1, 10, true), 1);
        assert_eq!(team_size(1, 300, true), TEAM_BLOCK);
        assert_eq!(team_size(100_000, 300, true), 32);
        assert_eq!(team_size(100_000, 10_000, true), TEAM_BLOCK);
        assert_eq!(team_size(10, 100_000, false), TEAM_BLOCK);
        assert_eq!(team_size(100_000, 64, false), 1);
        assert_eq!(team_size(1000, 64, false), 32);
    }

    #[test]
    fn offsets_of_positions_follow_the_layout() {
        let layout = Layout::from_parts(&[2, 3], &[1, 2]).with_offset(4);
        let offsets: Vec<usize> = (0..6).map(|p| offset_of(&layout, p)).collect();
        assert_eq!(offsets, layout.offsets().collect::<Vec<_>>());
        assert_eq!(offset_of(&Layout::from_parts(&[], &[]).with_offset(3), 0), 3);
        assert_eq!(output_strides(&[2, 3, 4], &[1]), vec![4, 0, 1]);
        assert_eq!(contiguous_strides(&[2, 3, 4]), vec![12, 4, 1]);
    }

    /// Layouts of every kind the kernels meet: contiguous, permuted, broadcast, sliced
    /// with an offset, with size-1 and size-0 axes, up to rank 6.
    fn layouts() -> Vec<Layout> {
        let mut layouts = Vec::new();
        let shapes: [&[usize]; 7] = [
            &[],
            &[5],
            &[2, 3],
            &[3, 1, 4],
            &[2, 3, 4, 2],
            &[2, 1, 3, 2, 2],
            &[2, 2, 1, 3, 2, 2],
        ];
        for dims in shapes {
            let rank = dims.len();
            let contiguous = contiguous_strides(dims);
            layouts.push(Layout::from_parts(dims, &contiguous));
            // Reversed axis order (a transpose), offset by 3.
            let reversed = output_strides(&dims.iter().rev().copied().collect::<Vec<_>>(), &[]);
            let reversed: Vec<usize> = reversed.into_iter().rev().collect();
            layouts.push(Layout::from_parts(dims, &reversed).with_offset(3));
            // Every other axis broadcast; the rest spread out as a slice would be.
            let mixed: Vec<usize> = (0..rank)
                .map(|a| if a % 2 == 0 { 0 } else { contiguous[a] * 2 + 1 })
                .collect();
            layouts.push(Layout::from_parts(dims, &mixed).with_offset(1));
        }
        layouts.push(Layout::from_parts(&[3, 0, 2], &[0, 2, 1]));
        layouts
    }

    /// The buffer offset of the element at multi-index `index` of `layout`.
    fn offset_at(layout: &Layout, index: &[usize]) -> usize {
        layout.offset() + index.iter().zip(layout.strides()).map(|(i, s)| i * s).sum::<usize>()
    }

    /// The multi-index of row-major position `position` over `dims`.
    fn unravel(dims: &[usize], mut position: usize) -> Vec<usize> {
        let mut index = vec![0; dims.len()];
        for (i, &d) in index.iter_mut().zip(dims).rev() {
            *i = position % d;
            position /= d;
        }
        index
    }

    /// What the team kernels compute for group `o`, element `j` (offset of the outer
    /// part plus offset of the inner one) is the element whose kept coordinates are
    /// those of `o` and whose reduced ones are those of `j`, for every layout and set of
    /// axes; and the backward kernels' two layouts give, at each position, its offset
    /// and its group.
    #[test]
    fn groups_and_backward_layouts_address_the_right_elements() {
        for layout in layouts() {
            let dims = layout.dims();
            let rank = dims.len();
            for mask in 0..1usize << rank {
                let axes: Vec<usize> = (0..rank).filter(|a| mask & (1 << a) != 0).collect();
                let kept: Vec<usize> = (0..rank).filter(|a| !axes.contains(a)).collect();
                let kept_dims: Vec<usize> = kept.iter().map(|&a| dims[a]).collect();
                let reduced_dims: Vec<usize> = axes.iter().map(|&a| dims[a]).collect();
                let (outer, inner) = split(dims, [(layout.strides(), layout.offset())], &axes);
                let groups = Groups::new(dims, [(layout.strides(), layout.offset())], &axes);
                assert_eq!(groups.count, kept_dims.iter().product::<usize>());
                assert_eq!(groups.len, reduced_dims.iter().product::<usize>());
                for o in 0..groups.count {
                    for j in 0..groups.len {
                        let mut index = vec![0; rank];
                        for (&a, i) in kept.iter().zip(unravel(&kept_dims, o)) {
                            index[a] = i;
                        }
                        for (&a, i) in axes.iter().zip(unravel(&reduced_dims, j)) {
                            index[a] = i;
                        }
                        let got = offset_of(&outer[0], o) + offset_of(&inner[0], j);
                        assert_eq!(got, offset_at(&layout, &index), "{layout:?} over {axes:?}: ({o}, {j})");
                    }
                }
                let to_out = output_strides(dims, &axes);
                let [input, map] = merged_layouts(dims, [layout.strides(), &to_out], [layout.offset(), 0]);
                for (p, expected) in layout.offsets().enumerate() {
                    assert_eq!(offset_of(&input, p), expected, "{layout:?}: position {p}");
                    let index = unravel(dims, p);
                    let group = kept.iter().fold(0, |o, &a| o * dims[a] + index[a]);
                    assert_eq!(offset_of(&map, p), group, "{layout:?} over {axes:?}: position {p}");
                }
            }
        }
    }

    /// The indexing kernels' `pinned` layout, merged with the index's, plus `k` times the
    /// axis' stride, is the element of the data at the index's position with `axis`
    /// replaced by `k`.
    #[test]
    fn pinned_layouts_pick_the_indexed_elements() {
        for data in layouts() {
            let dims = data.dims();
            for axis in 0..dims.len() {
                let mut index_dims = dims.to_vec();
                index_dims[axis] = 3;
                let index = Layout::from_parts(&index_dims, &output_strides(&index_dims, &[axis]));
                let mut pinned = data.strides().to_vec();
                pinned[axis] = 0;
                let [pinned_layout, index_layout] =
                    merged_layouts(&index_dims, [&pinned, index.strides()], [data.offset(), index.offset()]);
                for (p, expected_index) in index.offsets().enumerate() {
                    assert_eq!(offset_of(&index_layout, p), expected_index);
                    let mut at = unravel(&index_dims, p);
                    for k in 0..dims[axis] {
                        at[axis] = k;
                        let got = offset_of(&pinned_layout, p) + k * data.strides()[axis];
                        assert_eq!(
                            got,
                            offset_at(&data, &at),
                            "{data:?} along {axis}: position {p}, index {k}"
                        );
                    }
                }
            }
        }
    }
}
