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
        Self { rng: Arc::new(Mutex::new(StdRng::seed_from_u64(seed))) }
    }
}

impl Default for Cpu {
    fn default() -> Self {
        Self::seed_from_u64(0)
    }
}

/// A buffer in host memory.
///
/// A type of its own rather than a bare `Vec`, so that a cache of freed buffers can be
/// added behind allocation without changing any signature.
#[derive(Clone, Debug, PartialEq)]
pub struct CpuBuffer<E>(pub(crate) Vec<E>);

impl<E> std::ops::Deref for CpuBuffer<E> {
    type Target = [E];
    fn deref(&self) -> &[E] {
        &self.0
    }
}

impl<E> std::ops::DerefMut for CpuBuffer<E> {
    fn deref_mut(&mut self) -> &mut [E] {
        &mut self.0
    }
}

/// A `Vec` with room for `len` elements, or `Error::OutOfMemory`.
pub(crate) fn try_vec<E: Unit>(len: usize) -> Result<Vec<E>, Error> {
    let mut v = Vec::new();
    v.try_reserve_exact(len).map_err(|_| Error::OutOfMemory { elements: len, dtype: E::NAME })?;
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
    fn same_seed_same_samples() {
        let a = Cpu::seed_from_u64(3).try_sample(5, rand_distr::StandardNormal).unwrap();
        let b = Cpu::seed_from_u64(3).try_sample(5, rand_distr::StandardNormal).unwrap();
        let c = Cpu::seed_from_u64(4).try_sample(5, rand_distr::StandardNormal).unwrap();
        let _: &CpuBuffer<f64> = &a;
        assert_eq!(a, b);
        assert_ne!(a, c);
    }
}
