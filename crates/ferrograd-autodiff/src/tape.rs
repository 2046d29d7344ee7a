//! Tapes: where ops record how to compute gradients.
//!
//! A recording is a list of ops in the order they ran, which is already topological:
//! every op's inputs were computed before it. Each recorded op is a *node*, numbered by
//! its position, and a traced tensor's tape handle knows which node computed it. So
//! backward is one reverse sweep with the gradients in a vector indexed by node — no
//! hashing, no sort. Tensors that no recorded op computed (the traced inputs, and the
//! untraced parameters an op mixes in) are *leaves*, known by their [`UniqueId`]; only
//! their gradients live in the [`Gradients`] map.
//!
//! Two tapes merge when an op combines tensors recorded on both. The absorbed tape's
//! ops are appended once, their node numbers shifted by where they landed, and the
//! absorbed tape forwards later recordings to the one it joined: handles still pointing
//! at it resolve their node numbers through the shift recorded at the merge.

use crate::backward::BackwardContext;
use crate::gradients::Gradients;
use crate::step::{StepRef, Steps};
use crate::tensor::UniqueId;
use ferrograd_device::{Error, Storage, Unit};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

/// An input of a recorded op, as the tape knows it: which node or leaf its gradient
/// goes to, and how many elements that gradient's buffer holds. Made by
/// [`Tensor::op_input`](crate::Tensor::op_input) before the tensor's tape moves on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OpInput {
    pub(crate) source: Source,
    pub(crate) len: usize,
}

impl OpInput {
    /// The number of elements of the buffer this input's gradient is addressed in (its
    /// tensor's whole buffer, which a view may address only part of).
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether that buffer is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Source {
    /// The output of recorded op `index`, numbered on the tape `tape`.
    Node { tape: u64, index: u32, id: UniqueId },
    /// A tensor no recorded op computed.
    Leaf(UniqueId),
}

/// Where an input's gradient goes, in the numbering of the tape that holds the op.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Target {
    Node(u32),
    Leaf(UniqueId),
}

#[derive(Clone, Copy, Debug)]
pub(crate) struct ResolvedInput {
    pub(crate) target: Target,
    pub(crate) len: usize,
}

/// An op's inputs: nearly every op has one or two, kept inline so recording does not
/// allocate for them.
pub(crate) enum Inputs {
    Inline([ResolvedInput; 2], u8),
    Spilled(Vec<ResolvedInput>),
}

impl Inputs {
    pub(crate) fn as_slice(&self) -> &[ResolvedInput] {
        match self {
            Inputs::Inline(inputs, count) => &inputs[..*count as usize],
            Inputs::Spilled(inputs) => inputs,
        }
    }

    fn as_mut_slice(&mut self) -> &mut [ResolvedInput] {
        match self {
            Inputs::Inline(inputs, count) => &mut inputs[..*count as usize],
            Inputs::Spilled(inputs) => inputs,
        }
    }
}

pub(crate) struct RecordedOp {
    /// The id of the op's output, to keep its gradient when asked to.
    pub(crate) output: UniqueId,
    pub(crate) inputs: Inputs,
    /// The backward step, in the recording's arena; `None` once run or dropped.
    pub(crate) step: Option<StepRef>,
}

/// What `backward` takes out of a tape.
pub(crate) struct Recording<E: Unit, D: Storage<E>> {
    pub(crate) ops: Vec<RecordedOp>,
    pub(crate) steps: Steps<E, D>,
    pub(crate) grads: Gradients<E, D>,
    /// The tapes merged into this one, with the node number their node 0 became.
    merged: Vec<(u64, u32)>,
}

impl<E: Unit, D: Storage<E>> Recording<E, D> {
    /// `source` in this recording's numbering (`own` is this tape's number).
    fn resolve(&self, own: u64, source: Source) -> Target {
        match source {
            Source::Leaf(id) => Target::Leaf(id),
            Source::Node { tape, index, .. } if tape == own => Target::Node(index),
            Source::Node { tape, index, id } => match self.merged.iter().rev().find(|(t, _)| *t == tape) {
                Some((_, offset)) => Target::Node(offset + index),
                // A node of a tape that was never merged into this one: the caller
                // recorded an op without merging its inputs' tapes. Its gradient can
                // only be found by id.
                None => Target::Leaf(id),
            },
        }
    }

    fn push<F>(&mut self, own: u64, output: UniqueId, inputs: &[OpInput], backward: F) -> u32
    where
        F: FnOnce(&mut BackwardContext<'_, E, D>) -> Result<(), Error> + Send + 'static,
    {
        let resolve = |input: &OpInput| ResolvedInput {
            target: self.resolve(own, input.source),
            len: input.len,
        };
        let inputs = match inputs {
            [] => Inputs::Inline([placeholder(); 2], 0),
            [a] => Inputs::Inline([resolve(a), placeholder()], 1),
            [a, b] => Inputs::Inline([resolve(a), resolve(b)], 2),
            many => Inputs::Spilled(many.iter().map(resolve).collect()),
        };
        let index = u32::try_from(self.ops.len()).expect("more than 4 billion ops recorded on one tape");
        let step = Some(self.steps.push(backward));
        self.ops.push(RecordedOp { output, inputs, step });
        index
    }

    /// Appends `other`'s ops after this recording's, shifting their node numbers.
    fn absorb(&mut self, other_tape: u64, mut other: Recording<E, D>) {
        let offset = u32::try_from(self.ops.len()).expect("more than 4 billion ops recorded on one tape");
        let mut ops = std::mem::take(&mut other.ops);
        let grads = std::mem::take(&mut other.grads);
        let merged = std::mem::take(&mut other.merged);
        let shift = self
            .steps
            .append(std::mem::replace(&mut other.steps, Steps::reusing(Vec::new())));
        for op in &mut ops {
            if let Some(step) = &mut op.step {
                step.shift(shift);
            }
            for input in op.inputs.as_mut_slice() {
                if let Target::Node(index) = &mut input.target {
                    *index += offset;
                }
            }
        }
        self.ops.append(&mut ops);
        self.merged.push((other_tape, offset));
        self.merged
            .extend(merged.into_iter().map(|(tape, o)| (tape, o + offset)));
        self.grads.absorb(grads);
    }
}

impl<E: Unit, D: Storage<E>> Drop for Recording<E, D> {
    /// Drops the steps backward never ran (a graph dropped untraversed, or parts of
    /// it that did not reach the loss), and with them the buffers they kept; then
    /// leaves the two lists' memory to the next tape on this thread.
    fn drop(&mut self) {
        for op in &mut self.ops {
            if let Some(step) = op.step.take() {
                self.steps.drop_step(step);
            }
        }
        let steps = std::mem::replace(&mut self.steps, Steps::reusing(Vec::new()));
        spare::give_back(std::mem::take(&mut self.ops), steps.into_memory());
    }
}

/// The memory of the last finished tape's two lists, kept per thread: a training
/// loop records a graph of the same size every step, and the lists' first allocations
/// (several KiB, past what the allocator serves cheaply) were a noticeable part of a
/// small model's step.
mod spare {
    use super::RecordedOp;
    use std::cell::RefCell;
    use std::mem::MaybeUninit;

    /// Lists larger than this many bytes go back to the allocator.
    const MAX_BYTES: usize = 1 << 20;

    type Lists = (Vec<RecordedOp>, Vec<MaybeUninit<usize>>);

    thread_local! {
        static SPARE: RefCell<Option<Lists>> = const { RefCell::new(None) };
    }

    /// Empty lists for a new tape: the last tape's, or new ones with room for a small
    /// graph.
    pub(super) fn take() -> Lists {
        SPARE
            .try_with(|spare| spare.try_borrow_mut().ok().and_then(|mut spare| spare.take()))
            .ok()
            .flatten()
            .unwrap_or_else(|| (Vec::with_capacity(32), Vec::with_capacity(32 * 24)))
    }

    pub(super) fn give_back(mut ops: Vec<RecordedOp>, mut arena: Vec<MaybeUninit<usize>>) {
        let bytes = ops.capacity() * size_of::<RecordedOp>() + arena.capacity() * size_of::<usize>();
        if bytes > MAX_BYTES || ops.capacity() == 0 {
            return;
        }
        ops.clear();
        arena.clear();
        let _ = SPARE.try_with(|spare| {
            if let Ok(mut spare) = spare.try_borrow_mut() {
                spare.get_or_insert((ops, arena));
            }
        });
    }
}

fn placeholder() -> ResolvedInput {
    ResolvedInput {
        target: Target::Node(0),
        len: 0,
    }
}

/// What a tensor carries to record the ops applied to it.
///
/// Implemented by [`NoneTape`] and [`OwnedTape`] only; ops are generic over it, and
/// [`Tensor::record_op`](crate::Tensor::record_op) records a new op through it.
pub trait Tape<E: Unit, D: Storage<E>>:
    'static + Clone + Send + Sync + MergeTapes<NoneTape, Output = Self> + sealed::Sealed
{
    /// Whether ops are recorded; `false` lets ops skip all bookkeeping.
    const TRACING: bool;

    /// How the tape knows the tensor `id` whose buffer holds `len` elements.
    #[doc(hidden)]
    fn op_input(&self, id: UniqueId, len: usize) -> OpInput;

    /// Records an op computing `output` from `inputs`; afterwards this handle stands
    /// for `output`. Nothing happens unless [`Tape::TRACING`].
    #[doc(hidden)]
    fn record<F>(&mut self, output: UniqueId, inputs: &[OpInput], backward: F)
    where
        F: FnOnce(&mut BackwardContext<'_, E, D>) -> Result<(), Error> + Send + 'static;
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for super::NoneTape {}
    impl<E: ferrograd_device::Unit, D: ferrograd_device::Storage<E>> Sealed for super::OwnedTape<E, D> {}
}

/// No tape: nothing is recorded. The default for every tensor.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NoneTape;

impl<E: Unit, D: Storage<E>> Tape<E, D> for NoneTape {
    const TRACING: bool = false;
    fn op_input(&self, id: UniqueId, len: usize) -> OpInput {
        OpInput {
            source: Source::Leaf(id),
            len,
        }
    }
    fn record<F>(&mut self, _: UniqueId, _: &[OpInput], _: F)
    where
        F: FnOnce(&mut BackwardContext<'_, E, D>) -> Result<(), Error> + Send + 'static,
    {
    }
}

/// A recording tape, shared by every tensor computed from one traced input.
///
/// Cloning a traced tensor clones the handle, not the recording, so a tensor used
/// twice, a residual connection, or two losses summed all record into one graph. When
/// an op combines tensors from two different tapes, the tapes merge.
pub struct OwnedTape<E: Unit, D: Storage<E>> {
    cell: Arc<TapeCell<E, D>>,
    /// The tensor this handle rides on, when a recorded op computed it: its id and its
    /// node number on `cell`.
    node: Option<(UniqueId, u32)>,
}

struct TapeCell<E: Unit, D: Storage<E>> {
    /// Numbers tapes, so node numbers can say which tape they count on.
    number: u64,
    state: Mutex<TapeState<E, D>>,
}

enum TapeState<E: Unit, D: Storage<E>> {
    Recording(Recording<E, D>),
    /// This tape was merged into another; record there.
    MergedInto(Arc<TapeCell<E, D>>),
    /// `backward` already ran on this tape.
    Consumed,
}

impl<E: Unit, D: Storage<E>> Clone for OwnedTape<E, D> {
    fn clone(&self) -> Self {
        Self {
            cell: self.cell.clone(),
            node: self.node,
        }
    }
}

impl<E: Unit, D: Storage<E>> std::fmt::Debug for OwnedTape<E, D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OwnedTape")
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A poisoned tape means a backward closure panicked; the recording itself is intact.
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl<E: Unit, D: Storage<E>> OwnedTape<E, D> {
    pub(crate) fn new(grads: Gradients<E, D>) -> Self {
        static NUMBERS: AtomicU64 = AtomicU64::new(1);
        Self {
            cell: Arc::new(TapeCell {
                number: NUMBERS.fetch_add(1, Ordering::Relaxed),
                state: Mutex::new(TapeState::Recording({
                    let (ops, arena) = spare::take();
                    Recording {
                        ops,
                        steps: Steps::reusing(arena),
                        grads,
                        merged: Vec::new(),
                    }
                })),
            }),
            node: None,
        }
    }

    /// The cell recording happens in, following merges.
    fn root(&self) -> Arc<TapeCell<E, D>> {
        let mut cell = self.cell.clone();
        loop {
            let next = match &*lock(&cell.state) {
                TapeState::MergedInto(next) => Some(next.clone()),
                _ => None,
            };
            match next {
                Some(next) => cell = next,
                None => return cell,
            }
        }
    }

    /// Joins two tapes so that both record into one (this one's).
    pub(crate) fn merge(self, other: Self) -> Self {
        loop {
            let (a, b) = (self.root(), other.root());
            if Arc::ptr_eq(&a, &b) {
                return self;
            }
            // Lock in a fixed order, so two threads merging the same pair cannot deadlock.
            let (first, second) = if a.number < b.number { (&a, &b) } else { (&b, &a) };
            let mut first_state = lock(&first.state);
            let mut second_state = lock(&second.state);
            let (into, from) = if a.number < b.number {
                (&mut *first_state, &mut *second_state)
            } else {
                (&mut *second_state, &mut *first_state)
            };
            match (into, from) {
                (TapeState::Recording(into), from @ TapeState::Recording(_)) => {
                    if let TapeState::Recording(absorbed) = std::mem::replace(from, TapeState::MergedInto(a.clone())) {
                        into.absorb(b.number, absorbed);
                    }
                    return self;
                }
                // Another thread merged one of them between `root` and the locks: retry
                // from the new roots.
                (TapeState::MergedInto(_), _) | (_, TapeState::MergedInto(_)) => continue,
                // A consumed tape records nothing more; its loss already has gradients.
                _ => return self,
            }
        }
    }

    /// Takes the recording out for `backward`, leaving the tape consumed, and resolves
    /// `loss` in its numbering.
    pub(crate) fn take(&self, loss: OpInput) -> Result<(Recording<E, D>, Target), Error> {
        let root = self.root();
        let mut state = lock(&root.state);
        match std::mem::replace(&mut *state, TapeState::Consumed) {
            TapeState::Recording(recording) => {
                let target = recording.resolve(root.number, loss.source);
                Ok((recording, target))
            }
            // Merged between `root` and the lock: put it back and follow.
            merged @ TapeState::MergedInto(_) => {
                *state = merged;
                drop(state);
                self.take(loss)
            }
            TapeState::Consumed => Err(Error::TapeAlreadyConsumed),
        }
    }
}

impl<E: Unit, D: Storage<E>> Tape<E, D> for OwnedTape<E, D> {
    const TRACING: bool = true;

    fn op_input(&self, id: UniqueId, len: usize) -> OpInput {
        let source = match self.node {
            Some((owner, index)) if owner == id => Source::Node {
                tape: self.cell.number,
                index,
                id,
            },
            // A leaf, or a tensor that was handed another tensor's tape (`put_tape`).
            _ => Source::Leaf(id),
        };
        OpInput { source, len }
    }

    fn record<F>(&mut self, output: UniqueId, inputs: &[OpInput], backward: F)
    where
        F: FnOnce(&mut BackwardContext<'_, E, D>) -> Result<(), Error> + Send + 'static,
    {
        // One lock in the usual case; a merge since this handle last recorded sends it
        // on to the tape it joined, which it then keeps.
        let mut followed: Option<Arc<TapeCell<E, D>>> = None;
        let index = loop {
            let cell = followed.as_ref().unwrap_or(&self.cell);
            let next = match &mut *lock(&cell.state) {
                TapeState::Recording(recording) => break recording.push(cell.number, output, inputs, backward),
                TapeState::MergedInto(next) => next.clone(),
                // Backward already ran: nothing recorded now can reach a loss, and a
                // backward from this handle reports the consumed tape.
                TapeState::Consumed => {
                    self.node = None;
                    return;
                }
            };
            followed = Some(next);
        };
        if let Some(root) = followed {
            self.cell = root;
        }
        self.node = Some((output, index));
    }
}

/// The tape of a result computed from operands with tapes `L` and `R`.
pub type MergedTape<L, R> = <L as MergeTapes<R>>::Output;

/// Combines the tapes of two operands: the result records if either did.
pub trait MergeTapes<Rhs> {
    /// The tape of the result.
    type Output;
    /// Combines the tapes.
    fn merge_tapes(self, rhs: Rhs) -> Self::Output;
}

impl MergeTapes<NoneTape> for NoneTape {
    type Output = NoneTape;
    fn merge_tapes(self, _: NoneTape) -> NoneTape {
        NoneTape
    }
}

impl<E: Unit, D: Storage<E>> MergeTapes<NoneTape> for OwnedTape<E, D> {
    type Output = Self;
    fn merge_tapes(self, _: NoneTape) -> Self {
        self
    }
}

impl<E: Unit, D: Storage<E>> MergeTapes<OwnedTape<E, D>> for NoneTape {
    type Output = OwnedTape<E, D>;
    fn merge_tapes(self, rhs: OwnedTape<E, D>) -> OwnedTape<E, D> {
        rhs
    }
}

impl<E: Unit, D: Storage<E>> MergeTapes<OwnedTape<E, D>> for OwnedTape<E, D> {
    type Output = Self;
    fn merge_tapes(self, rhs: Self) -> Self {
        self.merge(rhs)
    }
}
