use ferrograd_device::{Error, SampleKernel, Storage, Unit};
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
pub struct CpuBuffer<E: Send + 'static>(pub(crate) Vec<E>);

impl<E: Send + 'static> Drop for CpuBuffer<E> {
    fn drop(&mut self) {
        cache::give_back(std::mem::take(&mut self.0));
    }
}

/// Freed large buffers, by element type and capacity.
///
/// Fresh memory from the system costs a page fault per 4 KiB on first touch: for a
/// 32 MiB output that is several times the cost of the op itself. Reusing freed
/// buffers of the same size skips it. Small buffers are not kept: the system
/// allocator already serves them from memory it holds.
mod cache {
    use std::any::{Any, TypeId};
    use std::collections::HashMap;
    use std::sync::{LazyLock, Mutex};

    /// Buffers below this many bytes are left to the system allocator.
    const MIN_BYTES: usize = 64 * 1024;
    /// The most memory the cache holds; beyond it, freed buffers go back to the system.
    const MAX_BYTES: usize = 1 << 30;

    type Key = (TypeId, usize);

    #[derive(Default)]
    struct Pool {
        free: HashMap<Key, Vec<Box<dyn Any + Send>>>,
        bytes: usize,
    }

    static POOL: LazyLock<Mutex<Pool>> = LazyLock::new(Default::default);

    fn pool() -> std::sync::MutexGuard<'static, Pool> {
        // The pool holds only whole Vecs; a panic elsewhere cannot leave it half-updated.
        POOL.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn bytes_of<E>(capacity: usize) -> usize {
        capacity * size_of::<E>()
    }

    /// An empty Vec with capacity `len`, from the cache when one is there.
    pub(crate) fn take<E: Send + 'static>(len: usize) -> Option<Vec<E>> {
        if bytes_of::<E>(len) < MIN_BYTES {
            return None;
        }
        let mut pool = pool();
        let found = pool.free.get_mut(&(TypeId::of::<E>(), len))?.pop()?;
        pool.bytes -= bytes_of::<E>(len);
        let mut vec = *found.downcast::<Vec<E>>().ok()?;
        vec.clear();
        Some(vec)
    }

    pub(crate) fn give_back<E: Send + 'static>(vec: Vec<E>) {
        let bytes = bytes_of::<E>(vec.capacity());
        if bytes < MIN_BYTES || size_of::<E>() == 0 {
            return;
        }
        let mut pool = pool();
        if pool.bytes + bytes > MAX_BYTES {
            return;
        }
        pool.bytes += bytes;
        let key = (TypeId::of::<E>(), vec.capacity());
        pool.free.entry(key).or_default().push(Box::new(vec));
    }

    /// Frees every cached buffer.
    pub(crate) fn clear() {
        let mut pool = pool();
        pool.free.clear();
        pool.bytes = 0;
    }

    /// The bytes held by the cache.
    pub(crate) fn bytes() -> usize {
        pool().bytes
    }
}

impl<E: Send> std::ops::Deref for CpuBuffer<E> {
    type Target = [E];
    fn deref(&self) -> &[E] {
        &self.0
    }
}

impl<E: Send> std::ops::DerefMut for CpuBuffer<E> {
    fn deref_mut(&mut self) -> &mut [E] {
        &mut self.0
    }
}

/// An empty `Vec` with room for `len` elements (from the buffer cache when it holds one
/// of that size), or `Error::OutOfMemory`.
pub(crate) fn try_vec<E: Unit>(len: usize) -> Result<Vec<E>, Error> {
    if let Some(v) = cache::take(len) {
        return Ok(v);
    }
    let mut v = Vec::new();
    v.try_reserve_exact(len).map_err(|_| Error::OutOfMemory {
        elements: len,
        dtype: E::NAME,
    })?;
    Ok(v)
}

impl<E: Unit> Storage<E> for Cpu {
    type Vec = CpuBuffer<E>;

    fn try_alloc_zeros(&self, len: usize) -> Result<Self::Vec, Error> {
        self.try_alloc_filled(len, E::default())
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

    fn len(buffer: &Self::Vec) -> usize {
        buffer.0.len()
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
        // Small buffers are left to the system allocator.
        let small: CpuBuffer<f32> = cpu.try_alloc_zeros(10).unwrap();
        drop(small);
        assert!(cache::take::<f32>(10).is_none());
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
