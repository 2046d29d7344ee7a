//! Project tasks for ferrograd, run as `cargo xtask <command>` (see `.cargo/config.toml`).
//!
//! Each command lives in a module of its own; `main` only dispatches on the first
//! argument. To add one, write `src/<command>.rs` with a `pub fn run(args: &[String])
//! -> Result<(), Error>` and a line in [`COMMANDS`].

use std::path::{Path, PathBuf};
use std::process::ExitCode;

mod parity;
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
        eprintln!("  {:<12} {}", c.name, c.about);
    }
}

/// The workspace root: the parent of this package's directory.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives one level below the workspace root")
        .to_path_buf()
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
