use crate::OrPanic;
use crate::gradients::Gradients;
use crate::tape::{NoneTape, OwnedTape, Tape};
use ferrograd_device::{Error, Layout, Storage, Unit};
use ferrograd_shapes::Shape;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// Identifies a tensor's data for the gradient tape. Views (broadcasts, permutations)
/// share the id of the tensor they view, so their gradients land in one buffer.
///
/// Ids only grow: a tensor's id is larger than the ids of everything it was computed
/// from, which is the order backward runs in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UniqueId(u64);

impl std::fmt::Display for UniqueId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "#{}", self.0)
    }
}

impl UniqueId {
    pub(crate) fn next() -> Self {
        static COUNTER: AtomicU64 = AtomicU64::new(1);
        UniqueId(COUNTER.fetch_add(1, Ordering::Relaxed))
    }
}

/// An n-dimensional array of `E` on device `D`, with shape `S` and tape `T`.
///
/// - `S` is a [`Shape`]: `Rank2<3, 4>`, or `(usize, Const<4>)` with a run-time batch.
/// - `E` is the element type: `f32`, `f64`, or `bool` for masks.
/// - `T` is [`NoneTape`] (the default: nothing is recorded) or [`OwnedTape`] once
///   the tensor is traced; every op moves the tape to its result.
///
/// Cloning is cheap: the buffer is shared, and copied only when an op writes to it.
pub struct Tensor<S: Shape, E: Unit, D: Storage<E>, T = NoneTape> {
    pub(crate) id: UniqueId,
    pub(crate) data: Arc<D::Vec>,
    pub(crate) shape: S,
    pub(crate) layout: Layout,
    pub(crate) device: D,
    pub(crate) tape: T,
}

impl<S: Shape, E: Unit, D: Storage<E>, T: Clone> Clone for Tensor<S, E, D, T> {
    fn clone(&self) -> Self {
        Self {
            id: self.id,
            data: self.data.clone(),
            shape: self.shape,
            layout: self.layout,
            device: self.device.clone(),
            tape: self.tape.clone(),
        }
    }
}

impl<S: Shape, E: Unit, D: Storage<E>, T> std::fmt::Debug for Tensor<S, E, D, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tensor")
            .field("shape", &self.shape)
            .field("dtype", &E::NAME)
            .field("device", &self.device)
            .field(
                "traced",
                &(std::any::type_name::<T>() != std::any::type_name::<NoneTape>()),
            )
            .finish()
    }
}

impl<S: Shape, E: Unit, D: Storage<E>> Tensor<S, E, D, NoneTape> {
    /// A contiguous tensor over a buffer of exactly `shape.num_elements()` elements.
    pub(crate) fn from_buffer(data: D::Vec, shape: S, device: D) -> Self {
        Self::from_arc(Arc::new(data), shape, device, NoneTape)
    }

    /// A new tensor (a new id, untraced) over `data`, row-major in `shape`: how a
    /// kernel's output becomes a tensor.
    ///
    /// # Errors
    /// `Error::ShapeMismatch` when `data` does not hold exactly `shape`'s element count.
    ///
    /// ```
    /// use ferrograd_autodiff::prelude::*;
    /// use ferrograd_device::Storage;
    /// let dev = ferrograd_cpu::Cpu::default();
    /// let buffer = dev.try_from_host(vec![1.0f32, 2.0, 3.0, 4.0])?;
    /// let t = Tensor::try_from_storage(buffer, (2usize, Const::<2>), dev)?;
    /// assert_eq!(t.as_vec(), [1.0, 2.0, 3.0, 4.0]);
    /// # Ok::<(), Error>(())
    /// ```
    pub fn try_from_storage(data: D::Vec, shape: S, device: D) -> Result<Self, Error> {
        if D::len(&data) != shape.num_elements() {
            return Err(Error::ShapeMismatch {
                op: "from_storage",
                message: format!(
                    "a buffer of {} elements cannot hold shape {:?} ({} elements)",
                    D::len(&data),
                    shape.concrete(),
                    shape.num_elements()
                ),
            });
        }
        Ok(Self::from_buffer(data, shape, device))
    }
}

impl<S: Shape, E: Unit, D: Storage<E>, T> Tensor<S, E, D, T> {
    pub(crate) fn from_arc(data: Arc<D::Vec>, shape: S, device: D, tape: T) -> Self {
        Self {
            id: UniqueId::next(),
            data,
            layout: Layout::contiguous(&shape),
            shape,
            device,
            tape,
        }
    }

    /// The shape.
    pub fn shape(&self) -> &S {
        &self.shape
    }

    /// The sizes of the dimensions, as an array.
    pub fn dims(&self) -> S::Concrete {
        self.shape.concrete()
    }

    /// The strides, in elements, of each dimension.
    pub fn strides(&self) -> &[usize] {
        self.layout.strides()
    }

    /// The device the data lives on.
    pub fn device(&self) -> &D {
        &self.device
    }

    /// The buffer the elements live in, to read through [`Tensor::layout`]: a view
    /// (a slice, a broadcast, a permutation) shares its base tensor's buffer.
    pub fn storage(&self) -> &D::Vec {
        &self.data
    }

    /// The buffer, shared: a backward step that needs it later keeps this handle
    /// instead of a copy.
    pub fn shared_storage(&self) -> &Arc<D::Vec> {
        &self.data
    }

    /// The buffer to change in place, keeping the tensor's id (so gradients and
    /// optimizer state keyed by it still apply): what an optimizer's update writes
    /// through. When another tensor (or a recorded backward step) shares the buffer, it
    /// is copied first, so they keep the old values.
    ///
    /// ```
    /// use ferrograd_autodiff::prelude::*;
    /// let dev = ferrograd_cpu::Cpu::default();
    /// let mut w: Tensor<Rank1<2>, f32, _> = dev.tensor([1.0, 2.0]);
    /// let (id, before) = (w.id(), w.clone());
    /// for v in w.storage_mut().iter_mut() {
    ///     *v -= 0.5;
    /// }
    /// assert_eq!(w.array(), [0.5, 1.5]);
    /// assert_eq!(w.id(), id);
    /// assert_eq!(before.array(), [1.0, 2.0]);
    /// ```
    pub fn storage_mut(&mut self) -> &mut D::Vec {
        Arc::make_mut(&mut self.data)
    }

    /// How the elements are laid out in [`Tensor::storage`]: sizes, strides, offset.
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// The id the gradient tape knows this tensor's data by.
    pub fn id(&self) -> UniqueId {
        self.id
    }

    /// The number of elements.
    pub fn num_elements(&self) -> usize {
        self.shape.num_elements()
    }

    pub(crate) fn buffer_len(&self) -> usize {
        D::len(&self.data)
    }

    /// Splits the tensor from its tape.
    pub fn split_tape(self) -> (Tensor<S, E, D, NoneTape>, T) {
        let Self {
            id,
            data,
            shape,
            layout,
            device,
            tape,
        } = self;
        (
            Tensor {
                id,
                data,
                shape,
                layout,
                device,
                tape: NoneTape,
            },
            tape,
        )
    }

    /// The same tensor with another tape.
    pub fn put_tape<T2>(self, tape: T2) -> Tensor<S, E, D, T2> {
        let Self {
            id,
            data,
            shape,
            layout,
            device,
            ..
        } = self;
        Tensor {
            id,
            data,
            shape,
            layout,
            device,
            tape,
        }
    }

    /// The same data, cut from the graph: a new id and no tape, so nothing computed
    /// from it sends gradients back (PyTorch's `detach`).
    pub fn detach(&self) -> Tensor<S, E, D, NoneTape> {
        Tensor {
            id: UniqueId::next(),
            data: self.data.clone(),
            shape: self.shape,
            layout: self.layout,
            device: self.device.clone(),
            tape: NoneTape,
        }
    }

    /// Starts recording: the result carries a tape holding `grads`, and ops on it record
    /// how to compute gradients. The gradient of this tensor is kept after `backward`,
    /// and so is every gradient `grads` already holds.
    ///
    /// ```
    /// use ferrograd_autodiff::prelude::*;
    /// use ferrograd_cpu::Cpu;
    ///
    /// let dev = Cpu::default();
    /// let x: Tensor<Rank1<3>, f64, Cpu> = dev.tensor([1.0, 2.0, 3.0]);
    /// let grads = x.alloc_grads();
    /// let loss = x.clone().traced(grads).square().sum();
    /// let grads = loss.backward();
    /// assert_eq!(grads.get(&x).array(), [2.0, 4.0, 6.0]);
    /// ```
    pub fn traced(self, mut grads: Gradients<E, D>) -> Tensor<S, E, D, OwnedTape<E, D>>
    where
        E: ferrograd_device::Dtype,
    {
        grads.retain(self.id);
        self.put_tape(OwnedTape::new(grads))
    }

    /// Starts recording like [`Tensor::traced`], without keeping this tensor's own
    /// gradient: for a training step's input, whose gradient nobody reads (PyTorch's
    /// inputs do not require grad). Backward then skips computing it, which in a
    /// first layer is a whole matrix product per step.
    ///
    /// ```
    /// use ferrograd_autodiff::prelude::*;
    /// use ferrograd_cpu::Cpu;
    ///
    /// let dev = Cpu::default();
    /// let w: Tensor<Rank1<2>, f64, Cpu> = dev.tensor([1.0, 2.0]);
    /// let x: Tensor<Rank1<2>, f64, Cpu> = dev.tensor([3.0, 4.0]);
    /// let grads = (x.clone().traced_input(w.alloc_grads()) * w.clone()).sum::<Rank0, _>().backward();
    /// assert_eq!(grads.get(&w).array(), [3.0, 4.0]);
    /// assert!(!grads.contains(&x));
    /// ```
    pub fn traced_input(self, grads: Gradients<E, D>) -> Tensor<S, E, D, OwnedTape<E, D>>
    where
        E: ferrograd_device::Dtype,
    {
        self.put_tape(OwnedTape::new(grads))
    }

    /// Starts recording into a tape that keeps the gradient of every tensor in the
    /// graph, intermediate ones included: handy for inspection and tests, wasteful in
    /// training loops (use [`Tensor::traced`] there).
    pub fn leaky_trace(&self) -> Tensor<S, E, D, OwnedTape<E, D>>
    where
        E: ferrograd_device::Dtype,
        T: Clone,
    {
        self.clone().traced(Gradients::leaky())
    }

    /// Gradients holding a zero gradient for this tensor, to pass to [`Tensor::traced`].
    #[track_caller]
    pub fn alloc_grads(&self) -> Gradients<E, D>
    where
        E: ferrograd_device::Dtype,
    {
        self.try_alloc_grads().or_panic()
    }

    /// [`Tensor::alloc_grads`], returning an error instead of panicking.
    pub fn try_alloc_grads(&self) -> Result<Gradients<E, D>, Error>
    where
        E: ferrograd_device::Dtype,
    {
        let mut grads = Gradients::default();
        grads.try_alloc_for(self)?;
        Ok(grads)
    }
}

impl<S: Shape, D: Storage<usize>> Tensor<S, usize, D, NoneTape> {
    /// Indices (token ids, classes) carrying the tape of a float computation, so that a
    /// layer taking indices (an embedding) records into it: the indices' counterpart of
    /// [`Tensor::traced`]. The indices themselves have no gradient.
    ///
    /// ```
    /// use ferrograd_autodiff::prelude::*;
    /// use ferrograd_cpu::Cpu;
    ///
    /// let dev = Cpu::default();
    /// let table: Tensor<Rank2<3, 2>, f64, Cpu> = dev.tensor([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]);
    /// let ids = dev.tensor([2usize, 0, 2]).traced_indices(table.alloc_grads());
    /// let (ids, tape) = ids.split_tape();
    /// let rows = table.clone().put_tape(tape).index_select::<0, _>(&ids);
    /// let grads = rows.sum::<Rank0, _>().backward();
    /// assert_eq!(grads.get(&table).array(), [[1.0, 1.0], [0.0, 0.0], [2.0, 2.0]]);
    /// ```
    pub fn traced_indices<E: ferrograd_device::Dtype>(
        self,
        grads: Gradients<E, D>,
    ) -> Tensor<S, usize, D, OwnedTape<E, D>>
    where
        D: Storage<E>,
    {
        self.put_tape(OwnedTape::new(grads))
    }
}

impl<S: Shape, E: Unit, D: Storage<E>, T: Tape<E, D>> Tensor<S, E, D, T> {
    /// Whether ops on this tensor are being recorded.
    pub fn is_traced(&self) -> bool {
        T::TRACING
    }
}
