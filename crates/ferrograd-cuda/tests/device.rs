//! The device, its memory and its random numbers, on a GPU.
//!
//! Every test but the first needs a GPU: where `Cuda::new(0)` is an error (no driver, no
//! GPU) it prints why and passes, unless the environment variable
//! `FERROGRAD_REQUIRE_GPU` is set, where it fails (so a run on a GPU machine cannot
//! pass by skipping). The kernels also need NVRTC (see the crate documentation).

use ferrograd_cpu::Cpu;
use ferrograd_cuda::{Cuda, CudaBuffer};
use ferrograd_device::{BufferLength, Error, SampleKernel, Storage};
use std::sync::{Mutex, MutexGuard};

/// The GPU tests share GPU 0's cache of freed buffers, whose size some of them check,
/// so they run one at a time.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// GPU 0 (seeded with 0) and the lock, or `None` after printing why the test is skipped.
fn gpu() -> Option<(Cuda, MutexGuard<'static, ()>)> {
    let guard = ONE_AT_A_TIME.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    match Cuda::seed_from_u64(0) {
        Ok(gpu) => Some((gpu, guard)),
        Err(e) if std::env::var_os("FERROGRAD_REQUIRE_GPU").is_some() => {
            panic!("FERROGRAD_REQUIRE_GPU is set, but there is no usable GPU: {e}")
        }
        Err(e) => {
            println!("skipped, no GPU: {e}");
            None
        }
    }
}

/// Lengths around the allocator's size classes: empty, one element, a small class, and
/// one above the 2 MiB threshold for every element type.
const LENGTHS: [usize; 5] = [0, 1, 37, 1000, 2_100_000];

#[test]
fn a_missing_driver_or_gpu_is_an_error_not_a_panic() {
    // Runs everywhere: no ordinal this large exists, with a driver or without.
    let error = Cuda::new(usize::MAX).unwrap_err();
    assert!(matches!(error, Error::Device { .. }), "{error:?}");
    // SAFETY: only tries to open the driver library; nothing in it is called.
    if !unsafe { cudarc::driver::sys::is_culib_present() } {
        let message = Cuda::new(0).unwrap_err().to_string();
        assert!(message.contains("no NVIDIA driver"), "{message}");
        assert!(Cuda::device_count().is_err());
        assert!(Cuda::seed_from_u64(1).is_err());
    } else {
        assert!(error.to_string().contains(&format!("no GPU {}", usize::MAX)), "{error}");
    }
}

#[test]
fn each_element_type_survives_a_round_trip() {
    let Some((gpu, _lock)) = gpu() else { return };
    for len in LENGTHS {
        let floats: Vec<f32> = (0..len).map(|i| i as f32 * 0.5 - 3.0).collect();
        let buffer = gpu.try_from_host(floats.clone()).unwrap();
        assert_eq!(buffer.buffer_length(), len);
        assert_eq!(gpu.try_to_host(&buffer).unwrap(), floats);

        let doubles: Vec<f64> = (0..len).map(|i| (i as f64).sqrt() - 1e300).collect();
        assert_eq!(
            gpu.try_to_host(&gpu.try_from_host(doubles.clone()).unwrap()).unwrap(),
            doubles
        );

        // The full range of usize survives its 64-bit stored form.
        let indices: Vec<usize> = (0..len).map(|i| usize::MAX - i * 7919).collect();
        assert_eq!(
            gpu.try_to_host(&gpu.try_from_host(indices.clone()).unwrap()).unwrap(),
            indices
        );

        let flags: Vec<bool> = (0..len).map(|i| i % 3 == 1).collect();
        assert_eq!(
            gpu.try_to_host(&gpu.try_from_host(flags.clone()).unwrap()).unwrap(),
            flags
        );
    }
    // NaN payloads and signed zeros are copied bit for bit.
    let special = vec![f32::NAN, -0.0, f32::INFINITY, f32::MIN_POSITIVE / 2.0];
    let back = gpu.try_to_host(&gpu.try_from_host(special.clone()).unwrap()).unwrap();
    assert_eq!(
        back.iter().map(|x| x.to_bits()).collect::<Vec<_>>(),
        special.iter().map(|x| x.to_bits()).collect::<Vec<_>>()
    );
}

#[test]
fn zeros_and_fills_set_every_element() {
    let Some((gpu, _lock)) = gpu() else { return };
    for len in LENGTHS {
        // Dirty the cache first, so that zeros must clear a reused buffer.
        drop(gpu.try_alloc_filled(len, 9.0f32).unwrap());
        assert_eq!(
            gpu.try_to_host(&Storage::<f32>::try_alloc_zeros(&gpu, len).unwrap())
                .unwrap(),
            vec![0.0f32; len]
        );
        assert_eq!(
            gpu.try_to_host(&gpu.try_alloc_filled(len, 2.5f32).unwrap()).unwrap(),
            vec![2.5f32; len]
        );
        assert_eq!(
            gpu.try_to_host(&gpu.try_alloc_filled(len, -1e-300f64).unwrap())
                .unwrap(),
            vec![-1e-300f64; len]
        );
        assert_eq!(
            gpu.try_to_host(&gpu.try_alloc_filled(len, usize::MAX).unwrap())
                .unwrap(),
            vec![usize::MAX; len]
        );
        assert_eq!(
            gpu.try_to_host(&gpu.try_alloc_filled(len, true).unwrap()).unwrap(),
            vec![true; len]
        );
        assert_eq!(
            gpu.try_to_host(&Storage::<bool>::try_alloc_zeros(&gpu, len).unwrap())
                .unwrap(),
            vec![false; len]
        );

        let mut buffer = gpu.try_alloc_filled(len, 1.0f64).unwrap();
        // -0.0 is not all zero bytes: the kernel, not a memset, must write its sign.
        gpu.try_fill(&mut buffer, -0.0).unwrap();
        assert!(
            gpu.try_to_host(&buffer)
                .unwrap()
                .iter()
                .all(|x| x.to_bits() == (-0.0f64).to_bits())
        );
        gpu.try_fill(&mut buffer, 0.0).unwrap();
        assert!(gpu.try_to_host(&buffer).unwrap().iter().all(|x| x.to_bits() == 0));
    }
}

#[test]
fn freed_buffers_are_reused_by_size_class_and_empty_cache_frees_them() {
    let Some((gpu, _lock)) = gpu() else { return };
    gpu.empty_cache();
    assert_eq!(gpu.cached_bytes(), 0);

    // 3000 f32 are 12 000 bytes: the 16 KiB class.
    let first = gpu.try_alloc_filled(3000, 7.0f32).unwrap();
    assert_eq!(gpu.cached_bytes(), 0);
    drop(first);
    assert_eq!(gpu.cached_bytes(), 16 * 1024);

    // 4000 f32 (16 000 bytes) share the class: the freed buffer is handed out as it
    // is, its old values still there.
    let reused: CudaBuffer<f32> = gpu.try_alloc_for_overwrite(4000).unwrap();
    assert_eq!(gpu.cached_bytes(), 0, "taken from the cache");
    assert_eq!(&gpu.try_to_host(&reused).unwrap()[..3000], &[7.0f32; 3000][..]);

    // Another element type of the same size does not take it.
    drop(reused);
    let other: CudaBuffer<usize> = gpu.try_alloc_for_overwrite(2000).unwrap();
    assert_eq!(gpu.cached_bytes(), 16 * 1024);
    drop(other);
    assert_eq!(gpu.cached_bytes(), 32 * 1024);

    // Above 2 MiB, classes are multiples of 2 MiB: 3 MiB of f64 take 4 MiB.
    drop(gpu.try_alloc_filled(3 << 17, 0.5f64).unwrap());
    assert_eq!(gpu.cached_bytes(), 32 * 1024 + (4 << 20));

    gpu.empty_cache();
    assert_eq!(gpu.cached_bytes(), 0);
    // Allocation goes on after the cache is freed.
    assert_eq!(
        gpu.try_to_host(&gpu.try_alloc_filled(3000, 1.0f32).unwrap()).unwrap(),
        vec![1.0f32; 3000]
    );
}

#[test]
fn handles_on_one_gpu_share_its_cache_and_buffers() {
    let Some((gpu, _lock)) = gpu() else { return };
    let other = Cuda::new(0).unwrap();
    gpu.empty_cache();
    drop(other.try_alloc_filled(100, true).unwrap());
    assert_eq!(gpu.cached_bytes(), 512, "one cache per GPU");
    let mut buffer = other.try_alloc_filled(10, 3.0f32).unwrap();
    gpu.try_fill(&mut buffer, 4.0).unwrap();
    assert_eq!(gpu.try_to_host(&buffer).unwrap(), vec![4.0f32; 10]);
    assert!(format!("{buffer:?}").contains("cuda:0"), "{buffer:?}");
    assert_eq!(other.ordinal(), 0);
    assert!(!gpu.name().is_empty());
    gpu.synchronize().unwrap();
}

#[test]
fn a_clone_is_a_separate_copy() {
    let Some((gpu, _lock)) = gpu() else { return };
    let mut original = gpu.try_from_host(vec![1.0f64, 2.0, 3.0]).unwrap();
    let copy = original.clone();
    gpu.try_fill(&mut original, 5.0).unwrap();
    assert_eq!(gpu.try_to_host(&copy).unwrap(), [1.0, 2.0, 3.0]);
    assert_eq!(gpu.try_to_host(&original).unwrap(), [5.0; 3]);
    let empty = CudaBuffer::<bool>::default();
    assert!(empty.try_clone().unwrap().is_empty());
    assert_eq!(gpu.try_to_host(&empty).unwrap(), Vec::<bool>::new());
}

#[test]
fn seeded_sampling_draws_what_the_cpu_draws() {
    let Some((_, _lock)) = gpu() else { return };
    for seed in [0, 5, 987_654_321] {
        let gpu = Cuda::seed_from_u64(seed).unwrap();
        let cpu = Cpu::seed_from_u64(seed);
        let on_gpu: CudaBuffer<f32> = gpu.try_sample(1000, rand_distr::StandardNormal).unwrap();
        let on_cpu = cpu.try_sample(1000, rand_distr::StandardNormal).unwrap();
        assert_eq!(gpu.try_to_host(&on_gpu).unwrap(), cpu.try_to_host(&on_cpu).unwrap());
        // A clone shares the generator: its draw continues the same stream.
        let uniform = rand_distr::Uniform::new(0.0f64, 1.0).unwrap();
        let on_gpu = gpu.clone().try_sample(10, uniform).unwrap();
        let on_cpu = cpu.try_sample(10, uniform).unwrap();
        assert_eq!(gpu.try_to_host(&on_gpu).unwrap(), cpu.try_to_host(&on_cpu).unwrap());
    }
}

#[test]
fn philox_rejects_a_range_past_the_end_of_the_stream() {
    let Some((gpu, _lock)) = gpu() else { return };
    let error = gpu.philox_uniform::<f32>(10, 0, u64::MAX - 5).unwrap_err();
    assert!(
        matches!(
            error,
            Error::InvalidArgument {
                op: "philox_uniform",
                ..
            }
        ),
        "{error:?}"
    );
    assert!(gpu.philox_uniform::<f64>(0, 0, 0).unwrap().is_empty());
}
