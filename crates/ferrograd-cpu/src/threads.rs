//! How many threads the CPU kernels use, and the one pool they share.
//!
//! Like `torch.set_num_threads`, one setting governs every threaded kernel: the GEMMs,
//! reductions and softmax. It is, in order, what [`set_num_threads`] last set, else
//! the environment variable `FERROGRAD_NUM_THREADS`, else the number of cores the
//! process may run on.
//!
//! A kernel split across `n` threads publishes its shares to a pool of `n - 1` workers
//! and claims shares itself until none is left, so it never waits for a worker to wake
//! up: a sleeping worker only means the caller does more of the work. Workers that have
//! just finished spin for [`SPIN_BEFORE_SLEEPING`] before they sleep, so the next
//! kernel of a training step finds them awake (waking a sleeping thread took 10–50 µs
//! here, as long as a whole 128³ product). OpenMP runtimes, which PyTorch uses, do the
//! same with a longer spin.

use ferrograd_device::Error;
use std::any::Any;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock, PoisonError, RwLock, TryLockError};
use std::time::{Duration, Instant};

/// The environment variable read when no thread count was set in the program.
pub const NUM_THREADS_ENV: &str = "FERROGRAD_NUM_THREADS";

/// How long an idle worker keeps looking for work before it sleeps: longer than the
/// gaps between the threaded kernels of a small model's training step, short enough
/// that a program that stops computing frees its cores at once to the eye.
const SPIN_BEFORE_SLEEPING: Duration = Duration::from_micros(200);

/// The count [`set_num_threads`] set; 0 until then.
static SET: AtomicUsize = AtomicUsize::new(0);

/// The workers, built for a thread count and rebuilt when it changes.
static POOL: RwLock<Option<(usize, Arc<Pool>)>> = RwLock::new(None);

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
fn pool() -> Option<Arc<Pool>> {
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
    let mut slot = POOL.write().unwrap_or_else(PoisonError::into_inner);
    if let Some((built_for, pool)) = &*slot
        && *built_for == threads
    {
        return Some(pool.clone());
    }
    let pool = Arc::new(Pool::start(threads - 1));
    // The old pool's workers leave; a kernel still holding it finishes on its own.
    if let Some((_, old)) = slot.replace((threads, pool.clone())) {
        old.shared.stop();
    }
    Some(pool)
}

/// Runs `work(k)` for every share `k` in `0..shares` and returns the results in order,
/// the calling thread and the pool's workers taking shares as they are free.
pub(crate) fn map_shares<R: Send>(shares: usize, work: impl Fn(usize) -> R + Sync) -> Vec<R> {
    let results: Vec<Mutex<Option<R>>> = (0..shares).map(|_| Mutex::new(None)).collect();
    let probe = &probe::current();
    run_shares(shares, &|k| {
        let result = probe::recorded(probe, || work(k));
        *results[k].lock().unwrap_or_else(PoisonError::into_inner) = Some(result);
    });
    results
        .into_iter()
        .map(|slot| {
            let result = slot.into_inner().unwrap_or_else(PoisonError::into_inner);
            result.expect("every share ran")
        })
        .collect()
}

/// Calls `work(index, chunk)` on consecutive chunks of `data` of `chunk_len`
/// elements (the last may be shorter), the calling thread and the pool's workers
/// taking chunks as they are free.
pub(crate) fn for_each_chunk_mut<E: Send>(data: &mut [E], chunk_len: usize, work: impl Fn(usize, &mut [E]) + Sync) {
    let probe = &probe::current();
    let chunks: Vec<Mutex<Option<&mut [E]>>> = data.chunks_mut(chunk_len.max(1)).map(|c| Mutex::new(Some(c))).collect();
    run_shares(chunks.len(), &|k| {
        let chunk = chunks[k].lock().unwrap_or_else(PoisonError::into_inner).take();
        if let Some(chunk) = chunk {
            probe::recorded(probe, || work(k, chunk));
        }
    });
}

/// Runs `run(k)` for every `k` in `0..shares`, on the pool when there is one and it is
/// free (a kernel called from inside a share, or while another thread's kernel has the
/// pool, runs on its calling thread alone). A panic in a share is raised again here,
/// after every share has ended.
fn run_shares(shares: usize, run: &(dyn Fn(usize) + Sync)) {
    if shares == 1 {
        return run(0);
    }
    let Some(pool) = pool() else {
        return run_here(shares, run);
    };
    // (A share's panic passes through here and poisons the lock; the pool is sound.)
    let _pool_is_ours = match pool.in_use.try_lock() {
        Ok(ours) => ours,
        Err(TryLockError::Poisoned(poisoned)) => poisoned.into_inner(),
        Err(TryLockError::WouldBlock) => return run_here(shares, run),
    };
    pool.shared.run(shares, run);
}

/// Runs every share on the calling thread, under the pool's rule for panics (every
/// share runs; the first panic is raised again at the end), so that a kernel behaves
/// the same whether or not the pool was free.
fn run_here(shares: usize, run: &(dyn Fn(usize) + Sync)) {
    let job = Job::new(run, shares, 0);
    job.work();
    job.raise_panic();
}

/// Threads that take shares of the kernels the calling threads publish.
struct Pool {
    shared: Arc<Shared>,
    /// Held by the thread whose kernel is published, so that one kernel at a time is.
    in_use: Mutex<()>,
}

impl Pool {
    /// Starts `workers` threads (fewer where the system refuses one: the callers then
    /// do more of the work).
    fn start(workers: usize) -> Self {
        let shared = Arc::new(Shared::default());
        for index in 0..workers {
            let shared = shared.clone();
            let _ = std::thread::Builder::new()
                .name(format!("ferrograd-worker-{index}"))
                .spawn(move || shared.work_until_stopped());
        }
        Self {
            shared,
            in_use: Mutex::new(()),
        }
    }
}

/// One kernel's shares, published to the workers while the caller works on them too.
struct Job<'a> {
    run: &'a (dyn Fn(usize) + Sync),
    shares: usize,
    /// The next share to claim; at or past `shares` when all are claimed.
    next: AtomicUsize,
    /// Shares that have ended (a panicked share has ended too).
    ended: AtomicUsize,
    /// The first panic of a share, raised again by the caller.
    panic: Mutex<Option<Box<dyn Any + Send>>>,
}

impl<'a> Job<'a> {
    /// A job of `shares` shares, the first to claim being `first_claim`.
    fn new(run: &'a (dyn Fn(usize) + Sync), shares: usize, first_claim: usize) -> Self {
        Job {
            run,
            shares,
            next: AtomicUsize::new(first_claim),
            ended: AtomicUsize::new(0),
            panic: Mutex::new(None),
        }
    }

    /// Raises again the first panic of a share, if any.
    fn raise_panic(self) {
        if let Some(payload) = self.panic.into_inner().unwrap_or_else(PoisonError::into_inner) {
            resume_unwind(payload);
        }
    }

    /// Runs shares until none is left to claim; whether there was any.
    fn work(&self) -> bool {
        let mut claimed_any = false;
        loop {
            let share = self.next.fetch_add(1, Ordering::Relaxed);
            if share >= self.shares {
                return claimed_any;
            }
            claimed_any = true;
            self.run_share(share);
        }
    }

    /// Runs one share, keeping its panic for the caller.
    fn run_share(&self, share: usize) {
        if let Err(payload) = catch_unwind(AssertUnwindSafe(|| (self.run)(share))) {
            self.panic
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .get_or_insert(payload);
        }
        self.ended.fetch_add(1, Ordering::Release);
    }
}

/// What the callers and the workers of one pool share.
#[derive(Default)]
struct Shared {
    /// The published job, or null. Its lifetime is erased: the caller that published
    /// it keeps it alive until it has taken it back and no worker is using it.
    job: AtomicPtr<Job<'static>>,
    /// Counts publications, so that a worker tells a new job from the one it finished
    /// (a job on the same stack slot has the same address).
    published: AtomicUsize,
    /// Workers that may be reading the published job.
    using_job: AtomicUsize,
    /// Workers asleep, or about to sleep, on `wake`.
    sleepers: AtomicUsize,
    sleep: Mutex<()>,
    wake: Condvar,
    stopped: AtomicBool,
}

impl Shared {
    /// The caller's side: publishes the job, works on it, waits for the shares the
    /// workers claimed, and takes the job back.
    fn run(&self, shares: usize, run: &(dyn Fn(usize) + Sync)) {
        // Share 0 is the caller's: a kernel called again with the same operands then
        // finds its part of them in its own core's cache.
        let job = Job::new(run, shares, 1);
        let pointer: *const Job<'_> = &job;
        self.job.store(pointer.cast_mut().cast(), Ordering::SeqCst);
        self.published.fetch_add(1, Ordering::SeqCst);
        if self.sleepers.load(Ordering::SeqCst) > 0 {
            let _sleep = self.sleep.lock().unwrap_or_else(PoisonError::into_inner);
            self.wake.notify_all();
        }
        job.run_share(0);
        job.work();
        wait_until(|| job.ended.load(Ordering::Acquire) == shares);
        self.job.store(std::ptr::null_mut(), Ordering::SeqCst);
        wait_until(|| self.using_job.load(Ordering::SeqCst) == 0);
        job.raise_panic();
    }

    /// A worker's life: take shares of published jobs; when there are none, spin a
    /// while, then sleep until the next publication.
    fn work_until_stopped(&self) {
        let mut seen = self.published.load(Ordering::SeqCst);
        let mut idle_since = Instant::now();
        while !self.stopped.load(Ordering::Acquire) {
            let published = self.published.load(Ordering::SeqCst);
            if published != seen {
                seen = published;
                if self.help() {
                    idle_since = Instant::now();
                }
                continue;
            }
            if idle_since.elapsed() < SPIN_BEFORE_SLEEPING {
                for _ in 0..64 {
                    std::hint::spin_loop();
                }
                continue;
            }
            let sleep = self.sleep.lock().unwrap_or_else(PoisonError::into_inner);
            self.sleepers.fetch_add(1, Ordering::SeqCst);
            // A caller publishes, then reads `sleepers`; this worker counts itself, then
            // reads `published`: one of the two sees the other's write, so a job
            // published now is either seen here or followed by a wake-up.
            if self.published.load(Ordering::SeqCst) == seen && !self.stopped.load(Ordering::SeqCst) {
                drop(self.wake.wait(sleep).unwrap_or_else(PoisonError::into_inner));
            } else {
                drop(sleep);
            }
            self.sleepers.fetch_sub(1, Ordering::SeqCst);
            idle_since = Instant::now();
        }
    }

    /// Takes shares of the published job, if any; whether it ran one.
    fn help(&self) -> bool {
        self.using_job.fetch_add(1, Ordering::SeqCst);
        // Read after counting this worker in: a caller takes its job back, then waits
        // for `using_job` to fall to zero, so a job read here stays alive until the
        // count is dropped below.
        let job = self.job.load(Ordering::SeqCst);
        // SAFETY: `job` is null or points to the `Job` a caller published and keeps
        // alive (see above) until this worker leaves `using_job`.
        let ran = unsafe { job.as_ref() }.is_some_and(Job::work);
        self.using_job.fetch_sub(1, Ordering::SeqCst);
        ran
    }

    /// Lets the workers leave once they are idle.
    fn stop(&self) {
        self.stopped.store(true, Ordering::SeqCst);
        let _sleep = self.sleep.lock().unwrap_or_else(PoisonError::into_inner);
        self.wake.notify_all();
    }
}

/// Spins until `done()`, yielding the core after a while: what it waits for is a share
/// running on another thread, which may have been preempted.
fn wait_until(done: impl Fn() -> bool) {
    let mut spins = 0u32;
    while !done() {
        if spins < 1 << 12 {
            spins += 1;
            std::hint::spin_loop();
        } else {
            std::thread::yield_now();
        }
    }
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
    use ferrograd_device::view::InputView;
    use ferrograd_device::{Input, Layout, Storage, View};

    /// Held by each test that sets the thread count, which is global.
    static SETTING: Mutex<()> = Mutex::new(());

    fn hold_setting() -> std::sync::MutexGuard<'static, ()> {
        SETTING.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Each threaded kernel family (reduction, softmax, every GEMM backend the CPU
    /// runs) on inputs large enough to be split: with the setting at 1 every share runs
    /// on the calling thread; at 2 on exactly two threads. Results are checked too.
    #[test]
    fn threaded_kernels_use_exactly_the_threads_set() {
        let _setting = hold_setting();
        let cpu = Cpu::default();
        let (rows, columns) = (1024, 1024);
        let ones: crate::CpuBuffer<f32> = cpu.try_alloc_filled(rows * columns, 1.0).unwrap();
        let layout = Layout::from_parts(&[rows, columns], &[columns, 1]);
        let n = 256;
        let a = vec![1.0f32; n * n];
        let b = vec![0.5f32; n * n];
        let caller = std::thread::current().id();
        // With 1 thread no other thread may run a share. With 2, at most two may in one
        // call, and over several calls two must have: any thread free claims the next
        // share, so in one call the caller, or an early worker, may rightly run them all.
        let check_threads = |what: &str, threads: usize, kernel: &mut dyn FnMut()| {
            let mut all_seen = std::collections::HashSet::new();
            for _try in 0..100 {
                let ((), seen) = probe::threads_used(&mut *kernel);
                if threads == 1 {
                    assert!(seen.iter().all(|&id| id == caller), "{what} with 1 thread: {seen:?}");
                    return;
                }
                assert!(seen.len() <= threads, "{what} with {threads} threads: {seen:?}");
                all_seen.extend(seen);
                if all_seen.len() == threads {
                    return;
                }
            }
            panic!("{what} never ran on {threads} threads: {all_seen:?}");
        };
        for threads in [1, 2] {
            set_num_threads(threads);
            check_threads("sum along rows", threads, &mut || {
                let sums = SumKernel::forward(&cpu, View::new(&ones, layout), &[1]).unwrap();
                assert!(sums.iter().all(|&s| s == columns as f32));
            });
            check_threads("softmax", threads, &mut || {
                let input = InputView::new(Input::Shared(&ones), layout);
                let softmax = SoftmaxKernel::forward(&cpu, SoftmaxKind::Softmax, input, &[1]).unwrap();
                assert!(softmax.iter().all(|&p| (p - 1.0 / columns as f32).abs() < 1e-9));
            });
            // A BLAS library keeps threads of its own, which the probe cannot see.
            for backend in Backend::available().into_iter().filter(|&b| b != Backend::Blas) {
                check_threads(&format!("{} GEMM", backend.name()), threads, &mut || {
                    let mut c = vec![0.0f32; n * n];
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
                    );
                    assert!(c.iter().all(|&x| x == 0.5 * n as f32));
                });
            }
        }
    }

    /// A panic in a share reaches the kernel's caller once every share has ended, and
    /// the pool keeps working afterwards.
    #[test]
    fn a_panicking_share_panics_its_caller() {
        let _setting = hold_setting();
        set_num_threads(2);
        let check = |how: &str| {
            let ended = AtomicUsize::new(0);
            let outcome = catch_unwind(AssertUnwindSafe(|| {
                map_shares(8, |k| {
                    if k == 5 {
                        panic!("share five");
                    }
                    ended.fetch_add(1, Ordering::SeqCst);
                })
            }));
            let payload = outcome.expect_err("the share's panic reaches the caller");
            assert_eq!(payload.downcast_ref::<&str>(), Some(&"share five"), "{how}");
            assert_eq!(ended.load(Ordering::SeqCst), 7, "{how}: every other share runs");
            assert_eq!(map_shares(4, |k| k * 10), [0, 10, 20, 30], "{how}");
        };
        check("on the pool, when it is free");
        // Busy (another thread's kernel holds it): the calling thread runs every share,
        // with the same rule for panics.
        let pool = pool().expect("2 threads have a pool");
        let _busy = pool.in_use.lock().unwrap_or_else(PoisonError::into_inner);
        check("on the calling thread, when the pool is busy");
    }

    /// Kernels called from several threads at once, and from inside a share, all
    /// finish with every share run once.
    #[test]
    fn concurrent_and_nested_kernels_run_every_share_once() {
        let _setting = hold_setting();
        set_num_threads(2);
        std::thread::scope(|scope| {
            for t in 0..4 {
                scope.spawn(move || {
                    for round in 0..if cfg!(miri) { 3 } else { 200 } {
                        let nested = map_shares(3, |k| map_shares(2, |j| k * 2 + j).iter().sum::<usize>());
                        assert_eq!(nested, [1, 5, 9], "thread {t} round {round}");
                        let mut data = vec![0usize; 10];
                        for_each_chunk_mut(&mut data, 3, |first, chunk| {
                            for (i, x) in chunk.iter_mut().enumerate() {
                                *x += first * 3 + i;
                            }
                        });
                        assert_eq!(data, (0..10).collect::<Vec<_>>());
                    }
                });
            }
        });
    }

    #[test]
    fn thread_counts_from_the_environment_are_whole_numbers_of_at_least_one() {
        assert_eq!(parse_threads("3"), Some(3));
        assert_eq!(parse_threads(" 1 "), Some(1));
        assert_eq!(parse_threads("0"), None);
        assert_eq!(parse_threads("two"), None);
        assert_eq!(parse_threads(""), None);
        let _setting = hold_setting();
        assert!(try_set_num_threads(0).is_err());
    }
}
