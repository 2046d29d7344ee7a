use crate::tensor::{Tensor, UniqueId};
use ferrograd_device::{Dtype, Error, Storage, Unit};
use ferrograd_shapes::Shape;
use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

/// The gradients a backward pass computed, by tensor.
///
/// Which gradients are kept: every gradient of a *leaky* set
/// ([`Gradients::leaky`], what [`Tensor::leaky_trace`] uses); otherwise only those of
/// tensors the set was allocated for ([`Gradients::try_alloc_for`],
/// [`Tensor::alloc_grads`]) and of the traced input itself. Intermediate gradients are
/// then freed as soon as backward has used them.
pub struct Gradients<E: Unit, D: Storage<E>> {
    buffers: HashMap<UniqueId, D::Vec>,
    leaky: bool,
    retained: HashSet<UniqueId>,
    /// During backward: outputs of recorded ops, whose gradients are needed later.
    pending: HashSet<UniqueId>,
    device: Option<D>,
}

impl<E: Unit, D: Storage<E>> Default for Gradients<E, D> {
    /// An empty set that keeps only the gradients it is told to.
    fn default() -> Self {
        Self {
            buffers: HashMap::new(),
            leaky: false,
            retained: HashSet::new(),
            pending: HashSet::new(),
            device: None,
        }
    }
}

impl<E: Unit, D: Storage<E>> std::fmt::Debug for Gradients<E, D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gradients")
            .field("count", &self.buffers.len())
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
        if let Entry::Vacant(entry) = self.buffers.entry(tensor.id) {
            entry.insert(tensor.device.try_alloc_zeros(tensor.buffer_len())?);
        }
        self.device.get_or_insert_with(|| tensor.device.clone());
        self.retained.insert(tensor.id);
        Ok(())
    }

    /// Whether a gradient for `tensor` is held.
    pub fn contains<S: Shape, T>(&self, tensor: &Tensor<S, E, D, T>) -> bool {
        self.buffers.contains_key(&tensor.id)
    }

    /// The gradient of `tensor`, with its shape and strides; zeros when backward never
    /// reached it (it did not affect the loss).
    pub fn get<S: Shape, T>(&self, tensor: &Tensor<S, E, D, T>) -> Tensor<S, E, D> {
        self.try_get(tensor).unwrap_or_else(|e| panic!("{e}"))
    }

    /// [`Gradients::get`], returning an allocation error instead of panicking.
    pub fn try_get<S: Shape, T>(&self, tensor: &Tensor<S, E, D, T>) -> Result<Tensor<S, E, D>, Error> {
        let buffer = match self.buffers.get(&tensor.id) {
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

    /// Sets every held gradient to zero, keeping the buffers.
    pub fn zero_grads(&mut self) -> Result<(), Error> {
        if let Some(device) = &self.device {
            for buffer in self.buffers.values_mut() {
                device.try_fill(buffer, E::default())?;
            }
        }
        Ok(())
    }

    /// Drops the gradient of `tensor`.
    pub fn remove<S: Shape, T>(&mut self, tensor: &Tensor<S, E, D, T>) {
        self.buffers.remove(&tensor.id);
        self.retained.remove(&tensor.id);
    }

    pub(crate) fn retain(&mut self, id: UniqueId) {
        self.retained.insert(id);
    }

    pub(crate) fn keeps(&self, id: UniqueId) -> bool {
        self.leaky || self.retained.contains(&id)
    }

    /// Whether anyone will read the gradient of `id`: kept, or the output of an op
    /// backward has yet to run.
    pub(crate) fn wants(&self, id: UniqueId) -> bool {
        self.keeps(id) || self.pending.contains(&id)
    }

    pub(crate) fn set_pending(&mut self, pending: HashSet<UniqueId>) {
        self.pending = pending;
    }

    pub(crate) fn take_buffer(&mut self, id: UniqueId) -> Option<D::Vec> {
        self.buffers.remove(&id)
    }

    pub(crate) fn put_buffer(&mut self, id: UniqueId, buffer: D::Vec) {
        self.buffers.insert(id, buffer);
    }

    /// Moves another set's gradients and keep-list into this one (tapes merging).
    pub(crate) fn absorb(&mut self, other: Self) {
        for (id, buffer) in other.buffers {
            self.buffers.entry(id).or_insert(buffer);
        }
        self.retained.extend(other.retained);
        self.leaky |= other.leaky;
        if self.device.is_none() {
            self.device = other.device;
        }
    }
}

impl<E: Dtype, D: Storage<E>> Gradients<E, D> {
    /// The gradient buffer of `id`, allocated as zeros (`len` elements) on first use;
    /// `None` when nobody wants that gradient, so the caller can skip computing it.
    pub(crate) fn grad_mut(&mut self, id: UniqueId, len: usize, device: &D) -> Result<Option<&mut D::Vec>, Error> {
        if !self.wants(id) {
            return Ok(None);
        }
        let buffer = match self.buffers.entry(id) {
            Entry::Occupied(entry) => entry.into_mut(),
            Entry::Vacant(entry) => {
                self.device.get_or_insert_with(|| device.clone());
                entry.insert(device.try_alloc_zeros(len)?)
            }
        };
        Ok(Some(buffer))
    }
}
