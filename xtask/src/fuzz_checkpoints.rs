//! `cargo xtask fuzz-checkpoints [N] [options]`: builds the fuzzing harness (the
//! `ferrograd-fuzz` package) in release mode and runs it on N seeded mutations of valid
//! checkpoints (20 000 unless given), failing on any panic, abort, hang, failed load
//! that changed the model, or child over its memory bound. The options after N go to
//! the harness as they are (`--seed`, `--jobs`, `--chunk`, `--max-rss-mib`, …; see
//! `cargo run --release -p ferrograd-fuzz -- --help`).
//!
//! xtask spawns cargo rather than depending on the library crates, so that building
//! xtask for its other commands does not build ferrograd. The findings go to
//! `fuzz-findings` in the cargo target directory ([`crate::target_dir`]).

use crate::{Error, target_dir};
use std::process::Command;

/// Entry point of `fuzz-checkpoints`.
pub fn run(args: &[String]) -> Result<(), Error> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let findings = target_dir().join("fuzz-findings");
    let mut command = Command::new(&cargo);
    // Run from the current directory, as `cargo xtask` was: a relative
    // CARGO_TARGET_DIR then means the same folder to the inner cargo.
    command
        .args(["run", "--quiet", "--release", "--package", "ferrograd-fuzz", "--"])
        .args(args)
        .arg("--findings")
        .arg(&findings);
    eprintln!(
        "+ {cargo} run --release -p ferrograd-fuzz -- {} --findings {}",
        args.join(" "),
        findings.display()
    );
    let status = command
        .status()
        .map_err(|e| format!("could not start `{cargo}`: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("the checkpoint fuzzing run failed ({status}); see its summary above").into())
    }
}
