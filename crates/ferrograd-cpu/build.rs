//! Checks, under the BLAS features, that the library to link is installed, and stops
//! the build with a message saying what to install if it is not: otherwise the
//! failure would surface much later as a wall of undefined symbols from the linker
//! (`intel-mkl-src` swallows its own failure to find MKL).
//!
//! Nothing here changes how the code is compiled or linked (that is the job of
//! `intel-mkl-src` and `openblas-src`), except for `mkl-threaded`, where the test and
//! example binaries of this package get an rpath to `libiomp5.so`.

use std::env;
use std::path::{Path, PathBuf};
use std::process::{Command, exit};

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    for var in ["MKLROOT", "PKG_CONFIG_PATH", "LIBRARY_PATH"] {
        println!("cargo:rerun-if-env-changed={var}");
    }
    let feature = |name: &str| env::var_os(format!("CARGO_FEATURE_{name}")).is_some();
    let (mkl, mkl_threaded, openblas) = (feature("MKL"), feature("MKL_THREADED"), feature("OPENBLAS"));

    // `mkl` with `mkl-threaded` never gets here: `intel-mkl-src`'s build script, which
    // this one waits for (it `links`), fails to compile with both ("`MKL_CONFIG` is
    // defined multiple times").
    if openblas && (mkl || mkl_threaded) {
        // Leave it to the `compile_error!` in `src/gemm`.
        return;
    }
    if mkl || mkl_threaded {
        check_mkl(mkl_threaded);
    }
    if openblas {
        check_openblas();
    }
}

/// Stops the build with `message` and how to install the BLAS backends.
fn fail(message: &str) -> ! {
    eprintln!("\nerror: ferrograd-cpu: {message}\n");
    exit(1);
}

const MKL_HELP: &str = "Install MKL (static libraries and headers, from Intel's PyPI wheels) and \
set MKLROOT with\n\n    eval \"$(cargo xtask setup-blas mkl)\"\n\nor point MKLROOT at an \
existing oneAPI MKL install (the folder holding lib/ and include/), then build again.";

fn check_mkl(threaded: bool) {
    let mut libs = vec!["libmkl_intel_lp64.a", "libmkl_core.a"];
    libs.push(if threaded {
        "libmkl_intel_thread.a"
    } else {
        "libmkl_sequential.a"
    });
    let feature = if threaded { "mkl-threaded" } else { "mkl" };

    // Where `intel-mkl-src` looks: pkg-config, then $MKLROOT, then /opt/intel.
    let pkg = if threaded {
        "mkl-static-lp64-iomp"
    } else {
        "mkl-static-lp64-seq"
    };
    if Command::new("pkg-config")
        .args(["--exists", pkg])
        .status()
        .is_ok_and(|s| s.success())
    {
        return;
    }
    let (root, origin) = match env::var_os("MKLROOT") {
        Some(root) => (PathBuf::from(root), "MKLROOT"),
        None if Path::new("/opt/intel").is_dir() => (PathBuf::from("/opt/intel"), "/opt/intel"),
        None => fail(&format!(
            "the feature `{feature}` needs Intel MKL, but MKLROOT is not set.\n\n{MKL_HELP}"
        )),
    };
    let found = |name: &str| find_file(&root, name);
    let Some(lib_dir) = found(libs[1]).and_then(|p| p.parent().map(Path::to_path_buf)) else {
        fail(&format!(
            "the feature `{feature}` needs Intel MKL, but {origin} ({}) holds no {}.\n\n{MKL_HELP}",
            root.display(),
            libs[1],
        ));
    };
    let missing: Vec<&str> = libs
        .iter()
        .copied()
        .filter(|l| !lib_dir.join(l).is_file())
        .chain(found("mkl.h").is_none().then_some("mkl.h"))
        .collect();
    if !missing.is_empty() {
        fail(&format!(
            "the feature `{feature}` needs Intel MKL, but the install at {} lacks {}.\n\n{MKL_HELP}",
            root.display(),
            missing.join(", "),
        ));
    }
    if threaded {
        let Some(iomp) = found("libiomp5.so").or_else(|| found("libiomp5.a")) else {
            fail(&format!(
                "the feature `mkl-threaded` needs Intel's OpenMP runtime (libiomp5), which is \
                 not under {}.\n\n{MKL_HELP}",
                root.display(),
            ));
        };
        if let Some(dir) = iomp.parent() {
            // Lets this package's tests find libiomp5.so without LD_LIBRARY_PATH.
            println!("cargo:rustc-link-arg=-Wl,-rpath,{}", dir.display());
        }
    }
}

const OPENBLAS_HELP: &str = "Install it with\n\n    cargo xtask setup-blas openblas\n\n\
(on Debian/Ubuntu that is `apt-get install -y libopenblas-dev pkg-config`), then build again.";

fn check_openblas() {
    // What `openblas-src` (feature `system`) does: pkg-config, else plain `-lopenblas`.
    if Command::new("pkg-config")
        .args(["--exists", "openblas"])
        .status()
        .is_ok_and(|s| s.success())
    {
        return;
    }
    if env::var("CARGO_CFG_TARGET_OS").as_deref() != Ok("linux") {
        return; // openblas-src has its own ways (brew, vcpkg) there.
    }
    let mut dirs: Vec<PathBuf> = ["/usr/lib", "/usr/lib64", "/usr/local/lib", "/usr/local/lib64"]
        .iter()
        .map(PathBuf::from)
        .collect();
    if let Ok(entries) = std::fs::read_dir("/usr/lib") {
        dirs.extend(
            entries
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.to_string_lossy().ends_with("-linux-gnu")),
        );
    }
    if let Some(paths) = env::var_os("LIBRARY_PATH") {
        dirs.extend(env::split_paths(&paths));
    }
    let found = dirs
        .iter()
        .any(|d| d.join("libopenblas.so").exists() || d.join("libopenblas.a").exists());
    if !found {
        fail(&format!(
            "the feature `openblas` needs the system OpenBLAS, but neither pkg-config \
             (`pkg-config --exists openblas`) nor the usual library folders know it.\n\n\
             {OPENBLAS_HELP}"
        ));
    }
}

/// A file called `name` under `root` (a folder's files before its subfolders, in name
/// order), not following symbolic links to folders and skipping 32-bit folders
/// (`ia32*`), as `intel-mkl-src` does.
fn find_file(root: &Path, name: &str) -> Option<PathBuf> {
    let mut entries: Vec<_> = std::fs::read_dir(root).ok()?.flatten().collect();
    entries.sort_by_key(|e| e.file_name());
    let mut subdirs = Vec::new();
    for entry in entries {
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        if kind.is_dir() {
            if !entry.file_name().to_string_lossy().starts_with("ia32") {
                subdirs.push(entry.path());
            }
        } else if entry.file_name() == name {
            return Some(entry.path());
        }
    }
    subdirs.iter().find_map(|d| find_file(d, name))
}
