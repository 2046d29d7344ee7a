//! The caching allocator's bookkeeping: freed GPU allocations by element type and size
//! class, kept for reuse.
//!
//! `cuMemAlloc` and `cuMemFree` cost microseconds each and the free synchronises
//! (PyTorch keeps a cache for the same reason); a training step allocates the same
//! sizes every time, so after the first step every allocation comes from here.
//!
//! Policy:
//! - A request of `n` bytes is rounded up to its size class: the next power of two,
//!   at least [`MIN_CLASS_BYTES`], up to [`LARGE_BYTES`]; above it, the next multiple
//!   of [`LARGE_BYTES`] (2 MiB). So a class wastes less than half of a small request
//!   and less than 2 MiB of a large one, while sizes that differ a little (a last
//!   partial batch) share allocations.
//! - Allocations are not split or merged, and are kept per stored element type (the
//!   allocation is a typed `CudaSlice`), so an `f32` buffer is not reused for `f64`.
//! - There is no limit on what the cache holds; when the GPU is out of memory, the
//!   device frees the whole cache and tries once more before reporting
//!   [`Error::OutOfMemory`](ferrograd_device::Error::OutOfMemory). `Cuda::empty_cache`
//!   frees it on demand.
//!
//! Stream order makes reuse safe without waiting: every allocation, kernel, copy and
//! free of a device goes through its one stream, so work queued on a buffer before it
//! was freed runs before any work queued after it is handed out again.

use std::any::{Any, TypeId};
use std::collections::HashMap;

/// The smallest size class, in bytes (CUDA aligns allocations to 256 bytes anyway).
pub(crate) const MIN_CLASS_BYTES: usize = 512;
/// Requests above this many bytes are rounded to a multiple of it instead of a power of two.
pub(crate) const LARGE_BYTES: usize = 2 << 20;

/// The size class of a request of `bytes` bytes, or `None` if rounding overflows.
pub(crate) fn size_class(bytes: usize) -> Option<usize> {
    if bytes <= LARGE_BYTES {
        Some(bytes.max(MIN_CLASS_BYTES).next_power_of_two())
    } else {
        bytes.checked_next_multiple_of(LARGE_BYTES)
    }
}

/// Freed allocations, each stored with the number of bytes it holds.
#[derive(Default)]
pub(crate) struct Pool {
    free: HashMap<(TypeId, usize), Vec<Box<dyn Any + Send>>>,
    bytes: usize,
}

impl Pool {
    /// A freed allocation of type `A` and size class `class`, if the pool holds one.
    pub(crate) fn take<A: Any + Send>(&mut self, class: usize) -> Option<A> {
        let found = self.free.get_mut(&(TypeId::of::<A>(), class))?.pop()?;
        self.bytes -= class;
        Some(
            *found
                .downcast::<A>()
                .expect("the pool is keyed by the allocation's type"),
        )
    }

    /// Keeps `allocation`, of size class `class`, for reuse.
    pub(crate) fn give_back<A: Any + Send>(&mut self, class: usize, allocation: A) {
        self.bytes += class;
        self.free
            .entry((TypeId::of::<A>(), class))
            .or_default()
            .push(Box::new(allocation));
    }

    /// Empties the pool, returning what it held, so the caller can free it after
    /// releasing the lock (freeing calls the driver).
    pub(crate) fn drain(&mut self) -> Vec<Box<dyn Any + Send>> {
        self.bytes = 0;
        self.free.drain().flat_map(|(_, allocations)| allocations).collect()
    }

    /// The bytes of the allocations held.
    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn size_classes_round_up_to_powers_of_two_then_to_2_mib() {
        assert_eq!(size_class(0), Some(512));
        assert_eq!(size_class(1), Some(512));
        assert_eq!(size_class(512), Some(512));
        assert_eq!(size_class(513), Some(1024));
        assert_eq!(size_class(1000 * 4), Some(4096));
        assert_eq!(size_class(LARGE_BYTES), Some(LARGE_BYTES));
        assert_eq!(size_class(LARGE_BYTES + 1), Some(2 * LARGE_BYTES));
        assert_eq!(size_class(3 * LARGE_BYTES - 1), Some(3 * LARGE_BYTES));
        assert_eq!(size_class(usize::MAX), None);
        // Every class holds a whole number of each stored type (1, 4 and 8 bytes).
        for bytes in [1, 700, 5000, LARGE_BYTES + 3, 10 * LARGE_BYTES + 1] {
            assert_eq!(size_class(bytes).unwrap() % 8, 0);
        }
    }

    #[test]
    fn the_pool_returns_an_allocation_of_the_same_type_and_class_only() {
        let mut pool = Pool::default();
        pool.give_back(1024, vec![1u8; 3]);
        pool.give_back(1024, 7u64);
        assert_eq!(pool.bytes(), 2048);
        assert_eq!(pool.take::<Vec<u8>>(512), None, "another class");
        assert_eq!(pool.take::<Vec<u16>>(1024), None, "another type");
        assert_eq!(pool.take::<Vec<u8>>(1024), Some(vec![1u8; 3]));
        assert_eq!(pool.take::<Vec<u8>>(1024), None, "taken once");
        assert_eq!(pool.bytes(), 1024);
        assert_eq!(pool.drain().len(), 1);
        assert_eq!(pool.bytes(), 0);
        assert_eq!(pool.take::<u64>(1024), None);
    }
}
