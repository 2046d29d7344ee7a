//! Model mistakes that must be compile errors. Each case's `.stderr` snapshot
//! under `tests/compile_fail/` pins the reason it fails, not only that it fails; after a
//! deliberate change of message, regenerate them with
//! `TRYBUILD=overwrite cargo test -p ferrograd-nn --test compile_fail` and read the diff.
//!
//! Compilers of other versions word and print types differently, so the snapshots are
//! compared only on the Rust version that wrote them (`SNAPSHOT_RUST`, the one CI
//! uses); on any other the test says so and checks nothing.

use std::process::Command;

/// The `major.minor` of the compiler that wrote the snapshots.
const SNAPSHOT_RUST: &str = "1.95";

/// The `major.minor` of the compiler this test's cases would be built with.
fn rustc_version() -> Option<String> {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let output = Command::new(rustc).arg("--version").output().ok()?;
    let text = String::from_utf8(output.stdout).ok()?;
    // "rustc 1.95.0 (59807616e 2026-04-14)"
    let version = text.split_whitespace().nth(1)?;
    let mut parts = version.split('.');
    Some(format!("{}.{}", parts.next()?, parts.next()?))
}

#[test]
fn compile_fail() {
    match rustc_version() {
        Some(version) if version == SNAPSHOT_RUST => {
            let t = trybuild::TestCases::new();
            t.compile_fail("tests/compile_fail/*.rs");
        }
        found => eprintln!(
            "compile_fail: skipped: the snapshots were written by Rust {SNAPSHOT_RUST} and this is {}; \
             other versions word the errors differently",
            found.as_deref().unwrap_or("an unknown version")
        ),
    }
}
