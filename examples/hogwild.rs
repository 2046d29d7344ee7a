//! Hogwild! and synchronous data-parallel training of a sparse model on several threads.
//!
//! ```sh
//! cargo run --release --example hogwild
//! ```
//!
//! The model reads a digit as a bag of words: each pixel with ink, at one of three grey
//! levels, is a word (784 × 3 of them, plus a padding word), looked up in a sparse
//! embedding table, summed, and classified by a small dense layer. A step touches the
//! rows of the few hundred words its digits contain out of 2 353, which is where
//! Hogwild! (lock-free updates of shared parameters) pays: threads rarely write the
//! same row at once. Each mode runs on 1 and 2 threads; the program prints samples/s,
//! wall and CPU time, and the held-out accuracy, and fails if a run did not learn or if
//! the synchronous mode did not repeat itself bit for bit.
//!
//! `--simulate 8,16,32,64` models machines with more cores than this one, on one
//! thread: the staleness of that many workers in flight, a pessimistic bound on lost
//! updates, how often a step's rows collide with another in-flight step's, and the
//! speedup those collisions allow given a cache-line transfer time measured here.

use clap::Parser;
use ferrograd::nn::{Built, EmbeddingConfig};
use ferrograd::optim::{SharedParameters, data_parallel_step};
use ferrograd::prelude::*;
use std::time::Instant;

/// Words: a padding word, then (pixel, grey level 1..=3) pairs.
const VOCAB: usize = 1 + 784 * 3;
/// Words per digit; digits with more ink keep their first `WORDS` inked pixels (the
/// embedded digits have at most a few more), the others are padded.
const WORDS: usize = 256;
const DIM: usize = 32;
/// Digits per thread per step.
const BATCH: usize = 16;
type Model = (EmbeddingConfig<Const<VOCAB>, Const<DIM>>, Linear<DIM, 10>);
type Net = Built<Model, f32, Cpu>;

#[derive(Parser, Debug)]
#[command(about = "Hogwild! and synchronous data-parallel training of a bag-of-pixels digit classifier")]
struct Args {
    /// Passes over the 4 000 training digits, per run.
    #[arg(long, default_value_t = 4)]
    epochs: usize,
    /// The SGD learning rate.
    #[arg(long, default_value_t = 0.5)]
    lr: f64,
    /// The most threads to try (runs use 1, 2, … up to this).
    #[arg(long, default_value_t = 2)]
    max_threads: usize,
    /// Instead of training on real threads, simulate Hogwild! on these many cores (for
    /// example `8,16,32,64`) on one: each step's gradient is applied `cores − 1` steps
    /// after it was computed (the staleness of `cores` workers in flight), once as is
    /// and once losing every row update that another in-flight step also writes (the
    /// pessimistic bound on lost updates); prints accuracies, how often rows collide, and
    /// the throughput that collisions allow, from a cache-line transfer time measured here.
    #[arg(long, value_delimiter = ',')]
    simulate: Vec<usize>,
    /// Fail when a run's held-out accuracy is below this.
    #[arg(long, default_value_t = 0.6)]
    min_accuracy: f64,
}

fn words(pixels: &[u8]) -> [usize; WORDS] {
    let mut out = [0; WORDS];
    let inked = pixels.iter().enumerate().filter(|&(_, &p)| p >= 64);
    for (slot, (pixel, &grey)) in out.iter_mut().zip(inked) {
        *slot = 1 + pixel * 3 + usize::from(grey / 64 - 1).min(2);
    }
    out
}

struct Data {
    words: Vec<[usize; WORDS]>,
    labels: Vec<usize>,
}

impl Data {
    fn new(digits: &Digits) -> Self {
        Self {
            words: digits.pixels().chunks_exact(784).map(words).collect(),
            labels: digits.labels().iter().map(|&l| usize::from(l)).collect(),
        }
    }

    /// The batch of `B` digits starting at `start`.
    fn batch<const B: usize>(
        &self,
        start: usize,
    ) -> (Tensor<Rank2<B, WORDS>, usize, Cpu>, Tensor<Rank1<B>, usize, Cpu>) {
        let dev = Cpu::default();
        let ids = self.words[start..start + B].iter().flatten().copied().collect();
        let labels = self.labels[start..start + B].to_vec();
        (
            dev.tensor_from_vec(ids, Default::default()),
            dev.tensor_from_vec(labels, Default::default()),
        )
    }
}

/// Logits of a batch: the sum of its words' vectors, scaled, through tanh and the head.
fn logits<const B: usize, T: Tape<f32, Cpu>>(
    model: &Net,
    ids: Tensor<Rank2<B, WORDS>, usize, Cpu, T>,
) -> Tensor<Rank2<B, 10>, f32, Cpu, T> {
    let bag: Tensor<Rank2<B, DIM>, f32, Cpu, T> = model.0.forward(ids).sum::<_, Axis<1>>();
    model.1.forward((bag * 0.05).tanh())
}

fn grads_of(model: &Net, data: &Data, start: usize) -> Result<Gradients<f32, Cpu>, Error> {
    let (ids, labels) = data.batch::<BATCH>(start);
    let out = logits(model, ids.traced_indices(model.try_alloc_grads()?));
    Ok(losses::try_cross_entropy(out, &labels, Reduction::Mean, Default::default())?.backward())
}

fn accuracy(model: &Net, data: &Data) -> f64 {
    const EVAL: usize = 40;
    let mut right = 0;
    for start in (0..data.labels.len() / EVAL).map(|b| b * EVAL) {
        let (ids, labels) = data.batch::<EVAL>(start);
        let out = logits(model, ids).array();
        for (row, &label) in out.iter().zip(labels.array().iter()) {
            let best = (0..10).max_by(|&a, &b| row[a].total_cmp(&row[b])).unwrap_or(0);
            right += usize::from(best == label);
        }
    }
    right as f64 / (data.labels.len() / EVAL * EVAL) as f64
}

/// The CPU time this process has used (user + system), from /proc; None elsewhere.
fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The command name may hold spaces; the fields after its closing parenthesis do not.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    // Linux reports USER_HZ = 100 ticks per second on every platform it runs on.
    Some(ticks / 100.0)
}

struct Run {
    samples: usize,
    wall: f64,
    cpu: Option<f64>,
    accuracy: f64,
    model: Net,
}

fn fresh_model() -> Net {
    Cpu::seed_from_u64(0).build_module_with::<_, f32>((
        EmbeddingConfig::default().sparse(true).padding_idx(0),
        Linear::default(),
    ))
}

fn hogwild(train: &Data, test: &Data, threads: usize, args: &Args) -> Result<Run, Error> {
    let mut model = fresh_model();
    let shared = SharedParameters::new(&model)?;
    let steps = train.labels.len() / BATCH;
    let (start, cpu0) = (Instant::now(), cpu_seconds());
    std::thread::scope(|scope| -> Result<(), Error> {
        let handles: Vec<_> = (0..threads)
            .map(|thread| {
                let shared = &shared;
                scope.spawn(move || -> Result<(), Error> {
                    let mut local = fresh_model();
                    for epoch in 0..args.epochs {
                        // Thread t takes batches t, t + threads, …, in an order that
                        // changes with the epoch.
                        for step in (thread..steps).step_by(threads) {
                            let batch = (step * 7 + epoch * 131) % steps;
                            // Only the rows of the words this batch contains (and
                            // the dense head) are read, so only those are copied: the
                            // batch's ids as they are (a repeated one is copied once).
                            let ids = train.words[batch * BATCH..(batch + 1) * BATCH].as_flattened();
                            shared.snapshot_rows_into(&mut local, &[("0.weight", ids)])?;
                            let grads = grads_of(&local, train, batch * BATCH)?;
                            shared.apply_sgd(&local, &grads, args.lr)?;
                        }
                    }
                    Ok(())
                })
            })
            .collect();
        for handle in handles {
            handle
                .join()
                .unwrap_or_else(|payload| std::panic::resume_unwind(payload))?;
        }
        Ok(())
    })?;
    let wall = start.elapsed().as_secs_f64();
    let cpu = cpu_seconds().zip(cpu0).map(|(b, a)| b - a);
    shared.snapshot_into(&mut model)?;
    Ok(Run {
        samples: args.epochs * steps * BATCH,
        wall,
        cpu,
        accuracy: accuracy(&model, test),
        model,
    })
}

fn synchronous(train: &Data, test: &Data, threads: usize, args: &Args) -> Result<Run, Error> {
    let mut model = fresh_model();
    let mut sgd = Sgd::new(SgdConfig {
        lr: args.lr,
        ..Default::default()
    })?;
    let steps = train.labels.len() / (BATCH * threads);
    let (start, cpu0) = (Instant::now(), cpu_seconds());
    for epoch in 0..args.epochs {
        for step in 0..steps {
            let step = (step * 7 + epoch * 131) % steps;
            data_parallel_step(&mut model, &mut sgd, threads, |shard, model: &Net| {
                grads_of(model, train, (step * threads + shard) * BATCH)
            })?;
        }
    }
    let wall = start.elapsed().as_secs_f64();
    let cpu = cpu_seconds().zip(cpu0).map(|(b, a)| b - a);
    Ok(Run {
        samples: args.epochs * steps * threads * BATCH,
        wall,
        cpu,
        accuracy: accuracy(&model, test),
        model,
    })
}

fn bits(model: &Net) -> Vec<u32> {
    let mut out: Vec<u32> = model.0.weight.storage().iter().map(|v| v.to_bits()).collect();
    out.extend(model.1.weight.storage().iter().map(|v| v.to_bits()));
    out
}

fn report(mode: &str, threads: usize, run: &Run, base: Option<f64>) -> f64 {
    let rate = run.samples as f64 / run.wall;
    let cpu = run.cpu.map_or("n/a".to_string(), |c| format!("{c:.2} s"));
    let speedup = base.map_or(String::new(), |b| format!("  ({:.2}× the 1-thread rate)", rate / b));
    println!(
        "{mode:<12} {threads} thread(s): {rate:>8.0} samples/s, wall {:.2} s, CPU {cpu}, accuracy {:.1} %{speedup}",
        run.wall,
        run.accuracy * 100.0
    );
    rate
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    if args.max_threads == 0 || args.epochs == 0 {
        return Err("--max-threads and --epochs must be at least 1".into());
    }
    // The kernels stay on the calling thread: the parallelism here is across steps.
    ferrograd::set_num_threads(1);
    let (train, test) = Digits::embedded()?.split_per_class(400);
    let (train, test) = (Data::new(&train), Data::new(&test));
    println!(
        "{} training digits, {} held out; {VOCAB} words, batch {BATCH} per thread, {} epoch(s); {} core(s) here",
        train.labels.len(),
        test.labels.len(),
        args.epochs,
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    if !args.simulate.is_empty() {
        return simulate(&train, &test, &args);
    }
    let mut failures = Vec::new();
    for (mode, train_fn) in [
        (
            "hogwild",
            hogwild as fn(&Data, &Data, usize, &Args) -> Result<Run, Error>,
        ),
        ("synchronous", synchronous),
    ] {
        let mut base = None;
        for threads in 1..=args.max_threads {
            let run = train_fn(&train, &test, threads, &args)?;
            let rate = report(mode, threads, &run, base);
            base.get_or_insert(rate);
            if run.accuracy < args.min_accuracy {
                failures.push(format!(
                    "{mode} on {threads} thread(s): accuracy {:.3} < {}",
                    run.accuracy, args.min_accuracy
                ));
            }
            if mode == "synchronous" {
                let again = synchronous(&train, &test, threads, &args)?;
                let same = bits(&again.model) == bits(&run.model);
                println!("{:<12} {threads} thread(s): a second run is bit-identical: {same}", "");
                if !same {
                    failures.push(format!("synchronous on {threads} thread(s) did not repeat bit for bit"));
                }
            }
        }
    }
    if !failures.is_empty() {
        return Err(failures.join("; ").into());
    }
    Ok(())
}

/// The rows of the embedding table batch `batch` reads, sorted and distinct.
fn batch_rows(data: &Data, batch: usize, rows: &mut Vec<usize>) {
    rows.clear();
    rows.extend(data.words[batch * BATCH..(batch + 1) * BATCH].iter().flatten());
    rows.sort_unstable();
    rows.dedup();
}

/// What one simulated configuration gave.
struct Simulated {
    accuracy: f64,
    /// Row updates, over all steps.
    row_updates: usize,
    /// Row updates whose row another in-flight step also writes.
    collisions: usize,
}

/// Hogwild! on `cores` workers, simulated on this thread: the gradient of step `i` is
/// computed from the shared values of step `i` and applied at step `i + cores − 1`, so
/// every update misses the `cores − 1` that were in flight with it (bounded staleness,
/// the model of Hogwild!'s analysis). With `lose_collisions`, a row update is dropped
/// whenever one of the other in-flight steps writes the same row: real races lose far
/// fewer (only writes within nanoseconds of each other), so this bounds the damage.
fn simulate_hogwild(
    train: &Data,
    test: &Data,
    cores: usize,
    lose_collisions: bool,
    args: &Args,
) -> Result<Simulated, Error> {
    let mut model = fresh_model();
    let shared = SharedParameters::new(&model)?;
    let mut local = fresh_model();
    let steps = train.labels.len() / BATCH;
    let mut in_flight: std::collections::VecDeque<(Gradients<f32, Cpu>, Vec<usize>)> = Default::default();
    let (mut row_updates, mut collisions) = (0, 0);
    let mut touched = std::collections::HashMap::<usize, usize>::new();
    for epoch in 0..args.epochs {
        for step in 0..steps {
            let batch = (step * 7 + epoch * 131) % steps;
            let mut rows = Vec::new();
            batch_rows(train, batch, &mut rows);
            shared.snapshot_rows_into(&mut local, &[("0.weight", &rows)])?;
            let mut grads = grads_of(&local, train, batch * BATCH)?;
            // Rows this step shares with the steps still in flight.
            let colliding: Vec<bool> = rows.iter().map(|r| touched.contains_key(r)).collect();
            row_updates += rows.len();
            collisions += colliding.iter().filter(|&&c| c).count();
            if lose_collisions {
                let sparse = grads
                    .sparse_grad_mut(&local.0.weight)
                    .ok_or("the embedding's gradient is not sparse")
                    .map_err(|m| Error::InvalidArgument {
                        op: "simulate",
                        message: m.to_string(),
                    })?;
                let row_len = sparse.row_len();
                let lost: Vec<usize> = sparse
                    .indices()
                    .iter()
                    .enumerate()
                    .filter(|&(_, row)| rows.binary_search(row).is_ok_and(|k| colliding[k]))
                    .map(|(k, _)| k)
                    .collect();
                let values = sparse.values_mut();
                for k in lost {
                    values[k * row_len..(k + 1) * row_len].fill(0.0);
                }
            }
            for &row in &rows {
                *touched.entry(row).or_insert(0) += 1;
            }
            in_flight.push_back((grads, rows));
            if in_flight.len() == cores {
                let (grads, rows) = in_flight.pop_front().expect("in_flight holds `cores` steps");
                shared.apply_sgd(&local, &grads, args.lr)?;
                for row in rows {
                    if let std::collections::hash_map::Entry::Occupied(mut entry) = touched.entry(row) {
                        *entry.get_mut() -= 1;
                        if *entry.get() == 0 {
                            entry.remove();
                        }
                    }
                }
            }
        }
    }
    while let Some((grads, _)) = in_flight.pop_front() {
        shared.apply_sgd(&local, &grads, args.lr)?;
    }
    shared.snapshot_into(&mut model)?;
    Ok(Simulated {
        accuracy: accuracy(&model, test),
        row_updates,
        collisions,
    })
}

/// The time one cache line takes to move between two cores here: two threads take
/// turns incrementing one atomic, so each increment waits for the line to arrive. The
/// fastest of several tries: a try during which the threads were not both running
/// measures the scheduler instead.
fn cache_line_transfer_seconds() -> f64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    const ROUNDS: u64 = 50_000;
    let try_once = || {
        let turn = AtomicU64::new(0);
        let start = Instant::now();
        std::thread::scope(|scope| {
            for parity in 0..2 {
                let turn = &turn;
                scope.spawn(move || {
                    let mut next = parity;
                    while next < 2 * ROUNDS {
                        if turn.load(Ordering::Acquire) == next {
                            turn.store(next + 1, Ordering::Release);
                            next += 2;
                        } else {
                            std::hint::spin_loop();
                        }
                    }
                });
            }
        });
        start.elapsed().as_secs_f64() / (2 * ROUNDS) as f64
    };
    (0..7).map(|_| try_once()).fold(f64::INFINITY, f64::min)
}

fn simulate(train: &Data, test: &Data, args: &Args) -> Result<(), Box<dyn std::error::Error>> {
    // The measured step time on one thread: the base of the throughput model.
    let one = hogwild(train, test, 1, args)?;
    let step_seconds = one.wall / (one.samples / BATCH) as f64;
    let transfer = cache_line_transfer_seconds();
    // A 32-float row spans two 64-byte lines; the dense head (10 × 32 + 10 floats) is
    // written by every step, so with two or more workers all of its lines move.
    let row_lines = (DIM * 4).div_ceil(64) as f64;
    let head_lines = ((10 * DIM + 10) * 4).div_ceil(64) as f64;
    println!(
        "one thread: {:.0} µs a step ({:.0} samples/s), accuracy {:.1} %; a cache line moves between cores in {:.0} ns here",
        step_seconds * 1e6,
        one.samples as f64 / one.wall,
        one.accuracy * 100.0,
        transfer * 1e9
    );
    println!(
        "{:>6} {:>12} {:>17} {:>15} {:>16} {:>14} {:>17}",
        "cores",
        "accuracy",
        "accuracy, losing",
        "rows colliding",
        "line moves/step",
        "model speedup",
        "at 150 ns a line"
    );
    for &cores in &args.simulate {
        if cores == 0 {
            return Err("--simulate takes core counts of at least 1".into());
        }
        let stale = simulate_hogwild(train, test, cores, false, args)?;
        let losing = simulate_hogwild(train, test, cores, true, args)?;
        let steps = (args.epochs * (train.labels.len() / BATCH)) as f64;
        let colliding = stale.collisions as f64 / stale.row_updates as f64;
        // Every colliding row's lines, and the head's, arrive from another core's cache.
        let moves = stale.collisions as f64 / steps * row_lines + if cores > 1 { head_lines } else { 0.0 };
        let speedup = |transfer: f64| cores as f64 * step_seconds / (step_seconds + moves * transfer);
        // Between chiplets of a large server a line takes several times longer than
        // between two cores of one: 150 ns stands for that case.
        println!(
            "{cores:>6} {:>11.1} % {:>15.1} % {:>14.1} % {moves:>16.0} {:>13.1}× {:>16.1}×",
            stale.accuracy * 100.0,
            losing.accuracy * 100.0,
            colliding * 100.0,
            speedup(transfer),
            speedup(150e-9)
        );
    }
    Ok(())
}
