//! Reductions and log-softmax on a contiguous 64×128×1024 `f32` tensor (32 MiB), against
//! the memory-bandwidth bound: the time to read the tensor once and write it once,
//! measured here as a plain copy of the same buffer into another one.
//!
//! ```sh
//! cargo run --release -p ferrograd-benches --bin reductions
//! ```
//!
//! Forward and backward are timed at the kernel level (the CPU kernels the tensor ops
//! call, on the same buffers), plus the forward pass through the tensor API to show that
//! it adds nothing. Backward kernels accumulate into a gradient buffer allocated
//! beforehand, as `Gradients` holds it. Each op is timed [`SAMPLES`] times after a
//! warm-up; the best and the median are reported, each with its ratio to the copy's
//! (the best is the steadier figure on a shared machine).

use std::hint::black_box;
use std::time::{Duration, Instant};

use ferrograd::cpu::CpuBuffer;
use ferrograd::device::ops::reduce::SumKernel;
use ferrograd::device::ops::softmax::{SoftmaxKernel, SoftmaxKind};
use ferrograd::device::view::InputView;
use ferrograd::device::{Input, Layout, Storage, View, ViewMut};
use ferrograd::prelude::*;

/// The tensor's shape.
type Big = Rank3<64, 128, 1024>;
/// Timed calls per figure; the best and the median are reported.
const SAMPLES: usize = 21;
/// Minimum warm-up time before the samples.
const WARM_UP: Duration = Duration::from_millis(200);

/// The best and the median time of one call of `run`, after a warm-up.
fn time(mut run: impl FnMut()) -> Timing {
    let start = Instant::now();
    let mut calls = 0;
    while calls < 3 || start.elapsed() < WARM_UP {
        run();
        calls += 1;
    }
    let mut samples: Vec<Duration> = (0..SAMPLES)
        .map(|_| {
            let start = Instant::now();
            run();
            start.elapsed()
        })
        .collect();
    samples.sort();
    Timing {
        best: samples[0],
        median: samples[SAMPLES / 2],
    }
}

/// The best and the median of the timed calls.
#[derive(Clone, Copy)]
struct Timing {
    best: Duration,
    median: Duration,
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// The bounds each figure is divided by.
#[derive(Clone, Copy)]
struct Bounds {
    /// A plain copy: one thread reads the tensor and writes it into a mapped buffer.
    copy: Timing,
    /// The same copy split across every core.
    copy_all_cores: Timing,
}

/// One table row: the best time and its ratios to the bounds, then the median.
fn row(name: &str, t: Timing, bounds: Bounds) {
    let ratio = |b: Timing| t.best.as_secs_f64() / b.best.as_secs_f64();
    println!(
        "| {name:<42} | {:>7.2} | {:>6.2}× | {:>9.2}× | {:>7.2} |",
        ms(t.best),
        ratio(bounds.copy),
        ratio(bounds.copy_all_cores),
        ms(t.median),
    );
}

/// Copies `src` into `dst` with one thread per core, each a contiguous share.
fn copy_all_cores(dst: &mut [f32], src: &[f32]) {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let share = dst.len().div_ceil(threads);
    std::thread::scope(|scope| {
        for (d, s) in dst.chunks_mut(share).zip(src.chunks(share)) {
            scope.spawn(move || d.copy_from_slice(s));
        }
    });
}

fn main() {
    let cpu = Cpu::seed_from_u64(0);
    let x: Tensor<Big, f32, Cpu> = cpu.sample_normal();
    let n = x.num_elements();
    let data: CpuBuffer<f32> = cpu.try_from_host(x.as_vec()).unwrap();
    let layout = Layout::contiguous(&Big::default());
    let last: &[usize] = &[2];
    let all: &[usize] = &[0, 1, 2];

    // The bound: read 32 MiB and write 32 MiB, into a buffer whose pages are mapped.
    let mut dst = vec![0.0f32; n];
    let copy = time(|| dst.copy_from_slice(black_box(&data)));
    let all_cores = time(|| copy_all_cores(&mut dst, black_box(&data)));
    let bounds = Bounds {
        copy,
        copy_all_cores: all_cores,
    };
    // What an op pays on top when its output is a fresh allocation: the kernel maps
    // (page-faults) 32 MiB of new memory, which here costs more than the copy itself.
    let fresh_copy = time(|| drop(black_box(black_box(&data).to_vec())));

    println!(
        "Reductions over a contiguous 64×128×1024 f32 tensor ({} MiB), {SAMPLES} calls each, {} threads\n",
        (n * 4) >> 20,
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    println!(
        "| {:<42} | {:>7} | {:>7} | {:>10} | {:>7} |",
        "", "best ms", "÷ copy", "÷ all-core", "median"
    );
    println!("|{}|--------:|--------:|-----------:|--------:|", "-".repeat(44));
    row("copy (the bound: read + write once)", copy, bounds);
    row("copy on all cores", all_cores, bounds);
    row("copy into a new allocation (to_vec)", fresh_copy, bounds);

    // sum over the last axis, and over everything.
    for (name, axes, out_len) in [("last axis", last, 64 * 128), ("all axes", all, 1)] {
        let forward = time(|| {
            drop(black_box(
                SumKernel::forward(&cpu, View::new(black_box(&data), layout), axes).unwrap(),
            ))
        });
        let grad_out: CpuBuffer<f32> = cpu.try_alloc_filled(out_len, 0.5).unwrap();
        let mut grad: CpuBuffer<f32> = cpu.try_alloc_zeros(n).unwrap();
        let backward =
            time(|| SumKernel::backward(&cpu, ViewMut::new(&mut grad, layout), axes, black_box(&grad_out)).unwrap());
        row(&format!("sum, {name}: forward"), forward, bounds);
        row(&format!("sum, {name}: backward"), backward, bounds);
    }

    // log_softmax (and softmax) over the last axis.
    let mut allocating = Vec::new();
    for kind in [SoftmaxKind::LogSoftmax, SoftmaxKind::Softmax] {
        let name = kind.name();
        let forward = time(|| {
            drop(black_box(
                SoftmaxKernel::forward(
                    &cpu,
                    kind,
                    InputView::new(Input::Shared(black_box(&data)), layout),
                    last,
                )
                .unwrap(),
            ))
        });
        // In place: the traced input's buffer is reused when nothing else holds it.
        let mut spare = Some(data.clone());
        let in_place = time(|| {
            let buffer = spare.take().unwrap();
            let input = InputView::new(Input::Unique(buffer), layout);
            spare = Some(SoftmaxKernel::forward(&cpu, kind, input, last).unwrap());
        });
        let out = SoftmaxKernel::forward(&cpu, kind, InputView::new(Input::Shared(&data), layout), last).unwrap();
        let grad_out: CpuBuffer<f32> = cpu.try_from_host(x.as_vec()).unwrap();
        let mut grad: CpuBuffer<f32> = cpu.try_alloc_zeros(n).unwrap();
        let backward = time(|| {
            SoftmaxKernel::backward(
                &cpu,
                kind,
                ViewMut::new(&mut grad, layout),
                last,
                black_box(&out),
                black_box(&grad_out),
            )
            .unwrap()
        });
        row(&format!("{name}, last axis: forward"), forward, bounds);
        allocating.push((name, forward));
        row(&format!("{name}, last axis: forward in place"), in_place, bounds);
        row(&format!("{name}, last axis: backward"), backward, bounds);
    }

    // The same through the tensor API (untraced forward).
    let api_sum = time(|| drop(black_box(x.clone().sum::<_, Axis<2>>())));
    let api_lsm = time(|| drop(black_box(x.clone().log_softmax::<Axis<2>>())));
    row("tensor API: x.sum::<_, Axis<2>>()", api_sum, bounds);
    row("tensor API: x.log_softmax::<Axis<2>>()", api_lsm, bounds);

    allocating.push(("tensor API log_softmax", api_lsm));
    println!(
        "\nForward passes that allocate their output, against the copy into a new \
         allocation (to_vec, {:.2} ms best):",
        ms(fresh_copy.best)
    );
    for (name, t) in allocating {
        println!(
            "  {name:<24} {:.2}×",
            t.best.as_secs_f64() / fresh_copy.best.as_secs_f64()
        );
    }

    // The results must be right, or the figures mean nothing.
    let values = x.as_vec();
    let row0 = &values[..1024];
    let expected_sum: f64 = row0.iter().map(|&v| f64::from(v)).sum();
    let got_sum = f64::from(x.clone().sum::<_, Axis<2>>().as_vec()[0]);
    assert!(
        (got_sum - expected_sum).abs() < 1e-3,
        "sum: {got_sum} vs {expected_sum}"
    );
    let m = row0.iter().fold(f64::NEG_INFINITY, |m, &v| m.max(f64::from(v)));
    let lse = m + row0.iter().map(|&v| (f64::from(v) - m).exp()).sum::<f64>().ln();
    let got = x.clone().log_softmax::<Axis<2>>().as_vec();
    assert!(
        (f64::from(got[5]) - (f64::from(row0[5]) - lse)).abs() < 1e-5,
        "log_softmax is wrong"
    );
}
