//! Benchmark programs live in `src/bin/`. This library holds what the programs that
//! compare with PyTorch share: the timing loop (mirrored by `torch/timing.py`, so both
//! sides time alike), the PyTorch side, a script in `torch/` run as a child process,
//! and the side-by-side comparison ([`Comparison`]): rounds of ferrograd and PyTorch
//! interleaved over thread counts, printed as one table per [`Workload`].
//!
//! # All at once: `cargo xtask bench`
//!
//! ```sh
//! cargo xtask bench [--rounds N] [--only PROGRAM]
//! ```
//!
//! runs the programs that compare with PyTorch (`cpu_gaps`, `nn_mlp`, `tape`, `conv`,
//! `cnn`, `transformer`, `log_softmax`, `mnist_epoch`, `sparse`; those not in the
//! checkout are skipped) and gathers their medians into one table, printed and written
//! to `target/bench/bench.md`, with a bar chart of the ratios in
//! `target/bench/ratios.png`. It talks to the programs through two environment
//! variables, so that each stays runnable alone: [`ROUNDS_VAR`] overrides the
//! programs' rounds, and [`ROWS_VAR`] names a file to which [`Comparison::run`] (and
//! [`record`], for figures that are not timings of a [`Comparison`]) appends one
//! [`Row`] per workload and thread count. A new program joins the table by using
//! [`Comparison`] (or [`record`]) and being named in `PROGRAMS` in
//! `xtask/src/bench.rs`; its PyTorch twin goes in `torch/`.

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

/// Time spent calling the workload before measuring it.
pub const WARM_UP: Duration = Duration::from_millis(100);
/// Time one batch of calls should take (at least one call).
pub const BATCH: Duration = Duration::from_millis(50);
/// Batches per figure; the figure is their median.
pub const BATCHES: usize = 7;

/// The median µs per call of `f` over [`BATCHES`] batches, after a warm-up.
pub fn per_iteration_us(mut f: impl FnMut()) -> f64 {
    // The warm-up also tells how many iterations fill a batch.
    let start = Instant::now();
    let mut n = 0u32;
    while n < 3 || start.elapsed() < WARM_UP {
        f();
        n += 1;
    }
    let iters = (BATCH.as_secs_f64() / (start.elapsed().as_secs_f64() / f64::from(n)))
        .round()
        .max(1.0) as u32;
    let times: Vec<f64> = (0..BATCHES)
        .map(|_| {
            let start = Instant::now();
            for _ in 0..iters {
                f();
            }
            start.elapsed().as_secs_f64() / f64::from(iters) * 1e6
        })
        .collect();
    median(times)
}

/// The middle value (the upper one of an even count).
pub fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// The environment variable naming the file that [`record`] appends [`Row`]s to; unset,
/// nothing is written.
pub const ROWS_VAR: &str = "FERROGRAD_BENCH_ROWS";
/// The environment variable that overrides every program's number of rounds (a
/// positive integer), so that `cargo xtask bench --rounds N` reaches them all.
pub const ROUNDS_VAR: &str = "FERROGRAD_BENCH_ROUNDS";

/// The number of rounds to run: [`ROUNDS_VAR`] when set, else `default`.
///
/// # Panics
/// If [`ROUNDS_VAR`] is set but not a positive integer: silently running the default
/// would make a `--rounds` that did not arrive look like one that did.
pub fn rounds(default: usize) -> usize {
    match std::env::var(ROUNDS_VAR) {
        Ok(v) => v
            .parse()
            .ok()
            .filter(|&n: &usize| n > 0)
            .unwrap_or_else(|| panic!("{ROUNDS_VAR}={v:?} is not a positive integer")),
        Err(_) => default,
    }
}

/// One figure of the summary table of `cargo xtask bench`: a workload on a number of
/// threads, both libraries' medians, their ratio and its spread.
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    /// The workload's short name (`mlp_train_b64`).
    pub name: String,
    /// What it measures, for people.
    pub label: String,
    /// The figures' unit: `us` for times, `MB` for memory.
    pub unit: &'static str,
    /// ferrograd's thread count (PyTorch's too).
    pub threads: usize,
    /// ferrograd's median over the rounds.
    pub ferrograd: f64,
    /// PyTorch's median over the rounds, if PyTorch ran.
    pub pytorch: Option<f64>,
    /// The median of the per-round ratios ferrograd / PyTorch, if PyTorch ran.
    pub ratio: Option<f64>,
    /// (max − min) / median over the rounds of the ratio, or of ferrograd's figure
    /// without PyTorch: how far apart the rounds were, so how far to trust the median.
    pub spread: f64,
    /// The goal for the ratio, met at or below it; `None` for figures without one.
    pub goal: Option<f64>,
}

impl Row {
    /// One tab-separated line: name, label, unit, threads, ferrograd, PyTorch, ratio,
    /// spread, goal, with `-` for what is missing. xtask's `bench` parses this; keep
    /// the two in step.
    pub fn to_line(&self) -> String {
        let opt = |v: Option<f64>| v.map_or("-".to_owned(), |v| format!("{v}"));
        format!(
            "{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}",
            self.name,
            self.label.replace(['\t', '\n'], " "),
            self.unit,
            self.threads,
            self.ferrograd,
            opt(self.pytorch),
            opt(self.ratio),
            self.spread,
            opt(self.goal),
        )
    }
}

/// (max − min) / median of `values`; 0 for fewer than two.
pub fn spread(values: &[f64]) -> f64 {
    if values.len() < 2 {
        return 0.0;
    }
    let max = values.iter().copied().fold(f64::MIN, f64::max);
    let min = values.iter().copied().fold(f64::MAX, f64::min);
    (max - min) / median(values.to_vec())
}

/// Appends `rows` to the file named by [`ROWS_VAR`], if it is set.
///
/// # Panics
/// If that file cannot be written: the summary would silently miss these rows.
pub fn record(rows: &[Row]) {
    let Some(path) = std::env::var_os(ROWS_VAR) else {
        return;
    };
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .unwrap_or_else(|e| panic!("opening {}: {e}", PathBuf::from(&path).display()));
    let text: String = rows.iter().map(|r| r.to_line() + "\n").collect();
    file.write_all(text.as_bytes())
        .unwrap_or_else(|e| panic!("writing {}: {e}", PathBuf::from(&path).display()));
}

/// A script of `benches/torch/` running with `--serve`: it answers each line written to
/// it with one line of `name=value` pairs.
pub struct Torch {
    script: &'static str,
    child: Child,
    input: Option<ChildStdin>,
    output: BufReader<ChildStdout>,
    /// The first line the script printed: torch's version and threads.
    pub version: String,
}

impl Torch {
    /// Starts `benches/torch/<script> --serve <args>`, or says why it could not. The
    /// interpreter is `$FERROGRAD_TORCH_PYTHON`, else the parity venv's.
    pub fn start(script: &'static str, args: &[&str]) -> Result<Self, String> {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
        let python = match std::env::var_os("FERROGRAD_TORCH_PYTHON") {
            Some(python) => PathBuf::from(python),
            None => {
                let target = std::env::var_os("CARGO_TARGET_DIR").map_or(root.join("target"), |t| root.join(t));
                target.join("parity-venv/bin/python")
            }
        };
        if !python.exists() {
            return Err(format!("no interpreter at {}", python.display()));
        }
        let mut child = Command::new(&python)
            .args(["-B", &format!("benches/torch/{script}"), "--serve"])
            .args(args)
            .current_dir(&root)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .map_err(|e| format!("{}: {e}", python.display()))?;
        let input = child.stdin.take().unwrap();
        let mut output = BufReader::new(child.stdout.take().unwrap());
        let mut version = String::new();
        output.read_line(&mut version).map_err(|e| e.to_string())?;
        if version.is_empty() {
            let _ = child.wait();
            return Err(format!("{} {script} failed (is torch installed?)", python.display()));
        }
        Ok(Self {
            script,
            child,
            input: Some(input),
            output,
            version: version.trim().to_owned(),
        })
    }

    /// [`Torch::start`], or `None` after printing why and how to get PyTorch.
    pub fn start_or_explain(script: &'static str, args: &[&str]) -> Option<Self> {
        Self::start(script, args)
            .inspect_err(|why| {
                println!(
                    "PyTorch not found ({why}): ferrograd's figures only. `cargo xtask parity` creates \
                     the venv, or set FERROGRAD_TORCH_PYTHON to a python with torch.\n"
                )
            })
            .ok()
    }

    /// Sends `check` and compares each of `ours` (a name and ferrograd's value) with the
    /// script's value of that name, printing both.
    ///
    /// # Panics
    /// Naming the first value that differs by more than `relative` of PyTorch's: the
    /// two sides would not compute the same thing, and the ratios would mean nothing.
    pub fn check(&mut self, ours: &[(&str, f64)], relative: f64) {
        let reply = self.request("check");
        for &(name, ours) in ours {
            let theirs = reply.value(name);
            println!("check {name}: ferrograd {ours:.7}, PyTorch {theirs:.7}");
            assert!((ours - theirs).abs() <= relative * theirs.abs(), "{name} differs");
        }
    }

    /// Sends `request` as one line and returns the script's answer.
    pub fn request(&mut self, request: &str) -> Reply {
        writeln!(self.input.as_mut().unwrap(), "{request}").unwrap();
        let mut line = String::new();
        self.output.read_line(&mut line).unwrap();
        Reply {
            script: self.script,
            line,
        }
    }
}

impl Drop for Torch {
    fn drop(&mut self) {
        // Closing its stdin ends the script's loop.
        self.input.take();
        let _ = self.child.wait();
    }
}

/// One line of `name=value` pairs from a [`Torch`] script.
pub struct Reply {
    script: &'static str,
    line: String,
}

impl Reply {
    /// The number after `name=`.
    pub fn value(&self, name: &str) -> f64 {
        self.line
            .split_whitespace()
            .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{} gave no {name}: {:?}", self.script, self.line))
    }
}

/// One row of a comparison: what both sides time, and the goal for their ratio.
#[derive(Clone, Copy, Debug)]
pub struct Workload {
    /// The name the PyTorch script gives its figure (`mlp_train_b64`).
    pub name: &'static str,
    /// The table's title.
    pub label: &'static str,
    /// The goal for ferrograd's time / PyTorch's, met at or below it.
    pub goal: f64,
}

/// The thread counts both libraries run at, in each round.
pub const THREADS: [usize; 2] = [1, 2];

/// A side-by-side comparison of [`Workload`]s with PyTorch.
#[derive(Clone, Copy, Debug)]
pub struct Comparison<'a> {
    /// The workloads, in the order ferrograd's round returns their figures.
    pub workloads: &'a [Workload],
    /// Rounds of every workload on every thread count ([`ROUNDS_VAR`] overrides it).
    pub rounds: usize,
    /// Where the goals come from, for the goal column's header (`issue #10`).
    pub goals_from: &'a str,
}

impl Comparison<'_> {
    /// Runs the rounds and prints one table per workload: each round's figures and
    /// ratios, their medians, and whether the median ratios meet the goal.
    ///
    /// A round runs, for each of [`THREADS`], `ferrograd_round` (µs per iteration of
    /// each workload, in the order of `workloads`) on that many ferrograd threads, then
    /// `torch`'s round on as many; so machine noise hits both libraries alike. Without
    /// `torch`, only ferrograd's figures are printed. The medians are also [`record`]ed,
    /// one [`Row`] per workload and thread count.
    pub fn run(&self, mut torch: Option<&mut Torch>, mut ferrograd_round: impl FnMut() -> Vec<f64>) {
        let rounds = rounds(self.rounds);
        println!(
            "µs per iteration, median of {BATCHES} batches of ~{} ms, in {rounds} rounds{}; {} cores\n",
            BATCH.as_millis(),
            torch.as_ref().map_or(String::new(), |t| format!(
                " interleaved with PyTorch's on {THREADS:?} threads ({})",
                t.version
            )),
            std::thread::available_parallelism().map_or(1, |n| n.get()),
        );

        // [round][thread count][workload]
        let (mut ours, mut theirs) = (Vec::new(), Vec::new());
        for round in 1..=rounds {
            eprintln!("round {round} of {rounds}…");
            let (mut our_round, mut their_round) = (Vec::new(), Vec::new());
            for &n in &THREADS {
                // Every time: the previous round ended on the last count.
                ferrograd::set_num_threads(n);
                our_round.push(ferrograd_round());
                if let Some(torch) = torch.as_deref_mut() {
                    let reply = torch.request(&format!("round {n}"));
                    their_round.push(self.workloads.iter().map(|w| reply.value(w.name)).collect::<Vec<_>>());
                }
            }
            ours.push(our_round);
            theirs.push(their_round);
        }
        for (w, workload) in self.workloads.iter().enumerate() {
            // Per round: ferrograd's times, PyTorch's times, the ratios.
            let rows: Vec<Vec<f64>> = (0..rounds)
                .map(|r| {
                    let ours: Vec<f64> = ours[r].iter().map(|t: &Vec<f64>| t[w]).collect();
                    let theirs: Vec<f64> = theirs[r].iter().map(|t: &Vec<f64>| t[w]).collect();
                    let ratios: Vec<f64> = ours.iter().zip(&theirs).map(|(o, t)| o / t).collect();
                    [ours, theirs, ratios].concat()
                })
                .collect();
            self.print_table(workload, &rows, torch.is_some());
            record(&summary_rows(workload, &rows, torch.is_some()));
        }
    }

    /// One workload's table from its rows (ferrograd's times, then PyTorch's, then the
    /// ratios, per thread count).
    fn print_table(&self, workload: &Workload, rows: &[Vec<f64>], with_torch: bool) {
        let thr = |i: usize| format!("{} thr", THREADS[i]);
        let torch_columns = if with_torch { THREADS.len() } else { 0 };
        let mut header: Vec<String> = (0..THREADS.len()).map(|i| format!("ferrograd {} µs", thr(i))).collect();
        header.extend((0..torch_columns).map(|i| format!("PyTorch {} µs", thr(i))));
        header.extend((0..torch_columns).map(|i| format!("ratio {}", thr(i))));
        let times = THREADS.len() + torch_columns;
        let cells = |values: &[f64]| -> Vec<String> {
            let (us, ratios) = values.split_at(times);
            let us = us.iter().map(|t| format!("{t:.2}"));
            us.chain(ratios.iter().map(|r| format!("{r:.3}×"))).collect()
        };
        let medians: Vec<f64> = (0..header.len())
            .map(|c| median(rows.iter().map(|row| row[c]).collect()))
            .collect();

        // The goal column: empty in the rounds' rows, met or not by the medians.
        let goal = workload.goal;
        let verdicts: Vec<String> = medians[times..]
            .iter()
            .enumerate()
            .map(|(i, &r)| format!("{} {}", thr(i), if r <= goal { "yes" } else { "no" }))
            .collect();
        let goal_cell = |last: bool| match (with_torch, last) {
            (false, _) => String::new(),
            (true, false) => "  |".to_owned(),
            (true, true) => format!(" ≤ {goal:.2}: {} |", verdicts.join(", ")),
        };
        let goal_header = if with_torch {
            format!(" goal ({}) |", self.goals_from)
        } else {
            String::new()
        };
        println!("{}", workload.label);
        println!("|  round | {} |{goal_header}", header.join(" | "));
        let rule: String = header
            .iter()
            .map(|h| format!("{}:|", "-".repeat(h.chars().count() + 1)))
            .collect();
        println!("|-------:|{rule}{}", if with_torch { "---|" } else { "" });
        for (r, row) in rows.iter().enumerate() {
            println!("| {:>6} | {} |{}", r + 1, pad(&cells(row), &header), goal_cell(false));
        }
        println!("| median | {} |{}\n", pad(&cells(&medians), &header), goal_cell(true));
    }
}

/// The [`Row`]s of one workload, from the per-round values that
/// [`Comparison::print_table`] takes.
fn summary_rows(workload: &Workload, rows: &[Vec<f64>], with_torch: bool) -> Vec<Row> {
    let column = |c: usize| -> Vec<f64> { rows.iter().map(|row| row[c]).collect() };
    let n = THREADS.len();
    THREADS
        .iter()
        .enumerate()
        .map(|(i, &threads)| {
            let ours = column(i);
            let (pytorch, ratio, spread) = if with_torch {
                let ratios = column(2 * n + i);
                (
                    Some(median(column(n + i))),
                    Some(median(ratios.clone())),
                    self::spread(&ratios),
                )
            } else {
                (None, None, spread(&ours))
            };
            Row {
                name: workload.name.to_owned(),
                label: workload.label.to_owned(),
                unit: "us",
                threads,
                ferrograd: median(ours),
                pytorch,
                ratio,
                spread,
                goal: Some(workload.goal),
            }
        })
        .collect()
}

/// `cells` right-aligned to the widths of the `header` cells.
fn pad(cells: &[String], header: &[String]) -> String {
    cells
        .iter()
        .zip(header)
        .map(|(c, h)| format!("{c:>width$}", width = h.chars().count()))
        .collect::<Vec<_>>()
        .join(" | ")
}
