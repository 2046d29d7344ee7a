//! A recorded backward step, stored inside the tape's list of ops when it is small.
//!
//! Boxing every step's closure was one heap allocation per traced op, a third of what
//! recording a small op cost. Nearly every step (a layout, a buffer handle or two, an
//! op's parameters) fits in [`INLINE_WORDS`] machine words, so it is written into the
//! op's slot of the tape itself; a larger one is boxed and the box stored there.

use crate::backward::BackwardContext;
use ferrograd_device::{Error, Storage, Unit};
use std::marker::PhantomData;
use std::mem::{MaybeUninit, align_of, size_of};

/// Words of inline storage: room for a closure holding two layouts and a few handles.
const INLINE_WORDS: usize = 40;

type InlineBytes = MaybeUninit<[usize; INLINE_WORDS]>;

/// A `FnOnce(&mut BackwardContext) -> Result<(), Error> + Send`, called at most once.
pub(crate) struct BackwardStep<E: Unit, D: Storage<E>> {
    storage: InlineBytes,
    /// Reads the closure out of `storage` and calls it.
    call: unsafe fn(*mut InlineBytes, &mut BackwardContext<'_, E, D>) -> Result<(), Error>,
    /// Drops the closure in `storage` in place, when it is never called.
    drop: unsafe fn(*mut InlineBytes),
    /// Whether `storage` still holds a closure.
    live: bool,
    /// The closure is `Send` but maybe not `Sync`: so is this.
    _send: PhantomData<Box<dyn FnOnce() + Send>>,
}

/// Whether `F` can live in the inline storage.
const fn fits<F>() -> bool {
    size_of::<F>() <= size_of::<InlineBytes>() && align_of::<F>() <= align_of::<InlineBytes>()
}

unsafe fn call_inline<E: Unit, D: Storage<E>, F>(
    storage: *mut InlineBytes,
    context: &mut BackwardContext<'_, E, D>,
) -> Result<(), Error>
where
    F: FnOnce(&mut BackwardContext<'_, E, D>) -> Result<(), Error>,
{
    // SAFETY: `storage` holds a live `F` (written by `new`, which checked it fits), and
    // the caller marks it dead before calling, so it is read out exactly once.
    let step = unsafe { storage.cast::<F>().read() };
    step(context)
}

unsafe fn drop_inline<F>(storage: *mut InlineBytes) {
    // SAFETY: `storage` holds a live `F`, and the caller never uses it again.
    unsafe { storage.cast::<F>().drop_in_place() }
}

impl<E: Unit, D: Storage<E>> BackwardStep<E, D> {
    pub(crate) fn new<F>(step: F) -> Self
    where
        F: FnOnce(&mut BackwardContext<'_, E, D>) -> Result<(), Error> + Send + 'static,
    {
        if fits::<F>() {
            Self::inline(step)
        } else {
            Self::inline(Box::new(step))
        }
    }

    fn inline<F>(step: F) -> Self
    where
        F: FnOnce(&mut BackwardContext<'_, E, D>) -> Result<(), Error> + Send + 'static,
    {
        const { assert!(fits::<Box<()>>()) };
        assert!(
            fits::<F>(),
            "BackwardStep::inline called with a closure that does not fit"
        );
        let mut storage = InlineBytes::uninit();
        // SAFETY: `F` fits in `storage` in size and alignment (asserted above), and the
        // storage is fresh, so nothing is overwritten without being dropped.
        unsafe { storage.as_mut_ptr().cast::<F>().write(step) };
        Self {
            storage,
            call: call_inline::<E, D, F>,
            drop: drop_inline::<F>,
            live: true,
            _send: PhantomData,
        }
    }

    /// Runs the step, consuming it.
    pub(crate) fn call(mut self, context: &mut BackwardContext<'_, E, D>) -> Result<(), Error> {
        // Dead before the call, so a panicking step is not dropped a second time.
        self.live = false;
        // SAFETY: the closure was live (this is the only place that consumes one), and
        // `call` was made for the type `new` stored.
        unsafe { (self.call)(&mut self.storage, context) }
    }
}

impl<E: Unit, D: Storage<E>> Drop for BackwardStep<E, D> {
    fn drop(&mut self) {
        if self.live {
            // SAFETY: the closure is live and `drop` was made for its type; it is
            // marked dead so it cannot be dropped twice.
            self.live = false;
            unsafe { (self.drop)(&mut self.storage) }
        }
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

    fn run(step: BackwardStep<f32, NoDevice>) -> Result<(), Error> {
        let device = NoDevice;
        let mut grads = Gradients::default();
        let mut context = BackwardContext::for_test(&device, &mut grads);
        step.call(&mut context)
    }

    #[test]
    fn small_and_large_steps_run_once_and_drop_what_they_captured() {
        let drops = Arc::new(AtomicUsize::new(0));
        let calls = Arc::new(AtomicUsize::new(0));

        let (guard, counter) = (Guard(drops.clone()), calls.clone());
        let small = move |_: &mut BackwardContext<'_, f32, NoDevice>| {
            let _keep = &guard;
            counter.fetch_add(1, Ordering::SeqCst);
            Ok(())
        };
        assert!(fits::<Guard>());
        run(BackwardStep::new(small)).unwrap();

        let (guard, counter) = (Guard(drops.clone()), calls.clone());
        let big = [7u64; 2 * INLINE_WORDS];
        let large = move |_: &mut BackwardContext<'_, f32, NoDevice>| {
            let _keep = &guard;
            counter.fetch_add(big.iter().sum::<u64>() as usize, Ordering::SeqCst);
            Ok(())
        };
        run(BackwardStep::new(large)).unwrap();
        assert_eq!(calls.load(Ordering::SeqCst), 1 + 7 * 2 * INLINE_WORDS);
        assert_eq!(
            drops.load(Ordering::SeqCst),
            2,
            "each capture dropped once, after its call"
        );
    }

    #[test]
    fn steps_never_called_drop_what_they_captured() {
        let drops = Arc::new(AtomicUsize::new(0));
        let guard = Guard(drops.clone());
        drop(BackwardStep::<f32, NoDevice>::new(move |_| {
            let _keep = &guard;
            Ok(())
        }));
        let guard = Guard(drops.clone());
        let big = [1u8; 8 * INLINE_WORDS + 1];
        drop(BackwardStep::<f32, NoDevice>::new(move |_| {
            let _keep = (&guard, big);
            Ok(())
        }));
        assert_eq!(drops.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn an_error_from_a_step_comes_back() {
        let result = run(BackwardStep::new(|_| Err(Error::TapeAlreadyConsumed)));
        assert!(matches!(result, Err(Error::TapeAlreadyConsumed)));
    }
}
