use crate::dtype::Unit;
use crate::error::Error;
use crate::view::BufferLength;
use std::fmt::Debug;

/// A device's memory for elements of type `E`.
///
/// Buffers are the device's own type ([`Storage::Vec`]), so a device can add a cache of
/// freed buffers behind `try_alloc_*` without any change visible to callers.
pub trait Storage<E: Unit>: 'static + Clone + Debug + Send + Sync {
    /// A buffer of elements on this device. Its `Default` is an empty buffer, which
    /// lets an op move a buffer out of a shared handle it holds alone, and put the
    /// result back.
    type Vec: 'static + Clone + Debug + Default + Send + Sync + BufferLength;

    /// A buffer of `len` elements, each `E::default()` (zero, or `false`).
    fn try_alloc_zeros(&self, len: usize) -> Result<Self::Vec, Error>;
    /// A buffer of `len` elements whose values are unspecified (but initialised):
    /// for an output the caller overwrites entirely, so a device may hand out a freed
    /// buffer as it is instead of filling it first. Zeros by default.
    fn try_alloc_for_overwrite(&self, len: usize) -> Result<Self::Vec, Error> {
        self.try_alloc_zeros(len)
    }
    /// A buffer of `len` copies of `value`.
    fn try_alloc_filled(&self, len: usize, value: E) -> Result<Self::Vec, Error>;
    /// Sets every element of `buffer` to `value`.
    fn try_fill(&self, buffer: &mut Self::Vec, value: E) -> Result<(), Error>;
    /// Moves host data onto the device.
    fn try_from_host(&self, data: Vec<E>) -> Result<Self::Vec, Error>;
    /// Copies a buffer to the host, in buffer order.
    fn try_to_host(&self, buffer: &Self::Vec) -> Result<Vec<E>, Error>;
    /// The number of elements in `buffer`.
    fn len(buffer: &Self::Vec) -> usize {
        buffer.buffer_length()
    }
}

/// An input buffer handed to a kernel: `Unique` when nobody else holds it, so the
/// kernel may write its result there instead of allocating.
#[derive(Debug)]
pub enum Input<'a, V> {
    /// Held elsewhere too: read only.
    Shared(&'a V),
    /// Held by nobody else: the kernel may reuse it.
    Unique(V),
}

impl<V> Input<'_, V> {
    /// The buffer, to read.
    pub fn get(&self) -> &V {
        match self {
            Input::Shared(v) => v,
            Input::Unique(v) => v,
        }
    }
}

/// Fills new buffers with samples of a distribution, from the device's seeded generator.
pub trait SampleKernel<E: Unit>: Storage<E> {
    /// A buffer of `len` samples of `distribution`.
    fn try_sample<Dist: rand::distr::Distribution<E>>(
        &self,
        len: usize,
        distribution: Dist,
    ) -> Result<Self::Vec, Error>;
}
