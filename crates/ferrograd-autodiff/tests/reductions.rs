//! Reductions over sets of axes: sum, mean, max, min, var, std, logsumexp, argmax and
//! argmin; along one axis, max and min with their indices. Values against naive `f64`
//! loops written out here; gradients against finite differences of `Σ w ⊙ op(x)` with
//! seeded weights `w`; inputs contiguous and viewed (permuted, sliced, broadcast),
//! reduced over the first, middle and last axis, two axes and all of them.

mod common;

use common::{GradCheck, Loss, Traced, assert_close, check_gradient_with, tensor_of, weights, widen};
use ferrograd_autodiff::prelude::*;
use ferrograd_shapes::{Axes, ReduceShape, SingleAxis};
use ferrograd_testing::{TestDevice, seeded_test_device, test_device};

// ---------------------------------------------------------------------------------
// References
// ---------------------------------------------------------------------------------

/// The groups of a reduction of `values` (row-major over `dims`) over `axes`: one per
/// output element in row-major order, each holding its elements in row-major order of
/// the reduced axes.
fn groups(values: &[f64], dims: &[usize], axes: &[usize]) -> Vec<Vec<f64>> {
    let kept: Vec<usize> = (0..dims.len()).filter(|a| !axes.contains(a)).collect();
    let out_len: usize = kept.iter().map(|&a| dims[a]).product();
    let mut out = vec![Vec::new(); out_len];
    let mut index = vec![0; dims.len()];
    for &v in values {
        let o = kept.iter().fold(0, |acc, &a| acc * dims[a] + index[a]);
        out[o].push(v);
        for axis in (0..dims.len()).rev() {
            index[axis] += 1;
            if index[axis] < dims[axis] {
                break;
            }
            index[axis] = 0;
        }
    }
    out
}

fn reference(values: &[f64], dims: &[usize], axes: &[usize], f: impl Fn(&[f64]) -> f64) -> Vec<f64> {
    groups(values, dims, axes).iter().map(|g| f(g)).collect()
}

fn ref_max(g: &[f64]) -> f64 {
    if g.iter().any(|v| v.is_nan()) {
        f64::NAN
    } else {
        g.iter().fold(f64::NEG_INFINITY, |m, &v| m.max(v))
    }
}

fn ref_min(g: &[f64]) -> f64 {
    if g.iter().any(|v| v.is_nan()) {
        f64::NAN
    } else {
        g.iter().fold(f64::INFINITY, |m, &v| m.min(v))
    }
}

fn ref_var(g: &[f64], correction: f64) -> f64 {
    let n = g.len() as f64;
    let mean = g.iter().sum::<f64>() / n;
    g.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / (n - correction).max(0.0)
}

fn ref_logsumexp(g: &[f64]) -> f64 {
    let m = g.iter().fold(f64::NEG_INFINITY, |m, &v| m.max(v));
    m + g.iter().map(|v| (v - m).exp()).sum::<f64>().ln()
}

/// The first index of the maximum (`greater`) or minimum, the first NaN winning.
fn ref_arg(g: &[f64], greater: bool) -> usize {
    if let Some(i) = g.iter().position(|v| v.is_nan()) {
        return i;
    }
    let mut best = 0;
    for (i, &v) in g.iter().enumerate() {
        if (greater && v > g[best]) || (!greater && v < g[best]) {
            best = i;
        }
    }
    best
}

/// Distinct values, at least 0.17 apart: finite differences never cross a tie.
fn distinct<S: ConstShape>() -> Tensor<S, f64, TestDevice> {
    let n = S::NUMEL;
    let stride = (1..).map(|k| 7 * k + 30).find(|s| gcd(*s, n) == 1).unwrap();
    let values = (0..n)
        .map(|i| ((i * stride) % n) as f64 * 0.173 - 0.09 * n as f64)
        .collect();
    tensor_of(values, S::default())
}

fn gcd(a: usize, b: usize) -> usize {
    if b == 0 { a } else { gcd(b, a % b) }
}

/// `Σ w ⊙ y` for seeded weights, for an output of any shape (a `Rank0` one included).
fn wsum<S: Shape>(y: Traced<S>) -> Loss {
    let n = y.num_elements();
    y.flatten().mul(tensor_of(weights(n, 17), (n,))).sum::<Rank0, _>()
}

/// The finite-difference check used throughout: a group whose every element is the
/// same broadcast value has a zero gradient for var and std, so zero is allowed.
fn grad_check() -> GradCheck {
    GradCheck {
        allow_zero: true,
        ..GradCheck::default()
    }
}

type Reduced<V, Ax> = <V as ReduceShape<Ax>>::Reduced;

// ---------------------------------------------------------------------------------
// One view, one set of axes: every reduction, values and gradients
// ---------------------------------------------------------------------------------

/// Checks every reduction of `view(x)` over `Ax`.
#[track_caller]
fn check<S: Shape, V: ReduceShape<Ax>, Ax: Axes>(
    x: &Tensor<S, f64, TestDevice>,
    view: impl Fn(Traced<S>) -> Traced<V> + Copy,
) {
    let axes = Ax::AXES;
    let v = view(x.clone().traced(Gradients::default()));
    let (values, dims) = (v.as_vec(), v.dims().as_ref().to_vec());
    let what = |op: &str| format!("{op} over {axes:?} of a {dims:?} view");
    let reduced =
        |op: fn(Traced<V>) -> Traced<Reduced<V, Ax>>| op(view(x.clone().traced(Gradients::default()))).as_vec();

    // Values.
    let exact = |op: &str, actual: Vec<f64>, expected: Vec<f64>| assert_close(&actual, &expected, 0.0, 0.0, &what(op));
    let close =
        |op: &str, actual: Vec<f64>, expected: Vec<f64>| assert_close(&actual, &expected, 1e-12, 1e-12, &what(op));
    close(
        "sum",
        reduced(|t| t.sum::<_, Ax>()),
        reference(&values, &dims, axes, |g| g.iter().sum()),
    );
    close(
        "mean",
        reduced(|t| t.mean::<_, Ax>()),
        reference(&values, &dims, axes, |g| g.iter().sum::<f64>() / g.len() as f64),
    );
    exact(
        "max",
        reduced(|t| t.max::<_, Ax>()),
        reference(&values, &dims, axes, ref_max),
    );
    exact(
        "min",
        reduced(|t| t.min::<_, Ax>()),
        reference(&values, &dims, axes, ref_min),
    );
    close(
        "var",
        reduced(|t| t.var::<_, Ax>()),
        reference(&values, &dims, axes, |g| ref_var(g, 1.0)),
    );
    close(
        "var (correction 0)",
        reduced(|t| t.var_with_correction::<_, Ax>(0.0)),
        reference(&values, &dims, axes, |g| ref_var(g, 0.0)),
    );
    close(
        "std",
        reduced(|t| t.std::<_, Ax>()),
        reference(&values, &dims, axes, |g| ref_var(g, 1.0).sqrt()),
    );
    close(
        "std (correction 0.5)",
        reduced(|t| t.std_with_correction::<_, Ax>(0.5)),
        reference(&values, &dims, axes, |g| ref_var(g, 0.5).sqrt()),
    );
    close(
        "logsumexp",
        reduced(|t| t.logsumexp::<_, Ax>()),
        reference(&values, &dims, axes, ref_logsumexp),
    );
    let arg = |greater| {
        groups(&values, &dims, axes)
            .iter()
            .map(|g| ref_arg(g, greater))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        v.argmax::<Reduced<V, Ax>, Ax>().as_vec(),
        arg(true),
        "{}",
        what("argmax")
    );
    assert_eq!(
        v.argmin::<Reduced<V, Ax>, Ax>().as_vec(),
        arg(false),
        "{}",
        what("argmin")
    );

    // Gradients, into the base tensor through the view.
    check_gradient_with(grad_check(), x, |t| wsum(view(t).sum::<_, Ax>()));
    check_gradient_with(grad_check(), x, |t| wsum(view(t).mean::<_, Ax>()));
    check_gradient_with(grad_check(), x, |t| wsum(view(t).max::<_, Ax>()));
    check_gradient_with(grad_check(), x, |t| wsum(view(t).min::<_, Ax>()));
    check_gradient_with(grad_check(), x, |t| wsum(view(t).var::<_, Ax>()));
    check_gradient_with(grad_check(), x, |t| wsum(view(t).var_with_correction::<_, Ax>(0.0)));
    check_gradient_with(grad_check(), x, |t| wsum(view(t).std::<_, Ax>()));
    check_gradient_with(grad_check(), x, |t| wsum(view(t).logsumexp::<_, Ax>()));
}

/// Checks `max_with_indices` and `min_with_indices` of `view(x)` along the axis `Ax`:
/// values and indices against the references (first of ties, first NaN), the values
/// against `gather` at the indices, and the gradient against finite differences.
#[track_caller]
fn check_with_indices<S: Shape, V: ReduceShape<Ax>, Ax: SingleAxis>(
    x: &Tensor<S, f64, TestDevice>,
    view: impl Fn(Traced<S>) -> Traced<V> + Copy,
) {
    let axes = Ax::AXES;
    let v = view(x.clone().traced(Gradients::default()));
    let (values, dims) = (v.as_vec(), v.dims().as_ref().to_vec());
    let what = |op: &str| format!("{op} along {axes:?} of a {dims:?} view");
    let arg = |greater| {
        groups(&values, &dims, axes)
            .iter()
            .map(|g| ref_arg(g, greater))
            .collect::<Vec<_>>()
    };
    let (max, argmax) = v.clone().max_with_indices::<Reduced<V, Ax>, Ax>();
    assert_close(
        &max.as_vec(),
        &reference(&values, &dims, axes, ref_max),
        0.0,
        0.0,
        &what("max_with_indices values"),
    );
    assert_eq!(argmax.as_vec(), arg(true), "{}", what("max_with_indices indices"));
    let (min, argmin) = v.min_with_indices::<Reduced<V, Ax>, Ax>();
    assert_close(
        &min.as_vec(),
        &reference(&values, &dims, axes, ref_min),
        0.0,
        0.0,
        &what("min_with_indices values"),
    );
    assert_eq!(argmin.as_vec(), arg(false), "{}", what("min_with_indices indices"));

    check_gradient_with(grad_check(), x, |t| wsum(view(t).max_with_indices::<_, Ax>().0));
    check_gradient_with(grad_check(), x, |t| wsum(view(t).min_with_indices::<_, Ax>().0));
}

#[test]
fn contiguous_over_every_set_of_axes() {
    let x = distinct::<Rank3<3, 4, 5>>();
    let same = |t: Traced<Rank3<3, 4, 5>>| t;
    check::<_, _, Axis<0>>(&x, same);
    check::<_, _, Axis<1>>(&x, same);
    check::<_, _, Axis<2>>(&x, same);
    check::<_, _, Axes2<0, 1>>(&x, same);
    check::<_, _, Axes2<0, 2>>(&x, same);
    check::<_, _, Axes2<1, 2>>(&x, same);
    check::<_, _, Axes3<0, 1, 2>>(&x, same);
    check_with_indices::<_, _, Axis<0>>(&x, same);
    check_with_indices::<_, _, Axis<1>>(&x, same);
    check_with_indices::<_, _, Axis<2>>(&x, same);
    let v = distinct::<Rank1<7>>();
    check_with_indices::<_, _, Axis<0>>(&v, |t: Traced<Rank1<7>>| t);
    let w = distinct::<Rank4<2, 3, 2, 4>>();
    check_with_indices::<_, _, Axis<1>>(&w, |t: Traced<Rank4<2, 3, 2, 4>>| t);
    check_with_indices::<_, _, Axis<3>>(&w, |t: Traced<Rank4<2, 3, 2, 4>>| t);
}

#[test]
fn permuted_inputs() {
    let x = distinct::<Rank3<3, 4, 5>>();
    // (5, 3, 4), with strides (1, 20, 5): no axis is contiguous in its place.
    let permuted = |t: Traced<Rank3<3, 4, 5>>| t.permute::<Axes3<2, 0, 1>>();
    check::<_, _, Axis<0>>(&x, permuted);
    check::<_, _, Axis<1>>(&x, permuted);
    check::<_, _, Axis<2>>(&x, permuted);
    check::<_, _, Axes2<0, 2>>(&x, permuted);
    check::<_, _, Axes3<0, 1, 2>>(&x, permuted);
    let transposed = |t: Traced<Rank2<6, 7>>| t.t();
    let y = distinct::<Rank2<6, 7>>();
    check::<_, _, Axis<0>>(&y, transposed);
    check::<_, _, Axis<1>>(&y, transposed);
    check_with_indices::<_, _, Axis<0>>(&x, permuted);
    check_with_indices::<_, _, Axis<1>>(&x, permuted);
    check_with_indices::<_, _, Axis<2>>(&x, permuted);
    check_with_indices::<_, _, Axis<0>>(&y, transposed);
    check_with_indices::<_, _, Axis<1>>(&y, transposed);
}

#[test]
fn sliced_inputs() {
    let x = distinct::<Rank3<4, 5, 6>>();
    // Rows stay contiguous in a slice along the first axis: the fast path with an offset.
    let rows = |t: Traced<Rank3<4, 5, 6>>| t.slice((1..3, .., ..));
    check::<_, _, Axis<2>>(&x, rows);
    check::<_, _, Axes2<1, 2>>(&x, rows);
    check::<_, _, Axis<0>>(&x, rows);
    // A window in every axis.
    let window = |t: Traced<Rank3<4, 5, 6>>| t.slice((1..4, 2..5, 1..5));
    check::<_, _, Axis<0>>(&x, window);
    check::<_, _, Axis<1>>(&x, window);
    check::<_, _, Axis<2>>(&x, window);
    check::<_, _, Axes2<0, 2>>(&x, window);
    check::<_, _, Axes3<0, 1, 2>>(&x, window);
    check_with_indices::<_, _, Axis<2>>(&x, rows);
    check_with_indices::<_, _, Axis<0>>(&x, rows);
    check_with_indices::<_, _, Axis<0>>(&x, window);
    check_with_indices::<_, _, Axis<1>>(&x, window);
    check_with_indices::<_, _, Axis<2>>(&x, window);
}

#[test]
fn broadcast_inputs() {
    let x = distinct::<Rank2<4, 5>>();
    // Three copies along a new first axis: reducing over it meets only ties.
    let copies = |t: Traced<Rank2<4, 5>>| t.broadcast::<Rank3<3, 4, 5>, Axis<0>>();
    check::<_, _, Axis<0>>(&x, copies);
    check::<_, _, Axis<1>>(&x, copies);
    check::<_, _, Axis<2>>(&x, copies);
    check::<_, _, Axes2<0, 2>>(&x, copies);
    check::<_, _, Axes3<0, 1, 2>>(&x, copies);
    // A new last axis (stride 0 innermost), then permuted.
    let v = distinct::<Rank1<4>>();
    let spread = |t: Traced<Rank1<4>>| t.broadcast::<Rank2<4, 3>, Axis<1>>().t();
    check::<_, _, Axis<0>>(&v, spread);
    check::<_, _, Axis<1>>(&v, spread);
    // Along the broadcast axis every group is ties of one base element: it gets the
    // whole gradient, once per group.
    check_with_indices::<_, _, Axis<0>>(&x, copies);
    check_with_indices::<_, _, Axis<1>>(&x, copies);
    check_with_indices::<_, _, Axis<2>>(&x, copies);
    check_with_indices::<_, _, Axis<0>>(&v, spread);
    check_with_indices::<_, _, Axis<1>>(&v, spread);
}

// ---------------------------------------------------------------------------------
// The type-level API
// ---------------------------------------------------------------------------------

#[test]
fn shapes_name_the_axes_or_the_axes_the_shape() {
    let x = distinct::<Rank3<2, 3, 4>>();
    let by_shape: Tensor<Rank1<3>, f64, TestDevice> = x.clone().max();
    let by_axes = x.clone().max::<_, Axes2<0, 2>>();
    assert_eq!(by_shape.array(), by_axes.array());
    let all: Tensor<Rank0, f64, TestDevice> = x.clone().min();
    assert_eq!(all.array(), x.as_vec().iter().fold(f64::INFINITY, |m, &v| m.min(v)));
    let i: Tensor<Rank2<2, 4>, usize, TestDevice> = x.argmax();
    assert_eq!(i.dims(), [2, 4]);
    let s: Tensor<Rank2<3, 4>, f64, TestDevice> = x.clone().std();
    let v: Tensor<Rank1<2>, f64, TestDevice> = x.clone().logsumexp();
    assert_eq!((s.dims(), v.dims()), ([3, 4], [2]));
    // Run-time dims reduce too.
    let d = test_device().tensor_from_vec(x.as_vec(), (2usize, 12usize));
    assert_eq!(d.clone().var::<_, Axis<1>>().dims(), [2]);
    assert_eq!(d.argmin::<_, Axis<0>>().dims(), [12]);
    let (values, indices) = d.max_with_indices::<_, Axis<1>>();
    assert_eq!((values.dims(), indices.dims()), ([2], [2]));
    // One axis, from the values' shape.
    let (values, indices): (Tensor<Rank2<2, 4>, f64, TestDevice>, _) = x.clone().max_with_indices();
    assert_eq!(values.array(), x.clone().max::<_, Axis<1>>().array());
    assert_eq!(indices.array(), x.argmax::<_, Axis<1>>().array());
}

// ---------------------------------------------------------------------------------
// Ties, NaN, extremes
// ---------------------------------------------------------------------------------

#[test]
fn tied_maxima_and_minima_share_the_gradient() {
    let dev = test_device();
    let x = dev.tensor([[3.0f64, 1.0, 3.0, 3.0], [-2.0, 5.0, -2.0, 0.0]]);
    let w = [0.7, -1.3];
    let weighted =
        |y: Tensor<Rank1<2>, f64, TestDevice, OwnedTape<f64, TestDevice>>| y.mul(dev.tensor(w)).sum::<Rank0, _>();
    let g = weighted(x.leaky_trace().max::<_, Axis<1>>()).backward().get(&x).array();
    assert_eq!(g, [[0.7 / 3.0, 0.0, 0.7 / 3.0, 0.7 / 3.0], [0.0, -1.3, 0.0, 0.0]]);
    let g = weighted(x.leaky_trace().min::<_, Axis<1>>()).backward().get(&x).array();
    assert_eq!(g, [[0.0, 0.7, 0.0, 0.0], [-0.65, 0.0, -0.65, 0.0]]);
    // Through a permuted view: the ties are along the first axis of x.t().
    let g = weighted(x.leaky_trace().t().max::<_, Axis<0>>())
        .backward()
        .get(&x)
        .array();
    assert_eq!(g, [[0.7 / 3.0, 0.0, 0.7 / 3.0, 0.7 / 3.0], [0.0, -1.3, 0.0, 0.0]]);
    // Ties across two axes.
    let y = dev.tensor([[[1.0f64, 4.0], [4.0, 0.0]], [[4.0, 4.0], [2.0, 3.0]]]);
    let g = y.leaky_trace().max::<Rank0, _>().backward().get(&y).array();
    assert_eq!(g, [[[0.0, 0.25], [0.25, 0.0]], [[0.25, 0.25], [0.0, 0.0]]]);
}

#[test]
fn with_indices_the_gradient_goes_to_the_first_of_ties() {
    let dev = test_device();
    let x = dev.tensor([[3.0f64, 1.0, 3.0, 3.0], [-2.0, 5.0, -2.0, 0.0]]);
    let w = [0.7, -1.3];
    let weighted =
        |y: Tensor<Rank1<2>, f64, TestDevice, OwnedTape<f64, TestDevice>>| y.mul(dev.tensor(w)).sum::<Rank0, _>();
    // torch.max(x, 1): values [3, 5] at [0, 1]; each row's weight goes to that one index
    // (where `max` gave 0.7 / 3 to each of the three 3.0).
    let (values, indices) = x.leaky_trace().max_with_indices::<_, Axis<1>>();
    assert_eq!((values.array(), indices.array()), ([3.0, 5.0], [0, 1]));
    let g = weighted(values).backward().get(&x).array();
    assert_eq!(g, [[0.7, 0.0, 0.0, 0.0], [0.0, -1.3, 0.0, 0.0]]);
    // torch.min(x, 1): values [1, -2] at [1, 0]; the second -2.0 of row 1 gets nothing.
    let (values, indices) = x.leaky_trace().min_with_indices::<_, Axis<1>>();
    assert_eq!((values.array(), indices.array()), ([1.0, -2.0], [1, 0]));
    let g = weighted(values).backward().get(&x).array();
    assert_eq!(g, [[0.0, 0.7, 0.0, 0.0], [-1.3, 0.0, 0.0, 0.0]]);
    // Through the transpose (a strided view), along its axis 0: the same picks.
    let (values, indices) = x.leaky_trace().t().max_with_indices::<_, Axis<0>>();
    assert_eq!(indices.array(), [0, 1]);
    let g = weighted(values).backward().get(&x).array();
    assert_eq!(g, [[0.7, 0.0, 0.0, 0.0], [0.0, -1.3, 0.0, 0.0]]);
    // Along axis 0: column 0 ties in rows 0 and 1, column 1 in all three, column 2 in
    // rows 1 and 2; each picks its first.
    let y = dev.tensor([[2.0f64, 4.0, 4.0], [2.0, 4.0, 5.0], [1.0, 4.0, 5.0]]);
    let (values, indices) = y.leaky_trace().max_with_indices::<_, Axis<0>>();
    assert_eq!((values.array(), indices.array()), ([2.0, 4.0, 5.0], [0, 0, 1]));
    let g = values
        .mul(dev.tensor([1.0, 2.0, 3.0]))
        .sum::<Rank0, _>()
        .backward()
        .get(&y)
        .array();
    assert_eq!(g, [[1.0, 2.0, 0.0], [0.0, 0.0, 3.0], [0.0, 0.0, 0.0]]);
    // The indices pick the values: `gather` at them gives the values back.
    let z = distinct::<Rank3<3, 4, 5>>();
    let (values, indices) = z.clone().min_with_indices::<_, Axis<1>>();
    let picked = z.gather::<1, _>(&indices.unsqueeze::<1>()).squeeze::<1>();
    assert_eq!(picked.array(), values.array());
}

#[test]
fn with_indices_gradients_match_finite_differences_on_random_data() {
    // Seeded normal values: no ties, and none closer than the finite-difference steps.
    let x: Tensor<Rank3<3, 4, 5>, f64, TestDevice> = seeded_test_device(11).sample_normal();
    let same = |t: Traced<Rank3<3, 4, 5>>| t;
    check_with_indices::<_, _, Axis<0>>(&x, same);
    check_with_indices::<_, _, Axis<1>>(&x, same);
    check_with_indices::<_, _, Axis<2>>(&x, same);
    let permuted = |t: Traced<Rank3<3, 4, 5>>| t.permute::<Axes3<1, 2, 0>>();
    check_with_indices::<_, _, Axis<0>>(&x, permuted);
    check_with_indices::<_, _, Axis<2>>(&x, permuted);
    // Without ties the gradient is `max`'s (and `min`'s).
    let by_max = check_gradient_with(grad_check(), &x, |t| wsum(t.max::<_, Axis<1>>()));
    let by_index = check_gradient_with(grad_check(), &x, |t| wsum(t.max_with_indices::<_, Axis<1>>().0));
    assert_eq!(by_max, by_index);
}

#[test]
fn with_indices_nan_wins_and_takes_the_gradient() {
    let dev = test_device();
    let x = dev.tensor([[1.0f64, f64::NAN, 3.0, f64::NAN], [4.0, 5.0, 7.0, 7.0]]);
    let (values, indices) = x.leaky_trace().max_with_indices::<_, Axis<1>>();
    let v = values.as_vec();
    assert!(v[0].is_nan() && v[1] == 7.0);
    assert_eq!(indices.array(), [1, 2]);
    // As in PyTorch the NaN's element gets the gradient, a finite one (`max` gives NaN).
    let g = values.sum::<Rank0, _>().backward().get(&x).array();
    assert_eq!(g, [[0.0, 1.0, 0.0, 0.0], [0.0, 0.0, 1.0, 0.0]]);
    let (values, indices) = x.leaky_trace().min_with_indices::<_, Axis<0>>();
    let v = values.as_vec();
    assert!(v[1].is_nan() && v[3].is_nan());
    assert_eq!((v[0], v[2]), (1.0, 3.0));
    assert_eq!(indices.array(), [0, 0, 0, 0]);
    let g = values.sum::<Rank0, _>().backward().get(&x).array();
    assert_eq!(g, [[1.0, 1.0, 1.0, 1.0], [0.0, 0.0, 0.0, 0.0]]);
    // A NaN after the extremum still wins, in f32 too, and a long row.
    let mut long = vec![1.0f32; 1000];
    long[3] = 9.0;
    long[777] = f32::NAN;
    long[900] = f32::NAN;
    let (values, indices) = dev.tensor(long).min_with_indices::<Rank0, _>();
    assert!(values.array().is_nan());
    assert_eq!(indices.array(), 777);
    // Infinities are ordinary values.
    let inf = dev.tensor([f64::NEG_INFINITY, f64::NEG_INFINITY, f64::INFINITY, f64::INFINITY]);
    let (max, at_max) = inf.clone().max_with_indices::<Rank0, _>();
    let (min, at_min) = inf.min_with_indices::<Rank0, _>();
    assert_eq!((max.array(), at_max.array()), (f64::INFINITY, 2));
    assert_eq!((min.array(), at_min.array()), (f64::NEG_INFINITY, 0));
}

#[test]
fn argmax_and_argmin_take_the_first_tie_and_nan() {
    let dev = test_device();
    let x = dev.tensor([
        [2.0f64, 7.0, 7.0, 1.0],
        [f64::NAN, 3.0, f64::NAN, 9.0],
        [0.0, 0.0, 0.0, 0.0],
    ]);
    assert_eq!(x.argmax::<_, Axis<1>>().array(), [1, 0, 0]);
    assert_eq!(x.argmin::<_, Axis<1>>().array(), [3, 0, 0]);
    assert_eq!(x.argmax::<_, Axis<0>>().array(), [1, 0, 1, 1]);
    assert_eq!(x.argmin::<_, Axis<0>>().array(), [1, 2, 1, 2]);
    assert_eq!(x.argmax::<Rank0, _>().array(), 4);
    // Permuted: the same answers through strides (the walk, not the fast path).
    assert_eq!(
        x.clone().permute::<Axes2<1, 0>>().argmax::<_, Axis<0>>().array(),
        [1, 0, 0]
    );
    // Over two axes the index is row-major within them.
    let y = dev.tensor([[[1.0f32, 2.0], [9.0, 9.0]], [[5.0, 0.0], [1.0, 5.0]]]);
    assert_eq!(y.argmax::<_, Axes2<1, 2>>().array(), [2, 0]);
    assert_eq!(y.argmin::<_, Axes2<0, 2>>().array(), [3, 2]);
    // -inf and +inf are ordinary values.
    let z = dev.tensor([f64::NEG_INFINITY, f64::NEG_INFINITY, f64::INFINITY]);
    assert_eq!((z.argmax::<Rank0, _>().array(), z.argmin::<Rank0, _>().array()), (2, 0));
    // The input stays usable: argmax borrows.
    assert!(x.max::<_, Axis<1>>().as_vec()[1].is_nan());
}

#[test]
fn max_and_min_propagate_nan() {
    let dev = test_device();
    let x = dev.tensor([[1.0f32, f32::NAN, 3.0], [4.0, 5.0, 6.0]]);
    let m = x.clone().max::<_, Axis<1>>().array();
    assert!(m[0].is_nan() && m[1] == 6.0);
    let m = x.clone().min::<_, Axis<0>>().array();
    assert!(m[1].is_nan() && m[0] == 1.0 && m[2] == 3.0);
    // As in PyTorch, the gradient of a NaN group is NaN (its count of maxima is 0).
    let x64 = dev.tensor([[1.0f64, f64::NAN], [2.0, 3.0]]);
    let g = x64
        .leaky_trace()
        .max::<_, Axis<1>>()
        .sum::<Rank0, _>()
        .backward()
        .get(&x64)
        .array();
    assert!(g[0][0].is_nan() && g[0][1].is_nan());
    assert_eq!(g[1], [0.0, 1.0]);
    // A long row takes the vectorised path; a NaN anywhere in it still wins.
    let mut long = vec![1.0f32; 1000];
    long[777] = f32::NAN;
    let t = dev.tensor(long);
    assert!(t.clone().max::<Rank0, _>().array().is_nan());
    assert!(t.min::<Rank0, _>().array().is_nan());
}

#[test]
fn logsumexp_is_stable_at_large_logits() {
    let dev = test_device();
    let x = dev.tensor([[1e4f64, 1e4, -1e4], [-1e4, -1e4 + 1.0, -1e4], [1e4, 0.0, -1e4]]);
    let lse = x.clone().logsumexp::<_, Axis<1>>().array();
    let expected = [1e4 + 2.0f64.ln(), -1e4 + (2.0 * (-1.0f64).exp() + 1.0).ln() + 1.0, 1e4];
    assert_close(&lse, &expected, 1e-15, 0.0, "logsumexp at ±1e4");
    // The gradient is the softmax of each row, finite.
    let w = [0.5, -2.0, 1.5];
    let loss = x
        .leaky_trace()
        .logsumexp::<_, Axis<1>>()
        .mul(dev.tensor(w))
        .sum::<Rank0, _>();
    let g = loss.backward().get(&x).as_vec();
    let e = (-1.0f64).exp();
    let p1 = [e / (2.0 * e + 1.0), 1.0 / (2.0 * e + 1.0), e / (2.0 * e + 1.0)];
    let expected = [0.25, 0.25, 0.0, -2.0 * p1[0], -2.0 * p1[1], -2.0 * p1[2], 1.5, 0.0, 0.0];
    assert_close(&g, &expected, 1e-12, 1e-300, "d logsumexp at ±1e4");
    // f32 too, through the vectorised exponential.
    let x32 = dev.tensor([[1e4f32, 1e4, -1e4, 88.0], [100.0, 0.0, -200.0, 3.0]]);
    let lse = widen(&x32.logsumexp::<_, Axis<1>>().as_vec());
    let expected = [1e4 + 2.0f64.ln(), ref_logsumexp(&[100.0, 0.0, -200.0, 3.0])];
    assert_close(&lse, &expected, 1e-7, 0.0, "f32 logsumexp at ±1e4");
    // Infinite groups: all -inf gives -inf, any +inf gives +inf.
    let inf = dev.tensor([[f64::NEG_INFINITY, f64::NEG_INFINITY], [f64::INFINITY, 1.0]]);
    assert_eq!(
        inf.logsumexp::<_, Axis<1>>().array(),
        [f64::NEG_INFINITY, f64::INFINITY]
    );
}

#[test]
fn var_and_std_edge_cases() {
    let dev = test_device();
    // One element: the unbiased divisor is 0, so NaN, as in PyTorch; with correction 0, 0.
    let one = dev.tensor([[2.5f64], [1.0]]);
    assert!(one.clone().var::<_, Axis<1>>().as_vec().iter().all(|v| v.is_nan()));
    assert_eq!(one.var_with_correction::<_, Axis<1>>(0.0).array(), [0.0, 0.0]);
    // A constant group: std is 0 and so is its gradient (PyTorch's choice, not 0/0).
    let x = dev.tensor([[3.0f64, 3.0, 3.0], [1.0, 2.0, 4.0]]);
    let g = x
        .leaky_trace()
        .std::<_, Axis<1>>()
        .sum::<Rank0, _>()
        .backward()
        .get(&x)
        .array();
    assert_eq!(g[0], [0.0, 0.0, 0.0]);
    assert!(g[1].iter().all(|v| v.is_finite() && *v != 0.0));
    // A large offset does not spoil the variance (two passes, not E[x²] − E[x]²).
    let shifted = dev.tensor([1e8f64 + 1.0, 1e8 + 2.0, 1e8 + 3.0]);
    assert_eq!(shifted.var::<Rank0, _>().array(), 1.0);
}

#[test]
fn empty_reductions_are_errors_where_pytorch_refuses() {
    let dev = test_device();
    let x = dev.tensor_from_vec(Vec::<f64>::new(), (0usize, Const::<3>));
    let err = x.clone().try_max::<_, Axis<0>>().unwrap_err();
    assert!(matches!(err, Error::InvalidArgument { op: "max", .. }), "{err}");
    assert!(matches!(
        x.clone().try_min::<Rank0, _>(),
        Err(Error::InvalidArgument { op: "min", .. })
    ));
    assert!(matches!(
        x.try_argmax::<_, Axis<0>>(),
        Err(Error::InvalidArgument { op: "argmax", .. })
    ));
    assert!(matches!(
        x.try_argmin::<_, Axis<0>>(),
        Err(Error::InvalidArgument { op: "argmin", .. })
    ));
    assert!(matches!(
        x.clone().try_max_with_indices::<_, Axis<0>>(),
        Err(Error::InvalidArgument {
            op: "max_with_indices",
            ..
        })
    ));
    assert!(matches!(
        x.clone().try_min_with_indices::<_, Axis<0>>(),
        Err(Error::InvalidArgument {
            op: "min_with_indices",
            ..
        })
    ));
    // Reducing a non-empty axis of an empty tensor gives an empty result.
    assert_eq!(x.clone().max::<_, Axis<1>>().as_vec(), Vec::<f64>::new());
    let (values, indices) = x.clone().min_with_indices::<_, Axis<1>>();
    assert_eq!((values.as_vec(), indices.as_vec()), (vec![], vec![]));
    assert_eq!(x.clone().sum::<_, Axis<0>>().as_vec(), vec![0.0; 3]);
    assert_eq!(x.logsumexp::<_, Axis<0>>().as_vec(), vec![f64::NEG_INFINITY; 3]);
    let panic = std::panic::catch_unwind(|| dev.tensor_from_vec(Vec::<f32>::new(), (0usize,)).max::<Rank0, _>());
    let message = *panic.unwrap_err().downcast::<String>().unwrap();
    assert!(message.contains("max") && message.contains("no elements"), "{message}");
}

// ---------------------------------------------------------------------------------
// f32, long rows: the vectorised paths
// ---------------------------------------------------------------------------------

#[test]
fn f32_long_rows_match_f64_references() {
    let dev = seeded_test_device(3);
    // 1000 = 15 tiles of 64 + 40; 5003 spans two blocks of 4096.
    let x: Tensor<Rank2<3, 1000>, f32, TestDevice> = dev.sample_normal();
    let y: Tensor<Rank2<2, 5003>, f32, TestDevice> = dev.sample_normal();
    for (values, dims, sums, maxes, mins, vars, lses, argmaxes) in [
        (
            widen(&x.as_vec()),
            vec![3, 1000],
            widen(&x.clone().sum::<_, Axis<1>>().as_vec()),
            widen(&x.clone().max::<_, Axis<1>>().as_vec()),
            widen(&x.clone().min::<_, Axis<1>>().as_vec()),
            widen(&x.clone().var::<_, Axis<1>>().as_vec()),
            widen(&x.clone().logsumexp::<_, Axis<1>>().as_vec()),
            x.argmax::<_, Axis<1>>().as_vec(),
        ),
        (
            widen(&y.as_vec()),
            vec![2, 5003],
            widen(&y.clone().sum::<_, Axis<1>>().as_vec()),
            widen(&y.clone().max::<_, Axis<1>>().as_vec()),
            widen(&y.clone().min::<_, Axis<1>>().as_vec()),
            widen(&y.clone().var::<_, Axis<1>>().as_vec()),
            widen(&y.clone().logsumexp::<_, Axis<1>>().as_vec()),
            y.argmax::<_, Axis<1>>().as_vec(),
        ),
    ] {
        let axes = &[1];
        assert_close(
            &sums,
            &reference(&values, &dims, axes, |g| g.iter().sum()),
            1e-5,
            1e-4,
            "f32 sum",
        );
        assert_close(&maxes, &reference(&values, &dims, axes, ref_max), 0.0, 0.0, "f32 max");
        assert_close(&mins, &reference(&values, &dims, axes, ref_min), 0.0, 0.0, "f32 min");
        assert_close(
            &vars,
            &reference(&values, &dims, axes, |g| ref_var(g, 1.0)),
            1e-5,
            0.0,
            "f32 var",
        );
        assert_close(
            &lses,
            &reference(&values, &dims, axes, ref_logsumexp),
            1e-6,
            0.0,
            "f32 logsumexp",
        );
        let arg: Vec<usize> = groups(&values, &dims, axes).iter().map(|g| ref_arg(g, true)).collect();
        assert_eq!(argmaxes, arg, "f32 argmax");
    }
    // The whole tensor at once, and over the first axis (the strided walk).
    let all = f64::from(y.clone().sum::<Rank0, _>().array());
    assert_close(&[all], &[widen(&y.as_vec()).iter().sum()], 1e-5, 1e-3, "f32 sum of all");
    let cols = widen(&y.clone().logsumexp::<_, Axis<0>>().as_vec());
    assert_close(
        &cols,
        &reference(&widen(&y.as_vec()), &[2, 5003], &[0], ref_logsumexp),
        1e-6,
        1e-6,
        "f32 logsumexp over axis 0",
    );
}

#[test]
fn gradients_of_f32_agree_with_f64() {
    let x64 = distinct::<Rank2<4, 37>>();
    let x32 = x64.to_dtype::<f32>();
    let w: Tensor<Rank1<4>, f64, TestDevice> = tensor_of(weights(4, 9), Default::default());
    let w32 = w.to_dtype::<f32>();
    let g64 = x64
        .leaky_trace()
        .logsumexp::<_, Axis<1>>()
        .mul(w)
        .sum::<Rank0, _>()
        .backward()
        .get(&x64)
        .as_vec();
    let g32 = x32
        .leaky_trace()
        .logsumexp::<_, Axis<1>>()
        .mul(w32)
        .sum::<Rank0, _>()
        .backward()
        .get(&x32)
        .as_vec();
    assert_close(&widen(&g32), &g64, 1e-5, 1e-7, "f32 logsumexp gradient");
}
