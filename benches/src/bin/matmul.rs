//! GFLOP/s of `ferrograd_cpu::gemm::gemm_with` on square row-major products, f32 and
//! f64, for every backend this build can run on this CPU (`avx512` and
//! `matrixmultiply` without features, plus the BLAS library of a feature). Prints one
//! Markdown table row per backend, so runs under each feature line up in one table:
//!
//! ```sh
//! cargo run --release -p ferrograd-benches --bin matmul
//! cargo run --release -p ferrograd-benches --bin matmul --features openblas -- --no-header
//! MKLROOT=… cargo run --release -p ferrograd-benches --bin matmul --features mkl -- --no-header
//! ```
//!
//! Each figure is the median of several timed samples taken after a warm-up; a sample
//! repeats the product until it has run for at least [`SAMPLE_TIME`].

use std::hint::black_box;
use std::time::{Duration, Instant};

use ferrograd_cpu::gemm::{Backend, GemmElement, MatrixMut, MatrixRef, gemm_with};

/// The sizes measured: `n×n` times `n×n`.
const SIZES: [usize; 2] = [256, 1024];
/// Timed samples per figure; the median is reported.
const SAMPLES: usize = 7;
/// Minimum run time of one sample (the product is repeated to reach it).
const SAMPLE_TIME: Duration = Duration::from_millis(40);
/// Minimum warm-up time before the samples.
const WARM_UP: Duration = Duration::from_millis(150);

trait Elem: GemmElement {
    const NAME: &'static str;
    fn from_f64(x: f64) -> Self;
    fn to_f64(self) -> f64;
}

impl Elem for f32 {
    const NAME: &'static str = "f32";
    fn from_f64(x: f64) -> Self {
        x as f32
    }
    fn to_f64(self) -> f64 {
        self.into()
    }
}

impl Elem for f64 {
    const NAME: &'static str = "f64";
    fn from_f64(x: f64) -> Self {
        x
    }
    fn to_f64(self) -> f64 {
        self
    }
}

/// GFLOP/s of an `n×n×n` product on `backend`: the median over [`SAMPLES`] samples.
fn measure<E: Elem>(backend: Backend, n: usize) -> f64 {
    let a: Vec<E> = (0..n * n).map(|i| E::from_f64((i % 7) as f64 - 3.0)).collect();
    let b: Vec<E> = (0..n * n).map(|i| E::from_f64((i % 5) as f64 - 2.0)).collect();
    let mut c = vec![E::ZERO; n * n];
    let run = |c: &mut [E]| {
        gemm_with(
            backend,
            n,
            n,
            n,
            E::ONE,
            MatrixRef::new(black_box(&a), n, 1),
            MatrixRef::new(black_box(&b), n, 1),
            E::ZERO,
            MatrixMut::new(black_box(c), n, 1),
        );
    };

    // Warm-up (threads started, caches and pages touched), which also tells how many
    // products fill one sample.
    let start = Instant::now();
    let mut calls = 0u32;
    while calls < 2 || start.elapsed() < WARM_UP {
        run(&mut c);
        calls += 1;
    }
    let per_call = start.elapsed() / calls;
    let reps = (SAMPLE_TIME.as_secs_f64() / per_call.as_secs_f64()).ceil().max(1.0) as u32;

    let mut gflops: Vec<f64> = (0..SAMPLES)
        .map(|_| {
            let start = Instant::now();
            for _ in 0..reps {
                run(&mut c);
            }
            let seconds = start.elapsed().as_secs_f64() / f64::from(reps);
            2.0 * (n as f64).powi(3) / seconds / 1e9
        })
        .collect();

    // The result must be right, or the figure means nothing.
    let (i, j) = (n / 3, n / 2 + 1);
    let expected: f64 = (0..n).map(|p| a[i * n + p].to_f64() * b[p * n + j].to_f64()).sum();
    let got = c[i * n + j].to_f64();
    assert!(
        (got - expected).abs() <= 1e-4 * (1.0 + expected.abs()),
        "{} {}: c[{i}][{j}] = {got}, expected {expected}",
        backend.name(),
        E::NAME,
    );

    gflops.sort_by(f64::total_cmp);
    gflops[SAMPLES / 2]
}

fn main() {
    let header = !std::env::args().skip(1).any(|a| a == "--no-header");
    let columns: Vec<String> = ["f32", "f64"]
        .iter()
        .flat_map(|name| SIZES.map(|n| format!("{:>10}", format!("{name} {n}³"))))
        .collect();
    if header {
        println!("GEMM throughput, GFLOP/s (median of {SAMPLES} samples)\n");
        println!("| backend        | {} |", columns.join(" | "));
        println!("|----------------|{}", "-----------:|".repeat(columns.len()));
    }
    // The BLAS row comes only from builds with a BLAS feature; the others print the
    // native backends, so a table of several runs names each backend once.
    let backends: Vec<Backend> = if Backend::Blas.is_available() {
        vec![Backend::Blas]
    } else {
        Backend::available()
    };
    for backend in backends {
        let mut figures = Vec::new();
        for n in SIZES {
            figures.push(measure::<f32>(backend, n));
        }
        for n in SIZES {
            figures.push(measure::<f64>(backend, n));
        }
        let cells: Vec<String> = figures.iter().map(|g| format!("{g:>10.1}")).collect();
        println!("| {:<14} | {} |", backend.name(), cells.join(" | "));
    }
}
