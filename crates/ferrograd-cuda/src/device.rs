use crate::allocator::{Pool, size_class};
use crate::buffer::Allocation;
use crate::compile::KernelSource;
use crate::element::CudaElement;
use cudarc::driver::{CudaContext, CudaFunction, CudaSlice, CudaStream, DriverError, LaunchConfig, sys};
use cudarc::nvrtc::Ptx;
use ferrograd_device::Error;
use rand::SeedableRng;
use rand::rngs::StdRng;
use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, Weak};

/// An NVIDIA GPU: its memory, its kernels, and a seeded random generator.
///
/// Everything of one GPU is shared by every `Cuda` on it: [`Cuda::new`] twice with the
/// same ordinal gives two handles on one context, one stream, one cache of freed
/// buffers and one set of compiled kernels. Only the random generator belongs to the
/// handle (and its clones): two handles seeded alike draw the same numbers.
///
/// All work of a GPU is queued on its one stream (the context's default stream), in
/// the order it is asked for; the host waits only when it reads results back
/// ([`Storage::try_to_host`](ferrograd_device::Storage::try_to_host)) or calls
/// [`Cuda::synchronize`]. So an error in a kernel may surface at the next such wait
/// rather than where the kernel was queued.
///
/// ```no_run
/// // no_run: needs an NVIDIA GPU and driver.
/// use ferrograd_cuda::Cuda;
/// use ferrograd_device::Storage;
///
/// let gpu = Cuda::seed_from_u64(0)?;
/// let buffer = gpu.try_from_host(vec![1.0f32, 2.0, 3.0])?;
/// assert_eq!(gpu.try_to_host(&buffer)?, [1.0, 2.0, 3.0]);
/// # Ok::<(), ferrograd_device::Error>(())
/// ```
#[derive(Clone)]
pub struct Cuda {
    pub(crate) gpu: Arc<Gpu>,
    /// The same generator as `Cpu`'s, so both devices seeded alike draw the same numbers.
    pub(crate) rng: Arc<Mutex<StdRng>>,
}

impl Cuda {
    /// The GPU numbered `ordinal` (0 is the first, in the driver's order, which
    /// `CUDA_VISIBLE_DEVICES` can change), its random generator seeded with 0 like
    /// `Cpu::default()`.
    ///
    /// # Errors
    /// [`Error::Device`] when the NVIDIA driver cannot be loaded, is older than CUDA
    /// 13.0, finds no GPU or fewer than `ordinal + 1`, or fails to open the GPU.
    pub fn new(ordinal: usize) -> Result<Self, Error> {
        Self::with_seed(ordinal, 0)
    }

    /// The first GPU (ordinal 0), its random generator seeded with `seed`: the same
    /// generator and seeding as `Cpu::seed_from_u64`, so sampled tensors hold the same
    /// numbers on both devices.
    ///
    /// # Errors
    /// As [`Cuda::new`].
    pub fn seed_from_u64(seed: u64) -> Result<Self, Error> {
        Self::with_seed(0, seed)
    }

    /// The GPU numbered `ordinal`, its random generator seeded with `seed`.
    ///
    /// # Errors
    /// As [`Cuda::new`].
    pub fn with_seed(ordinal: usize, seed: u64) -> Result<Self, Error> {
        Ok(Self {
            gpu: Gpu::get(ordinal)?,
            rng: Arc::new(Mutex::new(StdRng::seed_from_u64(seed))),
        })
    }

    /// How many GPUs the driver sees (after `CUDA_VISIBLE_DEVICES`).
    ///
    /// # Errors
    /// [`Error::Device`] when the driver cannot be loaded or is older than CUDA 13.0. A
    /// driver without GPUs is an error too (`CUDA_ERROR_NO_DEVICE`), not zero.
    pub fn device_count() -> Result<usize, Error> {
        require_driver()?;
        let count = CudaContext::device_count().map_err(|e| driver_error("cuda", "counting the GPUs", &e))?;
        Ok(usize::try_from(count).unwrap_or(0))
    }

    /// The GPU's ordinal, as given to [`Cuda::new`].
    pub fn ordinal(&self) -> usize {
        self.gpu.ordinal
    }

    /// The GPU's name, as the driver reports it: `NVIDIA H100 80GB HBM3`.
    pub fn name(&self) -> &str {
        &self.gpu.name
    }

    /// The GPU's compute capability (major, minor): `(9, 0)` for an H100. Kernels are
    /// compiled for exactly this architecture.
    pub fn compute_capability(&self) -> (i32, i32) {
        self.gpu.compute_capability
    }

    /// Waits until every operation queued on the GPU so far has finished.
    ///
    /// # Errors
    /// [`Error::Device`] with the error of a queued operation that failed (an illegal
    /// memory access, say), which CUDA reports only at such a wait.
    pub fn synchronize(&self) -> Result<(), Error> {
        self.gpu
            .stream
            .synchronize()
            .map_err(|e| self.gpu.error("waiting for the queued work", &e))
    }

    /// Frees the GPU's cache of freed buffers (PyTorch's `torch.cuda.empty_cache()`),
    /// for another process or library to use that memory. Buffers in use are not
    /// affected. Allocation does this by itself when the GPU runs out of memory.
    pub fn empty_cache(&self) {
        self.gpu.empty_cache();
    }

    /// The bytes of freed buffers the GPU's cache holds for reuse.
    pub fn cached_bytes(&self) -> usize {
        self.gpu.pool().bytes()
    }
}

impl fmt::Debug for Cuda {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cuda")
            .field("ordinal", &self.gpu.ordinal)
            .field("name", &self.gpu.name)
            .field("compute_capability", &self.gpu.compute_capability)
            .finish_non_exhaustive()
    }
}

/// What every `Cuda` handle on one GPU shares.
pub(crate) struct Gpu {
    pub(crate) ordinal: usize,
    name: String,
    compute_capability: (i32, i32),
    /// The context's default stream: one per GPU, so every operation of ferrograd on the
    /// GPU runs in the order it was queued, including frees and reuses of cached
    /// buffers, and cudarc needs no events to order work between streams.
    pub(crate) stream: Arc<CudaStream>,
    pool: Mutex<Pool>,
    /// Loaded kernels by (function name, C element type).
    kernels: Mutex<HashMap<(&'static str, &'static str), CudaFunction>>,
    /// The GPU's cuBLAS handle, on its stream: created by the first matrix product.
    pub(crate) blas: Mutex<Option<Arc<cudarc::cublas::CudaBlas>>>,
}

/// The open GPUs by ordinal, so that every `Cuda` on one GPU shares its state; weak, so
/// a GPU no handle or buffer uses any more is released.
static GPUS: Mutex<Vec<(usize, Weak<Gpu>)>> = Mutex::new(Vec::new());

/// Locks `mutex` even if a thread panicked while holding it: every value kept behind
/// these locks (a map of allocations or kernels, a random generator) is valid after any
/// partial update, as each update is a single insert or remove.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Gpu {
    fn get(ordinal: usize) -> Result<Arc<Self>, Error> {
        let mut gpus = lock(&GPUS);
        if let Some(gpu) = gpus
            .iter()
            .find(|(o, _)| *o == ordinal)
            .and_then(|(_, gpu)| gpu.upgrade())
        {
            return Ok(gpu);
        }
        let gpu = Arc::new(Self::open(ordinal)?);
        gpus.retain(|(_, gpu)| gpu.strong_count() > 0);
        gpus.push((ordinal, Arc::downgrade(&gpu)));
        Ok(gpu)
    }

    fn open(ordinal: usize) -> Result<Self, Error> {
        let device = format!("cuda:{ordinal}");
        let count = Cuda::device_count()?;
        if ordinal >= count {
            return Err(Error::Device {
                device,
                message: format!("no GPU {ordinal}: the driver sees {count}, numbered from 0"),
            });
        }
        let context = CudaContext::new(ordinal).map_err(|e| driver_error(&device, "opening the GPU", &e))?;
        let compute_capability = context
            .compute_capability()
            .map_err(|e| driver_error(&device, "reading its compute capability", &e))?;
        let name = context
            .name()
            .map_err(|e| driver_error(&device, "reading its name", &e))?;
        Ok(Self {
            ordinal,
            name,
            compute_capability,
            stream: context.default_stream(),
            pool: Mutex::default(),
            kernels: Mutex::default(),
            blas: Mutex::default(),
        })
    }

    /// The device's name in errors: `cuda:0`.
    pub(crate) fn device(&self) -> String {
        format!("cuda:{}", self.ordinal)
    }

    /// An [`Error::Device`] for a driver call of this GPU that failed while `doing` something.
    pub(crate) fn error(&self, doing: &str, error: &DriverError) -> Error {
        driver_error(&self.device(), doing, error)
    }

    fn pool(&self) -> MutexGuard<'_, Pool> {
        lock(&self.pool)
    }

    /// Room for `len` elements of `E` (`len > 0`), from the cache when it holds an
    /// allocation of that size class, else new. Its contents are unspecified: old
    /// values of a reused buffer, or whatever the new memory held.
    pub(crate) fn allocate<E: CudaElement>(self: &Arc<Self>, len: usize) -> Result<Allocation<E::Stored>, Error> {
        let out_of_memory = || Error::OutOfMemory {
            elements: len,
            dtype: E::NAME,
        };
        let class = len
            .checked_mul(size_of::<E::Stored>())
            .and_then(size_class)
            .ok_or_else(out_of_memory)?;
        let reused = self.pool().take::<CudaSlice<E::Stored>>(class);
        let slice = match reused {
            Some(slice) => slice,
            None => {
                let capacity = class / size_of::<E::Stored>();
                // SAFETY: the memory is left uninitialised, which every stored type
                // allows (any bit pattern is a valid f32, f64, u64 or u8; see
                // `CudaElement`); callers overwrite it or promise only unspecified values.
                match unsafe { self.stream.alloc::<E::Stored>(capacity) } {
                    Ok(slice) => slice,
                    Err(e) if e.0 == sys::CUresult::CUDA_ERROR_OUT_OF_MEMORY => {
                        // Memory held by the cache is the first to give back.
                        self.empty_cache();
                        // SAFETY: as above.
                        unsafe { self.stream.alloc::<E::Stored>(capacity) }.map_err(|e| {
                            if e.0 == sys::CUresult::CUDA_ERROR_OUT_OF_MEMORY {
                                out_of_memory()
                            } else {
                                self.error(&format!("allocating {class} bytes"), &e)
                            }
                        })?
                    }
                    Err(e) => return Err(self.error(&format!("allocating {class} bytes"), &e)),
                }
            }
        };
        Ok(Allocation {
            slice,
            class,
            gpu: Arc::clone(self),
        })
    }

    /// Keeps a freed allocation of size class `class` for reuse.
    pub(crate) fn give_back<T: Send + 'static>(&self, class: usize, slice: CudaSlice<T>) {
        self.pool().give_back(class, slice);
    }

    fn empty_cache(&self) {
        let freed = self.pool().drain();
        self.bind_for_frees();
        // Dropped outside the lock: each drop queues a free on the stream.
        drop(freed);
    }

    /// Makes this GPU's context current on the calling thread before allocations are
    /// freed. cudarc frees a slice on its stream without binding the context first,
    /// and the default stream means "the current context's", so a free on a thread
    /// where another GPU's context (or none) is current would go to the wrong stream or
    /// fail. Failures are recorded by cudarc and returned by its next call.
    fn bind_for_frees(&self) {
        let context = self.stream.context();
        // Binding refuses to run while an earlier error is recorded; set it aside.
        let earlier = context.check_err();
        context.record_err(context.bind_to_thread());
        context.record_err(earlier);
    }

    /// The kernel `function` of `source` compiled for the element type `element_type`:
    /// compiled and loaded on first use (all of the source's functions at once), then
    /// kept for the life of the GPU.
    pub(crate) fn function(
        &self,
        source: &KernelSource,
        function: &'static str,
        element_type: &'static str,
    ) -> Result<CudaFunction, Error> {
        let mut kernels = lock(&self.kernels);
        if let Some(loaded) = kernels.get(&(function, element_type)) {
            return Ok(loaded.clone());
        }
        let (major, minor) = self.compute_capability;
        let arch = format!("sm_{major}{minor}");
        let cubin = source.compile_cubin(element_type, &arch).map_err(|e| match e {
            Error::Device { message, .. } => Error::Device {
                device: self.device(),
                message,
            },
            other => other,
        })?;
        let doing = format!("loading the kernels of {}.cu for T = {element_type}", source.name);
        let module = self
            .stream
            .context()
            .load_module(Ptx::from_binary(cubin))
            .map_err(|e| self.error(&doing, &e))?;
        for &name in source.functions {
            let loaded = module.load_function(name).map_err(|e| self.error(&doing, &e))?;
            kernels.insert((name, element_type), loaded);
        }
        kernels
            .get(&(function, element_type))
            .cloned()
            .ok_or_else(|| Error::InvalidArgument {
                op: "load kernel",
                message: format!("{}.cu defines no function {function}", source.name),
            })
    }
}

impl Drop for Gpu {
    fn drop(&mut self) {
        // The cached allocations are freed after this, when the pool is dropped.
        self.bind_for_frees();
    }
}

/// A launch of `items` threads' worth of work in blocks of 256, for kernels that loop
/// over their items with a grid stride, so the grid's size is bounded whatever the
/// number of items.
pub(crate) fn grid_for(items: u64) -> LaunchConfig {
    const THREADS: u32 = 256;
    // Far more blocks than any GPU runs at once, well below the 2^31 - 1 limit.
    const MAX_BLOCKS: u64 = 1 << 16;
    let blocks = items.div_ceil(u64::from(THREADS)).clamp(1, MAX_BLOCKS);
    LaunchConfig {
        grid_dim: (blocks as u32, 1, 1),
        block_dim: (THREADS, 1, 1),
        shared_mem_bytes: 0,
    }
}

/// `Ok` when the NVIDIA driver can be loaded and supports CUDA 13.0 or newer.
///
/// cudarc panics on the first driver call when the library is absent, and on a call
/// whose symbol an older driver lacks, so this runs before any.
fn require_driver() -> Result<(), Error> {
    let error = |message: String| Error::Device {
        device: "cuda".into(),
        message,
    };
    static PRESENT: OnceLock<bool> = OnceLock::new();
    // SAFETY: only tries to open the library under its usual names (running its
    // initialisers, as any use of it would); nothing in it is called.
    if !*PRESENT.get_or_init(|| unsafe { sys::is_culib_present() }) {
        return Err(error(
            "no NVIDIA driver: libcuda.so could not be loaded (is the NVIDIA driver installed, and is \
             this a machine with a GPU?)"
                .into(),
        ));
    }
    let mut version = 0;
    // SAFETY: the driver library can be loaded (checked above); the call writes one int
    // through the pointer, and needs no initialisation before it.
    unsafe { sys::cuDriverGetVersion(&mut version) }
        .result()
        .map_err(|e| error(format!("asking the driver for its CUDA version: {}", describe(&e))))?;
    if version < 13000 {
        return Err(error(format!(
            "the NVIDIA driver supports CUDA {}.{}; ferrograd-cuda needs CUDA 13.0 or newer (driver 580 or newer)",
            version / 1000,
            version % 1000 / 10
        )));
    }
    Ok(())
}

fn driver_error(device: &str, doing: &str, error: &DriverError) -> Error {
    Error::Device {
        device: device.into(),
        message: format!("{doing}: {}", describe(error)),
    }
}

/// A driver error's name and the driver's description of it:
/// `CUDA_ERROR_OUT_OF_MEMORY (out of memory)`.
pub(crate) fn describe(error: &DriverError) -> String {
    match error.error_string() {
        Ok(text) => format!("{:?} ({})", error.0, text.to_string_lossy()),
        Err(_) => format!("{:?}", error.0),
    }
}

/// GPU 0 for a unit test, or `None` after printing why the test is skipped; a failure
/// instead where `FERROGRAD_REQUIRE_GPU` is set (see `tests/device.rs`).
#[cfg(test)]
pub(crate) fn test_gpu() -> Option<Cuda> {
    match Cuda::new(0) {
        Ok(gpu) => Some(gpu),
        Err(e) if std::env::var_os("FERROGRAD_REQUIRE_GPU").is_some() => {
            panic!("FERROGRAD_REQUIRE_GPU is set, but there is no usable GPU: {e}")
        }
        Err(e) => {
            println!("skipped, no GPU: {e}");
            None
        }
    }
}
