//! What the op kernels' host sides share: ownership checks, device pointers, and the
//! flags `elementwise.cuh` reads (whether a view is contiguous, how an output is
//! written).

use crate::buffer::CudaBuffer;
use crate::device::Cuda;
use crate::element::CudaElement;
use cudarc::driver::{CudaStream, DevicePtr, DevicePtrMut, SyncOnDrop};
use ferrograd_device::{Error, Layout};

/// `EW_STORE` of elementwise.cuh: `out[i] = value`, into a new dense buffer.
pub(crate) const STORE: i32 = 0;

/// How a kernel adds into `out` through `layout` (`ew_write` of elementwise.cuh):
/// `EW_ADD_DENSE` (1) for a contiguous layout, `EW_ADD_STRIDED` (2) for one that
/// addresses each element once, `EW_ADD_ATOMIC` (3) with `atomicAdd` for one that may
/// repeat elements ([`Layout::has_unique_offsets`] is conservative: a layout it cannot
/// prove unique is added into atomically, which is correct either way).
pub(crate) fn add_mode(layout: &Layout) -> i32 {
    if layout.is_contiguous() {
        1
    } else if layout.has_unique_offsets() {
        2
    } else {
        3
    }
}

/// The `contiguous` flag of `ew_at`: 1 when position `i` of `layout` is element `i`.
pub(crate) fn contiguous(layout: &Layout) -> i32 {
    i32::from(layout.is_contiguous())
}

/// The row-major layout of `dims`: how a kernel reads a contiguous buffer (an op's
/// saved output) through the same code as a strided view.
pub(crate) fn row_major(dims: &[usize]) -> Layout {
    let mut strides = vec![0; dims.len()];
    let mut step = 1usize;
    for (stride, &dim) in strides.iter_mut().zip(dims).rev() {
        *stride = step;
        step = step.saturating_mul(dim);
    }
    Layout::from_parts(dims, &strides)
}

impl Cuda {
    /// `Ok` when `buffer` is empty (it belongs to no GPU) or memory of this handle's GPU;
    /// else an error naming `op` and the argument `role`.
    pub(crate) fn check_buffer<E: CudaElement>(
        &self,
        buffer: &CudaBuffer<E>,
        op: &'static str,
        role: &str,
    ) -> Result<(), Error> {
        match buffer.allocation() {
            Some(allocation) => self.check_owner(allocation, op).map_err(|e| match e {
                Error::InvalidArgument { op, message } => Error::InvalidArgument {
                    op,
                    message: format!("{role}: {message}"),
                },
                other => other,
            }),
            None => Ok(()),
        }
    }
}

/// The device address of `buffer`, for a kernel that reads it, with the guard to drop
/// after the launch is queued; address 0 for an empty buffer (which a kernel is only
/// given when it runs on no element, or never reads that argument).
pub(crate) fn read_ptr<'a, E: CudaElement>(
    stream: &'a CudaStream,
    buffer: &'a CudaBuffer<E>,
) -> (u64, Option<SyncOnDrop<'a>>) {
    match buffer.allocation() {
        Some(allocation) => {
            let (pointer, guard) = allocation.slice.device_ptr(stream);
            (pointer, Some(guard))
        }
        None => (0, None),
    }
}

/// As [`read_ptr`], for a kernel that writes `buffer` (and may read it).
pub(crate) fn write_ptr<'a, E: CudaElement>(
    stream: &'a CudaStream,
    buffer: &'a mut CudaBuffer<E>,
) -> (u64, Option<SyncOnDrop<'a>>) {
    match buffer.allocation_mut() {
        Some(allocation) => {
            let (pointer, guard) = allocation.slice.device_ptr_mut(stream);
            (pointer, Some(guard))
        }
        None => (0, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_follow_the_layout() {
        assert_eq!(add_mode(&Layout::from_parts(&[2, 3], &[3, 1])), 1);
        assert_eq!(add_mode(&Layout::from_parts(&[2, 3], &[1, 2])), 2);
        assert_eq!(add_mode(&Layout::from_parts(&[2, 3], &[0, 1])), 3);
        assert_eq!(add_mode(&Layout::from_parts(&[2, 3], &[3, 1]).with_offset(1)), 2);
        assert_eq!(contiguous(&Layout::from_parts(&[2, 3], &[3, 1])), 1);
        assert_eq!(contiguous(&Layout::from_parts(&[2, 3], &[0, 1])), 0);
        assert_eq!(row_major(&[2, 3, 4]), Layout::from_parts(&[2, 3, 4], &[12, 4, 1]));
        assert!(row_major(&[]).is_contiguous());
    }
}
