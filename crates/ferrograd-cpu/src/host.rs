use ferrograd_device::{BufferLength, Error, SampleKernel, Storage, Unit};
use rand::SeedableRng;
use rand::rngs::StdRng;
use std::sync::{Arc, Mutex};

/// The CPU device: host memory and a seeded random generator.
///
/// Clones share the generator, so every tensor sampled from one `Cpu` (or its clones)
/// draws from one reproducible stream. `Cpu::default()` is seeded with 0.
///
/// ```
/// use ferrograd_cpu::Cpu;
/// let a = Cpu::seed_from_u64(7);
/// let b = Cpu::seed_from_u64(7);
/// # let _ = (a, b);
/// ```
#[derive(Clone, Debug)]
pub struct Cpu {
    rng: Arc<Mutex<StdRng>>,
}

impl Cpu {
    /// A CPU device whose random generator starts from `seed`.
    pub fn seed_from_u64(seed: u64) -> Self {
        Self {
            rng: Arc::new(Mutex::new(StdRng::seed_from_u64(seed))),
        }
    }
}

impl Cpu {
    /// Frees the buffers kept for reuse (PyTorch's `empty_cache`, for host memory).
    /// Buffers in use are not affected.
    pub fn empty_cache(&self) {
        cache::clear();
    }

    /// The bytes of freed buffers kept for reuse.
    pub fn cached_bytes(&self) -> usize {
        cache::bytes()
    }
}

impl Default for Cpu {
    fn default() -> Self {
        Self::seed_from_u64(0)
    }
}

/// A buffer in host memory. Large buffers go back to a cache when dropped, so the
/// next op of the same size reuses memory that is already mapped (see [`Cpu::empty_cache`]).
#[derive(Clone, Debug, PartialEq)]
pub struct CpuBuffer<E: Copy + Send + 'static>(pub(crate) Vec<E>);

impl<E: Copy + Send + 'static> Default for CpuBuffer<E> {
    /// An empty buffer (no allocation).
    fn default() -> Self {
        CpuBuffer(Vec::new())
    }
}

impl<E: Copy + Send + 'static> Drop for CpuBuffer<E> {
    fn drop(&mut self) {
        cache::give_back(std::mem::take(&mut self.0));
    }
}

/// Freed buffers, by element type and capacity.
///
/// Fresh memory from the system costs a page fault per 4 KiB on first touch: for a
/// 32 MiB output that is several times the cost of the op itself. Reusing freed
/// buffers of the same size skips it. Small buffers go to a pool of the thread that
/// freed them ([`small`]): a traced op on a small tensor costs a few hundred
/// nanoseconds, of which `malloc` and `free` were a large share.
///
/// A large buffer is kept only if an allocation of its size has come to the cache
/// before (the size is "wanted"), and only the [`MAX_SIZES`] sizes asked for most
/// recently are: a buffer of a size nobody allocates again (a sparse gradient's rows,
/// whose number changes every step) would otherwise stay cached for good, each step
/// would take fresh pages for the next one, and the cache would grow to [`MAX_BYTES`]
/// of buffers that are never reused. Freed at once, such a buffer goes back to the
/// system allocator, which hands the same memory out again.
mod cache {
    use std::any::{Any, TypeId};
    use std::collections::HashMap;
    use std::sync::{LazyLock, Mutex};

    /// Buffers below this many bytes are left to the system allocator.
    const MIN_BYTES: usize = 64 * 1024;
    /// The most memory the cache holds; beyond it, the sizes asked for least recently
    /// are freed first, then freed buffers go back to the system.
    const MAX_BYTES: usize = 1 << 30;
    /// The most sizes tracked; asking for one more forgets (and frees the buffers of)
    /// the one asked for least recently. A training step cycles through a fixed set of
    /// sizes, which must fit, or each would be forgotten just before it is reused.
    pub(crate) const MAX_SIZES: usize = 256;

    type Key = (TypeId, usize);

    /// Freed buffers of one size, and when that size was last asked for.
    struct Size {
        buffers: Vec<Box<dyn Any + Send>>,
        /// The bytes of each buffer.
        bytes: usize,
        last_asked: u64,
    }

    #[derive(Default)]
    struct Pool {
        sizes: HashMap<Key, Size>,
        bytes: usize,
        /// Counts allocations that came to the cache: the clock of `last_asked`.
        asks: u64,
    }

    impl Pool {
        /// Forgets the size asked for least recently, other than `keep`, freeing its
        /// buffers; false when there is none.
        fn evict_one(&mut self, keep: Key) -> bool {
            let oldest = self
                .sizes
                .iter()
                .filter(|(key, _)| **key != keep)
                .min_by_key(|(_, size)| size.last_asked)
                .map(|(key, _)| *key);
            let Some(size) = oldest.and_then(|key| self.sizes.remove(&key)) else {
                return false;
            };
            self.bytes -= size.buffers.len() * size.bytes;
            true
        }
    }

    static POOL: LazyLock<Mutex<Pool>> = LazyLock::new(Default::default);

    fn pool() -> std::sync::MutexGuard<'static, Pool> {
        // The pool holds only whole Vecs; a panic elsewhere cannot leave it half-updated.
        POOL.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn bytes_of<E>(capacity: usize) -> usize {
        capacity * size_of::<E>()
    }

    /// A Vec with capacity `len` from the cache when one is there, still holding some
    /// or all of its old elements. Either way, `len` becomes a size the cache keeps.
    pub(crate) fn take<E: Send + 'static>(len: usize) -> Option<Vec<E>> {
        if bytes_of::<E>(len) < MIN_BYTES {
            return small::take(len);
        }
        let key = (TypeId::of::<E>(), len);
        let mut pool = pool();
        pool.asks += 1;
        let now = pool.asks;
        let size = pool.sizes.entry(key).or_insert_with(|| Size {
            buffers: Vec::new(),
            bytes: bytes_of::<E>(len),
            last_asked: now,
        });
        size.last_asked = now;
        let Some(found) = size.buffers.pop() else {
            if pool.sizes.len() > MAX_SIZES {
                pool.evict_one(key);
            }
            return None;
        };
        pool.bytes -= bytes_of::<E>(len);
        // Returned as it was given back: its elements are old values, which a caller
        // that overwrites everything need not clear (`try_vec_for_overwrite`).
        found.downcast::<Vec<E>>().ok().map(|vec| *vec)
    }

    pub(crate) fn give_back<E: Copy + Send + 'static>(vec: Vec<E>) {
        let bytes = bytes_of::<E>(vec.capacity());
        if bytes < MIN_BYTES {
            small::give_back(vec);
            return;
        }
        let key = (TypeId::of::<E>(), vec.capacity());
        let mut pool = pool();
        if !pool.sizes.contains_key(&key) {
            // No allocation of this size came to the cache lately: none would reuse it.
            return;
        }
        while pool.bytes + bytes > MAX_BYTES {
            if !pool.evict_one(key) {
                return;
            }
        }
        pool.bytes += bytes;
        if let Some(size) = pool.sizes.get_mut(&key) {
            size.buffers.push(Box::new(vec));
        }
    }

    /// Frees every cached buffer (of the small ones, this thread's).
    pub(crate) fn clear() {
        let mut pool = pool();
        pool.sizes.clear();
        pool.bytes = 0;
        small::clear();
    }

    /// Freed buffers under [`MIN_BYTES`], kept per thread, so taking and giving back
    /// needs no lock. A buffer freed on another thread than it was made on simply
    /// joins that thread's pool.
    pub(crate) mod small {
        use std::any::TypeId;
        use std::cell::RefCell;
        use std::ptr::NonNull;

        /// Buffers of one size kept at most, and bytes kept at most, per thread.
        const PER_SIZE: usize = 16;
        const MAX_BYTES: usize = 4 << 20;
        /// Distinct sizes tracked at most; a model with more shapes pools the first ones.
        const MAX_SIZES: usize = 64;

        /// Freed buffers of one element type and capacity, as raw allocations (the
        /// pool cannot name their type).
        struct Parked {
            type_id: TypeId,
            capacity: usize,
            buffers: Vec<NonNull<u8>>,
            /// Frees one of `buffers` as the `Vec` it was.
            free: unsafe fn(NonNull<u8>, usize),
        }

        #[derive(Default)]
        struct Pool {
            sizes: Vec<Parked>,
            bytes: usize,
        }

        impl Pool {
            fn free_all(&mut self) {
                for parked in &mut self.sizes {
                    for buffer in parked.buffers.drain(..) {
                        // SAFETY: `buffer` came from a `Vec` of the type `free` was
                        // made for, with this capacity, and is freed once (drained).
                        unsafe { (parked.free)(buffer, parked.capacity) };
                    }
                }
                self.bytes = 0;
            }
        }

        impl Drop for Pool {
            fn drop(&mut self) {
                self.free_all();
            }
        }

        unsafe fn free<E>(buffer: NonNull<u8>, capacity: usize) {
            // SAFETY: the caller passes an allocation of a `Vec<E>` with this capacity.
            drop(unsafe { Vec::from_raw_parts(buffer.cast::<E>().as_ptr(), 0, capacity) });
        }

        thread_local! {
            static POOL: RefCell<Pool> = RefCell::new(Pool::default());
        }

        /// A `Vec` of capacity `len` from this thread's pool, if it holds one, full of
        /// its old elements.
        pub(crate) fn take<E: 'static>(len: usize) -> Option<Vec<E>> {
            POOL.try_with(|pool| {
                let mut pool = pool.try_borrow_mut().ok()?;
                let Pool { sizes, bytes } = &mut *pool;
                let parked = sizes
                    .iter_mut()
                    .find(|p| p.capacity == len && p.type_id == TypeId::of::<E>())?;
                let buffer = parked.buffers.pop()?;
                *bytes -= len * size_of::<E>();
                // SAFETY: `buffer` was parked by `give_back::<E>` (the type id matches)
                // from a `Vec<E>` of capacity `len` whose `len` elements were all
                // initialised, and is now taken out, so it has one owner again.
                Some(unsafe { Vec::from_raw_parts(buffer.cast::<E>().as_ptr(), len, len) })
            })
            .ok()
            .flatten()
        }

        /// Parks `vec`'s allocation in this thread's pool, or frees it when the pool
        /// is full (or the thread is exiting). Only full vectors are parked, so every
        /// parked buffer's elements are initialised.
        pub(crate) fn give_back<E: Copy + 'static>(mut vec: Vec<E>) {
            let capacity = vec.capacity();
            if capacity == 0 || size_of::<E>() == 0 || vec.len() != capacity {
                return;
            }
            let _ = POOL.try_with(|pool| {
                let Ok(mut pool) = pool.try_borrow_mut() else {
                    return;
                };
                let Pool { sizes, bytes } = &mut *pool;
                let size = capacity * size_of::<E>();
                if *bytes + size > MAX_BYTES {
                    return;
                }
                let index = match sizes
                    .iter()
                    .position(|p| p.capacity == capacity && p.type_id == TypeId::of::<E>())
                {
                    Some(index) => index,
                    None if sizes.len() < MAX_SIZES => {
                        sizes.push(Parked {
                            type_id: TypeId::of::<E>(),
                            capacity,
                            buffers: Vec::with_capacity(PER_SIZE),
                            free: free::<E>,
                        });
                        sizes.len() - 1
                    }
                    None => return,
                };
                let parked = &mut sizes[index];
                if parked.buffers.len() >= PER_SIZE {
                    return;
                }
                let mut vec = std::mem::ManuallyDrop::new(std::mem::take(&mut vec));
                parked
                    .buffers
                    .push(NonNull::new(vec.as_mut_ptr().cast::<u8>()).expect("a Vec's pointer is never null"));
                *bytes += size;
            });
            // Not parked: `vec` (if still holding its allocation) is freed here.
        }

        /// Frees this thread's pooled buffers.
        pub(crate) fn clear() {
            let _ = POOL.try_with(|pool| {
                if let Ok(mut pool) = pool.try_borrow_mut() {
                    pool.free_all();
                }
            });
        }

        /// The bytes this thread's pool holds.
        #[cfg(test)]
        pub(crate) fn bytes() -> usize {
            POOL.with(|pool| pool.borrow().bytes)
        }
    }

    /// The bytes held by the cache.
    pub(crate) fn bytes() -> usize {
        pool().bytes
    }
}

impl<E: Copy + Send> std::ops::Deref for CpuBuffer<E> {
    type Target = [E];
    fn deref(&self) -> &[E] {
        &self.0
    }
}

impl<E: Copy + Send> std::ops::DerefMut for CpuBuffer<E> {
    fn deref_mut(&mut self) -> &mut [E] {
        &mut self.0
    }
}

/// An empty `Vec` with room for `len` elements (from the buffer cache when it holds one
/// of that size), or `Error::OutOfMemory`.
pub(crate) fn try_vec<E: Unit>(len: usize) -> Result<Vec<E>, Error> {
    if let Some(mut v) = cache::take(len) {
        v.clear();
        return Ok(v);
    }
    let mut v = Vec::new();
    v.try_reserve_exact(len).map_err(|_| Error::OutOfMemory {
        elements: len,
        dtype: E::NAME,
    })?;
    Ok(v)
}

/// A `Vec` of `len` elements with unspecified values, for an output that is then
/// overwritten entirely: a cached buffer keeps its old values instead of being filled.
pub(crate) fn try_vec_for_overwrite<E: Unit>(len: usize) -> Result<Vec<E>, Error> {
    let mut v = match cache::take(len) {
        Some(v) => v,
        None => try_vec(len)?,
    };
    v.resize(len, E::default());
    Ok(v)
}

impl<E: Unit> Storage<E> for Cpu {
    type Vec = CpuBuffer<E>;

    fn try_alloc_zeros(&self, len: usize) -> Result<Self::Vec, Error> {
        self.try_alloc_filled(len, E::default())
    }

    fn try_alloc_for_overwrite(&self, len: usize) -> Result<Self::Vec, Error> {
        try_vec_for_overwrite(len).map(CpuBuffer)
    }

    fn try_alloc_filled(&self, len: usize, value: E) -> Result<Self::Vec, Error> {
        let mut v = try_vec(len)?;
        v.resize(len, value);
        Ok(CpuBuffer(v))
    }

    fn try_fill(&self, buffer: &mut Self::Vec, value: E) -> Result<(), Error> {
        buffer.0.fill(value);
        Ok(())
    }

    fn try_from_host(&self, data: Vec<E>) -> Result<Self::Vec, Error> {
        Ok(CpuBuffer(data))
    }

    fn try_to_host(&self, buffer: &Self::Vec) -> Result<Vec<E>, Error> {
        let mut v = try_vec(buffer.0.len())?;
        v.extend_from_slice(&buffer.0);
        Ok(v)
    }
}

impl<E: Copy + Send + 'static> BufferLength for CpuBuffer<E> {
    fn buffer_length(&self) -> usize {
        self.0.len()
    }
}

impl<E: Unit> SampleKernel<E> for Cpu {
    fn try_sample<Dist: rand::distr::Distribution<E>>(
        &self,
        len: usize,
        distribution: Dist,
    ) -> Result<Self::Vec, Error> {
        let mut v = try_vec(len)?;
        // A poisoned lock only means another thread panicked mid-sample; the generator's
        // state is still a valid state, so keep using it.
        let mut rng = self.rng.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        v.extend((0..len).map(|_| distribution.sample(&mut *rng)));
        Ok(CpuBuffer(v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn freed_large_buffers_are_reused_and_refilled() {
        let cpu = Cpu::default();
        // An odd size no other test uses, so the cached buffer is this one.
        let len = 70_001;
        let first: CpuBuffer<f64> = cpu.try_alloc_filled(len, 3.0).unwrap();
        let address = first.as_ptr();
        drop(first);
        let second: CpuBuffer<f64> = cpu.try_alloc_zeros(len).unwrap();
        assert_eq!(second.as_ptr(), address, "the freed buffer is reused");
        assert!(second.iter().all(|&x| x == 0.0), "and filled anew");
    }

    #[test]
    fn freed_small_buffers_are_reused_by_the_same_thread() {
        let cpu = Cpu::default();
        // An odd size no other test uses.
        let len = 1_237;
        let first: CpuBuffer<f32> = cpu.try_alloc_filled(len, 2.0).unwrap();
        let address = first.as_ptr();
        drop(first);
        let second: CpuBuffer<f32> = cpu.try_alloc_zeros(len).unwrap();
        assert_eq!(second.as_ptr(), address, "the freed buffer is reused");
        assert!(second.iter().all(|&x| x == 0.0), "and filled anew");
        // Another element type of the same byte size is not handed out for it.
        drop(second);
        assert!(cache::small::take::<u32>(len).is_none());
        assert_eq!(cache::small::take::<f32>(len).map(|v| v.capacity()), Some(len));
        // At most PER_SIZE buffers of one size are kept; the rest are freed.
        let many: Vec<CpuBuffer<f64>> = (0..40).map(|_| cpu.try_alloc_zeros(333).unwrap()).collect();
        let before = cache::small::bytes();
        drop(many);
        assert_eq!(cache::small::bytes() - before, 16 * 333 * 8);
        cpu.empty_cache();
        assert_eq!(cache::small::bytes(), 0);
        assert!(cache::small::take::<f64>(333).is_none());
    }

    #[test]
    fn large_buffers_of_sizes_not_asked_for_lately_are_freed() {
        // Odd sizes no other test uses. (Only what is *not* kept is checked: another
        // test's `empty_cache` can only forget more.)
        let buffer = |len: usize| vec![1.0f64; len];
        // A size no allocation asked for: a sparse gradient's rows, say.
        let len = 70_003;
        cache::give_back(buffer(len));
        assert!(cache::take::<f64>(len).is_none(), "a size never asked for is not kept");
        // Asked for once, then MAX_SIZES other sizes: it is forgotten.
        let len = 70_005;
        assert!(cache::take::<f64>(len).is_none());
        for other in 0..cache::MAX_SIZES {
            assert!(cache::take::<f64>(80_001 + 2 * other).is_none());
        }
        cache::give_back(buffer(len));
        assert!(
            cache::take::<f64>(len).is_none(),
            "the size asked for least recently is forgotten"
        );
    }

    #[test]
    fn same_seed_same_samples() {
        let a = Cpu::seed_from_u64(3).try_sample(5, rand_distr::StandardNormal).unwrap();
        let b = Cpu::seed_from_u64(3).try_sample(5, rand_distr::StandardNormal).unwrap();
        let c = Cpu::seed_from_u64(4).try_sample(5, rand_distr::StandardNormal).unwrap();
        let _: &CpuBuffer<f64> = &a;
        assert_eq!(a, b);
        assert_ne!(a, c);
    }
}
