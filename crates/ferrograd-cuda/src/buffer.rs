use crate::compile::KernelSource;
use crate::device::{Cuda, Gpu, grid_for};
use crate::element::{CudaElement, sealed::Sealed};
use cudarc::driver::{CudaSlice, PushKernelArg};
use ferrograd_device::{BufferLength, Error, Storage};
use std::fmt;
use std::sync::Arc;

/// A buffer of `E` in GPU memory (stored as [`CudaElement::Stored`]).
///
/// Its memory comes from the GPU's cache of freed buffers when the cache holds one of
/// the same size class, and goes back to it when the buffer is dropped (see
/// [`Cuda::empty_cache`]). An empty buffer, such as `CudaBuffer::default()`, holds no
/// GPU memory and belongs to no GPU.
///
/// Read it with [`Storage::try_to_host`]; `Debug` prints its type and length, not its
/// contents, which would need a copy from the GPU.
pub struct CudaBuffer<E: CudaElement> {
    /// `None` exactly when `len` is 0.
    allocation: Option<Allocation<E::Stored>>,
    len: usize,
}

/// GPU memory of one size class; dropping its `CudaBuffer` returns it to the GPU's cache.
pub(crate) struct Allocation<T: Send + 'static> {
    /// Holds the whole size class, at least the buffer's length.
    pub(crate) slice: CudaSlice<T>,
    pub(crate) class: usize,
    pub(crate) gpu: Arc<Gpu>,
}

impl<E: CudaElement> CudaBuffer<E> {
    /// A buffer of `len` elements on `gpu`, contents unspecified.
    pub(crate) fn uninit(gpu: &Arc<Gpu>, len: usize) -> Result<Self, Error> {
        let allocation = if len == 0 { None } else { Some(gpu.allocate::<E>(len)?) };
        Ok(Self { allocation, len })
    }

    /// The number of elements.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the buffer has no elements.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// A copy of the buffer on the same GPU (a copy queued on the GPU, not through the
    /// host).
    ///
    /// # Errors
    /// [`Error::OutOfMemory`] when the GPU has no room for the copy, [`Error::Device`]
    /// when the driver fails to queue it.
    pub fn try_clone(&self) -> Result<Self, Error> {
        let Some(source) = &self.allocation else {
            return Ok(Self::default());
        };
        let mut copy = Self::uninit(&source.gpu, self.len)?;
        if let Some(target) = &mut copy.allocation {
            source
                .gpu
                .stream
                .memcpy_dtod(&source.slice.slice(0..self.len), &mut target.slice)
                .map_err(|e| source.gpu.error("copying a buffer", &e))?;
        }
        Ok(copy)
    }

    /// Keeps the first `len` elements (all of them when it has no more), as
    /// `Vec::truncate`: a kernel that writes its result over its input returns the input
    /// cut to the result's length. The allocation is kept whole, and an empty result
    /// gives its memory back.
    pub(crate) fn truncate(&mut self, len: usize) {
        if len == 0 {
            *self = Self::default();
        } else if len < self.len {
            self.len = len;
        }
    }

    /// The GPU memory, at least `len` elements, or `None` for an empty buffer.
    pub(crate) fn allocation_mut(&mut self) -> Option<&mut Allocation<E::Stored>> {
        self.allocation.as_mut()
    }

    /// The GPU memory, at least `len` elements, or `None` for an empty buffer.
    pub(crate) fn allocation(&self) -> Option<&Allocation<E::Stored>> {
        self.allocation.as_ref()
    }
}

impl<E: CudaElement> Drop for CudaBuffer<E> {
    fn drop(&mut self) {
        if let Some(allocation) = self.allocation.take() {
            let Allocation { slice, class, gpu } = allocation;
            gpu.give_back(class, slice);
        }
    }
}

impl<E: CudaElement> Clone for CudaBuffer<E> {
    /// [`CudaBuffer::try_clone`], panicking with the error's text where it fails (the
    /// GPU out of memory, or a failed driver), as cudarc's own buffers do: `Clone` cannot
    /// return an error. Call `try_clone` to handle it.
    fn clone(&self) -> Self {
        self.try_clone().unwrap_or_else(|e| panic!("{e}"))
    }
}

impl<E: CudaElement> Default for CudaBuffer<E> {
    /// An empty buffer, holding no GPU memory.
    fn default() -> Self {
        Self {
            allocation: None,
            len: 0,
        }
    }
}

impl<E: CudaElement> fmt::Debug for CudaBuffer<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let device = self.allocation.as_ref().map(|a| a.gpu.device());
        f.debug_struct("CudaBuffer")
            .field("dtype", &E::NAME)
            .field("len", &self.len)
            .field("device", &device)
            .finish()
    }
}

impl<E: CudaElement> BufferLength for CudaBuffer<E> {
    fn buffer_length(&self) -> usize {
        self.len
    }
}

/// `fill.cu`.
pub(crate) const FILL: KernelSource = KernelSource {
    name: "fill",
    source: include_str!("fill.cu"),
    functions: &["fill"],
    element_types: &["float", "double", "unsigned long long", "unsigned char"],
};

impl<E: CudaElement> Storage<E> for Cuda {
    type Vec = CudaBuffer<E>;

    fn try_alloc_zeros(&self, len: usize) -> Result<Self::Vec, Error> {
        let mut buffer = CudaBuffer::uninit(&self.gpu, len)?;
        if let Some(allocation) = buffer.allocation_mut() {
            self.gpu
                .stream
                .memset_zeros(&mut allocation.slice.slice_mut(0..len))
                .map_err(|e| self.gpu.error("zeroing a buffer", &e))?;
        }
        Ok(buffer)
    }

    /// A buffer from the cache as it is (its old values), or new memory whose values are
    /// whatever the GPU held: unspecified, but valid elements.
    fn try_alloc_for_overwrite(&self, len: usize) -> Result<Self::Vec, Error> {
        CudaBuffer::uninit(&self.gpu, len)
    }

    fn try_alloc_filled(&self, len: usize, value: E) -> Result<Self::Vec, Error> {
        let mut buffer = CudaBuffer::uninit(&self.gpu, len)?;
        self.try_fill(&mut buffer, value)?;
        Ok(buffer)
    }

    fn try_fill(&self, buffer: &mut Self::Vec, value: E) -> Result<(), Error> {
        let len = buffer.len;
        let Some(allocation) = buffer.allocation_mut() else {
            return Ok(());
        };
        self.check_owner(allocation, "try_fill")?;
        let stream = &self.gpu.stream;
        if value.stored_bits_are_zero() {
            return stream
                .memset_zeros(&mut allocation.slice.slice_mut(0..len))
                .map_err(|e| self.gpu.error("zeroing a buffer", &e));
        }
        let fill = self.gpu.function(&FILL, "fill", E::C_TYPE)?;
        let value = value.to_stored();
        let items = len as u64;
        let mut launch = stream.launch_builder(&fill);
        launch.arg(&mut allocation.slice).arg(&value).arg(&items);
        // SAFETY: `fill(T *out, T value, unsigned long long len)` was compiled with T =
        // E::C_TYPE, the C name of E::Stored, which is what the arguments are; it writes
        // elements 0 to len - 1 of `out`, whose allocation holds at least `len`.
        unsafe { launch.launch(grid_for(items)) }.map_err(|e| self.gpu.error("launching fill", &e))?;
        Ok(())
    }

    fn try_from_host(&self, data: Vec<E>) -> Result<Self::Vec, Error> {
        let mut buffer = CudaBuffer::uninit(&self.gpu, data.len())?;
        if let Some(allocation) = buffer.allocation_mut() {
            // Same-layout conversions (f32, f64) reuse `data`'s memory.
            let stored: Vec<E::Stored> = data.into_iter().map(Sealed::to_stored).collect();
            // The driver has read `stored` when this returns (a copy from pageable host
            // memory is staged before the call returns), so it may be dropped after.
            self.gpu
                .stream
                .memcpy_htod(&stored, &mut allocation.slice)
                .map_err(|e| self.gpu.error("copying host data to the GPU", &e))?;
        }
        Ok(buffer)
    }

    /// Copies the buffer to the host, then waits for the GPU, so that an earlier queued
    /// operation that failed is reported here rather than lost.
    fn try_to_host(&self, buffer: &Self::Vec) -> Result<Vec<E>, Error> {
        let Some(allocation) = buffer.allocation() else {
            return Ok(Vec::new());
        };
        let gpu = &allocation.gpu;
        let stored = gpu
            .stream
            .clone_dtoh(&allocation.slice.slice(0..buffer.len))
            .map_err(|e| gpu.error("copying a buffer to the host", &e))?;
        gpu.stream
            .synchronize()
            .map_err(|e| gpu.error("waiting for the copy to the host", &e))?;
        Ok(stored.into_iter().map(Sealed::from_stored).collect())
    }
}

impl Cuda {
    /// `Ok` when `allocation` is memory of this handle's GPU, on which its kernels run.
    pub(crate) fn check_owner<T: Send + 'static>(
        &self,
        allocation: &Allocation<T>,
        op: &'static str,
    ) -> Result<(), Error> {
        if Arc::ptr_eq(&allocation.gpu, &self.gpu) {
            Ok(())
        } else {
            Err(Error::InvalidArgument {
                op,
                message: format!(
                    "the buffer is on {}, the device is {}",
                    allocation.gpu.device(),
                    self.gpu.device()
                ),
            })
        }
    }
}
