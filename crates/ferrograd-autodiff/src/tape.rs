//! Tapes: where ops record how to compute gradients.

use crate::gradients::Gradients;
use crate::tensor::UniqueId;
use ferrograd_device::{Error, Storage, Unit};
use std::sync::{Arc, Mutex, MutexGuard};

/// The gradient of an op's inputs, given the gradient of its output.
pub(crate) type BackwardFn<E, D> =
    Box<dyn FnOnce(&mut Gradients<E, D>, &<D as Storage<E>>::Vec) -> Result<(), Error> + Send>;

/// What a tensor carries to record the ops applied to it.
pub trait Tape<E: Unit, D: Storage<E>>: 'static + Clone + Send + Sync + MergeTapes<NoneTape, Output = Self> {
    /// Whether ops are recorded; `false` lets ops skip all bookkeeping.
    const TRACING: bool;

    /// Records the backward step of an op whose output is `output`. Not called unless
    /// [`Tape::TRACING`].
    fn record<F>(&self, output: UniqueId, backward: F)
    where
        F: FnOnce(&mut Gradients<E, D>, &D::Vec) -> Result<(), Error> + Send + 'static;
}

/// No tape: nothing is recorded. The default for every tensor.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NoneTape;

impl<E: Unit, D: Storage<E>> Tape<E, D> for NoneTape {
    const TRACING: bool = false;
    fn record<F>(&self, _: UniqueId, _: F) {}
}

/// A recording tape, shared by every tensor computed from one traced input.
///
/// Cloning a traced tensor clones the handle, not the recording, so a tensor used
/// twice, a residual connection, or two losses summed all record into one graph. When
/// an op combines tensors from two different tapes, the tapes merge.
pub struct OwnedTape<E: Unit, D: Storage<E>> {
    cell: Arc<Mutex<TapeState<E, D>>>,
}

pub(crate) struct RecordedOp<E: Unit, D: Storage<E>> {
    pub(crate) output: UniqueId,
    pub(crate) backward: BackwardFn<E, D>,
}

enum TapeState<E: Unit, D: Storage<E>> {
    Recording {
        ops: Vec<RecordedOp<E, D>>,
        grads: Gradients<E, D>,
    },
    /// This tape was merged into another; record there.
    MergedInto(Arc<Mutex<TapeState<E, D>>>),
    /// `backward` already ran on this tape.
    Consumed,
}

impl<E: Unit, D: Storage<E>> Clone for OwnedTape<E, D> {
    fn clone(&self) -> Self {
        Self {
            cell: self.cell.clone(),
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
        Self {
            cell: Arc::new(Mutex::new(TapeState::Recording { ops: Vec::new(), grads })),
        }
    }

    /// The cell recording happens in, following merges.
    fn root(&self) -> Arc<Mutex<TapeState<E, D>>> {
        let mut cell = self.cell.clone();
        loop {
            let next = match &*lock(&cell) {
                TapeState::MergedInto(next) => Some(next.clone()),
                _ => None,
            };
            match next {
                Some(next) => cell = next,
                None => return cell,
            }
        }
    }

    /// Joins two tapes so that both record into one.
    pub(crate) fn merge(self, other: Self) -> Self {
        let (a, b) = (self.root(), other.root());
        if Arc::ptr_eq(&a, &b) {
            return self;
        }
        let taken = std::mem::replace(&mut *lock(&b), TapeState::MergedInto(a.clone()));
        if let TapeState::Recording {
            ops: other_ops,
            grads: other_grads,
        } = taken
            && let TapeState::Recording { ops, grads } = &mut *lock(&a)
        {
            ops.extend(other_ops);
            grads.absorb(other_grads);
        }
        self
    }

    /// Takes the recording out for `backward`, leaving the tape consumed.
    pub(crate) fn take(&self) -> Result<Recording<E, D>, Error> {
        let root = self.root();
        match std::mem::replace(&mut *lock(&root), TapeState::Consumed) {
            TapeState::Recording { ops, grads } => Ok((ops, grads)),
            _ => Err(Error::TapeAlreadyConsumed),
        }
    }
}

impl<E: Unit, D: Storage<E>> Tape<E, D> for OwnedTape<E, D> {
    const TRACING: bool = true;

    fn record<F>(&self, output: UniqueId, backward: F)
    where
        F: FnOnce(&mut Gradients<E, D>, &D::Vec) -> Result<(), Error> + Send + 'static,
    {
        let root = self.root();
        if let TapeState::Recording { ops, .. } = &mut *lock(&root) {
            ops.push(RecordedOp {
                output,
                backward: Box::new(backward),
            });
        }
    }
}

/// The tape of a result computed from operands with tapes `L` and `R`.
pub type MergedTape<L, R> = <L as MergeTapes<R>>::Output;

/// The recording `backward` takes out of a tape.
type Recording<E, D> = (Vec<RecordedOp<E, D>>, Gradients<E, D>);

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
