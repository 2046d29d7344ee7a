//! Recorded backward steps, stored one after another in one growing buffer per tape.
//!
//! Boxing every step's closure cost one heap allocation per traced op, a third of
//! what recording a small op cost; a fixed inline slot per op cost as much again in
//! copying. So a tape writes each closure, at its own size, at the end of one buffer
//! of machine words (its *arena*), and calls it there. A closure aligned to more than
//! a word (rare) is boxed and the box stored instead. Closures are plain values, so
//! the arena may move them bitwise when it grows or when two tapes merge.

use crate::backward::BackwardContext;
use ferrograd_device::{Error, Storage, Unit};
use std::marker::PhantomData;
use std::mem::{MaybeUninit, align_of, size_of};

type Word = MaybeUninit<usize>;

/// A type that is `Send` and not `Sync`, whatever `T` is.
type SendNotSync<T> = (Box<dyn Send>, fn() -> T);

/// Reads a closure out of the arena at the given word and calls it.
type CallFn<E, D> = unsafe fn(*mut Word, &mut BackwardContext<'_, E, D>) -> Result<(), Error>;
/// Drops a closure in place at the given word, when it is never called.
type DropFn = unsafe fn(*mut Word);

/// Words before each closure: its call and drop functions.
const HEADER_WORDS: usize = 2;

/// Where a step lives in its arena. Holding one means the closure there is live:
/// [`Steps::call`] and [`Steps::drop_step`] consume it. It names no types, so a
/// tape's list of ops can be kept and reused by the next tape on the thread.
#[derive(Debug)]
pub(crate) struct StepRef {
    /// The step's first word (its header) in the arena.
    offset: usize,
}

/// The arena: the steps a tape recorded, each a header and a closure, back to back.
pub(crate) struct Steps<E: Unit, D: Storage<E>> {
    arena: Vec<Word>,
    /// The closures are `Send` but maybe not `Sync`, so is this; and they take
    /// contexts of `E` on `D`.
    _marker: PhantomData<SendNotSync<(E, D)>>,
}

const fn fits_a_word_alignment<F>() -> bool {
    align_of::<F>() <= align_of::<Word>()
}

unsafe fn call_in_place<E: Unit, D: Storage<E>, F>(
    at: *mut Word,
    context: &mut BackwardContext<'_, E, D>,
) -> Result<(), Error>
where
    F: FnOnce(&mut BackwardContext<'_, E, D>) -> Result<(), Error>,
{
    // SAFETY: the caller passes where a live `F` was written, and gives up its
    // `StepRef`, so the closure is read out exactly once.
    let step = unsafe { at.cast::<F>().read() };
    step(context)
}

unsafe fn drop_in_place<F>(at: *mut Word) {
    // SAFETY: the caller passes where a live `F` was written and gives up its `StepRef`.
    unsafe { at.cast::<F>().drop_in_place() }
}

impl<E: Unit, D: Storage<E>> Steps<E, D> {
    /// An arena over `arena`'s memory, emptied first (the next tape reuses the last
    /// one's).
    pub(crate) fn reusing(mut arena: Vec<MaybeUninit<usize>>) -> Self {
        arena.clear();
        Self {
            arena,
            _marker: PhantomData,
        }
    }

    /// The arena's memory, for the next tape, once every step in it is gone.
    pub(crate) fn into_memory(self) -> Vec<MaybeUninit<usize>> {
        self.arena
    }

    /// Stores `step` at the end of the arena.
    pub(crate) fn push<F>(&mut self, step: F) -> StepRef
    where
        F: FnOnce(&mut BackwardContext<'_, E, D>) -> Result<(), Error> + Send + 'static,
    {
        if fits_a_word_alignment::<F>() {
            self.push_aligned(step)
        } else {
            self.push_aligned(Box::new(step))
        }
    }

    fn push_aligned<F>(&mut self, step: F) -> StepRef
    where
        F: FnOnce(&mut BackwardContext<'_, E, D>) -> Result<(), Error> + Send + 'static,
    {
        assert!(
            fits_a_word_alignment::<F>(),
            "Steps::push_aligned: over-aligned closure"
        );
        const { assert!(size_of::<CallFn<E, D>>() <= size_of::<Word>() && size_of::<DropFn>() <= size_of::<Word>()) };
        let offset = self.arena.len();
        let words = HEADER_WORDS + size_of::<F>().div_ceil(size_of::<Word>());
        self.arena.reserve(words);
        let call: CallFn<E, D> = call_in_place::<E, D, F>;
        let drop: DropFn = drop_in_place::<F>;
        // SAFETY: `reserve` made room for `words` words past `offset`: the two header
        // words take a function pointer each (word-sized, asserted at compile time above),
        // and the rest hold `size_of::<F>()` bytes at a word-aligned address, enough
        // for `F` (asserted above). Nothing live is overwritten, and `MaybeUninit`
        // words need no initialisation to be counted in the length.
        unsafe {
            let at = self.arena.as_mut_ptr().add(offset);
            at.cast::<CallFn<E, D>>().write(call);
            at.add(1).cast::<DropFn>().write(drop);
            at.add(HEADER_WORDS).cast::<F>().write(step);
            self.arena.set_len(offset + words);
        }
        StepRef { offset }
    }

    /// Runs the step `step` refers to, consuming it.
    pub(crate) fn call(&mut self, step: StepRef, context: &mut BackwardContext<'_, E, D>) -> Result<(), Error> {
        // SAFETY: a `StepRef` exists only for a live step of this arena (made by
        // `push`, or moved here with its words by `append`), whose header holds the
        // call function of its closure's type for this `E` and `D`; it is consumed.
        unsafe {
            let at = self.arena.as_mut_ptr().add(step.offset);
            let call = at.cast::<CallFn<E, D>>().read();
            call(at.add(HEADER_WORDS), context)
        }
    }

    /// Drops the step `step` refers to without running it.
    pub(crate) fn drop_step(&mut self, step: StepRef) {
        // SAFETY: as in `call`, with the header's drop function.
        unsafe {
            let at = self.arena.as_mut_ptr().add(step.offset);
            let drop = at.add(1).cast::<DropFn>().read();
            drop(at.add(HEADER_WORDS));
        }
    }

    /// Moves every step of `other` to the end of this arena, returning by how many
    /// words their offsets shift (see [`StepRef::shift`]).
    pub(crate) fn append(&mut self, other: Steps<E, D>) -> usize {
        let shift = self.arena.len();
        // The closures move bitwise, as any Rust value may; `other` then holds none.
        self.arena.extend_from_slice(&other.arena);
        shift
    }
}

impl StepRef {
    /// The same step after its arena was appended to another at `shift` words.
    pub(crate) fn shift(&mut self, shift: usize) {
        self.offset += shift;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gradients::Gradients;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A stand-in device: only the type matters, no step here touches it.
    #[derive(Clone, Debug)]
    struct NoDevice;
    impl Storage<f32> for NoDevice {
        type Vec = Vec<f32>;
        fn try_alloc_zeros(&self, len: usize) -> Result<Vec<f32>, Error> {
            Ok(vec![0.0; len])
        }
        fn try_alloc_filled(&self, len: usize, value: f32) -> Result<Vec<f32>, Error> {
            Ok(vec![value; len])
        }
        fn try_fill(&self, buffer: &mut Vec<f32>, value: f32) -> Result<(), Error> {
            buffer.fill(value);
            Ok(())
        }
        fn try_from_host(&self, data: Vec<f32>) -> Result<Vec<f32>, Error> {
            Ok(data)
        }
        fn try_to_host(&self, buffer: &Vec<f32>) -> Result<Vec<f32>, Error> {
            Ok(buffer.clone())
        }
        fn len(buffer: &Vec<f32>) -> usize {
            buffer.len()
        }
    }

    /// Counts drops of what a step captured.
    struct Guard(Arc<AtomicUsize>);
    impl Drop for Guard {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn run(steps: &mut Steps<f32, NoDevice>, step: StepRef) -> Result<(), Error> {
        let device = NoDevice;
        let mut grads = Gradients::default();
        let mut context = BackwardContext::for_test(&device, &mut grads);
        steps.call(step, &mut context)
    }

    #[repr(align(64))]
    struct OverAligned(u8);

    #[test]
    fn steps_of_every_size_run_once_and_drop_what_they_captured() {
        let drops = Arc::new(AtomicUsize::new(0));
        let calls = Arc::new(AtomicUsize::new(0));
        // A tiny arena, so pushing grows (moves) it under the closures already there.
        let mut steps = Steps::reusing(Vec::with_capacity(1));
        let mut refs = Vec::new();
        for size in [0usize, 1, 7, 100, 1000] {
            let (guard, counter) = (Guard(drops.clone()), calls.clone());
            let payload = vec![1u8; size];
            let big = [size as u64; 40];
            refs.push(steps.push(move |_: &mut BackwardContext<'_, f32, NoDevice>| {
                let _keep = (&guard, big);
                counter.fetch_add(payload.len(), Ordering::SeqCst);
                Ok(())
            }));
        }
        let (guard, counter) = (Guard(drops.clone()), calls.clone());
        let aligned = OverAligned(3);
        refs.push(steps.push(move |_: &mut BackwardContext<'_, f32, NoDevice>| {
            let _keep = &guard;
            counter.fetch_add(aligned.0 as usize, Ordering::SeqCst);
            Ok(())
        }));
        // Run them in reverse, as backward does.
        while let Some(step) = refs.pop() {
            run(&mut steps, step).unwrap();
        }
        assert_eq!(calls.load(Ordering::SeqCst), 1 + 7 + 100 + 1000 + 3);
        assert_eq!(
            drops.load(Ordering::SeqCst),
            6,
            "each capture dropped once, after its call"
        );
    }

    #[test]
    fn appended_and_uncalled_steps_are_dropped_once() {
        let drops = Arc::new(AtomicUsize::new(0));
        let mut first = Steps::<f32, NoDevice>::reusing(Vec::with_capacity(4));
        let mut second = Steps::<f32, NoDevice>::reusing(Vec::new());
        let guard = Guard(drops.clone());
        let a = first.push(move |_| {
            let _keep = &guard;
            Ok(())
        });
        let guard = Guard(drops.clone());
        let payload = [9u64; 30];
        let mut b = second.push(move |_| {
            let _keep = (&guard, payload);
            Err(Error::TapeAlreadyConsumed)
        });
        b.shift(first.append(second));
        assert!(matches!(run(&mut first, b), Err(Error::TapeAlreadyConsumed)));
        first.drop_step(a);
        assert_eq!(drops.load(Ordering::SeqCst), 2);
    }
}
