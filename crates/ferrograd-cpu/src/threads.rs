//! How many threads the CPU kernels use, and the one pool they share.
//!
//! Like `torch.set_num_threads`, one setting governs every threaded kernel: the GEMMs,
//! reductions and softmax. It is, in order, what [`set_num_threads`] last set, else
//! the environment variable `FERROGRAD_NUM_THREADS`, else the number of cores the
//! process may run on. A kernel split across `n` threads runs one share on the calling
//! thread and the others on a pool of `n - 1` workers that stay alive between calls,
//! so a threaded kernel neither starts threads nor puts the caller to sleep while its
//! share waits.

use ferrograd_device::Error;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock, RwLock};

/// The environment variable read when no thread count was set in the program.
pub const NUM_THREADS_ENV: &str = "FERROGRAD_NUM_THREADS";

/// The count [`set_num_threads`] set; 0 until then.
static SET: AtomicUsize = AtomicUsize::new(0);

/// The workers, built for a thread count and rebuilt when it changes.
static POOL: RwLock<Option<(usize, Arc<rayon::ThreadPool>)>> = RwLock::new(None);

/// Sets the number of threads every CPU kernel may use, the calling thread included
/// (PyTorch's `torch.set_num_threads`). 1 runs everything on the calling thread.
///
/// ```
/// ferrograd_cpu::set_num_threads(1);
/// assert_eq!(ferrograd_cpu::num_threads(), 1);
/// # ferrograd_cpu::set_num_threads(2);
/// ```
///
/// # Panics
/// When `threads` is 0; see [`try_set_num_threads`].
#[track_caller]
pub fn set_num_threads(threads: usize) {
    if let Err(error) = try_set_num_threads(threads) {
        panic!("{error}");
    }
}

/// [`set_num_threads`], returning `Error::InvalidArgument` for 0 threads.
pub fn try_set_num_threads(threads: usize) -> Result<(), Error> {
    if threads == 0 {
        return Err(Error::InvalidArgument {
            op: "set_num_threads",
            message: "the thread count must be at least 1, got 0".into(),
        });
    }
    SET.store(threads, Ordering::Relaxed);
    crate::gemm::set_blas_threads(threads);
    Ok(())
}

/// The number of threads CPU kernels use: what [`set_num_threads`] set, else
/// `FERROGRAD_NUM_THREADS`, else the cores available to the process.
pub fn num_threads() -> usize {
    match SET.load(Ordering::Relaxed) {
        0 => default_threads(),
        set => set,
    }
}

/// The count from the environment, or the cores available; read once.
fn default_threads() -> usize {
    static DEFAULT: OnceLock<usize> = OnceLock::new();
    *DEFAULT.get_or_init(|| {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        match std::env::var(NUM_THREADS_ENV) {
            Ok(value) => parse_threads(&value).unwrap_or_else(|| {
                eprintln!("ferrograd: ignoring {NUM_THREADS_ENV}={value:?}: expected a whole number of at least 1");
                cores
            }),
            Err(_) => cores,
        }
    })
}

fn parse_threads(value: &str) -> Option<usize> {
    value.trim().parse().ok().filter(|&n| n >= 1)
}

/// The pool's workers for the current setting (one fewer than the setting: the caller
/// is the other), or `None` when kernels run on the calling thread alone.
fn pool() -> Option<Arc<rayon::ThreadPool>> {
    let threads = num_threads();
    if threads < 2 {
        return None;
    }
    if let Ok(pool) = POOL.read()
        && let Some((built_for, pool)) = &*pool
        && *built_for == threads
    {
        return Some(pool.clone());
    }
    let mut slot = POOL.write().unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some((built_for, pool)) = &*slot
        && *built_for == threads
    {
        return Some(pool.clone());
    }
    // Where threads cannot be started, kernels run on the calling thread.
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads - 1)
        .thread_name(|index| format!("ferrograd-worker-{index}"))
        .build()
        .ok()
        .map(Arc::new)?;
    *slot = Some((threads, pool.clone()));
    Some(pool)
}

/// Runs `work(k)` for every share `k` in `0..shares` and returns the results in order:
/// share 0 on the calling thread, the others on the pool (or all on the calling
/// thread when the setting is 1).
pub(crate) fn map_shares<R: Send>(shares: usize, work: impl Fn(usize) -> R + Sync) -> Vec<R> {
    let mut results: Vec<Option<R>> = (0..shares).map(|_| None).collect();
    let probe = &probe::current();
    match pool() {
        Some(pool) if shares > 1 => {
            let work = &work;
            let (first, rest) = results.split_first_mut().expect("shares > 1");
            pool.in_place_scope(|scope| {
                for (k, slot) in rest.iter_mut().enumerate() {
                    scope.spawn(move |_| *slot = Some(probe::recorded(probe, || work(k + 1))));
                }
                *first = Some(probe::recorded(probe, || work(0)));
            });
        }
        _ => {
            for (k, slot) in results.iter_mut().enumerate() {
                *slot = Some(probe::recorded(probe, || work(k)));
            }
        }
    }
    results
        .into_iter()
        .map(|result| result.expect("every share ran"))
        .collect()
}

/// Calls `work(first, chunk)` on consecutive chunks of `data` of `chunk_len`
/// elements (the last may be shorter), `first` being the chunk's index: the first
/// chunk on the calling thread, the others on the pool.
pub(crate) fn for_each_chunk_mut<E: Send>(data: &mut [E], chunk_len: usize, work: impl Fn(usize, &mut [E]) + Sync) {
    let probe = &probe::current();
    let pool = pool().filter(|_| data.len() > chunk_len);
    let Some(pool) = pool else {
        for (k, chunk) in data.chunks_mut(chunk_len.max(1)).enumerate() {
            probe::recorded(probe, || work(k, chunk));
        }
        return;
    };
    let work = &work;
    let mut chunks = data.chunks_mut(chunk_len).enumerate();
    let first = chunks.next();
    pool.in_place_scope(|scope| {
        for (k, chunk) in chunks {
            scope.spawn(move |_| probe::recorded(probe, || work(k, chunk)));
        }
        if let Some((_, chunk)) = first {
            probe::recorded(probe, || work(0, chunk));
        }
    });
}

/// For tests: which threads ran the shares of the kernels a thread called.
#[cfg(test)]
pub(crate) mod probe {
    use std::cell::RefCell;
    use std::collections::HashSet;
    use std::sync::{Arc, Mutex};
    use std::thread::ThreadId;

    /// The threads seen, when the thread that started the kernel is being probed.
    pub(crate) type Probe = Option<Arc<Mutex<HashSet<ThreadId>>>>;

    thread_local! {
        static PROBE: RefCell<Probe> = const { RefCell::new(None) };
    }

    /// Runs `f` and returns it with the threads that ran kernel shares meanwhile.
    pub(crate) fn threads_used<R>(f: impl FnOnce() -> R) -> (R, HashSet<ThreadId>) {
        let seen: Arc<Mutex<HashSet<ThreadId>>> = Arc::default();
        PROBE.with(|probe| *probe.borrow_mut() = Some(seen.clone()));
        let result = f();
        PROBE.with(|probe| *probe.borrow_mut() = None);
        let seen = seen.lock().unwrap().clone();
        (result, seen)
    }

    /// The calling thread's probe, to hand to the kernel's shares.
    pub(crate) fn current() -> Probe {
        PROBE.with(|probe| probe.borrow().clone())
    }

    /// Runs one share, noting the thread it runs on.
    pub(crate) fn recorded<R>(probe: &Probe, share: impl FnOnce() -> R) -> R {
        if let Some(seen) = probe {
            seen.lock().unwrap().insert(std::thread::current().id());
        }
        share()
    }
}

/// Outside tests the probe is nothing.
#[cfg(not(test))]
pub(crate) mod probe {
    pub(crate) type Probe = ();

    #[inline(always)]
    pub(crate) fn current() -> Probe {}

    #[inline(always)]
    pub(crate) fn recorded<R>(_: &Probe, share: impl FnOnce() -> R) -> R {
        share()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Cpu;
    use crate::gemm::{Backend, MatrixMut, MatrixRef, gemm_with};
    use ferrograd_device::ops::reduce::SumKernel;
    use ferrograd_device::ops::softmax::{SoftmaxKernel, SoftmaxKind};
    use ferrograd_device::{Input, Layout, Storage};

    /// Each threaded kernel family (reduction, softmax, every GEMM backend the CPU
    /// runs) on inputs large enough to be split: with the setting at 1 every share runs
    /// on the calling thread; at 2 on exactly two threads. Results are checked too.
    #[test]
    fn threaded_kernels_use_exactly_the_threads_set() {
        let cpu = Cpu::default();
        let (rows, columns) = (1024, 1024);
        let ones: crate::CpuBuffer<f32> = cpu.try_alloc_filled(rows * columns, 1.0).unwrap();
        let layout = Layout::from_parts(&[rows, columns], &[columns, 1]);
        let n = 256;
        let a = vec![1.0f32; n * n];
        let b = vec![0.5f32; n * n];
        let caller = std::thread::current().id();
        // With 1 thread a kernel may skip the share helpers altogether, so the check is
        // that no other thread ran any share; with 2, that exactly two did.
        let uses = |seen: &std::collections::HashSet<std::thread::ThreadId>, threads: usize| {
            if threads == 1 {
                seen.iter().all(|&id| id == caller)
            } else {
                seen.len() == threads
            }
        };
        for threads in [1, 2] {
            set_num_threads(threads);
            let (sums, seen) = probe::threads_used(|| SumKernel::forward(&cpu, &ones, &layout, &[1]).unwrap());
            assert!(sums.iter().all(|&s| s == columns as f32));
            assert!(
                uses(&seen, threads),
                "sum along rows with {threads} thread(s): {seen:?}"
            );

            let (softmax, seen) = probe::threads_used(|| {
                SoftmaxKernel::forward(&cpu, SoftmaxKind::Softmax, Input::Shared(&ones), &layout, &[1]).unwrap()
            });
            assert!(softmax.iter().all(|&p| (p - 1.0 / columns as f32).abs() < 1e-9));
            assert!(uses(&seen, threads), "softmax with {threads} thread(s): {seen:?}");

            for backend in Backend::available() {
                let mut c = vec![0.0f32; n * n];
                let ((), seen) = probe::threads_used(|| {
                    gemm_with(
                        backend,
                        n,
                        n,
                        n,
                        1.0,
                        MatrixRef::new(&a, n, 1),
                        MatrixRef::new(&b, n, 1),
                        0.0,
                        MatrixMut::new(&mut c, n, 1),
                    )
                });
                assert!(c.iter().all(|&x| x == 0.5 * n as f32));
                // A BLAS library keeps threads of its own, which the probe cannot see.
                if backend != Backend::Blas {
                    assert!(
                        uses(&seen, threads),
                        "{} GEMM with {threads} thread(s): {seen:?}",
                        backend.name()
                    );
                }
            }
        }
    }

    #[test]
    fn thread_counts_from_the_environment_are_whole_numbers_of_at_least_one() {
        assert_eq!(parse_threads("3"), Some(3));
        assert_eq!(parse_threads(" 1 "), Some(1));
        assert_eq!(parse_threads("0"), None);
        assert_eq!(parse_threads("two"), None);
        assert_eq!(parse_threads(""), None);
        assert!(try_set_num_threads(0).is_err());
    }
}
