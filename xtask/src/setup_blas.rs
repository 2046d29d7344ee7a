//! `cargo xtask setup-blas mkl|openblas`: installs what the `mkl`, `mkl-threaded` and
//! `openblas` features of `ferrograd-cpu` link against. Both are idempotent: work
//! already done is skipped.
//!
//! The MKL prefix defaults to `mkl-venv` in the cargo target directory
//! ([`crate::target_dir`]), beside the build outputs it serves.
//!
//! Progress goes to stderr; stdout carries only `export …` lines, so
//! `eval "$(cargo xtask setup-blas mkl)"` sets up the current shell.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::{Error, run_cmd, target_dir};

/// The pinned version of the Intel wheels (`mkl-static`, `mkl-include`, `intel-openmp`).
const MKL_VERSION: &str = "2026.2.0";

/// The PyPI wheels installed into the MKL prefix: static libraries, headers, and the
/// OpenMP runtime (`libiomp5.so`) that `mkl-threaded` needs.
const MKL_WHEELS: &[&str] = &["mkl-static", "mkl-include", "intel-openmp"];

/// Files whose presence means the MKL prefix is complete.
const MKL_FILES: &[&str] = &[
    "include/mkl.h",
    "lib/libmkl_core.a",
    "lib/libmkl_intel_lp64.a",
    "lib/libmkl_sequential.a",
    "lib/libmkl_intel_thread.a",
    "lib/libiomp5.so",
];

/// The Debian packages the `openblas` feature needs.
const OPENBLAS_PACKAGES: &[&str] = &["libopenblas-dev", "pkg-config"];

const USAGE: &str = "usage: cargo xtask setup-blas mkl [--prefix DIR] | openblas";

/// Entry point of `setup-blas`.
pub fn run(args: &[String]) -> Result<(), Error> {
    match args.first().map(String::as_str) {
        Some("mkl") => {
            let prefix = match &args[1..] {
                [] => target_dir().join("mkl-venv"),
                [flag, dir] if flag == "--prefix" => PathBuf::from(dir),
                _ => return Err(USAGE.into()),
            };
            setup_mkl(&prefix)
        }
        Some("openblas") if args.len() == 1 => setup_openblas(),
        _ => Err(USAGE.into()),
    }
}

/// Creates a Python venv at `prefix` and installs Intel's wheels into it, which lay out
/// `lib/` and `include/` as an MKL install; `MKLROOT` then points at `prefix`.
fn setup_mkl(prefix: &Path) -> Result<(), Error> {
    std::fs::create_dir_all(prefix).map_err(|e| format!("cannot create {}: {e}", prefix.display()))?;
    let prefix = prefix.canonicalize()?;
    let marker = prefix.join(format!(".ferrograd-mkl-{MKL_VERSION}"));
    let complete = || MKL_FILES.iter().all(|f| prefix.join(f).is_file());

    if marker.is_file() && complete() {
        eprintln!("MKL {MKL_VERSION} is already installed in {}", prefix.display());
    } else {
        let pip = prefix.join("bin").join("pip");
        if !pip.is_file() {
            let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
            run_cmd(&python, &["-m", "venv", path_str(&prefix)?])
                .map_err(|e| format!("{e}\n(on Debian/Ubuntu: `apt-get install -y python3-venv`)"))?;
        }
        let pins: Vec<String> = MKL_WHEELS.iter().map(|w| format!("{w}=={MKL_VERSION}")).collect();
        let mut args = vec!["install", "--no-deps", "--disable-pip-version-check"];
        args.extend(pins.iter().map(String::as_str));
        // About 1 GB to download and unpack.
        run_cmd(path_str(&pip)?, &args)?;
        if let Some(missing) = MKL_FILES.iter().find(|f| !prefix.join(f).is_file()) {
            return Err(format!(
                "the wheels installed, but {} is missing: their layout changed?",
                prefix.join(missing).display()
            )
            .into());
        }
        std::fs::write(&marker, "")?;
        eprintln!("installed MKL {MKL_VERSION} into {}", prefix.display());
    }

    eprintln!(
        "Build with `--features mkl` (or `mkl-threaded`) after setting MKLROOT:\n\
         \x20   export MKLROOT={0}\n\
         `mkl-threaded` also needs libiomp5.so at run time:\n\
         \x20   export LD_LIBRARY_PATH={0}/lib${{LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}}\n\
         (or run `eval \"$(cargo xtask setup-blas mkl)\"`, which sets MKLROOT)",
        prefix.display()
    );
    println!("export MKLROOT={}", shell_quote(path_str(&prefix)?));
    Ok(())
}

/// Installs the Debian packages for OpenBLAS with apt-get (through sudo when not root).
fn setup_openblas() -> Result<(), Error> {
    let installed = |pkg: &str| {
        Command::new("dpkg-query")
            .args(["-W", "-f=${Status}", pkg])
            .output()
            .map(|o| o.status.success() && String::from_utf8_lossy(&o.stdout) == "install ok installed")
            .unwrap_or(false)
    };
    let missing: Vec<&str> = OPENBLAS_PACKAGES.iter().copied().filter(|p| !installed(p)).collect();
    if missing.is_empty() {
        eprintln!("{} already installed", OPENBLAS_PACKAGES.join(", "));
    } else {
        if Command::new("apt-get").arg("--version").output().is_err() {
            return Err(format!(
                "apt-get not found: install OpenBLAS with its development files \
                 (libopenblas.so and openblas.pc) and pkg-config with your system's \
                 package manager; missing: {}",
                missing.join(" ")
            )
            .into());
        }
        let root = Command::new("id")
            .arg("-u")
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
            .unwrap_or(false);
        // `env VAR=value` rather than `Command::env`, so that `sudo` passes it on.
        let apt = |args: &[&str]| {
            let mut full = vec!["DEBIAN_FRONTEND=noninteractive", "apt-get"];
            full.extend_from_slice(args);
            if root {
                run_cmd("env", &full)
            } else {
                let mut with_env = vec!["env"];
                with_env.extend(full);
                run_cmd("sudo", &with_env)
            }
        };
        apt(&["update"])?;
        let mut install = vec!["install", "-y", "--no-install-recommends"];
        install.extend(&missing);
        apt(&install)?;
    }
    let probe = Command::new("pkg-config").args(["--libs", "openblas"]).output()?;
    if !probe.status.success() {
        return Err("the packages are installed but `pkg-config --libs openblas` fails".into());
    }
    eprintln!(
        "OpenBLAS is ready: build with `--features openblas`.\n\
         Tip: Debian's OpenBLAS may not pick its AVX-512 kernels on AMD CPUs; \
         `export OPENBLAS_CORETYPE=SkylakeX` selects them where the CPU has AVX-512."
    );
    Ok(())
}

fn path_str(p: &Path) -> Result<&str, Error> {
    p.to_str()
        .ok_or_else(|| format!("path is not UTF-8: {}", p.display()).into())
}

/// Quotes `s` for a POSIX shell when it holds anything beyond safe characters.
fn shell_quote(s: &str) -> String {
    if s.chars().all(|c| c.is_ascii_alphanumeric() || "/._-+=:,".contains(c)) {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}
