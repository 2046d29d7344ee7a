use crate::OrPanic;
use crate::tensor::{Tensor, UniqueId};
use ferrograd_device::{Dtype, Error, Storage, Unit};
use ferrograd_shapes::Shape;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;

/// Ids are distinct counters already; mixing them once is all a table needs, and
/// SipHash's cost showed up in profiles of small-model backward passes.
#[derive(Default)]
pub(crate) struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(byte);
        }
    }
    fn write_u64(&mut self, value: u64) {
        // Fibonacci hashing: spreads consecutive ids over the high bits the table uses.
        self.0 = value.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

type IdMap<V> = HashMap<UniqueId, V, BuildHasherDefault<IdHasher>>;

/// One tensor's gradient and whether backward keeps it: one table for both, so
/// tracing and backward look each tensor up once.
struct Entry<V> {
    grad: Option<V>,
    kept: bool,
}

impl<V> Default for Entry<V> {
    fn default() -> Self {
        Self {
            grad: None,
            kept: false,
        }
    }
}

/// The gradients a backward pass computed, by tensor.
///
/// Which gradients are kept: every gradient of a *leaky* set
/// ([`Gradients::leaky`], what [`Tensor::leaky_trace`] uses); otherwise only those of
/// tensors the set was allocated for ([`Gradients::try_alloc_for`],
/// [`Tensor::alloc_grads`]) and of the traced input itself. Intermediate gradients are
/// then freed as soon as backward has used them.
///
/// A gradient is a buffer laid out like its tensor's buffer: [`Gradients::get`] gives
/// it as a tensor, [`Gradients::try_grad`] lends it without a copy.
pub struct Gradients<E: Unit, D: Storage<E>> {
    /// By tensor: its gradient (`None` until computed) and whether it is kept.
    entries: IdMap<Entry<D::Vec>>,
    leaky: bool,
    device: Option<D>,
}

impl<E: Unit, D: Storage<E>> Default for Gradients<E, D> {
    /// An empty set that keeps only the gradients it is told to.
    fn default() -> Self {
        Self {
            entries: IdMap::default(),
            leaky: false,
            device: None,
        }
    }
}

impl<E: Unit, D: Storage<E>> std::fmt::Debug for Gradients<E, D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gradients")
            .field("count", &self.entries.values().filter(|e| e.grad.is_some()).count())
            .field("leaky", &self.leaky)
            .finish()
    }
}

impl<E: Unit, D: Storage<E>> Gradients<E, D> {
    /// An empty set that keeps every gradient backward computes.
    pub fn leaky() -> Self {
        Self {
            leaky: true,
            ..Self::default()
        }
    }

    /// Allocates a zero gradient for `tensor` and keeps its gradient after backward.
    pub fn try_alloc_for<S: Shape, T>(&mut self, tensor: &Tensor<S, E, D, T>) -> Result<(), Error> {
        let entry = self.entries.entry(tensor.id).or_default();
        if entry.grad.is_none() {
            entry.grad = Some(tensor.device.try_alloc_zeros(tensor.buffer_len())?);
        }
        entry.kept = true;
        self.device.get_or_insert_with(|| tensor.device.clone());
        Ok(())
    }

    /// Whether a gradient for `tensor` is held.
    pub fn contains<S: Shape, T>(&self, tensor: &Tensor<S, E, D, T>) -> bool {
        self.entries.get(&tensor.id).is_some_and(|e| e.grad.is_some())
    }

    /// The gradient of `tensor`, with its shape and strides; zeros when backward never
    /// reached it (it did not affect the loss).
    #[track_caller]
    pub fn get<S: Shape, T>(&self, tensor: &Tensor<S, E, D, T>) -> Tensor<S, E, D> {
        self.try_get(tensor).or_panic()
    }

    /// [`Gradients::get`], returning an allocation error instead of panicking.
    pub fn try_get<S: Shape, T>(&self, tensor: &Tensor<S, E, D, T>) -> Result<Tensor<S, E, D>, Error> {
        let buffer = match self.entries.get(&tensor.id).and_then(|e| e.grad.as_ref()) {
            Some(buffer) => buffer.clone(),
            None => tensor.device.try_alloc_zeros(tensor.buffer_len())?,
        };
        Ok(Tensor {
            id: UniqueId::next(),
            data: Arc::new(buffer),
            shape: tensor.shape,
            layout: tensor.layout,
            device: tensor.device.clone(),
            tape: crate::NoneTape,
        })
    }

    /// Lends the gradient of `tensor` without copying it: a buffer laid out like the
    /// tensor's own (read it through [`Tensor::layout`]). What an optimizer reads.
    ///
    /// # Errors
    /// [`Error::MissingGradient`] when no gradient of `tensor` was computed or allocated.
    ///
    /// ```
    /// use ferrograd_autodiff::prelude::*;
    /// let dev = ferrograd_cpu::Cpu::default();
    /// let w: Tensor<Rank1<2>, f64, _> = dev.tensor([1.0, 2.0]);
    /// let grads = w.leaky_trace().square().sum::<Rank0, _>().backward();
    /// assert_eq!(&grads.try_grad(&w)?[..], &[2.0, 4.0]);
    /// let never_used: Tensor<Rank1<2>, f64, _> = dev.zeros();
    /// assert!(grads.try_grad(&never_used).is_err());
    /// # Ok::<(), Error>(())
    /// ```
    pub fn try_grad<S: Shape, T>(&self, tensor: &Tensor<S, E, D, T>) -> Result<&D::Vec, Error> {
        self.entries
            .get(&tensor.id)
            .and_then(|e| e.grad.as_ref())
            .ok_or_else(|| missing(tensor))
    }

    /// Lends the gradient of `tensor` to change in place (to clip or scale it).
    ///
    /// # Errors
    /// [`Error::MissingGradient`] when no gradient of `tensor` was computed or allocated.
    pub fn try_grad_mut<S: Shape, T>(&mut self, tensor: &Tensor<S, E, D, T>) -> Result<&mut D::Vec, Error> {
        match self.entries.get_mut(&tensor.id).and_then(|e| e.grad.as_mut()) {
            Some(buffer) => Ok(buffer),
            None => Err(missing(tensor)),
        }
    }

    /// Sets every held gradient to zero, keeping the buffers.
    pub fn zero_grads(&mut self) -> Result<(), Error> {
        if let Some(device) = &self.device {
            for buffer in self.entries.values_mut().filter_map(|e| e.grad.as_mut()) {
                device.try_fill(buffer, E::default())?;
            }
        }
        Ok(())
    }

    /// Drops the gradient of `tensor`.
    pub fn remove<S: Shape, T>(&mut self, tensor: &Tensor<S, E, D, T>) {
        self.entries.remove(&tensor.id);
    }

    pub(crate) fn retain(&mut self, id: UniqueId) {
        self.entries.entry(id).or_default().kept = true;
    }

    pub(crate) fn is_leaky(&self) -> bool {
        self.leaky
    }

    pub(crate) fn keeps(&self, id: UniqueId) -> bool {
        self.leaky || self.entries.get(&id).is_some_and(|e| e.kept)
    }

    pub(crate) fn set_device(&mut self, device: &D) {
        self.device.get_or_insert_with(|| device.clone());
    }

    /// The gradient slot of a leaf during backward; `None` when it is not kept.
    pub(crate) fn leaf_entry(&mut self, id: UniqueId) -> Option<&mut Option<D::Vec>> {
        if self.keeps(id) {
            Some(&mut self.entries.entry(id).or_default().grad)
        } else {
            None
        }
    }

    pub(crate) fn put(&mut self, id: UniqueId, buffer: D::Vec) {
        self.entries.entry(id).or_default().grad = Some(buffer);
    }

    /// Moves another set's gradients and keep-list into this one (tapes merging).
    pub(crate) fn absorb(&mut self, other: Self) {
        for (id, theirs) in other.entries {
            let ours = self.entries.entry(id).or_default();
            if ours.grad.is_none() {
                ours.grad = theirs.grad;
            }
            ours.kept |= theirs.kept;
        }
        self.leaky |= other.leaky;
        if self.device.is_none() {
            self.device = other.device;
        }
    }
}

impl<E: Dtype, D: Storage<E>> Gradients<E, D> {
    /// Adds `seed` to the gradient of the leaf `id`, if it is kept.
    pub(crate) fn add_leaf(&mut self, id: UniqueId, seed: D::Vec, device: &D) -> Result<(), Error> {
        let Some(entry) = self.leaf_entry(id) else {
            return Ok(());
        };
        match entry {
            None => *entry = Some(seed),
            Some(existing) => {
                let mut sum = device.try_to_host(existing)?;
                for (s, v) in sum.iter_mut().zip(device.try_to_host(&seed)?) {
                    *s += v;
                }
                *existing = device.try_from_host(sum)?;
            }
        }
        Ok(())
    }
}

fn missing<S: Shape, E: Unit, D: Storage<E>, T>(tensor: &Tensor<S, E, D, T>) -> Error {
    Error::MissingGradient {
        tensor: format!("tensor {} of shape {:?}", tensor.id, tensor.layout.dims()),
    }
}
