//! The maximum relative error of each of `ferrograd_cpu::fast_math`'s approximations,
//! over **every** `f32` in its stated range, against the standard library's `f64`
//! functions; the figures its docs state.
//!
//! ```sh
//! cargo run --release -p ferrograd-benches --bin fast_math_error
//! cargo run --release -p ferrograd-benches --bin fast_math_error -- 97   # every 97th
//! cargo run --release -p ferrograd-benches --bin fast_math_error -- 1 scalar
//! ```
//!
//! The approximations run through their `*_in_place` forms, the vectorised copies the
//! kernels run on this CPU (with fused multiply-adds where it has AVX2 or AVX-512), or
//! with `scalar` through the scalar forms (separate multiplies and adds, as on a CPU
//! without FMA). The relative error is `|fast − exact| / |exact|` with
//! `exact` in f64; the error in ulps is `|fast − exact|` over the spacing of `f32`s at
//! `exact` rounded to `f32` (so a correctly rounded result is at most 0.5 ulp off). The
//! sweep is split across threads by bit pattern.

use ferrograd_cpu::fast_math;

/// One approximation and its exact reference over a range of inputs.
struct Case {
    name: &'static str,
    fast: fn(&mut [f32]),
    exact: fn(f64) -> f64,
    low: f32,
    high: f32,
}

/// The spacing of `f32`s at `y` (its ulp), as f64.
fn ulp(y: f64) -> f64 {
    let y = (y as f32).abs();
    if !y.is_finite() {
        return f64::NAN;
    }
    let next = f32::from_bits(y.to_bits() + 1);
    (next as f64) - (y as f64)
}

/// The worst (relative error, ulps, input) over the given chunk of bit patterns.
fn sweep(case: &Case, bits: impl Iterator<Item = u32>) -> (f64, f64, f32) {
    let mut worst = (0.0f64, 0.0f64, 0.0f32);
    let mut xs = Vec::with_capacity(1 << 16);
    let flush = |xs: &mut Vec<f32>, worst: &mut (f64, f64, f32)| {
        let mut ys = xs.clone();
        (case.fast)(&mut ys);
        for (&x, &y) in xs.iter().zip(&ys) {
            let want = (case.exact)(x as f64);
            let diff = (y as f64 - want).abs();
            let rel = if want == 0.0 {
                if y == 0.0 { 0.0 } else { f64::INFINITY }
            } else if diff == 0.0 {
                0.0
            } else {
                diff / want.abs()
            };
            let ulps = if diff == 0.0 { 0.0 } else { diff / ulp(want) };
            if rel > worst.0 || rel.is_nan() {
                worst.0 = rel;
                worst.2 = x;
            }
            if ulps > worst.1 || ulps.is_nan() {
                worst.1 = ulps;
            }
        }
        xs.clear();
    };
    for b in bits {
        let x = f32::from_bits(b);
        if x >= case.low && x <= case.high {
            xs.push(x);
            if xs.len() == xs.capacity() {
                flush(&mut xs, &mut worst);
            }
        }
    }
    flush(&mut xs, &mut worst);
    worst
}

fn main() {
    let stride: u64 = std::env::args().nth(1).map_or(1, |s| s.parse().expect("a stride"));
    let scalar = std::env::args().nth(2).is_some_and(|a| a == "scalar");
    let mut cases = [
        Case {
            name: "exp",
            fast: fast_math::exp_in_place,
            exact: f64::exp,
            low: -87.33,
            high: 88.72,
        },
        Case {
            name: "ln",
            fast: fast_math::ln_in_place,
            exact: f64::ln,
            low: f32::from_bits(1),
            high: f32::MAX,
        },
        Case {
            name: "tanh",
            fast: fast_math::tanh_in_place,
            exact: f64::tanh,
            low: f32::MIN,
            high: f32::MAX,
        },
        Case {
            name: "sigmoid",
            fast: fast_math::sigmoid_in_place,
            exact: |x| 1.0 / (1.0 + (-x).exp()),
            low: -87.33,
            high: f32::MAX,
        },
    ];
    if scalar {
        let forms: [fn(&mut [f32]); 4] = [
            |v| v.iter_mut().for_each(|x| *x = fast_math::exp(*x)),
            |v| v.iter_mut().for_each(|x| *x = fast_math::ln(*x)),
            |v| v.iter_mut().for_each(|x| *x = fast_math::tanh(*x)),
            |v| v.iter_mut().for_each(|x| *x = fast_math::sigmoid(*x)),
        ];
        for (case, form) in cases.iter_mut().zip(forms) {
            case.fast = form;
        }
    }
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()) as u64;
    let forms = if scalar { "scalar forms" } else { "vectorised forms" };
    println!("every {stride}th f32 bit pattern, {forms}, {threads} threads");
    println!(
        "{:<8} {:>26} {:>14} {:>16}",
        "function", "range", "max rel error", "max ulps"
    );
    for case in &cases {
        let total: u64 = 1 << 32;
        let per = total.div_ceil(threads);
        let results: Vec<(f64, f64, f32)> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..threads)
                .map(|t| {
                    let (start, end) = (t * per, ((t + 1) * per).min(total));
                    let first = start.div_ceil(stride) * stride;
                    let case = &case;
                    s.spawn(move || sweep(case, (first..end).step_by(stride as usize).map(|b| b as u32)))
                })
                .collect();
            handles.into_iter().map(|h| h.join().expect("a sweep thread")).collect()
        });
        let rel = results
            .iter()
            .fold((0.0, 0.0f32), |w, r| if r.0 > w.0 { (r.0, r.2) } else { w });
        let ulps = results.iter().map(|r| r.1).fold(0.0, f64::max);
        println!(
            "{:<8} [{:>11.4e}, {:>11.4e}] {:>14.3e} {:>10.2} ulp   (worst at x = {:e})",
            case.name, case.low, case.high, rel.0, ulps, rel.1
        );
    }
}
