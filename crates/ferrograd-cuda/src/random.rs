//! Random numbers on a [`Cuda`] device, two ways.
//!
//! - [`SampleKernel::try_sample`] draws on the host with the device's seeded generator
//!   (`StdRng`, exactly as `Cpu` does) and copies the samples to the GPU. It takes any
//!   `rand` distribution, which is Rust code a GPU cannot run, and a model initialised
//!   from `Cuda::seed_from_u64(s)` gets the same weights as from `Cpu::seed_from_u64(s)`.
//!   Sampling happens when a model is built, not in the training loop, so the copy
//!   costs little.
//! - [`Cuda::philox_uniform`] draws uniform numbers on the GPU with Philox-4x32-10, a
//!   counter-based generator: each number is a function of (seed, position) alone, so
//!   each GPU thread computes its own with no state between threads or launches. This is
//!   for random numbers needed at every step, such as dropout masks, which must not
//!   cross to the host and back.

use crate::buffer::CudaBuffer;
use crate::compile::KernelSource;
use crate::device::{Cuda, grid_for, lock};
use crate::element::CudaElement;
use cudarc::driver::PushKernelArg;
use ferrograd_device::ops::dropout::{DropoutKernel, check_probability};
use ferrograd_device::{Dtype, Error, SampleKernel, Storage};
use rand::RngExt;
use rand::rngs::StdRng;
use std::sync::Mutex;

/// `philox.cu`.
pub(crate) const PHILOX: KernelSource = KernelSource {
    name: "philox",
    source: include_str!("philox.cu"),
    functions: &["philox_uniform", "dropout_mask"],
    element_types: &["float", "double"],
};

impl<E: CudaElement> SampleKernel<E> for Cuda {
    /// Draws on the host with the device's generator, then copies to the GPU (see the
    /// [module documentation](self)): the same numbers as `Cpu` seeded alike.
    fn try_sample<Dist: rand::distr::Distribution<E>>(
        &self,
        len: usize,
        distribution: Dist,
    ) -> Result<Self::Vec, Error> {
        self.try_from_host(sample_on_host(&self.rng, len, distribution))
    }
}

impl<E: CudaElement + Dtype> DropoutKernel<E> for Cuda {
    /// Drawn on the GPU with Philox-4x32-10 ([`Cuda::philox_uniform`]'s numbers), keyed
    /// by a seed taken from the device's seeded generator at each call: the mask never
    /// crosses from the host, and a device seeded alike draws the same masks in the
    /// same order (not the CPU's masks: the generators differ).
    fn try_dropout_mask(&self, len: usize, p: f64, scale: E) -> Result<Self::Vec, Error> {
        check_probability(p)?;
        let seed: u64 = lock(&self.rng).random();
        let mut buffer = CudaBuffer::uninit(&self.gpu, len)?;
        let Some(allocation) = buffer.allocation_mut() else {
            return Ok(buffer);
        };
        let kernel = self.gpu.function(&PHILOX, "dropout_mask", E::C_TYPE)?;
        let per_counter = if size_of::<E::Stored>() == 4 { 4 } else { 2 };
        let items = len as u64;
        let scale = scale.to_stored();
        let mut launch = self.gpu.stream.launch_builder(&kernel);
        launch
            .arg(&mut allocation.slice)
            .arg(&items)
            .arg(&seed)
            .arg(&p)
            .arg(&scale);
        // SAFETY: `dropout_mask(T *out, unsigned long long len, unsigned long long seed,
        // double p, T scale)` was compiled with T = E::C_TYPE, the C name of E::Stored,
        // matching the arguments; it writes elements 0 to len - 1 of `out`, whose
        // allocation holds at least `len`.
        unsafe { launch.launch(grid_for(items.div_ceil(per_counter))) }
            .map_err(|e| self.gpu.error("launching dropout_mask", &e))?;
        Ok(buffer)
    }
}

/// `len` samples of `distribution`, drawn one after another from `rng`, as `Cpu` draws them.
fn sample_on_host<E, Dist: rand::distr::Distribution<E>>(
    rng: &Mutex<StdRng>,
    len: usize,
    distribution: Dist,
) -> Vec<E> {
    let mut rng = lock(rng);
    (0..len).map(|_| distribution.sample(&mut *rng)).collect()
}

impl Cuda {
    /// `len` numbers uniform in [0, 1), drawn on the GPU: numbers `offset` to
    /// `offset + len - 1` of the stream of Philox-4x32-10 keyed by `seed`.
    ///
    /// Number `i` of a stream depends only on `seed` and `i`, so a stream may be drawn
    /// in pieces: `offset` 0 for the first `n` numbers, `offset` `n` for the next. An
    /// `f32` takes the top 24 bits of one 32-bit word, an `f64` the top 53 bits of two,
    /// so each value is exact and in [0, 1).
    ///
    /// This does not use the device's seeded generator (that one lives on the host);
    /// the caller chooses the seed and keeps the offset.
    ///
    /// ```no_run
    /// // no_run: needs an NVIDIA GPU and driver.
    /// use ferrograd_cuda::Cuda;
    /// use ferrograd_device::Storage;
    ///
    /// let gpu = Cuda::new(0)?;
    /// let whole = gpu.try_to_host(&gpu.philox_uniform::<f32>(10, 42, 0)?)?;
    /// let mut pieces = gpu.try_to_host(&gpu.philox_uniform::<f32>(3, 42, 0)?)?;
    /// pieces.extend(gpu.try_to_host(&gpu.philox_uniform::<f32>(7, 42, 3)?)?);
    /// assert_eq!(whole, pieces);
    /// # Ok::<(), ferrograd_device::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] when `offset + len` passes the end of the stream
    /// (2^64 numbers); [`Error::OutOfMemory`]; [`Error::Device`] when NVRTC cannot
    /// compile the kernel (or cannot be loaded) or the launch fails.
    pub fn philox_uniform<E: CudaElement + Dtype>(
        &self,
        len: usize,
        seed: u64,
        offset: u64,
    ) -> Result<CudaBuffer<E>, Error> {
        let items = len as u64;
        // The kernel rounds `offset + len` up to a whole counter.
        if offset.checked_add(items).and_then(|end| end.checked_add(4)).is_none() {
            return Err(Error::InvalidArgument {
                op: "philox_uniform",
                message: format!("numbers {offset} to {offset} + {len} pass the end of the stream (2^64 numbers)"),
            });
        }
        let mut buffer = CudaBuffer::uninit(&self.gpu, len)?;
        let Some(allocation) = buffer.allocation_mut() else {
            return Ok(buffer);
        };
        let kernel = self.gpu.function(&PHILOX, "philox_uniform", E::C_TYPE)?;
        let per_counter = if size_of::<E::Stored>() == 4 { 4 } else { 2 };
        let counters = (offset + items).div_ceil(per_counter) - offset / per_counter;
        let mut launch = self.gpu.stream.launch_builder(&kernel);
        launch.arg(&mut allocation.slice).arg(&items).arg(&seed).arg(&offset);
        // SAFETY: `philox_uniform(T *out, unsigned long long len, unsigned long long seed,
        // unsigned long long offset)` was compiled with T = E::C_TYPE, the C name of
        // E::Stored, matching the arguments; it writes elements 0 to len - 1 of `out`,
        // whose allocation holds at least `len`, and offset + len + 4 does not overflow
        // (checked above).
        unsafe { launch.launch(grid_for(counters)) }.map_err(|e| self.gpu.error("launching philox_uniform", &e))?;
        Ok(buffer)
    }
}

/// The host's copy of the generator in `philox.cu`: the reference its GPU output is
/// compared with, and itself checked against the published answers.
#[cfg(test)]
pub(crate) mod host {
    const M0: u32 = 0xD251_1F53;
    const M1: u32 = 0xCD9E_8D57;
    const W0: u32 = 0x9E37_79B9;
    const W1: u32 = 0xBB67_AE85;

    /// Philox-4x32 with 10 rounds.
    pub(crate) fn philox4x32_10(mut counter: [u32; 4], mut key: [u32; 2]) -> [u32; 4] {
        for round in 0..10 {
            if round > 0 {
                key[0] = key[0].wrapping_add(W0);
                key[1] = key[1].wrapping_add(W1);
            }
            let product0 = u64::from(M0) * u64::from(counter[0]);
            let product1 = u64::from(M1) * u64::from(counter[2]);
            let (hi0, lo0) = ((product0 >> 32) as u32, product0 as u32);
            let (hi1, lo1) = ((product1 >> 32) as u32, product1 as u32);
            counter = [hi1 ^ counter[1] ^ key[0], lo1, hi0 ^ counter[3] ^ key[1], lo0];
        }
        counter
    }

    fn words(seed: u64, counter: u64) -> [u32; 4] {
        philox4x32_10(
            [counter as u32, (counter >> 32) as u32, 0, 0],
            [seed as u32, (seed >> 32) as u32],
        )
    }

    /// What `Cuda::philox_uniform::<f32>(len, seed, offset)` returns.
    pub(crate) fn uniform_f32(len: usize, seed: u64, offset: u64) -> Vec<f32> {
        (offset..offset + len as u64)
            .map(|i| (words(seed, i / 4)[(i % 4) as usize] >> 8) as f32 * 2f32.powi(-24))
            .collect()
    }

    /// What `Cuda::philox_uniform::<f64>(len, seed, offset)` returns.
    pub(crate) fn uniform_f64(len: usize, seed: u64, offset: u64) -> Vec<f64> {
        (offset..offset + len as u64)
            .map(|i| {
                let w = words(seed, i / 2);
                let k = 2 * (i % 2) as usize;
                let bits = ((u64::from(w[k]) << 32) | u64::from(w[k + 1])) >> 11;
                bits as f64 * 2f64.powi(-53)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::host::*;
    use super::*;
    use rand::SeedableRng;

    /// philox.cu compiled for the CPU (see `crate::emulation`): its uniform numbers are
    /// the host reference's, and its dropout masks are those numbers compared with `p`.
    #[test]
    fn the_emulated_philox_kernels_match_the_host_reference() {
        type Uniform<T> = unsafe extern "C" fn(*mut T, u64, u64, u64);
        type Mask<T> = unsafe extern "C" fn(*mut T, u64, u64, f64, T);
        let (len, seed, p) = (1003usize, 0x0123_4567_89ab_cdef_u64, 0.3);
        if let Some(library) = crate::emulation::library(&PHILOX, "float") {
            // SAFETY: the kernels' signatures with T = float.
            let (uniform, mask): (Uniform<f32>, Mask<f32>) = unsafe {
                (
                    crate::emulation::kernel(library, "philox_uniform"),
                    crate::emulation::kernel(library, "dropout_mask"),
                )
            };
            let mut drawn = vec![-1.0f32; len];
            // SAFETY: `drawn` holds `len` elements; offset 5 + len does not overflow.
            unsafe { uniform(drawn.as_mut_ptr(), len as u64, seed, 5) };
            assert_eq!(drawn, uniform_f32(len, seed, 5));
            let mut masked = vec![-1.0f32; len];
            // SAFETY: `masked` holds `len` elements.
            unsafe { mask(masked.as_mut_ptr(), len as u64, seed, p, 2.5) };
            let expected: Vec<f32> = uniform_f32(len, seed, 0)
                .iter()
                .map(|&u| if f64::from(u) < p { 0.0 } else { 2.5 })
                .collect();
            assert_eq!(masked, expected);
            let kept = masked.iter().filter(|&&v| v != 0.0).count();
            assert!((600..800).contains(&kept), "{kept} of {len} kept at p = {p}");
        }
        if let Some(library) = crate::emulation::library(&PHILOX, "double") {
            // SAFETY: the kernel's signature with T = double.
            let mask: Mask<f64> = unsafe { crate::emulation::kernel(library, "dropout_mask") };
            let mut masked = vec![-1.0f64; len];
            // SAFETY: `masked` holds `len` elements.
            unsafe { mask(masked.as_mut_ptr(), len as u64, seed, p, 0.5) };
            let expected: Vec<f64> = uniform_f64(len, seed, 0)
                .iter()
                .map(|&u| if u < p { 0.0 } else { 0.5 })
                .collect();
            assert_eq!(masked, expected);
        }
    }

    #[test]
    fn philox_gives_the_published_known_answers() {
        // Random123's kat_vectors, "philox4x32 10": counter, key, expected output.
        let cases = [
            ([0, 0, 0, 0], [0, 0], [0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8]),
            (
                [u32::MAX; 4],
                [u32::MAX; 2],
                [0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd],
            ),
            (
                [0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344],
                [0xa4093822, 0x299f31d0],
                [0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1],
            ),
        ];
        for (counter, key, expected) in cases {
            assert_eq!(
                philox4x32_10(counter, key),
                expected,
                "counter {counter:x?} key {key:x?}"
            );
        }
    }

    #[test]
    fn a_stream_drawn_in_pieces_equals_the_stream_drawn_at_once() {
        for (first, total) in [(0, 13), (1, 13), (3, 9), (5, 5)] {
            let mut pieces = uniform_f32(first, 7, 0);
            pieces.extend(uniform_f32(total - first, 7, first as u64));
            assert_eq!(pieces, uniform_f32(total, 7, 0));
            let mut pieces = uniform_f64(first, 7, 0);
            pieces.extend(uniform_f64(total - first, 7, first as u64));
            assert_eq!(pieces, uniform_f64(total, 7, 0));
        }
    }

    #[test]
    fn uniform_numbers_lie_in_the_unit_interval_with_mean_one_half() {
        let n = 100_000;
        let single = uniform_f32(n, 1, 0);
        let double = uniform_f64(n, 1, 0);
        assert!(single.iter().all(|&u| (0.0..1.0).contains(&u)));
        assert!(double.iter().all(|&u| (0.0..1.0).contains(&u)));
        // The standard error of the mean is 1 / sqrt(12 n) ≈ 0.0009.
        let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
        let single: Vec<f64> = single.into_iter().map(f64::from).collect();
        assert!((mean(&single) - 0.5).abs() < 0.005, "{}", mean(&single));
        assert!((mean(&double) - 0.5).abs() < 0.005, "{}", mean(&double));
        assert_ne!(uniform_f32(8, 1, 0), uniform_f32(8, 2, 0), "the seed matters");
    }

    #[test]
    fn the_gpu_draws_what_the_host_reference_draws() {
        let Some(gpu) = crate::device::test_gpu() else { return };
        for (len, offset) in [(1, 0), (5, 3), (1000, 0), (1001, 7), (300_001, 123_456_789_012)] {
            let single = gpu.philox_uniform::<f32>(len, 42, offset).unwrap();
            assert_eq!(
                gpu.try_to_host(&single).unwrap(),
                uniform_f32(len, 42, offset),
                "f32 {len} from {offset}"
            );
            let double = gpu.philox_uniform::<f64>(len, 42, offset).unwrap();
            assert_eq!(
                gpu.try_to_host(&double).unwrap(),
                uniform_f64(len, 42, offset),
                "f64 {len} from {offset}"
            );
        }
    }

    #[test]
    fn gpu_dropout_masks_are_the_philox_stream_keyed_by_the_device_generator() {
        if crate::device::test_gpu().is_none() {
            return;
        }
        let gpu = Cuda::seed_from_u64(7).unwrap();
        let (len, p) = (10_001, 0.25);
        // The seed the call takes from the device's generator, seeded with 7.
        let seed: u64 = StdRng::seed_from_u64(7).random();
        let mask = gpu
            .try_to_host(&gpu.try_dropout_mask(len, p, 4.0f32 / 3.0).unwrap())
            .unwrap();
        let expected: Vec<f32> = uniform_f32(len, seed, 0)
            .iter()
            .map(|&u| if f64::from(u) < p { 0.0 } else { 4.0 / 3.0 })
            .collect();
        assert_eq!(mask, expected);
        // The next call takes the next seed: a new mask.
        let again = gpu
            .try_to_host(&gpu.try_dropout_mask(len, p, 4.0f32 / 3.0).unwrap())
            .unwrap();
        assert_ne!(mask, again);
        assert!(gpu.try_dropout_mask(3, 1.5, 1.0f64).is_err());
        assert!(gpu.try_dropout_mask(0, 0.5, 2.0f64).unwrap().is_empty());
    }

    #[test]
    fn host_sampling_draws_what_the_cpu_device_draws() {
        // The part of `try_sample` that needs no GPU: the numbers before the copy.
        use ferrograd_cpu::Cpu;
        for seed in [0, 3, 12345] {
            let rng = Mutex::new(StdRng::seed_from_u64(seed));
            let first: Vec<f32> = sample_on_host(&rng, 5, rand_distr::StandardNormal);
            let second: Vec<f64> = sample_on_host(&rng, 4, rand_distr::Uniform::new(-1.0, 1.0).unwrap());
            let cpu = Cpu::seed_from_u64(seed);
            let cpu_first = cpu.try_sample(5, rand_distr::StandardNormal).unwrap();
            let cpu_second = cpu.try_sample(4, rand_distr::Uniform::new(-1.0, 1.0).unwrap()).unwrap();
            assert_eq!(first, cpu.try_to_host(&cpu_first).unwrap());
            assert_eq!(second, cpu.try_to_host(&cpu_second).unwrap());
        }
    }
}
