//! The cost of the autograd tape on tiny tensors, where the arithmetic is nothing and the
//! bookkeeping (allocations, boxed closures, locks, hash maps) is everything; side by
//! side with PyTorch on one thread (issue #9).
//!
//! ```sh
//! cargo run --release -p ferrograd-benches --bin tape
//! ```
//!
//! Workloads, on `f32` `Rank1<4>` tensors on `Cpu`:
//! - the 16-op chain: `y = (y * 1.01 + 0.1).tanh()` five times, then `sum`; traced from
//!   fresh gradients (`x.clone().traced(x.alloc_grads())`) and followed by `backward`;
//! - the same chain untraced, forward only;
//! - one traced add of two tensors on one tape, then `sum` and `backward`; and `sum` and
//!   `backward` alone on the same setup. Their difference is the add's share: its
//!   forward plus its backward step.
//!
//! PyTorch runs the same workloads (`benches/torch/tape.py`) in rounds interleaved with
//! ours, so that machine noise hits both; each figure is the median time per iteration
//! over several batches. The interpreter is `$FERROGRAD_TORCH_PYTHON`, else the parity
//! venv (`target/parity-venv/bin/python`, made by `cargo xtask parity`); without one,
//! only ferrograd's figures are printed.
//!
//! PyTorch is set to one thread. ferrograd's thread count cannot be set yet, but ops
//! this small never leave the calling thread.
//!
//! A counting global allocator reports the heap allocations of one iteration of each
//! workload, split into forward and backward; unlike times, these are exact and the same
//! on every machine.
//!
//! Goals (issue #9): the traced chain in at most 0.02× PyTorch's time (0.037× when this
//! program was written), and at most one allocation on the forward path of an op whose
//! output reuses no buffer.

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::sync::atomic::{AtomicUsize, Ordering};

use ferrograd::prelude::*;
use ferrograd_benches::{BATCH, BATCHES, Row, Torch, median, per_iteration_us, record, rounds, spread};

/// Counts every allocation and reallocation (frees are not counted).
struct Counting;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is forwarded unchanged to `System`, which upholds the contract.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: the caller's guarantees for `alloc` are passed on as they are.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: as for `alloc`.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: `ptr` came from this allocator, which is `System` underneath.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as for `realloc`.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// The allocations `f` makes, and its result. Exact as long as no other thread
/// allocates meanwhile (none does: the PyTorch child is a separate process).
fn allocations<R>(f: impl FnOnce() -> R) -> (usize, R) {
    let before = ALLOCATIONS.load(Ordering::Relaxed);
    let result = f();
    (ALLOCATIONS.load(Ordering::Relaxed) - before, result)
}

type Vector<T = NoneTape> = Tensor<Rank1<4>, f32, Cpu, T>;
type Traced = Vector<OwnedTape<f32, Cpu>>;

/// The 16 ops: five of `y = (y * 1.01 + 0.1).tanh()`, then `sum`.
fn chain<T: Tape<f32, Cpu>>(mut y: Vector<T>) -> Tensor<Rank0, f32, Cpu, T> {
    for _ in 0..5 {
        y = (y * 1.01 + 0.1).tanh();
    }
    y.sum::<Rank0, _>()
}

/// `x` and `w` traced on one tape, with both gradients kept, as PyTorch's two leaves
/// with `requires_grad`.
fn traced_pair(x: &Vector, w: &Vector) -> (Traced, Traced) {
    let mut grads = x.alloc_grads();
    grads.try_alloc_for(w).unwrap();
    let (x, tape) = x.clone().traced(grads).split_tape();
    (x.put_tape(tape.clone()), w.clone().put_tape(tape))
}

const ROUNDS: usize = 3;

/// Workload names as `tape.py` prints them, with their labels here.
const WORKLOADS: [(&str, &str); 4] = [
    ("chain_traced", "chain, traced + backward"),
    ("chain_untraced", "chain, untraced"),
    ("add", "add + sum + backward"),
    ("sum", "sum + backward alone"),
];

/// One round of ferrograd's figures, in the order of [`WORKLOADS`].
fn ferrograd_round(x: &Vector, w: &Vector) -> [f64; 4] {
    // The gradients are dropped inside the loop, as PyTorch frees its graph.
    [
        per_iteration_us(|| {
            drop(black_box(
                chain(black_box(x).clone().traced(x.alloc_grads())).backward(),
            ))
        }),
        per_iteration_us(|| drop(black_box(chain(black_box(x).clone())))),
        per_iteration_us(|| {
            let (a, b) = traced_pair(black_box(x), w);
            drop(black_box((a + b).sum::<Rank0, _>().backward()));
        }),
        per_iteration_us(|| {
            let (a, b) = traced_pair(black_box(x), w);
            drop(b);
            drop(black_box(a.sum::<Rank0, _>().backward()));
        }),
    ]
}

/// One round of PyTorch's figures, in the order of [`WORKLOADS`].
fn torch_round(torch: &mut Torch) -> [f64; 4] {
    let reply = torch.request("");
    WORKLOADS.map(|(name, _)| reply.value(name))
}

fn main() {
    let dev = Cpu::seed_from_u64(0);
    let x: Vector = dev.tensor([0.1, -0.2, 0.3, -0.4]);
    let w: Vector = dev.tensor([0.5, 0.25, -0.75, 1.0]);

    // The results must be right, or the figures mean nothing: dy/dz = 1 - tanh²(z).
    let grad = chain(x.clone().traced(x.alloc_grads())).backward().get(&x).array();
    for (i, &v) in x.array().iter().enumerate() {
        let (mut y, mut d) = (v, 1.0f32);
        for _ in 0..5 {
            y = (y * 1.01 + 0.1).tanh();
            d *= (1.0 - y * y) * 1.01;
        }
        assert!((grad[i] - d).abs() < 1e-5, "gradient {i}: {} vs {d}", grad[i]);
    }

    // Allocations of one iteration, after the warm-up above (lazy statics, hash seeds).
    for _ in 0..3 {
        drop(chain(x.clone().traced(x.alloc_grads())).backward());
        drop(chain(x.clone()));
    }
    let (setup, t) = allocations(|| x.clone().traced(x.alloc_grads()));
    let (forward, loss) = allocations(|| chain(t));
    let (backward, grads) = allocations(|| loss.backward());
    drop(grads);
    let (untraced, _) = allocations(|| chain(x.clone()));
    // A tanh whose input is held elsewhere, so its output needs a new buffer; as the
    // tape's second op, so that the tape's op list already has room.
    let held = x.clone().traced(x.alloc_grads()) * 1.0;
    let (tanh, _) = allocations(|| held.clone().tanh());
    let (a, b) = traced_pair(&x, &w);
    drop(a.clone() * 1.0); // as for tanh: the tape's second op
    let (add, _) = allocations(|| a + b);

    println!("Heap allocations (alloc + realloc) of one iteration, f32 Rank1<4>:");
    println!("  traced chain: fresh gradients + traced()    {setup:>4}");
    println!(
        "  traced chain: forward, 16 ops               {forward:>4}  ({:.2} per op)",
        forward as f64 / 16.0
    );
    println!("  traced chain: backward                      {backward:>4}");
    println!(
        "  untraced chain: 16 ops                      {untraced:>4}  ({:.2} per op)",
        untraced as f64 / 16.0
    );
    println!("  one traced tanh, input held elsewhere       {tanh:>4}");
    println!("  one traced add, both operands traced        {add:>4}");
    println!("  (goal, issue #9: at most 1 on the forward path of an op whose output reuses no buffer)\n");

    let rounds = rounds(ROUNDS);
    let mut torch = Torch::start_or_explain("tape.py", &[]);
    println!(
        "µs per iteration, median of {BATCHES} batches of ~{} ms; ferrograd on 1 thread{}",
        BATCH.as_millis(),
        torch.as_ref().map_or(String::new(), |t| format!(", {}", t.version))
    );
    println!("| round | workload                            | ferrograd |  PyTorch |   ratio |");
    println!("|------:|-------------------------------------|----------:|---------:|--------:|");
    let mut ratios = vec![Vec::new(); WORKLOADS.len()];
    let (mut all_ours, mut all_theirs) = (vec![Vec::new(); WORKLOADS.len()], vec![Vec::new(); WORKLOADS.len()]);
    let (mut our_shares, mut their_shares) = (Vec::new(), Vec::new());
    for round in 1..=rounds {
        let ours = ferrograd_round(&x, &w);
        let theirs = torch.as_mut().map(torch_round);
        for i in 0..WORKLOADS.len() {
            all_ours[i].push(ours[i]);
            all_theirs[i].extend(theirs.map(|t| t[i]));
        }
        for (i, (_, label)) in WORKLOADS.iter().enumerate() {
            match theirs {
                Some(theirs) => {
                    let ratio = ours[i] / theirs[i];
                    ratios[i].push(ratio);
                    println!(
                        "| {round:>5} | {label:<35} | {:>9.3} | {:>8.3} | {ratio:>6.4}× |",
                        ours[i], theirs[i]
                    );
                }
                None => println!("| {round:>5} | {label:<35} | {:>9.3} |        – |       – |", ours[i]),
            }
        }
        // The add's forward and backward step: the two add workloads differ by it alone.
        // No ratio: PyTorch's difference is smaller than its noise between batches.
        our_shares.push(ours[2] - ours[3]);
        their_shares.extend(theirs.map(|t| t[2] - t[3]));
        let theirs = theirs.map_or("–".to_owned(), |t| format!("{:.3}", t[2] - t[3]));
        let label = "add's share (difference of the two)";
        println!(
            "| {round:>5} | {label:<35} | {:>9.3} | {theirs:>8} |       – |",
            ours[2] - ours[3]
        );
    }
    if torch.is_some() {
        println!("\nMedian ratio ferrograd / PyTorch over {rounds} rounds (goal, issue #9: chain, traced ≤ 0.02×):");
        for ((_, label), r) in WORKLOADS.iter().zip(&ratios) {
            println!("  {label:<35} {:.4}×", median(r.clone()));
        }
        println!(
            "  add's share, median µs: ferrograd {:.3}, PyTorch {:.3} (noisy: a difference of two close figures)",
            median(our_shares),
            median(their_shares)
        );
    }
    torch.take();

    // The chain's two workloads for `cargo xtask bench`; on one thread only, as PyTorch
    // runs here (and as ferrograd runs ops this small anyway). The add and sum
    // workloads only serve the add's share above.
    let goals = [0.1, 0.2];
    let rows = (0..2).map(|i| {
        let with_torch = !ratios[i].is_empty();
        Row {
            name: WORKLOADS[i].0.to_owned(),
            label: format!(
                "tiny chain (16 ops, Rank1<4>): {}",
                WORKLOADS[i].1.trim_start_matches("chain, ")
            ),
            unit: "us",
            threads: 1,
            ferrograd: median(all_ours[i].clone()),
            pytorch: with_torch.then(|| median(all_theirs[i].clone())),
            ratio: with_torch.then(|| median(ratios[i].clone())),
            spread: spread(if with_torch { &ratios[i] } else { &all_ours[i] }),
            goal: Some(goals[i]),
        }
    });
    record(&rows.collect::<Vec<_>>());
}
