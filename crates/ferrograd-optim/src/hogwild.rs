//! Training one model on several threads: Hogwild! (lock-free, racy by design) and
//! synchronous data parallelism (deterministic).
//!
//! - [`SharedParameters`] holds one copy of a model's parameters that every thread
//!   reads and writes without a lock, as in Hogwild! (Niu, Recht, Ré and Wright, 2011).
//!   Each thread keeps a local replica of the model: it copies the shared values into
//!   it ([`SharedParameters::snapshot_into`]), runs forward and backward on its own
//!   batch, and subtracts `lr · gradient` from the shared values
//!   ([`SharedParameters::apply_sgd`]), touching only the rows a row-sparse gradient
//!   holds. Updates from two threads to the same element may interleave, so one of
//!   them can be lost, and a snapshot may mix values from before and after another
//!   thread's step; Hogwild!'s analysis shows SGD still converges when the updates
//!   are sparse, and that is the trade: no lock, no waiting, some lost work.
//!   No value is ever torn: every element is an atomic (an `f32` kept as its bits in
//!   an `AtomicU32`, an `f64` in an `AtomicU64`) read and written with relaxed
//!   loads and stores. A non-atomic data race would be undefined behaviour in Rust,
//!   whatever the hardware does, so this module has no `unsafe` at all.
//! - [`data_parallel_step`] splits one step over threads: each computes the gradient of
//!   its shard of the batch with the same model, every thread is joined (the
//!   barrier), the shards' gradients are summed in shard order and divided by the
//!   number of shards, and the optimizer makes one update. The result depends on the
//!   number of shards (floating-point sums depend on their order) but not on thread
//!   timing: two runs with the same seed and shard count give the same bits.

use crate::Optimizer;
use ferrograd_autodiff::{Gradients, ParameterVisitor, ParameterVisitorMut, Tensor, VisitParameters};
use ferrograd_device::{Dtype, Error, Storage};
use ferrograd_shapes::Shape;
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

/// An element type that [`SharedParameters`] can store as an atomic: `f32` (as the
/// bits of an `AtomicU32`) and `f64` (an `AtomicU64`).
///
/// Loads and stores are relaxed: Hogwild! asks for no ordering between elements, only
/// that each element is read and written whole.
pub trait AtomicElement: Dtype {
    /// The atomic that holds one element's bits.
    type Atomic: Send + Sync;
    /// A new atomic holding `value`.
    fn new_atomic(value: Self) -> Self::Atomic;
    /// The value held (a relaxed load).
    fn load(atomic: &Self::Atomic) -> Self;
    /// Replaces the value held (a relaxed store).
    fn store(atomic: &Self::Atomic, value: Self);
}

impl AtomicElement for f32 {
    type Atomic = AtomicU32;
    #[inline]
    fn new_atomic(value: Self) -> Self::Atomic {
        AtomicU32::new(value.to_bits())
    }
    #[inline]
    fn load(atomic: &Self::Atomic) -> Self {
        f32::from_bits(atomic.load(Ordering::Relaxed))
    }
    #[inline]
    fn store(atomic: &Self::Atomic, value: Self) {
        atomic.store(value.to_bits(), Ordering::Relaxed);
    }
}

impl AtomicElement for f64 {
    type Atomic = AtomicU64;
    #[inline]
    fn new_atomic(value: Self) -> Self::Atomic {
        AtomicU64::new(value.to_bits())
    }
    #[inline]
    fn load(atomic: &Self::Atomic) -> Self {
        f64::from_bits(atomic.load(Ordering::Relaxed))
    }
    #[inline]
    fn store(atomic: &Self::Atomic, value: Self) {
        atomic.store(value.to_bits(), Ordering::Relaxed);
    }
}

/// One parameter's shared values, under its `state_dict` name.
struct Slot<A> {
    name: String,
    values: Box<[A]>,
}

/// One copy of a model's parameters that threads update without a lock (Hogwild!);
/// [`SharedParameters::apply_sgd`] says what the races cost (lost updates) and
/// [`AtomicElement`] why they are safe (every element is an atomic, never torn).
///
/// Built from a model ([`SharedParameters::new`]), it matches parameters to the
/// model's (or any replica's: a model of the same type) by the order
/// [`VisitParameters`] visits them, and checks their names and sizes on every call.
/// It works on devices whose buffers are host memory (the CPU): Hogwild! is a
/// shared-memory algorithm.
///
/// ```
/// use ferrograd_cpu::Cpu;
/// use ferrograd_nn::losses::{Reduction, mse_loss};
/// use ferrograd_nn::prelude::*;
/// use ferrograd_optim::SharedParameters;
///
/// let dev = Cpu::seed_from_u64(0);
/// let mut model = dev.build_module::<Linear<2, 1>, f32>();
/// let shared = SharedParameters::new(&model)?;
/// let x: Tensor<Rank2<4, 2>, f32, Cpu> = dev.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [2.0, 1.0]]);
/// let y: Tensor<Rank2<4, 1>, f32, Cpu> = dev.tensor([[1.0], [-1.0], [0.0], [1.0]]);
/// std::thread::scope(|scope| {
///     for _ in 0..2 {
///         let (shared, x, y) = (&shared, x.clone(), y.clone());
///         scope.spawn(move || -> Result<(), Error> {
///             // Each thread trains its own replica, built like the model.
///             let mut local = Cpu::seed_from_u64(1).build_module::<Linear<2, 1>, f32>();
///             // Enough steps that the fit holds even when many updates are lost.
///             for _ in 0..500 {
///                 shared.snapshot_into(&mut local)?;
///                 let prediction = local.forward(x.clone().traced(local.try_alloc_grads()?));
///                 let grads = mse_loss(prediction, y.clone(), Reduction::Mean).backward();
///                 shared.apply_sgd(&local, &grads, 0.05)?;
///             }
///             Ok(())
///         });
///     }
/// });
/// shared.snapshot_into(&mut model)?;
/// // y = x₀ − x₁ fits exactly, whatever updates were lost.
/// let fit = model.forward(x).array();
/// assert!((fit[3][0] - 1.0).abs() < 1e-2, "{fit:?}");
/// # Ok::<(), Error>(())
/// ```
pub struct SharedParameters<E: AtomicElement> {
    slots: Vec<Slot<E::Atomic>>,
}

impl<E: AtomicElement> std::fmt::Debug for SharedParameters<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedParameters")
            .field(
                "parameters",
                &self.slots.iter().map(|s| (&s.name, s.values.len())).collect::<Vec<_>>(),
            )
            .finish()
    }
}

fn invalid(message: String) -> Error {
    Error::InvalidArgument {
        op: "SharedParameters",
        message,
    }
}

/// The parameter's whole buffer as elements, or an error for a view (a parameter that
/// is a slice or permutation of its buffer has no rows to match a gradient's).
fn whole_buffer<'a, S: Shape, E: Dtype, D: Storage<E>>(
    name: &str,
    parameter: &'a Tensor<S, E, D>,
) -> Result<&'a [E], Error>
where
    D::Vec: Deref<Target = [E]>,
{
    let buffer: &[E] = parameter.storage();
    if !parameter.layout().is_contiguous() || buffer.len() != parameter.num_elements() {
        return Err(invalid(format!(
            "parameter `{name}` is a view ({} elements over a buffer of {}); shared parameters need whole buffers",
            parameter.num_elements(),
            buffer.len()
        )));
    }
    Ok(buffer)
}

impl<E: AtomicElement> SharedParameters<E> {
    /// Shared copies of `model`'s parameters, with their current values.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] when a parameter is a view of a larger buffer; what
    /// the model's visitor returns.
    pub fn new<D, M>(model: &M) -> Result<Self, Error>
    where
        D: Storage<E>,
        D::Vec: Deref<Target = [E]>,
        M: VisitParameters<E, D>,
    {
        struct Collect<A>(Vec<Slot<A>>);
        impl<E: AtomicElement, D: Storage<E>> ParameterVisitor<E, D> for Collect<E::Atomic>
        where
            D::Vec: Deref<Target = [E]>,
        {
            fn visit<S: Shape>(&mut self, name: &str, parameter: &Tensor<S, E, D>) -> Result<(), Error> {
                let values = whole_buffer(name, parameter)?
                    .iter()
                    .map(|&v| E::new_atomic(v))
                    .collect();
                self.0.push(Slot {
                    name: name.to_string(),
                    values,
                });
                Ok(())
            }
        }
        let mut collect = Collect(Vec::new());
        model.visit_parameters(&mut collect)?;
        Ok(Self { slots: collect.0 })
    }

    /// The number of parameters (tensors) shared.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// Whether no parameter is shared (the model had none).
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// The number of elements shared, over all parameters.
    pub fn num_elements(&self) -> usize {
        self.slots.iter().map(|s| s.values.len()).sum()
    }

    /// The slot matching the `index`-th parameter visited, checked by name and size.
    fn slot(&self, index: usize, name: &str, len: usize) -> Result<&Slot<E::Atomic>, Error> {
        let slot = self.slots.get(index).ok_or_else(|| {
            invalid(format!(
                "the model has more parameters than the {} shared (`{name}` is number {})",
                self.slots.len(),
                index + 1
            ))
        })?;
        if slot.name != name || slot.values.len() != len {
            return Err(invalid(format!(
                "parameter number {} is `{name}` of {len} elements, but `{}` of {} elements is shared there; is this the same model type?",
                index + 1,
                slot.name,
                slot.values.len()
            )));
        }
        Ok(slot)
    }

    fn check_count(&self, visited: usize) -> Result<(), Error> {
        if visited != self.slots.len() {
            return Err(invalid(format!(
                "the model has {visited} parameters but {} are shared",
                self.slots.len()
            )));
        }
        Ok(())
    }

    /// Copies the current shared values into `model` (a thread's replica, or the model
    /// at the end of training), keeping its tensors' ids. Other threads may be writing
    /// meanwhile: each element read is a value some thread stored, but the copy is not
    /// one instant's state of the whole model (Hogwild!'s "inconsistent reads").
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] when `model`'s parameters do not match the shared
    /// ones in order, name and size; what the model's visitor returns.
    pub fn snapshot_into<D, M>(&self, model: &mut M) -> Result<(), Error>
    where
        D: Storage<E>,
        D::Vec: DerefMut<Target = [E]>,
        M: VisitParameters<E, D>,
    {
        self.snapshot_rows_into(model, &[])
    }

    /// As [`SharedParameters::snapshot_into`], but for each parameter named in `rows`
    /// only the listed rows (indices along its first axis) are copied; the others are
    /// copied whole. The rows may repeat and come in any order, so a batch's ids can be
    /// passed as they are: each row is copied once.
    ///
    /// This is what makes Hogwild! pay for a sparse model: a step that reads only a
    /// few rows of an embedding table (the ids of its batch) copies only those, so the
    /// snapshot costs as much as the step's own reads instead of the whole table, and
    /// threads stop streaming rows that other threads are writing through their caches.
    /// The rows of the replica that are not copied keep stale values; the step must not
    /// read them.
    ///
    /// ```
    /// use ferrograd_cpu::Cpu;
    /// use ferrograd_nn::prelude::*;
    /// use ferrograd_nn::{EmbeddingConfig, Built};
    /// use ferrograd_optim::SharedParameters;
    ///
    /// type Model = (EmbeddingConfig<Const<100>, Const<4>>, Linear<4, 2>);
    /// let dev = Cpu::seed_from_u64(0);
    /// let model: Built<Model, f32, Cpu> = dev.build_module_with::<Model, f32>(Default::default());
    /// let shared = SharedParameters::new(&model)?;
    /// let mut replica: Built<Model, f32, Cpu> = Cpu::seed_from_u64(1).build_module_with::<Model, f32>(Default::default());
    /// let ids = [3, 17, 3];
    /// shared.snapshot_rows_into(&mut replica, &[("0.weight", &ids)])?;
    /// assert_eq!(replica.0.weight.as_vec()[17 * 4..18 * 4], model.0.weight.as_vec()[17 * 4..18 * 4]);
    /// assert_eq!(replica.1.weight.as_vec(), model.1.weight.as_vec());
    /// // Rows not asked for keep the replica's own (stale) values.
    /// assert_ne!(replica.0.weight.as_vec()[50 * 4..51 * 4], model.0.weight.as_vec()[50 * 4..51 * 4]);
    /// // An unknown name or a row past the table is an error.
    /// assert!(shared.snapshot_rows_into(&mut replica, &[("0.weight", &[100])]).is_err());
    /// assert!(shared.snapshot_rows_into(&mut replica, &[("embedding", &[1])]).is_err());
    /// # Ok::<(), ferrograd_device::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] when `model`'s parameters do not match the shared
    /// ones, when a name in `rows` is not one of them, or when a row is past the end of
    /// its parameter's first axis; what the model's visitor returns.
    pub fn snapshot_rows_into<D, M>(&self, model: &mut M, rows: &[(&str, &[usize])]) -> Result<(), Error>
    where
        D: Storage<E>,
        D::Vec: DerefMut<Target = [E]>,
        M: VisitParameters<E, D>,
    {
        struct Copy<'a, E: AtomicElement> {
            shared: &'a SharedParameters<E>,
            rows: &'a [(&'a str, &'a [usize])],
            index: usize,
            rows_used: usize,
        }
        impl<E: AtomicElement, D: Storage<E>> ParameterVisitorMut<E, D> for Copy<'_, E>
        where
            D::Vec: DerefMut<Target = [E]>,
        {
            fn visit_mut<S: Shape>(&mut self, name: &str, parameter: &mut Tensor<S, E, D>) -> Result<(), Error> {
                let len = whole_buffer(name, parameter)?.len();
                let slot = self.shared.slot(self.index, name, len)?;
                self.index += 1;
                let Some(&(_, rows)) = self.rows.iter().find(|(n, _)| *n == name) else {
                    for (value, atomic) in parameter.storage_mut().iter_mut().zip(&slot.values) {
                        *value = E::load(atomic);
                    }
                    return Ok(());
                };
                self.rows_used += 1;
                let num_rows = parameter.layout().dims().first().copied().unwrap_or(1);
                let row_len = len / num_rows.max(1);
                if let Some(&row) = rows.iter().find(|&&row| row >= num_rows) {
                    return Err(invalid(format!(
                        "row {row} of `{name}` asked for, but it has {num_rows} rows"
                    )));
                }
                let values = parameter.storage_mut();
                let mut copy_row = |row: usize| {
                    let range = row * row_len..(row + 1) * row_len;
                    for (value, atomic) in values[range.clone()].iter_mut().zip(&slot.values[range]) {
                        *value = E::load(atomic);
                    }
                };
                // Each row once, however often it is listed: a batch's ids repeat.
                if num_rows <= 8 * rows.len() {
                    // A table small next to the list: mark the rows copied.
                    let mut copied = vec![false; num_rows];
                    for &row in rows {
                        if !std::mem::replace(&mut copied[row], true) {
                            copy_row(row);
                        }
                    }
                } else {
                    let mut distinct = rows.to_vec();
                    distinct.sort_unstable();
                    distinct.dedup();
                    distinct.into_iter().for_each(copy_row);
                }
                Ok(())
            }
        }
        let mut copy = Copy {
            shared: self,
            rows,
            index: 0,
            rows_used: 0,
        };
        model.visit_parameters_mut(&mut copy)?;
        self.check_count(copy.index)?;
        if copy.rows_used != rows.len() {
            let known: Vec<&str> = self.slots.iter().map(|s| s.name.as_str()).collect();
            let unknown: Vec<&str> = rows.iter().map(|(n, _)| *n).filter(|n| !known.contains(n)).collect();
            return Err(invalid(format!(
                "rows were asked of {unknown:?}, which the model does not have (or names repeated); its parameters are {known:?}"
            )));
        }
        Ok(())
    }

    /// Subtracts `lr · gradient` from the shared values, without a lock: for a
    /// row-sparse gradient (an `Embedding` built with `sparse(true)`) only the rows it
    /// holds, for a dense one every element. `model` is the replica whose backward
    /// made `grads` (its tensors' ids find the gradients). A parameter with no
    /// gradient (frozen, or not reached) is left as it is.
    ///
    /// Each element is a relaxed load, a subtraction and a relaxed store, not an
    /// atomic read-modify-write: another thread's store between the two is
    /// overwritten (a lost update), which Hogwild! accepts to avoid a compare-and-swap
    /// loop on every element.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] when `lr` is not finite, when `model`'s parameters
    /// do not match the shared ones, or when a gradient's size or rows do not fit its
    /// parameter.
    pub fn apply_sgd<D, M>(&self, model: &M, grads: &Gradients<E, D>, lr: f64) -> Result<(), Error>
    where
        D: Storage<E>,
        D::Vec: Deref<Target = [E]>,
        M: VisitParameters<E, D>,
    {
        if !lr.is_finite() {
            return Err(invalid(format!("the learning rate must be finite, got {lr}")));
        }
        struct Apply<'a, E: AtomicElement, D: Storage<E>> {
            shared: &'a SharedParameters<E>,
            grads: &'a Gradients<E, D>,
            lr: E,
            index: usize,
        }
        impl<E: AtomicElement, D: Storage<E>> ParameterVisitor<E, D> for Apply<'_, E, D>
        where
            D::Vec: Deref<Target = [E]>,
        {
            fn visit<S: Shape>(&mut self, name: &str, parameter: &Tensor<S, E, D>) -> Result<(), Error> {
                let len = whole_buffer(name, parameter)?.len();
                let slot = self.shared.slot(self.index, name, len)?;
                self.index += 1;
                let lr = self.lr;
                let step = |atomic: &E::Atomic, grad: E| E::store(atomic, E::load(atomic) - lr * grad);
                if let Some(sparse) = self.grads.sparse_grad(parameter) {
                    let row_len = sparse.row_len();
                    let values: &[E] = sparse.values();
                    if sparse.num_rows().checked_mul(row_len) != Some(len) || values.len() != sparse.nnz() * row_len {
                        return Err(invalid(format!(
                            "the sparse gradient of `{name}` ({} rows of {row_len}, {} values for {} rows held) does not fit its {len} elements",
                            sparse.num_rows(),
                            values.len(),
                            sparse.nnz()
                        )));
                    }
                    for (&row, grad_row) in sparse.indices().iter().zip(values.chunks_exact(row_len.max(1))) {
                        // Indices are below num_rows (SparseGrad checks them), so the
                        // row lies inside the slot; `get` keeps that a checked fact.
                        let shared_row = slot.values.get(row * row_len..(row + 1) * row_len).ok_or_else(|| {
                            invalid(format!(
                                "row {row} of the gradient of `{name}` is outside its parameter"
                            ))
                        })?;
                        for (atomic, &grad) in shared_row.iter().zip(grad_row) {
                            step(atomic, grad);
                        }
                    }
                } else if let Ok(grad) = self.grads.try_grad(parameter) {
                    let grad: &[E] = grad;
                    if grad.len() != len {
                        return Err(invalid(format!(
                            "the gradient of `{name}` has {} elements, the parameter {len}",
                            grad.len()
                        )));
                    }
                    for (atomic, &grad) in slot.values.iter().zip(grad) {
                        step(atomic, grad);
                    }
                }
                Ok(())
            }
        }
        let mut apply = Apply {
            shared: self,
            grads,
            lr: E::from_f64(lr),
            index: 0,
        };
        model.visit_parameters(&mut apply)?;
        self.check_count(apply.index)
    }
}

/// One synchronous data-parallel step: `shard_grads(shard, model)` computes the
/// gradients of shard `shard` of the batch (`0..shards`), each shard on its own thread
/// (shard 0 on the calling thread), all with the same `model`; after every thread has
/// finished (the barrier), the gradients are averaged — summed in shard order, then
/// divided by `shards` — and `optimizer` makes one update with the average.
///
/// When every shard's loss is the mean over an equal share of the batch, the average
/// is the gradient of the whole batch's mean loss. Nothing depends on which thread
/// finishes first, so a fixed seed and shard count give bit-identical parameters run
/// after run (a different shard count sums in another order, so its last bits may
/// differ). Row-sparse gradients stay sparse: the shards' rows are merged.
///
/// ```
/// use ferrograd_cpu::Cpu;
/// use ferrograd_nn::losses::{Reduction, mse_loss};
/// use ferrograd_nn::prelude::*;
/// use ferrograd_nn::Built;
/// use ferrograd_optim::{Sgd, SgdConfig, data_parallel_step};
///
/// let dev = Cpu::seed_from_u64(0);
/// let mut model = dev.build_module::<Linear<2, 1>, f32>();
/// let mut sgd = Sgd::new(SgdConfig { lr: 0.1, ..Default::default() })?;
/// // The batch, in two shards of two samples.
/// let x: [Tensor<Rank2<2, 2>, f32, Cpu>; 2] = [dev.tensor([[1.0, 0.0], [0.0, 1.0]]), dev.tensor([[1.0, 1.0], [2.0, 1.0]])];
/// let y: [Tensor<Rank2<2, 1>, f32, Cpu>; 2] = [dev.tensor([[1.0], [-1.0]]), dev.tensor([[0.0], [1.0]])];
/// for _ in 0..300 {
///     data_parallel_step(&mut model, &mut sgd, 2, |shard, model: &Built<Linear<2, 1>, f32, Cpu>| {
///         let prediction = model.forward(x[shard].clone().traced(model.try_alloc_grads()?));
///         Ok(mse_loss(prediction, y[shard].clone(), Reduction::Mean).backward())
///     })?;
/// }
/// assert!((model.forward(x[1].clone()).array()[1][0] - 1.0).abs() < 1e-2);
/// # Ok::<(), Error>(())
/// ```
///
/// # Errors
/// [`Error::InvalidArgument`] when `shards` is 0; the first error a shard returned (in
/// shard order); what averaging or the optimizer returns. A shard that panics makes
/// this function panic with its payload once every thread has stopped.
pub fn data_parallel_step<E, D, M, O, F>(
    model: &mut M,
    optimizer: &mut O,
    shards: usize,
    shard_grads: F,
) -> Result<(), Error>
where
    E: Dtype,
    D: Storage<E>,
    D::Vec: DerefMut<Target = [E]>,
    M: VisitParameters<E, D> + Sync,
    O: Optimizer<E, D>,
    F: Fn(usize, &M) -> Result<Gradients<E, D>, Error> + Sync,
{
    if shards == 0 {
        return Err(Error::InvalidArgument {
            op: "data_parallel_step",
            message: "needs at least one shard".to_string(),
        });
    }
    let shared: &M = model;
    let results: Vec<Result<Gradients<E, D>, Error>> = std::thread::scope(|scope| {
        let f = &shard_grads;
        let handles: Vec<_> = (1..shards).map(|shard| scope.spawn(move || f(shard, shared))).collect();
        let mut results = vec![f(0, shared)];
        // Joined in shard order: the barrier, and the order the sum uses.
        for handle in handles {
            results.push(
                handle
                    .join()
                    .unwrap_or_else(|payload| std::panic::resume_unwind(payload)),
            );
        }
        results
    });
    let parts = results.into_iter().collect::<Result<Vec<_>, Error>>()?;
    let average = average_gradients(&*model, parts)?;
    optimizer.step(model, &average)
}

/// The mean of several gradients of `model`'s parameters (one per shard of a batch):
/// summed in the order given, then divided by their number, so the bits depend only on
/// that order. Row-sparse gradients are merged row by row and stay sparse; a parameter
/// that only some shards reached counts as zero in the others.
///
/// # Errors
/// [`Error::InvalidArgument`] when `parts` is empty, or when gradients of one
/// parameter disagree in size or layout (dense in one part, sparse in another); what
/// the model's visitor returns.
pub fn average_gradients<E, D, M>(model: &M, parts: Vec<Gradients<E, D>>) -> Result<Gradients<E, D>, Error>
where
    E: Dtype,
    D: Storage<E>,
    D::Vec: DerefMut<Target = [E]>,
    M: VisitParameters<E, D>,
{
    let fail = |message: String| Error::InvalidArgument {
        op: "average_gradients",
        message,
    };
    let mut parts = parts.into_iter();
    let mut sum = parts
        .next()
        .ok_or_else(|| fail("no gradients to average".to_string()))?;
    let rest: Vec<Gradients<E, D>> = parts.collect();
    let scale = E::from_f64(1.0 / (rest.len() + 1) as f64);

    struct Average<'a, E: Dtype, D: Storage<E>> {
        sum: &'a mut Gradients<E, D>,
        rest: &'a [Gradients<E, D>],
        scale: E,
    }
    impl<E: Dtype, D: Storage<E>> ParameterVisitor<E, D> for Average<'_, E, D>
    where
        D::Vec: DerefMut<Target = [E]>,
    {
        fn visit<S: Shape>(&mut self, name: &str, parameter: &Tensor<S, E, D>) -> Result<(), Error> {
            let mismatch = || Error::InvalidArgument {
                op: "average_gradients",
                message: format!("the gradients of `{name}` are dense in some parts and sparse in others"),
            };
            if self.sum.is_sparse(parameter) {
                let device = parameter.device();
                let Some(total) = self.sum.sparse_grad_mut(parameter) else {
                    return Err(mismatch());
                };
                for part in self.rest {
                    if let Some(rows) = part.sparse_grad(parameter) {
                        total.try_add(rows, device)?;
                    } else if part.contains(parameter) {
                        return Err(mismatch());
                    }
                }
                for value in total.values_mut().iter_mut() {
                    *value *= self.scale;
                }
                return Ok(());
            }
            let reached =
                self.sum.try_grad(parameter).is_ok() || self.rest.iter().any(|p| p.try_grad(parameter).is_ok());
            if !reached {
                return Ok(());
            }
            if self.rest.iter().any(|p| p.is_sparse(parameter)) {
                return Err(mismatch());
            }
            // Allocates zeros only when the first part never reached this parameter.
            self.sum.try_alloc_for(parameter)?;
            let total: &mut [E] = self.sum.try_grad_mut(parameter)?;
            for part in self.rest {
                if let Ok(grad) = part.try_grad(parameter) {
                    let grad: &[E] = grad;
                    if grad.len() != total.len() {
                        return Err(Error::InvalidArgument {
                            op: "average_gradients",
                            message: format!(
                                "the gradients of `{name}` have {} and {} elements",
                                total.len(),
                                grad.len()
                            ),
                        });
                    }
                    for (t, &g) in total.iter_mut().zip(grad) {
                        *t += g;
                    }
                }
            }
            for t in total.iter_mut() {
                *t *= self.scale;
            }
            Ok(())
        }
    }
    model.visit_parameters(&mut Average {
        sum: &mut sum,
        rest: &rest,
        scale,
    })?;
    Ok(sum)
}
