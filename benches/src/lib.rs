//! Benchmark programs live in `src/bin/`. This library holds what the programs that
//! compare with PyTorch share: the timing loop (mirrored by `torch/timing.py`, so both
//! sides time alike) and the PyTorch side, a script in `torch/` run as a child process.

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
