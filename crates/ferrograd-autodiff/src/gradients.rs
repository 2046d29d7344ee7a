use crate::OrPanic;
use crate::sparse::SparseGrad;
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
///
/// A gradient is dense (`grad`) or row-sparse (`sparse`, boxed so that the dense
/// path's entries stay one pointer larger and no more). Both are held only during a
/// backward pass that reached one tensor both ways (a table used by a sparse
/// embedding and by a dense op); the pass ends by folding the sparse part into the
/// dense one, as PyTorch turns `dense + sparse` into dense.
struct Entry<E: Unit, D: Storage<E>> {
    grad: Option<D::Vec>,
    sparse: Option<Box<SparseGrad<E, D>>>,
    kept: bool,
}

impl<E: Unit, D: Storage<E>> Default for Entry<E, D> {
    fn default() -> Self {
        Self {
            grad: None,
            sparse: None,
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
///
/// A parameter whose gradients were allocated sparse
/// ([`Gradients::try_alloc_sparse_for`], what an `Embedding` built with `sparse(true)`
/// asks for) gets a row-sparse gradient instead, when the op that reaches it writes
/// one: [`Gradients::sparse_grad`] lends it, [`Gradients::get`] makes it dense on
/// request, and [`Gradients::try_grad`] refuses it (a dense reader would get it wrong).
pub struct Gradients<E: Unit, D: Storage<E>> {
    /// By tensor: its gradient (`None` until computed) and whether it is kept.
    entries: IdMap<Entry<E, D>>,
    leaky: bool,
    /// Whether any entry may hold a sparse gradient: only then does the end of a
    /// backward pass look for entries to fold, so dense-only passes never do.
    has_sparse: bool,
    device: Option<D>,
}

impl<E: Unit, D: Storage<E>> Default for Gradients<E, D> {
    /// An empty set that keeps only the gradients it is told to.
    fn default() -> Self {
        Self {
            entries: IdMap::default(),
            leaky: false,
            has_sparse: false,
            device: None,
        }
    }
}

impl<E: Unit, D: Storage<E>> std::fmt::Debug for Gradients<E, D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gradients")
            .field(
                "count",
                &self
                    .entries
                    .values()
                    .filter(|e| e.grad.is_some() || e.sparse.is_some())
                    .count(),
            )
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

    /// Allocates an empty row-sparse gradient for `tensor` (a table whose rows are its
    /// first axis) and keeps its gradient after backward: an op that writes a sparse
    /// gradient (an `Embedding` built with `sparse(true)`) then adds rows to it, and no
    /// dense `num_rows × row_len` buffer is ever made. A dense contribution (the same
    /// table used by a dense op too) makes the gradient dense, as in PyTorch.
    ///
    /// Does nothing to a gradient already held, dense or sparse.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] when `tensor` is a scalar or a view that is not its
    /// whole buffer in order (its rows would not be rows of the buffer).
    ///
    /// ```
    /// use ferrograd_autodiff::prelude::*;
    /// let dev = ferrograd_cpu::Cpu::default();
    /// let table: Tensor<Rank2<1000, 4>, f32, _> = dev.zeros();
    /// let mut grads = Gradients::default();
    /// grads.try_alloc_sparse_for(&table)?;
    /// assert!(grads.is_sparse(&table));
    /// assert_eq!(grads.sparse_grad(&table).map(|g| g.nnz()), Some(0));
    /// # Ok::<(), Error>(())
    /// ```
    pub fn try_alloc_sparse_for<S: Shape, T>(&mut self, tensor: &Tensor<S, E, D, T>) -> Result<(), Error> {
        let dims = tensor.layout.dims();
        if dims.is_empty() || !tensor.layout.is_contiguous() || tensor.buffer_len() != tensor.num_elements() {
            return Err(Error::InvalidArgument {
                op: "Gradients::try_alloc_sparse_for",
                message: format!(
                    "a row-sparse gradient needs a tensor of rank >= 1 that is its whole buffer in order, got dims {dims:?} with strides {:?} over a buffer of {} elements",
                    tensor.layout.strides(),
                    tensor.buffer_len()
                ),
            });
        }
        let row_len = dims[1..].iter().product();
        let entry = self.entries.entry(tensor.id).or_default();
        if entry.grad.is_none() && entry.sparse.is_none() {
            entry.sparse = Some(Box::new(SparseGrad::empty(dims[0], row_len)));
            self.has_sparse = true;
        }
        entry.kept = true;
        self.device.get_or_insert_with(|| tensor.device.clone());
        Ok(())
    }

    /// Whether a gradient for `tensor` is held, dense or sparse.
    pub fn contains<S: Shape, T>(&self, tensor: &Tensor<S, E, D, T>) -> bool {
        self.entries
            .get(&tensor.id)
            .is_some_and(|e| e.grad.is_some() || e.sparse.is_some())
    }

    /// Whether the gradient held for `tensor` is row-sparse.
    pub fn is_sparse<S: Shape, T>(&self, tensor: &Tensor<S, E, D, T>) -> bool {
        self.sparse_grad(tensor).is_some()
    }

    /// Lends the row-sparse gradient of `tensor`, `None` when its gradient is dense or
    /// missing. What an optimizer that updates only the touched rows reads.
    ///
    /// ```
    /// use ferrograd_autodiff::prelude::*;
    /// use ferrograd_autodiff::SparseGrad;
    /// let dev = ferrograd_cpu::Cpu::default();
    /// let table: Tensor<Rank2<3, 2>, f64, _> = dev.zeros();
    /// let dense = table.leaky_trace().sum::<Rank0, _>().backward();
    /// assert!(dense.sparse_grad(&table).is_none());
    /// # Ok::<(), Error>(())
    /// ```
    pub fn sparse_grad<S: Shape, T>(&self, tensor: &Tensor<S, E, D, T>) -> Option<&SparseGrad<E, D>> {
        self.entries
            .get(&tensor.id)
            .filter(|e| e.grad.is_none())
            .and_then(|e| e.sparse.as_deref())
    }

    /// Lends the row-sparse gradient of `tensor` to change in place (to clip or scale
    /// its rows); `None` when its gradient is dense or missing.
    pub fn sparse_grad_mut<S: Shape, T>(&mut self, tensor: &Tensor<S, E, D, T>) -> Option<&mut SparseGrad<E, D>> {
        self.entries
            .get_mut(&tensor.id)
            .filter(|e| e.grad.is_none())
            .and_then(|e| e.sparse.as_deref_mut())
    }

    /// The gradient of `tensor`, with its shape and strides; zeros when backward never
    /// reached it (it did not affect the loss). A row-sparse gradient is made dense.
    #[track_caller]
    pub fn get<S: Shape, T>(&self, tensor: &Tensor<S, E, D, T>) -> Tensor<S, E, D> {
        self.try_get(tensor).or_panic()
    }

    /// [`Gradients::get`], returning an allocation error instead of panicking.
    pub fn try_get<S: Shape, T>(&self, tensor: &Tensor<S, E, D, T>) -> Result<Tensor<S, E, D>, Error> {
        let entry = self.entries.get(&tensor.id);
        let buffer = match (
            entry.and_then(|e| e.grad.as_ref()),
            entry.and_then(|e| e.sparse.as_ref()),
        ) {
            (Some(buffer), _) => buffer.clone(),
            (None, Some(sparse)) => sparse.try_to_dense(&tensor.device)?,
            (None, None) => tensor.device.try_alloc_zeros(tensor.buffer_len())?,
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
    /// [`Error::MissingGradient`] when no gradient of `tensor` was computed or allocated;
    /// [`Error::InvalidArgument`] when it is row-sparse (read it with
    /// [`Gradients::sparse_grad`], or make it dense with [`Gradients::try_get`]).
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
        match self.entries.get(&tensor.id) {
            Some(Entry { grad: Some(buffer), .. }) => Ok(buffer),
            Some(Entry { sparse: Some(_), .. }) => Err(sparse_not_dense(tensor)),
            _ => Err(missing(tensor)),
        }
    }

    /// Lends the gradient of `tensor` to change in place (to clip or scale it).
    ///
    /// # Errors
    /// As [`Gradients::try_grad`].
    pub fn try_grad_mut<S: Shape, T>(&mut self, tensor: &Tensor<S, E, D, T>) -> Result<&mut D::Vec, Error> {
        match self.entries.get_mut(&tensor.id) {
            Some(Entry { grad: Some(buffer), .. }) => Ok(buffer),
            Some(Entry { sparse: Some(_), .. }) => Err(sparse_not_dense(tensor)),
            _ => Err(missing(tensor)),
        }
    }

    /// Sets every held gradient to zero, keeping the buffers; a row-sparse gradient
    /// drops its rows (zero is no row at all), staying sparse.
    pub fn zero_grads(&mut self) -> Result<(), Error> {
        if let Some(device) = &self.device {
            for entry in self.entries.values_mut() {
                if let Some(buffer) = entry.grad.as_mut() {
                    device.try_fill(buffer, E::default())?;
                }
                if let Some(sparse) = entry.sparse.as_mut() {
                    sparse.clear();
                }
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
            if ours.grad.is_none() && ours.sparse.is_none() {
                ours.grad = theirs.grad;
                ours.sparse = theirs.sparse;
            }
            ours.kept |= theirs.kept;
        }
        self.leaky |= other.leaky;
        self.has_sparse |= other.has_sparse;
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

    /// Adds the row-sparse contribution `grad` to the gradient of the leaf `id`, if it
    /// is kept: into its dense gradient when it has one, else merged with its sparse one.
    pub(crate) fn add_sparse_leaf(&mut self, id: UniqueId, grad: SparseGrad<E, D>, device: &D) -> Result<(), Error> {
        if !self.keeps(id) {
            return Ok(());
        }
        let entry = self.entries.entry(id).or_default();
        match (&mut entry.grad, &mut entry.sparse) {
            (Some(dense), _) => grad.try_add_to_dense(dense, device)?,
            (None, Some(sparse)) => sparse.try_add_owned(grad, device)?,
            (None, None) => {
                entry.sparse = Some(Box::new(grad));
                self.has_sparse = true;
            }
        }
        Ok(())
    }

    /// Ends a backward pass: an entry that got both a dense and a sparse gradient
    /// keeps their sum, dense. Free when no sparse gradient was ever held.
    pub(crate) fn settle(&mut self, device: &D) -> Result<(), Error> {
        if !self.has_sparse {
            return Ok(());
        }
        for entry in self.entries.values_mut() {
            if entry.grad.is_some()
                && let Some(sparse) = entry.sparse.take()
                && let Some(dense) = entry.grad.as_mut()
            {
                sparse.try_add_to_dense(dense, device)?;
            }
        }
        Ok(())
    }
}

fn sparse_not_dense<S: Shape, E: Unit, D: Storage<E>, T>(tensor: &Tensor<S, E, D, T>) -> Error {
    Error::InvalidArgument {
        op: "Gradients::try_grad",
        message: format!(
            "the gradient of tensor {} of shape {:?} is row-sparse; read it with `sparse_grad`, or make it dense with `get`",
            tensor.id,
            tensor.layout.dims()
        ),
    }
}

fn missing<S: Shape, E: Unit, D: Storage<E>, T>(tensor: &Tensor<S, E, D, T>) -> Error {
    Error::MissingGradient {
        tensor: format!("tensor {} of shape {:?}", tensor.id, tensor.layout.dims()),
    }
}
