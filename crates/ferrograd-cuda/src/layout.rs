//! Layouts as kernel arguments.

use cudarc::driver::DeviceRepr;
use ferrograd_device::Layout;
use ferrograd_shapes::MAX_RANK;

/// The CUDA C side of [`KernelLayout`]: the `Layout` struct and `layout_offset`, which
/// maps a row-major position to its buffer offset. A source that reads strided views
/// starts with it: `concat!(include_str!("layout.cuh"), include_str!("my_kernel.cu"))`.
#[allow(dead_code)] // Documentation of the pattern; sources include the file directly.
pub(crate) const LAYOUT_C: &str = include_str!("layout.cuh");

/// A [`Layout`] as a kernel takes it by value: `struct Layout` of `layout.cuh`, field
/// for field (`repr(C)`, 64-bit sizes and strides, unused axes of size 1 and stride 0).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct KernelLayout {
    rank: u32,
    unused: u32,
    dims: [u64; MAX_RANK],
    strides: [u64; MAX_RANK],
    offset: u64,
}

// SAFETY: `KernelLayout` is `repr(C)`, `Copy`, holds only integers (no pointers or
// padding: two u32 then u64s), and matches `struct Layout` of layout.cuh exactly, so
// the kernel reads what was written.
unsafe impl DeviceRepr for KernelLayout {}

impl From<&Layout> for KernelLayout {
    fn from(layout: &Layout) -> Self {
        let mut kernel = Self {
            rank: layout.rank() as u32,
            unused: 0,
            dims: [1; MAX_RANK],
            strides: [0; MAX_RANK],
            offset: layout.offset() as u64,
        };
        for (axis, (&dim, &stride)) in layout.dims().iter().zip(layout.strides()).enumerate() {
            kernel.dims[axis] = dim as u64;
            kernel.strides[axis] = stride as u64;
        }
        kernel
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_layout_keeps_its_sizes_strides_and_offset() {
        let layout = Layout::from_parts(&[2, 3], &[1, 2]).with_offset(5);
        let kernel = KernelLayout::from(&layout);
        assert_eq!((kernel.rank, kernel.offset), (2, 5));
        assert_eq!(kernel.dims, [2, 3, 1, 1, 1, 1]);
        assert_eq!(kernel.strides, [1, 2, 0, 0, 0, 0]);
        // 8 + 6 × 8 + 6 × 8 + 8 bytes, no padding: what the CUDA struct expects.
        assert_eq!(std::mem::size_of::<KernelLayout>(), 112);
    }
}
