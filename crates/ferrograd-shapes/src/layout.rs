use crate::shape::Shape;

/// The largest rank a shape can have.
pub const MAX_RANK: usize = 6;

/// Sizes and strides of a tensor, without its type: what a kernel needs to walk a
/// buffer. Strides are in elements; a stride of 0 repeats an element (a broadcast).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layout {
    rank: usize,
    dims: [usize; MAX_RANK],
    strides: [usize; MAX_RANK],
    offset: usize,
}

impl Layout {
    /// The row-major layout of `shape`.
    #[inline]
    pub fn contiguous<S: Shape>(shape: &S) -> Self {
        // Written out rather than through `from_parts`: every op's result takes this
        // path, and for small tensors the copies were a tenth of an op's cost.
        let dims = shape.concrete();
        let dims = dims.as_ref();
        let mut layout = Self {
            rank: dims.len(),
            dims: [1; MAX_RANK],
            strides: [0; MAX_RANK],
            offset: 0,
        };
        let mut step = 1;
        for axis in (0..dims.len().min(MAX_RANK)).rev() {
            layout.dims[axis] = dims[axis];
            layout.strides[axis] = step;
            step *= dims[axis];
        }
        layout
    }

    /// A layout from sizes and strides of equal length, at most [`MAX_RANK`].
    ///
    /// # Panics
    /// When the lengths differ or exceed [`MAX_RANK`]: both come from a [`Shape`], so
    /// this is a bug in the caller, not bad user data.
    #[inline]
    pub fn from_parts(dims: &[usize], strides: &[usize]) -> Self {
        assert!(dims.len() == strides.len() && dims.len() <= MAX_RANK);
        let mut layout = Self {
            rank: dims.len(),
            dims: [1; MAX_RANK],
            strides: [0; MAX_RANK],
            offset: 0,
        };
        layout.dims[..dims.len()].copy_from_slice(dims);
        layout.strides[..dims.len()].copy_from_slice(strides);
        layout
    }

    /// The same layout starting `offset` elements into the buffer (a slice's view).
    #[inline]
    pub fn with_offset(mut self, offset: usize) -> Self {
        self.offset = offset;
        self
    }

    /// Where element 0 lives in the buffer.
    #[inline]
    pub fn offset(&self) -> usize {
        self.offset
    }

    /// The rank.
    #[inline]
    pub fn rank(&self) -> usize {
        self.rank
    }

    /// The size of each axis.
    #[inline]
    pub fn dims(&self) -> &[usize] {
        &self.dims[..self.rank]
    }

    /// The stride of each axis, in elements.
    #[inline]
    pub fn strides(&self) -> &[usize] {
        &self.strides[..self.rank]
    }

    /// The number of elements the layout addresses (repeats counted).
    #[inline]
    pub fn num_elements(&self) -> usize {
        self.dims().iter().product()
    }

    /// Whether the strides are exactly row-major and the offset 0, so element `i` lives
    /// at offset `i`.
    #[inline]
    pub fn is_contiguous(&self) -> bool {
        if self.offset != 0 {
            return false;
        }
        let mut step = 1;
        for i in (0..self.rank).rev() {
            if self.dims[i] != 1 && self.strides[i] != step {
                return false;
            }
            step *= self.dims[i];
        }
        true
    }

    /// The smallest buffer length that holds every offset the layout addresses;
    /// `usize::MAX` when that length would not fit in a `usize` (huge strides), so a
    /// check against a real buffer's length fails rather than wrapping around.
    #[inline]
    pub fn min_buffer_len(&self) -> usize {
        if self.dims().contains(&0) {
            return 0;
        }
        self.dims()
            .iter()
            .zip(self.strides())
            .fold(self.offset.saturating_add(1), |reach, (d, s)| {
                reach.saturating_add((d - 1).saturating_mul(*s))
            })
    }

    /// Whether every position of the layout addresses its own element: no stride 0 on
    /// an axis longer than 1, and no two axes whose steps interleave. Conservative: a
    /// layout that interleaves axes without collision is reported as repeating, which
    /// only ever makes a caller copy, never write twice.
    pub fn has_unique_offsets(&self) -> bool {
        let mut axes: [(usize, usize); MAX_RANK] = [(0, 0); MAX_RANK];
        let mut count = 0;
        for (&dim, &stride) in self.dims().iter().zip(self.strides()) {
            if dim == 0 {
                return true;
            }
            if dim > 1 {
                axes[count] = (stride, dim);
                count += 1;
            }
        }
        let axes = &mut axes[..count];
        axes.sort_unstable();
        // Walking axes from the smallest step up, each step must clear everything the
        // smaller ones reach.
        let mut reach = 1;
        for &(stride, dim) in axes.iter() {
            if stride < reach {
                return false;
            }
            reach += (dim - 1) * stride;
        }
        true
    }

    /// The buffer offset of every element, in row-major order of the logical index.
    pub fn offsets(&self) -> Offsets<'_> {
        Offsets {
            layout: self,
            index: [0; MAX_RANK],
            offset: self.offset,
            remaining: self.num_elements(),
        }
    }
}

/// Iterator over the buffer offsets of a [`Layout`], in row-major logical order.
#[derive(Clone, Debug)]
pub struct Offsets<'a> {
    layout: &'a Layout,
    index: [usize; MAX_RANK],
    offset: usize,
    remaining: usize,
}

impl Iterator for Offsets<'_> {
    type Item = usize;

    #[inline]
    fn next(&mut self) -> Option<usize> {
        if self.remaining == 0 {
            return None;
        }
        self.remaining -= 1;
        let current = self.offset;
        // Odometer step: bump the last axis, carrying into earlier ones.
        let layout = self.layout;
        for axis in (0..layout.rank).rev() {
            self.index[axis] += 1;
            self.offset += layout.strides[axis];
            if self.index[axis] < layout.dims[axis] {
                break;
            }
            self.offset -= layout.strides[axis] * layout.dims[axis];
            self.index[axis] = 0;
        }
        Some(current)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.remaining, Some(self.remaining))
    }
}

impl ExactSizeIterator for Offsets<'_> {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_follow_strides() {
        // A (2, 3) matrix stored transposed: element (i, j) at j * 2 + i.
        let t = Layout::from_parts(&[2, 3], &[1, 2]);
        assert_eq!(t.offsets().collect::<Vec<_>>(), vec![0, 2, 4, 1, 3, 5]);
        assert!(!t.is_contiguous());
        // A broadcast of a length-3 vector to (2, 3).
        let b = Layout::from_parts(&[2, 3], &[0, 1]);
        assert_eq!(b.offsets().collect::<Vec<_>>(), vec![0, 1, 2, 0, 1, 2]);
        assert_eq!(b.min_buffer_len(), 3);
        let scalar = Layout::from_parts(&[], &[]);
        assert_eq!(scalar.offsets().collect::<Vec<_>>(), vec![0]);
        assert!(Layout::from_parts(&[2, 1, 3], &[3, 7, 1]).is_contiguous());
        // Rows 1..3 of a (3, 2) matrix: a view starting at element 2.
        let rows = Layout::from_parts(&[2, 2], &[2, 1]).with_offset(2);
        assert_eq!(rows.offsets().collect::<Vec<_>>(), vec![2, 3, 4, 5]);
        assert!(!rows.is_contiguous());
        assert_eq!(rows.min_buffer_len(), 6);
        let huge = Layout::from_parts(&[3, 2], &[usize::MAX / 2, 1]);
        assert_eq!(huge.min_buffer_len(), usize::MAX);
    }

    #[test]
    fn unique_offsets() {
        assert!(Layout::from_parts(&[2, 3], &[3, 1]).has_unique_offsets());
        assert!(Layout::from_parts(&[2, 3], &[1, 2]).has_unique_offsets());
        assert!(Layout::from_parts(&[2, 1, 3], &[3, 0, 1]).has_unique_offsets());
        assert!(Layout::from_parts(&[], &[]).has_unique_offsets());
        assert!(Layout::from_parts(&[0, 3], &[0, 0]).has_unique_offsets());
        assert!(!Layout::from_parts(&[2, 3], &[0, 1]).has_unique_offsets());
        // Sliding windows: rows of 3 starting one element apart overlap.
        assert!(!Layout::from_parts(&[4, 3], &[1, 1]).has_unique_offsets());
        assert!(!Layout::from_parts(&[2, 3], &[2, 1]).has_unique_offsets());
    }
}
