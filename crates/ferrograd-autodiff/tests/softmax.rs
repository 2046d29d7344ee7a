//! Softmax and log-softmax: values against naive `f64` loops written out here,
//! gradients against finite differences of `Σ w ⊙ op(x)` with seeded weights `w`, inputs
//! contiguous and viewed (permuted, sliced, broadcast), along the first, middle and last
//! axis and along several at once; stability at logits of ±1e4, NaN and -inf.

mod common;

use common::{GradCheck, Loss, Traced, assert_close, check_gradient_with, tensor_of, weights, widen};
use ferrograd_autodiff::prelude::*;
use ferrograd_shapes::{Axes, ReduceShape};
use ferrograd_testing::{TestDevice, seeded_test_device, test_device};

// ---------------------------------------------------------------------------------
// References
// ---------------------------------------------------------------------------------

/// Applies `f` to every row along `axes` of `values` (row-major over `dims`), in place
/// of the row: a row holds the elements that share every index outside `axes`, in
/// row-major order of `axes`.
fn per_row(values: &[f64], dims: &[usize], axes: &[usize], f: impl Fn(&[f64]) -> Vec<f64>) -> Vec<f64> {
    let kept: Vec<usize> = (0..dims.len()).filter(|a| !axes.contains(a)).collect();
    let row_of = |index: &[usize]| kept.iter().fold(0, |acc, &a| acc * dims[a] + index[a]);
    let rows: usize = kept.iter().map(|&a| dims[a]).product();
    // Gather the rows, normalise them, scatter back in the same order.
    let mut gathered = vec![Vec::new(); rows];
    each_index(dims, |flat, index| gathered[row_of(index)].push(values[flat]));
    let normalised: Vec<Vec<f64>> = gathered.iter().map(|r| f(r)).collect();
    let mut next = vec![0; rows];
    let mut out = vec![0.0; values.len()];
    each_index(dims, |flat, index| {
        let r = row_of(index);
        out[flat] = normalised[r][next[r]];
        next[r] += 1;
    });
    out
}

/// Calls `f(flat, index)` for every index of `dims` in row-major order.
fn each_index(dims: &[usize], mut f: impl FnMut(usize, &[usize])) {
    let n: usize = dims.iter().product();
    let mut index = vec![0; dims.len()];
    for flat in 0..n {
        f(flat, &index);
        for axis in (0..dims.len()).rev() {
            index[axis] += 1;
            if index[axis] < dims[axis] {
                break;
            }
            index[axis] = 0;
        }
    }
}

fn ref_softmax(row: &[f64]) -> Vec<f64> {
    let m = row.iter().fold(f64::NEG_INFINITY, |m, &v| m.max(v));
    let e: Vec<f64> = row.iter().map(|v| (v - m).exp()).collect();
    let s: f64 = e.iter().sum();
    e.iter().map(|v| v / s).collect()
}

fn ref_log_softmax(row: &[f64]) -> Vec<f64> {
    let m = row.iter().fold(f64::NEG_INFINITY, |m, &v| m.max(v));
    let l = row.iter().map(|v| (v - m).exp()).sum::<f64>().ln();
    row.iter().map(|v| v - m - l).collect()
}

/// Varied values (several units apart, so the softmax is far from uniform) in a
/// seeded order.
fn logits<S: ConstShape>() -> Tensor<S, f64, TestDevice> {
    let values = weights(S::NUMEL, 23)
        .iter()
        .enumerate()
        .map(|(i, w)| 2.5 * w + 0.01 * i as f64)
        .collect();
    tensor_of(values, S::default())
}

/// `Σ w ⊙ y` for seeded weights.
fn wsum<S: Shape>(y: Traced<S>) -> Loss {
    let n = y.num_elements();
    y.flatten().mul(tensor_of(weights(n, 29), (n,))).sum::<Rank0, _>()
}

// ---------------------------------------------------------------------------------
// One view, one set of axes
// ---------------------------------------------------------------------------------

/// Checks softmax and log-softmax of `view(x)` along `Ax`: values, and gradients into
/// `x` through the view, with the input shared (read through its layout) and unique
/// (the kernel may overwrite it).
#[track_caller]
fn check<S: Shape, V: ReduceShape<Ax>, Ax: Axes>(
    x: &Tensor<S, f64, TestDevice>,
    view: impl Fn(Traced<S>) -> Traced<V> + Copy,
) {
    let axes = Ax::AXES;
    let v = view(x.clone().traced(Gradients::default()));
    let (values, dims) = (v.as_vec(), v.dims().as_ref().to_vec());
    let what = |op: &str| format!("{op} along {axes:?} of a {dims:?} view");
    let untraced = view(x.clone().traced(Gradients::default())).split_tape().0;

    let softmax = untraced.clone().softmax::<Ax>().as_vec();
    assert_close(
        &softmax,
        &per_row(&values, &dims, axes, ref_softmax),
        1e-13,
        1e-16,
        &what("softmax"),
    );
    let log_softmax = untraced.clone().log_softmax::<Ax>().as_vec();
    assert_close(
        &log_softmax,
        &per_row(&values, &dims, axes, ref_log_softmax),
        1e-13,
        1e-13,
        &what("log_softmax"),
    );
    // A unique input (here the output of `* 1.0`) is normalised in place: the same
    // values, up to the order of the sums when the view itself takes the strided walk.
    let in_place = (untraced.clone() * 1.0).softmax::<Ax>().as_vec();
    assert_close(&in_place, &softmax, 1e-14, 1e-17, &what("in-place softmax"));
    let in_place = (untraced.clone() * 1.0).log_softmax::<Ax>().as_vec();
    assert_close(&in_place, &log_softmax, 1e-14, 1e-14, &what("in-place log_softmax"));
    // ...and a shared one is left alone.
    assert_eq!(untraced.as_vec(), values);

    let opts = GradCheck::default();
    check_gradient_with(opts, x, |t| wsum(view(t).softmax::<Ax>()));
    check_gradient_with(opts, x, |t| wsum(view(t).log_softmax::<Ax>()));
    // Through a unique intermediate, normalised in place while traced.
    check_gradient_with(opts, x, |t| wsum((view(t) * 2.0).softmax::<Ax>()));
    check_gradient_with(opts, x, |t| wsum((view(t) * 2.0).log_softmax::<Ax>()));
}

#[test]
fn contiguous_along_every_axis() {
    let x = logits::<Rank3<3, 4, 5>>();
    let same = |t: Traced<Rank3<3, 4, 5>>| t;
    check::<_, _, Axis<0>>(&x, same);
    check::<_, _, Axis<1>>(&x, same);
    check::<_, _, Axis<2>>(&x, same);
    // Several axes normalise together.
    check::<_, _, Axes2<1, 2>>(&x, same);
    check::<_, _, Axes2<0, 2>>(&x, same);
    check::<_, _, Axes3<0, 1, 2>>(&x, same);
}

#[test]
fn permuted_inputs() {
    let x = logits::<Rank3<3, 4, 5>>();
    let permuted = |t: Traced<Rank3<3, 4, 5>>| t.permute::<Axes3<2, 0, 1>>();
    check::<_, _, Axis<0>>(&x, permuted);
    check::<_, _, Axis<1>>(&x, permuted);
    check::<_, _, Axis<2>>(&x, permuted);
    check::<_, _, Axes2<0, 1>>(&x, permuted);
    let y = logits::<Rank2<6, 7>>();
    let transposed = |t: Traced<Rank2<6, 7>>| t.t();
    check::<_, _, Axis<0>>(&y, transposed);
    check::<_, _, Axis<1>>(&y, transposed);
}

#[test]
fn sliced_inputs() {
    let x = logits::<Rank3<4, 5, 6>>();
    let rows = |t: Traced<Rank3<4, 5, 6>>| t.slice((1..3, .., ..));
    check::<_, _, Axis<2>>(&x, rows);
    check::<_, _, Axis<0>>(&x, rows);
    let window = |t: Traced<Rank3<4, 5, 6>>| t.slice((1..4, 2..5, 1..5));
    check::<_, _, Axis<0>>(&x, window);
    check::<_, _, Axis<1>>(&x, window);
    check::<_, _, Axis<2>>(&x, window);
    check::<_, _, Axes2<1, 2>>(&x, window);
}

#[test]
fn broadcast_inputs() {
    let x = logits::<Rank2<4, 5>>();
    // Copies along a new first axis; normalising along it gives 1/3 everywhere.
    let copies = |t: Traced<Rank2<4, 5>>| t.broadcast::<Rank3<3, 4, 5>, Axis<0>>();
    check::<_, _, Axis<1>>(&x, copies);
    check::<_, _, Axis<2>>(&x, copies);
    check::<_, _, Axes2<0, 2>>(&x, copies);
    let third = test_device().zeros::<Rank3<3, 4, 5>>() + 1.0 / 3.0;
    let p = copies(x.clone().traced(Gradients::default()))
        .split_tape()
        .0
        .softmax::<Axis<0>>();
    assert_close(&p.as_vec(), &third.as_vec(), 1e-15, 0.0, "softmax along copies");
    // A new last axis of stride 0, then transposed.
    let v = logits::<Rank1<4>>();
    let spread = |t: Traced<Rank1<4>>| t.broadcast::<Rank2<4, 3>, Axis<1>>().t();
    check::<_, _, Axis<1>>(&v, spread);
}

// ---------------------------------------------------------------------------------
// Stability and special values
// ---------------------------------------------------------------------------------

#[test]
fn logits_of_1e4_neither_overflow_nor_give_nan() {
    let dev = test_device();
    // Every logit is large: the finite-difference step scales with it.
    let rows = [
        [1e4f64, -1e4, 5e3, 1e4 - 0.5],
        [-1e4, -1e4, -1e4 + 2.0, -1e4],
        [1e4, 1e4, 1e4, 1e4],
    ];
    let x = dev.tensor(rows);
    let p = x.clone().softmax::<Axis<1>>().as_vec();
    let l = x.clone().log_softmax::<Axis<1>>().as_vec();
    let flat: Vec<f64> = rows.iter().flatten().copied().collect();
    let dims = [3, 4];
    assert_close(
        &p,
        &per_row(&flat, &dims, &[1], ref_softmax),
        1e-15,
        1e-300,
        "softmax at ±1e4",
    );
    assert_close(
        &l,
        &per_row(&flat, &dims, &[1], ref_log_softmax),
        1e-15,
        1e-12,
        "log_softmax at ±1e4",
    );
    assert!(p.iter().chain(&l).all(|v| v.is_finite()));
    assert_eq!(l[1], -2e4 - (1.0 + (-0.5f64).exp()).ln());

    // Gradients at ±1e4: finite differences with steps small against the logits.
    let opts = GradCheck {
        step: 1e-9,
        abs: 1e-6,
        ..GradCheck::default()
    };
    check_gradient_with(opts, &x, |t| wsum(t.softmax::<Axis<1>>()));
    check_gradient_with(opts, &x, |t| wsum(t.log_softmax::<Axis<1>>()));
    check_gradient_with(opts, &x, |t| wsum(t.softmax::<Axis<0>>()));
    check_gradient_with(opts, &x, |t| wsum(t.log_softmax::<Axis<0>>()));

    // f32, through the vectorised exponential.
    let x32 = x.to_dtype::<f32>();
    let p32 = widen(&x32.clone().softmax::<Axis<1>>().as_vec());
    let l32 = widen(&x32.clone().log_softmax::<Axis<1>>().as_vec());
    assert_close(&p32, &p, 1e-6, 1e-30, "f32 softmax at ±1e4");
    assert_close(&l32, &l, 1e-6, 1e-3, "f32 log_softmax at ±1e4");
    let g = x32
        .leaky_trace()
        .log_softmax::<Axis<1>>()
        .sum::<Rank0, _>()
        .backward()
        .get(&x32)
        .as_vec();
    assert!(g.iter().all(|v| v.is_finite()), "{g:?}");
}

#[test]
fn nan_stays_in_its_row_and_minus_infinity_masks() {
    let dev = test_device();
    let x = dev.tensor([
        [1.0f64, f64::NAN, 2.0],
        [0.0, f64::NEG_INFINITY, 0.0],
        [f64::NEG_INFINITY; 3],
    ]);
    let p = x.clone().softmax::<Axis<1>>().array();
    let l = x.clone().log_softmax::<Axis<1>>().array();
    assert!(p[0].iter().chain(&l[0]).all(|v| v.is_nan()));
    assert_eq!(p[1], [0.5, 0.0, 0.5]);
    assert_eq!(l[1], [-(2.0f64.ln()), f64::NEG_INFINITY, -(2.0f64.ln())]);
    // A row of -inf alone has no maximum to shift by: NaN, as in PyTorch.
    assert!(p[2].iter().chain(&l[2]).all(|v| v.is_nan()));
    // A masked logit gets no gradient from softmax; the others get the usual one.
    let m = dev.tensor([[0.0f64, f64::NEG_INFINITY, 1.0]]);
    let w = dev.tensor([[1.0f64, 3.0, -2.0]]);
    let g = m
        .leaky_trace()
        .softmax::<Axis<1>>()
        .mul(w)
        .sum::<Rank0, _>()
        .backward()
        .get(&m)
        .array();
    let (p0, p2) = (1.0 / (1.0 + 1f64.exp()), 1f64.exp() / (1.0 + 1f64.exp()));
    let dot = p0 - 2.0 * p2;
    assert_close(
        &g[0],
        &[p0 * (1.0 - dot), 0.0, p2 * (-2.0 - dot)],
        1e-15,
        1e-300,
        "masked softmax gradient",
    );
}

#[test]
fn softmax_is_the_exponential_of_log_softmax_and_sums_to_one() {
    let x = logits::<Rank3<2, 3, 50>>();
    let p = x.clone().softmax::<Axis<2>>();
    let l = x.clone().log_softmax::<Axis<2>>();
    assert_close(
        &p.as_vec(),
        &l.exp().as_vec(),
        1e-14,
        1e-300,
        "softmax vs exp(log_softmax)",
    );
    assert_close(
        &p.sum::<_, Axis<2>>().as_vec(),
        &[1.0; 6],
        1e-15,
        0.0,
        "rows of softmax",
    );
    let q = x.clone().softmax::<Axis<0>>().sum::<_, Axis<0>>();
    assert_close(&q.as_vec(), &[1.0; 150], 1e-15, 0.0, "columns of softmax along axis 0");
}

#[test]
fn empty_and_single_element_rows() {
    let dev = test_device();
    let one = dev.tensor([[3.0f64], [-1e4]]);
    assert_eq!(one.clone().softmax::<Axis<1>>().array(), [[1.0], [1.0]]);
    assert_eq!(one.log_softmax::<Axis<1>>().array(), [[0.0], [0.0]]);
    let empty = dev.tensor_from_vec(Vec::<f32>::new(), (3usize, 0usize));
    assert_eq!(empty.clone().softmax::<Axis<1>>().dims(), [3, 0]);
    assert_eq!(empty.log_softmax::<Axis<0>>().as_vec(), Vec::<f32>::new());
}

// ---------------------------------------------------------------------------------
// f32, long rows
// ---------------------------------------------------------------------------------

#[test]
fn f32_long_rows_match_f64_references() {
    let dev = seeded_test_device(11);
    // 1000 and 1027 are not multiples of the vector width; axis 0 takes the strided walk.
    let x: Tensor<Rank2<5, 1000>, f32, TestDevice> = dev.sample_normal::<Rank2<5, 1000>>() * 4.0;
    let y: Tensor<Rank3<3, 2, 1027>, f32, TestDevice> = dev.sample_normal::<Rank3<3, 2, 1027>>() * 4.0;
    let xv = widen(&x.as_vec());
    let yv = widen(&y.as_vec());
    for (what, actual, expected) in [
        (
            "softmax rows",
            x.clone().softmax::<Axis<1>>().as_vec(),
            per_row(&xv, &[5, 1000], &[1], ref_softmax),
        ),
        (
            "softmax columns",
            x.clone().softmax::<Axis<0>>().as_vec(),
            per_row(&xv, &[5, 1000], &[0], ref_softmax),
        ),
        (
            "softmax 3-d",
            y.clone().softmax::<Axis<2>>().as_vec(),
            per_row(&yv, &[3, 2, 1027], &[2], ref_softmax),
        ),
        (
            "softmax 3-d middle",
            y.clone().softmax::<Axis<1>>().as_vec(),
            per_row(&yv, &[3, 2, 1027], &[1], ref_softmax),
        ),
    ] {
        assert_close(&widen(&actual), &expected, 1e-5, 1e-10, what);
    }
    for (what, actual, expected) in [
        (
            "log_softmax rows",
            x.clone().log_softmax::<Axis<1>>().as_vec(),
            per_row(&xv, &[5, 1000], &[1], ref_log_softmax),
        ),
        (
            "log_softmax columns",
            x.clone().log_softmax::<Axis<0>>().as_vec(),
            per_row(&xv, &[5, 1000], &[0], ref_log_softmax),
        ),
        (
            "log_softmax 3-d",
            y.clone().log_softmax::<Axis<2>>().as_vec(),
            per_row(&yv, &[3, 2, 1027], &[2], ref_log_softmax),
        ),
    ] {
        assert_close(&widen(&actual), &expected, 1e-5, 1e-5, what);
    }
}

#[test]
fn gradients_of_f32_agree_with_f64() {
    let x64 = logits::<Rank2<6, 300>>();
    let x32 = x64.to_dtype::<f32>();
    let w64 = tensor_of(weights(1800, 31), Rank2::<6, 300>::default());
    let w32 = w64.to_dtype::<f32>();
    for axis in 0..2 {
        let (g64, g32) = if axis == 0 {
            (
                x64.leaky_trace()
                    .softmax::<Axis<0>>()
                    .mul(w64.clone())
                    .sum::<Rank0, _>()
                    .backward()
                    .get(&x64)
                    .as_vec(),
                x32.leaky_trace()
                    .softmax::<Axis<0>>()
                    .mul(w32.clone())
                    .sum::<Rank0, _>()
                    .backward()
                    .get(&x32)
                    .as_vec(),
            )
        } else {
            (
                x64.leaky_trace()
                    .log_softmax::<Axis<1>>()
                    .mul(w64.clone())
                    .sum::<Rank0, _>()
                    .backward()
                    .get(&x64)
                    .as_vec(),
                x32.leaky_trace()
                    .log_softmax::<Axis<1>>()
                    .mul(w32.clone())
                    .sum::<Rank0, _>()
                    .backward()
                    .get(&x32)
                    .as_vec(),
            )
        };
        assert_close(&widen(&g32), &g64, 1e-4, 1e-6, "f32 gradient vs f64");
    }
}

/// The output buffer is taken without clearing it: nothing of a freed buffer's old
/// values (NaN here) may survive, on the row path (rows of the last axis) and on the
/// general walk (a permuted input), for a small size and one past the shared cache's
/// threshold.
#[test]
fn reused_buffers_leave_nothing_of_their_old_values() {
    let dev = test_device();
    for (rows, len) in [(3usize, 5usize), (40, 300)] {
        let x: Tensor<(usize, usize), f64, TestDevice> = dev.sample_normal_like(&(rows, len));
        let values = x.as_vec();
        for (input, permuted) in [(x.clone(), false), (x.clone().t().contiguous().t(), true)] {
            for _ in 0..4 {
                drop(dev.tensor_from_vec(vec![f64::NAN; rows * len], (rows * len,)));
            }
            let y = input.clone().log_softmax::<Axis<1>>().as_vec();
            let expected = per_row(&values, &[rows, len], &[1], ref_log_softmax);
            assert_close(
                &y,
                &expected,
                1e-12,
                1e-12,
                &format!("log_softmax, permuted: {permuted}"),
            );
        }
    }
}
