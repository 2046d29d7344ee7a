//! The crate's CUDA C kernels run on the CPU, for tests on machines without a GPU.
//!
//! A kernel source is compiled by the host's C++ compiler (`c++`, g++ or clang) into a
//! shared library
//! after a prelude that makes CUDA C plain C++: `__global__` and `__device__` vanish,
//! the grid is one block of one thread (so every grid-stride loop visits every item,
//! in order), `__shared__` arrays are static, `__syncthreads` does nothing, `atomicAdd`
//! is an addition, and the `_rn` intrinsics are the plain operations, which the host
//! rounds the same way (no contraction into FMA: `-ffp-contract=off`). A test then
//! calls a kernel, `extern "C"` with the signature it has on the GPU, through the
//! library, with host pointers: the kernels' indexing and arithmetic are checked against
//! the CPU device without a GPU. What this cannot check is what depends on real
//! parallelism (races, atomics, block sizes) and the launches' argument lists, which
//! only a GPU run shows.
//!
//! Without `c++` the tests that need it say they are skipped, unless `CI` is set (CI
//! installs g++ where there is none, see `.ci/run`).

use crate::compile::KernelSource;
use libloading::Library;
use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Command;
use std::sync::Mutex;

const PRELUDE: &str = r#"
#include <cmath>
#include <cstring>
struct emulated_dim3 { unsigned int x, y, z; };
static const emulated_dim3 gridDim = {1, 1, 1}, blockDim = {1, 1, 1}, blockIdx = {0, 0, 0}, threadIdx = {0, 0, 0};
#define __global__
#define __device__
#define __forceinline__ inline
#define __shared__ static
static inline void __syncthreads() {}
static inline float atomicAdd(float *p, float v) { float old = *p; *p = old + v; return old; }
static inline double atomicAdd(double *p, double v) { double old = *p; *p = old + v; return old; }
static inline float __fmul_rn(float a, float b) { return a * b; }
static inline double __dmul_rn(double a, double b) { return a * b; }
static inline float __fdiv_rn(float a, float b) { return a / b; }
static inline double __ddiv_rn(double a, double b) { return a / b; }
static inline float __fsqrt_rn(float a) { return std::sqrt(a); }
static inline double __dsqrt_rn(double a) { return std::sqrt(a); }
static inline double __longlong_as_double(long long x) { double d; std::memcpy(&d, &x, sizeof d); return d; }
static inline unsigned int __umulhi(unsigned int a, unsigned int b) { return (unsigned int)(((unsigned long long)a * b) >> 32); }
"#;

/// The libraries compiled so far, by (source, element type): kept for the whole test
/// run (leaked), so the functions taken from them stay valid.
static LIBRARIES: Mutex<Option<HashMap<(&'static str, &'static str), &'static Library>>> = Mutex::new(None);

/// `source` compiled for the CPU with `T` = `element_type`, or `None` (after printing
/// why) where there is no `c++` and `CI` is not set.
pub(crate) fn library(source: &KernelSource, element_type: &'static str) -> Option<&'static Library> {
    let mut libraries = crate::device::lock(&LIBRARIES);
    let libraries = libraries.get_or_insert_with(HashMap::new);
    if let Some(library) = libraries.get(&(source.name, element_type)) {
        return Some(library);
    }
    let directory = std::env::temp_dir();
    let stem = format!(
        "ferrograd-cuda-emulation-{}-{}-{}",
        std::process::id(),
        source.name,
        element_type.replace(' ', "_")
    );
    let code: PathBuf = directory.join(format!("{stem}.cpp"));
    let object: PathBuf = directory.join(format!("lib{stem}.so"));
    let text = format!("{PRELUDE}\ntypedef {element_type} T;\n{}", source.source);
    std::fs::write(&code, text).expect("writing the kernel source");
    // More flags from the environment: `-fsanitize=address` (with the test binary run
    // under LD_PRELOAD of libasan) catches a kernel reading or writing out of bounds.
    let extra = std::env::var("FERROGRAD_EMULATION_FLAGS").unwrap_or_default();
    let compiled = Command::new("c++")
        .args(["-std=c++17", "-O1", "-shared", "-fPIC", "-ffp-contract=off", "-w"])
        .args(extra.split_whitespace())
        .arg("-o")
        .arg(&object)
        .arg(&code)
        .output();
    match compiled {
        Ok(output) if output.status.success() => {}
        Ok(output) => panic!(
            "c++ could not compile {}.cu for the CPU:\n{}",
            source.name,
            String::from_utf8_lossy(&output.stderr)
        ),
        Err(e) if std::env::var_os("CI").is_some() => {
            panic!("CI is set, so a C++ compiler (c++) must be available: {e}")
        }
        Err(e) => {
            println!("skipped, no C++ compiler (c++) to run the kernels on the CPU: {e}");
            return None;
        }
    }
    // SAFETY: the library was just built from the crate's kernel source and a prelude
    // with no initialisers of consequence; loading it runs only the C++ runtime's.
    let library = unsafe { Library::new(&object) }.expect("loading the kernels compiled for the CPU");
    // A loaded library stays mapped after its files are gone.
    let _ = std::fs::remove_file(&code);
    let _ = std::fs::remove_file(&object);
    let library: &'static Library = Box::leak(Box::new(library));
    libraries.insert((source.name, element_type), library);
    Some(library)
}

/// The function `name` of `library`, of the Rust type `F` (an `unsafe extern "C" fn`
/// with the kernel's signature).
///
/// # Safety
/// `F` must be the kernel's signature, with `T` the library's element type.
pub(crate) unsafe fn kernel<F: Copy>(library: &'static Library, name: &str) -> F {
    // SAFETY: the caller promises `F` is the function's type.
    *unsafe { library.get::<F>(name.as_bytes()) }.unwrap_or_else(|e| panic!("no kernel {name}: {e}"))
}
