//! `cargo xtask parity [--check]`: the PyTorch parity fixtures.
//!
//! Creates a Python venv `parity-venv` in the cargo target directory once (see
//! [`crate::target_dir`]; reused while the pins of `xtask/parity/requirements.txt`
//! stay), installs the pinned `torch` and `numpy` into it (about 5.4 GB on disk: PyPI's
//! Linux torch wheel is the CUDA build, which pulls in the CUDA runtime libraries, the
//! `nvidia-*` wheels, and triton), and runs `xtask/parity/generate.py`, which writes
//! one npz per case into a scratch folder beside it. Each regenerated file is compared
//! with the committed one in `fixtures/parity/` by [`compare::compare_npz`]: equal
//! arrays, with floats within a quarter of the Rust tests' tolerance, since the same
//! torch on another CPU rounds a little differently. Without `--check` the committed
//! folder is then brought up to date (stale files rewritten, new ones added, vanished
//! cases removed; files within tolerance are left alone, so regenerating on another
//! machine does not churn them); with `--check` nothing is written and the command
//! fails, naming every stale, missing or extra fixture.
//!
//! The Rust tests (`crates/ferrograd-autodiff/tests/parity.rs`) read the fixtures; they
//! need no Python.

mod compare;

use crate::{Error, run_cmd, target_dir, workspace_root};
use compare::Verdict;
use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

/// Where the fixtures are committed, relative to the workspace root.
const FIXTURES: &str = "fixtures/parity";
/// The generator scripts and the pinned requirements.
const SCRIPTS: &str = "xtask/parity";
/// The venv's folder in the cargo target directory (so never committed, and placed
/// wherever the user keeps build outputs).
const VENV: &str = "parity-venv";
/// Written into the venv after a successful install: a copy of the requirements it
/// was installed from.
const STAMP: &str = "ferrograd-requirements.txt";

/// Entry point of `parity`.
pub fn run(args: &[String]) -> Result<(), Error> {
    let mut check = false;
    for arg in args {
        match arg.as_str() {
            "--check" => check = true,
            "-h" | "--help" => {
                eprintln!(
                    "usage: cargo xtask parity [--check]\n\n\
                     Regenerates {FIXTURES}/ with PyTorch. The venv, {}, is created on first use:\n\
                     about 5.4 GB on disk (PyPI's torch brings the CUDA libraries).\n\
                     --check  regenerate into a scratch folder and fail if {FIXTURES}/ is stale\n\
                     \n\
                     A fixture is stale when its arrays, dtypes, shapes, integers, bools or metadata\n\
                     differ, or a float by more than a quarter of the Rust tests' tolerance (other\n\
                     CPUs round a little differently; that is not staleness).\n\
                     \n\
                     Environment:\n\
                     \x20 PARITY_PYTHON     the interpreter the venv is created from (default python3)\n\
                     \x20 CARGO_TARGET_DIR  where the venv and scratch folders go (default target/)",
                    target_dir().join(VENV).display()
                );
                return Ok(());
            }
            other => {
                return Err(format!("parity: unknown argument `{other}` (expected `--check`)").into());
            }
        }
    }

    let root = workspace_root();
    let target = target_dir();
    let python = ensure_venv(&root, &target)?;

    let scratch = target.join(format!("parity-out-{}", std::process::id()));
    if scratch.exists() {
        fs::remove_dir_all(&scratch)?;
    }
    fs::create_dir_all(&scratch)?;
    let result = generate_and_apply(&root, &python, &scratch, check);
    let _ = fs::remove_dir_all(&scratch);
    result
}

/// Runs the generator into `scratch`, compares its files with the committed ones, and
/// either reports (`check`) or brings `fixtures/parity/` up to date.
fn generate_and_apply(root: &Path, python: &Path, scratch: &Path, check: bool) -> Result<(), Error> {
    let script = root.join(SCRIPTS).join("generate.py");
    // `-B`: no __pycache__ beside the scripts.
    run_cmd(path_str(python)?, &["-B", path_str(&script)?, path_str(scratch)?])?;

    let fresh = list_files(scratch)?;
    if fresh.is_empty() {
        return Err("parity: the generator wrote no fixtures".into());
    }
    let committed_dir = root.join(FIXTURES);
    let committed = if committed_dir.exists() {
        list_files(&committed_dir)?
    } else {
        BTreeMap::new()
    };

    // Stale files with why; files equal only within tolerance, with their farthest float.
    let mut stale: Vec<(String, String)> = Vec::new();
    let mut close: Vec<(String, Option<compare::Worst>)> = Vec::new();
    let mut missing = Vec::new();
    for (rel, path) in &fresh {
        let Some(old) = committed.get(rel) else {
            missing.push(rel.clone());
            continue;
        };
        match compare::compare_npz(&fs::read(old)?, &fs::read(path)?)
            .map_err(|e| format!("parity: {FIXTURES}/{rel}: {e}"))?
        {
            Verdict::Identical => {}
            Verdict::Close(worst) => close.push((rel.clone(), worst)),
            Verdict::Stale(why) => stale.push((rel.clone(), why)),
        }
    }
    let extra: Vec<String> = committed
        .keys()
        .filter(|rel| !fresh.contains_key(*rel))
        .cloned()
        .collect();

    eprintln!("parity: {}", compare::describe());
    // "(687 byte for byte, 31 within tolerance; farthest: …)": how close the matching
    // files came, so that a reader sees how much room the tolerance left.
    let matching = fresh.len() - stale.len() - missing.len();
    let farthest = close
        .iter()
        .filter_map(|(rel, w)| w.as_ref().map(|w| (rel, w)))
        .max_by(|a, b| a.1.excess.total_cmp(&b.1.excess));
    let detail = match farthest {
        Some((rel, worst)) => format!(
            "({} byte for byte, {} within tolerance; farthest: {rel}: {worst})",
            matching - close.len(),
            close.len()
        ),
        None => format!(
            "({} byte for byte, {} with equal values)",
            matching - close.len(),
            close.len()
        ),
    };

    if check {
        if stale.is_empty() && missing.is_empty() && extra.is_empty() {
            eprintln!("parity: {matching} fixtures match {detail}; {FIXTURES}/ is up to date");
            return Ok(());
        }
        let mut report =
            format!("parity: {matching} fixtures match {detail}, but the committed fixtures are out of date:\n");
        for (rel, why) in &stale {
            report.push_str(&format!("  stale: {FIXTURES}/{rel}: {why}\n"));
        }
        for (label, list) in [
            ("missing (not committed)", &missing),
            ("extra (no case writes it)", &extra),
        ] {
            for rel in list {
                report.push_str(&format!("  {label}: {FIXTURES}/{rel}\n"));
            }
        }
        report.push_str(&format!(
            "{} stale, {} missing, {} extra; run `cargo xtask parity` and commit {FIXTURES}/",
            stale.len(),
            missing.len(),
            extra.len()
        ));
        return Err(report.into());
    }

    for rel in stale.iter().map(|(rel, _)| rel).chain(&missing) {
        let target = committed_dir.join(rel);
        if let Some(parent) = target.parent() {
            fs::create_dir_all(parent)?;
        }
        fs::copy(&fresh[rel], &target)?;
    }
    for rel in &extra {
        fs::remove_file(committed_dir.join(rel))?;
    }
    remove_empty_dirs(&committed_dir)?;
    for (rel, why) in &stale {
        eprintln!("parity: rewrote {FIXTURES}/{rel}: {why}");
    }
    let bytes: u64 = fresh
        .values()
        .map(|p| fs::metadata(p).map(|m| m.len()).unwrap_or(0))
        .sum();
    eprintln!(
        "parity: {} fixtures ({:.2} MB) in {FIXTURES}/: {} rewritten, {} new, {} removed, {} unchanged \
         {detail}",
        fresh.len(),
        bytes as f64 / 1e6,
        stale.len(),
        missing.len(),
        extra.len(),
        matching
    );
    Ok(())
}

/// The venv's interpreter, after creating the venv and installing the requirements
/// when it does not exist yet or was installed from other pins.
fn ensure_venv(root: &Path, target: &Path) -> Result<PathBuf, Error> {
    let venv = target.join(VENV);
    let python = venv.join("bin").join("python");
    let requirements_path = root.join(SCRIPTS).join("requirements.txt");
    let requirements = fs::read_to_string(&requirements_path)
        .map_err(|e| format!("parity: cannot read {}: {e}", requirements_path.display()))?;
    let stamp = venv.join(STAMP);

    // Only the pins count: editing a comment must not cost a reinstall.
    let pins = |text: &str| -> Vec<String> {
        text.lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(String::from)
            .collect()
    };
    let installed = fs::read_to_string(&stamp).ok();
    if python.exists() && installed.is_some_and(|text| pins(&text) == pins(&requirements)) {
        return Ok(python);
    }
    if !python.exists() {
        let base = std::env::var("PARITY_PYTHON").unwrap_or_else(|_| "python3".to_string());
        eprintln!("parity: creating the venv {} (once)", venv.display());
        run_cmd(&base, &["-m", "venv", path_str(&venv)?])?;
    }
    eprintln!(
        "parity: installing {} into {} (about 5.4 GB on disk: PyPI's Linux torch wheel \
         brings the CUDA runtime libraries, the nvidia-* wheels, and triton; set \
         CARGO_TARGET_DIR to put the venv elsewhere)",
        requirements_path.display(),
        venv.display()
    );
    let _ = fs::remove_file(&stamp);
    let pip = venv.join("bin").join("pip");
    run_cmd(
        path_str(&pip)?,
        &[
            "install",
            "--disable-pip-version-check",
            "-r",
            path_str(&requirements_path)?,
        ],
    )?;
    fs::write(&stamp, requirements)?;
    Ok(python)
}

/// Every file below `dir`, by its path relative to `dir` (with `/` separators).
fn list_files(dir: &Path) -> Result<BTreeMap<String, PathBuf>, Error> {
    fn walk(dir: &Path, prefix: &str, out: &mut BTreeMap<String, PathBuf>) -> Result<(), Error> {
        for entry in fs::read_dir(dir)? {
            let entry = entry?;
            let name = entry
                .file_name()
                .into_string()
                .map_err(|n| format!("non-UTF-8 file name {n:?}"))?;
            let rel = if prefix.is_empty() {
                name
            } else {
                format!("{prefix}/{name}")
            };
            if entry.file_type()?.is_dir() {
                walk(&entry.path(), &rel, out)?;
            } else {
                out.insert(rel, entry.path());
            }
        }
        Ok(())
    }
    let mut out = BTreeMap::new();
    walk(dir, "", &mut out)?;
    Ok(out)
}

fn remove_empty_dirs(dir: &Path) -> Result<(), Error> {
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_type()?.is_dir() {
            remove_empty_dirs(&entry.path())?;
            if fs::read_dir(entry.path())?.next().is_none() {
                fs::remove_dir(entry.path())?;
            }
        }
    }
    Ok(())
}

fn path_str(path: &Path) -> Result<&str, Error> {
    path.to_str()
        .ok_or_else(|| format!("non-UTF-8 path {}", path.display()).into())
}
