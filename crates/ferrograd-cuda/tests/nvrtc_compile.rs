//! Every CUDA C source of the crate compiles with NVRTC, for every element type it is
//! written for, to PTX and to machine code: no GPU needed, so CI runs this. That is the
//! crate's files ([`kernel_sources`]) and the kernels generated from every declared
//! element-wise op, for f32 and f64 ([`generated_kernel_sources`]).
//!
//! NVRTC is loaded at run time (`libnvrtc.so.13`, found through `LD_LIBRARY_PATH`; see
//! the crate documentation). Where it cannot be loaded the test fails if the
//! environment variable `CI` is set, and otherwise says it is skipped and passes.

use ferrograd_cuda::{KernelSource, generated_kernel_sources, kernel_sources, nvrtc_version};
use std::collections::HashSet;

/// The architectures compiled for: Ampere (the oldest GPU ferrograd's kernels are tuned
/// for) as PTX, which any newer GPU's driver can compile, and Hopper as machine code.
const PTX_ARCH: &str = "compute_80";
const CUBIN_ARCH: &str = "sm_90";

/// `true` when NVRTC is there; `false` (after printing why) when the test should be skipped.
fn nvrtc_or_skip() -> bool {
    match nvrtc_version() {
        Ok((major, minor)) => {
            println!("NVRTC {major}.{minor}");
            true
        }
        Err(e) if std::env::var_os("CI").is_some() => panic!("CI is set, so NVRTC must be available: {e}"),
        Err(e) => {
            println!("skipped: {e}");
            false
        }
    }
}

#[test]
fn every_kernel_source_compiles_for_each_of_its_element_types() {
    if !nvrtc_or_skip() {
        return;
    }
    compile_all(kernel_sources());
}

#[test]
fn every_generated_element_wise_kernel_compiles() {
    if !nvrtc_or_skip() {
        return;
    }
    let sources = generated_kernel_sources().unwrap();
    // Both element types of every declared op.
    for element_type in ["float", "double"] {
        let count = sources
            .iter()
            .filter(|source| source.element_types == [element_type])
            .count();
        assert_eq!(count * 2, sources.len(), "{element_type}");
    }
    compile_all(&sources);
}

/// Compiles each source for each of its element types to PTX and CUBIN, and checks
/// that the PTX defines every function the source lists; fails naming every failure.
fn compile_all(sources: &[KernelSource]) {
    let mut failures = Vec::new();
    for source in sources {
        for &element_type in source.element_types {
            match source.compile_ptx(element_type, PTX_ARCH) {
                Ok(ptx) => {
                    // An entry not found means the function is missing or its name was
                    // mangled (not `extern "C"`), and loading it would fail on a GPU.
                    for function in source.functions {
                        let entry = format!(".entry {function}(");
                        if !ptx.contains(&entry) {
                            failures.push(format!(
                                "{}.cu (T = {element_type}): no `{entry}` in its PTX",
                                source.name
                            ));
                        }
                    }
                }
                Err(e) => failures.push(e.to_string()),
            }
            match source.compile_cubin(element_type, CUBIN_ARCH) {
                Ok(cubin) if cubin.starts_with(b"\x7fELF") => {}
                Ok(_) => failures.push(format!(
                    "{}.cu (T = {element_type}): the CUBIN is not an ELF image",
                    source.name
                )),
                Err(e) => failures.push(e.to_string()),
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn a_source_that_does_not_compile_is_an_error_with_the_compiler_log() {
    if !nvrtc_or_skip() {
        return;
    }
    let broken = ferrograd_cuda::KernelSource {
        name: "broken",
        source: "extern \"C\" __global__ void broken(T *out) {\n    out[0] = undeclared;\n}\n",
        functions: &["broken"],
        element_types: &["float"],
    };
    let message = broken.compile_ptx("float", PTX_ARCH).unwrap_err().to_string();
    // NVRTC's log, with the file's own name and line (after the `typedef` put in front).
    assert!(message.contains("broken.cu(2)"), "{message}");
    assert!(message.contains("undeclared"), "{message}");
    let wrong_type = broken.compile_ptx("double", PTX_ARCH).unwrap_err().to_string();
    assert!(wrong_type.contains("not \"double\""), "{wrong_type}");
}

#[test]
fn kernel_function_names_are_unique_across_sources() {
    // A device keeps loaded kernels by function name and element type.
    let mut seen = HashSet::new();
    for source in kernel_sources() {
        for function in source.functions {
            assert!(seen.insert(*function), "{function} is defined by two sources");
        }
        assert!(!source.element_types.is_empty(), "{} has no element types", source.name);
    }
    // A generated source is compiled for one element type, and its functions share
    // their names only with the source of the same op for the other type.
    let mut generated = HashSet::new();
    for source in generated_kernel_sources().unwrap() {
        assert_eq!(source.element_types.len(), 1, "{}", source.name);
        for function in source.functions {
            assert!(!seen.contains(function), "{function} is also defined by a file");
            assert!(
                generated.insert((*function, source.element_types[0])),
                "{function} is generated twice for {}",
                source.element_types[0]
            );
        }
    }
}
