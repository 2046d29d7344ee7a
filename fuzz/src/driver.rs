//! The parent's side: splits the seeds into chunks, runs each chunk in a child process
//! (under a virtual-memory limit and a deadline), and when a child dies — a signal, an
//! allocation failure, a stack overflow, a hang — bisects its chunk until the one seed
//! that kills it is found. A panic is caught in the child; an abort can only be seen
//! from outside it.

use crate::worker::{Finding, Stats, generate, save_finding};
use std::collections::VecDeque;
use std::io::Read;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How a run is set up; see `main`'s usage text.
pub struct Options {
    /// How many inputs.
    pub inputs: u64,
    /// The first seed.
    pub first_seed: u64,
    /// Children run at once.
    pub jobs: usize,
    /// Inputs per child.
    pub chunk: u64,
    /// The most a child's resident set may reach, in MiB; above it the run fails.
    pub max_rss_mib: u64,
    /// The child's address-space limit in MiB, so that an allocation of what a file
    /// declares fails (and is found) instead of swapping the machine.
    pub address_space_mib: u64,
    /// Where findings are saved.
    pub findings: PathBuf,
}

/// Runs the fuzzing pass and prints its summary; true when nothing broke a rule.
pub fn drive(options: &Options) -> bool {
    let started = Instant::now();
    let end = options.first_seed + options.inputs;
    let chunks: VecDeque<(u64, u64)> = (options.first_seed..end)
        .step_by(options.chunk.max(1) as usize)
        .map(|start| (start, options.chunk.min(end - start)))
        .collect();
    let queue = Mutex::new(chunks);
    let total = Mutex::new(Stats::default());
    eprintln!(
        "fuzzing the checkpoint loaders: {} inputs (seeds {}..{end}), {} jobs, {} per child",
        options.inputs, options.first_seed, options.jobs, options.chunk
    );
    std::thread::scope(|scope| {
        for _ in 0..options.jobs.max(1) {
            scope.spawn(|| {
                loop {
                    let Some((start, count)) = queue.lock().unwrap().pop_front() else {
                        break;
                    };
                    let stats = run_range(options, start, count);
                    let mut total = total.lock().unwrap();
                    total.merge(stats);
                    let seconds = started.elapsed().as_secs_f64();
                    eprintln!(
                        "  {:>9} inputs  {:>6.0}/s  panics {}  aborts {}  peak RSS {} MiB",
                        total.inputs,
                        total.inputs as f64 / seconds,
                        total.panics.len(),
                        total.aborts.len(),
                        total.peak_rss_kib / 1024
                    );
                }
            });
        }
    });
    let total = total.into_inner().unwrap();
    report(&total, options, started.elapsed())
}

/// Runs seeds `start..start + count` in children, bisecting any that dies.
fn run_range(options: &Options, start: u64, count: u64) -> Stats {
    match run_child(options, start, count) {
        Ok(stats) => stats,
        Err(death) if count == 1 => {
            let targets = crate::targets::all();
            let (t, bytes, log) = generate(&targets, start);
            let finding = Finding {
                seed: start,
                target: targets[t].name.clone(),
                mutation: log.join("; "),
                message: death,
            };
            save_finding(&options.findings, "abort", &finding, &bytes, targets[t].extension);
            eprintln!("ABORT seed {start} ({}): {}", finding.target, finding.message);
            Stats {
                inputs: 1,
                aborts: vec![finding],
                ..Stats::default()
            }
        }
        Err(death) => {
            eprintln!("  a child died on seeds {start}..{}: {death}; bisecting", start + count);
            let half = count / 2;
            let mut stats = run_range(options, start, half);
            stats.merge(run_range(options, start + half, count - half));
            stats
        }
    }
}

/// Runs one child on seeds `start..start + count`: its counts, or how it died.
fn run_child(options: &Options, start: u64, count: u64) -> Result<Stats, String> {
    let exe = std::env::current_exe().map_err(|e| format!("cannot find this program: {e}"))?;
    // `ulimit -v` through the shell: std has no setrlimit, and a libc dependency for
    // one call is not worth it. A failing ulimit (a lower hard limit) is ignored.
    let mut command = if cfg!(unix) {
        let mut command = Command::new("sh");
        command
            .arg("-c")
            .arg("ulimit -v \"$1\" 2>/dev/null; shift; exec \"$@\"")
            .arg("sh")
            .arg((options.address_space_mib * 1024).to_string())
            .arg(exe);
        command
    } else {
        Command::new(exe)
    };
    let mut child = command
        .args(["worker", &start.to_string(), &count.to_string()])
        .arg(&options.findings)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start a child: {e}"))?;
    let mut stdout = child.stdout.take().expect("piped");
    let mut stderr = child.stderr.take().expect("piped");
    let out = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stdout.read_to_string(&mut text);
        text
    });
    let err = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });
    // Generous: a chunk takes well under 1 ms an input; a hang is what this catches.
    let limit = Duration::from_secs(20) + Duration::from_millis(20 * count);
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait().map_err(|e| format!("cannot wait for a child: {e}"))? {
            break Some(status);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let (out, err) = (out.join().unwrap_or_default(), err.join().unwrap_or_default());
    // The first line says what happened ("memory allocation of … failed", "thread
    // 'main' has overflowed its stack"); a backtrace may follow.
    let last_words = err
        .lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .trim()
        .to_string();
    match status {
        None => Err(format!("hung (killed after {} s)", limit.as_secs())),
        Some(status) if status.success() => {
            Stats::from_lines(&out).ok_or_else(|| format!("exited without its counts; stderr: {last_words}"))
        }
        Some(status) => Err(match signal(status) {
            Some(signal) => format!(
                "killed by signal {signal} ({}); stderr: {last_words}",
                signal_name(signal)
            ),
            None => format!("{status}; stderr: {last_words}"),
        }),
    }
}

/// The signal that ended a process, where the platform has signals.
#[cfg(unix)]
fn signal(status: std::process::ExitStatus) -> Option<i32> {
    std::os::unix::process::ExitStatusExt::signal(&status)
}

#[cfg(not(unix))]
fn signal(_: std::process::ExitStatus) -> Option<i32> {
    None
}

fn signal_name(signal: i32) -> &'static str {
    match signal {
        4 => "SIGILL",
        6 => "SIGABRT: an allocation failure, a stack overflow or an abort",
        7 => "SIGBUS",
        8 => "SIGFPE",
        9 => "SIGKILL: the OOM killer?",
        11 => "SIGSEGV",
        _ => "a signal",
    }
}

/// Prints the summary; true when the run passed.
fn report(total: &Stats, options: &Options, elapsed: Duration) -> bool {
    let seconds = elapsed.as_secs_f64();
    let loads = 2 * total.inputs;
    let errors: u64 = total.errors.values().sum();
    println!("\nfuzz-checkpoints summary");
    println!(
        "  inputs      {} (seeds {}..{}) in {seconds:.1} s: {:.0} inputs/s, {} loads (load and load_with not strict)",
        total.inputs,
        options.first_seed,
        options.first_seed + options.inputs,
        total.inputs as f64 / seconds,
        loads
    );
    println!(
        "  ok          {} strict, {} not strict",
        total.ok_strict, total.ok_lenient
    );
    println!("  errors      {errors}, by kind (most common first):");
    let mut kinds: Vec<(&String, &u64)> = total.errors.iter().collect();
    kinds.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    for (kind, n) in kinds.iter().take(25) {
        println!("    {n:>9}  {kind}");
    }
    if kinds.len() > 25 {
        let rest: u64 = kinds[25..].iter().map(|(_, n)| **n).sum();
        println!("    {rest:>9}  ({} other kinds)", kinds.len() - 25);
    }
    println!("  panics      {} (loads)", total.panics.len());
    println!(
        "  aborts      {} (inputs that killed a child: a signal or a hang)",
        total.aborts.len()
    );
    println!(
        "  changed     {} (failed loads that changed the model)",
        total.changed.len()
    );
    println!(
        "  peak memory {:.1} MiB resident (VmHWM, the most of any child; bound {} MiB), {:.1} MiB virtual (limit {} MiB)",
        total.peak_rss_kib as f64 / 1024.0,
        options.max_rss_mib,
        total.peak_virtual_kib as f64 / 1024.0,
        options.address_space_mib
    );
    println!(
        "  slowest     one load took {:.1} ms (seed {}, {})",
        total.slowest.0 as f64 / 1000.0,
        total.slowest.1,
        total.slowest.2
    );
    for (kind, findings) in [
        ("PANIC", &total.panics),
        ("ABORT", &total.aborts),
        ("CHANGED", &total.changed),
    ] {
        for f in findings.iter().take(20) {
            println!(
                "{kind} seed {} on {}\n    mutation: {}\n    {}",
                f.seed, f.target, f.mutation, f.message
            );
        }
    }
    let mut passed = true;
    if total.inputs != options.inputs {
        println!("FAILED: {} inputs ran, not {}", total.inputs, options.inputs);
        passed = false;
    }
    if !total.panics.is_empty() || !total.aborts.is_empty() || !total.changed.is_empty() {
        println!(
            "FAILED: the findings' inputs are in {} (replay one: cargo run --release -p ferrograd-fuzz -- replay SEED)",
            options.findings.display()
        );
        passed = false;
    }
    if total.peak_rss_kib > options.max_rss_mib * 1024 {
        println!("FAILED: a child's resident memory passed {} MiB", options.max_rss_mib);
        passed = false;
    }
    if passed {
        println!("passed: no panics, no aborts, memory within bounds");
    }
    passed
}
