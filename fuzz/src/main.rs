//! `fuzz-checkpoints`: a fuzzing harness on stable Rust for ferrograd's checkpoint
//! loaders. It saves valid checkpoints of a few models, makes seeded mutations of them
//! (bit flips, truncations, splices, random bytes, edits to the zip's headers and to
//! the `.npy` headers inside), loads each with `load` and with `load_with` not strict,
//! and counts what happens. A load must return `Ok` or an `Error`: a panic, an abort
//! (a signal, an allocation failure, a stack overflow), a hang, a failed load that
//! changed the model, or a child whose resident memory passes the bound fails the run.
//!
//! Input `n` is made from seed `n` alone, so any finding replays from its seed.
//! `cargo xtask fuzz-checkpoints [N]` builds and runs this.

mod driver;
mod mutate;
mod npz;
mod rng;
mod safetensors;
mod targets;
mod worker;

use std::path::PathBuf;
use std::process::ExitCode;

const USAGE: &str = "\
usage: fuzz-checkpoints [N] [options]       fuzz N inputs (default 20000)
       fuzz-checkpoints replay SEED [OUT]   make input SEED, save it to OUT, and load it
                                            with the default panic output

options:
  --seed S          the first seed (default 0): inputs are seeds S..S+N
  --jobs J          child processes at once (default: the cores, at most 4)
  --chunk C         inputs per child process (default 10000)
  --max-rss-mib M   fail when a child's resident memory passes M MiB (default 256)
  --vm-limit-mib V  each child's address-space limit (default 2048)
  --findings DIR    where inputs that break a rule are saved
                    (default: target/fuzz-findings in the workspace)";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match parse_and_run(&args) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(message) => {
            eprintln!("error: {message}\n\n{USAGE}");
            ExitCode::from(2)
        }
    }
}

fn parse_and_run(args: &[String]) -> Result<bool, String> {
    let number = |s: &str| s.parse::<u64>().map_err(|_| format!("not a number: {s:?}"));
    match args.first().map(String::as_str) {
        // The driver's children: `worker START COUNT FINDINGS`, counts on stdout.
        Some("worker") => {
            let [start, count, findings] = &args[1..] else {
                return Err("worker takes START COUNT FINDINGS".into());
            };
            let stats = worker::run(number(start)?, number(count)?, findings.as_ref());
            print!("{}", stats.to_lines());
            Ok(true)
        }
        Some("replay") => {
            let seed = number(args.get(1).ok_or("replay takes a SEED")?)?;
            replay(seed, args.get(2).map(PathBuf::from))
        }
        Some("-h" | "--help" | "help") => {
            println!("{USAGE}");
            Ok(true)
        }
        _ => {
            let mut options = driver::Options {
                inputs: 20_000,
                first_seed: 0,
                jobs: std::thread::available_parallelism().map_or(1, |n| n.get()).min(4),
                chunk: 10_000,
                max_rss_mib: 256,
                address_space_mib: 2048,
                findings: PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/fuzz-findings"),
            };
            let mut rest = args.iter();
            while let Some(arg) = rest.next() {
                let mut value = || rest.next().ok_or(format!("{arg} takes a value"));
                match arg.as_str() {
                    "--seed" => options.first_seed = number(value()?)?,
                    "--jobs" => options.jobs = number(value()?)?.max(1) as usize,
                    "--chunk" => options.chunk = number(value()?)?.max(1),
                    "--max-rss-mib" => options.max_rss_mib = number(value()?)?,
                    "--vm-limit-mib" => options.address_space_mib = number(value()?)?,
                    "--findings" => options.findings = PathBuf::from(value()?),
                    n if !n.starts_with('-') => options.inputs = number(n)?,
                    other => return Err(format!("unknown option {other}")),
                }
            }
            Ok(driver::drive(&options))
        }
    }
}

/// Makes input `seed`, saves it, prints how it was made, and loads it as a run would,
/// with the default panic hook (so `RUST_BACKTRACE=1` gives the backtrace).
fn replay(seed: u64, out: Option<PathBuf>) -> Result<bool, String> {
    let mut targets = targets::all();
    let (t, bytes, log) = worker::generate(&targets, seed);
    let target = &mut targets[t];
    let path = out.unwrap_or_else(|| worker::scratch_path(&format!("replay-{seed}"), target.extension));
    std::fs::write(&path, &bytes).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    println!(
        "seed {seed}: {} bytes for {}, saved to {}",
        bytes.len(),
        target.name,
        path.display()
    );
    for step in &log {
        println!("  {step}");
    }
    for strict in [true, false] {
        match target.load(&path, strict) {
            Ok(report) => println!("load (strict: {strict}): ok {report:?}"),
            Err(error) => println!("load (strict: {strict}): {error}"),
        }
    }
    Ok(true)
}
